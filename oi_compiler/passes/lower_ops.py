"""`--lower-ops`: each `oi.op` of the entry block becomes an `oi.kernel` holding its loop nest.

The kernel's block arguments are the memrefs the op reads and writes, typed by the step plan
(`lowering/analysis.py`): a declared shape, or `?` for a `cache.read` destination sized at run
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
from contextvars import ContextVar
from dataclasses import dataclass, replace
from typing import Any

from xdsl.builder import Builder
from xdsl.dialects.builtin import (
    ArrayAttr,
    DenseArrayBase,
    DictionaryAttr,
    Float64Type,
    FloatAttr,
    IntegerAttr,
    IntegerType,
    MemRefType,
    StringAttr,
    SymbolRefAttr,
)
from xdsl.dialects import memref
from xdsl.ir import Attribute, Block, Region
from xdsl.passes import ModulePass
from xdsl.rewriter import InsertPoint

from oi_compiler.dialects.oi import GraphOp, NamedOp
from oi_compiler.dialects.oi_lowered import GPU_OP_ATTR, KernelOp
from oi_compiler.dtypes import FLOAT_DTYPES, PACKED_DTYPES, dtype_name, dtype_type
from oi_compiler.errors import ExecutionError, OiError, PassError
from oi_compiler.ir_context import nearest_loc
from oi_compiler.lowering.analysis import (
    StepAnalysis,
    Unsupported,
    VarLayout,
    analyze_step,
    escape_braces,
    memref_type_of,
    statements,
    unsupported,
)
from oi_compiler.ops.registry import lookup_op, setting_spec
from oi_compiler.ops.reference.settings import SHAPE_FROM_OUTPUT
from oi_compiler.verify.scope import shape_text

#: settings that may name a scalar variable read at run time, per op: rope's position (an integer),
#: and numbers the float nests take as an f64 value (`ops/nests/scalar.float_setting`)
RUNTIME_SETTINGS = {("rope", "position")}
#: bool settings that may name a bool or integer variable: the op is lowered for each truth value
#: and runs the one the variable's value picks (`read_bool`: integers count as `!= 0`)
RUNTIME_BOOLS = frozenset({"keepdims", "select_first", "causal", "saturate"})
#: integer settings with few valid values that may name an integer variable: the op is lowered for
#: each (an axis: -rank..rank-1) and any other value is the reference's error, the value shown
RUNTIME_CHOICES = frozenset({"axis"})
_STAND_IN_VALUE = 1000003
RUNTIME_NUMBERS = {("clamp", "min"), ("clamp", "max"), ("relu", "alpha"), ("relu", "clamp_max"), ("fill", "value"),
                   ("rms_norm", "eps"), ("layer_norm", "eps"), ("rope", "theta"), ("attention", "scale"),
                   ("div", "div_by_zero_mask"), ("floor_div", "div_by_zero_mask"), ("recip", "div_by_zero_mask")}  # fmt: skip
F64, I64 = Float64Type(), IntegerType(64)
_device: ContextVar[str] = ContextVar("lower_ops_device", default="cpu")
_PROBES = (1009, 2003)  # stand-ins for run-time sizes when asking a shape rule (distinct per dim)


@dataclass(frozen=True)
class LowerOps(ModulePass):
    """Lower each oi.op of the entry block to an oi.kernel holding its loop nest"""

    name = "lower-ops"

    #: "cpu", or "cuda": each kernel also carries `oi.gpu_op` (the op, its settings known when
    #: lowering, the names and types of those read at run time, the dtypes), so that the cuda
    #: pipeline can launch the op's GPU kernels in place of the nest (`--launch-op-kernels`)
    device: str = "cpu"

    def apply(self, ctx, module) -> None:
        if self.device not in ("cpu", "cuda"):
            raise PassError(f"--lower-ops: device must be cpu or cuda, got {self.device!r}")
        token = _device.set(self.device)
        try:
            self._apply(module)
        finally:
            _device.reset(token)

    def _apply(self, module) -> None:
        for graph in [op for op in module.walk() if isinstance(op, GraphOp)]:
            plan = analyze_step(graph)
            nests: dict[str, Region] = {}
            seen: set[int] = set()  # a block two branches call is walked twice
            bodies = [(plan, plan.entry.body.block.ops)]  # an async block sees its own copies (plan.ForkAnalysis)
            bodies += [(replace(plan, vars={**plan.vars, **f.vars}), f.block.body.block.ops) for f in plan.forks]
            for view, op in [(view, op) for view, ops in bodies for op, _ in list(statements(ops))]:
                if isinstance(op, NamedOp) and id(op) not in seen:
                    seen.add(id(op))
                    kernels = lower_op(op, view, nests)
                    for kernel in kernels if isinstance(kernels, list) else [kernels]:
                        kernel.location = op.location
                        kernel.attributes.update(op.attributes)
                        op.parent_block().insert_op_before(kernel, op)
                    op.detach()
                    op.erase()


def lower_op(op: NamedOp, plan: StepAnalysis, nests: dict[str, Region] | None = None) -> KernelOp | list[KernelOp]:
    """`op` as a kernel (or kernels, one per input sizes it may run with: `_specialized_kernels`);
    `nests` memoises bodies by their key (same op, types and settings)."""
    spec = lookup_op(op.kind)
    if spec is None:
        return _error_kernel(op, f"unsupported op {op.kind}")
    picked = _bool_setting_variants(op, plan, nests)
    if picked is None:
        picked = _choice_setting_variants(op, plan, nests)
    if picked is not None:
        return picked
    if spec.nest_builder is None:
        raise unsupported(f"op {op.kind} (it has no loop nest)", op)
    inputs = [_input_var(ref, plan, op) for ref in op.inputs]
    out = plan.vars.get(op.output_name)
    if out is None:
        return _error_kernel(op, f"unknown output variable {op.output_name}")
    try:
        settings, runtime = _settings(op, plan)
    except Unsupported:
        raise
    except OiError as e:
        return _error_kernel(op, e.message)
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
    except _ProbesRefused:
        kernels = _specialized_kernels(op, spec, plan, inputs, out, settings, out_dtype, runtime, nests)
        if kernels is None:
            raise
        return kernels
    except Unsupported:
        raise
    except OiError as e:
        return _error_kernel(op, e.message)
    if any(d is None for d in out.shape):  # an @auto_dim read destination: its size is its current one
        return _resized_output_kernel(op, spec, plan, inputs, out, settings, out_dtype, result_shape, sources,
                                      equal, runtime, nests)  # fmt: skip
    mismatch = f"op {op.kind} output shape {shape_text(out.shape)} does not match result shape "
    wrong = any(r is not None and r != o for r, o in zip(result_shape, out.shape)) or len(result_shape) != len(out.shape)
    if wrong and not sources:
        return _error_kernel(op, mismatch + shape_text(result_shape))
    checks = None
    runtime_sized = any(d is None for v in inputs for d in v.shape)
    empty = _empty_checks(spec, inputs, settings, out_dtype, equal is not None) if runtime_sized else []
    if sources or equal or empty:  # run-time sizes: checked when the node runs
        shown = iter("{%d}" % n for n in range(len(sources)))
        text = "[" + ", ".join(str(r) if r is not None else next(shown) for r in result_shape) + "]"
        checks = json.dumps({"message": escape_braces(mismatch) + text,
                             "dims": [[*_size_ref(source), -1 if wrong else out.shape[o]] for o, source in sources],
                             "equal": None if equal is None else {"message": equal[0], "dims": equal[1]},
                             "empty": empty, "always": wrong})  # fmt: skip
    if wrong:  # the result can never fit the output: the reference's error, with the run-time sizes
        properties = _properties(op, [])
        properties["shape_checks"] = StringAttr(checks)
        return KernelOp.create(properties=properties, regions=[Region(Block())])
    return _nest_kernel(op, spec, plan, inputs, out, settings, out_dtype, runtime, checks, nests)


def _size_ref(source) -> list:
    """A run-time result size for `shape_checks`: [input, dim], or ["linear", const, [[input, dim, coeff]...]]."""
    return list(source) if source[0] == "linear" else [*source]


def _bool_setting_variants(op: NamedOp, plan: StepAnalysis, nests) -> list[KernelOp] | None:
    """`op argmax_axis(x, axis=0, keepdims=k)`: lowered with `keepdims` true and false, each kernel
    run when `k`'s value (a bool or integer scalar) is that truth value (`shape_checks` "if_var")."""
    for key, value in op.settings.data.items():
        if key not in RUNTIME_BOOLS or not isinstance(value, SymbolRefAttr):
            continue
        name = value.root_reference.data
        var = plan.vars.get(name)
        if var is None or var.kind != "buffer" or any(d != 1 for d in var.shape) \
                or var.dtype in FLOAT_DTYPES or var.dtype in PACKED_DTYPES:  # fmt: skip
            return None  # `_settings` gives the reference's error, or refuses it
        kernels = []
        for truth in (True, False):
            variant = op.clone()
            variant.settings = DictionaryAttr({**op.settings.data, key: IntegerAttr(int(truth), IntegerType(1))})
            lowered = lower_op(variant, plan, nests)
            for kernel in lowered if isinstance(lowered, list) else [lowered]:
                checks = json.loads(kernel.shape_checks.data) if kernel.shape_checks is not None else {}
                checks.setdefault("if_vars", []).insert(0, [name, truth])
                kernel.shape_checks = StringAttr(json.dumps(checks))
                kernels.append(kernel)
        return kernels
    return None


