"""Views of `@paged` tables and the pool's reserved address space, stress-tested.

A `cache.read K[b, s..e] >> v` whose destination may be a view is a view of the pool where `s..e`
lies in one page, else of the entries gathered into `v`'s own buffer; `fetch(v)` and the copy
kept before a later step changes what `v` showed resolve it through the page table. Here: random
programs over tables of rank 1 to 3 (entries of no elements too, a `@fixed` last index shorter
than a page, empty slices), several views of one table and one view of a paged and a dense table,
with writes, resets, pops, forks, appends, loops and failed steps between them, against the
reference bit for bit; once more with a pool that moves on every growth. And the reservation
itself where the address space is short.
"""

from __future__ import annotations

import gc
import subprocess
import sys

import numpy as np
import pytest

import oi_compiler as oi
from oi_compiler.runtime import page_pool, reserved_memory
from tests.step_checks import assert_bits, error_text, step

GRAPH = """\
graph! {
    dynamic {
        x: f32ENTRY; a: f32APPENDED; b_in: i64; h_in: i64; t_in: i64; s_in: i64; e_in: i64; r_in: i64; n_in: i64;
        do_write: bool; do_reset: bool; do_pop: bool; do_fork: bool; do_append: bool; do_loop: bool;
        do_read: bool; do_both: bool; do_rows: bool; fail: bool;
    }
    volatile { v: f32VIEW; y: f32ENTRY; u: f32VIEW; q: f32ENTRY; w: f32VIEW; z: f32ENTRY; m: f32ROWS; }
    persistent {
        K(INDICES): f32ENTRY @table KATTRS;
        D(INDICES): f32ENTRY @table DATTRS;
        lens: i64[3];
        Bs: i64; Hs: i64; Ts: i64; S: i64; E: i64; R: i64; N: i64;
    }
    block entry {
        cache.write b_in >> Bs; cache.write h_in >> Hs; cache.write t_in >> Ts;
        cache.write s_in >> S; cache.write e_in >> E; cache.write r_in >> R; cache.write n_in >> N;
        branch do_write wr skip;
        CHANGES
        branch do_loop lp skip;
        branch do_read rd skip;
        branch do_both both skip;
        branch do_rows rows skip;
        branch fail bad skip;
        return;
    }
    block wr { cache.write x >> K[KEY]; cache.write x >> D[KEY]; return; }
    block lp { loop l (i in 0..N) { cache.write x >> K[LOOPKEY]; cache.read K[LOOPSLICE] >> w; op sum_axis(w, axes=[0]) >> z; } return; }
    block rd { cache.read K[SLICE] >> v; op sum_axis(v, axes=[0]) >> y; return; }
    block both { cache.read D[SLICE] >> v; op sum_axis(v, axes=[0]) >> y; cache.read K[RSLICE] >> u; op sum_axis(u, axes=[0]) >> q; return; }
    block rows { cache.read K[ROWSLICE] >> m; return; }
    BLOCKS
    block bad { cache.read K[BADSLICE] >> u; return; }
    block skip { return; }
}
"""

#: rank 2-3: resets of a row, and the sequence statements over `lens`
CHANGES = """branch do_reset rst skip;
        branch do_pop pp skip;
        branch do_fork frk skip;
        branch do_append app skip;"""
BLOCKS = """block rst { cache.reset K[Bs]; cache.reset D[Bs]; return; }
    block pp { cache.pop N K, D [lens] Bs; return; }
    block frk { cache.fork K, D [lens] R >> Bs at Ts; return; }
    block app { cache.append a >> K[lens]; cache.append a >> D[lens]; return; }"""
#: rank 1: a reset of one entry
CHANGES_1 = "branch do_reset rst skip;"
BLOCKS_1 = "block rst { cache.reset K[S]; cache.reset D[S]; return; }"

FLAGS = {"do_write": 0.7, "do_reset": 0.08, "do_pop": 0.1, "do_fork": 0.1, "do_append": 0.1, "do_loop": 0.15,
         "do_read": 0.4, "do_both": 0.25, "do_rows": 0.15, "fail": 0.05}  # fmt: skip


def dims(shape) -> str:
    return "[" + ", ".join(str(d) for d in shape) + "]" if shape else ""


