"""The public surface is exactly `gemlib.__all__`, the documented import paths work,
and importing gemlib stays light."""

from __future__ import annotations

import ast
import importlib
import inspect
import re
import subprocess
import sys
from pathlib import Path

import pytest

import gemlib
import gemlib.errors

ROOT = Path(__file__).resolve().parents[1]
LAZY = {"LLM", "LLMStage", "Limits"}  # the model layer, imported on first use


def test_all_names_exist_and_public_names_are_listed() -> None:
    for name in gemlib.__all__:
        assert hasattr(gemlib, name), name
    # In a fresh interpreter, so submodules imported by other tests do not count.
    code = (
        "import types, gemlib; print(sorted(n for n, v in vars(gemlib).items() "
        "if not n.startswith('_') and not isinstance(v, types.ModuleType)))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    eager = set(eval(out.stdout)) - {"TYPE_CHECKING", "Any"}
    assert eager == set(gemlib.__all__) - {"__version__"} - LAZY


def test_dir_lists_the_lazy_names_before_their_first_use() -> None:
    """Fails on the old code: the lazy facades had no ``__dir__``, so ``dir(gemlib)`` and a
    notebook's completion of ``gemlib.`` did not offer ``LLM`` until it was first used."""
    code = (
        "import gemlib, gemlib.llm; "
        "print(sorted(gemlib.__all__)); print(sorted(gemlib.llm.__all__)); "
        "print(dir(gemlib)); print(dir(gemlib.llm)); print(sorted(vars(gemlib.llm)))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    top, llm, listed_top, listed_llm, loaded = map(eval, out.stdout.splitlines())
    assert "LLM" not in loaded, "still lazy: dir() imported nothing"
    assert set(top) <= set(listed_top)
    assert set(llm) <= set(listed_llm)
    assert listed_top == sorted(listed_top)


def test_every_public_error_is_exported_from_the_top() -> None:
    errors = {
        name
        for name, value in vars(gemlib.errors).items()
        if inspect.isclass(value) and issubclass(value, gemlib.errors.GemlibError)
    }
    assert errors <= set(gemlib.__all__), errors - set(gemlib.__all__)


def test_importing_gemlib_does_not_import_litellm_or_configure_logging() -> None:
    code = (
        "import sys, logging; import gemlib; "
        "print('litellm' in sys.modules, 'aiohttp' in sys.modules, logging.getLogger().handlers)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False False []"


def _documented_imports() -> list[tuple[str, str, str]]:
    """``(file, module, name)`` for every ``from gemlib... import`` in the docs and examples."""
    found = []
    pattern = re.compile(r"^\s*from (gemlib[\w.]*) import (\([^)]*\)|[^\n]+)", re.M)
    files = [ROOT / "README.md", *ROOT.glob("docs/*.md"), *ROOT.glob("examples/*.py")]
    for path in files:
        for module, names in pattern.findall(path.read_text()):
            names = re.sub(r"#[^\n]*", "", names).strip("() \n")
            for entry in names.split(","):
                name = entry.split(" as ")[0].strip()
                if name:
                    found.append((path.name, module, name))
    return found


def _documented_references() -> list[tuple[str, str]]:
    """``(file, dotted path)`` for each ``::: gemlib.x`` reference and `gemlib.x.Y` mention."""
    found = []
    for path in [ROOT / "README.md", *ROOT.glob("docs/*.md")]:
        text = path.read_text()
        for dotted in re.findall(r"^::: (gemlib[\w.]*)", text, re.M):
            found.append((path.name, dotted))
        for dotted in re.findall(r"`(gemlib(?:\.\w+)+)`", text):
            found.append((path.name, dotted))
    return found


@pytest.mark.parametrize(("where", "module", "name"), _documented_imports())
def test_documented_imports_work(where: str, module: str, name: str) -> None:
    assert hasattr(importlib.import_module(module), name), f"{where}: from {module} import {name}"


@pytest.mark.parametrize(("where", "dotted"), _documented_references())
def test_documented_references_resolve(where: str, dotted: str) -> None:
    parts = dotted.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            value: object = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        for attribute in parts[cut:]:
            assert hasattr(value, attribute), f"{where}: {dotted}"
            value = getattr(value, attribute)
        return
    pytest.fail(f"{where}: {dotted} names no module")


def test_the_examples_parse() -> None:
    for path in ROOT.glob("examples/*.py"):
        ast.parse(path.read_text(), str(path))
