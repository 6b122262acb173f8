"""A grammar-aware generator of `.oi` programs, and the driver that runs one through every public
entry point (`oi.parse_graph`, `oi.Simulator` on `reference` and `cpu`, `make_executor`, a step
with random inputs, `fetch`/`state`/`table_sizes`/`page_table`/`table_nbytes`).

The generator writes statements first and declares what they use as it goes (sections may come in
any order in the DSL), so most programs are well typed: each op's inputs get one of the dtypes the
op registry lists for it and shapes its category takes (elementwise, reductions with `axes`,
`matmul`, `transpose` with `perm`, `reshape` with `shape`, `concat`, `rope`, `attention`...),
its output the shape the op's own shape rule gives. Cache tables (`@table`, `@fixed`,
`@auto_dim`, `@init`; `@paged(page = P[, pages = N])` on tables, sequence tables and fields, in
any attribute order) get writes, reads with every index and slice form, resets, counters and
loops over them, and the KV-serving statements: ragged `cache.append` (offsets from inputs or a
lengths vector, both policies), `cache.save`/`cache.load` over fields, and `cache.fork`,
`cache.pop` and `cache.reset ... where` over sequence groups (tables sharing a lengths vector,
which the program rewrites now and then); blocks get branches, transfers, `assign` temporaries,
`return`, `barrier`, `dep`, `yield`/`await`. A per-program `chaos` rate makes some choices wrong
on purpose (a random name, dtype, literal, arity...; for the KV-serving statements also a
non-table, a table named twice, a mask of another shape, a persistent or constant save source,
negative or huge index literals, a bad policy...; `@paged` out of range, without a page size,
with an option twice or an unknown one, on an `@auto_dim` table or a plain variable), and the
text is laid out with random whitespace, comments (nested `/* */` too), trailing commas, the
`graph! { }` wrapper or not, sections split and reordered.
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass, field

import numpy as np
from hypothesis import strategies as st

import oi_compiler as oi
from oi_compiler.dtypes import DTYPE_NAMES, FLOAT_DTYPES, INT_RANGES, numpy_dtype
from oi_compiler.ops.registry import setting_spec

from ._support import Bug, HeavyBudget, call, count

FILE = "fuzz.oi"
SIZE_NAMES = ("D", "N", "T", "L", "B")
INTS = ("i8", "i16", "i32", "i64", "u8", "u16", "u32", "u64", "i4", "u4")
ODD_LITERALS = ["-1", "-7", "1000", "2147483648", "9223372036854775807", "9223372036854775808",
                "18446744073709551615", "18446744073709551616", "99999999999999999999999", "1.5", "1e400",
                "0x10", "0", "inf", "nan", "-0.0", "true"]  # fmt: skip
ODD_SETTINGS_EXTRA = ["[1, 2]", "[]", "[f32]", '"s"', "-x", "[-1, 70000]", "[9223372036854775808]"]
ODD_NAMES = ["nope", "entry", "graph", "op", "cache", "loop", "N", "D", "i", "l", "true", "f32", "_", "é"]
ODD_SETTINGS = ODD_LITERALS + ODD_NAMES + ODD_SETTINGS_EXTRA
#: `@paged` the parser or the verifier refuses: out of range, no page size, an option twice, an
#: unknown option, no parentheses, not an integer, twice on one declaration
ODD_PAGED = ["@paged(page = 0)", "@paged(page = -1)", "@paged(page = 2147483648)", "@paged(pages = 2)",
             "@paged(page = 2, page = 3)", "@paged(page = 2, pages = 0)", "@paged(size = 2)", "@paged()",
             "@paged", "@paged(page = x)", "@paged(page = 1.5)", "@paged(page 2)",
             "@paged(page = 2, pages = 9223372036854775808)", "@paged(page = 2) @paged(page = 3)"]  # fmt: skip


def _ops():
    return oi.all_ops()


@dataclass
class Decl:
    memory: str
    name: str
    dtype: str
    dims: list[str]
    shape: tuple[int, ...]
    indices: list[str] = field(default_factory=list)
    attrs: list[str] = field(default_factory=list)
    table: bool = False
    auto: list[str] = field(default_factory=list)


class OiGen:
    """One random program: `source()` is its text, `model()` the `oi.Model` keywords it runs on."""

    def __init__(self, draw):
        self.draw = draw
        # weighted coin flips come from a seeded generator: hypothesis's integers lean to their bounds
        self.rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
        self.chaos = draw(st.sampled_from([0.0] * 6 + [0.005, 0.02, 0.05, 0.15]))
        self.sizes = {name: draw(st.integers(1, 4)) for name in SIZE_NAMES}
        if self.odd():
            self.sizes[self.pick(SIZE_NAMES)] = self.pick([0, -1, 2**40, 2**63, 7])
        self.decls: dict[str, Decl] = {}
        self.tensors: dict[str, np.ndarray] = {}
        self.metadata: dict[str, object] = {}
        self.counters: list[str] = []  # persistent integer scalars
        self.tables: list[str] = []
        self.fields: list[str] = []  # cache.save/load fields (other cache statements may not name them)
        self.lens: list[str] = []  # persistent integer vectors: sequence lengths, append offsets
        self.groups: list[tuple[list[str], str, int]] = []  # sequence groups: tables, lengths, sequences
        self.blocks: dict[str, list[str]] = {}
        self.pending_blocks: list[str] = []
        self.names = itertools.count()
        self.temps: list[Decl] = []
        self.dim_texts: dict[int, str] = {}

    # --- choices ------------------------------------------------------------------------------
    def odd(self) -> bool:
        return self.chaos > 0 and self.rng.random() < self.chaos

    def pick(self, items):
        return self.draw(st.sampled_from(list(items)))

    def chance(self, p: float) -> bool:
        return self.rng.random() < p

    def fresh(self, prefix: str) -> str:
        return f"{prefix}{next(self.names)}"

    def small_shape(self, rank: int | None = None) -> tuple[int, ...]:
        if rank is None:
            rank = self.draw(st.integers(0, 3))
        return tuple(self.draw(st.integers(1, 3)) for _ in range(rank))

    def dim_text(self, n: int) -> str:
        """How a dim of size `n` is written: a size name, a literal, a product."""
        if self.odd():
            return self.pick(["0", "Z", "N*N", "4294967296*4294967296", "18446744073709551617", "D", "-1", "U"])
        if n not in self.dim_texts:  # one spelling per size and program: the verifier compares dims as text
            names = [k for k, v in self.sizes.items() if v == n]
            form = self.draw(st.integers(0, 4))
            text = str(n)
            if form <= 2 and names:
                text = self.pick(names)
            elif form == 3 and n > 1:
                for a in range(2, n):
                    if n % a == 0:
                        text = f"{self.pick([k for k, v in self.sizes.items() if v == a] or [str(a)])}*{n // a}"
                        break
            self.dim_texts[n] = text
        return self.dim_texts[n]

    # --- declarations -------------------------------------------------------------------------
    def declare(self, memory: str, dtype: str, shape: tuple[int, ...], *, name: str | None = None,
                indices=(), attrs=(), table=False, auto=()) -> Decl:  # fmt: skip
        if self.odd():
            dtype = self.pick(DTYPE_NAMES)
        prefix = {"dynamic": "x", "volatile": "v", "constant": "w", "persistent": "p"}[memory]
        decl = Decl(memory, name or self.fresh(prefix), dtype, [self.dim_text(n) for n in shape], shape, list(indices),
                    list(attrs), table, list(auto))  # fmt: skip
        self.decls[decl.name] = decl
        if memory == "constant" and not decl.indices:
            self.model_tensor(decl.name, dtype, shape)
        return decl

    def model_tensor(self, name: str, dtype: str, shape: tuple[int, ...]) -> None:
        if self.odd():
            if self.chance(0.5):
                return  # missing: a ModelError when the simulator binds
            dtype, shape = self.pick(DTYPE_NAMES), self.small_shape()
        self.tensors[name] = random_array(np.random.default_rng(len(self.tensors)), dtype, shape)

    def paged_attr(self) -> str:
        """`@paged(page = P[, pages = N])` (either order), now and then (chaos) one refused."""
        if self.odd():
            return self.pick(ODD_PAGED)
        options = [f"page = {self.pick([1, 1, 2, 3, 4, 16, 2147483647])}"]
        if self.chance(0.3):
            options.append(f"pages = {self.pick([1, 2, 64])}")
        self.draw(st.randoms()).shuffle(options)
        return f"@paged({', '.join(options)})"

    def init_attr(self, dtype: str) -> str:
        if self.odd():
            return f"@init({self.pick(ODD_LITERALS)})"
        if dtype == "bool":
            return f"@init({self.pick(['true', 'false'])})"
        if dtype in FLOAT_DTYPES:
            return f"@init({self.pick(['0.0', '1.5', '-2.25', '1e-3', '-0.5'])})"
        low, high = INT_RANGES[dtype]
        return f"@init({self.pick(sorted({low, high, 0, 1, max(low, -1)}))})"

    def value(self, dtype: str, shape: tuple[int, ...], *, writable: bool = False) -> str:
        """A variable of `dtype` and `shape`: an existing one, or a new declaration."""
        if self.odd():
            return self.pick([*self.decls, *ODD_NAMES]) if self.decls else "nope"
        memories = ["volatile"] if writable else ["dynamic", "dynamic", "volatile", "constant"]
        same = [d.name for d in self.decls.values()
                if d.dtype == dtype and d.shape == shape and not d.indices and d.memory in memories]  # fmt: skip
        if writable:
            same += [t.name for t in self.temps if t.dtype == dtype and t.shape == shape]
        if same and self.chance(0.6):
            return self.pick(same)
        memory = self.pick(memories)
        attrs = [self.init_attr(dtype)] if memory == "volatile" and self.chance(0.3) else []
        if memory == "constant" and self.chance(0.2):
            name = self.fresh("w")
            attrs = [f'@ref("{name}_weights")' if self.chance(0.5) else f"@ref({name}_weights)"]
            decl = self.declare(memory, dtype, shape, name=name, attrs=attrs)
            self.tensors[f"{name}_weights"] = self.tensors.pop(name, random_array(np.random.default_rng(1), dtype, shape))
            return decl.name
        return self.declare(memory, dtype, shape, attrs=attrs).name

    def counter(self) -> str:
        if self.counters and self.chance(0.7):
            return self.pick(self.counters)
        dtype = self.pick(["i32", "i32", "i64", "u8", "i16", "u64"])
        decl = self.declare("persistent", dtype, (), attrs=[self.init_attr(dtype)] if self.chance(0.5) else [])
        self.counters.append(decl.name)
        return decl.name

    def small_sizes(self) -> list[str]:
        return [name for name, value in self.sizes.items() if 0 <= value <= 8]

    def bound(self) -> str:
        """A persistent u8 counter for loop bounds: small `@init`, only ever incremented by 1 (no
        op or write reaches it), so a loop over it stays short."""
        if "lb" not in self.decls:
            self.declare("persistent", "u8", (), name="lb", attrs=[f"@init({self.pick([0, 1, 2, 3])})"])
            self.decls["lb"].dtype = "u8"  # (not a chaos dtype)
            self.decls["lb"].attrs = [a for a in self.decls["lb"].attrs if a.startswith("@init")]
        return "lb"

    def table(self) -> Decl:
        if self.tables and self.chance(0.6):
            return self.decls[self.pick(self.tables)]
        rank = self.draw(st.integers(1, 3))
        indices = [self.fresh("k") for _ in range(rank)]
        dtype = self.pick(["f32", "f32", "f32", "i32", "f16", "bf16", "u8", "bool", "f64", "i64", "f8"])
        attrs, fixed, auto_names = [], [], []
        kind = self.pick(["table", "table", "table", "auto", "both"])
        if kind != "table":  # `@auto_dim`: one tensor, one entry dim per auto index
            auto_names = [i for i in indices if self.chance(0.6)] or indices[-1:]
            if kind == "both" and len(auto_names) == len(indices):
                auto_names = auto_names[1:]
            if auto_names:
                attrs.append(f"@auto_dim({', '.join(auto_names)})")
            else:
                kind = "table"
        if kind != "auto":
            attrs.append("@table")
        entry = self.small_shape(len(auto_names) if auto_names else self.draw(st.integers(0, 2)))
        for index in indices:
            if self.chance(0.3):
                fixed.append(f"{index}={self.pick([1, 2, 3, 4, 1024])}")
        if fixed:
            attrs.append(f"@fixed({', '.join(fixed)})")
        if self.chance(0.3):
            attrs.append(self.init_attr(dtype))
        if "@table" in attrs and not auto_names and self.chance(0.3):
            attrs.append(self.paged_attr())
        if self.odd():  # (`@paged` on an `@auto_dim` table or tensor: the verifier refuses it)
            attrs.append(self.pick(["@table", "@fixed(zz=1)", "@auto_dim(zz)", "@fixed(" + indices[0] + "=0)",
                                    '@pattern("x.{k}")', "@init()", "@ref(q)", "@bogus",
                                    "@paged(page = 2)"]))  # fmt: skip
        self.draw(st.randoms()).shuffle(attrs)
        decl = self.declare("persistent", dtype, entry, indices=indices, attrs=attrs,
                            table="@table" in attrs, auto=auto_names)  # fmt: skip
        self.tables.append(decl.name)
        return decl

    def plain_persistent(self, loops: list[str]) -> list[str]:
        """A plain persistent variable, written by `cache.write` (ops may not write one)."""
        dtype, shape = self.pick(["f32", "i32", "bool", "f16"]), self.small_shape()
        names = [d.name for d in self.decls.values() if d.memory == "persistent" and not d.indices
                 and d.dtype == dtype and d.shape == shape]  # fmt: skip
        attrs = [self.init_attr(dtype)] if self.chance(0.5) else []
        if self.odd():  # `@paged` on a variable that is no table: the verifier refuses it
            attrs.append(self.pick(["@paged(page = 2)", "@paged(page = 4, pages = 1)"]))
        target = self.pick(names) if names and self.chance(0.5) else self.declare(
            "persistent", dtype, shape, attrs=attrs).name
        if self.chance(0.5):
            return [f"cache.write {self.value(dtype, shape)} >> {target};"]
        return [f"cache.read {target} >> {self.value(dtype, shape, writable=True)};"]

    def prefix_constant(self, dtype: str, shape: tuple[int, ...]) -> str:
        """A constant prefix table `W(l): ... @pattern("W.{l}")` read as `W[i]`."""
        name = self.fresh("P")
        decl = self.declare("constant", dtype, shape, name=name, indices=["l"], attrs=[f'@pattern("{name}.{{l}}")'])
        for n in range(self.draw(st.integers(0, 3))):
            self.model_tensor(f"{name}.{n}", decl.dtype, shape)
        return name

    # --- KV-serving statements: cache.append, cache.save/load, cache.fork/pop/reset ... where ----
    def seq_table(self) -> Decl:
        """A `@table K(b, [h,] t)`: a sequence (sample) per first index, a position per last, heads
        between; now and then an existing table of the program that fits (so the ordinary cache
        statements meet it too). With chaos: any table (one index, `@auto_dim`, a field...)."""
        if self.odd():
            return self.decls[self.pick(self.fields)] if self.fields and self.chance(0.3) else self.table()
        fit = [n for n in self.tables if n not in self.fields and self.fits_sequences(self.decls[n])]
        if fit and self.chance(0.5):
            return self.decls[self.pick(fit)]
        rank = self.pick([2, 2, 3])
        indices = [self.fresh("k") for _ in range(rank)]
        dtype = self.pick(["f32", "f32", "f16", "bf16", "i32", "u8", "bool", "f64", "i64", "f8"])
        attrs, fixed = ["@table"], []
        for n, index in enumerate(indices):
            if self.chance(0.4 if n == rank - 1 else 0.15):
                fixed.append(f"{index}={self.pick([1, 2, 4, 8])}")
        if fixed:
            attrs.append(f"@fixed({', '.join(fixed)})")
        if self.chance(0.3):
            attrs.append(self.init_attr(dtype))
        if self.chance(0.4):
            attrs.append(self.paged_attr())
        self.draw(st.randoms()).shuffle(attrs)
        decl = self.declare("persistent", dtype, self.small_shape(self.pick([0, 1, 1, 2])), indices=indices,
                            attrs=attrs, table=True)  # fmt: skip
        self.tables.append(decl.name)
        return decl

    @staticmethod
    def fits_sequences(decl: Decl) -> bool:
        return decl.table and not decl.auto and len(decl.indices) >= 2 and decl.dtype not in ("i4", "u4")

    def fixed_size(self, decl: Decl, index: str) -> int | None:
        for attr in decl.attrs:
            match = re.search(rf"\b{re.escape(index)}=(\d+)", attr) if attr.startswith("@fixed(") else None
            if match:
                return int(match.group(1))
        return None

    def int_vector(self, n: int) -> str:
        """An integer vector `[n]` of any integer dtype: cache.append's offsets (a step's random
        inputs: mostly small, now and then huge, negative or 2**63 and more as a u64)."""
        if self.odd():  # a float or bool vector, a table, a scalar, a field, an unknown name
            return self.pick([*self.decls, *ODD_NAMES])
        return self.value(self.pick(["i64", "i32", "u8", "i8", "i16", "u64", "u32"]), (n,))

    def lengths(self, n: int) -> str:
        """A persistent integer vector `lens: T[n]`: a sequence group's lengths (and offsets)."""
        same = [name for name in self.lens if self.decls[name].shape == (n,)]
        if same and self.chance(0.7):
            return self.pick(same)
        dtype = self.pick(["u8", "u8", "i8", "i16", "i64"])  # (not i32: plain writes draw that one)
        attrs = [f"@init({self.pick([0, 0, 1, 2, 3])})"] if self.chance(0.7) else []
        if self.odd():
            attrs = [self.init_attr(dtype)]
        decl = self.declare("persistent", dtype, (n,), attrs=attrs)
        self.lens.append(decl.name)
        return decl.name

    def set_lengths(self, lens: str) -> list[str]:
        """`cache.write v >> lens;` (ops may not write a persistent variable): new random lengths."""
        decl = self.decls.get(lens)
        if decl is None or (decl.dtype not in ("u8", "i8") and not self.odd()):
            return []  # (wider lengths would draw huge random values: a fork copying 2**40 entries)
        return [f"cache.write {self.value(decl.dtype, decl.shape)} >> {lens};"]

    def append(self, loops: list[str]) -> list[str]:
        """`cache.append x >> K[off] [@on_out_of_range(error|skip)];` x `[B, middles..., L_new] + entry`."""
        table = self.seq_table()
        rank = max(len(table.indices), 1)
        batch = self.fixed_size(table, table.indices[0]) if table.indices else None
        b = self.draw(st.integers(1, 3 if batch is None or self.chance(0.2) else min(batch, 3)))  # samples
        new = self.draw(st.integers(1, 3)) if not self.chance(0.1) else 0  # L_new = 0: baracuda's empty problem
        middles = [self.draw(st.integers(1, 2)) for _ in range(rank - 2)]
        shape = (b, *middles, new, *table.shape)
        if self.odd():
            shape = self.pick([(b, *table.shape), shape[1:], (*shape, 1), (*shape[:-1], shape[-1] + 1) if table.shape
                               else (b, new), self.small_shape()])  # fmt: skip
        src = self.operand(table.dtype if not self.odd() else self.pick(DTYPE_NAMES), shape, loops)
        if self.lens and self.chance(0.4):  # the lengths as offsets, as examples/ragged_decode.oi has them
            off = self.lengths(b)
        else:
            off = self.int_vector(b if not self.odd() else b + 1)
        if self.odd():
            off = self.pick([self.int_vector(b), table.name, f"{off}, {off}", "0", f"{off}.."])
        policy = self.pick(["", "", " @on_out_of_range(skip)", " @on_out_of_range(error)", "@on_out_of_range( skip )"])
        if self.odd():
            policy = self.pick([" @on_out_of_range(maybe)", " @on_out_of_range()", " @on_out_of_range(1)",
                                " @fixed(skip)", " @on_out_of_range(skip) @on_out_of_range(error)",
                                " @on_out_of_range", " @"])  # fmt: skip
        name = table.name if not self.odd() else self.pick([*self.decls, *ODD_NAMES])
        lines = [f"cache.append {src} >> {name}[{off}]{policy};"]
        if off in self.lens and self.chance(0.3):
            lines += self.set_lengths(off)  # the graph advances the offsets (baracuda's caller does)
        return lines

    def field(self) -> Decl:
        """A field `F(s): T[D0, D1] @table` (one growable index: its size is the page count S)."""
        if self.fields and self.chance(0.6):
            return self.decls[self.pick(self.fields)]
        dtype = self.pick(["f32", "f32", "f16", "i32", "u8", "bool", "f64", "bf16"])
        entry, indices, attrs = self.small_shape(2), [self.fresh("k")], ["@table"]
        if self.chance(0.2):
            attrs.append(self.init_attr(dtype))
        if self.chance(0.2):  # a field in pages (`cache.save`/`cache.load` as on a dense one)
            attrs.append(self.paged_attr())
        if self.odd():  # what a field may not be: two indices, a @fixed or @auto_dim index, an entry of rank != 2
            how = self.pick(["indices", "fixed", "auto", "entry", "plain"])
            if how == "indices":
                indices.append(self.fresh("k"))
            elif how == "fixed":
                attrs.append(f"@fixed({indices[0]}={self.pick([0, 1, 4])})")
            elif how == "auto":
                attrs.append(f"@auto_dim({indices[0]})")
            elif how == "entry":
                entry = self.small_shape(self.pick([0, 1, 3]))
            else:
                attrs, indices = [], []
        decl = self.declare("persistent", dtype, entry, indices=indices, attrs=attrs, table="@table" in attrs,
                            auto=[a for a in indices if f"@auto_dim({a})" in attrs])  # fmt: skip
        self.fields.append(decl.name)
        if self.odd():
            self.tables.append(decl.name)  # other cache statements may name it: a verifier error there
        return decl

    def ragged(self, dtype: str, shape: tuple[int, ...], *, writable: bool) -> str:
        """A RAGGED `[S, D0, D1]` for a save (dynamic or volatile) or a load (a volatile whose `S`
        is a name: a load's rows are as many as the field has pages)."""
        if self.odd():  # a persistent (vortex's PAGED), a constant, another shape or dtype, any name
            how = self.pick(["persistent", "constant", "shape", "dtype", "name"])
            if how == "persistent":
                return self.declare("persistent", dtype, shape).name
            if how == "constant":
                return self.declare("constant", dtype, shape).name
            if how == "shape":
                return self.value(dtype, self.pick([shape[1:], (*shape, 1), (shape[0], shape[2], shape[1] + 1),
                                                    self.small_shape()]), writable=writable)  # fmt: skip
            if how == "dtype":
                return self.value(self.pick(DTYPE_NAMES), shape, writable=writable)
            return self.pick([*self.decls, *ODD_NAMES])
        if not writable:
            memory = self.pick(["dynamic", "dynamic", "volatile"])
            same = [d.name for d in self.decls.values() if d.memory == memory and not d.indices and d.dtype == dtype
                    and d.shape == shape]  # fmt: skip
            return self.pick(same) if same and self.chance(0.5) else self.declare(memory, dtype, shape).name
        name = self.fresh("r")
        rows = self.pick(["T", "T", self.dim_text(shape[0])])
        # (shape (-1,): no other statement picks it up as a value of a known shape)
        self.decls[name] = Decl("volatile", name, dtype, [rows, *(self.dim_text(n) for n in shape[1:])], (-1,))
        return name

    def save_load(self, loops: list[str]) -> list[str]:
        """`cache.save x >> F;` or `cache.load F >> y;` (and now and then both)."""
        field = self.field()
        d = field.shape if len(field.shape) == 2 else (1, 1)
        pages = self.draw(st.integers(1, 3)) if not self.chance(0.1) else 0
        name = field.name
        if self.odd():
            name = self.pick([*self.decls, *ODD_NAMES, f"{field.name}[0]", f"{field.name}[]", f"{field.name}[..]"])
        lines = []
        if self.chance(0.6):
            lines.append(f"cache.save {self.ragged(field.dtype, (pages, *d), writable=False)} >> {name};")
        if not lines or self.chance(0.4):
            lines.append(f"cache.load {name} >> {self.ragged(field.dtype, (pages, *d), writable=True)};")
        if self.chance(0.5):
            self.draw(st.randoms()).shuffle(lines)
        return lines

    def group(self) -> tuple[list[str], str, int]:
        """A sequence group: 1-3 tables and their lengths vector (one per sequence); a group is
        mostly reused, so fork, pop, masked resets and appends meet the same tables."""
        if self.groups and self.chance(0.6):
            tables, lens, n = self.pick(self.groups)
        else:
            n = self.draw(st.integers(1, 4))
            tables = list(dict.fromkeys(self.seq_table().name for _ in range(self.pick([1, 2, 2, 3]))))
            lens = self.lengths(n)
            self.groups.append((tables, lens, n))
        tables = list(tables)
        if self.odd():  # a table named twice, a plain persistent, an unknown name, a field, no table at all
            how = self.pick(["twice", "other", "drop"])
            if how == "twice":
                tables.append(self.pick(tables))
            elif how == "other":
                tables[self.draw(st.integers(0, len(tables) - 1))] = self.pick([*self.decls, *ODD_NAMES])
            else:
                tables = tables[:1]
        if self.odd():  # lengths: float, bool, a table, a scalar, a dynamic vector, unknown
            lens = self.pick([*self.decls, *ODD_NAMES])
        return tables, lens, n

    def seq_index(self, loops: list[str], n: int) -> str:
        """An index value of a sequence statement: a literal, a size, a loop index, a persistent
        scalar (mostly within the `n` sequences)."""
        if self.odd():
            return self.pick(["-1", "-7", "1000", "9223372036854775807", "9223372036854775808", "18446744073709551615",
                              "18446744073709551616", "1.5", "true", "nope", "N", *self.decls])  # fmt: skip
        return self.pick([str(k) for k in range(n)] * 2 + [str(n), *self.counters[:2], *loops,
                          *(k for k, v in self.sizes.items() if 0 <= v <= 4)])  # fmt: skip

    def sequence(self, loops: list[str]) -> list[str]:
        """`cache.fork K, V [lens] src >> dst at p;`, `cache.pop n K, V [lens] b;` or
        `cache.reset K, V [lens] where mask;`, after new lengths now and then."""
        tables, lens, n = self.group()
        head = f"{', '.join(tables)} [{lens}]" if not self.odd() else self.pick(
            [f"{', '.join(tables)} {lens}", f"{', '.join(tables)}, [{lens}]", f"{', '.join(tables)} [{lens}, {lens}]",
             f"[{lens}]", f"{', '.join(tables)} []"])  # fmt: skip
        lines = self.set_lengths(lens) if self.chance(0.3) else []
        kind = self.pick(["fork", "pop", "where"])
        if kind == "fork":
            src, dst = self.seq_index(loops, n), self.seq_index(loops, n)
            if src == dst and not self.odd():
                dst = next((str(k) for k in range(n + 1) if str(k) != src), dst)
            lines.append(f"cache.fork {head} {src} >> {dst} at {self.seq_index(loops, n)};")
        elif kind == "pop":
            count = self.pick(["", "", "1 ", "2 ", "0 ", *(f"{c} " for c in self.counters[:2])])
            if self.odd():
                count = self.pick(["-1 ", "99999999999999999999 ", "1.5 ", "x "])
            lines.append(f"cache.pop {count}{head} {self.seq_index(loops, n)};")
        else:
            if self.odd():  # a mask of another shape, a float or table mask, an unknown name
                mask = self.pick([self.value("bool", (n + 1,)), self.value("bool", (n, 1)), self.value("f32", (n,)),
                                  self.value("bool", ()), *self.tables, "nope"])  # fmt: skip
            else:
                mask = self.value(self.pick(["bool", "bool", "i32", "u8"]), (n,))
            word = "where" if not self.odd() else self.pick(["when", "", "where where"])
            lines.append(f"cache.reset {head} {word} {mask};")
        return lines

    # --- expressions --------------------------------------------------------------------------
    def index(self, loops: list[str]) -> str:
        if self.odd():
            return self.pick(ODD_LITERALS[:10] + ODD_NAMES)
        return self.pick(["0", "1", "2", *(self.counters[:3]), *loops, *loops])

    def slot(self, loops: list[str], slices: bool) -> str:
        if not slices or self.chance(0.5):
            return self.index(loops)
        start = self.pick(["", "0", "1", *loops, *self.counters[:2]])
        end = self.pick(["", "1", "2", "-1", "-2", *loops, *self.counters[:2]])
        return f"{start}..{end}"

    def access(self, table: Decl, loops: list[str], *, slices: bool) -> str:
        rank = len(table.indices)
        slices = slices and (table.table or self.odd())  # an `@auto_dim` variable takes scalar indices
        if self.odd():
            rank = self.draw(st.integers(0, 4))
        form = self.draw(st.integers(0, 9))
        if form == 0 and slices:
            return table.name  # the whole table
        if form == 1 and slices:
            return f"{table.name}[]"
        slots = [self.slot(loops, slices) for _ in range(rank)]
        trailing = "," if self.chance(0.05) else ""
        return f"{table.name}[{', '.join(slots)}{trailing}]"

    def operand(self, dtype: str, shape: tuple[int, ...], loops: list[str]) -> str:
        if loops and self.chance(0.1):
            return f"{self.prefix_constant(dtype, shape)}[{self.pick(loops)}]"
        return self.value(dtype, shape)

    # --- statements ---------------------------------------------------------------------------
    def setting(self, key: str, in_shapes: list[tuple[int, ...]], dtype: str) -> str | None:
        rank = len(in_shapes[0]) if in_shapes else 0
        if self.odd():
            return f"{key}={self.pick(ODD_SETTINGS)}"
        spec = setting_spec(key)
        if key in ("axis",):
            return f"axis={self.draw(st.integers(-rank, rank - 1)) if rank else 0}"
        if key == "axes":
            axes = sorted(self.draw(st.sets(st.integers(0, rank - 1), max_size=rank))) if rank else []
            return f"axes=[{', '.join(map(str, axes))}]"
        if key == "perm":
            perm = list(range(rank))
            self.draw(st.randoms()).shuffle(perm)
            return f"perm=[{', '.join(map(str, perm))}]"
        if key == "shape":
            size = int(np.prod(in_shapes[0])) if in_shapes else 1
            shape = self.pick([[size], [1, size], [size, 1]] + ([[2, size // 2]] if size % 2 == 0 else []))
            return f"shape=[{', '.join(map(str, shape))}]"
        if key == "to":
            return f"to={self.pick(DTYPE_NAMES)}"
        if key == "acc":
            return None if self.chance(0.7) else f"acc=[{self.pick(DTYPE_NAMES)}]"
        if key == "position":
            return f"position={self.pick([self.counter(), '0', '3'])}"
        if key in ("approximate",):
            return f'approximate="{self.pick(["none", "tanh"])}"'
        if key in ("rounding_mode",):
            return f'rounding_mode="{self.pick(["nearest", "relu", "trunc"])}"'
        if spec is not None and spec.scalar_kinds == ("bool",):
            return f"{key}={self.pick(['true', 'false'])}"
        if key == "bits":
            return f"bits={self.pick([0, 1, 3, 7])}"
        if spec is not None and spec.scalar_kinds == ("float",):
            return f"{key}={self.pick(['1e-5', '0.5', '10000.0', '1.0'])}"
        return f"{key}={self.pick(['0', '1', '-1', '0.5', '2.5', 'true', 'inf', '-3'])}"

    def op(self, loops: list[str]) -> list[str]:
        ops = _ops()
        name = self.pick(sorted(ops))
        spec = ops[name]
        dtype = self.pick(sorted(spec.dtypes or DTYPE_NAMES))
        shape = self.small_shape()
        arity = spec.arity
        if name == "matmul":
            m, k, n = self.small_shape(3)
            shapes = [(m, k), (k, n)]
        elif name == "attention":
            h, d, t = self.small_shape(3)
            shapes = [(h, d), (t, h, d), (t, h, d)] if self.chance(0.5) else [(h, d), (t, d), (t, d)]
        elif name == "concat":
            shapes = [shape, shape]
        elif name == "rope":
            shapes = [(*shape[:-1], 2 * self.draw(st.integers(1, 2)))]
        elif spec.broadcast and self.chance(0.2):
            shapes = [shape, ()] if arity == 2 else [shape] * arity
        else:
            shapes = [shape] * arity
        dtypes = [dtype] * arity
        if arity > 1 and self.chance(0.15):  # inputs of different dtypes (the verifier decides)
            dtypes = [self.pick(sorted(spec.dtypes or DTYPE_NAMES)) for _ in range(arity)]
        if name == "filter":  # filter(a, b, cond): cond of any dtype
            dtypes[2] = self.pick(["bool", dtype, "i32", "f32"])
        settings = [s for s in (self.setting(k, shapes, dtype) for k in spec.settings
                                if self.chance(0.6) or k in ("to", "perm", "axes")) if s]  # fmt: skip
        if self.odd():
            shapes = [self.small_shape() for _ in range(self.draw(st.integers(0, 4)))]
        args = [self.operand(d, s, loops) for d, s in zip(dtypes + [dtype] * 4, shapes)]
        out_dtype = spec.output_dtype_for(dtypes, dict(s.split("=", 1) for s in settings)) or dtype
        out_shape = shapes[0] if shapes else ()
        if spec.shape_rule is not None:
            try:
                out_shape = tuple(spec.shape_rule([list(s) for s in shapes], self.py_settings(settings)))
            except Exception:  # noqa: BLE001, S110 - the generator's guess; the verifier has the last word
                pass
        if any(not isinstance(n, int) or n < 0 or n > 64 for n in out_shape):
            out_shape = shapes[0] if shapes else ()
        if out_dtype not in DTYPE_NAMES:
            out_dtype = dtype
        inplace = args and spec.inplace and self.chance(0.2) and getattr(self.decls.get(args[0]), "memory", "") == "volatile"
        out = args[0] if inplace else self.value(out_dtype, out_shape, writable=True)
        return [f"op {name}({', '.join(args + settings)}) >> {out};"]

    @staticmethod
    def py_settings(settings: list[str]) -> dict:
        out = {}
        for s in settings:
            key, text = s.split("=", 1)
            if text.startswith("["):
                items = [t.strip() for t in text[1:-1].split(",") if t.strip()]
                try:
                    out[key] = [int(t) for t in items]
                except ValueError:
                    out[key] = items
            else:
                try:
                    out[key] = int(text)
                except ValueError:
                    try:
                        out[key] = float(text)
                    except ValueError:
                        out[key] = {"true": True, "false": False}.get(text, text.strip('"'))
        return out

    def cache_statement(self, loops: list[str]) -> list[str]:
        kind = self.pick(["write", "write", "read", "read", "inc", "dec", "reset", "plain",
                          *["append", "field", "sequence"] * 2])  # fmt: skip
        if kind == "plain":
            return self.plain_persistent(loops)
        if kind == "append":
            return self.append(loops)
        if kind == "field":
            return self.save_load(loops)
        if kind == "sequence":
            return self.sequence(loops)
        if kind in ("inc", "dec"):
            amount = self.pick(["", "", "2 ", "0 "]) if not self.odd() else self.pick(["300 ", "99999999999999999999 ", "-1 "])
            target = self.counter() if not self.odd() else self.pick([*self.decls, "nope"])
            return [f"cache.{'increment' if kind == 'inc' else 'decrement'} {amount}{target};"]
        table = self.table()
        if kind == "write":
            value = self.value(table.dtype, table.shape)
            return [f"cache.write {value} >> {self.access(table, loops, slices=self.odd())};"]
        if kind == "read":
            access = self.access(table, loops, slices=True)
            if not table.table and self.chance(0.7):  # `@auto_dim`: a scalar index per index
                access = f"{table.name}[{', '.join(self.index(loops) for _ in table.indices)}]"
            scalar = ".." not in access and "[" in access and "[]" not in access and ",]" not in access
            if scalar and access.count(",") + 1 == len(table.indices):
                dst = self.value(table.dtype, table.shape, writable=True)
            else:
                dst = self.fresh("r")
                lead = [self.pick(["T", "1", "2"]) for _ in range(max(1, len(table.indices) - access.count("..") + 1))]
                dims = [*lead, *(self.dim_text(n) for n in table.shape)] if self.chance(0.8) else ["T"]
                self.decls[dst] = Decl("volatile", dst, table.dtype, dims, ())
            return [f"cache.read {access} >> {dst};"]
        target = self.access(table, loops, slices=False) if self.chance(0.5) else table.name
        return [f"cache.reset {target};"]

    def statement(self, loops: list[str], depth: int) -> list[str]:
        kind = self.pick(["op"] * 5 + ["cache"] * 4 + ["loop", "branch", "transfer", "assign", "return", "misc"])
        if kind == "op":
            return self.op(loops)
        if kind == "cache":
            return self.cache_statement(loops)
        if kind == "loop" and depth < 3:
            var = self.fresh("i") if not self.odd() else self.pick(["i", "N", *self.counters, "x"])
            start = self.pick(["0", "0", "1"]) if not self.odd() else self.pick(ODD_LITERALS[:6] + ["L"])
            end = self.pick(["2", "0", *self.small_sizes(), *([self.bound()] if depth == 0 else [])]) if not self.odd() \
                else self.pick(["-1", "-7", "100", "1.5", "nope", "x0", "T"])  # (never a huge bound: an endless loop)
            body = self.body([*loops, var], depth + 1, self.draw(st.integers(0, 3)))
            return [f"loop {self.fresh('L')} ({var} in {start}..{end}) {{", *("    " + s for s in body), "}"]
        if kind == "branch" and depth < 3:
            target = self.pick(self.pending_blocks + [self.fresh("b")]) if self.chance(0.8) else self.pick(["entry", "nope"])
            if target not in self.blocks and target not in ("entry", "nope") and target not in self.pending_blocks:
                self.pending_blocks.append(target)
            if self.chance(0.5):
                cond = self.value("bool", ()) if self.chance(0.6) else self.counter()
                other = self.fresh("b")
                self.pending_blocks.append(other)
                return [f"branch {cond} {target} {other};"]
            return [f"branch {target};"]
        if kind == "transfer":
            dtype, shape = self.pick(["f32", "i32", "bool"]), self.small_shape()
            return [f"transfer {self.value(dtype, shape)} >> {self.value(dtype, shape, writable=True)};"]
        if kind == "assign":
            dtype, shape = self.pick(["f32", "i32", "f16"]), self.small_shape()
            temp = Decl("temp", self.fresh("t"), dtype, [self.dim_text(n) for n in shape], shape)
            self.temps.append(temp)
            return [f"assign {temp.name}: {dtype}[{', '.join(temp.dims)}];"]
        if kind == "return":
            return ["return;"]
        if kind == "misc" or kind in ("loop", "branch"):
            names = [*self.decls] or ["nope"]
            return [self.pick([
                "barrier;", f"dep after({self.pick(names)}) before({self.pick(names)});",
                f"yield {self.pick(names)};", f"await {self.pick(names)};",
            ])]  # fmt: skip
        return []

    def body(self, loops: list[str], depth: int, count: int) -> list[str]:
        return [line for _ in range(count) for line in self.statement(loops, depth)]

    # --- the program --------------------------------------------------------------------------
    def source(self) -> str:
        self.blocks["entry"] = self.body([], 0, self.draw(st.integers(1, 8)))
        while self.pending_blocks and len(self.blocks) < 6:
            name = self.pending_blocks.pop(0)
            if name not in self.blocks:
                self.blocks[name] = self.body([], 1, self.draw(st.integers(0, 3)))
        if self.odd() and len(self.blocks) > 1:
            del self.blocks[self.pick(sorted(self.blocks)[1:])]  # a branch to a missing block
        return Layout(self.draw).text(self.decls, self.blocks)

    def model(self) -> dict:
        return {"sizevars": dict(self.sizes), "tensors": self.tensors, "metadata": self.metadata}


class Layout:
    """Writes declarations and blocks as text, in one of many equivalent layouts."""

    def __init__(self, draw):
        self.draw = draw
        self.comments = draw(st.booleans())
        self.compact = draw(st.booleans())

    def ws(self) -> str:
        if not self.comments:
            return " "
        return self.draw(st.sampled_from([" ", " ", "\n", "\t", " /* c */ ", " /* a /* nested */ b */ ", " // line\n"]))

    def decl_text(self, d: Decl) -> str:
        head = f"{d.name}({', '.join(d.indices)})" if d.indices else d.name
        dims = f"[{', '.join(d.dims)}]" if d.dims or self.draw(st.integers(0, 9)) == 0 else ""
        attrs = "".join(f" {a}" for a in d.attrs)
        return f"{head}:{self.ws()}{d.dtype}{dims}{attrs};"

    def text(self, decls: dict[str, Decl], blocks: dict[str, list[str]]) -> str:
        sections: list[str] = []
        by_memory: dict[str, list[Decl]] = {}
        for d in decls.values():
            by_memory.setdefault(d.memory, []).append(d)
        for memory, items in by_memory.items():
            split = self.draw(st.integers(1, 2)) if len(items) > 1 else 1
            for part in range(split):
                chunk = items[part::split]
                inner = self.ws().join(self.decl_text(d) for d in chunk)
                sections.append(f"{memory}{self.ws()}{{{self.ws()}{inner}{self.ws()}}}")
        for name, body in blocks.items():
            joined = self.ws().join(body) if self.compact else "\n    " + "\n    ".join(body) + "\n"
            sections.append(f"block {name} {{{joined}}}")
        order = self.draw(st.permutations(range(len(sections))))
        if self.draw(st.booleans()):
            order = sorted(order, key=lambda i: sections[i].startswith("block"))  # declarations first
        body = "\n".join(sections[i] for i in order)
        if self.draw(st.booleans()):
            return f"graph! {{\n{body}\n}}" + self.draw(st.sampled_from(["", ";", "\n"]))
        return body + "\n"


@st.composite
def oi_programs(draw) -> tuple[str, dict, int]:
    gen = OiGen(draw)
    text = gen.source()
    return text, gen.model(), draw(st.integers(0, 2**32 - 1))


# --- values -------------------------------------------------------------------------------------


def random_array(rng: np.random.Generator, dtype: str, shape: tuple[int, ...]) -> np.ndarray:
    """Random values of DSL `dtype`: small integers (mostly valid indices), floats with specials."""
    shape = tuple(shape)
    if dtype == "bool":
        return rng.integers(0, 2, shape).astype(bool)
    if dtype in INT_RANGES:
        low, high = INT_RANGES[dtype]
        if rng.random() < 0.8:
            low, high = max(low, -1), min(high, 4)
        return rng.integers(low, high, shape, endpoint=True, dtype=np.int64 if high < 2**63 else np.uint64).astype(
            numpy_dtype(dtype))  # fmt: skip
    special = np.array([0.0, -0.0, np.inf, -np.inf, np.nan, 1e30, -2.5, 65504.0])
    values = np.where(rng.random(shape) < 0.1, rng.choice(special, shape), rng.normal(0, 2, shape))
    with np.errstate(over="ignore", invalid="ignore"):
        return np.asarray(values).astype(numpy_dtype(dtype))


# --- the driver ---------------------------------------------------------------------------------

CPU_BUDGET = HeavyBudget(10)


def run_program(text: str, model_kwargs: dict, seed: int, *, target: str, steps: int = 2,
                cpu: bool | None = None, filename: str = FILE) -> None:  # fmt: skip
    """`text` through every public entry point; raises `Bug` on anything but an `OiError`."""
    graph, error = call("parse_graph", oi.parse_graph, text, filename)
    if graph is None:
        count(target, f"rejected: {type(error).__name__}")
        return
    count(target, "parsed and verified")
    model, error = call("Model(...)", lambda: oi.Model(**model_kwargs))
    if model is None:
        return
    devices = ["reference"]
    if cpu if cpu is not None else CPU_BUDGET.take():
        devices.append("cpu")
    for device in devices:
        sim, error = call(f"Simulator(device={device!r})", oi.Simulator, model, graph, device=device)
        if sim is None:
            count(target, f"{device}: refused ({type(error).__name__})")
            continue
        exe, error = call(f"make_executor ({device})", sim.make_executor)
        if exe is None:
            continue
        count(target, f"{device}: executor")
        rng = np.random.default_rng(seed)
        dynamic = [d for d in exe.bound.decls.values() if d.memory == "dynamic"]
        for n in range(steps):
            for var in dynamic:
                shape = tuple(exe.bound.shapes[var.var_name])
                if int(np.prod(shape, dtype=object)) > 4096:
                    shape = (2, 3)
                elif rng.random() < 0.03:
                    shape = (*shape, 2)
                call(f"insert ({device})", exe.insert, {var.var_name: random_array(rng, var.dtype, shape)})
            _, error = call(f"step ({device})", exe.step)
            count(target, f"{device}: step {'ok' if error is None else type(error).__name__}")
        for name in [*exe.bound.decls, "no_such_variable"]:
            call(f"fetch ({device})", exe.fetch, name)
            call(f"state ({device})", exe.state, name)
            call(f"table_sizes ({device})", exe.table_sizes, name)
            call(f"page_table ({device})", exe.page_table, name)
            call(f"table_nbytes ({device})", exe.table_nbytes, name)


# --- byte-level mutations ---------------------------------------------------------------------

TOKENS = [b"", b";", b"{", b"}", b"[", b"]", b"(", b")", b"..", b">>", b",", b"@", b"0", b"-1", b"*", b"=",
          b"99999999999999999999", b"x", b"N", b"f32", b"i4", b"bool", b"op ", b"cache.read ", b"cache.write ",
          b"loop ", b"block ", b"@table", b"@fixed(", b"@init(", b"@auto_dim(", b"@pattern(", b"@ref(", b'"',
          b"/*", b"*/", b"//", b"\\", "é".encode(), b"\x00", b"\xff", b"\xc3", b"0x", b"1e", b"::", b"graph!",
          b"\r\n", b"\t", b"\x0b", "\u2028".encode(), "\ufeff".encode(), b"\"{l}\"", b"-", b"!",
          b"cache.append ", b"cache.save ", b"cache.load ", b"cache.fork ", b"cache.pop ", b"cache.reset ",
          b"@on_out_of_range(", b"skip", b"error", b" where ", b" at ", b"[lens]", b", V", b"@paged(", b"page = ",
          b"pages = "]  # fmt: skip


@st.composite
def byte_mutations(draw, seeds: dict[str, bytes]) -> tuple[str, bytes]:
    """A seed's bytes with 1-8 random edits: bit flips, byte sets, deletions, insertions of
    interesting tokens, duplicated or moved ranges, splices with another seed."""
    name = draw(st.sampled_from(sorted(seeds)))
    data = bytearray(seeds[name])
    for _ in range(draw(st.integers(1, 8))):
        if not data:
            data += draw(st.binary(min_size=1, max_size=8))
            continue
        at = draw(st.integers(0, len(data) - 1))
        how = draw(st.sampled_from(["flip", "set", "delete", "insert", "token", "dup", "move", "splice", "digits"]))
        if how == "flip":
            data[at] ^= 1 << draw(st.integers(0, 7))
        elif how == "set":
            data[at] = draw(st.integers(0, 255))
        elif how == "delete":
            del data[at : at + draw(st.integers(1, 16))]
        elif how == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=8))
        elif how == "token":
            data[at:at] = draw(st.sampled_from(TOKENS))
        elif how == "dup":
            size = draw(st.integers(1, 64))
            data[at:at] = data[at : at + size]
        elif how == "move":
            size = draw(st.integers(1, 64))
            chunk = data[at : at + size]
            del data[at : at + size]
            to = draw(st.integers(0, len(data)))
            data[to:to] = chunk
        elif how == "splice":
            other = seeds[draw(st.sampled_from(sorted(seeds)))]
            start = draw(st.integers(0, max(0, len(other) - 1)))
            data[at:] = other[start : start + draw(st.integers(0, 400))] + data[at:]
        else:
            match = list(re.finditer(rb"\d+", bytes(data)))
            if match:
                m = draw(st.sampled_from(match))
                data[m.start() : m.end()] = str(draw(st.sampled_from(
                    [0, 1, 2, 7, 64, 1023, 2**31, 2**32, 2**63 - 1, 2**63, 2**64, 10**20, -1]))).encode()  # fmt: skip
    return name, bytes(data)


def model_for(graph, rng: np.random.Generator) -> dict:
    """A model a parsed graph can bind to: every size name 2, every constant a random tensor of
    its declared shape (a prefix table's pattern for indices 0 and 1)."""
    sizes: dict[str, int] = {}
    for var in graph.vars.values():
        for dim in var.var_type.dim_texts:
            for part in dim.split("*"):
                if not part.isdigit():
                    sizes[part] = 2
    tensors = {}
    for var in graph.vars.values():
        if var.memory != "constant":
            continue
        try:
            shape = tuple(int(np.prod([sizes.get(p, int(p) if p.isdigit() else 2) for p in d.split("*")]))
                          for d in var.var_type.dim_texts)  # fmt: skip
            if np.prod(shape, dtype=object) > 4096:
                continue
            value = random_array(rng, var.dtype, shape)
        except Exception:  # noqa: BLE001, S112 - an odd declaration: leave it out of the model
            continue
        if var.pattern is not None:
            for n in range(2):
                tensors[re.sub(r"\{\w+\}", str(n), var.pattern.data)] = value
        else:
            tensors[var.ref.data if var.ref is not None else var.var_name] = value
    return {"sizevars": sizes, "tensors": tensors}


__all__ = ["FILE", "Bug", "OiGen", "byte_mutations", "model_for", "oi_programs", "random_array", "run_program"]
