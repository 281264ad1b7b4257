"""How much memory a render needs, how much the process may still take, and a refusal before it runs out.

:func:`estimate_render_bytes` adds up the buffers the render path allocates: per Gaussian (projection outputs,
the depth sort, the packed compositing inputs), per tile and tile-Gaussian pair (the binned lists), per pixel of
the rendered image (colour, alpha, depth, derivatives), per pixel of the full-size image (the upscaler's output)
and, for a command that writes the image, per pixel of the 8-bit conversion. The buffers live in stages
(rasterize, upscale, write); the estimate adds them all, as if no freed buffer were reused. The sizes are those
of the code as it is (the module named beside each constant), kept here, in one place, to be updated with it.
Two counts depend on the scene seen from the camera and are not known before the projection: the tile-Gaussian
pairs and the longest tile list. Without them the estimate takes allowances (:data:`PAIRS_PER_PIXEL_ALLOWANCE`,
:data:`LONGEST_LIST_FRACTION`) above what real scenes show (docs/memory.md). The scene's own memory is not
counted: it is loaded before the check, which sees the memory left after it.

:func:`available_bytes` is the memory the process may still take: the least of the memory the system has
available (``MemAvailable``, else free pages), the headroom under a cgroup limit (v2 ``memory.max``, v1
``memory.limit_in_bytes``) and under ``ulimit -v`` / ``-d``. :func:`check_memory` refuses a job whose estimate
exceeds it with :class:`InsufficientMemoryError`, saying what to change.
"""

from __future__ import annotations

import math
import os
import resource
from dataclasses import dataclass
from pathlib import Path

from .errors import SplatupInputError

# ------------------------------------------------------------------------ buffer sizes (bytes), from the code
#: render/project.py ``_forward``: means2d 8, conics 12, opacities 4, colours 12, depths 4, extents 8, radii 4,
#: visible 1, bin_extents 8, reach 4, alive 1, tile_rects 16, status 1
PROJECTED_PER_GAUSSIAN = 83
#: render/tiles.py ``depth_order``: alive indices and depth keys, int32 each, and their radix-sort copies;
#: ``bin_gaussians``: the int32 [4] tile range of each alive Gaussian in depth order
BINNING_PER_GAUSSIAN = 32
#: render/composite.py: the packed inputs G, float32 [N, NPACK = 16]
PACKED_PER_GAUSSIAN = 64
#: render/tiles.py: gids, int32 per tile-Gaussian pair
PER_PAIR = 4
#: render/tiles.py ``bin_gaussians``: hist and cursor, int64 [chunks, tiles], with 2 chunks per thread
PER_TILE_PER_CHUNK = 16
#: render/tiles.py: offsets, int64 [tiles + 1], and the per-tile sum of hist
PER_TILE = 16
#: render/composite.py, per parallel chunk (one live per thread) and entry of the longest tile list: P float32
#: [NPACK = 16], Q float32 [7] (padded by two SIMD vectors), the block bitsets (NBLK = 16 or 32 bits)
LIST_SCRATCH_PER_ENTRY = 96
#: render/rasterize.py: colour [H, W, 3] + alpha [H, W, 1] + depth [H, W, 1], float32
RASTER_PER_PIXEL = 20
#: render/rasterize.py with derivatives: dx, dy, dxy [H, W, 3] float32
DERIVATIVES_PER_PIXEL = 36
#: an RGB float32 image [H, W, 3]: an upscaler's output, a clamped copy (pipeline.upscale_lowres), a metric input
IMAGE_PER_PIXEL = 12
#: upscale/classic.py "fd-hermite", per low-res pixel: the three finite-difference derivative images and the
#: differences' temporaries
FD_DERIVATIVES_PER_PIXEL = 60
#: io/images.py ``to_uint8`` + ``write_image``: the uint8 image (3, quantised in one pass without a float copy) and
#: PIL's 4-byte-per-pixel copy of it, rounded up
WRITE_PER_PIXEL = 8
#: paths.py ``render_frame``: a video frame, uint8 [H, W, 3] straight from ``render(..., dtype=torch.uint8)``
FRAME_PER_PIXEL = 4

