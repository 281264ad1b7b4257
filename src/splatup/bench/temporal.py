"""Temporal stability of an upscaling method along a camera path, against the native path.

For frames F_t of a method and N_t of the native render of the same cameras, each consecutive pair gives the
method's frame-to-frame change D_t = F_{t+1} - F_t and native's D*_t = N_{t+1} - N_t. The flicker error
e_t = D_t - D*_t = E_{t+1} - E_t is how much the method's error image E = F - N changes between frames: an error
that stays put as the camera moves (a steady blur) costs nothing, an error that comes and goes (shimmer, crawling
edges, popping detail) costs its full size. Reported over all pairs and pixels (images in [0, 1]):

- ``tpsnr``: 10 log10(1 / mean(e^2)) in dB, the PSNR of the frame-to-frame differences (higher is steadier;
  infinite for native itself);
- ``trmse``: sqrt(mean(e^2));
- ``relative``: sqrt(mean(e^2)) / sqrt(mean(D*^2)), the flicker error as a fraction of the real change between
  frames (0 is native's motion exactly).

The per-frame quality against native (PSNR, SSIM) is reported beside it, as the ordinary metrics of the path.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from ..camera import Camera
from ..gaussians import Gaussians


@dataclass
class TemporalStability:
    """Streaming accumulator: ``add(frame, native_frame)`` for t = 0, 1, 2, ... ([H, W, 3] float, same size);
    :meth:`result` gives the figures of the module docstring. Holds only the previous pair."""

    _prev: tuple[torch.Tensor, torch.Tensor] | None = None
    _err_sq: float = 0.0
    _ref_sq: float = 0.0
    _count: int = 0
    pair_mse: list[float] = field(default_factory=list)

    def add(self, frame: torch.Tensor, native: torch.Tensor) -> None:
        f, n = frame.detach().double(), native.detach().double()
        if f.shape != n.shape:
            raise ValueError(f"TemporalStability.add: frame {tuple(f.shape)} and native {tuple(n.shape)} differ")
        if self._prev is not None:
            pf, pn = self._prev
            if pf.shape != f.shape:
                raise ValueError(f"TemporalStability.add: the frame size changed from {tuple(pf.shape)} to "
                                 f"{tuple(f.shape)}")
            e = (f - pf) - (n - pn)
            d = n - pn
            se = float((e * e).sum())
            self._err_sq += se
            self._ref_sq += float((d * d).sum())
            self._count += e.numel()
            self.pair_mse.append(se / e.numel())
        self._prev = (f, n)

    def result(self) -> dict[str, float]:
        """{'pairs', 'tpsnr', 'trmse', 'relative'}; needs at least two frames."""
        if self._count == 0:
            raise ValueError("TemporalStability.result: needs at least two frames")
        mse = self._err_sq / self._count
        return {"pairs": len(self.pair_mse), "tpsnr": math.inf if mse == 0 else -10.0 * math.log10(mse),
                "trmse": math.sqrt(mse),
                "relative": math.sqrt(self._err_sq / self._ref_sq) if self._ref_sq > 0 else math.nan}


def temporal_stability(frames: Sequence[torch.Tensor], native: Sequence[torch.Tensor]) -> dict[str, float]:
    """The figures of the module docstring for whole sequences of frames."""
    acc = TemporalStability()
    for f, n in zip(frames, native, strict=True):
        acc.add(f, n)
    return acc.result()


@dataclass
class PathComparison:
    """Per method: temporal figures, mean per-frame PSNR / SSIM against native, and per-frame PSNR."""

    scale: float
    frames: int
    size: tuple[int, int]
    lowres_size: tuple[int, int]
    methods: dict[str, dict[str, object]]
    strip_frames: dict[str, list[np.ndarray]]  # method -> the first few frames (float [H, W, 3]) for the strip


def compare_path(
    scene: Gaussians,
    cams: Sequence[Camera],
    scale: float,
    methods: Sequence[str],
    background: Sequence[float] = (0.0, 0.0, 0.0),
    strip: int = 4,
    on_frame: Callable[[int, int], None] | None = None,
) -> PathComparison:
    """Render every camera natively and at 1/``scale`` (one low-res render with derivatives per frame, upscaled by
    every method, as :func:`splatup.bench.compare.compare_view`; "hermite-first" upscales its own render with
    ``derivatives="first"``), and measure each method's temporal stability and per-frame quality against the native
    path. Keeps the first ``strip`` frames of each for a figure."""
    from ..metrics import psnr, ssim
    from ..pipeline import lowres_derivatives, render_lowres, upscale_lowres
    from ..render.rasterize import rasterize

    acc = {m: TemporalStability() for m in methods}
    quality: dict[str, dict[str, list[float]]] = {m: {"psnr": [], "ssim": []} for m in methods}
    frames: dict[str, list[np.ndarray]] = {m: [] for m in ("native", *methods)}
    lr_size = (0, 0)
    with torch.no_grad():
        for t, cam in enumerate(cams):
            size = (cam.height, cam.width)
            nat = rasterize(scene, cam, background=background).color.clamp(0, 1)
            lr, lr_cam = render_lowres(scene, cam, scale, derivatives=True, background=background)
            lr_first = (render_lowres(scene, cam, scale, derivatives="first", background=background)[0]
                        if any(lowres_derivatives(m) == "first" for m in methods) else None)
            lr_size = (lr_cam.height, lr_cam.width)
            if t < strip:
                frames["native"].append(nat.numpy().copy())
            for m in methods:
                img = upscale_lowres(lr_first if lowres_derivatives(m) == "first" else lr, size, m)
                acc[m].add(img, nat)
                quality[m]["psnr"].append(float(psnr(img, nat)))
                quality[m]["ssim"].append(float(ssim(img, nat)))
                if t < strip:
                    frames[m].append(img.numpy().copy())
            if on_frame:
                on_frame(t + 1, len(cams))
    out = {}
    for m in methods:
        ps = quality[m]["psnr"]
        out[m] = {**acc[m].result(), "psnr": float(np.mean(ps)), "ssim": float(np.mean(quality[m]["ssim"])),
                  "psnr_per_frame": ps, "tpsnr_per_pair": [-10 * math.log10(v) if v > 0 else math.inf
                                                           for v in acc[m].pair_mse]}
    return PathComparison(float(scale), len(cams), (cams[0].height, cams[0].width), lr_size, out, frames)


def frame_strip(cmp: PathComparison, path: Path, title: str = "") -> None:
    """PNG figure: one row per method (native first) of the first frames, zoomed on the region of most detail,
    and below each method's row the flicker error |e_t| of the same pairs (frames t-1 -> t) on a shared scale."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from ..io._atomic import atomic_write
    from .compare import detail_crop

    names = list(cmp.strip_frames)
    nat = cmp.strip_frames["native"]
    k = len(nat)
    y0, x0, h, w = detail_crop(torch.from_numpy(nat[0]), frac=0.35)
    crop = (slice(y0, y0 + h), slice(x0, x0 + w))
    errs = {m: [np.abs((f1 - f0) - (n1 - n0)).mean(-1)[crop] for f0, f1, n0, n1 in
                zip(cmp.strip_frames[m], cmp.strip_frames[m][1:], nat, nat[1:])] for m in names[1:]}
    vmax = max(1e-3, max(float(np.quantile(np.concatenate([e.ravel() for e in es]), 0.995)) for es in errs.values()))
    rows = 1 + 2 * (len(names) - 1)
    fig, axes = plt.subplots(rows, k, figsize=(1.9 * k, 1.9 * rows * h / w + 0.5), squeeze=False)
    r = 0
    for m in names:
        for j in range(k):
            axes[r, j].imshow(np.clip(cmp.strip_frames[m][j][crop], 0, 1), interpolation="nearest")
            axes[r, j].set_title(f"frame {j}" if r == 0 else "", fontsize=7)
        label = m if m == "native" else f"{m}\n{cmp.methods[m]['tpsnr']:.1f} dB tPSNR"
        axes[r, 0].set_ylabel(label, fontsize=7)
        r += 1
        if m != "native":
            axes[r, 0].set_visible(False)
            for j in range(1, k):
                axes[r, j].imshow(errs[m][j - 1], cmap="magma", vmin=0, vmax=vmax, interpolation="nearest")
            axes[r, 1].set_ylabel(f"|flicker error|\n0 to {vmax:.2g}", fontsize=7)
            r += 1
    for ax in axes.ravel():
        ax.set_xticks([])
        ax.set_yticks([])
    fig.suptitle(title, fontsize=8)
    fig.tight_layout(rect=(0, 0, 1, 1 - 0.35 / fig.get_figheight()))
    with atomic_write(Path(path)) as f:
        fig.savefig(f, dpi=120, format="png")
    plt.close(fig)
