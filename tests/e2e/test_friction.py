"""Friction found using the tools as the README shows them (hardening issue items 14, 15, 18): pass
options holding a path, the `@fixed` overflow message, `oi-run --feed` shapes, pickled inputs,
`xdsl-opt` on `.oi` files, repeated attributes, and the public classes' docstrings."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path

import numpy as np
import pytest

import oi_compiler as oi
from oi_compiler.passes import parse_pipeline, quote_bare_values
from oi_compiler.tools import oi_opt, oi_run

ROOT = Path(__file__).resolve().parents[2]
FILE = "friction.oi"
DEVICES = ("reference", "cpu")


@pytest.fixture(autouse=True)
def _no_env_trace(monkeypatch):
    monkeypatch.delenv("OI_TRACE", raising=False)
    monkeypatch.delenv("OPENINFER_TRACE", raising=False)


def cli(capsys, main, *argv) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def one_line(err: str) -> str:
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert "Traceback" not in err
    return lines[0]


# --- 14: a path in a pass option needs no quotes ---------------------------------------------------


@pytest.fixture
def sized_model(tmp_path: Path) -> Path:
    path = tmp_path / "models.d" / "kv.oinf"
    path.parent.mkdir()
    oi.Model(sizevars={"D": 4, "T": 8}).save(path)
    return path


@pytest.mark.parametrize(
    ("flags", "d"),
    [
        (["--bind-sizes=model={m}"], 4),
        (["-p", "bind-sizes{{model={m}}}"], 4),
        (["--bind-sizes=model={m} D=2"], 2),  # a path, then a size overriding the model's
        (["--bind-sizes=D=2 model={m}"], 2),
    ],
)
def test_unquoted_path_in_a_pass_option(capsys, sized_model, flags, d) -> None:
    argv = [ROOT / "examples" / "kv_decode.oi", *(f.format(m=sized_model) for f in flags)]
    code, out, err = cli(capsys, oi_opt.main, *argv)
    assert (code, err) == (0, "")
    assert f"oi.var dynamic @x : f32[1, {d}]" in out
    assert f"oi.var volatile @keys : f32[8, 1, {d}]" in out


def test_unquoted_path_from_python(sized_model) -> None:
    graph = oi.Graph.load(ROOT / "examples" / "kv_decode.oi")
    oi.run_passes(graph.module, f"bind-sizes{{model={sized_model}}}")
    assert "oi.var dynamic @x : f32[1, 4]" in str(graph.module)


@pytest.mark.parametrize(
    ("spec", "quoted"),
    [
        ("bind-sizes{model=a/b.oinf}", 'bind-sizes{model="a/b.oinf"}'),
        ("bind-sizes{model=m.oinf D=2},lower-ops", 'bind-sizes{model="m.oinf" D=2},lower-ops'),
        ("bind-sizes{model=../w.npz}", 'bind-sizes{model="../w.npz"}'),
        ('bind-sizes{model="a b.oinf"}', 'bind-sizes{model="a b.oinf"}'),  # quoted already
        ("tile{sizes=32,32,64}", "tile{sizes=32,32,64}"),  # numbers, identifiers: as they were
        ("bind-sizes{D=64 T=1024}", "bind-sizes{D=64 T=1024}"),
        ("x{a=-1.5e3 b=true c=2d-slice}", "x{a=-1.5e3 b=true c=2d-slice}"),
        ("canonicalize,cse", "canonicalize,cse"),
    ],
)
def test_quote_bare_values(spec, quoted) -> None:
    assert quote_bare_values(spec)[0] == quoted


def test_pipeline_error_columns_stay_those_of_the_text_written() -> None:
    """A value quoted for xDSL's lexer does not shift the column of a later error."""
    with pytest.raises(oi.PassError) as info:
        parse_pipeline("bind-sizes{model=m.oinf} $")
    assert info.value.message.startswith("invalid pass pipeline 'bind-sizes{model=m.oinf} $' at column 25:")
    with pytest.raises(oi.PassError) as info:  # the same error without a quoted value: the same column
        parse_pipeline("bind-sizes{model=mmmmmm} $")
    assert " at column 25:" in info.value.message


