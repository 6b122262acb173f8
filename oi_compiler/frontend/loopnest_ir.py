"""A recorded plan (frontend/loopnest.py) as IR: one `func.func` holding one `oi.nest`.

    func.func @nest(%A: memref<64x64xf32>, %B: ..., %C: ...) {
      "oi.nest"(%A, %B, %C) <{...}> ({ ^bb0(%i: index, %j: index, %k: index): ... })
          {oi.schedule = {order = [...], splits = [...]}, oi.plan = {caches = [...], ...}}
      func.return
    }

The function takes the INPUT and INPUT_OUTPUT arrays (an INPUT array the logic writes is
written in place: the ABI, read from the stores, marks it written); CONST arrays are `memref.global`
constants and TEMP arrays zero-filled `memref.alloc`s freed at the end. Float arithmetic in
the logic carries `fastmath<contract>`, so a multiply feeding an add may become one FMA.
"""

from __future__ import annotations

import numpy as np
from xdsl.builder import Builder
from xdsl.dialects import arith, func, math, memref, scf
from xdsl.dialects.builtin import (
    DenseIntOrFPElementsAttr,
    FloatAttr,
    IndexType,
    IntegerAttr,
    MemRefType,
    ModuleOp,
    StridedLayoutAttr,
    StringAttr,
    UnitAttr,
)
from xdsl.ir import Block, Region, SSAValue
from xdsl.rewriter import InsertPoint, Rewriter

from oi_compiler.dialects.oi_nest import NestOp
from oi_compiler.dtypes import dtype_type
from oi_compiler.errors import ScheduleError
from oi_compiler.loopnest.attrs import to_attr
from oi_compiler.loopnest.forms import Form, emit_form
from oi_compiler.loopnest.ir_util import Site, allocate
from oi_compiler.loopnest.layouts import row_major
from oi_compiler.loopnest.materialize import check_bounds

CONTRACT = arith.FastMathFlagsAttr(["contract"])


def array_type(array) -> MemRefType:
    element = dtype_type(array.element_type)
    if array.strides == tuple(row_major(array.shape)):
        return MemRefType(element, array.shape)
    return MemRefType(element, array.shape, StridedLayoutAttr(list(array.strides), 0))



def plan_params(plan, args=None) -> list:
    """The function's array arguments: `args`, or the INPUT and INPUT_OUTPUT arrays in the
    order they were created."""
    if args is None:
        return [a for a in plan._arrays() if a.role.value in ("input", "input_output")]
    from oi_compiler.frontend.loopnest import Array  # (the API's module imports this one)

    if isinstance(args, str | bytes) or not hasattr(args, "__iter__"):
        raise ScheduleError(f"build(args=...) takes a sequence of oi.Array, got {type(args).__name__}")
    params = list(args)
    for a in params:
        if not isinstance(a, Array):
            raise ScheduleError(f"build(args=...) takes oi.Array items, got {type(a).__name__}")
    return params


def plan_module(plan, name: str, args=None) -> ModuleOp:
    nest = plan.schedule.nest
    arrays = plan._arrays()
    params = plan_params(plan, args)
    for a in params:
        if a.role.value not in ("input", "input_output"):
            raise ScheduleError(f"{a.label} is a {a.role.name} array: only INPUT and INPUT_OUTPUT arrays are arguments")
    if missing := [a.label for a in arrays if a.role.value in ("input", "input_output") and a not in params]:
        raise ScheduleError(f"the logic uses {missing[0]} but it is not one of the function's arguments")
    if len({a.name for a in arrays}) != len(arrays):
        twice = next(a.name for a in arrays if sum(b.name == a.name for b in arrays) > 1)
        raise ScheduleError(f"two arrays of the nest are named {twice}; pass name= to oi.Array")
    module_ops = []
    block = Block(arg_types=[array_type(a) for a in params])
    values: dict[int, SSAValue] = {}
    for a, arg in zip(params, block.args):
        values[id(a)] = arg
        arg.name_hint = a.name
    b = Builder(InsertPoint.at_end(block))
    temps = []
    if plan.target.is_gpu and any(a.role.value == "temp" for a in arrays):
        raise ScheduleError("TEMP arrays are not supported on GPU targets yet")
    for a in arrays:
        if a.role.value == "const":
            module_ops.append(_const_global(a, f"{name}_{a.name}"))
            values[id(a)] = b.insert(memref.GetGlobalOp(f"{name}_{a.name}", array_type(a))).memref
        elif a.role.value == "temp":
            alloc, buffer = allocate(Site(b.insertion_point), dtype_type(a.element_type), list(a.shape),
                                     list(a.strides))  # fmt: skip
            _zero_fill(b, buffer, a)
            values[id(a)] = buffer
            temps.append(alloc.memref)
        if id(a) in values:
            values[id(a)].name_hint = a.name
    op = NestOp([values[id(a)] for a in arrays], nest.shape, [i.name for i in nest._indices],
                [a.name for a in arrays], [a.role.value for a in arrays], Region(_logic_block(nest, values)))  # fmt: skip
    by_name = {a.name: a for a in arrays}
    check_bounds(op, lambda n: by_name[n].label)  # here too: the Python caller gets a ScheduleError
    op.attributes["oi.schedule"] = to_attr(plan.schedule.model.to_attr_data())
    plan_data = {}
    if plan.caches:
        plan_data["caches"] = [c.recorded.to_attr_data() for c in plan.caches]
    if plan.vectorized:
        plan_data["vectorize"] = plan.vectorized
    if plan.unrolled:
        plan_data["unroll"] = plan.unrolled
    if plan.parallel:
        plan_data["parallelize"] = plan.parallel
    if plan.target.is_gpu:
        plan_data["target"] = {"category": "gpu", "arch": plan.target.arch,
                               "max_threads_per_block": plan.target.max_threads_per_block}  # fmt: skip
        if plan.bindings:
            plan_data["bind"] = dict(plan.bindings)
    if plan_data:
        op.attributes["oi.plan"] = to_attr(plan_data)
    b.insert(op)
    for t in temps:
        b.insert(memref.DeallocOp.get(t))
    b.insert(func.ReturnOp())
    function = func.FuncOp(name, ([a.type for a in block.args], []), Region(block))
    return ModuleOp([*module_ops, function])


