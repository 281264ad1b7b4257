"""Backward pass of compositing (render/composite_backward.py and rasterize._Composite).

Oracles: the float64 plain-torch reference twins (splatup.reference.composite / .project) differentiated by
autograd (on random scenes and on a real one), central finite differences of the reference in float64, the
forward kernels themselves (the replay must reproduce them bit for bit) and float64 alpha (every entry that
can reach alpha >= 1/255 in a lane block must be in that block's bucket). The float32 kernels and the float64
reference can disagree on a discrete decision (skip, clamp, stop) only where its margin is within rounding;
such pixels are found by perturbing every opacity by a relative +-1e-4 in the reference (decisions whose
margin is that small flip), their count is bounded, and the loss ignores them (weights 0) so that the
comparison everywhere else is strict.
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import fields, replace

import numba
import numpy as np
import pytest
import torch
from numba import njit

import splatup as su
from real_views import load, orbit_camera
from scenes import front_camera, random_scene
from splatup import reference as ref
from splatup.reference.composite import CLAMPED, SMOOTH, STOPPED
from splatup.render import composite as K
from splatup.render import composite_backward as KB
from splatup.render import lanes as L
from splatup.render.project import Projected, project
from splatup.render.rasterize import _Composite, derivatives_variant
from splatup.render.tiles import bin_gaussians, contribution_extents

BG = (0.3, 0.6, 0.9)
PLANES = ("color", "alpha", "dx", "dy", "dxy")


# ----------------------------------------------------------------------------------------------- helpers
def _projected(n: int, width: int, height: int, seed: int) -> Projected:
    """float32 screen-space Gaussians of a random scene: opacities up to 0.999 and 1 in 8 set to 1.0, so
    that alpha is clamped at 0.99 around those centres."""
    cam = front_camera(width, height)
    scene = random_scene(n, cam, seed=seed, opacity=(0.05, 0.999))
    with torch.no_grad():
        proj = project(scene, cam)
    opac = proj.opacities.clone()
    opac[::8] = 1.0
    return replace(proj, opacities=opac)


def _bins(proj: Projected, width: int, height: int):
    """Tile lists as rasterize() builds them (opacity-aware extents and row reach)."""
    ext, reach, alive = contribution_extents(proj.extents.detach().numpy(), proj.opacities.detach().numpy(),
                                             proj.visible.numpy())
    return bin_gaussians(proj.means2d.detach().numpy(), ext, proj.depths.detach().numpy(), alive, width, height,
                         reach=reach)


def _leaves(proj: Projected, dtype: torch.dtype) -> list[torch.Tensor]:
    return [x.detach().to(dtype).clone().requires_grad_(True)
            for x in (proj.means2d, proj.conics, proj.opacities, proj.colors)]


def _fast(leaves, proj, bins, width, height, derivatives) -> dict[str, torch.Tensor]:
    bg = np.asarray(BG, np.float32)
    color, alpha, _, dx, dy, dxy = _Composite.apply(*leaves, proj.depths.detach(), bins, width, height, bg,
                                                    derivatives_variant(derivatives))
    return {"color": color, "alpha": alpha, "dx": dx, "dy": dy, "dxy": dxy}


def _planes(derivatives) -> tuple[str, ...]:
    """The output planes a loss can use: the first-order variant's d2C/dxdy is the constant 0 (no gradient)."""
    return PLANES if derivatives is True else PLANES[:4] if derivatives == "first" else PLANES[:2]


def _reference(leaves, proj, width, height, derivatives) -> dict[str, torch.Tensor]:
    p = ref.projected_to(proj, torch.float64)
    p = replace(p, means2d=leaves[0], conics=leaves[1], opacities=leaves[2], colors=leaves[3])
    return ref.composite(p, width, height, background=BG, derivatives=derivatives)


def _pixel_centres(width: int, height: int) -> torch.Tensor:
    jj, ii = torch.meshgrid(torch.arange(height), torch.arange(width), indexing="ij")
    return torch.stack([ii, jj], -1).reshape(-1, 2).double() + 0.5


