// --lower-table-storage: the table level's entry ops as a dense table does them
// (lowering/dense_storage.py), then as a paged table does them (lowering/paged_storage.py). A
// dense table is one row-major box `capacity ++ entry` (`data`), a present byte per entry
// (`present`), a capacity and a size per index. A paged table (`paged P`) keeps its entries in a
// pool of pages of P entries (`data`, `present`: `pool * P` entries) with a page table per row of
// its leading indices (`pages`, -1: no page yet) and a count per page (`refs`); entry (row, t) is
// pool entry `pages[row, t / P] * P + t % P`. What either emits is still the table level (named
// words and buffers, `oi_table.journal`, `oi_table.grow` requests of the host), so
// --assign-state-slots, --lower-undo-log and --lower-tables follow unchanged; the shared helpers it
// calls are added.
//
// RUN: oi-opt %s --split-input-file --verify-diagnostics --lower-table-storage | filecheck %s
// RUN: oi-opt %s --split-input-file --verify-diagnostics --lower-table-storage --assign-state-slots --lower-undo-log --lower-tables --lower-nests -t llvm > /dev/null

// oi_table.write: the growable index's size raised to t + 1 (saturating at the largest index;
// past the capacity the helper asks the host to grow the table), the entry's present byte
// journaled and set when it was absent, else its bytes journaled (an absent entry holds @init,
// which the host puts back when it undoes the present byte), then the copy into the entry.
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
// CHECK:         %[[PRESENT:.*]] = oi_table.buffer @K "present" (%{{.*}}) : memref<?xi8>
// CHECK-NEXT:    %[[FLAG:.*]] = memref.load %[[PRESENT]][%[[T]]] : memref<?xi8>
// CHECK-NEXT:    %[[ABSENT:.*]] = arith.cmpi eq, %[[FLAG]], %{{.*}} : i8
// CHECK-NEXT:    scf.if %[[ABSENT]] {
// CHECK-NEXT:      oi_table.journal @K "present" [%{{.*}}, %[[ONE]]]
// CHECK-NEXT:      memref.store %{{.*}}, %[[PRESENT]][%[[T]]] : memref<?xi8>
// CHECK-NEXT:    } else {
// CHECK-NEXT:      %[[OFFSET:.*]] = arith.muli %{{.*}}, %[[ENTRY_BYTES]] : index
// CHECK-NEXT:      oi_table.journal @K "data" [%[[OFFSET]], %[[ENTRY_BYTES]]]
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

// oi_table.copy_row on a dense table (what cache.fork emits per row): per t of the slice, a view of
// the source entry (its sizes raised, it marked present), then a write of it to the destination.
// CHECK-LABEL: func.func @fork(
// CHECK-SAME:    %{{.*}}: memref<?xi64>, %[[SRC:.*]]: index, %[[DST:.*]]: index, %[[A:.*]]: index, %[[B:.*]]: index)
// CHECK:         scf.for %[[T:.*]] = %[[A]] to %[[B]] step %{{.*}} {
// CHECK:           func.call @oi_mark_present_2(%{{.*}}, %{{.*}}, %[[SRC]], %[[T]], %{{.*}}, %{{.*}})
// CHECK:           %[[FROM:.*]] = memref.subview %{{.*}}[%[[SRC]], %[[T]], 0] [1, 1, 2] [1, 1, 1] : memref<?x?x2xf32> to memref<2xf32, strided<[1], offset: ?>>
// CHECK:           memref.load %{{.*}}[%[[DST]], %[[T]]] : memref<?x?xi8>
// CHECK:           oi_table.journal @K "data"
// CHECK:           %[[TO:.*]] = memref.subview %{{.*}}[%[[DST]], %[[T]], 0] [1, 1, 2] [1, 1, 1] : memref<?x?x2xf32> to memref<2xf32, strided<[1], offset: ?>>
// CHECK-NEXT:      "memref.copy"(%[[FROM]], %[[TO]])
// CHECK-NEXT:    }
// CHECK-NOT:     oi_table.copy_row
builtin.module attributes {oi_table.state_layout = #oi_table.layout<words ?, block "entry", [
    #oi_table.var<@K table persistent f32[2] slot ?, indices [b, t], storage dense>]>} {
  func.func private @oi_grow(memref<?xi64>, i64, i64, i64, i64) -> i64
  func.func @fork(%state: memref<?xi64>, %src: index, %dst: index, %a: index, %b: index) -> i32 {
    %K = oi_table.table @K : !oi_table.table<f32[2], [b, t], dense>
    oi_table.copy_row %K [%src, %a : %b] -> [%dst] : !oi_table.table<f32[2], [b, t], dense>
    %ok = arith.constant 0 : i32
    func.return %ok : i32
  }
}

// -----

