"""Persistent-cache semantics of the reference executor, one test (or group) per rule of
reference/openinfer.md §4: plain persistents, tables, `@auto_dim`, increment/decrement, reset and
index resolution. Every number is checked against an explicit numpy expectation.

Literal indices that are certain to fail are rejected by the verifier (VerifyError, same message);
the run-time path (CacheError) is exercised with indices read from persistent scalars.

Tests marked `on_both` run on `device="reference"`, on the compiled `device="cpu"` and on
`device="cuda"` (its kernels in the CPU emulation, `OI_GPU_EMULATE=1`, set by tests/conftest.py's
`emulate_cuda_device`), which must give the same numbers, sizes and errors; the others use what the compiled path does not support yet
(`@auto_dim`, an f8 counter, ...; each says why) or test `runtime/tables.py` directly.
"""

from __future__ import annotations

import textwrap

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import oi_compiler as oi
from oi_compiler.dtypes import numpy_dtype
from oi_compiler.runtime.tables import AutoDimStorage, Declaration, TableStorage

FILE = "cache.oi"
D = 2  # entry width used throughout


DEVICES = ("reference", "cpu", "cuda")
pytestmark = pytest.mark.usefixtures("emulate_cuda_device")
on_both = pytest.mark.parametrize("device", DEVICES)


def executor(src: str, *, sizevars=None, tensors=None, device: str = "reference") -> oi.Executor:
    graph = oi.parse_graph(textwrap.dedent(src), FILE)
    model = oi.Model(sizevars=sizevars or {}, tensors=tensors or {})
    return oi.Simulator(model, graph, device=device).make_executor()


def step(exe: oi.Executor, **values) -> oi.Executor:
    if values:
        exe.insert(**values)
    exe.step()
    return exe


def cache_error(exe: oi.Executor, **values) -> oi.CacheError:
    with pytest.raises(oi.CacheError) as info:
        step(exe, **values)
    return info.value


def verify_error(src: str, **kw) -> oi.VerifyError:
    """The verifier's error; it comes before anything device-specific (`device=` passes through)."""
    with pytest.raises(oi.VerifyError) as info:
        executor(src, **kw)
    return info.value


def _fmt(src: str, **kw) -> str:
    return src.format(**kw)


def rows(n: int, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.standard_normal(D).astype(np.float32) for _ in range(n)]


# --- a table harness: a `writes` part driven by inserted keys, a `reads` part of accesses ---------


def table_exe(reads: list[str], *, rank: int = 1, attrs: str = "", init: str = "", sizevars=None,
              device: str = "reference"):  # fmt: skip
    """`T(i0, ..): f32[2]` with `go(False), k0.., v` writing `v` to `T[k0, ..]` and `go(True)`
    running `cache.read {reads[n]} >> r{n}` for each n.

    The two parts are loops run once or not at all (`0..nw`, `0..nr`), which both devices run (a
    `branch` between two blocks, the natural form, is not compiled yet)."""
    idx = ", ".join(f"i{n}" for n in range(rank))
    keys = ", ".join(f"s{n}" for n in range(rank))
    dyn = " ".join(f"k{n}: i64;" for n in range(rank))
    pers = " ".join(f"s{n}: i64;" for n in range(rank))
    outs = " ".join(f"r{n}: f32[{D}];" for n in range(len(reads)))
    sets = " ".join(f"cache.write k{n} >> s{n};" for n in range(rank))
    body = " ".join(f"cache.read {a} >> r{n};" for n, a in enumerate(reads))
    src = f"""
    dynamic {{ v: f32[{D}]; nw: i64; nr: i64; {dyn} }}
    volatile {{ {outs} }}
    persistent {{ {pers} T({idx}): f32[{D}] {init} @table {attrs}; }}
    block entry {{
        loop writes (once in 0..nw) {{ {sets} cache.write v >> T[{keys}]; }}
        loop reads (once in 0..nr) {{ {body} }}
    }}
    """
    return executor(src, sizevars=sizevars, device=device)


def go(flag: bool) -> dict:
    """The inputs selecting the reads (True) or the writes (False) of `table_exe`."""
    return {"nw": 0, "nr": 1} if flag else {"nw": 1, "nr": 0}


def write(exe, key, value) -> None:
    key = (key,) if isinstance(key, int) else key
    step(exe, v=value, **go(False), **{f"k{n}": k for n, k in enumerate(key)})


def read(exe, n_reads: int) -> list[np.ndarray]:
    step(exe, **go(True))
    return [exe.fetch(f"r{n}") for n in range(n_reads)]


def dense(entries: dict, sizes, init: float = 0.0) -> np.ndarray:
    """What `T[]` holds: every entry of `sizes`, missing ones as `init`."""
    full = np.full((*sizes, D), init, dtype=np.float32)
    for key, value in entries.items():
        full[key] = value
    return full


# --- §4.3 initial sizes and growth ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("attrs", "rank", "sizes"),
    [("", 1, [0]), ("@fixed(i0=4)", 1, [4]), ("", 2, [0, 0]), ("@fixed(i1=3)", 2, [0, 3])],
)
@on_both
def test_initial_sizes_are_fixed_or_zero(device, attrs, rank, sizes) -> None:
    exe = table_exe([], rank=rank, attrs=attrs, device=device)
    assert exe.table_sizes("T") == sizes
    assert exe.state("T").shape == (*sizes, D)
    assert not exe.state("T").any()


@on_both
def test_scalar_reads_and_writes_grow_to_k_plus_1(device) -> None:
    exe = executor(
        """
        volatile { y: f32[2]; }
        persistent { T(i): f32[2] @table; B(i, j): f32[2] @table; }
        block entry {
            cache.read T[3] >> y;
            cache.read B[2, 0] >> y;
        }
        """,
        device=device,
    )
    step(exe)
    assert exe.table_sizes("T") == [4]  # a read of index 3 makes the size 4 (the docs' "3" is off by one)
    assert exe.table_sizes("B") == [3, 1]
    np.testing.assert_array_equal(exe.fetch("y"), np.zeros(D, np.float32))


