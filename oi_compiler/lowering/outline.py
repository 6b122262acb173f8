"""Repeated statement runs of the lowered step outlined into one function, called once per copy.

An unrolled graph repeats its statements: 32 decoder layers are 32 copies of the same twenty
statements, which differ only in the tables and weights they name and the error sites they
report. After `--lower-tables` those differences are constants (state-array slots, site numbers,
a weight's index), so the copies are the same ops over different constants. Every later stage
(`--lower-nests`, the translation to LLVM IR, LLVM's O2 and code generation) costs time in
proportion to the ops it sees; `outline_repeats` leaves it one copy:

1. the step's top-level ops (the hoisted constants aside) are cut into statements: a statement's
   ops are consecutive and share its location;
2. each statement gets a key: its ops, attributes and types, its own values numbered in order, a
   value of an earlier statement named by how many statements back it is, every constant by its
   type. Statements with the same key are the same code up to the constants (and values from
   before the step's statements) they use;
3. the tandem repeat of keys (a run of statements that repeats back to back, `copies` times with
   period `p`, at most `MAX_PERIOD` statements) that saves the most ops, at least `MIN_SAVED_OPS`, is outlined, unless a value a
   copy defines is used after it (then the next phase or repeat is tried). Each operand a copy
   takes from outside itself gives a column, the values each copy uses there;
4. the first copy becomes `func.func private @oi_repeat_<n>(...) -> i32 {oi.noinline}`: a column
   whose copies all use one constant stays that constant, every other column is a parameter (the
   state array, a slot, a site number), except that integer columns that move together from copy
   to copy (a layer's slots, its site numbers) share one parameter plus each column's constant
   offset; its `oi.step_exit`s return their code from it, and it
   returns 0 at its end. Each copy becomes `%r = func.call @oi_repeat_<n>(its column values)` and
   `oi.step_exit %r` when `%r != 0`, at the copy's location.

Error sites are untouched: a check in the function stores the site number its call passed, so an
error in the fifth layer names the fifth layer's statement and location as before. The rest of
the step is searched again, so a graph with several repeated runs gets a function for each.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from xdsl.dialects import arith, func, scf
from xdsl.dialects.arith import IntegerOverflowAttr, IntegerOverflowFlag
from xdsl.dialects.builtin import FunctionType, IntegerAttr, UnitAttr, i32
from xdsl.ir import Block, Operation, Region, SSAValue

from oi_compiler.backend.llvm import NOINLINE_ATTR
from oi_compiler.dialects.oi_lowered import StateViewOp, StepExitOp
from oi_compiler.ir_context import fresh_name
from oi_compiler.lowering import quick_ops

#: a repeat is outlined when the ops it removes from the step (all copies but one) are at least this
#: many: below it, the call and the function cost more compile time than they save
MIN_SAVED_OPS = 1000
#: the longest repeated run looked for, in statements (the search costs statements x this)
MAX_PERIOD = 256
REPEAT_PREFIX = "oi_repeat_"
_LABEL = "var"  # oi.state_view's label (which variable the view is of): not part of what it does


@dataclass
class _Statement:
    ops: list[Operation]
    key: tuple  # what its ops do, up to the constants and outside values they use
    hash: int  # the key's (hashing a statement's nested tuples is not free: once, here)
    size: int  # ops, nested ones included
    # each operand from outside the statement: (op number in its walk, operand number, the value,
    # how many statements back it was defined, or None for a value defined before every statement)
    outside: list[tuple[int, int, SSAValue, int | None]]


def outline_repeats(module, step: func.FuncOp) -> list[func.FuncOp]:
    """Outline the repeated statement runs of `step` (see the module docstring); the functions
    made, which are added to `module`."""
    if len(quick_ops.walk(step)) - 1 <= MIN_SAVED_OPS:  # too few ops (but the step) to save that many
        return []
    block = step.body.block
    statements = _statements(block)
    made: list[func.FuncOp] = []
    taken = {op.sym_name.data for op in module.ops if isinstance(op, func.FuncOp)}
    zero = arith.ConstantOp(IntegerAttr(0, i32))  # what the calls' results are compared with
    block.insert_op_before(zero, block.first_op)
    pending = [statements]
    while pending:
        run = pending.pop()
        found = _outline_best(run, taken, len(made), zero.result)
        if found is None:
            continue
        function, before, after = found
        made.append(function)
        module.body.block.add_op(function)
        pending += [before, after]
    for op in list(block.ops):  # constants only the copies used
        if isinstance(op, arith.ConstantOp) and not op.result.uses:
            block.erase_op(op)
    return made


def _statements(block: Block) -> list[_Statement]:
    """The block's top-level ops but its constants and terminator, cut where the location changes."""
    groups: list[list[Operation]] = []
    for op in block.ops:
        if isinstance(op, arith.ConstantOp) or op is block.last_op:
            continue
        if groups and op.location == groups[-1][-1].location:
            groups[-1].append(op)
        else:
            groups.append([op])
    where: dict[SSAValue, tuple[int, int]] = {}  # a top-level result -> (statement, its number there)
    return [_keyed(n, ops, where) for n, ops in enumerate(groups)]


