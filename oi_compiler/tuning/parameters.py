"""Accera-style parameters: `oi.Parameter`, `oi.create_parameters()`, `oi.create_parameter_grid()`.

    P_JJ, P_KK, P_ORDER = oi.create_parameters()       # named by the assignment, as in Accera

    def gemm_plan():                                    # a plan builder: parameters in place of values
        ...
        jj = schedule.split(j, P_JJ)
        kk = schedule.split(k, P_KK)
        schedule.reorder(P_ORDER)                       # its value: indices' names, ("j", "k", "i", "jj", "kk")
        ...
        return plan

    grid = oi.create_parameter_grid({P_JJ: [64, 256], P_KK: [64, 128], P_ORDER: [...]},
                                    filter_func=lambda jj, kk, order: jj * kk <= 32768)

A parameter has a value only while a builder runs for one point of the grid (`values(point)`,
what the tuner does for each candidate); the schedule and plan methods read it then
(`frontend/loopnest.py`'s `_given`). Accera builds the schedule once and substitutes values when
the package is built; here the builder runs once per point, so the same code makes each candidate
(and the rules of each call are checked with its values). `int(P)`, `bool(P)`, `P.value` read the
value in a builder's own code (`if P_CACHE_A: plan.cache(A, ...)`).
"""

from __future__ import annotations

import contextlib
import contextvars
import itertools
import random
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

from oi_compiler.errors import OiError, ScheduleError

_current: contextvars.ContextVar[Mapping[str, Any] | None] = contextvars.ContextVar("oi_parameters", default=None)


class Parameter:
    """A value chosen by the tuner (Accera's `acc.Parameter`): usable in place of a split size, an
    order, a cache's `index`/`level`/`layout`/`double_buffer`/`max_elements`, an `unroll` or
    `vectorize` index (by value or by its name) while a builder runs for a point of a grid."""

    def __init__(self, name: str):
        self.name = name

    def __oi_parameter_value__(self) -> Any:
        point = _current.get()
        if point is None or self.name not in point:
            raise ScheduleError(f"parameter {self.name} has no value here: parameters take their values while the "
                                "tuner builds a candidate (oi.tune, or oi.parameter_values({...}) around the builder)")  # fmt: skip
        return point[self.name]

    @property
    def value(self) -> Any:
        return self.__oi_parameter_value__()

    def __index__(self) -> int:
        return int(self.value)

    __int__ = __index__

    def __bool__(self) -> bool:
        return bool(self.value)

    def __repr__(self) -> str:
        return f"Parameter({self.name})"


@contextlib.contextmanager
def parameter_values(point: Mapping[Parameter | str, Any]) -> Iterator[None]:
    """Give the parameters of `point` (keyed by the parameters or by their names) their values
    inside the `with` block. Parameters are found by name, so a builder loaded again in another
    process (with parameters of its own) reads the same point."""
    token = _current.set({p.name if isinstance(p, Parameter) else p: v for p, v in point.items()})
    try:
        yield
    finally:
        _current.reset(token)


def create_parameters(count: int | None = None) -> Parameter | tuple[Parameter, ...]:
    """New parameters, named after the assignment (`P0, P1 = oi.create_parameters()`); `count` is
    needed only where the result is not unpacked into names."""
    from oi_compiler.frontend.loopnest import _is_user_code, _stored_names, _unpacks_one_name

    frame = sys._getframe(1)
    try:
        names = _stored_names(frame) if _is_user_code(frame.f_code.co_filename) else None
    finally:
        del frame
    unpacked = _unpacks_one_name() if names is not None and len(names) == 1 else names is not None
    if names is not None and count is not None and len(names) != count:
        names = None
    if names is None:
        if count is None:
            raise OiError("create_parameters() without a count must be unpacked into names "
                          "(P0, P1 = oi.create_parameters()), or say how many: create_parameters(2)")  # fmt: skip
        names = [f"P{next(_counter)}" for _ in range(count)]
        unpacked = count != 1
    made = tuple(Parameter(n) for n in names)
    return made if unpacked else made[0]


_counter = itertools.count()


def create_parameter_grid(parameter_choices: Mapping[Parameter, Sequence[Any]],
                          filter_func: Callable[..., bool] | None = None, sample: int = 0,
                          seed: int | None = None) -> list[dict[Parameter, Any]]:  # fmt: skip
    """Every combination of the choices (Accera's `acc.create_parameter_grid`), in order, the first
    parameter varying slowest; `filter_func(*values)` (the values in the dict's order) keeps those
    it returns true for; `sample` > 0 keeps that many, drawn at random (`seed`)."""
    if not isinstance(parameter_choices, Mapping) or not parameter_choices:
        raise OiError("create_parameter_grid takes a non-empty dict {parameter: [values]}")
    for p, choices in parameter_choices.items():
        if not isinstance(p, Parameter):
            raise OiError(f"create_parameter_grid: {p!r} is not an oi.Parameter")
        if isinstance(choices, (str, bytes)) or not isinstance(choices, Sequence) or not choices:
            raise OiError(f"create_parameter_grid: the choices of {p.name} must be a non-empty list")
    params = list(parameter_choices)
    grid = []
    for values in itertools.product(*(parameter_choices[p] for p in params)):
        if filter_func is None or filter_func(*values):
            grid.append(dict(zip(params, values)))
    if sample and sample < len(grid):
        grid = random.Random(seed).sample(grid, sample)
    return grid


def point_text(point: Mapping[Parameter, Any]) -> str:
    """`P_JJ=64 P_ORDER=(j,k,i)`: a point of a grid, for tables and messages."""
    return " ".join(f"{p.name}={value_text(v)}" for p, v in point.items()) or "(no parameters)"


def value_text(v: Any) -> str:
    if isinstance(v, (tuple, list)):
        return "(" + ",".join(value_text(x) for x in v) + ")"
    name = getattr(v, "name", None)
    if isinstance(name, str) and not isinstance(v, (str, int, float)):  # an enum, an index
        return name
    return str(v)
