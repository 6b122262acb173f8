"""Seeds, mutations and drivers for `.mlir` text and `oi-opt` command lines (fuzz target 2)."""

from __future__ import annotations

import io
import os
import re
import sys
import tempfile
from pathlib import Path

from hypothesis import strategies as st

import oi_compiler as oi

from ._support import EXAMPLES, LIT, Bug, Seeds, call, count, quiet_stdio

SPLIT = "// -----"


def _chunks(path: Path) -> list[str]:
    text = path.read_text()
    return [c for c in text.split(SPLIT + "\n") if c.strip()]


def mlir_seeds() -> dict[str, str]:
    """Every lit `.mlir` chunk, plus each example graph printed in the custom and generic forms."""
    seeds = Seeds()
    for path in sorted(LIT.rglob("*.mlir")):
        if "Output" in path.parts:
            continue
        for n, chunk in enumerate(_chunks(path)):
            seeds[f"{path.relative_to(LIT)}#{n}"] = chunk
    from oi_compiler.tools.oi_opt import _print_module

    for path in sorted(EXAMPLES.glob("*.oi")):
        module = oi.parse_graph(path.read_text(), path.name).module
        seeds[f"{path.name}:custom"] = _print_module(module, False, False)
        seeds[f"{path.name}:generic"] = _print_module(module, True, True)
    return seeds


SEEDS = mlir_seeds()
FRAGMENTS = ["", " ", "\n", "(", ")", "{", "}", "<", ">", "[", "]", ":", ",", "->", "=", "%0", "%arg0", "@g", "@entry",
             "^bb0", "i32", "i64", "f32", "index", "i1", "i0", "i99999999", "f8E5M2", "memref<4xf32>", "memref<?x?xf32>", "i3", "i65", "ui95", "si7", "array<i64: 1, 2>",
             "dense<1> : tensor<2xi32>", "dense<[1, 2]> : vector<2xi8>", "array<i17: 1>",
             "tensor<2x?xi8>", "!oi_table.table<f32, [\"k\"], dense>", "#oi", "dense<1>", "dense<[1, 2]>", "array<i64: 1>",
             "0", "-1", "4294967296", "9223372036854775808", "1.5e999", "0x7FC00000", "true", "unit", "\"\"", "\"\\ff\"",
             "loc(unknown)", "loc(\"f\":1:2)", "#loc0", "oi.var", "oi.block", "oi.graph", "oi.op", "oi.loop", "oi.return",
             "oi.cache.read", "oi.cache.write", "oi.nest", "oi.kernel", "func.func", "scf.for", "memref.load",
             "arith.constant", "\"oi.var\"()", "<{", "}>", "attributes", "@init(", "@table", "@fixed(", "@auto_dim(",
             "dynamic", "persistent", "volatile", "constant", "oi.schedule", "oi.plan", "{{", "}}", "//", "é",
             "\x00", "\t"]  # fmt: skip
TYPE = re.compile(r"[su]?i\d+|f(16|32|64)|bf16|index|f8E5M2")
ODD_TYPES = ["i0", "i1", "i3", "i65", "i95", "si7", "ui1", "ui128", "f16", "bf16", "f64", "index", "f8E5M2", "i16777216"]
TOKEN = re.compile(r'"(?:\\.|[^"\\\n])*"|%[\w.$-]+|@[\w.$-]+|\^[\w.$-]+|#[\w.$-]+|!?[\w.$-]+|->|\S|\s+')


