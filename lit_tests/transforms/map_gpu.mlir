// --map-gpu: a GPU plan's scheduled oi.nest (after --tile, --cache) becomes a kernel. Each loop
// `oi.plan.bind` maps to the grid runs one iteration per block (`gpu.block_id`) or thread
// (`gpu.thread_id`) under an `scf.if (iv < upper)` guard (20 rows in blocks of 8: the third
// block's last rows idle); a SHARED cache is an alloca in memory space 3, filled with its first
// loop strided over the block's 64 threads, between two barriers; the function moves into
// `gpu.module @nest_kernels` as a kernel with its launch (3x3 blocks of 8x8 threads).
//
// RUN: oi-opt %s --split-input-file --verify-diagnostics --tile --cache --map-gpu | filecheck %s
// RUN: oi-opt %s --split-input-file --verify-diagnostics --tile --cache --map-gpu --lower-nests | filecheck %s --check-prefix=LOWERED

// CHECK:      "gpu.module"() <{sym_name = "nest_kernels"}> ({
// CHECK-NEXT:   "gpu.func"() <{function_type = (memref<20x16xf32>, memref<16x24xf32>, memref<20x24xf32>) -> (), kernel}> ({
// CHECK:          %[[CACHE:.*]] = memref.alloca() {oi.cache = "A_cache3", {{.*}} oi.location = "shared", alignment = 16 : i64} : memref<8x8xf32, 3 : i64>
// CHECK:          %[[BY:.*]] = "gpu.block_id"() <{dimension = #gpu<dim y>}> : () -> index
// CHECK-NEXT:     %[[OFF:.*]] = arith.muli %[[BY]], %{{.*}} : index
// CHECK-NEXT:     %i = arith.addi %{{.*}}, %[[OFF]] : index
// CHECK-NEXT:     %[[IN:.*]] = arith.cmpi slt, %i, %{{.*}} : index
// CHECK-NEXT:     scf.if %[[IN]] {
// CHECK:            "gpu.block_id"() <{dimension = #gpu<dim x>}>
// CHECK:            scf.for %k =
// CHECK:              "gpu.barrier"() : () -> ()
// CHECK:              %[[THREADS:.*]] = arith.constant 64 : index
// CHECK:              %[[STRIDE:.*]] = arith.muli %{{.*}}, %[[THREADS]] : index
// CHECK-NEXT:         scf.for %{{.*}} = %{{.*}} to %{{.*}} step %[[STRIDE]] {
// CHECK:                memref.store %{{.*}}, %[[CACHE]][%{{.*}}, %{{.*}}] : memref<8x8xf32, 3 : i64>
// CHECK:              } {oi.cache_fill = "A_cache3"}
// CHECK-NEXT:         "gpu.barrier"() : () -> ()
// CHECK-NEXT:         %[[TY:.*]] = "gpu.thread_id"() <{dimension = #gpu<dim y>}> : () -> index
// CHECK:              scf.if %{{.*}} {
// CHECK:                "gpu.thread_id"() <{dimension = #gpu<dim x>}>
// CHECK:                  memref.load %[[CACHE]]
// CHECK:              }{oi.bound = "thread_y", oi.index = "ii"}
// CHECK:        }) {sym_name = "nest", oi.launch = {grid = [#builtin.int<3>, #builtin.int<3>, #builtin.int<1>], block = [#builtin.int<8>, #builtin.int<8>, #builtin.int<1>]}} : () -> ()

// LOWERED:    "gpu.func"()
// LOWERED-NOT: oi.nest
// LOWERED:    "gpu.return"() : () -> ()

builtin.module {
  func.func @nest(%A: memref<20x16xf32>, %B: memref<16x24xf32>, %C: memref<20x24xf32>) {
    oi.nest domain(i = 20, j = 24, k = 16) arrays(input A = %A : memref<20x16xf32>, input B = %B : memref<16x24xf32>, input_output C = %C : memref<20x24xf32>) {
    ^bb0(%i: index, %j: index, %k: index):
      %0 = memref.load %C[%i, %j] : memref<20x24xf32>
      %1 = memref.load %A[%i, %k] : memref<20x16xf32>
      %2 = memref.load %B[%k, %j] : memref<16x24xf32>
      %3 = arith.mulf %1, %2 fastmath<contract> : f32
      %4 = arith.addf %0, %3 fastmath<contract> : f32
      memref.store %4, %C[%i, %j] : memref<20x24xf32>
    } {oi.schedule = {splits = [["i", "ii", 8 : i64], ["j", "jj", 8 : i64], ["k", "kk", 8 : i64]], order = ["i", "j", "k", "ii", "jj", "kk"]}, oi.plan = {caches = [{name = "A_cache3", source = "A", index = "ii", location = "shared"}], target = {category = "gpu", arch = "sm_80", max_threads_per_block = 1024 : i64}, bind = {i = "block_y", j = "block_x", ii = "thread_y", jj = "thread_x"}}}
    func.return
  }
}

// -----

// Binding an index the logic reduces over: its threads would race on C.
builtin.module {
  func.func @nest(%A: memref<8x8xf32>, %B: memref<8x8xf32>, %C: memref<8x8xf32>) {
    // expected-error @+1 {{bind: the logic reduces over k (every iteration of k updates the same elements of C): bound to the grid, its threads would race}}
    oi.nest domain(i = 8, j = 8, k = 8) arrays(input A = %A : memref<8x8xf32>, input B = %B : memref<8x8xf32>, input_output C = %C : memref<8x8xf32>) {
    ^bb0(%i: index, %j: index, %k: index):
      %0 = memref.load %C[%i, %j] : memref<8x8xf32>
      %1 = memref.load %A[%i, %k] : memref<8x8xf32>
      %2 = memref.load %B[%k, %j] : memref<8x8xf32>
      %3 = arith.mulf %1, %2 : f32
      %4 = arith.addf %0, %3 : f32
      memref.store %4, %C[%i, %j] : memref<8x8xf32>
    } {oi.schedule = {splits = [], order = ["i", "j", "k"]}, oi.plan = {target = {category = "gpu", arch = "sm_80"}, bind = {k = "thread_x"}}}
    func.return
  }
}

// -----

// More threads than a block holds.
builtin.module {
  func.func @nest(%A: memref<64x64xf32>) {
    // expected-error @+1 {{Invalid block size 64x64x1 = 4096 threads. Max threads per block: 1024}}
    oi.nest domain(i = 64, j = 64) arrays(input_output A = %A : memref<64x64xf32>) {
    ^bb0(%i: index, %j: index):
      %0 = memref.load %A[%i, %j] : memref<64x64xf32>
      %1 = arith.addf %0, %0 : f32
      memref.store %1, %A[%i, %j] : memref<64x64xf32>
    } {oi.schedule = {splits = [], order = ["i", "j"]}, oi.plan = {target = {category = "gpu", arch = "sm_80"}, bind = {i = "thread_y", j = "thread_x"}}}
    func.return
  }
}
