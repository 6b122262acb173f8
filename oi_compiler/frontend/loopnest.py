"""Accera-style loop nests in Python: Array -> Nest (logic) -> Schedule (order) -> Plan (caches...).

    A = oi.Array(role=oi.Role.INPUT, shape=(M, K))
    B = oi.Array(role=oi.Role.INPUT, shape=(K, N))
    C = oi.Array(role=oi.Role.INPUT_OUTPUT, shape=(M, N))
    nest = oi.Nest(shape=(M, N, K))
    i, j, k = nest.get_indices()

    @nest.iteration_logic
    def _():
        C[i, j] += A[i, k] * B[k, j]

    schedule = nest.create_schedule()
    ii, jj, kk = schedule.tile({i: 32, j: 64, k: 128})
    schedule.reorder(i, j, k, ii, jj, kk)
    plan = schedule.create_plan(target="cpu")
    plan.cache(B, index=jj, layout=oi.Array.Layout.FIRST_MAJOR)
    gemm = plan.build()            # gemm(A_np, B_np, C_np), C updated in place
    print(plan.module)             # the oi.nest with its oi.schedule / oi.plan attributes

Names (of arrays and indices) are read from the assignment they appear in, as Accera does
(`i, j, k = nest.get_indices()` names the loops i, j, k). Everything is recorded; the IR
is made by `plan.module`, and `plan.build()` runs `--tile --cache --double-buffer
--lower-nests` on it (runtime/nest_function.py), so a plan and its IR give the same code.
"""

from __future__ import annotations

import dis
import enum
import inspect
import itertools
import linecache
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

import numpy as np

from oi_compiler.errors import ScheduleError
from oi_compiler.loopnest.cache_rules import CacheRequest, check_request
from oi_compiler.loopnest.layouts import column_major, row_major
from oi_compiler.loopnest.schedule import ScheduleModel


class Role(enum.Enum):
    INPUT = "input"
    INPUT_OUTPUT = "input_output"
    CONST = "const"
    TEMP = "temp"


class Layout(enum.Enum):
    FIRST_MAJOR = "first_major"  # row-major: the last index is contiguous
    LAST_MAJOR = "last_major"  # column-major: the first index is contiguous


class ScalarType(enum.Enum):
    float32 = "f32"
    float64 = "f64"
    int32 = "i32"
    int64 = "i64"


class MemorySpace(enum.Enum):
    NONE = "none"
    GLOBAL = "global"
    SHARED = "shared"
    PRIVATE = "private"
    MMA_FRAGMENT = "mma_fragment"


class CacheStrategy(enum.Enum):
    AUTO = "auto"
    BLOCKED = "blocked"
    STRIPED = "striped"


class GridUnit(enum.Enum):
    """What `plan.bind` maps a loop index to: a block index or a thread index of the grid."""

    BLOCK_X = "block_x"
    BLOCK_Y = "block_y"
    BLOCK_Z = "block_z"
    THREAD_X = "thread_x"
    THREAD_Y = "thread_y"
    THREAD_Z = "thread_z"
    WARP_X = "warp_x"
    WARP_Y = "warp_y"


class Target:
    """Where a plan runs: the host CPU (`Target.HOST`, the default) or an NVIDIA GPU.

        target = oi.Target(category=oi.Target.Category.GPU)     # sm_80, CUDA
        plan = schedule.create_plan(target)
        plan.bind({i: target.GridUnit.BLOCK_X, ii: target.GridUnit.THREAD_X})
    """

    class Category(enum.Enum):
        CPU = "cpu"
        GPU = "gpu"

    class Runtime(enum.Enum):
        NONE = "none"
        CUDA = "cuda"

    GridUnit = GridUnit
    MemorySpace = MemorySpace
    HOST: Target

    def __init__(self, category: Target.Category = Category.CPU, runtime: Target.Runtime | None = None,
                 arch: str = "sm_80", max_threads_per_block: int = 1024):  # fmt: skip
        if not isinstance(category, Target.Category):
            raise ScheduleError(f"Target category must be a Target.Category, got {category!r}")
        self.category = category
        self.runtime = runtime or (Target.Runtime.CUDA if category is Target.Category.GPU else Target.Runtime.NONE)
        if category is Target.Category.GPU:
            from oi_compiler.backend.ptx import ARCHES

            if arch not in ARCHES:
                raise ScheduleError(f"unknown GPU architecture '{arch}' (known: {', '.join(ARCHES)})")
        self.arch = arch
        self.max_threads_per_block = max_threads_per_block

    @property
    def is_gpu(self) -> bool:
        return self.category is Target.Category.GPU

    def __repr__(self) -> str:
        return f"Target({self.category.name}{', ' + self.arch if self.is_gpu else ''})"