def test_bad_path_in_a_pass_option_is_one_line(capsys, tmp_path) -> None:
    missing = tmp_path / "nope" / "m.oinf"
    code, _, err = cli(capsys, oi_opt.main, ROOT / "examples" / "kv_decode.oi", f"--bind-sizes=model={missing}")
    assert code == 1
    assert one_line(err) == f"{missing}: error: cannot read model file: No such file or directory"


# --- 15a: the @fixed overflow names the index position and the value ---------------------------------

INDEXED = """
dynamic { v: f32[2]; }
persistent { t: i64 @init(0); K(l, p): f32[2] @table @fixed(p=3); }
block entry {
    cache.write v >> K[0, t];
    cache.increment t;
}
"""

SLICED = """
volatile { y: f32[2]; }
persistent { e: i64 @init(1); K(p): f32[2] @table @fixed(p=2); }
block entry {
    cache.read K[0..e] >> y;
    cache.increment e;
}
"""


def _first_error(src: str, device: str, steps: int, **values) -> oi.CacheError:
    exe = oi.Simulator(None, oi.parse_graph(textwrap.dedent(src), FILE), device=device).make_executor()
    for _ in range(steps):
        if values:
            exe.insert(**values)
        try:
            exe.step()
        except oi.CacheError as e:
            return e
    raise AssertionError("no step failed")


@pytest.mark.parametrize("device", DEVICES)
def test_fixed_overflow_of_an_index_says_its_value(device) -> None:
    err = _first_error(INDEXED, device, 5, v=np.ones(2, np.float32))
    assert err.message == "cache table K index 1 exceeds fixed size 3 (index value 3)"
    assert str(err) == f"{FILE}:5:5: error: cache table K index 1 exceeds fixed size 3 (index value 3)"


@pytest.mark.parametrize("device", DEVICES)
def test_fixed_overflow_of_a_slice_says_its_end(device) -> None:
    err = _first_error(SLICED, device, 5)
    assert err.message == "cache table K index 0 exceeds fixed size 2 (slice end 3)"


def test_fixed_overflow_is_worded_alike_on_both_devices() -> None:
    for src, steps, values in ((INDEXED, 5, {"v": np.ones(2, np.float32)}), (SLICED, 5, {})):
        messages = {str(_first_error(src, d, steps, **values)) for d in DEVICES}
        assert len(messages) == 1, messages


@pytest.mark.parametrize(
    ("statement", "message"),
    [
        ("cache.write v >> K[0, 3];", "cache table K index 1 exceeds fixed size 3 (index value 3)"),
        ("cache.read K[0, 1..4] >> y;", "cache table K index 1 exceeds fixed size 3 (slice end 4)"),
    ],
)
def test_fixed_overflow_of_a_literal_says_its_value(statement, message) -> None:
    src = f"dynamic {{ v: f32[2]; }} volatile {{ y: f32[3, 2]; }} persistent {{ K(l, p): f32[2] @table @fixed(p=3); }} block entry {{ {statement} }}"
    with pytest.raises(oi.VerifyError) as info:
        oi.parse_graph(src, FILE)
    assert info.value.message == message


# --- 15b, 15c: oi-run --feed shapes; nothing pickled, no allow_pickle advice ----------------------------

KV = ["--dims", "D=2,T=1", "--zero-constants", "--fetch", "t"]


def test_feed_with_a_leading_axis_not_matching_steps_says_the_rule(capsys, tmp_path) -> None:
    path = tmp_path / "x.npy"
    np.save(path, np.ones((5, 1, 2), np.float32))
    code, out, err = cli(capsys, oi_run.main, ROOT / "examples" / "kv_decode.oi", *KV, "--steps", "3", "--feed", f"x={path}")
    assert code == 1 and out == ""  # refused before the first step
    assert one_line(err) == (
        f"{path}: error: --feed x: an array of shape [5, 1, 2] is neither x's shape [1, 2] (fed every step) "
        "nor [3, 1, 2] (row i at step i, one row per step): it has 5 rows for --steps 3"
    )


