"""Decode steps on the GPU: oi's `device="cuda"` against PyTorch eager and CUDA graphs, and KV appends.

Two models, both examples/tiny_decoder.oi (decode_models.py): "tiny" (its default dims, 2 layers)
and "larger" (4 layers, D=512 H=8 Hk=4 Dh=64 F=1536 NV=256, 50 MB of f32 weights). For each
context (128, 512, 1024, 2048, 4096 positions already in the KV cache) one decode step (embed a
token, append its key and value to every layer's cache, attend over every cached position, MLP,
logits back on the host) is timed, interleaved round by round in a rotating order, medians, for:

- oi-cuda:     `oi.Simulator(model, graph, device="cuda")`: `insert` + `step` + `fetch("logits")`;
- oi-cpu:      the same on `device="cpu"` (the reference the cuda results are checked against);
- torch-eager: the same math in PyTorch on the GPU (f32, TF32 off) with a preallocated KV cache
               per layer: the new key/value row written in place at position t, attention over
               rows 0..t; the logits copied to the host;
- torch-graph: the same step captured once per context in a `torch.cuda.CUDAGraph` (token and
               position in device tensors, the row written with `index_copy_`, attention over a
               fixed window of the cache with the rows after t masked out; the window is the
               context plus the steps this run takes there, at most ROUNDS * STEPS + 1 more rows);
               replay, then the logits to the host.

The torch columns read "n/a" without torch or a GPU for it. Each context is reached at once: a
state saved by a cpu executor after one step is rewritten (`--prefill synthetic`, the default) so
its KV tables hold `context` positions of random keys and values (the documented state-file
layout, runtime/state_file.py) and loaded into both executors with `load_state`; torch's caches
get the same rows (`exe.state("Kc")`). `--prefill step` steps the cpu executor there instead
(slow for the larger model: about 40 s to 4096). Every implementation then steps the same
tokens; the first step is the correctness check (logits against oi-cpu's: exit status 1 beyond
TOLERANCE for oi-cuda, TORCH_TOLERANCE for torch, as max |diff| / max(1, max |cpu|)), and the
last logits of every round are checked again.

Per step the table also gives oi-cuda's launcher counters (`exe.launch_counts` over the timed
steps): op calls, kernel launches, how many of the op calls and copies ran from compiled code
without Python ("compiled"), and the host time the Python path spent outside the kernels and inside
them (compiled calls are not timed apart: their time is the step's). oi-cuda runs with
`OI_CUDA_COMPILE_AFTER=1` unless the environment sets it: its kernel sets get their compiled
launches on their second call, before the timed rounds (runtime/compiled_launches.py).

KV append: the same bytes a decode step appends (2 * L * Hk * Dh floats, all layers' keys and
values) and a 1 MiB entry, as one `cache.write x >> K[t]; cache.increment t;` step
(table_append.py's graph on `device="cuda"`, `insert` + `step`; no op statement, so no launch) next to
a device-to-device copy of the same bytes into a preallocated device cache row (cuMemcpyDtoD
through oi_compiler/runtime/cuda.py: GPU time between CUDA events, and host wall time including a
synchronize) and torch's `copy_` into a cache row (wall, synchronized). GB/s counts the bytes read
plus as many written.

    OI_GPU_EMULATE=1 python benchmarks/gpu_decode.py --smoke       # here: emulated kernels, seconds
    python benchmarks/gpu_decode.py [--sizes tiny,larger] [--contexts 128,512,1024,2048,4096]
                                    [--rounds 5] [--steps 4] [--json results.json]
    python benchmarks/gpu_bundle.py run benchmarks/gpu_decode.py    # on the lent GPU machine

Exit status: 0, 1 when a result differs, 2 when `device="cuda"` cannot run (no GPU, no emulation).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from decode_models import SIZES, model_and_weights, rope_table_rows, td  # noqa: E402
from table_append import GRAPH as APPEND_GRAPH  # noqa: E402

import oi_compiler as oi  # noqa: E402

CONTEXTS = (128, 512, 1024, 2048, 4096)
ROUNDS = 5  # timed rounds per context
STEPS = 4  # decode steps per implementation per round
TOLERANCE = 1e-4  # oi-cuda against oi-cpu
TORCH_TOLERANCE = 1e-3  # torch (another summation order, GPU libraries) against oi-cpu
APPEND_FILL = 64  # entries in the table before appends are timed
APPEND_WINDOW = 16  # appends timed per implementation per round
MIB_ENTRY = (256, 1024)  # f32: 1 MiB
NA = "n/a"

#: --smoke: tiny sizes, one context, few rounds (what tests/e2e/test_gpu_decode_benchmark.py runs)
SMOKE = {
    "sizes": {"tiny": dict(td.DIMS), "larger": dict(td.DIMS, L=4)},  # larger: 4 layers at tiny dims
    "contexts": (128,),
    "rounds": 2,
    "steps": 2,
    "append_shapes": [(8, 8)],
    "append_window": 4,
    "append_fill": 8,
}


def relative_error(got: np.ndarray, want: np.ndarray) -> float:
    """max |got - want| / max(1, max |want|); inf on a shape mismatch or NaN."""
    if got.shape != want.shape:
        return float("inf")
    worst = float(np.max(np.abs(got.astype(np.float64) - want.astype(np.float64))))
    return worst / max(1.0, float(np.max(np.abs(want)))) if np.isfinite(worst) else float("inf")


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


# ============================================================================= environment


def load_torch() -> tuple[Any, str]:
    """(torch, its version) when torch imports and sees a GPU, else (None, why not)."""
    try:
        import torch
    except ImportError:
        return None, "no torch"
    if not torch.cuda.is_available():
        return None, f"torch {torch.__version__} sees no GPU"
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    return torch, f"torch {torch.__version__} on {torch.cuda.get_device_name()}"


def gpu_launcher() -> tuple[Any, str]:
    """(oi_compiler.runtime.cuda, device name) when a launcher and a GPU are there, else (None, why not)."""
    from oi_compiler.runtime import cuda

    reason = cuda.unavailable_reason()
    if reason is not None:
        return None, reason
    return cuda, f"{cuda.device_name()} through {cuda.launcher_name()}"


# ============================================================================= reaching a context


def synthetic_state(template: Path, out: Path, context: int, dims: dict[str, int], seed: int) -> Path:
    """`template` (a tiny_decoder state saved after at least one step) with `context` positions of
    random keys and values in Kc and Vc, pos = context; written to `out`."""
    with np.load(template) as archive:
        arrays = {name: archive[name] for name in archive.files}
    header = json.loads(arrays.pop("header").tobytes().decode())
    rng = np.random.default_rng(seed)
    L, Hk, Dh = dims["L"], dims["Hk"], dims["Dh"]
    for name in ("Kc", "Vc"):
        desc = header["persistent"][name]
        entries = rng.standard_normal((L * context, Hk, Dh), dtype=np.float32)
        desc["sizes"] = [L, context]
        desc["keys"] = [[layer, t] for layer in range(L) for t in range(context)]
        desc["entries"]["shape"] = [L * context, Hk, Dh]
        arrays[desc["entries"]["array"]] = entries.view(np.uint32)
    arrays[header["persistent"]["pos"]["value"]["array"]] = np.array(context, np.int32).view(np.uint32)
    header["steps"] = context
    with open(out, "wb") as f:
        np.savez(f, header=np.frombuffer(json.dumps(header).encode(), dtype=np.uint8), **arrays)
    return out


def reach_context(cpu: oi.Executor, context: int, dims: dict[str, int], prefill: str, tokens: list[int],
                  workdir: Path) -> Path:  # fmt: skip
    """Bring `cpu` to `context` cached positions; the path of its saved state (for the others)."""
    state = workdir / f"context_{context}.npz"
    if prefill == "step":
        position = int(cpu.state("pos"))
        if position > context:
            cpu.reset()
            position = 0
        while position < context:
            td.graph_step(cpu, tokens[position % len(tokens)])
            position += 1
        cpu.save_state(state)
        return state
    template = workdir / "template.npz"
    if not template.exists():
        cpu.reset()
        td.graph_step(cpu, 0)
        cpu.save_state(template)
    synthetic_state(template, state, context, dims, seed=context)
    cpu.load_state(state)
    return state


# ============================================================================= PyTorch on the GPU


class TorchGpuDecoder:
    """tiny_decoder's step in PyTorch eager on the GPU, with preallocated KV caches [capacity, Hk, Dh]
    per layer: `step` writes row t in place and attends over rows 0..t."""

    def __init__(self, torch: Any, weights: dict[str, Any], dims: dict[str, int], capacity: int,
                 device: str = "cuda"):  # fmt: skip
        self.torch, self.dims, self.capacity, self.device = torch, td.full_dims(dims), capacity, device
        d = self.dims
        self.w = weights
        self.layers = [{n: weights[f"layers.{l}.{n}"] for n in td.LAYER_TENSORS} for l in range(d["L"])]
        self.kbuf = [torch.zeros(capacity, d["Hk"], d["Dh"], device=device) for _ in self.layers]
        self.vbuf = [torch.zeros(capacity, d["Hk"], d["Dh"], device=device) for _ in self.layers]
        cos, sin = rope_table_rows(capacity, d["Dh"])
        self.cos, self.sin = torch.from_numpy(cos).to(device), torch.from_numpy(sin).to(device)
        self.rows = torch.arange(capacity, device=device)
        self.group, self.scale = d["H"] // d["Hk"], 1.0 / float(np.sqrt(d["Dh"]))
        self.position = 0

    @staticmethod
    def upload(torch: Any, weights: dict[str, np.ndarray], device: str = "cuda") -> dict[str, Any]:
        return {name: torch.from_numpy(np.array(value, dtype=np.float32)).to(device) for name, value in weights.items()}

    def load_cache(self, keys: np.ndarray, values: np.ndarray) -> None:
        """Rows 0..t-1 from [L, t, Hk, Dh] arrays (what `exe.state("Kc")` reads); position t."""
        t = keys.shape[1]
        for layer, (kb, vb) in enumerate(zip(self.kbuf, self.vbuf)):
            kb.zero_()
            vb.zero_()
            kb[:t].copy_(self.torch.from_numpy(np.array(keys[layer])))
            vb[:t].copy_(self.torch.from_numpy(np.array(values[layer])))
        self.position = t

    def rms_norm(self, x, weight):
        return x * self.torch.rsqrt((x * x).mean(dim=-1, keepdim=True) + td.EPS) * weight

    @staticmethod
    def rope(torch: Any, x, cos, sin):
        half = x.shape[-1] // 2
        return x * cos + torch.cat([-x[..., half:], x[..., :half]], dim=-1) * sin

    def forward(self, token: Any, position: Any, window: int | None):
        """The logits [1, NV] on the device. Eager: `token` and `position` are ints, rows 0..t.
        Captured: device tensors, rows 0..window-1 with those after `position` masked out."""
        torch, d = self.torch, self.dims
        if window is None:
            x = self.w["embed"][token].unsqueeze(0)
            cos, sin = self.cos[position], self.sin[position]
        else:
            x = self.w["embed"].index_select(0, token)
            cos, sin = self.cos.index_select(0, position), self.sin.index_select(0, position)
            masked = self.rows[:window] > position  # [window]
        for layer, kb, vb in zip(self.layers, self.kbuf, self.vbuf):
            h = self.rms_norm(x, layer["attn_norm"])
            q = self.rope(torch, (h @ layer["wq"]).view(d["H"], d["Dh"]), cos, sin)
            k = self.rope(torch, (h @ layer["wk"]).view(d["Hk"], d["Dh"]), cos, sin)
            v = (h @ layer["wv"]).view(d["Hk"], d["Dh"])
            if window is None:
                kb[position] = k
                vb[position] = v
                keys, values = kb[: position + 1], vb[: position + 1]
            else:
                kb.index_copy_(0, position, k.unsqueeze(0))
                vb.index_copy_(0, position, v.unsqueeze(0))
                keys, values = kb[:window], vb[:window]
            scores = (q.view(d["Hk"], self.group, d["Dh"]) @ keys.permute(1, 2, 0)) * self.scale  # [Hk, G, n]
            if window is not None:
                scores = scores.masked_fill(masked, float("-inf"))
            ctx = torch.softmax(scores, dim=-1) @ values.transpose(0, 1)  # [Hk, G, Dh]
            x = x + ctx.reshape(1, -1) @ layer["wo"]
            h = self.rms_norm(x, layer["mlp_norm"])
            x = x + (torch.nn.functional.silu(h @ layer["w_gate"]) * (h @ layer["w_up"])) @ layer["w_down"]
        return self.rms_norm(x, self.w["final_norm"]) @ self.w["lm_head"]

    def step(self, token: int) -> np.ndarray:
        with self.torch.no_grad():
            logits = self.forward(token, self.position, None)
        self.position += 1
        return logits.cpu().numpy()


class TorchGraphDecoder(TorchGpuDecoder):
    """The same step captured in a CUDA graph (`capture(window)` once per context), replayed per token."""

    def __init__(self, torch: Any, weights: dict[str, Any], dims: dict[str, int], capacity: int,
                 device: str = "cuda"):  # fmt: skip
        super().__init__(torch, weights, dims, capacity, device)
        self.token = torch.zeros(1, dtype=torch.long, device=device)
        self.pos = torch.zeros(1, dtype=torch.long, device=device)
        self.graph, self.out = None, None

    def _body(self, window: int):
        out = self.forward(self.token, self.pos, window)
        self.pos.add_(1)
        return out

    def capture(self, window: int) -> None:
        """Capture the step over cache rows 0..window-1 at the current position."""
        torch = self.torch
        if self.position + 3 >= self.capacity or window > self.capacity:
            raise ValueError(f"capture: window {window} at position {self.position} exceeds capacity {self.capacity}")
        self.graph, self.out = None, None
        with torch.no_grad():
            self.pos.fill_(self.position)
            side = torch.cuda.Stream()
            side.wait_stream(torch.cuda.current_stream())
            with torch.cuda.stream(side):  # warm-up, as torch.cuda.graphs asks: writes rows t..t+2, masked later
                for _ in range(3):
                    self._body(window)
            torch.cuda.current_stream().wait_stream(side)
            graph = torch.cuda.CUDAGraph()
            with torch.cuda.graph(graph):
                self.out = self._body(window)
            self.graph = graph
            self.pos.fill_(self.position)
        torch.cuda.synchronize()

    def step(self, token: int) -> np.ndarray:
        self.token.fill_(token)
        self.graph.replay()
        self.position += 1
        return self.out.cpu().numpy()


# ============================================================================= decode steps


class OiDecoder:
    """An executor of tiny_decoder.oi: `step(token)` is insert + step + fetch("logits")."""

    def __init__(self, exe: oi.Executor):
        self.exe = exe

    def step(self, token: int) -> np.ndarray:
        return td.graph_step(self.exe, token)


def counts_of(exe: oi.Executor) -> dict[str, float] | None:
    counts = getattr(exe, "launch_counts", None)
    if counts is None:
        return None
    return {k: float(getattr(counts, k)) for k in ("op_calls", "launches", "copies", "staged", "compiled_calls",
                                                   "prepared", "host_seconds", "kernel_seconds")}  # fmt: skip


def _failed(what: str, error: BaseException) -> str:
    text = " ".join(str(error).split())
    return f"{what} raised {type(error).__name__}: {text[:300]}"


def run_size(label: str, dims: dict[str, int], contexts: tuple[int, ...], rounds: int, steps: int,
             prefill: str, torch: Any, workdir: Path, budget_end: float) -> tuple[list[dict], list[str]]:  # fmt: skip
    """One model at every context: the rows of the table and the failures. An implementation that
    raises or differs from oi-cpu is reported and dropped; the others go on."""
    model, weights = model_and_weights(dims)
    graph = oi.Graph.load(td.GRAPH)
    t0 = time.perf_counter()
    cpu = oi.Simulator(model, graph, device="cpu").make_executor()
    cuda = oi.Simulator(model, graph, device="cuda").make_executor()
    print(f"[{label}] oi cpu + cuda compile {time.perf_counter() - t0:.2f} s", file=sys.stderr, flush=True)
    impls: dict[str, Any] = {"oi-cuda": OiDecoder(cuda), "oi-cpu": OiDecoder(cpu)}
    capacity = max(contexts) + 1 + rounds * steps + 4
    failures: list[str] = []
    if torch is not None:
        try:
            device_weights = TorchGpuDecoder.upload(torch, weights)
            impls["torch-eager"] = TorchGpuDecoder(torch, device_weights, dims, capacity)
            impls["torch-graph"] = TorchGraphDecoder(torch, device_weights, dims, capacity)
        except Exception as e:  # noqa: BLE001 - reported, and the oi columns still run
            failures.append(_failed(f"{label}: torch setup", e))
    rng = np.random.default_rng(1)
    tokens = [int(t) for t in rng.integers(dims["NV"], size=max(contexts) + 1 + rounds * steps)]
    rows = []
    for context in contexts:
        t0 = time.perf_counter()
        state = reach_context(cpu, context, dims, prefill, tokens, workdir)
        keys, values = cpu.state("Kc"), cpu.state("Vc")
        row: dict[str, Any] = {"model": label, "context": context, "errors": {}, "failed": {}}
        prepare = {"oi-cuda": lambda: cuda.load_state(state)}
        for name in ("torch-eager", "torch-graph"):
            if name in impls:
                prepare[name] = (lambda impl=impls[name]: impl.load_cache(keys, values))
        if "torch-graph" in impls:
            load = prepare["torch-graph"]
            prepare["torch-graph"] = lambda: (load(), impls["torch-graph"].capture(context + 1 + rounds * steps))

        def drop(name: str, message: str) -> None:
            failures.append(message)
            row["failed"][name] = message
            impls.pop(name, None)

        for name, ready in prepare.items():
            if name in impls:
                try:
                    ready()
                except Exception as e:  # noqa: BLE001
                    drop(name, _failed(f"{label} context {context}: preparing {name}", e))
        print(f"[{label}] context {context}: state ready in {time.perf_counter() - t0:.2f} s", file=sys.stderr, flush=True)

        def check(outputs: dict[str, np.ndarray], where: str) -> None:
            for name, logits in outputs.items():
                if name == "oi-cpu":
                    continue
                err = relative_error(logits, outputs["oi-cpu"])
                row["errors"][name] = max(err, row["errors"].get(name, 0.0))
                limit = TOLERANCE if name.startswith("oi") else TORCH_TOLERANCE
                if not err <= limit:
                    drop(name, f"{label} context {context} {where}: {name} differs from oi-cpu by {err:.2e} (> {limit:g})")

        def step(name: str, token: int) -> np.ndarray | None:
            try:
                return impls[name].step(token)
            except Exception as e:  # noqa: BLE001
                if name == "oi-cpu":
                    raise
                drop(name, _failed(f"{label} context {context}: {name} step", e))
                return None

        t0 = time.perf_counter()
        first = {name: step(name, tokens[0]) for name in list(impls)}  # the first oi-cuda step makes its kernels
        check({name: out for name, out in first.items() if out is not None}, "first step")
        print(f"[{label}] context {context}: checked in {time.perf_counter() - t0:.2f} s", file=sys.stderr, flush=True)
        names = list(impls)
        samples: dict[str, list[float]] = {name: [] for name in names}
        before = counts_of(cuda)
        for r in range(rounds):
            if r and time.perf_counter() > budget_end:
                print(f"[{label}] context {context}: time budget spent after {r} rounds", file=sys.stderr, flush=True)
                break
            last = {}
            for name in names[r % len(names) :] + names[: r % len(names)]:
                for i in range(steps):
                    if name not in impls:
                        break
                    t = time.perf_counter()
                    out = step(name, tokens[1 + r * steps + i])
                    elapsed = time.perf_counter() - t
                    if out is not None:
                        last[name] = out
                        samples[name].append(elapsed)
            check({name: out for name, out in last.items() if name in impls}, f"round {r}")
        after = counts_of(cuda)
        row["us"] = {name: median(s) * 1e6 for name, s in samples.items() if s and name in impls}
        timed = len(samples.get("oi-cuda", []))
        row["steps"] = timed
        if "oi-cuda" in row["us"] and before is not None and after is not None and timed:
            row["per_step"] = {k: (after[k] - before[k]) / timed for k in ("op_calls", "launches", "copies", "staged",
                                                                          "compiled_calls", "host_seconds",
                                                                          "kernel_seconds")}  # fmt: skip
            row["per_step"]["prepared_while_timed"] = after["prepared"] - before["prepared"]
        rows.append(row)
    return rows, failures


def print_decode_table(rows: list[dict], rounds: int, steps: int, torch_note: str) -> None:
    print(f"\nmedian µs per decode step ({rounds} rounds x {steps} steps, interleaved; logits back on the host)")
    print(f"{'model':<8}{'context':>8}{'oi-cuda':>10}{'oi-cpu':>10}{'torch-eager':>13}{'torch-graph':>13}"
          f"{'cuda/eager':>12}{'cuda/graph':>12}{'ops':>6}{'launches':>10}{'copies':>8}{'compiled':>10}{'host µs':>10}"
          f"{'kernel µs':>11}"
          f"{'max err':>10}")  # fmt: skip
    for row in rows:
        us = row.get("us", {})

        def cell(name: str, width: int) -> str:
            if name in us:
                return f"{us[name]:>{width}.0f}"
            return f"{'FAILED' if name in row.get('failed', {}) else NA:>{width}}"

        def ratio(name: str) -> str:
            return f"{us['oi-cuda'] / us[name]:>11.2f}x" if name in us and "oi-cuda" in us else f"{NA:>12}"

        per = row.get("per_step", {})
        counts = (f"{per['op_calls']:>6.0f}{per['launches']:>10.0f}{per['copies']:>8.0f}{per['compiled_calls']:>10.0f}"
                  f"{per['host_seconds'] * 1e6:>10.0f}{per['kernel_seconds'] * 1e6:>11.0f}") if per \
            else f"{NA:>6}{NA:>10}{NA:>8}{NA:>10}{NA:>10}{NA:>11}"  # fmt: skip
        worst = max(row["errors"].values(), default=0.0)
        print(f"{row['model']:<8}{row['context']:>8}{cell('oi-cuda', 10)}{cell('oi-cpu', 10)}{cell('torch-eager', 13)}"
              f"{cell('torch-graph', 13)}{ratio('torch-eager')}{ratio('torch-graph')}{counts}{worst:>10.1e}")  # fmt: skip
    print("cuda/eager, cuda/graph: oi-cuda's time over torch's (2.00x = half torch's speed); ops, launches, copies"
          " (device copies and fills), compiled (op calls and copies run without Python), host µs, kernel µs (the"
          " Python path's): oi-cuda's launcher per step; max err: vs oi-cpu, max |diff| / max(1, max |cpu|)")
    late = [f"{r['model']} {r['context']}" for r in rows if r.get("per_step", {}).get("prepared_while_timed")]
    if late:
        print(f"kernels were made during the timed steps of: {', '.join(late)} (their oi-cuda medians may be high)")
    if torch_note:
        print(f"torch columns: {torch_note}")


# ============================================================================= KV append bandwidth


class DeviceRow:
    """Row `index` of a device array [N, *shape] as a `__cuda_array_interface__` object."""

    def __init__(self, base: Any, index: int, shape: tuple[int, ...], dtype: Any):
        nbytes = int(np.prod(shape)) * np.dtype(dtype).itemsize
        self.__cuda_array_interface__ = {"shape": tuple(shape), "typestr": np.dtype(dtype).str, "version": 3,
                                         "data": (base.pointer + index * nbytes, False), "strides": None}  # fmt: skip


def run_appends(shapes: list[tuple[int, int]], rounds: int, window: int, fill: int, gpu: Any, torch: Any,
                budget_end: float) -> tuple[list[dict], list[str]]:  # fmt: skip
    """The append table's rows and the failures (a column that raises is reported and dropped)."""
    graph = oi.parse_graph(APPEND_GRAPH, "table_append.oi")
    rows, failures = [], []
    for shape in shapes:
        nbytes = int(np.prod(shape)) * 4
        entry = np.random.default_rng(2).standard_normal(shape, dtype=np.float32)
        exe = oi.Simulator(oi.Model(sizevars={"R": shape[0], "E": shape[1]}, tensors={}), graph,
                           device="cuda").make_executor()  # fmt: skip
        for _ in range(fill):
            exe.insert(x=entry)
            exe.step()
        capacity = fill + rounds * window + 8
        timers: dict[str, Callable[[], list[float]]] = {}

        def oi_append() -> list[float]:
            times = []
            for _ in range(window):
                t = time.perf_counter()
                exe.insert(x=entry)
                exe.step()
                times.append(time.perf_counter() - t)
            return times

        timers["oi-cuda"] = oi_append
        try:
            if gpu is not None:
                src, cache = gpu.to_device(entry), gpu.empty((capacity, *shape), np.float32)
            if torch is not None:
                tsrc = torch.from_numpy(entry).cuda()
                tcache = torch.empty((capacity, *shape), dtype=torch.float32, device="cuda")
        except Exception as e:  # noqa: BLE001 - reported; the oi column still runs
            failures.append(_failed(f"append {shape}: device buffers", e))
            gpu = torch = None
        if gpu is not None:
            slot = {"next": 0}

            def rows_for(n: int) -> list[DeviceRow]:
                start = slot["next"] % (capacity - n)
                slot["next"] += n
                return [DeviceRow(cache, start + i, shape, np.float32) for i in range(n)]

            def dtod_events() -> list[float]:
                targets = iter(rows_for(window + 2) * 2)
                return [ms / 1e3 for ms in gpu.time_ms(lambda: gpu.copy(next(targets), src), repeat=window)]

            def dtod_wall() -> list[float]:
                times = []
                for row in rows_for(window):
                    t = time.perf_counter()
                    gpu.copy(row, src)
                    gpu.synchronize()
                    times.append(time.perf_counter() - t)
                return times

            timers["DtoD events"] = dtod_events
            timers["DtoD wall"] = dtod_wall
        if torch is not None:
            tslot = {"next": 0}

            def torch_copy() -> list[float]:
                times = []
                for _ in range(window):
                    i = tslot["next"] % capacity
                    tslot["next"] += 1
                    t = time.perf_counter()
                    tcache[i].copy_(tsrc)
                    torch.cuda.synchronize()
                    times.append(time.perf_counter() - t)
                return times

            timers["torch copy_"] = torch_copy
        before = counts_of(exe)
        samples: dict[str, list[float]] = {name: [] for name in timers}
        names = list(timers)
        for r in range(rounds):
            if r and time.perf_counter() > budget_end:
                break
            for name in names[r % len(names) :] + names[: r % len(names)]:
                if name not in timers:
                    continue
                try:
                    samples[name].extend(timers[name]())
                except Exception as e:  # noqa: BLE001
                    if name == "oi-cuda":
                        raise
                    failures.append(_failed(f"append {shape}: {name}", e))
                    del timers[name]
                    samples[name] = []
        after = counts_of(exe)
        size = exe.table_sizes("K")[0]
        stored = exe.state("K")
        if size != fill + len(samples["oi-cuda"]) or not np.array_equal(stored[-1], entry):
            raise SystemExit(f"append {shape}: the table holds {size} entries, expected {fill + len(samples['oi-cuda'])}")
        row = {"shape": list(shape), "bytes": nbytes, "us": {n: median(s) * 1e6 for n, s in samples.items() if s}}
        if before is not None and after is not None:
            row["op_calls_per_append"] = (after["op_calls"] - before["op_calls"]) / max(1, len(samples["oi-cuda"]))
        rows.append(row)
    return rows, failures


