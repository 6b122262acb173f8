"""`oi.Simulator` and its executors: the Python API for running a graph step by step.

    import oi_compiler as oi
    model = oi.Model.open("model.oinf")            # or oi.Model(sizevars={"D": 4}, tensors={...})
    sim = oi.Simulator(model, "decoder.oi", device="reference").with_trace()
    exe = sim.make_executor()
    exe.insert(x=np.ones(4, np.float32))
    exe.step()                                     # alias: exe.run_step()
    y = exe.fetch("y")
    k = exe.state("K")                             # a table's `K[]` contents, read-only
    exe.save_state("ckpt.oistate"); exe.load_state("ckpt.oistate")

Upstream OpenInfer's `Simulator::new` validates the graph against the model; so
does `Simulator(...)` (raising `VerifyError` or `ModelError`). Each executor has
its own state. A step that fails raises (`CacheError`, `ExecutionError`) and
leaves every persistent variable as it was before the step.
"""

from __future__ import annotations

import math
import os
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from oi_compiler.dtypes import INT_RANGES, numpy_dtype
from oi_compiler.boundary import internal_error, stage
from oi_compiler.errors import ExecutionError, OiError, StateError, UnsupportedError
from oi_compiler.graph import Graph
from oi_compiler.runtime.binding import BoundGraph, bind_graph
from oi_compiler.models.model import Model
from oi_compiler.runtime.reference import Frame, ReferenceInterpreter
from oi_compiler.runtime.tables import PersistentStore, make_storage
from oi_compiler.runtime.trace import TraceEvent, env_prints_trace, print_event
from oi_compiler.verify.scope import shape_text

if TYPE_CHECKING:
    from oi_compiler.runtime.page_pool import PageTable

DEVICES = ("reference", "cpu", "cuda")



def variable_name(name: Any) -> str:
    """`name` itself, when it is a string; else the `ExecutionError` that a name is one."""
    if not isinstance(name, str):
        raise ExecutionError(f"a variable's name is a string, not {type(name).__name__} {name!r:.60}")
    return name


def state_path(path: Any, what: str) -> Path:
    """A state file's path from a str, bytes or os.PathLike; else an `ExecutionError`."""
    try:
        return Path(os.fsdecode(path))
    except TypeError:
        raise ExecutionError(f"{what}: a path is a str, bytes or os.PathLike, not {type(path).__name__}") from None

class Simulator:
    """A graph bound to a model on one device; `make_executor()` gives independent runs of it.

        sim = oi.Simulator(model, graph, device="reference", sizevars=None, zero_constants=False)

    Arguments and options:
    - `model`: an `oi.Model`, the path of an `.oinf`/`.npz` file (`Model.open`), or None (no
      tensors, no size variables).
    - `graph`: an `oi.Graph` (`oi.Graph.load`, `oi.parse_graph`) or the path of a `.oi`/`.mlir` file.
    - `device`: `"reference"` (default): the numpy interpreter, with traces and timers;
      `"cpu"`: the whole step compiled to native code here, when the Simulator is built (cached in
      memory and on disk under `$OI_CACHE_DIR`), with the reference's results and error messages;
      constructs it does not compile yet are refused here (`docs/lowering.md`). `"cuda"`: the same
      compiled step, each op's work launched as the op's GPU kernels (`runtime/op_launches.py`):
      in the CPU emulation with `OI_GPU_EMULATE=1`; otherwise on a GPU through `runtime/cuda.py`,
      with tables in host memory staged per launch, a path never run on a GPU yet (docs/gpu.md);
      without either, a `GpuUnavailableError`. Any other name is an `OiError`.
    - `sizevars`: size variables added to the model's, or overriding them (`{"D": 64}`).
    - `zero_constants`: read a `constant` the model lacks as zeros instead of failing to bind.

    `with_trace()` records one event per executed node (`exe.trace()`; `OI_TRACE=full` in the
    environment prints each) and `with_timer()` times each node: both need `device="reference"`
    and return the Simulator, so they chain. Binding checks the graph against the model as
    upstream's `Simulator::new` does: a `VerifyError` or `ModelError` here, never at the first step.
    Attributes: `device`, `model`, `graph`, `bound` (the graph with every shape resolved).
    """

    def __init__(
        self,
        model: Model | str | os.PathLike | None,
        graph: Graph | str | os.PathLike,
        device: str = "reference",
        *,
        sizevars: Mapping[str, int] | None = None,
        zero_constants: bool = False,
    ):
        """Bind `graph` to `model` on `device` (the class docstring lists the options)."""
        if device not in DEVICES:
            raise OiError(f"unknown device {device!r} (expected one of: {', '.join(DEVICES)})")
        if device == "cuda":
            from oi_compiler.runtime.device_memory import device_memory

            with stage("cuda"):
                device_memory()  # GpuUnavailableError without OI_GPU_EMULATE=1 and without a GPU
        if model is None:
            model = Model()
        elif not isinstance(model, Model):
            with stage("model"):
                model = Model.open(model)
        if not isinstance(graph, Graph):
            graph = Graph.load(graph)
        self.device = device
        self.model = model
        self.graph = graph
        with stage("bind"):
            self.bound: BoundGraph = bind_graph(graph, model, sizevars, zero_constants=zero_constants)
        self.tracing = False
        self.timing = False
        self.native = None
        if device in ("cpu", "cuda"):
            from oi_compiler.runtime.native_step import compile_step

            with stage("jit"):  # the lowering passes inside name themselves
                self.native = compile_step(self.bound, device)

    def with_trace(self) -> Simulator:
        """Record one event per executed node; `exe.trace()` returns them."""
        self._reference_only("tracing")
        self.tracing = True
        return self

    def with_timer(self) -> Simulator:
        """Time each node (the events' `micros`); zero otherwise."""
        self._reference_only("per-node timing")
        self.timing = True
        return self

    def _reference_only(self, what: str) -> None:
        if self.device != "reference":
            raise OiError(f"{what} needs device='reference' (the compiled step runs as one function)")

    def make_executor(self) -> Executor:
        with stage("executor"):
            if self.device == "cpu":
                from oi_compiler.runtime.cpu_executor import CpuExecutor

                return CpuExecutor(self)
            if self.device == "cuda":
                from oi_compiler.runtime.cuda_executor import CudaExecutor

                return CudaExecutor(self)
            return Executor(self)


