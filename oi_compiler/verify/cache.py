"""`cache.read/write/increment/decrement/reset` (upstream `runtime/validation/cache.rs`).

The checks and their order are upstream's. A few failures upstream only raises
when the statement runs are certain from the text alone, so they are raised
here too, with upstream's run-time wording: a bracketed access to a plain
persistent variable, a table write that does not name one entry or whose source
shape is not the entry shape, a literal slice ending before it starts, and a
literal index past a `@fixed` table size.
"""

from __future__ import annotations

from xdsl.dialects.builtin import IntAttr, NoneAttr, StringAttr

from oi_compiler.dialects.oi import (
    CacheAppendOp,
    CacheForkOp,
    CacheLoadOp,
    CachePopOp,
    CacheReadOp,
    CacheResetOp,
    CacheResetWhereOp,
    CacheSaveOp,
    CacheWriteOp,
    GraphOp,
    VarOp,
)
from oi_compiler.dialects.oi_attrs import CacheAccessAttr, SliceAttr
from oi_compiler.dtypes import FLOAT_DTYPES, PACKED_DTYPES
from oi_compiler.ops.registry import dtype_debug_name
from oi_compiler.verify.scope import GraphScope, fail, fixed_size_message, memory_debug_name, shape_text
from oi_compiler.verify.vars import verify_ref_indices


def is_cache_table(decl: VarOp) -> bool:
    return decl.memory == "persistent" and decl.table is not None and bool(decl.index_names)


def has_auto_dim(decl: VarOp) -> bool:
    return decl.memory == "persistent" and bool(decl.auto_dim_names)


def table_indices(decl: VarOp) -> list[str]:
    """The indices that address table entries (declared indices minus auto-dim names)."""
    return [i for i in decl.index_names if i not in decl.auto_dim_names] if is_cache_table(decl) else []


def _persistent_decl(scope: GraphScope, op, name: str, what: str) -> VarOp:
    decl = scope.decl(name)
    if decl is None:
        raise fail(op, f"unknown cache variable {name}")
    if decl.memory != "persistent":
        raise fail(op, f"{what} expects persistent variable, got {memory_debug_name(decl.memory)} {name}")
    return decl


def verify_cache_read(scope: GraphScope, op: CacheReadOp) -> None:
    src, dst = op.src, op.dst
    decl = _persistent_decl(scope, op, src.var_name, "cache.read")
    _verify_access(scope, op, src, decl, "read")
    if scope.memory(dst.var_name) in ("constant", "persistent"):
        raise fail(op, f"cache.read output {dst.text} must be mutable non-persistent memory")
    out_type = scope.var_type(dst.var_name)
    if out_type is None:
        raise fail(op, f"unknown variable: {dst.text}")
    if out_type.dtype != decl.dtype:
        raise fail(
            op,
            f"cache.read {src.var_name} -> {dst.text} dtype mismatch "
            f"{dtype_debug_name(decl.dtype)} vs {dtype_debug_name(out_type.dtype)}",
        )
    verify_ref_indices(scope, op, dst)


def verify_cache_write(scope: GraphScope, op: CacheWriteOp) -> None:
    src, dst = op.src, op.dst
    decl = _persistent_decl(scope, op, dst.var_name, "cache.write")
    _verify_access(scope, op, dst, decl, "write")
    in_type = scope.var_type(src.var_name)
    if in_type is None:
        raise fail(op, f"unknown variable: {src.text}")
    if in_type.dtype != decl.dtype:
        raise fail(
            op,
            f"cache.write {src.text} -> {dst.var_name} dtype mismatch "
            f"{dtype_debug_name(in_type.dtype)} vs {dtype_debug_name(decl.dtype)}",
        )
    if scope.memory(src.var_name) == "persistent":
        raise fail(op, f"persistent cache {src.text} must be read via cache.read")
    verify_ref_indices(scope, op, src)
    if is_cache_table(decl):
        entry, got = [scope.dim_value(d) for d in decl.var_type.dims], scope.shape(src.var_name)
        if entry != got:
            raise fail(op, f"cache.write {dst.var_name} expects shape {shape_text(entry)}, got {shape_text(got)}")