// Paged storage, oi_table.write: sizes raised as on dense storage; then the entry's page from the
// page table (`pages[b, t / 4]`): none yet (-1), or one another row shares (its count is not 1),
// and the host gives the row a page of its own (`grow "page"` with the row and the column). The
// entry is pool entry `page * 4 + t % 4`: its bytes journaled at that pool offset, its present
// byte journaled and set when it was absent, then the copy into it.
// CHECK-LABEL: func.func @step(
// CHECK-SAME:    %{{.*}}: memref<?xi64>, %[[B:.*]]: index, %[[T:.*]]: index, %[[X:.*]]: memref<2xf32>) -> i32 {
// CHECK-DAG:     %[[P:.*]] = arith.constant 4 : index
// CHECK-DAG:     %[[P_LESS_ONE:.*]] = arith.constant 3 : index
// CHECK-DAG:     %[[ONE_REF:.*]] = arith.constant 1 : i64
// CHECK-DAG:     %[[ENTRY_BYTES:.*]] = arith.constant 8 : index
// CHECK-DAG:     %[[ZERO:.*]] = arith.constant 0 : index
// CHECK:         func.call @oi_raise_size(
// CHECK:         func.call @oi_raise_size(
// CHECK:         %[[COL:.*]] = arith.divui %[[T]], %[[P]] : index
// CHECK-NEXT:    %[[ROWS:.*]] = oi_table.word @K "capacity.0" : index
// CHECK-NEXT:    %[[CAP:.*]] = oi_table.word @K "capacity.1" : index
// CHECK-NEXT:    %[[CAP_UP:.*]] = arith.addi %[[CAP]], %[[P_LESS_ONE]] : index
// CHECK-NEXT:    %[[COLS:.*]] = arith.divui %[[CAP_UP]], %[[P]] : index
// CHECK-NEXT:    %[[PAGES:.*]] = oi_table.buffer @K "pages" (%[[ROWS]], %[[COLS]]) : memref<?x?xi64>
// CHECK-NEXT:    %[[NUMBER:.*]] = memref.load %[[PAGES]][%[[B]], %[[COL]]] : memref<?x?xi64>
// CHECK-NEXT:    %[[PAGE:.*]] = arith.index_cast %[[NUMBER]] : i64 to index
// CHECK-NEXT:    %[[NONE:.*]] = arith.cmpi slt, %[[PAGE]], %[[ZERO]] : index
// CHECK-NEXT:    scf.if %[[NONE]] {
// CHECK:           %[[ROW:.*]] = arith.addi %{{.*}}, %[[B]] : index
// CHECK-NEXT:      oi_table.grow "page" @K "data" (%[[ROW]], %{{.*}})
// CHECK-NEXT:    } else {
// CHECK-NEXT:      %[[POOL:.*]] = oi_table.word @K "pool" : index
// CHECK-NEXT:      %[[REFS:.*]] = oi_table.buffer @K "refs" (%[[POOL]]) : memref<?xi64>
// CHECK-NEXT:      %[[COUNT:.*]] = memref.load %[[REFS]][%[[PAGE]]] : memref<?xi64>
// CHECK-NEXT:      %[[SHARED:.*]] = arith.cmpi ne, %[[COUNT]], %[[ONE_REF]] : i64
// CHECK-NEXT:      scf.if %[[SHARED]] {
// CHECK:             oi_table.grow "page" @K "data" (%{{.*}}, %{{.*}})
// CHECK:         %[[OFF:.*]] = arith.remui %[[T]], %[[P]] : index
// CHECK:         %[[OWN:.*]] = arith.index_cast %{{.*}} : i64 to index
// CHECK-NEXT:    %[[BASE:.*]] = arith.muli %[[OWN]], %[[P]] : index
// CHECK-NEXT:    %[[N:.*]] = arith.addi %[[BASE]], %[[OFF]] : index
// CHECK-NEXT:    %[[OFFSET:.*]] = arith.muli %[[N]], %[[ENTRY_BYTES]] : index
// CHECK-NEXT:    oi_table.journal @K "data" [%[[OFFSET]], %[[ENTRY_BYTES]]]
// CHECK-NEXT:    %[[POOL2:.*]] = oi_table.word @K "pool" : index
// CHECK-NEXT:    %[[ENTRIES:.*]] = arith.muli %[[POOL2]], %[[P]] : index
// CHECK-NEXT:    %[[PRESENT:.*]] = oi_table.buffer @K "present" (%[[ENTRIES]]) : memref<?xi8>
// CHECK-NEXT:    %[[FLAG:.*]] = memref.load %[[PRESENT]][%[[N]]] : memref<?xi8>
// CHECK-NEXT:    %[[ABSENT:.*]] = arith.cmpi eq, %[[FLAG]], %{{.*}} : i8
// CHECK-NEXT:    scf.if %[[ABSENT]] {
// CHECK-NEXT:      oi_table.journal @K "present" [%[[N]], %{{.*}}]
// CHECK:           memref.store %{{.*}}, %{{.*}}[%[[N]]] : memref<?xi8>
// CHECK:         %[[DATA:.*]] = oi_table.buffer @K "data" (%{{.*}}) : memref<?x2xf32>
// CHECK-NEXT:    %[[ENTRY:.*]] = memref.subview %[[DATA]][%[[N]], 0] [1, 2] [1, 1] : memref<?x2xf32> to memref<2xf32, strided<[1], offset: ?>>
// CHECK-NEXT:    "memref.copy"(%[[X]], %[[ENTRY]])
// CHECK-NOT:     oi_table.write
builtin.module attributes {oi_table.state_layout = #oi_table.layout<words ?, block "entry", [
    #oi_table.var<@K table persistent f32[2] slot ?, indices [b, t], storage paged 4 pool 64>]>} {
  func.func private @oi_grow(memref<?xi64>, i64, i64, i64, i64) -> i64
  func.func @step(%state: memref<?xi64>, %b: index, %t: index, %x: memref<2xf32>) -> i32 {
    %K = oi_table.table @K : !oi_table.table<f32[2], [b, t], paged 4>
    oi_table.write %K [%b, %t], %x : !oi_table.table<f32[2], [b, t], paged 4>, memref<2xf32>
    %ok = arith.constant 0 : i32
    func.return %ok : i32
  }
}

