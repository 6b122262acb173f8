"""The NVPTX target (backend/ptx.py, backend/llvm_gpu.py): kernels as PTX that `ptxas` accepts.

No GPU is needed: every kernel here is assembled by `ptxas` (the CUDA toolkit's, else the
`nvidia-cuda-nvcc` wheel of the test extra), which refuses bad operands, unresolved symbols and
version mismatches. Math goes through libdevice (`nvidia-nvvm`'s `libdevice.10.bc`).
"""

from __future__ import annotations

import subprocess
import sys

import pytest
from llvmlite import ir
from xdsl.dialects import math

from oi_compiler.backend.llvm_gpu import NVPTX_MATH_EMITTERS
from oi_compiler.backend.ptx import NvptxTarget, assemble, check_declarations, emit_ptx, ptxas_path, translate_gpu
from oi_compiler.errors import PassError
from oi_compiler.graph import parse_mlir

needs_ptxas = pytest.mark.skipif(ptxas_path() is None, reason="no ptxas (pip install nvidia-cuda-nvcc)")


def kernel_module(params: str, body: str, name: str = "k") -> str:
    """A gpu.module holding one kernel `name(params)` whose body is `body` (generic gpu ops)."""
    types = ", ".join(p.split(":", 1)[1].strip() for p in params.split(",") if p.strip())
    return f"""
builtin.module {{
  "gpu.module"() <{{sym_name = "kernels"}}> ({{
    "gpu.func"() <{{function_type = ({types}) -> (), kernel}}> ({{
    ^bb0({params}):
      %tid = "gpu.thread_id"() <{{dimension = #gpu<dim x>}}> : () -> index
      %bid = "gpu.block_id"() <{{dimension = #gpu<dim x>}}> : () -> index
      %bdim = "gpu.block_dim"() <{{dimension = #gpu<dim x>}}> : () -> index
      %base = arith.muli %bid, %bdim : index
      %i = arith.addi %base, %tid : index
{body}
      "gpu.return"() : () -> ()
    }}) {{sym_name = "{name}"}} : () -> ()
  }}) : () -> ()
}}
"""


SAXPY_EXP = kernel_module(
    "%x: memref<256xf32>, %y: memref<256xf32>, %a: f32",
    """
      %n = arith.constant 256 : index
      %in = arith.cmpi slt, %i, %n : index
      scf.if %in {
        %xi = memref.load %x[%i] : memref<256xf32>
        %e = math.exp %xi : f32
        %yi = memref.load %y[%i] : memref<256xf32>
        %ax = arith.mulf %a, %e : f32
        %s = arith.addf %ax, %yi : f32
        memref.store %s, %y[%i] : memref<256xf32>
      }
    """,
    name="saxpy_exp",
)


def ptx_of(text: str, arch: str = "sm_80") -> str:
    return emit_ptx(parse_mlir(text, "k.mlir"), NvptxTarget(arch))


@needs_ptxas
@pytest.mark.parametrize("arch", ["sm_80", "sm_90"])
def test_a_kernel_with_math_is_ptx_that_ptxas_assembles(arch: str) -> None:
    ptx = ptx_of(SAXPY_EXP, arch)
    assert f".target {arch}" in ptx
    assert ".visible .entry saxpy_exp(" in ptx
    assert "%tid.x" in ptx and "%ctaid.x" in ptx and "%ntid.x" in ptx
    assert "__nv_expf" not in ptx and "call" not in ptx  # libdevice linked, inlined, nothing external
    assert "ex2.approx" in ptx  # libdevice's expf
    assert len(assemble(ptx, arch)) > 0


def test_kernels_take_the_c_abi_parameters_and_other_functions_are_internal() -> None:
    module, entry_points = translate_gpu(parse_mlir(SAXPY_EXP, "k.mlir"))
    assert entry_points == ["saxpy_exp"]
    entry = module.globals["saxpy_exp"]
    assert entry.calling_convention == "ptx_kernel"
    # x: pointer, offset, size, stride; y: the same; a: the float
    assert [str(a.type) for a in entry.args] == ["ptr", "i64", "i64", "i64"] * 2 + ["float"]
    assert module.globals["saxpy_exp.body"].linkage == "internal"


def _unary_kernel(op: str, ty: str) -> str:
    return kernel_module(f"%x: memref<64x{ty}>", f"""
      %n = arith.constant 64 : index
      %in = arith.cmpi slt, %i, %n : index
      scf.if %in {{
        %v = memref.load %x[%i] : memref<64x{ty}>
        %r = {op} %v : {ty}
        memref.store %r, %x[%i] : memref<64x{ty}>
      }}
    """)


def _binary_kernel(op: str, ty: str) -> str:
    return kernel_module(f"%x: memref<64x{ty}>", f"""
      %n = arith.constant 64 : index
      %in = arith.cmpi slt, %i, %n : index
      scf.if %in {{
        %v = memref.load %x[%i] : memref<64x{ty}>
        %r = {op} %v, %v : {ty}
        memref.store %r, %x[%i] : memref<64x{ty}>
      }}
    """)


