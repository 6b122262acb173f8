"""Layout nests (decoder ops): transpose, reshape, concat. Any dtype (f8 too): values are copied.

* transpose: one parallel generic over the output; the input's map is the inverse
  permutation (`out[i0, i1, ...] = x[i_perm^-1(0), ...]`).
* reshape: both buffers viewed as rank 1 (`memref.reinterpret_cast` with offset 0 and
  stride 1) and copied by a rank-1 generic, which is the row-major order (the buffers must
  be row-major from their base pointer, as allocated buffers are).
* concat(a, b, axis): two copies, each into a `memref.subview` of the output along the
  axis (`[0, A)` and `[A, A + B)`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from xdsl.builder import Builder
from xdsl.ir import SSAValue

from oi_compiler.ops.nests.structured import copy_into, flatten, identity, make_map, rank, size, subview
from oi_compiler.ops.reference.settings import read_int
from oi_compiler.ops.reference.shapes import fail, normalize_axis, transpose_perm


def transpose(op: str, b: Builder, inputs: list, output: SSAValue, settings: Mapping[str, Any],
              in_dtypes: list[str], out: str) -> None:  # fmt: skip
    (x,) = inputs
    n = rank(x)
    perm = transpose_perm(op, n, settings)
    inverse = [perm.index(j) for j in range(n)]  # input dim j is output (loop) dim inverse[j]
    copy_into(b, x, output, [make_map(n, inverse), identity(n)])


def reshape(op: str, b: Builder, inputs: list, output: SSAValue, settings: Mapping[str, Any],
            in_dtypes: list[str], out: str) -> None:  # fmt: skip
    if "shape" not in settings:
        raise fail(op, "requires setting shape")
    copy_into(b, flatten(b, inputs[0]), flatten(b, output))


def concat(op: str, b: Builder, inputs: list, output: SSAValue, settings: Mapping[str, Any],
           in_dtypes: list[str], out: str) -> None:  # fmt: skip
    first, second = inputs
    if in_dtypes[0] != in_dtypes[1]:
        raise fail(op, f"inputs have different dtypes: {in_dtypes[0]} vs {in_dtypes[1]}")
    axis = normalize_axis(op, read_int(op, settings, "axis", 0), rank(first))
    length = size(b, first, axis)
    copy_into(b, first, subview(b, output, axis, 0, length))
    copy_into(b, second, subview(b, output, axis, length, size(b, second, axis)))


BUILDERS = {"transpose": transpose, "reshape": reshape, "concat": concat}
