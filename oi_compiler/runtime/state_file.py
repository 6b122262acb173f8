"""Executor checkpoints: `exe.save_state(path)` and `exe.load_state(path)`.

A state file is a zip archive (numpy's `.npz` layout, no pickles) holding:

- `header` — JSON: the format name and version, a fingerprint of the graph's
  declarations (names, memory kinds, dtypes, resolved shapes, table indices,
  `@fixed`/`@auto_dim`), the step count, and a description of each stored value;
- one array per stored value, as raw unsigned integers of the element's width
  (so bf16, f8, i4 and u4 survive without pickling), restored by the header's dtype.

It stores every persistent variable (plain values; tables as their sizes, entry
keys and stacked entries; `@auto_dim` counts and tensors) and every
non-persistent buffer the executor holds (upstream keeps those across steps,
so a restored executor continues bit-identically). Names sharing one buffer
(a `transfer` alias) are stored once and shared again on load.

Saving writes a temporary file beside the target (`.NAME.tmp-PID-RANDOM`), flushes it
to disk and renames it over the target, so a crash leaves either the old file or the
new one; a save first removes the temporaries of its target left by dead processes.
It refuses a target that exists and is not a regular file (a symlink, FIFO, device,
directory). Loading reads and checks everything before changing anything: a corrupt
file, a file from another graph, values that break a declaration, or sizes whose
dense tensors would not fit in memory raise `StateError` and leave the executor as
it was; an `.npy` member is read only when its header's size matches the member's.
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import os
import re
import secrets
import stat
import struct
import zipfile
import zlib
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from oi_compiler.dialects.oi import CacheReadOp
from oi_compiler.dtypes import DTYPE_NAMES, dtype_of_array, numpy_dtype
from oi_compiler.errors import StateError
from oi_compiler.runtime.tables import AutoDimStorage, PersistentStore, PlainStorage, TableStorage, frozen, make_storage

if TYPE_CHECKING:
    from oi_compiler.runtime.executor import Executor

FORMAT = "oi-executor-state"
# What zipfile, numpy and json raise on a damaged archive (a flipped flag bit asks for an
# unsupported compression or encryption: NotImplementedError, RuntimeError).
_UNREADABLE = (
    OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile, UnicodeDecodeError,
    NotImplementedError, RuntimeError, zlib.error, struct.error,
)  # fmt: skip
VERSION = 1


def graph_fingerprint(exe: Executor) -> str:
    bound = exe.bound
    decls = []
    for name, var in sorted(bound.decls.items()):
        decls.append([
            name, var.memory, var.dtype, list(bound.shapes[name]), var.index_names,
            var.auto_dim_names, sorted(var.fixed_sizes.items()), var.table is not None,
        ])  # fmt: skip
    return hashlib.sha256(json.dumps(decls, sort_keys=True).encode()).hexdigest()


# --- saving ------------------------------------------------------------------------------


class _Arrays:
    """Arrays to store, named `a0, a1, ...`, each as raw unsigned integers of its width."""

    def __init__(self) -> None:
        self.arrays: dict[str, np.ndarray] = {}

    def add(self, array: np.ndarray) -> dict:
        key = f"a{len(self.arrays)}"
        dtype = dtype_of_array(array.dtype)
        if dtype is None:
            raise StateError(f"cannot store an array of dtype {array.dtype}")
        raw = np.ascontiguousarray(array).view(f"u{array.dtype.itemsize}")
        self.arrays[key] = raw
        return {"array": key, "dtype": dtype, "shape": list(array.shape)}


def save_state(exe: Executor, path: Path) -> Path:
    arrays = _Arrays()
    persistent = {name: _describe_storage(exe.store[name], arrays) for name in exe.store}
    by_buffer: dict[int, dict] = {}
    values = {}
    for name, buffer in exe.values.items():
        if id(buffer) not in by_buffer:
            by_buffer[id(buffer)] = arrays.add(buffer)
        values[name] = by_buffer[id(buffer)]
    header = {
        "format": FORMAT,
        "version": VERSION,
        "graph": graph_fingerprint(exe),
        "steps": exe.steps,
        "persistent": persistent,
        "values": values,
    }
    _write_atomically(path, header, arrays.arrays)
    return path


def _describe_storage(storage, arrays: _Arrays) -> dict:
    if isinstance(storage, PlainStorage):
        return {"kind": "plain", "value": None if storage.value is None else arrays.add(storage.value)}
    if isinstance(storage, AutoDimStorage):
        value = None if storage.value is None else arrays.add(storage.value)
        return {"kind": "auto_dim", "counts": list(storage.counts), "value": value}
    keys = sorted(storage.entries)
    entries = None
    if keys:
        entries = arrays.add(np.stack([storage.entries[k] for k in keys]))
    return {"kind": "table", "sizes": list(storage.sizes), "keys": [list(k) for k in keys], "entries": entries}


def _write_atomically(path: Path, header: dict, arrays: dict[str, np.ndarray]) -> None:
    path = Path(path)
    try:
        mode = os.lstat(path).st_mode
    except FileNotFoundError:
        mode = None
    if mode is not None and not stat.S_ISREG(mode):
        raise StateError("cannot write state: the target exists and is not a regular file", subject=str(path))
    prefix = f".{path.name}.tmp-"
    _remove_stale_temporaries(path.parent, prefix)
    tmp = path.parent / f"{prefix}{os.getpid()}-{secrets.token_hex(8)}"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as f:
            buffer = io.BytesIO()
            np.savez(buffer, header=np.frombuffer(json.dumps(header).encode(), dtype=np.uint8), **arrays)
            f.write(buffer.getvalue())
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _remove_stale_temporaries(directory: Path, prefix: str) -> None:
    """Remove `PREFIX<pid>-<hex>` files whose process is gone (a save killed midway)."""
    pattern = re.compile(re.escape(prefix) + r"([0-9]+)-[0-9a-f]+\Z")
    try:
        names = os.listdir(directory)
    except OSError:
        return  # the save itself reports an unusable directory
    for name in names:
        match = pattern.match(name)
        if match and not _alive(int(match.group(1))):
            try:
                os.unlink(directory / name)
            except OSError:
                pass


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (OSError, OverflowError):  # another user's process (EPERM), or no pid at all: leave it
        pass
    return True


# --- loading -----------------------------------------------------------------------------


def load_state(exe: Executor, path: Path) -> None:
    header, arrays = _read(path)
    if header.get("format") != FORMAT or header.get("version") != VERSION:
        raise StateError(f"not an oi executor state (version {VERSION})")
    if header.get("graph") != graph_fingerprint(exe):
        raise StateError("saved for a different graph (its declarations differ)")
    try:
        store, values = _rebuild(exe, header, arrays)
        steps = header["steps"]
        _expect(type(steps) is int and steps >= 0, f"bad step count {steps!r}")
    except StateError:
        raise
    except (KeyError, TypeError, ValueError, IndexError, AttributeError) as e:
        raise StateError(f"malformed state file: {e!r}") from None
    exe.restore(store, values, steps)


def memory_limit() -> int:
    """The most bytes a loaded state may ask for (its members, its tables and `@auto_dim`
    tensors when dense): the machine's physical memory."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, ValueError, OSError):  # no sysconf
        return 1 << 40


