"""Keep large freed buffers in the process (glibc malloc tuning), so frames do not page-fault their images in.

A frame allocates and frees images of several MB (1920x1080 RGB float32 is 25 MB). With glibc's defaults such a
buffer is often returned to the kernel when freed (mmap threshold, heap trimming), and the next frame pays a page
fault per 4 KiB page to get it back. benchmarks/bench_malloc.py measures both settings side by side on plant.splat
at 1920x1080 in bench_upscale.py's mix of frames: with the tuning the native frame took 0.86x, the native frame with
derivatives 0.73x and the Hermite upscaler at 1.5x 0.51x the time under glibc's defaults. Raising the mmap
threshold to 512 MiB and the trim threshold to 1 GiB keeps such buffers in the heap for reuse; the cost is that up
to 1 GiB of freed memory may stay mapped in the process.

Applied once at ``import splatup`` on Linux with glibc, unless the user set any MALLOC_*_ variable or
GLIBC_TUNABLES (their choice wins) or SPLATUP_MALLOC_TUNING=0.
"""

from __future__ import annotations

import ctypes
import os

M_TRIM_THRESHOLD = -1  # mallopt parameter numbers from glibc's malloc.h
M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD = 512 << 20
TRIM_THRESHOLD = 1 << 30

_USER_VARS = ("MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_", "MALLOC_TOP_PAD_", "MALLOC_MMAP_MAX_",
              "GLIBC_TUNABLES")


def tune_malloc() -> bool:
    """Apply the thresholds above; True if glibc accepted both. A no-op (False) off glibc or when opted out."""
    if os.environ.get("SPLATUP_MALLOC_TUNING", "1") == "0" or any(v in os.environ for v in _USER_VARS):
        return False
    try:
        if not os.confstr("CS_GNU_LIBC_VERSION").startswith("glibc"):
            return False
    except (ValueError, OSError, AttributeError):  # not a glibc system
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    mallopt.restype = ctypes.c_int
    return bool(mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD)) & bool(mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD))
