"""The step's analysis: how each variable of a bound graph lives in the compiled step's state.

`--lower-ops` and `--convert-graph-to-tables` read one `StepAnalysis`, built from an `oi.graph`
whose sizes are bound (`--bind-sizes`); the runtime reads the same facts back from the IR
(`state_layout.StateLayout`: a `VarLayout` per variable). It gives:

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
from functools import cached_property

from xdsl.dialects.builtin import DYNAMIC_INDEX, IntAttr, MemRefType, NoneAttr, StridedLayoutAttr, StringAttr
from xdsl.ir import Operation

from oi_compiler.dialects.oi import (
    AssignOp,
    AwaitOp,
    BarrierOp,
    BlockOp,
    BranchOp,
    CacheAppendOp,
    CacheDecrementOp,
    CacheForkOp,
    CacheLoadOp,
    CachePopOp,
    CacheIncrementOp,
    CacheReadOp,
    CacheResetOp,
    CacheResetWhereOp,
    CacheSaveOp,
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
from oi_compiler.dtypes import dtype_type
from oi_compiler.errors import PassError
from oi_compiler.ir_context import nearest_loc

# --- the state array's header words ---------------------------------------------------------
ERROR_SITE = 0  # 0 = no error, else the error site (`StepAnalysis.sites`) that fired
ERROR_ARGS = 1  # four words of integer arguments for the message
HANDLE = 5  # the executor's handle, passed back to the host's grow callback
LOG_RECORDS = 6  # undo log: address of its records (4 words each: slot, offset, bytes, where), capacity, count
LOG_RECORDS_CAP = 7
LOG_COUNT = 8
LOG_BYTES = 9  # undo log: address of the saved bytes (a record's `where` >= 0), capacity, bytes used
LOG_BYTES_CAP = 10
LOG_USED = 11
STEP_STAMP = 12  # the host's step counter: a view records the step that read it
DEVICE_LOG = 13  # device="cuda": the saved bytes of device data (`where` = -1 - their offset here), capacity, used
DEVICE_LOG_CAP = 14
DEVICE_LOG_USED = 15
HEADER_WORDS = 16

#: what the grow callback is asked for (its second argument)
GROW_TABLE, GROW_RESIZABLE, GROW_LOG, GROW_VIEW, GROW_AUTO = 1, 2, 3, 4, 5  # VIEW: copy a stale view out
GROW_REBIND = 7  # a buffer `transfer` may share: a buffer of its own (a `cache.read` replaces it wholesale)
GROW_PREFIX = 6  # a volatile prefix table's entry (its indices in the error words, then the last words): its address
GROW_PAGE, GROW_RELEASE, GROW_SIZES = 8, 9, 10  # a paged table: a page of a row's own, rows' pages freed, sizes


class Unsupported(PassError):
    """A graph the compiled path cannot run yet (the reference executor can)."""


def escape_braces(text: str) -> str:
    """`text` as a `str.format` template that prints it unchanged (error-site messages)."""
    return text.replace("{", "{{").replace("}", "}}")


def unsupported(what: str, op: Operation | None = None) -> Unsupported:
    return Unsupported(f"the compiled path does not support {what} yet (device='reference' runs it)",
                       nearest_loc(op) if op is not None else None)  # fmt: skip


@dataclass
class VarLayout:
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
    # buffers a `transfer` may make share memory with this one (its word then holds their address)
    aliases: tuple[str, ...] = ()
    # a `@paged` table: entries per page along its last index, and its pool's first size in pages
    page: int = 0
    pool: int = 0
    # `device="cuda"`: its data (a buffer's, a dense table's box, a prefix table's entries) lives in
    # device memory, since the host step only hands it to kernels and copies (`--place-buffers`)
    device: bool = False

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

    # words of a paged table, after a dense table's (`lowering/paged_storage.py`)
    @property
    def pages_slot(self) -> int:
        return self.slot + 2 + 2 * self.rank

    @property
    def refs_slot(self) -> int:
        return self.pages_slot + 1

    @property
    def pool_slot(self) -> int:
        return self.pages_slot + 2

    # words of a view destination (`var_words`): table, stamp, (start, count) per index, then, when
    # it views a paged table, its gather buffer and that buffer's capacity (a slice spanning pages)
    def gather_slot(self, vars_: dict[str, VarLayout]) -> int | None:
        """A view's gather buffer word (None: it views no paged table, so never gathers)."""
        words = var_words(self, vars_)
        return self.slot + words.index("gather") if "gather" in words else None

    @property
    def exists_slot(self) -> int:
        """An `assign` temporary's word saying whether it exists yet: its last word."""
        return self.slot + (2 + len(self.shape) if self.kind == "resizable" else 1)

    # words of a resizable destination (capacity, then sizes) and of a prefix table (counts)
    @property
    def count_base(self) -> int:
        return self.slot + (2 if self.kind == "resizable" else 1)


@dataclass
class ForkAnalysis:
    """An async block, run at the entry's `await` (or at the step's end) on its own variables: by
    name, the copy each variable it names has while it runs (`x@B` in `StepAnalysis.vars`)."""

    block: BlockOp
    vars: dict[str, VarLayout]


def is_internal(name: str) -> bool:
    """A buffer the step keeps for itself (`x@B`: async block B's copy of x; `x@yield`: the
    snapshot the entry's `yield` took; `x@fresh`: x before anything writes it): never a user's."""
    return "@" in name


