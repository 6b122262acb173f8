"""Bugs the fuzzing campaign found, minimised; while open, each is an `xfail(strict=True)` test.

Each test states the right behaviour (an `oi.OiError` that is not an `InternalError`, or the
reference's result); it fails today with the exception named in `raises=`. When a fix lands,
the strict xfail turns into a failure: remove the mark (the test stays as a regression test) and
the bug's entry in `_support.KNOWN` (which keeps the property tests green while the bug is open).
"""

from __future__ import annotations


import numpy as np
import pytest

import oi_compiler as oi


def _no_internal_error(call, *args, **kwargs):
    """`call(...)`'s result, or None when it raised an `OiError` that is not internal (the test's
    target behaviour); an `InternalError` propagates (what the xfail expects while the bug is open)."""
    try:
        return call(*args, **kwargs)
    except oi.InternalError:
        raise
    except oi.OiError:
        return None


# --- filter-mixed-dtypes-cpu ----------------------------------------------------------------------

FILTER = """\
dynamic { a: bool[2]; b: f32[2]; c: bool[2]; }
volatile { y: bool[2]; }
block entry { op filter(a, b, c) >> y; }
"""


def test_filter_with_value_inputs_of_two_dtypes_on_cpu() -> None:
    graph = oi.parse_graph(FILTER, "filter.oi")
    inputs = {"a": np.array([True, False]), "b": np.float32([0.0, 2.0]), "c": np.array([True, False])}
    reference = oi.Simulator(None, graph).make_executor().insert(inputs)
    reference.step()
    sim = _no_internal_error(oi.Simulator, None, graph, device="cpu")
    if sim is None:
        return  # refused with a diagnostic: fine too
    exe = sim.make_executor().insert(inputs)
    exe.step()
    assert exe.fetch("y").tolist() == reference.fetch("y").tolist() == [True, True]


# --- insert-non-mapping -------------------------------------------------------------------------


@pytest.mark.parametrize("device", ["reference", "cpu"])
@pytest.mark.parametrize("values", [[("x", np.ones(2, np.float32))], "x"], ids=["pairs", "str"])
def test_insert_of_something_not_a_mapping(device: str, values) -> None:
    sim = oi.Simulator(None, oi.parse_graph("dynamic { x: f32[2]; } block entry { return; }", "i.oi"), device=device)
    exe = sim.make_executor()
    try:
        exe.insert(values)
    except oi.InternalError:
        raise
    except oi.OiError:
        return
    pytest.fail("insert took something that is not a mapping")


# --- build-args-not-arrays ------------------------------------------------------------------------


@pytest.mark.parametrize("args", [[None], [3], "A"], ids=["None", "int", "str"])
def test_plan_build_with_args_that_are_not_arrays(args) -> None:
    A = oi.Array(role=oi.Role.INPUT_OUTPUT, shape=(4,), name="A")
    nest = oi.Nest(shape=(4,))
    i = nest.get_indices()

    @nest.iteration_logic
    def _():
        A[i] = A[i] + 1.0

    with pytest.raises(oi.ScheduleError):
        nest.create_plan().build(args=args)


# --- surrogates-cpu -------------------------------------------------------------------------------

SURROGATE = 'constant { W(l): f32[2] @pattern("w\udcae{l}"); }\nvolatile { y: f32[2]; }\nblock entry { op abs(W[0]) >> y; }\n'


def test_a_lone_surrogate_is_refused_where_the_text_is_read() -> None:
    """surrogates-cpu: text holding a lone surrogate (a str decoded with errors='surrogateescape')
    parsed and ran on the reference, while device='cpu' raised InternalError (no printer can encode
    it). parse_graph and parse_mlir refuse it at its position; a file name holding one too.
    Found by test_fuzz_oi_text.py::test_mutated_sources."""
    with pytest.raises(oi.ParseError, match=r"s.oi:1:36: error: the text holds a lone surrogate"):
        oi.parse_graph(SURROGATE, "s.oi")
    with pytest.raises(oi.ParseError, match="the file name holds a lone surrogate"):
        oi.parse_graph("block entry { }", "s\udcae.oi")
    with pytest.raises(oi.ParseError, match="lone surrogate"):
        oi.parse_mlir('"test.op"() {a = "\udcae"} : () -> ()', "s.mlir")


# --- npy-header-model, npy-header-state -----------------------------------------------------------

#: `.npy` headers numpy's reader fails on with something but a ValueError: a set holding a dict, a
#: dict keyed by a list (TypeError from ast.literal_eval), an unclosed brace (tokenize.TokenError)
BAD_NPY_HEADERS = ["{{}}", "{[]: 1}", "{'descr': '<f4', 'fortran_order': False, 'shape': (2,)"]


def _npy_member(header: str) -> bytes:
    import struct

    text = header.encode()
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(text)) + text + bytes(8)


@pytest.mark.parametrize("header", BAD_NPY_HEADERS, ids=["set-of-dict", "list-key", "unclosed"])
def test_model_open_of_an_npz_member_with_a_bad_npy_header(tmp_path, header: str) -> None:
    import zipfile

    path = tmp_path / "m.npz"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("w.npy", _npy_member(header))
    with pytest.raises(oi.ModelError):
        oi.Model.open(path)


