"""`exe.inputs`: the dynamic variables' own buffers, written in place instead of `insert` (issue
#16 item 3: the zero-copy way to feed a step), on both devices."""

from __future__ import annotations

import numpy as np
import pytest

import oi_compiler as oi

APPEND = """
dynamic { x: f32[1, 4]; }
persistent { t: i32 @init(0); K(p): f32[1, 4] @table; }
block entry { cache.write x >> K[t]; cache.increment t; }
"""


def executor(text: str, device: str, model=None):
    return oi.Simulator(model, oi.parse_graph(text, "inputs.oi"), device=device).make_executor()


@pytest.mark.parametrize("device", ["reference", "cpu"])
def test_writing_an_input_buffer_feeds_the_next_steps(device) -> None:
    exe = executor(APPEND, device)
    assert list(exe.inputs) == ["x"] and len(exe.inputs) == 1
    buffer = exe.inputs["x"]
    assert buffer.shape == (1, 4) and buffer.dtype == np.float32 and buffer.flags.writeable
    for n in range(3):
        buffer[...] = n
        exe.step()
    np.testing.assert_array_equal(exe.state("K")[:, 0, 0], [0.0, 1.0, 2.0])


@pytest.mark.parametrize("device", ["reference", "cpu"])
def test_a_buffer_starts_with_the_current_value(device) -> None:
    model = oi.Model(tensors={"x": np.full((1, 4), 5.0, np.float32)})
    exe = executor(APPEND, device, model)
    np.testing.assert_array_equal(exe.inputs["x"], np.full((1, 4), 5.0))
    exe.insert(x=np.full((1, 4), 2.0, np.float32))
    np.testing.assert_array_equal(exe.inputs["x"], np.full((1, 4), 2.0))  # taken again after insert


@pytest.mark.parametrize("device", ["reference", "cpu"])
@pytest.mark.parametrize(("name", "message"), [("K", "cannot insert into persistent variable K"),
                                               ("nope", "unknown variable: nope")])  # fmt: skip
def test_only_dynamic_variables_have_input_buffers(device, name, message) -> None:
    with pytest.raises(oi.ExecutionError, match=message):
        executor(APPEND, device).inputs[name]


def test_a_cache_read_destination_has_no_fixed_buffer_on_cpu() -> None:
    text = """
    dynamic { d: f32[4, 2]; x: f32[2]; }
    persistent { t: i32 @init(0); K(p): f32[2] @table; }
    block entry { cache.write x >> K[t]; cache.read K[0..4] >> d; }
    """
    with pytest.raises(oi.ExecutionError, match=r"inputs\['d'\]: d is also written by a cache.read"):
        executor(text, "cpu").inputs["d"]
    assert executor(text, "cpu").inputs["x"].shape == (2,)