// -----

// Paged storage, oi_table.read: a gather. Per row of the leading indices, a loop over the pages
// the slice [s, e) touches (columns s / 4 to (e + 3) / 4; none for an empty slice, which takes no
// page); in each, the slice's run [low, high)
// inside that page: its entries marked present one by one (a page taken for the row if it has
// none; an absent entry's page made the row's own, its present byte journaled and set), then one
// copy of the run out of the pool (from pool entry `page * 4 + low % 4`) to `low - s` in the
// destination. An index as the last item reads one entry per row: one entry's copy.
// CHECK-LABEL: func.func @step(
// CHECK-SAME:    %{{.*}}: memref<?xi64>, %[[B:.*]]: index, %[[S:.*]]: index, %[[E:.*]]: index, %[[DST:.*]]: memref<?x2xf32>)
// CHECK-DAG:     %[[P:.*]] = arith.constant 4 : index
// CHECK-DAG:     %[[P_LESS_ONE:.*]] = arith.constant 3 : index
// CHECK:         func.call @oi_raise_size(%{{.*}}, %{{.*}}, %{{.*}}, %{{.*}}, %[[E]])
// CHECK:         scf.for %[[I:.*]] = %{{.*}} to %{{.*}} step %{{.*}} {
// CHECK-NEXT:      %[[ROW:.*]] = arith.addi %[[B]], %[[I]] : index
// CHECK-NEXT:      %[[FIRST:.*]] = arith.divui %[[S]], %[[P]] : index
// CHECK-NEXT:      %[[UP:.*]] = arith.addi %[[E]], %[[P_LESS_ONE]] : index
// CHECK-NEXT:      %[[UP_COLUMNS:.*]] = arith.divui %[[UP]], %[[P]] : index
// CHECK-NEXT:      %[[NONEMPTY:.*]] = arith.cmpi slt, %[[S]], %[[E]] : index
// CHECK-NEXT:      %[[COLUMNS:.*]] = arith.select %[[NONEMPTY]], %[[UP_COLUMNS]], %[[FIRST]] : index
// CHECK-NEXT:      scf.for %[[C:.*]] = %[[FIRST]] to %[[COLUMNS]] step %{{.*}} {
// CHECK-NEXT:        %[[PAGE_START:.*]] = arith.muli %[[C]], %[[P]] : index
// CHECK-NEXT:        %[[LATER:.*]] = arith.cmpi sgt, %[[S]], %[[PAGE_START]] : index
// CHECK-NEXT:        %[[LOW:.*]] = arith.select %[[LATER]], %[[S]], %[[PAGE_START]] : index
// CHECK-NEXT:        %[[PAGE_START2:.*]] = arith.muli %[[C]], %[[P]] : index
// CHECK-NEXT:        %[[PAGE_END:.*]] = arith.addi %[[PAGE_START2]], %[[P]] : index
// CHECK-NEXT:        %[[SHORT:.*]] = arith.cmpi slt, %[[E]], %[[PAGE_END]] : index
// CHECK-NEXT:        %[[HIGH:.*]] = arith.select %[[SHORT]], %[[E]], %[[PAGE_END]] : index
// CHECK-NEXT:        scf.for %[[T:.*]] = %[[LOW]] to %[[HIGH]] step %{{.*}} {
// CHECK-NEXT:          %[[COL:.*]] = arith.divui %[[T]], %[[P]] : index
// CHECK:               %[[PAGES:.*]] = oi_table.buffer @K "pages"
// CHECK-NEXT:          memref.load %[[PAGES]][%[[ROW]], %[[COL]]] : memref<?x?xi64>
// CHECK:               oi_table.grow "page" @K "data"
// CHECK:               %[[FLAG:.*]] = memref.load %{{.*}}[%{{.*}}] : memref<?xi8>
// CHECK-NEXT:          %[[ABSENT:.*]] = arith.cmpi eq, %[[FLAG]], %{{.*}} : i8
// CHECK-NEXT:          scf.if %[[ABSENT]] {
// CHECK:                 oi_table.journal @K "present"
// CHECK:                 memref.store %{{.*}}, %{{.*}}[%{{.*}}] : memref<?xi8>
// CHECK-NEXT:          } else {
// CHECK-NEXT:          }
// CHECK-NEXT:        }
// CHECK-NEXT:        %[[COUNT:.*]] = arith.subi %[[HIGH]], %[[LOW]] : index
// CHECK:             %[[OFF:.*]] = arith.remui %[[LOW]], %[[P]] : index
// CHECK:             %[[PAGE:.*]] = arith.index_cast %{{.*}} : i64 to index
// CHECK-NEXT:        %[[BASE:.*]] = arith.muli %[[PAGE]], %[[P]] : index
// CHECK-NEXT:        %[[N:.*]] = arith.addi %[[BASE]], %[[OFF]] : index
// CHECK:             %[[DATA:.*]] = oi_table.buffer @K "data" (%{{.*}}) : memref<?x2xf32>
// CHECK-NEXT:        %[[FROM:.*]] = memref.subview %[[DATA]][%[[N]], 0] [%[[COUNT]], 2] [1, 1] : memref<?x2xf32> to memref<?x2xf32, strided<[2, 1], offset: ?>>
// CHECK-NEXT:        %[[AT:.*]] = arith.subi %[[LOW]], %[[S]] : index
// CHECK-NEXT:        %[[TO:.*]] = memref.subview %[[DST]][%[[AT]], 0] [%[[COUNT]], 2] [1, 1] : memref<?x2xf32> to memref<?x2xf32, strided<[2, 1], offset: ?>>
// CHECK-NEXT:        "memref.copy"(%[[FROM]], %[[TO]])
// CHECK-NEXT:      }
// CHECK-NEXT:    }
// CHECK:         %[[ROWS:.*]] = arith.subi %[[E]], %[[S]] : index
// CHECK-NEXT:    scf.for %[[J:.*]] = %{{.*}} to %[[ROWS]] step %{{.*}} {
// CHECK-NOT:       scf.for
// CHECK:           %[[ONE:.*]] = memref.subview %{{.*}} : memref<?x2xf32> to memref<2xf32, strided<[1], offset: ?>>
// CHECK-NEXT:      %[[TO1:.*]] = memref.subview %[[DST]][%[[J]], 0] [1, 2] [1, 1] : memref<?x2xf32> to memref<2xf32, strided<[1], offset: ?>>
// CHECK-NEXT:      "memref.copy"(%[[ONE]], %[[TO1]])
// CHECK-NEXT:    }
// CHECK-NOT:     oi_table.read
builtin.module attributes {oi_table.state_layout = #oi_table.layout<words ?, block "entry", [
    #oi_table.var<@K table persistent f32[2] slot ?, indices [b, t], storage paged 4>]>} {
  func.func private @oi_grow(memref<?xi64>, i64, i64, i64, i64) -> i64
  func.func @step(%state: memref<?xi64>, %b: index, %s: index, %e: index, %dst: memref<?x2xf32>) -> i32 {
    %K = oi_table.table @K : !oi_table.table<f32[2], [b, t], paged 4>
    oi_table.read %K [%b, %s : %e], %dst : !oi_table.table<f32[2], [b, t], paged 4>, memref<?x2xf32>
    oi_table.read %K [%s : %e, %b], %dst : !oi_table.table<f32[2], [b, t], paged 4>, memref<?x2xf32>
    %ok = arith.constant 0 : i32
    func.return %ok : i32
  }
}

