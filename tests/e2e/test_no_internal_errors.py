"""No internal error ever escapes: whatever graph, model or input a user gives, the public API
raises an `oi.OiError` (never an `oi.InternalError`, never a bare Python exception).

Random graphs are drawn from a typed generator that also writes malformed-but-parseable ones
(unknown variables, wrong ranks and dtypes, bad and huge/negative indices, missing blocks,
settings of the wrong type, empty shapes, missing or mismatched model tensors...), the
KV-serving statements among them (`cache.append`, `cache.save`/`cache.load`, `cache.fork`,
`cache.pop`, `cache.reset ... where`; and non-tables, tables named twice, masks of another
shape, persistent save sources in their places), tables, sequence tables and fields `@paged`
now and then (the attribute anywhere among the others; malformed: `@paged(page = 0)`, without a
page size, with an option twice or an unknown one, on an `@auto_dim` tensor or a plain
variable); each goes through `oi.parse_graph`, `oi.Simulator(..., device="reference")` and
`device="cpu"`, `make_executor()`, a few steps with random inputs, `fetch`, `state`,
`table_sizes`, `page_table` and `table_nbytes`. Random text mutations of the bundled examples
(`examples/*.oi`) go through `oi.parse_graph`, and those that still parse through both
simulators too.

CI runs a fixed (derandomized) set; `OI_FUZZ_EXAMPLES=N` draws N fresh examples per test
(`OI_FUZZ_SLOPPY=0.1` fixes how often a choice is malformed; by default it varies per graph). The
internal errors this file found are pinned by the plain tests at the end.
"""

from __future__ import annotations

import os
import re
import textwrap
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import oi_compiler as oi
from oi_compiler.dtypes import DTYPE_NAMES, numpy_dtype
from oi_compiler.ops.registry import setting_spec

pytestmark = pytest.mark.filterwarnings("ignore::RuntimeWarning")  # numpy's overflow notes on odd @init values

FUZZ = int(os.environ.get("OI_FUZZ_EXAMPLES", "0"))
EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
FILE = "fuzz.oi"


def fuzz(default: int):
    """A fixed set of `default` examples in CI; `OI_FUZZ_EXAMPLES=N` draws N fresh ones."""
    common = {"deadline": None, "suppress_health_check": list(HealthCheck), "database": None}
    if FUZZ:
        return settings(max_examples=FUZZ, **common)
    return settings(max_examples=default, derandomize=True, **common)


def no_internal_error(call, *args, **kwargs):
    """`call(...)`'s result, or the `OiError` it raised; an `InternalError` fails the test (any other
    exception escapes and fails it too)."""
    try:
        return call(*args, **kwargs), None
    except oi.InternalError as e:
        raise AssertionError(f"internal error escaped: {e}") from e.__cause__
    except oi.OiError as e:
        assert str(e)  # the diagnostic prints
        return None, e


# --- running a graph through every public entry point ---------------------------------------------


def random_value(rng: np.random.Generator, dtype: str, shape: tuple[int, ...]) -> np.ndarray:
    kind = np.dtype(numpy_dtype(dtype)).kind if dtype not in ("bool",) else "b"
    if kind == "b":
        return rng.integers(0, 2, shape).astype(bool)
    if kind in "iu":
        info = np.iinfo(np.dtype(numpy_dtype(dtype))) if dtype not in ("i4", "u4") else None
        low, high = (info.min, info.max) if info is not None else ((-8, 7) if dtype == "i4" else (0, 15))
        if rng.random() < 0.7:  # small values: indices that mostly land in range
            low, high = max(low, -1), min(high, 5)
        high = min(high, 2**63 - 1)
        return rng.integers(low, high, shape, endpoint=True, dtype=np.int64).astype(numpy_dtype(dtype))
    special = rng.choice(np.array([0.0, -0.0, np.inf, -np.inf, np.nan, 1e30, -2.5], np.float64), shape)
    value = np.where(rng.random(shape) < 0.1, special, rng.normal(0, 3, shape))
    with np.errstate(over="ignore", invalid="ignore"):
        return value.astype(numpy_dtype(dtype))


def run_graph(text: str, model: dict, seed: int, steps: int = 3, devices=("reference", "cpu")) -> None:
    """`text` through parse, verify, both simulators, a few steps and every read-out; `model` is
    `oi.Model`'s keyword arguments."""
    graph, error = no_internal_error(oi.parse_graph, text, FILE)
    if graph is None:
        return
    model, error = no_internal_error(oi.Model, **model)
    if model is None:
        return
    for device in devices:
        sim, error = no_internal_error(oi.Simulator, model, graph, device=device)
        if sim is None:
            continue
        exe, error = no_internal_error(sim.make_executor)
        if exe is None:
            continue
        rng = np.random.default_rng(seed)
        dynamic = [v for v in exe.bound.decls.values() if v.memory == "dynamic"]
        for _ in range(steps):
            for var in dynamic:
                shape = exe.bound.shapes[var.var_name]
                if np.prod(shape, dtype=object) > 4096 or max(shape, default=0) > 4096:
                    shape = (3, 5)  # too big to draw: a wrong shape, an ExecutionError
                elif rng.random() < 0.05:
                    shape = (*shape, 2)  # a wrong shape
                no_internal_error(exe.insert, **{var.var_name: random_value(rng, var.dtype, shape)})
            no_internal_error(exe.step)
        for name in [*exe.bound.decls, "no_such_variable"]:
            no_internal_error(exe.fetch, name)
            no_internal_error(exe.state, name)
            no_internal_error(exe.table_sizes, name)
            no_internal_error(exe.page_table, name)
            no_internal_error(exe.table_nbytes, name)


