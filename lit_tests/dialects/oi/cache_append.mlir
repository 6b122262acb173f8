// `oi.cache.append [skip] @x -> @K[@off]`, the DSL's `cache.append x >> K[off]` (with
// `@on_out_of_range(skip)`: `skip`): the custom form round trips (printing is a fixed point), so
// does the generic form; then one case per rule of verify_cache_append (verify/cache.py), then the
// syntax errors of the custom parser. Cases with errors print nothing, so the FileCheck lines
// below see the valid graphs only.
//
// RUN: oi-opt %s --split-input-file --verify-diagnostics | filecheck %s --match-full-lines
// RUN: oi-opt %s --split-input-file --verify-diagnostics | oi-opt - --split-input-file | filecheck %s --match-full-lines
// RUN: oi-opt %s --split-input-file --verify-diagnostics --mlir-print-op-generic | oi-opt - --split-input-file | filecheck %s --match-full-lines
// RUN: oi-opt %s --split-input-file --verify-diagnostics --mlir-print-op-generic | filecheck %s --check-prefix=GENERIC

// Both policies; 0, 1 and 2 middle indices; a rank-2 entry; every integer offsets dtype the
// runtime reads (a volatile, a persistent vector, a constant); a prefix table entry as the
// source, in a loop over layers; discardable attributes.

oi.graph @append {
  oi.var dynamic @x : f32[B, T, D]
  oi.var dynamic @xh : f16[B, H, T, D, 2]
  oi.var dynamic @xi : i32[B, H, G, T]
  oi.var dynamic @off : i64[B]
  oi.var volatile @o32 : u32[B]
  oi.var volatile @oi32 : i32[B]
  oi.var constant @ou64 : u64[B]
  oi.var constant @X(l) : f32[B, T, D] @pattern("x.{l}")
  oi.var persistent @pos : i64[B] @init(0)
  oi.var persistent @K(b, t) : f32[D] @table @fixed(t = 16)
  oi.var persistent @V(b, h, t) : f16[D, 2] @table
  oi.var persistent @I(b, h, g, t) : i32 @init(-1) @table @fixed(b = 4, g = 2)
  oi.block @entry {
    oi.cache.append @x -> @K[@off]
    oi.cache.append skip @x -> @K[@off]
    oi.cache.append @xh -> @V[@o32]
    oi.cache.append skip @xi -> @I[@oi32]
    oi.cache.append @xi -> @I[@ou64]
    oi.cache.append @x -> @K[@pos] {my.attr = 1 : i64}
    oi.loop layers (l in 0 to 2) {
      oi.cache.append skip @X[l] -> @K[@pos]
    }
    oi.cache.append skip @X[1] -> @K[@off] {my.attr = "two", other.unit}
  }
}

// CHECK-LABEL:  oi.graph @append {
// CHECK:          oi.block @entry {
// CHECK-NEXT:       oi.cache.append @x -> @K[@off]
// CHECK-NEXT:       oi.cache.append skip @x -> @K[@off]
// CHECK-NEXT:       oi.cache.append @xh -> @V[@o32]
// CHECK-NEXT:       oi.cache.append skip @xi -> @I[@oi32]
// CHECK-NEXT:       oi.cache.append @xi -> @I[@ou64]
// CHECK-NEXT:       oi.cache.append @x -> @K[@pos] {my.attr = 1 : i64}
// CHECK-NEXT:       oi.loop layers (l in 0 to 2) {
// CHECK-NEXT:         oi.cache.append skip @X[l] -> @K[@pos]
// CHECK-NEXT:       }
// CHECK-NEXT:       oi.cache.append skip @X[1] -> @K[@off] {my.attr = "two", other.unit}
// CHECK-NEXT:     }
// CHECK-NEXT:   }

// GENERIC-LABEL: "oi.graph"() <{sym_name = "append"}> ({
// GENERIC:      "oi.cache.append"() <{src = #oi.ref<@x>, table = "K", offsets = "off", skip = false}> : () -> ()
// GENERIC-NEXT: "oi.cache.append"() <{src = #oi.ref<@x>, table = "K", offsets = "off", skip = true}> : () -> ()
// GENERIC-NEXT: "oi.cache.append"() <{src = #oi.ref<@xh>, table = "V", offsets = "o32", skip = false}> : () -> ()
// GENERIC:      "oi.cache.append"() <{src = #oi.ref<@x>, table = "K", offsets = "pos", skip = false}> {my.attr = 1 : i64} : () -> ()
// GENERIC:      "oi.cache.append"() <{src = #oi.ref<@X[l]>, table = "K", offsets = "pos", skip = true}> : () -> ()

