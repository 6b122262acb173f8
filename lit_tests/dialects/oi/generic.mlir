// A graph written in the generic form parses, verifies and prints in the custom
// form; printed generic again, it reads back to the same custom form.
//
// RUN: oi-opt %s | filecheck %s --match-full-lines
// RUN: oi-opt %s --mlir-print-op-generic -o %t
// RUN: filecheck %s --check-prefix=GENERIC --input-file=%t
// RUN: oi-opt %t | filecheck %s --match-full-lines

"builtin.module"() ({
  "oi.graph"() <{sym_name = "decode"}> ({
    "oi.var"() <{kind = "dynamic", sym_name = "x", type = !oi.tensor<f32[1, D]>, indices = []}> : () -> ()
    "oi.var"() <{kind = "constant", sym_name = "W", type = !oi.tensor<f32[D, D]>, indices = ["l"], pattern = "layers.{l}.w"}> : () -> ()
    "oi.var"() <{kind = "volatile", sym_name = "k", type = !oi.tensor<f32[1, D]>, indices = []}> : () -> ()
    "oi.var"() <{kind = "volatile", sym_name = "keys", type = !oi.tensor<f32[T, 1, D]>, indices = []}> : () -> ()
    "oi.var"() <{kind = "volatile", sym_name = "c", type = !oi.tensor<bool>, indices = []}> : () -> ()
    "oi.var"() <{kind = "persistent", sym_name = "t", type = !oi.tensor<i32>, indices = [], init = 0 : i64}> : () -> ()
    "oi.var"() <{kind = "persistent", sym_name = "K", type = !oi.tensor<f32[1, D]>, indices = ["l", "pos"], table, fixed = {pos = 1024 : i64}}> : () -> ()
    "oi.block"() <{sym_name = "entry"}> ({
      "oi.loop"() <{label = "layers", index = "l", start = #builtin.int<0>, end = "L"}> ({
        "oi.op"() <{op_name = "matmul", inputs = [#oi.ref<@x>, #oi.ref<@W[l]>], output = "k", settings = {}}> : () -> ()
        "oi.cache.write"() <{src = #oi.ref<@k>, dst = #oi.access<@K[l, t]>}> : () -> ()
        "oi.cache.read"() <{src = #oi.access<@K[l, 0:t]>, dst = #oi.ref<@keys>}> : () -> ()
      }) : () -> ()
      "oi.cache.increment"() <{target = "t", amount = #builtin.int<1>}> : () -> ()
      "oi.cache.reset"() <{target = #oi.access<@K[]>}> : () -> ()
      "oi.op"() <{op_name = "relu", inputs = [#oi.ref<@k>], output = "k", settings = {alpha = 5.000000e-01 : f64, clamp_max = 0x7FF0000000000000 : f64}}> : () -> ()
      "oi.branch"() <{cond = "c", then_block = "other", else_block = "entry"}> : () -> ()
      "oi.transfer"() <{src = #oi.ref<@k>, dst = #oi.ref<@k>}> : () -> ()
      "oi.dep"() <{after = "a", before = "b"}> : () -> ()
      "oi.barrier"() : () -> ()
      "oi.yield"() <{vars = ["k"]}> : () -> ()
      "oi.await"() <{vars = ["k"]}> : () -> ()
      "oi.return"() : () -> ()
    }) : () -> ()
    "oi.block"() <{sym_name = "other"}> ({
      "oi.assign"() <{sym_name = "tmp", type = !oi.tensor<f32[1, D]>}> : () -> ()
      "oi.cache.decrement"() <{target = "t", amount = #builtin.int<2>}> : () -> ()
    }) : () -> ()
  }) : () -> ()
}) : () -> ()

// CHECK:      builtin.module {
// CHECK-NEXT:   oi.graph @decode {
// CHECK-NEXT:     oi.var dynamic @x : f32[1, D]
// CHECK-NEXT:     oi.var constant @W(l) : f32[D, D] @pattern("layers.{l}.w")
// CHECK-NEXT:     oi.var volatile @k : f32[1, D]
// CHECK-NEXT:     oi.var volatile @keys : f32[T, 1, D]
// CHECK-NEXT:     oi.var volatile @c : bool
// CHECK-NEXT:     oi.var persistent @t : i32 @init(0)
// CHECK-NEXT:     oi.var persistent @K(l, pos) : f32[1, D] @table @fixed(pos = 1024)
// CHECK-NEXT:     oi.block @entry {
// CHECK-NEXT:       oi.loop layers (l in 0 to L) {
// CHECK-NEXT:         oi.op matmul(@x, @W[l]) -> @k
// CHECK-NEXT:         oi.cache.write @k -> @K[l, t]
// CHECK-NEXT:         oi.cache.read @K[l, 0:t] -> @keys
// CHECK-NEXT:       }
// CHECK-NEXT:       oi.cache.increment 1 @t
// CHECK-NEXT:       oi.cache.reset @K[]
// CHECK-NEXT:       oi.op relu(@k, alpha = 0.5, clamp_max = inf) -> @k
// CHECK-NEXT:       oi.branch @c, @other, @entry
// CHECK-NEXT:       oi.transfer @k -> @k
// CHECK-NEXT:       oi.dep after(@a) before(@b)
// CHECK-NEXT:       oi.barrier
// CHECK-NEXT:       oi.yield @k
// CHECK-NEXT:       oi.await @k
// CHECK-NEXT:       oi.return
// CHECK-NEXT:     }
// CHECK-NEXT:     oi.block @other {
// CHECK-NEXT:       oi.assign @tmp : f32[1, D]
// CHECK-NEXT:       oi.cache.decrement 2 @t
// CHECK-NEXT:     }
// CHECK-NEXT:   }
// CHECK-NEXT: }

// GENERIC:      "oi.var"() <{kind = "persistent", sym_name = "K", type = !oi.tensor<f32[1, D]>, indices = ["l", "pos"], table, fixed = {pos = 1024 : i64}}> : () -> ()
// GENERIC:      "oi.op"() <{op_name = "matmul", inputs = [#oi.ref<@x>, #oi.ref<@W[l]>], output = "k", settings = {}}> : () -> ()
// GENERIC:      "oi.cache.read"() <{src = #oi.access<@K[l, 0:t]>, dst = #oi.ref<@keys>}> : () -> ()
// GENERIC:      "oi.cache.reset"() <{target = #oi.access<@K[]>}> : () -> ()