def _borderline(proj: Projected, width: int, height: int, delta: float = 1e-4) -> tuple[torch.Tensor, torch.Tensor]:
    """Pixels [H, W] bool where some skip / clamp / stop decision flips when every opacity is scaled by
    (1 +- delta) in float64, and the unperturbed decision trace [H * W, L] of the reference."""
    p64 = ref.projected_to(proj, torch.float64)
    pts = _pixel_centres(width, height)
    traces = [
        ref.composite(replace(p64, opacities=p64.opacities * f), width, height, derivatives=False, points=pts)["trace"]
        for f in (1.0 - delta, 1.0, 1.0 + delta)
    ]
    flips = ((traces[0] != traces[1]) | (traces[2] != traces[1])).any(1)
    return flips.reshape(height, width), traces[1]


def _loss(out: dict[str, torch.Tensor], weights: dict[str, torch.Tensor], planes) -> torch.Tensor:
    return sum((out[k].to(torch.float64) * weights[k]).sum() for k in planes)


def _assert_close(got: torch.Tensor, want: torch.Tensor, name: str, atol_rel: float, rtol: float) -> None:
    """|got - want| <= atol_rel * max|want| + rtol |want| elementwise (want None: no path, so zero)."""
    want = torch.zeros_like(got) if want is None else want
    got, want = got.detach().double(), want.detach().double()
    assert torch.isfinite(got).all(), f"{name}: non-finite gradient"
    err = (got - want).abs()
    tol = atol_rel * want.abs().max() + rtol * want.abs()
    bad = err > tol
    assert not bad.any(), (
        f"{name}: {int(bad.sum())} of {bad.numel()} entries off; worst |err| {float(err.max()):.3g} "
        f"at {np.unravel_index(int(err.argmax()), err.shape)} (max |ref| {float(want.abs().max()):.3g})"
    )


@contextmanager
def _one_numba_thread():
    """Hundreds of tiny kernel calls: one thread avoids paying a thread wake-up per call on a busy machine."""
    before = numba.get_num_threads()
    numba.set_num_threads(1)
    try:
        yield
    finally:
        numba.set_num_threads(before)


# ----------------------------------------------------------------------------------------------- vs autograd
@pytest.mark.parametrize("derivatives", [True, "first", False], ids=["derivatives", "first", "plain"])
@pytest.mark.parametrize("seed,width,height,n", [(0, 44, 38, 300), (1, 32, 32, 300)])
def test_gradients_match_float64_reference_autograd(derivatives, seed, width, height, n):
    proj = _projected(n, width, height, seed)
    bins = _bins(proj, width, height)
    flips, trace = _borderline(proj, width, height)
    # the scene exercises what it should: clamped entries, early termination, partial tiles, a background
    assert (trace == CLAMPED).any(), "no clamped entry in the test scene"
    stopped_px = (trace == STOPPED).any(1)
    assert stopped_px.sum() >= 20, f"only {int(stopped_px.sum())} pixels terminate early"
    # bound, not hide, the pixels whose decisions are within rounding of a threshold
    assert flips.float().mean() <= 0.03, f"{int(flips.sum())} borderline pixels"

    g = torch.Generator().manual_seed(100 + seed)
    weights = {k: torch.randn(height, width, 1 if k == "alpha" else 3, generator=g, dtype=torch.float64)
               for k in PLANES}
    for w in weights.values():
        w[flips] = 0.0
    planes = _planes(derivatives)

    leaves32 = _leaves(proj, torch.float32)
    out = _fast(leaves32, proj, bins, width, height, derivatives)
    _loss(out, weights, planes).backward()
    leaves64 = _leaves(proj, torch.float64)
    want = _reference(leaves64, proj, width, height, derivatives)
    _loss(want, weights, planes).backward()

    keep = ~flips
    for k in planes:  # forward agrees off the borderline pixels (holds the oracle to the same function)
        assert (out[k].double() - want[k].detach())[keep].abs().max() < 2e-5, k
    for name, a, b in zip(("means2d", "conics", "opacities", "colors"), leaves32, leaves64, strict=True):
        assert b.grad.abs().max() > 0, name
        _assert_close(a.grad, b.grad, name, atol_rel=3e-5, rtol=1e-4)


def _visible_only(proj: Projected) -> Projected:
    """The visible Gaussians of ``proj`` (the others get no gradient and only cost the reference time)."""
    idx = torch.nonzero(proj.visible).flatten()
    n = proj.visible.shape[0]
    return replace(proj, **{f.name: v[idx] for f in fields(proj)
                            if isinstance(v := getattr(proj, f.name), torch.Tensor) and v.shape[:1] == (n,)})


