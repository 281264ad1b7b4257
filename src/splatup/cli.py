"""The ``splatup`` command line."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import click

from .errors import SplatupInputError
from .view.settings import VIEW_METHODS

BACKGROUNDS = {"black": (0.0, 0.0, 0.0), "white": (1.0, 1.0, 1.0)}


def _background(text: str) -> tuple[float, float, float]:
    if text.lower() in BACKGROUNDS:
        return BACKGROUNDS[text.lower()]
    try:
        vals = tuple(float(v) for v in text.split(","))
    except ValueError:
        vals = ()
    if len(vals) != 3:
        raise click.BadParameter(f"expected 'black', 'white' or 'r,g,b' in [0, 1], got {text!r}",
                                 param_hint="--background")
    return vals  # type: ignore[return-value]


class _Group(click.Group):
    """Turns input errors into one clear line and exit code 2 instead of a traceback."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except SplatupInputError as e:
            click.echo(f"error: {e}", err=True)
            sys.exit(2)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="splatup")
def main() -> None:
    """splatup: fast CPU rendering of 3D Gaussian Splatting scenes with gradient-aware upscaling."""


# ---------------------------------------------------------------------------------------------------- info
@main.command()
@click.argument("scene", type=click.Path(dir_okay=False, path_type=Path))
def info(scene: Path) -> None:
    """Print what a scene file (.ply or .splat) holds."""
    from rich.console import Console
    from rich.table import Table

    from .io import load_scene

    g = load_scene(scene)
    s = g.summary()
    table = Table(title=str(scene), show_header=False)

    def fmt(v: object) -> str:
        if isinstance(v, float):
            return f"{v:.4g}"
        if isinstance(v, list):
            return "(" + ", ".join(f"{x:.4g}" for x in v) + ")"
        return str(v)

    table.add_row("file size", f"{scene.stat().st_size:,} bytes")
    for k, v in s.items():
        table.add_row(k.replace("_", " "), fmt(v))
    Console().print(table)


# ---------------------------------------------------------------------------------------------------- render
def _camera_options(f):
    opts = [
        click.option("--width", "-W", type=click.IntRange(min=1), default=None,
                     help="Image width in pixels [default: 800, or the dataset view's width]."),
        click.option("--height", "-H", type=click.IntRange(min=1), default=None,
                     help="Image height in pixels [default: 600; with --dataset: keeps the aspect]."),
        click.option("--azimuth", type=float, default=30.0, show_default=True, help="Orbit azimuth (degrees)."),
        click.option("--elevation", type=float, default=20.0, show_default=True,
                     help="Orbit elevation (degrees)."),
        click.option("--distance", type=float, default=None,
                     help="Orbit radius in scene units [default: frame the scene]."),
        click.option("--fov", type=float, default=50.0, show_default=True,
                     help="Horizontal field of view (degrees)."),
        click.option("--up", default="-y", show_default=True,
                     help="World up axis: '+z', '-y', ... or 'x,y,z' (INRIA/COLMAP captures are often -y)."),
        click.option("--target", default=None, help="Orbit centre 'x,y,z' [default: the scene's median]."),
        click.option("--dataset", type=click.Path(exists=True, path_type=Path), default=None,
                     help="Take the camera from a dataset (transforms_*.json, its folder, or a COLMAP folder)."),
        click.option("--view", default="0", show_default=True, help="Dataset view: index or image name."),
        click.option("--split", default="test", show_default=True, help="Dataset split for --view."),
    ]
    for o in reversed(opts):
        f = o(f)
    return f


def make_camera(scene, width, height, azimuth, elevation, distance, fov, up, target, dataset, view, split):
    """The camera described by the shared CLI options."""
    from .viewpoints import dataset_camera, orbit_camera, parse_vector

    if dataset is not None:
        cam = dataset_camera(dataset, view, split=split, width=width)
        if height is not None and height != cam.height:
            cam = cam.resized(cam.width, height)
        return cam
    tgt = parse_vector(target, "--target") if target else None
    return orbit_camera(scene, width or 800, height or 600, azimuth, elevation, distance, fov,
                        parse_vector(up, "--up"), tgt)


