"""Paged table storage (`@paged(page = P)`): what only pages have, on `device="cpu"`.

Paged and dense storage must give the same results (the sequence and append suites run their random
programs on both); here: random writes, slice reads and resets on tables of rank 1 to 3 against the
dense table and the reference, bit for bit; pages shared by `cache.fork` and copied on a change; pages
given back by resets and taken again; the page table (CSR) and memory a table holds; a failed step that
took, shared and freed pages leaving all of it as it was; checkpoints across storages and devices; the
errors of the new declarations and executor methods.
"""

from __future__ import annotations

import numpy as np
import pytest

import oi_compiler as oi
from tests.step_checks import assert_bits, error_text, step

TABLE = """\
graph! {
    dynamic {
        x: f32[E]; n_in: i64; do_write: bool; do_read: bool; do_reset: bool;
        w0_in: i64; w1_in: i64; w2_in: i64; s0_in: i64; s1_in: i64; s2_in: i64;
    }
    volatile { y: f32[E]; }
    persistent {
        T(INDICES): f32[E] @table @init(-1.5)ATTRS;
        W0: i64; W1: i64; W2: i64; S0: i64; S1: i64; S2: i64; n: i64;
    }
    block entry {
        cache.write n_in >> n;
        cache.write w0_in >> W0; cache.write w1_in >> W1; cache.write w2_in >> W2;
        cache.write s0_in >> S0; cache.write s1_in >> S1; cache.write s2_in >> S2;
        branch do_write wr skip;
        branch do_read rd skip;
        branch do_reset rs skip;
        return;
    }
    block wr { cache.write x >> T[WKEY]; return; }
    block rd { cache.read T[RKEY] >> y; return; }
    block rs { cache.reset T[S0]; return; }
    block skip { return; }
}
"""


def table_graph(rank: int, attrs: str) -> oi.Graph:
    """A table of `rank` indices (the last one paged), written at `[W0, .., W2]`, read as
    `[S0, .., S2..n]` (a slice of the last index; the destination's shape follows the read), reset
    at the prefix `[S0]`."""
    src = (TABLE.replace("INDICES", ", ".join(["b", "h", "t"][3 - rank :])).replace("ATTRS", attrs)
           .replace("WKEY", ", ".join(f"W{d}" for d in range(3 - rank, 3)))
           .replace("RKEY", ", ".join([*(f"S{d}" for d in range(3 - rank, 2)), "S2..n"])))  # fmt: skip
    return oi.parse_graph(src, filename="paged.oi")


def executors(rank: int, page: int, fixed: str = "", entry: int = 2):
    attrs = f" @fixed({fixed})" if fixed else ""
    made = {}
    for name, device, extra in (("reference", "reference", ""), ("dense", "cpu", ""),
                                ("paged", "cpu", f" @paged(page = {page})")):  # fmt: skip
        sim = oi.Simulator(oi.Model(sizevars={"E": entry}), table_graph(rank, attrs + extra), device=device)
        made[name] = sim.make_executor()
    return made


@pytest.mark.parametrize("rank,page,fixed", [(1, 1, ""), (1, 3, ""), (2, 4, ""), (2, 3, "t = 10"), (3, 2, "h = 3"),
                                             (3, 16, ""), (2, 5, "h = 4, t = 12")])  # fmt: skip
def test_random_accesses_match_dense_and_reference(rank: int, page: int, fixed: str) -> None:
    exes = executors(rank, page, fixed)
    rng = np.random.default_rng(rank * 100 + page)
    for n in range(120):
        keys = [int(rng.integers(0, 6)) for _ in range(3)]
        starts = [int(rng.integers(0, 6)) for _ in range(3)]
        values = {"x": rng.standard_normal(2).astype(np.float32), "n_in": int(rng.integers(0, 14)),
                  "do_write": bool(rng.random() < 0.7), "do_read": bool(rng.random() < 0.4),
                  "do_reset": bool(rng.random() < 0.08)}  # fmt: skip
        for d in range(3):
            values[f"w{d}_in"] = keys[d] + (int(rng.integers(0, 14)) if d == 2 else 0)  # the last index reaches further
            values[f"s{d}_in"] = starts[d]
        outcomes = {name: step(exe, values) for name, exe in exes.items()}
        texts = {name: error_text(e) for name, e in outcomes.items()}
        assert texts["paged"] == texts["reference"] == texts["dense"], (n, texts)
        for name, exe in exes.items():
            what = f"step {n} {name}"
            assert exe.table_sizes("T") == exes["reference"].table_sizes("T"), what
            assert_bits(exe.state("T"), np.asarray(exes["reference"].state("T")), what)
            if outcomes["reference"] is None and values["do_read"]:
                assert_bits(exe.fetch("y"), np.asarray(exes["reference"].fetch("y")), what)


