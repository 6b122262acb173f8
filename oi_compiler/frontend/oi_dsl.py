"""The OpenInfer DSL front end: `.oi` text (the body of `graph! { ... }`) to `oi` IR.

The grammar is upstream's (`openinfer-dsl/src/parsers`), read in one pass by
recursive descent; each statement becomes one `oi` op whose location is the
statement's first token. Errors are `ParseError`s at file:line:col, worded as
upstream's parser words them where it has a message for the case.
"""

from __future__ import annotations

import math
import re

from xdsl.dialects.builtin import (
    ArrayAttr,
    BoolAttr,
    DenseArrayBase,
    FileLineColLoc,
    FloatAttr,
    IntAttr,
    IntegerAttr,
    StringAttr,
    SymbolRefAttr,
    f64,
    i64,
)
from xdsl.ir import Attribute, Block, Operation, Region

from oi_compiler.dialects import oi
from oi_compiler.dialects.oi_attrs import CacheAccessAttr, DimAttr, SliceAttr, TensorType, VarRefAttr
from oi_compiler.dtypes import DTYPE_NAMES, dtype_type
from oi_compiler.errors import OiError, ParseError, SourceLoc
from oi_compiler.frontend.oi_lexer import EOF, FLOAT, IDENT, INT, STRING, Lexer, Token

_VAR_ATTRS = ("init", "ref", "pattern", "table", "auto_dim", "fixed", "paged")
_CACHE_OPS = ("read", "write", "increment", "decrement", "reset", "append", "save", "load", "fork", "pop")


def parse_module(text: str, filename: str = "<string>"):
    """Parse DSL text into a `builtin.module` holding one `oi.graph`."""
    from xdsl.dialects.builtin import ModuleOp

    from oi_compiler.boundary import internal_error

    parser = DslParser(text, filename)
    try:
        graph = parser.parse_graph()
    except RecursionError:
        raise parser.error("statements nest too deeply") from None
    except OiError:
        raise
    except Exception as e:  # a bug: an InternalError at the token the parser was on
        raise internal_error(e, "parse", parser.current_loc()) from e
    return ModuleOp([graph])


def graph_name_for(filename: str) -> str:
    stem = re.sub(r"\.[^./\\]*$", "", re.split(r"[/\\]", filename)[-1])
    return stem if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", stem) else "graph"