def graph_text(rank: int, entry: tuple, attrs: str, page: str) -> str:
    """K (paged) and D (dense) of `rank` indices; `v` views K or D, `u`, `w` and `m` view K."""
    scalars = ["Bs", "Hs", "Ts"][3 - rank :]
    lead = scalars[:-1]
    rows = ["..", *scalars[1:-1]] if rank > 1 else []
    loop = ["i", *scalars[1:-1]] if rank > 1 else []
    text = GRAPH.replace("CHANGES", CHANGES if rank > 1 else CHANGES_1).replace("BLOCKS", BLOCKS if rank > 1 else BLOCKS_1)
    for name, value in (("INDICES", ", ".join(["b", "h", "t"][3 - rank :])), ("KATTRS", f"{attrs} {page}".strip()),
                        ("DATTRS", attrs), ("LOOPKEY", ", ".join(["i", *scalars[1:]] if rank > 1 else ["i"])),
                        ("LOOPSLICE", ", ".join([*loop, "S..E"])), ("ROWSLICE", ", ".join([*rows, "S..E"])),
                        ("RSLICE", ", ".join([*lead, "R..E"])), ("BADSLICE", ", ".join([*lead, "50..S"])),
                        ("SLICE", ", ".join([*lead, "S..E"])), ("KEY", ", ".join(scalars)),
                        ("APPENDED", dims([3, *[1] * (rank - 2), 2, *entry])), ("VIEW", dims([1, *entry])),
                        ("ROWS", dims([1] * min(rank, 2) + list(entry))), ("ENTRY", dims(entry))):  # fmt: skip
        text = text.replace(name, value)
    return text


def random_program(seed: int, steps: int = 30, device: str = "cpu") -> None:
    """One random graph and `steps` random steps: reference and `device` agree on every error, view
    and table after each."""
    rng = np.random.default_rng(seed)
    rank = int(rng.integers(1, 4))
    entry = [(), (3,), (2, 2), (0,), (1,)][seed % 5]
    page = int(rng.choice([1, 2, 3, 4, 5, 8]))
    fixed_last = int(rng.choice([0, 0, 3, 6, 9]))  # 3 with pages of 4, 5 or 8: one page longer than it
    fixed = [f"{'bht'[3 - rank]} = 3"] * bool(rank > 1 and rng.integers(0, 3) == 0) + [f"t = {fixed_last}"] * bool(fixed_last)
    attrs = " ".join([*(["@init(-2.0)"] if seed % 3 == 1 else []), *([f"@fixed({', '.join(fixed)})"] if fixed else [])])
    pool = int(rng.choice([0, 0, 1, 2]))
    src = graph_text(rank, entry, attrs, f"@paged(page = {page}{f', pages = {pool}' if pool else ''})")
    graph = oi.parse_graph(src, filename="views.oi")
    exes = {"reference": oi.Simulator(None, graph, device="reference").make_executor(),
            "cpu": oi.Simulator(None, graph, device=device).make_executor()}  # ("cpu": the compiled one)
    views = "vum" if rank == 1 else "vuwm"  # (rank 1: the loop's write is no other row than its read)
    assert {exes["cpu"].native.plan.vars[n].kind for n in views} == {"view"}
    if device == "cuda":  # K's pool and D's box in device memory, and v's and u's gather buffers
        assert all(exes["cpu"].native.plan.vars[n].device for n in "KDvu")
    last = fixed_last or 14
    for n in range(steps):
        s = int(rng.integers(0, last + 1))
        e = s + int(rng.choice([0, 1, 1, 2, 3, page, page + 1, 5])) if rng.random() < 0.85 else int(rng.integers(-2, last + 1))
        e = min(e, fixed_last) if fixed_last and rng.random() < 0.9 else e
        values = {"x": rng.standard_normal(entry).astype(np.float32), "b_in": int(rng.integers(0, 3)),
                  "h_in": int(rng.integers(0, 2)), "t_in": int(rng.integers(0, last)), "s_in": s, "e_in": e,
                  "r_in": int(rng.integers(0, 3)), "n_in": int(rng.integers(0, 3)),
                  "a": rng.standard_normal([3, *[1] * (rank - 2), 2, *entry]).astype(np.float32),
                  **{flag: bool(rng.random() < p) for flag, p in FLAGS.items()}}  # fmt: skip
        errors = {device: step(exe, values) for device, exe in exes.items()}
        what = f"seed {seed} step {n} {values}\n{src}"
        assert error_text(errors["cpu"]) == error_text(errors["reference"]), what
        for var in ("v", "y", "u", "q", "w", "z", "m", "K", "D", "lens"):
            assert_bits(np.asarray(exes["cpu"].fetch(var)), np.asarray(exes["reference"].fetch(var)), f"{var}: {what}")


