oi.graph @g {
  oi.block @entry {
    // expected-error @+1 {{wrong text}}
    oi.branch @x
  }
}

// -----

oi.graph @g {
  oi.block @entry {
    // No annotation for this error.
    oi.branch @y
  }
}

// -----

// An annotation with no error.
// expected-error @+1 {{graph has no blocks}}
oi.graph @g {
  oi.block @entry {
  }
}

// -----

// The right message on the wrong line.
// expected-error @+1 {{branch target block not found: z}}
oi.graph @g {
  oi.block @entry {
    oi.branch @z
  }
}
