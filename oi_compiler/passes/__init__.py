"""The pass registry: every pass `oi-opt`, pipelines and the xDSL plugin can run.

A pass is an xDSL `ModulePass` (a dataclass whose fields are its options). The
table below names each built-in pass without importing it, so `oi-opt --help`
stays fast; `register_pass` adds a user's pass from Python:

    from dataclasses import dataclass
    from xdsl.passes import ModulePass
    import oi_compiler as oi

    @dataclass(frozen=True)
    class CountCacheWrites(ModulePass):
        '''Print how many cache writes the graph has.'''
        name = "count-cache-writes"
        def apply(self, ctx, module): ...

    oi.register_pass(CountCacheWrites)      # now `oi.run_passes(m, "count-cache-writes")`
                                            # and `oi-opt --load-pass-plugin=file.py --count-cache-writes`
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable
from dataclasses import dataclass
from importlib import import_module

from oi_compiler.errors import PassError, exception_summary


@dataclass(frozen=True)
class PassInfo:
    name: str
    summary: str
    load: Callable[[], type]
    options: tuple[tuple[str, str], ...] = ()  # (option, "type = default")


def _lazy(module: str, cls: str) -> Callable[[], type]:
    return lambda: getattr(import_module(module), cls)


_PASSES: dict[str, PassInfo] = {
    p.name: p
    for p in (
        PassInfo(
            "canonicalize",
            "Fold and simplify ops, erase ops without effects (never a cache write)",
            _lazy("xdsl.transforms.canonicalize", "CanonicalizePass"),
        ),
        PassInfo(
            "cse",
            "Merge identical side-effect-free ops",
            _lazy("xdsl.transforms.common_subexpression_elimination", "CommonSubexpressionElimination"),
        ),
        PassInfo(
            "bind-sizes",
            "Replace size variables by their values (options: NAME=N ..., model=PATH)",
            _lazy("oi_compiler.passes.bind_sizes", "BindSizes"),
            (("NAME", "int (any number of sizes)"), ("model", "str = '' (a .oinf/.npz whose sizes to use)")),
        ),
        PassInfo(
            "lower-ops",
            "Lower each graph op to an oi.kernel holding its loop nest (needs bound sizes)",
            _lazy("oi_compiler.passes.lower_ops", "LowerOps"),
            (("device", "str = 'cpu' ('cuda': each kernel says which op it is, for --launch-op-kernels)"),),
        ),
        PassInfo(
            "lower-cache",
            "Lower the graph's variables, tables, cache ops and loops to one step function",
            _lazy("oi_compiler.passes.lower_cache", "LowerCache"),
        ),
        PassInfo(
            "convert-graph-to-tables",
            "Convert the graph to the table level: one step function over named state words, checks with error sites, undo-log entries",
            _lazy("oi_compiler.passes.convert_graph_to_tables", "ConvertGraphToTables"),
        ),
        PassInfo(
            "lower-table-storage",
            "Lower the table level's entry ops (write, read, view, reset) for each table's storage (dense)",
            _lazy("oi_compiler.passes.lower_table_storage", "LowerTableStorage"),
        ),
        PassInfo(
            "assign-state-slots",
            "Place each variable's words in the state array (the module's oi_table.state_layout)",
            _lazy("oi_compiler.passes.assign_state_slots", "AssignStateSlots"),
        ),
        PassInfo(
            "lower-undo-log",
            "Lower the undo log: each oi_table.journal a call of the @oi_log helper (after --assign-state-slots)",
            _lazy("oi_compiler.passes.lower_undo_log", "LowerUndoLog"),
        ),
        PassInfo(
            "place-buffers",
            "Keep in device memory the data the host step only hands to kernels and copies (device=cuda, before --lower-tables); hand the step's copies to the host",
            _lazy("oi_compiler.passes.place_buffers", "PlaceBuffers"),
        ),
        PassInfo(
            "lower-tables",
            "Lower the table level (named words, buffers, checks, growth) to loads and stores of the state array",
            _lazy("oi_compiler.passes.lower_tables", "LowerTables"),
        ),
        PassInfo(
            "launch-op-kernels",
            "Replace each GPU op kernel's nest in the step (--lower-ops=device=cuda) by a call of the host that launches the op's kernels",
            _lazy("oi_compiler.passes.launch_op_kernels", "LaunchOpKernels"),
        ),
        PassInfo(
            "lower-nests",
            "Lower loop nests (linalg; scheduled oi.nest, unrolling its marked loops) to scf.for loops over memref loads and stores",
            _lazy("oi_compiler.passes.lower_nests", "LowerNests"),
        ),
        PassInfo(
            "map-gpu",
            "Map GPU plans' loop nests to kernels: bound loops to block/thread ids, shared and private caches, barriers",
            _lazy("oi_compiler.passes.map_gpu", "MapGpu"),
        ),
        PassInfo(
            "tile",
            "Schedule oi.nest loop nests; tile linalg nests (sizes=32,32,64, or each nest's oi.schedule tile sizes)",
            _lazy("oi_compiler.passes.tile", "Tile"),
            (("sizes", "tuple[int, ...] = () (one per loop; 0 keeps a loop whole)"),),
        ),
        PassInfo(
            "cache",
            "Apply key-slice caches to scheduled loop nests (oi.plan caches; after --tile)",
            _lazy("oi_compiler.passes.cache", "Cache"),
        ),
        PassInfo(
            "double-buffer",
            "Double-buffer the caches marked by --cache (oi.double_buffer fills)",
            _lazy("oi_compiler.passes.double_buffer", "DoubleBuffer"),
        ),
        PassInfo(
            "gpu-emulate",
            "Rewrite gpu.module kernels into CPU functions looping over grid and block, barriers splitting phases",
            _lazy("oi_compiler.passes.gpu_emulate", "GpuEmulate"),
        ),
        PassInfo(
            "dce",
            "Erase ops whose results are unused and that have no effects",
            _lazy("xdsl.transforms.dead_code_elimination", "DeadCodeElimination"),
        ),
    )
}


def register_pass(pass_cls: type, *, replace: bool = False) -> type:
    """Make a `ModulePass` subclass runnable by name (usable as a class decorator)."""
    name = getattr(pass_cls, "name", None)
    if not isinstance(name, str) or not name:
        raise PassError(f"pass class {pass_cls.__name__} needs a `name`")
    if name in _PASSES and not replace and _definition_site(_PASSES[name].load()) != _definition_site(pass_cls):
        raise PassError(f"pass {name} is already registered")
    doc = (pass_cls.__doc__ or "").strip().splitlines()
    _PASSES[name] = PassInfo(name, doc[0] if doc else "", lambda: pass_cls, _options_of(pass_cls))
    return pass_cls


def _definition_site(pass_cls: type) -> tuple[str, str | None]:
    """Where a pass class is written, so loading the same file twice re-registers, not clashes."""
    apply = getattr(pass_cls, "apply", None)
    code = getattr(apply, "__code__", None)
    return pass_cls.__qualname__, code.co_filename if code is not None else None


def _options_of(pass_cls: type) -> tuple[tuple[str, str], ...]:
    if not dataclasses.is_dataclass(pass_cls):
        return ()
    options = []
    for f in dataclasses.fields(pass_cls):
        type_name = f.type if isinstance(f.type, str) else getattr(f.type, "__name__", str(f.type))
        default = "" if f.default is dataclasses.MISSING else f" = {f.default}"
        options.append((f.name, f"{type_name}{default}"))
    return tuple(options)


def registered_passes() -> dict[str, PassInfo]:
    """Every runnable pass by name, sorted."""
    return dict(sorted(_PASSES.items()))


def pass_factories() -> dict[str, Callable[[], type]]:
    """Name -> pass class loader, the form xDSL's pipeline parser takes."""
    return {name: info.load for name, info in _PASSES.items()}


