"""``Pipeline.synthesizer(model)``: the fine-tuned Trajectory Synthesizer in place of GEM's
extraction, generation and refinement, with the same checks and judge."""

from __future__ import annotations

from typing import Any

from gemlib.gem.judge import LLMJudge
from gemlib.gem.prefilter import ProcedurePrefilter
from gemlib.gem.relevance import RelevanceFilter
from gemlib.gem.segmenter import Segmenter
from gemlib.llm.client import LLM, as_llm
from gemlib.pipeline.pipeline import Pipeline
from gemlib.pipeline.stage import Stage
from gemlib.stages.validators import RuleValidator
from gemlib.synthesizer.stage import Synthesize
from gemlib.validation.ladder import default_checks

__all__ = ["synthesizer"]


def synthesizer(
    model: str | LLM,
    *,
    judge_model: str | LLM | None = None,
    relevance_model: str | LLM | None = None,
    validate: bool = True,
    judge: bool = True,
    prefilter: bool = False,
    max_chars: int = 6000,
    max_repairs: int = 2,
    **llm_options: Any,
) -> Pipeline:
    """The synthesizer path: segment, (relevance), synthesize, rules, judge.

    ``model`` is the fine-tuned Trajectory Synthesizer (a vLLM server, a local
    GGUF as ``local/<path>``, or any litellm model); ``relevance_model`` adds
    the relevance filter in front (skip it for a corpus already filtered);
    ``judge_model`` defaults to ``model`` but should usually be a general
    model. The rule checks and judge are the full pipeline's, so both paths
    are measured on equal terms.
    """
    shared: dict[str, LLM] = {}

    def llm(chosen: str | LLM) -> LLM:
        if isinstance(chosen, LLM):
            return chosen
        return shared.setdefault(chosen, as_llm(chosen, **llm_options))

    stages: list[Stage] = [Segmenter(max_chars=max_chars)]
    if prefilter:
        stages.append(ProcedurePrefilter())
    if relevance_model is not None:
        stages.append(RelevanceFilter(model=llm(relevance_model), max_repairs=max_repairs))
    stages.append(Synthesize(model=llm(model), max_repairs=max_repairs))
    if validate:
        stages.append(RuleValidator(checks=default_checks(one_call_per_turn=True)))
    if judge:
        stages.append(LLMJudge(model=llm(judge_model or model), max_repairs=max_repairs))
    return Pipeline(stages)
