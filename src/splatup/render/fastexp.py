"""A vectorisable float32 exp for numba kernels.

llvmlite ships no SVML here, so ``math.exp`` stays scalar inside SIMD loops. This is the Cephes ``expf``
polynomial (about 1 ulp on [-87, 0]) with the power of two built by an integer bitcast, which LLVM
vectorises to AVX2. Inputs below -87 are clamped to -87 (exp(-87) ~ 1.6e-38, far below any threshold).
"""

from __future__ import annotations

import numpy as np
from llvmlite import ir
from numba import njit, types
from numba.extending import intrinsic

f32 = np.float32

_LOG2E = f32(1.4426950408889634)
_LN2HI = f32(0.693359375)
_LN2LO = f32(-2.12194440e-4)
_P0 = f32(1.9875691500e-4)
_P1 = f32(1.3981999507e-3)
_P2 = f32(8.3334519073e-3)
_P3 = f32(4.1665795894e-2)
_P4 = f32(1.6666665459e-1)
_P5 = f32(5.0000001201e-1)
_XLO = f32(-87.0)
_XHI = f32(88.0)
_HALF = f32(0.5)
_ONE = f32(1.0)


@intrinsic
def _pow2i(typingctx, x):
    """2**x for a float32 ``x`` holding an integer in [-126, 127] (fptosi, add bias, shift, bitcast)."""
    sig = types.float32(types.float32)

    def codegen(context, builder, signature, args):
        i32 = ir.IntType(32)
        n = builder.fptosi(args[0], i32)
        n = builder.add(n, ir.Constant(i32, 127))
        n = builder.shl(n, ir.Constant(i32, 23))
        return builder.bitcast(n, ir.FloatType())

    return sig, codegen


@njit(inline="always", fastmath=True)
def fexp(x):
    """exp(x) for float32 x; accurate to about 1 ulp for x in [-87, 88]."""
    x = min(max(x, _XLO), _XHI)
    fx = np.floor(x * _LOG2E + _HALF)  # np.floor keeps float32 (math.floor would promote to int64)
    r = x - fx * _LN2HI - fx * _LN2LO
    r2 = r * r
    p = ((((_P0 * r + _P1) * r + _P2) * r + _P3) * r + _P4) * r + _P5
    p = p * r2 + r + _ONE
    return p * _pow2i(fx)