// -----

// Paged storage, oi_table.view of one entry: it marked present, then a view of its pool entry.
// CHECK-LABEL: func.func @step(
// CHECK:         oi_table.journal @K "present"
// CHECK:         %[[DATA:.*]] = oi_table.buffer @K "data" (%{{.*}}) : memref<?x2x3xf32>
// CHECK-NEXT:    %[[V:.*]] = memref.subview %[[DATA]][%{{.*}}, 0, 0] [1, 2, 3] [1, 1, 1] : memref<?x2x3xf32> to memref<2x3xf32, strided<[3, 1], offset: ?>>
// CHECK-NEXT:    func.call @use(%[[V]])
builtin.module attributes {oi_table.state_layout = #oi_table.layout<words ?, block "entry", [
    #oi_table.var<@K table persistent f32[2, 3] slot ?, indices [b, t], storage paged 4>]>} {
  func.func private @oi_grow(memref<?xi64>, i64, i64, i64, i64) -> i64
  func.func private @use(memref<2x3xf32, strided<[3, 1], offset: ?>>)
  func.func @step(%state: memref<?xi64>, %b: index, %t: index) -> i32 {
    %K = oi_table.table @K : !oi_table.table<f32[2, 3], [b, t], paged 4>
    %v = oi_table.view %K [%b, %t] : !oi_table.table<f32[2, 3], [b, t], paged 4> -> memref<2x3xf32, strided<[3, 1], offset: ?>>
    func.call @use(%v) : (memref<2x3xf32, strided<[3, 1], offset: ?>>) -> ()
    %ok = arith.constant 0 : i32
    func.return %ok : i32
  }
}

// -----

