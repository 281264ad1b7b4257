"""The fast numba compositing (su.rasterize) against the float64 reference compositing (reference.composite).

The reference composites the very projection rasterize used (render.project.project on the float32 scene,
converted to float64), so compositing is compared in isolation; one test also pairs su.rasterize with its twin
reference.rasterize end to end (float64); tests/test_twins.py pairs every fast function with its twin. Colour,
alpha, depth and the three derivative planes must agree to float32 round-off, per pixel and relative to each
plane's largest magnitude. The only allowed exceptions are pixels where float32 flips a discrete decision
(1/255 skip, 1e-4 stop, 0.99 clamp, tile membership, depth tie): those are counted, bounded (MAX_BAD_FRACTION
of the pixels) and reported.
"""

from __future__ import annotations

import math

import pytest
import torch

import splatup as su
from real_views import centred_scaled, garden, load, mic_cameras, orbit_camera
from scenes import front_camera, random_scene
from splatup import reference as ref
from splatup.reference.composite import CLAMPED, STOPPED
from splatup.render.project import project

PLANES = ("color", "alpha", "depth", "dx", "dy", "dxy")


pytestmark = pytest.mark.usefixtures("one_torch_thread")
# per-pixel error / plane's max |value| beyond which a pixel counts as a mismatch. The worst seen on these
# scenes without a decision flip is ~1.2e-6 (float32 sums over up to ~400 contributors); 2e-5 leaves margin.
RTOL = 2e-5
MAX_BAD_FRACTION = 0.005
BG = (0.25, 0.5, 0.9)


def _stats(name: str, fast: torch.Tensor, oracle: torch.Tensor) -> tuple[float, int, float]:
    """(plane scale, number of pixels over RTOL, worst per-pixel relative error)."""
    scale = float(oracle.abs().max())
    err = (fast.double() - oracle).abs().amax(-1) / max(scale, 1e-30)
    return scale, int((err > RTOL).sum()), float(err.max())


def compare(scene: su.Gaussians, cam: su.Camera, label: str, background=BG, min_alpha: float = 0.05,
            **kw) -> dict[str, tuple[float, int, float]]:
    """Render with both kernels (plain and with derivatives) and with the reference; assert agreement."""
    out = su.rasterize(scene, cam, derivatives=True, background=background, **kw)
    plain = su.rasterize(scene, cam, derivatives=False, background=background, **kw)
    proj = project(scene.to(torch.float32), cam, **kw)  # exactly what rasterize composited
    r = ref.composite(ref.projected_to(proj, torch.float64), cam.width, cam.height, background=background)
    n_pix = cam.width * cam.height
    mean_alpha = float(r["alpha"].mean())
    assert mean_alpha >= min_alpha, f"{label}: mean alpha {mean_alpha:.3f}: the view misses the scene"
    stats = {}
    for name in PLANES:
        fast = getattr(out, name)
        assert torch.isfinite(fast).all(), f"{label}: fast {name} has non-finite values"
        stats[name] = _stats(name, fast, r[name])
    for name in ("color", "alpha", "depth"):
        stats["plain " + name] = _stats(name, getattr(plain, name), r[name])
    for name in ("dx", "dy", "dxy"):
        assert stats[name][0] > 1e-3, f"{label}: {name} is nearly zero everywhere ({stats[name][0]:.3g})"
    summary = ", ".join(f"{k}: {n} px > {RTOL:g} (worst {w:.1e}, scale {s:.3g})" for k, (s, n, w) in stats.items())
    worst_count = max(n for _, n, _ in stats.values())
    assert worst_count <= MAX_BAD_FRACTION * n_pix, (
        f"{label}: too many mismatching pixels (allowed {MAX_BAD_FRACTION:.1%} of {n_pix}): {summary}"
    )
    # a decision flip moves the colour by at most one barely-visible Gaussian: bound it everywhere
    for name in ("color", "plain color", "alpha"):
        assert stats[name][2] < 0.02, f"{label}: {name} differs by {stats[name][2]:.3g} of its scale: {summary}"
    print(f"{label}: {summary}")
    return stats