SEQUENCES = """\
graph! {
    dynamic { k: f32[B, 1, D]; inc: i64[B]; mask: bool[B]; do_app: bool; do_fork: bool; do_reset: bool;
              do_write: bool; do_pop: bool; src_in: i64; dst_in: i64; pos_in: i64; t_in: i64; fail: bool;
              x: f32[D]; }
    volatile { cur: i64[B]; nl: i64[B]; }
    persistent {
        K(b, t): f32[D] @table @paged(page = 4);
        lens: i64[B]; src: i64; dst: i64; pos: i64; tw: i64;
    }
    block entry {
        cache.write src_in >> src; cache.write dst_in >> dst; cache.write pos_in >> pos; cache.write t_in >> tw;
        branch do_app app skip;
        branch do_fork frk skip;
        branch do_reset rst skip;
        branch do_write wr skip;
        branch do_pop pp skip;
        branch fail bad skip;
        return;
    }
    block app {
        cache.append k >> K[lens];
        cache.read lens >> cur; op add(cur, inc) >> nl; cache.write nl >> lens;
        return;
    }
    block frk { cache.fork K [lens] src >> dst at pos; return; }
    block rst { cache.reset K [lens] where mask; return; }
    block wr { cache.write x >> K[dst, tw]; return; }
    block pp { cache.pop 7 K [lens] dst; return; }
    block bad { cache.fork K [lens] dst >> src at tw; return; }
    block skip { return; }
}
"""

B, D = 4, 3


def sequences(device: str = "cpu", paged: bool = True) -> oi.Executor:
    src = SEQUENCES if paged else SEQUENCES.replace(" @paged(page = 4)", "")
    graph = oi.parse_graph(src, filename="sequences.oi")
    return oi.Simulator(oi.Model(sizevars={"B": B, "D": D}), graph, device=device).make_executor()


def run(exe: oi.Executor, **flags) -> oi.OiError | None:
    values = {"k": np.arange(B * D, dtype=np.float32).reshape(B, 1, D) + 100 * exe.steps, "inc": np.ones(B, np.int64),
              "mask": np.zeros(B, bool), "do_app": False, "do_fork": False, "do_reset": False, "do_write": False,
              "do_pop": False,
              "src_in": 0, "dst_in": 1, "pos_in": 0, "t_in": 0, "fail": False, "x": np.full(D, 7, np.float32)}  # fmt: skip
    values.update(flags)
    return step(exe, values)


def grown(exe: oi.Executor, steps: int, **flags) -> oi.Executor:
    for _ in range(steps):
        assert run(exe, do_app=True, **flags) is None
    return exe


def pages_of(table: oi.PageTable, row: int) -> list[int]:
    return [int(p) for p in table.indices[table.indptr[row] : table.indptr[row + 1]]]


def test_fork_shares_whole_pages_and_copies_the_partial_one() -> None:
    exe = grown(sequences(), 10)  # every sequence holds 10 entries: pages of 4, 4, 2
    before = exe.page_table("K")
    assert before.pages_in_use == B * 3
    assert run(exe, do_fork=True, src_in=0, dst_in=1, pos_in=9) is None
    after = exe.page_table("K")
    assert pages_of(after, 1)[:2] == pages_of(before, 0)[:2]  # shared
    assert pages_of(after, 1)[2] not in pages_of(before, 0)  # the partial page is its own
    assert after.last_page_len[1] == 1
    # sequence 1's three pages went back; one new page for its partial copy
    assert after.pages_in_use == B * 3 - 3 + 1
    reference = grown(sequences("reference"), 10)
    assert run(reference, do_fork=True, src_in=0, dst_in=1, pos_in=9) is None
    assert_bits(exe.state("K"), np.asarray(reference.state("K")))