# --- the graph generator --------------------------------------------------------------------------

SIZES = {"N": 2, "M": 3, "Z": 0, "B": 1}
DIMS = ["N", "M", "1", "2", "3"]
ODD_DIMS = ["Z", "0", "U", "N*M", "3*4096", "18446744073709551617"]  # (a 16 GiB one would really be allocated)
INT_DTYPES = ["i8", "i16", "i32", "i64", "u8", "u16", "u32", "u64", "i4", "u4"]
FLOAT_DTYPES = ["f32", "f64", "f16", "bf16", "f8"]
#: odd loop ends that still finish quickly (a huge bound is a valid, endless program)
LOOP_ENDS = ["-1", "-7", "4", "U", "x", "N", "1.5", "go", "r", "W", "t0", "nope"]
OPS = oi.all_ops()
#: ops that take f32 inputs of one shape and give that shape: (name, arity, settings)
CLEAN_OPS = [
    *((name, 1, "") for name in ["abs", "ceil", "exp", "floor", "neg", "relu", "sigmoid", "silu", "tanh",
                                 "sqrt", "rsqrt", "round", "trunc", "sign", "gelu", "log", "recip"]),
    *((name, 2, "") for name in ["add", "sub", "mul", "div", "max", "min"]),
    ("fma", 3, ""), ("softmax", 1, "axis=-1"), ("rms_norm", 1, "eps=1e-5"), ("layer_norm", 1, ""),
    ("clamp", 1, "min=-1.0, max=1.0"), ("fill", 1, "value=2.5"), ("relu", 1, "alpha=0.1, clamp_max=6.0"),
    ("rope", 1, "position=pos"), ("div", 2, "div_by_zero_mask=0.0"),
]  # fmt: skip
KV_NAMES = {"lens", "ln", "off", "done", "xa0", "xa1", "F", "xr", "yr"}  # kv_declarations'
PAGED = ["@paged(page = 1)", "@paged(page = 2)", "@paged(page = 3, pages = 1)", "@paged(pages = 2, page = 4)",
         "@paged(page = 2147483647)"]  # fmt: skip
#: refused by the parser: out of range, no page size, an option twice, an unknown option, not a number
ODD_PAGED = ["@paged(page = 0)", "@paged(pages = 2)", "@paged(page = 2, page = 3)", "@paged(size = 2)",
             "@paged(page = 2147483648)", "@paged()", "@paged(page = -1)", "@paged(page = N)",
             "@paged(page = 2) @paged(page = 2)"]  # fmt: skip
ODD_INDICES = ["-1", "-7", "4", "1000", "2147483648", "9223372036854775807", "18446744073709551616",
               "100000000000000000000000", "U", "x", "N", "1.5"]  # fmt: skip


