"""The step plan: how each variable of a bound graph lives in the compiled step's state.

`--lower-ops`, `--lower-cache` and the CPU executor (`runtime/native.py`) all read one
`StepPlan`, built from an `oi.graph` whose sizes are bound (`--bind-sizes`). It gives:

- the **state array**: one `i64` word per pointer, capacity, size and error field. The step
  function takes only this array; the host owns every buffer and writes their addresses in;
- each variable's **kind** and memref type:
  - `buffer`: a host buffer of the declared shape (dynamic, constant and volatile variables,
    `assign` temporaries, plain persistent variables; one word: its address);
  - `table`: a cache table: words data, present, capacity per index, size per index. The
    data buffer has shape `capacity ++ entry`, every entry not written holds `@init`;
    `present` has one byte per entry (upstream's materialised entries);
  - `prefix`: a constant prefix table (`W(l)` with `@pattern`): words: the address of an
    array of entry addresses, then the entry count per index;
  - `resizable`: a `cache.read` destination whose size changes at run time and that has its
    own copy: words: address, capacity (elements), then its size per dim;
  - `auto`: an `@auto_dim` tensor: words: the address of its buffer (exactly base + counts,
    row-major), then its count per auto dim;
  - `view`: a `cache.read` destination bound to a view of the table itself (no copy), when
    `view_safe` proves no later write can change what the view shows: words: which of its
    tables was read last (-1: none yet), the step that read it, then start and count per
    table index (what `fetch` re-reads);
- what the compiled path does not support yet (`Unsupported`, with the statement's location).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

from xdsl.dialects.builtin import StringAttr
from xdsl.ir import Operation

from oi_compiler.dialects.oi import (
    AssignOp,
    AwaitOp,
    BarrierOp,
    BlockOp,
    BranchOp,
    CacheDecrementOp,
    CacheIncrementOp,
    CacheReadOp,
    CacheResetOp,
    CacheWriteOp,
    DepOp,
    GraphOp,
    LoopOp,
    NamedOp,
    ReturnOp,
    TransferOp,
    VarOp,
    YieldOp,
)
from oi_compiler.dialects.oi_attrs import SliceAttr
from oi_compiler.dialects.oi_lowered import KernelOp
from oi_compiler.errors import PassError
from oi_compiler.ir_context import nearest_loc

# --- the state array's header words ---------------------------------------------------------
ERROR_SITE = 0  # 0 = no error, else the error site (`StepPlan.sites`) that fired
ERROR_ARGS = 1  # four words of integer arguments for the message
HANDLE = 5  # the executor's handle, passed back to the host's grow callback
LOG_RECORDS = 6  # undo log: address of its records (4 words each), capacity, count
LOG_RECORDS_CAP = 7
LOG_COUNT = 8
LOG_BYTES = 9  # undo log: address of the saved bytes, capacity, bytes used
LOG_BYTES_CAP = 10
LOG_USED = 11
STEP_STAMP = 12  # the host's step counter: a view records the step that read it
HEADER_WORDS = 13

#: what the grow callback is asked for (its second argument)
GROW_TABLE, GROW_RESIZABLE, GROW_LOG, GROW_VIEW, GROW_AUTO = 1, 2, 3, 4, 5  # VIEW: copy a stale view out


class Unsupported(PassError):
    """A graph the compiled path cannot run yet (the reference executor can)."""


def escape_braces(text: str) -> str:
    """`text` as a `str.format` template that prints it unchanged (error-site messages)."""
    return text.replace("{", "{{").replace("}", "}}")


def unsupported(what: str, op: Operation | None = None) -> Unsupported:
    return Unsupported(f"the compiled path does not support {what} yet (device='reference' runs it)",
                       nearest_loc(op) if op is not None else None)  # fmt: skip


@dataclass
class VarPlan:
    name: str
    memory: str
    dtype: str
    shape: tuple[int | None, ...]  # None: known at run time only
    kind: str  # buffer | table | prefix | resizable | view
    slot: int = -1
    # tables
    indices: tuple[str, ...] = ()
    fixed: tuple[int | None, ...] = ()
    init: int | float | bool | None = None
    # view destinations: the tables read into it (all with one entry shape)
    tables: tuple[str, ...] = ()
    # an `assign` temporary: a second word says whether its assign has run (it exists from then)
    temp: bool = False

    @property
    def table(self) -> str | None:
        """A view destination's first table (they all have its entry shape)."""
        return self.tables[0] if self.tables else None

    @property
    def rank(self) -> int:
        return len(self.indices)

    # words of a table
    @property
    def data_slot(self) -> int:
        return self.slot

    @property
    def present_slot(self) -> int:
        return self.slot + 1

    def capacity_slot(self, dim: int) -> int:
        return self.slot + 2 + dim

    def size_slot(self, dim: int) -> int:
        return self.slot + 2 + self.rank + dim

    # words of a resizable destination (capacity, then sizes) and of a prefix table (counts)
    @property
    def count_base(self) -> int:
        return self.slot + (2 if self.kind == "resizable" else 1)