class Executor:
    """One run of a graph: its variables, its persistent state and its trace. Made by
    `Simulator.make_executor()` (on `device="cpu"`, a `CpuExecutor`: the same methods, running the
    compiled step); each executor has its own state.

    - `insert(x=array)` / `insert({"x": array})`: set dynamic variables (the declared shape; a value
      is cast to the declared dtype only when no value changes);
    - `step()` (alias `run_step()`): run the entry block once; a failed step raises (`CacheError`,
      `ExecutionError`, with the statement's location) and leaves every persistent variable as it
      was before the step;
    - `fetch(name)`: a copy of any variable; `state(name)`: a persistent variable read-only, a
      table as `NAME[]` reads it; `table_sizes(name)`: a table's logical sizes;
    - `trace()`: the recorded events as dicts (with `Simulator.with_trace()`); `events`, `steps`;
    - `reset()`: back to a fresh executor; `save_state(path)` (atomic) and `load_state(path)`
      (a corrupt or foreign file changes nothing: `StateError`).

    An executor may be shared between threads: `insert`, `step`, `reset`, `save_state` and
    `load_state` run one at a time (`self.lock`, reentrant: hold it to make an insert and its
    step one unit), so two threads' steps never interleave."""

    def __init__(self, sim: Simulator):
        self.lock = threading.RLock()
        self.sim = sim
        self.bound = sim.bound
        self.events: list[TraceEvent] = []
        self.steps = 0
        self._fresh_state()

    def _fresh_state(self) -> None:
        bound = self.bound
        storages = {}
        for name in bound.persistent_names():
            try:
                storages[name] = make_storage(bound.declaration(name), table=bound.decls[name].table is not None)
            except ExecutionError as e:  # a table no device could hold
                raise bound.allocation_refused(name, e) from None
        self.store = PersistentStore(storages)
        self.values: dict[str, np.ndarray] = {}
        self.interpreter = ReferenceInterpreter(
            bound, self.store, self.values, self._emit, timer=self.sim.timing
        )

    def _emit(self, event: TraceEvent) -> None:
        """Keep the event (with `with_trace()`) and print it when `OI_TRACE=full` is set now."""
        if self.sim.tracing:
            self.events.append(event)
        if env_prints_trace():
            print_event(event)

    # --- inputs and steps ----------------------------------------------------------

    def insert(self, values: Mapping[str, Any] | None = None, /, **named: Any) -> Executor:
        """Set dynamic variables: `exe.insert(x=array)` or `exe.insert({"x": array})`."""
        with stage("insert"):
            items = {**insert_mapping(values), **named}
            converted = {name: self._converted(name, value) for name, value in items.items()}
            with self.lock:  # never between two nodes of another thread's step
                self.values.update(converted)
        return self

    @property
    def inputs(self) -> InputBuffers:
        """The dynamic variables' own buffers, writable: `exe.inputs["x"][...] = frame` feeds the
        next step with no `insert` (no conversion, no copy on cpu: the compiled step reads that
        very buffer). A buffer holds the variable's current value when first taken, and stays the
        variable's until the next `insert` of it, `reset` or `load_state` (take it again then)."""
        return InputBuffers(self)

    def _dynamic_decl(self, name: str):
        decl = self.bound.decls.get(variable_name(name))
        if decl is None:
            raise ExecutionError(f"unknown variable: {name}")
        if decl.memory != "dynamic":
            raise ExecutionError(f"cannot insert into {decl.memory} variable {name}")
        return decl

    def input_buffer(self, name: str) -> np.ndarray:
        """`inputs[name]`: the variable's value as a writable array the next step reads."""
        with stage("insert"):
            self._dynamic_decl(name)
            with self.lock:
                array = self.values.get(name)
                if array is None or not array.flags.writeable:
                    array = self.fetch(name)  # a copy of what a step would read now
                    self.values[name] = array
                return array

    def _converted(self, name: str, value: Any) -> np.ndarray:
        decl = self._dynamic_decl(name)
        shape = self.bound.shapes[name]
        array = _exact_cast(name, value, decl.dtype)
        if array.shape != shape:
            if array.size == 1 and int(np.prod(shape)) == 1:
                array = array.reshape(shape)
            else:
                raise ExecutionError(
                    f"insert {name} expects shape {shape_text(shape)}, got {shape_text(array.shape)}"
                )
        return array

    def step(self) -> TraceEvent | None:
        """Run the entry block once. Returns the step's last event (the last node it ran; whether
        or not `with_trace()` records events), None when the step ran no node; `device="cpu"`
        always returns None (the compiled step runs as one function)."""
        with self.lock:
            try:
                event = self.interpreter.run_step()
            except OiError:
                raise
            except Exception as e:  # a bug; the interpreter names the statement of its own
                raise internal_error(e, "step") from e
            self.steps += 1
            return event

    run_step = step

    # --- outputs -------------------------------------------------------------------

    def fetch(self, name: str) -> np.ndarray:
        """A copy of a variable's value (upstream's order: dynamic and locals, persistent, model, `@init`)."""
        with stage("fetch"):
            if variable_name(name) in self.values:
                return self.values[name].copy()
            if name in self.store:
                return self.store[name].current().copy()
            if name in self.bound.decls:
                return self.interpreter.value(name, Frame(self.bound.entry, {}, dict(self.values), True)).copy()
        raise ExecutionError(f"unknown variable: {name}")

    def state(self, name: str) -> np.ndarray:
        """A persistent variable's value, read-only: a table as `NAME[]` reads it, without growing it."""
        with stage("state"):
            return self._persistent(name).current().view()  # a view of a frozen array stays read-only

    def _persistent(self, name: str):
        if variable_name(name) not in self.store:
            decl = self.bound.decls.get(name)
            if decl is None:
                raise ExecutionError(f"unknown variable: {name}")
            raise ExecutionError(f"{name} is not persistent ({decl.memory})")
        return self.store[name]

    def table_sizes(self, name: str) -> list[int]:
        """A table's logical size per index (or an `@auto_dim` variable's counts)."""
        with stage("state"):
            storage = self._persistent(name)
            return list(getattr(storage, "sizes", getattr(storage, "counts", [])))

    def page_table(self, name: str) -> PageTable:
        """A `@paged` table's pages in CSR form (`oi.PageTable`); `device="cpu"` only: the reference
        keeps a table's entries, not pages."""
        raise UnsupportedError(f"page_table: device {self.sim.device!r} keeps no pages (device 'cpu' does)")

    def table_nbytes(self, name: str) -> int:
        """The bytes a table's storage holds (entries, present flags, page table); `device="cpu"` only."""
        raise UnsupportedError(f"table_nbytes: device {self.sim.device!r} does not lay tables out in memory "
                               "(device 'cpu' does)")  # fmt: skip

    def trace(self) -> list[dict]:
        """The recorded events (with `with_trace()`), as plain dicts, over every step so far."""
        return [e.as_dict() for e in self.events]

    def reset(self) -> None:
        """Back to a fresh executor: state, variables, trace and step count."""
        with self.lock, stage("reset"):
            self.events = []
            self.steps = 0
            self._fresh_state()

    # --- checkpoints ---------------------------------------------------------------

    def restore(self, store: PersistentStore, values: dict[str, np.ndarray], steps: int) -> None:
        """Take over a checked state (`load_state`)."""
        self.store.storages = store.storages
        self.values.clear()
        self.values.update(values)
        self.steps = steps

    def save_state(self, path: str | os.PathLike) -> Path:
        """Write the executor's state to `path` atomically (see `state_file`)."""
        from oi_compiler.runtime.state_file import save_state

        with self.lock, stage("save-state"):
            try:
                return save_state(self, state_path(path, "save_state"))
            except OSError as e:
                raise StateError(f"cannot write state: {e.strerror or e}", subject=str(path)) from None

    def load_state(self, path: str | os.PathLike) -> None:
        """Restore a state saved by `save_state`; a corrupt or mismatched file changes nothing."""
        from oi_compiler.runtime.state_file import load_state

        with self.lock, stage("load-state"):
            try:
                load_state(self, state_path(path, "load_state"))
            except StateError as e:
                e.subject = e.subject or str(path)
                raise


