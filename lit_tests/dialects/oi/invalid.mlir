// One case per verifier rule of docs/verify_rules.md that IR text can reach, then
// the syntax errors of the custom parsers. Each case is a minimal graph that is
// valid except for the annotated op.
//
// RUN: oi-opt %s --split-input-file --verify-diagnostics
//
// Not reachable from oi-opt (noted here so the list is complete):
// - `invalid dims for {v}: unknown size: {s}` and `unknown size: {s}` need size
//   variables, which oi-opt has no flag for;
// - `cache access {v} missing brackets`: `#oi.access<...>` derives `bracketed`
//   from the brackets, so no text spells indices without brackets;
// - `duplicate {op} setting: {k}`: the DSL rejects it first (and the custom IR
//   form keeps the last value, see the report); the generic form's dictionary
//   rejects a duplicate key.

//===----------------------------------------------------------------------===//
// Declarations and temporaries
//===----------------------------------------------------------------------===//

oi.graph @g {
  oi.var persistent @x : f32
  // expected-error @+1 {{duplicate variable declaration x}}
  oi.var volatile @x : f32
  oi.block @entry {
  }
}

// -----

oi.graph @g {
  // expected-error @+1 {{persistent variable W cannot use @pattern or @ref}}
  oi.var persistent @W(l) : f32 @table @pattern("w.{l}")
  oi.block @entry {
  }
}

// -----

oi.graph @g {
  // expected-error @+1 {{persistent variable W cannot use @pattern or @ref}}
  oi.var persistent @W : f32 @ref("model.w")
  oi.block @entry {
  }
}

// -----

oi.graph @g {
  // expected-error @+1 {{persistent table K missing table indices}}
  oi.var persistent @K : f32[D] @table
  oi.block @entry {
  }
}

// -----

oi.graph @g {
  // expected-error @+1 {{persistent variable A declares cache attributes but has no indices}}
  oi.var persistent @A : f32[D] @auto_dim(r)
  oi.block @entry {
  }
}

// -----

oi.graph @g {
  // expected-error @+1 {{persistent variable K with indices must use @table or @auto_dim}}
  oi.var persistent @K(l) : f32[D]
  oi.block @entry {
  }
}

// -----

oi.graph @g {
  // expected-error @+1 {{persistent cache K has duplicate index l}}
  oi.var persistent @K(l, l) : f32[D] @table
  oi.block @entry {
  }
}

// -----

oi.graph @g {
  // expected-error @+1 {{persistent table S must declare at least one table index}}
  oi.var persistent @S(r) : f32[D] @table @auto_dim(r)
  oi.block @entry {
  }
}

// -----

oi.graph @g {
  // expected-error @+1 {{auto_dim index r is not declared on S}}
  oi.var persistent @S(l) : f32[D] @table @auto_dim(r)
  oi.block @entry {
  }
}

// -----

oi.graph @g {
  // expected-error @+1 {{auto_dim index r is duplicated on A}}
  oi.var persistent @A(r) : f32[D, D] @auto_dim(r, r)
  oi.block @entry {
  }
}

// -----

oi.graph @g {
  // expected-error @+1 {{auto_dim requires 1 dims, got 2}}
  oi.var persistent @A(r) : f32[D, D] @auto_dim(r)
  oi.block @entry {
  }
}

// -----

oi.graph @g {
  // expected-error @+1 {{fixed index pos is not declared on K}}
  oi.var persistent @K(l) : f32[D] @table @fixed(pos = 4)
  oi.block @entry {
  }
}

// -----

oi.graph @g {
  // expected-error @+1 {{fixed index l on K must be greater than 0}}
  oi.var persistent @K(l) : f32[D] @table @fixed(l = 0)
  oi.block @entry {
  }
}

// -----

oi.graph @g {
  // expected-error @+1 {{cache table packed dtypes not supported}}
  oi.var persistent @K(l) : i4[D] @table
  oi.block @entry {
  }
}

// -----

oi.graph @g {
  // expected-error @+1 {{prefix table W must be in volatile or constant memory}}
  oi.var dynamic @W(l) : f32[D] @pattern("w.{l}")
  oi.block @entry {
  }
}

// -----

// The same message for a dynamic variable with indices and no @pattern.
oi.graph @g {
  // expected-error @+1 {{prefix table W must be in volatile or constant memory}}
  oi.var dynamic @W(l) : f32[D]
  oi.block @entry {
  }
}

