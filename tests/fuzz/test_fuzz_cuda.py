"""Fuzz target 6: `device="cuda"` (its kernels in the CPU emulation, `OI_GPU_EMULATE=1`, launches
from compiled code from each kernel set's second call, `OI_CUDA_COMPILE_AFTER=1`), against
`device="cpu"` (the same compiled control plane, the CPU nests).

One graph (`SRC`) holds what lives in device memory on cuda: dynamic inputs (f32, bf16, i64
scalars, an empty f32[0]), an op in place (`op add(x, x) >> x`), a read-modify-write of a plain
persistent, a `@fixed` table, a growable table, a `@paged(page = 2)` table (written and read by a
slice), an `@auto_dim` tensor with a `@fixed` max, resets and an increment, each behind a branch
flag so that a step picks what it runs. On it:

- `test_insert_hostile_values`: `insert` of wrong shapes, dtypes, NaN, huge and empty arrays,
  non-array objects and unknown names, then a step and every read-out;
- `test_readouts_of_unknown_and_unwritten_names`: `fetch`/`state`/`table_sizes`/`page_table`/
  `table_nbytes`/`input_buffer` of every variable, unknown names and non-strings, before any step
  and after some;
- `test_tables_past_their_limits`: indices past `@fixed`, huge and negative indices into the
  growable, paged and `@auto_dim` tables (a failed step must leave the state as it was);
- `test_action_sequences`: hypothesis-driven mixes of steps (good and failing), bad inserts,
  resets, save/load in the middle of a run (on the same device and across), loads of older
  states, read-outs;
- `test_mutated_state_files_on_cuda`: a real checkpoint (saved on cpu and on cuda) with its JSON
  header, arrays, zip members or bytes mutated, loaded on cuda and on cpu;
- truncated checkpoints, cross-device checkpoints, bad paths, and `oi-run --device cuda`.

Everywhere only `oi.OiError`s may escape (an `oi.InternalError` counts as a bug, as in the other
fuzz targets), and cuda must agree with cpu on which calls fail and with what message (a message
naming the device is compared with the device's name blanked), on every value read out, and on
the state a failed call leaves.
"""

from __future__ import annotations

import copy
import io
import json
import os
import re
import zipfile
from pathlib import Path

import ml_dtypes
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import oi_compiler as oi
from oi_compiler.tools.oi_run import main as oi_run

from ._support import (
    NPY_HEADERS,
    Bug,
    Seeds,
    call,
    count,
    fuzz_settings,
    interesting_ints,
    join_state,
    json_paths,
    npy_bytes,
    outcome,
    split_state,
    quiet_stdio,
)
from .oi_grammar import byte_mutations

pytestmark = [pytest.mark.filterwarnings("ignore::RuntimeWarning"),
              pytest.mark.filterwarnings("ignore::DeprecationWarning"),
              pytest.mark.filterwarnings("ignore:Duplicate name:UserWarning")]  # fmt: skip

DEVICES = ("cpu", "cuda")


@pytest.fixture(scope="module", autouse=True)
def emulated_cuda():
    """The emulation for every test here (module-scoped: the simulators are shared across tests and
    hypothesis examples); `OI_CUDA_COMPILE_AFTER=1`: each kernel set runs compiled from its second call."""
    with pytest.MonkeyPatch.context() as monkeypatch:
        monkeypatch.setenv("OI_GPU_EMULATE", "1")
        monkeypatch.setenv("OI_CUDA_COMPILE_AFTER", "1")
        yield


SRC = """
dynamic { x: f32[2]; i: i64; j: i64; h: bf16[3]; e: f32[0];
          do_k: bool; do_g: bool; do_p: bool; do_m: bool; do_rst: bool; }
volatile { w: f32[2]; y: f32[2]; hy: bf16[3]; m: f32[2]; r: f32[2, 2]; }
persistent {
    c: i64 @init(0);
    I: i64 @init(0);
    J: i64 @init(0);
    K(t): f32[2] @table @fixed(t = 3);
    G(t): f32[2] @table;
    P(b, t): f32[2] @table @paged(page = 2);
    M(a): f32[2] @init(1.0) @auto_dim(a) @fixed(a = 4);
    v: f32[2] @init(0.5);
    pe: f32[0];
}
block entry {
    cache.write i >> I;
    cache.write j >> J;
    op add(x, x) >> x;
    op mul(x, x) >> y;
    cache.read v >> w;
    op add(w, y) >> w;
    cache.write w >> v;
    op abs(h) >> hy;
    cache.write e >> pe;
    branch do_k wk skip;
    branch do_g wg skip;
    branch do_p wp skip;
    branch do_m rm skip;
    branch do_rst rst skip;
    cache.increment c;
    return;
}
block wk { cache.write y >> K[I]; return; }
block wg { cache.write y >> G[J]; return; }
block wp { cache.write y >> P[I, J]; cache.read P[I, 0..2] >> r; return; }
block rm { cache.read M[I] >> m; return; }
block rst { cache.reset P[I]; cache.reset K[I]; cache.reset M; return; }
block skip { return; }
"""
DYNAMIC = ["x", "i", "j", "h", "e", "do_k", "do_g", "do_p", "do_m", "do_rst"]
VOLATILE = ["w", "y", "hy", "m", "r"]
PERSISTENT = ["c", "I", "J", "K", "G", "P", "M", "v", "pe"]
NAMES = DYNAMIC + VOLATILE + PERSISTENT