# an option value as written, up to the next space, comma or brace; and the values xDSL's
# pipeline lexer reads bare (a number or an identifier: `16`, `-1.5`, `true`, `2d-slice`)
_BARE_VALUE = re.compile(r'[^\s,{}"=\[\]]+')
_LEXED_VALUE = re.compile(r"[-+]?[0-9]+(\.[0-9]*([eE][-+]?[0-9]+)?)?|[A-Za-z0-9_-]+")
_STRING = re.compile(r'"(\\.|[^"\\\n])*"')


def quote_bare_values(pipeline: str) -> tuple[str, list[int]]:
    """`pipeline` with each unquoted option value that xDSL's lexer cannot read bare (a path:
    `bind-sizes{model=examples/m.oinf}`) put in quotes, so `--bind-sizes=model=m.oinf` needs no
    shell quoting; and the positions, in the result, of the quotes added. Values that lex
    already (numbers, identifiers, quoted strings) are left alone; a value cannot hold a space,
    a comma, a brace or `=` unquoted."""
    out: list[str] = []
    added: list[int] = []
    depth, value_next, i = 0, False, 0
    while i < len(pipeline):
        c = pipeline[i]
        if c == '"':
            m = _STRING.match(pipeline, i)
            j = m.end() if m else len(pipeline)
            out.append(pipeline[i:j])
            i, value_next = j, False
            continue
        if depth and value_next and (m := _BARE_VALUE.match(pipeline, i)):
            text = m.group()
            if not _LEXED_VALUE.fullmatch(text):
                at = sum(map(len, out))
                added += [at, at + len(text) + text.count("\\") + 1]
                text = '"' + text.replace("\\", "\\\\") + '"'
            out.append(text)
            i, value_next = m.end(), False
            continue
        depth += (c == "{") - (c == "}" and depth > 0)
        value_next = bool(depth) and c in "=,"
        out.append(c)
        i += 1
    return "".join(out), added


