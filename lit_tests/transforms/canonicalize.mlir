// --canonicalize and --dce erase only ops without effects. Every statement that
// changes state carries a write effect (cache write/read/increment/decrement/
// reset, op, assign, transfer, yield, await), barrier and dep read and write, and
// var/branch/return declare none (unknown effects, never erased): so nothing of
// the graph goes, not even statements repeated word for word, and the order
// stays.
//
// RUN: oi-opt %s --split-input-file --canonicalize -o %t.canon
// RUN: filecheck %s --input-file=%t.canon
// RUN: filecheck %s --input-file=%t.canon --check-prefix=COUNT
// RUN: filecheck %s --input-file=%t.canon --check-prefix=EMPTY
// RUN: oi-opt %s --split-input-file --dce -o %t.dce
// RUN: filecheck %s --input-file=%t.dce
// RUN: filecheck %s --input-file=%t.dce --check-prefix=EMPTY

oi.graph @effects {
  oi.var dynamic @x : f32[D]
  oi.var volatile @y : f32[D]
  oi.var volatile @unused : f32[D]
  oi.var persistent @t : i32 @init(0)
  oi.var persistent @P : f32[D]
  oi.var persistent @K(p) : f32[D] @table
  oi.block @entry {
    oi.assign @tmp : f32[D]
    oi.op relu(@x) -> @y
    oi.op relu(@x) -> @y
    oi.cache.write @y -> @K[t]
    oi.cache.write @y -> @K[t]
    oi.cache.write @y -> @P
    oi.cache.write @y -> @P
    oi.cache.read @K[0:t] -> @y
    oi.cache.read @K[0:t] -> @y
    oi.cache.increment 1 @t
    oi.cache.increment 1 @t
    oi.cache.decrement 2 @t
    oi.cache.decrement 2 @t
    oi.cache.reset @K[0]
    oi.cache.reset @K[0]
    oi.cache.reset @P
    oi.cache.reset @P
    oi.barrier
    oi.barrier
    oi.dep after(@a) before(@b)
    oi.dep after(@a) before(@b)
    oi.transfer @x -> @y
    oi.transfer @x -> @y
    oi.branch @worker
    oi.branch @worker
    oi.loop l (i in 0 to 2) {
      oi.cache.write @y -> @K[i]
      oi.cache.write @y -> @K[i]
    }
    oi.loop r (i in 0 to 2) {
      oi.return
    }
    oi.yield @y
    oi.yield @y
    oi.await @y
    oi.await @y
    oi.return
    oi.return
  }
  oi.block @worker {
    oi.cache.increment 1 @t
  }
}

// CHECK:      oi.var dynamic @x : f32[D]
// CHECK-NEXT: oi.var volatile @y : f32[D]
// CHECK-NEXT: oi.var volatile @unused : f32[D]
// CHECK-NEXT: oi.var persistent @t : i32 @init(0)
// CHECK-NEXT: oi.var persistent @P : f32[D]
// CHECK-NEXT: oi.var persistent @K(p) : f32[D] @table
// CHECK-NEXT: oi.block @entry {
// CHECK-NEXT:   oi.assign @tmp : f32[D]
// CHECK-NEXT:   oi.op relu(@x) -> @y
// CHECK-NEXT:   oi.op relu(@x) -> @y
// CHECK-NEXT:   oi.cache.write @y -> @K[t]
// CHECK-NEXT:   oi.cache.write @y -> @K[t]
// CHECK-NEXT:   oi.cache.write @y -> @P
// CHECK-NEXT:   oi.cache.write @y -> @P
// CHECK-NEXT:   oi.cache.read @K[0:t] -> @y
// CHECK-NEXT:   oi.cache.read @K[0:t] -> @y
// CHECK-NEXT:   oi.cache.increment 1 @t
// CHECK-NEXT:   oi.cache.increment 1 @t
// CHECK-NEXT:   oi.cache.decrement 2 @t
// CHECK-NEXT:   oi.cache.decrement 2 @t
// CHECK-NEXT:   oi.cache.reset @K[0]
// CHECK-NEXT:   oi.cache.reset @K[0]
// CHECK-NEXT:   oi.cache.reset @P
// CHECK-NEXT:   oi.cache.reset @P
// CHECK-NEXT:   oi.barrier
// CHECK-NEXT:   oi.barrier
// CHECK-NEXT:   oi.dep after(@a) before(@b)
// CHECK-NEXT:   oi.dep after(@a) before(@b)
// CHECK-NEXT:   oi.transfer @x -> @y
// CHECK-NEXT:   oi.transfer @x -> @y
// CHECK-NEXT:   oi.branch @worker
// CHECK-NEXT:   oi.branch @worker
// CHECK-NEXT:   oi.loop l (i in 0 to 2) {
// CHECK-NEXT:     oi.cache.write @y -> @K[i]
// CHECK-NEXT:     oi.cache.write @y -> @K[i]
// CHECK-NEXT:   }
// CHECK-NEXT:   oi.loop r (i in 0 to 2) {
// CHECK-NEXT:     oi.return
// CHECK-NEXT:   }
// CHECK-NEXT:   oi.yield @y
// CHECK-NEXT:   oi.yield @y
// CHECK-NEXT:   oi.await @y
// CHECK-NEXT:   oi.await @y
// CHECK-NEXT:   oi.return
// CHECK-NEXT:   oi.return
// CHECK-NEXT: }
// CHECK-NEXT: oi.block @worker {
// CHECK-NEXT:   oi.cache.increment 1 @t
// CHECK-NEXT: }

// COUNT-COUNT-2: oi.cache.write @y -> @K[t]
// COUNT-COUNT-2: oi.cache.write @y -> @P
// COUNT-COUNT-2: oi.cache.increment 1 @t
// COUNT-COUNT-2: oi.cache.decrement 2 @t
// COUNT-COUNT-2: oi.cache.reset @K[0]
// COUNT-COUNT-2: oi.cache.reset @P
// COUNT-COUNT-2: oi.barrier
// COUNT-COUNT-2: oi.cache.write @y -> @K[i]
// COUNT-COUNT-2: oi.return
// COUNT:         oi.cache.increment 1 @t

// -----

// An empty loop stays: it still evaluates its bounds and emits its trace event.

oi.graph @empty_loop {
  oi.var persistent @t : i32
  oi.block @entry {
    oi.loop l (i in 0 to 4) {
    }
    oi.cache.increment 1 @t
  }
}

// EMPTY-LABEL: oi.graph @empty_loop {
// EMPTY:         oi.block @entry {
// EMPTY-NEXT:      oi.loop l (i in 0 to 4) {
// EMPTY-NEXT:      }
// EMPTY-NEXT:      oi.cache.increment 1 @t
// EMPTY-NEXT:    }