# ------------------------------------------------------------------------ allowances for unknown counts
#: tile-Gaussian pairs per rendered pixel assumed when the count is not given (real scenes: at most 2.6, docs/memory.md)
PAIRS_PER_PIXEL_ALLOWANCE = 4.0
#: ... plus pairs per Gaussian (every Gaussian is listed in at least one tile)
PAIRS_PER_GAUSSIAN_ALLOWANCE = 4.0
#: the longest tile list as a fraction of the Gaussians, when not given (real scenes: at most 0.11, docs/memory.md)
LONGEST_LIST_FRACTION = 0.25
#: allocator slack and small buffers (plans, tables, Python objects) added to every estimate
FIXED_OVERHEAD = 16 << 20

# ------------------------------------------------------------------------ comparisons (measured, not derived)
# bench/compare.py keeps native, low-res and method images, re-renders them for the timings, computes the metrics
# and draws matplotlib grids: too many owners to add up buffer by buffer. These per-pixel figures are the measured
# peaks of `run_compare` on spot_10k at 640x480 and 1280x960 (tests/memory_probe.py, docs/memory.md) rounded up:
#: one view with one method, LPIPS off (measured 127 B/px)
COMPARE_BASE_PER_PIXEL = 140
#: each further method (measured 29 B/px)
COMPARE_PER_METHOD_PER_PIXEL = 32
#: LPIPS' AlexNet activations on top (measured up to 90 B/px)
LPIPS_PER_PIXEL = 96

TILE_SIZE = 16  # render/tiles.py TILE_SIZE
UPSCALING_METHODS = ("hermite", "hermite-first", "fd-hermite", "bicubic", "bicubic-pil", "bilinear", "lanczos",
                     "nearest")
#: the methods whose low-res render has derivative images (pipeline.METHOD_DERIVATIVES; "first" also allocates dxy)
DERIVATIVE_METHODS = ("hermite", "hermite-first")


def _threads() -> int:
    try:
        import numba

        return int(numba.get_num_threads())
    except Exception:  # noqa: BLE001 - numba missing or not initialised: the machine's cores
        return os.cpu_count() or 1


def scene_bytes(scene) -> int:
    """Bytes of a :class:`splatup.Gaussians`' tensors (what another process holding a copy of it needs)."""
    return sum(t.numel() * t.element_size() for t in (scene.means, scene.quats, scene.log_scales,
                                                      scene.opacity_logits, scene.sh))


def lowres_size(width: int, height: int, scale: float) -> tuple[int, int]:
    """(floor(W / s), floor(H / s)): the size :func:`splatup.pipeline.lowres_camera` renders at (as
    :meth:`splatup.Camera.scaled` rounds it)."""
    f = 1.0 / scale
    return max(0, math.floor(width * f + 1e-9)), max(0, math.floor(height * f + 1e-9))


