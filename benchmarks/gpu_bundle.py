"""The compiler's dependencies in one compressed file, for the lent GPU machine that lacks them.

The lent GPU machine has Python with numpy, cuda-bindings, CuPy, PyTorch and Triton, but not xDSL,
llvmlite or ml_dtypes, and no package registry; only 64 MiB of ignored files travel there with the
working tree. `build` (here, with the project's venv) packs what `import oi_compiler` and the PTX
backend need beyond that into build/gpu_bundle/oi_site.tar.xz (ignored; about 40 MiB):

- xdsl and its dependencies immutabledict, ordered_set and typing_extensions (pure Python);
- llvmlite, its libllvmlite.so stripped (`strip --strip-unneeded`, 170 -> 152 MiB) before xz: the
  .so is loaded through ctypes, so one copy serves every Python version;
- ml_dtypes, which oi_compiler imports unconditionally (backend/jit.py, backend/llvm_types.py) and
  which is a C extension per Python version: the venv's own plus the same version's manylinux
  wheels for `--pythons` (3.11, 3.12, 3.13 by default; fetched once with `pip download` into
  build/gpu_bundle_wheels/), their `_ml_dtypes_ext.cpython-3XY-*.so` side by side in one package;
- libdevice.10.bc (the PTX backend links it for exp, log...), from `ptx.libdevice_path()`.

Then, on the GPU machine, from the repository root (build/gpu_bundle carried along):

    python benchmarks/gpu_bundle.py run benchmarks/gpu_decode.py [ARGS...]

unpacks the bundle into /tmp/oi_site (once: a marker holds the bundle's digest) and runs the
script with PYTHONPATH=/tmp/oi_site:<repository root> and OI_LIBDEVICE set, returning its exit
status. `unpack --into DIR` only unpacks (and prints the two variables to export); `check` unpacks
into a temporary folder and imports the compiler from it in a child Python that has numpy and the
bundle only (here: the venv's numpy is linked in), compiling a small PTX kernel, then runs
`gpu_device_check.py --quick` and `gpu_decode.py --smoke --sizes tiny` there with the kernels
emulated.

    python benchmarks/gpu_bundle.py build [--pythons 3.11,3.12,3.13] [--level 6]
    python benchmarks/gpu_bundle.py check
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.metadata
import importlib.util
import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BUNDLE_DIR = ROOT / "build" / "gpu_bundle"
WHEELS_DIR = ROOT / "build" / "gpu_bundle_wheels"
ARCHIVE = "oi_site.tar.xz"
MANIFEST = "manifest.json"
DEFAULT_INTO = Path("/tmp/oi_site")
MARKER = ".oi_bundle_digest"
LIMIT_MIB = 60  # the carry limit is 64 MiB for everything
PYTHONS = ("3.11", "3.12", "3.13")
PURE = ("xdsl", "immutabledict", "ordered_set", "typing_extensions")  # module names
SKIP_PARTS = {"__pycache__", "tests"}


# ============================================================================= build (here)


def _module_path(name: str) -> Path:
    spec = importlib.util.find_spec(name)
    if spec is None or spec.origin is None:
        raise SystemExit(f"gpu_bundle: {name} is not installed in this Python ({sys.executable})")
    origin = Path(spec.origin)
    return origin.parent if origin.name == "__init__.py" else origin


def _add_tree(tar: tarfile.TarFile, source: Path, arcname: str, skip_so: bool = False) -> None:
    if source.is_file():
        tar.add(source, arcname)
        return
    for path in sorted(source.rglob("*")):
        relative = path.relative_to(source)
        if path.is_dir() or SKIP_PARTS.intersection(relative.parts) or path.suffix == ".pyc":
            continue
        if skip_so and path.suffix == ".so":
            continue
        tar.add(path, f"{arcname}/{relative}")


def _ml_dtypes_wheels(pythons: list[str], version: str) -> list[Path]:
    """The manylinux x86_64 wheels of ml_dtypes `version` for each of `pythons` (pip download, cached)."""
    WHEELS_DIR.mkdir(parents=True, exist_ok=True)
    wheels = []
    for python in pythons:
        tag = python.replace(".", "")
        found = sorted(WHEELS_DIR.glob(f"ml_dtypes-{version}-cp{tag}-cp{tag}-*x86_64*.whl"))
        if not found:
            command = [sys.executable, "-m", "pip", "download", f"ml_dtypes=={version}", "--no-deps",
                       "--only-binary=:all:", "--python-version", python, "--implementation", "cp",
                       "--platform", "manylinux_2_28_x86_64", "--platform", "manylinux_2_27_x86_64",
                       "--platform", "manylinux_2_17_x86_64", "--platform", "manylinux2014_x86_64",
                       "-d", str(WHEELS_DIR), "-q"]  # fmt: skip
            done = subprocess.run(command, capture_output=True, text=True)
            found = sorted(WHEELS_DIR.glob(f"ml_dtypes-{version}-cp{tag}-cp{tag}-*x86_64*.whl"))
            if done.returncode or not found:
                print(f"gpu_bundle: no ml_dtypes {version} wheel for Python {python}: "
                      f"{(done.stderr or done.stdout).strip().splitlines()[-1:]}", file=sys.stderr)  # fmt: skip
                continue
        wheels.append(found[0])
    return wheels


def _add_ml_dtypes(tar: tarfile.TarFile, pythons: list[str]) -> list[str]:
    """ml_dtypes' Python files once and its extension for this Python and each of `pythons`."""
    import zipfile

    local = _module_path("ml_dtypes")
    _add_tree(tar, local, "site/ml_dtypes")  # the .py files and this venv's extension
    abis = sorted({p.name.split(".")[1] for p in local.glob("_ml_dtypes_ext.*.so")})
    for wheel in _ml_dtypes_wheels(pythons, importlib.metadata.version("ml_dtypes")):
        with zipfile.ZipFile(wheel) as archive:
            for name in archive.namelist():
                if name.startswith("ml_dtypes/_ml_dtypes_ext.") and name.endswith(".so"):
                    abi = name.split(".")[1]
                    if abi in abis:
                        continue
                    data = archive.read(name)
                    info = tarfile.TarInfo(f"site/{name}")
                    info.size, info.mode, info.mtime = len(data), 0o755, int(time.time())
                    tar.addfile(info, io.BytesIO(data))
                    abis.append(abi)
    return sorted(abis)