class DslParser:
    def __init__(self, text: str, filename: str = "<string>"):
        self.lexer = Lexer(text, filename)
        self.filename = filename
        self.toks = self.lexer.tokens()
        self.i = 0
        self.loop_depth = 0  # loops around the statement being parsed

    # --- token helpers -----------------------------------------------------------------

    @property
    def tok(self) -> Token:
        return self.toks[self.i]

    def peek(self, k: int = 1) -> Token:
        return self.toks[min(self.i + k, len(self.toks) - 1)]

    def advance(self) -> Token:
        t = self.toks[self.i]
        if t.kind != EOF:
            self.i += 1
        return t

    def current_loc(self) -> SourceLoc | None:
        """Where the parser is (for an internal error's location)."""
        try:
            return self.lexer.loc(self.toks[min(self.i, len(self.toks) - 1)].offset)
        except Exception:  # noqa: BLE001 - only ever called on an error path
            return None

    def error(self, message: str, tok: Token | None = None) -> ParseError:
        return self.lexer.error(message, (tok or self.tok).offset)

    def accept(self, punct: str) -> Token | None:
        if self.tok.is_punct(punct):
            return self.advance()
        return None

    def expect(self, punct: str) -> Token:
        if not self.tok.is_punct(punct):
            raise self.error(f"expected `{punct}`, found {self.tok.describe()}")
        return self.advance()

    def accept_word(self, word: str) -> Token | None:
        if self.tok.is_word(word):
            return self.advance()
        return None

    def expect_word(self, word: str) -> Token:
        if not self.tok.is_word(word):
            raise self.error(f"expected `{word}`, found {self.tok.describe()}")
        return self.advance()

    def expect_ident(self, what: str = "identifier") -> str:
        if self.tok.kind != IDENT:
            raise self.error(f"expected {what}, found {self.tok.describe()}")
        return self.advance().text

    def located(self, op: Operation, tok: Token) -> Operation:
        op.location = FileLineColLoc(StringAttr(self.filename), IntAttr(tok.line), IntAttr(tok.column))
        return op

    def comma_list(self, close: str, item) -> list:
        """Items separated by commas up to `close` (consumed); a trailing comma is allowed."""
        items = []
        while not self.accept(close):
            items.append(item())
            if not self.accept(","):
                self.expect(close)
                break
        return items

    # --- graph and sections -------------------------------------------------------------

    def parse_graph(self) -> oi.GraphOp:
        body = Block()
        start = self.tok
        wrapped = self.tok.is_word("graph") and self.peek().is_punct("!")
        if wrapped:
            self.advance(), self.advance()
            self.expect("{")
        while not (self.tok.kind == EOF or (wrapped and self.tok.is_punct("}"))):
            body.add_ops(self.parse_section())
        if wrapped:
            self.expect("}")
            self.accept(";")
        if self.tok.kind != EOF:
            raise self.error(f"unexpected {self.tok.describe()} after the graph")
        graph = oi.GraphOp(graph_name_for(self.filename), Region(body))
        return self.located(graph, start)

    def parse_section(self) -> list[Operation]:
        tok = self.tok
        if tok.kind == IDENT and tok.text in oi.MEMORY_KINDS:
            self.advance()
            self.expect("{")
            decls = []
            while not self.accept("}"):
                decls.append(self.parse_var_decl(tok.text))
            return decls
        if tok.is_word("block"):
            self.advance()
            name = self.expect_ident("block name")
            return [self.located(oi.BlockOp(name, self.parse_body()), tok)]
        raise self.error("expected memory section or block")

    def parse_body(self) -> Region:
        self.expect("{")
        block = Block()
        while not self.accept("}"):
            if self.tok.kind == EOF:
                raise self.error("expected `}`, found end of input")
            block.add_op(self.parse_node())
        return Region(block)

    # --- declarations ---------------------------------------------------------------------

    def parse_var_decl(self, kind: str) -> oi.VarOp:
        start = self.tok
        name = self.expect_ident("variable name")
        indices: list[str] = []
        if self.tok.is_punct("("):
            paren = self.advance()
            indices = self.comma_list(")", lambda: self.expect_ident("index name"))
            if not indices:
                raise self.error("prefix table must declare at least one index", paren)
        self.expect(":")
        var_type = self.parse_type()
        attrs: dict = {}
        while self.tok.is_punct("@"):
            self.advance()
            attr_tok = self.tok
            key = self.expect_ident("attribute name")
            if key not in _VAR_ATTRS:
                raise self.error("unsupported attribute", attr_tok)
            if key in attrs:
                raise self.error(f"duplicate @{key} attribute", attr_tok)
            attrs[key] = self.parse_var_attr(key)
        self.expect(";")
        if "init" in attrs:  # checked against the dtype once the declaration is read (upstream's
            attrs["init"] = self.init_value(*attrs["init"], var_type.dtype)  # codegen, after parsing)
        op = oi.VarOp(
            kind,
            name,
            var_type,
            indices=indices,
            init=attrs.get("init"),
            ref=attrs.get("ref"),
            pattern=attrs.get("pattern"),
            table="table" in attrs,
            auto_dim=attrs.get("auto_dim", ()),
            fixed=attrs.get("fixed"),
            paged=attrs.get("paged"),
        )
        return self.located(op, start)

    def parse_type(self) -> TensorType:
        tok = self.tok
        dtype = self.expect_ident("dtype")
        if dtype not in DTYPE_NAMES:
            raise self.error(f"unsupported dtype {dtype}", tok)
        dims: list[DimAttr] = []
        if self.accept("["):
            dims = self.comma_list("]", self.parse_dim)
        return TensorType(dtype, dims)

    def parse_dim(self) -> DimAttr:
        first = self.parse_dim_atom()
        if self.accept("*"):
            return DimAttr(first, self.parse_dim_atom())
        return DimAttr(first)

    def parse_dim_atom(self) -> int | str:
        if self.tok.kind in (IDENT, INT):
            return self.advance().value
        raise self.error("expected identifier or integer for dimension expression")

    def parse_var_attr(self, key: str):
        """An attribute's value as written; `@init`'s is (literal, token), checked against the
        dtype by `init_value` after the declaration's last attribute (so a repeated attribute is
        reported before a bad value, as upstream's parser does)."""
        if key == "table":
            return True
        open_tok = self.expect("(")
        if key == "init":
            value = self.parse_init()
        elif key == "ref":
            if self.tok.kind not in (STRING, IDENT):
                raise self.error("expected a string literal or an identifier")
            value = self.advance().value
        elif key == "pattern":
            if self.tok.kind != STRING:
                raise self.error("expected a string literal")
            value = self.advance().value
        elif key == "auto_dim":
            value = self.comma_list(")", lambda: self.expect_ident("index name"))
            if not value:
                raise self.error("@auto_dim requires at least one index", open_tok)
            return value
        elif key == "paged":  # its options are checked by the verifier, after the last attribute
            entries = self.comma_list(")", self.parse_paged_entry)
            value = dict(entries)
            if len(value) < len(entries):
                raise self.error("@paged names an option twice", open_tok)
            return value
        else:  # fixed
            entries = self.comma_list(")", self.parse_fixed_entry)
            value = dict(entries)
            if not value:
                raise self.error("@fixed requires at least one entry", open_tok)
            if len(value) < len(entries):
                raise self.error("@fixed names an index twice", open_tok)
            return value
        self.expect(")")
        return value

    def parse_fixed_entry(self) -> tuple[str, int]:
        return self.parse_named_integer("index name", lambda key, n: f"fixed size {n} for {key} is out of range "
                                                                     "(at most 2**63 - 1)")  # fmt: skip

    def parse_paged_entry(self) -> tuple[str, int]:
        """`page = 16` (entries per page) or `pages = 256` (the pool's first size, in pages); which
        options and values are valid is the verifier's (`verify/vars.py`)."""
        return self.parse_named_integer("page or pages", lambda key, n: f"@paged {key} = {n} is out of range "
                                                                        "(1 to 2**31 - 1)")  # fmt: skip

    def parse_named_integer(self, what: str, too_large) -> tuple[str, int]:
        """`name = N` (an attribute's entry); `too_large(name, N)` is the message for an N the IR
        cannot hold (it holds them as i64)."""
        key = self.expect_ident(what)
        self.expect("=")
        if self.tok.kind != INT:
            raise self.error(f"expected integer, found {self.tok.describe()}")
        if self.tok.value >= 2**63:
            raise self.error(too_large(key, self.tok.value))
        return key, self.advance().value

    def parse_init(self) -> tuple[bool | int | float, Token]:
        """`@init`'s literal and its token (the value is checked against the dtype by `init_value`)."""
        tok = self.tok
        if tok.kind == IDENT and tok.text in ("true", "false"):
            self.advance()
            return tok.text == "true", tok
        negative = self.accept("-") is not None
        tok = self.tok
        if tok.kind not in (INT, FLOAT):
            raise self.error(f"expected a literal, found {tok.describe()}")
        self.advance()
        return (-tok.value if negative else tok.value), tok

    def init_value(self, value: bool | int | float, tok: Token, dtype: str) -> Attribute:
        try:
            return oi.init_attr(value, dtype)
        except ValueError as e:
            raise self.error(str(e), tok) from None

    # --- statements --------------------------------------------------------------------

    def parse_node(self) -> Operation:
        tok = self.tok
        word = tok.text if tok.kind == IDENT else None
        handler = {
            "assign": self.parse_assign,
            "op": self.parse_op,
            "cache": self.parse_cache,
            "branch": self.parse_branch,
            "barrier": self.parse_barrier,
            "dep": self.parse_dep,
            "transfer": self.parse_transfer,
            "loop": self.parse_loop,
            "yield": self.parse_yield,
            "await": self.parse_await,
            "return": self.parse_return,
        }.get(word)
        if handler is None:
            raise self.error("unsupported node")
        self.advance()
        return self.located(handler(), tok)

    def end(self) -> None:
        self.expect(";")

    def parse_assign(self) -> Operation:
        name = self.expect_ident("variable name")
        self.expect(":")
        var_type = self.parse_type()
        self.end()
        return oi.AssignOp(name, var_type)

    def parse_op(self) -> Operation:
        name = self.expect_ident("op name")
        self.expect("(")
        inputs: list[VarRefAttr] = []
        settings: dict[str, Attribute] = {}

        def arg() -> None:
            if self.tok.kind == IDENT and self.peek().is_punct("="):
                key_tok = self.advance()
                self.advance()
                if key_tok.text in settings:
                    raise self.error(f"duplicate setting: {key_tok.text}", key_tok)
                settings[key_tok.text] = self.parse_setting(key_tok)
            else:
                ref_tok = self.tok
                ref = self.parse_var_ref()
                if settings:
                    raise self.error("positional args must come before settings", ref_tok)
                inputs.append(ref)

        self.comma_list(")", arg)
        self.expect(">>")
        output = self.expect_ident("output variable")
        self.end()
        return oi.NamedOp(name, inputs, output, settings)

    def parse_setting(self, key_tok: Token) -> Attribute:
        key, tok = key_tok.text, self.tok
        if tok.is_punct("["):
            value = self.parse_list_value(key)
        elif tok.kind == IDENT and tok.text in ("true", "false"):
            self.advance()
            value = BoolAttr.from_bool(tok.text == "true")
        elif tok.kind == IDENT and tok.text == "inf":
            self.advance()
            value = FloatAttr(math.inf, f64)
        elif tok.kind == IDENT:
            self.advance()
            value = SymbolRefAttr(tok.text)
        elif tok.kind == STRING:
            self.advance()
            value = StringAttr(tok.value)
        else:
            negative = self.accept("-") is not None
            lit = self.tok
            if lit.kind == IDENT and negative:
                raise self.error("unexpected '-' before identifier", lit)
            if lit.kind == FLOAT:
                value = FloatAttr(-lit.value if negative else lit.value, f64)
            elif lit.kind == INT:
                value = IntegerAttr(self.setting_int(key, -lit.value if negative else lit.value, lit), i64)
            else:
                raise self.error(f"expected a setting value, found {lit.describe()}")
            self.advance()
        return self.check_setting(key, value, tok)

    def check_setting(self, key: str, value: Attribute, tok: Token) -> Attribute:
        is_dtype_list = isinstance(value, ArrayAttr)
        if key == "to":
            if not (isinstance(value, SymbolRefAttr) and value.root_reference.data in DTYPE_NAMES):
                raise self.error("to must be a dtype identifier", tok)
            return dtype_type(value.root_reference.data)
        if key == "acc" and not is_dtype_list:
            raise self.error("acc must be a dtype list (e.g. acc=[i32, i64])", tok)
        if is_dtype_list and key != "acc":
            raise self.error("DTypeList only supported for acc attribute", tok)
        return value

    def setting_int(self, key: str, value: int, tok: Token, lo: int = -(2**63), hi: int = 2**64) -> int:
        """`value` when a 64-bit setting holds it (i64, or u64 for a scalar), else a ParseError at `tok`."""
        if not lo <= value < hi:
            raise self.error(f"setting {key} value {value} is out of range for a 64-bit integer", tok)
        return value

    def parse_list_value(self, key: str = "") -> Attribute:
        self.expect("[")
        if self.tok.kind == IDENT:
            def dtype() -> Attribute:
                tok = self.tok
                name = self.expect_ident("dtype")
                if name not in DTYPE_NAMES:
                    raise self.error(f"unsupported dtype {name}", tok)
                return dtype_type(name)

            return ArrayAttr(self.comma_list("]", dtype))

        def integer() -> int:
            negative = self.accept("-") is not None
            if self.tok.kind != INT:
                raise self.error(f"expected integer, found {self.tok.describe()}")
            tok = self.advance()
            return self.setting_int(key, -tok.value if negative else tok.value, tok, lo=-(2**63), hi=2**63)

        return DenseArrayBase.from_list(i64, self.comma_list("]", integer))

    def parse_var_ref(self) -> VarRefAttr:
        name = self.expect_ident("variable name")
        indices: list[int | str] = []
        if self.tok.is_punct("["):
            open_tok = self.advance()
            indices = self.comma_list("]", self.parse_ref_index)
            if not indices:
                raise self.error("prefix access must include at least one index", open_tok)
        return VarRefAttr(name, indices)

    def parse_ref_index(self) -> int | str:
        if self.tok.kind in (INT, IDENT):
            return self.advance().value
        raise self.error(f"expected integer or identifier, found {self.tok.describe()}")

    def parse_cache(self) -> Operation:
        self.expect(".")
        tok = self.tok
        kind = self.expect_ident("cache operation")
        if kind not in _CACHE_OPS:
            raise self.error("unsupported cache operation", tok)
        if kind == "read":
            src = self.parse_cache_access()
            self.expect(">>")
            op = oi.CacheReadOp(src, self.parse_var_ref())
        elif kind == "write":
            src = self.parse_var_ref()
            self.expect(">>")
            op = oi.CacheWriteOp(src, self.parse_cache_access())
        elif kind == "reset" and self.is_sequence_group():
            tables, lengths = self.parse_sequence_group()
            if not self.accept_word("where"):
                raise self.error(f"expected `where`, found {self.tok.describe()}")
            op = oi.CacheResetWhereOp(tables, lengths, self.expect_ident("mask variable"))
        elif kind == "reset":
            op = oi.CacheResetOp(self.parse_cache_access())
        elif kind == "fork":
            tables, lengths = self.parse_sequence_group()
            src = self.parse_index_value()
            self.expect(">>")
            dst = self.parse_index_value()
            if not self.accept_word("at"):
                raise self.error(f"expected `at`, found {self.tok.describe()}")
            op = oi.CacheForkOp(tables, lengths, src, dst, self.parse_index_value())
        elif kind == "pop":
            count = 1
            if self.tok.kind == INT or (self.tok.kind == IDENT and self.peek().kind == IDENT):
                count = self.parse_index_value()
            tables, lengths = self.parse_sequence_group()
            op = oi.CachePopOp(count, tables, lengths, self.parse_index_value())
        elif kind == "append":
            op = self.parse_cache_append()
        elif kind == "save":
            src = self.parse_var_ref()
            self.expect(">>")
            op = oi.CacheSaveOp(src, VarRefAttr(self.expect_ident("field variable"), []))
        elif kind == "load":
            field = self.expect_ident("field variable")
            self.expect(">>")
            op = oi.CacheLoadOp(field, self.parse_var_ref())
        else:
            amount = self.advance().value if self.tok.kind == INT else 1
            target = self.expect_ident("cache variable")
            op = (oi.CacheIncrementOp if kind == "increment" else oi.CacheDecrementOp)(target, amount)
        self.end()
        return op

    def parse_cache_append(self) -> Operation:
        """`x >> K[off]`, then optionally `@on_out_of_range(error|skip)` (an oi_compiler extension)."""
        src = self.parse_var_ref()
        self.expect(">>")
        table = self.expect_ident("cache variable")
        self.expect("[")
        offsets = self.expect_ident("offsets variable")
        self.expect("]")
        skip = False
        if self.tok.is_punct("@"):
            self.advance()
            attr = self.tok
            if self.expect_ident("attribute") != "on_out_of_range":
                raise self.error("cache.append takes one attribute: @on_out_of_range(error|skip)", attr)
            self.expect("(")
            policy = self.tok
            word = self.expect_ident("error or skip")
            if word not in ("error", "skip"):
                raise self.error(f"on_out_of_range is error or skip, got {word}", policy)
            self.expect(")")
            skip = word == "skip"
        return oi.CacheAppendOp(src, table, offsets, skip)

    def is_sequence_group(self) -> bool:
        """`K, V [len] where ...` (a masked reset) rather than a `K[...]` access."""
        if self.tok.kind != IDENT:
            return False
        if self.peek().is_punct(","):
            return True
        return (self.peek().is_punct("[") and self.peek(2).kind == IDENT and self.peek(3).is_punct("]")
                and self.peek(4).is_word("where"))  # fmt: skip

    def parse_sequence_group(self) -> tuple[list[str], str]:
        """`K, V [len]`: the tables a sequence statement changes, and their lengths vector."""
        tables = [self.expect_ident("cache variable")]
        while self.accept(","):
            tables.append(self.expect_ident("cache variable"))
        self.expect("[")
        lengths = self.expect_ident("lengths variable")
        self.expect("]")
        return tables, lengths

    def parse_cache_access(self) -> CacheAccessAttr:
        name = self.expect_ident("cache variable")
        if not self.accept("["):
            return CacheAccessAttr(name, (), bracketed=False)
        indices: list = []
        if self.accept("]"):
            return CacheAccessAttr(name, (), bracketed=True)
        while True:  # entries separated by `,`; an empty entry is a full slice
            if self.tok.is_punct(",") or self.tok.is_punct("]"):
                indices.append(SliceAttr())
            else:
                indices.append(self.parse_cache_index())
            if self.accept("]"):
                break
            self.expect(",")
            if self.accept("]"):  # trailing comma: one more full slice, as upstream reads it
                indices.append(SliceAttr())
                break
        return CacheAccessAttr(name, indices, bracketed=True)

    def parse_cache_index(self):
        start = None if self.tok.is_punct("..") else self.parse_index_value()
        if not self.accept(".."):
            return start
        end = None
        if not (self.tok.is_punct(",") or self.tok.is_punct("]")):
            end = self.parse_index_value()
        return SliceAttr(start, end)

    def parse_index_value(self) -> int | str:
        negative = self.accept("-") is not None
        tok = self.tok
        if tok.kind == INT:
            self.advance()
            return -tok.value if negative else tok.value
        if tok.kind == IDENT:
            if negative:
                raise self.error("unexpected '-' before identifier", tok)
            return self.advance().text
        raise self.error(f"expected integer or identifier, found {tok.describe()}")

    def parse_branch(self) -> Operation:
        names = []
        while self.tok.kind == IDENT:
            names.append(self.advance().text)
        if len(names) == 1:
            self.end()
            return oi.BranchOp(names[0])
        if len(names) == 3:
            self.end()
            return oi.BranchOp(names[1], cond=names[0], else_block=names[2])
        if names:
            raise self.error("branch expects condition and two target blocks")
        raise self.error(f"expected identifier, found {self.tok.describe()}")

    def parse_barrier(self) -> Operation:
        self.end()
        return oi.BarrierOp()

    def parse_dep(self) -> Operation:
        self.expect_word("after")
        self.expect("(")
        after = self.expect_ident()
        self.expect(")")
        self.expect_word("before")
        self.expect("(")
        before = self.expect_ident()
        self.expect(")")
        self.end()
        return oi.DepOp(after, before)

    def parse_transfer(self) -> Operation:
        src = self.parse_var_ref()
        self.expect(">>")
        dst = self.parse_var_ref()
        self.end()
        return oi.TransferOp(src, dst)

    def parse_loop(self) -> Operation:
        if self.loop_depth >= oi.MAX_LOOP_DEPTH:  # (the verifier's rule, here before recursing deeper)
            raise self.error(f"loops nest too deeply: more than {oi.MAX_LOOP_DEPTH} levels", self.toks[self.i - 1])
        label = self.expect_ident("loop name")
        self.expect("(")
        index = self.expect_ident("loop index")
        self.expect_word("in")
        start = self.parse_loop_bound()
        self.expect("..")
        end = self.parse_loop_bound()
        self.expect(")")
        self.loop_depth += 1
        try:
            body = self.parse_body()
        finally:
            self.loop_depth -= 1
        return oi.LoopOp(label, index, start, end, body)

    def parse_loop_bound(self) -> int | str:
        if self.tok.kind in (INT, IDENT):
            return self.advance().value
        raise self.error("expected identifier or integer for loop range")

    def parse_var_list(self, word: str) -> list[str]:
        names = []
        if self.tok.kind != IDENT:
            raise self.error(f"{word} expects at least one variable")
        names.append(self.advance().text)
        while self.accept(","):
            names.append(self.expect_ident("variable name"))
        self.end()
        return names

    def parse_yield(self) -> Operation:
        return oi.YieldOp(self.parse_var_list("yield"))

    def parse_await(self) -> Operation:
        return oi.AwaitOp(self.parse_var_list("await"))

    def parse_return(self) -> Operation:
        self.end()
        return oi.ReturnOp()
