"""``splatup eval`` fanned out over Dask workers: every view of a split is one job (:mod:`splatup.fanout`).

Each job does for its view what :func:`splatup.train.evaluate.evaluate` does for each view in turn: the ground
truth read and resized by :func:`splatup.train.trainer.load_views`, the image rendered through the same pipeline
functions, the same metrics, and the time of the render after an untimed warm-up (one per worker process). The
result has evaluate()'s layout and the same metric values, in the split's order. Workers read the images from the
dataset's path, so on a remote cluster the dataset must be at the same path on every machine.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from ..gaussians import Gaussians

_warm: set = set()  # per process: the settings already rendered once


@dataclass(frozen=True)
class EvalSettings:
    width: int | None
    method: str
    scale: float
    background: tuple[float, float, float]
    lowres_dilation: float | str
    use_lpips: bool


def _render(scene: Gaussians, cam, s: EvalSettings):
    from ..pipeline import render_lowres, upscale_lowres
    from ..render.rasterize import rasterize

    if s.method == "native":
        return rasterize(scene, cam, background=s.background).color
    out, _ = render_lowres(scene, cam, s.scale, derivatives=(s.method == "hermite"), background=s.background,
                           lowres_dilation=s.lowres_dilation)
    return upscale_lowres(out, (cam.height, cam.width), s.method)


def evaluate_view(item: tuple, scene: Gaussians, settings: EvalSettings) -> dict:
    """One view: item = (dataset, view), the dataset restricted to nothing but that view is loaded here (on the
    worker). Returns evaluate()'s row: view, time_s, psnr, ssim (and lpips)."""
    import torch

    from ..metrics import lpips, psnr, ssim
    from ..train.trainer import load_views

    ds, view = item
    v = load_views(ds.with_views([view]), settings.width, settings.background)[0]
    with torch.no_grad():
        key = (settings, v.camera.width, v.camera.height)
        if key not in _warm:
            _render(scene, v.camera, settings)
            _warm.add(key)
        t0 = time.perf_counter()
        img = _render(scene, v.camera, settings).clamp(0, 1)
        dt = time.perf_counter() - t0
        row = {"view": v.name, "time_s": dt, "psnr": float(psnr(img, v.image)), "ssim": float(ssim(img, v.image))}
        if settings.use_lpips:
            row["lpips"] = float(lpips(img, v.image))
    return row | {"_size": (v.camera.width, v.camera.height)}


def evaluate_fanout(
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
    client=None,
    retries: int = 2,
    on_view: Callable[[int, int], None] | None = None,
) -> dict:
    """:func:`splatup.train.evaluate.evaluate` with one job per view on a Dask ``client`` (serial without one).
    Same arguments and result layout; a view that fails after its retries stops the run with
    :class:`splatup.fanout.FanoutError` naming it."""
    from ..errors import SplatupInputError
    from ..fanout import ordered_map
    from ..io.datasets import load_dataset
    from ..pipeline import check_method

    check_method(method)
    ds = load_dataset(dataset, split=split)
    views = ds.views[:max_views] if max_views else ds.views
    if not views:
        raise SplatupInputError(f"{ds.root}: no views in the {split!r} split")
    empty = ds.with_views([])  # sent once per job with its view; points are not needed to evaluate
    empty.points = empty.point_colors = None
    settings = EvalSettings(width, method, float(scale), tuple(float(c) for c in background), lowres_dilation,
                            use_lpips)
    rows = ordered_map(evaluate_view, [(empty, v) for v in views], {"scene": scene, "settings": settings},
                       client=client, retries=retries, what="view",
                       on_result=(lambda i, r: on_view(i + 1, len(views))) if on_view else None)
    w, h = rows[0].pop("_size")
    for r in rows[1:]:
        r.pop("_size")
    keys = [k for k in rows[0] if k != "view"]
    summary = {k: statistics.fmean(r[k] for r in rows) for k in keys}
    summary["median_time_s"] = statistics.median(r["time_s"] for r in rows)
    return {"method": method, "scale": scale if method != "native" else 1.0, "split": split, "views": len(rows),
            "width": w, "height": h, "mean": summary, "per_view": rows}
