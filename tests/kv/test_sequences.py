"""The sequence statements over a group of tables and their lengths: `cache.fork`, `cache.pop`,
`cache.reset ... where` (TVM's ForkSequence and PopN, moshi's masked reset).

Tables `K(b, ..., t)` (a sequence per first index, a position per last) share a persistent
integer vector `lens[B]`. The reference (`runtime/sequences.py`) and `device="cpu"`
(`lowering/sequences.py`) run them; every test here compares both with each other and, where
values are written, with `SeqModel` below: an independent numpy model of a batch of sequences
(the present entries of each table as a dict, sizes recomputed from them), written from the
statements' specification, not from the implementation. Tables are compared bit for bit (random
bits: NaN payloads and -0.0 included), errors by class, message, location and node, and a failed
step must leave every persistent variable exactly as it was.

One driving graph (`DRIVER`) holds every statement, each in a block that a dynamic bool branches
to, so random programs are sequences of input dicts over a few compiled graphs: appends
(`cache.append` at `lens`, then `lens += inc`), forks (persistent scalars; a literal source and a
loop index as destination), pops (a scalar count, the default count, a literal count and
sequence), masked resets, and a direct write of `lens` (so lengths and present entries can disagree). Several flags in one
step run their blocks in the entry's order, so a later failure undoes an earlier success.
Half the configs keep K, V or both `@paged(page = P)` (P of 1-4 or 16, a pool of 1 or 2 pages to
start with now and then): the semantics are a dense table's on every device, so the same model
checks them, and on `device="cpu"` each step also checks `exe.page_table` against the model's
present entries (`check_page_table`).

Then the scenarios (speculative decoding, prefix sharing, checkpoints across devices; each on
dense and paged tables, prefix sharing on pages also against dense storage and with its page
tables checked), the error cases, traces, and at the end a test pinning a bug found while writing
this file (size names as index values fail on `device="cpu"`; see its docstring), which is why
DRIVER uses none.
"""

from __future__ import annotations

import itertools
import re
import textwrap
from dataclasses import dataclass, field, replace

import numpy as np
import pytest

import oi_compiler as oi
from tests.step_checks import assert_bits, assert_page_table, assert_same_snapshot, error_text, snapshot, step

FILE = "sequences.oi"
DEVICES = ("reference", "cpu")
on_both = pytest.mark.parametrize("device", DEVICES)

LENS_DTYPES = {"i64": np.int64, "i32": np.int32}
MASK_DTYPES = {"bool": np.bool_, "i32": np.int32, "u8": np.uint8}

DRIVER = """\
graph! {
    dynamic {
        k: f32[B, {mids}1, DK];
        v: f32[B, {mids}1, DV];
        inc: {L}[B];
        lens_in: {L}[B];
        mask: {M}[B];
        do_set: bool; do_append: bool; do_fork: bool; do_pop: bool; do_pop1: bool; do_pop2: bool;
        do_reset: bool; do_share: bool;
        src_in: i64; dst_in: i64; pos_in: i64; n_in: i64; seq_in: i64;
    }
    volatile { cur: {L}[B]; newlens: {L}[B]; }
    persistent {
        K(b, {idx}t): f32[DK] @table{kattrs};
        V(b, {idx}t): f32[DV] @table{vattrs};
        lens: {L}[B];
        src: i64; dst: i64; pos: i64; n: i64; seq: i64;
    }
    block entry {
        cache.write src_in >> src;
        cache.write dst_in >> dst;
        cache.write pos_in >> pos;
        cache.write n_in >> n;
        cache.write seq_in >> seq;
        branch do_set set skip;
        branch do_append app skip;
        branch do_fork frk skip;
        branch do_pop pp skip;
        branch do_pop1 pp1 skip;
        branch do_pop2 pp2 skip;
        branch do_reset rst skip;
        branch do_share share skip;
        return;
    }
    block set {
        cache.write lens_in >> lens;
        return;
    }
    block app {
        cache.append k >> K[lens];
        cache.append v >> V[lens];
        cache.read lens >> cur;
        op add(cur, inc) >> newlens;
        cache.write newlens >> lens;
        return;
    }
    block frk {
        cache.fork K, V [lens] src >> dst at pos;
        return;
    }
    block pp {
        cache.pop n K, V [lens] seq;
        return;
    }
    block pp1 {
        cache.pop V, K [lens] seq;
        return;
    }
    block pp2 {
        cache.pop 2 K, V [lens] 0;
        return;
    }
    block rst {
        cache.reset K, V [lens] where mask;
        return;
    }
    block share {
        loop copies (i in 1..B) {
            cache.fork K, V [lens] 0 >> i at pos;
        }
        return;
    }
    block skip {
        return;
    }
}
"""

#: the flags in the order the entry block branches on them
FLAGS = ("do_set", "do_append", "do_fork", "do_pop", "do_pop1", "do_pop2", "do_reset", "do_share")
SCALARS = ("src", "dst", "pos", "n", "seq")

#: each statement a model error can come from, as it is written in DRIVER (its line gives the location)
STATEMENTS = {
    "append_k": "cache.append k >> K[lens];",
    "append_v": "cache.append v >> V[lens];",
    "fork": "cache.fork K, V [lens] src >> dst at pos;",
    "pop": "cache.pop n K, V [lens] seq;",
    "pop1": "cache.pop V, K [lens] seq;",
    "pop2": "cache.pop 2 K, V [lens] 0;",
    "share": "cache.fork K, V [lens] 0 >> i at pos;",
}
NODES = {
    "append_k": "block app node cache.append k >> K[lens]",
    "append_v": "block app node cache.append v >> V[lens]",
    "fork": "block frk node cache.fork K, V [lens] src >> dst at pos",
    "pop": "block pp node cache.pop n K, V [lens] seq",
    "pop1": "block pp1 node cache.pop 1 V, K [lens] seq",
    "pop2": "block pp2 node cache.pop 2 K, V [lens] 0",
    "share": "block share node cache.fork K, V [lens] 0 >> i at pos",
}


