// `--split-input-file` handles each `// -----` chunk on its own; the output keeps
// the chunks apart with `// -----` lines, and round-trips with the flag again.
// A chunk that fails reports its error (with its line in the whole file) and
// the other chunks are still printed; the exit status is then 1.
//
// RUN: oi-opt %s --split-input-file | filecheck %s
// RUN: oi-opt %s --split-input-file | oi-opt - --split-input-file | filecheck %s
// RUN: not oi-opt %S/Inputs/split_with_error.mlir --split-input-file 2>&1 | filecheck %s --check-prefix=ERR
// Without the flag the separators are comments and the graphs share one module.
// RUN: oi-opt %s | filecheck %s --check-prefix=WHOLE

oi.graph @first {
  oi.var volatile @a : f32
  oi.block @entry {
    oi.return
  }
}

// -----

oi.graph @second {
  oi.block @entry {
    oi.barrier
  }
}

// -----

oi.graph @third {
  oi.block @entry {
  }
}

// CHECK:      builtin.module {
// CHECK-NEXT:   oi.graph @first {
// CHECK-NOT:  oi.graph
// CHECK:      {{^}}// -----{{$}}
// CHECK-NEXT: builtin.module {
// CHECK-NEXT:   oi.graph @second {
// CHECK-NOT:  oi.graph
// CHECK:      {{^}}// -----{{$}}
// CHECK-NEXT: builtin.module {
// CHECK-NEXT:   oi.graph @third {
// CHECK-NOT:  // -----

// ERR-DAG:   split_with_error.mlir:12:5: error: unsupported op nope
// ERR-DAG:   oi.graph @ok1
// ERR-DAG:   oi.graph @ok2
// ERR-NOT:   @bad

// WHOLE:      builtin.module {
// WHOLE-NEXT:   oi.graph @first {
// WHOLE:        oi.graph @second {
// WHOLE:        oi.graph @third {
// WHOLE-NOT:  // -----
