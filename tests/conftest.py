"""Shared fixtures."""

from collections.abc import Iterator

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
def scratch_registry() -> Iterator[None]:
    """Ops and settings a test registers are gone after it (tests that enumerate the registry
    must see the built-in ops only, whatever ran before them in the worker)."""
    from oi_compiler.ops import registry

    ops, settings = registry._load()
    saved_ops, saved_settings = dict(ops), dict(settings)
    yield
    ops.clear()
    ops.update(saved_ops)
    settings.clear()
    settings.update(saved_settings)


@pytest.fixture
def private_compile_cache(tmp_path, monkeypatch):
    """JIT compile caches of this test go to a fresh directory."""
    monkeypatch.setenv("OI_CACHE_DIR", str(tmp_path / "jit"))


@pytest.fixture(scope="session", autouse=True)
def compile_cache_per_process(tmp_path_factory):
    """Each test process (`make test` runs pytest-xdist workers) compiles into a cache directory of
    its own: a test that clears or corrupts the cache cannot race another worker's disk hits, and
    the user's ~/.cache is left alone. Tests that need another directory set OI_CACHE_DIR themselves."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("OI_CACHE_DIR", str(tmp_path_factory.mktemp("jit")))
        yield


def pytest_collection_modifyitems(items):
    """The tests marked slow (each 10-45 s) run first, the rest in their order: with `make test`'s
    `--dist worksteal` the quick ones then balance the workers, instead of one worker running a
    45-second test alone at the end."""
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)  # stable: False first


@pytest.fixture
def emulate_cuda_device(request) -> Iterator[None]:
    """`device="cuda"` cases of a test parametrized over `device` run their kernels in the CPU
    emulation (`OI_GPU_EMULATE=1`, docs/gpu.md), so the differential suites need no GPU; the other
    devices' cases are left alone. A test file opts in with
    `pytestmark = pytest.mark.usefixtures("emulate_cuda_device")` (not a test argument: hypothesis
    refuses function-scoped fixtures among a test's arguments)."""
    callspec = getattr(request.node, "callspec", None)
    with pytest.MonkeyPatch.context() as patch:  # its own: a test's `monkeypatch.undo()` keeps it
        if callspec is not None and callspec.params.get("device") == "cuda":
            patch.setenv("OI_GPU_EMULATE", "1")
        yield
