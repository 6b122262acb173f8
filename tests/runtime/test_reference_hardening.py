"""Hardening of the reference executor's tables (runtime/tables.py, runtime/reference.py).

- Huge indices and slice bounds: a table is sparse on `device="reference"` but dense on
  `device="cpu"`, which refuses (CacheError, with rollback) an index or slice whose dense box
  (capacity x entry) numpy cannot allocate. The reference mirrors cpu's capacity and refuses the
  same steps with the same class and message, at the statement, and `state`/`fetch` after the
  refused step see the state of before it (they used to raise numpy's OverflowError/MemoryError).
- Rollback by an undo journal: a step journals only what it changes (a table's entry keys, sizes),
  so a step's cost no longer grows with the table; a failed step is still undone exactly.
"""

from __future__ import annotations

import textwrap
import tracemalloc

import numpy as np
import pytest

import oi_compiler as oi
from oi_compiler.runtime.tables import FIRST_CAPACITY, Declaration, TableStorage
from tests.cpu.test_cpu_differential import FILE, Pair, build

BIG = 2**62  # cpu's dense box of BIG entries is past numpy's size limit on every machine
I64_MAX = 2**63 - 1


def f32(*values) -> np.ndarray:
    return np.array(values, np.float32)


def both(src: str) -> Pair:
    return Pair(*build(textwrap.dedent(src), sizevars={}))


def same_outcome(pair: Pair, what: str = "", **values) -> oi.OiError | None:
    """One step on both devices: the same error class and message (or none), the same state after.

    The reference's error names the statement; cpu's does too, except for a growth its host refuses
    (test_refused_growth_names_the_statement_on_cpu_too), so locations are compared where cpu has one."""
    expected, actual = pair.step(values)
    if expected is None or actual is None:
        assert expected is None and actual is None, f"{what}: reference {expected!r}, cpu {actual!r}"
    else:
        assert type(actual) is type(expected), f"{what}: {type(actual).__name__} != {type(expected).__name__}"
        assert actual.message == expected.message, what
        assert expected.loc is not None and expected.node is not None, f"{what}: {expected!r} has no location"
        if actual.loc is not None:
            assert (str(actual.loc), actual.node) == (str(expected.loc), expected.node), what
    pair.check(what)
    return expected


def persistent(exe: oi.Executor) -> dict:
    """Every persistent variable's `state()` (bytes) and table sizes, and every fetch of it."""
    out = {}
    for name in exe.bound.persistent_names():
        out[name] = (exe.state(name).tobytes(), exe.state(name).shape, exe.table_sizes(name),
                     exe.fetch(name).tobytes())  # fmt: skip
    return out


# --- item 6: huge indices and slice bounds ------------------------------------------------------------

HEAD = """
dynamic {{ x: f32[2]; k: i64; go: i64; }}
volatile {{ y: f32[1, 2]; e: f32[2]; }}
persistent {{ s: i64; K({idx}): f32[2] @table{attrs}; }}
block entry {{
    cache.write k >> s;
    cache.write x >> K[{first}];
    loop l (r in 0..go) {{ {node} }}
}}
"""

