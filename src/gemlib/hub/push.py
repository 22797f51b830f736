"""Export a run as a Hugging Face dataset folder, and upload it (see :mod:`gemlib.hub`)."""

from __future__ import annotations

import importlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from gemlib.errors import GemlibError
from gemlib.formats.format import ExportRequest, Format
from gemlib.model import Trajectory

__all__ = ["DATASET_FOLDER", "export_hf", "push_to_hub"]

CONFIGS = ("openai", "sharegpt", "hermes", "gem")
"""One config per export format; the first is the default."""
TOKEN_VARIABLES = ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN")


def _trajectories(source: Path) -> Iterator[Trajectory]:
    from gemlib.pipeline.rundir import read_trajectories

    return read_trajectories(source)


def export_hf(
    source: str | os.PathLike[str],
    out: str | os.PathLike[str],
    *,
    license: str = "other",
    pretty_name: str = "",
    repo_id: str = "",
) -> dict[str, tuple[str, int]]:
    """Write the dataset folder of a run directory or trajectory file; its configs.

    Returns ``{config: (data file, rows)}``. The folder is built beside ``out`` and
    moved into place whole; an existing ``out`` is replaced only if it is an
    earlier export (it holds a README.md and data/), never another folder.
    """
    from gemlib.analysis.stats import dataset_stats
    from gemlib.analysis.summary import load_summary
    from gemlib.formats import write_jsonl
    from gemlib.hub.card import dataset_card  # with the statistics and token counting

    src, target = Path(source), Path(out)
    if not src.exists():
        raise FileNotFoundError(f"no such file or run directory: {src}")
    if target.exists() and any(target.iterdir()) and not _is_export(target):
        raise GemlibError(f"{target} exists and is not a gemlib dataset folder; choose another")
    target.parent.mkdir(parents=True, exist_ok=True)
    building = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))
    try:
        configs: dict[str, tuple[str, int]] = {}
        for name in CONFIGS:
            path = f"data/{name}/train.jsonl"
            (building / path).parent.mkdir(parents=True)
            configs[name] = (path, write_jsonl(_trajectories(src), building / path, name))
        card = dataset_card(
            configs=configs,
            dataset=dataset_stats(_trajectories(src)),
            summary=load_summary(src) if src.is_dir() else None,
            license=license,
            pretty_name=pretty_name,
            source_name=_corpus_name(src),
            repo_id=repo_id,
        )
        (building / "README.md").write_text(card, encoding="utf-8")
        _replace(building, target)
    except BaseException:
        shutil.rmtree(building, ignore_errors=True)
        raise
    return configs


def _export(request: ExportRequest) -> str:
    out = request.out
    configs = export_hf(
        request.source, out, license=request.license, pretty_name=request.pretty_name
    )
    rows = ", ".join(f"{name} {n}" for name, (_, n) in configs.items())
    return (
        f"wrote a Hugging Face dataset folder to {out} (rows per config: {rows})\n"
        f"load it with datasets.load_dataset({str(out)!r}, CONFIG)"
    )


DATASET_FOLDER = Format(
    name="hf",
    description="a Hugging Face Hub dataset folder: each JSONL format a config, and a card",
    suffix="",
    write=_export,
)
"""The ``hf`` entry of the format registry."""


def _is_export(folder: Path) -> bool:
    return (folder / "README.md").is_file() and (folder / "data").is_dir()


def _replace(built: Path, target: Path) -> None:
    old = None
    if target.exists():
        old = target.with_name(f".{target.name}-old-{os.getpid()}")
        os.replace(target, old)
    os.replace(built, target)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def _corpus_name(source: Path) -> str:
    """The corpus's file name from a run directory's settings (never its full path)."""
    from gemlib.errors import RunDirError
    from gemlib.pipeline.rundir import RunDir

    try:
        spec = RunDir(source).read_settings() or {}
    except RunDirError:
        return ""
    corpus = spec.get("corpus")
    return Path(corpus).name if isinstance(corpus, str) and corpus != "-" else ""


def _token() -> str | None:
    for name in TOKEN_VARIABLES:
        value = os.environ.get(name, "").strip()
        if value:
            return value
    return None


def push_to_hub(
    source: str | os.PathLike[str],
    repo_id: str,
    *,
    private: bool = False,
    license: str = "other",
    pretty_name: str = "",
    commit_message: str = "Upload dataset made with gemlib",
) -> str:
    """Export ``source`` as a dataset folder and upload it to ``repo_id``; the commit's URL.

    Creates the dataset repository when it does not exist. Raises
    :class:`GemlibError` without a token, in offline mode, or when the Hub
    refuses; the message never holds the token.
    """
    try:
        hub: Any = importlib.import_module("huggingface_hub")
    except ImportError:
        raise GemlibError("pushing needs huggingface_hub: pip install 'gemlib[hf]'") from None
    if importlib.import_module("huggingface_hub.constants").HF_HUB_OFFLINE:
        raise GemlibError(
            "HF_HUB_OFFLINE (or TRANSFORMERS_OFFLINE) is set, so nothing can be uploaded; "
            "unset it to push"
        )
    token = _token() or hub.get_token()
    if not token:
        raise GemlibError(
            "no Hugging Face token: set HF_TOKEN (a write token from "
            "https://huggingface.co/settings/tokens) or run `hf auth login`"
        )
    with tempfile.TemporaryDirectory(prefix="gemlib-push-") as folder:
        export_hf(source, folder, license=license, pretty_name=pretty_name, repo_id=repo_id)
        api = hub.HfApi(token=token, library_name="gemlib")
        try:
            api.create_repo(repo_id, repo_type="dataset", private=private, exist_ok=True)
            commit = api.upload_folder(
                repo_id=repo_id,
                repo_type="dataset",
                folder_path=folder,
                commit_message=commit_message,
            )
        except Exception as exc:  # the Hub's and the network's errors, said without the token
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
            raise GemlibError(
                f"push to {repo_id} failed: {type(exc).__name__}: {first.replace(token, '***')}"
            ) from None
    return str(getattr(commit, "commit_url", commit))
