// --assign-state-slots: each variable's words placed in the state array, one variable after
// another after the header's 13 words, in the layout's order; `extra` (the step's own words) last.
// A scalar buffer takes one word (its address), an `assign` temporary two (address, exists), a
// table of rank 1 four (data, present, capacity.0, size.0), a view destination of a rank-1 table
// four (table, stamp, start.0, count.0).
//
// RUN: oi-opt %s --assign-state-slots | filecheck %s

// CHECK:      builtin.module attributes {oi_table.state_layout = #oi_table.layout<words 30, block "entry", [
// CHECK-SAME:   #oi_table.var<@x buffer volatile f32[4] slot 16>,
// CHECK-SAME:   #oi_table.var<@tmp buffer volatile f32[4] slot 17, temp>,
// CHECK-SAME:   #oi_table.var<@K table persistent f32[4] slot 19, indices [p], storage dense>,
// CHECK-SAME:   #oi_table.var<@keys view volatile f32[?, 4] slot 23, tables [@K]>,
// CHECK-SAME:   #oi_table.var<@t buffer persistent i32[] slot 27, init 0>], extra ["pending", "ended"]>} {
builtin.module attributes {oi_table.state_layout = #oi_table.layout<words ?, block "entry", [
    #oi_table.var<@x buffer volatile f32[4] slot ?>,
    #oi_table.var<@tmp buffer volatile f32[4] slot ?, temp>,
    #oi_table.var<@K table persistent f32[4] slot ?, indices [p], storage dense>,
    #oi_table.var<@keys view volatile f32[?, 4] slot ?, tables [@K]>,
    #oi_table.var<@t buffer persistent i32[] slot ?, init 0>], extra ["pending", "ended"]>} {
}
