"""The NVPTX target: GPU kernels as PTX text, through the same translator as the CPU.

    ptx = emit_ptx(module)                 # module: a gpu.module of gpu.funcs (or func.funcs)
    assemble(ptx, arch="sm_90")            # ptxas (PATH, CUDA toolkit or nvidia-cuda-nvcc): errors, or a cubin

Input is xDSL's `gpu` dialect: `gpu.module @kernels { gpu.func @k(...) kernel { ... } }`; the
bodies are func/scf/memref/arith/math plus `gpu.thread_id`/`block_id`/`block_dim`/`grid_dim`,
`gpu.barrier` and shared memory (`memref.alloca` in memory space 3) (`llvm_gpu.py`). Each
`kernel` function gets an entry point with the `ptx_kernel` calling convention that takes the
C-ABI parameters the CPU wrappers take (a memref: its data pointer, offset, sizes and strides;
scalars as themselves) and calls the body, which O3 inlines; other functions are internal.

Transcendental math calls libdevice (`__nv_expf`...), linked from `libdevice_path()` and
internalised, so O3 keeps only what the kernels use. Before LLVM compiles anything,
`check_declarations` refuses any external symbol but NVVM intrinsics and libdevice (LLVM's
NVPTX backend aborts the process on `llvm.exp`, `llvm.pow`... rather than failing).
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import tempfile
import threading
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import llvmlite.binding as llvm
from llvmlite import ir

from oi_compiler.errors import PassError

TRIPLE = "nvptx64-nvidia-cuda"
KERNEL_ATTR = "gpu.kernel"  # on a func.func: a kernel entry point (a gpu.func says `kernel`)

#: LLVM intrinsics NVPTX selects (the math the hardware does; memory and control intrinsics)
_NATIVE_INTRINSICS = ("llvm.nvvm.", "llvm.fabs.", "llvm.sqrt.", "llvm.floor.", "llvm.ceil.", "llvm.roundeven.",
                      "llvm.trunc.", "llvm.copysign.", "llvm.fma.", "llvm.fmuladd.", "llvm.minnum.", "llvm.maxnum.",
                      "llvm.minimum.", "llvm.maximum.", "llvm.smax.", "llvm.smin.", "llvm.umax.", "llvm.umin.",
                      "llvm.abs.", "llvm.ctpop.", "llvm.ctlz.", "llvm.cttz.", "llvm.memcpy.", "llvm.memset.",
                      "llvm.memmove.", "llvm.stacksave", "llvm.stackrestore", "llvm.lifetime.",
                      "llvm.assume")  # fmt: skip


#: the compute capabilities this target emits for, with the PTX ISA version each needs at least
ARCHES = {**{f"sm_{n}": 80 for n in (60, 61, 62, 70, 72, 75, 80, 86, 87, 89, 90)}, "sm_90a": 80,
          **{f"sm_{n}{s}": 86 for n in (100, 101) for s in ("", "a")}, **{f"sm_{n}{s}": 87 for n in (120,) for s in ("", "a")}}  # fmt: skip


@dataclass(frozen=True)
class NvptxTarget:
    """An NVIDIA GPU: its compute capability (`sm_80`) and the PTX ISA version to emit (the
    lowest the architecture takes, and at least 8.0)."""

    arch: str = "sm_80"

    def __post_init__(self) -> None:
        if self.arch not in ARCHES:
            raise PassError(f"backend: unknown GPU architecture '{self.arch}' (known: {', '.join(ARCHES)})")

    @property
    def ptx_version(self) -> int:
        return ARCHES[self.arch]

    def machine(self) -> llvm.TargetMachine:
        _initialize()
        target = llvm.Target.from_triple(TRIPLE)
        return target.create_target_machine(cpu=self.arch, features=f"+ptx{self.ptx_version}", opt=3)


_init_lock = threading.Lock()
_initialized = False


def _initialize() -> None:
    global _initialized
    with _init_lock:
        if not _initialized:
            llvm.initialize_all_targets()
            llvm.initialize_all_asmprinters()
            _initialized = True


def libdevice_path() -> Path:
    """libdevice's bitcode: `$OI_LIBDEVICE`, the CUDA toolkit's, or the `nvidia-cuda-nvcc` wheel's."""
    found = _cuda_file(os.path.join("nvvm", "libdevice", "libdevice.10.bc"), os.environ.get("OI_LIBDEVICE"))
    if found is None:
        raise PassError("backend: libdevice (libdevice.10.bc) not found: set OI_LIBDEVICE, install the CUDA "
                        "toolkit, or pip install nvidia-nvvm")  # fmt: skip
    return Path(found)


def _cuda_file(relative: str, override: str | None = None) -> str | None:
    """`relative` (`bin/ptxas`) in the CUDA toolkit (`$CUDA_HOME`, `/usr/local/cuda`) or in NVIDIA's
    wheels (`nvidia/cu13/...` of nvidia-cuda-nvcc and nvidia-nvvm, `nvidia/cuda_nvcc/...` before 13)."""
    candidates = [override]
    for root in (os.environ.get("CUDA_HOME"), os.environ.get("CUDA_PATH"), "/usr/local/cuda"):
        if root:
            candidates.append(os.path.join(root, relative))
    spec = importlib.util.find_spec("nvidia")
    for base in (spec.submodule_search_locations or []) if spec is not None else []:
        for package in ("cu13", "cu12", "cuda_nvcc"):
            candidates.append(os.path.join(base, package, relative))
    return next((path for path in candidates if path and os.path.isfile(path)), None)


@cache
def _libdevice_bitcode() -> bytes:
    return libdevice_path().read_bytes()


# ----------------------------------------------------------------------------- kernels as functions


