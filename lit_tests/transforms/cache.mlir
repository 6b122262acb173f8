// --cache applies the key-slice caches of a scheduled nest's `oi.plan = {caches = [...]}`
// (Accera's plan.cache, ../shared/reference/accera.md 1.6). A cache at loop L (index=, level=
// order[-level], or the outermost loop whose active block fits max_elements) holds the bounding
// box of what one run of L touches; its buffer is allocated at the top of the nest (oi.cache,
// oi.source, oi.index, oi.trigger_index, oi.active_block, oi.movement) and the accesses inside L
// are redirected to it. L and its trigger move outward past loops that do not index the array
// (hoisting). The data movement follows the accesses: read-only copies in (oi.cache_fill right
// before the trigger loop); write-only zero-fills and copies out; accumulate-only zero-fills and
// adds back (oi.cache_writeback right after L); anything else copies in and out. A trigger
// outside L (multicache) gives the buffer one leading dimension per loop in between that indexes
// the array. thrifty=true elides a cache whose block is contiguous in both the source and the
// buffer. A request that breaks one of Accera's rules is reported, with Accera's message and in
// Accera's order, at the nest.
//
// RUN: oi-opt %s --split-input-file --verify-diagnostics --tile --cache | filecheck %s

// A read-only cache at ii (A[ii, kk]: a 4x4 block): the copy nest sits right before ii, inside k,
// copies A[i + c0, k + c1] (rows outer, as A is laid out) and ii's accesses read the buffer at
// (ii - i, kk - k). Nothing is written back.
// CHECK-LABEL: func.func @read_only
// CHECK:         %[[AA:.*]] = memref.alloca() {oi.cache = "AA", oi.source = "A", oi.index = "ii", oi.trigger_index = "ii", oi.active_block = array<i64: 4, 4>, oi.movement = "read", oi.location = "none", alignment = 64 : i64} : memref<4x4xf32>
// CHECK:         scf.for %[[I:.*]] = %{{.*}} to %{{.*}} step %{{.*}} {
// CHECK:           scf.for %[[J:.*]] = %{{.*}} to %{{.*}} step %{{.*}} {
// CHECK:             scf.for %[[K:.*]] = %{{.*}} to %{{.*}} step %{{.*}} {
// CHECK:               %[[ROWS:.*]] = arith.constant {oi.cache_fill = "AA"} 4 : index
// CHECK-NEXT:          %[[COLS:.*]] = arith.constant {oi.cache_fill = "AA"} 4 : index
// CHECK-NEXT:          %[[ZERO:.*]] = arith.constant {oi.cache_fill = "AA"} 0 : index
// CHECK-NEXT:          %[[ONE:.*]] = arith.constant {oi.cache_fill = "AA"} 1 : index
// CHECK-NEXT:          scf.for %[[C0:.*]] = %[[ZERO]] to %[[ROWS]] step %[[ONE]] {
// CHECK-NEXT:            %{{.*}} = arith.constant 1 : index
// CHECK-NEXT:            scf.for %[[C1:.*]] = %[[ZERO]] to %[[COLS]] step %{{.*}} {
// CHECK-NEXT:              %[[R:.*]] = affine.apply affine_map<(d0, d1) -> ((d0 + d1))> (%[[I]], %[[C0]])
// CHECK-NEXT:              %[[COL:.*]] = affine.apply affine_map<(d0, d1) -> ((d0 + d1))> (%[[K]], %[[C1]])
// CHECK-NEXT:              %[[V:.*]] = memref.load %A[%[[R]], %[[COL]]] : memref<16x8xf32>
// CHECK-NEXT:              memref.store %[[V]], %[[AA]][%[[C0]], %[[C1]]] : memref<4x4xf32>
// CHECK-NEXT:            }
// CHECK-NEXT:          } {oi.cache_fill = "AA"}
// CHECK-NEXT:          scf.for %[[II:.*]] = %[[I]] to %{{.*}} step %{{.*}} {
// CHECK:                   scf.for %[[KK:.*]] = %[[K]] to %{{.*}} step %{{.*}} {
// CHECK-NEXT:                %c = memref.load %C[%[[II]], %{{.*}}] : memref<16x16xf32>
// CHECK-NEXT:                %[[X:.*]] = affine.apply affine_map<(d0, d1) -> ((d0 + (d1 * -1)))> (%[[II]], %[[I]])
// CHECK-NEXT:                %[[Y:.*]] = affine.apply affine_map<(d0, d1) -> ((d0 + (d1 * -1)))> (%[[KK]], %[[K]])
// CHECK-NEXT:                %a = memref.load %[[AA]][%[[X]], %[[Y]]] : memref<4x4xf32>
// CHECK-NEXT:                %b = memref.load %B[%[[KK]], %{{.*}}] : memref<8x16xf32>
// CHECK:               } {oi.index = "ii", oi.dim = 0 : i64, oi.span = 4 : i64}
// CHECK-NEXT:        } {oi.index = "k", oi.dim = 2 : i64, oi.span = 8 : i64}
// CHECK-NOT:     oi.cache_writeback
// CHECK:       } {oi.scheduled}
func.func @read_only(%A: memref<16x8xf32>, %B: memref<8x16xf32>, %C: memref<16x16xf32>) {
  "oi.nest"(%A, %B, %C) <{domain = array<i64: 16, 16, 8>, indices = ["i", "j", "k"], names = ["A", "B", "C"], roles = ["input", "input", "input_output"]}> ({
  ^bb0(%i: index, %j: index, %k: index):
    %c = memref.load %C[%i, %j] : memref<16x16xf32>
    %a = memref.load %A[%i, %k] : memref<16x8xf32>
    %b = memref.load %B[%k, %j] : memref<8x16xf32>
    %p = arith.mulf %a, %b : f32
    %s = arith.addf %c, %p : f32
    memref.store %s, %C[%i, %j] : memref<16x16xf32>
  }) {oi.schedule = {splits = [["i", "ii", 4], ["j", "jj", 8], ["k", "kk", 4]], order = ["i", "j", "k", "ii", "jj", "kk"]},
      oi.plan = {caches = [{name = "AA", source = "A", index = "ii"}]}} : (memref<16x8xf32>, memref<8x16xf32>, memref<16x16xf32>) -> ()
  func.return
}

// -----