// -----

oi.graph @g {
  // expected-error @+1 {{prefix table W cannot use @reference}}
  oi.var constant @W(l) : f32[D] @ref("w") @pattern("w.{l}")
  oi.block @entry {
  }
}

// -----

oi.graph @g {
  // expected-error @+1 {{prefix table W cannot use cache attributes}}
  oi.var constant @W(l) : f32[D] @pattern("w.{l}") @fixed(l = 2)
  oi.block @entry {
  }
}

// -----

oi.graph @g {
  // expected-error @+1 {{prefix table W must declare at least one index}}
  oi.var constant @W : f32[D] @pattern("w")
  oi.block @entry {
  }
}

// -----

oi.graph @g {
  // expected-error @+1 {{prefix table W has duplicate index l}}
  oi.var volatile @W(l, l) : f32[D] @pattern("w.{l}")
  oi.block @entry {
  }
}

// -----

oi.graph @g {
  // expected-error @+1 {{pattern placeholder missing closing brace}}
  oi.var constant @W(l) : f32[D] @pattern("w.{l")
  oi.block @entry {
  }
}

// -----

oi.graph @g {
  // expected-error @+1 {{pattern placeholder cannot be empty}}
  oi.var constant @W(l) : f32[D] @pattern("w.{}.{l}")
  oi.block @entry {
  }
}

// -----

// (The annotation ends at the first `}}`, so it names the placeholder without
// its closing brace; the match is a substring match.)
oi.graph @g {
  // expected-error @+1 {{invalid pattern placeholder {1l}}
  oi.var constant @W(l) : f32[D] @pattern("w.{1l}")
  oi.block @entry {
  }
}

// -----

oi.graph @g {
  // expected-error @+1 {{pattern for W is missing placeholder {h}}
  oi.var constant @W(l, h) : f32[D] @pattern("w.{l}")
  oi.block @entry {
  }
}

// -----

oi.graph @g {
  // expected-error @+1 {{pattern for W references unknown index {h}}
  oi.var constant @W(l) : f32[D] @pattern("w.{l}.{h}")
  oi.block @entry {
  }
}

// -----

oi.graph @g {
  // expected-error @+1 {{cache attributes are only supported on persistent variables: v}}
  oi.var volatile @v : f32[D] @table
  oi.block @entry {
  }
}

// -----

oi.graph @g {
  // expected-error @+1 {{prefix table W is missing @pattern}}
  oi.var constant @W(l) : f32[D]
  oi.block @entry {
  }
}

// -----

oi.graph @g {
  oi.var volatile @x : f32
  oi.block @entry {
    // expected-error @+1 {{assign shadows declared variable x}}
    oi.assign @x : f32
  }
}

// -----

// Temporaries are graph-wide: the second block's assign repeats the first's.
oi.graph @g {
  oi.block @entry {
    oi.assign @t : f32
  }
  oi.block @other {
    // expected-error @+1 {{duplicate temporary t}}
    oi.assign @t : f32[D]
  }
}

//===----------------------------------------------------------------------===//
// Operand references (prefix tables)
//===----------------------------------------------------------------------===//

// -----

oi.graph @g {
  oi.var constant @W(l) : f32[D] @pattern("w.{l}")
  oi.var volatile @y : f32[D]
  oi.block @entry {
    // expected-error @+1 {{prefix table W must be accessed with indices}}
    oi.op relu(@W) -> @y
  }
}

// -----

oi.graph @g {
  oi.var volatile @x : f32[D]
  oi.var volatile @y : f32[D]
  oi.block @entry {
    // expected-error @+1 {{variable x is not a prefix table}}
    oi.op relu(@x[0]) -> @y
  }
}

// -----

oi.graph @g {
  oi.var constant @W(l, h) : f32[D] @pattern("w.{l}.{h}")
  oi.var volatile @y : f32[D]
  oi.block @entry {
    // expected-error @+1 {{prefix table W expects 2 indices, got 1}}
    oi.op relu(@W[0]) -> @y
  }
}

// -----

// An index naming a variable must name a scalar.
oi.graph @g {
  oi.var constant @W(l) : f32[D] @pattern("w.{l}")
  oi.var volatile @y : f32[D]
  oi.block @entry {
    // expected-error @+1 {{unknown prefix index y}}
    oi.op relu(@W[y]) -> @y
  }
}

