"""The pipeline runtime: the stage contract, the composable pipeline, the runner, the run
directory and its accounting. It knows no method: presets register with :data:`PRESETS`."""

from gemlib.pipeline.accounting import RunStats, StageStats
from gemlib.pipeline.pipeline import Pipeline, RunResult
from gemlib.pipeline.presets import PRESETS
from gemlib.pipeline.runner import RunOptions
from gemlib.pipeline.stage import FunctionStage, Stage, stage

__all__ = [
    "PRESETS",
    "FunctionStage",
    "Pipeline",
    "RunOptions",
    "RunResult",
    "RunStats",
    "Stage",
    "StageStats",
    "stage",
]
