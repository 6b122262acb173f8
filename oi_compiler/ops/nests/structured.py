"""The structured-op patterns every nest builder is made of.

* `generic(...)`: one `linalg.generic` on memrefs (its body built by a Python
  callback, tagged with an empty `oi.schedule` dictionary for later passes);
* maps: `identity`, `broadcast_map` (numpy broadcasting: a missing dim is dropped,
  a static size-1 dim reads index 0), `reduced_map` (the output of a reduction);
* `elementwise(...)`: a parallel generic over the output, inputs broadcast to it;
  `pointwise(...)` is the elementwise map in a math domain (widen each input, compute,
  narrow once to the output dtype);
* `reduction(...)`: a generic over the input's dims with the reduced ones as
  `reduction` iterators, accumulating into outputs of the reduced shape;
  `Accumulator` says where (the output, or a temporary in the math domain narrowed
  into the output at the end);
* buffers: `sizes` (static ints or `memref.dim` values), `alloc`/`dealloc` of
  temporaries (dynamic sizes too), `fill` (`linalg.fill`), `subview` along one axis,
  `flatten` (a rank-1 view through `memref.reinterpret_cast`).

Loop order is the order of the iteration dims; `convert-linalg-to-loops` nests the
loops outermost first, so a reduction visits its elements in row-major order of the
reduced coordinates, the order the numpy reference accumulates in.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from xdsl.builder import Builder
from xdsl.dialects import arith, memref
from xdsl.dialects.builtin import (
    DYNAMIC_INDEX,
    AffineMapAttr,
    DictionaryAttr,
    MemRefType,
    ShapedType,
)
from xdsl.dialects.linalg.attrs import IteratorType, IteratorTypeAttr
from xdsl.dialects.linalg.ops import FillOp, GenericOp, IndexOp, YieldOp
from xdsl.ir import Attribute, Block, BlockArgument, Region, SSAValue
from xdsl.ir.affine import AffineConstantExpr, AffineDimExpr, AffineExpr, AffineMap
from xdsl.rewriter import InsertPoint

from oi_compiler.dtypes import dtype_type
from oi_compiler.ops.nests.scalar import F64, SIGNED, Domain, Scalar, emit, index_const, narrow

SCHEDULE_ATTR = "oi.schedule"
PARALLEL = "parallel"
REDUCTION = "reduction"

Size = int | SSAValue  # a static size, or an index value
Body = Callable[[Builder, tuple[BlockArgument, ...]], Sequence[SSAValue]]


# --- types and sizes -----------------------------------------------------------------------------


def shape(value: SSAValue) -> tuple[int | None, ...]:
    """The static shape of a memref value, None for a dynamic dim."""
    return tuple(None if d == DYNAMIC_INDEX else d for d in value.type.get_shape())  # type: ignore[attr-defined]


def element_type(value: SSAValue) -> Attribute:
    t = value.type
    return t.get_element_type() if isinstance(t, ShapedType) else t  # type: ignore[attr-defined]


def rank(value: SSAValue) -> int:
    return len(shape(value))


def sizes(b: Builder, value: SSAValue) -> list[Size]:
    """Each dim of `value`: its static size, or a `memref.dim` emitted at `b`."""
    result: list[Size] = []
    for i, d in enumerate(shape(value)):
        result.append(d if d is not None else emit(b, memref.DimOp(value, index_const(b, i))))
    return result


def size(b: Builder, value: SSAValue, dim: int) -> Size:
    d = shape(value)[dim]
    return d if d is not None else emit(b, memref.DimOp(value, index_const(b, dim)))


def as_index(b: Builder, s: Size) -> SSAValue:
    return index_const(b, s) if isinstance(s, int) else s


def mul_sizes(b: Builder, items: Sequence[Size]) -> Size:
    """The product of sizes (an int when every one is static)."""
    static = 1
    dynamic: SSAValue | None = None
    for s in items:
        if isinstance(s, int):
            static *= s
        else:
            dynamic = s if dynamic is None else emit(b, arith.MuliOp(dynamic, s))
    if dynamic is None:
        return static
    return dynamic if static == 1 else emit(b, arith.MuliOp(dynamic, index_const(b, static)))


def sub_sizes(b: Builder, x: Size, y: Size) -> Size:
    if isinstance(x, int) and isinstance(y, int):
        return x - y
    return emit(b, arith.SubiOp(as_index(b, x), as_index(b, y)))


def memref_type(element: Attribute, dims: Sequence[Size]) -> MemRefType:
    return MemRefType(element, [d if isinstance(d, int) else DYNAMIC_INDEX for d in dims])


def alloc(b: Builder, element: Attribute, dims: Sequence[Size]) -> SSAValue:
    """A temporary buffer (`memref.alloc`, dynamic sizes as operands); `dealloc` it after use."""
    dynamic = [d for d in dims if not isinstance(d, int)]
    return emit(b, memref.AllocOp(dynamic, [], memref_type(element, dims)))


def dealloc(b: Builder, value: SSAValue) -> None:
    b.insert(memref.DeallocOp.get(value))


def fill(b: Builder, scalar: SSAValue, target: SSAValue) -> None:
    """`linalg.fill`: every element of `target` becomes `scalar` (of its element type)."""
    b.insert(FillOp([scalar], [target], res=()))


# --- maps ----------------------------------------------------------------------------------------


def identity(n: int) -> AffineMap:
    return AffineMap.identity(n)


def make_map(num_dims: int, results: Sequence[AffineExpr | int]) -> AffineMap:
    """A map over `num_dims` loops; an int result is a loop dim, an expr is used as is."""
    exprs = tuple(AffineDimExpr(r) if isinstance(r, int) else r for r in results)
    return AffineMap(num_dims, 0, exprs)


ZERO = AffineConstantExpr(0)


def broadcast_map(operand_shape: Sequence[int | None], loop_shape: Sequence[int | None]) -> AffineMap:
    """How an operand broadcast (numpy rules, right-aligned) to `loop_shape` is indexed.

    A static size-1 dim where the loops are not statically 1 reads index 0; a dynamic dim
    is never treated as a broadcast dim.
    """
    n, r = len(loop_shape), len(operand_shape)
    if r > n:
        raise ValueError(f"cannot broadcast rank {r} to rank {n}")
    results: list[AffineExpr | int] = []
    for j, d in enumerate(operand_shape):
        loop = n - r + j
        results.append(ZERO if d == 1 and loop_shape[loop] != 1 else loop)
    return make_map(n, results)


def reduced_map(num_dims: int, axes: Sequence[int], keepdims: bool) -> AffineMap:
    """The map of a reduction's output: kept loop dims in order, reduced ones 0 (keepdims) or gone."""
    results: list[AffineExpr | int] = []
    for d in range(num_dims):
        if d in axes:
            if keepdims:
                results.append(ZERO)
        else:
            results.append(d)
    return make_map(num_dims, results)