@main.command()
@click.argument("scene", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--output", "-o", type=click.Path(dir_okay=False, path_type=Path), required=True,
              help="Output image (.png or .jpg).")
@_camera_options
@click.option("--background", "-b", default="black", show_default=True, help="'black', 'white' or 'r,g,b'.")
@click.option("--mode", type=click.Choice(["classic", "antialiased"]), default="classic", show_default=True)
@click.option("--save-derivatives", is_flag=True,
              help="Also write dC/dx, dC/dy, d2C/dxdy visualisations next to the output (_dx, _dy, _dxy).")
def render(scene, output, width, height, azimuth, elevation, distance, fov, up, target, dataset, view, split,
           background, mode, save_derivatives) -> None:
    """Render SCENE (.ply or .splat) to an image."""
    from rich.console import Console

    from .io import load_scene
    from .io.images import write_image
    from .render.rasterize import rasterize

    console = Console(stderr=True)
    bg = _background(background)
    with console.status(f"loading {scene}"):
        g = load_scene(scene)
    cam = make_camera(g, width, height, azimuth, elevation, distance, fov, up, target, dataset, view, split)
    with console.status(f"rendering {len(g):,} Gaussians at {cam.width}x{cam.height}"):
        t0 = time.perf_counter()
        out = rasterize(g, cam, derivatives=save_derivatives, background=bg, mode=mode)
        dt = time.perf_counter() - t0
    write_image(output, out.color)
    n_vis = int(out.visible.sum())
    console.print(f"{output}: {cam.width}x{cam.height}, {n_vis:,} of {len(g):,} Gaussians visible, "
                  f"{out.n_pairs:,} tile pairs, {dt * 1000:.0f} ms")
    if n_vis == 0:
        console.print("[yellow]warning: no Gaussian is in view; the image is the background. "
                      "Check the camera (--up, --distance, --dataset view).[/yellow]")
    if save_derivatives:
        for name in ("dx", "dy", "dxy"):
            d = getattr(out, name)
            scale = float(d.abs().quantile(0.99)) or 1.0
            p = output.with_name(f"{output.stem}_{name}{output.suffix}")
            write_image(p, 0.5 + 0.5 * (d / scale).clamp(-1, 1))
            console.print(f"{p}: {name} mapped as 0.5 + 0.5 * value / {scale:.3g}")


# ---------------------------------------------------------------------------------------------------- compare
def _methods(text: str) -> tuple[str, ...]:
    from .bench.compare import DEFAULT_METHODS
    from .pipeline import METHODS

    if text == "all":
        return DEFAULT_METHODS
    ms = tuple(m.strip() for m in text.split(",") if m.strip())
    bad = [m for m in ms if m not in METHODS or m == "native"]
    if bad or not ms:
        raise click.BadParameter(f"unknown method(s) {bad or text!r}; choose from {', '.join(METHODS[1:])} or 'all'",
                                 param_hint="--methods")
    return ms


def _views(scene, n_views, width, height, azimuth, elevation, distance, fov, up, target, dataset, view, split):
    """n_views cameras: orbit views spread in azimuth, or consecutive dataset views starting at --view."""
    if dataset is not None:
        start = int(view) if str(view).lstrip("-").isdigit() else 0
        return [make_camera(scene, width, height, azimuth, elevation, distance, fov, up, target, dataset,
                            str(start + i), split) for i in range(n_views)]
    return [make_camera(scene, width, height, azimuth + i * 360.0 / n_views, elevation, distance, fov, up, target,
                        None, view, split) for i in range(n_views)]


