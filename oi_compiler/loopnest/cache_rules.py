"""`plan.cache(...)` requests and Accera's rules for them, checked in Accera's order.

The Python API checks a request when `plan.cache` is called (as Accera does) and `--cache`
checks the `oi.plan` attribute again, so IR written by hand gets the same messages. The
rules and their wording are Accera's `Plan.cache` (../shared/reference/accera.md §1.5).
"""

from __future__ import annotations

from dataclasses import dataclass, fields

from oi_compiler.errors import ScheduleError
from oi_compiler.loopnest.schedule import ScheduleModel

LAYOUTS = ("first_major", "last_major")
LOCATIONS = ("none", "global", "shared", "private", "mma_fragment")
STRATEGIES = ("auto", "blocked", "striped")
MULTICACHE_ROLES = ("const", "input")


@dataclass
class CacheRequest:
    """One `plan.cache` call, as recorded (the attribute `oi.plan.caches[n]`)."""

    name: str
    source: str  # an array's name, or the name of the cache it caches (hierarchical)
    index: str | None = None
    trigger_index: str | None = None
    level: int | None = None
    trigger_level: int | None = None
    max_elements: int | None = None
    layout: str | None = None  # None: the source's layout
    thrifty: bool = False
    double_buffer: bool = False
    double_buffer_location: str = "auto"
    location: str = "none"
    strategy: str = "auto"
    element_type: str | None = None
    shared_memory_offset: int | None = None

    def to_attr_data(self) -> dict:
        """The fields set to other than their defaults (name and source always)."""
        return {f.name: getattr(self, f.name) for f in fields(self)
                if f.name in ("name", "source") or getattr(self, f.name) != f.default}  # fmt: skip

    @classmethod
    def from_attr_data(cls, data: dict) -> CacheRequest:
        known = {f.name for f in fields(cls)}
        if unknown := sorted(set(data) - known):
            raise ScheduleError(f"unknown cache option {unknown[0]!r} (known: {', '.join(sorted(known))})")
        if "name" not in data or "source" not in data:
            raise ScheduleError("a cache needs a name and a source")
        for f in fields(cls):
            if f.name in data and not _FIELD_TYPES[f.name](data[f.name]):
                raise ScheduleError(f"cache option {f.name} must be {_FIELD_KINDS[f.name]}, got {data[f.name]!r}")
        return cls(**data)


def _is_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


_FIELD_KINDS = {
    "name": "a string", "source": "a string", "index": "an index name", "trigger_index": "an index name",
    "level": "an integer", "trigger_level": "an integer", "max_elements": "an integer", "layout": "a string",
    "thrifty": "a boolean", "double_buffer": "a boolean", "double_buffer_location": "a string",
    "location": "a string", "strategy": "a string", "element_type": "a string", "shared_memory_offset": "an integer",
}  # fmt: skip
_FIELD_TYPES = {
    name: (_is_int if kind == "an integer" else (lambda v: isinstance(v, bool)) if kind == "a boolean"
           else (lambda v: isinstance(v, str)))
    for name, kind in _FIELD_KINDS.items()
}  # fmt: skip


def _index_at_level(schedule: ScheduleModel, level: int, what: str) -> str | None:
    """Accera's `order[-level]`; None for level 0 (rule 14 or 15 reports it), and this
    compiler's message where Accera's list lookup would fail."""
    if level == 0:
        return None
    n = len(schedule.order)
    if not -(n - 1) <= level <= n:  # where order[-level] exists
        raise ScheduleError(f"{what} {level} does not name a loop of the schedule's {n}")
    return schedule.order[-level]