@pytest.mark.parametrize(
    ("ops", "sizes_t", "sizes_b"),
    [
        ("cache.read T[3] >> y;", [4], [0, 0]),
        ("cache.write v >> T[5];", [6], [0, 0]),
        ("cache.write v >> T[5]; cache.read T[1] >> y;", [6], [0, 0]),  # never shrinks
        ("cache.read B[2, 0] >> y;", [0], [3, 1]),
        ("cache.read B[2, 0] >> y; cache.write v >> B[0, 4];", [0], [3, 5]),
        ("cache.read T[0] >> y; cache.read T[0] >> y;", [1], [0, 0]),
    ],
)
@on_both
def test_growth_per_scalar_index(device, ops, sizes_t, sizes_b) -> None:
    exe = executor(
        f"""
        dynamic {{ v: f32[2]; }}
        volatile {{ y: f32[2]; }}
        persistent {{ T(i): f32[2] @table; B(i, j): f32[2] @table; }}
        block entry {{ {ops} }}
        """,
        device=device,
    )
    step(exe, v=np.ones(D, np.float32))
    assert exe.table_sizes("T") == sizes_t
    assert exe.table_sizes("B") == sizes_b


@on_both
def test_scalar_entry_tables(device) -> None:
    exe = executor(
        """
        dynamic { x: i16; }
        volatile { all: i16; one: i16; }
        persistent { t: i32 @init(0); T(i): i16 @init(-1) @table; }
        block entry { cache.write x >> T[t]; cache.increment 2 t; cache.read T[] >> all; cache.read T[1] >> one; }
        """,
        device=device,
    )
    step(exe, x=np.int16(5))
    step(exe, x=np.int16(7))
    np.testing.assert_array_equal(exe.fetch("all"), np.array([5, -1, 7], np.int16))
    assert exe.fetch("one").shape == () and int(exe.fetch("one")) == -1
    assert exe.fetch("all").dtype == np.int16


@on_both
def test_growth_across_steps_and_harness(device) -> None:
    exe = table_exe([], device=device)
    values = rows(3)
    for key, value in zip([0, 7, 2], values):
        write(exe, key, value)
    assert exe.table_sizes("T") == [8]
    np.testing.assert_array_equal(exe.state("T"), dense({0: values[0], 7: values[1], 2: values[2]}, [8]))


# --- §4.3 slices and read shapes -------------------------------------------------------------------

SLICES_1D = {
    # access: numpy selection of the dense [10, D] table
    "T[]": np.s_[:],
    "T[..]": np.s_[:],
    "T[0..5]": np.s_[0:5],
    "T[2..5]": np.s_[2:5],
    "T[0..-3]": np.s_[0:7],
    "T[3]": np.s_[3],
    "T[4..]": np.s_[4:],
    "T[..3]": np.s_[:3],
    "T[..-1]": np.s_[:9],
    "T[5..5]": np.s_[5:5],
}


@on_both
def test_slice_reads_rank1_section_4_3_examples(device) -> None:
    """§4.3: `A(i): f32[D]`, size 10 -> `A[]:[10,D]`, `A[0..5]:[5,D]`, `A[2..5]:[3,D]`,
    `A[0..-3]:[7,D]`, `A[3]:[D]`; slices are start-inclusive, end-exclusive."""
    accesses = list(SLICES_1D)
    exe = table_exe(accesses, device=device)
    values = rows(10, seed=1)
    for k, value in enumerate(values):
        write(exe, k, value)
    full = np.stack(values)
    got = read(exe, len(accesses))
    for access, value in zip(accesses, got):
        expected = full[SLICES_1D[access]]
        assert value.shape == expected.shape, access
        np.testing.assert_array_equal(value, expected, err_msg=access)
        assert value.dtype == np.float32
    assert exe.table_sizes("T") == [10]  # in-range slices do not grow


SLICES_2D = {
    "T[0..2, 0..3]": np.s_[0:2, 0:3],  # [2, 3, D]
    "T[1, 0..3]": np.s_[1, 0:3],  # [3, D]: the scalar-indexed dim is dropped
    "T[1]": np.s_[1],  # fewer indices than the rank: trailing full slices -> [4, D]
    "T[1, ..]": np.s_[1, :],
    "T[]": np.s_[:, :],  # [3, 4, D]
    "T[, 2]": np.s_[:, 2],  # an empty entry is a full slice -> [3, D]
    "T[.., 2]": np.s_[:, 2],
    "T[2, 3]": np.s_[2, 3],  # [D]
    "T[1.., ..-1]": np.s_[1:, :3],
    "T[0..1]": np.s_[0:1],  # [1, 4, D]
    "T[,]": np.s_[:, :],
    "T[2,]": np.s_[2, :],  # a trailing comma: a full slice
}


@on_both
def test_slice_reads_rank2_with_unwritten_entries(device) -> None:
    """§4.3: `B(i,j): f32[D]` -> `B[0..2, 0..3]:[2,3,D]`, `B[1, 0..3]:[3,D]`; unwritten entries are zeros."""
    accesses = list(SLICES_2D)
    exe = table_exe(accesses, rank=2, device=device)
    values = rows(7, seed=2)
    keys = [(0, 0), (0, 1), (1, 2), (2, 3), (1, 0), (2, 1), (0, 3)]
    for key, value in zip(keys, values):
        write(exe, key, value)
    assert exe.table_sizes("T") == [3, 4]
    full = dense(dict(zip(keys, values)), [3, 4])
    for access, value in zip(accesses, read(exe, len(accesses))):
        expected = full[SLICES_2D[access]]
        assert value.shape == expected.shape, access
        np.testing.assert_array_equal(value, expected, err_msg=access)


@on_both
def test_slice_past_the_end_grows_a_non_fixed_table(device) -> None:
    exe = table_exe(["T[1..5]", "T[..7]"], device=device)
    values = rows(3, seed=3)
    for k, value in enumerate(values):
        write(exe, k, value)
    assert exe.table_sizes("T") == [3]
    first, second = read(exe, 2)
    np.testing.assert_array_equal(first, dense(dict(enumerate(values)), [5])[1:5])
    assert second.shape == (7, D)
    np.testing.assert_array_equal(second, dense(dict(enumerate(values)), [7]))
    assert exe.table_sizes("T") == [7]


@on_both
def test_default_slice_end_is_the_current_size(device) -> None:
    exe = executor(
        """
        volatile { a: f32[2]; b: f32[2]; c: f32[2]; }
        persistent { T(i): f32[2] @table; }
        block entry {
            cache.read T[] >> a;
            cache.read T[4] >> b;
            cache.read T[1..] >> c;
        }
        """,
        device=device,
    )
    step(exe)
    assert exe.fetch("a").shape == (0, D)  # empty table: `T[]` is empty
    assert exe.fetch("b").shape == (D,)
    assert exe.fetch("c").shape == (4, D)  # size 5 after T[4]: 1..5


