"""Messages of the loop-nest API name arrays, caches and indices by the user's names (issue #15, 17e).

Names were read from the source line of the call, so code with no source text (`python -c`,
stdin, a notebook cell compiled from a string) got generated names in its messages (`i5 is
already unrolled`, `the order starts with 'i6'`), and an array with no name of its own was
"the INPUT array of shape (8,)" even where the caller had it as `X` or `arrays[0]`. Now:

* the names a statement assigns are read from its bytecode, which every way of running code has;
* an array, cache or index its statement did not name is called by the name the calling code
  has it under when the message is made (`X`, `arrays[0]`, `caches['A']`: found by identity);
* else by what it is: "the INPUT array of shape (8,) declared at <stdin>:31", "index 0 of the
  nest of shape (4,)", "the cache of A at index ii";
* errors of the passes `plan.build()`/`plan.ptx()` run (which only know IR names such as
  `array0_cache0`) are reworded the same way.
"""

from __future__ import annotations

import inspect
import os
import re
import subprocess
import sys
import textwrap
import warnings
from pathlib import Path

import numpy as np
import pytest

import oi_compiler as oi
from oi_compiler.errors import OiError, ScheduleError
from oi_compiler.frontend.loopnest import AcceraCompatWarning

pytestmark = pytest.mark.usefixtures("private_compile_cache")

IN, IO = oi.Role.INPUT, oi.Role.INPUT_OUTPUT
#: names this compiler makes up: `array3`, `array3_cache0`, `A_cache1`, `i5`, `i4_7`, `t2`
GENERATED = re.compile(r"\barray\d+|_cache\d+\b|\b[it]\d+(_\d+)?\b")

SCRIPT = textwrap.dedent('''\
    import oi_compiler as oi

    def show(what, call):
        try:
            call()
        except oi.OiError as e:
            print(f"{what}: {e.message}")
        else:
            print(f"{what}: no error")

    A = oi.Array(role=oi.Role.INPUT, shape=(16, 16))
    C = oi.Array(role=oi.Role.INPUT_OUTPUT, shape=(16, 16))
    nest = oi.Nest(shape=(16, 16, 16))
    i, j, k = nest.get_indices()

    @nest.iteration_logic
    def _():
        C[i, j] += A[i, k]

    schedule = nest.create_schedule()
    ii = schedule.split(i, 4)
    plan = schedule.create_plan()
    AA = plan.cache(A, index=ii)
    show("cache", lambda: plan.cache(A, index=j))
    plan.unroll(j)
    show("vectorize", lambda: plan.vectorize(j))
    schedule.reorder(k, i, ii, j)
    show("parallelize", lambda: plan.parallelize(j))
    show("race", lambda: plan.parallelize(k))
    show("split", lambda: schedule.split(k, 0))

    def unnamed_plan():  # nothing the caller sees names these arrays
        arrays = [oi.Array(role=role, shape=(8,)) for role in (oi.Role.INPUT, oi.Role.INPUT_OUTPUT)]
        inner = oi.Nest(shape=(8,))
        x = inner.get_indices()

        @inner.iteration_logic
        def _():
            arrays[1][x] += arrays[0][x + 1]

        return inner.create_plan()

    show("bounds", lambda: unnamed_plan().build())
    xs = [oi.Array(role=role, shape=(8,)) for role in (oi.Role.INPUT, oi.Role.INPUT_OUTPUT)]
    n1 = oi.Nest(shape=(8,))
    x = n1.get_indices()

    @n1.iteration_logic
    def _():
        xs[1][x] += xs[0][x]

    p1 = n1.create_plan()
    p1.cache(xs[0], index=x)
    show("cache xs", lambda: p1.cache(xs[0], index=x))
''')