//===----------------------------------------------------------------------===//
// Cache ops
//===----------------------------------------------------------------------===//

// -----

oi.graph @g {
  oi.var volatile @x : f32[D]
  oi.block @entry {
    // expected-error @+1 {{unknown cache variable K}}
    oi.cache.read @K -> @x
  }
}

// -----

oi.graph @g {
  oi.var volatile @x : f32[D]
  oi.var volatile @v : f32[D]
  oi.block @entry {
    // expected-error @+1 {{cache.read expects persistent variable, got Volatile v}}
    oi.cache.read @v -> @x
  }
}

// -----

oi.graph @g {
  oi.var volatile @x : f32[D]
  oi.var constant @c : f32[D]
  oi.block @entry {
    // expected-error @+1 {{cache.write expects persistent variable, got Constant c}}
    oi.cache.write @x -> @c
  }
}

// -----

oi.graph @g {
  oi.var dynamic @d : f32[D]
  oi.block @entry {
    // expected-error @+1 {{cache.reset expects persistent variable, got Dynamic d}}
    oi.cache.reset @d
  }
}

// -----

oi.graph @g {
  oi.var volatile @n : i32
  oi.block @entry {
    // expected-error @+1 {{cache operation expects persistent variable, got Volatile n}}
    oi.cache.increment 1 @n
  }
}

// -----

oi.graph @g {
  oi.var volatile @n : i32
  oi.block @entry {
    // expected-error @+1 {{cache operation expects persistent variable, got Volatile n}}
    oi.cache.decrement 1 @n
  }
}

// -----

oi.graph @g {
  oi.var persistent @n : i32[2]
  oi.block @entry {
    // expected-error @+1 {{cache increment expects scalar n}}
    oi.cache.increment 1 @n
  }
}

// -----

oi.graph @g {
  oi.var persistent @f : bool
  oi.block @entry {
    // expected-error @+1 {{cache increment does not support dtype Bool for f}}
    oi.cache.decrement 1 @f
  }
}

// -----

oi.graph @g {
  oi.var persistent @q : u4
  oi.block @entry {
    // expected-error @+1 {{cache increment does not support dtype U4 for q}}
    oi.cache.increment 1 @q
  }
}

// -----

oi.graph @g {
  oi.var volatile @x : f32[D]
  oi.var persistent @K(l) : f32[D] @table
  oi.block @entry {
    // expected-error @+1 {{cache table K requires indices}}
    oi.cache.read @K -> @x
  }
}

// -----

oi.graph @g {
  oi.var persistent @K(l) : f32[D] @table
  oi.block @entry {
    // expected-error @+1 {{cache table K requires indices}}
    oi.cache.reset @K
  }
}

// -----

oi.graph @g {
  oi.var volatile @x : f32[D]
  oi.var persistent @P : f32[D]
  oi.block @entry {
    // expected-error @+1 {{cache access expects at most 1 indices, got 2}}
    oi.cache.read @P[0, 1] -> @x
  }
}

// -----

oi.graph @g {
  oi.var volatile @x : f32[D]
  oi.var persistent @A(r) : f32[D] @auto_dim(r)
  oi.block @entry {
    // expected-error @+1 {{cache access A does not support slice indices}}
    oi.cache.read @A[0:2] -> @x
  }
}

// -----

oi.graph @g {
  oi.var persistent @K(l, p) : f32[D] @table
  oi.block @entry {
    // expected-error @+1 {{cache.reset K requires scalar indices}}
    oi.cache.reset @K[0, 1:]
  }
}

// -----

oi.graph @g {
  oi.var volatile @x : f32[D]
  oi.var persistent @K(l) : f32[D, D] @table
  oi.block @entry {
    // expected-error @+1 {{cache access K expects at most 1 indices, got 2}}
    oi.cache.read @K[0, 1] -> @x
  }
}

// -----

oi.graph @g {
  oi.var volatile @x : f32[D]
  oi.var persistent @K(l) : f32[D] @table
  oi.block @entry {
    // expected-error @+1 {{cache index cannot be negative}}
    oi.cache.read @K[-1] -> @x
  }
}

// -----