def _choice_setting_variants(op: NamedOp, plan: StepAnalysis, nests) -> list[KernelOp] | None:
    """`op softmax(x, axis=a)`: lowered for each axis the inputs have, each kernel run when `a` holds
    that value (`shape_checks` "if_vals"); any other value fails with the message the op gives for it."""
    for key, value in op.settings.data.items():
        if key not in RUNTIME_CHOICES or not isinstance(value, SymbolRefAttr):
            continue
        name = value.root_reference.data
        var = plan.vars.get(name)
        if var is None or var.kind != "buffer" or any(d != 1 for d in var.shape) \
                or var.dtype in FLOAT_DTYPES or var.dtype in PACKED_DTYPES:  # fmt: skip
            return None
        ranks = [len(plan.vars[r.var_name].shape) for r in op.inputs if r.var_name in plan.vars]
        rank = max(ranks, default=0)

        def variant(number: int):
            copy = op.clone()
            copy.settings = DictionaryAttr({**op.settings.data, key: IntegerAttr(number, IntegerType(64))})
            lowered = lower_op(copy, plan, nests)
            return lowered if isinstance(lowered, list) else [lowered]

        other = variant(_STAND_IN_VALUE)
        if len(other) != 1 or other[0].static_error is None or str(_STAND_IN_VALUE) not in other[0].static_error.data:
            return None  # other values do not simply fail
        template = escape_braces(other[0].static_error.data).replace(str(_STAND_IN_VALUE), "{0}")
        kernels, values = [], list(range(-rank, rank))
        for number in values:
            for kernel in variant(number):
                checks = json.loads(kernel.shape_checks.data) if kernel.shape_checks is not None else {}
                checks.setdefault("if_vars", []).insert(0, [name, "eq", number])
                kernel.shape_checks = StringAttr(json.dumps(checks))
                kernels.append(kernel)
        rest = KernelOp.create(properties=_properties(op, []), regions=[Region(Block())])
        rest.shape_checks = StringAttr(json.dumps({"unless_var": {"var": name, "values": values, "message": template}}))
        return [*kernels, rest]
    return None


