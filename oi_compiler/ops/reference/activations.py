"""Activations (decoder ops): exp, log, sqrt, rsqrt, tanh, sigmoid, silu, gelu, softmax.

Float inputs only; math in float32 (float64 for f64), one rounding to the
output dtype at the end.

* sigmoid is evaluated in the overflow-free form (`exp(-|x|)` only);
  silu(x) = x * sigmoid(x).
* gelu: `approximate="none"` (default) is the exact `0.5 x (1 + erf(x / sqrt 2))`
  (erf from Python's `math.erf`, in float64); `"tanh"` is
  `0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))`.
* softmax over `axis` (default -1): `exp(x - max) / sum(exp(x - max))`; a slice
  that is all -inf gives NaN.
* log(0) = -inf, log(x < 0) = NaN, sqrt(x < 0) = NaN, rsqrt(0) = +inf (IEEE).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from oi_compiler.ops.reference.core import convert, require_float
from oi_compiler.ops.reference.settings import read_int, read_str
from oi_compiler.ops.reference.shapes import fail, normalize_axis


def sigmoid_of(x: np.ndarray) -> np.ndarray:
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1 / (1 + e), e / (1 + e))


def gelu_of(op: str, x: np.ndarray, approximate: str) -> np.ndarray:
    if approximate == "tanh":
        c = x.dtype.type(math.sqrt(2 / math.pi))
        return 0.5 * x * (1 + np.tanh(c * (x + x.dtype.type(0.044715) * x**3)))
    if approximate != "none":
        raise fail(op, f'unsupported approximate {approximate!r} (expected "none" or "tanh")')
    x64 = x.astype(np.float64)
    erf = np.asarray(np.frompyfunc(math.erf, 1, 1)(x64 / math.sqrt(2)), dtype=np.float64)  # (0-d: a float)
    return (0.5 * x64 * (1 + erf)).astype(x.dtype)


_UNARY = {
    "exp": np.exp,
    "log": np.log,
    "sqrt": np.sqrt,
    "rsqrt": lambda x: 1 / np.sqrt(x),
    "tanh": np.tanh,
    "sigmoid": sigmoid_of,
    "silu": lambda x: x * sigmoid_of(x),
}


def unary(op: str, inputs: list[np.ndarray], settings: Mapping[str, Any], out: str) -> np.ndarray:
    x = require_float(op, inputs[0])
    return convert(_UNARY[op](x), out)


def gelu(op: str, inputs: list[np.ndarray], settings: Mapping[str, Any], out: str) -> np.ndarray:
    x = require_float(op, inputs[0])
    return convert(gelu_of(op, x, read_str(op, settings, "approximate", "none")), out)


def softmax_of(x: np.ndarray, axis: int) -> np.ndarray:
    shifted = x - np.max(x, axis=axis, keepdims=True) if x.shape[axis] else x
    e = np.exp(shifted)
    return e / np.sum(e, axis=axis, keepdims=True)


def softmax(op: str, inputs: list[np.ndarray], settings: Mapping[str, Any], out: str) -> np.ndarray:
    x = require_float(op, inputs[0])
    axis = normalize_axis(op, read_int(op, settings, "axis", -1), x.ndim)
    return convert(softmax_of(x, axis), out)


KERNELS = {**dict.fromkeys(_UNARY, unary), "gelu": gelu, "softmax": softmax}
