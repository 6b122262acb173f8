"""`cache.append x >> K[off]` (`@on_out_of_range(skip)`): baracuda's ragged batched KV append.

For a table `K(b, ..., l)`, `K[b, ..., off[b] + l] = x[b, ..., l]` for every cell of `x`
(`runtime/tables.py` `TableStorage.append` on `device="reference"`, `lowering/ragged_append.py` on
`device="cpu"`). Every test compares both devices with each other and, where values are written,
with `NumpyTable` below, an independent numpy model of the statement; values are compared bit for
bit (`.view(np.uint8)`: NaN payloads, -0.0 and bf16 included), errors by class, message and location,
and a failed step must leave every persistent variable exactly as it was.

The random programs (`test_random_programs_agree`) put several appends (random dtypes, entry
shapes, 0-2 middle indices, extents, `@fixed` indices, policies and offset dtypes, about half the
tables `@paged(page = P[, pages = N])`, the attribute anywhere in the declaration) in one graph and
run several steps of random inputs through the reference, cpu and the model; on `device="cpu"` a
paged table's `page_table` must describe the model's entries too. The scenarios after
them are baracuda's (`KvCacheAppendPlan`'s tests), then the errors, traces, loops and checkpoints,
then the verifier. The tests at the end pin the bugs this file found (each docstring says what was).
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from dataclasses import dataclass, field

import ml_dtypes
import numpy as np
import pytest

import oi_compiler as oi
from tests.step_checks import assert_bits, assert_page_table, assert_same_snapshot, error_text, snapshot, step

FILE = "append.oi"
DEVICES = ("reference", "cpu")
on_both = pytest.mark.parametrize("device", DEVICES)

#: table dtypes the random programs draw, and their numpy types
DTYPES = {"f32": np.float32, "f16": np.float16, "bf16": ml_dtypes.bfloat16, "f64": np.float64,
          "i32": np.int32, "u8": np.uint8, "i64": np.int64}  # fmt: skip
OFFSET_DTYPES = {"i64": np.int64, "i32": np.int32, "u32": np.uint32, "u64": np.uint64}


# --- running graphs ------------------------------------------------------------------------------


def make(src: str, sizevars: dict | None = None, device: str = "reference", *, tensors=None,
         trace: bool = False) -> oi.Executor:  # fmt: skip
    graph = oi.parse_graph(textwrap.dedent(src), FILE)
    sim = oi.Simulator(oi.Model(sizevars=dict(sizevars or {}), tensors=tensors or {}), graph, device=device)
    if trace:
        sim.with_trace()
    return sim.make_executor()


def run_both(src: str, sizevars: dict, steps: list[dict], *, tensors=None) -> tuple[list, dict]:
    """Both devices through `steps`, compared after each (errors and every persistent state);
    the errors (reference's) and the final snapshot."""
    ref, cpu = make(src, sizevars, "reference", tensors=tensors), make(src, sizevars, "cpu", tensors=tensors)
    errors = []
    for n, values in enumerate(steps):
        expected, actual = step(ref, values), step(cpu, values)
        assert error_text(actual) == error_text(expected), f"step {n}"
        assert_same_snapshot(snapshot(cpu), snapshot(ref), f"step {n}")
        errors.append(expected)
    return errors, snapshot(ref)


def messages(errors: list) -> list[str | None]:
    return [e and e.message for e in errors]


# --- the numpy model -----------------------------------------------------------------------------


class ModelError(Exception):
    pass


def shape_text(shape) -> str:
    return "[" + ", ".join(str(d) for d in shape) + "]"


@dataclass
class NumpyTable:
    """A table as `exe.state` shows it: sizes (from `@fixed` or 0, raised to k + 1 by a write at k)
    and the written entries; unwritten entries read as `@init` (or zeros)."""

    name: str
    dtype: type
    entry: tuple[int, ...]
    fixed: list[int | None]
    init: float | int | None = None
    sizes: list[int] = field(default_factory=list)
    entries: dict[tuple[int, ...], np.ndarray] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.sizes:  # a new table (a copy keeps its sizes)
            self.sizes = [f or 0 for f in self.fixed]

    @property
    def rank(self) -> int:
        return len(self.fixed)

    def copy(self) -> NumpyTable:
        return NumpyTable(self.name, self.dtype, self.entry, list(self.fixed), self.init, list(self.sizes),
                          dict(self.entries))  # fmt: skip

    def dense(self) -> np.ndarray:
        out = np.full((*self.sizes, *self.entry), 0 if self.init is None else self.init, dtype=self.dtype)
        for key, value in self.entries.items():
            out[key] = value
        return out

    def append(self, x: np.ndarray, offsets: np.ndarray, *, skip: bool) -> None:
        """`cache.append x >> NAME[offsets]` as docs and the brief state it (mathematical `off + l`:
        no wrapping). Raises ModelError with the expected message; the caller restores the tables."""
        name, rank, entry = self.name, self.rank, self.entry
        if x.ndim != rank + len(entry) or x.shape[rank:] != entry:
            raise ModelError(f"cache.append {name} expects a source of rank {rank + len(entry)} ending in "
                             f"{shape_text(entry)}, got {shape_text(x.shape)}")  # fmt: skip
        if offsets.shape != (x.shape[0],):
            raise ModelError(f"cache.append {name} expects {x.shape[0]} offsets (one per sample), "
                             f"got {shape_text(offsets.shape)}")  # fmt: skip
        extents = x.shape[:rank]
        if 0 in extents:
            return
        wide = offsets.view(np.int64) if offsets.dtype == np.uint64 else offsets.astype(np.int64)
        offs = [int(o) for o in wide]
        new, limit = extents[-1], self.fixed[-1]
        for b, off in enumerate(offs):
            if off < 0:
                raise ModelError(f"cache.append {name} offset {off} of sample {b} is negative")
            if limit is not None and not skip and off + new > limit:
                raise ModelError(f"cache.append {name} sample {b} at offset {off} with {new} new entries "
                                 f"exceeds fixed size {limit} of index {rank - 1}")  # fmt: skip
        for cell in np.ndindex(*extents):
            key = (*cell[:-1], offs[cell[0]] + cell[-1])
            if skip and limit is not None and key[-1] >= limit:
                continue
            for d, k in enumerate(key):
                if self.fixed[d] is not None and k >= self.fixed[d]:
                    raise ModelError(f"cache table {name} index {d} exceeds fixed size {self.fixed[d]} "
                                     f"(index value {k})")  # fmt: skip
            self.sizes = [s if f is not None else max(s, k + 1) for s, f, k in zip(self.sizes, self.fixed, key)]
            self.entries[key] = np.array(x[cell], dtype=self.dtype, copy=True)


def random_values(rng: np.random.Generator, dtype: type, shape) -> np.ndarray:
    """Random bits of `dtype` (floats: NaNs with payloads, infinities, subnormals, -0.0 included)."""
    size = np.dtype(dtype).itemsize
    raw = rng.integers(0, 256, size=int(np.prod(shape, dtype=np.int64)) * size, dtype=np.uint8)
    return raw.view(dtype).reshape(shape)


# --- random programs: several appends in one graph, reference vs cpu vs numpy --------------------


ENTRIES = [(2,), (3,), (2, 3), (1,), (), (4,), (3, 2), (2,), (2, 0)]


@dataclass
class Spec:
    """One table `K{n}` and its statement `cache.append x{n} >> K{n}[o{n}]`."""

    n: int
    dtype: str
    odtype: str
    entry: tuple[int, ...]
    extents: list[int]  # [B, middles..., L_new]
    fixed: list[int | None]
    skip: bool
    init: float | int | None
    page: int = 0  # `@paged(page = P)` (0: dense storage)
    pages: int = 0  # and its `pages = N` (0: none)

    @property
    def names(self) -> list[str]:
        """Index names, and the size variables of the source's extents."""
        return ["b", *[f"h{m}" for m in range(len(self.extents) - 2)], "l"]

    @property
    def sizevars(self) -> dict[str, int]:
        return {f"{i.upper()}{self.n}": e for i, e in zip(self.names, self.extents)}

    def decls(self) -> tuple[list[str], list[str]]:
        dims = ", ".join([*self.sizevars, *map(str, self.entry)])
        entry = shape_text(self.entry) if self.entry else ""
        init = "" if self.init is None else f" @init({self.init})"
        fixed = ", ".join(f"{i} = {f}" for i, f in zip(self.names, self.fixed) if f is not None)
        attrs = [f"@table{init}", *([f"@fixed({fixed})"] if fixed else [])]
        if self.page:  # before `@table`, between the others or last, as the seed turns
            options = [f"page = {self.page}", *([f"pages = {self.pages}"] if self.pages else [])]
            attrs.insert(self.n % (len(attrs) + 1), f"@paged({', '.join(options[:: 1 if self.n % 2 else -1])})")
        table = f"K{self.n}({', '.join(self.names)}): {self.dtype}{entry} {' '.join(attrs)}"
        return [f"x{self.n}: {self.dtype}[{dims}];", f"o{self.n}: {self.odtype}[B{self.n}];"], [table + ";"]

    def statement(self) -> str:
        policy = " @on_out_of_range(skip)" if self.skip else ""
        return f"cache.append x{self.n} >> K{self.n}[o{self.n}]{policy};"

    def table(self) -> NumpyTable:
        return NumpyTable(f"K{self.n}", DTYPES[self.dtype], self.entry, list(self.fixed), self.init)

    def offsets(self, rng: np.random.Generator) -> np.ndarray:
        """Mostly offsets that fit; now and then a negative one (a u64 of 2**63 or more, which
        wraps negative), one past a `@fixed` last index (skip: often), one past capacity 16."""
        b_count, new, limit = self.extents[0], self.extents[-1], self.fixed[-1]
        signed = self.odtype[0] == "i"
        out = []
        for _ in range(b_count):
            r = rng.random()
            if r < 0.015 and signed:
                out.append(-int(rng.integers(1, 4)))
            elif r < 0.015 and self.odtype == "u64":
                out.append(2**63 + int(rng.integers(0, 3)) * (2**62 - 1))
            elif limit is not None and r < (0.45 if self.skip else 0.045):
                out.append(int(rng.integers(max(limit - new + 1, 0), limit + 2)))
            elif limit is not None:
                out.append(int(rng.integers(0, max(limit - new, 0) + 1)))
            elif r < 0.08:
                out.append(int(rng.integers(15, 21)))
            else:
                out.append(int(rng.integers(0, 7)))
        return np.array([v % 2**64 for v in out], np.uint64).astype(OFFSET_DTYPES[self.odtype])  # two's complement


def draw_specs(seed: int) -> list[Spec]:
    """3-4 appends; dtypes, offset dtypes, middle counts and entries rotate with the seed so that
    the seeds together cover every combination the file promises; about half the tables `@paged`
    (`device="cpu"` keeps them in pages; the results must not change)."""
    rng = np.random.default_rng(seed)
    dtypes, odtypes = list(DTYPES), list(OFFSET_DTYPES)
    specs = []
    for n in range(3 + seed % 2):
        k = 3 * seed + n
        middles = k % 3
        extents = [int(rng.choice([1, 2, 3, 2, 0] if n else [1, 2, 3]))]  # B (0 never in the first)
        extents += [int(rng.integers(1, 3)) for _ in range(middles)]
        extents.append(int(rng.choice([0, 1, 2, 3, 4, 2])))  # L_new
        skip = bool(rng.random() < 0.5)
        fixed: list[int | None] = [None] * len(extents)
        if rng.random() < 0.3:  # a @fixed batch index (never overflowed here: see the error cases)
            fixed[0] = extents[0] + int(rng.integers(0, 2)) or 1
        for m in range(1, len(extents) - 1):
            if rng.random() < 0.3:
                fixed[m] = extents[m] + int(rng.integers(0, 2))
        if skip and extents[-1] >= 2 and rng.random() < 0.3:  # a @fixed last index L_new does not fit
            fixed[-1] = extents[-1] - 1
        elif rng.random() < 0.6:  # one it fits
            fixed[-1] = max(1, extents[-1] + int(rng.integers(0, 6)))
        dtype = dtypes[k % len(dtypes)]
        init = None if rng.random() < 0.5 else (1.5 if dtype[0] in "fb" else 3)
        specs.append(Spec(n, dtype, odtypes[(seed + n) % len(odtypes)], ENTRIES[k % len(ENTRIES)], extents, fixed,
                          skip, init))  # fmt: skip
    paging = np.random.default_rng(15 + seed)  # its own generator: the draws above stay as they were
    for s in specs:  # half the tables paged: pages of 1-4 (a @fixed last index in whole pages or not) or 16
        if paging.random() < 0.5:
            s.page, s.pages = int(paging.choice([1, 2, 3, 4, 16])), int(paging.choice([0, 0, 1, 3]))
    return specs


def program(specs: list[Spec]) -> tuple[str, dict[str, int]]:
    dynamic, persistent, sizevars = [], [], {}
    for s in specs:
        d, p = s.decls()
        dynamic += d
        persistent += p
        sizevars.update(s.sizevars)
    lines = ["graph! {", "    dynamic {", *("        " + d for d in dynamic), "    }",
             "    persistent {", *("        " + p for p in persistent), "    }",
             "    block entry {", *("        " + s.statement() for s in specs), "    }", "}"]  # fmt: skip
    return "\n".join(lines) + "\n", sizevars


@pytest.mark.parametrize("seed", range(12))
def test_random_programs_agree(seed: int) -> None:
    specs = draw_specs(seed)
    src, sizevars = program(specs)
    first_line = src.splitlines().index("    block entry {") + 2
    ref, cpu = make(src, sizevars, "reference"), make(src, sizevars, "cpu")
    tables = [s.table() for s in specs]
    rng = np.random.default_rng(1000 + seed)
    outcomes = []
    for n in range(6):
        values = {}
        for s in specs:
            shape = (*s.extents, *s.entry)
            values[f"x{s.n}"] = random_values(rng, DTYPES[s.dtype], shape)
            values[f"o{s.n}"] = s.offsets(rng)
        saved = [t.copy() for t in tables]
        expected = None
        for i, (s, t) in enumerate(zip(specs, tables)):
            try:
                t.append(values[f"x{s.n}"], values[f"o{s.n}"], skip=s.skip)
            except ModelError as e:
                expected = (str(e), f"{FILE}:{first_line + i}:9")
                tables = saved
                break
        got_ref, got_cpu = step(ref, values), step(cpu, values)
        what = f"seed {seed} step {n}\n{src}"
        assert error_text(got_cpu) == error_text(got_ref), what
        assert (got_ref and (got_ref.message, str(got_ref.loc))) == expected, what
        if got_ref is not None:
            assert isinstance(got_ref, oi.CacheError), what
        for s, t in zip(specs, tables):
            name = f"K{s.n}"
            for device, exe in zip(DEVICES, (ref, cpu)):
                assert exe.table_sizes(name) == t.sizes, f"{what}\n{device} table_sizes({name})"
                assert_bits(exe.state(name), t.dense(), f"{what}\n{device} state({name})")
            if s.page:
                assert_page_table(cpu.page_table(name), t.sizes, t.fixed[-1], s.page, list(t.entries),
                                  f"{what}\npage_table({name})")  # fmt: skip
        outcomes.append(expected is None)
    assert ref.steps == cpu.steps == sum(outcomes)


def test_the_random_programs_cover_what_they_promise() -> None:
    """The seeds of `test_random_programs_agree` together draw every dtype, offset dtype, middle
    count, scalar and rank-2 entries (and an empty one), L_new = 0 and B = 0, both policies, fixed
    and growable batch and last indices, and a fixed last index that L_new never fits; dense and
    paged tables, every page size (a fixed last index in whole pages, in a part of its last page,
    shorter than a page), a pool of 1 page to start with, paged tables of every middle count and
    of an empty entry."""
    specs = [s for seed in range(12) for s in draw_specs(seed)]
    assert {s.dtype for s in specs} == set(DTYPES)
    assert {s.odtype for s in specs} == set(OFFSET_DTYPES)
    assert {len(s.extents) - 2 for s in specs} == {0, 1, 2}
    assert {len(s.entry) for s in specs} == {0, 1, 2} and any(0 in s.entry for s in specs)
    assert any(s.extents[-1] == 0 for s in specs) and any(s.extents[0] == 0 for s in specs)
    assert {s.skip for s in specs} == {False, True}
    for index in (0, -1):
        assert {s.fixed[index] is None for s in specs} == {False, True}
    assert any(s.fixed[-1] is not None and s.fixed[-1] < s.extents[-1] for s in specs)  # never fits
    paged = [s for s in specs if s.page]
    assert 0.35 < len(paged) / len(specs) < 0.65
    assert {s.page for s in paged} == {1, 2, 3, 4, 16} and 1 in {s.pages for s in paged}
    assert {len(s.extents) - 2 for s in paged} == {0, 1, 2} and any(0 in s.entry for s in paged)
    assert any(s.fixed[-1] is None for s in paged)
    assert any(s.fixed[-1] is not None and s.page > 1 and s.fixed[-1] % s.page == 0 for s in paged)
    assert any(s.fixed[-1] is not None and s.fixed[-1] % s.page and s.page < s.fixed[-1] for s in paged)
    assert any(s.fixed[-1] is not None and s.page > s.fixed[-1] for s in paged)


# --- baracuda's scenarios: K and V tables appended in one step -----------------------------------

D_K, D_V, L_MAX = 8, 6, 16

KV = f"""
dynamic {{ k: f32[B, L, {D_K}]; v: f32[B, L, {D_V}]; off: i64[B]; }}
persistent {{
    K(b, l): f32[{D_K}] @table @fixed(l = {L_MAX});
    V(b, l): f32[{D_V}] @table @fixed(l = {L_MAX});
}}
block entry {{
    cache.append k >> K[off]POLICY;
    cache.append v >> V[off]POLICY;
}}
"""


def kv_src(skip: bool) -> str:
    return KV.replace("POLICY", " @on_out_of_range(skip)" if skip else "")


def kv_inputs(rng: np.random.Generator, offsets, new: int) -> dict:
    b = len(offsets)
    return {"k": rng.standard_normal((b, new, D_K)).astype(np.float32),
            "v": rng.standard_normal((b, new, D_V)).astype(np.float32), "off": np.array(offsets, np.int64)}  # fmt: skip


@pytest.mark.parametrize("skip", [False, True], ids=["error", "skip"])
@pytest.mark.parametrize("scenario", ["zeros", "uniform7", "ragged"])
def test_baracuda_scenarios(scenario: str, skip: bool) -> None:
    """Offsets all 0, uniform 7, ragged [1, 9, 12] (12 + 5 > 16: the error policy fails the step
    before writing anything, skip drops the cell at 16), L_new = 5, B = 3, L_max = 16."""
    offsets = {"zeros": [0, 0, 0], "uniform7": [7, 7, 7], "ragged": [1, 9, 12]}[scenario]
    values = kv_inputs(np.random.default_rng(7), offsets, 5)
    K, V = NumpyTable("K", np.float32, (D_K,), [None, L_MAX]), NumpyTable("V", np.float32, (D_V,), [None, L_MAX])
    expected = None
    try:
        K.append(values["k"], values["off"], skip=skip)
        V.append(values["v"], values["off"], skip=skip)
    except ModelError as e:
        expected = str(e)
        K, V = NumpyTable("K", np.float32, (D_K,), [None, L_MAX]), NumpyTable("V", np.float32, (D_V,), [None, L_MAX])
    errors, final = run_both(kv_src(skip), {"B": 3, "L": 5}, [values])
    assert messages(errors) == [expected]
    if scenario == "ragged" and not skip:
        assert expected == "cache.append K sample 2 at offset 12 with 5 new entries exceeds fixed size 16 of index 1"
        assert str(errors[0].loc) == f"{FILE}:8:5" and errors[0].node == "block entry node cache.append k >> K[off]"
    for model in (K, V):
        assert final[model.name][1] == model.sizes
        assert_bits(final[model.name][0], model.dense(), model.name)
    if scenario == "ragged" and skip:  # rows 12..15 of sample 2 are written, row 16 is dropped
        np.testing.assert_array_equal(final["K"][0][2, 12:16], values["k"][2, :4])
        np.testing.assert_array_equal(final["V"][0][1, 9:14], values["v"][1])


DECODE = f"""
dynamic {{ k: f32[B, L, {D_K}]; v: f32[B, L, {D_V}]; adv: i64[B]; }}
volatile {{ p: i64[B]; }}
persistent {{
    pos: i64[B] @init(0);
    K(b, l): f32[{D_K}] @table @fixed(l = {L_MAX});
    V(b, l): f32[{D_V}] @table @fixed(l = {L_MAX});
}}
block entry {{
    cache.append k >> K[pos]POLICY;
    cache.append v >> V[pos]POLICY;
    cache.read pos >> p;
    op add(p, adv) >> p;
    cache.write p >> pos;
}}
"""


@pytest.mark.parametrize("skip", [False, True], ids=["error", "skip"])
def test_steps_in_a_row_with_offsets_the_graph_advances(skip: bool) -> None:
    """A persistent offsets vector appended at, then advanced by `op add` (ragged advances), step
    after step until a sample reaches L_max: with the error policy that step fails and changes
    nothing (pos included); with skip the cells past 16 are dropped and the steps go on."""
    src = DECODE.replace("POLICY", " @on_out_of_range(skip)" if skip else "")
    rng = np.random.default_rng(3)
    K, V = NumpyTable("K", np.float32, (D_K,), [None, L_MAX]), NumpyTable("V", np.float32, (D_V,), [None, L_MAX])
    pos = np.zeros(3, np.int64)
    steps, expected = [], []
    for n in range(9):
        values = kv_inputs(rng, pos, 2)
        values.pop("off")
        values["adv"] = np.array([1, 2, 3], np.int64)
        steps.append(values)
        saved = K.copy(), V.copy()
        try:
            K.append(values["k"], pos, skip=skip)
            V.append(values["v"], pos, skip=skip)
            pos = pos + values["adv"]
            expected.append(None)
        except ModelError as e:
            K, V = saved
            expected.append(str(e))
    errors, final = run_both(src, {"B": 3, "L": 2}, steps)
    assert messages(errors) == expected
    assert expected.count(None) == (9 if skip else 5)
    assert_bits(final["pos"][0], pos)
    for model in (K, V):
        assert final[model.name][1] == model.sizes
        assert_bits(final[model.name][0], model.dense(), model.name)


@on_both
def test_steps_in_a_row_with_offsets_fed_each_step(device: str) -> None:
    """Offsets fed each step (u32), growable sequence index past the first capacity (16), a
    @fixed batch index; each device against the model after every step."""
    src = """
    dynamic { x: bf16[B, H, L, 2, 3]; off: u32[B]; }
    persistent { K(b, h, l): bf16[2, 3] @init(-2.5) @table @fixed(b = 3); }
    block entry { cache.append x >> K[off]; }
    """
    exe = make(src, {"B": 2, "H": 2, "L": 3}, device)
    model = NumpyTable("K", ml_dtypes.bfloat16, (2, 3), [3, None, None], init=-2.5)
    rng = np.random.default_rng(11)
    for offsets in ([0, 0], [3, 1], [6, 30], [2, 2], [31, 0]):
        x = random_values(rng, ml_dtypes.bfloat16, (2, 2, 3, 2, 3))
        off = np.array(offsets, np.uint32)
        model.append(x, off, skip=False)
        assert step(exe, {"x": x, "off": off}) is None
        assert exe.table_sizes("K") == model.sizes
        assert_bits(exe.state("K"), model.dense())
    assert exe.table_sizes("K") == [3, 2, 34]


# --- errors: the same CacheError on both devices, the state as it was ---------------------------


def ones(*shape, value=1.0, dtype=np.float32) -> np.ndarray:
    return np.full(shape, value, dtype)


ERROR_CASES = {
    "negative_offset": (
        """
        dynamic { x: f32[B, L, 2]; off: i32[B]; }
        persistent { K(b, l): f32[2] @table; }
        block entry { cache.append x >> K[off]; }
        """,
        {"B": 2, "L": 2},
        [({"x": ones(2, 2, 2), "off": np.array([0, 1], np.int32)}, None),
         ({"x": ones(2, 2, 2, value=2), "off": np.array([4, -1], np.int32)},
          "cache.append K offset -1 of sample 1 is negative"),
         ({"x": ones(2, 2, 2, value=3), "off": np.array([-7, -1], np.int32)},
          "cache.append K offset -7 of sample 0 is negative")],
    ),
    "u64_offset_wraps_negative": (
        """
        dynamic { x: f32[B, L, 2]; off: u64[B]; }
        persistent { K(b, l): f32[2] @table @fixed(l = 4); }
        block entry { cache.append x >> K[off] @on_out_of_range(skip); }
        """,
        {"B": 2, "L": 2},
        [({"x": ones(2, 2, 2), "off": np.array([0, 3], np.uint64)}, None),
         ({"x": ones(2, 2, 2, value=2), "off": np.array([1, 2**63], np.uint64)},
          "cache.append K offset -9223372036854775808 of sample 1 is negative"),
         ({"x": ones(2, 2, 2, value=2), "off": np.array([2**64 - 1, 0], np.uint64)},
          "cache.append K offset -1 of sample 0 is negative")],
    ),
    "extreme_offsets": (  # a u32 past i32's range, i32's minimum: no wrapping but u64's
        """
        dynamic { x: f32[B, L, 2]; off: u32[B]; o: i32[B]; }
        persistent { K(b, l): f32[2] @table @fixed(l = 4); }
        block entry { cache.append x >> K[off]; cache.append x >> K[o] @on_out_of_range(skip); }
        """,
        {"B": 1, "L": 2},
        [({"x": ones(1, 2, 2), "off": np.array([2], np.uint32), "o": np.array([2**31 - 1], np.int32)}, None),
         ({"x": ones(1, 2, 2, value=2), "off": np.array([2**32 - 1], np.uint32), "o": np.array([0], np.int32)},
          "cache.append K sample 0 at offset 4294967295 with 2 new entries exceeds fixed size 4 of index 1"),
         ({"x": ones(1, 2, 2, value=2), "off": np.array([0], np.uint32), "o": np.array([-2**31], np.int32)},
          "cache.append K offset -2147483648 of sample 0 is negative")],
    ),
    "out_of_range": (
        """
        dynamic { x: f32[B, H, L, 2]; off: i64[B]; }
        persistent { K(b, h, l): f32[2] @table @fixed(l = 6); }
        block entry { cache.append x >> K[off]; }
        """,
        {"B": 3, "H": 2, "L": 2},
        [({"x": ones(3, 2, 2, 2), "off": np.array([0, 4, 2])}, None),
         ({"x": ones(3, 2, 2, 2, value=2), "off": np.array([1, 2, 5])},
          "cache.append K sample 2 at offset 5 with 2 new entries exceeds fixed size 6 of index 2"),
         ({"x": ones(3, 2, 2, 2, value=3), "off": np.array([4, 4, 4])}, None)],
    ),
    "new_entries_past_the_fixed_size": (
        """
        dynamic { x: f32[B, L, 2]; off: i64[B]; }
        persistent { K(b, l): f32[2] @table @fixed(l = 2); }
        block entry { cache.append x >> K[off]; }
        """,
        {"B": 1, "L": 3},
        [({"x": ones(1, 3, 2), "off": np.array([0])},
          "cache.append K sample 0 at offset 0 with 3 new entries exceeds fixed size 2 of index 1")],
    ),
    "batch_overflow": (
        """
        dynamic { x: f32[B, L, 2]; y: f32[C, L, 2]; off: i64[B]; o: i64[C]; n: i32; }
        persistent { K(b, l): f32[2] @table @fixed(b = 2); }
        block entry {
            cache.append x >> K[off];
            loop more (i in 0..n) { cache.append y >> K[o]; }
        }
        """,
        {"B": 2, "C": 3, "L": 2},
        [({"x": ones(2, 2, 2), "off": np.array([0, 1]), "y": ones(3, 2, 2), "o": np.array([0, 0, 0]), "n": 0},
          None),
         ({"x": ones(2, 2, 2, value=2), "off": np.array([2, 2]), "y": ones(3, 2, 2, value=3),
           "o": np.array([5, 6, 7]), "n": 1}, "cache table K index 0 exceeds fixed size 2 (index value 2)")],
    ),
    "middle_overflow": (
        """
        dynamic { x: i32[B, H, L, 1]; off: i64[B]; }
        persistent { K(b, h, l): i32[1] @table @fixed(h = 1); }
        block entry { cache.append x >> K[off]; }
        """,
        {"B": 1, "H": 2, "L": 2},
        [({"x": np.arange(4, dtype=np.int32).reshape(1, 2, 2, 1), "off": np.array([3])},
          "cache table K index 1 exceeds fixed size 1 (index value 1)")],
    ),
    "source_shape": (  # the source is a read destination: its shape is known at run time only
        """
        dynamic { x: f32[B, L, 2]; off: i64[B]; n: i64; w: i64; }
        volatile { xs: f32[B, L, 2]; }
        persistent { t: i64 @init(0); S(i, j, k): f32 @table @init(1.5); K(b, l): f32[2] @table; }
        block entry {
            cache.append x >> K[off];
            cache.write w >> t;
            loop again (i in 0..n) { cache.read S[0..2, 0..L, 0..t] >> xs; cache.append xs >> K[off]; }
        }
        """,
        {"B": 2, "L": 2},
        [({"x": ones(2, 2, 2), "off": np.array([0, 1]), "n": 0, "w": 2}, None),
         ({"x": ones(2, 2, 2, value=2), "off": np.array([2, 2]), "n": 1, "w": 3},
          "cache.append K expects a source of rank 3 ending in [2], got [2, 2, 3]"),
         ({"x": ones(2, 2, 2, value=2), "off": np.array([2, 2]), "n": 1, "w": 0},
          "cache.append K expects a source of rank 3 ending in [2], got [2, 2, 0]")],
    ),
    "offsets_count": (  # the offsets are a read destination, of run-time length
        """
        dynamic { x: f32[B, L, 2]; n: i64; }
        volatile { off: i64[B]; }
        persistent { s: i64 @init(0); O(i): i64 @table @init(1); K(b, l): f32[2] @table; }
        block entry {
            cache.write n >> s;
            cache.read O[0..s] >> off;
            cache.append x >> K[off];
        }
        """,
        {"B": 2, "L": 2},
        [({"x": ones(2, 2, 2), "n": 2}, None),
         ({"x": ones(2, 2, 2, value=2), "n": 3}, "cache.append K expects 2 offsets (one per sample), got [3]"),
         ({"x": ones(2, 2, 2, value=2), "n": 0}, "cache.append K expects 2 offsets (one per sample), got [0]"),
         ({"x": ones(2, 2, 2, value=3), "n": 2}, None)],
    ),
    "a_later_statement_fails": (  # the append wrote (and grew K past capacity 16), then F overflows
        """
        dynamic { x: f16[B, L, 2]; off: i64[B]; k: i32; y: f16[2]; }
        persistent { s: i32 @init(0); K(b, l): f16[2] @table; F(a): f16[2] @table @fixed(a = 1); }
        block entry {
            cache.append x >> K[off];
            cache.write k >> s;
            cache.write y >> F[s];
        }
        """,
        {"B": 2, "L": 3},
        [({"x": ones(2, 3, 2, dtype=np.float16), "off": np.array([0, 1]), "k": 0, "y": ones(2, dtype=np.float16)},
          None),
         ({"x": ones(2, 3, 2, value=2, dtype=np.float16), "off": np.array([1, 30]), "k": 1,
           "y": ones(2, dtype=np.float16)}, "cache table F index 0 exceeds fixed size 1 (index value 1)"),
         ({"x": ones(2, 3, 2, value=3, dtype=np.float16), "off": np.array([3, 3]), "k": 0,
           "y": ones(2, dtype=np.float16)}, None)],
    ),
}  # fmt: skip


@pytest.mark.parametrize("case", list(ERROR_CASES))
def test_errors_match_and_change_nothing(case: str) -> None:
    src, sizevars, steps = ERROR_CASES[case]
    errors, _ = run_both(src, sizevars, [values for values, _ in steps])
    assert messages(errors) == [message for _, message in steps]
    for e in errors:
        assert e is None or (isinstance(e, oi.CacheError) and e.loc is not None and str(e.loc).startswith(FILE))


def test_error_location_and_node_name_the_append() -> None:
    src = """
    dynamic { x: f32[B, L, 2]; off: i64[B]; }
    persistent { K(b, l): f32[2] @table @fixed(l = 3); }
    block entry {
        cache.append x >> K[off] @on_out_of_range(skip);
        cache.append x >> K[off];
    }
    """
    errors, _ = run_both(src, {"B": 1, "L": 2}, [{"x": ones(1, 2, 2), "off": np.array([2])}])
    assert str(errors[0].loc) == f"{FILE}:6:5"
    assert errors[0].node == "block entry node cache.append x >> K[off]"


# --- reads of the appended table in the same step ------------------------------------------------


def test_a_source_read_from_the_table_it_is_appended_to() -> None:
    """`cache.read K[..] >> r; cache.append r >> K[o2]`: the source (a read of K, a view on cpu
    where that is safe) overlaps the cells the append writes; it is the value read, as the
    reference's copy is, and a read before the append keeps what it read after it."""
    src = """
    dynamic { x: f32[B, L, 2]; off: i64[B]; o2: i64[B]; }
    volatile { r: f32[B, L, 2]; q: f32[B, L, 2]; }
    persistent { K(b, l): f32[2] @init(7.0) @table; }
    block entry {
        cache.append x >> K[off];
        cache.read K[0..2, 0..3] >> r;
        cache.append r >> K[o2];
        op add(r, r) >> q;
    }
    """
    x = np.arange(12, dtype=np.float32).reshape(2, 3, 2)
    steps = [{"x": x, "off": np.array([0, 0]), "o2": np.array([1, 2])},
             {"x": x + 100, "off": np.array([3, 0]), "o2": np.array([0, 19])}]  # fmt: skip
    errors, final = run_both(src, {"B": 2, "L": 3}, steps)
    assert messages(errors) == [None, None]
    model = NumpyTable("K", np.float32, (2,), [None, None], init=7.0)
    for values in steps:
        model.append(values["x"], values["off"], skip=False)
        read = model.dense()[0:2, 0:3].copy()
        model.append(read, values["o2"], skip=False)
    assert final["K"][1] == model.sizes == [2, 22]
    assert_bits(final["K"][0], model.dense())


# --- traces, loops, checkpoints ------------------------------------------------------------------


def test_trace_events() -> None:
    src = """
    dynamic { x: f32[B, L, 2]; off: i64[B]; }
    persistent { K(b, l): f32[2] @table @fixed(l = 4); }
    block entry {
        cache.append x >> K[off];
        cache.append x >> K[off] @on_out_of_range(skip);
        barrier;
    }
    """
    exe = make(src, {"B": 1, "L": 2}, trace=True)
    exe.insert(x=ones(1, 2, 2), off=np.array([1]))
    exe.step()
    events = exe.trace()
    assert [(e["kind"], e["node_index"], e["node_desc"], e["op_name"]) for e in events] == [
        ("CacheAppend", 0, "cache.append x >> K[off]", ""),
        ("CacheAppend", 1, "cache.append x >> K[off] @on_out_of_range(skip)", ""),
        ("Barrier", 2, "barrier", ""),
    ]
    assert events[0]["block_name"] == "entry" and events[0]["params"] == [] and events[0]["output"] == []
    exe.insert(off=np.array([3]))  # the first append fails: no event for it, none after it
    with pytest.raises(oi.CacheError):
        exe.step()
    assert len(exe.trace()) == 3


LOOP = """
dynamic { start: i64[B]; adv: i64[B]; n: i64; y: f32[2]; }
volatile { off: i64[B]; xs: f32[B, L, 2]; }
constant { X(layer): f32[B, L, 2] @pattern("x.{layer}"); }
persistent {
    S(layer, b, l): f32[2] @table @init(0.25);
    K(b, l): f32[2] @table;
    KS(b, l): f32[2] @table @fixed(l = 8);
}
block entry {
    op add(start, start) >> off;
    loop layers (i in 0..n) {
        cache.append X[i] >> K[off];
        cache.write y >> S[i, 0, 1];
        op add(y, y) >> y;
        cache.read S[i, 0..B, 0..L] >> xs;
        cache.append xs >> KS[off] @on_out_of_range(skip);
        op add(off, adv) >> off;
    }
}
"""


def test_append_in_a_loop_over_layers() -> None:
    """A loop over layers: each iteration appends the layer's entry of a constant prefix table
    (`X[i]`, model tensors `x.{i}`) into K, and the read of its per-layer staging table `S[i]`
    (where it wrote y, doubled each layer) into KS, at offsets the loop advances; KS's @fixed
    last index drops what passes 8."""
    rng = np.random.default_rng(5)
    layers = 3
    tensors = {f"x.{i}": rng.standard_normal((2, 2, 2)).astype(np.float32) for i in range(layers)}
    steps = [{"start": np.array([1, 1]), "adv": np.array([3, 1]), "n": layers, "y": np.array([1, -2], np.float32)},
             {"start": np.array([2, 0]), "adv": np.array([1, 3]), "n": 2, "y": np.array([0.5, 3], np.float32)}]  # fmt: skip
    errors, final = run_both(LOOP, {"B": 2, "L": 2}, steps, tensors=tensors)
    assert messages(errors) == [None, None]
    K = NumpyTable("K", np.float32, (2,), [None, None])
    KS = NumpyTable("KS", np.float32, (2,), [None, 8])
    for values in steps:
        off, y = 2 * values["start"], values["y"]
        for i in range(values["n"]):
            K.append(tensors[f"x.{i}"], off, skip=False)
            xs = np.full((2, 2, 2), 0.25, np.float32)
            xs[0, 1] = y
            y = y + y
            KS.append(xs, off, skip=True)
            off = off + values["adv"]
    for model in (K, KS):
        assert final[model.name][1] == model.sizes
        assert_bits(final[model.name][0], model.dense(), model.name)
    assert final["KS"][1] == [2, 8] and final["K"][1] == [2, 10]  # KS dropped sample 0's cells at 8 and 9


@pytest.mark.parametrize("first", DEVICES)
@pytest.mark.parametrize("paged", ["", " @paged(page = 3)", " @paged(pages = 1, page = 16)"],
                         ids=["dense", "pages_of_3", "pages_of_16"])  # fmt: skip
def test_checkpoints_after_appends_continue_on_the_other_device(first: str, paged: str, tmp_path) -> None:
    """Two appends, a checkpoint, two more on a new executor of the other device; dense and paged
    (a checkpoint holds entries, never pages: the pages are laid out anew when cpu loads it)."""
    src = f"""
    dynamic {{ x: f64[B, H, L, 3]; off: i32[B]; }}
    persistent {{ K(b, h, l): f64[3] @init(0.5) @table @fixed(h = 2){paged}; V(b, l): i32 @table; }}
    block entry {{ cache.append x >> K[off] @on_out_of_range(skip); }}
    """
    sizevars = {"B": 2, "H": 2, "L": 2}
    rng = np.random.default_rng(9)
    inputs = [{"x": random_values(rng, np.float64, (2, 2, 2, 3)), "off": np.array(o, np.int32)}
              for o in ([0, 3], [20, 1], [2, 2], [40, 0])]  # fmt: skip
    model = NumpyTable("K", np.float64, (3,), [None, 2, None], init=0.5)
    for values in inputs:
        model.append(values["x"], values["off"], skip=True)
    second = "cpu" if first == "reference" else "reference"
    one = make(src, sizevars, first)
    for values in inputs[:2]:
        assert step(one, values) is None
    path = tmp_path / "k.oistate"
    one.save_state(path)
    two = make(src, sizevars, second)
    two.load_state(path)
    assert_same_snapshot(snapshot(two), snapshot(one), "after load_state")
    assert two.steps == 2
    for values in inputs[2:]:
        assert step(two, values) is None
    assert two.table_sizes("K") == model.sizes == [2, 2, 42]
    assert_bits(two.state("K"), model.dense())


# --- the verifier --------------------------------------------------------------------------------


VERIFY_CASES = {
    "plain_persistent": ("persistent { P: f32[2]; }", "cache.append x >> P[off];",
                         "cache.append expects a @table variable, got P"),
    "volatile_target": ("volatile { V: f32[2]; }", "cache.append x >> V[off];",
                        "cache.append expects persistent variable, got Volatile V"),
    "unknown_target": ("", "cache.append x >> Z[off];", "unknown cache variable Z"),
    "auto_dim": ("persistent { A(b, l): f32[2] @table @auto_dim(l); }", "cache.append x >> A[off];",
                 "cache.append expects a @table variable, got A"),
    "one_index": ("persistent { K1(l): f32[2] @table; }", "cache.append x >> K1[off];",
                  "cache.append K1 needs a batch index and a sequence index, the table has 1 index"),
    "dtype": ("dynamic { h: f16[B, L, 2]; }", "cache.append h >> K[off];",
              "cache.append h -> K dtype mismatch F16 vs F32"),
    "source_rank": ("dynamic { r: f32[B, 2]; }", "cache.append r >> K[off];",
                    "cache.append K expects a source of shape [b, l, 2], got [B, 2]"),
    "source_entry": ("dynamic { e: f32[B, L, 3]; }", "cache.append e >> K[off];",
                     "cache.append K expects a source of shape [b, l, 2], got [B, L, 3]"),
    "source_entry_rank2": ("dynamic { e2: f32[B, L, 2, 1]; }", "cache.append e2 >> K[off];",
                           "cache.append K expects a source of shape [b, l, 2], got [B, L, 2, 1]"),
    "persistent_source": ("persistent { P: f32[B, L, 2]; }", "cache.append P >> K[off];",
                          "persistent cache P must be read via cache.read"),
    "unknown_source": ("", "cache.append y >> K[off];", "unknown variable: y"),
    "unknown_offsets": ("", "cache.append x >> K[o];", "unknown variable: o"),
    "float_offsets": ("dynamic { fo: f32[B]; }", "cache.append x >> K[fo];",
                      "cache.append offsets fo must be integer, got F32"),
    "bf16_offsets": ("dynamic { fo: bf16[B]; }", "cache.append x >> K[fo];",
                     "cache.append offsets fo must be integer, got BF16"),
    "bool_offsets": ("dynamic { bo: bool[B]; }", "cache.append x >> K[bo];",
                     "cache.append offsets bo must be integer, got Bool"),
    "rank2_offsets": ("dynamic { o2: i64[B, 2]; }", "cache.append x >> K[o2];",
                      "cache.append offsets o2 must have shape [B], got [B, 2]"),
    "rank0_offsets": ("dynamic { o0: i64; }", "cache.append x >> K[o0];",
                      "cache.append offsets o0 must have shape [B], got []"),
    "table_offsets": ("persistent { O(i): i64 @table; }", "cache.append x >> K[O];",
                      "cache.append offsets O must be a plain vector, not a table"),
    "own_table_offsets": ("dynamic { ix: i64[B, L]; } persistent { KI(b, l): i64 @table; }",
                          "cache.append ix >> KI[KI];", "cache.append KI cannot take its own table as offsets"),
}  # fmt: skip


def verify_src(decls: str, statement: str) -> str:
    return (f"dynamic {{ x: f32[B, L, 2]; off: i64[B]; }}\n{decls}\npersistent {{ K(b, l): f32[2] @table; }}\n"
            f"block entry {{\n    op relu(x) >> x;\n    {statement}\n}}\n")  # fmt: skip


#: the messages once B = 2 and L = 2 are bound (shapes print with their sizes)
BOUND = {"source_rank": "cache.append K expects a source of shape [b, l, 2], got [2, 2]",
         "source_entry": "cache.append K expects a source of shape [b, l, 2], got [2, 2, 3]",
         "source_entry_rank2": "cache.append K expects a source of shape [b, l, 2], got [2, 2, 2, 1]",
         "rank2_offsets": "cache.append offsets o2 must have shape [B], got [2, 2]"}  # fmt: skip


@pytest.mark.parametrize("case", list(VERIFY_CASES))
def test_verifier_refuses(case: str) -> None:
    decls, statement, message = VERIFY_CASES[case]
    src = verify_src(decls, statement)
    with pytest.raises(oi.VerifyError) as info:
        oi.parse_graph(src, FILE)
    assert info.value.message == message
    assert str(info.value.loc) == f"{FILE}:6:5"
    for device in DEVICES:  # binding sizes verifies again: the same error, before anything device-specific
        with pytest.raises(oi.VerifyError) as again:
            graph = oi.parse_graph(src, FILE, verify=False)
            oi.Simulator(oi.Model(sizevars={"B": 2, "L": 2}), graph, device=device)
        assert (again.value.message, str(again.value.loc)) == (BOUND.get(case, message), f"{FILE}:6:5")


@pytest.mark.parametrize(
    ("statement", "message"),
    [("cache.append x >> K[off] @on_out_of_range(maybe);", "on_out_of_range is error or skip, got maybe"),
     ("cache.append x >> K[off] @fixed(skip);", "cache.append takes one attribute: @on_out_of_range(error|skip)"),
     ("cache.append x >> K[0];", "expected offsets variable, found `0`"),
     ("cache.append x >> K;", "expected `[`, found `;`")],
)  # fmt: skip
def test_parse_errors(statement: str, message: str) -> None:
    with pytest.raises(oi.ParseError) as info:
        oi.parse_graph(verify_src("", statement), FILE)
    assert info.value.message == message and str(info.value.loc).startswith(f"{FILE}:6:")


def test_the_default_policy_is_error_and_the_ir_round_trips() -> None:
    both = "cache.append x >> K[off] @on_out_of_range(error);\n    cache.append x >> K[off] @on_out_of_range(skip);"
    src = verify_src("", both)
    graph = oi.parse_graph(src, FILE)
    text = str(graph)
    assert "oi.cache.append @x -> @K[@off]\n" in text and "oi.cache.append skip @x -> @K[@off]\n" in text
    assert str(oi.parse_mlir(text)) == text


@on_both
def test_rank0_entries(device: str) -> None:
    """`K(b, l): i32 @table` (scalar entries, x of shape [B, L_new]). Found while writing this file:
    the reference failed every such append with `InternalError: step: ValueError: Cannot set flags
    on array scalars` (`TableStorage.append` passed `value[cell]`, a numpy scalar, to `write`);
    fixed since (889f47a)."""
    src = """
    dynamic { x: i32[B, L]; off: i64[B]; }
    persistent { K(b, l): i32 @table @fixed(l = 4); }
    block entry { cache.append x >> K[off] @on_out_of_range(skip); }
    """
    exe = make(src, {"B": 2, "L": 3}, device)
    x, off = np.arange(6, dtype=np.int32).reshape(2, 3), np.array([0, 2])
    assert error_text(step(exe, {"x": x, "off": off})) is None
    model = NumpyTable("K", np.int32, (), [None, 4])
    model.append(x, off, skip=True)
    assert exe.table_sizes("K") == model.sizes == [2, 4]
    assert_bits(exe.state("K"), model.dense())  # [[0, 1, 2, 0], [0, 0, 3, 4]]


# --- bugs this file found (cpu and reference as of 74fff50; fixed in 0419f3f) ---------------------


def _subprocess_append(device: str, offset: int) -> subprocess.CompletedProcess:
    code = textwrap.dedent(f"""
        import numpy as np, oi_compiler as oi
        src = '''
        dynamic {{ x: f32[B, L, 1]; off: i64[B]; }}
        persistent {{ K(b, l): f32[1] @table @fixed(l = 4); }}
        block entry {{ cache.append x >> K[off] @on_out_of_range(skip); }}
        '''
        g = oi.parse_graph(src, "a.oi")
        exe = oi.Simulator(oi.Model(sizevars={{"B": 1, "L": 2}}), g, device={device!r}).make_executor()
        exe.insert(x=np.ones((1, 2, 1), np.float32), off=np.array([{offset}]))
        try:
            exe.step()
            print("ok", exe.table_sizes("K"), exe.state("K").shape)
        except oi.OiError as e:
            print(type(e).__name__, e.message)
    """)
    return subprocess.run([sys.executable, "-c", code], check=False, capture_output=True, text=True, timeout=120)


@on_both
def test_skip_with_an_offset_whose_cells_overflow_i64(device: str) -> None:
    """With skip and a @fixed last index (4), offset 2**63 - 1 and L_new = 2: both cells are past
    the fixed size (off + l >= 4), so both are dropped and the step succeeds, writing nothing.
    Was: off + 1 wrapped to -2**63 (a negative position that the check `position < 4` let through):
    cpu wrote out of bounds (the process died with SIGSEGV, hence the subprocess); the reference
    stored an entry at key (0, -2**63) and its next `exe.state("K")` raised InternalError
    (`IndexError: index -9223372036854775808 is out of bounds`)."""
    done = _subprocess_append(device, 2**63 - 1)
    assert done.returncode == 0, f"exit status {done.returncode}: {done.stderr[-2000:]}"
    assert done.stdout.strip() == "ok [0, 4] (0, 4, 1)"


def test_source_read_with_a_run_time_sized_entry() -> None:
    """A source that is a `cache.read` destination whose entry dims are sized at run time (a read of
    a table with scalar entries: S[0..2, 0..3, 0..t] is [2, 3, t]), with t = 2 so it fits K(b, l):
    f32[2]. Was (cpu only): the step failed with `cache.append K expects -1 offsets (one per sample),
    got [2]` where the reference appends: ragged_append.py `_checked_source` cast the source to a
    memref type built with -1 for its dynamic dims (xdsl's dynamic marker is DYNAMIC_INDEX)."""
    src = """
    dynamic { off: i64[B]; n: i64; }
    volatile { xs: f32[B, L, 2]; }
    persistent { t: i64 @init(0); S(i, j, k): f32 @table @init(1.5); K(b, l): f32[2] @table; }
    block entry {
        cache.write n >> t;
        cache.read S[0..2, 0..3, 0..t] >> xs;
        cache.append xs >> K[off];
    }
    """
    errors, final = run_both(src, {"B": 2, "L": 3}, [{"off": np.array([0, 1]), "n": 2}])
    assert messages(errors) == [None]
    model = NumpyTable("K", np.float32, (2,), [None, None])
    model.append(np.full((2, 3, 2), 1.5, np.float32), np.array([0, 1]), skip=False)
    assert_bits(final["K"][0], model.dense())


@pytest.mark.parametrize(
    ("read", "count"),
    [("O[0..s, 0..2]", "[2, 2]"), ("O[0, 0]", "[]")],
    ids=["rank2", "rank0"],
)
def test_offsets_read_with_a_run_time_rank(read: str, count: str) -> None:
    """Offsets that are a read destination declared `i64[B]` but read with another rank (the
    verifier checks the declaration only). The reference says `cache.append K expects 2 offsets
    (one per sample), got [2, 2]` (or `got []`). Was (cpu only): `cache.append K expects offsets of
    rank 1, got [None, None]` (or `got []`), a static error with Python's None in it."""
    src = f"""
    dynamic {{ x: f32[B, L, 2]; n: i64; }}
    volatile {{ off: i64[B]; }}
    persistent {{ s: i64 @init(0); O(i, j): i64 @table @init(1); K(b, l): f32[2] @table; }}
    block entry {{
        cache.write n >> s;
        cache.read {read} >> off;
        cache.append x >> K[off];
    }}
    """
    errors, _ = run_both(src, {"B": 2, "L": 2}, [{"x": ones(2, 2, 2), "n": 2}])
    assert messages(errors) == [f"cache.append K expects 2 offsets (one per sample), got {count}"]


def test_source_read_with_a_run_time_rank() -> None:
    """A source that is a read destination declared `f32[B, L, 1]` but read with rank 2 (S[1] of
    S(i, j): f32[1] is [size_j, 1] = [0, 1]). The reference says `cache.append K expects a source of
    rank 3 ending in [1], got [0, 1]`. Was (cpu only): `... got [?, 1]` (a static error printing a
    run-time dim as `?`)."""
    src = """
    dynamic { off: i64[B]; }
    volatile { xs: f32[B, L, 1]; }
    persistent { S(i, j): f32[1] @table; K(b, l): f32[1] @table; }
    block entry {
        cache.read S[1] >> xs;
        cache.append xs >> K[off];
    }
    """
    errors, _ = run_both(src, {"B": 2, "L": 2}, [{"off": np.array([0, 1])}])
    assert messages(errors) == ["cache.append K expects a source of rank 3 ending in [1], got [0, 1]"]
