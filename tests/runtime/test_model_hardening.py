"""Hardening of model files and constants: a model file changed under an open model, `.npz`
archives whose sizes lie, `Model.save` onto special files and after a killed save, and
constants that no model backs."""

from __future__ import annotations

import io
import os
import subprocess
import sys
import time
import tracemalloc
import zipfile
import zlib
from pathlib import Path

import numpy as np
import pytest

import oi_compiler as oi
from oi_compiler.tools.oi_run import main as oi_run

ROOT = Path(__file__).resolve().parents[2]

# --- a model file changed while open (item 1) ------------------------------------------------------

# Run in a child process: a memory-mapped read of a shrunk file dies of SIGBUS, which would
# kill pytest itself; here it shows as a negative return code.
CHANGE_WHILE_OPEN = """
import os, shutil, sys
import numpy as np
import oi_compiler as oi

path, how, other = sys.argv[1:]
model = oi.Model.open(path)
if how == "truncate":
    os.truncate(path, 4096)
elif how == "cp":  # `cp other path`: the same file, rewritten in place with other contents
    shutil.copyfile(other, path)
elif how == "rename":  # a new file renamed over the old one (what Model.save does)
    oi.Model.open(other).save(path)
elif how == "read, then truncate":
    model.tensor("w")
    os.truncate(path, 0)
try:
    print("sum", float(np.asarray(model.tensor("w"), np.float64).sum()))
except oi.ModelError as error:
    print("ModelError", error)
"""


@pytest.fixture
def big_and_small(tmp_path: Path) -> tuple[Path, Path]:
    """A model whose tensor spans many pages, and a much smaller one."""
    big = oi.Model({}, {"w": np.ones(1 << 18, np.float32)}).save(tmp_path / "model.oinf")
    small = oi.Model({}, {"w": np.full(4, 2.0, np.float32)}).save(tmp_path / "small.oinf")
    return big, small


def change_while_open(how: str, path: Path, other: Path) -> str:
    done = subprocess.run(
        [sys.executable, "-c", CHANGE_WHILE_OPEN, str(path), how, str(other)],
        check=False, capture_output=True, text=True, timeout=120, cwd=ROOT,
    )  # fmt: skip
    assert done.returncode == 0, f"killed by signal {-done.returncode}" if done.returncode < 0 else done.stderr
    return done.stdout.strip()


@pytest.mark.parametrize("how", ["truncate", "cp"])
def test_a_model_file_changed_in_place_is_a_model_error_not_sigbus(big_and_small, how: str) -> None:
    out = change_while_open(how, *big_and_small)
    assert out.startswith("ModelError") and "changed on disk since it was opened" in out, out


def test_a_model_file_replaced_by_rename_keeps_reading_the_old_data(big_and_small) -> None:
    assert change_while_open("rename", *big_and_small) == f"sum {float(1 << 18)}"


def test_tensors_already_read_stay_readable_after_the_file_shrinks(big_and_small) -> None:
    assert change_while_open("read, then truncate", *big_and_small) == f"sum {float(1 << 18)}"


# --- .npz sizes are claims (item 2) ----------------------------------------------------------------


def npy_header(shape: tuple[int, ...], descr: str = "<f8") -> bytes:
    out = io.BytesIO()
    np.lib.format.write_array_header_1_0(out, {"descr": descr, "fortran_order": False, "shape": shape})
    return out.getvalue()


def lying_npz(path: Path, data: bytes, *, claimed: int, compress_type: int = zipfile.ZIP_DEFLATED) -> Path:
    """An archive with member `w.npy` holding `data`, whose zip directory claims `claimed` bytes."""
    with zipfile.ZipFile(path, "w", compress_type) as archive:
        archive.writestr("w.npy", data)
        archive.getinfo("w.npy").file_size = claimed  # what the central directory will say
    return path


def test_a_member_claiming_a_terabyte_is_refused_before_allocating(tmp_path: Path) -> None:
    count = (2**40 - 128) // 8  # a 1 TiB array: header and data agree with the claim
    header = npy_header((count,))
    path = lying_npz(tmp_path / "big.npz", header + bytes(64), claimed=len(header) + 8 * count)
    with pytest.raises(oi.ModelError, match="w.npy"):
        oi.Model.open(path).tensor("w")