def verify_cache_append(scope: GraphScope, op: CacheAppendOp) -> None:
    """`cache.append x >> K[off]` (an oi_compiler extension, docs/semantics.md): `K` a `@table`
    with a batch index first and a sequence index last, `off` an integer vector (one offset per
    sample), `x` of shape `[B, ..., L_new] + entry`. The extents themselves are checked when the
    statement runs (sizes may be known only then)."""
    name, src, offsets = op.table.data, op.src, op.offsets.data
    decl = _persistent_decl(scope, op, name, "cache.append")
    if not is_cache_table(decl) or decl.auto_dim_names:
        raise fail(op, f"cache.append expects a @table variable, got {name}")
    rank = len(table_indices(decl))
    if rank < 2:
        raise fail(op, f"cache.append {name} needs a batch index and a sequence index, "
                       f"the table has {rank} index")  # fmt: skip
    if decl.dtype in PACKED_DTYPES:
        raise fail(op, "cache table packed dtypes not supported")
    in_type = scope.var_type(src.var_name)
    if in_type is None:
        raise fail(op, f"unknown variable: {src.text}")
    if scope.memory(src.var_name) == "persistent":
        raise fail(op, f"persistent cache {src.text} must be read via cache.read")
    if in_type.dtype != decl.dtype:
        raise fail(op, f"cache.append {src.text} -> {name} dtype mismatch "
                       f"{dtype_debug_name(in_type.dtype)} vs {dtype_debug_name(decl.dtype)}")  # fmt: skip
    verify_ref_indices(scope, op, src)
    entry, got = [scope.dim_value(d) for d in decl.var_type.dims], scope.shape(src.var_name)
    if len(got) != rank + len(entry) or got[rank:] != entry:
        want = "[" + ", ".join([*decl.index_names, *map(str, entry)]) + "]"
        raise fail(op, f"cache.append {name} expects a source of shape {want}, got {shape_text(got)}")
    off_type = scope.var_type(offsets)
    if off_type is None:
        raise fail(op, f"unknown variable: {offsets}")
    if scope.memory(offsets) == "persistent" and decl.var_name == offsets:
        raise fail(op, f"cache.append {name} cannot take its own table as offsets")
    if off_type.dtype in FLOAT_DTYPES or off_type.dtype == "bool" or off_type.dtype in PACKED_DTYPES:
        raise fail(op, f"cache.append offsets {offsets} must be integer, got {dtype_debug_name(off_type.dtype)}")
    off_decl = scope.decl(offsets)
    if off_decl is not None and off_decl.index_names:
        raise fail(op, f"cache.append offsets {offsets} must be a plain vector, not a table")
    off_shape = scope.shape(offsets)
    if len(off_shape) != 1:
        raise fail(op, f"cache.append offsets {offsets} must have shape [B], got {shape_text(off_shape)}")


def _field_decl(scope: GraphScope, op, name: str, what: str) -> VarOp:
    """A field of `cache.save`/`cache.load` (vortex_torch's PAGED `o`): a persistent `@table F(s)`
    with one growable index (its size is the page count S) and an entry `[D0, D1]`."""
    decl = _persistent_decl(scope, op, name, what)
    if not is_cache_table(decl) or decl.auto_dim_names or len(decl.index_names) != 1:
        raise fail(op, f"{what} expects a field: a @table with one index, got {name}")
    if decl.fixed_sizes:
        raise fail(op, f"{what} field {name} has a @fixed index: its size is the number of saved pages")
    if len(decl.var_type.dims) != 2:
        got = "[S, " + ", ".join(d.text for d in decl.var_type.dims) + "]"
        raise fail(op, f"expected 3D o [S, D0, D1], got {got}")
    return decl


def _check_ragged(scope: GraphScope, op, x: str, field: VarOp, what: str) -> None:
    """`x` is a RAGGED `[S, D0, D1]` of the field's dtype and D0/D1 (vortex's checks and wording)."""
    if scope.memory(x) in ("persistent", "constant"):
        fmt = "PAGED" if scope.memory(x) == "persistent" else "CONSTANT"
        raise fail(op, f"{what}: no implementation for x_fmt={fmt}. Available keys: [RAGGED]")
    x_type = scope.var_type(x)
    if x_type is None:
        raise fail(op, f"unknown variable: {x}")
    shape = scope.shape(x)
    if len(shape) != 3:
        raise fail(op, f"expected 3D x [S, D0, D1], got {shape_text(shape)}")
    entry = [scope.dim_value(d) for d in field.var_type.dims]
    for n in (0, 1):
        if shape[n + 1] != entry[n]:
            raise fail(op, f"expected matching D{n}: x.shape[{n + 1}]={shape[n + 1]} vs o.shape[{n + 1}]={entry[n]}")
    if x_type.dtype != field.dtype:
        raise fail(op, f"{what} {x} -> {field.var_name} dtype mismatch "
                       f"{dtype_debug_name(x_type.dtype)} vs {dtype_debug_name(field.dtype)}")  # fmt: skip