oi.graph @g {
  oi.var volatile @x : f32[D]
  oi.var persistent @K(l) : f32[D] @table
  oi.block @entry {
    // expected-error @+1 {{cache index cannot be negative}}
    oi.cache.read @K[-2:] -> @x
  }
}

// -----

// A volatile scalar is not a cache index (only persistent scalars are).
oi.graph @g {
  oi.var volatile @x : f32[D]
  oi.var volatile @i : i32
  oi.var persistent @K(l) : f32[D] @table
  oi.block @entry {
    // expected-error @+1 {{unknown cache index i}}
    oi.cache.read @K[i] -> @x
  }
}

// -----

// A loop index is a cache index only inside its loop.
oi.graph @g {
  oi.var volatile @x : f32[D]
  oi.var persistent @K(l) : f32[D] @table
  oi.block @entry {
    oi.loop layers (l in 0 to 2) {
      oi.assign @t : f32
    }
    // expected-error @+1 {{unknown cache index t}}
    oi.cache.read @K[t] -> @x
  }
}

// -----

oi.graph @g {
  oi.var volatile @x : f32[D]
  oi.var persistent @P : f32[D]
  oi.block @entry {
    // expected-error @+1 {{cache P does not support indexed access}}
    oi.cache.read @P[0] -> @x
  }
}

// -----

oi.graph @g {
  oi.var volatile @x : f32[D]
  oi.var persistent @P : f32[D]
  oi.block @entry {
    // expected-error @+1 {{cache.write P does not support indexed writes}}
    oi.cache.write @x -> @P[0]
  }
}

// -----

oi.graph @g {
  oi.var volatile @x : f32[D]
  oi.var persistent @K(l) : f32[D] @table
  oi.block @entry {
    // expected-error @+1 {{cache.write K does not support slice indices}}
    oi.cache.write @x -> @K[0:2]
  }
}

// -----

// `K[]` names no entry, so a write to it counts as a slice.
oi.graph @g {
  oi.var volatile @x : f32[D]
  oi.var persistent @K(l) : f32[D] @table
  oi.block @entry {
    // expected-error @+1 {{cache.write K does not support slice indices}}
    oi.cache.write @x -> @K[]
  }
}

// -----

oi.graph @g {
  oi.var volatile @x : f32[D]
  oi.var persistent @K(l) : f32[D] @table
  oi.block @entry {
    // expected-error @+1 {{slice end 2 before start 3}}
    oi.cache.read @K[3:2] -> @x
  }
}

// -----

oi.graph @g {
  oi.var volatile @x : f32[D]
  oi.var persistent @K(l, p) : f32[D] @table @fixed(p = 4)
  oi.block @entry {
    // expected-error @+1 {{cache table K index 1 exceeds fixed size 4 (index value 4)}}
    oi.cache.write @x -> @K[0, 4]
  }
}

// -----

oi.graph @g {
  oi.var volatile @x : f32[D]
  oi.var persistent @K(l) : f32[D] @table @fixed(l = 4)
  oi.block @entry {
    // expected-error @+1 {{cache table K index 0 exceeds fixed size 4 (slice end 5)}}
    oi.cache.read @K[0:5] -> @x
  }
}

// -----

oi.graph @g {
  oi.var constant @c : f32[D]
  oi.var persistent @P : f32[D]
  oi.block @entry {
    // expected-error @+1 {{cache.read output c must be mutable non-persistent memory}}
    oi.cache.read @P -> @c
  }
}

// -----

oi.graph @g {
  oi.var persistent @P : f32[D]
  oi.block @entry {
    // expected-error @+1 {{unknown variable: nowhere}}
    oi.cache.read @P -> @nowhere
  }
}

// -----

oi.graph @g {
  oi.var persistent @P : f32[D]
  oi.block @entry {
    // expected-error @+1 {{unknown variable: nothing}}
    oi.cache.write @nothing -> @P
  }
}

// -----

oi.graph @g {
  oi.var volatile @x : f16[D]
  oi.var persistent @P : f32[D]
  oi.block @entry {
    // expected-error @+1 {{cache.read P -> x dtype mismatch F32 vs F16}}
    oi.cache.read @P -> @x
  }
}

// -----

oi.graph @g {
  oi.var volatile @x : bf16[D]
  oi.var persistent @K(l) : f32[D] @table
  oi.block @entry {
    // expected-error @+1 {{cache.write x -> K dtype mismatch BF16 vs F32}}
    oi.cache.write @x -> @K[0]
  }
}

