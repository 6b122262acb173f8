"""Inputs a user can type that used to end in an internal error (exit 3) or a crash: each now gives
one `OiError` diagnostic (exit 1 or 2), or runs (hardening issue, item 9).

`--feed` with a long JSON list or a bad/huge `.npy`; attention with head dim 0; deeply nested loops;
integer literals past Python's 4,300-digit limit; huge sizes (`--dims`, `sizevars`, prefix tables,
`@fixed` tables, `@auto_dim` growth); numpy-integer `sizevars`; a closed or full stdout; huge MLIR
types; lossy `insert` conversions.
"""

from __future__ import annotations

import resource
import struct
import subprocess
import sys
import textwrap
import os
from pathlib import Path

import numpy as np
import pytest

import oi_compiler as oi
from tests.example_models import tiny_decoder_oinf
from oi_compiler.dialects.oi import MAX_LOOP_DEPTH
from oi_compiler.frontend.mlir_text import parse_mlir_module
from oi_compiler.tools.oi_opt import main as oi_opt_main
from oi_compiler.tools.oi_run import main as oi_run_main

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
BIN = Path(sys.executable).parent
DEVICES = ["reference", "cpu"]

GRAPH = """\
dynamic { x: f32[D]; }
volatile { y: f32[D]; }
persistent { t: i32 @init(0); A(i): f32[D] @table; }
block entry {
    op add(x, x) >> y;
    cache.write y >> A[t];
    cache.increment t;
    return;
}
"""


@pytest.fixture(autouse=True)
def _no_env_trace(monkeypatch):
    monkeypatch.delenv("OI_TRACE", raising=False)
    monkeypatch.delenv("OPENINFER_TRACE", raising=False)
    monkeypatch.delenv("OI_DEBUG", raising=False)


@pytest.fixture
def graph(tmp_path) -> Path:
    path = tmp_path / "g.oi"
    path.write_text(GRAPH)
    return path


def run(main, capsys, *argv) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def one_line(err: str) -> str:
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert "Traceback" not in err and "internal error" not in err, err
    return lines[0]


def oi_error(call, *args, **kwargs) -> oi.OiError:
    """The `OiError` `call(...)` raises (an internal one fails the test)."""
    with pytest.raises(oi.OiError) as info:
        call(*args, **kwargs)
    assert not isinstance(info.value, oi.InternalError), info.value
    return info.value


def step_error(src: str, device: str, *, sizevars=None, model=None, filename: str = "h.oi") -> oi.OiError:
    """The `OiError` that parsing, binding, building or stepping `src` once raises."""

    def go():
        sim = oi.Simulator(model or oi.Model(), oi.parse_graph(textwrap.dedent(src), filename), device=device,
                           sizevars=sizevars)  # fmt: skip
        sim.make_executor().step()

    return oi_error(go)


def limited_memory():
    """A child's address space capped at 4 GiB: a regression fails fast instead of eating the host."""
    resource.setrlimit(resource.RLIMIT_AS, (4 << 30, 4 << 30))


def npy_file(path: Path, header: bytes, data: bytes = b"") -> Path:
    """A version 1.0 `.npy` file with `header` (padded as numpy pads it) and `data`."""
    header = header + b" " * (-(10 + len(header) + 1) % 64) + b"\n"
    path.write_bytes(b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header + data)
    return path


# --- --feed ----------------------------------------------------------------------------------------


def test_feed_json_list_longer_than_a_file_name(capsys, graph) -> None:
    values = [float(n) for n in range(100)]
    literal = "[" + ",".join(map(str, values)) + "]"
    assert len(literal) > 255  # past NAME_MAX: Path.is_file raised "File name too long"
    code, out, err = run(oi_run_main, capsys, graph, "--dims", "D=100", "--feed", f"x={literal}", "--fetch", "t")
    assert (code, err) == (0, ""), err
    assert "t (scalar) = 1" in out