def _stripped_llvmlite_so(work: Path) -> Path:
    so = _module_path("llvmlite") / "binding" / "libllvmlite.so"
    strip = shutil.which("strip")
    if strip is None:
        print("gpu_bundle: no `strip`: libllvmlite.so goes in unstripped", file=sys.stderr)
        return so
    out = work / "libllvmlite.so"
    subprocess.run([strip, "--strip-unneeded", "-o", str(out), str(so)], check=True)
    return out


def _compress(tar_path: Path, out: Path, level: int) -> None:
    xz = shutil.which("xz")
    if xz is not None:  # all cores
        with open(out, "wb") as f:
            subprocess.run([xz, f"-{level}", "-T0", "-c", str(tar_path)], stdout=f, check=True)
        return
    import lzma

    with open(tar_path, "rb") as src, lzma.open(out, "wb", preset=level) as dst:
        shutil.copyfileobj(src, dst, 1 << 20)


def build(out: Path = BUNDLE_DIR, pythons: list[str] | None = None, level: int = 6) -> dict:
    began = time.perf_counter()
    out.mkdir(parents=True, exist_ok=True)
    versions = {name: importlib.metadata.version(dist) for name, dist in
                (("xdsl", "xdsl"), ("llvmlite", "llvmlite"), ("ml_dtypes", "ml_dtypes"),
                 ("immutabledict", "immutabledict"), ("ordered_set", "ordered-set"),
                 ("typing_extensions", "typing_extensions"))}  # fmt: skip
    from oi_compiler.backend.ptx import libdevice_path

    with tempfile.TemporaryDirectory(prefix="gpu_bundle_", dir=out.parent) as tmp:
        work = Path(tmp)
        tar_path = work / "oi_site.tar"
        with tarfile.open(tar_path, "w", format=tarfile.PAX_FORMAT) as tar:
            for name in PURE:
                source = _module_path(name)
                _add_tree(tar, source, f"site/{source.name}")
            _add_tree(tar, _module_path("llvmlite"), "site/llvmlite", skip_so=True)
            tar.add(_stripped_llvmlite_so(work), "site/llvmlite/binding/libllvmlite.so")
            abis = _add_ml_dtypes(tar, list(pythons or PYTHONS))
            tar.add(libdevice_path(), "libdevice/libdevice.10.bc")
        raw = tar_path.stat().st_size
        _compress(tar_path, work / ARCHIVE, level)
        shutil.move(str(work / ARCHIVE), out / ARCHIVE)
    archive = out / ARCHIVE
    digest = hashlib.sha256(archive.read_bytes()).hexdigest()
    manifest = {"archive": ARCHIVE, "sha256": digest, "bytes": archive.stat().st_size, "unpacked_bytes": raw,
                "versions": versions, "ml_dtypes_abis": abis, "built_with": sys.version.split()[0]}  # fmt: skip
    (out / MANIFEST).write_text(json.dumps(manifest, indent=1) + "\n")
    mib = manifest["bytes"] / 2**20
    print(f"gpu_bundle: {archive.relative_to(ROOT) if archive.is_relative_to(ROOT) else archive} "
          f"{mib:.1f} MiB ({raw / 2**20:.0f} MiB unpacked) in {time.perf_counter() - began:.0f} s; "
          f"ml_dtypes for {', '.join(abis)}")  # fmt: skip
    if mib > LIMIT_MIB:
        raise SystemExit(f"gpu_bundle: {mib:.1f} MiB is over the {LIMIT_MIB} MiB budget")
    return manifest


