"""LLVM settings that let the projection kernel's stage loops vectorise.

LLVM's loop vectoriser gives up on a loop when proving it safe needs more runtime checks than its defaults allow:
8 pointer-overlap checks (numba cannot tell LLVM that the kernel's arrays do not overlap) and 16 SCEV predicates
(numba emits its integer index arithmetic without no-wrap flags). The projection's geometry loop reads 4 arrays,
writes 8 and indexes them with a handful of strided expressions, so at the defaults it stays scalar. Raising the
two limits lets LLVM emit the checks once per loop and run the vector body (for plant.splat: 3-4x faster).

The limits are process-wide LLVM options, read when a function is compiled. They change no result, only whether a
loop with many arrays may be versioned; other numba code compiled in the same process is affected the same way.
They must be set before numba compiles the kernels, so :mod:`splatup.render.project_kernels` imports this module
first. Set ``SPLATUP_LLVM_VECTORIZE=0`` to leave LLVM's defaults alone.
"""

from __future__ import annotations

import os

import llvmlite.binding as llvm

RUNTIME_CHECK_LIMITS = {
    "-runtime-memory-check-threshold": 256,
    "-vectorize-scev-check-threshold": 256,
}


def apply() -> bool:
    """Set the limits (unless SPLATUP_LLVM_VECTORIZE=0). Returns whether they were set."""
    if os.environ.get("SPLATUP_LLVM_VECTORIZE", "1") == "0":
        return False
    for flag, value in RUNTIME_CHECK_LIMITS.items():
        llvm.set_option("splatup", f"{flag}={value}")
    return True


APPLIED = apply()
