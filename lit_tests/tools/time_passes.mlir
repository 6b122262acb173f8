// `--time-passes` reports the time of parsing, verifying and each pass, in run
// order, on stderr; the IR still goes to stdout.
//
// RUN: oi-opt %s --canonicalize --cse --time-passes 2>&1 >%t | filecheck %s
// RUN: filecheck %s --check-prefix=OUT --input-file=%t
// RUN: oi-opt %s --time-passes 2>&1 >%t | filecheck %s --check-prefix=NOPASS

oi.graph @timed {
  oi.var volatile @y : f32
  oi.block @entry {
    oi.return
  }
}

// CHECK:      ===-------------------------------------------------------------------------===
// CHECK-NEXT:                              Execution time report
// CHECK-NEXT: ===-------------------------------------------------------------------------===
// CHECK-NEXT:   Total Execution Time: {{[0-9]+\.[0-9]+}} seconds
// CHECK-EMPTY:
// CHECK-NEXT:    Wall Time  Name
// CHECK-NEXT:      {{[0-9]+\.[0-9]+}} ({{ *[0-9.]+}}%)  parse
// CHECK-NEXT:      {{[0-9]+\.[0-9]+}} ({{ *[0-9.]+}}%)  verify
// CHECK-NEXT:      {{[0-9]+\.[0-9]+}} ({{ *[0-9.]+}}%)  canonicalize
// CHECK-NEXT:      {{[0-9]+\.[0-9]+}} ({{ *[0-9.]+}}%)  cse
// CHECK-NEXT:      {{[0-9]+\.[0-9]+}} (100.0%)  Total
// CHECK-NOT:  oi.graph

// OUT:     oi.graph @timed {
// OUT-NOT: Execution time report

// NOPASS:      Wall Time  Name
// NOPASS-NEXT: parse
// NOPASS-NEXT: verify
// NOPASS-NEXT: Total
