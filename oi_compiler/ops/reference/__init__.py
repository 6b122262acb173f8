"""Numpy reference semantics and shape rules of every built-in op.

The registry attaches two callables to each built-in `OpSpec`:

* ``spec.reference(inputs, settings, out_dtype) -> np.ndarray``

  - `inputs`: numpy arrays (a scalar is a 0-d array) of `numpy_dtype(dsl dtype)`;
  - `settings`: the settings written on the node, resolved to Python values
    (scalars -> int/float/bool, int_list -> list[int], string -> str,
    dtype -> DSL name, acc -> list of DSL names); defaults are applied here;
  - `out_dtype`: the DSL dtype of the output (the last `acc=` dtype in
    accumulate mode, else the op's type rule).

  It returns a new array of `numpy_dtype(out_dtype)` with the op's result
  shape, and raises `ExecutionError` ("op NAME ...") for invalid run-time
  input (shapes, axes, settings).

* ``spec.shape_rule(input_shapes, settings) -> tuple[int, ...]``: the output
  shape, with the same checks (pure Python, see `shapes`).

Both are `OpFunction`s: tiny objects that import their module (and numpy) on
first call, so building the registry stays cheap. The kernels live in one
module per category; `docs/ops.md` lists every numeric rule.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

_CATEGORY_OPS = {
    "arithmetic": "add sub mul div floor_div rem fma neg abs recip",
    "numerical": "relu matmul",
    "statistics": "sign min max",
    "rounding": "clamp floor ceil round trunc",
    "bitwise": "and or xor not shl shr popcount",
    "comparison": "eq ne lt le gt ge",
    "filters": "is_finite is_nan is_inf is_neg filter",
    "mutation": "fill",
    "reduction": "sum_axis mean_axis prod_axis max_axis min_axis argmax_axis argmin_axis",
    "casting": "cast",
    "activations": "exp log sqrt rsqrt tanh sigmoid silu gelu softmax",
    "normalization": "rms_norm layer_norm",
    "layout": "transpose reshape concat",
    "attention": "rope attention",
}

#: op name -> the module (in this package) holding its kernel
MODULE_OF: dict[str, str] = {op: module for module, ops in _CATEGORY_OPS.items() for op in ops.split()}


class OpFunction:
    """A built-in op's reference or shape rule, imported on first call."""

    __slots__ = ("op", "kind", "_function")

    def __init__(self, op: str, kind: str) -> None:
        if op not in MODULE_OF or kind not in ("reference", "shape_rule"):
            raise ValueError(f"no built-in {kind} for op {op!r}")
        self.op = op
        self.kind = kind
        self._function: Any = None

    def __call__(self, *args: Any) -> Any:
        if self._function is None:
            self._function = self._load()
        return self._function(*args)

    def _load(self) -> Any:
        if self.kind == "shape_rule":
            from functools import partial

            from oi_compiler.ops.reference.shapes import shape_of

            return partial(shape_of, self.op)
        from oi_compiler.ops.reference.core import guarded

        module = import_module(f"{__name__}.{MODULE_OF[self.op]}")
        return guarded(self.op, module.KERNELS[self.op])

    def __repr__(self) -> str:
        module = "shapes" if self.kind == "shape_rule" else MODULE_OF[self.op]
        return f"<{self.kind} of op {self.op} ({__name__}.{module})>"


def reference_for(op: str) -> OpFunction | None:
    """The lazy numpy reference of built-in op `op`, or None if it has none."""
    return OpFunction(op, "reference") if op in MODULE_OF else None


def shape_rule_for(op: str) -> OpFunction | None:
    """The lazy shape rule of built-in op `op`, or None if it has none."""
    return OpFunction(op, "shape_rule") if op in MODULE_OF else None
