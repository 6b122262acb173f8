"""Mutation nests: fill.

fill(x, value=v) is one `linalg.fill` of the output with a constant computed before it:
floats go through f64 and f32 to the dtype (one rounding each, like the reference);
integers need an integer or bool value, wrapped to the width (a negative value on an
unsigned dtype is an error); bool is `value != 0`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from xdsl.builder import Builder
from xdsl.ir import SSAValue

from oi_compiler.dtypes import FLOAT_DTYPES
from oi_compiler.ops.nests.scalar import F64_DOMAIN, SIGNED_DOMAIN, UNSIGNED_DOMAIN, Scalar, float_setting
from oi_compiler.ops.nests.structured import fill as fill_buffer
from oi_compiler.ops.reference.settings import REQUIRED, as_int, read_number
from oi_compiler.ops.reference.shapes import fail


def fill(op: str, b: Builder, inputs: list, output: SSAValue, settings: Mapping[str, Any],
         in_dtypes: list[str], out: str) -> None:  # fmt: skip
    if out in FLOAT_DTYPES:
        s = Scalar(b, F64_DOMAIN)
        fill_buffer(b, s.narrow(s.const(float_setting(op, settings, "value", REQUIRED)), out), output)
        return
    value = settings.get("value")
    if isinstance(value, SSAValue):  # read at run time: an i64 (its sign checked by the step)
        s = Scalar(b, SIGNED_DOMAIN if out.startswith("i") else UNSIGNED_DOMAIN)
        fill_buffer(b, s.narrow(s.const(value), out), output)
        return
    value = read_number(op, settings, "value")
    if as_int(value) is None:
        raise fail(op, f"setting value must be an integer or bool for {out}, got {value!r}")
    if out.startswith("u") and int(value) < 0:
        raise fail(op, "value must be non-negative for unsigned dtype")
    s = Scalar(b, SIGNED_DOMAIN if out.startswith("i") else UNSIGNED_DOMAIN)
    fill_buffer(b, s.narrow(s.const(int(value)), out), output)


BUILDERS = {"fill": fill}
