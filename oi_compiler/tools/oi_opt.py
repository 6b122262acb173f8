"""`oi-opt`: parse, verify, transform and print `oi` IR, with mlir-opt's conventions.

    oi-opt model.oi --canonicalize --cse            pass flags run in command-line order
    oi-opt in.mlir -p 'canonicalize,cse' -o out.mlir
    oi-opt cases.mlir --split-input-file --verify-diagnostics
    oi-opt model.oi --bind-sizes="D=64" --dump-stages   the IR after each lowering stage

Exit status: 0 on success, 1 when the input is rejected (one diagnostic per
problem on stderr) or the output cannot be written, 2 for a bad command line or
pass option, 141 (quietly) when the reader of the output goes away (`| head`).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from oi_compiler.boundary import stage
from oi_compiler.errors import InternalError, OiError, OptionError
from oi_compiler.tools.exit_status import ToolArgumentParser, run_reporting_errors

SPLIT_MARKER = "// -----"
TARGETS = ("mlir", "llvm", "ptx")


def _arg_parser() -> argparse.ArgumentParser:
    p = ToolArgumentParser(
        prog="oi-opt",
        usage="oi-opt [INPUT] [--<pass>[=options] ...] [-p PIPELINE] [-t mlir] [-o OUT] [flags]",
        description="Parse, verify, transform and print oi IR (.oi or .mlir input).",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        add_help=False,
    )
    p.add_argument("input", nargs="?", default="-", help="input file (.oi or .mlir); '-' or none reads stdin as .mlir")
    p.add_argument("-h", "--help", action="store_true", help="show this help, with every pass and its options")
    p.add_argument("-o", "--output", default="-", help="output file (default stdout)")
    p.add_argument("-t", "--target", default="mlir", help="what to print: mlir (the IR), llvm (LLVM IR of func/scf/memref/arith/math input) or ptx "
                        "(PTX of a gpu.module's kernels; --arch=sm_80 by default)")
    p.add_argument("--arch", default="sm_80", help="-t ptx: the GPU's compute capability (sm_80, sm_90...)")
    p.add_argument("-p", "--pass-pipeline", metavar="PIPELINE", help="comma-separated passes, e.g. 'canonicalize,cse'")
    p.add_argument("--split-input-file", action="store_true", help="process each '// -----' chunk separately")
    p.add_argument("--verify-diagnostics", action="store_true", help="check errors against expected-error comments")
    p.add_argument("--print-ir-after-all", action="store_true", help="print the IR after every pass (to stderr)")
    p.add_argument("--time-passes", action="store_true", help="report the time each stage took (to stderr)")
    p.add_argument("--dump-stages", action="store_true",
                   help="run the lowering stages (bind-sizes with its options if given, lower-ops, lower-cache, "
                        "lower-nests) and print the IR after each, under a '// ----- after <stage>: ... -----' line")
    p.add_argument("--mlir-print-op-generic", action="store_true", help="print ops in the generic form")
    p.add_argument("--mlir-print-debuginfo", action="store_true", help="print source locations")
    p.add_argument("--load-pass-plugin", action="append", default=[], metavar="FILE.py",
                   help="run a Python file that registers passes (oi.register_pass) before parsing flags")
    return p


def _help_text(parser: argparse.ArgumentParser) -> str:
    from oi_compiler.passes import registered_passes

    lines = [parser.format_help().rstrip(), "", "passes (run in the order given; options as --name='opt=value opt2=v1,v2' or -p 'name{opt=value}'; a path value needs no quotes):"]
    for info in registered_passes().values():
        lines.append(f"  --{info.name:<22} {info.summary}")
        for opt, kind in info.options:
            lines.append(f"  {'':<24}   {opt}: {kind}")
    return "\n".join(lines) + "\n"


def _split_pass_flags(argv: list[str]) -> tuple[list[str], list[str]]:
    """Separate pass flags (`--canonicalize`, `--tile=sizes=4`, `-p a,b`) from the rest, in order."""
    from oi_compiler.passes import registered_passes

    passes = registered_passes()
    rest: list[str] = []
    pipeline: list[str] = []
    it = iter(argv)
    for arg in it:
        if arg in ("-p", "--pass-pipeline"):
            value = next(it, None)
            if value is None:
                raise OptionError(f"argument {arg}: expected one argument")
            pipeline.append(value)
        elif arg.startswith("--pass-pipeline="):
            pipeline.append(arg.split("=", 1)[1])
        elif arg.startswith("--") and arg[2:].split("=", 1)[0] in passes:
            name, _, options = arg[2:].partition("=")
            pipeline.append(f"{name}{{{options}}}" if options else name)
        else:
            rest.append(arg)
    return pipeline, rest


def _load_plugins(argv: list[str]) -> None:
    """Run each `--load-pass-plugin` file (it registers its passes; doing so again is harmless)."""
    import runpy

    for i, arg in enumerate(argv):
        path = None
        if arg == "--load-pass-plugin" and i + 1 < len(argv):
            path = argv[i + 1]
        elif arg.startswith("--load-pass-plugin="):
            path = arg.split("=", 1)[1]
        if path is not None:
            if not Path(path).is_file():
                raise OptionError(f"cannot load pass plugin {path}: no such file")
            try:
                runpy.run_path(path, run_name="oi_pass_plugin")
            except Exception as e:  # the plugin's own error: report it, do not crash
                raise OptionError(f"cannot load pass plugin {path}: {type(e).__name__}: {e}") from None


class Timer:
    def __init__(self, enabled: bool):
        self.enabled = enabled
        self.records: list[tuple[str, float]] = []

    def record(self, name: str, seconds: float) -> None:
        if self.enabled:
            self.records.append((name, seconds))

    def report(self) -> str:
        total = sum(s for _, s in self.records) or 1e-12
        rows = [f"  {s:9.4f} ({100 * s / total:5.1f}%)  {name}" for name, s in self.records]
        bar = "===" + "-" * 73 + "==="
        return "\n".join(
            [bar, "Execution time report".center(79), bar, f"  Total Execution Time: {total:.4f} seconds", "",
             "   Wall Time  Name", *rows, f"  {total:9.4f} (100.0%)  Total", ""]
        )


def _print_module(module, generic: bool, debuginfo: bool) -> str:
    import io

    from xdsl.printer import Printer

    buf = io.StringIO()
    Printer(stream=buf, print_generic_format=generic, print_debuginfo=debuginfo).print_op(module)
    return buf.getvalue() + "\n"


def _dump_first_pass(user_passes):
    """`--dump-stages`: the first stage's pass as the command line configured it (`--bind-sizes=...`),
    or None. It takes no other pass flag: the stages are `pipeline.STEP_STAGES` (a graph) or
    `pipeline.NEST_STAGES` (a loop nest), run in their order."""
    from oi_compiler.pipeline import STEP_STAGES

    given = list(user_passes.passes) if user_passes is not None else []
    first = STEP_STAGES[0].name
    others = [p.name for p in given if p.name != first]
    if others:
        raise OptionError(
            f"--dump-stages runs the lowering stages ({', '.join(s.name for s in STEP_STAGES)}) and takes no "
            f"pass flag but --{first}; got --{others[0]}"
        )
    return given[-1] if given else None


def stage_header(name: str, description: str) -> str:
    return f"// ----- after {name}: {description} -----\n"


class OiOpt:
    def __init__(self, args: argparse.Namespace, pipeline: list[str]):
        self.args = args
        from oi_compiler.passes import parse_pipeline

        self.passes = parse_pipeline(",".join(pipeline), callback=self._after_pass) if pipeline else None
        self.first_pass = None  # --dump-stages: the first stage's pass as configured (--bind-sizes=...)
        if args.dump_stages:
            if args.target != "mlir":
                raise OptionError("--dump-stages prints the IR of each stage: it takes no -t other than mlir")
            self.first_pass = _dump_first_pass(self.passes)
            self.passes = None
        self.dumped: list[str] = []  # --dump-stages: what the current chunk printed so far
        self.pass_stage = stage("passes")  # an internal error's stage: the pass that was running
        self.ctx = None
        self.timer = Timer(args.time_passes)
        self.filename = "<stdin>" if args.input == "-" else args.input
        self.is_dsl = self.filename.endswith(".oi")

    def read_input(self) -> str:
        if self.args.input == "-":
            return sys.stdin.read()
        try:
            return Path(self.args.input).read_text()
        except OSError as e:
            raise OiError(f"cannot read input: {e.strerror}", subject=self.args.input) from None
        except UnicodeDecodeError:
            raise OiError("input is not UTF-8 text", subject=self.args.input) from None

    def chunks(self, text: str) -> list[tuple[str, int]]:
        """(chunk text, number of the chunk's first line) pairs."""
        if not self.args.split_input_file:
            return [(text, 1)]
        out, current, first = [], [], 1
        for number, line in enumerate(text.splitlines(keepends=True), start=1):
            if line.startswith(SPLIT_MARKER):
                out.append(("".join(current), first))
                current, first = [], number + 1
            else:
                current.append(line)
        out.append(("".join(current), first))
        return out

    def process(self, chunk: str, first_line: int) -> str:
        """Parse, verify and transform one chunk; returns the printed result."""
        from oi_compiler.graph import parse_mlir, verify_module
        from oi_compiler.ir_context import make_context

        padded = "\n" * (first_line - 1) + chunk  # keeps line numbers those of the whole file
        start = time.perf_counter()
        with stage("parse"):
            if self.is_dsl:
                from oi_compiler.frontend.oi_dsl import parse_module

                module = parse_module(padded, self.filename)
            else:
                module = parse_mlir(padded, self.filename)
        self.timer.record("parse", time.perf_counter() - start)
        start = time.perf_counter()
        verify_module(module)
        self.timer.record("verify", time.perf_counter() - start)
        if self.passes is not None:
            self.ctx = self.ctx or make_context()
            with self.pass_stage:  # named after the pass running (`_after_pass`)
                self.passes.apply(self.ctx, module)
        if self.args.dump_stages:
            return self.dump_stages(module)
        if self.args.target == "llvm":
            from oi_compiler.backend.llvm import llvm_ir_text
            from oi_compiler.dialects.oi import GraphOp

            if any(isinstance(op, GraphOp) for op in module.ops):
                raise OiError(
                    "-t llvm takes func/scf/memref/arith/math IR; an oi.graph must be lowered first "
                    "(--bind-sizes=..., --lower-ops, --lower-cache, --lower-nests; --dump-stages shows each stage)",
                    subject=self.filename,
                )

            import oi_compiler.lowering.step_llvm  # noqa: F401 - the step's own ops (lowered graphs)

            start = time.perf_counter()
            with stage("translate-llvm"):
                text = llvm_ir_text(module)
            self.timer.record("translate to LLVM IR", time.perf_counter() - start)
            return text
        if self.args.target == "ptx":
            from oi_compiler.backend.ptx import NvptxTarget, emit_ptx

            start = time.perf_counter()
            with stage("translate-ptx"):
                text = emit_ptx(module, NvptxTarget(self.args.arch))
            self.timer.record("translate to PTX", time.perf_counter() - start)
            return text
        return _print_module(module, self.args.mlir_print_op_generic, self.args.mlir_print_debuginfo)

    def dump_stages(self, module) -> str:
        """Run the module's stage list (`pipeline.STEP_STAGES` for a graph, `NEST_STAGES` for a loop
        nest) down to LLVM IR; the IR after each stage, under its header line."""
        from oi_compiler.dialects.oi import GraphOp
        from oi_compiler.dialects.oi_nest import NestOp
        from oi_compiler.graph import verify_module
        from oi_compiler.ir_context import make_context
        from oi_compiler.pipeline import GPU_NEST_STAGES, NEST_STAGES, STEP_STAGES, run_stages

        self.ctx = self.ctx or make_context()
        is_nest = not any(isinstance(op, GraphOp) for op in module.ops) and any(
            isinstance(op, NestOp) for op in module.walk())
        stages = STEP_STAGES
        if is_nest:
            from oi_compiler.loopnest.gpu_mapping import gpu_plan

            gpu = any(isinstance(op, NestOp) and gpu_plan(op) is not None for op in module.walk())
            stages = GPU_NEST_STAGES if gpu else NEST_STAGES
        if is_nest and self.first_pass is not None:
            raise OptionError("--dump-stages on a loop nest takes no pass flag (its stages: "
                              f"{', '.join(s.name for s in NEST_STAGES)})")  # fmt: skip
        clock = [time.perf_counter()]

        def before(stage) -> None:
            self.pass_stage.name = stage.name
            clock[0] = time.perf_counter()

        def after(stage, ir) -> None:
            self.timer.record(stage.name, time.perf_counter() - clock[0])
            if isinstance(ir, str):
                text = ir
            else:
                text = _print_module(ir, self.args.mlir_print_op_generic, self.args.mlir_print_debuginfo)
                if self.args.print_ir_after_all:
                    sys.stderr.write(f"// -----// IR Dump After {stage.name} //----- //\n" + text)
                verify_module(ir)
            self.dumped.append(stage_header(stage.name, stage.description))
            self.dumped.append(text)

        with self.pass_stage:
            run_stages(stages, module, ctx=self.ctx, first=self.first_pass, before=before, after=after)
        return "".join(self.dumped)

    def _after_pass(self, previous, module, next_pass) -> None:
        from oi_compiler.passes import verify_after_pass

        if next_pass is not None:
            self.pass_stage.name = next_pass.name
        now = time.perf_counter()
        if previous is not None:
            self.timer.record(previous.name, now - self._pass_start)
            if self.args.print_ir_after_all:
                sys.stderr.write(f"// -----// IR Dump After {previous.name} //----- //\n")
                sys.stderr.write(_print_module(module, self.args.mlir_print_op_generic, self.args.mlir_print_debuginfo))
            verify_after_pass(module, previous.name)
        self._pass_start = time.perf_counter()

    def run(self) -> int:
        from oi_compiler.tools.expected_diagnostics import check_errors, collect_expected

        text = self.read_input()
        outputs: list[str] = []
        failed = False
        for chunk, first_line in self.chunks(text):
            errors: list[OiError] = []
            self.dumped = []
            try:
                outputs.append(self.process(chunk, first_line))
            except InternalError:
                raise  # a bug, not a diagnostic about the input: exit status 3
            except OiError as e:
                errors.append(e)
                if self.dumped:  # --dump-stages: the stages that ran before the error
                    outputs.append("".join(self.dumped))
            if self.args.verify_diagnostics:
                problems = check_errors(collect_expected(chunk, first_line), errors, self.filename)
                for problem in problems:
                    print(problem, file=sys.stderr)
                failed |= bool(problems)
            else:
                for e in errors:
                    print(e, file=sys.stderr)
                failed |= bool(errors)
        if self.args.time_passes:
            sys.stderr.write(self.timer.report())
        self.write_output(f"{SPLIT_MARKER}\n".join(outputs))
        return 1 if failed else 0

    def write_output(self, text: str) -> None:
        if self.args.output == "-":
            sys.stdout.write(text)
            return
        try:
            Path(self.args.output).write_text(text)
        except OSError as e:
            raise OiError(f"cannot write output: {e.strerror}", subject=self.args.output) from None


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    return run_reporting_errors("oi-opt", lambda: _run(argv))


def _run(argv: list[str]) -> int:
    parser = _arg_parser()
    _load_plugins(argv)
    pipeline, rest = _split_pass_flags(argv)
    args = parser.parse_args(rest)
    if args.help:
        sys.stdout.write(_help_text(parser))
        return 0
    if args.target not in TARGETS:
        raise OptionError(f"unknown target '{args.target}' (available: {', '.join(TARGETS)})")
    if args.target == "ptx":
        from oi_compiler.backend.ptx import ARCHES

        if args.arch not in ARCHES:
            raise OptionError(f"unknown GPU architecture '{args.arch}' for --arch (known: {', '.join(ARCHES)})")
    return OiOpt(args, pipeline).run()

if __name__ == "__main__":
    sys.exit(main())