#: (name, indices, attrs, statement, huge k (None: a literal), refused: the cpu message's tail)
HUGE = [
    ("write-literal", "i", "", f"cache.write x >> K[{BIG}];", None,
     f"index 0 cannot grow to {BIG + 1} entries on device 'cpu' (tables are dense: capacity [{BIG + 1}] x entry)"),
    ("write-scalar", "i", "", "cache.write x >> K[s];", BIG, f"cannot grow to {BIG + 1} entries"),
    ("write-largest", "i", "", "cache.write x >> K[s];", I64_MAX,  # cpu's k + 1 saturates
     f"index 0 cannot grow to {I64_MAX} entries on device 'cpu' (tables are dense: capacity [{I64_MAX}] x entry)"),
    ("read-literal", "i", "", f"cache.read K[{BIG}] >> e;", None, f"cannot grow to {BIG + 1} entries"),
    ("read-scalar", "i", "", "cache.read K[s] >> e;", BIG, f"cannot grow to {BIG + 1} entries"),
    ("slice-end-literal", "i", "", f"cache.read K[0..{BIG}] >> y;", None, f"cannot grow to {BIG} entries"),
    ("slice-end-scalar", "i", "", "cache.read K[0..s] >> y;", BIG, f"cannot grow to {BIG} entries"),
    ("slice-start-and-end", "i", "", "cache.read K[s..s] >> y;", BIG, f"cannot grow to {BIG} entries"),
    ("slice-start-past-size", "i", "", "cache.read K[s..] >> y;", BIG, f"slice end 2 before start {BIG}"),
    ("second-index", "i, j", "", "cache.write x >> K[3, s];", 2**59,  # 16 x 2**59 x 8 bytes
     (f"index 1 cannot grow to {2**59 + 1} entries on device 'cpu' "
      f"(tables are dense: capacity [16, {2**59 + 1}] x entry)")),
    ("product-of-indices", "i, j", "", "cache.write x >> K[1048575, s];", 2**41,  # each index fits, not both
     (f"index 1 cannot grow to {2**41 + 1} entries on device 'cpu' "
      f"(tables are dense: capacity [1048576, {2**41 + 1}] x entry)")),
    ("reset-prefix", "i, j", "", "cache.reset K[s];", BIG, None),  # a reset grows nothing: runs
    ("reset-full-key", "i, j", "", "cache.reset K[s, s];", BIG, None),
    ("fixed-write", "i", " @fixed(i=4)", "cache.write x >> K[s];", BIG, f"cache table K index 0 exceeds fixed size 4 (index value {BIG})"),
    ("fixed-largest", "i", " @fixed(i=4)", "cache.write x >> K[s];", I64_MAX, f"exceeds fixed size 4 (index value {I64_MAX})"),
    ("fixed-slice-end", "i", " @fixed(i=4)", "cache.read K[0..s] >> y;", BIG, f"exceeds fixed size 4 (slice end {BIG})"),
    ("fixed-slice-start", "i", " @fixed(i=4)", "cache.read K[s..] >> y;", BIG, f"slice end 4 before start {BIG}"),
    ("fixed-reset", "i", " @fixed(i=4)", "cache.reset K[s];", BIG, None),
    ("fixed-then-growable", "i, j", " @fixed(i=4)", "cache.read K[1, 0..s] >> y;", BIG,
     f"index 1 cannot grow to {BIG} entries on device 'cpu' (tables are dense: capacity [4, {BIG}] x entry)"),
]


@pytest.mark.parametrize(("idx", "attrs", "node", "k", "refused"), [c[1:] for c in HUGE], ids=[c[0] for c in HUGE])
def test_huge_index_is_refused_alike_on_both_devices(idx, attrs, node, k, refused) -> None:
    first = ", ".join("1" for _ in idx.split(","))
    pair = both(HEAD.format(idx=idx, attrs=attrs, first=first, node=node))
    literal = k is None
    # a good step first (the statement skipped when its huge index is a literal)
    assert same_outcome(pair, "good step", x=f32(1, 2), k=np.int64(1), go=np.int64(0 if literal else 1)) is None
    before = persistent(pair.ref)
    assert persistent(pair.cpu) == before
    error = same_outcome(pair, "huge step", x=f32(5, 6), k=np.int64(1 if literal else k), go=np.int64(1))
    if refused is None:
        assert error is None
        return
    assert isinstance(error, oi.CacheError) and refused in error.message
    assert error.node == f"block entry node {node.rstrip(';').replace(', ', ',')}"
    assert pair.ref.steps == pair.cpu.steps == 1
    assert persistent(pair.ref) == persistent(pair.cpu) == before  # K[1] still (1, 2), s still 1
    # the executors go on
    assert same_outcome(pair, "after", x=f32(7, 8), k=np.int64(2), go=np.int64(0 if literal else 1)) is None
    assert pair.ref.state("K")[(1,) * len(idx.split(","))].tolist() == [7.0, 8.0]


