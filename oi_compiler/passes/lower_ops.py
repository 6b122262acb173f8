"""`--lower-ops`: each `oi.op` of the entry block becomes an `oi.kernel` holding its loop nest.

The kernel's block arguments are the memrefs the op reads and writes, typed by the step plan
(`lowering/plan.py`): a declared shape, or `?` for a `cache.read` destination sized at run
time (with a strided layout when it is a view of the table), then the output, then any
setting read at run time (rope's `position = pos`). The body is the registry's nest builder
output (`ops/nests/`). What the reference would reject when the node runs (an unknown op, an
output shape that differs from the result's) becomes a kernel carrying `static_error`, which
`--lower-cache` turns into that error at that point of the step. A result dim that follows a
run-time sized input (`op relu(keys) >> s` after `cache.read K[0..t] >> keys`) is checked against
the output's declared size when the node runs (`shape_checks`).

Needs bound sizes (`--bind-sizes` first).
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from typing import Any

from xdsl.builder import Builder
from xdsl.dialects.builtin import (
    DYNAMIC_INDEX,
    ArrayAttr,
    DenseArrayBase,
    FloatAttr,
    IntegerAttr,
    IntegerType,
    MemRefType,
    StringAttr,
    StridedLayoutAttr,
    SymbolRefAttr,
)
from xdsl.dialects import memref
from xdsl.ir import Attribute, Block, Region
from xdsl.passes import ModulePass
from xdsl.rewriter import InsertPoint

from oi_compiler.dialects.oi import GraphOp, NamedOp
from oi_compiler.dialects.oi_lowered import KernelOp
from oi_compiler.dtypes import dtype_name, dtype_type
from oi_compiler.errors import OiError, PassError
from oi_compiler.lowering.plan import (
    StepPlan,
    Unsupported,
    VarPlan,
    build_plan,
    escape_braces,
    statements,
    unsupported,
)
from oi_compiler.ops.registry import lookup_op
from oi_compiler.runtime.reference import SHAPE_FROM_OUTPUT
from oi_compiler.verify.scope import shape_text

#: settings that may name a scalar variable read at run time, per op
RUNTIME_SETTINGS = {("rope", "position")}
_PROBES = (1009, 2003)  # stand-ins for run-time sizes when asking a shape rule (distinct per dim)


@dataclass(frozen=True)
class LowerOps(ModulePass):
    """Lower each oi.op of the entry block to an oi.kernel holding its loop nest"""

    name = "lower-ops"

    def apply(self, ctx, module) -> None:
        for graph in [op for op in module.walk() if isinstance(op, GraphOp)]:
            plan = build_plan(graph)
            nests: dict[str, Region] = {}
            seen: set[int] = set()  # a block two branches call is walked twice
            for op, _ in list(statements(plan.entry.body.block.ops)):
                if isinstance(op, NamedOp) and id(op) not in seen:
                    seen.add(id(op))
                    kernel = lower_op(op, plan, nests)
                    kernel.location = op.location
                    kernel.attributes.update(op.attributes)
                    op.parent_block().insert_op_before(kernel, op)
                    op.detach()
                    op.erase()


def memref_type_of(var: VarPlan, plan: StepPlan) -> MemRefType:
    """The memref a variable is seen as by the ops that read it."""
    element = dtype_type(var.dtype)
    shape = [DYNAMIC_INDEX if d is None else d for d in var.shape]
    if var.kind != "view":
        return MemRefType(element, shape)
    table = plan.vars[var.table]
    entry = [d for d in table.shape]
    entry_strides, running = [], 1
    for d in reversed(entry):
        entry_strides.insert(0, running)
        running *= d
    slices = len(shape) - len(entry)
    # only the last table index keeps a static stride (one entry); earlier ones scale with capacity
    slice_strides: list[int | None] = [None] * slices
    if slices and _last_index_is_sliced(var, plan):
        slice_strides[-1] = running
    return MemRefType(element, shape, StridedLayoutAttr([*slice_strides, *entry_strides], None))


def _last_index_is_sliced(var: VarPlan, plan: StepPlan) -> bool:
    """Whether every read into `var` slices its table's last index (a stride of one entry)."""
    from oi_compiler.dialects.oi import CacheReadOp
    from oi_compiler.dialects.oi_attrs import SliceAttr

    forms = []
    for op, _ in statements(plan.entry.body.block.ops):
        if isinstance(op, CacheReadOp) and op.dst.var_name == var.name:
            given = list(op.src.indices)
            rank = plan.vars[op.src.var_name].rank
            forms.append(len(given) < rank or isinstance(given[rank - 1], SliceAttr))
    return bool(forms) and all(forms)


