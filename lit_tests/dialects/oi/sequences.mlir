// The sequence statements over a group of tables and their lengths vector:
// `oi.cache.fork @K, @V [@lens] src -> dst at p`, `oi.cache.pop n @K, @V [@lens] b` and
// `oi.cache.reset_where @K, @V [@lens] where @mask`. The custom form round trips (printing is a
// fixed point), so does the generic form; every index value form (a literal, a size name, a
// persistent scalar, a loop index), one to three tables, a table with no middle index and
// discardable attributes. No generic pass removes or merges them: they change state (memory
// effects), read or not, repeated or not.
//
// RUN: oi-opt %s | filecheck %s --match-full-lines
// RUN: oi-opt %s | oi-opt - | filecheck %s --match-full-lines
// RUN: oi-opt %s --mlir-print-op-generic | oi-opt - | filecheck %s --match-full-lines
// RUN: oi-opt %s --mlir-print-op-generic | filecheck %s --check-prefix=GENERIC
// RUN: oi-opt %s --canonicalize --cse --dce | filecheck %s --check-prefix=KEPT
// RUN: oi-opt %s -p 'canonicalize,cse,dce' --mlir-print-op-generic | oi-opt - | filecheck %s --match-full-lines

oi.graph @sequences {
  oi.var dynamic @mask : bool[B]
  oi.var volatile @imask : u8[B]
  oi.var persistent @K(b, h, t) : f32[DK] @table
  oi.var persistent @V(b, h, t) : f16[2, DV] @init(0.5) @table @fixed(t = 16)
  oi.var persistent @S(b, t) : i32 @table
  oi.var persistent @lens : i64[B]
  oi.var persistent @lens32 : u32[B]
  oi.var persistent @src : i64
  oi.var persistent @n : i64
  oi.block @entry {
    oi.cache.fork @K, @V [@lens] 0 -> 3 at 2
    oi.cache.fork @K, @V [@lens] src -> LAST at n
    oi.cache.fork @S [@lens32] 1 -> 0 at 0
    oi.cache.fork @S [@lens32] 1 -> 0 at 0
    oi.cache.pop 1 @K, @V [@lens] 0
    oi.cache.pop n @V, @K, @S [@lens] src
    oi.cache.pop 1 @K, @V [@lens] 0
    oi.cache.reset_where @K, @V [@lens] where @mask
    oi.cache.reset_where @S [@lens32] where @imask
    oi.cache.reset_where @K, @V [@lens] where @mask
    oi.loop copies (i in 1 to B) {
      oi.cache.fork @K, @V [@lens] 0 -> i at n
      oi.cache.pop i @S [@lens] i
    }
    oi.cache.pop 2 @K [@lens] 1 {my.attr = 1 : i64}
    oi.cache.fork @K [@lens] 0 -> 1 at 0 {my.attr = "two", other.unit}
    oi.return
  }
}

// CHECK-LABEL:  oi.graph @sequences {
// CHECK:          oi.block @entry {
// CHECK-NEXT:       oi.cache.fork @K, @V [@lens] 0 -> 3 at 2
// CHECK-NEXT:       oi.cache.fork @K, @V [@lens] src -> LAST at n
// CHECK-NEXT:       oi.cache.fork @S [@lens32] 1 -> 0 at 0
// CHECK-NEXT:       oi.cache.fork @S [@lens32] 1 -> 0 at 0
// CHECK-NEXT:       oi.cache.pop 1 @K, @V [@lens] 0
// CHECK-NEXT:       oi.cache.pop n @V, @K, @S [@lens] src
// CHECK-NEXT:       oi.cache.pop 1 @K, @V [@lens] 0
// CHECK-NEXT:       oi.cache.reset_where @K, @V [@lens] where @mask
// CHECK-NEXT:       oi.cache.reset_where @S [@lens32] where @imask
// CHECK-NEXT:       oi.cache.reset_where @K, @V [@lens] where @mask
// CHECK-NEXT:       oi.loop copies (i in 1 to B) {
// CHECK-NEXT:         oi.cache.fork @K, @V [@lens] 0 -> i at n
// CHECK-NEXT:         oi.cache.pop i @S [@lens] i
// CHECK-NEXT:       }
// CHECK-NEXT:       oi.cache.pop 2 @K [@lens] 1 {my.attr = 1 : i64}
// CHECK-NEXT:       oi.cache.fork @K [@lens] 0 -> 1 at 0 {my.attr = "two", other.unit}
// CHECK-NEXT:       oi.return
// CHECK-NEXT:     }
// CHECK-NEXT:   }