def test_an_oversized_member_is_refused_and_the_limit_can_be_raised(tmp_path: Path) -> None:
    path = oi.Model({}, {"w": np.zeros(4096, np.float32)}).save(tmp_path / "m.npz")
    with pytest.raises(oi.ModelError, match="over the limit of 1000 bytes.*max_tensor_bytes"):
        oi.Model.open(path, max_tensor_bytes=1000)
    assert oi.Model.open(path, max_tensor_bytes=1 << 20).tensor("w").shape == (4096,)


def test_the_npy_header_is_checked_against_the_real_data_before_allocating(tmp_path: Path) -> None:
    """Directory and header agree on 512 MiB, plausible for the compressed bytes (padding after
    the deflate stream), but the stream holds 64 bytes: nothing near 512 MiB may be allocated."""
    count = 2**26
    header = npy_header((count,))
    deflater = zlib.compressobj(wbits=-15)
    stream = deflater.compress(header + bytes(64)) + deflater.flush() + bytes(1 << 20)
    path = tmp_path / "short.npz"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as archive:
        archive.writestr("w.npy", stream)
        info = archive.getinfo("w.npy")
        info.compress_type, info.file_size = zipfile.ZIP_DEFLATED, len(header) + 8 * count
        info.CRC = zlib.crc32(header + bytes(64))  # the real data's: only its length lies
    model = oi.Model.open(path)
    tracemalloc.start()
    try:
        with pytest.raises(oi.ModelError, match="w.npy"):
            model.tensor("w")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 64 << 20


def test_members_compressed_without_a_bounded_reader_are_refused(tmp_path: Path) -> None:
    """bzip2 and lzma members decompress in one unbounded call: a few KiB can become gigabytes."""
    data = npy_header((4,)) + bytes(32)
    path = lying_npz(tmp_path / "b.npz", data, claimed=len(data), compress_type=zipfile.ZIP_BZIP2)
    with pytest.raises(oi.ModelError, match="compression"):
        oi.Model.open(path)


def test_ordinary_compressed_archives_still_open(tmp_path: Path) -> None:
    np.savez_compressed(tmp_path / "c.npz", w=np.arange(6, dtype=np.float32).reshape(2, 3), v=np.asfortranarray(np.eye(3)))
    model = oi.Model.open(tmp_path / "c.npz")
    assert model.tensor("w").tolist() == [[0, 1, 2], [3, 4, 5]]
    assert model.tensor("v").tolist() == np.eye(3).tolist()


# --- saving onto special files, after a killed save (item 10) -------------------------------------


def test_save_refuses_a_symlink_target(tmp_path: Path) -> None:
    real = tmp_path / "real.oinf"
    real.write_bytes(b"precious")
    link = tmp_path / "link.oinf"
    link.symlink_to(real)
    with pytest.raises(oi.ModelError, match="refusing to replace a symbolic link"):
        oi.Model({"D": 1}).save(link)
    assert link.is_symlink() and real.read_bytes() == b"precious"


def test_save_refuses_a_fifo_target(tmp_path: Path) -> None:
    fifo = tmp_path / "pipe.oinf"
    os.mkfifo(fifo)
    with pytest.raises(oi.ModelError, match="refusing to replace a FIFO"):
        oi.Model({"D": 1}).save(fifo)
    assert fifo.is_fifo()


def test_save_refuses_a_directory_target(tmp_path: Path) -> None:
    (tmp_path / "d.npz").mkdir()
    with pytest.raises(oi.ModelError, match="refusing to replace a directory"):
        oi.Model({"D": 1}).save(tmp_path / "d.npz")


KILLED_SAVE = """
import os, sys
import numpy as np
import oi_compiler as oi
from oi_compiler.models import model as module

def die(out, *args):
    out.write(b"partial")
    out.flush()
    os._exit(3)

module.write_oinf = die
oi.Model({}, {"x": np.zeros(4, np.float32)}).save(sys.argv[1])
"""


def dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", ""])
    child.wait()
    return child.pid


def test_a_save_cleans_up_what_a_killed_save_left(tmp_path: Path) -> None:
    target = tmp_path / "m.oinf"
    killed = subprocess.run([sys.executable, "-c", KILLED_SAVE, str(target)], check=False, cwd=ROOT, timeout=120)
    assert killed.returncode == 3
    (left,) = tmp_path.iterdir()
    assert left.name.startswith(".m.oinf.tmp-")
    oi.Model({}, {"x": np.ones(2, np.float32)}).save(target)
    assert [p.name for p in tmp_path.iterdir()] == ["m.oinf"]


