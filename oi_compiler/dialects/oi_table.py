"""The `oi_table` dialect: the table level's metadata, carried in the IR as typed attributes.

`--lower-cache` turns a graph's variables into words of one state array the host owns and its
checks into error sites. What the runtime needs of that travels in the IR, never beside it:

- `#oi_table.site<CacheError "cache index cannot be negative" at loc("g.oi":7:5)
  node "cache.write k >> K[t]" block "entry">`: an error site: the error class, the message
  template (`{0}`..`{3}` are the integer arguments the step stores), the statement's location,
  its description as the reference prints it, and the block it is written in. The step
  function's `oi.error_sites` lists them; site `n + 1` is the `n`th;
- `#oi_table.var<@K table persistent f32[1, 4] slot 13, indices [pos fixed 1024], init 0.0>`:
  how one variable lives in the state array: its kind (`buffer`, `table`, `auto`, `prefix`,
  `resizable`, `view`), memory, dtype, shape (`?`: sized at run time), first word, and per kind
  its indices (with `@fixed` sizes), `@init`, the tables a view shows, or `temp` for an
  `assign` temporary (a second word says whether its assign has run), and the variables a
  `transfer` made share its buffer (`aliases`), and a table's storage (`dense`: its entries in one
  row-major box; `paged 16 pool 64`: in pages of 16 entries along its last index, a pool of 64
  pages to start with); `slot ?` until
  `--assign-state-slots` places it;
- `#oi_table.layout<words 40, block "entry", [#oi_table.var<...>, ...], extra ["pending"]>`: the
  whole state array, the module attribute `oi_table.state_layout` that the runtime reads back
  (`extra`: the step's own words after the variables').

Ops (made by `--convert-graph-to-tables`, lowered by `--lower-undo-log` and `--lower-tables`):
variables' words and buffers are named, never numbered: `@K "size.0"` is table K's size along its
first index, `@oi.state "step_stamp"` a word of the state's header. `--assign-state-slots`
decides where each word is (the layout's `slot`s); only `--lower-tables` turns names into words.

- `oi_table.word @K "size.0" : index` / `oi_table.set_word @K "size.0", %n`: a state word;
- `oi_table.buffer @K "data" (%capacity) : memref<?x4xf32>`: the host buffer a word points to;
- `oi_table.slot @K "data"`: the word's number, for the shared helpers that take one;
- `oi_table.check %bad, #oi_table.site<...> (%a, %b)`: fail the step with that error when `%bad`;
  `oi_table.fail #oi_table.site<...>`: fail it here (a check that always fails);
- `oi_table.statement #oi_table.site<...>`: the statement running from here, for the errors the host
  raises in a callback (a table that cannot grow), which have no check of their own;
- `oi_table.journal @K "data" [%offset, %nbytes]`: the undo log: those bytes are saved before the
  write that follows, so a failed step can put them back;
- `oi_table.commit`: the step succeeded; the undo log's entries are dropped;
- `oi_table.grow "table" @K (%dim, %n)`: ask the host for room (a table's capacity, a
  destination's buffer, a view copied out...), leaving the step if it cannot.

Tables, as values: `!oi_table.table<f32[1, 4], [pos fixed 1024], dense>` says what a table is (its
entry, its indices, its storage); `%K = oi_table.table @K : !oi_table.table<...>` is the table
variable as a value, and the entry ops take it: `oi_table.write %K [%t], %k`, `oi_table.read %K
[%a : %b], %dst`, `%v = oi_table.view %K [...]`, `oi_table.reset %K [%l]`, `oi_table.resize %K`
`oi_table.copy_row %K [%s, %a : %b] -> [%d]` (what a storage implements: `--lower-table-storage`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from xdsl.dialects.builtin import (
    ArrayAttr,
    FileLineColLoc,
    IntAttr,
    LocationAttr,
    NoneAttr,
    StringAttr,
    UnitAttr,
    UnknownLoc,
)
from xdsl.dialects.builtin import DenseArrayBase, IndexType, IntegerType, MemRefType, SymbolRefAttr, i64
from xdsl.ir import Attribute, Dialect, ParametrizedAttribute, TypeAttribute
from xdsl.irdl import (
    IRDLOperation,
    irdl_attr_definition,
    irdl_op_definition,
    operand_def,
    opt_prop_def,
    param_def,
    prop_def,
    result_def,
    traits_def,
    var_operand_def,
)
from xdsl.traits import MemoryReadEffect, MemoryWriteEffect, Pure
from xdsl.ir import SSAValue
from xdsl.parser import AttrParser, Parser
from xdsl.printer import Printer
from xdsl.utils.exceptions import VerifyException

from oi_compiler.dialects.oi_attrs import parse_attr_dict, print_attr_dict, with_attrs
from oi_compiler.dtypes import dtype_type

ERROR_CLASSES = ("CacheError", "ExecutionError")
VAR_KINDS = ("buffer", "table", "auto", "prefix", "resizable", "view")
LAYOUT_ATTR = "oi_table.state_layout"  # on the module: the state array's `StateLayoutAttr`
SITES_ATTR = "oi.error_sites"  # on the step function: its `ErrorSiteAttr`s, in site order


@irdl_attr_definition
class ErrorSiteAttr(ParametrizedAttribute):
    """A check that can fail in the step: what the host raises when it does."""

    name = "oi_table.site"

    error_class: StringAttr = param_def()
    template: StringAttr = param_def()
    loc: LocationAttr = param_def()
    node: StringAttr = param_def()
    block: StringAttr = param_def()

    def __init__(self, error_class: str, template: str, loc: LocationAttr | None, node: str, block: str):
        super().__init__(StringAttr(error_class), StringAttr(template), loc or UnknownLoc(), StringAttr(node),
                         StringAttr(block))  # fmt: skip

    def verify(self) -> None:
        if self.error_class.data not in ERROR_CLASSES:
            raise VerifyException(f"#oi_table.site: error class must be one of {', '.join(ERROR_CLASSES)}, "
                                  f"got {self.error_class.data}")  # fmt: skip

    def print_parameters(self, printer: Printer) -> None:
        with printer.in_angle_brackets():
            printer.print_string(self.error_class.data + " ")
            printer.print_string_literal(self.template.data)
            printer.print_string(" at ")
            printer.print_attribute(self.loc)
            printer.print_string(" node ")
            printer.print_string_literal(self.node.data)
            printer.print_string(" block ")
            printer.print_string_literal(self.block.data)

    @classmethod
    def parse_parameters(cls, parser: AttrParser) -> Sequence[Attribute]:
        with parser.in_angle_brackets():
            error_class = parser.parse_identifier(" (the error class)")
            template = parser.parse_str_literal(" (the message template)")
            parser.parse_keyword("at")
            loc = parser.parse_optional_location()
            if loc is None:
                parser.raise_error("expected a location: loc(...)")
            parser.parse_keyword("node")
            node = parser.parse_str_literal()
            parser.parse_keyword("block")
            block = parser.parse_str_literal()
        return (StringAttr(error_class), StringAttr(template), loc, StringAttr(node), StringAttr(block))

    @property
    def where(self) -> tuple[str, int, int] | None:
        """(file, line, column) of the statement, when known."""
        loc = self.loc
        if isinstance(loc, FileLineColLoc):
            return loc.filename.data, loc.line.data, loc.column.data
        return None


def _shape_text(shape: Sequence[int]) -> str:
    return "[" + ", ".join("?" if d < 0 else str(d) for d in shape) + "]"


def _parse_shape(parser: AttrParser) -> list[int]:
    def dim() -> int:
        if parser.parse_optional_punctuation("?") is not None:
            return -1
        return parser.parse_integer(allow_negative=False, allow_boolean=False)

    return parser.parse_comma_separated_list(parser.Delimiter.SQUARE, dim)


def _parse_indices(parser: AttrParser) -> tuple[list[StringAttr], list[IntAttr]]:
    """`[pos fixed 1024, t]`: index names, each `fixed n` or growable (-1)."""
    indices: list[StringAttr] = []
    fixed: list[IntAttr] = []

    def index() -> None:
        indices.append(StringAttr(parser.parse_identifier()))
        if parser.parse_optional_keyword("fixed") is not None:
            fixed.append(IntAttr(parser.parse_integer(allow_negative=False, allow_boolean=False)))
        else:
            fixed.append(IntAttr(-1))

    parser.parse_comma_separated_list(parser.Delimiter.SQUARE, index)
    return indices, fixed


def _parse_count(parser: AttrParser) -> int:
    """A word count or number, or `?` (-1: not assigned yet, before `--assign-state-slots`)."""
    if parser.parse_optional_punctuation("?") is not None:
        return -1
    return parser.parse_integer(allow_negative=False, allow_boolean=False)


def _init_text(value: Attribute) -> str:
    """`true`, `3`, `0.5`, `1.0e-05`, or `"nan"`/`"inf"`/`"-inf"` (MLIR has no literal for those)."""
    if isinstance(value, StringAttr):  # a boolean, kept apart from the integers 0 and 1
        return value.data
    if isinstance(value, IntAttr):
        return str(value.data)
    number = value.data  # FloatData
    if not math.isfinite(number):
        return f'"{number}"'
    text = repr(number)
    mantissa, e, exponent = text.partition("e")
    if "." not in mantissa:
        mantissa += ".0"
    return mantissa + (e + exponent if e else "")


def init_attr(value: int | float | bool | None) -> Attribute:
    from xdsl.dialects.builtin import FloatData

    if value is None:
        return NoneAttr()
    if isinstance(value, bool):
        return StringAttr("true" if value else "false")
    if isinstance(value, int):
        return IntAttr(value)
    return FloatData(float(value))


def init_value(attr: Attribute) -> int | float | bool | None:
    if isinstance(attr, NoneAttr):
        return None
    if isinstance(attr, StringAttr):
        return attr.data == "true"
    return attr.data


def _parse_init(parser: AttrParser) -> Attribute:
    if (flag := parser.parse_optional_boolean()) is not None:
        return init_attr(flag)
    if (special := parser.parse_optional_str_literal()) is not None:
        return init_attr(float(special))
    return init_attr(parser.parse_number())


@irdl_attr_definition
class VarLayoutAttr(ParametrizedAttribute):
    """How one variable lives in the state array (see the module docstring)."""

    name = "oi_table.var"

    var: StringAttr = param_def()
    kind: StringAttr = param_def()
    memory: StringAttr = param_def()
    dtype: StringAttr = param_def()
    shape: ArrayAttr[IntAttr] = param_def()  # -1: sized at run time
    slot: IntAttr = param_def()
    indices: ArrayAttr[StringAttr] = param_def()
    fixed: ArrayAttr[IntAttr] = param_def()  # per index; -1: growable
    init: Attribute = param_def()  # NoneAttr | IntAttr | FloatData | StringAttr("true"/"false")
    tables: ArrayAttr[StringAttr] = param_def()
    temp: IntAttr = param_def()
    aliases: ArrayAttr[StringAttr] = param_def()  # variables `transfer` made share this buffer
    storage: StringAttr = param_def()  # a table's entries: "dense" or "paged" (a ring storage: later)
    page: IntAttr = param_def()  # a paged table's entries per page (0 otherwise)
    pool: IntAttr = param_def()  # a paged table's first pool size, in pages (0: the default)
    device: IntAttr = param_def()  # 1: its data lives in device memory (`--place-buffers`, device="cuda")

    def verify(self) -> None:
        if self.kind.data not in VAR_KINDS:
            raise VerifyException(f"#oi_table.var: kind must be one of {', '.join(VAR_KINDS)}, got {self.kind.data}")
        if len(self.fixed) != len(self.indices):
            raise VerifyException("#oi_table.var: one fixed size (or -1) per index")
        if self.storage.data not in ("", "dense", "paged") or bool(self.storage.data) != (self.kind.data == "table"):
            raise VerifyException(f"#oi_table.var: a table's storage is dense or paged (a ring storage is not "
                                  f"implemented yet), got {self.storage.data or 'none'} for a {self.kind.data}")  # fmt: skip
        if (self.storage.data == "paged") != (self.page.data > 0) or self.pool.data < 0:
            raise VerifyException("#oi_table.var: a paged table has a positive page size, no other variable has one")

    def print_parameters(self, printer: Printer) -> None:
        with printer.in_angle_brackets():
            printer.print_symbol_name(self.var.data)
            printer.print_string(f" {self.kind.data} {self.memory.data} {self.dtype.data}")
            slot = "?" if self.slot.data < 0 else str(self.slot.data)  # ?: not assigned yet
            printer.print_string(_shape_text([d.data for d in self.shape]) + f" slot {slot}")
            if self.indices.data:
                items = [i.data + (f" fixed {f.data}" if f.data >= 0 else "") for i, f in zip(self.indices, self.fixed)]
                printer.print_string(", indices [" + ", ".join(items) + "]")
            if not isinstance(self.init, NoneAttr):
                printer.print_string(", init " + _init_text(self.init))
            if self.tables.data:
                printer.print_string(", tables [")
                printer.print_list(self.tables, lambda t: printer.print_symbol_name(t.data))
                printer.print_string("]")
            if self.temp.data:
                printer.print_string(", temp")
            if self.aliases.data:
                printer.print_string(", aliases [")
                printer.print_list(self.aliases, lambda t: printer.print_symbol_name(t.data))
                printer.print_string("]")
            if self.storage.data:
                printer.print_string(f", storage {self.storage.data}")
            if self.page.data:
                printer.print_string(f" {self.page.data}")
            if self.pool.data:
                printer.print_string(f" pool {self.pool.data}")
            if self.device.data:
                printer.print_string(", device")

    @classmethod
    def parse_parameters(cls, parser: AttrParser) -> Sequence[Attribute]:
        with parser.in_angle_brackets():
            var = parser.parse_symbol_name()
            kind = parser.parse_identifier(" (the variable's kind)")
            memory = parser.parse_identifier(" (its memory)")
            dtype = parser.parse_identifier(" (its dtype)")
            shape = _parse_shape(parser)
            parser.parse_keyword("slot")
            slot = _parse_count(parser)
            indices: list[StringAttr] = []
            fixed: list[IntAttr] = []
            init: Attribute = NoneAttr()
            tables: list[StringAttr] = []
            aliases: list[StringAttr] = []
            storage = ""
            page = pool = temp = device = 0
            while parser.parse_optional_punctuation(",") is not None:
                clause = parser.parse_identifier(" (indices, init, tables, temp, aliases, storage or device)")
                if clause == "indices":
                    indices, fixed = _parse_indices(parser)
                elif clause == "init":
                    init = _parse_init(parser)
                elif clause == "tables":
                    tables = parser.parse_comma_separated_list(parser.Delimiter.SQUARE, parser.parse_symbol_name)
                elif clause == "temp":
                    temp = 1
                elif clause == "device":
                    device = 1
                elif clause == "aliases":
                    aliases = parser.parse_comma_separated_list(parser.Delimiter.SQUARE, parser.parse_symbol_name)
                elif clause == "storage":
                    storage = parser.parse_identifier(" (a table's storage: dense or paged)")
                    if storage == "paged":
                        page = parser.parse_integer(allow_negative=False, allow_boolean=False)
                        if parser.parse_optional_keyword("pool") is not None:
                            pool = parser.parse_integer(allow_negative=False, allow_boolean=False)
                else:
                    parser.raise_error(f"unknown clause {clause} (indices, init, tables, temp, aliases, storage or device)")
        return (var, StringAttr(kind), StringAttr(memory), StringAttr(dtype), ArrayAttr([IntAttr(d) for d in shape]),
                IntAttr(slot), ArrayAttr(indices), ArrayAttr(fixed), init, ArrayAttr(tables), IntAttr(temp),
                ArrayAttr(aliases), StringAttr(storage), IntAttr(page), IntAttr(pool), IntAttr(device))  # fmt: skip


@irdl_attr_definition
class StateLayoutAttr(ParametrizedAttribute):
    """The state array of a lowered step: its length, the entry block, each variable's words."""

    name = "oi_table.layout"

    words: IntAttr = param_def()
    block: StringAttr = param_def()
    vars: ArrayAttr[VarLayoutAttr] = param_def()
    extra: ArrayAttr[StringAttr] = param_def()  # the step's own words after the variables'

    def verify(self) -> None:
        names = [v.var.data for v in self.vars]
        if len(set(names)) != len(names):
            raise VerifyException("#oi_table.layout: a variable is laid out twice")

    def print_parameters(self, printer: Printer) -> None:
        with printer.in_angle_brackets():
            printer.print_string(f"words {'?' if self.words.data < 0 else self.words.data}, block ")
            printer.print_string_literal(self.block.data)
            printer.print_string(", [")
            printer.print_list(self.vars, printer.print_attribute)
            printer.print_string("]")
            if self.extra.data:
                printer.print_string(", extra [")
                printer.print_list(self.extra, lambda e: printer.print_string_literal(e.data))
                printer.print_string("]")

    @classmethod
    def parse_parameters(cls, parser: AttrParser) -> Sequence[Attribute]:
        with parser.in_angle_brackets():
            parser.parse_keyword("words")
            words = _parse_count(parser)
            parser.parse_punctuation(",")
            parser.parse_keyword("block")
            block = parser.parse_str_literal()
            parser.parse_punctuation(",")
            vars_ = parser.parse_comma_separated_list(parser.Delimiter.SQUARE, parser.parse_attribute)
            extra = []
            if parser.parse_optional_punctuation(",") is not None:
                parser.parse_keyword("extra")
                extra = parser.parse_comma_separated_list(parser.Delimiter.SQUARE,
                                                          lambda: StringAttr(parser.parse_str_literal()))  # fmt: skip
        return (IntAttr(words), StringAttr(block), ArrayAttr(vars_), ArrayAttr(extra))


