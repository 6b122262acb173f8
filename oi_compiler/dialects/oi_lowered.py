"""The `oi` ops of the lowering stages, between the graph level and plain func/scf/memref.

- `oi.kernel` (made by `--lower-ops`, consumed by `--lower-cache`): one graph op as its loop
  nest. It keeps the statement's operands by name (`@x`, `@W[l]`) and its settings, and holds
  a region whose block arguments are the buffers (one memref per input, then the output) and
  any setting read at run time (rope's `position = pos`, of the variable's type); the region's
  ops are the registry's nest builder output (`linalg.generic` on those memrefs). Kernels with
  the same `nest_key` have the same body (`--lower-ops` makes it so) and share one function
  after `--lower-cache`.

      oi.kernel add(@x, @y) -> @z <{nest_key = "..."}> {
      ^bb0(%x: memref<4xf32>, %y: memref<4xf32>, %z: memref<4xf32>):
        linalg.generic ...
      }

  The call is `oi.op`'s (`rope(@q, position = @pos, theta = 10000.0) -> @q`); the other
  properties (`runtime_settings` when not empty, `static_error`, `nest_key`, `shape_checks`,
  and `settings` when one of them has no DSL spelling) follow as a `<{...}>` property dict,
  then the region, then the discardable attributes (`attr-dict`).

- `oi.state_view %words[%slot] (%sizes...) : memref<?xi64> -> memref<...>` (made by `--lower-cache`): the buffer
  whose address word `slot` of `words` (the step's state array, or a table of addresses)
  holds, as a row-major memref (dynamic sizes as operands). Host buffers are reached this way, so a table that grows (the host
  reallocates it) is seen at its new address by the next view.
- `oi.step_exit %code : i32`: leave the step function now, returning `code` (an `i32`), from any
  depth of loops; the step's error paths use it after writing the error record.
"""

from __future__ import annotations

from xdsl.dialects.builtin import (
    ArrayAttr,
    DictionaryAttr,
    IndexType,
    IntegerType,
    MemRefType,
    StringAttr,
    SymbolRefAttr,
)
from xdsl.ir import Block
from xdsl.irdl import (
    IRDLOperation,
    irdl_op_definition,
    operand_def,
    opt_prop_def,
    prop_def,
    region_def,
    result_def,
    traits_def,
    var_operand_def,
)
from xdsl.parser import Parser
from xdsl.printer import Printer
from xdsl.traits import MemoryReadEffect, MemoryWriteEffect, NoTerminator
from xdsl.utils.exceptions import VerifyException

from oi_compiler.dialects.oi_attrs import (
    VarRefAttr,
    parse_attr_dict,
    parse_prop_dict,
    print_attr_dict,
    print_prop_dict,
)


#: on an `oi.kernel` (and the function it becomes) for `device="cuda"`: JSON saying which registry
#: op with which settings, so the host can launch that op's GPU kernels instead of the nest
#: (`--lower-ops{device=cuda}`, `--launch-op-kernels`)
GPU_OP_ATTR = "oi.gpu_op"


