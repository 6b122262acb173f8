"""`device="cuda"`: the cpu executor's compiled control plane, each op launched as its GPU kernels.

The step is `pipeline.CUDA_STEP_STAGES` compiled for the host: scalars, sizes, checks, growth and
the undo log run there exactly as on `device="cpu"` (`CpuExecutor`, whose inputs, outputs, state
and checkpoints this executor shares), and each op statement calls the host, which launches the
op's kernels (`runtime/op_launches.py`). A launch that fails (an op the kernel layer refuses for
these sizes, a driver error) fails the step at that statement: the undo log puts every persistent
variable back and the launch's own error is raised, with the statement's location.

The data the host step only hands to kernels and copies (the layout's `device` variables:
`--place-buffers`) lives in device memory (`runtime/device_memory.py`): the emulation's tagged host
memory with `OI_GPU_EMULATE=1`, else the GPU's. The state words hold its device addresses; the
control plane's words, sizes, present bytes and scalars stay on the host.
"""

from __future__ import annotations

from oi_compiler.boundary import internal_error, stage
from oi_compiler.errors import ExecutionError, OiError
from oi_compiler.runtime.cpu_executor import CpuExecutor
from oi_compiler.runtime.device_memory import DeviceMemory, device_memory
from oi_compiler.runtime.executor import variable_name
from oi_compiler.runtime.native import NativeState
from oi_compiler.runtime.op_launches import LaunchCounts, OpLauncher, kernel_runner


class CudaExecutor(CpuExecutor):
    memory: DeviceMemory

    def _fresh_state(self) -> None:
        if not hasattr(self, "memory"):  # kept across `reset`: the prepared kernels and their scratch
            self.memory = device_memory()
            self.launcher = OpLauncher(self.sim.native.launches, kernel_runner(self.memory), self.memory)
        super()._fresh_state()

    def _native_state(self) -> NativeState:
        return NativeState(self.bound, self.sim.native, self.memory)

    def input_buffer(self, name: str):
        with stage("insert"):
            var = self.native.plan.vars.get(variable_name(name))
            if var is not None and var.device:
                self._dynamic_decl(name)
                raise ExecutionError(f"inputs[{name!r}]: device 'cuda' keeps {name} in device memory, which the host "
                                     "cannot write in place; use insert")  # fmt: skip
        return super().input_buffer(name)

    @property
    def launch_counts(self) -> LaunchCounts:
        """Op calls and kernel launches so far, kernel sets prepared, and the seconds each part took."""
        return self.launcher.counts

    def step(self) -> None:
        with self.lock:  # one native step at a time: its callbacks share the state and the launcher
            with self.launcher.active():
                try:
                    self.native.run()
                except OiError as e:
                    failure = self.launcher.take_error()
                    if failure is None or getattr(e, "rollback_failed", False):  # (that matters more)
                        raise
                    if not isinstance(failure, Exception):  # KeyboardInterrupt, SystemExit: as they are
                        raise failure from None
                    if not isinstance(failure, OiError):  # a bug in the launcher: one diagnostic
                        raise internal_error(failure, "step") from failure
                    if failure.loc is None:  # the op's statement, as the step's error site names it
                        failure.loc, failure.node = e.loc, getattr(e, "node", None)
                    raise failure from None
                except Exception as e:  # a bug (in a host callback, say): one diagnostic
                    raise internal_error(e, "step") from e
            self.steps += 1
        return None

    run_step = step
