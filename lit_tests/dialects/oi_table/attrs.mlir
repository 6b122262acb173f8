// The table level's attributes (dialects/oi_table.py): error sites, variable layouts and the
// state layout print in their custom form and read back unchanged.
//
// RUN: oi-opt %s --split-input-file | filecheck %s
// RUN: oi-opt %s --split-input-file | oi-opt - --split-input-file | filecheck %s
// RUN: oi-opt %s --split-input-file --mlir-print-op-generic | oi-opt - --split-input-file | filecheck %s

// Every clause of #oi_table.var: indices with and without @fixed, each kind of @init
// (integers, floats, booleans, the non-finite floats as strings), the tables a view shows,
// temporaries and transfer aliases, data in device memory; `?` for a size known at run time.
// CHECK-LABEL: builtin.module attributes {oi_table.state_layout = #oi_table.layout<words 40, block "entry", [
// CHECK-SAME:    #oi_table.var<@K table persistent f32[1, 4] slot 13, indices [pos fixed 1024, t], init 0.5, storage dense, device>,
// CHECK-SAME:    #oi_table.var<@keys view volatile f32[?, 1, 4] slot 20, tables [@K, @V]>,
// CHECK-SAME:    #oi_table.var<@tmp buffer volatile bf16[] slot 24, init "nan", temp>,
// CHECK-SAME:    #oi_table.var<@b buffer persistent bool[1] slot 26, init true>,
// CHECK-SAME:    #oi_table.var<@e buffer persistent f32[1] slot 27, init -1.0e-05>,
// CHECK-SAME:    #oi_table.var<@n buffer persistent i64[] slot 28, init -3>,
// CHECK-SAME:    #oi_table.var<@a buffer volatile f32[2] slot 29, aliases [@c]>]>} {
builtin.module attributes {oi_table.state_layout = #oi_table.layout<words 40, block "entry", [
    #oi_table.var<@K table persistent f32[1, 4] slot 13, indices [pos fixed 1024, t], init 0.5, storage dense, device>,
    #oi_table.var<@keys view volatile f32[?, 1, 4] slot 20, tables [@K, @V]>,
    #oi_table.var<@tmp buffer volatile bf16[] slot 24, init "nan", temp>,
    #oi_table.var<@b buffer persistent bool[1] slot 26, init true>,
    #oi_table.var<@e buffer persistent f32[1] slot 27, init -1.0e-05>,
    #oi_table.var<@n buffer persistent i64[] slot 28, init -3>,
    #oi_table.var<@a buffer volatile f32[2] slot 29, aliases [@c]>]>} {
}

// -----

// Error sites: class, message template, location (or none), statement and block.
// CHECK-LABEL: func.func @step() attributes {oi.error_sites = [
// CHECK-SAME:    #oi_table.site<CacheError "cache table K index 0 exceeds fixed size 4" at loc("g.oi":7:5) node "cache.write k >> K[t]" block "entry">,
// CHECK-SAME:    #oi_table.site<ExecutionError "expected {0}, got {1}" at loc(unknown) node "" block "">]} {
func.func @step() attributes {oi.error_sites = [
    #oi_table.site<CacheError "cache table K index 0 exceeds fixed size 4" at loc("g.oi":7:5) node "cache.write k >> K[t]" block "entry">,
    #oi_table.site<ExecutionError "expected {0}, got {1}" at loc(unknown) node "" block "">]} {
  func.return
}

// -----

// A paged table's storage clause: its page size after `paged`, then the pool's first size in
// pages when the declaration gave one (`pool` is left out for the default), after @init.
// CHECK-LABEL: builtin.module attributes {oi_table.state_layout = #oi_table.layout<words 32, block "entry", [
// CHECK-SAME:    #oi_table.var<@K table persistent f32[2] slot 13, indices [b, t], storage paged 4 pool 64>,
// CHECK-SAME:    #oi_table.var<@V table persistent f16[1, 2] slot 22, indices [b, t fixed 128], init 1.5, storage paged 16>]>} {
builtin.module attributes {oi_table.state_layout = #oi_table.layout<words 32, block "entry", [
    #oi_table.var<@K table persistent f32[2] slot 13, indices [b, t], storage paged 4 pool 64>,
    #oi_table.var<@V table persistent f16[1, 2] slot 22, indices [b, t fixed 128], init 1.5, storage paged 16>]>} {
}
