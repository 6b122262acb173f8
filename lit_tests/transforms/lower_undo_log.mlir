// --lower-undo-log: each `oi_table.journal @K "data" [%offset, %nbytes]` becomes a call of the
// shared `@oi_log(state, word, offset, nbytes)` (added to the module when missing), whose
// non-zero code leaves the step; the word is where --assign-state-slots placed K's data.
// `oi_table.commit` (where the step returns 0) empties the log: its record count (word 8) and the
// used bytes of its two byte areas (words 11, and 15 for device data on cuda) back to 0.
//
// RUN: oi-opt %s --split-input-file --verify-diagnostics --lower-undo-log | filecheck %s

// CHECK-LABEL: func.func @step(
// CHECK-SAME:      %[[S:.*]]: memref<?xi64>, %[[OFF:.*]]: index, %[[N:.*]]: index) -> i32 {
// CHECK-NEXT:    %[[WORD:.*]] = arith.constant 15 : index
// CHECK-NEXT:    %[[OK:.*]] = arith.constant 0 : i32
// CHECK-NEXT:    %[[CODE:.*]] = func.call @oi_log(%[[S]], %[[WORD]], %[[OFF]], %[[N]]) : (memref<?xi64>, index, index, index) -> i32
// CHECK-NEXT:    %[[FAILED:.*]] = arith.cmpi ne, %[[CODE]], %[[OK]] : i32
// CHECK-NEXT:    scf.if %[[FAILED]] {
// CHECK-NEXT:      oi.step_exit %[[CODE]] : i32
// CHECK-NEXT:    }
// CHECK:       func.func private @oi_log(
builtin.module attributes {oi_table.state_layout = #oi_table.layout<words 19, block "entry", [
    #oi_table.var<@x buffer volatile f32[4] slot 13>, #oi_table.var<@t buffer persistent i32[] slot 14, init 0>,
    #oi_table.var<@K table persistent f32[4] slot 15, indices [p], storage dense>]>} {
  func.func @step(%s: memref<?xi64>, %off: index, %n: index) -> i32 {
    oi_table.journal @K "data" [%off, %n]
    %0 = arith.constant 0 : i32
    func.return %0 : i32
  }
}

// -----

// CHECK-LABEL: func.func @commit(
// CHECK-SAME:      %[[S:.*]]: memref<?xi64>) -> i32 {
// CHECK-NEXT:    %[[ZERO:.*]] = arith.constant 0 : i64
// CHECK-NEXT:    %[[COUNT:.*]] = arith.constant 8 : index
// CHECK-NEXT:    %[[USED:.*]] = arith.constant 11 : index
// CHECK-NEXT:    %[[DEVICE_USED:.*]] = arith.constant 15 : index
// CHECK-NEXT:    memref.store %[[ZERO]], %[[S]][%[[COUNT]]] : memref<?xi64>
// CHECK-NEXT:    memref.store %[[ZERO]], %[[S]][%[[USED]]] : memref<?xi64>
// CHECK-NEXT:    memref.store %[[ZERO]], %[[S]][%[[DEVICE_USED]]] : memref<?xi64>
// CHECK-NOT:   @oi_log
builtin.module {
  func.func @commit(%s: memref<?xi64>) -> i32 {
    oi_table.commit
    %0 = arith.constant 0 : i32
    func.return %0 : i32
  }
}

// -----

builtin.module {
  func.func @step(%s: memref<?xi64>, %off: index, %n: index) -> i32 {
    // expected-error @+1 {{the table level's ops need the module's state layout: run --assign-state-slots first}}
    oi_table.journal @K "data" [%off, %n]
    %0 = arith.constant 0 : i32
    func.return %0 : i32
  }
}
