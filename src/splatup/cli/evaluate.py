"""``splatup eval``: a scene against a dataset split (PSNR, SSIM, LPIPS, time per view)."""

from __future__ import annotations

from pathlib import Path

import click

from .options import check_method, fanout_options


@click.command(name="eval")
@click.argument("scene", type=click.Path(dir_okay=False, path_type=Path))
@click.argument("dataset", type=click.Path(exists=True, path_type=Path))
@click.option("--split", default="test", show_default=True)
@click.option("--method", default="native", show_default=True, help="native, hermite or a classic upscaler.")
@click.option("--scale", "-s", type=click.FloatRange(min=1.0), default=2.0, show_default=True,
              help="Upscaling factor for methods other than native.")
@click.option("--width", type=click.IntRange(min=1), default=None, help="Evaluation width [default: image size].")
@click.option("--white-background", is_flag=True)
@click.option("--lowres-dilation", default="matched", show_default=True,
              help="'matched' (0.3 native px^2), 'usual' (0.3 low-res px^2, for models trained at low resolution) "
                   "or a number of low-res px^2.")
@click.option("--max-views", type=click.IntRange(min=1), default=None)
@click.option("--no-lpips", is_flag=True)
@click.option("--json", "json_out", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Also write the per-view results here.")
@fanout_options
def eval_cmd(scene, dataset, split, method, scale, width, white_background, lowres_dilation, max_views, no_lpips,
             json_out, workers, scheduler, retries) -> None:
    """Evaluate SCENE on a dataset split: PSNR, SSIM, LPIPS against the images and time per view.

    --workers N / --scheduler ADDRESS evaluate the views as Dask jobs (same metrics, in the split's order)."""
    import sys

    from rich.console import Console
    from rich.progress import Progress

    from ..bench.eval_fanout import evaluate_fanout
    from ..bench.report import write_json
    from ..fanout import FanoutError, dask_client
    from ..io import load_scene
    from ..train.evaluate import evaluate

    check_method(method)
    if lowres_dilation in ("matched", "usual"):
        dil: float | str = lowres_dilation
    else:
        try:
            dil = float(lowres_dilation)
        except ValueError:
            raise click.BadParameter(f"expected 'matched', 'usual' or a number, got {lowres_dilation!r}",
                                     param_hint="--lowres-dilation") from None
    console = Console()
    g = load_scene(scene)
    bg = (1.0, 1.0, 1.0) if white_background else (0.0, 0.0, 0.0)
    try:
        with dask_client(workers, scheduler) as client, Progress(console=console, transient=True) as prog:
            task = prog.add_task(f"evaluating {method}", total=None)
            progress = lambda i, n: prog.update(task, completed=i, total=n)  # noqa: E731
            if client is None:
                res = evaluate(g, str(dataset), split, width, method, scale, bg, dil, max_views, not no_lpips,
                               on_view=progress)
            else:
                res = evaluate_fanout(g, str(dataset), split, width, method, scale, bg, dil, max_views, not no_lpips,
                                      client=client, retries=retries, on_view=progress)
    except FanoutError as e:
        click.echo(f"error: {e}", err=True)
        sys.exit(1)
    m = res["mean"]
    lp = f", LPIPS {m['lpips']:.4f}" if "lpips" in m else ""
    console.print(f"{scene.name} on {res['views']} {split} views at {res['width']}x{res['height']}, {method}"
                  f"{'' if method == 'native' else f' x{scale:g}'}: PSNR {m['psnr']:.2f} dB, SSIM {m['ssim']:.4f}{lp}, "
                  f"{m['median_time_s'] * 1e3:.1f} ms/view (median)")
    if json_out:
        write_json(json_out, res)
