"""Hardening of `save_state` / `load_state` (runtime/state_file.py) against hostile files and targets.

- Loading checks every size and count before anything is allocated or changed: a table size of
  2**62, a JSON `Infinity`/`NaN`/float/negative/bool where a count belongs, or a `.npy` member whose
  header claims more elements than it holds raise `oi.StateError`, and the executor keeps every
  variable and still steps. A file that passes the checks but cannot be restored (the cpu device
  cannot allocate it) changes nothing either: the state is rebuilt aside and swapped in whole.
- Saving refuses a target that exists and is not a regular file (symlink, FIFO, device node,
  directory), and removes temporaries of the same target left by a save that was killed.
"""

from __future__ import annotations

import io
import json
import os
import signal
import stat
import subprocess
import sys
import textwrap
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest

import oi_compiler as oi
from oi_compiler.runtime import state_file

SRC = """
dynamic { x: f32[2]; }
volatile { y: f32[2]; g: f32[2]; }
persistent {
    a: i32 @init(0);
    K(p): f32[2] @table;
    M(r, c): f32[2, 2] @init(1.5) @auto_dim(r, c);
    z: i32 @init(5);
}
block entry {
    op add(x, x) >> y;
    cache.write y >> K[a];
    cache.read M[a, 1] >> g;
    cache.increment a;
    cache.increment z;
}
"""
NAMES = ("a", "K", "M", "z")
_SIMS: dict[str, oi.Simulator] = {}


@pytest.fixture(params=("reference", "cpu"))
def device(request) -> str:
    return request.param


def make_exe(device: str, steps: int = 0) -> oi.Executor:
    if device not in _SIMS:
        _SIMS[device] = oi.Simulator(None, oi.parse_graph(SRC, "harden.oi"), device=device)
    exe = _SIMS[device].make_executor()
    for n in range(steps):
        exe.insert(x=np.float32([n + 1, -n]))
        exe.step()
    return exe


def observe(exe: oi.Executor) -> dict:
    return {name: (exe.state(name).tobytes(), exe.state(name).shape, exe.table_sizes(name)) for name in NAMES}


def edit_state(src: Path, dst: Path, edit) -> None:
    """`src` rewritten with `edit(header, arrays)` applied to its JSON header and arrays."""
    with np.load(src, allow_pickle=False) as archive:
        arrays = {key: archive[key] for key in archive.files}
    header = json.loads(arrays.pop("header").tobytes().decode())
    edit(header, arrays)
    buffer = io.BytesIO()
    np.savez(buffer, header=np.frombuffer(json.dumps(header).encode(), dtype=np.uint8), **arrays)
    dst.write_bytes(buffer.getvalue())


def claim_elements(src: Path, dst: Path, key: str, count: int) -> None:
    """`src` with member `key`'s `.npy` header claiming `count` elements (its data unchanged)."""
    out = io.BytesIO()
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(out, "w") as zout:
        for info in zin.infolist():
            data = zin.read(info)
            if info.filename == f"{key}.npy":
                member = io.BytesIO(data)
                np.lib.format.read_magic(member)
                _, _, dtype = np.lib.format.read_array_header_1_0(member)
                header = io.BytesIO()
                np.lib.format.write_array_header_1_0(
                    header, {"descr": np.lib.format.dtype_to_descr(dtype), "fortran_order": False, "shape": (count,)}
                )
                data = header.getvalue() + data[member.tell() :]
            zout.writestr(info, data)
    dst.write_bytes(out.getvalue())


@pytest.fixture
def saved(tmp_path, device):
    """(an executor one step in, its twin, a state file three steps in saved by a third executor)."""
    path = make_exe(device, 3).save_state(tmp_path / "good.st")
    return make_exe(device, 1), make_exe(device, 1), path


def assert_rejected_and_intact(exe: oi.Executor, twin: oi.Executor, path: Path) -> oi.StateError:
    """`load_state(path)` raises StateError, changes no variable, and the next step runs as on `twin`."""
    before = observe(exe)
    with pytest.raises(oi.StateError) as info:
        exe.load_state(path)
    assert observe(exe) == before
    assert exe.steps == twin.steps
    for e in (exe, twin):
        e.insert(x=np.float32([7, 8]))
        e.step()
    assert observe(exe) == observe(twin)
    np.testing.assert_array_equal(exe.fetch("g"), twin.fetch("g"))
    return info.value


