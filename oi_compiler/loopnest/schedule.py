"""A nest's schedule: which loops exist (splits), their steps, and their order.

Pure Python, shared by the Python API (`oi.Nest(...).create_schedule()`) and by `--tile`,
which reads the same model back from the `oi.schedule` attribute, so both apply Accera's
rules with Accera's messages (../shared/reference/accera.md §1.3).

Each domain dimension has a *chain* of loops, outermost first. `split(x, size)` multiplies
x's step by `size` and puts a new loop right after x in its chain and in the order, with x's
old step: x then walks whole tiles and the new loop walks inside one. A loop's IV is the
absolute coordinate in its dimension: the innermost loop of a chain is the index the logic
sees, and loop c of a chain runs over `[iv(c-1), min(iv(c-1) + step(c-1), ub(c-1)))`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from oi_compiler.errors import ScheduleError


@dataclass
class Loop:
    name: str
    dim: int
    step: int


@dataclass
class ScheduleModel:
    extents: list[int]
    chains: list[list[Loop]]
    order: list[str]
    splits: list[tuple[str, str, int]] = field(default_factory=list)

    @classmethod
    def initial(cls, names: list[str], extents: list[int]) -> ScheduleModel:
        return cls(list(extents), [[Loop(n, d, 1)] for d, n in enumerate(names)], list(names))

    # --------------------------------------------------------------------- lookups

    def loop(self, name: str) -> Loop:
        for chain in self.chains:
            for loop in chain:
                if loop.name == name:
                    return loop
        raise ScheduleError(f"{name!r} is not an index of this schedule")

    def chain_of(self, name: str) -> tuple[list[Loop], int]:
        loop = self.loop(name)
        chain = self.chains[loop.dim]
        return chain, [c.name for c in chain].index(name)

    def span(self, name: str) -> int:
        """The longest range loop `name` walks: its chain parent's step, or the extent."""
        chain, pos = self.chain_of(name)
        return self.extents[chain[0].dim] if pos == 0 else chain[pos - 1].step

    def needs_min(self, name: str) -> bool:
        """Whether some range of loop `name` is cut short by the end of its parent's range
        (a boundary tile: the tile sizes do not divide)."""
        chain, pos = self.chain_of(name)
        if pos == 0:
            return False
        lengths = {self.extents[chain[0].dim]}  # the lengths of the ranges chain[pos - 1] walks
        for parent in chain[: pos - 1]:
            s = parent.step
            lengths = {min(r, s) for r in lengths} | {r % s for r in lengths if r > s and r % s}
        return any(r % chain[pos - 1].step for r in lengths)

    # --------------------------------------------------------------------- Accera's operations

    def split(self, name: str, size: object, new_name: str) -> None:
        if isinstance(size, bool) or not isinstance(size, int) or size < 1:
            raise ScheduleError("Split sizes must be integers >= 1")
        chain, pos = self.chain_of(name)
        if any(new_name == loop.name for c in self.chains for loop in c):
            raise ScheduleError(f"index name {new_name!r} is already used in this schedule")
        old = chain[pos].step
        chain[pos].step = old * size
        chain.insert(pos + 1, Loop(new_name, chain[pos].dim, old))
        self.order.insert(self.order.index(name) + 1, new_name)
        self.splits.append((name, new_name, size))

    def reorder(self, order: list[str]) -> None:
        if len(order) != len(self.order):
            raise ScheduleError(f"Expected {len(self.order)} indices, but got {len(order)} indices instead")
        for name in order:
            self.loop(name)
        if len(set(order)) != len(order):
            raise ScheduleError("reorder: an index appears more than once")
        for chain in self.chains:
            positions = [order.index(loop.name) for loop in chain]
            if positions != sorted(positions):
                raise ScheduleError("An inner dimension must not be ordered before its outer dimension")
        self.order = list(order)

    def level_of(self, name: str) -> int:
        return len(self.order) - self.order.index(name)

    # --------------------------------------------------------------------- the attribute form

    def to_attr_data(self) -> dict:
        return {"splits": [list(s) for s in self.splits], "order": list(self.order)}

    @classmethod
    def from_attr_data(cls, names: list[str], extents: list[int], data: dict) -> ScheduleModel:
        model = cls.initial(names, extents)
        if unknown := sorted(set(data) - {"splits", "order"}):
            raise ScheduleError(f"unknown oi.schedule entry {unknown[0]!r} (splits, order)")
        splits = data.get("splits", [])
        if not isinstance(splits, list):
            raise ScheduleError("oi.schedule splits must be a list of [index, new index, size]")
        for entry in splits:
            if not (isinstance(entry, list) and len(entry) == 3 and all(isinstance(n, str) for n in entry[:2])):
                raise ScheduleError(f"a split is [index, new index, size], got {entry}")
            model.split(entry[0], entry[2], entry[1])
        if "order" in data:
            order = data["order"]
            if not isinstance(order, list) or not all(isinstance(n, str) for n in order):
                raise ScheduleError("oi.schedule order must be a list of index names")
            model.reorder(order)
        return model
