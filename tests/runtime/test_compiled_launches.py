"""Op launches from compiled code (runtime/compiled_launches.py, op_launches.OpLauncher).

With `OI_CUDA_COMPILE_AFTER=1` every kernel set and copy gets a fast function after its first
call; in the emulation those run the same `cuLaunchKernel` parameter blocks a GPU would, through
trampolines. The results must stay those of `device="cpu"` while the Python path stops being
called; a call the fast function does not serve (another block size of attention's keys) goes
through Python and is right too.
"""

from __future__ import annotations

import numpy as np
import pytest

import oi_compiler as oi
from oi_compiler.errors import ExecutionError
from oi_compiler.loopnest.op_kernels import kernel_size_ranges, kernel_sizes
from tests.device_check import device_check

ATTEND = """
dynamic { x: f32[2, 8]; }
constant { Wk: f32[8, 8]; Wv: f32[8, 8]; }
volatile { k: f32[2, 8]; v: f32[2, 8]; kh: f32[1, 2, 8]; vh: f32[1, 2, 8]; q: f32[2, 8];
           keys: f32[T, 2, 8]; values: f32[T, 2, 8]; out: f32[2, 8]; }
persistent {
    t: i32 @init(0);
    n: i32 @init(0);
    K(pos): f32[2, 8] @table;
    V(pos): f32[2, 8] @table;
}
block entry {
    op matmul(x, Wk) >> k;
    op matmul(x, Wv) >> v;
    op reshape(k, shape=[1, 2, 8]) >> kh;
    op reshape(v, shape=[1, 2, 8]) >> vh;
    cache.write k >> K[t];
    cache.write v >> V[t];
    cache.increment t;
    cache.read K[0..t] >> keys;
    cache.read V[0..t] >> values;
    op attention(x, keys, values) >> out;
    op add(out, x) >> q;
    op mul(q, q) >> q;
    cache.increment n;
    return;
}
"""


@pytest.fixture
def compiled(monkeypatch):
    monkeypatch.setenv("OI_GPU_EMULATE", "1")
    monkeypatch.setenv("OI_CUDA_COMPILE_AFTER", "1")


def _executors(text: str = ATTEND):
    rng = np.random.default_rng(0)
    tensors = {n: rng.standard_normal((8, 8)).astype(np.float32) for n in ("Wk", "Wv")}
    model = oi.Model(sizevars={"T": 4}, tensors=tensors)
    graph = oi.parse_graph(text)
    return {d: oi.Simulator(model, graph, device=d).make_executor() for d in ("cpu", "cuda")}


def test_compiled_launches_match_cpu_across_attention_block_sizes(compiled) -> None:
    exes = _executors()
    cuda = exes["cuda"]
    rng = np.random.default_rng(1)
    python_calls = []
    for step in range(4):  # keys 1, 2, 3, 4: attention's block sizes 1, 2, 4, 4
        x = rng.standard_normal((2, 8)).astype(np.float32)
        for exe in exes.values():
            exe.insert(x=x).step()
        for name in ("k", "keys", "out", "q"):
            np.testing.assert_allclose(cuda.fetch(name), exes["cpu"].fetch(name), rtol=2e-6, atol=1e-6,
                                       err_msg=f"{name} at step {step}")  # fmt: skip
        python_calls.append(cuda.launcher.python_counts.op_calls)
    counts = cuda.launch_counts
    assert counts.op_calls == 4 * 7 and counts.copies > 0
    # from the second step on, Python sees only attention's calls with a new block size (keys 2, 3);
    # `op mul(q, q) >> q` runs compiled too, in place: an elementwise kernel whose threads read q
    # only at the element they write (`OpKernel.in_place`), so nothing is staged
    assert np.diff(python_calls).tolist() == [1, 1, 0], python_calls
    assert counts.staged == 0
    np.testing.assert_array_equal(cuda.state("K"), exes["cpu"].state("K"))


def test_fast_functions_are_made_once_per_kernel_set(compiled) -> None:
    cuda = _executors()["cuda"]
    for _ in range(3):
        cuda.insert(x=np.ones((2, 8), np.float32)).step()
    made = {key: p.fast for key, p in cuda.launcher.prepared.items()}
    assert sum(1 for f in made.values() if f) >= 4  # the matmul, reshape, and attention sets
    for _ in range(3):
        cuda.insert(x=np.ones((2, 8), np.float32)).step()
    assert all(cuda.launcher.prepared[key].fast == f for key, f in made.items() if key in cuda.launcher.prepared)


def test_no_fast_functions_by_default_in_short_runs(monkeypatch) -> None:
    monkeypatch.setenv("OI_GPU_EMULATE", "1")
    monkeypatch.delenv("OI_CUDA_COMPILE_AFTER", raising=False)
    cuda = _executors()["cuda"]
    for _ in range(3):
        cuda.insert(x=np.ones((2, 8), np.float32)).step()
    counts = cuda.launch_counts
    assert counts.op_calls == cuda.launcher.python_counts.op_calls == 21  # (copies are called 8 times a step)
    assert not any(p.fast for p in cuda.launcher.prepared.values())


