"""One camera specification shared by the commands that place a camera (render, compare, bench, and the viewer's
opening camera): :class:`CameraSpec`, validated once, and :func:`camera_options`, the click decorator that builds
it from the command-line options.

A spec describes either an orbit around the scene's robust centre (azimuth, elevation, distance, field of view,
up axis, target) or a view of a dataset (``--dataset``, ``--view``, ``--split``); the cameras themselves are made
by :mod:`splatup.viewpoints` once the scene is loaded.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

import click

from ..errors import SplatupInputError
from .options import resolve_split

if TYPE_CHECKING:  # pragma: no cover
    from ..camera import Camera
    from ..gaussians import Gaussians
    from ..io.datasets import Dataset
    from ..viewpoints import UpEstimate


#: largest |coordinate| and orbit distance accepted (scene units): squares of larger values overflow the float64
#: norms that place the camera (1e154), and no scene is seen from that far
MAX_COORDINATE = 1e100
#: closest approach of the orbit elevation to +-90 degrees: nearer, the view direction is parallel to the up axis
#: within the precision Camera.look_at can tell apart
POLE_MARGIN_DEG = 1e-4
#: smallest --distance relative to the size of the orbit centre's coordinates (float64 keeps eye and centre apart)
MIN_RELATIVE_DISTANCE = 1e-9
#: narrowest --fov (degrees): narrower, the framing distance and the focal length leave the float64 range
MIN_FOV_DEG = 1e-6


def _finite(value: float, option: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise SplatupInputError(f"{option}: expected a finite number, got {value!r}")
    return float(value)


def _unit(v: tuple[float, float, float], text: str) -> tuple[float, float, float]:
    """``v`` scaled to length 1 (without overflow or underflow of its squares); a zero vector is refused."""
    m = max(abs(c) for c in v)
    if m == 0:
        raise SplatupInputError(f"--up: the up vector must be non-zero, got {text!r}")
    s = tuple(c / m for c in v)
    n = math.hypot(*s)
    return tuple(c / n for c in s)  # type: ignore[return-value]


@dataclass(frozen=True)
class CameraSpec:
    """Where the camera is, as the user gave it. Every field is checked in ``__post_init__``; a bad value raises
    :class:`SplatupInputError` naming its command-line option.

    Attributes:
        width, height: image size in pixels; None takes ``default_size`` (orbit) or the dataset view's size
            (``width`` None) / its aspect ratio (``height`` None).
        azimuth, elevation: orbit angles in degrees (elevation strictly between -90 and 90) about ``up``.
        distance: orbit radius in scene units; None frames the scene's robust sphere.
        fov: horizontal field of view in degrees, in (0, 180).
        up: world up axis: 'auto' (estimated by :func:`splatup.viewpoints.estimate_up`, from the dataset cameras
            when a dataset is given, else from the scene), an axis ('-y', '+z', 'x') or 'x,y,z'.
        target: orbit centre 'x,y,z'; None takes the scene's robust centre.
        dataset: a dataset (transforms_*.json, its folder, or a COLMAP folder) whose cameras are used.
        view: dataset view, an index or an image name.
        split: dataset split of ``view``.
        default_size: (width, height) of an orbit camera when ``width`` / ``height`` are not given.
    """

    width: int | None = None
    height: int | None = None
    azimuth: float = 30.0
    elevation: float = 20.0
    distance: float | None = None
    fov: float = 50.0
    up: str = "auto"
    target: str | None = None
    dataset: Path | None = None
    view: str = "0"
    split: str = "test"
    default_size: tuple[int, int] = (800, 600)

    def __post_init__(self) -> None:
        from ..viewpoints import parse_vector

        for name, option in (("width", "--width"), ("height", "--height")):
            v = getattr(self, name)
            if v is not None and (isinstance(v, bool) or not isinstance(v, int) or v < 1):
                raise SplatupInputError(f"{option}: expected a positive number of pixels, got {v!r}")
        w, h = self.default_size
        if min(w, h) < 1:
            raise SplatupInputError(f"camera: default size must be positive, got {w}x{h}")
        _finite(self.azimuth, "--azimuth")
        if not -90.0 < _finite(self.elevation, "--elevation") < 90.0:
            raise SplatupInputError(f"--elevation: must be strictly between -90 and 90 degrees, got {self.elevation}")
        if abs(self.elevation) > 90.0 - POLE_MARGIN_DEG:
            raise SplatupInputError(f"--elevation: {self.elevation} is within {POLE_MARGIN_DEG:g} degrees of the pole: "
                                    "the view direction would be parallel to --up; keep it within "
                                    f"+-{90 - POLE_MARGIN_DEG:g}")
        if self.distance is not None and not 0 < _finite(self.distance, "--distance") <= MAX_COORDINATE:
            raise SplatupInputError(f"--distance: must be > 0 and at most {MAX_COORDINATE:g} (scene units), "
                                    f"got {self.distance}")
        if not 0.0 < _finite(self.fov, "--fov") < 180.0:
            raise SplatupInputError(f"--fov: must be strictly between 0 and 180 degrees, got {self.fov}")
        if self.fov < MIN_FOV_DEG:
            raise SplatupInputError(f"--fov: {self.fov:g} degrees is too narrow to frame anything; give at least "
                                    f"{MIN_FOV_DEG:g}")
        if not isinstance(self.up, str):
            raise SplatupInputError(f"--up: expected 'auto', an axis like '-y' or 'x,y,z', got {self.up!r}")
        up = None if self.up.strip().lower() == "auto" else _unit(parse_vector(self.up, "--up"), self.up)
        object.__setattr__(self, "up_vector", up)
        object.__setattr__(self, "_estimates", {})
        target = parse_vector(self.target, "--target") if self.target else None
        if target is not None and max(abs(c) for c in target) > MAX_COORDINATE:
            raise SplatupInputError(f"--target: coordinates must be at most {MAX_COORDINATE:g} in size, "
                                    f"got {self.target!r}")
        object.__setattr__(self, "target_vector", target)
        if self.dataset is not None:
            object.__setattr__(self, "dataset", Path(self.dataset))
            resolve_split(self.dataset, self.split)  # a transforms_<split>.json holds that split only
        object.__setattr__(self, "view", str(self.view))

    # ------------------------------------------------------------------ cameras
    @cached_property
    def loaded_dataset(self) -> Dataset | None:
        """The ``split`` of ``dataset`` (read once), or None without a dataset."""
        from ..io.datasets import load_dataset

        return None if self.dataset is None else load_dataset(self.dataset, split=self.split)

    def up_estimate(self, scene: Gaussians) -> UpEstimate:
        """The estimate behind ``--up auto`` for ``scene`` (dataset cameras first), computed once per scene."""
        from ..viewpoints import estimate_up

        key = id(scene)
        if key not in self._estimates:
            ds = self.loaded_dataset
            cams = [v.camera for v in ds.views] if ds is not None and ds.views else None
            self._estimates[key] = (scene, estimate_up(scene, cams)[1])  # the scene kept alive: ids stay unique
        return self._estimates[key][1]

    def up_for(self, scene: Gaussians) -> tuple[float, float, float]:
        """The world up vector of the orbit: the given axis, or the estimate for ``scene`` with ``--up auto``."""
        if self.up_vector is not None:
            return self.up_vector
        return tuple(self.up_estimate(scene).up.tolist())  # type: ignore[return-value]

    def orbit_size(self) -> tuple[int, int]:
        """(width, height) of an orbit camera."""
        return (self.width or self.default_size[0], self.height or self.default_size[1])

    def _check_distance(self, scene: Gaussians) -> None:
        """--distance must move the camera off the orbit centre in float64: at least 1e-9 of the centre's size."""
        if self.distance is None:
            return
        if self.target_vector is not None:
            size = max(abs(c) for c in self.target_vector)
        else:
            from ..viewpoints import scene_frame

            size = float(scene_frame(scene)[0].abs().max())
        if self.distance < MIN_RELATIVE_DISTANCE * max(1.0, size):
            raise SplatupInputError(f"--distance: {self.distance:g} is too small to place the camera apart from the "
                                    f"orbit centre (at {size:.3g} from the origin); give at least "
                                    f"{MIN_RELATIVE_DISTANCE * max(1.0, size):.3g}")

    def orbit(self, scene: Gaussians, azimuth_offset: float = 0.0) -> Camera:
        """The orbit camera of this spec, turned by ``azimuth_offset`` degrees."""
        from ..viewpoints import orbit_camera

        self._check_distance(scene)
        w, h = self.orbit_size()
        return orbit_camera(scene, w, h, self.azimuth + azimuth_offset, self.elevation, self.distance, self.fov,
                            self.up_for(scene), self.target_vector)

    def dataset_view(self, index_offset: int = 0) -> Camera:
        """Dataset view ``view`` (``index_offset`` views further for an index), sized by ``width`` / ``height``."""
        view: int | str = self.view
        if index_offset:
            if not self.view.lstrip("-").isdigit():
                raise SplatupInputError(f"--view: several views start from an index, got the name {self.view!r}")
            view = int(self.view) + index_offset
        return self._sized_view(view)

    def _sized_view(self, view: int | str) -> Camera:
        from ..viewpoints import select_view

        cam = select_view(self.loaded_dataset, view, self.split, self.width)
        if self.height is not None and self.height != cam.height:
            cam = cam.resized(cam.width, self.height)
        return cam

    def camera(self, scene: Gaussians) -> Camera:
        """The one camera of this spec: the dataset view if a dataset is given, else the orbit camera."""
        return self.dataset_view() if self.dataset is not None else self.orbit(scene)

    def path(self, scene: Gaussians, kind: str, frames: int | None = None) -> list[Camera]:
        """The cameras of a path. "orbit": ``frames`` (default 120) cameras one full turn from ``azimuth``
        (:func:`splatup.viewpoints.orbit_path`). "dataset": ``frames`` consecutive views of the dataset split from
        index ``view`` (default: all the rest), sized as :meth:`dataset_view`."""
        from ..viewpoints import orbit_path

        if frames is not None and (isinstance(frames, bool) or not isinstance(frames, int) or frames < 1):
            raise SplatupInputError(f"--frames: expected a positive number of frames, got {frames!r}")
        if kind == "orbit":
            self._check_distance(scene)
            w, h = self.orbit_size()
            return orbit_path(scene, frames or 120, w, h, self.azimuth, self.elevation, self.distance, self.fov,
                              self.up_for(scene), self.target_vector)
        if kind != "dataset":
            raise SplatupInputError(f"--path: expected 'orbit' or 'dataset', got {kind!r}")
        if self.dataset is None:
            raise SplatupInputError("--path dataset: give the dataset whose cameras make the path (--dataset)")
        if not self.view.lstrip("-").isdigit():
            raise SplatupInputError(f"--view: a dataset path starts at a view index, got the name {self.view!r}")
        n_views = len(self.loaded_dataset.views)
        start = int(self.view) + (n_views if int(self.view) < 0 else 0)
        if not 0 <= start < n_views:
            raise SplatupInputError(f"--view: {self.view} is out of range; the {self.split!r} split of {self.dataset} "
                                    f"has {n_views} views")
        n = frames if frames is not None else n_views - start
        if start + n > n_views:
            raise SplatupInputError(f"--frames: {n} frames from view {start} need {start + n} views; the "
                                    f"{self.split!r} split of {self.dataset} has {n_views}")
        return [self._sized_view(start + i) for i in range(n)]

    def views(self, scene: Gaussians, n: int) -> list[Camera]:
        """``n`` cameras: consecutive dataset views from ``view``, or orbit cameras spread evenly in azimuth."""
        if self.dataset is not None:
            return [self.dataset_view(i) for i in range(n)]
        return [self.orbit(scene, i * 360.0 / n) for i in range(n)]