@dataclass(frozen=True)
class Config:
    """One driving graph: its batch, middle indices, entry sizes, dtypes and table attributes."""

    B: int
    heads: tuple[int, ...]  # one extent per middle index (0, 1 or 2 of them)
    DK: int
    DV: int
    lens: str = "i64"
    mask: str = "bool"
    fixed_k: tuple[tuple[int, int], ...] = ()  # (index position, size) pairs of K's @fixed
    fixed_v: tuple[tuple[int, int], ...] = ()
    init_v: float | None = None
    paged_k: int = 0  # K's `@paged(page = P)` (0: dense storage)
    paged_v: int = 0
    pages: int = 0  # the pool's first size (`pages = N`) of each paged table (0: the default)

    @property
    def rank(self) -> int:
        return len(self.heads) + 2

    def names(self) -> list[str]:
        return ["b", *[f"h{m}" for m in range(len(self.heads))], "t"]

    def _attrs(self, fixed, init, page: int) -> str:
        """`@init`, `@fixed` and `@paged` after `@table`: `@paged` first for an odd page size, last
        for an even one, its options in either order (so the parser meets every order)."""
        out = "" if init is None else f" @init({init!r})"
        if fixed:
            out += " @fixed(" + ", ".join(f"{self.names()[d]} = {s}" for d, s in fixed) + ")"
        if page:
            options = [f"page = {page}", *([f"pages = {self.pages}"] if self.pages else [])]
            paged = f" @paged({', '.join(options if page % 4 else options[::-1])})"
            out = paged + out if page % 2 else out + paged
        return out

    @property
    def paged(self) -> bool:
        return bool(self.paged_k or self.paged_v)

    def dense(self) -> Config:
        """The same graph without `@paged`."""
        return replace(self, paged_k=0, paged_v=0, pages=0)

    def source(self) -> str:
        mids = "".join(f"H{m}, " for m in range(len(self.heads)))
        idx = "".join(f"h{m}, " for m in range(len(self.heads)))
        return (DRIVER.replace("{mids}", mids).replace("{idx}", idx).replace("{L}", self.lens)
                .replace("{M}", self.mask).replace("{kattrs}", self._attrs(self.fixed_k, None, self.paged_k))
                .replace("{vattrs}", self._attrs(self.fixed_v, self.init_v, self.paged_v)))  # fmt: skip

    def sizevars(self) -> dict[str, int]:
        return {"B": self.B, "DK": self.DK, "DV": self.DV, **{f"H{m}": h for m, h in enumerate(self.heads)}}

    def fixed_list(self, fixed) -> list[int | None]:
        out: list[int | None] = [None] * self.rank
        for d, s in fixed:
            out[d] = s
        return out

    def model(self) -> SeqModel:
        return SeqModel(
            self.B,
            LENS_DTYPES[self.lens],
            [
                ModelTable("K", (self.DK,), self.fixed_list(self.fixed_k), None),
                ModelTable("V", (self.DV,), self.fixed_list(self.fixed_v), self.init_v),
            ],
        )

    def location(self, statement: str) -> str:
        text = STATEMENTS[statement]
        for n, line in enumerate(self.source().splitlines(), 1):
            if line.strip() == text:
                return f"{FILE}:{n}:{line.index('cache.') + 1}"
        raise AssertionError(statement)


# --- the numpy model -----------------------------------------------------------------------------


class ModelError(Exception):
    def __init__(self, message: str, statement: str):
        super().__init__(message)
        self.message, self.statement = message, statement


@dataclass
class ModelTable:
    """A table as `exe.state` shows it: the present entries; a growable index's size is the
    largest present key + 1 (0 if none), a `@fixed` one's its fixed value; absent entries read as
    `@init` (or zeros)."""

    name: str
    entry: tuple[int, ...]
    fixed: list[int | None]
    init: float | None
    entries: dict[tuple[int, ...], np.ndarray] = field(default_factory=dict)

    def copy(self) -> ModelTable:
        return ModelTable(self.name, self.entry, list(self.fixed), self.init, dict(self.entries))

    def sizes(self) -> list[int]:
        out = [0] * len(self.fixed)
        for key in self.entries:
            out = [max(s, k + 1) for s, k in zip(out, key)]
        return [f if f is not None else s for s, f in zip(out, self.fixed)]

    def init_entry(self) -> np.ndarray:
        return np.full(self.entry, 0.0 if self.init is None else self.init, np.float32)

    def dense(self) -> np.ndarray:
        out = np.empty((*self.sizes(), *self.entry), np.float32)
        out[...] = self.init_entry()
        for key, value in self.entries.items():
            out[key] = value
        return out

    def middles(self) -> list[tuple[int, ...]]:
        return list(itertools.product(*(range(s) for s in self.sizes()[1:-1])))

    def check_fixed(self, key, statement: str) -> None:
        for d, (k, f) in enumerate(zip(key, self.fixed)):
            if f is not None and k >= f:
                raise ModelError(f"cache table {self.name} index {d} exceeds fixed size {f} (index value {k})",
                                 statement)  # fmt: skip

    def read(self, key, statement: str) -> np.ndarray:
        """An entry; an absent one reads as @init and becomes present (OpenInfer's reads create it)."""
        self.check_fixed(key, statement)
        if key not in self.entries:
            self.entries[key] = self.init_entry()
        return self.entries[key]

    def write(self, key, value: np.ndarray, statement: str) -> None:
        self.check_fixed(key, statement)
        self.entries[key] = value.copy()

    def remove(self, prefix: tuple[int, ...]) -> None:
        for key in [k for k in self.entries if k[: len(prefix)] == prefix]:
            del self.entries[key]


