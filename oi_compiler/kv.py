"""`oi.kv`: baracuda-kernels' KV-cache append (Descriptor / Args / Plan), compiled by our backend.

    from oi_compiler import kv
    desc = kv.KvCacheAppendDescriptor(batch_size=B, num_heads=H, new_len=L_new, max_cache_len=L_max,
                                      d_k=D_k, d_v=D_v, element=np.float16)
    plan = kv.KvCacheAppendPlan.select(desc)                  # on_out_of_range="error" | "skip"
    plan.run(kv.KvCacheAppendArgs(k_new=k_new, v_new=v_new, cache_offsets=offsets,
                                  k_cache=k_cache, v_cache=v_cache))
    offsets += L_new                                          # the plan never advances them

For each `b, h, l, d` the plan writes, in place,

    k_cache[b, h, cache_offsets[b] + l, d] = k_new[b, h, l, d]      (d < D_k)
    v_cache[b, h, cache_offsets[b] + l, d] = v_new[b, h, l, d]      (d < D_v)

with the shapes `k_new [B, H, L_new, D_k]`, `v_new [B, H, L_new, D_v]`, `cache_offsets [B]`
(int64), `k_cache [B, H, L_max, D_k]`, `v_cache [B, H, L_max, D_v]`; D_k may differ from D_v.
It is a pure copy, bit-exact for every wired element type (f32, f16, bf16, f64): the data moves as
unsigned integers of the element's width, so NaN payloads and -0.0 survive.

Differences from baracuda (`KvCacheAppendPlan<T>` in baracuda-kernels 0.0.1-alpha.68):

- Python has no type parameter T: "descriptor element != T" becomes "every K/V array's dtype is
  the descriptor's element", checked by `can_implement`.
- `can_implement` returns None or raises the typed error (`UnsupportedError`,
  `InvalidProblemError`, `BufferTooSmallError`, all `oi.OiError`) instead of returning a Result.
  A K/V argument is a 4-D array of the exact shape, or a 1-D array of the element type read as
  a row-major buffer of at least the tensor's element count (baracuda's `data.len() >= numel`).
- Cells past the cache's end (`cache_offsets[b] + l >= max_cache_len`) are an error by default:
  `on_out_of_range="error"` raises `oi.CacheError` naming the sample and changes nothing (every
  offset is checked before anything is copied). `on_out_of_range="skip"` drops those cells
  silently, as baracuda does. A negative offset is a `CacheError` under both policies.
- The native code is the backend's: an xDSL module (`runtime/kv_append.py`) through
  `backend.jit.compile_module`, compiled once per (element width, policy).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from oi_compiler.errors import (
    BufferTooSmallError,
    CacheError,
    InvalidProblemError,
    UnsupportedError,
)

if TYPE_CHECKING:
    from oi_compiler.runtime.kv_append import AppendKernel

__all__ = ["POLICIES", "WIRED_ELEMENTS", "KvCacheAppendArgs", "KvCacheAppendDescriptor", "KvCacheAppendPlan"]

#: the wired element types (each copied as the unsigned integer of its width); bfloat16 is ml_dtypes'
WIRED_ELEMENTS = ("float32", "float16", "bfloat16", "float64")
#: what to do with cells past the cache's end
POLICIES = ("error", "skip")

_PLAN = "KvCacheAppendPlan"
_WIRED = "wired today: `{f32, f16, bf16, f64}`"
_EXTENTS = ("batch_size", "num_heads", "new_len", "max_cache_len", "d_k", "d_v")
_ARGS = ("k_new", "v_new", "cache_offsets", "k_cache", "v_cache")  # also the kernel's parameter order
_TENSORS = ("k_new", "v_new", "k_cache", "v_cache")
_CACHES = ("k_cache", "v_cache")


def _element_dtype(element: object) -> object:
    """`element` as a numpy dtype where numpy reads it as one, else unchanged (`select` rejects it)."""
    if element is None:
        return None  # np.dtype(None) would be float64
    try:
        return np.dtype(element)
    except (TypeError, ValueError):
        return element


@dataclass(frozen=True, kw_only=True)
class KvCacheAppendDescriptor:
    """The problem: extents and element type. Plain data, checked by `KvCacheAppendPlan.select`.

    `element` is a numpy dtype or anything `np.dtype` reads (np.float32, np.float16, np.float64,
    ml_dtypes.bfloat16, "float16"...); it is stored as the `np.dtype`."""

    batch_size: int  #: B, the samples
    num_heads: int  #: H, the attention heads
    new_len: int  #: L_new, rows appended per sample and head
    max_cache_len: int  #: L_max, the cache's capacity along the sequence axis
    d_k: int  #: D_k, K's head dimension
    d_v: int  #: D_v, V's head dimension (may differ from d_k)
    element: np.dtype  #: the element type of all four K/V arrays

    def __post_init__(self) -> None:
        object.__setattr__(self, "element", _element_dtype(self.element))


@dataclass(frozen=True, kw_only=True, eq=False)
class KvCacheAppendArgs:
    """The arrays of one append: read `k_new`, `v_new` and `cache_offsets`; write `k_cache` and
    `v_cache` in place. See the module docstring for their shapes."""

    k_new: np.ndarray
    v_new: np.ndarray
    cache_offsets: np.ndarray
    k_cache: np.ndarray
    v_cache: np.ndarray


@dataclass(frozen=True)
class _Tensor:
    """One argument's expected shape and element count."""

    name: str
    shape: tuple[int, ...]
    numel: int = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "numel", math.prod(self.shape))