def lower_op(op: NamedOp, plan: StepPlan, nests: dict[str, Region] | None = None) -> KernelOp:
    """`op` as a kernel; `nests` memoises bodies by their key (same op, types and settings)."""
    spec = lookup_op(op.kind)
    if spec is None:
        return _error_kernel(op, f"unsupported op {op.kind}")
    if spec.nest_builder is None:
        raise unsupported(f"op {op.kind} (it has no loop nest)", op)
    inputs = [_input_var(ref, plan, op) for ref in op.inputs]
    out = plan.vars.get(op.output_name)
    if out is None:
        return _error_kernel(op, f"unknown output variable {op.output_name}")
    settings, runtime = _settings(op, plan)
    if op.kind in SHAPE_FROM_OUTPUT and SHAPE_FROM_OUTPUT[op.kind] not in settings:
        settings[SHAPE_FROM_OUTPUT[op.kind]] = list(out.shape)
    in_dtypes = [v.dtype for v in inputs]
    if settings.get("acc"):
        out_dtype = settings["acc"][-1]
    else:
        out_dtype = spec.output_dtype_for(in_dtypes, settings) or out.dtype
    if out_dtype != out.dtype:
        raise unsupported(f"op {op.kind} writing {out_dtype} into {out.dtype} variable {out.name}", op)
    try:
        result_shape, sources, equal = _result_shape(spec, op, inputs, settings)
    except Unsupported:
        raise
    except OiError as e:
        return _error_kernel(op, e.message)
    mismatch = f"op {op.kind} output shape {shape_text(out.shape)} does not match result shape "
    if any(r is not None and r != o for r, o in zip(result_shape, out.shape)) or len(result_shape) != len(out.shape):
        return _error_kernel(op, mismatch + shape_text(result_shape))
    checks = None
    runtime_sized = any(d is None for v in inputs for d in v.shape)
    empty = _empty_checks(spec, inputs, settings, out_dtype, equal is not None) if runtime_sized else []
    if sources or equal or empty:  # run-time sizes: checked when the node runs
        shown = iter("{%d}" % n for n in range(len(sources)))
        text = "[" + ", ".join(str(r) if r is not None else next(shown) for r in result_shape) + "]"
        checks = json.dumps({"message": escape_braces(mismatch) + text,
                             "dims": [[i, d, out.shape[o]] for o, (i, d) in sources],
                             "equal": None if equal is None else {"message": equal[0], "dims": equal[1]},
                             "empty": empty})  # fmt: skip
    in_types = [_entry_type(ref, v, plan) for ref, v in zip(op.inputs, inputs)]
    out_type = memref_type_of(out, plan)
    runtime_types = [dtype_type(plan.vars[name].dtype) for _, name in runtime]
    aliases = [i for i, ref in enumerate(op.inputs) if not ref.indices.data and ref.var_name == out.name]
    key = repr((op.kind, sorted((k, repr(v)) for k, v in settings.items()), [str(t) for t in in_types],
                str(out_type), [str(t) for t in runtime_types], aliases, in_dtypes, out_dtype))  # fmt: skip
    properties = _properties(op, [k for k, _ in runtime])
    properties["nest_key"] = StringAttr(key)
    if checks is not None:
        properties["shape_checks"] = StringAttr(checks)
    if nests is not None and key in nests:
        return KernelOp.create(properties=properties, regions=[nests[key].clone()])
    block = Block(arg_types=[*in_types, out_type, *runtime_types])
    args = list(block.args)
    in_args, out_arg, runtime_args = args[: len(inputs)], args[len(inputs)], args[len(inputs) + 1 :]
    for (setting, _), value in zip(runtime, runtime_args):
        settings[setting] = value
    b = Builder(InsertPoint.at_end(block))
    target = out_arg
    if aliases and aliases[0] == 0:
        target = in_args[0]  # the builder handles an output that is its first input
    elif aliases:
        target = b.insert(memref.AllocOp.get(out_type.element_type, shape=out_type.get_shape())).memref
    try:
        spec.nest_builder(b, in_args, target, settings, in_dtypes, out_dtype)
    except PassError as e:
        raise unsupported(f"op {op.kind} here ({e.message})", op) from None
    if target is not out_arg and target is not in_args[0]:
        b.insert(memref.CopyOp(target, out_arg))
        b.insert(memref.DeallocOp.get(target))
    region = Region(block)
    if nests is not None:
        nests[key] = region.clone()
    return KernelOp.create(properties=properties, regions=[region])


