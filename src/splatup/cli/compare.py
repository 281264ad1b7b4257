"""``splatup compare``: every upscaling method against the native render, side by side."""

from __future__ import annotations

from pathlib import Path

import click

from .camera_spec import CameraSpec, camera_options
from .options import Number, check_lowres, check_lpips, parse_background, parse_methods, print_summary
from .outputs import check_output_dir, output_folder


def check_compare_memory(g, cams, scale: float, n_methods: int, lpips: bool, n_views: int | None = None) -> None:
    """Refuse a comparison whose memory estimate (:func:`splatup.memory.estimate_compare_bytes`) does not fit."""
    from ..memory import check_memory, estimate_compare_bytes

    w, h = cams[0].width, cams[0].height
    for c in cams:
        check_lowres(c.width, c.height, scale, "hermite")
    n = len(cams) if n_views is None else n_views
    need = estimate_compare_bytes(len(g), w, h, scale, n_methods, n, lpips)
    check_memory(need, f"comparing {n_methods} methods on {n} view(s) of {w}x{h} ({len(g):,} Gaussians)",
                 "use a smaller image (-W/-H), fewer --views or --methods, or --no-lpips")


def run_compare(scene_path: Path, out_dir: Path, scale: float, methods, n_views: int, repeats: int, lpips: bool,
                background, camera: CameraSpec, console, title: str | None = None) -> dict:
    """Load the scene, compare on ``n_views`` cameras of ``camera`` with a progress bar, write the report
    (:func:`splatup.bench.report.write_compare_report`); return the summary."""
    from rich.progress import Progress

    from ..bench.compare import compare_views
    from ..bench.report import write_compare_report
    from ..io import load_scene

    g = load_scene(scene_path)
    cams = camera.views(g, n_views)
    check_compare_memory(g, cams, scale, len(methods), lpips)
    with Progress(console=console, transient=True) as prog:
        task = prog.add_task(f"comparing {len(methods)} methods at x{scale:g}", total=len(cams))
        views = compare_views(g, cams, scale, methods, background=background, repeats=repeats, use_lpips=lpips,
                              on_view=lambda i, n: prog.advance(task))
    return write_compare_report(out_dir, scene_path.name, views, repeats, scene=str(scene_path), title=title)


def run_path_compare(scene_path: Path, out_dir: Path, scale: float, methods, path_kind: str, frames: int | None,
                     background, camera: CameraSpec, console) -> dict:
    """Compare the methods along a camera path (temporal stability and per-frame quality); write the report."""
    from rich.progress import Progress

    from ..bench.report import write_path_report
    from ..bench.temporal import compare_path
    from ..io import load_scene

    g = load_scene(scene_path)
    cams = camera.path(g, path_kind, frames if frames is not None else 24)
    # the first 4 frames of every method are kept for the strip, and the previous frame for the flicker
    check_compare_memory(g, cams, scale, len(methods), False, n_views=min(len(cams), 4) + 2)
    with Progress(console=console, transient=True) as prog:
        task = prog.add_task(f"{path_kind} path, {len(methods)} methods at x{scale:g}", total=len(cams))
        cmp = compare_path(g, cams, scale, methods, background=background,
                           on_frame=lambda i, n: prog.update(task, completed=i))
    report = write_path_report(out_dir, scene_path.name, cmp, path_kind, scene=str(scene_path))
    from rich.table import Table

    t = Table(title=f"{scene_path.name}: {len(cams)}-frame {path_kind} path at x{scale:g}, against native")
    for col in ("method", "tPSNR dB", "relative flicker", "PSNR dB", "SSIM"):
        t.add_column(col, justify="left" if col == "method" else "right")
    for m, r in cmp.methods.items():
        t.add_row(m, f"{r['tpsnr']:.2f}", f"{r['relative']:.3f}", f"{r['psnr']:.2f}", f"{r['ssim']:.4f}")
    console.print(t)
    console.print(f"report: {report}")
    return cmp.methods


@click.command()
@click.argument("scene", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--scale", "-s", type=Number(lo=1.0), default=2.0, show_default=True,
              help="Upscaling factor (fractional allowed).")
@click.option("--methods", default="all", show_default=True, help="Comma-separated methods, or 'all'.")
@click.option("--views", "n_views", type=click.IntRange(min=1), default=2, show_default=True)
@click.option("--path", "path_kind", type=click.Choice(["orbit", "dataset"]), default=None,
              help="Compare along a camera path instead: temporal stability (flicker against the native path) and "
                   "per-frame quality; writes report.md, temporal.json and frame_strip.png.")
@click.option("--frames", type=click.IntRange(min=2), default=None, help="Frames of the path [default: 24].")
@camera_options(default_size=(640, 480))
@click.option("--background", "-b", default="black", show_default=True,
              help="'black', 'white' or 'r,g,b' with each value in [0, 1].")
@click.option("--repeats", type=click.IntRange(min=1), default=3, show_default=True, help="Timing repeats.")
@click.option("--no-lpips", is_flag=True, help="Skip LPIPS (faster).")
@click.option("--out", "out_dir", type=click.Path(path_type=Path), default=Path("splatup-out/compare"),
              show_default=True, help="Report folder (created if missing).")
def compare(scene: Path, scale: float, methods: str, n_views: int, path_kind: str | None, frames: int | None,
            camera: CameraSpec, background: str, repeats: int, no_lpips: bool, out_dir: Path) -> None:
    """Render views natively and at 1/SCALE with every method: side-by-side grids, metrics table, timings.
    With --path: along a camera path, how much each method flickers compared with the native path."""
    from rich.console import Console

    console = Console()
    bg = parse_background(background)
    ms = parse_methods(methods)
    if frames is not None and path_kind is None:
        raise click.UsageError("--frames applies to a camera path (--path)")
    check_output_dir(out_dir, "--out")
    if path_kind is not None:
        with output_folder(out_dir, "--out"):
            run_path_compare(scene, out_dir, scale, ms, path_kind, frames, bg, camera, console)
        return
    use_lpips = check_lpips(not no_lpips, can_go_on=True, console=console)
    with output_folder(out_dir, "--out"):
        summary = run_compare(scene, out_dir, scale, ms, n_views, repeats, use_lpips, bg, camera, console)
    print_summary(console, summary, f"{scene.name} at x{scale:g} vs native")
    console.print(f"report: {out_dir / 'report.md'}")
