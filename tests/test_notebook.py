"""The example notebook runs top to bottom against the loopback teacher."""

from __future__ import annotations

from pathlib import Path

import pytest

from fake_openai import FakeOpenAI
from teacher import teacher_reply

NOTEBOOK = Path(__file__).parents[1] / "examples" / "notebook.ipynb"


def test_the_example_notebook_executes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    with FakeOpenAI(teacher_reply) as server:
        monkeypatch.setenv("GEMLIB_MODEL", "openai/teacher")
        monkeypatch.setenv("GEMLIB_API_BASE", server.url)
        monkeypatch.setenv("GEMLIB_RUN_DIR", str(tmp_path / "run"))
        monkeypatch.setenv("GEMLIB_CACHE_DIR", str(tmp_path / "cache"))
        nbclient.NotebookClient(
            notebook,
            timeout=120,
            kernel_name="python3",
            resources={"metadata": {"path": str(tmp_path)}},
        ).execute()
    outputs = "\n".join(
        output.get("text", "") + str(output.get("data", {}).get("text/plain", ""))
        for cell in notebook.cells
        if cell.cell_type == "code"
        for output in cell.outputs
    )
    assert "relevance_filter" in outputs
    assert "llm_judge" in outputs
    assert "1 trajectories" in outputs
    assert (tmp_path / "run" / "train.openai.jsonl").exists()
