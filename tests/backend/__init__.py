"""The backends: LLVM and PTX translation, the JIT and its compile cache, vector math, CPU codegen, the CUDA launcher."""
