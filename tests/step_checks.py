"""Checks shared by the statement test files: bit-exact comparison, and a step that must leave every
persistent variable as it was when it fails."""

from __future__ import annotations

import numpy as np

import oi_compiler as oi


def bits(a: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(a).reshape(-1).view(np.uint8)


def assert_bits(actual: np.ndarray, expected: np.ndarray, what: str = "") -> None:
    actual = np.asarray(actual)
    assert actual.dtype == expected.dtype, f"{what}: dtype {actual.dtype} != {expected.dtype}"
    assert actual.shape == expected.shape, f"{what}: shape {actual.shape} != {expected.shape}"
    np.testing.assert_array_equal(bits(actual), bits(expected), err_msg=what)


def snapshot(exe: oi.Executor) -> dict[str, tuple[np.ndarray, list[int]]]:
    """Every persistent variable's state (a copy) and sizes."""
    return {n: (np.array(exe.state(n)), exe.table_sizes(n)) for n in exe.bound.persistent_names()}


def assert_same_snapshot(actual: dict, expected: dict, what: str = "") -> None:
    assert actual.keys() == expected.keys(), what
    for name, (value, sizes) in expected.items():
        assert actual[name][1] == sizes, f"{what}: table_sizes({name}) {actual[name][1]} != {sizes}"
        assert_bits(actual[name][0], value, f"{what}: state({name})")


def step(exe: oi.Executor, values: dict) -> oi.OiError | None:
    """One step; the `OiError` it raised, after checking that a failed step changed no persistent state."""
    exe.insert(**values)
    before, count = snapshot(exe), exe.steps
    try:
        exe.step()
    except oi.OiError as e:
        assert_same_snapshot(snapshot(exe), before, f"after the failed step ({e.message})")
        assert exe.steps == count
        return e
    assert exe.steps == count + 1
    return None


def error_text(e: oi.OiError | None) -> tuple | None:
    return None if e is None else (type(e).__name__, e.message, str(e.loc), getattr(e, "node", None))
