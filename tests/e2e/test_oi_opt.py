"""`oi-opt`: exit codes, one-line diagnostics for every kind of bad input, pass flags in command-line order,
options, -o, --split-input-file, --verify-diagnostics, --print-ir-after-all, --time-passes,
--load-pass-plugin, --dump-stages, the lowering pipeline end to end, and the console script's start-up time."""

from __future__ import annotations

import io
import shutil
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
from xdsl.passes import ModulePass

import oi_compiler as oi
from oi_compiler.tools.oi_opt import main

ROOT = Path(__file__).resolve().parents[2]
KV_DECODE = ROOT / "examples" / "kv_decode.oi"
LAYERS = ROOT / "examples" / "layers.oi"
TINY_DECODER = ROOT / "examples" / "tiny_decoder.oi"
TINY_SIZES = "--bind-sizes=D=32 H=4 Hk=2 Dh=8 F=64 NV=48 L=2 T=64"
CUSTOM_PASS = ROOT / "examples" / "custom_pass.py"


pytestmark = pytest.mark.usefixtures("restore_pass_registry")


def run(capsys, *argv: str | Path) -> tuple[int, str, str]:
    rc = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return rc, out, err


def assert_one_line(err: str) -> str:
    assert "Traceback" not in err
    lines = err.splitlines()
    assert len(lines) == 1 and err.endswith("\n"), err
    return lines[0]


def oi_opt_command() -> list[str]:
    script = Path(sys.executable).with_name("oi-opt")
    if script.exists():
        return [str(script)]
    found = shutil.which("oi-opt")
    return [found] if found else [sys.executable, "-m", "oi_compiler.tools.oi_opt"]


