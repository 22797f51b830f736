"""Real procedural and non-procedural text from outside the project, labelled by source.

Procedural: tau2-bench's agent policies and telecom tech-support manuals, and
the Python documentation's guides to installing and using Python (Debian's
``python3.11-doc``, which ``nox -s tests`` unpacks and points
``GEMLIB_PYTHON_DOCS`` at). Not procedural: the same documentation's release
notes ("What's new"), language reference, glossary and licence. Each segment
takes its file's label, so a descriptive paragraph inside a manual counts as
procedural: the labels are noisy by design, the same for every filter compared.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from conftest import third_party
from gemlib.gem.segmenter import Segmenter
from gemlib.model import Document

PYTHON_DOCS = Path(os.environ.get("GEMLIB_PYTHON_DOCS", "/usr/share/doc/python3.11/html/_sources"))
PROCEDURAL_TAU2 = [
    "telecom/tech_support_manual.md",
    "telecom/tech_support_workflow.md",
    "airline/policy.md",
    "retail/policy.md",
]
PROCEDURAL_PYTHON = [
    "installing/index.rst.txt",
    "using/unix.rst.txt",
    "using/windows.rst.txt",
    "using/mac.rst.txt",
    "tutorial/venv.rst.txt",
    "bugs.rst.txt",
    "distributing/index.rst.txt",
]
OTHER_PYTHON = ["whatsnew/3.*.rst.txt", "reference/*.rst.txt", "glossary.rst.txt"]
OTHER_PYTHON += ["license.rst.txt", "about.rst.txt", "faq/general.rst.txt"]


def _python_docs() -> Path:
    """The unpacked docs; missing, a failure where required (nox on Debian, CI), else a skip."""
    if not (PYTHON_DOCS / "installing" / "index.rst.txt").exists():
        if os.environ.get("GEMLIB_REQUIRE_PYTHON_DOCS"):
            raise FileNotFoundError(f"Python documentation sources not found at {PYTHON_DOCS}")
        pytest.skip(
            f"python3.11-doc is not unpacked at {PYTHON_DOCS}: it is a Debian package, which "
            "nox -s tests unpacks where apt-get and dpkg-deb exist"
        )
    return PYTHON_DOCS


def labelled_segments(max_chars: int = 6000) -> list[tuple[Document, bool]]:
    """Every segment of the chosen files with its file's label (True: procedural)."""
    tau2: object = third_party("tau2")
    domains = Path(tau2.__file__).parent / "data" / "tau2" / "domains"  # type: ignore[attr-defined]
    docs = _python_docs()
    files = [(domains / name, True) for name in PROCEDURAL_TAU2]
    files += [(docs / name, True) for name in PROCEDURAL_PYTHON]
    files += [(path, False) for pattern in OTHER_PYTHON for path in sorted(docs.glob(pattern))]
    segmenter = Segmenter(max_chars=max_chars)
    labelled = []
    for path, procedural in files:
        name = "-".join(path.parts[-2:])
        out = segmenter.process(Document(id=name, text=path.read_text()))
        for segment in out if isinstance(out, list) else [out]:
            if isinstance(segment, Document):
                labelled.append((segment, procedural))
    return labelled