Target.HOST = Target()


def _target(target) -> Target:
    if isinstance(target, Target):
        return target
    if target in ("cpu", "host", "HOST"):
        return Target.HOST
    raise ScheduleError(f"create_plan takes an oi.Target or target='cpu', got {target!r}")


_counter = itertools.count()


def _user_frame():
    """The frame of the user code that called the API method whose helper calls us (`i, j =
    nest.get_indices()`: get_indices -> _assigned_names -> here), or None."""
    frame = inspect.currentframe()
    for _ in range(3):  # ends on the user's frame: nothing keeps this one alive
        frame = frame.f_back if frame else None
    return frame


def _assigned_names(count: int, fallback: str, taken: set[str] | None = None) -> list[str]:
    """The names on the left of the `=` in the statement of user code that called the API
    method calling us (`ii, jj = schedule.tile(...)`), else fresh names: `fallback` numbered by a
    process-wide counter, or, with `taken`, by the smallest number not taken (names that do not
    depend on what else the process built, so a rebuilt plan has the same IR and cache key)."""
    caller = _user_frame()
    line = linecache.getline(caller.f_code.co_filename, caller.f_lineno) if caller else ""
    column = inspect.getframeinfo(caller).positions.col_offset if caller and line else None
    if column is not None:  # `X = oi.Array(...); Y = oi.Array(...)`: the statement at the call
        start = line.rfind(";", 0, column) + 1
        end = line.find(";", column)
        line = line[start : end if end >= 0 else len(line)]
    match = re.match(r"\s*([(\[]?\s*[A-Za-z_][\w\s,()\[\]]*?)\s*=(?!=)", line)
    if match:
        names = [n.strip(" ()[]") for n in match.group(1).split(",")]
        names = [n for n in names if n]
        if len(names) == count and all(n.isidentifier() for n in names):
            return names
    if taken is None:
        return [f"{fallback}{next(_counter)}" for _ in range(count)]
    fresh = (f"{fallback}{n}" for n in itertools.count() if f"{fallback}{n}" not in taken)
    return [next(fresh) for _ in range(count)]


def _unpacks_one_name() -> bool:
    """Whether the user code that called the API method calling us unpacks its result into one
    name (`i, = ...`): the bytecode after the call is `UNPACK_SEQUENCE 1`."""
    caller = _user_frame()
    after = [ins for ins in dis.get_instructions(caller.f_code) if ins.offset > caller.f_lasti] if caller else []
    return bool(after) and after[0].opname == "UNPACK_SEQUENCE" and after[0].arg == 1


# ----------------------------------------------------------------------------- index expressions


class IndexExpr:
    """An affine expression of loop indices: `i + 2*k - 1`."""

    def __init__(self, terms: dict[LoopIndex, int] | None = None, const: int = 0):
        self.terms = {k: v for k, v in (terms or {}).items() if v}
        self.const = const

    @staticmethod
    def of(value: object) -> IndexExpr:
        if isinstance(value, IndexExpr):
            return value
        if isinstance(value, LoopIndex):
            return IndexExpr({value: 1})
        if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
            return IndexExpr(const=int(value))
        raise ScheduleError(f"an array index must be an affine expression of loop indices, got {value!r}")

    def __add__(self, other):
        other = IndexExpr.of(other)
        terms = dict(self.terms)
        for k, v in other.terms.items():
            terms[k] = terms.get(k, 0) + v
        return IndexExpr(terms, self.const + other.const)

    __radd__ = __add__

    def __neg__(self):
        return IndexExpr({k: -v for k, v in self.terms.items()}, -self.const)

    def __sub__(self, other):
        return self + (-IndexExpr.of(other))

    def __rsub__(self, other):
        return IndexExpr.of(other) - self

    def __mul__(self, other):
        if isinstance(other, (int, np.integer)) and not isinstance(other, bool):
            return IndexExpr({k: v * int(other) for k, v in self.terms.items()}, self.const * int(other))
        raise ScheduleError("only multiplication by an integer constant keeps an index affine")

    __rmul__ = __mul__