// GENERIC-LABEL: "oi.graph"() <{sym_name = "sequences"}> ({
// GENERIC:      "oi.cache.fork"() <{tables = ["K", "V"], lengths = "lens", src = #builtin.int<0>, dst = #builtin.int<3>, position = #builtin.int<2>}> : () -> ()
// GENERIC-NEXT: "oi.cache.fork"() <{tables = ["K", "V"], lengths = "lens", src = "src", dst = "LAST", position = "n"}> : () -> ()
// GENERIC-NEXT: "oi.cache.fork"() <{tables = ["S"], lengths = "lens32", src = #builtin.int<1>, dst = #builtin.int<0>, position = #builtin.int<0>}> : () -> ()
// GENERIC:      "oi.cache.pop"() <{tables = ["K", "V"], lengths = "lens", count = #builtin.int<1>, sequence = #builtin.int<0>}> : () -> ()
// GENERIC-NEXT: "oi.cache.pop"() <{tables = ["V", "K", "S"], lengths = "lens", count = "n", sequence = "src"}> : () -> ()
// GENERIC:      "oi.cache.reset_where"() <{tables = ["K", "V"], lengths = "lens", mask = "mask"}> : () -> ()
// GENERIC-NEXT: "oi.cache.reset_where"() <{tables = ["S"], lengths = "lens32", mask = "imask"}> : () -> ()
// GENERIC:      "oi.cache.fork"() <{tables = ["K", "V"], lengths = "lens", src = #builtin.int<0>, dst = "i", position = "n"}> : () -> ()
// GENERIC-NEXT: "oi.cache.pop"() <{tables = ["S"], lengths = "lens", count = "i", sequence = "i"}> : () -> ()
// GENERIC:      "oi.cache.pop"() <{tables = ["K"], lengths = "lens", count = #builtin.int<2>, sequence = #builtin.int<1>}> {my.attr = 1 : i64} : () -> ()

// Every statement survives, the repeated ones too (cse merges nothing that writes state).
// KEPT:      oi.cache.fork @K, @V [@lens] 0 -> 3 at 2
// KEPT-NEXT: oi.cache.fork @K, @V [@lens] src -> LAST at n
// KEPT-NEXT: oi.cache.fork @S [@lens32] 1 -> 0 at 0
// KEPT-NEXT: oi.cache.fork @S [@lens32] 1 -> 0 at 0
// KEPT-NEXT: oi.cache.pop 1 @K, @V [@lens] 0
// KEPT-NEXT: oi.cache.pop n @V, @K, @S [@lens] src
// KEPT-NEXT: oi.cache.pop 1 @K, @V [@lens] 0
// KEPT-NEXT: oi.cache.reset_where @K, @V [@lens] where @mask
// KEPT-NEXT: oi.cache.reset_where @S [@lens32] where @imask
// KEPT-NEXT: oi.cache.reset_where @K, @V [@lens] where @mask
// KEPT-NEXT: oi.loop copies (i in 1 to B) {
// KEPT-NEXT:   oi.cache.fork @K, @V [@lens] 0 -> i at n
// KEPT-NEXT:   oi.cache.pop i @S [@lens] i
// KEPT-NEXT: }
// KEPT-NEXT: oi.cache.pop 2 @K [@lens] 1 {my.attr = 1 : i64}
// KEPT-NEXT: oi.cache.fork @K [@lens] 0 -> 1 at 0 {my.attr = "two", other.unit}
// KEPT-NEXT: oi.return
