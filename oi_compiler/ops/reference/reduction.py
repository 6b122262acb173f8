"""Reductions: sum_axis, mean_axis, prod_axis, max_axis, min_axis, argmax_axis, argmin_axis.

Upstream's CPU kernels (`src/ops/cpu/reduction/*/kernels/normal.rs`, `reduce.rs`) are
followed:

* `axes` (int_list) is required for sum/mean/prod/max/min (`op sum_axis missing axes
  attribute`); negatives count from the end, duplicates are merged, `[]` is an error.
  argmax/argmin need one `axis` (`op argmax_axis missing axis attribute`). `keepdims`
  (default false) keeps reduced axes as size 1.
* Each output visits its reduced elements one at a time in row-major order of the
  reduced coordinates (the order of upstream's loop over the input).
* sum/prod: floats start from 0.0 / 1.0 in float32 (float64 for f64) and add/multiply
  one element at a time, then round once to the output dtype; integers accumulate in
  int64/uint64 with wrap-around and wrap to the output width (the acc dtype in
  accumulate mode). Empty reductions give 0 / 1.
* mean: that sum divided by the element count (in the float math dtype); integer means
  divide the wrapped int64/uint64 sum and truncate toward zero. An empty float mean is
  NaN, an empty integer mean an error.
* max/min: `best = first; if x > best { best = x }` (`<` for min). A NaN first element
  stays (NaN compares false); later NaNs are skipped. The result is the first element
  equal to the extreme, so of 0.0 and -0.0 the first one wins. An empty reduction is an
  error (upstream leaves the output unwritten).
* argmax/argmin: the same scan over one axis, i64 output; `select_first` (default true)
  updates on `>` (`<`), false on `>=` (`<=`), so it keeps the first resp. last index
  among equal extremes. A leading NaN gives index 0.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from oi_compiler.ops.reference.core import convert, trunc_div, widen_all
from oi_compiler.ops.reference.settings import read_bool
from oi_compiler.ops.reference.shapes import fail, reduced_shape, reduction_axes, reduction_axis, shape_text


def _reduced_last(x: np.ndarray, axes: tuple[int, ...]) -> np.ndarray:
    """`x` with its kept axes first and the reduced axes merged into one last axis (row-major)."""
    keep = [i for i in range(x.ndim) if i not in axes]
    count = 1
    for a in axes:
        count *= x.shape[a]
    moved = np.transpose(x, keep + list(axes))
    return moved.reshape(tuple(x.shape[i] for i in keep) + (count,))


def sequential(op: str, x: np.ndarray, axes: tuple[int, ...]) -> np.ndarray:
    """sum (`op` sum_axis/mean_axis) or product of the reduced elements, one element at a time.

    Floats start from 0.0 (1.0) and combine the reduced elements in row-major order, as
    upstream's loop does. Wide outputs loop over the reduced elements with whole-output
    vectorised adds; narrow ones use `ufunc.accumulate` along the merged reduced axis, which
    is strictly sequential too. Integer arithmetic wraps modulo 2**64 and is exact in any order.
    """
    product = op == "prod_axis"
    if x.dtype.kind != "f":
        return (np.prod if product else np.sum)(x, axis=axes, dtype=x.dtype)
    keep = [i for i in range(x.ndim) if i not in axes]
    kept = tuple(x.shape[i] for i in keep)
    count = 1
    for a in axes:
        count *= x.shape[a]
    start = (np.ones if product else np.zeros)(kept, x.dtype)
    if count == 0:
        return start
    if count <= start.size:  # few reduced elements per output: one vectorised step each
        step = np.multiply if product else np.add
        for element in np.transpose(x, list(axes) + keep).reshape((count,) + kept):
            step(start, element, out=start)
        return start
    flat = _reduced_last(x, axes)
    if product:  # 1.0 * x0 == x0, so starting from x0 is exact
        return np.multiply.accumulate(flat, axis=-1)[..., -1]
    # starting from x0 instead of 0.0 differs only when every element is -0.0 (then -0.0,
    # where upstream's 0.0 + -0.0 + ... gives +0.0); the final `+ 0.0` fixes exactly that
    return np.add.accumulate(flat, axis=-1)[..., -1] + x.dtype.type(0.0)


def _keep(values: np.ndarray, shape: tuple[int, ...], axes: tuple[int, ...], keepdims: bool) -> np.ndarray:
    return np.asarray(values).reshape(reduced_shape(shape, axes, keepdims))


def total(op: str, inputs: list[np.ndarray], settings: Mapping[str, Any], out: str) -> np.ndarray:
    (x,) = widen_all(inputs)
    axes = reduction_axes(op, x.ndim, settings)
    keepdims = read_bool(op, settings, "keepdims", False)
    return convert(_keep(sequential(op, x, axes), x.shape, axes, keepdims), out)


def mean(op: str, inputs: list[np.ndarray], settings: Mapping[str, Any], out: str) -> np.ndarray:
    (x,) = widen_all(inputs)
    axes = reduction_axes(op, x.ndim, settings)
    keepdims = read_bool(op, settings, "keepdims", False)
    count = int(np.prod([x.shape[a] for a in axes], dtype=np.int64))
    sums = np.asarray(sequential(op, x, axes))
    if x.dtype.kind == "f":
        means = sums / x.dtype.type(count)
    elif count == 0:
        raise fail(op, f"reduces over an empty axis of {shape_text(x.shape)}")
    else:
        means = trunc_div(sums, np.asarray(count, x.dtype))
    return convert(_keep(means, x.shape, axes, keepdims), out)


def scan_index(flat: np.ndarray, want_max: bool, select_first: bool) -> np.ndarray:
    """Index (int64, shape flat.shape[:-1]) upstream's scan over the last axis ends on.

    The scan keeps `best = flat[0]` and moves to x when `x > best` (`>=` without
    select_first; `<`/`<=` for min). NaN never compares true, so a leading NaN is kept
    and later NaNs are skipped; otherwise it ends on the first (last) element equal to
    the NaN-ignoring extreme. Needs flat.shape[-1] >= 1.
    """
    if flat.dtype.kind == "f":
        best = (np.fmax if want_max else np.fmin).reduce(flat, axis=-1, keepdims=True)
    else:
        best = (np.max if want_max else np.min)(flat, axis=-1, keepdims=True)
    hits = flat == best
    if select_first:
        index = np.argmax(hits, axis=-1)
    else:
        index = flat.shape[-1] - 1 - np.argmax(hits[..., ::-1], axis=-1)
    index = np.where(hits.any(axis=-1), index, 0)
    if flat.dtype.kind == "f":
        index = np.where(np.isnan(flat[..., 0]), 0, index)
    return index.astype(np.int64)


def extreme(op: str, inputs: list[np.ndarray], settings: Mapping[str, Any], out: str) -> np.ndarray:
    (x,) = widen_all(inputs)
    axes = reduction_axes(op, x.ndim, settings)
    keepdims = read_bool(op, settings, "keepdims", False)
    flat = _reduced_last(x, axes)
    index = scan_index(flat, op == "max_axis", select_first=True)
    values = np.take_along_axis(flat, index[..., None], axis=-1)[..., 0]
    return convert(_keep(values, x.shape, axes, keepdims), out)


def arg_extreme(op: str, inputs: list[np.ndarray], settings: Mapping[str, Any], out: str) -> np.ndarray:
    (x,) = widen_all(inputs)
    axis = reduction_axis(op, x.ndim, settings)
    keepdims = read_bool(op, settings, "keepdims", False)
    select_first = read_bool(op, settings, "select_first", True)
    index = scan_index(np.moveaxis(x, axis, -1), op == "argmax_axis", select_first)
    return convert(_keep(index, x.shape, (axis,), keepdims), out)


KERNELS = {
    "sum_axis": total,
    "prod_axis": total,
    "mean_axis": mean,
    "max_axis": extreme,
    "min_axis": extreme,
    "argmax_axis": arg_extreme,
    "argmin_axis": arg_extreme,
}
