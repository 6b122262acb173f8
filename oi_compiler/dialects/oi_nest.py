"""`oi.nest`: an Accera-style loop nest at the loop level (L2), before it is scheduled.

    "oi.nest"(%A, %B, %C) <{domain = array<i64: 64, 64, 64>, indices = ["i", "j", "k"],
                            names = ["A", "B", "C"], roles = ["input", "input", "input_output"]}> ({
    ^bb0(%i: index, %j: index, %k: index):
      %a = memref.load %A[%i, %k] : memref<64x64xf32>
      ...
      memref.store %s, %C[%i, %j] : memref<64x64xf32>
    }) {oi.schedule = {...}, oi.plan = {...}} : (memref<64x64xf32>, ...) -> ()

The iteration domain is the box `[0, domain[d])` for each index; the body runs once per
point, in any order the schedule gives (the logic must not depend on it beyond its
accumulations). The body's block arguments are the indices; array accesses are
`memref.load`/`memref.store` whose indices are the block arguments, constants or
`affine.apply` of them (affine accesses). `names` and `roles` describe the operands (the arrays):
roles are `input`, `input_output`, `const` and `temp`.

`oi.schedule` and `oi.plan` (discardable attributes) carry the schedule and the plan; see
docs/loop_nests.md. `--tile` schedules the op: its body becomes the `scf.for` loops of the
schedule (the block then has no arguments), `--cache` and `--double-buffer` rewrite those
loops, and `--lower-nests` inlines the loops where the op was.
"""

from __future__ import annotations

from xdsl.dialects.builtin import ArrayAttr, DenseArrayBase, IndexType, MemRefType, StringAttr, i64
from xdsl.irdl import IRDLOperation, irdl_op_definition, prop_def, region_def, traits_def, var_operand_def
from xdsl.traits import NoTerminator
from xdsl.utils.exceptions import VerifyException

ROLES = ("input", "input_output", "const", "temp")


@irdl_op_definition
class NestOp(IRDLOperation):
    """An iteration domain and a body over arrays (see the module docstring)."""

    name = "oi.nest"

    arrays = var_operand_def(MemRefType)
    domain = prop_def(DenseArrayBase)
    indices = prop_def(ArrayAttr[StringAttr])
    names = prop_def(ArrayAttr[StringAttr])
    roles = prop_def(ArrayAttr[StringAttr])
    body = region_def("single_block")

    traits = traits_def(NoTerminator())

    def __init__(self, arrays, domain, indices, names, roles, body):
        super().__init__(
            operands=[arrays],
            properties={
                "domain": DenseArrayBase.from_list(i64, list(domain)),
                "indices": ArrayAttr([StringAttr(n) for n in indices]),
                "names": ArrayAttr([StringAttr(n) for n in names]),
                "roles": ArrayAttr([StringAttr(r) for r in roles]),
            },
            regions=[body],
        )

    @property
    def extents(self) -> list[int]:
        return [int(v) for v in self.domain.get_values()]

    @property
    def index_names(self) -> list[str]:
        return [a.data for a in self.indices.data]

    @property
    def array_names(self) -> list[str]:
        return [a.data for a in self.names.data]

    @property
    def array_roles(self) -> list[str]:
        return [a.data for a in self.roles.data]

    @property
    def scheduled(self) -> bool:
        """Whether `--tile` has turned the body into the schedule's loops."""
        return "oi.scheduled" in self.attributes

    def verify_(self) -> None:
        extents = self.extents
        names = self.index_names
        if len(names) != len(extents) or len(set(names)) != len(names):
            raise VerifyException("oi.nest needs one distinct index name per domain dimension")
        if any(e < 1 for e in extents):
            raise VerifyException(f"oi.nest domain sizes must be at least 1, got {extents}")
        if len(self.array_names) != len(self.arrays) or len(self.array_roles) != len(self.arrays):
            raise VerifyException("oi.nest needs one name and one role per array")
        if bad := [r for r in self.array_roles if r not in ROLES]:
            raise VerifyException(f"oi.nest array role {bad[0]!r} is not one of {', '.join(ROLES)}")
        args = self.body.block.args
        if self.scheduled:
            return
        if len(args) != len(extents) or any(not isinstance(a.type, IndexType) for a in args):
            raise VerifyException("oi.nest body takes one index argument per domain dimension")


NEST_OPS = [NestOp]