class Gen:
    """One random graph: declarations, blocks, a model and how sloppy its choices are."""

    def __init__(self, draw):
        self.draw = draw
        self.sloppy = draw(st.sampled_from([0.0, 0.0, 0.0, 0.02, 0.05, 0.15, 0.4])) if os.environ.get("OI_FUZZ_SLOPPY") is None else float(os.environ["OI_FUZZ_SLOPPY"])
        self.vars: dict[str, tuple[str, str, list[str], list[str]]] = {}  # name: (memory, dtype, dims, indices)
        self.tables: list[str] = []
        self.scalars: list[str] = []  # persistent integer scalars (table indices)
        self.decls: dict[str, list[str]] = {"dynamic": [], "volatile": [], "constant": [], "persistent": []}
        self.tensors: dict[str, np.ndarray] = {}
        self.blocks = ["entry"]
        self.temps = 0
        self.seq: list[str] = []  # sequence tables (cache.append, fork, pop, reset ... where)

    def odd(self) -> bool:
        return self.sloppy > 0 and self.draw(st.floats(0, 1)) < self.sloppy

    def pick(self, items):
        return self.draw(st.sampled_from(list(items)))

    # --- declarations ---------------------------------------------------------------------------
    def dtype(self, base: str = "f32") -> str:
        return self.pick(DTYPE_NAMES) if self.odd() else base

    def dims(self, base: list[str]) -> list[str]:
        if not self.odd():
            return base
        return self.draw(st.lists(st.sampled_from(DIMS + ODD_DIMS), max_size=3))

    def declare(self, memory: str, name: str, dtype: str, dims: list[str], indices=(), attrs: str = "") -> str:
        self.vars[name] = (memory, dtype, dims, list(indices))
        head = f"{name}({', '.join(indices)})" if indices else name
        self.decls[memory].append(f"{head}: {dtype}[{', '.join(dims)}] {attrs};")
        return name

    def declarations(self) -> None:
        shape = self.pick([["N"], ["N", "M"], ["2"], []])
        self.shape = shape
        for n in range(self.draw(st.integers(1, 3))):
            self.declare("dynamic", f"x{n}", self.dtype(), self.dims(shape))
        self.values = [f"x{n}" for n in range(len(self.decls["dynamic"]))]
        self.declare("dynamic", "go", self.dtype("bool"), [])
        self.declare("dynamic", "pos", self.dtype(self.pick(["i32", "i64", "u8"])), self.dims([]))
        for n in range(self.draw(st.integers(1, 3))):
            dtype = self.dtype()
            self.declare("volatile", f"y{n}", dtype, self.dims(shape), attrs=self.init(dtype))
            self.values.append(f"y{n}")
        self.declare("volatile", "r", self.dtype(), self.dims(["T", *shape]))
        self.declare("volatile", "s", self.dtype(), self.dims([]))
        if self.draw(st.booleans()):
            dtype, dims = self.dtype(), self.dims([*shape, *shape[-1:]] or ["2"])
            self.declare("constant", "W", dtype, dims)
            self.model_tensor("W", dtype, dims)
        if self.draw(st.booleans()):
            dtype, dims = self.dtype(), self.dims(shape)
            self.declare("constant", "P", dtype, dims, ["l"], '@pattern("layer.{l}.p")')
            for n in range(self.draw(st.integers(0, 2))):
                self.model_tensor(f"layer.{n}.p", dtype, dims)
        for n in range(self.draw(st.integers(1, 2))):
            dtype = self.dtype(self.pick(["i32", "i64", "u8", "i8"]))
            self.scalars.append(self.declare("persistent", f"t{n}", dtype, self.dims([]), attrs=self.init(dtype)))
        for n in range(self.draw(st.integers(0, 3))):
            rank = self.draw(st.integers(1, 2))
            indices = ["i", "j"][:rank] if not self.odd() else self.draw(st.lists(st.sampled_from("ijk"), max_size=3))
            attrs = ["@table"] if not self.odd() else self.draw(st.lists(st.sampled_from(
                ["@table", "@auto_dim(i)", "@auto_dim(k)", "@fixed(i=2)", "@fixed(j=0)", "@fixed(i=-1)",
                 "@paged(page = 2)"]), max_size=2))  # fmt: skip
            if self.draw(st.booleans()):
                attrs.append(f"@fixed(i={self.pick(['1', '2', '4'])})")
            dtype = self.dtype("f32")
            if self.draw(st.booleans()):
                attrs.append(self.init(dtype))
            self.paged(attrs)
            self.tables.append(self.declare("persistent", f"K{n}", dtype, self.dims(shape), indices, " ".join(attrs)))
        if self.draw(st.booleans()):  # (`@paged` on `@auto_dim`: refused)
            auto = "@auto_dim(i)" if not self.odd() else self.pick(["@auto_dim(i) @paged(page = 2)",
                                                                   "@paged(page = 1) @table @auto_dim(i)"])
            self.declare("persistent", "A", self.dtype(), self.dims(["N"]), ["i"], auto)
            self.tables.append("A")
        if self.draw(st.booleans()):  # (`@paged` on a variable that is no table: refused)
            dtype = self.dtype()
            paged = " @paged(page = 2)" if self.odd() else ""
            self.declare("persistent", "acc", dtype, self.dims(shape), attrs=self.init(dtype) + paged)
        if self.draw(st.booleans()):
            self.kv_declarations()

    def kv_declarations(self) -> None:
        """The KV-serving statements' variables: sequence tables `KV0(b, t)` and `KV1(b, h, t)`
        sharing the lengths `lens` (entries of the values' shape, so ordinary writes and reads fit
        them too), their append sources `xa0`/`xa1` and offsets `off`, new lengths `ln`, a mask
        `done`, and a field `F(s): f32[2, 3]` with a RAGGED source `xr` and destination `yr`."""
        nb = self.pick(["2", "N", "3", "B"])
        self.lens_dtype = self.dtype(self.pick(["u8", "i8", "i64"]))
        lens_init = self.pick(["", "@init(0)", "@init(2)", "@init(3)"])
        if self.odd():
            lens_init = self.init(self.lens_dtype)
        self.declare("persistent", "lens", self.lens_dtype, self.dims([nb]), attrs=lens_init)
        self.declare("dynamic", "ln", self.dtype(self.lens_dtype), self.dims([nb]))
        self.declare("dynamic", "off", self.dtype(self.pick(["i32", "i64", "u8", "u64"])), self.dims([nb]))
        self.declare("dynamic", "done", self.dtype(self.pick(["bool", "bool", "i32"])), self.dims([nb]))
        for n in range(self.draw(st.integers(1, 2))):
            indices = [["b", "t"], ["b", "h", "t"]][n]
            if self.odd():  # one index, none, a repeated one
                indices = self.draw(st.lists(st.sampled_from("bht"), max_size=3))
            attrs = ["@table"] if not self.odd() else self.draw(st.lists(st.sampled_from(
                ["@table", "@auto_dim(t)", "@fixed(t=0)", "@fixed(b=-1)", "@fixed(h=1)"]), max_size=2))  # fmt: skip
            fixed = [f"t={self.pick(['2', '4', '8'])}"] if self.draw(st.booleans()) else []
            if self.draw(st.integers(0, 3)) == 0:
                fixed.append(f"b={self.pick(['1', '2'])}")
            if fixed:
                attrs.append(f"@fixed({', '.join(fixed)})")
            dtype, entry = self.dtype("f32"), self.dims(self.shape)
            if self.draw(st.booleans()):
                attrs.append(self.init(dtype))
            self.paged(attrs)
            name = self.declare("persistent", f"KV{n}", dtype, entry, indices, " ".join(attrs))
            self.seq.append(name)
            self.tables.append(name)  # ordinary writes, reads and resets name them too
            heads = ["2"] if len(indices) == 3 else []
            new = self.pick(["1", "2", "Z"])  # L_new (Z = 0: the empty problem)
            self.declare("dynamic", f"xa{n}", self.dtype(dtype), self.dims([nb, *heads, new, *entry]))
        field = self.pick(["@table", "@table", "@table @paged(page = 1)", "@paged(page = 3, pages = 1) @table"])
        if self.odd():
            field = self.pick(["@table @fixed(s=2)", "", "@auto_dim(s)", "@auto_dim(s) @paged(page = 2)"])
        self.declare("persistent", "F", self.dtype("f32"), self.dims(["2", "3"]), ["s"], field)
        self.declare("dynamic", "xr", self.dtype("f32"), self.dims([self.pick(["M", "N", "Z", "1"]), "2", "3"]))
        self.declare("volatile", "yr", self.dtype("f32"), self.dims(["T", "2", "3"]))

    def paged(self, attrs: list[str]) -> None:
        """A third of the time, `@paged` somewhere among a table's attributes (sloppy: one refused)."""
        if self.draw(st.integers(0, 2)) == 0:
            attrs.insert(self.draw(st.integers(0, len(attrs))), self.pick(ODD_PAGED if self.odd() else PAGED))

    def init(self, dtype: str) -> str:
        if not self.draw(st.booleans()):
            return ""
        if self.odd():
            return f"@init({self.pick(['1.5', '-1', '300', 'true', '99999999999999999999', '-0.0', '1e40'])})"
        return "@init(1.0)" if dtype in FLOAT_DTYPES else "@init(true)" if dtype == "bool" else "@init(0)"

    def model_tensor(self, name: str, dtype: str, dims: list[str]) -> None:
        if self.odd():
            if self.draw(st.booleans()):
                return  # missing: a ModelError
            dims = self.draw(st.lists(st.sampled_from(["1", "2", "3"]), max_size=3))
            dtype = self.pick(DTYPE_NAMES)
        try:
            shape = tuple(int(eval(d, {}, dict(SIZES))) for d in dims)  # noqa: S307 - our own dims
            if np.prod(shape, dtype=object) > 64:
                return
            self.tensors[name] = np.ones(shape, numpy_dtype(dtype))
        except Exception:  # noqa: BLE001 - an unknown size: no tensor, the simulator says so
            return

    # --- statements -----------------------------------------------------------------------------
    def var(self, memory: tuple[str, ...] = ("dynamic", "volatile", "constant", "persistent")) -> str:
        if self.odd():
            return self.pick([*self.vars, "nope", "l", "N"])
        names = [n for n, (m, *_rest) in self.vars.items()  # (the KV statements' variables are theirs)
                 if m in memory and n not in self.tables and n != "P" and n not in KV_NAMES]  # fmt: skip
        return self.pick(names) if names else "nope"

    def index(self, loop_vars: list[str]) -> str:
        if self.odd():
            return self.pick(ODD_INDICES)
        return self.pick(["0", "1", *self.scalars, *loop_vars])

    def slot(self, loop_vars: list[str]) -> str:
        form = self.draw(st.integers(0, 5))
        if form < 3:
            return self.index(loop_vars)
        if form == 3:
            return f"{self.index(loop_vars)}..{self.index(loop_vars)}"
        return self.pick(["..", "0..", "..-1", "1..", ""])

    def access(self, loop_vars: list[str], *, slices: bool) -> str:
        table = self.pick(self.tables) if self.tables and not self.odd() else self.var()
        rank = len(self.vars.get(table, ("", "", [], []))[3])
        if self.odd():
            rank = self.draw(st.integers(0, 3))
        slots = [self.slot(loop_vars) if slices else self.index(loop_vars) for _ in range(rank)]
        return f"{table}[{', '.join(slots)}]" if slots or self.draw(st.booleans()) else table

    def operand(self, loop_vars: list[str]) -> str:
        if self.sloppy == 0:
            return self.pick(self.values)
        name = self.var()
        if name == "P" or (self.vars.get(name, ("",))[0] == "constant" and self.vars[name][3]):
            return f"P[{self.index(loop_vars)}]"
        if self.odd():
            return f"{name}[{self.index(loop_vars)}]"
        return name

    def setting(self, key: str) -> str:
        if self.odd():
            value = self.pick(["1.5", "-3", "true", '"x"', "[1, 2]", "[]", "f32", "nope", "pos", "t0", "inf",
                               "99999999999999999999999", "-9223372036854775809", "[-1, 70000]", "N"])
        else:
            kind = getattr(setting_spec(key), "kind", "scalar")
            if key == "to":
                value = self.pick(DTYPE_NAMES)
            elif key == "acc":
                value = f"[{self.pick(DTYPE_NAMES)}]"
            elif kind == "int_list":
                value = self.pick(["[0]", "[1, 0]", "[2]", "[0, 1]", "[-1]"])
            elif kind == "string":
                value = self.pick(['"tanh"', '"none"', '"nearest"', '"x"'])
            elif key in ("axis", "bits", "position"):
                value = self.pick(["0", "1", "-1", "pos", "t0"])
            elif key in ("causal", "keepdims", "saturate", "select_first"):
                value = self.pick(["true", "false"])
            else:
                value = self.pick(["0.5", "1e-5", "2", "0", "10000.0"])
        return f"{key}={value}"

    def op(self, loop_vars: list[str]) -> str:
        if not self.odd():
            if self.draw(st.integers(0, 5)) == 0 and self.shape:
                return f"op sum_axis({self.pick(self.values)}, axes=[{', '.join(map(str, range(len(self.shape))))}]) >> s;"
            name, arity, settings = self.pick(CLEAN_OPS)
            if name == "rope" and self.shape[-1:] != ["2"]:
                name, settings = "neg", ""
            args = [self.pick(self.values) for _ in range(arity)] + ([settings] if settings else [])
            return f"op {name}({', '.join(args)}) >> {self.pick(self.values[len(self.decls['dynamic']):] or ['y0'])};"
        name = self.pick(OPS) if not self.odd() else self.pick([*OPS, "nope", "cache"])
        spec = OPS.get(name)
        arity = spec.arity if spec is not None and not self.odd() else self.draw(st.integers(0, 4))
        args = [self.operand(loop_vars) for _ in range(arity)]
        keys = list(spec.settings) if spec is not None else []
        if self.odd():
            keys.append(self.pick(["alpha", "axis", "nope", "to", "acc", "shape"]))
        args += [self.setting(k) for k in keys if self.draw(st.booleans()) or k in ("shape", "to", "perm")]
        out = self.var(("volatile", "persistent", "dynamic")) if not self.draw(st.integers(0, 4)) == 0 else "s"
        if self.temps and self.draw(st.booleans()):
            out = f"tmp{self.draw(st.integers(0, self.temps - 1))}"
        return f"op {name}({', '.join(args)}) >> {out};"

    def kv_statement(self, loop_vars: list[str]) -> list[str]:
        """`cache.append`, `cache.save`/`cache.load`, `cache.fork`/`cache.pop`/`cache.reset ... where`
        over `kv_declarations`' variables; with sloppiness, any name, rank or dtype in their places."""
        others = [*self.vars, "nope", "N", "l"]
        kind = self.pick(["append", "append", "save", "load", "fork", "pop", "where", "lens"])
        if kind == "append":
            n = self.draw(st.integers(0, len(self.seq) - 1))
            table = self.seq[n] if not self.odd() else self.pick([*others, "F", "K0", "A"])
            src = f"xa{n}" if not self.odd() else self.pick([*others, "P[0]", f"xa{n}[0]"])
            off = self.pick(["off", "off", "lens"])
            if self.odd():  # any variable (a float, a table, the table itself), a literal, a slice, two, none
                off = self.pick([*others, "0", "off, off", "off..", ""])
            policy = self.pick(["", "", " @on_out_of_range(skip)", " @on_out_of_range(error)"])
            if self.odd():
                policy = self.pick([" @on_out_of_range(maybe)", " @on_out_of_range()", " @fixed(skip)",
                                    " @on_out_of_range", " @on_out_of_range(skip) @on_out_of_range(skip)"])  # fmt: skip
            return [f"cache.append {src} >> {table}[{off}]{policy};"]
        if kind == "save":  # (odd: a persistent source is vortex's PAGED, a constant, another shape, a non-field)
            src = "xr" if not self.odd() else self.pick([*others, "yr", "lens", "F", "KV0", "W", "acc"])
            field = "F" if not self.odd() else self.pick([*others, "KV0", "lens", "F[0]", "A"])
            return [f"cache.save {src} >> {field};"]
        if kind == "load":
            src = "F" if not self.odd() else self.pick([*others, "KV0", "lens", "F[]", "A"])
            dst = "yr" if not self.odd() else self.pick([*others, "xr", "W", "lens", "r", "F"])
            return [f"cache.load {src} >> {dst};"]
        if kind == "lens":  # new lengths (an op may not write a persistent variable)
            if self.lens_dtype not in ("u8", "i8") and not self.odd():
                return []  # (an i64 input would draw huge lengths: a fork copying 2**60 entries)
            return [f"cache.write {'ln' if not self.odd() else self.var()} >> lens;"]
        tables = list(self.seq)
        if self.draw(st.booleans()):
            tables = tables[::-1] if self.draw(st.booleans()) else tables[:1]
        if self.odd():  # a table twice, a table with one index, an @auto_dim table, a field, a plain variable
            other = self.pick([tables[0], "K0", "A", "F", "lens", "nope", "x0"])
            tables.insert(self.draw(st.integers(0, len(tables))), other)
        lens = "lens" if not self.odd() else self.pick([*others, "off", "ln", "KV0", "done", "t0", "acc"])
        group = f"{', '.join(tables)} [{lens}]"
        index = [self.pick(["0", "1", "2", "N", *self.scalars, *loop_vars]) if not self.odd()
                 else self.pick(ODD_INDICES) for _ in range(3)]  # fmt: skip
        if kind == "fork":
            if index[0] == index[1] and not self.odd():
                index[1] = "1" if index[0] == "0" else "0"
            return [f"cache.fork {group} {index[0]} >> {index[1]} at {index[2]};"]
        if kind == "pop":
            count = self.pick(["", "", "1 ", "2 ", "0 ", *(f"{s} " for s in self.scalars)])
            if self.odd():
                count = self.pick(["-1 ", "300 ", "99999999999999999999 ", "1.5 ", "x0 "])
            return [f"cache.pop {count}{group} {index[0]};"]
        mask = "done" if not self.odd() else self.pick([*others, "off", "lens", "xa0", "go", "KV0", "W"])
        return [f"cache.reset {group} where {mask};"]

    def statement(self, loop_vars: list[str], depth: int) -> list[str]:
        kind = self.pick(["op", "op", "op", "write", "write", "read", "read", "inc", "dec", "reset", "assign",
                          "transfer", "branch", "loop" if depth < 2 else "op", "return", "yield", "misc",
                          *(["kv"] * 4 if self.seq else [])])  # fmt: skip
        if kind == "op":
            return [self.op(loop_vars)]
        if kind == "kv":
            return self.kv_statement(loop_vars)
        if kind == "write":
            return [f"cache.write {self.operand(loop_vars)} >> {self.access(loop_vars, slices=self.odd())};"]
        if kind == "read":
            access = self.access(loop_vars, slices=True)
            scalar = ".." not in access and "[" in access and ", ]" not in access and "[]" not in access
            return [f"cache.read {access} >> {('y0' if scalar else 'r') if not self.odd() else self.pick(['r', 's', 'y0', 'x0', 'W'])};"]
        if kind in ("inc", "dec"):
            amount = self.pick(["", "", "2 ", "300 ", "0 ", "99999999999999999999 "]) if self.odd() else ""
            target = self.pick(self.scalars) if not self.odd() else self.var()
            return [f"cache.{'increment' if kind == 'inc' else 'decrement'} {amount}{target};"]
        if kind == "reset":
            return [f"cache.reset {self.access(loop_vars, slices=False) if self.draw(st.booleans()) else self.var()};"]
        if kind == "assign":
            self.temps += 1
            return [f"assign tmp{self.temps - 1}: {self.dtype()}[{', '.join(self.dims(self.shape))}];"]
        if kind == "transfer":
            return [f"transfer {self.operand(loop_vars)} >> {self.pick(self.values[len(self.decls['dynamic']):] or ['y0']) if not self.odd() else self.var()};"]
        if kind == "branch":
            if "other" not in self.blocks:
                self.blocks.append("other")
            targets = ["other", "entry", "missing", "other"] if self.odd() else ["other"]
            if self.draw(st.booleans()):
                return [f"branch {self.pick(['go', *self.scalars]) if not self.odd() else self.var()} "
                        f"{self.pick(targets)} {self.pick(targets)};"]  # fmt: skip
            return [f"branch {self.pick(targets)};"]
        if kind == "loop":
            var = self.pick(["l", "m"]) if not self.odd() else self.pick(["l", "N", "t0", "x0"])
            if var in loop_vars:
                var = var + "2"
            start = self.pick(["0", "1"]) if not self.odd() else self.pick(ODD_INDICES)
            end = self.pick(["2", "N", "M", "Z", *self.scalars]) if not self.odd() else self.pick(LOOP_ENDS)
            body = self.block([*loop_vars, var], depth + 1, self.draw(st.integers(0, 3)))
            return [f"loop L{depth} ({var} in {start}..{end}) {{", *("    " + s for s in body), "}"]
        if kind == "return":
            return ["return;"] if self.draw(st.integers(0, 3)) == 0 else [self.op(loop_vars)]
        if kind == "yield":
            if "side" not in self.blocks:
                self.blocks.append("side")
            return [f"yield {self.var()};", f"await {self.var()};"] if self.draw(st.booleans()) else [f"yield {self.var()};"]
        return [self.pick(["barrier;", f"dep after({self.var()}) before({self.var()});", f"await {self.var()};"])]

    def block(self, loop_vars: list[str], depth: int, count: int) -> list[str]:
        return [line for _ in range(count) for line in self.statement(loop_vars, depth)]

    def source(self) -> str:
        self.declarations()
        bodies = {"entry": self.block([], 0, self.draw(st.integers(1, 7)))}
        for name in ["other", "side"]:
            if name in self.blocks:  # (a statement of "side" may add "other")
                bodies[name] = self.block([], 1, self.draw(st.integers(0, 3)))
        if self.odd() and len(bodies) > 1:
            del bodies[self.pick(sorted(bodies)[1:])]  # a missing block
        sections = [f"{memory} {{ {' '.join(decls)} }}" for memory, decls in self.decls.items() if decls]
        for name, body in bodies.items():
            sections.append(f"block {name} {{\n" + "\n".join("    " + s for s in body) + "\n}")
        return "graph! {\n" + "\n".join(sections) + "\n}\n"

    def model(self) -> dict:
        sizes = dict(SIZES)
        if self.odd():
            sizes[self.pick(["N", "M", "T", "U"])] = self.pick([0, -1, 2**40, 5])
        sizes.setdefault("T", 2)
        return {"sizevars": sizes, "tensors": self.tensors}