@st.composite
def mlir_mutations(draw) -> tuple[str, str]:
    """A seed chunk with 1-6 token edits (delete, replace, insert, duplicate, swap, renumber)."""
    name = draw(st.sampled_from(sorted(SEEDS)))
    tokens = TOKEN.findall(SEEDS[name]) or [""]
    for _ in range(draw(st.sampled_from([1, 1, 1, 2, 2, 3, 6]))):
        at = draw(st.integers(0, len(tokens) - 1))
        how = draw(st.sampled_from(["delete", "replace", "insert", "duplicate", "swap", "number", "splice", "retype"]))
        if how == "delete":
            del tokens[at : at + draw(st.integers(1, 3))]
        elif how == "replace":
            tokens[at] = draw(st.sampled_from(FRAGMENTS + tokens))
        elif how == "insert":
            tokens.insert(at, draw(st.sampled_from(FRAGMENTS + tokens)))
        elif how == "duplicate":
            tokens[at:at] = tokens[at : at + draw(st.integers(1, 20))]
        elif how == "swap":
            other = draw(st.integers(0, len(tokens) - 1))
            tokens[at], tokens[other] = tokens[other], tokens[at]
        elif how == "number":
            numbers = [i for i, t in enumerate(tokens) if re.fullmatch(r"-?\d+", t)]
            if numbers:
                tokens[draw(st.sampled_from(numbers))] = str(draw(st.sampled_from(
                    [0, -1, 1, 2, 3, 63, 64, 2**31, 2**32, 2**63 - 1, 2**63, 2**64, -(2**63) - 1, 10**40])))  # fmt: skip
        elif how == "retype":  # a type for another, where the syntax stays intact
            types = [i for i, t in enumerate(tokens) if TYPE.fullmatch(t)]
            if types:
                tokens[draw(st.sampled_from(types))] = draw(st.sampled_from(ODD_TYPES))
        else:
            other = TOKEN.findall(SEEDS[draw(st.sampled_from(sorted(SEEDS)))])
            start = draw(st.integers(0, max(0, len(other) - 1)))
            tokens[at:at] = other[start : start + draw(st.integers(1, 40))]
        if not tokens:
            tokens = [""]
    return name, "".join(tokens)


# --- pipelines and command lines ---------------------------------------------------------------

def pass_names() -> list[str]:
    """The registered passes, less the ones other tests register in this process to fail on
    purpose (`*-test`: tests/passes/test_pass_diagnostics.py's `--crash-test` raises a KeyError,
    an internal error by design; drawn here it failed the fuzz test whenever that file ran first in
    the same worker)."""
    return sorted(name for name in oi.registered_passes() if not name.endswith("-test"))


#: option strings: the first `VALID_OPTIONS[name]` of each list are well formed
VALID_OPTIONS = {"bind-sizes": 11, "tile": 4}
OPTION_VALUES = {
    "bind-sizes": ["D=4", "D=4 T=8", "T=8 L=2", "B=1 D=4 T=8 L=2", "D=x", "D=-1", "D=0", "D=99999999999999999999",
                   "D=4,T=8", "model=examples/tiny_decoder.oinf", "model=/nonexistent.oinf", "model=", "model=lit_tests",
                   "=4", "D", "D==4", "D=1.5", "NV=48 D=32", "D=4 D=5", "model=examples/kv_decode.oi"],
    "tile": ["sizes=32,32,64", "sizes=4", "sizes=0", "sizes=", "sizes=-1", "sizes=a", "sizes=1,2,3,4,5,6,7,8",
             "sizes=99999999999999999999", "sizes=32,0,64", "size=4", "sizes=1.5"],
}  # fmt: skip
GENERIC_OPTIONS = ["", "x=1", "{", "}", "=", "a b", "sizes=4", "D=4", "model=x", '"q"', "x=[1]", "x=1,2", "\\", "é=1"]


def option_string(draw, name: str, clean: bool = False) -> str:
    if clean:
        return draw(st.sampled_from(OPTION_VALUES.get(name, [""])[: VALID_OPTIONS.get(name, 1)]))
    values = OPTION_VALUES.get(name, []) + GENERIC_OPTIONS
    return draw(st.sampled_from(values))


def pipeline_text(draw, clean: bool = False) -> str:
    """A `-p` pipeline: registry passes, with and without `{options}`, sometimes malformed."""
    names = pass_names()
    items = []
    for _ in range(draw(st.integers(0, 5))):
        name = draw(st.sampled_from(names if clean else names + ["nope", "", "builtin.module", "cse}", "{cse"]))
        if draw(st.booleans()):
            opts = option_string(draw, name, clean)
            if not clean and draw(st.integers(0, 9)) == 0:
                items.append(f"{name}{{{opts}")  # unclosed
            else:
                items.append(f"{name}{{{opts}}}")
        else:
            items.append(name)
    text = ",".join(items)
    if not clean and draw(st.integers(0, 9)) == 0:
        text = f"builtin.module({text})"
    return text


