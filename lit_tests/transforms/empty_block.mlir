// empty. oi.block has RecursiveMemoryEffect, so an empty body reads as "no
// effects" and the block as dead, although blocks are named targets: the graph
// then fails verification after the pass ("branch target block not found:
// other", or "graph has no blocks" when the entry block is empty), where it was
//
// RUN: oi-opt %s --split-input-file --canonicalize | filecheck %s
// RUN: oi-opt %s --split-input-file --cse | filecheck %s
// RUN: oi-opt %s --split-input-file --dce | filecheck %s

oi.graph @empty_target {
  oi.block @entry {
    oi.branch @other
  }
  oi.block @other {
  }
}

// CHECK-LABEL: oi.graph @empty_target {
// CHECK-NEXT:    oi.block @entry {
// CHECK-NEXT:      oi.branch @other
// CHECK-NEXT:    }
// CHECK-NEXT:    oi.block @other {
// CHECK-NEXT:    }

// -----

oi.graph @empty_entry {
  oi.block @entry {
  }
}

// CHECK-LABEL: oi.graph @empty_entry {
// CHECK-NEXT:    oi.block @entry {
// CHECK-NEXT:    }
