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
  // expected-error@+1 {{oi_table.write takes an index per table index, no slice}}
  oi_table.write @K [%a : %b], %src : memref<4xf32>
  func.return
}

// -----

func.func @bounds(%a: index) {
  // expected-error@+1 {{oi_table.reset: the selection takes 1 bounds, got 2}}
  "oi_table.reset"(%a, %a) <{var = @K, slices = array<i64: 0>}> : (index, index) -> ()
  func.return
}