@st.composite
def oi_opt_argvs(draw, tmp: str) -> tuple[list[str], str | None]:
    """An `oi-opt` command line (argv without the program) and the text it reads on stdin, if any.

    Every path in it is inside `tmp` (the input is a copy of a seed file; `run_oi_opt` runs in
    `tmp`, so relative paths land there too) or does not exist: whatever `-o` ends up naming, a
    file of the repository is never written (nor run by `--load-pass-plugin`)."""
    seeds = [p for p in sorted(LIT.rglob("*.mlir")) if "Output" not in p.parts] + sorted(EXAMPLES.glob("*.oi")) + [
        p for p in sorted(LIT.rglob("*.oi")) if "Output" not in p.parts]  # fmt: skip
    groups: list[list[str]] = []  # a flag and its value stay together when the order is shuffled
    stdin = None
    source = draw(st.sampled_from(["file", "file", "file", "mutated", "stdin", "none", "missing"]))
    if source == "file":
        seed = draw(st.sampled_from(seeds))
        path = Path(tmp) / seed.name
        path.write_bytes(seed.read_bytes())
        groups.append([str(path)])
    elif source == "mutated":
        _, text = draw(mlir_mutations())
        path = Path(tmp) / "input.mlir"
        path.write_text(text)
        groups.append([str(path)])
    elif source == "stdin":
        groups.append(["-"])
        stdin = SEEDS[draw(st.sampled_from(sorted(SEEDS)))]
    elif source == "missing":
        groups.append([str(Path(tmp) / "missing.mlir")])
    names = pass_names()
    clean = draw(st.booleans())  # half the command lines are well formed (the input may still be bad)
    kinds = ["pass"] * 4 + ["pass="] * 2 + ["-p"] * 2 + ["flag"] * 3 + ["target", "output"] + ([] if clean else ["odd"])
    for _ in range(draw(st.integers(0, 6))):
        kind = draw(st.sampled_from(kinds))
        if kind == "pass":
            groups.append([f"--{draw(st.sampled_from(names))}"])
        elif kind == "pass=":
            name = draw(st.sampled_from(names))
            groups.append([f"--{name}={option_string(draw, name, clean)}"])
        elif kind == "-p":
            form = draw(st.integers(0, 2))
            text = pipeline_text(draw, clean)
            groups.append(["-p", text] if form == 0 else [f"--pass-pipeline={text}"] if form == 1 else ["--pass-pipeline", text])
        elif kind == "flag":
            groups.append([draw(st.sampled_from(["--split-input-file", "--verify-diagnostics", "--mlir-print-op-generic",
                                                 "--mlir-print-debuginfo", "--time-passes", "--print-ir-after-all",
                                                 "--dump-stages"]))])  # fmt: skip
        elif kind == "target":
            group = ["-t", draw(st.sampled_from(["mlir", "llvm", "ptx"] + ([] if clean else ["bogus", ""])))]
            if draw(st.booleans()):
                arches = ["sm_80", "sm_90"] + ([] if clean else ["sm_99", "", "sm_", "80"])
                group.append(f"--arch={draw(st.sampled_from(arches))}")
            groups.append(group)
        elif kind == "output":
            outputs = [str(Path(tmp) / "out.mlir"), "-"] + ([] if clean else [tmp, "/nonexistent/dir/out.mlir"])
            groups.append(["-o", draw(st.sampled_from(outputs))])
        else:  # a flag that takes a value comes last (so it takes none) or with a value of its own
            odd = draw(st.sampled_from(["--nope", "-x", "--", "-", "--help", "-h", "--canonicalize=", "--tile=sizes",
                                        "extra.mlir", "--=", "---cse", "--load-pass-plugin=/nonexistent/plugin.py",
                                        "-p", "-o", "-t", "--arch", "--load-pass-plugin"]))  # fmt: skip
            if odd in ("-p", "-o", "-t", "--arch", "--load-pass-plugin"):
                value = draw(st.sampled_from(["", "x", str(Path(tmp) / "odd.mlir"), "/nonexistent/x.py"]))
                groups.append([odd, value] if draw(st.booleans()) else [odd])
                if len(groups[-1]) == 1:
                    groups.append([])  # (marks the end: nothing may follow)
                    break
            else:
                groups.append([odd])
    if draw(st.integers(0, 3)) == 0:
        last = groups.pop() if groups and not groups[-1] else None
        groups = [groups[i] for i in draw(st.permutations(range(len(groups))))]
        if last is not None:
            groups.append(last)
    argv = [arg for group in groups for arg in group]
    return argv, stdin


