"""Executor checkpoints: `exe.save_state(path)` / `exe.load_state(path)` (runtime/state_file.py).

Round trips for every kind of state, bit-identical continuation, transfer aliases, atomic
writes, and corrupt or mismatched files (which must raise `oi.StateError` and change nothing).

Tests taking the `device` fixture run on `device="reference"`, on the compiled `device="cpu"` and on
`device="cuda"` (its kernels in the CPU emulation, `OI_GPU_EMULATE=1`, set by tests/conftest.py's
`emulate_cuda_device`); the same graphs, `@auto_dim` variable included, run on every device, and
files saved on cuda load on cpu and on the reference and back (`test_checkpoints_move_between_devices`).
The transfer-alias test is reference-only (`transfer` is not compiled yet).
"""

from __future__ import annotations

import errno
import io
import json
import os
import random
import tempfile
import textwrap
import zipfile
from pathlib import Path

import ml_dtypes
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import oi_compiler as oi

FILE = "ckpt.oi"


DEVICES = ("reference", "cpu", "cuda")
pytestmark = pytest.mark.usefixtures("emulate_cuda_device")


@pytest.fixture(params=DEVICES)
def device(request) -> str:
    return request.param


def simulator(src: str, *, sizevars=None, tensors=None, device: str = "reference") -> oi.Simulator:
    graph = oi.parse_graph(textwrap.dedent(src), FILE)
    return oi.Simulator(oi.Model(sizevars=sizevars or {}, tensors=tensors or {}), graph, device=device)


def step(exe: oi.Executor, **values) -> oi.Executor:
    if values:
        exe.insert(**values)
    exe.step()
    return exe


def snapshot(exe: oi.Executor) -> dict:
    """Everything an executor holds, as bytes: persistent values, sizes, entries, buffers, aliases."""
    persistent = {}
    for name in exe.store:
        value = exe.state(name)
        entries = getattr(exe.store[name], "entries", {})
        persistent[name] = (
            value.dtype.str, value.shape, value.tobytes(), tuple(exe.table_sizes(name)),
            tuple(sorted((k, v.dtype.str, v.shape, v.tobytes()) for k, v in entries.items())),
        )  # fmt: skip
    values, groups = {}, {}
    for name, buffer in exe.values.items():
        values[name] = (buffer.dtype.str, buffer.shape, buffer.tobytes())
        groups.setdefault(id(buffer), []).append(name)
    aliases = sorted(sorted(g) for g in groups.values() if len(g) > 1)
    return {"steps": exe.steps, "persistent": persistent, "values": values, "aliases": aliases}


def fetch_all(exe: oi.Executor) -> dict:
    return {name: (v.dtype.str, v.shape, v.tobytes()) for name in exe.bound.decls for v in [exe.fetch(name)]}


# --- round trips -----------------------------------------------------------------------------------

ROUND_SRC = """
dynamic { xb: bf16[2]; xh: f16[2]; xi: i8[2]; xq: bool[2]; x8: f8[2]; xf: f32[2]; }
volatile { acc: f32[2]; grown: f32[2]; tmp: f16[2]; }
persistent {
    t: i32 @init(0);
    s: u64 @init(7);
    W: f32[2] @init(0.5);
    B(p): bf16[2] @table;
    H(p, q): f16[2] @table @fixed(q=3);
    I(p): i8[2] @init(-3) @table;
    Q(p): bool[2] @table;
    E(p): f8[2] @table;
    M(r, c): f32[2, 2] @init(1.5) @auto_dim(r, c) @fixed(r=8);
}
block entry {
    op add(acc, xf) >> acc;
    cache.write xf >> W;
    cache.write xb >> B[t];
    cache.write xh >> H[t, 1];
    cache.write xi >> I[t];
    cache.write xq >> Q[t];
    cache.write x8 >> E[t];
    cache.read M[t, 1] >> grown;
    cache.read H[0, ..] >> tmp;
    cache.increment t;
    cache.decrement 3 s;
}
"""


