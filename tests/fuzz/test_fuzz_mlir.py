"""Fuzz target 2: `.mlir` text and `oi-opt` command lines.

- `test_mutated_mlir`: token-level mutations of every lit `.mlir` chunk (and of the examples
  printed in the custom and generic forms) through `oi.parse_mlir` and `oi.verify_module`, and
  those that verify through `oi.run_passes` with a random pipeline from the pass registry.
- `test_oi_opt_command_lines`: random `oi-opt` command lines (registry passes as flags and `-p`
  pipelines with random option strings, `-t`, `--arch`, `-o`, `--split-input-file`,
  `--verify-diagnostics`, `--dump-stages`, unknown and truncated flags) on lit inputs, examples,
  mutated text and stdin, through `oi_compiler.tools.oi_opt.main` in this process: the exit status
  is 0, 1 or 2 (never 3), nothing escapes `main`, stderr holds no traceback, and an error is
  one line (unless a flag prints more: `--split-input-file`, `--time-passes`...).

Expensive command lines (lowering to LLVM IR or PTX, `--dump-stages`) count against
`OI_FUZZ_HEAVY`; past it they are replaced by cheap ones.
"""

from __future__ import annotations

import shutil

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ._support import HeavyBudget, count, fuzz_settings, outcome
from .mlir_fuzz import (
    HEAVY_FLAGS,
    mlir_mutations,
    oi_opt_argvs,
    parse_and_verify,
    pipeline_text,
    run_oi_opt,
    temp_dir,
)

pytestmark = pytest.mark.filterwarnings("ignore::RuntimeWarning")

HEAVY = HeavyBudget(8)


@fuzz_settings(400)
@given(mlir_mutations(), st.data())
def test_mutated_mlir(case, data) -> None:
    name, text = case
    pipeline = pipeline_text(data.draw) if data.draw(st.integers(0, 3)) == 0 else None
    if pipeline and any(h in pipeline for h in HEAVY_FLAGS) and not HEAVY.take():
        pipeline = "canonicalize,cse"
    with outcome("mlir-mutated", (name, text, pipeline)):
        parse_and_verify(name, text, "mlir-mutated", pipeline=pipeline)


@fuzz_settings(120)
@given(st.data())
def test_oi_opt_command_lines(data) -> None:
    tmp = temp_dir()
    try:
        argv, stdin = data.draw(oi_opt_argvs(tmp))
        if any(h in a for a in argv for h in HEAVY_FLAGS) and not HEAVY.take():
            argv = [a for a in argv if not any(h in a for h in HEAVY_FLAGS)]
        with outcome("oi-opt", (argv, stdin)):
            status, _, _ = run_oi_opt(argv, stdin, tmp)
            count("oi-opt", f"exit {status}")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
