"""Where a search's candidates are built, checked and timed: in this process (`jobs=1`), in a pool
of `jobs` processes (`concurrent.futures.ProcessPoolExecutor`, spawn start method), or as Ray tasks
(`ray_address=`: "local" starts a Ray instance on this machine, "auto" or an address joins a
cluster; Ray is the optional extra `oi_compiler[tune-ray]`).

Each worker gets the builder, the inputs and the reference's outputs once (the pool's initializer,
one `ray.put`), and compiles into the same compile cache as this process (`$OI_CACHE_DIR` is
inherited), so the finalists the search times again here load without compiling. Timings taken
while other workers compile are noisy: they only rank the candidates.
"""

from __future__ import annotations

import multiprocessing
import pickle
import warnings
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from typing import Any

from oi_compiler.errors import OiError, exception_summary
from oi_compiler.tuning.candidates import LOST, CandidateResult, evaluate

Task = tuple[int, dict[str, Any], str]  # index in the grid, point (parameter name -> value), its text


class RunnerError(OiError):
    """The candidates could not be run where asked (Ray missing or unreachable)."""


def run_serial(builder, tasks: list[Task], shared: tuple, on_done: Callable[[CandidateResult], None]) -> None:
    name, inputs, expected, repeats = shared
    for index, point, text in tasks:
        with warnings.catch_warnings():  # a plan's warnings, once per candidate, would drown the table
            warnings.simplefilter("ignore")
            result = evaluate(builder, index, point, text, name, inputs, expected, repeats)
        on_done(result)


def picklable(builder) -> bool:
    try:
        pickle.dumps(builder)
        return True
    except Exception:  # pickle raises PicklingError, AttributeError, TypeError... for closures and lambdas
        return False


_worker_state: tuple | None = None


def _init_worker(builder, shared: tuple) -> None:
    global _worker_state
    warnings.simplefilter("ignore")  # a plan's warnings would be printed once per worker
    _worker_state = (builder, *shared)


def _run_in_worker(index: int, point: dict[str, Any], text: str) -> CandidateResult:
    builder, name, inputs, expected, repeats = _worker_state
    return evaluate(builder, index, point, text, name, inputs, expected, repeats)


def run_processes(builder, tasks: list[Task], shared: tuple, jobs: int,
                  on_done: Callable[[CandidateResult], None]) -> None:  # fmt: skip
    context = multiprocessing.get_context("spawn")
    pool = ProcessPoolExecutor(max_workers=jobs, mp_context=context, initializer=_init_worker,
                               initargs=(builder, shared))  # fmt: skip
    try:
        futures = {pool.submit(_run_in_worker, *task): task for task in tasks}
        for future in as_completed(futures):
            index, _, text = futures[future]
            try:
                result = future.result()
            except BrokenProcessPool:
                result = CandidateResult(index, text, LOST, "the worker process died (a crash compiling or running it)")
            except Exception as e:
                result = CandidateResult(index, text, LOST, f"{type(e).__name__}: {exception_summary(e)}")
            on_done(result)
    except BaseException:  # Ctrl-C: do not wait for the candidates still queued
        pool.shutdown(wait=False, cancel_futures=True)
        raise
    pool.shutdown()


def _ray_task(state: tuple, index: int, point: dict[str, Any], text: str) -> CandidateResult:
    builder, name, inputs, expected, repeats = state
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return evaluate(builder, index, point, text, name, inputs, expected, repeats)


def run_ray(builder, tasks: list[Task], shared: tuple, address: str, jobs: int,
            on_done: Callable[[CandidateResult], None]) -> None:  # fmt: skip
    try:
        import ray
    except ImportError:
        raise RunnerError("ray_address needs Ray: pip install 'oi_compiler[tune-ray]'") from None
    started = not ray.is_initialized()
    if started:
        try:
            if address == "local":
                ray.init(num_cpus=max(jobs, 1), include_dashboard=False, log_to_driver=False,
                         configure_logging=False)  # fmt: skip
            else:
                ray.init(address=address, log_to_driver=False, configure_logging=False)
        except Exception as e:
            raise RunnerError(f"cannot start or reach Ray at {address!r}: {exception_summary(e)}") from None
    try:
        state = ray.put((builder, *shared))
        remote = ray.remote(num_cpus=1, max_retries=0)(_ray_task)
        pending = {remote.remote(state, *task): task for task in tasks}
        while pending:
            done, _ = ray.wait(list(pending), num_returns=1)
            index, _, text = pending.pop(done[0])
            try:
                result = ray.get(done[0])
            except Exception as e:  # the task or its worker failed (RayTaskError, WorkerCrashedError)
                result = CandidateResult(index, text, LOST, f"the Ray task failed: {exception_summary(e)}")
            on_done(result)
    finally:
        if started:
            ray.shutdown()


__all__ = ["RunnerError", "picklable", "run_processes", "run_ray", "run_serial"]
