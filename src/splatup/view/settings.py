"""What the viewer's user chooses: method, factor, dynamic resolution, split view, background, field of view; and
what a scene opens with (:func:`opening_settings`: a trained model as it was trained)."""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

from ..errors import SplatupInputError

FACTOR_RANGE = (1.0, 4.0)
FOV_RANGE = (10.0, 120.0)


@dataclass(frozen=True)
class ViewSettings:
    """One client's display settings.

    Attributes:
        method: one of :data:`splatup.pipeline.METHODS` (the viewer offers every method of :func:`splatup.render`).
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
        from ..pipeline import METHODS  # here, not at the top: the command line reads this module without torch

        if self.method not in METHODS:
            raise SplatupInputError(f"view: method must be one of {', '.join(METHODS)}; got {self.method!r}")
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


def opening_settings(
    scene_path,
    method: str | None = None,
    factor: float | None = None,
    background: tuple[float, float, float] | None = None,
    **others,
) -> tuple[ViewSettings, dict | None]:
    """The settings a scene file opens with, and its training metadata (or None).

    ``method``, ``factor`` and ``background`` left None come from the model's training metadata when it has one
    (the ``.json`` that ``splatup train`` writes beside the ``.ply``), by the rule of ``splatup eval``
    (:func:`splatup.train.evaluate.trained_render_options`): a model trained through Hermite x S opens with
    hermite at factor S on its training background; a factor above the viewer's largest (4) opens at 4. Without
    metadata, the :class:`ViewSettings` defaults (hermite x2 on black). ``others`` are further
    :class:`ViewSettings` fields (auto, target_ms, split, fov_deg).

    Raises:
        SceneFormatError: a splatup metadata file beside the scene that is malformed (names the file and field).
    """
    from ..train.evaluate import trained_render_options

    opts, meta = trained_render_options(scene_path, method, factor, background)
    chosen = {"method": method, "factor": factor, "background": background}
    if meta is not None:
        chosen = {"method": opts["method"], "factor": min(float(opts["scale"]), FACTOR_RANGE[1]),
                  "background": opts["background"]}
    return ViewSettings(**{k: v for k, v in chosen.items() if v is not None}, **others), meta
