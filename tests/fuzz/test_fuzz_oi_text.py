"""Fuzz target 1: `.oi` text.

- `test_generated_programs`: grammar-aware programs (tests/fuzz/oi_grammar.py) through
  `oi.parse_graph`, and those that parse and verify through `oi.Simulator(device="reference")`
  and, a few per run (`OI_FUZZ_HEAVY`), `device="cpu"`, a step or two with random inputs, and
  every read-out.
- `test_mutated_sources`: byte-level mutations of the bundled `.oi` sources (examples/*.oi and
  lit_tests' `.oi` inputs), decoded as UTF-8 with lone surrogates kept, through the same chain;
  now and then as a file through `oi.Graph.load` (undecodable bytes included).

Only `oi.OiError`s may escape, and never `oi.InternalError`.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import oi_compiler as oi

from ._support import EXAMPLES, LIT, Seeds, call, count, fuzz_settings, outcome
from .oi_grammar import byte_mutations, model_for, oi_programs, run_program

pytestmark = pytest.mark.filterwarnings("ignore::RuntimeWarning")  # numpy's overflow notes on odd values

SEEDS = Seeds({str(p.relative_to(EXAMPLES.parent)): p.read_bytes()
               for p in [*sorted(EXAMPLES.glob("*.oi")), *sorted(LIT.rglob("*.oi"))] if "Output" not in p.parts})


@fuzz_settings(200)
@given(oi_programs())
def test_generated_programs(case) -> None:
    text, model, seed = case
    with outcome("oi-generated", text):
        run_program(text, model, seed, target="oi-generated")


@fuzz_settings(200)
@given(byte_mutations(SEEDS), st.integers(0, 2**32 - 1), st.integers(0, 9))
def test_mutated_sources(case, seed: int, how: int) -> None:
    name, data = case
    target = "oi-mutated"
    with outcome(target, (name, data)):
        text = data.decode("utf-8", "surrogateescape")
        if how == 0:  # as a file: Graph.load reads and decodes it
            with tempfile.TemporaryDirectory() as tmp:
                path = Path(tmp) / Path(name).name
                path.write_bytes(data)
                call("Graph.load", oi.Graph.load, path)
        graph, error = call("parse_graph", oi.parse_graph, text, Path(name).name)
        if graph is None:
            count(target, f"rejected: {type(error).__name__}")
            return
        model = model_for(graph, np.random.default_rng(seed))
        if "tiny_decoder" in name and how < 5:
            model = {"sizevars": {**model["sizevars"], "L": 2}, "tensors": model["tensors"]}
        run_program(text, model, seed, target=target, steps=1, filename=Path(name).name)


def test_the_seeds_parse() -> None:
    """The mutations start from real programs (a seed that stopped parsing would weaken them)."""
    parsed = 0
    for name, data in SEEDS.items():
        try:
            oi.parse_graph(data.decode(), Path(name).name)
            parsed += 1
        except oi.OiError:
            pass  # lit's error cases are seeds too
    assert parsed >= 3


@pytest.mark.parametrize("target", ["oi-text", "mlir", "model", "state"])
def test_atheris_seeds(target: str) -> None:
    """The atheris harness (tests/fuzz/atheris_harness.py) runs each of its targets' seeds."""
    pytest.importorskip("atheris")
    from .atheris_harness import TARGETS, seeds

    for seed in seeds(target):
        TARGETS[target](seed)
