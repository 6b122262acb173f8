"""Decoder ops beyond upstream OpenInfer: activations, norms, layout, rope and attention.

The registry's `_load` adds these entries (and their setting kinds) after the
47 upstream ops, so `lookup_op("softmax")` works and the graph verifier checks
them like any other op. Their numpy references live in
`oi_compiler.ops.reference` (`activations`, `normalization`, `layout`,
`attention`); `docs/ops.md` describes each one.

`broadcast=True` on concat and attention only tells the verifier that their
inputs may differ in shape (as for matmul); their shape rules say which
shapes are valid.
"""

from __future__ import annotations

from oi_compiler.ops.registry import OpSpec, SettingSpec

FLOATS = frozenset({"f16", "bf16", "f32", "f64"})

SETTINGS: tuple[SettingSpec, ...] = (
    SettingSpec("eps", "scalar", ("float",)),
    SettingSpec("theta", "scalar", ("float",)),
    SettingSpec("scale", "scalar", ("float",)),
    SettingSpec("position", "scalar", ("int", "uint")),
    SettingSpec("causal", "scalar", ("bool",)),
    SettingSpec("perm", "int_list"),
    SettingSpec("shape", "int_list"),
    SettingSpec("approximate", "string"),
)

_UNARY_DOCS = {
    "exp": "e**x",
    "log": "natural logarithm",
    "sqrt": "square root",
    "rsqrt": "1 / sqrt(x)",
    "tanh": "hyperbolic tangent",
    "sigmoid": "1 / (1 + e**-x)",
    "silu": "x * sigmoid(x)",
    "gelu": 'x * Phi(x); approximate="none" (erf) or "tanh"',
}


def _activation(name: str, doc: str) -> OpSpec:
    settings = ("approximate",) if name == "gelu" else ()
    return OpSpec(name, 1, settings, inplace=True, dtypes=FLOATS, category="activation", doc=doc)


def decoder_ops() -> list[OpSpec]:
    """The decoder op entries (without references: the registry attaches those)."""
    any_dtype = None
    return [
        *(_activation(name, doc) for name, doc in _UNARY_DOCS.items()),
        OpSpec("softmax", 1, ("axis",), inplace=True, dtypes=FLOATS, category="activation",
               doc="numerically stable softmax along axis (default -1)"),
        OpSpec("rms_norm", 1, ("eps",), inplace=True, dtypes=FLOATS, category="normalization",
               doc="x / sqrt(mean(x*x, last axis) + eps), eps default 1e-6"),
        OpSpec("layer_norm", 1, ("eps",), inplace=True, dtypes=FLOATS, category="normalization",
               doc="(x - mean) / sqrt(var + eps) over the last axis, eps default 1e-5"),
        OpSpec("transpose", 1, ("perm",), dtypes=any_dtype, category="layout",
               doc="permute axes (perm default: reversed)"),
        OpSpec("reshape", 1, ("shape",), dtypes=any_dtype, category="layout",
               doc="row-major reshape; shape may hold one -1"),
        OpSpec("concat", 2, ("axis",), broadcast=True, dtypes=any_dtype, category="layout",
               doc="join two tensors along axis (default 0)"),
        OpSpec("rope", 1, ("position", "theta"), inplace=True, dtypes=FLOATS, category="attention",
               doc="rotary embedding, rotate-half convention; theta default 10000.0"),
        OpSpec("attention", 3, ("causal", "scale"), broadcast=True, dtypes=FLOATS, category="attention",
               doc="softmax(scale * q k^T) v with grouped kv heads; q [H, Dh] or [S, H, Dh], k/v [T, Hk, Dh]"),
    ]  # fmt: skip
