"""The tuning database: one JSON file per tuned (nest, grid, target, machine), so a tuned plan is
reused without searching.

It lives in `tuning/` under the compile cache's directory (`$OI_CACHE_DIR`, else
`~/.cache/oi_compiler/jit`), or in the directory `oi.tune(db=...)`/`oi-tune --db` names, under the
compile cache's rules (backend/compile_cache.py): created 0700, not used when owned by another user
or writable by group or others, not used through a symbolic link, entries read only as bounded
regular files and written atomically. An entry names its key and `COMPILER`; one that does not
parse or names another key is a miss (the search runs and rewrites it), never an error.

The key is the sha256 of: the nest (the IR of its unscheduled plan: arrays, shapes, element
types, layouts, logic) and the function's name and arguments, the grid (every point, in order),
the target (the plan's target, the LLVM triple and the host CPU's name and features) and the
machine (the CPU model and the core count), plus `COMPILER`.
"""

from __future__ import annotations

import json
import os
import platform
from pathlib import Path
from typing import Any

from oi_compiler.backend import compile_cache

FORMAT = 1
_SUFFIX = ".json"
MAX_ENTRY_BYTES = 1 << 24


def database_dir(db: str | os.PathLike | None = None) -> Path:
    return Path(db) if db is not None else compile_cache.cache_dir() / "tuning"


def machine_text() -> str:
    """The CPU model and the core count."""
    model = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return f"{model}; {os.cpu_count()} cores"


def target_text(plan_target: str) -> str:
    """The plan's target and the host the JIT compiles for (triple, CPU name, features)."""
    from oi_compiler.backend.jit import host_target

    host = host_target()
    return f"{plan_target}; {host.triple}; {host.cpu}; {host.features}"


def tuning_key(nest: str, grid: str, target: str, machine: str) -> str:
    return compile_cache.cache_key("oi-tune", str(FORMAT), nest, grid, target, machine)


def load(key: str, db: str | os.PathLike | None = None) -> dict[str, Any] | None:
    """The entry stored for `key`, or None (absent, unreadable, damaged, another key's)."""
    with compile_cache.private_dir(False, database_dir(db), nofollow=True) as directory:
        data = None if directory is None else compile_cache.read_private_file(directory, key + _SUFFIX)
    if data is None or len(data) > MAX_ENTRY_BYTES:
        return None
    try:
        entry = json.loads(data)
    except (ValueError, RecursionError):
        return None
    if not isinstance(entry, dict) or entry.get("key") != key or entry.get("compiler") != compile_cache.COMPILER:
        return None
    winner = entry.get("winner")
    if not isinstance(winner, dict) or not isinstance(winner.get("index"), int):
        return None
    return entry


def store(key: str, entry: dict[str, Any], db: str | os.PathLike | None = None) -> Path | None:
    """Write `entry` for `key`; the file's path, or None when the database cannot be written."""
    data = json.dumps({"key": key, "compiler": compile_cache.COMPILER, "format": FORMAT, **entry}, indent=1).encode()
    if len(data) > MAX_ENTRY_BYTES:
        return None
    path = database_dir(db)
    with compile_cache.private_dir(True, path, nofollow=True) as directory:
        if directory is not None and compile_cache.write_private_file(directory, key + _SUFFIX, data, stem=key):
            return path / (key + _SUFFIX)
    return None
