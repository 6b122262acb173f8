"""A tiny 2-layer transformer decoder, compiled for the CPU and run token by token.

    python examples/tiny_decoder.py                 # 12 greedy steps, checked against numpy
    python examples/tiny_decoder.py --device reference   # the same on the numpy interpreter
    OI_GPU_EMULATE=1 python examples/tiny_decoder.py --device cuda   # GPU kernels (emulated without a GPU)
    python examples/tiny_decoder.py --steps 20 --start 5 --model /tmp/m.oinf --seed 3 --rebuild

`examples/tiny_decoder.oi` is the graph: a Llama-style decoder (RMSNorm, rotary
embeddings, grouped-query attention over a growing KV cache table per layer,
SwiGLU MLP). This module holds everything around it:

- `make_weights(seed, dims)`: random float32 weights named as the graph's
  `@pattern`s expect (`layers.<l>.wq`, ...);
- `write_model(path, seed, dims)`: those weights and the size variables saved as an
  `oi.Model` file (`.oinf`, or `.npz` by suffix);
- `NumpyDecoder`: the same model in plain numpy, written without any oi op (its
  own rms_norm, rope, attention over an explicit list of cached keys and values,
  SwiGLU), used as the oracle;
- `main()`: greedy decoding with both, side by side; exits 1 when they diverge. The
  graph runs on `device="cpu"` (its whole step compiled to native code, cached after
  the first run) unless `--device reference` is given.

The model file (`examples/tiny_decoder.oinf` by default) is generated on first
run and is deterministic (seed 0), so it need not be kept.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

import oi_compiler as oi

HERE = Path(__file__).resolve().parent
GRAPH = HERE / "tiny_decoder.oi"
MODEL = HERE / "tiny_decoder.oinf"

#: Size variables: model width, query heads, key/value heads (grouped-query attention:
#: H // Hk query heads share one kv head), head width, MLP hidden width, vocabulary,
#: layers, and T, the context capacity (the nominal first dim of the graph's `keys` and
#: `values`; the cache table itself grows one position per step).
DIMS: dict[str, int] = dict(D=32, H=4, Hk=2, Dh=8, F=64, NV=48, L=2, T=64)

EPS = 1e-6  # the graph's rms_norm eps
THETA = 10000.0  # the graph's rope theta
LAYER_TENSORS = ("attn_norm", "wq", "wk", "wv", "wo", "mlp_norm", "w_gate", "w_up", "w_down")
TOLERANCE = 1e-4  # main(): the largest |logit difference| accepted


def full_dims(dims: Mapping[str, int] | None = None) -> dict[str, int]:
    """`dims` over `DIMS` (so `{"L": 1}` is DIMS with one layer), checked for consistency."""
    out = {**DIMS, **(dims or {})}
    if out["H"] % out["Hk"]:
        raise ValueError(f"H={out['H']} must be a multiple of Hk={out['Hk']}")
    if out["Dh"] % 2:
        raise ValueError(f"Dh={out['Dh']} must be even (rotary embeddings rotate pairs)")
    return out


def make_weights(seed: int = 0, dims: Mapping[str, int] | None = None) -> dict[str, np.ndarray]:
    """Random float32 weights: projections ~ N(0, 1/fan_in), norm weights ~ 1 + N(0, 0.1^2)."""
    d = full_dims(dims)
    rng = np.random.default_rng(seed)

    def dense(fan_in: int, fan_out: int) -> np.ndarray:
        return (rng.standard_normal((fan_in, fan_out)) / math.sqrt(fan_in)).astype(np.float32)

    def norm(n: int) -> np.ndarray:
        return (1.0 + 0.1 * rng.standard_normal(n)).astype(np.float32)

    D, H, Hk, Dh, F, NV = (d[k] for k in ("D", "H", "Hk", "Dh", "F", "NV"))
    weights = {"embed": rng.standard_normal((NV, D)).astype(np.float32)}
    for l in range(d["L"]):
        layer = {
            "attn_norm": norm(D),
            "wq": dense(D, H * Dh),
            "wk": dense(D, Hk * Dh),
            "wv": dense(D, Hk * Dh),
            "wo": dense(H * Dh, D),
            "mlp_norm": norm(D),
            "w_gate": dense(D, F),
            "w_up": dense(D, F),
            "w_down": dense(F, D),
        }
        weights.update({f"layers.{l}.{name}": value for name, value in layer.items()})
    weights["final_norm"] = norm(D)
    weights["lm_head"] = dense(D, NV)
    return weights


def make_model(seed: int = 0, dims: Mapping[str, int] | None = None) -> oi.Model:
    """An in-memory `oi.Model`: the size variables and `make_weights(seed, dims)`."""
    d = full_dims(dims)
    return oi.Model(sizevars=d, tensors=make_weights(seed, d))


def write_model(path: str | Path = MODEL, seed: int = 0, dims: Mapping[str, int] | None = None) -> Path:
    """Save `make_model(seed, dims)` to `path` (`.oinf`, or `.npz` by suffix); returns the path."""
    return make_model(seed, dims).save(path)


# --- the oracle: the same decoder in plain numpy ------------------------------------------------


def rms_norm(x: np.ndarray, weight: np.ndarray, eps: float = EPS) -> np.ndarray:
    mean_square = (x * x).sum(axis=-1, keepdims=True) / np.float32(x.shape[-1])
    return x / np.sqrt(mean_square + np.float32(eps)) * weight


def rotate(x: np.ndarray, position: int, theta: float = THETA) -> np.ndarray:
    """Rotary embedding of the rows of x [heads, Dh], GPT-NeoX / HF Llama "rotate half" layout:
    dims i and i + Dh/2 form a pair rotated by the angle position * theta**(-2i/Dh)."""
    half = x.shape[-1] // 2
    angle = np.array([position * theta ** (-2.0 * i / x.shape[-1]) for i in range(half)])  # float64
    cos = np.concatenate([np.cos(angle), np.cos(angle)]).astype(np.float32)
    sin = np.concatenate([np.sin(angle), np.sin(angle)]).astype(np.float32)
    rotated_half = np.concatenate([-x[..., half:], x[..., :half]], axis=-1)
    return x * cos + rotated_half * sin


def silu(x: np.ndarray) -> np.ndarray:
    return x / (np.float32(1.0) + np.exp(-x))


class NumpyDecoder:
    """The tiny decoder in plain numpy, one token per `step`, keeping its own KV cache.

    `keys[l]` / `values[l]` are the per-layer lists of cached [Hk, Dh] arrays (keys
    after rotation), one per position decoded so far.
    """

    def __init__(self, weights: Mapping[str, np.ndarray], dims: Mapping[str, int] | None = None):
        self.dims = full_dims(dims)
        self.w = {name: np.asarray(value, dtype=np.float32) for name, value in weights.items()}
        self.layers = [{name: self.w[f"layers.{l}.{name}"] for name in LAYER_TENSORS} for l in range(self.dims["L"])]
        self.keys: list[list[np.ndarray]] = [[] for _ in self.layers]
        self.values: list[list[np.ndarray]] = [[] for _ in self.layers]
        self.position = 0

    @classmethod
    def from_model(cls, model: oi.Model) -> NumpyDecoder:
        """The decoder for a saved model: its size variables and tensors."""
        return cls({name: model.tensor(name) for name in model.tensor_names()}, model.sizevars)

    def attend(self, q: np.ndarray, keys: list[np.ndarray], values: list[np.ndarray]) -> np.ndarray:
        """One query per head against every cached position: q [H, Dh] -> [H, Dh]."""
        H, Hk, Dh = self.dims["H"], self.dims["Hk"], self.dims["Dh"]
        out = np.empty_like(q)
        for h in range(H):
            kv = h // (H // Hk)  # grouped-query attention: query heads share kv heads in blocks
            scores = np.array([np.dot(q[h], k[kv]) for k in keys], dtype=np.float32) / np.float32(math.sqrt(Dh))
            weights = np.exp(scores - scores.max())
            weights /= weights.sum()
            out[h] = sum(p * v[kv] for p, v in zip(weights, values))
        return out

    def step(self, token_id: int) -> np.ndarray:
        """Decode one token at the current position; returns the logits [1, NV]."""
        d = self.dims
        x = self.w["embed"][token_id][None, :].copy()  # [1, D]
        for layer, keys, values in zip(self.layers, self.keys, self.values):
            h = rms_norm(x, layer["attn_norm"])
            q = rotate((h @ layer["wq"]).reshape(d["H"], d["Dh"]), self.position)
            k = rotate((h @ layer["wk"]).reshape(d["Hk"], d["Dh"]), self.position)
            v = (h @ layer["wv"]).reshape(d["Hk"], d["Dh"])
            keys.append(k)
            values.append(v)
            x = x + self.attend(q, keys, values).reshape(1, -1) @ layer["wo"]
            h = rms_norm(x, layer["mlp_norm"])
            x = x + (silu(h @ layer["w_gate"]) * (h @ layer["w_up"])) @ layer["w_down"]
        self.position += 1
        return rms_norm(x, self.w["final_norm"]) @ self.w["lm_head"]

    def cached(self) -> tuple[np.ndarray, np.ndarray]:
        """The KV cache as [L, positions, Hk, Dh] arrays (what the graph's Kc[] / Vc[] read)."""
        return np.array(self.keys, dtype=np.float32), np.array(self.values, dtype=np.float32)


# --- running the graph --------------------------------------------------------------------------


def one_hot(token_id: int, vocab: int) -> np.ndarray:
    row = np.zeros((1, vocab), dtype=np.float32)
    row[0, token_id] = 1.0
    return row


def make_executor(model: oi.Model, device: str = "reference") -> oi.Executor:
    """A fresh executor of examples/tiny_decoder.oi on `model`."""
    return oi.Simulator(model, oi.Graph.load(GRAPH), device=device).make_executor()


def graph_step(exe: oi.Executor, token_id: int) -> np.ndarray:
    """One step of the graph on `token_id`; returns its logits [1, NV]."""
    exe.insert(token=one_hot(token_id, exe.sim.bound.sizevars["NV"]))
    exe.step()
    return exe.fetch("logits")


def decode(model: oi.Model, start: int, steps: int, device: str = "cpu") -> bool:
    """Greedy decoding with the graph and with NumpyDecoder side by side; True if they agree."""
    begin = time.perf_counter()
    sim = oi.Simulator(model, oi.Graph.load(GRAPH), device=device)
    if sim.native is not None:
        print(f"compiled the step for the CPU in {time.perf_counter() - begin:.2f} s "
              f"(from {'the cache' if sim.native.source != 'compiled' else 'scratch'})")
    exe = sim.make_executor()
    ref = NumpyDecoder.from_model(model)
    print(f"{'step':>4}  {'token':>5}  {'graph ->':>8}  {'numpy ->':>8}  max |logit diff|")
    ok, ours, theirs, times = True, start, start, []
    for step in range(steps):
        begin = time.perf_counter()
        logits = graph_step(exe, ours)
        times.append(time.perf_counter() - begin)
        expected = ref.step(theirs)
        diff = float(np.max(np.abs(logits - expected)))
        fed = ours if ours == theirs else f"{ours}/{theirs}"
        ours, theirs = int(np.argmax(logits)), int(np.argmax(expected))
        bad = diff > TOLERANCE or ours != theirs
        ok &= not bad
        print(f"{step:>4}  {fed:>5}  {ours:>8}  {theirs:>8}  {diff:.3e}{'  DIVERGED' if bad else ''}")
    later = f", then {1e3 * sum(times[1:]) / (steps - 1):.3f} ms per step" if steps > 1 else ""
    print(f"device {device!r}: {1e3 * times[0]:.3f} ms for the first step{later}")
    print("OK: the graph matches numpy" if ok else f"FAIL: the graph and numpy differ by more than {TOLERANCE}")
    return ok


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", type=Path, default=MODEL, help="model file, written if missing (default: %(default)s)")
    p.add_argument("--seed", type=int, default=0, help="weights' seed when writing the model (default 0)")
    p.add_argument("--rebuild", action="store_true", help="write the model file even if it exists")
    p.add_argument("--steps", type=int, default=12, help="tokens to decode (default 12)")
    p.add_argument("--start", type=int, default=3, help="the first token id (default 3)")
    p.add_argument("--device", default="cpu", choices=("cpu", "reference", "cuda"),
                   help="cpu: the compiled step (default); reference: the numpy interpreter; cuda: the "
                        "compiled control plane launching each op's GPU kernels (OI_GPU_EMULATE=1 without a GPU)")
    args = p.parse_args(argv)
    if args.steps < 1:
        p.error("--steps must be at least 1")
    if args.rebuild or not args.model.exists():
        print(f"writing {write_model(args.model, args.seed)}")
    model = oi.Model.open(args.model)
    dims = ", ".join(f"{k}={v}" for k, v in model.sizevars.items())
    print(f"{GRAPH.name} on {args.model.name} ({dims})")
    if args.steps > model.sizevars["T"]:
        print(f"note: {args.steps} steps exceed the nominal context T={model.sizevars['T']}")
    try:
        return 0 if decode(model, args.start, args.steps, args.device) else 1
    except oi.OiError as e:  # (no GPU for --device cuda, say)
        print(e, file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
