// must escape) does not survive the custom form. `setting_text` in
// oi_compiler/dialects/oi.py escapes only `\` and `"`, so `"a\nb"` prints a raw
// newline inside the string literal (and the printer's indentation is added after
// it); reading that back fails with "End of file reached before closing string
// literal". The generic form (`"a\0Ab"`) and @ref/@pattern strings are fine.
// The DSL reaches it too: `op cast(x, to=f16, rounding_mode="a\nb") >> y;`.
//
// RUN: oi-opt %s | oi-opt - | filecheck %s

oi.graph @g {
  oi.var dynamic @x : f32[D]
  oi.var volatile @y : f16[D]
  oi.block @entry {
    oi.op cast(@x, to = f16, rounding_mode = "a\nb") -> @y
  }
}

// CHECK: oi.op cast(@x, to = f16, rounding_mode = "a\{{(n|0A)}}b") -> @y