def run_compare(scene_path: Path, out_dir: Path, scale: float, methods, n_views: int, repeats: int, lpips: bool,
                background, cams_fn, console, title: str | None = None) -> dict:
    """Compare on every view, write figures, report.md and metrics.json; return the summary."""
    from rich.progress import Progress

    from .bench.compare import compare_view, comparison_figure, summarise
    from .bench.report import markdown_table, write_json, write_text
    from .io import load_scene

    g = load_scene(scene_path)
    cams = cams_fn(g)
    out_dir.mkdir(parents=True, exist_ok=True)
    views = []
    with Progress(console=console, transient=True) as prog:
        task = prog.add_task(f"comparing {len(methods)} methods at x{scale:g}", total=len(cams))
        for i, cam in enumerate(cams):
            v = compare_view(g, cam, scale, methods, background=background, repeats=repeats, use_lpips=lpips)
            comparison_figure(v, out_dir / f"compare_view{i}.png",
                              title=f"{scene_path.name}, view {i}: {cam.width}x{cam.height} from "
                                    f"{v.lowres_size[1]}x{v.lowres_size[0]} (x{scale:g})")
            views.append(v)
            prog.advance(task)
    summary = summarise(views)
    cam0 = cams[0]
    md = [f"# {title or 'splatup compare'}: {scene_path.name}", "",
          f"{len(views)} view(s) at {cam0.width}x{cam0.height}, factor x{scale:g} (low-res render "
          f"{views[0].lowres_size[1]}x{views[0].lowres_size[0]}, dilation matched to the native 0.3 px^2). "
          "Metrics are against the native full-size render, averaged over views; time per frame is the median of "
          f"{repeats} repeats (render + upscale).", "", markdown_table(summary), ""]
    md += [f"![view {i}](compare_view{i}.png)" for i in range(len(views))]
    write_text(out_dir / "report.md", "\n".join(md) + "\n")
    write_json(out_dir / "metrics.json", {
        "scene": str(scene_path), "scale": scale, "width": cam0.width, "height": cam0.height,
        "lowres": list(views[0].lowres_size), "repeats": repeats, "summary": summary,
        "views": [{m: {"time_s": r.time_s, **r.metrics} for m, r in v.methods.items()} | {
            "native": {"time_s": v.native.time_s}} for v in views]})
    return summary


def print_summary(console, summary: dict, title: str) -> None:
    from rich.table import Table

    t = Table(title=title)
    for col in ("method", "PSNR dB", "SSIM", "LPIPS", "ms/frame", "speed-up"):
        t.add_column(col, justify="left" if col == "method" else "right")
    for m, r in summary.items():
        lp = r.get("lpips", float("nan"))
        t.add_row(m, "ref" if m == "native" else f"{r['psnr']:.2f}", "ref" if m == "native" else f"{r['ssim']:.4f}",
                  "ref" if m == "native" else ("n/a" if lp != lp else f"{lp:.4f}"), f"{r['time_s'] * 1e3:.1f}",
                  f"{r['speedup']:.2f}x")
    console.print(t)


@main.command()
@click.argument("scene", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--scale", "-s", type=click.FloatRange(min=1.0), default=2.0, show_default=True,
              help="Upscaling factor (fractional allowed).")
@click.option("--methods", default="all", show_default=True, help="Comma-separated methods, or 'all'.")
@click.option("--views", "n_views", type=click.IntRange(min=1), default=2, show_default=True)
@_camera_options
@click.option("--background", "-b", default="black", show_default=True)
@click.option("--repeats", type=click.IntRange(min=1), default=3, show_default=True, help="Timing repeats.")
@click.option("--no-lpips", is_flag=True, help="Skip LPIPS (faster).")
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path), default=Path("splatup-out/compare"),
              show_default=True)
def compare(scene, scale, methods, n_views, width, height, azimuth, elevation, distance, fov, up, target, dataset,
            view, split, background, repeats, no_lpips, out_dir) -> None:
    """Render views natively and at 1/SCALE with every method: side-by-side grids, metrics table, timings."""
    from rich.console import Console

    console = Console()
    ms = _methods(methods)
    summary = run_compare(
        scene, out_dir, scale, ms, n_views, repeats, not no_lpips, _background(background),
        lambda g: _views(g, n_views, width or (None if dataset else 640), height or (None if dataset else 480),
                         azimuth, elevation, distance, fov, up, target, dataset, view, split), console)
    print_summary(console, summary, f"{scene.name} at x{scale:g} vs native")
    console.print(f"report: {out_dir / 'report.md'}")


