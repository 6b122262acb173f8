"""examples/tiny_decoder.oi on the devices (reference, cpu; cuda in the GPU emulation, for a few steps)
against examples/tiny_decoder.py's numpy decoder.

Tolerance: logits and cached keys/values are compared with rtol = atol = 1e-5. Both sides
compute in float32 with the same formulas but in a different order (the executor's einsum
attention and fused rope against per-head dot products and an explicit cos/sin table), so
they differ by a few float32 ulps: at most 1.4e-6 on logits of size up to ~4 over 40 steps
for every shape and seed used here (`python examples/tiny_decoder.py` prints the per-step
differences). 1e-5 (plus 1e-5 relative) leaves a margin of ~10x or more for the error to grow
with more steps or layers, yet a modelling mistake (rope pair layout, rope position, kv-head
grouping) moves the logits or the cached keys by 0.3 or more
(`test_comparison_detects_modelling_errors`).
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import oi_compiler as oi

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "tiny_decoder.py"
RTOL = ATOL = 1e-5


def _load_example():
    spec = importlib.util.spec_from_file_location("tiny_decoder_example", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


td = _load_example()

#: Other shapes: one layer with multi-query attention (Hk = 1) and H*Dh != D; three
#: layers with plain multi-head attention (Hk = H).
OTHER_DIMS = [
    dict(L=1, D=24, H=2, Hk=1, Dh=16, F=40, NV=20, T=16),
    dict(L=3, D=16, H=4, Hk=4, Dh=4, F=32, NV=30, T=16),
]


@pytest.fixture(scope="module")
def graph() -> oi.Graph:
    return oi.Graph.load(td.GRAPH)


DEVICES = ["reference", "cpu"]


def _executor(graph: oi.Graph, model: oi.Model, device: str = "reference") -> oi.Executor:
    return oi.Simulator(model, graph, device=device).make_executor()


def _run_and_compare(graph: oi.Graph, seed: int, dims: dict[str, int] | None, steps: int, device: str) -> None:
    """`steps` random tokens through the graph and NumpyDecoder; logits and KV tables checked each step."""
    d = td.full_dims(dims)
    model = td.make_model(seed, d)
    exe, ref = _executor(graph, model, device), td.NumpyDecoder(td.make_weights(seed, d), d)
    tokens = np.random.default_rng(1000 + seed).integers(0, d["NV"], size=steps)
    for n, token in enumerate(tokens, start=1):
        logits = td.graph_step(exe, int(token))
        expected = ref.step(int(token))
        assert logits.shape == (1, d["NV"]) and logits.dtype == np.float32
        np.testing.assert_allclose(logits, expected, rtol=RTOL, atol=ATOL, err_msg=f"logits at step {n}")

        # The KV tables: size n along t (one position per step), L along l, and every
        # entry equal to the rotated key / value numpy cached for that layer and position.
        assert exe.table_sizes("Kc") == [d["L"], n]
        assert exe.table_sizes("Vc") == [d["L"], n]
        assert int(exe.state("pos")) == n
        keys, values = ref.cached()
        assert exe.state("Kc").shape == (d["L"], n, d["Hk"], d["Dh"]) == keys.shape
        np.testing.assert_allclose(exe.state("Kc"), keys, rtol=RTOL, atol=ATOL, err_msg=f"Kc after step {n}")
        np.testing.assert_allclose(exe.state("Vc"), values, rtol=RTOL, atol=ATOL, err_msg=f"Vc after step {n}")


def test_graph_verifies(graph: oi.Graph) -> None:
    graph.verify()  # symbolic sizes
    graph.verify(sizevars=td.DIMS)
    for dims in OTHER_DIMS:
        graph.verify(sizevars=dims)
    assert graph.vars["Kc"].index_names == ["l", "t"]


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_logits_and_kv_cache_match_numpy(graph: oi.Graph, seed: int, device: str) -> None:
    _run_and_compare(graph, seed, None, steps=16, device=device)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dims", OTHER_DIMS, ids=["L1-mqa", "L3-mha"])
def test_other_dims(graph: oi.Graph, dims: dict[str, int], device: str) -> None:
    _run_and_compare(graph, 7, dims, steps=10, device=device)


def test_cuda_emulated_decodes_like_numpy(graph: oi.Graph, monkeypatch: pytest.MonkeyPatch) -> None:
    """`device="cuda"` with its kernels in the CPU emulation: a few steps (each new keys' block size
    makes attention's kernel again), each op a kernel set made once and launched every step, from
    compiled code after its first call."""
    monkeypatch.setenv("OI_GPU_EMULATE", "1")
    monkeypatch.setenv("OI_CUDA_COMPILE_AFTER", "1")
    _run_and_compare(graph, 0, None, steps=5, device="cuda")
    _run_and_compare(graph, 7, OTHER_DIMS[0], steps=3, device="cuda")


def test_devices_agree_step_by_step(graph: oi.Graph) -> None:
    """cpu against reference over 40 greedy steps: logits within float tolerance, caches too."""
    model = td.make_model(5)
    ref, cpu = _executor(graph, model), _executor(graph, model, "cpu")
    token = 7
    for _ in range(40):
        a, b = td.graph_step(ref, token), td.graph_step(cpu, token)
        np.testing.assert_allclose(b, a, rtol=RTOL, atol=ATOL)
        token = int(np.argmax(a))
    assert ref.table_sizes("Kc") == cpu.table_sizes("Kc") == [2, 40]
    np.testing.assert_allclose(cpu.state("Kc"), ref.state("Kc"), rtol=RTOL, atol=ATOL)
    assert int(cpu.state("pos")) == int(ref.state("pos")) == 40


class _WrongGrouping(td.NumpyDecoder):
    """Query head h reads kv head h % Hk (interleaved groups) instead of h // (H / Hk)."""

    def attend(self, q, keys, values):
        H, Hk = self.dims["H"], self.dims["Hk"]
        order = [h % Hk * (H // Hk) + h // Hk for h in range(H)]  # the head whose kv head h % Hk is
        out = super().attend(q[order], keys, values)
        return out[np.argsort(order)]


_rotate_half = td.rotate


def _interleaved_rotate(x, position, theta=td.THETA):
    """GPT-J / Meta Llama pair layout: dims (2i, 2i + 1) rotate together, not (i, i + Dh/2)."""
    perm = np.arange(x.shape[-1]).reshape(-1, 2).T.reshape(-1)  # 0, 2, 4, ..., 1, 3, 5, ...
    out = np.empty_like(x)
    out[..., perm] = _rotate_half(x[..., perm], position, theta)
    return out


def _max_diffs(graph: oi.Graph, ref: td.NumpyDecoder, model: oi.Model, tokens) -> tuple[float, float]:
    exe = _executor(graph, model)
    logits = max(float(np.max(np.abs(td.graph_step(exe, t) - ref.step(t)))) for t in tokens)
    return logits, float(np.max(np.abs(exe.state("Kc") - ref.cached()[0])))


def test_comparison_detects_modelling_errors(graph: oi.Graph, monkeypatch: pytest.MonkeyPatch) -> None:
    """The tolerance sees a real mistake: each of these moves the logits or the cached keys by > 1e-2."""
    model, tokens = td.make_model(0), (3, 17, 15, 25)
    assert _max_diffs(graph, td.NumpyDecoder.from_model(model), model, tokens)[0] < ATOL

    assert _max_diffs(graph, _WrongGrouping.from_model(model), model, tokens)[0] > 1e-2

    # RoPE scores depend only on position differences: decoding one position ahead leaves
    # the logits alone, but not the rotated keys in the cache table.
    ahead = td.NumpyDecoder.from_model(model)
    ahead.position = 1
    ahead_logits, ahead_keys = _max_diffs(graph, ahead, model, tokens)
    assert ahead_logits < ATOL and ahead_keys > 1e-2

    monkeypatch.setattr(td, "rotate", _interleaved_rotate)
    assert min(_max_diffs(graph, td.NumpyDecoder.from_model(model), model, tokens)) > 1e-2


@pytest.mark.parametrize("device", DEVICES)
def test_executors_are_independent_and_reset(graph: oi.Graph, device: str) -> None:
    sim = oi.Simulator(td.make_model(0), graph, device=device)
    a, b = sim.make_executor(), sim.make_executor()
    first = [td.graph_step(a, t) for t in (3, 17, 15)]
    assert np.array_equal(td.graph_step(b, 3), first[0])  # b starts at position 0
    assert a.table_sizes("Kc") == [2, 3] and b.table_sizes("Kc") == [2, 1]
    a.reset()
    assert a.table_sizes("Kc") == [0, 0] and a.state("Kc").shape == (0, 0, 2, 8) and int(a.state("pos")) == 0
    again = [td.graph_step(a, t) for t in (3, 17, 15)]
    for x, y in zip(first, again):
        assert np.array_equal(x, y)


@pytest.mark.parametrize("suffix", [".oinf", ".npz"])
def test_model_file_round_trip(graph: oi.Graph, tmp_path: Path, suffix: str) -> None:
    path = td.write_model(tmp_path / f"tiny{suffix}", seed=4)
    model = oi.Model.open(path)
    assert model.sizevars == td.DIMS
    weights = td.make_weights(4)
    assert sorted(model.tensor_names()) == sorted(weights)
    for name, value in weights.items():
        assert np.array_equal(model.tensor(name), value), name
    from_file, in_memory = _executor(graph, model), _executor(graph, td.make_model(4))
    for token in (0, 5, 47):
        assert np.array_equal(td.graph_step(from_file, token), td.graph_step(in_memory, token))


@pytest.mark.parametrize("device", DEVICES)
def test_main_decodes_greedily(tmp_path: Path, capsys: pytest.CaptureFixture[str], device: str) -> None:
    model = tmp_path / "tiny.oinf"
    assert td.main(["--model", str(model), "--steps", "12", "--device", device]) == 0
    out = capsys.readouterr().out
    assert model.exists()
    rows = [line.split() for line in out.splitlines() if line[:4].strip().isdigit()]
    assert [int(r[0]) for r in rows] == list(range(12))
    for _, fed, ours, theirs, diff in rows:
        assert ours == theirs and float(diff) <= td.TOLERANCE
    assert "OK: the graph matches numpy" in out
    assert f"device {device!r}" in out


def test_main_without_a_gpu_says_so(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    """`--device cuda` with neither a GPU nor the emulation: the library's error, exit 1, no traceback."""
    from oi_compiler.runtime import cuda

    if cuda.available():
        pytest.skip("a GPU is present")
    monkeypatch.delenv("OI_GPU_EMULATE", raising=False)
    assert td.main(["--model", str(tmp_path / "tiny.oinf"), "--steps", "1", "--device", "cuda"]) == 1
    assert "OI_GPU_EMULATE=1" in capsys.readouterr().err


def test_main_fails_on_divergence(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(td, "TOLERANCE", -1.0)  # every step now counts as diverging
    assert td.main(["--model", str(tmp_path / "tiny.oinf"), "--steps", "2"]) == 1


def test_script_runs(tmp_path: Path) -> None:
    model = tmp_path / "tiny.oinf"
    done = subprocess.run(
        [sys.executable, str(EXAMPLE), "--model", str(model), "--steps", "3"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"writing {model}" in done.stdout and "OK" in done.stdout
