builtin.module {
  "gpu.module"() <{sym_name = "gemm_plan_2048_kernels"}> ({
    "gpu.func"() <{function_type = (memref<2048x2048xf32>, memref<2048x2048xf32>, memref<2048x2048xf32>) -> (), kernel}> ({
    ^bb0(%A: memref<2048x2048xf32>, %B: memref<2048x2048xf32>, %C: memref<2048x2048xf32>):
      %C_cache10 = memref.alloca() {oi.cache = "C_cache10", oi.source = "C", oi.index = "kx_5", oi.trigger_index = "kx_5", oi.active_block = array<i64: 4, 4>, oi.movement = "accumulate", oi.location = "private", alignment = 16 : i64} : memref<4x4xf32>
      %B_cache9 = memref.alloca() {oi.cache = "B_cache9", oi.source = "B", oi.index = "i_3", oi.trigger_index = "i_3", oi.active_block = array<i64: 16, 64>, oi.movement = "read", oi.location = "shared", alignment = 16 : i64} : memref<16x64xf32, 3 : i64>
      %B_cache9_temp = memref.alloca() {oi.cache = "B_cache9_temp", oi.source = "B", oi.index = "i_3", oi.trigger_index = "i_3", oi.active_block = array<i64: 16, 64>, oi.movement = "read", oi.location = "shared", oi.double_buffer_temp, alignment = 16 : i64} : memref<16x64xf32>
      %A_cache8 = memref.alloca() {oi.cache = "A_cache8", oi.source = "A", oi.index = "i_3", oi.trigger_index = "i_3", oi.active_block = array<i64: 64, 16>, oi.movement = "read", oi.location = "shared", alignment = 16 : i64} : memref<64x16xf32, 3 : i64>
      %0 = arith.constant 0 : index
      %1 = arith.constant 2048 : index
      %2 = arith.constant 64 : index
      %3 = "gpu.block_id"() <{dimension = #gpu<dim y>}> : () -> index
      %4 = arith.muli %3, %2 : index
      %i = arith.addi %0, %4 : index
      %5 = arith.cmpi slt, %i, %1 : index
      scf.if %5 {
        %6 = arith.constant 0 : index
        %7 = arith.constant 2048 : index
        %8 = arith.constant 64 : index
        %9 = "gpu.block_id"() <{dimension = #gpu<dim x>}> : () -> index
        %10 = arith.muli %9, %8 : index
        %j = arith.addi %6, %10 : index
        %11 = arith.cmpi slt, %j, %7 : index
        scf.if %11 {
          %12 = arith.constant 0 : index
          %13 = arith.constant 2048 : index
          %14 = arith.constant 16 : index
          "gpu.barrier"() : () -> ()
          %15 = arith.constant {oi.cache_fill = "B_cache9", oi.prefill = "B_cache9"} 16 : index
          %16 = arith.constant {oi.cache_fill = "B_cache9", oi.prefill = "B_cache9"} 64 : index
          %17 = arith.constant {oi.cache_fill = "B_cache9", oi.prefill = "B_cache9"} 0 : index
          %18 = arith.constant {oi.cache_fill = "B_cache9", oi.prefill = "B_cache9"} 1 : index
          %19 = "gpu.thread_id"() <{dimension = #gpu<dim x>}> : () -> index
          %20 = "gpu.thread_id"() <{dimension = #gpu<dim y>}> : () -> index
          %21 = "gpu.thread_id"() <{dimension = #gpu<dim z>}> : () -> index
          %22 = arith.constant 16 : index
          %23 = arith.constant 16 : index
          %24 = arith.constant 256 : index
          %25 = arith.muli %21, %23 : index
          %26 = arith.addi %25, %20 : index
          %27 = arith.muli %26, %22 : index
          %28 = arith.addi %27, %19 : index
          %29 = arith.muli %28, %18 : index
          %30 = arith.addi %17, %29 : index
          %31 = arith.muli %18, %24 : index
          scf.for %c0 = %30 to %15 step %31 {
            %32 = arith.constant 1 : index
            scf.for %c1 = %17 to %16 step %32 {
              %33 = arith.addi %12, %c0 : index
              %34 = arith.addi %j, %c1 : index
              %35 = memref.load %B[%33, %34] : memref<2048x2048xf32>
              memref.store %35, %B_cache9[%c0, %c1] : memref<16x64xf32, 3 : i64>
            }
          } {oi.cache_fill = "B_cache9", oi.prefill = "B_cache9"}
          "gpu.barrier"() : () -> ()
          %36 = arith.constant -1 : index
          %37 = arith.muli %12, %36 : index
          %38 = arith.addi %13, %37 : index
          %39 = arith.constant -1 : index
          %40 = arith.addi %38, %39 : index
          %41 = arith.constant 16 : index
          %42 = arith.floordivsi %40, %41 : index
          %43 = arith.constant 16 : index
          %44 = arith.muli %42, %43 : index
          %last = arith.addi %12, %44 : index
          scf.for %kx = %12 to %last step %14 {
            %45 = arith.constant 64 : index
            %46 = arith.addi %i, %45 : index
            %47 = arith.constant 4 : index
            "gpu.barrier"() : () -> ()
            %48 = arith.constant {oi.cache_fill = "A_cache8"} 64 : index
            %49 = arith.constant {oi.cache_fill = "A_cache8"} 16 : index
            %50 = arith.constant {oi.cache_fill = "A_cache8"} 0 : index
            %51 = arith.constant {oi.cache_fill = "A_cache8"} 1 : index
            %52 = "gpu.thread_id"() <{dimension = #gpu<dim x>}> : () -> index
            %53 = "gpu.thread_id"() <{dimension = #gpu<dim y>}> : () -> index
            %54 = "gpu.thread_id"() <{dimension = #gpu<dim z>}> : () -> index
            %55 = arith.constant 16 : index
            %56 = arith.constant 16 : index
            %57 = arith.constant 256 : index
            %58 = arith.muli %54, %56 : index
            %59 = arith.addi %58, %53 : index
            %60 = arith.muli %59, %55 : index
            %61 = arith.addi %60, %52 : index
            %62 = arith.muli %61, %51 : index
            %63 = arith.addi %50, %62 : index
            %64 = arith.muli %51, %57 : index
            scf.for %c0_1 = %63 to %48 step %64 {
              %65 = arith.constant 1 : index
              scf.for %c1_1 = %50 to %49 step %65 {
                %66 = arith.addi %i, %c0_1 : index
                %67 = arith.addi %kx, %c1_1 : index
                %68 = memref.load %A[%66, %67] : memref<2048x2048xf32>
                memref.store %68, %A_cache8[%c0_1, %c1_1] : memref<64x16xf32, 3 : i64>
              }
            } {oi.cache_fill = "A_cache8"}
            "gpu.barrier"() : () -> ()
            %69 = arith.constant 16 : index
            %70 = arith.addi %kx, %69 : index
            %71 = arith.constant {oi.cache_fill = "B_cache9", oi.prefetch = "B_cache9"} 16 : index
            %72 = arith.constant {oi.cache_fill = "B_cache9", oi.prefetch = "B_cache9"} 64 : index
            %73 = arith.constant {oi.cache_fill = "B_cache9", oi.prefetch = "B_cache9"} 0 : index
            %74 = arith.constant {oi.cache_fill = "B_cache9", oi.prefetch = "B_cache9"} 1 : index
            %75 = "gpu.thread_id"() <{dimension = #gpu<dim x>}> : () -> index
            %76 = "gpu.thread_id"() <{dimension = #gpu<dim y>}> : () -> index
            %77 = "gpu.thread_id"() <{dimension = #gpu<dim z>}> : () -> index
            %78 = arith.constant 16 : index
            %79 = arith.constant 16 : index
            %80 = arith.constant 256 : index
            %81 = arith.muli %77, %79 : index
            %82 = arith.addi %81, %76 : index
            %83 = arith.muli %82, %78 : index
            %84 = arith.addi %83, %75 : index
            %85 = arith.muli %84, %74 : index
            %86 = arith.addi %73, %85 : index
            %87 = arith.muli %74, %80 : index
            scf.for %c0_2 = %86 to %71 step %87 {
              %88 = arith.constant 1 : index
              scf.for %c1_2 = %73 to %72 step %88 {
                %89 = arith.addi %70, %c0_2 : index
                %90 = arith.addi %j, %c1_2 : index
                %91 = memref.load %B[%89, %90] : memref<2048x2048xf32>
                memref.store %91, %B_cache9_temp[%c0_2, %c1_2] : memref<16x64xf32>
              }
            } {oi.cache_fill = "B_cache9", oi.prefetch = "B_cache9"}
            %92 = "gpu.thread_id"() <{dimension = #gpu<dim y>}> : () -> index
            %93 = arith.muli %92, %47 : index
            %i_1 = arith.addi %i, %93 : index
            %94 = arith.cmpi slt, %i_1, %46 : index
            scf.if %94 {
              %95 = arith.constant 64 : index
              %96 = arith.addi %j, %95 : index
              %97 = arith.constant 4 : index
              %98 = "gpu.thread_id"() <{dimension = #gpu<dim x>}> : () -> index
              %99 = arith.muli %98, %97 : index
              %j_1 = arith.addi %j, %99 : index
              %100 = arith.cmpi slt, %j_1, %96 : index
              scf.if %100 {
                %101 = arith.constant 16 : index
                %102 = arith.addi %kx, %101 : index
                %103 = arith.constant 1 : index
                %104 = arith.constant {oi.cache_bounds = "C_cache10"} 4 : index
                %105 = arith.constant {oi.cache_bounds = "C_cache10"} 4 : index
                %106 = arith.constant {oi.cache_fill = "C_cache10"} 4 : index
                %107 = arith.constant {oi.cache_fill = "C_cache10"} 4 : index
                %108 = arith.constant {oi.cache_fill = "C_cache10"} 0 : index
                %109 = arith.constant {oi.cache_fill = "C_cache10"} 1 : index
                scf.for %c0_3 = %108 to %106 step %109 {
                  %110 = arith.constant 1 : index
                  scf.for %c1_3 = %108 to %107 step %110 {
                    %111 = arith.constant 0.000000e+00 : f32
                    memref.store %111, %C_cache10[%c0_3, %c1_3] : memref<4x4xf32>
                  }
                } {oi.cache_fill = "C_cache10"}
                scf.for %kx_1 = %kx to %102 step %103 {
                  %112 = arith.constant 4 : index
                  %113 = arith.addi %i_1, %112 : index
                  %114 = arith.constant 1 : index
                  %115 = arith.constant 4 : index
                  %116 = arith.addi %j_1, %115 : index
                  %117 = arith.constant 1 : index
                  %118 = arith.constant -1 : index
                  %119 = arith.muli %i_1, %118 : index
                  %120 = arith.addi %i_1, %119 : index
                  %121 = arith.constant -1 : index
                  %122 = arith.muli %j_1, %121 : index
                  %123 = arith.addi %j_1, %122 : index
                  %124 = memref.load %C_cache10[%120, %123] : memref<4x4xf32>
                  %125 = arith.constant -1 : index
                  %126 = arith.muli %i, %125 : index
                  %127 = arith.addi %i_1, %126 : index
                  %128 = arith.constant -1 : index
                  %129 = arith.muli %kx, %128 : index
                  %130 = arith.addi %kx_1, %129 : index
                  %131 = memref.load %A_cache8[%127, %130] : memref<64x16xf32, 3 : i64>
                  %132 = arith.constant -1 : index
                  %133 = arith.muli %kx, %132 : index
                  %134 = arith.addi %kx_1, %133 : index
                  %135 = arith.constant -1 : index
                  %136 = arith.muli %j, %135 : index
                  %137 = arith.addi %j_1, %136 : index
                  %138 = memref.load %B_cache9[%134, %137] : memref<16x64xf32, 3 : i64>
                  %139 = arith.mulf %131, %138 fastmath<contract> : f32
                  %140 = arith.addf %124, %139 fastmath<contract> : f32
                  %141 = arith.constant -1 : index
                  %142 = arith.muli %i_1, %141 : index
                  %143 = arith.addi %i_1, %142 : index
                  %144 = arith.constant -1 : index
                  %145 = arith.muli %j_1, %144 : index
                  %146 = arith.addi %j_1, %145 : index
                  memref.store %140, %C_cache10[%143, %146] : memref<4x4xf32>
                  %147 = arith.constant 1 : index
                  %148 = arith.addi %j_1, %147 : index
                  %149 = arith.constant -1 : index
                  %150 = arith.muli %i_1, %149 : index
                  %151 = arith.addi %i_1, %150 : index
                  %152 = arith.constant -1 : index
                  %153 = arith.muli %j_1, %152 : index
                  %154 = arith.addi %148, %153 : index
                  %155 = memref.load %C_cache10[%151, %154] : memref<4x4xf32>
                  %156 = arith.constant -1 : index
                  %157 = arith.muli %i, %156 : index
                  %158 = arith.addi %i_1, %157 : index
                  %159 = arith.constant -1 : index
                  %160 = arith.muli %kx, %159 : index
                  %161 = arith.addi %kx_1, %160 : index
                  %162 = memref.load %A_cache8[%158, %161] : memref<64x16xf32, 3 : i64>
                  %163 = arith.constant -1 : index
                  %164 = arith.muli %kx, %163 : index
                  %165 = arith.addi %kx_1, %164 : index
                  %166 = arith.constant -1 : index
                  %167 = arith.muli %j, %166 : index
                  %168 = arith.addi %148, %167 : index
                  %169 = memref.load %B_cache9[%165, %168] : memref<16x64xf32, 3 : i64>
                  %170 = arith.mulf %162, %169 fastmath<contract> : f32
                  %171 = arith.addf %155, %170 fastmath<contract> : f32
                  %172 = arith.constant -1 : index
                  %173 = arith.muli %i_1, %172 : index
                  %174 = arith.addi %i_1, %173 : index
                  %175 = arith.constant -1 : index
                  %176 = arith.muli %j_1, %175 : index
                  %177 = arith.addi %148, %176 : index
                  memref.store %171, %C_cache10[%174, %177] : memref<4x4xf32>
                  %178 = arith.constant 2 : index
                  %179 = arith.addi %j_1, %178 : index
                  %180 = arith.constant -1 : index
                  %181 = arith.muli %i_1, %180 : index
                  %182 = arith.addi %i_1, %181 : index
                  %183 = arith.constant -1 : index
                  %184 = arith.muli %j_1, %183 : index
                  %185 = arith.addi %179, %184 : index
                  %186 = memref.load %C_cache10[%182, %185] : memref<4x4xf32>
                  %187 = arith.constant -1 : index
                  %188 = arith.muli %i, %187 : index
                  %189 = arith.addi %i_1, %188 : index
                  %190 = arith.constant -1 : index
                  %191 = arith.muli %kx, %190 : index
                  %192 = arith.addi %kx_1, %191 : index
                  %193 = memref.load %A_cache8[%189, %192] : memref<64x16xf32, 3 : i64>
                  %194 = arith.constant -1 : index
                  %195 = arith.muli %kx, %194 : index
                  %196 = arith.addi %kx_1, %195 : index
                  %197 = arith.constant -1 : index
                  %198 = arith.muli %j, %197 : index
                  %199 = arith.addi %179, %198 : index
                  %200 = memref.load %B_cache9[%196, %199] : memref<16x64xf32, 3 : i64>
                  %201 = arith.mulf %193, %200 fastmath<contract> : f32
                  %202 = arith.addf %186, %201 fastmath<contract> : f32
                  %203 = arith.constant -1 : index
                  %204 = arith.muli %i_1, %203 : index
                  %205 = arith.addi %i_1, %204 : index
                  %206 = arith.constant -1 : index
                  %207 = arith.muli %j_1, %206 : index
                  %208 = arith.addi %179, %207 : index
                  memref.store %202, %C_cache10[%205, %208] : memref<4x4xf32>
                  %209 = arith.constant 3 : index
                  %210 = arith.addi %j_1, %209 : index
                  %211 = arith.constant -1 : index
                  %212 = arith.muli %i_1, %211 : index
                  %213 = arith.addi %i_1, %212 : index
                  %214 = arith.constant -1 : index
                  %215 = arith.muli %j_1, %214 : index
                  %216 = arith.addi %210, %215 : index
                  %217 = memref.load %C_cache10[%213, %216] : memref<4x4xf32>
                  %218 = arith.constant -1 : index
                  %219 = arith.muli %i, %218 : index
                  %220 = arith.addi %i_1, %219 : index
                  %221 = arith.constant -1 : index
                  %222 = arith.muli %kx, %221 : index
                  %223 = arith.addi %kx_1, %222 : index
                  %224 = memref.load %A_cache8[%220, %223] : memref<64x16xf32, 3 : i64>
                  %225 = arith.constant -1 : index
                  %226 = arith.muli %kx, %225 : index
                  %227 = arith.addi %kx_1, %226 : index
                  %228 = arith.constant -1 : index
                  %229 = arith.muli %j, %228 : index
                  %230 = arith.addi %210, %229 : index
                  %231 = memref.load %B_cache9[%227, %230] : memref<16x64xf32, 3 : i64>
                  %232 = arith.mulf %224, %231 fastmath<contract> : f32
                  %233 = arith.addf %217, %232 fastmath<contract> : f32
                  %234 = arith.constant -1 : index
                  %235 = arith.muli %i_1, %234 : index
                  %236 = arith.addi %i_1, %235 : index
                  %237 = arith.constant -1 : index
                  %238 = arith.muli %j_1, %237 : index
                  %239 = arith.addi %210, %238 : index
                  memref.store %233, %C_cache10[%236, %239] : memref<4x4xf32>
                  %240 = arith.constant 1 : index
                  %241 = arith.addi %i_1, %240 : index
                  %242 = arith.constant 4 : index
                  %243 = arith.addi %j_1, %242 : index
                  %244 = arith.constant 1 : index
                  %245 = arith.constant -1 : index
                  %246 = arith.muli %i_1, %245 : index
                  %247 = arith.addi %241, %246 : index
                  %248 = arith.constant -1 : index
                  %249 = arith.muli %j_1, %248 : index
                  %250 = arith.addi %j_1, %249 : index
                  %251 = memref.load %C_cache10[%247, %250] : memref<4x4xf32>
                  %252 = arith.constant -1 : index
                  %253 = arith.muli %i, %252 : index
                  %254 = arith.addi %241, %253 : index
                  %255 = arith.constant -1 : index
                  %256 = arith.muli %kx, %255 : index
                  %257 = arith.addi %kx_1, %256 : index
                  %258 = memref.load %A_cache8[%254, %257] : memref<64x16xf32, 3 : i64>
                  %259 = arith.constant -1 : index
                  %260 = arith.muli %kx, %259 : index
                  %261 = arith.addi %kx_1, %260 : index
                  %262 = arith.constant -1 : index
                  %263 = arith.muli %j, %262 : index
                  %264 = arith.addi %j_1, %263 : index
                  %265 = memref.load %B_cache9[%261, %264] : memref<16x64xf32, 3 : i64>
                  %266 = arith.mulf %258, %265 fastmath<contract> : f32
                  %267 = arith.addf %251, %266 fastmath<contract> : f32
                  %268 = arith.constant -1 : index
                  %269 = arith.muli %i_1, %268 : index
                  %270 = arith.addi %241, %269 : index
                  %271 = arith.constant -1 : index
                  %272 = arith.muli %j_1, %271 : index
                  %273 = arith.addi %j_1, %272 : index
                  memref.store %267, %C_cache10[%270, %273] : memref<4x4xf32>
                  %274 = arith.constant 1 : index
                  %275 = arith.addi %j_1, %274 : index
                  %276 = arith.constant -1 : index
                  %277 = arith.muli %i_1, %276 : index
                  %278 = arith.addi %241, %277 : index
                  %279 = arith.constant -1 : index
                  %280 = arith.muli %j_1, %279 : index
                  %281 = arith.addi %275, %280 : index
                  %282 = memref.load %C_cache10[%278, %281] : memref<4x4xf32>
                  %283 = arith.constant -1 : index
                  %284 = arith.muli %i, %283 : index
                  %285 = arith.addi %241, %284 : index
                  %286 = arith.constant -1 : index
                  %287 = arith.muli %kx, %286 : index
                  %288 = arith.addi %kx_1, %287 : index
                  %289 = memref.load %A_cache8[%285, %288] : memref<64x16xf32, 3 : i64>
                  %290 = arith.constant -1 : index
                  %291 = arith.muli %kx, %290 : index
                  %292 = arith.addi %kx_1, %291 : index
                  %293 = arith.constant -1 : index
                  %294 = arith.muli %j, %293 : index
                  %295 = arith.addi %275, %294 : index
                  %296 = memref.load %B_cache9[%292, %295] : memref<16x64xf32, 3 : i64>
                  %297 = arith.mulf %289, %296 fastmath<contract> : f32
                  %298 = arith.addf %282, %297 fastmath<contract> : f32
                  %299 = arith.constant -1 : index
                  %300 = arith.muli %i_1, %299 : index
                  %301 = arith.addi %241, %300 : index
                  %302 = arith.constant -1 : index
                  %303 = arith.muli %j_1, %302 : index
                  %304 = arith.addi %275, %303 : index
                  memref.store %298, %C_cache10[%301, %304] : memref<4x4xf32>
                  %305 = arith.constant 2 : index
                  %306 = arith.addi %j_1, %305 : index
                  %307 = arith.constant -1 : index
                  %308 = arith.muli %i_1, %307 : index
                  %309 = arith.addi %241, %308 : index
                  %310 = arith.constant -1 : index
                  %311 = arith.muli %j_1, %310 : index
                  %312 = arith.addi %306, %311 : index
                  %313 = memref.load %C_cache10[%309, %312] : memref<4x4xf32>
                  %314 = arith.constant -1 : index
                  %315 = arith.muli %i, %314 : index
                  %316 = arith.addi %241, %315 : index
                  %317 = arith.constant -1 : index
                  %318 = arith.muli %kx, %317 : index
                  %319 = arith.addi %kx_1, %318 : index
                  %320 = memref.load %A_cache8[%316, %319] : memref<64x16xf32, 3 : i64>
                  %321 = arith.constant -1 : index
                  %322 = arith.muli %kx, %321 : index
                  %323 = arith.addi %kx_1, %322 : index
                  %324 = arith.constant -1 : index
                  %325 = arith.muli %j, %324 : index
                  %326 = arith.addi %306, %325 : index
                  %327 = memref.load %B_cache9[%323, %326] : memref<16x64xf32, 3 : i64>
                  %328 = arith.mulf %320, %327 fastmath<contract> : f32
                  %329 = arith.addf %313, %328 fastmath<contract> : f32
                  %330 = arith.constant -1 : index
                  %331 = arith.muli %i_1, %330 : index
                  %332 = arith.addi %241, %331 : index
                  %333 = arith.constant -1 : index
                  %334 = arith.muli %j_1, %333 : index
                  %335 = arith.addi %306, %334 : index
                  memref.store %329, %C_cache10[%332, %335] : memref<4x4xf32>
                  %336 = arith.constant 3 : index
                  %337 = arith.addi %j_1, %336 : index
                  %338 = arith.constant -1 : index
                  %339 = arith.muli %i_1, %338 : index
                  %340 = arith.addi %241, %339 : index
                  %341 = arith.constant -1 : index
                  %342 = arith.muli %j_1, %341 : index
                  %343 = arith.addi %337, %342 : index
                  %344 = memref.load %C_cache10[%340, %343] : memref<4x4xf32>
                  %345 = arith.constant -1 : index
                  %346 = arith.muli %i, %345 : index
                  %347 = arith.addi %241, %346 : index
                  %348 = arith.constant -1 : index
                  %349 = arith.muli %kx, %348 : index
                  %350 = arith.addi %kx_1, %349 : index
                  %351 = memref.load %A_cache8[%347, %350] : memref<64x16xf32, 3 : i64>
                  %352 = arith.constant -1 : index
                  %353 = arith.muli %kx, %352 : index
                  %354 = arith.addi %kx_1, %353 : index
                  %355 = arith.constant -1 : index
                  %356 = arith.muli %j, %355 : index
                  %357 = arith.addi %337, %356 : index
                  %358 = memref.load %B_cache9[%354, %357] : memref<16x64xf32, 3 : i64>
                  %359 = arith.mulf %351, %358 fastmath<contract> : f32
                  %360 = arith.addf %344, %359 fastmath<contract> : f32
                  %361 = arith.constant -1 : index
                  %362 = arith.muli %i_1, %361 : index
                  %363 = arith.addi %241, %362 : index
                  %364 = arith.constant -1 : index
                  %365 = arith.muli %j_1, %364 : index
                  %366 = arith.addi %337, %365 : index
                  memref.store %360, %C_cache10[%363, %366] : memref<4x4xf32>
                  %367 = arith.constant 2 : index
                  %368 = arith.addi %i_1, %367 : index
                  %369 = arith.constant 4 : index
                  %370 = arith.addi %j_1, %369 : index
                  %371 = arith.constant 1 : index
                  %372 = arith.constant -1 : index
                  %373 = arith.muli %i_1, %372 : index
                  %374 = arith.addi %368, %373 : index
                  %375 = arith.constant -1 : index
                  %376 = arith.muli %j_1, %375 : index
                  %377 = arith.addi %j_1, %376 : index
                  %378 = memref.load %C_cache10[%374, %377] : memref<4x4xf32>
                  %379 = arith.constant -1 : index
                  %380 = arith.muli %i, %379 : index
                  %381 = arith.addi %368, %380 : index
                  %382 = arith.constant -1 : index
                  %383 = arith.muli %kx, %382 : index
                  %384 = arith.addi %kx_1, %383 : index
                  %385 = memref.load %A_cache8[%381, %384] : memref<64x16xf32, 3 : i64>
                  %386 = arith.constant -1 : index
                  %387 = arith.muli %kx, %386 : index
                  %388 = arith.addi %kx_1, %387 : index
                  %389 = arith.constant -1 : index
                  %390 = arith.muli %j, %389 : index
                  %391 = arith.addi %j_1, %390 : index
                  %392 = memref.load %B_cache9[%388, %391] : memref<16x64xf32, 3 : i64>
                  %393 = arith.mulf %385, %392 fastmath<contract> : f32
                  %394 = arith.addf %378, %393 fastmath<contract> : f32
                  %395 = arith.constant -1 : index
                  %396 = arith.muli %i_1, %395 : index
                  %397 = arith.addi %368, %396 : index
                  %398 = arith.constant -1 : index
                  %399 = arith.muli %j_1, %398 : index
                  %400 = arith.addi %j_1, %399 : index
                  memref.store %394, %C_cache10[%397, %400] : memref<4x4xf32>
                  %401 = arith.constant 1 : index
                  %402 = arith.addi %j_1, %401 : index
                  %403 = arith.constant -1 : index
                  %404 = arith.muli %i_1, %403 : index
                  %405 = arith.addi %368, %404 : index
                  %406 = arith.constant -1 : index
                  %407 = arith.muli %j_1, %406 : index
                  %408 = arith.addi %402, %407 : index
                  %409 = memref.load %C_cache10[%405, %408] : memref<4x4xf32>
                  %410 = arith.constant -1 : index
                  %411 = arith.muli %i, %410 : index
                  %412 = arith.addi %368, %411 : index
                  %413 = arith.constant -1 : index
                  %414 = arith.muli %kx, %413 : index
                  %415 = arith.addi %kx_1, %414 : index
                  %416 = memref.load %A_cache8[%412, %415] : memref<64x16xf32, 3 : i64>
                  %417 = arith.constant -1 : index
                  %418 = arith.muli %kx, %417 : index
                  %419 = arith.addi %kx_1, %418 : index
                  %420 = arith.constant -1 : index
                  %421 = arith.muli %j, %420 : index
                  %422 = arith.addi %402, %421 : index
                  %423 = memref.load %B_cache9[%419, %422] : memref<16x64xf32, 3 : i64>
                  %424 = arith.mulf %416, %423 fastmath<contract> : f32
                  %425 = arith.addf %409, %424 fastmath<contract> : f32
                  %426 = arith.constant -1 : index
                  %427 = arith.muli %i_1, %426 : index
                  %428 = arith.addi %368, %427 : index
                  %429 = arith.constant -1 : index
                  %430 = arith.muli %j_1, %429 : index
                  %431 = arith.addi %402, %430 : index
                  memref.store %425, %C_cache10[%428, %431] : memref<4x4xf32>
                  %432 = arith.constant 2 : index
                  %433 = arith.addi %j_1, %432 : index
                  %434 = arith.constant -1 : index
                  %435 = arith.muli %i_1, %434 : index
                  %436 = arith.addi %368, %435 : index
                  %437 = arith.constant -1 : index
                  %438 = arith.muli %j_1, %437 : index
                  %439 = arith.addi %433, %438 : index
                  %440 = memref.load %C_cache10[%436, %439] : memref<4x4xf32>
                  %441 = arith.constant -1 : index
                  %442 = arith.muli %i, %441 : index
                  %443 = arith.addi %368, %442 : index
                  %444 = arith.constant -1 : index
                  %445 = arith.muli %kx, %444 : index
                  %446 = arith.addi %kx_1, %445 : index
                  %447 = memref.load %A_cache8[%443, %446] : memref<64x16xf32, 3 : i64>
                  %448 = arith.constant -1 : index
                  %449 = arith.muli %kx, %448 : index
                  %450 = arith.addi %kx_1, %449 : index
                  %451 = arith.constant -1 : index
                  %452 = arith.muli %j, %451 : index
                  %453 = arith.addi %433, %452 : index
                  %454 = memref.load %B_cache9[%450, %453] : memref<16x64xf32, 3 : i64>
                  %455 = arith.mulf %447, %454 fastmath<contract> : f32
                  %456 = arith.addf %440, %455 fastmath<contract> : f32
                  %457 = arith.constant -1 : index
                  %458 = arith.muli %i_1, %457 : index
                  %459 = arith.addi %368, %458 : index
                  %460 = arith.constant -1 : index
                  %461 = arith.muli %j_1, %460 : index
                  %462 = arith.addi %433, %461 : index
                  memref.store %456, %C_cache10[%459, %462] : memref<4x4xf32>
                  %463 = arith.constant 3 : index
                  %464 = arith.addi %j_1, %463 : index
                  %465 = arith.constant -1 : index
                  %466 = arith.muli %i_1, %465 : index
                  %467 = arith.addi %368, %466 : index
                  %468 = arith.constant -1 : index
                  %469 = arith.muli %j_1, %468 : index
                  %470 = arith.addi %464, %469 : index
                  %471 = memref.load %C_cache10[%467, %470] : memref<4x4xf32>
                  %472 = arith.constant -1 : index
                  %473 = arith.muli %i, %472 : index
                  %474 = arith.addi %368, %473 : index
                  %475 = arith.constant -1 : index
                  %476 = arith.muli %kx, %475 : index
                  %477 = arith.addi %kx_1, %476 : index
                  %478 = memref.load %A_cache8[%474, %477] : memref<64x16xf32, 3 : i64>
                  %479 = arith.constant -1 : index
                  %480 = arith.muli %kx, %479 : index
                  %481 = arith.addi %kx_1, %480 : index
                  %482 = arith.constant -1 : index
                  %483 = arith.muli %j, %482 : index
                  %484 = arith.addi %464, %483 : index
                  %485 = memref.load %B_cache9[%481, %484] : memref<16x64xf32, 3 : i64>
                  %486 = arith.mulf %478, %485 fastmath<contract> : f32
                  %487 = arith.addf %471, %486 fastmath<contract> : f32
                  %488 = arith.constant -1 : index
                  %489 = arith.muli %i_1, %488 : index
                  %490 = arith.addi %368, %489 : index
                  %491 = arith.constant -1 : index
                  %492 = arith.muli %j_1, %491 : index
                  %493 = arith.addi %464, %492 : index
                  memref.store %487, %C_cache10[%490, %493] : memref<4x4xf32>
                  %494 = arith.constant 3 : index
                  %495 = arith.addi %i_1, %494 : index
                  %496 = arith.constant 4 : index
                  %497 = arith.addi %j_1, %496 : index
                  %498 = arith.constant 1 : index
                  %499 = arith.constant -1 : index
                  %500 = arith.muli %i_1, %499 : index
                  %501 = arith.addi %495, %500 : index
                  %502 = arith.constant -1 : index
                  %503 = arith.muli %j_1, %502 : index
                  %504 = arith.addi %j_1, %503 : index
                  %505 = memref.load %C_cache10[%501, %504] : memref<4x4xf32>
                  %506 = arith.constant -1 : index
                  %507 = arith.muli %i, %506 : index
                  %508 = arith.addi %495, %507 : index
                  %509 = arith.constant -1 : index
                  %510 = arith.muli %kx, %509 : index
                  %511 = arith.addi %kx_1, %510 : index
                  %512 = memref.load %A_cache8[%508, %511] : memref<64x16xf32, 3 : i64>
                  %513 = arith.constant -1 : index
                  %514 = arith.muli %kx, %513 : index
                  %515 = arith.addi %kx_1, %514 : index
                  %516 = arith.constant -1 : index
                  %517 = arith.muli %j, %516 : index
                  %518 = arith.addi %j_1, %517 : index
                  %519 = memref.load %B_cache9[%515, %518] : memref<16x64xf32, 3 : i64>
                  %520 = arith.mulf %512, %519 fastmath<contract> : f32
                  %521 = arith.addf %505, %520 fastmath<contract> : f32
                  %522 = arith.constant -1 : index
                  %523 = arith.muli %i_1, %522 : index
                  %524 = arith.addi %495, %523 : index
                  %525 = arith.constant -1 : index
                  %526 = arith.muli %j_1, %525 : index
                  %527 = arith.addi %j_1, %526 : index
                  memref.store %521, %C_cache10[%524, %527] : memref<4x4xf32>
                  %528 = arith.constant 1 : index
                  %529 = arith.addi %j_1, %528 : index
                  %530 = arith.constant -1 : index
                  %531 = arith.muli %i_1, %530 : index
                  %532 = arith.addi %495, %531 : index
                  %533 = arith.constant -1 : index
                  %534 = arith.muli %j_1, %533 : index
                  %535 = arith.addi %529, %534 : index
                  %536 = memref.load %C_cache10[%532, %535] : memref<4x4xf32>
                  %537 = arith.constant -1 : index
                  %538 = arith.muli %i, %537 : index
                  %539 = arith.addi %495, %538 : index
                  %540 = arith.constant -1 : index
                  %541 = arith.muli %kx, %540 : index
                  %542 = arith.addi %kx_1, %541 : index
                  %543 = memref.load %A_cache8[%539, %542] : memref<64x16xf32, 3 : i64>
                  %544 = arith.constant -1 : index
                  %545 = arith.muli %kx, %544 : index
                  %546 = arith.addi %kx_1, %545 : index
                  %547 = arith.constant -1 : index
                  %548 = arith.muli %j, %547 : index
                  %549 = arith.addi %529, %548 : index
                  %550 = memref.load %B_cache9[%546, %549] : memref<16x64xf32, 3 : i64>
                  %551 = arith.mulf %543, %550 fastmath<contract> : f32
                  %552 = arith.addf %536, %551 fastmath<contract> : f32
                  %553 = arith.constant -1 : index
                  %554 = arith.muli %i_1, %553 : index
                  %555 = arith.addi %495, %554 : index
                  %556 = arith.constant -1 : index
                  %557 = arith.muli %j_1, %556 : index
                  %558 = arith.addi %529, %557 : index
                  memref.store %552, %C_cache10[%555, %558] : memref<4x4xf32>
                  %559 = arith.constant 2 : index
                  %560 = arith.addi %j_1, %559 : index
                  %561 = arith.constant -1 : index
                  %562 = arith.muli %i_1, %561 : index
                  %563 = arith.addi %495, %562 : index
                  %564 = arith.constant -1 : index
                  %565 = arith.muli %j_1, %564 : index
                  %566 = arith.addi %560, %565 : index
                  %567 = memref.load %C_cache10[%563, %566] : memref<4x4xf32>
                  %568 = arith.constant -1 : index
                  %569 = arith.muli %i, %568 : index
                  %570 = arith.addi %495, %569 : index
                  %571 = arith.constant -1 : index
                  %572 = arith.muli %kx, %571 : index
                  %573 = arith.addi %kx_1, %572 : index
                  %574 = memref.load %A_cache8[%570, %573] : memref<64x16xf32, 3 : i64>
                  %575 = arith.constant -1 : index
                  %576 = arith.muli %kx, %575 : index
                  %577 = arith.addi %kx_1, %576 : index
                  %578 = arith.constant -1 : index
                  %579 = arith.muli %j, %578 : index
                  %580 = arith.addi %560, %579 : index
                  %581 = memref.load %B_cache9[%577, %580] : memref<16x64xf32, 3 : i64>
                  %582 = arith.mulf %574, %581 fastmath<contract> : f32
                  %583 = arith.addf %567, %582 fastmath<contract> : f32
                  %584 = arith.constant -1 : index
                  %585 = arith.muli %i_1, %584 : index
                  %586 = arith.addi %495, %585 : index
                  %587 = arith.constant -1 : index
                  %588 = arith.muli %j_1, %587 : index
                  %589 = arith.addi %560, %588 : index
                  memref.store %583, %C_cache10[%586, %589] : memref<4x4xf32>
                  %590 = arith.constant 3 : index
                  %591 = arith.addi %j_1, %590 : index
                  %592 = arith.constant -1 : index
                  %593 = arith.muli %i_1, %592 : index
                  %594 = arith.addi %495, %593 : index
                  %595 = arith.constant -1 : index
                  %596 = arith.muli %j_1, %595 : index
                  %597 = arith.addi %591, %596 : index
                  %598 = memref.load %C_cache10[%594, %597] : memref<4x4xf32>
                  %599 = arith.constant -1 : index
                  %600 = arith.muli %i, %599 : index
                  %601 = arith.addi %495, %600 : index
                  %602 = arith.constant -1 : index
                  %603 = arith.muli %kx, %602 : index
                  %604 = arith.addi %kx_1, %603 : index
                  %605 = memref.load %A_cache8[%601, %604] : memref<64x16xf32, 3 : i64>
                  %606 = arith.constant -1 : index
                  %607 = arith.muli %kx, %606 : index
                  %608 = arith.addi %kx_1, %607 : index
                  %609 = arith.constant -1 : index
                  %610 = arith.muli %j, %609 : index
                  %611 = arith.addi %591, %610 : index
                  %612 = memref.load %B_cache9[%608, %611] : memref<16x64xf32, 3 : i64>
                  %613 = arith.mulf %605, %612 fastmath<contract> : f32
                  %614 = arith.addf %598, %613 fastmath<contract> : f32
                  %615 = arith.constant -1 : index
                  %616 = arith.muli %i_1, %615 : index
                  %617 = arith.addi %495, %616 : index
                  %618 = arith.constant -1 : index
                  %619 = arith.muli %j_1, %618 : index
                  %620 = arith.addi %591, %619 : index
                  memref.store %614, %C_cache10[%617, %620] : memref<4x4xf32>
                } {oi.index = "kx_5", oi.dim = 2 : i64, oi.span = 16 : i64}
                %621 = arith.constant {oi.cache_writeback = "C_cache10"} 0 : index
                %622 = arith.constant {oi.cache_writeback = "C_cache10"} 1 : index
                scf.for %w0 = %621 to %104 step %622 {
                  %623 = arith.constant 1 : index
                  scf.for %w1 = %621 to %105 step %623 {
                    %624 = memref.load %C_cache10[%w0, %w1] : memref<4x4xf32>
                    %625 = arith.addi %i_1, %w0 : index
                    %626 = arith.addi %j_1, %w1 : index
                    %627 = memref.load %C[%625, %626] : memref<2048x2048xf32>
                    %628 = arith.addf %627, %624 : f32
                    memref.store %628, %C[%625, %626] : memref<2048x2048xf32>
                  }
                } {oi.cache_writeback = "C_cache10"}
              }{oi.bound = "thread_x", oi.index = "j_4"}
            }{oi.bound = "thread_y", oi.index = "i_3"}
            %629 = arith.constant 0 : index
            %630 = arith.constant 1 : index
            %631 = arith.constant 16 : index
            "gpu.barrier"() : () -> ()
            %632 = "gpu.thread_id"() <{dimension = #gpu<dim x>}> : () -> index
            %633 = "gpu.thread_id"() <{dimension = #gpu<dim y>}> : () -> index
            %634 = "gpu.thread_id"() <{dimension = #gpu<dim z>}> : () -> index
            %635 = arith.constant 16 : index
            %636 = arith.constant 16 : index
            %637 = arith.constant 256 : index
            %638 = arith.muli %634, %636 : index
            %639 = arith.addi %638, %633 : index
            %640 = arith.muli %639, %635 : index
            %641 = arith.addi %640, %632 : index
            %642 = arith.muli %641, %630 : index
            %643 = arith.addi %629, %642 : index
            %644 = arith.muli %630, %637 : index
            scf.for %645 = %643 to %631 step %644 {
              %646 = arith.constant 64 : index
              scf.for %647 = %629 to %646 step %630 {
                %648 = memref.load %B_cache9_temp[%645, %647] : memref<16x64xf32>
                memref.store %648, %B_cache9[%645, %647] : memref<16x64xf32, 3 : i64>
              }
            } {oi.prefetch_swap = "B_cache9"}
            "gpu.barrier"() : () -> ()
          } {oi.index = "kx", oi.dim = 2 : i64, oi.span = 2048 : i64}
          %649 = arith.constant 64 : index
          %650 = arith.addi %i, %649 : index
          %651 = arith.constant {oi.peeled = "B_cache9"} 4 : index
          "gpu.barrier"() : () -> ()
          %652 = arith.constant {oi.cache_fill = "A_cache8", oi.peeled = "B_cache9"} 64 : index
          %653 = arith.constant {oi.cache_fill = "A_cache8", oi.peeled = "B_cache9"} 16 : index
          %654 = arith.constant {oi.cache_fill = "A_cache8", oi.peeled = "B_cache9"} 0 : index
          %655 = arith.constant {oi.cache_fill = "A_cache8", oi.peeled = "B_cache9"} 1 : index
          %656 = "gpu.thread_id"() <{dimension = #gpu<dim x>}> : () -> index
          %657 = "gpu.thread_id"() <{dimension = #gpu<dim y>}> : () -> index
          %658 = "gpu.thread_id"() <{dimension = #gpu<dim z>}> : () -> index
          %659 = arith.constant 16 : index
          %660 = arith.constant 16 : index
          %661 = arith.constant 256 : index
          %662 = arith.muli %658, %660 : index
          %663 = arith.addi %662, %657 : index
          %664 = arith.muli %663, %659 : index
          %665 = arith.addi %664, %656 : index
          %666 = arith.muli %665, %655 : index
          %667 = arith.addi %654, %666 : index
          %668 = arith.muli %655, %661 : index
          scf.for %c0_4 = %667 to %652 step %668 {
            %669 = arith.constant 1 : index
            scf.for %c1_4 = %654 to %653 step %669 {
              %670 = arith.addi %i, %c0_4 : index
              %671 = arith.addi %last, %c1_4 : index
              %672 = memref.load %A[%670, %671] : memref<2048x2048xf32>
              memref.store %672, %A_cache8[%c0_4, %c1_4] : memref<64x16xf32, 3 : i64>
            }
          } {oi.cache_fill = "A_cache8", oi.peeled = "B_cache9"}
          "gpu.barrier"() : () -> ()
          %673 = "gpu.thread_id"() <{dimension = #gpu<dim y>}> : () -> index
          %674 = arith.muli %673, %651 : index
          %i_2 = arith.addi %i, %674 : index
          %675 = arith.cmpi slt, %i_2, %650 : index
          scf.if %675 {
            %676 = arith.constant 64 : index
            %677 = arith.addi %j, %676 : index
            %678 = arith.constant 4 : index
            %679 = "gpu.thread_id"() <{dimension = #gpu<dim x>}> : () -> index
            %680 = arith.muli %679, %678 : index
            %j_2 = arith.addi %j, %680 : index
            %681 = arith.cmpi slt, %j_2, %677 : index
            scf.if %681 {
              %682 = arith.constant 16 : index
              %683 = arith.addi %last, %682 : index
              %684 = arith.constant 1 : index
              %685 = arith.constant {oi.cache_bounds = "C_cache10"} 4 : index
              %686 = arith.constant {oi.cache_bounds = "C_cache10"} 4 : index
              %687 = arith.constant {oi.cache_fill = "C_cache10"} 4 : index
              %688 = arith.constant {oi.cache_fill = "C_cache10"} 4 : index
              %689 = arith.constant {oi.cache_fill = "C_cache10"} 0 : index
              %690 = arith.constant {oi.cache_fill = "C_cache10"} 1 : index
              scf.for %c0_5 = %689 to %687 step %690 {
                %691 = arith.constant 1 : index
                scf.for %c1_5 = %689 to %688 step %691 {
                  %692 = arith.constant 0.000000e+00 : f32
                  memref.store %692, %C_cache10[%c0_5, %c1_5] : memref<4x4xf32>
                }
              } {oi.cache_fill = "C_cache10"}
              scf.for %kx_2 = %last to %683 step %684 {
                %693 = arith.constant 4 : index
                %694 = arith.addi %i_2, %693 : index
                %695 = arith.constant 1 : index
                %696 = arith.constant 4 : index
                %697 = arith.addi %j_2, %696 : index
                %698 = arith.constant 1 : index
                %699 = arith.constant -1 : index
                %700 = arith.muli %i_2, %699 : index
                %701 = arith.addi %i_2, %700 : index
                %702 = arith.constant -1 : index
                %703 = arith.muli %j_2, %702 : index
                %704 = arith.addi %j_2, %703 : index
                %705 = memref.load %C_cache10[%701, %704] : memref<4x4xf32>
                %706 = arith.constant -1 : index
                %707 = arith.muli %i, %706 : index
                %708 = arith.addi %i_2, %707 : index
                %709 = arith.constant -1 : index
                %710 = arith.muli %last, %709 : index
                %711 = arith.addi %kx_2, %710 : index
                %712 = memref.load %A_cache8[%708, %711] : memref<64x16xf32, 3 : i64>
                %713 = arith.constant -1 : index
                %714 = arith.muli %last, %713 : index
                %715 = arith.addi %kx_2, %714 : index
                %716 = arith.constant -1 : index
                %717 = arith.muli %j, %716 : index
                %718 = arith.addi %j_2, %717 : index
                %719 = memref.load %B_cache9[%715, %718] : memref<16x64xf32, 3 : i64>
                %720 = arith.mulf %712, %719 fastmath<contract> : f32
                %721 = arith.addf %705, %720 fastmath<contract> : f32
                %722 = arith.constant -1 : index
                %723 = arith.muli %i_2, %722 : index
                %724 = arith.addi %i_2, %723 : index
                %725 = arith.constant -1 : index
                %726 = arith.muli %j_2, %725 : index
                %727 = arith.addi %j_2, %726 : index
                memref.store %721, %C_cache10[%724, %727] : memref<4x4xf32>
                %728 = arith.constant 1 : index
                %729 = arith.addi %j_2, %728 : index
                %730 = arith.constant -1 : index
                %731 = arith.muli %i_2, %730 : index
                %732 = arith.addi %i_2, %731 : index
                %733 = arith.constant -1 : index
                %734 = arith.muli %j_2, %733 : index
                %735 = arith.addi %729, %734 : index
                %736 = memref.load %C_cache10[%732, %735] : memref<4x4xf32>
                %737 = arith.constant -1 : index
                %738 = arith.muli %i, %737 : index
                %739 = arith.addi %i_2, %738 : index
                %740 = arith.constant -1 : index
                %741 = arith.muli %last, %740 : index
                %742 = arith.addi %kx_2, %741 : index
                %743 = memref.load %A_cache8[%739, %742] : memref<64x16xf32, 3 : i64>
                %744 = arith.constant -1 : index
                %745 = arith.muli %last, %744 : index
                %746 = arith.addi %kx_2, %745 : index
                %747 = arith.constant -1 : index
                %748 = arith.muli %j, %747 : index
                %749 = arith.addi %729, %748 : index
                %750 = memref.load %B_cache9[%746, %749] : memref<16x64xf32, 3 : i64>
                %751 = arith.mulf %743, %750 fastmath<contract> : f32
                %752 = arith.addf %736, %751 fastmath<contract> : f32
                %753 = arith.constant -1 : index
                %754 = arith.muli %i_2, %753 : index
                %755 = arith.addi %i_2, %754 : index
                %756 = arith.constant -1 : index
                %757 = arith.muli %j_2, %756 : index
                %758 = arith.addi %729, %757 : index
                memref.store %752, %C_cache10[%755, %758] : memref<4x4xf32>
                %759 = arith.constant 2 : index
                %760 = arith.addi %j_2, %759 : index
                %761 = arith.constant -1 : index
                %762 = arith.muli %i_2, %761 : index
                %763 = arith.addi %i_2, %762 : index
                %764 = arith.constant -1 : index
                %765 = arith.muli %j_2, %764 : index
                %766 = arith.addi %760, %765 : index
                %767 = memref.load %C_cache10[%763, %766] : memref<4x4xf32>
                %768 = arith.constant -1 : index
                %769 = arith.muli %i, %768 : index
                %770 = arith.addi %i_2, %769 : index
                %771 = arith.constant -1 : index
                %772 = arith.muli %last, %771 : index
                %773 = arith.addi %kx_2, %772 : index
                %774 = memref.load %A_cache8[%770, %773] : memref<64x16xf32, 3 : i64>
                %775 = arith.constant -1 : index
                %776 = arith.muli %last, %775 : index
                %777 = arith.addi %kx_2, %776 : index
                %778 = arith.constant -1 : index
                %779 = arith.muli %j, %778 : index
                %780 = arith.addi %760, %779 : index
                %781 = memref.load %B_cache9[%777, %780] : memref<16x64xf32, 3 : i64>
                %782 = arith.mulf %774, %781 fastmath<contract> : f32
                %783 = arith.addf %767, %782 fastmath<contract> : f32
                %784 = arith.constant -1 : index
                %785 = arith.muli %i_2, %784 : index
                %786 = arith.addi %i_2, %785 : index
                %787 = arith.constant -1 : index
                %788 = arith.muli %j_2, %787 : index
                %789 = arith.addi %760, %788 : index
                memref.store %783, %C_cache10[%786, %789] : memref<4x4xf32>
                %790 = arith.constant 3 : index
                %791 = arith.addi %j_2, %790 : index
                %792 = arith.constant -1 : index
                %793 = arith.muli %i_2, %792 : index
                %794 = arith.addi %i_2, %793 : index
                %795 = arith.constant -1 : index
                %796 = arith.muli %j_2, %795 : index
                %797 = arith.addi %791, %796 : index
                %798 = memref.load %C_cache10[%794, %797] : memref<4x4xf32>
                %799 = arith.constant -1 : index
                %800 = arith.muli %i, %799 : index
                %801 = arith.addi %i_2, %800 : index
                %802 = arith.constant -1 : index
                %803 = arith.muli %last, %802 : index
                %804 = arith.addi %kx_2, %803 : index
                %805 = memref.load %A_cache8[%801, %804] : memref<64x16xf32, 3 : i64>
                %806 = arith.constant -1 : index
                %807 = arith.muli %last, %806 : index
                %808 = arith.addi %kx_2, %807 : index
                %809 = arith.constant -1 : index
                %810 = arith.muli %j, %809 : index
                %811 = arith.addi %791, %810 : index
                %812 = memref.load %B_cache9[%808, %811] : memref<16x64xf32, 3 : i64>
                %813 = arith.mulf %805, %812 fastmath<contract> : f32
                %814 = arith.addf %798, %813 fastmath<contract> : f32
                %815 = arith.constant -1 : index
                %816 = arith.muli %i_2, %815 : index
                %817 = arith.addi %i_2, %816 : index
                %818 = arith.constant -1 : index
                %819 = arith.muli %j_2, %818 : index
                %820 = arith.addi %791, %819 : index
                memref.store %814, %C_cache10[%817, %820] : memref<4x4xf32>
                %821 = arith.constant 1 : index
                %822 = arith.addi %i_2, %821 : index
                %823 = arith.constant 4 : index
                %824 = arith.addi %j_2, %823 : index
                %825 = arith.constant 1 : index
                %826 = arith.constant -1 : index
                %827 = arith.muli %i_2, %826 : index
                %828 = arith.addi %822, %827 : index
                %829 = arith.constant -1 : index
                %830 = arith.muli %j_2, %829 : index
                %831 = arith.addi %j_2, %830 : index
                %832 = memref.load %C_cache10[%828, %831] : memref<4x4xf32>
                %833 = arith.constant -1 : index
                %834 = arith.muli %i, %833 : index
                %835 = arith.addi %822, %834 : index
                %836 = arith.constant -1 : index
                %837 = arith.muli %last, %836 : index
                %838 = arith.addi %kx_2, %837 : index
                %839 = memref.load %A_cache8[%835, %838] : memref<64x16xf32, 3 : i64>
                %840 = arith.constant -1 : index
                %841 = arith.muli %last, %840 : index
                %842 = arith.addi %kx_2, %841 : index
                %843 = arith.constant -1 : index
                %844 = arith.muli %j, %843 : index
                %845 = arith.addi %j_2, %844 : index
                %846 = memref.load %B_cache9[%842, %845] : memref<16x64xf32, 3 : i64>
                %847 = arith.mulf %839, %846 fastmath<contract> : f32
                %848 = arith.addf %832, %847 fastmath<contract> : f32
                %849 = arith.constant -1 : index
                %850 = arith.muli %i_2, %849 : index
                %851 = arith.addi %822, %850 : index
                %852 = arith.constant -1 : index
                %853 = arith.muli %j_2, %852 : index
                %854 = arith.addi %j_2, %853 : index
                memref.store %848, %C_cache10[%851, %854] : memref<4x4xf32>
                %855 = arith.constant 1 : index
                %856 = arith.addi %j_2, %855 : index
                %857 = arith.constant -1 : index
                %858 = arith.muli %i_2, %857 : index
                %859 = arith.addi %822, %858 : index
                %860 = arith.constant -1 : index
                %861 = arith.muli %j_2, %860 : index
                %862 = arith.addi %856, %861 : index
                %863 = memref.load %C_cache10[%859, %862] : memref<4x4xf32>
                %864 = arith.constant -1 : index
                %865 = arith.muli %i, %864 : index
                %866 = arith.addi %822, %865 : index
                %867 = arith.constant -1 : index
                %868 = arith.muli %last, %867 : index
                %869 = arith.addi %kx_2, %868 : index
                %870 = memref.load %A_cache8[%866, %869] : memref<64x16xf32, 3 : i64>
                %871 = arith.constant -1 : index
                %872 = arith.muli %last, %871 : index
                %873 = arith.addi %kx_2, %872 : index
                %874 = arith.constant -1 : index
                %875 = arith.muli %j, %874 : index
                %876 = arith.addi %856, %875 : index
                %877 = memref.load %B_cache9[%873, %876] : memref<16x64xf32, 3 : i64>
                %878 = arith.mulf %870, %877 fastmath<contract> : f32
                %879 = arith.addf %863, %878 fastmath<contract> : f32
                %880 = arith.constant -1 : index
                %881 = arith.muli %i_2, %880 : index
                %882 = arith.addi %822, %881 : index
                %883 = arith.constant -1 : index
                %884 = arith.muli %j_2, %883 : index
                %885 = arith.addi %856, %884 : index
                memref.store %879, %C_cache10[%882, %885] : memref<4x4xf32>
                %886 = arith.constant 2 : index
                %887 = arith.addi %j_2, %886 : index
                %888 = arith.constant -1 : index
                %889 = arith.muli %i_2, %888 : index
                %890 = arith.addi %822, %889 : index
                %891 = arith.constant -1 : index
                %892 = arith.muli %j_2, %891 : index
                %893 = arith.addi %887, %892 : index
                %894 = memref.load %C_cache10[%890, %893] : memref<4x4xf32>
                %895 = arith.constant -1 : index
                %896 = arith.muli %i, %895 : index
                %897 = arith.addi %822, %896 : index
                %898 = arith.constant -1 : index
                %899 = arith.muli %last, %898 : index
                %900 = arith.addi %kx_2, %899 : index
                %901 = memref.load %A_cache8[%897, %900] : memref<64x16xf32, 3 : i64>
                %902 = arith.constant -1 : index
                %903 = arith.muli %last, %902 : index
                %904 = arith.addi %kx_2, %903 : index
                %905 = arith.constant -1 : index
                %906 = arith.muli %j, %905 : index
                %907 = arith.addi %887, %906 : index
                %908 = memref.load %B_cache9[%904, %907] : memref<16x64xf32, 3 : i64>
                %909 = arith.mulf %901, %908 fastmath<contract> : f32
                %910 = arith.addf %894, %909 fastmath<contract> : f32
                %911 = arith.constant -1 : index
                %912 = arith.muli %i_2, %911 : index
                %913 = arith.addi %822, %912 : index
                %914 = arith.constant -1 : index
                %915 = arith.muli %j_2, %914 : index
                %916 = arith.addi %887, %915 : index
                memref.store %910, %C_cache10[%913, %916] : memref<4x4xf32>
                %917 = arith.constant 3 : index
                %918 = arith.addi %j_2, %917 : index
                %919 = arith.constant -1 : index
                %920 = arith.muli %i_2, %919 : index
                %921 = arith.addi %822, %920 : index
                %922 = arith.constant -1 : index
                %923 = arith.muli %j_2, %922 : index
                %924 = arith.addi %918, %923 : index
                %925 = memref.load %C_cache10[%921, %924] : memref<4x4xf32>
                %926 = arith.constant -1 : index
                %927 = arith.muli %i, %926 : index
                %928 = arith.addi %822, %927 : index
                %929 = arith.constant -1 : index
                %930 = arith.muli %last, %929 : index
                %931 = arith.addi %kx_2, %930 : index
                %932 = memref.load %A_cache8[%928, %931] : memref<64x16xf32, 3 : i64>
                %933 = arith.constant -1 : index
                %934 = arith.muli %last, %933 : index
                %935 = arith.addi %kx_2, %934 : index
                %936 = arith.constant -1 : index
                %937 = arith.muli %j, %936 : index
                %938 = arith.addi %918, %937 : index
                %939 = memref.load %B_cache9[%935, %938] : memref<16x64xf32, 3 : i64>
                %940 = arith.mulf %932, %939 fastmath<contract> : f32
                %941 = arith.addf %925, %940 fastmath<contract> : f32
                %942 = arith.constant -1 : index
                %943 = arith.muli %i_2, %942 : index
                %944 = arith.addi %822, %943 : index
                %945 = arith.constant -1 : index
                %946 = arith.muli %j_2, %945 : index
                %947 = arith.addi %918, %946 : index
                memref.store %941, %C_cache10[%944, %947] : memref<4x4xf32>
                %948 = arith.constant 2 : index
                %949 = arith.addi %i_2, %948 : index
                %950 = arith.constant 4 : index
                %951 = arith.addi %j_2, %950 : index
                %952 = arith.constant 1 : index
                %953 = arith.constant -1 : index
                %954 = arith.muli %i_2, %953 : index
                %955 = arith.addi %949, %954 : index
                %956 = arith.constant -1 : index
                %957 = arith.muli %j_2, %956 : index
                %958 = arith.addi %j_2, %957 : index
                %959 = memref.load %C_cache10[%955, %958] : memref<4x4xf32>
                %960 = arith.constant -1 : index
                %961 = arith.muli %i, %960 : index
                %962 = arith.addi %949, %961 : index
                %963 = arith.constant -1 : index
                %964 = arith.muli %last, %963 : index
                %965 = arith.addi %kx_2, %964 : index
                %966 = memref.load %A_cache8[%962, %965] : memref<64x16xf32, 3 : i64>
                %967 = arith.constant -1 : index
                %968 = arith.muli %last, %967 : index
                %969 = arith.addi %kx_2, %968 : index
                %970 = arith.constant -1 : index
                %971 = arith.muli %j, %970 : index
                %972 = arith.addi %j_2, %971 : index
                %973 = memref.load %B_cache9[%969, %972] : memref<16x64xf32, 3 : i64>
                %974 = arith.mulf %966, %973 fastmath<contract> : f32
                %975 = arith.addf %959, %974 fastmath<contract> : f32
                %976 = arith.constant -1 : index
                %977 = arith.muli %i_2, %976 : index
                %978 = arith.addi %949, %977 : index
                %979 = arith.constant -1 : index
                %980 = arith.muli %j_2, %979 : index
                %981 = arith.addi %j_2, %980 : index
                memref.store %975, %C_cache10[%978, %981] : memref<4x4xf32>
                %982 = arith.constant 1 : index
                %983 = arith.addi %j_2, %982 : index
                %984 = arith.constant -1 : index
                %985 = arith.muli %i_2, %984 : index
                %986 = arith.addi %949, %985 : index
                %987 = arith.constant -1 : index
                %988 = arith.muli %j_2, %987 : index
                %989 = arith.addi %983, %988 : index
                %990 = memref.load %C_cache10[%986, %989] : memref<4x4xf32>
                %991 = arith.constant -1 : index
                %992 = arith.muli %i, %991 : index
                %993 = arith.addi %949, %992 : index
                %994 = arith.constant -1 : index
                %995 = arith.muli %last, %994 : index
                %996 = arith.addi %kx_2, %995 : index
                %997 = memref.load %A_cache8[%993, %996] : memref<64x16xf32, 3 : i64>
                %998 = arith.constant -1 : index
                %999 = arith.muli %last, %998 : index
                %1000 = arith.addi %kx_2, %999 : index
                %1001 = arith.constant -1 : index
                %1002 = arith.muli %j, %1001 : index
                %1003 = arith.addi %983, %1002 : index
                %1004 = memref.load %B_cache9[%1000, %1003] : memref<16x64xf32, 3 : i64>
                %1005 = arith.mulf %997, %1004 fastmath<contract> : f32
                %1006 = arith.addf %990, %1005 fastmath<contract> : f32
                %1007 = arith.constant -1 : index
                %1008 = arith.muli %i_2, %1007 : index
                %1009 = arith.addi %949, %1008 : index
                %1010 = arith.constant -1 : index
                %1011 = arith.muli %j_2, %1010 : index
                %1012 = arith.addi %983, %1011 : index
                memref.store %1006, %C_cache10[%1009, %1012] : memref<4x4xf32>
                %1013 = arith.constant 2 : index
                %1014 = arith.addi %j_2, %1013 : index
                %1015 = arith.constant -1 : index
                %1016 = arith.muli %i_2, %1015 : index
                %1017 = arith.addi %949, %1016 : index
                %1018 = arith.constant -1 : index
                %1019 = arith.muli %j_2, %1018 : index
                %1020 = arith.addi %1014, %1019 : index
                %1021 = memref.load %C_cache10[%1017, %1020] : memref<4x4xf32>
                %1022 = arith.constant -1 : index
                %1023 = arith.muli %i, %1022 : index
                %1024 = arith.addi %949, %1023 : index
                %1025 = arith.constant -1 : index
                %1026 = arith.muli %last, %1025 : index
                %1027 = arith.addi %kx_2, %1026 : index
                %1028 = memref.load %A_cache8[%1024, %1027] : memref<64x16xf32, 3 : i64>
                %1029 = arith.constant -1 : index
                %1030 = arith.muli %last, %1029 : index
                %1031 = arith.addi %kx_2, %1030 : index
                %1032 = arith.constant -1 : index
                %1033 = arith.muli %j, %1032 : index
                %1034 = arith.addi %1014, %1033 : index
                %1035 = memref.load %B_cache9[%1031, %1034] : memref<16x64xf32, 3 : i64>
                %1036 = arith.mulf %1028, %1035 fastmath<contract> : f32
                %1037 = arith.addf %1021, %1036 fastmath<contract> : f32
                %1038 = arith.constant -1 : index
                %1039 = arith.muli %i_2, %1038 : index
                %1040 = arith.addi %949, %1039 : index
                %1041 = arith.constant -1 : index
                %1042 = arith.muli %j_2, %1041 : index
                %1043 = arith.addi %1014, %1042 : index
                memref.store %1037, %C_cache10[%1040, %1043] : memref<4x4xf32>
                %1044 = arith.constant 3 : index
                %1045 = arith.addi %j_2, %1044 : index
                %1046 = arith.constant -1 : index
                %1047 = arith.muli %i_2, %1046 : index
                %1048 = arith.addi %949, %1047 : index
                %1049 = arith.constant -1 : index
                %1050 = arith.muli %j_2, %1049 : index
                %1051 = arith.addi %1045, %1050 : index
                %1052 = memref.load %C_cache10[%1048, %1051] : memref<4x4xf32>
                %1053 = arith.constant -1 : index
                %1054 = arith.muli %i, %1053 : index
                %1055 = arith.addi %949, %1054 : index
                %1056 = arith.constant -1 : index
                %1057 = arith.muli %last, %1056 : index
                %1058 = arith.addi %kx_2, %1057 : index
                %1059 = memref.load %A_cache8[%1055, %1058] : memref<64x16xf32, 3 : i64>
                %1060 = arith.constant -1 : index
                %1061 = arith.muli %last, %1060 : index
                %1062 = arith.addi %kx_2, %1061 : index
                %1063 = arith.constant -1 : index
                %1064 = arith.muli %j, %1063 : index
                %1065 = arith.addi %1045, %1064 : index
                %1066 = memref.load %B_cache9[%1062, %1065] : memref<16x64xf32, 3 : i64>
                %1067 = arith.mulf %1059, %1066 fastmath<contract> : f32
                %1068 = arith.addf %1052, %1067 fastmath<contract> : f32
                %1069 = arith.constant -1 : index
                %1070 = arith.muli %i_2, %1069 : index
                %1071 = arith.addi %949, %1070 : index
                %1072 = arith.constant -1 : index
                %1073 = arith.muli %j_2, %1072 : index
                %1074 = arith.addi %1045, %1073 : index
                memref.store %1068, %C_cache10[%1071, %1074] : memref<4x4xf32>
                %1075 = arith.constant 3 : index
                %1076 = arith.addi %i_2, %1075 : index
                %1077 = arith.constant 4 : index
                %1078 = arith.addi %j_2, %1077 : index
                %1079 = arith.constant 1 : index
                %1080 = arith.constant -1 : index
                %1081 = arith.muli %i_2, %1080 : index
                %1082 = arith.addi %1076, %1081 : index
                %1083 = arith.constant -1 : index
                %1084 = arith.muli %j_2, %1083 : index
                %1085 = arith.addi %j_2, %1084 : index
                %1086 = memref.load %C_cache10[%1082, %1085] : memref<4x4xf32>
                %1087 = arith.constant -1 : index
                %1088 = arith.muli %i, %1087 : index
                %1089 = arith.addi %1076, %1088 : index
                %1090 = arith.constant -1 : index
                %1091 = arith.muli %last, %1090 : index
                %1092 = arith.addi %kx_2, %1091 : index
                %1093 = memref.load %A_cache8[%1089, %1092] : memref<64x16xf32, 3 : i64>
                %1094 = arith.constant -1 : index
                %1095 = arith.muli %last, %1094 : index
                %1096 = arith.addi %kx_2, %1095 : index
                %1097 = arith.constant -1 : index
                %1098 = arith.muli %j, %1097 : index
                %1099 = arith.addi %j_2, %1098 : index
                %1100 = memref.load %B_cache9[%1096, %1099] : memref<16x64xf32, 3 : i64>
                %1101 = arith.mulf %1093, %1100 fastmath<contract> : f32
                %1102 = arith.addf %1086, %1101 fastmath<contract> : f32
                %1103 = arith.constant -1 : index
                %1104 = arith.muli %i_2, %1103 : index
                %1105 = arith.addi %1076, %1104 : index
                %1106 = arith.constant -1 : index
                %1107 = arith.muli %j_2, %1106 : index
                %1108 = arith.addi %j_2, %1107 : index
                memref.store %1102, %C_cache10[%1105, %1108] : memref<4x4xf32>
                %1109 = arith.constant 1 : index
                %1110 = arith.addi %j_2, %1109 : index
                %1111 = arith.constant -1 : index
                %1112 = arith.muli %i_2, %1111 : index
                %1113 = arith.addi %1076, %1112 : index
                %1114 = arith.constant -1 : index
                %1115 = arith.muli %j_2, %1114 : index
                %1116 = arith.addi %1110, %1115 : index
                %1117 = memref.load %C_cache10[%1113, %1116] : memref<4x4xf32>
                %1118 = arith.constant -1 : index
                %1119 = arith.muli %i, %1118 : index
                %1120 = arith.addi %1076, %1119 : index
                %1121 = arith.constant -1 : index
                %1122 = arith.muli %last, %1121 : index
                %1123 = arith.addi %kx_2, %1122 : index
                %1124 = memref.load %A_cache8[%1120, %1123] : memref<64x16xf32, 3 : i64>
                %1125 = arith.constant -1 : index
                %1126 = arith.muli %last, %1125 : index
                %1127 = arith.addi %kx_2, %1126 : index
                %1128 = arith.constant -1 : index
                %1129 = arith.muli %j, %1128 : index
                %1130 = arith.addi %1110, %1129 : index
                %1131 = memref.load %B_cache9[%1127, %1130] : memref<16x64xf32, 3 : i64>
                %1132 = arith.mulf %1124, %1131 fastmath<contract> : f32
                %1133 = arith.addf %1117, %1132 fastmath<contract> : f32
                %1134 = arith.constant -1 : index
                %1135 = arith.muli %i_2, %1134 : index
                %1136 = arith.addi %1076, %1135 : index
                %1137 = arith.constant -1 : index
                %1138 = arith.muli %j_2, %1137 : index
                %1139 = arith.addi %1110, %1138 : index
                memref.store %1133, %C_cache10[%1136, %1139] : memref<4x4xf32>
                %1140 = arith.constant 2 : index
                %1141 = arith.addi %j_2, %1140 : index
                %1142 = arith.constant -1 : index
                %1143 = arith.muli %i_2, %1142 : index
                %1144 = arith.addi %1076, %1143 : index
                %1145 = arith.constant -1 : index
                %1146 = arith.muli %j_2, %1145 : index
                %1147 = arith.addi %1141, %1146 : index
                %1148 = memref.load %C_cache10[%1144, %1147] : memref<4x4xf32>
                %1149 = arith.constant -1 : index
                %1150 = arith.muli %i, %1149 : index
                %1151 = arith.addi %1076, %1150 : index
                %1152 = arith.constant -1 : index
                %1153 = arith.muli %last, %1152 : index
                %1154 = arith.addi %kx_2, %1153 : index
                %1155 = memref.load %A_cache8[%1151, %1154] : memref<64x16xf32, 3 : i64>
                %1156 = arith.constant -1 : index
                %1157 = arith.muli %last, %1156 : index
                %1158 = arith.addi %kx_2, %1157 : index
                %1159 = arith.constant -1 : index
                %1160 = arith.muli %j, %1159 : index
                %1161 = arith.addi %1141, %1160 : index
                %1162 = memref.load %B_cache9[%1158, %1161] : memref<16x64xf32, 3 : i64>
                %1163 = arith.mulf %1155, %1162 fastmath<contract> : f32
                %1164 = arith.addf %1148, %1163 fastmath<contract> : f32
                %1165 = arith.constant -1 : index
                %1166 = arith.muli %i_2, %1165 : index
                %1167 = arith.addi %1076, %1166 : index
                %1168 = arith.constant -1 : index
                %1169 = arith.muli %j_2, %1168 : index
                %1170 = arith.addi %1141, %1169 : index
                memref.store %1164, %C_cache10[%1167, %1170] : memref<4x4xf32>
                %1171 = arith.constant 3 : index
                %1172 = arith.addi %j_2, %1171 : index
                %1173 = arith.constant -1 : index
                %1174 = arith.muli %i_2, %1173 : index
                %1175 = arith.addi %1076, %1174 : index
                %1176 = arith.constant -1 : index
                %1177 = arith.muli %j_2, %1176 : index
                %1178 = arith.addi %1172, %1177 : index
                %1179 = memref.load %C_cache10[%1175, %1178] : memref<4x4xf32>
                %1180 = arith.constant -1 : index
                %1181 = arith.muli %i, %1180 : index
                %1182 = arith.addi %1076, %1181 : index
                %1183 = arith.constant -1 : index
                %1184 = arith.muli %last, %1183 : index
                %1185 = arith.addi %kx_2, %1184 : index
                %1186 = memref.load %A_cache8[%1182, %1185] : memref<64x16xf32, 3 : i64>
                %1187 = arith.constant -1 : index
                %1188 = arith.muli %last, %1187 : index
                %1189 = arith.addi %kx_2, %1188 : index
                %1190 = arith.constant -1 : index
                %1191 = arith.muli %j, %1190 : index
                %1192 = arith.addi %1172, %1191 : index
                %1193 = memref.load %B_cache9[%1189, %1192] : memref<16x64xf32, 3 : i64>
                %1194 = arith.mulf %1186, %1193 fastmath<contract> : f32
                %1195 = arith.addf %1179, %1194 fastmath<contract> : f32
                %1196 = arith.constant -1 : index
                %1197 = arith.muli %i_2, %1196 : index
                %1198 = arith.addi %1076, %1197 : index
                %1199 = arith.constant -1 : index
                %1200 = arith.muli %j_2, %1199 : index
                %1201 = arith.addi %1172, %1200 : index
                memref.store %1195, %C_cache10[%1198, %1201] : memref<4x4xf32>
              } {oi.index = "kx_5", oi.dim = 2 : i64, oi.span = 16 : i64}
              %1202 = arith.constant {oi.cache_writeback = "C_cache10"} 0 : index
              %1203 = arith.constant {oi.cache_writeback = "C_cache10"} 1 : index
              scf.for %w0_1 = %1202 to %685 step %1203 {
                %1204 = arith.constant 1 : index
                scf.for %w1_1 = %1202 to %686 step %1204 {
                  %1205 = memref.load %C_cache10[%w0_1, %w1_1] : memref<4x4xf32>
                  %1206 = arith.addi %i_2, %w0_1 : index
                  %1207 = arith.addi %j_2, %w1_1 : index
                  %1208 = memref.load %C[%1206, %1207] : memref<2048x2048xf32>
                  %1209 = arith.addf %1208, %1205 : f32
                  memref.store %1209, %C[%1206, %1207] : memref<2048x2048xf32>
                }
              } {oi.cache_writeback = "C_cache10"}
            }{oi.bound = "thread_x", oi.index = "j_4"}
          }{oi.bound = "thread_y", oi.index = "i_3"}
        }{oi.bound = "block_x", oi.index = "j"}
      }{oi.bound = "block_y", oi.index = "i"}
      "gpu.return"() : () -> ()
    }) {sym_name = "gemm_plan_2048", oi.launch = {grid = [#builtin.int<32>, #builtin.int<32>, #builtin.int<1>], block = [#builtin.int<16>, #builtin.int<16>, #builtin.int<1>]}} : () -> ()
  }) : () -> ()
}