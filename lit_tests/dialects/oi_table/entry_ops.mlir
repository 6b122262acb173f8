// The table level's entry ops (dialects/oi_table.py) print in their custom form, with a selection
// of indices (`%k`) and slices (`%a : %b`), and read back unchanged, discardable attributes included.
//
// RUN: oi-opt %s | filecheck %s
// RUN: oi-opt %s | oi-opt - | filecheck %s
// RUN: oi-opt %s --mlir-print-op-generic | oi-opt - | filecheck %s
// RUN: oi-opt %s --mlir-print-op-generic | filecheck %s --check-prefix=GENERIC

// CHECK-LABEL: func.func @entries(
// CHECK-NEXT:    oi_table.write @K [%k, %t], %src {my.attr} : memref<4xf32>
// CHECK-NEXT:    oi_table.read @K [%k, %a : %b], %dst : memref<?x4xf32>
// CHECK-NEXT:    %v = oi_table.view @K [%a : %b, %t] {x = 1 : i64} : memref<?x4xf32, strided<[?, 1], offset: ?>>
// CHECK-NEXT:    oi_table.reset @K [%k]
// CHECK-NEXT:    oi_table.reset @K []
// GENERIC:       "oi_table.view"(%a, %b, %t) <{var = @K, slices = array<i64: 1, 0>}> {x = 1 : i64}
func.func @entries(%k: index, %t: index, %a: index, %b: index, %src: memref<4xf32>, %dst: memref<?x4xf32>) {
  oi_table.write @K [%k, %t], %src {my.attr} : memref<4xf32>
  oi_table.read @K [%k, %a : %b], %dst : memref<?x4xf32>
  %v = oi_table.view @K [%a : %b, %t] {x = 1 : i64} : memref<?x4xf32, strided<[?, 1], offset: ?>>
  oi_table.reset @K [%k]
  oi_table.reset @K []
  func.return
}