@on_both
def test_fixed_slice_end_within_and_past_the_fixed_size(device) -> None:
    src = """
    volatile {{ y: f32[2]; }}
    persistent {{ e: i64 @init({e}); T(i): f32[2] @table @fixed(i=4); }}
    block entry {{ cache.read T[0..e] >> y; }}
    """
    ok = step(executor(_fmt(src, e=4), device=device))
    assert ok.fetch("y").shape == (4, D)
    assert ok.table_sizes("T") == [4]
    err = cache_error(executor(_fmt(src, e=5), device=device))
    assert err.message == "cache table T index 0 exceeds fixed size 4 (slice end 5)"
    # the literal form is certain to fail: the verifier reports it with the same words
    literal = verify_error(
        "volatile { y: f32[2]; } persistent { T(i): f32[2] @table @fixed(i=4); }"
        " block entry { cache.read T[0..5] >> y; }", device=device
    )
    assert literal.message == "cache table T index 0 exceeds fixed size 4 (slice end 5)"


@pytest.mark.parametrize(
    ("setup", "access", "message"),
    [
        ("s: i64 @init(-1);", "T[s..]", "slice start cannot be negative"),
        ("s: i64 @init(-1);", "T[s..2]", "slice start cannot be negative"),
        ("s: i64 @init(0);", "T[..-5]", "slice end underflow for size 3"),
        ("s: i64 @init(0);", "T[1..-4]", "slice end underflow for size 3"),
        ("s: i64 @init(3);", "T[s..1]", "slice end 1 before start 3"),
        ("s: i64 @init(0);", "T[2..-2]", "slice end 1 before start 2"),
        ("s: i64 @init(5);", "T[s..]", "slice end 3 before start 5"),  # default end = size 3
        ("e: i64 @init(1); s: i64 @init(2);", "T[s..e]", "slice end 1 before start 2"),
    ],
)
@on_both
def test_slice_bound_errors(device, setup, access, message) -> None:
    exe = executor(
        f"""
        volatile {{ x: f32[2]; y: f32[2]; }}
        persistent {{ {setup} T(i): f32[2] @table; }}
        block entry {{
            cache.read T[2] >> x;
            cache.read {access} >> y;
        }}
        """,
        device=device,
    )
    before = exe.table_sizes("T")
    err = cache_error(exe)
    assert err.message == message
    assert str(err).startswith(f"{FILE}:")
    assert exe.table_sizes("T") == before  # the step's growth (T[2]) is rolled back


@on_both
def test_literal_slice_end_before_start_is_a_verify_error(device) -> None:
    err = verify_error(
        "volatile { y: f32[2]; } persistent { T(i): f32[2] @table; } block entry { cache.read T[3..1] >> y; }",
        device=device,
    )
    assert err.message == "slice end 1 before start 3"


@on_both
def test_negative_end_equal_to_size_gives_an_empty_read(device) -> None:
    exe = executor(
        """
        volatile { y: f32[2]; z: f32[2]; }
        persistent { T(i): f32[2] @table; }
        block entry { cache.read T[2] >> y; cache.read T[..-3] >> z; }
        """,
        device=device,
    )
    step(exe)
    assert exe.fetch("z").shape == (0, D)
    assert exe.table_sizes("T") == [3]


# --- §4.3 unwritten entries ---------------------------------------------------------------------


@pytest.mark.parametrize(("init", "fill"), [("", 0.0), ("@init(1.5)", 1.5), ("@init(-2.0)", -2.0)])
@on_both
def test_unwritten_entries_read_as_init_or_zeros(device, init, fill) -> None:
    exe = table_exe(["T[]", "T[1]", "T[5]"], init=init, device=device)
    value = rows(1, seed=4)[0]
    write(exe, 3, value)
    whole, one, five = read(exe, 3)
    np.testing.assert_array_equal(whole, dense({3: value}, [4], fill))
    np.testing.assert_array_equal(one, np.full(D, fill, np.float32))
    np.testing.assert_array_equal(five, np.full(D, fill, np.float32))
    assert exe.table_sizes("T") == [6]
    np.testing.assert_array_equal(exe.state("T"), dense({3: value}, [6], fill))


@pytest.mark.parametrize(("read_first", "sizes"), [(True, [3]), (False, [0])])
@on_both
def test_unwritten_entries_are_materialised_by_reads(device, read_first, sizes) -> None:
    """A read creates the missing entries it selects (§4.3), so a later prefix reset, which
    recomputes sizes from the entries that remain (§4.6), sees them."""
    reading = "cache.read T[] >> y;" if read_first else ""
    exe = executor(
        f"""
        dynamic {{ v: f32[2]; }}
        volatile {{ y: f32[2]; }}
        persistent {{ T(i): f32[2] @table; }}
        block entry {{
            cache.write v >> T[3];
            {reading}
            cache.reset T[3];
        }}
        """,
        device=device,
    )
    step(exe, v=np.ones(D, np.float32))
    assert exe.table_sizes("T") == sizes
    assert sorted(exe.store["T"].entries) == [(k,) for k in range(sizes[0])]


@on_both
def test_state_does_not_materialise_or_grow(device) -> None:
    exe = table_exe([], device=device)
    write(exe, 2, np.ones(D, np.float32))
    for _ in range(2):
        assert exe.state("T").shape == (3, D)
    assert list(exe.store["T"].entries) == [(2,)]
    assert exe.table_sizes("T") == [3]
    with pytest.raises(ValueError):
        exe.state("T")[0, 0] = 1.0  # read-only


# --- §4.3 writes ------------------------------------------------------------------------------------


@on_both
def test_write_replaces_the_entry_with_a_copy(device) -> None:
    exe = executor(
        """
        dynamic { v: f32[2]; }
        volatile { one: f32[2] @init(1.0); y: f32[2]; }
        persistent { T(i): f32[2] @table; }
        block entry {
            cache.write v >> T[0];
            op add(v, one) >> v;
            cache.read T[0] >> y;
        }
        """,
        device=device,
    )
    v = np.array([3.0, 4.0], np.float32)
    step(exe, v=v)
    np.testing.assert_array_equal(exe.fetch("y"), v)  # later in-place change of v not seen
    np.testing.assert_array_equal(exe.fetch("v"), v + 1)


