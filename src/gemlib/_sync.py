"""Running a coroutine to completion from synchronous code, even inside a running loop."""

from __future__ import annotations

import asyncio
import concurrent.futures
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


def run_sync(coroutine: Coroutine[Any, Any, T]) -> T:
    """``asyncio.run`` when no loop runs here; otherwise run it in a helper thread.

    The second case is Jupyter, whose cells execute inside a running loop.
    """
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coroutine)
    with concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="gemlib-sync") as pool:
        return pool.submit(asyncio.run, coroutine).result()
