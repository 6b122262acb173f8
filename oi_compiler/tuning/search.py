"""`oi.tune`: search a parameter grid for the fastest plan, or reuse the one found before.

    result = oi.tune(gemm_plan, grid, jobs=2)      # gemm_plan(): a Plan with oi.Parameters in it
    result.function(a, b, c)                        # the winner, built
    print(result.table())                           # every candidate: time, or why it was skipped

The search: every point of the grid is built, compiled, run once on random inputs and compared
with the reference (`reference(*arrays)`, a numpy function updating its arguments as the nest
does, or else the nest's unscheduled plan), then timed briefly, in `jobs` processes or as Ray
tasks. The fastest `finalists` are then timed again here, one after another and interleaved,
`repeats` times each (parallel timings are noisy: they only rank), and the lowest median wins. A
point that breaks a rule, fails to compile or computes wrong results is skipped with its reason;
when none is left, `TuneError` says why each kind failed. The winner is stored in the tuning
database (tuning/database.py), so the next `tune` of the same nest, grid, target and machine
builds it without searching (`use_db=False` searches anyway and stores again).
"""

from __future__ import annotations

import os
import time
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from oi_compiler.errors import OiError, OptionError, exception_summary
from oi_compiler.tuning import database
from oi_compiler.tuning.candidates import (
    INVALID,
    OK,
    RUN_FAILED,
    CandidateResult,
    build_plan,
    check_and_time,
    make_inputs,
    time_calls,
)
from oi_compiler.tuning.parameters import Parameter, parameter_values, point_text
from oi_compiler.tuning.progress import Progress
from oi_compiler.tuning.runners import picklable, run_processes, run_ray, run_serial


class TuneError(OiError):
    """No candidate of the grid could be used (each one's reason is summarized), or the search
    could not start (an empty grid, a reference that fails)."""


@dataclass
class TuneResult:
    """The winner (`function`, built; `plan`; `parameters`: name -> value; `median_s`: seconds per
    call), every candidate (`candidates`), the search's wall time (`search_s`: the stored one
    when `from_database`), the database `key` and the file it is stored in (`database_path`)."""

    function: Any
    plan: Any
    parameters: dict[str, Any]
    median_s: float
    candidates: list[CandidateResult]
    search_s: float
    from_database: bool
    key: str
    database_path: Path | None = None
    point: dict[Parameter, Any] = field(default_factory=dict)

    def __call__(self, *arrays):
        return self.function(*arrays)

    def table(self) -> str:
        """One line per candidate: the usable ones fastest first, then the skipped ones and why."""
        usable = sorted((c for c in self.candidates if c.status == OK), key=lambda c: c.median)
        skipped = [c for c in self.candidates if c.status != OK]
        best = usable[0].median if usable else float("inf")
        lines = [f"{'#':>4}  {'status':<14} {'median ms':>10} {'x best':>7} {'compile s':>9}  parameters"]
        for rank, c in enumerate(usable + skipped, 1):
            timed = c.status == OK and c.times
            ms = f"{c.median * 1e3:10.3f}" if timed else f"{'-':>10}"
            ratio = f"{c.median / best:7.2f}" if timed else f"{'-':>7}"
            line = f"{rank:>4}  {c.status:<14} {ms} {ratio} {c.compile_s:9.2f}  {c.point}"
            lines.append(line + (f"  ({c.reason})" if c.reason else ""))
        return "\n".join(lines)


