"""The GEM method: its stages, labels and presets, built on the runtime in :mod:`gemlib.pipeline`.

``Pipeline.gem(model)`` (:func:`gemlib.gem.presets.gem`) chains them: segment,
prefilter, relevance, extraction, generation, refinement, rule checks, judge.
Prompts are in :mod:`gemlib.prompts`; the GEM tag grammar the teacher writes is
the ``gem`` format in :mod:`gemlib.formats.gem_tags`.
"""

from gemlib.gem.extraction import WorkflowExtractor
from gemlib.gem.generation import TrajectoryGenerator
from gemlib.gem.judge import LLMJudge
from gemlib.gem.prefilter import ProcedurePrefilter
from gemlib.gem.presets import GEM_STAGES, gem
from gemlib.gem.refinement import ComplexityRefiner
from gemlib.gem.relevance import RelevanceFilter
from gemlib.gem.segmenter import Segmenter
from gemlib.gem.turn_judge import TurnJudge

__all__ = [
    "GEM_STAGES",
    "ComplexityRefiner",
    "LLMJudge",
    "ProcedurePrefilter",
    "RelevanceFilter",
    "Segmenter",
    "TrajectoryGenerator",
    "TurnJudge",
    "WorkflowExtractor",
    "gem",
]
