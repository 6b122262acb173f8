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

Names (of arrays, caches and indices) are read from the assignment they appear in, as Accera
does (`i, j, k = nest.get_indices()` names the loops i, j, k), in the caller's bytecode, so code
with no source file (`python -c`, stdin, a notebook) is named the same. A message about one its
statement did not name calls it by the name the caller has it under when the message is made
(`X`, `arrays[0]`), else by what it is ("the INPUT array of shape (8,) declared at gemm.py:12",
"the cache of A at index ii", "index 0 of the nest of shape (8,)"). Everything is recorded; the IR
is made by `plan.module`, and `plan.build()` runs `--tile --cache --double-buffer
--lower-nests` on it (runtime/nest_function.py), so a plan and its IR give the same code.

Every rule a call can check when it is made is checked there (`plan.cache`, `parallelize`,
`unroll`, `vectorize`, `kernelize`, `bind`, and `split`/`tile`/`reorder` against the plans
already made from the schedule), and its `ScheduleError` names arrays, caches and indices as
the user named them; `plan.build()` checks again on the IR (the same rules, for hand-written IR),
and its errors, which know only IR names (`array0_cache0`), are reworded in the same names.
"""

from __future__ import annotations

import contextlib
import copy
import dis
import enum
import functools
import inspect
import itertools
import numbers
import os
import re
import sysconfig
import warnings
import weakref
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

import numpy as np

from oi_compiler.errors import OiError, ScheduleError
from oi_compiler.loopnest.cache_rules import (
    CacheRequest,
    check_request,
    multicache_of_written,
)
from oi_compiler.loopnest.layouts import column_major, row_major
from oi_compiler.loopnest.schedule import ScheduleModel


class AcceraCompatWarning(UserWarning):
    """Code Accera accepts and this compiler runs as Accera does, though it bends a rule of the
    API: the logic writing a `Role.INPUT` array (the function then writes it in place). Turn it
    into an error with `warnings.simplefilter("error", AcceraCompatWarning)`."""


class Role(enum.Enum):
    """An array's role: `INPUT` (a function argument the logic reads; Accera lets the logic
    write it too, with an `AcceraCompatWarning`), `INPUT_OUTPUT` (an argument the logic writes,
    in place), `CONST` (`data=`, compiled in) or `TEMP` (zeroed scratch inside the function)."""

    INPUT = "input"
    INPUT_OUTPUT = "input_output"
    CONST = "const"
    TEMP = "temp"


class Layout(enum.Enum):
    """An array's (or a cache's) element order; a tuple of strides is accepted where a layout is."""

    FIRST_MAJOR = "first_major"  # row-major: the last index is contiguous
    LAST_MAJOR = "last_major"  # column-major: the first index is contiguous


class ScalarType(enum.Enum):
    """Element types: `element_type=` also takes the value strings ("f32") and numpy dtypes."""

    float32 = "f32"
    float64 = "f64"
    int32 = "i32"
    int64 = "i64"


class MemorySpace(enum.Enum):
    """Where `plan.cache(location=...)` keeps a cache: NONE/GLOBAL (memory, the only ones on the
    cpu), SHARED and PRIVATE (GPU targets); MMA_FRAGMENT is refused."""

    NONE = "none"
    GLOBAL = "global"
    SHARED = "shared"
    PRIVATE = "private"
    MMA_FRAGMENT = "mma_fragment"


class CacheStrategy(enum.Enum):
    """`plan.cache(strategy=...)`: AUTO on the cpu (Accera's rule); recorded on GPU targets."""

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

    Options:
      - `category`: `Target.Category.CPU` (the host; `create_plan(target="cpu")` is the same) or
        `Target.Category.GPU` (an NVIDIA GPU through CUDA). No ROCm/Vulkan, no named device
        models (Accera's `Target.Model`).
      - `runtime`: `Target.Runtime.CUDA` for a GPU (the default there), `NONE` for the cpu.
      - `arch`: the GPU's architecture, one of `backend/ptx.py`'s `ARCHES` (default "sm_80");
        ignored on the cpu.
      - `max_threads_per_block`: the most threads `plan.bind` may put in one block (1024).
      - `vector_bytes` (cpu only; Accera's name): the vector width in bytes LLVM prefers when it
        compiles the plan's vectorized (and all other) loops: 16, 32 or 64 (128-, 256-, 512-bit
        vectors), or None (the default), LLVM's choice for the host CPU, which is 32 on AVX-512
        Intel CPUs. A width the host has no vectors of is refused (`oi.VectorWidthError`). It
        may be an `oi.Parameter`, resolved when the plan is built, so a tuning grid can search
        it. It applies to this plan's compile only and is part of its compile-cache key.

    `target.GridUnit` (BLOCK_X/Y/Z, THREAD_X/Y/Z; WARP_X/Y are refused) and `target.MemorySpace`
    are the values `plan.bind` and `plan.cache(location=...)` take, as in Accera."""

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
                 arch: str = "sm_80", max_threads_per_block: int = 1024, vector_bytes=None):  # fmt: skip
        if not isinstance(category, Target.Category):
            raise ScheduleError(f"Target category must be a Target.Category, got {category!r}")
        if vector_bytes is not None and category is not Target.Category.CPU:
            raise ScheduleError("vector_bytes is a cpu target's option (the vector width LLVM prefers)")
        self.vector_bytes = _given(vector_bytes) if vector_bytes is not None else None  # a Parameter: its value now
        if self.vector_bytes is not None:
            self.host_vector_bytes()
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

    def host_vector_bytes(self):
        """The host target (backend/jit.py's `HostTarget`) with this target's vector width;
        `VectorWidthError` where the host has no vectors that wide."""
        from oi_compiler.backend.jit import host_target

        vector_bytes = self.vector_bytes
        if vector_bytes is not None:
            if isinstance(vector_bytes, bool) or not isinstance(vector_bytes, numbers.Integral):
                from oi_compiler.errors import VectorWidthError

                raise VectorWidthError(f"vector_bytes must be an int (16, 32 or 64) or None, got {vector_bytes!r}")
            vector_bytes = self.vector_bytes = int(vector_bytes)
        return host_target().with_vector_bytes(vector_bytes)

    def __repr__(self) -> str:
        vector = "" if self.vector_bytes is None else f", vector_bytes={self.vector_bytes!r}"
        return f"Target({self.category.name}{', ' + self.arch if self.is_gpu else ''}{vector})"


Target.HOST = Target()


def _target(target) -> Target:
    if isinstance(target, Target):
        return target
    if target in ("cpu", "host", "HOST"):
        return Target.HOST
    raise ScheduleError(f"create_plan takes an oi.Target or target='cpu', got {target!r}")


_counter = itertools.count()

#: this package's directory: frames of code in it are not the user's
_PACKAGE_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "")
#: Python's standard library (`contextlib`, `re` run between a user's call and this package's
#: code) is not the user's code either; what is installed in site-packages may be
_PATHS = sysconfig.get_paths()
_STDLIB_DIRS = tuple({os.path.join(os.path.abspath(_PATHS[k]), "") for k in ("stdlib", "platstdlib")})
_INSTALLED_DIRS = tuple({os.path.join(os.path.abspath(_PATHS[k]), "") for k in ("purelib", "platlib")})


def _user_frame():
    """The frame of the user code that called the API method whose helper calls us (`i, j =
    nest.get_indices()`: get_indices -> _assigned_names -> here), or None."""
    frame = inspect.currentframe()
    for _ in range(3):  # ends on the user's frame: nothing keeps this one alive
        frame = frame.f_back if frame else None
    return frame


def _is_user_code(filename: str) -> bool:
    if filename.startswith("<"):  # `<stdin>`, `<string>` (`python -c`), not `<frozen importlib...>`
        return not filename.startswith("<frozen ")
    path = os.path.abspath(filename)
    if path.startswith(_PACKAGE_DIR):
        return False
    return not path.startswith(_STDLIB_DIRS) or path.startswith(_INSTALLED_DIRS)


def _outside_frame():
    """The innermost frame of the user's code (outside this package and the standard library):
    the code that called into this package, or None."""
    frame = inspect.currentframe()
    while frame is not None and not _is_user_code(frame.f_code.co_filename):
        frame = frame.f_back
    return frame


class _Names(list):
    """Names `_assigned_names` found; `from_user` says whether the user's statement gave them."""

    from_user = False


#: instructions that store the value on top of the stack into a plain name
_STORES = ("STORE_NAME", "STORE_FAST", "STORE_GLOBAL", "STORE_DEREF")
#: instructions passed over on the way from a call to what takes its result
_SKIPPED = ("NOP", "CACHE", "EXTENDED_ARG")
#: unconditional forward jumps (`A = oi.Array(...) if c else B` jumps over the else arm)
_JUMPS = ("JUMP_FORWARD", "JUMP", "JUMP_NO_INTERRUPT")


@functools.lru_cache(maxsize=64)
def _instructions(code) -> tuple[list[dis.Instruction], dict[int, int]]:
    """`code`'s instructions and the position of each offset among them (a script makes its
    arrays and indices in one code object: disassembled once)."""
    instructions = list(dis.get_instructions(code))
    return instructions, {ins.offset: k for k, ins in enumerate(instructions)}


def _stored_names(frame) -> list[str] | None:
    """The names the statement of `frame` stores the result of the call it is in to, read from
    the bytecode after the call (no source text needed: `python -c`, stdin, a notebook, a .pyc
    alone give the same names): `A = f()` -> ["A"], `i, j = f()` -> ["i", "j"], `A = B = f()`
    and `(A := f())` -> ["A"]; None when the result goes anywhere else (an argument, an
    attribute, a list being built, a `return`)."""
    instructions, at = _instructions(frame.f_code)
    k = next((k for k, ins in enumerate(instructions) if ins.offset > frame.f_lasti), None)
    names: list[str] = []
    pending, first = 1, True  # names still to store; whether nothing was seen yet
    while k is not None and k < len(instructions) and pending > 0:
        ins = instructions[k]
        k += 1
        if ins.opname in _SKIPPED:
            continue
        if ins.opname in _JUMPS and isinstance(ins.argval, int) and ins.argval > ins.offset:
            k = at.get(ins.argval)
            continue
        if first and ins.opname in ("COPY", "DUP_TOP") and (ins.arg or 1) == 1:
            first = False  # a chained assignment or `:=`: its first name
            continue
        first = False
        if ins.opname == "UNPACK_SEQUENCE":
            pending += ins.arg - 1
        elif ins.opname in _STORES and isinstance(ins.argval, str):
            names.append(ins.argval)
            pending -= 1
        elif ins.opname == "STORE_FAST_STORE_FAST" and isinstance(ins.argval, tuple):  # Python 3.13
            names.extend(ins.argval)
            pending -= len(ins.argval)
        elif ins.opname == "STORE_FAST_LOAD_FAST" and isinstance(ins.argval, tuple):  # Python 3.13
            names.append(ins.argval[0])
            pending -= 1
        else:
            return None
    return names if pending == 0 else None


def _assigned_names(count: int, fallback: str, taken: set[str] | None = None) -> _Names:
    """The names on the left of the `=` in the statement of user code that called the API
    method calling us (`ii, jj = schedule.tile(...)`), read from its bytecode, else fresh names:
    `fallback` numbered by a process-wide counter, or, with `taken`, by the smallest number not
    taken (names that do not depend on what else the process built, so a rebuilt plan has the
    same IR and cache key). `.from_user` on the result says which: messages name only what the
    user named."""
    caller = _user_frame()
    try:
        # this package's own calls (`nest.create_schedule()` calling `get_indices()`) name nothing
        names = _stored_names(caller) if caller is not None and _is_user_code(caller.f_code.co_filename) else None
    finally:
        del caller
    if names is not None and len(names) == count and all(n.isidentifier() for n in names):
        found = _Names(names)
        found.from_user = True
        return found
    if taken is None:
        return _Names(f"{fallback}{next(_counter)}" for _ in range(count))
    fresh = (f"{fallback}{n}" for n in itertools.count() if f"{fallback}{n}" not in taken)
    return _Names(next(fresh) for _ in range(count))


def _unpacks_one_name() -> bool:
    """Whether the user code that called the API method calling us unpacks its result into one
    name (`i, = ...`): the bytecode after the call is `UNPACK_SEQUENCE 1`."""
    caller = _user_frame()
    after = [ins for ins in _instructions(caller.f_code)[0] if ins.offset > caller.f_lasti] if caller else []
    return bool(after) and after[0].opname == "UNPACK_SEQUENCE" and after[0].arg == 1


def _declared_at() -> str:
    """Where the user's code made the object being made: `gemm.py:12`, `<stdin>:3`."""
    frame = _outside_frame()
    try:
        if frame is None:
            return "an unknown place"
        filename = frame.f_code.co_filename
        return f"{filename if filename.startswith('<') else os.path.basename(filename)}:{frame.f_lineno}"
    finally:
        del frame


#: the most items of a list, tuple or dict `_bound_name` looks through
_MAX_SCANNED = 256


def _bound_name(obj) -> str | None:
    """The name the user's code (the innermost frame outside this package) has `obj` under now,
    for an object its statement did not name when it was made (`X, Y = [oi.Array(...) for ...]`,
    `arrays = [...]`): a local or global variable (`X`), else an item of a list, tuple or dict
    one holds (`arrays[0]`, `arrays['A']`). Found by identity; None when there is none."""
    frame = _outside_frame()
    try:
        if frame is None:
            return None
        scopes = [frame.f_locals] + ([frame.f_globals] if frame.f_globals is not frame.f_locals else [])
        for scope in scopes:
            for key, value in list(scope.items()):
                if value is obj and isinstance(key, str) and key.isidentifier() and key != "_":
                    return key
        for scope in scopes:
            for key, value in list(scope.items()):
                if not isinstance(key, str) or not key.isidentifier() or key.startswith("__"):
                    continue
                if isinstance(value, (list, tuple)) and len(value) <= _MAX_SCANNED:
                    for n, item in enumerate(value):
                        if item is obj:
                            return f"{key}[{n}]"
                elif isinstance(value, dict) and len(value) <= _MAX_SCANNED:
                    for item_key, item in list(value.items()):
                        if item is obj and isinstance(item_key, (str, int)):
                            return f"{key}[{item_key!r}]"
        return None
    finally:
        del frame


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
    """One loop of a nest or schedule (`nest.get_indices()`, `schedule.split(...)`).

    `name` is its name in the IR; `user_named` says whether the user's statement gave it
    (`i, j = nest.get_indices()`); `origin` says what made it, for messages about an index
    the user never named (`index 0 of the nest of shape (8, 8)`)."""

    def __init__(self, name: str, user_named: bool = True, origin: str | Callable[[], str] = "",
                 given: str | None = None):  # fmt: skip
        self.name = name
        self.user_named = user_named
        self._origin = origin or name
        self._given = given or name  # `i = schedule.split(i, 4)`: "i", though the IR calls it "i_"
        super().__init__({self: 1})

    @property
    def origin(self) -> str:
        return self._origin() if callable(self._origin) else self._origin

    @property
    def label(self) -> str:
        """How messages call the index: its name when the user gave one, else the name the
        user's code has it under now (`idx[0]`), else what made it."""
        if self.user_named:
            return self._given
        return _bound_name(self) or self.origin

    def __hash__(self):
        return id(self)

    def __eq__(self, other):
        return self is other

    def __repr__(self):
        return f"LoopIndex({self.name})"


# ----------------------------------------------------------------------------- value expressions


#: the functions the logic supports (this module's `max`, `min`, ...), as `loopnest_ir` lowers them
LOGIC_FUNCTIONS = ("max", "min", "abs", "exp", "log", "sqrt", "tanh")
SUPPORTED_LOGIC = ("the logic supports + - * / and unary - on array elements and constants, and the functions "
                   f"{', '.join(LOGIC_FUNCTIONS)} of oi_compiler.frontend.loopnest "
                   "(`from oi_compiler.frontend.loopnest import exp`)")  # fmt: skip
#: numpy ufuncs that are the logic's arithmetic (numpy scalars meet the logic through them)
_NUMPY_ARITHMETIC = {"add": "add", "subtract": "sub", "multiply": "mul", "divide": "div", "true_divide": "div"}
#: numpy ufuncs with an equivalent among LOGIC_FUNCTIONS, for the message
_NUMPY_EQUIVALENT = {"maximum": "max", "fmax": "max", "minimum": "min", "fmin": "min", "absolute": "abs",
                     "fabs": "abs", "exp": "exp", "log": "log", "sqrt": "sqrt", "tanh": "tanh"}  # fmt: skip


def _unsupported_in_logic(what: str, instead: str | None = None) -> ScheduleError:
    use = f"use oi_compiler.frontend.loopnest.{instead} instead; " if instead else ""
    return ScheduleError(f"{what} is not supported in @nest.iteration_logic: {use}{SUPPORTED_LOGIC}")


class Expr:
    """A scalar value in the logic: array elements, constants, arithmetic and intrinsics.

    It is symbolic: numpy and `math` functions, comparisons, `if` on it and `int()`/`float()`
    raise a `ScheduleError` naming what the logic supports (`SUPPORTED_LOGIC`)."""

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
    def __pos__(self): return self  # noqa: E704
    def __abs__(self): return Call("abs", [self])  # noqa: E704 - Python's abs(), as Accera's

    # numpy meets the logic through these: its scalars' arithmetic (`np.float32(2) * A[i]`) is the
    # logic's; every other numpy function (`np.exp(A[i])`) is refused with what to use instead
    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        name = getattr(ufunc, "__name__", str(ufunc))
        if method == "__call__" and not kwargs:
            if name in _NUMPY_ARITHMETIC and len(inputs) == 2:
                return Bin(_NUMPY_ARITHMETIC[name], _value(inputs[0]), _value(inputs[1]))
            if name == "negative" and len(inputs) == 1:
                return -_value(inputs[0])
            if name == "positive" and len(inputs) == 1:
                return _value(inputs[0])
        raise _unsupported_in_logic(f"np.{name}", _NUMPY_EQUIVALENT.get(name))

    def __array_function__(self, func, types, args, kwargs):
        raise _unsupported_in_logic(f"np.{getattr(func, '__name__', func)}")

    def _not_a_number(self, *_):
        raise _unsupported_in_logic("converting a value of the logic to a Python number (as math.exp, int(), "
                                    "float() and other functions of numbers do)")  # fmt: skip

    __float__ = __int__ = __complex__ = _not_a_number

    def _comparison(self, *_):
        raise _unsupported_in_logic("comparing values of the logic (also Python's built-in max/min and `if` on a "
                                    "value)", "max/min")  # fmt: skip

    __lt__ = __le__ = __gt__ = __ge__ = __bool__ = _comparison

    def _operator(symbol):  # makes the methods below
        def refuse(self, *_):
            raise _unsupported_in_logic(f"the operator {symbol}")

        return refuse

    __pow__ = __rpow__ = _operator("**")
    __floordiv__ = __rfloordiv__ = _operator("//")
    __mod__ = __rmod__ = _operator("%")
    __matmul__ = __rmatmul__ = _operator("@")
    del _operator


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
    raise ScheduleError(f"unsupported value in the logic: {v!r} ({SUPPORTED_LOGIC})")


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
    """An array the logic reads or writes (Accera's `acc.Array`).

        A = oi.Array(role=oi.Role.INPUT, element_type=oi.ScalarType.float32, shape=(M, K))

    Options:
      - `role` (required), an `oi.Role`:
        `INPUT`: a function argument the logic reads. Accera lets the logic write it too; so does
        this compiler, with an `AcceraCompatWarning` naming the array, and the function then
        writes it in place (its argument must be writeable);
        `INPUT_OUTPUT`: a function argument the logic writes (in place);
        `CONST`: compiled in as a constant, from `data=` (a numpy array of `shape`; FIRST_MAJOR only);
        `TEMP`: scratch inside the function, zeroed at each call (cpu targets only).
        Accera's `OUTPUT` role and `acc.Dimension` (runtime) sizes are not supported.
      - `element_type`: `oi.ScalarType.float32` (default), `float64`, `int32`, `int64`; also their
        strings ("f32", ...) and numpy dtypes. The logic of one statement uses one type.
      - `shape`: a sequence of positive ints (static sizes).
      - `layout`: `oi.Layout.FIRST_MAJOR` (row-major, default), `LAST_MAJOR` (column-major: pass
        `np.asfortranarray` data), or a tuple of strides in elements (one per dimension).
      - `data`: the values of a CONST array.
      - `name`: the name in the IR and in messages; by default the name it is assigned to
        (`A = oi.Array(...)` is "A"), as Accera does. An array with neither is called in messages by
        the name the caller has it under then (`arrays[0]`), else by its role, shape and place
        ("the INPUT array of shape (4, 4) declared at gemm.py:12").

    `A[i, k + 1]` reads an element in the logic (indices are affine expressions of the nest's
    indices); `A[i, j] = ...` and `A[i, j] += ...` write one (never a CONST array)."""

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
        names = _assigned_names(1, "array") if not name else None
        self.name = name or names[0]
        self.user_named = bool(name) or names.from_user
        self.declared_at = _declared_at()
        self.order = next(_counter)

    @property
    def label(self) -> str:
        """How messages call the array: its name when the user gave one (`name=` or `A = ...`),
        else the name the user's code has it under now (`X` after `X, Y = [oi.Array(...) ...]`,
        `arrays[0]`), else its role, shape and where it was made."""
        if self.user_named:
            return self.name
        return _bound_name(self) or f"the {self.role.name} array of shape {self.shape} declared at {self.declared_at}"

    @property
    def dtype(self) -> np.dtype:
        return np.dtype({"f32": np.float32, "f64": np.float64, "i32": np.int32, "i64": np.int64}[self.element_type])

    def _indices(self, key) -> list[IndexExpr]:
        key = key if isinstance(key, tuple) else (key,)
        if len(key) != len(self.shape):
            raise ScheduleError(f"{self.label} has {len(self.shape)} dimensions, indexed with {len(key)}")
        return [IndexExpr.of(k) for k in key]

    def __getitem__(self, key) -> Load:
        return Load(self, self._indices(key))

    def __setitem__(self, key, value) -> None:
        if not _recording:
            raise ScheduleError("arrays can be written only inside @nest.iteration_logic")
        if self.role is Role.CONST:
            raise ScheduleError(f"{self.label} is a CONST array and cannot be written (use INPUT_OUTPUT)")
        indices, value = self._indices(key), _value(value)
        if self.role is Role.INPUT:  # Accera's tests do it: the function writes the argument in place
            warnings.warn(f"{self.label} is an INPUT array and the logic writes it: accepted, as Accera does, and the "
                          f"function writes {self.label} in place (declare it Role.INPUT_OUTPUT to say so)",
                          AcceraCompatWarning, stacklevel=2)  # fmt: skip
        _recording[-1].append((self, indices, value))

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
    """The iteration space and the logic run at each of its points (Accera's `acc.Nest`).

        nest = oi.Nest(shape=(M, N, K))
        i, j, k = nest.get_indices()

        @nest.iteration_logic
        def _():
            C[i, j] += A[i, k] * B[k, j]

    - `shape`: the extent of each dimension (positive ints; no `acc.Dimension`).
    - `get_indices()`: one `LoopIndex` per dimension, named after the assignment (`i, j, k = ...`);
      a 1-D nest returns the index itself, or a one-element tuple for `i, = ...`.
    - `iteration_logic(logic)` (a decorator): records `logic()`. It may read and write arrays at
      affine expressions of the nest's indices, with `+ - * /`, unary `-`, constants, Python's
      `abs`, and `max`, `min`, `abs`, `exp`, `log`, `sqrt`, `tanh` from oi_compiler.frontend.loopnest
      (`LOGIC_FUNCTIONS`); numpy and math functions, comparisons and `if` on values are refused
      with a `ScheduleError` saying so. `predicate=`/`placement=` are not supported.
    - `create_schedule()` -> `Schedule`; `create_plan(target)` = `create_schedule().create_plan(target)`.
    """

    def __init__(self, shape: Sequence[int]):
        self.shape = [int(s) for s in shape]
        if not self.shape or any(s < 1 for s in self.shape):
            raise ScheduleError(f"a nest needs a shape of positive sizes, got {tuple(shape)}")
        self._indices: list[LoopIndex] | None = None
        self.logic: list = []

    def get_indices(self) -> tuple[LoopIndex, ...]:
        if self._indices is None:
            names = _assigned_names(len(self.shape), "i")
            self._indices = [LoopIndex(n, names.from_user, f"index {d} of the nest of shape {tuple(self.shape)}")
                             for d, n in enumerate(names)]  # fmt: skip
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
            statements = _recording[-1]
        finally:
            _recording.pop()
        own = set(self._indices)
        for array, indices, value in statements:
            for expr in [*indices, *(i for load in _load_exprs(value) for i in load.indices)]:
                if other := [x for x in expr.terms if x not in own]:
                    raise ScheduleError(f"the logic can index arrays only by the nest's indices "
                                        f"({', '.join(i.label for i in self._indices)}), not {other[0].label}")  # fmt: skip
        self.logic.extend(statements)
        return logic

    def create_schedule(self) -> Schedule:
        if self._indices is None:
            self.get_indices()
        return Schedule(self)

    def create_plan(self, target: Target | str = "cpu", **gpu_options) -> Plan:
        return self.create_schedule().create_plan(target, **gpu_options)


class Schedule:
    """The order of a nest's loops (Accera's `acc.Schedule`), made by `nest.create_schedule()`.

    - `split(index, size)` -> the new inner index: `index` then walks tiles of `size` (its step is
      multiplied by `size`) and the new index, placed right after it, walks inside one. `size` is
      an int >= 1 and need not divide the extent (the last tile is shorter).
    - `tile({i: 32, j: 64})` -> the inner indices: one `split` per entry, in dict order (all or
      nothing).
    - `reorder(i, j, ...)` or `reorder([i, j, ...])`: the whole order (every index once, each
      inner index after its outer one).
    - `get_indices()`, `is_valid_loop_order(order)`.
    - `create_plan(target="cpu")` -> `Plan`: `target` is "cpu" or an `oi.Target` (a GPU);
      `_dynamic_shared_memory_size` and `_blocks_per_SM` are GPU-only and not supported yet.

    A split, tile or reorder that would break a rule of a plan already made from this schedule
    (its caches' levels, its `parallelize`, its GPU block size) raises `ScheduleError` and
    leaves the schedule as it was. Not supported: `skew`, `pad`, `fuse`."""

    def __init__(self, nest: Nest):
        self.nest = nest
        self.indices = {i.name: i for i in nest._indices}
        self.model = ScheduleModel.initial(list(self.indices), nest.shape)
        self._plans: weakref.WeakSet[Plan] = weakref.WeakSet()

    def _name(self, index: LoopIndex) -> str:
        if not isinstance(index, LoopIndex):
            raise ScheduleError(f"{index!r} is not an index of this schedule")
        if self.indices.get(index.name) is not index:
            raise ScheduleError(f"{index.label} is not an index of this schedule")
        return index.name

    def _given_index(self, value, by_name: bool = False):
        """`value`, or the index a parameter's value names (`"jj"`: the name it was assigned to);
        with `by_name`, a name given directly too (the items of a parameter's order)."""
        given = _given(value)
        if isinstance(given, str) and (by_name or given is not value) and given in self.indices:
            return self.indices[given]
        return given

    def _label(self, name: str) -> str:
        """How messages call the index named `name` in the IR (`LoopIndex.label`)."""
        index = self.indices.get(name)
        return index.label if index is not None else name

    def _change(self, what: str, edit: Callable[[ScheduleModel], None]) -> None:
        """Apply `edit` to a copy of the model; keep it only if every plan of this schedule
        still keeps its rules with it."""
        trial = copy.deepcopy(self.model)
        edit(trial)
        for plan in list(self._plans):
            plan._recheck(trial, what)
        self.model = trial

    def split(self, index: LoopIndex, size: int) -> LoopIndex:
        names = _assigned_names(1, f"{index.name}_") if isinstance(index, LoopIndex) else _Names([""])
        return self._splits([(index, size)], names, "split")[0]

    def _splits(self, pairs, new_names: _Names, what: str) -> list[LoopIndex]:
        taken, edits, origins, given = set(self.indices), [], {}, {}
        for (index, size), new_name in zip(pairs, new_names):
            index, size = self._given_index(index), _given(size)
            name = self._name(index)
            wanted = new_name
            while new_name in taken:
                new_name += "_"
            taken.add(new_name)
            edits.append((name, size, new_name))
            origins[new_name], given[new_name] = _split_origin(index, size, what), wanted

        def edit(model: ScheduleModel) -> None:
            for name, size, new_name in edits:
                model.split(name, size, new_name)

        self._change(what, edit)
        for _, _, new_name in edits:
            self.indices[new_name] = LoopIndex(new_name, new_names.from_user, origins[new_name], given[new_name])
        return [self.indices[new_name] for _, _, new_name in edits]

    def tile(self, shape: dict[LoopIndex, int]) -> list[LoopIndex]:
        if not isinstance(shape, dict):
            raise ScheduleError(f"tile takes a dict {{index: size}}, got {shape!r}")
        names = _assigned_names(len(shape), "t")
        return self._splits(list(shape.items()), names, "tile")

    def reorder(self, order=None, *args: LoopIndex) -> None:
        given = _given(order)  # a parameter's value: a tuple of indices or of their names
        by_name, order = given is not order, given
        if isinstance(order, (list, tuple)):
            indices = list(order) + list(args)
        else:
            indices = ([order] if order is not None else []) + list(args)
        names = [self._name(self._given_index(i, by_name)) for i in indices]
        self._change("reorder", lambda model: model.reorder(names))

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
        plan = Plan(self, target)
        if target.is_gpu and any(a.role is Role.TEMP for a in plan._arrays()):
            raise ScheduleError("TEMP arrays are not supported on GPU targets yet")
        self._plans.add(plan)
        return plan


def _given(value):
    """`value`, or the value an `oi.Parameter` has in the candidate being built: the tuner
    (oi_compiler/tuning) calls a plan builder once per point of a parameter grid, and each call
    here reads the parameters' values of that point."""
    resolve = getattr(type(value), "__oi_parameter_value__", None)
    return resolve(value) if resolve is not None else value


def _split_origin(index: LoopIndex, size: int, what: str) -> Callable[[], str]:
    """What made an index `split` or `tile` made, worded when a message needs it."""
    if what == "split":
        return lambda: f"the index split({index.label}, {size}) returned"
    return lambda: f"the inner index tile made of {index.label} (size {size})"


@dataclass
class Cache:
    """What `plan.cache` returns: the request as resolved (Accera's `Cache` fields: `index`,
    `trigger_index`, `level`, `trigger_level`, `layout`, `max_elements`, `thrifty`,
    `double_buffer`, `location`, `element_type`), usable as the source of a further cache
    (hierarchical caching)."""

    request: CacheRequest
    source: Array | Cache
    plan: Plan
    recorded: CacheRequest  # as written in the IR
    user_named: bool = False  # `AA = plan.cache(...)`: messages call it AA

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

    @property
    def label(self) -> str:
        """How messages call the cache: its name when assigned (`AA = plan.cache(...)`), else
        the name the user's code has it under now, else what it caches and where."""
        if self.user_named:
            return self.request.name
        if bound := _bound_name(self):
            return bound
        r = self.request
        where = f"max_elements={r.max_elements}" if r.max_elements is not None else \
            f"index {self.plan.schedule._label(r.index)}"  # fmt: skip
        return f"the cache of {self.source.label} at {where}"


def _enum_value(v, enum_type, what):
    if v is None or isinstance(v, str):
        return v
    if isinstance(v, enum_type):
        return v.value
    raise ScheduleError(f"{what} must be an {enum_type.__name__}, got {v!r}")


class Plan:
    """What a schedule becomes on a target (Accera's `acc.Plan`): `schedule.create_plan(target)`.

    Each method checks its rules when it is called (Accera's first, with Accera's messages, then
    this compiler's), so a plan that was accepted builds:

    - `cache(source, index=None, trigger_index=None, layout=None, max_elements=None,
      element_type=None, thrifty=None, location=MemorySpace.NONE, level=None, trigger_level=None,
      double_buffer=False, double_buffer_location=None, vectorize=None,
      strategy=CacheStrategy.AUTO)` -> `Cache`. `source` is an `Array` or a `Cache` of this plan
      (a hierarchical cache). Exactly one of `index` (a `LoopIndex`), `level` (an int, counted
      from the innermost loop, resolved now) or `max_elements` (a budget) places it; `trigger_index`
      / `trigger_level` multicache (INPUT and CONST arrays); `layout` is `Layout.FIRST_MAJOR` or
      `LAST_MAJOR` (default: the source's); `location`: NONE/GLOBAL on the cpu, PRIVATE/SHARED on
      a GPU; `double_buffer` (INPUT and CONST arrays); `element_type` must be the array's own;
      `strategy` must be AUTO on the cpu. One cache per array (cache the cache to cache it again).
    - `unroll(index)`, `vectorize(index)`: an index is unrolled or vectorized, not both.
    - `kernelize(unroll_indices, vectorize_indices=None)`: unroll each, vectorize the others.
    - `parallelize(indices, pin=None, policy="static", max_threads=None)`: cpu only; the indices
      are the outermost of the order, contiguous, and not one the logic reduces over; `pin` is
      not implemented.
    - `bind({index: target.GridUnit.BLOCK_X, ...})`: GPU only; BLOCK_X/Y/Z and THREAD_X/Y/Z, one
      index each, not one the logic reduces over, at most `target.max_threads_per_block` threads.
    - `module` (the IR), `build(args=None, name="nest")` (a callable of numpy arrays), `ptx()` (GPU).
    """

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
        index, trigger_index = self.schedule._given_index(index), self.schedule._given_index(trigger_index)
        layout, max_elements, thrifty = _given(layout), _given(max_elements), _given(thrifty)
        level, trigger_level, double_buffer = _given(level), _given(trigger_level), _given(double_buffer)
        if not isinstance(source, (Array, Cache)):
            raise ScheduleError(f"plan.cache caches an Array or a Cache, got {source!r}")
        if isinstance(source, Cache) and source.plan is not self:
            raise ScheduleError(f"{source.label} is a cache of another plan: a hierarchical cache caches a Cache "
                                "of the same plan")  # fmt: skip
        base = source if isinstance(source, Array) else source.base
        taken = {c.request.name for c in self.caches} | {a.name for a in self._arrays()}
        names = _assigned_names(1, f"{base.name}_cache", taken)
        req = CacheRequest(
            name=names[0],
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
        self._check_new_cache(req, source, base, trigger_index is not None or trigger_level is not None)
        # the IR records levels as the indices they named now (Accera snapshots the order)
        if recorded.level is not None:
            recorded.index, recorded.level = req.index, None
        if recorded.trigger_level is not None:
            recorded.trigger_index, recorded.trigger_level = req.trigger_index, None
        cache = Cache(req, source, self, recorded, names.from_user)
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
        bindings = dict(self.bindings)
        for index, unit in mapping.items():
            if isinstance(index, tuple):
                raise ScheduleError("binding a tuple of indices to one grid unit is not supported yet")
            if not isinstance(unit, GridUnit):
                raise ScheduleError(f"bind maps indices to Target.GridUnit values, got {unit!r}")
            if unit in (GridUnit.WARP_X, GridUnit.WARP_Y):
                raise ScheduleError("binding to warps is not supported yet (bind to THREAD_X/Y/Z)")
            name = self.schedule._name(index)
            taken = [i for i, u in bindings.items() if u == unit.value and i != name]
            if taken:
                raise ScheduleError(f"{unit.name} is already bound to {self.schedule._label(taken[0])}")
            bindings[name] = unit.value
        self._refuse_races([self.schedule._name(i) for i in mapping], "bind",
                           "bound to the grid, its threads would race")  # fmt: skip
        self._check_launch(self.schedule.model, bindings)
        self.bindings = bindings

    def vectorize(self, index: LoopIndex) -> None:
        name = self.schedule._name(self.schedule._given_index(index))
        self._refuse_both(name, "vectorize")
        if name not in self.vectorized:
            self.vectorized.append(name)

    def unroll(self, index: LoopIndex) -> None:
        name = self.schedule._name(self.schedule._given_index(index))
        self._refuse_both(name, "unroll")
        if name not in self.unrolled:
            self.unrolled.append(name)

    def _refuse_both(self, name: str, mark: str) -> None:
        other = self.vectorized if mark == "unroll" else self.unrolled
        if name in other:
            done = "vectorized" if mark == "unroll" else "unrolled"
            raise ScheduleError(f"{self.schedule._label(name)} is already {done}: an index can be unrolled or "
                                "vectorized, not both")  # fmt: skip

    def kernelize(self, unroll_indices: Sequence[LoopIndex], vectorize_indices=None) -> None:
        vectorize_indices = vectorize_indices if isinstance(vectorize_indices, (list, tuple)) else (
            [vectorize_indices] if vectorize_indices is not None else [])  # fmt: skip
        if any(v in unroll_indices for v in vectorize_indices):
            raise ScheduleError("vectorize_indices cannot be one of the unroll indices")
        unroll = [self.schedule._name(i) for i in unroll_indices]
        vectorize = [self.schedule._name(v) for v in vectorize_indices]
        for name in unroll:  # all checked before any is marked
            self._refuse_both(name, "unroll")
        for name in vectorize:
            self._refuse_both(name, "vectorize")
        for i in unroll_indices:
            self.unroll(i)
        for v in vectorize_indices:
            self.vectorize(v)

    def parallelize(self, indices, pin=None, policy: str = "static", max_threads: int | None = None) -> None:
        if self.target.is_gpu:
            raise ScheduleError("parallelize is for CPU targets: on a GPU, bind indices to the grid")
        given, max_threads = _given(indices), _given(max_threads)
        by_name, indices = given is not indices, given
        indices = list(indices) if isinstance(indices, (list, tuple)) else [indices]
        indices = [self.schedule._given_index(i, by_name) for i in indices]
        if not indices:
            raise ScheduleError("parallelize needs at least one index")
        names = [self.schedule._name(i) for i in indices]
        self._check_contiguous(names, self.schedule.model)
        if max_threads is not None and (not isinstance(max_threads, int) or max_threads <= 0):
            raise ScheduleError("max_threads must be a positive (greater than 0) integer.")
        if pin is not None:
            raise ScheduleError("parallelize: pin is not implemented")
        self._check_outermost(names, self.schedule.model)
        # the cpu target runs the outermost loop's range in chunks, one per thread
        self._refuse_races(names[:1], "parallelize", "run by several threads at once, its chunks would race")
        import os

        threads = max_threads or os.cpu_count() or 1
        self.parallel = {"indices": names, "threads": threads, "policy": str(policy)}

    # --------------------------------------------------------------------- the checks at the call

    @staticmethod
    def _check_contiguous(names: list[str], model: ScheduleModel) -> None:
        positions = [model.order.index(n) for n in names]
        if positions != list(range(positions[0], positions[0] + len(positions))):
            raise ScheduleError("indices must be contiguous in the Schedule dimension order")

    def _check_outermost(self, names: list[str], model: ScheduleModel) -> None:
        if model.order[: len(names)] != names:
            raise ScheduleError("parallelize: the cpu target runs only the outermost loops of the schedule in parallel "
                                f"(the order starts with {self.schedule._label(model.order[0])!r})")  # fmt: skip

    def _refuse_races(self, names: list[str], what: str, consequence: str) -> None:
        """`--tile`/`--map-gpu`'s race check (loopnest/races.py) on the recorded logic: a loop
        whose dimension some statement's stored element does not depend on is a reduction."""
        nest = self.schedule.nest
        dims = {index: d for d, index in enumerate(nest._indices)}
        for name in names:
            dim = self.schedule.model.loop(name).dim
            for array, indices, _ in nest.logic:
                if dim not in {dims[x] for e in indices for x in e.terms if x in dims}:
                    label = self.schedule._label(name)
                    raise ScheduleError(f"{what}: the logic reduces over {label} (every iteration of {label} "
                                        f"updates the same elements of {array.label}): {consequence}")  # fmt: skip

    def _check_launch(self, model: ScheduleModel, bindings: dict[str, str]) -> None:
        """The block and grid sizes of `bindings` (the bound loops' trip counts) within CUDA's limits."""
        if not bindings:
            return
        from oi_compiler.loopnest.gpu_mapping import GRID_UNITS, check_launch

        sizes = {"block": {"x": 1, "y": 1, "z": 1}, "thread": {"x": 1, "y": 1, "z": 1}}
        for name, unit in bindings.items():
            kind, dim = GRID_UNITS[unit]
            sizes[kind][dim] = -(-model.span(name) // model.loop(name).step)
        check_launch(sizes, self.target.max_threads_per_block)

    def _check_new_cache(self, req: CacheRequest, source: Array | Cache, base: Array, multicache: bool) -> None:
        """This compiler's rules for a cache Accera's rules accept, knowable when it is requested."""
        source_label = source.label
        if self.schedule.nest.logic and all(a is not base for a in self._arrays()):
            raise ScheduleError(f"{base.label} is not used by the nest's logic: there is nothing to cache")
        for other in self.caches:
            if other.source is source:
                again = other.label if other.user_named or _bound_name(other) else "the Cache that call returned"
                raise ScheduleError(f"{source_label} is already cached by {other.label}: to cache it at another "
                                    f"level, cache {again} (a hierarchical cache)")  # fmt: skip
        written = any(array is base for array, _, _ in self.schedule.nest.logic)
        if multicache and written and req.max_elements is None and base.role is Role.INPUT:  # Accera's rule 11+
            raise ScheduleError(multicache_of_written(base.label))
        if self.target.is_gpu and req.location == "shared" and written:
            raise ScheduleError(f"a SHARED cache of an array the nest writes ({base.label}) is not supported on GPU "
                                "targets: cache it in PRIVATE memory")  # fmt: skip

    def _recheck(self, model: ScheduleModel, what: str) -> None:
        """Every rule of this plan that depends on the schedule's order, against `model` (a
        `split`, `tile` or `reorder` being made): the same checks `--tile`/`--cache`/`--map-gpu`
        would make at build."""
        try:
            if self.parallel:
                self._check_contiguous(self.parallel["indices"], model)
                self._check_outermost(self.parallel["indices"], model)
            resolved: dict[str, CacheRequest] = {}
            target = "gpu" if self.target.is_gpu else "cpu"
            for cache in self.caches:
                req = replace(cache.recorded)
                try:
                    check_request(req, model, cache.base.role.value, target, resolved.get(req.source))
                except ScheduleError as e:
                    raise ScheduleError(f"{cache.label}: {e.message}") from None
                resolved[req.name] = req
            self._check_launch(model, self.bindings)
        except ScheduleError as e:
            raise ScheduleError(f"{what} would break a rule of a plan of this schedule: {e.message}") from None

    # --------------------------------------------------------------------- IR and code

    @contextlib.contextmanager
    def _in_user_names(self):
        """Rewords an error of the passes `module`/`build`/`ptx` run, which name arrays, caches
        and indices by their IR names: a name the user never gave (`array0`, `array0_cache0`,
        `i3`) becomes its label (`xs[0]`, `the cache of xs[0] at index jj`)."""
        try:
            yield
        except OiError as e:
            named = {a.name for a in self._arrays() if a.user_named}
            named |= {c.request.name for c in self.caches if c.user_named}
            named |= {n for n, i in self.schedule.indices.items() if i.user_named}
            unnamed: dict[str, Array | Cache | LoopIndex] = {a.name: a for a in self._arrays() if not a.user_named}
            unnamed.update((c.request.name, c) for c in self.caches if not c.user_named)
            unnamed.update((n, i) for n, i in self.schedule.indices.items() if not i.user_named)
            unnamed = {n: x for n, x in unnamed.items() if n not in named}
            if unnamed and isinstance(e.message, str):
                names = "|".join(map(re.escape, sorted(unnamed, key=len, reverse=True)))
                pattern = rf"(?<![\w%@])({names})(?!\w)"
                reworded = re.sub(pattern, lambda m: unnamed[m.group(1)].label, e.message)
                if reworded != e.message:
                    e.message = reworded
                    e.args = (reworded, *e.args[1:])
            raise

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

        with self._in_user_names(), stage("emit-nest"):
            return plan_module(self, "nest")

    def ptx(self, args: Sequence[Array] | None = None, name: str = "nest") -> str:
        """A GPU plan's kernel as PTX text (`pipeline.GPU_NEST_STAGES`)."""
        from oi_compiler.backend.ptx import NvptxTarget, emit_ptx
        from oi_compiler.boundary import stage
        from oi_compiler.frontend.loopnest_ir import plan_module
        from oi_compiler.runtime.nest_function import map_to_gpu

        if not self.target.is_gpu:
            raise ScheduleError("ptx() is for plans with GPU targets: create the plan with an oi.Target of the GPU category")
        with self._in_user_names(), stage("ptx"):
            module = plan_module(self, name, args)
            map_to_gpu(module)
            return emit_ptx(module, NvptxTarget(self.target.arch))

    def build(self, args: Sequence[Array] | None = None, name: str = "nest"):
        """Compile for the plan's target; returns a function of numpy arrays (the INPUT and
        INPUT_OUTPUT arrays, in `args` order or in the order they were created), which writes
        the arrays the logic writes in place (an INPUT array too, when the logic writes it). A GPU
        plan's function launches its kernel (`OI_GPU_EMULATE=1`: runs it on the CPU, see docs/gpu.md)."""
        from oi_compiler.boundary import stage
        from oi_compiler.frontend.loopnest_ir import plan_module, plan_params
        from oi_compiler.runtime.nest_function import build_cpu, build_gpu

        with self._in_user_names(), stage("build"):  # the passes inside name themselves (`run_passes`)
            module = plan_module(self, name, args)
            if self.target.is_gpu:
                return build_gpu(module, name, plan_params(self, args), self.target.arch)
            return build_cpu(module, name, plan_params(self, args), self.target.vector_bytes)


def _load_exprs(expr: Expr):
    """The loads in `expr`."""
    if isinstance(expr, Load):
        yield expr
    elif isinstance(expr, Bin):
        yield from _load_exprs(expr.lhs)
        yield from _load_exprs(expr.rhs)
    elif isinstance(expr, Call):
        for a in expr.args:
            yield from _load_exprs(a)


def _loads(expr: Expr):
    """The arrays `expr` reads (once per load)."""
    for load in _load_exprs(expr):
        yield load.array
