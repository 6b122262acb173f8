// Pass flags run in command-line order; `-p` gives a pipeline; both mix, in
// order. `--print-ir-after-all` writes a header and the IR after each pass to
// stderr, the final IR still goes to the output.
//
// RUN: oi-opt %s --cse --canonicalize --print-ir-after-all -o %t 2>&1 | filecheck %s --check-prefix=FLAGS
// RUN: filecheck %s --check-prefix=OUT --input-file=%t
// RUN: oi-opt %s -p 'dce,cse{},canonicalize' --print-ir-after-all -o %t 2>&1 | filecheck %s --check-prefix=PIPE
// RUN: oi-opt %s --dce -p cse --canonicalize --pass-pipeline=dce,cse --print-ir-after-all -o %t 2>&1 | filecheck %s --check-prefix=MIXED
// Without passes, --print-ir-after-all prints nothing.
// RUN: oi-opt %s --print-ir-after-all -o %t 2>&1 | filecheck %s --check-prefix=NONE --allow-empty

oi.graph @passes {
  oi.var dynamic @x : f32[D]
  oi.var volatile @y : f32[D]
  oi.block @entry {
    oi.op relu(@x) -> @y
    oi.return
  }
}

// FLAGS:      // -----// IR Dump After cse //----- //
// FLAGS-NEXT: builtin.module {
// FLAGS-NEXT:   oi.graph @passes {
// FLAGS:        oi.op relu(@x) -> @y
// FLAGS:      // -----// IR Dump After canonicalize //----- //
// FLAGS-NEXT: builtin.module {
// FLAGS:        oi.op relu(@x) -> @y
// FLAGS-NOT:  IR Dump After

// OUT:      builtin.module {
// OUT-NEXT:   oi.graph @passes {
// OUT-NOT:  IR Dump

// PIPE:     IR Dump After dce
// PIPE:     IR Dump After cse
// PIPE:     IR Dump After canonicalize
// PIPE-NOT: IR Dump After

// MIXED:     IR Dump After dce
// MIXED:     IR Dump After cse
// MIXED:     IR Dump After canonicalize
// MIXED:     IR Dump After dce
// MIXED:     IR Dump After cse
// MIXED-NOT: IR Dump After

// NONE-NOT: IR Dump
