"""Normalization (decoder ops): rms_norm and layer_norm over the last axis.

* rms_norm: `x / sqrt(mean(x * x) + eps)`, eps default 1e-6. No weight: multiply
  by one with `mul` (it broadcasts).
* layer_norm: `(x - mean) / sqrt(var + eps)` with the population variance
  (divide by N), eps default 1e-5. No weight or bias.

Float inputs only; math in float32 (float64 for f64), rounded once at the end.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from oi_compiler.ops.reference.core import convert, require_float
from oi_compiler.ops.reference.settings import read_float


def rms_norm(op: str, inputs: list[np.ndarray], settings: Mapping[str, Any], out: str) -> np.ndarray:
    x = require_float(op, inputs[0])
    eps = x.dtype.type(read_float(op, settings, "eps", 1e-6))
    return convert(x / np.sqrt(np.mean(x * x, axis=-1, keepdims=True) + eps), out)


def layer_norm(op: str, inputs: list[np.ndarray], settings: Mapping[str, Any], out: str) -> np.ndarray:
    x = require_float(op, inputs[0])
    eps = x.dtype.type(read_float(op, settings, "eps", 1e-5))
    centered = x - np.mean(x, axis=-1, keepdims=True)
    variance = np.mean(centered * centered, axis=-1, keepdims=True)
    return convert(centered / np.sqrt(variance + eps), out)


KERNELS = {"rms_norm": rms_norm, "layer_norm": layer_norm}