def _read(path: Path) -> tuple[dict, dict[str, np.ndarray]]:
    try:
        with zipfile.ZipFile(path) as archive:
            arrays, budget = {}, memory_limit()
            for info in archive.infolist():
                budget -= info.file_size
                if budget < 0:
                    raise ValueError("its members are larger than this machine's memory")
                with archive.open(info) as member:
                    arrays[info.filename.removesuffix(".npy")] = _read_npy(member, info.file_size)
        header = json.loads(arrays.pop("header").tobytes().decode())
    except FileNotFoundError:
        raise StateError("no such state file") from None
    except _UNREADABLE as e:
        raise StateError(f"not a readable state file: {e}") from None
    if not isinstance(header, dict):
        raise StateError("malformed state file header")
    return header, arrays


def _read_npy(member, size: int) -> np.ndarray:
    """A `.npy` member of `size` bytes, read only if its header's shape and dtype fill exactly the
    rest (numpy allocates what a header claims before it finds the data short)."""
    version = np.lib.format.read_magic(member)
    readers = {(1, 0): np.lib.format.read_array_header_1_0, (2, 0): np.lib.format.read_array_header_2_0}
    if version not in readers:
        raise ValueError(f"unexpected .npy version {version}")
    try:  # numpy evaluates the header's dict literal: anything it raises is a malformed header
        shape, fortran, dtype = readers[version](member)
    except Exception as e:  # noqa: BLE001 - TypeError, tokenize.TokenError, SyntaxError, ValueError...
        raise ValueError(f"a malformed .npy header ({type(e).__name__})") from None
    data = size - member.tell()
    if dtype.hasobject or math.prod(shape) * dtype.itemsize != data:
        raise ValueError(f"an array header claims {list(shape)} x {dtype}, its member holds {data} bytes")
    return np.frombuffer(member.read(data), dtype).reshape(shape, order="F" if fortran else "C")


def _array(desc: dict, arrays: dict[str, np.ndarray]) -> np.ndarray:
    dtype = desc["dtype"]
    if dtype not in DTYPE_NAMES:
        raise StateError(f"unknown dtype {dtype!r} in state file")
    raw = arrays[desc["array"]]
    target = numpy_dtype(dtype)
    if raw.dtype != np.dtype(f"u{target.itemsize}"):
        raise StateError(f"array {desc['array']} has the wrong width for {dtype}")
    shape = [_count(d, f"array {desc['array']}: dim") for d in desc["shape"]]
    return raw.view(target).reshape(shape).copy()


def _expect(condition: bool, message: str) -> None:
    if not condition:
        raise StateError(message)


