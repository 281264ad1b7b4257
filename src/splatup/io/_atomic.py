"""Atomic file writes: write a temporary file beside the destination, then ``os.replace`` it into place."""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

from ..errors import SplatupInputError


def check_destination(path: Path, what: str) -> None:
    """Raise :class:`SplatupInputError` if ``path`` cannot be a file we write (missing folder, a directory)."""
    if path.is_dir():
        raise SplatupInputError(f"{what}: {path} is a directory, expected a file path")
    if not path.parent.is_dir():
        raise SplatupInputError(f"{what}: folder {path.parent} does not exist")


@contextmanager
def atomic_write(path: Path) -> Iterator[BinaryIO]:
    """Open a temporary file in ``path``'s folder for binary writing; on success move it to ``path``.

    On any exception the temporary file is removed and ``path`` is left as it was. The file gets the usual
    permissions (0o666 minus the umask), unlike ``tempfile.mkstemp``'s 0o600.
    """
    path = Path(path)
    for _ in range(100):
        tmp = path.parent / f".{path.name}.{secrets.token_hex(6)}.tmp"
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)
            break
        except FileExistsError:
            continue
    else:  # pragma: no cover - 100 random collisions
        raise OSError(f"could not create a temporary file beside {path}")
    try:
        with os.fdopen(fd, "wb") as f:
            yield f
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