def kernel_functions(module):
    """`module`'s GPU functions as a module of `func.func`s (gpu.module contents, gpu.func ->
    func.func, gpu.return -> func.return) and the names of its kernels."""
    from xdsl.dialects import func, gpu
    from xdsl.dialects.builtin import ModuleOp, UnitAttr
    from xdsl.rewriter import Rewriter

    from oi_compiler.backend.llvm_abi import MAY_ALIAS_ATTR

    module = module.clone()
    sources = [op for op in module.ops if isinstance(op, gpu.ModuleOp)]
    ops = [op for m in sources for op in m.body.block.ops] if sources else list(module.ops)
    out, kernels = ModuleOp([]), []
    for op in ops:
        if isinstance(op, gpu.FuncOp):
            body = op.body.clone()
            for ret in [o for o in body.walk() if isinstance(o, gpu.ReturnOp)]:
                Rewriter.replace_op(ret, func.ReturnOp(*ret.operands))
            is_kernel = op.kernel is not None
            function = func.FuncOp(op.sym_name.data, op.function_type, body,
                                   visibility=None if is_kernel else "private")  # fmt: skip
            if is_kernel:
                function.attributes[KERNEL_ATTR] = UnitAttr()
            if MAY_ALIAS_ATTR in op.attributes:
                function.attributes[MAY_ALIAS_ATTR] = op.attributes[MAY_ALIAS_ATTR]
            op = function
        elif isinstance(op, gpu.ModuleEndOp if hasattr(gpu, "ModuleEndOp") else ()):
            continue
        else:
            op.detach()
        if isinstance(op, func.FuncOp) and KERNEL_ATTR in op.attributes:
            kernels.append(op.sym_name.data)
        out.body.block.add_op(op)
    if not kernels:
        raise PassError("backend: -t ptx needs a kernel (a `gpu.func ... kernel` or a func.func with {gpu.kernel})")
    return out, kernels


def translate_gpu(module, target: NvptxTarget | None = None) -> tuple[ir.Module, list[str]]:
    """The unoptimised LLVM IR of `module`'s kernels for NVPTX, and the kernels' symbols."""
    from oi_compiler.backend.llvm import EMITTERS, exported_symbols, translate
    from oi_compiler.backend.llvm_gpu import GPU_EMITTERS, NVPTX_MATH_EMITTERS

    target = target or NvptxTarget()
    functions, kernels = kernel_functions(module)
    out = translate(functions, triple=TRIPLE, emitters={**EMITTERS, **NVPTX_MATH_EMITTERS, **GPU_EMITTERS})
    out.data_layout = str(target.machine().target_data)
    symbols = exported_symbols(functions)
    entry_points = [symbols[name] for name in kernels]
    for name in entry_points:
        out.globals[name].calling_convention = "ptx_kernel"
    check_declarations(out)
    return out, entry_points


def check_declarations(module: ir.Module) -> None:
    """Refuse, before LLVM sees them, the external functions NVPTX cannot provide."""
    for value in module.globals.values():
        if isinstance(value, ir.Function) and value.is_declaration:
            name = value.name
            if name.startswith("__nv_") or name.startswith(_NATIVE_INTRINSICS):
                continue
            raise PassError(f"backend: {name} has no NVPTX lowering (GPU code calls libdevice's __nv_* "
                            "functions and NVVM intrinsics only)")  # fmt: skip


def emit_ptx(module, target: NvptxTarget | None = None) -> str:
    """The PTX text of `module`'s kernels (O3, libdevice linked and internalised)."""
    target = target or NvptxTarget()
    llvm_module, kernels = translate_gpu(module, target)
    machine = target.machine()
    compiled = llvm.parse_assembly(str(llvm_module))
    compiled.verify()
    if any(f.name.startswith("__nv_") for f in compiled.functions if f.is_declaration):
        library = llvm.parse_bitcode(_libdevice_bitcode())
        library.triple = TRIPLE
        library.data_layout = str(machine.target_data)
        compiled.link_in(library)
    for function in compiled.functions:
        if not function.is_declaration and function.name not in kernels:
            function.linkage = "internal"
    from oi_compiler.backend.jit import optimize

    optimize(compiled, machine)
    leftover = [f.name for f in compiled.functions if f.is_declaration and not f.name.startswith("llvm.")]
    if leftover:
        raise PassError(f"backend: the kernels still call {', '.join(leftover)} after linking libdevice")
    return machine.emit_assembly(compiled)


# ----------------------------------------------------------------------------- ptxas


def ptxas_path() -> str | None:
    """`ptxas` from PATH, the CUDA toolkit, or the `nvidia-cuda-nvcc` wheel; None if there is none."""
    return shutil.which("ptxas") or _cuda_file(os.path.join("bin", "ptxas"))


def assemble(ptx: str, arch: str = "sm_90") -> bytes:
    """The cubin `ptxas` makes of `ptx` for `arch`; PassError with ptxas's own message if it refuses."""
    tool = ptxas_path()
    if tool is None:
        raise PassError("backend: ptxas not found (install the CUDA toolkit or pip install nvidia-cuda-nvcc)")
    with tempfile.TemporaryDirectory() as tmp:
        source, cubin = Path(tmp, "kernel.ptx"), Path(tmp, "kernel.cubin")
        source.write_text(ptx)
        done = subprocess.run([tool, f"-arch={arch}", "-o", str(cubin), str(source)], capture_output=True, text=True,
                              timeout=120)  # fmt: skip
        if done.returncode != 0:
            raise PassError(f"backend: ptxas -arch={arch} refused the PTX: {done.stderr.strip()}")
        return cubin.read_bytes()
