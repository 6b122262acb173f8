"""Size variables as users give them: `"B=1 D=64"` or `"B=1,D=64"` (`parse_size_assignments`), or a
mapping of names to integers (`checked_sizevars`)."""

from __future__ import annotations

import operator
from collections.abc import Mapping

from oi_compiler.errors import OptionError


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


def checked_sizevars(sizevars: Mapping[str, int] | None) -> dict[str, int]:
    """The caller's size variables with plain int values (a numpy integer becomes one); an
    `OptionError` (a bad option of the call) for a name that is not a string or a value that is
    not an integer in [0, 2**64) (a float, a bool, a string...), the rule `Model(sizevars=...)`
    applies with its own `ModelError`."""
    if sizevars is None:
        return {}
    if not isinstance(sizevars, Mapping):
        raise OptionError(f"sizevars must be a mapping of names to integers, got {type(sizevars).__name__}")
    checked: dict[str, int] = {}
    for name, value in sizevars.items():
        if not isinstance(name, str):
            raise OptionError(f"sizevar names must be strings, got {name!r}")
        try:
            number = None if isinstance(value, bool) else operator.index(value)  # (numpy's bool has no index)
        except TypeError:
            number = None
        if number is None or not 0 <= number < 2**64:
            raise OptionError(f"sizevar {name!r} must be an integer in [0, 2**64), got {value!r}")
        checked[name] = number
    return checked
