"""``splatup compare``: every upscaling method against the native render, side by side."""

from __future__ import annotations

from pathlib import Path

import click

from .camera_spec import CameraSpec, camera_options
from .options import parse_background, parse_methods, print_summary


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
    with Progress(console=console, transient=True) as prog:
        task = prog.add_task(f"comparing {len(methods)} methods at x{scale:g}", total=len(cams))
        views = compare_views(g, cams, scale, methods, background=background, repeats=repeats, use_lpips=lpips,
                              on_view=lambda i, n: prog.advance(task))
    return write_compare_report(out_dir, scene_path.name, views, repeats, scene=str(scene_path), title=title)


@click.command()
@click.argument("scene", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--scale", "-s", type=click.FloatRange(min=1.0), default=2.0, show_default=True,
              help="Upscaling factor (fractional allowed).")
@click.option("--methods", default="all", show_default=True, help="Comma-separated methods, or 'all'.")
@click.option("--views", "n_views", type=click.IntRange(min=1), default=2, show_default=True)
@camera_options(default_size=(640, 480))
@click.option("--background", "-b", default="black", show_default=True)
@click.option("--repeats", type=click.IntRange(min=1), default=3, show_default=True, help="Timing repeats.")
@click.option("--no-lpips", is_flag=True, help="Skip LPIPS (faster).")
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path), default=Path("splatup-out/compare"),
              show_default=True)
def compare(scene: Path, scale: float, methods: str, n_views: int, camera: CameraSpec, background: str, repeats: int,
            no_lpips: bool, out_dir: Path) -> None:
    """Render views natively and at 1/SCALE with every method: side-by-side grids, metrics table, timings."""
    from rich.console import Console

    console = Console()
    summary = run_compare(scene, out_dir, scale, parse_methods(methods), n_views, repeats, not no_lpips,
                          parse_background(background), camera, console)
    print_summary(console, summary, f"{scene.name} at x{scale:g} vs native")
    console.print(f"report: {out_dir / 'report.md'}")