// -----

oi.graph @g {
  oi.var persistent @P : f32[D]
  oi.var persistent @Q : f32[D]
  oi.block @entry {
    // expected-error @+1 {{persistent cache Q must be read via cache.read}}
    oi.cache.write @Q -> @P
  }
}

// -----

oi.graph @g {
  oi.var volatile @x : f32[2, D]
  oi.var persistent @K(l) : f32[1, D] @table
  oi.block @entry {
    // expected-error @+1 {{cache.write K expects shape [1, D], got [2, D]}}
    oi.cache.write @x -> @K[0]
  }
}

//===----------------------------------------------------------------------===//
// Ops and transfer
//===----------------------------------------------------------------------===//

// -----

oi.graph @g {
  oi.var volatile @x : f32[D]
  oi.block @entry {
    // expected-error @+1 {{unsupported op frobnicate}}
    oi.op frobnicate(@x) -> @x
  }
}

// -----

oi.graph @g {
  oi.var volatile @x : f32[D]
  oi.block @entry {
    // expected-error @+1 {{op add expects 2 inputs, got 1}}
    oi.op add(@x) -> @x
  }
}

// -----

oi.graph @g {
  oi.var volatile @x : f32[D]
  oi.block @entry {
    // expected-error @+1 {{op relu missing output}}
    oi.op relu(@x) -> @" "
  }
}

// -----

oi.graph @g {
  oi.var volatile @x : i8[D]
  oi.var volatile @y : i16[D]
  oi.block @entry {
    // expected-error @+1 {{op relu does not support accumulation}}
    oi.op relu(@x, acc = [i16]) -> @y
  }
}

// -----

oi.graph @g {
  oi.var volatile @y : f32[D]
  oi.block @entry {
    // expected-error @+1 {{unknown input variable nope}}
    oi.op relu(@nope) -> @y
  }
}

// -----

oi.graph @g {
  oi.var volatile @y : f32[D]
  oi.var persistent @P : f32[D]
  oi.block @entry {
    // expected-error @+1 {{persistent cache P must be read via cache.read}}
    oi.op relu(@P) -> @y
  }
}

// -----

oi.graph @g {
  oi.var volatile @a : f32[1, D]
  oi.var volatile @b : f32[B, D]
  oi.block @entry {
    // expected-error @+1 {{op min does not allow broadcast inputs}}
    oi.op min(@a, @b) -> @b
  }
}

// -----

oi.graph @g {
  oi.var volatile @x : f32[D]
  oi.var volatile @y : f16[D]
  oi.block @entry {
    // expected-error @+1 {{op cast requires setting to}}
    oi.op cast(@x) -> @y
  }
}

// -----

oi.graph @g {
  oi.var volatile @x : f32[D]
  oi.var constant @c : f32[D]
  oi.block @entry {
    // expected-error @+1 {{cannot write to constant memory: c}}
    oi.op relu(@x) -> @c
  }
}

// -----

oi.graph @g {
  oi.var volatile @x : f32[D]
  oi.var persistent @P : f32[D]
  oi.block @entry {
    // expected-error @+1 {{persistent cache P must be written via cache.write}}
    oi.op relu(@x) -> @P
  }
}

// -----

oi.graph @g {
  oi.var volatile @x : f32[D]
  oi.block @entry {
    // expected-error @+1 {{unknown output variable y}}
    oi.op relu(@x) -> @y
  }
}

// -----

// A temporary is known only from its assign onwards.
oi.graph @g {
  oi.var volatile @x : f32[D]
  oi.block @entry {
    // expected-error @+1 {{unknown output variable t}}
    oi.op relu(@x) -> @t
    oi.assign @t : f32[D]
  }
}

// -----

oi.graph @g {
  oi.var volatile @x : f32[D]
  oi.var volatile @y : f16[D]
  oi.block @entry {
    // expected-error @+1 {{op relu output dtype mismatch for y: expected F16, got F32}}
    oi.op relu(@x) -> @y
  }
}

// -----

oi.graph @g {
  oi.var volatile @x : f32[D]
  oi.var volatile @b : i32
  oi.block @entry {
    // expected-error @+1 {{op is_finite output dtype mismatch for b: expected I32, got Bool}}
    oi.op is_finite(@x) -> @b
  }
}

