"""Side-by-side comparison of upscaling methods against the native full-size render.

For one camera and factor s: the native render (the reference), one low-resolution render at 1/s shared by every
method (with derivatives; the classic methods use only its colour), each method's upscaled image, PSNR / SSIM /
LPIPS against native, and the time per frame of each path (median of repeats, interleaved):

- native: rasterize at full size;
- hermite: rasterize at 1/s with derivatives + Hermite upscale;
- hermite-first: rasterize at 1/s with derivatives="first" (its own low-res render, made only when the method is
  asked for) + Hermite upscale with d2C/dxdy = 0;
- any classic method: rasterize at 1/s without derivatives + that upscaler.
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
from ..pipeline import CLASSIC_METHODS, lowres_derivatives, render_lowres, upscale_lowres
from ..render.rasterize import rasterize
from .timing import interleaved_medians

DEFAULT_METHODS = ("hermite", "fd-hermite", "bicubic", "lanczos", "bilinear", "nearest")


@dataclass
class MethodResult:
    """One method on one view. time_s: median seconds per frame (render + upscale)."""

    method: str
    image: torch.Tensor
    time_s: float
    metrics: dict[str, float] = field(default_factory=dict)


@dataclass
class ViewComparison:
    camera: Camera
    scale: float
    native: MethodResult
    methods: dict[str, MethodResult]
    lowres_size: tuple[int, int]
    timings: dict[str, float]


def quality_metrics(img: torch.Tensor, ref: torch.Tensor, use_lpips: bool = True) -> dict[str, float]:
    """PSNR (dB), SSIM and LPIPS-Alex of ``img`` against ``ref`` ([H, W, 3] in [0, 1]). LPIPS is NaN if its weights
    are not installed."""
    from ..metrics import lpips, psnr, ssim

    out = {"psnr": float(psnr(img, ref)), "ssim": float(ssim(img, ref))}
    if use_lpips:
        try:
            out["lpips"] = float(lpips(img, ref))
        except FileNotFoundError:
            out["lpips"] = float("nan")
    return out


def compare_view(
    scene: Gaussians,
    cam: Camera,
    scale: float,
    methods: Sequence[str] = DEFAULT_METHODS,
    background: Sequence[float] = (0.0, 0.0, 0.0),
    repeats: int = 3,
    use_lpips: bool = True,
    lowres_dilation: float | str = "matched",
) -> ViewComparison:
    """Render ``cam`` natively and through every method at factor ``scale``; measure quality and time."""
    size = (cam.height, cam.width)
    native = rasterize(scene, cam, background=background).color
    lr_out, lr_cam = render_lowres(scene, cam, scale, derivatives=True, background=background,
                                   lowres_dilation=lowres_dilation)
    need_first = any(lowres_derivatives(m) == "first" for m in methods)
    lr_first = render_lowres(scene, cam, scale, derivatives="first", background=background,
                             lowres_dilation=lowres_dilation)[0] if need_first else None
    source = {m: lr_first if lowres_derivatives(m) == "first" else lr_out for m in methods}
    images = {m: upscale_lowres(source[m], size, m) for m in methods}

    fns: dict[str, Callable[[], object]] = {
        "native": lambda: rasterize(scene, cam, background=background),
        "lowres_plain": lambda: render_lowres(scene, cam, scale, derivatives=False, background=background,
                                              lowres_dilation=lowres_dilation),
        "lowres_derivatives": lambda: render_lowres(scene, cam, scale, derivatives=True, background=background,
                                                    lowres_dilation=lowres_dilation),
    }
    if need_first:
        fns["lowres_first"] = lambda: render_lowres(scene, cam, scale, derivatives="first", background=background,
                                                    lowres_dilation=lowres_dilation)
    for m in methods:
        fns[f"upscale/{m}"] = (lambda m=m: upscale_lowres(source[m], size, m))
    t = interleaved_medians(fns, repeats, warmup=1)

    base_of = {True: "lowres_derivatives", "first": "lowres_first", False: "lowres_plain"}
    results = {}
    for m in methods:
        base = t[base_of[lowres_derivatives(m)]]
        results[m] = MethodResult(m, images[m], base + t[f"upscale/{m}"], quality_metrics(images[m], native, use_lpips))
    nat = MethodResult("native", native, t["native"], {"psnr": math.inf, "ssim": 1.0, "lpips": 0.0})
    return ViewComparison(cam, scale, nat, results, (lr_cam.height, lr_cam.width), t)


def compare_views(
    scene: Gaussians,
    cams: Sequence[Camera],
    scale: float,
    methods: Sequence[str] = DEFAULT_METHODS,
    background: Sequence[float] = (0.0, 0.0, 0.0),
    repeats: int = 3,
    use_lpips: bool = True,
    on_view: Callable[[int, int], None] | None = None,
) -> list[ViewComparison]:
    """:func:`compare_view` on every camera, in order; ``on_view(i, n)`` after view i (1-based) of n."""
    views = []
    for i, cam in enumerate(cams):
        views.append(compare_view(scene, cam, scale, methods, background=background, repeats=repeats,
                                  use_lpips=use_lpips))
        if on_view:
            on_view(i + 1, len(cams))
    return views


def detail_crop(img: torch.Tensor, frac: float = 0.22) -> tuple[int, int, int, int]:
    """(y0, x0, h, w) of a square window around the region of most image detail (largest local gradient energy)."""
    g = img.mean(-1).numpy().astype(np.float64)
    H, W = g.shape
    e = np.zeros_like(g)
    e[:, 1:] += np.diff(g, axis=1) ** 2
    e[1:, :] += np.diff(g, axis=0) ** 2
    side = max(8, int(min(H, W) * frac))
    # box-sum of the energy over every side x side window via an integral image
    S = np.pad(e.cumsum(0).cumsum(1), ((1, 0), (1, 0)))
    box = S[side:, side:] - S[:-side, side:] - S[side:, :-side] + S[:-side, :-side]
    y0, x0 = np.unravel_index(np.argmax(box), box.shape)
    return int(y0), int(x0), side, side


def comparison_figure(view: ViewComparison, path, title: str = "") -> None:
    """Write a grid: rows = full image (crop marked), zoomed crop, error map |method - native|; one column per
    method, native first. PNG, written atomically."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Rectangle

    from ..io._atomic import atomic_write

    cols = [view.native] + list(view.methods.values())
    y0, x0, h, w = detail_crop(view.native.image)
    ref = view.native.image.numpy()
    err_max = max(1e-3, max(float(np.quantile(np.abs(c.image.numpy() - ref).mean(-1), 0.999)) for c in cols[1:]))
    n = len(cols)
    H, W = ref.shape[:2]
    fig_w = 2.6 * n
    fig, axes = plt.subplots(3, n, figsize=(fig_w, fig_w / n * (H / W + 1 + 1) + 0.9), squeeze=False)
    for j, c in enumerate(cols):
        img = np.clip(c.image.numpy(), 0, 1)
        ax = axes[0, j]
        ax.imshow(img, interpolation="nearest")
        ax.add_patch(Rectangle((x0 - 0.5, y0 - 0.5), w, h, fill=False, ec="yellow", lw=1))
        m = c.metrics
        sub = "reference" if c.method == "native" else f"{m['psnr']:.2f} dB  SSIM {m['ssim']:.3f}"
        if c.method != "native" and not math.isnan(m.get("lpips", math.nan)):
            sub += f"\nLPIPS {m['lpips']:.3f}"
        ax.set_title(f"{c.method}\n{sub}\n{c.time_s * 1e3:.0f} ms/frame", fontsize=8)
        axes[1, j].imshow(img[y0:y0 + h, x0:x0 + w], interpolation="nearest")
        err = np.abs(c.image.numpy() - ref).mean(-1)
        axes[2, j].imshow(err, cmap="magma", vmin=0, vmax=err_max, interpolation="nearest")
        for r in range(3):
            axes[r, j].set_xticks([])
            axes[r, j].set_yticks([])
    axes[1, 0].set_ylabel("zoomed crop", fontsize=8)
    axes[2, 0].set_ylabel(f"|error| (0 to {err_max:.2g})", fontsize=8)
    lr_h, lr_w = view.lowres_size
    fig.suptitle(title or f"{W}x{H} from {lr_w}x{lr_h} (x{view.scale:g})", fontsize=10)
    fig.tight_layout()
    with atomic_write(Path(path)) as f:
        fig.savefig(f, dpi=110, format="png")
    plt.close(fig)


def summarise(views: Sequence[ViewComparison]) -> dict[str, dict[str, float]]:
    """Mean metrics and median time per method over views, plus native's time."""
    out: dict[str, dict[str, float]] = {}
    methods = list(views[0].methods)
    out["native"] = {"time_s": float(np.median([v.native.time_s for v in views])), "psnr": math.inf, "ssim": 1.0,
                     "lpips": 0.0}
    for m in methods:
        rs = [v.methods[m] for v in views]
        row = {"time_s": float(np.median([r.time_s for r in rs]))}
        for k in rs[0].metrics:
            row[k] = float(np.mean([r.metrics[k] for r in rs]))
        out[m] = row
    for row in out.values():
        row["speedup"] = out["native"]["time_s"] / row["time_s"]
    return out


__all__ = ["CLASSIC_METHODS", "DEFAULT_METHODS", "MethodResult", "ViewComparison", "compare_view",
           "compare_views", "comparison_figure", "detail_crop", "quality_metrics", "summarise"]