@dataclass
class StepPlan:
    graph: GraphOp
    vars: dict[str, VarPlan]
    words: int
    entry: BlockOp
    #: error sites: (message template, statement) by site number (site 0 is "no error")
    sites: list[tuple[str, Operation | None]] = field(default_factory=lambda: [("", None)])

    def site(self, template: str, op: Operation | None) -> int:
        self.sites.append((template, op))
        return len(self.sites) - 1



def nested(op: Operation) -> list[list[Operation]]:
    """The statement lists `op` runs: a loop's body; a branch's target blocks (then, else)."""
    if isinstance(op, LoopOp):
        return [list(op.body.block.ops)]
    if isinstance(op, BranchOp):
        blocks = blocks_of(op)
        return [list(blocks[name].body.block.ops) for name in branch_targets(op) if name in blocks]
    return []


def branch_targets(op: BranchOp) -> list[str]:
    return [op.then_block.data] + ([op.else_block.data] if op.else_block is not None else [])


def blocks_of(op: Operation) -> dict[str, BlockOp]:
    """The blocks of the graph `op` is in, by name."""
    graph = op.parent_op()
    while graph is not None and not isinstance(graph, GraphOp):
        graph = graph.parent_op()
    return {b.block_name: b for b in graph.blocks} if graph is not None else {}


def statements(ops) -> Iterator[tuple[Operation, list[LoopOp]]]:
    """Every statement under `ops`, branch targets included (as if inlined), with the loops
    around it (outermost first)."""

    def walk(body, loops):
        for op in body:
            yield op, loops
            for inner in nested(op):
                yield from walk(inner, [*loops, op] if isinstance(op, LoopOp) else loops)

    yield from walk(ops, [])


def build_plan(graph: GraphOp) -> StepPlan:
    """The plan for `graph` (sizes bound); raises `Unsupported` for what cannot be compiled yet."""
    blocks = {b.block_name: b for b in graph.blocks}
    entry = blocks.get("entry") or next(iter(blocks.values()), None)
    if entry is None:
        raise PassError("graph has no blocks")
    decls = {v.var_name: v for v in graph.vars}
    body = list(entry.body.block.ops)
    _check_supported(body, decls)
    temps = {op.var_name: op for op, _ in statements(body) if isinstance(op, AssignOp)}
    read_dests = _read_destinations(body)
    plans: dict[str, VarPlan] = {}
    for name, var in decls.items():
        plans[name] = _var_plan(var, read_dests.get(name, []), body, decls)
    for name, op in temps.items():
        if name in read_dests and name not in plans:
            raise unsupported(f"cache.read into the temporary {name}", read_dests[name][0])
        if name not in plans:
            plans[name] = VarPlan(name, "volatile", op.var_type.dtype, _static_shape(op.var_type, op), "buffer",
                                  temp=True)  # fmt: skip
    words = HEADER_WORDS
    for plan in plans.values():
        plan.slot = words
        words += _word_count(plan, plans)
    return StepPlan(graph, plans, words, entry)


def _word_count(plan: VarPlan, plans: dict[str, VarPlan]) -> int:
    if plan.kind == "table":
        return 2 + 2 * plan.rank
    if plan.kind == "auto":
        return 1 + plan.rank
    if plan.kind == "prefix":
        return 1 + plan.rank
    if plan.kind == "resizable":
        return 2 + len(plan.shape)
    if plan.kind == "view":
        return 2 + 2 * max(plans[t].rank for t in plan.tables)
    return 2 if plan.temp else 1


