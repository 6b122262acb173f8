"""Arrays that grow in place: address space reserved up front, memory committed on first touch.

A paged table's pool (`runtime/page_pool.py`) grows while the step holds pointers into it and
journals bytes by offset. Growing by allocating a larger array and copying would move every page
in use; instead the pool lives in one anonymous mapping of `MAP_NORESERVE` address space, as
large as the machine's memory (or what the pool first needs, if larger). The kernel gives it
physical pages only when they are first written, so a reservation costs address space, not memory,
and a growth within it is a larger view of the same mapping: no copy, no move. (vAttention does
the same for KV caches on GPUs with CUDA's virtual memory API: `cuMemAddressReserve` then
`cuMemMap` per chunk.)

Where the address space cannot be had (a `ulimit -v`, a 32-bit build, strict overcommit), the
reservation is halved until it fits what is asked for; a growth past a reservation takes a new
one twice as large and copies into it, the one case that moves memory.
"""

from __future__ import annotations

import math
import mmap
import os

import numpy as np

_MAP_NORESERVE = getattr(mmap, "MAP_NORESERVE", 0x4000 if os.uname().sysname == "Linux" else 0)


def physical_memory() -> int:
    """Bytes of memory the machine has (1 GiB when the platform does not say)."""
    try:
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (AttributeError, OSError, ValueError):
        return 1 << 30


def _mapping(nbytes: int) -> np.ndarray | None:
    """`nbytes` of zeroed, writable, lazily committed memory as bytes (None: refused)."""
    try:
        flags = mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS | _MAP_NORESERVE
        region = mmap.mmap(-1, max(nbytes, 1), flags=flags, prot=mmap.PROT_READ | mmap.PROT_WRITE)
    except (OSError, OverflowError, ValueError, MemoryError):
        return None
    return np.frombuffer(region, np.uint8)  # (the array keeps the mapping alive)


def reserve(rows: int, row_shape: tuple[int, ...], dtype: np.dtype, *, want: int = 0) -> np.ndarray | None:
    """An array of at least `rows` rows of `row_shape`, reserving room for `want` rows if the
    address space allows (halving down to `rows` if not); zero-filled. None: not even `rows` fit."""
    dtype = np.dtype(dtype)
    row_bytes = dtype.itemsize * math.prod(row_shape)
    count = max(rows, want, 1)
    if row_bytes == 0:  # entries of no elements take no memory
        return np.zeros((count, *row_shape), dtype)
    while True:
        raw = _mapping(count * row_bytes) if count * row_bytes < 1 << 62 else None
        if raw is not None:
            return raw[: count * row_bytes].view(dtype).reshape(count, *row_shape)
        if count <= max(rows, 1):
            return None
        count = max(rows, count // 2)
