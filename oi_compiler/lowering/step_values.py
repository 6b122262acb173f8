"""Element values and fills shared by the graph's conversion and the table storages.

- `signless(dtype)`: the arith type of a dtype's elements (`uiN` as `iN`);
- `nbytes(dtype, shape)`: the bytes of a dense array;
- `fill(ir, target, init, dtype)`: store `@init` (or 0) into every element of a memref;
- `strided_like(ty, table)`: `ty`'s shape as a view into a dense table's data (entry strides
  static, the leading ones and the offset dynamic);
- `cast_shape(ir, value, shape)`: a memref with run-time dims as a static shape, its layout kept.
"""

from __future__ import annotations

import math

import numpy as np
from xdsl.dialects import arith, memref
from xdsl.dialects.builtin import FloatAttr, IntegerType, MemRefType, StridedLayoutAttr, UnrealizedConversionCastOp
from xdsl.ir import SSAValue

from oi_compiler.dtypes import dtype_type, numpy_dtype
from oi_compiler.lowering.analysis import VarLayout
from oi_compiler.lowering.step_ir import I8, StepIR

F32 = dtype_type("f32")


def signless(dtype: str):
    ty = dtype_type(dtype)
    if isinstance(ty, IntegerType):
        return IntegerType(ty.width.data)
    return ty


def nbytes(dtype: str, shape) -> int:
    return math.prod(shape) * numpy_dtype(dtype).itemsize


def constant(ir: StepIR, element, init, dtype: str) -> SSAValue:
    """`init` (None: 0) as a constant of `element`, wrapped or rounded to the dtype."""
    if isinstance(element, IntegerType):
        value = int(init or 0)
        width = element.width.data
        value &= (1 << width) - 1
        if value >= 1 << (width - 1) and width > 1:
            value -= 1 << width
        if width == 1:
            value = -value if value else 0
        return ir.const_of(value, element)
    if dtype in ("f16", "bf16", "f8"):  # the value rounded to the dtype, exact in f32, truncated
        wide = ir.emit(arith.ConstantOp(FloatAttr(float(np.asarray(init or 0.0, numpy_dtype(dtype))), F32)))
        return ir.emit(arith.TruncFOp(wide, element))
    return ir.emit(arith.ConstantOp(FloatAttr(float(init or 0.0), element)))


def fill(ir: StepIR, target: SSAValue, init, dtype: str) -> None:
    """Every element of `target` becomes `init` (`dtype` "u8": bytes, such as present flags)."""
    ty = target.type
    element = signless(dtype) if dtype != "u8" else I8
    value = constant(ir, element, init, dtype)
    shape = ty.get_shape()
    sizes = [ir.const(d) if d >= 0 else ir.emit(memref.DimOp(target, ir.const(i))) for i, d in enumerate(shape)]
    if element != ty.element_type:
        cast_type = MemRefType(element, list(shape), ty.layout)
        target = ir.emit(UnrealizedConversionCastOp.get([target], [cast_type]))
    with ir.for_each(sizes) as ivs:
        ir.emit(memref.StoreOp.get(value, target, ivs))


def strided_like(ty: MemRefType, table: VarLayout) -> MemRefType:
    """`ty`'s shape as a view into the table: entry strides static, leading ones and offset dynamic."""
    strides, running = [], 1
    for d in reversed(table.shape):
        strides.insert(0, running)
        running *= d
    lead = len(ty.get_shape()) - len(table.shape)
    return MemRefType(ty.element_type, list(ty.get_shape()), StridedLayoutAttr([None] * lead + strides, None))


def cast_shape(ir: StepIR, value: SSAValue, shape) -> SSAValue:
    """`value` seen with `shape` (dims checked at run time before), keeping its layout: a view of a
    table's data stays strided (an identity layout would claim row-major strides it does not have)."""
    ty = value.type
    return ir.emit(memref.CastOp.get(value, MemRefType(ty.element_type, list(shape), ty.layout)))
