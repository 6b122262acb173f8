// --gpu-emulate turns each `gpu.func ... kernel` of a gpu.module into a CPU function
// `@k(args..., %grid_x, %grid_y, %grid_z, %block_x, %block_y, %block_z: index)` in the
// top-level module (the gpu.module goes away) that runs the same kernel code thread by thread:
// the grid is three scf.for loops over the block ids (z outermost); shared memory (space-3
// allocas) is one generic-space buffer per block; the body is split at each gpu.barrier into
// phases, each its own loop nest over the block's threads, so every thread finishes phase n
// before any starts phase n+1. A value defined in one phase and used in a later one goes
// through a per-thread buffer (memref<?xT> of the block's %threads, at the function's entry):
// stored at the end of the defining phase, loaded at the start of the using one. A barrier in
// an scf.for with block-uniform bounds splits that loop's body into phases inside one loop over
// the iterations; a barrier under thread-dependent control flow is refused.
//
// RUN: oi-opt %s --split-input-file --gpu-emulate --verify-diagnostics | filecheck %s

// A kernel without barriers is one phase: block loops, then one loop nest over the threads,
// the ids replaced by the loop variables and sizes by the parameters.
// CHECK-LABEL: func.func @scale(%x: memref<?xf32>, %grid_x: index, %grid_y: index, %grid_z: index, %block_x: index, %block_y: index, %block_z: index) {
// CHECK:         scf.for %bid_z = %c0 to %grid_z step %c1 {
// CHECK-NEXT:      scf.for %bid_y = %c0 to %grid_y step %c1 {
// CHECK-NEXT:        scf.for %bid_x = %c0 to %grid_x step %c1 {
// CHECK-NEXT:          scf.for %tid_z = %c0 to %block_z step %c1 {
// CHECK-NEXT:            scf.for %tid_y = %c0 to %block_y step %c1 {
// CHECK-NEXT:              scf.for %tid_x = %c0 to %block_x step %c1 {
// CHECK-NEXT:                %base = arith.muli %bid_x, %block_x : index
// CHECK-NEXT:                %i = arith.addi %base, %tid_x : index
// CHECK:                     scf.if %in {
// CHECK-NOT:   gpu.
builtin.module {
  "gpu.module"() <{sym_name = "kernels"}> ({
    "gpu.func"() <{function_type = (memref<?xf32>) -> (), kernel}> ({
    ^bb0(%x: memref<?xf32>):
      %c0 = arith.constant 0 : index
      %tid = "gpu.thread_id"() <{dimension = #gpu<dim x>}> : () -> index
      %bid = "gpu.block_id"() <{dimension = #gpu<dim x>}> : () -> index
      %bdim = "gpu.block_dim"() <{dimension = #gpu<dim x>}> : () -> index
      %base = arith.muli %bid, %bdim : index
      %i = arith.addi %base, %tid : index
      %n = memref.dim %x, %c0 : memref<?xf32>
      %in = arith.cmpi ult, %i, %n : index
      scf.if %in {
        %v = memref.load %x[%i] : memref<?xf32>
        %d = arith.addf %v, %v : f32
        memref.store %d, %x[%i] : memref<?xf32>
      }
      "gpu.return"() : () -> ()
    }) {sym_name = "scale"} : () -> ()
  }) : () -> ()
}

// -----

// A block reverses its 32 elements through shared memory: the barrier makes two phases. %i,
// computed in the first, is used in the second: stored into %i_per_thread at the end of each
// thread's first phase, loaded back at the start of its second. The shared tile is a plain
// buffer allocated at the start of each block.
// CHECK-LABEL: func.func @reverse(%x: memref<64xf32>, %grid_x: index, %grid_y: index, %grid_z: index, %block_x: index, %block_y: index, %block_z: index) {
// CHECK:         %threads = arith.muli %{{.*}}, %block_z : index
// CHECK:         %i_per_thread = memref.alloca(%threads) : memref<?xindex>
// CHECK-NEXT:    scf.for %bid_z = %c0 to %grid_z step %c1 {
// CHECK-NEXT:      scf.for %bid_y = %c0 to %grid_y step %c1 {
// CHECK-NEXT:        scf.for %bid_x = %c0 to %grid_x step %c1 {
// CHECK-NEXT:          %tile = memref.alloca() : memref<32xf32>
// The first phase: every thread stores its element.
// CHECK-NEXT:          scf.for %tid_z = %c0 to %block_z step %c1 {
// CHECK-NEXT:            scf.for %tid_y = %c0 to %block_y step %c1 {
// CHECK-NEXT:              scf.for %tid_x = %c0 to %block_x step %c1 {
// CHECK:                     %thread = arith.addi %{{.*}}, %tid_x : index
// CHECK-NEXT:                %base = arith.muli %bid_x, %block_x : index
// CHECK-NEXT:                %i = arith.addi %base, %tid_x : index
// CHECK-NEXT:                %v = memref.load %x[%i] : memref<64xf32>
// CHECK-NEXT:                memref.store %v, %tile[%tid_x] : memref<32xf32>
// CHECK-NEXT:                memref.store %i, %i_per_thread[%thread] : memref<?xindex>
// CHECK-NEXT:              }
// CHECK-NEXT:            }
// CHECK-NEXT:          }
// The second phase, once every thread has stored: read the mirrored element.
// CHECK-NEXT:          scf.for %tid_z_1 = %c0 to %block_z step %c1 {
// CHECK-NEXT:            scf.for %tid_y_1 = %c0 to %block_y step %c1 {
// CHECK-NEXT:              scf.for %tid_x_1 = %c0 to %block_x step %c1 {
// CHECK:                     %thread_1 = arith.addi %{{.*}}, %tid_x_1 : index
// CHECK-NEXT:                %i_1 = memref.load %i_per_thread[%thread_1] : memref<?xindex>
// CHECK-NEXT:                %j = arith.subi %c31, %tid_x_1 : index
// CHECK-NEXT:                %w = memref.load %tile[%j] : memref<32xf32>
// CHECK-NEXT:                memref.store %w, %x[%i_1] : memref<64xf32>
builtin.module {
  "gpu.module"() <{sym_name = "kernels"}> ({
    "gpu.func"() <{function_type = (memref<64xf32>) -> (), kernel}> ({
    ^bb0(%x: memref<64xf32>):
      %tid = "gpu.thread_id"() <{dimension = #gpu<dim x>}> : () -> index
      %bid = "gpu.block_id"() <{dimension = #gpu<dim x>}> : () -> index
      %bdim = "gpu.block_dim"() <{dimension = #gpu<dim x>}> : () -> index
      %base = arith.muli %bid, %bdim : index
      %i = arith.addi %base, %tid : index
      %tile = memref.alloca() : memref<32xf32, 3>
      %v = memref.load %x[%i] : memref<64xf32>
      memref.store %v, %tile[%tid] : memref<32xf32, 3>
      "gpu.barrier"() : () -> ()
      %c31 = arith.constant 31 : index
      %j = arith.subi %c31, %tid : index
      %w = memref.load %tile[%j] : memref<32xf32, 3>
      memref.store %w, %x[%i] : memref<64xf32>
      "gpu.return"() : () -> ()
    }) {sym_name = "reverse"} : () -> ()
  }) : () -> ()
}

// -----

// A barrier inside an scf.for whose bounds are the same for every thread (%n, an argument):
// one loop over the iterations at block level wraps the loop's phases. The carried %sum is a
// per-thread buffer (named after the block argument): the initial value stored before the loop, loaded in the phase that uses
// it, the yielded value stored at the end of the last phase, the loop's result loaded after.
// CHECK-LABEL: func.func @prefix(
// CHECK:         %acc_per_thread = memref.alloca(%threads) : memref<?xf32>
// CHECK:         scf.for %bid_x =
// CHECK-NEXT:      %tile = memref.alloca() : memref<8xf32>
// CHECK:           scf.for %tid_x = %c0 to %block_x step %c1 {
// CHECK:             memref.store %zero, %acc_per_thread[%thread] : memref<?xf32>
// CHECK:           scf.for %s = %c0 to %n step %c1 {
// CHECK-NEXT:        scf.for %tid_z_1 =
// CHECK-NEXT:          scf.for %tid_y_1 =
// CHECK-NEXT:            scf.for %tid_x_1 =
// CHECK-NEXT:              %v = memref.load %x[%tid_x_1] : memref<8xf32>
// CHECK-NEXT:              memref.store %v, %tile[%tid_x_1] : memref<8xf32>
// CHECK:             scf.for %tid_z_2 =
// CHECK-NEXT:          scf.for %tid_y_2 =
// CHECK-NEXT:            scf.for %tid_x_2 =
// CHECK:                   %acc = memref.load %acc_per_thread[%thread_1] : memref<?xf32>
// CHECK:                   %next = arith.addf %acc, %w : f32
// CHECK-NEXT:              memref.store %next, %acc_per_thread[%thread_1] : memref<?xf32>
// CHECK:           scf.for %tid_z_3 =
// CHECK:             %total = memref.load %acc_per_thread[%thread_2] : memref<?xf32>
// CHECK-NEXT:        memref.store %total, %out[%tid_x_3] : memref<8xf32>
builtin.module {
  "gpu.module"() <{sym_name = "kernels"}> ({
    "gpu.func"() <{function_type = (memref<8xf32>, memref<8xf32>, index) -> (), kernel}> ({
    ^bb0(%x: memref<8xf32>, %out: memref<8xf32>, %n: index):
      %c0 = arith.constant 0 : index
      %c1 = arith.constant 1 : index
      %c7 = arith.constant 7 : index
      %zero = arith.constant 0.0 : f32
      %tid = "gpu.thread_id"() <{dimension = #gpu<dim x>}> : () -> index
      %tile = memref.alloca() : memref<8xf32, 3>
      %total = scf.for %s = %c0 to %n step %c1 iter_args(%acc = %zero) -> (f32) {
        %v = memref.load %x[%tid] : memref<8xf32>
        memref.store %v, %tile[%tid] : memref<8xf32, 3>
        "gpu.barrier"() : () -> ()
        %j = arith.subi %c7, %tid : index
        %w = memref.load %tile[%j] : memref<8xf32, 3>
        %next = arith.addf %acc, %w : f32
        "gpu.barrier"() : () -> ()
        scf.yield %next : f32
      }
      memref.store %total, %out[%tid] : memref<8xf32>
      "gpu.return"() : () -> ()
    }) {sym_name = "prefix"} : () -> ()
  }) : () -> ()
}

// -----

// A barrier only some threads reach cannot be emulated (nor run on a GPU): refused.
builtin.module {
  "gpu.module"() <{sym_name = "kernels"}> ({
    "gpu.func"() <{function_type = (memref<64xf32>) -> (), kernel}> ({
    ^bb0(%x: memref<64xf32>):
      %c16 = arith.constant 16 : index
      %tid = "gpu.thread_id"() <{dimension = #gpu<dim x>}> : () -> index
      %lo = arith.cmpi ult, %tid, %c16 : index
      scf.if %lo {
        // expected-error @+1 {{gpu-emulate: a gpu.barrier under an scf.if whose condition depends on the thread id}}
        "gpu.barrier"() : () -> ()
      }
      "gpu.return"() : () -> ()
    }) {sym_name = "divergent"} : () -> ()
  }) : () -> ()
}
