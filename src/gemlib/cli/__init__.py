"""The `gemlib` command line."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
import threading
from collections.abc import Sequence
from typing import Any

from gemlib._version import __version__
from gemlib.cli import datasets, running, training
from gemlib.cli._shared import EXIT_SIGINT, EXIT_SIGTERM, EXIT_STOPPED
from gemlib.errors import GemlibError

__all__ = ["build_parser", "main"]


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the `gemlib` command."""
    parser = argparse.ArgumentParser(
        prog="gemlib",
        description="Turn text corpora into validated multi-turn tool-use trajectories.",
    )
    parser.add_argument("--version", action="version", version=f"gemlib {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress")
    commands = parser.add_subparsers(dest="command", required=True)
    running.add_commands(commands)
    training.add_commands(commands)
    datasets.add_commands(commands)
    return parser


def _terminate_as_interrupt(signals: list[int]) -> Any:
    """A SIGTERM handler that stops the command the way Ctrl-C does (and notes it)."""

    def handler(signum: int, frame: object) -> None:
        signals.append(signum)
        if callable(signal.getsignal(signal.SIGINT)):
            signal.raise_signal(signal.SIGINT)  # asyncio's own SIGINT handling: a clean stop
            return
        # SIGINT ignored, as in a job started with `&` by a shell: raising it does nothing,
        # and asyncio has no Ctrl-C handler. Raised here, inside whichever task runs, the
        # interrupt would also end that task with it (asyncio then prints its traceback);
        # raised by the loop between callbacks, it stops the loop, whose tasks are then
        # cancelled the clean way.
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # no loop runs: nothing to unwind but this thread
            raise KeyboardInterrupt from None
        loop.call_soon_threadsafe(_interrupt)  # threadsafe: wakes a loop waiting for I/O

    return handler


def _interrupt() -> None:
    raise KeyboardInterrupt


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `gemlib` command; returns the exit code.

    0: done. 1: ``gemlib validate`` found failing trajectories. 2: refused or
    stopped (bad settings, model unreachable or refusing the key, too many
    failures, an unusable run directory or cache). 3: the run went through the
    corpus but left items for retry (rerun to retry them). 130 / 143: stopped
    by Ctrl-C (SIGINT) / SIGTERM, finished items kept. Usage errors, ``--help``
    and ``--version`` return argparse's code (2 or 0) instead of raising
    ``SystemExit``. Called in process, it leaves nothing behind: its log
    handler, log level and SIGTERM handler are removed when it returns.
    """
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exc:  # argparse has printed the usage error, help or version
        return 0 if exc.code is None else exc.code if isinstance(exc.code, int) else EXIT_STOPPED
    root = logging.getLogger()
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO if args.verbose else logging.WARNING)
    terminated: list[int] = []
    previous = None
    in_main_thread = threading.current_thread() is threading.main_thread()
    if in_main_thread and signal.getsignal(signal.SIGTERM) is signal.SIG_DFL:
        previous = signal.signal(signal.SIGTERM, _terminate_as_interrupt(terminated))
    try:
        code: int = args.handler(args)
    except (GemlibError, FileNotFoundError) as exc:
        print(f"gemlib: error: {exc}", file=sys.stderr)
        return EXIT_STOPPED
    except BrokenPipeError:  # output piped into `head` and the like
        sys.stderr.close()
        return 0
    except KeyboardInterrupt:
        print(
            "gemlib: interrupted; finished items are kept, rerun the command to resume",
            file=sys.stderr,
        )
        return EXIT_SIGTERM if terminated else EXIT_SIGINT
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
        root.removeHandler(handler)
        root.setLevel(level)
    return code