def _properties(op: NamedOp, runtime: list[str], error: str | None = None) -> dict[str, Attribute]:
    props = {
        "op_name": op.op_name,
        "inputs": op.inputs,
        "output": op.output,
        "settings": op.settings,
        "runtime_settings": ArrayAttr([StringAttr(k) for k in runtime]),
    }
    if error is not None:
        props["static_error"] = StringAttr(error)
    return props


def _error_kernel(op: NamedOp, message: str) -> KernelOp:
    return KernelOp.create(properties=_properties(op, [], message), regions=[Region(Block())])


def _input_var(ref, plan: StepPlan, op: NamedOp) -> VarPlan:
    var = plan.vars.get(ref.var_name)
    if var is None:
        raise unsupported(f"an unknown variable {ref.var_name} as an input", op)
    if ref.indices.data and var.kind != "prefix":
        raise unsupported(f"indexing {ref.var_name}, which is not a prefix table", op)
    if var.kind == "table":
        raise unsupported(f"a whole cache table ({ref.var_name}) as an op input", op)
    if var.kind == "prefix" and not ref.indices.data:
        raise unsupported(f"a whole prefix table ({ref.var_name}) as an op input", op)
    return var


def _entry_type(ref, var: VarPlan, plan: StepPlan) -> MemRefType:
    if var.kind == "prefix":
        return MemRefType(dtype_type(var.dtype), list(var.shape))
    return memref_type_of(var, plan)


def _settings(op: NamedOp, plan: StepPlan) -> tuple[dict[str, Any], list[tuple[str, str]]]:
    settings: dict[str, Any] = {}
    runtime: list[tuple[str, str]] = []
    for key, value in op.settings.data.items():
        if isinstance(value, IntegerAttr):
            data = value.value.data
            settings[key] = bool(data) if value.type == IntegerType(1) else int(data)
        elif isinstance(value, FloatAttr):
            settings[key] = float(value.value.data)
        elif isinstance(value, StringAttr):
            settings[key] = value.data
        elif isinstance(value, DenseArrayBase):
            settings[key] = [int(v) for v in value.get_values()]
        elif isinstance(value, ArrayAttr):
            settings[key] = [dtype_name(t) for t in value]
        elif isinstance(value, SymbolRefAttr):
            name = value.root_reference.data
            var = plan.vars.get(name)
            scalar = var is not None and var.kind == "buffer" and all(d == 1 for d in var.shape)
            if (op.kind, key) not in RUNTIME_SETTINGS or not scalar or var.dtype not in ("i32", "i64"):
                raise unsupported(f"setting {key}={name} read at run time by op {op.kind}", op)
            runtime.append((key, name))
        else:
            settings[key] = dtype_name(value)
    return settings, runtime


def _result_shape(spec, op: NamedOp, inputs: list[VarPlan], settings: dict[str, Any]):
    """The result's shape (None for a dim sized at run time), for each such dim the input dim it
    equals (`(output dim, (input, dim))`), and the run-time sized input dims the shape rule needs
    equal (`(message template, [(input, dim), ...])`, or None).

    Learnt by asking the shape rule with stand-ins for the run-time sizes: distinct ones first;
    if the rule refuses them (attention's keys and values must be equally long), one shared
    stand-in, and the sizes are then checked equal when the node runs, with the rule's own
    message. A result dim that follows no input dim is refused."""
    if spec.shape_rule is None:
        raise unsupported(f"op {op.kind} (no shape rule)", op)
    dynamic = [(i, d) for i, v in enumerate(inputs) for d, size in enumerate(v.shape) if size is None]
    if not dynamic:
        return tuple(spec.shape_rule([list(v.shape) for v in inputs], settings)), [], None

    def ask(probes: dict) -> tuple[int, ...]:
        shapes = [[probes[(i, d)] if s is None else s for d, s in enumerate(v.shape)] for i, v in enumerate(inputs)]
        return tuple(spec.shape_rule(shapes, settings))

    equal = None
    try:
        runs = [({pos: base + 2 * n for n, pos in enumerate(dynamic)}) for base in _PROBES]
        results = [ask(p) for p in runs]
    except OiError:
        try:
            runs = [{pos: base for pos in dynamic} for base in _PROBES]
            results = [ask(p) for p in runs]
            equal = (_equal_sizes_message(ask, dynamic), dynamic)
        except OiError:
            raise unsupported(f"op {op.kind} on these inputs sized at run time", op) from None
    (first, a), (second, b) = zip(runs, results)
    if len(a) != len(b):
        raise unsupported(f"op {op.kind} with an output rank set at run time", op)
    shape, sources = [], []
    for o, (x, y) in enumerate(zip(a, b)):
        if x == y:
            shape.append(x)
            continue
        source = next((pos for pos in dynamic if first[pos] == x and second[pos] == y), None)
        if source is None or len(sources) == 4:
            raise unsupported(f"op {op.kind} with an output sized at run time", op)
        shape.append(None)
        sources.append((o, source))
    return tuple(shape), sources, equal