// Hoisting: cache(C, index=ii) under the k loop, which does not index C, moves out to k
// (oi.index = "k"): the 4x8 block of C stays in the buffer for the whole reduction. C is only
// accumulated into, so the buffer is zero-filled before k and added back to C after k.
// CHECK-LABEL: func.func @hoist_accumulate
// CHECK:         %[[CC:.*]] = memref.alloca() {oi.cache = "CC", oi.source = "C", oi.index = "k", oi.trigger_index = "k", oi.active_block = array<i64: 4, 8>, oi.movement = "accumulate", oi.location = "none", alignment = 64 : i64} : memref<4x8xf32>
// CHECK:         scf.for %[[I:.*]] = %{{.*}} to %{{.*}} step %{{.*}} {
// CHECK:           scf.for %[[J:.*]] = %{{.*}} to %{{.*}} step %{{.*}} {
// CHECK:             %[[ROWS:.*]] = arith.constant {oi.cache_bounds = "CC"} 4 : index
// CHECK-NEXT:        %[[COLS:.*]] = arith.constant {oi.cache_bounds = "CC"} 8 : index
// CHECK:             scf.for %[[C0:.*]] = %{{.*}} to %{{.*}} step %{{.*}} {
// CHECK-NEXT:          %{{.*}} = arith.constant 1 : index
// CHECK-NEXT:          scf.for %[[C1:.*]] = %{{.*}} to %{{.*}} step %{{.*}} {
// CHECK-NEXT:            %[[ZERO:.*]] = arith.constant 0.000000e+00 : f32
// CHECK-NEXT:            memref.store %[[ZERO]], %[[CC]][%[[C0]], %[[C1]]] : memref<4x8xf32>
// CHECK-NEXT:          }
// CHECK-NEXT:        } {oi.cache_fill = "CC"}
// CHECK-NEXT:        scf.for %[[K:.*]] = %{{.*}} to %{{.*}} step %{{.*}} {
// CHECK:                   %c = memref.load %[[CC]][%{{.*}}, %{{.*}}] : memref<4x8xf32>
// CHECK-NOT:               %C[
// CHECK:                   memref.store %s, %[[CC]][%{{.*}}, %{{.*}}] : memref<4x8xf32>
// CHECK:             } {oi.index = "k", oi.dim = 2 : i64, oi.span = 8 : i64}
// CHECK-NEXT:        %[[WZERO:.*]] = arith.constant {oi.cache_writeback = "CC"} 0 : index
// CHECK-NEXT:        %[[WONE:.*]] = arith.constant {oi.cache_writeback = "CC"} 1 : index
// CHECK-NEXT:        scf.for %[[W0:.*]] = %[[WZERO]] to %[[ROWS]] step %[[WONE]] {
// CHECK-NEXT:          %{{.*}} = arith.constant 1 : index
// CHECK-NEXT:          scf.for %[[W1:.*]] = %[[WZERO]] to %[[COLS]] step %{{.*}} {
// CHECK-NEXT:            %[[PART:.*]] = memref.load %[[CC]][%[[W0]], %[[W1]]] : memref<4x8xf32>
// CHECK-NEXT:            %[[R:.*]] = affine.apply affine_map<(d0, d1) -> ((d0 + d1))> (%[[I]], %[[W0]])
// CHECK-NEXT:            %[[COL:.*]] = affine.apply affine_map<(d0, d1) -> ((d0 + d1))> (%[[J]], %[[W1]])
// CHECK-NEXT:            %[[OLD:.*]] = memref.load %C[%[[R]], %[[COL]]] : memref<16x16xf32>
// CHECK-NEXT:            %[[SUM:.*]] = arith.addf %[[OLD]], %[[PART]] : f32
// CHECK-NEXT:            memref.store %[[SUM]], %C[%[[R]], %[[COL]]] : memref<16x16xf32>
// CHECK-NEXT:          }
// CHECK-NEXT:        } {oi.cache_writeback = "CC"}
// CHECK-NEXT:      } {oi.index = "j", oi.dim = 1 : i64, oi.span = 16 : i64}
func.func @hoist_accumulate(%A: memref<16x8xf32>, %B: memref<8x16xf32>, %C: memref<16x16xf32>) {
  "oi.nest"(%A, %B, %C) <{domain = array<i64: 16, 16, 8>, indices = ["i", "j", "k"], names = ["A", "B", "C"], roles = ["input", "input", "input_output"]}> ({
  ^bb0(%i: index, %j: index, %k: index):
    %c = memref.load %C[%i, %j] : memref<16x16xf32>
    %a = memref.load %A[%i, %k] : memref<16x8xf32>
    %b = memref.load %B[%k, %j] : memref<8x16xf32>
    %p = arith.mulf %a, %b : f32
    %s = arith.addf %c, %p : f32
    memref.store %s, %C[%i, %j] : memref<16x16xf32>
  }) {oi.schedule = {splits = [["i", "ii", 4], ["j", "jj", 8], ["k", "kk", 4]], order = ["i", "j", "k", "ii", "jj", "kk"]},
      oi.plan = {caches = [{name = "CC", source = "C", index = "ii"}]}} : (memref<16x8xf32>, memref<8x16xf32>, memref<16x16xf32>) -> ()
  func.return
}

// -----