def tune(builder: Callable[[], Any], grid: Sequence[Mapping[Parameter, Any]], *, name: str = "nest",
         reference: Callable[..., Any] | None = None, repeats: int = 5, finalists: int = 3, jobs: int = 1,
         ray_address: str | None = None, db: str | os.PathLike | None = None, use_db: bool = True,
         progress: bool | None = None, seed: int = 0) -> TuneResult:  # fmt: skip
    """Search `grid` (`oi.create_parameter_grid`) for the fastest plan `builder()` makes; see the module doc."""
    start = time.perf_counter()
    if not callable(builder):
        raise TuneError(f"oi.tune: the plan builder must be a function returning a Plan, got {builder!r}")
    points, texts = _check_arguments(grid, repeats, finalists, jobs)
    first, plan0, args0, early = _first_buildable(builder, points, texts)
    key = _key(plan0, args0, name, texts)
    if use_db:
        stored = _from_database(builder, key, db, points, texts, name)
        if stored is not None:
            return stored
    inputs, expected = _reference_outputs(plan0, args0, name, reference, seed)
    results: dict[int, CandidateResult] = {r.index: r for r in early}
    finals = max(1, min(finalists, len(points)))
    bar = Progress(len(points) + finals, enabled=progress)

    def done(result: CandidateResult) -> None:
        results[result.index] = result
        ok = [r.median for r in results.values() if r.status == OK and r.times]
        bar.update(1, f"best {min(ok) * 1e3:.3g} ms" if ok else "")

    bar.update(len(early))
    tasks = [(k, points[k], texts[k]) for k in range(first, len(points))]
    shared = (name, inputs, expected, max(1, min(3, repeats)))
    try:
        if ray_address:
            run_ray(builder, tasks, shared, ray_address, jobs, done)
        elif jobs > 1 and picklable(builder):
            run_processes(builder, tasks, shared, jobs, done)
        else:
            if jobs > 1:
                warnings.warn("oi.tune: the plan builder cannot be sent to other processes (define it at the top "
                              "of a module, not as a lambda or inside a function): running jobs=1", RuntimeWarning,
                              stacklevel=2)  # fmt: skip
            run_serial(builder, tasks, shared, done)
        candidates = [results[k] for k in range(len(points))]
        winner, fn, plan = _final_round(builder, candidates, points, name, inputs, expected, repeats, finals, bar)
    finally:
        bar.close()
    search_s = time.perf_counter() - start
    path = database.store(key, {
        "nest": _nest_summary(plan0, name), "target": repr(plan0.target), "machine": database.machine_text(),
        "grid_size": len(points), "search_s": search_s,
        "winner": {"index": winner.index, "point": winner.point, "median_s": winner.median},
        "candidates": [asdict(c) for c in candidates],
    }, db)  # fmt: skip
    return TuneResult(fn, plan, dict(points[winner.index]), winner.median, candidates, search_s, False, key, path,
                      dict(grid[winner.index]))  # fmt: skip