// Paged storage, oi_table.view of a slice: where the run lies in one page of its row (s < e and
// s / P == (e - 1) / P) its entries are marked present and the view is a subview of the pool; else
// they are gathered into @v's gather buffer (grown by the host past its capacity) and the view is
// a subview of that.
// CHECK-LABEL: func.func @step(
// CHECK:         %[[FIRST:.*]] = arith.divui %s, %{{.*}} : index
// CHECK:         %[[LAST:.*]] = arith.divui %{{.*}}, %{{.*}} : index
// CHECK:         %[[SAME:.*]] = arith.cmpi eq, %[[FIRST]], %[[LAST]] : index
// CHECK:         %v = scf.if %{{.*}} -> (memref<?x2xf32, strided<[2, 1], offset: ?>>) {
// CHECK:           scf.for %{{.*}} = %s to %e
// CHECK:             oi_table.journal @K "present"
// CHECK:           %[[DATA:.*]] = oi_table.buffer @K "data" (%{{.*}}) : memref<?x2xf32>
// CHECK-NEXT:      %[[INPAGE:.*]] = memref.subview %[[DATA]][%{{.*}}, 0] [%{{.*}}, 2] [1, 1] : memref<?x2xf32> to memref<?x2xf32, strided<[2, 1], offset: ?>>
// CHECK-NEXT:      scf.yield %[[INPAGE]]
// CHECK-NEXT:    } else {
// CHECK:           %[[CAP:.*]] = oi_table.word @v "gather.capacity" : index
// CHECK:             oi_table.grow "resizable" @v "gather" (%{{.*}}, %{{.*}})
// CHECK:           %[[BUF:.*]] = oi_table.buffer @v "gather" (%{{.*}}) : memref<?x2xf32>
// CHECK:           "memref.copy"
// CHECK:           %[[ALL:.*]] = memref.subview %[[BUF]][0, 0] [%{{.*}}, 2] [1, 1] : memref<?x2xf32> to memref<?x2xf32, strided<[2, 1], offset: ?>>
// CHECK-NEXT:      scf.yield %[[ALL]]
// CHECK:         func.call @use(%v)
builtin.module attributes {oi_table.state_layout = #oi_table.layout<words ?, block "entry", [
    #oi_table.var<@K table persistent f32[2] slot ?, indices [b, t], storage paged 4>,
    #oi_table.var<@v view volatile f32[?, 2] slot ?, tables [@K]>]>} {
  func.func private @oi_grow(memref<?xi64>, i64, i64, i64, i64) -> i64
  func.func private @use(memref<?x2xf32, strided<[2, 1], offset: ?>>)
  func.func @step(%state: memref<?xi64>, %b: index, %s: index, %e: index) -> i32 {
    %K = oi_table.table @K : !oi_table.table<f32[2], [b, t], paged 4>
    %v = oi_table.view %K [%b, %s : %e] gather @v : !oi_table.table<f32[2], [b, t], paged 4> -> memref<?x2xf32, strided<[2, 1], offset: ?>>
    func.call @use(%v) : (memref<?x2xf32, strided<[2, 1], offset: ?>>) -> ()
    %ok = arith.constant 0 : i32
    func.return %ok : i32
  }
}

// -----

