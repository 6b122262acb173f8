"""The JIT's compile cache: memory hits, disk hits in a fresh process, corrupt entries, clearing.

`test_cold_memory_and_disk_timings` prints the three timings it measures; runs on an AMD Zen 3
gave `cold compile 0.055-0.10 s, memory hit 0.004-0.007 s, disk hit (fresh process) 0.017-0.03 s`.
"""

from __future__ import annotations

import hashlib
import json
import os
import struct
import subprocess
import sys
import textwrap
import time
import warnings
from pathlib import Path

import numpy as np
import pytest
from xdsl.context import Context
from xdsl.dialects import arith, builtin, func, math, memref, scf
from xdsl.parser import Parser

from oi_compiler.backend import compile_cache
from oi_compiler.backend.jit import compile_module

ROOT = Path(__file__).resolve().parents[2]

SOURCE = """
func.func @matmul(%A: memref<?x?xf32>, %B: memref<?x?xf32>, %C: memref<?x?xf32>) {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %zero = arith.constant 0.0 : f32
  %m = memref.dim %A, %c0 : memref<?x?xf32>
  %k = memref.dim %A, %c1 : memref<?x?xf32>
  %n = memref.dim %B, %c1 : memref<?x?xf32>
  scf.for %i = %c0 to %m step %c1 {
    scf.for %j = %c0 to %n step %c1 {
      %sum = scf.for %p = %c0 to %k step %c1 iter_args(%acc = %zero) -> (f32) {
        %a = memref.load %A[%i, %p] : memref<?x?xf32>
        %b = memref.load %B[%p, %j] : memref<?x?xf32>
        %prod = arith.mulf %a, %b fastmath<fast> : f32
        %next = arith.addf %acc, %prod fastmath<fast> : f32
        scf.yield %next : f32
      }
      memref.store %sum, %C[%i, %j] : memref<?x?xf32>
    }
  }
  func.return
}
func.func @gelu(%x: memref<?xf32>, %y: memref<?xf32>) {
  %c0 = arith.constant 0 : index
  %c1 = arith.constant 1 : index
  %half = arith.constant 0.5 : f32
  %one = arith.constant 1.0 : f32
  %k = arith.constant 0.70710678 : f32
  %n = memref.dim %x, %c0 : memref<?xf32>
  scf.for %i = %c0 to %n step %c1 {
    %v = memref.load %x[%i] : memref<?xf32>
    %s = arith.mulf %v, %k : f32
    %e = math.erf %s : f32
    %t = arith.addf %e, %one : f32
    %u = arith.mulf %v, %t : f32
    %w = arith.mulf %u, %half : f32
    memref.store %w, %y[%i] : memref<?xf32>
  }
  func.return
}
"""

FRESH_PROCESS = textwrap.dedent(
    """
    import json, sys, time
    import numpy as np
    from xdsl.context import Context
    from xdsl.dialects import arith, builtin, func, math, memref, scf
    from xdsl.parser import Parser
    from oi_compiler.backend import jit

    def no_codegen(*args):
        raise AssertionError("a disk hit must not generate code")

    jit.generate_object = no_codegen
    ctx = Context()
    for dialect in (builtin.Builtin, func.Func, arith.Arith, math.Math, scf.Scf, memref.MemRef):
        ctx.load_dialect(dialect)
    module = Parser(ctx, sys.stdin.read()).parse_module()
    start = time.perf_counter()
    compiled = jit.compile_module(module)
    seconds = time.perf_counter() - start
    a = np.arange(6, dtype=np.float32).reshape(2, 3)
    c = np.zeros((2, 2), np.float32)
    compiled.function("matmul")(a, a.T.copy(), c)
    print(json.dumps({"source": compiled.source, "seconds": seconds, "ok": bool(np.allclose(c, a @ a.T))}))
    """
)


@pytest.fixture
def cache_dir(tmp_path, monkeypatch) -> Path:
    directory = tmp_path / "jit"
    monkeypatch.setenv("OI_CACHE_DIR", str(directory))
    compile_cache.clear_cache()
    return directory


def parse(text: str = SOURCE) -> builtin.ModuleOp:
    ctx = Context()
    for dialect in (builtin.Builtin, func.Func, arith.Arith, math.Math, scf.Scf, memref.MemRef):
        ctx.load_dialect(dialect)
    return Parser(ctx, text).parse_module()


def compile_in_fresh_process(directory: Path) -> dict:
    env = {**os.environ, "OI_CACHE_DIR": str(directory), "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, "-c", FRESH_PROCESS], input=SOURCE, env=env, cwd=ROOT,
                          capture_output=True, text=True, timeout=120)  # fmt: skip
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def only_entry(directory: Path) -> Path:
    (entry,) = directory.glob("*.oiobj")
    return entry