class LoopIndex(IndexExpr):
    """One loop of a nest or schedule (`nest.get_indices()`, `schedule.split(...)`)."""

    def __init__(self, name: str):
        self.name = name
        super().__init__({self: 1})

    def __hash__(self):
        return id(self)

    def __eq__(self, other):
        return self is other

    def __repr__(self):
        return f"LoopIndex({self.name})"


# ----------------------------------------------------------------------------- value expressions


class Expr:
    """A scalar value in the logic: array elements, constants, arithmetic and intrinsics."""

    def _bin(self, op, other, swap=False):
        other = _value(other)
        return Bin(op, other, self) if swap else Bin(op, self, other)

    def __add__(self, o): return self._bin("add", o)  # noqa: E704
    def __radd__(self, o): return self._bin("add", o, True)  # noqa: E704
    def __sub__(self, o): return self._bin("sub", o)  # noqa: E704
    def __rsub__(self, o): return self._bin("sub", o, True)  # noqa: E704
    def __mul__(self, o): return self._bin("mul", o)  # noqa: E704
    def __rmul__(self, o): return self._bin("mul", o, True)  # noqa: E704
    def __truediv__(self, o): return self._bin("div", o)  # noqa: E704
    def __rtruediv__(self, o): return self._bin("div", o, True)  # noqa: E704
    def __neg__(self): return Call("neg", [self])  # noqa: E704


@dataclass(eq=False)
class Load(Expr):
    array: Array
    indices: list[IndexExpr]


@dataclass(eq=False)
class Const(Expr):
    value: float | int


@dataclass(eq=False)
class Bin(Expr):
    op: str
    lhs: Expr
    rhs: Expr


@dataclass(eq=False)
class Call(Expr):
    fn: str
    args: list[Expr]


def _value(v: object) -> Expr:
    if isinstance(v, Expr):
        return v
    if isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool):
        return Const(v.item() if isinstance(v, np.generic) else v)
    if isinstance(v, IndexExpr):
        raise ScheduleError("a loop index cannot be used as a value in the logic (only as an array index)")
    raise ScheduleError(f"unsupported value in the logic: {v!r}")


def _intrinsic(fn: str, arity: int) -> Callable[..., Expr]:
    def call(*args):
        if len(args) != arity:
            raise ScheduleError(f"{fn} takes {arity} argument(s)")
        return Call(fn, [_value(a) for a in args])

    call.__name__ = fn
    return call


max = _intrinsic("max", 2)  # noqa: A001
min = _intrinsic("min", 2)  # noqa: A001
abs = _intrinsic("abs", 1)  # noqa: A001
exp = _intrinsic("exp", 1)
log = _intrinsic("log", 1)
sqrt = _intrinsic("sqrt", 1)
tanh = _intrinsic("tanh", 1)


# ----------------------------------------------------------------------------- arrays and nests

_recording: list[list] = []  # the statements of the logic being recorded (a stack)


