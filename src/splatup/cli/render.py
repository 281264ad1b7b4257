"""``splatup render``: a scene to an image, or a camera path to a video or a folder of PNG frames."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import click

from .camera_spec import CameraSpec, camera_options
from .options import Number, check_lowres, check_method, check_render_memory, fanout_options, parse_background
from .outputs import check_output_dir, check_output_file, output_folder


def resolve_method(method: str | None, scale: float | None) -> tuple[str, float]:
    """--method / --scale as given -> (method, scale): a factor alone means Hermite upscaling by it; neither means
    a native render; an upscaling method alone upscales by 2."""
    if method is None:
        method = "hermite" if scale is not None and scale != 1 else "native"
    check_method(method)
    return method, 2.0 if scale is None else float(scale)


@click.command()
@click.argument("scene", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--output", "-o", type=click.Path(path_type=Path), required=True,
              help="Output image (.png, .jpg); with --path a video (.mp4, .mkv, .mov) or a folder for PNG frames.")
@camera_options(default_size=(800, 600))
@click.option("--scale", "-s", type=Number(lo=1.0), default=None,
              help="Render at 1/S and upscale to the full size (fractional allowed) [default: 2 with an upscaling "
                   "--method].")
@click.option("--method", "-m", default=None,
              help="native, hermite, fd-hermite, bicubic, bicubic-pil, lanczos, bilinear or nearest [default: hermite "
                   "with --scale, else native].")
@click.option("--path", "path_kind", type=click.Choice(["orbit", "dataset"]), default=None,
              help="Render a camera path: one full orbit (from --azimuth), or the views of --dataset (from --view).")
@click.option("--frames", type=click.IntRange(min=1), default=None,
              help="Frames of the path [default: 120 for an orbit, the rest of the split for a dataset].")
@click.option("--fps", type=Number(lo=0.0, lo_open=True), default=30.0, show_default=True,
              help="Frame rate of a video.")
@fanout_options
@click.option("--background", "-b", default="black", show_default=True,
              help="'black', 'white' or 'r,g,b' with each value in [0, 1].")
@click.option("--mode", type=click.Choice(["classic", "antialiased"]), default="classic", show_default=True)
@click.option("--save-derivatives", is_flag=True,
              help="Also write dC/dx, dC/dy, d2C/dxdy visualisations next to the output (_dx, _dy, _dxy); native "
                   "still images only.")
def render(scene: Path, output: Path, camera: CameraSpec, scale: float | None, method: str | None,
           path_kind: str | None, frames: int | None, fps: float, workers: int | None, scheduler: str | None,
           retries: int, background: str, mode: str, save_derivatives: bool) -> None:
    """Render SCENE (.ply or .splat) to an image, or a camera path (--path) to a video or PNG frames.

    A missing output folder is created. The memory the render needs is estimated first; a render that would not
    fit is refused with the estimate and the limit.

    With --path, the time of every frame (render + upscale) goes to a JSON beside the output (<name>.frames.json,
    or frames.json in a frame folder), and --workers N / --scheduler ADDRESS spread the frames over processes or
    machines (Dask; the frames come out in order and identical to a serial run)."""
    from rich.console import Console

    from ..io import load_scene
    from ..memory import scene_bytes

    console = Console(stderr=True)
    bg = parse_background(background)
    method, scale = resolve_method(method, scale)
    if path_kind is None:
        if frames is not None or workers is not None or scheduler is not None:
            raise click.UsageError("--frames, --workers and --scheduler apply to a camera path (--path)")
        if save_derivatives and method != "native":
            raise click.UsageError("--save-derivatives: only for a native render (--method native, no --scale)")
        check_output_file(output, "--output", suffixes=tuple(_image_suffixes()))
        with console.status(f"loading {scene}"):
            g = load_scene(scene)
        cam = camera.camera(g)
        check_lowres(cam.width, cam.height, scale, method)
        check_render_memory(len(g), cam.width, cam.height, scale, method, derivatives=save_derivatives or None)
        _render_still(console, g, cam, output, method, scale, bg, mode, save_derivatives)
        return
    if save_derivatives:
        raise click.UsageError("--save-derivatives: only for a still image (no --path)")
    check_path_output(output)
    with console.status(f"loading {scene}"):
        g = load_scene(scene)
    cams = camera.path(g, path_kind, frames)
    check_lowres(cams[0].width, cams[0].height, scale, method)
    copies = workers if workers is not None and scheduler is None else 1
    check_render_memory(len(g), cams[0].width, cams[0].height, scale, method, copies=copies,
                        extra=(copies - 1) * scene_bytes(g),
                        what=f"rendering {cams[0].width}x{cams[0].height} frames of {len(g):,} Gaussians"
                             f"{f' in {copies} processes at once' if copies > 1 else ''}")
    _render_path(console, scene, g, cams, output, method, scale, bg, mode, fps, workers, scheduler, retries,
                 path_kind, camera)


def _image_suffixes() -> list[str]:
    from ..io.images import WRITE_FORMATS

    return sorted(WRITE_FORMATS)


def check_path_output(output: Path) -> None:
    """The destination of a camera path: a video file (.mp4, .mkv, .mov) or a folder of PNG frames (no suffix, or
    an existing folder); refused up front, naming --output, if it cannot be written."""
    from ..io.video import VIDEO_SUFFIXES, is_video_path

    if is_video_path(output):
        check_output_file(output, "--output")
    elif output.suffix and not output.is_dir():
        raise click.BadParameter(f"{output} has the suffix {output.suffix!r}; give a video "
                                 f"({', '.join(VIDEO_SUFFIXES)}) or a folder name without a suffix for PNG frames",
                                 param_hint="--output")
    else:
        check_output_dir(output, "--output")


def _render_still(console, g, cam, output: Path, method: str, scale: float, bg, mode: str,
                  save_derivatives: bool) -> None:
    from ..io.images import write_image
    from ..pipeline import lowres_camera, render
    from ..render.rasterize import rasterize

    label = "native" if method == "native" else f"{method} x{scale:g}"
    with console.status(f"rendering {len(g):,} Gaussians at {cam.width}x{cam.height} ({label})"):
        t0 = time.perf_counter()
        if method == "native":
            out = rasterize(g, cam, derivatives=save_derivatives, background=bg, mode=mode)
            img = out.color
        else:
            out = None
            img = render(g, cam, scale=scale, method=method, background=bg, mode=mode)
        dt = time.perf_counter() - t0
    with output_folder(output.parent, "--output"):
        write_image(output, img)
    if out is not None:
        n_vis = int(out.visible.sum())
        console.print(f"{output}: {cam.width}x{cam.height}, {n_vis:,} of {len(g):,} Gaussians visible, "
                      f"{out.n_pairs:,} tile pairs, {dt * 1000:.0f} ms")
        if n_vis == 0:
            console.print("[yellow]warning: no Gaussian is in view; the image is the background. "
                          "Check the camera (--up, --distance, --dataset view).[/yellow]")
    else:
        lr = lowres_camera(cam, scale)
        console.print(f"{output}: {cam.width}x{cam.height} from {lr.width}x{lr.height} ({label}), "
                      f"{dt * 1000:.0f} ms (includes compilation on a first run)")
    if save_derivatives:
        for name in ("dx", "dy", "dxy"):
            d = getattr(out, name)
            s = float(d.abs().quantile(0.99)) or 1.0
            p = output.with_name(f"{output.stem}_{name}{output.suffix}")
            write_image(p, 0.5 + 0.5 * (d / s).clamp(-1, 1))
            console.print(f"{p}: {name} mapped as 0.5 + 0.5 * value / {s:.3g}")


def _render_path(console, scene_path: Path, g, cams, output: Path, method: str, scale: float, bg, mode: str,
                 fps: float, workers, scheduler, retries: int, path_kind: str, camera: CameraSpec) -> None:
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    from ..fanout import FanoutError, dask_client
    from ..io.video import check_video_size, is_video_path, open_frame_sink
    from ..paths import FrameSettings, frame_times_path, render_path, write_frame_times
    from ..pipeline import lowres_camera

    w, h = cams[0].width, cams[0].height
    if any((c.width, c.height) != (w, h) for c in cams):
        raise click.UsageError("--path dataset: the views differ in size; give -W and -H to render them all alike")
    if is_video_path(output):
        check_video_size(w, h, what=f"-W/-H for the video {output}")
    with output_folder(output.parent if is_video_path(output) else output, "--output"):
        sink = open_frame_sink(output, (w, h), fps)
    settings = FrameSettings(method, scale, bg, mode)
    label = "native" if method == "native" else f"{method} x{scale:g}"
    cols = [TextColumn("[bold]frames"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[info]}"),
            TimeElapsedColumn(), TimeRemainingColumn()]
    try:
        with dask_client(workers, scheduler) as client, Progress(*cols, console=console) as prog:
            where = "" if client is None else f" on {len(client.scheduler_info()['workers'])} Dask worker(s)"
            task = prog.add_task("frames", total=len(cams), info=f"{label} {w}x{h}{where}")
            t0 = time.perf_counter()
            times = render_path(g, cams, sink, settings, client=client, retries=retries,
                                on_frame=lambda i, dt: prog.update(task, advance=1,
                                                                   info=f"{label} {w}x{h}{where}, {dt * 1e3:.0f} ms"))
            wall = time.perf_counter() - t0
    except FanoutError as e:
        click.echo(f"error: {e}", err=True)
        sys.exit(1)
    lr = None if method == "native" else lowres_camera(cams[0], scale)
    meta = {"scene": str(scene_path), "output": str(output), "path": path_kind, "method": method,
            "scale": 1.0 if method == "native" else scale, "width": w, "height": h,
            "lowres": None if lr is None else [lr.width, lr.height], "background": list(bg), "mode": mode,
            "fps": fps if is_video_path(output) else None,
            "up": list(camera.up_for(g)) if path_kind == "orbit" else None,
            "workers": workers, "scheduler": scheduler, "wall_s": wall,
            "timing": "render + upscale per frame, after one untimed render per process"}
    json_path = frame_times_path(output)
    rec = write_frame_times(json_path, times, cams, meta)
    s = rec["summary"]
    console.print(f"{output}: {len(cams)} frames {w}x{h} ({label}), median {s['median_s'] * 1e3:.1f} ms/frame "
                  f"({s['fps_at_median']:.1f} fps), {wall:.1f} s in all; frame times: {json_path}")