@dataclass
class StepAnalysis:
    graph: GraphOp
    vars: dict[str, VarLayout]
    words: int
    entry: BlockOp
    #: error sites: (message template, statement) by site number (site 0 is "no error")
    sites: list[tuple[str, Operation | None]] = field(default_factory=lambda: [("", None)])
    #: `yield`/`await`: the names the entry yields, the async blocks in the order they run, and
    #: words only the step uses (reset by it before use): "pending" (a yield not yet awaited),
    #: "ended" (a `yield` outside the entry ended its block), ("written", block, name) flags
    yielded: tuple[str, ...] = ()
    forks: list[ForkAnalysis] = field(default_factory=list)
    #: per entry `yield` (numbered from 1 in `entry_yields` order: the "pending" word's value), its names
    yield_lists: list[tuple[str, ...]] = field(default_factory=list)
    control: dict = field(default_factory=dict)
    #: per field a `cache.save` names, the buffer its pending save is kept in (`field_saves.py`);
    #: its "saved" word is `control[("saved", field)]`
    saved: dict[str, VarLayout] = field(default_factory=dict)
    #: the entry's `cache.read`s into each variable, in program order (`_read_destinations`)
    reads_into: dict[str, list[CacheReadOp]] = field(default_factory=dict, repr=False)
    #: `memref_type_of`'s answers
    memref_types: dict[tuple, MemRefType] = field(default_factory=dict, repr=False)

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
    around it (outermost first); a block that branches back into one it was called from is
    walked once on that path."""

    def walk(body, loops, calls):
        for op in body:
            yield op, loops
            targets = branch_targets(op) if isinstance(op, BranchOp) else [None]
            for inner, target in zip(nested(op), targets):
                if target is not None and target in calls:
                    continue
                yield from walk(inner, [*loops, op] if isinstance(op, LoopOp) else loops,
                                calls | {target} if target is not None else calls)  # fmt: skip

    yield from walk(ops, [], frozenset())


class _Body(list):
    """The entry's statements, with what the planning asks of them for every variable computed
    once (asked per read, each a walk of the whole entry, they made planning quadratic: a third
    of `--convert-graph-to-tables` on a 32-layer unrolled decoder)."""

    @cached_property
    def recursive(self) -> bool:
        return _walks_back(self)

    @cached_property
    def transferred(self) -> set[str]:
        return _transferred(self)

    @cached_property
    def uncovered(self) -> set[str]:
        """`_uncovered_names` of the entry (ask only where it is not recursive)."""
        return _uncovered_names(self)

    @cached_property
    def accessed_after(self) -> list[set[str]]:
        """Per statement, the tables the statements after it (and what they nest) read or change."""
        after: list[set[str]] = [set() for _ in self]
        seen: set[str] = set()
        for i in range(len(self) - 1, -1, -1):
            after[i] = seen
            seen = seen | {t for op in _flatten(self[i]) for t in _tables_accessed(op)}
        return after


#: how deep branches may nest before a step fails (the reference's `MAX_BRANCH_DEPTH`): a block that
#: branches back into one it was called from is inlined that many times, then fails as there
MAX_BRANCH_DEPTH = 100
MAX_INLINED = 20000  # statements a recursive branch may inline in all


def analyze_step(graph: GraphOp) -> StepAnalysis:
    """The plan for `graph` (sizes bound); raises `Unsupported` for what cannot be compiled yet."""
    blocks = {b.block_name: b for b in graph.blocks}
    entry = blocks.get("entry") or next(iter(blocks.values()), None)
    if entry is None:
        raise PassError("graph has no blocks")
    decls = {v.var_name: v for v in graph.vars}
    body = _Body(entry.body.block.ops)
    _check_supported(body, decls)
    temps = {op.var_name: op for op, _ in statements(body) if isinstance(op, AssignOp)}
    read_dests = _read_destinations(body)
    plans: dict[str, VarLayout] = {}
    forked = _forked_changes(graph, entry, body)
    for name, var in decls.items():
        plans[name] = _var_plan(var, read_dests.get(name, []), body, decls, forked)
    for name, op in temps.items():
        if name in read_dests and name not in plans:
            plans[name] = _temp_read_destination(op, read_dests[name], body, decls)
        if name not in plans:
            plans[name] = VarLayout(name, "volatile", op.var_type.dtype, _static_shape(op.var_type, op), "buffer",
                                  temp=True)  # fmt: skip
    for name, shared in transfer_aliases(body, plans).items():
        plans[name].aliases = tuple(sorted(shared))
    saved = sorted({op.dst.var_name for op in graph.walk() if isinstance(op, CacheSaveOp)})
    for name in saved:  # `field_saves.py`: a field's pending save
        table = plans[name]
        plans[f"{name}@saved"] = VarLayout(f"{name}@saved", "volatile", table.dtype, (None, *table.shape), "resizable",
                                           temp=True)  # empty until a save fills it  # fmt: skip
    yielded, forks = _fork_plans(graph, entry, body, decls, plans, temps)
    yield_lists = [tuple(op.var_names) for op in entry_yields(body)]
    words = HEADER_WORDS
    for plan in plans.values():
        plan.slot = words
        words += len(var_words(plan, plans))
    control: dict = {}
    if any(isinstance(op, YieldOp) for op in graph.walk()):
        control = {"pending": words, "ended": words + 1}
        words += 2
        for fork in forks:
            for name in yielded:
                if name in fork.vars:
                    control[("written", fork.block.block_name, name)] = words
                    words += 1
    if saved:
        for name in saved:
            control[("saved", name)] = words
            words += 1
    words += extra_error_args(plans.values())
    return StepAnalysis(graph, plans, words, entry, yielded=yielded, forks=forks, control=control,
                        yield_lists=yield_lists, saved={name: plans[f"{name}@saved"] for name in saved},
                        reads_into=read_dests)  # fmt: skip


def extra_error_args(plans) -> int:
    """Error arguments past the four header words (the indices of a prefix table with more than four):
    the state array's last words."""
    return max([0, *(v.rank - 4 for v in plans if v.kind == "prefix")])


