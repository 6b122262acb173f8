"""The Python API: oi.parse_graph, oi.Graph.load, the error family, register_op, register_pass/run_passes
with examples/custom_pass.py, and the xDSL plugin."""

from __future__ import annotations

import runpy
import subprocess
import sys
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest
from xdsl.passes import ModulePass

import oi_compiler as oi
import oi_compiler.passes as passes_module
from oi_compiler.dialects.oi import BlockOp, CacheWriteOp, GraphOp, LoopOp, NamedOp, VarOp

ROOT = Path(__file__).resolve().parents[2]
KV_DECODE = ROOT / "examples" / "kv_decode.oi"
LAYERS = ROOT / "examples" / "layers.oi"
CUSTOM_PASS = ROOT / "examples" / "custom_pass.py"

SMALL = "dynamic { x: f32[1, D]; }\nvolatile { y: f32[1, D]; }\nblock entry {\n    op relu(x) >> y;\n    return;\n}\n"


pytestmark = pytest.mark.usefixtures("restore_pass_registry")


def unique(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:10]}"


# --- parse_graph -----------------------------------------------------------------------------------


def test_parse_graph_with_and_without_wrapper() -> None:
    plain = oi.parse_graph(SMALL, "small.oi")
    wrapped = oi.parse_graph("graph! {\n" + SMALL + "}\n", "small.oi")
    assert isinstance(plain, oi.Graph) and isinstance(wrapped, oi.Graph)
    assert str(plain) == str(wrapped)
    assert plain.name == "small" and plain.filename == "small.oi"
    assert list(plain.vars) == ["x", "y"] and list(plain.blocks) == ["entry"]
    assert isinstance(plain.op, GraphOp)
    assert [op.name for op in plain.module.ops] == ["oi.graph"]
    assert repr(plain) == "<oi.Graph small from small.oi>"


def test_parse_graph_default_filename() -> None:
    graph = oi.parse_graph(SMALL)
    assert graph.name == "graph" and graph.filename == "<string>"
    with pytest.raises(oi.ParseError) as info:
        oi.parse_graph("block entry { frob; }")
    assert str(info.value) == "<string>:1:15: error: unsupported node"


def test_vars_and_blocks() -> None:
    graph = oi.Graph.load(KV_DECODE)
    assert graph.name == "kv_decode"
    assert list(graph.vars) == ["x", "Wq", "Wk", "Wv", "q", "k", "v", "keys", "values", "t", "K", "V"]
    k = graph.vars["K"]
    assert isinstance(k, VarOp)
    assert (k.memory, k.dtype, k.index_names, k.fixed_sizes) == ("persistent", "f32", ["pos"], {"pos": 1024})
    assert k.var_type.dim_texts == ["1", "D"] and k.table is not None
    assert graph.vars["t"].init_value == 0 and graph.vars["t"].dtype == "i32"
    assert graph.vars["x"].memory == "dynamic" and graph.vars["Wq"].memory == "constant"
    assert graph.vars["keys"].var_type.dim_texts == ["T", "1", "D"]
    entry = graph.blocks["entry"]
    assert isinstance(entry, BlockOp) and entry.block_name == "entry"
    kinds = [op.name for op in entry.body.block.ops]
    assert kinds == ["oi.op"] * 3 + ["oi.cache.write"] * 2 + ["oi.cache.increment"] + ["oi.cache.read"] * 2 + ["oi.return"]


def test_several_blocks() -> None:
    graph = oi.parse_graph("dynamic { c: bool; }\nblock entry { branch c a b; return; }\nblock a { return; }\nblock b { return; }")
    assert list(graph.blocks) == ["entry", "a", "b"]


# --- Graph.load --------------------------------------------------------------------------------------


def test_load_oi_and_mlir_agree(tmp_path: Path) -> None:
    oi_path = tmp_path / "model.oi"
    oi_path.write_text(SMALL)
    from_oi = oi.Graph.load(oi_path)
    assert from_oi.name == "model" and from_oi.filename == str(oi_path)
    mlir_path = tmp_path / "model.mlir"
    mlir_path.write_text(str(from_oi.module))
    from_mlir = oi.Graph.load(mlir_path)
    assert str(from_mlir) == str(from_oi)
    assert from_mlir.name == "model" and list(from_mlir.vars) == ["x", "y"]
    assert from_mlir.filename == str(mlir_path)
    assert oi.Graph.load(str(mlir_path)).name == "model"  # a str path works too


