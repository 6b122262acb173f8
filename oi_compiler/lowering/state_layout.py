"""`StateLayout`: the state array of a compiled step, as the host reads it.

`--lower-cache` writes it on the module as `#oi_table.layout<...>` (`dialects/oi_table.py`);
`StateLayout.from_attr` reads it back, and the runtime (`runtime/native.py`) allocates, grows,
rolls back and reads variables by it. The step cache keeps it as JSON (`to_json`), so a cache hit
parses no IR.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from xdsl.dialects.builtin import ArrayAttr, IntAttr, StringAttr

from oi_compiler.dialects.oi_table import STATE, StateLayoutAttr, VarLayoutAttr, init_attr, init_value
from oi_compiler.errors import PassError
from oi_compiler.lowering.analysis import HEADER_WORDS, StepAnalysis, VarLayout, extra_error_args, var_words


#: the header's words, by number (`lowering/analysis.py`: ERROR_SITE ... DEVICE_LOG_USED)
HEADER = ("error_site", "error_arg.0", "error_arg.1", "error_arg.2", "error_arg.3", "handle", "log_records",
          "log_records_cap", "log_count", "log_bytes", "log_bytes_cap", "log_used", "step_stamp", "device_log",
          "device_log_cap", "device_log_used")  # fmt: skip


@dataclass
class StateLayout:
    """Each variable's kind and words (`VarLayout`), the array's length, the entry block, and the
    step's own words after the variables' (`extra`: `yield` bookkeeping, error arguments past four)."""

    vars: dict[str, VarLayout]
    words: int
    block: str
    extra: tuple[str, ...] = ()

    @classmethod
    def of(cls, plan: StepAnalysis) -> StateLayout:
        return cls(dict(plan.vars), plan.words, plan.entry.block_name, step_words(plan))

    def assign_slots(self) -> None:
        """Each variable's words after the header's, one variable after another; then `extra`."""
        words = len(HEADER)
        for var in self.vars.values():
            var.slot = words
            words += len(var_words(var, self.vars))
        self.words = words + len(self.extra)

    def word_slot(self, var: str, field: str) -> int:
        """The number of a named word (`oi_table.word @K "size.0"`)."""
        if var == STATE:
            if field in HEADER:
                return HEADER.index(field)
            if field in self.extra:
                return self.words - len(self.extra) + self.extra.index(field)
        elif var in self.vars:
            plan = self.vars[var]
            names = var_words(plan, self.vars)
            if field in names and plan.slot >= 0:
                return plan.slot + names.index(field)
        raise PassError(f"no state word {field!r} of {var} in the state layout")

    def word_names(self) -> dict[int, tuple[str, str]]:
        """Every word by number: (variable, field), `oi.state` for the step's own."""
        names = {n: (STATE, field) for n, field in enumerate(HEADER)}
        for var in self.vars.values():
            for n, field in enumerate(var_words(var, self.vars)):
                names[var.slot + n] = (var.name, field)
        for n, field in enumerate(self.extra):
            names[self.words - len(self.extra) + n] = (STATE, field)
        return names

    def size_words(self) -> list[int]:
        """Words that are persistent state (table sizes, @auto_dim counts): restored after a failed step."""
        words = [v.size_slot(d) for v in self.vars.values() if v.kind == "table" for d in range(v.rank)]
        return words + [v.count_base + d for v in self.vars.values() if v.kind == "auto" for d in range(v.rank)]

    # --- in the IR -------------------------------------------------------------------------
    def to_attr(self) -> StateLayoutAttr:
        return StateLayoutAttr(IntAttr(self.words), StringAttr(self.block),
                               ArrayAttr([_var_attr(v) for v in self.vars.values()]),
                               ArrayAttr([StringAttr(e) for e in self.extra]))  # fmt: skip

    @classmethod
    def from_attr(cls, attr: StateLayoutAttr) -> StateLayout:
        plans = [_var_plan(v) for v in attr.vars]
        return cls({p.name: p for p in plans}, attr.words.data, attr.block.data, tuple(e.data for e in attr.extra))

    # --- in the step cache -----------------------------------------------------------------
    def to_json(self) -> dict:
        return {"words": self.words, "block": self.block, "extra": list(self.extra),
                "vars": [dataclasses.asdict(v) for v in self.vars.values()]}  # fmt: skip

    @classmethod
    def from_json(cls, data: dict) -> StateLayout:
        plans = {}
        for v in data["vars"]:
            v = {k: tuple(x) if isinstance(x, list) else x for k, x in v.items()}
            plans[v["name"]] = VarLayout(**v)
        return cls(plans, data["words"], data["block"], tuple(data.get("extra", ())))


_FIELDS = ("name", "memory", "dtype", "shape", "kind", "slot", "indices", "fixed", "init", "tables", "temp", "aliases",
           "page", "pool", "device")  # fmt: skip


def _var_attr(v: VarLayout) -> VarLayoutAttr:
    missing = {f.name for f in dataclasses.fields(v)} - set(_FIELDS)
    assert not missing, f"VarLayoutAttr does not carry VarLayout fields {missing}"
    return VarLayoutAttr(
        StringAttr(v.name), StringAttr(v.kind), StringAttr(v.memory), StringAttr(v.dtype),
        ArrayAttr([IntAttr(-1 if d is None else d) for d in v.shape]), IntAttr(v.slot),
        ArrayAttr([StringAttr(i) for i in v.indices]), ArrayAttr([IntAttr(-1 if f is None else f) for f in v.fixed]),
        init_attr(v.init), ArrayAttr([StringAttr(t) for t in v.tables]), IntAttr(int(v.temp)),
        ArrayAttr([StringAttr(a) for a in v.aliases]),
        StringAttr(("paged" if v.page else "dense") if v.kind == "table" else ""), IntAttr(v.page), IntAttr(v.pool),
        IntAttr(int(v.device)),
    )  # fmt: skip


def _var_plan(a: VarLayoutAttr) -> VarLayout:
    return VarLayout(
        a.var.data, a.memory.data, a.dtype.data, tuple(None if d.data < 0 else d.data for d in a.shape), a.kind.data,
        slot=a.slot.data, indices=tuple(i.data for i in a.indices),
        fixed=tuple(None if f.data < 0 else f.data for f in a.fixed), init=init_value(a.init),
        tables=tuple(t.data for t in a.tables), temp=bool(a.temp.data), aliases=tuple(t.data for t in a.aliases),
        page=a.page.data, pool=a.pool.data, device=bool(a.device.data),
    )  # fmt: skip


def step_words(plan: StepAnalysis) -> tuple[str, ...]:
    """The step's own words after the variables', in order: `yield` bookkeeping (`pending`,
    `ended`, `written.<block>.<name>`), each saved field's `saved.<field>`, then error arguments past the header's four."""
    control = sorted(plan.control.items(), key=lambda item: item[1])
    names = [key if isinstance(key, str) else ".".join(key) for key, _ in control]
    return (*names, *(f"error_arg.{4 + n}" for n in range(extra_error_args(plan.vars.values()))))


assert len(HEADER) == HEADER_WORDS
