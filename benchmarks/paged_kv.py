"""Paged KV tables: `@paged(page = 16)` against the dense storage, for reads and for memory held.

A table declared `K(s, t): T[H, D] @table @paged(page = P)` keeps its entries in pages of P
entries along t, in a pool, with a page table per sequence s; the same declaration without
`@paged` keeps one dense box (capacity x entry). Both run on device="cpu"; the semantics are the
same, so every graph below is one text, compiled once with and once without `@paged(page = 16)`.

1. Reads. A table of 2 sequences is filled (untimed, `cache.append` of CHUNK rows per step) to
   16k positions with random entries; then one step reads `cache.read K[b, 0..ctx] >> keys;` of
   sequence b = 1 (a persistent scalar) for ctx = 16 (one page), 1k, 2k, 4k, 8k, 16k (each ctx its
   own block of the same graph, chosen by a dynamic bool). Two forms of that block:
   - "view": the read alone. The dense storage binds `keys` to a view of the table (no copy:
     nothing after the read changes K, so the compiler aliases it); so does the paged storage
     where the slice lies in one page (ctx = 16), and where it spans pages it gathers the
     entries into `keys`' gather buffer, one copy per page's run (each page looked up in the
     page table);
   - "copy": the read followed by `cache.read K[b, 0] >> probe;`, a one-entry read that makes
     the dense read a copy too (a view must not be followed by an access to K), so both storages
     copy the same bytes.
   The numpy baseline copies the same rows out of a preallocated dense array, `K[b, :ctx].copy()`
   (a new array per call: above the allocator's mmap threshold its pages are faulted in anew
   each time); "np copyto" copies them into a preallocated array instead (`np.copyto(out, ...)`),
   as the graphs' reads reuse their destination buffer.
   Every graph read is first checked bit-exactly against that numpy array. Each round times
   enough back-to-back calls for about 20 ms (one `exe.step()` per call, its flag set outside
   the clock) and keeps the mean; the implementations run in a rotating order over ROUNDS
   interleaved rounds; the table gives medians in µs and the ratios paged/dense and paged/numpy
   (> 1: paged is slower). GB/s counts the bytes read once.
2. Memory. 64 sequences of mixed lengths (fixed seed: uniform in 16..4096, and a long tail,
   lognormal with median 256 clipped to 16..4096) are filled by `cache.append x >> K[off];` of 16
   rows to every sequence per step, at `off[s] = min(16 * step, len[s] - 16)`: a sequence that
   has its length rewrites its last 16 entries, so it neither grows nor takes pages. Then
   `exe.table_nbytes("K")` for dense, paged (the pool starts empty, then 4 pages, doubling when full),
   and paged with the pool sized up front to the pages the lengths need
   (`@paged(page = 16, pages = N)`), against the ideal bytes (sum of lengths x entry bytes), with
   `exe.page_table("K")`'s pages in use and pool size. The page table's CSR is checked against
   the lengths, and every paged table's contents bit-exactly against the dense one's.

    python benchmarks/paged_kv.py                      # f16 entries [8, 128] (2 KiB), 7 rounds (about 30 s)
    python benchmarks/paged_kv.py --quick              # f16 entries [2, 64] (256 B), 3 rounds (about 10 s)
    python benchmarks/paged_kv.py --dtype float32 --heads 4 --head-dim 64 --rounds 9
"""

from __future__ import annotations

import os

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"  # before numpy is imported

import argparse
import statistics
import time
from collections.abc import Callable

import numpy as np

import oi_compiler as oi

CONTEXTS = (16, 1024, 2048, 4096, 8192, 16384)  # 16: one page (the paged view is in place)
PAGE = 16
READ_SEQS = 2  # sequences in the read table; the read is of the last one
CHUNK = 512  # rows appended per fill step of the read table
MEM_SEQS = 64
MEM_CHUNK = 16  # rows appended per fill step of the memory tables (<= the shortest length)
MIN_LEN, MAX_LEN = 16, 4096
DTYPES = {"float16": ("f16", np.float16), "float32": ("f32", np.float32)}
TARGET_SECONDS = 0.02  # each round's batch of calls

#: (storage, bytes held, pages in use, pool pages, fill seconds); dense has no pages
MemoryRow = tuple[str, int, int | None, int | None, float]

