// -t llvm prints the LLVM IR of func/scf/memref/arith/math input. Each function's code is an
// internal body (`@scale.body`: allocated and aligned pointers, offset, sizes, strides, no noalias,
// so calls inside a module may alias); the exported symbol is a thin wrapper with the C ABI whose
// memref pointers are noalias (the ctypes side refuses overlapping written arrays), calling the
// body always-inline. Loops are phi-headed blocks; boundary tiles use llvm.smin.
// A graph that is not lowered yet is one diagnostic, exit 1.
//
// RUN: oi-opt %s --tile=sizes=4 --lower-nests -t llvm | filecheck %s
// RUN: bash -c 'oi-opt %examples/kv_decode.oi -t llvm; echo exit $?' 2>&1 | filecheck %s --check-prefix=GRAPH

// CHECK:      define internal void @"scale.body"(ptr %"x.allocated", ptr %"x.ptr", i64 %"x.offset", i64 %"x.size0", i64 %"x.stride0",
// CHECK:      phi i64
// CHECK:      call i64 @"llvm.smin.i64"(i64 4,
// CHECK:      getelementptr inbounds float, ptr %"x.ptr"
// CHECK:      fmul float
// CHECK:      store float
// CHECK:      define void @"scale"(ptr captures(none) noalias align 4 %"x.ptr", i64 %"x.offset", i64 %"x.size0", i64 %"x.stride0", ptr captures(none) noalias align 4 %"y.ptr",
// CHECK-NEXT: {
// CHECK-NEXT: entry:
// CHECK-NEXT:   call void @"scale.body"({{.*}}) alwaysinline
// GRAPH: kv_decode.oi: error: -t llvm takes func/scf/memref/arith/math IR; an oi.graph must be lowered first
// GRAPH-NEXT: exit 1
func.func @scale(%x: memref<?xf32>, %y: memref<?xf32>) {
  linalg.generic {indexing_maps = [affine_map<(i) -> (i)>, affine_map<(i) -> (i)>], iterator_types = ["parallel"]} ins(%x : memref<?xf32>) outs(%y : memref<?xf32>) {
  ^bb0(%a: f32, %b: f32):
    %two = arith.constant 2.0 : f32
    %s = arith.mulf %a, %two : f32
    linalg.yield %s : f32
  }
  func.return
}
