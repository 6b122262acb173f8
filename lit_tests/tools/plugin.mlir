// `--load-pass-plugin FILE.py` runs a Python file that registers passes; its
// passes then run as flags or in -p pipelines, with options. examples/custom_pass.py
// unrolls loops with literal bounds, substituting the index into every index slot.
//
// RUN: oi-opt %examples/layers.oi --load-pass-plugin=%examples/custom_pass.py --unroll-constant-loops | filecheck %s
// A trip count over max_trip_count leaves the loop as it is (options as
// --pass=opt=value or in a -p pipeline as pass{opt=value}).
// RUN: oi-opt %examples/layers.oi --load-pass-plugin %examples/custom_pass.py --unroll-constant-loops=max_trip_count=1 | filecheck %s --check-prefix=KEEP
// RUN: oi-opt %examples/layers.oi --load-pass-plugin %examples/custom_pass.py -p 'unroll-constant-loops{max_trip_count=1}' | filecheck %s --check-prefix=KEEP
// Nested literal loops unroll fully (innermost first); a loop with a `return`
// and a loop with a symbolic bound stay.
// RUN: oi-opt %s --load-pass-plugin=%examples/custom_pass.py --unroll-constant-loops | filecheck %s --check-prefix=NESTED
// Without the plugin the flag is unknown (exit 2).
// RUN: not oi-opt %examples/layers.oi --unroll-constant-loops 2>&1 | filecheck %s --check-prefix=NOPLUGIN

// CHECK:      oi.block @entry {
// CHECK-NEXT:   oi.op matmul(@x, @W[0]) -> @h
// CHECK-NEXT:   oi.cache.write @h -> @K[0, t]
// CHECK-NEXT:   oi.cache.read @K[0, 0:t] -> @hist
// CHECK-NEXT:   oi.op matmul(@x, @W[1]) -> @h
// CHECK-NEXT:   oi.cache.write @h -> @K[1, t]
// CHECK-NEXT:   oi.cache.read @K[1, 0:t] -> @hist
// CHECK-NEXT:   oi.cache.increment 1 @t
// CHECK-NEXT:   oi.return
// CHECK-NEXT: }
// CHECK-NOT:  oi.loop

// KEEP:      oi.loop layers (l in 0 to 2) {
// KEEP-NEXT:   oi.op matmul(@x, @W[l]) -> @h
// KEEP-NEXT:   oi.cache.write @h -> @K[l, t]
// KEEP-NEXT:   oi.cache.read @K[l, 0:t] -> @hist
// KEEP-NEXT: }

// NOPLUGIN: oi-opt: error: unrecognized arguments: --unroll-constant-loops

oi.graph @nested {
  oi.var volatile @x : f32[D]
  oi.var persistent @K(a, b) : f32[D] @table
  oi.block @entry {
    oi.loop outer (i in 0 to 2) {
      oi.loop inner (j in 1 to 3) {
        oi.cache.write @x -> @K[i, j]
      }
    }
    oi.loop early (k in 0 to 2) {
      oi.cache.read @K[k, 0] -> @x
      oi.return
    }
    oi.loop sym (s in 0 to N) {
      oi.cache.read @K[s, :] -> @x
    }
  }
}

// NESTED:      oi.block @entry {
// NESTED-NEXT:   oi.cache.write @x -> @K[0, 1]
// NESTED-NEXT:   oi.cache.write @x -> @K[0, 2]
// NESTED-NEXT:   oi.cache.write @x -> @K[1, 1]
// NESTED-NEXT:   oi.cache.write @x -> @K[1, 2]
// NESTED-NEXT:   oi.loop early (k in 0 to 2) {
// NESTED-NEXT:     oi.cache.read @K[k, 0] -> @x
// NESTED-NEXT:     oi.return
// NESTED-NEXT:   }
// NESTED-NEXT:   oi.loop sym (s in 0 to N) {
// NESTED-NEXT:     oi.cache.read @K[s, :] -> @x
// NESTED-NEXT:   }
// NESTED-NEXT: }