def _static_shape(var_type, op) -> tuple[int, ...]:
    shape = []
    for dim in var_type.dims:
        size = dim.size({})
        if size is None:
            raise PassError("the compiled path needs every size bound: run --bind-sizes first "
                            f"({dim.text})", nearest_loc(op))  # fmt: skip
        shape.append(size)
    return tuple(shape)


def _check_supported(body, decls: dict[str, VarOp]) -> None:
    for var in decls.values():
        if var.auto_dim is not None and len(var.auto_dim.data) != len(var.var_type.dims):
            raise unsupported("@auto_dim with fewer names than dims (the reference refuses it when used)", var)
        if var.index_names and var.memory != "persistent" and var.memory != "constant":
            raise unsupported(f"{var.memory} prefix tables", var)
        if var.index_names and var.memory == "constant" and len(var.index_names) > 4:
            raise unsupported("prefix tables with more than four indices", var)
    _check_statements(list(body), in_loop=False, calls=[])


def _check_statements(ops: list, *, in_loop: bool, calls: list[str]) -> None:
    """What the compiled path refuses, in `ops` and everything they run (branch targets inlined)."""
    for op in ops:
        if isinstance(op, YieldOp | AwaitOp):
            raise unsupported("yield and await", op)
        if isinstance(op, TransferOp):
            raise unsupported("transfer", op)
        if isinstance(op, ReturnOp) and (in_loop or op is not ops[-1]):
            raise unsupported("a return before the end of its block", op)
        if not isinstance(op, _KNOWN):
            raise unsupported(f"statement {op.name}", op)
        if isinstance(op, LoopOp):
            _check_statements(list(op.body.block.ops), in_loop=True, calls=calls)
        if isinstance(op, BranchOp):
            blocks = blocks_of(op)
            for name in branch_targets(op):
                if name in calls:
                    raise unsupported(f"a branch back into block {name} (recursion)", op)
                if name in blocks:
                    _check_statements(list(blocks[name].body.block.ops), in_loop=False, calls=[*calls, name])


_KNOWN = (AssignOp, NamedOp, KernelOp, CacheReadOp, CacheWriteOp, CacheIncrementOp, CacheDecrementOp,
          CacheResetOp, BarrierOp, DepOp, LoopOp, ReturnOp, BranchOp)  # fmt: skip


def _read_destinations(body) -> dict[str, list[CacheReadOp]]:
    out: dict[str, list[CacheReadOp]] = {}
    for op, _ in statements(body):
        if isinstance(op, CacheReadOp):
            out.setdefault(op.dst.var_name, []).append(op)
    return out


def _var_plan(var: VarOp, reads: list[CacheReadOp], body, decls: dict[str, VarOp]) -> VarPlan:
    name, dtype = var.var_name, var.dtype
    if reads and var.memory != "persistent" and _reads_tables(reads, decls):
        return _read_destination(var, reads, body, decls)
    if reads and var.memory != "persistent" and any(_is_auto(decls.get(r.src.var_name)) for r in reads):
        return _auto_read_destination(var, reads, decls)
    shape = _static_shape(var.var_type, var)
    if var.memory == "persistent":
        if var.auto_dim is not None:
            auto = [a.data for a in var.auto_dim]
            fixed = var.fixed_sizes
            return VarPlan(name, "persistent", dtype, shape, "auto", indices=tuple(auto),
                           fixed=tuple(fixed.get(a) for a in auto), init=var.init_value)  # fmt: skip
        if var.table is not None and var.index_names:
            fixed = var.fixed_sizes
            return VarPlan(name, "persistent", dtype, shape, "table", indices=tuple(var.index_names),
                           fixed=tuple(fixed.get(i) for i in var.index_names), init=var.init_value)  # fmt: skip
        return VarPlan(name, "persistent", dtype, shape, "buffer", init=var.init_value)
    if var.index_names:
        return VarPlan(name, var.memory, dtype, shape, "prefix", indices=tuple(var.index_names))
    return VarPlan(name, var.memory, dtype, shape, "buffer")


