"""The xDSL plugin entry point: `xdsl-opt` sees the `oi` and `oi_table` dialects and oi_compiler's passes."""

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


OI_UNIVERSE = Universe(all_dialects={"oi": _oi_dialect, "oi_table": _oi_table_dialect}, all_passes=_own_passes())
