// Round trip of every oi op in its custom form, and of every form each op takes.
// The first RUN prints the custom form; the second re-reads that output (printing
// is a fixed point); the third goes through the generic form and back.
//
// RUN: oi-opt %s --split-input-file | filecheck %s --match-full-lines
// RUN: oi-opt %s --split-input-file | oi-opt - --split-input-file | filecheck %s --match-full-lines
// RUN: oi-opt %s --split-input-file --mlir-print-op-generic | oi-opt - --split-input-file | filecheck %s --match-full-lines

// Memory kinds, table/prefix indices, every var attribute, dims with products.
// Input spellings that are not canonical print canonically: `f32[]` is a scalar,
// `@fixed(l=2)` gets spaces, attributes print in a fixed order.

oi.graph @vars {
  oi.var dynamic @x : f32[B, D]
  oi.var dynamic @ids : i64[B*T, 3*D, 4, T*2, 2*3]
  oi.var volatile @h : f32[B, D]
  oi.var volatile @sc : f32[]
  oi.var volatile @sc2 : f32
  oi.var constant @W(l, h) : f16[D, D] @pattern("layers.{l}.heads.{h}.w")
  oi.var constant @E : f32[V, D] @ref("model.embed")
  oi.var constant @Q : f32[V, D] @ref("odd \"name\" \\ here")
  oi.var volatile @Vp(l) : f32[D] @pattern("v.{l}")
  oi.var persistent @t : i32 @init(0)
  oi.var persistent @K(l, pos) : f16[H, D] @fixed(l=2, pos=1024) @table
  oi.var persistent @S(l, r) : f32[D] @table @auto_dim(r)
  oi.var persistent @A(r, c) : f32[R, C] @auto_dim(r, c) @fixed(r = 8)
  oi.var persistent @P : f32[D]
  oi.block @entry {
    oi.return
  }
}

// CHECK-LABEL:  oi.graph @vars {
// CHECK-NEXT:     oi.var dynamic @x : f32[B, D]
// CHECK-NEXT:     oi.var dynamic @ids : i64[B*T, 3*D, 4, T*2, 2*3]
// CHECK-NEXT:     oi.var volatile @h : f32[B, D]
// CHECK-NEXT:     oi.var volatile @sc : f32
// CHECK-NEXT:     oi.var volatile @sc2 : f32
// CHECK-NEXT:     oi.var constant @W(l, h) : f16[D, D] @pattern("layers.{l}.heads.{h}.w")
// CHECK-NEXT:     oi.var constant @E : f32[V, D] @ref("model.embed")
// CHECK-NEXT:     oi.var constant @Q : f32[V, D] @ref("odd \22name\22 \\ here")
// CHECK-NEXT:     oi.var volatile @Vp(l) : f32[D] @pattern("v.{l}")
// CHECK-NEXT:     oi.var persistent @t : i32 @init(0)
// CHECK-NEXT:     oi.var persistent @K(l, pos) : f16[H, D] @table @fixed(l = 2, pos = 1024)
// CHECK-NEXT:     oi.var persistent @S(l, r) : f32[D] @table @auto_dim(r)
// CHECK-NEXT:     oi.var persistent @A(r, c) : f32[R, C] @auto_dim(r, c) @fixed(r = 8)
// CHECK-NEXT:     oi.var persistent @P : f32[D]
// CHECK-NEXT:     oi.block @entry {
// CHECK-NEXT:       oi.return
// CHECK-NEXT:     }
// CHECK-NEXT:   }

// -----

// Every dtype of the DSL (16), each with an @init literal of its class.
// A bool @init may be written 0/1 and prints as false/true.

oi.graph @dtypes {
  oi.var persistent @a : i8 @init(-128)
  oi.var persistent @b : i16 @init(32767)
  oi.var persistent @c : i32 @init(0)
  oi.var persistent @d : i64 @init(-9223372036854775808)
  oi.var persistent @e : u8 @init(255)
  oi.var persistent @f : u16 @init(65535)
  oi.var persistent @g : u32 @init(4294967295)
  oi.var persistent @h : u64 @init(9223372036854775807)
  oi.var persistent @i : f8 @init(0.5)
  oi.var persistent @j : f16 @init(-1.5)
  oi.var persistent @k : bf16 @init(2.0)
  oi.var persistent @l : f32 @init(1.0e-05)
  oi.var persistent @m : f64 @init(3.0e+100)
  oi.var persistent @n : bool @init(true)
  oi.var persistent @o : i4 @init(-8)
  oi.var persistent @p : u4 @init(15)
  oi.var persistent @q : bool @init(false)
  oi.var persistent @r : bool @init(1)
  oi.var volatile @s : bf16[2, 2]
  oi.var volatile @u : u4[8]
  oi.block @entry {
    oi.return
  }
}

