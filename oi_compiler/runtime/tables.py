"""Persistent state: plain persistent variables, cache tables and `@auto_dim` tensors.

This is upstream OpenInfer's `CacheStore` (`runtime/cache/{store,table,auto_dim}.rs`,
reference/openinfer.md section 4), with its runtime messages word for word:

- `PlainStorage`: one tensor of the declared shape (`step: i32 @init(0)`);
- `TableStorage`: a sparse map from index tuples to entries of the declared
  shape, with a logical size per index (`K(l, t): f32[H, Dh] @table`);
- `AutoDimStorage`: one tensor of shape base + counts (`M(r, c): f32[D, H] @auto_dim(r, c)`).

Stored arrays are values: every read returns a fresh array and every write stores
a copy, so nothing outside this module can change persistent state in place.
That is what makes rollback cheap: `PersistentStore.begin_step` starts a journal,
the first change to a variable in a step records its previous (shallow) state,
and `rollback` puts those back.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np

from oi_compiler.dtypes import FLOAT_DTYPES, PACKED_DTYPES, numpy_dtype
from oi_compiler.errors import CacheError, ExecutionError
from oi_compiler.ops.registry import dtype_debug_name
from oi_compiler.verify.scope import shape_text

Slice = tuple["int | None", "int | None"]  # start, end (None = default), already resolved to ints
Index = "int | Slice"


def init_array(shape: Sequence[int], dtype: str, init: int | float | bool | None) -> np.ndarray:
    """A fresh tensor of `shape` holding `@init` broadcast, or zeros (an `ExecutionError` when
    there is no memory for it)."""
    try:
        array = np.zeros(tuple(shape), dtype=numpy_dtype(dtype))
    except (MemoryError, ValueError):  # numpy: out of memory, or a dim past its index range
        raise ExecutionError(f"cannot allocate {dtype}{shape_text(shape)}: out of memory") from None
    if init is not None:
        array[...] = init
    return array


def frozen(array: np.ndarray) -> np.ndarray:
    """`array` marked read-only: stored values are never changed in place."""
    array.flags.writeable = False
    return array


@dataclass
class Declaration:
    """What a persistent variable's declaration says, with its dims resolved."""

    name: str
    dtype: str
    shape: tuple[int, ...]
    init: int | float | bool | None = None
    indices: tuple[str, ...] = ()  # table indices (auto-dim names removed)
    auto_dim: tuple[str, ...] = ()
    fixed: dict[str, int] | None = None


class PlainStorage:
    """A persistent tensor of its declared shape, created from `@init` on first use."""

    kind = "plain"

    def __init__(self, decl: Declaration):
        self.decl = decl
        self.value: np.ndarray | None = None

    def current(self) -> np.ndarray:
        """The stored value (read-only), without materialising it when unset."""
        if self.value is not None:
            return self.value
        return frozen(init_array(self.decl.shape, self.decl.dtype, self.decl.init))

    def read(self) -> np.ndarray:
        return self.current().copy()

    def write(self, value: np.ndarray) -> None:
        if tuple(value.shape) != self.decl.shape:
            raise CacheError(
                f"cache.write {self.decl.name} expects shape {shape_text(self.decl.shape)}, "
                f"got {shape_text(value.shape)}"
            )
        self.value = frozen(value.astype(numpy_dtype(self.decl.dtype), copy=True))

    def reset(self) -> None:
        self.value = None

    def snapshot(self):
        return self.value

    def restore(self, snap) -> None:
        self.value = snap


