"""Translate xDSL's func/scf/memref/arith/math IR to an `llvmlite.ir.Module`.

    from oi_compiler.backend.llvm import translate, llvm_ir_text
    llvm_module = translate(module)            # llvmlite.ir.Module
    print(llvm_ir_text(module))                # what `oi-opt -t llvm` prints

One walk over the module: `memref.global`s become LLVM globals, every `func.func` is declared
(an internal body, or an external declaration), each body is emitted op by op through one
dispatch table (op class -> emitter), and last each exported function gets its C-ABI wrapper.
The table is built from `llvm_arith` (arith, math), `llvm_memref` (memref) and `llvm_scf`
(scf), plus `func.call` and `builtin.unrealized_conversion_cast` (between types that lower
alike, `ui8` and `i8`) here.
An op without an entry raises `PassError("backend: unsupported op <name>")` at its location.

**ABI of exported functions** (public `func.func`s with a body; an external wrapper with the C
calling convention; `llvm_abi` describes each one as data):

- a memref argument is `ptr noalias captures(none) align <element size>` to the aligned data,
  then `i64 offset`, `i64` sizes (one per dim), `i64` strides (one per dim), in elements:
  element `[i, j]` lives at `ptr[offset + i*stride0 + j*stride1]`. Fields fixed by the memref's
  type are passed and ignored: an identity-layout memref is row-major contiguous from `ptr`;
- a scalar argument is itself, except `i1` (an `i8`, 0 or 1), `f16`/`bf16` (an `i16` holding
  the bit pattern) and `f8E5M2` (an `i8` bit pattern); `index` is `i64`; `i4` is refused;
- the result is `void` or one scalar with the same conventions.

Because of `noalias`, two memref arguments may share memory only when neither is written
(`llvm_abi.written_memref_args`); the JIT checks this before each call. The arguments a function's
`oi.may_alias` (an array of argument positions) names are not `noalias`: an elementwise GPU kernel
whose output may be one of its inputs exactly (`loopnest/op_kernels.py`, `OpKernel.in_place`).

**Bodies.** Every `func.func` with a body becomes an internal function with the internal
convention (each memref as its full descriptor, allocated pointer first, no `noalias`; several
results returned as one literal struct). An exported function is then a thin wrapper under its
own name: it takes the C ABI above, builds the descriptors, and calls the body (marked
`alwaysinline` at that call, so the optimised wrapper is the body with `noalias` pointers).
`func.call` always targets the body: a module-internal call may pass one buffer twice.
Declarations (`func.func private @f(...)` without body) are external symbols with the C ABI.

**Symbol names** (`function_symbols`): a body is named like its function when that is private
and not a runtime symbol (`llvm_runtime.is_reserved`: libm, `memcpy`, `aligned_alloc`, `free`,
`__*`, `llvm.*`), else `<name>.body`; an exported wrapper takes the function's name unless that
is reserved, in which case it is `<name>.export` (`CompiledModule.function` knows). So a user
function `@tanhf` never stands in for libm's.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

from llvmlite import ir
from xdsl.dialects import arith, func, memref, scf
from xdsl.dialects.builtin import Float8E5M2Type, MemRefType, ModuleOp, UnrealizedConversionCastOp
from xdsl.ir import Attribute, Block, Operation, Region, SSAValue

from oi_compiler.backend.llvm_abi import MAY_ALIAS_ATTR, is_exported
from oi_compiler.backend.llvm_arith import ARITH_EMITTERS, MATH_EMITTERS
from oi_compiler.backend.llvm_memref import (
    MEMREF_EMITTERS,
    Emitter,
    LoweredValue,
    MemRefDescriptor,
    check_memref_type,
    emit_global,
    flat_types,
    flatten,
    make_descriptor,
    storage_bytes,
    unflatten,
)
from oi_compiler.backend.llvm_runtime import is_reserved
from oi_compiler.backend.llvm_scf import SCF_EMITTERS
from oi_compiler.backend.llvm_types import I1, I8, I16, INDEX, PTR, bit_width, is_float, scalar_type
from oi_compiler.errors import PassError
from oi_compiler.gc_pause import paused_collection
from oi_compiler.ir_context import fresh_name, nearest_loc

NOINLINE_ATTR = "oi.noinline"
_TERMINATORS = (func.ReturnOp, scf.YieldOp, scf.ConditionOp, scf.ReduceOp, scf.ReduceReturnOp)
# ops that move an f8E5M2 value as its bits or convert it; any other op on one is refused
_F8_OPS = (func.CallOp, scf.ForOp, scf.IfOp, scf.WhileOp, scf.ParallelOp, memref.LoadOp, memref.StoreOp,
           arith.ConstantOp, arith.SelectOp, arith.BitcastOp, arith.ExtFOp, arith.TruncFOp,
           UnrealizedConversionCastOp)  # fmt: skip
LoopBody = Callable[[ir.Value, list[LoweredValue]], list[LoweredValue]]  # (iv, carried) -> next carried


@dataclass(frozen=True)
class FunctionSymbols:
    """The LLVM names of one `func.func`: its internal body, its C-ABI symbol (wrapper or
    declaration); None where it has none."""

    body: str | None
    c_symbol: str | None


def function_symbols(module: ModuleOp) -> dict[str, FunctionSymbols]:
    """LLVM names for the module's functions: unique, and never a runtime symbol's unless the
    function is a declaration of that very symbol."""
    taken = {op.sym_name.data for op in module.ops if isinstance(op, func.FuncOp | memref.GlobalOp)}

    def fresh(stem: str) -> str:
        return fresh_name(stem, taken, ".")

    symbols: dict[str, FunctionSymbols] = {}
    for op in module.ops:
        if not isinstance(op, func.FuncOp):
            continue
        name = op.sym_name.data
        if op.is_declaration:
            symbols[name] = FunctionSymbols(None, name)
        elif is_exported(op):
            symbols[name] = FunctionSymbols(fresh(name + ".body"),
                                            fresh(name + ".export") if is_reserved(name) else name)  # fmt: skip
        else:
            symbols[name] = FunctionSymbols(fresh(name + ".body") if is_reserved(name) else name, None)
    return symbols


def exported_symbols(module: ModuleOp) -> dict[str, str]:
    """Each exported function's name -> the symbol of its C-ABI wrapper."""
    return {name: s.c_symbol for name, s in function_symbols(module).items()
            if s.body is not None and s.c_symbol is not None}  # fmt: skip


