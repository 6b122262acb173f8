"""Trace events: one per executed node, numbered and worded as upstream OpenInfer's.

Upstream numbers a graph's nodes in the order its builder creates them: blocks in
source order, each statement in order, and a loop's body before the loop node
itself (the body is built first). `node_numbers` reproduces that numbering.

`Simulator.with_trace()` keeps the events (`exe.trace()` returns them as plain
dicts); `OI_TRACE=full` or `OPENINFER_TRACE=full` in the environment prints each
one to stderr as it happens, in upstream's line format:
`{index} {uuid} [{block}] -- {description} -- ({ms}ms {us}us {ns}ns)`.
"""

from __future__ import annotations

import os
import sys
import uuid
from dataclasses import dataclass

from oi_compiler.dialects.oi import (
    AssignOp,
    AwaitOp,
    BarrierOp,
    BranchOp,
    CacheAppendOp,
    CacheDecrementOp,
    CacheForkOp,
    CacheLoadOp,
    CachePopOp,
    CacheIncrementOp,
    CacheReadOp,
    CacheResetOp,
    CacheResetWhereOp,
    CacheSaveOp,
    CacheWriteOp,
    DepOp,
    GraphOp,
    LoopOp,
    NamedOp,
    ReturnOp,
    TransferOp,
    YieldOp,
)

#: upstream's `TraceEventKind` for each statement
EVENT_KINDS = {
    AssignOp: "Assign",
    NamedOp: "OpExecute",
    CacheReadOp: "CacheRead",
    CacheWriteOp: "CacheWrite",
    CacheAppendOp: "CacheAppend",
    CacheSaveOp: "CacheSave",
    CacheLoadOp: "CacheLoad",
    CacheForkOp: "CacheFork",
    CachePopOp: "CachePop",
    CacheResetWhereOp: "CacheReset",
    CacheIncrementOp: "CacheIncrement",
    CacheDecrementOp: "CacheDecrement",
    CacheResetOp: "CacheReset",
    BarrierOp: "Barrier",
    DepOp: "Dep",
    TransferOp: "Transfer",
    YieldOp: "Yield",
    AwaitOp: "Await",
    BranchOp: "Branch",
    LoopOp: "Loop",
    ReturnOp: "Return",
}


@dataclass(frozen=True)
class TraceEvent:
    """One executed node."""

    block_name: str
    node_index: int
    node_uuid: str
    kind: str
    node_desc: str
    op_name: str  # "" for nodes other than ops, as upstream serialises it
    nanos: int  # wall time of the node; 0 unless the simulator has a timer

    @property
    def micros(self) -> tuple[int, int, int]:
        """Upstream's `[ms, us, ns]` split of the node's time."""
        return (self.nanos // 1_000_000, self.nanos // 1_000 % 1_000, self.nanos % 1_000)

    def as_dict(self) -> dict:
        """The event as upstream serialises it (`params`/`output` are always empty there)."""
        return {
            "block_name": self.block_name,
            "node_index": self.node_index,
            "node_uuid": self.node_uuid,
            "kind": self.kind,
            "node_desc": self.node_desc,
            "op_name": self.op_name,
            "params": [],
            "output": [],
            "micros": list(self.micros),
        }

    def line(self) -> str:
        ms, us, ns = self.micros
        return f"{self.node_index} {self.node_uuid} [{self.block_name}] -- {self.node_desc} -- ({ms}ms {us}us {ns}ns)"


def node_numbers(graph: GraphOp) -> dict[int, tuple[int, str]]:
    """Each statement's (upstream node index, stable uuid), keyed by `id(op)`."""
    numbers: dict[int, tuple[int, str]] = {}
    namespace = uuid.uuid5(uuid.NAMESPACE_URL, f"oi-graph:{graph.sym_name.data}")

    def number(ops) -> None:
        for op in ops:
            if isinstance(op, LoopOp):
                number(op.body.block.ops)
            index = len(numbers)
            numbers[id(op)] = (index, str(uuid.uuid5(namespace, str(index))))

    for block in graph.blocks:
        number(block.body.block.ops)
    return numbers


def env_prints_trace() -> bool:
    """Whether `OI_TRACE` or `OPENINFER_TRACE` asks for every node to be printed."""
    return any(os.environ.get(v, "").strip().lower() == "full" for v in ("OI_TRACE", "OPENINFER_TRACE"))


def print_event(event: TraceEvent) -> None:
    print(event.line(), file=sys.stderr, flush=True)