@dataclass
class SeqModel:
    """A batch of B sequences: tables K and V and the lengths (a numpy vector of their dtype)."""

    B: int
    lens_dtype: type
    tables: list[ModelTable]
    lens: np.ndarray = None  # type: ignore[assignment]
    scalars: dict[str, int] = field(default_factory=lambda: dict.fromkeys(SCALARS, 0))

    def __post_init__(self) -> None:
        if self.lens is None:
            self.lens = np.zeros(self.B, self.lens_dtype)

    @property
    def K(self) -> ModelTable:
        return self.tables[0]

    @property
    def V(self) -> ModelTable:
        return self.tables[1]

    def copy(self) -> SeqModel:
        return SeqModel(self.B, self.lens_dtype, [t.copy() for t in self.tables], self.lens.copy(), dict(self.scalars))

    def length(self, b: int) -> int:
        return int(self.lens[b])

    def set_length(self, b: int, value: int) -> None:
        self.lens[b] = np.array(value, np.int64).astype(self.lens_dtype)

    # --- the statements, from their specification -------------------------------------------

    def append(self, table: ModelTable, x: np.ndarray, statement: str) -> None:
        """`cache.append x >> T[lens]` with one new position: every offset checked first."""
        last, limit = len(table.fixed) - 1, table.fixed[-1]
        for b in range(self.B):
            off = self.length(b)
            if off < 0:
                raise ModelError(f"cache.append {table.name} offset {off} of sample {b} is negative", statement)
            if limit is not None and off + 1 > limit:
                raise ModelError(f"cache.append {table.name} sample {b} at offset {off} with 1 new entries "
                                 f"exceeds fixed size {limit} of index {last}", statement)  # fmt: skip
        for cell in np.ndindex(*x.shape[: len(table.fixed)]):
            table.write((*cell[:-1], self.length(cell[0]) + cell[-1]), x[cell], statement)

    def check_index(self, *values: int, statement: str) -> None:
        for value in values:
            if value < 0:
                raise ModelError("cache index cannot be negative", statement)

    def check_sequence(self, what: str, b: int, statement: str) -> None:
        if b >= self.B:
            raise ModelError(f"{what} sequence {b} is out of range for {self.B} sequences", statement)

    def fork(self, tables: list[ModelTable], src: int, dst: int, p: int, statement: str) -> None:
        self.check_index(src, dst, p, statement=statement)
        self.check_sequence("cache.fork", src, statement)
        self.check_sequence("cache.fork", dst, statement)
        if src == dst:
            raise ModelError(f"cache.fork source and destination are both sequence {src}", statement)
        if p > self.length(src):
            raise ModelError(f"cache.fork position {p} is past the length {self.length(src)} of sequence {src}",
                             statement)  # fmt: skip
        for table in tables:
            middles = table.middles()  # over the sizes when the statement starts
            table.remove((dst,))
            for middle in middles:
                for t in range(p):
                    table.write((dst, *middle, t), table.read((src, *middle, t), statement), statement)
        self.set_length(dst, p)

    def pop(self, tables: list[ModelTable], count: int, b: int, statement: str) -> None:
        self.check_index(count, b, statement=statement)
        self.check_sequence("cache.pop", b, statement)
        length = self.length(b)
        if count > length:
            raise ModelError(f"cache.pop {count} entries from sequence {b} of length {length}", statement)
        for table in tables:
            for middle in table.middles():
                for t in range(length - count, length):
                    table.remove((b, *middle, t))
        self.set_length(b, length - count)

    def reset_where(self, mask: np.ndarray) -> None:
        for b in range(self.B):
            if mask[b] != 0:
                for table in self.tables:
                    table.remove((b,))
                self.set_length(b, 0)

    # --- one step of DRIVER ------------------------------------------------------------------

    def step(self, values: dict) -> ModelError | None:
        saved = self.copy()
        try:
            self._step(values)
        except ModelError as e:
            self.tables, self.lens, self.scalars = saved.tables, saved.lens, saved.scalars
            return e
        return None

    def _step(self, v: dict) -> None:
        self.scalars = {name: int(v[f"{name}_in"]) for name in SCALARS}
        src, dst, pos, n, seq = (self.scalars[s] for s in SCALARS)
        K, V = self.K, self.V
        if v["do_set"]:
            self.lens = np.array(v["lens_in"], self.lens_dtype)
        if v["do_append"]:
            self.append(K, v["k"], "append_k")
            self.append(V, v["v"], "append_v")
            self.lens = (self.lens + np.asarray(v["inc"], self.lens_dtype)).astype(self.lens_dtype)
        if v["do_fork"]:
            self.fork([K, V], src, dst, pos, "fork")
        if v["do_pop"]:
            self.pop([K, V], n, seq, "pop")
        if v["do_pop1"]:
            self.pop([V, K], 1, seq, "pop1")
        if v["do_pop2"]:
            self.pop([K, V], 2, 0, "pop2")
        if v["do_reset"]:
            self.reset_where(np.asarray(v["mask"]))
        if v["do_share"]:
            for i in range(1, self.B):
                self.fork([K, V], 0, i, pos, "share")

    def state(self) -> dict[str, tuple[np.ndarray, list[int]]]:
        out = {t.name: (t.dense(), t.sizes()) for t in self.tables}
        out["lens"] = (self.lens.copy(), [])
        for name, value in self.scalars.items():
            out[name] = (np.array(value, np.int64), [])
        return out


# --- running graphs ------------------------------------------------------------------------------

_GRAPHS: dict[str, object] = {}


def make(config: Config, device: str, *, trace: bool = False) -> oi.Executor:
    src = config.source()
    if src not in _GRAPHS:
        _GRAPHS[src] = oi.parse_graph(src, FILE)
    sim = oi.Simulator(oi.Model(sizevars=config.sizevars()), _GRAPHS[src], device=device)
    if trace:
        sim.with_trace()
    return sim.make_executor()


def expected_text(config: Config, e: ModelError | None) -> tuple | None:
    return None if e is None else ("CacheError", e.message, config.location(e.statement), NODES[e.statement])


def random_bits(rng: np.random.Generator, shape) -> np.ndarray:
    """f32 values from random bits (NaNs with payloads, infinities, subnormals, -0.0)."""
    return rng.integers(0, 2**32, size=shape, dtype=np.uint64).astype(np.uint32).view(np.float32)


def inputs(config: Config, rng: np.random.Generator | None = None, **values) -> dict:
    """Every dynamic input of DRIVER: no flag set, random k and v, `inc` all ones; then `values`."""
    rng = rng or np.random.default_rng(0)
    B, L = config.B, LENS_DTYPES[config.lens]
    out = {flag: False for flag in FLAGS}
    out.update(k=random_bits(rng, (B, *config.heads, 1, config.DK)),
               v=random_bits(rng, (B, *config.heads, 1, config.DV)),
               inc=np.ones(B, L), lens_in=np.zeros(B, L), mask=np.zeros(B, MASK_DTYPES[config.mask]),
               **{f"{s}_in": 0 for s in SCALARS})  # fmt: skip
    for name, value in values.items():
        out[name] = np.asarray(value, out[name].dtype) if isinstance(out[name], np.ndarray) else value
    return out


class Runner:
    """Both devices and the model through the same steps, compared after each."""

    def __init__(self, config: Config, what: str = "", device: str = "cpu"):
        self.config, self.what = config, what
        self.ref, self.cpu = make(config, "reference"), make(config, device)  # (`cpu`: the compiled one)
        self.model = config.model()
        self.steps = 0

    def step(self, values: dict) -> oi.OiError | None:
        what = f"{self.what} step {self.steps} ({', '.join(f for f in FLAGS if values[f])})"
        expected = self.model.step(values)
        got_ref, got_cpu = step(self.ref, values), step(self.cpu, values)
        assert error_text(got_ref) == expected_text(self.config, expected), what
        assert error_text(got_cpu) == error_text(got_ref), what
        self.check(what)
        self.steps += 1
        return got_ref

    def check(self, what: str = "") -> None:
        expected = self.model.state()
        for exe in (self.ref, self.cpu):
            assert_same_snapshot(snapshot(exe), expected, f"{what} ({'reference' if exe is self.ref else 'cpu'})")
        for table, page in zip(self.model.tables, (self.config.paged_k, self.config.paged_v)):
            if page:
                check_page_table(self.cpu, table, page, what)


def check_page_table(exe: oi.Executor, table: ModelTable, page: int, what: str = "") -> oi.PageTable:
    """`exe.page_table` of a `@paged` table against the model's present entries (`assert_page_table`)."""
    pt = exe.page_table(table.name)
    assert_page_table(pt, table.sizes(), table.fixed[-1], page, list(table.entries), f"{what}: page_table({table.name})")
    return pt


# --- random programs -----------------------------------------------------------------------------


