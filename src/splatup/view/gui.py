"""The viewer's controls in viser's side panel, one set per browser client, bound to that client's settings."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..pipeline import METHODS
from .settings import FACTOR_RANGE, FOV_RANGE, ViewSettings

LABELS = {
    "method": "method",
    "factor": "factor",
    "auto": "auto",
    "target_ms": "target ms",
    "split": "split",
    "background": "background",
    "fov_deg": "fov (vertical)",
}


class ViewerControls:
    """Builds the controls in ``gui`` (a viser ``GuiApi``) and calls ``on_change(field, value)`` with the
    :class:`ViewSettings` field a user changed. ``status`` is the Markdown status line."""

    def __init__(self, gui: Any, settings: ViewSettings, on_change: Callable[[str, Any], None]) -> None:
        self.status = gui.add_markdown("waiting for the first frame")
        self.method = gui.add_dropdown(LABELS["method"], METHODS, initial_value=settings.method,
                                       hint="native renders every pixel; the others render at 1/factor and upscale")
        self.factor = gui.add_slider(LABELS["factor"], FACTOR_RANGE[0], FACTOR_RANGE[1], 0.05, settings.factor,
                                     hint="upscaling factor of every frame, or of the still frame when auto is on")
        self.auto = gui.add_checkbox(LABELS["auto"], settings.auto,
                                     hint="dynamic resolution: while the camera moves, the factor (1 to 4) that holds "
                                          "the target frame time")
        self.target_ms = gui.add_number(LABELS["target_ms"], round(settings.target_ms, 1), min=1.0, max=2000.0,
                                        step=0.1, hint="target frame time of auto, in milliseconds (33.3 = 30 fps)")
        self.split = gui.add_checkbox(LABELS["split"], settings.split, hint="left half native, right half the method")
        self.background = gui.add_rgb(LABELS["background"], tuple(round(255 * c) for c in settings.background))
        self.fov_deg = gui.add_slider(LABELS["fov_deg"], FOV_RANGE[0], FOV_RANGE[1], 1.0, settings.fov_deg,
                                      hint="vertical field of view in degrees")
        for name in ("method", "factor", "auto", "target_ms", "split", "background", "fov_deg"):
            self._bind(name, on_change)

    def _bind(self, name: str, on_change: Callable[[str, Any], None]) -> None:
        handle = getattr(self, name)

        def changed(_event: Any) -> None:
            value = handle.value
            if name == "background":
                value = tuple(c / 255.0 for c in value)
            elif name in ("factor", "target_ms", "fov_deg"):
                value = float(value)
            on_change(name, value)

        handle.on_update(changed)
