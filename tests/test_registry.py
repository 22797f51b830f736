"""The plug-in registry: built-in entries, lazy references, entry points, unknown names."""

from __future__ import annotations

import importlib.metadata
import logging
import sys
import textwrap
import threading
from pathlib import Path

import pytest

from gemlib._registry import Registry
from gemlib.errors import FormatError


def _dist(tmp_path: Path, group: str, entries: dict[str, str], modules: dict[str, str]) -> None:
    """Write a minimal installed distribution (dist-info + modules) onto ``tmp_path``."""
    info = tmp_path / "gemlib_test_plugin-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: gemlib-test-plugin\nVersion: 1.0\n"
    )
    lines = [f"[{group}]"] + [f"{name} = {value}" for name, value in entries.items()]
    (info / "entry_points.txt").write_text("\n".join(lines) + "\n")
    for name, source in modules.items():
        (tmp_path / f"{name}.py").write_text(textwrap.dedent(source))


def test_builtin_lazy_and_unknown() -> None:
    registry: Registry[object] = Registry("format", "gemlib.tests.none", FormatError)
    registry.register("plain", 42)
    registry.register_lazy("lazy", "json:dumps")
    assert registry.get("plain") == 42
    import json

    assert registry.get("lazy") is json.dumps
    assert registry.names() == ["lazy", "plain"]
    with pytest.raises(FormatError, match=r"unknown format 'nope' \(known: lazy, plain\)"):
        registry.get("nope")
    with pytest.raises(ValueError, match="already registered"):
        registry.register("plain", 1)
    registry.register("plain", 1, replace=True)
    assert registry.get("plain") == 1


