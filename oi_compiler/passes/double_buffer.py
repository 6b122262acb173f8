"""`--double-buffer`: double-buffer the caches `--cache` marked (oi_compiler/loopnest/double_buffer.py).

The loop around a double-buffered cache's trigger loop fills the first block before it
starts, prefetches the next block into a temporary buffer during each iteration but the last,
copies it into the cache at the iteration's end, and runs its last iteration peeled, without
a prefetch. With no loop around the trigger loop the cache stays single-buffered (a warning).
"""

from __future__ import annotations

from dataclasses import dataclass

from xdsl.passes import ModulePass


@dataclass(frozen=True)
class DoubleBuffer(ModulePass):
    """Double-buffer the caches marked by --cache (oi.double_buffer fills)"""

    name = "double-buffer"

    def apply(self, ctx, module) -> None:
        from oi_compiler.loopnest.double_buffer import double_buffer
        from oi_compiler.passes.tile import for_each_nest

        for_each_nest(module, double_buffer)