// A write-only array (B is only stored to): the buffer is zero-filled before ii and copied out
// to B after ii; B is never read.
// CHECK-LABEL: func.func @write_only
// CHECK:         %[[BB:.*]] = memref.alloca() {oi.cache = "BB", oi.source = "B", oi.index = "ii", oi.trigger_index = "ii", oi.active_block = array<i64: 4, 4>, oi.movement = "write", oi.location = "none", alignment = 64 : i64} : memref<4x4xf32>
// CHECK-NOT:     memref.load %B[
// CHECK:         arith.constant 0.000000e+00 : f32
// CHECK-NEXT:    memref.store %{{.*}}, %[[BB]][%{{.*}}, %{{.*}}] : memref<4x4xf32>
// CHECK:         } {oi.cache_fill = "BB"}
// CHECK-NEXT:    scf.for %{{.*}} = %{{.*}} to %{{.*}} step %{{.*}} {
// CHECK:           memref.store %s, %[[BB]][%{{.*}}, %{{.*}}] : memref<4x4xf32>
// CHECK:         } {oi.index = "ii", oi.dim = 0 : i64, oi.span = 4 : i64}
// CHECK-NEXT:    arith.constant {oi.cache_writeback = "BB"} 0 : index
// CHECK-NOT:     memref.load %B[
// CHECK:         %[[V:.*]] = memref.load %[[BB]][%[[W0:.*]], %[[W1:.*]]] : memref<4x4xf32>
// CHECK-NEXT:    %[[R:.*]] = affine.apply affine_map<(d0, d1) -> ((d0 + d1))> (%{{.*}}, %[[W0]])
// CHECK-NEXT:    %[[COL:.*]] = affine.apply affine_map<(d0, d1) -> ((d0 + d1))> (%{{.*}}, %[[W1]])
// CHECK-NEXT:    memref.store %[[V]], %B[%[[R]], %[[COL]]] : memref<16x16xf32>
// CHECK:         } {oi.cache_writeback = "BB"}
func.func @write_only(%A: memref<16x16xf32>, %B: memref<16x16xf32>) {
  "oi.nest"(%A, %B) <{domain = array<i64: 16, 16>, indices = ["i", "j"], names = ["A", "B"], roles = ["input", "input_output"]}> ({
  ^bb0(%i: index, %j: index):
    %a = memref.load %A[%i, %j] : memref<16x16xf32>
    %s = arith.addf %a, %a : f32
    memref.store %s, %B[%i, %j] : memref<16x16xf32>
  }) {oi.schedule = {splits = [["i", "ii", 4], ["j", "jj", 4]], order = ["i", "j", "ii", "jj"]}, oi.plan = {caches = [{name = "BB", source = "B", index = "ii"}]}} : (memref<16x16xf32>, memref<16x16xf32>) -> ()
  func.return
}

// -----

// A read-write array (A = A * A: the load feeds a multiply, not an accumulation): copied in
// before ii and copied out after it.
// CHECK-LABEL: func.func @read_write
// CHECK:         %[[AA:.*]] = memref.alloca() {oi.cache = "AA", oi.source = "A", oi.index = "ii", oi.trigger_index = "ii", oi.active_block = array<i64: 4, 4>, oi.movement = "read_write", oi.location = "none", alignment = 64 : i64} : memref<4x4xf32>
// CHECK:         %[[IN:.*]] = memref.load %A[%{{.*}}, %{{.*}}] : memref<16x16xf32>
// CHECK-NEXT:    memref.store %[[IN]], %[[AA]][%{{.*}}, %{{.*}}] : memref<4x4xf32>
// CHECK:         } {oi.cache_fill = "AA"}
// CHECK-NEXT:    scf.for %{{.*}} = %{{.*}} to %{{.*}} step %{{.*}} {
// CHECK:           %a = memref.load %[[AA]]
// CHECK-NEXT:      %s = arith.mulf %a, %a : f32
// CHECK:           memref.store %s, %[[AA]]
// CHECK:         } {oi.index = "ii", oi.dim = 0 : i64, oi.span = 4 : i64}
// CHECK:         %[[OUT:.*]] = memref.load %[[AA]][%{{.*}}, %{{.*}}] : memref<4x4xf32>
// CHECK-NOT:     arith.addf
// CHECK:         memref.store %[[OUT]], %A[%{{.*}}, %{{.*}}] : memref<16x16xf32>
// CHECK:         } {oi.cache_writeback = "AA"}
func.func @read_write(%A: memref<16x16xf32>) {
  "oi.nest"(%A) <{domain = array<i64: 16, 16>, indices = ["i", "j"], names = ["A"], roles = ["input_output"]}> ({
  ^bb0(%i: index, %j: index):
    %a = memref.load %A[%i, %j] : memref<16x16xf32>
    %s = arith.mulf %a, %a : f32
    memref.store %s, %A[%i, %j] : memref<16x16xf32>
  }) {oi.schedule = {splits = [["i", "ii", 4], ["j", "jj", 4]], order = ["i", "j", "ii", "jj"]}, oi.plan = {caches = [{name = "AA", source = "A", index = "ii"}]}} : (memref<16x16xf32>) -> ()
  func.return
}

// -----

// level=2 is order[-2] = jj; B[kk, jj] does not depend on ii, so the cache moves out to ii: a
// 4x8 block of B (kk over [k, k + 4), jj over [j, j + 8)) filled right before ii.
// CHECK-LABEL: func.func @level
// CHECK:         %[[BB:.*]] = memref.alloca() {oi.cache = "BB", oi.source = "B", oi.index = "ii", oi.trigger_index = "ii", oi.active_block = array<i64: 4, 8>, oi.movement = "read", oi.location = "none", alignment = 64 : i64} : memref<4x8xf32>
// CHECK:           scf.for %[[J:j]] = %{{.*}} to %{{.*}} step %{{.*}} {
// CHECK:             scf.for %[[K:k]] = %{{.*}} to %{{.*}} step %{{.*}} {
// CHECK:                   %[[R:.*]] = affine.apply affine_map<(d0, d1) -> ((d0 + d1))> (%[[K]], %{{.*}})
// CHECK-NEXT:              %[[COL:.*]] = affine.apply affine_map<(d0, d1) -> ((d0 + d1))> (%[[J]], %{{.*}})
// CHECK-NEXT:              %{{.*}} = memref.load %B[%[[R]], %[[COL]]] : memref<8x16xf32>
// CHECK:               } {oi.cache_fill = "BB"}
// CHECK-NEXT:          scf.for %{{.*}} = %{{.*}} to %{{.*}} step %{{.*}} {
// CHECK:                   %b = memref.load %[[BB]][%{{.*}}, %{{.*}}] : memref<4x8xf32>
// CHECK:               } {oi.index = "ii", oi.dim = 0 : i64, oi.span = 4 : i64}
func.func @level(%A: memref<16x8xf32>, %B: memref<8x16xf32>, %C: memref<16x16xf32>) {
  "oi.nest"(%A, %B, %C) <{domain = array<i64: 16, 16, 8>, indices = ["i", "j", "k"], names = ["A", "B", "C"], roles = ["input", "input", "input_output"]}> ({
  ^bb0(%i: index, %j: index, %k: index):
    %c = memref.load %C[%i, %j] : memref<16x16xf32>
    %a = memref.load %A[%i, %k] : memref<16x8xf32>
    %b = memref.load %B[%k, %j] : memref<8x16xf32>
    %p = arith.mulf %a, %b : f32
    %s = arith.addf %c, %p : f32
    memref.store %s, %C[%i, %j] : memref<16x16xf32>
  }) {oi.schedule = {splits = [["i", "ii", 4], ["j", "jj", 8], ["k", "kk", 4]], order = ["i", "j", "k", "ii", "jj", "kk"]},
      oi.plan = {caches = [{name = "BB", source = "B", level = 2}]}} : (memref<16x8xf32>, memref<8x16xf32>, memref<16x16xf32>) -> ()
  func.return
}

