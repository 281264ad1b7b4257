"""LLVM settings that let the projection kernels' stage loops vectorise.

LLVM's loop vectoriser gives up on a loop when proving it safe needs more runtime checks than its defaults allow:
8 pointer-overlap checks (numba cannot tell LLVM that the kernel's arrays do not overlap) and 16 SCEV predicates
(numba emits its integer index arithmetic without no-wrap flags). The projection's geometry loop reads 4 arrays,
writes 8 and indexes them with a handful of strided expressions, so at the defaults it stays scalar; raising the
two limits lets LLVM emit the checks once per loop and run the vector body (the speed-up and the bit-identity
check of the outputs are in docs/benchmarks.md, "Projection kernels").

The limits are process-wide LLVM options, read when a function is compiled, so they must be set before numba
compiles the kernels: :mod:`splatup.render.project_kernels` imports this module first (on the first use of the
rasterizer; ``import splatup`` alone does not). For float32 scenes the projection's outputs are the same bit for
bit either way; float64 results can differ in the last bit (the vector and scalar code may round a contracted
expression differently). Set ``SPLATUP_LLVM_VECTORIZE=0`` to leave LLVM's defaults alone; the projection kernels
are then compiled afresh in each process, neither read from nor written to the disk cache (whose key ignores LLVM
options).
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
