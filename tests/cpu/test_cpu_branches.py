"""`branch` on device="cpu": the target blocks are inlined into an scf.if; both devices agree."""

from __future__ import annotations

import numpy as np

import oi_compiler as oi


def _pair(src: str, tensors=None):
    graph = oi.parse_graph(src, "b.oi")
    model = oi.Model(sizevars={"D": 2}, tensors=tensors or {})
    return [oi.Simulator(model, graph, device=d).make_executor() for d in ("reference", "cpu")]


def _run(exes, steps: list[dict], names: list[str]) -> None:
    for n, values in enumerate(steps):
        outcomes = []
        for exe in exes:
            exe.insert(**values)
            try:
                exe.step()
                outcomes.append(None)
            except oi.OiError as e:
                outcomes.append((type(e), str(e)))
        assert outcomes[0] == outcomes[1], (n, outcomes)
        for name in names:
            a, b = exes[0].fetch(name), exes[1].fetch(name)
            assert a.shape == b.shape and a.dtype == b.dtype, (n, name)
            np.testing.assert_allclose(b, a, rtol=1e-6, err_msg=f"step {n}: {name}")
        for name in exes[0].bound.persistent_names():
            np.testing.assert_array_equal(exes[1].state(name), exes[0].state(name))
            assert exes[1].table_sizes(name) == exes[0].table_sizes(name)


TABLE_BRANCH = """
dynamic { c: i32; x: f32[2]; }
volatile { y: f32[2]; z: f32[2]; r: f32[4, 2]; s: f32[2]; }
persistent { t: i32 @init(0); K(i): f32[2] @table @fixed(i = 3); }
block entry {
    op add(x, x) >> y;
    branch c grow shrink;
    op add(y, x) >> z;
    cache.increment t;
}
block grow {
    cache.write y >> K[t];
    cache.read K[0..] >> r;
    op sum_axis(r, axes=[0]) >> s;
    return;
}
block shrink {
    op mul(y, y) >> y;
}
"""


def test_branch_writes_reads_and_fails_like_the_reference() -> None:
    exes = _pair(TABLE_BRANCH)
    steps = [{"c": np.int32(c), "x": np.full(2, n + 1, np.float32)} for n, c in enumerate([1, 0, 1, 1, 0, 1, 1])]
    _run(exes, steps, ["y", "z", "s", "r"])
    assert exes[1].native.plan.vars["r"].kind == "view"  # read and used inside the block


def test_nested_branches_in_a_loop_and_an_unconditional_branch() -> None:
    src = """
    dynamic { c: i32; d: f32; x: f32[2]; }
    volatile { y: f32[2]; }
    persistent { n: i32 @init(0); H(t): f32[2] @table; }
    block entry {
        loop layers (l in 0..3) {
            branch c outer other;
        }
        branch tail;
    }
    block outer {
        branch d inner other;
        cache.write x >> H[n];
    }
    block inner { op add(x, x) >> y; cache.increment n; }
    block other { op sub(x, x) >> y; }
    block tail { op mul(y, x) >> y; }
    """
    exes = _pair(src)
    steps = [
        {"c": np.int32(c), "d": np.float32(d), "x": np.arange(2, dtype=np.float32) + n}
        for n, (c, d) in enumerate([(1, 1.0), (1, 0.0), (0, 1.0), (1, float("nan")), (2, -0.0)])
    ]
    _run(exes, steps, ["y"])


def test_branch_on_a_persistent_scalar() -> None:
    src = """
    dynamic { x: f32[2]; }
    volatile { y: f32[2]; }
    persistent { on: bool @init(true); }
    block entry {
        branch on make skip;
        op add(y, x) >> y;
    }
    block make { op add(x, x) >> y; cache.reset on; }
    block skip { op sub(y, x) >> y; }
    """
    exes = _pair(src)
    _run(exes, [{"x": np.ones(2, np.float32)}] * 3, ["y"])


def test_a_failed_step_inside_a_branch_rolls_back() -> None:
    src = """
    dynamic { c: bool; x: f32[2]; }
    persistent { t: i32 @init(0); K(i): f32[2] @table @fixed(i = 2); }
    block entry {
        cache.write x >> K[t];
        branch c twice once;
    }
    block twice { cache.increment t; cache.write x >> K[t]; cache.increment t; }
    block once { cache.increment t; }
    """
    exes = _pair(src)
    steps = [{"c": np.bool_(c), "x": np.full(2, n, np.float32)} for n, c in enumerate([False, True, False, True])]
    _run(exes, steps, [])


def test_recursion_fails_as_on_the_reference() -> None:
    """Once refused: a block branching back into itself is inlined up to the reference's depth
    limit, where both raise its error (tests/cpu/test_cpu_constructs.py::test_recursive_branch)."""
    src = "dynamic { c: bool; }\nblock entry { branch c b a; }\nblock a { branch c b a; }\nblock b { }\n"
    _run(_pair(src), [{"c": np.bool_(c)} for c in (True, False, True)], [])