@st.composite
def random_graphs(draw) -> tuple[str, dict, int]:
    gen = Gen(draw)
    text = gen.source()
    return text, gen.model(), draw(st.integers(0, 2**32 - 1))


@pytest.mark.slow
@fuzz(200)
@given(random_graphs())
def test_random_graphs_raise_only_oi_errors(case) -> None:
    text, model, seed = case
    run_graph(text, model, seed)


@pytest.mark.slow
@fuzz(400)
@given(random_graphs())
def test_random_graphs_on_the_reference_raise_only_oi_errors(case) -> None:
    text, model, seed = case
    run_graph(text, model, seed, devices=("reference",))


# --- text mutations of the bundled examples -------------------------------------------------------

EXAMPLE_TEXTS = {path.name: path.read_text() for path in sorted(EXAMPLES.glob("*.oi"))}
FRAGMENTS = ["", ";", "{", "}", "[", "]", "(", ")", "..", ">>", ",", "@", "0", "-1", "99999999999999999999",
             "x", "N", "f32", "i8", "bool", "op", "cache.read", "cache.write", "loop", "block", "@table",
             "@fixed(", "@init(", '"', "/*", "//", "\\", "é", "0x", "1e", "::", "cache.append", "cache.save",
             "cache.load", "cache.fork", "cache.pop", "cache.reset", "@on_out_of_range", "skip", "error", "where",
             "at", "[lens]", "@paged(page = 2)", "@paged(", "page", "pages"]  # fmt: skip