def round_inputs(n: int) -> dict:
    rng = np.random.default_rng(n)
    return {
        "xb": rng.standard_normal(2).astype(ml_dtypes.bfloat16),
        "xh": np.array([rng.standard_normal(), np.nan if n == 1 else -0.0], np.float16),
        "xi": rng.integers(-128, 128, 2).astype(np.int8),
        "xq": rng.integers(0, 2, 2).astype(bool),
        "x8": rng.standard_normal(2).astype(ml_dtypes.float8_e5m2),
        "xf": rng.standard_normal(2).astype(np.float32),
    }


def test_round_trip_every_kind_of_state(tmp_path, device) -> None:
    sim = simulator(ROUND_SRC, device=device)
    exe = sim.make_executor()
    for n in range(3):
        step(exe, **round_inputs(n))
    path = exe.save_state(tmp_path / "s.oistate")
    assert path == tmp_path / "s.oistate" and path.is_file()
    fresh = sim.make_executor()
    fresh.load_state(path)
    assert snapshot(fresh) == snapshot(exe)
    assert fetch_all(fresh) == fetch_all(exe)
    assert fresh.steps == 3
    assert fresh.table_sizes("B") == [3] and fresh.table_sizes("H") == [3, 3]
    if device == "reference":
        assert fresh.table_sizes("M") == [2, 1]
    assert fresh.state("B").dtype == ml_dtypes.bfloat16 and fresh.state("E").dtype == ml_dtypes.float8_e5m2
    assert fresh.state("Q").dtype == np.bool_ and fresh.state("I").dtype == np.int8
    assert int(fresh.state("s")) == 2**64 - 2  # 7 - 9 wrapped
    # the loaded buffers are independent of the saved executor
    step(exe, **round_inputs(3))
    assert snapshot(fresh) != snapshot(exe)


def test_round_trip_of_a_fresh_executor(tmp_path, device) -> None:
    sim = simulator(ROUND_SRC, device=device)
    exe = sim.make_executor()
    exe.save_state(tmp_path / "empty.st")
    other = sim.make_executor()
    for n in range(2):
        step(other, **round_inputs(n))
    other.load_state(tmp_path / "empty.st")
    assert snapshot(other) == snapshot(sim.make_executor())
    assert other.table_sizes("H") == [0, 3]


def test_round_trip_of_prefix_table_and_model_buffers(tmp_path, device) -> None:
    src = """
    constant { W(l): f32[2] @pattern("w.{l}"); c: f32[2]; }
    volatile { y: f32[2]; }
    block entry { op add(W[1], c) >> y; op add(y, W[0]) >> y; }
    """
    tensors = {"w.0": np.float32([1, 2]), "w.1": np.float32([3, 4]), "c": np.float32([10, 20])}
    sim = simulator(src, tensors=tensors, device=device)
    exe = step(sim.make_executor())
    exe.save_state(tmp_path / "p.st")
    fresh = sim.make_executor()
    fresh.load_state(tmp_path / "p.st")
    assert snapshot(fresh) == snapshot(exe)
    np.testing.assert_array_equal(step(fresh).fetch("y"), step(exe).fetch("y"))


# --- continuation ---------------------------------------------------------------------------------

CONTINUE_SRC = """
dynamic { x: f32[2]; xb: bf16[2]; k: i32; }
volatile { acc: f32[2]; hist: f32[2]; histb: bf16[2]; m: f32[2]; mm: f32[2]; one: f32[2] @init(1.0); }
persistent {
    t: i32 @init(0);
    sk: i32;
    h: f16[1] @init(0.5);
    K(p): f32[2] @table;
    B(p, q): bf16[2] @table @fixed(q=4);
    M(r): f32[2] @init(2.0) @auto_dim(r) @fixed(r=64);
}
block entry {
    assign tmp: f32[2];
    op add(tmp, one) >> tmp;
    op add(acc, x) >> acc;
    op mul(acc, tmp) >> m;
    cache.write k >> sk;
    cache.write m >> K[t];
    cache.write xb >> B[t, sk];
    cache.read M[t] >> mm;    // rebinds mm to M's whole, growing tensor
    cache.increment t;
    cache.increment h;
    cache.read K[0..t] >> hist;
    loop l (i in 0..2) { cache.read B[i, ..] >> histb; }
    cache.read K[0..t] >> hist;
}
"""
_CONTINUE_SIMS: dict[str, oi.Simulator] = {}