def test_refused_growth_names_the_statement() -> None:
    src = "dynamic { x: f32[2]; }\npersistent { s: i64 @init(4611686018427387904); K(i): f32[2] @table; }\n" \
          "block entry {\n    cache.write x >> K[1];\n    cache.write x >> K[s];\n}\n"  # fmt: skip
    exe = oi.Simulator(oi.Model(), oi.parse_graph(src, "loc.oi"), device="reference").make_executor()
    with pytest.raises(oi.CacheError) as info:
        exe.insert(x=f32(1, 2)).step()
    assert str(info.value.loc) == "loc.oi:5:5"
    assert info.value.node == "block entry node cache.write x >> K[s]"
    assert exe.table_sizes("K") == [0] and exe.state("K").shape == (0, 2) and exe.fetch("K").shape == (0, 2)


def test_refused_growth_names_the_statement_on_cpu_too() -> None:
    pair = both(f"dynamic {{ x: f32[2]; }} persistent {{ K(i): f32[2] @table; }} "
                f"block entry {{ cache.write x >> K[{BIG}]; }}")  # fmt: skip
    expected, actual = pair.step({"x": f32(1, 2)})
    assert str(actual.loc) == str(expected.loc) and actual.node == expected.node


def test_capacity_is_mirrored_through_growth_reset_and_load(tmp_path) -> None:
    """The refusal's message shows cpu's capacity: doubled past it, kept by a reset, recomputed by
    a load (a power of two), and the reference has the same at every point."""
    pair = both("""
        dynamic { x: f32[2]; a: i64; b: i64; clear: i64; }
        persistent { s: i64; t: i64; K(i, j): f32[2] @table; }
        block entry {
            cache.write a >> s; cache.write b >> t;
            loop l (r in 0..clear) { cache.reset K[]; }
            cache.write x >> K[s, t];
        }
    """)
    huge = 2**59  # with a first capacity of 32 or more: past numpy's size limit

    def refused(a, b, caps, what):
        error = same_outcome(pair, what, x=f32(1, 1), a=np.int64(a), b=np.int64(b), clear=np.int64(0))
        assert error.message.endswith(f"capacity {caps} x entry)"), (what, error.message)

    for a in (0, 5, 16):
        assert same_outcome(pair, f"write {a}", x=f32(a, a), a=np.int64(a), b=np.int64(0), clear=np.int64(0)) is None
    refused(0, huge, [32, huge + 1], "doubled once")
    assert same_outcome(pair, "70", x=f32(1, 1), a=np.int64(70), b=np.int64(1), clear=np.int64(0)) is None
    refused(0, huge, [71, huge + 1], "grown to the index past double")
    assert same_outcome(pair, "reset", x=f32(1, 1), a=np.int64(2), b=np.int64(2), clear=np.int64(1)) is None
    assert pair.ref.table_sizes("K") == [3, 3]
    refused(0, huge, [71, huge + 1], "a reset keeps the capacity")
    path = tmp_path / "k.state"
    pair.ref.save_state(path)
    for exe in (pair.ref, pair.cpu):
        exe.load_state(path)
    pair.check("loaded")
    refused(0, huge, [16, huge + 1], "a load starts from the sizes")
    assert same_outcome(pair, "100", x=f32(1, 1), a=np.int64(100), b=np.int64(1), clear=np.int64(0)) is None
    refused(0, huge, [101, huge + 1], "16 -> 101")


@pytest.mark.parametrize(("entry", "size", "message"), [
    ("f32[2]", BIG, f"persistent K: cannot allocate f32[{BIG}, 2]: out of memory"),  # the data
    ("f32[0]", 10**15, f"persistent K: cannot allocate u8[{10**15}]: out of memory"),  # a present byte per entry
])  # fmt: skip
def test_huge_fixed_size_is_refused_when_the_executor_is_made(entry, size, message) -> None:
    """Named, at the declaration (it said only `cannot allocate ...`, with no location)."""
    src = f"dynamic {{ x: {entry}; }} persistent {{ K(i): {entry} @table @fixed(i={size}); }} " \
          "block entry { cache.write x >> K[3]; }"  # fmt: skip
    graph = oi.parse_graph(src, FILE)
    for device in ("reference", "cpu"):
        sim = oi.Simulator(oi.Model(), graph, device=device)
        with pytest.raises(oi.ExecutionError) as info:
            sim.make_executor()
        assert info.value.message == message, device
        assert info.value.loc.line == 1 and info.value.loc.column > 1, device


