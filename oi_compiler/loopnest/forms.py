"""Linear forms over index values: `Σ coeff·atom + const`, the affine arithmetic of the cache
analysis.

An atom is any index SSA value that is not itself a linear `affine.apply` or a constant: a
loop's induction variable, a loop bound computed by `affine.min`, a multicache counter
(`floordiv`). `form_of` reads a value back into a form; `emit_form` writes a form as one
`affine.apply` (or a constant, or the atom itself) at an insertion point.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from xdsl.dialects import affine, arith
from xdsl.dialects.builtin import AffineMapAttr, IndexType, IntegerAttr
from xdsl.ir import Operation, SSAValue
from xdsl.ir.affine import (
    AffineBinaryOpExpr,
    AffineBinaryOpKind,
    AffineConstantExpr,
    AffineDimExpr,
    AffineExpr,
    AffineMap,
    AffineSymExpr,
)
from xdsl.rewriter import InsertPoint, Rewriter


@dataclass
class Form:
    terms: dict[SSAValue, int] = field(default_factory=dict)
    const: int = 0

    @staticmethod
    def atom(value: SSAValue, coeff: int = 1) -> Form:
        return Form({value: coeff}) if coeff else Form()

    def __add__(self, other: Form | int) -> Form:
        if isinstance(other, int):
            return Form(dict(self.terms), self.const + other)
        terms = dict(self.terms)
        for atom, c in other.terms.items():
            terms[atom] = terms.get(atom, 0) + c
            if not terms[atom]:
                del terms[atom]
        return Form(terms, self.const + other.const)

    def scale(self, k: int) -> Form:
        if k == 0:
            return Form()
        return Form({a: c * k for a, c in self.terms.items()}, self.const * k)

    def __sub__(self, other: Form | int) -> Form:
        return self + (-other if isinstance(other, int) else other.scale(-1))

    def coeff(self, atom: SSAValue) -> int:
        return self.terms.get(atom, 0)

    @property
    def is_const(self) -> bool:
        return not self.terms


def _expr_form(expr: AffineExpr, operands: list[Form], num_dims: int) -> Form | None:
    if isinstance(expr, AffineConstantExpr):
        return Form(const=expr.value)
    if isinstance(expr, AffineDimExpr):
        return operands[expr.position]
    if isinstance(expr, AffineSymExpr):
        return operands[num_dims + expr.position]
    if isinstance(expr, AffineBinaryOpExpr):
        lhs = _expr_form(expr.lhs, operands, num_dims)
        rhs = _expr_form(expr.rhs, operands, num_dims)
        if lhs is None or rhs is None:
            return None
        if expr.kind == AffineBinaryOpKind.Add:
            return lhs + rhs
        if expr.kind == AffineBinaryOpKind.Mul:
            if rhs.is_const:
                return lhs.scale(rhs.const)
            if lhs.is_const:
                return rhs.scale(lhs.const)
    return None


def form_of(value: SSAValue) -> Form:
    """`value` as a linear form over atoms (see the module docstring)."""
    op = value.owner
    if isinstance(op, arith.ConstantOp) and isinstance(op.value, IntegerAttr) and isinstance(value.type, IndexType):
        return Form(const=op.value.value.data)
    if isinstance(op, affine.ApplyOp):
        amap = op.map.data
        form = _expr_form(amap.results[0], [form_of(v) for v in op.operands], amap.num_dims)
        if form is not None:
            return form
    return Form.atom(value)


def index_const(value: int, point: InsertPoint) -> SSAValue:
    op = arith.ConstantOp.from_int_and_width(value, IndexType())
    Rewriter.insert_op(op, point)
    return op.result


def emit_form(form: Form, point: InsertPoint, mapping: dict[SSAValue, SSAValue] | None = None) -> SSAValue:
    """The value of `form` at `point`, atoms renamed through `mapping`."""
    mapping = mapping or {}
    atoms = [mapping.get(a, a) for a in form.terms]
    if not atoms:
        return index_const(form.const, point)
    if len(atoms) == 1 and form.const == 0 and next(iter(form.terms.values())) == 1:
        return atoms[0]
    expr: AffineExpr = AffineConstantExpr(form.const)
    for i, c in enumerate(form.terms.values()):
        expr = expr + AffineDimExpr(i) * c
    op = affine.ApplyOp(atoms, AffineMapAttr(AffineMap(len(atoms), 0, (expr,))))
    Rewriter.insert_op(op, point)
    return op.result


def emit_map(operands: list[SSAValue], exprs: list[AffineExpr], point: InsertPoint, minimum: bool = False) -> SSAValue:
    """`affine.apply` (one expression) or `affine.min` (several) of `operands`."""
    amap = AffineMapAttr(AffineMap(len(operands), 0, tuple(exprs)))
    op: Operation = affine.MinOp(operands, amap) if minimum else affine.ApplyOp(operands, amap)
    Rewriter.insert_op(op, point)
    return op.results[0]
