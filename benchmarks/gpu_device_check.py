"""`device="cuda"` on a real GPU: the checks the emulated test suite makes, in one script without pytest.

The lent GPU machine has no pytest and no package registry; with the bundle of the compiler's
dependencies (benchmarks/gpu_bundle.py) this runs there as

    python benchmarks/gpu_bundle.py run benchmarks/gpu_device_check.py

and here, against the CPU emulation, as `OI_GPU_EMULATE=1 python benchmarks/gpu_device_check.py`
(tests/e2e/test_gpu_device_check.py runs it so, with `--quick`: all but the tiny decoder). Each check runs `device="cuda"` beside
`device="cpu"` and compares, printing one line per check and what the launcher did:

- kv_decode: steps bit for bit against cpu, with launches through Python only
  (OI_CUDA_COMPILE_AFTER=0) and from compiled code (=1), weights and the KV tables in device memory;
- tiny_decoder: 24 greedy steps, logits against cpu, compiled launches, attention's block sizes
  changing as the context grows;
- a reset: a table `cache.reset` refills on the device;
- rollback: a step failing after its cache writes leaves the device tables as they were;
- checkpoints: saved on cuda, loaded on cpu, and back;
- ragged_decode: the paged example's scenario (pools in device memory, forks, pops, resets);
- ops in place: elementwise ops and rope writing over their input, softmax through a copy.

Exit status 0 when every check passes, 1 when one fails, 2 when `device="cuda"` cannot run.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "examples"))

import oi_compiler as oi  # noqa: E402

KV_DECODE = ROOT / "examples" / "kv_decode.oi"
RESET = """
dynamic { x: f32[1, D]; }
volatile { keys: f32[T, 1, D]; }
persistent {
    t: i32 @init(0);
    K(pos): f32[1, D] @table @init(1.5);
}
block entry {
    cache.write x >> K[t];
    cache.increment t;
    cache.read K[0..t] >> keys;
    cache.reset K[0];
    return;
}
"""
IN_PLACE = """
dynamic { x: f32[2, 8]; }
volatile { y: f32[2, 8]; }
persistent { n: i32 @init(0); }
block entry {
    op add(x, x) >> y;
    op mul(y, x) >> y;
    op silu(y) >> y;
    op softmax(y, axis=-1) >> y;
    op rope(y, position=n, theta=10000.0) >> y;
    op add(y, y) >> y;
    cache.increment n;
    return;
}
"""
FIXED = """
dynamic { x: f32[2, 8]; }
volatile { y: f32[2, 8]; s: f32[2]; }
persistent {
    n: i32 @init(0);
    K(t): f32[2] @table @fixed(t = 3);
}
block entry {
    op softmax(x, axis=-1) >> y;
    op sum_axis(y, axes=[1]) >> s;
    cache.write s >> K[n];
    cache.increment n;
    return;
}
"""


def _pair(graph, model, compile_after: str) -> tuple[oi.Executor, oi.Executor]:
    os.environ["OI_CUDA_COMPILE_AFTER"] = compile_after
    graph = oi.parse_graph(graph) if isinstance(graph, str) else graph
    return (oi.Simulator(model, graph, device="cpu").make_executor(),
            oi.Simulator(model, graph, device="cuda").make_executor())  # fmt: skip


def _kv_model(d: int = 64) -> oi.Model:
    rng = np.random.default_rng(0)
    tensors = {n: (rng.standard_normal((d, d)) / np.sqrt(d)).astype(np.float32) for n in ("Wq", "Wk", "Wv")}
    return oi.Model(sizevars={"D": d, "T": 8}, tensors=tensors)


def check_kv_decode(compile_after: str) -> str:
    graph = oi.parse_graph(KV_DECODE.read_text(), str(KV_DECODE))
    cpu, cuda = _pair(graph, _kv_model(), compile_after)
    rng = np.random.default_rng(1)
    for _ in range(12):
        x = rng.standard_normal((1, 64)).astype(np.float32)
        for exe in (cpu, cuda):
            exe.insert(x=x).step()
        for name in ("q", "k", "v", "keys", "values"):
            np.testing.assert_array_equal(cuda.fetch(name), cpu.fetch(name), err_msg=name)
    np.testing.assert_array_equal(cuda.state("K"), cpu.state("K"))
    placed = sorted(n for n, v in cuda.native.plan.vars.items() if v.device)
    assert {"K", "V", "Wq", "x"} <= set(placed), placed
    counts = cuda.launch_counts
    if compile_after == "1":
        assert counts.compiled_calls > 0, counts
    return f"{counts}; on the device: {', '.join(placed)}"


def check_tiny_decoder() -> str:
    import tiny_decoder as td

    graph = oi.parse_graph((ROOT / "examples" / "tiny_decoder.oi").read_text(), "tiny_decoder.oi")
    cpu, cuda = _pair(graph, td.make_model(0), "1")
    token, worst, times = 3, 0.0, []
    for _ in range(24):
        expected = td.graph_step(cpu, token)
        began = time.perf_counter()
        got = td.graph_step(cuda, token)
        times.append(time.perf_counter() - began)
        worst = max(worst, float(np.max(np.abs(got - expected))))
        np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-5)
        token = int(np.argmax(expected))
    counts = cuda.launch_counts
    return (f"max |logits - cpu| {worst:.1e}; median step {np.median(times[-8:]) * 1e6:.0f} us; "
            f"{counts.op_calls / 24:.0f} op calls, {counts.launches / 24:.0f} launches a step; {counts}")  # fmt: skip


def check_reset() -> str:
    cpu, cuda = _pair(RESET, oi.Model(sizevars={"D": 4, "T": 4}), "1")
    assert cuda.native.plan.vars["K"].device
    rng = np.random.default_rng(2)
    for _ in range(6):
        x = rng.standard_normal((1, 4)).astype(np.float32)
        for exe in (cpu, cuda):
            exe.insert(x=x).step()
        np.testing.assert_array_equal(cuda.fetch("keys"), cpu.fetch("keys"))
    np.testing.assert_array_equal(cuda.state("K"), cpu.state("K"))
    return str(cuda.launch_counts)


def check_rollback() -> str:
    cpu, cuda = _pair(FIXED, oi.Model(), "1")
    x = np.linspace(-1, 1, 16, dtype=np.float32).reshape(2, 8)
    for _ in range(3):
        for exe in (cpu, cuda):
            exe.insert(x=x).step()
    before = cuda.state("K").copy()
    for exe in (cpu, cuda):
        try:
            exe.insert(x=2 * x).step()  # the ops run; the write past @fixed(t = 3) fails
        except oi.CacheError:
            pass
        else:
            raise AssertionError("the fourth write did not fail")
    np.testing.assert_array_equal(cuda.state("K"), before)
    np.testing.assert_array_equal(cuda.state("K"), cpu.state("K"))
    return str(cuda.launch_counts)


def check_checkpoints() -> str:
    graph = oi.parse_graph(KV_DECODE.read_text(), str(KV_DECODE))
    cpu, cuda = _pair(graph, _kv_model(), "1")
    rng = np.random.default_rng(3)
    with tempfile.TemporaryDirectory() as folder:
        for _ in range(3):
            cuda.insert(x=rng.standard_normal((1, 64)).astype(np.float32)).step()
        cuda.save_state(Path(folder) / "cuda.oistate")
        cpu.load_state(Path(folder) / "cuda.oistate")
        x = rng.standard_normal((1, 64)).astype(np.float32)
        for exe in (cpu, cuda):
            exe.insert(x=x).step()
        np.testing.assert_array_equal(cuda.fetch("keys"), cpu.fetch("keys"))
        cpu.save_state(Path(folder) / "cpu.oistate")
        fresh = oi.Simulator(_kv_model(), graph, device="cuda").make_executor()
        fresh.load_state(Path(folder) / "cpu.oistate")
        for exe in (cpu, fresh):
            exe.insert(x=x).step()
        np.testing.assert_array_equal(fresh.fetch("keys"), cpu.fetch("keys"))
    return "cuda -> cpu -> cuda"


def check_ragged_decode() -> str:
    """examples/ragged_decode.py's scenario: paged K and V pools in device memory, forks sharing
    pages (copy on write), pops and masked resets, against its numpy model."""
    import contextlib
    import importlib.util
    import io

    os.environ["OI_CUDA_COMPILE_AFTER"] = "2"
    spec = importlib.util.spec_from_file_location("ragged_decode", ROOT / "examples" / "ragged_decode.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up
    spec.loader.exec_module(module)
    graph = oi.Graph.load(ROOT / "examples" / "ragged_decode.oi")
    exe = oi.Simulator(module.model(), graph, device="cuda").make_executor()
    placed = sorted(name for name in ("K", "V") if exe.native.plan.vars[name].device)
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        status = module.main(["--device", "cuda", "--seed", "3"])
    assert status == 0 and "OK: every step matches the numpy model" in out.getvalue(), out.getvalue()[-2000:]
    return f"{len(out.getvalue().splitlines()) - 1} steps; on the device: {', '.join(placed)}"


def check_in_place() -> str:
    """Ops writing over an input (elementwise, rope: in place; softmax: through a stage copy)."""
    graph = oi.parse_graph(IN_PLACE)
    cpu, cuda = _pair(graph, oi.Model(), "1")
    rng = np.random.default_rng(6)
    for _ in range(4):
        x = rng.standard_normal((2, 8)).astype(np.float32)
        for exe in (cpu, cuda):
            exe.insert(x=x).step()
        np.testing.assert_allclose(cuda.fetch("y"), cpu.fetch("y"), rtol=2e-6, atol=1e-6)
    return str(cuda.launch_counts)


CHECKS: list[tuple[str, Callable[[], str]]] = [
    ("kv_decode, launches through Python", lambda: check_kv_decode("0")),
    ("kv_decode, compiled launches", lambda: check_kv_decode("1")),
    ("tiny_decoder, 24 steps", check_tiny_decoder),
    ("reset on the device", check_reset),
    ("rollback of device tables", check_rollback),
    ("checkpoints across devices", check_checkpoints),
    ("ragged_decode, paged tables", check_ragged_decode),
    ("ops in place", check_in_place),
]


def main(argv: list[str] | None = None) -> int:
    """`--quick`: all but the tiny decoder (what the emulated test runs)."""
    from oi_compiler.runtime import cuda
    from oi_compiler.runtime.gpu_emulation import emulation_requested

    where = "the CPU emulation" if emulation_requested() else None
    if where is None:
        reason = cuda.unavailable_reason()
        if reason is not None:
            print(f"device 'cuda' cannot run here: {reason}")
            return 2
        where = f"{cuda.device_name()} through {cuda.launcher_name()}"
    print(f"device='cuda' on {where}")
    quick = "--quick" in (sys.argv[1:] if argv is None else argv)
    checks = [(name, check) for name, check in CHECKS if not (quick and name.startswith("tiny_decoder"))]
    failed = 0
    for name, check in checks:
        began = time.perf_counter()
        try:
            detail = check()
            status = "ok"
        except Exception as e:  # noqa: BLE001 - every check runs; the status says which failed
            failed += 1
            status, detail = "FAILED", "".join(traceback.format_exception_only(type(e), e)).strip()
            traceback.print_exc()
        print(f"{status:<7}{name:<36}{time.perf_counter() - began:6.1f} s  {detail}", flush=True)
    print("all checks passed" if not failed else f"{failed} of {len(checks)} checks failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
