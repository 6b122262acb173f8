"""`--launch-op-kernels`: each op's nest in the step becomes a call to the host, which launches the
op's GPU kernels (`device="cuda"`).

After `--lower-ops{device=cuda}` and `--lower-cache`, every op the step runs is a private function
`@kernel_<n>_<op>(inputs..., output, run-time settings...) -> i32` carrying `oi.gpu_op` (which
registry op, its settings, its dtypes), called where its statements were; a status other than 0
fails the step there, and the undo log puts the persistent state back. This pass replaces each such
function's body, the op's loop nest, by

    %status = func.call @oi_launch_<signature>(%id, inputs..., output, settings...) -> i32

a declaration the host provides (`runtime/op_launches.py`): `%id` numbers the function in the
module, and the module's `oi.gpu_launches` lists, by that number, what the host needs to make the
op's kernels for the sizes it is called with (`loopnest/op_kernels.py`) and to read the call's
arguments: each memref as the C ABI passes it (data pointer, offset, sizes, strides), each
setting as its scalar. One declaration per distinct argument types (`<signature>` is their hash),
since the host binds one callback per C signature. The control plane (scalars, sizes, checks,
growth, the undo log) stays compiled host code, untouched.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

from xdsl.dialects import arith, func
from xdsl.dialects.builtin import ArrayAttr, IntegerType, MemRefType, ModuleOp, StringAttr, i32
from xdsl.ir import Block
from xdsl.passes import ModulePass

from oi_compiler.dialects.oi_lowered import GPU_OP_ATTR
from oi_compiler.dtypes import dtype_name
from oi_compiler.errors import PassError

#: the module's list of launches (JSON strings), indexed by the `%id` each call passes
LAUNCHES_ATTR = "oi.gpu_launches"
SYMBOL_PREFIX = "oi_launch_"


def launch_symbol(types) -> str:
    """The host callback's symbol for kernel functions of these argument types."""
    digest = hashlib.sha256(" ".join(str(t) for t in types).encode()).hexdigest()[:16]
    return SYMBOL_PREFIX + digest


def param_spec(ty) -> list:
    """How the host reads one argument: ["memref", dtype, rank] or ["scalar", type]."""
    if isinstance(ty, MemRefType):
        return ["memref", dtype_name(ty.element_type), ty.get_num_dims()]
    return ["scalar", str(ty)]


@dataclass(frozen=True)
class LaunchOpKernels(ModulePass):
    """Replace each GPU op kernel's nest in the step by a call of the host that launches its kernels"""

    name = "launch-op-kernels"

    def apply(self, ctx, module: ModuleOp) -> None:
        launches: list[StringAttr] = []
        declared: dict[str, func.FuncOp] = {}
        for function in [op for op in module.ops if isinstance(op, func.FuncOp) and GPU_OP_ATTR in op.attributes]:
            if function.is_declaration:
                continue
            inputs = list(function.function_type.inputs.data)
            if list(function.function_type.outputs.data) != [i32]:
                raise PassError(f"--launch-op-kernels: @{function.sym_name.data} must return an i32 status")
            symbol = launch_symbol(inputs)
            if symbol not in declared:
                declared[symbol] = func.FuncOp.external(symbol, [IntegerType(64), *inputs], [i32])
            info = json.loads(function.attributes[GPU_OP_ATTR].data)
            info.update(symbol=symbol, params=[param_spec(t) for t in inputs], function=function.sym_name.data)
            block = Block(arg_types=inputs)
            ident = arith.ConstantOp.from_int_and_width(len(launches), 64)
            call = func.CallOp(symbol, [ident.result, *block.args], [i32])
            block.add_ops([ident, call, func.ReturnOp(call.res[0])])
            nest = function.body.detach_block(0)  # the nest is not needed any more
            function.body.add_block(block)
            nest.erase(safe_erase=False)
            launches.append(StringAttr(json.dumps(info)))
        for declaration in declared.values():
            module.body.block.add_op(declaration)
        module.attributes[LAUNCHES_ATTR] = ArrayAttr(launches)