def test_feed_json_nested_too_deeply_is_a_bad_feed(capsys, graph) -> None:
    code, out, err = run(oi_run_main, capsys, graph, "--dims", "D=3", "--feed", "x=" + "[" * 5000 + "]" * 5000)
    assert code == 2 and out == ""
    assert one_line(err).startswith("oi-run: error: bad --feed value for x:")


@pytest.mark.parametrize(
    ("header", "fragment"),
    [
        (b"{'descr': '<f4', 'fortran_order': False, 'shape': (3,), '''}", "malformed .npy header"),  # TokenError
        (b"{'descr' '''", "malformed .npy header"),
        (b"{'descr': '<f4', 'fortran_order': False, 'shape': (1099511627776, 2), }",
         "its header claims 8796093022208 bytes of data (float32[1099511627776, 2]) but it holds 12"),  # 8 TiB
        (b"{'descr': '<f4', 'fortran_order': False, 'shape': (4,), }", "claims 16 bytes of data"),  # truncated
    ],
)  # fmt: skip
def test_feed_npy_with_a_bad_header(capsys, graph, tmp_path, header, fragment) -> None:
    path = npy_file(tmp_path / "x.npy", header, b"\0" * 12)
    code, out, err = run(oi_run_main, capsys, graph, "--dims", "D=3", "--feed", f"x={path}")
    assert code == 1 and out == ""
    line = one_line(err)
    assert line.startswith(f"{path}: error: cannot read --feed x: ") and fragment in line


def test_feed_npy_still_loads(capsys, graph, tmp_path) -> None:
    np.save(tmp_path / "x.npy", np.array([1, 2, 3], np.float32))
    code, out, err = run(oi_run_main, capsys, graph, "--dims", "D=3", "--feed", f"x={tmp_path / 'x.npy'}", "--fetch", "y")
    assert (code, err) == (0, "")
    assert "y (3) = [2., 4., 6.]" in out


# --- attention with head dim 0 ---------------------------------------------------------------------

ATTENTION = """
dynamic { q: f32[H, Dh]; k: f32[T, H, Dh]; }
volatile { o: f32[H, Dh]; }
block entry { op attention(q, k, k) >> o; }
"""
#: keys read from a table: T is only known at run time on device "cpu"
ATTENTION_READ = """
dynamic { q: f32[H, Dh]; }
volatile { keys: f32[T, H, Dh]; o: f32[H, Dh]; }
persistent { s: i32 @init(1); K(t): f32[H, Dh] @table; }
block entry {
    cache.write q >> K[0];
    cache.read K[0..s] >> keys;
    op attention(q, keys, keys) >> o;
}
"""


@pytest.mark.parametrize("src", [ATTENTION, ATTENTION_READ], ids=["static", "read"])
@pytest.mark.parametrize("device", DEVICES)
def test_attention_with_head_dim_zero(src, device, private_compile_cache) -> None:
    error = step_error(src, device, sizevars={"H": 2, "T": 3, "Dh": 0})
    assert error.message.endswith("op attention needs a head dim of at least one (Dh = 0)")
    assert error.loc is not None and error.loc.line == src.count("\n", 0, src.index("op attention")) + 1


@pytest.mark.parametrize("device", DEVICES)
def test_tiny_decoder_with_head_dim_zero(capsys, device, private_compile_cache, tmp_path) -> None:
    model = tiny_decoder_oinf(tmp_path)  # examples/ has it only after `make demo`
    code, out, err = run(oi_run_main, capsys, EXAMPLES / "tiny_decoder.oi", "--model", model,
                         "--dims", "Dh=0", "--device", device)  # fmt: skip
    assert code == 1 and out == ""
    assert "error: " in one_line(err)  # the model's shapes no longer fit: one diagnostic, no internal error


# --- nested loops ----------------------------------------------------------------------------------


def nested_loops(depth: int) -> str:
    heads = "".join(f"    loop l{n} (i{n} in 0..1) {{\n" for n in range(depth))
    return f"persistent {{ t: i32 @init(0); }}\nblock entry {{\n{heads}    cache.increment t;\n{'}' * depth}\n}}\n"