// -----

// max_elements=4: A's block is 1x4 at kk and still 1x4 at jj (equal volumes keep climbing), 4x4
// at ii (over budget), so the cache sits at jj, filled right before it inside ii.
// CHECK-LABEL: func.func @budget
// CHECK:         %[[AA:.*]] = memref.alloca() {oi.cache = "AA", oi.source = "A", oi.index = "jj", oi.trigger_index = "jj", oi.active_block = array<i64: 1, 4>, oi.movement = "read", oi.location = "none", alignment = 64 : i64} : memref<1x4xf32>
// CHECK:               scf.for %[[II:ii]] = %{{.*}} to %{{.*}} step %{{.*}} {
// CHECK:                   %[[R:.*]] = affine.apply affine_map<(d0, d1) -> ((d0 + d1))> (%[[II]], %{{.*}})
// CHECK:                   memref.load %A[%[[R]], %{{.*}}] : memref<16x8xf32>
// CHECK:                 } {oi.cache_fill = "AA"}
// CHECK-NEXT:            scf.for %{{.*}} = %{{.*}} to %{{.*}} step %{{.*}} {
// CHECK:                   %a = memref.load %[[AA]][%{{.*}}, %{{.*}}] : memref<1x4xf32>
// CHECK:                 } {oi.index = "jj", oi.dim = 1 : i64, oi.span = 8 : i64}
func.func @budget(%A: memref<16x8xf32>, %B: memref<8x16xf32>, %C: memref<16x16xf32>) {
  "oi.nest"(%A, %B, %C) <{domain = array<i64: 16, 16, 8>, indices = ["i", "j", "k"], names = ["A", "B", "C"], roles = ["input", "input", "input_output"]}> ({
  ^bb0(%i: index, %j: index, %k: index):
    %c = memref.load %C[%i, %j] : memref<16x16xf32>
    %a = memref.load %A[%i, %k] : memref<16x8xf32>
    %b = memref.load %B[%k, %j] : memref<8x16xf32>
    %p = arith.mulf %a, %b : f32
    %s = arith.addf %c, %p : f32
    memref.store %s, %C[%i, %j] : memref<16x16xf32>
  }) {oi.schedule = {splits = [["i", "ii", 4], ["j", "jj", 8], ["k", "kk", 4]], order = ["i", "j", "k", "ii", "jj", "kk"]},
      oi.plan = {caches = [{name = "AA", source = "A", max_elements = 4}]}} : (memref<16x8xf32>, memref<8x16xf32>, memref<16x16xf32>) -> ()
  func.return
}

// -----

// max_elements=2 is less than A's block at the innermost loop (1x4): a 1-trip
// internal_dummy_loop takes the innermost loop's body and the cache holds one element.
// CHECK-LABEL: func.func @budget_dummy
// CHECK:         %[[AA:.*]] = memref.alloca() {oi.cache = "AA", oi.source = "A", oi.index = "internal_dummy_loop", oi.trigger_index = "internal_dummy_loop", oi.active_block = array<i64: 1, 1>, oi.movement = "read", oi.location = "none", alignment = 64 : i64} : memref<1x1xf32>
// CHECK:                   scf.for %[[KK:kk]] = %{{.*}} to %{{.*}} step %{{.*}} {
// CHECK-NEXT:                %[[ZERO:.*]] = arith.constant 0 : index
// CHECK-NEXT:                %[[ONE:.*]] = arith.constant 1 : index
// CHECK-NEXT:                %[[STEP:.*]] = arith.constant 1 : index
// CHECK:                     %{{.*}} = affine.apply affine_map<(d0, d1) -> ((d0 + d1))> (%[[KK]], %{{.*}})
// CHECK:                     memref.store %{{.*}}, %[[AA]][%{{.*}}, %{{.*}}] : memref<1x1xf32>
// CHECK:                   } {oi.cache_fill = "AA"}
// CHECK-NEXT:              scf.for %internal_dummy_loop = %[[ZERO]] to %[[ONE]] step %[[STEP]] {
// CHECK-NEXT:                %c = memref.load %C
// CHECK:                     %a = memref.load %[[AA]][%{{.*}}, %{{.*}}] : memref<1x1xf32>
// CHECK:                   } {oi.index = "internal_dummy_loop"}
// CHECK-NEXT:            } {oi.index = "kk", oi.dim = 2 : i64, oi.span = 4 : i64}
func.func @budget_dummy(%A: memref<16x8xf32>, %B: memref<8x16xf32>, %C: memref<16x16xf32>) {
  "oi.nest"(%A, %B, %C) <{domain = array<i64: 16, 16, 8>, indices = ["i", "j", "k"], names = ["A", "B", "C"], roles = ["input", "input", "input_output"]}> ({
  ^bb0(%i: index, %j: index, %k: index):
    %c = memref.load %C[%i, %j] : memref<16x16xf32>
    %a = memref.load %A[%i, %k] : memref<16x8xf32>
    %b = memref.load %B[%k, %j] : memref<8x16xf32>
    %p = arith.mulf %a, %b : f32
    %s = arith.addf %c, %p : f32
    memref.store %s, %C[%i, %j] : memref<16x16xf32>
  }) {oi.schedule = {splits = [["i", "ii", 4], ["j", "jj", 8], ["k", "kk", 4]], order = ["i", "j", "k", "ii", "jj", "kk"]},
      oi.plan = {caches = [{name = "AA", source = "A", max_elements = 2}]}} : (memref<16x8xf32>, memref<8x16xf32>, memref<16x16xf32>) -> ()
  func.return
}

// -----

