"""The plug-in registry: built-in entries, lazy references, entry points, unknown names."""

from __future__ import annotations

import importlib.metadata
import logging
import sys
import textwrap
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