@pytest.mark.parametrize("derivatives, dilation", [(True, 0.3), (False, 0.3), (True, 0.3 / 16), ("first", 0.3 / 16)],
                         ids=["derivatives", "plain", "derivatives-lowres", "first-lowres"])
def test_gradients_match_float64_reference_on_a_real_scene(shared_data, derivatives, dilation):
    """plant.splat (trained 3DGS: elongated, tilted, nearly opaque and faint Gaussians, lists of hundreds) seen
    whole in 48 x 40 pixels: the kernels' gradients against float64 autograd of the reference. With the dilation
    of a 1/4 render (0.3 / 16 px^2) most Gaussians are far below a pixel, as in the low-resolution renders that
    are upscaled: most lanes of a block then lie far out on a Gaussian's tail."""
    scene = load(shared_data, "plant")
    width, height = 48, 40
    cam = orbit_camera(scene, "plant", width, height, 30.0, 20.0)
    with torch.no_grad():
        proj = _visible_only(project(scene, cam, dilation=dilation))
    if dilation < 0.3:  # the scene really is sub-pixel at this size
        sigma = torch.sqrt(1.0 / proj.conics[:, 0].double())  # <= the x standard deviation, px
        assert (sigma < 0.5).float().mean() > 0.5
    bins = _bins(proj, width, height)
    assert bins.n_pairs > 50_000 and np.diff(bins.offsets).max() > 1000  # long lists: a real test of the sweep
    flips, trace = _borderline(proj, width, height)
    assert (trace == STOPPED).any(1).sum() >= 100  # (clamped entries: the random scenes above)
    assert flips.float().mean() <= 0.03, f"{int(flips.sum())} borderline pixels"
    g = torch.Generator().manual_seed(8)
    weights = {k: torch.randn(height, width, 1 if k == "alpha" else 3, generator=g, dtype=torch.float64)
               for k in PLANES}
    for w in weights.values():
        w[flips] = 0.0
    planes = _planes(derivatives)
    leaves32, leaves64 = _leaves(proj, torch.float32), _leaves(proj, torch.float64)
    out = _fast(leaves32, proj, bins, width, height, derivatives)
    _loss(out, weights, planes).backward()
    want = _reference(leaves64, proj, width, height, derivatives)
    _loss(want, weights, planes).backward()
    for k in planes:  # forward agrees off the borderline pixels (holds the oracle to the same function)
        assert (out[k].double() - want[k].detach())[~flips].abs().max() < 2e-5, k
    for name, a, b in zip(("means2d", "conics", "opacities", "colors"), leaves32, leaves64, strict=True):
        assert b.grad.abs().max() > 0, name
        _assert_close(a.grad, b.grad, name, atol_rel=3e-5, rtol=1e-4)


def test_absent_upstream_gradients_are_zero():
    """An output the loss does not use reaches backward as None (no zero-filled image is made); the result is
    bit for bit the one of an explicit zero upstream gradient."""
    width, height = 36, 30
    proj = _projected(150, width, height, seed=4)
    bins = _bins(proj, width, height)
    g = torch.Generator().manual_seed(6)
    w = torch.randn(height, width, 3, generator=g)
    for derivatives in (True, False):
        grads = []
        for explicit_zero in (False, True):
            leaves = _leaves(proj, torch.float32)
            out = _fast(leaves, proj, bins, width, height, derivatives)
            loss = (out["color"] * w).sum()
            if explicit_zero:
                loss = loss + 0.0 * out["alpha"].sum() + (0.0 * (out["dx"] + out["dy"] + out["dxy"]).sum()
                                                        if derivatives else 0.0)
            loss.backward()
            grads.append([x.grad for x in leaves])
        for a, b in zip(*grads, strict=True):
            assert torch.equal(a, b)


def test_only_derivative_planes_and_transmittance_reach_the_gradient():
    """Each upstream plane alone (dx only, dxy only, alpha only) gives the reference's gradient: no plane's
    contribution is lost or mixed into another's."""
    width, height = 36, 30
    proj = _projected(150, width, height, seed=7)
    bins = _bins(proj, width, height)
    flips, _ = _borderline(proj, width, height)
    g = torch.Generator().manual_seed(3)
    for plane in ("alpha", "dx", "dy", "dxy"):
        w = torch.randn(height, width, 1 if plane == "alpha" else 3, generator=g, dtype=torch.float64)
        w[flips] = 0.0
        leaves32, leaves64 = _leaves(proj, torch.float32), _leaves(proj, torch.float64)
        _loss(_fast(leaves32, proj, bins, width, height, True), {plane: w}, [plane]).backward()
        _loss(_reference(leaves64, proj, width, height, True), {plane: w}, [plane]).backward()
        for name, a, b in zip(("means2d", "conics", "opacities", "colors"), leaves32, leaves64, strict=True):
            _assert_close(a.grad, b.grad, f"{plane}->{name}", atol_rel=3e-5, rtol=1e-4)