// CHECK-LABEL:  oi.graph @dtypes {
// CHECK-NEXT:     oi.var persistent @a : i8 @init(-128)
// CHECK-NEXT:     oi.var persistent @b : i16 @init(32767)
// CHECK-NEXT:     oi.var persistent @c : i32 @init(0)
// CHECK-NEXT:     oi.var persistent @d : i64 @init(-9223372036854775808)
// CHECK-NEXT:     oi.var persistent @e : u8 @init(255)
// CHECK-NEXT:     oi.var persistent @f : u16 @init(65535)
// CHECK-NEXT:     oi.var persistent @g : u32 @init(4294967295)
// CHECK-NEXT:     oi.var persistent @h : u64 @init(9223372036854775807)
// CHECK-NEXT:     oi.var persistent @i : f8 @init(0.5)
// CHECK-NEXT:     oi.var persistent @j : f16 @init(-1.5)
// CHECK-NEXT:     oi.var persistent @k : bf16 @init(2.0)
// CHECK-NEXT:     oi.var persistent @l : f32 @init(1.0e-05)
// CHECK-NEXT:     oi.var persistent @m : f64 @init(3.0e+100)
// CHECK-NEXT:     oi.var persistent @n : bool @init(true)
// CHECK-NEXT:     oi.var persistent @o : i4 @init(-8)
// CHECK-NEXT:     oi.var persistent @p : u4 @init(15)
// CHECK-NEXT:     oi.var persistent @q : bool @init(false)
// CHECK-NEXT:     oi.var persistent @r : bool @init(true)
// CHECK-NEXT:     oi.var volatile @s : bf16[2, 2]
// CHECK-NEXT:     oi.var volatile @u : u4[8]

// -----

// Cache ops and every cache index form: a value, an identifier, `s:e`, `:e`,
// `s:`, `:`, a negative end, `@K[]` and a bare `@P`. Increment/decrement without
// an amount mean 1 and print it.

oi.graph @cache {
  oi.var volatile @x : f32[H, D]
  oi.var volatile @hist : f32[T, H, D]
  oi.var volatile @row : f32[D]
  oi.var persistent @t : i32 @init(0)
  oi.var persistent @n : u8
  oi.var persistent @K(l, pos) : f32[H, D] @table @fixed(l = 2, pos = 16)
  oi.var persistent @S(l, r) : f32[D] @table @auto_dim(r)
  oi.var persistent @A(r) : f32[D] @auto_dim(r)
  oi.var persistent @P : f32[H, D]
  oi.block @entry {
    oi.cache.write @x -> @K[0, t]
    oi.cache.write @x -> @K[1, 15]
    oi.cache.read @K[0, 3] -> @x
    oi.cache.read @K[1, t] -> @x
    oi.cache.read @K[0, 0:t] -> @hist
    oi.cache.read @K[0, 2:16] -> @hist
    oi.cache.read @K[1, :4] -> @hist
    oi.cache.read @K[1, t:] -> @hist
    oi.cache.read @K[1, 2:] -> @hist
    oi.cache.read @K[:, :] -> @hist
    oi.cache.read @K[0, :-2] -> @hist
    oi.cache.read @K[0, 1:-1] -> @hist
    oi.cache.read @K[] -> @hist
    oi.cache.read @K[0] -> @hist
    oi.cache.write @x -> @P
    oi.cache.read @P -> @x
    oi.cache.write @row -> @S[1]
    oi.cache.read @S[0] -> @row
    oi.cache.write @row -> @A[2]
    oi.cache.read @A -> @row
    oi.cache.increment @t
    oi.cache.increment 3 @n
    oi.cache.decrement @t
    oi.cache.decrement 2 @n
    oi.cache.reset @t
    oi.cache.reset @P
    oi.cache.reset @K[1]
    oi.cache.reset @K[0, t]
    oi.cache.reset @K[]
    oi.cache.reset @A
    oi.return
  }
}

