// --tile on `oi.nest`: the nest's body becomes the scf.for loops of its `oi.schedule`, in the
// schedule's order. split(x, n) multiplies x's step by n and adds a loop right after x (so
// tile() gives i, ii, j, jj unless an order follows). Every loop walks absolute coordinates and
// carries oi.index (its name), oi.dim and oi.span (the longest range it walks); a chain's inner
// loop runs over [iv(parent), iv(parent) + step(parent)), an affine.apply, or an affine.min with
// the parent's upper bound where the sizes do not divide (a boundary tile). The logic uses the
// innermost loop of each chain. The plan's unroll/vectorize mark their loops (a marked
// boundary loop is unswitched: whole tiles get a copy with a constant trip count); parallelize
// runs the outermost loop over two index arguments appended to the function. A bad schedule
// is reported with Accera's message at the nest, and so is an access outside its array.
//
// RUN: oi-opt %s --split-input-file --verify-diagnostics --tile | filecheck %s

// tile({i: 4, j: 2}) without a reorder: each inner loop right after its parent (i, ii, j, jj),
// outer loops stepping by the tile size, inner loops by 1 over one tile.
// CHECK-LABEL: func.func @tile_order
// CHECK:         %[[C16:.*]] = arith.constant 16 : index
// CHECK-NEXT:    %[[C4:.*]] = arith.constant 4 : index
// CHECK-NEXT:    scf.for %[[I:.*]] = %{{.*}} to %[[C16]] step %[[C4]] {
// CHECK-NEXT:      %[[IEND:.*]] = affine.apply affine_map<(d0) -> ((d0 + 4))> (%[[I]])
// CHECK-NEXT:      %[[C1:.*]] = arith.constant 1 : index
// CHECK-NEXT:      scf.for %[[II:.*]] = %[[I]] to %[[IEND]] step %[[C1]] {
// CHECK:             %[[C8:.*]] = arith.constant 8 : index
// CHECK-NEXT:        %[[C2:.*]] = arith.constant 2 : index
// CHECK-NEXT:        scf.for %[[J:.*]] = %{{.*}} to %[[C8]] step %[[C2]] {
// CHECK-NEXT:          %[[JEND:.*]] = affine.apply affine_map<(d0) -> ((d0 + 2))> (%[[J]])
// CHECK-NEXT:          %{{.*}} = arith.constant 1 : index
// CHECK-NEXT:          scf.for %[[JJ:.*]] = %[[J]] to %[[JEND]] step %{{.*}} {
// CHECK-NEXT:            %[[A:.*]] = memref.load %{{.*}}[%[[II]], %[[JJ]]] : memref<16x8xf32>
// CHECK-NEXT:            %[[S:.*]] = arith.addf %[[A]], %[[A]] : f32
// CHECK-NEXT:            memref.store %[[S]], %{{.*}}[%[[II]], %[[JJ]]] : memref<16x8xf32>
// CHECK-NEXT:          } {oi.index = "jj", oi.dim = 1 : i64, oi.span = 2 : i64}
// CHECK-NEXT:        } {oi.index = "j", oi.dim = 1 : i64, oi.span = 8 : i64}
// CHECK-NEXT:      } {oi.index = "ii", oi.dim = 0 : i64, oi.span = 4 : i64}
// CHECK-NEXT:    } {oi.index = "i", oi.dim = 0 : i64, oi.span = 16 : i64}
// CHECK-NEXT:  } {oi.scheduled}
// CHECK-NOT:   oi.schedule
func.func @tile_order(%A: memref<16x8xf32>) {
  "oi.nest"(%A) <{domain = array<i64: 16, 8>, indices = ["i", "j"], names = ["A"], roles = ["input_output"]}> ({
  ^bb0(%i: index, %j: index):
    %a = memref.load %A[%i, %j] : memref<16x8xf32>
    %s = arith.addf %a, %a : f32
    memref.store %s, %A[%i, %j] : memref<16x8xf32>
  }) {oi.schedule = {splits = [["i", "ii", 4], ["j", "jj", 2]]}} : (memref<16x8xf32>) -> ()
  func.return
}

// -----