@pytest.mark.parametrize("header", BAD_NPY_HEADERS, ids=["set-of-dict", "list-key", "unclosed"])
def test_load_state_of_a_member_with_a_bad_npy_header(tmp_path, header: str) -> None:
    import zipfile

    graph = oi.parse_graph("dynamic { x: f32[2]; } persistent { p: f32[2]; } block entry { cache.write x >> p; }", "s.oi")
    exe = oi.Simulator(None, graph).make_executor()
    exe.insert(x=np.ones(2, np.float32)).step()  # p's value is member a0
    good, bad = tmp_path / "good.oistate", tmp_path / "bad.oistate"
    exe.save_state(good)
    with zipfile.ZipFile(good) as src, zipfile.ZipFile(bad, "w") as dst:
        for info in src.infolist():
            dst.writestr(info.filename, _npy_member(header) if info.filename == "a0.npy" else src.read(info))
    try:
        exe.load_state(bad)
    except oi.StateError:  # (an InternalError is not one: it propagates)
        return
    pytest.fail("loaded")


# --- layout-dangling-table ------------------------------------------------------------------------

DANGLING = """\
builtin.module attributes {oi_table.state_layout = #oi_table.layout<words 4, block "entry", [
    #oi_table.var<@keys view volatile f32[?] slot 0, tables [@V]>]>} {
}
"""


@pytest.mark.parametrize("pass_name", ["assign-state-slots", "lower-cache"])
def test_a_view_of_a_table_the_layout_lacks(pass_name: str) -> None:
    module = oi.parse_mlir(DANGLING, "dangling.mlir")
    try:
        oi.verify_module(module)
        oi.run_passes(module, pass_name)
    except oi.InternalError:
        raise
    except oi.OiError:
        return  # refused with a diagnostic


# --- mlir-odd-int-width ---------------------------------------------------------------------------


@pytest.mark.parametrize("text", ['"test.op"() {a = array<i95: 1>} : () -> ()',
                                  "%0 = arith.constant dense<1> : tensor<2xi95>",
                                  '"test.op"() {a = dense<[1, 2]> : vector<2xi65>} : () -> ()'],
                         ids=["array", "dense-tensor", "dense-vector"])  # fmt: skip
def test_mlir_literals_of_an_odd_integer_width(text: str) -> None:
    with pytest.raises(oi.ParseError):
        oi.parse_mlir(text, "odd.mlir")


def test_mlir_odd_integer_width_in_oi_opt(tmp_path, capsys) -> None:
    from oi_compiler.tools.oi_opt import main

    path = tmp_path / "odd.mlir"
    path.write_text('"test.op"() {a = array<i95: 1>} : () -> ()\n')
    assert main([str(path)]) == 1
    assert "internal error" not in capsys.readouterr().err


# --- insert-object-raises -------------------------------------------------------------------------


class _NoArray:
    def __array__(self, dtype=None, copy=None):
        raise RuntimeError("no array for you")


class _NoInt:
    def __int__(self):
        raise ZeroDivisionError("no int")


@pytest.mark.parametrize("device", ["reference", "cpu"])
@pytest.mark.parametrize("value", [_NoArray(), _NoInt()], ids=["__array__", "__int__"])
def test_insert_of_an_object_whose_conversion_raises(device: str, value) -> None:
    sim = oi.Simulator(None, oi.parse_graph("dynamic { u: u64; } block entry { return; }", "i.oi"), device=device)
    with pytest.raises(oi.ExecutionError):
        sim.make_executor().insert(u=value)


# --- int-float-mix-cpu ----------------------------------------------------------------------------

MIXED = """\
dynamic { a: i16[2]; b: f16[2]; }
volatile { y: i16[2]; }
block entry { op add(a, b) >> y; }
"""


def test_an_integer_result_of_float_math_on_cpu() -> None:
    graph = oi.parse_graph(MIXED, "mixed.oi")  # (a VerifyError here would be right too)
    exe = oi.Simulator(None, graph).make_executor().insert(a=np.int16([1, 2]), b=np.float16([0.5, 1.5]))
    with pytest.raises(oi.ExecutionError, match="float results need an explicit rounding to become i16"):
        exe.step()
    sim = _no_internal_error(oi.Simulator, None, graph, device="cpu")
    if sim is None:
        return  # refused when compiled: fine
    cpu = sim.make_executor().insert(a=np.int16([1, 2]), b=np.float16([0.5, 1.5]))
    with pytest.raises(oi.ExecutionError, match="float results need an explicit rounding to become i16"):
        cpu.step()


@pytest.mark.parametrize(("a", "b"), [("f16", "f32"), ("i32", "f32"), ("i8", "i32"), ("u8", "i16"), ("bool", "f32"),
                                      ("f32", "i8")])  # fmt: skip
def test_filter_of_two_dtypes_matches_the_reference(a: str, b: str) -> None:
    """filter-mixed-dtypes-cpu, widened: both values through their math dtype, then the output's
    (the first input's dtype); a float result into an integer output is the reference's error."""
    graph = oi.parse_graph(f"dynamic {{ x: {a}[3]; w: {b}[3]; c: bool[3]; }} volatile {{ y: {a}[3]; }}\n"
                           "block entry { op filter(x, w, c) >> y; }", "filter.oi")  # fmt: skip
    inputs = {"x": np.array([1, 0, 1]), "w": np.array([4, 0, 6]), "c": np.array([True, False, False])}
    outcomes = []
    for device in ("reference", "cpu"):
        exe = oi.Simulator(None, graph, device=device).make_executor().insert(inputs)
        try:
            exe.step()
            y = exe.fetch("y")
            outcomes.append((str(y.dtype), y.tolist()))
        except oi.ExecutionError as e:
            outcomes.append(str(e))
    assert outcomes[0] == outcomes[1]