def entry_yields(ops) -> list[YieldOp]:
    """The `yield`s the entry runs itself (loops included; a branch target's `yield` ends that block)."""
    out = []
    for op in ops:
        if isinstance(op, YieldOp):
            out.append(op)
        elif isinstance(op, LoopOp):
            out.extend(entry_yields(op.body.block.ops))
    return out


def _fork_plans(graph: GraphOp, entry: BlockOp, body, decls: dict[str, VarOp], plans: dict[str, VarLayout],
                temps: dict[str, AssignOp]) -> tuple[tuple[str, ...], list[ForkAnalysis]]:  # fmt: skip
    """The async blocks the entry's `yield` starts, each with its own copy of every non-persistent
    variable it names (the reference runs each on copies of the yielded variables; anything else
    it reads comes from the model, `@init` or zeros), plus the yield's snapshot buffers."""
    yields = entry_yields(body)
    if not yields:
        return (), []
    yielded = tuple(dict.fromkeys(name for op in yields for name in op.var_names))
    always = set.intersection(*(set(op.var_names) for op in yields))
    for name in yielded:
        var = plans.get(name)
        if var is None:
            continue  # the emitter raises the reference's unknown-variable error
        if var.kind != "buffer" or var.aliases or (var.memory == "persistent" and name not in always):
            raise unsupported(f"yield of {name} (a {var.memory} {var.kind} variable"
                              f"{', shared by transfer' if var.aliases else ''})", yields[0])  # fmt: skip
    targets = {t for op in graph.walk() if isinstance(op, BranchOp) for t in branch_targets(op)}
    blocks = {b.block_name: b for b in graph.blocks}
    from_entry = {id(op) for op, _ in statements(body)}
    forks = []
    for name in sorted(b for b in blocks if b != entry.block_name and b not in targets):
        block = blocks[name]
        ops = list(block.body.block.ops)
        _check_statements(ops, in_loop=False, calls=[name])
        fork_temps = dict(temps)
        names: list[str] = []
        reads: dict[str, list[CacheReadOp]] = {}  # from tables and @auto_dim tensors: a copy sized at run time
        for op, _ in statements(ops):
            if isinstance(op, AssignOp):
                fork_temps.setdefault(op.var_name, op)
        shared = []  # statements the entry runs too: lowered once, for the entry's variables
        for op, _ in statements(ops):
            if id(op) in from_entry:
                shared.append(op)
            if isinstance(op, CacheReadOp):
                src, dst = plans.get(op.src.var_name), op.dst.var_name
                known = (dst in decls and decls[dst].memory != "persistent") or dst in fork_temps
                if not known or src is None or src.kind not in ("buffer", "table", "auto") \
                        or (src.kind != "buffer" and dst in yielded):  # fmt: skip
                    raise unsupported(f"cache.read into {dst} in async block {name}", op)
                if src.kind != "buffer":
                    reads.setdefault(dst, []).append(op)
            names.extend(_names_in(op))
        shadows: dict[str, VarLayout] = {}
        for var_name in dict.fromkeys(names):
            decl = decls.get(var_name)
            if decl is not None and ((decl.memory == "persistent" and var_name not in yielded) or decl.index_names):
                continue  # the shared state: the reference's async blocks read the store
            if decl is not None:  # (a yielded persistent variable: ops read the snapshot, cache ops the store)
                memory = "volatile" if decl.memory == "persistent" else decl.memory
                shape, dtype, temp = _static_shape(decl.var_type, decl), decl.dtype, False
            elif var_name in fork_temps:
                assign = fork_temps[var_name]
                shape, dtype, memory, temp = _static_shape(assign.var_type, assign), assign.var_type.dtype, "volatile", True
            else:
                continue  # unknown: the emitter raises the reference's error
            copy = VarLayout(f"{var_name}@{name}", memory, dtype, shape, "buffer", temp=temp)
            if var_name in reads:  # its own resizable copy, starting as the declared value
                var_type = decl.var_type if decl is not None else fork_temps[var_name].var_type
                copy = _copy_read_destination(_Declared(var_name, "volatile", dtype, var_type), shape, reads[var_name],
                                              ops, decls)  # fmt: skip
                copy.name, copy.memory, copy.temp = f"{var_name}@{name}", memory, temp
            plans[copy.name] = copy
            shadows[var_name] = copy
            sources = ([f"{var_name}@yield"] if var_name in yielded else []) + \
                ([f"{var_name}@fresh"] if var_name not in always else [])  # fmt: skip
            for source in sources:
                if source not in plans:
                    plans[source] = VarLayout(source, memory, dtype, shape, "buffer")
        for var_name, sharing in transfer_aliases(ops, {**plans, **shadows}).items():
            if var_name in shadows:  # back on its own buffer when the block starts (`GROW_REBIND`)
                shadows[var_name].aliases = tuple(sorted(sharing))
        for op in shared:
            for var_name in _names_in(op):
                mine, entrys = shadows.get(var_name), plans.get(var_name)
                if mine is not None and entrys is not None and \
                        (mine.kind, mine.shape, mine.dtype, mine.aliases) != (entrys.kind, entrys.shape, entrys.dtype, entrys.aliases):
                    raise unsupported(f"a block both the entry and async block {name} run, where {var_name} "
                                      "differs", op)  # fmt: skip
        forks.append(ForkAnalysis(block, shadows))
    return yielded, forks