class KvCacheAppendPlan:
    """A validated descriptor with its compiled kernel: `can_implement(args)`, then `run(args)`.

    Make one with `KvCacheAppendPlan.select(desc, on_out_of_range=...)`; a plan is immutable and
    may be run from several threads on different arrays."""

    def __init__(self, desc: KvCacheAppendDescriptor, on_out_of_range: str, kernel: AppendKernel):
        self._descriptor = desc
        self._policy = on_out_of_range
        self._kernel = kernel
        B, H, L, L_max, D_k, D_v = (int(getattr(desc, name)) for name in _EXTENTS)
        self._tensors = (_Tensor("k_new", (B, H, L, D_k)), _Tensor("v_new", (B, H, L, D_v)),
                         _Tensor("k_cache", (B, H, L_max, D_k)), _Tensor("v_cache", (B, H, L_max, D_v)))  # fmt: skip
        self._offsets = _Tensor("cache_offsets", (B,))
        k_new, v_new, k_cache, v_cache = self._tensors
        self._fields = tuple(kernel.fields(t.shape) for t in (k_new, v_new, self._offsets, k_cache, v_cache))
        self._empty = B == 0 or H == 0 or L == 0

    @classmethod
    def select(cls, desc: KvCacheAppendDescriptor, on_out_of_range: str = "error") -> KvCacheAppendPlan:
        """Check the descriptor and pick the kernel (compiled on first use in the process).

        Raises `InvalidProblemError` for extents that are not non-negative integers or an unknown
        `on_out_of_range`, and `UnsupportedError` for an element type outside f32, f16, bf16, f64."""
        if not isinstance(desc, KvCacheAppendDescriptor):
            raise InvalidProblemError(f"{_PLAN}: select takes a KvCacheAppendDescriptor, got {type(desc).__name__}")
        _check_extents(desc)
        if not isinstance(desc.element, np.dtype):
            raise UnsupportedError(f"{_PLAN}: element {desc.element!r} is not a numpy dtype (pass np.float32, "
                                   f"np.float16, ml_dtypes.bfloat16 or np.float64); {_WIRED}")  # fmt: skip
        if not _is_wired(desc.element):
            raise UnsupportedError(f"{_PLAN}: element {desc.element} is not wired; {_WIRED}")
        if not isinstance(on_out_of_range, str) or on_out_of_range not in POLICIES:
            raise InvalidProblemError(f"{_PLAN}: on_out_of_range must be 'error' or 'skip', got {on_out_of_range!r}")
        from oi_compiler.runtime.kv_append import append_kernel

        return cls(desc, on_out_of_range, append_kernel(desc.element.itemsize * 8, on_out_of_range))

    @property
    def descriptor(self) -> KvCacheAppendDescriptor:
        """The problem the plan was selected for."""
        return self._descriptor

    @property
    def on_out_of_range(self) -> str:
        """"error" (raise `oi.CacheError`, write nothing) or "skip" (drop the cells past the end)."""
        return self._policy

    def workspace_size(self) -> int:
        """Bytes of workspace the plan needs: none (a pure in-place copy)."""
        return 0

    def can_implement(self, args: KvCacheAppendArgs) -> None:
        """Check `args` against the descriptor; None when they fit, else raise the typed error of
        the first failing check, in baracuda's order: each K/V shape (`InvalidProblemError`), the
        offsets' shape [batch_size], the dtypes (`UnsupportedError`), contiguity and a unit-stride
        `cache_offsets` (`UnsupportedError`), flat buffers' sizes (`BufferTooSmallError`); then
        the caches must be writeable and share memory with no other argument
        (`InvalidProblemError`). Anything that is not a numpy array is an `InvalidProblemError`.
        The offsets' values are checked by `run`."""
        self._pointers(args)

    def run(self, args: KvCacheAppendArgs) -> None:
        """`can_implement(args)`, then append K/V at each sample's offset, in place.

        Does not advance `cache_offsets`. Empty problems (B, H or L_new == 0) return after
        `can_implement` without reading the offsets. Otherwise raises `oi.CacheError`, having
        written nothing, when a sample's offset is negative (under both policies) or, under
        `on_out_of_range="error"`, when `cache_offsets[b] + new_len > max_cache_len`."""
        pointers = self._pointers(args)
        if self._empty:
            return
        rejected = self._kernel(pointers, self._fields)
        if rejected:
            sample = rejected - 1
            raise self._offset_error(sample, int(args.cache_offsets[sample]))

    def __repr__(self) -> str:
        return f"KvCacheAppendPlan({self.descriptor!r}, on_out_of_range={self.on_out_of_range!r})"

    # ------------------------------------------------------------------ validation

    def _pointers(self, args: KvCacheAppendArgs) -> tuple[int, ...]:
        """The five arrays' data pointers, in the kernel's order, once they pass every check."""
        if not isinstance(args, KvCacheAppendArgs):
            raise InvalidProblemError(f"{_PLAN}: expected KvCacheAppendArgs, got {type(args).__name__}")
        arrays = {name: getattr(args, name) for name in _ARGS}
        for name, array in arrays.items():
            if not isinstance(array, np.ndarray):
                raise InvalidProblemError(f"{_PLAN}: {name} must be a numpy array, got {type(array).__name__}")
        for tensor in self._tensors:
            _check_shape(tensor, arrays[tensor.name])
        offsets = arrays["cache_offsets"]
        if offsets.shape != self._offsets.shape:
            raise InvalidProblemError(f"{_PLAN}: cache_offsets shape must be [batch_size]: expected "
                                      f"{self._offsets.shape}, got {offsets.shape}")  # fmt: skip
        self._check_dtypes(arrays)
        _check_layout(arrays)
        for tensor in self._tensors:
            _check_buffer_size(tensor, arrays[tensor.name])
        for name in _CACHES:
            if not arrays[name].flags.writeable:
                raise InvalidProblemError(f"{_PLAN}: {name} is read-only; the plan writes it in place")
        pointers = {name: array.ctypes.data for name, array in arrays.items()}
        self._check_apart(arrays, pointers)
        return tuple(pointers.values())

    def _check_dtypes(self, arrays: dict[str, np.ndarray]) -> None:
        element = self.descriptor.element
        for name in _TENSORS:
            if arrays[name].dtype != element:
                raise UnsupportedError(f"{_PLAN}: {name} element != descriptor element "
                                       f"({arrays[name].dtype} != {element})")  # fmt: skip
        if arrays["cache_offsets"].dtype != np.int64:
            raise UnsupportedError(f"{_PLAN}: cache_offsets must be int64, got {arrays['cache_offsets'].dtype}")

    def _check_apart(self, arrays: dict[str, np.ndarray], pointers: dict[str, int]) -> None:
        """No cache shares a byte with another argument. Every array is contiguous by now, so an
        argument occupies exactly the bytes [pointer, pointer + used bytes)."""
        used = {t.name: t.numel * arrays[t.name].itemsize for t in (*self._tensors, self._offsets)}
        for name in _CACHES:
            start, end = pointers[name], pointers[name] + used[name]
            for other in _ARGS:
                if other != name and start < pointers[other] + used[other] and pointers[other] < end:
                    raise InvalidProblemError(f"{_PLAN}: {name} overlaps {other}; the caches are written in "
                                              "place and may share memory with no other argument")  # fmt: skip

    def _offset_error(self, sample: int, offset: int) -> CacheError:
        d = self.descriptor
        if offset < 0:
            return CacheError(f"{_PLAN}: sample {sample} has a negative offset: cache_offsets[{sample}] = {offset}; "
                              "nothing was written")  # fmt: skip
        return CacheError(f"{_PLAN}: sample {sample} overflows the cache: cache_offsets[{sample}] = {offset} + "
                          f"new_len {d.new_len} > max_cache_len {d.max_cache_len}; nothing was written "
                          "(on_out_of_range='skip' drops the cells past the end)")  # fmt: skip


