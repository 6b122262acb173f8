"""`--cache`: Accera's key-slice caches on scheduled nests (oi_compiler/loopnest/caching.py).

    oi-opt nest.mlir --tile --cache --double-buffer --lower-nests

Each request in a scheduled `oi.nest`'s `oi.plan = {caches = [...]}` becomes a buffer holding
the active block of its array at its loop, the copies that fill it and write it back, and
accesses redirected to it. Requests are checked with Accera's rules and messages first.
"""

from __future__ import annotations

from dataclasses import dataclass

from xdsl.passes import ModulePass


@dataclass(frozen=True)
class Cache(ModulePass):
    """Apply key-slice caches to scheduled loop nests (oi.plan caches; after --tile)"""

    name = "cache"

    def apply(self, ctx, module) -> None:
        from oi_compiler.loopnest.caching import apply_caches
        from oi_compiler.passes.tile import for_each_nest

        for_each_nest(module, apply_caches)
