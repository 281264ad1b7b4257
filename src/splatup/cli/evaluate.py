"""``splatup eval``: a scene against a dataset split (PSNR, SSIM, LPIPS, time per view)."""

from __future__ import annotations

from pathlib import Path

import click

from .options import check_method, fanout_options


def _as_dilation(value: float | str) -> float | str | None:
    """'matched', 'usual', a number or a number's text -> evaluate()'s ``lowres_dilation``; None if it is none."""
    if value in ("matched", "usual") or (isinstance(value, (int, float)) and not isinstance(value, bool)):
        return value
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


@click.command(name="eval")
@click.argument("scene", type=click.Path(dir_okay=False, path_type=Path))
@click.argument("dataset", type=click.Path(exists=True, path_type=Path))
@click.option("--split", default="test", show_default=True)
@click.option("--method", default=None,
              help="native, hermite or a classic upscaler [default: how SCENE was trained, from the .json beside it; "
                   "else native].")
@click.option("--scale", "-s", type=click.FloatRange(min=1.0), default=None,
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
@click.option("--json", "json_out", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Also write the per-view results here.")
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
    from ..errors import SceneFormatError
    from ..fanout import FanoutError, dask_client
    from ..io import load_scene
    from ..train.evaluate import evaluate, trained_render_options
    from ..train.metadata import metadata_path

    if method is not None:
        check_method(method)
    if lowres_dilation is not None and _as_dilation(lowres_dilation) is None:
        raise click.BadParameter(f"expected 'matched', 'usual' or a number, got {lowres_dilation!r}",
                                 param_hint="--lowres-dilation")
    bg = None if white_background is None else ((1.0, 1.0, 1.0) if white_background else (0.0, 0.0, 0.0))
    opts, meta = trained_render_options(scene, method, scale, bg, lowres_dilation, width)
    method, scale = opts["method"], opts["scale"]
    dil = _as_dilation(opts["lowres_dilation"])
    if dil is None:
        raise SceneFormatError(f"{metadata_path(scene)}: field 'lowres_dilation' must be 'matched', 'usual' or a "
                               f"number, got {opts['lowres_dilation']!r}")
    console = Console()
    if meta is not None:
        how = "natively" if meta["method"] == "native" else f"through {meta['method']} x{meta['upscale']:g}"
        console.print(f"{scene.name} was trained {how} at width {meta['width']} ({metadata_path(scene).name}); "
                      "evaluating that way unless options say otherwise", soft_wrap=True)
    g = load_scene(scene)
    args = (g, str(dataset), split, opts["width"], method, scale, opts["background"], dil, max_views, not no_lpips)
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
        write_json(json_out, res)