def insert_mapping(values: Any) -> Mapping[str, Any]:
    """`insert`'s positional argument: a mapping of names to values, or nothing."""
    if values is None:
        return {}
    if not isinstance(values, Mapping):
        raise ExecutionError(f"insert takes a mapping of variable names to values (or keywords), "
                             f"got {type(values).__name__}")  # fmt: skip
    return values


def _exact_cast(name: str, value: Any, dtype: str) -> np.ndarray:
    """`value` as a new array of DSL dtype `dtype`, refusing conversions that would change a value:
    an imaginary part (every DSL dtype is real), and for integer and bool dtypes a fraction or a
    value out of the dtype's range (2**70 is not `True`)."""
    try:
        source = np.asarray(value)
        if source.dtype.kind in "cO" and source.size:
            source = _real_part(name, dtype, source)
        if dtype in INT_RANGES and source.size:
            _check_integers(name, dtype, source)
        return np.array(source, dtype=numpy_dtype(dtype))
    except OiError:
        raise
    except Exception as e:  # noqa: BLE001 - the value's own __array__/__int__/__float__ may raise anything
        raise ExecutionError(f"insert {name}: cannot convert to {dtype}: {e}") from None


def _real_part(name: str, dtype: str, source: np.ndarray) -> np.ndarray:
    """A complex (or object) array's values without their imaginary parts, each of which must be 0."""
    lossy = ExecutionError(f"insert {name}: {dtype} takes real values, got complex values with an imaginary part")
    if source.dtype.kind == "c":
        if np.any(source.imag != 0):
            raise lossy
        return source.real
    items = list(source.flat)  # Python objects: big ints, complex numbers, anything
    for n, item in enumerate(items):
        if isinstance(item, complex | np.complexfloating):
            if item.imag != 0:
                raise lossy
            items[n] = item.real
    result = np.empty(source.shape, dtype=object)
    result.flat[:] = items
    return result


