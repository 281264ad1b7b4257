"""What the viewer's user chooses: method, factor, dynamic resolution, split view, background, field of view."""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

from ..errors import SplatupInputError

# The methods the viewer offers, in the order of its dropdown, with the derivatives each needs from the low-resolution
# render (``rasterize(derivatives=...)``). A new method of ``splatup.pipeline`` is one line here.
METHOD_DERIVATIVES: dict[str, bool | str] = {
    "native": False,
    "hermite": True,
    "fd-hermite": False,
    "bicubic": False,
    "lanczos": False,
    "bilinear": False,
    "nearest": False,
}
VIEW_METHODS = tuple(METHOD_DERIVATIVES)

FACTOR_RANGE = (1.0, 4.0)
FOV_RANGE = (10.0, 120.0)


@dataclass(frozen=True)
class ViewSettings:
    """One client's display settings.

    Attributes:
        method: one of :data:`VIEW_METHODS`.
        factor: upscaling factor in :data:`FACTOR_RANGE` (fractional). It is the factor of every frame when ``auto``
            is off, and of the refined frame once the camera stops when ``auto`` is on. Factor 1 renders natively
            (every upscaler is the identity there).
        auto: while the camera moves, choose the factor frame by frame in :data:`FACTOR_RANGE` to hold
            ``target_ms`` (dynamic resolution). No effect for "native".
        target_ms: target frame time of ``auto``, milliseconds of the server's work per frame (render + encode).
        split: left half native, right half ``method``.
        background: RGB in [0, 1] behind the scene.
        fov_deg: vertical field of view in degrees.
    """

    method: str = "hermite"
    factor: float = 2.0
    auto: bool = True
    target_ms: float = 1000.0 / 30.0
    split: bool = False
    background: tuple[float, float, float] = (0.0, 0.0, 0.0)
    fov_deg: float = 50.0

    def __post_init__(self) -> None:
        if self.method not in VIEW_METHODS:
            raise SplatupInputError(f"view: method must be one of {', '.join(VIEW_METHODS)}; got {self.method!r}")
        lo, hi = FACTOR_RANGE
        if not _finite(self.factor) or not lo <= self.factor <= hi:
            raise SplatupInputError(f"view: factor must be a number in [{lo:g}, {hi:g}], got {self.factor!r}")
        if not _finite(self.target_ms) or self.target_ms <= 0:
            raise SplatupInputError(f"view: target frame time must be > 0 ms, got {self.target_ms!r}")
        bg = tuple(self.background)
        if len(bg) != 3 or not all(_finite(c) and 0 <= c <= 1 for c in bg):
            raise SplatupInputError(f"view: background must be three values in [0, 1], got {self.background!r}")
        object.__setattr__(self, "background", tuple(float(c) for c in bg))
        lo, hi = FOV_RANGE
        if not _finite(self.fov_deg) or not lo <= self.fov_deg <= hi:
            raise SplatupInputError(f"view: field of view must be in [{lo:g}, {hi:g}] degrees, got {self.fov_deg!r}")

    def with_(self, **changes) -> ViewSettings:
        """A copy with ``changes`` applied (validated)."""
        return replace(self, **changes)


def _finite(v: object) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
