"""benchmarks/gpu_device_check.py, the real-GPU check of `device="cuda"`, runs under the emulation:
the script a GPU session runs is itself tested (all but its tiny-decoder check, which
tests/e2e/test_tiny_decoder.py covers)."""

from __future__ import annotations

from tests.device_check import device_check


def test_the_gpu_device_check_passes_under_the_emulation(monkeypatch, capsys) -> None:
    monkeypatch.setenv("OI_GPU_EMULATE", "1")
    monkeypatch.setenv("OI_CUDA_COMPILE_AFTER", "16")  # the script sets it per check; put back after
    module = device_check()
    assert module.main(["--quick"]) == 0
    out = capsys.readouterr().out
    assert "device='cuda' on the CPU emulation" in out and "all checks passed" in out
    assert out.count("\nok ") == len(module.CHECKS) - 1