def translate(module: ModuleOp, *, triple: str | None = None, emitters: Mapping | None = None) -> ir.Module:
    """The LLVM module for `module` (func/scf/memref/arith/math); PassError on anything else.
    `emitters` replaces the host's table (the NVPTX target's: `backend/ptx.py`)."""
    with paused_collection():  # see `TranslatedModule`
        return _translate(module, triple, emitters)


def _translate(module: ModuleOp, triple: str | None, emitters: Mapping | None) -> ir.Module:
    out = TranslatedModule(name="oi_compiler")
    if triple is not None:
        out.triple = triple
    symbols = function_symbols(module)
    functions: dict[str, tuple[func.FuncOp, ir.Function]] = {}
    for op in module.ops:
        if isinstance(op, memref.GlobalOp):
            _located(op, lambda: emit_global(out, op))
        elif isinstance(op, func.FuncOp):
            names = symbols[op.sym_name.data]
            functions[op.sym_name.data] = (op, _located(op, lambda: declare_function(out, op, names)))
        else:
            raise unsupported(op)
    for op, function in functions.values():
        if not op.is_declaration:
            FunctionEmitter(out, functions, op, function, emitters).emit_body()
    for op, function in functions.values():  # after the bodies: the IR text reads body first
        if is_exported(op):
            _located(op, lambda: emit_wrapper(out, op, function, symbols[op.sym_name.data].c_symbol))
    return out


def llvm_ir_text(module: ModuleOp) -> str:
    """The textual LLVM IR of `module`, unoptimised (what `oi-opt -t llvm` prints)."""
    return str(translate(module))


class TranslatedModule(ir.Module):
    """An `ir.Module` whose text (`str(module)`) is printed with Python's cyclic garbage collector
    paused, as it is built (`translate`): both make tens of thousands of long-lived objects, and
    each batch of allocations would start a collection that walks the whole heap (the xDSL
    module, the graph, the model). The compile entry points pause it already
    (`gc_pause.paused_collection`); this covers direct calls (`llvm_ir_text`, benchmarks)."""

    def __repr__(self) -> str:
        with paused_collection():
            return super().__repr__()


def unsupported(op: Operation) -> PassError:
    return PassError(f"backend: unsupported op {op.name}", nearest_loc(op))


def _located(op: Operation, emit: Callable[[], object]):
    """`emit()`, a PassError it raises without location getting `op`'s."""
    try:
        return emit()
    except PassError as e:
        if e.loc is not None:
            raise
        raise PassError(e.message, nearest_loc(op)) from None