# ---------------------------------------------------------------------------------------------------- click
_SIZE_OPTIONS = ("cam_width", "cam_height")
_ORBIT_OPTIONS = ("cam_azimuth", "cam_elevation", "cam_distance", "cam_fov", "cam_up", "cam_target")
_DATASET_OPTIONS = ("cam_dataset", "cam_view", "cam_split")


def camera_options(default_size: tuple[int, int] = (800, 600), size: bool = True, dataset: bool = True,
                   up_default: str = "auto") -> Callable[[Callable], Callable]:
    """Decorator for a click command: adds the camera options and passes one ``camera: CameraSpec`` argument
    instead of them. ``size=False`` leaves out -W/-H (the command sizes the image itself), ``dataset=False``
    leaves out --dataset/--view/--split."""
    w0, h0 = default_size
    opts = []
    if size:
        opts += [
            click.option("--width", "-W", "cam_width", type=click.IntRange(min=1), default=None,
                         help=f"Image width in pixels [default: {w0}, or the dataset view's width]."),
            click.option("--height", "-H", "cam_height", type=click.IntRange(min=1), default=None,
                         help=f"Image height in pixels [default: {h0}; with --dataset: keeps the aspect]."),
        ]
    opts += [
        click.option("--azimuth", "cam_azimuth", type=float, default=30.0, show_default=True,
                     help="Orbit azimuth about the up axis (degrees)."),
        click.option("--elevation", "cam_elevation", type=float, default=20.0, show_default=True,
                     help="Orbit elevation above the plane orthogonal to the up axis (degrees)."),
        click.option("--distance", "cam_distance", type=float, default=None,
                     help="Orbit radius in scene units [default: frame the scene]."),
        click.option("--fov", "cam_fov", type=float, default=50.0, show_default=True,
                     help="Horizontal field of view (degrees)."),
        click.option("--up", "cam_up", default=up_default, show_default=True,
                     help="World up axis: 'auto' (estimated from the dataset cameras, else from the scene), "
                          "'+z', '-y', ... or 'x,y,z'."),
        click.option("--target", "cam_target", default=None,
                     help="Orbit centre 'x,y,z' [default: the scene's robust centre]."),
    ]
    if dataset:
        opts += [
            click.option("--dataset", "cam_dataset", type=click.Path(exists=True, path_type=Path), default=None,
                         help="Take the camera from a dataset (transforms_*.json, its folder, or a COLMAP folder)."),
            click.option("--view", "cam_view", default="0", show_default=True,
                         help="Dataset view: index or image name."),
            click.option("--split", "cam_split", default=None,
                         help="Dataset split for --view [default: test, or the split of a transforms_<split>.json "
                              "given as --dataset]."),
        ]
    names = (_SIZE_OPTIONS if size else ()) + _ORBIT_OPTIONS + (_DATASET_OPTIONS if dataset else ())

    def decorator(f: Callable) -> Callable:
        @functools.wraps(f)
        def wrapper(*args, **kwargs):
            given = {n.removeprefix("cam_"): kwargs.pop(n) for n in names}
            if dataset:
                given["split"] = resolve_split(given["dataset"], given["split"])
            kwargs["camera"] = CameraSpec(**given, default_size=default_size)
            return f(*args, **kwargs)

        for o in reversed(opts):
            wrapper = o(wrapper)
        return wrapper

    return decorator
