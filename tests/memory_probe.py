"""Child process of tests/test_memory.py: the peak memory of one render the way `splatup render` does it.

Usage: python memory_probe.py SCENE WIDTH HEIGHT METHOD SCALE OUT.png
       python memory_probe.py SCENE WIDTH HEIGHT compare[-nolpips] SCALE OUT_DIR   (one view, every method)
Prints one JSON line: {"peak": bytes above the resident size before the render, "n": Gaussians, "pairs": ...,
"longest_list": ...}. The peak is the kernel's resident-set high-water mark (VmHWM, reset through
/proc/self/clear_refs after the warm-up) minus the resident size just before the render.
"""

from __future__ import annotations

import gc
import io
import json
import sys
from pathlib import Path


def _status(key: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1]) * 1024
    raise KeyError(key)


def main() -> None:
    scene_path, w, h, method, scale, out = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], \
        float(sys.argv[5]), Path(sys.argv[6])
    from rich.console import Console

    import splatup as su
    from splatup.cli.render import _render_still
    from splatup.render.project import project
    from splatup.render.tiles import TILE_SIZE, bin_gaussians
    from splatup.viewpoints import orbit_camera

    g = su.load_scene(scene_path)
    console = Console(file=io.StringIO())
    if method.startswith("compare"):
        _compare(g, scene_path, w, h, scale, out, console, method == "compare")
        return
    # warm-up at a small size: kernels compiled or loaded from the cache, PIL's PNG encoder loaded
    _render_still(console, g, orbit_camera(g, 64, 48), out, method, scale, (0.0, 0.0, 0.0), "classic", False)
    cam = orbit_camera(g, w, h)
    gc.collect()
    Path("/proc/self/clear_refs").write_text("5")  # reset VmHWM to the current resident size
    rss0 = _status("VmRSS")
    _render_still(console, g, cam, out, method, scale, (0.0, 0.0, 0.0), "classic", False)
    peak = _status("VmHWM") - rss0
    # the list sizes of that render, measured after it (computing them first would leave their buffers in
    # malloc's free lists, where the render would reuse them without raising the high-water mark)
    lr = cam if method == "native" else cam.scaled(1.0 / scale)
    p = project(g, lr)
    b = bin_gaussians(p.means2d.detach().numpy(), p.bin_extents.numpy(), p.depths.numpy(), p.alive.numpy(),
                      lr.width, lr.height, TILE_SIZE, p.reach.numpy(), p.tile_rects.numpy())
    pairs, longest = b.n_pairs, int((b.offsets[1:] - b.offsets[:-1]).max())
    print(json.dumps({"peak": peak, "n": len(g), "pairs": pairs, "longest_list": longest}))


def _compare(g, scene_path, w, h, scale, out, console, lpips) -> None:
    import os

    from splatup.bench.compare import DEFAULT_METHODS
    from splatup.cli.camera_spec import CameraSpec
    from splatup.cli.compare import run_compare

    methods = tuple(os.environ.get("PROBE_METHODS", ",".join(DEFAULT_METHODS)).split(","))
    run_compare(Path(scene_path), out, scale, methods, 1, 1, lpips, (0.0, 0.0, 0.0),
                CameraSpec(width=64, height=48), console)  # warm-up
    gc.collect()
    Path("/proc/self/clear_refs").write_text("5")
    rss0 = _status("VmRSS")
    run_compare(Path(scene_path), out, scale, methods, 1, 1, lpips, (0.0, 0.0, 0.0),
                CameraSpec(width=w, height=h), console)
    print(json.dumps({"peak": _status("VmHWM") - rss0, "n": len(g)}))


if __name__ == "__main__":
    main()
