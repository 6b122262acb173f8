
builtin.module {
  "gpu.module"() <{sym_name = "kernels"}> ({
    "gpu.func"() <{function_type = (memref<16777216xf32>, memref<16777216xf32>, f32) -> (), kernel}> ({
    ^bb0(%x: memref<16777216xf32>, %y: memref<16777216xf32>, %a: f32):
      %tx = "gpu.thread_id"() <{dimension = #gpu<dim x>}> : () -> index
      %ty = "gpu.thread_id"() <{dimension = #gpu<dim y>}> : () -> index
      %bx = "gpu.block_id"() <{dimension = #gpu<dim x>}> : () -> index
      %by = "gpu.block_id"() <{dimension = #gpu<dim y>}> : () -> index
      %bdx = "gpu.block_dim"() <{dimension = #gpu<dim x>}> : () -> index
      %bdy = "gpu.block_dim"() <{dimension = #gpu<dim y>}> : () -> index
      %base = arith.muli %bx, %bdx : index
      %i = arith.addi %base, %tx : index

      %n = arith.constant 16777216 : index
      %in = arith.cmpi slt, %i, %n : index
      scf.if %in {
        %xi = memref.load %x[%i] : memref<16777216xf32>
        %e = math.exp %xi : f32
        %yi = memref.load %y[%i] : memref<16777216xf32>
        %ax = arith.mulf %a, %e : f32
        %s = arith.addf %ax, %yi : f32
        memref.store %s, %y[%i] : memref<16777216xf32>
      }
      "gpu.return"() : () -> ()
    }) {sym_name = "saxpy_exp"} : () -> ()
  }) : () -> ()
}
