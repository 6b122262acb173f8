// `oi.cache.save` / `oi.cache.load` (vortex_torch's Save and Load): round trip in the custom and
// generic forms; a save nothing reads survives canonicalize, cse and dce (a side effect).
//
// RUN: oi-opt %s | filecheck %s --match-full-lines
// RUN: oi-opt %s | oi-opt - | filecheck %s --match-full-lines
// RUN: oi-opt %s --mlir-print-op-generic | oi-opt - | filecheck %s --match-full-lines
// RUN: oi-opt %s --canonicalize --cse --dce | filecheck %s --check-prefix=KEPT

oi.graph @fields {
  oi.var dynamic @x : f32[S, 2, 3]
  oi.var volatile @y : f32[P, 2, 3]
  oi.var persistent @F(s) : f32[2, 3] @table
  oi.block @entry {
    oi.cache.load @F -> @y
    oi.cache.save @x -> @F
    oi.return
  }
}

// CHECK:      oi.graph @fields {
// CHECK:          oi.cache.load @F -> @y
// CHECK-NEXT:     oi.cache.save @x -> @F
// CHECK-NEXT:     oi.return

// KEPT: oi.cache.save @x -> @F
