"""The GPU check: oi_compiler's PTX kernels run on a real GPU against numpy, and timed against
the vendor's copy and GEMM, in one script with two halves.

    python benchmarks/gpu_check.py emit --out gpu_kernels     # here: the compiler writes PTX + manifest
    python benchmarks/gpu_check.py run gpu_kernels            # on the GPU machine: numpy + a launcher only

`emit` (needs the compiler: xDSL, llvmlite, libdevice) writes one `.ptx` per kernel and
`manifest.json`: each kernel's entry point, signature (the C-ABI packing of
`oi_compiler/runtime/cuda.py`, with the `written` flags the backend's ABI computes), grid and
block, how to make its inputs, the numpy recipe of its expected result and what to time it
against. Every PTX is assembled by `ptxas` when there is one.

`run` imports nothing of the compiler: it loads `oi_compiler/runtime/cuda.py` by file path (that
file needs numpy and cuda-bindings or PyCUDA), so it runs where xDSL and llvmlite are not
installed. For each kernel it makes the inputs, launches on numpy arrays (copied in and out) and
compares with the numpy recipe; GEMMs are also launched in place on PyTorch tensors
(`__cuda_array_interface__`) when torch is there. Then it times, interleaved round by round:
the copy kernel against a device-to-device copy (cuMemcpyDtoD, and CuPy when it imports), the
GEMMs against `torch.matmul` with TF32 off, and prints medians and ratios. Exit status 1 if any
kernel's result is wrong.

Whole decode steps (`device="cuda"` against PyTorch eager and CUDA graphs, and KV append bandwidth
against cuMemcpyDtoD) are `benchmarks/gpu_decode.py`: it needs the compiler on the GPU machine,
which `benchmarks/gpu_bundle.py` packs (benchmarks/README.md, "GPU decode").
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
LAUNCHER_PATH = ROOT / "oi_compiler" / "runtime" / "cuda.py"

# ============================================================================= emit: kernels (MLIR)


def kernel_module(name: str, params: str, body: str) -> str:
    """A gpu.module holding one kernel `name(params)` (generic gpu ops); the body sees the thread
    and block ids and block sizes in x and y, and `%i` = block_id.x * block_dim.x + thread_id.x."""
    types = ", ".join(p.split(":", 1)[1].strip() for p in params.split(",") if p.strip())
    return f"""