def _set(*where):
    *keys, value = where

    def edit(header, arrays):
        node = header
        for key in keys[:-1]:
            node = node[key]
        node[keys[-1]] = value

    edit.__name__ = "/".join(map(str, keys)) + f"={value!r}"
    return edit


def _auto_counts_without_value(counts):
    def edit(header, arrays):
        header["persistent"]["M"]["counts"] = counts
        header["persistent"]["M"]["value"] = None

    edit.__name__ = f"M_counts={counts!r}_no_value"
    return edit


INF, NAN = float("inf"), float("nan")
EDITS = [
    _set("persistent", "K", "sizes", [2**62]),
    _set("persistent", "K", "sizes", [INF]),
    _set("persistent", "K", "sizes", [NAN]),
    _set("persistent", "K", "sizes", [4.0]),
    _set("persistent", "K", "sizes", [-1]),
    _set("persistent", "K", "sizes", [True]),
    _set("persistent", "K", "keys", [[INF], [1], [2]]),
    _set("persistent", "K", "keys", [[0.0], [1], [2]]),
    _set("persistent", "K", "keys", [[False], [1], [2]]),
    _set("persistent", "M", "counts", [INF, 1]),
    _set("persistent", "M", "counts", [True, 1]),
    _auto_counts_without_value([2**62, 1]),
    _auto_counts_without_value([2**31, 2**31]),
    _set("values", "y", "shape", [INF]),
    _set("values", "y", "shape", [2.0]),
    _set("steps", INF),
    _set("steps", True),
]


@pytest.mark.parametrize("edit", EDITS, ids=[e.__name__ for e in EDITS])
def test_bad_sizes_and_counts_are_state_errors(saved, tmp_path, edit) -> None:
    exe, twin, path = saved
    edit_state(path, tmp_path / "edited.st", lambda h, a: None)
    make_exe("reference").load_state(tmp_path / "edited.st")  # the rewrite alone loads
    edit_state(path, tmp_path / "edited.st", edit)
    assert_rejected_and_intact(exe, twin, tmp_path / "edited.st")


def test_huge_table_size_message(saved, tmp_path) -> None:
    exe, twin, path = saved
    edit_state(path, tmp_path / "huge.st", EDITS[0])
    err = assert_rejected_and_intact(exe, twin, tmp_path / "huge.st")
    assert "K" in err.message and "memory" in err.message


@pytest.mark.parametrize("count", [2**40, 2**20, 1, 0])
def test_npy_header_claiming_other_than_its_data(saved, tmp_path, count) -> None:
    """The K entries member holds 6 f32 (24 bytes): a header claiming more (numpy would allocate
    4 TiB for 2**40 before finding the data short) or fewer elements is refused before reading."""
    exe, twin, path = saved
    with np.load(path) as archive:
        key = next(k for k in archive.files if k != "header" and archive[k].size == 6)
    claim_elements(path, tmp_path / "claim.st", key, 6)
    make_exe("reference").load_state(tmp_path / "claim.st")  # the rewrite alone loads
    claim_elements(path, tmp_path / "claim.st", key, count)
    assert_rejected_and_intact(exe, twin, tmp_path / "claim.st")


def test_a_state_the_cpu_cannot_allocate_changes_nothing(tmp_path, monkeypatch) -> None:
    """With the size limit lifted, a 2**62 table passes the file's checks and fails to allocate in
    the cpu executor's restore: that must not leave the variables restored before it loaded."""
    exe, twin = make_exe("cpu", 1), make_exe("cpu", 1)
    path = make_exe("cpu", 3).save_state(tmp_path / "good.st")
    edit_state(path, tmp_path / "huge.st", EDITS[0])
    monkeypatch.setattr(state_file, "memory_limit", lambda: 1 << 200, raising=False)  # (no limit before)
    err = assert_rejected_and_intact(exe, twin, tmp_path / "huge.st")
    assert "cannot" in err.message
    exe.load_state(path)  # and a good file still loads afterwards
    assert int(exe.state("a")) == 3 and exe.table_sizes("K") == [3]


def test_good_file_still_loads(saved, device) -> None:
    exe, _, path = saved
    exe.load_state(path)
    assert observe(exe) == observe(make_exe(device, 3))