def parse_pipeline(pipeline: str, *, callback=None):
    """An xDSL `PassPipeline` from text (`"canonicalize,cse"`, options as `tile{sizes=32,32}`);
    an option value that is a path needs no quotes (`bind-sizes{model=m.oinf}`: `quote_bare_values`)."""
    from xdsl.passes import PassPipeline
    from xdsl.utils.exceptions import ArgSpecParseError

    spec, added = quote_bare_values(pipeline)
    try:
        return PassPipeline.parse_spec(pass_factories(), spec, callback)
    # xDSL reports unknown passes and options with ValueError or its own errors, and a
    # malformed spec with ArgSpecParseError, which is a BaseException
    except (Exception, ArgSpecParseError) as e:
        column = next((line.rsplit(":", 1)[1] for line in str(e).splitlines() if line.startswith("pass-pipeline:")), None)
        if column is not None and column.isdigit():  # a column of `spec`, 1-based: back to `pipeline`'s
            column = str(int(column) - sum(1 for at in added if at < int(column) - 1))
        where = f" at column {column}" if column else ""
        reason = e.message if isinstance(e, PassError) else exception_summary(e)
        raise PassError(f"invalid pass pipeline '{pipeline}'{where}: {reason}") from None


def run_passes(module, pipeline: str, ctx=None, *, callback=None, verify_each: bool = True) -> None:
    """Run a pass pipeline on a module, in place; an exception outside `OiError` that escapes a
    pass is an `InternalError` naming that pass (`oi_compiler.boundary`), and IR a pass leaves
    invalid is a `PassError` naming the pass and the op (`verify_each`, as mlir-opt does; when
    the input itself does not verify, no pass is blamed)."""
    from oi_compiler.boundary import stage
    from oi_compiler.gc_pause import paused_collection
    from oi_compiler.ir_context import make_context

    # a pass is blamed only for IR it broke: an input that does not verify is not checked again
    verify_each = verify_each and _verifies(module)

    def check(previous, module, next_pass) -> None:
        if callback is not None:
            callback(previous, module, next_pass)
        if verify_each and previous is not None:
            verify_after_pass(module, previous.name)

    passes = parse_pipeline(pipeline, callback=tracking_stage(boundary := stage("passes"), check))
    with boundary, paused_collection():
        passes.apply(ctx or make_context(), module)


def _verifies(module) -> bool:
    from oi_compiler.errors import VerifyError
    from oi_compiler.graph import verify_module

    try:
        verify_module(module)
    except VerifyError:
        return False
    return True


def verify_after_pass(module, pass_name: str) -> None:
    """The module's structural and graph rules after pass `pass_name`: a violation is the pass's
    fault, reported at the op it broke (`'func.return' op ... (IR left invalid by --name)`)."""
    from oi_compiler.errors import VerifyError
    from oi_compiler.graph import verify_module

    try:
        verify_module(module)
    except VerifyError as e:
        raise PassError(f"{e.message} (IR left invalid by --{pass_name})", e.loc, subject=e.subject) from None


def tracking_stage(boundary, callback=None):
    """A `PassPipeline` callback that names `boundary`'s stage after the pass about to run."""

    def track(previous, module, next_pass) -> None:
        if callback is not None:
            callback(previous, module, next_pass)
        if next_pass is not None:
            boundary.name = next_pass.name

    return track
