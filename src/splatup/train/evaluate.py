"""Evaluation of a scene on a dataset split: PSNR, SSIM, LPIPS against the ground-truth images, time per view."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Sequence

import torch

from ..gaussians import Gaussians
from ..io.datasets import load_dataset
from ..pipeline import check_method, render_lowres, upscale_lowres
from ..render.rasterize import rasterize
from .trainer import load_views


def evaluate(
    scene: Gaussians,
    dataset: str,
    split: str = "test",
    width: int | None = None,
    method: str = "native",
    scale: float = 1.0,
    background: Sequence[float] = (0.0, 0.0, 0.0),
    lowres_dilation: float | str = "matched",
    max_views: int | None = None,
    use_lpips: bool = True,
    on_view: Callable[[int, int], None] | None = None,
) -> dict:
    """Render every view of ``split`` at ``width`` with ``method`` (at factor ``scale`` for upscalers) and compare with
    the ground truth composited on ``background``. Returns per-view rows and their means; ``time_s`` is the render
    (+ upscale) time of each view, after one untimed warm-up render."""
    from ..metrics import lpips, psnr, ssim

    check_method(method)
    ds = load_dataset(dataset, split=split)
    views = load_views(ds, width, background, max_views)

    def run(cam):
        if method == "native":
            return rasterize(scene, cam, background=background).color
        out, _ = render_lowres(scene, cam, scale, derivatives=(method == "hermite"), background=background,
                               lowres_dilation=lowres_dilation)
        return upscale_lowres(out, (cam.height, cam.width), method)

    run(views[0].camera)  # warm-up (JIT, caches)
    rows = []
    with torch.no_grad():
        for i, v in enumerate(views):
            t0 = time.perf_counter()
            img = run(v.camera).clamp(0, 1)
            dt = time.perf_counter() - t0
            row = {"view": v.name, "time_s": dt, "psnr": float(psnr(img, v.image)), "ssim": float(ssim(img, v.image))}
            if use_lpips:
                row["lpips"] = float(lpips(img, v.image))
            rows.append(row)
            if on_view:
                on_view(i + 1, len(views))
    keys = [k for k in rows[0] if k != "view"]
    summary = {k: statistics.fmean(r[k] for r in rows) for k in keys}
    summary["median_time_s"] = statistics.median(r["time_s"] for r in rows)
    return {"method": method, "scale": scale if method != "native" else 1.0, "split": split, "views": len(rows),
            "width": views[0].camera.width, "height": views[0].camera.height, "mean": summary, "per_view": rows}