def verify_cache_save(scope: GraphScope, op: CacheSaveOp) -> None:
    """`cache.save x >> F` (vortex_torch's Save): also, nothing but `cache.save` and `cache.load`
    may name a field that is saved (its value changes only at the end of a step)."""
    name = op.dst.var_name
    field = _field_decl(scope, op, name, "cache.save")
    if op.dst.indices.data:
        raise fail(op, f"cache.save {name} takes no indices")
    _check_ragged(scope, op, op.src.var_name, field, "cache.save")
    verify_ref_indices(scope, op, op.src)
    graph = op.parent_op()
    while graph is not None and not isinstance(graph, GraphOp):
        graph = graph.parent_op()
    for other in graph.walk() if graph is not None else ():
        target = _cache_target(other)
        if target == name and not isinstance(other, CacheSaveOp | CacheLoadOp):
            raise fail(other, f"{other.name.removeprefix('oi.')} {name}: {name} is a field that cache.save "
                              "writes; only cache.save and cache.load may name it")  # fmt: skip


def _cache_target(op) -> str | None:
    if isinstance(op, CacheReadOp):
        return op.src.var_name
    if isinstance(op, CacheWriteOp | CacheSaveOp):
        return op.dst.var_name
    if isinstance(op, CacheResetOp):
        return op.target.var_name
    if isinstance(op, CacheAppendOp):
        return op.table.data
    return None


def verify_cache_load(scope: GraphScope, op: CacheLoadOp) -> None:
    """`cache.load F >> y` (vortex_torch's Load): `y` a mutable RAGGED `[S, D0, D1]`."""
    field = _field_decl(scope, op, op.field, "cache.load")
    dst = op.dst
    if scope.memory(dst.var_name) in ("constant", "persistent"):
        raise fail(op, f"cache.load output {dst.text} must be mutable non-persistent memory")
    if scope.var_type(dst.var_name) is None:
        raise fail(op, f"unknown variable: {dst.text}")
    _check_ragged(scope, op, dst.var_name, field, "cache.load")
    verify_ref_indices(scope, op, dst)


def _verify_sequence_group(scope: GraphScope, op, what: str) -> None:
    """A sequence statement's tables (each a `@table K(b, ..., t)`: a sequence per first index, a
    position per last) and lengths (a persistent integer vector, one per sequence)."""
    names = op.table_names
    if len(set(names)) != len(names):
        raise fail(op, f"{what} names a table twice")
    for name in names:
        decl = _persistent_decl(scope, op, name, what)
        if not is_cache_table(decl) or decl.auto_dim_names:
            raise fail(op, f"{what} expects a @table variable, got {name}")
        if len(table_indices(decl)) < 2:
            raise fail(op, f"{what} {name} needs a sequence index and a position index, "
                           f"the table has {len(table_indices(decl))} index")  # fmt: skip
    lengths = op.lengths.data
    decl = _persistent_decl(scope, op, lengths, what)
    if decl.index_names:
        raise fail(op, f"{what} lengths {lengths} must be a plain vector, not a table")
    if decl.dtype in FLOAT_DTYPES or decl.dtype == "bool" or decl.dtype in PACKED_DTYPES:
        raise fail(op, f"{what} lengths {lengths} must be integer, got {dtype_debug_name(decl.dtype)}")
    if len(scope.shape(lengths)) != 1:
        raise fail(op, f"{what} lengths {lengths} must have shape [B], got {shape_text(scope.shape(lengths))}")


def verify_cache_fork(scope: GraphScope, op: CacheForkOp) -> None:
    _verify_sequence_group(scope, op, "cache.fork")
    for value in (op.src, op.dst, op.position):
        _verify_index_value(scope, op, value, allow_negative=False)
    if op.src == op.dst:
        raise fail(op, f"cache.fork source and destination are both sequence {op.src.data}")


def verify_cache_pop(scope: GraphScope, op: CachePopOp) -> None:
    _verify_sequence_group(scope, op, "cache.pop")
    for value in (op.count, op.sequence):
        _verify_index_value(scope, op, value, allow_negative=False)


def verify_cache_reset_where(scope: GraphScope, op: CacheResetWhereOp) -> None:
    _verify_sequence_group(scope, op, "cache.reset")
    mask = op.mask.data
    mask_type = scope.var_type(mask)
    if mask_type is None:
        raise fail(op, f"unknown variable: {mask}")
    if mask_type.dtype in FLOAT_DTYPES or mask_type.dtype in PACKED_DTYPES:
        raise fail(op, f"cache.reset mask {mask} must be bool or integer, got {dtype_debug_name(mask_type.dtype)}")
    decl = scope.decl(mask)
    if decl is not None and decl.index_names:
        raise fail(op, f"cache.reset mask {mask} must be a plain vector, not a table")
    shape, lengths = scope.shape(mask), scope.shape(op.lengths.data)
    if shape != lengths:
        raise fail(op, f"cache.reset where: the mask has shape {shape_text(shape)}, the lengths {shape_text(lengths)}")


