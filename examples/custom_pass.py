"""A user-written pass: unroll `oi.loop`s whose bounds are integer literals.

Each copy of the body gets the loop index replaced by its value wherever an index
may name it (cache accesses, prefix-table references, inner loop bounds), so
`cache.write k >> K[l, t]` inside `loop layers (l in 0..2)` becomes
`K[0, t]` and `K[1, t]`. Loops whose body has a `return` (which leaves the loop)
are kept as they are.

From Python:
    import oi_compiler as oi, examples.custom_pass   # registers the pass
    graph = oi.Graph.load("examples/layers.oi")
    oi.run_passes(graph.module, "unroll-constant-loops{max_trip_count=8}")

From the command line:
    oi-opt examples/layers.oi --load-pass-plugin=examples/custom_pass.py --unroll-constant-loops
"""

from __future__ import annotations

from dataclasses import dataclass

from xdsl.dialects.builtin import ArrayAttr, IntAttr, StringAttr
from xdsl.ir import Attribute
from xdsl.passes import ModulePass

import oi_compiler as oi
from oi_compiler.dialects.oi import LoopOp, ReturnOp
from oi_compiler.dialects.oi_attrs import CacheAccessAttr, SliceAttr, VarRefAttr


def substitute(attr: Attribute, index: str, value: int) -> Attribute:
    """`attr` with every index slot that names `index` replaced by `value`."""

    def sub(v):
        return value if v == index else v

    if isinstance(attr, ArrayAttr):  # e.g. the inputs of an oi.op
        return ArrayAttr([substitute(a, index, value) for a in attr])
    if isinstance(attr, VarRefAttr):
        return VarRefAttr(attr.var_name, [sub(i.data) for i in attr.indices])
    if isinstance(attr, CacheAccessAttr):
        indices = [SliceAttr(*map(sub, i.bounds)) if isinstance(i, SliceAttr) else sub(i.data) for i in attr.indices]
        return CacheAccessAttr(attr.var_name, indices, attr.is_bracketed)
    return attr


@oi.register_pass
@dataclass(frozen=True)
class UnrollConstantLoops(ModulePass):
    """Unroll oi.loop ops with literal bounds (and no `return` in the body)."""

    name = "unroll-constant-loops"

    max_trip_count: int = 64

    def apply(self, ctx, module) -> None:
        loops = [op for op in module.walk() if isinstance(op, LoopOp)]
        for loop in reversed(loops):  # innermost first, so nested literal loops unroll fully
            self.unroll(loop)

    def unroll(self, loop: LoopOp) -> None:
        start, end = loop.bounds
        if not (isinstance(start, int) and isinstance(end, int)) or end - start > self.max_trip_count:
            return
        if any(isinstance(op, ReturnOp) for op in loop.walk()):
            return
        index = loop.index.data
        parent = loop.parent_block()
        for i in range(start, end):
            for op in loop.body.block.ops:
                copy = op.clone()
                for nested in copy.walk():
                    for key, prop in nested.properties.items():
                        if isinstance(nested, LoopOp) and key in ("start", "end"):
                            if isinstance(prop, StringAttr) and prop.data == index:
                                nested.properties[key] = IntAttr(i)
                        else:
                            nested.properties[key] = substitute(prop, index, i)
                parent.insert_op_before(copy, loop)
        loop.detach()
        loop.erase()
