"""Comparison nests: eq, ne, lt, le, gt, ge (-> bool).

One parallel generic; both inputs are widened into their common math domain and compared
there (`arith.cmpf` ordered predicates, so NaN compares false, except `une` for ne;
`arith.cmpi` signed or unsigned predicates). The i1 result is the bool element.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from xdsl.builder import Builder
from xdsl.ir import SSAValue

from oi_compiler.ops.nests.scalar import domain_of
from oi_compiler.ops.nests.structured import pointwise


def compare(op: str, b: Builder, inputs: list, output: SSAValue, settings: Mapping[str, Any],
            in_dtypes: list[str], out: str) -> None:  # fmt: skip
    domain = domain_of(in_dtypes)
    pointwise(b, inputs, output, in_dtypes, out, domain, lambda s, x, y: s.cmp(op, x, y))


BUILDERS = dict.fromkeys(("eq", "ne", "lt", "le", "gt", "ge"), compare)