def test_write_shape_mismatch_at_run_time() -> None:
    # reference-only: cpu refuses a cache.write from a buffer sized at run time (w, a read destination)
    exe = executor(
        """
        dynamic { v: f32[2]; }
        volatile { w: f32[2]; }
        persistent { T(i): f32[2] @table; }
        block entry {
            cache.write v >> T[0];
            cache.read T[0..2] >> w;
            cache.write w >> T[2];
        }
        """
    )
    err = cache_error(exe, v=np.ones(D, np.float32))
    assert err.message == "cache.write T expects shape [2], got [2, 2]"
    assert exe.table_sizes("T") == [0]


@on_both
def test_write_shape_mismatch_known_statically(device) -> None:
    err = verify_error(
        "volatile { w: f32[3]; } persistent { T(i): f32[2] @table; } block entry { cache.write w >> T[0]; }",
        device=device,
    )
    assert err.message == "cache.write T expects shape [2], got [3]"


@pytest.mark.parametrize("access", ["T[0..1]", "T[]", "T[..]", "B[0]", "B[0, 1..]", "B[]"])
@on_both
def test_write_with_slice_indices_is_rejected(device, access) -> None:
    err = verify_error(
        f"volatile {{ w: f32[2]; }} persistent {{ T(i): f32[2] @table; B(i, j): f32[2] @table; }}"
        f" block entry {{ cache.write w >> {access}; }}", device=device
    )
    name = access[0]
    assert err.message == f"cache.write {name} does not support slice indices"


@pytest.mark.parametrize("indices", [[(0, 1)], [], [0], [0, (None, None)]])
def test_write_with_slice_indices_at_run_time(indices) -> None:
    """The run-time rule behind the verifier's check (tables.TableStorage, no executor)."""
    rank = 1 if indices in ([(0, 1)], []) else 2
    names = ("i", "j")[:rank]
    storage = TableStorage(Declaration(name="A", dtype="f32", shape=(D,), indices=names))
    with pytest.raises(oi.CacheError) as info:
        storage.write(indices, np.zeros(D, np.float32))
    assert info.value.message == "cache.write A does not support slice indices"
    assert storage.entries == {}


# --- §4.3 @fixed ---------------------------------------------------------------------------------


FIXED_SRC = """
dynamic {{ v: f32[2]; }}
volatile {{ y: f32[2]; }}
persistent {{ n: i64 @init({n}); K(l, t): f32[2] @table @fixed(t=4); }}
block entry {{ {op} }}
"""


@on_both
def test_fixed_index_within_the_fixed_size(device) -> None:
    ok = step(executor(_fmt(FIXED_SRC, n=3, op="cache.write v >> K[0, n];"), device=device), v=np.ones(D, np.float32))
    assert ok.table_sizes("K") == [1, 4]  # index 3: 3+1 <= 4
    ok = step(executor(_fmt(FIXED_SRC, n=4, op="cache.read K[1, 0..n] >> y;"), device=device))
    assert ok.table_sizes("K") == [2, 4] and ok.fetch("y").shape == (4, D)


@pytest.mark.parametrize(
    ("n", "op"),
    [(4, "cache.write v >> K[0, n];"), (4, "cache.read K[0, n] >> y;"), (5, "cache.read K[1, 0..n] >> y;"),
     (9, "cache.read K[0, n..] >> y;")],
)  # fmt: skip
@on_both
def test_fixed_overflow_message_names_the_index_position(device, n, op) -> None:
    exe = executor(_fmt(FIXED_SRC, n=n, op=op), device=device)
    err = cache_error(exe, v=np.ones(D, np.float32))
    detail = "slice end 5" if ".." in op else "index value 4"
    expected = "slice end 4 before start 9" if "n.." in op else f"cache table K index 1 exceeds fixed size 4 ({detail})"
    assert err.message == expected
    assert exe.table_sizes("K") == [0, 4]


@on_both
def test_fixed_overflow_of_a_literal_index_is_a_verify_error(device) -> None:
    err = verify_error(
        "volatile { y: f32[2]; } persistent { K(l, t): f32[2] @table @fixed(t=4); }"
        " block entry { cache.write y >> K[0, 4]; }", device=device
    )
    assert err.message == "cache table K index 1 exceeds fixed size 4 (index value 4)"


@on_both
def test_fixed_dim_keeps_its_size(device) -> None:
    exe = table_exe(["T[1]", "T[]"], rank=1, attrs="@fixed(i0=4)", device=device)
    value = rows(1)[0]
    write(exe, 2, value)
    assert exe.table_sizes("T") == [4]
    one, whole = read(exe, 2)
    np.testing.assert_array_equal(whole, dense({2: value}, [4]))
    assert exe.table_sizes("T") == [4]


# --- §4.6 reset ------------------------------------------------------------------------------------

RESET_SRC = """
dynamic { a: f32[2]; b: f32[2]; c: f32[2]; d: f32[2]; }
persistent { K(l, t): f32[2] @table @fixed(l=3); }
block entry {
    cache.write a >> K[0, 0];
    cache.write b >> K[0, 4];
    cache.write c >> K[1, 2];
    cache.write d >> K[2, 1];
    %s
}
"""
RESET_KEYS = {(0, 0): "a", (0, 4): "b", (1, 2): "c", (2, 1): "d"}


@pytest.mark.parametrize(
    ("resets", "sizes", "left"),
    [
        ("", [3, 5], [(0, 0), (0, 4), (1, 2), (2, 1)]),
        ("cache.reset K[0];", [3, 3], [(1, 2), (2, 1)]),  # t: max(2, 1) + 1
        ("cache.reset K[1, 2];", [3, 5], [(0, 0), (0, 4), (2, 1)]),
        ("cache.reset K[2];", [3, 5], [(0, 0), (0, 4), (1, 2)]),  # l: 2 by entries, fixed 3 overrides
        ("cache.reset K[0]; cache.reset K[2];", [3, 3], [(1, 2)]),
        ("cache.reset K[0, 4];", [3, 3], [(0, 0), (1, 2), (2, 1)]),
        ("cache.reset K[5];", [3, 5], [(0, 0), (0, 4), (1, 2), (2, 1)]),  # nothing matches
        ("cache.reset K[];", [3, 0], []),  # full reset: fixed or 0
        ("cache.reset K[0]; cache.reset K[1]; cache.reset K[2];", [3, 0], []),
    ],
)
@on_both
def test_reset_prefix_and_full(device, resets, sizes, left) -> None:
    exe = executor(RESET_SRC % resets, device=device)
    values = dict(zip("abcd", rows(4, seed=5)))
    step(exe, **values)
    assert exe.table_sizes("K") == sizes
    assert sorted(exe.store["K"].entries) == left
    expected = dense({k: values[RESET_KEYS[k]] for k in left}, sizes)
    np.testing.assert_array_equal(exe.state("K"), expected)