def _check_arguments(grid, repeats, finalists, jobs) -> tuple[list[dict[str, Any]], list[str]]:
    for what, value in (("repeats", repeats), ("finalists", finalists), ("jobs", jobs)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise OptionError(f"oi.tune: {what} must be an integer >= 1, got {value!r}")
    if isinstance(grid, Mapping) or not isinstance(grid, Sequence) or not grid:
        raise TuneError("oi.tune needs a non-empty parameter grid (a list of {parameter: value} dicts: "
                        "oi.create_parameter_grid)")  # fmt: skip
    points, texts = [], []
    for point in grid:
        if not isinstance(point, Mapping) or not all(isinstance(p, Parameter) for p in point):
            raise TuneError(f"oi.tune: a point of the grid is not a {{oi.Parameter: value}} dict: {point!r}")
        named = {p.name: v for p, v in point.items()}
        if len(named) != len(point):
            raise TuneError("oi.tune: two parameters of the grid have the same name: "
                            f"{sorted(p.name for p in point)}")  # fmt: skip
        points.append(named)
        texts.append(point_text(point))
    return points, texts


def _first_buildable(builder, points, texts):
    """The first point whose plan builds (its nest gives the key and the reference), and the
    points before it, which did not."""
    early = []
    for k, point in enumerate(points):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                plan, args = build_plan(builder, point)
            return k, plan, args, early
        except Exception as e:
            message = str(e) if isinstance(e, OiError) else f"{type(e).__name__}: {exception_summary(e)}"
            early.append(CandidateResult(k, texts[k], INVALID, " ".join(message.split())[:300]))
    raise TuneError(_summary(early))


def _unscheduled(plan0):
    nest = plan0.schedule.nest
    return nest.create_schedule().create_plan(plan0.target)


def _key(plan0, args0, name: str, texts: list[str]) -> str:
    from oi_compiler.frontend.loopnest_ir import plan_module, plan_params

    base = _unscheduled(plan0)
    nest_text = str(plan_module(base, name, args0))
    params = ",".join(f"{a.name}:{a.role.value}" for a in plan_params(base, args0))
    return database.tuning_key(f"{nest_text}\n{params}", "\n".join(texts), database.target_text(repr(plan0.target)),
                               database.machine_text())  # fmt: skip


def _nest_summary(plan0, name: str) -> str:
    nest = plan0.schedule.nest
    arrays = ", ".join(f"{a.name}{list(a.shape)}:{a.element_type}" for a in plan0._arrays())
    return f"{name}: nest {list(nest.shape)} over {arrays}"


def _from_database(builder, key, db, points, texts, name) -> TuneResult | None:
    entry = database.load(key, db)
    if entry is None:
        return None
    index = entry["winner"]["index"]
    if not 0 <= index < len(points) or entry["winner"].get("point") != texts[index]:
        return None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            plan, args = build_plan(builder, points[index])
            with parameter_values(points[index]):
                fn = plan.build(args=args, name=name)
    except Exception:  # the stored winner no longer builds (the builder changed): search again
        return None
    candidates = []
    for c in entry.get("candidates", []):
        try:
            candidates.append(CandidateResult(**c))
        except TypeError:
            pass
    return TuneResult(fn, plan, dict(points[index]), float(entry["winner"].get("median_s", 0.0)), candidates,
                      float(entry.get("search_s", 0.0)), True, key, database.database_dir(db) / f"{key}.json")  # fmt: skip


def _reference_outputs(plan0, args0, name, reference, seed):
    from oi_compiler.frontend.loopnest_ir import plan_params

    inputs = make_inputs(plan_params(plan0, args0), seed)
    values = inputs.copy().views()
    try:
        if reference is None:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                _unscheduled(plan0).build(args=args0, name=name)(*values)
        else:
            returned = reference(*values)
            if returned is not None:
                raise TuneError(f"the reference returned {type(returned).__name__}: it must update the arrays it is "
                                "given in place, as the nest does (def ref(a, b, c): c += a @ b), and return None")  # fmt: skip
    except TuneError:
        raise
    except Exception as e:
        message = str(e) if isinstance(e, OiError) else f"{type(e).__name__}: {exception_summary(e)}"
        raise TuneError(f"the reference failed on random inputs: {message}") from None
    return inputs, [v.copy() for v in values]


def _final_round(builder, candidates, points, name, inputs, expected, repeats, finals, bar):
    """The fastest usable candidates built here (from the compile cache the workers filled),
    checked again and timed interleaved, `repeats` rounds; the lowest median wins."""
    ranked = sorted((c for c in candidates if c.status == OK), key=lambda c: c.median)
    if not ranked:
        raise TuneError(_summary(candidates))
    built = []
    for c in ranked[:finals]:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                plan, args = build_plan(builder, points[c.index])
                with parameter_values(points[c.index]):
                    fn = plan.build(args=args, name=name)
        except Exception as e:
            c.status, c.reason = RUN_FAILED, f"did not build again here: {exception_summary(e)}"
            bar.update(1)
            continue
        check_and_time(fn, c, inputs, expected, repeats=0)
        if c.status == OK:
            built.append((c, fn, plan, inputs.copy().views()))
        bar.update(1)
    if not built:
        raise TuneError(_summary(candidates))
    rounds: dict[int, list[float]] = {c.index: [] for c, *_ in built}
    for _ in range(repeats):
        for c, fn, _, values in built:
            rounds[c.index] += time_calls(fn, values, 1)
    for c, *_ in built:
        c.times = rounds[c.index]
    winner, fn, plan, _ = min(built, key=lambda b: b[0].median)
    return winner, fn, plan


def _summary(candidates: list[CandidateResult]) -> str:
    by_status: dict[str, list[CandidateResult]] = {}
    for c in candidates:
        if c.status != OK:
            by_status.setdefault(c.status, []).append(c)
    parts = [f"{len(cs)} {status} (first: {cs[0].point}: {cs[0].reason})" for status, cs in by_status.items()]
    return f"no candidate of the {len(candidates)} in the grid is usable: " + "; ".join(parts)
