"""A coverage-guided harness (atheris, libFuzzer) over the same drivers as the hypothesis targets.

    pip install atheris        # not a dependency of the project
    .venv/bin/python -m tests.fuzz.atheris_harness oi-text -atheris_runs=100000 CORPUS_DIR
    .venv/bin/python -m tests.fuzz.atheris_harness mlir|model|state [libFuzzer flags] [CORPUS_DIR]

A failing input is written under /tmp (`-artifact_prefix=/tmp/oi-atheris-TARGET-` unless given),
never into the working directory.

Targets: `oi-text` (bytes as `.oi` text through parse, verify and a reference step), `mlir`
(bytes as MLIR through `oi.parse_mlir` and `oi.verify_module`), `model` (bytes as an `.oinf` or
`.npz` file through `oi.Model.open` and every query), `state` (bytes as a checkpoint through
`exe.load_state`). A bug (anything but an `oi.OiError`, or an `InternalError`) raises, and atheris
writes the input that raised; bugs already pinned (`_support.KNOWN`) are let through. With no
corpus directory, the seeds of the hypothesis targets are the starting corpus.
`test_atheris_seeds` runs each target once per seed when atheris is installed (else it is skipped).
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import numpy as np


def _oi_text(data: bytes) -> None:
    import oi_compiler as oi

    from ._support import call, outcome
    from .oi_grammar import model_for, run_program

    with outcome("atheris-oi-text", data):
        text = data.decode("utf-8", "surrogateescape")
        graph, _ = call("parse_graph", oi.parse_graph, text, "fuzz.oi")
        if graph is not None:
            run_program(text, model_for(graph, np.random.default_rng(0)), 0, target="atheris-oi-text", steps=1, cpu=False)


def _mlir(data: bytes) -> None:
    from ._support import outcome
    from .mlir_fuzz import parse_and_verify

    with outcome("atheris-mlir", data):
        parse_and_verify("atheris", data.decode("utf-8", "replace"), "atheris-mlir")


def _model(data: bytes) -> None:
    from ._support import outcome
    from .test_fuzz_models import read_everything

    with outcome("atheris-model", data), tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / ("model.npz" if data.startswith(b"PK") else "model.oinf")
        path.write_bytes(data)
        read_everything(path, "atheris-model")


def _state(data: bytes) -> None:
    from ._support import outcome
    from .test_fuzz_checkpoints import check_load

    with outcome("atheris-state", data):
        check_load("reference", data, "atheris-state")


TARGETS = {"oi-text": _oi_text, "mlir": _mlir, "model": _model, "state": _state}


def seeds(target: str) -> list[bytes]:
    if target == "oi-text":
        from .test_fuzz_oi_text import SEEDS
    elif target == "mlir":
        from .mlir_fuzz import SEEDS

        return [text.encode() for text in SEEDS.values()]
    elif target == "model":
        from .test_fuzz_models import SEEDS
    else:
        from .test_fuzz_checkpoints import SEEDS
    return list(SEEDS.values())


def main(argv: list[str]) -> None:
    import atheris

    if len(argv) < 2 or argv[1] not in TARGETS:
        sys.exit(f"usage: python -m tests.fuzz.atheris_harness {{{'|'.join(TARGETS)}}} [libFuzzer flags] [CORPUS_DIR]")
    target, rest = argv[1], [argv[0], *argv[2:]]
    if not any(a.startswith("-artifact_prefix=") for a in rest):  # crashes go to /tmp, not the working tree
        rest.insert(1, f"-artifact_prefix={tempfile.gettempdir()}/oi-atheris-{target}-")
    if not any(not a.startswith("-") for a in rest[1:]):  # no corpus: start from the seeds
        corpus = Path(tempfile.mkdtemp(prefix=f"oi-atheris-{target}-"))
        for n, seed in enumerate(seeds(target)):
            (corpus / f"seed{n}").write_bytes(seed)
        rest.append(str(corpus))
    TARGETS[target](seeds(target)[0])  # imports what the target runs (oi_compiler imports lazily) ...
    atheris.instrument_all()  # ... so that all of it is instrumented for coverage
    atheris.Setup(rest, TARGETS[target])
    atheris.Fuzz()


if __name__ == "__main__":
    main(sys.argv)