def _resized_output_kernel(op, spec, plan, inputs, out, settings, out_dtype, result_shape, sources, equal, runtime,
                           nests) -> KernelOp:  # fmt: skip
    """An output sized at run time (the reference compares the result with the output's current
    shape): every dim of either side that is known only at run time is compared when the node runs."""
    if len(result_shape) != len(out.shape) or any(s[0] == "linear" for _, s in sources):
        raise unsupported(f"op {op.kind} with a result of another rank or size than {out.name}, sized at run time", op)
    source_of = dict(sources)
    args, compare = [], []
    out_text, result_text = [], []
    for o, size in enumerate(out.shape):
        if size is None:
            out_text.append("{%d}" % len(args))
            args.append(["out", o])
    for o, size in enumerate(result_shape):
        if size is None:
            result_text.append("{%d}" % len(args))
            args.append(["in", *source_of[o]])
        else:
            result_text.append(str(size))
    if len(args) > 4:
        raise unsupported(f"op {op.kind} with more than four sizes known at run time", op)
    out_iter = iter(out_text)
    shown_out = [str(d) if d is not None else next(out_iter) for d in out.shape]
    for o, (r, d) in enumerate(zip(result_shape, out.shape)):
        left = ["in", *source_of[o]] if r is None else ["const", r]
        right = ["out", o] if d is None else ["const", d]
        compare.append([left, right])
    message = (escape_braces(f"op {op.kind} output shape ") + "[" + ", ".join(shown_out) + "]"
               + " does not match result shape [" + ", ".join(result_text) + "]")  # fmt: skip
    runtime_sized = any(d is None for v in inputs for d in v.shape)
    empty = _empty_checks(spec, inputs, settings, out_dtype, equal is not None) if runtime_sized else []
    checks = json.dumps({"message": message, "dims": [], "empty": empty,
                         "equal": None if equal is None else {"message": equal[0], "dims": equal[1]},
                         "output": {"args": args, "compare": compare}})  # fmt: skip
    return _nest_kernel(op, spec, plan, inputs, out, settings, out_dtype, runtime, checks, nests)


