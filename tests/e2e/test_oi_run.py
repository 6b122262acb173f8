"""`oi-run` (oi_compiler/tools/oi_run.py): steps, dims, feeds, fetches, traces, state files, and
bad inputs (exactly one diagnostic line on stderr, exit 1 or 2, never a traceback)."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from oi_compiler.tools.oi_run import main

UUID = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"

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

FAILING = """\
dynamic { x: f32[D]; }
persistent { t: i32 @init(0); K(p): f32[D] @table @fixed(p=2); }
block entry {
    cache.write x >> K[t];
    cache.increment t;
}
"""


@pytest.fixture(autouse=True)
def _no_env_trace(monkeypatch):
    """Tests that compare stderr must not see lines printed for OI_TRACE set in the outer environment."""
    monkeypatch.delenv("OI_TRACE", raising=False)
    monkeypatch.delenv("OPENINFER_TRACE", raising=False)


@pytest.fixture
def graph(tmp_path) -> Path:
    path = tmp_path / "g.oi"
    path.write_text(GRAPH)
    return path


def run(capsys, *argv) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def fetched(out: str, name: str) -> list[str]:
    """The printed values of `name`, one string per step."""
    lines = out.splitlines()
    values = []
    for n, line in enumerate(lines):
        if line.startswith(f"  {name} ("):
            text = line.split(" = ", 1)[1]
            # a multi-line array continues on the following unindented lines
            for more in lines[n + 1 :]:
                if more.startswith("step ") or re.match(r"  \w+ \(", more):
                    break
                text += more.strip()
            values.append(text)
    return values


def parse_values(text: str) -> np.ndarray:
    return np.array(eval(text.replace("\n", " ")), dtype=np.float64)  # noqa: S307 - our own printout


def assert_one_diagnostic(err: str) -> str:
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert "Traceback" not in err
    return lines[0]


# --- running ---------------------------------------------------------------------------------------------


def test_steps_and_fetch(capsys, graph) -> None:
    code, out, err = run(capsys, graph, "--dims", "D=3", "--steps", "3", "--fetch", "t", "y")
    assert code == 0 and err == ""
    assert [line for line in out.splitlines() if line.startswith("step")] == ["step 0", "step 1", "step 2"]
    assert fetched(out, "t") == ["1", "2", "3"]
    assert out.splitlines()[1:3] == ["  t (scalar) = 1", "  y (3) = [0., 0., 0.]"]  # in --fetch order


def test_default_is_one_step_and_fetch_nothing(capsys, graph) -> None:
    code, out, err = run(capsys, graph, "--dims", "D=2")
    assert (code, out, err) == (0, "step 0\n", "")


def test_zero_steps(capsys, graph, tmp_path) -> None:
    code, out, err = run(capsys, graph, "--dims", "D=2", "--steps", "0", "--fetch", "t", "--save-state", tmp_path / "s.st")
    assert (code, out, err) == (0, "", "")
    assert (tmp_path / "s.st").is_file()


@pytest.mark.parametrize(
    "dims",
    [["--dims", "D=4"], ["--dims", "D=0x4"], ["--dims", "E=1,D=4"], ["--dims", "D=4 E=2"], ["--dims", "E=1", "--dims", "D=4"],
     ["--dims", "D=2", "--dims", "D=4"]],
)  # fmt: skip
def test_dims_forms(capsys, graph, dims) -> None:
    code, out, err = run(capsys, graph, *dims, "--fetch", "y")
    assert code == 0, err
    assert fetched(out, "y") == ["[0., 0., 0., 0.]"]


def test_feed_npy_same_array_every_step(capsys, graph, tmp_path) -> None:
    x = np.array([1.0, 2.5, -3.0], np.float32)
    np.save(tmp_path / "x.npy", x)
    code, out, err = run(capsys, graph, "--dims", "D=3", "--steps", "2", "--feed", f"x={tmp_path / 'x.npy'}", "--fetch", "y", "A")
    assert code == 0, err
    ys = [parse_values(v) for v in fetched(out, "y")]
    for y in ys:
        np.testing.assert_array_equal(y, 2 * x)
    np.testing.assert_array_equal(parse_values(fetched(out, "A")[-1]), np.stack([2 * x, 2 * x]))


def test_feed_npy_per_step_rows(capsys, graph, tmp_path) -> None:
    xs = np.arange(12, dtype=np.float32).reshape(4, 3)
    np.save(tmp_path / "xs.npy", xs)
    code, out, err = run(capsys, graph, "--dims", "D=3", "--steps", "4", "--feed", f"x={tmp_path / 'xs.npy'}", "--fetch", "y", "A")
    assert code == 0, err
    ys = [parse_values(v) for v in fetched(out, "y")]
    for n, y in enumerate(ys):
        np.testing.assert_array_equal(y, 2 * xs[n])
    np.testing.assert_array_equal(parse_values(fetched(out, "A")[-1]), 2 * xs)


def test_feed_npy_with_a_leading_axis_not_matching_steps_says_the_rule(capsys, graph, tmp_path) -> None:
    np.save(tmp_path / "xs.npy", np.zeros((3, 3), np.float32))
    code, out, err = run(capsys, graph, "--dims", "D=3", "--steps", "2", "--feed", f"x={tmp_path / 'xs.npy'}")
    assert code == 1 and out == ""  # refused before the first step
    assert assert_one_diagnostic(err) == (
        f"{tmp_path / 'xs.npy'}: error: --feed x: an array of shape [3, 3] is neither x's shape [3] (fed every "
        "step) nor [2, 3] (row i at step i, one row per step): it has 3 rows for --steps 2")


@pytest.mark.parametrize(("literal", "expected"), [("[1, 2, 3]", [2, 4, 6]), ("[0.5,-1,1e2]", [1, -2, 200])])
def test_feed_literal_list(capsys, graph, literal, expected) -> None:
    code, out, err = run(capsys, graph, "--dims", "D=3", "--feed", f"x={literal}", "--fetch", "y")
    assert code == 0, err
    np.testing.assert_array_equal(parse_values(fetched(out, "y")[0]), expected)


def test_feed_literal_number_for_a_scalar(capsys, tmp_path) -> None:
    path = tmp_path / "s.oi"
    path.write_text("dynamic { s: i32; f: bool; } volatile { y: i32; } block entry { op add(s, s) >> y; }\n")
    code, out, err = run(capsys, path, "--feed", "s=21", "--feed", "f=true", "--fetch", "y", "f")
    assert code == 0, err
    assert fetched(out, "y") == ["42"] and fetched(out, "f") == ["True"]


def test_trace_lines(capsys, graph) -> None:
    code, out, err = run(capsys, graph, "--dims", "D=2", "--steps", "2", "--trace")
    assert code == 0 and err == ""
    lines = out.splitlines()
    assert lines[0] == "step 0" and lines[5] == "step 1"
    descs = ["op add(x,x) >> y", "cache.write y >> A[t]", "cache.increment t", "return"]
    for n, desc in enumerate(descs):
        for block in (lines[1:5], lines[6:10]):
            assert re.fullmatch(rf"  {n} {UUID} \[entry\] -- {re.escape(desc)} -- \(0ms 0us 0ns\)", block[n]), block[n]
    assert len(lines) == 10
    assert lines[1] == lines[6]  # same node, same uuid in every step


def test_trace_with_timer(capsys, graph) -> None:
    code, out, _ = run(capsys, graph, "--dims", "D=2", "--trace", "--timer")
    assert code == 0
    times = re.findall(r"\((\d+)ms (\d+)us (\d+)ns\)", out)
    assert len(times) == 4 and any(t != ("0", "0", "0") for t in times)


def test_save_and_load_state(capsys, graph, tmp_path) -> None:
    state = tmp_path / "s.st"
    code, out, err = run(capsys, graph, "--dims", "D=2", "--steps", "2", "--feed", "x=[1, 1]", "--save-state", state, "--fetch", "t")
    assert code == 0, err
    assert fetched(out, "t") == ["1", "2"]
    code, out, err = run(capsys, graph, "--dims", "D=2", "--load-state", state, "--feed", "x=[3, 3]", "--fetch", "t", "A",
                         "--save-state", state)  # fmt: skip
    assert code == 0, err
    assert fetched(out, "t") == ["3"]
    np.testing.assert_array_equal(parse_values(fetched(out, "A")[0]), [[2, 2], [2, 2], [6, 6]])
    code, out, err = run(capsys, graph, "--dims", "D=2", "--load-state", state, "--steps", "0")
    assert code == 0
    code, out, err = run(capsys, graph, "--dims", "D=2", "--load-state", state, "--fetch", "t")
    assert fetched(out, "t") == ["4"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["g.oi", "s.st"]


def test_module_entry_point_subprocess(graph) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "oi_compiler.tools.oi_run", str(graph), "--dims", "D=2", "--steps", "2", "--fetch", "t"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "step 0\n  t (scalar) = 1\nstep 1\n  t (scalar) = 2\n"


def test_console_script_subprocess(graph) -> None:
    script = shutil.which("oi-run", path=str(Path(sys.executable).parent)) or shutil.which("oi-run")
    if script is None:
        pytest.skip("the oi-run console script is not installed (reinstall the project: pip install -e .)")
    ok = subprocess.run([script, str(graph), "--dims", "D=2", "--fetch", "t"], capture_output=True, text=True, timeout=60)
    assert ok.returncode == 0, ok.stderr
    assert ok.stdout == "step 0\n  t (scalar) = 1\n"
    bad = subprocess.run([script, str(graph)], capture_output=True, text=True, timeout=60)
    assert bad.returncode == 1
    assert assert_one_diagnostic(bad.stderr).endswith("error: invalid dims for x: unknown size: D")


# --- bad inputs -----------------------------------------------------------------------------------------


def test_missing_graph_file(capsys, tmp_path) -> None:
    code, out, err = run(capsys, tmp_path / "absent.oi")
    assert code == 1 and out == ""
    line = assert_one_diagnostic(err)
    assert line.startswith(str(tmp_path / "absent.oi")) and "No such file or directory" in line


def test_parse_error(capsys, tmp_path) -> None:
    path = tmp_path / "bad.oi"
    path.write_text("block entry {\n    frob;\n}\n")
    code, out, err = run(capsys, path)
    assert code == 1 and out == ""
    assert assert_one_diagnostic(err) == f"{path}:2:5: error: unsupported node"


def test_verify_error(capsys, tmp_path) -> None:
    path = tmp_path / "bad.oi"
    path.write_text("volatile { y: f32; }\nblock entry {\n    cache.increment y;\n}\n")
    code, _, err = run(capsys, path)
    assert code == 1
    assert assert_one_diagnostic(err) == f"{path}:3:5: error: cache operation expects persistent variable, got Volatile y"


def test_missing_dims(capsys, graph) -> None:
    code, _, err = run(capsys, graph)
    assert code == 1
    assert assert_one_diagnostic(err) == f"{graph}:1:11: error: invalid dims for x: unknown size: D"


@pytest.mark.parametrize("names", [["nope"], ["t", "nope"]])
def test_unknown_fetch_name(capsys, graph, names) -> None:
    code, out, err = run(capsys, graph, "--dims", "D=2", "--fetch", *names)
    assert code == 1 and out == ""
    assert assert_one_diagnostic(err) == "--fetch: error: unknown variable: nope"


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("D", "bad --dims: bad entry 'D' (expected NAME=N)"),
        ("D=x", "bad --dims: size D must be an integer, got 'x'"),
        ("D=-1", "bad --dims: size D cannot be negative"),
        ("=3", "bad --dims: bad entry '=3' (expected NAME=N)"),
        ("1D=3", "bad --dims: bad entry '1D=3' (expected NAME=N)"),
        ("D=3.5", "bad --dims: size D must be an integer, got '3.5'"),
    ],
)
def test_bad_dims(capsys, graph, value, message) -> None:
    code, out, err = run(capsys, graph, "--dims", value)
    assert code == 2 and out == ""
    assert assert_one_diagnostic(err) == f"oi-run: error: {message}"


@pytest.mark.parametrize(
    ("feed", "code", "message"),
    [
        ("x", 2, "oi-run: error: bad --feed 'x' (expected NAME=FILE.npy or NAME=VALUE)"),
        ("=1", 2, "oi-run: error: bad --feed '=1' (expected NAME=FILE.npy or NAME=VALUE)"),
        ("x=[1,2", 2, "oi-run: error: bad --feed value for x: '[1,2' (expected a .npy file, a number or a JSON list)"),
        ("x=abc", 2, "oi-run: error: bad --feed value for x: 'abc' (expected a .npy file, a number or a JSON list)"),
        ("x=[[1,2],[3]]", 2, None),
        ("x=[1,2]", 1, "error: insert x expects shape [3], got [2]"),
        ("x=5", 1, "error: insert x expects shape [3], got []"),
        ("q=1", 1, "error: unknown variable: q"),
        ("y=[1,2,3]", 1, "error: cannot insert into volatile variable y"),
        ('x="abc"', 1, None),
        ('x={"a": 1}', 1, None),
    ],
)
def test_bad_feed(capsys, graph, feed, code, message) -> None:
    got, out, err = run(capsys, graph, "--dims", "D=3", "--feed", feed)
    assert got == code and out == ""
    line = assert_one_diagnostic(err)
    if message is not None:
        assert line == message
    else:
        assert "error:" in line


@pytest.mark.parametrize(
    ("content", "message"),
    [(None, "No such file or directory"), (b"not an npy file", "cannot read --feed x"), (b"", "cannot read --feed x")],
)
def test_bad_feed_file(capsys, graph, tmp_path, content, message) -> None:
    path = tmp_path / "x.npy"
    if content is not None:
        path.write_bytes(content)
    code, out, err = run(capsys, graph, "--dims", "D=3", "--feed", f"x={path}")
    assert code == 1 and out == ""
    line = assert_one_diagnostic(err)
    assert line.startswith(f"{path}: error: ") and message in line


def test_pickled_feed_file_is_refused(capsys, graph, tmp_path) -> None:
    path = tmp_path / "obj.npy"
    np.save(path, np.array([{"a": 1}], dtype=object), allow_pickle=True)
    code, _, err = run(capsys, graph, "--dims", "D=3", "--feed", f"x={path}")
    assert code == 1
    assert assert_one_diagnostic(err).startswith(f"{path}: error: cannot read --feed x")


def test_failing_step(capsys, tmp_path) -> None:
    path = tmp_path / "fail.oi"
    path.write_text(FAILING)
    code, out, err = run(capsys, path, "--dims", "D=2", "--steps", "4", "--fetch", "t", "--save-state", tmp_path / "s.st")
    assert code == 1
    assert out == "step 0\n  t (scalar) = 1\nstep 1\n  t (scalar) = 2\n"
    assert assert_one_diagnostic(err) == f"{path}:4:5: error: step 2: cache table K index 0 exceeds fixed size 2 (index value 2)"
    assert not (tmp_path / "s.st").exists()


def test_failing_step_with_trace_prints_no_partial_step(capsys, tmp_path) -> None:
    path = tmp_path / "fail.oi"
    path.write_text(FAILING)
    code, out, err = run(capsys, path, "--dims", "D=2", "--steps", "3", "--trace")
    assert code == 1
    assert out.count("step ") == 2 and len(out.splitlines()) == 2 + 2 * 2
    assert_one_diagnostic(err)


@pytest.mark.parametrize(
    ("make", "fragment"),
    [
        (lambda p: None, "no such state file"),
        (lambda p: p.write_bytes(b"garbage"), "not a readable state file"),
        (lambda p: p.write_bytes(b""), "not a readable state file"),
    ],
)
def test_bad_load_state(capsys, graph, tmp_path, make, fragment) -> None:
    state = tmp_path / "s.st"
    make(state)
    code, out, err = run(capsys, graph, "--dims", "D=2", "--load-state", state)
    assert code == 1 and out == ""
    line = assert_one_diagnostic(err)
    assert line.startswith(f"{state}: error: ") and fragment in line


def test_load_state_of_another_graph(capsys, graph, tmp_path) -> None:
    other = tmp_path / "other.oi"
    other.write_text(FAILING)
    state = tmp_path / "s.st"
    assert run(capsys, other, "--dims", "D=2", "--save-state", state)[0] == 0
    code, _, err = run(capsys, graph, "--dims", "D=2", "--load-state", state)
    assert code == 1
    assert assert_one_diagnostic(err) == f"{state}: error: saved for a different graph (its declarations differ)"


def test_save_state_into_a_missing_directory(capsys, graph, tmp_path) -> None:
    state = tmp_path / "nodir" / "s.st"
    code, out, err = run(capsys, graph, "--dims", "D=2", "--save-state", state)
    assert code == 1 and out == "step 0\n"
    assert assert_one_diagnostic(err) == f"{state}: error: cannot write state: No such file or directory"


@pytest.mark.parametrize(
    ("argv", "fragment"),
    [
        ([], "the following arguments are required: input"),
        (["g.oi", "--bogus"], "unrecognized arguments: --bogus"),
        (["g.oi", "--steps", "abc"], "argument --steps: invalid int value: 'abc'"),
        (["g.oi", "--steps", "-1"], "--steps cannot be negative"),
        (["g.oi", "--fetch"], "argument --fetch: expected at least one argument"),
    ],
)
def test_bad_command_lines(capsys, graph, argv, fragment) -> None:
    argv = [str(graph) if a == "g.oi" else a for a in argv] + (["--dims", "D=2"] if argv else [])
    code, out, err = run(capsys, *argv)
    assert code == 2 and out == ""
    assert assert_one_diagnostic(err) == f"oi-run: error: {fragment}"


@pytest.mark.parametrize(("device", "code"), [("cuda", 1), ("tpu", 1)])
def test_bad_device(capsys, graph, device, code) -> None:
    got, out, err = run(capsys, graph, "--dims", "D=2", "--device", device)
    assert got == code and out == ""
    assert device in assert_one_diagnostic(err)


@pytest.mark.parametrize(
    "argv",
    [
        ["--dims", "D=2"],
        ["--dims", "D=3", "--steps", "3", "--feed", "x=[1, 2.5, -3]", "--fetch", "t", "y", "A"],
        ["--dims", "D=2", "--steps", "20", "--feed", "x=[0.5, -1]", "--fetch", "A"],  # A grows past 16 entries
        ["--dims", "D=2", "--steps", "0", "--fetch", "t"],
    ],
)
def test_cpu_device_prints_what_the_reference_prints(capsys, graph, argv) -> None:
    reference = run(capsys, graph, *argv)
    compiled = run(capsys, graph, *argv, "--device", "cpu")
    assert compiled == reference
    assert compiled[0] == 0 and compiled[2] == ""


def test_cpu_device_with_feed_files_and_state_files(capsys, graph, tmp_path) -> None:
    xs = np.arange(12, dtype=np.float32).reshape(4, 3) - 5
    np.save(tmp_path / "xs.npy", xs)
    outputs = {}
    for device in ("reference", "cpu"):
        outputs[device] = run(capsys, graph, "--dims", "D=3", "--steps", "4", "--device", device,
                              "--feed", f"x={tmp_path / 'xs.npy'}", "--fetch", "y", "A",
                              "--save-state", tmp_path / f"{device}.st")  # fmt: skip
    assert outputs["cpu"] == outputs["reference"]
    np.testing.assert_array_equal(parse_values(fetched(outputs["cpu"][1], "A")[-1]), 2 * xs)
    # each device continues from the state file the other wrote
    for device, other in (("cpu", "reference"), ("reference", "cpu")):
        outputs[device] = run(capsys, graph, "--dims", "D=3", "--device", device, "--load-state", tmp_path / f"{other}.st",
                              "--feed", "x=[1, 1, 1]", "--fetch", "t", "A")  # fmt: skip
    assert outputs["cpu"] == outputs["reference"]
    assert fetched(outputs["cpu"][1], "t") == ["5"]


def test_cpu_device_failing_step(capsys, tmp_path, private_compile_cache) -> None:
    # a private step cache: a cached step of this same graph text from another path would report
    # that path (a known bug, test_cpu_executor.py::test_error_location_of_the_same_graph_in_another_file)
    path = tmp_path / "fail.oi"
    path.write_text(FAILING)
    argv = [path, "--dims", "D=2", "--steps", "4", "--fetch", "t", "--save-state", tmp_path / "s.st"]
    reference = run(capsys, *argv)
    compiled = run(capsys, *argv, "--device", "cpu")
    assert compiled == reference
    assert compiled[0] == 1
    assert assert_one_diagnostic(compiled[2]) == f"{path}:4:5: error: step 2: cache table K index 0 exceeds fixed size 2 (index value 2)"
    assert not (tmp_path / "s.st").exists()


@pytest.mark.parametrize("flag", ["--trace", "--timer"])
def test_cpu_device_refuses_traces(capsys, graph, flag) -> None:
    code, out, err = run(capsys, graph, "--dims", "D=2", "--device", "cpu", flag)
    assert code == 1 and out == ""
    what = "tracing" if flag == "--trace" else "per-node timing"
    assert assert_one_diagnostic(err) == f"error: {what} needs device='reference' (the compiled step runs as one function)"


BRANCH = "dynamic { c: bool; }\nblock entry {\n    branch c a b;\n}\nblock a {\n    branch c a b;\n}\nblock b { }\n"
TOO_DEEP = "branch to block a nests more than 100 blocks deep (does a block branch back into itself?)"


def test_cpu_device_runs_a_recursive_branch_as_the_reference(capsys, tmp_path) -> None:
    """A block that branches back into itself: both devices run it while `c` is false, and both
    stop it at the same depth with the same located error when it is true."""
    path = tmp_path / "branch.oi"
    path.write_text(BRANCH)
    assert run(capsys, path) == run(capsys, path, "--device", "cpu")
    assert run(capsys, path)[0] == 0
    feed = tmp_path / "c.npy"
    np.save(feed, np.array(True))
    for device in ("reference", "cpu"):
        code, out, err = run(capsys, path, "--device", device, "--feed", f"c={feed}")
        assert code == 1 and out == ""
        assert assert_one_diagnostic(err) == f"{path}:6:5: error: step 0: {TOO_DEEP}"


def test_missing_model_file(capsys, graph, tmp_path) -> None:
    code, _, err = run(capsys, graph, "--dims", "D=2", "--model", tmp_path / "m.oinf")
    assert code == 1
    assert assert_one_diagnostic(err).startswith(f"{tmp_path / 'm.oinf'}: error: ")


def test_model_file_supplies_sizes_and_weights(capsys, tmp_path) -> None:
    import oi_compiler as oi

    model = tmp_path / "m.npz"
    oi.Model(sizevars={"D": 2}, tensors={"w": np.float32([1.5, -2])}).save(model)
    path = tmp_path / "w.oi"
    path.write_text("constant { w: f32[D]; } volatile { y: f32[D]; } block entry { op add(w, w) >> y; }\n")
    code, out, err = run(capsys, path, "--model", model, "--fetch", "y")
    assert code == 0, err
    assert fetched(out, "y") == ["[ 3., -4.]"]


def test_help_says_what_feed_takes(capsys) -> None:
    """`--feed`'s help said "(see above)" with nothing above it (issue #15 item 15)."""
    assert main(["--help"]) == 0  # (main returns the exit status, --help's too)
    text = " ".join(capsys.readouterr().out.split())
    assert "see above" not in text
    assert "a number, a JSON list, or a .npy file" in text and "row i at step i" in text


