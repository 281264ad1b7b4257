"""Dynamic resolution: the upscaling factor chosen frame by frame to hold a target frame time.

The controller models a frame's cost at factor s as ``t(s) = a + b / s^2``: ``a`` is what does not depend on the
low-resolution size (projection, sorting, upscaling to the output size, 8-bit conversion, encoding) and ``b / s^2``
the compositing of the low-resolution image. Each measured frame gives both terms directly (its compositing time is
``b / s^2``, the rest is ``a``), so the model is identified even while the factor stays constant, and a model error
(compositing does not scale exactly as 1/s^2) is corrected by the next measurement at the new factor. Both terms are
smoothed over frames, and the factor changes only when the predicted time leaves a band below the target
(hysteresis), so noise does not make the resolution flicker.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from ..errors import SplatupInputError


@dataclass
class DynamicResolution:
    """Chooses the factor in [min_factor, max_factor] whose predicted frame time is within the target band.

    Attributes:
        target_s: target frame time in seconds.
        min_factor, max_factor: the factor range.
        band: the factor is kept while the predicted time at it lies in [(1 - band) target, target]; when it leaves
            the band the factor is re-solved for the band's middle, (1 - band / 2) target.
        smoothing: weight of the newest frame in the exponential averages of ``a`` and ``b`` (1 = no smoothing).
        factor: the factor to render the next frame at.
    """

    target_s: float
    min_factor: float = 1.0
    max_factor: float = 4.0
    band: float = 0.15
    smoothing: float = 0.35
    factor: float = 2.0
    fixed_s: float | None = field(default=None, init=False)  # smoothed a (seconds)
    scaled_s: float | None = field(default=None, init=False)  # smoothed b (seconds at factor 1)

    def __post_init__(self) -> None:
        self.set_target(self.target_s)
        self.set_range(self.min_factor, self.max_factor)
        if not 0 < self.band < 1:
            raise SplatupInputError(f"DynamicResolution: band must be in (0, 1), got {self.band!r}")
        if not 0 < self.smoothing <= 1:
            raise SplatupInputError(f"DynamicResolution: smoothing must be in (0, 1], got {self.smoothing!r}")
        self.factor = self._clamp(self.factor)

    def set_target(self, target_s: float) -> None:
        if not (isinstance(target_s, (int, float)) and math.isfinite(target_s) and target_s > 0):
            raise SplatupInputError(f"DynamicResolution: target frame time must be > 0 s, got {target_s!r}")
        self.target_s = float(target_s)

    def set_range(self, min_factor: float, max_factor: float) -> None:
        if not (1 <= min_factor <= max_factor and math.isfinite(max_factor)):
            raise SplatupInputError(
                f"DynamicResolution: factor range must satisfy 1 <= min <= max, got [{min_factor}, {max_factor}]")
        self.min_factor, self.max_factor = float(min_factor), float(max_factor)
        self.factor = self._clamp(self.factor)

    def reset(self) -> None:
        """Forget the cost model (the method or the image layout changed); the factor is kept as a start."""
        self.fixed_s = self.scaled_s = None

    def predict(self, factor: float) -> float:
        """Predicted frame time in seconds at ``factor`` (needs one observed frame)."""
        if self.fixed_s is None or self.scaled_s is None:
            raise SplatupInputError("DynamicResolution.predict: no frame observed yet")
        return self.fixed_s + self.scaled_s / factor**2

    def observe(self, factor: float, frame_s: float, scaled_s: float) -> float:
        """Take one measured frame and return the factor for the next one.

        Args:
            factor: the factor the frame was rendered at.
            frame_s: its whole time in seconds.
            scaled_s: the part of ``frame_s`` that goes as 1 / factor^2 (the low-resolution compositing).
        """
        if not (math.isfinite(frame_s) and math.isfinite(scaled_s) and factor >= 1):
            return self.factor  # a broken measurement must not poison the model
        fixed = max(frame_s - scaled_s, 0.0)
        scaled = max(scaled_s, 0.0) * factor**2
        w = self.smoothing
        self.fixed_s = fixed if self.fixed_s is None else (1 - w) * self.fixed_s + w * fixed
        self.scaled_s = scaled if self.scaled_s is None else (1 - w) * self.scaled_s + w * scaled
        predicted = self.predict(self.factor)
        too_slow = predicted > self.target_s
        too_coarse = predicted < (1 - self.band) * self.target_s and self.factor > self.min_factor
        if too_slow or too_coarse:
            self.factor = self.solve((1 - self.band / 2) * self.target_s)
        return self.factor

    def solve(self, goal_s: float) -> float:
        """The factor whose predicted time is ``goal_s``, clamped to the range (max_factor if even that is too slow)."""
        if self.fixed_s is None or self.scaled_s is None:
            raise SplatupInputError("DynamicResolution.solve: no frame observed yet")
        headroom = goal_s - self.fixed_s
        if headroom <= 0:
            return self.max_factor
        return self._clamp(math.sqrt(self.scaled_s / headroom))

    def _clamp(self, factor: float) -> float:
        return min(max(float(factor), self.min_factor), self.max_factor)