def continue_sim(device: str = "reference") -> oi.Simulator:
    if device not in _CONTINUE_SIMS:
        _CONTINUE_SIMS[device] = simulator(CONTINUE_SRC, device=device)
    return _CONTINUE_SIMS[device]


def continue_inputs(seed: int, n: int) -> list[dict]:
    rng = np.random.default_rng(seed)
    return [
        {
            "x": rng.standard_normal(2).astype(np.float32),
            "xb": rng.standard_normal(2).astype(ml_dtypes.bfloat16),
            "k": np.int32(rng.integers(0, 4)),
        }
        for _ in range(n)
    ]


def check_continuation(n: int, m: int, seed: int, directory: Path, device: str = "reference") -> None:
    sim = continue_sim(device)
    inputs = continue_inputs(seed, n + m)
    original = sim.make_executor()
    for values in inputs[:n]:
        step(original, **values)
    path = original.save_state(directory / f"c{n}_{m}_{seed}.st")
    restored = sim.make_executor()
    step(restored, **inputs[-1])  # some unrelated state that the load must replace
    restored.load_state(path)
    assert snapshot(restored) == snapshot(original)
    for values in inputs[n:]:
        step(original, **values)
        step(restored, **values)
        assert fetch_all(restored) == fetch_all(original)
        assert snapshot(restored) == snapshot(original)


@pytest.mark.parametrize(("n", "m"), [(0, 3), (1, 1), (3, 4), (6, 2)])
def test_restored_executor_continues_bit_identically(tmp_path, n, m, device) -> None:
    check_continuation(n, m, seed=n * 10 + m, directory=tmp_path, device=device)


@pytest.mark.parametrize("device", DEVICES)  # not the fixture: hypothesis refuses function-scoped fixtures
@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(n=st.integers(0, 5), m=st.integers(1, 4), seed=st.integers(0, 2**32 - 1))
def test_continuation_property(device, n, m, seed) -> None:
    with tempfile.TemporaryDirectory() as directory:
        check_continuation(n, m, seed, Path(directory), device)


def state_of(exe: oi.Executor) -> dict:
    """What the devices agree on: every persistent's value (as bytes) and every variable's."""
    persistent = {name: (v.dtype.str, v.shape, v.tobytes()) for name in exe.store for v in [exe.state(name)]}
    return {"steps": exe.steps, "persistent": persistent, "values": fetch_all(exe)}


@pytest.mark.parametrize(
    ("src", "dst"), [("cuda", "cpu"), ("cuda", "reference"), ("cpu", "cuda"), ("reference", "cuda")]
)
@pytest.mark.parametrize("graph", ["round", "continue"])
def test_checkpoints_move_between_devices(tmp_path, monkeypatch, src, dst, graph) -> None:
    """A file saved on one device loads on another, which then goes on as the saver does (to the bit)."""
    monkeypatch.setenv("OI_GPU_EMULATE", "1")  # the cuda side runs its kernels in the CPU emulation
    if graph == "round":
        sims = {d: simulator(ROUND_SRC, device=d) for d in (src, dst)}
        inputs = [round_inputs(n) for n in range(5)]
    else:
        sims = {d: continue_sim(d) for d in (src, dst)}
        inputs = continue_inputs(7, 5)
    saver = sims[src].make_executor()
    for values in inputs[:3]:
        step(saver, **values)
    path = saver.save_state(tmp_path / f"{src}.st")
    loader = sims[dst].make_executor()
    step(loader, **inputs[-1])  # some unrelated state that the load must replace
    loader.load_state(path)
    assert state_of(loader) == state_of(saver)
    for values in inputs[3:]:
        step(saver, **values)
        step(loader, **values)
        assert state_of(loader) == state_of(saver)