@st.composite
def mutated_examples(draw) -> tuple[str, str]:
    name = draw(st.sampled_from(sorted(EXAMPLE_TEXTS)))
    text = EXAMPLE_TEXTS[name]
    tokens = re.findall(r"\w+|\.\.|>>|\S|\s+", text)
    for _ in range(draw(st.integers(1, 4))):
        at = draw(st.integers(0, len(tokens) - 1))
        how = draw(st.sampled_from(["delete", "replace", "insert", "duplicate", "swap"]))
        if how == "delete":
            del tokens[at]
        elif how == "replace":
            tokens[at] = draw(st.sampled_from(FRAGMENTS + tokens))
        elif how == "insert":
            tokens.insert(at, draw(st.sampled_from(FRAGMENTS + tokens)))
        elif how == "duplicate":
            tokens.insert(at, tokens[at])
        else:
            other = draw(st.integers(0, len(tokens) - 1))
            tokens[at], tokens[other] = tokens[other], tokens[at]
    return name, "".join(tokens)


def model_for(graph) -> dict:
    """Every size name 2; every constant a tensor of its declared shape (patterns for 0 and 1)."""
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
            if np.prod(shape) > 4096:
                continue
            value = np.full(shape, 0.5).astype(numpy_dtype(var.dtype))
        except Exception:  # noqa: BLE001 - an odd declaration: leave it out of the model
            continue
        if var.pattern is not None:
            for n in range(2):
                tensors[re.sub(r"\{\w+\}", str(n), var.pattern.data)] = value
        else:
            tensors[var.var_name] = value
    return {"sizevars": sizes, "tensors": tensors}


