"""How a run with ``upscale`` S > 1 trains through the gradient-aware upscaler (``TrainSettings.upscale_loop``).

Each iteration renders the view at 1/S with derivatives, Hermite-upscales it to full size and takes the loss there,
unless the schedule below makes it a native iteration (rendered at full size, as ``upscale`` 1 does). The options
exist for the ablation of docs/training.md; their defaults are what it kept.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from ..errors import SplatupInputError


@dataclass
class UpscaleLoop:
    """Options of training through the upscaler (ignored when ``upscale`` is 1).

    Attributes:
        derivatives: derivatives of the 1/S render: True (dC/dx, dC/dy, d2C/dxdy: the full Hermite patch) or
            "first" (d2C/dxdy = 0, cheaper; the model is then meant to be rendered that way).
        lowres_dilation: px^2 added to the 2D covariances of the 1/S render: "matched" (0.3 native px^2, so the
            model also renders natively), "usual" (0.3 low-res px^2) or a number of low-res px^2.
        native_fraction: the first ``native_fraction`` of the run's iterations are trained natively at full size.
        native_every: after that, every ``native_every``-th iteration is native too (0: none).
        position_lr_mult, scaling_lr_mult: factors on the 3DGS learning rates of the means and the log-scales.
        densify_grad_threshold_mult: factor on ``TrainConfig.densify_grad_threshold`` (the statistic is in
            full-resolution NDC units either way; see :meth:`GaussianModel.add_stats`).
    """

    derivatives: bool | str = True
    lowres_dilation: float | str = "matched"
    native_fraction: float = 0.0
    native_every: int = 0
    position_lr_mult: float = 1.0
    scaling_lr_mult: float = 1.0
    densify_grad_threshold_mult: float = 1.0

    def check(self) -> None:
        """Raise :class:`SplatupInputError` naming the first option out of range."""
        if self.derivatives is not True and self.derivatives != "first":
            raise SplatupInputError(f"upscale_loop.derivatives must be True or 'first', got {self.derivatives!r}")
        d = self.lowres_dilation
        if not (d in ("matched", "usual") or (_is_number(d) and d >= 0)):
            raise SplatupInputError(
                f"upscale_loop.lowres_dilation must be 'matched', 'usual' or a number of px^2 >= 0, got {d!r}")
        if not (_is_number(self.native_fraction) and 0 <= self.native_fraction <= 1):
            raise SplatupInputError(
                f"upscale_loop.native_fraction must be a number in [0, 1], got {self.native_fraction!r}")
        if not isinstance(self.native_every, int) or isinstance(self.native_every, bool) or self.native_every < 0:
            raise SplatupInputError(f"upscale_loop.native_every must be an integer >= 0, got {self.native_every!r}")
        for name in ("position_lr_mult", "scaling_lr_mult", "densify_grad_threshold_mult"):
            v = getattr(self, name)
            if not (_is_number(v) and v > 0):
                raise SplatupInputError(f"upscale_loop.{name} must be a number > 0, got {v!r}")

    def native_iterations(self, iterations: int) -> int:
        """How many iterations at the start of a run of ``iterations`` are native."""
        return round(self.native_fraction * iterations)

    def is_native(self, iteration: int, iterations: int) -> bool:
        """Whether ``iteration`` (1-based) of a run of ``iterations`` renders at full size."""
        if iteration <= self.native_iterations(iterations):
            return True
        return self.native_every > 0 and iteration % self.native_every == 0

    def native_share(self, iterations: int) -> float:
        """The fraction of a run's iterations that are native (for the cost model of docs/training.md)."""
        n = sum(self.is_native(i, iterations) for i in range(1, iterations + 1))
        return n / iterations


def _is_number(v: object) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