// layout=LAST_MAJOR: the buffer is a flat allocation viewed column-major (strides [1, 4]).
// CHECK-LABEL: func.func @last_major
// CHECK:         %[[FLAT:.*]] = memref.alloca() {oi.cache = "AA", {{.*}}oi.active_block = array<i64: 4, 4>{{.*}}} : memref<16xf32>
// CHECK-NEXT:    %[[AA:.*]] = memref.reinterpret_cast %[[FLAT]] to offset: [0], sizes: [4, 4], strides: [1, 4] : memref<16xf32> to memref<4x4xf32, strided<[1, 4]>>
// CHECK:         memref.store %{{.*}}, %[[AA]][%{{.*}}, %{{.*}}] : memref<4x4xf32, strided<[1, 4]>>
// CHECK:         %a = memref.load %[[AA]][%{{.*}}, %{{.*}}] : memref<4x4xf32, strided<[1, 4]>>
func.func @last_major(%A: memref<16x8xf32>, %B: memref<8x16xf32>, %C: memref<16x16xf32>) {
  "oi.nest"(%A, %B, %C) <{domain = array<i64: 16, 16, 8>, indices = ["i", "j", "k"], names = ["A", "B", "C"], roles = ["input", "input", "input_output"]}> ({
  ^bb0(%i: index, %j: index, %k: index):
    %c = memref.load %C[%i, %j] : memref<16x16xf32>
    %a = memref.load %A[%i, %k] : memref<16x8xf32>
    %b = memref.load %B[%k, %j] : memref<8x16xf32>
    %p = arith.mulf %a, %b : f32
    %s = arith.addf %c, %p : f32
    memref.store %s, %C[%i, %j] : memref<16x16xf32>
  }) {oi.schedule = {splits = [["i", "ii", 4], ["j", "jj", 8], ["k", "kk", 4]], order = ["i", "j", "k", "ii", "jj", "kk"]},
      oi.plan = {caches = [{name = "AA", source = "A", index = "ii", layout = "last_major"}]}} : (memref<16x8xf32>, memref<8x16xf32>, memref<16x16xf32>) -> ()
  func.return
}

// -----

// thrifty, elided: the cache at k (hoisted to j) would hold rows [i, i + 4) of A whole, a
// contiguous 4x8 block that the buffer would walk in the same order, so there is no buffer and
// no copy, and the accesses keep reading A.
// CHECK-LABEL: func.func @thrifty_elided
// CHECK-NOT:     memref.alloca
// CHECK-NOT:     oi.cache
// CHECK:         %a = memref.load %A[%{{.*}}, %{{.*}}] : memref<16x8xf32>
// CHECK-NOT:     oi.cache
// CHECK:         func.return
func.func @thrifty_elided(%A: memref<16x8xf32>, %B: memref<8x16xf32>, %C: memref<16x16xf32>) {
  "oi.nest"(%A, %B, %C) <{domain = array<i64: 16, 16, 8>, indices = ["i", "j", "k"], names = ["A", "B", "C"], roles = ["input", "input", "input_output"]}> ({
  ^bb0(%i: index, %j: index, %k: index):
    %c = memref.load %C[%i, %j] : memref<16x16xf32>
    %a = memref.load %A[%i, %k] : memref<16x8xf32>
    %b = memref.load %B[%k, %j] : memref<8x16xf32>
    %p = arith.mulf %a, %b : f32
    %s = arith.addf %c, %p : f32
    memref.store %s, %C[%i, %j] : memref<16x16xf32>
  }) {oi.schedule = {splits = [["i", "ii", 4], ["j", "jj", 8], ["k", "kk", 4]], order = ["i", "j", "k", "ii", "jj", "kk"]},
      oi.plan = {caches = [{name = "AA", source = "A", index = "k", thrifty = true}]}} : (memref<16x8xf32>, memref<8x16xf32>, memref<16x16xf32>) -> ()
  func.return
}

// -----

// thrifty, kept: the 4x4 block at ii is four pieces of rows 8 apart in A, so the cache stays.
// CHECK-LABEL: func.func @thrifty_kept
// CHECK:         %[[AA:.*]] = memref.alloca() {oi.cache = "AA", {{.*}}oi.active_block = array<i64: 4, 4>{{.*}}} : memref<4x4xf32>
// CHECK:         } {oi.cache_fill = "AA"}
// CHECK:         %a = memref.load %[[AA]][%{{.*}}, %{{.*}}] : memref<4x4xf32>
func.func @thrifty_kept(%A: memref<16x8xf32>, %B: memref<8x16xf32>, %C: memref<16x16xf32>) {
  "oi.nest"(%A, %B, %C) <{domain = array<i64: 16, 16, 8>, indices = ["i", "j", "k"], names = ["A", "B", "C"], roles = ["input", "input", "input_output"]}> ({
  ^bb0(%i: index, %j: index, %k: index):
    %c = memref.load %C[%i, %j] : memref<16x16xf32>
    %a = memref.load %A[%i, %k] : memref<16x8xf32>
    %b = memref.load %B[%k, %j] : memref<8x16xf32>
    %p = arith.mulf %a, %b : f32
    %s = arith.addf %c, %p : f32
    memref.store %s, %C[%i, %j] : memref<16x16xf32>
  }) {oi.schedule = {splits = [["i", "ii", 4], ["j", "jj", 8], ["k", "kk", 4]], order = ["i", "j", "k", "ii", "jj", "kk"]},
      oi.plan = {caches = [{name = "AA", source = "A", index = "ii", thrifty = true}]}} : (memref<16x8xf32>, memref<8x16xf32>, memref<16x16xf32>) -> ()
  func.return
}

// -----

