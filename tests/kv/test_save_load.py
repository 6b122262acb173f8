"""`cache.save` / `cache.load` (vortex_torch's Save and Load): a load sees the previous step's
field whatever the order of the two in the step; a save is a side effect no pass removes."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

import oi_compiler as oi

DEVICES = ["reference", "cpu"]
#: the field's storage: dense, or pages of 2 rows (vortex's paged field; the same results)
STORAGES = pytest.mark.parametrize("storage", ["", " @paged(page = 2)"], ids=["dense", "paged"])


def field(text: str, storage: str) -> str:
    return text.replace("F(s): f32[2, 3] @table;", f"F(s): f32[2, 3] @table{storage};")

SAVE_THEN_LOAD = """graph! {
    dynamic { x: f32[S, 2, 3]; }
    volatile { y: f32[P, 2, 3]; z: f32[S, 2, 3]; one: f32[1]; }
    persistent { F(s): f32[2, 3] @table; t: i32 @init(0); K(i): f32[1] @table @fixed(i = 2); }
    block entry {
        op mul(x, x) >> z;
        cache.save z >> F;
        cache.save x >> F;
        cache.load F >> y;
        cache.increment t;
        cache.write one >> K[t];
        return;
    }
}"""

LOAD_THEN_SAVE = """graph! {
    dynamic { x: f32[S, 2, 3]; }
    volatile { y: f32[P, 2, 3]; }
    persistent { F(s): f32[2, 3] @table; }
    block entry {
        cache.load F >> y;
        cache.save x >> F;
        return;
    }
}"""


def _rows(step: int, count: int) -> np.ndarray:
    return (np.arange(count * 6, dtype=np.float32).reshape(count, 2, 3) + 100 * step)


@STORAGES
@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("text", [SAVE_THEN_LOAD.replace("@fixed(i = 2)", "@fixed(i = 9)"), LOAD_THEN_SAVE],
                         ids=["save-then-load", "load-then-save"])
def test_load_sees_the_previous_step(device, text, storage, tmp_path):
    graph = oi.parse_graph(field(text, storage))
    exe = oi.Simulator(oi.Model(sizevars={"S": 3, "P": 0}), graph, device=device).make_executor()
    saved: np.ndarray = np.zeros((0, 2, 3), np.float32)
    for step in range(4):
        if step == 2:  # a checkpoint in between: the field is state like any table
            exe.save_state(tmp_path / "s.oistate")
            exe = oi.Simulator(oi.Model(sizevars={"S": 3, "P": 0}), graph, device=device).make_executor()
            exe.load_state(tmp_path / "s.oistate")
        exe.insert(x=_rows(step, 3))
        exe.step()
        np.testing.assert_array_equal(exe.fetch("y"), saved)  # the last step's, not this one's
        saved = _rows(step, 3)  # the step's last save wins
        np.testing.assert_array_equal(exe.state("F"), saved)


RAGGED = """graph! {
    dynamic { row: f32[2, 3]; }
    volatile { x: f32[T, 2, 3]; y: f32[P, 2, 3]; }
    persistent { R(s): f32[2, 3] @table; t: i64 @init(0); F(s): f32[2, 3] @table; }
    block entry {
        cache.write row >> R[t];
        cache.increment t;
        cache.read R[1..t] >> x;
        cache.save x >> F;
        cache.load F >> y;
        return;
    }
}"""


@STORAGES
@pytest.mark.parametrize("device", DEVICES)
def test_ragged_pages(device, storage):
    """S changes every step (0, 1, 2, ... pages): the field's size follows the last save."""
    graph = oi.parse_graph(field(RAGGED, storage))
    exe = oi.Simulator(oi.Model(sizevars={"T": 0, "P": 0}), graph, device=device).make_executor()
    rows = [np.full((2, 3), k, np.float32) for k in range(5)]
    for step, row in enumerate(rows):
        exe.insert(row=row)
        exe.step()
        previous = np.array(rows[1:step], np.float32).reshape(-1, 2, 3)
        np.testing.assert_array_equal(exe.fetch("y"), previous)
        np.testing.assert_array_equal(exe.state("F"), np.array(rows[1 : step + 1], np.float32).reshape(-1, 2, 3))


@STORAGES
@pytest.mark.parametrize("device", DEVICES)
def test_a_failed_step_drops_its_save(device, storage):
    graph = oi.parse_graph(field(SAVE_THEN_LOAD, storage))
    exe = oi.Simulator(oi.Model(sizevars={"S": 2, "P": 0}), graph, device=device).make_executor()
    exe.insert(x=_rows(0, 2))
    exe.step()  # t = 1: K[1]
    exe.insert(x=_rows(1, 2))  # t = 2: K[2] is past @fixed(i = 2), after the saves: the step fails
    with pytest.raises(oi.CacheError, match="exceeds fixed size 2"):
        exe.step()
    np.testing.assert_array_equal(exe.state("F"), _rows(0, 2))
    assert exe.state("t") == 1


