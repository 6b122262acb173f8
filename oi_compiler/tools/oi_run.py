"""`oi-run`: run an OpenInfer graph step by step and print what it fetches.

    oi-run examples/kv_decode.oi --dims D=4 --steps 3 --feed q=q.npy --fetch hist t
    oi-run decoder.oi --model decoder.oinf --steps 8 --feed token=tokens.npy --fetch logits --trace

`--feed NAME=FILE.npy` sets a dynamic variable before every step: an array of the
variable's shape is fed each step; one with an extra leading axis of length
`--steps` feeds row i at step i; any other shape is refused before the first step.
`--feed NAME=VALUE` takes a number or a JSON list.
`--save-state`/`--load-state` write and restore the executor's state (before the
first step and after the last).

Exit status: 0 on success, 1 when the graph, model, a fed value or a step is
rejected or the output cannot be written (one diagnostic on stderr), 2 for a bad
command line, 141 (quietly) when the reader of the output goes away (`| head`).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
import tokenize
from pathlib import Path

import numpy as np

from oi_compiler.errors import ExecutionError, OiError, OptionError
from oi_compiler.size_vars import parse_size_assignments
from oi_compiler.tools.exit_status import ToolArgumentParser, run_reporting_errors
from oi_compiler.verify.scope import shape_text


def _arg_parser() -> argparse.ArgumentParser:
    p = ToolArgumentParser(prog="oi-run", description="Run an OpenInfer graph (.oi or .mlir) step by step.")
    p.add_argument("input", help="the graph (.oi or .mlir)")
    p.add_argument("--model", help="model file (.oinf or .npz); none: an empty model")
    p.add_argument("--zero-constants", action="store_true",
                   help="read constants the model lacks as zeros (without it they are errors)")
    p.add_argument("--dims", action="append", default=[], metavar="NAME=N[,NAME=N]",
                   help="size variables, added to (and overriding) the model's")
    p.add_argument("--steps", type=int, default=1, help="how many steps to run (default 1)")
    p.add_argument("--device", default="reference", help="reference (numpy; default), cpu (compiled) or cuda (compiled, each op's GPU "
                   "kernels launched: in the CPU emulation with OI_GPU_EMULATE=1)")
    p.add_argument("--feed", action="append", default=[], metavar="NAME=FILE.npy|VALUE",
                   help="a dynamic variable's value: a number, a JSON list, or a .npy file of its shape "
                        "(the same each step) or with a leading axis of length --steps (row i at step i)")
    p.add_argument("--fetch", nargs="+", action="extend", default=[], metavar="NAME",
                   help="variables to print after each step")
    p.add_argument("--trace", action="store_true", help="print one line per executed node")
    p.add_argument("--timer", action="store_true", help="time each node (with --trace)")
    p.add_argument("--stats", action="store_true",
                   help="after the steps, the median time a step took and, on cuda, the launches per step")
    p.add_argument("--load-state", metavar="FILE", help="restore executor state before the first step")
    p.add_argument("--save-state", metavar="FILE", help="save executor state after the last step")
    return p  # fmt: skip


def parse_dims(items: list[str]) -> dict[str, int]:
    dims: dict[str, int] = {}
    for item in items:
        try:
            dims.update(parse_size_assignments(item))
        except ValueError as e:
            raise OptionError(f"bad --dims: {e}") from None
    return dims


def _is_file(value: str) -> bool:
    """Whether `value` names a file; a JSON list too long to be a file name is not one."""
    try:
        return Path(value).is_file()
    except (OSError, ValueError):  # ENAMETOOLONG, a NUL byte...
        return False


def _load_npy(path: str) -> np.ndarray:
    """The array in the `.npy` file at `path`, after checking that the data its header claims is
    in the file (a header claiming terabytes fails here, before numpy allocates them)."""
    with open(path, "rb") as fp:
        version = np.lib.format.read_magic(fp)
        if version not in ((1, 0), (2, 0), (3, 0)):
            raise ValueError(f"unsupported .npy format version {version[0]}.{version[1]}")
        # 2.0 and 3.0 headers have the same layout (3.0 is UTF-8 text; only field names can differ)
        read_header = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
        try:
            shape, _, dtype = read_header(fp)
        except (SyntaxError, tokenize.TokenError) as e:  # what numpy's header parser can raise besides ValueError
            raise ValueError(f"malformed .npy header ({type(e).__name__}: {e})") from None
        if any(n < 0 for n in shape):
            raise ValueError(f"negative dimension in shape {shape}")
        claimed = math.prod(shape) * dtype.itemsize
        present = os.fstat(fp.fileno()).st_size - fp.tell()
        if dtype.hasobject:  # (numpy's own refusal would advise allow_pickle, which --feed never sets)
            raise ValueError("it holds Python objects (a pickled object array), not numbers")
        if claimed > present:
            raise ValueError(f"its header claims {claimed} bytes of data ({dtype}{list(shape)}) but it holds {present}")
    return np.load(path, allow_pickle=False)


def read_feed(item: str) -> tuple[str, np.ndarray]:
    name, eq, value = item.partition("=")
    if not eq or not name.isidentifier():
        raise OptionError(f"bad --feed {item!r} (expected NAME=FILE.npy or NAME=VALUE)")
    if value.endswith(".npy") or _is_file(value):
        try:
            return name, _load_npy(value)
        except (OSError, ValueError, EOFError) as e:
            message = " ".join(str(e).split())  # one line
            raise ExecutionError(f"cannot read --feed {name}: {message}", subject=value) from None
    try:
        return name, np.asarray(json.loads(value))
    except (json.JSONDecodeError, ValueError, RecursionError):  # (RecursionError: nested too deeply)
        raise OptionError(f"bad --feed value for {name}: {value!r} (expected a .npy file, a number or a JSON list)")


def _check_feed(exe, name: str, value: np.ndarray, steps: int, path: str) -> None:
    """A `.npy` fed to a dynamic variable has its shape (fed every step; a one-element array fits
    any one-element shape, as `insert` takes it) or one more leading axis of length `--steps`
    (row i at step i); anything else is refused before the first step, saying the rule. (A value
    written on the command line, or a name that is not a dynamic variable, is `insert`'s to refuse.)"""
    decl = exe.bound.decls.get(name)
    if decl is None or decl.memory != "dynamic":
        return
    shape = exe.bound.shapes[name]
    if value.shape in (tuple(shape), (steps, *shape)):
        return
    if value.size == 1 and math.prod(shape) == 1:
        return
    rows = value.ndim == len(shape) + 1 and tuple(value.shape[1:]) == tuple(shape)
    raise ExecutionError(
        f"--feed {name}: an array of shape {shape_text(value.shape)} is neither {name}'s shape "
        f"{shape_text(shape)} (fed every step) nor {shape_text((steps, *shape))} (row i at step i, "
        f"one row per step)" + (f": it has {value.shape[0]} rows for --steps {steps}" if rows else ""),
        subject=path,
    )


def _feed_for_step(exe, name: str, value: np.ndarray, step: int, steps: int) -> np.ndarray:
    shape = exe.bound.shapes.get(name)
    if shape is not None and value.shape == (steps, *shape):
        return value[step]
    return value


def _format(name: str, value: np.ndarray) -> str:
    text = np.array2string(value, threshold=64, separator=", ", max_line_width=120)
    lines = [line for line in text.splitlines() if line.strip()]
    shape = "x".join(map(str, value.shape)) or "scalar"
    head = f"  {name} ({shape}) = "
    return head + ("\n" + " " * len(head)).join(lines)


def run(args: argparse.Namespace) -> int:
    import oi_compiler as oi

    dims = parse_dims(args.dims)
    if args.steps < 0:
        raise OptionError("--steps cannot be negative")
    feeds, files = {}, {}
    for item in args.feed:
        name, value = read_feed(item)
        feeds[name] = value
        path = item.partition("=")[2]
        if path.endswith(".npy") or _is_file(path):  # (as read_feed tells a file from a value)
            files[name] = path
        else:
            files.pop(name, None)
    model = oi.Model.open(args.model) if args.model else oi.Model()
    sim = oi.Simulator(model, oi.Graph.load(args.input), device=args.device, sizevars=dims,
                       zero_constants=args.zero_constants)  # fmt: skip
    if args.trace:
        sim.with_trace()
    if args.timer:
        sim.with_timer()
    exe = sim.make_executor()
    for name in args.fetch:
        if name not in exe.bound.decls and name not in exe.interpreter.temp_types:
            raise ExecutionError(f"unknown variable: {name}", subject="--fetch")
    for name, path in files.items():
        _check_feed(exe, name, feeds[name], args.steps, path)
    if args.load_state:
        exe.load_state(args.load_state)
    printed = 0
    seconds = []
    for step in range(args.steps):
        exe.insert({name: _feed_for_step(exe, name, value, step, args.steps) for name, value in feeds.items()})
        began = time.perf_counter()
        try:
            exe.step()
        except OiError as e:
            e.message = f"step {step}: {e.message}"
            raise
        seconds.append(time.perf_counter() - began)
        print(f"step {step}")
        for event in exe.events[printed:]:
            print("  " + event.line())
        printed = len(exe.events)
        for name in args.fetch:
            print(_format(name, exe.fetch(name)))
    if args.save_state:
        exe.save_state(args.save_state)
    if args.stats:
        print(_stats(exe, seconds))
    return 0


def _stats(exe, seconds: list[float]) -> str:
    """`--stats`: the steps' median time (the first apart: it makes the kernels) and, on cuda, what
    the launcher did per step."""
    import statistics

    if not seconds:
        return "stats: no step ran"
    later = seconds[1:] or seconds
    lines = [f"stats: {len(seconds)} steps; first {seconds[0] * 1e3:.3f} ms, then median {statistics.median(later) * 1e3:.3f} ms"]
    counts = getattr(exe, "launch_counts", None)
    if counts is not None:
        n = len(seconds)
        lines.append(f"  per step: {counts.op_calls / n:.1f} op calls, {counts.launches / n:.1f} kernel launches, "
                     f"{counts.copies / n:.1f} copies; {counts.compiled_calls / n:.1f} of the calls and copies from "
                     f"compiled code; {counts.staged / n:.1f} operands staged; host time through Python "
                     f"{counts.host_seconds / n * 1e6:.0f} us")  # fmt: skip
        lines.append(f"  kernel sets made: {counts.prepared} in {counts.prepare_seconds:.2f} s")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    return run_reporting_errors("oi-run", lambda: run(_arg_parser().parse_args(argv)))

if __name__ == "__main__":
    sys.exit(main())
