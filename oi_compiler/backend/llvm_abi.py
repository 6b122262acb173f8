"""The C ABI of exported functions as data, for the translator and for the JIT's callers.

`llvm.py`'s docstring states the convention; here each exported function's parameters are
described (element type, static shape, layout, whether the function may write through a memref
argument) so that a caller can check and marshal its arguments without reading the IR.
"""

from __future__ import annotations

from dataclasses import dataclass

from xdsl.dialects import func, memref
from xdsl.dialects.builtin import MemRefType, ModuleOp, StridedLayoutAttr
from xdsl.ir import Attribute, SSAValue

from oi_compiler.backend.llvm_memref import VIEW_OPS, check_memref_type, is_identity_layout, static_dims
from oi_compiler.backend.llvm_types import scalar_type
from oi_compiler.errors import PassError


MAY_ALIAS_ATTR = "oi.may_alias"  # a function's memref arguments (positions) that are not `noalias`


@dataclass(frozen=True)
class ScalarParam:
    """A scalar argument or result; `element` is the builtin type's name (`i32`, `bf16`, `index`)."""

    name: str
    element: str


@dataclass(frozen=True)
class MemRefParam:
    """A memref argument: what the caller's buffer must look like, and whether it is written."""

    name: str
    element: str
    shape: tuple[int | None, ...]  # None: dynamic
    strides: tuple[int | None, ...] | None  # None: identity layout (row-major contiguous)
    offset: int | None  # static offset of a strided layout, None when dynamic
    written: bool  # stored to, copied into, freed, or passed on where the backend cannot see
    may_alias: bool = False  # not `noalias` (the function's `oi.may_alias`): may share memory with the other such

    @property
    def rank(self) -> int:
        return len(self.shape)


@dataclass(frozen=True)
class FunctionAbi:
    """An exported function's parameters and result, in the order the C ABI takes them."""

    name: str
    params: tuple[MemRefParam | ScalarParam, ...]
    result: ScalarParam | None


def is_exported(op: func.FuncOp) -> bool:
    """Defined and not private: the function gets external linkage and the C ABI."""
    visibility = op.sym_visibility.data if op.sym_visibility is not None else "public"
    return visibility != "private" and not op.is_declaration


def function_abi(op: func.FuncOp) -> FunctionAbi:
    """The C ABI of an exported function; PassError when it returns more than one scalar."""
    name = op.sym_name.data
    outputs = op.function_type.outputs.data
    if len(outputs) > 1 or any(isinstance(t, MemRefType) for t in outputs):
        raise PassError(f"backend: exported function @{name} may return at most one scalar")
    written = written_memref_args(op)
    may_alias = op.attributes.get(MAY_ALIAS_ATTR)
    aliasing = {a.data for a in may_alias.data} if may_alias is not None else set()
    params = tuple(_param(arg.name_hint or f"arg{i}", arg.type, i in written, i in aliasing)
                   for i, arg in enumerate(op.body.block.args))  # fmt: skip
    result = ScalarParam("result", _scalar_name(outputs[0])) if outputs else None
    return FunctionAbi(name, params, result)


def exported_functions(module: ModuleOp) -> dict[str, FunctionAbi]:
    return {op.sym_name.data: function_abi(op) for op in module.ops
            if isinstance(op, func.FuncOp) and is_exported(op)}  # fmt: skip


def _scalar_name(ty: Attribute) -> str:
    scalar_type(ty)  # PassError when not a supported scalar
    return str(ty)


def _param(name: str, ty: Attribute, written: bool, may_alias: bool) -> MemRefParam | ScalarParam:
    if not isinstance(ty, MemRefType):
        return ScalarParam(name, _scalar_name(ty))
    check_memref_type(ty)
    element, shape = _scalar_name(ty.element_type), tuple(static_dims(ty.get_shape()))
    if is_identity_layout(ty):
        return MemRefParam(name, element, shape, None, 0, written, may_alias)
    layout = ty.layout
    assert isinstance(layout, StridedLayoutAttr)
    return MemRefParam(name, element, shape, tuple(layout.get_strides()), layout.get_offset(), written, may_alias)


_READS = (memref.LoadOp, memref.DimOp)


def written_memref_args(op: func.FuncOp) -> set[int]:
    """Indices of the memref arguments the function may write through (conservatively)."""
    return {arg.index for arg in op.body.block.args
            if isinstance(arg.type, MemRefType) and _may_write(arg)}  # fmt: skip


def _may_write(value: SSAValue) -> bool:
    for use in value.uses:
        user = use.operation
        if isinstance(user, _READS):
            continue
        if isinstance(user, memref.CopyOp) and use.index == 0:
            continue
        if isinstance(user, VIEW_OPS) and use.index == 0:
            if _may_write(user.results[0]):
                return True
            continue
        return True
    return False

