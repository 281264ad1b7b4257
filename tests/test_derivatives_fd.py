"""The analytic image-space derivatives against finite differences of the colour (all float64).

The reference (reference.composite) returns dC/dx, dC/dy, d2C/dxdy by the closed form of the front-to-back
recurrence. Here they are held against

- 4th-order central differences of the reference colour at random continuous points (the mixed derivative by
  the tensor product of the 1D stencils), rejecting points whose stencil crosses a discrete event: the
  skip/stop/clamp decision trace or the tile differs between stencil points;
- torch autograd of the reference colour with respect to the point (exact up to round-off; it sees the same
  frozen decisions, so no rejection is needed);
- and, directly, the fast kernel's derivative images at pixel centres against the same finite differences.

Scenes: random ones with black and coloured backgrounds, an opaque one where alpha is clamped at 0.99 (points
are seeded on the clamped disks and the test checks that accepted points do see clamped entries) and the real
plant scene.
"""

from __future__ import annotations

import pytest
import torch

import splatup as su
from real_views import load, orbit_camera
from scenes import front_camera, random_scene
from splatup import reference as ref
from splatup.reference.composite import CLAMPED, SMOOTH, STOPPED
from splatup.render.project import Projected, project

STENCIL = {-2: 1.0 / 12.0, -1: -8.0 / 12.0, 1: 8.0 / 12.0, 2: -1.0 / 12.0}
OFFSETS = [(0, 0)] + [(i, 0) for i in STENCIL] + [(0, j) for j in STENCIL] + [(i, j) for i in STENCIL for j in STENCIL]
STEP = 1e-3  # px
BG = (0.25, 0.5, 0.9)
OPAQUE = dict(sigma_px=(3.0, 15.0), opacity=(0.995, 0.99999))


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def projected64(scene: su.Gaussians, cam: su.Camera):
    return ref.projected_to(project(scene, cam), torch.float64)


def fd_derivatives(proj, width: int, height: int, base: torch.Tensor, background, h: float = STEP):
    """Finite differences at points ``base`` [N, 2].

    Returns (analytic, fd, ok, trace0): analytic and fd are dicts of [N, 3] planes dx, dy, dxy; ok [N] is False
    where the stencil crosses a discrete event; trace0 [N, L] the decision trace at the centre point.
    """
    off = torch.tensor(OFFSETS, dtype=torch.float64)
    pts = (base[:, None, :] + h * off[None]).reshape(-1, 2)
    r = ref.composite(proj, width, height, background=background, points=pts)
    n, m = base.shape[0], len(OFFSETS)
    C = r["color"].reshape(n, m, 3)
    trace = r["trace"].reshape(n, m, -1)
    tile = r["tile"].reshape(n, m)
    ok = (trace == trace[:, :1]).all(-1).all(-1) & (tile == tile[:, :1]).all(-1)
    at = {o: k for k, o in enumerate(OFFSETS)}
    fd = {
        "dx": sum(w * C[:, at[(i, 0)]] for i, w in STENCIL.items()) / h,
        "dy": sum(w * C[:, at[(0, j)]] for j, w in STENCIL.items()) / h,
        "dxy": sum(wi * wj * C[:, at[(i, j)]] for i, wi in STENCIL.items() for j, wj in STENCIL.items()) / h**2,
    }
    analytic = {k: r[k].reshape(n, m, 3)[:, 0] for k in ("dx", "dy", "dxy")}
    return analytic, fd, ok, trace[:, 0]


def errors(analytic: dict, fd: dict, ok: torch.Tensor) -> dict[str, tuple[float, float]]:
    """Per plane: (max |analytic - fd| / plane scale, max relative error |a - fd| / max(|fd|, 1e-3 scale)) over
    the accepted points; the plane scale is the largest |analytic| among them."""
    out = {}
    for k in ("dx", "dy", "dxy"):
        a, f = analytic[k][ok], fd[k][ok]
        scale = float(a.abs().max())
        assert scale > 1e-3, f"{k} is ~0 at every accepted point: the test would be vacuous"
        err = (a - f).abs()
        out[k] = (float(err.max()) / scale, float((err / torch.clamp_min(f.abs(), 1e-3 * scale)).max()))
    return out