// -----

// With acc=[..] the output dtype is the list's last dtype.
oi.graph @g {
  oi.var volatile @x : i8[D]
  oi.var volatile @y : i16[D]
  oi.block @entry {
    // expected-error @+1 {{op add output dtype mismatch for y: expected I16, got I32}}
    oi.op add(@x, @x, acc = [i16, i32]) -> @y
  }
}

// -----

oi.graph @g {
  oi.var volatile @x : u8[D]
  oi.block @entry {
    // expected-error @+1 {{op popcount does not support inplace writes}}
    oi.op popcount(@x) -> @x
  }
}

// -----

oi.graph @g {
  oi.var volatile @x : f32[D]
  oi.var volatile @y : u8[D]
  oi.block @entry {
    // expected-error @+1 {{op popcount does not support F32 -> U8 for mode Normal}}
    oi.op popcount(@x) -> @y
  }
}

// -----

oi.graph @g {
  oi.var volatile @x : u8[D]
  oi.block @entry {
    // expected-error @+1 {{op neg does not support U8 -> U8 for mode Inplace}}
    oi.op neg(@x) -> @x
  }
}

// -----

oi.graph @g {
  oi.var volatile @x : f32[D]
  oi.var volatile @y : f64[D]
  oi.block @entry {
    // expected-error @+1 {{op add does not support F32 -> F64 for mode Accumulate}}
    oi.op add(@x, @x, acc = [f64]) -> @y
  }
}

// -----

// A `to=` dtype outside the op's output dtypes (ours).
oi.graph @g {
  oi.var volatile @x : f32[D]
  oi.var volatile @y : bool[D]
  oi.block @entry {
    // expected-error @+1 {{op cast does not support F32 -> Bool for mode Normal}}
    oi.op cast(@x, to = bool) -> @y
  }
}

// -----

oi.graph @g {
  oi.var volatile @x : f32[D]
  oi.block @entry {
    // expected-error @+1 {{unsupported relu setting: beta}}
    oi.op relu(@x, beta = 1.0) -> @x
  }
}

// -----

oi.graph @g {
  oi.var volatile @x : f32[D]
  oi.var volatile @y : f32[D]
  oi.block @entry {
    // expected-error @+1 {{unsupported max_axis setting type: keepdims}}
    oi.op max_axis(@x, keepdims = 1) -> @y
  }
}

// -----

oi.graph @g {
  oi.var volatile @x : f32[D]
  oi.var volatile @y : f32[D]
  oi.block @entry {
    // expected-error @+1 {{unsupported sum_axis setting type: axes}}
    oi.op sum_axis(@x, axes = 1) -> @y
  }
}

// -----

oi.graph @g {
  oi.var volatile @x : f32[D]
  oi.var volatile @y : f16[D]
  oi.block @entry {
    // expected-error @+1 {{unsupported cast setting type: rounding_mode}}
    oi.op cast(@x, to = f16, rounding_mode = 1) -> @y
  }
}

// -----

oi.graph @g {
  oi.var volatile @x : f32[D]
  oi.block @entry {
    // expected-error @+1 {{unknown attribute variable: a}}
    oi.op relu(@x, alpha = @a) -> @x
  }
}

// -----

oi.graph @g {
  oi.var volatile @x : f32[D]
  oi.var constant @a : f32[D]
  oi.block @entry {
    // expected-error @+1 {{attribute a must be scalar}}
    oi.op relu(@x, alpha = @a) -> @x
  }
}

// -----

oi.graph @g {
  oi.var volatile @y : f32[D]
  oi.block @entry {
    // expected-error @+1 {{unknown transfer source x}}
    oi.transfer @x -> @y
  }
}

// -----

oi.graph @g {
  oi.var volatile @x : f32[D]
  oi.block @entry {
    // expected-error @+1 {{unknown transfer destination y}}
    oi.transfer @x -> @y
  }
}

// -----

oi.graph @g {
  oi.var volatile @x : f32[D]
  oi.var constant @c : f32[D]
  oi.block @entry {
    // expected-error @+1 {{cannot transfer into c}}
    oi.transfer @x -> @c
  }
}

// -----

oi.graph @g {
  oi.var volatile @x : f32[D]
  oi.var persistent @P : f32[D]
  oi.block @entry {
    // expected-error @+1 {{cannot transfer into P}}
    oi.transfer @x -> @P
  }
}