@pytest.mark.parametrize("writer", [0, 1], ids=["source", "fork"])
def test_a_write_into_a_shared_page_copies_it_first(writer: int) -> None:
    exe = grown(sequences(), 8)
    reference = grown(sequences("reference"), 8)
    for e in (exe, reference):
        assert run(e, do_fork=True, src_in=0, dst_in=1, pos_in=8) is None
    shared = exe.page_table("K")
    assert pages_of(shared, 1) == pages_of(shared, 0)
    for e in (exe, reference):
        assert run(e, do_write=True, dst_in=writer, t_in=5) is None  # page 1 of `writer`
    after = exe.page_table("K")
    other = 1 - writer
    assert pages_of(after, other) == pages_of(shared, other)  # the other keeps the page, unchanged
    assert pages_of(after, writer)[0] == pages_of(shared, writer)[0]
    assert pages_of(after, writer)[1] != pages_of(shared, writer)[1]
    assert after.pages_in_use == shared.pages_in_use + 1
    state = np.asarray(exe.state("K"))
    assert_bits(state, np.asarray(reference.state("K")))
    assert (state[writer, 5] == 7).all() and not (state[other, 5] == 7).any()


def test_reset_gives_pages_back_and_restarting_sequences_reuse_them() -> None:
    exe = grown(sequences(), 12)
    pool = exe.page_table("K").pool_pages
    for _ in range(5):  # sequences 0 and 2 finish and start over, again and again
        before = exe.page_table("K")
        assert run(exe, do_reset=True, mask=np.array([1, 0, 1, 0], bool)) is None
        after = exe.page_table("K")
        assert pages_of(after, 0) == pages_of(after, 2) == []
        assert after.pages_in_use == before.pages_in_use - len(pages_of(before, 0)) - len(pages_of(before, 2))
        grown(exe, 12, inc=np.array([1, 0, 1, 0], np.int64))  # (1 and 3 keep rewriting their entry 12)
    table = exe.page_table("K")
    assert table.pool_pages == pool  # the pages given back were taken again: the pool never grew
    assert table.pages_in_use == 2 * 3 + 2 * 4


