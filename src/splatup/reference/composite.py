"""Reference compositing with image-space derivatives: the slow, plain-torch twin of render/composite.py.

Semantics (DESIGN.md, render/composite.py): a point p (pixel (i, j) at (i + 0.5, j + 0.5)) sees the visible
Gaussians listed for its tile by the rule of render/tiles.py, in depth order with ties broken by index. With
d = p - mean and conic (a, b, c):

    alpha = min(0.99, o exp(-1/2 (a dx^2 + 2 b dx dy + c dy^2))),  skip alpha < 1/255,
    stop (without adding) when T (1 - alpha) < 1e-4,  C = sum col alpha T + T_final bg.

The derivatives use the closed form of the front-to-back recurrence (research/kernels.md), not the recurrence
itself: with the products T_i = prod_{j<i} (1 - alpha_j) over the contributing Gaussians,

    T_x,i = T_i S_x,i,   S_x,i = -sum_{j<i} alpha_x,j / (1 - alpha_j)              (S_y likewise)
    T_xy,i = T_i (S_x,i S_y,i + S_xy,i),
    S_xy,i = -sum_{j<i} [alpha_xy,j / (1 - alpha_j) + alpha_x,j alpha_y,j / (1 - alpha_j)^2]
    dC/dx = sum col (alpha_x T + alpha T_x) + bg T_x,final, ...

with alpha_x = alpha q_x, alpha_y = alpha q_y, alpha_xy = alpha (q_x q_y - b), q = -(conic d), all zero where
o exp(power) >= 0.99 (alpha clamped). Because T only decreases, "stop at the first T (1 - alpha) < 1e-4" is
"keep the valid entries whose inclusive product is still >= 1e-4".

Layout: per tile, its points (pixel centres or given positions) against its depth-ordered list. The list is
walked in segments, carrying (T, S_x, S_y, S_xy, sums) from one to the next and dropping points that have
stopped; within a segment alpha is evaluated for every (point, entry) and the compositing runs over each
point's valid entries only (alpha >= 1/255, left-packed in order; skipped entries change nothing). All of it
in the dtype of the inputs (float64 for an oracle) and differentiable by autograd (the discrete decisions
are constants). ``derivatives="first"`` carries only S_x, S_y: dC/dx, dC/dy exactly as in the full mode,
d2C/dxdy returned as zeros.

:func:`composite` is the building block of :func:`splatup.reference.rasterize` (which returns a RasterOutput);
it also evaluates arbitrary points and returns the decision trace that the tests inspect.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import fields, replace

import numpy as np
import torch

from ..errors import SplatupInputError
from ..render.project import Projected
from .tiles import Bins, bin_gaussians, depth_order, tile_ranges

ALPHA_MIN = 1.0 / 255.0
ALPHA_MAX = 0.99
T_MIN = 1e-4

# decision codes per (point, list entry) in the trace
SKIPPED, STOPPED, CLAMPED, SMOOTH = 0, 1, 2, 3
MAX_POINTS = 4096  # points evaluated together


def derivative_order(derivatives: bool | str, fn: str) -> int:
    """0, 1 or 2 for ``derivatives`` False, "first" or True (numpy bools too); SplatupInputError naming the
    argument otherwise."""
    if isinstance(derivatives, str):
        if derivatives == "first":
            return 1
    elif isinstance(derivatives, (bool, np.bool_)):
        return 2 if derivatives else 0
    raise SplatupInputError(f"{fn}: derivatives must be True, False or 'first', got {derivatives!r}")


def projected_to(proj: Projected, dtype: torch.dtype) -> Projected:
    """Copy of ``proj`` with every floating-point field converted to ``dtype`` (visible stays bool)."""
    vals = {f.name: getattr(proj, f.name) for f in fields(proj)}
    return replace(proj, **{k: v.to(dtype) for k, v in vals.items() if v is not None and v.is_floating_point()})


def _excl_cumsum(v: torch.Tensor) -> torch.Tensor:
    """Exclusive cumulative sum along dim 1 (differentiable)."""
    return torch.cumsum(v, dim=1) - v


def _excl_cumprod(v: torch.Tensor) -> torch.Tensor:
    """Exclusive cumulative product along dim 1 (differentiable)."""
    return torch.cat([torch.ones_like(v[:, :1]), torch.cumprod(v[:, :-1], dim=1)], dim=1)


class _State:
    """Per-point compositing state carried from one segment of the list to the next.

    T: product of (1 - alpha) over the contributing entries so far; S_x, S_y, S_xy: the closed-form sums (so
    T_x = T S_x, T_xy = T (S_x S_y + S_xy)); done: the point has stopped (nothing later contributes);
    sums of colour, depth and derivative weights; number of contributors. ``order``: 0 no derivatives,
    1 first (S_x, S_y, dx, dy), 2 also the mixed second derivative (S_xy, dxy).
    """

    NAMES = {0: ("T", "color", "depth", "count"),
             1: ("T", "color", "depth", "count", "Sx", "Sy", "dx", "dy"),
             2: ("T", "color", "depth", "count", "Sx", "Sy", "dx", "dy", "Sxy", "dxy")}

    def __init__(self, n: int, dt: torch.dtype, order: int):
        self.order = order
        z = torch.zeros(n, dtype=dt)
        self.T = torch.ones(n, dtype=dt)
        self.done = torch.zeros(n, dtype=torch.bool)
        self.color = torch.zeros(n, 3, dtype=dt)
        self.depth = z
        self.count = torch.zeros(n, dtype=torch.int64)
        if order >= 1:
            self.Sx, self.Sy = z, z
            self.dx = torch.zeros(n, 3, dtype=dt)
            self.dy = torch.zeros(n, 3, dtype=dt)
        if order >= 2:
            self.Sxy = z
            self.dxy = torch.zeros(n, 3, dtype=dt)

    def names(self) -> tuple[str, ...]:
        return self.NAMES[self.order]


def _pack(valid: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Left-pack each row's True entries of ``valid`` [P, S], keeping their order.

    Returns idx [P, K] (column of the k-th True entry of each row; 0 where padded), mask [P, K] (real entries),
    and [3, M] (row, column, slot k) of the M True entries (for scattering back).
    """
    n_rows = valid.shape[0]
    k_max = int(valid.sum(1).max()) if valid.numel() else 0
    rows, cols = torch.nonzero(valid, as_tuple=True)  # row-major: columns ascend within a row
    slot = (torch.cumsum(valid.to(torch.int64), dim=1) - 1)[rows, cols]
    idx = torch.zeros(n_rows, k_max, dtype=torch.int64)
    mask = torch.zeros(n_rows, k_max, dtype=torch.bool)
    idx[rows, slot] = cols
    mask[rows, slot] = True
    return idx, mask, torch.stack([rows, cols, slot])


