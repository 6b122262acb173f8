"""The host side of a `@paged` table on `device="cpu"` (`lowering/paged_storage.py` is the step's).

`PagePool` owns one table's pool (`data`, `present`: `pool * page` entries), its page table
(`pages`: a page number per row and column, -1 where none), the pages' reference counts (`refs`)
and the allocator (never-used pages, then a free list). The step asks it for a page of a row's own
(`page_for`), to give rows' pages back (`release`), for a larger page table (`grow_index`) and for
the sizes (`recompute_sizes`, which also frees pages left without a present entry). Each change it
makes records how to undo it at the undo log's position (`NativeState.undo`), so a failed step
leaves the pages, counts and allocator as they were.

Capacities are a dense table's (the same doubling, the same refusal of a box that cannot be
allocated: `tables.dense_box_error`), so both storages fail the same steps with the same message;
the page table has `ceil(capacity / page)` columns. The pool starts empty (or at `pages = N`),
takes 4 pages when first needed, and doubles when every page is taken; it never shrinks (freed
pages are taken again first). The pool lives in address space reserved for as many pages as the
machine's memory holds, as far as the address-space budget allows (`reserved_memory`), so growing
it moves and copies nothing: the pages in use, and the pointers the step holds into them, stay
where they are (a pool that outgrows its reservation moves once into one twice as large). A pool or page table too
large for memory is an `ExecutionError` of its own (the one error a dense table of the same
entries need not meet).

It also converts the table to and from the reference's form (`dense`, `present_keys`, `load`) and
describes its pages in CSR form (`csr`: vLLM's and FlashInfer's `indptr / indices / last_page_len`).

On `device="cuda"`, a table `--place-buffers` marks `device` keeps its pool's entries in device
memory (a `DeviceBuffer`; the present bytes, counts and page table stay on the host): a page is
filled, copied (copy on write) or saved for an undo by explicit copies, and reading the table
copies the pool's pages in use to the host. Device memory cannot be reserved ahead, so the pool's
entries move each time it doubles (a device-to-device copy of the pages in use; the old ones stay
alive until the step ends, for the views the step took before).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from oi_compiler.dtypes import numpy_dtype
from oi_compiler.errors import ExecutionError
from oi_compiler.lowering import analysis as P
from oi_compiler.lowering.analysis import VarLayout
from oi_compiler.runtime.device_memory import DeviceBuffer
from oi_compiler.runtime.reserved_memory import physical_memory, reserve
from oi_compiler.runtime.tables import dense_box_error, first_capacity, growth_error, init_array

FIRST_POOL = 4  # pages, when an empty pool first grows (`@paged` gave no `pages = N`); later it doubles


@dataclass(frozen=True)
class PageTable:
    """A paged table's pages, row by row, in the CSR form vLLM and FlashInfer take.

    Rows are the table's leading indices in row-major order, up to their sizes (`rows`: that
    shape). Row `r` holds the pages `indices[indptr[r]:indptr[r + 1]]`, in order along the last
    index, up to its last present entry; `last_page_len[r]` entries of its last page are in use (0
    for an empty row). A page number is -1 where a row has a gap no entry was ever put in."""

    page_size: int
    rows: tuple[int, ...]
    indptr: np.ndarray
    indices: np.ndarray
    last_page_len: np.ndarray
    pool_pages: int  # the pool's size
    pages_in_use: int  # pages some row holds (a page shared by a fork counts once)


class PagePool:
    def __init__(self, state, var: VarLayout):
        self.state, self.var, self.page = state, var, var.page
        self.entry_dtype = numpy_dtype(var.dtype)
        self.free: list[int] = []  # pages given back, taken again first (last in, first out)
        self.freed: dict[int, int] = {}  # page -> the step that gave it back (its bytes matter until that step ends)
        self.used = 0  # pages taken at least once (the rest of the pool was never used)
        self.memory = state.memory if var.device else None  # the entries' device memory, if there

    # --- arrays and words ------------------------------------------------------------------
    @property
    def words(self) -> np.ndarray:
        return self.state.words

    def array(self, slot: int) -> np.ndarray:
        return self.state.arrays[slot]

    @property
    def pool(self) -> int:
        return int(self.words[self.var.pool_slot])

    def capacities(self) -> list[int]:
        return self.state.capacities(self.var)

    def pages(self) -> np.ndarray:
        """The page table as `[rows, columns]` (a view)."""
        table = self.array(self.var.pages_slot)
        return table.reshape(-1, table.shape[-1])

    def pool_view(self) -> np.ndarray:
        """The pool's entries as `[pages, page, *entry]`: a view, or on the device a host copy of
        the pages in use (the rest as if never written)."""
        data = self.array(self.var.data_slot)
        if isinstance(data, DeviceBuffer):
            host = np.zeros((self.pool * self.page, *self.var.shape), self.entry_dtype)
            host[: self.used * self.page] = data.get((slice(0, self.used * self.page),))
            data = host
        return data.reshape(self.pool, self.page, *self.var.shape)

    def _page(self, number: int) -> np.ndarray:
        """A copy of page `number`'s entries."""
        data = self.array(self.var.data_slot)
        rows = slice(number * self.page, (number + 1) * self.page)
        return data.get((rows,)) if isinstance(data, DeviceBuffer) else data[rows].copy()

    def _set_page_entries(self, number: int, entries: np.ndarray) -> None:
        data = self.array(self.var.data_slot)
        if isinstance(data, DeviceBuffer):
            data.set_rows(number * self.page, np.broadcast_to(entries, (self.page, *self.var.shape)))
        else:
            data[number * self.page : (number + 1) * self.page] = entries

    def _init_page(self, number: int) -> None:
        """Page `number`'s entries all `@init` (on the device, a fill: no copy from the host)."""
        data = self.array(self.var.data_slot)
        if isinstance(data, DeviceBuffer):
            element = init_array([], self.var.dtype, self.var.init).tobytes()
            data.fill(element, slice(number * self.page, (number + 1) * self.page))
        else:
            data[number * self.page : (number + 1) * self.page] = init_array([], self.var.dtype, self.var.init)

    def _copy_page(self, target: int, source: int) -> None:
        data = self.array(self.var.data_slot)
        if isinstance(data, DeviceBuffer):
            nbytes = self.page * self.entry_bytes
            self.memory.copy_bytes(data.address + target * nbytes, data.address + source * nbytes, nbytes)
        else:
            data[target * self.page : (target + 1) * self.page] = data[source * self.page : (source + 1) * self.page]

    def present_view(self) -> np.ndarray:
        return self.array(self.var.present_slot).reshape(self.pool, self.page)

    # --- allocation --------------------------------------------------------------------------
    def create(self, caps: list[int], pool: int | None = None) -> None:
        """An empty table of capacities `caps` and a pool of `pool` pages (default: `pages = N`, or
        none until a row takes one)."""
        error = dense_box_error(self.var.dtype, self.var.shape, caps)
        if error is not None:
            raise error
        self._set_page_table(caps, self._empty_page_table(caps))
        pages = self.var.pool if pool is None else pool
        self._reserve(pages, physical_memory() // self.page_bytes)  # (as many as the machine holds, budget allowing)
        self._set_pool(pages)
        self.free, self.freed, self.used = [], {}, 0

    def _empty_page_table(self, caps: list[int]) -> np.ndarray:
        shape = [*caps[:-1], self.columns(caps[-1])]
        try:
            return np.full(shape, -1, np.int64)
        except (MemoryError, ValueError):
            raise ExecutionError(f"paged table {self.var.name}: a page table of {shape} pages does not fit in "
                                 "memory") from None  # fmt: skip

    def columns(self, capacity: int) -> int:
        """Page-table columns for a last-index capacity."""
        return -(-capacity // self.page)

    def _set_page_table(self, caps: list[int], table: np.ndarray) -> None:
        self.state._set(self.var.pages_slot, table)
        for d, c in enumerate(caps):
            self.words[self.var.capacity_slot(d)] = c

    @property
    def page_bytes(self) -> int:
        """A page's bytes in the reservation: its entries, their present bytes, its count."""
        return self.page * (self.entry_dtype.itemsize * math.prod(self.var.shape) + 1) + 8

    def _reserve(self, pages: int, want: int) -> None:
        """One reservation holding the pool's entries, present bytes and counts for at least
        `pages` pages, and for `want` if the address-space budget allows (`reserved_memory`). On
        the device, the entries' allocation of exactly `pages` pages, and the rest's reservation."""
        var, page = self.var, self.page
        host_bytes = self.page_bytes - (self.page * self.entry_bytes if self.memory is not None else 0)
        if self.memory is not None:
            want = pages
        raw = reserve(pages * host_bytes + 8, want * host_bytes + 8)  # (+ 8: the counts' alignment)
        if raw is None:
            raise ExecutionError(f"paged table {var.name}: a pool of {pages} pages of {page} entries "
                                 "does not fit in memory")  # fmt: skip
        room = (len(raw) - 8) // host_bytes if self.memory is None else pages
        entries = room * page
        data_end = 0 if self.memory is not None else entries * self.entry_bytes
        refs_at = -(-(data_end + entries) // 8) * 8
        if self.memory is not None:
            data = DeviceBuffer(self.memory, (entries, *var.shape), self.entry_dtype)
        else:
            data = raw[:data_end].view(self.entry_dtype).reshape(entries, *var.shape)
        present = raw[data_end : data_end + entries]
        refs = raw[refs_at : refs_at + 8 * room].view(np.int64)
        self.reserved, self.room = (data, present, refs), room

    @property
    def entry_bytes(self) -> int:
        return self.entry_dtype.itemsize * math.prod(self.var.shape)

    def _set_pool(self, pages: int) -> None:
        """The pool's first `pages` pages of the reservation in use (the step sees that many)."""
        data, present, refs = self.reserved
        var = self.var
        self.state._set(var.data_slot, data if isinstance(data, DeviceBuffer) else data[: pages * self.page])
        self.state._set(var.present_slot, present[: pages * self.page])
        self.state._set(var.refs_slot, refs[:pages])
        self.words[var.pool_slot] = pages

    def _grow_pool(self, pages: int) -> None:
        """`pages` pages in the pool: in place within the reservation; past it, a reservation
        twice as large, holding a copy of the pages ever taken (the rest were never written)."""
        old, room, size = self.reserved, self.room, self.pool
        if pages > room:
            self._reserve(pages, 2 * room)
            taken = self.used * self.page
            for new, held, count in zip(self.reserved, old, (taken, taken, self.used)):
                if isinstance(new, DeviceBuffer):
                    self.memory.copy_bytes(new.address, held.address, count * self.entry_bytes)
                else:
                    new[:count] = held[:count]
        self._set_pool(pages)

        def shrink() -> None:
            self.reserved, self.room = old, room
            self._set_pool(size)

        self.state.undo(shrink)

    def _take(self) -> int:
        """A page no row holds: a freed one, else one never used (the pool doubles when all are)."""
        state = self.state
        if self.free:
            number = self.free.pop()
            if self.freed.pop(number, None) == self._stamp():  # freed by this step: its rows may get it back
                data, present = self._page(number), self.present_view()[number].copy()
                state.undo(lambda: self._refill(number, data, present))
            state.undo(lambda: self.free.append(number))
            return number
        if self.used == self.pool:
            self._grow_pool(2 * self.pool if self.pool else FIRST_POOL)
        number = self.used
        self.used += 1

        def untake() -> None:
            self.used -= 1

        state.undo(untake)
        return number

    def _stamp(self) -> int:
        return int(self.words[P.STEP_STAMP])

    def _refill(self, number: int, data: np.ndarray, present: np.ndarray) -> None:
        self._set_page_entries(number, data)
        self.present_view()[number] = present

    def _set_ref(self, number: int, count: int) -> None:
        refs = self.array(self.var.refs_slot)
        old = int(refs[number])
        refs[number] = count
        self.state.undo(lambda: self._restore_ref(number, old))

    def _restore_ref(self, number: int, count: int) -> None:
        self.array(self.var.refs_slot)[number] = count

    def _set_page(self, row: int, column: int, number: int) -> None:
        pages = self.pages()
        old = int(pages[row, column])
        pages[row, column] = number
        self.state.undo(lambda: self._restore_page(row, column, old))

    def _restore_page(self, row: int, column: int, number: int) -> None:
        self.pages()[row, column] = number

    # --- the step's requests ----------------------------------------------------------------
    def page_for(self, row: int, column: int) -> None:
        """Row `row`'s own page at `column`: a new one filled with `@init` (all absent), or a copy
        of the page it shares (copy on write)."""
        old = int(self.pages()[row, column])
        number = self._take()
        present = self.present_view()
        if old < 0:
            self._init_page(number)
            present[number] = 0
        else:
            self._copy_page(number, old)
            present[number] = present[old]
            self._set_ref(old, int(self.array(self.var.refs_slot)[old]) - 1)
        self._set_ref(number, 1)
        self._set_page(row, column, number)

    def _free(self, numbers: list[int]) -> None:
        """Pages no row holds any more: on the free list, stamped with this step (their bytes
        matter to its undo)."""
        if not numbers:
            return
        before = len(self.free)
        self.free.extend(numbers)
        self.freed.update(dict.fromkeys(numbers, self._stamp()))
        self.state.undo(lambda: self.free.__delitem__(slice(before, None)))

    def release_page(self, row: int, column: int) -> None:
        """Row `row` holds no page at `column` any more (the page is free once no row holds it)."""
        number = int(self.pages()[row, column])
        self._set_page(row, column, -1)
        count = int(self.array(self.var.refs_slot)[number]) - 1
        self._set_ref(number, count)
        self._free([number] if count == 0 else [])

    def release(self, first: int, count: int) -> None:
        """Rows `first .. first + count - 1` hold no pages; a page no row holds any more is free."""
        rows = self.pages()[first : first + count]
        held = rows[rows >= 0]
        if held.size == 0:
            return
        refs = self.array(self.var.refs_slot)
        numbers, times = np.unique(held, return_counts=True)
        before_rows, before_refs = rows.copy(), refs[numbers].copy()
        refs[numbers] -= times
        rows[...] = -1

        def undo() -> None:
            self.pages()[first : first + count] = before_rows
            self.array(self.var.refs_slot)[numbers] = before_refs

        self.state.undo(undo)
        self._free([int(n) for n in numbers[refs[numbers] == 0]])

    def grow_index(self, dim: int, need: int) -> None:
        """Index `dim`'s capacity to at least `need`, doubling as a dense table's (and refused as
        one would be): a larger page table; no entry moves."""
        var, caps = self.var, self.capacities()
        old = self.array(var.pages_slot)
        grown = list(caps)
        grown[dim] = max(2 * caps[dim], need)
        if dense_box_error(var.dtype, var.shape, grown) is not None:
            raise growth_error(var.name, dim, need, grown)
        try:
            table = self._empty_page_table(grown)
        except ExecutionError:  # pages of one entry: a page table of 8 bytes per entry
            raise growth_error(var.name, dim, need, grown) from None
        table[tuple(slice(0, n) for n in old.shape)] = old
        self._set_page_table(grown, table)
        self.state.undo(lambda: self._set_page_table(caps, old))

    def recompute_sizes(self) -> None:
        """Each growable size from the present entries (`TableStorage.reset`'s rule); a page left
        with no present entry goes back to the pool (it holds only `@init`, as a new one would)."""
        var = self.var
        present = self.present_mask()
        for d, fixed in enumerate(var.fixed):
            if fixed is None:
                axes = tuple(a for a in range(var.rank) if a != d)
                hit = np.flatnonzero(present.any(axis=axes)) if present.size else []
                self.words[var.size_slot(d)] = int(hit[-1]) + 1 if len(hit) else 0
        pages = self.pages()
        held = pages >= 0
        empty = np.zeros_like(held)
        empty[held] = ~self.present_view()[pages[held]].any(axis=-1)
        for row, column in zip(*np.nonzero(empty)):
            self.release_page(int(row), int(column))

    # --- the table as the reference holds it ------------------------------------------------
    def gathered(self, keys: list[np.ndarray], source: np.ndarray | None, fill) -> np.ndarray:
        """`source` (per pool entry; None: the entries themselves) at every key of the grid `keys`
        (per index, the values it takes), `fill` where no page holds it; memory of the grid's size,
        whatever the page size."""
        t = keys[-1]
        numbers = self.array(self.var.pages_slot)[np.ix_(*keys[:-1], t // self.page)]
        held = numbers >= 0
        at = (numbers * self.page + t % self.page)[held]
        if source is None:
            source, at = self._entries_at(at)
        out = np.empty([*numbers.shape, *source.shape[1:]], source.dtype)
        out[held] = source[at]
        out[~held] = fill
        return out

    def _entries_at(self, at: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The pool's entries on the host, and where the entries `at` are in them: the pool itself,
        or on the device a copy of the run of pages from the first `at` to the last (not the
        whole pool: a view copied out before a write changes it is often one page)."""
        data = self.array(self.var.data_slot)
        if not isinstance(data, DeviceBuffer):
            return data, at
        if not at.size:
            return np.empty((0, *self.var.shape), self.entry_dtype), at
        first, last = int(at.min()) // self.page * self.page, int(at.max()) // self.page * self.page + self.page
        return data.get((slice(first, last),)), at - first

    def select(self, selection: list[int | slice]) -> np.ndarray:
        """The entries a selection (an index or a slice per index) shows, indexed dims dropped, as
        a dense table's `data[selection]` would."""
        keys = [np.arange(s.start, s.stop) if isinstance(s, slice) else np.array([s]) for s in selection]
        init = init_array([], self.var.dtype, self.var.init)
        out = self.gathered(keys, None, init)
        return out.reshape([len(k) for k, s in zip(keys, selection) if isinstance(s, slice)] + list(self.var.shape))

    def dense(self) -> np.ndarray:
        """The entries up to the sizes, as a dense table holds them (`@init` where never written)."""
        sizes = self.state.sizes(self.var)
        init = init_array([], self.var.dtype, self.var.init)
        return np.ascontiguousarray(self.gathered(_box(sizes), None, init))

    def present_mask(self, box: list[int] | None = None) -> np.ndarray:
        box = box if box is not None else self.capacities()
        return self.gathered(_box(box), self.array(self.var.present_slot), 0) != 0

    def present_keys(self) -> list[tuple[int, ...]]:
        return [tuple(int(k) for k in key) for key in zip(*np.nonzero(self.present_mask()))]

    def page_of(self, key: tuple[int, ...], caps: list[int] | None = None) -> tuple[int, int]:
        """(row, column) of the page table holding `key` (in the capacity box `caps`, default the
        current one)."""
        caps = caps if caps is not None else self.capacities()
        row = int(np.ravel_multi_index(key[:-1], caps[:-1])) if len(key) > 1 else 0
        return row, key[-1] // self.page

    def place(self, key: tuple[int, ...]) -> tuple[int, int]:
        """(page, entry in the page) of `key`, which a page holds."""
        return int(self.pages()[self.page_of(key)]), key[-1] % self.page

    def entries(self) -> list[tuple[tuple[int, ...], np.ndarray]]:
        """Each present entry's key and value (a copy), in key order."""
        pool = self.pool_view()
        return [(key, pool[self.place(key)].copy()) for key in self.present_keys()]

    def load(self, sizes: list[int], entries: dict) -> None:
        """The table anew, holding `entries` (from a saved state), outside any step."""
        var = self.var
        caps = [first_capacity(s, f) for s, f in zip(sizes, var.fixed)]
        columns = {self.page_of(k, caps) for k in entries}
        self.create(caps, max(var.pool, len(columns)))
        for row, column in sorted(columns):
            self.page_for(row, column)
        pool = self.pool_view()  # (on the device a copy, put back whole below)
        for key, value in entries.items():
            pool[self.place(key)] = value
            self.present_view()[self.place(key)] = 1
        if self.memory is not None and self.used:
            entries = pool.reshape(self.pool * self.page, *var.shape)
            self.array(var.data_slot).set_rows(0, entries[: self.used * self.page])
        for d, s in enumerate(sizes):
            self.words[var.size_slot(d)] = s

    # --- what it holds ------------------------------------------------------------------------
    def nbytes(self) -> int:
        """Memory the table holds: the page table, and every pool page a row ever took (the
        high-water mark: a page given back stays backed, to be taken again); a page never taken
        is reserved address space nothing wrote, which the OS has not backed."""
        return self.array(self.var.pages_slot).nbytes + self.used * self.page_bytes

    def csr(self) -> PageTable:
        sizes = self.state.sizes(self.var)
        present = self.present_mask(sizes)
        rows = sizes[:-1]
        count = math.prod(rows)
        flat = present.reshape(count, sizes[-1])
        pages = self.array(self.var.pages_slot)
        table = pages[tuple(slice(0, n) for n in rows)].reshape(count, pages.shape[-1])
        indptr, indices, last = [0], [], []
        for r, row in enumerate(flat):
            hit = np.flatnonzero(row)
            length = int(hit[-1]) + 1 if hit.size else 0
            columns = -(-length // self.page)
            indices.extend(int(n) for n in table[r, :columns])
            indptr.append(len(indices))
            last.append(length - (columns - 1) * self.page if columns else 0)
        held = self.pages()[self.pages() >= 0]
        return PageTable(self.page, tuple(rows), np.array(indptr, np.int64), np.array(indices, np.int64),
                         np.array(last, np.int64), self.pool, len(np.unique(held)))  # fmt: skip


def _box(sizes: list[int]) -> list[np.ndarray]:
    """The grid of every key below `sizes` (`PagePool.gathered`'s keys)."""
    return [np.arange(n) for n in sizes]