def _names_in(op: Operation) -> list[str]:
    """The variables a statement names (read or written), indices and settings included."""
    out: list[str] = []

    def ref(r) -> None:
        out.append(r.var_name)
        out.extend(_index_name_list(r.indices))

    if isinstance(op, NamedOp | KernelOp):
        for r in op.inputs:
            ref(r)
        out.extend(v.root_reference.data for v in op.settings.data.values()
                   if getattr(v, "root_reference", None) is not None)  # fmt: skip
        out.append(op.output_name)
    elif isinstance(op, CacheWriteOp):
        ref(op.src)
    elif isinstance(op, CacheAppendOp):
        ref(op.src)
        out.append(op.offsets.data)
    elif isinstance(op, CacheSaveOp):
        ref(op.src)
    elif isinstance(op, CacheForkOp | CachePopOp | CacheResetWhereOp):
        out.append(op.lengths.data)
        out.extend(_sequence_names(op))
    elif isinstance(op, CacheReadOp):
        out.append(op.dst.var_name)
    elif isinstance(op, TransferOp):
        ref(op.src)
        out.append(op.dst.var_name)
    elif isinstance(op, LoopOp):
        out.extend(b for b in op.bounds if isinstance(b, str))
    elif isinstance(op, BranchOp) and op.cond is not None:
        out.append(op.cond.data)
    elif isinstance(op, AssignOp):
        out.append(op.var_name)
    return out


def _index_name_list(indices) -> list[str]:
    out = []
    for index in indices:
        if isinstance(index, SliceAttr):
            out.extend(b.data for b in (index.start, index.end) if isinstance(b, StringAttr))
        elif isinstance(index, StringAttr):
            out.append(index.data)
    return out


def transfer_aliases(body, plans: dict[str, VarLayout]) -> dict[str, set[str]]:
    """`transfer a >> b` makes b's word hold a's buffer: both must be plain buffers of one type (the
    verifier checks shape and dtype). By variable, the others `transfer` may make share its memory."""
    classes: dict[str, set[str]] = {}
    for op, _ in statements(body):
        if not isinstance(op, TransferOp):
            continue
        src, dst = plans.get(op.src.var_name), plans.get(op.dst.var_name)
        if src is None or dst is None:
            continue  # the emitter raises the reference's unknown-variable error
        static_copy = src.kind == "resizable" and None not in src.shape  # `cache.read K[i] >> r`: r's own copy
        if (src.kind not in ("buffer", "prefix") and not static_copy) or dst.kind != "buffer" \
                or src.memory == "persistent" or (src.kind == "prefix") != bool(op.src.indices.data):  # fmt: skip
            raise unsupported(f"transfer of {op.src.var_name} into {op.dst.var_name}", op)
        a, b = op.src.var_name, op.dst.var_name  # (an async block's copies are planned under these names)
        merged = classes.get(a, {a}) | classes.get(b, {b})
        for name in merged:
            classes[name] = merged
    return {name: members - {name} for name, members in classes.items()}


def device_slots(vars_: dict[str, VarLayout]) -> dict[int, VarLayout]:
    """The words holding the address of data `--place-buffers` put in device memory (`device`),
    each with its variable: a buffer's, a resizable's or an `@auto_dim` tensor's data, a table's
    entries (a paged table's pool), a view's gather buffer. The host allocates these on the device
    (`runtime/native.py`) and `@oi_log` journals their bytes there: one list for both."""
    slots = {v.slot: v for v in vars_.values() if v.device and v.kind in ("buffer", "table", "resizable", "auto")}
    slots.update((v.gather_slot(vars_), v) for v in vars_.values() if v.device and v.kind == "view")
    return slots


def var_words(var: VarLayout, vars_: dict[str, VarLayout]) -> list[str]:
    """The names of a variable's words, in order (its first word is its `slot`): their count places
    the variables' slots, their names are what the table level calls them (`state_layout`)."""
    exists = ["exists"] if var.temp else []
    if var.kind == "table":
        paged = ["pages", "refs", "pool"] if var.page else []  # page table, reference counts, pool size
        return ["data", "present", *(f"capacity.{d}" for d in range(var.rank)), *(f"size.{d}" for d in range(var.rank)),
                *paged]  # fmt: skip
    if var.kind == "auto":
        return ["buffer", *(f"count.{d}" for d in range(var.rank))]
    if var.kind == "prefix":
        return ["entries", *(f"count.{d}" for d in range(var.rank))]
    if var.kind == "resizable":
        return ["buffer", "capacity", *(f"size.{d}" for d in range(len(var.shape))), *exists]
    if var.kind == "view":
        missing = [t for t in var.tables if t not in vars_]
        if missing or not var.tables:
            raise PassError(f"#oi_table.var @{var.name}: a view of {', '.join('@' + t for t in missing) or 'no table'}, "
                            "which the state layout does not hold")  # fmt: skip
        rank = max(vars_[t].rank for t in var.tables)
        gather = ["gather", "gather.capacity"] if any(vars_[t].page for t in var.tables) else []  # paged: a slice
        return ["table", "stamp", *(w for d in range(rank) for w in (f"start.{d}", f"count.{d}")), *gather]  # fmt: skip
    return ["buffer", *exists]


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
    _check_statements(list(body), in_loop=False, calls=[])


