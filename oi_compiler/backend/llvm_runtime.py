"""Runtime helpers that LLVM's code generator may call and a Python process does not provide.

LLVM lowers `fptrunc` to `bfloat` on x86 (without AVX512-BF16) as a call to compiler-rt's
`__truncsfbf2` / `__truncdfbf2`, which neither libc nor libgcc_s export to a Python process. The
translator never emits such an `fptrunc` itself (it rounds with integer ops), but LLVM's
optimiser may form one; the JIT compiles this module once per process and registers its
functions as process symbols, so such calls resolve. Each helper rounds to nearest, ties to even.

`is_reserved` names the symbols the generated code may call besides the module's own functions:
libm (what the translator calls, and what LLVM lowers its intrinsics to), `memcpy` & co.,
`aligned_alloc`/`free`, compiler-rt helpers (`__*`) and intrinsics (`llvm.*`). The translator
never gives a function of the module such a name (see `llvm.function_symbols`).
"""

from __future__ import annotations

from llvmlite import ir

from oi_compiler.backend.llvm_types import F32, BFloatType, round_to_bf16


def runtime_module() -> ir.Module:
    """`__truncsfbf2(float) -> bfloat` and `__truncdfbf2(double) -> bfloat` (via float)."""
    module = ir.Module(name="oi_compiler_runtime")
    for name, source in (("__truncsfbf2", F32), ("__truncdfbf2", ir.DoubleType())):
        function = ir.Function(module, ir.FunctionType(BFloatType(), [source]), name)
        builder = ir.IRBuilder(function.append_basic_block("entry"))
        value = function.args[0]
        if value.type != F32:
            value = builder.fptrunc(value, F32)
        builder.ret(round_to_bf16(builder, value))
    return module


RUNTIME_SYMBOLS = ("__truncsfbf2", "__truncdfbf2")

_LIBM = """exp exp2 exp10 expm1 log log2 log10 log1p logb sqrt cbrt hypot sin cos tan sincos sinpi cospi
    asin acos atan atan2 sinh cosh tanh asinh acosh atanh erf erfc tgamma lgamma pow powi fabs floor
    ceil round roundeven trunc rint nearbyint lround llround lrint llrint copysign fma fmin fmax
    fminimum fmaximum fminimum_num fmaximum_num fdim ldexp frexp modf fmod remainder nextafter""".split()
_LIBC = """memcpy memmove memset memcmp bcmp bzero malloc calloc realloc free aligned_alloc
    posix_memalign abort""".split()
RESERVED_SYMBOLS = frozenset([f"{name}{suffix}" for name in _LIBM for suffix in ("", "f", "l")] + _LIBC)


def is_reserved(name: str) -> bool:
    """Whether `name` is a symbol the generated code may call that the module does not define."""
    return name in RESERVED_SYMBOLS or name.startswith(("llvm.", "__"))
