"""Checks shared by the statement test files: bit-exact comparison, a step that must leave every
persistent variable as it was when it fails, and a paged table's page table against a model."""

from __future__ import annotations

import numpy as np

import oi_compiler as oi


def bits(a: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(a).reshape(-1).view(np.uint8)


def assert_bits(actual: np.ndarray, expected: np.ndarray, what: str = "") -> None:
    actual = np.asarray(actual)
    assert actual.dtype == expected.dtype, f"{what}: dtype {actual.dtype} != {expected.dtype}"
    assert actual.shape == expected.shape, f"{what}: shape {actual.shape} != {expected.shape}"
    np.testing.assert_array_equal(bits(actual), bits(expected), err_msg=what)


def snapshot(exe: oi.Executor) -> dict[str, tuple[np.ndarray, list[int]]]:
    """Every persistent variable's state (a copy) and sizes."""
    return {n: (np.array(exe.state(n)), exe.table_sizes(n)) for n in exe.bound.persistent_names()}


def assert_same_snapshot(actual: dict, expected: dict, what: str = "") -> None:
    assert actual.keys() == expected.keys(), what
    for name, (value, sizes) in expected.items():
        assert actual[name][1] == sizes, f"{what}: table_sizes({name}) {actual[name][1]} != {sizes}"
        assert_bits(actual[name][0], value, f"{what}: state({name})")


def step(exe: oi.Executor, values: dict) -> oi.OiError | None:
    """One step; the `OiError` it raised, after checking that a failed step changed no persistent state."""
    exe.insert(**values)
    before, count = snapshot(exe), exe.steps
    try:
        exe.step()
    except oi.OiError as e:
        assert_same_snapshot(snapshot(exe), before, f"after the failed step ({e.message})")
        assert exe.steps == count
        return e
    assert exe.steps == count + 1
    return None


def error_text(e: oi.OiError | None) -> tuple | None:
    return None if e is None else (type(e).__name__, e.message, str(e.loc), getattr(e, "node", None))


def assert_page_table(pt: oi.PageTable, sizes: list[int], fixed_last: int | None, page: int,
                      present: list[tuple[int, ...]], what: str = "") -> None:  # fmt: skip
    """`exe.page_table` of a `@paged(page = page)` table against a model's `sizes` and `present`
    keys: a page never longer than a `@fixed` last index; one row per key of the leading indices up
    to their sizes, each as long as its last present entry + 1 (so many pages, the last holding the
    rest); a page (valid, none twice in a row) for every page a present entry lies in (-1 only
    where the row holds none); at least the pages the rows hold in use, at most the pool's."""
    what = f"{what}: {pt}"
    rows = list(np.ndindex(*sizes[:-1]))
    page = min(page, fixed_last or page)
    assert (pt.page_size, pt.rows) == (page, tuple(sizes[:-1])), what
    assert len(pt.indptr) == len(rows) + 1 and len(pt.last_page_len) == len(rows), what
    assert pt.indptr[0] == 0 and pt.indptr[-1] == len(pt.indices) and (np.diff(pt.indptr) >= 0).all(), what
    last: dict[tuple[int, ...], list[int]] = {}
    for key in present:
        last.setdefault(tuple(key[:-1]), []).append(key[-1])
    for r, row in enumerate(rows):
        ts = last.get(row, [])
        length = max(ts) + 1 if ts else 0
        columns = -(-length // page)
        pages = pt.indices[pt.indptr[r] : pt.indptr[r + 1]].tolist()
        assert len(pages) == columns, f"{what} row {row}"
        assert pt.last_page_len[r] == (length - (columns - 1) * page if columns else 0), f"{what} row {row}"
        assert all(pages[t // page] >= 0 for t in ts), f"{what} row {row}"
        held = [n for n in pages if n >= 0]
        assert len(set(held)) == len(held), f"{what} row {row}"
    assert ((pt.indices >= -1) & (pt.indices < pt.pool_pages)).all(), what
    assert len(set(pt.indices.tolist()) - {-1}) <= pt.pages_in_use <= pt.pool_pages, what
