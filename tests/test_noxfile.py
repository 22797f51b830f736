"""`nox -s tests` off Debian: the tests on Debian's python3.11-doc skip with the reason.

Before (checked): the tests session always ran `apt-get download`, which fails on
any other system, and the real-text tests failed instead of skipping without it.
"""

from __future__ import annotations

import functools
import importlib.util
from pathlib import Path
from typing import Any

import pytest

import real_text

ROOT = Path(__file__).parents[1]


class Session:
    """Records what the noxfile asks of a nox session."""

    def __init__(self) -> None:
        self.commands: list[tuple[Any, ...]] = []
        self.warnings: list[str] = []
        self.installs: list[tuple[Any, ...]] = []
        self.envs: list[dict[str, str]] = []
        self.posargs: list[str] = []

    def run(self, *args: Any, **kwargs: Any) -> None:
        self.commands.append(args)
        self.envs.append(kwargs.get("env") or {})

    def install(self, *args: Any, **kwargs: Any) -> None:
        self.installs.append(args)

    def warn(self, message: str) -> None:
        self.warnings.append(message)

    def error(self, message: str) -> None:
        raise RuntimeError(message)


@functools.cache  # nox registers sessions on import, once
def _noxfile() -> Any:
    pytest.importorskip("nox")
    spec = importlib.util.spec_from_file_location("noxfile_under_test", ROOT / "noxfile.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_without_apt_the_python_docs_are_skipped_with_the_reason(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    noxfile = _noxfile()
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("GEMLIB_REQUIRE_PYTHON_DOCS", raising=False)
    monkeypatch.setattr(noxfile.shutil, "which", lambda name: None)
    session = Session()
    assert noxfile.python_docs(session) == {}
    assert session.commands == [], "nothing is downloaded"
    assert session.warnings == [
        "python3.11-doc is a Debian package and this system has no apt-get or dpkg-deb: "
        "the tests on the Python documentation will skip"
    ]
    monkeypatch.setenv("GEMLIB_REQUIRE_PYTHON_DOCS", "1")  # as CI sets it
    with pytest.raises(RuntimeError, match="GEMLIB_REQUIRE_PYTHON_DOCS is set"):
        noxfile.python_docs(Session())


def test_with_apt_the_docs_are_unpacked_and_then_required(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    noxfile = _noxfile()
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(noxfile.shutil, "which", lambda name: f"/usr/bin/{name}")
    session = Session()
    env = noxfile.python_docs(session)
    assert "apt-get download python3.11-doc" in session.commands[0][-1]
    assert env["GEMLIB_REQUIRE_PYTHON_DOCS"] == "1"
    assert env["GEMLIB_PYTHON_DOCS"].endswith("usr/share/doc/python3.11/html/_sources")


def test_real_text_tests_skip_unless_the_docs_are_required(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(real_text, "PYTHON_DOCS", tmp_path / "nowhere")
    monkeypatch.setenv("GEMLIB_REQUIRE_THIRD_PARTY", "1")  # nox sets it for bfcl and tau2
    monkeypatch.delenv("GEMLIB_REQUIRE_PYTHON_DOCS", raising=False)
    with pytest.raises(pytest.skip.Exception, match="it is a Debian package"):
        real_text._python_docs()
    monkeypatch.setenv("GEMLIB_REQUIRE_PYTHON_DOCS", "1")
    with pytest.raises(FileNotFoundError):
        real_text._python_docs()


@pytest.mark.parametrize("name", ["tests", "faults"])
def test_the_test_sessions_install_every_plug_in_package_and_require_it(
    name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The plug-in tests skip without their packages, except where nox installed them."""
    noxfile = _noxfile()
    packages = sorted(
        str(folder.relative_to(ROOT))
        for folder in (ROOT / "tests" / "plugins").iterdir()
        if (folder / "pyproject.toml").is_file()
    )
    assert "tests/plugins/gemlib-example-backend" in packages
    assert sorted(noxfile.TEST_PLUGINS) == packages
    monkeypatch.setattr(noxfile, "python_docs", lambda session: {})
    session = Session()
    getattr(noxfile, name)(session)
    assert ("--no-deps", *noxfile.TEST_PLUGINS) in session.installs
    runs = zip(session.commands, session.envs, strict=True)
    pytest_runs = [env for args, env in runs if args[0] == "pytest"]
    assert pytest_runs
    assert all(env.get("GEMLIB_REQUIRE_PLUGINS") == "1" for env in pytest_runs)
