"""The JIT's compile cache: object files keyed by IR hash, in memory and on disk.

The key is the sha256 of the unoptimised LLVM IR text, the target triple, the host CPU name and
features, and `COMPILER` (oi_compiler's and llvmlite's versions, this file's format version): the
same IR for the same machine and toolchain gives the same native code, so a hit skips optimisation
and code generation.

On disk (`$OI_CACHE_DIR`, else `~/.cache/oi_compiler/jit`) each entry is one file `<key>.oiobj`: a
magic line, the sha256 of the rest, then length-prefixed fields: the key, `COMPILER`, the object
file, the optimised IR and the caller's text (`meta`). Whatever is on disk is untrusted input, so:

- the directory is created 0700, and one owned by another user or writable by group or others is
  not used (one warning; everything compiles, without the disk level);
- an entry is opened without following links and without blocking, and read only if it is a
  regular file of at most `MAX_ENTRY_BYTES`;
- an entry is loaded only if its checksum holds and it names this key and this `COMPILER` (the
  checksum catches damage, the key binding catches an entry copied or renamed from another key).
  Anything else is a miss, never an error; the caller compiles and rewrites the entry;
- entries are written to a temporary file (`<key>.<random>.tmp`, created O_EXCL, 0600, not
  through a link) and renamed, so a reader never sees half an entry; `clear_cache` also removes
  temporaries a killed process left behind. A cache directory that cannot be written is not an
  error.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import secrets
import stat
import struct
import threading
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import llvmlite

from oi_compiler.version import __version__

FORMAT_VERSION = 3
COMPILER = f"oi_compiler {__version__}, llvmlite {llvmlite.__version__}, cache format {FORMAT_VERSION}"
MAX_ENTRY_BYTES = 1 << 28  # 256 MiB; a larger file is not one of ours
_MAGIC = b"OIJIT%d\n" % FORMAT_VERSION
_SUFFIX = ".oiobj"
_DIGEST = 32

_memory: dict[str, Any] = {}
_lock = threading.Lock()
_warned: set[str] = set()  # cache directories already reported as not private


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


def cache_key(*parts: str) -> str:
    """The sha256 of `parts` (the code's text, the host...) and `COMPILER`, each part ended by a NUL."""
    digest = hashlib.sha256()
    for part in (*parts, COMPILER):
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
    """The entry for `key`, or None when absent, unsafe to read, corrupt or not bound to `key`."""
    with _private_dir(create=False) as directory:
        if directory is not None:
            data = _read_regular_file(directory, key + _SUFFIX)
            return None if data is None else _decode(key, data)
    return None


def disk_put(key: str, entry: CacheEntry) -> None:
    """Write `entry` atomically; a failure to write leaves the cache as it was."""
    data = _encode(key, entry)
    if len(data) > MAX_ENTRY_BYTES:
        return
    with _private_dir(create=True) as directory:
        if directory is not None:
            write_private_file(directory, key + _SUFFIX, data, stem=key)


def write_private_file(directory: int, name: str, data: bytes, stem: str | None = None) -> bool:
    """Write `data` to `name` in the directory `directory` (a descriptor) atomically: a temporary
    file `<stem>.<random>.tmp` (O_EXCL, 0600, not through a link) renamed over it. False when it
    could not be written."""
    temporary = f"{stem or name}.{secrets.token_hex(8)}.tmp"
    try:  # O_EXCL: a file or link already at the temporary name fails the write
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC,
                     0o600, dir_fd=directory)  # fmt: skip
    except OSError:
        return False
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
        os.replace(temporary, name, src_dir_fd=directory, dst_dir_fd=directory)
        return True
    except OSError:
        with contextlib.suppress(OSError):
            os.unlink(temporary, dir_fd=directory)
        return False


def clear_cache() -> None:
    """Forget every compiled module: the in-memory table and the disk entries."""
    with _lock:
        _memory.clear()
    with _private_dir(create=False) as directory:
        if directory is None:
            return
        with contextlib.suppress(OSError):
            for name in os.listdir(directory):
                if name.endswith((_SUFFIX, ".tmp")):  # entries, and temporaries a killed writer left
                    with contextlib.suppress(OSError):
                        os.unlink(name, dir_fd=directory)


@contextlib.contextmanager
def _private_dir(create: bool, path: Path | None = None, nofollow: bool = False):
    """A descriptor of the cache directory (made 0700 if `create`), or None when it is absent,
    unusable, or not private: owned by another user or writable by group or others (warned once).
    `path`: another directory under the same rules (the tuning database's); `nofollow`: refuse it
    when its last component is a symbolic link."""
    path = cache_dir() if path is None else path
    try:
        if create:
            path.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC | (os.O_NOFOLLOW if nofollow else 0))
    except OSError:
        fd = None
    if fd is None:
        yield None
        return
    try:
        info = os.fstat(fd)
        private = info.st_uid == os.getuid() and not info.st_mode & 0o022
        if not private:
            with _lock:
                first = str(path) not in _warned
                _warned.add(str(path))
            if first:
                warnings.warn(f"compile cache {path} is owned by another user or writable by group or others; "
                              "compiling without the disk cache (chmod 700 it, or set OI_CACHE_DIR)",
                              RuntimeWarning, stacklevel=4)  # fmt: skip
        yield fd if private else None
    finally:
        os.close(fd)


private_dir = _private_dir  # for the other stores under the cache root (tuning/database.py)


def _read_regular_file(directory: int, name: str) -> bytes | None:
    """The file's bytes if it is a regular file (not a link, FIFO or device) of at most
    MAX_ENTRY_BYTES; None otherwise."""
    try:
        fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, dir_fd=directory)
    except OSError:
        return None
    try:
        with os.fdopen(fd, "rb") as file:
            info = os.fstat(file.fileno())
            if not stat.S_ISREG(info.st_mode) or info.st_size > MAX_ENTRY_BYTES:
                return None
            data = file.read(MAX_ENTRY_BYTES + 1)  # the file may have grown since fstat
    except OSError:
        return None
    return data if len(data) <= MAX_ENTRY_BYTES else None


read_private_file = _read_regular_file


def _encode(key: str, entry: CacheEntry) -> bytes:
    fields = (key.encode(), COMPILER.encode(), entry.object_code, entry.optimized_ir.encode(), entry.meta.encode())
    body = b"".join(struct.pack("<Q", len(field)) + field for field in fields)
    return _MAGIC + hashlib.sha256(body).digest() + body


def _decode(key: str, data: bytes) -> CacheEntry | None:
    """The entry in `data` if it is whole and was written for `key` by this `COMPILER`."""
    if not data.startswith(_MAGIC):
        return None
    digest, body = data[len(_MAGIC) : len(_MAGIC) + _DIGEST], data[len(_MAGIC) + _DIGEST :]
    if hashlib.sha256(body).digest() != digest:
        return None
    fields, offset = [], 0
    while offset + 8 <= len(body):
        (size,) = struct.unpack_from("<Q", body, offset)
        fields.append(body[offset + 8 : offset + 8 + size])
        offset += 8 + size
    if offset != len(body) or len(fields) != 5:
        return None
    bound_key, compiler, object_code, ir_text, meta = fields
    if bound_key != key.encode() or compiler != COMPILER.encode():
        return None
    try:
        return CacheEntry(object_code, ir_text.decode(), meta.decode())
    except UnicodeDecodeError:
        return None