def run_subprocess(*argv: str | Path, stdin: str | None = None, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run(
        [*oi_opt_command(), *map(str, argv)], input=stdin, capture_output=True, text=True, timeout=timeout, cwd=ROOT
    )


# --- recording passes, registered per test ---------------------------------------------------

RECORD: list[str] = []


@dataclass(frozen=True)
class RecA(ModulePass):
    """Records that it ran."""

    name = "rec-a"
    tag: str = ""

    def apply(self, ctx, module) -> None:
        RECORD.append(self.name + (f":{self.tag}" if self.tag else ""))


@dataclass(frozen=True)
class RecB(ModulePass):
    """Records that it ran, too."""

    name = "rec-b"

    def apply(self, ctx, module) -> None:
        RECORD.append(self.name)


@pytest.fixture
def recorders():
    RECORD.clear()
    oi.register_pass(RecA, replace=True)
    oi.register_pass(RecB, replace=True)
    yield RECORD
    RECORD.clear()


# --- success and exit codes ---------------------------------------------------------------------


def test_prints_the_ir(capsys) -> None:
    rc, out, err = run(capsys, KV_DECODE)
    assert (rc, err) == (0, "")
    assert out.startswith("builtin.module {\n  oi.graph @kv_decode {\n")
    assert "    oi.var persistent @K(pos) : f32[1, D] @table @fixed(pos = 1024)\n" in out
    assert "      oi.cache.read @K[0:t] -> @keys\n" in out
    assert "      oi.cache.increment 1 @t\n" in out


def test_output_reads_back_identically(capsys, tmp_path: Path) -> None:
    _, first, _ = run(capsys, KV_DECODE)
    (tmp_path / "a.mlir").write_text(first)
    rc, second, err = run(capsys, tmp_path / "a.mlir")
    assert (rc, err, second) == (0, "", first)
    _, generic, _ = run(capsys, KV_DECODE, "--mlir-print-op-generic")
    assert '"oi.cache.write"()' in generic
    (tmp_path / "g.mlir").write_text(generic)
    rc, third, err = run(capsys, tmp_path / "g.mlir")
    assert (rc, err, third) == (0, "", first)


def test_debuginfo_locations(capsys, tmp_path: Path) -> None:
    rc, out, _ = run(capsys, KV_DECODE, "--mlir-print-debuginfo")
    assert rc == 0
    text = KV_DECODE.read_text().splitlines()
    line = next(i for i, t in enumerate(text, 1) if "cache.increment t;" in t)
    col = text[line - 1].index("cache.increment") + 1
    assert f'oi.cache.increment 1 @t loc("{KV_DECODE}":{line}:{col})' in out
    (tmp_path / "d.mlir").write_text(out)
    rc, again, _ = run(capsys, tmp_path / "d.mlir", "--mlir-print-debuginfo")
    assert rc == 0 and f'oi.cache.increment 1 @t loc("{KV_DECODE}":{line}:{col})' in again


def test_stdin_is_read_as_mlir(capsys, monkeypatch) -> None:
    _, mlir, _ = run(capsys, KV_DECODE)
    for argv in ([], ["-"]):
        monkeypatch.setattr(sys, "stdin", io.StringIO(mlir))
        rc, out, err = run(capsys, *argv)
        assert (rc, err, out) == (0, "", mlir)


def test_verify_error_exit_1(capsys, tmp_path: Path) -> None:
    path = tmp_path / "bad.oi"
    path.write_text("persistent { K(i): f32[4] @table; }\nvolatile { x: f32[4]; }\nblock entry {\n    cache.read K >> x;\n}\n")
    rc, out, err = run(capsys, path)
    assert rc == 1 and out == ""
    assert assert_one_line(err) == f"{path}:4:5: error: cache table K requires indices"


def test_verify_error_in_mlir_has_the_op_location(capsys, tmp_path: Path) -> None:
    path = tmp_path / "bad.mlir"
    path.write_text(
        "builtin.module {\n  oi.graph @g {\n    oi.var persistent @K(i) : f32[4] @table\n"
        "    oi.var volatile @x : f32[4]\n    oi.block @entry {\n      oi.cache.read @K -> @x\n    }\n  }\n}\n"
    )
    rc, _, err = run(capsys, path)
    assert rc == 1
    assert assert_one_line(err) == f"{path}:6:7: error: cache table K requires indices"


def test_unknown_flag_exit_2(capsys) -> None:
    rc, out, err = run(capsys, KV_DECODE, "--no-such-flag")
    assert rc == 2 and out == ""
    assert assert_one_line(err) == "oi-opt: error: unrecognized arguments: --no-such-flag"


def test_unknown_target_exit_2(capsys) -> None:
    rc, _, err = run(capsys, KV_DECODE, "-t", "spirv")
    assert rc == 2
    assert assert_one_line(err).startswith("oi-opt: error: unknown target 'spirv'")


@pytest.mark.parametrize(
    "argv",
    [
        ["--cse=foo=1"],
        ["-p", "no-such-pass"],
        ["-p", "cse{x=1}"],
        ["--rec-a=nope=1"],
        ["--load-pass-plugin", "no/such/plugin.py"],
        ["-p"],
    ],
)
def test_bad_pass_option_exit_2(capsys, recorders, argv: list[str]) -> None:
    rc, out, err = run(capsys, KV_DECODE, *argv)
    assert rc == 2 and out == ""
    assert assert_one_line(err).startswith("oi-opt: error: ")
    assert recorders == []


def test_bad_typed_option_of_a_plugin_pass(capsys) -> None:
    rc, _, err = run(capsys, LAYERS, "--load-pass-plugin", CUSTOM_PASS, "--unroll-constant-loops=max_trip_count=abc")
    assert rc == 2
    assert assert_one_line(err).startswith("oi-opt: error: invalid pass pipeline")


@pytest.mark.parametrize("argv", [["-p", "cse{"], ["--rec-a=tag=x,y=1"], ["-p", ","]])
def test_malformed_pipeline_is_one_line_exit_2(capsys, recorders, argv: list[str]) -> None:
    try:
        rc, _, err = run(capsys, KV_DECODE, *argv)
    except BaseException as e:  # noqa: BLE001 - what escapes is the bug
        pytest.fail(f"escaped: {type(e).__name__}")
    assert rc == 2
    assert_one_line(err)


# --- malformed input of every flavour: one line on stderr, never a traceback ----------------------------


def malformed_inputs(tmp_path: Path) -> dict[str, Path]:
    files = {
        "binary.oi": bytes(range(256)) * 4,
        "binary.mlir": b"\xff\xfe\x00garbage\x80\x81",
        "empty.oi": b"",
        "blank.oi": b"  \n\n",
        "unterminated_comment.oi": b"block entry {\n  /* /* nested */ never closed\n}\n",
        "unterminated_string.oi": b'constant { W(l): f32 @pattern("w.{l}); }\n',
        "unknown_op.mlir": b'builtin.module {\n  "test.frobnicate"() : () -> ()\n}\n',
        "unknown_oi_op.mlir": b"builtin.module {\n  oi.frob @x\n}\n",
        "bad_syntax.mlir": b"builtin.module {\n  oi.graph @g {\n    oi.var nowhere @x : f32\n  }\n}\n",
        "truncated.mlir": b"builtin.module {\n  oi.graph @g {\n    oi.block @entry {\n",
        "not_a_graph.oi": b"fn main() { println!(\"hi\"); }\n",
        "nul.oi": b"block entry { \x00 }",
    }
    out = {}
    for name, data in files.items():
        (tmp_path / name).write_bytes(data)
        out[name] = tmp_path / name
    (tmp_path / "a_directory.oi").mkdir()
    out["a_directory.oi"] = tmp_path / "a_directory.oi"
    out["missing.oi"] = tmp_path / "missing.oi"
    out["missing.mlir"] = tmp_path / "missing.mlir"
    return out


def test_malformed_inputs_give_one_line(capsys, tmp_path: Path) -> None:
    for name, path in malformed_inputs(tmp_path).items():
        rc, out, err = run(capsys, path)
        assert rc == 1, (name, rc, err)
        line = assert_one_line(err)
        assert line.startswith(str(path)), (name, line)
        assert ": error: " in line, (name, line)
        assert out == "", name


def test_file_problems_are_named(capsys, tmp_path: Path) -> None:
    inputs = malformed_inputs(tmp_path)
    _, _, err = run(capsys, inputs["missing.oi"])
    assert err == f"{inputs['missing.oi']}: error: cannot read input: No such file or directory\n"
    _, _, err = run(capsys, inputs["a_directory.oi"])
    assert err == f"{inputs['a_directory.oi']}: error: cannot read input: Is a directory\n"
    _, _, err = run(capsys, inputs["binary.oi"])
    assert err == f"{inputs['binary.oi']}: error: input is not UTF-8 text\n"
    _, _, err = run(capsys, inputs["unterminated_comment.oi"])
    assert err == f"{inputs['unterminated_comment.oi']}:2:3: error: unterminated block comment\n"


def test_every_truncation_of_kv_decode(capsys, tmp_path: Path) -> None:
    text = KV_DECODE.read_text()
    path = tmp_path / "t.oi"
    for offset in range(0, len(text) - 1, 7):
        path.write_text(text[:offset])
        rc, out, err = run(capsys, path)
        assert rc == 1, (offset, err)
        line = assert_one_line(err)
        assert line.startswith(f"{path}:") and ": error: " in line, (offset, line)
        assert "internal error" not in line, (offset, line)
        assert out == ""


def test_every_truncation_of_printed_ir(capsys, tmp_path: Path) -> None:
    _, mlir, _ = run(capsys, LAYERS)
    path = tmp_path / "t.mlir"
    for offset in range(1, len(mlir.rstrip()) - 1, 5):
        path.write_text(mlir[:offset])
        rc, _, err = run(capsys, path)
        assert rc == 1, (offset, err)
        line = assert_one_line(err)
        assert ": error: " in line and "internal error" not in line, (offset, line)


def test_non_ascii_in_oi_input(capsys, tmp_path: Path) -> None:
    path = tmp_path / "u.oi"
    path.write_text("block entry {\n  é;\n}\n")
    rc, _, err = run(capsys, path)
    assert rc == 1
    assert assert_one_line(err) == f"{path}:2:3: error: unexpected character `é`"


def test_non_ascii_digit_in_mlir_input(capsys, tmp_path: Path) -> None:
    path = tmp_path / "u.mlir"
    path.write_text("builtin.module {\n  oi.graph @g {\n    oi.var dynamic @x : f32[\u00b21]\n  }\n}\n")
    rc, _, err = run(capsys, path)
    assert rc == 1
    assert "internal error" not in assert_one_line(err)


def test_unterminated_string_first_in_mlir(capsys, tmp_path: Path) -> None:
    path = tmp_path / "s.mlir"
    path.write_text('"builtin.module() ({\n}) : () -> ()\n')
    rc, _, err = run(capsys, path)
    assert rc == 1
    assert assert_one_line(err).startswith(f"{path}:1:1: error: ")


class _TimedOut(BaseException):  # not swallowed by main()'s catch-all
    pass


def test_unterminated_string_in_mlir_does_not_hang(capsys, tmp_path: Path) -> None:
    import signal

    path = tmp_path / "hang.mlir"
    path.write_text('builtin.module attributes {a = "' + "x" * 60 + "\n}\n")

    def on_alarm(*_):
        raise _TimedOut

    previous = signal.signal(signal.SIGALRM, on_alarm)
    signal.setitimer(signal.ITIMER_REAL, 2.0)
    try:
        rc, _, err = run(capsys, path)
    except _TimedOut:
        pytest.fail("oi-opt did not finish in 2 s")
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
    assert rc == 1
    assert assert_one_line(err).startswith(f"{path}:1:32: error: ")


def test_malformed_input_via_console_script(tmp_path: Path) -> None:
    inputs = malformed_inputs(tmp_path)
    for name in ("binary.oi", "unknown_op.mlir", "a_directory.oi"):
        proc = run_subprocess(inputs[name])
        assert proc.returncode == 1, (name, proc.stderr)
        assert proc.stdout == ""
        line = assert_one_line(proc.stderr)
        assert line.startswith(str(inputs[name])) and ": error: " in line


def test_unknown_op_in_mlir(capsys, tmp_path: Path) -> None:
    path = malformed_inputs(tmp_path)["unknown_op.mlir"]
    _, _, err = run(capsys, path)
    line = assert_one_line(err)
    assert line.startswith(f"{path}:2:") and "test.frobnicate" in line


# --- --help ---------------------------------------------------------------------------------------


def test_help_lists_passes(capsys) -> None:
    rc, out, err = run(capsys, "--help")
    assert (rc, err) == (0, "")
    for name in ("canonicalize", "cse", "dce"):
        assert f"  --{name} " in out
    for flag in ("--split-input-file", "--verify-diagnostics", "--print-ir-after-all", "--time-passes",
                 "--dump-stages", "--load-pass-plugin", "--mlir-print-op-generic", "--mlir-print-debuginfo", "-o"):
        assert flag in out


def test_help_lists_plugin_passes_with_options(capsys) -> None:
    rc, out, _ = run(capsys, "--load-pass-plugin", CUSTOM_PASS, "-h")
    assert rc == 0
    assert "--unroll-constant-loops" in out
    assert "max_trip_count: int = 64" in out


def test_help_via_console_script_is_fast() -> None:
    times = []
    for _ in range(3):
        start = time.perf_counter()
        proc = run_subprocess("--help")
        times.append(time.perf_counter() - start)
        assert proc.returncode == 0 and proc.stderr == ""
        assert "--canonicalize" in proc.stdout and "--cse" in proc.stdout and "--dce" in proc.stdout
    assert statistics.median(times) < 1.0, times


def test_help_does_not_import_xdsl() -> None:
    code = "import sys; from oi_compiler.tools.oi_opt import main; main(['--help']); assert 'xdsl' not in sys.modules"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr


# --- pass flags -------------------------------------------------------------------------------------


def test_pass_flags_run_in_command_line_order(capsys, recorders) -> None:
    rc, _, err = run(capsys, KV_DECODE, "--rec-a", "--rec-b")
    assert (rc, err) == (0, "")
    assert recorders == ["rec-a", "rec-b"]
    recorders.clear()
    rc, _, _ = run(capsys, KV_DECODE, "--rec-b", "--rec-a")
    assert rc == 0 and recorders == ["rec-b", "rec-a"]


def test_flags_and_pipelines_interleave_in_order(capsys, recorders) -> None:
    rc, _, _ = run(capsys, KV_DECODE, "--rec-b", "-p", "rec-a{tag=p},rec-b", "--rec-a=tag=f", "--cse", "--rec-b")
    assert rc == 0
    assert recorders == ["rec-b", "rec-a:p", "rec-b", "rec-a:f", "rec-b"]


def test_pass_option_syntax(capsys, recorders) -> None:
    rc, _, _ = run(capsys, KV_DECODE, "--rec-a=tag=one", "--pass-pipeline=rec-a{tag=two}", "--pass-pipeline", "rec-a")
    assert rc == 0 and recorders == ["rec-a:one", "rec-a:two", "rec-a"]


def test_passes_run_once_per_chunk(capsys, recorders, tmp_path: Path) -> None:
    text = KV_DECODE.read_text()
    path = tmp_path / "two.oi"
    path.write_text(text + "// -----\n" + text)
    rc, _, _ = run(capsys, path, "--split-input-file", "--rec-a", "--rec-b")
    assert rc == 0 and recorders == ["rec-a", "rec-b", "rec-a", "rec-b"]


def test_passes_do_not_run_on_invalid_input(capsys, recorders, tmp_path: Path) -> None:
    path = tmp_path / "bad.oi"
    path.write_text("block entry { frob; }")
    rc, _, _ = run(capsys, path, "--rec-a")
    assert rc == 1 and recorders == []


def test_canonicalize_cse_dce_keep_the_ir(capsys) -> None:
    _, plain, _ = run(capsys, KV_DECODE)
    rc, out, err = run(capsys, KV_DECODE, "--canonicalize", "--cse", "--dce")
    assert (rc, err, out) == (0, "", plain)
    rc, out, _ = run(capsys, KV_DECODE, "-p", "canonicalize,cse,dce")
    assert (rc, out) == (0, plain)


def test_ir_is_verified_after_each_pass(capsys, tmp_path: Path) -> None:
    plugin = tmp_path / "breaker.py"
    plugin.write_text(
        "from dataclasses import dataclass\n"
        "from xdsl.passes import ModulePass\n"
        "import oi_compiler as oi\n"
        "from oi_compiler.dialects.oi import CacheReadOp\n"
        "from oi_compiler.dialects.oi_attrs import CacheAccessAttr\n\n"
        "@dataclass(frozen=True)\n"
        "class Breaker(ModulePass):\n"
        "    '''Drops the indices of every cache read.'''\n"
        "    name = 'break-reads'\n"
        "    def apply(self, ctx, module):\n"
        "        for op in module.walk():\n"
        "            if isinstance(op, CacheReadOp):\n"
        "                op.src = CacheAccessAttr(op.src.var_name, (), bracketed=False)\n\n"
        "oi.register_pass(Breaker, replace=True)\n"
    )
    rc, out, err = run(capsys, KV_DECODE, "--load-pass-plugin", plugin, "--break-reads")
    assert rc == 1 and out == ""
    assert assert_one_line(err).endswith("error: cache table K requires indices (IR left invalid by --break-reads)")


# --- -o ----------------------------------------------------------------------------------------------


def test_output_file(capsys, tmp_path: Path) -> None:
    _, expected, _ = run(capsys, KV_DECODE)
    target = tmp_path / "out.mlir"
    rc, out, err = run(capsys, KV_DECODE, "-o", target)
    assert (rc, out, err) == (0, "", "")
    assert target.read_text() == expected
    target2 = tmp_path / "out2.mlir"
    rc, _, _ = run(capsys, KV_DECODE, f"--output={target2}")
    assert rc == 0 and target2.read_text() == expected


def test_output_file_unwritable(capsys, tmp_path: Path) -> None:
    rc, out, err = run(capsys, KV_DECODE, "-o", tmp_path / "no" / "such" / "dir" / "out.mlir")
    assert rc == 1 and out == ""
    assert "cannot write output" in assert_one_line(err)


# --- --split-input-file ----------------------------------------------------------------------------

CHUNKS = """\
dynamic { x: f32[4]; }
block entry { return; }
// -----
volatile { y: f32[4]; }
block entry {
  op frob(y) >> y;
}
// -----
dynamic { z: f32[4]; }
block entry { return; }
// -----
persistent { K(i): f32[4] @table; }
volatile { x: f32[4]; }
block entry {
    cache.read K >> x;
}
"""


def test_split_input_file_keeps_separators_and_reports_every_chunk(capsys, tmp_path: Path) -> None:
    path = tmp_path / "chunks.oi"
    path.write_text(CHUNKS)
    rc, out, err = run(capsys, path, "--split-input-file")
    assert rc == 1
    assert err.splitlines() == [f"{path}:6:3: error: unsupported op frob", f"{path}:15:5: error: cache table K requires indices"]
    assert "Traceback" not in err
    assert out.count("// -----\n") == 1
    first, second = out.split("// -----\n")
    assert "@x : f32[4]" in first and "@z" not in first
    assert "@z : f32[4]" in second and "@x" not in second


def test_without_split_the_file_is_one_graph(capsys, tmp_path: Path) -> None:
    path = tmp_path / "chunks.oi"
    path.write_text(CHUNKS)
    rc, _, err = run(capsys, path)
    assert rc == 1
    assert_one_line(err)


def test_split_input_file_mlir(capsys, tmp_path: Path) -> None:
    _, a, _ = run(capsys, KV_DECODE)
    _, b, _ = run(capsys, LAYERS)
    path = tmp_path / "two.mlir"
    path.write_text(a + "// -----\n" + b)
    rc, out, err = run(capsys, path, "--split-input-file")
    assert (rc, err) == (0, "")
    assert out == a + "// -----\n" + b


# --- --verify-diagnostics ----------------------------------------------------------------------------

DIAGNOSTICS = """\
persistent { K(i): f32[4] @table; }
volatile { x: f32[4]; }
// expected-error @+2 {{cache table K requires indices}}
block entry {
    cache.read K >> x;
}
// -----
volatile { x: f32[4]; }
block entry {
    // expected-error @+1 {{unsupported op frob}}
    op frob(x) >> x;
}
// -----
volatile { x: f32[4]; }
block entry {
    op frob(x) >> x; // expected-error {{op frob}}
}
// -----
block entry { return; }
"""


def test_verify_diagnostics_match(capsys, tmp_path: Path) -> None:
    path = tmp_path / "diag.oi"
    path.write_text(DIAGNOSTICS)
    rc, out, err = run(capsys, path, "--split-input-file", "--verify-diagnostics")
    assert (rc, err) == (0, "")
    assert "oi.return" in out


def test_verify_diagnostics_mlir(capsys, tmp_path: Path) -> None:
    path = tmp_path / "diag.mlir"
    path.write_text(
        "builtin.module {\n  oi.graph @g {\n    oi.var persistent @K(i) : f32[4] @table\n"
        "    oi.var volatile @x : f32[4]\n    oi.block @entry {\n"
        "      // expected-error @below {{cache table K requires indices}}\n"
        "      oi.cache.read @K -> @x\n    }\n  }\n}\n"
    )
    rc, _, err = run(capsys, path, "--verify-diagnostics")
    assert (rc, err) == (0, "")


@pytest.mark.parametrize(
    ("old", "new", "problems"),
    [
        (
            "{{cache table K requires indices}}",
            "{{cache table K wants indices}}",
            ["{p}:5:5: error: unexpected error: cache table K requires indices",
             '{p}:3: error: expected error "cache table K wants indices" was not produced'],
        ),
        (
            "// expected-error @+1 {{unsupported op frob}}",
            "// expected-error @+2 {{unsupported op frob}}",
            ["{p}:11:5: error: unexpected error: unsupported op frob",
             '{p}:10: error: expected error "unsupported op frob" was not produced'],
        ),
        (
            "block entry { return; }\n",
            "// expected-error @+1 {{something}}\nblock entry { return; }\n",
            ['{p}:19: error: expected error "something" was not produced'],
        ),
        (
            "// expected-error @+2 {{cache table K requires indices}}\n",
            "\n",
            ["{p}:5:5: error: unexpected error: cache table K requires indices"],
        ),
    ],
    ids=["wrong-message", "wrong-line", "missing-error", "unexpected-error"],
)
def test_verify_diagnostics_mismatch(capsys, tmp_path: Path, old: str, new: str, problems: list[str]) -> None:
    assert old in DIAGNOSTICS
    path = tmp_path / "diag.oi"
    path.write_text(DIAGNOSTICS.replace(old, new))
    rc, _, err = run(capsys, path, "--split-input-file", "--verify-diagnostics")
    assert rc == 1
    assert err.splitlines() == [p.format(p=path) for p in problems]


def test_verify_diagnostics_all_wrong_at_once(capsys, tmp_path: Path) -> None:
    text = DIAGNOSTICS.replace("requires indices}}", "needs indices}}").replace("{{op frob}}", "{{op blob}}")
    path = tmp_path / "diag.oi"
    path.write_text(text)
    rc, _, err = run(capsys, path, "--split-input-file", "--verify-diagnostics")
    assert rc == 1
    assert len(err.splitlines()) == 4 and "Traceback" not in err


# --- --print-ir-after-all, --time-passes ---------------------------------------------------------------


def test_print_ir_after_all_goes_to_stderr(capsys) -> None:
    _, plain, _ = run(capsys, KV_DECODE)
    rc, out, err = run(capsys, KV_DECODE, "--cse", "--dce", "--print-ir-after-all")
    assert rc == 0 and out == plain
    assert err == f"// -----// IR Dump After cse //----- //\n{plain}// -----// IR Dump After dce //----- //\n{plain}"


def test_time_passes_goes_to_stderr(capsys, recorders) -> None:
    _, plain, _ = run(capsys, KV_DECODE)
    rc, out, err = run(capsys, KV_DECODE, "--rec-a", "--cse", "--time-passes")
    assert rc == 0 and out == plain
    assert "Execution time report" in err
    names = [line.split()[-1] for line in err.splitlines() if "%)" in line]
    assert names == ["parse", "verify", "rec-a", "cse", "Total"]


# --- --load-pass-plugin -------------------------------------------------------------------------------


def test_load_pass_plugin_example(capsys) -> None:
    for flags in (["--load-pass-plugin", str(CUSTOM_PASS)], [f"--load-pass-plugin={CUSTOM_PASS}"]):
        rc, out, err = run(capsys, LAYERS, *flags, "--unroll-constant-loops")
        assert (rc, err) == (0, "")
        assert "oi.loop" not in out
        for text in ("oi.op matmul(@x, @W[0]) -> @h", "oi.cache.write @h -> @K[0, t]", "oi.cache.read @K[0, 0:t] -> @hist",
                     "oi.op matmul(@x, @W[1]) -> @h", "oi.cache.write @h -> @K[1, t]", "oi.cache.read @K[1, 0:t] -> @hist"):
            assert text in out
        assert out.index("@K[0, t]") < out.index("@K[1, t]") < out.index("oi.cache.increment 1 @t")


def test_load_pass_plugin_option(capsys) -> None:
    rc, out, _ = run(capsys, LAYERS, "--load-pass-plugin", CUSTOM_PASS, "--unroll-constant-loops=max_trip_count=1")
    assert rc == 0 and "oi.loop layers (l in 0 to 2)" in out


def test_plugin_pass_unknown_without_the_plugin(capsys) -> None:
    rc, _, err = run(capsys, LAYERS, "--unroll-constant-loops")
    assert rc == 2
    assert assert_one_line(err) == "oi-opt: error: unrecognized arguments: --unroll-constant-loops"


def test_load_pass_plugin_twice_in_one_process(capsys) -> None:
    for _ in range(2):
        rc, _, err = run(capsys, LAYERS, "--load-pass-plugin", CUSTOM_PASS, "--unroll-constant-loops")
        assert (rc, err) == (0, "")


def test_console_script_runs_plugin_and_passes() -> None:
    proc = run_subprocess(LAYERS, "--load-pass-plugin", CUSTOM_PASS, "--unroll-constant-loops", "--cse")
    assert proc.returncode == 0, proc.stderr
    assert "oi.loop" not in proc.stdout and "@K[1, t]" in proc.stdout


def test_console_script_exit_codes(tmp_path: Path) -> None:
    assert run_subprocess(KV_DECODE).returncode == 0
    bad = tmp_path / "bad.oi"
    bad.write_text("block entry { frob; }")
    proc = run_subprocess(bad)
    assert proc.returncode == 1
    assert assert_one_line(proc.stderr) == f"{bad}:1:15: error: unsupported node"
    proc = run_subprocess(KV_DECODE, "--frobnicate")
    assert proc.returncode == 2
    assert_one_line(proc.stderr)


# --- --dump-stages and the lowering pipeline ------------------------------------------------------------


def split_stages(out: str) -> list[tuple[str, str]]:
    """(header line, IR) per stage of a --dump-stages output."""
    lines = out.splitlines(keepends=True)
    stages: list[tuple[str, list[str]]] = []
    for line in lines:
        if line.startswith("// ----- after "):
            stages.append((line.rstrip("\n"), []))
        else:
            assert stages, f"text before the first stage header: {line!r}"
            stages[-1][1].append(line)
    return [(header, "".join(body)) for header, body in stages]


def test_dump_stages_prints_the_ir_after_each_stage(capsys) -> None:
    from oi_compiler.pipeline import STEP_STAGES

    rc, out, err = run(capsys, KV_DECODE, "--bind-sizes=D=4", "--dump-stages")
    assert (rc, err) == (0, "")
    stages = split_stages(out)
    assert [h for h, _ in stages] == [f"// ----- after {s.name}: {s.description} -----" for s in STEP_STAGES]
    # each stage's IR is what running the pipeline up to that stage prints; the last is -t llvm's
    flags = ["--bind-sizes=D=4", *(f"--{s.name}" for s in STEP_STAGES[1:-1])]
    for n, (_, ir) in enumerate(stages):
        argv = flags[: n + 1] if n < len(flags) else [*flags, "-t", "llvm"]
        rc, expected, err = run(capsys, KV_DECODE, *argv)
        assert (rc, err) == (0, ""), STEP_STAGES[n].name
        assert ir == expected, STEP_STAGES[n].name
    assert "oi.var volatile @keys : f32[T, 1, 4]" in stages[0][1]
    assert "oi.kernel matmul(@x, " in stages[1][1] and "oi.op matmul" not in stages[1][1]
    assert "oi.graph" not in stages[2][1] and "oi_table.check" in stages[2][1]  # the table level
    assert "oi_table.view %K" in stages[2][1] and "oi_table.view" not in stages[3][1]  # lower-table-storage
    assert "slot ?" in stages[3][1] and "slot ?" not in stages[4][1]  # assign-state-slots
    assert "oi_table.journal" in stages[4][1] and "oi_table.journal" not in stages[5][1]  # lower-undo-log
    assert "oi_table.word" not in stages[6][1] and "oi.error_sites = [#oi_table.site<" in stages[6][1]
    assert "linalg." not in stages[7][1] and "scf.for" in stages[7][1]
    assert 'define i32 @"step"(' in stages[8][1]


def test_dump_stages_takes_bind_sizes_in_either_form(capsys) -> None:
    _, flag, _ = run(capsys, KV_DECODE, "--bind-sizes=D=4", "--dump-stages")
    rc, pipeline, err = run(capsys, KV_DECODE, "--dump-stages", "-p", "bind-sizes{D=4}")
    assert (rc, err, pipeline) == (0, "", flag)


def test_dump_stages_reads_back_stage_by_stage(capsys, tmp_path: Path) -> None:
    _, out, _ = run(capsys, KV_DECODE, "--bind-sizes=D=4", "--dump-stages")
    path = tmp_path / "stages.mlir"
    path.write_text(out)
    path.write_text(out[: out.index("// ----- after llvm:")])  # the MLIR stages; LLVM IR is not MLIR
    rc, again, err = run(capsys, path, "--split-input-file")
    assert (rc, err) == (0, "")
    chunks = again.split("// -----\n")
    assert chunks[0] == "builtin.module {\n}\n"  # before the first header
    assert chunks[1:] == [ir for _, ir in split_stages(out)[:-1]]


def test_dump_stages_with_print_ir_after_all_and_time_passes(capsys) -> None:
    rc, _, err = run(capsys, KV_DECODE, "--bind-sizes=D=4", "--dump-stages", "--print-ir-after-all", "--time-passes")
    assert rc == 0
    dumps = [line for line in err.splitlines() if line.startswith("// -----// IR Dump After")]
    table = ("convert-graph-to-tables", "lower-table-storage", "assign-state-slots", "lower-undo-log", "lower-tables")
    assert dumps == [f"// -----// IR Dump After {name} //----- //" for name in
                     ("bind-sizes", "lower-ops", *table, "lower-nests")]
    names = [line.split()[-1] for line in err.splitlines() if "%)" in line]
    assert names == ["parse", "verify", "bind-sizes", "lower-ops", *table, "lower-nests", "llvm", "Total"]


def test_dump_stages_error_is_one_line_after_the_stages_that_ran(capsys) -> None:
    rc, out, err = run(capsys, KV_DECODE, "--dump-stages")
    assert rc == 1
    line = assert_one_line(err)
    assert line.startswith(f"{KV_DECODE}:") and "run --bind-sizes first" in line
    assert [h for h, _ in split_stages(out)] == [
        "// ----- after bind-sizes: every size variable replaced by its value -----"
    ]


def test_dump_stages_per_chunk_with_verify_diagnostics(capsys, tmp_path: Path) -> None:
    path = tmp_path / "two.oi"
    path.write_text(
        "volatile { x: f32[D]; y: f32[D]; }\nblock entry { op relu(x) >> y; }\n// -----\n"
        "// expected-error @+1 {{run --bind-sizes first}}\nvolatile { x: f32[N]; y: f32[N]; }\n"
        "block entry { op relu(x) >> y; }\n"
    )
    rc, out, err = run(capsys, path, "--split-input-file", "--verify-diagnostics", "--bind-sizes=D=4", "--dump-stages")
    assert (rc, err) == (0, "")
    assert out.count("// ----- after lower-nests:") == 1
    assert out.count("// ----- after bind-sizes:") == 2  # the second chunk's, before its error


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--cse"], "--dump-stages runs the lowering stages (bind-sizes, lower-ops, convert-graph-to-tables, "
                    "lower-table-storage, assign-state-slots, lower-undo-log, lower-tables, lower-nests, llvm) "
                    "and takes no pass flag but --bind-sizes; got --cse"),
        (["-p", "bind-sizes{D=4},lower-ops"], "takes no pass flag but --bind-sizes; got --lower-ops"),
        (["-t", "llvm"], "--dump-stages prints the IR of each stage: it takes no -t other than mlir"),
    ],
)
def test_dump_stages_bad_command_line_exit_2(capsys, argv: list[str], message: str) -> None:
    rc, out, err = run(capsys, KV_DECODE, "--bind-sizes=D=4", "--dump-stages", *argv)
    assert rc == 2 and out == ""
    line = assert_one_line(err)
    assert line.startswith("oi-opt: error: ") and line.endswith(message)