def test_only_stale_temporaries_of_the_same_target_are_removed(tmp_path: Path) -> None:
    names = {
        "dead": f".m.oinf.tmp-{dead_pid()}-0badf00d",
        "live": f".m.oinf.tmp-{os.getpid()}-0badf00d",  # a save in progress in this process
        "old": f".m.oinf.tmp-{os.getpid()}-deadbeef",  # ...not written for hours: left over
        "other target": f".n.oinf.tmp-{dead_pid()}-0badf00d",
        "not a temporary": ".m.oinf.tmp-notes",
    }
    for name in names.values():
        (tmp_path / name).write_bytes(b"x")
    hours_ago = time.time() - 3 * 3600
    os.utime(tmp_path / names["old"], (hours_ago, hours_ago))
    oi.Model({"D": 1}).save(tmp_path / "m.oinf")
    left = {p.name for p in tmp_path.iterdir()}
    assert left == {"m.oinf", names["live"], names["other target"], names["not a temporary"]}


# --- constants no model backs (item 12) ------------------------------------------------------------

CONSTANT_GRAPH = "constant { W: f32[2]; } volatile { y: f32[2]; } block entry { op add(W, W) >> y; }"


@pytest.mark.parametrize("device", ["reference", "cpu"])
def test_a_constant_without_a_tensor_is_an_error_naming_it(device: str) -> None:
    graph = oi.parse_graph(CONSTANT_GRAPH, "c.oi")
    with pytest.raises(oi.ModelError, match=r"c.oi:1:12: error: model variable not found: W .*zero_constants=True"):
        oi.Simulator(None, graph, device=device)
    with pytest.raises(oi.ModelError, match="model variable not found: W"):
        oi.Simulator(oi.Model({}, {"V": np.ones(2, np.float32)}), graph, device=device)


@pytest.mark.parametrize("device", ["reference", "cpu"])
def test_zero_constants_opts_in_to_zeros(device: str) -> None:
    graph = oi.parse_graph(CONSTANT_GRAPH, "c.oi")
    exe = oi.Simulator(None, graph, device=device, zero_constants=True).make_executor()
    exe.step()
    assert exe.fetch("y").tolist() == [0.0, 0.0]


@pytest.mark.parametrize(
    ("src", "model"),
    [
        ("constant { W: f32[2] @init(1.5); }", oi.Model()),  # its own value
        ("constant { W: f32[2]; }", oi.Model(metadata={"W": np.full(2, 1.5, np.float32)})),  # metadata tensor
        ("constant { w: f32[2]; }", oi.Model({}, {"w": np.full(2, 1.5, np.float32)})),
    ],
)
def test_constants_with_a_value_need_no_opt_in(src: str, model: oi.Model) -> None:
    name = "w" if "w:" in src else "W"
    graph = oi.parse_graph(f"{src} volatile {{ y: f32[2]; }} block entry {{ op add({name}, {name}) >> y; }}")
    exe = oi.Simulator(model, graph).make_executor()
    exe.step()
    assert exe.fetch("y").tolist() == [3.0, 3.0]


def test_oi_run_without_a_model_names_the_constant(capsys) -> None:
    argv = [str(ROOT / "examples" / "kv_decode.oi"), "--dims", "D=2,T=1", "--feed", "x=[[1, 2]]", "--fetch", "keys"]
    assert oi_run(argv) == 1
    err = capsys.readouterr().err
    assert "model variable not found: Wq" in err and "--zero-constants" in err and "Traceback" not in err
    assert oi_run([*argv, "--zero-constants"]) == 0
    assert "keys (1x1x2) = [[[0., 0.]]]" in capsys.readouterr().out


def test_readme_oi_run_commands_say_how_constants_are_read() -> None:
    """The README's kv_decode command has no model: it must opt in to zero constants."""
    readme = (ROOT / "README.md").read_text()
    commands = [line for line in readme.splitlines() if line.startswith("oi-run examples/kv_decode.oi")]
    assert commands and all("--zero-constants" in line or "--model" in line for line in commands)


def test_zero_constants_is_documented() -> None:
    semantics = (ROOT / "docs" / "semantics.md").read_text()
    assert "zero_constants=True" in semantics and "--zero-constants" in semantics