def _nest_kernel(op, spec, plan, inputs, out, settings, out_dtype, runtime, checks, nests) -> KernelOp:
    in_dtypes = [v.dtype for v in inputs]
    in_types = [_entry_type(ref, v, plan) for ref, v in zip(op.inputs, inputs)]
    out_type = memref_type_of(out, plan)
    numbers = [(key, name) for key, name in runtime if (op.kind, key) in RUNTIME_NUMBERS]
    floats = all(d in FLOAT_DTYPES for d in [*in_dtypes, out_dtype])
    domain = out_dtype if op.kind == "fill" else (in_dtypes or [out_dtype])[0]  # whose range the reference checks
    if numbers and not floats and (any(d in FLOAT_DTYPES or d in PACKED_DTYPES for d in [*in_dtypes, out_dtype])
                                   or any(plan.vars[name].dtype in FLOAT_DTYPES for _, name in numbers)):
        raise unsupported(f"op {op.kind} with a setting read at run time on these dtypes", op)
    runtime_types = [(F64 if floats else I64) if (op.kind, key) in RUNTIME_NUMBERS
                     else dtype_type(plan.vars[name].dtype) for key, name in runtime]  # fmt: skip
    if numbers and not floats and domain.startswith("u") and op.kind in ("fill", "clamp", "div", "floor_div", "recip"):
        # the reference refuses a negative value for an unsigned dtype, when the node runs
        negative = [[n, f"op {op.kind} {key} must be non-negative for unsigned dtype"] for n, (key, name) in enumerate(runtime)
                    if (op.kind, key) in RUNTIME_NUMBERS and not plan.vars[name].dtype.startswith("u")
                    and plan.vars[name].dtype != "bool"]  # fmt: skip
        if negative:
            extra = json.loads(checks) if checks is not None else {}
            extra["negative"] = negative
            checks = json.dumps(extra)
    aliases = [i for i, ref in enumerate(op.inputs) if not ref.indices.data and ref.var_name == out.name]
    if not aliases and any(ref.var_name in out.aliases for ref in op.inputs):
        aliases = [-1]  # a `transfer` may have made an input and the output one buffer: via a temporary
    key = repr((op.kind, sorted((k, repr(v)) for k, v in settings.items()), [str(t) for t in in_types],
                str(out_type), [(k, str(t)) for (k, _), t in zip(runtime, runtime_types)], aliases, in_dtypes,
                out_dtype))  # fmt: skip  # a setting read at run time is keyed by its name too
    properties = _properties(op, [k for k, _ in runtime])
    properties["nest_key"] = StringAttr(key)
    if checks is not None:
        properties["shape_checks"] = StringAttr(checks)
    attributes = {}
    if _device.get() == "cuda":  # before the run-time settings become block arguments below
        attributes[GPU_OP_ATTR] = StringAttr(json.dumps({
            "op": op.kind, "settings": settings, "in_dtypes": in_dtypes, "out_dtype": out_dtype,
            "runtime": [[k, "f64" if t == F64 else "i64" if t == I64 else dtype_name(t)]
                        for (k, _), t in zip(runtime, runtime_types)]}))  # fmt: skip
    if nests is not None and key in nests:
        return KernelOp.create(properties=properties, attributes=attributes, regions=[nests[key].clone()])
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
        if any(d is None for d in out.shape):
            raise unsupported(f"op {op.kind} reading {out.name}, sized at run time, into a temporary", op)
        target = b.insert(memref.AllocOp.get(out_type.element_type, shape=out_type.get_shape())).memref
    try:
        spec.nest_builder(b, in_args, target, settings, in_dtypes, out_dtype)
    except ValueError as e:  # the reference's `convert` refuses the same result when the op runs
        if "need an explicit rounding" not in str(e):
            raise
        return _error_kernel(op, f"op {op.kind} failed: {e}")
    except PassError as e:
        if isinstance(e.__cause__, ExecutionError):  # a bad setting: the reference's error when the node runs
            return _error_kernel(op, e.message)
        raise unsupported(f"op {op.kind} here ({e.message})", op) from None
    if target is not out_arg and target is not in_args[0]:
        b.insert(memref.CopyOp(target, out_arg))
        b.insert(memref.DeallocOp.get(target))
    region = Region(block)
    if nests is not None:
        nests[key] = region.clone()
    return KernelOp.create(properties=properties, attributes=attributes, regions=[region])


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


