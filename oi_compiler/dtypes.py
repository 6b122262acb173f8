"""The element types of the OpenInfer DSL and their xDSL builtin types.

The DSL names (`f32`, `u8`, `bool`, ...) are what users write and what the `oi`
dialect prints; the IR stores the matching builtin type so later levels
(scf/memref/llvm) use them directly.
"""

from __future__ import annotations

from functools import cache

#: Every dtype of the current upstream DSL (`openinfer-dsl` `match_dtype`), in its order.
DTYPE_NAMES: tuple[str, ...] = (
    "i8", "i16", "i32", "i64", "u8", "u16", "u32", "u64",
    "f8", "f16", "bf16", "f32", "f64", "bool", "i4", "u4",
)
FLOAT_DTYPES = frozenset({"f8", "f16", "bf16", "f32", "f64"})
PACKED_DTYPES = frozenset({"i4", "u4"})

#: Inclusive value range of each integer-like dtype (checked for `@init` literals).
INT_RANGES: dict[str, tuple[int, int]] = {
    **{f"i{b}": (-(1 << (b - 1)), (1 << (b - 1)) - 1) for b in (4, 8, 16, 32, 64)},
    **{f"u{b}": (0, (1 << b) - 1) for b in (4, 8, 16, 32, 64)},
    "bool": (0, 1),
}


def is_dtype_name(name: str) -> bool:
    return name in _NAME_SET


_NAME_SET = frozenset(DTYPE_NAMES)


@cache
def dtype_type(name: str):
    """The builtin xDSL type for a DSL dtype name."""
    from xdsl.dialects import builtin as b

    if name == "bool":
        return b.IntegerType(1)
    if name[0] == "i":
        return b.IntegerType(int(name[1:]))
    if name[0] == "u":
        return b.IntegerType(int(name[1:]), b.Signedness.UNSIGNED)
    return {
        "f8": b.Float8E5M2Type(),
        "f16": b.Float16Type(),
        "bf16": b.BFloat16Type(),
        "f32": b.Float32Type(),
        "f64": b.Float64Type(),
    }[name]


def dtype_name(type_attr) -> str | None:
    """The DSL dtype name of a builtin type, or None if the DSL has no such dtype."""
    return _type_names().get(type_attr)


@cache
def _type_names() -> dict:
    return {dtype_type(n): n for n in DTYPE_NAMES}


@cache
def numpy_dtype(name: str):
    """The numpy dtype holding a DSL dtype's values, one element per array slot.

    `f8` (float8 e5m2), `bf16`, `i4` and `u4` come from `ml_dtypes` (the JAX
    project's numpy extension types); packed types are unpacked, one element
    per byte, and only packed again in `.oinf` files.
    """
    import ml_dtypes
    import numpy as np

    special = {
        "f8": ml_dtypes.float8_e5m2,
        "bf16": ml_dtypes.bfloat16,
        "i4": ml_dtypes.int4,
        "u4": ml_dtypes.uint4,
        "bool": np.bool_,
    }
    if name in special:
        return np.dtype(special[name])
    if name not in _NAME_SET:
        raise ValueError(f"unknown dtype {name!r}")
    return np.dtype({"i": "int", "u": "uint", "f": "float"}[name[0]] + name[1:])


def dtype_of_array(dtype) -> str | None:
    """The DSL dtype name of a numpy dtype, or None when the DSL has no such dtype."""
    import numpy as np

    return _names_by_numpy_dtype().get(np.dtype(dtype))


@cache
def _names_by_numpy_dtype() -> dict:
    return {numpy_dtype(name): name for name in DTYPE_NAMES}