STATE = "oi.state"  # the variable name of the state header's words (no DSL variable has a dot)


def _symbol(var: str | None) -> dict:
    return {"var": SymbolRefAttr(var or STATE)}


@irdl_op_definition
class WordOp(IRDLOperation):
    """A word of the state: a variable's (`@K "size.0"`) or the header's (`"step_stamp"`)."""

    name = "oi_table.word"

    var = prop_def(SymbolRefAttr)
    field = prop_def(StringAttr)
    result = result_def(IndexType)

    traits = traits_def(MemoryReadEffect())
    assembly_format = "$var $field attr-dict `:` type($result)"

    def __init__(self, var: str | None, field: str):
        super().__init__(properties={**_symbol(var), "field": StringAttr(field)}, result_types=[IndexType()])


@irdl_op_definition
class SetWordOp(IRDLOperation):
    """Write a state word."""

    name = "oi_table.set_word"

    var = prop_def(SymbolRefAttr)
    field = prop_def(StringAttr)
    value = operand_def(IndexType)

    traits = traits_def(MemoryWriteEffect())
    assembly_format = "$var $field `,` $value attr-dict"

    def __init__(self, var: str | None, field: str, value):
        super().__init__(properties={**_symbol(var), "field": StringAttr(field)}, operands=[value])