@pytest.mark.parametrize("seed", range(10))
def test_random_views_of_paged_tables_agree(seed: int) -> None:
    random_program(seed)


@pytest.mark.parametrize("seed", range(200, 205))
def test_random_views_of_paged_tables_agree_on_cuda(seed: int, monkeypatch) -> None:
    """On cuda (emulated, launches compiled from the second call) the pools' entries and the views'
    gather buffers are in device memory, and the pool moves on every growth (device memory is not
    reserved ahead)."""
    monkeypatch.setenv("OI_GPU_EMULATE", "1")
    monkeypatch.setenv("OI_CUDA_COMPILE_AFTER", "2")
    random_program(seed, device="cuda")


STALE = """graph! {
  dynamic { x: f32[256]; do_read: bool; b_in: i64; t_in: i64; }
  volatile { v: f32[4, 256]; }
  persistent { K(b, t): f32[256] @table @paged(page = 4); Bs: i64; Ts: i64; }
  block entry { cache.write b_in >> Bs; cache.write t_in >> Ts; cache.write x >> K[Bs, Ts];
    branch do_read rd skip; return; }
  block rd { cache.read K[0, 0..4] >> v; return; }
  block skip { return; }
}"""


def test_a_stale_view_of_a_device_pool_copies_out_its_pages_only(monkeypatch) -> None:
    """A view from an earlier step that a write is about to change is copied out first: on cuda,
    only the run of pages it shows comes back from the device, not the pool (64 pages here)."""
    from oi_compiler.runtime.device_memory import DeviceBuffer

    monkeypatch.setenv("OI_GPU_EMULATE", "1")
    graph = oi.parse_graph(STALE)
    cpu, cuda = (oi.Simulator(None, graph, device=d).make_executor() for d in ("cpu", "cuda"))
    x = np.ones(256, np.float32)
    for b in range(64):
        for exe in (cpu, cuda):
            exe.insert(x=x * b, do_read=False, b_in=b, t_in=0).step()
    for exe in (cpu, cuda):
        exe.insert(x=x, do_read=True, b_in=0, t_in=1).step()  # v: a view of row 0's page
    downloaded = []
    get = DeviceBuffer.get
    monkeypatch.setattr(DeviceBuffer, "get", lambda self, key=(): downloaded.append(get(self, key)) or downloaded[-1])
    for exe in (cpu, cuda):
        exe.insert(x=2 * x, do_read=False, b_in=0, t_in=2).step()  # inside v's entries: v copied out
    assert sum(a.nbytes for a in downloaded) == 4 * 256 * 4  # one page
    assert cuda.native.plan.vars["K"].device
    np.testing.assert_array_equal(cuda.fetch("v"), cpu.fetch("v"))
    np.testing.assert_array_equal(cuda.state("K"), cpu.state("K"))


@pytest.mark.parametrize("seed", range(100, 103))
def test_random_views_agree_with_a_pool_that_moves_on_each_growth(seed: int, monkeypatch) -> None:
    """The fallback where the address space is short (a machine said to have no memory): every
    growth moves the pool, views read in the step before it included."""
    monkeypatch.setattr(page_pool, "physical_memory", lambda: 0)
    random_program(seed)


