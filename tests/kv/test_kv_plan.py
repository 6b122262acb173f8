"""`oi.kv.KvCacheAppendPlan` (baracuda's KV-cache append) against an independent numpy append.

Every comparison is bit-exact: arrays are compared as unsigned integers of their width, and the
data is random bits, so NaN payloads, -0.0, infinities and subnormals all go through the copy.
"""

from __future__ import annotations

import dataclasses

import ml_dtypes
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import oi_compiler as oi
from oi_compiler import kv
from oi_compiler.runtime import kv_append

DTYPES = [np.dtype(np.float32), np.dtype(np.float16), np.dtype(ml_dtypes.bfloat16), np.dtype(np.float64)]
BITS = {2: np.uint16, 4: np.uint32, 8: np.uint64}


# ----------------------------------------------------------------------------- helpers


def random_bits(rng: np.random.Generator, shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray:
    """An array of `dtype` holding uniformly random bit patterns (NaNs with payloads included)."""
    uint = BITS[dtype.itemsize]
    return rng.integers(0, np.iinfo(uint).max, size=shape, dtype=uint, endpoint=True).view(dtype)


def bits(array: np.ndarray) -> np.ndarray:
    return array.view(BITS[array.dtype.itemsize])


def descriptor(B=3, H=2, L=5, L_max=16, D_k=8, D_v=6, dtype=np.float32) -> kv.KvCacheAppendDescriptor:
    return kv.KvCacheAppendDescriptor(batch_size=B, num_heads=H, new_len=L, max_cache_len=L_max, d_k=D_k,
                                      d_v=D_v, element=dtype)  # fmt: skip


def make_args(desc: kv.KvCacheAppendDescriptor, offsets, seed: int = 0) -> kv.KvCacheAppendArgs:
    rng = np.random.default_rng(seed)
    B, H, L, L_max, D_k, D_v = (desc.batch_size, desc.num_heads, desc.new_len, desc.max_cache_len,
                                desc.d_k, desc.d_v)  # fmt: skip
    dtype = desc.element
    return kv.KvCacheAppendArgs(
        k_new=random_bits(rng, (B, H, L, D_k), dtype),
        v_new=random_bits(rng, (B, H, L, D_v), dtype),
        cache_offsets=np.asarray(offsets, dtype=np.int64),
        k_cache=random_bits(rng, (B, H, L_max, D_k), dtype),
        v_cache=random_bits(rng, (B, H, L_max, D_v), dtype),
    )


def numpy_append(new: np.ndarray, cache: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """The expected cache, on the bits: each sample's rows copied one at a time, those past the
    end dropped (baracuda's skip). Written without the plan's flat-copy idea."""
    out = bits(cache).copy()
    max_len = cache.shape[2]
    for b in range(new.shape[0]):
        for l in range(new.shape[2]):
            row = int(offsets[b]) + l
            if 0 <= row < max_len:
                out[b, :, row, :] = bits(new)[b, :, l, :]
    return out


def snapshot(args: kv.KvCacheAppendArgs) -> dict[str, np.ndarray]:
    return {f.name: bits(getattr(args, f.name)).copy() for f in dataclasses.fields(args)}


def assert_unchanged(args: kv.KvCacheAppendArgs, before: dict[str, np.ndarray]) -> None:
    for name, old in before.items():
        np.testing.assert_array_equal(bits(getattr(args, name)), old, err_msg=name)


def assert_appended(args: kv.KvCacheAppendArgs, before: dict[str, np.ndarray]) -> None:
    """The caches hold the numpy append of the inputs to their old contents; inputs untouched."""
    offsets = args.cache_offsets
    k_old = before["k_cache"].view(args.k_cache.dtype)
    v_old = before["v_cache"].view(args.v_cache.dtype)
    np.testing.assert_array_equal(bits(args.k_cache), numpy_append(args.k_new, k_old, offsets))
    np.testing.assert_array_equal(bits(args.v_cache), numpy_append(args.v_new, v_old, offsets))
    for name in ("k_new", "v_new", "cache_offsets"):
        np.testing.assert_array_equal(bits(getattr(args, name)), before[name], err_msg=name)


def overflows(desc: kv.KvCacheAppendDescriptor, offsets) -> bool:
    return any(int(o) + desc.new_len > desc.max_cache_len for o in offsets)


# ----------------------------------------------------------------------------- baracuda's scenarios

SCENARIOS = {"all 0": [0, 0, 0], "uniform 7": [7, 7, 7], "ragged": [1, 9, 12]}  # L_new 5, L_max 16


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("scenario", SCENARIOS)
def test_baracuda_scenarios_skip(dtype: np.dtype, scenario: str) -> None:
    desc = descriptor(dtype=dtype)
    args = make_args(desc, SCENARIOS[scenario])
    before = snapshot(args)
    kv.KvCacheAppendPlan.select(desc, on_out_of_range="skip").run(args)
    assert_appended(args, before)


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("scenario", SCENARIOS)
def test_baracuda_scenarios_error(dtype: np.dtype, scenario: str) -> None:
    desc = descriptor(dtype=dtype)
    args = make_args(desc, SCENARIOS[scenario])
    before = snapshot(args)
    plan = kv.KvCacheAppendPlan.select(desc)
    if scenario == "ragged":  # 12 + 5 > 16: the last sample overflows
        with pytest.raises(oi.CacheError, match=r"sample 2 overflows the cache: cache_offsets\[2\] = 12 "
                                                r"\+ new_len 5 > max_cache_len 16; nothing was written"):  # fmt: skip
            plan.run(args)
        assert_unchanged(args, before)
    else:
        plan.run(args)
        assert_appended(args, before)


def test_ragged_tail_is_skipped_exactly() -> None:
    """Sample 2 at offset 12 gets rows 12..15 (its first 4 new rows); row 16 would be past the end."""
    desc = descriptor()
    args = make_args(desc, [1, 9, 12])
    before = snapshot(args)
    kv.KvCacheAppendPlan.select(desc, "skip").run(args)
    np.testing.assert_array_equal(bits(args.k_cache)[2, :, 12:16], bits(args.k_new)[2, :, 0:4])
    np.testing.assert_array_equal(bits(args.k_cache)[2, :, :12], before["k_cache"][2, :, :12])


# ----------------------------------------------------------------------------- differential


@st.composite
def problems(draw):
    B, H, L = draw(st.integers(0, 4)), draw(st.integers(0, 3)), draw(st.integers(0, 6))
    L_max = draw(st.integers(0, 10))
    D_k, D_v = draw(st.integers(0, 9)), draw(st.integers(0, 9))
    offsets = draw(st.lists(st.integers(0, L_max + 3), min_size=B, max_size=B))
    dtype = draw(st.sampled_from(DTYPES))
    policy = draw(st.sampled_from(kv.POLICIES))
    return descriptor(B, H, L, L_max, D_k, D_v, dtype), offsets, policy, draw(st.integers(0, 2**32 - 1))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(problems())
def test_differential_against_numpy(problem) -> None:
    desc, offsets, policy, seed = problem
    args = make_args(desc, offsets, seed)
    before = snapshot(args)
    plan = kv.KvCacheAppendPlan.select(desc, on_out_of_range=policy)
    empty = 0 in (desc.batch_size, desc.num_heads, desc.new_len)
    if policy == "error" and not empty and overflows(desc, offsets):
        with pytest.raises(oi.CacheError, match="overflows the cache"):
            plan.run(args)
        assert_unchanged(args, before)
    else:
        plan.run(args)
        assert_appended(args, before)


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_nan_payloads_and_negative_zero_survive(dtype: np.dtype) -> None:
    uint = BITS[dtype.itemsize]
    width = dtype.itemsize * 8
    exponent = {np.dtype(np.float16): 5, np.dtype(ml_dtypes.bfloat16): 8}.get(dtype, 11 if width == 64 else 8)
    mantissa = width - 1 - exponent
    all_ones = ((1 << exponent) - 1) << mantissa
    sign = 1 << (width - 1)
    patterns = [all_ones | 1, all_ones | (1 << (mantissa - 1)) | 5, sign | all_ones | 3,  # sNaN, qNaN, -NaN
                sign, all_ones, 1]  # -0.0, +inf, the smallest subnormal  # fmt: skip
    desc = descriptor(B=1, H=1, L=len(patterns), L_max=8, D_k=1, D_v=1, dtype=dtype)
    column = np.array(patterns, dtype=uint).view(dtype).reshape(1, 1, -1, 1)
    args = kv.KvCacheAppendArgs(k_new=column, v_new=column[..., ::-1, :].copy(), cache_offsets=np.array([2]),
                                k_cache=np.zeros((1, 1, 8, 1), dtype), v_cache=np.zeros((1, 1, 8, 1), dtype))  # fmt: skip
    kv.KvCacheAppendPlan.select(desc).run(args)
    assert bits(args.k_cache)[0, 0, 2:, 0].tolist() == patterns
    assert bits(args.v_cache)[0, 0, 2:, 0].tolist() == patterns[::-1]
    with np.errstate(invalid="ignore"):  # (ml_dtypes' bfloat16 isnan warns on a signalling NaN)
        assert np.isnan(args.k_cache[0, 0, 2:5, 0]).all()


def test_offsets_are_not_advanced_and_appends_compose() -> None:
    """Two appends of 3 rows, the caller advancing the offsets between them, equal one of 6 rows."""
    desc3, desc6 = descriptor(L=3, L_max=8), descriptor(L=6, L_max=8)
    whole = make_args(desc6, [0, 1, 2])
    expected = snapshot(whole)
    kv.KvCacheAppendPlan.select(desc6).run(whole)
    offsets = np.array([0, 1, 2], dtype=np.int64)
    k_cache, v_cache = expected["k_cache"].view(np.float32).copy(), expected["v_cache"].view(np.float32).copy()
    plan = kv.KvCacheAppendPlan.select(desc3)
    for part in (slice(0, 3), slice(3, 6)):
        plan.run(kv.KvCacheAppendArgs(k_new=whole.k_new[:, :, part].copy(), v_new=whole.v_new[:, :, part].copy(),
                                      cache_offsets=offsets, k_cache=k_cache, v_cache=v_cache))  # fmt: skip
        assert offsets.tolist() in ([0, 1, 2], [3, 4, 5])
        offsets += 3
    np.testing.assert_array_equal(bits(k_cache), bits(whole.k_cache))
    np.testing.assert_array_equal(bits(v_cache), bits(whole.v_cache))


@pytest.mark.parametrize("policy", kv.POLICIES)
@pytest.mark.parametrize("offset", [-1, -(2**63)])
def test_negative_offset_is_an_error_under_both_policies(policy: str, offset: int) -> None:
    desc = descriptor()
    args = make_args(desc, [0, offset, 3])
    before = snapshot(args)
    with pytest.raises(oi.CacheError, match=rf"sample 1 has a negative offset: cache_offsets\[1\] = {offset}"):
        kv.KvCacheAppendPlan.select(desc, policy).run(args)
    assert_unchanged(args, before)


def test_huge_offsets_do_not_wrap() -> None:
    """offset + new_len would overflow int64: skip writes nothing, error rejects the sample."""
    desc = descriptor()
    args = make_args(desc, [0, 2**63 - 2, 0])
    before = snapshot(args)
    kv.KvCacheAppendPlan.select(desc, "skip").run(args)
    np.testing.assert_array_equal(bits(args.k_cache)[1], before["k_cache"][1])
    with pytest.raises(oi.CacheError, match="sample 1 overflows"):
        kv.KvCacheAppendPlan.select(desc).run(make_args(desc, [0, 2**63 - 2, 0]))


@pytest.mark.parametrize("policy", kv.POLICIES)
@pytest.mark.parametrize("empty", ["B", "H", "L"])
def test_empty_problems_do_nothing(policy: str, empty: str) -> None:
    """Even offsets that would be rejected are not read when there is nothing to copy."""
    sizes = {"B": 3, "H": 2, "L": 5, empty: 0}
    desc = descriptor(**sizes, L_max=4)
    args = make_args(desc, [-5, 99, 3][: sizes["B"]])
    before = snapshot(args)
    kv.KvCacheAppendPlan.select(desc, policy).run(args)
    assert_unchanged(args, before)


def test_zero_capacity_cache() -> None:
    desc = descriptor(L_max=0)
    args = make_args(desc, [0, 0, 0])
    kv.KvCacheAppendPlan.select(desc, "skip").run(args)
    with pytest.raises(oi.CacheError, match="sample 0 overflows"):
        kv.KvCacheAppendPlan.select(desc).run(args)


def test_flat_buffers_are_row_major_tensors() -> None:
    """1-D arrays of at least numel elements stand for the tensors (their first numel elements)."""
    desc = descriptor()
    args = make_args(desc, [1, 9, 12])
    expected_k = numpy_append(args.k_new, args.k_cache, args.cache_offsets)
    expected_v = numpy_append(args.v_new, args.v_cache, args.cache_offsets)
    pad = random_bits(np.random.default_rng(2), (7,), desc.element)
    k_cache = np.concatenate([args.k_cache.ravel(), pad])  # longer than numel: its tail is left alone
    flat = dataclasses.replace(args, k_new=np.concatenate([args.k_new.ravel(), pad]), k_cache=k_cache,
                               v_cache=args.v_cache.ravel())  # exactly numel, a view of args.v_cache  # fmt: skip
    kv.KvCacheAppendPlan.select(desc, "skip").run(flat)
    numel = args.k_cache.size
    np.testing.assert_array_equal(bits(k_cache[:numel]).reshape(args.k_cache.shape), expected_k)
    np.testing.assert_array_equal(bits(k_cache[numel:]), bits(pad))
    np.testing.assert_array_equal(bits(args.v_cache), expected_v)


def test_workspace_and_repr() -> None:
    plan = kv.KvCacheAppendPlan.select(descriptor(), on_out_of_range="skip")
    assert plan.workspace_size() == 0
    assert plan.on_out_of_range == "skip" and plan.descriptor == descriptor()
    assert "on_out_of_range='skip'" in repr(plan)
    with pytest.raises(AttributeError):
        plan.on_out_of_range = "error"  # type: ignore[misc]


# ----------------------------------------------------------------------------- the descriptor


def test_descriptor_is_frozen_hashable_and_normalises_the_element() -> None:
    a, b = descriptor(dtype=np.float16), descriptor(dtype="float16")
    assert a.element == np.dtype(np.float16) and isinstance(a.element, np.dtype)
    assert a == b and hash(a) == hash(b) and len({a, b, descriptor()}) == 2
    assert descriptor(dtype=ml_dtypes.bfloat16).element == np.dtype(ml_dtypes.bfloat16)
    with pytest.raises(dataclasses.FrozenInstanceError):
        a.batch_size = 4  # type: ignore[misc]
    with pytest.raises(TypeError):
        kv.KvCacheAppendDescriptor(3, 2, 5, 16, 8, 6, np.float32)  # type: ignore[misc]  # keywords only


@pytest.mark.parametrize(
    ("change", "error", "message"),
    [
        ({"H": -1}, oi.InvalidProblemError, r"extents must be non-negative \(num_heads = -1\)"),
        ({"B": -2, "D_v": -1}, oi.InvalidProblemError, r"extents must be non-negative \(batch_size = -2, d_v = -1\)"),
        ({"L": True}, oi.InvalidProblemError, "new_len must be an integer, got True"),
        ({"L_max": 16.0}, oi.InvalidProblemError, "max_cache_len must be an integer, got 16.0"),
        ({"D_k": "8"}, oi.InvalidProblemError, "d_k must be an integer, got '8'"),
        ({"dtype": np.int32}, oi.UnsupportedError, r"element int32 is not wired; wired today: `\{f32, f16, bf16, f64\}`"),
        ({"dtype": ml_dtypes.float8_e5m2}, oi.UnsupportedError, "element float8_e5m2 is not wired"),
        ({"dtype": ">f4"}, oi.UnsupportedError, ">f4 is not wired"),  # big-endian
        ({"dtype": None}, oi.UnsupportedError, "element None is not a numpy dtype"),
        ({"dtype": "bf16"}, oi.UnsupportedError, "element 'bf16' is not a numpy dtype"),
    ],
)  # fmt: skip
def test_select_rejects_bad_descriptors(change: dict, error: type, message: str) -> None:
    with pytest.raises(error, match=message) as info:
        kv.KvCacheAppendPlan.select(descriptor(**change))
    assert isinstance(info.value, oi.OiError) and "KvCacheAppendPlan: " in str(info.value)


def test_numpy_integer_extents_are_accepted() -> None:
    desc = descriptor(B=np.int64(3), H=np.int32(2))
    args = make_args(desc, [0, 1, 2])
    before = snapshot(args)
    kv.KvCacheAppendPlan.select(desc).run(args)
    assert_appended(args, before)


@pytest.mark.parametrize("policy", ["raise", "", None, 1])
def test_select_rejects_unknown_policies(policy) -> None:
    with pytest.raises(oi.InvalidProblemError, match=f"on_out_of_range must be 'error' or 'skip', got {policy!r}"):
        kv.KvCacheAppendPlan.select(descriptor(), on_out_of_range=policy)


def test_select_takes_a_descriptor() -> None:
    with pytest.raises(oi.InvalidProblemError, match="select takes a KvCacheAppendDescriptor, got dict"):
        kv.KvCacheAppendPlan.select({"batch_size": 1})  # type: ignore[arg-type]


# ----------------------------------------------------------------------------- can_implement


def _replace(name: str, make):
    """Args for descriptor() with `name` replaced by `make(original array)`."""
    args = make_args(descriptor(), [0, 1, 2])
    return dataclasses.replace(args, **{name: make(getattr(args, name))})


def _read_only(a: np.ndarray) -> np.ndarray:
    a.flags.writeable = False
    return a


def _unaligned(a: np.ndarray) -> np.ndarray:
    raw = np.zeros(a.nbytes + 1, np.uint8)[1:]
    return raw.view(a.dtype).reshape(a.shape)


BAD_ARGS = {
    "k_new shape": (lambda: _replace("k_new", lambda a: a[..., :7]), oi.InvalidProblemError,
                    r"k_new shape mismatch: expected \(3, 2, 5, 8\), got \(3, 2, 5, 7\)"),
    "v_new shape": (lambda: _replace("v_new", lambda a: a[None]), oi.InvalidProblemError,
                    r"v_new shape mismatch: expected \(3, 2, 5, 6\), got \(1, 3, 2, 5, 6\)"),
    "k_cache shape": (lambda: _replace("k_cache", lambda a: a[:, :, :15].copy()), oi.InvalidProblemError,
                      r"k_cache shape mismatch: expected \(3, 2, 16, 8\), got \(3, 2, 15, 8\)"),
    "v_cache shape": (lambda: _replace("v_cache", lambda a: a[:2].copy()), oi.InvalidProblemError,
                      r"v_cache shape mismatch: expected \(3, 2, 16, 6\), got \(2, 2, 16, 6\)"),
    "offsets shape": (lambda: _replace("cache_offsets", lambda a: a[:2]), oi.InvalidProblemError,
                      r"cache_offsets shape must be \[batch_size\]: expected \(3,\), got \(2,\)"),
    "offsets 2-D": (lambda: _replace("cache_offsets", lambda a: a[None]), oi.InvalidProblemError,
                    r"cache_offsets shape must be \[batch_size\]: expected \(3,\), got \(1, 3\)"),
    "k_new dtype": (lambda: _replace("k_new", lambda a: np.zeros(a.shape, np.float64)), oi.UnsupportedError,
                    r"k_new element != descriptor element \(float64 != float32\)"),
    "v_cache dtype": (lambda: _replace("v_cache", lambda a: a.view(np.int32)), oi.UnsupportedError,
                      r"v_cache element != descriptor element \(int32 != float32\)"),
    "flat dtype": (lambda: _replace("k_new", lambda a: np.zeros(a.size, np.float16)), oi.UnsupportedError,
                   r"k_new element != descriptor element \(float16 != float32\)"),
    "offsets dtype": (lambda: _replace("cache_offsets", lambda a: a.astype(np.int32)), oi.UnsupportedError,
                      "cache_offsets must be int64, got int32"),
    "k_cache strided": (lambda: _replace("k_cache", lambda a: np.zeros((3, 2, 16, 16), a.dtype)[..., ::2]),
                        oi.UnsupportedError, r"requires contiguous K/V tensors; k_cache has strides \(2048, 1024, 64, 8\)"),
    "v_new transposed": (lambda: _replace("v_new", lambda a: a.transpose(1, 0, 2, 3).copy().transpose(1, 0, 2, 3)),
                         oi.UnsupportedError, "requires contiguous K/V tensors; v_new has strides"),
    "flat strided": (lambda: _replace("v_cache", lambda a: np.repeat(a.ravel(), 2)[::2]), oi.UnsupportedError,
                     "requires contiguous K/V tensors; v_cache has strides"),
    "offsets stride": (lambda: _replace("cache_offsets", lambda a: np.repeat(a, 2)[::2]), oi.UnsupportedError,
                       "cache_offsets must be unit-stride, got a stride of 16 bytes"),
    "unaligned": (lambda: _replace("k_new", _unaligned), oi.UnsupportedError,
                  "k_new is not aligned to its 4-byte element"),
    "k_new too small": (lambda: _replace("k_new", lambda a: a.ravel()[:-1]), oi.BufferTooSmallError,
                        "k_new buffer too small: needed 240 elements, got 239"),
    "v_cache too small": (lambda: _replace("v_cache", lambda a: a.ravel()[:10]), oi.BufferTooSmallError,
                          "v_cache buffer too small: needed 576 elements, got 10"),
    "read-only cache": (lambda: _replace("k_cache", _read_only), oi.InvalidProblemError,
                        "k_cache is read-only; the plan writes it in place"),
    "k_cache list": (lambda: _replace("k_cache", lambda a: a.tolist()), oi.InvalidProblemError,
                     "k_cache must be a numpy array, got list"),
    "offsets list": (lambda: _replace("cache_offsets", lambda a: [0, 1, 2]), oi.InvalidProblemError,
                     "cache_offsets must be a numpy array, got list"),
    "new None": (lambda: _replace("v_new", lambda a: None), oi.InvalidProblemError,
                 "v_new must be a numpy array, got NoneType"),
    "args tuple": (lambda: (np.zeros(1),) * 5, oi.InvalidProblemError, "expected KvCacheAppendArgs, got tuple"),
}  # fmt: skip


@pytest.mark.parametrize("case", BAD_ARGS)
def test_can_implement_rejects(case: str) -> None:
    make, error, message = BAD_ARGS[case]
    args = make()
    plan = kv.KvCacheAppendPlan.select(descriptor())
    with pytest.raises(error, match=message) as info:
        plan.can_implement(args)
    assert isinstance(info.value, oi.OiError) and "KvCacheAppendPlan: " in str(info.value)
    with pytest.raises(error, match=message):  # run checks first and writes nothing
        plan.run(args)


def test_buffer_too_small_carries_needed_and_got() -> None:
    with pytest.raises(oi.BufferTooSmallError) as info:
        kv.KvCacheAppendPlan.select(descriptor()).can_implement(_replace("k_cache", lambda a: a.ravel()[:100]))
    assert (info.value.needed, info.value.got) == (3 * 2 * 16 * 8, 100)


def test_checks_come_in_baracudas_order() -> None:
    """Shapes (k_new first) before dtypes, dtypes before layout, layout before buffer sizes,
    buffer sizes before the caches' own checks."""
    plan = kv.KvCacheAppendPlan.select(descriptor())
    args = make_args(descriptor(), [0, 1, 2])
    k_new_f16, k_new_strided = np.zeros(args.k_new.shape, np.float16), np.repeat(args.k_new, 2, axis=3)[..., ::2]
    v_cache_short, v_cache_strided = args.v_cache[:, :, :3], np.repeat(args.v_cache, 2, axis=3)[..., ::2]
    cases = [
        ({"k_new": k_new_f16, "v_cache": v_cache_short}, oi.InvalidProblemError, "v_cache shape mismatch"),
        ({"k_new": args.k_new[:, :1], "v_cache": v_cache_short}, oi.InvalidProblemError, "k_new shape mismatch"),
        ({"k_new": k_new_f16, "v_cache": v_cache_strided}, oi.UnsupportedError, "k_new element"),
        ({"k_new": k_new_strided, "k_cache": args.k_cache.ravel()[:5]}, oi.UnsupportedError, "contiguous"),
        ({"v_cache": args.v_cache.ravel()[:5], "k_cache": _read_only(args.k_cache.copy())},
         oi.BufferTooSmallError, "v_cache buffer too small"),
    ]  # fmt: skip
    for change, error, message in cases:
        with pytest.raises(error, match=message):
            plan.can_implement(dataclasses.replace(args, **change))


@pytest.mark.parametrize(
    ("other", "message"),
    [
        ("k_new", "k_cache overlaps k_new"),
        ("v_new", "v_cache overlaps v_new"),
        ("v_cache", "k_cache overlaps v_cache"),
        ("cache_offsets", "v_cache overlaps cache_offsets"),
    ],
)
def test_caches_may_not_alias_another_argument(other: str, message: str) -> None:
    """Each argument in turn is (a view of) a cache: k_cache for k_new and v_cache, else v_cache."""
    desc = descriptor(L=5, L_max=5, D_k=6, D_v=6)  # one shape for all four K/V arrays
    args = make_args(desc, [0, 0, 0])
    view = {"k_new": args.k_cache, "v_cache": args.k_cache, "v_new": args.v_cache,
            "cache_offsets": args.v_cache.view(np.int64).ravel()[1:4]}[other]  # fmt: skip
    with pytest.raises(oi.InvalidProblemError, match=f"{message}; the caches are written in place"):
        kv.KvCacheAppendPlan.select(desc).can_implement(dataclasses.replace(args, **{other: view}))


def test_inputs_may_share_memory_and_be_read_only() -> None:
    desc = descriptor(D_k=6, D_v=6)
    args = make_args(desc, [0, 4, 11])
    shared = _read_only(args.k_new)
    offsets = _read_only(args.cache_offsets)
    args = dataclasses.replace(args, k_new=shared, v_new=shared, cache_offsets=offsets)
    before = snapshot(args)
    kv.KvCacheAppendPlan.select(desc).run(args)
    assert_appended(args, before)


def test_disjoint_views_of_one_buffer_are_fine() -> None:
    """The caches and inputs may be disjoint slices of one allocation."""
    desc = descriptor(L=5, L_max=5, D_k=6, D_v=6)
    pool = random_bits(np.random.default_rng(1), (4, 3, 2, 5, 6), np.dtype(np.float32))
    args = kv.KvCacheAppendArgs(k_new=pool[0], v_new=pool[1], cache_offsets=np.zeros(3, np.int64),
                                k_cache=pool[2], v_cache=pool[3])  # fmt: skip
    before = snapshot(args)
    kv.KvCacheAppendPlan.select(desc).run(args)
    assert_appended(args, before)


# ----------------------------------------------------------------------------- the compiled kernel


def test_kernels_are_compiled_once_per_width_and_policy() -> None:
    f16 = kv.KvCacheAppendPlan.select(descriptor(dtype=np.float16))
    bf16 = kv.KvCacheAppendPlan.select(descriptor(dtype=ml_dtypes.bfloat16, B=7))
    assert f16._kernel is bf16._kernel is kv_append.append_kernel(16, "error")  # one i16 kernel for both
    assert kv_append.append_kernel(16, "skip") is not kv_append.append_kernel(16, "error")


@pytest.mark.parametrize("width", kv_append.WIDTHS)
def test_kernel_ir_is_loops_over_integer_memrefs_and_copies_with_memcpy(width: int) -> None:
    module = kv_append.build_module(width, "error")
    module.verify()
    text = str(module)
    assert f"memref<?x?x?x?xi{width}>" in text and "memref<?xi64>" in text
    assert "scf.for" in text and "memref.load" in text and "memref.store" in text
    compiled = kv_append.append_kernel(width, "error").compiled
    assert "@llvm.memcpy" in compiled.llvm_ir  # the flat row loops became memcpy calls


def test_kernel_abi_is_what_the_direct_call_passes() -> None:
    """AppendKernel calls the C wrapper itself: five memrefs (ranks 4, 4, 1, 4, 4) as pointer,
    offset, sizes, strides, and an i64 result; only the caches written (noalias)."""
    abi = kv_append.append_kernel(32, "skip").compiled.abis[kv_append.FUNCTION]
    assert [(p.name, p.element, p.rank, p.strides, p.written) for p in abi.params] == [
        ("k_new", "i32", 4, None, False), ("v_new", "i32", 4, None, False), ("offsets", "i64", 1, None, False),
        ("k_cache", "i32", 4, None, True), ("v_cache", "i32", 4, None, True)]  # fmt: skip
    assert abi.result is not None and abi.result.element == "i64"
    assert kv_append.AppendKernel.fields((2, 3, 4, 5)) == (0, 2, 3, 4, 5, 60, 20, 5, 1)


def test_build_module_rejects_unknown_kernels() -> None:
    with pytest.raises(ValueError, match="no kernel for width 8"):
        kv_append.build_module(8, "error")
