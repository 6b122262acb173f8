// --double-buffer on the caches --cache marked `oi.double_buffer` (Accera's double_buffer=True,
// ../shared/reference/accera.md 1.6.8). With T the cache's trigger loop and P the loop around it:
// the block of P's first iteration is copied in before P (oi.prefill); P then runs every
// iteration but the last, `last = lb + ((ub - lb - 1) floordiv step) * step`, and each one
// prefetches the next block (P + step) into a second buffer `<name>_temp` (oi.prefetch), computes
// from the cache, and copies the temp into the cache after T (memref.copy, oi.prefetch_swap);
// the last iteration is peeled after P (oi.peeled) and computes from what the cache holds.
// Without a loop around T the cache stays single-buffered (and a warning says so).
//
// RUN: oi-opt %s --split-input-file --tile --cache --double-buffer 2>/dev/null | filecheck %s
// RUN: oi-opt %s --split-input-file --tile --cache --double-buffer 2>&1 >/dev/null | filecheck %s --check-prefix=WARN
// The fill is found again after a round trip through text (affine.apply prints no attributes):
// RUN: oi-opt %s --split-input-file --tile --cache | oi-opt - --split-input-file --double-buffer 2>/dev/null | filecheck %s --check-prefix=TEXT

// cache(A, index=ii, double_buffer=True): T = ii, P = k (8 = two blocks of 4). The prefill copies
// the k = 0 block into AA before k; k runs up to `last` (4); each iteration prefetches the block
// at k + 4 into AA_temp right before ii, computes from AA, then copies AA_temp into AA; the
// peeled iteration runs ii/jj/kk at k = last, reading AA, with no prefetch.
// CHECK-LABEL: func.func @double_buffer
// CHECK:         %[[AA:.*]] = memref.alloca() {oi.cache = "AA", {{.*}}} : memref<4x4xf32>
// CHECK-NEXT:    %[[TEMP:.*]] = memref.alloca() {oi.cache = "AA_temp", {{.*}}oi.double_buffer_temp{{.*}}} : memref<4x4xf32>
// CHECK:         scf.for %[[I:i]] = %{{.*}} to %{{.*}} step %{{.*}} {
// CHECK:           scf.for %[[J:j]] = %{{.*}} to %{{.*}} step %{{.*}} {
// CHECK-NEXT:        %[[KLB:.*]] = arith.constant 0 : index
// CHECK-NEXT:        %[[KUB:.*]] = arith.constant 8 : index
// CHECK-NEXT:        %[[KSTEP:.*]] = arith.constant 4 : index
// The prologue: the first block (k = lb), into the cache.
// CHECK-NEXT:        arith.constant {oi.cache_fill = "AA", oi.prefill = "AA"} 4 : index
// CHECK:             scf.for %[[P0:.*]] = %{{.*}} to %{{.*}} step %{{.*}} {
// CHECK:               scf.for %[[P1:.*]] = %{{.*}} to %{{.*}} step %{{.*}} {
// CHECK-NEXT:            %[[R:.*]] = affine.apply affine_map<(d0, d1) -> ((d0 + d1))> (%[[I]], %[[P0]])
// CHECK-NEXT:            %[[COL:.*]] = affine.apply affine_map<(d0, d1) -> ((d0 + d1))> (%[[KLB]], %[[P1]])
// CHECK-NEXT:            %[[V:.*]] = memref.load %A[%[[R]], %[[COL]]] : memref<16x8xf32>
// CHECK-NEXT:            memref.store %[[V]], %[[AA]][%[[P0]], %[[P1]]] : memref<4x4xf32>
// CHECK:             } {oi.cache_fill = "AA", oi.prefill = "AA"}
// The steady state: every iteration but the last.
// CHECK-NEXT:        %[[LAST:last]] = affine.apply affine_map<(d0, d1) -> ((d0 + ((((d1 + (d0 * -1)) + -1) floordiv 4) * 4)))> (%[[KLB]], %[[KUB]])
// CHECK-NEXT:        scf.for %[[K:k]] = %[[KLB]] to %[[LAST]] step %[[KSTEP]] {
// CHECK-NOT:           oi.cache_fill = "AA"}
// CHECK:               %[[NEXT:.*]] = affine.apply affine_map<(d0) -> ((d0 + 4))> (%[[K]])
// CHECK-NEXT:          arith.constant {oi.cache_fill = "AA", oi.prefetch = "AA"} 4 : index
// CHECK:               scf.for %[[F0:.*]] = %{{.*}} to %{{.*}} step %{{.*}} {
// CHECK:                 scf.for %[[F1:.*]] = %{{.*}} to %{{.*}} step %{{.*}} {
// CHECK-NEXT:              %[[R2:.*]] = affine.apply affine_map<(d0, d1) -> ((d0 + d1))> (%[[I]], %[[F0]])
// CHECK-NEXT:              %[[COL2:.*]] = affine.apply affine_map<(d0, d1) -> ((d0 + d1))> (%[[NEXT]], %[[F1]])
// CHECK-NEXT:              %[[V2:.*]] = memref.load %A[%[[R2]], %[[COL2]]] : memref<16x8xf32>
// CHECK-NEXT:              memref.store %[[V2]], %[[TEMP]][%[[F0]], %[[F1]]] : memref<4x4xf32>
// CHECK:               } {oi.cache_fill = "AA", oi.prefetch = "AA"}
// CHECK-NEXT:          scf.for %{{.*}} = %[[I]] to %{{.*}} step %{{.*}} {
// CHECK:                     %a = memref.load %[[AA]][%{{.*}}, %{{.*}}] : memref<4x4xf32>
// CHECK:               } {oi.index = "ii", oi.dim = 0 : i64, oi.span = 4 : i64}
// CHECK-NEXT:          "memref.copy"(%[[TEMP]], %[[AA]]) {oi.prefetch_swap = "AA"} : (memref<4x4xf32>, memref<4x4xf32>) -> ()
// CHECK-NEXT:        } {oi.index = "k", oi.dim = 2 : i64, oi.span = 8 : i64}
// The last iteration, peeled: k = last, from the cache, no prefetch.
// CHECK-NOT:         oi.prefetch
// CHECK:             scf.for %{{.*}} = %[[I]] to %{{.*}} step %{{.*}} {
// CHECK:                 %[[KKEND:.*]] = affine.apply affine_map<(d0) -> ((d0 + 4))> (%[[LAST]])
// CHECK-NEXT:            %{{.*}} = arith.constant 1 : index
// CHECK-NEXT:            scf.for %[[KK:.*]] = %[[LAST]] to %[[KKEND]] step %{{.*}} {
// CHECK:                   %[[Y:.*]] = affine.apply affine_map<(d0, d1) -> ((d0 + (d1 * -1)))> (%[[KK]], %[[LAST]])
// CHECK-NEXT:              %{{.*}} = memref.load %[[AA]][%{{.*}}, %[[Y]]] : memref<4x4xf32>
// CHECK:             } {oi.index = "ii", oi.dim = 0 : i64, oi.span = 4 : i64, oi.peeled = "AA"}
// CHECK-NEXT:      } {oi.index = "j", oi.dim = 1 : i64, oi.span = 16 : i64}
// CHECK-NOT:     memref.copy
// CHECK:       } {oi.scheduled}
func.func @double_buffer(%A: memref<16x8xf32>, %B: memref<8x16xf32>, %C: memref<16x16xf32>) {
  "oi.nest"(%A, %B, %C) <{domain = array<i64: 16, 16, 8>, indices = ["i", "j", "k"], names = ["A", "B", "C"], roles = ["input", "input", "input_output"]}> ({
  ^bb0(%i: index, %j: index, %k: index):
    %c = memref.load %C[%i, %j] : memref<16x16xf32>
    %a = memref.load %A[%i, %k] : memref<16x8xf32>
    %b = memref.load %B[%k, %j] : memref<8x16xf32>
    %p = arith.mulf %a, %b : f32
    %s = arith.addf %c, %p : f32
    memref.store %s, %C[%i, %j] : memref<16x16xf32>
  }) {oi.schedule = {splits = [["i", "ii", 4], ["j", "jj", 8], ["k", "kk", 4]], order = ["i", "j", "k", "ii", "jj", "kk"]},
      oi.plan = {caches = [{name = "AA", source = "A", index = "ii", double_buffer = true}]}} : (memref<16x8xf32>, memref<8x16xf32>, memref<16x16xf32>) -> ()
  func.return
}