# ----------------------------------------------------------------------------------------------- replay = forward
def _lists(bins) -> K.TileLists:
    return K.TileLists(bins.offsets, bins.gids, bins.tiles_x)


def _per_entry_weights_forward(proj, bins, width, height, derivatives) -> np.ndarray:
    """[4, H, W, N] the forward kernel's own w, w_x, w_y, w_xy of every (pixel, Gaussian), isolated by giving
    one Gaussian per colour channel the colour 1 and all others 0 (black background): exact, no mixing."""
    m2, con, op = (x.detach().contiguous().numpy() for x in (proj.means2d, proj.conics, proj.opacities))
    depth = proj.depths.detach().numpy()
    n = m2.shape[0]
    out = np.zeros((4, height, width, n), np.float32)
    bg = np.zeros(3, np.float32)
    for i0 in range(0, n, 3):
        col = np.zeros((n, 3), np.float32)
        ids = list(range(i0, min(n, i0 + 3)))
        for ch, i in enumerate(ids):
            col[i, ch] = 1.0
        planes = [np.zeros((height, width, 3), np.float32) for _ in range(4)]
        tr, dp = np.empty((height, width), np.float32), np.empty((height, width), np.float32)
        none = np.empty((0, 0, 3), np.float32)
        images = K.Images(planes[0], tr, dp, *(planes[1:] if derivatives else (none, none, none)))
        K.composite_forward(K.Splats(m2, con, op, col, depth, bins.reach), _lists(bins), K.Frame(width, height, bg),
                            images, K.SECOND if derivatives else K.PLAIN)
        for ch, i in enumerate(ids):
            for k in range(4 if derivatives else 1):
                out[k, :, :, i] = planes[k][:, :, ch]
    return out


def _per_entry_weights_backward(proj, bins, width, height, derivatives) -> np.ndarray:
    """[4, H, W, N] the backward replay's w, w_x, w_y, w_xy: the colour-gradient row of an entry, under an
    upstream gradient that is 1 at one pixel of each tile (and 0 elsewhere), is exactly its weight there."""
    m2, con, op, col = (x.detach().contiguous().numpy()
                        for x in (proj.means2d, proj.conics, proj.opacities, proj.colors))
    n = m2.shape[0]
    out = np.zeros((4, height, width, n), np.float32)
    bg = np.asarray(BG, np.float32)
    rows = np.empty((bins.n_pairs, KB.NGRAD), np.float32)
    rt = np.empty((height, width), np.float32)
    tile = np.repeat(np.arange(len(bins.offsets) - 1), np.diff(bins.offsets))
    gt = np.zeros((height, width), np.float32)
    # pass 0: (w, w_x, w_y) on the colour-gradient channels (r, g, b); pass 1: w_xy on r
    for npass in range(2 if derivatives else 1):
        for ly in range(16):
            for lx in range(16):
                g = [np.zeros((height, width, 3), np.float32) for _ in range(4)]
                if npass == 0:
                    g[0][ly::16, lx::16, 0] = 1.0
                    g[1][ly::16, lx::16, 1] = 1.0
                    g[2][ly::16, lx::16, 2] = 1.0
                else:
                    g[3][ly::16, lx::16, 0] = 1.0
                splats = K.Splats(m2, con, op, col, np.zeros(n, np.float32), bins.reach)
                KB.composite_backward(splats, _lists(bins), K.Frame(width, height, bg),
                                      KB.Upstream(g[0], gt, g[1], g[2], g[3]), rows,
                                      K.SECOND if derivatives else K.PLAIN, rt)
                py = tile // bins.tiles_x * 16 + ly
                px = tile % bins.tiles_x * 16 + lx
                ok = (py < height) & (px < width)
                if npass == 0:
                    for k in range(3 if derivatives else 1):
                        out[k, py[ok], px[ok], bins.gids[ok]] = rows[ok, 6 + k]
                else:
                    out[3, py[ok], px[ok], bins.gids[ok]] = rows[ok, 6]
    return out


