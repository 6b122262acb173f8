// keeps the last value (`alpha = 1.0, alpha = 2.0` prints `alpha = 2.0`). The
// DSL rejects it (`duplicate setting: alpha`), and so does the generic form
// custom parser reports it.
//
// RUN: oi-opt %s --verify-diagnostics

oi.graph @g {
  oi.var dynamic @x : f32[D]
  oi.var volatile @y : f32[D]
  oi.block @entry {
    // expected-error @+1 {{duplicate}}
    oi.op relu(@x, alpha = 1.0, alpha = 2.0) -> @y
  }
}