def _keyed(n: int, ops: list[Operation], where: dict[SSAValue, tuple[int, int]]) -> _Statement:
    """Statement `n`: its key numbers its own values in order, and names a value of an earlier
    statement by how far back it is (so the same code one layer later has the same key)."""
    numbers: dict[SSAValue, int] = {}
    keys: list[tuple] = []
    outside: list[tuple[int, int, SSAValue, int | None]] = []
    walk = [inner for op in ops for inner in (quick_ops.walk(op) if op.regions else (op,))]
    constant = arith.ConstantOp
    for count, op in enumerate(walk):
        operands = []
        for i, value in enumerate(op.operands):
            number = numbers.get(value)
            if number is not None:
                operands.append(number)
                continue
            earlier = where.get(value)
            if earlier is not None:
                back = n - earlier[0]
                operands.append((back, earlier[1]))
            else:
                back = None
                operands.append(value.type if type(value.owner) is constant else value)
            outside.append((count, i, value, back))
        results = op.results
        regions = op.regions
        keys.append((op.name, tuple([r.type for r in results]), tuple(operands), _attributes(op),
                     tuple([len(r.blocks) for r in regions]) if regions else ()))  # fmt: skip
        for result in results:
            numbers[result] = len(numbers)
        for region in regions:
            for inner_block in region.blocks:
                for arg in inner_block.args:
                    numbers[arg] = len(numbers)
    for op in ops:
        for result in op.results:
            where[result] = (n, numbers[result])
    key = tuple(keys)
    return _Statement(ops, key, hash(key), len(walk), outside)


def _attributes(op: Operation) -> tuple:
    properties = op.properties
    if type(op) is StateViewOp:
        properties = {k: v for k, v in properties.items() if k != _LABEL}
    attributes = op.attributes
    return (*properties.items(), *attributes.items()) if attributes else tuple(properties.items())


