"""Decode-step latency: examples/tiny_decoder.oi on device="cpu" against numpy and PyTorch eager.

One decode step (embed one token, append its key and value to every layer's KV cache, attend
over all cached positions, SwiGLU MLP, next-token logits) for the same weights in three
implementations, all single-threaded:

- cpu:   `oi.Simulator(model, examples/tiny_decoder.oi, device="cpu")`, one `insert` +
         `step` + `fetch("logits")` per token (examples/tiny_decoder.py's `graph_step`);
- numpy: `NumpyDecoder` (examples/tiny_decoder.py) with its attention vectorised: the
         oracle's per-head, per-position Python loops are replaced by matmuls over
         preallocated [capacity, Hk, Dh] key/value arrays, and the rotary angles of a
         position are computed once per step (`FastNumpyDecoder`); the unmodified oracle is
         only used to check the first steps;
- torch: `TorchDecoder`, the same model with torch ops under `torch.no_grad()`,
         `torch.set_num_threads(1)`, preallocated KV buffers ("torch: not installed" when
         torch is not importable).

numpy's BLAS is pinned to one thread (OPENBLAS/OMP/MKL_NUM_THREADS=1, set before numpy
is imported). Every implementation steps the same token sequence from position 0 to the
context length (prefill by stepping, logits compared on every step: they must agree to
TOLERANCE), then ROUNDS x STEPS decode steps are timed one by one, the implementations
interleaved in a rotating order; the table gives the median µs per step.

    python benchmarks/decode_step.py                      # tiny and larger dims, contexts 128 and 1024
    python benchmarks/decode_step.py --sizes tiny --contexts 128,512
    pip install torch==2.13.0                              # optional: the torch column
"""

from __future__ import annotations

import os

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"  # before numpy (and torch) are imported

import argparse  # noqa: E402
import math  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable, Mapping  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))

from decode_models import SIZES, model_and_weights, rope_tables, td  # noqa: E402

try:
    import torch  # noqa: E402

    torch.set_num_threads(1)
except ImportError:  # the torch column reads "not installed"
    torch = None

CONTEXTS = (128, 1024)
ROUNDS = 8  # timed rounds per context
STEPS = 4  # decode steps per implementation per round
TOLERANCE = 1e-4  # largest |logit difference| accepted between implementations
ORACLE_STEPS = 8  # steps also checked against the unmodified NumpyDecoder


class FastNumpyDecoder(td.NumpyDecoder):
    """NumpyDecoder with vectorised grouped-query attention over preallocated KV arrays."""

    def __init__(self, weights: Mapping[str, np.ndarray], dims: Mapping[str, int] | None = None, capacity: int = 64):
        super().__init__(weights, dims)
        d = self.dims
        self.group = d["H"] // d["Hk"]
        self.kbuf = [np.zeros((capacity, d["Hk"], d["Dh"]), np.float32) for _ in self.layers]
        self.vbuf = [np.zeros((capacity, d["Hk"], d["Dh"]), np.float32) for _ in self.layers]
        self.scale = np.float32(1.0 / math.sqrt(d["Dh"]))

    def _rope(self, x: np.ndarray, cos: np.ndarray, sin: np.ndarray) -> np.ndarray:
        half = x.shape[-1] // 2
        return x * cos + np.concatenate([-x[..., half:], x[..., :half]], axis=-1) * sin

    def step(self, token_id: int) -> np.ndarray:
        d, n = self.dims, self.position
        if n == len(self.kbuf[0]):  # double the KV capacity
            self.kbuf = [np.concatenate([b, np.zeros_like(b)]) for b in self.kbuf]
            self.vbuf = [np.concatenate([b, np.zeros_like(b)]) for b in self.vbuf]
        cos, sin = rope_tables(n, d["Dh"])
        x = self.w["embed"][token_id][None, :]
        for layer, kb, vb in zip(self.layers, self.kbuf, self.vbuf):
            h = td.rms_norm(x, layer["attn_norm"])
            q = self._rope((h @ layer["wq"]).reshape(d["H"], d["Dh"]), cos, sin)
            kb[n] = self._rope((h @ layer["wk"]).reshape(d["Hk"], d["Dh"]), cos, sin)
            vb[n] = (h @ layer["wv"]).reshape(d["Hk"], d["Dh"])
            keys, values = kb[: n + 1].transpose(1, 2, 0), vb[: n + 1].transpose(1, 0, 2)  # [Hk,Dh,n] [Hk,n,Dh]
            scores = (q.reshape(d["Hk"], self.group, d["Dh"]) @ keys) * self.scale  # [Hk, G, n]
            weights = np.exp(scores - scores.max(axis=-1, keepdims=True))
            weights /= weights.sum(axis=-1, keepdims=True)
            ctx = (weights @ values).reshape(1, -1)  # [Hk, G, Dh] -> [1, H*Dh]
            x = x + ctx @ layer["wo"]
            h = td.rms_norm(x, layer["mlp_norm"])
            x = x + (td.silu(h @ layer["w_gate"]) * (h @ layer["w_up"])) @ layer["w_down"]
        self.position += 1
        return td.rms_norm(x, self.w["final_norm"]) @ self.w["lm_head"]