// -----

oi.graph @g {
  oi.var volatile @x : f32[D]
  oi.var persistent @P : f32[D]
  oi.block @entry {
    // expected-error @+1 {{persistent cache P must be read via cache.read}}
    oi.transfer @P -> @x
  }
}

// -----

oi.graph @g {
  oi.var volatile @x : f32[D]
  oi.var volatile @y : i32[D]
  oi.block @entry {
    // expected-error @+1 {{transfer dtype mismatch x -> y: F32 vs I32}}
    oi.transfer @x -> @y
  }
}

// -----

oi.graph @g {
  oi.var volatile @x : f32[B, D]
  oi.var volatile @y : f32[N, D]
  oi.block @entry {
    // expected-error @+1 {{transfer shape mismatch x -> y: [B, D] vs [N, D]}}
    oi.transfer @x -> @y
  }
}

//===----------------------------------------------------------------------===//
// Control flow
//===----------------------------------------------------------------------===//

// -----

// expected-error @+1 {{graph has no blocks}}
oi.graph @g {
  oi.var volatile @x : f32
}

// -----

oi.graph @g {
  oi.block @entry {
  }
  // expected-error @+1 {{duplicate block entry}}
  oi.block @entry {
  }
}

// -----

oi.graph @g {
  oi.block @entry {
    // expected-error @+1 {{branch target block not found: missing}}
    oi.branch @missing
  }
}

// -----

oi.graph @g {
  oi.var volatile @c : bool
  oi.block @entry {
    // expected-error @+1 {{branch target block not found: nope}}
    oi.branch @c, @entry, @nope
  }
}

// -----

// Only the generic form can leave out the else target of a conditional branch.
oi.graph @g {
  oi.var volatile @c : bool
  oi.block @entry {
    // expected-error @+1 {{branch c requires else block}}
    "oi.branch"() <{cond = "c", then_block = "entry"}> : () -> ()
  }
}

// -----

oi.graph @g {
  oi.block @entry {
    // expected-error @+1 {{unknown variable c}}
    oi.branch @c, @entry, @entry
  }
}

// -----

oi.graph @g {
  oi.var volatile @c : bool[2]
  oi.block @entry {
    // expected-error @+1 {{c must be scalar}}
    oi.branch @c, @entry, @entry
  }
}

// -----

// Without size variables only an enclosing loop's index is known not to be a size.
oi.graph @g {
  oi.block @entry {
    oi.loop outer (i in 0 to 4) {
      // expected-error @+1 {{loop end bound i is invalid: unknown variable i}}
      oi.loop inner (j in 0 to i) {
      }
    }
  }
}

// -----

oi.graph @g {
  oi.block @entry {
    oi.loop outer (i in 0 to 4) {
      // expected-error @+1 {{loop start bound i is invalid: unknown variable i}}
      oi.loop inner (j in i to 4) {
      }
    }
  }
}

// -----

oi.graph @g {
  oi.var volatile @n : i32[2]
  oi.block @entry {
    // expected-error @+1 {{loop end bound n is invalid: n must be scalar}}
    oi.loop l (i in 0 to n) {
    }
  }
}

// -----

oi.graph @g {
  oi.block @entry {
    // expected-error @+1 {{unknown variable: y}}
    oi.yield @y
  }
}

// -----

oi.graph @g {
  oi.block @entry {
    // expected-error @+1 {{unknown variable: y}}
    oi.await @y
  }
}

// -----

oi.graph @g {
  oi.var constant @c : f32
  oi.block @entry {
    // expected-error @+1 {{await cannot target constant c}}
    oi.await @c
  }
}

// -----

oi.graph @g {
  oi.var volatile @y : f32
  oi.block @entry {
    oi.return
  }
  oi.block @worker {
    // expected-error @+1 {{yield in block worker must be the final node}}
    oi.yield @y
    oi.return
  }
}

// -----

oi.graph @g {
  oi.var volatile @y : f32
  oi.var volatile @z : f32
  oi.block @entry {
    oi.return
  }
  oi.block @worker {
    // expected-error @+1 {{block worker awaits ["y", "z"] but never yields them}}
    oi.await @y, @z
    oi.return
  }
}

// -----