@pytest.mark.slow
@fuzz(800)
@given(mutated_examples())
def test_mutated_examples_raise_only_oi_errors(case) -> None:
    name, text = case
    graph, _ = no_internal_error(oi.parse_graph, text, name)
    if graph is not None and name != "tiny_decoder.oi":  # the decoder's pattern weights need a real model
        run_graph(text, model_for(graph), seed=0, steps=2, devices=("reference",))


def test_the_examples_themselves_run() -> None:
    for name, text in EXAMPLE_TEXTS.items():
        graph = oi.parse_graph(text, name)
        assert graph.vars


# --- the boundary ---------------------------------------------------------------------------------

KV = """\
dynamic { x: f32[2]; }
volatile { y: f32[2]; }
persistent { t: i32 @init(0); K(i): f32[2] @table; }
block entry {
    op relu(x) >> y;
    cache.write y >> K[t];
    cache.increment t;
    return;
}
"""


def boom(*args, **kwargs):
    raise RuntimeError("boom")


def test_an_internal_error_names_its_stage_and_statement(monkeypatch) -> None:
    from oi_compiler.runtime.reference import ReferenceInterpreter

    monkeypatch.setattr(ReferenceInterpreter, "_cache_step", boom)
    exe = oi.Simulator(None, oi.parse_graph(KV, "kv.oi")).make_executor()
    with pytest.raises(oi.InternalError) as info:
        exe.step()
    error = info.value
    assert isinstance(error, oi.OiError) and error.stage == "step"
    assert str(error) == "kv.oi:7:5: internal error: step: RuntimeError: boom"
    assert isinstance(error.__cause__, RuntimeError)
    assert error.node == "block entry node cache.increment t"
    assert exe.state("t").tolist() == 0 and exe.table_sizes("K") == [0]  # rolled back as any failed step


