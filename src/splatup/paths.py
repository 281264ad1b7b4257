"""Rendering a camera path: every frame through one method (:func:`splatup.pipeline.render`), in order, serially
or fanned out with Dask (:mod:`splatup.fanout`), into a frame sink (:mod:`splatup.io.video`), with the render time
of each frame.

A frame is ``render(scene, cam, scale, method, background, mode, dtype=torch.uint8)``: ``su.render``'s float image
rounded to 8 bit as ``write_image`` rounds it (the upscalers quantise it in their kernels), so a PNG frame equals
``su.render``'s image quantised. Each process renders its first frame once untimed (JIT compilation, caches) so that
the recorded times are those of steady rendering.
"""

from __future__ import annotations

import json
import math
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .camera import Camera
from .gaussians import Gaussians
from .io.video import FrameSink

_warm: set[tuple] = set()  # per process: the (method, scale, size) already rendered once


@dataclass(frozen=True)
class FrameSettings:
    """How every frame of a path is rendered (see :func:`splatup.pipeline.render`)."""

    method: str = "native"
    scale: float = 2.0
    background: tuple[float, float, float] = (0.0, 0.0, 0.0)
    mode: str = "classic"


def render_frame(cam: Camera, scene: Gaussians, settings: FrameSettings) -> tuple[np.ndarray, float]:
    """One frame: (uint8 [H, W, 3] image, seconds spent in render + upscale + 8-bit quantisation)."""
    import torch

    from .pipeline import render

    def run():
        return render(scene, cam, scale=settings.scale, method=settings.method, background=settings.background,
                      mode=settings.mode, dtype=torch.uint8)

    with torch.no_grad():
        key = (settings, cam.width, cam.height)
        if key not in _warm:
            run()
            _warm.add(key)
        t0 = time.perf_counter()
        img = run()
        dt = time.perf_counter() - t0
    return img.numpy(), dt


def render_path(
    scene: Gaussians,
    cams: Sequence[Camera],
    sink: FrameSink,
    settings: FrameSettings,
    client=None,
    retries: int = 2,
    on_frame: Callable[[int, float], None] | None = None,
) -> list[float]:
    """Render every camera of ``cams`` into ``sink`` in order (on a Dask ``client`` if given); returns the render
    seconds of each frame. ``on_frame(index, seconds)`` is called after each frame is written. On any error the
    sink is aborted (no partial video) and the error propagates (:class:`splatup.fanout.FanoutError` names the
    frame)."""
    from .fanout import ordered_map

    settings = FrameSettings(settings.method, float(settings.scale), tuple(float(c) for c in settings.background),
                             settings.mode)
    times = [math.nan] * len(cams)

    def deliver(i: int, result: tuple[np.ndarray, float]) -> None:
        frame, dt = result
        sink.write(i, frame)
        times[i] = dt
        if on_frame:
            on_frame(i, dt)

    try:
        ordered_map(render_frame, list(cams), {"scene": scene, "settings": settings}, client=client, retries=retries,
                    on_result=deliver, what="frame", keep_results=False)
    except BaseException:
        sink.abort()
        raise
    sink.close()
    return times


def frame_times_path(output: Path) -> Path:
    """Where the frame times of ``output`` go: ``<stem>.frames.json`` beside a video, ``frames.json`` in a folder."""
    output = Path(output)
    return output / "frames.json" if not output.suffix or output.is_dir() else output.with_suffix(".frames.json")


def write_frame_times(path: Path, times: Sequence[float], cams: Sequence[Camera], meta: dict) -> dict:
    """Write the frame-times record (JSON, atomically): ``meta``, a summary (median, mean, 90th percentile, total
    seconds, frames per second at the median) and one row per frame (index, seconds, camera). Returns it."""
    from .io._atomic import atomic_write

    ts = [float(t) for t in times]
    srt = sorted(ts)
    summary = {"frames": len(ts), "median_s": statistics.median(ts), "mean_s": statistics.fmean(ts),
               "p90_s": srt[min(len(srt) - 1, math.ceil(0.9 * len(srt)) - 1)], "total_s": math.fsum(ts)}
    summary["fps_at_median"] = 1.0 / summary["median_s"] if summary["median_s"] > 0 else None
    record = {**meta, "summary": summary, "frames": [
        {"index": i, "time_s": t, "world_to_camera": c.world_to_camera.tolist(), "K": c.K.tolist()}
        for i, (t, c) in enumerate(zip(ts, cams))]}
    with atomic_write(Path(path)) as f:
        f.write(json.dumps(record, indent=1).encode("utf-8"))
    return record
