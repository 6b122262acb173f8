"""LLVM emitters for the step function's own ops, `oi.state_view` and `oi.step_exit`, registered
with the backend (`backend.llvm.register_emitters`) when this module is imported: the backend
knows no `oi` op. `lowering/step_ir.py`, which makes these ops, imports it.

`oi.state_view %words[%slot]` loads 64-bit word `slot` of `words` (the state array, or a table
of addresses), turns it into a
pointer and makes a row-major descriptor of the view's type over it (sizes from the type or the
operands). `oi.step_exit %code` returns `code` from the function at once; the code after it is
emitted into a fresh block without predecessors, which LLVM deletes.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from xdsl.dialects.builtin import MemRefType

from oi_compiler.backend.llvm import register_emitters
from oi_compiler.backend.llvm_memref import MemRefDescriptor, load_element, make_descriptor
from oi_compiler.backend.llvm_types import INDEX, PTR, index_const
from oi_compiler.dialects.oi_lowered import StateViewOp, StepExitOp
from oi_compiler.errors import PassError

if TYPE_CHECKING:
    from oi_compiler.backend.llvm import FunctionEmitter, LoweredValue


def emit_state_view(fx: FunctionEmitter, op: StateViewOp) -> list[LoweredValue]:
    b = fx.builder
    words = fx.value(op.words)
    assert isinstance(words, MemRefDescriptor)
    word = load_element(b, words, [fx.value(op.slot)])
    pointer = b.inttoptr(word, PTR, name="buffer")
    ty = op.result.type
    assert isinstance(ty, MemRefType)
    dynamic = iter(fx.value(v) for v in op.sizes)
    sizes = [index_const(d) if d >= 0 else next(dynamic) for d in ty.get_shape()]
    return [make_descriptor(b, ty, pointer, pointer, index_const(0), sizes, [])]


def emit_step_exit(fx: FunctionEmitter, op: StepExitOp) -> list[LoweredValue]:
    b = fx.builder
    result = fx.function.function_type.return_type
    code = fx.value(op.code)
    if result != code.type:
        raise PassError(f"backend: oi.step_exit returns {code.type} from a function returning {result}")
    b.ret(code)
    b.position_at_end(fx.new_block("after.exit"))
    return []


STATE_EMITTERS = {StateViewOp: emit_state_view, StepExitOp: emit_step_exit}
register_emitters(STATE_EMITTERS)
assert INDEX.width == 64  # state words hold pointers and sizes as index values
