"""Declarations, temporaries and prefix-table references (upstream `runtime/validation/vars.rs`).

Also carries what upstream's `context.rs` checks when it registers names
(`duplicate variable declaration`, `assign shadows declared variable`,
`duplicate temporary`) and the placement rules of upstream's legacy validator
(`simulator/validation/{graph,prefix}.rs` @ ad49573, reference §4.8): which
memory kinds may carry table indices, `@pattern`, `@ref` and the cache
attributes `@table`, `@auto_dim`, `@fixed`.
"""

from __future__ import annotations

import re

from xdsl.dialects.builtin import IntAttr

from oi_compiler.dialects.oi import AssignOp, VarOp
from oi_compiler.dialects.oi_attrs import VarRefAttr
from oi_compiler.dtypes import PACKED_DTYPES
from oi_compiler.verify.scope import GraphScope, fail

_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")


def verify_declaration(scope: GraphScope, var: VarOp) -> None:
    """Checks one declaration, then records it in `scope`."""
    name = var.var_name
    if name in scope.decls:
        raise fail(var, f"duplicate variable declaration {name}")
    if (size := scope.unknown_size(var.var_type)) is not None:
        raise fail(var, f"invalid dims for {name}: unknown size: {size}")
    if (shape := scope.oversized(var.var_type)) is not None:
        raise fail(var, f"invalid dims for {name}: {shape} holds 2**63 elements or more")
    if var.memory == "persistent":
        _verify_cache_decl(var)
    elif var.pattern is not None:
        _verify_prefix_decl(var)
    else:
        _verify_plain_decl(var)
    scope.decls[name] = var


def _has_cache_attrs(var: VarOp) -> bool:
    return var.table is not None or bool(var.auto_dim_names) or bool(var.fixed_sizes) or var.paged is not None


def _duplicate(names: list[str]) -> str | None:
    seen: set[str] = set()
    for n in names:
        if n in seen:
            return n
        seen.add(n)
    return None


def _verify_cache_decl(var: VarOp) -> None:
    name, indices = var.var_name, var.index_names
    is_table = var.table is not None
    if var.pattern is not None or var.ref is not None:
        raise fail(var, f"persistent variable {name} cannot use @pattern or @ref")
    if is_table and not indices:
        raise fail(var, f"persistent table {name} missing table indices")
    if var.auto_dim_names and not indices:
        raise fail(var, f"persistent variable {name} declares cache attributes but has no indices")
    if indices and not is_table and not var.auto_dim_names:
        raise fail(var, f"persistent variable {name} with indices must use @table or @auto_dim")
    if (dup := _duplicate(indices)) is not None:
        raise fail(var, f"persistent cache {name} has duplicate index {dup}")
    if is_table and not [i for i in indices if i not in var.auto_dim_names]:
        raise fail(var, f"persistent table {name} must declare at least one table index")
    for auto in var.auto_dim_names:
        if auto not in indices:
            raise fail(var, f"auto_dim index {auto} is not declared on {name}")
    if (dup := _duplicate(var.auto_dim_names)) is not None:
        raise fail(var, f"auto_dim index {dup} is duplicated on {name}")
    if var.auto_dim_names and len(var.auto_dim_names) != len(var.var_type.dims):
        raise fail(var, f"auto_dim requires {len(var.auto_dim_names)} dims, got {len(var.var_type.dims)}")
    for index, size in var.fixed_sizes.items():
        if index not in indices:
            raise fail(var, f"fixed index {index} is not declared on {name}")
        if size <= 0:
            raise fail(var, f"fixed index {index} on {name} must be greater than 0")
    if is_table and var.dtype in PACKED_DTYPES:
        raise fail(var, "cache table packed dtypes not supported")
    if var.paged is not None:
        _verify_paged(var)


def _verify_paged(var: VarOp) -> None:
    """`@paged(page = P[, pages = N])`: a storage for a `@table` (ours; upstream has no pages)."""
    name = var.var_name
    if var.table is None or var.auto_dim_names:
        raise fail(var, f"@paged {name} must be a @table without @auto_dim")
    options = var.paged_options
    for key, value in options.items():
        if key not in ("page", "pages"):
            raise fail(var, f"unknown @paged option {key} on {name} (page or pages)")
        if not 0 < value < 2**31:
            raise fail(var, f"@paged {key} = {value} on {name} is out of range (1 to 2**31 - 1)")
    if "page" not in options:
        raise fail(var, f"@paged {name} requires a page size: @paged(page = 16)")