@pytest.mark.parametrize("passes", ["--dce", "--canonicalize", "--cse", "--canonicalize --cse --dce"])
def test_no_pass_removes_an_unread_save(passes, tmp_path):
    text = """graph! {
        dynamic { x: f32[2, 2, 3]; }
        persistent { F(s): f32[2, 3] @table; }
        block entry { cache.save x >> F; return; }
    }"""
    (tmp_path / "g.oi").write_text(text)
    out = subprocess.run([sys.executable, "-m", "oi_compiler.tools.oi_opt", str(tmp_path / "g.oi"), *passes.split()],
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert "oi.cache.save @x -> @F" in out.stdout


VERIFY_ERRORS = [
    ("dynamic { x: f32[2, 3]; } persistent { F(s): f32[2, 3] @table; }", "cache.save x >> F;",
     "expected 3D x [S, D0, D1], got [2, 3]"),
    ("dynamic { x: f32[4, 5, 3]; } persistent { F(s): f32[2, 3] @table; }", "cache.save x >> F;",
     "expected matching D0: x.shape[1]=5 vs o.shape[1]=2"),
    ("dynamic { x: f32[4, 2, 7]; } persistent { F(s): f32[2, 3] @table; }", "cache.save x >> F;",
     "expected matching D1: x.shape[2]=7 vs o.shape[2]=3"),
    ("persistent { G(s): f32[2, 3] @table; F(s): f32[2, 3] @table; }", "cache.save G >> F;",
     "no implementation for x_fmt=PAGED"),
    ("dynamic { x: f32[4, 2, 3]; } persistent { F(s): f32[3] @table; }", "cache.save x >> F;",
     "expected 3D o [S, D0, D1], got [S, 3]"),
    ("dynamic { x: f32[4, 2, 3]; } persistent { F(s, t): f32[2, 3] @table; }", "cache.save x >> F;",
     "expects a field: a @table with one index"),
    ("dynamic { x: f32[4, 2, 3]; } persistent { F(s): f32[2, 3] @table @fixed(s = 4); }", "cache.save x >> F;",
     "has a @fixed index"),
    ("dynamic { x: f32[4, 2, 3]; } persistent { F(s): f32[2, 3] @table; }",
     "cache.save x >> F; cache.reset F[0];", "only cache.save and cache.load may name it"),
    ("dynamic { x: f32[4, 2, 3]; } volatile { y: f32[4, 2, 3]; } persistent { F(s): f32[2, 3] @table; }",
     "cache.save x >> F; cache.read F[..] >> y;", "only cache.save and cache.load may name it"),
    ("dynamic { x: f64[4, 2, 3]; } persistent { F(s): f32[2, 3] @table; }", "cache.save x >> F;",
     "dtype mismatch"),
    ("dynamic { y: f32[4, 2, 3]; } persistent { F(s): f32[2, 3] @table; q: f32[4, 2, 3]; }",
     "cache.load F >> q;", "must be mutable non-persistent memory"),
]


@pytest.mark.parametrize("decls, body, message", VERIFY_ERRORS, ids=[m for _, _, m in VERIFY_ERRORS])
def test_verifier(decls, body, message):
    text = f"graph! {{ {decls} block entry {{ {body} return; }} }}"
    with pytest.raises(oi.VerifyError, match=message.replace("[", r"\[").replace("]", r"\]")) as info:
        oi.parse_graph(text, filename="g.oi")
    assert info.value.loc is not None and info.value.loc.filename == "g.oi"


def test_trace_names_the_statements():
    graph = oi.parse_graph(LOAD_THEN_SAVE)
    exe = oi.Simulator(oi.Model(sizevars={"S": 1, "P": 0}), graph).with_trace().make_executor()
    exe.insert(x=_rows(0, 1))
    exe.step()
    kinds = [e["kind"] for e in exe.trace()]
    assert "CacheLoad" in kinds and "CacheSave" in kinds


ASYNC = """graph! {
    dynamic { x: f32[2, 2, 3]; }
    volatile { y: f32[P, 2, 3]; }
    persistent { F(s): f32[2, 3] @table; }
    block entry {
        yield x;
        cache.load F >> y;
        await x;
        return;
    }
    block side {
        cache.save x >> F;
        yield x;
    }
}"""


@pytest.mark.parametrize("device", DEVICES)
def test_save_in_an_async_block(device):
    exe = oi.Simulator(oi.Model(sizevars={"P": 0}), oi.parse_graph(ASYNC), device=device).make_executor()
    for step in range(3):
        exe.insert(x=np.full((2, 2, 3), step, np.float32))
        exe.step()
        np.testing.assert_array_equal(exe.fetch("y"), np.full((2 if step else 0, 2, 3), max(step - 1, 0), np.float32))
        np.testing.assert_array_equal(exe.state("F"), np.full((2, 2, 3), step, np.float32))