@irdl_op_definition
class BufferOp(IRDLOperation):
    """The host buffer whose address a state word holds, as a row-major memref."""

    name = "oi_table.buffer"

    var = prop_def(SymbolRefAttr)
    field = prop_def(StringAttr)
    sizes = var_operand_def(IndexType)
    result = result_def(MemRefType)

    traits = traits_def(MemoryReadEffect())
    assembly_format = "$var $field (` ` `(` $sizes^ `)`)? attr-dict `:` type($result)"

    def __init__(self, var: str | None, field: str, sizes, result_type: MemRefType):
        super().__init__(properties={**_symbol(var), "field": StringAttr(field)}, operands=[list(sizes)],
                         result_types=[result_type])  # fmt: skip

    def verify_(self) -> None:
        dynamic = sum(1 for d in self.result.type.get_shape() if d < 0)
        if dynamic != len(self.sizes):
            raise VerifyException(f"oi_table.buffer: {dynamic} dynamic sizes in the type, {len(self.sizes)} given")


@irdl_op_definition
class SlotOp(IRDLOperation):
    """The number of a state word (what the shared helpers `@oi_log`, `@oi_raise_size`... take)."""

    name = "oi_table.slot"

    var = prop_def(SymbolRefAttr)
    field = prop_def(StringAttr)
    result = result_def(IndexType)

    assembly_format = "$var $field attr-dict"

    def __init__(self, var: str | None, field: str):
        super().__init__(properties={**_symbol(var), "field": StringAttr(field)}, result_types=[IndexType()])


