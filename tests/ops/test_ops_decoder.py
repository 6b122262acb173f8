"""Decoder ops beyond upstream (softmax, rms_norm, rope, attention, ...): registry entries and references.

References are compared with straightforward float64 formulas: per-head loops
for attention (causal masks, grouped kv heads), the complex-number rotation for
rope, `math.erf` for gelu.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import ml_dtypes
import numpy as np
import pytest
from hypothesis import given
from hypothesis import settings as hyp_settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import oi_compiler as oi
from oi_compiler.dtypes import DTYPE_NAMES, dtype_of_array, numpy_dtype
from oi_compiler.errors import ExecutionError
from oi_compiler.ops.registry import OpSpec, SettingSpec, lookup_op, register_op, setting_spec

FLOATS = ("f16", "bf16", "f32", "f64")
UNARY = ("exp", "log", "sqrt", "rsqrt", "tanh", "sigmoid", "silu", "gelu")
DECODER_OPS = UNARY + ("softmax", "rms_norm", "layer_norm", "transpose", "reshape", "concat", "rope", "attention")
# result vs float64 formula rounded to the dtype: one rounding of the dtype plus float32 noise
TOLERANCE = {"f16": 2e-3, "bf16": 1.6e-2, "f32": 2e-6, "f64": 1e-12}


def run(op: str, inputs: list[np.ndarray], settings: dict[str, Any] | None = None) -> np.ndarray:
    spec = lookup_op(op)
    assert spec is not None and spec.reference is not None
    out = dtype_of_array(inputs[0].dtype)
    assert out is not None
    result = spec.reference(inputs, settings or {}, out)
    assert result.dtype == inputs[0].dtype
    assert spec.shape_rule is not None and result.shape == spec.shape_rule([x.shape for x in inputs], settings or {})
    return result


def sample(dtype: str, shape: tuple[int, ...], seed: int, scale: float = 2.0) -> np.ndarray:
    values = np.random.default_rng(seed).normal(size=shape) * scale
    return (values if dtype == "f64" else values.astype(np.float32)).astype(numpy_dtype(dtype))


def check(result: np.ndarray, want: np.ndarray, dtype: str, atol: float = 0.0) -> None:
    """`result` equals the float64 `want` up to the dtype's rounding."""
    tol = TOLERANCE[dtype]
    np.testing.assert_allclose(result.astype(np.float64), want, rtol=tol, atol=atol + tol * 1e-3)


# --- registry --------------------------------------------------------------------------------------


def test_decoder_entries() -> None:
    expected = {
        **{op: (1, ("approximate",) if op == "gelu" else (), False, True, "activation") for op in UNARY},
        "softmax": (1, ("axis",), False, True, "activation"),
        "rms_norm": (1, ("eps",), False, True, "normalization"),
        "layer_norm": (1, ("eps",), False, True, "normalization"),
        "transpose": (1, ("perm",), False, False, "layout"),
        "reshape": (1, ("shape",), False, False, "layout"),
        "concat": (2, ("axis",), True, False, "layout"),
        "rope": (1, ("position", "theta"), False, True, "attention"),
        "attention": (3, ("causal", "scale"), True, False, "attention"),
    }
    for name, (arity, settings, broadcast, inplace, category) in expected.items():
        spec = lookup_op(name)
        assert spec is not None, name
        assert (spec.arity, spec.settings, spec.broadcast, spec.inplace, spec.category) == (
            arity, settings, broadcast, inplace, category,
        )  # fmt: skip
        assert not spec.accumulate and spec.output_dtype == ("same_as_input", 0)
        assert spec.dtypes == (None if category == "layout" else frozenset(FLOATS))
        assert spec.reference is not None and spec.shape_rule is not None and spec.doc


def test_decoder_setting_kinds() -> None:
    assert setting_spec("eps") == SettingSpec("eps", "scalar", ("float",))
    assert setting_spec("theta") == SettingSpec("theta", "scalar", ("float",))
    assert setting_spec("scale") == SettingSpec("scale", "scalar", ("float",))
    assert setting_spec("position") == SettingSpec("position", "scalar", ("int", "uint"))
    assert setting_spec("causal") == SettingSpec("causal", "scalar", ("bool",))
    assert setting_spec("perm") == SettingSpec("perm", "int_list")
    assert setting_spec("shape") == SettingSpec("shape", "int_list")
    assert setting_spec("approximate") == SettingSpec("approximate", "string")
    axis = setting_spec("axis")
    assert axis is not None and axis.kind == "scalar"  # the upstream entry, shared