def test_load_generic_mlir(tmp_path: Path) -> None:
    import io

    from xdsl.printer import Printer

    graph = oi.Graph.load(KV_DECODE)
    buf = io.StringIO()
    Printer(stream=buf, print_generic_format=True).print_op(graph.module)
    path = tmp_path / "g.mlir"
    path.write_text(buf.getvalue())
    again = oi.Graph.load(path)
    assert str(again) == str(graph)


def test_load_verifies_unless_told_not_to(tmp_path: Path) -> None:
    bad = "persistent { K(i): f32[4] @table; }\nvolatile { x: f32[4]; }\nblock entry {\n  cache.read K >> x;\n}\n"
    path = tmp_path / "bad.oi"
    path.write_text(bad)
    with pytest.raises(oi.VerifyError) as info:
        oi.Graph.load(path)
    assert str(info.value) == f"{path}:4:3: error: cache table K requires indices"
    graph = oi.Graph.load(path, verify=False)
    assert list(graph.vars) == ["K", "x"]
    mlir = tmp_path / "bad.mlir"
    mlir.write_text(str(graph.module))
    with pytest.raises(oi.VerifyError) as info:
        oi.Graph.load(mlir)
    assert info.value.message == "cache table K requires indices"
    assert (info.value.loc.filename, info.value.loc.line) == (str(mlir), 6)
    assert oi.Graph.load(mlir, verify=False).vars["K"].table is not None
    with pytest.raises(oi.VerifyError):
        graph.verify()


def test_load_missing_and_directory(tmp_path: Path) -> None:
    with pytest.raises(oi.ParseError) as info:
        oi.Graph.load(tmp_path / "missing.oi")
    assert info.value.loc is None
    assert str(info.value) == f"{tmp_path / 'missing.oi'}: error: cannot read {tmp_path / 'missing.oi'}: No such file or directory"
    with pytest.raises(oi.OiError):
        oi.Graph.load(tmp_path)


@pytest.mark.parametrize("suffix", [".oi", ".mlir"])
def test_load_binary_file_is_an_oi_error(tmp_path: Path, suffix: str) -> None:
    path = tmp_path / f"garbage{suffix}"
    path.write_bytes(b"\xff\xfe\x80 not text")
    with pytest.raises(oi.OiError):
        oi.Graph.load(path)


def test_verify_with_sizevars() -> None:
    graph = oi.parse_graph("dynamic { x: f32[B]; }\nblock entry { return; }")
    assert graph.verify(sizevars={"B": 4}) is graph
    with pytest.raises(oi.VerifyError) as info:
        graph.verify(sizevars={})
    assert info.value.message == "invalid dims for x: unknown size: B"


# --- errors ------------------------------------------------------------------------------------------


def test_error_family() -> None:
    for cls in (oi.ParseError, oi.VerifyError, oi.CacheError, oi.PassError, oi.OptionError):
        assert issubclass(cls, oi.OiError) and issubclass(cls, Exception)
    err = oi.VerifyError("boom", oi.SourceLoc("f.oi", 3, 7))
    assert (err.message, err.loc.line, err.loc.column, err.loc.filename) == ("boom", 3, 7, "f.oi")
    assert str(err) == "f.oi:3:7: error: boom"
    assert str(oi.PassError("bad", subject="my-pass")) == "my-pass: error: bad"
    assert str(oi.ParseError("bad")) == "error: bad"


@pytest.mark.parametrize(
    ("text", "cls", "message", "line", "col"),
    [
        ("block entry {\n  frob;\n}", oi.ParseError, "unsupported node", 2, 3),
        ("dynamic { x: f32; }\n\nblock entry {\n    op nosuchop(x) >> x;\n}", oi.VerifyError, "unsupported op nosuchop", 4, 5),
        ("dynamic { x: f32; }\ndynamic { x: f32; }\nblock entry { return; }", oi.VerifyError,
         "duplicate variable declaration x", 2, 11),
        ("dynamic { x: f32; }", oi.VerifyError, "graph has no blocks", 1, 1),
    ],
)
def test_errors_carry_message_and_location(text, cls, message, line, col) -> None:
    with pytest.raises(oi.OiError) as info:
        oi.parse_graph(text, "e.oi")
    err = info.value
    assert type(err) is cls
    assert err.message == message
    assert (err.loc.filename, err.loc.line, err.loc.column) == ("e.oi", line, col)
    assert str(err) == f"e.oi:{line}:{col}: error: {message}"


def test_mlir_parse_error_is_an_oi_error() -> None:
    with pytest.raises(oi.ParseError) as info:
        oi.parse_mlir("builtin.module {\n  oi.frob @x\n}\n", "f.mlir")
    err = info.value
    assert (err.loc.filename, err.loc.line) == ("f.mlir", 2)
    assert str(err).startswith("f.mlir:2:") and "oi.frob" in err.message


