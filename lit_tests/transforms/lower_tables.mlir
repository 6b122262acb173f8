// --lower-tables: the table level's ops to words of the state array (the step's first argument),
// at the slots of the module's `oi_table.state_layout`: a word is a load and an index_cast, a
// buffer an `oi.state_view` naming its variable, a slot number a constant (one per function and
// value, at the function's top); a check stores its site's number (in the order the step meets
// them) and arguments in the header and leaves with code 1; a growth request calls the host's
// `@oi_grow` and leaves with code 2 if it fails. The step's `oi.error_sites` lists the sites.
//
// RUN: oi-opt %s --split-input-file --verify-diagnostics --lower-tables | filecheck %s

// CHECK-LABEL: func.func @step(
// CHECK-SAME:      %[[S:.*]]: memref<?xi64>, %[[BAD:.*]]: i1, %[[N:.*]]: index) -> i32 attributes {oi.error_sites = [
// CHECK-SAME:      #oi_table.site<CacheError "slice end {0} before start {1}" at loc("g.oi":3:4) node "cache.read K[0..t] >> keys" block "entry">,
// CHECK-SAME:      #oi_table.site<ExecutionError "boom" at loc(unknown) node "" block "">]} {
// The constants (slot numbers, site numbers, codes) once per function, at its top, in the order first used:
// CHECK-NEXT:    %[[SIZE_WORD:.*]] = arith.constant 18 : index
// CHECK-NEXT:    %[[DATA_WORD:.*]] = arith.constant 15 : index
// CHECK-NEXT:    %[[STAMP_WORD:.*]] = arith.constant 12 : index
// CHECK-NEXT:    %[[SITE1:.*]] = arith.constant 1 : i64
// CHECK-NEXT:    %[[ERROR_WORD:.*]] = arith.constant 0 : index
// CHECK-NEXT:    %[[ARG0_WORD:.*]] = arith.constant 1 : index
// CHECK-NEXT:    %[[ARG1_WORD:.*]] = arith.constant 2 : index
// CHECK-NEXT:    %[[CODE1:.*]] = arith.constant 1 : i32
// CHECK-NEXT:    %[[OK:.*]] = arith.constant 0 : i64
// CHECK-NEXT:    %[[K_WORD:.*]] = arith.constant 15 : i64
// CHECK-NEXT:    %[[HOST:.*]] = arith.constant 2 : i32
// CHECK-NEXT:    %[[SITE2:.*]] = arith.constant 2 : i64
// CHECK-NEXT:    %[[RAW:.*]] = memref.load %[[S]][%[[SIZE_WORD]]] : memref<?xi64>
// CHECK-NEXT:    %[[SIZE:.*]] = arith.index_cast %[[RAW]] : i64 to index
// CHECK-NEXT:    %[[NEW:.*]] = arith.index_cast %[[N]] : index to i64
// CHECK-NEXT:    memref.store %[[NEW]], %[[S]][%[[SIZE_WORD]]] : memref<?xi64>
// CHECK-NEXT:    oi.state_view @K %[[S]][%[[DATA_WORD]]] (%[[SIZE]]) : memref<?xi64> -> memref<?x4xf32>
// CHECK-NEXT:    memref.load %[[S]][%[[STAMP_WORD]]] : memref<?xi64>
// CHECK:         scf.if %[[BAD]] {
// CHECK-NEXT:      memref.store %[[SITE1]], %[[S]][%[[ERROR_WORD]]] : memref<?xi64>
// CHECK-NEXT:      arith.index_cast %[[SIZE]] : index to i64
// CHECK-NEXT:      memref.store %{{.*}}, %[[S]][%[[ARG0_WORD]]] : memref<?xi64>
// CHECK-NEXT:      arith.index_cast %[[N]] : index to i64
// CHECK-NEXT:      memref.store %{{.*}}, %[[S]][%[[ARG1_WORD]]] : memref<?xi64>
// CHECK-NEXT:      oi.step_exit %[[CODE1]] : i32
// CHECK-NEXT:    }
// The growth request: kind 1 (a table), K's word 15.
// CHECK:         %[[ANSWER:.*]] = func.call @oi_grow(%[[S]], %[[SITE1]], %[[K_WORD]], %{{.*}}, %{{.*}}) : (memref<?xi64>, i64, i64, i64, i64) -> i64
// CHECK-NEXT:    %[[FAILED:.*]] = arith.cmpi ne, %[[ANSWER]], %[[OK]] : i64
// CHECK-NEXT:    scf.if %[[FAILED]] {
// CHECK-NEXT:      oi.step_exit %[[HOST]] : i32
// CHECK-NEXT:    }
// CHECK-NEXT:    memref.store %[[SITE2]], %[[S]][%[[ERROR_WORD]]] : memref<?xi64>
// CHECK-NEXT:    oi.step_exit %[[CODE1]] : i32
builtin.module attributes {oi_table.state_layout = #oi_table.layout<words 19, block "entry", [
    #oi_table.var<@x buffer volatile f32[4] slot 13>, #oi_table.var<@t buffer persistent i32[] slot 14, init 0>,
    #oi_table.var<@K table persistent f32[4] slot 15, indices [p], storage dense>]>} {
  func.func private @oi_grow(memref<?xi64>, i64, i64, i64, i64) -> i64
  func.func private @use(memref<?x4xf32>, index)
  func.func @step(%s: memref<?xi64>, %bad: i1, %n: index) -> i32 {
    %size = oi_table.word @K "size.0" : index
    oi_table.set_word @K "size.0", %n
    %data = oi_table.buffer @K "data" (%size) : memref<?x4xf32>
    %stamp = oi_table.word @oi.state "step_stamp" : index
    func.call @use(%data, %stamp) : (memref<?x4xf32>, index) -> ()
    oi_table.check %bad, <CacheError "slice end {0} before start {1}" at loc("g.oi":3:4) node "cache.read K[0..t] >> keys" block "entry"> (%size, %n)
    oi_table.grow "table" @K "data" (%n, %n)
    oi_table.fail <ExecutionError "boom" at loc(unknown) node "" block "">
    %0 = arith.constant 0 : i32
    func.return %0 : i32
  }
}

// -----

// A word the layout does not have.
builtin.module attributes {oi_table.state_layout = #oi_table.layout<words 14, block "entry", [
    #oi_table.var<@x buffer volatile f32[4] slot 13>]>} {
  func.func private @use(index)
  func.func @step(%s: memref<?xi64>) -> i32 {
    // expected-error @+1 {{no state word 'capacity.0' of x in the state layout}}
    %0 = oi_table.word @x "capacity.0" : index
    func.call @use(%0) : (index) -> ()
    %1 = arith.constant 0 : i32
    func.return %1 : i32
  }
}
