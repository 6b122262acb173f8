"""KV-cache append: `oi.kv.KvCacheAppendPlan.run` against numpy scatters and torch.index_copy_.

One append writes `k_new [B, H, L_new, D]` and `v_new` into `k_cache [B, H, L_max, D]` and
`v_cache` at ragged per-sample offsets (random in `[0, L_max - L_new]`, so every cell lands), in
place. The implementations, all single-threaded and all given the same arrays:

- plan:          `KvCacheAppendPlan.select(desc).run(args)` (policy "error"): `can_implement`,
                 then the compiled kernel (runtime/kv_append.py): one memcpy per (b, h) and cache;
- numpy-fancy:   one fancy-index scatter per cache, its indices built per call from the offsets
                 (`k_cache[b_idx, :, pos_idx, :] = k_new.transpose(0, 2, 1, 3)`);
- numpy-slices:  a Python loop over the samples, one slice assignment per sample and cache
                 (`k_cache[b, :, o:o + L_new] = k_new[b]`);
- graph:         the same append as two `cache.append` statements of a graph run by
                 `device="cpu"` (`exe.step()`, offsets fed through `exe.inputs`): the tables are the
                 executor's (K, V `@fixed(b, h, t)`, `@init(1.0)`), and every written entry is
                 journaled for rollback, which the plan does not do;
- torch:         `index_copy_` along the flattened (b, h, position) rows of torch views of the
                 same arrays, its index built per call with torch ops ("skipped" when torch is
                 not importable).

Every implementation is first checked bit-exactly against a per-element reference on a small
problem, then the timed problems' results are compared with the plan's. For each (B, L_new) the
implementations run in a rotating order over ROUNDS interleaved rounds; each round times REPS
calls back to back (enough for about 20 ms) and keeps the mean. The table gives the median µs per
append, GB/s moved (k_new and v_new read plus the same bytes written into the caches), and each
baseline's time over the plan's (> 1: the plan is faster).

    python benchmarks/kv_append.py                    # f16, H=8, D=128, L_max=1024 (about 40 s)
    python benchmarks/kv_append.py --quick            # a few seconds
    python benchmarks/kv_append.py --dtype float32 --rounds 9
"""

from __future__ import annotations

import os

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"  # before numpy (and torch) are imported

import argparse
import statistics
import time
from collections.abc import Callable

import ml_dtypes
import numpy as np

from oi_compiler import kv

try:
    import torch

    torch.set_num_threads(1)
except ImportError:  # the torch column reads "skipped"
    torch = None

BATCHES = (1, 4, 16, 64)
NEW_LENS = (1, 32, 512)
QUICK_BATCHES = (1, 16)
QUICK_NEW_LENS = (1, 64)
DTYPES = {"float16": np.float16, "bfloat16": ml_dtypes.bfloat16, "float32": np.float32, "float64": np.float64}
TARGET_SECONDS = 0.02  # each round's batch of calls

Append = Callable[[kv.KvCacheAppendArgs], None]


# ----------------------------------------------------------------------------- implementations


def plan_append(desc: kv.KvCacheAppendDescriptor) -> Append:
    return kv.KvCacheAppendPlan.select(desc).run


def numpy_fancy(args: kv.KvCacheAppendArgs) -> None:
    B, _, L, _ = args.k_new.shape
    b_idx = np.arange(B)[:, None]
    pos_idx = args.cache_offsets[:, None] + np.arange(L)
    args.k_cache[b_idx, :, pos_idx, :] = args.k_new.transpose(0, 2, 1, 3)
    args.v_cache[b_idx, :, pos_idx, :] = args.v_new.transpose(0, 2, 1, 3)


def numpy_slices(args: kv.KvCacheAppendArgs) -> None:
    L = args.k_new.shape[2]
    for b, offset in enumerate(args.cache_offsets.tolist()):
        args.k_cache[b, :, offset : offset + L] = args.k_new[b]
        args.v_cache[b, :, offset : offset + L] = args.v_new[b]


def torch_index_copy(args: kv.KvCacheAppendArgs) -> None:
    """`index_copy_` on [B*H*L_max, D] views; torch shares the numpy arrays' memory (bfloat16
    arrays are handed over as int16 bits, which torch.from_numpy takes)."""
    B, H, L, _ = args.k_new.shape
    L_max = args.k_cache.shape[2]
    offsets = torch.from_numpy(args.cache_offsets)
    rows = (torch.arange(B * H).view(B, H, 1) * L_max + offsets.view(B, 1, 1) + torch.arange(L)).reshape(-1)
    for new, cache in ((args.k_new, args.k_cache), (args.v_new, args.v_cache)):
        target = _torch(cache).view(-1, cache.shape[3])
        target.index_copy_(0, rows, _torch(new).reshape(-1, new.shape[3]))