@on_both
def test_reset_recomputes_a_size_grown_by_reads(device) -> None:
    exe = executor(
        """
        volatile { y: f32[2]; }
        persistent { T(i): f32[2] @table; }
        block entry { cache.read T[9] >> y; cache.reset T[9]; }
        """,
        device=device,
    )
    step(exe)
    assert exe.table_sizes("T") == [0]


@on_both
def test_reset_then_read_gives_init_again(device) -> None:
    exe = executor(
        """
        dynamic { v: f32[2]; }
        volatile { y: f32[2]; }
        persistent { T(i): f32[2] @init(0.25) @table; }
        block entry { cache.write v >> T[1]; cache.reset T[]; cache.read T[1] >> y; }
        """,
        device=device,
    )
    step(exe, v=np.ones(D, np.float32))
    np.testing.assert_array_equal(exe.fetch("y"), np.full(D, 0.25, np.float32))
    assert exe.table_sizes("T") == [2]


@on_both
def test_reset_with_slice_is_rejected(device) -> None:
    err = verify_error("persistent { K(l, t): f32[2] @table; } block entry { cache.reset K[0..1]; }", device=device)
    assert err.message == "cache.reset K requires scalar indices"


# --- §4.4 auto_dim ---------------------------------------------------------------------------------
# On both devices (the compiled path keeps each tensor as base + counts, zero-padded by the host).

AUTO_SRC = """
dynamic {{ w: f32[{rows}, {cols}]; }}
volatile {{ y: f32[2, 2]; z: f32[2, 2]; }}
persistent {{ M(a, b): f32[2, 2] {init} @auto_dim(a, b) @fixed(a=3); }}
block entry {{ {ops} }}
"""


def auto_exe(ops: str, *, init: str = "@init(1.0)", w_shape=(2, 2), device: str = "reference") -> oi.Executor:
    return executor(AUTO_SRC.format(ops=ops, init=init, rows=w_shape[0], cols=w_shape[1]), device=device)


def grown(base: np.ndarray, shape) -> np.ndarray:
    out = np.zeros(shape, base.dtype)
    out[tuple(slice(0, n) for n in base.shape)] = base
    return out


@on_both
def test_auto_dim_initial_state(device) -> None:
    exe = auto_exe("", device=device)
    assert exe.table_sizes("M") == [0, 0]
    np.testing.assert_array_equal(exe.state("M"), np.ones((2, 2), np.float32))


@pytest.mark.parametrize(
    ("ops", "counts"),
    [
        ("cache.read M[1, 2] >> y;", [1, 2]),
        ("cache.read M[1] >> y;", [1, 0]),  # fewer indices than auto-dims
        ("cache.read M[0, 0] >> y;", [0, 0]),
        ("cache.read M[1, 2] >> y; cache.read M[0, 1] >> y;", [1, 2]),  # counts only grow
        ("cache.read M[2, 0] >> y; cache.read M[1, 3] >> y;", [2, 3]),
        ("cache.read M[3, 0] >> y;", [3, 0]),  # idx == max is allowed
        ("cache.read M[1, 2] >> y; cache.read M >> y;", [1, 2]),  # unbracketed: whole tensor
        ("cache.read M[1, 2] >> y; cache.read M[] >> y;", [1, 2]),
    ],
)
@on_both
def test_auto_dim_counts_and_zero_padded_growth(ops, counts, device) -> None:
    exe = step(auto_exe(ops, device=device))
    assert exe.table_sizes("M") == counts
    shape = (2 + counts[0], 2 + counts[1])
    expected = grown(np.ones((2, 2), np.float32), shape)  # @init at base, zeros in the new rows/cols
    np.testing.assert_array_equal(exe.fetch("y"), expected)  # a read returns the whole tensor
    np.testing.assert_array_equal(exe.state("M"), expected)


@on_both
def test_auto_dim_growth_keeps_written_data_top_left(device) -> None:
    exe = auto_exe("cache.write w >> M[1, 1]; cache.read M[2, 2] >> y;", w_shape=(3, 3), device=device)
    w = np.arange(9, dtype=np.float32).reshape(3, 3) + 1
    step(exe, w=w)
    assert exe.table_sizes("M") == [2, 2]
    np.testing.assert_array_equal(exe.fetch("y"), grown(w, (4, 4)))


@on_both
def test_auto_dim_growth_across_steps(device) -> None:
    exe = executor(
        """
        volatile { y: f32[2]; }
        persistent { t: i64 @init(0); M(a): f32[2] @init(5.0) @auto_dim(a); }
        block entry { cache.increment t; cache.read M[t] >> y; }
        """,
        device=device,
    )
    for n in range(1, 4):
        step(exe)
        assert exe.table_sizes("M") == [n]
        np.testing.assert_array_equal(exe.fetch("y"), np.array([5, 5] + [0] * n, np.float32))


@on_both
def test_auto_dim_exceeding_fixed_max(device) -> None:
    # run-time index via a persistent scalar; upstream names the variable and the index position
    exe = executor(
        """
        volatile { y: f32[2, 2]; }
        persistent { n: i64 @init(4); M(a, b): f32[2, 2] @auto_dim(a, b) @fixed(a=3); }
        block entry { cache.read M[1, 1] >> y; cache.read M[n, 0] >> y; }
        """,
        device=device,
    )
    err = cache_error(exe)
    assert err.message == "auto_dim M exceeds fixed max 3 for 0"
    assert exe.table_sizes("M") == [0, 0]  # rolled back
    assert exe.state("M").shape == (2, 2)