@pytest.mark.parametrize("device", ["reference", "cpu"])
def test_step_returns_what_its_docstring_says(device: str) -> None:
    import oi_compiler as oi

    graph = oi.parse_graph("dynamic { x: f32[2]; }\npersistent { t: i32 @init(0); }\n"
                           "block entry { cache.increment t; }\n", "s.oi")  # fmt: skip
    event = oi.Simulator(None, graph, device=device).make_executor().step()
    if device == "cpu":
        assert event is None
    else:  # without with_trace(), the last node's event all the same
        assert event is not None and event.node_desc.startswith("cache.increment")


@pytest.mark.parametrize("device", ["cpu", "cuda"])
def test_stats_give_the_step_time_and_on_cuda_the_launches(capsys, graph, monkeypatch, device) -> None:
    monkeypatch.setenv("OI_GPU_EMULATE", "1")
    monkeypatch.setenv("OI_CUDA_COMPILE_AFTER", "2")
    code, out, err = run(capsys, graph, "--dims", "D=2", "--steps", "4", "--device", device, "--stats")
    assert code == 0, err
    lines = out.splitlines()
    stats = lines.index(next(line for line in lines if line.startswith("stats:")))
    assert re.fullmatch(r"stats: 4 steps; first [0-9.]+ ms, then median [0-9.]+ ms", lines[stats])
    if device == "cuda":  # one op and one copy (y into A's row) a step, their first two calls through
        # Python; the undo log's copies of t and of A's present byte are the host's, no device copies
        assert re.match(r"  per step: 1\.0 op calls, 1\.0 kernel launches, 1\.0 copies; 1\.0 of the calls and "
                        r"copies from compiled code; 0\.0 operands staged", lines[stats + 1]), lines[stats + 1]
        assert lines[stats + 2].startswith("  kernel sets made: 1 in ")
    else:
        assert len(lines) == stats + 1