def test_the_loop_depth_limit_is_documented() -> None:
    assert MAX_LOOP_DEPTH == 64
    assert "loops nest too deeply: more than 64 levels" in (ROOT / "docs" / "verify_rules.md").read_text()


@pytest.mark.parametrize("device", DEVICES)
def test_loops_nested_to_the_limit_run(device, private_compile_cache) -> None:
    graph = oi.parse_graph(nested_loops(MAX_LOOP_DEPTH), "deep.oi")
    exe = oi.Simulator(oi.Model(), graph, device=device).make_executor()
    exe.step()
    assert int(exe.fetch("t")) == 1


@pytest.mark.parametrize("depth", [MAX_LOOP_DEPTH + 1, 150, 200, 330])
def test_loops_nested_past_the_limit_are_refused(depth) -> None:
    error = oi_error(oi.parse_graph, nested_loops(depth), "deep.oi")
    assert isinstance(error, oi.ParseError)  # the front end refuses it before recursing deeper
    assert error.message == "loops nest too deeply: more than 64 levels"
    assert str(error.loc) == f"deep.oi:{MAX_LOOP_DEPTH + 3}:5"  # the first loop past the limit


@pytest.mark.parametrize("main", [oi_run_main, oi_opt_main], ids=["oi-run", "oi-opt"])
@pytest.mark.parametrize("depth", [150, 200])
def test_tools_refuse_deep_loops(capsys, tmp_path, main, depth) -> None:
    path = tmp_path / "deep.oi"
    path.write_text(nested_loops(depth))
    code, out, err = run(main, capsys, path, *(["--device", "cpu"] if main is oi_run_main else []))
    assert code == 1 and out == ""
    assert one_line(err) == f"{path}:{MAX_LOOP_DEPTH + 3}:5: error: loops nest too deeply: more than 64 levels"


def test_mlir_loops_nested_past_the_limit_are_refused(tmp_path) -> None:
    depth = MAX_LOOP_DEPTH + 1
    loops = "".join(f"oi.loop l{n} (i{n} in 0 to 1) {{\n" for n in range(depth))
    path = tmp_path / "deep.mlir"
    path.write_text(f"builtin.module {{\noi.graph @g {{\noi.block @entry {{\n{loops}{'}' * depth}\noi.return\n}}\n}}\n}}\n")
    error = oi_error(oi.Graph.load, path)
    assert isinstance(error, oi.VerifyError)
    assert error.message == "loops nest too deeply: more than 64 levels"
    assert str(error.loc) == f"{path}:{MAX_LOOP_DEPTH + 4}:1"


# --- integer literals and huge sizes ---------------------------------------------------------------


@pytest.mark.parametrize(
    "src",
    [
        "persistent { t: i32 @init(" + "9" * 5000 + "); } block entry { }",
        "persistent { t: i32 @init(0); } block entry { loop l (i in 0.." + "9" * 5000 + ") { } }",
    ],
)
def test_integer_literal_past_pythons_digit_limit(src) -> None:
    error = oi_error(oi.parse_graph, src, "big.oi")
    assert isinstance(error, oi.ParseError)
    assert error.message == "integer literal too long (5000 digits)"
    assert str(error.loc) == f"big.oi:1:{src.index('9' * 5000) + 1}"


@pytest.mark.parametrize("device", DEVICES)
def test_fixed_size_past_64_bits(device) -> None:
    src = "persistent { t: i32 @init(0); K(p): f32[2] @table @fixed(p=100000000000000000000000); } block entry { }"
    error = step_error(src, device, filename="f.oi")
    assert error.message == "fixed size 100000000000000000000000 for p is out of range (at most 2**63 - 1)"
    assert str(error.loc) == "f.oi:1:60"


