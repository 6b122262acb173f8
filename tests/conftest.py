"""Shared fixtures."""

import pytest

from oi_compiler import passes as passes_module


@pytest.fixture
def restore_pass_registry():
    """Passes registered by a test (or a plugin it loads) are gone after it."""
    saved = dict(passes_module._PASSES)
    yield
    passes_module._PASSES.clear()
    passes_module._PASSES.update(saved)


@pytest.fixture
def private_compile_cache(tmp_path, monkeypatch):
    """JIT compile caches of this test go to a fresh directory."""
    monkeypatch.setenv("OI_CACHE_DIR", str(tmp_path / "jit"))