def _is_wired(element: np.dtype) -> bool:
    """One of the four wired types, in native byte order. ml_dtypes (half a second to import) is
    loaded only for a dtype named bfloat16, which ml_dtypes made."""
    if element.name == "bfloat16":
        import ml_dtypes

        return element == np.dtype(ml_dtypes.bfloat16)
    return element in (np.dtype(np.float32), np.dtype(np.float16), np.dtype(np.float64))


def _check_extents(desc: KvCacheAppendDescriptor) -> None:
    for name in _EXTENTS:
        value = getattr(desc, name)
        if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
            raise InvalidProblemError(f"{_PLAN}: {name} must be an integer, got {value!r}")
    negative = [f"{name} = {getattr(desc, name)}" for name in _EXTENTS if getattr(desc, name) < 0]
    if negative:
        raise InvalidProblemError(f"{_PLAN}: extents must be non-negative ({', '.join(negative)})")


def _check_shape(tensor: _Tensor, array: np.ndarray) -> None:
    """A 4-D array must have the tensor's shape; a 1-D one is a flat buffer (sized later)."""
    if array.ndim != 1 and array.shape != tensor.shape:
        raise InvalidProblemError(f"{_PLAN}: {tensor.name} shape mismatch: expected {tensor.shape}, "
                                  f"got {array.shape}")  # fmt: skip


def _check_layout(arrays: dict[str, np.ndarray]) -> None:
    for name in _TENSORS:
        if not arrays[name].flags.c_contiguous:
            raise UnsupportedError(f"{_PLAN}: requires contiguous K/V tensors; {name} has strides "
                                   f"{arrays[name].strides} (np.ascontiguousarray makes a copy)")  # fmt: skip
    if not arrays["cache_offsets"].flags.c_contiguous:
        raise UnsupportedError(f"{_PLAN}: cache_offsets must be unit-stride, got a stride of "
                               f"{arrays['cache_offsets'].strides[0]} bytes")  # fmt: skip
    for name, array in arrays.items():
        if not array.flags.aligned:
            raise UnsupportedError(f"{_PLAN}: {name} is not aligned to its {array.itemsize}-byte element")


def _check_buffer_size(tensor: _Tensor, array: np.ndarray) -> None:
    """A flat buffer holds at least the tensor's elements (the kernel reads its first `numel`)."""
    if array.ndim == 1 and array.size < tensor.numel:
        raise BufferTooSmallError(f"{_PLAN}: {tensor.name} buffer too small: needed {tensor.numel} elements, "
                                  f"got {array.size}", needed=tensor.numel, got=array.size)  # fmt: skip