def _count(value, what: str) -> int:
    """`value` if it is an integer >= 0 (not a bool, a float, NaN or Infinity)."""
    _expect(type(value) is int and value >= 0, f"{what} {value!r} is not an integer >= 0")
    return value


def _rebuild(exe: Executor, header: dict, arrays: dict[str, np.ndarray]):
    bound = exe.bound
    saved = header["persistent"]
    _expect(set(saved) == set(exe.store), "state file persistent variables differ from the graph's")
    storages = {}
    budget = memory_limit()
    for name, desc in saved.items():
        decl = bound.declaration(name)
        storage = make_storage(decl, table=bound.decls[name].table is not None)
        _expect(desc["kind"] == storage.kind, f"{name}: stored as {desc['kind']}, declared as {storage.kind}")
        budget -= _restore_storage(storage, desc, arrays)
        _expect(budget >= 0, f"{name}: its sizes need more memory than this machine has")
        storages[name] = storage
    values = {}
    shared: dict[str, np.ndarray] = {}
    rebindable = {op.dst.var_name for op in bound.op.walk() if isinstance(op, CacheReadOp)}
    for name, desc in header["values"].items():
        base = name.split("[", 1)[0]
        _expect(base in bound.decls or base in _temp_names(exe), f"state file names unknown variable {name}")
        _expect(base not in exe.store, f"{name} is persistent but stored as a plain value")
        var_type = bound.decls[base].var_type if base in bound.decls else exe.interpreter.temp_types[base]
        _expect(desc["dtype"] == var_type.dtype, f"{name} is stored as {desc['dtype']} but declared {var_type.dtype}")
        key = desc["array"]
        if key not in shared:
            shared[key] = _array(desc, arrays)
        if base not in rebindable:  # only a cache.read destination may hold another shape
            declared = bound.shape_of_type(var_type)
            _expect(shared[key].shape == declared, f"{name} is stored with shape {list(shared[key].shape)}, "
                                                   f"declared {list(declared)}")
        values[name] = shared[key]
    return PersistentStore(storages), values


def _temp_names(exe: Executor) -> set[str]:
    return set(exe.interpreter.temp_types)


def _restore_storage(storage, desc: dict, arrays: dict[str, np.ndarray]) -> int:
    """Fill `storage` (a new one) from `desc`; returns the bytes its value takes when dense."""
    decl = storage.decl
    dtype = numpy_dtype(decl.dtype)
    if isinstance(storage, PlainStorage):
        if desc["value"] is not None:
            value = _array(desc["value"], arrays)
            _expect(value.shape == decl.shape and value.dtype == dtype, f"{decl.name}: stored value does not fit")
            storage.value = frozen(value)
        return 0
    if isinstance(storage, AutoDimStorage):
        counts = [_count(c, f"{decl.name}: count") for c in desc["counts"]]
        _expect(len(counts) == len(storage.counts), f"{decl.name}: bad counts")
        for c, limit in zip(counts, storage.maxima):
            _expect(limit is None or c <= limit, f"{decl.name}: count {c} exceeds fixed max {limit}")
        storage.counts = counts
        if desc["value"] is not None:
            value = _array(desc["value"], arrays)
            _expect(value.shape == storage.shape() and value.dtype == dtype, f"{decl.name}: stored value does not fit")
            storage.value = frozen(value)
        return math.prod(storage.shape()) * dtype.itemsize
    assert isinstance(storage, TableStorage)
    sizes = [_count(s, f"{decl.name}: size") for s in desc["sizes"]]
    _expect(len(sizes) == storage.rank, f"{decl.name}: stored sizes have the wrong rank")
    for s, limit in zip(sizes, storage.fixed):
        _expect(limit is None or s <= limit, f"{decl.name}: size {s} breaks its @fixed size")
    keys = [tuple(_count(k, f"{decl.name}: entry index") for k in key) for key in desc["keys"]]
    _expect(len(set(keys)) == len(keys), f"{decl.name}: an entry index appears twice")
    entries = _array(desc["entries"], arrays) if desc["entries"] is not None else np.empty((0, *decl.shape), dtype)
    _expect(entries.shape == (len(keys), *decl.shape) and entries.dtype == dtype, f"{decl.name}: entries do not fit")
    for key in keys:
        _expect(len(key) == storage.rank, f"{decl.name}: bad entry index {key}")
        for k, limit in zip(key, storage.fixed):
            _expect(limit is None or k < limit, f"{decl.name}: entry index {key} breaks its @fixed size")
    for dim, (s, limit) in enumerate(zip(sizes, storage.fixed)):
        _expect(limit is None or s == limit, f"{decl.name}: size {s} of a @fixed({limit}) index")
        _expect(all(key[dim] < s for key in keys), f"{decl.name}: an entry lies beyond size {s} of index {dim}")
    storage.sizes = sizes
    storage.entries = {key: frozen(entries[n, ...].copy()) for n, key in enumerate(keys)}  # rank-0 entries too
    return math.prod(sizes) * (math.prod(decl.shape) * dtype.itemsize + 1)  # + the cpu device's `present` byte