class Array:
    Role = Role
    Layout = Layout

    def __init__(self, role: Role, element_type: ScalarType | str | type = ScalarType.float32,
                 shape: Sequence[int] = (), layout: Layout | Sequence[int] = Layout.FIRST_MAJOR,
                 data: np.ndarray | None = None, name: str | None = None):  # fmt: skip
        if not isinstance(role, Role):
            raise ScheduleError(f"role must be an oi.Role, got {role!r}")
        self.role = role
        self.element_type = _scalar_type(element_type)
        self.shape = tuple(int(s) for s in shape)
        if not self.shape or any(s < 1 for s in self.shape):
            raise ScheduleError(f"an array needs a shape of positive sizes, got {tuple(shape)}")
        if isinstance(layout, Layout):
            self.layout = layout
            self.strides = _layout_strides(self.shape, layout)
        else:
            self.layout = tuple(int(s) for s in layout)
            if len(self.layout) != len(self.shape):
                raise ScheduleError(f"a layout gives one stride per dimension, got {self.layout} for shape {self.shape}")
            self.strides = self.layout
        if role is Role.CONST:
            if data is None:
                raise ScheduleError("a CONST array needs its data")
            data = np.asarray(data)
            if data.shape != self.shape:
                raise ScheduleError(f"CONST data has shape {data.shape}, the array {self.shape}")
        self.data = data
        self.name = name or _assigned_names(1, "array")[0]
        self.order = next(_counter)

    @property
    def dtype(self) -> np.dtype:
        return np.dtype({"f32": np.float32, "f64": np.float64, "i32": np.int32, "i64": np.int64}[self.element_type])

    def _indices(self, key) -> list[IndexExpr]:
        key = key if isinstance(key, tuple) else (key,)
        if len(key) != len(self.shape):
            raise ScheduleError(f"{self.name} has {len(self.shape)} dimensions, indexed with {len(key)}")
        return [IndexExpr.of(k) for k in key]

    def __getitem__(self, key) -> Load:
        return Load(self, self._indices(key))

    def __setitem__(self, key, value) -> None:
        if not _recording:
            raise ScheduleError("arrays can be written only inside @nest.iteration_logic")
        if self.role in (Role.CONST, Role.INPUT):
            raise ScheduleError(f"{self.name} is an {self.role.name} array and cannot be written (use INPUT_OUTPUT)")
        _recording[-1].append((self, self._indices(key), _value(value)))

    def __repr__(self):
        return f"Array({self.name}, {self.role.name}, {self.element_type}, {self.shape})"


def _scalar_type(t) -> str:
    if isinstance(t, ScalarType):
        return t.value
    if isinstance(t, str) and t in {s.value for s in ScalarType}:
        return t
    try:
        return {np.dtype(np.float32): "f32", np.dtype(np.float64): "f64", np.dtype(np.int32): "i32",
                np.dtype(np.int64): "i64"}[np.dtype(t)]  # fmt: skip
    except (TypeError, KeyError):
        raise ScheduleError(f"unsupported element type {t!r} (float32, float64, int32, int64)") from None


def _layout_strides(shape: tuple[int, ...], layout: Layout) -> tuple[int, ...]:
    return tuple(column_major(shape) if layout is Layout.LAST_MAJOR else row_major(shape))


class Nest:
    def __init__(self, shape: Sequence[int]):
        self.shape = [int(s) for s in shape]
        if not self.shape or any(s < 1 for s in self.shape):
            raise ScheduleError(f"a nest needs a shape of positive sizes, got {tuple(shape)}")
        self._indices: list[LoopIndex] | None = None
        self.logic: list = []

    def get_indices(self) -> tuple[LoopIndex, ...]:
        if self._indices is None:
            self._indices = [LoopIndex(n) for n in _assigned_names(len(self.shape), "i")]
        if len(self._indices) > 1 or _unpacks_one_name():
            return tuple(self._indices)  # `i, = nest.get_indices()` (Accera's tests) gets a sequence
        return self._indices[0]

    def iteration_logic(self, logic: Callable | None = None, predicate=None, placement=None):
        if predicate is not None or placement is not None:
            raise ScheduleError("iteration_logic predicates and placements are not supported yet")
        if logic is None:
            return self.iteration_logic
        if self._indices is None:
            raise ScheduleError("call nest.get_indices() before writing the logic")
        _recording.append([])
        try:
            logic()
        finally:
            self.logic.extend(_recording.pop())
        return logic

    def create_schedule(self) -> Schedule:
        if self._indices is None:
            self.get_indices()
        return Schedule(self)

    def create_plan(self, target: Target | str = "cpu", **gpu_options) -> Plan:
        return self.create_schedule().create_plan(target, **gpu_options)