def test_entry_points_found_and_broken_plugin_skipped(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    group = "gemlib.tests.registry"
    _dist(
        tmp_path,
        group,
        {
            "good": "good_plugin:VALUE",
            "broken": "broken_plugin:VALUE",
            "plain": "good_plugin:VALUE",
        },
        {
            "good_plugin": "VALUE = 'from a plug-in'\n",
            "broken_plugin": "raise RuntimeError('boom')\n",
        },
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    importlib.invalidate_caches()
    registry: Registry[str] = Registry("format", group, FormatError)
    registry.register("plain", "built in")
    with caplog.at_level(logging.WARNING, logger="gemlib"):
        assert registry.get("good") == "from a plug-in"
    assert "broken" not in registry.names()
    assert "skipped the format plug-in 'broken'" in caplog.text
    assert "boom" in caplog.text
    assert registry.get("plain") == "built in"  # gemlib's own entry wins
    assert "good" in registry
    assert "broken" not in registry
    sys.modules.pop("good_plugin", None)
    assert importlib.metadata.entry_points(group=group)  # the test's distribution was seen


def test_a_plugin_using_the_registry_while_it_imports_does_not_deadlock(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Fails on the old code: entry points were imported under the registry's lock, so a
    plug-in that registered or looked a name up at import time hung the first lookup
    (and with it `gemlib --help`)."""
    group = "gemlib.tests.reentrant"
    _dist(
        tmp_path,
        group,
        {"mine": "reentrant_plugin:VALUE"},
        {
            "reentrant_plugin": """
                from gemlib.formats.registry import FORMATS
                import gemlib_test_registry as holder
                registry = holder.REGISTRY
                registry.register("extra", "registered at import")
                VALUE = "mine, seeing " + ",".join(registry.names())
            """
        },
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    importlib.invalidate_caches()
    registry: Registry[str] = Registry("format", group, FormatError)
    registry.register("plain", "built in")
    holder = type(sys)("gemlib_test_registry")
    holder.REGISTRY = registry  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "gemlib_test_registry", holder)
    found: list[list[str]] = []
    reader = threading.Thread(target=lambda: found.append(registry.names()), daemon=True)
    reader.start()
    reader.join(timeout=20)
    sys.modules.pop("reentrant_plugin", None)
    assert not reader.is_alive(), "the registry deadlocked on a re-entrant plug-in"
    assert found == [["extra", "mine", "plain"]]
    assert registry.get("mine") == "mine, seeing extra,plain"


def test_a_broken_plugin_is_reported_without_secrets_and_may_not_exit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """Fails on the old code: the warning quoted the plug-in's error as written (an
    ``api_key``, a URL's password), and a plug-in calling ``sys.exit()`` at import
    ended the program at its first lookup."""
    group = "gemlib.tests.hostile"
    _dist(
        tmp_path,
        group,
        {"leaky": "leaky_plugin:VALUE", "exits": "exiting_plugin:VALUE", "ok": "fine_plugin:V"},
        {
            "leaky_plugin": """
                raise RuntimeError(
                    "cannot log in to https://alice:hunter2pass@example.invalid/v1 "
                    "with sk-proj-ABCDEFGHIJKLMNOPQRSTUVWXYZ012345"
                )
            """,
            "exiting_plugin": "import sys\nsys.exit('no config file')\n",
            "fine_plugin": "V = 'fine'\n",
        },
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    importlib.invalidate_caches()
    registry: Registry[str] = Registry("format", group, FormatError)
    with caplog.at_level(logging.WARNING, logger="gemlib"):
        assert registry.names() == ["ok"]
    for name in ("leaky_plugin", "exiting_plugin", "fine_plugin"):
        sys.modules.pop(name, None)
    assert "skipped the format plug-in 'leaky'" in caplog.text
    assert "skipped the format plug-in 'exits'" in caplog.text
    assert "no config file" in caplog.text
    assert "hunter2pass" not in caplog.text
    assert "ABCDEFGHIJKLMNOPQRSTUVWXYZ012345" not in caplog.text


def test_a_plugin_name_taken_by_gemlib_or_by_another_plugin_is_reported(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """Fails on the old code: a plug-in registering `openai`, or a second distribution
    using a name the first one took, was ignored without a word."""
    group = "gemlib.tests.twins"
    _dist(
        tmp_path,
        group,
        {"twin": "twin_one:VALUE", "plain": "twin_one:VALUE"},
        {"twin_one": "VALUE = 'one'\n", "twin_two": "VALUE = 'two'\n"},
    )
    other = tmp_path / "gemlib_other_plugin-1.0.dist-info"
    other.mkdir()
    (other / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: gemlib-other-plugin\nVersion: 1.0\n"
    )
    (other / "entry_points.txt").write_text(f"[{group}]\ntwin = twin_two:VALUE\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    importlib.invalidate_caches()
    registry: Registry[str] = Registry("format", group, FormatError)
    registry.register("plain", "built in")
    with caplog.at_level(logging.WARNING, logger="gemlib"):
        assert registry.names() == ["plain", "twin"]
    used = registry.get("twin")
    for name in ("twin_one", "twin_two"):
        sys.modules.pop(name, None)
    assert registry.get("plain") == "built in"
    assert (
        "ignored the format plug-in 'plain' from twin_one:VALUE: the name is taken by gemlib"
        in caplog.text
    )
    ignored = "twin_two:VALUE" if used == "one" else "twin_one:VALUE"
    assert f"ignored the format plug-in 'twin' from {ignored}: the name is taken by" in caplog.text


def test_a_preset_that_is_no_function_or_makes_no_pipeline_is_named(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Fails on the old code: a preset plug-in that is not callable raised a bare TypeError,
    and one returning a list of stages was handed back as if it were a Pipeline."""
    from gemlib import Pipeline, stage
    from gemlib.errors import PipelineError
    from gemlib.pipeline.presets import PRESETS

    @stage
    def shout(text: str) -> str:
        return text.upper()

    monkeypatch.setitem(PRESETS._entries, "shouting", lambda model: Pipeline([shout]))
    monkeypatch.setitem(PRESETS._entries, "number", 42)
    monkeypatch.setitem(PRESETS._entries, "stages", lambda model: [shout])
    made = Pipeline.preset("shouting", "any/model")
    assert isinstance(made, Pipeline)
    assert [s.name for s in made.stages] == ["shout"]
    with pytest.raises(PipelineError, match="the preset 'number' is 42, not a function"):
        Pipeline.preset("number", "any/model")
    with pytest.raises(PipelineError, match="the preset 'stages' made a list, not a Pipeline"):
        Pipeline.preset("stages", "any/model")
    with pytest.raises(PipelineError, match=r"unknown preset 'nope' \(known: .*gem.*\)"):
        Pipeline.preset("nope", "any/model")