def test_feed_of_another_shape_says_the_rule(capsys, tmp_path) -> None:
    path = tmp_path / "x.npy"
    np.save(path, np.ones((2, 2), np.float32))
    code, _, err = cli(capsys, oi_run.main, ROOT / "examples" / "kv_decode.oi", *KV, "--steps", "3", "--feed", f"x={path}")
    assert code == 1
    assert one_line(err) == (
        f"{path}: error: --feed x: an array of shape [2, 2] is neither x's shape [1, 2] (fed every step) "
        "nor [3, 1, 2] (row i at step i, one row per step)"
    )


@pytest.mark.parametrize("shape", [(1, 2), (3, 1, 2)])
def test_feeds_that_fit_still_run(capsys, tmp_path, shape) -> None:
    path = tmp_path / "x.npy"
    np.save(path, np.ones(shape, np.float32))
    code, out, err = cli(capsys, oi_run.main, ROOT / "examples" / "kv_decode.oi", *KV, "--steps", "3", "--feed", f"x={path}")
    assert (code, err) == (0, "")
    assert out.count("t (scalar)") == 3


def test_pickled_feed_gives_no_allow_pickle_advice(capsys, tmp_path) -> None:
    path = tmp_path / "obj.npy"
    np.save(path, np.array([{"a": 1}], dtype=object), allow_pickle=True)
    code, _, err = cli(capsys, oi_run.main, ROOT / "examples" / "kv_decode.oi", *KV, "--feed", f"x={path}")
    assert code == 1
    assert one_line(err) == f"{path}: error: cannot read --feed x: it holds Python objects (a pickled object array), not numbers"
    assert "pickle=" not in err


def _objects_npz(path: Path) -> Path:
    np.savez(path, header=np.array([{"a": 1}], dtype=object), allow_pickle=True)
    return path


@pytest.mark.parametrize("kind", ["npy", "pickled-npy", "pickled-npz", "model", "text", "empty-zip"])
def test_load_state_of_a_foreign_file(tmp_path, kind) -> None:
    path = tmp_path / f"{kind}.bin"
    if kind == "npy":
        np.save(path.with_suffix(".npy"), np.ones(3))
        path = path.with_suffix(".npy")
    elif kind == "pickled-npy":
        path = path.with_suffix(".npy")
        np.save(path, np.array([{"a": 1}], dtype=object), allow_pickle=True)
    elif kind == "pickled-npz":
        path = _objects_npz(path.with_suffix(".npz"))
    elif kind == "model":
        path = oi.Model(sizevars={"D": 2}).save(tmp_path / "m.oinf")
    elif kind == "text":
        path.write_text("not a state file\n")
    else:
        with zipfile.ZipFile(path, "w"):
            pass
    exe = oi.Simulator(None, ROOT / "examples" / "kv_decode.oi", sizevars={"D": 2, "T": 1},
                       zero_constants=True).make_executor()  # fmt: skip
    with pytest.raises(oi.StateError) as info:
        exe.load_state(path)
    assert "pickle" not in str(info.value).replace("pickled", "")
    assert "allow_pickle" not in str(info.value)


# --- 15d: xdsl-opt reads .oi files (the plugin registers with it) ------------------------------------


def xdsl_opt(*argv, cwd=None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "xdsl.tools.xdsl_opt", *map(str, argv)],
                          capture_output=True, text=True, timeout=120, cwd=cwd)  # fmt: skip


def test_xdsl_opt_reads_oi_files() -> None:
    result = xdsl_opt(ROOT / "examples" / "kv_decode.oi", "-p", "bind-sizes{D=4 T=8},lower-ops")
    assert result.returncode == 0, result.stderr
    assert "oi.kernel matmul(@x, @Wq) -> @q" in result.stdout


def test_xdsl_opt_bad_oi_file_is_one_diagnostic(tmp_path) -> None:
    path = tmp_path / "bad.oi"
    path.write_text("volatile { x: f32[4] @init(1.0) @init(2.0); }\nblock entry { return; }\n")
    result = xdsl_opt(path)
    assert result.returncode == 1 and result.stdout == ""
    assert one_line(result.stderr) == f"{path}:1:34: error: duplicate @init attribute"