def _segment(st: dict[str, torch.Tensor], pts: torch.Tensor, proj: Projected, gids: torch.Tensor,
             order: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Composite the next depth-ordered entries ``gids`` [S] at the still running points ``pts`` [P, 2] whose
    state tensors are ``st`` (updated in the dict, out of place).

    alpha is evaluated for every (point, entry); the compositing itself runs on each point's valid entries
    only (alpha >= 1/255, left-packed in order: skipped entries change nothing, and most entries of a tile's
    list are skipped at most of its pixels). Returns the decision codes [P, S] (int8) and whether each point
    stopped in this segment [P] bool.
    """
    n_pts, n_seg = pts.shape[0], gids.shape[0]
    mean = proj.means2d[gids]  # [S, 2]
    a, b, c = proj.conics[gids].unbind(-1)
    dx = pts[:, :1] - mean[None, :, 0]  # [P, S]
    dy = pts[:, 1:] - mean[None, :, 1]
    power = -0.5 * (a * dx * dx + 2.0 * b * dx * dy + c * dy * dy)
    raw = proj.opacities[gids] * torch.exp(power)
    with torch.no_grad():
        valid = raw >= ALPHA_MIN  # = (min(0.99, raw) >= 1/255)
        idx, mask, (rows, cols, slot) = _pack(valid)
    if idx.shape[1] == 0:  # nothing reaches 1/255 here: every entry is skipped at every point
        return torch.full((n_pts, n_seg), SKIPPED, dtype=torch.int8), torch.zeros(n_pts, dtype=torch.bool)
    # packed [P, K] views of the valid entries (padding: alpha 0, which changes nothing)
    raw_p = raw.gather(1, idx)
    alpha = torch.where(mask, torch.clamp(raw_p, max=ALPHA_MAX), torch.zeros_like(raw_p))
    g = gids[idx]  # [P, K] Gaussian ids
    with torch.no_grad():
        # inclusive product continuing from T: the stop test of each entry
        incl = st["T"].detach()[:, None] * torch.cumprod(1.0 - alpha, dim=1)
        keep = mask & (incl >= T_MIN)
        smooth = keep & (raw_p < ALPHA_MAX)
        stopping = mask & ~keep
        stopped = stopping.any(1)
        first = torch.argmax(stopping.to(torch.int8), dim=1)  # first stopping slot (0 if none)
        stop_pos = torch.where(stopped, idx.gather(1, first[:, None])[:, 0], torch.full_like(first, n_seg))
        code_p = torch.where(smooth, SMOOTH, CLAMPED).to(torch.int8)
        trace = torch.full((n_pts, n_seg), SKIPPED, dtype=torch.int8)
        trace[rows, cols] = code_p[rows, slot]
        trace[torch.arange(n_seg)[None, :] >= stop_pos[:, None]] = STOPPED
    alpha_k = torch.where(keep, alpha, torch.zeros_like(alpha))
    one_minus = 1.0 - alpha_k  # 1 where not contributing
    T = st["T"][:, None] * _excl_cumprod(one_minus)  # [P, K] transmittance before each entry
    w = alpha_k * T
    col = proj.colors[g]  # [P, K, 3]

    def weigh(v: torch.Tensor) -> torch.Tensor:
        return (v[..., None] * col).sum(1)

    st["color"] = st["color"] + weigh(w)
    st["depth"] = st["depth"] + (w * proj.depths[g]).sum(1)
    st["count"] = st["count"] + keep.sum(1)
    if order >= 1:
        zero = torch.zeros_like(alpha_k)
        dxp, dyp = dx.gather(1, idx), dy.gather(1, idx)
        ap, bp, cp = a[idx], b[idx], c[idx]
        qx = -(ap * dxp + bp * dyp)
        qy = -(bp * dxp + cp * dyp)
        ax = torch.where(smooth, alpha_k * qx, zero)
        ay = torch.where(smooth, alpha_k * qy, zero)
        fx = -ax / one_minus
        fy = -ay / one_minus
        Sx = st["Sx"][:, None] + _excl_cumsum(fx)
        Sy = st["Sy"][:, None] + _excl_cumsum(fy)
        Tx, Ty = T * Sx, T * Sy
        st["dx"] = st["dx"] + weigh(ax * T + alpha_k * Tx)
        st["dy"] = st["dy"] + weigh(ay * T + alpha_k * Ty)
        st["Sx"], st["Sy"] = st["Sx"] + fx.sum(1), st["Sy"] + fy.sum(1)
    if order >= 2:
        axy = torch.where(smooth, alpha_k * (qx * qy - bp), zero)
        fxy = -(axy / one_minus + ax * ay / (one_minus * one_minus))
        Sxy = st["Sxy"][:, None] + _excl_cumsum(fxy)
        Txy = T * (Sx * Sy + Sxy)
        st["dxy"] = st["dxy"] + weigh(axy * T + ax * Ty + ay * Tx + alpha_k * Txy)
        st["Sxy"] = st["Sxy"] + fxy.sum(1)
    st["T"] = st["T"] * torch.prod(one_minus, dim=1)
    return trace, stopped


def _eval_list(
    pts: torch.Tensor, proj: Projected, gids: torch.Tensor, bg: torch.Tensor, order: int, chunk_elems: int
) -> dict[str, torch.Tensor]:
    """Composite the depth-ordered list ``gids`` [L] at points ``pts`` [P, 2] with derivatives of ``order``
    (0, 1 or 2, see :class:`_State`).

    The list is walked in segments that grow from 64 entries up to ``chunk_elems / P``; each segment only
    evaluates the points that have not stopped yet, and the walk ends when all have.

    Returns color [P, 3], trans [P] (T_final), depth_acc [P] (sum w z), n_contrib [P], trace [P, L] int8
    (decision codes; STOPPED for entries never reached) and, with derivatives, dx, dy, dxy [P, 3] and
    tder [P, 3] = final (T_x, T_y, T_xy) (dxy and T_xy zero for order 1).
    """
    n_pts, n_list = pts.shape[0], gids.shape[0]
    state = _State(n_pts, pts.dtype, order)
    names = state.names()
    trace = torch.full((n_pts, n_list), STOPPED, dtype=torch.int8)
    start, seg = 0, 64
    cap = max(64, chunk_elems // max(1, n_pts))
    while start < n_list:
        run = torch.nonzero(~state.done).flatten()
        if run.numel() == 0:
            break
        stop = min(n_list, start + seg)
        sub = {k: getattr(state, k)[run] for k in names}
        trace[run, start:stop], stopped = _segment(sub, pts[run], proj, gids[start:stop], order)
        for k in names:  # out-of-place scatter keeps autograd happy
            setattr(state, k, getattr(state, k).index_copy(0, run, sub[k]))
        state.done = state.done.index_copy(0, run, stopped)
        start, seg = stop, min(2 * seg, cap)
    out = {"color": state.color + state.T[:, None] * bg, "trans": state.T, "depth_acc": state.depth,
           "n_contrib": state.count, "trace": trace}
    if order >= 1:
        T, Sx, Sy = state.T, state.Sx, state.Sy
        Txy = T * (Sx * Sy + state.Sxy) if order >= 2 else torch.zeros_like(T)
        tder = torch.stack([T * Sx, T * Sy, Txy], dim=-1)
        out["dx"] = state.dx + tder[:, 0:1] * bg
        out["dy"] = state.dy + tder[:, 1:2] * bg
        out["dxy"] = state.dxy + tder[:, 2:3] * bg if order >= 2 else torch.zeros_like(state.dx)
        out["tder"] = tder
    return out


def composite(
    proj: Projected,
    width: int,
    height: int,
    background: Sequence[float] | torch.Tensor = (0.0, 0.0, 0.0),
    derivatives: bool | str = True,
    tile_size: int = 16,
    points: torch.Tensor | None = None,
    chunk_elems: int = 1 << 19,
    bins: Bins | None = None,
) -> dict[str, torch.Tensor]:
    """Composite the projected Gaussians ``proj`` on a ``width`` x ``height`` image.

    Args:
        proj: screen-space Gaussians (the dtype of its floating fields is the compute dtype).
        width, height: image size in pixels (defines the tile grid).
        background: RGB added as T_final * bg (and bg * (T_x, T_y, T_xy) to the derivatives).
        derivatives: True (dC/dx, dC/dy, d2C/dxdy), "first" (dC/dx, dC/dy; d2C/dxdy and T_xy zeros) or False.
        tile_size: tile edge in pixels.
        points: None for every pixel centre; or [P, 2] continuous (x, y) positions in pixels of this image,
            each evaluated with the list of the tile containing it (floor(x / tile), floor(y / tile)).
        chunk_elems: points x list entries evaluated at once (bounds memory; the list is walked in segments
            and the walk ends once every point of the chunk has stopped).
        bins: the lists, if already made by :func:`splatup.reference.tiles.bin_gaussians` for this image.

    Returns:
        Without ``points``: "color" [H, W, 3], "alpha" [H, W, 1] (1 - T_final), "depth" [H, W, 1] (expected
        camera depth sum(w z) / alpha, 0 where alpha = 0), "n_contrib" [H, W] (contributing Gaussians) and with
        derivatives "dx", "dy", "dxy" [H, W, 3], "tder" [H, W, 3] (final T_x, T_y, T_xy).
        With ``points``: the same per point ([P, 3], [P, 1], [P, 1], [P]) plus "tile" [P] (tile index) and "trace"
        [P, L_max] int8 decision codes per list entry (SKIPPED, STOPPED, CLAMPED, SMOOTH; -1 past the list).
    """
    d_order = derivative_order(derivatives, "reference.composite")
    dt = proj.means2d.dtype
    bg = torch.as_tensor(background, dtype=dt).reshape(3)
    ntx, nty = -(-width // tile_size), -(-height // tile_size)

    if points is None:
        jj, ii = torch.meshgrid(torch.arange(height), torch.arange(width), indexing="ij")
        pts = torch.stack([ii, jj], dim=-1).reshape(-1, 2).to(dt) + 0.5
        tile = (jj // tile_size * ntx + ii // tile_size).reshape(-1)
    else:
        pts = points.to(dt)
        if pts.ndim != 2 or pts.shape[1] != 2:
            raise ValueError(f"reference.composite: points must be [P, 2], got {tuple(pts.shape)}")
        tx = torch.floor(pts[:, 0].detach() / tile_size)
        ty = torch.floor(pts[:, 1].detach() / tile_size)
        if not (((tx >= 0) & (tx < ntx) & (ty >= 0) & (ty < nty)).all()):
            raise ValueError("reference.composite: every point must lie in the tile grid [0, tiles*16)^2")
        tile = (ty * ntx + tx).to(torch.int64)

    order, rng = bins if bins is not None else bin_gaussians(proj, width, height, tile_size)
    parts: list[tuple[torch.Tensor, dict[str, torch.Tensor]]] = []
    for t in torch.unique(tile).tolist():
        tx, ty = t % ntx, t // ntx
        member = (rng[:, 0] <= tx) & (tx <= rng[:, 1]) & (rng[:, 2] <= ty) & (ty <= rng[:, 3])
        gids = order[member]
        idx = torch.nonzero(tile == t).flatten()
        for s in range(0, idx.numel(), MAX_POINTS):
            sel = idx[s : s + MAX_POINTS]
            parts.append((sel, _eval_list(pts[sel], proj, gids, bg, d_order, chunk_elems)))

    n = pts.shape[0]
    perm = torch.cat([p[0] for p in parts])
    inv = torch.empty_like(perm)
    inv[perm] = torch.arange(n)
    out: dict[str, torch.Tensor] = {}
    keys = ["color", "trans", "depth_acc", "n_contrib"] + (["dx", "dy", "dxy", "tder"] if d_order else [])
    for k in keys:
        out[k] = torch.cat([p[1][k] for p in parts])[inv]
    out["alpha"] = (1.0 - out.pop("trans"))[:, None]
    acc = out.pop("depth_acc")[:, None]
    safe = out["alpha"].clamp_min(torch.finfo(dt).tiny)
    out["depth"] = torch.where(out["alpha"] > 0, acc / safe, torch.zeros_like(acc))
    if points is None:
        shape = (height, width)
        return {k: v.reshape(shape + v.shape[1:]) for k, v in out.items()}
    l_max = max(p[1]["trace"].shape[1] for p in parts)
    trace = torch.full((n, l_max), -1, dtype=torch.int8)
    for sel, r in parts:
        trace[sel, : r["trace"].shape[1]] = r["trace"]
    out["trace"] = trace
    out["tile"] = tile
    return out


def render(scene, cam, background=(0.0, 0.0, 0.0), derivatives=True, **project_kwargs) -> dict[str, torch.Tensor]:
    """Old name, kept for the tests that still use it: :func:`splatup.reference.project.project` then
    :func:`composite`, as a dict (scene's dtype). New code calls :func:`splatup.reference.rasterize`."""
    from .project import project

    proj = project(scene, cam, **project_kwargs)
    return composite(proj, cam.width, cam.height, background=background, derivatives=derivatives)


__all__ = ["composite", "depth_order", "derivative_order", "projected_to", "render", "tile_ranges"]
