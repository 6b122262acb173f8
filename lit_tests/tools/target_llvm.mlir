// -t llvm prints the LLVM IR of func/scf/memref/arith/math input: memref arguments become a
// noalias data pointer, an offset, sizes and strides (in elements); loops are phi-headed blocks.
// A graph that is not lowered yet is one diagnostic, exit 1.
//
// RUN: oi-opt %s --tile=sizes=4 --lower-nests -t llvm | filecheck %s
// RUN: bash -c 'oi-opt %examples/kv_decode.oi -t llvm; echo exit $?' 2>&1 | filecheck %s --check-prefix=GRAPH

// CHECK:      define void @"scale"(ptr captures(none) noalias align 4 %"x.ptr", i64 %"x.offset", i64 %"x.size0", i64 %"x.stride0", ptr captures(none) noalias align 4 %"y.ptr", i64 %"y.offset", i64 %"y.size0", i64 %"y.stride0")
// CHECK:      phi i64
// CHECK:      getelementptr
// CHECK:      fmul float
// CHECK:      store float
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