def test_transfer_aliases_survive_a_round_trip(tmp_path) -> None:
    # reference-only: the compiled path does not support `transfer` (nor `branch`) yet
    sim = simulator(
        """
        dynamic { link: bool; }
        volatile { a: f32[2] @init(1.0); b: f32[2]; c: f32[2] @init(3.0); one: f32[2] @init(1.0); }
        block entry { branch link setup work; }
        block setup { transfer a >> b; }
        block work { op add(b, one) >> b; }
        """
    )
    exe = step(sim.make_executor(), link=True)
    step(exe, link=False)
    np.testing.assert_array_equal(exe.fetch("a"), [2.0, 2.0])
    exe.save_state(tmp_path / "alias.st")
    fresh = sim.make_executor()
    fresh.load_state(tmp_path / "alias.st")
    assert fresh.values["a"] is fresh.values["b"]
    assert "c" not in fresh.values  # never touched, so not stored
    step(fresh, link=False)
    np.testing.assert_array_equal(fresh.fetch("b"), [3.0, 3.0])
    np.testing.assert_array_equal(fresh.fetch("a"), [3.0, 3.0])  # still seen through the source
    step(exe, link=False)
    assert snapshot(fresh) == snapshot(exe)


def test_loading_replaces_buffers_not_in_the_file(tmp_path, device) -> None:
    sim = simulator("dynamic { x: f32[2]; } volatile { y: f32[2]; } block entry { op add(x, x) >> y; }", device=device)
    empty = sim.make_executor()
    empty.save_state(tmp_path / "empty.st")
    exe = step(sim.make_executor(), x=np.float32([1, 2]))
    exe.load_state(tmp_path / "empty.st")
    if device == "reference":
        assert exe.values == {}  # a fresh reference executor holds no buffer (cpu holds them all, as zeros)
    assert exe.steps == 0
    np.testing.assert_array_equal(exe.fetch("x"), [0.0, 0.0])
    np.testing.assert_array_equal(exe.fetch("y"), [0.0, 0.0])


# --- atomic writes ----------------------------------------------------------------------------------


SMALL_SRC = """
dynamic { x: f32[2]; }
volatile { y: f32[2]; }
persistent { t: i32 @init(0); K(p): f32[2] @table @fixed(p=4); }
block entry { op add(x, x) >> y; cache.write y >> K[t]; cache.increment t; }
"""
_SMALL_SIMS: dict[str, oi.Simulator] = {}


def small_exe(device: str = "reference") -> oi.Executor:
    if device not in _SMALL_SIMS:
        _SMALL_SIMS[device] = simulator(SMALL_SRC, device=device)
    return _SMALL_SIMS[device].make_executor()


def test_save_leaves_no_temporary_file(tmp_path, device) -> None:
    exe = step(small_exe(device), x=np.float32([1, 2]))
    exe.save_state(tmp_path / "s.st")
    exe.save_state(tmp_path / "s.st")  # overwriting too
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s.st"]
    assert zipfile.is_zipfile(tmp_path / "s.st")


def test_save_accepts_str_paths_and_relative_names(tmp_path, monkeypatch, device) -> None:
    monkeypatch.chdir(tmp_path)
    exe = step(small_exe(device), x=np.float32([1, 2]))
    exe.save_state("rel.st")
    exe.save_state(str(tmp_path / "abs.st"))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["abs.st", "rel.st"]
    assert (tmp_path / "rel.st").read_bytes() == (tmp_path / "abs.st").read_bytes()