# ---------------------------------------------------------------------------------------------- random scenes
OPAQUE = dict(n=300, sigma_px=(3.0, 15.0), opacity=(0.995, 0.99999))  # alpha clamped at 0.99, early stops


@pytest.mark.parametrize(
    "width, height, n, sh_degree, mode, background, dilation, sigma_px, opacity",
    [
        (64, 48, 1500, 0, "classic", (0.0, 0.0, 0.0), 0.3, (0.7, 6.0), (0.05, 0.99)),
        (70, 45, 1500, 1, "antialiased", BG, 0.3, (0.7, 6.0), (0.05, 0.99)),  # partial tiles on both axes
        (64, 64, 2000, 3, "classic", (1.0, 1.0, 1.0), 0.3 / 4, (0.3, 6.0), (0.05, 0.99)),
        (48, 40, OPAQUE["n"], 2, "classic", BG, 0.3, OPAQUE["sigma_px"], OPAQUE["opacity"]),
    ],
)
def test_random_scenes(width, height, n, sh_degree, mode, background, dilation, sigma_px, opacity):
    cam = front_camera(width, height)
    scene = random_scene(n, cam, seed=n + sh_degree, sh_degree=sh_degree, sigma_px=sigma_px, opacity=opacity)
    compare(scene, cam, f"random {width}x{height} {mode}", background=background, mode=mode, dilation=dilation)


def test_depth_ties_are_broken_by_index():
    """All Gaussians at the same depth: the order, and so the image, is decided by the Gaussian index alone."""
    cam = front_camera(48, 32)
    scene = random_scene(400, cam, seed=77, depth=(3.0, 3.0), opacity=(0.5, 0.95))
    assert torch.unique(project(scene, cam).depths).numel() == 1
    compare(scene, cam, "equal depths", background=BG)
    # reversing the index order changes the image (so the tie rule is actually exercised)
    flipped = scene.subset(torch.arange(len(scene) - 1, -1, -1))
    a = su.rasterize(scene, cam).color
    b = su.rasterize(flipped, cam).color
    assert (a - b).abs().max() > 0.05


def test_opaque_scene_exercises_clamp_and_stop():
    """The opaque configuration above is only meaningful if clamps and early stops actually happen."""
    cam = front_camera(48, 40)
    scene = random_scene(OPAQUE["n"], cam, seed=OPAQUE["n"] + 2, sh_degree=2, sigma_px=OPAQUE["sigma_px"],
                         opacity=OPAQUE["opacity"])
    proj = ref.projected_to(project(scene, cam), torch.float64)
    jj, ii = torch.meshgrid(torch.arange(40), torch.arange(48), indexing="ij")
    pts = torch.stack([ii, jj], -1).reshape(-1, 2).double() + 0.5
    r = ref.composite(proj, 48, 40, points=pts)
    n_clamped = int((r["trace"] == CLAMPED).any(1).sum())
    n_stopped = int((r["trace"] == STOPPED).any(1).sum())
    assert n_clamped > 0.01 * len(pts), f"only {n_clamped} of {len(pts)} pixels see a clamped alpha"
    assert n_stopped > 0.5 * len(pts), f"only {n_stopped} of {len(pts)} pixels stop early"


def test_reference_end_to_end_float64():
    """reference.rasterize on the float64 scene vs su.rasterize (float32 throughout), same arguments."""
    cam = su.Camera.look_at([0.3, -0.2, -0.1], [0.0, 0.0, 3.0], [0.0, -1.0, 0.0], 60.0, 80, 56)
    scene = random_scene(1500, front_camera(80, 56), seed=9, sh_degree=3)
    for mode, bg in (("classic", BG), ("antialiased", (0.0, 0.0, 0.0))):
        out = su.rasterize(scene, cam, derivatives=True, background=bg, mode=mode)
        r = ref.rasterize(scene.to(torch.float64), cam, derivatives=True, background=bg, mode=mode)
        n_pix = cam.width * cam.height
        lines = []
        for name in PLANES:
            scale, n_bad, worst = _stats(name, getattr(out, name), getattr(r, name))
            lines.append(f"{name}: {n_bad} px > {RTOL:g} (worst {worst:.1e})")
            assert n_bad <= MAX_BAD_FRACTION * n_pix, f"end-to-end {mode}: {', '.join(lines)}"
        print(f"end-to-end {mode}: {', '.join(lines)}")


