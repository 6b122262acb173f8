"""The registry of OpenInfer DSL ops (see `oi_compiler.ops.registry`)."""

from oi_compiler.ops.registry import (
    OpSpec,
    SettingSpec,
    all_ops,
    dtype_debug_name,
    lookup_op,
    register_op,
    register_setting,
    setting_spec,
)

__all__ = [
    "OpSpec",
    "SettingSpec",
    "all_ops",
    "dtype_debug_name",
    "lookup_op",
    "register_op",
    "register_setting",
    "setting_spec",
]