@irdl_op_definition
class CheckOp(IRDLOperation):
    """Fail the step with `site`'s error when `cond` holds (`args`: up to four of its `{n}`s)."""

    name = "oi_table.check"

    cond = operand_def(IntegerType(1))
    site = prop_def(ErrorSiteAttr)
    args = var_operand_def(IndexType)

    traits = traits_def(MemoryWriteEffect())
    assembly_format = "$cond `,` $site (` ` `(` $args^ `)`)? attr-dict"

    def __init__(self, cond, site: ErrorSiteAttr, args=()):
        super().__init__(operands=[cond, list(args)], properties={"site": site})

    def verify_(self) -> None:
        if len(self.args) > 4:
            raise VerifyException("oi_table.check: an error record holds four arguments")


@irdl_op_definition
class FailOp(IRDLOperation):
    """Fail the step with `site`'s error here."""

    name = "oi_table.fail"

    site = prop_def(ErrorSiteAttr)
    args = var_operand_def(IndexType)

    traits = traits_def(MemoryWriteEffect())
    assembly_format = "$site (` ` `(` $args^ `)`)? attr-dict"

    def __init__(self, site: ErrorSiteAttr, args=()):
        super().__init__(operands=[list(args)], properties={"site": site})

    def verify_(self) -> None:
        if len(self.args) > 4:
            raise VerifyException("oi_table.fail: an error record holds four arguments")


@irdl_op_definition
class StatementOp(IRDLOperation):
    """The statement running from here on: an error the host raises in a callback (a table that
    cannot grow) is reported at `site`'s location and statement."""

    name = "oi_table.statement"

    site = prop_def(ErrorSiteAttr)

    traits = traits_def(MemoryWriteEffect())
    assembly_format = "$site attr-dict"

    def __init__(self, site: ErrorSiteAttr):
        super().__init__(properties={"site": site})


@irdl_op_definition
class JournalOp(IRDLOperation):
    """Save `nbytes` bytes of a variable's buffer, from byte `offset`, in the undo log."""

    name = "oi_table.journal"

    var = prop_def(SymbolRefAttr)
    field = prop_def(StringAttr)
    offset = operand_def(IndexType)
    nbytes = operand_def(IndexType)

    traits = traits_def(MemoryWriteEffect())
    assembly_format = "$var $field ` ` `[` $offset `,` $nbytes `]` attr-dict"

    def __init__(self, var: str | None, field: str, offset, nbytes):
        super().__init__(properties={**_symbol(var), "field": StringAttr(field)}, operands=[offset, nbytes])


@irdl_op_definition
class CommitOp(IRDLOperation):
    """The step succeeded: what the undo log holds is dropped (the step's changes stay)."""

    name = "oi_table.commit"

    traits = traits_def(MemoryWriteEffect())
    assembly_format = "attr-dict"