def _periods(keys: Sequence[int], sizes: Sequence[int]) -> list[tuple[int, int, int, int]]:
    """Each maximal tandem repeat of `keys` as (saved ops at best, start, period, length), best first."""
    n = len(keys)
    found = []
    for period in range(1, min(n // 2, MAX_PERIOD) + 1):
        same = [a == b for a, b in zip(keys, keys[period:])]
        start = 0
        while start < len(same):
            if not same[start]:
                start += 1
                continue
            end = start
            while end < len(same) and same[end]:
                end += 1
            length = end - start + period  # keys[start:start + length] has this period
            if length >= 2 * period:
                saved = (length // period - 1) * sum(sizes[start:start + period])
                if saved >= MIN_SAVED_OPS:
                    found.append((saved, start, period, length))
            start = end
    found.sort(key=lambda f: (-f[0], f[1], f[2]))
    return found


def _outline_best(run: list[_Statement], taken: set[str], count: int, zero: SSAValue):
    """Outline the best repeat found in `run`: (the function, the statements before, those after),
    or None."""
    for _, start, period, length in _periods([s.hash for s in run], [s.size for s in run]):
        for phase in range(period):
            copies = (length - phase) // period
            if copies < 2:
                break
            first = start + phase
            copy_statements = [run[first + c * period:first + (c + 1) * period] for c in range(copies)]
            if any(a.key != b.key for other in copy_statements[1:] for a, b in zip(copy_statements[0], other)):
                continue  # keys of the same hash that differ
            columns = _columns(copy_statements)
            if columns is None:
                continue
            groups = [[op for s in statements for op in s.ops] for statements in copy_statements]
            name = fresh_name(f"{REPEAT_PREFIX}{count}", taken)
            signature = _signature(columns)
            function = _function(name, groups, columns, signature, zero)
            for c, group in enumerate(groups[1:], 1):
                _replace_by_call(group, name, [values[c] for values in signature.parameters], zero)
            return function, run[:first], run[first + copies * period:]
    return None


@dataclass
class _Columns:
    """Where the first copy takes a value from outside (`sites`: the (op number in the walk,
    operand number) of each such use, in walk order) and, per site, the column: the value each
    copy uses there."""

    sites: list[tuple[int, int]]
    of_site: list[int]  # site -> column number
    values: list[tuple[SSAValue, ...]]  # column -> the value in each copy


def _columns(copies: list[list[_Statement]]) -> _Columns | None:
    """The copies' columns, or None when a value a copy defines is used after it. The copies'
    statements have the same keys, so they are the same ops over the same uses of their own
    values; what differs is what each takes from outside."""
    uses = [_outside_uses(statements) for statements in copies]
    if any(u is None for u in uses):
        return None
    number: dict[tuple[SSAValue, ...], int] = {}
    of_site = [number.setdefault(column, len(number)) for column in zip(*uses)]
    sites = []
    offset = 0
    for position, statement in enumerate(copies[0]):
        sites += [(offset + n, i) for n, i, _, back in statement.outside if back is None or back > position]
        offset += statement.size
    return _Columns(sites, of_site, list(number))


def _outside_uses(statements: list[_Statement]) -> list[SSAValue] | None:
    """The values a copy takes from outside it, in walk order; None when a value it defines is
    used after it."""
    values = []
    for position, statement in enumerate(statements):
        values += [value for _, _, value, back in statement.outside if back is None or back > position]
    members = {op for statement in statements for op in statement.ops}
    block = statements[0].ops[0].parent_block()
    for statement in statements:
        for op in statement.ops:
            for result in op.results:
                for use in result.uses:
                    user = use.operation
                    while user.parent_block() is not block:
                        user = user.parent_op()
                    if user not in members:
                        return None
    return values


def _function(name: str, groups: list[list[Operation]], columns: _Columns, signature: _Signature,
              zero: SSAValue) -> func.FuncOp:  # fmt: skip
    """The first copy, moved into a function of the signature's parameters, returning 0 when it
    runs to its end (the first copy's call takes its place)."""
    body = Block(arg_types=[c[0].type for c in signature.parameters])
    constants: dict[tuple, SSAValue] = {}

    def constant(value: IntegerAttr) -> SSAValue:
        found = constants.get((value, value.type))
        if found is None:
            const = arith.ConstantOp(value)
            body.add_op(const)
            found = constants[(value, value.type)] = const.result
        return found

    value_of: list[SSAValue] = []
    for source in signature.sources:
        if source[0] == "parameter":
            value_of.append(body.args[source[1]])
        elif source[0] == "constant":
            value_of.append(constant(source[1].owner.value))
        else:
            arg = body.args[source[1]]
            new = arith.AddiOp(arg, constant(IntegerAttr(source[2], arg.type)),
                               overflow=IntegerOverflowAttr([IntegerOverflowFlag.NSW]))  # fmt: skip
            body.add_op(new)
            value_of.append(new.result)
    labels = [[inner.properties.get(_LABEL) for op in g for inner in op.walk()] for g in groups[1:]]
    group = groups[0]
    _insert_call(group[0], name, [c[0] for c in signature.parameters], zero)
    for op in group:
        op.detach()
        body.add_op(op)
    walk = [inner for op in group for inner in op.walk()]
    for (n, i), column in zip(columns.sites, columns.of_site):
        walk[n].operands[i] = value_of[column]
    for n, inner in enumerate(walk):  # a view's label stays where every copy's view names the same variable
        label = inner.properties.get(_LABEL)
        if isinstance(inner, StateViewOp) and any(other[n] != label for other in labels):
            del inner.properties[_LABEL]
    body.add_op(func.ReturnOp(constant(IntegerAttr(0, i32))))
    function = func.FuncOp(name, FunctionType.from_lists(body.arg_types, [i32]), Region(body), "private")
    function.attributes[NOINLINE_ATTR] = UnitAttr()
    return function


def _constant(value: SSAValue) -> int | None:
    owner = value.owner
    if isinstance(owner, arith.ConstantOp) and isinstance(owner.value, IntegerAttr):
        return owner.value.value.data
    return None


@dataclass
class _Signature:
    """How the function gets each column: `parameters` are the columns its calls pass; column `c`
    is `sources[c]`: ("constant", value) for one constant in every copy, ("parameter", p), or
    ("offset", p, delta), parameter `p` plus `delta` (integer constants that move together from
    copy to copy, as the slots of one layer's tables do: passed once, and LLVM still sees the
    words as distinct)."""

    parameters: list[tuple[SSAValue, ...]]
    sources: list[tuple]


def _signature(columns: _Columns) -> _Signature:
    parameters: list[tuple[SSAValue, ...]] = []
    sources: list[tuple] = []
    moves: dict[tuple, tuple[int, int]] = {}  # (type, each copy's value less the first's) -> (parameter, its first value)
    for column in columns.values:
        if all(v is column[0] for v in column) and isinstance(column[0].owner, arith.ConstantOp):
            sources.append(("constant", column[0]))
            continue
        ints = [_constant(v) for v in column]
        if None not in ints:
            key = (column[0].type, tuple(x - ints[0] for x in ints))
            found = moves.get(key)
            if found is not None:
                delta = ints[0] - found[1]
                sources.append(("offset", found[0], delta) if delta else ("parameter", found[0]))
                continue
            moves[key] = (len(parameters), ints[0])
        sources.append(("parameter", len(parameters)))
        parameters.append(column)
    return _Signature(parameters, sources)


def _insert_call(before: Operation, name: str, args: Iterable[SSAValue], zero: SSAValue) -> None:
    """`%r = func.call @name(args)` and `oi.step_exit %r` when it is not 0, before `before`, at its
    location."""
    call = func.CallOp(name, list(args), [i32])
    failed = arith.CmpiOp(call.res[0], zero, "ne")
    exit_ = scf.IfOp(failed.result, [], Region(Block([StepExitOp(call.res[0]), scf.YieldOp()])), Region())
    new = [call, failed, exit_]
    for op in new:
        for inner in op.walk():
            inner.location = before.location
    block = before.parent_block()
    assert block is not None
    block.insert_ops_before(new, before)


def _replace_by_call(group: list[Operation], name: str, args: Iterable[SSAValue], zero: SSAValue) -> None:
    """The call in place of a copy."""
    _insert_call(group[0], name, args, zero)
    block = group[0].parent_block()
    assert block is not None
    for op in reversed(group):
        block.erase_op(op)