# ----------------------------------------------------------------------------- signatures


def uses_c_abi(op: func.FuncOp) -> bool:
    """Calls to declarations take the C ABI; calls to a body (exported or not) the internal one."""
    return op.is_declaration


def c_scalar_type(ty: ir.Type) -> ir.Type:
    """How a scalar crosses the C ABI: `i1` as `i8`, 16-bit floats as `i16`."""
    if ty == I1:
        return I8
    if isinstance(ty, ir.IntType) and ty.width < 8:
        raise PassError(f"backend: {ty} scalars cannot cross the C ABI (pass a 0-d memref)")
    if is_float(ty) and bit_width(ty) == 16:
        return I16
    return ty


def to_c_scalar(builder: ir.IRBuilder, value: ir.Value) -> ir.Value:
    if value.type == I1:
        return builder.zext(value, I8)
    target = c_scalar_type(value.type)
    return value if target == value.type else builder.bitcast(value, target)


def from_c_scalar(builder: ir.IRBuilder, value: ir.Value, ty: ir.Type) -> ir.Value:
    if ty == I1:
        return builder.icmp_unsigned("!=", value, ir.Constant(I8, 0))
    return value if ty == value.type else builder.bitcast(value, ty)


def c_param_types(ty: Attribute) -> list[ir.Type]:
    if isinstance(ty, MemRefType):
        rank = check_memref_type(ty).get_num_dims()
        return [PTR, INDEX] + [INDEX] * (2 * rank)
    return [c_scalar_type(scalar_type(ty))]


def c_function_type(op: func.FuncOp) -> ir.FunctionType:
    """The C-ABI signature of `op` (an exported wrapper, a declaration)."""
    inputs, outputs = op.function_type.inputs.data, op.function_type.outputs.data
    params = [t for ty in inputs for t in c_param_types(ty)]
    if len(outputs) > 1 or any(isinstance(t, MemRefType) for t in outputs):
        raise PassError(f"backend: exported function @{op.sym_name.data} may return at most one scalar")
    result = c_scalar_type(scalar_type(outputs[0])) if outputs else ir.VoidType()
    return ir.FunctionType(result, params)


def declare_function(module: ir.Module, op: func.FuncOp, names: FunctionSymbols) -> ir.Function:
    """The LLVM function `func.call` targets: the internal body of a definition (its parameter
    list in the internal convention), or the external symbol of a declaration (C ABI)."""
    if op.is_declaration:
        return ir.Function(module, c_function_type(op), names.c_symbol)
    if is_exported(op):
        c_function_type(op)  # refuse an exported signature the C ABI cannot take, before the body
    inputs, outputs = op.function_type.inputs.data, op.function_type.outputs.data
    params = [t for ty in inputs for t in flat_types(ty)]
    function = ir.Function(module, ir.FunctionType(internal_result_type(outputs), params), names.body)
    function.attributes.add("nounwind")
    if NOINLINE_ATTR in op.attributes:  # shared helpers and kernels: compiled once, called
        function.attributes.add("noinline")
    function.linkage = "internal"
    _name_parameters(function, op, c_abi=False)
    return function


def emit_wrapper(module: ir.Module, op: func.FuncOp, body: ir.Function, symbol: str) -> ir.Function:
    """The exported C-ABI function: `noalias` memref pointers, descriptors built, the body called
    (always inlined there)."""
    inputs = op.function_type.inputs.data
    wrapper = ir.Function(module, c_function_type(op), symbol)
    wrapper.attributes.add("nounwind")
    _name_parameters(wrapper, op, c_abi=True)
    may_alias = op.attributes.get(MAY_ALIAS_ATTR)
    _mark_memref_pointers(wrapper, inputs, {a.data for a in may_alias.data} if may_alias is not None else set())
    b = ir.IRBuilder(wrapper.append_basic_block("entry"))
    raw = iter(wrapper.args)
    args: list[ir.Value] = []
    for ty in inputs:
        fields = [next(raw) for _ in c_param_types(ty)]
        if isinstance(ty, MemRefType):
            pointer, rest = fields[0], fields[1:]
            args += [pointer, pointer, *rest]  # allocated = aligned: the caller owns the buffer
        else:
            args.append(from_c_scalar(b, fields[0], scalar_type(ty)))
    result = b.call(body, args, attrs=("alwaysinline",))
    outputs = op.function_type.outputs.data
    if outputs:
        b.ret(to_c_scalar(b, result))
    else:
        b.ret_void()
    return wrapper