class TorchDecoder:
    """The same decoder in PyTorch eager (CPU, float32), preallocated KV buffers per layer."""

    def __init__(self, weights: Mapping[str, np.ndarray], dims: Mapping[str, int], capacity: int = 64):
        self.dims = td.full_dims(dims)
        d = self.dims
        self.w = {name: torch.from_numpy(np.array(value, dtype=np.float32)) for name, value in weights.items()}
        self.layers = [{n: self.w[f"layers.{l}.{n}"] for n in td.LAYER_TENSORS} for l in range(d["L"])]
        self.kbuf = [torch.zeros(capacity, d["Hk"], d["Dh"]) for _ in self.layers]
        self.vbuf = [torch.zeros(capacity, d["Hk"], d["Dh"]) for _ in self.layers]
        self.group = d["H"] // d["Hk"]
        self.scale = 1.0 / math.sqrt(d["Dh"])
        self.position = 0

    @staticmethod
    def rms_norm(x, weight):
        return x * torch.rsqrt((x * x).mean(dim=-1, keepdim=True) + td.EPS) * weight

    @staticmethod
    def rope(x, cos, sin):
        half = x.shape[-1] // 2
        return x * cos + torch.cat([-x[..., half:], x[..., :half]], dim=-1) * sin

    @torch.no_grad() if torch is not None else (lambda f: f)
    def step(self, token_id: int) -> np.ndarray:
        d, n = self.dims, self.position
        if n == self.kbuf[0].shape[0]:
            self.kbuf = [torch.cat([b, torch.zeros_like(b)]) for b in self.kbuf]
            self.vbuf = [torch.cat([b, torch.zeros_like(b)]) for b in self.vbuf]
        cos, sin = (torch.from_numpy(t) for t in rope_tables(n, d["Dh"]))
        x = self.w["embed"][token_id].unsqueeze(0)
        for layer, kb, vb in zip(self.layers, self.kbuf, self.vbuf):
            h = self.rms_norm(x, layer["attn_norm"])
            q = self.rope((h @ layer["wq"]).view(d["H"], d["Dh"]), cos, sin)
            kb[n] = self.rope((h @ layer["wk"]).view(d["Hk"], d["Dh"]), cos, sin)
            vb[n] = (h @ layer["wv"]).view(d["Hk"], d["Dh"])
            scores = (q.view(d["Hk"], self.group, d["Dh"]) @ kb[: n + 1].permute(1, 2, 0)) * self.scale
            ctx = torch.softmax(scores, dim=-1) @ vb[: n + 1].transpose(0, 1)  # [Hk, G, Dh]
            x = x + ctx.reshape(1, -1) @ layer["wo"]
            h = self.rms_norm(x, layer["mlp_norm"])
            x = x + (torch.nn.functional.silu(h @ layer["w_gate"]) * (h @ layer["w_up"])) @ layer["w_down"]
        self.position += 1
        return (self.rms_norm(x, self.w["final_norm"]) @ self.w["lm_head"]).numpy()


def make_steppers(dims: dict[str, int], capacity: int) -> dict[str, Callable[[int], np.ndarray]]:
    model, weights = model_and_weights(dims)
    exe = td.make_executor(model, "cpu")
    steppers: dict[str, Callable[[int], np.ndarray]] = {
        "cpu": lambda token: td.graph_step(exe, token),
        "numpy": FastNumpyDecoder(weights, dims, capacity).step,
    }
    if torch is not None:
        steppers["torch"] = TorchDecoder(weights, dims, capacity).step
    steppers["oracle"] = td.NumpyDecoder(weights, dims).step  # checked for ORACLE_STEPS only
    return steppers