@main.command()
@click.argument("scenes", nargs=-1, required=True, type=click.Path(dir_okay=False, path_type=Path))
@click.option("--factors", default="2,3,4", show_default=True, help="Comma-separated upscaling factors.")
@click.option("--methods", default="all", show_default=True, help="Comma-separated methods, or 'all'.")
@click.option("--size", default="640x480", show_default=True, help="Full-size image WIDTHxHEIGHT.")
@click.option("--views", "n_views", type=click.IntRange(min=1), default=2, show_default=True)
@click.option("--up", default="-y", show_default=True, help="World up axis of the scenes.")
@click.option("--background", "-b", default="black", show_default=True)
@click.option("--repeats", type=click.IntRange(min=1), default=3, show_default=True)
@click.option("--no-lpips", is_flag=True)
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path), default=Path("splatup-out/bench"),
              show_default=True)
def bench(scenes, factors, methods, size, n_views, up, background, repeats, no_lpips, out_dir) -> None:
    """Benchmark SCENES x factors x methods: Markdown report, JSON and quality-vs-time plots."""
    import numba
    from rich.console import Console
    from rich.progress import Progress

    from .bench.sweep import sweep, write_sweep_report
    from .io import load_scene

    console = Console()
    try:
        fs = [float(f) for f in factors.split(",")]
        w, h = (int(v) for v in size.lower().split("x"))
    except ValueError as e:
        raise click.BadParameter(f"could not parse --factors {factors!r} / --size {size!r}: {e}") from e
    if any(f < 1 for f in fs) or w < 1 or h < 1:
        raise click.BadParameter("factors must be >= 1 and the size positive")
    ms = _methods(methods)
    loaded = {}
    for p in scenes:
        g = load_scene(p)
        loaded[p.name] = (g, _views(g, n_views, w, h, 30.0, 20.0, None, 50.0, up, None, None, "0", "test"))
    with Progress(console=console, transient=True) as prog:
        task = prog.add_task("benchmarking", total=len(loaded) * len(fs))
        rows = sweep(loaded, fs, ms, repeats=repeats, use_lpips=not no_lpips, background=_background(background),
                     on_step=lambda s: prog.update(task, advance=1, description=f"done {s}"))
    report = write_sweep_report(rows, out_dir, {"threads": numba.get_num_threads(), "repeats": repeats,
                                                "scenes": [str(p) for p in scenes], "factors": fs,
                                                "methods": list(ms), "size": [w, h], "views": n_views})
    for name in loaded:
        for f in fs:
            summary = {r["method"]: r for r in rows if r["scene"] == name and r["factor"] == f}
            print_summary(console, summary, f"{name} at x{f:g}")
    console.print(f"report: {report}")


@main.command()
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path), default=Path("splatup-out/demo"),
              show_default=True)
@click.option("--no-lpips", is_flag=True, help="Skip LPIPS.")
def demo(out_dir, no_lpips) -> None:
    """The main job on the bundled demo scene (CC0 'Spot', 10k Gaussians): compare at 2x, 640x480, 2 views."""
    from importlib.resources import as_file, files

    from rich.console import Console

    console = Console()
    with as_file(files("splatup") / "data" / "spot_10k.splat") as scene:
        summary = run_compare(
            Path(scene), out_dir, 2.0, _methods("all"), 2, 3, not no_lpips, (1.0, 1.0, 1.0),
            lambda g: _views(g, 2, 640, 480, 30.0, 20.0, None, 50.0, "-y", None, None, "0", "test"), console,
            title="splatup demo")
    print_summary(console, summary, "Spot (10k Gaussians), 640x480, 2x upscaling vs native")
    console.print(f"report: {out_dir / 'report.md'}")