GROW_KINDS = ("table", "resizable", "log", "view", "auto", "rebind", "prefix", "page", "release", "sizes")


@irdl_op_definition
class GrowOp(IRDLOperation):
    """Ask the host for room (`kind`: a table's capacity, a destination's buffer, a stale view
    copied out...) for the variable whose first word is named; leave the step if it cannot."""

    name = "oi_table.grow"

    kind = prop_def(StringAttr)
    var = prop_def(SymbolRefAttr)
    field = prop_def(StringAttr)
    args = var_operand_def(IndexType)

    traits = traits_def(MemoryReadEffect(), MemoryWriteEffect())
    assembly_format = "$kind $var $field (` ` `(` $args^ `)`)? attr-dict"

    def __init__(self, kind: str, var: str | None, field: str, args=()):
        super().__init__(properties={"kind": StringAttr(kind), **_symbol(var), "field": StringAttr(field)},
                         operands=[list(args)])  # fmt: skip

    def verify_(self) -> None:
        if self.kind.data not in GROW_KINDS:
            raise VerifyException(f"oi_table.grow: kind must be one of {', '.join(GROW_KINDS)}")
        if len(self.args) > 2:
            raise VerifyException("oi_table.grow: at most two arguments")


# --- whole entries: what a table's storage implements ---------------------------------------
# The statements' view of a table: write an entry, read a selection as a copy or a view, reset a
# prefix, recompute the sizes (resize), copy a row's run to another row (copy_row, `cache.fork`).
# `--convert-graph-to-tables` emits them after the statement's checks (negative indices, `@fixed`
# limits, slice bounds: typed sites, the same on every storage); a storage lowers them
# (`--lower-table-storage`: `lowering/dense_storage.py`, `lowering/paged_storage.py`), so a ring
# storage would be another lowering of the same six ops, not a change to the graph's conversion.


def _print_selection(printer: Printer, bounds: Sequence[SSAValue], slices: Sequence[int]) -> None:
    """`[%k, %a : %b]`: an index, or a slice's start and end (`slices`: 1 where a dim is a slice)."""
    values, items = iter(bounds), []
    for is_slice in slices:
        first = next(values)
        items.append((first, next(values)) if is_slice else (first,))
    printer.print_string(" [")
    for n, item in enumerate(items):
        if n:
            printer.print_string(", ")
        printer.print_operand(item[0])
        if len(item) == 2:
            printer.print_string(" : ")
            printer.print_operand(item[1])
    printer.print_string("]")


def _parse_selection(parser: Parser) -> tuple[list[SSAValue], list[int]]:
    bounds: list[SSAValue] = []
    slices: list[int] = []

    def item() -> None:
        bounds.append(parser.resolve_operand(parser.parse_unresolved_operand(), IndexType()))
        if parser.parse_optional_punctuation(":") is not None:
            bounds.append(parser.resolve_operand(parser.parse_unresolved_operand(), IndexType()))
            slices.append(1)
        else:
            slices.append(0)

    parser.parse_comma_separated_list(Parser.Delimiter.SQUARE, item)
    return bounds, slices


def _parse_row(parser: Parser) -> tuple[list[SSAValue], list[int]]:
    """`[%d, %h]` or `[]` (a table of one index has rows of no index)."""
    parser.parse_punctuation("[")
    if parser.parse_optional_punctuation("]") is not None:
        return [], []
    bounds: list[SSAValue] = []
    slices: list[int] = []

    def item() -> None:
        bounds.append(parser.resolve_operand(parser.parse_unresolved_operand(), IndexType()))
        slices.append(int(parser.parse_optional_punctuation(":") is not None))

    parser.parse_comma_separated_list(Parser.Delimiter.NONE, item)
    parser.parse_punctuation("]")
    return bounds, slices


STORAGES = ("dense", "paged", "ring")  # what a table type may say; a ring storage is not lowered yet


@irdl_attr_definition
class TableType(ParametrizedAttribute, TypeAttribute):
    """`!oi_table.table<f32[1, 4], [pos fixed 1024, t], dense>`: what a table is: its entry (dtype
    and shape), its indices (growable, or `fixed n`) and its storage (`dense`: one row-major box of
    `capacity ++ entry`; `paged 16`: pages of 16 entries along the last index, from a pool, with a
    page table per row of the other indices; `ring` is for a storage pass to come)."""

    name = "oi_table.table"

    dtype: StringAttr = param_def()
    shape: ArrayAttr[IntAttr] = param_def()
    indices: ArrayAttr[StringAttr] = param_def()
    fixed: ArrayAttr[IntAttr] = param_def()  # per index; -1: growable
    storage: StringAttr = param_def()
    page: IntAttr = param_def()  # a paged table's entries per page (0 otherwise)

    @property
    def rank(self) -> int:
        return len(self.indices)

    @property
    def entry_shape(self) -> list[int]:
        return [d.data for d in self.shape]

    def verify(self) -> None:
        if len(self.fixed) != len(self.indices):
            raise VerifyException("!oi_table.table: one fixed size (or -1) per index")
        if self.storage.data not in STORAGES:
            raise VerifyException(f"!oi_table.table: storage must be one of {', '.join(STORAGES)}, got {self.storage.data}")
        if (self.storage.data == "paged") != (self.page.data > 0):
            raise VerifyException("!oi_table.table: a paged table has a positive page size (`paged 16`), "
                                  "no other storage has one")  # fmt: skip
        if any(d.data < 0 for d in self.shape):
            raise VerifyException("!oi_table.table: an entry's shape is static")

    def print_parameters(self, printer: Printer) -> None:
        items = [i.data + (f" fixed {f.data}" if f.data >= 0 else "") for i, f in zip(self.indices, self.fixed)]
        page = f" {self.page.data}" if self.page.data else ""
        printer.print_string(f"<{self.dtype.data}{_shape_text(self.entry_shape)}, [{', '.join(items)}], "
                             f"{self.storage.data}{page}>")  # fmt: skip

    @classmethod
    def parse_parameters(cls, parser: AttrParser) -> Sequence[Attribute]:
        with parser.in_angle_brackets():
            dtype = parser.parse_identifier(" (the entry's dtype)")
            shape = _parse_shape(parser)
            parser.parse_punctuation(",")
            indices, fixed = _parse_indices(parser)
            parser.parse_punctuation(",")
            storage = parser.parse_identifier(" (the storage: dense, paged or ring)")
            page = parser.parse_integer(allow_negative=False, allow_boolean=False) if storage == "paged" else 0
        return (StringAttr(dtype), ArrayAttr([IntAttr(d) for d in shape]), ArrayAttr(indices), ArrayAttr(fixed),
                StringAttr(storage), IntAttr(page))  # fmt: skip


