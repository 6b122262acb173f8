"""The op registry: the upstream catalogue (openinfer.md §6.2), custom ops, lazy loading."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from oi_compiler.errors import VerifyError
from oi_compiler.ops import (
    OpSpec,
    SettingSpec,
    all_ops,
    lookup_op,
    register_op,
    register_setting,
    setting_spec,
)
from oi_compiler.ops.registry import dtype_debug_name

UPSTREAM_OPS = """
    add mul sub div floor_div rem fma neg abs recip relu matmul sign min max clamp floor ceil round trunc
    and or xor not shl shr popcount eq ne lt le gt ge is_finite is_nan is_inf is_neg filter fill
    sum_axis mean_axis prod_axis max_axis min_axis argmax_axis argmin_axis cast
""".split()

DSL_DTYPES = set("i8 i16 i32 i64 u8 u16 u32 u64 f8 f16 bf16 f32 f64 bool i4 u4".split())


def test_all_upstream_ops_present() -> None:
    assert len(UPSTREAM_OPS) == 47
    ops = all_ops()
    assert set(UPSTREAM_OPS) <= set(ops)
    assert list(ops) == sorted(ops)
    for name in UPSTREAM_OPS:
        spec = ops[name]
        assert spec.name == name
        assert spec.dtypes is not None and spec.dtypes <= DSL_DTYPES
        assert {d for pair in spec.accumulate_pairs for d in pair} <= DSL_DTYPES
        assert all(setting_spec(s) is not None for s in spec.settings)


# (op, category, arity, settings, broadcast, inplace, accumulate, output dtype rule) from §6.2.
CATALOGUE = [
    ("add", "arithmetic", 2, ("acc",), True, True, True, ("same_as_input", 0)),
    ("div", "arithmetic", 2, ("div_by_zero_mask",), True, True, False, ("same_as_input", 0)),
    ("rem", "arithmetic", 2, (), True, True, False, ("same_as_input", 0)),
    ("fma", "arithmetic", 3, (), False, True, False, ("same_as_input", 0)),
    ("abs", "arithmetic", 1, ("acc",), False, True, True, ("same_as_input", 0)),
    ("recip", "arithmetic", 1, ("div_by_zero_mask",), False, True, False, ("same_as_input", 0)),
    ("relu", "numerical", 1, ("alpha", "clamp_max"), False, True, False, ("same_as_input", 0)),
    ("matmul", "numerical", 2, ("acc",), True, True, True, ("same_as_input", 0)),
    ("sign", "statistics", 1, (), False, True, False, ("fixed", "i8")),
    ("clamp", "rounding", 1, ("min", "max"), False, True, False, ("same_as_input", 0)),
    ("shl", "bitwise", 1, ("bits",), False, True, False, ("same_as_input", 0)),
    ("popcount", "bitwise", 1, (), False, False, False, ("fixed", "u8")),
    ("eq", "comparison", 2, (), False, False, False, ("fixed", "bool")),
    ("is_finite", "filter", 1, (), False, False, False, ("fixed", "bool")),
    ("filter", "filter", 3, (), False, False, False, ("same_as_input", 0)),
    ("fill", "mutation", 1, ("value",), False, True, False, ("same_as_input", 0)),
    ("sum_axis", "reduction", 1, ("axes", "keepdims", "acc"), False, False, True, ("same_as_input", 0)),
    ("max_axis", "reduction", 1, ("axes", "keepdims"), False, False, False, ("same_as_input", 0)),
    ("argmax_axis", "reduction", 1, ("axis", "keepdims", "select_first"), False, False, False, ("fixed", "i64")),
    ("cast", "casting", 1, ("to", "rounding_mode", "saturate"), False, False, False, ("from_setting", "to")),
]


@pytest.mark.parametrize(
    ("name", "category", "arity", "settings", "broadcast", "inplace", "accumulate", "rule"), CATALOGUE
)
def test_catalogue_entry(
    name: str,
    category: str,
    arity: int,
    settings: tuple[str, ...],
    broadcast: bool,
    inplace: bool,
    accumulate: bool,
    rule: tuple[str, object],
) -> None:
    spec = lookup_op(name)
    assert spec is not None
    assert (spec.category, spec.arity, spec.settings) == (category, arity, settings)
    assert (spec.broadcast, spec.inplace, spec.accumulate) == (broadcast, inplace, accumulate)
    assert spec.output_dtype == rule
    assert callable(spec.shape_rule) and callable(spec.reference) and callable(spec.nest_builder)


def test_output_dtype_rules() -> None:
    def out(op: str, ins: list[str], settings: dict[str, object] | None = None) -> str | None:
        spec = lookup_op(op)
        assert spec is not None
        return spec.output_dtype_for(ins, settings or {})

    assert out("add", ["f16", "f16"]) == "f16"
    assert out("popcount", ["u32"]) == "u8"
    assert out("eq", ["f32", "f32"]) == "bool"
    assert out("sign", ["f32"]) == "i8"
    assert out("argmax_axis", ["f32"], {"axis": 0}) == "i64"
    assert out("cast", ["f32"], {"to": "i8"}) == "i8"
    assert out("cast", ["f32"], {"to": 3}) is None
    assert out("cast", ["f32"]) is None
    assert out("add", []) is None


def test_dtype_support() -> None:
    add, relu, cast, is_nan = (lookup_op(n) for n in ("add", "relu", "cast", "is_nan"))
    assert add is not None and relu is not None and cast is not None and is_nan is not None
    assert add.dtypes == DSL_DTYPES  # bitset/i1/i2/u1/u2 dropped; the rest all supported
    assert ("i8", "i32") in add.accumulate_pairs and ("u4", "u8") in add.accumulate_pairs
    assert not any(inp.startswith("f") for inp, _ in add.accumulate_pairs)
    assert relu.dtypes == {"f8", "bf16", "f16", "f32", "f64", "i4", "i8", "i16", "i32", "i64"}
    assert is_nan.dtypes == {"f8", "f16", "bf16", "f32", "f64"}
    assert cast.output_dtypes is not None and "bool" not in cast.output_dtypes and "f32" in cast.output_dtypes
    assert add.output_dtypes is None


def test_setting_specs() -> None:
    assert setting_spec("acc") == SettingSpec("acc", "dtype_list")
    assert setting_spec("to") == SettingSpec("to", "dtype")
    assert setting_spec("axes") == SettingSpec("axes", "int_list")
    assert setting_spec("rounding_mode") == SettingSpec("rounding_mode", "string")
    assert setting_spec("keepdims") == SettingSpec("keepdims", "scalar", ("bool",))
    alpha = setting_spec("alpha")
    assert alpha is not None and set(alpha.scalar_kinds) == {"float", "int", "uint", "bool"}
    assert setting_spec("no_such_setting") is None


def test_unknown_op() -> None:
    assert lookup_op("frobnicate") is None


def test_register_custom_op(scratch_registry: None) -> None:
    register_setting(SettingSpec("eps", "scalar", ("float",)))
    spec = OpSpec(name="softsign", arity=1, settings=["eps"], dtypes={"f32"})  # type: ignore[arg-type]
    assert register_op(spec) is spec
    found = lookup_op("softsign")
    assert found is spec
    assert found.settings == ("eps",) and found.dtypes == frozenset({"f32"})
    assert found.category == "custom" and found.output_dtype_for(["f32"], {}) == "f32"
    assert "softsign" in all_ops()
    assert setting_spec("eps") == SettingSpec("eps", "scalar", ("float",))
    register_setting(SettingSpec("eps", "scalar", ("float",)))  # identical: fine


def test_duplicate_registration(scratch_registry: None) -> None:
    with pytest.raises(VerifyError, match="op add is already registered"):
        register_op(OpSpec(name="add", arity=2))
    spec = register_op(OpSpec(name="twice", arity=1))
    with pytest.raises(VerifyError, match="op twice is already registered"):
        register_op(OpSpec(name="twice", arity=2))
    assert lookup_op("twice") is spec
    with pytest.raises(VerifyError, match="setting alpha is already registered"):
        register_setting(SettingSpec("alpha", "string"))


def test_replace(scratch_registry: None) -> None:
    new_add = OpSpec(name="add", arity=2, broadcast=False, doc="mine")
    assert register_op(new_add, replace=True) is new_add
    assert lookup_op("add") is new_add
    register_setting(SettingSpec("alpha", "string"), replace=True)
    assert setting_spec("alpha") == SettingSpec("alpha", "string")


def test_scratch_registry_restored() -> None:
    add = lookup_op("add")
    assert add is not None and add.category == "arithmetic"
    assert lookup_op("softsign") is None and lookup_op("twice") is None


def test_bad_specs() -> None:
    with pytest.raises(ValueError):
        OpSpec(name="x", arity=1, output_dtype=("whatever", 0))
    with pytest.raises(ValueError):
        SettingSpec("x", "tensor")
    with pytest.raises(ValueError):
        SettingSpec("x", "scalar", ("complex",))


def test_dtype_debug_name() -> None:
    expected = "I8 I16 I32 I64 U8 U16 U32 U64 F8 F16 BF16 F32 F64 Bool I4 U4".split()
    names = "i8 i16 i32 i64 u8 u16 u32 u64 f8 f16 bf16 f32 f64 bool i4 u4".split()
    assert [dtype_debug_name(d) for d in names] == expected
    with pytest.raises(ValueError):
        dtype_debug_name("bitset")


def test_table_loads_lazily() -> None:
    # A fresh interpreter: importing the package must not open the json; the first lookup must.
    script = textwrap.dedent(
        """
        import sys
        opened = []
        sys.addaudithook(lambda event, args: opened.append(str(args[0])) if event == "open" else None)
        import oi_compiler.ops
        from oi_compiler.ops import registry
        reads = lambda: [p for p in opened if p.endswith("openinfer_ops.json")]
        assert registry._ops is None and registry._settings is None
        assert reads() == [], reads()
        assert registry.lookup_op("add") is not None
        assert registry._ops is not None
        assert len(reads()) == 1, reads()
        registry.lookup_op("mul"); registry.setting_spec("acc")
        assert len(reads()) == 1, reads()
        print("ok")
        """
    )
    repo_root = Path(__file__).resolve().parents[2]
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=repo_root, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"