def test_cold_memory_and_disk_timings(cache_dir, capsys):
    first, second = parse(), parse()
    start = time.perf_counter()
    cold = compile_module(first)
    cold_s = time.perf_counter() - start
    start = time.perf_counter()
    warm = compile_module(second)
    memory_s = time.perf_counter() - start
    disk = compile_in_fresh_process(cache_dir)

    assert (cold.source, warm.source, disk["source"]) == ("compiled", "memory", "disk")
    assert disk["ok"]
    assert memory_s < cold_s
    with capsys.disabled():
        print(f"\njit cache: cold compile {cold_s:.3f} s, memory hit {memory_s:.4f} s, "
              f"disk hit (fresh process) {disk['seconds']:.3f} s")  # fmt: skip


def test_memory_hit_shares_native_code_and_ir(cache_dir):
    first, second = compile_module(parse()), compile_module(parse())
    assert second.source == "memory" and second.llvm_ir == first.llvm_ir
    x = np.linspace(-2, 2, 9, dtype=np.float32)
    y1, y2 = np.zeros_like(x), np.zeros_like(x)
    first.function("gelu")(x, y1)
    second.function("gelu")(x, y2)
    np.testing.assert_array_equal(y1, y2)


@pytest.mark.parametrize("damage", ["garbage", "truncated", "flipped"])
def test_corrupt_disk_entries_are_ignored_and_rewritten(cache_dir, damage):
    compile_module(parse())
    entry = only_entry(cache_dir)
    good = entry.read_bytes()
    damaged = {"garbage": b"not an object file",
               "truncated": good[: len(good) // 2],
               "flipped": good[:-10] + bytes([good[-10] ^ 0xFF]) + good[-9:]}[damage]  # fmt: skip
    compile_cache.clear_cache()
    entry.write_bytes(damaged)
    assert compile_cache.disk_get(entry.stem) is None

    recompiled = compile_module(parse())
    assert recompiled.source == "compiled"
    assert entry.read_bytes() == good
    assert compile_in_fresh_process(cache_dir)["source"] == "disk"


def test_clear_cache_forgets_memory_and_disk(cache_dir):
    compile_module(parse())
    assert only_entry(cache_dir).exists()
    compile_cache.clear_cache()
    assert not list(cache_dir.glob("*.oiobj"))
    assert compile_module(parse()).source == "compiled"


def test_unwritable_cache_directory_is_not_an_error(tmp_path, monkeypatch):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    monkeypatch.setenv("OI_CACHE_DIR", str(blocker / "jit"))
    compile_cache.clear_cache()
    assert compile_module(parse()).source == "compiled"


def test_key_covers_ir_target_and_toolchain():
    base = compile_cache.cache_key("ir", "x86_64-unknown-linux-gnu", "znver3", "+avx2")
    assert base == compile_cache.cache_key("ir", "x86_64-unknown-linux-gnu", "znver3", "+avx2")
    assert len({base,
                compile_cache.cache_key("ir2", "x86_64-unknown-linux-gnu", "znver3", "+avx2"),
                compile_cache.cache_key("ir", "aarch64-unknown-linux-gnu", "znver3", "+avx2"),
                compile_cache.cache_key("ir", "x86_64-unknown-linux-gnu", "skylake", "+avx2"),
                compile_cache.cache_key("ir", "x86_64-unknown-linux-gnu", "znver3", "-avx2")}) == 5  # fmt: skip


def test_default_directory_is_under_the_home_cache(monkeypatch):
    monkeypatch.delenv("OI_CACHE_DIR", raising=False)
    assert compile_cache.cache_dir() == Path.home() / ".cache" / "oi_compiler" / "jit"


# ----------------------------------------------------------------------------- an untrusted cache directory

PROBE = "import sys; from oi_compiler.backend import compile_cache; print(compile_cache.disk_get(sys.argv[1]))"

OTHER_SOURCE = SOURCE[SOURCE.index("func.func @gelu") :]


def disk_get_in_a_bounded_process(directory: Path, key: str) -> str:
    """`disk_get(key)` in a child with 1 GiB of address space and 30 s: a read that blocks or never
    ends fails the test instead of hanging it or eating the machine's memory."""

    def limit_memory():
        import resource

        resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30))

    env = {**os.environ, "OI_CACHE_DIR": str(directory), "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, "-c", PROBE, key], env=env, cwd=ROOT, capture_output=True, text=True,
                          timeout=30, preexec_fn=limit_memory, check=False)  # fmt: skip
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def forget_memory_only() -> None:
    with compile_cache._lock:
        compile_cache._memory.clear()


@pytest.mark.parametrize("plant", ["fifo", "link to /dev/zero", "link to a good entry"])
def test_an_entry_that_is_not_a_regular_file_is_a_miss_and_is_replaced(cache_dir, tmp_path, plant):
    compile_module(parse())
    entry = only_entry(cache_dir)
    good = entry.read_bytes()
    entry.unlink()
    if plant == "fifo":
        os.mkfifo(entry)
    elif plant == "link to /dev/zero":
        entry.symlink_to("/dev/zero")
    else:
        (tmp_path / "elsewhere.oiobj").write_bytes(good)
        entry.symlink_to(tmp_path / "elsewhere.oiobj")
    assert disk_get_in_a_bounded_process(cache_dir, entry.stem) == "None"
    assert compile_cache.disk_get(entry.stem) is None

    forget_memory_only()
    assert compile_module(parse()).source == "compiled"
    assert entry.is_file() and not entry.is_symlink() and entry.read_bytes() == good