def test_huge_auto_dim_index_is_an_execution_error_on_both_devices() -> None:
    """An `@auto_dim` tensor is dense on both devices: one past numpy's size limit is cpu's
    ExecutionError on the reference too (it was an InternalError: numpy's ValueError)."""
    pair = both("""
        dynamic { k: i64; } volatile { m: f32[2]; } persistent { s: i64; M(r): f32[2] @auto_dim(r); }
        block entry { cache.write k >> s; cache.read M[s] >> m; }
    """)
    assert same_outcome(pair, "good", k=np.int64(2)) is None
    before = persistent(pair.ref)
    error = same_outcome(pair, "huge", k=np.int64(BIG))
    assert isinstance(error, oi.ExecutionError) and error.message == f"cannot allocate f32[{BIG + 2}]: out of memory"
    assert persistent(pair.ref) == persistent(pair.cpu) == before


def test_table_storage_refuses_growth_and_changes_nothing() -> None:
    storage = TableStorage(Declaration(name="T", dtype="f32", shape=(2,), indices=("i",)))
    storage.write([3], f32(1, 2))
    with pytest.raises(oi.CacheError, match=r"capacity \[4611686018427387905\] x entry"):
        storage.write([BIG], f32(1, 2))
    with pytest.raises(oi.CacheError, match=r"cannot grow to 4611686018427387904 entries"):
        storage.read([(0, BIG)])
    assert storage.sizes == [4] and list(storage.entries) == [(3,)] and storage.capacity() == [FIRST_CAPACITY]
    assert storage.current().shape == (4, 2)


def test_first_capacity_is_cpus() -> None:
    from oi_compiler.runtime import native

    assert native.FIRST_CAPACITY == FIRST_CAPACITY


# --- item 11: rollback by an undo journal ----------------------------------------------------------


APPEND = """
dynamic { x: f32[2]; fill: i64; n: i64; }
volatile { y: f32[1, 2]; }
persistent { t: i64; K(i): f32[2] @table; }
block entry {
    loop l (r in 0..fill) { cache.write n >> t; cache.read K[0..t] >> y; }
    cache.write x >> K[t];
    cache.increment t;
}
"""


def test_an_append_step_does_not_copy_the_table() -> None:
    """A step journals what it changes: appending to a table of 100k entries allocates about what
    appending to an empty one does (it used to copy the whole entry dict for rollback)."""
    exe = oi.Simulator(oi.Model(), oi.parse_graph(APPEND, FILE), device="reference").make_executor()
    exe.insert(x=f32(1, 2), fill=np.int64(1), n=np.int64(100_000)).step()  # 100k entries, by one read
    exe.insert(fill=np.int64(0)).step()  # (the capacity grows here, cpu's 100k to 200k)
    assert exe.table_sizes("K") == [100_002]

    def peak() -> int:
        tracemalloc.start()
        try:
            exe.step()
            return tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()

    used = min(peak() for _ in range(3))
    assert used < 200_000, used  # a dict of 100k entries alone is about 5 MB
    assert exe.table_sizes("K") == [100_005]
    assert exe.state("K")[100_004].tolist() == [1.0, 2.0]


ROLLBACK = """
dynamic { x: f32[2]; a: i64; b: i64; c: i64; fail: i64; }
volatile { y: f32[1, 2]; z: f32[1, 2]; }
persistent { s: i64; u: i64; v: i64; n: i32 @init(7); K(i, j): f32[2] @table @init(0.5); F(i): f32[2] @table @fixed(i=3); }
block entry {
    cache.write a >> s;
    cache.write b >> u;
    cache.write c >> v;
    cache.write x >> K[s, u];
    cache.write x >> K[u, s];
    cache.read K[v, 0..v] >> y;
    cache.reset K[u];
    cache.write x >> K[s, s];
    cache.write x >> K[s, s];
    loop l (r in 0..b) { cache.reset K[]; cache.write x >> K[v, 0]; }
    cache.increment 3 n;
    cache.read K[s, 0..] >> z;
    loop m (r in 0..fail) { cache.write x >> F[s]; }
}
"""


