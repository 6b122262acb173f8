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
and `rollback` puts those back. A table journals only what the step changes (the
previous value of each entry it writes, creates or removes, and its sizes), so a
step costs what it does, not what the table holds; `commit` drops the journal.

A table is sparse here but dense on `device="cpu"` (one box of capacity x entry,
each index's capacity doubled when an index passes it). So that both devices
refuse the same steps, a table mirrors that capacity and refuses, as cpu does, an
index or slice whose dense box numpy cannot allocate (`TableStorage.grow`).
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
from oi_compiler.verify.scope import fixed_size_message, shape_text

Slice = tuple["int | None", "int | None"]  # start, end (None = default), already resolved to ints
Index = "int | Slice"

#: a growable table index's first capacity on device "cpu" (`runtime/native.py` has the same number)
FIRST_CAPACITY = 16
I64_MAX = (1 << 63) - 1


def first_capacity(size: int, fixed: int | None) -> int:
    """Device "cpu"'s capacity of a table index holding `size` when it is created or loaded: its
    `@fixed` size, else the power of two at or above `size`, at least `FIRST_CAPACITY`."""
    return fixed if fixed is not None else max(FIRST_CAPACITY, 1 << max(0, size - 1).bit_length())


def growth_error(name: str, dim: int, size: int, capacity: Sequence[int]) -> CacheError:
    """Index `dim` of table `name` cannot grow to `size`: its dense box of `capacity` does not fit.

    Device "cpu"'s message, word for word, which the reference gives for the same steps."""
    return CacheError(f"cache table {name} index {dim} cannot grow to {size} entries on device 'cpu' "
                      f"(tables are dense: capacity {list(capacity)} x entry)")  # fmt: skip


def allocation_error(dtype: str, shape: Sequence[int]) -> ExecutionError:
    return ExecutionError(f"cannot allocate {dtype}{shape_text(shape)}: out of memory")


def dense_box_error(dtype: str, entry: Sequence[int], capacity: Sequence[int]) -> ExecutionError | None:
    """What cpu's allocation of a dense table of `capacity` raises, if anything: its data (capacity
    x entry), then a present byte per entry (both held at once, as cpu holds them). Nothing is
    written, so the trial costs no memory; None when both fit. A paged table asks it too, so every
    storage refuses the same growth (its `state()` is that dense box)."""
    held = []
    for kind, shape in ((dtype, [*capacity, *entry]), ("u8", list(capacity))):
        try:
            held.append(np.empty(tuple(shape), dtype=numpy_dtype(kind)))
        except (MemoryError, ValueError, OverflowError):
            return allocation_error(kind, shape)
    return None


def init_array(shape: Sequence[int], dtype: str, init: int | float | bool | None) -> np.ndarray:
    """A fresh tensor of `shape` holding `@init` broadcast, or zeros (an `ExecutionError` when
    there is no memory for it)."""
    try:
        array = np.zeros(tuple(shape), dtype=numpy_dtype(dtype))
    except (MemoryError, ValueError, OverflowError):  # numpy: out of memory, or a dim past its index range
        raise allocation_error(dtype, shape) from None
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

    def commit(self) -> None:
        pass


class TableStorage:
    """`NAME(i, j, ...)` with `@table`: entries by index tuple, and a logical size per index.

    An access first resolves and checks its whole selection (`_select`: slice bounds, `@fixed`
    sizes), then raises the sizes (`_raise_sizes`, where a growth cpu could not hold is refused),
    in device "cpu"'s order. Every change to `entries` goes through `_put`, `_remove` and
    `_replace_all`, which journal the previous values while a step runs (`snapshot` .. `commit`)."""

    kind = "table"

    def __init__(self, decl: Declaration):
        self.decl = decl
        self.rank = len(decl.indices)
        fixed = decl.fixed or {}
        self.fixed: list[int | None] = [fixed.get(name) for name in decl.indices]
        self.sizes: list[int] = [f or 0 for f in self.fixed]
        self.entries: dict[tuple[int, ...], np.ndarray] = {}
        # cpu's capacity per index; None: `first_capacity` of the sizes (a new or loaded table), made
        # concrete before anything changes the sizes
        self._capacity: list[int] | None = None
        self._undo: list[tuple[tuple[int, ...] | None, object]] | None = None  # (key, old entry or None)
        self._logged: set[tuple[int, ...]] = set()  # keys journaled since the step began (or a full reset)
        self._init_entry: np.ndarray | None = None
        error = self._dense_error([first_capacity(s, f) for s, f in zip(self.sizes, self.fixed)])
        if error is not None:  # cpu allocates the table when the executor is made
            raise error

    # --- sizes and capacity --------------------------------------------------------

    def capacity(self) -> list[int]:
        """The capacity per index device "cpu" would have (it only grows; a reset keeps it)."""
        if self._capacity is None:
            self._capacity = [first_capacity(s, f) for s, f in zip(self.sizes, self.fixed)]
        return self._capacity

    def _dense_error(self, capacity: Sequence[int]) -> ExecutionError | None:
        return dense_box_error(self.decl.dtype, self.decl.shape, capacity)

    def _check_fixed(self, dim: int, size: int, detail: str) -> None:
        """Upstream's `cache table K index {dim} exceeds fixed size {max}` (dim: the index's
        position), followed by the value that overflowed: `(index value k)` or `(slice end e)`."""
        limit = self.fixed[dim]
        if limit is not None and size > limit:
            raise CacheError(fixed_size_message(self.decl.name, dim, limit, detail))

    def grow(self, dim: int, size: int) -> None:
        """Index `dim`'s size to at least `size`, as cpu's `oi_raise_size`: past the capacity, the
        capacity doubles (at least to `size`), and a dense box numpy cannot allocate is refused."""
        if size <= self.sizes[dim]:
            return
        capacity = self.capacity()
        if size > capacity[dim]:
            grown = list(capacity)
            grown[dim] = max(2 * capacity[dim], size)
            if self._dense_error(grown) is not None:
                raise growth_error(self.decl.name, dim, size, grown)
            self._capacity = grown
        self.sizes[dim] = size

    def ensure_size(self, dim: int, size: int) -> None:
        """Grow index `dim`'s logical size to at least `size` (never past a `@fixed` size)."""
        self._check_fixed(dim, size, f"size {size}")
        self.grow(dim, size)

    def _check_dtype(self) -> None:
        if self.decl.dtype in PACKED_DTYPES:
            raise CacheError("cache table packed dtypes not supported")

    def _select(self, indices: Sequence[Index]) -> list[range | int]:
        """Each index position as a scalar or the range a slice selects, every check made and
        nothing changed yet (sizes grow in `_raise_sizes`)."""
        if len(indices) > self.rank:
            raise CacheError(f"cache table {self.decl.name} expects {self.rank} indices, got {len(indices)}")
        full = list(indices) + [(None, None)] * (self.rank - len(indices))
        selection: list[range | int] = []
        for dim, index in enumerate(full):
            if isinstance(index, tuple):
                start, end = self._slice_bounds(dim, index)
                self._check_fixed(dim, end, f"slice end {end}")
                selection.append(range(start, end))
            else:
                self._check_fixed(dim, min(index + 1, I64_MAX), f"index value {index}")  # cpu's k + 1 saturates
                selection.append(index)
        return selection

    def _raise_sizes(self, selection: Sequence[range | int]) -> None:
        for dim, item in enumerate(selection):
            if self.fixed[dim] is None:
                self.grow(dim, item.stop if isinstance(item, range) else min(item + 1, I64_MAX))

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

    # --- the journal -----------------------------------------------------------------

    def _put(self, key: tuple[int, ...], entry: np.ndarray) -> None:
        if self._undo is not None and key not in self._logged:
            self._logged.add(key)
            self._undo.append((key, self.entries.get(key)))
        self.entries[key] = entry

    def _remove(self, key: tuple[int, ...]) -> None:
        if self._undo is not None and key not in self._logged:
            self._logged.add(key)
            self._undo.append((key, self.entries[key]))
        del self.entries[key]

    def _replace_all(self, entries: dict[tuple[int, ...], np.ndarray]) -> None:
        """`entries` becomes the table's dict; the journal keeps the old one whole."""
        if self._undo is not None:
            self._undo.append((None, self.entries))
            self._logged = set()
        self.entries = entries

    def snapshot(self):
        """Start journaling (the step's first change to this table); the token `restore` takes."""
        self._undo, self._logged = [], set()
        capacity = None if self._capacity is None else list(self._capacity)
        return (list(self.sizes), capacity, self._undo)

    def restore(self, snap) -> None:
        """Undo every change journaled since `snapshot`, newest first."""
        sizes, capacity, undo = snap
        for key, old in reversed(undo):
            if key is None:
                self.entries = old
            elif old is None:
                self.entries.pop(key, None)
            else:
                self.entries[key] = old
        self.sizes, self._capacity = list(sizes), capacity
        self.commit()

    def commit(self) -> None:
        """Keep the step's changes: drop the journal."""
        self._undo, self._logged = None, set()

    # --- access --------------------------------------------------------------------

    def _init(self) -> np.ndarray:
        """The value of an entry nothing wrote (`@init`, else zeros): one frozen array for all."""
        if self._init_entry is None:
            self._init_entry = frozen(init_array(self.decl.shape, self.decl.dtype, self.decl.init))
        return self._init_entry

    def read(self, indices: Sequence[Index]) -> np.ndarray:
        """The selected entries; a missing one reads as `@init` (or zeros) and is created (kept)."""
        self._check_dtype()
        selection = self._select(indices)
        self._raise_sizes(selection)
        ranges = [s if isinstance(s, range) else range(s, s + 1) for s in selection]
        out_shape = [len(s) for s in selection if isinstance(s, range)] + list(self.decl.shape)
        init = self._init()
        try:
            out = np.empty(out_shape, dtype=numpy_dtype(self.decl.dtype))
        except (MemoryError, ValueError, OverflowError):
            raise allocation_error(self.decl.dtype, out_shape) from None
        flat = out.reshape((math.prod(len(r) for r in ranges), *self.decl.shape))  # (-1 is ambiguous for empty entries)
        flat[...] = init
        entries = self.entries
        try:
            for n, key in enumerate(itertools.product(*ranges)):
                entry = entries.get(key)
                if entry is None:
                    self._put(key, init)
                elif entry is not init:
                    flat[n] = entry
        except MemoryError:  # a slice cpu's dense box holds, but too many entries for this sparse one
            raise allocation_error(self.decl.dtype, out_shape) from None
        return out

    def write(self, indices: Sequence[Index], value: np.ndarray) -> None:
        self._check_dtype()
        selection = self._select(indices)
        if any(isinstance(s, range) for s in selection):
            raise CacheError(f"cache.write {self.decl.name} does not support slice indices")
        if tuple(value.shape) != self.decl.shape:
            raise CacheError(
                f"cache.write {self.decl.name} expects shape {shape_text(self.decl.shape)}, "
                f"got {shape_text(value.shape)}"
            )
        self._raise_sizes(selection)  # after the checks, as cpu grows its dense table
        self._put(tuple(selection), frozen(value.astype(numpy_dtype(self.decl.dtype), copy=True)))

    def append(self, value: np.ndarray, offsets: np.ndarray, *, skip: bool) -> None:
        """`cache.append value >> NAME[offsets]`: `NAME[b, ..., offsets[b] + l] = value[b, ..., l]`.

        The source's shape and the offsets are checked first (every offset non-negative; with
        `skip` False, none past a `@fixed` last index), then the cells are written in row-major
        order of `value`, each as `write` would (sizes raised, `@fixed` extents checked), so a
        failure part-way is undone with the step. `skip` drops the cells past a `@fixed` last index."""
        name, rank, entry = self.decl.name, self.rank, self.decl.shape
        self._check_dtype()
        check_append_shape(name, rank, entry, value.shape, offsets.shape)
        extents = value.shape[:rank]
        if 0 in extents:
            return
        starts = as_i64(offsets).tolist()  # Python ints: off + l never wraps
        new_len, limit = extents[-1], self.fixed[-1]
        for b, off in enumerate(starts):
            check_append_offset(name, rank, b, off, new_len, None if skip else limit)
        for cell in itertools.product(*(range(n) for n in extents)):
            position = starts[cell[0]] + cell[-1]
            if skip and limit is not None and position >= limit:
                continue
            self.write((*cell[:-1], position), value[(*cell, Ellipsis)])  # an array, for scalar entries too

    def reset(self, prefix: Sequence[int] = ()) -> None:
        """Clear every entry (no prefix) or those whose first indices equal `prefix`."""
        self.capacity()  # cpu keeps its capacity: fix it before the sizes change
        if prefix:
            n, prefix = len(prefix), tuple(prefix)
            for key in [k for k in self.entries if k[:n] == prefix]:
                self._remove(key)
        else:
            self._replace_all({})
        sizes = [0] * self.rank
        for key in self.entries:
            sizes = [max(s, k + 1) for s, k in zip(sizes, key)]
        self.sizes = [f if f is not None else s for s, f in zip(sizes, self.fixed)]

    def current(self) -> np.ndarray:
        """`NAME[]` as a read would give it, without creating entries or growing."""
        shape = [*self.sizes, *self.decl.shape]
        out = init_array(shape, self.decl.dtype, self.decl.init)
        for key, entry in self.entries.items():
            if all(k < s for k, s in zip(key, self.sizes)):
                out[key] = entry
        return frozen(out)


def as_i64(offsets: np.ndarray) -> np.ndarray:
    """Offsets as the compiled step reads them: i64, a u64 of 2**63 or more wrapped negative."""
    offsets = np.ascontiguousarray(offsets)
    if offsets.dtype == np.uint64:
        return offsets.view(np.int64)
    return offsets.astype(np.int64)


def check_append_shape(name: str, rank: int, entry: Sequence[int], shape: Sequence[int],
                       offsets: Sequence[int]) -> None:  # fmt: skip
    """`cache.append`'s source is `[B, ..., L_new] + entry` and its offsets `[B]`."""
    if len(shape) != rank + len(entry) or tuple(shape[rank:]) != tuple(entry):
        raise CacheError(f"cache.append {name} expects a source of rank {rank + len(entry)} ending in "
                         f"{shape_text(entry)}, got {shape_text(shape)}")  # fmt: skip
    if tuple(offsets) != (shape[0],):
        raise CacheError(f"cache.append {name} expects {shape[0]} offsets (one per sample), "
                         f"got {shape_text(offsets)}")  # fmt: skip


def check_append_offset(name: str, rank: int, b: int, off: int, new_len: int, limit: int | None) -> None:
    """Sample `b`'s offset is non-negative and, when `limit` (a `@fixed` last index, policy error)
    is given, its `new_len` entries fit under it."""
    if off < 0:
        raise CacheError(f"cache.append {name} offset {off} of sample {b} is negative")
    if limit is not None and off > limit - new_len:
        raise CacheError(f"cache.append {name} sample {b} at offset {off} with {new_len} new entries "
                         f"exceeds fixed size {limit} of index {rank - 1}")  # fmt: skip


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
        shape = tuple(b + c for b, c in zip(self.decl.shape, counts))
        grown = init_array(shape, self.decl.dtype, None)  # zeros (an ExecutionError when they do not fit, as on cpu)
        grown[tuple(slice(0, n) for n in old.shape)] = old
        self.counts = counts
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

    def commit(self) -> None:
        pass


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
        if self._journal is not None:  # a step that neither committed nor rolled back keeps its changes
            self.commit()
        self._journal = {}

    def commit(self) -> None:
        """Keep every change since `begin_step` (each touched table drops its journal)."""
        for name in self._journal or {}:
            self.storages[name].commit()
        self._journal = None

    def rollback(self) -> None:
        """Put every variable changed since `begin_step` back as it was."""
        for name, snap in (self._journal or {}).items():
            self.storages[name].restore(snap)
        self._journal = None