// -----

// The generic form reads back into the custom one; a variable named like the keyword is a
// symbol (`@skip`), never the policy.

oi.graph @generic {
  oi.var dynamic @skip : f32[B, T, D]
  oi.var dynamic @off : i64[B]
  oi.var persistent @K(b, t) : f32[D] @table
  oi.block @entry {
    "oi.cache.append"() <{src = #oi.ref<@skip>, table = "K", offsets = "off", skip = true}> : () -> ()
    "oi.cache.append"() <{src = #oi.ref<@skip>, table = "K", offsets = "off", skip = false}> : () -> ()
    oi.cache.append @skip -> @K[@off]
  }
}

// CHECK-LABEL:  oi.graph @generic {
// CHECK:          oi.block @entry {
// CHECK-NEXT:       oi.cache.append skip @skip -> @K[@off]
// CHECK-NEXT:       oi.cache.append @skip -> @K[@off]
// CHECK-NEXT:       oi.cache.append @skip -> @K[@off]
// CHECK-NEXT:     }

//===----------------------------------------------------------------------===//
// The verifier: the target
//===----------------------------------------------------------------------===//

// -----

oi.graph @g {
  oi.var dynamic @x : f32[B, T, D]
  oi.var dynamic @off : i64[B]
  oi.block @entry {
    // expected-error @+1 {{unknown cache variable K}}
    oi.cache.append @x -> @K[@off]
  }
}

// -----

oi.graph @g {
  oi.var dynamic @x : f32[B, T, D]
  oi.var dynamic @off : i64[B]
  oi.var volatile @K : f32[D]
  oi.block @entry {
    // expected-error @+1 {{cache.append expects persistent variable, got Volatile K}}
    oi.cache.append @x -> @K[@off]
  }
}

// -----

oi.graph @g {
  oi.var dynamic @x : f32[B, T, D]
  oi.var dynamic @off : i64[B]
  oi.var constant @K(b, t) : f32[D] @pattern("k.{b}.{t}")
  oi.block @entry {
    // expected-error @+1 {{cache.append expects persistent variable, got Constant K}}
    oi.cache.append @x -> @K[@off]
  }
}

// -----

oi.graph @g {
  oi.var dynamic @x : f32[B, T, D]
  oi.var dynamic @off : i64[B]
  oi.var persistent @P : f32[B, T, D]
  oi.block @entry {
    // expected-error @+1 {{cache.append expects a @table variable, got P}}
    oi.cache.append @x -> @P[@off]
  }
}

// -----

oi.graph @g {
  oi.var dynamic @x : f32[B, T, D]
  oi.var dynamic @off : i64[B]
  oi.var persistent @A(b, t) : f32[D] @table @auto_dim(t)
  oi.block @entry {
    // expected-error @+1 {{cache.append expects a @table variable, got A}}
    oi.cache.append @x -> @A[@off]
  }
}

// -----

oi.graph @g {
  oi.var dynamic @x : f32[B, T, D]
  oi.var dynamic @off : i64[B]
  oi.var persistent @A(r, c) : f32[R, C] @auto_dim(r, c)
  oi.block @entry {
    // expected-error @+1 {{cache.append expects a @table variable, got A}}
    oi.cache.append @x -> @A[@off]
  }
}

// -----

oi.graph @g {
  oi.var dynamic @x : f32[T, D]
  oi.var dynamic @off : i64[B]
  oi.var persistent @K(t) : f32[D] @table
  oi.block @entry {
    // expected-error @+1 {{cache.append K needs a batch index and a sequence index, the table has 1 index}}
    oi.cache.append @x -> @K[@off]
  }
}

// -----

// A packed table never reaches the statement's own check (the same words): its declaration is
// refused first.

oi.graph @g {
  oi.var dynamic @x : i4[B, T, D]
  oi.var dynamic @off : i64[B]
  // expected-error @+1 {{cache table packed dtypes not supported}}
  oi.var persistent @K(b, t) : i4[D] @table
  oi.block @entry {
    oi.cache.append @x -> @K[@off]
  }
}

//===----------------------------------------------------------------------===//
// The verifier: the source
//===----------------------------------------------------------------------===//

// -----

oi.graph @g {
  oi.var dynamic @off : i64[B]
  oi.var persistent @K(b, t) : f32[D] @table
  oi.block @entry {
    // expected-error @+1 {{unknown variable: y}}
    oi.cache.append @y -> @K[@off]
  }
}

// -----

oi.graph @g {
  oi.var dynamic @off : i64[B]
  oi.var persistent @P : f32[B, T, D]
  oi.var persistent @K(b, t) : f32[D] @table
  oi.block @entry {
    // expected-error @+1 {{persistent cache P must be read via cache.read}}
    oi.cache.append @P -> @K[@off]
  }
}

// -----

oi.graph @g {
  oi.var dynamic @x : bf16[B, T, D]
  oi.var dynamic @off : i64[B]
  oi.var persistent @K(b, t) : f32[D] @table
  oi.block @entry {
    // expected-error @+1 {{cache.append x -> K dtype mismatch BF16 vs F32}}
    oi.cache.append @x -> @K[@off]
  }
}

// -----

oi.graph @g {
  oi.var dynamic @x : f32[B, T, D]
  oi.var dynamic @off : i64[B]
  oi.block @entry {
    // expected-error @+1 {{variable x is not a prefix table}}
    oi.cache.append @x[0] -> @K[@off]
  }
  oi.var persistent @K(b, t) : f32[D] @table
}

// -----

oi.graph @g {
  oi.var dynamic @off : i64[B]
  oi.var constant @X(l) : f32[B, T, D] @pattern("x.{l}")
  oi.var persistent @K(b, t) : f32[D] @table
  oi.block @entry {
    // expected-error @+1 {{prefix table X must be accessed with indices}}
    oi.cache.append @X -> @K[@off]
  }
}

// -----

oi.graph @g {
  oi.var dynamic @off : i64[B]
  oi.var constant @X(l) : f32[B, T, D] @pattern("x.{l}")
  oi.var persistent @K(b, t) : f32[D] @table
  oi.block @entry {
    // expected-error @+1 {{prefix index of X cannot be negative}}
    oi.cache.append @X[-1] -> @K[@off]
  }
}

// -----

oi.graph @g {
  oi.var dynamic @x : f32[B, D]
  oi.var dynamic @off : i64[B]
  oi.var persistent @K(b, t) : f32[D] @table
  oi.block @entry {
    // expected-error @+1 {{cache.append K expects a source of shape [b, t, D], got [B, D]}}
    oi.cache.append @x -> @K[@off]
  }
}

// -----

oi.graph @g {
  oi.var dynamic @x : f32[B, H, T, D]
  oi.var dynamic @off : i64[B]
  oi.var persistent @K(b, t) : f32[D] @table
  oi.block @entry {
    // expected-error @+1 {{cache.append K expects a source of shape [b, t, D], got [B, H, T, D]}}
    oi.cache.append @x -> @K[@off]
  }
}

// -----

oi.graph @g {
  oi.var dynamic @x : f32[B, T, 3]
  oi.var dynamic @off : i64[B]
  oi.var persistent @K(b, h, t) : f32[2, 3] @table
  oi.block @entry {
    // expected-error @+1 {{cache.append K expects a source of shape [b, h, t, 2, 3], got [B, T, 3]}}
    oi.cache.append @x -> @K[@off]
  }
}

//===----------------------------------------------------------------------===//
// The verifier: the offsets
//===----------------------------------------------------------------------===//

// -----

oi.graph @g {
  oi.var dynamic @x : f32[B, T, D]
  oi.var persistent @K(b, t) : f32[D] @table
  oi.block @entry {
    oi.loop l (i in 0 to 2) {
      // expected-error @+1 {{unknown variable: i}}
      oi.cache.append @x -> @K[@i]
    }
  }
}

// -----

oi.graph @g {
  oi.var dynamic @x : i64[B, T]
  oi.var persistent @K(b, t) : i64 @table
  oi.block @entry {
    // expected-error @+1 {{cache.append K cannot take its own table as offsets}}
    oi.cache.append @x -> @K[@K]
  }
}

// -----

oi.graph @g {
  oi.var dynamic @x : f32[B, T, D]
  oi.var dynamic @off : f32[B]
  oi.var persistent @K(b, t) : f32[D] @table
  oi.block @entry {
    // expected-error @+1 {{cache.append offsets off must be integer, got F32}}
    oi.cache.append @x -> @K[@off]
  }
}

// -----

oi.graph @g {
  oi.var dynamic @x : f32[B, T, D]
  oi.var dynamic @off : f8[B]
  oi.var persistent @K(b, t) : f32[D] @table
  oi.block @entry {
    // expected-error @+1 {{cache.append offsets off must be integer, got F8}}
    oi.cache.append @x -> @K[@off]
  }
}

// -----

oi.graph @g {
  oi.var dynamic @x : f32[B, T, D]
  oi.var dynamic @off : bool[B]
  oi.var persistent @K(b, t) : f32[D] @table
  oi.block @entry {
    // expected-error @+1 {{cache.append offsets off must be integer, got Bool}}
    oi.cache.append @x -> @K[@off]
  }
}

// -----

oi.graph @g {
  oi.var dynamic @x : f32[B, T, D]
  oi.var dynamic @off : u4[B]
  oi.var persistent @K(b, t) : f32[D] @table
  oi.block @entry {
    // expected-error @+1 {{cache.append offsets off must be integer, got U4}}
    oi.cache.append @x -> @K[@off]
  }
}

// -----

oi.graph @g {
  oi.var dynamic @x : f32[B, T, D]
  oi.var persistent @O(i) : i64 @table
  oi.var persistent @K(b, t) : f32[D] @table
  oi.block @entry {
    // expected-error @+1 {{cache.append offsets O must be a plain vector, not a table}}
    oi.cache.append @x -> @K[@O]
  }
}

// -----

oi.graph @g {
  oi.var dynamic @x : f32[B, T, D]
  oi.var volatile @O(l) : i64[B] @pattern("o.{l}")
  oi.var persistent @K(b, t) : f32[D] @table
  oi.block @entry {
    // expected-error @+1 {{cache.append offsets O must be a plain vector, not a table}}
    oi.cache.append @x -> @K[@O]
  }
}

// -----

oi.graph @g {
  oi.var dynamic @x : f32[B, T, D]
  oi.var dynamic @off : i64[B, 2]
  oi.var persistent @K(b, t) : f32[D] @table
  oi.block @entry {
    // expected-error @+1 {{cache.append offsets off must have shape [B], got [B, 2]}}
    oi.cache.append @x -> @K[@off]
  }
}

// -----

oi.graph @g {
  oi.var dynamic @x : f32[B, T, D]
  oi.var dynamic @off : i64
  oi.var persistent @K(b, t) : f32[D] @table
  oi.block @entry {
    // expected-error @+1 {{cache.append offsets off must have shape [B], got []}}
    oi.cache.append @x -> @K[@off]
  }
}

//===----------------------------------------------------------------------===//
// Syntax errors of the custom form, and a generic form without its properties
//===----------------------------------------------------------------------===//

// -----

oi.graph @g {
  oi.var dynamic @x : f32[B, T, D]
  oi.var dynamic @off : i64[B]
  oi.var persistent @K(b, t) : f32[D] @table
  oi.block @entry {
    // expected-error @+1 {{expect symbol name}}
    oi.cache.append @x -> @K[off]
  }
}

// -----

oi.graph @g {
  oi.var dynamic @x : f32[B, T, D]
  oi.var dynamic @off : i64[B]
  oi.var persistent @K(b, t) : f32[D] @table
  oi.block @entry {
    // expected-error @+1 {{Expected '->'}}
    oi.cache.append @x @K[@off]
  }
}

// -----

oi.graph @g {
  oi.var dynamic @x : f32[B, T, D]
  oi.var dynamic @off : i64[B]
  oi.var persistent @K(b, t) : f32[D] @table
  oi.block @entry {
    // expected-error @+1 {{Expected ']'}}
    oi.cache.append @x -> @K[@off, @off]
  }
}

// -----

oi.graph @g {
  oi.var dynamic @x : f32[B, T, D]
  oi.var dynamic @off : i64[B]
  oi.var persistent @K(b, t) : f32[D] @table
  oi.block @entry {
    // expected-error @+1 {{expect symbol name}}
    oi.cache.append maybe @x -> @K[@off]
  }
}

// -----

oi.graph @g {
  oi.var dynamic @x : f32[B, T, D]
  oi.var dynamic @off : i64[B]
  oi.var persistent @K(b, t) : f32[D] @table
  oi.block @entry {
    oi.cache.append @x -> @K
  // expected-error @below {{Expected '['}}
  }
}

// -----

oi.graph @g {
  oi.var dynamic @x : f32[B, T, D]
  oi.var dynamic @off : i64[B]
  oi.var persistent @K(b, t) : f32[D] @table
  oi.block @entry {
    // expected-error @+1 {{property 'skip' expected in operation 'oi.cache.append'}}
    "oi.cache.append"() <{src = #oi.ref<@x>, table = "K", offsets = "off"}> : () -> ()
  }
}