# ----------------------------------------------------------------------------- graphs


def read_graph(dtype: str, paged: str) -> str:
    """The fill block, then one view block and one copy block per context (sizes C0..C4)."""
    n = len(CONTEXTS)
    flags = " ".join(f"do_view{i}: bool; do_copy{i}: bool;" for i in range(n))
    dests = " ".join(f"kv{i}: {dtype}[C{i}, H, D]; kc{i}: {dtype}[C{i}, H, D];" for i in range(n))
    branches = " ".join(f"branch do_view{i} view{i} skip; branch do_copy{i} copy{i} skip;" for i in range(n))
    blocks = "\n".join(
        f"    block view{i} {{ cache.read K[b, 0..C{i}] >> kv{i}; return; }}\n"
        f"    block copy{i} {{ cache.read K[b, 0..C{i}] >> kc{i}; cache.read K[b, 0] >> probe; return; }}"
        for i in range(n)
    )
    return f"""graph! {{
    dynamic {{ x: {dtype}[{READ_SEQS}, CH, H, D]; off: i64[{READ_SEQS}]; seq: i64; do_fill: bool; {flags} }}
    volatile {{ {dests} probe: {dtype}[H, D]; }}
    persistent {{ K(s, t): {dtype}[H, D] @table @fixed(s = {READ_SEQS}){paged}; b: i64; }}
    block entry {{ branch do_fill fill skip; {branches} return; }}
    block fill {{ cache.write seq >> b; cache.append x >> K[off]; return; }}
{blocks}
    block skip {{ return; }}
}}"""


def append_graph(dtype: str, paged: str) -> str:
    return f"""graph! {{
    dynamic {{ x: {dtype}[{MEM_SEQS}, CH, H, D]; off: i64[{MEM_SEQS}]; }}
    persistent {{ K(s, t): {dtype}[H, D] @table @fixed(s = {MEM_SEQS}){paged}; }}
    block entry {{ cache.append x >> K[off]; return; }}
}}"""


def paged_attr(pages: int | None = None) -> str:
    return f" @paged(page = {PAGE})" if pages is None else f" @paged(page = {PAGE}, pages = {pages})"


def bits(array: np.ndarray) -> np.ndarray:
    return array.view({2: np.uint16, 4: np.uint32}[array.itemsize])


# ----------------------------------------------------------------------------- 1. reads


class GraphRead:
    """One read block of an executor: `arm` sets its flag (outside the clock), a call is one step
    (no flag: a step that runs no block)."""

    def __init__(self, exe, flag: str | None):
        self.exe, self.flag = exe, None if flag is None else exe.inputs[flag]

    def arm(self) -> None:
        if self.flag is not None:
            self.flag[...] = True

    def disarm(self) -> None:
        if self.flag is not None:
            self.flag[...] = False

    def __call__(self) -> None:
        self.exe.step()


class NumpyRead:
    """`K[b, :ctx].copy()`, or (`into`) `np.copyto` into a preallocated array."""

    def __init__(self, table: np.ndarray, b: int, ctx: int, into: bool = False):
        self.rows = table[b, :ctx]
        self.out = np.empty_like(self.rows) if into else None

    def arm(self) -> None:
        pass

    disarm = arm

    def __call__(self) -> np.ndarray:
        if self.out is None:
            return self.rows.copy()
        np.copyto(self.out, self.rows)
        return self.out


def read_executor(paged: bool, dtype: str, sizes: dict[str, int], ref: np.ndarray):
    """A read graph's executor with both sequences filled to the largest context."""
    src = read_graph(dtype, paged_attr() if paged else "")
    exe = oi.Simulator(oi.Model(sizevars=sizes), oi.parse_graph(src), device="cpu").make_executor()
    flags = {f"do_{kind}{i}": False for i in range(len(CONTEXTS)) for kind in ("view", "copy")}
    exe.insert(x=ref[:, :CHUNK], off=np.zeros(READ_SEQS, np.int64), seq=READ_SEQS - 1, do_fill=True, **flags)
    x, off = exe.inputs["x"], exe.inputs["off"]
    for start in range(0, ref.shape[1], CHUNK):
        x[...] = ref[:, start : start + CHUNK]
        off[...] = start
        exe.step()
    exe.inputs["do_fill"][...] = False
    return exe


