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

// expected-error@+1 {{unknown clause bogus (indices, init, tables, temp, aliases or storage)}}
func.func @clause() attributes {v = #oi_table.var<@x buffer volatile f32[1] slot 13, bogus>} {
  func.return
}

// -----

// expected-error@+1 {{#oi_table.var: a table's storage is dense (paged and ring storages are not implemented yet), got paged for a table}}
func.func @paged() attributes {v = #oi_table.var<@K table persistent f32[4] slot 13, indices [p], storage paged>} {
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

// expected-error@+1 {{!oi_table.table: storage must be one of dense, paged, ring, got sparse}}
func.func @storage(%K: !oi_table.table<f32[4], [p], sparse>) {
  func.return
}