// A reorder (j, i, jj, ii) and two splits: 4 divides 8 (jj ends at j + 4, an affine.apply),
// 4 does not divide 10 (ii ends at min(i + 4, 10): the last tile of i is 2 long).
// CHECK-LABEL: func.func @reordered
// CHECK:         scf.for %[[J:.*]] = %{{.*}} to %{{.*}} step %{{.*}} {
// CHECK:           %[[C10:.*]] = arith.constant 10 : index
// CHECK-NEXT:      %{{.*}} = arith.constant 4 : index
// CHECK-NEXT:      scf.for %[[I:.*]] = %{{.*}} to %[[C10]] step %{{.*}} {
// CHECK-NEXT:        %[[JEND:.*]] = affine.apply affine_map<(d0) -> ((d0 + 4))> (%[[J]])
// CHECK-NEXT:        %{{.*}} = arith.constant 1 : index
// CHECK-NEXT:        scf.for %[[JJ:.*]] = %[[J]] to %[[JEND]] step %{{.*}} {
// CHECK-NEXT:          %[[IEND:.*]] = affine.min affine_map<(d0, d1) -> ((d0 + 4), d1)> (%[[I]], %[[C10]])
// CHECK-NEXT:          %{{.*}} = arith.constant 1 : index
// CHECK-NEXT:          scf.for %[[II:.*]] = %[[I]] to %[[IEND]] step %{{.*}} {
// CHECK-NEXT:            %[[A:.*]] = memref.load %{{.*}}[%[[II]], %[[JJ]]] : memref<10x8xf32>
// CHECK-NEXT:            memref.store %[[A]], %{{.*}}[%[[II]], %[[JJ]]] : memref<10x8xf32>
// CHECK-NEXT:          } {oi.index = "ii", oi.dim = 0 : i64, oi.span = 4 : i64}
// CHECK-NEXT:        } {oi.index = "jj", oi.dim = 1 : i64, oi.span = 4 : i64}
// CHECK-NEXT:      } {oi.index = "i", oi.dim = 0 : i64, oi.span = 10 : i64}
// CHECK-NEXT:    } {oi.index = "j", oi.dim = 1 : i64, oi.span = 8 : i64}
func.func @reordered(%A: memref<10x8xf32>, %B: memref<10x8xf32>) {
  "oi.nest"(%A, %B) <{domain = array<i64: 10, 8>, indices = ["i", "j"], names = ["A", "B"], roles = ["input", "input_output"]}> ({
  ^bb0(%i: index, %j: index):
    %a = memref.load %A[%i, %j] : memref<10x8xf32>
    memref.store %a, %B[%i, %j] : memref<10x8xf32>
  }) {oi.schedule = {splits = [["i", "ii", 4], ["j", "jj", 4]], order = ["j", "i", "jj", "ii"]}} : (memref<10x8xf32>, memref<10x8xf32>) -> ()
  func.return
}

// -----

// A split of an inner index (i by 8, then ii by 3): a chain i, ii, iii. ii walks a whole
// 8-tile in steps of 3 (8 divides 16: no min); iii ends at min(ii + 3, i + 8), the bound of its
// parent ii, since 3 does not divide 8.
// CHECK-LABEL: func.func @inner_split
// CHECK:         %[[C8:.*]] = arith.constant 8 : index
// CHECK-NEXT:    scf.for %[[I:.*]] = %{{.*}} to %{{.*}} step %[[C8]] {
// CHECK-NEXT:      %[[IEND:.*]] = affine.apply affine_map<(d0) -> ((d0 + 8))> (%[[I]])
// CHECK-NEXT:      %[[C3:.*]] = arith.constant 3 : index
// CHECK-NEXT:      scf.for %[[II:.*]] = %[[I]] to %[[IEND]] step %[[C3]] {
// CHECK-NEXT:        %[[IIEND:.*]] = affine.min affine_map<(d0, d1) -> ((d0 + 3), d1)> (%[[II]], %[[IEND]])
// CHECK-NEXT:        %[[C1:.*]] = arith.constant 1 : index
// CHECK-NEXT:        scf.for %[[III:.*]] = %[[II]] to %[[IIEND]] step %[[C1]] {
// CHECK-NEXT:          %{{.*}} = memref.load %{{.*}}[%[[III]]] : memref<16xf32>
// CHECK:             } {oi.index = "iii", oi.dim = 0 : i64, oi.span = 3 : i64}
// CHECK-NEXT:      } {oi.index = "ii", oi.dim = 0 : i64, oi.span = 8 : i64}
// CHECK-NEXT:    } {oi.index = "i", oi.dim = 0 : i64, oi.span = 16 : i64}
// CHECK-NEXT:  } {oi.scheduled}
func.func @inner_split(%A: memref<16xf32>) {
  "oi.nest"(%A) <{domain = array<i64: 16>, indices = ["i"], names = ["A"], roles = ["input_output"]}> ({
  ^bb0(%i: index):
    %a = memref.load %A[%i] : memref<16xf32>
    %s = arith.addf %a, %a : f32
    memref.store %s, %A[%i] : memref<16xf32>
  }) {oi.schedule = {splits = [["i", "ii", 8], ["ii", "iii", 3]]}} : (memref<16xf32>) -> ()
  func.return
}

