"""Spherical harmonics: the fast INRIA-style evaluation and the reference twin against scipy's complex SH.

The oracle is ``scipy.special.sph_harm_y`` (complex SH with the Condon-Shortley phase). The INRIA 3DGS basis
is the textbook real SH times (-1)^m (research/ecosystem.md A.1), i.e. Y_l^0, sqrt(2) Re Y_l^m (m > 0) and
sqrt(2) Im Y_l^|m| (m < 0), at coefficient index l^2 + l + m.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy.special import sph_harm_y

import splatup as su
from splatup import reference as ref
from splatup.gaussians import SH_C0, SH_C1, eval_sh, sh_colors


def scipy_inria_basis(dirs: np.ndarray, degree: int) -> np.ndarray:
    """[N, (degree+1)^2] INRIA-convention real SH from scipy's complex SH at unit directions [N, 3]."""
    x, y, z = dirs.T
    theta = np.arccos(np.clip(z, -1.0, 1.0))  # polar
    phi = np.arctan2(y, x)  # azimuth
    out = np.zeros((len(dirs), (degree + 1) ** 2))
    for l in range(degree + 1):
        for m in range(-l, l + 1):
            y_lm = sph_harm_y(l, abs(m), theta, phi)
            if m == 0:
                val = y_lm.real
            elif m > 0:
                val = math.sqrt(2.0) * y_lm.real
            else:
                val = math.sqrt(2.0) * y_lm.imag
            out[:, l * l + l + m] = val
    return out


def random_dirs(n: int, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    d = torch.randn(n, 3, generator=g, dtype=torch.float64)
    # include the poles and the axes, where the azimuth is ill-defined
    axes = torch.tensor([[0, 0, 1], [0, 0, -1], [1, 0, 0], [0, -1, 0]], dtype=torch.float64)
    return torch.nn.functional.normalize(torch.cat([axes, d]), dim=-1)


def test_scipy_oracle_matches_published_constants():
    """The oracle itself: DC and degree-1 constants and INRIA's -y, +z, -x signs (ecosystem.md A.1)."""
    d = np.array([[0.6, 0.0, 0.8], [0.0, 0.6, 0.8], [0.0, 0.0, 1.0]])
    b = scipy_inria_basis(d, 1)
    np.testing.assert_allclose(b[:, 0], SH_C0, rtol=1e-14)
    np.testing.assert_allclose(b[:, 1], -SH_C1 * d[:, 1], atol=1e-14)
    np.testing.assert_allclose(b[:, 2], SH_C1 * d[:, 2], atol=1e-14)
    np.testing.assert_allclose(b[:, 3], -SH_C1 * d[:, 0], atol=1e-14)
    assert SH_C0 == pytest.approx(0.5 / math.sqrt(math.pi), rel=1e-15)


@pytest.mark.parametrize("degree", [0, 1, 2, 3])
def test_eval_sh_matches_scipy(degree):
    dirs = random_dirs(500, seed=degree)
    k = (degree + 1) ** 2
    sh = torch.randn(len(dirs), k, 3, generator=torch.Generator().manual_seed(10 + degree), dtype=torch.float64)
    basis = torch.from_numpy(scipy_inria_basis(dirs.numpy(), degree))
    expected = torch.einsum("nk,nkc->nc", basis, sh)
    torch.testing.assert_close(eval_sh(sh, dirs), expected, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(ref.eval_sh(sh, dirs), expected, rtol=1e-12, atol=1e-12)
    # float32 fast path: round-off only
    torch.testing.assert_close(eval_sh(sh.float(), dirs.float()).double(), expected, rtol=1e-5, atol=1e-5)


def test_each_basis_function_separately():
    """One coefficient at a time, so that a swapped index or sign cannot cancel out in a random sum."""
    dirs = random_dirs(200, seed=7)
    basis = torch.from_numpy(scipy_inria_basis(dirs.numpy(), 3))
    for k in range(16):
        sh = torch.zeros(len(dirs), 16, 3, dtype=torch.float64)
        sh[:, k, 1] = 1.0
        got = eval_sh(sh, dirs)
        torch.testing.assert_close(got[:, 1], basis[:, k], rtol=1e-12, atol=1e-12, msg=f"basis {k}")
        assert got[:, 0].abs().max() == 0 and got[:, 2].abs().max() == 0
    torch.testing.assert_close(ref.sh_basis(dirs, 3), basis, rtol=1e-12, atol=1e-12)


def test_sh_colors_direction_is_mean_minus_centre_in_world_space():
    """A Gaussian at +x of the camera centre sees direction +x: with only sh[3] (the -C1 x term) set, its
    colour is 0.5 - C1 * coef. Rotating the camera must not change colours (world-space direction)."""
    centre = torch.tensor([1.0, 2.0, 3.0], dtype=torch.float64)
    means = centre + torch.tensor([[2.0, 0.0, 0.0], [-3.0, 0.0, 0.0], [0.0, 0.0, 5.0]], dtype=torch.float64)
    sh = torch.zeros(3, 4, 3, dtype=torch.float64)
    sh[:, 3, :] = 0.4
    col = sh_colors(sh, means, centre)
    expected = torch.tensor([0.5 - SH_C1 * 0.4, 0.5 + SH_C1 * 0.4, 0.5], dtype=torch.float64)
    torch.testing.assert_close(col, expected[:, None].expand(3, 3), rtol=0, atol=1e-15)
    torch.testing.assert_close(ref.sh_colors(sh, means, centre), col, rtol=0, atol=1e-15)

    # through the projection, with cameras at that centre looking in two different directions
    scene = su.Gaussians.from_activated(
        means, torch.tensor([[1.0, 0, 0, 0]] * 3, dtype=torch.float64), torch.full((3, 3), 0.1, dtype=torch.float64),
        torch.full((3,), 0.5, dtype=torch.float64), sh=sh,
    )
    from splatup.render.project import project

    for target in ([10.0, 2.0, 3.0], [1.0, 2.0, 30.0]):
        cam = su.Camera.look_at(centre, target, [0.0, -1.0, 0.0], 60.0, 32, 32)
        torch.testing.assert_close(project(scene, cam).colors, expected[:, None].expand(3, 3), rtol=0, atol=1e-12)


def test_sh_colors_clamp_and_degree_truncation():
    dirs = random_dirs(300, seed=3)
    centre = torch.tensor([0.5, -0.2, 0.1], dtype=torch.float64)
    means = centre + 2.5 * dirs
    sh = 1.5 * torch.randn(len(dirs), 16, 3, generator=torch.Generator().manual_seed(4), dtype=torch.float64)
    basis = torch.from_numpy(scipy_inria_basis(dirs.numpy(), 3))
    for degree in (None, 0, 1, 2, 3, 7):
        k = 16 if degree is None else (min(degree, 3) + 1) ** 2
        raw = torch.einsum("nk,nkc->nc", basis[:, :k], sh[:, :k]) + 0.5
        expected = raw.clamp_min(0.0)
        got = sh_colors(sh, means, centre, degree=degree)
        torch.testing.assert_close(got, expected, rtol=1e-12, atol=1e-12)
        torch.testing.assert_close(ref.sh_colors(sh, means, centre, degree=degree), expected, rtol=1e-12, atol=1e-12)
        # the clamp is active on a good share of values, is exactly 0 there, and there is no clamp at 1
        neg = raw < 0
        assert neg.sum() > 20 and (got[neg] == 0).all()
        if degree != 0:
            assert (got > 1).sum() > 20
