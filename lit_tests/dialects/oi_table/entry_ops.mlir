// A table as a value of its type, and the entry ops on it (dialects/oi_table.py): they print in
// their custom form, with a selection of indices (`%k`) and slices (`%a : %b`), and read back
// unchanged, discardable attributes included. A paged table's type carries its page size
// (`paged 16`); `oi_table.copy_row` takes a source row with a slice of its last index, then a
// destination row (`[]` for a table of one index); a view of a paged table's slice names the
// variable to gather it into when it spans pages (`gather @w`).
//
// RUN: oi-opt %s | filecheck %s
// RUN: oi-opt %s | oi-opt - | filecheck %s
// RUN: oi-opt %s --mlir-print-op-generic | oi-opt - | filecheck %s
// RUN: oi-opt %s --mlir-print-op-generic | filecheck %s --check-prefix=GENERIC

// CHECK-LABEL: func.func @entries(
// CHECK-NEXT:    %K = oi_table.table @K : !oi_table.table<f32[4], [l fixed 2, t], dense>
// CHECK-NEXT:    oi_table.write %K [%k, %t], %src {my.attr} : !oi_table.table<f32[4], [l fixed 2, t], dense>, memref<4xf32>
// CHECK-NEXT:    oi_table.read %K [%k, %a : %b], %dst : !oi_table.table<f32[4], [l fixed 2, t], dense>, memref<?x4xf32>
// CHECK-NEXT:    %v = oi_table.view %K [%a : %b, %t] {x = 1 : i64} : !oi_table.table<f32[4], [l fixed 2, t], dense> -> memref<?x4xf32, strided<[?, 1], offset: ?>>
// CHECK-NEXT:    oi_table.reset %K [%k] : !oi_table.table<f32[4], [l fixed 2, t], dense>
// CHECK-NEXT:    oi_table.reset %K [] : !oi_table.table<f32[4], [l fixed 2, t], dense>
// CHECK-NEXT:    oi_table.reset %K [%k, %t] keep_sizes : !oi_table.table<f32[4], [l fixed 2, t], dense>
// CHECK-NEXT:    oi_table.resize %K {my.attr} : !oi_table.table<f32[4], [l fixed 2, t], dense>
// CHECK-NEXT:    oi_table.copy_row %K [%k, %a : %b] -> [%t] : !oi_table.table<f32[4], [l fixed 2, t], dense>
// CHECK-NEXT:    %P = oi_table.table @P : !oi_table.table<bf16[2, 8], [page], paged 16>
// CHECK-NEXT:    oi_table.copy_row %P [%a : %b] -> [] {my.attr} : !oi_table.table<bf16[2, 8], [page], paged 16>
// CHECK-NEXT:    %Q = oi_table.table @Q : !oi_table.table<f32[4], [s, h fixed 2, t], paged 4>
// CHECK-NEXT:    oi_table.write %Q [%k, %k, %t], %src : !oi_table.table<f32[4], [s, h fixed 2, t], paged 4>, memref<4xf32>
// CHECK-NEXT:    oi_table.copy_row %Q [%k, %t, %a : %b] -> [%t, %k] : !oi_table.table<f32[4], [s, h fixed 2, t], paged 4>
// CHECK-NEXT:    %w = oi_table.view %Q [%k, %k, %a : %b] gather @w {x = 2 : i64} : !oi_table.table<f32[4], [s, h fixed 2, t], paged 4> -> memref<?x4xf32, strided<[4, 1], offset: ?>>
// CHECK-NEXT:    oi_table.commit {my.attr}
// GENERIC:       "oi_table.view"(%K, %a, %b, %t) <{slices = array<i64: 1, 0>}> {x = 1 : i64}
// The source row's indices, the slice's bounds, then the destination row's indices:
// GENERIC:       "oi_table.copy_row"(%K, %k, %a, %b, %t) <{slices = array<i64: 0, 1, 0>}>
// GENERIC:       "oi_table.copy_row"(%P, %a, %b) <{slices = array<i64: 1>}> {my.attr}
// GENERIC:       "oi_table.copy_row"(%Q, %k, %t, %a, %b, %t, %k) <{slices = array<i64: 0, 0, 1, 0, 0>}>
// GENERIC:       "oi_table.view"(%Q, %k, %k, %a, %b) <{slices = array<i64: 0, 0, 1>, gather = @w}> {x = 2 : i64}
func.func @entries(%k: index, %t: index, %a: index, %b: index, %src: memref<4xf32>, %dst: memref<?x4xf32>) {
  %K = oi_table.table @K : !oi_table.table<f32[4], [l fixed 2, t], dense>
  oi_table.write %K [%k, %t], %src {my.attr} : !oi_table.table<f32[4], [l fixed 2, t], dense>, memref<4xf32>
  oi_table.read %K [%k, %a : %b], %dst : !oi_table.table<f32[4], [l fixed 2, t], dense>, memref<?x4xf32>
  %v = oi_table.view %K [%a : %b, %t] {x = 1 : i64} : !oi_table.table<f32[4], [l fixed 2, t], dense> -> memref<?x4xf32, strided<[?, 1], offset: ?>>
  oi_table.reset %K [%k] : !oi_table.table<f32[4], [l fixed 2, t], dense>
  oi_table.reset %K [] : !oi_table.table<f32[4], [l fixed 2, t], dense>
  oi_table.reset %K [%k, %t] keep_sizes : !oi_table.table<f32[4], [l fixed 2, t], dense>
  oi_table.resize %K {my.attr} : !oi_table.table<f32[4], [l fixed 2, t], dense>
  oi_table.copy_row %K [%k, %a : %b] -> [%t] : !oi_table.table<f32[4], [l fixed 2, t], dense>
  %P = oi_table.table @P : !oi_table.table<bf16[2, 8], [page], paged 16>
  oi_table.copy_row %P [%a : %b] -> [] {my.attr} : !oi_table.table<bf16[2, 8], [page], paged 16>
  %Q = oi_table.table @Q : !oi_table.table<f32[4], [s, h fixed 2, t], paged 4>
  oi_table.write %Q [%k, %k, %t], %src : !oi_table.table<f32[4], [s, h fixed 2, t], paged 4>, memref<4xf32>
  oi_table.copy_row %Q [%k, %t, %a : %b] -> [%t, %k] : !oi_table.table<f32[4], [s, h fixed 2, t], paged 4>
  %w = oi_table.view %Q [%k, %k, %a : %b] gather @w {x = 2 : i64} : !oi_table.table<f32[4], [s, h fixed 2, t], paged 4> -> memref<?x4xf32, strided<[4, 1], offset: ?>>
  oi_table.commit {my.attr}
  func.return
}
