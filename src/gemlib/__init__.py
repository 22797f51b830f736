"""gemlib: turn plain-text corpora into validated multi-turn tool-use trajectories.

The public surface is what ``__all__`` lists; everything else lives in private
or internal modules and may change. The model layer (``LLM``, ``Limits``,
``LLMStage``) is imported on first use, so ``import gemlib`` stays light for
the frameworks that depend on it.
"""

from typing import TYPE_CHECKING

from gemlib._lazy import lazy_names as _lazy_names
from gemlib._version import __version__
from gemlib.errors import (
    CacheError,
    ConnectFailed,
    CorpusReadError,
    FatalError,
    FormatError,
    GemlibError,
    ModelAuthError,
    ModelConfigError,
    ModelError,
    ModelRequestError,
    ModelUnreachable,
    ParseError,
    PipelineError,
    PromptTooLong,
    RateLimited,
    ReplyError,
    ReplyTooLarge,
    RunAborted,
    RunDirError,
    RunDirWriteError,
    ToolSchemaError,
    TransientModelError,
)
from gemlib.formats.corpus import read_corpus
from gemlib.formats.registry import add_builtin as _add_format
from gemlib.llm.usage import ModelUsage
from gemlib.model import (
    Document,
    Message,
    Problem,
    Provenance,
    Rejection,
    StageRecord,
    Tool,
    ToolCall,
    Trajectory,
    Workflow,
)
from gemlib.pipeline.accounting import RunStats, StageStats
from gemlib.pipeline.pipeline import Pipeline, RunResult
from gemlib.pipeline.presets import PRESETS as _PRESETS
from gemlib.pipeline.stage import FunctionStage, Stage, stage
from gemlib.validation.ladder import ValidationReport, validate

if TYPE_CHECKING:
    from gemlib.llm.client import LLM
    from gemlib.llm.limits import Limits
    from gemlib.stages.llm_stage import LLMStage

# The method registers itself with the runtime here, at the top of the import
# graph, so that the runtime never imports it (see docs/architecture.md).
_PRESETS.register_lazy("gem", "gemlib.gem.presets:gem")
_PRESETS.register_lazy("synthesizer", "gemlib.synthesizer.preset:synthesizer")
# So does the Hub dataset folder, a format that writes a card from the statistics.
_add_format("hf", "gemlib.hub.push:DATASET_FOLDER")

_LAZY = {
    "LLM": "gemlib.llm.client",
    "Limits": "gemlib.llm.limits",
    "LLMStage": "gemlib.stages.llm_stage",
}


__getattr__, __dir__ = _lazy_names(__name__, _LAZY)


__all__ = [
    "LLM",
    "CacheError",
    "ConnectFailed",
    "CorpusReadError",
    "Document",
    "FatalError",
    "FormatError",
    "FunctionStage",
    "GemlibError",
    "LLMStage",
    "Limits",
    "Message",
    "ModelAuthError",
    "ModelConfigError",
    "ModelError",
    "ModelRequestError",
    "ModelUnreachable",
    "ModelUsage",
    "ParseError",
    "Pipeline",
    "PipelineError",
    "Problem",
    "PromptTooLong",
    "Provenance",
    "RateLimited",
    "Rejection",
    "ReplyError",
    "ReplyTooLarge",
    "RunAborted",
    "RunDirError",
    "RunDirWriteError",
    "RunResult",
    "RunStats",
    "Stage",
    "StageRecord",
    "StageStats",
    "Tool",
    "ToolCall",
    "ToolSchemaError",
    "Trajectory",
    "TransientModelError",
    "ValidationReport",
    "Workflow",
    "__version__",
    "read_corpus",
    "stage",
    "validate",
]
