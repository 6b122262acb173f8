// `--verify-diagnostics` matches each error against an `expected-error`
// annotation: `@+N`/`@-N` shift the line, `@above`/`@below` are one line up or
// down, no `@` means the annotation's own line, `@unknown` an error without a
// location. The text in {{...}} must occur in the message. All matched: exit 0.
//
// RUN: oi-opt %s --split-input-file --verify-diagnostics
// Mismatches are reported, one line each, with exit status 1.
// RUN: not oi-opt %S/Inputs/diag_mismatch.mlir --split-input-file --verify-diagnostics 2>&1 | filecheck %s --check-prefix=MISMATCH

oi.graph @g {
  oi.block @entry {
    oi.branch @nowhere // expected-error {{branch target block not found: nowhere}}
  }
}

// -----

oi.graph @g {
  oi.block @entry {
    // expected-error @+3 {{branch target block not found: far}}
    oi.barrier

    oi.branch @far
  }
}

// -----

oi.graph @g {
  oi.block @entry {
    oi.branch @back
    // expected-error @-1 {{branch target block not found: back}}
  }
}

// -----

oi.graph @g {
  oi.block @entry {
    oi.branch @up
    // expected-error @above {{branch target block not found: up}}
  }
}

// -----

oi.graph @g {
  oi.block @entry {
    // expected-error @below {{branch target block not found: down}}
    oi.branch @down
  }
}

// -----

// A substring of the message is enough.
oi.graph @g {
  oi.block @entry {
    // expected-error @+1 {{not found}}
    oi.branch @part
  }
}

// -----

// An op whose loc(...) is not file:line:col has no location.
// expected-error @unknown {{graph has no blocks}}
oi.graph @g {
  oi.var volatile @x : f32
} loc("somewhere")

// -----

// A chunk without errors and without annotations passes.
oi.graph @g {
  oi.block @entry {
  }
}

// MISMATCH-DAG: diag_mismatch.mlir:4:5: error: unexpected error: branch target block not found: x
// MISMATCH-DAG: diag_mismatch.mlir:3: error: expected error "wrong text" was not produced
// MISMATCH-DAG: diag_mismatch.mlir:13:5: error: unexpected error: branch target block not found: y
// MISMATCH-DAG: diag_mismatch.mlir:20: error: expected error "graph has no blocks" was not produced
// MISMATCH-DAG: diag_mismatch.mlir:32:5: error: unexpected error: branch target block not found: z
// MISMATCH-DAG: diag_mismatch.mlir:29: error: expected error "branch target block not found: z" was not produced