_GRAPH: list[oi.Graph] = []
_SIMS: dict[str, oi.Simulator] = {}


def simulator(device: str) -> oi.Simulator:
    if device not in _SIMS:
        if not _GRAPH:
            _GRAPH.append(oi.parse_graph(SRC, "cuda_fuzz.oi"))
        _SIMS[device] = oi.Simulator(oi.Model(), _GRAPH[0], device=device)
    return _SIMS[device]


def good_inputs(n: int = 0, **changes) -> dict:
    """Inputs of a step that succeeds from a fresh executor for n < 3 (K is `@fixed(t = 3)`)."""
    values = {"x": np.float32([n + 0.5, -n]), "i": n % 3, "j": n % 5, "h": np.array([n, -1.5, 2], ml_dtypes.bfloat16),
              "e": np.zeros(0, np.float32), "do_k": True, "do_g": True, "do_p": True, "do_m": True, "do_rst": False}  # fmt: skip
    values.update(changes)
    return values


def executors(steps: int = 0) -> dict[str, oi.Executor]:
    """A fresh executor per device, both after the same `steps` good steps."""
    exes = {d: simulator(d).make_executor() for d in DEVICES}
    for n in range(steps):
        for exe in exes.values():
            exe.insert(**good_inputs(n)).step()
    return exes


# --- comparing the devices ----------------------------------------------------------------------


def _text(error: BaseException) -> str:
    """An error as the devices must agree on it: its type and message, the device's name blanked."""
    return f"{type(error).__name__}: " + re.sub(r"device '(cpu|cuda)'", "device 'D'", str(error))


def _value(result):
    if isinstance(result, np.ndarray):
        array = np.ascontiguousarray(result)
        return ("array", array.dtype.str, array.shape, array.reshape(-1).view(np.uint8).tobytes())
    if isinstance(result, oi.PageTable):  # (which pool page holds which run, and the pool's capacity, are each
        # executor's own: a loaded state lays its pages out afresh)
        return ("pages", result.page_size, result.rows, result.indptr.tolist(), (result.indices >= 0).tolist(),
                result.last_page_len.tolist(), result.pages_in_use)  # fmt: skip
    if isinstance(result, oi.Executor):  # insert's `return self`
        return "executor"
    return result


def both(what: str, fn, exes: dict, *args, expect=oi.OiError, **kwargs) -> tuple:
    """`fn(exe, ...)` on each device (only `expect`ed errors may escape: else `Bug`); the outcome,
    which must be the same on both (else `Bug`)."""
    outcomes = {}
    for device, exe in exes.items():
        result, error = call(f"{what} ({device})", fn, exe, *args, expect=expect, **kwargs)
        outcomes[device] = ("error", _text(error)) if error is not None else ("ok", _value(result))
    if outcomes["cpu"] != outcomes["cuda"]:
        raise Bug(f"{what}: cuda and cpu disagree", AssertionError(f"cpu: {outcomes['cpu']!r:.600}\n"
                                                                   f"cuda: {outcomes['cuda']!r:.600}"))  # fmt: skip
    return outcomes["cpu"]


READOUTS = ("fetch", "state", "table_sizes", "page_table")


def readouts(exes: dict, names=NAMES) -> None:
    """Every read-out of every name agrees on both devices."""
    for name in names:
        for how in READOUTS:
            both(f"{how}({name!r})", lambda exe, n, h=how: getattr(exe, h)(n), exes, name)
    both("steps", lambda exe: exe.steps, exes)


def snapshot(exe: oi.Executor) -> dict:
    """What a failed call must leave as it was: every persistent's state and sizes, the step count."""
    out = {"steps": exe.steps}
    for name in PERSISTENT:
        out[name] = (_value(np.asarray(exe.state(name))), exe.table_sizes(name))
    return out


def step_both(exes: dict, values: dict, what: str = "step") -> tuple:
    """Insert `values` and step on both devices; they agree, and a failed step changed no state."""
    inserted = both(f"insert {sorted(values)}", lambda exe: exe.insert(**values), exes)
    before = {d: snapshot(exe) for d, exe in exes.items()}
    result = both(what, lambda exe: exe.step(), exes)
    if result[0] == "error":
        for device, exe in exes.items():
            if snapshot(exe) != before[device]:
                raise Bug(f"{what} ({device}) failed ({result[1]}) but changed the state",
                          AssertionError("state changed by a failed step"))  # fmt: skip
    return inserted, result


