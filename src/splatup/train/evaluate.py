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
from .metadata import read_training_metadata
from .trainer import load_views

DEFAULT_SCALE = 2.0


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


def trained_render_options(ply_path, method: str | None = None, scale: float | None = None,
                           background: Sequence[float] | None = None, lowres_dilation: float | str | None = None,
                           width: int | None = None) -> tuple[dict, dict | None]:
    """How to render the model ``ply_path`` for evaluation: every option left None is taken from the model's
    training metadata (:func:`~splatup.train.metadata.read_training_metadata`: the path it was trained through,
    its background and resolution), and where it has none, from the plain defaults (native; x2 for upscalers;
    black; matched dilation; the images' width). Returns ``(options, metadata or None)``; ``options`` has the
    keys method, scale, background, lowres_dilation and width of :func:`evaluate`."""
    meta = read_training_metadata(ply_path)
    if meta is not None:
        method = method if method is not None else meta["method"]
        if scale is None and meta["upscale"] > 1:
            scale = float(meta["upscale"])
        background = background if background is not None else tuple(meta["background"])
        lowres_dilation = lowres_dilation if lowres_dilation is not None else meta["lowres_dilation"]
        width = width if width is not None else meta["width"]
    return {"method": method or "native", "scale": DEFAULT_SCALE if scale is None else scale,
            "background": tuple(background) if background is not None else (0.0, 0.0, 0.0),
            "lowres_dilation": "matched" if lowres_dilation is None else lowres_dilation, "width": width}, meta