PROGRAM = """
dynamic {{ x: f32[4, 8]; h: f16[4, 8]; pos: i32; }}
volatile {{ y: f32[4, 8]; k: f32[5, 2, 8]; v: f32[5, 2, 8]; a: f32[4, 8]; t: f32[8, 4]; c: f32[8, 8]; r: f32[32]; }}
block entry {{
  op softmax(x, axis=-1) >> y;
  op rms_norm(x, eps=1e-6) >> y;
  op rms_norm(y) >> y;
  op layer_norm(x) >> y;
  op gelu(x, approximate="tanh") >> y;
  op silu(y) >> y;
  op exp(h) >> h;
  op rope(x, position=pos, theta=10000.0) >> a;
  op rope(a, position=3) >> a;
  op attention(x, k, v, causal=true, scale=0.5) >> a;
  op transpose(x, perm=[1, 0]) >> t;
  op concat(x, x, axis=0) >> c;
  op reshape(x, shape=[-1]) >> r;
  {extra}
  return;
}}
"""


def test_verifier_accepts_decoder_ops() -> None:
    graph = oi.parse_graph(PROGRAM.format(extra=""), "dec.oi")
    assert graph is not None


@pytest.mark.parametrize(
    ("statement", "message"),
    [
        ("op rope(x, position=1.5) >> a;", "unsupported rope setting type: position"),
        ("op rms_norm(x, eps=1) >> y;", "unsupported rms_norm setting type: eps"),
        ("op softmax(x, eps=1.0) >> y;", "unsupported softmax setting: eps"),
        ("op transpose(x, perm=1) >> t;", "unsupported transpose setting type: perm"),
        ("op attention(x, k, v, causal=1) >> a;", "unsupported attention setting type: causal"),
        ("op exp(pos) >> pos;", "op exp does not support I32 -> I32 for mode Inplace"),
        ("op softmax(x, acc=[f64]) >> y;", "op softmax does not support accumulation"),
    ],
)
def test_verifier_rejects(statement: str, message: str) -> None:
    with pytest.raises(oi.VerifyError) as info:
        oi.parse_graph(PROGRAM.format(extra=statement), "dec.oi")
    assert info.value.message == message


def test_user_ops_keep_their_reference(scratch_registry: None) -> None:
    def mine(inputs: list[np.ndarray], settings: dict[str, Any], out: str) -> np.ndarray:
        return inputs[0] * 2

    spec = register_op(OpSpec(name="twice_it", arity=1, reference=mine))
    assert lookup_op("twice_it") is spec and spec.reference is mine and spec.shape_rule is None
    plain = register_op(OpSpec(name="plain_op", arity=1))
    assert plain.reference is None
    softmax = lookup_op("softmax")
    assert softmax is not None
    replaced = register_op(OpSpec(name="softmax", arity=1), replace=True)
    assert lookup_op("softmax") is replaced and replaced.reference is None


# --- elementwise activations ------------------------------------------------------------------------


def gelu_exact(x: np.ndarray) -> np.ndarray:
    return np.array([0.5 * v * (1 + math.erf(v / math.sqrt(2))) for v in x.ravel()]).reshape(x.shape)


def gelu_tanh(x: np.ndarray) -> np.ndarray:
    return 0.5 * x * (1 + np.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x**3)))


FORMULAS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "exp": np.exp,
    "log": np.log,
    "sqrt": np.sqrt,
    "rsqrt": lambda x: 1 / np.sqrt(x),
    "tanh": np.tanh,
    "sigmoid": lambda x: 1 / (1 + np.exp(-x)),
    "silu": lambda x: x / (1 + np.exp(-x)),
    "gelu": gelu_exact,
}


@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("op", UNARY)
def test_unary_activations(op: str, dtype: str) -> None:
    x = sample(dtype, (3, 5, 4), seed=1)
    if op in ("log", "sqrt", "rsqrt"):
        x = np.abs(x.astype(np.float64)).astype(numpy_dtype(dtype)) + numpy_dtype(dtype).type(0.01)
    want = FORMULAS[op](x.astype(np.float64))
    check(run(op, [x]), want, dtype)


