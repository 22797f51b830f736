"""Start the loopback fake OpenAI server (tests/fake_openai.py) in its own process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.request
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

    def served_seconds(self) -> float:
        """The sum of the latencies of every reply so far (the work a run waited on)."""
        with urllib.request.urlopen(self.api_base + "/stats") as reply:  # loopback only
            return float(json.load(reply)["served_seconds"])

    def cpu_seconds(self) -> float:
        """CPU time the server process has used so far (user + system)."""
        fields = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@contextmanager
def fake_server(
    latency: float, *, teacher: bool = False, shape: str = "fixed", sigma: float = 1.0
) -> Iterator[Server]:
    """Run a fake server answering every request after ``latency`` s, in its own process.

    With ``teacher`` it answers every GEM prompt as the canned teacher of the tests.
    ``shape="lognormal"`` makes latency heavy-tailed (mean ``latency`` per 1000
    characters of reply, spread ``sigma``) instead of fixed.
    """
    command = [sys.executable, str(FAKE), "--latency", str(latency), "--shape", shape]
    command += ["--sigma", str(sigma), *(["--teacher"] if teacher else [])]
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        port = int(proc.stdout.readline())
        yield Server(f"http://127.0.0.1:{port}/v1", proc.pid)
    finally:
        proc.kill()
        proc.wait()
