"""Property: any grammatical graph survives DSL -> IR -> text -> IR unchanged (custom and generic form)."""

from __future__ import annotations

import io

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from xdsl.printer import Printer

from oi_compiler.dtypes import DTYPE_NAMES, FLOAT_DTYPES
from oi_compiler.frontend.oi_dsl import parse_module
from oi_compiler.graph import parse_mlir

KEYWORDS = {
    "dynamic", "volatile", "constant", "persistent", "block", "assign", "op", "branch", "barrier", "dep",
    "after", "before", "transfer", "cache", "loop", "in", "yield", "await", "return", "true", "false",
    "inf", "graph", "to", "nan", *DTYPE_NAMES,
}
names = st.from_regex(r"[a-z][a-z0-9_]{0,6}", fullmatch=True).filter(lambda s: s not in KEYWORDS)
ints = st.integers(min_value=0, max_value=4096)
values = st.one_of(ints.map(str), names)
dims = st.lists(st.one_of(values, st.tuples(values, values).map(lambda p: f"{p[0]}*{p[1]}")), max_size=3)


@st.composite
def types(draw) -> tuple[str, str]:
    dtype = draw(st.sampled_from(DTYPE_NAMES))
    ds = draw(dims)
    return dtype, (f"{dtype}[{', '.join(ds)}]" if ds or draw(st.booleans()) else dtype)


@st.composite
def var_decls(draw) -> str:
    name = draw(names)
    indices = draw(st.lists(names, max_size=3, unique=True))
    dtype, type_text = draw(types())
    text = f"{name}({', '.join(indices)})" if indices else name
    attrs = []
    if draw(st.booleans()):
        if dtype in FLOAT_DTYPES:
            attrs.append(f"@init({draw(st.floats(-1e6, 1e6, allow_nan=False, width=32))!r})")
        elif dtype == "bool":
            attrs.append(f"@init({draw(st.sampled_from(['true', 'false', '0', '1']))})")
        else:
            attrs.append(f"@init({draw(st.integers(0, 7))})")
    if draw(st.booleans()):
        attrs.append(f'@ref("{draw(names)}.0")')
    if indices and draw(st.booleans()):
        attrs.append("@table")
    if indices and draw(st.booleans()):
        attrs.append(f"@auto_dim({', '.join(draw(st.lists(st.sampled_from(indices), min_size=1, unique=True)))})")
    if indices and draw(st.booleans()):
        attrs.append(f"@fixed({', '.join(f'{i}={draw(ints)}' for i in indices)})")
    return f"{text}: {type_text} {' '.join(attrs)};"


def var_ref(draw) -> str:
    name = draw(names)
    idx = draw(st.lists(values, max_size=3))
    return f"{name}[{', '.join(idx)}]" if idx else name


@st.composite
def cache_accesses(draw) -> str:
    name = draw(names)
    form = draw(st.sampled_from(["bare", "empty", "indexed"]))
    if form == "bare":
        return name
    if form == "empty":
        return f"{name}[]"
    slot = st.one_of(
        values,
        st.tuples(st.none() | values, st.none() | values | st.integers(-9, -1).map(str)).map(
            lambda p: f"{p[0] or ''}..{p[1] or ''}"
        ),
    )
    return f"{name}[{', '.join(draw(st.lists(slot, min_size=1, max_size=4)))}]"


setting_values = st.one_of(
    st.floats(-1e9, 1e9, allow_nan=False).map(repr),
    st.integers(-(2**40), 2**40).map(str),
    st.sampled_from(["true", "false", "inf", '"relu"', '"a \\"q\\""']),
    names,
    st.lists(st.integers(-8, 8), max_size=4).map(lambda xs: f"[{', '.join(map(str, xs))}]"),
)


@st.composite
def statements(draw, depth: int = 0) -> str:
    kinds = ["assign", "op", "read", "write", "inc", "dec", "reset", "branch", "barrier", "dep", "transfer",
             "yield", "await", "return"] + (["loop"] if depth < 2 else [])
    kind = draw(st.sampled_from(kinds))
    if kind == "assign":
        return f"assign {draw(names)}: {draw(types())[1]};"
    if kind == "op":
        args = [var_ref(draw) for _ in range(draw(st.integers(0, 3)))]
        keys = draw(st.lists(names.filter(lambda n: n not in ("to", "acc")), max_size=3, unique=True))
        args += [f"{k}={draw(setting_values)}" for k in keys]
        if draw(st.booleans()):
            args.append(f"to={draw(st.sampled_from(DTYPE_NAMES))}")
        if draw(st.booleans()):
            args.append(f"acc=[{', '.join(draw(st.lists(st.sampled_from(DTYPE_NAMES), min_size=1, max_size=3)))}]")
        return f"op {draw(names)}({', '.join(args)}) >> {draw(names)};"
    if kind == "read":
        return f"cache.read {draw(cache_accesses())} >> {var_ref(draw)};"
    if kind == "write":
        return f"cache.write {var_ref(draw)} >> {draw(cache_accesses())};"
    if kind in ("inc", "dec"):
        amount = draw(st.sampled_from(["", "1 ", "2 ", "17 "]))
        return f"cache.{'increment' if kind == 'inc' else 'decrement'} {amount}{draw(names)};"
    if kind == "reset":
        return f"cache.reset {draw(cache_accesses())};"
    if kind == "branch":
        return f"branch {' '.join(draw(names) for _ in range(draw(st.sampled_from([1, 3]))))};"
    if kind == "dep":
        return f"dep after({draw(names)}) before({draw(names)});"
    if kind == "transfer":
        return f"transfer {var_ref(draw)} >> {var_ref(draw)};"
    if kind in ("yield", "await"):
        return f"{kind} {', '.join(draw(st.lists(names, min_size=1, max_size=3)))};"
    if kind == "loop":
        body = " ".join(draw(st.lists(statements(depth + 1), max_size=3)))
        return f"loop {draw(names)} ({draw(names)} in {draw(values)}..{draw(values)}) {{ {body} }}"
    return f"{kind};"


@st.composite
def graphs(draw) -> str:
    sections = []
    for _ in range(draw(st.integers(0, 4))):
        kind = draw(st.sampled_from(["dynamic", "volatile", "constant", "persistent"]))
        sections.append(f"{kind} {{ {' '.join(draw(st.lists(var_decls(), max_size=4)))} }}")
    for _ in range(draw(st.integers(0, 3))):
        sections.append(f"block {draw(names)} {{ {' '.join(draw(st.lists(statements(), max_size=6)))} }}")
    draw(st.randoms()).shuffle(sections)
    body = "\n".join(sections)
    return f"graph! {{\n{body}\n}}" if draw(st.booleans()) else body


def _generic(module) -> str:
    buf = io.StringIO()
    Printer(stream=buf, print_generic_format=True).print_op(module)
    return buf.getvalue()


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(graphs())
def test_dsl_print_parse_round_trip(text: str):
    module = parse_module(text, "random.oi")
    printed = str(module)
    again = parse_mlir(printed, "printed.mlir")
    assert str(again) == printed
    assert again.is_structurally_equivalent(module)
    generic = _generic(module)
    from_generic = parse_mlir(generic, "generic.mlir")
    assert str(from_generic) == printed
    assert _generic(from_generic) == generic
