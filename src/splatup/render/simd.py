"""Explicit float32 SIMD vectors for numba kernels: a value type that LLVM keeps in vector registers.

``Vec`` is an LLVM ``<LANES x float>``; ``Mask`` is ``<LANES x i1>``. Inside ``@njit`` code they behave like
numbers: ``+ - *`` and unary ``-`` (with a vector or a scalar, which is broadcast), comparisons giving masks,
``& | ~`` on masks, and the functions below (``fma``, ``vmin``, ``select``, ``vexp``, loads and stores...).

Why not numba's auto-vectorisation: a compositing step keeps ~18 per-lane accumulators live across a loop over
list entries. Written as arrays indexed by lane, LLVM reloads and stores all of them every entry, versions the
loop with run-time overlap checks, and on AVX-512 CPUs whose LLVM tuning prefers 256-bit vectors it splits a
16-lane block into two halves. A vector *value* carried by the loop stays in registers, needs no overlap checks
and is one zmm register on AVX-512 (two ymm on AVX2). The arithmetic is exactly what is written: every
operation is one IEEE float32 operation rounded once, ``fma`` is the only fused one, and no fast-math flag lets
LLVM reassociate, contract or reorder it. The same source therefore gives the same bits wherever it is
inlined (forward kernels and the backward's replay) and however LLVM schedules it.

``LANES`` is 16 where the host CPU has AVX-512F and 8 otherwise; ``SPLATUP_SIMD_LANES`` (8 or 16) overrides it.
"""

from __future__ import annotations

import operator
import os

import llvmlite.binding as llvm
import numpy as np
from llvmlite import ir
from numba import njit, types
from numba.core import cgutils
from numba.extending import intrinsic, models, overload, register_model


def _host_lanes() -> int:
    env = os.environ.get("SPLATUP_SIMD_LANES")
    if env is not None:
        if env not in ("8", "16"):
            raise ValueError(f"SPLATUP_SIMD_LANES must be 8 or 16, got {env!r}")
        return int(env)
    try:
        features = llvm.get_host_cpu_features()
        return 16 if features.get("avx512f", False) else 8
    except RuntimeError:  # features not available on this platform
        return 8


LANES = _host_lanes()

_f32 = ir.FloatType()
_i32 = ir.IntType(32)
_VT = ir.VectorType(_f32, LANES)
_MT = ir.VectorType(ir.IntType(1), LANES)
_IT = ir.VectorType(_i32, LANES)
_BITS = ir.IntType(LANES)


class VecType(types.Type):
    """LANES float32 values in one SIMD register (or register pair)."""

    def __init__(self) -> None:
        super().__init__(name=f"f32x{LANES}")


class MaskType(types.Type):
    """LANES booleans, the result of a vector comparison."""

    def __init__(self) -> None:
        super().__init__(name=f"mask{LANES}")


class IVecType(types.Type):
    """LANES int32 values in one SIMD register (or register pair)."""

    def __init__(self) -> None:
        super().__init__(name=f"i32x{LANES}")


Vec = VecType()
Mask = MaskType()
IVec = IVecType()


@register_model(VecType)
class _VecModel(models.PrimitiveModel):
    def __init__(self, dmm, fe_type):
        super().__init__(dmm, fe_type, _VT)


@register_model(MaskType)
class _MaskModel(models.PrimitiveModel):
    def __init__(self, dmm, fe_type):
        super().__init__(dmm, fe_type, _MT)


@register_model(IVecType)
class _IVecModel(models.PrimitiveModel):
    def __init__(self, dmm, fe_type):
        super().__init__(dmm, fe_type, _IT)


def _intrinsic_fn(builder, name: str, ret: ir.Type, args: list[ir.Type]):
    return cgutils.get_or_insert_function(builder.module, ir.FunctionType(ret, args), name)


def _splat_ir(builder, x):
    v = builder.insert_element(ir.Constant(_VT, ir.Undefined), x, ir.Constant(_i32, 0))
    return builder.shuffle_vector(v, ir.Constant(_VT, ir.Undefined), ir.Constant(_IT, [0] * LANES))