def _input_var(ref, plan: StepAnalysis, op: NamedOp) -> VarLayout:
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


def _entry_type(ref, var: VarLayout, plan: StepAnalysis) -> MemRefType:
    if var.kind == "prefix":
        return MemRefType(dtype_type(var.dtype), list(var.shape))
    return memref_type_of(var, plan)


def _settings(op: NamedOp, plan: StepAnalysis) -> tuple[dict[str, Any], list[tuple[str, str]]]:
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
        elif isinstance(value, SymbolRefAttr):  # model metadata strings are substituted before (native_step)
            name = value.root_reference.data
            var = plan.vars.get(name)
            if var is None:  # the reference's errors when the node runs
                spec = setting_spec(key)
                if spec is not None and spec.kind == "string":
                    raise ExecutionError(f"unknown attribute string: {name}")
                raise ExecutionError(f"unknown variable: {name}")
            if var.kind == "buffer" and any(d != 1 for d in var.shape):
                raise ExecutionError(f"attr {name} must reference a scalar, got shape {shape_text(var.shape)}")
            scalar = var.kind == "buffer" and var.dtype not in PACKED_DTYPES
            if (op.kind, key) in RUNTIME_SETTINGS and scalar and var.dtype in ("i32", "i64"):
                runtime.append((key, name))
            elif (op.kind, key) in RUNTIME_NUMBERS and scalar:
                runtime.append((key, name))
            else:
                raise unsupported(f"setting {key}={name} read at run time by op {op.kind}", op)
        else:
            settings[key] = dtype_name(value)
    return settings, runtime