EXPECTED = [
    "cache: A is already cached by AA: to cache it at another level, cache AA (a hierarchical cache)",
    "vectorize: j is already unrolled: an index can be unrolled or vectorized, not both",
    "parallelize: parallelize: the cpu target runs only the outermost loops of the schedule in parallel (the order "
    "starts with 'k')",
    "race: parallelize: the logic reduces over k (every iteration of k updates the same elements of C): run by "
    "several threads at once, its chunks would race",
    "split: Split sizes must be integers >= 1",
    "bounds: an access of the INPUT array of shape (8,) declared at {where} reaches [1, 8] in dimension 0, outside "
    "[0, 7]",
    "cache xs: xs[0] is already cached by the cache of xs[0] at index x: to cache it at another level, cache the "
    "Cache that call returned (a hierarchical cache)",
]
ARRAYS_LINE = 1 + next(n for n, line in enumerate(SCRIPT.splitlines()) if "arrays = [oi.Array" in line)


def _run(how: str, tmp_path) -> subprocess.CompletedProcess:
    if how == "file":
        path = tmp_path / "script.py"
        path.write_text(SCRIPT)
        argv, stdin = [sys.executable, str(path)], None
    elif how == "-c":
        argv, stdin = [sys.executable, "-c", SCRIPT], None
    else:
        argv, stdin = [sys.executable, "-"], SCRIPT
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(Path(oi.__file__).parents[1]),
                                                       *filter(None, [os.environ.get("PYTHONPATH")])]))  # fmt: skip
    return subprocess.run(argv, input=stdin, capture_output=True, text=True, timeout=300, cwd=tmp_path, env=env)


@pytest.mark.parametrize("how", ["file", "-c", "stdin"])
def test_messages_use_the_users_names_with_or_without_source_text(how, tmp_path) -> None:
    """`python -c` and stdin have no source lines to read names from: the same messages as a file."""
    proc = _run(how, tmp_path)
    assert proc.returncode == 0, proc.stderr
    where = {"file": "script.py", "-c": "<string>", "stdin": "<stdin>"}[how]
    assert proc.stdout.splitlines() == [line.replace("{where}", f"{where}:{ARRAYS_LINE}") for line in EXPECTED]
    assert not GENERATED.search(proc.stdout), proc.stdout


def test_names_come_from_the_bytecode_not_the_source_line() -> None:
    """Statements the source-line reading got wrong or missed."""
    A: oi.Array = oi.Array(role=IN, shape=(4,))  # an annotated assignment
    B = C = oi.Array(role=IN, shape=(4,))  # a chained one: its first name
    D = oi.Array(role=IO, shape=(4,)) if A else None  # a conditional expression
    (E := oi.Array(role=IO, shape=(4,)))  # noqa: B018 - an assignment expression
    assert [(a.name, a.user_named) for a in (A, B, D, E)] == [("A", True), ("B", True), ("D", True), ("E", True)]
    assert C is B
    wrapped = [oi.Array(role=IN, shape=(4,))][0]  # the call's result goes into a list, not to a name
    assert not wrapped.user_named and wrapped.label == "wrapped"
    nest = oi.Nest(shape=(4, 4))
    (p, q) = nest.get_indices()
    schedule = nest.create_schedule()
    pp, qq = schedule.tile({p: 2, q: 2})
    assert [x.name for x in (p, q, pp, qq)] == ["p", "q", "pp", "qq"]


def test_a_name_given_after_the_call_is_found_when_a_message_needs_it() -> None:
    made = {role: oi.Array(role=role, shape=(8,)) for role in (IN, IO)}
    line = inspect.currentframe().f_lineno - 1
    X = made[IN]
    nest = oi.Nest(shape=(8,))
    i = nest.get_indices()

    @nest.iteration_logic
    def _():
        made[IO][i] += made[IN][i]

    plan = nest.create_plan()
    caches = {"X": plan.cache(X, index=i)}
    with pytest.raises(ScheduleError) as info:
        plan.cache(X, index=i)
    assert info.value.message == ("X is already cached by caches['X']: to cache it at another level, cache "
                                  "caches['X'] (a hierarchical cache)")  # fmt: skip
    del X, caches  # now only in a dict keyed by Role: called by what it is
    with pytest.raises(ScheduleError) as info:
        plan.cache(made[IN], index=i)
    assert info.value.message == (f"the INPUT array of shape (8,) declared at test_user_names.py:{line} is already "
                                  "cached by the cache of the INPUT array of shape (8,) declared at "
                                  f"test_user_names.py:{line} at index i: to cache it at another level, cache the "
                                  "Cache that call returned (a hierarchical cache)")  # fmt: skip


