"""The sequence statements on the reference executor: `cache.fork`, `cache.pop`, `cache.reset ... where`.

A group of tables `K(b, ..., t)` (a sequence per first index, a position per last) shares a
persistent vector of lengths, one per sequence. Each statement checks everything first, then
changes the tables through `TableStorage`'s own operations (so the step's journal covers them),
then the lengths. The compiled path (lowering/sequences.py) makes the same checks in the same
order and the same table operations, so sizes, entries and errors agree.
"""

from __future__ import annotations

import itertools

import numpy as np

from oi_compiler.errors import CacheError
from oi_compiler.runtime.tables import PlainStorage, TableStorage, as_i64


def middle_keys(table: TableStorage) -> list[tuple[int, ...]]:
    """The keys of the indices between the sequence and the position, over their sizes now."""
    return list(itertools.product(*(range(n) for n in table.sizes[1:-1])))


def check_sequence(what: str, b: int, count: int) -> None:
    if b >= count:
        raise CacheError(f"{what} sequence {b} is out of range for {count} sequences")


def lengths_of(lengths: PlainStorage) -> np.ndarray:
    return as_i64(lengths.current()).reshape(-1)


def set_length(lengths: PlainStorage, b: int, value: int) -> None:
    """`len[b] = value`, wrapping in the vector's dtype (as the compiled step stores it)."""
    new = lengths.read().reshape(-1)
    new[b] = np.array(value, np.int64).astype(new.dtype)
    lengths.write(new.reshape(lengths.decl.shape))


def fork(tables: list[TableStorage], lengths: PlainStorage, src: int, dst: int, position: int) -> None:
    """Sequence `dst` becomes the first `position` entries of `src` in every table; `len[dst] = position`."""
    lens = lengths_of(lengths)
    for b in (src, dst):
        check_sequence("cache.fork", b, len(lens))
    if src == dst:
        raise CacheError(f"cache.fork source and destination are both sequence {src}")
    if position > lens[src]:
        raise CacheError(f"cache.fork position {position} is past the length {lens[src]} of sequence {src}")
    for table in tables:
        middles = middle_keys(table)
        table.reset([dst])
        for middle in middles:
            for t in range(position):
                table.write([dst, *middle, t], table.read([src, *middle, t]))
    set_length(lengths, dst, position)


def pop(tables: list[TableStorage], lengths: PlainStorage, count: int, b: int) -> None:
    """The last `count` entries of sequence `b` removed from every table; `len[b] -= count`."""
    lens = lengths_of(lengths)
    check_sequence("cache.pop", b, len(lens))
    if count > lens[b]:
        raise CacheError(f"cache.pop {count} entries from sequence {b} of length {lens[b]}")
    for table in tables:
        for middle in middle_keys(table):
            for t in range(lens[b] - count, lens[b]):
                table.reset([b, *middle, t])
    set_length(lengths, b, lens[b] - count)


def reset_where(tables: list[TableStorage], lengths: PlainStorage, mask: np.ndarray) -> None:
    """Every sequence `b` with `mask[b]` nonzero emptied in every table; `len[b] = 0`."""
    lens = lengths_of(lengths)
    mask = np.asarray(mask)
    if mask.shape != lens.shape:
        raise CacheError(f"cache.reset where: the mask has shape {list(mask.shape)}, "
                         f"the lengths {list(lens.shape)}")  # fmt: skip
    for b in np.flatnonzero(mask).tolist():
        for table in tables:
            table.reset([b])
        set_length(lengths, b, 0)