// Multicaching: cache(B, index=kk, trigger_index=k). The block at kk is 4x1 (B[kk, jj]); the
// loops from k down to kk's parent that index B (k: 2 trips, jj: 8 trips) become leading
// dimensions, so the buffer is 2x8x4x1. The fill before k walks k and jj (k_mc, jj_mc) and
// stores at their counters (iv - lb) floordiv step; kk's accesses use the same counters.
// CHECK-LABEL: func.func @multicache
// CHECK:         %[[BB:.*]] = memref.alloca() {oi.cache = "BB", oi.source = "B", oi.index = "kk", oi.trigger_index = "k", oi.active_block = array<i64: 4, 1>, oi.movement = "read", oi.location = "none", alignment = 64 : i64} : memref<2x8x4x1xf32>
// CHECK:           scf.for %[[J:j]] = %{{.*}} to %{{.*}} step %{{.*}} {
// CHECK:             %[[LB:.*]] = arith.constant {oi.cache_fill = "BB"} 0 : index
// CHECK-NEXT:        %[[UB:.*]] = arith.constant {oi.cache_fill = "BB"} 8 : index
// CHECK-NEXT:        %[[STEP:.*]] = arith.constant {oi.cache_fill = "BB"} 4 : index
// CHECK-NEXT:        scf.for %[[KMC:.*]] = %[[LB]] to %[[UB]] step %[[STEP]] {
// CHECK-NEXT:          %[[KLB:.*]] = arith.constant 0 : index
// CHECK-NEXT:          %[[N0:.*]] = affine.apply affine_map<(d0, d1) -> (((d0 + (d1 * -1)) floordiv 4))> (%[[KMC]], %[[KLB]])
// CHECK-NEXT:          %[[JEND:.*]] = affine.apply affine_map<(d0) -> ((d0 + 8))> (%[[J]])
// CHECK-NEXT:          %{{.*}} = arith.constant 1 : index
// CHECK-NEXT:          scf.for %[[JJMC:.*]] = %[[J]] to %[[JEND]] step %{{.*}} {
// CHECK-NEXT:            %[[N1:.*]] = affine.apply affine_map<(d0, d1) -> (((d0 + (d1 * -1)) floordiv 1))> (%[[JJMC]], %[[J]])
// CHECK:                 scf.for %[[C0:.*]] = %{{.*}} to %{{.*}} step %{{.*}} {
// CHECK:                   scf.for %[[C1:.*]] = %{{.*}} to %{{.*}} step %{{.*}} {
// CHECK-NEXT:                %[[R:.*]] = affine.apply affine_map<(d0, d1) -> ((d0 + d1))> (%[[KMC]], %[[C0]])
// CHECK-NEXT:                %[[COL:.*]] = affine.apply affine_map<(d0, d1) -> ((d0 + d1))> (%[[JJMC]], %[[C1]])
// CHECK-NEXT:                %[[V:.*]] = memref.load %B[%[[R]], %[[COL]]] : memref<8x16xf32>
// CHECK-NEXT:                memref.store %[[V]], %[[BB]][%[[N0]], %[[N1]], %[[C0]], %[[C1]]] : memref<2x8x4x1xf32>
// CHECK:             } {oi.cache_fill = "BB"}
// CHECK-NEXT:        scf.for %[[K:.*]] = %{{.*}} to %{{.*}} step %{{.*}} {
// CHECK:                 scf.for %[[JJ:.*]] = %[[J]] to %{{.*}} step %{{.*}} {
// CHECK:                   %[[M0:.*]] = affine.apply affine_map<(d0, d1) -> (((d0 + (d1 * -1)) floordiv 4))> (%[[K]], %{{.*}})
// CHECK-NEXT:              %[[M1:.*]] = affine.apply affine_map<(d0, d1) -> (((d0 + (d1 * -1)) floordiv 1))> (%[[JJ]], %[[J]])
// CHECK:                   scf.for %[[KK:.*]] = %[[K]] to %{{.*}} step %{{.*}} {
// CHECK:                     %[[X:.*]] = affine.apply affine_map<(d0, d1) -> ((d0 + (d1 * -1)))> (%[[KK]], %[[K]])
// CHECK-NEXT:                %[[Z:.*]] = arith.constant 0 : index
// CHECK-NEXT:                %b = memref.load %[[BB]][%[[M0]], %[[M1]], %[[X]], %[[Z]]] : memref<2x8x4x1xf32>
func.func @multicache(%A: memref<16x8xf32>, %B: memref<8x16xf32>, %C: memref<16x16xf32>) {
  "oi.nest"(%A, %B, %C) <{domain = array<i64: 16, 16, 8>, indices = ["i", "j", "k"], names = ["A", "B", "C"], roles = ["input", "input", "input_output"]}> ({
  ^bb0(%i: index, %j: index, %k: index):
    %c = memref.load %C[%i, %j] : memref<16x16xf32>
    %a = memref.load %A[%i, %k] : memref<16x8xf32>
    %b = memref.load %B[%k, %j] : memref<8x16xf32>
    %p = arith.mulf %a, %b : f32
    %s = arith.addf %c, %p : f32
    memref.store %s, %C[%i, %j] : memref<16x16xf32>
  }) {oi.schedule = {splits = [["i", "ii", 4], ["j", "jj", 8], ["k", "kk", 4]], order = ["i", "j", "k", "ii", "jj", "kk"]},
      oi.plan = {caches = [{name = "BB", source = "B", index = "kk", trigger_index = "k"}]}} : (memref<16x8xf32>, memref<8x16xf32>, memref<16x16xf32>) -> ()
  func.return
}

// -----

// Hierarchical caches: AA caches A at k (hoisted to j: rows [i, i + 4), all 8 columns) and AAA
// caches AA at ii: AAA's fill, right before ii, reads AA (not A) at (c0, k + c1), and the
// logic reads AAA.
// CHECK-LABEL: func.func @hierarchical
// CHECK-DAG:     %[[AAA:.*]] = memref.alloca() {oi.cache = "AAA", oi.source = "AA", oi.index = "ii", oi.trigger_index = "ii", oi.active_block = array<i64: 4, 4>, oi.movement = "read", oi.location = "none", alignment = 64 : i64} : memref<4x4xf32>
// CHECK-DAG:     %[[AA:.*]] = memref.alloca() {oi.cache = "AA", oi.source = "A", oi.index = "j", oi.trigger_index = "j", oi.active_block = array<i64: 4, 8>, oi.movement = "read", oi.location = "none", alignment = 64 : i64} : memref<4x8xf32>
// CHECK:         scf.for %{{.*}} = %{{.*}} to %{{.*}} step %{{.*}} {
// CHECK:               %[[V:.*]] = memref.load %A[%{{.*}}, %{{.*}}] : memref<16x8xf32>
// CHECK-NEXT:          memref.store %[[V]], %[[AA]][%{{.*}}, %{{.*}}] : memref<4x8xf32>
// CHECK:           } {oi.cache_fill = "AA"}
// CHECK-NEXT:      scf.for %{{.*}} = %{{.*}} to %{{.*}} step %{{.*}} {
// CHECK-NEXT:        %{{.*}} = arith.constant 0 : index
// CHECK-NEXT:        %{{.*}} = arith.constant 8 : index
// CHECK-NEXT:        %{{.*}} = arith.constant 4 : index
// CHECK-NEXT:        scf.for %[[K:.*]] = %{{.*}} to %{{.*}} step %{{.*}} {
// CHECK:               scf.for %[[C0:.*]] = %{{.*}} to %{{.*}} step %{{.*}} {
// CHECK:                 scf.for %[[C1:.*]] = %{{.*}} to %{{.*}} step %{{.*}} {
// CHECK-NEXT:              %[[COL:.*]] = affine.apply affine_map<(d0, d1) -> ((d0 + d1))> (%[[K]], %[[C1]])
// CHECK-NEXT:              %[[W:.*]] = memref.load %[[AA]][%[[C0]], %[[COL]]] : memref<4x8xf32>
// CHECK-NEXT:              memref.store %[[W]], %[[AAA]][%[[C0]], %[[C1]]] : memref<4x4xf32>
// CHECK:             } {oi.cache_fill = "AAA"}
// CHECK-NEXT:        scf.for %{{.*}} = %{{.*}} to %{{.*}} step %{{.*}} {
// CHECK-NOT:           memref.load %[[AA]][
// CHECK:               %a = memref.load %[[AAA]][%{{.*}}, %{{.*}}] : memref<4x4xf32>
func.func @hierarchical(%A: memref<16x8xf32>, %B: memref<8x16xf32>, %C: memref<16x16xf32>) {
  "oi.nest"(%A, %B, %C) <{domain = array<i64: 16, 16, 8>, indices = ["i", "j", "k"], names = ["A", "B", "C"], roles = ["input", "input", "input_output"]}> ({
  ^bb0(%i: index, %j: index, %k: index):
    %c = memref.load %C[%i, %j] : memref<16x16xf32>
    %a = memref.load %A[%i, %k] : memref<16x8xf32>
    %b = memref.load %B[%k, %j] : memref<8x16xf32>
    %p = arith.mulf %a, %b : f32
    %s = arith.addf %c, %p : f32
    memref.store %s, %C[%i, %j] : memref<16x16xf32>
  }) {oi.schedule = {splits = [["i", "ii", 4], ["j", "jj", 8], ["k", "kk", 4]], order = ["i", "j", "k", "ii", "jj", "kk"]},
      oi.plan = {caches = [{name = "AA", source = "A", index = "k"}, {name = "AAA", source = "AA", index = "ii"}]}} : (memref<16x8xf32>, memref<8x16xf32>, memref<16x16xf32>) -> ()
  func.return
}