def verify_cache_step(scope: GraphScope, op) -> None:
    """`cache.increment` / `cache.decrement` (upstream `validate_cache_bump`)."""
    name = op.target.data
    decl = _persistent_decl(scope, op, name, "cache operation")
    if not scope.is_scalar(name):
        raise fail(op, f"cache increment expects scalar {name}")
    if decl.dtype in PACKED_DTYPES or decl.dtype == "bool":
        raise fail(op, f"cache increment does not support dtype {dtype_debug_name(decl.dtype)} for {name}")


def verify_cache_reset(scope: GraphScope, op: CacheResetOp) -> None:
    decl = _persistent_decl(scope, op, op.target.var_name, "cache.reset")
    _verify_access(scope, op, op.target, decl, "reset")


def _verify_access(scope: GraphScope, op, access: CacheAccessAttr, decl: VarOp, mode: str) -> None:
    """Upstream `validate_cache_access`, then the certain run-time failures of this access."""
    name, indices = access.var_name, list(access.indices)
    table = is_cache_table(decl)
    if not access.is_bracketed and indices:
        raise fail(op, f"cache access {name} missing brackets")
    if table and not access.is_bracketed:
        raise fail(op, f"cache table {name} requires indices")
    rank = len(decl.var_type.dims)
    if not table and len(indices) > rank:
        raise fail(op, f"cache access expects at most {rank} indices, got {len(indices)}")
    if has_auto_dim(decl) and access.has_slices:
        raise fail(op, f"cache access {name} does not support slice indices")
    if table and mode == "reset" and access.has_slices:
        raise fail(op, f"cache.reset {name} requires scalar indices")
    limit = len(table_indices(decl)) if table else len(decl.auto_dim_names) if has_auto_dim(decl) else rank
    if indices and len(indices) > limit:
        raise fail(op, f"cache access {name} expects at most {limit} indices, got {len(indices)}")
    for index in indices:
        _verify_index(scope, op, index)
    if mode == "reset":
        return
    if not table and not has_auto_dim(decl) and access.is_bracketed:
        if mode == "write":
            raise fail(op, f"cache.write {name} does not support indexed writes")
        raise fail(op, f"cache {name} does not support indexed access")
    if table and mode == "write" and (access.has_slices or len(indices) != limit):
        raise fail(op, f"cache.write {name} does not support slice indices")
    if table:
        _verify_table_bounds(op, decl, indices)


def _verify_index(scope: GraphScope, op, index) -> None:
    """A single index, or a slice whose start may not be negative (its end may)."""
    if not isinstance(index, SliceAttr):
        _verify_index_value(scope, op, index, allow_negative=False)
        return
    if isinstance(index.start, IntAttr | StringAttr):
        _verify_index_value(scope, op, index.start, allow_negative=False)
    if isinstance(index.end, IntAttr | StringAttr):
        _verify_index_value(scope, op, index.end, allow_negative=True)


def _verify_index_value(scope: GraphScope, op, value, *, allow_negative: bool) -> None:
    """A literal, a size variable, a loop index in scope, or a persistent scalar."""
    if isinstance(value, IntAttr):
        if value.data < 0 and not allow_negative:
            raise fail(op, "cache index cannot be negative")
        if abs(value.data) >= 2**63:  # table sizes and indices are 64-bit (the compiled step's i64)
            raise fail(op, f"cache index {value.data} is out of range (at most 2**63 - 1)")
        return
    name = value.data
    if scope.is_sizevar(name) or name in scope.loop_indices:
        return
    decl = scope.decl(name)
    if decl is not None and decl.memory == "persistent" and scope.is_scalar(name):
        return
    if scope.sizevars is None and decl is None and name not in scope.temps:
        return  # may be a size variable, known only when the model is
    raise fail(op, f"unknown cache index {name}")


def _verify_table_bounds(op, decl: VarOp, indices: list) -> None:
    """Literal slices must not end before they start; literal indices must fit `@fixed` sizes.

    A scalar index k needs size k+1 and a slice with a non-negative end e size e
    (upstream `ensure_table_size`), checked dim by dim as upstream does.
    """
    fixed = decl.fixed_sizes
    for dim, (index, index_name) in enumerate(zip(indices, table_indices(decl))):
        if isinstance(index, IntAttr):
            required, detail = index.data + 1, f"index value {index.data}"
        elif isinstance(index, SliceAttr) and isinstance(index.end, IntAttr) and index.end.data >= 0:
            start = _literal_start(index)
            if start is not None and index.end.data < start:
                raise fail(op, f"slice end {index.end.data} before start {start}")
            required, detail = index.end.data, f"slice end {index.end.data}"
        else:
            continue
        limit = fixed.get(index_name)
        if limit is not None and required > limit:
            raise fail(op, fixed_size_message(decl.var_name, dim, limit, detail))


def _literal_start(index: SliceAttr) -> int | None:
    """A slice's start when known from the text (absent means 0), else None."""
    if isinstance(index.start, IntAttr):
        return index.start.data
    return 0 if isinstance(index.start, NoneAttr) else None
