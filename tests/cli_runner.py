"""Run the `gemlib` command in this process (coverage counts it) or as a real subprocess."""

from __future__ import annotations

import contextlib
import io
import os
import subprocess
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path

Env = Mapping[str, str | None]


@contextlib.contextmanager
def _environment(changes: Env) -> Iterator[None]:
    """``os.environ`` with ``changes`` applied (``None`` removes a name), restored after."""
    saved = dict(os.environ)
    for name, value in changes.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


def gemlib(
    *args: str, cwd: Path, env: Env | None = None, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    """``gemlib ARGS`` through ``gemlib.cli.main`` in this process, run from ``cwd``.

    Standard output and error are captured, ``env`` changes the environment for
    the call only, ``stdin`` is what the command reads from standard input; the
    request cache is ``cwd/cache``, as for :func:`gemlib_process`.
    """
    from gemlib.cli import main

    out, err = io.StringIO(), io.StringIO()
    here, standard_input = os.getcwd(), sys.stdin
    changes = {"GEMLIB_CACHE_DIR": str(cwd / "cache"), **(env or {})}
    try:
        with (
            _environment(changes),
            contextlib.redirect_stdout(out),
            contextlib.redirect_stderr(err),
        ):
            os.chdir(cwd)
            if stdin is not None:
                sys.stdin = io.TextIOWrapper(io.BytesIO(stdin.encode()), encoding="utf-8")
            code = main(list(args))
    finally:
        os.chdir(here)
        sys.stdin = standard_input
    return subprocess.CompletedProcess(["gemlib", *args], code, out.getvalue(), err.getvalue())


def gemlib_process(
    *args: str, cwd: Path, env: Env | None = None, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    """``python -m gemlib.cli ARGS`` as a real subprocess: for the entry point itself."""
    environment = {**os.environ, "GEMLIB_CACHE_DIR": str(cwd / "cache")}
    for name, value in (env or {}).items():
        if value is None:
            environment.pop(name, None)
        else:
            environment[name] = value
    return subprocess.run(
        [sys.executable, "-m", "gemlib.cli", *args],
        cwd=cwd,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
        env=environment,
    )
