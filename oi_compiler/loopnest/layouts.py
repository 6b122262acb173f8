"""Strides of dense buffers, in elements: the one place arrays, TEMP buffers and caches get them."""

from __future__ import annotations

from collections.abc import Sequence


def layout_strides(shape: Sequence[int], order: Sequence[int]) -> list[int]:
    """Strides of a dense buffer whose dimensions, fastest first, are `order`."""
    strides, step = [0] * len(shape), 1
    for d in order:
        strides[d], step = step, step * shape[d]
    return strides


def row_major(shape: Sequence[int]) -> list[int]:
    """FIRST_MAJOR: the last index is contiguous."""
    return layout_strides(shape, list(reversed(range(len(shape)))))


def column_major(shape: Sequence[int]) -> list[int]:
    """LAST_MAJOR: the first index is contiguous."""
    return layout_strides(shape, list(range(len(shape))))
