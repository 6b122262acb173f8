"""Device memory of `device="cuda"` (runtime/device_memory.py, passes/place_buffers.py, runtime/native.py).

The emulation's device addresses are tagged so that a load or store by host code faults (checked in
a child process); copies in every direction and of strided views against numpy; `DeviceBuffer`'s
reads of a part; the driver memory's choice of copy direction through a fake launcher (no GPU
here); and on whole steps: which variables live on the device, no staging in the steady state of a
KV decode, a copy that fails failing the step at its statement with the state put back, growth of
a table on the device, a reset's refill on the device, and `inputs[...]` refused for a device
variable.
"""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import oi_compiler as oi
from oi_compiler.errors import ExecutionError
from oi_compiler.lowering import analysis as P
from oi_compiler.runtime.device_memory import (
    TAG,
    BufferView,
    DeviceBuffer,
    DriverDeviceMemory,
    EmulatedDeviceMemory,
)
from tests.device_check import device_check


@pytest.fixture
def emulated(monkeypatch):
    monkeypatch.setenv("OI_GPU_EMULATE", "1")


def test_emulated_addresses_fault_when_the_host_reads_them() -> None:
    """The premise of the emulation's check: the host cannot dereference a device address."""
    code = ("import ctypes; from oi_compiler.runtime.device_memory import EmulatedDeviceMemory as M; "
            "m = M(); a = m.alloc(64); print('allocated', flush=True); ctypes.c_int64.from_address(a).value")  # fmt: skip
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.stdout.startswith("allocated")
    assert done.returncode < 0  # killed by a signal (SIGSEGV), not an exception


def test_emulated_allocations_are_tagged_and_aligned() -> None:
    memory = EmulatedDeviceMemory()
    address = memory.alloc(100)
    assert address & TAG and memory.is_device(address) and address % 256 == 0
    host = np.zeros(4)
    assert not memory.is_device(host.ctypes.data)
    memory.upload(address, np.arange(4.0))
    memory.download(address, host)
    assert host.tolist() == [0.0, 1.0, 2.0, 3.0]