def first_element_map(in_rank: int, axes: Sequence[int], keepdims: bool) -> AffineMap:
    """Over the loops of a reduction's *output*: the input element at reduced coordinates 0."""
    out_rank = in_rank if keepdims else in_rank - len(axes)
    results: list[AffineExpr | int] = []
    kept = 0
    for d in range(in_rank):
        if d in axes:
            results.append(ZERO)
            if keepdims:
                kept += 1
        else:
            results.append(kept)
            kept += 1
    return make_map(out_rank, results)


# --- generics ------------------------------------------------------------------------------------


def generic(
    b: Builder,
    inputs: Sequence[SSAValue],
    outputs: Sequence[SSAValue],
    maps: Sequence[AffineMap],
    iterators: Sequence[str],
    body: Body,
) -> GenericOp:
    """A `linalg.generic` on memrefs, inserted at `b`.

    `maps` gives one indexing map per input then per output (a scalar input's map has no
    results). `body(builder, args)` receives one block argument per operand (the element,
    or the scalar itself) and returns the values to yield, one per output.
    """
    operands = [*inputs, *outputs]
    block = Block(arg_types=[element_type(v) for v in operands])
    inner = Builder(InsertPoint.at_end(block))
    yielded = list(body(inner, block.args))
    if len(yielded) != len(outputs):
        raise ValueError(f"a body yields {len(yielded)} values for {len(outputs)} outputs")
    inner.insert(YieldOp(*yielded))
    op = GenericOp(
        list(inputs),
        list(outputs),
        Region(block),
        [AffineMapAttr(m) for m in maps],
        [IteratorTypeAttr(IteratorType(it)) for it in iterators],
    )
    op.attributes[SCHEDULE_ATTR] = DictionaryAttr({})
    b.insert(op)
    return op


def loop_index(b: Builder, dim: int) -> SSAValue:
    """`linalg.index dim` inside a body: the current value of loop `dim`."""
    return emit(b, IndexOp(dim))


def operand_map(value: SSAValue, loop_shape: Sequence[int | None]) -> AffineMap:
    if not isinstance(value.type, ShapedType):
        return AffineMap(len(loop_shape), 0, ())
    return broadcast_map(shape(value), loop_shape)


def elementwise(
    b: Builder,
    inputs: Sequence[SSAValue],
    output: SSAValue,
    body: Callable[[Builder, tuple[BlockArgument, ...]], SSAValue],
) -> GenericOp:
    """A parallel generic over `output`'s dims; inputs broadcast to it, scalars passed whole.

    `body(builder, args)` gets the input elements then the current output element and
    returns the output element.
    """
    loops = shape(output)
    maps = [operand_map(v, loops) for v in inputs] + [identity(len(loops))]
    return generic(b, inputs, [output], maps, [PARALLEL] * len(loops), lambda bb, args: [body(bb, args)])


