"""gemlib: turn plain-text corpora into validated multi-turn tool-use trajectories.

The public surface is what ``__all__`` lists; everything else lives in private
or internal modules and may change.
"""

from gemlib._version import __version__
from gemlib.corpus import read_corpus
from gemlib.errors import (
    FatalError,
    FormatError,
    GemlibError,
    PipelineError,
    RunAborted,
    RunDirError,
    ToolSchemaError,
)
from gemlib.model import (
    Document,
    Message,
    ModelUsage,
    Problem,
    Provenance,
    Rejection,
    RunStats,
    StageRecord,
    StageStats,
    Tool,
    ToolCall,
    Trajectory,
    Workflow,
)
from gemlib.pipeline.pipeline import Pipeline, RunResult
from gemlib.pipeline.stage import FunctionStage, Stage, stage
from gemlib.validation.ladder import ValidationReport, validate

__all__ = [
    "Document",
    "FatalError",
    "FormatError",
    "FunctionStage",
    "GemlibError",
    "Message",
    "ModelUsage",
    "Pipeline",
    "PipelineError",
    "Problem",
    "Provenance",
    "Rejection",
    "RunAborted",
    "RunDirError",
    "RunResult",
    "RunStats",
    "Stage",
    "StageRecord",
    "StageStats",
    "Tool",
    "ToolCall",
    "ToolSchemaError",
    "Trajectory",
    "ValidationReport",
    "Workflow",
    "__version__",
    "read_corpus",
    "stage",
    "validate",
]