def _const_global(array, sym: str) -> memref.GlobalOp:
    ty = array_type(array)
    data = np.asarray(array.data, dtype=array.dtype)
    if array.strides != tuple(row_major(array.shape)):
        raise ScheduleError(f"CONST array {array.label} must have the FIRST_MAJOR layout")
    values = [float(v) for v in data.ravel()] if array.element_type.startswith("f") else [int(v) for v in data.ravel()]
    from xdsl.dialects.builtin import TensorType

    init = DenseIntOrFPElementsAttr.from_list(TensorType(ty.element_type, array.shape), values)
    return memref.GlobalOp.get(StringAttr(sym), ty, init, sym_visibility=StringAttr("private"), constant=UnitAttr())


def _zero_fill(b: Builder, buffer: SSAValue, array) -> None:
    zero = b.insert(_constant(0, array.element_type)).result
    point = b.insertion_point
    ivs = []
    for size in array.shape:
        lb = arith.ConstantOp.from_int_and_width(0, IndexType())
        ub = arith.ConstantOp.from_int_and_width(size, IndexType())
        one = arith.ConstantOp.from_int_and_width(1, IndexType())
        body = Block(arg_types=[IndexType()])
        body.add_op(scf.YieldOp())
        loop = scf.ForOp(lb, ub, one, [], Region(body))
        for op in (lb, ub, one, loop):
            Rewriter.insert_op(op, point)
        ivs.append(body.args[0])
        point = InsertPoint.before(body.last_op)
    Builder(point).insert(memref.StoreOp.get(zero, buffer, ivs))


def _constant(value, dtype: str) -> arith.ConstantOp:
    if dtype.startswith("f"):
        return arith.ConstantOp(FloatAttr(float(value), dtype_type(dtype)))
    if isinstance(value, float) and not value.is_integer():
        raise ScheduleError(f"the constant {value} in {dtype} logic is not an integer")
    return arith.ConstantOp(IntegerAttr(int(value), dtype_type(dtype)))


def _logic_block(nest, values: dict[int, SSAValue]) -> Block:
    block = Block(arg_types=[IndexType()] * len(nest.shape))
    for arg, index in zip(block.args, nest._indices):
        arg.name_hint = index.name
    position = {index: arg for index, arg in zip(nest._indices, block.args)}
    b = Builder(InsertPoint.at_end(block))

    def index_value(expr) -> SSAValue:
        form = Form({position[i]: c for i, c in expr.terms.items()}, expr.const)
        return emit_form(form, b.insertion_point)

    def value(expr, dtype: str) -> SSAValue:
        from oi_compiler.frontend import loopnest as api

        if isinstance(expr, api.Load):
            if expr.array.element_type != dtype:
                raise ScheduleError(f"the logic mixes element types: {expr.array.label} is {expr.array.element_type}, "
                                    f"the value is stored as {dtype}")  # fmt: skip
            return b.insert(memref.LoadOp.get(values[id(expr.array)], [index_value(i) for i in expr.indices])).res
        if isinstance(expr, api.Const):
            return b.insert(_constant(expr.value, dtype)).result
        is_float = dtype.startswith("f")
        if isinstance(expr, api.Bin):
            lhs, rhs = value(expr.lhs, dtype), value(expr.rhs, dtype)
            if is_float:
                cls = {"add": arith.AddfOp, "sub": arith.SubfOp, "mul": arith.MulfOp, "div": arith.DivfOp}[expr.op]
                return b.insert(cls(lhs, rhs, CONTRACT)).result
            cls = {"add": arith.AddiOp, "sub": arith.SubiOp, "mul": arith.MuliOp, "div": arith.DivSIOp}[expr.op]
            return b.insert(cls(lhs, rhs)).result
        args = [value(a, dtype) for a in expr.args]
        fn = expr.fn
        if fn == "neg":
            return b.insert(arith.NegfOp(args[0]) if is_float else arith.SubiOp(b.insert(_constant(0, dtype)).result,
                                                                             args[0])).result  # fmt: skip
        if fn in ("max", "min"):
            cls = {("max", True): arith.MaximumfOp, ("min", True): arith.MinimumfOp,
                   ("max", False): arith.MaxSIOp, ("min", False): arith.MinSIOp}[fn, is_float]  # fmt: skip
            return b.insert(cls(*args)).result
        if fn == "abs":
            return b.insert(math.AbsFOp(args[0]) if is_float else math.AbsIOp(args[0])).result
        if not is_float:
            raise ScheduleError(f"{fn} needs a float array element type")
        cls = {"exp": math.ExpOp, "log": math.LogOp, "sqrt": math.SqrtOp, "tanh": math.TanhOp}[fn]
        return b.insert(cls(args[0])).result

    for array, indices, expr in nest.logic:
        result = value(expr, array.element_type)
        b.insert(memref.StoreOp.get(result, values[id(array)], [index_value(i) for i in indices]))
    return block