def _check_statements(ops: list, *, in_loop: bool, calls: list[str]) -> None:
    """What the compiled path refuses, in `ops` and everything they run (branch targets inlined)."""
    for op in ops:
        if not isinstance(op, _KNOWN):
            raise unsupported(f"statement {op.name}", op)
        if isinstance(op, LoopOp):
            _check_statements(list(op.body.block.ops), in_loop=True, calls=calls)
        if isinstance(op, BranchOp):
            blocks = blocks_of(op)
            for name in branch_targets(op):
                if name in calls:
                    if _inlined(blocks, name, len(calls), {}) > MAX_INLINED:
                        raise unsupported(f"a branch back into block {name} (recursion) inlining more than "
                                          f"{MAX_INLINED} statements", op)  # fmt: skip
                    continue
                if name in blocks:
                    _check_statements(list(blocks[name].body.block.ops), in_loop=False, calls=[*calls, name])


def _inlined(blocks: dict, name: str, depth: int, memo: dict) -> int:
    """Statements the emitter writes for block `name` entered at branch depth `depth`."""
    if depth > MAX_BRANCH_DEPTH or name not in blocks:
        return 1
    if (name, depth) not in memo:
        memo[(name, depth)] = 0  # (a cycle within one depth cannot happen: each branch goes one deeper)
        total = 0
        for op, _ in _direct(list(blocks[name].body.block.ops)):
            total += 1
            if isinstance(op, BranchOp):
                total += sum(_inlined(blocks, t, depth + 1, memo) for t in branch_targets(op))
            if total > MAX_INLINED:
                break
        memo[(name, depth)] = total
    return memo[(name, depth)]


def _direct(ops) -> Iterator[tuple[Operation, None]]:
    """The statements of a block, loop bodies included, branch targets not."""
    for op in ops:
        yield op, None
        if isinstance(op, LoopOp):
            yield from _direct(list(op.body.block.ops))


_KNOWN = (AssignOp, NamedOp, KernelOp, CacheReadOp, CacheWriteOp, CacheIncrementOp, CacheDecrementOp,
          CacheResetOp, CacheAppendOp, CacheSaveOp, CacheForkOp, CachePopOp, CacheResetWhereOp, BarrierOp, DepOp, LoopOp, ReturnOp, BranchOp, TransferOp, YieldOp, AwaitOp)  # fmt: skip


def _read_destinations(body) -> dict[str, list[CacheReadOp]]:
    out: dict[str, list[CacheReadOp]] = {}
    for op, _ in statements(body):
        if isinstance(op, CacheReadOp):
            out.setdefault(op.dst.var_name, []).append(op)
    return out


def _forked_changes(graph: GraphOp, entry: BlockOp, body) -> set[str]:
    """Tables the async blocks write or reset: they run after the entry's reads (at its `await`, or at
    the end of the step), so a view read in the entry could show their writes."""
    if not entry_yields(body):
        return set()
    targets = {t for op in graph.walk() if isinstance(op, BranchOp) for t in branch_targets(op)}
    changed = set()
    for block in graph.blocks:
        if block.block_name != entry.block_name and block.block_name not in targets:
            for op, _ in statements(list(block.body.block.ops)):
                if isinstance(op, CacheWriteOp):
                    changed.add(op.dst.var_name)
                elif isinstance(op, CacheResetOp):
                    changed.add(op.target.var_name)
                elif isinstance(op, CacheAppendOp):
                    changed.add(op.table.data)
                elif isinstance(op, CacheForkOp | CachePopOp | CacheResetWhereOp):
                    changed.update(op.table_names)
    return changed


def _var_plan(var: VarOp, reads: list[CacheReadOp], body, decls: dict[str, VarOp],
              forked: set[str] = frozenset()) -> VarLayout:  # fmt: skip
    name, dtype = var.var_name, var.dtype
    if reads and var.memory != "persistent" and _reads_tables(reads, decls):
        return _read_destination(var, reads, body, decls, forked=forked)
    if reads and var.memory != "persistent" and any(_is_auto(decls.get(r.src.var_name)) for r in reads):
        return _auto_read_destination(var, reads, decls)
    shape = _static_shape(var.var_type, var)
    if var.memory == "persistent":
        if var.auto_dim is not None:
            auto = [a.data for a in var.auto_dim]
            fixed = var.fixed_sizes
            return VarLayout(name, "persistent", dtype, shape, "auto", indices=tuple(auto),
                           fixed=tuple(fixed.get(a) for a in auto), init=var.init_value)  # fmt: skip
        if var.table is not None and var.index_names:
            fixed = var.fixed_sizes
            return VarLayout(name, "persistent", dtype, shape, "table", indices=tuple(var.index_names),
                           fixed=tuple(fixed.get(i) for i in var.index_names), init=var.init_value,
                           page=_page_size(var), pool=var.pool_pages)  # fmt: skip
        return VarLayout(name, "persistent", dtype, shape, "buffer", init=var.init_value)
    if var.index_names:
        return VarLayout(name, var.memory, dtype, shape, "prefix", indices=tuple(var.index_names),
                       fixed=(None,) * len(var.index_names))  # fmt: skip
    return VarLayout(name, var.memory, dtype, shape, "buffer")