class Schedule:
    def __init__(self, nest: Nest):
        self.nest = nest
        self.indices = {i.name: i for i in nest._indices}
        self.model = ScheduleModel.initial(list(self.indices), nest.shape)

    def _name(self, index: LoopIndex) -> str:
        if not isinstance(index, LoopIndex) or self.indices.get(index.name) is not index:
            raise ScheduleError(f"{index!r} is not an index of this schedule")
        return index.name

    def split(self, index: LoopIndex, size: int) -> LoopIndex:
        return self._split(index, size, _assigned_names(1, f"{index.name}_")[0] if isinstance(index, LoopIndex) else "")

    def _split(self, index: LoopIndex, size: int, new_name: str) -> LoopIndex:
        name = self._name(index)
        while new_name in self.indices:
            new_name += "_"
        self.model.split(name, size, new_name)
        self.indices[new_name] = LoopIndex(new_name)
        return self.indices[new_name]

    def tile(self, shape: dict[LoopIndex, int]) -> list[LoopIndex]:
        names = _assigned_names(len(shape), "t")
        return [self._split(index, size, names[n]) for n, (index, size) in enumerate(shape.items())]

    def reorder(self, order=None, *args: LoopIndex) -> None:
        if isinstance(order, (list, tuple)):
            indices = list(order) + list(args)
        else:
            indices = ([order] if order is not None else []) + list(args)
        self.model.reorder([self._name(i) for i in indices])

    def get_indices(self) -> tuple[LoopIndex, ...]:
        return tuple(self.indices[n] for n in self.model.order)

    def is_valid_loop_order(self, order: Sequence[LoopIndex]) -> bool:
        trial = ScheduleModel(self.model.extents, self.model.chains, list(self.model.order))
        try:
            trial.reorder([self._name(i) for i in order])
        except ScheduleError:
            return False
        return True

    def create_plan(self, target: Target | str = "cpu", _dynamic_shared_memory_size: int | None = None,
                    _blocks_per_SM: int | None = None) -> Plan:  # noqa: N803 - Accera's names
        target = _target(target)
        if _dynamic_shared_memory_size is not None:
            if not target.is_gpu:
                raise ScheduleError("_dynamic_shared_memory_size can only be set on a GPU target")
            raise ScheduleError("dynamic shared memory is not supported yet: shared caches are static")
        if _blocks_per_SM is not None:
            if not target.is_gpu:
                raise ScheduleError("_blocks_per_SM can only be set on a GPU target")
            raise ScheduleError("_blocks_per_SM is not supported yet")
        return Plan(self, target)


@dataclass
class Cache:
    """What `plan.cache` returns: the request as resolved (Accera's `Cache` fields), usable as
    the source of a further cache (hierarchical caching)."""

    request: CacheRequest
    source: Array | Cache
    plan: Plan
    recorded: CacheRequest  # as written in the IR

    def __getattr__(self, name):
        if name in ("index", "trigger_index"):
            value = getattr(self.request, name)
            return self.plan.schedule.indices.get(value) if value else None
        if name == "layout":  # the cache's own, or its source's
            if self.request.layout is not None:
                return Layout(self.request.layout)
            return self.source.layout if isinstance(self.source, Array) else self.source.layout
        if name == "location":
            return MemorySpace(self.request.location)
        if name == "element_type":
            return ScalarType(self.base.element_type)
        if name in ("level", "trigger_level", "max_elements", "thrifty", "double_buffer"):
            return getattr(self.request, name)
        raise AttributeError(name)

    def __repr__(self):
        r = self.request
        where = f"max_elements={r.max_elements}" if r.max_elements is not None else f"index={r.index}"
        return f"Cache({r.name} of {r.source}, {where}, trigger_index={r.trigger_index})"

    @property
    def base(self) -> Array:
        return self.source if isinstance(self.source, Array) else self.source.base


def _enum_value(v, enum_type, what):
    if v is None or isinstance(v, str):
        return v
    if isinstance(v, enum_type):
        return v.value
    raise ScheduleError(f"{what} must be an {enum_type.__name__}, got {v!r}")