// Paged storage, oi_table.reset of whole rows: (if inside the capacity) the host takes their pages
// back (`grow "release"` with the first row b * capacity.1 and the count capacity.1), then
// recomputes the sizes (`grow "sizes"`). Of one entry (keep_sizes): nothing when its page was
// never taken; else the page made the row's own (copied if shared), the entry's bytes and present
// byte journaled, refilled with @init, marked absent; the sizes left to oi_table.resize, which
// asks the host to recompute them.
// CHECK-LABEL: func.func @step(
// CHECK-SAME:    %{{.*}}: memref<?xi64>, %[[B:.*]]: index, %[[H:.*]]: index, %[[T:.*]]: index)
// CHECK-DAG:     %[[ABSENT:.*]] = arith.constant 0 : i8
// CHECK-DAG:     %[[ZERO:.*]] = arith.constant 0 : index
// CHECK:         %[[ROWS:.*]] = oi_table.word @K "capacity.0" : index
// CHECK:         %[[INSIDE:.*]] = arith.cmpi slt, %[[B]], %[[ROWS]] : index
// CHECK-NEXT:    scf.if %[[INSIDE]] {
// CHECK:           %[[R:.*]] = arith.addi %{{.*}}, %[[B]] : index
// CHECK-NEXT:      %[[FIRST:.*]] = arith.muli %[[R]], %{{.*}} : index
// CHECK-NEXT:      oi_table.word @K "capacity.0" : index
// CHECK-NEXT:      %[[HEADS:.*]] = oi_table.word @K "capacity.1" : index
// CHECK-NEXT:      oi_table.word @K "capacity.2" : index
// CHECK-NEXT:      oi_table.grow "release" @K "data" (%[[FIRST]], %[[HEADS]])
// CHECK-NEXT:    } else {
// CHECK-NEXT:    }
// CHECK-NEXT:    oi_table.grow "sizes" @K "data" (%[[ZERO]], %[[ZERO]])
// CHECK-NOT:     oi_table.grow "sizes"
// CHECK:         %[[PAGE:.*]] = arith.index_cast %{{.*}} : i64 to index
// CHECK-NEXT:    %[[TAKEN:.*]] = arith.cmpi sge, %[[PAGE]], %[[ZERO]] : index
// CHECK-NEXT:    scf.if %[[TAKEN]] {
// CHECK:           oi_table.grow "page" @K "data"
// CHECK:           oi_table.buffer @K "refs"
// CHECK:           oi_table.grow "page" @K "data"
// CHECK:           %[[OWN:.*]] = arith.index_cast %{{.*}} : i64 to index
// CHECK-NEXT:      %[[BASE:.*]] = arith.muli %[[OWN]], %{{.*}} : index
// CHECK-NEXT:      %[[N:.*]] = arith.addi %[[BASE]], %{{.*}} : index
// CHECK-NEXT:      %[[OFFSET:.*]] = arith.muli %[[N]], %{{.*}} : index
// CHECK-NEXT:      oi_table.journal @K "data" [%[[OFFSET]], %{{.*}}]
// CHECK-NEXT:      oi_table.journal @K "present" [%[[N]], %{{.*}}]
// CHECK:           %[[ENTRY:.*]] = memref.subview %{{.*}}[%[[N]], 0] [1, 2] [1, 1]
// CHECK-NEXT:      %[[INIT:.*]] = arith.constant 1.500000e+00 : f32
// CHECK-NEXT:      scf.for %[[J:.*]] = %{{.*}} to %{{.*}} step %{{.*}} {
// CHECK-NEXT:        memref.store %[[INIT]], %[[ENTRY]][%[[J]]]
// CHECK-NEXT:      }
// CHECK:           memref.store %[[ABSENT]], %{{.*}}[%[[N]]] : memref<?xi8>
// CHECK-NEXT:      } else {
// CHECK-NEXT:      }
// CHECK-NEXT:    } else {
// CHECK-NEXT:    }
// CHECK-NEXT:    oi_table.grow "sizes" @K "data" (%[[ZERO]], %[[ZERO]])
// CHECK-NEXT:    %{{.*}} = arith.constant 0 : i32
// CHECK-NEXT:    func.return
builtin.module attributes {oi_table.state_layout = #oi_table.layout<words ?, block "entry", [
    #oi_table.var<@K table persistent f32[2] slot ?, indices [b, h, t], init 1.5, storage paged 4>]>} {
  func.func private @oi_grow(memref<?xi64>, i64, i64, i64, i64) -> i64
  func.func @step(%state: memref<?xi64>, %b: index, %h: index, %t: index) -> i32 {
    %K = oi_table.table @K : !oi_table.table<f32[2], [b, h, t], paged 4>
    oi_table.reset %K [%b] : !oi_table.table<f32[2], [b, h, t], paged 4>
    oi_table.reset %K [%b, %h, %t] keep_sizes : !oi_table.table<f32[2], [b, h, t], paged 4>
    oi_table.resize %K : !oi_table.table<f32[2], [b, h, t], paged 4>
    %ok = arith.constant 0 : i32
    func.return %ok : i32
  }
}

// -----

// A paged table whose indices are all @fixed: the reset of the whole table gives all its rows'
// pages back (from row 0, capacity.0 of them); the host's "sizes" keeps the fixed sizes and
// gives back pages left without a present entry (after each reset and the resize).
// CHECK-LABEL: func.func @step(
// CHECK-DAG:     %[[ZERO:.*]] = arith.constant 0 : index
// CHECK:         %[[FIRST:.*]] = arith.muli %[[ZERO]], %{{.*}} : index
// CHECK-NEXT:    %[[ROWS:.*]] = oi_table.word @F "capacity.0" : index
// CHECK-NEXT:    oi_table.word @F "capacity.1" : index
// CHECK-NEXT:    oi_table.grow "release" @F "data" (%[[FIRST]], %[[ROWS]])
// CHECK:         oi_table.grow "sizes" @F "data" (%[[ZERO]], %[[ZERO]])
// CHECK-NEXT:    oi_table.grow "sizes" @F "data" (%[[ZERO]], %[[ZERO]])
// CHECK-NOT:     oi_table.grow
// CHECK:         func.return
builtin.module attributes {oi_table.state_layout = #oi_table.layout<words ?, block "entry", [
    #oi_table.var<@F table persistent f32[2] slot ?, indices [b fixed 2, t fixed 16], storage paged 4>]>} {
  func.func private @oi_grow(memref<?xi64>, i64, i64, i64, i64) -> i64
  func.func @step(%state: memref<?xi64>) -> i32 {
    %F = oi_table.table @F : !oi_table.table<f32[2], [b fixed 2, t fixed 16], paged 4>
    oi_table.reset %F [] : !oi_table.table<f32[2], [b fixed 2, t fixed 16], paged 4>
    oi_table.resize %F : !oi_table.table<f32[2], [b fixed 2, t fixed 16], paged 4>
    %ok = arith.constant 0 : i32
    func.return %ok : i32
  }
}

// -----