def test_mlir_unterminated_first_string_is_an_oi_error() -> None:
    with pytest.raises(oi.ParseError):
        oi.parse_mlir('"builtin.module() ({\n}) : () -> ()\n', "f.mlir")


# --- register_op ---------------------------------------------------------------------------------


def test_register_op_makes_a_graph_verify(scratch_registry: None) -> None:
    name = unique("rms_norm")
    text = f"dynamic {{ x: f32[4]; w: f32[4]; }}\nvolatile {{ y: f32[4]; }}\nblock entry {{\n  op {name}(x, w, eps=1e-5) >> y;\n}}"
    with pytest.raises(oi.VerifyError) as info:
        oi.parse_graph(text, "c.oi")
    assert info.value.message == f"unsupported op {name}"
    assert (info.value.loc.line, info.value.loc.column) == (4, 3)
    spec = oi.register_op(oi.OpSpec(name=name, arity=2, settings=("eps",), category="normalization"))
    assert oi.lookup_op(name) is spec
    graph = oi.parse_graph(text, "c.oi")
    op = graph.blocks["entry"].body.block.ops.first
    assert isinstance(op, NamedOp) and op.kind == name


def test_registered_op_rules_are_enforced(scratch_registry: None) -> None:
    name = unique("unary")
    oi.register_op(oi.OpSpec(name=name, arity=1, dtypes=frozenset({"f32"})))
    base = "dynamic {{ x: {dt}[4]; w: f32[4]; }}\nvolatile {{ y: {dt}[4]; }}\nblock entry {{\n  op {name}({args}) >> y;\n}}"
    oi.parse_graph(base.format(dt="f32", name=name, args="x"))
    with pytest.raises(oi.VerifyError) as info:
        oi.parse_graph(base.format(dt="f32", name=name, args="x, w"))
    assert info.value.message == f"op {name} expects 1 inputs, got 2"
    with pytest.raises(oi.VerifyError) as info:
        oi.parse_graph(base.format(dt="f32", name=name, args="x, alpha=1.0"))
    assert info.value.message == f"unsupported {name} setting: alpha"
    with pytest.raises(oi.VerifyError) as info:
        oi.parse_graph(base.format(dt="i32", name=name, args="x"))
    assert info.value.message.startswith(f"op {name} does not support I32 -> I32")


def test_register_op_twice(scratch_registry: None) -> None:
    name = unique("twice")
    oi.register_op(oi.OpSpec(name=name, arity=1))
    with pytest.raises(oi.VerifyError):
        oi.register_op(oi.OpSpec(name=name, arity=2))
    replaced = oi.register_op(oi.OpSpec(name=name, arity=2), replace=True)
    assert oi.lookup_op(name) is replaced


# --- register_pass / run_passes --------------------------------------------------------------------------


@pytest.fixture
def custom_pass():
    """examples/custom_pass.py, loaded afresh (it registers `unroll-constant-loops`)."""
    passes_module._PASSES.pop("unroll-constant-loops", None)
    namespace = runpy.run_path(str(CUSTOM_PASS))
    assert "unroll-constant-loops" in oi.registered_passes()
    return namespace["UnrollConstantLoops"]


def test_custom_pass_unrolls_layers(custom_pass) -> None:
    graph = oi.Graph.load(LAYERS)
    assert [op.name for op in graph.module.walk()].count("oi.loop") == 1
    oi.run_passes(graph.module, "unroll-constant-loops{max_trip_count=8}")
    assert not any(isinstance(op, LoopOp) for op in graph.module.walk())
    ops = list(graph.blocks["entry"].body.block.ops)
    assert [op.name for op in ops] == ["oi.op", "oi.cache.write", "oi.cache.read"] * 2 + ["oi.cache.increment", "oi.return"]
    matmuls = [op for op in ops if isinstance(op, NamedOp)]
    assert [r.text for op in matmuls for r in op.inputs] == ["x", "W[0]", "x", "W[1]"]
    writes = [op.dst.text for op in ops if isinstance(op, CacheWriteOp)]
    assert writes == ["K[0,t]", "K[1,t]"]
    text = str(graph)
    for piece in ("@W[0]", "@W[1]", "@K[0, t]", "@K[1, t]", "@K[0, 0:t]", "@K[1, 0:t]"):
        assert piece in text
    assert "oi.loop" not in text
    graph.verify()  # still a valid graph


def test_custom_pass_respects_max_trip_count(custom_pass) -> None:
    graph = oi.Graph.load(LAYERS)
    before = str(graph)
    oi.run_passes(graph.module, "unroll-constant-loops{max_trip_count=1}")
    assert str(graph) == before


