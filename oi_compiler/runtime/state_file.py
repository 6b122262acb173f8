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

Saving writes a temporary file beside the target, flushes it to disk and renames
it over the target, so a crash leaves either the old file or the new one.
Loading reads and checks everything before changing anything: a corrupt file, a
file from another graph, or values that break a declaration raise `StateError`
and leave the executor as it was.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import struct
import tempfile
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
    directory = path.parent if str(path.parent) else Path(".")
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, "wb") as f:
            buffer = io.BytesIO()
            np.savez(buffer, header=np.frombuffer(json.dumps(header).encode(), dtype=np.uint8), **arrays)
            f.write(buffer.getvalue())
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


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


def _read(path: Path) -> tuple[dict, dict[str, np.ndarray]]:
    try:
        loaded = np.load(path, allow_pickle=False)
        if not isinstance(loaded, np.lib.npyio.NpzFile):
            raise ValueError("a single .npy array, not a state archive")
        with loaded as archive:
            arrays = {key: archive[key] for key in archive.files}
        header = json.loads(arrays.pop("header").tobytes().decode())
    except FileNotFoundError:
        raise StateError("no such state file") from None
    except _UNREADABLE as e:
        raise StateError(f"not a readable state file: {e}") from None
    if not isinstance(header, dict):
        raise StateError("malformed state file header")
    return header, arrays


def _array(desc: dict, arrays: dict[str, np.ndarray]) -> np.ndarray:
    dtype = desc["dtype"]
    if dtype not in DTYPE_NAMES:
        raise StateError(f"unknown dtype {dtype!r} in state file")
    raw = arrays[desc["array"]]
    target = numpy_dtype(dtype)
    if raw.dtype != np.dtype(f"u{target.itemsize}"):
        raise StateError(f"array {desc['array']} has the wrong width for {dtype}")
    array = raw.view(target).reshape([int(d) for d in desc["shape"]]).copy()
    return array


def _expect(condition: bool, message: str) -> None:
    if not condition:
        raise StateError(message)


def _rebuild(exe: Executor, header: dict, arrays: dict[str, np.ndarray]):
    bound = exe.bound
    saved = header["persistent"]
    _expect(set(saved) == set(exe.store), "state file persistent variables differ from the graph's")
    storages = {}
    for name, desc in saved.items():
        decl = bound.declaration(name)
        storage = make_storage(decl, table=bound.decls[name].table is not None)
        _expect(desc["kind"] == storage.kind, f"{name}: stored as {desc['kind']}, declared as {storage.kind}")
        _restore_storage(storage, desc, arrays)
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


def _restore_storage(storage, desc: dict, arrays: dict[str, np.ndarray]) -> None:
    decl = storage.decl
    dtype = numpy_dtype(decl.dtype)
    if isinstance(storage, PlainStorage):
        if desc["value"] is not None:
            value = _array(desc["value"], arrays)
            _expect(value.shape == decl.shape and value.dtype == dtype, f"{decl.name}: stored value does not fit")
            storage.value = frozen(value)
        return
    if isinstance(storage, AutoDimStorage):
        counts = [int(c) for c in desc["counts"]]
        _expect(len(counts) == len(storage.counts) and all(c >= 0 for c in counts), f"{decl.name}: bad counts")
        for c, limit in zip(counts, storage.maxima):
            _expect(limit is None or c <= limit, f"{decl.name}: count {c} exceeds fixed max {limit}")
        storage.counts = counts
        if desc["value"] is not None:
            value = _array(desc["value"], arrays)
            _expect(value.shape == storage.shape() and value.dtype == dtype, f"{decl.name}: stored value does not fit")
            storage.value = frozen(value)
        return
    assert isinstance(storage, TableStorage)
    sizes = [int(s) for s in desc["sizes"]]
    _expect(len(sizes) == storage.rank, f"{decl.name}: stored sizes have the wrong rank")
    for s, limit in zip(sizes, storage.fixed):
        _expect(s >= 0 and (limit is None or s <= limit), f"{decl.name}: size {s} breaks its @fixed size")
    keys = [tuple(int(k) for k in key) for key in desc["keys"]]
    _expect(len(set(keys)) == len(keys), f"{decl.name}: an entry index appears twice")
    entries = _array(desc["entries"], arrays) if desc["entries"] is not None else np.empty((0, *decl.shape), dtype)
    _expect(entries.shape == (len(keys), *decl.shape) and entries.dtype == dtype, f"{decl.name}: entries do not fit")
    for key in keys:
        _expect(len(key) == storage.rank and all(k >= 0 for k in key), f"{decl.name}: bad entry index {key}")
        for k, limit in zip(key, storage.fixed):
            _expect(limit is None or k < limit, f"{decl.name}: entry index {key} breaks its @fixed size")
    for dim, (s, limit) in enumerate(zip(sizes, storage.fixed)):
        _expect(limit is None or s == limit, f"{decl.name}: size {s} of a @fixed({limit}) index")
        _expect(all(key[dim] < s for key in keys), f"{decl.name}: an entry lies beyond size {s} of index {dim}")
    storage.sizes = sizes
    storage.entries = {key: frozen(entries[n, ...].copy()) for n, key in enumerate(keys)}  # rank-0 entries too