# --- insert ---------------------------------------------------------------------------------------


class Hostile:
    """An object whose `__array__` raises or returns the wrong thing."""

    def __init__(self, how: str):
        self.how = how

    def __array__(self, dtype=None, copy=None):
        if self.how == "raise":
            raise RuntimeError("no array for you")
        if self.how == "none":
            return None
        return [1.0, 2.0]

    def __repr__(self) -> str:
        return f"Hostile({self.how!r})"


VALUES = [
    np.float32([1.0, 2.0]), np.float32([np.nan, -np.nan]), np.float32([np.inf, -np.inf]), np.float64([1e300, -1e300]),
    np.float32([3.4e38, -3.4e38]), np.zeros(0, np.float32), np.zeros((0, 2), np.float32), np.ones(3, np.float32),
    np.ones((2, 1), np.float32), np.ones((1, 2), np.float32), np.ones((2, 2), np.float32), np.float32(7.0),
    np.array([1, 2], np.int64), np.array([2**62, -(2**62)], np.int64), np.array([1, 2], np.uint64),
    np.array([True, False]), np.array([1.5, 2.5], ml_dtypes.bfloat16), np.array([1, 2, 3], ml_dtypes.bfloat16),
    np.array([np.nan, 1, 2], np.float32), np.array([1 + 1j, 2]), np.array([1 + 0j, 2]), np.array(["a", "b"]),
    np.array([b"a", b"b"]), np.array([1.0, None], object), np.array([1, 2], object), np.ones(2, np.float16),
    np.float32([1.0, 2.0, 3.0, 4.0])[::2], np.asfortranarray(np.ones((2, 2), np.float32)), np.broadcast_to(np.float32(1), (2,)),
    np.ma.masked_array(np.float32([1, 2])), np.zeros(2, [("a", "<f4")]), np.array(0, np.int64), np.array(2**63 - 1, np.int64),
    np.array(-(2**63), np.int64), np.uint64(2**64 - 1), np.array([0], np.int64), np.array(1.5), np.array(3.0),
    0, 1, -1, 2, 3, 5, 2**40, 2**62, 2**63 - 1, 2**63, -(2**63), -(2**63) - 1, 2**64, 10**30, 1.5, 2.0, float("nan"),
    float("inf"), -0.0, True, False, None, "x", "", b"\x00", [1.0, 2.0], [1.0, [2.0]], [[1.0, 2.0]], [], [[]], {"a": 1},
    (1, 2), {1, 2}, object(), Hostile("raise"), Hostile("none"), Hostile("list"), ..., 1 + 2j, range(2),
]  # fmt: skip
insert_names = st.sampled_from(DYNAMIC * 3 + ["w", "y", "K", "P", "M", "c", "pe", "nope", "", "x ", "X", "_t0"])
#: values a variable takes (its shape, a dtype it converts from) with odd contents: most of these steps run
PLAUSIBLE = {
    "x": [np.float32([np.nan, 1]), np.float32([np.inf, -np.inf]), np.float32([3e38, -3e38]), np.float32([1e-45, -0.0]),
          np.float64([1e39, 1e-50]), [1, 2], np.array([[5, 6]], np.int8), np.uint32([2**32 - 1, 0])],
    "i": [0, 1, 2, 3, 4, 7, np.int8(-1), np.uint8(2), True, 2.0, np.float32(1.0), 2**40, 2**63 - 1, -(2**63)],
    "j": [0, 1, 5, 17, 1000, np.int32(3), 2**40, 2**62, -1],
    "h": [np.float32([np.nan, np.inf, -np.inf]), np.float32([3.4e38, 1e-40, -0.0]), np.float64([1e300, 1, 2]), [1, 2, 3],
          np.array([1, 2, 3], ml_dtypes.bfloat16), np.array([1, 2, 3], ml_dtypes.float8_e4m3fn)],
    "e": [np.zeros(0, np.float64), [], np.zeros((0,), np.int32), np.zeros((0, 0), np.float32)],
    **{flag: [True, False, 0, 1, 2, np.bool_(True), np.array([1], np.uint8), 1.0, 0.5] for flag in DYNAMIC[5:]},
}  # fmt: skip


@st.composite
def insert_items(draw) -> tuple:
    name = draw(insert_names)
    if name in PLAUSIBLE and draw(st.integers(0, 3)) > 0:
        return name, draw(st.sampled_from(PLAUSIBLE[name]))
    return name, draw(st.sampled_from(VALUES))