// -----

// P = k over 10 in steps of 4 (blocks 4, 4, 2): last = 8, and the prefetch sizes the next
// block for itself, min(k + 4 + 4, 10) - (k + 4), not with the current block's extent.
// CHECK-LABEL: func.func @boundary
// CHECK:         %[[AA:.*]] = memref.alloca() {oi.cache = "AA", {{.*}}} : memref<1x4xf32>
// CHECK-NEXT:    %[[TEMP:.*]] = memref.alloca() {oi.cache = "AA_temp", {{.*}}} : memref<1x4xf32>
// CHECK:         scf.for %[[I:i]] = %{{.*}} to %{{.*}} step %{{.*}} {
// CHECK-NEXT:      %[[KLB:.*]] = arith.constant 0 : index
// CHECK-NEXT:      %[[KUB:.*]] = arith.constant 10 : index
// CHECK:           %[[FIRSTEND:.*]] = affine.min affine_map<(d0, d1) -> ((d0 + 4), d1)> (%[[KLB]], %[[KUB]])
// CHECK-NEXT:      %[[FIRSTN:.*]] = affine.apply affine_map<(d0, d1) -> ((d0 + (d1 * -1)))> (%[[FIRSTEND]], %[[KLB]])
// CHECK:           scf.for %{{.*}} = %{{.*}} to %[[FIRSTN]] step %{{.*}} {
// CHECK:           } {oi.cache_fill = "AA", oi.prefill = "AA"}
// CHECK-NEXT:      %[[LAST:last]] = affine.apply affine_map<(d0, d1) -> ((d0 + ((((d1 + (d0 * -1)) + -1) floordiv 4) * 4)))> (%[[KLB]], %[[KUB]])
// CHECK-NEXT:      scf.for %[[K:k]] = %[[KLB]] to %[[LAST]] step %{{.*}} {
// CHECK-NEXT:        %[[END:.*]] = affine.min affine_map<(d0, d1) -> ((d0 + 4), d1)> (%[[K]], %[[KUB]])
// CHECK:             %[[NEXT:.*]] = affine.apply affine_map<(d0) -> ((d0 + 4))> (%[[K]])
// CHECK:             %[[NEXTEND:.*]] = affine.min affine_map<(d0, d1) -> ((d0 + 4), d1)> (%[[NEXT]], %[[KUB]])
// CHECK-NEXT:        %[[NEXTN:.*]] = affine.apply affine_map<(d0, d1) -> ((d0 + (d1 * -1)))> (%[[NEXTEND]], %[[NEXT]])
// CHECK:             scf.for %{{.*}} = %{{.*}} to %[[NEXTN]] step %{{.*}} {
// CHECK:               memref.store %{{.*}}, %[[TEMP]]
// CHECK:             } {oi.cache_fill = "AA", oi.prefetch = "AA"}
// CHECK-NEXT:        scf.for %{{.*}} = %[[K]] to %[[END]] step %{{.*}} {
// CHECK:             "memref.copy"(%[[TEMP]], %[[AA]]) {oi.prefetch_swap = "AA"}
// CHECK-NEXT:      } {oi.index = "k", oi.dim = 1 : i64, oi.span = 10 : i64}
// CHECK-NEXT:      %[[PEND:.*]] = affine.min affine_map<(d0, d1) -> ((d0 + 4), d1)> (%[[LAST]], %[[KUB]])
// CHECK-NEXT:      %{{.*}} = arith.constant {oi.peeled = "AA"} 1 : index
// CHECK-NEXT:      scf.for %{{.*}} = %[[LAST]] to %[[PEND]] step %{{.*}} {
// CHECK:           } {oi.index = "kk", oi.dim = 1 : i64, oi.span = 4 : i64, oi.peeled = "AA"}
func.func @boundary(%A: memref<8x10xf32>, %B: memref<8xf32>) {
  "oi.nest"(%A, %B) <{domain = array<i64: 8, 10>, indices = ["i", "k"], names = ["A", "B"], roles = ["input", "input_output"]}> ({
  ^bb0(%i: index, %k: index):
    %b = memref.load %B[%i] : memref<8xf32>
    %a = memref.load %A[%i, %k] : memref<8x10xf32>
    %s = arith.addf %b, %a : f32
    memref.store %s, %B[%i] : memref<8xf32>
  }) {oi.schedule = {splits = [["k", "kk", 4]], order = ["i", "k", "kk"]}, oi.plan = {caches = [{name = "AA", source = "A", index = "kk", double_buffer = true}]}} : (memref<8x10xf32>, memref<8xf32>) -> ()
  func.return
}