// CHECK-LABEL:  oi.graph @cache {
// CHECK:          oi.block @entry {
// CHECK-NEXT:       oi.cache.write @x -> @K[0, t]
// CHECK-NEXT:       oi.cache.write @x -> @K[1, 15]
// CHECK-NEXT:       oi.cache.read @K[0, 3] -> @x
// CHECK-NEXT:       oi.cache.read @K[1, t] -> @x
// CHECK-NEXT:       oi.cache.read @K[0, 0:t] -> @hist
// CHECK-NEXT:       oi.cache.read @K[0, 2:16] -> @hist
// CHECK-NEXT:       oi.cache.read @K[1, :4] -> @hist
// CHECK-NEXT:       oi.cache.read @K[1, t:] -> @hist
// CHECK-NEXT:       oi.cache.read @K[1, 2:] -> @hist
// CHECK-NEXT:       oi.cache.read @K[:, :] -> @hist
// CHECK-NEXT:       oi.cache.read @K[0, :-2] -> @hist
// CHECK-NEXT:       oi.cache.read @K[0, 1:-1] -> @hist
// CHECK-NEXT:       oi.cache.read @K[] -> @hist
// CHECK-NEXT:       oi.cache.read @K[0] -> @hist
// CHECK-NEXT:       oi.cache.write @x -> @P
// CHECK-NEXT:       oi.cache.read @P -> @x
// CHECK-NEXT:       oi.cache.write @row -> @S[1]
// CHECK-NEXT:       oi.cache.read @S[0] -> @row
// CHECK-NEXT:       oi.cache.write @row -> @A[2]
// CHECK-NEXT:       oi.cache.read @A -> @row
// CHECK-NEXT:       oi.cache.increment 1 @t
// CHECK-NEXT:       oi.cache.increment 3 @n
// CHECK-NEXT:       oi.cache.decrement 1 @t
// CHECK-NEXT:       oi.cache.decrement 2 @n
// CHECK-NEXT:       oi.cache.reset @t
// CHECK-NEXT:       oi.cache.reset @P
// CHECK-NEXT:       oi.cache.reset @K[1]
// CHECK-NEXT:       oi.cache.reset @K[0, t]
// CHECK-NEXT:       oi.cache.reset @K[]
// CHECK-NEXT:       oi.cache.reset @A
// CHECK-NEXT:       oi.return
// CHECK-NEXT:     }
// CHECK-NEXT:   }

// -----

// oi.op and every setting value kind: float, int, bool, string with escapes,
// inf (and -inf/nan, which only the IR can spell), int list, empty list, dtype,
// dtype list, @symbol (a scalar variable).

oi.graph @settings {
  oi.var dynamic @x : f32[B, D]
  oi.var dynamic @q : i8[B, D]
  oi.var volatile @y : f32[B, D]
  oi.var volatile @hh : f16[B, D]
  oi.var volatile @w : i16[B, D]
  oi.var volatile @r : f32[B]
  oi.var volatile @am : i64[B]
  oi.var volatile @b : bool
  oi.var constant @alpha : f32
  oi.var constant @one : f32[1, 1]
  oi.block @entry {
    oi.op relu(@x, alpha = 0.5, clamp_max = 6) -> @y
    oi.op relu(@x, alpha = -0.25, clamp_max = inf) -> @y
    oi.op relu(@x, alpha = nan, clamp_max = -inf) -> @y
    oi.op relu(@x, alpha = @alpha, clamp_max = @one) -> @y
    oi.op fill(@x, value = -3) -> @y
    oi.op fill(@x, value = 1.0e-07) -> @y
    oi.op fill(@x, value = true) -> @y
    oi.op sum_axis(@x, axes = [1], keepdims = false) -> @r
    oi.op sum_axis(@x, axes = [0, -1], keepdims = true) -> @y
    oi.op max_axis(@x, axes = []) -> @y
    oi.op argmax_axis(@x, axis = 1, keepdims = false, select_first = true) -> @am
    oi.op cast(@x, to = f16, rounding_mode = "nearest", saturate = true) -> @hh
    oi.op cast(@x, to = f16, rounding_mode = "a\"b\\c") -> @hh
    oi.op add(@q, @q, acc = [i16]) -> @w
    oi.op matmul(@q, @q, acc = [i16, i16]) -> @w
    oi.op add(@x, @y) -> @y
    oi.op fma(@x, @y, @y) -> @y
    oi.op is_finite(@x) -> @b
    oi.return
  }
}

