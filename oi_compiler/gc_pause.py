"""`paused_collection()`: Python's cyclic garbage collector held off while the compiler runs.

Lowering builds and drops hundreds of thousands of IR objects (ops, uses, attributes), all of them
in reference cycles (an op and its block point at each other), so the collector runs its
generation scans over and over while a pass works, each scan walking every live op of the module:
on the 32-layer unrolled decoder the passes spent 17% of their time in those scans. The compile
entry points (`pipeline.run_stages`, `passes.run_passes`, `backend.jit.compile_module`) pause it
instead; the cycles a compile leaves are collected after it, with everything else (a compile of
that decoder peaked 9 MiB higher). Nested and concurrent compiles share the pause: the collector
runs again when the last one ends, if it ran before the first began.
"""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator
from contextlib import contextmanager

_lock = threading.Lock()
_depth = 0
_was_enabled = False


@contextmanager
def paused_collection() -> Iterator[None]:
    global _depth, _was_enabled
    with _lock:
        if _depth == 0:
            _was_enabled = gc.isenabled()
            gc.disable()
        _depth += 1
    try:
        yield
    finally:
        with _lock:
            _depth -= 1
            if _depth == 0 and _was_enabled:
                gc.enable()