// -----

// The block is the bounding box of all accesses: A[ii] and A[ii + 1] give 5 elements. At the
// boundary tile (4 does not divide 10) the copy walks min(i + 4, 10) - i + 1 of them.
// CHECK-LABEL: func.func @halo
// CHECK:         %[[AA:.*]] = memref.alloca() {{{.*}}oi.active_block = array<i64: 5>{{.*}}} : memref<5xf32>
// CHECK:         scf.for %[[I:.*]] = %{{.*}} to %{{.*}} step %{{.*}} {
// CHECK-NEXT:      %[[END:.*]] = affine.min affine_map<(d0, d1) -> ((d0 + 4), d1)> (%[[I]], %{{.*}})
// CHECK:           %[[N:.*]] = affine.apply affine_map<(d0, d1) -> (((d0 + 1) + (d1 * -1)))> (%[[END]], %[[I]])
// CHECK-NEXT:      %[[ZERO:.*]] = arith.constant {oi.cache_fill = "AA"} 0 : index
// CHECK-NEXT:      %[[ONE:.*]] = arith.constant {oi.cache_fill = "AA"} 1 : index
// CHECK-NEXT:      scf.for %[[C0:.*]] = %[[ZERO]] to %[[N]] step %[[ONE]] {
// CHECK:           } {oi.cache_fill = "AA"}
// CHECK-NEXT:      scf.for %[[II:.*]] = %[[I]] to %[[END]] step %{{.*}} {
// CHECK:             %[[X:.*]] = affine.apply affine_map<(d0, d1) -> ((d0 + (d1 * -1)))> (%[[II]], %[[I]])
// CHECK-NEXT:        %a = memref.load %[[AA]][%[[X]]] : memref<5xf32>
// CHECK-NEXT:        %[[Y:.*]] = affine.apply affine_map<(d0, d1) -> (((d0 + 1) + (d1 * -1)))> (%[[II]], %[[I]])
// CHECK-NEXT:        %b = memref.load %[[AA]][%[[Y]]] : memref<5xf32>
func.func @halo(%A: memref<11xf32>, %B: memref<10xf32>) {
  "oi.nest"(%A, %B) <{domain = array<i64: 10>, indices = ["i"], names = ["A", "B"], roles = ["input", "input_output"]}> ({
  ^bb0(%i: index):
    %i1 = affine.apply affine_map<(d0) -> (d0 + 1)> (%i)
    %a = memref.load %A[%i] : memref<11xf32>
    %b = memref.load %A[%i1] : memref<11xf32>
    %s = arith.addf %a, %b : f32
    memref.store %s, %B[%i] : memref<10xf32>
  }) {oi.schedule = {splits = [["i", "ii", 4]]}, oi.plan = {caches = [{name = "AA", source = "A", index = "ii"}]}} : (memref<11xf32>, memref<10xf32>) -> ()
  func.return
}

// -----

// index= and level= together.
func.func @one_of(%A: memref<16x16xf32>, %B: memref<16x16xf32>) {
  // expected-error @+1 {{Specify one and only one of index, level, or max_elements}}
  "oi.nest"(%A, %B) <{domain = array<i64: 16, 16>, indices = ["i", "j"], names = ["A", "B"], roles = ["input", "input_output"]}> ({
  ^bb0(%i: index, %j: index):
    %a = memref.load %A[%i, %j] : memref<16x16xf32>
    %s = arith.addf %a, %a : f32
    memref.store %s, %B[%i, %j] : memref<16x16xf32>
  }) {oi.schedule = {splits = [["i", "ii", 4], ["j", "jj", 4]], order = ["i", "j", "ii", "jj"]}, oi.plan = {caches = [{name = "AA", source = "A", index = "ii", level = 2}]}} : (memref<16x16xf32>, memref<16x16xf32>) -> ()
  func.return
}

// -----

// A budget of 0 elements.
func.func @budget_zero(%A: memref<16x16xf32>, %B: memref<16x16xf32>) {
  // expected-error @+1 {{Max element count specified as a cache budget must be greater than 0}}
  "oi.nest"(%A, %B) <{domain = array<i64: 16, 16>, indices = ["i", "j"], names = ["A", "B"], roles = ["input", "input_output"]}> ({
  ^bb0(%i: index, %j: index):
    %a = memref.load %A[%i, %j] : memref<16x16xf32>
    %s = arith.addf %a, %a : f32
    memref.store %s, %B[%i, %j] : memref<16x16xf32>
  }) {oi.schedule = {splits = [["i", "ii", 4], ["j", "jj", 4]], order = ["i", "j", "ii", "jj"]}, oi.plan = {caches = [{name = "AA", source = "A", max_elements = 0}]}} : (memref<16x16xf32>, memref<16x16xf32>) -> ()
  func.return
}