// -----

// The plan's unroll and vectorize mark their loops (oi.unroll, oi.vectorize); --lower-nests
// unrolls them. Both tiles divide, so the loops stay as they are.
// CHECK-LABEL: func.func @marks
// CHECK-NOT:     scf.if
// CHECK:             } {oi.index = "jj", oi.dim = 1 : i64, oi.span = 4 : i64, oi.vectorize}
// CHECK-NEXT:      } {oi.index = "ii", oi.dim = 0 : i64, oi.span = 2 : i64, oi.unroll}
// CHECK-NEXT:    } {oi.index = "j", oi.dim = 1 : i64, oi.span = 8 : i64}
// CHECK-NEXT:  } {oi.index = "i", oi.dim = 0 : i64, oi.span = 8 : i64}
func.func @marks(%A: memref<8x8xf32>) {
  "oi.nest"(%A) <{domain = array<i64: 8, 8>, indices = ["i", "j"], names = ["A"], roles = ["input_output"]}> ({
  ^bb0(%i: index, %j: index):
    %a = memref.load %A[%i, %j] : memref<8x8xf32>
    %s = arith.addf %a, %a : f32
    memref.store %s, %A[%i, %j] : memref<8x8xf32>
  }) {oi.schedule = {splits = [["i", "ii", 2], ["j", "jj", 4]], order = ["i", "j", "ii", "jj"]}, oi.plan = {unroll = ["ii"], vectorize = ["jj"]}} : (memref<8x8xf32>) -> ()
  func.return
}

// -----

// An unrolled boundary loop (4 does not divide 10) is unswitched inside its parent: when the
// parent's tile is whole (i + 4 <= 10) a copy ends at i + 4 (a constant trip count), otherwise
// the general copy ends at min(i + 4, 10). Both keep the mark.
// CHECK-LABEL: func.func @unswitch
// CHECK:         %[[C10:.*]] = arith.constant 10 : index
// CHECK:         scf.for %[[I:.*]] = %{{.*}} to %[[C10]] step %{{.*}} {
// CHECK-NEXT:      %[[END:.*]] = affine.apply affine_map<(d0) -> ((d0 + 4))> (%[[I]])
// CHECK-NEXT:      %[[WHOLE:.*]] = arith.cmpi sle, %[[END]], %[[C10]] : index
// CHECK-NEXT:      scf.if %[[WHOLE]] {
// CHECK-NEXT:        %[[END1:.*]] = affine.apply affine_map<(d0) -> ((d0 + 4))> (%[[I]])
// CHECK-NEXT:        %{{.*}} = arith.constant 1 : index
// CHECK-NEXT:        scf.for %{{.*}} = %[[I]] to %[[END1]] step %{{.*}} {
// CHECK:             } {oi.index = "ii", oi.dim = 0 : i64, oi.span = 4 : i64, oi.unroll}
// CHECK-NEXT:      } else {
// CHECK-NEXT:        %[[END2:.*]] = affine.min affine_map<(d0, d1) -> ((d0 + 4), d1)> (%[[I]], %[[C10]])
// CHECK-NEXT:        %{{.*}} = arith.constant 1 : index
// CHECK-NEXT:        scf.for %{{.*}} = %[[I]] to %[[END2]] step %{{.*}} {
// CHECK:             } {oi.index = "ii", oi.dim = 0 : i64, oi.span = 4 : i64, oi.unroll}
// CHECK-NEXT:      }{{ *}}{oi.unswitch = "ii"}
// CHECK-NEXT:    } {oi.index = "i", oi.dim = 0 : i64, oi.span = 10 : i64}
func.func @unswitch(%A: memref<10xf32>) {
  "oi.nest"(%A) <{domain = array<i64: 10>, indices = ["i"], names = ["A"], roles = ["input_output"]}> ({
  ^bb0(%i: index):
    %a = memref.load %A[%i] : memref<10xf32>
    %s = arith.addf %a, %a : f32
    memref.store %s, %A[%i] : memref<10xf32>
  }) {oi.schedule = {splits = [["i", "ii", 4]]}, oi.plan = {unroll = ["ii"]}} : (memref<10xf32>) -> ()
  func.return
}

