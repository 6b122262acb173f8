"""`op NAME(...) >> out`, its settings, and `transfer` (upstream `runtime/validation/{ops,attrs}.rs`).

The checks and their order are upstream's `validate_op`, `validate_attrs` and
`validate_transfer`, against the op registry (`oi_compiler.ops.registry`).
"""

from __future__ import annotations

from xdsl.dialects.builtin import (
    ArrayAttr,
    DenseArrayBase,
    FloatAttr,
    IntegerAttr,
    IntegerType,
    StringAttr,
    SymbolRefAttr,
)
from xdsl.ir import Attribute

from oi_compiler.dialects.oi import NamedOp, TransferOp
from oi_compiler.dtypes import dtype_name
from oi_compiler.ops.registry import OpSpec, SettingSpec, dtype_debug_name, lookup_op, setting_spec
from oi_compiler.verify.scope import GraphScope, fail, shape_text
from oi_compiler.verify.vars import verify_ref_indices


def verify_op(scope: GraphScope, op: NamedOp) -> None:
    name, out = op.kind, op.output_name
    spec = lookup_op(name)
    if spec is None:
        raise fail(op, f"unsupported op {name}")
    if len(op.inputs.data) != spec.arity:
        raise fail(op, f"op {name} expects {spec.arity} inputs, got {len(op.inputs.data)}")
    if not out.strip():
        raise fail(op, f"op {name} missing output")
    settings = op.settings.data
    has_acc = "acc" in settings
    if has_acc and not spec.accumulate:
        raise fail(op, f"op {name} does not support accumulation")

    for ref in op.inputs:
        if not scope.has_var(ref.var_name):
            raise fail(op, f"unknown input variable {ref.text}")
        if scope.memory(ref.var_name) == "persistent":
            raise fail(op, f"persistent cache {ref.text} must be read via cache.read")
        verify_ref_indices(scope, op, ref)
    input_dtypes = [scope.var_type(r.var_name).dtype for r in op.inputs]
    shapes = [scope.shape(r.var_name) for r in op.inputs]
    if not spec.broadcast and any(s != shapes[0] for s in shapes):
        raise fail(op, f"op {name} does not allow broadcast inputs")

    out_dtype = _output_dtype(op, spec, input_dtypes)
    memory = scope.memory(out)
    if memory == "constant":
        raise fail(op, f"cannot write to constant memory: {out}")
    if memory == "persistent":
        raise fail(op, f"persistent cache {out} must be written via cache.write")
    out_type = scope.var_type(out)
    if out_type is None:
        raise fail(op, f"unknown output variable {out}")
    if out_dtype is not None and out_type.dtype != out_dtype:
        raise fail(
            op,
            f"op {name} output dtype mismatch for {out}: "
            f"expected {dtype_debug_name(out_type.dtype)}, got {dtype_debug_name(out_dtype)}",
        )

    inplace = any(r.var_name == out and not r.indices.data for r in op.inputs)
    if inplace and not spec.inplace:
        raise fail(op, f"op {name} does not support inplace writes")
    mode = "Accumulate" if has_acc else "Inplace" if inplace else "Normal"
    if input_dtypes and out_dtype is not None and not _supports(spec, mode, input_dtypes[0], out_dtype):
        raise fail(
            op,
            f"op {name} does not support {dtype_debug_name(input_dtypes[0])} -> "
            f"{dtype_debug_name(out_dtype)} for mode {mode}",
        )
    for key, value in settings.items():
        _verify_setting(scope, op, spec, key, value)


def _output_dtype(op: NamedOp, spec: OpSpec, input_dtypes: list[str]) -> str | None:
    """The accumulator (last `acc=` dtype) or the op's type rule; an error when neither tells."""
    settings = op.settings.data
    if "acc" in settings:
        acc = settings["acc"]
        return dtype_name(acc.data[-1]) if isinstance(acc, ArrayAttr) and acc.data else None
    named = {k: dtype_name(v) or v for k, v in settings.items()}
    dtype = spec.output_dtype_for(input_dtypes, named)
    rule, arg = spec.output_dtype
    if dtype is None and rule == "from_setting" and arg not in settings:
        raise fail(op, f"op {op.kind} requires setting {arg}")
    return dtype


def _supports(spec: OpSpec, mode: str, in0: str, out: str) -> bool:
    if spec.dtypes is None:
        return True
    if mode == "Accumulate":
        return (in0, out) in spec.accumulate_pairs
    if spec.output_dtype[0] == "from_setting" and spec.output_dtypes is not None and out not in spec.output_dtypes:
        return False
    return in0 in spec.dtypes


def _verify_setting(scope: GraphScope, op: NamedOp, spec: OpSpec, key: str, value: Attribute) -> None:
    name = op.kind
    if key not in spec.settings:
        raise fail(op, f"unsupported {name} setting: {key}")
    kind = setting_spec(key)
    if kind is not None and not _value_matches(kind, value):
        raise fail(op, f"unsupported {name} setting type: {key}")
    if isinstance(value, SymbolRefAttr) and (kind is None or kind.kind == "scalar"):
        var = value.root_reference.data
        if not scope.has_var(var):
            raise fail(op, f"unknown attribute variable: {var}")
        if not scope.is_scalar(var):
            raise fail(op, f"attribute {var} must be scalar")


def _value_matches(spec: SettingSpec, value: Attribute) -> bool:
    """Whether a setting value has the setting's kind (and, for a scalar, one of its scalar kinds)."""
    if isinstance(value, SymbolRefAttr):  # a scalar constant or a metadata string, read at run time
        return spec.kind in ("scalar", "string")
    if spec.kind == "scalar":
        return _scalar_kind_matches(spec.scalar_kinds, value)
    if spec.kind == "int_list":
        return isinstance(value, DenseArrayBase)
    if spec.kind == "string":
        return isinstance(value, StringAttr)
    if spec.kind == "dtype_list":
        return isinstance(value, ArrayAttr)
    return dtype_name(value) is not None  # "dtype"


def _scalar_kind_matches(kinds: tuple[str, ...], value: Attribute) -> bool:
    allowed = set(kinds) or {"float", "int", "uint", "bool"}
    if isinstance(value, FloatAttr):
        return "float" in allowed
    if isinstance(value, IntegerAttr):
        if value.type == IntegerType(1):
            return "bool" in allowed
        return "int" in allowed or ("uint" in allowed and value.value.data >= 0)
    return False


def verify_transfer(scope: GraphScope, op: TransferOp) -> None:
    src, dst = op.src, op.dst
    if not scope.has_var(src.var_name):
        raise fail(op, f"unknown transfer source {src.text}")
    if not scope.has_var(dst.var_name):
        raise fail(op, f"unknown transfer destination {dst.text}")
    if scope.memory(dst.var_name) in ("constant", "persistent"):
        raise fail(op, f"cannot transfer into {dst.text}")
    if scope.memory(src.var_name) == "persistent":
        raise fail(op, f"persistent cache {src.text} must be read via cache.read")
    a, b = scope.var_type(src.var_name).dtype, scope.var_type(dst.var_name).dtype
    if a != b:
        raise fail(
            op, f"transfer dtype mismatch {src.text} -> {dst.text}: {dtype_debug_name(a)} vs {dtype_debug_name(b)}"
        )
    sa, sb = scope.shape(src.var_name), scope.shape(dst.var_name)
    if sa != sb:
        raise fail(op, f"transfer shape mismatch {src.text} -> {dst.text}: {shape_text(sa)} vs {shape_text(sb)}")
    verify_ref_indices(scope, op, src)
    verify_ref_indices(scope, op, dst)
