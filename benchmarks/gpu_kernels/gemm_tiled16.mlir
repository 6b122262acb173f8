
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
      %c16 = arith.constant 16 : index
      %cK = arith.constant 2048 : index
      %rb = arith.muli %by, %c16 : index
      %row = arith.addi %rb, %ty : index
      %cb = arith.muli %bx, %c16 : index
      %col = arith.addi %cb, %tx : index
      %As = memref.alloca() : memref<16x16xf32, 3>
      %Bs = memref.alloca() : memref<16x16xf32, 3>
      %zero = arith.constant 0.0 : f32
      %acc = scf.for %k0 = %c0 to %cK step %c16 iter_args(%sum = %zero) -> (f32) {
        %ka = arith.addi %k0, %tx : index
        %av = memref.load %A[%row, %ka] : memref<2048x2048xf32>
        memref.store %av, %As[%ty, %tx] : memref<16x16xf32, 3>
        %kb = arith.addi %k0, %ty : index
        %bv = memref.load %B[%kb, %col] : memref<2048x2048xf32>
        memref.store %bv, %Bs[%ty, %tx] : memref<16x16xf32, 3>
        "gpu.barrier"() : () -> ()
        %inner = scf.for %kk = %c0 to %c16 step %c1 iter_args(%u = %sum) -> (f32) {
          %x = memref.load %As[%ty, %kk] : memref<16x16xf32, 3>
          %y = memref.load %Bs[%kk, %tx] : memref<16x16xf32, 3>
          %p = arith.mulf %x, %y : f32
          %t = arith.addf %u, %p : f32
          scf.yield %t : f32
        }
        "gpu.barrier"() : () -> ()
        scf.yield %inner : f32
      }
      memref.store %acc, %C[%row, %col] : memref<2048x2048xf32>
      "gpu.return"() : () -> ()
    }) {sym_name = "gemm_tiled16"} : () -> ()
  }) : () -> ()
}