@fuzz_settings(30)
@given(st.lists(insert_items(), min_size=1, max_size=3), st.integers(0, 4))
def test_insert_hostile_values(items, n: int) -> None:
    with outcome("cuda-insert", items):
        exes = executors()
        values = dict(items)
        inserted = both(f"insert({values!r:.300})", lambda exe: exe.insert(**values), exes)
        count("cuda-insert", f"insert {inserted[0]}")
        base = {k: v for k, v in good_inputs(n).items() if k not in values}
        if inserted[0] == "ok":  # the rest of a step's inputs, then a step with what was accepted
            _, result = step_both(exes, base)
            count("cuda-insert", f"step {result[0]}")
        readouts(exes, DYNAMIC + VOLATILE + ["K", "G", "P", "M", "v", "pe"])


def test_insert_as_a_mapping_and_not_one() -> None:
    exes = executors()
    for args in ([{"x": np.ones(2, np.float32)}], [[("x", np.ones(2, np.float32))]], ["x"], [None], [{1: 2}],
                 [{("x",): 1}], [{"x": None}]):  # fmt: skip
        both(f"insert(*{args!r})", lambda exe: exe.insert(*args), exes)
    both("insert(values, x=...)", lambda exe: exe.insert({"x": 1.0}, x=np.float32([3, 4])), exes)
    assert _value(exes["cuda"].fetch("x")) == _value(np.float32([3, 4]))


# --- read-outs ------------------------------------------------------------------------------------

ODD_NAMES = ["nope", "", "x ", "X", "_t0", "__tmp0", "K[0]", "entry", "wk", None, 0, 1.5, b"x", ("x",)]


@pytest.mark.parametrize("steps", [0, 2])
def test_readouts_of_unknown_and_unwritten_names(steps: int) -> None:
    """Before any step every variable is unwritten (inits, zeros, empty tables); after two, written."""
    exes = executors(steps)
    readouts(exes, NAMES + ODD_NAMES)
    for name in NAMES + ODD_NAMES:  # the devices lay tables out differently: only errors must agree
        for how in ("table_nbytes",):
            call(f"{how}({name!r}) (cuda)", getattr(exes["cuda"], how), name)
        result, error = call(f"input_buffer({name!r}) (cuda)", exes["cuda"].input_buffer, name)
        if name in DYNAMIC and error is None:  # a buffer on the host: the flags
            assert not exes["cuda"].native.plan.vars[name].device, name
    call("inputs (cuda)", lambda: dict(exes["cuda"].inputs.items()), expect=oi.OiError)


def test_input_buffer_of_an_unhashable_name_on_cuda() -> None:
    exe = simulator("cuda").make_executor()
    call("input_buffer(['x']) (cuda)", exe.input_buffer, ["x"], expect=(oi.OiError,))
    call("inputs[['x']] (cuda)", lambda: exe.inputs[["x"]], expect=(oi.OiError,))


@pytest.mark.parametrize("how", ["fetch", "state", "table_sizes", "page_table", "table_nbytes", "input_buffer"])
def test_readouts_of_an_unhashable_name(how: str) -> None:
    exes = executors()
    both(f"{how}(['x'])", lambda exe: getattr(exe, how)(["x"]), exes)


# --- tables past their limits ---------------------------------------------------------------------

BIG = [3, 4, 7, 2**31, 2**32, 2**40, 2**53, 2**62, 2**63 - 1, -1, -2, -(2**63)]
#: for the growable tables: an index that fits this machine's memory but not a smaller one's would
#: have cuda's emulated device memory fill (touch) the whole table, 16 GiB for G[2**31]
HUGE = [3, 4, 7, 2**40, 2**53, 2**62, 2**63 - 1, -1, -2, -(2**63)]
LIMITS = [
    *[(f"K[{i}]", {"i": i, "do_g": False, "do_p": False, "do_m": False}) for i in BIG],
    *[(f"G[{j}]", {"j": j, "do_k": False, "do_p": False, "do_m": False}) for j in HUGE],
    *[(f"P[0, {j}]", {"i": 0, "j": j, "do_k": False, "do_g": False, "do_m": False}) for j in HUGE],
    *[(f"P[{i}, 0]", {"i": i, "j": 0, "do_k": False, "do_g": False, "do_m": False}) for i in HUGE],
    *[(f"M[{i}]", {"i": i, "do_k": False, "do_g": False, "do_p": False}) for i in BIG],
    ("reset P[huge]", {"i": 2**62, "do_k": False, "do_g": False, "do_p": False, "do_m": False, "do_rst": True}),
    ("reset P[-1]", {"i": -1, "do_k": False, "do_g": False, "do_p": False, "do_m": False, "do_rst": True}),
]


def test_tables_past_their_limits() -> None:
    """Each case after two good steps, on the same executors: a failed step leaves them as they were
    (checked), so the next case starts from there; a step that succeeds changes what the next sees."""
    exes = executors(2)
    for what, changes in LIMITS:
        _, result = step_both(exes, good_inputs(2, **changes), what)
        count("cuda-limits", f"{what}: {result[0]}")
        readouts(exes, ["K", "G", "P", "M", "r", "m", "y", "x", "v", "c", "I", "J"])
    for n in range(3):  # the executors still step
        step_both(exes, good_inputs(n))


