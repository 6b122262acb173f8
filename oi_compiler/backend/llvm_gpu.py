"""Emitters for the NVPTX target: xDSL's `gpu` ids and barrier, shared memory, libdevice math.

- `gpu.thread_id x` / `block_id` / `block_dim` / `grid_dim`: the `llvm.nvvm.read.ptx.sreg.*`
  registers (`i32`), zero-extended to `index`;
- `gpu.barrier`: `llvm.nvvm.barrier.cta.sync.aligned.all(0)` (`bar.sync 0`);
- `memref.alloca` in memory space 3 (`memref<16x16xf32, 3>`): a block's shared memory, an
  `addrspace(3)` global of the static size, reached through its generic address;
- math: NVPTX's LLVM backend has no lowering for `llvm.exp`, `llvm.log`, `llvm.pow`... (it aborts
  the process), so every transcendental is a call to libdevice's `__nv_*` function, linked in by
  `backend/ptx.py`; what the hardware does natively (`fabs`, `sqrt`, `floor`, `fma`,
  `minnum`...) stays an LLVM intrinsic. An op on neither list is refused by the table lookup, and
  `ptx.check_declarations` refuses any other external symbol before LLVM compiles the module.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from llvmlite import ir
from xdsl.dialects import gpu, math, memref
from xdsl.dialects.builtin import IntegerAttr, MemRefType

from oi_compiler.backend.llvm_arith import MATH_EMITTERS, fastmath_flags, in_float_precision
from oi_compiler.backend.llvm_memref import emit_alloca, make_descriptor, storage_type
from oi_compiler.backend.llvm_types import INDEX, PTR, index_const
from oi_compiler.errors import PassError

if TYPE_CHECKING:
    from oi_compiler.backend.llvm import FunctionEmitter, LoweredValue

I32 = ir.IntType(32)
SHARED = 3  # NVPTX's address space of a block's shared memory


def _sreg(register: str):
    def emit(fx: FunctionEmitter, op) -> list[LoweredValue]:
        dim = op.dimension.data.value  # "x" | "y" | "z"
        fn = fx.declare(f"llvm.nvvm.read.ptx.sreg.{register}.{dim}", I32, [])
        return [fx.builder.zext(fx.builder.call(fn, []), INDEX)]

    return emit


def emit_barrier(fx: FunctionEmitter, op: gpu.BarrierOp) -> list[LoweredValue]:
    fn = fx.declare("llvm.nvvm.barrier.cta.sync.aligned.all", ir.VoidType(), [I32])
    fx.builder.call(fn, [ir.Constant(I32, 0)])
    return []


def memory_space(ty: MemRefType) -> int:
    space = ty.memory_space
    return space.value.data if isinstance(space, IntegerAttr) else 0


def emit_gpu_alloca(fx: FunctionEmitter, op: memref.AllocaOp) -> list[LoweredValue]:
    """Shared memory (space 3) is one static global per allocation; anything else a stack buffer."""
    ty = op.memref.type
    assert isinstance(ty, MemRefType)
    space = memory_space(ty)
    if space == 0:
        return emit_alloca(fx, op)
    if space != SHARED:
        raise PassError(f"backend: memory space {space} is not supported on NVPTX (0: generic, 3: shared)")
    if op.dynamic_sizes or any(d < 0 for d in ty.get_shape()):
        raise PassError("backend: shared memory needs a static size")
    count = 1
    for d in ty.get_shape():
        count *= d
    array = ir.ArrayType(storage_type(ty), count)
    name = f"shared.{len([g for g in fx.module.globals if g.startswith('shared.')])}"
    gv = ir.GlobalVariable(fx.module, array, name, addrspace=SHARED)
    gv.linkage = "internal"
    gv.align = 16
    gv.initializer = ir.Constant(array, ir.Undefined)
    pointer = fx.builder.addrspacecast(gv, PTR)
    sizes = [index_const(d) for d in ty.get_shape()]
    return [make_descriptor(fx.builder, ty, pointer, pointer, index_const(0), sizes, ())]


def libdevice(name: str):
    """`__nv_<name>f` on float (16-bit floats widened), `__nv_<name>` on double."""

    def emit(fx: FunctionEmitter, op) -> list[LoweredValue]:
        def call(*args: ir.Value) -> ir.Value:
            ty = args[0].type
            suffix = "f" if ty == ir.FloatType() else ""
            fn = fx.declare(f"__nv_{name}{suffix}", ty, [ty] * len(args))
            return fx.builder.call(fn, args, fastmath=fastmath_flags(op))

        return [in_float_precision(fx, [fx.value(v) for v in op.operands], call, math_op=True)]

    return emit


def emit_fpowi(fx: FunctionEmitter, op: math.FPowIOp) -> list[LoweredValue]:
    """`x ** n` for an integer n: libdevice's `__nv_powi(f)`."""
    base, power = (fx.value(v) for v in op.operands)
    b = fx.builder
    if power.type != I32:
        power = b.trunc(power, I32) if power.type.width > 32 else b.sext(power, I32)

    def call(x: ir.Value) -> ir.Value:
        suffix = "f" if x.type == ir.FloatType() else ""
        fn = fx.declare(f"__nv_powi{suffix}", x.type, [x.type, I32])
        return b.call(fn, [x, power])

    return [in_float_precision(fx, [base], call, math_op=True)]


#: math ops the hardware does natively: the CPU's emitters (LLVM intrinsics NVPTX selects)
_NATIVE_MATH = (math.AbsFOp, math.SqrtOp, math.FloorOp, math.CeilOp, math.RoundEvenOp, math.TruncOp,
                math.CopySignOp, math.FmaOp, math.AbsIOp, math.CtPopOp, math.CountLeadingZerosOp,
                math.CountTrailingZerosOp)  # fmt: skip

#: the rest go to libdevice
_LIBDEVICE_MATH = {
    math.ExpOp: "exp", math.Exp2Op: "exp2", math.LogOp: "log", math.Log2Op: "log2", math.Log10Op: "log10",
    math.SinOp: "sin", math.CosOp: "cos", math.TanOp: "tan", math.TanhOp: "tanh", math.ErfOp: "erf",
    math.SinhOp: "sinh", math.CoshOp: "cosh", math.AsinOp: "asin", math.AcosOp: "acos", math.AtanOp: "atan",
    math.AsinhOp: "asinh", math.AcoshOp: "acosh", math.AtanhOp: "atanh", math.Atan2Op: "atan2",
    math.ExpM1Op: "expm1", math.Log1pOp: "log1p", math.CbrtOp: "cbrt", math.PowFOp: "pow",
    math.RoundOp: "round", math.RsqrtOp: "rsqrt",
}  # fmt: skip

#: every math emitter of the NVPTX target (the keys of the CPU's table, none left out)
NVPTX_MATH_EMITTERS = {
    **{cls: MATH_EMITTERS[cls] for cls in _NATIVE_MATH},
    **{cls: libdevice(name) for cls, name in _LIBDEVICE_MATH.items()},
    math.FPowIOp: emit_fpowi,
}
assert NVPTX_MATH_EMITTERS.keys() == MATH_EMITTERS.keys()

GPU_EMITTERS = {
    gpu.ThreadIdOp: _sreg("tid"),
    gpu.BlockIdOp: _sreg("ctaid"),
    gpu.BlockDimOp: _sreg("ntid"),
    gpu.GridDimOp: _sreg("nctaid"),
    gpu.BarrierOp: emit_barrier,
    memref.AllocaOp: emit_gpu_alloca,
}
