// What the table level's attribute verifiers and parsers refuse.
//
// RUN: oi-opt %s --split-input-file --verify-diagnostics

// expected-error@+1 {{#oi_table.site: error class must be one of CacheError, ExecutionError, got ValueError}}
func.func @bad_class() attributes {s = #oi_table.site<ValueError "x" at loc(unknown) node "" block "">} {
  func.return
}

// -----

// expected-error@+1 {{#oi_table.var: kind must be one of buffer, table, auto, prefix, resizable, view, got heap}}
func.func @bad_kind() attributes {v = #oi_table.var<@x heap volatile f32[1] slot 13>} {
  func.return
}

// -----

// expected-error@+1 {{#oi_table.layout: a variable is laid out twice}}
func.func @twice() attributes {l = #oi_table.layout<words 15, block "entry", [#oi_table.var<@x buffer volatile f32[1] slot 13>, #oi_table.var<@x buffer volatile f32[1] slot 14>]>} {
  func.return
}

// -----

// expected-error@+1 {{unknown clause bogus (indices, init, tables, temp, aliases, storage or device)}}
func.func @clause() attributes {v = #oi_table.var<@x buffer volatile f32[1] slot 13, bogus>} {
  func.return
}

// -----

// A paged storage reads its page size right after `paged`: without one it is a parse error.
// expected-error@+1 {{Expected integer literal}}
func.func @paged() attributes {v = #oi_table.var<@K table persistent f32[4] slot 13, indices [p], storage paged>} {
  func.return
}

// -----

// A page size of 0 parses; the verifier wants a positive one.
// expected-error@+1 {{#oi_table.var: a paged table has a positive page size, no other variable has one}}
func.func @page_zero() attributes {v = #oi_table.var<@K table persistent f32[4] slot 13, indices [p], storage paged 0>} {
  func.return
}

// -----

// Only a table has a storage, paged ones included.
// expected-error@+1 {{#oi_table.var: a table's storage is dense or paged (a ring storage is not implemented yet), got paged for a buffer}}
func.func @paged_buffer() attributes {v = #oi_table.var<@x buffer persistent f32[4] slot 13, storage paged 4>} {
  func.return
}

// -----

// Ring storage has no lowering: a layout may not say it.
// expected-error@+1 {{#oi_table.var: a table's storage is dense or paged (a ring storage is not implemented yet), got ring for a table}}
func.func @ring() attributes {v = #oi_table.var<@K table persistent f32[4] slot 13, indices [p], storage ring>} {
  func.return
}

// -----

// A dense storage has no page size: the number after `dense` is not read.
// expected-error@+1 {{'>' expected}}
func.func @dense_page() attributes {v = #oi_table.var<@K table persistent f32[4] slot 13, indices [p], storage dense 4>} {
  func.return
}

// -----

func.func @write_slice(%a: index, %b: index, %src: memref<4xf32>) {
  %K = oi_table.table @K : !oi_table.table<f32[4], [p], dense>
  // expected-error@+1 {{oi_table.write takes an index per table index, no slice}}
  oi_table.write %K [%a : %b], %src : !oi_table.table<f32[4], [p], dense>, memref<4xf32>
  func.return
}

// -----

func.func @bounds(%a: index) {
  %K = oi_table.table @K : !oi_table.table<f32[4], [p], dense>
  // expected-error@+1 {{oi_table.reset: the selection takes 1 bounds, got 2}}
  "oi_table.reset"(%K, %a, %a) <{slices = array<i64: 0>}> : (!oi_table.table<f32[4], [p], dense>, index, index) -> ()
  func.return
}

// -----

func.func @rank(%a: index, %src: memref<4xf32>) {
  %K = oi_table.table @K : !oi_table.table<f32[4], [l, p], dense>
  // expected-error@+1 {{oi_table.write: the table has 2 indices, the selection 1}}
  oi_table.write %K [%a], %src : !oi_table.table<f32[4], [l, p], dense>, memref<4xf32>
  func.return
}

// -----

func.func @entry_shape(%a: index, %src: memref<8xf32>) {
  %K = oi_table.table @K : !oi_table.table<f32[4], [p], dense>
  // expected-error@+1 {{oi_table.write: the source must be a memref of 4 f32 (the selected entries), got memref<8xf32>}}
  oi_table.write %K [%a], %src : !oi_table.table<f32[4], [p], dense>, memref<8xf32>
  func.return
}

// -----

func.func @view_rank(%a: index, %b: index) {
  %K = oi_table.table @K : !oi_table.table<f32[4], [l, p], dense>
  // expected-error@+1 {{oi_table.view: the view must be a memref of ?x4 f32 (the selected entries), got memref<?x?x4xf32>}}
  %v = oi_table.view %K [%a, %a : %b] : !oi_table.table<f32[4], [l, p], dense> -> memref<?x?x4xf32>
  func.return
}