# ---------------------------------------------------------------------------------------------------- view
@main.command()
@click.argument("scene", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--port", "-p", type=click.IntRange(0, 65535), default=8080, show_default=True,
              help="Port to serve on (0: any free port; if busy, the next free one is taken).")
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on (0.0.0.0 makes the viewer reachable from other machines).")
@click.option("--up", default="auto", show_default=True,
              help="World up axis: 'auto' (estimated from the scene), '+z', '-y', ... or 'x,y,z'.")
@click.option("--width", "-W", type=click.IntRange(min=1), default=None,
              help="Rendered image width [default: the browser canvas; with only -H, the canvas's aspect].")
@click.option("--height", "-H", type=click.IntRange(min=1), default=None, help="Rendered image height.")
@click.option("--method", type=click.Choice(VIEW_METHODS), default="hermite", show_default=True)
@click.option("--scale", "-s", type=click.FloatRange(1.0, 4.0), default=2.0, show_default=True,
              help="Upscaling factor (of still frames when --auto).")
@click.option("--auto/--no-auto", default=True, show_default=True,
              help="While the camera moves, choose the factor (1 to 4) that holds --target-fps.")
@click.option("--target-fps", type=click.FloatRange(min=0.5, max=1000.0), default=30.0, show_default=True)
@click.option("--split", is_flag=True, help="Left half native, right half the method.")
@click.option("--background", "-b", default="black", show_default=True, help="'black', 'white' or 'r,g,b'.")
@click.option("--fov", type=click.FloatRange(10.0, 120.0), default=50.0, show_default=True,
              help="Vertical field of view (degrees).")
def view(scene, port, host, up, width, height, method, scale, auto, target_fps, split, background, fov) -> None:
    """Interactive viewer of SCENE in the browser: splatup renders every frame on the CPU (viser serves the page)."""
    from .view import ViewSettings, serve

    settings = ViewSettings(method=method, factor=scale, auto=auto, target_ms=1000.0 / target_fps, split=split,
                            background=_background(background), fov_deg=fov)
    serve(scene, settings, host=host, port=port, up=up, size=(width, height))


# ---------------------------------------------------------------------------------------------------- train / eval
@main.command()
@click.argument("dataset", type=click.Path(exists=True, path_type=Path))
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path), required=True,
              help="Output folder (checkpoint.pt, point_cloud.ply, train_summary.json).")
@click.option("--upscale", type=click.FloatRange(min=1.0), default=1.0, show_default=True,
              help="Render at 1/S with derivatives and Hermite-upscale to full size during training.")
@click.option("--iterations", type=click.IntRange(min=1), default=30_000, show_default=True)
@click.option("--width", type=click.IntRange(min=1), default=None,
              help="Training resolution (width in px; images are area-downsampled) [default: image size].")
@click.option("--white-background", is_flag=True, help="Composite RGBA images on white (default black).")
@click.option("--init", type=click.Choice(["auto", "points", "random"]), default="auto", show_default=True)
@click.option("--random-points", type=click.IntRange(min=1), default=100_000, show_default=True)
@click.option("--densify-until", type=click.IntRange(min=0), default=None,
              help="Last densification iteration [default: 15000, or half the iterations if fewer than 30000].")
