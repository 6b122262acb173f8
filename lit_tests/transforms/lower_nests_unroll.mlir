// --lower-nests on scheduled `oi.nest` ops (after --tile): loops marked oi.unroll or
// oi.vectorize whose trip count is a constant are replaced by one copy of their body per
// iteration (the induction variable of copy n is lb + n * step; vectorized loops are unrolled
// the same way and left to LLVM's SLP vectorizer), innermost first, so nested marks multiply.
// A boundary loop whose trip count varies (an affine.min bound) stays a loop. The nest's loops
// then replace the op, and affine.apply/affine.min become arith.
//
// RUN: oi-opt %s --split-input-file --tile --lower-nests | filecheck %s

// unroll(ii) with 4 dividing 8: ii always runs 4 times, so it becomes 4 copies of the logic at
// i, i + 1, i + 2 and i + 3, and only the i loop is left.
// CHECK-LABEL: func.func @unroll
// CHECK-NOT:     oi.nest
// CHECK-NOT:     affine.
// CHECK:         scf.for %[[I:.*]] = %{{.*}} to %{{.*}} step %{{.*}} {
// CHECK-NOT:       scf.for
// CHECK:           %[[A0:.*]] = memref.load %A[%[[I]]] : memref<8xf32>
// CHECK-NEXT:      %[[S0:.*]] = arith.addf %[[A0]], %[[A0]] : f32
// CHECK-NEXT:      memref.store %[[S0]], %A[%[[I]]] : memref<8xf32>
// CHECK-NEXT:      %[[C1:.*]] = arith.constant 1 : index
// CHECK-NEXT:      %[[I1:.*]] = arith.addi %[[I]], %[[C1]] : index
// CHECK-NEXT:      %[[A1:.*]] = memref.load %A[%[[I1]]] : memref<8xf32>
// CHECK-NEXT:      %[[S1:.*]] = arith.addf %[[A1]], %[[A1]] : f32
// CHECK-NEXT:      memref.store %[[S1]], %A[%[[I1]]] : memref<8xf32>
// CHECK-NEXT:      %[[C2:.*]] = arith.constant 2 : index
// CHECK-NEXT:      %[[I2:.*]] = arith.addi %[[I]], %[[C2]] : index
// CHECK-NEXT:      %{{.*}} = memref.load %A[%[[I2]]] : memref<8xf32>
// CHECK:           %[[C3:.*]] = arith.constant 3 : index
// CHECK-NEXT:      %[[I3:.*]] = arith.addi %[[I]], %[[C3]] : index
// CHECK-NEXT:      %{{.*}} = memref.load %A[%[[I3]]] : memref<8xf32>
// CHECK-NEXT:      %{{.*}} = arith.addf
// CHECK-NEXT:      memref.store %{{.*}}, %A[%[[I3]]] : memref<8xf32>
// CHECK-NEXT:    } {oi.index = "i", oi.dim = 0 : i64, oi.span = 8 : i64}
// CHECK-NEXT:    func.return
func.func @unroll(%A: memref<8xf32>) {
  "oi.nest"(%A) <{domain = array<i64: 8>, indices = ["i"], names = ["A"], roles = ["input_output"]}> ({
  ^bb0(%i: index):
    %a = memref.load %A[%i] : memref<8xf32>
    %s = arith.addf %a, %a : f32
    memref.store %s, %A[%i] : memref<8xf32>
  }) {oi.schedule = {splits = [["i", "ii", 4]]}, oi.plan = {unroll = ["ii"]}} : (memref<8xf32>) -> ()
  func.return
}

// -----