class GraphAppend:
    """The append as a graph's two `cache.append` statements, stepped on device "cpu"."""

    def __init__(self, desc: kv.KvCacheAppendDescriptor, args: kv.KvCacheAppendArgs):
        import oi_compiler as oi

        B, H, L, L_max, D = desc.batch_size, desc.num_heads, desc.new_len, desc.max_cache_len, desc.d_k
        dtype = {np.dtype(np.float16): "f16", np.dtype(ml_dtypes.bfloat16): "bf16", np.dtype(np.float32): "f32",
                 np.dtype(np.float64): "f64"}[np.dtype(desc.element)]  # fmt: skip
        table = f"@table @fixed(b = {B}, h = {H}, t = {L_max}) @init(1.0)"
        graph = oi.parse_graph(f"""graph! {{
            dynamic {{ k_new: {dtype}[{B}, {H}, {L}, {D}]; v_new: {dtype}[{B}, {H}, {L}, {D}]; off: i64[{B}]; }}
            persistent {{ K(b, h, t): {dtype}[{D}] {table}; V(b, h, t): {dtype}[{D}] {table}; }}
            block entry {{ cache.append k_new >> K[off]; cache.append v_new >> V[off]; return; }}
        }}""")
        self.exe = oi.Simulator(oi.Model(), graph, device="cpu").make_executor()
        self.exe.insert(k_new=args.k_new, v_new=args.v_new, off=args.cache_offsets)
        self.offsets = self.exe.inputs["off"]

    def __call__(self, args: kv.KvCacheAppendArgs) -> None:
        self.offsets[...] = args.cache_offsets
        self.exe.step()

    def caches(self) -> tuple[np.ndarray, np.ndarray]:
        return self.exe.state("K"), self.exe.state("V")


def _torch(array: np.ndarray):
    return torch.from_numpy(array.view(np.int16) if array.dtype == ml_dtypes.bfloat16 else array)


def implementations(desc: kv.KvCacheAppendDescriptor, args: kv.KvCacheAppendArgs) -> dict[str, Append | None]:
    return {"plan": plan_append(desc), "numpy-fancy": numpy_fancy, "numpy-slices": numpy_slices,
            "graph": GraphAppend(desc, args), "torch": torch_index_copy if torch is not None else None}  # fmt: skip


# ----------------------------------------------------------------------------- problems


def descriptor(B: int, H: int, L: int, L_max: int, D: int, dtype) -> kv.KvCacheAppendDescriptor:
    return kv.KvCacheAppendDescriptor(batch_size=B, num_heads=H, new_len=L, max_cache_len=L_max, d_k=D, d_v=D,
                                      element=dtype)  # fmt: skip


def make_args(desc: kv.KvCacheAppendDescriptor, rng: np.random.Generator) -> kv.KvCacheAppendArgs:
    """Random inputs, caches filled with 1.0 (as baracuda's benchmarks: no zero pages), ragged
    offsets that all fit."""
    B, H, L, L_max, D = desc.batch_size, desc.num_heads, desc.new_len, desc.max_cache_len, desc.d_k
    return kv.KvCacheAppendArgs(
        k_new=rng.standard_normal((B, H, L, D), np.float32).astype(desc.element),
        v_new=rng.standard_normal((B, H, L, D), np.float32).astype(desc.element),
        cache_offsets=rng.integers(0, L_max - L, size=B, endpoint=True, dtype=np.int64),
        k_cache=np.ones((B, H, L_max, D), desc.element),
        v_cache=np.ones((B, H, L_max, D), desc.element),
    )


def fresh_caches(args: kv.KvCacheAppendArgs) -> kv.KvCacheAppendArgs:
    return kv.KvCacheAppendArgs(k_new=args.k_new, v_new=args.v_new, cache_offsets=args.cache_offsets,
                                k_cache=args.k_cache.copy(), v_cache=args.v_cache.copy())  # fmt: skip


def bits(array: np.ndarray) -> np.ndarray:
    return array.view({2: np.uint16, 4: np.uint32, 8: np.uint64}[array.itemsize])


def reference(args: kv.KvCacheAppendArgs) -> tuple[np.ndarray, np.ndarray]:
    """The appended caches, element by element."""
    k_cache, v_cache = bits(args.k_cache).copy(), bits(args.v_cache).copy()
    B, H, L, _ = args.k_new.shape
    for b in range(B):
        for h in range(H):
            for l in range(L):
                k_cache[b, h, args.cache_offsets[b] + l] = bits(args.k_new)[b, h, l]
                v_cache[b, h, args.cache_offsets[b] + l] = bits(args.v_new)[b, h, l]
    return k_cache, v_cache


def check(impls: dict[str, Append | None], args: kv.KvCacheAppendArgs, expected: tuple[np.ndarray, ...]) -> None:
    """Each implementation, on its own copy of the caches, leaves them bit-equal to `expected`."""
    for name, append in impls.items():
        if append is None:
            continue
        mine = fresh_caches(args)
        append(mine)
        k_cache, v_cache = append.caches() if isinstance(append, GraphAppend) else (mine.k_cache, mine.v_cache)
        if not (np.array_equal(bits(k_cache), expected[0]) and np.array_equal(bits(v_cache), expected[1])):
            raise SystemExit(f"{name}: the caches differ from the expected append")


# ----------------------------------------------------------------------------- timing