# ============================================================================= unpack and run (there)


def _manifest(bundle: Path) -> dict:
    path = bundle / MANIFEST
    if not path.exists():
        raise SystemExit(f"gpu_bundle: no {path}: run `python benchmarks/gpu_bundle.py build` where the venv is, "
                         f"and carry {bundle.relative_to(ROOT) if bundle.is_relative_to(ROOT) else bundle}")  # fmt: skip
    return json.loads(path.read_text())


def unpack(bundle: Path = BUNDLE_DIR, into: Path = DEFAULT_INTO, quiet: bool = False) -> Path:
    """Unpack `bundle` into `into` (skipped when the marker says this very bundle is there); the site dir."""
    manifest = _manifest(bundle)
    marker = into / MARKER
    if marker.exists() and marker.read_text().strip() == manifest["sha256"]:
        return into / "site"
    began = time.perf_counter()
    if into.exists():
        shutil.rmtree(into)
    into.mkdir(parents=True)
    with tarfile.open(bundle / manifest["archive"], "r:xz") as tar:
        if hasattr(tarfile, "data_filter"):
            tar.extractall(into, filter="data")
        else:  # Python < 3.12 without the backported filters
            tar.extractall(into)  # noqa: S202 - our own archive
    marker.write_text(manifest["sha256"] + "\n")
    abi = f"cpython-{sys.version_info.major}{sys.version_info.minor}-"
    if not quiet:
        print(f"gpu_bundle: unpacked into {into} in {time.perf_counter() - began:.1f} s", file=sys.stderr)
    if not any(a.startswith(abi) for a in manifest.get("ml_dtypes_abis", [])):
        print(f"gpu_bundle: WARNING: the bundle's ml_dtypes has no extension for this Python ({abi}; it has "
              f"{', '.join(manifest.get('ml_dtypes_abis', []))}): `import oi_compiler` will fail. Rebuild with "
              f"--pythons {sys.version_info.major}.{sys.version_info.minor}", file=sys.stderr)  # fmt: skip
    return into / "site"


def environment(into: Path, base: dict[str, str] | None = None) -> dict[str, str]:
    """`base` (os.environ) with PYTHONPATH = the unpacked site, the repository root, then what was
    there, and OI_LIBDEVICE = the bundled libdevice unless it is set."""
    env = dict(os.environ if base is None else base)
    paths = [str(into / "site"), str(ROOT)] + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else [])
    env["PYTHONPATH"] = os.pathsep.join(paths)
    env.setdefault("OI_LIBDEVICE", str(into / "libdevice" / "libdevice.10.bc"))
    return env


def run(script: str, args: list[str], bundle: Path = BUNDLE_DIR, into: Path = DEFAULT_INTO) -> int:
    unpack(bundle, into)
    return subprocess.call([sys.executable, script, *args], env=environment(into), cwd=ROOT)


