"""Start the loopback fake OpenAI server (tests/fake_openai.py) in its own process."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

FAKE = Path(__file__).parents[1] / "tests" / "fake_openai.py"


@contextmanager
def fake_server(latency: float, *, teacher: bool = False) -> Iterator[str]:
    """Yield the ``api_base`` of a fake server answering every request after ``latency`` s.

    With ``teacher`` it answers every GEM prompt as the canned teacher of the tests.
    """
    command = [sys.executable, str(FAKE), "--latency", str(latency)]
    proc = subprocess.Popen(
        [*command, "--teacher"] if teacher else command, stdout=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout is not None
        port = int(proc.stdout.readline())
        yield f"http://127.0.0.1:{port}/v1"
    finally:
        proc.kill()
        proc.wait()
