"""The 3DGS densification schedule fitted to a run's length.

3DGS's schedule was made for 30,000 iterations: densify from iteration 500 to 15,000 (the first half) every 100,
reset opacities every 3000, raise the SH degree every 1000. Taken as it is, a shorter run gets none of it (a
300-iteration run never densifies, never prunes, and keeps SH degree 0). So, like gsplat's ``steps_scaler``, every
iteration count of the schedule that the caller leaves unset (``None``) is scaled by f = iterations / 30,000
(f = 1 for longer runs: the 3DGS values), with two floors where the time a step waits for is set by the
optimizer, not by the run's length:

- densification every max(100 f, 10) iterations: between two decisions the optimizer must move a fresh clone
  away from its original, and the mean gradient must cover several views; at every iteration the same Gaussians
  would be cloned again and again;
- opacity reset every max(3000 f, R) iterations with R = 2 (logit(0.5) - logit(0.01)) / opacity_lr (368 at the
  3DGS rate 0.025): Adam moves a logit by about the learning rate per step, so R is twice the steps a clamped
  opacity needs to climb back to 0.5. Resets closer together keep every Gaussian near-transparent.

Values set explicitly are kept; a schedule that cannot densify is reported (see :func:`resolve_schedule`).
"""

from __future__ import annotations

import dataclasses
import math

from ..errors import SplatupInputError

FULL_RUN = 30_000  # the run length the 3DGS schedule was made for
_3DGS = {"densify_from_iter": 500, "densify_until_iter": 15_000, "densification_interval": 100,
         "opacity_reset_interval": 3000, "sh_increase_interval": 1000}
SCHEDULE_FIELDS = tuple(_3DGS)
MIN_DENSIFICATION_INTERVAL = 10
RESET_OPACITY = 0.01


def _logit(p: float) -> float:
    return math.log(p / (1 - p))


def opacity_recovery_iterations(opacity_lr: float) -> int:
    """R = 2 (logit(0.5) - logit(0.01)) / opacity_lr, rounded up: the shortest opacity-reset interval used."""
    return math.ceil(2 * (_logit(0.5) - _logit(RESET_OPACITY)) / opacity_lr)


def scaled_schedule(iterations: int, opacity_lr: float) -> dict[str, int]:
    """The schedule's iteration counts for a run of ``iterations`` (the module docstring's rule)."""
    f = min(1.0, iterations / FULL_RUN)
    return {
        "densify_from_iter": round(_3DGS["densify_from_iter"] * f),
        "densify_until_iter": round(_3DGS["densify_until_iter"] * f),
        "densification_interval": max(round(_3DGS["densification_interval"] * f), MIN_DENSIFICATION_INTERVAL),
        "opacity_reset_interval": max(round(_3DGS["opacity_reset_interval"] * f),
                                      opacity_recovery_iterations(opacity_lr)),
        "sh_increase_interval": max(round(_3DGS["sh_increase_interval"] * f), 1),
    }


def resolve_schedule(config):
    """``config`` (a :class:`~splatup.train.model.TrainConfig`) with every unset schedule field filled in for its
    run length, and the notes a user should read: ``(resolved_config, warnings, notes)``.

    ``warnings`` name what the schedule cannot do (densification that never runs within the run); ``notes`` say
    what was scaled. Raises :class:`SplatupInputError` for intervals < 1.
    """
    auto = scaled_schedule(config.iterations, config.opacity_lr)
    chosen = {k: (auto[k] if getattr(config, k) is None else int(getattr(config, k))) for k in SCHEDULE_FIELDS}
    for k in ("densification_interval", "opacity_reset_interval", "sh_increase_interval"):
        if chosen[k] < 1:
            raise SplatupInputError(f"{k} must be >= 1, got {chosen[k]}")
    resolved = dataclasses.replace(config, **chosen)
    warnings: list[str] = []
    notes: list[str] = []
    first = (chosen["densify_from_iter"] // chosen["densification_interval"] + 1) * chosen["densification_interval"]
    last = min(chosen["densify_until_iter"] - 1, config.iterations)
    if first > last:
        warnings.append(
            f"this {config.iterations}-iteration run never densifies or prunes: the first densification step "
            f"would be at iteration {first} (after densify_from_iter {chosen['densify_from_iter']}, every "
            f"{chosen['densification_interval']}), but densification stops before iteration "
            f"{min(chosen['densify_until_iter'], config.iterations + 1)}")
    scaled = [k for k in SCHEDULE_FIELDS if getattr(config, k) is None and chosen[k] != _3DGS[k]]
    if scaled:
        notes.append(f"3DGS schedule scaled to a {config.iterations}-iteration run: densification from iteration "
                     f"{chosen['densify_from_iter']} to {chosen['densify_until_iter']} every "
                     f"{chosen['densification_interval']}, opacity reset every {chosen['opacity_reset_interval']}, "
                     f"SH degree raised every {chosen['sh_increase_interval']}")
    return resolved, warnings, notes