def rasterize_bytes(n_gaussians: int, width: int, height: int, derivatives: bool = False,
                    n_pairs: int | None = None, longest_list: int | None = None, threads: int | None = None) -> int:
    """Bytes that one :func:`splatup.rasterize` of ``n_gaussians`` at ``width`` x ``height`` allocates, its outputs
    included. ``n_pairs`` (tile-Gaussian pairs) and ``longest_list`` (entries of the longest tile list) default to
    the allowances above; ``threads`` to numba's thread count."""
    n, px = int(n_gaussians), int(width) * int(height)
    tiles = -(-int(width) // TILE_SIZE) * -(-int(height) // TILE_SIZE)
    threads = threads or _threads()
    if n_pairs is None:  # the allowance, but never more than every Gaussian in every tile
        n_pairs = min(n * tiles, math.ceil(PAIRS_PER_PIXEL_ALLOWANCE * px + PAIRS_PER_GAUSSIAN_ALLOWANCE * n))
    if longest_list is None:
        longest_list = min(n, max(1024, math.ceil(LONGEST_LIST_FRACTION * n)))
    per_gaussian = (PROJECTED_PER_GAUSSIAN + BINNING_PER_GAUSSIAN + PACKED_PER_GAUSSIAN) * n
    lists = PER_PAIR * n_pairs + tiles * (PER_TILE + PER_TILE_PER_CHUNK * 2 * threads)
    scratch = LIST_SCRATCH_PER_ENTRY * longest_list * threads
    pixels = (RASTER_PER_PIXEL + (DERIVATIVES_PER_PIXEL if derivatives else 0)) * px
    return per_gaussian + lists + scratch + pixels


def estimate_render_bytes(n_gaussians: int, width: int, height: int, scale: float = 1.0, method: str = "native",
                          derivatives: bool | None = None, write: bool = True, n_pairs: int | None = None,
                          longest_list: int | None = None, threads: int | None = None) -> int:
    """Bytes that rendering one ``width`` x ``height`` image of ``n_gaussians`` the way the commands do may take
    at its peak: a native rasterization, or one at 1/``scale`` (with derivatives for the Hermite methods) upscaled by
    ``method``; with ``write`` also the 8-bit conversion and PNG image of :func:`splatup.io.images.write_image`.

    ``derivatives`` None: as ``method`` needs them (True for "hermite" and "hermite-first"); True also for a native
    render whose derivative images are written. The estimate adds every buffer of every stage (rasterize, upscale,
    write) as if none were reused, plus :data:`FIXED_OVERHEAD`: the allocator keeps freed buffers in the heap
    (:mod:`splatup._malloc`), and a later stage's larger buffers need not fit in the holes an earlier stage left,
    so the peak lies between the largest stage and this sum (docs/memory.md). Integers throughout: absurd sizes give
    absurd estimates, not overflows."""
    if method not in ("native",) + UPSCALING_METHODS:
        raise SplatupInputError(f"estimate_render_bytes: unknown method {method!r}")
    W, H = int(width), int(height)
    px = W * H
    write_px = WRITE_PER_PIXEL * px if write else 0
    if method == "native":
        deriv = bool(derivatives)
        total = rasterize_bytes(n_gaussians, W, H, deriv, n_pairs, longest_list, threads) + write_px
        if deriv and write:  # each derivative image is scaled, mapped to [0, 1] and written in turn
            total += 3 * IMAGE_PER_PIXEL * px + 2 * WRITE_PER_PIXEL * px
        return total + FIXED_OVERHEAD
    w, h = lowres_size(W, H, scale)
    deriv = method in DERIVATIVE_METHODS if derivatives is None else bool(derivatives)
    total = rasterize_bytes(n_gaussians, w, h, deriv, n_pairs, longest_list, threads)
    if method in DERIVATIVE_METHODS:
        total += IMAGE_PER_PIXEL * px  # clamped inside the kernel
    elif method == "fd-hermite":
        total += FD_DERIVATIVES_PER_PIXEL * w * h + 2 * IMAGE_PER_PIXEL * px
    else:
        total += 2 * IMAGE_PER_PIXEL * px  # the output and its clamped copy
    return total + write_px + FIXED_OVERHEAD


def estimate_compare_bytes(n_gaussians: int, width: int, height: int, scale: float, n_methods: int, n_views: int,
                           lpips: bool = True) -> int:
    """Peak bytes of comparing ``n_methods`` upscalers against native on ``n_views`` views of ``width`` x ``height``
    (:func:`splatup.bench.compare.compare_views` and its report): the measured per-pixel cost of one view, the
    images every further view keeps for the report, and one rasterization's per-Gaussian and list buffers."""
    px = int(width) * int(height)
    per_view = (COMPARE_BASE_PER_PIXEL + COMPARE_PER_METHOD_PER_PIXEL * max(0, n_methods - 1)
                + (LPIPS_PER_PIXEL if lpips else 0)) * px
    kept = max(0, n_views - 1) * (1 + n_methods) * IMAGE_PER_PIXEL * px
    raster = rasterize_bytes(n_gaussians, width, height) - RASTER_PER_PIXEL * px  # the pixels are in per_view
    return per_view + kept + raster + FIXED_OVERHEAD


# ------------------------------------------------------------------------ what the process may still take
@dataclass(frozen=True)
class MemoryBudget:
    """Bytes the process may still allocate, and which limit sets it (e.g. "available system memory")."""

    bytes: int
    source: str


def _read_int(path: Path) -> int | None:
    try:
        text = path.read_text().strip()
    except (OSError, ValueError):
        return None
    if not text or text == "max":
        return None
    try:
        return int(text)
    except ValueError:
        return None


def _read_keyed(path: Path, key: str) -> int | None:
    """The number after ``key`` in a 'key value' file (/proc/meminfo in kB -> bytes; cgroup memory.stat)."""
    try:
        for line in path.read_text().splitlines():
            parts = line.replace(":", " ").split()
            if len(parts) >= 2 and parts[0] == key:
                return int(parts[1]) * (1024 if len(parts) > 2 and parts[2] == "kB" else 1)
    except (OSError, ValueError):
        return None
    return None


def _system_available() -> int | None:
    avail = _read_keyed(Path("/proc/meminfo"), "MemAvailable")
    if avail is not None:
        return avail
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


UNLIMITED = 1 << 60  # cgroup v1 reports "no limit" as a number near 2^63


def _cgroup_headroom(root: Path = Path("/sys/fs/cgroup")) -> int | None:
    """Limit minus usage of this process's memory cgroup (as mounted in its namespace), reclaimable page cache not
    counted as used; None without a limit."""
    for limit_f, usage_f, stat_f, cache_key in (
            (root / "memory.max", root / "memory.current", root / "memory.stat", "inactive_file"),
            (root / "memory" / "memory.limit_in_bytes", root / "memory" / "memory.usage_in_bytes",
             root / "memory" / "memory.stat", "total_inactive_file")):
        limit = _read_int(limit_f)
        if limit is None or limit >= UNLIMITED:
            continue
        usage = _read_int(usage_f) or 0
        cache = _read_keyed(stat_f, cache_key) or 0
        return max(0, limit - max(0, usage - cache))
    return None


def _rlimit_headroom() -> tuple[int, str] | None:
    """Headroom under ``ulimit -v`` (address space, against VmSize) and ``ulimit -d`` (data, against VmData)."""
    best = None
    for res, key, name in ((resource.RLIMIT_AS, "VmSize", "ulimit -v"), (resource.RLIMIT_DATA, "VmData", "ulimit -d")):
        soft, _ = resource.getrlimit(res)
        if soft == resource.RLIM_INFINITY:
            continue
        used = _read_keyed(Path("/proc/self/status"), key) or 0
        room = max(0, soft - used)
        if best is None or room < best[0]:
            best = (room, f"the process limit ({name} {soft / 2**30:.1f} GiB)")
    return best


def available_bytes() -> MemoryBudget:
    """The memory this process may still allocate: the least of the system's available memory, the cgroup's
    headroom and the rlimits' headroom (each where it applies)."""
    options: list[tuple[int, str]] = []
    sys_avail = _system_available()
    if sys_avail is not None:
        options.append((sys_avail, "available system memory"))
    cg = _cgroup_headroom()
    if cg is not None:
        options.append((cg, "the container's memory limit (cgroup)"))
    rl = _rlimit_headroom()
    if rl is not None:
        options.append(rl)
    if not options:
        return MemoryBudget(UNLIMITED, "no known limit")
    b, src = min(options)
    return MemoryBudget(int(b), src)


class InsufficientMemoryError(SplatupInputError):
    """A job's memory estimate exceeds what the process may still allocate (raised before the job starts)."""


def format_bytes(n: int | float) -> str:
    """Bytes as a short text in binary units (1.5 GiB)."""
    n = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if abs(n) < 1024 or unit == "PiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} PiB"  # pragma: no cover


def check_memory(required: int, what: str, advice: str, budget: MemoryBudget | None = None) -> None:
    """Raise :class:`InsufficientMemoryError` if ``required`` bytes exceed ``budget`` (default
    :func:`available_bytes`): '<what> needs about <estimate> of memory; <limit> leaves <budget>: <advice>'."""
    budget = budget or available_bytes()
    if required > budget.bytes:
        raise InsufficientMemoryError(f"{what} needs about {format_bytes(required)} of memory, but "
                                      f"{budget.source} leaves {format_bytes(budget.bytes)}: {advice}")


__all__ = ["estimate_render_bytes", "estimate_compare_bytes", "scene_bytes", "rasterize_bytes", "available_bytes",
           "check_memory", "MemoryBudget",
           "InsufficientMemoryError", "format_bytes", "lowres_size"]
