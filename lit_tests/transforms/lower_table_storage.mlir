// --lower-table-storage: the table level's entry ops as a dense table does them
// (lowering/dense_storage.py). A dense table is one row-major box `capacity ++ entry` (`data`), a
// present byte per entry (`present`), a capacity and a size per index. What it emits is still the
// table level (named words and buffers, `oi_table.journal`), so --assign-state-slots,
// --lower-undo-log and --lower-tables follow unchanged; the shared helpers it calls are added.
//
// RUN: oi-opt %s --split-input-file --verify-diagnostics --lower-table-storage | filecheck %s
// RUN: oi-opt %s --split-input-file --verify-diagnostics --lower-table-storage --assign-state-slots --lower-undo-log --lower-tables --lower-nests -t llvm > /dev/null

// oi_table.write: the growable index's size raised to t + 1 (saturating at the largest index;
// past the capacity the helper asks the host to grow the table), the entry's bytes journaled,
// its present byte journaled and set when it was absent, then the copy into the entry.
// CHECK-LABEL: func.func @step(
// CHECK-SAME:    %[[S:.*]]: memref<?xi64>, %[[T:.*]]: index, %[[X:.*]]: memref<4xf32>) -> i32 {
// CHECK-DAG:     %[[ONE:.*]] = arith.constant 1 : index
// CHECK-DAG:     %[[ZERO:.*]] = arith.constant 0 : index
// CHECK-DAG:     %[[ENTRY_BYTES:.*]] = arith.constant 16 : index
// CHECK:         %[[LARGEST:.*]] = arith.cmpi eq, %[[T]], %{{.*}} : index
// CHECK-NEXT:    %[[NEXT:.*]] = arith.addi %[[T]], %[[ONE]] : index
// CHECK-NEXT:    %[[END:.*]] = arith.select %[[LARGEST]], %[[T]], %[[NEXT]] : index
// CHECK-NEXT:    %[[K:.*]] = oi_table.slot @K "data"
// CHECK-NEXT:    func.call @oi_raise_size(%[[S]], %[[K]], %[[ONE]], %[[ZERO]], %[[END]])
// CHECK:         %[[CAP:.*]] = oi_table.word @K "capacity.0" : index
// CHECK:         %[[OFFSET:.*]] = arith.muli %{{.*}}, %[[ENTRY_BYTES]] : index
// CHECK-NEXT:    oi_table.journal @K "data" [%[[OFFSET]], %[[ENTRY_BYTES]]]
// CHECK:         %[[PRESENT:.*]] = oi_table.buffer @K "present" (%{{.*}}) : memref<?xi8>
// CHECK-NEXT:    %[[FLAG:.*]] = memref.load %[[PRESENT]][%[[T]]] : memref<?xi8>
// CHECK-NEXT:    %[[ABSENT:.*]] = arith.cmpi eq, %[[FLAG]], %{{.*}} : i8
// CHECK-NEXT:    scf.if %[[ABSENT]] {
// CHECK-NEXT:      oi_table.journal @K "present" [%{{.*}}, %[[ONE]]]
// CHECK-NEXT:      memref.store %{{.*}}, %[[PRESENT]][%[[T]]] : memref<?xi8>
// CHECK:         %[[DATA:.*]] = oi_table.buffer @K "data" (%{{.*}}) : memref<?x4xf32>
// CHECK-NEXT:    %[[ENTRY:.*]] = memref.subview %[[DATA]][%[[T]], 0] [1, 4] [1, 1] : memref<?x4xf32> to memref<4xf32, strided<[1], offset: ?>>
// CHECK-NEXT:    "memref.copy"(%[[X]], %[[ENTRY]]) : (memref<4xf32>, memref<4xf32, strided<[1], offset: ?>>) -> ()
// CHECK-NOT:     oi_table.write
//
// The helpers compute word numbers at run time from the table's first word: plain loads and stores.
// CHECK-LABEL: func.func private @oi_raise_size(
// CHECK-SAME:    %{{.*}}: memref<?xi64>, %{{.*}}: index, %{{.*}}: index, %{{.*}}: index, %[[N:.*]]: index) -> i32
// CHECK-DAG:     %[[TABLE_KIND:.*]] = arith.constant 1 : i64
// CHECK:         arith.cmpi sgt, %[[N]], %{{.*}} : index
// CHECK:         scf.if
// CHECK:           memref.store
// CHECK:           scf.if
// CHECK:             func.call @oi_grow(%{{.*}}, %[[TABLE_KIND]], %{{.*}}, %{{.*}}, %{{.*}})
builtin.module attributes {oi_table.state_layout = #oi_table.layout<words ?, block "entry", [
    #oi_table.var<@K table persistent f32[4] slot ?, indices [p], storage dense>]>} {
  func.func private @oi_grow(memref<?xi64>, i64, i64, i64, i64) -> i64
  func.func @step(%state: memref<?xi64>, %t: index, %x: memref<4xf32>) -> i32 {
    %K = oi_table.table @K : !oi_table.table<f32[4], [p], dense>
    oi_table.write %K [%t], %x : !oi_table.table<f32[4], [p], dense>, memref<4xf32>
    %ok = arith.constant 0 : i32
    func.return %ok : i32
  }
}

