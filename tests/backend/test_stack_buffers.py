"""`memref.alloc` on the stack (backend/llvm_memref.py `emit_alloc`): a static buffer of at most
STACK_BUFFER_BYTES that never leaves its function is an entry-block `alloca` and its dealloc
emits nothing; anything else keeps `aligned_alloc`/`free`."""

from __future__ import annotations

import numpy as np
import pytest
from tests.mlir_source import build, parse

from oi_compiler.backend.llvm import llvm_ir_text
from oi_compiler.backend.llvm_memref import STACK_BUFFER_BYTES

pytestmark = pytest.mark.usefixtures("private_compile_cache")

LARGEST = STACK_BUFFER_BYTES // 4  # f32 elements


def reverse(buffer_type: str, alloc: str) -> str:
    """`f(a, out, n = 4)`: out = a reversed, through a buffer `%tmp` allocated in each iteration of
    a loop over the rows (the buffer's contents are dead at the end of an iteration)."""
    return f"""
    func.func @f(%a: memref<2x4xf32>, %out: memref<2x4xf32>, %n: index) {{
      %c0 = arith.constant 0 : index
      %c1 = arith.constant 1 : index
      %c2 = arith.constant 2 : index
      %c3 = arith.constant 3 : index
      %c4 = arith.constant 4 : index
      scf.for %r = %c0 to %c2 step %c1 {{
        %tmp = {alloc} : {buffer_type}
        %view = memref.subview %tmp[0] [4] [1] : {buffer_type} to memref<4xf32, strided<[1]>>
        scf.for %i = %c0 to %c4 step %c1 {{
          %v = memref.load %a[%r, %i] : memref<2x4xf32>
          memref.store %v, %view[%i] : memref<4xf32, strided<[1]>>
        }}
        scf.for %i = %c0 to %c4 step %c1 {{
          %j = arith.subi %c3, %i : index
          %v = memref.load %tmp[%j] : {buffer_type}
          memref.store %v, %out[%r, %i] : memref<2x4xf32>
        }}
        memref.dealloc %tmp : {buffer_type}
      }}
      func.return
    }}"""


@pytest.mark.parametrize(
    ("buffer_type", "alloc", "on_stack"),
    [
        ("memref<4xf32>", "memref.alloc()", True),
        (f"memref<{LARGEST}xf32>", "memref.alloc()", True),
        (f"memref<{LARGEST + 1}xf32>", "memref.alloc()", False),  # too large
        ("memref<?xf32>", "memref.alloc(%c4)", True),  # a dynamic dim of a constant size
        ("memref<?xf32>", "memref.alloc(%n)", False),  # dynamic
    ],
)
def test_small_static_local_buffers_live_on_the_stack(buffer_type: str, alloc: str, on_stack: bool) -> None:
    text = reverse(buffer_type, alloc)
    ir_text = llvm_ir_text(parse(text))
    assert ("aligned_alloc" not in ir_text and "@free" not in ir_text and " = alloca " in ir_text) == on_stack
    if on_stack:  # in the entry block, before the loop: one buffer however many iterations
        body = ir_text[ir_text.index('define internal void @"f.body"'):]
        assert body.index(" = alloca ") < body.index("\n  br ")
    a = np.arange(8, dtype=np.float32).reshape(2, 4)
    out = np.zeros_like(a)
    build(text).function("f")(a, out, 4)
    np.testing.assert_array_equal(out, a[:, ::-1])


ESCAPING = {
    "returned": """
    func.func private @g() -> memref<4xf32> {
      %tmp = memref.alloc() : memref<4xf32>
      func.return %tmp : memref<4xf32>
    }
    func.func @f() {
      %buf = func.call @g() : () -> memref<4xf32>
      memref.dealloc %buf : memref<4xf32>
      func.return
    }""",
    "passed to a call": """
    func.func private @g(memref<4xf32>) -> ()
    func.func @f() {
      %tmp = memref.alloc() : memref<4xf32>
      func.call @g(%tmp) : (memref<4xf32>) -> ()
      memref.dealloc %tmp : memref<4xf32>
      func.return
    }""",
    "merged by a select": """
    func.func @f(%c: i1, %a: memref<4xf32>) {
      %tmp = memref.alloc() : memref<4xf32>
      %either = arith.select %c, %tmp, %a : memref<4xf32>
      memref.dealloc %either : memref<4xf32>
      func.return
    }""",
    "yielded out of a loop": """
    func.func @f(%n: index) {
      %c0 = arith.constant 0 : index
      %c1 = arith.constant 1 : index
      %first = memref.alloc() : memref<4xf32>
      %last = scf.for %i = %c0 to %n step %c1 iter_args(%buf = %first) -> (memref<4xf32>) {
        memref.dealloc %buf : memref<4xf32>
        %next = memref.alloc() : memref<4xf32>
        scf.yield %next : memref<4xf32>
      }
      memref.dealloc %last : memref<4xf32>
      func.return
    }""",
}


@pytest.mark.parametrize("name", ESCAPING)
def test_buffers_that_leave_their_function_stay_on_the_heap(name: str) -> None:
    ir_text = llvm_ir_text(parse(ESCAPING[name]))
    assert "aligned_alloc" in ir_text and " = alloca " not in ir_text