# --- saving -----------------------------------------------------------------------------------------


def _special_target(kind: str, path: Path, tmp_path: Path) -> None:
    if kind == "symlink":
        (tmp_path / "pointee").write_bytes(b"keep me")
        path.symlink_to(tmp_path / "pointee")
    elif kind == "dangling symlink":
        path.symlink_to(tmp_path / "nowhere")
    elif kind == "fifo":
        os.mkfifo(path)
    elif kind == "device":
        try:  # a node like /dev/null, made in tmp_path (root only)
            os.mknod(path, stat.S_IFCHR | 0o600, os.makedev(1, 3))
        except PermissionError:
            pytest.skip("making a device node needs root")
    else:
        path.mkdir()


@pytest.mark.parametrize("kind", ["symlink", "dangling symlink", "fifo", "device", "directory"])
def test_save_refuses_a_target_that_is_not_a_regular_file(tmp_path, kind, device) -> None:
    path = tmp_path / "s.st"
    _special_target(kind, path, tmp_path)
    before = os.lstat(path)
    with pytest.raises(oi.StateError) as info:
        make_exe(device, 1).save_state(path)
    assert "not a regular file" in info.value.message
    assert str(info.value).startswith(f"{path}: error: ")
    after = os.lstat(path)
    assert (after.st_mode, after.st_ino, after.st_rdev) == (before.st_mode, before.st_ino, before.st_rdev)
    if kind == "symlink":
        assert (tmp_path / "pointee").read_bytes() == b"keep me"
    assert not [p for p in tmp_path.iterdir() if ".tmp" in p.name]


def test_save_over_a_regular_file_still_works(tmp_path, device) -> None:
    path = tmp_path / "s.st"
    path.write_bytes(b"old")
    make_exe(device, 2).save_state(path)
    fresh = make_exe(device)
    fresh.load_state(path)
    assert int(fresh.state("a")) == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s.st"]


def dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_save_removes_stale_temporaries_of_its_target(tmp_path, device) -> None:
    dead = dead_pid()
    stale = tmp_path / f".s.st.tmp-{dead}-0123abcd"
    live = tmp_path / f".s.st.tmp-{os.getpid()}-89abcdef"  # a save in progress (this process)
    other = tmp_path / f".other.st.tmp-{dead}-0123abcd"  # another target's: not this save's business
    lookalike = tmp_path / f".s.st.tmp-{dead}-notours"
    for p in (stale, live, other, lookalike):
        p.write_bytes(b"partial")
    make_exe(device, 1).save_state(tmp_path / "s.st")
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["s.st", live.name, other.name, lookalike.name])


SLOW_SAVE = """
import os, sys, time
import numpy as np
import oi_compiler as oi
src = "dynamic { x: f32[4]; } persistent { t: i32 @init(0); } block entry { cache.increment t; }"
exe = oi.Simulator(None, oi.parse_graph(src, "kill.oi"), device="reference").make_executor()
exe.step()
os.fsync = lambda fd: time.sleep(600)  # the save hangs with its temporary written: kill it there
exe.save_state(sys.argv[1])
"""


def test_a_save_killed_midway_leaves_a_temporary_the_next_save_removes(tmp_path, device) -> None:
    path = tmp_path / "s.st"
    path.write_bytes(b"old state")
    env = {**os.environ, "PYTHONPATH": str(Path(oi.__file__).parents[1])}
    child = subprocess.Popen([sys.executable, "-c", textwrap.dedent(SLOW_SAVE), str(path)], env=env)
    try:
        deadline = time.monotonic() + 60
        while not [p for p in tmp_path.iterdir() if p.name.startswith(".s.st.")]:
            assert child.poll() is None, "the saving process ended early"
            assert time.monotonic() < deadline, "no temporary file appeared"
            time.sleep(0.01)
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()
    left = [p.name for p in tmp_path.iterdir() if p.name != "s.st"]
    assert left and all(name.startswith(f".s.st.tmp-{child.pid}-") for name in left)
    assert path.read_bytes() == b"old state"
    make_exe(device, 1).save_state(path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s.st"]
    fresh = make_exe(device)
    fresh.load_state(path)
    assert int(fresh.state("a")) == 1