@pytest.mark.parametrize("value", ["100000000000000000000000", "18446744073709551616"])
def test_huge_dims_on_the_command_line(capsys, graph, value) -> None:
    code, out, err = run(oi_run_main, capsys, graph, "--dims", f"D={value}")
    assert code == 2 and out == ""
    assert one_line(err) == "oi-run: error: bad --dims: size D must be below 2**64"


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("value", [10**23, 2**64, -1, np.int64(-1), 2.5, np.float64(2.0), True, "2", None])
def test_sizevars_that_are_not_sizes_are_refused(device, value) -> None:
    error = step_error(GRAPH, device, sizevars={"D": value})
    assert isinstance(error, oi.OptionError)
    assert error.message == f"sizevar 'D' must be an integer in [0, 2**64), got {value!r}"


@pytest.mark.parametrize("value", ["2", None, -1, 2.0])
def test_graph_verify_checks_its_sizevars(value) -> None:
    """`Graph.verify(sizevars=...)` applies the Simulator's rule (a string or None was an internal
    error, -1 and 2.0 were taken)."""
    with pytest.raises(oi.OptionError, match=r"sizevar 'D' must be an integer in \[0, 2\*\*64\)"):
        oi.parse_graph(GRAPH, verify=False).verify(sizevars={"D": value})


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("value", [np.int64(2), np.uint8(2), np.intp(2)])
def test_numpy_integer_sizevars(device, value, private_compile_cache) -> None:
    exe = oi.Simulator(oi.Model(), oi.parse_graph(GRAPH), device=device, sizevars={"D": value}).make_executor()
    exe.insert(x=np.array([1, 2], np.float32)).step()
    np.testing.assert_array_equal(exe.fetch("y"), [2, 4])
    assert type(exe.bound.sizevars["D"]) is int


PREFIX = """
constant { P(l): f32[2] @pattern("layer.{l}.p"); }
volatile { y: f32[2]; }
block entry { op add(P[0], P[0]) >> y; }
"""


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("index", ["99999999999999999999", "9" * 5000, "007"])
def test_prefix_table_model_keys_no_index_reaches(device, index, private_compile_cache) -> None:
    model = oi.Model(tensors={"layer.0.p": np.ones(2, np.float32), f"layer.{index}.p": np.ones(2, np.float32)})
    exe = oi.Simulator(model, oi.parse_graph(PREFIX), device=device).make_executor()
    exe.step()
    np.testing.assert_array_equal(exe.fetch("y"), [2, 2])


def test_cpu_prefix_table_of_a_huge_model_index(private_compile_cache) -> None:
    model = oi.Model(tensors={"layer.0.p": np.ones(2, np.float32), "layer.1000000000000000.p": np.ones(2, np.float32)})
    error = step_error(PREFIX, "cpu", model=model)
    assert error.message.startswith("prefix table P: the model's indices up to [1000000000000000] are too many "
                                    "for device 'cpu'")  # fmt: skip
    exe = oi.Simulator(model, oi.parse_graph(PREFIX), device="reference").make_executor()  # a lookup per index
    exe.step()


@pytest.mark.parametrize("device", DEVICES)
def test_huge_fixed_table_of_empty_entries(device, private_compile_cache) -> None:
    src = "persistent { t: i32 @init(0); K(p): f32[0] @table @fixed(p=1000000000000000); } block entry { }"
    error = step_error(src, device)  # cpu: its table of which entries are present (a byte each)
    assert device == "reference" or error.message == "persistent K: cannot allocate u8[1000000000000000]: out of memory"
    assert device == "reference" or error.loc is not None  # at the declaration


AUTO_DIM = """
volatile { y: f32[2]; }
persistent { n: i64 @init(N); M(a): f32[2] @auto_dim(a); }
block entry { cache.read M[n] >> y; }
"""


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("count", [10**15, 2**62, 2**63 - 1])
def test_auto_dim_growth_to_a_huge_count(device, count, private_compile_cache) -> None:
    exe = oi.Simulator(oi.Model(), oi.parse_graph(AUTO_DIM.replace("N", str(count))), device=device).make_executor()
    error = oi_error(exe.step)
    assert "out of memory" in error.message
    assert exe.table_sizes("M") == [0] and exe.state("M").shape == (2,)  # nothing grew


