"""Output shapes of the built-in ops, and the shape checks every reference runs first.

`shape_of(op, input_shapes, settings)` is the one entry point (the registry's
`OpSpec.shape_rule` calls it with the op's name bound). It is pure Python, so
lowering passes can use it without importing numpy. Invalid shapes or shape
settings raise `ExecutionError` with a message naming the op, e.g.
`op matmul inner dims mismatch: [2, 3] x [4, 5]`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from oi_compiler.errors import ExecutionError
from oi_compiler.ops.reference.settings import read_bool, read_int, read_int_list

Shape = tuple[int, ...]


def fail(op: str, message: str) -> ExecutionError:
    """The error for a bad run-time input of `op` ("op NAME message")."""
    return ExecutionError(f"op {op} {message}")


def shape_text(shape: Sequence[int]) -> str:
    return "[" + ", ".join(str(d) for d in shape) + "]"


def normalize_axis(op: str, axis: int, rank: int) -> int:
    """`axis` counted from 0 (a negative axis counts from the end)."""
    resolved = axis + rank if axis < 0 else axis
    if not 0 <= resolved < rank:
        raise fail(op, f"axis {axis} out of range for rank {rank}")
    return resolved


def broadcast_shapes(op: str, a: Shape, b: Shape, what: str = "shapes") -> Shape:
    """Numpy broadcasting of two shapes."""
    rank = max(len(a), len(b))
    pa, pb = (1,) * (rank - len(a)) + a, (1,) * (rank - len(b)) + b
    out = []
    for da, db in zip(pa, pb):
        if da != db and 1 not in (da, db):
            raise fail(op, f"cannot broadcast {what} {shape_text(a)} and {shape_text(b)}")
        out.append(db if da == 1 else da)
    return tuple(out)


def reduction_axes(op: str, rank: int, settings: Mapping[str, Any]) -> tuple[int, ...]:
    """The sorted, de-duplicated `axes` of a reduction (required and non-empty, as upstream)."""
    axes = read_int_list(op, settings, "axes")
    if axes is None:
        raise fail(op, "missing axes attribute")
    if not axes:
        raise fail(op, "axes must not be empty")
    return tuple(sorted({normalize_axis(op, a, rank) for a in axes}))


def reduced_shape(shape: Shape, axes: Sequence[int], keepdims: bool) -> Shape:
    if keepdims:
        return tuple(1 if i in axes else d for i, d in enumerate(shape))
    return tuple(d for i, d in enumerate(shape) if i not in axes)


# --- rules: each takes (op, input shapes, settings) -------------------------------------------


def _first(op: str, shapes: list[Shape], settings: Mapping[str, Any]) -> Shape:
    return shapes[0]


def _same(op: str, shapes: list[Shape], settings: Mapping[str, Any]) -> Shape:
    for other in shapes[1:]:
        if other != shapes[0]:
            raise fail(op, f"input shapes differ: {shape_text(shapes[0])} vs {shape_text(other)}")
    return shapes[0]


def _broadcast(op: str, shapes: list[Shape], settings: Mapping[str, Any]) -> Shape:
    out = shapes[0]
    for other in shapes[1:]:
        out = broadcast_shapes(op, out, other)
    return out


def _scalar(op: str, shapes: list[Shape], settings: Mapping[str, Any]) -> Shape:
    return ()


def _matmul(op: str, shapes: list[Shape], settings: Mapping[str, Any]) -> Shape:
    a, b = shapes
    if len(a) < 2 or len(b) < 2:
        raise fail(op, f"needs inputs of rank >= 2, got {shape_text(a)} x {shape_text(b)}")
    if a[-1] != b[-2]:
        raise fail(op, f"inner dims mismatch: {shape_text(a)} x {shape_text(b)}")
    batch = broadcast_shapes(op, a[:-2], b[:-2], what="batch dims")
    return batch + (a[-2], b[-1])


def _reduce_axes(op: str, shapes: list[Shape], settings: Mapping[str, Any]) -> Shape:
    axes = reduction_axes(op, len(shapes[0]), settings)
    return reduced_shape(shapes[0], axes, read_bool(op, settings, "keepdims", False))


def _reduce_extreme(op: str, shapes: list[Shape], settings: Mapping[str, Any]) -> Shape:
    axes = reduction_axes(op, len(shapes[0]), settings)
    if any(shapes[0][a] == 0 for a in axes):
        raise fail(op, f"reduces over an empty axis of {shape_text(shapes[0])}")
    return reduced_shape(shapes[0], axes, read_bool(op, settings, "keepdims", False))


def reduction_axis(op: str, rank: int, settings: Mapping[str, Any]) -> int:
    """The one `axis` of argmax_axis/argmin_axis (required, as upstream)."""
    if "axis" not in settings:
        raise fail(op, "missing axis attribute")
    return normalize_axis(op, read_int(op, settings, "axis"), rank)


def _reduce_axis(op: str, shapes: list[Shape], settings: Mapping[str, Any]) -> Shape:
    axis = reduction_axis(op, len(shapes[0]), settings)
    if shapes[0][axis] == 0:
        raise fail(op, f"reduces over an empty axis of {shape_text(shapes[0])}")
    return reduced_shape(shapes[0], (axis,), read_bool(op, settings, "keepdims", False))


def _along_axis(op: str, shapes: list[Shape], settings: Mapping[str, Any]) -> Shape:
    normalize_axis(op, read_int(op, settings, "axis", -1), len(shapes[0]))
    return shapes[0]


def _last_axis(op: str, shapes: list[Shape], settings: Mapping[str, Any]) -> Shape:
    if not shapes[0]:
        raise fail(op, "needs an input of rank >= 1, got []")
    return shapes[0]


def _rope(op: str, shapes: list[Shape], settings: Mapping[str, Any]) -> Shape:
    shape = _last_axis(op, shapes, settings)
    if shape[-1] % 2:
        raise fail(op, f"needs an even last dim, got {shape_text(shape)}")
    return shape


def transpose_perm(op: str, rank: int, settings: Mapping[str, Any]) -> tuple[int, ...]:
    """The `perm` setting (default: the axes reversed), checked to be a permutation."""
    perm = read_int_list(op, settings, "perm")
    if perm is None:
        return tuple(reversed(range(rank)))
    if len(perm) != rank:
        raise fail(op, f"perm {perm} does not match rank {rank}")
    resolved = tuple(normalize_axis(op, p, rank) for p in perm)
    if len(set(resolved)) != rank:
        raise fail(op, f"perm {perm} is not a permutation")
    return resolved


def _transpose(op: str, shapes: list[Shape], settings: Mapping[str, Any]) -> Shape:
    perm = transpose_perm(op, len(shapes[0]), settings)
    return tuple(shapes[0][p] for p in perm)


def _reshape(op: str, shapes: list[Shape], settings: Mapping[str, Any]) -> Shape:
    target = read_int_list(op, settings, "shape")
    if target is None:
        raise fail(op, "requires setting shape")
    if target.count(-1) > 1 or any(d < -1 for d in target):
        raise fail(op, f"shape {target} may hold non-negative dims and at most one -1")
    size = _numel(shapes[0])
    known = _numel(d for d in target if d != -1)
    if -1 in target:
        if known == 0 or size % known:
            raise fail(op, f"cannot reshape {shape_text(shapes[0])} into {target}")
        return tuple(size // known if d == -1 else d for d in target)
    if known != size:
        raise fail(op, f"cannot reshape {shape_text(shapes[0])} into {target}")
    return tuple(target)


def _concat(op: str, shapes: list[Shape], settings: Mapping[str, Any]) -> Shape:
    a, b = shapes
    if len(a) != len(b) or not a:
        raise fail(op, f"needs inputs of the same rank >= 1, got {shape_text(a)} and {shape_text(b)}")
    axis = normalize_axis(op, read_int(op, settings, "axis", 0), len(a))
    if any(da != db for i, (da, db) in enumerate(zip(a, b)) if i != axis):
        raise fail(op, f"input shapes {shape_text(a)} and {shape_text(b)} differ off axis {axis}")
    return a[:axis] + (a[axis] + b[axis],) + a[axis + 1 :]


def _attention(op: str, shapes: list[Shape], settings: Mapping[str, Any]) -> Shape:
    q, k, v = shapes
    if len(q) not in (2, 3) or len(k) != 3 or k != v:
        raise fail(
            op,
            f"expects q [H, Dh] or [S, H, Dh] and k, v [T, Hk, Dh], "
            f"got {shape_text(q)}, {shape_text(k)}, {shape_text(v)}",
        )
    heads, dh = q[-2], q[-1]
    if k[2] != dh:
        raise fail(op, f"head dims differ: q {shape_text(q)} vs k {shape_text(k)}")
    if k[1] == 0 or heads % k[1]:
        raise fail(op, f"query heads {heads} are not a multiple of kv heads {k[1]}")
    if k[0] == 0:
        raise fail(op, "needs at least one key (T = 0)")
    if dh == 0:  # (the default scale 1/sqrt(Dh) has no value)
        raise fail(op, "needs a head dim of at least one (Dh = 0)")
    queries = q[0] if len(q) == 3 else 1
    if read_bool(op, settings, "causal", False) and queries > k[0]:
        raise fail(op, f"causal with {queries} queries but only {k[0]} keys")
    return q


def _numel(dims: Any) -> int:
    n = 1
    for d in dims:
        n *= d
    return n


Rule = Callable[[str, list[Shape], Mapping[str, Any]], Shape]

# op -> (arity, rule)
RULES: dict[str, tuple[int, Rule]] = {
    **{op: (2, _broadcast) for op in ("add", "sub", "mul", "div", "floor_div", "rem")},
    "fma": (3, _same),
    "filter": (3, _same),
    **{op: (2, _same) for op in ("min", "max", "and", "or", "xor", "eq", "ne", "lt", "le", "gt", "ge")},
    **{
        op: (1, _first)
        for op in (
            "neg abs recip relu sign clamp floor ceil round trunc not shl shr popcount is_nan is_inf is_neg fill cast "
            "exp log sqrt rsqrt tanh sigmoid silu gelu"
        ).split()
    },
    "is_finite": (1, _scalar),
    "matmul": (2, _matmul),
    **{op: (1, _reduce_axes) for op in ("sum_axis", "mean_axis", "prod_axis")},
    "max_axis": (1, _reduce_extreme),
    "min_axis": (1, _reduce_extreme),
    "argmax_axis": (1, _reduce_axis),
    "argmin_axis": (1, _reduce_axis),
    "softmax": (1, _along_axis),
    "rms_norm": (1, _last_axis),
    "layer_norm": (1, _last_axis),
    "rope": (1, _rope),
    "transpose": (1, _transpose),
    "reshape": (1, _reshape),
    "concat": (2, _concat),
    "attention": (3, _attention),
}


def shape_of(op: str, input_shapes: Sequence[Sequence[int]], settings: Mapping[str, Any] | None = None) -> Shape:
    """The output shape of built-in op `op` for these input shapes and settings."""
    arity, rule = RULES[op]
    shapes = [tuple(int(d) for d in s) for s in input_shapes]
    if len(shapes) != arity:
        raise fail(op, f"expects {arity} inputs, got {len(shapes)}")
    return rule(op, shapes, settings or {})
