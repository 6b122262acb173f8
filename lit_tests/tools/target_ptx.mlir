// `-t ptx`: the kernels of a gpu.module as PTX (backend/ptx.py), for `--arch` (sm_80 by default).
// Thread and block ids are the sreg registers, gpu.barrier is `bar.sync 0`, math calls
// libdevice, which is linked and inlined (no call is left), and shared memory is `.shared`.
//
// RUN: oi-opt %s -t ptx | filecheck %s
// RUN: oi-opt %s -t ptx --arch=sm_90 | filecheck %s --check-prefix=SM90
// RUN: bash -c 'oi-opt %s -t ptx --arch=sm_99; echo exit $?' 2>&1 | filecheck %s --check-prefix=BADARCH

builtin.module {
  "gpu.module"() <{sym_name = "kernels"}> ({
    "gpu.func"() <{function_type = (memref<32xf32>) -> (), kernel}> ({
    ^bb0(%x: memref<32xf32>):
      %tid = "gpu.thread_id"() <{dimension = #gpu<dim x>}> : () -> index
      %tile = memref.alloca() : memref<32xf32, 3>
      %v = memref.load %x[%tid] : memref<32xf32>
      %e = math.exp %v : f32
      memref.store %e, %tile[%tid] : memref<32xf32, 3>
      "gpu.barrier"() : () -> ()
      %c31 = arith.constant 31 : index
      %j = arith.subi %c31, %tid : index
      %w = memref.load %tile[%j] : memref<32xf32, 3>
      memref.store %w, %x[%tid] : memref<32xf32>
      "gpu.return"() : () -> ()
    }) {sym_name = "reverse_exp"} : () -> ()
  }) : () -> ()
}

// CHECK:      .version 8.0
// CHECK-NEXT: .target sm_80
// CHECK:      .visible .entry reverse_exp(
// CHECK-NEXT:   .param .u64 .ptr .align 4 reverse_exp_param_0,
// CHECK:      .shared .align 16 .b8 shared_$_0[128];
// CHECK:        mov.u32 {{.*}}, %tid.x;
// CHECK-NOT:    call
// CHECK:        ex2.approx
// CHECK:        st.shared.b32
// CHECK:        bar.sync 0;
// CHECK:        ld.shared.b32
// CHECK:        ret;

// SM90:       .target sm_90

// BADARCH:    oi-opt: error: unknown GPU architecture 'sm_99' for --arch
// BADARCH:    exit 2