def test_gelu_tanh_and_specials() -> None:
    x = sample("f32", (64,), seed=2, scale=3.0)
    # 1 + tanh(..) cancels for x << 0 in float32: compare absolutely there
    check(run("gelu", [x], {"approximate": "tanh"}), gelu_tanh(x.astype(np.float64)), "f32", atol=1e-6)
    check(run("gelu", [x], {"approximate": "none"}), gelu_exact(x.astype(np.float64)), "f32")
    assert not np.allclose(run("gelu", [x], {"approximate": "tanh"}), run("gelu", [x]), rtol=0, atol=1e-6)
    big = np.array([-1000.0, -200.0, 0.0, 200.0, 1000.0], np.float32)
    np.testing.assert_array_equal(run("sigmoid", [big]), np.array([0.0, 0.0, 0.5, 1.0, 1.0], np.float32))
    np.testing.assert_array_equal(run("silu", [big]), np.array([-0.0, -0.0, 0.0, 200.0, 1000.0], np.float32))
    edge = np.array([0.0, -1.0, np.inf], np.float32)
    np.testing.assert_array_equal(run("log", [edge]), np.array([-np.inf, np.nan, np.inf], np.float32))
    np.testing.assert_array_equal(run("rsqrt", [edge]), np.array([np.inf, np.nan, 0.0], np.float32))
    np.testing.assert_array_equal(run("exp", [np.array([100.0], np.float16)]), np.array([np.inf], np.float16))


# --- softmax and norms ------------------------------------------------------------------------------


def softmax64(x: np.ndarray, axis: int) -> np.ndarray:
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("axis", [None, -1, 0, 1, -2])
def test_softmax(dtype: str, axis: int | None) -> None:
    x = sample(dtype, (3, 4, 6), seed=3, scale=4.0)
    settings = {} if axis is None else {"axis": axis}
    want = softmax64(x.astype(np.float64), -1 if axis is None else axis)
    check(run("softmax", [x], settings), want, dtype, atol=1e-7)


def test_softmax_is_stable() -> None:
    x = np.array([[1000.0, 1001.0, 1002.0], [-np.inf, 0.0, 0.0], [-np.inf, -np.inf, -np.inf]], np.float32)
    result = run("softmax", [x])
    check(result[0], softmax64(np.array([0.0, 1.0, 2.0]), 0), "f32")
    np.testing.assert_array_equal(result[1], np.array([0.0, 0.5, 0.5], np.float32))
    assert np.isnan(result[2]).all()  # nothing to normalise
    np.testing.assert_array_equal(run("softmax", [np.zeros((2, 0), np.float32)]), np.zeros((2, 0), np.float32))


@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("eps", [None, 1e-2])
def test_rms_norm(dtype: str, eps: float | None) -> None:
    x = sample(dtype, (2, 3, 16), seed=4)
    x64 = x.astype(np.float64)
    want = x64 / np.sqrt((x64 * x64).mean(axis=-1, keepdims=True) + (1e-6 if eps is None else eps))
    check(run("rms_norm", [x], {} if eps is None else {"eps": eps}), want, dtype, atol=1e-6)


@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("eps", [None, 0.5])
def test_layer_norm(dtype: str, eps: float | None) -> None:
    x = sample(dtype, (4, 32), seed=5) + numpy_dtype(dtype).type(3)
    x64 = x.astype(np.float64)
    var = x64.var(axis=-1, keepdims=True)  # population variance (ddof=0)
    want = (x64 - x64.mean(axis=-1, keepdims=True)) / np.sqrt(var + (1e-5 if eps is None else eps))
    check(run("layer_norm", [x], {} if eps is None else {"eps": eps}), want, dtype, atol=1e-5)


def test_norm_weight_via_mul_broadcast() -> None:
    x, w = sample("f32", (3, 8), seed=6), sample("f32", (8,), seed=7)
    normed = run("rms_norm", [x])
    mul = lookup_op("mul")
    assert mul is not None and mul.reference is not None
    np.testing.assert_array_equal(mul.reference([normed, w], {}, "f32"), normed * w)
    np.testing.assert_array_equal(run("rms_norm", [np.zeros(4, np.float32)]), np.zeros(4, np.float32))


# --- layout -----------------------------------------------------------------------------------------

ALL_DTYPES = [d for d in DTYPE_NAMES]