def _is_table(var: VarOp | None) -> bool:
    return (var is not None and var.memory == "persistent" and var.table is not None and bool(var.index_names)
            and var.auto_dim is None)  # fmt: skip


def _is_auto(var: VarOp | None) -> bool:
    return var is not None and var.memory == "persistent" and var.auto_dim is not None


def _auto_read_destination(var: VarOp, reads: list[CacheReadOp], decls: dict[str, VarOp]) -> VarPlan:
    """A variable `cache.read` fills from `@auto_dim` tensors: its own copy, every dim run-time sized."""
    sources = {decls[r.src.var_name].var_name: decls[r.src.var_name] for r in reads if r.src.var_name in decls}
    ranks = {len(v.var_type.dims) for v in sources.values()}
    if not all(_is_auto(v) for v in sources.values()) or len(ranks) != 1:
        raise unsupported(f"cache.read into {var.var_name} from @auto_dim tensors and other variables", reads[0])
    if any(v.dtype != var.dtype for v in sources.values()):
        raise unsupported(f"cache.read into {var.var_name} converting dtypes", reads[0])
    return VarPlan(var.var_name, var.memory, var.dtype, (None,) * ranks.pop(), "resizable")


def _reads_tables(reads: list[CacheReadOp], decls: dict[str, VarOp]) -> bool:
    return any(_is_table(decls.get(r.src.var_name)) for r in reads)


def _read_destination(var: VarOp, reads: list[CacheReadOp], body, decls: dict[str, VarOp]) -> VarPlan:
    """A variable `cache.read` fills from tables: a view of one, or its own resizable copy."""
    name, dtype = var.var_name, var.dtype
    tables = sorted({r.src.var_name for r in reads})
    if not all(_is_table(decls.get(t)) for t in tables):
        raise unsupported(f"cache.read into {name} from both tables and other variables", reads[0])
    if var.memory == "dynamic" or _defined_otherwise(name, body):
        raise unsupported(f"{name} written both by cache.read and by another statement", reads[0])
    out_shapes = {_read_shape(r, decls[r.src.var_name]) for r in reads}
    if len(out_shapes) != 1:
        raise unsupported(f"cache.reads of different shapes into {name}", reads[0])
    read_shape = out_shapes.pop()
    for table in tables:
        if decls[table].dtype != dtype:
            raise unsupported(f"cache.read of {decls[table].dtype} into {dtype} variable {name}", reads[0])
    if all(view_safe(r, body) for r in reads):
        return VarPlan(name, var.memory, dtype, read_shape, "view", tables=tuple(tables))
    return VarPlan(name, var.memory, dtype, read_shape, "resizable")


def _read_shape(read: CacheReadOp, table: VarOp) -> tuple[int | None, ...]:
    """[one dim per slice, run-time sized] ++ the entry shape (indices past the given ones are slices)."""
    given = list(read.src.indices)
    slices = sum(1 for i in given if isinstance(i, SliceAttr)) + max(0, len(table.index_names) - len(given))
    return (None,) * slices + _static_shape(table.var_type, table)


def _defined_otherwise(name: str, body) -> bool:
    for op, _ in statements(body):
        if isinstance(op, NamedOp | KernelOp) and op.output_name == name:
            return True
        if isinstance(op, AssignOp) and op.var_name == name:
            return True
    return False


# --- when a cache.read may bind a view instead of copying ---------------------------------------


def view_safe(read: CacheReadOp, body) -> bool:
    """Whether `cache.read K[...] >> d` can bind `d` to a view of K's buffer with no observable change.

    Two conditions. Every use of `d` follows this read in the same statement list (or inside a
    later statement of it), before the next read into `d`: so the view is used while it is
    valid. And no statement that can run after the read in the same step changes an entry the
    view shows, nor moves the table: no access to K later in the read's own list; a write to K
    elsewhere only where it runs in a later iteration of a loop around both and indexes K with
    that loop's variable where the read does (so another entry), and no reset of K after the
    read. That keeps `fetch(d)` after the step equal to the reference's copy.
    """
    path = _path_to(read, list(body))
    if path is None:
        return False
    table, dest = read.src.var_name, read.dst.var_name
    ops, index = path[-1]
    if not _uses_covered(dest, body):
        return False
    for later in ops[index + 1 :]:
        if any(_accesses(op, table) for op in _flatten(later)):
            return False
    for level_ops, level_index in path[:-1]:
        around = level_ops[level_index]  # a loop, or a branch whose target holds the read
        for op in _flatten_list(level_ops[level_index + 1 :]):  # after it, same step
            if _changes(op, table):
                return False
        if isinstance(around, LoopOp):
            for op in _flatten_list(list(around.body.block.ops)):  # later iterations of the loop
                if _changes(op, table) and not _distinct_by_loop(read, op, around.index.data):
                    return False
    return True


