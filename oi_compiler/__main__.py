"""`python -m oi_compiler`: where to start (the work is done by the two command-line tools and the
Python API, not by this module)."""

from __future__ import annotations

import sys

import oi_compiler

USAGE = f"""oi_compiler {oi_compiler.__version__}: a compiler toolkit for stateful inference.

Command-line tools (installed with the package):
  oi-opt FILE [--lower-cache --tile ...]   parse, verify and transform .oi/.mlir (mlir-opt style);
                                           oi-opt --help lists every pass and option
  oi-run FILE [--device cpu] [--steps N]   run a graph step by step (oi-run --help)

Python API:
  import oi_compiler as oi
  graph = oi.Graph.load("model.oi")
  exe = oi.Simulator(oi.Model.open("model.oinf"), graph, device="cpu").make_executor()

See README.md and docs/ for the language, the IR and the passes.
"""


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if args in (["--version"], ["-V"]):
        print(oi_compiler.__version__)
        return 0
    if args and args[0] not in ("-h", "--help"):
        print(f"python -m oi_compiler: unknown argument {args[0]!r} (use oi-opt or oi-run)\n", file=sys.stderr)
        print(USAGE, end="", file=sys.stderr)
        return 2
    print(USAGE, end="")
    return 0


if __name__ == "__main__":
    sys.exit(main())