class TableStorage:
    """`NAME(i, j, ...)` with `@table`: entries by index tuple, and a logical size per index."""

    kind = "table"

    def __init__(self, decl: Declaration):
        self.decl = decl
        self.rank = len(decl.indices)
        fixed = decl.fixed or {}
        self.fixed: list[int | None] = [fixed.get(name) for name in decl.indices]
        self.sizes: list[int] = [f or 0 for f in self.fixed]
        self.entries: dict[tuple[int, ...], np.ndarray] = {}

    # --- sizes ---------------------------------------------------------------------

    def ensure_size(self, dim: int, size: int) -> None:
        """Grow index `dim`'s logical size to at least `size` (never past a `@fixed` size)."""
        limit = self.fixed[dim]
        if limit is not None and size > limit:
            raise CacheError(f"cache table {self.decl.name} index {dim} exceeds fixed size {limit}")
        if size > self.sizes[dim]:
            self.sizes[dim] = size

    def _check_dtype(self) -> None:
        if self.decl.dtype in PACKED_DTYPES:
            raise CacheError("cache table packed dtypes not supported")

    def _selection(self, indices: Sequence[Index]) -> list[list[int] | int]:
        """Each index position as a scalar or the list of positions a slice selects, growing sizes."""
        if len(indices) > self.rank:
            raise CacheError(f"cache table {self.decl.name} expects {self.rank} indices, got {len(indices)}")
        full = list(indices) + [(None, None)] * (self.rank - len(indices))
        selection: list[list[int] | int] = []
        for dim, index in enumerate(full):
            if isinstance(index, tuple):
                start, end = self._slice_bounds(dim, index)
                self.ensure_size(dim, end)
                selection.append(list(range(start, end)))
            else:
                self.ensure_size(dim, index + 1)
                selection.append(index)
        return selection

    def _slice_bounds(self, dim: int, bounds: Slice) -> tuple[int, int]:
        size = self.sizes[dim]
        start, end = bounds
        start = 0 if start is None else start
        if start < 0:
            raise CacheError("slice start cannot be negative")
        if end is None:
            end = size
        elif end < 0:
            if -end > size:
                raise CacheError(f"slice end underflow for size {size}")
            end = size + end
        if end < start:
            raise CacheError(f"slice end {end} before start {start}")
        return start, end

    # --- access --------------------------------------------------------------------

    def _entry(self, key: tuple[int, ...]) -> np.ndarray:
        """The entry at `key`; a missing one is created from `@init` (or zeros) and kept."""
        entry = self.entries.get(key)
        if entry is None:
            entry = frozen(init_array(self.decl.shape, self.decl.dtype, self.decl.init))
            self.entries[key] = entry
        return entry

    def read(self, indices: Sequence[Index]) -> np.ndarray:
        self._check_dtype()
        selection = self._selection(indices)
        lists = [s if isinstance(s, list) else [s] for s in selection]
        out_shape = [len(s) for s in selection if isinstance(s, list)] + list(self.decl.shape)
        out = np.empty(out_shape, dtype=numpy_dtype(self.decl.dtype))
        flat = out.reshape((math.prod(len(s) for s in lists), *self.decl.shape))  # (-1 is ambiguous for empty entries)
        for n, key in enumerate(itertools.product(*lists)):
            flat[n] = self._entry(key)
        return out

    def write(self, indices: Sequence[Index], value: np.ndarray) -> None:
        self._check_dtype()
        selection = self._selection(indices)  # grows sizes first, as upstream does
        if any(isinstance(s, list) for s in selection):
            raise CacheError(f"cache.write {self.decl.name} does not support slice indices")
        if tuple(value.shape) != self.decl.shape:
            raise CacheError(
                f"cache.write {self.decl.name} expects shape {shape_text(self.decl.shape)}, "
                f"got {shape_text(value.shape)}"
            )
        self.entries[tuple(selection)] = frozen(value.astype(numpy_dtype(self.decl.dtype), copy=True))

    def reset(self, prefix: Sequence[int] = ()) -> None:
        """Clear every entry (no prefix) or those whose first indices equal `prefix`."""
        if prefix:
            n = len(prefix)
            self.entries = {k: v for k, v in self.entries.items() if list(k[:n]) != list(prefix)}
        else:
            self.entries = {}
        self.sizes = [0] * self.rank
        for key in self.entries:
            self.sizes = [max(s, k + 1) for s, k in zip(self.sizes, key)]
        self.sizes = [f if f is not None else s for s, f in zip(self.sizes, self.fixed)]

    def current(self) -> np.ndarray:
        """`NAME[]` as a read would give it, without creating entries or growing."""
        shape = [*self.sizes, *self.decl.shape]
        out = init_array(shape, self.decl.dtype, self.decl.init)
        for key, entry in self.entries.items():
            if all(k < s for k, s in zip(key, self.sizes)):
                out[key] = entry
        return frozen(out)

    def snapshot(self):
        return (list(self.sizes), dict(self.entries))

    def restore(self, snap) -> None:
        self.sizes, self.entries = list(snap[0]), dict(snap[1])