// -----

// A @fixed index never grows (the conversion checked the key against it): no size to raise.
// CHECK-LABEL: func.func @step(
// CHECK-NOT:     @oi_raise_size
// CHECK:         oi_table.journal @F "data"
// CHECK:         "memref.copy"
// CHECK-NOT:   func.func private @oi_raise_size
builtin.module attributes {oi_table.state_layout = #oi_table.layout<words ?, block "entry", [
    #oi_table.var<@F table persistent f32[4] slot ?, indices [l fixed 2, p fixed 16], storage dense>]>} {
  func.func @step(%state: memref<?xi64>, %l: index, %t: index, %x: memref<4xf32>) -> i32 {
    %F = oi_table.table @F : !oi_table.table<f32[4], [l fixed 2, p fixed 16], dense>
    oi_table.write %F [%l, %t], %x : !oi_table.table<f32[4], [l fixed 2, p fixed 16], dense>, memref<4xf32>
    %ok = arith.constant 0 : i32
    func.return %ok : i32
  }
}

// -----

// oi_table.view / read: sizes raised to the slice's end, the selected entries marked present (each
// change journaled, in the helper), then a strided subview of the data: the view itself, or the
// source of a copy into the destination. An index in the selection drops its dim.
// CHECK-LABEL: func.func @step(
// CHECK-SAME:    %{{.*}}: memref<?xi64>, %[[L:.*]]: index, %[[A:.*]]: index, %[[B:.*]]: index, %[[DST:.*]]: memref<?x4xf32>)
// CHECK:         func.call @oi_raise_size(%{{.*}}, %{{.*}}, %{{.*}}, %{{.*}}, %[[B]])
// CHECK:         %[[COUNT:.*]] = arith.subi %[[B]], %[[A]] : index
// CHECK:         func.call @oi_mark_present_2(%{{.*}}, %{{.*}}, %[[L]], %[[A]], %{{.*}}, %[[COUNT]])
// CHECK:         %[[V:.*]] = memref.subview %{{.*}}[%[[L]], %[[A]], 0] [1, %{{.*}}, 4] [1, 1, 1] : memref<?x?x4xf32> to memref<?x4xf32, strided<[4, 1], offset: ?>>
// CHECK-NEXT:    func.call @use(%[[V]])
// CHECK:         func.call @oi_mark_present_2(
// CHECK:         %[[SRC:.*]] = memref.subview %{{.*}}[%[[L]], %[[A]], 0] [1, %{{.*}}, 4] [1, 1, 1] : memref<?x?x4xf32> to memref<?x4xf32, strided<[?, 1], offset: ?>>
// CHECK-NEXT:    "memref.copy"(%[[SRC]], %[[DST]])
// CHECK:       func.func private @oi_mark_present_2(
// CHECK:         scf.for
// CHECK:           scf.for
// CHECK:             %[[FLAG:.*]] = memref.load %{{.*}}[%{{.*}}] : memref<?xi8>
// CHECK-NEXT:        %[[ABSENT:.*]] = arith.cmpi eq, %[[FLAG]], %{{.*}} : i8
// CHECK-NEXT:        scf.if %[[ABSENT]] {
// CHECK:               func.call @oi_log(
builtin.module attributes {oi_table.state_layout = #oi_table.layout<words ?, block "entry", [
    #oi_table.var<@K table persistent f32[4] slot ?, indices [l fixed 2, p], storage dense>]>} {
  func.func private @oi_grow(memref<?xi64>, i64, i64, i64, i64) -> i64
  func.func private @use(memref<?x4xf32, strided<[4, 1], offset: ?>>)
  func.func @step(%state: memref<?xi64>, %l: index, %a: index, %b: index, %dst: memref<?x4xf32>) -> i32 {
    %K = oi_table.table @K : !oi_table.table<f32[4], [l fixed 2, p], dense>
    %v = oi_table.view %K [%l, %a : %b] : !oi_table.table<f32[4], [l fixed 2, p], dense> -> memref<?x4xf32, strided<[4, 1], offset: ?>>
    func.call @use(%v) : (memref<?x4xf32, strided<[4, 1], offset: ?>>) -> ()
    oi_table.read %K [%l, %a : %b], %dst : !oi_table.table<f32[4], [l fixed 2, p], dense>, memref<?x4xf32>
    %ok = arith.constant 0 : i32
    func.return %ok : i32
  }
}

// -----

