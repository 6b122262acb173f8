"""examples/ragged_decode.py runs its scenario on every device and matches its numpy model."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _example():
    spec = importlib.util.spec_from_file_location("ragged_decode", ROOT / "examples" / "ragged_decode.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("device", ["reference", "cpu", "cuda"])
def test_scenario_matches_numpy(device, capsys, monkeypatch):
    """cuda (emulated, launches compiled from the second call): its paged tables' pools in device
    memory, forks (pages shared, copied on write), pops and masked resets included."""
    monkeypatch.setenv("OI_GPU_EMULATE", "1")
    monkeypatch.setenv("OI_CUDA_COMPILE_AFTER", "2")
    assert _example().main(["--device", device, "--seed", "3"]) == 0
    assert "OK: every step matches the numpy model" in capsys.readouterr().out


def test_overflowing_a_sequence_fails_the_step(capsys):
    """Past 16 positions the fixed table refuses the append (policy error): a clear error, exit 1."""
    assert _example().main(["--device", "reference", "--steps", "40"]) == 1
    assert "exceeds fixed size 16 of index 2" in capsys.readouterr().err