def calls_per_round(append: Append, args: kv.KvCacheAppendArgs) -> int:
    t0 = time.perf_counter()
    append(args)
    return max(1, min(2000, round(TARGET_SECONDS / max(time.perf_counter() - t0, 1e-7))))


def time_round(append: Append, args: kv.KvCacheAppendArgs, reps: int) -> float:
    """Mean seconds per call over `reps` back-to-back calls."""
    clock = time.perf_counter
    t0 = clock()
    for _ in range(reps):
        append(args)
    return (clock() - t0) / reps


def measure(desc: kv.KvCacheAppendDescriptor, rounds: int, rng: np.random.Generator) -> dict[str, float | None]:
    """Median seconds per append of each implementation (None: not available)."""
    args = make_args(desc, rng)
    impls = implementations(desc, args)
    expected = fresh_caches(args)
    impls["plan"](expected)
    check(impls, args, (bits(expected.k_cache), bits(expected.v_cache)))
    live = {name: a for name, a in impls.items() if a is not None}
    reps = {name: calls_per_round(a, args) for name, a in live.items()}
    samples: dict[str, list[float]] = {name: [] for name in live}
    names = list(live)
    for r in range(rounds):
        for name in names[r % len(names) :] + names[: r % len(names)]:
            samples[name].append(time_round(live[name], args, reps[name]))
    return {name: statistics.median(samples[name]) if name in samples else None for name in impls}


def overhead(desc: kv.KvCacheAppendDescriptor, rng: np.random.Generator, reps: int = 20000) -> tuple[float, float]:
    """Seconds per `plan.run` and per `plan.can_implement` on a one-row problem."""
    plan, args = kv.KvCacheAppendPlan.select(desc), make_args(desc, rng)
    return (min(time_round(plan.run, args, reps) for _ in range(3)),
            min(time_round(plan.can_implement, args, reps) for _ in range(3)))  # fmt: skip


# ----------------------------------------------------------------------------- report


def print_table(rows: list[tuple[int, int, float, dict[str, float | None]]], title: str) -> None:
    baselines = ["numpy-fancy", "numpy-slices", "graph", "torch"]
    print(f"\n{title}")
    head = f"{'B':>4}{'L_new':>7}{'MiB':>9}{'plan µs':>11}{'GB/s':>7}"
    for name in baselines:
        head += f"{name + ' µs':>18}{'GB/s':>7}{'x plan':>8}"
    print(head)
    for B, L, nbytes, times in rows:
        plan = times["plan"]
        line = f"{B:>4}{L:>7}{nbytes / 2**20:>9.2f}{plan * 1e6:>11.1f}{nbytes / plan / 1e9:>7.2f}"
        for name in baselines:
            t = times[name]
            line += f"{'skipped':>33}" if t is None else f"{t * 1e6:>18.1f}{nbytes / t / 1e9:>7.2f}{t / plan:>8.2f}"
        print(line)
    if torch is None:
        print("torch: skipped (not importable; `pip install torch` adds the column)")
    print("x plan > 1: the plan is faster; GB/s counts k_new and v_new read plus as many bytes written")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="B in 1,16 and L_new in 1,64, 3 rounds (a few seconds)")
    p.add_argument("--rounds", type=int, help="interleaved rounds (default 7, 3 with --quick)")
    p.add_argument("--dtype", choices=DTYPES, default="float16", help="element type (default float16)")
    p.add_argument("--heads", type=int, default=8, help="H (default 8)")
    p.add_argument("--head-dim", type=int, default=128, help="D_k = D_v (default 128)")
    p.add_argument("--max-len", type=int, default=1024, help="L_max, the cache capacity (default 1024)")
    args = p.parse_args()
    rounds = args.rounds or (3 if args.quick else 7)
    batches, new_lens = (QUICK_BATCHES, QUICK_NEW_LENS) if args.quick else (BATCHES, NEW_LENS)
    dtype = DTYPES[args.dtype]
    rng = np.random.default_rng(0)
    small = descriptor(3, 2, 5, 16, 8, dtype)
    args_small = make_args(small, rng)
    check(implementations(small, args_small), args_small, reference(args_small))
    rows = []
    for B in batches:
        for L in new_lens:
            desc = descriptor(B, args.heads, L, args.max_len, args.head_dim, dtype)
            nbytes = 2 * 2 * B * args.heads * L * args.head_dim * np.dtype(dtype).itemsize
            rows.append((B, L, nbytes, measure(desc, rounds, rng)))
    title = (f"{args.dtype}, H={args.heads}, D_k=D_v={args.head_dim}, L_max={args.max_len}; median µs per append "
             f"over {rounds} interleaved rounds; MiB moved per append")  # fmt: skip
    print_table(rows, title)
    run, can = overhead(descriptor(1, 1, 1, 16, 8, dtype), rng)
    print(f"per-call overhead (B=H=L_new=1, D=8): plan.run {run * 1e6:.1f} µs, of which can_implement "
          f"{can * 1e6:.1f} µs (checks and the five data pointers); the rest is the ctypes call")


if __name__ == "__main__":
    main()