def reduction(
    b: Builder,
    source: SSAValue,
    outputs: Sequence[SSAValue],
    axes: Sequence[int],
    keepdims: bool,
    body: Body,
    extra_inputs: Sequence[tuple[SSAValue, AffineMap]] = (),
) -> GenericOp:
    """A generic over `source`'s dims that reduces `axes` into `outputs` (all of the reduced shape).

    `body(builder, (x, *extra, *accumulators))` returns the new accumulators. Extra inputs
    come with their own maps over the source's loops.
    """
    n = rank(source)
    out_map = reduced_map(n, axes, keepdims)
    maps = [identity(n), *(m for _, m in extra_inputs), *([out_map] * len(outputs))]
    iterators = [REDUCTION if d in axes else PARALLEL for d in range(n)]
    inputs = [source, *(v for v, _ in extra_inputs)]
    return generic(b, inputs, outputs, maps, iterators, body)


def reduced_sizes(b: Builder, source: SSAValue, axes: Sequence[int], keepdims: bool) -> list[Size]:
    """The sizes of a reduction's output (static where the source's are)."""
    result: list[Size] = []
    for d in range(rank(source)):
        if d in axes:
            if keepdims:
                result.append(1)
        else:
            result.append(size(b, source, d))
    return result


def copy_into(b: Builder, source: SSAValue, target: SSAValue, maps: Sequence[AffineMap] | None = None) -> None:
    """A parallel generic copying `source` into `target` (same shape unless `maps` says otherwise)."""
    n = rank(target)
    maps = maps or [identity(n), identity(n)]
    generic(b, [source], [target], maps, [PARALLEL] * n, lambda bb, args: [args[0]])


# --- views ---------------------------------------------------------------------------------------


def subview(b: Builder, value: SSAValue, axis: int, start: Size, length: Size) -> SSAValue:
    """`value[..., start:start+length, ...]` along `axis` as a strided `memref.subview`."""
    dims = [length if d == axis else size(b, value, d) for d in range(rank(value))]
    offsets: list[Size] = [0] * len(dims)
    offsets[axis] = start
    strides = [1] * len(dims)
    result_type = memref.SubviewOp.infer_result_type(value.type, offsets, dims, strides)  # type: ignore[arg-type]
    return emit(b, memref.SubviewOp.get(value, offsets, dims, strides, result_type))


def flatten(b: Builder, value: SSAValue) -> SSAValue:
    """A rank-1 view of a row-major buffer of offset 0 (`memref.reinterpret_cast`; rank 1 is kept)."""
    if rank(value) == 1:
        return value
    count = mul_sizes(b, sizes(b, value))
    result_type = memref_type(element_type(value), [count])
    return emit(b, memref.ReinterpretCastOp.from_dynamic(value, [0], [count], [1], result_type))


def pointwise(
    b: Builder,
    inputs: Sequence[SSAValue],
    output: SSAValue,
    in_dtypes: Sequence[str],
    out_dtype: str,
    domain: Domain,
    fn: Callable[..., SSAValue],
    result_domain: Domain | None = None,
) -> GenericOp:
    """The elementwise map: widen each input into `domain`, `fn(scalar, *values)`, narrow to `out_dtype`.

    `result_domain` is the domain of fn's result when it differs from the inputs' (sign
    compares floats and returns an integer).
    """

    def body(bb: Builder, args: tuple[BlockArgument, ...]) -> SSAValue:
        s = Scalar(bb, domain)
        values = [s.widen(a, d) for a, d in zip(args, in_dtypes)]
        return narrow(bb, fn(s, *values), result_domain or domain, out_dtype)

    return elementwise(b, inputs, output, body)


def domain_dtype(domain: Domain) -> str:
    """The DSL dtype whose elements hold `domain` values (temporaries of a multi-phase nest)."""
    if domain.is_float:
        return "f64" if domain.type == F64 else "f32"
    return "i64" if domain.kind == SIGNED else "u64"


@dataclass
class Accumulator:
    """Where a reduction accumulates: the output itself, or a temporary in the math domain.

    A float output narrower than its math domain (f16 summed in f32), or an output that is
    also an input (inplace matmul), accumulates in a temporary; `finish` then narrows it into
    the output and deallocates it. Integer outputs accumulate in place at their width, which
    wraps exactly as the reference's 64-bit sum wrapped to the width does.
    """

    buffer: SSAValue
    dtype: str
    output: SSAValue
    out_dtype: str
    domain: Domain

    @staticmethod
    def make(
        b: Builder, output: SSAValue, out_dtype: str, domain: Domain, aliases: Sequence[SSAValue] = ()
    ) -> Accumulator:
        aliased = any(output is v for v in aliases)
        if not aliased and (not domain.is_float or dtype_type(out_dtype) == domain.type):
            return Accumulator(output, out_dtype, output, out_dtype, domain)
        dtype = domain_dtype(domain) if domain.is_float else out_dtype
        buffer = alloc(b, dtype_type(dtype), sizes(b, output))
        return Accumulator(buffer, dtype, output, out_dtype, domain)

    def finish(self, b: Builder) -> None:
        if self.buffer is self.output:
            return
        pointwise(b, [self.buffer], self.output, [self.dtype], self.out_dtype, self.domain, lambda s, x: x)
        dealloc(b, self.buffer)