class Plan:
    def __init__(self, schedule: Schedule, target: Target | None = None):
        self.schedule = schedule
        self.target = target or Target.HOST
        self.bindings: dict[str, str] = {}  # index -> GridUnit value (`bind`)
        self.caches: list[Cache] = []
        self.vectorized: list[str] = []
        self.unrolled: list[str] = []
        self.parallel: dict | None = None

    def cache(self, source: Array | Cache, index: LoopIndex | None = None, trigger_index: LoopIndex | None = None,
              layout: Layout | None = None, max_elements: int | None = None, element_type=None,
              thrifty: bool | None = None, location: MemorySpace = MemorySpace.NONE, level: int | None = None,
              trigger_level: int | None = None, double_buffer: bool = False, double_buffer_location=None,
              vectorize=None, strategy: CacheStrategy = CacheStrategy.AUTO, _shared_memory_offset=None) -> Cache:  # fmt: skip
        if not isinstance(source, (Array, Cache)):
            raise ScheduleError(f"plan.cache caches an Array or a Cache, got {source!r}")
        base = source if isinstance(source, Array) else source.base
        taken = {c.request.name for c in self.caches} | {a.name for a in self._arrays()}
        req = CacheRequest(
            name=_assigned_names(1, f"{base.name}_cache", taken)[0],
            source=source.request.name if isinstance(source, Cache) else source.name,
            index=self.schedule._name(index) if index is not None else None,
            trigger_index=self.schedule._name(trigger_index) if trigger_index is not None else None,
            level=level, trigger_level=trigger_level, max_elements=max_elements,
            layout=layout.value if isinstance(layout, Layout) else None if layout is None else str(layout),
            thrifty=bool(thrifty), double_buffer=bool(double_buffer),
            double_buffer_location=_enum_value(double_buffer_location, MemorySpace, "double_buffer_location") or "auto",
            location=_enum_value(location, MemorySpace, "location"),
            strategy=_enum_value(strategy, CacheStrategy, "strategy"),
            shared_memory_offset=_shared_memory_offset,
        )  # fmt: skip
        if req.name in {c.request.name for c in self.caches} | {a.name for a in self._arrays()}:
            req.name = f"{req.name}_{len(self.caches)}"
        recorded = replace(req)
        check_request(req, self.schedule.model, base.role.value, "gpu" if self.target.is_gpu else "cpu",
                      source.request if isinstance(source, Cache) else None)  # fmt: skip
        # after Accera's rules: what this compiler does not do yet
        if element_type is not None and _scalar_type(element_type) != base.element_type:
            raise ScheduleError("cache element_type conversions are not supported yet: leave element_type unset")
        # the IR records levels as the indices they named now (Accera snapshots the order)
        if recorded.level is not None:
            recorded.index, recorded.level = req.index, None
        if recorded.trigger_level is not None:
            recorded.trigger_index, recorded.trigger_level = req.trigger_index, None
        cache = Cache(req, source, self, recorded)
        self.caches.append(cache)
        return cache

    def bind(self, mapping: dict) -> None:
        """Map loop indices to the GPU grid: `{i: GridUnit.BLOCK_Y, ii: GridUnit.THREAD_Y}`. Each bound
        loop runs as one block (or thread) per iteration; the grid and block sizes are the bound
        loops' trip counts (docs/loop_nests.md, "GPU plans")."""
        if not self.target.is_gpu:
            raise ScheduleError("Only supported on plans with GPU targets")
        if not isinstance(mapping, dict):
            raise ScheduleError(f"bind takes a mapping {{index: GridUnit}}, got {mapping!r}")
        for index, unit in mapping.items():
            if isinstance(index, tuple):
                raise ScheduleError("binding a tuple of indices to one grid unit is not supported yet")
            if not isinstance(unit, GridUnit):
                raise ScheduleError(f"bind maps indices to Target.GridUnit values, got {unit!r}")
            if unit in (GridUnit.WARP_X, GridUnit.WARP_Y):
                raise ScheduleError("binding to warps is not supported yet (bind to THREAD_X/Y/Z)")
            name = self.schedule._name(index)
            taken = [i for i, u in self.bindings.items() if u == unit.value and i != name]
            if taken:
                raise ScheduleError(f"{unit.name} is already bound to {taken[0]}")
            self.bindings[name] = unit.value

    def vectorize(self, index: LoopIndex) -> None:
        self.vectorized.append(self.schedule._name(index))

    def unroll(self, index: LoopIndex) -> None:
        self.unrolled.append(self.schedule._name(index))

    def kernelize(self, unroll_indices: Sequence[LoopIndex], vectorize_indices=None) -> None:
        vectorize_indices = vectorize_indices if isinstance(vectorize_indices, (list, tuple)) else (
            [vectorize_indices] if vectorize_indices is not None else [])  # fmt: skip
        if any(v in unroll_indices for v in vectorize_indices):
            raise ScheduleError("vectorize_indices cannot be one of the unroll indices")
        for i in unroll_indices:
            self.unroll(i)
        for v in vectorize_indices:
            self.vectorize(v)

    def parallelize(self, indices, pin=None, policy: str = "static", max_threads: int | None = None) -> None:
        if self.target.is_gpu:
            raise ScheduleError("parallelize is for CPU targets: on a GPU, bind indices to the grid")
        indices = list(indices) if isinstance(indices, (list, tuple)) else [indices]
        names = [self.schedule._name(i) for i in indices]
        order = self.schedule.model.order
        positions = [order.index(n) for n in names]
        if positions != list(range(positions[0], positions[0] + len(positions))):
            raise ScheduleError("indices must be contiguous in the Schedule dimension order")
        if max_threads is not None and (not isinstance(max_threads, int) or max_threads <= 0):
            raise ScheduleError("max_threads must be a positive (greater than 0) integer.")
        if pin is not None:
            raise ScheduleError("parallelize: pin is not implemented")
        import os

        threads = max_threads or os.cpu_count() or 1
        self.parallel = {"indices": names, "threads": threads, "policy": str(policy)}

    # --------------------------------------------------------------------- IR and code

    def _arrays(self) -> list[Array]:
        seen: dict[int, Array] = {}
        for array, indices, value in self.schedule.nest.logic:
            for a in [array, *_loads(value)]:
                seen.setdefault(id(a), a)
        return sorted(seen.values(), key=lambda a: a.order)

    @property
    def module(self):
        """The nest as IR: `func.func` holding one `oi.nest` with `oi.schedule` and `oi.plan`."""
        from oi_compiler.boundary import stage
        from oi_compiler.frontend.loopnest_ir import plan_module

        with stage("emit-nest"):
            return plan_module(self, "nest")

    def ptx(self, args: Sequence[Array] | None = None, name: str = "nest") -> str:
        """A GPU plan's kernel as PTX text (`pipeline.GPU_NEST_STAGES`)."""
        from oi_compiler.backend.ptx import NvptxTarget, emit_ptx
        from oi_compiler.boundary import stage
        from oi_compiler.frontend.loopnest_ir import plan_module
        from oi_compiler.runtime.nest_function import map_to_gpu

        if not self.target.is_gpu:
            raise ScheduleError("ptx() is for plans with GPU targets: create the plan with an oi.Target of the GPU category")
        with stage("ptx"):
            module = plan_module(self, name, args)
            map_to_gpu(module)
            return emit_ptx(module, NvptxTarget(self.target.arch))

    def build(self, args: Sequence[Array] | None = None, name: str = "nest"):
        """Compile for the plan's target; returns a function of numpy arrays (the INPUT and
        INPUT_OUTPUT arrays, in `args` order or in the order they were created). A GPU plan's
        function launches its kernel (`OI_GPU_EMULATE=1`: runs it on the CPU, see docs/gpu.md)."""
        from oi_compiler.boundary import stage
        from oi_compiler.frontend.loopnest_ir import plan_module, plan_params
        from oi_compiler.runtime.nest_function import build_cpu, build_gpu

        with stage("build"):  # the passes inside name themselves (`run_passes`)
            module = plan_module(self, name, args)
            if self.target.is_gpu:
                return build_gpu(module, name, plan_params(self, args), self.target.arch)
            return build_cpu(module, name, plan_params(self, args))


def _loads(expr: Expr):
    if isinstance(expr, Load):
        yield expr.array
    elif isinstance(expr, Bin):
        yield from _loads(expr.lhs)
        yield from _loads(expr.rhs)
    elif isinstance(expr, Call):
        for a in expr.args:
            yield from _loads(a)
