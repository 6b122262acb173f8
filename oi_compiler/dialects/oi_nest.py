"""`oi.nest`: an Accera-style loop nest at the loop level (L2), before it is scheduled.

    oi.nest domain(i = 64, j = 64, k = 64) arrays(input A = %A : memref<64x64xf32>,
        input B = %B : memref<64x64xf32>, input_output C = %C : memref<64x64xf32>) {
    ^bb0(%i: index, %j: index, %k: index):
      %a = memref.load %A[%i, %k] : memref<64x64xf32>
      ...
      memref.store %s, %C[%i, %j] : memref<64x64xf32>
    } {oi.schedule = {...}, oi.plan = {...}}

(the generic form, `"oi.nest"(%A, %B, %C) <{domain = array<i64: 64, 64, 64>, indices = [...],
names = [...], roles = [...]}> ({...}) {...} : (...) -> ()`, reads back too). `domain(index =
extent, ...)` gives `indices` and `domain`; each array is `role name = %value : type`. A name
that is not a bare identifier prints as a string literal, and properties the syntax cannot
spell (lists of unequal lengths, in IR that does not verify) print in a `<{...}>` property
dict after `arrays(...)`; discardable attributes print last, as `attr-dict`.

The iteration domain is the box `[0, domain[d])` for each index; the body runs once per
point, in any order the schedule gives (the logic must not depend on it beyond its
accumulations). The body's block arguments are the indices; array accesses are
`memref.load`/`memref.store` whose indices are the block arguments, constants or
`affine.apply` of them (affine accesses). `names` and `roles` describe the operands (the arrays):
roles are `input`, `input_output`, `const` and `temp`.

`oi.schedule` and `oi.plan` (discardable attributes) carry the schedule and the plan; see
docs/loop_nests.md. `--tile` schedules the op: its body becomes the `scf.for` loops of the
schedule (the block then has no arguments), `--cache` and `--double-buffer` rewrite those
loops, and `--lower-nests` inlines the loops where the op was.
"""

from __future__ import annotations

from xdsl.dialects.builtin import ArrayAttr, DenseArrayBase, IndexType, MemRefType, StringAttr, i64
from xdsl.ir import Attribute, Block
from xdsl.irdl import IRDLOperation, irdl_op_definition, prop_def, region_def, traits_def, var_operand_def
from xdsl.parser import Parser
from xdsl.printer import Printer
from xdsl.traits import NoTerminator
from xdsl.utils.exceptions import VerifyException

from oi_compiler.dialects.oi_attrs import (
    is_bare_identifier,
    parse_attr_dict,
    parse_prop_dict,
    print_attr_dict,
    print_prop_dict,
)

ROLES = ("input", "input_output", "const", "temp")