builtin.module {{
  "gpu.module"() <{{sym_name = "kernels"}}> ({{
    "gpu.func"() <{{function_type = ({types}) -> (), kernel}}> ({{
    ^bb0({params}):
      %tx = "gpu.thread_id"() <{{dimension = #gpu<dim x>}}> : () -> index
      %ty = "gpu.thread_id"() <{{dimension = #gpu<dim y>}}> : () -> index
      %bx = "gpu.block_id"() <{{dimension = #gpu<dim x>}}> : () -> index
      %by = "gpu.block_id"() <{{dimension = #gpu<dim y>}}> : () -> index
      %bdx = "gpu.block_dim"() <{{dimension = #gpu<dim x>}}> : () -> index
      %bdy = "gpu.block_dim"() <{{dimension = #gpu<dim y>}}> : () -> index
      %base = arith.muli %bx, %bdx : index
      %i = arith.addi %base, %tx : index
{body}
      "gpu.return"() : () -> ()
    }}) {{sym_name = "{name}"}} : () -> ()
  }}) : () -> ()
}}
"""


def saxpy_exp(n: int) -> str:
    t = f"memref<{n}xf32>"
    return kernel_module("saxpy_exp", f"%x: {t}, %y: {t}, %a: f32", f"""
      %n = arith.constant {n} : index
      %in = arith.cmpi slt, %i, %n : index
      scf.if %in {{
        %xi = memref.load %x[%i] : {t}
        %e = math.exp %xi : f32
        %yi = memref.load %y[%i] : {t}
        %ax = arith.mulf %a, %e : f32
        %s = arith.addf %ax, %yi : f32
        memref.store %s, %y[%i] : {t}
      }}""")


def reverse_blocks(n: int, block: int) -> str:
    """Each block reverses its `block` elements in place through shared memory."""
    t = f"memref<{n}xf32>"
    return kernel_module("reverse_blocks", f"%x: {t}", f"""
      %tile = memref.alloca() : memref<{block}xf32, 3>
      %v = memref.load %x[%i] : {t}
      memref.store %v, %tile[%tx] : memref<{block}xf32, 3>
      "gpu.barrier"() : () -> ()
      %last = arith.constant {block - 1} : index
      %j = arith.subi %last, %tx : index
      %w = memref.load %tile[%j] : memref<{block}xf32, 3>
      memref.store %w, %x[%i] : {t}""")


def copy(n: int) -> str:
    t = f"memref<{n}xf32>"
    return kernel_module("copy", f"%x: {t}, %y: {t}", f"""
      %n = arith.constant {n} : index
      %in = arith.cmpi slt, %i, %n : index
      scf.if %in {{
        %v = memref.load %x[%i] : {t}
        memref.store %v, %y[%i] : {t}
      }}""")


def _gemm_params(m: int, n: int, k: int) -> tuple[str, str, str, str]:
    a, b, c = f"memref<{m}x{k}xf32>", f"memref<{k}x{n}xf32>", f"memref<{m}x{n}xf32>"
    return f"%A: {a}, %B: {b}, %C: {c}", a, b, c


def gemm_naive(m: int, n: int, k: int) -> str:
    """One thread per C element (row = y, column = x), a K loop over global memory."""
    params, a, b, c = _gemm_params(m, n, k)
    return kernel_module("gemm_naive", params, f"""
      %c0 = arith.constant 0 : index
      %c1 = arith.constant 1 : index
      %cK = arith.constant {k} : index
      %rb = arith.muli %by, %bdy : index
      %row = arith.addi %rb, %ty : index
      %col = arith.addi %base, %tx : index
      %zero = arith.constant 0.0 : f32
      %acc = scf.for %kk = %c0 to %cK step %c1 iter_args(%s = %zero) -> (f32) {{
        %av = memref.load %A[%row, %kk] : {a}
        %bv = memref.load %B[%kk, %col] : {b}
        %p = arith.mulf %av, %bv : f32
        %t = arith.addf %s, %p : f32
        scf.yield %t : f32
      }}
      memref.store %acc, %C[%row, %col] : {c}""")


def gemm_tiled16(m: int, n: int, k: int) -> str:
    """16x16 blocks; each K step stages a 16x16 tile of A and of B in shared memory."""
    params, a, b, c = _gemm_params(m, n, k)
    s = "memref<16x16xf32, 3>"
    return kernel_module("gemm_tiled16", params, f"""
      %c0 = arith.constant 0 : index
      %c1 = arith.constant 1 : index
      %c16 = arith.constant 16 : index
      %cK = arith.constant {k} : index
      %rb = arith.muli %by, %c16 : index
      %row = arith.addi %rb, %ty : index
      %cb = arith.muli %bx, %c16 : index
      %col = arith.addi %cb, %tx : index
      %As = memref.alloca() : {s}
      %Bs = memref.alloca() : {s}
      %zero = arith.constant 0.0 : f32
      %acc = scf.for %k0 = %c0 to %cK step %c16 iter_args(%sum = %zero) -> (f32) {{
        %ka = arith.addi %k0, %tx : index
        %av = memref.load %A[%row, %ka] : {a}
        memref.store %av, %As[%ty, %tx] : {s}
        %kb = arith.addi %k0, %ty : index
        %bv = memref.load %B[%kb, %col] : {b}
        memref.store %bv, %Bs[%ty, %tx] : {s}
        "gpu.barrier"() : () -> ()
        %inner = scf.for %kk = %c0 to %c16 step %c1 iter_args(%u = %sum) -> (f32) {{
          %x = memref.load %As[%ty, %kk] : {s}
          %y = memref.load %Bs[%kk, %tx] : {s}
          %p = arith.mulf %x, %y : f32
          %t = arith.addf %u, %p : f32
          scf.yield %t : f32
        }}
        "gpu.barrier"() : () -> ()
        scf.yield %inner : f32
      }}
      memref.store %acc, %C[%row, %col] : {c}""")


def gemm_plan(m: int, n: int, k: int, name: str, block: int = 64, thread: int = 4, k_tile: int = 16):
    """The f32 GEMM as an oi_compiler GPU plan (the compiler's own mapping, not hand-written IR):
    64x64 outputs per block of 16x16 threads, 4x4 per thread (unrolled, C in registers), A and B
    tiles of 16 along k in shared memory, B double-buffered through registers. Its gpu.module."""
    import oi_compiler as oi
    from oi_compiler.frontend.loopnest_ir import plan_module
    from oi_compiler.runtime.nest_function import map_to_gpu

    A = oi.Array(role=oi.Role.INPUT, shape=(m, k), name="A")
    B = oi.Array(role=oi.Role.INPUT, shape=(k, n), name="B")
    C = oi.Array(role=oi.Role.INPUT_OUTPUT, shape=(m, n), name="C")
    nest = oi.Nest((m, n, k))
    i, j, kx = nest.get_indices()

    @nest.iteration_logic
    def _():
        C[i, j] += A[i, kx] * B[kx, j]

    target = oi.Target(category=oi.Target.Category.GPU)
    schedule = nest.create_schedule()
    ii, jj, kk = schedule.split(i, block), schedule.split(j, block), schedule.split(kx, k_tile)
    iii, jjj = schedule.split(ii, thread), schedule.split(jj, thread)
    schedule.reorder(i, j, kx, ii, jj, kk, iii, jjj)
    plan = schedule.create_plan(target)
    units = target.GridUnit
    plan.bind({i: units.BLOCK_Y, j: units.BLOCK_X, ii: units.THREAD_Y, jj: units.THREAD_X})
    plan.cache(A, index=ii, location=target.MemorySpace.SHARED)
    plan.cache(B, index=ii, location=target.MemorySpace.SHARED, double_buffer=True)
    plan.cache(C, index=kk, location=target.MemorySpace.PRIVATE)
    plan.unroll(iii)
    plan.unroll(jjj)
    module = plan_module(plan, name, [A, B, C])
    map_to_gpu(module)
    return module


#: problem sizes: "full" for the GPU machine, "small" for tests on the CPU
SIZES = {"full": {"n": 1 << 24, "copy": 1 << 26, "gemm": 2048, "plan_gemm": (2048, 4096)},
         "small": {"n": 4096, "copy": 8192, "gemm": 64, "plan_gemm": (72,)}}


def kernel_specs(size: str = "full") -> list[dict[str, Any]]:
    """Each test kernel: its MLIR, grid/block, inputs per argument, expected recipe, benchmark."""
    n, nc, g = SIZES[size]["n"], SIZES[size]["copy"], SIZES[size]["gemm"]
    uniform = {"random": "uniform", "low": -1.0, "high": 1.0}
    gemm_inputs = {"A": uniform, "B": uniform, "C": {"fill": 0.0}}
    gemm_bench = {"kind": "gemm", "flops": 2 * g**3, "baseline": "torch.matmul"}
    return [
        {"name": "saxpy_exp", "mlir": saxpy_exp(n), "grid": [n // 256, 1, 1], "block": [256, 1, 1],
         "inputs": {"x": uniform, "y": {"random": "normal"}, "a": {"value": 2.0}},
         "expected": {"recipe": "saxpy_exp", "tol": 1e-5},
         "bench": {"kind": "bandwidth", "bytes": 12 * n}},
        {"name": "reverse_blocks", "mlir": reverse_blocks(n, 256), "grid": [n // 256, 1, 1], "block": [256, 1, 1],
         "inputs": {"x": {"random": "normal"}}, "expected": {"recipe": "reverse_blocks", "block": 256, "tol": 0.0},
         "bench": {"kind": "bandwidth", "bytes": 8 * n}},
        {"name": "copy", "mlir": copy(nc), "grid": [nc // 256, 1, 1], "block": [256, 1, 1],
         "inputs": {"x": {"random": "normal"}, "y": {"fill": 0.0}}, "expected": {"recipe": "copy", "tol": 0.0},
         "bench": {"kind": "bandwidth", "bytes": 8 * nc, "baseline": "dtod"}},
        {"name": "gemm_naive", "mlir": gemm_naive(g, g, g), "grid": [g // 16, g // 16, 1], "block": [16, 16, 1],
         "inputs": gemm_inputs, "expected": {"recipe": "matmul", "tol": 1e-4}, "bench": gemm_bench},
        {"name": "gemm_tiled16", "mlir": gemm_tiled16(g, g, g), "grid": [g // 16, g // 16, 1], "block": [16, 16, 1],
         "inputs": gemm_inputs, "expected": {"recipe": "matmul", "tol": 1e-4}, "bench": gemm_bench},
        *({"name": f"gemm_plan_{size_g}", "plan": (lambda s=size_g: gemm_plan(s, s, s, f"gemm_plan_{s}")),
           "inputs": gemm_inputs, "expected": {"recipe": "matmul", "tol": 1e-4},
           "bench": {"kind": "gemm", "flops": 2 * size_g**3, "baseline": "torch.matmul"}}
          for size_g in SIZES[size]["plan_gemm"]),
    ]  # fmt: skip


def emit(out: Path, arch: str = "sm_90", size: str = "full", assemble: bool = True) -> dict[str, Any]:
    """Write each kernel's PTX and manifest.json into `out`; the manifest."""
    from oi_compiler.backend.ptx import NvptxTarget, emit_ptx, ptxas_path
    from oi_compiler.backend.ptx import assemble as ptxas
    from oi_compiler.graph import parse_mlir
    from oi_compiler.runtime.cuda import kernel_signature

    out.mkdir(parents=True, exist_ok=True)
    target = NvptxTarget(arch)
    kernels = []
    from oi_compiler.loopnest.gpu_mapping import launch_of

    for spec in kernel_specs(size):
        if "plan" in spec:  # built by the compiler from a GPU plan: its launch is the plan's
            module = spec["plan"]()
            kernel = next(op for op in module.walk() if getattr(op, "sym_name", None) is not None
                          and op.sym_name.data == spec["name"] and op.name == "gpu.func")  # fmt: skip
            grid, block = launch_of(kernel)
            spec = {**spec, "mlir": str(module), "grid": list(grid), "block": list(block)}
        else:
            module = parse_mlir(spec["mlir"], f"{spec['name']}.mlir")
        ptx = emit_ptx(module, target)
        assembled = None
        if assemble and ptxas_path() is not None:
            ptxas(ptx, arch)
            assembled = arch
        (out / f"{spec['name']}.ptx").write_text(ptx)
        (out / f"{spec['name']}.mlir").write_text(spec["mlir"])
        params = []
        for param in kernel_signature(module, spec["name"]):
            name = param.name
            entry = {"name": name, "kind": param.kind, "dtype": param.dtype, "shape": list(param.shape),
                     "written": param.written, "init": spec["inputs"][name]}  # fmt: skip
            params.append(entry)
        kernels.append({"name": spec["name"], "ptx": f"{spec['name']}.ptx", "entry": spec["name"], "params": params,
                        "grid": spec["grid"], "block": spec["block"], "expected": spec["expected"],
                        "bench": spec["bench"], "ptxas": assembled})  # fmt: skip
    manifest = {"arch": arch, "size": size, "kernels": kernels}
    (out / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n")
    return manifest


# ============================================================================= run: numpy references (no compiler)


def make_inputs(kernel: dict[str, Any], seed: int = 0) -> dict[str, Any]:
    """The kernel's arguments by name, from each parameter's `init`: numpy arrays and scalars."""
    rng = np.random.default_rng(seed)
    values: dict[str, Any] = {}
    for param in kernel["params"]:
        init, dtype = param["init"], np.dtype(_NUMPY[param["dtype"]])
        if param["kind"] == "scalar":
            values[param["name"]] = dtype.type(init["value"])
        elif "fill" in init:
            values[param["name"]] = np.full(param["shape"], init["fill"], dtype)
        elif init.get("random") == "uniform":
            values[param["name"]] = rng.uniform(init["low"], init["high"], param["shape"]).astype(dtype)
        elif init.get("random") == "normal":
            values[param["name"]] = rng.standard_normal(param["shape"], dtype=np.float32).astype(dtype)
        else:
            raise ValueError(f"{kernel['name']}: unknown init {init} for %{param['name']}")
    return values


_NUMPY = {"f32": "float32", "f64": "float64", "i32": "int32", "i64": "int64", "index": "int64"}


def _saxpy_exp(v: dict[str, Any], spec: dict[str, Any]) -> dict[str, np.ndarray]:
    return {"y": (np.float64(v["a"]) * np.exp(v["x"].astype(np.float64)) + v["y"]).astype(np.float32)}


def _reverse_blocks(v: dict[str, Any], spec: dict[str, Any]) -> dict[str, np.ndarray]:
    return {"x": v["x"].reshape(-1, spec["block"])[:, ::-1].reshape(v["x"].shape).copy()}


def _copy(v: dict[str, Any], spec: dict[str, Any]) -> dict[str, np.ndarray]:
    return {"y": v["x"].copy()}


def _matmul(v: dict[str, Any], spec: dict[str, Any]) -> dict[str, np.ndarray]:
    return {"C": (v["A"].astype(np.float64) @ v["B"].astype(np.float64)).astype(np.float32)}


RECIPES = {"saxpy_exp": _saxpy_exp, "reverse_blocks": _reverse_blocks, "copy": _copy, "matmul": _matmul}


def expected_outputs(kernel: dict[str, Any], inputs: dict[str, Any]) -> dict[str, np.ndarray]:
    """What the written arguments hold after the kernel, by the numpy recipe (inputs untouched)."""
    spec = kernel["expected"]
    return RECIPES[spec["recipe"]](inputs, spec)


def relative_error(got: np.ndarray, want: np.ndarray) -> float:
    """max |got - want| / max(1, max |want|); inf on a shape mismatch or NaN."""
    if got.shape != want.shape:
        return float("inf")
    diff = np.abs(got.astype(np.float64) - want.astype(np.float64))
    if diff.size == 0:
        return 0.0
    worst = float(np.max(diff))
    return worst / max(1.0, float(np.max(np.abs(want)))) if np.isfinite(worst) else float("inf")


def check_outputs(kernel: dict[str, Any], got: dict[str, np.ndarray], want: dict[str, np.ndarray]) -> tuple[bool, float]:
    """(every expected output within the kernel's tolerance, the worst relative error)."""
    errors = [relative_error(got[name], value) for name, value in want.items()]
    worst = max(errors) if errors else 0.0
    return worst <= kernel["expected"]["tol"], worst


def signature(kernel: dict[str, Any]) -> list[dict[str, Any]]:
    return [{k: p[k] for k in ("kind", "dtype", "shape", "written", "name")} for p in kernel["params"]]


def load_launcher(path: Path = LAUNCHER_PATH):
    """oi_compiler/runtime/cuda.py as a module of its own, without importing the compiler."""
    name = "oi_gpu_launcher"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def _median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def run(directory: Path, rounds: int = 5, repeat: int = 10, budget_s: float = 240.0) -> int:
    started = time.perf_counter()
    manifest = json.loads((directory / "manifest.json").read_text())
    cuda = load_launcher()
    reason = cuda.unavailable_reason()
    if reason is not None:
        print(f"gpu_check: no GPU: {reason}")
        return 2
    print(f"gpu_check: launcher {cuda.launcher_name()}, device {cuda.device_name()}, "
          f"manifest {manifest['size']} for {manifest['arch']}")  # fmt: skip
    try:
        import torch
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False
        if not torch.cuda.is_available():
            torch = None
    except ImportError:
        torch = None
    try:
        import cupy
    except ImportError:
        cupy = None

    failures, results = 0, {"kernels": {}, "timings": []}
    functions: dict[str, Any] = {}
    inputs_of: dict[str, dict[str, Any]] = {}
    for kernel in manifest["kernels"]:
        name = kernel["name"]
        try:  # a kernel the driver refuses (JIT, launch resources) fails alone; the others still run
            module = cuda.load_module((directory / kernel["ptx"]).read_text())
            function = module.function(kernel["entry"], signature(kernel))
            inputs = make_inputs(kernel)
            want = expected_outputs(kernel, inputs)
            args = {k: (v.copy() if isinstance(v, np.ndarray) else v) for k, v in inputs.items()}
            t0 = time.perf_counter()
            function(*[args[p["name"]] for p in kernel["params"]], grid=kernel["grid"], block=kernel["block"])
            ok, err = check_outputs(kernel, args, want)
            line = f"  {name:15s} numpy arrays      {'ok  ' if ok else 'FAIL'} max rel err {err:.2e} ({time.perf_counter() - t0:.2f} s)"
            checks = {"numpy": {"ok": ok, "error": err}}
            if torch is not None and kernel["bench"].get("kind") == "gemm":
                dev = {k: torch.from_numpy(np.ascontiguousarray(v)).cuda() if isinstance(v, np.ndarray) else v
                       for k, v in inputs.items()}  # fmt: skip
                function(*[dev[p["name"]] for p in kernel["params"]], grid=kernel["grid"], block=kernel["block"])
                got = {k: dev[k].cpu().numpy() for k in want}
                ok2, err2 = check_outputs(kernel, got, want)
                line += f"; torch tensors in place {'ok' if ok2 else 'FAIL'} ({err2:.2e})"
                checks["torch"] = {"ok": ok2, "error": err2}
                ok = ok and ok2
            functions[name] = (module, function)
            inputs_of[name] = inputs
        except cuda.ExecutionError as e:
            ok, checks, line = False, {"driver": {"ok": False, "error": e.message}}, f"  {name:15s} FAIL: {e.message}"
        failures += not ok
        results["kernels"][name] = checks
        print(line)

    # ----- timings, interleaved: each round runs every implementation once (repeat launches each)
    timers: dict[str, list[float]] = {}
    plan = []  # (label, bench, timer, the label of the baseline its time is compared with)
    for kernel in manifest["kernels"]:
        name, bench = kernel["name"], kernel["bench"]
        if name not in functions:  # the driver refused it above
            continue
        _, function = functions[name]
        dev = {k: cuda.to_device(v) if isinstance(v, np.ndarray) else v for k, v in inputs_of[name].items()}
        call_args = [dev[p["name"]] for p in kernel["params"]]
        base = None
        if bench.get("baseline") == "dtod":
            base = "cuMemcpyDtoD"
        elif bench.get("baseline") == "torch.matmul" and torch is not None:  # one per GEMM shape
            shape_a, shape_b = inputs_of[name]["A"].shape, inputs_of[name]["B"].shape
            base = f"torch.matmul {shape_a[0]}x{shape_b[1]}x{shape_a[1]}"
        plan.append((name, bench, lambda f=function, a=call_args, k=kernel: f.time(*a, grid=k["grid"], block=k["block"],
                                                                                    repeat=repeat), base))  # fmt: skip
        if bench.get("baseline") == "dtod":
            src, dst = dev["x"], dev["y"]
            plan.append(("cuMemcpyDtoD", bench, lambda s=src, d=dst: cuda.time_ms(lambda: cuda.copy(d, s), repeat), base))
            if cupy is not None:
                cs = cupy.asarray(inputs_of[name]["x"])
                cd = cupy.empty_like(cs)
                plan.append(("cupy copy", bench, lambda s=cs, d=cd: cuda.time_ms(lambda: cupy.copyto(d, s), repeat), base))
        if base is not None and base.startswith("torch.matmul") and base not in [p[0] for p in plan]:
            ta = torch.from_numpy(inputs_of[name]["A"]).cuda()
            tb = torch.from_numpy(inputs_of[name]["B"]).cuda()
            tc = torch.empty((ta.shape[0], tb.shape[1]), dtype=ta.dtype, device=ta.device)
            plan.append((base, bench, lambda a=ta, b=tb, c=tc: cuda.time_ms(lambda: torch.matmul(a, b, out=c), repeat),
                         base))  # fmt: skip
    failed: set[str] = set()
    for r in range(rounds):
        if time.perf_counter() - started > budget_s:
            print(f"gpu_check: time budget spent after {r} rounds")
            break
        for label, _, timer, _ in plan:
            if label in failed:
                continue
            try:
                timers.setdefault(label, []).extend(timer())
            except cuda.ExecutionError as e:
                failed.add(label)
                print(f"gpu_check: timing {label} failed: {e.message}")
    try:
        cuda.synchronize()
    except cuda.ExecutionError as e:
        print(f"gpu_check: synchronize failed: {e.message}")

    print(f"\nmedian GPU time per launch over {rounds} rounds x {repeat} launches (CUDA events)")
    print(f"{'kernel':28s} {'median ms':>10s} {'min ms':>9s} {'rate':>14s}  time vs baseline")
    for label, bench, _, base in plan:
        times = timers.get(label, [])
        med = _median(times)
        rate = (f"{bench['bytes'] / med / 1e6:8.1f} GB/s" if bench["kind"] == "bandwidth"
                else f"{bench['flops'] / med / 1e9:8.2f} TFLOP/s")  # fmt: skip
        ratio = ""
        if base and base != label and base in timers:
            ratio = f"{med / _median(timers[base]):.2f}x {base}'s"
        print(f"{label:28s} {med:10.4f} {min(times, default=float('nan')):9.4f} {rate:>14s}  {ratio}")
        results["timings"].append({"name": label, "median_ms": med, "min_ms": min(times, default=None), "rate": rate.strip(),
                                   "vs": ratio})  # fmt: skip
    leaked = [m for m in ("xdsl", "llvmlite") if m in sys.modules]
    print(f"\n{len(manifest['kernels']) - failures} passed, {failures} failed"
          f" ({time.perf_counter() - started:.1f} s; compiler modules imported: {leaked or 'none'})")  # fmt: skip
    (directory / "results.json").write_text(json.dumps(results, indent=1) + "\n")
    return 1 if failures else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     epilog="decode steps on the GPU: benchmarks/gpu_decode.py (with gpu_bundle.py)")
    sub = parser.add_subparsers(dest="command", required=True)
    e = sub.add_parser("emit", help="write the kernels' PTX and manifest.json (needs the compiler)")
    e.add_argument("--out", type=Path, required=True)
    e.add_argument("--arch", default="sm_90")
    e.add_argument("--size", choices=sorted(SIZES), default="full")
    r = sub.add_parser("run", help="run and time the kernels of an emitted directory on the GPU")
    r.add_argument("directory", type=Path)
    r.add_argument("--rounds", type=int, default=5)
    r.add_argument("--repeat", type=int, default=10)
    args = parser.parse_args(argv)
    if args.command == "emit":
        manifest = emit(args.out, args.arch, args.size)
        for kernel in manifest["kernels"]:
            print(f"{kernel['name']:15s} {kernel['ptx']} (ptxas {kernel['ptxas'] or 'not run'})")
        return 0
    return run(args.directory, args.rounds, args.repeat)


if __name__ == "__main__":
    sys.exit(main())