def _is_f32_1d(arr) -> bool:
    return isinstance(arr, types.Array) and arr.dtype == types.float32 and arr.ndim == 1 and arr.layout in "CA"


def _elem_ptr(context, builder, arrty, arr, idx, idxty):
    ary = context.make_array(arrty)(context, builder, arr)
    i = context.cast(builder, idx, idxty, types.intp)
    return builder.gep(ary.data, [i])


# ------------------------------------------------------------------------------------------- construction
@intrinsic
def splat(typingctx, x):
    """x (any real scalar, converted to float32) in every lane."""
    if not isinstance(x, (types.Float, types.Integer)):
        return None

    def codegen(context, builder, signature, args):
        return _splat_ir(builder, context.cast(builder, args[0], signature.args[0], types.float32))

    return Vec(x), codegen


@intrinsic
def lane_index(typingctx):
    """(0, 1, ..., LANES - 1) as float32."""

    def codegen(context, builder, signature, args):
        return ir.Constant(_VT, [float(i) for i in range(LANES)])

    return Vec(), codegen


# ------------------------------------------------------------------------------------------ memory access
@intrinsic
def vload(typingctx, arr, idx):
    """arr[idx : idx + LANES] of a contiguous 1-D float32 array (no bounds check)."""
    if not _is_f32_1d(arr) or not isinstance(idx, types.Integer):
        return None

    def codegen(context, builder, signature, args):
        p = _elem_ptr(context, builder, signature.args[0], args[0], args[1], signature.args[1])
        return builder.load(builder.bitcast(p, _VT.as_pointer()), align=4)

    return Vec(arr, idx), codegen


@intrinsic
def vstore(typingctx, arr, idx, v):
    """arr[idx : idx + LANES] = v (contiguous 1-D float32 array, no bounds check)."""
    if not _is_f32_1d(arr) or not isinstance(idx, types.Integer) or v != Vec:
        return None

    def codegen(context, builder, signature, args):
        p = _elem_ptr(context, builder, signature.args[0], args[0], args[1], signature.args[1])
        builder.store(args[2], builder.bitcast(p, _VT.as_pointer()), align=4)
        return context.get_dummy_value()

    return types.void(arr, idx, Vec), codegen


def _row_shuffle(builder, v, row: int, width: int):
    """Lanes row*width .. row*width + width - 1 of v as a <width x float>."""
    idx = ir.Constant(ir.VectorType(_i32, width), [row * width + p for p in range(width)])
    return builder.shuffle_vector(v, ir.Constant(_VT, ir.Undefined), idx)