def print_append_table(rows: list[dict], gpu_note: str, torch_note: str) -> None:
    names = ("oi-cuda", "DtoD events", "DtoD wall", "torch copy_")
    print("\nKV append: median µs per append of one entry (f32) and GB/s (bytes read + written)")
    print(f"{'entry':<12}{'bytes':>9}" + "".join(f"{n + ' µs':>17}{'GB/s':>8}" for n in names) + f"{'oi ops':>8}")
    for row in rows:
        line = f"{'x'.join(map(str, row['shape'])):<12}{row['bytes']:>9}"
        for name in names:
            us = row["us"].get(name)
            if us is None:
                line += f"{NA:>17}{NA:>8}"
            else:
                line += f"{us:>17.2f}{2 * row['bytes'] / (us * 1e-6) / 1e9:>8.3f}"
        print(line + f"{row.get('op_calls_per_append', float('nan')):>8.0f}")
    print("oi-cuda: `insert` + `step` of `cache.write x >> K[t]; cache.increment t;` (table_append.py's graph);"
          " 'oi ops': op calls per append")
    if gpu_note:
        print(f"DtoD columns: {gpu_note}")
    if torch_note:
        print(f"torch column: {torch_note}")


# ============================================================================= main


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sizes", default=",".join(SIZES), help="comma-separated: " + ", ".join(SIZES))
    p.add_argument("--contexts", default=",".join(map(str, CONTEXTS)), help="comma-separated context lengths")
    p.add_argument("--rounds", type=int, default=ROUNDS)
    p.add_argument("--steps", type=int, default=STEPS)
    p.add_argument("--prefill", choices=("synthetic", "step"), default="synthetic",
                   help="reach a context by rewriting a saved state (default) or by stepping on cpu")
    p.add_argument("--no-appends", action="store_true", help="skip the KV append table")
    p.add_argument("--budget-s", type=float, default=420.0, help="stop starting timed rounds after this")
    p.add_argument("--json", type=Path, help="also write the results here")
    p.add_argument("--smoke", action="store_true",
                   help="tiny dims (larger = 4 layers of them), context 128, 2 rounds x 2 steps, no torch/GPU copies")
    args = p.parse_args(argv)
    os.environ.setdefault("OI_CUDA_COMPILE_AFTER", "1")  # compiled launches from each kernel set's second call
    started = time.perf_counter()
    budget_end = started + args.budget_s
    if args.smoke:
        sizes = {label: SMOKE["sizes"][label] for label in args.sizes.split(",")}
        contexts = SMOKE["contexts"]
        rounds, steps = SMOKE["rounds"], SMOKE["steps"]
        append_shapes = SMOKE["append_shapes"]
        append_window, append_fill = SMOKE["append_window"], SMOKE["append_fill"]
        torch, torch_note = None, "n/a (--smoke)"
    else:
        sizes = {label: SIZES[label] for label in args.sizes.split(",")}
        contexts = tuple(sorted(int(c) for c in args.contexts.split(",")))
        rounds, steps = args.rounds, args.steps
        append_shapes = sorted({(2 * d["L"] * d["Hk"], d["Dh"]) for d in sizes.values()} | {MIB_ENTRY},
                               key=lambda s: s[0] * s[1])  # fmt: skip
        append_window, append_fill = APPEND_WINDOW, APPEND_FILL
        torch, torch_note = load_torch()
    from oi_compiler.runtime.gpu_emulation import emulation_requested

    emulated = emulation_requested()
    gpu, gpu_note = gpu_launcher()
    torch_version = ""
    if torch is None and not torch_note.startswith("n/a"):
        torch_note = f"n/a (no torch/GPU: {torch_note})"
    elif torch is not None:
        torch_note, torch_version = "", torch_note
    print(f"gpu_decode: oi device=cuda kernels {'emulated on the CPU (OI_GPU_EMULATE=1)' if emulated else 'on the GPU'}"
          f"; GPU: {gpu_note}; {torch_version if torch is not None else torch_note}; numpy {np.__version__}; "
          f"prefill {args.prefill}", flush=True)  # fmt: skip
    for label, d in sizes.items():
        print(f"  {label}: " + " ".join(f"{k}={v}" for k, v in d.items() if k != "T"), flush=True)
    results: dict[str, Any] = {"emulated": emulated, "gpu": gpu_note, "torch": torch_note or torch_version,
                               "rounds": rounds, "steps": steps, "decode": [], "append": []}  # fmt: skip
    failures: list[str] = []
    try:
        with tempfile.TemporaryDirectory(prefix="gpu_decode_") as tmp:
            for label, dims in sizes.items():
                workdir = Path(tmp) / label
                workdir.mkdir()
                rows, failed = run_size(label, dims, contexts, rounds, steps, args.prefill, torch, workdir, budget_end)
                results["decode"] += rows
                failures += failed
    except oi.OiError as e:
        if type(e).__name__ == "GpuUnavailableError":
            print(f"gpu_decode: device='cuda' unavailable: {e}")
            return 2
        raise
    print_decode_table(results["decode"], rounds, steps, torch_note)
    if not args.no_appends:
        results["append"], failed = run_appends(append_shapes, rounds, append_window, append_fill,
                                                None if args.smoke else gpu, torch, budget_end)  # fmt: skip
        failures += failed
        print_append_table(results["append"], "n/a (--smoke)" if args.smoke else ("" if gpu else f"n/a ({gpu_note})"),
                           torch_note)  # fmt: skip
    for failure in failures:
        print(f"FAIL: {failure}")
    print(f"\n{'FAILED' if failures else 'ok'} ({time.perf_counter() - started:.1f} s)")
    results["failures"] = failures
    if args.json:
        args.json.write_text(json.dumps(results, indent=1) + "\n")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