def test_the_lowering_stages_and_the_jit_are_named(monkeypatch, tmp_path) -> None:
    from oi_compiler.backend import jit
    from oi_compiler.passes.lower_ops import LowerOps

    graph = oi.parse_graph(KV, str(tmp_path / "fresh.oi"))  # a file name no cached step has
    monkeypatch.setattr(LowerOps, "apply", boom)
    with pytest.raises(oi.InternalError, match=r"internal error: lower-ops: RuntimeError: boom"):
        oi.Simulator(None, graph, device="cpu")
    monkeypatch.undo()
    monkeypatch.setattr(jit, "translate", boom, raising=False)
    monkeypatch.setattr("oi_compiler.backend.llvm.translate", boom)
    with pytest.raises(oi.InternalError, match=r"^internal error: jit: RuntimeError: boom"):
        oi.Simulator(None, graph, device="cpu")


def test_the_cpu_step_boundary(monkeypatch) -> None:
    from oi_compiler.runtime.native import NativeState

    exe = oi.Simulator(None, oi.parse_graph(KV, "kv.oi"), device="cpu").make_executor()
    exe.insert(x=np.ones(2, np.float32))
    exe.step()
    monkeypatch.setattr(NativeState, "run", boom)
    with pytest.raises(oi.InternalError, match=r"^internal error: step: RuntimeError: boom"):
        exe.step()
    monkeypatch.setattr(NativeState, "value", boom)
    for read in (exe.fetch, exe.state):
        with pytest.raises(oi.InternalError, match=r"internal error: (fetch|state): RuntimeError: boom"):
            read("t")
    assert exe.steps == 1


def test_interrupts_and_exits_pass_through(monkeypatch) -> None:
    from oi_compiler.runtime.reference import ReferenceInterpreter

    exe = oi.Simulator(None, oi.parse_graph(KV, "kv.oi")).make_executor()
    for kind in (KeyboardInterrupt, SystemExit):
        def interrupt(*args, kind=kind):
            raise kind()

        monkeypatch.setattr(ReferenceInterpreter, "run_step", interrupt)
        with pytest.raises(kind):
            exe.step()


