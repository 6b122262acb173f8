"""A pass that breaks the IR or raises is named in the diagnostic, with the op it broke (issue #15
item 16), from the Python API (`run_passes`) and from `oi-opt`."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import oi_compiler as oi
from oi_compiler.graph import parse_mlir
from oi_compiler.passes import run_passes

PLUGIN = textwrap.dedent('''
    from dataclasses import dataclass
    from xdsl.dialects import arith, func
    from xdsl.dialects.builtin import IntegerAttr, i32
    from xdsl.passes import ModulePass
    import oi_compiler as oi

    @oi.register_pass
    @dataclass(frozen=True)
    class ReturnAValue(ModulePass):
        """Make every function return an i32 it does not declare"""
        name = "return-a-value-test"

        def apply(self, ctx, module):
            for f in [op for op in module.walk() if isinstance(op, func.FuncOp)]:
                value = arith.ConstantOp(IntegerAttr(1, i32))
                f.body.block.insert_op_before(value, f.body.block.last_op)
                f.body.block.last_op.detach()
                f.body.block.add_op(func.ReturnOp(value.result))

    @oi.register_pass
    @dataclass(frozen=True)
    class Crash(ModulePass):
        """Raise a KeyError"""
        name = "crash-test"

        def apply(self, ctx, module):
            {}["missing"]
''')


@pytest.fixture(scope="module")
def plugin(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("plugin") / "passes.py"
    path.write_text(PLUGIN)
    exec(compile(PLUGIN, str(path), "exec"), {})  # registers them in this process too
    return path


MODULE = "func.func @f() {\n  func.return\n}\n"


def test_invalid_ir_after_a_pass_names_the_pass_and_the_op(plugin) -> None:
    module = parse_mlir(MODULE, "in.mlir")
    with pytest.raises(oi.PassError) as info:
        run_passes(module, "return-a-value-test,canonicalize")
    text = str(info.value)
    assert text.startswith("in.mlir:1:1: error: 'func.return' op Expected arguments to have the same types")
    assert text.endswith("(IR left invalid by --return-a-value-test)")


def test_verify_each_can_be_turned_off(plugin) -> None:
    module = parse_mlir(MODULE, "in.mlir")
    run_passes(module, "return-a-value-test", verify_each=False)


def test_a_pass_that_raises_is_an_internal_error_naming_it(plugin) -> None:
    with pytest.raises(oi.InternalError, match=r"internal error: crash-test: KeyError: 'missing'"):
        run_passes(parse_mlir(MODULE, "in.mlir"), "crash-test")


@pytest.mark.parametrize(("flag", "code", "message"), [
    ("--return-a-value-test", 1, "in.mlir:1:1: error: 'func.return' op Expected arguments to have the same types "
                                 "as the function output types: expected [], got [i32] (IR left invalid by "
                                 "--return-a-value-test)"),
    ("--crash-test", 3, "internal error: crash-test: KeyError: 'missing'"),
])  # fmt: skip
def test_oi_opt_names_the_pass(plugin, tmp_path, flag, code, message) -> None:
    source = tmp_path / "in.mlir"
    source.write_text(MODULE)
    done = subprocess.run([sys.executable, "-m", "oi_compiler.tools.oi_opt", "in.mlir", "--load-pass-plugin",
                           str(plugin), flag], capture_output=True, text=True, cwd=tmp_path, timeout=120)  # fmt: skip
    assert done.returncode == code
    assert message in done.stderr
    assert "Traceback" not in done.stderr
