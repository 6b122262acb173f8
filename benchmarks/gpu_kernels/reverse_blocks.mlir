
builtin.module {
  "gpu.module"() <{sym_name = "kernels"}> ({
    "gpu.func"() <{function_type = (memref<16777216xf32>) -> (), kernel}> ({
    ^bb0(%x: memref<16777216xf32>):
      %tx = "gpu.thread_id"() <{dimension = #gpu<dim x>}> : () -> index
      %ty = "gpu.thread_id"() <{dimension = #gpu<dim y>}> : () -> index
      %bx = "gpu.block_id"() <{dimension = #gpu<dim x>}> : () -> index
      %by = "gpu.block_id"() <{dimension = #gpu<dim y>}> : () -> index
      %bdx = "gpu.block_dim"() <{dimension = #gpu<dim x>}> : () -> index
      %bdy = "gpu.block_dim"() <{dimension = #gpu<dim y>}> : () -> index
      %base = arith.muli %bx, %bdx : index
      %i = arith.addi %base, %tx : index

      %tile = memref.alloca() : memref<256xf32, 3>
      %v = memref.load %x[%i] : memref<16777216xf32>
      memref.store %v, %tile[%tx] : memref<256xf32, 3>
      "gpu.barrier"() : () -> ()
      %last = arith.constant 255 : index
      %j = arith.subi %last, %tx : index
      %w = memref.load %tile[%j] : memref<256xf32, 3>
      memref.store %w, %x[%i] : memref<16777216xf32>
      "gpu.return"() : () -> ()
    }) {sym_name = "reverse_blocks"} : () -> ()
  }) : () -> ()
}
