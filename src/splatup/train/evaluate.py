"""Evaluation of a scene on a dataset split: PSNR, SSIM, LPIPS against the ground-truth images, time per view."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch

from ..gaussians import Gaussians
from ..io.datasets import load_dataset
from ..pipeline import check_method, lowres_derivatives, render_lowres, upscale_lowres
from ..render.rasterize import rasterize
from .metadata import read_training_metadata
from .trainer import TrainView, load_views

DEFAULT_SCALE = 2.0


@dataclass(frozen=True)
class EvalSettings:
    """How every view of an evaluation is rendered and scored (the options of :func:`evaluate`). Hashable and
    picklable, so a fan-out can send it to its workers and key their warm-up on it."""

    width: int | None = None
    method: str = "native"
    scale: float = 1.0
    background: tuple[float, float, float] = (0.0, 0.0, 0.0)
    lowres_dilation: float | str = "matched"
    use_lpips: bool = True

    @classmethod
    def of(cls, width: int | None, method: str, scale: float, background: Sequence[float],
           lowres_dilation: float | str, use_lpips: bool) -> EvalSettings:
        """The settings of :func:`evaluate`'s arguments, the method checked, numbers as floats."""
        check_method(method)
        return cls(width, method, float(scale), tuple(float(c) for c in background), lowres_dilation, use_lpips)


def render_for_eval(scene: Gaussians, camera, settings: EvalSettings) -> torch.Tensor:
    """The image [H, W, 3] at ``camera``'s size: rasterized natively, or rendered at 1/scale (with the derivatives
    the Hermite methods use) and upscaled by ``settings.method``."""
    if settings.method == "native":
        return rasterize(scene, camera, background=settings.background).color
    out, _ = render_lowres(scene, camera, settings.scale, derivatives=lowres_derivatives(settings.method),
                           background=settings.background, lowres_dilation=settings.lowres_dilation)
    return upscale_lowres(out, (camera.height, camera.width), settings.method)


def evaluate_view(scene: Gaussians, view: TrainView, settings: EvalSettings) -> dict:
    """One view's row: ``view`` (name), ``time_s`` (the render + upscale, timed; warm up first: the first render
    of a size compiles and fills caches), ``psnr``, ``ssim`` and, with ``settings.use_lpips``, ``lpips`` of the
    image clamped to [0, 1] against ``view.image``."""
    from ..metrics import lpips, psnr, ssim

    with torch.no_grad():
        t0 = time.perf_counter()
        img = render_for_eval(scene, view.camera, settings).clamp(0, 1)
        dt = time.perf_counter() - t0
        row = {"view": view.name, "time_s": dt, "psnr": float(psnr(img, view.image)),
               "ssim": float(ssim(img, view.image))}
        if settings.use_lpips:
            row["lpips"] = float(lpips(img, view.image))
    return row


def summarize_views(rows: list[dict], settings: EvalSettings, split: str, width: int, height: int) -> dict:
    """:func:`evaluate`'s result from the rows of :func:`evaluate_view` in the split's order: the means of every
    number, the median time, and the settings it was run with."""
    keys = [k for k in rows[0] if k != "view"]
    summary = {k: statistics.fmean(r[k] for r in rows) for k in keys}
    summary["median_time_s"] = statistics.median(r["time_s"] for r in rows)
    return {"method": settings.method, "scale": settings.scale if settings.method != "native" else 1.0,
            "split": split, "views": len(rows), "width": width, "height": height, "mean": summary, "per_view": rows}


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
    settings = EvalSettings.of(width, method, scale, background, lowres_dilation, use_lpips)
    ds = load_dataset(dataset, split=split)
    views = load_views(ds, settings.width, settings.background, max_views)

    with torch.no_grad():
        render_for_eval(scene, views[0].camera, settings)  # warm-up (JIT, caches)
    rows = []
    for i, v in enumerate(views):
        rows.append(evaluate_view(scene, v, settings))
        if on_view:
            on_view(i + 1, len(views))
    return summarize_views(rows, settings, split, views[0].camera.width, views[0].camera.height)


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