def table_type(dtype: str, shape: Sequence[int], indices: Sequence[str], fixed: Sequence[int | None],
               page: int = 0) -> TableType:  # fmt: skip
    """A table's type: paged storage when `page` (entries per page) is positive, else dense."""
    return TableType(StringAttr(dtype), ArrayAttr([IntAttr(d) for d in shape]),
                     ArrayAttr([StringAttr(i) for i in indices]),
                     ArrayAttr([IntAttr(-1 if f is None else f) for f in fixed]),
                     StringAttr("paged" if page else "dense"), IntAttr(page))  # fmt: skip


@irdl_op_definition
class TableOp(IRDLOperation):
    """`%K = oi_table.table @K : !oi_table.table<...>`: the table variable `@K`, as a value the
    entry ops take (its words and buffers are the layout's)."""

    name = "oi_table.table"

    var = prop_def(SymbolRefAttr)
    result = result_def(TableType)

    traits = traits_def(Pure())
    assembly_format = "$var attr-dict `:` type($result)"

    def __init__(self, var: str, ty: TableType):
        super().__init__(properties={"var": SymbolRefAttr(var)}, result_types=[ty])
        if var.isidentifier():
            self.result.name_hint = var  # printed `%K`


class _EntryOp(IRDLOperation):
    """An op on a table's entries: the table and a selection of them (an index or a slice per index)."""

    table = operand_def(TableType)
    slices = prop_def(DenseArrayBase)  # per index of the selection: 1 a slice (two bounds), 0 an index
    bounds = var_operand_def(IndexType)

    @property
    def table_type(self) -> TableType:
        return self.table.type

    @property
    def table_name(self) -> str | None:
        """The variable the table value is (None: not an `oi_table.table` op's result)."""
        owner = self.table.owner
        return owner.var.root_reference.data if isinstance(owner, TableOp) else None

    def selection(self) -> list[tuple[SSAValue] | tuple[SSAValue, SSAValue]]:
        """Per index of the selection: `(k,)` or `(start, end)`."""
        values, out = iter(self.bounds), []
        for s in self.slices.get_values():
            first = next(values)
            out.append((first, next(values)) if s else (first,))
        return out

    def verify_(self) -> None:
        flags = self.slices.get_values()
        if any(s not in (0, 1) for s in flags):
            raise VerifyException(f"{self.name}: slices are 0 (an index) or 1 (a slice)")
        wanted = sum(1 + s for s in flags)
        if wanted != len(self.bounds):
            raise VerifyException(f"{self.name}: the selection takes {wanted} bounds, got {len(self.bounds)}")
        if not isinstance(self, ResetOp) and len(flags) != self.table_type.rank:
            raise VerifyException(f"{self.name}: the table has {self.table_type.rank} indices, "
                                  f"the selection {len(flags)}")  # fmt: skip

    def selected_type(self) -> tuple[list[int | None], Attribute]:
        """The shape (None: dynamic) and element type of the selected entries, indexed dims dropped."""
        counts = [None for s in self.slices.get_values() if s]
        return counts + self.table_type.entry_shape, dtype_type(self.table_type.dtype.data)

    def _check_memref(self, ty: MemRefType, what: str) -> None:
        shape, element = self.selected_type()
        got = ty.get_shape()
        if ty.element_type != element or len(got) != len(shape) or any(
            want is not None and d != want for d, want in zip(got, shape)
        ):
            want = "x".join("?" if d is None else str(d) for d in shape)
            raise VerifyException(f"{self.name}: {what} must be a memref of {want or 'one'} {element} "
                                  f"(the selected entries), got {ty}")  # fmt: skip

    def _print_head(self, printer: Printer) -> None:
        printer.print_string(" ")
        printer.print_operand(self.table)
        _print_selection(printer, self.bounds, self.slices.get_values())

    @staticmethod
    def _parse_head(parser: Parser):
        table = parser.parse_unresolved_operand()
        bounds, slices = _parse_selection(parser)
        return table, bounds, slices

    def _print_with_memref(self, printer: Printer, memref: SSAValue) -> None:
        """`%K [selection], %m attr-dict : table-type, memref-type` (write's source, read's destination)."""
        self._print_head(printer)
        printer.print_string(", ")
        printer.print_operand(memref)
        print_attr_dict(printer, self)
        printer.print_string(" : ")
        printer.print_attribute(self.table.type)
        printer.print_string(", ")
        printer.print_attribute(memref.type)

    @classmethod
    def _parse_with_memref(cls, parser: Parser, no_slice: str | None = None):
        """What `_print_with_memref` prints: (table, bounds, slices, memref, attrs), resolved
        (`no_slice`: the error for a selection with a slice, at the selection)."""
        table, bounds, slices = cls._parse_head(parser)
        if no_slice is not None and any(slices):
            parser.raise_error(no_slice)
        parser.parse_punctuation(",")
        memref = parser.parse_unresolved_operand()
        attrs = parse_attr_dict(parser, cls)
        parser.parse_punctuation(":")
        table = parser.resolve_operand(table, parser.parse_type())
        parser.parse_punctuation(",")
        return table, bounds, slices, parser.resolve_operand(memref, parser.parse_type()), attrs