// -----

// parallelize(i): the outermost loop runs over [%i_lo, %i_hi), two index arguments appended to
// the function; the function records the range's extent and step for the caller that splits
// it between threads, and the loop keeps the request as oi.parallel.
// CHECK-LABEL: func.func @parallel(
// CHECK-SAME:    %{{.*}}: memref<16xf32>, %[[LO:.*]]: index, %[[HI:.*]]: index)
// CHECK-SAME:    attributes {oi.parallel = {index = "i", extent = 16 : i64, step = 4 : i64, indices = ["i"], threads = 4 : i64, policy = "static"}}
// CHECK:         %[[C4:.*]] = arith.constant 4 : index
// CHECK-NEXT:    scf.for %[[I:.*]] = %[[LO]] to %[[HI]] step %[[C4]] {
// CHECK-NEXT:      %[[IEND:.*]] = affine.apply affine_map<(d0) -> ((d0 + 4))> (%[[I]])
// CHECK-NEXT:      %{{.*}} = arith.constant 1 : index
// CHECK-NEXT:      scf.for %[[II:.*]] = %[[I]] to %[[IEND]] step %{{.*}} {
// CHECK:           } {oi.index = "ii", oi.dim = 0 : i64, oi.span = 4 : i64}
// CHECK-NEXT:    } {oi.index = "i", oi.dim = 0 : i64, oi.span = 16 : i64, oi.parallel = {indices = ["i"], threads = 4 : i64, policy = "static"}}
func.func @parallel(%A: memref<16xf32>) {
  "oi.nest"(%A) <{domain = array<i64: 16>, indices = ["i"], names = ["A"], roles = ["input_output"]}> ({
  ^bb0(%i: index):
    %a = memref.load %A[%i] : memref<16xf32>
    %s = arith.addf %a, %a : f32
    memref.store %s, %A[%i] : memref<16xf32>
  }) {oi.schedule = {splits = [["i", "ii", 4]]}, oi.plan = {parallelize = {indices = ["i"], threads = 4, policy = "static"}}} : (memref<16xf32>) -> ()
  func.return
}

// -----

// A reorder that puts a split's inner loop (ii) before its outer loop (i).
func.func @inner_before_outer(%A: memref<16x4xf32>) {
  // expected-error @+1 {{An inner dimension must not be ordered before its outer dimension}}
  "oi.nest"(%A) <{domain = array<i64: 16, 4>, indices = ["i", "j"], names = ["A"], roles = ["input_output"]}> ({
  ^bb0(%i: index, %j: index):
    %a = memref.load %A[%i, %j] : memref<16x4xf32>
    memref.store %a, %A[%i, %j] : memref<16x4xf32>
  }) {oi.schedule = {splits = [["i", "ii", 4]], order = ["ii", "j", "i"]}} : (memref<16x4xf32>) -> ()
  func.return
}

// -----

// A split of size 0.
func.func @split_zero(%A: memref<16xf32>) {
  // expected-error @+1 {{Split sizes must be integers >= 1}}
  "oi.nest"(%A) <{domain = array<i64: 16>, indices = ["i"], names = ["A"], roles = ["input_output"]}> ({
  ^bb0(%i: index):
    %a = memref.load %A[%i] : memref<16xf32>
    memref.store %a, %A[%i] : memref<16xf32>
  }) {oi.schedule = {splits = [["i", "ii", 0]]}} : (memref<16xf32>) -> ()
  func.return
}

// -----

// An access outside its array somewhere in the domain (A[i + 1] with i up to 15).
func.func @out_of_bounds(%A: memref<16xf32>) {
  // expected-error @+1 {{an access of A reaches [1, 16] in dimension 0, outside [0, 15]}}
  "oi.nest"(%A) <{domain = array<i64: 16>, indices = ["i"], names = ["A"], roles = ["input_output"]}> ({
  ^bb0(%i: index):
    %i1 = affine.apply affine_map<(d0) -> (d0 + 1)> (%i)
    %a = memref.load %A[%i1] : memref<16xf32>
    memref.store %a, %A[%i] : memref<16xf32>
  }) : (memref<16xf32>) -> ()
  func.return
}