def draw_config(seed: int) -> Config:
    """Middle counts (0, 1, 2), lengths dtypes and mask dtypes rotate with the seed, so that the
    seeds together cover each, on dense tables and (half the seeds: 1 and 2 of every 4) on
    `@paged` ones; the rest is random."""
    rng = np.random.default_rng(seed)
    middles = seed % 3
    heads = tuple(int(rng.integers(1, 4)) for _ in range(middles))
    DK = int(rng.integers(1, 5))
    DV = int(rng.choice([d for d in range(1, 6) if d != DK]))
    B = int(rng.integers(1, 5)) if seed % 4 else int(rng.integers(2, 5))
    rank = middles + 2

    def fixed() -> tuple[tuple[int, int], ...]:
        out = []
        if rng.random() < 0.3:
            out.append((0, B))
        for m in range(middles):
            if rng.random() < 0.3:
                out.append((m + 1, heads[m] + int(rng.integers(0, 2))))
        if rng.random() < 0.5:
            out.append((rank - 1, int(rng.integers(4, 8))))
        return tuple(out)

    config = Config(B, heads, DK, DV, lens=("i64", "i32")[seed % 2], mask=list(MASK_DTYPES)[(seed // 2) % 3],
                    fixed_k=fixed(), fixed_v=fixed(), init_v=None if rng.random() < 0.5 else -1.5)  # fmt: skip
    if seed % 4 not in (1, 2):
        return config
    # paged: K, V or both, pages of 1-4 (dividing a @fixed last size or not) or 16 (more than it),
    # now and then a pool of 1 or 2 pages to start with (it doubles as pages are taken)
    paging = np.random.default_rng(15 + seed)
    which = str(paging.choice(["both", "both", "K", "V"]))
    page = lambda: int(paging.choice([1, 2, 3, 4, 16]))
    return replace(config, paged_k=page() if which != "V" else 0, paged_v=page() if which != "K" else 0,
                   pages=int(paging.choice([0, 0, 1, 2])))  # fmt: skip


def draw_values(config: Config, model: SeqModel, rng: np.random.Generator) -> dict:
    """One step's inputs: usually one statement, now and then two or three (run in FLAGS order);
    arguments mostly valid for the model's current lengths, now and then not (negative, out of
    range, src == dst, past the length, a huge value)."""
    B = config.B
    lens = [int(x) for x in model.lens]
    weights = {"do_append": 5, "do_fork": 2.5, "do_pop": 2.5, "do_pop1": 1, "do_pop2": 1, "do_reset": 1.5,
               "do_share": 1, "do_set": 0.6}  # fmt: skip
    names = list(weights)
    p = np.array(list(weights.values())) / sum(weights.values())
    count = int(rng.choice([1, 1, 1, 1, 2, 2, 3]))
    chosen: set[str] = set()
    while len(chosen) < count:
        chosen.add(str(rng.choice(names, p=p)))
    values = inputs(config, rng, **{flag: flag in chosen for flag in FLAGS})

    def seq() -> int:
        r = rng.random()
        if r < 0.04:
            return -int(rng.integers(1, 3))
        if r < 0.08:
            return B + int(rng.integers(0, 3))
        if r < 0.1:
            return 2**40
        return int(rng.integers(0, B))

    src, dst, s = seq(), seq(), seq()
    if B > 1 and rng.random() < 0.85:
        while dst == src and 0 <= src < B:
            dst = int(rng.integers(0, B))
    length = lens[src] if 0 <= src < B else 0
    pos = int(rng.integers(0, max(length, 0) + 1)) if rng.random() < 0.9 else length + int(rng.integers(1, 3))
    seq_length = lens[s] if 0 <= s < B else 0
    n = int(rng.integers(0, max(seq_length, 0) + 1)) if rng.random() < 0.88 else seq_length + int(rng.integers(1, 3))
    if rng.random() < 0.03:
        pos, n = -1, -2
    if "do_share" in chosen and rng.random() < 0.9:  # the position a prefix of sequence 0
        pos = int(rng.integers(0, max(lens[0], 0) + 1))
    values.update(src_in=src, dst_in=dst, pos_in=pos, n_in=n, seq_in=s)
    values["inc"] = rng.choice([0, 1, 1, 1, 1, 2], size=B).astype(LENS_DTYPES[config.lens])
    mask = rng.random(B) < 0.35
    if config.mask == "bool":
        values["mask"] = mask
    else:  # any nonzero value selects the sequence
        values["mask"] = np.where(mask, rng.choice([1, 2, 255 if config.mask == "u8" else -3], size=B), 0).astype(
            MASK_DTYPES[config.mask])
    values["lens_in"] = rng.choice([0, 1, 2, 3, 5, 6, 8, -1], size=B, p=[.2, .2, .15, .15, .1, .1, .07, .03]).astype(
        LENS_DTYPES[config.lens])  # fmt: skip
    return values


def draw_program(seed: int, steps: int) -> tuple[Config, list[dict], list[ModelError | None]]:
    """The config, the steps' inputs and the model's outcome of each (the model decides the next
    step's arguments, so the program is drawn while the model runs it)."""
    config = draw_config(seed)
    model = config.model()
    rng = np.random.default_rng(7000 + seed)
    program, outcomes = [], []
    for _ in range(steps):
        values = draw_values(config, model, rng)
        program.append(values)
        outcomes.append(model.step(values))
    return config, program, outcomes


SEEDS = range(12)
STEPS = 60


@pytest.mark.parametrize("seed", SEEDS)
def test_random_programs_agree(seed: int, tmp_path) -> None:
    """Reference, cpu and the model after every step; halfway, each device's checkpoint is
    loaded into the other device's executor (so the rest runs from a state the other wrote)."""
    random_program(seed, tmp_path)


@pytest.mark.parametrize("seed", [2, 5, 6, 11])  # paged K, V, both, neither
def test_random_programs_agree_on_cuda(seed: int, tmp_path, monkeypatch) -> None:
    """The same on cuda (emulated, launches compiled from the second call): dense and paged tables
    in device memory, forks sharing pages (copy on write), pops, masked resets, failed steps."""
    monkeypatch.setenv("OI_GPU_EMULATE", "1")
    monkeypatch.setenv("OI_CUDA_COMPILE_AFTER", "2")
    random_program(seed, tmp_path, "cuda")


def random_program(seed: int, tmp_path, device: str = "cpu") -> None:
    config, program, _ = draw_program(seed, STEPS)
    run = Runner(config, f"seed {seed} {config}", device)
    for n, values in enumerate(program):
        if n == STEPS // 2:
            run.ref.save_state(tmp_path / "ref.oistate")
            run.cpu.save_state(tmp_path / "cpu.oistate")
            run.ref.load_state(tmp_path / "cpu.oistate")
            run.cpu.load_state(tmp_path / "ref.oistate")
            run.check(f"seed {seed}: after swapping checkpoints")
        run.step(values)


def message_kind(message: str) -> str:
    """A message with its numbers (and the `@fixed` detail) left out."""
    return re.sub(r"-?\d+", "N", message).split(" (")[0]


def test_the_random_programs_cover_what_they_promise() -> None:
    """Run by the model alone: the seeds cover 0, 1 and 2 middle indices, both lengths dtypes and
    every mask dtype (each on dense and on paged tables), fixed and growable positions, K and V of
    different entry sizes, K, V or both paged with every page size drawn (dividing a fixed position
    size, not dividing it, larger than it, and on a growable one) and pool sizes, every statement
    succeeding, and each of the statements' messages."""
    configs, executed, failures = [], set(), set()
    for seed in SEEDS:
        config, program, outcomes = draw_program(seed, STEPS)
        configs.append(config)
        for values, outcome in zip(program, outcomes):
            if outcome is None:
                executed.update(f for f in FLAGS if values[f])
            else:
                failures.add((outcome.statement, message_kind(outcome.message)))
    for paged in (False, True):
        some = [c for c in configs if c.paged == paged]
        assert {len(c.heads) for c in some} == {0, 1, 2}
        assert {c.lens for c in some} == set(LENS_DTYPES)
        assert {c.mask for c in some} == set(MASK_DTYPES)
    paged = [(c, fixed, page) for c in configs
             for fixed, page in ((c.fixed_k, c.paged_k), (c.fixed_v, c.paged_v)) if page]  # fmt: skip
    assert {page for _, _, page in paged} == {1, 2, 3, 4, 16}
    assert {(c.paged_k > 0, c.paged_v > 0) for c in configs if c.paged} == {(True, True), (True, False), (False, True)}
    assert {c.pages for c in configs if c.paged} == {0, 1, 2}
    lasts = [(dict(fixed).get(c.rank - 1), page) for c, fixed, page in paged]
    assert any(last is None for last, _ in lasts)  # a growable position index in pages
    assert any(last is not None and last % page == 0 and page > 1 for last, page in lasts)  # whole pages
    assert any(last is not None and last % page and page < last for last, page in lasts)  # a last page cut short
    assert any(last is not None and page > last for last, page in lasts)  # one page longer than the index
    assert all(c.DK != c.DV for c in configs)
    fixed_positions = [any(d == c.rank - 1 for d, _ in c.fixed_k) for c in configs]
    assert any(fixed_positions) and not all(fixed_positions)
    assert executed == set(FLAGS)
    assert {
        ("fork", "cache index cannot be negative"),
        ("fork", "cache.fork sequence N is out of range for N sequences"),
        ("fork", "cache.fork source and destination are both sequence N"),
        ("fork", "cache.fork position N is past the length N of sequence N"),
        ("share", "cache.fork position N is past the length N of sequence N"),
        ("pop", "cache index cannot be negative"),
        ("pop", "cache.pop sequence N is out of range for N sequences"),
        ("pop", "cache.pop N entries from sequence N of length N"),
        ("pop1", "cache.pop N entries from sequence N of length N"),
        ("pop2", "cache.pop N entries from sequence N of length N"),
        ("append_k", "cache.append K sample N at offset N with N new entries exceeds fixed size N of index N"),
    } <= failures, failures


# --- scenarios -----------------------------------------------------------------------------------

SCENARIO = Config(B=4, heads=(2,), DK=4, DV=2)
#: no heads, i32 lengths, a u8 mask, V's position @fixed and its entries @init(0.5)
EDGE = Config(B=2, heads=(), DK=3, DV=2, lens="i32", mask="u8", fixed_v=((1, 5),), init_v=0.5)
#: the scenarios again on `@paged` tables: K in pages of 2 from a pool of one page (it doubles),
#: V in pages of 3 (EDGE: V's @fixed(t = 5) is no whole number of pages)
PAGED_SCENARIO = replace(SCENARIO, paged_k=2, paged_v=3, pages=1)
PAGED_EDGE = replace(EDGE, paged_k=1, paged_v=3)
on_storages = pytest.mark.parametrize("paged", [False, True], ids=["dense", "paged"])

#: one position of one sequence: its K and V rows (`[*heads, DK]`, `[*heads, DV]`)
Position = tuple[np.ndarray, np.ndarray]


def token(rng: np.random.Generator, config: Config = SCENARIO) -> dict:
    """One new position for every sequence: k and v."""
    return {"k": random_bits(rng, (config.B, *config.heads, 1, config.DK)),
            "v": random_bits(rng, (config.B, *config.heads, 1, config.DV))}  # fmt: skip


def sample(tok: dict, b: int) -> Position:
    """Sequence b's position of an append of `tok`."""
    return tok["k"][b, ..., 0, :], tok["v"][b, ..., 0, :]


def expected_tables(sequences: list[list[Position]], config: Config = SCENARIO,
                    init_v: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """K and V as `state` shows them when sequence b holds the positions `sequences[b]` and
    nothing else, written out independently of the model: the first index as long as the last
    sequence holding anything, the position index as the longest sequence (or V's @fixed size),
    zeros (V: `init_v`) elsewhere."""
    T = max(len(s) for s in sequences)
    rows = max((b + 1 for b, s in enumerate(sequences) if s), default=0)
    heads = config.heads if rows else tuple(0 for _ in config.heads)
    K = np.zeros((rows, *heads, T, config.DK), np.float32)
    V = np.full((rows, *heads, config.fixed_list(config.fixed_v)[-1] or T, config.DV), init_v, np.float32)
    for b, positions in enumerate(sequences):
        for t, (k, v) in enumerate(positions):
            K[b, ..., t, :] = k
            V[b, ..., t, :] = v
    return K, V


def check_tables(exes, sequences: list[list[Position]], lens: list[int], config: Config = SCENARIO,
                 init_v: float = 0.0) -> None:
    K, V = expected_tables(sequences, config, init_v)
    for exe in exes:
        assert_bits(np.array(exe.state("K")), K, "K")
        assert_bits(np.array(exe.state("V")), V, "V")
        assert np.array(exe.state("lens")).tolist() == lens


def check_sequences(run: Runner, sequences: list[list[Position]], init_v: float = 0.0) -> None:
    check_tables((run.ref, run.cpu), sequences, [len(s) for s in sequences], run.config, init_v)


def append_all(run: Runner, seqs: list[list[Position]], tok: dict) -> None:
    assert run.step(inputs(run.config, do_append=True, **tok)) is None
    for b, s in enumerate(seqs):
        s.append(sample(tok, b))


@on_storages
def test_speculative_decoding(paged: bool) -> None:
    """Every sequence appends 3 draft tokens; then sequence 0 rejects 2 (the literal
    `cache.pop 2 ... 0`), sequence 3 all 3 (`cache.pop n ... seq`) in the same step, sequence 1
    rejects 1 (the default count), sequence 2 none; decoding continues from the accepted prefixes."""
    rng = np.random.default_rng(11)
    run = Runner(PAGED_SCENARIO if paged else SCENARIO, "speculative")
    seqs: list[list[Position]] = [[] for _ in range(4)]
    for _ in range(2 + 3):  # the prompt, then the drafts
        append_all(run, seqs, token(rng))
    check_sequences(run, seqs)
    assert run.step(inputs(SCENARIO, do_pop=True, n_in=3, seq_in=3, do_pop2=True)) is None
    assert run.step(inputs(SCENARIO, do_pop1=True, seq_in=1)) is None
    seqs = [seqs[0][:3], seqs[1][:4], seqs[2], seqs[3][:2]]
    check_sequences(run, seqs)
    for _ in range(2):  # decoding goes on after the accepted tokens
        append_all(run, seqs, token(rng))
    check_sequences(run, seqs)
    assert run.ref.table_sizes("K") == run.cpu.table_sizes("K") == [4, 2, 7]


@on_storages
def test_speculative_decoding_pops_back_to_the_table_size(paged: bool) -> None:
    """Two sequences without heads, 3 drafts appended to each, 2 rejected from each in one step
    (`cache.pop n ... seq` and `cache.pop 2 ... 0`): the position index shrinks back to the 3
    entries that remain, then grows again."""
    rng = np.random.default_rng(3)
    run = Runner(PAGED_EDGE if paged else EDGE, "speculative-edge")
    seqs: list[list[Position]] = [[], []]
    for _ in range(5):
        append_all(run, seqs, token(rng, EDGE))
    assert run.ref.table_sizes("K") == run.cpu.table_sizes("K") == [2, 5]
    assert run.step(inputs(EDGE, do_pop=True, n_in=2, seq_in=1, do_pop2=True)) is None
    assert run.ref.table_sizes("K") == run.cpu.table_sizes("K") == [2, 3]
    assert run.ref.table_sizes("V") == run.cpu.table_sizes("V") == [2, 5]  # V's position is @fixed(t = 5)
    seqs = [s[:3] for s in seqs]
    check_sequences(run, seqs, init_v=0.5)
    append_all(run, seqs, token(rng, EDGE))
    check_sequences(run, seqs, init_v=0.5)


def prefix_sharing_steps(rng: np.random.Generator) -> tuple[list[dict], list[list[Position]]]:
    """A prompt of 3 positions appended to sequence 0 only (`inc` [1, 0, 0, 0]: the others keep
    rewriting their position 0, stale entries a fork must replace), forked into sequences 1-3 by
    the loop (`0 >> i at pos`), each continuing differently for 2 positions; then sequence 1's
    first 4 positions forked into sequence 3, sequence 2 reset by the mask and given a new first
    position, while the others rewrite their next position without advancing (inc 0).
    The steps, and each sequence's positions at the end, the stale last ones included."""
    steps, seqs = [], [[] for _ in range(4)]
    for _ in range(3):
        tok = token(rng)
        steps.append(inputs(SCENARIO, do_append=True, inc=[1, 0, 0, 0], **tok))
        seqs[0].append(sample(tok, 0))
    steps.append(inputs(SCENARIO, do_share=True, pos_in=3))
    for b in (1, 2, 3):
        seqs[b] = list(seqs[0])
    for _ in range(2):
        tok = token(rng)
        steps.append(inputs(SCENARIO, do_append=True, **tok))
        for b, s in enumerate(seqs):
            s.append(sample(tok, b))
    steps.append(inputs(SCENARIO, do_fork=True, src_in=1, dst_in=3, pos_in=4))
    seqs[3] = seqs[1][:4]
    steps.append(inputs(SCENARIO, do_reset=True, mask=[False, False, True, False]))
    seqs[2] = []
    tok = token(rng)
    steps.append(inputs(SCENARIO, do_append=True, inc=[0, 0, 1, 0], **tok))  # a new prompt for 2 only
    for b, s in enumerate(seqs):
        s.append(sample(tok, b))
    return steps, seqs


PREFIX_LENS = [5, 5, 1, 4]  # sequences 0, 1 and 3 hold one stale position past their length


@on_storages
def test_prefix_sharing(paged: bool) -> None:
    rng = np.random.default_rng(21)
    steps, seqs = prefix_sharing_steps(rng)
    run = Runner(PAGED_SCENARIO if paged else SCENARIO, "prefix sharing")
    for n, values in enumerate(steps):
        assert run.step(values) is None, n
        if n == 3:  # right after the fork: every sequence is the prompt, stale position-0 rows gone
            check_sequences(run, [seqs[0][:3]] * 4)
    check_tables((run.ref, run.cpu), seqs, PREFIX_LENS)


def row_lengths(pt: oi.PageTable) -> list[int]:
    """Each row's length in a page table: its whole pages and the last page's entries in use."""
    columns = np.diff(pt.indptr)
    return [int((c - 1) * pt.page_size + last) if c else 0 for c, last in zip(columns, pt.last_page_len)]


def test_prefix_sharing_on_pages_matches_dense_storage() -> None:
    """The prefix-sharing run on `@paged` K (pages of 2, a pool of 1 page to start with) and V
    (pages of 3), on cpu beside a cpu executor of the same graph on dense tables: after every step
    both hold the same state bit for bit (and the model's: `Runner.check`), and K's and V's page
    tables agree with their sizes and with `lens` (each row as long as its sequence's present
    positions: `lens`, or one more for a stale one), with valid page numbers only. Right after the
    fork of the 3-position prompt into sequences 1-3, each of them shares sequence 0's first page
    (positions 0 and 1, whole) and has a page of its own for the partial one; pages taken as
    sequences grow and given back by the reset keep the pool's count of pages in use consistent."""
    rng = np.random.default_rng(21)
    steps, seqs = prefix_sharing_steps(rng)
    run = Runner(PAGED_SCENARIO, "prefix sharing on pages")
    dense = make(PAGED_SCENARIO.dense(), "cpu")
    H = SCENARIO.heads[0]
    for n, values in enumerate(steps):
        assert run.step(values) is None, n
        assert step(dense, values) is None, n
        assert_same_snapshot(snapshot(run.cpu), snapshot(dense), f"step {n}: paged against dense")
        lens = np.array(run.cpu.state("lens")).tolist()
        for name, page in (("K", 2), ("V", 3)):
            pt = run.cpu.page_table(name)
            sizes = run.cpu.table_sizes(name)
            assert (pt.page_size, list(pt.rows)) == (page, sizes[:-1]), (n, name)
            lengths = row_lengths(pt)
            assert max(lengths, default=0) == sizes[-1], (n, name)
            for b in range(sizes[0]):
                assert all(lens[b] <= lengths[b * H + h] <= lens[b] + 1 for h in range(H)), (n, name, lens, lengths)
            assert ((pt.indices >= 0) & (pt.indices < pt.pool_pages)).all(), (n, name, pt)
            assert len(np.unique(pt.indices)) <= pt.pages_in_use <= pt.pool_pages, (n, name, pt)
        if n == 3:  # the prompt (positions 0-2) forked from sequence 0 into 1-3
            pt = run.cpu.page_table("K")
            assert row_lengths(pt) == [3] * 8 and np.diff(pt.indptr).tolist() == [2] * 8
            first = pt.indices[0::2].reshape(4, H)  # each row's first page, [b, h]
            second = pt.indices[1::2].reshape(4, H)
            assert (first == first[0]).all(), pt  # shared: the whole page of positions 0 and 1
            assert len(np.unique(second)) == 4 * H, pt  # position 2: a partial page, each row its own
            assert pt.pages_in_use == H + 4 * H, pt
    check_tables((run.ref, run.cpu, dense), seqs, PREFIX_LENS)
    K = run.cpu.page_table("K")
    assert row_lengths(K) == [len(s) for s in seqs for _ in range(H)] == [6, 6, 6, 6, 1, 1, 5, 5]
    assert run.cpu.table_nbytes("K") > 0 and run.cpu.table_nbytes("V") > 0
    for name in ("K", "V"):  # the reference keeps entries, not pages
        with pytest.raises(oi.UnsupportedError):
            run.ref.page_table(name)
        with pytest.raises(oi.UnsupportedError):
            run.ref.table_nbytes(name)
    with pytest.raises(oi.OiError, match="not a @paged table"):
        dense.page_table("K")


@pytest.mark.parametrize("first", DEVICES)
@on_storages
def test_checkpoint_mid_run_continues_on_the_other_device(first: str, paged: bool, tmp_path) -> None:
    """The prefix-sharing run, checkpointed after the fork on one device and continued on a new
    executor of the other (on paged tables too: a checkpoint holds entries, never pages): the same
    final state as the uninterrupted run (the model's)."""
    rng = np.random.default_rng(21)
    steps, seqs = prefix_sharing_steps(rng)
    second = "cpu" if first == "reference" else "reference"
    config = PAGED_SCENARIO if paged else SCENARIO
    one = make(config, first)
    for values in steps[:5]:
        assert step(one, values) is None
    one.save_state(tmp_path / "mid.oistate")
    two = make(config, second)
    two.load_state(tmp_path / "mid.oistate")
    assert_same_snapshot(snapshot(two), snapshot(one), "after load_state")
    assert two.steps == 5
    for values in steps[5:]:
        assert step(two, values) is None
    check_tables([two], seqs, PREFIX_LENS)
    model = SCENARIO.model()
    for values in steps:
        assert model.step(values) is None
    assert_same_snapshot(snapshot(two), model.state(), "against the model")


# --- errors --------------------------------------------------------------------------------------


def _filled(lens=(2, 3, 0, 1)) -> list[dict]:
    """Steps that leave `lens` as given (appends with per-sequence increments)."""
    rng = np.random.default_rng(5)
    steps = []
    for n in range(max(lens)):
        steps.append(inputs(SCENARIO, rng, do_append=True, inc=[1 if n < x else 0 for x in lens]))
    return steps


#: name: (the failing step's inputs, its message, the statement that raises)
ERROR_CASES = {
    "fork_negative_src": (dict(do_fork=True, src_in=-1, dst_in=2, pos_in=0), "cache index cannot be negative", "fork"),
    "fork_negative_position": (dict(do_fork=True, src_in=0, dst_in=9, pos_in=-3),
                               "cache index cannot be negative", "fork"),
    "fork_dst_out_of_range": (dict(do_fork=True, src_in=0, dst_in=7, pos_in=1),
                              "cache.fork sequence 7 is out of range for 4 sequences", "fork"),
    "fork_src_out_of_range": (dict(do_fork=True, src_in=4, dst_in=4, pos_in=9),
                              "cache.fork sequence 4 is out of range for 4 sequences", "fork"),
    "fork_huge_dst": (dict(do_fork=True, src_in=0, dst_in=2**62, pos_in=1),
                      f"cache.fork sequence {2**62} is out of range for 4 sequences", "fork"),
    "fork_same": (dict(do_fork=True, src_in=1, dst_in=1, pos_in=9),
                  "cache.fork source and destination are both sequence 1", "fork"),
    "fork_past_length": (dict(do_fork=True, src_in=0, dst_in=2, pos_in=5),
                         "cache.fork position 5 is past the length 2 of sequence 0", "fork"),
    "share_past_length": (dict(do_share=True, pos_in=3), "cache.fork position 3 is past the length 2 of sequence 0",
                          "share"),
    "share_after_a_pop": (dict(do_pop=True, n_in=2, seq_in=0, do_share=True, pos_in=1),
                          "cache.fork position 1 is past the length 0 of sequence 0", "share"),
    "fork_after_an_append": (dict(do_append=True, do_fork=True, src_in=2, dst_in=0, pos_in=2),
                             "cache.fork position 2 is past the length 1 of sequence 2", "fork"),
    "pop_negative": (dict(do_pop=True, n_in=-1, seq_in=0), "cache index cannot be negative", "pop"),
    "pop_out_of_range": (dict(do_pop=True, n_in=0, seq_in=4), "cache.pop sequence 4 is out of range for 4 sequences",
                         "pop"),
    "pop_too_many": (dict(do_pop=True, n_in=4, seq_in=1), "cache.pop 4 entries from sequence 1 of length 3", "pop"),
    "pop_default_from_empty": (dict(do_pop1=True, seq_in=2), "cache.pop 1 entries from sequence 2 of length 0", "pop1"),
    "pop_literal_after_a_pop": (dict(do_pop=True, n_in=1, seq_in=0, do_pop2=True),
                                "cache.pop 2 entries from sequence 0 of length 1", "pop2"),
    "pop_after_a_fork": (dict(do_fork=True, src_in=1, dst_in=0, pos_in=1, do_pop=True, n_in=2, seq_in=0),
                         "cache.pop 2 entries from sequence 0 of length 1", "pop"),
    "share_after_pop_and_reset": (dict(do_reset=True, mask=[True, False, False, False], do_pop2=True, do_share=True,
                                    pos_in=1), "cache.fork position 1 is past the length 0 of sequence 0", "share"),
}  # fmt: skip


@pytest.mark.parametrize("case", list(ERROR_CASES))
def test_errors_match_and_change_nothing(case: str) -> None:
    """Each error on both devices: the same class, message, location and node, the model's, and
    no persistent variable changed (`step` checks it), statements before it in the step included."""
    values, message, statement = ERROR_CASES[case]
    run = Runner(SCENARIO, case)
    for before in _filled():
        assert run.step(before) is None
    assert run.model.lens.tolist() == [2, 3, 0, 1]
    e = run.step(inputs(SCENARIO, **values))
    assert isinstance(e, oi.CacheError)
    assert (e.message, str(e.loc)) == (message, SCENARIO.location(statement))
    run.step(inputs(SCENARIO, do_append=True))  # and the run goes on from the state before it


def test_append_past_a_fixed_position_after_a_fork_undoes_the_fork() -> None:
    """`@fixed(t = 5)` on V only: a step that appends past V's last position and forks fails at
    V's append, after K's append succeeded; the whole step is undone."""
    run = Runner(EDGE, "fixed")
    for _ in range(5):
        assert run.step(inputs(EDGE, do_append=True, inc=[1, 0])) is None
    e = run.step(inputs(EDGE, do_append=True, do_fork=True, src_in=0, dst_in=1, pos_in=2))
    assert e.message == "cache.append V sample 0 at offset 5 with 1 new entries exceeds fixed size 5 of index 1"
    assert run.model.lens.tolist() == [5, 0]
    assert run.step(inputs(EDGE, do_fork=True, src_in=0, dst_in=1, pos_in=2)) is None  # the fork alone is fine


def test_lengths_written_past_the_entries() -> None:
    """`lens` written directly (no entries behind it): a fork reads the source's missing positions
    as zeros / @init (a read creates them, as any OpenInfer read does) and copies them; a pop past
    the present entries removes what is there; a reset and a fork of length 0 leave the sequence
    empty, the table's sizes recomputed from what remains."""
    run = Runner(EDGE, "lens written")
    rng = np.random.default_rng(1)
    assert run.step(inputs(EDGE, rng, do_append=True, inc=[1, 0])) is None
    assert run.step(inputs(EDGE, do_set=True, lens_in=[4, 1])) is None
    assert run.step(inputs(EDGE, do_fork=True, src_in=0, dst_in=1, pos_in=3)) is None
    assert run.ref.table_sizes("K") == [2, 3]
    V = np.array(run.ref.state("V"))
    assert V[1, 1:3].tolist() == [[0.5, 0.5]] * 2 and V[0, 1:3].tolist() == [[0.5, 0.5]] * 2
    assert run.step(inputs(EDGE, do_pop=True, n_in=4, seq_in=0)) is None
    assert run.ref.table_sizes("K") == [2, 3]  # sequence 1's three positions
    assert run.step(inputs(EDGE, do_reset=True, mask=[0, 200])) is None
    assert run.ref.table_sizes("K") == [0, 0]
    assert run.step(inputs(EDGE, do_set=True, lens_in=[2, 0])) is None
    assert run.step(inputs(EDGE, do_fork=True, src_in=1, dst_in=0, pos_in=0)) is None
    assert run.ref.table_sizes("K") == [0, 0] and run.ref.table_sizes("V") == [0, 5]
    assert run.model.lens.tolist() == [0, 0]


def test_negative_lengths() -> None:
    """Lengths written negative: an append at them fails (negative offset), a pop of 0 and a fork
    at 0 are past the length, a masked reset sets them back to 0."""
    run = Runner(SCENARIO, "negative")
    assert run.step(inputs(SCENARIO, do_set=True, lens_in=[-1, 2, 0, 0])) is None
    assert run.step(inputs(SCENARIO, do_append=True)).message == "cache.append K offset -1 of sample 0 is negative"
    assert run.step(inputs(SCENARIO, do_pop=True, n_in=0, seq_in=0)).message == (
        "cache.pop 0 entries from sequence 0 of length -1")
    assert run.step(inputs(SCENARIO, do_fork=True, src_in=0, dst_in=1, pos_in=0)).message == (
        "cache.fork position 0 is past the length -1 of sequence 0")
    assert run.step(inputs(SCENARIO, do_reset=True, mask=[True, False, False, False])) is None
    assert run.step(inputs(SCENARIO, do_append=True)) is None


# --- traces --------------------------------------------------------------------------------------


def test_trace_events() -> None:
    exe = make(SCENARIO, "reference", trace=True)
    for values in _filled():
        exe.insert(**values)
        exe.step()
    start = len(exe.trace())
    exe.insert(**inputs(SCENARIO, do_fork=True, src_in=1, dst_in=2, pos_in=2, do_pop=True, n_in=1, seq_in=0,
                        do_reset=True, mask=[False, False, False, True]))  # fmt: skip
    exe.step()
    events = [e for e in exe.trace()[start:] if e["kind"] in ("CacheFork", "CachePop", "CacheReset")]
    assert [(e["kind"], e["block_name"], e["node_desc"], e["op_name"]) for e in events] == [
        ("CacheFork", "frk", "cache.fork K, V [lens] src >> dst at pos", ""),
        ("CachePop", "pp", "cache.pop n K, V [lens] seq", ""),
        ("CacheReset", "rst", "cache.reset K, V [lens] where mask", ""),
    ]
    assert np.array(exe.state("lens")).tolist() == [1, 3, 2, 0]


# --- bugs found while writing this file ----------------------------------------------------------


def test_size_names_as_index_values() -> None:
    """A size name is an index value like a literal (the usual cache-index rules: literal, size,
    loop index, persistent scalar), in every slot of `cache.fork` and `cache.pop`.

    Bug: on `device="cpu"` the step fails with `CacheError: unknown cache index FIRST` (the first
    size name it meets) while the reference runs it. The sizes are never bound in these
    statements: `oi-opt g.oi --bind-sizes="B=3 FIRST=0 LAST=2 P=2 N=1"` leaves
    `oi.cache.fork @K [@lens] FIRST -> LAST at P` and `oi.cache.pop N @K [@lens] LAST` as they
    are (it does rewrite `cache.reset K[LAST]` to `K[2]`), and the cpu lowering's `index_value`
    expects every size to be bound already."""
    src = """\
    dynamic { k: f32[B, 1, 2]; inc: i64[B]; go: bool; }
    volatile { cur: i64[B]; }
    persistent { K(b, t): f32[2] @table; lens: i64[B]; }
    block entry { branch go app seq; return; }
    block app {
        cache.append k >> K[lens];
        cache.read lens >> cur;
        op add(cur, inc) >> cur;
        cache.write cur >> lens;
        return;
    }
    block seq {
        cache.fork K [lens] FIRST >> LAST at P;
        cache.pop N K [lens] LAST;
        return;
    }
    """
    graph = oi.parse_graph(textwrap.dedent(src), FILE)
    sizes = {"B": 3, "FIRST": 0, "LAST": 2, "P": 2, "N": 1}
    rng = np.random.default_rng(2)
    toks = [random_bits(rng, (3, 1, 2)) for _ in range(2)]
    results = {}
    for device in DEVICES:
        exe = oi.Simulator(oi.Model(sizevars=sizes), graph, device=device).make_executor()
        for tok in toks:
            assert step(exe, {"k": tok, "inc": np.array([1, 1, 1]), "go": True}) is None
        results[device] = error_text(step(exe, {"go": False}))
        if results[device] is None:
            assert np.array(exe.state("lens")).tolist() == [2, 2, 1], device
            expected = np.stack([t[:, 0] for t in toks], axis=1)  # [b, t, 2]
            expected[2, 1] = 0  # sequence 2: sequence 0's first position, then the fork's second popped
            expected[2, 0] = expected[0, 0]
            assert_bits(np.array(exe.state("K")), expected, device)
    assert results == {"reference": None, "cpu": None}
