
builtin.module {
  "gpu.module"() <{sym_name = "kernels"}> ({
    "gpu.func"() <{function_type = (memref<67108864xf32>, memref<67108864xf32>) -> (), kernel}> ({
    ^bb0(%x: memref<67108864xf32>, %y: memref<67108864xf32>):
      %tx = "gpu.thread_id"() <{dimension = #gpu<dim x>}> : () -> index
      %ty = "gpu.thread_id"() <{dimension = #gpu<dim y>}> : () -> index
      %bx = "gpu.block_id"() <{dimension = #gpu<dim x>}> : () -> index
      %by = "gpu.block_id"() <{dimension = #gpu<dim y>}> : () -> index
      %bdx = "gpu.block_dim"() <{dimension = #gpu<dim x>}> : () -> index
      %bdy = "gpu.block_dim"() <{dimension = #gpu<dim y>}> : () -> index
      %base = arith.muli %bx, %bdx : index
      %i = arith.addi %base, %tx : index

      %n = arith.constant 67108864 : index
      %in = arith.cmpi slt, %i, %n : index
      scf.if %in {
        %v = memref.load %x[%i] : memref<67108864xf32>
        memref.store %v, %y[%i] : memref<67108864xf32>
      }
      "gpu.return"() : () -> ()
    }) {sym_name = "copy"} : () -> ()
  }) : () -> ()
}