// CHECK-LABEL:  oi.graph @settings {
// CHECK:          oi.block @entry {
// CHECK-NEXT:       oi.op relu(@x, alpha = 0.5, clamp_max = 6) -> @y
// CHECK-NEXT:       oi.op relu(@x, alpha = -0.25, clamp_max = inf) -> @y
// CHECK-NEXT:       oi.op relu(@x, alpha = nan, clamp_max = -inf) -> @y
// CHECK-NEXT:       oi.op relu(@x, alpha = @alpha, clamp_max = @one) -> @y
// CHECK-NEXT:       oi.op fill(@x, value = -3) -> @y
// CHECK-NEXT:       oi.op fill(@x, value = 1.0e-07) -> @y
// CHECK-NEXT:       oi.op fill(@x, value = true) -> @y
// CHECK-NEXT:       oi.op sum_axis(@x, axes = [1], keepdims = false) -> @r
// CHECK-NEXT:       oi.op sum_axis(@x, axes = [0, -1], keepdims = true) -> @y
// CHECK-NEXT:       oi.op max_axis(@x, axes = []) -> @y
// CHECK-NEXT:       oi.op argmax_axis(@x, axis = 1, keepdims = false, select_first = true) -> @am
// CHECK-NEXT:       oi.op cast(@x, to = f16, rounding_mode = "nearest", saturate = true) -> @hh
// CHECK-NEXT:       oi.op cast(@x, to = f16, rounding_mode = "a\22b\\c") -> @hh
// CHECK-NEXT:       oi.op add(@q, @q, acc = [i16]) -> @w
// CHECK-NEXT:       oi.op matmul(@q, @q, acc = [i16, i16]) -> @w
// CHECK-NEXT:       oi.op add(@x, @y) -> @y
// CHECK-NEXT:       oi.op fma(@x, @y, @y) -> @y
// CHECK-NEXT:       oi.op is_finite(@x) -> @b
// CHECK-NEXT:       oi.return
// CHECK-NEXT:     }

// -----

// Every dtype as a `to =` setting value and in a dtype list.

oi.graph @dtype_settings {
  oi.var dynamic @x : f32[D]
  oi.var volatile @a : i8[D]
  oi.var volatile @b : i16[D]
  oi.var volatile @c : i32[D]
  oi.var volatile @d : i64[D]
  oi.var volatile @e : u8[D]
  oi.var volatile @f : u16[D]
  oi.var volatile @g : u32[D]
  oi.var volatile @h : u64[D]
  oi.var volatile @i : f8[D]
  oi.var volatile @j : f16[D]
  oi.var volatile @k : bf16[D]
  oi.var volatile @l : f32[D]
  oi.var volatile @m : f64[D]
  oi.var volatile @i4v : i4[D]
  oi.block @entry {
    oi.op cast(@x, to = i8) -> @a
    oi.op cast(@x, to = i16) -> @b
    oi.op cast(@x, to = i32) -> @c
    oi.op cast(@x, to = i64) -> @d
    oi.op cast(@x, to = u8) -> @e
    oi.op cast(@x, to = u16) -> @f
    oi.op cast(@x, to = u32) -> @g
    oi.op cast(@x, to = u64) -> @h
    oi.op cast(@x, to = f8) -> @i
    oi.op cast(@x, to = f16) -> @j
    oi.op cast(@x, to = bf16) -> @k
    oi.op cast(@x, to = f32) -> @l
    oi.op cast(@x, to = f64) -> @m
    oi.op add(@i4v, @i4v, acc = [bool, u4, f8, bf16, i64]) -> @d
    oi.return
  }
}

// CHECK-LABEL:  oi.graph @dtype_settings {
// CHECK:            oi.op cast(@x, to = i8) -> @a
// CHECK-NEXT:       oi.op cast(@x, to = i16) -> @b
// CHECK-NEXT:       oi.op cast(@x, to = i32) -> @c
// CHECK-NEXT:       oi.op cast(@x, to = i64) -> @d
// CHECK-NEXT:       oi.op cast(@x, to = u8) -> @e
// CHECK-NEXT:       oi.op cast(@x, to = u16) -> @f
// CHECK-NEXT:       oi.op cast(@x, to = u32) -> @g
// CHECK-NEXT:       oi.op cast(@x, to = u64) -> @h
// CHECK-NEXT:       oi.op cast(@x, to = f8) -> @i
// CHECK-NEXT:       oi.op cast(@x, to = f16) -> @j
// CHECK-NEXT:       oi.op cast(@x, to = bf16) -> @k
// CHECK-NEXT:       oi.op cast(@x, to = f32) -> @l
// CHECK-NEXT:       oi.op cast(@x, to = f64) -> @m
// CHECK-NEXT:       oi.op add(@i4v, @i4v, acc = [bool, u4, f8, bf16, i64]) -> @d

