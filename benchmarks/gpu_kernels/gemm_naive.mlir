
builtin.module {
  "gpu.module"() <{sym_name = "kernels"}> ({
    "gpu.func"() <{function_type = (memref<2048x2048xf32>, memref<2048x2048xf32>, memref<2048x2048xf32>) -> (), kernel}> ({
    ^bb0(%A: memref<2048x2048xf32>, %B: memref<2048x2048xf32>, %C: memref<2048x2048xf32>):
      %tx = "gpu.thread_id"() <{dimension = #gpu<dim x>}> : () -> index
      %ty = "gpu.thread_id"() <{dimension = #gpu<dim y>}> : () -> index
      %bx = "gpu.block_id"() <{dimension = #gpu<dim x>}> : () -> index
      %by = "gpu.block_id"() <{dimension = #gpu<dim y>}> : () -> index
      %bdx = "gpu.block_dim"() <{dimension = #gpu<dim x>}> : () -> index
      %bdy = "gpu.block_dim"() <{dimension = #gpu<dim y>}> : () -> index
      %base = arith.muli %bx, %bdx : index
      %i = arith.addi %base, %tx : index

      %c0 = arith.constant 0 : index
      %c1 = arith.constant 1 : index
      %cK = arith.constant 2048 : index
      %rb = arith.muli %by, %bdy : index
      %row = arith.addi %rb, %ty : index
      %col = arith.addi %base, %tx : index
      %zero = arith.constant 0.0 : f32
      %acc = scf.for %kk = %c0 to %cK step %c1 iter_args(%s = %zero) -> (f32) {
        %av = memref.load %A[%row, %kk] : memref<2048x2048xf32>
        %bv = memref.load %B[%kk, %col] : memref<2048x2048xf32>
        %p = arith.mulf %av, %bv : f32
        %t = arith.addf %s, %p : f32
        scf.yield %t : f32
      }
      memref.store %acc, %C[%row, %col] : memref<2048x2048xf32>
      "gpu.return"() : () -> ()
    }) {sym_name = "gemm_naive"} : () -> ()
  }) : () -> ()
}