@click.option("--sh-degree", type=click.IntRange(0, 3), default=3, show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--checkpoint-every", type=click.IntRange(min=1), default=1000, show_default=True)
@click.option("--max-views", type=click.IntRange(min=1), default=None, help="Use only the first N training views.")
@click.option("--resume", is_flag=True, help="Continue from OUT/checkpoint.pt.")
def train(dataset, out_dir, upscale, iterations, width, white_background, init, random_points, densify_until,
          sh_degree, seed, checkpoint_every, max_views, resume) -> None:
    """Train a 3DGS model on DATASET (NeRF-synthetic transforms_*.json folder or COLMAP), natively or with
    gradient-aware upscaling in the loop (--upscale S)."""
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    from .train.model import TrainConfig
    from .train.trainer import TrainSettings
    from .train.trainer import train as run_train

    until = densify_until if densify_until is not None else (15_000 if iterations >= 30_000 else iterations // 2)
    cfg = TrainConfig(iterations=iterations, densify_until_iter=until, sh_degree=sh_degree)
    settings = TrainSettings(dataset=str(dataset), out_dir=str(out_dir), upscale=upscale, width=width,
                             white_background=white_background, init=init, random_points=random_points, seed=seed,
                             checkpoint_every=checkpoint_every, max_views=max_views, config=cfg)
    console = Console()
    cols = [TextColumn("[bold]train"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[info]}"),
            TimeElapsedColumn(), TimeRemainingColumn()]
    with Progress(*cols, console=console) as prog:
        task = prog.add_task("train", total=iterations, info="loading")

        def step(it, e):
            prog.update(task, completed=it, info=f"loss {e['loss']:.4f}  PSNR {e['psnr']:.2f}  N {e['gaussians']:,}")

        res = run_train(settings, resume=resume, on_iteration=step)
    console.print(f"{res['iterations']} iterations, {res['gaussians']:,} Gaussians, "
                  f"{res['seconds_per_iteration']:.3f} s/iteration; model: {res.get('ply', out_dir / 'checkpoint.pt')}")


@main.command(name="eval")
@click.argument("scene", type=click.Path(dir_okay=False, path_type=Path))
@click.argument("dataset", type=click.Path(exists=True, path_type=Path))
@click.option("--split", default="test", show_default=True)
@click.option("--method", default="native", show_default=True, help="native, hermite or a classic upscaler.")
@click.option("--scale", "-s", type=click.FloatRange(min=1.0), default=2.0, show_default=True,
              help="Upscaling factor for methods other than native.")
@click.option("--width", type=click.IntRange(min=1), default=None, help="Evaluation width [default: image size].")
@click.option("--white-background", is_flag=True)
@click.option("--lowres-dilation", default="matched", show_default=True,
              help="'matched' (0.3 native px^2), 'usual' (0.3 low-res px^2, for models trained at low resolution).")
@click.option("--max-views", type=click.IntRange(min=1), default=None)
@click.option("--no-lpips", is_flag=True)
@click.option("--json", "json_out", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Also write the per-view results here.")
def eval_cmd(scene, dataset, split, method, scale, width, white_background, lowres_dilation, max_views, no_lpips,
             json_out) -> None:
    """Evaluate SCENE on a dataset split: PSNR, SSIM, LPIPS against the images and time per view."""
    from rich.console import Console
    from rich.progress import Progress

    from .bench.report import write_json
    from .io import load_scene
    from .pipeline import METHODS
    from .train.evaluate import evaluate

    if method not in METHODS:
        raise click.BadParameter(f"choose from {', '.join(METHODS)}", param_hint="--method")
    dil = lowres_dilation if lowres_dilation in ("matched", "usual") else float(lowres_dilation)
    console = Console()
    g = load_scene(scene)
    with Progress(console=console, transient=True) as prog:
        task = prog.add_task(f"evaluating {method}", total=None)
        res = evaluate(g, str(dataset), split, width, method, scale,
                       (1.0, 1.0, 1.0) if white_background else (0.0, 0.0, 0.0), dil, max_views, not no_lpips,
                       on_view=lambda i, n: prog.update(task, completed=i, total=n))
    m = res["mean"]
    lp = f", LPIPS {m['lpips']:.4f}" if "lpips" in m else ""
    console.print(f"{scene.name} on {res['views']} {split} views at {res['width']}x{res['height']}, {method}"
                  f"{'' if method == 'native' else f' x{scale:g}'}: PSNR {m['psnr']:.2f} dB, SSIM {m['ssim']:.4f}{lp}, "
                  f"{m['median_time_s'] * 1e3:.1f} ms/view (median)")
    if json_out:
        write_json(json_out, res)


if __name__ == "__main__":  # pragma: no cover
    main()
