"""The viewer's server: viser serves its web client and the controls; splatup renders every frame on the CPU and
sends it as the scene's background image, one frame loop per browser client."""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Sequence
from typing import Any

from ..errors import SplatupInputError
from ..gaussians import Gaussians
from .cameras import opening_view, resolve_up
from .gui import ViewerControls
from .session import CameraPose, ClientSession
from .settings import ViewSettings


class Viewer:
    """Serves ``scene`` at http://host:port until :meth:`stop`.

    Args:
        scene: the Gaussians to show.
        settings: starting settings of every new client.
        host, port: where to listen (port 0: any free port; a busy port: viser takes the next free one).
        up: world up axis, 'auto' (estimated from the scene, :func:`resolve_up`), an axis such as '-y' or a
            3-vector; the orbit controls turn about it and the opening camera stands on it. ``up_source`` says
            how it was chosen.
        size: (width, height) of the rendered image, either may be None for the browser canvas's size.
        verbose: let viser print its banner and connection messages.
    """

    def __init__(
        self,
        scene: Gaussians,
        settings: ViewSettings | None = None,
        host: str = "127.0.0.1",
        port: int = 8080,
        up: str | Sequence[float] = "auto",
        size: tuple[int | None, int | None] = (None, None),
        verbose: bool = True,
    ) -> None:
        import viser

        self.scene = scene
        self.settings = settings or ViewSettings()
        self.up, self.up_source = resolve_up(scene, up)
        self.size = size
        self.sessions: dict[int, ClientSession] = {}
        self._render_lock = threading.Lock()
        self._lock = threading.Lock()
        self._stopped = False
        self.opening = opening_view(scene, self.up, self.settings.fov_deg)

        self.server = viser.ViserServer(host=host, port=port, label="splatup", verbose=verbose)
        self.server.gui.configure_theme(show_share_button=False, show_logo=False)
        self.server.gui.main_panel.dock_right()
        self.server.scene.set_up_direction(self.up)
        cam = self.server.initial_camera
        cam.up = self.up
        cam.position = self.opening.position
        cam.look_at = self.opening.look_at
        cam.fov = math.radians(self.opening.fov_deg)
        self.server.on_client_connect(self._connect)
        self.server.on_client_disconnect(self._disconnect)

    @property
    def url(self) -> str:
        return f"http://{self.server.get_host()}:{self.server.get_port()}"

    def session(self, timeout: float = 0.0) -> ClientSession | None:
        """The most recently connected client's session, waiting up to ``timeout`` seconds for one."""
        end = time.monotonic() + timeout
        while True:
            with self._lock:
                if self.sessions:
                    return self.sessions[max(self.sessions)]
            if time.monotonic() >= end:
                return None
            time.sleep(0.05)

    def stop(self) -> None:
        """Stop every frame loop and the server (once; later calls do nothing)."""
        with self._lock:
            if self._stopped:
                return
            self._stopped = True
            sessions = list(self.sessions.values())
            self.sessions.clear()
        for s in sessions:
            s.stop()
        self.server.stop()

    def serve_forever(self) -> None:
        """Block until Ctrl-C, then stop."""
        try:
            while True:
                time.sleep(1.0)
        except KeyboardInterrupt:
            pass
        finally:
            self.stop()

    # ------------------------------------------------------------------ clients
    def _connect(self, client: Any) -> None:
        controls: ViewerControls | None = None

        def send_image(image, quality):
            if client.client_id in self.server.get_clients():  # not to a tab closed during the render
                client.scene.set_background_image(image, format="jpeg", jpeg_quality=quality)

        def show_status(text):
            if controls is not None:
                controls.status.content = text

        session = ClientSession(self.scene, self.settings, send_image, show_status, size=self.size,
                                render_lock=self._render_lock)

        def on_change(name, value):
            try:
                session.update_settings(**{name: value})
            except SplatupInputError as e:  # e.g. a number typed out of range: keep the settings, say why
                show_status(f"**not applied:** {e}")
                return
            if name == "fov_deg":
                client.camera.fov = math.radians(value)

        controls = ViewerControls(client.gui, self.settings, on_change)

        async def on_camera(camera):
            session.camera_changed(_pose(camera))

        client.camera.on_update(on_camera)
        session.camera_changed(_pose(client.camera))  # the report that made viser call us
        with self._lock:
            self.sessions[client.client_id] = session
        session.start()

    async def _disconnect(self, client: Any) -> None:
        # on viser's event loop (a thread-pool callback could come after stop() shut the pool): signal, don't join
        with self._lock:
            session = self.sessions.pop(client.client_id, None)
        if session is not None:
            session.stop(timeout=0.0)


def _pose(camera: Any) -> CameraPose:
    return CameraPose(position=tuple(float(v) for v in camera.position), wxyz=tuple(float(v) for v in camera.wxyz),
                      fov_y_rad=float(camera.fov), canvas_width=int(camera.image_width),
                      canvas_height=int(camera.image_height), stamp=float(camera.update_timestamp))
