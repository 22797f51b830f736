"""Pipelines for the cluster tests, importable by Dask workers in other processes."""

from __future__ import annotations

from gemlib import Pipeline
from gemlib.llm import LLM, Limits


def gem_against(api_base: str, limits: Limits) -> Pipeline:
    """The GEM preset against the test teacher, with this partition's share of the limits."""
    llm = LLM("openai/teacher", api_base=api_base, api_key="none", cache=False, limits=limits)
    return Pipeline.gem(llm)