# --- a closed or full standard output --------------------------------------------------------------


def tool(name: str) -> str:
    path = BIN / name
    if not path.exists():
        pytest.skip(f"{name} is not installed next to {sys.executable}")
    return str(path)


def test_oi_run_into_a_closed_pipe_stops_quietly(graph) -> None:
    argv = [tool("oi-run"), str(graph), "--dims", "D=3", "--steps", "3000", "--fetch", "y", "t"]
    with subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE) as proc:
        assert proc.stdout.readline() == b"step 0\n"
        proc.stdout.close()  # as `| head -1` does
        err = proc.stderr.read().decode()
        assert proc.wait(timeout=60) == 141
    assert err == ""


@pytest.mark.parametrize("name", ["oi-run", "oi-opt"])
def test_help_into_a_full_disk_or_a_closed_output_is_an_error(graph, name) -> None:
    """argparse swallows the error of writing `--help` (the tools exited 0 silently), and a closed
    standard output made the error report itself fail with tracebacks."""
    if Path("/dev/full").exists():
        with open("/dev/full", "w") as full:
            proc = subprocess.run([tool(name), "--help"], stdout=full, stderr=subprocess.PIPE, text=True, timeout=60,
                                  check=False)  # fmt: skip
        assert (proc.returncode, one_line(proc.stderr)) == (1, f"{name}: error: No space left on device")
    run_args = ["--dims", "D=3", "--steps", "1", "--fetch", "y"] if name == "oi-run" else []
    for argv in (["--help"], [str(graph), *run_args]):
        proc = subprocess.run([tool(name), *argv], stderr=subprocess.PIPE, text=True, timeout=60, check=False,
                              preexec_fn=lambda: os.close(1))  # fmt: skip
        assert (proc.returncode, one_line(proc.stderr)) == (1, f"{name}: error: standard output is closed"), argv


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="no /dev/full")
@pytest.mark.parametrize(
    ("name", "argv"),
    [("oi-run", ["--dims", "D=3", "--steps", "3", "--fetch", "y"]),  # small: fails at the last flush
     ("oi-run", ["--dims", "D=3", "--steps", "3000", "--fetch", "y"]),  # fails while printing
     ("oi-opt", [])],
)  # fmt: skip
def test_a_full_disk_is_one_line(graph, name, argv) -> None:
    with open("/dev/full", "w") as full:
        proc = subprocess.run([tool(name), str(graph), *argv], stdout=full, stderr=subprocess.PIPE, text=True, timeout=60,
                              check=False)
    assert proc.returncode == 1
    assert one_line(proc.stderr) == f"{name}: error: No space left on device"


# --- huge MLIR types -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('"test.op"() {a = 1 : i64000000000} : () -> ()', "1:22: error: integer type i64000000000 is wider than 16777215 bits"),
        ("func.func @f(%a: i64000000000) {\n  func.return\n}", "1:18: error: integer type i64000000000 is wider than"),
        ('"test.op"() {a = array<i64000000000: 1>} : () -> ()', "error: integer type i64000000000 is wider than"),
        ('"test.op"() {a = dense<1.0> : tensor<10000000000xf32>} : () -> ()',
         "1:31: error: dense literal of 10000000000 elements (more than 16777216)"),
        ('"test.op"() {a = dense<"0x0000803F"> : vector<100000x100000xf32>} : () -> ()', "dense literal of 10000000000"),
        ('"test.op"() {a = dense<1.0> : tensor<99999999999999999999999xf32>} : () -> ()',
         "1:38: error: dimension 99999999999999999999999 is larger than 9223372036854775807"),
        ("func.func @f(%a: memref<99999999999999999999xf32>) {\n  func.return\n}", "dimension 99999999999999999999 is larger"),
        # few elements but wide ones: 16M x 16M bits (it ran past two minutes), 4096 x 16M bits (20 s)
        ('"test.op"() {a = dense<1> : tensor<16777216xi16777215>} : () -> ()',
         "1:29: error: dense literal of 16777216 elements of 16777215 bits (more than 134217728 bytes)"),
        ('"test.op"() {a = dense<1> : tensor<4096xi16777215>} : () -> ()', "dense literal of 4096 elements of 16777215 bits"),
    ],
)  # fmt: skip
def test_huge_mlir_types_are_refused_before_anything_is_built(tmp_path, text, message) -> None:
    path = tmp_path / "w.mlir"
    path.write_text(text + "\n")
    proc = subprocess.run([sys.executable, "-m", "oi_compiler.tools.oi_opt", str(path)], capture_output=True,
                          text=True, timeout=60, preexec_fn=limited_memory, check=False)  # fmt: skip
    assert proc.returncode == 1, proc.stderr
    line = one_line(proc.stderr)
    assert line.startswith(f"{path}:") and message in line