def _check_integers(name: str, dtype: str, source: np.ndarray) -> None:
    """Raise unless every number in `source` is an integer that `dtype` (integer or bool) holds."""
    kind = source.dtype.kind
    if kind in "fV":  # floats (ml_dtypes' bf16/f8 are kind V)
        wide = source.astype(np.float64)
        if not np.all(np.isfinite(wide) & (np.floor(wide) == wide)):
            raise ExecutionError(f"insert {name}: {dtype} takes integers, got {source.dtype} values with fractions")
        numbers = [int(wide.min()), int(wide.max())]  # exact: float64 -> int of an integral value
    elif kind in "iub":
        numbers = [int(source.min()), int(source.max())]
    elif kind == "O":  # Python ints past 64 bits, floats...; other objects are numpy's to convert or refuse
        numbers = []
        for item in source.flat:
            if isinstance(item, bool | int | np.integer | np.bool_):
                numbers.append(int(item))
            elif isinstance(item, float | np.floating):
                if not (math.isfinite(item) and float(item).is_integer()):
                    raise ExecutionError(f"insert {name}: {dtype} takes integers, got {item!r}")
                numbers.append(int(item))
    else:
        return
    low, high = INT_RANGES[dtype]
    if any(not low <= n <= high for n in numbers):
        raise ExecutionError(f"insert {name}: a value is out of range for {dtype} ({low}..{high})")


__all__ = ["DEVICES", "Executor", "Simulator"]


class InputBuffers(Mapping):
    """`exe.inputs`: each dynamic variable's buffer by name (`Executor.input_buffer`)."""

    def __init__(self, executor: Executor):
        self._executor = executor
        self._names = [n for n, d in executor.bound.decls.items() if d.memory == "dynamic"]

    def __getitem__(self, name: str) -> np.ndarray:
        return self._executor.input_buffer(name)

    def __iter__(self):
        return iter(self._names)

    def __len__(self) -> int:
        return len(self._names)