// -----

// The cache at i, the outermost loop, has no loop around its trigger: it stays single-buffered,
// with its one fill before i, no temp buffer, no prefetch and no peeled iteration.
// CHECK-LABEL: func.func @no_enclosing_loop
// CHECK:         %[[AA:.*]] = memref.alloca() {oi.cache = "AA", {{.*}}} : memref<16x8xf32>
// CHECK-NOT:     _temp
// CHECK:         } {oi.cache_fill = "AA"}
// CHECK-NEXT:    scf.for %{{.*}} = %{{.*}} to %{{.*}} step %{{.*}} {
// CHECK-NOT:     oi.prefill
// CHECK-NOT:     oi.prefetch
// CHECK-NOT:     oi.peeled
// CHECK-NOT:     memref.copy
// CHECK:       } {oi.scheduled}
// WARN: UserWarning: double_buffer on cache AA: its trigger loop has no enclosing loop, so the cache is single-buffered
func.func @no_enclosing_loop(%A: memref<16x8xf32>, %B: memref<8x16xf32>, %C: memref<16x16xf32>) {
  "oi.nest"(%A, %B, %C) <{domain = array<i64: 16, 16, 8>, indices = ["i", "j", "k"], names = ["A", "B", "C"], roles = ["input", "input", "input_output"]}> ({
  ^bb0(%i: index, %j: index, %k: index):
    %c = memref.load %C[%i, %j] : memref<16x16xf32>
    %a = memref.load %A[%i, %k] : memref<16x8xf32>
    %b = memref.load %B[%k, %j] : memref<8x16xf32>
    %p = arith.mulf %a, %b : f32
    %s = arith.addf %c, %p : f32
    memref.store %s, %C[%i, %j] : memref<16x16xf32>
  }) {oi.schedule = {splits = [["i", "ii", 4], ["j", "jj", 8], ["k", "kk", 4]], order = ["i", "j", "k", "ii", "jj", "kk"]},
      oi.plan = {caches = [{name = "AA", source = "A", index = "i", double_buffer = true}]}} : (memref<16x8xf32>, memref<8x16xf32>, memref<16x16xf32>) -> ()
  func.return
}