@on_both
def test_auto_dim_exceeding_fixed_max_on_the_second_index(device) -> None:
    exe = executor(
        """
        volatile { y: f32[2, 2]; }
        persistent { M(a, b): f32[2, 2] @auto_dim(a, b) @fixed(b=1); }
        block entry { cache.read M[0, 2] >> y; }
        """,
        device=device,
    )
    assert cache_error(exe).message == "auto_dim M exceeds fixed max 1 for 1"


@on_both
def test_auto_dim_write_needs_base_plus_counts(device) -> None:
    w = np.arange(12, dtype=np.float32).reshape(3, 4)
    exe = step(auto_exe("cache.write w >> M[1, 2];", w_shape=(3, 4), device=device), w=w)
    np.testing.assert_array_equal(exe.state("M"), w)
    assert exe.table_sizes("M") == [1, 2]
    # counts update first, then the shape check
    exe = auto_exe("cache.write w >> M[0, 0];", w_shape=(3, 4), device=device)
    err = cache_error(exe, w=w)
    assert err.message == "cache.write M expects shape [2, 2], got [3, 4]"
    exe = auto_exe("cache.write w >> M[1, 1];", w_shape=(3, 4), device=device)
    assert cache_error(exe, w=w).message == "cache.write M expects shape [3, 3], got [3, 4]"
    exe = auto_exe("cache.write w >> M;", w_shape=(3, 4), device=device)  # unbracketed: current counts
    assert cache_error(exe, w=w).message == "cache.write M expects shape [2, 2], got [3, 4]"


def test_auto_dim_slices_are_rejected() -> None:
    err = verify_error(
        "volatile { y: f32[2, 2]; } persistent { M(a, b): f32[2, 2] @auto_dim(a, b); }"
        " block entry { cache.read M[0..1] >> y; }"
    )
    assert err.message == "cache access M does not support slice indices"
    storage = AutoDimStorage(Declaration(name="M", dtype="f32", shape=(2, 2), auto_dim=("a", "b")))
    with pytest.raises(oi.CacheError) as info:
        storage.read([(0, 1)])
    assert info.value.message == "cache access M does not support slice indices"


@on_both
def test_auto_dim_reset(device) -> None:
    w = np.full((3, 4), 7.0, np.float32)
    exe = auto_exe("cache.write w >> M[1, 2]; cache.reset M; cache.read M >> y;", w_shape=(3, 4), device=device)
    step(exe, w=w)
    assert exe.table_sizes("M") == [0, 0]
    np.testing.assert_array_equal(exe.fetch("y"), np.ones((2, 2), np.float32))
    np.testing.assert_array_equal(exe.state("M"), np.ones((2, 2), np.float32))
    # and it grows again from the base
    exe2 = auto_exe("cache.read M[2, 2] >> y; cache.reset M; cache.read M[1, 0] >> z;", init="", device=device)
    step(exe2)
    assert exe2.table_sizes("M") == [1, 0]
    np.testing.assert_array_equal(exe2.fetch("z"), np.zeros((3, 2), np.float32))


# --- §4.5 increment / decrement -------------------------------------------------------------------


def _wrap(value: int, dtype: str) -> int:
    info = np.iinfo(numpy_dtype(dtype))
    span = int(info.max) - int(info.min) + 1
    return (value - int(info.min)) % span + int(info.min)


INT_CASES = [
    # dtype, init, node, expected (after one step)
    ("i8", 127, "cache.increment c;", -128),
    ("i8", -128, "cache.decrement c;", 127),
    ("i8", 120, "cache.increment 10 c;", -126),
    ("u8", 255, "cache.increment c;", 0),
    ("u8", 0, "cache.decrement c;", 255),
    ("u8", 1, "cache.decrement 3 c;", 254),
    ("u8", 250, "cache.increment 300 c;", (250 + 300) % 256),
    ("i16", 32767, "cache.increment c;", -32768),
    ("u16", 0, "cache.decrement c;", 65535),
    ("i32", 2**31 - 1, "cache.increment c;", -(2**31)),
    ("i32", -(2**31), "cache.decrement 2 c;", 2**31 - 2),
    ("u32", 2**32 - 1, "cache.increment c;", 0),
    ("u32", 0, "cache.decrement c;", 2**32 - 1),
    ("i64", 2**63 - 1, "cache.increment c;", -(2**63)),
    ("i64", -(2**63), "cache.decrement c;", 2**63 - 1),
    ("u64", 2**64 - 1, "cache.increment c;", 0),
    ("u64", 0, "cache.decrement c;", 2**64 - 1),
    ("u64", 5, "cache.decrement 7 c;", 2**64 - 2),
    ("i32", 41, "cache.increment 0 c;", 41),
    ("i32", 0, "cache.increment c; cache.increment 5 c; cache.decrement 2 c;", 4),
]


@pytest.mark.parametrize(("device", "dtype", "init", "node", "expected"),
                         [(device, *case) for device in DEVICES for case in INT_CASES])  # fmt: skip
def test_integer_increment_wraps(device, dtype, init, node, expected) -> None:
    exe = step(executor(f"persistent {{ c: {dtype} @init({init}); }} block entry {{ {node} }}", device=device))
    value = exe.state("c")
    assert value.dtype == numpy_dtype(dtype) and value.shape == ()
    assert int(value) == expected == _wrap(expected, dtype)


@pytest.mark.parametrize("dtype", ["i8", "u8", "i32", "u32", "i64", "u64"])
@on_both
def test_integer_increment_accumulates_over_steps(device, dtype) -> None:
    exe = executor(
        f"persistent {{ c: {dtype}; d: {dtype}; }} block entry {{ cache.increment 100 c; cache.decrement d; }}",
        device=device,
    )
    for n in range(1, 5):
        step(exe)
        assert int(exe.state("c")) == _wrap(100 * n, dtype)
        assert int(exe.state("d")) == _wrap(-n, dtype)


FLOAT_CASES = [
    # dtype, init literal, node, expected computed in f32 (f64 for f64) and rounded to the dtype
    ("f16", "2048.0", "cache.increment c;", np.float16(np.float32(2048) + 1)),  # 2049 rounds to 2048
    ("f16", "0.5", "cache.increment 3 c;", np.float16(3.5)),
    ("f16", "0.0", "cache.decrement c;", np.float16(-1.0)),
    ("bf16", "256.0", "cache.increment c;", 256.0),  # bf16 has 8 bits of mantissa
    ("bf16", "1.0", "cache.increment 2 c;", 3.0),
    ("f32", "16777216.0", "cache.increment c;", np.float32(2**24)),
    ("f32", "1.5", "cache.decrement 4 c;", np.float32(-2.5)),
    ("f64", "16777216.0", "cache.increment c;", np.float64(2**24 + 1)),
    ("f64", "0.1", "cache.increment c;", np.float64(0.1) + 1),
    ("f8", "1.0", "cache.increment c;", 2.0),
]