def _path_to(target: Operation, ops: list) -> list[tuple[list, int]] | None:
    for i, op in enumerate(ops):
        if op is target:
            return [(ops, i)]
        for inner_ops in nested(op):
            inner = _path_to(target, inner_ops)
            if inner is not None:
                return [(ops, i), *inner]
    return None


def _flatten(op: Operation) -> list[Operation]:
    return [op, *(x for inner in nested(op) for x in _flatten_list(inner))]


def _flatten_list(ops: list) -> list[Operation]:
    return [x for op in ops for x in _flatten(op)]


def _accesses(op: Operation, table: str) -> bool:
    if isinstance(op, CacheReadOp):
        return op.src.var_name == table
    return _changes(op, table)


def _changes(op: Operation, table: str) -> bool:
    if isinstance(op, CacheWriteOp):
        return op.dst.var_name == table
    if isinstance(op, CacheResetOp):
        return op.target.var_name == table
    return False


def _distinct_by_loop(read: CacheReadOp, op: Operation, loop_var: str) -> bool:
    if not isinstance(op, CacheWriteOp):
        return False
    for a, b in zip(read.src.indices, op.dst.indices):
        if isinstance(a, StringAttr) and isinstance(b, StringAttr) and a.data == b.data == loop_var:
            return True
    return False


def _uses_covered(dest: str, body) -> bool:
    """Every read of `dest` comes after a cache.read into it in the same list (nested or not)."""

    def check(ops, defined: bool) -> bool:
        for op in ops:
            if _uses(op, dest) and not defined:
                return False
            for inner in nested(op):
                if not check(inner, defined):
                    return False
            if isinstance(op, CacheReadOp) and op.dst.var_name == dest:
                defined = True
        return True

    return check(list(body), False)


def _uses(op: Operation, name: str) -> bool:
    if isinstance(op, NamedOp | KernelOp):
        if any(_ref_uses(ref, name) for ref in op.inputs):
            return True
        return any(_names_var(v, name) for v in op.settings.data.values())
    if isinstance(op, CacheWriteOp):
        return _ref_uses(op.src, name) or any(_index_names(i, name) for i in op.dst.indices)
    if isinstance(op, LoopOp):
        return name in [b for b in op.bounds if isinstance(b, str)]
    if isinstance(op, BranchOp):
        return op.cond is not None and op.cond.data == name
    if isinstance(op, CacheReadOp | CacheResetOp):
        access = op.src if isinstance(op, CacheReadOp) else op.target
        return any(_index_names(i, name) for i in access.indices)
    return False


def _ref_uses(ref, name: str) -> bool:
    """`ref` (`x`, `W[e]`) reads `name`: as the variable or as an index."""
    return ref.var_name == name or any(_index_names(i, name) for i in ref.indices)


def _names_var(value, name: str) -> bool:
    return getattr(value, "root_reference", None) is not None and value.root_reference.data == name


def _index_names(index, name: str) -> bool:
    if isinstance(index, SliceAttr):
        return any(isinstance(b, StringAttr) and b.data == name for b in (index.start, index.end))
    return isinstance(index, StringAttr) and index.data == name


__all__ = [
    "GROW_AUTO", "GROW_LOG", "GROW_RESIZABLE", "GROW_TABLE", "GROW_VIEW", "HEADER_WORDS", "StepPlan", "Unsupported", "VarPlan",
    "blocks_of", "branch_targets", "build_plan", "escape_braces", "nested", "statements", "unsupported", "view_safe",
]  # fmt: skip