// -----

// A boundary tile's fill (its extent an affine.apply), double-buffered by a separate oi-opt.
// TEXT-LABEL: func.func @boundary
// TEXT:         %[[AA:.*]] = memref.alloca() {oi.cache = "AA", {{.*}}} : memref<1x4xf32>
// TEXT-NEXT:    %[[TEMP:.*]] = memref.alloca() {oi.cache = "AA_temp", {{.*}}} : memref<1x4xf32>
// TEXT:         } {oi.cache_fill = "AA", oi.prefill = "AA"}
// TEXT-NEXT:    %[[LAST:last]] = affine.apply
// TEXT-NEXT:    scf.for %[[K:k]] = %{{.*}} to %[[LAST]] step %{{.*}} {
// TEXT:           memref.store %{{.*}}, %[[TEMP]]
// TEXT:         } {oi.cache_fill = "AA", oi.prefetch = "AA"}
// TEXT:         "memref.copy"(%[[TEMP]], %[[AA]]) {oi.prefetch_swap = "AA"}
// TEXT-NEXT:    } {oi.index = "k", oi.dim = 1 : i64, oi.span = 10 : i64}
// TEXT:         scf.for %{{.*}} = %[[LAST]] to %{{.*}} step %{{.*}} {
// TEXT:         } {oi.index = "kk", oi.dim = 1 : i64, oi.span = 4 : i64, oi.peeled = "AA"}
func.func @boundary(%A: memref<8x10xf32>, %B: memref<8xf32>) {
  "oi.nest"(%A, %B) <{domain = array<i64: 8, 10>, indices = ["i", "k"], names = ["A", "B"], roles = ["input", "input_output"]}> ({
  ^bb0(%i: index, %k: index):
    %b = memref.load %B[%i] : memref<8xf32>
    %a = memref.load %A[%i, %k] : memref<8x10xf32>
    %s = arith.addf %b, %a : f32
    memref.store %s, %B[%i] : memref<8xf32>
  }) {oi.schedule = {splits = [["k", "kk", 4]], order = ["i", "k", "kk"]}, oi.plan = {caches = [{name = "AA", source = "A", index = "kk", double_buffer = true}]}} : (memref<8x10xf32>, memref<8xf32>) -> ()
  func.return
}
