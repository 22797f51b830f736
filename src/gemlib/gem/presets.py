"""Ready-made pipelines: the GEM method end to end."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from gemlib.classifier import RelevanceClassifier
from gemlib.gem.extraction import WorkflowExtractor
from gemlib.gem.generation import TrajectoryGenerator
from gemlib.gem.judge import LLMJudge
from gemlib.gem.prefilter import ProcedurePrefilter
from gemlib.gem.refinement import ComplexityRefiner
from gemlib.gem.relevance import RelevanceFilter
from gemlib.gem.segmenter import Segmenter
from gemlib.gem.turn_judge import TurnJudge
from gemlib.llm.client import LLM, as_llm
from gemlib.pipeline.pipeline import Pipeline
from gemlib.pipeline.stage import Stage
from gemlib.stages.classifier_filter import ClassifierFilter
from gemlib.stages.validators import RuleValidator, TurnValidator
from gemlib.validation.ladder import default_checks
from gemlib.validation.verdicts import TurnPolicy

__all__ = ["GEM_STAGES", "gem"]

GEM_STAGES = ("relevance", "extraction", "generation", "refinement", "judge")
"""The stage keys ``stage_models``, ``templates`` and ``stage_params`` accept."""


def gem(
    model: str | LLM,
    *,
    judge_model: str | LLM | None = None,
    stage_models: Mapping[str, str | LLM] | None = None,
    templates: Mapping[str, str] | None = None,
    stage_params: Mapping[str, Mapping[str, Any]] | None = None,
    refine: bool = True,
    validate: bool = True,
    judge: bool = True,
    prefilter: bool = False,
    classifier: RelevanceClassifier | str | Path | None = None,
    max_chars: int = 6000,
    one_call_per_turn: bool = True,
    reasoning_traces: bool = False,
    turn_policy: TurnPolicy | None = None,
    max_repairs: int = 2,
    **llm_options: Any,
) -> Pipeline:
    """The GEM pipeline: segment, relevance, extraction, generation, refinement, rules, judge.

    ``model``: the teacher for every stage (a litellm string or an ``LLM``);
    ``judge_model`` the judge's model (default: ``model``); ``stage_models``
    overrides either per stage (keys in :data:`GEM_STAGES`), e.g. a small model
    for relevance. Stages naming the same model string share one ``LLM``, hence
    one set of limits. ``refine=False`` and ``judge=False`` are the paper's
    ablations; ``validate=False`` drops the rule checks too (not recommended).
    ``prefilter=True`` puts the model-free
    :class:`ProcedurePrefilter` before the relevance filter; ``classifier`` (a
    trained :class:`~gemlib.classifier.RelevanceClassifier` or its file) adds a
    :class:`ClassifierFilter` there too, so that only the segments it keeps
    reach the LLM. ``templates``
    overrides prompts per stage, ``stage_params`` request settings per stage (e.g.
    ``{"relevance": {"reasoning_effort": "low"}}``). ``reasoning_traces=True``
    (beyond the paper) has the teacher write the assistant's private reasoning
    before each assistant turn, kept as ``Message.reasoning``. ``turn_policy``
    (beyond the paper) masks bad assistant turns instead of rejecting the whole
    trajectory where the :class:`~gemlib.validation.verdicts.TurnPolicy` allows:
    the rules run as a :class:`~gemlib.stages.validators.TurnValidator` and the
    judge as a :class:`~gemlib.gem.turn_judge.TurnJudge`. Other keywords
    (``api_base``, ``temperature``, ``limits``, ``cache``...) configure the ``LLM``
    objects built from strings.
    """
    overrides = dict(stage_models or {})
    if judge_model is not None:
        overrides.setdefault("judge", judge_model)
    keyed = set(overrides) | set(templates or {}) | set(stage_params or {})
    unknown = keyed - set(GEM_STAGES)
    if unknown:
        raise ValueError(f"unknown stage keys {sorted(unknown)}; use {list(GEM_STAGES)}")
    shared: dict[str, LLM] = {}

    def llm_for(stage: str) -> LLM:
        chosen = overrides.get(stage, model)
        if isinstance(chosen, LLM):
            return chosen
        if chosen not in shared:
            shared[chosen] = as_llm(chosen, **llm_options)
        return shared[chosen]

    def options(stage: str) -> dict[str, Any]:
        template = (templates or {}).get(stage)
        return {
            "model": llm_for(stage),
            "max_repairs": max_repairs,
            "template": template,
            "params": dict((stage_params or {}).get(stage, {})),
        }

    stages: list[Stage] = [Segmenter(max_chars=max_chars)]
    if prefilter:
        stages.append(ProcedurePrefilter())
    if classifier is not None:
        stages.append(ClassifierFilter(classifier))
    stages += [
        RelevanceFilter(**options("relevance")),
        WorkflowExtractor(**options("extraction")),
        TrajectoryGenerator(**options("generation"), reasoning_traces=reasoning_traces),
    ]
    if refine:
        stages.append(
            ComplexityRefiner(
                **options("refinement"),
                one_call_per_turn=one_call_per_turn,
                reasoning_traces=reasoning_traces,
            )
        )
    if validate:
        checks = default_checks(one_call_per_turn=refine and one_call_per_turn)
        if turn_policy is not None:
            stages.append(TurnValidator(checks=checks, policy=turn_policy))
        else:
            stages.append(RuleValidator(checks=checks))
    if judge and turn_policy is not None:
        stages.append(TurnJudge(**options("judge"), policy=turn_policy))
    elif judge:
        stages.append(LLMJudge(**options("judge")))
    return Pipeline(stages)
