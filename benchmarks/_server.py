"""Start the loopback fake OpenAI server (tests/fake_openai.py) in its own process."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

FAKE = Path(__file__).parents[1] / "tests" / "fake_openai.py"


@dataclass(frozen=True)
class Server:
    """A running fake server: where to send requests, and its process."""

    api_base: str
    pid: int

    def cpu_seconds(self) -> float:
        """CPU time the server process has used so far (user + system)."""
        fields = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@contextmanager
def fake_server(latency: float, *, teacher: bool = False) -> Iterator[Server]:
    """Run a fake server answering every request after ``latency`` s, in its own process.

    With ``teacher`` it answers every GEM prompt as the canned teacher of the tests.
    """
    command = [sys.executable, str(FAKE), "--latency", str(latency)]
    proc = subprocess.Popen(
        [*command, "--teacher"] if teacher else command, stdout=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout is not None
        port = int(proc.stdout.readline())
        yield Server(f"http://127.0.0.1:{port}/v1", proc.pid)
    finally:
        proc.kill()
        proc.wait()
