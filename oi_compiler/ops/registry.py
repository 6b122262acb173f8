"""The op registry: one `OpSpec` entry per op the OpenInfer DSL knows.

An entry says what an `op NAME(inputs, settings) >> output` node may look like:
how many inputs it takes (`arity`), which settings it accepts (`settings`; each
setting's value kind is the global `SettingSpec` table, see `setting_spec`),
whether inputs may broadcast, whether the output may alias an input
(`inplace`), whether it has an accumulate mode (`acc=[...]`), how its output
dtype follows from its inputs (`output_dtype`), and which input dtypes it
supports (`dtypes`; `accumulate_pairs` for accumulate mode). Built-in ops also
carry `shape_rule(input_shapes, settings)`, the numpy
`reference(inputs, settings, out_dtype)` (contract in
`oi_compiler.ops.reference`) and the loop-nest builder
`nest_builder(b, inputs, output, settings, in_dtypes, out_dtype)` that emits the
op as `linalg.generic` nests on memrefs (contract in `oi_compiler.ops.nests`).

The 47 upstream ops load lazily, on first use, from `openinfer_ops.json` next to
this file (a trimmed copy of upstream OpenInfer's `ops.json`), followed by the
decoder ops of `oi_compiler.ops.decoder_ops` (softmax, rms_norm, rope,
attention, ...). Importing this module, `lookup_op` and `all_ops` stay cheap:
references, shape rules and nest builders import their modules (numpy, xDSL) on first call.

A user adds a custom op from Python before compiling a program that uses it::

    from oi_compiler.ops import OpSpec, SettingSpec, register_op, register_setting

    register_setting(SettingSpec("eps", "scalar", ("float",)))
    register_op(
        OpSpec(
            name="softsign",
            arity=1,
            settings=("eps",),
            output_dtype=("same_as_input", 0),
            dtypes=frozenset({"f16", "f32"}),
        )
    )

Registering a name twice raises `VerifyError` unless `replace=True` is passed.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from oi_compiler.errors import VerifyError

SETTING_KINDS = frozenset({"scalar", "int_list", "string", "dtype", "dtype_list"})
SCALAR_KINDS = frozenset({"float", "int", "uint", "bool"})
OUTPUT_DTYPE_RULES = frozenset({"same_as_input", "fixed", "from_setting"})

# How Rust's `{:?}` prints upstream's `DType` variants (the current DSL's dtypes).
_DEBUG_NAMES: dict[str, str] = {
    "i8": "I8", "i16": "I16", "i32": "I32", "i64": "I64",
    "u8": "U8", "u16": "U16", "u32": "U32", "u64": "U64",
    "f8": "F8", "f16": "F16", "bf16": "BF16", "f32": "F32", "f64": "F64",
    "bool": "Bool", "i4": "I4", "u4": "U4",
}  # fmt: skip

_TABLE_FILE = "openinfer_ops.json"


@dataclass(frozen=True)
class SettingSpec:
    """The value kind of one op setting (upstream's `attr_defs` entry)."""

    name: str
    kind: str  # "scalar" | "int_list" | "string" | "dtype" | "dtype_list"
    scalar_kinds: tuple[str, ...] = ()  # for "scalar": a subset of "float", "int", "uint", "bool"

    def __post_init__(self) -> None:
        object.__setattr__(self, "scalar_kinds", tuple(self.scalar_kinds))
        if self.kind not in SETTING_KINDS:
            raise ValueError(f"setting {self.name}: unknown kind {self.kind!r}")
        if not SCALAR_KINDS.issuperset(self.scalar_kinds):
            raise ValueError(f"setting {self.name}: bad scalar kinds {self.scalar_kinds!r}")


@dataclass(frozen=True)
class OpSpec:
    """One op of the DSL. See the module docstring for what each field means."""

    name: str
    arity: int
    settings: tuple[str, ...] = ()
    broadcast: bool = False
    inplace: bool = False
    accumulate: bool = False
    # ("same_as_input", index) | ("fixed", dtype) | ("from_setting", setting_name)
    output_dtype: tuple[str, Any] = ("same_as_input", 0)
    dtypes: frozenset[str] | None = None  # supported input dtypes in normal mode; None = any
    accumulate_pairs: frozenset[tuple[str, str]] = frozenset()  # (input, acc) pairs
    output_dtypes: frozenset[str] | None = None  # allowed outputs of a from_setting rule; None = any
    category: str = "custom"
    doc: str = ""
    shape_rule: Callable[..., Any] | None = field(default=None, compare=False)
    reference: Callable[..., Any] | None = field(default=None, compare=False)
    nest_builder: Callable[..., Any] | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        # Accept any iterables from callers, but store hashable, immutable values.
        object.__setattr__(self, "settings", tuple(self.settings))
        object.__setattr__(self, "output_dtype", tuple(self.output_dtype))
        if self.dtypes is not None:
            object.__setattr__(self, "dtypes", frozenset(self.dtypes))
        object.__setattr__(self, "accumulate_pairs", frozenset(tuple(p) for p in self.accumulate_pairs))
        if self.output_dtypes is not None:
            object.__setattr__(self, "output_dtypes", frozenset(self.output_dtypes))
        if self.arity < 0:
            raise ValueError(f"op {self.name}: arity must be >= 0")
        if len(self.output_dtype) != 2 or self.output_dtype[0] not in OUTPUT_DTYPE_RULES:
            raise ValueError(f"op {self.name}: bad output dtype rule {self.output_dtype!r}")

    def output_dtype_for(self, input_dtypes: list[str], settings: Mapping[str, Any]) -> str | None:
        """The output dtype the type rule gives, or None when it cannot tell."""
        rule, arg = self.output_dtype
        if rule == "same_as_input":
            return input_dtypes[arg] if 0 <= arg < len(input_dtypes) else None
        if rule == "fixed":
            return arg
        value = settings.get(arg)
        return value if isinstance(value, str) else None


_ops: dict[str, OpSpec] | None = None
_settings: dict[str, SettingSpec] | None = None


def _flag(value: str) -> bool:
    if value not in ("allow", "deny"):
        raise ValueError(f"bad allow/deny flag {value!r} in {_TABLE_FILE}")
    return value == "allow"


def _output_rule(rule: Mapping[str, Any]) -> tuple[str, Any]:
    kind = rule["kind"]
    if kind == "same_as_input":
        return ("same_as_input", rule["index"])
    if kind == "fixed":
        return ("fixed", rule["dtype"])
    if kind == "acc_from_attr":  # upstream's name for "output dtype is the `attr` setting"
        return ("from_setting", rule["attr"])
    raise ValueError(f"unknown type rule {kind!r} in {_TABLE_FILE}")


def _upstream_op(op: Mapping[str, Any], table: Mapping[str, Any]) -> OpSpec:
    support = table["dtype_sets"][op["dtype_support_ref"]]
    outputs_ref = op.get("output_dtypes_ref")
    return OpSpec(
        name=op["name"],
        arity=op["inputs"],
        settings=tuple(op["attrs"]),
        broadcast=_flag(op["broadcast"]),
        inplace=_flag(op["inplace"]),
        accumulate=_flag(op["accumulate"]),
        output_dtype=_output_rule(op["type_rule"]),
        dtypes=frozenset(support["normal"]),
        accumulate_pairs=frozenset((i, a) for i, a in support["accumulate"]),
        output_dtypes=None if outputs_ref is None else frozenset(table["output_dtype_sets"][outputs_ref]),
        category=op["category"],
    )


def _load() -> tuple[dict[str, OpSpec], dict[str, SettingSpec]]:
    """The registry tables, reading the upstream table on first use."""
    global _ops, _settings
    if _ops is None or _settings is None:
        table = json.loads(Path(__file__).with_name(_TABLE_FILE).read_text(encoding="utf-8"))
        if table.get("version") != 1:
            raise ValueError(f"{_TABLE_FILE}: unsupported version {table.get('version')!r}")
        from oi_compiler.ops import decoder_ops

        settings = {
            name: SettingSpec(name, d["kind"], tuple(d.get("scalar_kinds", ())))
            for name, d in table["attr_defs"].items()
        }
        settings.update((spec.name, spec) for spec in decoder_ops.SETTINGS)
        specs = [_upstream_op(op, table) for op in table["ops"]] + decoder_ops.decoder_ops()
        _ops = {spec.name: _with_semantics(spec) for spec in specs}
        _settings = settings
    return _ops, _settings


def _with_semantics(spec: OpSpec) -> OpSpec:
    """A built-in op's entry with its (lazily imported) reference, shape rule and nest builder."""
    from oi_compiler.ops.nests import nest_builder_for
    from oi_compiler.ops.reference import reference_for, shape_rule_for

    return replace(
        spec,
        reference=reference_for(spec.name),
        shape_rule=shape_rule_for(spec.name),
        nest_builder=nest_builder_for(spec.name),
    )


def register_op(spec: OpSpec, *, replace: bool = False) -> OpSpec:
    """Add `spec` to the registry (or overwrite an entry of that name if `replace`)."""
    ops, _ = _load()
    if spec.name in ops and not replace:
        raise VerifyError(f"op {spec.name} is already registered", subject=spec.name)
    ops[spec.name] = spec
    return spec


def lookup_op(name: str) -> OpSpec | None:
    """The entry for op `name`, or None when no such op is registered."""
    return _load()[0].get(name)


def all_ops() -> dict[str, OpSpec]:
    """A copy of the registry, ordered by op name."""
    ops, _ = _load()
    return {name: ops[name] for name in sorted(ops)}


def setting_spec(name: str) -> SettingSpec | None:
    """The value kind of setting `name`, or None when no op setting has that name."""
    return _load()[1].get(name)


def register_setting(spec: SettingSpec, *, replace: bool = False) -> SettingSpec:
    """Add a setting kind for custom ops. Re-registering an identical spec is a no-op."""
    _, settings = _load()
    known = settings.get(spec.name)
    if known is not None and known != spec and not replace:
        raise VerifyError(f"setting {spec.name} is already registered", subject=spec.name)
    settings[spec.name] = spec
    return spec


def dtype_debug_name(dtype: str) -> str:
    """`dtype` as Rust's `{:?}` prints upstream's `DType` (e.g. "bf16" -> "BF16", "bool" -> "Bool")."""
    try:
        return _DEBUG_NAMES[dtype]
    except KeyError:
        raise ValueError(f"unknown dtype {dtype!r}") from None