class AutoDimStorage:
    """`NAME(r, c): T[D, H] @auto_dim(r, c)`: one tensor of shape [D + count_r, H + count_c]."""

    kind = "auto_dim"

    def __init__(self, decl: Declaration):
        self.decl = decl
        fixed = decl.fixed or {}
        self.maxima: list[int | None] = [fixed.get(name) for name in decl.auto_dim]
        self.counts: list[int] = [0] * len(decl.auto_dim)
        self.value: np.ndarray | None = None

    def _check_rank(self) -> None:
        n, m = len(self.decl.auto_dim), len(self.decl.shape)
        if n != m:
            raise CacheError(f"auto_dim requires {n} dims, got {m}")

    def shape(self) -> tuple[int, ...]:
        return tuple(b + c for b, c in zip(self.decl.shape, self.counts))

    def current(self) -> np.ndarray:
        if self.value is not None:
            return self.value
        return frozen(init_array(self.shape(), self.decl.dtype, self.decl.init))

    def _grow(self, indices: Sequence[Index]) -> None:
        """Raise the counts to the given indices and zero-pad the tensor to base + counts.

        Checks in upstream's order: index count, each index against its fixed max, then the rank.
        """
        if len(indices) > len(self.counts):
            raise CacheError(
                f"cache access {self.decl.name} expects at most {len(self.counts)} indices, got {len(indices)}"
            )
        if any(isinstance(i, tuple) for i in indices):
            raise CacheError(f"cache access {self.decl.name} does not support slice indices")
        counts = list(self.counts)
        for i, k in enumerate(indices):
            limit = self.maxima[i]
            if limit is not None and k > limit:
                raise CacheError(f"auto_dim {self.decl.name} exceeds fixed max {limit} for {i}")
            counts[i] = max(counts[i], k)
        self._check_rank()
        if counts == self.counts:
            return
        old = self.current()
        self.counts = counts
        grown = np.zeros(self.shape(), dtype=old.dtype)
        grown[tuple(slice(0, n) for n in old.shape)] = old
        self.value = frozen(grown)

    def read(self, indices: Sequence[Index]) -> np.ndarray:
        self._grow(indices)
        return self.current().copy()

    def write(self, indices: Sequence[Index], value: np.ndarray) -> None:
        self._grow(indices)
        if tuple(value.shape) != self.shape():
            raise CacheError(
                f"cache.write {self.decl.name} expects shape {shape_text(self.shape())}, "
                f"got {shape_text(value.shape)}"
            )
        self.value = frozen(value.astype(numpy_dtype(self.decl.dtype), copy=True))

    def reset(self) -> None:
        self.counts = [0] * len(self.counts)
        self.value = None

    def snapshot(self):
        return (list(self.counts), self.value)

    def restore(self, snap) -> None:
        self.counts, self.value = list(snap[0]), snap[1]


Storage = PlainStorage | TableStorage | AutoDimStorage


def make_storage(decl: Declaration, *, table: bool) -> Storage:
    """The storage a persistent declaration calls for (reference/openinfer.md 4.1)."""
    if decl.auto_dim:
        return AutoDimStorage(decl)
    if table and decl.indices:
        return TableStorage(decl)
    return PlainStorage(decl)


def step_scalar(storage: PlainStorage, amount: int, *, op: str) -> None:
    """`cache.increment` (amount > 0) or `cache.decrement` (amount < 0) of a persistent scalar."""
    decl = storage.decl
    if int(np.prod(decl.shape, dtype=np.int64)) != 1:
        raise CacheError(f"cache {op} expects scalar {decl.name}")
    if decl.dtype == "bool" or decl.dtype in PACKED_DTYPES:
        raise CacheError(f"cache {op} does not support dtype {dtype_debug_name(decl.dtype)} for {decl.name}")
    value = storage.current()
    if decl.dtype in FLOAT_DTYPES:
        wide = np.float64 if decl.dtype == "f64" else np.float32
        result = np.asarray(value.astype(wide) + wide(amount)).astype(value.dtype)
    else:
        bits = value.dtype.itemsize * 8
        wrapped = (int(value.reshape(-1)[0]) + amount) % (1 << bits)
        if value.dtype.kind == "i" and wrapped >= 1 << (bits - 1):
            wrapped -= 1 << bits
        result = np.full(value.shape, wrapped, dtype=value.dtype)
    storage.value = frozen(result)


class PersistentStore:
    """Every persistent variable of one executor, with a per-step journal for rollback."""

    def __init__(self, storages: dict[str, Storage]):
        self.storages = storages
        self._journal: dict[str, object] | None = None

    def __getitem__(self, name: str) -> Storage:
        return self.storages[name]

    def __contains__(self, name: str) -> bool:
        return name in self.storages

    def __iter__(self) -> Iterator[str]:
        return iter(self.storages)

    def touch(self, name: str) -> Storage:
        """The storage of `name`, its pre-step state journaled before its first change."""
        storage = self.storages[name]
        if self._journal is not None and name not in self._journal:
            self._journal[name] = storage.snapshot()
        return storage

    def begin_step(self) -> None:
        self._journal = {}

    def commit(self) -> None:
        self._journal = None

    def rollback(self) -> None:
        """Put every variable changed since `begin_step` back as it was."""
        for name, snap in (self._journal or {}).items():
            self.storages[name].restore(snap)
        self._journal = None
