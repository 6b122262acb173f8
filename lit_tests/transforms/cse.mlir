// --cse merges only identical ops without effects; every oi statement has
// effects (or unknown effects), so identical statements stay, each one.
//
// RUN: oi-opt %s --cse | filecheck %s
// RUN: oi-opt %s -p 'cse,canonicalize,dce,cse' | filecheck %s

oi.graph @dups {
  oi.var dynamic @x : f32[D]
  oi.var volatile @y : f32[D]
  oi.var volatile @c : bool
  oi.var persistent @t : i32 @init(0)
  oi.var persistent @K(p) : f32[D] @table
  oi.block @entry {
    oi.assign @a : f32[D]
    oi.op add(@x, @x) -> @y
    oi.op add(@x, @x) -> @y
    oi.op add(@x, @x) -> @y
    oi.cache.write @y -> @K[t]
    oi.cache.write @y -> @K[t]
    oi.cache.write @y -> @K[t]
    oi.cache.read @K[t] -> @y
    oi.cache.read @K[t] -> @y
    oi.cache.increment 1 @t
    oi.cache.increment 1 @t
    oi.cache.increment 1 @t
    oi.cache.decrement 1 @t
    oi.cache.decrement 1 @t
    oi.cache.reset @K[1]
    oi.cache.reset @K[1]
    oi.barrier
    oi.barrier
    oi.transfer @x -> @y
    oi.transfer @x -> @y
    oi.dep after(@a) before(@b)
    oi.dep after(@a) before(@b)
    oi.branch @c, @side, @side
    oi.branch @c, @side, @side
    oi.loop l (i in 0 to 3) {
      oi.cache.write @y -> @K[i]
    }
    oi.loop l (i in 0 to 3) {
      oi.cache.write @y -> @K[i]
    }
    oi.return
  }
  oi.block @side {
    oi.cache.reset @K[]
  }
}

// CHECK:      oi.block @entry {
// CHECK-NEXT:   oi.assign @a : f32[D]
// CHECK-COUNT-3:   oi.op add(@x, @x) -> @y
// CHECK-NEXT:   oi.cache.write @y -> @K[t]
// CHECK-NEXT:   oi.cache.write @y -> @K[t]
// CHECK-NEXT:   oi.cache.write @y -> @K[t]
// CHECK-NEXT:   oi.cache.read @K[t] -> @y
// CHECK-NEXT:   oi.cache.read @K[t] -> @y
// CHECK-NEXT:   oi.cache.increment 1 @t
// CHECK-NEXT:   oi.cache.increment 1 @t
// CHECK-NEXT:   oi.cache.increment 1 @t
// CHECK-NEXT:   oi.cache.decrement 1 @t
// CHECK-NEXT:   oi.cache.decrement 1 @t
// CHECK-NEXT:   oi.cache.reset @K[1]
// CHECK-NEXT:   oi.cache.reset @K[1]
// CHECK-NEXT:   oi.barrier
// CHECK-NEXT:   oi.barrier
// CHECK-NEXT:   oi.transfer @x -> @y
// CHECK-NEXT:   oi.transfer @x -> @y
// CHECK-NEXT:   oi.dep after(@a) before(@b)
// CHECK-NEXT:   oi.dep after(@a) before(@b)
// CHECK-NEXT:   oi.branch @c, @side, @side
// CHECK-NEXT:   oi.branch @c, @side, @side
// CHECK-NEXT:   oi.loop l (i in 0 to 3) {
// CHECK-NEXT:     oi.cache.write @y -> @K[i]
// CHECK-NEXT:   }
// CHECK-NEXT:   oi.loop l (i in 0 to 3) {
// CHECK-NEXT:     oi.cache.write @y -> @K[i]
// CHECK-NEXT:   }
// CHECK-NEXT:   oi.return
// CHECK-NEXT: }
// CHECK-NEXT: oi.block @side {
// CHECK-NEXT:   oi.cache.reset @K[]
// CHECK-NEXT: }