def test_an_entry_over_the_size_limit_is_a_miss(cache_dir, monkeypatch):
    compile_module(parse())
    entry = only_entry(cache_dir)
    good = entry.read_bytes()
    monkeypatch.setattr(compile_cache, "MAX_ENTRY_BYTES", len(good) - 1)
    assert compile_cache.disk_get(entry.stem) is None
    forget_memory_only()
    assert compile_module(parse()).source == "compiled"  # and not written: it could never be read
    monkeypatch.setattr(compile_cache, "MAX_ENTRY_BYTES", len(good))
    assert compile_cache.disk_get(entry.stem) is not None


def test_directory_and_entries_are_private(cache_dir):
    previous = os.umask(0)
    try:
        compile_module(parse())
    finally:
        os.umask(previous)
    assert cache_dir.stat().st_mode & 0o777 == 0o700
    assert only_entry(cache_dir).stat().st_mode & 0o777 == 0o600
    assert not list(cache_dir.glob("*.tmp"))


@pytest.mark.parametrize("why", ["group-writable", "world-writable", "another user's"])
def test_a_directory_that_is_not_private_is_not_used(cache_dir, monkeypatch, why):
    compile_module(parse())
    entry = only_entry(cache_dir)
    before = entry.stat()
    forget_memory_only()
    if why == "another user's":
        uid = os.getuid()
        monkeypatch.setattr(os, "getuid", lambda: uid + 1)
    else:
        cache_dir.chmod(0o770 if why == "group-writable" else 0o777)

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert compile_module(parse()).source == "compiled"  # the planted entry is not loaded
        assert compile_cache.disk_get(entry.stem) is None
        compile_cache.clear_cache()
        assert compile_module(parse()).source == "compiled"
    (warning,) = [w for w in caught if "compile cache" in str(w.message)]  # one, however often it is used
    assert warning.category is RuntimeWarning and str(cache_dir) in str(warning.message)
    after = entry.stat()
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)  # neither written nor removed


def test_an_entry_under_another_key_is_a_miss_and_is_rewritten(cache_dir):
    compile_module(parse())
    first = only_entry(cache_dir)
    compile_module(parse(OTHER_SOURCE))
    (other,) = set(cache_dir.glob("*.oiobj")) - {first}
    good = other.read_bytes()
    other.write_bytes(first.read_bytes())  # a valid entry, checksum and all, under the wrong name
    forget_memory_only()
    assert compile_cache.disk_get(other.stem) is None
    assert compile_module(parse(OTHER_SOURCE)).source == "compiled"
    assert other.read_bytes() == good


@pytest.mark.parametrize("forgery", ["garbage with its checksum", "another compiler's entry"])
def test_a_checksummed_entry_not_bound_to_this_compiler_and_key_is_a_miss(cache_dir, monkeypatch, forgery):
    compile_module(parse())
    entry = only_entry(cache_dir)
    good = entry.read_bytes()
    if forgery == "garbage with its checksum":  # an object file "\xde\xad\xbe\xef" and empty IR
        body = struct.pack("<Q", 4) + b"\xde\xad\xbe\xef" + struct.pack("<Q", 0)
        entry.write_bytes(compile_cache._MAGIC + hashlib.sha256(body).digest() + body)
    else:
        stored = compile_cache.disk_get(entry.stem)
        with monkeypatch.context() as patch:
            patch.setattr(compile_cache, "COMPILER", "oi_compiler 0.0.1, llvmlite 0.1, cache format 0")
            compile_cache.disk_put(entry.stem, stored)
        assert entry.read_bytes() != good
    forget_memory_only()
    assert compile_cache.disk_get(entry.stem) is None
    assert compile_module(parse()).source == "compiled"
    assert entry.read_bytes() == good


def test_the_writer_does_not_follow_a_link_at_its_temporary_name(cache_dir, tmp_path, monkeypatch):
    victim = tmp_path / "victim"
    victim.write_bytes(b"precious")
    cache_dir.mkdir(mode=0o700)
    monkeypatch.setattr(compile_cache.secrets, "token_hex", lambda n: "planted")
    (cache_dir / "k.planted.tmp").symlink_to(victim)
    compile_cache.disk_put("k", compile_cache.CacheEntry(b"object", "ir"))
    assert victim.read_bytes() == b"precious"
    assert (cache_dir / "k.planted.tmp").is_symlink()
    assert compile_cache.disk_get("k") is None  # the write was given up, not redirected