def _name_parameters(function: ir.Function, op: func.FuncOp, *, c_abi: bool) -> None:
    """`%a: memref<?xf32>` gives `%a.ptr`, `%a.offset`, `%a.size0`, `%a.stride0`... (readable IR)."""
    params = iter(function.args)
    for position, arg in enumerate(op.body.block.args):
        stem = arg.name_hint or f"arg{position}"
        if not isinstance(arg.type, MemRefType):
            next(params).name = stem
            continue
        rank = arg.type.get_num_dims()
        fields = ["allocated", "ptr"] if not c_abi else ["ptr"]
        fields += ["offset", *(f"size{d}" for d in range(rank)), *(f"stride{d}" for d in range(rank))]
        for field in fields:
            next(params).name = f"{stem}.{field}"


def internal_result_type(outputs: Sequence[Attribute]) -> ir.Type:
    if not outputs:
        return ir.VoidType()
    if len(outputs) == 1 and not isinstance(outputs[0], MemRefType):
        return scalar_type(outputs[0])
    return ir.LiteralStructType([t for ty in outputs for t in flat_types(ty)])


def _mark_memref_pointers(function: ir.Function, inputs: Sequence[Attribute], may_alias: set[int]) -> None:
    position = 0
    for n, ty in enumerate(inputs):
        if isinstance(ty, MemRefType):
            pointer = function.args[position]
            if n not in may_alias:
                pointer.add_attribute("noalias")
            pointer.add_attribute("captures(none)")
            pointer.attributes.align = storage_bytes(ty)
        position += len(c_param_types(ty))


# ----------------------------------------------------------------------------- function bodies


class PhiGroup:
    """Phis for values of some xDSL types (a memref: one phi per descriptor field)."""

    def __init__(self, builder: ir.IRBuilder, types: Sequence[Attribute]):
        self.nodes = [[builder.phi(t) for t in flat_types(ty)] for ty in types]
        self.values = [unflatten(builder, ty, nodes) for ty, nodes in zip(types, self.nodes)]

    def add_incoming(self, values: Sequence[LoweredValue], block: ir.Block) -> None:
        for nodes, value in zip(self.nodes, values, strict=True):
            for node, field in zip(nodes, flatten(value)):
                node.add_incoming(field, block)


@dataclass
class AllocaScope:
    """The stack allocations emitted in place (not hoisted to the entry block) in one loop
    iteration (an automatic allocation scope, as MLIR's scf loops are): `restorable` ones are
    released at the end of the iteration with `llvm.stackrestore`; an `escaping` one (yielded
    out of it) keeps the stack as it is, there and in the enclosing loops."""

    restorable: int = 0
    escaping: int = 0