def _unnamed_arrays() -> list[oi.Array]:
    return [oi.Array(role=role, shape=(4, 2)) for role in (IN, IO)]


def _unnamed_plan():
    arrays = _unnamed_arrays()
    nest = oi.Nest(shape=(4, 2))
    i, j = nest.get_indices()

    @nest.iteration_logic
    def _():
        arrays[1][i, j] += arrays[0][i, j + 1]

    return nest.create_plan()


def test_an_array_no_code_names_is_called_by_role_shape_and_place() -> None:
    line = inspect.getsourcelines(_unnamed_arrays)[1] + 1
    with pytest.raises(ScheduleError) as info:
        _unnamed_plan().build()
    assert info.value.message == (f"an access of the INPUT array of shape (4, 2) declared at test_user_names.py:{line} "
                                  "reaches [1, 2] in dimension 1, outside [0, 1]")  # fmt: skip
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        written = _unnamed_arrays()[0]
        other = oi.Nest(shape=(4, 2))
        a, b = other.get_indices()

        @other.iteration_logic
        def _():
            written[a, b] = 1.0

    (warning,) = [w for w in caught if issubclass(w.category, AcceraCompatWarning)]
    assert str(warning.message).startswith("written is an INPUT array and the logic writes it")


def test_indices_without_a_name_are_called_by_where_they_come_from() -> None:
    nest = oi.Nest(shape=(4, 4))
    i, j = nest.get_indices()
    schedule = nest.create_schedule()
    other = oi.Nest(shape=(4,)).create_schedule()
    with pytest.raises(ScheduleError) as info:
        schedule.split(other.get_indices()[0], 2)
    assert info.value.message == "index 0 of the nest of shape (4,) is not an index of this schedule"
    inner = [schedule.split(j, 2)]  # not assigned to a name of its own
    plan = schedule.create_plan()
    plan.unroll(inner[0])
    with pytest.raises(ScheduleError) as info:
        plan.vectorize(inner[0])
    assert info.value.message == "inner[0] is already unrolled: an index can be unrolled or vectorized, not both"
    plan.unroll(schedule.split(i, 2))  # never bound to a name
    with pytest.raises(ScheduleError) as info:
        plan.vectorize(schedule.get_indices()[1])
    assert info.value.message == ("the index split(i, 2) returned is already unrolled: an index can be unrolled or "
                                  "vectorized, not both")  # fmt: skip


def test_build_time_errors_are_reworded_in_the_users_names() -> None:
    """`--map-gpu` knows the cache only by its IR name (`array0_cache0`)."""
    xs = [oi.Array(role=role, shape=(64, 64)) for role in (IN, IO)]
    nest = oi.Nest(shape=(64, 64))
    i, j = nest.get_indices()

    @nest.iteration_logic
    def _():
        xs[1][i, j] += xs[0][i, j]

    schedule = nest.create_schedule()
    ii = schedule.split(i, 16)
    jj = schedule.split(j, 16)
    schedule.reorder(i, j, ii, jj)
    gpu = oi.Target(category=oi.Target.Category.GPU)
    plan = schedule.create_plan(gpu)
    plan.bind({i: gpu.GridUnit.BLOCK_X, ii: gpu.GridUnit.THREAD_X})
    plan.cache(xs[0], index=jj, location=oi.MemorySpace.SHARED)
    with pytest.raises(OiError) as info:
        plan.ptx()
    assert info.value.message == ("a SHARED cache (the cache of xs[0] at index jj) must be filled outside the "
                                  "thread-bound loops: cache it at an index above them")  # fmt: skip
    assert str(info.value).endswith(info.value.message)


def test_a_call_with_too_few_arrays_names_them() -> None:
    xs = [oi.Array(role=role, shape=(4,)) for role in (IN, IO)]
    nest = oi.Nest(shape=(4,))
    i = nest.get_indices()

    @nest.iteration_logic
    def _():
        xs[1][i] += xs[0][i]

    function = nest.create_plan().build()
    with pytest.raises(OiError) as info:
        function(np.zeros(4, np.float32))
    assert info.value.message == "nest takes 2 arrays (xs[0], xs[1]), got 1"