LIMITED = """\
import resource
import numpy as np
import oi_compiler as oi
resource.setrlimit(resource.RLIMIT_AS, (BYTES, BYTES))
src = ("graph! { dynamic { x: f32[4]; t_in: i64; } "
       "persistent { K(t): f32[4] @table @paged(page = 16); V(t): f32[4] @table @paged(page = 16); t: i64; } "
       "block entry { cache.write t_in >> t; cache.write x >> K[t]; cache.write x >> V[t]; } }")
graph = oi.parse_graph(src)
first = oi.Simulator(None, graph, device="cpu").make_executor()
for t in range(40):
    first.insert(x=np.full(4, t, np.float32), t_in=t)
    first.step()
held = np.ones(1 << 30, np.uint8)  # 1 GiB more for the rest of the program
second = oi.Simulator(None, graph, device="cpu").make_executor()
second.insert(x=np.zeros(4, np.float32), t_in=3)
second.step()
assert first.state("K")[39, 0] == 39 and second.state("V")[3, 0] == 0
print("ok")
"""


@pytest.mark.parametrize("limit_gib", [3, 6])
def test_a_pool_is_reserved_where_the_address_space_is_short(limit_gib: int) -> None:
    """Under `ulimit -v` (6 GiB on a 23 GiB machine) the first paged table's data took what halving
    its reservation found, leaving too little for its present bytes: an executor of two paged
    tables failed to start (`a pool of 0 pages ... does not fit in memory`), and with 3 GiB a 1 GiB
    array or a second executor failed after it. The reservations now keep to a quarter of the
    address space, each one mapping for a pool's entries, present bytes and counts."""
    script = LIMITED.replace("BYTES", str(limit_gib << 30))
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr[-2000:]


def test_reservations_keep_to_the_budget(monkeypatch) -> None:
    """Each reservation takes at most an eighth of what is left of the budget (so later pools still
    find room), never less than it needs; what a dead executor held is given back."""
    monkeypatch.setattr(reserved_memory, "budget", lambda: 64 << 20)
    gc.collect()  # (executors earlier tests left behind give theirs back first)
    before = reserved_memory._held
    graph = oi.parse_graph("""graph! { dynamic { x: f32[4]; t_in: i64; }
        persistent { K(t): f32[4] @table @paged(page = 16); t: i64; }
        block entry { cache.write t_in >> t; cache.write x >> K[t]; } }""")  # fmt: skip
    exe = oi.Simulator(None, graph, device="cpu").make_executor()
    held = reserved_memory._held - before
    assert 0 < held <= (64 << 20) // 8 + 4096
    reference = oi.Simulator(None, graph, device="reference").make_executor()
    for t in range(0, 300000, 997):  # past the reservation: the pool moves, and stays right
        for e in (exe, reference):
            e.insert(x=np.full(4, t, np.float32), t_in=t)
            e.step()
    assert_bits(np.asarray(exe.state("K")), np.asarray(reference.state("K")))
    del exe
    gc.collect()
    assert reserved_memory._held == before


@pytest.mark.parametrize("fixed, page", [(1, 1), (2, 2), (3, 4), (4, 2)])
def test_a_full_slice_of_a_fixed_index_is_seen_with_its_fixed_length(fixed: int, page: int) -> None:
    """`cache.read T[] >> r` of a paged table whose index is `@fixed`: the view's type has the
    fixed length, and a run within one page is seen as that type (the cpu refused the graph with
    "cannot match subview sizes [?, 2, 2]"; found by the differential generator's fresh draws)."""
    text = f"""graph! {{
        dynamic {{ x: f32[2, 2]; }}
        volatile {{ r: f32[{fixed}, 2, 2]; s: f32[2, 2]; }}
        persistent {{ T(a): f32[2, 2] @table @paged(page = {page}) @fixed(a = {fixed}); }}
        block entry {{ cache.write x >> T[{fixed - 1}]; cache.read T[] >> r; op sum_axis(r, axes=[0]) >> s; return; }}
    }}"""
    graph = oi.parse_graph(text, "full_slice.oi")
    exes = {d: oi.Simulator(None, graph, device=d).make_executor() for d in ("reference", "cpu")}
    for n in range(3):
        values = {"x": np.arange(4, dtype=np.float32).reshape(2, 2) + n}
        for exe in exes.values():
            assert step(exe, values) is None
        for name in ("r", "s"):
            assert_bits(exes["cpu"].fetch(name), exes["reference"].fetch(name), f"step {n}: {name}")