def _page_size(var: VarOp) -> int:
    """A `@paged` table's page size, never longer than a `@fixed` last index (a longer page would
    only hold entries no key reaches)."""
    last = var.fixed_sizes.get(var.index_names[-1]) if var.page_size else None
    return min(var.page_size, last) if last is not None else var.page_size


@dataclass
class _Declared:
    """What a read destination's plan needs of its declaration (a `VarOp`, or an `assign`)."""

    var_name: str
    memory: str
    dtype: str
    var_type: object


def _temp_read_destination(assign: AssignOp, reads: list[CacheReadOp], body, decls: dict[str, VarOp]) -> VarLayout:
    """An `assign` temporary `cache.read` fills: a resizable copy (never a view) with an "exists" word
    after its words; its assign, when it comes first, makes zeros of the declared shape."""
    var = _Declared(assign.var_name, "volatile", assign.var_type.dtype, assign.var_type)
    plan = _copy_read_destination(var, _static_shape(assign.var_type, assign), reads, body, decls)
    plan.temp = True
    return plan


def _copy_read_destination(var: _Declared, declared: tuple[int, ...], reads: list[CacheReadOp], body,
                           decls: dict[str, VarOp]) -> VarLayout:  # fmt: skip
    """A resizable copy `cache.read` fills, whose value can also be its declared shape (a temporary's
    `assign`, an async block's copy at its start): the declared shape must be one the reads give."""
    if _reads_tables(reads, decls):
        plan = _read_destination(var, reads, body, decls, temp=True)
    elif any(_is_auto(decls.get(r.src.var_name)) for r in reads):
        plan = _auto_read_destination(var, reads, decls)
    else:
        raise unsupported(f"cache.read of a plain variable into {var.var_name}", reads[0])
    if len(declared) != len(plan.shape) or any(s is not None and s != d for s, d in zip(plan.shape, declared)):
        raise unsupported(f"cache.read into {var.var_name}, declared {shape_text_of(declared)}, "
                          "of another rank or entry shape", reads[0])  # fmt: skip
    plan.kind = "resizable"
    return plan


def shape_text_of(shape) -> str:
    return "[" + ", ".join(str(d) for d in shape) + "]"


def _is_table(var: VarOp | None) -> bool:
    return (var is not None and var.memory == "persistent" and var.table is not None and bool(var.index_names)
            and var.auto_dim is None)  # fmt: skip


def _is_auto(var: VarOp | None) -> bool:
    return var is not None and var.memory == "persistent" and var.auto_dim is not None


def _auto_read_destination(var: VarOp | _Declared, reads: list[CacheReadOp], decls: dict[str, VarOp]) -> VarLayout:
    """A variable `cache.read` fills from `@auto_dim` tensors: its own copy, every dim run-time sized."""
    sources = {decls[r.src.var_name].var_name: decls[r.src.var_name] for r in reads if r.src.var_name in decls}
    ranks = {len(v.var_type.dims) for v in sources.values()}
    if not all(_is_auto(v) for v in sources.values()) or len(ranks) != 1:
        raise unsupported(f"cache.read into {var.var_name} from @auto_dim tensors and other variables", reads[0])
    if any(v.dtype != var.dtype for v in sources.values()):
        raise unsupported(f"cache.read into {var.var_name} converting dtypes", reads[0])
    return VarLayout(var.var_name, var.memory, var.dtype, (None,) * ranks.pop(), "resizable")


def _reads_tables(reads: list[CacheReadOp], decls: dict[str, VarOp]) -> bool:
    return any(_is_table(decls.get(r.src.var_name)) for r in reads)


