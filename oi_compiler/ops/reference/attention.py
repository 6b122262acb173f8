"""Attention (decoder ops): rope and attention.

rope(x [..., Dh], position=p, theta=10000.0): rotate-half convention (GPT-NeoX,
HF Llama). `inv_freq[i] = theta ** (-2i / Dh)` for i < Dh/2, angle =
p * inv_freq (both float64), x1 = x[..., :Dh/2], x2 = x[..., Dh/2:],
out = concat(x1 cos - x2 sin, x2 cos + x1 sin). Every row gets the same
position; the products are computed in float32 (float64 for f64 inputs).
`position` is required (an integer; the executor resolves a variable name).

attention(q, k, v): q is [H, Dh] (one query) or [S, H, Dh]; k and v are
[T, Hk, Dh] with H a multiple of Hk (grouped-query attention: query head h
reads kv head h // (H / Hk)). scores = scale * q . k (scale default
1/sqrt(Dh)), softmax over the keys (max-subtracted), output = weights . v,
shaped like q. With `causal=true` query i of S sits at position T - S + i and
sees keys j <= T - S + i (S > T is an error). Math in float32 (float64 when
any input is f64).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from oi_compiler.ops.reference.activations import softmax_of
from oi_compiler.ops.reference.core import convert, require_float
from oi_compiler.ops.reference.settings import read_bool, read_float, read_int


def rope_angles(position: int, theta: float, head_dim: int) -> np.ndarray:
    """`position * theta ** (-2i / head_dim)` for i < head_dim / 2, in float64."""
    i = np.arange(head_dim // 2, dtype=np.float64)
    return position * theta ** (-2.0 * i / head_dim)


def rope(op: str, inputs: list[np.ndarray], settings: Mapping[str, Any], out: str) -> np.ndarray:
    x = require_float(op, inputs[0])
    angles = rope_angles(read_int(op, settings, "position"), read_float(op, settings, "theta", 10000.0), x.shape[-1])
    cos, sin = np.cos(angles).astype(x.dtype), np.sin(angles).astype(x.dtype)
    half = x.shape[-1] // 2
    x1, x2 = x[..., :half], x[..., half:]
    return convert(np.concatenate([x1 * cos - x2 * sin, x2 * cos + x1 * sin], axis=-1), out)


def causal_mask(queries: int, keys: int) -> np.ndarray:
    """[S, T] bool: query i (at position T - S + i) may see key j."""
    return np.arange(keys)[None, :] <= (keys - queries + np.arange(queries))[:, None]


def attention(op: str, inputs: list[np.ndarray], settings: Mapping[str, Any], out: str) -> np.ndarray:
    q, k, v = (require_float(op, x) for x in inputs)
    dtype = np.result_type(q, k, v)
    q, k, v = q.astype(dtype), k.astype(dtype), v.astype(dtype)
    queries = q.reshape((-1,) + q.shape[-2:])  # [S, H, Dh]
    group = queries.shape[1] // k.shape[1]
    k, v = np.repeat(k, group, axis=1), np.repeat(v, group, axis=1)  # [T, H, Dh]
    scale = dtype.type(read_float(op, settings, "scale", 1 / math.sqrt(q.shape[-1])))
    scores = np.einsum("shd,thd->hst", queries, k) * scale
    if read_bool(op, settings, "causal", False):
        scores = np.where(causal_mask(queries.shape[0], k.shape[0]), scores, -np.inf)
    weights = softmax_of(scores, axis=-1)
    return convert(np.einsum("hst,thd->shd", weights, v).reshape(q.shape), out)


KERNELS = {"rope": rope, "attention": attention}