def _used_by_reference(proj, bins, width, height) -> torch.Tensor:
    """[H, W, N] bool: entries the float64 reference composites (smooth or clamped) at each pixel."""
    r = ref.composite(ref.projected_to(proj, torch.float64), width, height, derivatives=False,
                      points=_pixel_centres(width, height))
    used = torch.zeros(height * width, proj.means2d.shape[0], dtype=torch.bool)
    for p in range(height * width):
        t = int(r["tile"][p])
        gl = torch.from_numpy(bins.gids[bins.offsets[t]:bins.offsets[t + 1]]).long()
        code = r["trace"][p, : gl.numel()]
        used[p, gl] = (code == SMOOTH) | (code == CLAMPED)
    return used.reshape(height, width, -1)


def _threshold_scene(width: int, height: int, seed: int) -> Projected:
    """Adversarial scene: opacities chosen so that at one pixel per Gaussian o exp(power) lands on 1/255
    (1 in 2 Gaussians) or 0.99 (1 in 4), to within float32 rounding: those decisions are coin flips, so
    any difference between the forward's and the replay's arithmetic would show as a mismatch."""
    proj = _projected(160, width, height, seed)
    m = proj.means2d.double()
    a, b, c = proj.conics.double().unbind(-1)
    g = torch.Generator().manual_seed(seed)
    px = torch.clamp(torch.floor(m[:, 0] + torch.randint(-2, 3, m[:, :1].shape, generator=g)[:, 0]), 0, width - 1)
    py = torch.clamp(torch.floor(m[:, 1] + torch.randint(-2, 3, m[:, :1].shape, generator=g)[:, 0]), 0, height - 1)
    dx, dy = px + 0.5 - m[:, 0], py + 0.5 - m[:, 1]
    e = torch.exp(-0.5 * (a * dx * dx + 2 * b * dx * dy + c * dy * dy))
    target = torch.full_like(e, 1.0 / 255.0)
    target[1::4] = 0.99
    target[3::4] = float("nan")  # keep these
    o = torch.where(torch.isnan(target), proj.opacities.double(), torch.clamp(target / e, max=1.0))
    return replace(proj, opacities=o.float())


@pytest.mark.parametrize("derivatives", [True, False], ids=["derivatives", "plain"])
@pytest.mark.parametrize("scene", ["random", "thresholds"])
def test_replay_reproduces_the_forward_exactly(derivatives, scene):
    """The backward's replay makes the forward's decisions and computes its alpha T bit for bit."""
    width, height = 40, 36
    proj = _projected(160, width, height, seed=11) if scene == "random" else _threshold_scene(width, height, 12)
    bins = _bins(proj, width, height)
    with _one_numba_thread():
        wf = _per_entry_weights_forward(proj, bins, width, height, derivatives)
        wb = _per_entry_weights_backward(proj, bins, width, height, derivatives)
    used_f, used_b = wf[0] != 0, wb[0] != 0
    assert used_f.sum() > 1000
    if scene == "thresholds":  # the scene really is adversarial: float64 decides some entries differently
        assert _used_by_reference(proj, bins, width, height).ne(torch.from_numpy(used_f)).sum() >= 5
    assert (used_f == used_b).all(), f"{int((used_f != used_b).sum())} (pixel, Gaussian) decisions differ"
    assert (wf[0] == wb[0]).all(), "alpha T differs between forward and replay"
    if derivatives:  # w_x, w_y, w_xy: the replay runs the forward's own step, so these are equal too
        for k in (1, 2, 3):
            assert ((wf[k] != 0) == (wb[k] != 0)).all()
            assert (wf[k] == wb[k]).all(), f"weight plane {k} differs between forward and replay"


