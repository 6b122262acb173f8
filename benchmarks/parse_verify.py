"""Front-end speed: parse and verify a generated 32-layer decoder graph from `.oi` text.

Goal (issue #2): under 1 s on a 2-core machine. Prints the median of several runs,
split into lexing+parsing and verification, and the statements per second.
"""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from decoder_graph import decoder_graph_text  # noqa: E402

import oi_compiler as oi  # noqa: E402
from oi_compiler.frontend.oi_dsl import parse_module  # noqa: E402


def main(layers: int = 32, repeats: int = 7) -> None:
    text = decoder_graph_text(layers)
    oi.parse_graph(text, "warmup.oi")  # imports and first-use caches out of the measurement
    parse_s, verify_s = [], []
    for _ in range(repeats):
        t0 = time.perf_counter()
        module = parse_module(text, "decoder.oi")
        t1 = time.perf_counter()
        oi.Graph(module, "decoder.oi").verify()
        t2 = time.perf_counter()
        parse_s.append(t1 - t0)
        verify_s.append(t2 - t1)
    statements = sum(1 for _ in module.walk()) - 1
    p, v = statistics.median(parse_s), statistics.median(verify_s)
    print(f"decoder graph: {layers} layers, {len(text.splitlines())} lines, {statements} ops")
    print(f"{'stage':<10}{'median s':>10}{'ops/s':>12}")
    print(f"{'parse':<10}{p:>10.4f}{statements / p:>12.0f}")
    print(f"{'verify':<10}{v:>10.4f}{statements / v:>12.0f}")
    print(f"{'total':<10}{p + v:>10.4f}{statements / (p + v):>12.0f}   (goal < 1 s: {'met' if p + v < 1 else 'MISSED'})")


if __name__ == "__main__":
    main()
