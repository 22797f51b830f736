"""Peak memory of the current process, as the benchmarks report it."""

from __future__ import annotations

import resource
from pathlib import Path


def peak_rss_mib() -> float:
    """This process's peak resident memory in MiB.

    Read from ``VmHWM`` rather than ``ru_maxrss``: Linux carries ``ru_maxrss``
    across ``exec`` from the forking parent, so a benchmark's child process
    would report its parent's peak when that was larger.
    """
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