@pytest.mark.parametrize(
    ("device", "dtype", "init", "node", "expected"),
    [(device, *case) for device in DEVICES for case in FLOAT_CASES],  # an f8 counter too (f32 sum, one rounding)
)
def test_float_increment_one_element(device, dtype, init, node, expected) -> None:
    """`c: T[1]` (one element counts as scalar upstream)."""
    exe = step(executor(f"persistent {{ c: {dtype}[1] @init({init}); }} block entry {{ {node} }}", device=device))
    value = exe.state("c")
    assert value.dtype == numpy_dtype(dtype) and value.shape == (1,)
    assert value.astype(np.float64)[0] == np.float64(expected)


@pytest.mark.parametrize("dtype", ["f16", "bf16", "f32", "f64"])
@on_both
def test_float_increment_scalar(device, dtype) -> None:
    """A rank-0 float counter (`c: f32 @init(1.5)`), the usual declaration."""
    exe = step(executor(
        f"persistent {{ c: {dtype} @init(1.5); }} block entry {{ cache.increment c; cache.increment 2 c; }}",
        device=device,
    ))
    value = exe.state("c")
    assert value.shape == () and value.dtype == numpy_dtype(dtype)
    assert float(value) == 4.5


@on_both
def test_increment_lazily_starts_from_init_and_default_is_zero(device) -> None:
    exe = step(executor(
        "persistent { a: i32 @init(7); b: i32; } block entry { cache.increment a; cache.decrement b; }",
        device=device,
    ))
    assert int(exe.state("a")) == 8
    assert int(exe.state("b")) == -1


@pytest.mark.parametrize(
    ("decl", "message"),
    [
        ("c: bool;", "cache increment does not support dtype Bool for c"),
        ("c: f32[2];", "cache increment expects scalar c"),
    ],
)
@on_both
def test_increment_rejections(device, decl, message) -> None:
    err = verify_error(f"persistent {{ {decl} }} block entry {{ cache.increment c; }}", device=device)
    assert err.message == message


@on_both
def test_increment_of_a_non_persistent_is_rejected(device) -> None:
    err = verify_error("volatile { c: i32; } block entry { cache.increment c; }", device=device)
    assert err.message == "cache operation expects persistent variable, got Volatile c"


# --- §4.2 index resolution --------------------------------------------------------------------------


@on_both
def test_index_literal(device) -> None:
    exe = step(executor(
        "volatile { y: f32[2]; } persistent { A(i): f32[2] @table; } block entry { cache.read A[6] >> y; }",
        device=device,
    ))
    assert exe.table_sizes("A") == [7]


@on_both
def test_index_sizevar_shadows_a_persistent_of_the_same_name(device) -> None:
    exe = executor(
        """
        volatile { y: f32[2]; }
        persistent { D: i64 @init(1); A(i): f32[2] @table; }
        block entry { cache.read A[D] >> y; }
        """,
        sizevars={"D": 3},
        device=device,
    )
    step(exe)
    assert exe.table_sizes("A") == [4]  # D=3 from the model, not the persistent's 1


@on_both
def test_index_sizevar_shadows_a_loop_variable(device) -> None:
    exe = executor(
        """
        volatile { y: f32[2]; }
        persistent { A(i): f32[2] @table; }
        block entry { loop l (D in 0..2) { cache.read A[D] >> y; } }
        """,
        sizevars={"D": 5},
        device=device,
    )
    step(exe)
    assert exe.table_sizes("A") == [6]


@on_both
def test_index_loop_variable_shadows_a_persistent(device) -> None:
    exe = executor(
        """
        dynamic { v: f32[2]; }
        persistent { i: i64 @init(7); A(k): f32[2] @table; }
        block entry { loop l (i in 0..3) { cache.write v >> A[i]; } }
        """,
        device=device,
    )
    step(exe, v=np.ones(D, np.float32))
    assert exe.table_sizes("A") == [3]
    assert sorted(exe.store["A"].entries) == [(0,), (1,), (2,)]


@on_both
def test_index_persistent_scalar_tracks_its_value(device) -> None:
    exe = executor(
        """
        dynamic { v: f32[2]; }
        volatile { y: f32[2]; }
        persistent { t: u8 @init(2); A(k): f32[2] @table; }
        block entry { cache.write v >> A[t]; cache.increment 3 t; }
        """,
        device=device,
    )
    values = rows(3, seed=6)
    for value in values:
        step(exe, v=value)
    assert exe.table_sizes("A") == [9]
    np.testing.assert_array_equal(exe.state("A"), dense({2: values[0], 5: values[1], 8: values[2]}, [9]))


@pytest.mark.parametrize(("dtype", "init", "size"), [("bool", "true", 2), ("bool", "false", 1), ("i8", "3", 4), ("u64", "0", 1)])
@on_both
def test_index_persistent_scalar_dtypes(device, dtype, init, size) -> None:
    exe = step(
        executor(
            f"volatile {{ y: f32[2]; }} persistent {{ s: {dtype} @init({init}); A(k): f32[2] @table; }}"
            " block entry { cache.read A[s] >> y; }", device=device
        )
    )
    assert exe.table_sizes("A") == [size]


@pytest.mark.parametrize("dtype", ["f32", "f16", "f64"])
@on_both
def test_float_index_is_rejected(device, dtype) -> None:
    exe = executor(
        f"volatile {{ y: f32[2]; }} persistent {{ f: {dtype} @init(1.0); A(k): f32[2] @table; }}"
        " block entry { cache.read A[f] >> y; }", device=device
    )
    err = cache_error(exe)
    assert err.message == "cache index must be integer"
    assert exe.table_sizes("A") == [0]


@on_both
def test_volatile_scalar_index_is_rejected(device) -> None:
    err = verify_error(
        "volatile { y: f32[2]; s: i32; } persistent { A(k): f32[2] @table; } block entry { cache.read A[s] >> y; }",
        device=device,
    )
    assert err.message == "unknown cache index s"