def _result_shape(spec, op: NamedOp, inputs: list[VarLayout], settings: dict[str, Any]):
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

    # one variable read twice (`add(k, k)`) has one size per dim: the same stand-in
    keys = list(dict.fromkeys((inputs[i].name, d) for i, d in dynamic))
    distinct = {pos: keys.index((inputs[pos[0]].name, pos[1])) for pos in dynamic}
    equal = None
    try:
        runs = [({pos: base + 2 * distinct[pos] for pos in dynamic}) for base in _PROBES]
        results = [ask(p) for p in runs]
    except OiError:
        try:
            runs = [{pos: base for pos in dynamic} for base in _PROBES]
            results = [ask(p) for p in runs]
            equal = (_equal_sizes_message(ask, dynamic), dynamic)
        except OiError:
            raise _ProbesRefused(unsupported(f"op {op.kind} on these inputs sized at run time", op).message,
                                 nearest_loc(op)) from None  # fmt: skip
    (first, a), (second, b) = zip(runs, results)
    if len(a) != len(b):
        raise unsupported(f"op {op.kind} with an output rank set at run time", op)
    shape, sources = [], []
    for o, (x, y) in enumerate(zip(a, b)):
        if x == y:
            shape.append(x)
            continue
        source = next((pos for pos in dynamic if first[pos] == x and second[pos] == y), None)
        if source is None and equal is None:  # `concat(k, k)`: a sum of run-time sizes, scaled
            source = _linear_size(ask, o, first, second, y, dynamic, [inputs[i].name for i, _ in dynamic])
        if source is None or len(sources) == 4:
            raise unsupported(f"op {op.kind} with an output sized at run time", op)
        shape.append(None)
        sources.append((o, source))
    return tuple(shape), sources, equal


