"""Shared test set-up: offline switches first, then fixtures."""

from __future__ import annotations

import os
import signal
import tempfile

# Nothing in the tests may reach beyond loopback; these stop litellm and the HF
# libraries from trying (see shared/ENVIRONMENT.md).
for _key, _value in {
    "LITELLM_LOCAL_MODEL_COST_MAP": "True",
    "HF_HUB_OFFLINE": "1",
    "HF_DATASETS_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "NO_PROXY": "127.0.0.1,localhost,::1",
}.items():
    os.environ.setdefault(_key, _value)

# The request cache defaults to ~/.cache; tests keep theirs in a throwaway folder.
os.environ.setdefault("GEMLIB_CACHE_DIR", tempfile.mkdtemp(prefix="gemlib-test-cache-"))

# Tests stop gemlib's processes with SIGINT. A shell that starts the tests with `&` (a CI
# runner's, say) leaves SIGINT ignored, and children inherit that: Ctrl-C would never reach
# them. A handled SIGINT is reset to the default in a child, so handle it here.
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)


def third_party(module: str) -> object:
    """Import a test-data package; skip without it, unless the run requires it (nox does)."""
    import importlib

    import pytest

    try:
        return importlib.import_module(module)
    except ImportError:
        if os.environ.get("GEMLIB_REQUIRE_THIRD_PARTY"):
            raise
        pytest.skip(f"{module} is not installed (nox -s tests installs it)")


def pytest_collection_modifyitems(config: object, items: list[object]) -> None:
    """Browser tests run only when asked for (`-m browser`, as `nox -s browser` does)."""
    import pytest

    markexpr = getattr(getattr(config, "option", None), "markexpr", "") or ""
    if "browser" in markexpr and "not browser" not in markexpr:
        return
    skip = pytest.mark.skip(reason="a browser test: run with -m browser (nox -s browser)")
    for item in items:
        if "browser" in getattr(item, "keywords", {}):
            item.add_marker(skip)  # type: ignore[attr-defined]