_BINARY = {math.PowFOp, math.Atan2Op, math.CopySignOp}
_INTEGER = {math.AbsIOp, math.CtPopOp, math.CountLeadingZerosOp, math.CountTrailingZerosOp}


def _math_cases():
    for cls in sorted(NVPTX_MATH_EMITTERS, key=lambda c: c.name):
        if cls in _INTEGER:
            yield pytest.param(cls, "i32", id=f"{cls.name}-i32")
        elif cls not in (math.FmaOp, math.FPowIOp):
            for ty in ("f32", "f64", "f16"):
                yield pytest.param(cls, ty, id=f"{cls.name}-{ty}")


@needs_ptxas
@pytest.mark.parametrize(("cls", "ty"), list(_math_cases()))
def test_every_math_op_emits_ptx_that_assembles(cls, ty: str) -> None:
    text = _binary_kernel(cls.name, ty) if cls in _BINARY else _unary_kernel(cls.name, ty)
    ptx = ptx_of(text)
    assert "__nv_" not in ptx
    assemble(ptx, "sm_90")


@needs_ptxas
def test_fma_and_integer_powers() -> None:
    text = kernel_module("%x: memref<64xf32>, %p: i32", """
      %c0 = arith.constant 0 : index
      %v = memref.load %x[%i] : memref<64xf32>
      %f = math.fma %v, %v, %v : f32
      %r = math.fpowi %f, %p : f32, i32
      memref.store %r, %x[%i] : memref<64xf32>
    """)
    assemble(ptx_of(text), "sm_90")


@needs_ptxas
def test_shared_memory_and_barriers() -> None:
    """A block reverses its 32 elements through shared memory: store, barrier, load another thread's."""
    text = kernel_module("%x: memref<32xf32>", """
      %tile = memref.alloca() : memref<32xf32, 3>
      %v = memref.load %x[%tid] : memref<32xf32>
      memref.store %v, %tile[%tid] : memref<32xf32, 3>
      "gpu.barrier"() : () -> ()
      %c31 = arith.constant 31 : index
      %j = arith.subi %c31, %tid : index
      %w = memref.load %tile[%j] : memref<32xf32, 3>
      memref.store %w, %x[%tid] : memref<32xf32>
    """)
    ptx = ptx_of(text)
    assert ".shared .align 16 .b8 shared_$_0[128];" in ptx  # 32 floats of the block's shared memory
    assert "st.shared" in ptx and "ld.shared" in ptx and "bar.sync" in ptx
    assemble(ptx, "sm_90")


def test_a_call_nvptx_cannot_provide_is_refused_before_llvm_sees_it() -> None:
    text = """
builtin.module {
  "gpu.module"() <{sym_name = "kernels"}> ({
    func.func private @puts(i64) -> i32
    "gpu.func"() <{function_type = (i64) -> (), kernel}> ({
    ^bb0(%a: i64):
      %r = func.call @puts(%a) : (i64) -> i32
      "gpu.return"() : () -> ()
    }) {sym_name = "k"} : () -> ()
  }) : () -> ()
}
"""
    with pytest.raises(PassError, match="puts has no NVPTX lowering"):
        emit_ptx(parse_mlir(text, "k.mlir"))


@pytest.mark.parametrize("name", ["llvm.exp.f32", "llvm.log.f32", "llvm.pow.f64", "expf"])
def test_intrinsics_that_abort_nvptx_are_refused(name: str) -> None:
    """LLVM's NVPTX backend aborts the process on these: they must never reach it."""
    module = ir.Module()
    ir.Function(module, ir.FunctionType(ir.FloatType(), [ir.FloatType()]), name)
    with pytest.raises(PassError, match="no NVPTX lowering"):
        check_declarations(module)


def test_a_module_without_a_kernel_is_refused() -> None:
    text = 'builtin.module {\n  func.func private @f() {\n    func.return\n  }\n}\n'
    with pytest.raises(PassError, match="needs a kernel"):
        emit_ptx(parse_mlir(text, "k.mlir"))


def test_an_unknown_architecture_is_refused() -> None:
    with pytest.raises(PassError, match="unknown GPU architecture 'sm_99'"):
        NvptxTarget("sm_99")


@needs_ptxas
def test_ptxas_errors_are_pass_errors() -> None:
    with pytest.raises(PassError, match="ptxas -arch=sm_90 refused the PTX"):
        assemble(".version 8.0\n.target sm_90\n.address_size 64\n.visible .entry k() { bogus; }\n", "sm_90")


def test_oi_opt_prints_ptx(tmp_path) -> None:
    path = tmp_path / "k.mlir"
    path.write_text(SAXPY_EXP)
    done = subprocess.run([sys.executable, "-m", "oi_compiler.tools.oi_opt", str(path), "-t", "ptx", "--arch=sm_90"],
                          capture_output=True, text=True)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert ".target sm_90" in done.stdout and ".visible .entry saxpy_exp(" in done.stdout
    bad = subprocess.run([sys.executable, "-m", "oi_compiler.tools.oi_opt", str(path), "-t", "ptx", "--arch=sm_99"],
                         capture_output=True, text=True)  # fmt: skip
    assert bad.returncode == 2 and "unknown GPU architecture 'sm_99'" in bad.stderr