@pytest.mark.parametrize("value", ["x", "-1"])
def test_a_bad_compile_after_is_an_oi_error(monkeypatch, value) -> None:
    monkeypatch.setenv("OI_GPU_EMULATE", "1")
    monkeypatch.setenv("OI_CUDA_COMPILE_AFTER", value)
    with pytest.raises(ExecutionError, match="OI_CUDA_COMPILE_AFTER"):
        _executors()


def test_kernel_size_ranges_cover_exactly_the_same_kernel_sizes() -> None:
    for keys in range(0, 300):
        shapes = [(4, 8), (keys, 2, 8), (keys, 2, 8)]
        low, high = kernel_size_ranges("attention", shapes)[1][0]
        for other in range(0, 400):
            same = kernel_sizes("attention", shapes) == kernel_sizes("attention", [(4, 8), (other, 2, 8), (other, 2, 8)])
            assert same == (low <= other and (high < 0 or other <= high)), (keys, other)
    assert kernel_size_ranges("add", [(2, 3), (3,)]) == (((2, 2), (3, 3)), ((3, 3),))


TWO_SIZES = """
volatile { ka: f32[T, 1, 4]; kb: f32[T, 1, 4]; s1: f32[1, 4]; s2: f32[1, 4]; }
persistent {
    a: i32 @init(2);
    b: i32 @init(3);
    K(pos): f32[1, 4] @table @fixed(pos = 8);
    V(pos): f32[1, 4] @table @fixed(pos = 8);
}
block entry {
    cache.read K[0..a] >> ka;
    cache.read V[0..b] >> kb;
    op sum_axis(ka, axes=[0]) >> s1;
    op sum_axis(kb, axes=[0]) >> s2;
    return;
}
"""


def test_one_kernel_function_at_two_sizes_keeps_both_fast_functions(compiled) -> None:
    """`sum_axis` is one kernel function called on 2 and on 3 keys a step: each size's fast
    function has a slot of its own (before, each call put its own in place of the other's)."""
    graph, model = oi.parse_graph(TWO_SIZES.replace("@fixed", "@init(0.5) @fixed")), oi.Model(sizevars={"T": 8})
    cpu, cuda = (oi.Simulator(model, graph, device=d).make_executor() for d in ("cpu", "cuda"))
    calls = []
    for _ in range(4):
        cpu.step()
        cuda.step()
        calls.append(cuda.launcher.python_counts.op_calls)
        for name in ("s1", "s2"):
            np.testing.assert_array_equal(cuda.fetch(name), cpu.fetch(name))
    assert np.diff(calls).tolist() == [0, 0, 0], calls
    assert cuda.fetch("s2").tolist() == [[1.5] * 4]  # three unwritten entries of @init 0.5


def test_an_interrupt_in_a_launch_is_raised_as_it_is(monkeypatch) -> None:
    monkeypatch.setenv("OI_GPU_EMULATE", "1")
    monkeypatch.setenv("OI_CUDA_COMPILE_AFTER", "0")
    from oi_compiler.runtime.op_launches import EmulatedKernels

    cuda = _executors()["cuda"]

    def interrupted(self, prepared, launch, operands):
        raise KeyboardInterrupt

    monkeypatch.setattr(EmulatedKernels, "run", interrupted)
    with pytest.raises(KeyboardInterrupt):
        cuda.insert(x=np.ones((2, 8), np.float32)).step()


def test_the_driver_runner_packs_each_parameter_slot(monkeypatch) -> None:
    """`DriverKernels.run` without a GPU: the parameter block a bf16 buffer and an i32 scalar make
    (before, the bf16 buffer was refused: its numpy type string is a void type)."""
    import ml_dtypes

    from oi_compiler.runtime import cuda
    from oi_compiler.runtime.device_memory import BufferView
    from oi_compiler.runtime.op_launches import DriverKernels
    from oi_compiler.loopnest.op_kernels import Launch

    launched = []

    class Launcher:
        def launch(self, handle, grid, block, params, shared):
            launched.append((handle, grid, block, params.values(), shared))

    class Function:
        _handle = "handle"
        module = type("Module", (), {"_launcher": Launcher()})()

    buffer = BufferView(1 << 40, 3, (2, 3), (3, 1), np.dtype(ml_dtypes.bfloat16))
    DriverKernels().run(Function(), Launch("k", (4, 1, 1), (32, 1, 1), "m"), [buffer, ("i32", -2)])
    handle, grid, block, values, shared = launched[0]
    assert (handle, grid, block, shared) == ("handle", (4, 1, 1), (32, 1, 1), 0)
    assert values == [(1 << 40) + 6, 0, 2, 3, 3, 1, 2**32 - 2]
    assert cuda.scalar_code("i32") == "I"