def test_parse_errors_inside_the_parser_are_located(monkeypatch) -> None:
    from oi_compiler.frontend.oi_dsl import DslParser

    monkeypatch.setattr(DslParser, "parse_setting", boom)
    with pytest.raises(oi.InternalError) as info:
        oi.parse_graph("dynamic { x: f32[2]; } volatile { y: f32[2]; }\nblock entry { op relu(x, alpha=1.0) >> y; }", "p.oi")
    assert str(info.value) == "p.oi:2:32: internal error: parse: RuntimeError: boom"  # at the value


def test_verify_and_plan_build_boundaries(monkeypatch) -> None:
    import oi_compiler.verify as verify

    monkeypatch.setattr(verify, "verify_graph", boom)
    with pytest.raises(oi.InternalError, match="internal error: verify: RuntimeError: boom"):
        oi.parse_graph(KV)
    monkeypatch.undo()
    monkeypatch.setattr("oi_compiler.frontend.loopnest_ir.plan_module", boom)
    A = oi.Array(role=oi.Role.INPUT_OUTPUT, shape=(4,))
    nest = oi.Nest(shape=(4,))
    i = nest.get_indices()

    @nest.iteration_logic
    def _():
        A[i] = A[i] + 1.0

    with pytest.raises(oi.InternalError, match="internal error: build: RuntimeError: boom"):
        nest.create_plan().build()


@pytest.mark.parametrize("tool", ["oi-run", "oi-opt"])
def test_the_tools_print_the_internal_error(monkeypatch, capsys, tmp_path, tool) -> None:
    from oi_compiler.tools import oi_opt, oi_run
    from oi_compiler.verify import vars as verify_vars

    path = tmp_path / "kv.oi"
    path.write_text(KV)
    monkeypatch.delenv("OI_DEBUG", raising=False)
    monkeypatch.setattr(verify_vars, "verify_declaration", boom)
    status = (oi_run if tool == "oi-run" else oi_opt).main([str(path)])
    err = capsys.readouterr().err
    assert status == 3
    assert err == f"{path}:1:11: internal error: verify: RuntimeError: boom (set OI_DEBUG=1 for a traceback)\n"


# --- internal errors this file found, fixed at their roots ----------------------------------------


def raises_oi(kind, src: str, *, device: str = "reference", match: str, sizes=None) -> oi.OiError:
    """`src` parsed, simulated and stepped once raises `kind` (an OiError, never an internal one)."""
    with pytest.raises(kind, match=match) as info:
        graph = oi.parse_graph(textwrap.dedent(src), FILE)
        exe = oi.Simulator(oi.Model(sizevars=sizes or {}), graph, device=device).make_executor()
        exe.step()
        for name in graph.vars:
            exe.fetch(name)
    assert not isinstance(info.value, oi.InternalError)
    return info.value


def test_a_block_branching_back_into_itself() -> None:
    src = """
    dynamic { go: bool; }
    block entry { branch go other other; }
    block other { branch other; }
    """
    error = raises_oi(oi.ExecutionError, src, match="branch to block other nests more than 100 blocks deep")
    assert str(error.loc) == f"{FILE}:4:15"
    # device="cpu" inlines the block up to the same depth and raises the same error (lowering engineer)
    error = raises_oi(oi.ExecutionError, src, device="cpu", match="branch to block other nests more than 100 blocks deep")
    assert str(error.loc) == f"{FILE}:4:15"


@pytest.mark.parametrize("dims", ["18446744073709551617", "N, 18446744073709551617", "4294967296*4294967296"])
def test_dims_past_64_bits_are_refused(dims: str) -> None:
    error = raises_oi(oi.VerifyError, f"volatile {{ y: f32[{dims}]; }} block entry {{ }}", sizes={"N": 0},
                      match=r"invalid dims for y: \[.*\] holds 2\*\*63 elements or more")  # fmt: skip
    assert str(error.loc) == f"{FILE}:1:12"
    raises_oi(oi.VerifyError, f"block entry {{ assign z: f32[{dims}]; }}", sizes={"N": 0},
              match="invalid dims for z")  # fmt: skip


def test_a_value_too_big_for_memory() -> None:
    raises_oi(oi.ExecutionError, "volatile { y: f32[65536*65536, 65536]; } block entry { }",
              match=r"cannot allocate f32\[4294967296, 65536\]: out of memory")  # fmt: skip


@pytest.mark.parametrize(
    "setting", ["value=-9223372036854775809", "value=18446744073709551616", "shape=[9223372036854775808]"]
)
def test_integer_settings_past_64_bits(setting: str) -> None:
    error = raises_oi(oi.ParseError, f"dynamic {{ x: f32[2]; }}\nblock entry {{ op fill(x, {setting}) >> x; }}",
                      match=r"setting (value|shape) value -?\d+ is out of range for a 64-bit integer")  # fmt: skip
    assert error.loc.line == 2


def test_a_fixed_size_past_64_bits() -> None:
    raises_oi(oi.ParseError, "persistent { K(i): f32 @table @fixed(i=9223372036854775808); } block entry { }",
              match=r"fixed size 9223372036854775808 for i is out of range")  # fmt: skip


@pytest.mark.parametrize("index", ["18446744073709551615", "0..99999999999999999999"])
def test_a_literal_cache_index_past_64_bits(index: str) -> None:
    # the compiled step read 2**64 - 1 as -1, passed its bounds checks and wrote outside the table
    raises_oi(oi.VerifyError, f"persistent {{ K(i): f32[2] @table; }} volatile {{ r: f32[1, 2]; }}\n"
              f"block entry {{ cache.read K[{index}] >> r; }}", device="cpu",
              match=r"cache index \d+ is out of range \(at most 2\*\*63 - 1\)")  # fmt: skip