// -----

// Control flow and the remaining statements: assign, transfer (plain and
// prefix-table operands), branch (both forms), barrier, dep, nested loops with
// literal, size-name and variable bounds, yield, await, return.

oi.graph @control {
  oi.var dynamic @x : f32[B, D]
  oi.var volatile @y : f32[B, D]
  oi.var volatile @z : f32[B, D]
  oi.var volatile @n : i32
  oi.var volatile @c : bool
  oi.var constant @W(l) : f32[B, D] @pattern("w.{l}")
  oi.var persistent @t : i32 @init(0)
  oi.var persistent @K(l, pos) : f32[B, D] @table
  oi.block @entry {
    oi.assign @tmp : f32[B, D]
    oi.op add(@x, @W[0]) -> @tmp
    oi.transfer @tmp -> @y
    oi.transfer @W[1] -> @z
    oi.branch @c, @then, @else
    oi.branch @then
    oi.barrier
    oi.dep after(@then) before(@else)
    oi.loop layers (l in 0 to L) {
      oi.op add(@x, @W[l]) -> @y
      oi.loop steps (s in 1 to n) {
        oi.cache.write @y -> @K[l, s]
        oi.loop inner (i in t to 4) {
          oi.cache.read @K[l, i] -> @z
          oi.return
        }
      }
    }
    oi.loop empty (e in 0 to 0) {
    }
    oi.cache.increment @t
    oi.yield @y, @z
    oi.await @y, @z
    oi.return
  }
  oi.block @then {
    oi.await @y
    oi.op add(@y, @x) -> @y
    oi.yield @y
  }
  oi.block @else {
    oi.return
  }
}

// CHECK-LABEL:  oi.graph @control {
// CHECK:          oi.block @entry {
// CHECK-NEXT:       oi.assign @tmp : f32[B, D]
// CHECK-NEXT:       oi.op add(@x, @W[0]) -> @tmp
// CHECK-NEXT:       oi.transfer @tmp -> @y
// CHECK-NEXT:       oi.transfer @W[1] -> @z
// CHECK-NEXT:       oi.branch @c, @then, @else
// CHECK-NEXT:       oi.branch @then
// CHECK-NEXT:       oi.barrier
// CHECK-NEXT:       oi.dep after(@then) before(@else)
// CHECK-NEXT:       oi.loop layers (l in 0 to L) {
// CHECK-NEXT:         oi.op add(@x, @W[l]) -> @y
// CHECK-NEXT:         oi.loop steps (s in 1 to n) {
// CHECK-NEXT:           oi.cache.write @y -> @K[l, s]
// CHECK-NEXT:           oi.loop inner (i in t to 4) {
// CHECK-NEXT:             oi.cache.read @K[l, i] -> @z
// CHECK-NEXT:             oi.return
// CHECK-NEXT:           }
// CHECK-NEXT:         }
// CHECK-NEXT:       }
// CHECK-NEXT:       oi.loop empty (e in 0 to 0) {
// CHECK-NEXT:       }
// CHECK-NEXT:       oi.cache.increment 1 @t
// CHECK-NEXT:       oi.yield @y, @z
// CHECK-NEXT:       oi.await @y, @z
// CHECK-NEXT:       oi.return
// CHECK-NEXT:     }
// CHECK-NEXT:     oi.block @then {
// CHECK-NEXT:       oi.await @y
// CHECK-NEXT:       oi.op add(@y, @x) -> @y
// CHECK-NEXT:       oi.yield @y
// CHECK-NEXT:     }
// CHECK-NEXT:     oi.block @else {
// CHECK-NEXT:       oi.return
// CHECK-NEXT:     }
// CHECK-NEXT:   }

// -----

// Blocks in any order and an empty block; the entry is the block named `entry`.

oi.graph @blocks {
  oi.block @side {
  }
  oi.var volatile @v : f32
  oi.block @entry {
    oi.branch @side
  }
}

// CHECK-LABEL:  oi.graph @blocks {
// CHECK-NEXT:     oi.block @side {
// CHECK-NEXT:     }
// CHECK-NEXT:     oi.var volatile @v : f32
// CHECK-NEXT:     oi.block @entry {
// CHECK-NEXT:       oi.branch @side
// CHECK-NEXT:     }
// CHECK-NEXT:   }