def test_a_launch_failing_after_others_fails_the_op_without_a_retry(compiled, monkeypatch) -> None:
    """A fast function whose second launch fails has run the first already (over the output, which
    may be a staged input's): the op fails at its statement, no retry through Python, and the
    undo log puts the persistent state back."""
    import ctypes

    from oi_compiler.runtime import compiled_launches
    from oi_compiler.runtime.op_launches import EmulatedKernels

    signature = ctypes.CFUNCTYPE(ctypes.c_int32, ctypes.c_void_p, *[ctypes.c_uint32] * 7, ctypes.c_void_p,
                                 ctypes.c_void_p, ctypes.c_void_p)  # fmt: skip  (cuLaunchKernel's)
    real = signature(compiled_launches.emulated_launch())
    calls = {"n": 0, "fail": False}

    def launch(*args):
        calls["n"] += 1
        if calls["fail"] and calls["n"] == 2:  # the matmul's contraction, after its zeroing launch
            return 719  # CUDA_ERROR_LAUNCH_FAILED
        return real(*args)

    fake = signature(launch)
    compiled = EmulatedKernels.compiled
    monkeypatch.setattr(EmulatedKernels, "compiled",
                        lambda self, functions: (ctypes.cast(fake, ctypes.c_void_p).value, compiled(self, functions)[1]))
    cuda = _executors()["cuda"]
    x = np.ones((2, 8), np.float32)
    for _ in range(2):
        cuda.insert(x=x).step()
    assert cuda.launch_counts.compiled_calls > 0
    before, python_calls = cuda.state("K").copy(), cuda.launcher.python_counts.op_calls
    calls.update(n=0, fail=True)
    with pytest.raises(ExecutionError, match="op matmul: its GPU kernels failed") as info:
        cuda.insert(x=2 * x).step()
    assert info.value.loc is not None and "matmul(x,Wk)" in str(info.value.node)
    assert cuda.launcher.python_counts.op_calls == python_calls  # not retried through Python
    np.testing.assert_array_equal(cuda.state("K"), before)
    assert int(cuda.state("t")) == 2
    calls["fail"] = False
    cuda.insert(x=x).step()
    assert int(cuda.state("t")) == 3


def test_fast_functions_go_with_their_executor(compiled) -> None:
    """The native code of an executor's fast functions is freed with it; only what every executor
    shares (dispatchers, trampolines) stays for the process (before, every fast function did)."""
    import gc
    import weakref

    from oi_compiler.runtime import compiled_launches

    graph, model = oi.parse_graph(TWO_SIZES), oi.Model(sizevars={"T": 8})

    def run():
        cuda = oi.Simulator(model, graph, device="cuda").make_executor()
        for _ in range(3):
            cuda.step()
        return cuda

    first = run()
    assert first.launcher._code
    code = weakref.ref(first.launcher._code[0])
    shared = len(compiled_launches._loaded)
    run()
    assert len(compiled_launches._loaded) == shared  # the same kernels: nothing new to share
    del first
    gc.collect()
    assert code() is None


@pytest.mark.parametrize("compile_after", ["0", "1"])
def test_elementwise_ops_run_in_place_and_the_others_on_a_staged_copy(monkeypatch, compile_after) -> None:
    """`op mul(y, x) >> y`, `silu`, `add(y, y) >> y` and rope take y as it is (an elementwise kernel
    reads it only at the elements each thread writes: rope's thread both of a pair); softmax (a row
    reduction, then a pass over the row) reads y from a copy made before it writes it."""
    monkeypatch.setenv("OI_GPU_EMULATE", "1")
    monkeypatch.setenv("OI_CUDA_COMPILE_AFTER", compile_after)
    graph = oi.parse_graph(device_check().IN_PLACE)
    cpu, cuda = (oi.Simulator(oi.Model(), graph, device=d).make_executor() for d in ("cpu", "cuda"))
    rng = np.random.default_rng(5)
    for step in range(4):
        x = rng.standard_normal((2, 8)).astype(np.float32)
        for exe in (cpu, cuda):
            exe.insert(x=x).step()
        np.testing.assert_allclose(cuda.fetch("y"), cpu.fetch("y"), rtol=2e-6, atol=1e-6, err_msg=f"step {step}")
    in_place = {p.kernel.op: p.kernel.in_place for p in cuda.launcher.prepared.values()}
    assert in_place == {"add": frozenset({0, 1}), "mul": frozenset({0, 1}), "silu": frozenset({0}),
                        "softmax": frozenset(), "rope": frozenset({0})}  # fmt: skip
    # through Python: softmax's y staged each call; compiled: on its first call only (the fast
    # function copies to its own stage buffer, which `staged` does not count)
    assert cuda.launch_counts.staged == (4 if compile_after == "0" else 1)
