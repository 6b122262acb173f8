"""`oi-tune`: tune a loop-nest plan over a parameter grid and print every candidate and the winner.

    oi-tune gemm_space.py --jobs 2
    oi-tune gemm_space.py --ray-address local --repeats 7 --finalists 5

The input is a Python file defining `tune_space()` (`--function` names another) that returns
`(builder, grid)` or `(builder, grid, reference)`: `builder()` makes the plan (a `Plan`, or
`(plan, args)`) with `oi.Parameter`s where the grid's values go, `grid` is
`oi.create_parameter_grid({...})`, and `reference(*arrays)`, if given, updates numpy arrays as the
nest does (else the nest's unscheduled plan is the reference). Workers load the file again, by
its path. The winner is stored in the tuning database (`--db DIR`, else `tuning/` in the compile
cache's directory); a second run with the same nest, grid, target and machine prints it without
searching, unless `--no-cache`.

Exit status: 0 a winner was found; 1 the file cannot be loaded or no candidate is usable (one
diagnostic, no traceback); 2 a bad command line.
"""

from __future__ import annotations

import argparse
import sys

from oi_compiler.tools.exit_status import ToolArgumentParser, run_reporting_errors


def _arg_parser() -> ToolArgumentParser:
    p = ToolArgumentParser(prog="oi-tune", description="Tune a loop-nest plan over a parameter grid.")
    p.add_argument("space", help="a Python file defining tune_space() -> (plan builder, parameter grid[, reference])")
    p.add_argument("--function", default="tune_space", help="the function to call in the file (default tune_space)")
    p.add_argument("--name", default="nest", help="the compiled function's name (default nest)")
    p.add_argument("--jobs", "-j", type=int, default=1, help="candidates built and checked in N processes at once")
    p.add_argument("--ray-address", metavar="ADDR",
                   help="run candidates as Ray tasks: 'local' (start Ray here), 'auto' or a cluster address")
    p.add_argument("--repeats", type=int, default=5, help="timing rounds of the finalists (median; default 5)")
    p.add_argument("--finalists", type=int, default=3, help="how many of the fastest are timed again (default 3)")
    p.add_argument("--db", metavar="DIR", help="the tuning database's directory (default: tuning/ in the compile cache)")
    p.add_argument("--no-cache", action="store_true", help="search even when the database has a winner (and store anew)")
    p.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None, help="show the progress line (default: when stderr is a terminal)")
    return p  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    return run_reporting_errors("oi-tune", lambda: _run(argv))


def _run(argv: list[str] | None) -> int:
    from oi_compiler.tuning.candidates import FileBuilder, load_space
    from oi_compiler.tuning.search import tune

    args = _arg_parser().parse_args(argv)
    space = load_space(args.space, args.function)
    builder = FileBuilder(args.space, args.function)
    result = tune(builder, space[1], name=args.name, reference=space[2] if len(space) == 3 else None,
                  repeats=args.repeats, finalists=args.finalists, jobs=args.jobs, ray_address=args.ray_address,
                  db=args.db, use_db=not args.no_cache, progress=args.progress)  # fmt: skip
    print(result.table())
    parameters = " ".join(f"{k}={v!r}" for k, v in result.parameters.items())
    how = "from the tuning database (search took" if result.from_database else "search:"
    print(f"winner: {parameters}  median {result.median_s * 1e3:.3f} ms  {how} {result.search_s:.1f} s"
          f"{')' if result.from_database else ''}, {len(result.candidates)} candidates")  # fmt: skip
    if result.database_path is not None:
        print(f"database: {result.database_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
