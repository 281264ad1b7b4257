"""``splatup eval`` fanned out over Dask workers: every view of a split is one job (:mod:`splatup.fanout`).

Each job reads its view's ground truth with :func:`splatup.train.trainer.load_views` and scores it with
:func:`splatup.train.evaluate.evaluate_view`, the function the serial :func:`~splatup.train.evaluate.evaluate`
calls for each view, after an untimed warm-up (one per worker process and image size). The result has evaluate()'s
layout and the same metric values, in the split's order. Workers read the images from the dataset's path, so on a
remote cluster the dataset must be at the same path on every machine.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from ..gaussians import Gaussians
from ..train.evaluate import EvalSettings

_warm: set = set()  # per process: the settings and sizes already rendered once


def evaluate_view_job(item: tuple, scene: Gaussians, settings: EvalSettings) -> dict:
    """One job: item = (dataset, view); the dataset restricted to nothing but that view is loaded here (on the
    worker). Returns evaluate()'s row (view, time_s, psnr, ssim and lpips) plus ``_size`` (width, height)."""
    import torch

    from ..train.evaluate import evaluate_view, render_for_eval
    from ..train.trainer import load_views

    ds, view = item
    v = load_views(ds.with_views([view]), settings.width, settings.background)[0]
    key = (settings, v.camera.width, v.camera.height)
    if key not in _warm:
        with torch.no_grad():
            render_for_eval(scene, v.camera, settings)
        _warm.add(key)
    return evaluate_view(scene, v, settings) | {"_size": (v.camera.width, v.camera.height)}


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
    from ..train.evaluate import summarize_views

    settings = EvalSettings.of(width, method, scale, background, lowres_dilation, use_lpips)
    ds = load_dataset(dataset, split=split)
    views = ds.views[:max_views] if max_views else ds.views
    if not views:
        raise SplatupInputError(f"{ds.root}: no views in the {split!r} split")
    empty = ds.with_views([])  # sent once per job with its view; points are not needed to evaluate
    empty.points = empty.point_colors = None
    rows = ordered_map(evaluate_view_job, [(empty, v) for v in views], {"scene": scene, "settings": settings},
                       client=client, retries=retries, what="view",
                       on_result=(lambda i, r: on_view(i + 1, len(views))) if on_view else None)
    sizes = [r.pop("_size") for r in rows]
    return summarize_views(rows, settings, split, *sizes[0])
