"""One 3DGS scene as torch tensors, its activations and spherical-harmonics colour.

The tensors hold the values a trained 3DGS model stores (pre-activation, as in the INRIA .ply):

- ``means``          [N, 3]  world-space centres
- ``quats``          [N, 4]  rotation quaternions (w, x, y, z), not necessarily normalised
- ``log_scales``     [N, 3]  log of the per-axis standard deviations (world units)
- ``opacity_logits`` [N]     logit of the opacity
- ``sh``             [N, K, 3]  SH coefficients, K = (degree + 1)^2, ``sh[:, 0]`` is the DC term

The activations are explicit properties: ``scales = exp(log_scales)``, ``opacities = sigmoid(opacity_logits)``,
``rotations = quats / |quats|``. Colour from SH follows INRIA 3DGS: direction ``normalize(mean - camera
centre)`` in world space, ``colour = max(SH(dir) + 0.5, 0)``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields, replace

import torch

from ._checks import all_finite, any_zero_row
from .errors import SplatupInputError

# Real SH constants as in INRIA 3DGS (utils/sh_utils.py, cuda_rasterizer/auxiliary.h).
SH_C0 = 0.28209479177387814
SH_C1 = 0.4886025119029199
SH_C2 = (
    1.0925484305920792,
    -1.0925484305920792,
    0.31539156525252005,
    -1.0925484305920792,
    0.5462742152960396,
)
SH_C3 = (
    -0.5900435899266435,
    2.890611442640554,
    -0.4570457994644658,
    0.3731763325901154,
    -0.4570457994644658,
    1.445305721320277,
    -0.5900435899266435,
)
MAX_SH_DEGREE = 3


def num_sh_coeffs(degree: int) -> int:
    """Number of SH coefficients per colour channel for ``degree`` (0..3): (degree + 1)^2."""
    return (degree + 1) ** 2


def sh_degree_from_coeffs(k: int) -> int:
    """Inverse of :func:`num_sh_coeffs`; raises if ``k`` is not 1, 4, 9 or 16."""
    d = int(round(math.sqrt(k))) - 1
    if d < 0 or d > MAX_SH_DEGREE or num_sh_coeffs(d) != k:
        raise SplatupInputError(f"{k} SH coefficients per channel is not (d+1)^2 for a degree d in 0..3")
    return d


def rgb_to_sh(rgb: torch.Tensor) -> torch.Tensor:
    """DC coefficient that evaluates to colour ``rgb`` (any shape): (rgb - 0.5) / C0."""
    return (rgb - 0.5) / SH_C0


def sh_to_rgb(dc: torch.Tensor) -> torch.Tensor:
    """Colour of a DC-only SH coefficient (any shape): dc * C0 + 0.5 (not clamped)."""
    return dc * SH_C0 + 0.5


def eval_sh(sh: torch.Tensor, dirs: torch.Tensor) -> torch.Tensor:
    """Evaluate real SH (INRIA 3DGS basis and signs) before the +0.5 offset.

    Args:
        sh: [N, K, C] coefficients, K in {1, 4, 9, 16}.
        dirs: [N, 3] unit directions (only used for K > 1).

    Returns:
        [N, C] the SH sum.
    """
    k = sh.shape[-2]
    degree = sh_degree_from_coeffs(k)
    result = SH_C0 * sh[:, 0]
    if degree == 0:
        return result
    x, y, z = (dirs[:, i : i + 1] for i in range(3))
    result = result - SH_C1 * y * sh[:, 1] + SH_C1 * z * sh[:, 2] - SH_C1 * x * sh[:, 3]
    if degree == 1:
        return result
    xx, yy, zz = x * x, y * y, z * z
    xy, yz, xz = x * y, y * z, x * z
    result = (
        result
        + SH_C2[0] * xy * sh[:, 4]
        + SH_C2[1] * yz * sh[:, 5]
        + SH_C2[2] * (2.0 * zz - xx - yy) * sh[:, 6]
        + SH_C2[3] * xz * sh[:, 7]
        + SH_C2[4] * (xx - yy) * sh[:, 8]
    )
    if degree == 2:
        return result
    return (
        result
        + SH_C3[0] * y * (3.0 * xx - yy) * sh[:, 9]
        + SH_C3[1] * xy * z * sh[:, 10]
        + SH_C3[2] * y * (4.0 * zz - xx - yy) * sh[:, 11]
        + SH_C3[3] * z * (2.0 * zz - 3.0 * xx - 3.0 * yy) * sh[:, 12]
        + SH_C3[4] * x * (4.0 * zz - xx - yy) * sh[:, 13]
        + SH_C3[5] * z * (xx - yy) * sh[:, 14]
        + SH_C3[6] * x * (xx - 3.0 * yy) * sh[:, 15]
    )


def sh_colors(sh: torch.Tensor, means: torch.Tensor, cam_center: torch.Tensor, degree: int | None = None):
    """View-dependent colour of every Gaussian, as INRIA 3DGS: max(SH(normalize(mean - centre)) + 0.5, 0).

    Args:
        sh: [N, K, 3]; means: [N, 3]; cam_center: [3] (same dtype).
        degree: use only the coefficients up to this degree (training's SH schedule); None = all.

    Returns:
        [N, 3] colours (not clamped at 1).
    """
    if degree is not None:
        sh = sh[:, : num_sh_coeffs(min(degree, sh_degree_from_coeffs(sh.shape[1])))]
    if sh.shape[1] == 1:
        return torch.clamp_min(SH_C0 * sh[:, 0] + 0.5, 0.0)
    d = means - cam_center
    # a Gaussian exactly at the camera centre gets direction 0: only the DC term then
    dirs = d / torch.linalg.vector_norm(d, dim=-1, keepdim=True).clamp_min(1e-12)
    return torch.clamp_min(eval_sh(sh, dirs) + 0.5, 0.0)


def quat_to_rotmat(q: torch.Tensor) -> torch.Tensor:
    """Rotation matrices [N, 3, 3] of quaternions [N, 4] (w, x, y, z); normalises first."""
    q = q / torch.linalg.vector_norm(q, dim=-1, keepdim=True)
    w, x, y, z = q.unbind(-1)
    return torch.stack(
        [
            1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y),
            2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x),
            2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y),
        ],
        dim=-1,
    ).reshape(q.shape[:-1] + (3, 3))


@dataclass
class Gaussians:
    """A 3DGS scene. Tensors are pre-activation (see module docstring); all share dtype and device."""

    means: torch.Tensor  # [N, 3]
    quats: torch.Tensor  # [N, 4] w, x, y, z
    log_scales: torch.Tensor  # [N, 3]
    opacity_logits: torch.Tensor  # [N]
    sh: torch.Tensor  # [N, K, 3]

    def __post_init__(self) -> None:
        n = self.means.shape[0] if self.means.ndim == 2 else -1
        expected = {
            "means": (n, 3),
            "quats": (n, 4),
            "log_scales": (n, 3),
            "opacity_logits": (n,),
        }
        for name, shape in expected.items():
            t = getattr(self, name)
            if not isinstance(t, torch.Tensor) or tuple(t.shape) != shape or n < 0:
                got = tuple(t.shape) if isinstance(t, torch.Tensor) else type(t).__name__
                raise SplatupInputError(f"Gaussians.{name}: expected shape {shape} with N = len(means), got {got}")
        if self.sh.ndim != 3 or self.sh.shape[0] != n or self.sh.shape[2] != 3:
            raise SplatupInputError(f"Gaussians.sh: expected shape [N, K, 3], got {tuple(self.sh.shape)}")
        sh_degree_from_coeffs(self.sh.shape[1])
        for f in fields(self):
            t = getattr(self, f.name)
            if not t.is_floating_point():
                raise SplatupInputError(f"Gaussians.{f.name}: expected a floating-point tensor, got {t.dtype}")

    # ------------------------------------------------------------------ activations
    @property
    def scales(self) -> torch.Tensor:
        """[N, 3] per-axis standard deviations, exp(log_scales)."""
        return torch.exp(self.log_scales)

    @property
    def opacities(self) -> torch.Tensor:
        """[N] opacities in (0, 1), sigmoid(opacity_logits)."""
        return torch.sigmoid(self.opacity_logits)

    @property
    def rotations(self) -> torch.Tensor:
        """[N, 4] unit quaternions (w, x, y, z)."""
        return self.quats / torch.linalg.vector_norm(self.quats, dim=-1, keepdim=True)

    @property
    def sh_degree(self) -> int:
        return sh_degree_from_coeffs(self.sh.shape[1])

    @property
    def dtype(self) -> torch.dtype:
        return self.means.dtype

    @property
    def device(self) -> torch.device:
        return self.means.device

    def __len__(self) -> int:
        return self.means.shape[0]

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_activated(
        cls,
        means: torch.Tensor,
        quats: torch.Tensor,
        scales: torch.Tensor,
        opacities: torch.Tensor,
        colors: torch.Tensor | None = None,
        sh: torch.Tensor | None = None,
    ) -> Gaussians:
        """Build a scene from activated values: scales [N, 3] > 0, opacities [N] in (0, 1), and either
        constant ``colors`` [N, 3] or SH coefficients ``sh`` [N, K, 3]."""
        if (colors is None) == (sh is None):
            raise SplatupInputError("Gaussians.from_activated: give exactly one of colors= or sh=")
        if sh is None:
            sh = rgb_to_sh(colors)[:, None, :]
        eps = torch.finfo(opacities.dtype).eps
        op = opacities.clamp(eps, 1 - eps)
        return cls(
            means=means,
            quats=quats,
            log_scales=torch.log(scales),
            opacity_logits=torch.log(op) - torch.log1p(-op),
            sh=sh,
        )

    @classmethod
    def empty(cls, sh_degree: int = 0, dtype: torch.dtype = torch.float32) -> Gaussians:
        """A scene with no Gaussians (renders the background)."""
        k = num_sh_coeffs(sh_degree)
        z = torch.zeros
        return cls(z(0, 3, dtype=dtype), z(0, 4, dtype=dtype), z(0, 3, dtype=dtype), z(0, dtype=dtype),
                   z(0, k, 3, dtype=dtype))

    def to(self, dtype: torch.dtype | None = None, device: torch.device | str | None = None) -> Gaussians:
        """Copy of the scene with every tensor converted."""
        return replace(self, **{f.name: getattr(self, f.name).to(dtype=dtype, device=device) for f in fields(self)})

    def detach(self) -> Gaussians:
        return replace(self, **{f.name: getattr(self, f.name).detach() for f in fields(self)})

    def clone(self) -> Gaussians:
        return replace(self, **{f.name: getattr(self, f.name).clone() for f in fields(self)})

    def subset(self, index: torch.Tensor | slice) -> Gaussians:
        """The Gaussians selected by a boolean mask, index tensor or slice."""
        return replace(self, **{f.name: getattr(self, f.name)[index] for f in fields(self)})

    def tensors(self) -> dict[str, torch.Tensor]:
        """The five parameter tensors by name."""
        return {f.name: getattr(self, f.name) for f in fields(self)}

    # ------------------------------------------------------------------ checks
    def validate(self, source: str = "scene") -> Gaussians:
        """Raise :class:`SplatupInputError` naming ``source``, the field and the first bad Gaussian if any
        value is NaN or infinite or a quaternion is zero. Returns self.

        Fast path: one parallel pass per tensor (:mod:`splatup._checks`); only a failed check pays for the
        element-wise search that names the first bad Gaussian."""
        for f in fields(self):
            t = getattr(self, f.name).detach()
            if all_finite(t):
                continue
            bad = ~torch.isfinite(t)
            if bad.any():
                idx = int(bad.reshape(t.shape[0], -1).any(dim=1).nonzero()[0, 0])
                count = int(bad.reshape(t.shape[0], -1).any(dim=1).sum())
                raise SplatupInputError(
                    f"{source}: field '{f.name}' has non-finite values (NaN or Inf) in {count} Gaussian(s), "
                    f"first at index {idx}: {t[idx].tolist()}"
                )
        q = self.quats.detach()
        if any_zero_row(q):
            idx = int((q == 0).all(dim=-1).nonzero()[0, 0])
            raise SplatupInputError(
                f"{source}: field 'quats' (rot_0..rot_3) is the zero quaternion at Gaussian {idx}; "
                "a rotation needs a non-zero quaternion"
            )
        return self

    def summary(self) -> dict[str, object]:
        """Plain-Python description of the scene (count, SH degree, bounds, scale and opacity statistics)."""
        n = len(self)
        out: dict[str, object] = {"gaussians": n, "sh_degree": self.sh_degree, "dtype": str(self.dtype)}
        if n == 0:
            return out
        m = self.means.detach().double()
        s = self.scales.detach().double()
        o = self.opacities.detach().double()
        out.update(
            bbox_min=m.min(0).values.tolist(),
            bbox_max=m.max(0).values.tolist(),
            center_median=m.median(0).values.tolist(),
            scale_median=float(s.median()),
            scale_max=float(s.max()),
            opacity_mean=float(o.mean()),
            opacity_below_1_255=int((o < 1 / 255).sum()),
        )
        return out
