"""Memory that grows in place: address space reserved up front, backed by the OS on first touch.

A paged table's pool (`runtime/page_pool.py`) grows while the step holds pointers into it and
journals bytes by offset. Growing by allocating a larger array and copying would move every page
in use; instead the pool lives in one anonymous mapping of `MAP_NORESERVE` address space, larger
than it needs. The kernel gives it physical pages only when they are first written, so a
reservation costs address space, not memory, and a growth within it is a larger view of the
same mapping: no copy, no move. (vAttention does the same for KV caches on GPUs with CUDA's
virtual memory API: `cuMemAddressReserve` then `cuMemMap` per chunk.)

Address space is finite too (47 bits on x86-64, less under `ulimit -v`), and a program may hold
many pools. So the reservations together keep to a **budget**, a quarter of what the process may
map (at most 16 TiB), and each takes at most an eighth of what is left of it, never less than
what it needs: later pools get smaller reservations, and one that outgrows its reservation moves
once into a new one (`PagePool._grow_pool`). A mapping the OS refuses is halved until it fits
what is needed. Without anonymous mappings (not Linux), a reservation is a plain zeroed array of
what is needed.
"""

from __future__ import annotations

import mmap
import os
import resource
import sys
import weakref

import numpy as np

_LINUX = sys.platform.startswith("linux")
_MAP_NORESERVE = getattr(mmap, "MAP_NORESERVE", 0x4000 if _LINUX else 0)  # (Python < 3.12 lacks the name)
_ANONYMOUS = hasattr(mmap, "MAP_ANONYMOUS") and hasattr(mmap, "MAP_PRIVATE")
_MOST = 1 << 44  # 16 TiB: the budget where the address space is not limited

_held = 0  # bytes of address space the live reservations hold


def physical_memory() -> int:
    """Bytes of memory the machine has (1 GiB when the platform does not say)."""
    try:
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (AttributeError, OSError, ValueError):
        return 1 << 30


def budget() -> int:
    """Address space all reservations together may hold: a quarter of what the process may map."""
    try:
        soft = resource.getrlimit(resource.RLIMIT_AS)[0]
    except (OSError, ValueError):
        soft = resource.RLIM_INFINITY
    return min(_MOST, soft // 4) if soft != resource.RLIM_INFINITY else _MOST


def _release(nbytes: int) -> None:
    global _held
    _held -= nbytes


def _mapping(nbytes: int) -> np.ndarray | None:
    """`nbytes` of zeroed, writable, lazily backed memory as bytes (None: refused)."""
    try:
        flags = mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS | _MAP_NORESERVE
        region = mmap.mmap(-1, max(nbytes, 1), flags=flags, prot=mmap.PROT_READ | mmap.PROT_WRITE)
    except (OSError, OverflowError, ValueError, MemoryError):
        return None
    return np.frombuffer(region, np.uint8)  # (the array keeps the mapping alive)


def reserve(need: int, want: int) -> np.ndarray | None:
    """Zeroed bytes, at least `need` and up to `want` as the budget allows (the OS backs only what
    is written); None: not even `need` could be had."""
    global _held
    if not _ANONYMOUS:
        try:
            return np.zeros(need, np.uint8)
        except (MemoryError, ValueError):
            return None
    size = max(need, min(want, (budget() - _held) // 8))
    while True:
        raw = _mapping(size) if size < 1 << 62 else None
        if raw is not None:
            _held += size
            weakref.finalize(raw.base.obj, _release, size)  # the mapping, once no array holds it
            return raw[:size]
        if size <= need:
            return None
        size = max(need, size // 2)
