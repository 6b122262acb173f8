"""Fuzz target 4: checkpoint files (`exe.save_state` / `exe.load_state`).

A real state file (a graph with plain persistents, growable, `@fixed`, bf16 and bool tables, an
`@auto_dim` tensor, a `transfer` alias, an `assign` temporary and a rebound `cache.read`
destination, saved after a few steps on `reference` and on `cpu`) is mutated:

- its JSON header: a value anywhere in it replaced (wrong types, negative, huge, NaN and
  Infinity, deep nesting, long strings), a key dropped or added, the whole header not an object;
- its arrays: one replaced by another dtype or shape, dropped, renamed, added;
- its zip members and `.npy` headers (claimed shapes, dtypes, versions), and its bytes.

`load_state` of the result must either succeed or raise `oi.StateError`, and a failed load must
leave the executor as it was (every variable's `state`/`fetch`, table sizes and `steps`). A load
that succeeds must leave an executor that steps (only `OiError`s) and whose state saves and loads
again.
"""

from __future__ import annotations

import copy
import io
import json
import tempfile
import zipfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import oi_compiler as oi

from ._support import (
    NPY_HEADERS,
    Bug,
    HeavyBudget,
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
)
from .oi_grammar import byte_mutations

pytestmark = [pytest.mark.filterwarnings("ignore::RuntimeWarning"),
              pytest.mark.filterwarnings("ignore:Duplicate name:UserWarning")]  # fmt: skip

SRC = """
dynamic { x: f32[2]; }
volatile { y: f32[2]; g: f32[2, 3]; r: f32[T, 2]; h: bf16[2]; al: f32[2]; }
persistent {
    a: i32 @init(0);
    K(p): f32[2] @table;
    F(i, j): bf16[2] @table @fixed(i=2);
    M(r, c): f32[2, 2] @init(1.5) @auto_dim(r, c);
    B(q): bool @table;
    z: i64 @init(5);
    v: f32[2];
}
block entry {
    op add(x, x) >> y;
    cache.write y >> K[a];
    op cast(y, to=bf16) >> h;
    cache.write h >> F[1, a];
    cache.read M[a, 1] >> g;
    cache.read K[0..] >> r;
    transfer y >> al;
    assign t: f32[2];
    op mul(y, y) >> t;
    cache.write t >> v;
    cache.increment a;
    cache.increment z;
}
"""
MODEL = {"T": 2}
_SIMS: dict[str, oi.Simulator] = {}


def executor(device: str, steps: int) -> oi.Executor:
    if device not in _SIMS:
        _SIMS[device] = oi.Simulator(oi.Model(MODEL), oi.parse_graph(SRC, "ckpt.oi"), device=device)
    exe = _SIMS[device].make_executor()
    for n in range(steps):
        exe.insert(x=np.float32([n + 0.5, -n]))
        exe.step()
    return exe


def _seeds() -> Seeds:
    seeds = Seeds()
    with tempfile.TemporaryDirectory() as tmp:
        for device in ("reference", "cpu"):
            for steps in (0, 3):
                path = Path(tmp) / f"{device}-{steps}.oistate"
                executor(device, steps).save_state(path)
                seeds[path.name] = path.read_bytes()
    return seeds


SEEDS = _seeds()
CPU = HeavyBudget(100)  # cpu loads are cheap (the step is compiled once per process)


JSON_VALUES = [None, True, False, 0, -1, 1, 2, 3, 2**31, 2**62, 2**63, 2**64, -(2**63), 10**30, 1.5, -0.0,
               float("nan"), float("inf"), float("-inf"), "", "a0", "f32", "bf16", "table", "plain", "auto_dim", "x" * 10000,
               [], [0], [[0]], [-1], [2**62], [[0, 0]], [None], {}, {"array": "a0", "dtype": "f32", "shape": [2]},
               {"array": "nope", "dtype": "f32", "shape": []}, {"array": "a1", "dtype": "i4", "shape": [2**40, 2**40]},
               {"kind": "table", "sizes": [], "keys": [], "entries": None}, [[[[[[[[[[[]]]]]]]]]]]]  # fmt: skip


def json_value(draw):
    return copy.deepcopy(draw(st.sampled_from(JSON_VALUES)))  # (the list holds mutable values)


def _set(node, path, value):
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value