def _verify_prefix_decl(var: VarOp) -> None:
    name, indices = var.var_name, var.index_names
    if var.memory not in ("volatile", "constant"):
        raise fail(var, f"prefix table {name} must be in volatile or constant memory")
    if var.ref is not None:
        raise fail(var, f"prefix table {name} cannot use @reference")
    if _has_cache_attrs(var):
        raise fail(var, f"prefix table {name} cannot use cache attributes")
    if not indices:
        raise fail(var, f"prefix table {name} must declare at least one index")
    if (dup := _duplicate(indices)) is not None:
        raise fail(var, f"prefix table {name} has duplicate index {dup}")
    placeholders = _placeholders(var, var.pattern.data)
    for index in indices:
        if index not in placeholders:
            raise fail(var, f"pattern for {name} is missing placeholder {{{index}}}")
    for placeholder in placeholders:
        if placeholder not in indices:
            raise fail(var, f"pattern for {name} references unknown index {{{placeholder}}}")


def _placeholders(var: VarOp, pattern: str) -> list[str]:
    """The `{name}` placeholders of a pattern, in order (upstream `parse_placeholders`)."""
    out: list[str] = []
    rest = pattern
    while (start := rest.find("{")) >= 0:
        end = rest.find("}", start + 1)
        if end < 0:
            raise fail(var, "pattern placeholder missing closing brace")
        placeholder = rest[start + 1 : end]
        if not placeholder:
            raise fail(var, "pattern placeholder cannot be empty")
        if not _IDENT.match(placeholder):
            raise fail(var, f"invalid pattern placeholder {{{placeholder}}}")
        out.append(placeholder)
        rest = rest[end + 1 :]
    return out


def _verify_plain_decl(var: VarOp) -> None:
    name = var.var_name
    if _has_cache_attrs(var):
        raise fail(var, f"cache attributes are only supported on persistent variables: {name}")
    if var.index_names:
        if var.memory == "dynamic":
            raise fail(var, f"prefix table {name} must be in volatile or constant memory")
        raise fail(var, f"prefix table {name} is missing @pattern")


def verify_assign(scope: GraphScope, op: AssignOp) -> None:
    """`assign t: ...` declares a graph-wide temporary (upstream `register_temp`)."""
    name = op.var_name
    if name in scope.decls:
        raise fail(op, f"assign shadows declared variable {name}")
    if name in scope.temps:
        raise fail(op, f"duplicate temporary {name}")
    if (size := scope.unknown_size(op.var_type)) is not None:
        raise fail(op, f"unknown size: {size}")
    if (shape := scope.oversized(op.var_type)) is not None:
        raise fail(op, f"invalid dims for {name}: {shape} holds 2**63 elements or more")
    scope.temps[name] = op.var_type


def verify_ref_indices(scope: GraphScope, op, ref: VarRefAttr) -> None:
    """An operand naming a prefix table must index it fully; other variables take no indices."""
    decl = scope.decl(ref.var_name)
    is_prefix = decl is not None and decl.memory != "persistent" and bool(decl.index_names)
    count = len(ref.indices.data)
    if is_prefix and count == 0:
        raise fail(op, f"prefix table {ref.var_name} must be accessed with indices")
    if count == 0:
        return
    if not is_prefix:
        raise fail(op, f"variable {ref.var_name} is not a prefix table")
    if count != len(decl.index_names):
        raise fail(op, f"prefix table {ref.var_name} expects {len(decl.index_names)} indices, got {count}")
    for index in ref.indices:
        if isinstance(index, IntAttr):
            if index.data < 0:  # the DSL cannot spell one; IR text can
                raise fail(op, f"prefix index of {ref.var_name} cannot be negative")
            if index.data >= 2**63:  # indices are 64-bit in the compiled step
                raise fail(op, f"prefix index {index.data} of {ref.var_name} is out of range (at most 2**63 - 1)")
            continue
        if _is_index_name(scope, index.data):
            continue
        raise fail(op, f"unknown prefix index {index.data}")


def _is_index_name(scope: GraphScope, name: str) -> bool:
    """A loop index in scope, a size variable, or a declared scalar variable."""
    if name in scope.loop_indices or scope.is_sizevar(name):
        return True
    if scope.has_var(name):
        return scope.is_scalar(name)
    return scope.sizevars is None
