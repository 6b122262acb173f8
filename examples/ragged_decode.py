"""A batch of 4 sequences of different lengths decoding over shared KV tables.

Runs examples/ragged_decode.oi step by step on a device (default: both "reference" and "cpu")
through a scenario a serving engine meets: a finished request's sequence emptied and restarted,
a sequence forked from another's prefix (parallel sampling), and a rejected speculative token
rolled back. Every step's attention output and the whole K/V state are checked against an
independent numpy model of the batch (a list of rows per sequence).

K and V are `@paged(page = 4)`: on "cpu" each (sequence, head) row holds pages of 4 entries from a
pool; a fork shares the source's whole pages (copied only when one side changes them), and an
emptied sequence gives its pages back. The graph reads all 16 positions of every row (masking those
past the length) and a read makes an entry present, so each row holds its 4 pages from the first
step; the cpu run prints the pages in use after each step (32, then 30 once sequence 2 shares
sequence 0's first page per head) and checks that the fork shared it.

    python examples/ragged_decode.py [--device cpu|reference|cuda] [--steps N] [--seed S]

(`--device cuda` launches each op's GPU kernels: set OI_GPU_EMULATE=1 where there is no GPU. Its
paged tables' pools are in device memory there, and the reads gather their pages by device copies.)
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

import oi_compiler as oi

HERE = Path(__file__).resolve().parent
B, H, T, DH = 4, 2, 16, 8  # sequences, heads, positions per sequence (the graph's literals), head width


@dataclass
class Step:
    """What one step asks for before its decode (all optional)."""

    finished: tuple[int, ...] = ()  # sequences emptied first
    fork: tuple[int, int, int] | None = None  # (from, to, at)
    pop: int | None = None  # the sequence whose last entry is dropped
    decode: bool = True


SCENARIO = [
    Step(), Step(), Step(),
    Step(finished=(3,)),  # request 3 finished: its sequence restarts empty
    Step(),
    Step(fork=(0, 2, 4)),  # sequence 2 becomes the first 4 entries (one whole page) of sequence 0
    Step(),
    Step(pop=1),  # sequence 1's last token was a rejected speculative token
    Step(), Step(),
]  # fmt: skip


@dataclass
class NumpyBatch:
    """The independent model: each sequence's key and value rows, oldest first."""

    keys: list[list[np.ndarray]] = field(default_factory=lambda: [[] for _ in range(B)])
    values: list[list[np.ndarray]] = field(default_factory=lambda: [[] for _ in range(B)])

    def apply(self, step: Step, q, k_new, v_new) -> np.ndarray | None:
        for b in step.finished:
            self.keys[b], self.values[b] = [], []
        if step.fork is not None:
            src, dst, at = step.fork
            self.keys[dst], self.values[dst] = list(self.keys[src][:at]), list(self.values[src][:at])
        if step.pop is not None:
            self.keys[step.pop].pop()
            self.values[step.pop].pop()
        if not step.decode:
            return None
        out = np.zeros((B, H, 1, DH), np.float32)
        for b in range(B):
            self.keys[b].append(k_new[b, :, 0])
            self.values[b].append(v_new[b, :, 0])
            keys, values = np.stack(self.keys[b], axis=1), np.stack(self.values[b], axis=1)  # [H, n, Dh]
            scores = (q[b] @ keys.transpose(0, 2, 1)) / np.sqrt(DH)  # [H, 1, n]
            weights = np.exp(scores - scores.max(axis=-1, keepdims=True))
            out[b] = (weights / weights.sum(axis=-1, keepdims=True)) @ values
        return out

    def table(self, rows: list[list[np.ndarray]]) -> np.ndarray:
        """K[] as the executor shows it: [B, H, T, Dh], positions past a length zero."""
        out = np.zeros((B, H, T, DH), np.float32)
        for b, seq in enumerate(rows):
            for t, row in enumerate(seq):
                out[b, :, t] = row
        return out


def model() -> oi.Model:
    constants = {
        "positions": np.arange(T, dtype=np.int64),
        "one": np.ones(B, np.int64),
        "masked": np.array([1e30], np.float32),
        "scale": np.array([1 / np.sqrt(DH)], np.float32),
        "one_f": np.array([1.0], np.float32),
    }
    return oi.Model(sizevars={"Dh": DH}, tensors=constants)


def feeds(step: Step, q, k_new, v_new) -> dict[str, np.ndarray]:
    fork = step.fork or (0, 1, 0)
    return {
        "q": q, "k_new": k_new, "v_new": v_new,
        "do_decode": np.array(step.decode), "do_fork": np.array(step.fork is not None),
        "do_pop": np.array(step.pop is not None),
        "finished": np.isin(np.arange(B), step.finished),
        "fork_from": np.array(fork[0]), "fork_to": np.array(fork[1]), "fork_at": np.array(fork[2]),
        "pop_from": np.array(step.pop or 0),
    }  # fmt: skip


def run(device: str, steps: list[Step], seed: int) -> None:
    graph = oi.Graph.load(HERE / "ragged_decode.oi")
    exe = oi.Simulator(model(), graph, device=device).make_executor()
    batch = NumpyBatch()
    rng = np.random.default_rng(seed)
    for n, step in enumerate(steps):
        q, k_new, v_new = (rng.standard_normal((B, H, 1, DH)).astype(np.float32) for _ in range(3))
        exe.insert(**feeds(step, q, k_new, v_new))
        exe.step()
        expected = batch.apply(step, q, k_new, v_new)
        lens = exe.state("lens")
        assert lens.tolist() == [len(seq) for seq in batch.keys], (n, lens)
        np.testing.assert_array_equal(exe.state("K"), batch.table(batch.keys), err_msg=f"K after step {n}")
        np.testing.assert_array_equal(exe.state("V"), batch.table(batch.values), err_msg=f"V after step {n}")
        if expected is not None:
            np.testing.assert_allclose(exe.fetch("out"), expected, rtol=2e-5, atol=2e-6, err_msg=f"out at step {n}")
        pages = ""
        if device == "cpu":
            table = exe.page_table("K")  # rows: (sequence, head) pairs
            first = {row: int(table.indices[table.indptr[row]]) for row in range(len(table.last_page_len))
                     if table.indptr[row + 1] > table.indptr[row]}  # fmt: skip
            if step.fork is not None:
                src, dst, _ = step.fork
                assert all(first[dst * H + h] == first[src * H + h] for h in range(H)), "the fork shares a page"
            pages = f"  K pages in use {table.pages_in_use}"
        print(f"{device:9} step {n}: lengths {lens.tolist()}{pages}  ok")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", choices=["reference", "cpu", "cuda"], action="append")
    parser.add_argument("--steps", type=int, default=len(SCENARIO))
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    steps = (SCENARIO * (args.steps // len(SCENARIO) + 1))[: args.steps]
    for device in args.device or ["reference", "cpu"]:
        try:
            run(device, steps, args.seed)
        except oi.OiError as e:
            print(e, file=sys.stderr)
            return 1
    print("OK: every step matches the numpy model")
    return 0


if __name__ == "__main__":
    sys.exit(main())