def test_steps_after_failed_steps_and_resets() -> None:
    exes = executors(1)
    plan = [good_inputs(1), good_inputs(2, i=5), good_inputs(2, i=5), good_inputs(2, x=np.float32([np.nan, np.inf])),
            good_inputs(0, do_rst=True), good_inputs(2, j=2**62), "reset", "reset", good_inputs(0, i=3, do_k=False),
            good_inputs(1, i=4), good_inputs(1, i=5), "reset", good_inputs(2)]  # fmt: skip
    for action in plan:
        if action == "reset":
            both("reset", lambda exe: exe.reset(), exes)
        else:
            step_both(exes, action)
        readouts(exes)


def test_in_place_ops_compound_like_cpu() -> None:
    """`op add(x, x) >> x` doubles the inserted x; a step without an insert doubles the last result again."""
    exes = executors()
    both("insert", lambda exe: exe.insert(**good_inputs(0, x=np.float32([1.5, -3.0]))), exes)
    for n in range(6):
        both(f"step {n}", lambda exe: exe.step(), exes)
        both("fetch x", lambda exe: exe.fetch("x"), exes)
    assert exes["cuda"].fetch("x").tolist() == [1.5 * 64, -3.0 * 64]
    both("insert big", lambda exe: exe.insert(x=np.float32([3e38, -3e38])), exes)
    for n in range(2):
        step_both(exes, {})
    readouts(exes)


def test_two_executors_of_one_simulator_interleaved() -> None:
    """Executors of one simulator share its kernels, not their device memory."""
    first, second = executors(), executors()
    for n in range(5):
        step_both(first, good_inputs(n, i=n % 4))
        step_both(second, good_inputs(4 - n, j=n * 3))
        if n == 2:
            both("reset", lambda exe: exe.reset(), first)
    readouts(first)
    readouts(second)
    del first
    step_both(second, good_inputs(1))
    readouts(second, PERSISTENT)


# --- hypothesis: mixes of calls ---------------------------------------------------------------------

indices = st.one_of(st.integers(-1, 6), st.sampled_from([2**40, 2**62, 2**63 - 1, -(2**63)]))
floats32 = st.floats(width=32, allow_nan=True, allow_infinity=True)


@st.composite
def step_values(draw) -> dict:
    values = good_inputs(0)
    values.update(x=np.float32(draw(st.lists(floats32, min_size=2, max_size=2))), i=draw(indices), j=draw(indices),
                  h=np.array(draw(st.lists(floats32, min_size=3, max_size=3)), np.float32).astype(ml_dtypes.bfloat16),
                  **{flag: draw(st.booleans()) for flag in ("do_k", "do_g", "do_p", "do_m")},
                  do_rst=draw(st.integers(0, 5)) == 0)  # fmt: skip
    return values


actions = st.one_of(
    step_values().map(lambda v: ("step", v)),
    step_values().map(lambda v: ("step", v)),
    insert_items().map(lambda item: ("insert", *item)),
    st.just(("step-again",)),
    st.just(("reset",)),
    st.just(("save-load",)),
    st.just(("cross-load",)),
    st.just(("load-older",)),
    st.just(("readouts",)),
)


@fuzz_settings(15)
@given(plan=st.lists(actions, min_size=1, max_size=8))
def test_action_sequences(plan, tmp_path_factory) -> None:
    with outcome("cuda-actions", plan):
        exes = executors()
        tmp = tmp_path_factory.mktemp("cuda-actions")
        saved: list[dict[str, Path]] = []
        for n, action in enumerate(plan):
            kind = action[0]
            count("cuda-actions", kind)
            if kind == "step":
                step_both(exes, action[1])
            elif kind == "step-again":
                step_both(exes, {})
            elif kind == "insert":
                both(f"insert({action[1]!r}={action[2]!r:.100})", lambda exe: exe.insert(**{action[1]: action[2]}), exes)
            elif kind == "reset":
                both("reset", lambda exe: exe.reset(), exes)
            elif kind in ("save-load", "cross-load"):
                paths = {d: tmp / f"{n}-{d}.oistate" for d in DEVICES}
                for device, exe in exes.items():
                    call(f"save_state ({device})", exe.save_state, paths[device])
                saved.append(paths)
                other = {"cpu": "cuda", "cuda": "cpu"} if kind == "cross-load" else {"cpu": "cpu", "cuda": "cuda"}
                both(kind, lambda exe: exe.load_state(paths[other[exe.sim.device]]), exes)
            elif kind == "load-older" and saved:
                paths = saved[0]
                both("load an older state", lambda exe: exe.load_state(paths["cpu"]), exes)
            readouts(exes, NAMES if kind == "readouts" else ["x", "y", "K", "P", "M", "v", "c"])
        step_both(exes, good_inputs(0, do_k=False))  # whatever came before, the executors still step