def values(dtype: str, shape: tuple[int, ...], seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    if dtype == "bool":
        return rng.integers(0, 2, size=shape).astype(np.bool_)
    raw = rng.integers(0, 8, size=shape) if dtype in ("u4", "i4") else rng.integers(-100, 100, size=shape)
    if dtype.startswith("u"):
        raw = np.abs(raw)
    return raw.astype(np.float64 if dtype.startswith(("f", "b")) else np.int64).astype(numpy_dtype(dtype))


@pytest.mark.parametrize("dtype", ALL_DTYPES)
def test_layout_ops_any_dtype(dtype: str) -> None:
    x = values(dtype, (2, 3, 4), seed=8)
    same = lambda a, b: np.testing.assert_array_equal(a.astype(np.float64), b.astype(np.float64))  # noqa: E731
    result = run("transpose", [x])
    assert result.shape == (4, 3, 2) and not np.may_share_memory(result, x)
    same(result, np.transpose(x))
    same(run("transpose", [x], {"perm": [1, -1, 0]}), np.transpose(x, (1, 2, 0)))
    same(run("reshape", [x], {"shape": [4, -1]}), x.reshape(4, 6))
    assert not np.may_share_memory(run("reshape", [x], {"shape": [24]}), x)
    y = values(dtype, (2, 1, 4), seed=9)
    same(run("concat", [x, y], {"axis": 1}), np.concatenate([x, y], axis=1))
    same(run("concat", [x, x]), np.concatenate([x, x], axis=0))
    same(run("concat", [x, x], {"axis": -1}), np.concatenate([x, x], axis=-1))


@hyp_settings(max_examples=50, deadline=None)
@given(shape=hnp.array_shapes(min_dims=0, max_dims=4, min_side=0, max_side=4), data=st.data())
def test_layout_shape_rules(shape: tuple[int, ...], data: Any) -> None:
    x = np.arange(int(np.prod(shape)), dtype=np.int32).reshape(shape)
    perm = data.draw(st.permutations(range(len(shape))))
    np.testing.assert_array_equal(run("transpose", [x], {"perm": list(perm)}), np.transpose(x, perm))
    flat = [int(np.prod(shape))]
    np.testing.assert_array_equal(run("reshape", [x], {"shape": flat}), x.reshape(flat))
    if shape and int(np.prod(shape)):
        np.testing.assert_array_equal(run("reshape", [x], {"shape": [-1, shape[-1]]}), x.reshape(-1, shape[-1]))
    if shape:
        axis = data.draw(st.integers(-len(shape), len(shape) - 1))
        np.testing.assert_array_equal(run("concat", [x, x], {"axis": axis}), np.concatenate([x, x], axis=axis))


def test_reshape_zero_dims() -> None:
    x = np.zeros((0, 3), np.float32)
    assert run("reshape", [x], {"shape": [3, 0]}).shape == (3, 0)
    assert run("reshape", [np.zeros((2, 3), np.int8)], {"shape": [-1]}).shape == (6,)
    assert run("reshape", [np.array(5.0, np.float32)], {"shape": [1, 1]}).shape == (1, 1)
    assert run("reshape", [np.ones((1, 1), np.float32)], {"shape": []}).shape == ()


# --- rope --------------------------------------------------------------------------------------------


def rope_complex(x: np.ndarray, position: int, theta: float) -> np.ndarray:
    """The rotation as complex multiplication: (x1 + i x2) * e^(i * position * theta^(-2j/Dh))."""
    half = x.shape[-1] // 2
    z = x[..., :half] + 1j * x[..., half:]
    freqs = np.array([theta ** (-2 * j / x.shape[-1]) for j in range(half)])
    rotated = z * np.exp(1j * position * freqs)
    return np.concatenate([rotated.real, rotated.imag], axis=-1)


@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize(("position", "theta"), [(0, None), (1, None), (7, 500000.0), (4095, None), (-3, 10.0)])
def test_rope(dtype: str, position: int, theta: float | None) -> None:
    x = sample(dtype, (3, 2, 16), seed=10)
    settings: dict[str, Any] = {"position": position}
    if theta is not None:
        settings["theta"] = theta
    want = rope_complex(x.astype(np.float64), position, 10000.0 if theta is None else theta)
    check(run("rope", [x], settings), want, dtype, atol=1e-6 * (1 + abs(position)))


def test_rope_details() -> None:
    x = sample("f32", (4, 8), seed=11)
    np.testing.assert_array_equal(run("rope", [x], {"position": 0}), x)  # angle 0: identity
    np.testing.assert_array_equal(run("rope", [x], {"position": np.int64(5)}), run("rope", [x], {"position": 5}))
    rows = run("rope", [x], {"position": 9})
    for row in range(4):  # every row gets the same position
        np.testing.assert_array_equal(rows[row], run("rope", [x[row]], {"position": 9}))
    r = run("rope", [x], {"position": 3})  # a rotation keeps each (x1, x2) pair's norm
    np.testing.assert_allclose(r[:, :4] ** 2 + r[:, 4:] ** 2, x[:, :4] ** 2 + x[:, 4:] ** 2, rtol=1e-5)


# --- attention ---------------------------------------------------------------------------------------


def attention_loops(q: np.ndarray, k: np.ndarray, v: np.ndarray, causal: bool, scale: float | None) -> np.ndarray:
    """Per query token, per head: scores over visible keys, softmax, weighted values (float64)."""
    q3 = q.reshape((-1,) + q.shape[-2:])
    queries, heads, dh = q3.shape
    keys, kv_heads = k.shape[0], k.shape[1]
    scale = 1 / math.sqrt(dh) if scale is None else scale
    out = np.zeros(q3.shape)
    for s in range(queries):
        last = keys - queries + s if causal else keys - 1
        for h in range(heads):
            kv = h // (heads // kv_heads)
            scores = np.array([scale * float(np.dot(q3[s, h], k[t, kv])) for t in range(last + 1)])
            w = np.exp(scores - scores.max())
            w /= w.sum()
            out[s, h] = sum(w[t] * v[t, kv] for t in range(last + 1))
    return out.reshape(q.shape)


@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("q_shape", [(4, 8), (1, 4, 8), (3, 4, 8), (5, 4, 8)])
@pytest.mark.parametrize("kv_heads", [1, 2, 4])
@pytest.mark.parametrize("causal", [None, False, True])
def test_attention(dtype: str, q_shape: tuple[int, ...], kv_heads: int, causal: bool | None) -> None:
    keys = 5
    q = sample(dtype, q_shape, seed=12)
    k, v = sample(dtype, (keys, kv_heads, 8), seed=13), sample(dtype, (keys, kv_heads, 8), seed=14)
    settings = {} if causal is None else {"causal": causal}
    want = attention_loops(*(a.astype(np.float64) for a in (q, k, v)), causal=bool(causal), scale=None)
    check(run("attention", [q, k, v], settings), want, dtype, atol=5 * TOLERANCE[dtype])


def test_attention_scale_and_single_query() -> None:
    q, k, v = sample("f64", (2, 4), 15), sample("f64", (6, 1, 4), 16), sample("f64", (6, 1, 4), 17)
    check(run("attention", [q, k, v], {"scale": 0.1}), attention_loops(q, k, v, False, 0.1), "f64")
    # one query token sits at the last position: causal changes nothing
    np.testing.assert_array_equal(run("attention", [q, k, v], {"causal": True}), run("attention", [q, k, v]))
    # T == 1: the output is v itself, for every head
    one = run("attention", [q, k[:1], v[:1]], {"causal": np.True_})
    np.testing.assert_allclose(one, np.broadcast_to(v[0, 0], (2, 4)))
    # causal with S == T: the first query sees only the first key
    qs = sample("f32", (3, 2, 4), 18)
    ks, vs = sample("f32", (3, 2, 4), 19), sample("f32", (3, 2, 4), 20)
    np.testing.assert_allclose(run("attention", [qs, ks, vs], {"causal": True})[0], vs[0], rtol=1e-6)


def test_attention_f16_softmax_in_f32() -> None:
    # scores of 1e5 overflow f16 but not the f32 softmax
    q = np.full((1, 2), 100.0, np.float16)
    k = np.array([[[10.0, 10.0]], [[-10.0, -10.0]]], np.float16)
    v = np.array([[[1.0, 2.0]], [[3.0, 4.0]]], np.float16)
    np.testing.assert_array_equal(run("attention", [q, k, v], {"scale": 1.0}), np.array([[1.0, 2.0]], np.float16))


# --- errors ------------------------------------------------------------------------------------------

X = np.zeros((2, 3), np.float32)
Q, K = np.zeros((4, 8), np.float32), np.zeros((5, 2, 8), np.float32)

ERRORS = [
    ("exp", [np.zeros(2, np.int32)], {}, "op exp does not support I32 inputs"),
    ("softmax", [X], {"axis": 2}, "op softmax axis 2 out of range for rank 2"),
    ("softmax", [np.zeros((), np.float32)], {}, "op softmax axis -1 out of range for rank 0"),
    ("gelu", [X], {"approximate": "erf"}, "op gelu unsupported approximate 'erf' (expected \"none\" or \"tanh\")"),
    ("gelu", [X], {"approximate": 1}, "op gelu setting approximate must be a string, got 1"),
    ("rms_norm", [np.zeros((), np.float32)], {}, "op rms_norm needs an input of rank >= 1, got []"),
    ("layer_norm", [X], {"eps": "x"}, "op layer_norm setting eps must be a number, got 'x'"),
    ("transpose", [X], {"perm": [0]}, "op transpose perm [0] does not match rank 2"),
    ("transpose", [X], {"perm": [1, 1]}, "op transpose perm [1, 1] is not a permutation"),
    ("transpose", [X], {"perm": [0, 2]}, "op transpose axis 2 out of range for rank 2"),
    ("reshape", [X], {}, "op reshape requires setting shape"),
    ("reshape", [X], {"shape": [4, -1]}, "op reshape cannot reshape [2, 3] into [4, -1]"),
    ("reshape", [X], {"shape": [5]}, "op reshape cannot reshape [2, 3] into [5]"),
    ("reshape", [X], {"shape": [-1, -1]}, "op reshape shape [-1, -1] may hold non-negative dims and at most one -1"),
    ("reshape", [X], {"shape": [-2, -3]}, "op reshape shape [-2, -3] may hold non-negative dims and at most one -1"),
    ("concat", [X, np.zeros((2, 4), np.float32)], {}, "op concat input shapes [2, 3] and [2, 4] differ off axis 0"),
    ("concat", [X, np.zeros(3, np.float32)], {}, "op concat needs inputs of the same rank >= 1, got [2, 3] and [3]"),
    ("concat", [X, np.zeros((2, 3), np.float16)], {}, "op concat inputs have different dtypes: f32 vs f16"),
    ("concat", [X, X], {"axis": 2}, "op concat axis 2 out of range for rank 2"),
    ("rope", [X], {"position": 0}, "op rope needs an even last dim, got [2, 3]"),
    ("rope", [np.zeros((2, 4), np.float32)], {}, "op rope requires setting position"),
    ("rope", [np.zeros((2, 4), np.float32)], {"position": 1.5}, "op rope setting position must be an integer, got 1.5"),
    ("attention", [Q, K[:0], K[:0]], {}, "op attention needs at least one key (T = 0)"),
    ("attention", [Q[:3], K, K], {}, "op attention query heads 3 are not a multiple of kv heads 2"),
    ("attention", [Q[:, :4], K, K], {}, "op attention head dims differ: q [4, 4] vs k [5, 2, 8]"),
    ("attention", [np.zeros((6, 4, 8), np.float32), K, K], {"causal": True}, "op attention causal with 6 queries but only 5 keys"),
    (
        "attention",
        [Q, K, np.zeros((5, 2, 4), np.float32)],
        {},
        "op attention expects q [H, Dh] or [S, H, Dh] and k, v [T, Hk, Dh], got [4, 8], [5, 2, 8], [5, 2, 4]",
    ),
    ("attention", [Q, K, K], {"causal": "yes"}, "op attention setting causal must be a bool, got 'yes'"),
]


@pytest.mark.parametrize(("op", "inputs", "settings", "message"), ERRORS, ids=[e[-1] for e in ERRORS])
def test_error_messages(op: str, inputs: list[np.ndarray], settings: dict[str, Any], message: str) -> None:
    spec = lookup_op(op)
    assert spec is not None and spec.reference is not None
    out = dtype_of_array(inputs[0].dtype)
    with pytest.raises(ExecutionError) as info:
        spec.reference(inputs, settings, out)
    assert info.value.message == message


def test_bf16_inputs_round_once() -> None:
    x = np.array([1.0, 2.0, 3.0], ml_dtypes.bfloat16)
    want = softmax64(np.array([1.0, 2.0, 3.0]), 0).astype(np.float32).astype(ml_dtypes.bfloat16)
    np.testing.assert_array_equal(run("softmax", [x]), want)