def test_tile_rule_truncates_at_tile_borders():
    """A Gaussian is composited exactly in the tiles its 3-sigma box touches (render/tiles.py), even where its
    alpha beyond the box still exceeds 1/255: pixel column 32 starts the next tile and stays background when
    the box ends just before x = 32, and is covered when the box reaches past it."""
    cam = front_camera(64, 48)
    z, sigma_px, bg = 3.0, 2.0, (0.1, 0.2, 0.3)
    ext = 3.0 * math.sqrt(sigma_px**2 + 0.3)
    for mx, covered in ((31.95 - ext, False), (32.05 - ext, True)):
        mean = torch.tensor([[(mx - cam.cx) * z / cam.fx, (24.5 - cam.cy) * z / cam.fy, z]], dtype=torch.float64)
        scene = su.Gaussians.from_activated(
            mean, torch.tensor([[1.0, 0.0, 0.0, 0.0]], dtype=torch.float64),
            torch.full((1, 3), sigma_px * z / cam.fx, dtype=torch.float64), torch.tensor([0.99], dtype=torch.float64),
            colors=torch.tensor([[1.0, 1.0, 1.0]], dtype=torch.float64),
        ).to(torch.float32)
        out = su.rasterize(scene, cam, derivatives=True, background=bg)
        proj = ref.projected_to(project(scene, cam), torch.float64)
        r = ref.composite(proj, 64, 48, background=bg)
        # alpha at pixel (32, 24) if it were composited (dy = 0): o exp(-a dx^2 / 2)
        alpha_32 = float(proj.opacities[0] * torch.exp(-0.5 * proj.conics[0, 0] * (32.5 - proj.means2d[0, 0]) ** 2))
        assert alpha_32 > 1 / 255
        box_end = float(proj.means2d[0, 0] + proj.extents[0, 0])
        assert (box_end >= 32) == covered and abs(box_end - 32) < 0.1
        for who, col in (("fast", out.color), ("reference", r["color"])):
            bg_t = torch.tensor(bg, dtype=col.dtype)
            assert col[24, 31, 0] > bg[0] + 0.01, who
            if covered:
                expected = bg_t[0] + (1 - bg_t[0]) * alpha_32
                torch.testing.assert_close(col[24, 32, 0], expected, rtol=1e-5, atol=1e-6, msg=who)
            else:
                assert torch.equal(col[24, 32:], bg_t.expand(32, 3)), f"{who}: tile 2 must be pure background"


# ---------------------------------------------------------------------------------------------- real scenes
def test_plant(shared_data):
    scene = load(shared_data, "plant")
    compare(scene, orbit_camera(scene, "plant", 128, 96, 30.0, 20.0), "plant 128x96", background=BG)


def test_donut(shared_data):
    scene = load(shared_data, "donut")
    compare(scene, orbit_camera(scene, "donut", 128, 96, 120.0, 35.0), "donut 128x96 antialiased",
            background=(0.0, 0.0, 0.0), mode="antialiased")


def test_spot_orbit_and_mic_cameras(shared_data):
    scene = load(shared_data, "spot")
    compare(scene, orbit_camera(scene, "spot", 96, 80, 250.0, 10.0), "spot orbit 96x80", background=(1.0, 1.0, 1.0))
    centred = centred_scaled(scene, 2.0)
    for i, cam in zip((0, 57), mic_cameras(shared_data, (0, 57), 96), strict=True):
        compare(centred, cam, f"spot with mic test camera {i} 96x96", background=BG)
        # the same camera at a quarter of the native dilation (a 1/2 render for 2x upscaling)
        compare(centred, cam, f"spot mic {i} dilation 0.075", background=BG, dilation=0.3 / 4)


def test_garden(shared_data):
    scene, cams = garden(shared_data, scale_factor=0.25)
    for i in (0, 2):
        compare(scene, cams[i], f"garden camera {i} {cams[i].width}x{cams[i].height}", background=BG)