def test_mlir_types_within_the_limits_still_parse() -> None:
    text = '"test.op"() {a = 1 : i16777215, b = dense<1.0> : tensor<4x4xf32>} : () -> ()'
    assert "i16777215" in str(parse_mlir_module(text))


# --- lossy insert ----------------------------------------------------------------------------------

INSERT = """
dynamic { xf: f32[2]; xi: i32[2]; xb: bool[2]; x64: i64[2]; xu: u64[2]; s: bool; }
block entry { }
"""


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("xf", [1 + 2j, 3], "insert xf: f32 takes real values, got complex values with an imaginary part"),
        ("xf", np.array([1, 2j]), "insert xf: f32 takes real values"),
        ("xi", [3, 1 + 2j], "insert xi: i32 takes real values"),
        ("s", 1j, "insert s: bool takes real values"),
        ("xb", [2**70, 1], "insert xb: a value is out of range for bool (0..1)"),
        ("s", 2**70, "insert s: a value is out of range for bool (0..1)"),
        ("xi", [2**70, 1], "insert xi: a value is out of range for i32"),
        ("x64", [2**63, 0], "insert x64: a value is out of range for i64"),  # a float64 array that rounds to 2**63
        ("x64", [2**63 - 1, 1.5], "insert x64: i64 takes integers"),
        ("xu", [2**64, 0], "insert xu: a value is out of range for u64"),
        ("xu", [-1, 2**64 - 1], "insert xu: a value is out of range for u64"),
        ("xb", np.array([2**70, 0.5], dtype=object), "insert xb: bool takes integers, got 0.5"),
    ],
)  # fmt: skip
def test_lossy_inserts_are_refused(device, name, value, message, private_compile_cache) -> None:
    exe = oi.Simulator(oi.Model(), oi.parse_graph(INSERT), device=device).make_executor()
    error = oi_error(exe.insert, **{name: value})
    assert isinstance(error, oi.ExecutionError)
    assert error.message.startswith(message)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize(
    ("name", "value", "expected"),
    [
        ("xf", np.array([1 + 0j, 2]), [1, 2]),
        ("xi", [2 + 0j, 3.0], [2, 3]),
        ("xb", np.array([1, 0], np.int64), [True, False]),
        ("xb", [True, False], [True, False]),
        ("x64", [2**62, -(2**63)], [2**62, -(2**63)]),
        ("xu", np.array([2**64 - 1, 0], dtype=object), [2**64 - 1, 0]),
        ("xf", [2**70, 1], [2.0**70, 1]),  # a float dtype takes any real number (rounded)
    ],
)  # fmt: skip
def test_exact_inserts_still_work(device, name, value, expected, private_compile_cache) -> None:
    exe = oi.Simulator(oi.Model(), oi.parse_graph(INSERT), device=device).make_executor()
    exe.insert(**{name: value})
    exe.step()
    assert exe.fetch(name).tolist() == expected