class FunctionEmitter:
    """Emits one `func.func` body: the SSA value map, the builder and the block structure."""

    def __init__(self, module: ir.Module, functions: dict[str, tuple[func.FuncOp, ir.Function]],
                 op: func.FuncOp, function: ir.Function, emitters: Mapping | None = None):  # fmt: skip
        self.module = module
        self.emitters = EMITTERS if emitters is None else emitters
        self.functions = functions
        self.op = op
        self.function = function
        self.builder = ir.IRBuilder(function.append_basic_block("entry"))
        self.values: dict[SSAValue, LoweredValue] = {}
        self.alloca_scope = AllocaScope()

    # -- values
    def value(self, ssa: SSAValue) -> LoweredValue:
        return self.values[ssa]

    def bind(self, ssa_values: Sequence[SSAValue], lowered: Sequence[LoweredValue]) -> None:
        """Map xDSL values to LLVM ones; an unnamed instruction takes the xDSL name (`%x`)."""
        for ssa, value in zip(ssa_values, lowered, strict=True):
            self.values[ssa] = value
            if ssa.name_hint and isinstance(value, ir.Instruction) and value.name.startswith("."):
                value.name = ssa.name_hint

    def declare(self, name: str, result: ir.Type, params: Sequence[ir.Type]) -> ir.Function:
        """A runtime function by name (an intrinsic, a libc/libm symbol), declared once.

        No function of the module has such a name (`function_symbols`), except a declaration of
        that very symbol, which is reused when its signature is the same."""
        ty = ir.FunctionType(result, list(params))
        existing = self.module.globals.get(name)
        if existing is None:
            return ir.Function(self.module, ty, name)
        if isinstance(existing, ir.Function) and existing.is_declaration and existing.function_type == ty:
            return existing
        raise PassError(f"backend: function @{name} clashes with a runtime symbol")

    # -- blocks
    def new_block(self, name: str) -> ir.Block:
        return self.function.append_basic_block(name)

    def is_top_level(self, op: Operation) -> bool:
        return op.parent_block() is self.op.body.block

    def phis(self, types: Sequence[Attribute]) -> PhiGroup:
        return PhiGroup(self.builder, types)

    def counted_loop(self, lower: ir.Value, upper: ir.Value, step: ir.Value, types: Sequence[Attribute],
                     inits: Sequence[LoweredValue], body: LoopBody) -> list[LoweredValue]:  # fmt: skip
        """`for iv = lower; iv < upper; iv += step` carrying values of `types`; the final ones."""
        b = self.builder
        preheader = b.block
        header, body_bb, exit_bb = (self.new_block(f"loop.{part}") for part in ("header", "body", "end"))
        b.branch(header)
        b.position_at_end(header)
        iv = b.phi(lower.type)
        carried = self.phis(types)
        iv.add_incoming(lower, preheader)
        carried.add_incoming(inits, preheader)
        b.cbranch(b.icmp_signed("<", iv, upper), body_bb, exit_bb)
        b.position_at_end(body_bb)
        with self.allocation_scope(body_bb):
            results = body(iv, carried.values)
        iv.add_incoming(b.add(iv, step, flags=("nsw",) if lower.type == INDEX else ()), b.block)
        carried.add_incoming(results, b.block)
        b.branch(header)
        b.position_at_end(exit_bb)
        return carried.values

    @contextmanager
    def allocation_scope(self, first_block: ir.Block) -> Iterator[None]:
        """One loop iteration, from the start of `first_block` to the builder's position when the
        block exits: in-place allocas made in it are released there (stacksave/stackrestore)."""
        outer = self.alloca_scope
        scope = self.alloca_scope = AllocaScope()
        try:
            yield
        finally:
            self.alloca_scope = outer
        outer.restorable += scope.restorable
        outer.escaping += scope.escaping
        if scope.restorable and not scope.escaping:
            self._save_and_restore_stack(first_block)

    def _save_and_restore_stack(self, first_block: ir.Block) -> None:
        b = self.builder
        current = b.block
        save = self.declare("llvm.stacksave.p0", PTR, [])
        restore = self.declare("llvm.stackrestore.p0", ir.VoidType(), [PTR])
        first = next((i for i in first_block.instructions if not isinstance(i, ir.PhiInstr)), None)
        if first is None:
            b.position_at_end(first_block)
        else:
            b.position_before(first)
        stack = b.call(save, [], name="stack")
        b.position_at_end(current)
        b.call(restore, [stack])

    # -- ops
    def emit_op(self, op: Operation) -> None:
        emitter: Emitter | None = self.emitters.get(type(op))
        if emitter is None:
            raise unsupported(op)
        if not _moves_f8(type(op)) and _touches_f8(op):
            message = f"backend: {op.name} on f8E5M2 is not supported (extf to f32 first)"
            raise PassError(message, nearest_loc(op))
        try:  # `_located` written out: this runs once per op
            lowered = emitter(self, op)
        except PassError as e:
            if e.loc is not None:
                raise
            raise PassError(e.message, nearest_loc(op)) from None
        self.bind(op.results, lowered)

    def emit_block(self, block: Block) -> Operation | None:
        """Emit the block's ops; its terminator (scf.yield, func.return...) is left to the caller."""
        terminator = block.last_op if isinstance(block.last_op, _TERMINATORS) else None
        for op in block.ops:
            if op is not terminator:
                self.emit_op(op)
        return terminator

    def emit_region_values(self, region: Region) -> list[LoweredValue]:
        """Emit a single-block region; the values its terminator yields."""
        terminator = self.emit_block(region.block)
        return [self.value(v) for v in terminator.operands] if terminator is not None else []

    def emit_body(self) -> None:
        if len(self.op.body.blocks) != 1:
            raise PassError(f"backend: @{self.op.sym_name.data} has several blocks (cf is not supported)",
                            nearest_loc(self.op))  # fmt: skip
        block = self.op.body.block
        self.bind(block.args, self._arguments(block.args))
        results = self.emit_region_values(self.op.body)
        self._return(results)

    def _arguments(self, args: Sequence[SSAValue]) -> list[LoweredValue]:
        """The body's parameters (internal convention) as the block arguments' values."""
        raw = iter(self.function.args)
        return [unflatten(self.builder, arg.type, [next(raw) for _ in flat_types(arg.type)]) for arg in args]

    def _return(self, results: list[LoweredValue]) -> None:
        b = self.builder
        if not results:
            b.ret_void()
        elif len(results) == 1 and not isinstance(results[0], MemRefDescriptor):
            b.ret(results[0])
        else:
            b.ret(pack_struct(b, self.function.function_type.return_type, results))


