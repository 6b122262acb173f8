"""benchmarks/gpu_device_check.py as a module. The script a GPU session runs imports no test code,
so the tests take its graphs (and run it) from here instead of keeping copies of them."""

from __future__ import annotations

import functools
import importlib.util
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "gpu_device_check.py"


@functools.cache
def device_check():
    spec = importlib.util.spec_from_file_location("gpu_device_check", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
