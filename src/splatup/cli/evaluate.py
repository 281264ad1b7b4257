"""``splatup eval``: a scene against a dataset split (PSNR, SSIM, LPIPS, time per view)."""

from __future__ import annotations

from pathlib import Path

import click

from .options import Number, check_lowres, check_lpips, check_method, fanout_options, parse_dilation, resolve_split
from .outputs import check_output_file, output_folder


def check_eval_memory(n_gaussians: int, cams, method: str, scale: float, lpips: bool, copies: int = 1) -> None:
    """Refuse an evaluation whose estimate does not fit: the ground-truth images of every view at the evaluation
    size, and one view's render, clamped copy and metrics (in each of ``copies`` processes)."""
    from ..memory import IMAGE_PER_PIXEL, LPIPS_PER_PIXEL, check_memory, estimate_render_bytes

    w, h = max((c.width, c.height) for c in cams)
    px = w * h
    images = sum(c.width * c.height for c in cams) * IMAGE_PER_PIXEL
    per_view = (estimate_render_bytes(n_gaussians, w, h, scale, method, write=False)
                + (2 * IMAGE_PER_PIXEL + (LPIPS_PER_PIXEL if lpips else 0)) * px)
    check_memory(images + copies * per_view, f"evaluating {len(cams)} views of {w}x{h} ({n_gaussians:,} Gaussians)",
                 "evaluate at a smaller --width, fewer --max-views, or without LPIPS (--no-lpips)")


@click.command(name="eval")
@click.argument("scene", type=click.Path(dir_okay=False, path_type=Path))
@click.argument("dataset", type=click.Path(exists=True, path_type=Path))
@click.option("--split", default=None,
              help="Dataset split [default: test, or the split of a transforms_<split>.json given as DATASET].")
@click.option("--method", default=None,
              help="native, hermite or a classic upscaler [default: how SCENE was trained, from the .json beside it; "
                   "else native].")
@click.option("--scale", "-s", type=Number(lo=1.0), default=None,
              help="Upscaling factor for methods other than native [default: the training factor, else 2].")
@click.option("--width", type=click.IntRange(min=1), default=None,
              help="Evaluation width [default: the training width, else the image size].")
@click.option("--white-background/--black-background", default=None,
              help="Background [default: the training background, else black].")
@click.option("--lowres-dilation", default=None,
              help="'matched' (0.3 native px^2, the default), 'usual' (0.3 low-res px^2, for models trained at low "
                   "resolution) or a number of low-res px^2.")
@click.option("--max-views", type=click.IntRange(min=1), default=None)
@click.option("--no-lpips", is_flag=True)
@click.option("--json", "json_out", type=click.Path(path_type=Path), default=None,
              help="Also write the per-view results here (its folder is created if missing; a PSNR of identical "
                   "images, +inf, is written as null).")
@fanout_options
def eval_cmd(scene, dataset, split, method, scale, width, white_background, lowres_dilation, max_views, no_lpips,
             json_out, workers, scheduler, retries) -> None:
    """Evaluate SCENE on a dataset split: PSNR, SSIM, LPIPS against the images and time per view. A model trained
    by `splatup train` is rendered the way it was trained unless options say otherwise.

    --workers N / --scheduler ADDRESS evaluate the views as Dask jobs (same metrics, in the split's order)."""
    import sys

    from rich.console import Console
    from rich.progress import Progress

    from ..bench.eval_fanout import evaluate_fanout
    from ..bench.report import write_json
    from ..errors import SceneFormatError, SplatupInputError
    from ..fanout import FanoutError, dask_client
    from ..io import load_scene
    from ..train.evaluate import evaluate, trained_render_options
    from ..train.metadata import metadata_path

    split = resolve_split(dataset, split)
    if method is not None:
        check_method(method)
    if lowres_dilation is not None:
        lowres_dilation = parse_dilation(lowres_dilation)
    if json_out is not None:
        check_output_file(json_out, "--json")
    bg = None if white_background is None else ((1.0, 1.0, 1.0) if white_background else (0.0, 0.0, 0.0))
    opts, meta = trained_render_options(scene, method, scale, bg, lowres_dilation, width)
    method, scale = opts["method"], opts["scale"]
    check_method(method, "--method (from the model's training metadata)")
    try:
        dil = parse_dilation(opts["lowres_dilation"])
    except SplatupInputError:
        raise SceneFormatError(f"{metadata_path(scene)}: field 'lowres_dilation' must be 'matched', 'usual' or a "
                               f"number, got {opts['lowres_dilation']!r}") from None
    use_lpips = check_lpips(not no_lpips, can_go_on=False)
    console = Console()
    if meta is not None:
        how = "natively" if meta["method"] == "native" else f"through {meta['method']} x{meta['upscale']:g}"
        console.print(f"{scene.name} was trained {how} at width {meta['width']} ({metadata_path(scene).name}); "
                      "evaluating that way unless options say otherwise", soft_wrap=True)
    g = load_scene(scene)
    cams = _eval_cameras(dataset, split, opts["width"], max_views)
    for c in cams:
        check_lowres(c.width, c.height, scale, method)
    check_eval_memory(len(g), cams, method, scale, use_lpips, copies=workers if workers and not scheduler else 1)
    args = (g, str(dataset), split, opts["width"], method, scale, opts["background"], dil, max_views, use_lpips)
    try:
        with dask_client(workers, scheduler) as client, Progress(console=console, transient=True) as prog:
            task = prog.add_task(f"evaluating {method}", total=None)
            progress = lambda i, n: prog.update(task, completed=i, total=n)  # noqa: E731
            if client is None:
                res = evaluate(*args, on_view=progress)
            else:
                res = evaluate_fanout(*args, client=client, retries=retries, on_view=progress)
    except FanoutError as e:
        click.echo(f"error: {e}", err=True)
        sys.exit(1)
    m = res["mean"]
    lp = f", LPIPS {m['lpips']:.4f}" if "lpips" in m else ""
    console.print(f"{scene.name} on {res['views']} {split} views at {res['width']}x{res['height']}, {method}"
                  f"{'' if method == 'native' else f' x{scale:g}'}: PSNR {m['psnr']:.2f} dB, SSIM {m['ssim']:.4f}{lp}, "
                  f"{m['median_time_s'] * 1e3:.1f} ms/view (median)", soft_wrap=True)
    if json_out:
        with output_folder(json_out.parent, "--json"):
            write_json(json_out, res)


def _eval_cameras(dataset: Path, split: str, width: int | None, max_views: int | None):
    """The cameras :func:`splatup.train.evaluate.evaluate` will render (sized as ``load_views`` sizes them),
    without reading the images."""
    from ..errors import SplatupInputError
    from ..io.datasets import load_dataset

    ds = load_dataset(dataset, split=split)
    views = ds.views[:max_views] if max_views else ds.views
    if not views:
        raise SplatupInputError(f"{dataset}: the {split!r} split has no views")
    cams = []
    for v in views:
        cam = v.camera
        if width is not None and width != cam.width:
            cam = cam.resized(width, max(1, round(cam.height * width / cam.width)))
        cams.append(cam)
    return cams