def _read_destination(var: VarOp | _Declared, reads: list[CacheReadOp], body, decls: dict[str, VarOp], *,
                      temp: bool = False, forked: set[str] = frozenset()) -> VarLayout:  # fmt: skip
    """A variable `cache.read` fills from tables: a view of one, or its own resizable copy."""
    name, dtype = var.var_name, var.dtype
    tables = sorted({r.src.var_name for r in reads})
    if not all(_is_table(decls.get(t)) for t in tables):
        raise unsupported(f"cache.read into {name} from both tables and other variables", reads[0])
    # written by an op too, or by `insert` (a dynamic variable): its own copy, sized at run time
    written = _defined_otherwise(name, body, temp=temp) or var.memory == "dynamic"
    out_shapes = {_read_shape(r, decls[r.src.var_name]) for r in reads}
    entries = {_static_shape(decls[t].var_type, decls[t]) for t in tables}
    if len({len(s) for s in out_shapes}) != 1 or len(entries) != 1:
        raise unsupported(f"cache.reads of different shapes into {name}", reads[0])
    # a dim the reads agree on is static, if the variable is declared with it too (before a read
    # the variable holds its declared value); any other is sized at run time
    entry = entries.pop()
    rank = len(next(iter(out_shapes)))
    declared = [d.size({}) for d in var.var_type.dims]
    if len(declared) != rank:  # the read rebinds the variable to another rank: nothing static
        declared = [None] * rank
    slices = [dims[0] if len(set(dims)) == 1 and dims[0] == want else None
              for dims, want in zip(list(zip(*out_shapes))[: rank - len(entry)], declared)]  # fmt: skip
    read_shape = (*slices, *entry)
    for table in tables:
        if decls[table].dtype != dtype:
            raise unsupported(f"cache.read of {decls[table].dtype} into {dtype} variable {name}", reads[0])
    shared = name in (body.transferred if isinstance(body, _Body) else _transferred(body))
    if not temp and not written and not shared and not forked & set(tables) \
            and all(view_safe(r, body) for r in reads):  # a view (`view_safe`: no later change of what it shows)
        return VarLayout(name, var.memory, dtype, read_shape, "view", tables=tuple(tables))
    if not temp and len(var.var_type.dims) != rank and not _recursive(body) and not _uses_covered(name, body):
        # used where no read may have run yet: there the variable holds its declared value, which
        # a buffer laid out for the reads' rank cannot hold (the reference can); a recursive branch
        # cannot be walked for the uses (`_recursive`), so such a graph is left as it was
        raise unsupported(f"cache.read into {name}, declared {shape_text_of(_static_shape(var.var_type, reads[0]))}, "
                          "with another rank than the read's", reads[0])  # fmt: skip
    if var.memory == "dynamic":  # `insert` gives it its declared shape
        declared = _static_shape(var.var_type, reads[0])
        if len(declared) != len(read_shape) or any(s is not None and s != d for s, d in zip(read_shape, declared)):
            raise unsupported(f"cache.read into the dynamic {name}, declared {shape_text_of(declared)}, "
                              "of another rank or entry shape", reads[0])  # fmt: skip
    return VarLayout(name, var.memory, dtype, read_shape, "resizable")


def _read_shape(read: CacheReadOp, table: VarOp) -> tuple[int | None, ...]:
    """[one dim per slice] ++ the entry shape (indices past the given ones are slices). A slice's
    extent is known at run time only, except a full slice of a `@fixed` index: its fixed size."""
    given = list(read.src.indices)
    fixed = table.fixed_sizes
    dims: list[int | None] = []
    for n, index in enumerate(table.index_names):
        item = given[n] if n < len(given) else SliceAttr()
        if not isinstance(item, SliceAttr):
            continue
        starts_at_0 = isinstance(item.start, NoneAttr) or (isinstance(item.start, IntAttr) and item.start.data == 0)
        full = starts_at_0 and isinstance(item.end, NoneAttr)
        dims.append(fixed.get(index) if full else None)
    return (*dims, *_static_shape(table.var_type, table))


def _defined_otherwise(name: str, body, *, temp: bool = False) -> bool:
    for op, _ in statements(body):
        if isinstance(op, NamedOp | KernelOp) and op.output_name == name:
            return True
        if isinstance(op, AssignOp) and op.var_name == name and not temp:
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
    if _recursive(body) or isinstance(read, CacheLoadOp):  # a copy is always right (a field
        return False  # changes when the step ends: a view would show the new value next step)
    path = _path_to(read, list(body))
    if path is None:
        return False
    table, dest = read.src.var_name, read.dst.var_name
    ops, index = path[-1]
    if not _uses_covered(dest, body):
        return False
    if len(path) == 1 and isinstance(body, _Body):
        if table in body.accessed_after[index]:
            return False
    elif any(table in _tables_accessed(op) for later in ops[index + 1 :] for op in _flatten(later)):
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


def _transferred(body) -> set[str]:
    """The variables a `transfer` under `body` shares."""
    return {op.src.var_name for op, _ in statements(body) if isinstance(op, TransferOp)}


def _recursive(body) -> bool:
    if isinstance(body, _Body):
        return body.recursive
    return _walks_back(body)


def _walks_back(body) -> bool:
    """Whether a branch under `body` reaches a block it was called from."""

    def walk(ops, calls) -> bool:
        for op in ops:
            if isinstance(op, LoopOp) and walk(list(op.body.block.ops), calls):
                return True
            if isinstance(op, BranchOp):
                blocks = blocks_of(op)
                for name in branch_targets(op):
                    if name in calls or (name in blocks and walk(list(blocks[name].body.block.ops), calls | {name})):
                        return True
        return False

    return walk(list(body), frozenset())


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


def _tables_accessed(op: Operation) -> set[str]:
    """The tables `op` itself (not what it nests) reads or changes."""
    if isinstance(op, CacheReadOp):
        return {op.src.var_name}
    return _tables_changed(op)


def _changes(op: Operation, table: str) -> bool:
    return table in _tables_changed(op)


def _tables_changed(op: Operation) -> set[str]:
    """The tables `op` itself (not what it nests) writes, resets, appends to, saves or reshapes."""
    if isinstance(op, CacheWriteOp):
        return {op.dst.var_name}
    if isinstance(op, CacheResetOp):
        return {op.target.var_name}
    if isinstance(op, CacheAppendOp):
        return {op.table.data}
    if isinstance(op, CacheSaveOp):
        return {op.dst.var_name}
    if isinstance(op, CacheForkOp | CachePopOp | CacheResetWhereOp):
        return {*op.table_names, op.lengths.data}
    return set()


def _distinct_by_loop(read: CacheReadOp, op: Operation, loop_var: str) -> bool:
    if not isinstance(op, CacheWriteOp):
        return False
    for a, b in zip(read.src.indices, op.dst.indices):
        if isinstance(a, StringAttr) and isinstance(b, StringAttr) and a.data == b.data == loop_var:
            return True
    return False


