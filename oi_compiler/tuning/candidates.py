"""One candidate of a search: build the plan for a point of the grid, compile it, check it against
the reference on random inputs, time it. Whatever goes wrong is recorded as the candidate's status
and reason, never raised: a point whose schedule breaks a rule is `invalid`, one that does not
compile `compile failed`, one whose results differ from the reference `wrong results`, one that
fails when called `run failed`.

A builder is a function of no arguments returning a `Plan` or `(plan, args)` (`args` as for
`plan.build(args=...)`), with `oi.Parameter`s where the grid's values go; `FileBuilder` stands
for one defined in a file (what `oi-tune` loads), so other processes can load it too.
"""

from __future__ import annotations

import importlib.util
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from oi_compiler.errors import OiError, exception_summary
from oi_compiler.tuning.parameters import parameter_values

OK, INVALID, COMPILE_FAILED, WRONG, RUN_FAILED, LOST = (
    "ok", "invalid", "compile failed", "wrong results", "run failed", "lost")  # fmt: skip


@dataclass
class CandidateResult:
    """What became of one point of the grid: `times` are seconds per call (each the best-spread
    median of a repeat), `compile_s` the plan's build time (0 when it came from the cache)."""

    index: int
    point: str
    status: str = OK
    reason: str = ""
    compile_s: float = 0.0
    times: list[float] = field(default_factory=list)

    @property
    def median(self) -> float:
        return float(np.median(self.times)) if self.times else float("inf")


class SpaceLoadError(OiError):
    """A tuning space file cannot be loaded or does not define what `oi-tune` needs."""


@dataclass(frozen=True)
class FileBuilder:
    """The builder `function()` of the space file `path` returns (first item of its result): loaded
    anew in each process that runs candidates (once per process)."""

    path: str
    function: str = "tune_space"

    def __call__(self):
        return load_space(self.path, self.function)[0]()


_loaded: dict[tuple, tuple] = {}  # (file, function, mtime, size) -> what it returned


def load_space(path: str, function: str = "tune_space") -> tuple:
    """`function()` of the Python file at `path`: `(builder, grid)` or `(builder, grid, reference)`."""
    file = Path(path)
    if not file.is_file():
        raise SpaceLoadError(f"no such file: {path}")
    info = file.stat()
    cache_key = (str(file.resolve()), function, info.st_mtime_ns, info.st_size)
    cached = _loaded.get(cache_key)
    if cached is not None:
        return cached
    name = f"oi_tune_space_{abs(hash(str(file.resolve())))}"
    spec = importlib.util.spec_from_file_location(name, file)
    if spec is None or spec.loader is None:
        raise SpaceLoadError(f"{path} is not a Python file")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
        make = getattr(module, function, None)
        if not callable(make):
            raise SpaceLoadError(f"{path} defines no function {function}() returning (plan builder, parameter grid)")
        space = make()
    except OiError as e:
        sys.modules.pop(name, None)
        if isinstance(e, SpaceLoadError):
            raise
        raise SpaceLoadError(f"{path}: {e}") from None
    except BaseException as e:  # the user's code: a SyntaxError, a NameError... one line, no traceback
        sys.modules.pop(name, None)
        if isinstance(e, KeyboardInterrupt):
            raise
        where = _user_line(e, str(file))
        raise SpaceLoadError(f"{where}: {type(e).__name__}: {exception_summary(e)}") from None
    if not isinstance(space, tuple) or len(space) not in (2, 3) or not callable(space[0]):
        raise SpaceLoadError(f"{path}: {function}() must return (plan builder, parameter grid) or "
                             "(plan builder, parameter grid, reference)")  # fmt: skip
    _loaded[cache_key] = space
    return space


def _user_line(e: BaseException, path: str) -> str:
    """`path:line` of the innermost frame in the user's file (or the SyntaxError's line)."""
    if isinstance(e, SyntaxError) and e.lineno:
        return f"{path}:{e.lineno}"
    line, tb = None, e.__traceback__
    while tb is not None:
        if Path(tb.tb_frame.f_code.co_filename).resolve() == Path(path).resolve():
            line = tb.tb_lineno
        tb = tb.tb_next
    return f"{path}:{line}" if line else path


def build_plan(builder, point: dict[str, Any]):
    """`(plan, args)` the builder makes with the parameters at `point` (by name)."""
    with parameter_values(point):
        made = builder()
    if isinstance(made, tuple) and len(made) == 2:
        plan, args = made
    else:
        plan, args = made, None
    if not hasattr(plan, "build") or not hasattr(plan, "schedule"):
        raise OiError(f"the plan builder returned {type(plan).__name__}, not a Plan (or (plan, args))")
    return plan, args


