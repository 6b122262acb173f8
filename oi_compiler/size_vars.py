"""Size-variable assignments as users write them: `"B=1 D=64"` or `"B=1,D=64"`."""

from __future__ import annotations


def parse_size_assignments(text: str) -> dict[str, int]:
    """`"B=1 D=64"` (spaces or commas between entries) -> {"B": 1, "D": 64}; ValueError says what is wrong."""
    sizes: dict[str, int] = {}
    for entry in text.replace(",", " ").split():
        name, eq, value = entry.partition("=")
        if not eq or not name.isidentifier():
            raise ValueError(f"bad entry {entry!r} (expected NAME=N)")
        try:
            sizes[name] = int(value, 0)
        except ValueError:
            raise ValueError(f"size {name} must be an integer, got {value!r}") from None
        if sizes[name] < 0:
            raise ValueError(f"size {name} cannot be negative")
        if sizes[name] >= 2**64:
            raise ValueError(f"size {name} must be below 2**64")
    return sizes