def test_memory_follows_the_lengths_not_the_longest_sequence() -> None:
    """Dense storage holds batch x the longest length (its capacity, doubled); paged, the pages used."""
    lengths = [3, 40, 5, 1]
    made = {}
    for paged in (True, False):
        exe = sequences(paged=paged)
        longest = max(lengths)
        for n in range(longest):  # a sequence that reached its length rewrites its last entry
            inc = np.array([int(n + 1 < L) for L in lengths], np.int64)
            assert run(exe, do_app=True, inc=inc) is None
        made[paged] = exe
    paged, dense = made[True], made[False]
    assert [int(x) for x in paged.state("lens")] == [L - 1 for L in lengths]
    table = paged.page_table("K")
    assert table.pages_in_use == sum(-(-L // 4) for L in lengths)
    assert paged.table_nbytes("K") < dense.table_nbytes("K") / 1.5
    assert_bits(np.asarray(paged.state("K")), np.asarray(dense.state("K")))


def test_a_failed_step_leaves_pages_counts_and_pool_as_they_were() -> None:
    """Appends past the pool (it doubles), a fork sharing pages and a reset freeing them, then a
    failure in the same step: the page table, the counts and the allocator come back."""
    exe = grown(sequences(), 9)
    before = exe.page_table("K")
    mask = np.array([0, 0, 1, 0], bool)
    error = run(exe, do_app=True, do_fork=True, do_reset=True, mask=mask, src_in=0, dst_in=1, pos_in=8, fail=True,
                t_in=1000)  # fmt: skip
    assert isinstance(error, oi.CacheError) and "position 1000 is past the length" in error.message
    after = exe.page_table("K")
    for field in ("indptr", "indices", "last_page_len"):
        np.testing.assert_array_equal(getattr(after, field), getattr(before, field), err_msg=field)
    assert (after.pool_pages, after.pages_in_use) == (before.pool_pages, before.pages_in_use)
    # and it goes on as if the failed step never ran
    reference = grown(sequences("reference"), 9)
    for e in (exe, reference):
        assert run(e, do_app=True, do_fork=True, do_reset=True, mask=mask, src_in=0, dst_in=1, pos_in=8) is None
    assert_bits(np.asarray(exe.state("K")), np.asarray(reference.state("K")))
    assert exe.table_sizes("K") == reference.table_sizes("K")


@pytest.mark.parametrize("target", ["reference", "dense", "paged"])
def test_checkpoints_move_between_storages_and_devices(target: str, tmp_path) -> None:
    exe = grown(sequences(), 6)
    assert run(exe, do_fork=True, src_in=2, dst_in=3, pos_in=5) is None
    path = exe.save_state(tmp_path / "paged.npz")
    loaded = sequences("reference") if target == "reference" else sequences(paged=target == "paged")
    loaded.load_state(path)
    assert_bits(np.asarray(loaded.state("K")), np.asarray(exe.state("K")))
    assert loaded.table_sizes("K") == exe.table_sizes("K")
    for e in (loaded, exe):  # both go on alike
        assert run(e, do_app=True) is None
    assert_bits(np.asarray(loaded.state("K")), np.asarray(exe.state("K")))


def test_the_page_table_is_csr() -> None:
    exe = grown(sequences(), 5)
    table = exe.page_table("K")
    assert table.page_size == 4 and table.rows == (B,)
    assert list(table.indptr) == [0, 2, 4, 6, 8]
    assert list(table.last_page_len) == [1] * B
    assert len(set(table.indices.tolist())) == 2 * B and table.indices.max() < table.pool_pages
    assert table.indices.dtype == table.indptr.dtype == np.int64


def test_executor_methods_refuse_clearly() -> None:
    with pytest.raises(oi.UnsupportedError, match="device 'reference' keeps no pages"):
        sequences("reference").page_table("K")
    with pytest.raises(oi.UnsupportedError, match="table_nbytes: device 'reference'"):
        sequences("reference").table_nbytes("K")
    dense = sequences(paged=False)
    with pytest.raises(oi.ExecutionError, match="page_table: K is not a @paged table"):
        dense.page_table("K")
    with pytest.raises(oi.ExecutionError, match="table_nbytes: lens is not a table"):
        dense.table_nbytes("lens")
    with pytest.raises(oi.ExecutionError, match="unknown variable: Q"):
        dense.page_table("Q")


DECL = "graph! {{ persistent {{ {decl} }} block entry {{ return; }} }}"


@pytest.mark.parametrize("decl,message", [
    ("K(t): f32[2] @paged(page = 4);", "persistent variable K with indices must use @table or @auto_dim"),
    ("K(t): f32[2] @auto_dim(t) @paged(page = 4);", "@paged K must be a @table without @auto_dim"),
    ("K(b, t): f32[2] @table @paged(pages = 4);", "@paged K requires a page size: @paged(page = 16)"),
    ("K(b, t): f32[2] @table @paged(page = 0);", "@paged page = 0 on K is out of range (1 to 2**31 - 1)"),
    ("K(b, t): f32[2] @table @paged(page = 2147483648);", "out of range (1 to 2**31 - 1)"),
    ("K(b, t): f32[2] @table @paged(page = 4, page = 8);", "@paged names an option twice"),
    ("K(b, t): f32[2] @table @paged(size = 4);", "unknown @paged option size on K (page or pages)"),
    ("K(b, t): f32[2] @table @paged(page = 4) @paged(page = 8);", "duplicate @paged attribute"),
    ("K(b, t): f32[2] @table @paged(page = 0) @paged(page = 8);", "duplicate @paged attribute"),
])  # fmt: skip
def test_declaration_errors(decl: str, message: str) -> None:
    with pytest.raises((oi.ParseError, oi.VerifyError)) as info:
        oi.parse_graph(DECL.format(decl=decl), filename="decl.oi")
    assert message in info.value.message
    assert info.value.loc is not None and info.value.loc.line == 1


def test_paged_on_a_volatile_variable() -> None:
    src = "graph! { volatile { x: f32[2] @paged(page = 4); } block entry { return; } }"
    with pytest.raises(oi.VerifyError, match="cache attributes are only supported on persistent variables: x"):
        oi.parse_graph(src)


def test_the_ir_round_trips_and_names_the_storage() -> None:
    graph = oi.parse_graph(DECL.format(decl="K(b, t): f16[2] @table @fixed(t = 8) @paged(page = 4, pages = 64);"))
    text = str(graph.module)
    assert "@table @fixed(t = 8) @paged(page = 4, pages = 64)" in text
    assert str(oi.parse_mlir(text)) == text
    module = graph.module.clone()
    oi.run_passes(module, "convert-graph-to-tables")
    lowered = str(module)
    assert "indices [b, t fixed 8], storage paged 4 pool 64>" in lowered


GROWTH = "graph! {{ dynamic {{ x: f32[{E}]; w_in: i64; }} persistent {{ K(t): f32[{E}] @table{attrs}; w: i64; }} " \
         "block entry {{ cache.write w_in >> w; cache.write x >> K[w]; return; }} }}"  # fmt: skip


@pytest.mark.parametrize("entry,attrs,index", [(2, " @paged(page = 16)", 10**15),
                                               (4096, " @paged(page = 1024, pages = 1)", 2**30)])  # fmt: skip
def test_growth_is_refused_as_a_dense_table_refuses_it(entry: int, attrs: str, index: int) -> None:
    """Capacities are a dense table's and a growth a dense box could not hold is refused with its
    message (found by review: the paged message named page-rounded capacities, and a 16 TiB table
    grew, then `state()` failed with an internal error)."""
    errors = []
    for device, extra in (("reference", ""), ("cpu", ""), ("cpu", attrs)):
        graph = oi.parse_graph(GROWTH.format(E=entry, attrs=extra), filename="g.oi")
        exe = oi.Simulator(None, graph, device=device).make_executor()
        error = error_text(step(exe, {"x": np.ones(entry, np.float32), "w_in": index}))
        errors.append(error and (error[0], error[1], error[3]))  # (the column moves with the attribute)
        assert exe.table_sizes("K") == [0]
    assert errors[0] is not None and "cannot grow to" in errors[0][1]
    assert errors[0] == errors[1] == errors[2]


def test_a_large_page_costs_nothing_until_a_row_takes_one() -> None:
    """The pool starts empty: a page size the pool could not hold four of still makes an executor."""
    graph = oi.parse_graph(GROWTH.format(E=1024, attrs=" @paged(page = 16777216)"), filename="g.oi")
    exe = oi.Simulator(None, graph, device="cpu").make_executor()
    assert exe.page_table("K").pool_pages == 0
    assert exe.table_nbytes("K") < 4096


def test_pop_gives_back_the_pages_it_empties() -> None:
    exe = grown(sequences(), 10)  # 3 pages per sequence
    before = exe.page_table("K")
    assert run(exe, do_pop=True, dst_in=2) is None  # 10 -> 3 entries: pages 1 and 2 emptied
    after = exe.page_table("K")
    assert pages_of(after, 2) == pages_of(before, 2)[:1]
    assert after.pages_in_use == before.pages_in_use - 2
    reference = grown(sequences("reference"), 10)
    assert run(reference, do_pop=True, dst_in=2) is None
    assert_bits(np.asarray(exe.state("K")), np.asarray(reference.state("K")))


def test_a_page_longer_than_a_fixed_index_is_that_index() -> None:
    """`state` gathered whole pages before cutting them to the sizes, so a page of 2**31 - 1 entries
    (48 GiB here) failed with an internal error; a page is now never longer than a `@fixed` last
    index, and the gather holds only the table's own box (found by the fuzz generators)."""
    src = "persistent { K(i): f32[2, 3] @table @fixed(i = 1) @paged(page = 2147483647); } block entry { }"
    exe = oi.Simulator(None, oi.parse_graph(src), device="cpu").make_executor()
    assert exe.state("K").shape == exe.fetch("K").shape == (1, 2, 3)
    assert exe.page_table("K").page_size == 1


def pool_address(exe: oi.Executor) -> int:
    native = exe.native
    return int(native.words[native.plan.vars["K"].data_slot])


def test_the_pool_grows_in_place() -> None:
    """The pool is reserved address space: growing it from 4 to 16 pages moves no page (the step's
    pointer into it stays), where it used to double by allocating and copying."""
    exe = grown(sequences(), 1)
    host = exe.native.pools["K"]
    address, pool, reservation = pool_address(exe), exe.page_table("K").pool_pages, host.reserved[0]
    grown(exe, 14)
    assert exe.page_table("K").pool_pages >= 4 * pool
    assert (pool_address(exe), host.reserved[0] is reservation) == (address, True)


def test_a_pool_past_its_reservation_moves_and_stays_right(monkeypatch) -> None:
    """Where the address space is short (here: a machine said to have no memory), the reservation
    holds only what is asked; growing past it moves the pool into a larger one, with every page's
    bytes, and a failed step after that move still puts the old pool back."""
    import oi_compiler.runtime.page_pool as page_pool

    monkeypatch.setattr(page_pool, "physical_memory", lambda: 0)
    exe, reference = sequences(), sequences("reference")
    for e in (exe, reference):
        grown(e, 8)  # 8 pages: the pool is full
    host = exe.native.pools["K"]
    reservation, pool = host.reserved[0], exe.page_table("K").pool_pages
    assert host.room == pool
    before = np.asarray(exe.state("K"))
    error = run(exe, do_app=True, fail=True, t_in=1000)  # appends take 4 more pages (a move), then it fails
    assert isinstance(error, oi.CacheError)
    assert_bits(np.asarray(exe.state("K")), before)
    assert (host.reserved[0] is reservation, exe.page_table("K").pool_pages) == (True, pool)
    for e in (exe, reference):
        grown(e, 9)
    assert host.room > pool and host.reserved[0] is not reservation
    assert_bits(np.asarray(exe.state("K")), np.asarray(reference.state("K")))


VIEWS = """\
graph! {
    dynamic { x: f32[3]; b_in: i64; t_in: i64; s_in: i64; e_in: i64; do_read: bool; do_rows: bool; fail: bool; }
    volatile { y: f32[3]; v: f32[3]; z: f32[3]; w: f32[3]; u: f32[3]; }
    persistent { K(b, t): f32[3] @table @init(-2.0) @paged(page = 4); B: i64; T: i64; S: i64; E: i64; }
    block entry {
        cache.write b_in >> B; cache.write t_in >> T; cache.write s_in >> S; cache.write e_in >> E;
        cache.write x >> K[B, T];
        branch do_read rd skip;
        branch do_rows rows skip;
        branch fail bad skip;
        return;
    }
    block rd { cache.read K[B, S..E] >> v; op sum_axis(v, axes=[0]) >> y; return; }
    block rows { cache.read K[.., S] >> w; op sum_axis(w, axes=[0]) >> z; return; }
    block bad { cache.read K[B, 50..S] >> u; return; }
    block skip { return; }
}
"""


def view_executors() -> dict[str, oi.Executor]:
    graph = oi.parse_graph(VIEWS, filename="views.oi")
    dense = oi.parse_graph(VIEWS.replace(" @paged(page = 4)", ""), filename="views.oi")
    return {"reference": oi.Simulator(None, graph, device="reference").make_executor(),
            "dense": oi.Simulator(None, dense, device="cpu").make_executor(),
            "paged": oi.Simulator(None, graph, device="cpu").make_executor()}  # fmt: skip


def gather_capacity(exe: oi.Executor) -> int:
    native = exe.native
    view = native.plan.vars["v"]
    assert view.kind == "view"
    return int(native.words[view.gather_slot(native.plan.vars) + 1])


def test_a_slice_in_one_page_is_a_view_of_the_page() -> None:
    """`cache.read K[b, s..e] >> v` binds `v` to the pool's entries where s..e lies in one page (no
    copy: its gather buffer is never allocated) and gathers into `v`'s own buffer where it spans
    pages; results, `fetch` of a view a later step changes under it, and a failed step are the
    reference's, bit for bit."""
    exes = view_executors()
    rng = np.random.default_rng(7)

    def each(**values) -> None:
        base = {"x": rng.standard_normal(3).astype(np.float32), "b_in": 0, "t_in": 0, "s_in": 0, "e_in": 0,
                "do_read": False, "do_rows": False, "fail": False}  # fmt: skip
        base.update(values)
        errors = {name: step(exe, base) for name, exe in exes.items()}
        assert len({None if e is None else error_text(e) for e in errors.values()}) == 1, errors
        for var in ("v", "y", "w", "z", "K"):
            want = np.asarray(exes["reference"].fetch(var))
            for name in ("dense", "paged"):
                assert_bits(np.asarray(exes[name].fetch(var)), want)

    for t in range(10):
        for b in range(3):
            each(b_in=b, t_in=t)
    in_page = [(4, 8), (5, 7), (8, 10), (3, 4), (0, 4)]
    for s, e in in_page:
        each(b_in=1, t_in=9, do_read=True, s_in=s, e_in=e)
    assert gather_capacity(exes["paged"]) == 0  # every read was in place
    each(b_in=2, t_in=5, s_in=1, e_in=6, do_read=True)  # spans pages 0 and 1: gathered
    assert gather_capacity(exes["paged"]) >= 5 * 3
    each(b_in=1, t_in=5, s_in=4, e_in=8, do_read=True)  # in one page again
    each(b_in=1, t_in=6)  # a later step changes an entry the view shows: it keeps what it showed
    each(b_in=0, t_in=2, s_in=2, do_rows=True)  # entries of every row: gathered
    each(b_in=1, t_in=4, s_in=4, e_in=8, do_read=True, fail=True)  # read in place, then the step fails
    each(b_in=0, t_in=40, s_in=38, e_in=41, do_read=True)  # a new page, partly written
