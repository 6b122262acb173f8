"""The checks every nest builder runs first, and its error reporting.

`builder_for(op, module)` wraps the builder a category module lists in `BUILDERS`:

* the number of inputs, and every element type against `dtype_type(in_dtypes[i])`
  and `dtype_type(out_dtype)`;
* f8 math widens to f32 and rounds once to f8 (`scalar.widen`/`narrow`), as the reference;
* with static input shapes, the op's shape rule (so shape and setting errors read as
  the reference's) and the output's static dims against its result;
* an `ExecutionError` raised while building (a bad setting) becomes a `PassError` with
  the same message.
"""

from __future__ import annotations

from collections.abc import Callable
from importlib import import_module
from typing import Any

from oi_compiler.dtypes import dtype_type
from oi_compiler.errors import ExecutionError, PassError
from oi_compiler.ops.nests.structured import shape
from oi_compiler.ops.reference.shapes import RULES, shape_of, shape_text


def _check(op: str, inputs: list, output: Any, settings: dict, in_dtypes: list[str], out_dtype: str) -> None:
    arity = RULES[op][0]
    if len(inputs) != arity or len(in_dtypes) != arity:
        raise PassError(f"op {op} expects {arity} inputs, got {len(inputs)} values and {len(in_dtypes)} dtypes")
    for i, (value, dtype) in enumerate([*zip(inputs, in_dtypes), (output, out_dtype)]):
        element = getattr(value.type, "element_type", None)
        if element != dtype_type(dtype):
            what = "output" if i == len(inputs) else f"input {i}"
            raise PassError(f"op {op}: {what} is {value.type}, expected a memref of {dtype_type(dtype)}")
    shapes = [shape(v) for v in inputs]
    if all(None not in s for s in shapes):
        expected = shape_of(op, shapes, settings)
        got = shape(output)
        if len(got) != len(expected) or any(g is not None and g != e for g, e in zip(got, expected)):
            shown = shape_text(["?" if g is None else g for g in got])
            raise PassError(f"op {op}: output shape {shown} does not match the result shape {shape_text(expected)}")


def builder_for(op: str, module: str) -> Callable[..., None]:
    """The checked builder of `op` from category module `module`."""
    build = import_module(f"oi_compiler.ops.nests.{module}").BUILDERS[op]

    def run(b: Any, inputs: list, output: Any, settings: dict, in_dtypes: list[str], out_dtype: str) -> None:
        try:
            _check(op, inputs, output, settings, in_dtypes, out_dtype)
            build(op, b, inputs, output, settings, in_dtypes, out_dtype)
        except ExecutionError as e:
            raise PassError(e.message) from e

    run.__name__ = run.__qualname__ = f"{op}_nest"
    return run