CHECK = """
import sys
import numpy, xdsl, llvmlite, ml_dtypes
import oi_compiler as oi
from oi_compiler.backend.ptx import NvptxTarget, emit_ptx
from oi_compiler.graph import parse_mlir
sys.path.insert(0, "benchmarks")
import gpu_check
ptx = emit_ptx(parse_mlir(gpu_check.saxpy_exp(256), "k.mlir"), NvptxTarget("sm_90"))
assert ".entry saxpy_exp" in ptx, ptx[:200]
for module in (xdsl, llvmlite, ml_dtypes, oi):
    print(module.__name__, module.__file__)
print("ok: compiled a PTX kernel from the bundle", len(ptx), "chars")
"""


def check(bundle: Path = BUNDLE_DIR) -> int:
    """Unpack into a temporary folder; import the compiler from it in a Python that sees numpy, the
    bundle and the repository only (`-S`: no site-packages), emit a PTX kernel (libdevice linked)
    and run gpu_decode.py's smoke mode (emulated kernels) there."""
    import numpy

    with tempfile.TemporaryDirectory(prefix="oi_site_") as tmp:
        into = Path(tmp) / "oi_site"
        unpack(bundle, into)
        numpy_only = Path(tmp) / "numpy_only"
        numpy_only.mkdir()
        numpy_dir = Path(numpy.__file__).parent
        for path in (numpy_dir, numpy_dir.parent / "numpy.libs"):
            if path.exists():
                (numpy_only / path.name).symlink_to(path)
        env = environment(into, {k: v for k, v in os.environ.items() if k != "PYTHONPATH"})
        env["PYTHONPATH"] += os.pathsep + str(numpy_only)
        env.pop("OI_LIBDEVICE", None)
        env["OI_LIBDEVICE"] = str(into / "libdevice" / "libdevice.10.bc")
        done = subprocess.run([sys.executable, "-S", "-c", CHECK], env=env, cwd=ROOT, capture_output=True, text=True)
        print(done.stdout + done.stderr, end="", flush=True)
        if done.returncode:
            return done.returncode
        # the device check (`--quick`) and the decode benchmark's smoke mode too, their kernels
        # emulated: the CPU JIT from the bundle
        env["OI_GPU_EMULATE"] = "1"
        env["OI_CACHE_DIR"] = str(Path(tmp) / "cache")
        status = subprocess.call([sys.executable, "-S", "benchmarks/gpu_device_check.py", "--quick"], env=env, cwd=ROOT)
        smoke = [sys.executable, "-S", "benchmarks/gpu_decode.py", "--smoke", "--sizes", "tiny"]
        return status or subprocess.call(smoke, env=env, cwd=ROOT)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--bundle", type=Path, default=BUNDLE_DIR, help="the bundle folder (default %(default)s)")
    sub = p.add_subparsers(dest="command", required=True)
    b = sub.add_parser("build", help="pack the bundle (here, with the project's venv)")
    b.add_argument("--pythons", default=",".join(PYTHONS), help="ml_dtypes extensions for these (default %(default)s)")
    b.add_argument("--level", type=int, default=6, help="xz preset (default 6)")
    u = sub.add_parser("unpack", help="unpack into a folder and print the environment to use")
    u.add_argument("--into", type=Path, default=DEFAULT_INTO)
    r = sub.add_parser("run", help="unpack (once) and run a Python script with the bundle on its path")
    r.add_argument("--into", type=Path, default=DEFAULT_INTO)
    r.add_argument("script")
    r.add_argument("args", nargs=argparse.REMAINDER)
    sub.add_parser("check", help="unpack into a temporary folder and compile a PTX kernel from it alone")
    args = p.parse_args(argv)
    if args.command == "build":
        build(args.bundle, [v for v in args.pythons.split(",") if v], args.level)
        return 0
    if args.command == "unpack":
        unpack(args.bundle, args.into)
        env = environment(args.into, {})
        print(f"export PYTHONPATH={env['PYTHONPATH']}:$PYTHONPATH\nexport OI_LIBDEVICE={env['OI_LIBDEVICE']}")
        return 0
    if args.command == "run":
        return run(args.script, args.args, args.bundle, args.into)
    return check(args.bundle)


if __name__ == "__main__":
    sys.exit(main())
