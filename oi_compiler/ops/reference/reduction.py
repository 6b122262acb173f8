"""Reductions: sum_axis, mean_axis, prod_axis, max_axis, min_axis, argmax_axis, argmin_axis.

`axes` (int_list) picks the reduced axes: negatives count from the end,
duplicates are merged, absent means every axis, `[]` is an error (upstream).
`keepdims` (default false) keeps reduced axes as size 1.

* sum/prod: floats accumulate in float32 (float64 for f64) and round once;
  integers accumulate in int64/uint64 and wrap to the output width (the acc
  dtype in accumulate mode). Empty reductions give 0 / 1.
* mean: the sum divided by the element count; integer means divide the
  int64/uint64 sum and truncate toward zero (upstream). An empty float mean
  is NaN, an empty integer mean an error.
* max/min: floats ignore NaN (like the elementwise max/min); all-NaN gives
  NaN; an empty reduction is an error.
* argmax/argmin: one `axis` (default 0), i64 output; `select_first` (default
  true) picks the first index among equal extremes, false the last. NaN is
  ignored (index 0 when all are NaN).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from oi_compiler.ops.reference.core import convert, trunc_div, widen_all
from oi_compiler.ops.reference.settings import read_bool, read_int
from oi_compiler.ops.reference.shapes import fail, normalize_axis, reduction_axes, shape_text


def _axes(op: str, x: np.ndarray, settings: Mapping[str, Any]) -> tuple[tuple[int, ...], bool]:
    return reduction_axes(op, x.ndim, settings), read_bool(op, settings, "keepdims", False)


def total(op: str, inputs: list[np.ndarray], settings: Mapping[str, Any], out: str) -> np.ndarray:
    (x,) = widen_all(inputs)
    axes, keepdims = _axes(op, x, settings)
    reduce = np.prod if op == "prod_axis" else np.sum
    return convert(reduce(x, axis=axes, keepdims=keepdims, dtype=x.dtype), out)


def mean(op: str, inputs: list[np.ndarray], settings: Mapping[str, Any], out: str) -> np.ndarray:
    (x,) = widen_all(inputs)
    axes, keepdims = _axes(op, x, settings)
    count = int(np.prod([x.shape[a] for a in axes], dtype=np.int64))
    sums = np.sum(x, axis=axes, keepdims=keepdims, dtype=x.dtype)
    if x.dtype.kind == "f":
        return convert(sums / x.dtype.type(count), out)
    if count == 0:
        raise fail(op, f"reduces over an empty axis of {shape_text(x.shape)}")
    return convert(trunc_div(np.asarray(sums), np.asarray(count, x.dtype)), out)


def _extreme_values(want_max: bool, x: np.ndarray, axes: tuple[int, ...], keepdims: bool) -> np.ndarray:
    if x.dtype.kind == "f":
        ufunc = np.fmax if want_max else np.fmin
    else:
        ufunc = np.maximum if want_max else np.minimum
    return ufunc.reduce(x, axis=axes, keepdims=keepdims) if axes else x


def extreme(op: str, inputs: list[np.ndarray], settings: Mapping[str, Any], out: str) -> np.ndarray:
    (x,) = widen_all(inputs)
    axes, keepdims = _axes(op, x, settings)
    return convert(_extreme_values(op == "max_axis", x, axes, keepdims), out)


def arg_extreme(op: str, inputs: list[np.ndarray], settings: Mapping[str, Any], out: str) -> np.ndarray:
    (x,) = widen_all(inputs)
    axis = normalize_axis(op, read_int(op, settings, "axis", 0), x.ndim)
    keepdims = read_bool(op, settings, "keepdims", False)
    best = _extreme_values(op == "argmax_axis", x, (axis,), keepdims=True)
    hits = np.moveaxis(x == best, axis, -1)
    if not read_bool(op, settings, "select_first", True):
        index = hits.shape[-1] - 1 - np.argmax(hits[..., ::-1], axis=-1)
        index = np.where(hits.any(axis=-1), index, 0)
    else:
        index = np.argmax(hits, axis=-1)
    if keepdims:
        index = np.expand_dims(index, axis)
    return convert(index.astype(np.int64), out)


KERNELS = {
    "sum_axis": total,
    "prod_axis": total,
    "mean_axis": mean,
    "max_axis": extreme,
    "min_axis": extreme,
    "argmax_axis": arg_extreme,
    "argmin_axis": arg_extreme,
}