def _uses_covered(dest: str, body) -> bool:
    """Every read of `dest` comes after a cache.read into it in the same list (nested or not)."""
    uncovered = body.uncovered if isinstance(body, _Body) else _uncovered_names(body)
    return dest not in uncovered


def _uncovered_names(body) -> set[str]:
    """The variables some statement reads before a cache.read into them in its list (a read
    before a nested list counts in it; one inside it does not count after it)."""
    uncovered: set[str] = set()

    def check(ops, defined: set[str]) -> None:
        defined = set(defined)
        for op in ops:
            uncovered.update(_used_names(op) - defined)
            for inner in nested(op):
                check(inner, defined)
            if isinstance(op, CacheReadOp):
                defined.add(op.dst.var_name)

    check(list(body), set())
    return uncovered


def _used_names(op: Operation) -> set[str]:
    """The variables `op` itself reads: as an operand, an index, a setting, a bound or a condition."""
    if isinstance(op, NamedOp | KernelOp):
        names = {n for ref in op.inputs for n in _ref_names(ref)}
        return names | {v.root_reference.data for v in op.settings.data.values()
                        if getattr(v, "root_reference", None) is not None}  # fmt: skip
    if isinstance(op, CacheWriteOp):
        return _ref_names(op.src) | {n for i in op.dst.indices for n in _index_var_names(i)}
    if isinstance(op, CacheAppendOp):
        return _ref_names(op.src) | {op.offsets.data}
    if isinstance(op, CacheSaveOp):
        return _ref_names(op.src)
    if isinstance(op, CacheForkOp | CachePopOp | CacheResetWhereOp):
        return {op.lengths.data, *_sequence_names(op)}
    if isinstance(op, LoopOp):
        return {b for b in op.bounds if isinstance(b, str)}
    if isinstance(op, BranchOp):
        return {op.cond.data} if op.cond is not None else set()
    if isinstance(op, CacheReadOp | CacheResetOp):
        access = op.src if isinstance(op, CacheReadOp) else op.target
        return {n for i in access.indices for n in _index_var_names(i)}
    return set()


def _sequence_names(op) -> list[str]:
    """The variables a sequence statement's index values and mask name."""
    if isinstance(op, CacheResetWhereOp):
        return [op.mask.data]
    values = (op.src, op.dst, op.position) if isinstance(op, CacheForkOp) else (op.count, op.sequence)
    return [v.data for v in values if isinstance(v, StringAttr)]


def _ref_names(ref) -> set[str]:
    """What `ref` (`x`, `W[e]`) reads: the variable and its index variables."""
    return {ref.var_name, *(n for i in ref.indices for n in _index_var_names(i))}


def _index_var_names(index) -> list[str]:
    if isinstance(index, SliceAttr):
        return [b.data for b in (index.start, index.end) if isinstance(b, StringAttr)]
    return [index.data] if isinstance(index, StringAttr) else []


# --- how the ops see a variable ---------------------------------------------------------------


def memref_type_of(var: VarLayout, plan: StepAnalysis) -> MemRefType:
    """The memref a variable is seen as by the ops that read it (made once per variable and
    layout: a large step asks for each variable's type at every statement that uses it)."""
    table_shape = tuple(plan.vars[var.table].shape) if var.kind == "view" else None
    key = (var.name, var.dtype, tuple(var.shape), var.kind, var.table, table_shape)
    found = plan.memref_types.get(key)
    if found is None:
        found = plan.memref_types[key] = _memref_type(var, plan)
    return found


def _memref_type(var: VarLayout, plan: StepAnalysis) -> MemRefType:
    element = dtype_type(var.dtype)
    shape = [DYNAMIC_INDEX if d is None else d for d in var.shape]
    if var.kind != "view":
        return MemRefType(element, shape)
    table = plan.vars[var.table]
    entry = [d for d in table.shape]
    entry_strides, running = [], 1
    for d in reversed(entry):
        entry_strides.insert(0, running)
        running *= d
    slices = len(shape) - len(entry)
    # only the last table index keeps a static stride (one entry); earlier ones scale with capacity
    slice_strides: list[int | None] = [None] * slices
    if slices and _last_index_is_sliced(var, plan):
        slice_strides[-1] = running
    return MemRefType(element, shape, StridedLayoutAttr([*slice_strides, *entry_strides], None))


def _last_index_is_sliced(var: VarLayout, plan: StepAnalysis) -> bool:
    """Whether every read into `var` slices its table's last index (a stride of one entry)."""
    forms = []
    for op in plan.reads_into.get(var.name, ()):
        given = list(op.src.indices)
        rank = plan.vars[op.src.var_name].rank
        forms.append(len(given) < rank or isinstance(given[rank - 1], SliceAttr))
    return bool(forms) and all(forms)


__all__ = [
    "GROW_AUTO", "GROW_LOG", "GROW_PREFIX", "GROW_REBIND", "GROW_RESIZABLE", "GROW_TABLE", "GROW_VIEW", "HEADER_WORDS", "ForkAnalysis", "StepAnalysis",
    "Unsupported", "VarLayout", "device_slots", "entry_yields", "is_internal",
    "blocks_of", "branch_targets", "analyze_step", "escape_braces", "memref_type_of", "nested", "statements", "unsupported", "view_safe",
]  # fmt: skip