def test_the_oi_reader_is_added_only_to_xdsl_opt() -> None:
    """Importing the plugin outside `xdsl-opt` changes nothing of xDSL's."""
    code = "import oi_compiler.universe, sys; print('xdsl.xdsl_opt_main' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"


# --- 15e: a repeated attribute is reported before its value is checked ---------------------------------


@pytest.mark.parametrize(
    ("decl", "message", "at"),
    [
        ("x: f32[4] @init(1) @init(2);", "duplicate @init attribute", "init(2"),  # 1 is not an f32 literal
        ("x: i8 @init(300) @init(2);", "duplicate @init attribute", "init(2"),  # 300 is out of i8's range
        ("x: f32 @init(true) @init(2.0);", "duplicate @init attribute", "init(2"),
        ("x: f32[4] @init(1) @table @table;", "duplicate @table attribute", "table;"),
        ("x: f32[4] @init(1);", "int init requires an integer or bool dtype (write 1.0 for f32)", "1)"),
        ("x: i8 @init(300);", "i8 init out of range", "300"),
        ("x: u8 @init(-1);", "u8 init out of range", "1)"),
    ],
)
def test_repeated_attribute_is_reported_first(decl, message, at) -> None:
    src = f"persistent {{ {decl} }}\nblock entry {{ return; }}\n"
    with pytest.raises(oi.ParseError) as info:
        oi.parse_graph(src, FILE)
    assert info.value.message == message
    assert (info.value.loc.line, info.value.loc.column) == (1, src.index(at) + 1)


@pytest.mark.parametrize(
    ("attrs", "message", "at"),
    [
        ("@init(1.0) @init(2.0)", "duplicate @init attribute", "@init(2"),  # was: the last one kept
        ("@init(1) @init(2.0)", "duplicate @init attribute", "@init(2"),  # 1 is not an f32 literal
        ("@init(1.0) @ref(\"w\") @ref(\"v\")", "duplicate @ref attribute", '@ref("v'),
        ("@init(1)", "int init requires an integer or bool dtype (write 1.0 for f32)", "1)"),
    ],
)
def test_repeated_attribute_in_the_ir_is_reported_first(attrs, message, at) -> None:
    """The IR parser applies the DSL parser's rule (it used to keep the last of two `@init`s)."""
    src = f"oi.graph @g {{\n  oi.var volatile @x : f32[4] {attrs}\n  oi.block @entry {{\n    oi.return\n  }}\n}}\n"
    with pytest.raises(oi.ParseError) as info:
        oi.parse_mlir(src, "g.mlir")
    assert info.value.message == message
    line = src.splitlines()[1]
    assert (info.value.loc.line, info.value.loc.column) == (2, line.index(at) + 1)


def test_a_valid_init_still_parses() -> None:
    graph = oi.parse_graph("persistent { x: i8 @init(-128); y: f32[2] @init(-1.5); z: bool @init(true); } block entry { }")
    assert [v.init_value for v in graph.op.vars] == [-128, -1.5, True]


# --- 18: the public classes say their options -------------------------------------------------------------


@pytest.mark.parametrize(
    ("cls", "words"),
    [
        (oi.Simulator, ['"reference"', '"cpu"', '"cuda"', "sizevars", "zero_constants", "with_trace", "with_timer",
                        "OI_CACHE_DIR", "make_executor"]),
        (oi.Executor, ["insert", "step", "run_step", "fetch", "state", "table_sizes", "trace", "reset",
                       "save_state", "load_state", "lock", 'device="cpu"']),
        (oi.Model, ["Model.open", "max_tensor_bytes", "sizevars", "tensors", "metadata", "dtypes", "quant",
                    "save", "version", ".npz", ".oinf"]),
    ],
)  # fmt: skip
def test_public_classes_document_their_options(cls, words) -> None:
    doc = cls.__doc__ or ""
    assert [w for w in words if w not in doc] == []
