"""The JIT's compile cache: object files keyed by IR hash, in memory and on disk.

The key is the sha256 of the unoptimised LLVM IR text, the target triple, the host CPU name and
features, llvmlite's version and this file's format version: the same IR for the same machine
and toolchain gives the same native code, so a hit skips optimisation and code generation.

On disk (`$OI_CACHE_DIR`, else `~/.cache/oi_compiler/jit`) each entry is one file
`<key>.oiobj`: a magic line, the sha256 of the rest, then the object file, the optimised IR and the
caller's text (`meta`).
A file that is truncated, altered or from another format fails that check and is ignored (the
caller compiles and rewrites it); entries are written to a temporary file (`<key>*.tmp`) and
renamed, so a reader never sees half an entry; `clear_cache` also removes temporaries a killed
process left behind. A cache directory that cannot be written is not an error.
"""

from __future__ import annotations

import hashlib
import os
import struct
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import llvmlite

FORMAT_VERSION = 2
_MAGIC = b"OIJIT%d\n" % FORMAT_VERSION
_SUFFIX = ".oiobj"
_DIGEST = 32

_memory: dict[str, Any] = {}
_lock = threading.Lock()


@dataclass(frozen=True)
class CacheEntry:
    """What a disk entry holds: the native object file, the optimised IR it came from, and any
    text the caller keeps with it (the CPU executor's error sites)."""

    object_code: bytes
    optimized_ir: str
    meta: str = ""


def cache_dir() -> Path:
    configured = os.environ.get("OI_CACHE_DIR")
    return Path(configured) if configured else Path.home() / ".cache" / "oi_compiler" / "jit"


def cache_key(ir_text: str, triple: str, cpu: str, features: str) -> str:
    digest = hashlib.sha256()
    for part in (ir_text, triple, cpu, features, llvmlite.__version__, str(FORMAT_VERSION)):
        digest.update(part.encode())
        digest.update(b"\0")
    return digest.hexdigest()


def memory_get(key: str) -> Any | None:
    with _lock:
        return _memory.get(key)


def memory_put(key: str, value: Any) -> None:
    with _lock:
        _memory[key] = value


def disk_get(key: str) -> CacheEntry | None:
    """The entry for `key`, or None when absent or corrupt."""
    try:
        data = (cache_dir() / (key + _SUFFIX)).read_bytes()
    except OSError:
        return None
    return _decode(data)


def disk_put(key: str, entry: CacheEntry) -> None:
    """Write `entry` atomically; a failure to write leaves the cache as it was."""
    directory = cache_dir()
    try:
        directory.mkdir(parents=True, exist_ok=True)
        fd, temporary = tempfile.mkstemp(dir=directory, prefix=key, suffix=".tmp")
    except OSError:
        return
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(_encode(entry))
        os.replace(temporary, directory / (key + _SUFFIX))
    except OSError:
        Path(temporary).unlink(missing_ok=True)


def clear_cache() -> None:
    """Forget every compiled module: the in-memory table and the disk entries."""
    with _lock:
        _memory.clear()
    directory = cache_dir()
    if not directory.is_dir():
        return
    for pattern in ("*" + _SUFFIX, "*.tmp"):  # entries, and temporaries a killed writer left
        for path in directory.glob(pattern):
            path.unlink(missing_ok=True)


def _encode(entry: CacheEntry) -> bytes:
    ir_text = entry.optimized_ir.encode()
    body = (struct.pack("<Q", len(entry.object_code)) + entry.object_code
            + struct.pack("<Q", len(ir_text)) + ir_text + entry.meta.encode())  # fmt: skip
    return _MAGIC + hashlib.sha256(body).digest() + body


def _decode(data: bytes) -> CacheEntry | None:
    if not data.startswith(_MAGIC):
        return None
    digest, body = data[len(_MAGIC) : len(_MAGIC) + _DIGEST], data[len(_MAGIC) + _DIGEST :]
    if len(body) < 8 or hashlib.sha256(body).digest() != digest:
        return None
    (size,) = struct.unpack_from("<Q", body)
    if len(body) < 16 + size:
        return None
    (ir_size,) = struct.unpack_from("<Q", body, 8 + size)
    start = 16 + size
    try:
        return CacheEntry(body[8 : 8 + size], body[start : start + ir_size].decode(), body[start + ir_size :].decode())
    except UnicodeDecodeError:
        return None