@irdl_op_definition
class KernelOp(IRDLOperation):
    """A graph op as its loop nest over buffer arguments (see the module docstring)."""

    name = "oi.kernel"

    op_name = prop_def(StringAttr)
    inputs = prop_def(ArrayAttr[VarRefAttr])
    output = prop_def(StringAttr)
    settings = prop_def(DictionaryAttr)
    runtime_settings = prop_def(ArrayAttr[StringAttr])
    static_error = opt_prop_def(StringAttr)  # the reference's error when the node runs; no body
    nest_key = opt_prop_def(StringAttr)  # equal keys: equal nests (lowered once, shared)
    shape_checks = opt_prop_def(StringAttr)  # JSON: run-time result dims to check, and the message
    body = region_def("single_block")

    traits = traits_def(NoTerminator(), MemoryReadEffect(), MemoryWriteEffect())

    @property
    def kind(self) -> str:
        return self.op_name.data

    @property
    def output_name(self) -> str:
        return self.output.data

    @property
    def description(self) -> str:
        """The statement's description, as its `oi.op` had it (traces, diagnostics)."""
        return f"op {self.kind}({','.join(r.text for r in self.inputs)}) >> {self.output_name}"

    def print(self, printer: Printer) -> None:
        from oi_compiler.dialects.oi import is_dsl_setting, print_op_call

        settings = self.settings.data
        dsl = all(is_dsl_setting(k, v) for k, v in settings.items())
        print_op_call(printer, self.kind, self.inputs, settings if dsl else {}, self.output_name)
        rest = {k: v for k, v in self.properties.items() if k not in ("op_name", "inputs", "output", "settings")}
        if not dsl:
            rest = {"settings": self.settings, **rest}
        if not self.runtime_settings.data:
            del rest["runtime_settings"]
        print_prop_dict(printer, rest)
        printer.print_string(" ")
        entry_args = bool(self.body.blocks) and bool(self.body.blocks[0].args)
        printer.print_region(self.body, print_entry_block_args=True, print_empty_block=entry_args)
        print_attr_dict(printer, self)

    @classmethod
    def parse(cls, parser: Parser) -> KernelOp:
        from oi_compiler.dialects.oi import parse_op_call

        op_name, inputs, settings, output = parse_op_call(parser)
        pos = parser.pos
        props = parse_prop_dict(parser, cls, ("op_name", "inputs", "output"))
        if "settings" in props and settings:
            parser.raise_error("settings given both in the call and in the property dict", pos, parser.pos)
        props = {
            "op_name": StringAttr(op_name),
            "inputs": ArrayAttr(inputs),
            "output": StringAttr(output),
            "settings": DictionaryAttr(settings),
            "runtime_settings": ArrayAttr([]),
            **props,
        }
        body = parser.parse_region()
        if not body.blocks:
            body.add_block(Block())
        return cls.create(properties=props, regions=[body], attributes=parse_attr_dict(parser, cls))

    def verify_(self) -> None:
        if self.static_error is not None:
            return
        expected = len(self.inputs.data) + 1 + len(self.runtime_settings.data)
        if len(self.body.block.args) != expected:
            raise VerifyException(
                f"oi.kernel {self.kind}: expected {expected} block arguments (inputs, output, "
                f"run-time settings), got {len(self.body.block.args)}"
            )


@irdl_op_definition
class StateViewOp(IRDLOperation):
    """`oi.state_view @K %words[%slot]`: the host buffer whose address is in word `slot` of `words`
    (the variable it holds, `@K`, or `@K.present` for a table's present bytes, when known)."""

    name = "oi.state_view"

    var = opt_prop_def(SymbolRefAttr)
    words = operand_def(MemRefType)
    slot = operand_def(IndexType)
    sizes = var_operand_def(IndexType)
    result = result_def(MemRefType)

    traits = traits_def(MemoryReadEffect())

    assembly_format = "($var^)? $words `[` $slot `]` (`(` $sizes^ `)`)? attr-dict `:` type($words) `->` type($result)"

    def __init__(self, words, slot, sizes, result_type: MemRefType, var: str | None = None):
        super().__init__(operands=[words, slot, list(sizes)], result_types=[result_type],
                         properties={"var": SymbolRefAttr(var)} if var else {})  # fmt: skip

    def verify_(self) -> None:
        ty = self.result.type
        assert isinstance(ty, MemRefType)
        dynamic = sum(1 for d in ty.get_shape() if d < 0)
        if dynamic != len(self.sizes):
            raise VerifyException(f"oi.state_view: {dynamic} dynamic sizes in the type, {len(self.sizes)} given")


@irdl_op_definition
class StepExitOp(IRDLOperation):
    """`oi.step_exit %code`: return `code` from the enclosing step function at once."""

    name = "oi.step_exit"

    code = operand_def(IntegerType)

    traits = traits_def(MemoryWriteEffect())

    assembly_format = "$code attr-dict `:` type($code)"

    def __init__(self, code):
        super().__init__(operands=[code])


LOWERED_OPS = (KernelOp, StateViewOp, StepExitOp)
