oi.graph @bad {
  oi.var persistent @K(l) : f32 @table
  oi.block @entry {
    oi.cache.reset @K
  }
}