def test_failed_steps_are_undone_exactly_on_both_devices() -> None:
    """Steps that write, overwrite, create (by reads), reset a prefix, reset all and write again,
    then fail: each leaves exactly the state of before (entries included: a later prefix reset
    recomputes the same sizes), on both devices alike."""
    pair = both(ROLLBACK)
    rng = np.random.default_rng(7)
    for n in range(40):
        a, b, c = (int(v) for v in rng.integers(0, 5, 3))
        fail = int(rng.integers(0, 2))  # F[s] past its @fixed size 3 when s >= 3
        before = persistent(pair.ref), persistent(pair.cpu)
        error = same_outcome(pair, f"step {n}", x=f32(n, -n), a=np.int64(a), b=np.int64(b), c=np.int64(c),
                             fail=np.int64(fail))  # fmt: skip
        if error is not None:
            assert (persistent(pair.ref), persistent(pair.cpu)) == before, n
    assert pair.ref.steps > 5 and pair.ref.steps < 40


def test_rollback_restores_a_prefix_reset_auto_dim_scalars_and_async_blocks(tmp_path) -> None:
    exe = oi.Simulator(oi.Model(), oi.parse_graph(textwrap.dedent("""
        dynamic { x: f32[2]; k: i64; }
        volatile { y: f32[2]; m: f32[2]; }
        persistent { s: i64; c: i32; K(i, j): f32[2] @table; M(r): f32[2] @auto_dim(r); P: f32[2] @init(4.0); }
        block entry {
            cache.write k >> s;
            cache.reset K[1];
            cache.increment c;
            cache.read M[c] >> m;
            cache.write x >> P;
            yield y;
            await y;
            cache.write x >> K[s, s];
        }
        block worker {
            cache.write y >> K[0, 7];
            cache.reset K[2];
            cache.increment 5 c;
        }
    """), FILE), device="reference").make_executor()
    for i, j in ((1, 0), (1, 3), (2, 1), (0, 0)):
        exe.store["K"].write([i, j], f32(i, j))  # the fill: a table with entries under several prefixes
    exe.insert(x=f32(1, 1), k=np.int64(1)).step()
    path = exe.save_state(tmp_path / "before.state")
    before = persistent(exe), sorted(exe.store["K"].entries)
    with pytest.raises(oi.CacheError, match=r"cannot grow to 4611686018427387905 entries"):
        exe.insert(x=f32(9, 9), k=np.int64(BIG)).step()
    assert (persistent(exe), sorted(exe.store["K"].entries)) == before
    assert exe.store["K"]._undo is None  # the journal is gone once the step is over
    exe.load_state(path)
    assert (persistent(exe), sorted(exe.store["K"].entries)) == before
    exe.insert(x=f32(2, 2), k=np.int64(2)).step()  # the worker's reset of K[2] and the entry's write
    assert sorted(exe.store["K"].entries) == [(0, 0), (0, 7), (2, 2)]
    assert exe.state("c") == 12 and exe.table_sizes("M") == [7]


def test_a_committed_step_keeps_no_journal() -> None:
    exe = oi.Simulator(oi.Model(), oi.parse_graph(APPEND, FILE), device="reference").make_executor()
    for n in range(5):
        exe.insert(x=f32(n, n), fill=np.int64(0), n=np.int64(0)).step()
    table = exe.store["K"]
    assert table._undo is None and table.sizes == [5]
    with pytest.raises(oi.CacheError):  # outside a step nothing journals: the table changes for good
        table.write([BIG], f32(1, 1))
    table.write([9], f32(1, 1))
    assert table.sizes == [10] and table._undo is None
