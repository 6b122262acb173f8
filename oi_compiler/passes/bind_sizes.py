"""`--bind-sizes`: give size variables their values, so every shape the graph names is concrete.

    oi-opt model.oi --bind-sizes="B=1 D=64"
    oi-opt model.oi --bind-sizes=model=weights.oinf            # the model's sizes (a path needs no quotes)
    oi-opt model.oi --bind-sizes='model="weights.oinf" D=64'   # the model's sizes, D overridden

Each named size is substituted wherever the graph may name it: the dims of every
declared variable and `assign`ed temporary (`f32[B, 3*D]` -> `f32[1, 192]`), cache
indices and slice bounds (`K[l, 0..T]`), prefix-table indices (`W[D]`) and loop
bounds. A size variable comes first wherever upstream resolves a name (it shadows a
persistent scalar of the same name as a cache index, and a variable as a loop
bound), so the substitution keeps the graph's meaning. Names not given stay
symbolic.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from xdsl.dialects.builtin import ArrayAttr, IntAttr, StringAttr
from xdsl.ir import Attribute
from xdsl.passes import ModulePass
from xdsl.utils.arg_spec import ArgSpec

from oi_compiler.dialects.oi import AssignOp, CacheForkOp, CachePopOp, LoopOp, VarOp
from oi_compiler.dialects.oi_attrs import CacheAccessAttr, DimAttr, SliceAttr, TensorType, VarRefAttr
from oi_compiler.errors import PassError
from oi_compiler.size_vars import parse_size_assignments


def parse_sizes(text: str) -> dict[str, int]:
    try:
        return parse_size_assignments(text)
    except ValueError as e:
        raise PassError(f"bind-sizes: {e}") from None


@dataclass(frozen=True)
class BindSizes(ModulePass):
    """Replace size variables by their values (options: NAME=N ..., model=PATH)"""

    name = "bind-sizes"

    sizes: tuple[tuple[str, int], ...] = field(default=())
    model: str = ""

    @classmethod
    def from_spec(cls, spec: ArgSpec) -> BindSizes:
        """Every option but `model` names a size: `bind-sizes{B=1 D=64}`, `--bind-sizes="B=1 D=64"`."""
        sizes, model = {}, ""
        for key, values in spec.normalize_parameter_names().parameters.items():
            value = values[0] if isinstance(values, list | tuple) and len(values) == 1 else values
            if key == "model":
                model = str(value)
            elif key == "sizes":
                sizes.update(parse_sizes(str(value)))
            else:
                sizes.update(parse_sizes(f"{key}={value}"))
        return cls(tuple(sorted(sizes.items())), model)

    def all_sizes(self) -> dict[str, int]:
        sizes: dict[str, int] = {}
        if self.model:
            from oi_compiler.models.model import Model

            sizes.update(Model.open(self.model).sizevars)
        sizes.update(dict(self.sizes))
        return sizes

    def apply(self, ctx, module) -> None:
        sizes = self.all_sizes()
        if not sizes:
            return
        for op in module.walk():
            if isinstance(op, VarOp | AssignOp):
                op.properties["type"] = bound_type(op.var_type, sizes)
            elif isinstance(op, LoopOp | CacheForkOp | CachePopOp):
                for key in INDEX_VALUE_PROPERTIES[type(op)]:  # the properties holding one index value
                    bound = op.properties[key]
                    if isinstance(bound, StringAttr) and bound.data in sizes:
                        op.properties[key] = IntAttr(sizes[bound.data])
            for key, prop in list(op.properties.items()):
                bound = bound_indices(prop, sizes)
                if bound is not prop:
                    op.properties[key] = bound


#: per op kind, its properties that hold a single index value (a literal or a name)
INDEX_VALUE_PROPERTIES = {
    LoopOp: ("start", "end"),
    CacheForkOp: ("src", "dst", "position"),
    CachePopOp: ("count", "sequence"),
}


def bound_type(var_type: TensorType, sizes: dict[str, int]) -> TensorType:
    dims = []
    for dim in var_type.dims:
        value = dim.size(sizes)
        if value is None:  # partly bound: the given sizes substituted, the product kept
            dims.append(DimAttr(*(sizes.get(f.data, f.data) if isinstance(f, StringAttr) else f.data for f in dim.factors)))
        else:
            dims.append(DimAttr(value))
    return TensorType(var_type.dtype, dims)


def bound_indices(attr: Attribute, sizes: dict[str, int]) -> Attribute:
    """`attr` with every index slot naming a size replaced by its value (the same object if none does)."""

    def value(v):
        return sizes.get(v, v) if isinstance(v, str) else v

    if isinstance(attr, ArrayAttr) and any(isinstance(a, VarRefAttr) for a in attr):
        return ArrayAttr([bound_indices(a, sizes) for a in attr])
    if isinstance(attr, VarRefAttr) and any(isinstance(i, StringAttr) and i.data in sizes for i in attr.indices):
        return VarRefAttr(attr.var_name, [value(i.data) for i in attr.indices])
    if isinstance(attr, CacheAccessAttr):
        names = [b for i in attr.indices for b in (i.bounds if isinstance(i, SliceAttr) else (i.data,))]
        if any(isinstance(n, str) and n in sizes for n in names):
            indices = [
                SliceAttr(*map(value, i.bounds)) if isinstance(i, SliceAttr) else value(i.data) for i in attr.indices
            ]
            return CacheAccessAttr(attr.var_name, indices, attr.is_bracketed)
    return attr
