// --lower-nests turns each loop nest into scf.for loops (innermost last, in the nest's loop
// order) over memref.load/store, and the affine.min of boundary tiles into arith: the result is
// func/scf/memref/arith only, what the backend takes.
//
// RUN: oi-opt %s --tile=sizes=4 --lower-nests | filecheck %s

// CHECK-LABEL: func.func @sum_rows
// CHECK-NOT:     linalg.
// CHECK-NOT:     affine.
// CHECK:         scf.for %[[I:.*]] = %{{.*}} to %{{.*}} step %[[T4:.*]] {
// CHECK:           %[[NEG:.*]] = arith.muli %[[I]], %{{.*}} : index
// CHECK-NEXT:      %[[LEFT:.*]] = arith.addi %{{.*}}, %[[NEG]] : index
// CHECK-NEXT:      %[[SIZE:.*]] = arith.minsi %[[T4]], %[[LEFT]] : index
// CHECK:           scf.for %[[II:.*]] = %{{.*}} to %{{.*}} step %{{.*}} {
// CHECK-NEXT:        scf.for %[[J:.*]] = %{{.*}} to %{{.*}} step %{{.*}} {
// CHECK-NEXT:          %[[X:.*]] = memref.load %{{.*}}[%[[II]], %[[J]]]
// CHECK-NEXT:          %[[ACC:.*]] = memref.load %{{.*}}[%[[II]]]
// CHECK-NEXT:          %[[S:.*]] = arith.addf %[[ACC]], %[[X]] : f32
// CHECK-NEXT:          memref.store %[[S]], %{{.*}}[%[[II]]]
func.func @sum_rows(%a: memref<?x?xf32>, %out: memref<?xf32>) {
  linalg.generic {indexing_maps = [affine_map<(i, j) -> (i, j)>, affine_map<(i, j) -> (i)>], iterator_types = ["parallel", "reduction"]} ins(%a : memref<?x?xf32>) outs(%out : memref<?xf32>) {
  ^bb0(%x: f32, %acc: f32):
    %s = arith.addf %acc, %x : f32
    linalg.yield %s : f32
  }
  func.return
}