@irdl_op_definition
class NestOp(IRDLOperation):
    """An iteration domain and a body over arrays (see the module docstring)."""

    name = "oi.nest"

    arrays = var_operand_def(MemRefType)
    domain = prop_def(DenseArrayBase)
    indices = prop_def(ArrayAttr[StringAttr])
    names = prop_def(ArrayAttr[StringAttr])
    roles = prop_def(ArrayAttr[StringAttr])
    body = region_def("single_block")

    traits = traits_def(NoTerminator())

    def __init__(self, arrays, domain, indices, names, roles, body):
        super().__init__(
            operands=[arrays],
            properties={
                "domain": DenseArrayBase.from_list(i64, list(domain)),
                "indices": ArrayAttr([StringAttr(n) for n in indices]),
                "names": ArrayAttr([StringAttr(n) for n in names]),
                "roles": ArrayAttr([StringAttr(r) for r in roles]),
            },
            regions=[body],
        )

    @property
    def extents(self) -> list[int]:
        return [int(v) for v in self.domain.get_values()]

    @property
    def index_names(self) -> list[str]:
        return [a.data for a in self.indices.data]

    @property
    def array_names(self) -> list[str]:
        return [a.data for a in self.names.data]

    @property
    def array_roles(self) -> list[str]:
        return [a.data for a in self.roles.data]

    @property
    def scheduled(self) -> bool:
        """Whether `--tile` has turned the body into the schedule's loops."""
        return "oi.scheduled" in self.attributes

    def print(self, printer: Printer) -> None:
        rest: dict[str, Attribute] = {}
        if self.domain.elt_type == i64 and len(self.indices.data) == len(self.domain):
            entries = [f"{_name_text(n)} = {e}" for n, e in zip(self.index_names, self.extents, strict=True)]
            printer.print_string(" domain(" + ", ".join(entries) + ")")
        else:
            rest.update(domain=self.domain, indices=self.indices)
        named = len(self.names.data) == len(self.roles.data) == len(self.arrays)
        if not named:
            rest.update(names=self.names, roles=self.roles)
        printer.print_string(" arrays(")
        for n, array in enumerate(self.arrays):
            if n:
                printer.print_string(", ")
            if named:
                printer.print_string(f"{_name_text(self.roles.data[n].data)} {_name_text(self.names.data[n].data)} = ")
            printer.print_operand(array)
            printer.print_string(" : ")
            printer.print_attribute(array.type)
        printer.print_string(")")
        print_prop_dict(printer, rest)
        printer.print_string(" ")
        entry_args = bool(self.body.blocks) and bool(self.body.blocks[0].args)
        printer.print_region(self.body, print_entry_block_args=True, print_empty_block=entry_args)
        print_attr_dict(printer, self)

    @classmethod
    def parse(cls, parser: Parser) -> NestOp:
        props: dict[str, Attribute] = {}
        if parser.parse_optional_keyword("domain") is not None:
            entries = parser.parse_comma_separated_list(parser.Delimiter.PAREN, lambda: _parse_domain_entry(parser))
            props["indices"] = ArrayAttr([StringAttr(n) for n, _ in entries])
            props["domain"] = DenseArrayBase.from_list(i64, [e for _, e in entries])
        parser.parse_keyword("arrays")
        arrays, names, roles = [], [], []

        def parse_array() -> None:
            if not parser._current_token.text.startswith("%"):
                roles.append(_parse_name(parser))
                names.append(_parse_name(parser))
                parser.parse_punctuation("=")
            operand = parser.parse_unresolved_operand()
            parser.parse_punctuation(":")
            arrays.append(parser.resolve_operand(operand, parser.parse_type()))

        pos = parser.pos
        parser.parse_comma_separated_list(parser.Delimiter.PAREN, parse_array)
        if len(names) not in (0, len(arrays)):
            parser.raise_error("give every array a role and a name, or none", pos, parser.pos)
        if arrays and names:
            props["names"] = ArrayAttr([StringAttr(n) for n in names])
            props["roles"] = ArrayAttr([StringAttr(r) for r in roles])
        elif not arrays:
            props.update(names=ArrayAttr([]), roles=ArrayAttr([]))
        pos = parser.pos
        extra = parse_prop_dict(parser, cls)
        if clash := set(extra) & set(props):
            parser.raise_error(f"property {sorted(clash)[0]!r} is already given by the syntax", pos, parser.pos)
        props.update(extra)
        if missing := {"domain", "indices", "names", "roles"} - set(props):
            parser.raise_error(f"oi.nest needs {', '.join(sorted(missing))}", pos, parser.pos)
        body = parser.parse_region()
        if not body.blocks:
            body.add_block(Block())
        return cls.create(operands=arrays, properties=props, regions=[body], attributes=parse_attr_dict(parser, cls))

    def verify_(self) -> None:
        extents = self.extents
        names = self.index_names
        if len(names) != len(extents) or len(set(names)) != len(names):
            raise VerifyException("oi.nest needs one distinct index name per domain dimension")
        if any(e < 1 for e in extents):
            raise VerifyException(f"oi.nest domain sizes must be at least 1, got {extents}")
        if len(self.array_names) != len(self.arrays) or len(self.array_roles) != len(self.arrays):
            raise VerifyException("oi.nest needs one name and one role per array")
        if bad := [r for r in self.array_roles if r not in ROLES]:
            raise VerifyException(f"oi.nest array role {bad[0]!r} is not one of {', '.join(ROLES)}")
        args = self.body.block.args
        if self.scheduled:
            return
        if len(args) != len(extents) or any(not isinstance(a.type, IndexType) for a in args):
            raise VerifyException("oi.nest body takes one index argument per domain dimension")


NEST_OPS = [NestOp]


def _name_text(name: str) -> str:
    """An index, array or role name: bare when it lexes as an identifier, else a string literal."""
    return name if is_bare_identifier(name) else str(StringAttr(name))


def _parse_name(parser: Parser) -> str:
    if (text := parser.parse_optional_str_literal()) is not None:
        return text
    return parser.parse_identifier(" (a name)")


def _parse_domain_entry(parser: Parser) -> tuple[str, int]:
    name = _parse_name(parser)
    parser.parse_punctuation("=")
    return name, parser.parse_integer(allow_boolean=False, allow_negative=True)
