// `-o FILE` writes the printed IR to FILE and nothing to stdout.
//
// RUN: rm -f %t
// RUN: oi-opt %s -o %t | filecheck %s --check-prefix=STDOUT --allow-empty
// RUN: cat %t | filecheck %s
// Input from stdin (`-` or no input) is read as MLIR; `-o -` is stdout; `-t mlir`
// is the default target.
// RUN: oi-opt --output %t.generic --mlir-print-op-generic < %s
// RUN: cat %t.generic | oi-opt - -o - -t mlir | filecheck %s

oi.graph @out {
  oi.var volatile @y : f32
  oi.block @entry {
    oi.return
  }
}

// STDOUT-NOT: oi.graph

// CHECK:      builtin.module {
// CHECK-NEXT:   oi.graph @out {
// CHECK-NEXT:     oi.var volatile @y : f32
// CHECK-NEXT:     oi.block @entry {
// CHECK-NEXT:       oi.return
// CHECK-NEXT:     }
// CHECK-NEXT:   }
// CHECK-NEXT: }
