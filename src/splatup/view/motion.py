"""When to render what: a quick frame for every camera change while the camera moves, one refined frame when it
stops. Pure bookkeeping on the times it is given (no clock), so it is tested with made-up times."""

from __future__ import annotations

from typing import Literal

FrameKind = Literal["moving", "still"]


class FramePlanner:
    """Decides the kind of the next frame.

    The camera counts as moving while its last change is less than ``settle_s`` old. A camera change asks for a
    "moving" frame (only the newest state is rendered: changes that arrive during a render are merged into one
    request). A settings change alone asks for a "still" frame. Once the camera has been quiet for ``settle_s``
    after a moving frame, one "still" frame refines the view.
    """

    def __init__(self, settle_s: float = 0.25) -> None:
        self.settle_s = settle_s
        self._last_motion: float | None = None
        self._dirty = False
        self._dirty_from_camera = False
        self._last_kind: FrameKind | None = None

    def camera_changed(self, t: float) -> None:
        self._last_motion = t
        self._dirty = True
        self._dirty_from_camera = True

    def settings_changed(self) -> None:
        self._dirty = True

    def moving(self, t: float) -> bool:
        return self._last_motion is not None and t - self._last_motion < self.settle_s

    def take(self, t: float) -> FrameKind | None:
        """The kind of frame to render now (and mark it taken), or None if there is nothing to do."""
        kind: FrameKind | None = None
        if self._dirty:
            kind = "moving" if self._dirty_from_camera and self.moving(t) else "still"
        elif self._last_kind == "moving" and not self.moving(t):
            kind = "still"
        if kind is not None:
            self._dirty = self._dirty_from_camera = False
            self._last_kind = kind
        return kind

    def wait_s(self, t: float) -> float | None:
        """Seconds until a refined frame falls due with no further change, or None (wait for a change)."""
        if self._dirty:
            return 0.0
        if self._last_kind == "moving" and self._last_motion is not None:
            return max(self.settle_s - (t - self._last_motion), 0.0)
        return None
