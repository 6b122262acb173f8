"""The decoder models the decode-step benchmarks share (decode_step.py, gpu_decode.py).

examples/tiny_decoder.oi at two sizes, its weights (examples/tiny_decoder.py's `make_model`) and
the rotary tables of a position, as numpy and torch implementations of the same step need them.
Importing this module puts examples/ on `sys.path` and exposes the example as `td`.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
if str(EXAMPLES) not in sys.path:
    sys.path.insert(0, str(EXAMPLES))

import tiny_decoder as td  # noqa: E402

#: tiny: the example's default dims; larger: 4 layers, about 12.6 M parameters (50 MB of f32).
SIZES: dict[str, dict[str, int]] = {
    "tiny": dict(td.DIMS),  # D=32 H=4 Hk=2 Dh=8 F=64 NV=48 L=2
    "larger": dict(td.DIMS, L=4, D=512, H=8, Hk=4, Dh=64, F=1536, NV=256),
}


def model_and_weights(dims: dict[str, int], seed: int = 0):
    """The `oi.Model` of tiny_decoder.oi at `dims` (seeded weights) and its tensors by name."""
    model = td.make_model(seed, dims)
    return model, {name: model.tensor(name) for name in model.tensor_names()}


def rope_tables(position: int, dh: int, theta: float = td.THETA) -> tuple[np.ndarray, np.ndarray]:
    """cos and sin [Dh] (float32) of one position, "rotate half" layout, angles in float64."""
    half = dh // 2
    angle = position * theta ** (-2.0 * np.arange(half) / dh)
    cos, sin = np.cos(angle), np.sin(angle)
    return np.concatenate([cos, cos]).astype(np.float32), np.concatenate([sin, sin]).astype(np.float32)


def rope_table_rows(positions: int, dh: int, theta: float = td.THETA) -> tuple[np.ndarray, np.ndarray]:
    """`rope_tables` of positions 0..positions-1 as [positions, Dh] arrays (the same float64 math)."""
    half = dh // 2
    angle = np.arange(positions, dtype=np.float64)[:, None] * theta ** (-2.0 * np.arange(half) / dh)
    cos, sin = np.cos(angle), np.sin(angle)
    return (np.concatenate([cos, cos], axis=1).astype(np.float32),
            np.concatenate([sin, sin], axis=1).astype(np.float32))  # fmt: skip
