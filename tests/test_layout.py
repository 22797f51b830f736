"""The package layout: no import cycle anywhere in src/ (function-level imports included),
and imports between gemlib's packages point down the documented order."""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"

# Bottom to top, as docs/architecture.md draws it. A package may import only
# packages listed before it (and private top-level modules such as gemlib._sync).
LAYERS = [
    "gemlib.errors",
    "gemlib.model",
    "gemlib.prompts",
    "gemlib.llm",
    "gemlib.formats",
    "gemlib.validation",
    "gemlib.pipeline",
    "gemlib.classifier",
    "gemlib.stages",
    "gemlib.gem",
    "gemlib.analysis",
    "gemlib.synthesizer",
    "gemlib.hub",
    "gemlib.cli",
]


REFERENCE = re.compile(r"(gemlib(?:\.\w+)+):\w+")  # a registry's lazy "module:attribute"
IMPORTERS = {"importlib.import_module", "import_module", "__import__"}


def _modules() -> dict[str, Path]:
    found = {}
    for path in sorted((SRC / "gemlib").rglob("*.py")):
        parts = list(path.relative_to(SRC).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


MODULES = _modules()


def _package(module: str) -> str:
    return (
        module
        if module in MODULES and MODULES[module].name == "__init__.py"
        else module.rpartition(".")[0]
    )


def _imports(module: str) -> Iterator[str]:
    """Every gemlib module ``module`` imports, at any depth of its code (function bodies
    included), except under ``if TYPE_CHECKING:``, which never runs. A module reached by
    a string counts too: a registry's lazy ``"gemlib.x.y:NAME"``, and
    ``importlib.import_module("gemlib.x")`` or ``__import__`` with a literal name (a
    name built at run time cannot be seen)."""
    tree = ast.parse(MODULES[module].read_text())
    typing_only = {
        id(inner)
        for node in ast.walk(tree)
        if isinstance(node, ast.If) and ast.unparse(node.test).endswith("TYPE_CHECKING")
        for child in node.body
        for inner in ast.walk(child)
    }
    for node in ast.walk(tree):
        if id(node) in typing_only:
            continue
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            names = [named[1]] if (named := REFERENCE.fullmatch(node.value)) else []
        elif (
            isinstance(node, ast.Call)
            and ast.unparse(node.func) in IMPORTERS
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
        ):
            names = [node.args[0].value]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: resolve against this module's package
                anchor = _package(module).split(".")
                anchor = anchor[: len(anchor) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            # ``from pkg import sub`` imports the submodule when there is one
            names = [
                f"{base}.{a.name}" if f"{base}.{a.name}" in MODULES else base for a in node.names
            ]
        else:
            continue
        for name in names:
            while name and name not in MODULES:
                name = name.rpartition(".")[0]
            if name.startswith("gemlib"):
                yield name


GRAPH = {module: sorted(set(_imports(module)) - {module}) for module in MODULES}


def _cycle() -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(module: str) -> list[str] | None:
        state[module] = 1
        stack.append(module)
        for target in GRAPH[module]:
            if target == "gemlib" or _package(module) == target:
                continue  # the facade above everything; a module's own package init
            if state.get(target) == 1:
                return [*stack[stack.index(target) :], target]
            if target not in state and (found := visit(target)):
                return found
        stack.pop()
        state[module] = 2
        return None

    for module in MODULES:
        if module not in state and (found := visit(module)):
            return found
    return None


def _layer(module: str) -> int | None:
    for index, prefix in enumerate(LAYERS):
        if module == prefix or module.startswith(prefix + "."):
            return index
    return None


def test_no_import_cycle() -> None:
    cycle = _cycle()
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


def test_a_module_never_imports_its_own_package_facade_or_gemlib() -> None:
    wrong = [
        f"{module} imports {target}"
        for module, targets in GRAPH.items()
        for target in targets
        if module != "gemlib"
        and (target == "gemlib" or target == _package(module) != module)
        and MODULES[module].name not in ("__init__.py", "__main__.py")
    ]
    assert not wrong


def test_imports_point_down_the_layers() -> None:
    upward = []
    for module, targets in GRAPH.items():
        mine = _layer(module)
        for target in targets:
            theirs = _layer(target)
            if mine is not None and theirs is not None and theirs > mine:
                upward.append(f"{module} -> {target}")
    assert not upward, "imports pointing up:\n" + "\n".join(upward)


def test_every_module_is_in_a_layer() -> None:
    loose = [
        m
        for m in MODULES
        if _layer(m) is None and m != "gemlib" and not m.rpartition(".")[2].startswith("_")
    ]
    assert not loose, f"modules outside every layer (add them to LAYERS and docs): {loose}"


def test_the_runtime_never_imports_the_method() -> None:
    method = LAYERS.index("gemlib.gem")
    below = [
        f"{module} -> {target}"
        for module, targets in GRAPH.items()
        if (layer := _layer(module)) is not None and layer < method
        for target in targets
        if _layer(target) == method
    ]
    assert not below