@njit(cache=False)
def _block_members(means2d, conics, opac, colors, depths, reach, offsets, gids, tiles_x):
    """[M, NBLK] bool: list entry k is in the bucket of its tile's lane block b (the kernels' own rule)."""
    out = np.zeros((gids.shape[0], L.NBLK), np.bool_)
    splats = K.Splats(means2d, conics, opac, colors, depths, reach)
    n = opac.shape[0]
    G = np.empty((n, L.NPACK), np.float32)
    for i in range(n):
        L.pack(G, i, splats)
    maxlen = L.max_list(offsets)
    P = np.empty((maxlen, L.NPACK), np.float32)
    Q = np.empty((7, L.padded(maxlen)), np.float32)
    words = np.empty((L.NBLK, (maxlen + 63) // 64), np.int64)
    for t in range(offsets.shape[0] - 1):
        s = offsets[t]
        e = offsets[t + 1]
        if e > s:
            L.gather_tile(P, Q, s, e, gids, G)
            L.bucket_blocks(Q, e - s, t % tiles_x, t // tiles_x, words)
            for b in range(L.NBLK):
                for k in range(e - s):
                    if (words[b, k // 64] >> (k % 64)) & 1:
                        out[s + k, b] = True
    return out


def _blocks_reached(proj: Projected, bins, width: int, height: int, margin: float = 1e-4) -> np.ndarray:
    """[M, NBLK] bool, float64: list entry k reaches alpha >= (1/255)(1 - margin) at some pixel of block b inside
    the image (the margin makes entries on the threshold to within float32 rounding count as reaching it)."""
    tile = np.repeat(np.arange(len(bins.offsets) - 1), np.diff(bins.offsets))
    g = bins.gids
    m, c = proj.means2d.double().numpy()[g], proj.conics.double().numpy()[g]
    o = proj.opacities.double().numpy()[g]
    ly, lx = (v.ravel() for v in np.meshgrid(np.arange(16), np.arange(16), indexing="ij"))
    block = (ly // L.BH) * L.NBX + lx // L.BW
    out = np.zeros((len(g), L.NBLK), bool)
    for i0 in range(0, len(g), 4096):
        sl = slice(i0, i0 + 4096)
        px = (tile[sl] % bins.tiles_x)[:, None] * 16 + lx
        py = (tile[sl] // bins.tiles_x)[:, None] * 16 + ly
        dx, dy = px + 0.5 - m[sl, :1], py + 0.5 - m[sl, 1:]
        alpha = o[sl, None] * np.exp(-0.5 * (c[sl, :1] * dx * dx + 2 * c[sl, 1:2] * dx * dy + c[sl, 2:] * dy * dy))
        hit = (alpha >= (1.0 - margin) / 255.0) & (px < width) & (py < height)
        for b in range(L.NBLK):
            out[sl, b] = hit[:, block == b].any(1)
    return out


@pytest.mark.parametrize("scene", ["plant", "thresholds", "elongated"])
def test_block_buckets_hold_every_entry_that_can_contribute(shared_data, scene):
    """The replay visits, per lane block, only the entries of its bucket: every entry that reaches
    alpha >= 1/255 (float64, with a margin) at a pixel of the block must be in it. And the buckets must be
    tight, else the test above proves little and the backward wastes work."""
    if scene == "plant":
        width, height = 128, 96
        real = load(shared_data, "plant")
        with torch.no_grad():
            proj = project(real, orbit_camera(real, "plant", width, height, 30.0, 20.0))
    elif scene == "thresholds":
        width, height = 40, 36
        proj = _threshold_scene(width, height, 12)
    else:  # thin, tilted Gaussians up to 40 px long: the chords of a block's rows differ widely
        width, height = 70, 45
        cam = front_camera(width, height)
        with torch.no_grad():
            proj = project(random_scene(400, cam, seed=3, sigma_px=(0.3, 14.0), opacity=(0.05, 1.0)), cam)
    bins = _bins(proj, width, height)
    members = _block_members(*(x.detach().contiguous().numpy() for x in
                               (proj.means2d, proj.conics, proj.opacities, proj.colors, proj.depths)),
                             bins.reach, bins.offsets, bins.gids, bins.tiles_x)
    reached = _blocks_reached(proj, bins, width, height)
    assert reached.sum() > 500
    missing = reached & ~members
    assert not missing.any(), f"{int(missing.sum())} (entry, block) pairs that can contribute are not visited"
    # (on the threshold scene most Gaussians barely touch 1/255, so the bucket rule's safety margins weigh more)
    slack = 1.5 if scene == "thresholds" else 1.2
    assert members.sum() <= slack * reached.sum(), f"loose buckets: {members.sum()} for {reached.sum()} needed"


def test_replayed_transmittance_matches_forward():
    """On a denser scene (list lengths in the hundreds) the replay's final T equals the forward's bit for bit, in
    every variant (the replay runs the forward's own step)."""
    width, height = 96, 80
    cam = front_camera(width, height)
    with torch.no_grad():
        proj = project(random_scene(4000, cam, seed=5, opacity=(0.05, 0.999)), cam)
    bins = _bins(proj, width, height)
    splats = K.Splats(*(x.contiguous().numpy() for x in (proj.means2d, proj.conics, proj.opacities, proj.colors,
                                                          proj.depths)), bins.reach)
    frame = K.Frame(width, height, np.asarray(BG, np.float32))
    z3 = np.zeros((height, width, 3), np.float32)
    e3, e1 = np.empty((0, 0, 3), np.float32), np.empty((0, 0), np.float32)  # absent upstream gradients
    for variant in (K.PLAIN, K.FIRST, K.SECOND):
        rows = np.full((bins.n_pairs, KB.NGRAD), np.nan, np.float32)  # NaN: an unwritten row cannot pass as 0
        c, dx, dy, dxy = (np.empty((height, width, 3), np.float32) for _ in range(4))
        tr, dp, rt = (np.empty((height, width), np.float32) for _ in range(3))
        images = K.Images(c, tr, dp, dx, dy, dxy) if variant != K.PLAIN else K.Images(c, tr, dp, e3, e3, e3)
        K.composite_forward(splats, _lists(bins), frame, images, variant)
        up = KB.Upstream(z3, e1, z3, e3, z3) if variant != K.PLAIN else KB.Upstream(e3, e1, e3, e3, e3)
        KB.composite_backward(splats, _lists(bins), frame, up, rows, variant, rt)
        trans = np.float32(1.0) - tr  # the forward returns alpha = 1 - T_final
        assert trans.min() < 1e-3  # saturated pixels exist
        assert (trans == rt).all(), "the replay's final transmittance differs from the forward's"
        assert (rows == 0).all()  # zero upstream gradient, zero gradient rows (every row written)


# ----------------------------------------------------------------------------------------------- end to end
def _scene_for_fd(cam) -> su.Gaussians:
    return random_scene(6, cam, seed=21, sh_degree=1, sigma_px=(1.5, 4.0), opacity=(0.3, 0.95), margin_px=-3.0,
                        dtype=torch.float64)


def _ref_loss(scene64, cam, weights, derivatives):
    """Reference loss in float64 and a signature of every discrete event (visibility, tiles, decisions)."""
    proj = ref.project(scene64, cam)
    pts = _pixel_centres(cam.width, cam.height)
    out = ref.composite(proj, cam.width, cam.height, background=BG, derivatives=derivatives, points=pts)
    sig = (proj.visible.clone(), ref.tile_ranges(proj, cam.width, cam.height), out["trace"])
    shape = (cam.height, cam.width)
    out = {k: v.reshape(shape + v.shape[1:]) for k, v in out.items() if k in PLANES}
    planes = PLANES if derivatives else PLANES[:2]
    return float(_loss(out, weights, planes)), sig


@pytest.mark.parametrize("derivatives", [True, False], ids=["derivatives", "plain"])
def test_end_to_end_gradients_match_reference_finite_differences(derivatives):
    """d loss / d (means, quats, log_scales, opacity_logits, sh) through su.rasterize (float32 projection +
    kernels) against float64 central differences of the reference twins, along a random direction in each
    Gaussian's block of each parameter tensor (30 directions: a wrong component cannot hide in a sum over
    the whole scene)."""
    cam = front_camera(22, 18)
    scene64 = _scene_for_fd(cam)
    g = torch.Generator().manual_seed(5)
    weights = {k: torch.randn(cam.height, cam.width, 1 if k == "alpha" else 3, generator=g, dtype=torch.float64)
               for k in PLANES}
    planes = PLANES if derivatives else PLANES[:2]

    params = {k: v.to(torch.float32).requires_grad_(True) for k, v in scene64.tensors().items()}
    out = su.rasterize(su.Gaussians(**params), cam, derivatives=derivatives, background=BG)
    outs = {"color": out.color, "alpha": out.alpha, "dx": out.dx, "dy": out.dy, "dxy": out.dxy}
    loss32 = _loss(outs, weights, planes)
    loss32.backward()

    base_loss, base_sig = _ref_loss(scene64, cam, weights, derivatives)
    assert abs(base_loss - float(loss32.detach())) < 1e-4 * max(1.0, abs(base_loss))
    base = scene64.tensors()
    h = 1e-6
    for name, t in base.items():
        for i in range(t.shape[0]):
            v = torch.zeros_like(t)
            v[i] = torch.randn(t[i].shape, generator=g, dtype=torch.float64)
            v /= v.norm()
            vals = []
            for sgn in (1.0, -1.0):
                pert = dict(base, **{name: t + sgn * h * v})
                loss, sig = _ref_loss(su.Gaussians(**pert), cam, weights, derivatives)
                for s0, s1 in zip(base_sig, sig, strict=True):
                    assert torch.equal(s0, s1), f"{name}[{i}]: a discrete event was crossed; choose another scene"
                vals.append(loss)
            fd = (vals[0] - vals[1]) / (2 * h)
            got = float((params[name].grad.double() * v).sum())
            scale = float(params[name].grad.double()[i].norm())
            assert abs(got - fd) <= 3e-5 * max(scale, 1e-3) + 3e-4 * abs(fd), (
                f"d loss / d {name}[{i}] along a random direction: analytic {got:.6g}, finite difference {fd:.6g}"
            )


# ----------------------------------------------------------------------------------------------- degenerate
def test_no_nan_gradients_for_degenerate_gaussians():
    """Zero-scale and flat Gaussians, Gaussians straddling the camera plane or at the camera centre, one exactly
    on a pixel centre, opacity 1 (clamped) and opacity 0: every gradient is finite."""
    cam = front_camera(32, 24)
    scene = random_scene(40, cam, seed=9, opacity=(0.2, 0.999), dtype=torch.float64)
    t = scene.tensors()
    t["log_scales"][0:4] = -1e3  # exp -> 0: zero-scale Gaussians (only the dilation remains), on screen:
    t["means"][0:4, :2] = t["means"][0:4, 2:] * torch.tensor([[-0.2, 0.1], [0.0, 0.0], [0.1, -0.05], [0.3, 0.2]])
    t["log_scales"][4, 0] = -1e3  # flat
    t["means"][5:8, 2] = torch.tensor([0.0, -0.2, 0.05])  # on / behind / just in front of the camera plane
    t["log_scales"][5:8] = 0.5  # large: these straddle the plane
    t["means"][8] = torch.tensor([0.0, 0.0, 0.0])  # at the camera centre
    t["means"][9, :2] = t["means"][9, 2] * torch.tensor([(16.5 - cam.cx) / cam.fx, (12.5 - cam.cy) / cam.fy])
    t["opacity_logits"][10] = 30.0  # opacity 1: clamped
    t["opacity_logits"][11] = -200.0  # opacity 0 in float32
    params = {k: v.to(torch.float32).requires_grad_(True) for k, v in t.items()}
    with torch.no_grad():
        vis = project(su.Gaussians(**params), cam).visible
    assert vis[[0, 1, 2, 3, 4, 7, 9, 10, 11]].all() and not vis[[5, 6, 8]].any()  # the cases are really on screen
    for derivatives in (True, False):
        for p in params.values():
            p.grad = None
        out = su.rasterize(su.Gaussians(**params), cam, derivatives=derivatives, background=BG)
        loss = out.color.sum() + out.alpha.sum()
        if derivatives:
            loss = loss + out.dx.sum() + out.dy.square().sum() + out.dxy.sum()
        loss.backward()
        for name, p in params.items():
            assert p.grad is not None and torch.isfinite(p.grad).all(), f"{name}: non-finite gradient"


@pytest.mark.parametrize("derivatives", [True, False], ids=["derivatives", "plain"])
def test_nothing_visible_gives_zero_gradients(derivatives):
    """All Gaussians behind the camera, and an empty scene: backward runs and every gradient is 0."""
    cam = front_camera(20, 16)
    scene = random_scene(10, cam, seed=2)
    t = scene.tensors()
    t["means"] = t["means"] * torch.tensor([1.0, 1.0, -1.0])
    for tensors in (t, su.Gaussians.empty(sh_degree=0).tensors()):
        params = {k: v.clone().requires_grad_(True) for k, v in tensors.items()}
        out = su.rasterize(su.Gaussians(**params), cam, derivatives=derivatives, background=BG)
        assert torch.allclose(out.color, torch.tensor(BG).expand_as(out.color))
        loss = out.color.sum() + out.alpha.sum() + (out.dx.sum() + out.dxy.sum() if derivatives else 0.0)
        loss.backward()
        for name, p in params.items():
            assert p.grad is not None and (p.grad == 0).all(), name