def check_request(req: CacheRequest, schedule: ScheduleModel, role: str, target: str,
                  outer: CacheRequest | None) -> None:
    """Check `req` and resolve its level/index (and trigger) against the schedule's current
    order, in place. `role` is the base array's role; `outer` the cache `req` caches, if any."""
    # 1-8: the options on their own
    if sum(x is not None for x in (req.index, req.level, req.max_elements)) != 1:
        raise ScheduleError("Specify one and only one of index, level, or max_elements")
    if req.max_elements is not None and req.max_elements <= 0:
        raise ScheduleError("Max element count specified as a cache budget must be greater than 0")
    if req.double_buffer and role not in MULTICACHE_ROLES:
        raise ScheduleError("Double-buffering is only supported for CONST and INPUT arrays")
    if not req.double_buffer and req.double_buffer_location != "auto":
        raise ScheduleError("double_buffer_location is only valid to specify when double_buffer is set to True")
    if target == "gpu" and req.location == "global":
        raise ScheduleError("Global memory caches are not yet supported on GPU targets.")
    if target == "cpu" and req.strategy != "auto":
        raise ScheduleError("Only AUTO strategy is supported on the CPU")
    if req.double_buffer and req.location == "mma_fragment":
        raise ScheduleError("Double buffering is not supported with Tensor caching")
    if req.shared_memory_offset is not None and req.location != "shared":
        raise ScheduleError("_shared_memory_offset can only be set with shared memory")
    if req.double_buffer and req.double_buffer_location == "auto":
        req.double_buffer_location = "private" if target == "gpu" and req.location == "shared" else req.location
    # 9-15: where the cache sits. Accera resolves a level as `order[-level]` before checking
    # that it is positive, so a negative level is reported after rules 11 and 13, as there
    if req.max_elements is None:
        if req.index is not None and (req.level is not None or req.trigger_level is not None):
            raise ScheduleError("Can't specify both a cache index and a cache level or trigger level")
        if req.level is not None and (req.index is not None or req.trigger_index is not None):
            raise ScheduleError("Can't specify both a cache level and a cache index or trigger index")
        if req.level is not None:
            req.index = _index_at_level(schedule, req.level, "Cache level")
        else:
            schedule.loop(req.index)
            req.level = schedule.level_of(req.index)
        if (req.trigger_level is not None or req.trigger_index is not None) and role not in MULTICACHE_ROLES:
            raise ScheduleError("Multicaching is only supported for CONST and INPUT arrays")
        if req.trigger_level is not None and req.trigger_index is not None:
            raise ScheduleError("Can't specify both a trigger_index and a trigger_level")
        if req.trigger_level is not None:
            req.trigger_index = _index_at_level(schedule, req.trigger_level, "Cache trigger level")
        elif req.trigger_index is not None:
            schedule.loop(req.trigger_index)
            req.trigger_level = schedule.level_of(req.trigger_index)
        else:
            req.trigger_index, req.trigger_level = req.index, req.level
        if req.level > req.trigger_level:
            raise ScheduleError("Cache level must be less than or equal to the cache trigger level")
        if req.level <= 0:
            raise ScheduleError("Cache level must be greater than or equal to 1")
        if req.trigger_level <= 0:
            raise ScheduleError("Cache trigger level must be greater than or equal to 1")
    # 16-20: a cache of a cache
    if outer is not None:
        if outer.max_elements is None and (outer.level is None or outer.trigger_level is None):
            raise ScheduleError("Given source cache doesn't have a cache level, trigger_level, or max_elements")
        if (outer.max_elements is None) != (req.max_elements is None):
            raise ScheduleError("Can only create a max element hierarchical caches of other max element caches")
        if req.max_elements is not None:
            if outer.max_elements <= req.max_elements:
                raise ScheduleError("Outer max element cache for a hierarchical cache must have a larger budget than "
                                    "the inner cache")  # fmt: skip
        else:
            if outer.level <= req.level:
                raise ScheduleError("Outer cache for a hierarchical cache must have a higher cache level than inner "
                                    "cache")  # fmt: skip
            if outer.level < req.trigger_level:
                raise ScheduleError("Outer cache for a hierarchical cache must have a greater or equal cache level "
                                    "than the inner cache's trigger_level")  # fmt: skip
    # options Accera accepts that this compiler does not implement on the cpu
    if req.layout is not None and req.layout not in LAYOUTS:
        raise ScheduleError(f"cache layout must be FIRST_MAJOR or LAST_MAJOR, got {req.layout!r}")
    if target != "gpu" and req.location not in ("none", "global"):
        raise ScheduleError(f"cache location {req.location!r} needs a GPU target; the cpu target keeps caches in "
                            "memory (location=NONE or GLOBAL)")  # fmt: skip
    if target == "gpu" and req.location == "mma_fragment":
        raise ScheduleError("MMA_FRAGMENT caches (tensor cores) are not supported yet: use SHARED or PRIVATE")
    if target == "gpu" and req.double_buffer and req.double_buffer_location not in ("private", "none"):
        raise ScheduleError("a GPU double buffer is kept in PRIVATE memory (double_buffer_location=PRIVATE)")


def multicache_of_written(array: str) -> str:
    """The message for a multicache (`trigger_index`/`trigger_level`) of an array the nest writes
    that Accera's rule 11 lets through: an INPUT array the logic writes (Accera allows the write).
    Its copies would be filled once per trigger and never see the writes, as Accera's own
    INPUT_OUTPUT rule says."""
    return (f"Multicaching is only supported for arrays the nest does not write: {array} is an INPUT array the "
            "logic writes (cache it without trigger_index or trigger_level)")


def check_not_cached_twice(req: CacheRequest, earlier) -> None:
    """One cache per array: a second one would see the first one's copies as accesses."""
    for other in earlier:
        if other.request.source == req.source:
            raise ScheduleError(f"{req.source} is already cached by {other.request.name}: to cache it at another "
                                f"level, cache {other.request.name} (a hierarchical cache)")  # fmt: skip