// -----

// A slice of a paged table may span pages: its view names the variable to gather it into.
func.func @paged_view_without_gather(%b: index, %c: index) {
  %K = oi_table.table @K : !oi_table.table<f32[4], [p], paged 8>
  // expected-error@+1 {{oi_table.view: a slice of a paged table may span pages: it needs a variable to gather into (`gather @v`)}}
  %v = oi_table.view %K [%b : %c] : !oi_table.table<f32[4], [p], paged 8> -> memref<?x4xf32, strided<[4, 1], offset: ?>>
  func.return
}

// -----

func.func @gather_on_dense(%b: index, %c: index) {
  %K = oi_table.table @K : !oi_table.table<f32[4], [p], dense>
  // expected-error@+1 {{oi_table.view: `gather` is only for a slice of a paged table}}
  %v = oi_table.view %K [%b : %c] gather @v : !oi_table.table<f32[4], [p], dense> -> memref<?x4xf32, strided<[4, 1], offset: ?>>
  func.return
}

// -----

// expected-error@+1 {{!oi_table.table: storage must be one of dense, paged, ring, got sparse}}
func.func @storage(%K: !oi_table.table<f32[4], [p], sparse>) {
  func.return
}

// -----

// A paged table type without its page size: a parse error.
// expected-error@+1 {{Expected integer literal}}
func.func @paged_type(%K: !oi_table.table<f32[4], [p], paged>) {
  func.return
}

// -----

// expected-error@+1 {{!oi_table.table: a paged table has a positive page size (`paged 16`), no other storage has one}}
func.func @paged_type_zero(%K: !oi_table.table<f32[4], [p], paged 0>) {
  func.return
}

// -----

// A page size only follows `paged`.
// expected-error@+1 {{'>' expected}}
func.func @dense_type_page(%K: !oi_table.table<f32[4], [p], dense 4>) {
  func.return
}

// -----

// oi_table.copy_row's custom form: the source's last item must be a slice.
func.func @copy_no_slice(%a: index, %b: index, %d: index) {
  %K = oi_table.table @K : !oi_table.table<f32[4], [s, p], paged 4>
  // expected-error@+1 {{oi_table.copy_row: a source row and a slice of its last index, then a destination row of as many indices}}
  oi_table.copy_row %K [%a, %b] -> [%d] : !oi_table.table<f32[4], [s, p], paged 4>
  func.return
}

// -----

// ... and the destination row has one index fewer than the source's selection.
func.func @copy_long_dest(%a: index, %b: index, %d: index) {
  %K = oi_table.table @K : !oi_table.table<f32[4], [s, p], paged 4>
  // expected-error@+1 {{oi_table.copy_row: a source row and a slice of its last index, then a destination row of as many indices}}
  oi_table.copy_row %K [%d, %a : %b] -> [%d, %d] : !oi_table.table<f32[4], [s, p], paged 4>
  func.return
}

// -----

// The verifier checks the shape against the table's indices: a slice of the last index alone
// does not name a source row of a table of two indices.
func.func @copy_rank(%a: index, %b: index) {
  %K = oi_table.table @K : !oi_table.table<f32[4], [s, p], paged 4>
  // expected-error@+1 {{oi_table.copy_row: a source row and a slice of its last index, then a destination row (rows of 1 index values)}}
  oi_table.copy_row %K [%a : %b] -> [] : !oi_table.table<f32[4], [s, p], paged 4>
  func.return
}

// -----

// The generic form: a slice of a leading index is refused.
func.func @copy_generic_slices(%a: index, %b: index, %d: index) {
  %K = oi_table.table @K : !oi_table.table<f32[4], [s, p], dense>
  // expected-error@+1 {{oi_table.copy_row: a source row and a slice of its last index, then a destination row (rows of 1 index values)}}
  "oi_table.copy_row"(%K, %a, %b, %d, %d) <{slices = array<i64: 1, 0, 0>}> : (!oi_table.table<f32[4], [s, p], dense>, index, index, index, index) -> ()
  func.return
}

// -----

// The generic form: no destination row.
func.func @copy_generic_no_dest(%a: index, %b: index, %d: index) {
  %K = oi_table.table @K : !oi_table.table<f32[4], [s, p], dense>
  // expected-error@+1 {{oi_table.copy_row: a source row and a slice of its last index, then a destination row (rows of 1 index values)}}
  "oi_table.copy_row"(%K, %d, %a, %b) <{slices = array<i64: 0, 1>}> : (!oi_table.table<f32[4], [s, p], dense>, index, index, index) -> ()
  func.return
}