@pytest.mark.parametrize("target", ["replace", "savez", "fsync"])
def test_failed_save_keeps_the_old_file(tmp_path, monkeypatch, target, device) -> None:
    exe = step(small_exe(device), x=np.float32([1, 2]))
    path = tmp_path / "s.st"
    exe.save_state(path)
    old = path.read_bytes()
    step(exe, x=np.float32([5, 6]))

    def boom(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    module = {"replace": os, "savez": np, "fsync": os}[target]
    monkeypatch.setattr(module, target, boom)
    with pytest.raises(oi.StateError) as info:
        exe.save_state(path)
    monkeypatch.undo()
    assert "No space left on device" in info.value.message
    assert path.read_bytes() == old
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s.st"]
    # the old file still loads
    fresh = small_exe(device)
    fresh.load_state(path)
    assert int(fresh.state("t")) == 1


def test_interrupted_save_keeps_the_old_file(tmp_path, monkeypatch, device) -> None:
    exe = step(small_exe(device), x=np.float32([1, 2]))
    path = tmp_path / "s.st"
    exe.save_state(path)
    old = path.read_bytes()

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(np, "savez", interrupted)
    with pytest.raises(KeyboardInterrupt):
        exe.save_state(path)
    monkeypatch.undo()
    assert path.read_bytes() == old
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s.st"]


def test_save_into_a_missing_directory(tmp_path, device) -> None:
    exe = small_exe(device)
    with pytest.raises(oi.StateError) as info:
        exe.save_state(tmp_path / "nope" / "s.st")
    assert "No such file or directory" in info.value.message
    assert str(info.value).startswith(str(tmp_path / "nope" / "s.st"))


# --- corrupt and mismatched files ---------------------------------------------------------------------


@pytest.fixture
def saved(tmp_path, device):
    """(executor with its own progressed state, path of a state saved by another executor, its bytes)."""
    other = small_exe(device)
    for n in range(3):
        step(other, x=np.float32([n, n + 0.5]))
    path = other.save_state(tmp_path / "good.st")
    exe = small_exe(device)
    step(exe, x=np.float32([9, 9]))
    return exe, path, path.read_bytes()


def assert_rejected(exe: oi.Executor, path: Path) -> oi.StateError:
    before = snapshot(exe)
    with pytest.raises(oi.StateError) as info:
        exe.load_state(path)
    assert snapshot(exe) == before
    assert str(info.value).startswith(f"{path}: error: ")
    return info.value


def test_good_file_loads(saved) -> None:
    exe, path, _ = saved
    exe.load_state(path)
    assert int(exe.state("t")) == 3 and exe.table_sizes("K") == [4]


def test_truncated_files(saved, tmp_path) -> None:
    exe, _, data = saved
    before = snapshot(exe)
    bad = tmp_path / "cut.st"
    offsets = sorted(set(range(0, len(data), 3)) | {len(data) - 1, len(data) - 22, 1, 4, 30})
    for n in offsets:
        bad.write_bytes(data[:n])
        with pytest.raises(oi.StateError):
            exe.load_state(bad)
    assert snapshot(exe) == before


def test_empty_file(saved, tmp_path) -> None:
    exe, _, _ = saved
    (tmp_path / "empty.st").write_bytes(b"")
    assert_rejected(exe, tmp_path / "empty.st")


@pytest.mark.parametrize("content", [b"not a zip at all\n", b"PK\x03\x04" + b"\x00" * 60, bytes(range(256)) * 4])
def test_non_zip_files(saved, tmp_path, content) -> None:
    exe, _, _ = saved
    (tmp_path / "junk.st").write_bytes(content)
    assert_rejected(exe, tmp_path / "junk.st")


def test_random_bytes(saved, tmp_path) -> None:
    exe, _, _ = saved
    rng = random.Random(1234)
    for n in range(40):
        (tmp_path / "rand.st").write_bytes(bytes(rng.randrange(256) for _ in range(rng.randrange(1, 600))))
        assert_rejected(exe, tmp_path / "rand.st")


def test_missing_file(saved, tmp_path) -> None:
    exe, _, _ = saved
    err = assert_rejected(exe, tmp_path / "absent.st")
    assert err.message == "no such state file"


def test_a_directory_instead_of_a_file(saved, tmp_path) -> None:
    exe, _, _ = saved
    (tmp_path / "dir.st").mkdir()
    assert_rejected(exe, tmp_path / "dir.st")


def test_flipped_bytes(saved, tmp_path, device) -> None:
    """Every single-byte corruption either raises StateError or (a byte no reader checks, e.g.
    a timestamp) restores exactly what was saved; nothing else escapes."""
    exe, path, data = saved
    reference = small_exe(device)
    reference.load_state(path)
    expected = snapshot(reference)
    before = snapshot(exe)
    bad = tmp_path / "flip.st"
    escaped = []
    probe = None
    for offset in range(len(data)):
        corrupt = bytearray(data)
        corrupt[offset] ^= 0x41 if offset % 2 else 0x01
        bad.write_bytes(bytes(corrupt))
        if probe is None:
            probe = step(small_exe(device), x=np.float32([9, 9]))
        try:
            probe.load_state(bad)
        except oi.StateError:
            assert snapshot(probe) == before, offset
            continue
        except Exception as e:  # noqa: BLE001 - the point of the test
            escaped.append((offset, type(e).__name__, str(e)[:60]))
            probe = None
            continue
        assert snapshot(probe) == expected, offset
        probe = None
    assert escaped == []


@pytest.mark.parametrize(
    ("offset_of", "mask"),
    [("compression", 0x01), ("encryption", 0x01), ("strong_encryption", 0x40)],
)
def test_flipped_zip_header_fields(saved, tmp_path, offset_of, mask) -> None:
    """Corrupt local-file-header fields of the first member: zipfile raises NotImplementedError or
    RuntimeError for these, which must become StateError too."""
    exe, _, data = saved
    field = {"compression": 8, "encryption": 6, "strong_encryption": 6}[offset_of]
    central = data.index(b"PK\x01\x02")  # the first member's central-directory entry: the same fields
    corrupt = bytearray(data)
    corrupt[field] ^= mask
    corrupt[central + field + 2] ^= mask
    (tmp_path / "hdr.st").write_bytes(bytes(corrupt))
    assert_rejected(exe, tmp_path / "hdr.st")


def test_state_from_a_different_graph(saved, tmp_path, device) -> None:
    exe, _, _ = saved
    other = simulator("persistent { t: i32 @init(0); } block entry { cache.increment t; }", device=device).make_executor()
    other.save_state(tmp_path / "other.st")
    err = assert_rejected(exe, tmp_path / "other.st")
    assert err.message == "saved for a different graph (its declarations differ)"


def test_state_from_the_same_graph_with_other_sizes(tmp_path, device) -> None:
    src = "dynamic { x: f32[D]; } persistent { K(p): f32[D] @table; } block entry { cache.write x >> K[0]; }"
    step(simulator(src, sizevars={"D": 3}, device=device).make_executor()).save_state(tmp_path / "d3.st")
    exe = simulator(src, sizevars={"D": 4}, device=device).make_executor()
    err = assert_rejected(exe, tmp_path / "d3.st")
    assert err.message == "saved for a different graph (its declarations differ)"


def edit_state(src: Path, dst: Path, edit) -> None:
    """Rewrite a state file with `edit(header, arrays)` applied (a valid zip, a doctored content)."""
    with np.load(src, allow_pickle=False) as archive:
        arrays = {key: archive[key] for key in archive.files}
    header = json.loads(arrays.pop("header").tobytes().decode())
    edit(header, arrays)
    buffer = io.BytesIO()
    np.savez(buffer, header=np.frombuffer(json.dumps(header).encode(), dtype=np.uint8), **arrays)
    dst.write_bytes(buffer.getvalue())


def _entry_key_beyond_fixed(header, arrays):
    header["persistent"]["K"]["keys"][0] = [4]  # K has @fixed(p=4): valid keys are 0..3


def _size_beyond_fixed(header, arrays):
    header["persistent"]["K"]["sizes"] = [5]


def _negative_key(header, arrays):
    header["persistent"]["K"]["keys"][1] = [-1]


def _key_of_wrong_rank(header, arrays):
    header["persistent"]["K"]["keys"][0] = [0, 1]


def _duplicate_keys(header, arrays):
    header["persistent"]["K"]["keys"][1] = list(header["persistent"]["K"]["keys"][0])


def _fewer_keys_than_entries(header, arrays):
    header["persistent"]["K"]["keys"].pop()


def _wrong_entries_dtype(header, arrays):
    desc = header["persistent"]["K"]["entries"]
    desc["dtype"] = "i32"


def _wrong_plain_shape(header, arrays):
    desc = header["persistent"]["t"]["value"]
    desc["shape"] = [1]


def _unknown_dtype(header, arrays):
    header["persistent"]["t"]["value"]["dtype"] = "f128"


def _missing_array(header, arrays):
    del arrays[header["persistent"]["t"]["value"]["array"]]


def _array_of_wrong_width(header, arrays):
    key = header["persistent"]["t"]["value"]["array"]
    arrays[key] = arrays[key].astype(np.uint64)


def _value_of_wrong_dtype(header, arrays):
    header["values"]["y"]["dtype"] = "i32"  # same width as f32: only the declaration can tell


def _size_below_an_entry(header, arrays):
    header["persistent"]["K"]["sizes"] = [1]  # entries 1 and 2 exist: sizes are always > every key


def _negative_steps(header, arrays):
    header["steps"] = -3


def _unknown_value_name(header, arrays):
    header["values"]["ghost"] = header["values"]["y"]


def _persistent_as_value(header, arrays):
    header["values"]["t"] = header["values"]["y"]


def _value_of_wrong_size(header, arrays):
    header["values"]["y"]["shape"] = [3]  # the stored array holds 2 elements


def _missing_variable(header, arrays):
    del header["persistent"]["t"]


def _extra_variable(header, arrays):
    header["persistent"]["u"] = header["persistent"]["t"]


def _wrong_kind(header, arrays):
    header["persistent"]["t"]["kind"] = "table"


def _bad_version(header, arrays):
    header["version"] = 99


def _bad_format(header, arrays):
    header["format"] = "something-else"


def _no_steps(header, arrays):
    del header["steps"]


def _bad_steps(header, arrays):
    header["steps"] = "many"


def _header_not_a_dict(header, arrays):
    header.clear()
    header["persistent"] = []


HEADER_EDITS = [
    _entry_key_beyond_fixed, _size_beyond_fixed, _negative_key, _key_of_wrong_rank, _duplicate_keys,
    _fewer_keys_than_entries, _wrong_entries_dtype, _wrong_plain_shape, _unknown_dtype, _missing_array,
    _array_of_wrong_width, _value_of_wrong_dtype, _size_below_an_entry, _negative_steps, _unknown_value_name,
    _persistent_as_value, _value_of_wrong_size, _missing_variable, _extra_variable, _wrong_kind, _bad_version, _bad_format, _no_steps, _bad_steps, _header_not_a_dict,
]  # fmt: skip


@pytest.mark.parametrize("edit", HEADER_EDITS, ids=[e.__name__.strip("_") for e in HEADER_EDITS])
def test_doctored_headers_are_rejected(saved, tmp_path, edit, device) -> None:
    exe, path, _ = saved
    edit_state(path, tmp_path / "edited.st", lambda h, a: None)
    check = small_exe(device)
    check.load_state(tmp_path / "edited.st")  # the rewrite alone is harmless
    edit_state(path, tmp_path / "edited.st", edit)
    assert_rejected(exe, tmp_path / "edited.st")


def test_entry_index_beyond_fixed_message(saved, tmp_path) -> None:
    exe, path, _ = saved
    edit_state(path, tmp_path / "edited.st", _entry_key_beyond_fixed)
    err = assert_rejected(exe, tmp_path / "edited.st")
    assert "K" in err.message and "@fixed" in err.message


def test_header_that_is_not_json(saved, tmp_path) -> None:
    exe, path, _ = saved
    with np.load(path) as archive:
        arrays = {k: archive[k] for k in archive.files}
    arrays["header"] = np.frombuffer(b"{not json", dtype=np.uint8)
    np.savez(tmp_path / "nojson.npz", **arrays)
    assert_rejected(exe, tmp_path / "nojson.npz")
    arrays["header"] = np.frombuffer(b"\xff\xfe", dtype=np.uint8)
    np.savez(tmp_path / "nonutf8.npz", **arrays)
    assert_rejected(exe, tmp_path / "nonutf8.npz")
    del arrays["header"]
    np.savez(tmp_path / "noheader.npz", **arrays)
    assert_rejected(exe, tmp_path / "noheader.npz")


def test_pickled_arrays_are_refused(saved, tmp_path) -> None:
    exe, path, _ = saved
    with np.load(path) as archive:
        arrays = {k: archive[k] for k in archive.files}
    arrays["a0"] = np.array([{"evil": 1}], dtype=object)
    np.savez(tmp_path / "pickle.npz", **arrays)
    assert_rejected(exe, tmp_path / "pickle.npz")