@irdl_op_definition
class WriteOp(_EntryOp):
    """`oi_table.write %K [%k, ...], %src : !oi_table.table<...>, memref<4xf32>`: the entry at the
    key becomes `%src` (present; growable sizes raised to cover it; its old bytes journaled)."""

    name = "oi_table.write"

    source = operand_def(MemRefType)
    traits = traits_def(MemoryReadEffect(), MemoryWriteEffect())

    def __init__(self, table: SSAValue, key: Sequence[SSAValue], source: SSAValue):
        props = {"slices": DenseArrayBase.from_list(i64, [0] * len(key))}
        super().__init__(properties=props, operands=[source, table, list(key)])  # this class's operand first

    def verify_(self) -> None:
        super().verify_()
        if any(self.slices.get_values()):
            raise VerifyException("oi_table.write: writes one entry (an index per table index, no slice)")
        self._check_memref(self.source.type, "the source")

    def print(self, printer: Printer) -> None:
        self._print_with_memref(printer, self.source)

    @classmethod
    def parse(cls, parser: Parser) -> WriteOp:
        table, key, _, source, attrs = cls._parse_with_memref(parser, "oi_table.write takes an index per table "
                                                                        "index, no slice")  # fmt: skip
        return with_attrs(cls(table, key, source), attrs)


@irdl_op_definition
class ReadOp(_EntryOp):
    """`oi_table.read %K [%a : %b], %dst : !oi_table.table<...>, memref<?x4xf32>`: copy the selected
    entries (indexed dims dropped) into `%dst` (they become present; growable sizes raised)."""

    name = "oi_table.read"

    target = operand_def(MemRefType)
    traits = traits_def(MemoryReadEffect(), MemoryWriteEffect())

    def __init__(self, table: SSAValue, bounds: Sequence[SSAValue], slices: Sequence[int], target: SSAValue):
        props = {"slices": DenseArrayBase.from_list(i64, [int(s) for s in slices])}
        super().__init__(properties=props, operands=[target, table, list(bounds)])

    def verify_(self) -> None:
        super().verify_()
        self._check_memref(self.target.type, "the destination")

    def print(self, printer: Printer) -> None:
        self._print_with_memref(printer, self.target)

    @classmethod
    def parse(cls, parser: Parser) -> ReadOp:
        table, bounds, slices, target, attrs = cls._parse_with_memref(parser)
        return with_attrs(cls(table, bounds, slices, target), attrs)


@irdl_op_definition
class ViewOp(_EntryOp):
    """`%v = oi_table.view %K [%t, %a : %b] : !oi_table.table<...> -> memref<...>`: the selected
    entries in place (valid until the table next changes or grows; they become present, sizes
    raised as by a read).

    A slice of a paged table is in place only when it lies in one page: the op then names the
    variable whose gather buffer (its `gather` and `gather.capacity` words) holds it otherwise,
    `oi_table.view %K [%t, %a : %b] gather @v : ... -> memref<...>` (the result views the page, or
    that buffer after the gather). The gather variable is required there and allowed nowhere else."""

    name = "oi_table.view"

    gather = opt_prop_def(SymbolRefAttr)
    result = result_def(MemRefType)
    traits = traits_def(MemoryReadEffect(), MemoryWriteEffect())

    def __init__(self, table: SSAValue, bounds: Sequence[SSAValue], slices: Sequence[int], result_type: MemRefType,
                 gather: str | None = None):  # fmt: skip
        props = {"slices": DenseArrayBase.from_list(i64, [int(s) for s in slices])}
        if gather is not None:
            props["gather"] = SymbolRefAttr(gather)
        super().__init__(properties=props, operands=[table, list(bounds)], result_types=[result_type])

    @property
    def gather_var(self) -> str | None:
        return self.gather.root_reference.data if self.gather is not None else None

    def verify_(self) -> None:
        super().verify_()
        self._check_memref(self.result.type, "the view")
        needs = self.table_type.page.data > 0 and any(self.slices.get_values())
        if needs and self.gather is None:
            raise VerifyException(f"{self.name}: a slice of a paged table may span pages: it needs a variable "
                                  "to gather into (`gather @v`)")  # fmt: skip
        if self.gather is not None and not needs:
            raise VerifyException(f"{self.name}: `gather` is only for a slice of a paged table")

    def print(self, printer: Printer) -> None:
        self._print_head(printer)
        if self.gather is not None:
            printer.print_string(" gather ")
            printer.print_attribute(self.gather)
        print_attr_dict(printer, self)
        printer.print_string(" : ")
        printer.print_attribute(self.table.type)
        printer.print_string(" -> ")
        printer.print_attribute(self.result.type)

    @classmethod
    def parse(cls, parser: Parser) -> ViewOp:
        table, bounds, slices = cls._parse_head(parser)
        gather = parser.parse_symbol_name().data if parser.parse_optional_keyword("gather") else None
        attrs = parse_attr_dict(parser, cls)
        parser.parse_punctuation(":")
        table_ty = parser.parse_type()
        parser.parse_punctuation("->")
        op = cls(parser.resolve_operand(table, table_ty), bounds, slices, parser.parse_type(), gather)
        return with_attrs(op, attrs)


