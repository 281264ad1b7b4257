"""Numba kernels of the 3DGS-style SSIM: separable 11-tap Gaussian passes, forward value and backward.

Layout. Images are [B, H, W*C] views (HWC rows flattened, channels interleaved): flat index t of a row holds channel
t % C of pixel t // C, so a horizontal tap k is the offset k*C and every pass is a contiguous loop over t. Each
parallel work item owns a range of rows of one image. It blurs each input row horizontally (from a padded copy of
the row) into a ring of RING horizontally blurred rows, and forms the vertical 11-tap sums from the ring, two output
rows at a time (12 ring rows read for 2 output rows). The 11 taps are summed in registers, the symmetric pairs
first (the window is symmetric: g[k] = g[10 - k] exactly). The first rows of a range re-blur 10 rows of halo.

Zero "same" padding in centred coordinates. The moments are taken of u = x - ka, v = y - kb (ka, kb the per-image,
per-channel means, treated as constants), so the padding, which is 0 in x, reads -ka in u (and ka^2, kb^2, ka kb
in u^2, v^2, u v). The padded copy of a row carries those values in its 5-pixel guards, and a row outside the
image is the constant pad row (its horizontal blur, the window summing to 1). That is exactly the zero-padded
2D correlation of x, expressed about ka.

Per pixel, with m_a = G*u, e_aa = G*(u^2), e_ab = G*(u v) (likewise for b):
    var_a = e_aa - m_a^2, cov = e_ab - m_a m_b, mu_a = m_a + ka,
    A1 = 2 mu_a mu_b + C1, A2 = 2 cov + C2, B1 = mu_a^2 + mu_b^2 + C1, B2 = var_a + var_b + C2,
    S = A1 A2 / (B1 B2).
Partials of S in the local statistics (the coefficient maps the forward stores for the backward):
    beta    = dS/de_aa = dS/de_bb = -S / B2
    gamma   = dS/de_ab = 2 A1 / (B1 B2)
    alpha_a = dS/dm_a  = 2 mu_b A2 / (B1 B2) - 2 mu_a S / B1 - 2 m_a beta - m_b gamma
    alpha_b = dS/dm_b  = 2 mu_a A2 / (B1 B2) - 2 mu_b S / B1 - 2 m_b beta - m_a gamma
(alpha holds the direct terms through mu_a in A1 and B1 plus the chain terms var_a = e_aa - m_a^2, cov = e_ab -
m_a m_b). With m_a = G*u, e_aa = G*(u^2), e_ab = G*(u v) and G* the zero-padded correlation, whose adjoint is the
zero-padded correlation with the flipped window, i.e. G* itself, L = sum_q w S_q has
    dL/dx = w (G*(alpha_a) + 2 u G*(beta) + v G*(gamma)),  dL/dy = w (G*(alpha_b) + 2 v G*(beta) + u G*(gamma)).
The centring constants need no term of their own: for every x, S computed about any constant ka equals S computed
about 0 (the statistics are shift-invariant, the padding shifted with them), so S does not depend on ka and the
derivative at fixed ka is the total derivative.

Inlining: the hot helpers are inlined at numba IR level (inline="always": 20-30% faster than leaving them to
LLVM); the row producers _stat_row and _coef_row are not (no measured speed difference, a third less compile time).

Precision: the blurs and the per-pixel algebra run in the dtype of ``ka`` (the wrapper passes float64 for every
input dtype). Inputs x, y and the outputs (coefficient maps, gradients) may be float32 or float64.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

RADIUS = 5
TAPS = 2 * RADIUS + 1
RING = TAPS + 1  # horizontally blurred rows kept: the 12 that two consecutive output rows read
N_STATS = 5  # m_a, m_b, e_aa, e_bb, e_ab
N_COEF = 4  # alpha_a, alpha_b, beta, gamma


# ---------------------------------------------------------------------------------------------- the two passes
@njit(inline="always", fastmath=True)
def _taps(r0, r1, r2, r3, r4, r5, r6, r7, r8, r9, r10, g, out):
    """out[t] = sum_k g[k] r_k[t] for a symmetric 11-tap window g."""
    g0, g1, g2, g3, g4, g5 = g[0], g[1], g[2], g[3], g[4], g[5]
    for t in range(out.size):
        out[t] = (g0 * (r0[t] + r10[t]) + g1 * (r1[t] + r9[t]) + g2 * (r2[t] + r8[t]) + g3 * (r3[t] + r7[t])
                  + g4 * (r4[t] + r6[t]) + g5 * r5[t])


@njit(inline="always", fastmath=True)
def _taps_pair(r0, r1, r2, r3, r4, r5, r6, r7, r8, r9, r10, r11, g, out0, out1):
    """Two consecutive outputs of the window over 12 rows: out0 from r0..r10, out1 from r1..r11."""
    g0, g1, g2, g3, g4, g5 = g[0], g[1], g[2], g[3], g[4], g[5]
    for t in range(out0.size):
        a1, a2, a3, a4, a5, a6, a7, a8, a9, a10 = r1[t], r2[t], r3[t], r4[t], r5[t], r6[t], r7[t], r8[t], r9[t], r10[t]
        out0[t] = (g0 * (r0[t] + a10) + g1 * (a1 + a9) + g2 * (a2 + a8) + g3 * (a3 + a7) + g4 * (a4 + a6) + g5 * a5)
        out1[t] = (g0 * (a1 + r11[t]) + g1 * (a2 + a10) + g2 * (a3 + a9) + g3 * (a4 + a8) + g4 * (a5 + a7)
                   + g5 * a6)


@njit(inline="always", fastmath=True)
def _blur_row(s, C, g, out):
    """Horizontal pass: out[t] = sum_k g[k] s[t + k C], s the row padded by RADIUS pixels on each side."""
    _taps(s, s[C:], s[2 * C:], s[3 * C:], s[4 * C:], s[5 * C:], s[6 * C:], s[7 * C:], s[8 * C:], s[9 * C:],
          s[10 * C:], g, out)


@njit(inline="always", fastmath=True)
def _vertical(ring, i, pair, q, g, out0, out1):
    """Vertical pass of map q for output row i (into out0) and, if pair, row i + 1 (into out1).
    Ring slot r % RING holds the horizontal pass of row r (rows outside the image: their padding value)."""
    b = i - RADIUS + RING
    if pair:
        _taps_pair(ring[b % RING, q], ring[(b + 1) % RING, q], ring[(b + 2) % RING, q], ring[(b + 3) % RING, q],
                   ring[(b + 4) % RING, q], ring[(b + 5) % RING, q], ring[(b + 6) % RING, q],
                   ring[(b + 7) % RING, q], ring[(b + 8) % RING, q], ring[(b + 9) % RING, q],
                   ring[(b + 10) % RING, q], ring[(b + 11) % RING, q], g, out0, out1)
    else:
        _taps(ring[b % RING, q], ring[(b + 1) % RING, q], ring[(b + 2) % RING, q], ring[(b + 3) % RING, q],
              ring[(b + 4) % RING, q], ring[(b + 5) % RING, q], ring[(b + 6) % RING, q], ring[(b + 7) % RING, q],
              ring[(b + 8) % RING, q], ring[(b + 9) % RING, q], ring[(b + 10) % RING, q], g, out0)


@njit(inline="always")
def _row_range(item, n_parts, H):
    """(image, first row, one past the last row) of parallel work item ``item``."""
    b = item // n_parts
    part = item % n_parts
    return b, H * part // n_parts, H * (part + 1) // n_parts


@njit(inline="always")
def _channel_rows(ka, kb, b, C, n, dt):
    """ka[b], kb[b] repeated along a flattened row: [n] each, entry t = channel t % C."""
    kar = np.empty(n, dt)
    kbr = np.empty(n, dt)
    for t in range(n):
        kar[t] = ka[b, t % C]
        kbr[t] = kb[b, t % C]
    return kar, kbr


# ---------------------------------------------------------------------------------------------- forward
@njit(fastmath=True, cache=True)
def channel_means(x, C, out):
    """out[b, c] = mean of channel c of image b (float64); x: [B, H, W*C].

    Single-threaded on purpose (a pass over the image takes ~0.1 ms at 400x400x3; a parallel region would cost more
    in thread wake-ups on a busy machine). Rows are summed into a row-long buffer (vectorised), folded by channel.
    """
    B, H, n = x.shape
    acc = np.empty(n, np.float64)
    for b in range(B):
        acc[:] = 0.0
        for i in range(H):
            xr = x[b, i]
            for t in range(n):
                acc[t] += xr[t]
        for c in range(C):
            out[b, c] = 0.0
        for t in range(n):
            out[b, t % C] += acc[t]
        for c in range(C):
            out[b, c] /= H * (n // C)


@njit(fastmath=True)
def _stat_row(x, y, b, r, H, C, ka, kb, kar, kbr, g, s, dst):
    """Horizontal blurs of u, v, u^2, v^2, u v of image row r (or the pad row if r is outside) into dst [5, n]."""
    n = dst.shape[1]
    if r < 0 or r >= H:
        for t in range(n):
            a = kar[t]
            c = kbr[t]
            dst[0, t] = -a
            dst[1, t] = -c
            dst[2, t] = a * a
            dst[3, t] = c * c
            dst[4, t] = a * c
        return
    g0 = RADIUS * C
    for t in range(g0):  # guards: the zero padding of x, y in centred coordinates
        a = ka[b, t % C]
        c = kb[b, t % C]
        for o in (t, g0 + n + t):
            s[0, o] = -a
            s[1, o] = -c
            s[2, o] = a * a
            s[3, o] = c * c
            s[4, o] = a * c
    xr = x[b, r]
    yr = y[b, r]
    s0 = s[0, g0:]
    s1 = s[1, g0:]
    s2 = s[2, g0:]
    s3 = s[3, g0:]
    s4 = s[4, g0:]
    for t in range(n):
        u = xr[t] - kar[t]
        v = yr[t] - kbr[t]
        s0[t] = u
        s1[t] = v
        s2[t] = u * u
        s3[t] = v * v
        s4[t] = u * v
    for q in range(N_STATS):
        _blur_row(s[q], C, g, dst[q])


@njit(inline="always", fastmath=True)
def _ssim_terms(m, kar, kbr, t, c1, c2, two):
    """At position t of a row with statistics m [5, n] (moments about the centring constants kar, kbr): the means
    mu_a, mu_b and the SSIM factors A1 = 2 mu_a mu_b + C1, A2 = 2 cov + C2, B1 = mu_a^2 + mu_b^2 + C1,
    B2 = var_a + var_b + C2; also the centred means m_a, m_b."""
    mat = m[0][t]
    mbt = m[1][t]
    mua = mat + kar[t]
    mub = mbt + kbr[t]
    a1 = two * mua * mub + c1
    a2 = two * (m[4][t] - mat * mbt) + c2
    b1 = mua * mua + mub * mub + c1
    b2 = m[2][t] - mat * mat + m[3][t] - mbt * mbt + c2
    return mat, mbt, mua, mub, a1, a2, b1, b2


@njit(inline="always", fastmath=True)
def _ssim_row(m, kar, kbr, consts, want_coef, ca, cb, cbeta, cgamma):
    """Sum over one row of the SSIM map from its statistics m [5, n]; with want_coef also its coefficient rows."""
    c1, c2, one, two = consts[0], consts[1], consts[2], consts[3]
    n = m[0].size
    acc = 0.0
    if want_coef:
        for t in range(n):
            mat, mbt, mua, mub, a1, a2, b1, b2 = _ssim_terms(m, kar, kbr, t, c1, c2, two)
            d = one / (b1 * b2)
            sv = a1 * a2 * d
            acc += sv
            beta = -sv / b2
            gamma = two * a1 * d
            p = two * a2 * d  # dS/dmu_a through A1 is p mu_b
            qq = two * sv / b1  # dS/dmu_a through B1 is -qq mu_a
            ca[t] = p * mub - qq * mua - two * mat * beta - mbt * gamma
            cb[t] = p * mua - qq * mub - two * mbt * beta - mat * gamma
            cbeta[t] = beta
            cgamma[t] = gamma
    else:
        for t in range(n):
            _, _, _, _, a1, a2, b1, b2 = _ssim_terms(m, kar, kbr, t, c1, c2, two)
            acc += a1 * a2 / (b1 * b2)
    return acc


@njit(parallel=True, fastmath=True, cache=True)
def ssim_forward(x, y, ka, kb, g, consts, C, n_parts, row_sum, coef, want_coef):
    """SSIM map row sums and (optionally) the coefficient maps.

    x, y: [B, H, W*C] float32/float64, C-contiguous. ka, kb: [B, C] centring constants; g: [11] window taps;
    consts: [C1, C2, 1, 2] (the last three in the accumulation dtype, that of ka). n_parts: row ranges per image
    (B * n_parts parallel work items). Outputs: row_sum [B, H] float64, the sum of the SSIM map over each row's
    W*C entries; coef [4, B, H, W*C] (alpha_a, alpha_b, beta, gamma), written only if want_coef (any float dtype).
    """
    B, H, n = x.shape
    dt = ka.dtype
    for item in prange(B * n_parts):
        b, i0, i1 = _row_range(item, n_parts, H)
        if i1 <= i0:
            continue
        kar, kbr = _channel_rows(ka, kb, b, C, n, dt)
        s = np.empty((N_STATS, n + 2 * RADIUS * C), dt)
        ring = np.empty((RING, N_STATS, n), dt)
        m0 = np.empty((N_STATS, n), dt)
        m1 = np.empty((N_STATS, n), dt)
        for r in range(i0 - RADIUS, i0 + RADIUS):
            _stat_row(x, y, b, r, H, C, ka, kb, kar, kbr, g, s, ring[(r + RING) % RING])
        for i in range(i0, i1, 2):
            pair = i + 1 < i1
            for r in range(i + RADIUS, i + RADIUS + 1 + pair):
                _stat_row(x, y, b, r, H, C, ka, kb, kar, kbr, g, s, ring[r % RING])
            for q in range(N_STATS):
                _vertical(ring, i, pair, q, g, m0[q], m1[q])
            for j in range(1 + pair):
                row = i + j
                m = m0 if j == 0 else m1
                if want_coef:
                    row_sum[b, row] = _ssim_row(m, kar, kbr, consts, True, coef[0, b, row], coef[1, b, row],
                                                coef[2, b, row], coef[3, b, row])
                else:
                    row_sum[b, row] = _ssim_row(m, kar, kbr, consts, False, m[0], m[0], m[0], m[0])


# ---------------------------------------------------------------------------------------------- backward
@njit(fastmath=True)
def _coef_row(coef, b, r, H, C, g, s, use, dst):
    """Horizontal blurs of the coefficient maps in use of row r (zero outside the image) into dst [4, n].
    s: [n + 2 RADIUS C] scratch whose guards are zero (the zero padding of the coefficient maps)."""
    n = dst.shape[1]
    g0 = RADIUS * C
    for q in range(N_COEF):
        if not use[q]:
            continue
        d = dst[q]
        if r < 0 or r >= H:
            for t in range(n):
                d[t] = 0
            continue
        sq = s[g0:]
        src = coef[q, b, r]
        for t in range(n):
            sq[t] = src[t]
        _blur_row(s, C, g, d)


@njit(parallel=True, fastmath=True, cache=True)
def ssim_backward(x, y, ka, kb, coef, g, consts, scale, C, n_parts, gx, gy, want_x, want_y):
    """Gradients of sum_b scale[b] * (sum of the SSIM map of image b) with respect to x and y.

    x, y, ka, kb, g, consts, C, n_parts: as given to :func:`ssim_forward`; coef: [4, B, H, W*C] as it wrote them;
    scale: [B] (accumulation dtype). gx, gy: [B, H, W*C] outputs, written if want_x, want_y respectively.
    """
    B, H, n = x.shape
    dt = ka.dtype
    two = consts[3]
    use = np.array([want_x, want_y, True, True])
    for item in prange(B * n_parts):
        b, i0, i1 = _row_range(item, n_parts, H)
        if i1 <= i0:
            continue
        kar, kbr = _channel_rows(ka, kb, b, C, n, dt)
        s = np.zeros(n + 2 * RADIUS * C, dt)
        ring = np.empty((RING, N_COEF, n), dt)
        m0 = np.empty((N_COEF, n), dt)
        m1 = np.empty((N_COEF, n), dt)
        w = scale[b]
        for r in range(i0 - RADIUS, i0 + RADIUS):
            _coef_row(coef, b, r, H, C, g, s, use, ring[(r + RING) % RING])
        for i in range(i0, i1, 2):
            pair = i + 1 < i1
            for r in range(i + RADIUS, i + RADIUS + 1 + pair):
                _coef_row(coef, b, r, H, C, g, s, use, ring[r % RING])
            for q in range(N_COEF):
                if use[q]:
                    _vertical(ring, i, pair, q, g, m0[q], m1[q])
            for j in range(1 + pair):
                row = i + j
                m = m0 if j == 0 else m1
                xr = x[b, row]
                yr = y[b, row]
                gbeta = m[2]
                ggamma = m[3]
                if want_x:
                    ga = m[0]
                    o = gx[b, row]
                    for t in range(n):
                        u = xr[t] - kar[t]
                        v = yr[t] - kbr[t]
                        o[t] = w * (ga[t] + two * u * gbeta[t] + v * ggamma[t])
                if want_y:
                    gb = m[1]
                    o = gy[b, row]
                    for t in range(n):
                        u = xr[t] - kar[t]
                        v = yr[t] - kbr[t]
                        o[t] = w * (gb[t] + two * v * gbeta[t] + u * ggamma[t])