def _view(array: np.ndarray, address: int | None = None) -> BufferView:
    item = array.itemsize
    return BufferView(array.ctypes.data if address is None else address, 0, array.shape,
                      tuple(s // item for s in array.strides), array.dtype)  # fmt: skip


@settings(max_examples=40, deadline=None)
@given(shape=st.lists(st.integers(0, 4), min_size=0, max_size=3), data=st.data())
def test_strided_copies_match_numpy_in_every_direction(shape, data) -> None:
    memory = EmulatedDeviceMemory()
    big = [n + data.draw(st.integers(0, 2)) for n in shape]
    starts = [data.draw(st.integers(0, b - n)) for b, n in zip(big, shape)]
    box = tuple(slice(s, s + n) for s, n in zip(starts, shape))
    source = np.arange(int(np.prod(big)), dtype=np.float32).reshape(big)
    on_device = DeviceBuffer.of(memory, source)
    # device -> host: the box of the device buffer into a fresh host array
    target = np.full(shape, -1.0, np.float32)
    strided = source[box]
    offset = sum(s * st for s, st in zip(starts, (x // 4 for x in source.strides)))
    memory.copy(_view(target), BufferView(on_device.address, offset, tuple(shape),
                                          tuple(x // 4 for x in strided.strides), np.dtype(np.float32)))  # fmt: skip
    np.testing.assert_array_equal(target, strided)
    # host -> device: back into a zeroed device buffer's box
    zeroed = DeviceBuffer.of(memory, np.zeros(big, np.float32))
    memory.copy(BufferView(zeroed.address, offset, tuple(shape), tuple(x // 4 for x in strided.strides),
                           np.dtype(np.float32)), _view(target))  # fmt: skip
    expected = np.zeros(big, np.float32)
    expected[box] = strided
    np.testing.assert_array_equal(zeroed.get(), expected)


def test_device_buffer_reads_rows_and_grows_by_box() -> None:
    memory = EmulatedDeviceMemory()
    array = np.arange(24, dtype=np.int32).reshape(4, 2, 3)
    buffer = DeviceBuffer.of(memory, array)
    for key in [(), (2,), (slice(1, 3),), (slice(None), 1), (3, 1, 2), (slice(3, 1),), (slice(None, None, 2),)]:
        np.testing.assert_array_equal(buffer.get(key), array[key], err_msg=str(key))
    bigger = DeviceBuffer(memory, (5, 3, 3), np.int32)
    bigger.set(-1)
    bigger.copy_box_from(buffer)
    expected = np.full((5, 3, 3), -1, np.int32)
    expected[:4, :2, :3] = array
    np.testing.assert_array_equal(bigger.get(), expected)
    bigger.set_entry((4, 2), 7)
    assert bigger.get((4, 2)).tolist() == [7, 7, 7]
    scalar = DeviceBuffer.of(memory, np.array(5, np.int64))
    assert int(scalar.get()) == 5


class FakeLauncher:
    """`runtime/cuda.py`'s launcher as `DriverDeviceMemory` uses it, over host bytes, counting calls."""

    def __init__(self) -> None:
        self.blocks: dict[int, np.ndarray] = {}
        self.calls: list[str] = []
        self.next = 1 << 40

    def alloc(self, nbytes: int) -> int:
        address, self.next = self.next, self.next + nbytes + 4096
        self.blocks[address] = np.zeros(nbytes, np.uint8)
        return address

    def free(self, address: int) -> None:
        del self.blocks[address]

    def _bytes(self, address: int, nbytes: int) -> np.ndarray:
        start = max(a for a in self.blocks if a <= address)
        return self.blocks[start][address - start : address - start + nbytes]

    def htod(self, pointer: int, array: np.ndarray) -> None:
        self.calls.append("htod")
        self._bytes(pointer, array.nbytes)[...] = array.view(np.uint8).reshape(-1)

    def dtoh(self, array: np.ndarray, pointer: int) -> None:
        self.calls.append("dtoh")
        array.view(np.uint8).reshape(-1)[...] = self._bytes(pointer, array.nbytes)

    def dtod(self, dst: int, src: int, nbytes: int) -> None:
        self.calls.append("dtod")
        self._bytes(dst, nbytes)[...] = self._bytes(src, nbytes)


def test_driver_memory_copies_by_where_each_side_is() -> None:
    launcher = FakeLauncher()
    memory = DriverDeviceMemory(launcher)
    a = DeviceBuffer.of(memory, np.arange(6, dtype=np.float64).reshape(3, 2))
    b = DeviceBuffer(memory, (4, 2), np.float64)
    assert memory.is_device(a.address + 47) and not memory.is_device(a.address + 48)
    b.copy_box_from(a)
    host = np.zeros(2)
    memory.copy_bytes(host.ctypes.data, b.address + 16, 16)
    other = np.ones(2)
    memory.copy_bytes(other.ctypes.data, host.ctypes.data, 16)
    assert launcher.calls == ["htod", "dtod", "dtoh"]  # host to host is a memmove
    assert host.tolist() == other.tolist() == [2.0, 3.0]
    np.testing.assert_array_equal(b.get((slice(0, 3),)), np.arange(6.0).reshape(3, 2))
    address = a.address
    del a
    assert address not in launcher.blocks and not memory.is_device(address)


KV = """
dynamic { x: f32[1, D]; }
constant { W: f32[D, D]; }
volatile { k: f32[1, D]; keys: f32[T, 1, D]; }
persistent {
    t: i32 @init(0);
    K(pos): f32[1, D] @table;
}
block entry {
    op matmul(x, W) >> k;
    cache.write k >> K[t];
    cache.increment t;
    cache.read K[0..t] >> keys;
    return;
}
"""


def _kv(devices=("cpu", "cuda")):
    rng = np.random.default_rng(0)
    model = oi.Model(sizevars={"D": 4, "T": 8}, tensors={"W": rng.standard_normal((4, 4)).astype(np.float32)})
    graph = oi.parse_graph(KV)
    return {d: oi.Simulator(model, graph, device=d).make_executor() for d in devices}


def test_kv_steps_keep_data_on_the_device_and_grow_it_there(emulated) -> None:
    exes = _kv()
    cuda = exes["cuda"]
    placed = {name: var.device for name, var in cuda.native.plan.vars.items()}
    assert placed == {"x": True, "W": True, "k": True, "keys": False, "t": False, "K": True}
    rng = np.random.default_rng(1)
    for _ in range(20):  # K grows past its first capacity on the device (growth copies device to device)
        x = rng.standard_normal((1, 4)).astype(np.float32)
        for exe in exes.values():
            exe.insert(x=x).step()
        np.testing.assert_array_equal(cuda.fetch("keys"), exes["cpu"].fetch("keys"))
    assert cuda.table_sizes("K") == [20]
    np.testing.assert_array_equal(cuda.state("K"), exes["cpu"].state("K"))
    K = cuda.native.plan.vars["K"]
    assert isinstance(cuda.native.arrays[K.data_slot], DeviceBuffer)
    assert isinstance(cuda.native.arrays[K.present_slot], np.ndarray)  # the control plane's
    counts = cuda.launch_counts
    assert counts.staged == 0  # every operand of every launch already on the device
    # a step's one copy: k into K's row. The undo log's copies of K's present byte and of t go to
    # the host's log, not the device's (a copy from the host would wait for the queued kernels), and
    # an append journals no row (the entry was absent: undoing it refills @init)
    assert counts.copies == 20


RECURRENT = """
dynamic { x: f32[2048]; }
volatile { old: f32[2048]; new: f32[2048]; }
persistent {
    h: f32[2048] @init(0.0);
    t: i32 @init(0);
    F(pos): f32[2048] @table @fixed(pos = 3);
}
block entry {
    cache.read h >> old;
    op add(old, x) >> new;
    cache.write new >> h;
    cache.write new >> F[t];
    cache.increment t;
    return;
}
"""


def test_device_data_is_journaled_on_the_device_and_the_rest_on_the_host(emulated) -> None:
    """A persistent device buffer overwritten each step (a recurrent state): its old bytes go to the
    device's log (8 KiB: past its first 4 KiB, so it grows there), t's and F's present byte to the
    host's; the fourth step fails writing F past @fixed after h changed, and h comes back."""
    graph = oi.parse_graph(RECURRENT)
    cpu, cuda = (oi.Simulator(oi.Model(), graph, device=d).make_executor() for d in ("cpu", "cuda"))
    assert cuda.native.plan.vars["h"].device and not cuda.native.plan.vars["t"].device
    rng = np.random.default_rng(4)
    for step in range(4):
        x = rng.standard_normal(2048).astype(np.float32)
        errors = []
        for exe in (cpu, cuda):
            try:
                exe.insert(x=x).step()
                errors.append(None)
            except oi.CacheError as e:
                errors.append(str(e))
        assert errors[0] == errors[1] and (errors[0] is None) == (step < 3)
        for name in ("h", "t", "F"):
            np.testing.assert_array_equal(cuda.state(name), cpu.state(name), err_msg=name)
    logs = cuda.native.arrays
    assert isinstance(logs[P.DEVICE_LOG], DeviceBuffer) and logs[P.DEVICE_LOG].shape[0] >= 8192
    assert isinstance(logs[P.LOG_BYTES], np.ndarray) and logs[P.LOG_BYTES].shape[0] == 4096  # never grown
    assert cuda.native.words[P.LOG_COUNT] == 0 and cuda.native.words[P.DEVICE_LOG_USED] == 0


def test_a_failed_copy_fails_the_step_at_its_statement_and_rolls_back(emulated, monkeypatch) -> None:
    monkeypatch.setenv("OI_CUDA_COMPILE_AFTER", "0")  # every copy through DeviceMemory.copy, patched below
    cuda = _kv(("cuda",))["cuda"]
    x = np.ones((1, 4), np.float32)
    cuda.insert(x=x).step()
    before = cuda.state("K").copy()
    copy = cuda.memory.copy
    rows = []

    def failing(dst, src):
        if src.sizes == (1, 4):  # k into K's row
            rows.append(dst)
            raise ExecutionError("copy failed")
        copy(dst, src)

    monkeypatch.setattr(cuda.memory, "copy", failing)
    with pytest.raises(ExecutionError, match="copy failed") as info:
        cuda.insert(x=2 * x).step()
    assert rows and info.value.loc is not None and info.value.loc.line == 11  # cache.write k >> K[t]
    monkeypatch.setattr(cuda.memory, "copy", copy)
    np.testing.assert_array_equal(cuda.state("K"), before)
    assert int(cuda.state("t")) == 1 and cuda.table_sizes("K") == [1]
    cuda.insert(x=3 * x).step()
    assert int(cuda.state("t")) == 2


def test_inputs_of_a_device_variable_are_refused(emulated) -> None:
    cuda = _kv(("cuda",))["cuda"]
    with pytest.raises(ExecutionError, match="device memory.*use insert"):
        cuda.inputs["x"]


def test_fill_writes_the_pattern_into_a_strided_view() -> None:
    memory = EmulatedDeviceMemory()
    buffer = DeviceBuffer.of(memory, np.zeros((4, 3), np.float32))
    pattern = np.float32(1.5).tobytes()
    memory.fill(BufferView(buffer.address, 1, (3, 2), (3, 1), np.dtype(np.float32)), pattern)  # [0:3, 1:3]
    expected = np.zeros((4, 3), np.float32)
    expected[0:3, 1:3] = 1.5
    np.testing.assert_array_equal(buffer.get(), expected)


def test_a_reset_refills_a_device_table_with_its_init(emulated) -> None:
    """The reset's fill is an `oi.fill` the host carries out, so K stays in device memory; the read
    before it copies (a reset follows), into `keys` on the device too."""
    graph, model = oi.parse_graph(device_check().RESET), oi.Model(sizevars={"D": 4, "T": 4})
    exes = {d: oi.Simulator(model, graph, device=d).make_executor() for d in ("reference", "cuda")}
    placed = exes["cuda"].native.plan.vars
    assert placed["K"].device and placed["keys"].kind == "resizable" and placed["keys"].device  # a read's copy
    rng = np.random.default_rng(0)
    for _ in range(5):
        x = rng.standard_normal((1, 4)).astype(np.float32)
        for exe in exes.values():
            exe.insert(x=x).step()
        np.testing.assert_array_equal(exes["cuda"].fetch("keys"), exes["reference"].fetch("keys"))
        np.testing.assert_array_equal(exes["cuda"].state("K"), exes["reference"].state("K"))
    assert exes["cuda"].state("K")[0].tolist() == [[1.5] * 4]


def test_a_rollback_that_fails_says_so(emulated, monkeypatch) -> None:
    """A device copy failing while a failed step is undone: the error says the state may be partly
    restored (before, the step's own error was raised, as if the state were whole)."""
    monkeypatch.setenv("OI_CUDA_COMPILE_AFTER", "0")
    cuda = _kv(("cuda",))["cuda"]
    cuda.insert(x=np.ones((1, 4), np.float32)).step()
    copy = cuda.memory.copy

    def lost(*args):
        raise ExecutionError("device lost")

    def failing(dst, src):
        if src.sizes == (1, 4):  # k into K's row: the step fails, and from now on every copy too
            monkeypatch.setattr(cuda.memory, "copy_bytes", lost)
            raise ExecutionError("copy failed")
        copy(dst, src)

    monkeypatch.setattr(cuda.memory, "copy", failing)
    with pytest.raises(ExecutionError, match="could not be undone .*device lost.*partly restored"):
        cuda.insert(x=np.ones((1, 4), np.float32)).step()


UNDONE = """
dynamic { x: f32[1, 2]; ki: i64; kn: i64; }
volatile { all: f32[T, 1, 2]; }
persistent { i: i64; n: i64; K(pos): f32[1, 2] @table @init(7.0) @fixed(pos = 4); }
block entry {
    cache.write ki >> i;
    cache.write kn >> n;
    cache.write x >> K[i];
    cache.read K[0..n] >> all;
    return;
}
"""


@pytest.mark.parametrize("device", ["cpu", "cuda"])
def test_an_undone_write_of_an_absent_entry_leaves_its_init(emulated, device) -> None:
    """A write to an absent entry journals only its present byte; undoing it refills the entry
    with @init, which a later read shows, as on the reference."""
    graph, model = oi.parse_graph(UNDONE), oi.Model(sizevars={"T": 4})
    exes = {d: oi.Simulator(model, graph, device=d).make_executor() for d in ("reference", device)}
    x = np.array([[1.0, 2.0]], np.float32)
    for exe in exes.values():
        exe.insert(x=x, ki=np.int64(0), kn=np.int64(1)).step()
        with pytest.raises(oi.CacheError):  # writes K[2], then the read past @fixed(pos = 4) fails
            exe.insert(x=3 * x, ki=np.int64(2), kn=np.int64(5)).step()
        exe.insert(x=x, ki=np.int64(0), kn=np.int64(3)).step()
    np.testing.assert_array_equal(exes[device].fetch("all"), exes["reference"].fetch("all"))
    assert exes[device].fetch("all")[2].tolist() == [[7.0, 7.0]]


def test_allocations_change_only_between_steps() -> None:
    """A free on another thread (the garbage collector's) waits while a step may search the ranges
    from compiled code (before, it could shift them under the search)."""
    import threading

    from oi_compiler.runtime.compiled_launches import STEP_LOCK

    memory = EmulatedDeviceMemory()
    address = memory.alloc(64)
    done = threading.Event()
    with STEP_LOCK:  # what `OpLauncher.active` holds for a step
        worker = threading.Thread(target=lambda: (memory.free(address), done.set()))
        worker.start()
        assert not done.wait(0.2) and memory.is_device(address) and memory.ranges.contains(address)
    worker.join(5)
    assert done.is_set() and not memory.ranges.contains(address)


AUTO = """
dynamic { w: f32[3, 3]; first: bool; }
volatile { y: f32[2, 2]; }
persistent { t: i64 @init(0); M(i, j): f32[2, 2] @init(1.5) @auto_dim(i, j) @fixed(i = 3); }
block entry { cache.increment t; cache.read M[t, 1] >> y; branch first put done; }
block put { cache.write w >> M[1, 1]; return; }
block done { return; }
"""


def test_an_auto_dim_tensor_grows_on_the_device(emulated) -> None:
    """An @auto_dim tensor in device memory: each growth a new allocation filled on the device and
    the old box copied device to device; the step past @fixed(i = 3) fails and puts it back."""
    graph = oi.parse_graph(AUTO)
    cpu, cuda = (oi.Simulator(oi.Model(), graph, device=d).make_executor() for d in ("cpu", "cuda"))
    M = cuda.native.plan.vars["M"]
    assert M.device and isinstance(cuda.native.arrays[M.slot], DeviceBuffer)
    w = np.arange(9, dtype=np.float32).reshape(3, 3)
    for step in range(5):
        errors = []
        for exe in (cpu, cuda):
            try:
                exe.insert(w=w, first=step == 0).step()
                errors.append(None)
            except oi.OiError as e:
                errors.append(str(e))
        assert errors[0] == errors[1] and (errors[0] is None) == (step < 3), errors
        np.testing.assert_array_equal(cuda.state("M"), cpu.state("M"))
        assert cuda.table_sizes("M") == cpu.table_sizes("M")


WRITTEN_AUTO = """
dynamic { w: f32[2]; n: i64; }
volatile { y: f32[2]; }
persistent { m: i64 @init(0); K(p): f32[2] @table; M(i): f32[2] @init(1.5) @auto_dim(i) @fixed(i = 3); }
block entry { cache.write n >> m; cache.write w >> K[m]; cache.write w >> M; cache.read M[m] >> y; return; }
"""


@pytest.mark.parametrize("with_table", [True, False])
def test_a_device_auto_dim_tensor_written_then_failing_is_put_back(emulated, with_table) -> None:
    """A write to an @auto_dim tensor in device memory journals its bytes on the device (with a device
    table in the graph, `@oi_log` is split by slot: M's slot must be among the device's), and the
    step failing after it (M[5] past @fixed(i = 3)) puts M back."""
    text = WRITTEN_AUTO if with_table else WRITTEN_AUTO.replace("cache.write w >> K[m]; ", "")
    graph = oi.parse_graph(text)
    cpu, cuda = (oi.Simulator(oi.Model(), graph, device=d).make_executor() for d in ("cpu", "cuda"))
    assert cuda.native.plan.vars["M"].device and cuda.native.plan.vars["K"].device == with_table
    for w, n in (([7, 8], 0), ([9, 9], 5), ([3, 4], 1), ([5, 6], 4)):
        errors = []
        for exe in (cpu, cuda):
            try:
                exe.insert(w=np.array(w, np.float32), n=n).step()
                errors.append(None)
            except oi.OiError as e:
                errors.append(str(e))
        assert errors[0] == errors[1] and (errors[0] is None) == (n <= 3), errors
        for name in ("M", "K", "m"):
            np.testing.assert_array_equal(cuda.state(name), cpu.state(name), err_msg=name)
        assert cuda.table_sizes("M") == cpu.table_sizes("M")


def test_an_auto_dim_growth_past_device_memory_is_the_hosts_error(emulated) -> None:
    text = AUTO.replace("@fixed(i = 3)", "")
    graph = oi.parse_graph(text.replace("cache.read M[t, 1] >> y;", "cache.read M[t, 35184372088832] >> y;"))
    messages = []
    for device in ("cpu", "cuda"):
        with pytest.raises(oi.ExecutionError) as info:
            oi.Simulator(oi.Model(), graph, device=device).make_executor().insert(
                w=np.zeros((3, 3), np.float32), first=False).step()
        messages.append(str(info.value))
    assert messages[0] == messages[1] and "cannot allocate f32[3, 35184372088834]: out of memory" in messages[0]