# --- checkpoints ----------------------------------------------------------------------------------


def _seeds() -> Seeds:
    import tempfile

    seeds = Seeds()
    with pytest.MonkeyPatch.context() as monkeypatch, tempfile.TemporaryDirectory() as tmp:
        monkeypatch.setenv("OI_GPU_EMULATE", "1")
        monkeypatch.setenv("OI_CUDA_COMPILE_AFTER", "1")
        for steps in (0, 3):
            for device, exe in executors(steps).items():
                path = Path(tmp) / f"{device}-{steps}.oistate"
                exe.save_state(path)
                seeds[path.name] = path.read_bytes()
    return seeds


_SEEDS: list[Seeds] = []


def seeds() -> Seeds:
    if not _SEEDS:
        _SEEDS.append(_seeds())
    return _SEEDS[0]


JSON_VALUES = [None, True, False, 0, -1, 1, 2, 3, 2**31, 2**62, 2**63, 2**64, -(2**63), 10**30, 1.5, -0.0, float("nan"),
               float("inf"), "", "a0", "f32", "bf16", "table", "paged", "auto_dim", "cuda", [], [0], [[0]], [-1], [2**62],
               [None], {}, {"array": "a0", "dtype": "f32", "shape": [2]}, {"array": "a1", "dtype": "i4", "shape": [2**40, 2**40]},
               {"kind": "table", "sizes": [], "keys": [], "entries": None}]  # fmt: skip


@st.composite
def header_mutations(draw) -> tuple[str, bytes]:
    name = draw(st.sampled_from(sorted(seeds())))
    header, arrays = split_state(seeds()[name])
    for _ in range(draw(st.integers(1, 3))):
        paths = [p for p in json_paths(header) if p]
        if not paths:
            break
        path = draw(st.sampled_from(paths))
        parent = header
        for key in path[:-1]:
            parent = parent[key]
        how = draw(st.sampled_from(["set", "set", "number", "drop", "add"]))
        if how == "set":
            parent[path[-1]] = copy.deepcopy(draw(st.sampled_from(JSON_VALUES)))
        elif how == "number":
            parent[path[-1]] = draw(st.sampled_from(interesting_ints()))
        elif how == "drop":
            del parent[path[-1]]
        elif isinstance(parent, dict):
            parent[draw(st.sampled_from(["extra", "P", "M", "x", "nope"]))] = copy.deepcopy(draw(st.sampled_from(JSON_VALUES)))
        else:
            parent.append(copy.deepcopy(draw(st.sampled_from(JSON_VALUES))))
    return name, join_state(json.dumps(header, allow_nan=True).encode(), arrays)


@st.composite
def array_mutations(draw) -> tuple[str, bytes]:
    name = draw(st.sampled_from(sorted(seeds())))
    header, arrays = split_state(seeds()[name])
    key = draw(st.sampled_from(sorted(arrays)))
    how = draw(st.sampled_from(["replace", "drop", "rename", "npy-header"]))
    if how == "replace":
        arrays[key] = draw(st.sampled_from([np.zeros(0, np.uint32), np.ones((3, 2), np.uint32), np.ones(2, np.uint16),
                                            np.array(7, np.uint64), np.ones((1, 1, 1), np.uint8), np.ones(4, np.uint16),
                                            np.full(2, 0xFFFFFFFF, np.uint32), np.ones(9, np.uint64)]))  # fmt: skip
    elif how == "drop":
        del arrays[key]
    elif how == "rename":
        arrays[draw(st.sampled_from(["b0", "a99", "aa"]))] = arrays.pop(key)
    else:
        members = {f"{k}.npy": npy_bytes(v) for k, v in arrays.items()}
        members["header.npy"] = npy_bytes(np.frombuffer(json.dumps(header).encode(), np.uint8))
        members[f"{key}.npy"] = npy_bytes(np.ones(2, np.uint32), draw(st.sampled_from(NPY_HEADERS)))
        out = io.BytesIO()
        with zipfile.ZipFile(out, "w") as archive:
            for member, data in members.items():
                archive.writestr(member, data)
        return name, out.getvalue()
    return name, join_state(json.dumps(header).encode(), arrays)


#: sizes, keys and counts a file may claim: in range, past the entries, negative, too big for any
#: memory (never between: an index that fits this machine's memory would have cuda's emulated device
#: memory touch a table of many GiB)
CLAIMS = [0, 1, 2, 3, 4, 5, 17, 1000, 2**40, 2**62, 2**63 - 1, 2**63, -1, -(2**63)]


