"""Writing a sequence of frames: an H.264 video (through imageio-ffmpeg, whose wheel ships the ffmpeg binary) or a
folder of PNG files. Nothing is left half-written: a video is encoded to a temporary file in the destination's
folder and renamed at the end; every PNG is written to a temporary file and renamed (``io/_atomic.py``).
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from typing import Protocol

import numpy as np

from ..errors import SplatupInputError
from ._atomic import check_destination

VIDEO_SUFFIXES = (".mp4", ".mkv", ".mov")


class FrameSink(Protocol):
    """Where frames go, in order. ``write(index, frame)`` takes uint8 [H, W, 3] with index = 0, 1, 2, ... in turn;
    ``close()`` publishes the result; ``abort()`` removes what was written."""

    path: Path

    def write(self, index: int, frame: np.ndarray) -> None: ...
    def close(self) -> None: ...
    def abort(self) -> None: ...


def is_video_path(path: str | os.PathLike) -> bool:
    """True if ``path`` names a video file this module writes (by suffix, case-insensitive)."""
    return Path(path).suffix.lower() in VIDEO_SUFFIXES


def check_video_size(width: int, height: int, what: str = "video") -> None:
    """H.264 in 4:2:0 chroma (the format every player reads) needs an even width and height."""
    if width % 2 or height % 2:
        raise SplatupInputError(f"{what}: H.264 video needs an even width and height, got {width}x{height}; "
                                "choose an even size, or write a folder of PNG frames instead")


def _check_frame(frame: np.ndarray, size: tuple[int, int], where: str) -> np.ndarray:
    if frame.dtype != np.uint8 or frame.shape != (size[1], size[0], 3):
        raise SplatupInputError(f"{where}: expected a uint8 frame of shape {(size[1], size[0], 3)}, "
                                f"got {frame.dtype} {tuple(frame.shape)}")
    return np.ascontiguousarray(frame)


class VideoWriter:
    """H.264 (libx264, yuv420p, constant quality ``crf``) video at ``fps`` frames per second, ``size`` = (W, H)."""

    def __init__(self, path: str | os.PathLike, size: tuple[int, int], fps: float = 30.0, crf: int = 18):
        import imageio_ffmpeg

        self.path = Path(path)
        if not is_video_path(self.path):
            raise SplatupInputError(f"video: {self.path} does not end in one of {', '.join(VIDEO_SUFFIXES)}")
        check_destination(self.path, "video")
        check_video_size(*size, what=f"video {self.path}")
        if not (fps > 0 and np.isfinite(fps)):
            raise SplatupInputError(f"video: fps must be a positive number, got {fps}")
        self.size = size
        self.frames = 0
        self._tmp = self.path.parent / f".{self.path.stem}.{secrets.token_hex(6)}.tmp{self.path.suffix}"
        self._gen = imageio_ffmpeg.write_frames(
            str(self._tmp), size, fps=fps, codec="libx264", pix_fmt_in="rgb24", pix_fmt_out="yuv420p", quality=None,
            bitrate=None, macro_block_size=1, ffmpeg_log_level="error", output_params=["-crf", str(int(crf))])
        self._gen.send(None)

    def write(self, index: int, frame: np.ndarray) -> None:
        if index != self.frames:
            raise SplatupInputError(f"video {self.path}: frame {index} arrived, frame {self.frames} was due next")
        self._gen.send(_check_frame(frame, self.size, f"video {self.path}"))
        self.frames += 1

    def close(self) -> None:
        """Finish encoding and move the video into place."""
        try:
            self._gen.close()
        except BaseException:
            self.abort()
            raise
        os.replace(self._tmp, self.path)

    def abort(self) -> None:
        try:
            self._gen.close()
        except Exception:  # noqa: BLE001 - ffmpeg may already be gone; the temporary file goes either way
            pass
        self._tmp.unlink(missing_ok=True)


class FrameFolderWriter:
    """PNG frames ``frame_00000.png``, ``frame_00001.png``, ... in the folder ``path`` (created if missing)."""

    def __init__(self, path: str | os.PathLike, size: tuple[int, int]):
        self.path = Path(path)
        if self.path.exists() and not self.path.is_dir():
            raise SplatupInputError(f"frames: {self.path} exists and is not a folder")
        if not self.path.parent.is_dir():
            raise SplatupInputError(f"frames: folder {self.path.parent} does not exist")
        self.path.mkdir(exist_ok=True)
        self.size = size
        self.frames = 0

    @staticmethod
    def frame_name(index: int) -> str:
        return f"frame_{index:05d}.png"

    def write(self, index: int, frame: np.ndarray) -> None:
        from PIL import Image

        from ._atomic import atomic_write

        frame = _check_frame(frame, self.size, f"frames {self.path}")
        with atomic_write(self.path / self.frame_name(index)) as f:
            Image.fromarray(frame).save(f, format="PNG")
        self.frames += 1

    def close(self) -> None:
        pass

    def abort(self) -> None:
        pass  # every frame on disk is complete; the frames written so far are kept


def open_frame_sink(path: str | os.PathLike, size: tuple[int, int], fps: float = 30.0) -> FrameSink:
    """A :class:`VideoWriter` for a video suffix (.mp4, .mkv, .mov), else a :class:`FrameFolderWriter` (a path
    without a suffix, or an existing folder). Other suffixes are refused: a sequence of frames is not one image."""
    p = Path(path)
    if is_video_path(p):
        return VideoWriter(p, size, fps)
    if p.suffix and not p.is_dir():
        raise SplatupInputError(f"frames: {p} has the suffix {p.suffix!r}; give a video ({', '.join(VIDEO_SUFFIXES)}) "
                                "or a folder name without a suffix for PNG frames")
    return FrameFolderWriter(p, size)