// unroll(ii) with 4 not dividing 10: --tile unswitches ii. Where the tile is whole (i + 4 <= 10)
// the copy with the constant trip count is unrolled into 4 copies; the boundary copy, ending at
// min(i + 4, 10), stays a loop (still marked).
// CHECK-LABEL: func.func @unroll_boundary
// CHECK-NOT:     oi.nest
// CHECK:         %[[C10:.*]] = arith.constant 10 : index
// CHECK:         scf.for %[[I:.*]] = %{{.*}} to %[[C10]] step %{{.*}} {
// CHECK:           %[[WHOLE:.*]] = arith.cmpi sle, %{{.*}}, %[[C10]] : index
// CHECK-NEXT:      scf.if %[[WHOLE]] {
// CHECK-NOT:         scf.for
// CHECK:             memref.load %A[%[[I]]] : memref<10xf32>
// CHECK-COUNT-3:     memref.load %A[%{{.*}}] : memref<10xf32>
// CHECK-NOT:         memref.load
// CHECK:           } else {
// CHECK:             %[[END:.*]] = arith.minsi %{{.*}}, %[[C10]] : index
// CHECK-NEXT:        %[[STEP:.*]] = arith.constant 1 : index
// CHECK-NEXT:        scf.for %[[II:.*]] = %[[I]] to %[[END]] step %[[STEP]] {
// CHECK-NEXT:          %[[A:.*]] = memref.load %A[%[[II]]] : memref<10xf32>
// CHECK-NEXT:          %[[S:.*]] = arith.addf %[[A]], %[[A]] : f32
// CHECK-NEXT:          memref.store %[[S]], %A[%[[II]]] : memref<10xf32>
// CHECK-NEXT:        } {oi.index = "ii", oi.dim = 0 : i64, oi.span = 4 : i64, oi.unroll}
// CHECK-NEXT:      }{{ *}}{oi.unswitch = "ii"}
// CHECK-NEXT:    } {oi.index = "i", oi.dim = 0 : i64, oi.span = 10 : i64}
func.func @unroll_boundary(%A: memref<10xf32>) {
  "oi.nest"(%A) <{domain = array<i64: 10>, indices = ["i"], names = ["A"], roles = ["input_output"]}> ({
  ^bb0(%i: index):
    %a = memref.load %A[%i] : memref<10xf32>
    %s = arith.addf %a, %a : f32
    memref.store %s, %A[%i] : memref<10xf32>
  }) {oi.schedule = {splits = [["i", "ii", 4]]}, oi.plan = {unroll = ["ii"]}} : (memref<10xf32>) -> ()
  func.return
}

// -----

// unroll(ii) (2 trips) around vectorize(jj) (4 trips): jj is unrolled first, then ii copies the
// four copies, so the j loop holds 8 copies in ii-major order.
// CHECK-LABEL: func.func @nested_marks
// CHECK:         scf.for %[[I:.*]] = %{{.*}} to %{{.*}} step %{{.*}} {
// CHECK:           scf.for %[[J:.*]] = %{{.*}} to %{{.*}} step %{{.*}} {
// CHECK-NOT:         scf.for
// CHECK:             memref.load %A[%[[I]], %[[J]]] : memref<4x8xf32>
// CHECK-COUNT-3:     memref.load %A[%[[I]], %{{.*}}] : memref<4x8xf32>
// CHECK:             %[[I1:.*]] = arith.addi %[[I]], %{{.*}} : index
// CHECK:             memref.load %A[%[[I1]], %[[J]]] : memref<4x8xf32>
// CHECK-COUNT-3:     memref.load %A[%[[I1]], %{{.*}}] : memref<4x8xf32>
// CHECK-NOT:         memref.load
// CHECK:           } {oi.index = "j", oi.dim = 1 : i64, oi.span = 8 : i64}
func.func @nested_marks(%A: memref<4x8xf32>) {
  "oi.nest"(%A) <{domain = array<i64: 4, 8>, indices = ["i", "j"], names = ["A"], roles = ["input_output"]}> ({
  ^bb0(%i: index, %j: index):
    %a = memref.load %A[%i, %j] : memref<4x8xf32>
    %s = arith.addf %a, %a : f32
    memref.store %s, %A[%i, %j] : memref<4x8xf32>
  }) {oi.schedule = {splits = [["i", "ii", 2], ["j", "jj", 4]], order = ["i", "j", "ii", "jj"]}, oi.plan = {unroll = ["ii"], vectorize = ["jj"]}} : (memref<4x8xf32>) -> ()
  func.return
}