HEAVY_FLAGS = ("--dump-stages", "llvm", "ptx", "--lower-", "lower-", "--gpu-emulate", "--map-gpu")

#: flags after which stderr may hold more than one line on an error
MULTI_LINE_FLAGS = ("--split-input-file", "--verify-diagnostics", "--time-passes", "--print-ir-after-all", "--help",
                    "-h", "--double-buffer", "double-buffer", "--dump-stages")  # fmt: skip


def diagnostics(stderr: str) -> list[str]:
    """The diagnostics about the input: one line each (a failed write of the output is its own)."""
    return [line for line in stderr.strip().splitlines() if "cannot write output" not in line]


def _writes_outside(argv: list[str], tmp: str) -> str | None:
    """An output path of `argv` (`-o X`, `--output=X`) that is not inside `tmp`, if any."""
    for flag, value in zip(argv, argv[1:] + [""]):
        target = value if flag in ("-o", "--output") else flag.split("=", 1)[1] if flag.startswith("--output=") else None
        inside = target and str((Path(tmp) / target).resolve()).startswith(str(Path(tmp).resolve()))
        if target and target != "-" and not target.startswith("/nonexistent/") and not inside:
            return target
    return None


def run_oi_opt(argv: list[str], stdin: str | None, tmp: str) -> tuple[int, str, str]:
    """`oi-opt argv` in this process, in directory `tmp`: (exit status, stdout, stderr); a `Bug`
    unless the status is 0, 1 or 2, stderr holds no traceback or internal error, and an error is
    one line."""
    from oi_compiler.tools.oi_opt import main

    outside = _writes_outside(argv, tmp)
    if outside is not None:  # never: the fuzzer must not write over a file of the repository
        raise RuntimeError(f"refusing to run oi-opt {argv!r}: it would write {outside}")
    saved_stdin, saved_cwd = sys.stdin, os.getcwd()
    saved_debug = os.environ.pop("OI_DEBUG", None)
    try:
        os.chdir(tmp)
        sys.stdin = io.StringIO(stdin or "")
        with quiet_stdio() as (out, err):
            try:
                status = main(list(argv))
            except BaseException as e:
                raise Bug(f"oi-opt {argv!r} raised", e) from e
    finally:
        os.chdir(saved_cwd)
        sys.stdin = saved_stdin
        if saved_debug is not None:
            os.environ["OI_DEBUG"] = saved_debug
    stdout, stderr = out.getvalue(), err.getvalue()
    problem = None
    if status not in (0, 1, 2):
        problem = f"exit status {status}"
    elif "Traceback" in stderr or "internal error" in stderr:
        problem = "a traceback or internal error on stderr"
    elif status != 0 and not stderr.strip():
        problem = f"exit status {status} without a diagnostic"
    elif status != 0 and not any(f in a for a in argv for f in MULTI_LINE_FLAGS) and len(diagnostics(stderr)) > 1:
        problem = f"exit status {status} with {len(stderr.strip().splitlines())} lines on stderr"
    if problem:
        raise Bug(f"oi-opt {argv!r}: {problem}", RuntimeError(stderr.strip()[-2000:] or f"status {status}"))
    return status, stdout, stderr


def parse_and_verify(name: str, text: str, target: str, *, pipeline: str | None = None) -> None:
    """`text` through `oi.parse_mlir` and `oi.verify_module`, then, if given, `oi.run_passes`."""
    module, error = call("parse_mlir", oi.parse_mlir, text, "fuzz.mlir")
    if module is None:
        count(target, f"rejected: {type(error).__name__}")
        return
    _, error = call("verify_module", oi.verify_module, module)
    if error is not None:
        count(target, f"rejected: {type(error).__name__}")
        return
    count(target, "parsed and verified")
    if pipeline is not None:
        _, error = call(f"run_passes({pipeline!r})", oi.run_passes, module, pipeline)
        count(target, f"run_passes: {'ok' if error is None else type(error).__name__}")


def temp_dir() -> str:
    return tempfile.mkdtemp(prefix="oi-fuzz-")


__all__ = ["SEEDS", "mlir_mutations", "oi_opt_argvs", "parse_and_verify", "pipeline_text", "run_oi_opt"]