def random_points(n: int, width: int, height: int, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    u = torch.rand(n, 2, generator=g, dtype=torch.float64)
    return 0.01 + u * torch.tensor([width - 0.02, height - 0.02], dtype=torch.float64)


def check_fd(proj, width, height, base, background, label, tol=(1e-9, 1e-9, 2e-7), min_accept=0.7):
    analytic, fd, ok, trace0 = fd_derivatives(proj, width, height, base, background)
    n_ok = int(ok.sum())
    assert n_ok >= min_accept * len(base), f"{label}: only {n_ok} of {len(base)} stencils avoid discrete events"
    errs = errors(analytic, fd, ok)
    summary = ", ".join(f"{k}: max err/scale {e[0]:.1e}, max rel {e[1]:.1e}" for k, e in errs.items())
    print(f"{label}: {n_ok}/{len(base)} points accepted; {summary}")
    for (k, e), t in zip(errs.items(), tol, strict=True):
        assert e[0] <= t, f"{label}: {k} analytic vs 4th-order FD: {summary}"
    return ok, trace0


@pytest.mark.parametrize("background", [(0.0, 0.0, 0.0), BG], ids=["black", "coloured"])
def test_fd_random_scene(background):
    cam = front_camera(64, 48)
    scene = random_scene(1300, cam, seed=21, sh_degree=1)
    proj = projected64(scene, cam)
    ok, trace0 = check_fd(proj, 64, 48, random_points(600, 64, 48, seed=1), background, f"random bg={background}")
    # the accepted points composite several Gaussians with derivatives (not just background)
    assert (trace0[ok] == SMOOTH).sum(1).float().mean() > 3


def test_fd_opaque_scene_with_clamped_alpha():
    """High opacities: alpha is clamped at 0.99 on small disks around the centres (there the alpha derivatives
    are 0) and most pixels stop early. Half of the points are seeded on those disks."""
    cam = front_camera(48, 40)
    scene = random_scene(300, cam, seed=31, sh_degree=2, **OPAQUE)
    proj = projected64(scene, cam)
    g = torch.Generator().manual_seed(2)
    vis = torch.nonzero(proj.visible).flatten()
    centres = proj.means2d[vis[torch.randint(len(vis), (600,), generator=g)]]
    centres = centres + 0.3 * torch.randn(600, 2, generator=g, dtype=torch.float64)
    inside = (centres[:, 0] > 0.01) & (centres[:, 0] < 47.99) & (centres[:, 1] > 0.01) & (centres[:, 1] < 39.99)
    base = torch.cat([centres[inside], random_points(300, 48, 40, seed=3)])
    ok, trace0 = check_fd(proj, 48, 40, base, BG, "opaque", min_accept=0.6)
    n_clamped = int((trace0[ok] == CLAMPED).any(1).sum())
    n_stopped = int((trace0[ok] == STOPPED).any(1).sum())
    assert n_clamped >= 30, f"only {n_clamped} accepted points see a clamped alpha"
    assert n_stopped >= 0.5 * int(ok.sum()), f"only {n_stopped} accepted points stop early"


def test_fd_real_scene(shared_data):
    scene = load(shared_data, "plant")
    cam = orbit_camera(scene, "plant", 128, 96, 30.0, 20.0)
    proj = projected64(scene, cam)
    check_fd(proj, 128, 96, random_points(300, 128, 96, seed=4), BG, "plant", min_accept=0.6)


@pytest.mark.parametrize("background", [(0.0, 0.0, 0.0), BG], ids=["black", "coloured"])
def test_closed_form_equals_autograd(background):
    """d/dx, d/dy and d2/dxdy of the reference colour by autograd (through the compositing of the frozen
    decisions) equal the closed-form derivative planes to round-off, at every point."""
    cam = front_camera(48, 40)
    for scene in (random_scene(800, cam, seed=41, sh_degree=1), random_scene(300, cam, seed=42, **OPAQUE)):
        proj = projected64(scene, cam)
        pts = random_points(400, 48, 40, seed=5).requires_grad_(True)
        r = ref.composite(proj, 48, 40, background=background, points=pts)
        for ch in range(3):
            (g,) = torch.autograd.grad(r["color"][:, ch].sum(), pts, create_graph=True)
            (gxy,) = torch.autograd.grad(g[:, 0].sum(), pts, retain_graph=True)
            for name, auto in (("dx", g[:, 0]), ("dy", g[:, 1]), ("dxy", gxy[:, 1])):
                closed = r[name][:, ch].detach()
                scale = float(closed.abs().max())
                assert scale > 1e-3
                err = float((auto.detach() - closed).abs().max()) / scale
                assert err < 1e-12, f"{name}[{ch}]: autograd vs closed form differ by {err:.2e} of the scale"


def test_fast_kernel_derivatives_against_fd():
    """The fast float32 kernel's dx, dy, dxy at pixel centres against FD of the float64 reference colour."""
    cam = front_camera(64, 48)
    scene = random_scene(1300, cam, seed=51, sh_degree=2)
    out = su.rasterize(scene, cam, derivatives=True, background=BG)
    proj = projected64(scene, cam)
    g = torch.Generator().manual_seed(6)
    ij = torch.stack([torch.randint(64, (500,), generator=g), torch.randint(48, (500,), generator=g)], 1)
    base = ij.double() + 0.5
    _, fd, ok, _ = fd_derivatives(proj, 64, 48, base, BG)
    fast = {k: getattr(out, k)[ij[:, 1], ij[:, 0]].double() for k in ("dx", "dy", "dxy")}
    n_ok = int(ok.sum())
    assert n_ok >= 0.7 * len(base)
    errs = errors(fast, fd, ok)
    summary = ", ".join(f"{k}: max err/scale {e[0]:.1e}, max rel {e[1]:.1e}" for k, e in errs.items())
    print(f"fast kernel vs FD: {n_ok}/{len(base)} pixels accepted; {summary}")
    for k, e in errs.items():
        assert e[0] < 2e-5, f"fast {k} vs FD of the reference: {summary}"


def test_reference_composite_gradcheck():
    """The reference compositing (with derivative planes and a background) is differentiable with respect to
    every per-Gaussian input: torch.autograd.gradcheck on a tiny scene (the backward pass's oracle)."""
    cam = front_camera(20, 12)
    scene = random_scene(8, cam, seed=7, sh_degree=2, sigma_px=(1.5, 4.0), dtype=torch.float64)
    proj = ref.project(scene, cam)
    assert proj.visible.all()

    def f(means2d, conics, opacities, colors):
        p = Projected(means2d, conics, opacities, colors, proj.depths, proj.extents, proj.radii, proj.visible)
        r = ref.composite(p, 20, 12, background=BG)
        return r["color"], r["alpha"], r["dx"], r["dy"], r["dxy"]

    inputs = tuple(getattr(proj, k).detach().clone().requires_grad_(True)
                   for k in ("means2d", "conics", "opacities", "colors"))
    assert torch.autograd.gradcheck(f, inputs, eps=1e-6, atol=1e-7, rtol=1e-5, fast_mode=True)