@pytest.mark.parametrize(
    "node",
    [
        "cache.read A[s] >> y;",
        "cache.write y >> A[s];",
        "cache.read B[0, s] >> y;",
        "cache.read M[s] >> m;",
    ],
)
@on_both
def test_negative_run_time_index_is_rejected(device, node) -> None:
    """Upstream resolves a single index with `resolve_cache_index_value_usize`, which fails with
    `cache index cannot be negative` (§4.7; the verifier's message for literals)."""
    auto_dim = "M(r): f32[2] @auto_dim(r);" if "M[" in node else ""
    exe = executor(
        f"""
        volatile {{ y: f32[2]; m: f32[2]; }}
        persistent {{ s: i64 @init(-1); A(k): f32[2] @table; B(k, j): f32[2] @table; {auto_dim} }}
        block entry {{ {node} }}
        """,
        device=device,
    )
    err = cache_error(exe)
    assert err.message == "cache index cannot be negative"


# --- plain persistent --------------------------------------------------------------------------------


@on_both
def test_plain_persistent_read_write_reset(device) -> None:
    exe = executor(
        """
        dynamic { x: f32[2]; }
        volatile { y0: f32[2]; y1: f32[2]; y2: f32[2]; }
        persistent { W: f32[2] @init(0.5); }
        block entry {
            cache.read W >> y0;
            cache.write x >> W;
            cache.read W >> y1;
            cache.reset W;
            cache.read W >> y2;
        }
        """,
        device=device,
    )
    x = np.array([3.0, -1.0], np.float32)
    step(exe, x=x)
    np.testing.assert_array_equal(exe.fetch("y0"), [0.5, 0.5])
    np.testing.assert_array_equal(exe.fetch("y1"), x)
    np.testing.assert_array_equal(exe.fetch("y2"), [0.5, 0.5])
    np.testing.assert_array_equal(exe.state("W"), [0.5, 0.5])


@on_both
def test_plain_persistent_survives_steps_and_is_a_copy(device) -> None:
    exe = executor(
        """
        dynamic { x: f32[2]; }
        volatile { y: f32[2]; one: f32[2] @init(1.0); }
        persistent { W: f32[2]; }
        block entry {
            cache.read W >> y;
            cache.write x >> W;
            op add(x, one) >> x;
        }
        """,
        device=device,
    )
    a, b = rows(2, seed=7)
    step(exe, x=a)
    np.testing.assert_array_equal(exe.fetch("y"), np.zeros(D, np.float32))
    np.testing.assert_array_equal(exe.state("W"), a)  # not a + 1: the write stored a copy
    step(exe, x=b)
    np.testing.assert_array_equal(exe.fetch("y"), a)
    np.testing.assert_array_equal(exe.state("W"), b)


@on_both
def test_plain_persistent_cast_on_write_keeps_dtype(device) -> None:
    exe = step(
        executor("dynamic { x: i32; } persistent { W: i32 @init(3); } block entry { cache.write x >> W; }", device=device),
        x=np.int32(-9),
    )
    assert exe.state("W").dtype == np.int32 and int(exe.state("W")) == -9


@pytest.mark.parametrize(
    ("node", "message"),
    [
        ("cache.read W[0] >> y;", "cache W does not support indexed access"),
        ("cache.read W[] >> y;", "cache W does not support indexed access"),
        ("cache.write y >> W[0];", "cache.write W does not support indexed writes"),
        ("cache.read p[0] >> s;", "cache access expects at most 0 indices, got 1"),
    ],
)
@on_both
def test_indexed_access_on_plain_persistent_is_rejected(device, node, message) -> None:
    err = verify_error(
        f"volatile {{ y: f32[2]; s: i32; }} persistent {{ W: f32[2]; p: i32; }} block entry {{ {node} }}", device=device
    )
    assert err.message == message


# --- a property: rank-1 slices against a model of §4.3 ----------------------------------------------

SLICE_PROP_SRC = """
dynamic { v: f32[2]; k: i64; a: i64; b: i64; nw: i64; nr: i64; }
volatile { r: f32[2]; }
persistent { sk: i64; sa: i64; sb: i64; T(i): f32[2] @table; }
block entry {
    cache.write a >> sa;
    cache.write b >> sb;
    loop writes (once in 0..nw) { cache.write k >> sk; cache.write v >> T[sk]; }
    loop reads (once in 0..nr) { cache.read T[sa..sb] >> r; }
}
"""
_SLICE_SIMS: dict[str, oi.Simulator] = {}


def _slice_sim(device: str = "reference"):
    if device not in _SLICE_SIMS:
        _SLICE_SIMS[device] = oi.Simulator(oi.Model(), oi.parse_graph(SLICE_PROP_SRC, FILE), device=device)
    return _SLICE_SIMS[device]


def model_slice(size: int, start: int, end: int):
    """§4.3 for one slice on a dim of current size `size`: (selected indices, new size) or an error."""
    if start < 0:
        return "slice start cannot be negative"
    if end < 0:
        if -end > size:
            return f"slice end underflow for size {size}"
        end = size + end
    if end < start:
        return f"slice end {end} before start {start}"
    return list(range(start, end)), max(size, end)


@on_both
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    keys=st.lists(st.integers(0, 8), max_size=5),
    start=st.integers(-2, 10),
    end=st.integers(-10, 12),
)
def test_rank1_slices_match_the_rules(device, keys, start, end) -> None:
    exe = _slice_sim(device).make_executor()
    entries = {}
    for n, key in enumerate(keys):
        value = np.full(D, n + 1, np.float32)
        step(exe, **go(False), k=key, v=value, a=0, b=0)
        entries[key] = value
    size = max(keys) + 1 if keys else 0
    assert exe.table_sizes("T") == [size]
    expected = model_slice(size, start, end)
    exe.insert(**go(True), a=start, b=end)
    if isinstance(expected, str):
        with pytest.raises(oi.CacheError) as info:
            exe.step()
        assert info.value.message == expected
        assert exe.table_sizes("T") == [size]
        return
    exe.step()
    selected, new_size = expected
    full = dense(entries, [new_size])
    got = exe.fetch("r")
    assert got.shape == (len(selected), D)
    np.testing.assert_array_equal(got, full[selected] if selected else np.zeros((0, D), np.float32))
    assert exe.table_sizes("T") == [new_size]