@st.composite
def header_mutations(draw) -> tuple[str, bytes]:
    name = draw(st.sampled_from(sorted(SEEDS)))
    header, arrays = split_state(SEEDS[name])
    for _ in range(draw(st.integers(1, 3))):
        paths = [p for p in json_paths(header) if p]
        path = draw(st.sampled_from(paths)) if paths else ()
        how = draw(st.sampled_from(["set", "set", "set", "drop", "add", "number"]))
        if not path:
            header = json_value(draw)
            break
        parent = header
        for key in path[:-1]:
            parent = parent[key]
        if how == "set":
            _set(header, path, json_value(draw))
        elif how == "drop":
            if isinstance(parent, dict):
                del parent[path[-1]]
            else:
                parent.pop(path[-1])
        elif how == "add":
            if isinstance(parent, dict):
                parent[draw(st.sampled_from(["extra", "a", "K", "x", "t", "y[0]", "nope", "header"]))] = json_value(draw)
            else:
                parent.append(json_value(draw))
        else:
            value = draw(st.sampled_from(interesting_ints()))
            _set(header, path, value)
    text = json.dumps(header, allow_nan=True).encode()
    if draw(st.integers(0, 19)) == 0:
        text = draw(st.sampled_from([b"\xff\xfe", b"[" * 50000 + b"]" * 50000, text[: len(text) // 2], b"", b"null"]))
    return name, join_state(text, arrays)


@st.composite
def array_mutations(draw) -> tuple[str, bytes]:
    name = draw(st.sampled_from(sorted(SEEDS)))
    header, arrays = split_state(SEEDS[name])
    key = draw(st.sampled_from(sorted(arrays))) if arrays else "a0"
    how = draw(st.sampled_from(["replace", "drop", "rename", "add", "npy-header"]))
    members = None
    if how == "replace" or not arrays:
        arrays[key] = draw(st.sampled_from([np.zeros(0, np.uint32), np.ones((3, 2), np.uint32), np.ones(2, np.uint16),
                                            np.ones(2, np.float32), np.array(7, np.uint32), np.ones((1, 1, 1), np.uint8),
                                            np.ones(2, np.uint64), np.asfortranarray(np.ones((2, 3), np.uint32)),
                                            np.ones(4, np.uint16)]))  # fmt: skip
    elif how == "drop":
        del arrays[key]
    elif how == "rename":
        arrays[draw(st.sampled_from(["b0", "a99", "header2", "a0"]))] = arrays.pop(key)
    elif how == "add":
        arrays[draw(st.sampled_from(["extra", "a99", "aa"]))] = np.ones(3, np.uint32)
    else:
        members = {f"{k}.npy": npy_bytes(v) for k, v in arrays.items()}
        header_npy = io.BytesIO()
        np.save(header_npy, np.frombuffer(json.dumps(header).encode(), np.uint8))
        members["header.npy"] = header_npy.getvalue()
        members[f"{key}.npy"] = npy_bytes(np.ones(2, np.uint32), draw(st.sampled_from(NPY_HEADERS)))
    if members is None:
        return name, join_state(json.dumps(header).encode(), arrays)
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", draw(st.sampled_from([zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED]))) as archive:
        for member, data in members.items():
            archive.writestr(member, data)
    return name, out.getvalue()


state_files = st.one_of(header_mutations(), header_mutations(), array_mutations(), byte_mutations(SEEDS))


def snapshot(exe: oi.Executor) -> dict:
    out = {"steps": exe.steps}
    for name in exe.bound.decls:
        for how in ("fetch", "state", "table_sizes"):
            try:
                value = getattr(exe, how)(name)
            except oi.OiError as e:
                value = f"{type(e).__name__}: {e}"
            if isinstance(value, np.ndarray):
                value = (value.dtype.str, value.shape, value.tobytes())
            out[f"{how}({name})"] = value
    return out


def check_load(device: str, data: bytes, target: str) -> None:
    exe = executor(device, 2)
    before = snapshot(exe)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "state.oistate"
        path.write_bytes(data)
        _, error = call(f"load_state ({device})", exe.load_state, path, expect=oi.StateError)
        if error is not None:
            count(target, f"{device}: refused")
            after = snapshot(exe)
            if after != before:
                changed = sorted(k for k in before if before[k] != after.get(k))
                raise Bug(f"load_state ({device}) failed with {error} but changed the executor: {changed}",
                          AssertionError(f"changed: {changed}"))  # fmt: skip
            return
        count(target, f"{device}: loaded")
        snapshot(exe)  # every read-out works on what was loaded
        exe.insert(x=np.float32([1.0, 2.0]))
        _, error = call(f"step after load_state ({device})", exe.step)
        count(target, f"{device}: step after load {'ok' if error is None else type(error).__name__}")
        again = Path(tmp) / "again.oistate"
        _, error = call(f"save_state after load_state ({device})", exe.save_state, again)
        if error is None:
            call(f"load_state of a re-saved state ({device})", executor(device, 0).load_state, again)


@fuzz_settings(250)
@given(state_files, st.booleans())
def test_mutated_state_files(case, on_cpu: bool) -> None:
    name, data = case
    device = "cpu" if on_cpu and CPU.take() else "reference"
    with outcome("checkpoints", (device, name, data)):
        check_load(device, data, "checkpoints")


@pytest.mark.parametrize("device", ["reference", "cpu"])
def test_the_seeds_load(device: str) -> None:
    for data in SEEDS.values():
        check_load(device, data, "seeds")
