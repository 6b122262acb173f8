// Every op of the `oi` dialect keeps the discardable attributes a pass attaches, in its custom
// form: `attr-dict` last (before the trailing `: type` where there is one), printed only when
// not empty. The first RUN prints the custom form and reads it back; the second goes through
// the generic form first.
//
// RUN: oi-opt %s --split-input-file | oi-opt - --split-input-file | filecheck %s --match-full-lines
// RUN: oi-opt %s --split-input-file --mlir-print-op-generic | oi-opt - --split-input-file | filecheck %s --match-full-lines

// The graph level: every statement, the graph, its vars and blocks.

oi.graph @g {
  oi.var dynamic @x : f32[D] {my.attr = 1 : i64}
  oi.var constant @W(l) : f32[D] @pattern("w.{l}") {my.attr = "w"}
  oi.var volatile @c : bool {my.unit}
  oi.var persistent @t : i32 @init(0) {my.attr = 2 : i64, other.attr = [1 : i64, "two"]}
  oi.var persistent @K(l, pos) : f32[D] @table @fixed(pos = 8) {my.attr = #oi.ref<@W[l]>}
  oi.var volatile @y : f32[D]
  oi.block @entry {
    oi.assign @tmp {my.attr = 3 : i64} : f32[D]
    oi.op add(@x, @W[0]) -> @y {my.attr = 4 : i64}
    oi.cache.write @y -> @K[0, t] {my.attr = 5 : i64}
    oi.cache.read @K[0, t] -> @y {my.attr = 6 : i64}
    oi.cache.increment 2 @t {my.attr = 7 : i64}
    oi.cache.decrement 1 @t {my.attr = 8 : i64}
    oi.cache.reset @K[] {my.attr = 9 : i64}
    oi.cache.reset @t {my.attr = 10 : i64}
    oi.branch @c, @other, @other {my.attr = 11 : i64}
    oi.branch @other {my.attr = 12 : i64}
    oi.barrier {my.attr = 13 : i64}
    oi.dep after(@other) before(@entry) {my.attr = 14 : i64}
    oi.transfer @y -> @tmp {my.attr = 15 : i64}
    oi.loop layers (l in 0 to 2) {
      oi.return {my.attr = 16 : i64}
    } {my.attr = 17 : i64}
    oi.loop empty (e in 0 to 0) {
    } {my.attr = 18 : i64}
    oi.yield @y {my.attr = 19 : i64}
    oi.await @y, @tmp {my.attr = 20 : i64}
    oi.return {my.attr = 21 : i64}
  } {my.attr = 22 : i64}
  oi.block @other {
  } {my.attr = 23 : i64}
} {my.attr = 24 : i64}

// CHECK-LABEL:  oi.graph @g {
// CHECK-NEXT:     oi.var dynamic @x : f32[D] {my.attr = 1 : i64}
// CHECK-NEXT:     oi.var constant @W(l) : f32[D] @pattern("w.{l}") {my.attr = "w"}
// CHECK-NEXT:     oi.var volatile @c : bool {my.unit}
// CHECK-NEXT:     oi.var persistent @t : i32 @init(0) {my.attr = 2 : i64, other.attr = [1 : i64, "two"]}
// CHECK-NEXT:     oi.var persistent @K(l, pos) : f32[D] @table @fixed(pos = 8) {my.attr = #oi.ref<@W[l]>}
// CHECK-NEXT:     oi.var volatile @y : f32[D]
// CHECK-NEXT:     oi.block @entry {
// CHECK-NEXT:       oi.assign @tmp {my.attr = 3 : i64} : f32[D]
// CHECK-NEXT:       oi.op add(@x, @W[0]) -> @y {my.attr = 4 : i64}
// CHECK-NEXT:       oi.cache.write @y -> @K[0, t] {my.attr = 5 : i64}
// CHECK-NEXT:       oi.cache.read @K[0, t] -> @y {my.attr = 6 : i64}
// CHECK-NEXT:       oi.cache.increment 2 @t {my.attr = 7 : i64}
// CHECK-NEXT:       oi.cache.decrement 1 @t {my.attr = 8 : i64}
// CHECK-NEXT:       oi.cache.reset @K[] {my.attr = 9 : i64}
// CHECK-NEXT:       oi.cache.reset @t {my.attr = 10 : i64}
// CHECK-NEXT:       oi.branch @c, @other, @other {my.attr = 11 : i64}
// CHECK-NEXT:       oi.branch @other {my.attr = 12 : i64}
// CHECK-NEXT:       oi.barrier {my.attr = 13 : i64}
// CHECK-NEXT:       oi.dep after(@other) before(@entry) {my.attr = 14 : i64}
// CHECK-NEXT:       oi.transfer @y -> @tmp {my.attr = 15 : i64}
// CHECK-NEXT:       oi.loop layers (l in 0 to 2) {
// CHECK-NEXT:         oi.return {my.attr = 16 : i64}
// CHECK-NEXT:       } {my.attr = 17 : i64}
// CHECK-NEXT:       oi.loop empty (e in 0 to 0) {
// CHECK-NEXT:       } {my.attr = 18 : i64}
// CHECK-NEXT:       oi.yield @y {my.attr = 19 : i64}
// CHECK-NEXT:       oi.await @y, @tmp {my.attr = 20 : i64}
// CHECK-NEXT:       oi.return {my.attr = 21 : i64}
// CHECK-NEXT:     } {my.attr = 22 : i64}
// CHECK-NEXT:     oi.block @other {
// CHECK-NEXT:     } {my.attr = 23 : i64}
// CHECK-NEXT:   } {my.attr = 24 : i64}

// -----

// The lowering stages' ops: oi.kernel (with a body, with run-time settings, with a static
// error and no body), oi.state_view (with and without dynamic sizes), oi.step_exit.

oi.graph @k {
  oi.var volatile @q : f32[2, 8]
  oi.var persistent @pos : i32 @init(0)
  oi.block @entry {
    oi.kernel add(@q, @q) -> @q <{nest_key = "add-2x8"}> {
    ^bb0(%a: memref<2x8xf32>, %b: memref<2x8xf32>, %c: memref<2x8xf32>):
      "test.op"() : () -> ()
    } {my.attr = 1 : i64}
    oi.kernel rope(@q, position = @pos, theta = 10000.0) -> @q <{runtime_settings = ["position"]}> {
    ^bb0(%a: memref<2x8xf32>, %b: memref<2x8xf32>, %p: i32):
    } {my.attr = 2 : i64}
    oi.kernel add(@q, @q) -> @q <{static_error = "no"}> {
    } {my.attr = 3 : i64}
    oi.return
  }
}

// CHECK-LABEL:  oi.graph @k {
// CHECK:            oi.kernel add(@q, @q) -> @q <{nest_key = "add-2x8"}> {
// CHECK-NEXT:       ^bb0(%{{.*}}: memref<2x8xf32>, %{{.*}}: memref<2x8xf32>, %{{.*}}: memref<2x8xf32>):
// CHECK-NEXT:         "test.op"() : () -> ()
// CHECK-NEXT:       } {my.attr = 1 : i64}
// CHECK-NEXT:       oi.kernel rope(@q, position = @pos, theta = 10000.0) -> @q <{runtime_settings = ["position"]}> {
// CHECK-NEXT:       ^bb0(%{{.*}}: memref<2x8xf32>, %{{.*}}: memref<2x8xf32>, %{{.*}}: i32):
// CHECK-NEXT:       } {my.attr = 2 : i64}
// CHECK-NEXT:       oi.kernel add(@q, @q) -> @q <{static_error = "no"}> {
// CHECK-NEXT:       } {my.attr = 3 : i64}

// -----

func.func @step(%s: memref<?xi64>, %slot: index, %n: index, %code: i32) {
  %a = oi.state_view %s[%slot] {my.attr = 1 : i64} : memref<?xi64> -> memref<4xf32>
  %b = oi.state_view %s[%slot] (%n) {my.attr = 2 : i64} : memref<?xi64> -> memref<?x4xf32>
  %c = oi.state_view %s[%slot] : memref<?xi64> -> memref<i32>
  oi.step_exit %code {my.attr = 3 : i64} : i32
  oi.step_exit %code : i32
  func.return
}

// CHECK-LABEL:  func.func @step(%{{.*}}: memref<?xi64>, %{{.*}}: index, %{{.*}}: index, %{{.*}}: i32) {
// CHECK-NEXT:     %a = oi.state_view %s[%slot] {my.attr = 1 : i64} : memref<?xi64> -> memref<4xf32>
// CHECK-NEXT:     %b = oi.state_view %s[%slot] (%n) {my.attr = 2 : i64} : memref<?xi64> -> memref<?x4xf32>
// CHECK-NEXT:     %c = oi.state_view %s[%slot] : memref<?xi64> -> memref<i32>
// CHECK-NEXT:     oi.step_exit %code {my.attr = 3 : i64} : i32
// CHECK-NEXT:     oi.step_exit %code : i32

// -----

// oi.nest before and after --tile (`oi.scheduled`, no block arguments), with a name that is
// not a bare identifier.

func.func @nest(%A: memref<4x8xf32>, %B: memref<4x8xf32>) {
  oi.nest domain(i = 4, j = 8) arrays(input A = %A : memref<4x8xf32>, input_output "B 2" = %B : memref<4x8xf32>) {
  ^bb0(%i: index, %j: index):
    %a = memref.load %A[%i, %j] : memref<4x8xf32>
    memref.store %a, %B[%i, %j] : memref<4x8xf32>
  } {oi.schedule = {splits = [["i", "ii", 2]]}, my.attr = 1 : i64}
  oi.nest domain(i = 4) arrays(input_output A = %A : memref<4x8xf32>) {
  } {oi.scheduled, my.attr = 2 : i64}
  oi.nest domain(i = 1) arrays() {
  ^bb0(%i: index):
  }
  func.return
}

// CHECK-LABEL:  func.func @nest(%{{.*}}: memref<4x8xf32>, %{{.*}}: memref<4x8xf32>) {
// CHECK-NEXT:     oi.nest domain(i = 4, j = 8) arrays(input A = %A : memref<4x8xf32>, input_output "B 2" = %B : memref<4x8xf32>) {
// CHECK-NEXT:     ^bb0(%i: index, %j: index):
// CHECK-NEXT:       %a = memref.load %A[%i, %j] : memref<4x8xf32>
// CHECK-NEXT:       memref.store %a, %B[%i, %j] : memref<4x8xf32>
// CHECK-NEXT:     } {oi.schedule = {splits = [["i", "ii", 2 : i64]]}, my.attr = 1 : i64}
// CHECK-NEXT:     oi.nest domain(i = 4) arrays(input_output A = %A : memref<4x8xf32>) {
// CHECK-NEXT:     } {oi.scheduled, my.attr = 2 : i64}
// CHECK-NEXT:     oi.nest domain(i = 1) arrays() {
// CHECK-NEXT:     ^bb0(%{{.*}}: index):
// CHECK-NEXT:     }