// -----

// double_buffer on an INPUT_OUTPUT array.
func.func @double_buffer_output(%A: memref<16x16xf32>, %B: memref<16x16xf32>) {
  // expected-error @+1 {{Double-buffering is only supported for CONST and INPUT arrays}}
  "oi.nest"(%A, %B) <{domain = array<i64: 16, 16>, indices = ["i", "j"], names = ["A", "B"], roles = ["input", "input_output"]}> ({
  ^bb0(%i: index, %j: index):
    %a = memref.load %A[%i, %j] : memref<16x16xf32>
    %s = arith.addf %a, %a : f32
    memref.store %s, %B[%i, %j] : memref<16x16xf32>
  }) {oi.schedule = {splits = [["i", "ii", 4], ["j", "jj", 4]], order = ["i", "j", "ii", "jj"]}, oi.plan = {caches = [{name = "BB", source = "B", index = "ii", double_buffer = true}]}} : (memref<16x16xf32>, memref<16x16xf32>) -> ()
  func.return
}

// -----

// A trigger_index on an INPUT_OUTPUT array.
func.func @multicache_output(%A: memref<16x16xf32>, %B: memref<16x16xf32>) {
  // expected-error @+1 {{Multicaching is only supported for CONST and INPUT arrays}}
  "oi.nest"(%A, %B) <{domain = array<i64: 16, 16>, indices = ["i", "j"], names = ["A", "B"], roles = ["input", "input_output"]}> ({
  ^bb0(%i: index, %j: index):
    %a = memref.load %A[%i, %j] : memref<16x16xf32>
    %s = arith.addf %a, %a : f32
    memref.store %s, %B[%i, %j] : memref<16x16xf32>
  }) {oi.schedule = {splits = [["i", "ii", 4], ["j", "jj", 4]], order = ["i", "j", "ii", "jj"]}, oi.plan = {caches = [{name = "BB", source = "B", index = "ii", trigger_index = "j"}]}} : (memref<16x16xf32>, memref<16x16xf32>) -> ()
  func.return
}

// -----

// Both of the last two: Accera checks double_buffer first.
func.func @rule_order(%A: memref<16x16xf32>, %B: memref<16x16xf32>) {
  // expected-error @+1 {{Double-buffering is only supported for CONST and INPUT arrays}}
  "oi.nest"(%A, %B) <{domain = array<i64: 16, 16>, indices = ["i", "j"], names = ["A", "B"], roles = ["input", "input_output"]}> ({
  ^bb0(%i: index, %j: index):
    %a = memref.load %A[%i, %j] : memref<16x16xf32>
    %s = arith.addf %a, %a : f32
    memref.store %s, %B[%i, %j] : memref<16x16xf32>
  }) {oi.schedule = {splits = [["i", "ii", 4], ["j", "jj", 4]], order = ["i", "j", "ii", "jj"]}, oi.plan = {caches = [{name = "BB", source = "B", index = "ii", trigger_index = "j", double_buffer = true}]}} : (memref<16x16xf32>, memref<16x16xf32>) -> ()
  func.return
}

// -----

// index= with level= and double_buffer on an INPUT_OUTPUT array: the index/level rule comes first.
func.func @one_of_first(%A: memref<16x16xf32>, %B: memref<16x16xf32>) {
  // expected-error @+1 {{Specify one and only one of index, level, or max_elements}}
  "oi.nest"(%A, %B) <{domain = array<i64: 16, 16>, indices = ["i", "j"], names = ["A", "B"], roles = ["input", "input_output"]}> ({
  ^bb0(%i: index, %j: index):
    %a = memref.load %A[%i, %j] : memref<16x16xf32>
    %s = arith.addf %a, %a : f32
    memref.store %s, %B[%i, %j] : memref<16x16xf32>
  }) {oi.schedule = {splits = [["i", "ii", 4], ["j", "jj", 4]], order = ["i", "j", "ii", "jj"]}, oi.plan = {caches = [{name = "BB", source = "B", index = "ii", level = 2, double_buffer = true}]}} : (memref<16x16xf32>, memref<16x16xf32>) -> ()
  func.return
}

// -----

// A trigger loop inside the cache loop.
func.func @trigger_inside(%A: memref<16x16xf32>, %B: memref<16x16xf32>) {
  // expected-error @+1 {{Cache level must be less than or equal to the cache trigger level}}
  "oi.nest"(%A, %B) <{domain = array<i64: 16, 16>, indices = ["i", "j"], names = ["A", "B"], roles = ["input", "input_output"]}> ({
  ^bb0(%i: index, %j: index):
    %a = memref.load %A[%i, %j] : memref<16x16xf32>
    %s = arith.addf %a, %a : f32
    memref.store %s, %B[%i, %j] : memref<16x16xf32>
  }) {oi.schedule = {splits = [["i", "ii", 4], ["j", "jj", 4]], order = ["i", "j", "ii", "jj"]}, oi.plan = {caches = [{name = "AA", source = "A", index = "i", trigger_index = "ii"}]}} : (memref<16x16xf32>, memref<16x16xf32>) -> ()
  func.return
}

// -----

// A cache of a cache placed outside it (j is outside ii).
func.func @hierarchical_level(%A: memref<16x16xf32>, %B: memref<16x16xf32>) {
  // expected-error @+1 {{Outer cache for a hierarchical cache must have a higher cache level than inner cache}}
  "oi.nest"(%A, %B) <{domain = array<i64: 16, 16>, indices = ["i", "j"], names = ["A", "B"], roles = ["input", "input_output"]}> ({
  ^bb0(%i: index, %j: index):
    %a = memref.load %A[%i, %j] : memref<16x16xf32>
    %s = arith.addf %a, %a : f32
    memref.store %s, %B[%i, %j] : memref<16x16xf32>
  }) {oi.schedule = {splits = [["i", "ii", 4], ["j", "jj", 4]], order = ["i", "j", "ii", "jj"]}, oi.plan = {caches = [{name = "AA", source = "A", index = "ii"}, {name = "AAA", source = "AA", index = "j"}]}} : (memref<16x16xf32>, memref<16x16xf32>) -> ()
  func.return
}