# Memoised by class: Operation and Attribute classes have ABCMeta, whose `isinstance` is slow
# Python code, and these are asked once per op and per operand.
@functools.cache
def _moves_f8(cls: type[Operation]) -> bool:
    """Whether ops of class `cls` are among `_F8_OPS`."""
    return issubclass(cls, _F8_OPS)


@functools.cache
def _is_f8(cls: type[Attribute]) -> bool:
    return issubclass(cls, Float8E5M2Type)


def _touches_f8(op: Operation) -> bool:
    for value in op.operands:
        if _is_f8(type(value.type)):
            return True
    for value in op.results:
        if _is_f8(type(value.type)):
            return True
    return False


def pack_struct(builder: ir.IRBuilder, ty: ir.LiteralStructType, values: Sequence[LoweredValue]) -> ir.Value:
    aggregate: ir.Value = ir.Constant(ty, ir.Undefined)
    for position, field in enumerate(f for v in values for f in flatten(v)):
        aggregate = builder.insert_value(aggregate, field, position)
    return aggregate


def emit_call(fx: FunctionEmitter, op: func.CallOp) -> list[LoweredValue]:
    """A call with the callee's convention (C ABI or internal)."""
    callee_op, callee = fx.functions[op.callee.string_value()]
    b = fx.builder
    args = [fx.value(v) for v in op.arguments]
    if uses_c_abi(callee_op):
        raw = [f for v in args for f in _c_arguments(b, v)]
        result = b.call(callee, raw)
        types = op.result_types
        return [from_c_scalar(b, result, scalar_type(types[0]))] if types else []
    result = b.call(callee, [f for v in args for f in flatten(v)])
    types = list(op.result_types)
    if not types:
        return []
    if len(types) == 1 and not isinstance(types[0], MemRefType):
        return [result]
    fields = [b.extract_value(result, i) for i in range(len(callee.function_type.return_type.elements))]
    lowered, position = [], 0
    for ty in types:
        count = len(flat_types(ty))
        lowered.append(unflatten(b, ty, fields[position : position + count]))
        position += count
    return lowered


def emit_unrealized_cast(fx: FunctionEmitter, op: UnrealizedConversionCastOp) -> list[LoweredValue]:
    """A reinterpretation between types that lower alike: `ui8` and `i8`, memrefs of them."""
    results: list[LoweredValue] = []
    for source, result in zip(op.inputs, op.outputs, strict=True):
        value, target = fx.value(source), result.type
        if isinstance(value, MemRefDescriptor) and _same_lowering(value.type, target):
            results.append(make_descriptor(fx.builder, target, value.allocated, value.aligned, value.offset,
                                           value.sizes, value.strides))  # fmt: skip
        elif not isinstance(value, MemRefDescriptor) and not isinstance(target, MemRefType) \
                and scalar_type(target) == value.type:  # fmt: skip
            results.append(value)
        else:
            raise PassError(f"backend: unsupported cast from {source.type} to {target}")
    return results


def _same_lowering(source: MemRefType, target: Attribute) -> bool:
    return (isinstance(target, MemRefType) and target.get_num_dims() == source.get_num_dims()
            and scalar_type(target.element_type) == scalar_type(source.element_type))  # fmt: skip


def _c_arguments(builder: ir.IRBuilder, value: LoweredValue) -> list[ir.Value]:
    if isinstance(value, MemRefDescriptor):
        return [value.aligned, value.offset, *value.sizes, *value.strides]
    return [to_c_scalar(builder, value)]


def register_emitters(emitters: Mapping[type[Operation], Emitter]) -> None:
    """Add emitters for ops of a level above the backend (the step's `oi.state_view`...:
    `lowering/step_llvm.py`), which the backend itself does not know."""
    EMITTERS.update(emitters)


EMITTERS: dict[type[Operation], Emitter] = {
    **ARITH_EMITTERS,
    **MATH_EMITTERS,
    **MEMREF_EMITTERS,
    **SCF_EMITTERS,
    func.CallOp: emit_call,
    UnrealizedConversionCastOp: emit_unrealized_cast,
}
