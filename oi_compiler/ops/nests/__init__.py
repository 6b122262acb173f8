"""Loop-nest builders (the L2 loop level) of every built-in op.

The registry attaches one builder to each built-in `OpSpec` as `spec.nest_builder`::

    spec.nest_builder(b, inputs, output, settings, in_dtypes, out_dtype) -> None

* `b`: an `xdsl.builder.Builder`; the builder emits its ops at `b`'s insertion point.
* `inputs`: one memref `SSAValue` per op input, element type
  `oi_compiler.dtypes.dtype_type(in_dtypes[i])` (so `uiN` for unsigned dtypes, `i1` for
  bool), any rank (0 too), static or dynamic (`?`) dims.
* `output`: a memref already allocated with the op's result shape (`spec.shape_rule`) and
  element type `dtype_type(out_dtype)`; the emitted ops fill it. For an inplace op the
  output may be the same SSA value as input 0 (matmul then accumulates in a temporary).
* `settings`: the node's settings resolved to Python values, exactly as the numpy
  `reference` receives them (`oi_compiler.ops.reference`); defaults apply. rope's
  `position` may instead be an `SSAValue` of type index, i32 or i64 (a run-time variable).
* `in_dtypes` / `out_dtype`: DSL dtype names (`out_dtype` is the last `acc=` dtype in
  accumulate mode, else the op's type rule), as the reference gets them.

What is emitted: `linalg.generic` ops on memrefs (iteration domain = the loops implied by
the operand shapes and indexing maps; the body is the scalar computation; iterators
`parallel`/`reduction`), `linalg.fill`, `memref.alloc`/`dealloc` for temporaries, and views
(`memref.subview` for concat and rope halves, `memref.reinterpret_cast` to rank 1 for
reshape), and, in attention only, an `scf.for` over chunks of the keys (its running softmax:
docs/loop_level.md). Each generic carries a discardable `oi.schedule` dictionary (empty here) for
scheduling passes. xDSL's `convert-linalg-to-loops` then `lower-affine` lower all of it to
`scf.for` + `memref.load`/`store` + `arith`. `docs/loop_level.md` describes the level.

Semantics equal the numpy reference: integers bit for bit (wrap-around, division and
remainder rules, masks, shifts, comparisons), floats in float32 (float64 for f64) with one
rounding to the output dtype, reductions and matmul accumulating one element at a time in
ascending (row-major) order of the reduced coordinates. arith only takes signless
integers, so bodies reinterpret `uiN` elements as `iN` (and back) with
`builtin.unrealized_conversion_cast`.

Unsupported inputs raise `PassError`: float `rem` (the verifier refuses it), attention with
dynamic head counts; invalid settings or shapes give the reference's message
(`op sum_axis axes must not be empty`) as a `PassError`.

Builders live in one module per category, as the references do (`arithmetic`,
`reduction`, `attention`...); `structured` holds the shared generic patterns, `scalar`
the body arithmetic and `contract` the checks every builder runs first.
`nest_builder_for(op)` returns a `NestFunction`, which imports its module (and xDSL) on
first call, so building the registry stays cheap.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

from oi_compiler.ops.reference import MODULE_OF

#: ops whose nests move values without arithmetic: every dtype, f8 included
COPY_OPS = frozenset({"transpose", "reshape", "concat"})

#: built-in ops without a loop nest, and why (none today)
NO_NEST: dict[str, str] = {}


class NestFunction:
    """A built-in op's loop-nest builder, imported on first call (see the module docstring)."""

    __slots__ = ("op", "_function")

    def __init__(self, op: str) -> None:
        if op not in MODULE_OF or op in NO_NEST:
            raise ValueError(f"no built-in loop nest for op {op!r}")
        self.op = op
        self._function: Any = None

    def __call__(self, b: Any, inputs: Any, output: Any, settings: Any, in_dtypes: Any, out_dtype: str) -> None:
        if self._function is None:
            self._function = import_module(f"{__name__}.contract").builder_for(self.op, MODULE_OF[self.op])
        self._function(b, list(inputs), output, dict(settings or {}), list(in_dtypes), out_dtype)

    def __repr__(self) -> str:
        return f"<nest builder of op {self.op} ({__name__}.{MODULE_OF[self.op]})>"


def nest_builder_for(op: str) -> NestFunction | None:
    """The lazy loop-nest builder of built-in op `op`, or None if it has none."""
    return NestFunction(op) if op in MODULE_OF and op not in NO_NEST else None