def check_reads(exes: dict[str, object], ref: np.ndarray) -> None:
    """Every read block of every executor gives the numpy rows, bit for bit; the dense view block
    is a view and its copy block a copy (else the table's labels would be wrong)."""
    b = READ_SEQS - 1
    for storage, exe in exes.items():
        for i, ctx in enumerate(CONTEXTS):
            for kind, dest in (("view", f"kv{i}"), ("copy", f"kc{i}")):
                read = GraphRead(exe, f"do_{kind}{i}")
                read.arm()
                read()
                read.disarm()
                if not np.array_equal(bits(exe.fetch(dest)), bits(ref[b, :ctx])):
                    raise SystemExit(f"{storage} {kind} read of {ctx} entries differs from numpy's rows")
    plan = getattr(getattr(exes["dense"], "native", None), "plan", None)
    if plan is not None:  # the compiler's choice (runtime internals: skipped if they move)
        kinds = (plan.vars["kv0"].kind, plan.vars["kc0"].kind)
        if kinds != ("view", "resizable"):
            raise SystemExit(f"dense read destinations: view block {kinds[0]}, copy block {kinds[1]} "
                             "(expected view and resizable)")  # fmt: skip


def calls_per_round(call: Callable[[], object]) -> int:
    t0 = time.perf_counter()
    call()
    return max(1, min(5000, round(TARGET_SECONDS / max(time.perf_counter() - t0, 1e-7))))


def time_round(call, reps: int) -> float:
    """Mean seconds per call over `reps` back-to-back calls."""
    call.arm()
    clock = time.perf_counter
    t0 = clock()
    for _ in range(reps):
        call()
    elapsed = clock() - t0
    call.disarm()
    return elapsed / reps


def measure_reads(exes: dict[str, object], table: np.ndarray, rounds: int) -> dict[int, dict[str, float]]:
    """Median seconds per read, per context and implementation; `empty` is a step with no block."""
    b = READ_SEQS - 1
    impls: dict[tuple[int, str], object] = {}
    for i, ctx in enumerate(CONTEXTS):
        impls[ctx, "numpy"] = NumpyRead(table, b, ctx)
        impls[ctx, "np copyto"] = NumpyRead(table, b, ctx, into=True)
        for storage, exe in exes.items():
            impls[ctx, f"{storage} view"] = GraphRead(exe, f"do_view{i}")
            impls[ctx, f"{storage} copy"] = GraphRead(exe, f"do_copy{i}")
    for storage, exe in exes.items():
        impls[0, f"{storage} empty"] = GraphRead(exe, None)
    reps = {}
    for key, call in impls.items():
        call.arm()
        reps[key] = calls_per_round(call)
        call.disarm()
    samples: dict[tuple[int, str], list[float]] = {key: [] for key in impls}
    keys = list(impls)
    for r in range(rounds):
        shift = r * 7 % len(keys)
        for key in keys[shift:] + keys[:shift]:
            samples[key].append(time_round(impls[key], reps[key]))
    out: dict[int, dict[str, float]] = {}
    for (ctx, name), times in samples.items():
        out.setdefault(ctx, {})[name] = statistics.median(times)
    return out


def print_reads(results: dict[int, dict[str, float]], entry_bytes: int, title: str) -> None:
    times = ["numpy", "np copyto", "dense view", "dense copy", "paged view", "paged copy"]
    ratios = [("paged/dense view", "paged view", "dense view"), ("paged/dense copy", "paged copy", "dense copy"),
              ("paged/numpy", "paged view", "numpy")]  # fmt: skip
    print(f"\n{title}")
    head = f"{'ctx':>6}{'MiB':>7}" + "".join(f"{name:>12}" for name in times)
    print(head + "".join(f"{name:>18}" for name, _, _ in ratios) + f"{'paged GB/s':>12}{'numpy GB/s':>12}")
    for ctx in CONTEXTS:
        t = results[ctx]
        nbytes = ctx * entry_bytes
        line = f"{ctx:>6}{nbytes / 2**20:>7.2f}" + "".join(f"{t[name] * 1e6:>12.1f}" for name in times)
        line += "".join(f"{t[a] / t[b]:>18.2f}" for _, a, b in ratios)
        print(line + f"{nbytes / t['paged view'] / 1e9:>12.2f}{nbytes / t['numpy'] / 1e9:>12.2f}")
    empty = results[0]
    print(f"µs per read: one exe.step() (its block's flag set), or one numpy copy (numpy: .copy(), np copyto: into "
          f"a preallocated array); an empty step (no block runs) takes {empty['dense empty'] * 1e6:.1f} µs dense, "
          f"{empty['paged empty'] * 1e6:.1f} µs paged")  # fmt: skip
    print("paged view: a zero-copy view within one page (ctx 16), else a gather; paged copy: a gather; "
          "dense view: a zero-copy view; "
          "paged/numpy: against .copy(); ratios > 1: paged is slower; GB/s: the bytes read once")  # fmt: skip