oi.graph @g {
  oi.var volatile @y : f32
  oi.var volatile @z : f32
  oi.block @entry {
    oi.return
  }
  oi.block @worker {
    oi.await @y
    // expected-error @+1 {{block worker awaits z but does not yield it}}
    oi.await @z
    oi.yield @y
  }
}

// -----

// Without a block named `entry` the first block is the entry: `first` may yield
// anywhere, `second` may not.
oi.graph @g {
  oi.var volatile @y : f32
  oi.block @first {
    oi.yield @y
    oi.return
  }
  oi.block @second {
    // expected-error @+1 {{yield in block second must be the final node}}
    oi.yield @y
    oi.barrier
  }
}

//===----------------------------------------------------------------------===//
// Structural verifiers of the ops (generic form only)
//===----------------------------------------------------------------------===//

// -----

oi.graph @g {
  // expected-error @+1 {{'oi.var' op unknown memory kind stack}}
  "oi.var"() <{kind = "stack", sym_name = "x", type = !oi.tensor<f32>, indices = []}> : () -> ()
  oi.block @entry {
  }
}

// -----

oi.graph @g {
  oi.block @entry {
    // expected-error @+1 {{'oi.yield' op yield expects at least one variable}}
    "oi.yield"() <{vars = []}> : () -> ()
  }
}

// -----

oi.graph @g {
  oi.block @entry {
    // expected-error @+1 {{'oi.await' op await expects at least one variable}}
    "oi.await"() <{vars = []}> : () -> ()
  }
}

//===----------------------------------------------------------------------===//
// Syntax errors of the custom parsers
//===----------------------------------------------------------------------===//

// -----

oi.graph @g {
  // expected-error @+1 {{expected one of dynamic, volatile, constant, persistent}}
  oi.var stack @x : f32
}

// -----

oi.graph @g {
  // expected-error @+1 {{unsupported dtype f31}}
  oi.var volatile @x : f31[D]
}

// -----

// The removed sub-byte and bitset dtypes are rejected too.
oi.graph @g {
  // expected-error @+1 {{unsupported dtype i2}}
  oi.var volatile @x : i2[D]
}

// -----

oi.graph @g {
  // expected-error @+1 {{unsupported dtype t1}}
  "oi.var"() <{kind = "volatile", sym_name = "x", type = !oi.tensor<t1[D]>, indices = []}> : () -> ()
}

// -----

// The error points at the unknown attribute.
oi.graph @g {
  // expected-error @+1 {{unsupported attribute}}
  oi.var volatile @x : f32 @zero
}

// -----

// The error points at the branch's operands.
oi.graph @g {
  oi.block @a {
    // expected-error @+1 {{branch expects condition and two target blocks}}
    oi.branch @a, @b
  }
}

// -----

oi.graph @g {
  oi.block @a {
    // expected-error @+1 {{branch expects condition and two target blocks}}
    oi.branch @c, @a, @b, @d
  }
}

// -----

oi.graph @g {
  oi.var volatile @x : f32
  oi.block @entry {
    // expected-error @+1 {{positional args must come before settings}}
    oi.op relu(alpha = 1.0, @x) -> @x
  }
}

// -----

oi.graph @g {
  oi.var volatile @x : f32
  oi.block @entry {
    // expected-error @+1 {{unsupported dtype foo}}
    oi.op add(@x, @x, acc = [i16, foo]) -> @x
  }
}

// -----

// A bare identifier is read as a dtype (variables are spelled @name).
oi.graph @g {
  oi.var volatile @x : f32
  oi.block @entry {
    // expected-error @+1 {{unsupported dtype a}}
    oi.op relu(@x, alpha = a) -> @x
  }
}

// -----

oi.graph @g {
  oi.var volatile @x : f32
  oi.block @entry {
    // expected-error @+1 {{expected a number after '-'}}
    oi.op relu(@x, alpha = -@a) -> @x
  }
}

// -----

oi.graph @g {
  oi.var volatile @x : f32
  oi.var persistent @K(l) : f32 @table
  oi.block @entry {
    // expected-error @+1 {{expected an index value or a slice}}
    oi.cache.read @K[, 1] -> @x
  }
}

// -----

oi.graph @g {
  oi.block @entry {
    // expected-error @+1 {{expected a slice `start:end`}}
    "oi.dep"() <{after = "a", before = "b"}> {x = #oi.slice<3>} : () -> ()
  }
}
