"""Dynamic resolution: the upscaling factor chosen frame by frame to hold a target frame time.

The controller models an upscaled frame's cost at factor s as ``t(s) = a + b / s^2``: ``a`` is what does not depend
on the low-resolution size (projection, sorting, upscaling to the output size, 8-bit conversion, encoding) and
``b / s^2`` the compositing of the low-resolution image. Each measured frame gives both terms directly (its
compositing time is ``b / s^2``, the rest is ``a``), so the model is identified even while the factor stays the
same, and a model error (compositing does not scale exactly as 1/s^2) is corrected by the next measurement at the
new factor. Both terms are smoothed over frames, and the factor changes only when the predicted time leaves a band
below the target (hysteresis), so noise does not make the resolution flicker.

Factor 1 is a native render, which has no derivatives and no upscaling and so costs less than the model's ``a + b``:
on a scene whose compositing shrinks slowly with the resolution, native can be faster than a small factor. Its time
is therefore measured, not predicted: native is tried when the model runs into its lower bound, or when an upscaled
frame's time without its upscaling (a rough lower bound of a native frame) fits the target; it is kept while its
measured time holds the target, and tried again only after ``native_memory`` frames.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from ..errors import SplatupInputError


@dataclass
class DynamicResolution:
    """Chooses the factor in [min_factor, max_factor] whose frame time is within the target band.

    Attributes:
        target_s: target frame time in seconds.
        min_factor, max_factor: the factor range. With min_factor 1, factor 1 (native) is chosen when a native frame
            holds the target; upscaled factors are then at least ``min_upscale``.
        band: the factor is kept while the predicted time at it lies in [(1 - band) target, target]; when it leaves
            the band the factor is re-solved for the band's middle, (1 - band / 2) target.
        smoothing: weight of the newest frame in the exponential averages (1 = no smoothing).
        min_upscale: the smallest upscaled factor (a smaller one costs more than native and looks no better).
        native_memory: frames for which a measured native time stays valid.
        factor: the factor to render the next frame at.
    """

    target_s: float
    min_factor: float = 1.0
    max_factor: float = 4.0
    band: float = 0.15
    smoothing: float = 0.35
    min_upscale: float = 1.1
    native_memory: int = 90
    factor: float = 2.0
    fixed_s: float | None = field(default=None, init=False)  # smoothed a (seconds)
    scaled_s: float | None = field(default=None, init=False)  # smoothed b (seconds at factor 1)
    native_s: float | None = field(default=None, init=False)  # smoothed time of a native frame (seconds)
    _native_age: int = field(default=0, init=False, repr=False)

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
        """Forget the measurements (the method or the image layout changed); the factor is kept as a start."""
        self.fixed_s = self.scaled_s = self.native_s = None
        self._native_age = 0

    def predict(self, factor: float) -> float:
        """Predicted time in seconds of an upscaled frame at ``factor`` (needs one observed frame)."""
        if self.fixed_s is None or self.scaled_s is None:
            raise SplatupInputError("DynamicResolution.predict: no frame observed yet")
        return self.fixed_s + self.scaled_s / factor**2

    def observe(self, factor: float, frame_s: float, scaled_s: float, native_floor_s: float | None = None) -> float:
        """Take one measured frame and return the factor for the next one.

        Args:
            factor: the factor the frame was rendered at (1: natively).
            frame_s: its whole time in seconds.
            scaled_s: the part of ``frame_s`` that goes as 1 / factor^2 (the low-resolution compositing).
            native_floor_s: for an upscaled frame, its time without the upscaling; a native frame cannot be much
                faster, so trying native is worth a frame only if this fits the target. None: not known.
        """
        if not (math.isfinite(frame_s) and math.isfinite(scaled_s) and factor >= 1):
            return self.factor  # a broken measurement must not poison the model
        w = self.smoothing
        if factor <= 1.0:
            self.native_s = frame_s if self.native_s is None else (1 - w) * self.native_s + w * frame_s
            self._native_age = 0
        else:
            self._native_age += 1
        if factor > 1.0 or self.fixed_s is None:  # a native frame seeds the model until an upscaled one is seen
            fixed = max(frame_s - scaled_s, 0.0)
            scaled = max(scaled_s, 0.0) * factor**2
            self.fixed_s = fixed if self.fixed_s is None else (1 - w) * self.fixed_s + w * fixed
            self.scaled_s = scaled if self.scaled_s is None else (1 - w) * self.scaled_s + w * scaled
        self.factor = self._next_factor(native_floor_s)
        return self.factor

    def solve(self, goal_s: float) -> float:
        """The upscaled factor whose predicted time is ``goal_s``, unclamped (inf if even an infinite factor cannot
        reach it)."""
        if self.fixed_s is None or self.scaled_s is None:
            raise SplatupInputError("DynamicResolution.solve: no frame observed yet")
        headroom = goal_s - self.fixed_s
        return math.inf if headroom <= 0 else math.sqrt(self.scaled_s / headroom)

    def _next_factor(self, native_floor_s: float | None) -> float:
        target, goal = self.target_s, (1 - self.band / 2) * self.target_s
        native_allowed = self.min_factor <= 1.0
        lo = max(self.min_factor, self.min_upscale) if native_allowed else self.min_factor
        lo = min(lo, self.max_factor)
        upscaled = min(max(self.solve(goal), lo), self.max_factor)
        if native_allowed:
            if self.factor <= 1.0:  # rendering natively: stay while native holds the target
                return 1.0 if self.native_s is not None and self.native_s <= target else upscaled
            fresh = self.native_s is not None and self._native_age < self.native_memory
            if fresh and self.native_s <= goal:
                return 1.0
            if not fresh and (self.solve(goal) <= lo or (native_floor_s is not None and native_floor_s <= goal)):
                return 1.0  # try native: the model runs into its lower bound, or native may well fit
        predicted = self.predict(self.factor)
        if predicted > target or (predicted < (1 - self.band) * target and self.factor > lo):
            return upscaled
        return self.factor

    def _clamp(self, factor: float) -> float:
        return min(max(float(factor), self.min_factor), self.max_factor)