@st.composite
def value_mutations(draw) -> tuple[str, bytes]:
    """A file that still fits together but holds odd values: an array's bytes replaced (NaN, all ones,
    bool bytes other than 0 and 1, huge scalars), a table's sizes or keys or an `@auto_dim` tensor's
    counts changed (its value's shape along), the step count."""
    name = draw(st.sampled_from(sorted(seeds())))
    header, arrays = split_state(seeds()[name])
    how = draw(st.sampled_from(["data", "data", "sizes", "keys", "counts", "steps"]))
    tables = [n for n, d in header["persistent"].items() if d["kind"] == "table" and d["keys"]]
    if how == "data":
        key = draw(st.sampled_from(sorted(arrays)))
        raw = draw(st.binary(min_size=arrays[key].nbytes, max_size=arrays[key].nbytes))
        fill = draw(st.sampled_from([None, 0xFF, 0x7F, 0x80, 0x02]))
        raw = bytes([fill] * len(raw)) if fill is not None else raw
        arrays[key] = np.frombuffer(raw, arrays[key].dtype).reshape(arrays[key].shape)
    elif how == "sizes" and tables:
        decl = header["persistent"][draw(st.sampled_from(tables))]
        decl["sizes"] = [draw(st.sampled_from(CLAIMS)) for _ in decl["sizes"]]
    elif how == "keys" and tables:
        decl = header["persistent"][draw(st.sampled_from(tables))]
        n = draw(st.integers(0, len(decl["keys"]) - 1))
        decl["keys"][n] = [draw(st.sampled_from(CLAIMS)) for _ in decl["keys"][n]]
        if draw(st.booleans()):
            decl["sizes"] = [max(max(k[d] for k in decl["keys"]) + 1, 0) for d in range(len(decl["sizes"]))]
    elif how == "counts":
        decl = header["persistent"]["M"]
        counts = draw(st.sampled_from([0, 1, 3, 4, 5, 2**40, -1]))
        decl["counts"] = [counts]
        if draw(st.booleans()) and 0 <= counts < 100:  # the value's shape along, as a save would write it
            decl["value"]["shape"] = [2 + counts]
            arrays[decl["value"]["array"]] = np.zeros(2 + counts, np.uint32)
    else:
        header["steps"] = draw(st.sampled_from(CLAIMS))
    return name, join_state(json.dumps(header).encode(), arrays)


@st.composite
def state_files(draw) -> tuple[str, bytes]:
    which = draw(st.sampled_from(["header", "value", "value", "array", "bytes"]))
    if which == "value":
        return draw(value_mutations())
    if which == "header":
        return draw(header_mutations())
    if which == "array":
        return draw(array_mutations())
    return draw(byte_mutations(seeds()))


def check_load(data: bytes, tmp: Path, target: str) -> None:
    """`data` loaded on a cpu and a cuda executor (both after two steps): the same outcome; a failed
    load changes nothing; after a load that succeeds the two read alike, step alike, and save a file
    that loads again on either device."""
    exes = executors(2)
    before = {d: snapshot(exe) for d, exe in exes.items()}
    path = tmp / "state.oistate"
    path.write_bytes(data)
    result = both("load_state", lambda exe: exe.load_state(path), exes, expect=oi.StateError)
    count(target, f"load {result[0]}")
    if result[0] == "error":
        for device, exe in exes.items():
            if snapshot(exe) != before[device]:
                raise Bug(f"load_state ({device}) failed ({result[1]}) but changed the executor",
                          AssertionError("changed by a failed load"))  # fmt: skip
        return
    readouts(exes)
    _, stepped = step_both(exes, good_inputs(1, do_k=False))
    count(target, f"step after load {stepped[0]}")
    again = tmp / "again.oistate"
    call("save_state after load_state (cuda)", exes["cuda"].save_state, again)
    fresh = executors()
    both("load_state of a re-saved state", lambda exe: exe.load_state(again), fresh)
    readouts(fresh, PERSISTENT)


@fuzz_settings(20)
@given(case=state_files())
def test_mutated_state_files_on_cuda(case, tmp_path_factory) -> None:
    name, data = case
    with outcome("cuda-checkpoints", (name, data)):
        check_load(data, tmp_path_factory.mktemp("cuda-ckpt"), "cuda-checkpoints")


def test_the_seeds_load_on_both_devices(tmp_path) -> None:
    for data in seeds().values():
        check_load(data, tmp_path, "cuda-seeds")


@pytest.mark.parametrize("cut", [0, 22, "half", -22, -1])
def test_truncated_state_files(tmp_path, cut) -> None:
    for name, data in sorted(seeds().items()):
        end = len(data) // 2 if cut == "half" else cut
        check_load(data[:end], tmp_path, "cuda-truncated")


def test_checkpoints_cross_devices_mid_run(tmp_path) -> None:
    """A run on each device saved after 3 steps, loaded on the other (mid-run, over a different state),
    continues as the saver does."""
    savers = executors(3)
    for saver_device in DEVICES:
        path = savers[saver_device].save_state(tmp_path / f"{saver_device}.oistate")
        loaders = executors(1)
        step_both(loaders, good_inputs(0, i=9))  # a failed step before the load
        both("cross load", lambda exe: exe.load_state(path), loaders)
        pairs = {"cpu": loaders["cuda"], "cuda": savers[saver_device]}
        readouts(pairs)
        for n in (3, 4, 0, 1):
            values = good_inputs(n, do_k=n < 3, i=n % 3)
            step_both(loaders, values)
            readouts({"cpu": loaders["cpu"], "cuda": loaders["cuda"]})