// Paged storage, oi_table.copy_row (cache.fork): when the slice [a, b) is not empty, both rows'
// sizes raised and every source entry marked present; then the entries before the first whole
// page, [a, head) with first = (a + 3) / 4 and head = min(b, first * 4), copied one by one; each
// whole page inside, columns [first, max(first, last)) with last = b / 4, shared when the
// destination has no page there (its page-table entry and the page's count journaled, the page
// number stored, the count raised: copy on write), else copied entry by entry; then the rest,
// [max(last * 4, head), b), one by one.
// CHECK-LABEL: func.func @fork(
// CHECK-SAME:    %{{.*}}: memref<?xi64>, %[[SRC:.*]]: index, %[[DST:.*]]: index, %[[A:.*]]: index, %[[B:.*]]: index)
// CHECK-DAG:     %[[P:.*]] = arith.constant 4 : index
// CHECK-DAG:     %[[P_LESS_ONE:.*]] = arith.constant 3 : index
// CHECK-DAG:     %[[EIGHT:.*]] = arith.constant 8 : index
// CHECK-DAG:     %[[ONE_REF:.*]] = arith.constant 1 : i64
// CHECK:         %[[ANY:.*]] = arith.cmpi slt, %[[A]], %[[B]] : index
// CHECK-NEXT:    scf.if %[[ANY]] {
// CHECK:           func.call @oi_raise_size(%{{.*}}, %{{.*}}, %{{.*}}, %{{.*}}, %[[B]])
// CHECK:           func.call @oi_raise_size(%{{.*}}, %{{.*}}, %{{.*}}, %{{.*}}, %[[B]])
// CHECK:           scf.for %[[T:.*]] = %[[A]] to %[[B]] step %{{.*}} {
// CHECK:             memref.load %{{.*}}[%[[SRC]], %{{.*}}] : memref<?x?xi64>
// CHECK:             oi_table.journal @K "present"
// CHECK-NOT:         oi_table.journal @K "data"
// CHECK:           %[[UP:.*]] = arith.addi %[[A]], %[[P_LESS_ONE]] : index
// CHECK-NEXT:      %[[FIRST:.*]] = arith.divui %[[UP]], %[[P]] : index
// CHECK-NEXT:      %[[LAST:.*]] = arith.divui %[[B]], %[[P]] : index
// CHECK-NEXT:      %[[FIRST_T:.*]] = arith.muli %[[FIRST]], %[[P]] : index
// CHECK-NEXT:      %[[SHORT:.*]] = arith.cmpi slt, %[[B]], %[[FIRST_T]] : index
// CHECK-NEXT:      %[[FIRST_T2:.*]] = arith.muli %[[FIRST]], %[[P]] : index
// CHECK-NEXT:      %[[HEAD:.*]] = arith.select %[[SHORT]], %[[B]], %[[FIRST_T2]] : index
// CHECK-NEXT:      scf.for %[[T:.*]] = %[[A]] to %[[HEAD]] step %{{.*}} {
// CHECK:             memref.load %{{.*}}[%[[DST]], %{{.*}}] : memref<?x?xi64>
// CHECK:             oi_table.journal @K "data"
// CHECK:             "memref.copy"
// CHECK-NEXT:      }
// CHECK-NEXT:      %[[MORE:.*]] = arith.cmpi sgt, %[[FIRST]], %[[LAST]] : index
// CHECK-NEXT:      %[[END:.*]] = arith.select %[[MORE]], %[[FIRST]], %[[LAST]] : index
// CHECK-NEXT:      scf.for %[[C:.*]] = %[[FIRST]] to %[[END]] step %{{.*}} {
// CHECK:             %[[SP:.*]] = memref.load %{{.*}}[%[[SRC]], %[[C]]] : memref<?x?xi64>
// CHECK-NEXT:        %[[SHARED:.*]] = arith.index_cast %[[SP]] : i64 to index
// CHECK:             %[[DP:.*]] = memref.load %{{.*}}[%[[DST]], %[[C]]] : memref<?x?xi64>
// CHECK-NEXT:        %[[MINE:.*]] = arith.index_cast %[[DP]] : i64 to index
// CHECK-NEXT:        %[[NONE:.*]] = arith.cmpi slt, %[[MINE]], %{{.*}} : index
// CHECK-NEXT:        scf.if %[[NONE]] {
// CHECK-NEXT:          oi_table.word @K "capacity.0" : index
// CHECK-NEXT:          %[[CAP:.*]] = oi_table.word @K "capacity.1" : index
// CHECK-NEXT:          %[[CAP_UP:.*]] = arith.addi %[[CAP]], %[[P_LESS_ONE]] : index
// CHECK-NEXT:          %[[COLS:.*]] = arith.divui %[[CAP_UP]], %[[P]] : index
// CHECK:               %[[ROW:.*]] = arith.addi %{{.*}}, %[[DST]] : index
// CHECK-NEXT:          %[[ROW_START:.*]] = arith.muli %[[ROW]], %[[COLS]] : index
// CHECK-NEXT:          %[[WHERE:.*]] = arith.addi %[[ROW_START]], %[[C]] : index
// CHECK-NEXT:          %[[AT:.*]] = arith.muli %[[WHERE]], %[[EIGHT]] : index
// CHECK-NEXT:          oi_table.journal @K "pages" [%[[AT]], %[[EIGHT]]]
// CHECK-NEXT:          %[[NUMBER:.*]] = arith.index_cast %[[SHARED]] : index to i64
// CHECK:               memref.store %[[NUMBER]], %{{.*}}[%[[DST]], %[[C]]] : memref<?x?xi64>
// CHECK-NEXT:          %[[REF_AT:.*]] = arith.muli %[[SHARED]], %[[EIGHT]] : index
// CHECK-NEXT:          oi_table.journal @K "refs" [%[[REF_AT]], %[[EIGHT]]]
// CHECK-NEXT:          %{{.*}} = oi_table.word @K "pool" : index
// CHECK-NEXT:          %[[REFS:.*]] = oi_table.buffer @K "refs" (%{{.*}}) : memref<?xi64>
// CHECK-NEXT:          %[[COUNT:.*]] = memref.load %[[REFS]][%[[SHARED]]] : memref<?xi64>
// CHECK-NEXT:          %[[RAISED:.*]] = arith.addi %[[COUNT]], %[[ONE_REF]] : i64
// CHECK-NEXT:          memref.store %[[RAISED]], %[[REFS]][%[[SHARED]]] : memref<?xi64>
// CHECK-NEXT:        } else {
// CHECK-NEXT:          %[[BASE:.*]] = arith.muli %[[C]], %[[P]] : index
// CHECK-NEXT:          %[[STOP:.*]] = arith.addi %[[BASE]], %[[P]] : index
// CHECK-NEXT:          scf.for %{{.*}} = %[[BASE]] to %[[STOP]] step %{{.*}} {
// CHECK:                 oi_table.journal @K "data"
// CHECK:                 "memref.copy"
// CHECK-NEXT:          }
// CHECK-NEXT:        }
// CHECK-NEXT:      }
// CHECK-NEXT:      %[[LAST_T:.*]] = arith.muli %[[LAST]], %[[P]] : index
// CHECK-NEXT:      %[[LATER:.*]] = arith.cmpi sgt, %[[LAST_T]], %[[HEAD]] : index
// CHECK-NEXT:      %[[TAIL:.*]] = arith.select %[[LATER]], %[[LAST_T]], %[[HEAD]] : index
// CHECK-NEXT:      scf.for %{{.*}} = %[[TAIL]] to %[[B]] step %{{.*}} {
// CHECK:             oi_table.journal @K "data"
// CHECK:             "memref.copy"
// CHECK-NEXT:      }
// CHECK-NEXT:    } else {
// CHECK-NEXT:    }
// CHECK-NOT:     oi_table.copy_row
builtin.module attributes {oi_table.state_layout = #oi_table.layout<words ?, block "entry", [
    #oi_table.var<@K table persistent f32[2] slot ?, indices [b, t], storage paged 4>]>} {
  func.func private @oi_grow(memref<?xi64>, i64, i64, i64, i64) -> i64
  func.func @fork(%state: memref<?xi64>, %src: index, %dst: index, %a: index, %b: index) -> i32 {
    %K = oi_table.table @K : !oi_table.table<f32[2], [b, t], paged 4>
    oi_table.copy_row %K [%src, %a : %b] -> [%dst] : !oi_table.table<f32[2], [b, t], paged 4>
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

// A ring table's type parses, but no storage lowers it.
builtin.module attributes {oi_table.state_layout = #oi_table.layout<words ?, block "entry", [
    #oi_table.var<@K table persistent f32[4] slot ?, indices [p], storage dense>]>} {
  func.func @step(%state: memref<?xi64>, %t: index, %x: memref<4xf32>) -> i32 {
    %K = oi_table.table @K : !oi_table.table<f32[4], [p], ring>
    // expected-error @+1 {{oi_table.write: no storage pass lowers a ring table (dense and paged storages are implemented)}}
    oi_table.write %K [%t], %x : !oi_table.table<f32[4], [p], ring>, memref<4xf32>
    %ok = arith.constant 0 : i32
    func.return %ok : i32
  }
}

// -----

// The page size is part of the type: a table type's must be the state layout's.
builtin.module attributes {oi_table.state_layout = #oi_table.layout<words ?, block "entry", [
    #oi_table.var<@K table persistent f32[4] slot ?, indices [b, p], storage paged 4>]>} {
  func.func @step(%state: memref<?xi64>, %b: index, %t: index, %x: memref<4xf32>) -> i32 {
    %K = oi_table.table @K : !oi_table.table<f32[4], [b, p], paged 8>
    // expected-error @+1 {{oi_table.write: the type !oi_table.table<f32[4], [b, p], paged 8> does not match @K in the state layout}}
    oi_table.write %K [%b, %t], %x : !oi_table.table<f32[4], [b, p], paged 8>, memref<4xf32>
    %ok = arith.constant 0 : i32
    func.return %ok : i32
  }
}

// -----

// ... and so is the storage: a dense type for a paged table of the layout.
builtin.module attributes {oi_table.state_layout = #oi_table.layout<words ?, block "entry", [
    #oi_table.var<@K table persistent f32[4] slot ?, indices [b, p], storage paged 4>]>} {
  func.func @step(%state: memref<?xi64>, %b: index, %t: index, %x: memref<4xf32>) -> i32 {
    %K = oi_table.table @K : !oi_table.table<f32[4], [b, p], dense>
    // expected-error @+1 {{oi_table.write: the type !oi_table.table<f32[4], [b, p], dense> does not match @K in the state layout}}
    oi_table.write %K [%b, %t], %x : !oi_table.table<f32[4], [b, p], dense>, memref<4xf32>
    %ok = arith.constant 0 : i32
    func.return %ok : i32
  }
}
