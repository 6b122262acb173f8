"""The xDSL plugin entry point: `xdsl-opt` sees the `oi` and `oi_table` dialects and oi_compiler's
passes, and reads `.oi` files.

xDSL's `Universe` registers dialects, passes and targets but no input format, so the `.oi` reader
is added to `xdsl-opt` itself when `xdsl-opt` loads this plugin (it loads plugins before it
registers its readers): `xdsl-opt g.oi --lower-ops` parses and verifies the DSL as `oi-opt`
does, and bad input is one `file:line:col: error: message` line on stderr and exit status 1, not a
traceback. Nothing changes for a program that imports this module without running `xdsl-opt`.
"""

import sys

from xdsl.universe import Universe


def _oi_dialect():
    from oi_compiler.dialects.oi import OI

    return OI


def _oi_table_dialect():
    from oi_compiler.dialects.oi_table import OI_TABLE

    return OI_TABLE


def _own_passes() -> dict:
    from oi_compiler.passes import registered_passes

    xdsl_names = {"canonicalize", "cse", "dce"}  # xDSL registers these itself
    return {name: info.load for name, info in registered_passes().items() if name not in xdsl_names}


def parse_oi_input(stream, filename: str):
    """`xdsl-opt`'s reader for `.oi` files: the verified module, or (for bad input) the one-line
    diagnostic on stderr and `SystemExit(1)`, as `oi-opt` reports it."""
    from oi_compiler.boundary import stage
    from oi_compiler.errors import OiError
    from oi_compiler.frontend.oi_dsl import parse_module
    from oi_compiler.graph import verify_module

    try:
        try:
            text = stream.read().decode()
        except UnicodeDecodeError:
            raise OiError("input is not UTF-8 text", subject=filename) from None
        with stage("parse"):
            module = parse_module(text, filename)
        verify_module(module)
    except OiError as e:
        sys.stderr.write(f"{e}\n")
        raise SystemExit(1) from None
    return module


def _add_oi_reader() -> None:
    """Give `xdsl-opt` (when it is the program running: it has imported its driver) an `oi` reader."""
    driver = getattr(sys.modules.get("xdsl.xdsl_opt_main"), "xDSLOptMain", None)
    register = getattr(driver, "register_all_frontends", None)
    if register is None or getattr(register, "oi_reader", False):
        return

    def register_all_frontends(self) -> None:
        register(self)
        self.available_frontends.setdefault("oi", lambda stream: parse_oi_input(stream, self.get_input_name()))

    register_all_frontends.oi_reader = True
    driver.register_all_frontends = register_all_frontends


_add_oi_reader()

OI_UNIVERSE = Universe(all_dialects={"oi": _oi_dialect, "oi_table": _oi_table_dialect}, all_passes=_own_passes())
