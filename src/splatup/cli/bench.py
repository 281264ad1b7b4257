"""``splatup bench``: scenes x factors x methods, with a Markdown report, JSON and plots."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import click

from .camera_spec import CameraSpec, camera_options
from .options import check_lpips, parse_background, parse_factors, parse_methods, parse_size, print_summary
from .outputs import check_output_dir, output_folder


def parse_factors_and_size(factors: str, size: str) -> tuple[list[float], int, int]:
    """'2,3,4' and '640x480' -> ([2.0, 3.0, 4.0], 640, 480); finite factors >= 1, a positive size."""
    fs = parse_factors(factors, "--factors")
    w, h = parse_size(size, "--size")
    return fs, w, h


@click.command()
@click.argument("scenes", nargs=-1, required=True, type=click.Path(dir_okay=False, path_type=Path))
@click.option("--factors", default="2,3,4", show_default=True, help="Comma-separated upscaling factors.")
@click.option("--methods", default="all", show_default=True, help="Comma-separated methods, or 'all'.")
@click.option("--size", default="640x480", show_default=True, help="Full-size image WIDTHxHEIGHT.")
@click.option("--views", "n_views", type=click.IntRange(min=1), default=2, show_default=True)
@camera_options(size=False, dataset=False)
@click.option("--background", "-b", default="black", show_default=True,
              help="'black', 'white' or 'r,g,b' with each value in [0, 1].")
@click.option("--repeats", type=click.IntRange(min=1), default=3, show_default=True)
@click.option("--no-lpips", is_flag=True, help="Skip LPIPS.")
@click.option("--out", "out_dir", type=click.Path(path_type=Path), default=Path("splatup-out/bench"),
              show_default=True, help="Report folder (created if missing).")
def bench(scenes: tuple[Path, ...], factors: str, methods: str, size: str, n_views: int, camera: CameraSpec,
          background: str, repeats: int, no_lpips: bool, out_dir: Path) -> None:
    """Benchmark SCENES x factors x methods: Markdown report, JSON and quality-vs-time plots (orbit views)."""
    import numba
    from rich.console import Console
    from rich.progress import Progress

    from ..bench.sweep import sweep, write_sweep_report
    from ..io import load_scene
    from .compare import check_compare_memory

    console = Console()
    fs, w, h = parse_factors_and_size(factors, size)
    ms = parse_methods(methods)
    bg = parse_background(background)
    camera = dataclasses.replace(camera, width=w, height=h)
    check_output_dir(out_dir, "--out")
    use_lpips = check_lpips(not no_lpips, can_go_on=True, console=console)
    loaded = {}
    for p in scenes:
        g = load_scene(p)
        loaded[p.name] = (g, camera.views(g, n_views))
        for f in fs:
            check_compare_memory(g, loaded[p.name][1], f, len(ms), use_lpips)
    with Progress(console=console, transient=True) as prog:
        task = prog.add_task("benchmarking", total=len(loaded) * len(fs))
        rows = sweep(loaded, fs, ms, repeats=repeats, use_lpips=use_lpips, background=bg,
                     on_step=lambda s: prog.update(task, advance=1, description=f"done {s}"))
    with output_folder(out_dir, "--out"):
        report = write_sweep_report(rows, out_dir, {"threads": numba.get_num_threads(), "repeats": repeats,
                                                    "scenes": [str(p) for p in scenes], "factors": fs,
                                                    "methods": list(ms), "size": [w, h], "views": n_views})
    for name in loaded:
        for f in fs:
            summary = {r["method"]: r for r in rows if r["scene"] == name and r["factor"] == f}
            print_summary(console, summary, f"{name} at x{f:g}")
    console.print(f"report: {report}")
