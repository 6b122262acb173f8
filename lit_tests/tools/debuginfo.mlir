// Ops read from .mlir get their own line:col unless the text gives a loc(...);
// a given loc is kept.
//
// RUN: oi-opt %s --mlir-print-debuginfo | filecheck %s

oi.graph @g {
  oi.var volatile @y : f32
  oi.block @entry {
    oi.return loc("elsewhere.oi":42:7)
      oi.barrier
  }
}

// CHECK:      oi.graph @g {
// CHECK-NEXT:   oi.var volatile @y : f32 loc("{{.*}}debuginfo.mlir":7:3)
// CHECK-NEXT:   oi.block @entry {
// CHECK-NEXT:     oi.return loc("elsewhere.oi":42:7)
// CHECK-NEXT:     oi.barrier loc("{{.*}}debuginfo.mlir":10:7)
// CHECK-NEXT:   } loc("{{.*}}debuginfo.mlir":8:3)
// CHECK-NEXT: } loc("{{.*}}debuginfo.mlir":6:1)