def _linear_size(ask, o: int, first: dict, second: dict, y: int, dynamic: list, names: list[str]):
    """Result dim `o` as `const + sum(coeff * run-time size)` (one term per variable's dim), fitted
    on the first probes and checked on the second: `("linear", const, [[input, dim, coeff]...])`."""
    groups: dict[tuple, list] = {}
    for pos, name in zip(dynamic, names):
        groups.setdefault((name, pos[1]), []).append(pos)
    base = ask(first)[o]
    terms, const = [], base
    for positions in groups.values():
        moved = {**first, **{pos: first[pos] + 7 for pos in positions}}
        try:
            step = ask(moved)[o] - base
        except OiError:
            return None
        if step % 7:
            return None
        if step:
            terms.append([*positions[0], step // 7])
            const -= step // 7 * first[positions[0]]
    if const + sum(c * second[(i, d)] for i, d, c in terms) != y:
        return None
    return ("linear", const, terms)


class _ProbesRefused(Unsupported):
    """The shape rule refuses every stand-in size: the run-time sizes must equal some static ones."""


_MAX_CASES = 16


def _specialized_kernels(op, spec, plan, inputs, out, settings, out_dtype, runtime, nests) -> list[KernelOp] | None:
    """Inputs sized at run time whose sizes the shape rule ties to static ones (`matmul(w, keys)`
    contracts keys' rows with w's columns; `add(keys, c)` broadcasts against c): one kernel per
    size the rule accepts among 0, 1 and the sizes it can meet (each with static input types and
    run only when the sizes match), or the reference's error for those sizes; any other size is
    the rule's error, its sizes shown. None when that does not describe the op."""
    if any(d is None for d in out.shape):
        return None
    groups = list(dict.fromkeys((v.name, d) for v in inputs for d, s in enumerate(v.shape) if s is None))
    dims = [[next(i for i, v in enumerate(inputs) if v.name == name), d] for name, d in groups]
    if len(groups) > 4:
        return None
    candidates = sorted({0, 1, *(s for v in inputs for s in v.shape if s is not None), *out.shape})
    cases = [()]
    for _ in groups:
        cases = [(*c, x) for c in cases for x in candidates]
        if len(cases) > _MAX_CASES:
            return None

    def shapes(values) -> list[list[int]]:
        size = dict(zip(groups, values))
        return [[size[(v.name, d)] if s is None else s for d, s in enumerate(v.shape)] for v in inputs]

    def refusal(values) -> str | None:
        try:
            result = tuple(spec.shape_rule(shapes(values), settings))
        except OiError as e:
            return e.message
        if result != tuple(out.shape):
            return f"op {op.kind} output shape {shape_text(out.shape)} does not match result shape {shape_text(result)}"
        if spec.reference is not None and sum(math.prod(s) for s in shapes(values)) <= 1 << 16:
            import numpy as np

            from oi_compiler.dtypes import numpy_dtype

            try:
                spec.reference([np.zeros(s, numpy_dtype(v.dtype)) for s, v in zip(shapes(values), inputs)], settings,
                               out_dtype)  # fmt: skip
            except OiError as e:
                return e.message
            except Exception:  # noqa: BLE001 - a reference that cannot run on zeros decides nothing
                pass
        return None

    templates = []
    for stand_ins in (_STAND_INS, (1000081, 1000099, 1000117, 1000121)):
        message = refusal(stand_ins[: len(groups)])
        if message is None:
            return None  # other sizes run: not a size tied to static ones
        text = escape_braces(message)
        for n in range(len(groups)):
            text = re.sub(rf"\b{stand_ins[n]}\b", "{%d}" % n, text)
        templates.append(text)
    if templates[0] != templates[1]:
        return None
    kernels = []
    for values in cases:
        when = json.dumps({"when": {"dims": dims, "values": list(values)}})
        message = refusal(values)
        if message is not None:
            kernel = _error_kernel(op, message)
            kernel.shape_checks = StringAttr(when)
        else:
            static = [replace(v, shape=tuple(s)) for v, s in zip(inputs, shapes(values))]
            kernel = _nest_kernel(op, spec, plan, static, out, dict(settings), out_dtype, runtime, when, nests)
        kernels.append(kernel)
    other = KernelOp.create(properties=_properties(op, []), regions=[Region(Block())])
    other.shape_checks = StringAttr(json.dumps({"unless": {"dims": dims, "values": [list(c) for c in cases]},
                                                "message": templates[0]}))  # fmt: skip
    return [*kernels, other]


def _empty_checks(spec, inputs: list[VarLayout], settings: dict[str, Any], out_dtype: str, equal: bool) -> list[dict]:
    """Run-time sized input dims the op refuses at 0 (a reduction over an empty axis, attention
    over no keys, an integer mean): `{"dim": [input, dim], "message": template, "args": [...]}`.
    Asks the shape rule, then the numpy reference on empty arrays. When the rule needs the
    run-time sizes equal, they are all 0 together."""
    dynamic = [(i, d) for i, v in enumerate(inputs) for d, size in enumerate(v.shape) if size is None]
    checks = []
    same = {pos: [p for p in dynamic if (inputs[p[0]].name, p[1]) == (inputs[pos[0]].name, pos[1])] for pos in dynamic}
    firsts = [pos for pos in dynamic if same[pos][0] == pos]  # one variable read twice: one size per dim
    for pos in dynamic[:1] if equal else firsts:
        others = [] if equal else [p for p in firsts if p != pos][:4]
        zero = dynamic if equal else same[pos]
        message = _refusal(spec, inputs, settings, out_dtype, zero, others)
        if message is not None:
            checks.append({"dim": list(pos), "message": message, "args": [list(p) for p in others]})
    return checks


_STAND_INS = (1000003, 1000033, 1000037, 1000039)  # other run-time sizes, for the shape rule
_SMALL_STAND_INS = (101, 103, 107, 109)  # the same for the reference, which allocates them


def _refusal(spec, inputs: list[VarLayout], settings: dict[str, Any], out_dtype: str, zero: list, others: list):
    """The op's error for inputs whose `zero` dims are 0, as a template whose `{n}` is the size
    of `others[n]`; None when the op runs. Asks the shape rule, then the numpy reference."""

    def shapes(stand_ins) -> list[list[int]]:
        key = lambda p: (inputs[p[0]].name, p[1])  # noqa: E731 - one variable read twice: one size per dim
        probes = {key(p): 0 for p in zero} | {key(p): stand_ins[n] for n, p in enumerate(others)}
        return [[probes.get((v.name, d), s) if s is None else s for d, s in enumerate(v.shape)] for v in inputs]

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

