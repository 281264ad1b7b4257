"""The status line under the viewer's controls: frame time, fps, the factor in use and the time of each phase."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover
    from .session import FrameRecord


def status_text(rec: FrameRecord) -> str:
    """Markdown, two lines. fps is 1 / frame time: the rate the server sustains at these settings."""
    ms = rec.frame_s * 1e3
    fps = 1.0 / rec.frame_s if rec.frame_s > 0 else float("inf")
    if rec.method == "native":
        what = "native"
    elif rec.factor <= 1.0:
        what = f"{rec.method} ×1 (rendered natively)"
    else:
        what = f"{rec.method} ×{rec.factor:.2f}"
    if rec.auto:
        what += " auto"
    if rec.split:
        what = f"native | {what}"
    size = f"{rec.width}×{rec.height}"
    if rec.lowres is not None:
        size += f" from {rec.lowres[0]}×{rec.lowres[1]}"
    phases = " · ".join(f"{k} {v * 1e3:.1f}" for k, v in rec.phases.items() if v > 0)
    return f"**{ms:.1f} ms · {fps:.1f} fps** · {what} · {size} · {rec.kind}  \n{phases} ms"
