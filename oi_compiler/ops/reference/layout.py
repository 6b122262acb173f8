"""Layout (decoder ops): transpose, reshape, concat. Any dtype; values are copied unchanged.

* transpose: `perm` (default: the axes reversed), negative entries count from
  the end; output dim i is input dim perm[i].
* reshape: `shape` (required), row-major; at most one -1 (inferred); 0 is a
  literal 0-size dim (not ONNX's "copy the input dim").
* concat(a, b): along `axis` (default 0); same rank >= 1, same dims off the
  axis, same dtype.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from oi_compiler.dtypes import numpy_dtype
from oi_compiler.ops.reference.core import dtype_of
from oi_compiler.ops.reference.settings import read_int
from oi_compiler.ops.reference.shapes import fail, normalize_axis, shape_of, transpose_perm


def transpose(op: str, inputs: list[np.ndarray], settings: Mapping[str, Any], out: str) -> np.ndarray:
    x = inputs[0]
    perm = transpose_perm(op, x.ndim, settings)
    return np.transpose(x, perm).astype(numpy_dtype(out))


def reshape(op: str, inputs: list[np.ndarray], settings: Mapping[str, Any], out: str) -> np.ndarray:
    x = inputs[0]
    return x.reshape(shape_of(op, [x.shape], settings)).astype(numpy_dtype(out))


def concat(op: str, inputs: list[np.ndarray], settings: Mapping[str, Any], out: str) -> np.ndarray:
    a, b = inputs
    if a.dtype != b.dtype:
        raise fail(op, f"inputs have different dtypes: {dtype_of(a)} vs {dtype_of(b)}")
    axis = normalize_axis(op, read_int(op, settings, "axis", 0), a.ndim)
    return np.concatenate([a, b], axis=axis).astype(numpy_dtype(out))


KERNELS = {"transpose": transpose, "reshape": reshape, "concat": concat}