@intrinsic
def store_rows(typingctx, arr, start, stride, v):
    """Lanes in rows of 4: row k (lanes 4k .. 4k + 3) is stored as 4 floats at arr[start + k stride]."""
    if not _is_f32_1d(arr) or v != Vec:
        return None

    def codegen(context, builder, signature, args):
        a, s0, st, x = args
        v4 = ir.VectorType(_f32, 4)
        s0 = context.cast(builder, s0, signature.args[1], types.intp)
        st = context.cast(builder, st, signature.args[2], types.intp)
        ary = context.make_array(signature.args[0])(context, builder, a)
        for row in range(LANES // 4):
            off = builder.add(s0, builder.mul(st, ir.Constant(s0.type, row)))
            p = builder.bitcast(builder.gep(ary.data, [off]), v4.as_pointer())
            builder.store(_row_shuffle(builder, x, row, 4), p, align=4)
        return context.get_dummy_value()

    return types.void(arr, start, stride, Vec), codegen


def _rgb_index(row: int) -> list[int]:
    """Positions in concat(r, g, b) of the 12 interleaved values r0 g0 b0 r1 ... of row ``row`` (lanes 4 row..)."""
    out = []
    for p in range(4):
        lane = 4 * row + p
        out += [lane, LANES + lane, 2 * LANES + lane]
    return out


def _concat3(builder, x, y, z):
    """concat(x, y, z, undef) as a <4 LANES x float>."""
    n2 = 2 * LANES
    xy = builder.shuffle_vector(x, y, ir.Constant(ir.VectorType(_i32, n2), list(range(n2))))
    zu = builder.shuffle_vector(z, ir.Constant(_VT, ir.Undefined),
                                ir.Constant(ir.VectorType(_i32, n2), list(range(LANES)) + [0] * LANES))
    return builder.shuffle_vector(xy, zu, ir.Constant(ir.VectorType(_i32, 2 * n2), list(range(2 * n2))))


@intrinsic
def store_rgb_rows(typingctx, arr, start, stride, r, g, b):
    """Three channel vectors interleaved as RGB in rows of 4 pixels: row k (lanes 4k .. 4k + 3) is stored as 12
    floats r g b r g b ... at arr[start + k stride] (an HWC image's flat view: start = 3 (y W + x), stride 3 W)."""
    if not _is_f32_1d(arr) or (r, g, b) != (Vec, Vec, Vec):
        return None

    def codegen(context, builder, signature, args):
        a, s0, st, x, y, z = args
        v12 = ir.VectorType(_f32, 12)
        s0 = context.cast(builder, s0, signature.args[1], types.intp)
        st = context.cast(builder, st, signature.args[2], types.intp)
        ary = context.make_array(signature.args[0])(context, builder, a)
        xyz = _concat3(builder, x, y, z)
        undef = ir.Constant(ir.VectorType(_f32, 4 * LANES), ir.Undefined)
        for row in range(LANES // 4):
            v = builder.shuffle_vector(xyz, undef, ir.Constant(ir.VectorType(_i32, 12), _rgb_index(row)))
            off = builder.add(s0, builder.mul(st, ir.Constant(s0.type, row)))
            builder.store(v, builder.bitcast(builder.gep(ary.data, [off]), v12.as_pointer()), align=4)
        return context.get_dummy_value()

    return types.void(arr, start, stride, Vec, Vec, Vec), codegen


@intrinsic
def load_rgb_rows(typingctx, arr, start, stride):
    """Inverse of :func:`store_rgb_rows`: (r, g, b) vectors from rows of 4 interleaved RGB pixels."""
    if not _is_f32_1d(arr):
        return None

    def codegen(context, builder, signature, args):
        a, s0, st = args
        v12 = ir.VectorType(_f32, 12)
        s0 = context.cast(builder, s0, signature.args[1], types.intp)
        st = context.cast(builder, st, signature.args[2], types.intp)
        ary = context.make_array(signature.args[0])(context, builder, a)
        chans = [ir.Constant(_VT, ir.Undefined) for _ in range(3)]
        for row in range(LANES // 4):
            off = builder.add(s0, builder.mul(st, ir.Constant(s0.type, row)))
            rv = builder.load(builder.bitcast(builder.gep(ary.data, [off]), v12.as_pointer()), align=4)
            for p in range(4):
                for c in range(3):
                    x = builder.extract_element(rv, ir.Constant(_i32, 3 * p + c))
                    chans[c] = builder.insert_element(chans[c], x, ir.Constant(_i32, 4 * row + p))
        return context.make_tuple(builder, signature.return_type, chans)

    return types.UniTuple(Vec, 3)(arr, start, stride), codegen


@intrinsic
def load_rows(typingctx, arr, start, stride):
    """Inverse of :func:`store_rows`."""
    if not _is_f32_1d(arr):
        return None

    def codegen(context, builder, signature, args):
        a, s0, st = args
        v4 = ir.VectorType(_f32, 4)
        s0 = context.cast(builder, s0, signature.args[1], types.intp)
        st = context.cast(builder, st, signature.args[2], types.intp)
        ary = context.make_array(signature.args[0])(context, builder, a)
        out = ir.Constant(_VT, ir.Undefined)
        for row in range(LANES // 4):
            off = builder.add(s0, builder.mul(st, ir.Constant(s0.type, row)))
            r = builder.load(builder.bitcast(builder.gep(ary.data, [off]), v4.as_pointer()), align=4)
            for p in range(4):
                out = builder.insert_element(out, builder.extract_element(r, ir.Constant(_i32, p)),
                                             ir.Constant(_i32, 4 * row + p))
        return out

    return Vec(arr, start, stride), codegen


# ---------------------------------------------------------------------------------------------- arithmetic
def _binary(name: str):
    @intrinsic
    def op(typingctx, a, b):
        if a != Vec or b != Vec:
            return None

        def codegen(context, builder, signature, args):
            return getattr(builder, name)(args[0], args[1])

        return Vec(Vec, Vec), codegen

    return op


vadd = _binary("fadd")
vsub = _binary("fsub")
vmul = _binary("fmul")
vdiv = _binary("fdiv")


@intrinsic
def _fma3(typingctx, a, b, c):
    if (a, b, c) != (Vec, Vec, Vec):
        return None

    def codegen(context, builder, signature, args):
        return builder.call(_intrinsic_fn(builder, f"llvm.fma.v{LANES}f32", _VT, [_VT] * 3), args)

    return Vec(Vec, Vec, Vec), codegen


def _unary_llvm(name: str):
    @intrinsic
    def op(typingctx, a):
        if a != Vec:
            return None

        def codegen(context, builder, signature, args):
            return builder.call(_intrinsic_fn(builder, f"llvm.{name}.v{LANES}f32", _VT, [_VT]), args)

        return Vec(Vec), codegen

    return op


vfloor = _unary_llvm("floor")
vceil = _unary_llvm("ceil")
vsqrt = _unary_llvm("sqrt")


def _compare(pred: str):
    @intrinsic
    def op(typingctx, a, b):
        if a != Vec or b != Vec:
            return None

        def codegen(context, builder, signature, args):
            return builder.fcmp_ordered(pred, args[0], args[1])

        return Mask(Vec, Vec), codegen

    return op


vlt = _compare("<")
vle = _compare("<=")
vgt = _compare(">")
vge = _compare(">=")


@intrinsic
def select(typingctx, m, a, b):
    """a where m, else b (per lane)."""
    if (m, a, b) != (Mask, Vec, Vec):
        return None

    def codegen(context, builder, signature, args):
        return builder.select(*args)

    return Vec(Mask, Vec, Vec), codegen


def _mask_binary(name: str):
    @intrinsic
    def op(typingctx, a, b):
        if (a, b) != (Mask, Mask):
            return None

        def codegen(context, builder, signature, args):
            return getattr(builder, name)(args[0], args[1])

        return Mask(Mask, Mask), codegen

    return op


mask_and = _mask_binary("and_")
mask_or = _mask_binary("or_")


@intrinsic
def mask_not(typingctx, a):
    if a != Mask:
        return None

    def codegen(context, builder, signature, args):
        return builder.not_(args[0])

    return Mask(Mask), codegen


@intrinsic
def mask_bits(typingctx, a):
    """The mask as an integer: bit l set when lane l is."""
    if a != Mask:
        return None

    def codegen(context, builder, signature, args):
        return builder.zext(builder.bitcast(args[0], _BITS), ir.IntType(64))

    return types.int64(Mask), codegen


@intrinsic
def all_zero(typingctx, a):
    """True when every lane of a is +0 or -0."""
    if a != Vec:
        return None

    def codegen(context, builder, signature, args):
        nz = builder.fcmp_unordered("!=", args[0], ir.Constant(_VT, [0.0] * LANES))
        bits = builder.bitcast(nz, _BITS)
        return builder.icmp_unsigned("==", bits, ir.Constant(_BITS, 0))

    return types.boolean(Vec), codegen


@intrinsic
def pow2i(typingctx, x):
    """2**x for float32 lanes that hold integers in [-126, 127] (convert, add the bias, shift into the exponent)."""
    if x != Vec:
        return None

    def codegen(context, builder, signature, args):
        n = builder.fptosi(args[0], _IT)
        n = builder.add(n, ir.Constant(_IT, [127] * LANES))
        n = builder.shl(n, ir.Constant(_IT, [23] * LANES))
        return builder.bitcast(n, _VT)

    return Vec(Vec), codegen


@intrinsic
def lane(typingctx, v, i):
    """Lane i of v as a float32."""
    if v != Vec or not isinstance(i, types.Integer):
        return None

    def codegen(context, builder, signature, args):
        return builder.extract_element(args[0], context.cast(builder, args[1], signature.args[1], types.int32))

    return types.float32(Vec, i), codegen


@intrinsic
def hsum(typingctx, v):
    """Sum of the lanes in a fixed pairwise order (halves added until one lane is left): the same bits on every
    machine and in every inlining context."""
    if v != Vec:
        return None

    def codegen(context, builder, signature, args):
        x = args[0]
        n = LANES
        while n > 1:
            h = n // 2
            lo = builder.shuffle_vector(x, ir.Constant(x.type, ir.Undefined),
                                        ir.Constant(ir.VectorType(_i32, h), list(range(h))))
            hi = builder.shuffle_vector(x, ir.Constant(x.type, ir.Undefined),
                                        ir.Constant(ir.VectorType(_i32, h), list(range(h, n))))
            x = builder.fadd(lo, hi)
            n = h
        return builder.extract_element(x, ir.Constant(_i32, 0))

    return types.float32(Vec), codegen


# ---------------------------------------------------------------------------------------------- operators
def _scalar(t) -> bool:
    return isinstance(t, (types.Float, types.Integer))


def _arith(op, fn):
    @overload(op, inline="always")
    def impl(a, b):
        if a == Vec and b == Vec:
            return lambda a, b: fn(a, b)
        if a == Vec and _scalar(b):
            return lambda a, b: fn(a, splat(b))
        if _scalar(a) and b == Vec:
            return lambda a, b: fn(splat(a), b)
        return None


for _op, _fn in ((operator.add, vadd), (operator.sub, vsub), (operator.mul, vmul), (operator.truediv, vdiv),
                 (operator.lt, vlt), (operator.le, vle), (operator.gt, vgt), (operator.ge, vge)):
    _arith(_op, _fn)


@overload(operator.neg, inline="always")
def _neg(a):
    if a == Vec:
        return lambda a: vsub(splat(np.float32(-0.0)), a)
    return None


@overload(operator.and_, inline="always")
def _and(a, b):
    if a == Mask and b == Mask:
        return lambda a, b: mask_and(a, b)
    return None


@overload(operator.or_, inline="always")
def _or(a, b):
    if a == Mask and b == Mask:
        return lambda a, b: mask_or(a, b)
    return None


@overload(operator.invert, inline="always")
def _invert(a):
    if a == Mask:
        return lambda a: mask_not(a)
    return None


def _vecify(x):
    """Typing helper: how a scalar or vector argument becomes a vector."""
    if x == Vec:
        return lambda x: x
    if _scalar(x):
        return lambda x: splat(x)
    return None


def as_vec(x):
    """x as a vector (scalars are broadcast)."""


@overload(as_vec, inline="always")
def _as_vec(x):
    return _vecify(x)


def fma(a, b, c):
    """a b + c rounded once (scalars are broadcast)."""


@overload(fma, inline="always")
def _fma(a, b, c):
    if all(t == Vec or _scalar(t) for t in (a, b, c)):
        return lambda a, b, c: _fma3(as_vec(a), as_vec(b), as_vec(c))
    return None


def vmin(a, b):
    """Lane-wise a if a < b else b (the x86 vminps rule; NaN-free inputs in the kernels)."""


@overload(vmin, inline="always")
def _vmin(a, b):
    if (a == Vec or _scalar(a)) and (b == Vec or _scalar(b)):
        return lambda a, b: select(vlt(as_vec(a), as_vec(b)), as_vec(a), as_vec(b))
    return None


def vmax(a, b):
    """Lane-wise a if a > b else b."""


@overload(vmax, inline="always")
def _vmax(a, b):
    if (a == Vec or _scalar(a)) and (b == Vec or _scalar(b)):
        return lambda a, b: select(vgt(as_vec(a), as_vec(b)), as_vec(a), as_vec(b))
    return None


# ----------------------------------------------------------------------------------------- integer vectors
@intrinsic
def to_int(typingctx, v):
    """Lanes of v converted to int32 (truncation toward zero; the values must fit)."""
    if v != Vec:
        return None

    def codegen(context, builder, signature, args):
        return builder.fptosi(args[0], _IT)

    return IVec(Vec), codegen


def _int_binary(name: str):
    @intrinsic
    def op(typingctx, a, b):
        if a != IVec or not (b == IVec or isinstance(b, types.Integer)):
            return None

        def codegen(context, builder, signature, args):
            y = args[1]
            if signature.args[1] != IVec:
                y = _splat_int(builder, context.cast(builder, y, signature.args[1], types.int32))
            return getattr(builder, name)(args[0], y)

        return IVec(a, b), codegen

    return op


def _splat_int(builder, x):
    v = builder.insert_element(ir.Constant(_IT, ir.Undefined), x, ir.Constant(_i32, 0))
    return builder.shuffle_vector(v, ir.Constant(_IT, ir.Undefined), ir.Constant(_IT, [0] * LANES))


ishl = _int_binary("shl")
iand = _int_binary("and_")
ior = _int_binary("or_")


@intrinsic
def inonzero(typingctx, a):
    """Lanes of a that are not 0."""
    if a != IVec:
        return None

    def codegen(context, builder, signature, args):
        return builder.icmp_signed("!=", args[0], ir.Constant(_IT, [0] * LANES))

    return Mask(IVec), codegen


@intrinsic
def iselect(typingctx, m, a, b):
    """a where m, else b (int32 lanes)."""
    if (m, a, b) != (Mask, IVec, IVec):
        return None

    def codegen(context, builder, signature, args):
        return builder.select(*args)

    return IVec(Mask, IVec, IVec), codegen


@intrinsic
def izero(typingctx):
    """An int32 vector of zeros."""

    def codegen(context, builder, signature, args):
        return ir.Constant(_IT, [0] * LANES)

    return IVec(), codegen


# --------------------------------------------------------------------------------------------------- exp
_LOG2E = np.float32(1.4426950408889634)
_LN2HI = np.float32(0.693359375)
_LN2LO = np.float32(-2.12194440e-4)
_EXP_P = tuple(np.float32(c) for c in (1.9875691500e-4, 1.3981999507e-3, 8.3334519073e-3, 4.1665795894e-2,
                                        1.6666665459e-1, 5.0000001201e-1))
_EXP_HI = np.float32(88.0)
_HALF = np.float32(0.5)
_ONE = np.float32(1.0)


@njit(inline="always")
def vexp(x, lo):
    """exp(max(x, lo)) for lo >= -87 and x <= 88: the Cephes expf polynomial (about 1 ulp) with the power of two
    built in the exponent bits. The floor ``lo`` is the caller's: results below exp(lo) are not used, and a floor
    well above -87 keeps every product of the result normal (subnormal arithmetic is slow on many CPUs)."""
    x = vmin(vmax(x, lo), _EXP_HI)
    fx = vfloor(fma(x, _LOG2E, _HALF))
    r = fma(fx, -_LN2LO, fma(fx, -_LN2HI, x))
    p = fma(_EXP_P[0], r, _EXP_P[1])
    p = fma(p, r, _EXP_P[2])
    p = fma(p, r, _EXP_P[3])
    p = fma(p, r, _EXP_P[4])
    p = fma(p, r, _EXP_P[5])
    p = fma(p, r * r, r + _ONE)
    return p * pow2i(fx)