def check(position: int, outputs: dict[str, np.ndarray]) -> None:
    base = outputs["cpu"]
    for name, logits in outputs.items():
        diff = float(np.max(np.abs(logits - base)))
        if diff > TOLERANCE:
            raise SystemExit(f"position {position}: {name} differs from cpu by {diff:.3e} (> {TOLERANCE})")


def run_size(label: str, dims: dict[str, int], contexts: tuple[int, ...]) -> list[tuple]:
    rng = np.random.default_rng(1)
    total = max(contexts) + ROUNDS * STEPS
    tokens = [int(t) for t in rng.integers(dims["NV"], size=total)]
    t0 = time.perf_counter()
    steppers = make_steppers(dims, capacity=64)
    print(f"[{label}] cpu compile + model setup {time.perf_counter() - t0:.2f} s", file=sys.stderr)
    oracle = steppers.pop("oracle")
    names = list(steppers)
    position, rows, worst = 0, [], 0.0

    def step_all(token: int) -> None:
        nonlocal position, worst
        outputs = {name: stepper(token) for name, stepper in steppers.items()}
        if position < ORACLE_STEPS:
            outputs["oracle"] = oracle(token)
        check(position, outputs)
        worst = max(worst, max(float(np.max(np.abs(o - outputs["cpu"]))) for o in outputs.values()))
        position += 1

    for context in contexts:
        t0 = time.perf_counter()
        while position < context:
            step_all(tokens[position])
        print(f"[{label}] prefill to {context}: {time.perf_counter() - t0:.1f} s", file=sys.stderr)
        samples: dict[str, list[float]] = {name: [] for name in names}
        last: dict[str, np.ndarray] = {}
        for r in range(ROUNDS):
            order = names[r % len(names) :] + names[: r % len(names)]
            for name in order:
                stepper = steppers[name]
                for i in range(STEPS):
                    token = tokens[position + i]
                    t = time.perf_counter()
                    last[name] = stepper(token)
                    samples[name].append(time.perf_counter() - t)
            check(position + STEPS - 1, last)
            position += STEPS
        medians = {name: statistics.median(samples[name]) for name in names}
        rows.append((label, context, medians))
    print(f"[{label}] max |logit diff| vs cpu over {position} steps: {worst:.2e}", file=sys.stderr)
    return rows


def print_table(rows: list[tuple]) -> None:
    print(f"\nmedian µs per decode step ({ROUNDS} rounds x {STEPS} steps, interleaved; one thread each)")
    print(f"{'model':<8}{'context':>8}{'cpu':>10}{'numpy':>10}{'torch':>10}{'numpy/cpu':>11}{'torch/cpu':>11}")
    for label, context, m in rows:
        cpu, numpy_ = m["cpu"], m["numpy"]
        if "torch" in m:
            torch_col, ratio = f"{m['torch'] * 1e6:>10.0f}", f"{m['torch'] / cpu:>11.2f}"
        else:
            torch_col, ratio = "  torch: not installed", "  torch: not installed"
        print(f"{label:<8}{context:>8}{cpu * 1e6:>10.0f}{numpy_ * 1e6:>10.0f}{torch_col}{numpy_ / cpu:>11.2f}{ratio}")
    print("ratios > 1: the compiled step is faster")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sizes", default=",".join(SIZES), help="comma-separated: " + ", ".join(SIZES))
    p.add_argument("--contexts", default=",".join(map(str, CONTEXTS)), help="comma-separated context lengths")
    args = p.parse_args()
    contexts = tuple(sorted(int(c) for c in args.contexts.split(",")))
    for label in args.sizes.split(","):
        d = SIZES[label]
        print(f"{label}: " + " ".join(f"{k}={v}" for k, v in d.items() if k != "T"), file=sys.stderr)
    print(f"torch: {torch.__version__ if torch is not None else 'not installed'}; numpy {np.__version__}")
    rows = []
    for label in args.sizes.split(","):
        rows += run_size(label, SIZES[label], contexts)
    print_table(rows)


if __name__ == "__main__":
    main()
