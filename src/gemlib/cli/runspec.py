"""What `gemlib run` runs: from flags or a TOML config, kept in the run directory.

A config file holds everything the flags can (flags win where both are given)::

    corpus = "corpus.jsonl"
    out = "runs/one"
    model = "openai/gpt-4.1-mini"
    judge_model = "openai/gpt-4.1"
    concurrency = 32
    refine = true

    [stage_models]
    relevance = "openai/gpt-4.1-nano"

    [stage_params.generation]
    reasoning_effort = "high"

`gemlib run` writes the resolved specification to ``run.json`` in the run
directory once the directory has accepted the run (a refused run changes
nothing), and `gemlib resume DIR` runs it again from any folder, which resumes
the run. Paths are recorded absolute. Credentials are never recorded: keys come
from the environment, and an ``api_base`` with ``user:password@`` or a key in
its query is recorded masked, so `gemlib resume` asks for ``--api-base`` again.
"""

from __future__ import annotations

import importlib
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, ValidationError

from gemlib._secrets import MASK, scrub
from gemlib.errors import GemlibError
from gemlib.llm.limits import Limits
from gemlib.pipeline.rundir import RunDir

if TYPE_CHECKING:
    from gemlib.pipeline.pipeline import Pipeline

__all__ = ["RunSpec", "load_config"]