# ----------------------------------------------------------------------------- 2. memory


def lengths(kind: str, rng: np.random.Generator) -> np.ndarray:
    if kind == "uniform":
        return rng.integers(MIN_LEN, MAX_LEN, size=MEM_SEQS, endpoint=True).astype(np.int64)
    drawn = np.round(rng.lognormal(mean=np.log(256), sigma=1.0, size=MEM_SEQS))
    return np.clip(drawn, MIN_LEN, MAX_LEN).astype(np.int64)


def pages_needed(lens: np.ndarray) -> int:
    return int((-(-lens // PAGE)).sum())


def fill(paged: str, dtype: str, sizes: dict[str, int], lens: np.ndarray, x: np.ndarray):
    """An append graph's executor with every sequence filled to its length, and the fill's seconds."""
    src = append_graph(dtype, paged)
    exe = oi.Simulator(oi.Model(sizevars=sizes), oi.parse_graph(src), device="cpu").make_executor()
    t0 = time.perf_counter()
    exe.insert(x=x, off=np.zeros(MEM_SEQS, np.int64))
    off = exe.inputs["off"]
    for start in range(0, int(lens.max()), MEM_CHUNK):
        off[...] = np.minimum(start, lens - MEM_CHUNK)
        exe.step()
    return exe, time.perf_counter() - t0


def check_pages(storage: str, exe, lens: np.ndarray) -> oi.PageTable:
    """The CSR page table holds ceil(len / PAGE) pages per sequence, its last one len % PAGE full."""
    table = exe.page_table("K")
    columns = -(-lens // PAGE)
    if not (np.array_equal(np.diff(table.indptr), columns) and
            np.array_equal(table.last_page_len, lens - (columns - 1) * PAGE) and
            table.pages_in_use == columns.sum() == len(np.unique(table.indices)) and
            table.pool_pages >= table.pages_in_use):  # fmt: skip
        raise SystemExit(f"{storage}: the page table does not match the lengths")
    return table


def measure_memory(kind: str, dtype: str, np_dtype, heads: int, head_dim: int,
                   rng: np.random.Generator) -> tuple[np.ndarray, list[MemoryRow]]:  # fmt: skip
    """The lengths drawn and a row per storage."""
    lens = lengths(kind, rng)
    sizes = {"CH": MEM_CHUNK, "H": heads, "D": head_dim}
    x = rng.standard_normal((MEM_SEQS, MEM_CHUNK, heads, head_dim)).astype(np_dtype)
    needed = pages_needed(lens)
    rows = []
    exe, seconds = fill("", dtype, sizes, lens, x)
    rows.append(("dense", exe.table_nbytes("K"), None, None, seconds))
    dense = bits(exe.state("K"))
    del exe
    for storage, attr in (("paged", paged_attr()), (f"paged, pages = {needed}", paged_attr(needed))):
        exe, seconds = fill(attr, dtype, sizes, lens, x)
        table = check_pages(storage, exe, lens)
        if not np.array_equal(bits(exe.state("K")), dense):
            raise SystemExit(f"{storage}: the table's entries differ from the dense table's")
        rows.append((storage, exe.table_nbytes("K"), table.pages_in_use, table.pool_pages, seconds))
        del exe
    return lens, rows


def print_memory(results: list[tuple[str, np.ndarray, list[MemoryRow]]], entry_bytes: int, title: str) -> None:
    print(f"\n{title}")
    print(f"{'lengths':<10}{'storage':<22}{'MiB held':>10}{'x ideal':>9}{'x dense':>9}{'pages in use':>14}"
          f"{'pool pages':>12}{'pool used':>11}{'meta KiB':>10}{'fill s':>8}")  # fmt: skip
    for kind, lens, rows in results:
        ideal = int(lens.sum()) * entry_bytes
        dense = rows[0][1]
        for storage, nbytes, in_use, pool, seconds in rows:
            entries = (in_use * PAGE if pool is not None else MEM_SEQS * capacity(lens)) * entry_bytes  # (no page freed here)
            print(f"{kind:<10}{storage:<22}{nbytes / 2**20:>10.2f}{nbytes / ideal:>9.2f}{nbytes / dense:>9.2f}"
                  f"{'-' if in_use is None else in_use:>14}{'-' if pool is None else pool:>12}"
                  f"{'-' if pool is None else f'{in_use / pool:.0%}':>11}{(nbytes - entries) / 2**10:>10.1f}"
                  f"{seconds:>8.2f}")  # fmt: skip
        print(f"{'':<10}{'ideal':<22}{ideal / 2**20:>10.2f}{1:>9.2f}{ideal / dense:>9.2f}{pages_needed(lens):>14}"
              f"{'':>12}{'':>11}{'':>10}   lengths min {lens.min()}, median {int(np.median(lens))}, "
              f"max {lens.max()}, sum {lens.sum()}")  # fmt: skip
    print("MiB held: exe.table_nbytes('K') (dense: entries box + present bytes; paged: the pages rows took, with their "
          "present bytes and refcounts, + page table; the rest of the pool is reserved address space, never backed); "
          "meta: all but the entries; ideal: sum of lengths x entry bytes; fill s: one run, not timed in rounds")  # fmt: skip


def capacity(lens: np.ndarray) -> int:
    """The dense table's t capacity: 16, doubled until the longest sequence fits."""
    cap = 16
    while cap < lens.max():
        cap *= 2
    return cap


# ----------------------------------------------------------------------------- main


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="entries [2, 64] and 3 rounds (about 10 s)")
    p.add_argument("--rounds", type=int, help="interleaved rounds (default 7, 3 with --quick)")
    p.add_argument("--dtype", choices=DTYPES, default="float16", help="entry dtype (default float16)")
    p.add_argument("--heads", type=int, help="H of an entry [H, D] (default 8, 2 with --quick)")
    p.add_argument("--head-dim", type=int, help="D of an entry [H, D] (default 128, 64 with --quick)")
    p.add_argument("--seed", type=int, default=0, help="the random entries' and lengths' seed (default 0)")
    args = p.parse_args()
    rounds = args.rounds or (3 if args.quick else 7)
    heads = args.heads or (2 if args.quick else 8)
    head_dim = args.head_dim or (64 if args.quick else 128)
    dtype, np_dtype = DTYPES[args.dtype]
    entry_bytes = heads * head_dim * np.dtype(np_dtype).itemsize
    rng = np.random.default_rng(args.seed)

    ref = rng.standard_normal((READ_SEQS, max(CONTEXTS), heads, head_dim)).astype(np_dtype)
    sizes = {"CH": CHUNK, "H": heads, "D": head_dim, **{f"C{i}": c for i, c in enumerate(CONTEXTS)}}
    exes = {storage: read_executor(storage == "paged", dtype, sizes, ref) for storage in ("dense", "paged")}
    check_reads(exes, ref)
    reads = measure_reads(exes, ref, rounds)
    del exes
    entry = f"{dtype} entries [{heads}, {head_dim}] ({entry_bytes} B)"
    print_reads(reads, entry_bytes, f"reads: cache.read K[b, 0..ctx] of one sequence, {entry}, page {PAGE}; "
                f"median µs per read over {rounds} interleaved rounds")  # fmt: skip

    memory = []
    for kind in ("uniform", "long-tail"):
        lens, rows = measure_memory(kind, dtype, np_dtype, heads, head_dim, rng)
        memory.append((kind, lens, rows))
    print_memory(memory, entry_bytes, f"memory: {MEM_SEQS} sequences of {entry}, filled by cache.append of "
                 f"{MEM_CHUNK} rows a step; page {PAGE}")  # fmt: skip


if __name__ == "__main__":
    main()
