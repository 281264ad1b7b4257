"""Reference real spherical harmonics, built from the associated-Legendre recurrence (no hard-coded table).

The fast path (:func:`splatup.gaussians.eval_sh`) spells out INRIA 3DGS's 16 basis polynomials and constants.
This twin derives them instead, for any degree:

- complex SH with the Condon-Shortley phase, Y_l^m = K_lm P_l^m(cos theta) e^{i m phi},
  K_lm = sqrt((2l + 1) / (4 pi) (l - m)! / (l + m)!);
- the INRIA basis of index k = l^2 + l + m is Y_l^0 for m = 0, sqrt(2) Re Y_l^m for m > 0 and
  sqrt(2) Im Y_l^|m| for m < 0 (this is the textbook real SH times (-1)^m, which is where INRIA's negative
  signs come from: -C1 y, +C1 z, -C1 x, ...);
- written as homogeneous polynomials (solid harmonics) in (x, y, z): sin^m(theta) e^{i m phi} = (x + i y)^m on
  the unit sphere, and P_l^m(z) = sin^m(theta) Q_l^m(z) with Q from the three-term recurrence in which the
  implicit 1 = x^2 + y^2 + z^2 is kept as r^2. On unit vectors this is the ordinary SH; at d = 0 every
  degree >= 1 term vanishes, as in INRIA's polynomials.

Everything is plain torch, differentiable, and runs in the dtype of its inputs.
"""

from __future__ import annotations

import math

import torch


def sh_basis(dirs: torch.Tensor, degree: int) -> torch.Tensor:
    """INRIA-convention real SH basis up to ``degree`` at directions ``dirs``.

    Args:
        dirs: [N, 3] unit vectors (x, y, z).
        degree: maximum band l (>= 0).

    Returns:
        [N, (degree + 1)^2] basis values, column k = l^2 + l + m.
    """
    x, y, z = dirs.unbind(-1)
    r2 = x * x + y * y + z * z
    n = dirs.shape[0]
    cols: list[torch.Tensor | None] = [None] * (degree + 1) ** 2
    # (x + i y)^m = cm + i sm, m = 0..degree
    cm, sm = [torch.ones_like(x)], [torch.zeros_like(x)]
    for _ in range(degree):
        c, s = cm[-1], sm[-1]
        cm.append(c * x - s * y)
        sm.append(c * y + s * x)
    for m in range(degree + 1):
        # Q_m^m = (-1)^m (2m - 1)!!, Q_{m+1}^m = (2m + 1) z Q_m^m,
        # Q_l^m = ((2l - 1) z Q_{l-1}^m - (l + m - 1) r^2 Q_{l-2}^m) / (l - m)
        double_fact = math.prod(range(2 * m - 1, 0, -2)) if m > 0 else 1
        q_prev2 = None
        q_prev = torch.full((n,), (-1.0) ** m * double_fact, dtype=dirs.dtype, device=dirs.device)
        for l in range(m, degree + 1):
            if l == m:
                q = q_prev
            elif l == m + 1:
                q = (2 * m + 1) * z * q_prev
            else:
                q = ((2 * l - 1) * z * q_prev - (l + m - 1) * r2 * q_prev2) / (l - m)
            if l > m:
                q_prev2, q_prev = q_prev, q
            k_lm = math.sqrt((2 * l + 1) / (4 * math.pi) * math.factorial(l - m) / math.factorial(l + m))
            if m == 0:
                cols[l * l + l] = k_lm * q
            else:
                cols[l * l + l + m] = math.sqrt(2.0) * k_lm * q * cm[m]
                cols[l * l + l - m] = math.sqrt(2.0) * k_lm * q * sm[m]
    return torch.stack(cols, dim=-1)  # type: ignore[arg-type]


def eval_sh(sh: torch.Tensor, dirs: torch.Tensor) -> torch.Tensor:
    """SH sum before the +0.5 offset: sum_k basis_k(dir) sh[:, k].

    Args:
        sh: [N, K, C] coefficients, K = (degree + 1)^2.
        dirs: [N, 3] unit directions.

    Returns:
        [N, C].
    """
    k = sh.shape[1]
    degree = math.isqrt(k) - 1
    if (degree + 1) ** 2 != k:
        raise ValueError(f"reference.eval_sh: {k} coefficients is not a square number")
    basis = sh_basis(dirs, degree)  # [N, K]
    return torch.einsum("nk,nkc->nc", basis, sh)


def sh_colors(sh: torch.Tensor, means: torch.Tensor, cam_center: torch.Tensor, degree: int | None = None):
    """Colour of each Gaussian as INRIA 3DGS: max(SH(normalize(mean - centre)) + 0.5, 0), world space.

    Args:
        sh: [N, K, 3]; means: [N, 3]; cam_center: [3].
        degree: use only bands up to this degree (None: all).

    Returns:
        [N, 3] (clamped at 0 only).
    """
    k_all = sh.shape[1]
    if degree is not None:
        sh = sh[:, : min(k_all, (degree + 1) ** 2)]
    dirs = torch.nn.functional.normalize(means - cam_center[None, :], dim=-1, eps=1e-12)
    return torch.relu(eval_sh(sh, dirs) + 0.5)