// oi_table.reset: the entries under the prefix (if inside the capacity) journaled and refilled
// with @init, their present bytes journaled and cleared, then the sizes recomputed from the
// present bytes. A prefix longer than the table's indices names no entry: only the recomputation.
// CHECK-LABEL: func.func @step(
// CHECK-DAG:     %[[ABSENT:.*]] = arith.constant 0 : i8
// CHECK:         scf.if %{{.*}} {
// CHECK:           oi_table.journal @K "data"
// CHECK-NEXT:      oi_table.journal @K "present"
// CHECK:           %[[INIT:.*]] = arith.constant 1.500000e+00 : f32
// CHECK:           scf.for
// CHECK-NEXT:        memref.store %[[INIT]], %{{.*}}[%{{.*}}] : memref<?xf32, strided<[1], offset: ?>>
// CHECK:           scf.for
// CHECK-NEXT:        memref.store %[[ABSENT]], %{{.*}}[%{{.*}}] : memref<?xi8, strided<[1], offset: ?>>
// CHECK:         oi_table.set_word @K "size.0", %{{.*}}
// CHECK:         scf.for
// CHECK:           arith.cmpi ne, %{{.*}}, %[[ABSENT]] : i8
// CHECK:           oi_table.set_word @K "size.0", %{{.*}}
// CHECK-NOT:     oi_table.journal
// CHECK:         oi_table.set_word @K "size.0", %{{.*}}
// CHECK:         func.return
builtin.module attributes {oi_table.state_layout = #oi_table.layout<words ?, block "entry", [
    #oi_table.var<@K table persistent f32[4] slot ?, indices [p], init 1.5, storage dense>]>} {
  func.func @step(%state: memref<?xi64>, %t: index) -> i32 {
    %K = oi_table.table @K : !oi_table.table<f32[4], [p], dense>
    oi_table.reset %K [%t] : !oi_table.table<f32[4], [p], dense>
    oi_table.reset %K [%t, %t] : !oi_table.table<f32[4], [p], dense>
    %ok = arith.constant 0 : i32
    func.return %ok : i32
  }
}

// -----

// oi_table.reset ... keep_sizes clears the entry and leaves the sizes; oi_table.resize recomputes
// them from the present bytes (what cache.pop emits: a clear per popped entry, one resize).
// CHECK-LABEL: func.func @pop(
// CHECK:         oi_table.journal @K "present"
// CHECK-NOT:     oi_table.set_word
// CHECK:       } else {
// CHECK-NEXT:  }
// CHECK-NEXT:  oi_table.set_word @K "size.0", %{{.*}}
// CHECK:       scf.for
// CHECK:         oi_table.set_word @K "size.0", %{{.*}}
// CHECK-NOT:   oi_table.set_word
// CHECK:       func.return
builtin.module attributes {oi_table.state_layout = #oi_table.layout<words ?, block "entry", [
    #oi_table.var<@K table persistent f32[4] slot ?, indices [p], storage dense>]>} {
  func.func @pop(%state: memref<?xi64>, %t: index) -> i32 {
    %K = oi_table.table @K : !oi_table.table<f32[4], [p], dense>
    oi_table.reset %K [%t] keep_sizes : !oi_table.table<f32[4], [p], dense>
    oi_table.resize %K : !oi_table.table<f32[4], [p], dense>
    %ok = arith.constant 0 : i32
    func.return %ok : i32
  }
}

// -----

builtin.module attributes {oi_table.state_layout = #oi_table.layout<words ?, block "entry", [
    #oi_table.var<@x buffer volatile f32[4] slot ?>]>} {
  func.func @step(%state: memref<?xi64>, %t: index, %x: memref<4xf32>) -> i32 {
    %X = oi_table.table @x : !oi_table.table<f32[4], [p], dense>
    // expected-error @+1 {{oi_table.write: @x is not a table of the module's state layout}}
    oi_table.write %X [%t], %x : !oi_table.table<f32[4], [p], dense>, memref<4xf32>
    %ok = arith.constant 0 : i32
    func.return %ok : i32
  }
}

// -----

builtin.module attributes {oi_table.state_layout = #oi_table.layout<words ?, block "entry", [
    #oi_table.var<@K table persistent f32[4] slot ?, indices [p], storage dense>]>} {
  func.func @step(%state: memref<?xi64>, %t: index, %x: memref<4xf32>) -> i32 {
    %K = oi_table.table @K : !oi_table.table<f32[4], [p fixed 8], dense>
    // expected-error @+1 {{oi_table.write: the type !oi_table.table<f32[4], [p fixed 8], dense> does not match @K in the state layout}}
    oi_table.write %K [%t], %x : !oi_table.table<f32[4], [p fixed 8], dense>, memref<4xf32>
    %ok = arith.constant 0 : i32
    func.return %ok : i32
  }
}

// -----

builtin.module attributes {oi_table.state_layout = #oi_table.layout<words ?, block "entry", [
    #oi_table.var<@K table persistent f32[4] slot ?, indices [p], storage dense>]>} {
  func.func @step(%state: memref<?xi64>, %t: index, %x: memref<4xf32>) -> i32 {
    %K = oi_table.table @K : !oi_table.table<f32[4], [p], paged>
    // expected-error @+1 {{oi_table.write: no storage pass lowered this paged table (only dense storage is implemented)}}
    oi_table.write %K [%t], %x : !oi_table.table<f32[4], [p], paged>, memref<4xf32>
    %ok = arith.constant 0 : i32
    func.return %ok : i32
  }
}