class RunSpec(BaseModel):
    """The settings of one `gemlib run`."""

    model_config = ConfigDict(extra="forbid")

    corpus: str
    out: str
    model: str
    judge_model: str | None = None
    api_base: str | None = None
    stage_models: dict[str, str] = {}
    stage_params: dict[str, dict[str, Any]] = {}
    """Request settings per stage, e.g. ``[stage_params.relevance]`` with
    ``reasoning_effort = "low"`` in the config file."""
    concurrency: int | None = None
    max_tokens: int | None = None
    text_field: str = "text"
    refine: bool = True
    reasoning_traces: bool = False
    """The teacher writes the assistant's private reasoning before each assistant turn."""
    judge: bool = True
    mask_turns: float | None = None
    """Turn-level verdicts: mask up to this share of a trajectory's assistant turns
    instead of rejecting it (:class:`~gemlib.validation.verdicts.TurnPolicy`); ``None``
    rejects a trajectory with any problem, as the paper does."""
    prefilter: bool = False
    classifier: str | None = None
    batch: bool = False
    """Send every model's requests in provider batches (OpenAI's Batch API, Anthropic's
    Message Batches) at batch prices."""
    batch_settings: dict[str, Any] = {}
    """:class:`~gemlib.llm.batch.BatchSettings` fields, e.g. ``[batch_settings]`` with
    ``poll_interval = 60`` in the config file."""
    limit: int | None = None
    """A pilot: run the first N corpus items only."""
    sample: int | None = None
    """A pilot: run a uniform sample of N corpus items, drawn with ``seed``."""
    seed: int = 0
    dask: str | None = None
    """A Dask scheduler address, or ``local`` / ``local:N`` for a cluster of N
    workers on this machine: ``corpus`` is then a folder whose JSONL and Parquet
    files are the partitions."""

    def pipeline(self, limits: Limits | None = None) -> Pipeline:
        """The GEM pipeline these settings describe (``limits``: per model, else the
        ``concurrency`` setting, else the default)."""
        from gemlib.llm.batch import BatchSettings
        from gemlib.pipeline.pipeline import Pipeline
        from gemlib.validation.verdicts import TurnPolicy

        if limits is None and self.concurrency is not None:
            limits = Limits(self.concurrency)
        try:
            return Pipeline.gem(
                self.model,
                judge_model=self.judge_model,
                stage_models=self.stage_models,
                stage_params=self.stage_params,
                refine=self.refine,
                reasoning_traces=self.reasoning_traces,
                judge=self.judge,
                turn_policy=None
                if self.mask_turns is None
                else TurnPolicy(max_masked=self.mask_turns),
                prefilter=self.prefilter,
                classifier=self.classifier,
                api_base=self.api_base,
                max_tokens=self.max_tokens,
                **({"batch": BatchSettings(**self.batch_settings)} if self.batch else {}),
                **({} if limits is None else {"limits": limits}),
            )
        except (FileNotFoundError, ValueError, TypeError) as exc:
            raise GemlibError(str(exc)) from None

    @classmethod
    def resolve(cls, config: dict[str, Any], flags: dict[str, Any]) -> RunSpec:
        """Merge a config file's settings with the flags given (flags win)."""
        merged = {**config, **{k: v for k, v in flags.items() if v is not None}}
        merged["stage_models"] = {
            **config.get("stage_models", {}),
            **(flags.get("stage_models") or {}),
        }
        try:
            return cls.model_validate(merged)
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in e['loc'])}: "
                + (
                    "required: pass the flag or set it in the config"
                    if e["type"] == "missing"
                    else e["msg"]
                )
                for e in exc.errors()
            )
            raise GemlibError(f"run settings: {problems}") from None

    def recorded(self) -> dict[str, Any]:
        """The settings as ``run.json`` keeps them: paths absolute, credentials masked."""
        data = self.model_dump()
        for key in ("corpus", "out", "classifier"):
            if data[key] is not None and data[key] != "-":
                data[key] = str(Path(data[key]).absolute())
        if self.api_base is not None:
            data["api_base"] = scrub(self.api_base)
        return data

    def save(self) -> None:
        """Write ``run.json`` into ``out`` (a partitioned run's root; a run directory gets
        it from the store once it accepts the run)."""
        out = RunDir(self.out)
        out.path.mkdir(parents=True, exist_ok=True)
        out.write_settings(self.recorded())

    @classmethod
    def load(cls, run_dir: str | Path, *, api_base: str | None = None) -> RunSpec:
        """Read the ``run.json`` of a run directory, wherever it is now.

        ``api_base`` replaces the recorded server URL: needed when the run's had
        credentials, which are recorded masked.
        """
        path = RunDir(run_dir).settings_file
        if not path.exists():
            raise GemlibError(f"{run_dir} has no {path.name}: it was not made by `gemlib run`")
        try:
            spec = cls.model_validate_json(path.read_bytes())
        except (OSError, ValidationError) as exc:
            problem = exc.errors()[0]["msg"] if isinstance(exc, ValidationError) else exc
            raise GemlibError(
                f"{path} is unreadable ({problem}); run the command again in full: "
                f"gemlib run CORPUS --model MODEL ... --out {run_dir}"
            ) from None
        if api_base is not None:
            recorded = spec.api_base or ""
            if scrub(api_base).replace(MASK, "") != recorded.replace(MASK, ""):
                raise GemlibError(
                    f"--api-base {scrub(api_base)} is not the server this run "
                    f"used ({recorded or 'none'})"
                )
        elif spec.api_base is not None and MASK in spec.api_base:
            raise GemlibError(
                f"this run's --api-base carried credentials, which are never recorded; pass it "
                f"again: gemlib resume {run_dir} --api-base URL"
            )
        return spec.model_copy(update={"out": str(run_dir), "api_base": api_base or spec.api_base})


def load_config(path: str | Path) -> dict[str, Any]:
    """Read a TOML config file into flag-named settings."""
    try:
        toml: Any = importlib.import_module("tomllib")
    except ImportError:  # Python 3.10
        try:
            toml = importlib.import_module("tomli")
        except ImportError:
            raise GemlibError("config files need Python 3.11+, or: pip install tomli") from None
    file = Path(path)
    if not file.exists():
        raise GemlibError(f"config file not found: {file}")
    try:
        data: dict[str, Any] = toml.loads(file.read_text(encoding="utf-8"))
    except ValueError as exc:  # tomllib.TOMLDecodeError is a ValueError
        raise GemlibError(f"{file}: not valid TOML: {exc}") from None
    plain: dict[str, Any] = json.loads(json.dumps(data))  # dates and the like as strings
    return plain
