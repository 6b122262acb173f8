// --tile tiles loop nests: one scf.for per tiled loop stepping by its size, the nest on
// memref.subviews, boundary tiles clamped to min(size, extent - iv) (sizes need not divide).
// sizes= applies to every nest (0 keeps a loop whole; missing trailing sizes too); a nest's
// `oi.schedule = {tile = ...}` wins and is consumed; nests without either stay as they are.
//
// RUN: oi-opt %s --split-input-file --tile=sizes=32,32,64 | filecheck %s
// RUN: oi-opt %s --split-input-file --tile=sizes=32,0,64 | filecheck %s --check-prefix=WHOLE
// RUN: oi-opt %s --split-input-file --tile | filecheck %s --check-prefix=SCHEDULE

// CHECK-LABEL: func.func @matmul
// CHECK-DAG:     %[[M:.*]] = memref.dim %a, %{{.*}} : memref<?x?xf32>
// CHECK-DAG:     %[[K:.*]] = memref.dim %a, %{{.*}} : memref<?x?xf32>
// CHECK-DAG:     %[[T32:.*]] = arith.constant 32 : index
// CHECK-DAG:     %[[T64:.*]] = arith.constant 64 : index
// CHECK:         scf.for %[[I:.*]] = %{{.*}} to %[[M]] step %[[T32]] {
// CHECK-NEXT:      scf.for %[[J:.*]] = %{{.*}} to %{{.*}} step %[[TJSTEP:.*]] {
// CHECK-NEXT:        scf.for %[[KK:.*]] = %{{.*}} to %[[K]] step %[[T64]] {
// CHECK-NEXT:          %[[TI:.*]] = affine.min {{.*}}(%[[T32]], %[[M]], %[[I]])
// CHECK-NEXT:          %[[TJ:.*]] = affine.min {{.*}}(%[[TJSTEP]], %{{.*}}, %[[J]])
// CHECK-NEXT:          %[[TK:.*]] = affine.min {{.*}}(%[[T64]], %[[K]], %[[KK]])
// CHECK-NEXT:          memref.subview %a[%[[I]], %[[KK]]] [%[[TI]], %[[TK]]] [1, 1]
// CHECK-NEXT:          memref.subview %b[%[[KK]], %[[J]]] [%[[TK]], %[[TJ]]] [1, 1]
// CHECK-NEXT:          memref.subview %c[%[[I]], %[[J]]] [%[[TI]], %[[TJ]]] [1, 1]
// CHECK-NEXT:          linalg.generic
// CHECK-SAME:            iterator_types = ["parallel", "parallel", "reduction"]
// A dynamic loop kept whole (size 0) is one tile of the whole extent (at least 1, so the loop steps).
// WHOLE-LABEL: func.func @matmul
// WHOLE:         %[[N:.*]] = memref.dim %b, %{{.*}} : memref<?x?xf32>
// WHOLE-NEXT:    %[[STEP:.*]] = arith.maxsi %[[N]], %{{.*}} : index
// WHOLE:         scf.for %{{.*}} = %{{.*}} to %{{.*}} step %[[STEP]] {
// SCHEDULE-LABEL: func.func @matmul
// SCHEDULE-NOT:   scf.for
// SCHEDULE:       linalg.generic
func.func @matmul(%a: memref<?x?xf32>, %b: memref<?x?xf32>, %c: memref<?x?xf32>) {
  linalg.generic {indexing_maps = [affine_map<(i, j, k) -> (i, k)>, affine_map<(i, j, k) -> (k, j)>, affine_map<(i, j, k) -> (i, j)>], iterator_types = ["parallel", "parallel", "reduction"]} ins(%a, %b : memref<?x?xf32>, memref<?x?xf32>) outs(%c : memref<?x?xf32>) {
  ^bb0(%x: f32, %y: f32, %acc: f32):
    %p = arith.mulf %x, %y : f32
    %s = arith.addf %acc, %p : f32
    linalg.yield %s : f32
  }
  func.return
}

// -----

// CHECK-LABEL: func.func @scheduled
// CHECK:         %[[T4:.*]] = arith.constant 4 : index
// CHECK:         scf.for %{{.*}} = %{{.*}} to %{{.*}} step %[[T4]] {
// CHECK-NOT:     oi.schedule
// SCHEDULE-LABEL: func.func @scheduled
// SCHEDULE:       %[[T4:.*]] = arith.constant 4 : index
// SCHEDULE:       scf.for %{{.*}} = %{{.*}} to %{{.*}} step %[[T4]] {
// SCHEDULE:         memref.subview %a[%{{.*}}] [%{{.*}}] [1] : memref<10xf32> to memref<?xf32, strided<[1], offset: ?>>
// SCHEDULE-NOT:   oi.schedule
func.func @scheduled(%a: memref<10xf32>, %b: memref<10xf32>) {
  linalg.generic {indexing_maps = [affine_map<(i) -> (i)>, affine_map<(i) -> (i)>], iterator_types = ["parallel"]} ins(%a : memref<10xf32>) outs(%b : memref<10xf32>) attrs = {oi.schedule = {tile = array<i64: 4>}} {
  ^bb0(%x: f32, %y: f32):
    %s = arith.addf %x, %y : f32
    linalg.yield %s : f32
  }
  func.return
}