@dataclass
class Arguments:
    """Values for a function's arrays, kept as flat buffers with shapes and strides, so that a copy
    has the same layout (column-major and custom strides included)."""

    flats: list[np.ndarray]
    shapes: list[tuple[int, ...]]
    strides: list[tuple[int, ...]]  # bytes

    def views(self) -> list[np.ndarray]:
        return [np.lib.stride_tricks.as_strided(f, shape=sh, strides=st)
                for f, sh, st in zip(self.flats, self.shapes, self.strides)]  # fmt: skip

    def copy(self) -> Arguments:
        return Arguments([f.copy() for f in self.flats], self.shapes, self.strides)


def make_inputs(arrays, seed: int) -> Arguments:
    """Random arguments for the function's arrays (their shapes, element types and layouts)."""
    rng = np.random.default_rng(seed)
    flats, shapes, strides = [], [], []
    for a in arrays:
        dtype = np.dtype(a.dtype)
        extent = 1 + sum((n - 1) * s for n, s in zip(a.shape, a.strides)) if all(a.shape) else 1
        if np.issubdtype(dtype, np.floating):
            flats.append(rng.standard_normal(extent).astype(dtype))
        else:
            flats.append(rng.integers(-8, 8, extent).astype(dtype))
        shapes.append(tuple(a.shape))
        strides.append(tuple(s * dtype.itemsize for s in a.strides))
    return Arguments(flats, shapes, strides)


def mismatch(got: list[np.ndarray], expected: list[np.ndarray]) -> str | None:
    """Why `got` is not `expected` (within rounding: FMA contraction and reordered sums), or None."""
    for k, (g, e) in enumerate(zip(got, expected)):
        if np.issubdtype(e.dtype, np.floating):
            tol = {2: 1e-2, 4: 1e-4}.get(e.dtype.itemsize, 1e-10)
            scale = max(1.0, float(np.max(np.abs(e), initial=0.0)))
            with np.errstate(invalid="ignore", over="ignore"):
                error = float(np.max(np.abs(g.astype(np.float64) - e), initial=0.0)) / scale
            if not np.isfinite(g).all() and np.isfinite(e).all():
                return f"argument {k}: non-finite values where the reference has none"
            if error > tol:
                return f"argument {k}: relative error {error:.2g} > {tol:g}"
        elif not np.array_equal(g, e):
            return f"argument {k}: {int(np.sum(g != e))} elements differ"
    return None


def time_calls(fn, values: list[np.ndarray], repeats: int, min_seconds: float = 2e-3) -> list[float]:
    """Seconds per call, `repeats` times; each repeat runs enough calls to last `min_seconds`."""
    start = time.perf_counter()
    fn(*values)
    once = time.perf_counter() - start
    calls = max(1, min(1000, int(min_seconds / max(once, 1e-9))))
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(calls):
            fn(*values)
        times.append((time.perf_counter() - start) / calls)
    return times


def evaluate(builder, index: int, point: dict[str, Any], point_text: str, name: str, inputs: Arguments,
             expected: list[np.ndarray], repeats: int) -> CandidateResult:  # fmt: skip
    """Build, check and time one candidate; every failure becomes the result's status."""
    result = CandidateResult(index, point_text)
    try:
        plan, args = build_plan(builder, point)
    except Exception as e:  # the builder is user code: any exception is this point's fault
        return _failed(result, INVALID, e)
    start = time.perf_counter()
    try:
        with parameter_values(point):
            fn = plan.build(args=args, name=name)
    except Exception as e:
        return _failed(result, COMPILE_FAILED, e)
    result.compile_s = time.perf_counter() - start
    return check_and_time(fn, result, inputs, expected, repeats)


def check_and_time(fn, result: CandidateResult, inputs: Arguments, expected: list[np.ndarray],
                   repeats: int) -> CandidateResult:  # fmt: skip
    values = inputs.copy().views()
    try:
        fn(*values)
    except Exception as e:
        return _failed(result, RUN_FAILED, e)
    if (why := mismatch(values, expected)) is not None:
        result.status, result.reason = WRONG, why
        return result
    if repeats > 0:
        try:
            result.times = time_calls(fn, values, repeats)
        except Exception as e:
            return _failed(result, RUN_FAILED, e)
    return result


def _failed(result: CandidateResult, status: str, e: BaseException) -> CandidateResult:
    result.status = status
    message = str(e) if isinstance(e, OiError) else f"{type(e).__name__}: {exception_summary(e)}"
    result.reason = " ".join(message.split())[:300]
    return result
