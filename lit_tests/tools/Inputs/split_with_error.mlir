oi.graph @ok1 {
  oi.block @entry {
  }
}

// -----

oi.graph @bad {
  oi.var volatile @x : f32
  oi.block @entry {
    oi.barrier
    oi.op nope(@x) -> @x
  }
}

// -----

oi.graph @ok2 {
  oi.block @entry {
  }
}