@pytest.mark.parametrize("how", ["save_state", "load_state"])
@pytest.mark.parametrize("path", [None, 123, "bytes"], ids=["None", "int", "bytes"])
def test_state_files_at_paths_that_are_not_paths(how: str, path, tmp_path) -> None:
    """None and an int are refused alike (an ExecutionError); bytes are a path, as to `open`."""
    exes = executors(1)
    if path == "bytes":
        path = os.fsencode(tmp_path / "state.oistate")
    outcome = both(f"{how}({path!r})", lambda exe: getattr(exe, how)(path), exes)
    if not isinstance(path, bytes):
        assert outcome[0] == "error" and "a path is a str, bytes or os.PathLike" in outcome[1], outcome


def test_state_files_at_odd_paths(tmp_path) -> None:
    exes = executors(1)
    (tmp_path / "dir").mkdir()
    (tmp_path / "empty").write_bytes(b"")
    (tmp_path / "text").write_text("not a zip")
    for path in [tmp_path / "missing", tmp_path / "dir", tmp_path / "empty", tmp_path / "text",
                 tmp_path / "missing-dir" / "f", str(tmp_path / "dir") + "/"]:  # fmt: skip
        before = {d: snapshot(exe) for d, exe in exes.items()}
        result = both(f"load_state({path})", lambda exe: exe.load_state(path), exes)
        assert result[0] == "error" and {d: snapshot(e) for d, e in exes.items()} == before
    for path in [tmp_path / "dir", tmp_path / "missing-dir" / "f"]:
        both(f"save_state({path})", lambda exe: exe.save_state(path), exes)


# --- oi-run --device cuda -------------------------------------------------------------------------

CLI_SRC = """
dynamic { x: f32[2]; i: i64; }
volatile { y: f32[2]; }
persistent { I: i64; K(t): f32[2] @table @fixed(t = 2); P(t): f32[2] @table @paged(page = 2); }
block entry { cache.write i >> I; op add(x, x) >> x; op mul(x, x) >> y; cache.write y >> K[I]; cache.write y >> P[I]; }
"""


def test_oi_run_agrees_on_cuda_and_cpu(tmp_path) -> None:
    graph = tmp_path / "g.oi"
    graph.write_text(CLI_SRC)
    np.save(tmp_path / "wrong.npy", np.ones((3, 3), np.float32))
    np.save(tmp_path / "rows.npy", np.float32([[1, 2], [np.nan, 4], [5, np.inf]]))
    (tmp_path / "bad.npy").write_bytes(b"\x93NUMPY garbage")
    (tmp_path / "bad.oistate").write_bytes(seeds()["cuda-3.oistate"][:200])
    cases = [
        ["--feed", "x=[1, 2]", "--feed", "i=0", "--steps", "2", "--fetch", "x", "y", "K", "P"],
        ["--feed", "x=[1, 2]", "--feed", "i=5", "--fetch", "y"],
        ["--feed", "x=[1, 2, 3]", "--feed", "i=0"],
        ["--feed", f"x={tmp_path / 'wrong.npy'}", "--feed", "i=0"],
        ["--feed", f"x={tmp_path / 'rows.npy'}", "--feed", "i=1", "--steps", "3", "--fetch", "x", "P"],
        ["--feed", f"x={tmp_path / 'bad.npy'}", "--feed", "i=0"],
        ["--feed", "x=nan", "--feed", "i=9223372036854775807"],
        ["--feed", "nope=1", "--feed", "x=[1, 2]"],
        ["--feed", "x=[1, 2]", "--feed", "i=0", "--fetch", "nope", "I"],
        ["--feed", "x=[1, 2]", "--feed", "i=0", "--load-state", str(tmp_path / "bad.oistate")],
        ["--feed", "x=[1, 2]", "--feed", "i=0", "--steps", "-1"],
    ]
    for n, args in enumerate(cases):
        outputs = {}
        for device in DEVICES:
            argv = [str(graph), "--device", device, *args, "--save-state", str(tmp_path / f"{n}-{device}.oistate")]
            with quiet_stdio() as (out, err):
                rc, _ = call(f"oi-run {argv}", oi_run, argv)
            assert rc is not None and "internal error" not in err.getvalue(), (argv, err.getvalue())
            outputs[device] = (rc, out.getvalue(), re.sub(r"device '(cpu|cuda)'", "device 'D'", err.getvalue()))
        assert outputs["cpu"] == outputs["cuda"], (args, outputs)
