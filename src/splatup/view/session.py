"""One browser client's frame loop: the newest camera and settings in, rendered frames out, on its own thread.

The session does not know viser: it is handed two callables, ``send_image(rgb_uint8, jpeg_quality)`` and
``show_status(markdown)``, so that the loop runs the same under the server and in tests.
"""

from __future__ import annotations

import threading
import time
import traceback
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from ..camera import Camera
from ..gaussians import Gaussians
from .cameras import camera_from_pose, render_size
from .dynres import DynamicResolution
from .frame import render_frame
from .motion import FrameKind, FramePlanner
from .settings import FACTOR_RANGE, ViewSettings
from .status import status_text

JPEG_QUALITY = {"moving": 80, "still": 95}


@dataclass(frozen=True)
class CameraPose:
    """A browser camera as viser reports it: world position, orientation (w, x, y, z) in OpenCV axes, vertical
    field of view in radians, canvas size in device pixels; ``stamp`` orders reports (newer is larger)."""

    position: tuple[float, float, float]
    wxyz: tuple[float, float, float, float]
    fov_y_rad: float
    canvas_width: int
    canvas_height: int
    stamp: float = 0.0


@dataclass
class FrameRecord:
    """What one sent frame was: settings, camera, times. ``frame_s`` is render + encode (seconds); ``phases``
    includes "encode"."""

    index: int
    kind: FrameKind
    method: str
    factor: float
    auto: bool
    split: bool
    width: int
    height: int
    lowres: tuple[int, int] | None
    phases: dict[str, float]
    frame_s: float
    scaled_s: float
    camera: Camera
    pose: CameraPose
    settings: ViewSettings
    jpeg_quality: int


class ClientSession:
    """Renders frames for one client.

    Args:
        scene: the Gaussians to show.
        settings: the starting settings.
        send_image: called with each frame ([H, W, 3] uint8) and its JPEG quality.
        show_status: called with the status line (Markdown) after each frame.
        size: (width, height) given on the command line, either may be None (see :func:`render_size`).
        render_lock: shared by all sessions of a server, so that frames of different clients do not fight for the
            cores in the middle of a frame.
        clock: monotonic seconds (injectable for tests).
    """

    def __init__(
        self,
        scene: Gaussians,
        settings: ViewSettings,
        send_image: Callable[[np.ndarray, int], None],
        show_status: Callable[[str], None],
        size: tuple[int | None, int | None] = (None, None),
        render_lock: threading.Lock | None = None,
        history: int = 2000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.scene = scene
        self._settings = settings
        self._send_image = send_image
        self._show_status = show_status
        self._size = size
        self._render_lock = render_lock or threading.Lock()
        self._clock = clock
        self._cond = threading.Condition()
        self._planner = FramePlanner()
        self._pose: CameraPose | None = None
        self._stopped = False
        self._thread: threading.Thread | None = None
        self.controller = DynamicResolution(settings.target_ms / 1e3, *FACTOR_RANGE, factor=settings.factor)
        self.history: deque[FrameRecord] = deque(maxlen=history)
        self._count = 0

    # ------------------------------------------------------------------ inputs (any thread)
    @property
    def settings(self) -> ViewSettings:
        return self._settings

    def camera_changed(self, pose: CameraPose) -> None:
        """A new camera report; one older than the newest seen is ignored."""
        with self._cond:
            if self._pose is not None and pose.stamp < self._pose.stamp:
                return
            self._pose = pose
            self._planner.camera_changed(self._clock())
            self._cond.notify_all()

    def update_settings(self, **changes) -> ViewSettings:
        """Apply ``changes`` (fields of :class:`ViewSettings`) and ask for a new frame; returns the new settings."""
        with self._cond:
            old = self._settings
            new = old.with_(**changes)
            self._settings = new
            self.controller.set_target(new.target_ms / 1e3)
            if (new.method, new.split) != (old.method, old.split):
                self.controller.reset()
            self._planner.settings_changed()
            self._cond.notify_all()
            return new

    # ------------------------------------------------------------------ the loop
    def step(self) -> FrameRecord | None:
        """Render and send the frame that is due now, if any; returns its record."""
        with self._cond:
            if self._pose is None:
                return None
            kind = self._planner.take(self._clock())
            if kind is None:
                return None
            pose, settings = self._pose, self._settings
            auto = settings.auto and settings.method != "native" and kind == "moving"
            factor = self.controller.factor if auto else settings.factor
        width, height = render_size(pose.canvas_width, pose.canvas_height, *self._size)
        cam = camera_from_pose(pose.position, pose.wxyz, pose.fov_y_rad, width, height)
        quality = JPEG_QUALITY[kind]
        with self._render_lock:
            t0 = time.perf_counter()
            frame = render_frame(self.scene, cam, settings.method, factor, settings.background, settings.split)
            t1 = time.perf_counter()
            if self._stopped:  # the client left during the render
                return None
            self._send_image(frame.image, quality)
            t2 = time.perf_counter()
        phases = dict(frame.phases, encode=t2 - t1)
        rec = FrameRecord(index=self._count, kind=kind, method=settings.method, factor=frame.factor, auto=auto,
                          split=settings.split, width=width, height=height, lowres=frame.lowres, phases=phases,
                          frame_s=t2 - t0, scaled_s=frame.scaled_s, camera=cam, pose=pose, settings=settings,
                          jpeg_quality=quality)
        self._count += 1
        if auto:
            with self._cond:
                floor = rec.frame_s - phases["upscale"] if frame.factor > 1.0 else None
                self.controller.observe(frame.factor, rec.frame_s, rec.scaled_s, native_floor_s=floor)
        self.history.append(rec)
        self._show_status(status_text(rec))
        return rec

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="splatup-view-frames", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        """End the loop after the frame in progress; wait up to ``timeout`` seconds for it (0: do not wait)."""
        with self._cond:
            self._stopped = True
            self._cond.notify_all()
        if timeout > 0 and self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout)

    def _run(self) -> None:
        while True:
            with self._cond:
                if self._stopped:
                    return
                wait = self._planner.wait_s(self._clock()) if self._pose is not None else None
                if wait is None or wait > 0:
                    self._cond.wait(timeout=wait)
                    continue
            try:
                self.step()
            except Exception as e:  # keep serving: one bad frame must not end the viewer
                traceback.print_exc()
                self._show_status(f"**error:** {type(e).__name__}: {e}")
                time.sleep(0.2)