@irdl_op_definition
class ResetOp(_EntryOp):
    """`oi_table.reset %K [%k] : !oi_table.table<...>`: the entries whose first indices are the
    prefix go back to `@init` and stop being present (journaled); growable sizes are recomputed
    from the present entries. A prefix longer than the table's indices names no entry.
    `oi_table.reset %K [%k] keep_sizes`: the sizes stay (an `oi_table.resize` after several
    resets recomputes them once)."""

    name = "oi_table.reset"

    keep_sizes = opt_prop_def(UnitAttr)
    traits = traits_def(MemoryReadEffect(), MemoryWriteEffect())

    def __init__(self, table: SSAValue, prefix: Sequence[SSAValue], keep_sizes: bool = False):
        props: dict[str, Attribute] = {"slices": DenseArrayBase.from_list(i64, [0] * len(prefix))}
        if keep_sizes:
            props["keep_sizes"] = UnitAttr()
        super().__init__(properties=props, operands=[table, list(prefix)])

    def verify_(self) -> None:
        super().verify_()
        if any(self.slices.get_values()):
            raise VerifyException("oi_table.reset: a prefix of indices, no slice")

    def print(self, printer: Printer) -> None:
        self._print_head(printer)
        if self.keep_sizes is not None:
            printer.print_string(" keep_sizes")
        print_attr_dict(printer, self)
        printer.print_string(" : ")
        printer.print_attribute(self.table.type)

    @classmethod
    def parse(cls, parser: Parser) -> ResetOp:
        table, prefix, slices = cls._parse_head(parser)
        if any(slices):
            parser.raise_error("oi_table.reset takes a prefix of indices, no slice")
        keep = parser.parse_optional_keyword("keep_sizes") is not None
        attrs = parse_attr_dict(parser, cls)
        parser.parse_punctuation(":")
        return with_attrs(cls(parser.resolve_operand(table, parser.parse_type()), prefix, keep), attrs)


@irdl_op_definition
class ResizeOp(_EntryOp):
    """`oi_table.resize %K : !oi_table.table<...>`: growable sizes recomputed from the present
    entries (after `oi_table.reset ... keep_sizes`)."""

    name = "oi_table.resize"

    traits = traits_def(MemoryReadEffect(), MemoryWriteEffect())

    def __init__(self, table: SSAValue):
        super().__init__(properties={"slices": DenseArrayBase.from_list(i64, [])}, operands=[table, []])

    def verify_(self) -> None:
        if self.slices.get_values() or self.bounds:
            raise VerifyException("oi_table.resize takes no selection")

    def print(self, printer: Printer) -> None:
        printer.print_string(" ")
        printer.print_operand(self.table)
        print_attr_dict(printer, self)
        printer.print_string(" : ")
        printer.print_attribute(self.table.type)

    @classmethod
    def parse(cls, parser: Parser) -> ResizeOp:
        table = parser.parse_unresolved_operand()
        attrs = parse_attr_dict(parser, cls)
        parser.parse_punctuation(":")
        return with_attrs(cls(parser.resolve_operand(table, parser.parse_type())), attrs)


@irdl_op_definition
class CopyRowOp(_EntryOp):
    """`oi_table.copy_row %K [%s, %h, %a : %b] -> [%d, %h] : !oi_table.table<...>`: entries
    `(s, h, t)` for `a <= t < b` copied to `(d, h, t)`, in order of `t`, each as a `read` of the one
    (present, sizes raised) then a `write` of the other (`cache.fork`). A paged storage shares the
    source's whole pages instead of copying them (copy on write)."""

    name = "oi_table.copy_row"

    traits = traits_def(MemoryReadEffect(), MemoryWriteEffect())

    def __init__(self, table: SSAValue, source: Sequence[SSAValue], start: SSAValue, end: SSAValue,
                 dest: Sequence[SSAValue]):  # fmt: skip
        flags = [0] * len(source) + [1] + [0] * len(dest)
        super().__init__(properties={"slices": DenseArrayBase.from_list(i64, flags)},
                         operands=[table, [*source, start, end, *dest]])  # fmt: skip

    def selection(self) -> list[tuple[SSAValue] | tuple[SSAValue, SSAValue]]:
        """The source's entries: an index per leading index, then the slice of the last."""
        return super().selection()[: self.table_type.rank]

    @property
    def dest(self) -> list[SSAValue]:
        """The destination row: an index per leading index of the table."""
        return list(self.bounds)[self.table_type.rank + 1 :]

    def verify_(self) -> None:
        rank = self.table_type.rank
        if list(self.slices.get_values()) != [0] * (rank - 1) + [1] + [0] * (rank - 1) or \
                len(self.bounds) != 2 * rank:  # fmt: skip
            raise VerifyException("oi_table.copy_row: a source row and a slice of its last index, then a "
                                  f"destination row (rows of {rank - 1} index values)")  # fmt: skip

    def print(self, printer: Printer) -> None:
        rank = self.table_type.rank
        printer.print_string(" ")
        printer.print_operand(self.table)
        _print_selection(printer, list(self.bounds)[: rank + 1], [0] * (rank - 1) + [1])
        printer.print_string(" ->")
        _print_selection(printer, self.dest, [0] * (rank - 1))
        print_attr_dict(printer, self)
        printer.print_string(" : ")
        printer.print_attribute(self.table.type)

    @classmethod
    def parse(cls, parser: Parser) -> CopyRowOp:
        table, bounds, slices = cls._parse_head(parser)
        parser.parse_punctuation("->")
        dest, dest_slices = _parse_row(parser)
        if slices != [0] * (len(slices) - 1) + [1] or any(dest_slices) or len(dest) != len(slices) - 1:
            parser.raise_error("oi_table.copy_row: a source row and a slice of its last index, then a "
                               "destination row of as many indices")  # fmt: skip
        attrs = parse_attr_dict(parser, cls)
        parser.parse_punctuation(":")
        table = parser.resolve_operand(table, parser.parse_type())
        return with_attrs(cls(table, bounds[:-2], bounds[-2], bounds[-1], dest), attrs)


ENTRY_OPS = (WriteOp, ReadOp, ViewOp, ResetOp, ResizeOp, CopyRowOp)
TABLE_OPS = (WordOp, SetWordOp, BufferOp, SlotOp, CheckOp, FailOp, StatementOp, JournalOp, CommitOp, GrowOp, TableOp,
             *ENTRY_OPS)

OI_TABLE = Dialect("oi_table", list(TABLE_OPS), [ErrorSiteAttr, VarLayoutAttr, StateLayoutAttr, TableType])