def test_llvm_target_on_a_graph_names_the_lowering_passes(capsys) -> None:
    rc, out, err = run(capsys, KV_DECODE, "-t", "llvm")
    assert rc == 1 and out == ""
    line = assert_one_line(err)
    assert "an oi.graph must be lowered first" in line and "--lower-ops, --lower-cache, --lower-nests" in line


@pytest.mark.parametrize("tile", [[], ["--tile=sizes=8,8,8"], ["--tile=sizes=3,0,5"]], ids=["untiled", "tile-8", "tile-3-0-5"])
def test_tiny_decoder_lowers_to_llvm(capsys, tile: list[str]) -> None:
    rc, out, err = run(capsys, TINY_DECODER, TINY_SIZES, "--lower-ops", "--lower-cache", *tile, "--lower-nests", "-t", "llvm")
    assert (rc, err) == (0, "")
    assert 'define i32 @"step"(' in out


def test_dump_stages_on_a_loop_nest_runs_the_nest_stages(capsys, tmp_path: Path) -> None:
    """A loop nest's IR goes through `pipeline.NEST_STAGES`: what `plan.build()` runs."""
    import oi_compiler as oi
    from oi_compiler.pipeline import NEST_STAGES

    A = oi.Array(role=oi.Role.INPUT, shape=(8, 4))
    B = oi.Array(role=oi.Role.INPUT_OUTPUT, shape=(8, 4))
    nest = oi.Nest((8, 4))
    i, j = nest.get_indices()

    @nest.iteration_logic
    def _():
        B[i, j] += A[i, j]

    schedule = nest.create_schedule()
    schedule.split(i, 4)
    path = tmp_path / "nest.mlir"
    path.write_text(str(schedule.create_plan().module))
    rc, out, err = run(capsys, path, "--dump-stages")
    assert (rc, err) == (0, "")
    stages = split_stages(out)
    assert [h for h, _ in stages] == [f"// ----- after {s.name}: {s.description} -----" for s in NEST_STAGES]
    assert "scf.for" in stages[0][1] and 'define void @"nest"(' in stages[-1][1]
    rc, _, err = run(capsys, path, "--dump-stages", "--bind-sizes=D=4")
    assert rc == 1 and "--dump-stages on a loop nest takes no pass flag" in err


def test_printing_a_graph_does_not_import_numpy() -> None:
    """oi-opt on a `.oi` file needs xDSL, not numpy (its import is a fifth of the start-up: moving the
    sizevars check into `size_vars` once pulled numpy in through the parser)."""
    code = ("import sys; from oi_compiler.tools.oi_opt import main; "
            f"assert main([{str(KV_DECODE)!r}]) == 0; assert 'numpy' not in sys.modules, 'numpy'")  # fmt: skip
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