def _empty_checks(spec, inputs: list[VarPlan], settings: dict[str, Any], out_dtype: str, equal: bool) -> list[dict]:
    """Run-time sized input dims the op refuses at 0 (a reduction over an empty axis, attention
    over no keys, an integer mean): `{"dim": [input, dim], "message": template, "args": [...]}`.
    Asks the shape rule, then the numpy reference on empty arrays. When the rule needs the
    run-time sizes equal, they are all 0 together."""
    dynamic = [(i, d) for i, v in enumerate(inputs) for d, size in enumerate(v.shape) if size is None]
    checks = []
    for pos in dynamic[:1] if equal else dynamic:
        others = [] if equal else [p for p in dynamic if p != pos][:4]
        zero = dynamic if equal else [pos]
        message = _refusal(spec, inputs, settings, out_dtype, zero, others)
        if message is not None:
            checks.append({"dim": list(pos), "message": message, "args": [list(p) for p in others]})
    return checks


_STAND_INS = (1000003, 1000033, 1000037, 1000039)  # other run-time sizes, for the shape rule
_SMALL_STAND_INS = (101, 103, 107, 109)  # the same for the reference, which allocates them


def _refusal(spec, inputs: list[VarPlan], settings: dict[str, Any], out_dtype: str, zero: list, others: list):
    """The op's error for inputs whose `zero` dims are 0, as a template whose `{n}` is the size
    of `others[n]`; None when the op runs. Asks the shape rule, then the numpy reference."""

    def shapes(stand_ins) -> list[list[int]]:
        probes = {p: 0 for p in zero} | {p: stand_ins[n] for n, p in enumerate(others)}
        return [[probes.get((i, d), s) if s is None else s for d, s in enumerate(v.shape)] for i, v in enumerate(inputs)]

    def template(message: str, stand_ins) -> str:
        text = escape_braces(message)
        for n in range(len(others)):
            text = re.sub(rf"\b{stand_ins[n]}\b", "{%d}" % n, text)
        return text

    try:
        spec.shape_rule(shapes(_STAND_INS), settings)
    except OiError as e:
        return template(e.message, _STAND_INS)
    if spec.reference is None:
        return None
    import numpy as np

    from oi_compiler.dtypes import numpy_dtype

    small = shapes(_SMALL_STAND_INS)  # the empty array decides; the others stay small
    if sum(math.prod(shape) for shape in small) > 1 << 20:
        return None  # not worth allocating stand-ins of large weights at compile time
    try:
        spec.reference([np.zeros(s, numpy_dtype(v.dtype)) for s, v in zip(small, inputs)], settings, out_dtype)
    except OiError as e:
        return template(e.message, _SMALL_STAND_INS)
    except Exception:  # noqa: BLE001 - a reference that cannot run on stand-ins decides nothing
        return None
    return None




def _equal_sizes_message(ask, dynamic) -> str:
    """The rule's message when the first run-time size is {0} and another {1}."""
    try:
        ask({pos: _STAND_INS[min(n, 1)] for n, pos in enumerate(dynamic)})
    except OiError as e:
        return escape_braces(e.message).replace(str(_STAND_INS[0]), "{0}").replace(str(_STAND_INS[1]), "{1}")
    raise AssertionError("a shape rule that refuses distinct sizes refused equal ones")