def test_custom_pass_class_can_be_run_directly(custom_pass) -> None:
    graph = oi.Graph.load(LAYERS)
    custom_pass(max_trip_count=4).apply(oi.make_context(), graph.module)
    assert "oi.loop" not in str(graph)


def test_register_pass_and_run_in_order() -> None:
    seen: list[str] = []
    first, second = unique("first-pass"), unique("second-pass")

    def make(name: str) -> type:
        @dataclass(frozen=True)
        class Recorder(ModulePass):
            """Records its name."""

            def apply(self, ctx, module) -> None:
                seen.append(self.name)

        Recorder.name = name
        return Recorder

    a, b = make(first), make(second)
    assert oi.register_pass(a) is a
    oi.register_pass(b)
    assert first in oi.registered_passes() and oi.registered_passes()[first].summary == "Records its name."
    graph = oi.Graph.load(KV_DECODE)
    oi.run_passes(graph.module, f"{second},{first},{second}")
    assert seen == [second, first, second]
    oi.register_pass(a)  # the same definition again (a plugin loaded twice): harmless

    @dataclass(frozen=True)
    class Other(ModulePass):
        name = first

        def apply(self, ctx, module) -> None:
            pass

    with pytest.raises(oi.PassError):
        oi.register_pass(Other)
    oi.register_pass(Other, replace=True)


def test_register_pass_needs_a_name() -> None:
    class Nameless(ModulePass):
        def apply(self, ctx, module) -> None:
            pass

    with pytest.raises(oi.PassError):
        oi.register_pass(Nameless)


def test_run_passes_unknown_pass() -> None:
    graph = oi.Graph.load(KV_DECODE)
    with pytest.raises(oi.PassError) as info:
        oi.run_passes(graph.module, "no-such-pass")
    assert "no-such-pass" in info.value.message


def test_builtin_passes_registered() -> None:
    assert {"canonicalize", "cse", "dce"} <= set(oi.registered_passes())


# --- the xDSL plugin, import cost ---------------------------------------------------------------------


def test_xdsl_multiverse_has_the_oi_dialect() -> None:
    from xdsl.universe import Universe

    universe = Universe.get_multiverse()
    assert "oi" in universe.all_dialects
    dialect = universe.all_dialects["oi"]()
    names = {op.name for op in dialect.operations}
    assert {"oi.graph", "oi.var", "oi.block", "oi.op", "oi.cache.read", "oi.cache.write", "oi.loop"} <= names


def test_xdsl_context_parses_oi_ir() -> None:
    from xdsl.context import Context
    from xdsl.parser import Parser
    from xdsl.universe import Universe

    ctx = Context()
    for name, factory in Universe.get_multiverse().all_dialects.items():
        if name in ("builtin", "oi"):
            ctx.register_dialect(name, factory)
    text = str(oi.Graph.load(KV_DECODE).module)
    module = Parser(ctx, text).parse_module()
    assert str(module) == text


def test_import_does_not_import_xdsl() -> None:
    code = (
        "import sys\n"
        "import oi_compiler\n"
        "assert 'xdsl' not in sys.modules, 'import'\n"
        "oi_compiler.OiError, oi_compiler.ParseError, oi_compiler.SourceLoc\n"
        "assert 'xdsl' not in sys.modules, 'errors'\n"
        "oi_compiler.parse_graph('block entry { return; }')\n"
        "assert 'xdsl' in sys.modules\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr


def test_lazy_names() -> None:
    for name in oi.__all__:
        assert getattr(oi, name) is not None
    assert "parse_graph" in dir(oi)
    with pytest.raises(AttributeError):
        oi.no_such_name  # noqa: B018


def test_load_mlir_without_a_graph_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "empty.mlir"
    path.write_text("")
    with pytest.raises(oi.VerifyError, match="module holds no oi.graph"):
        oi.Graph.load(path)


def test_deeply_nested_loops_are_a_parse_error() -> None:
    depth = 2000
    text = "block entry { " + "loop l (i in 0..1) { " * depth + "}" * depth + " }"
    with pytest.raises(oi.ParseError, match="nest too deeply"):
        oi.parse_graph(text, "deep.oi", verify=False)


def test_tensor_type_reads_product_dims_from_text() -> None:
    from oi_compiler.dialects.oi_attrs import DimAttr, TensorType

    assert TensorType("f32", ["S*H", "3*D", 4]) == TensorType("f32", [DimAttr("S", "H"), DimAttr(3, "D"), DimAttr(4)])
