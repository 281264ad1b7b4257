"""Where a command writes, checked before any work starts, and the output folders made when the results are ready.

Every command treats its destinations alike: a missing output folder (``render -o``'s folder, ``compare`` /
``bench`` / ``demo`` / ``train --out``, ``eval --json``'s folder) is created, with its missing parents, when the
first result is written; a destination that cannot work is refused up front with one line naming the option: a
file where a folder is needed (``--out afile/sub``), a folder where a file is needed, a folder in which no file
can be created (read-only, no permission, a pseudo file system), a file name too long for the file system. The
check creates nothing but a probe file, removed at once; the folders it found missing are made only by
:func:`output_folder`, which removes them again if the command fails before writing anything into them.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from ..errors import SplatupInputError

# io._atomic and io.video write ".<name>.<12 hex digits>.tmp" (plus the suffix for a video) beside the destination
TEMP_NAME_EXTRA = len("..123456789abc.tmp") + len(".mkv")


def _nearest_existing(path: Path) -> tuple[Path, list[Path]]:
    """The deepest existing ancestor of ``path`` (``path`` itself if it exists) and the missing folders below it,
    outermost first."""
    missing = []
    p = path
    while not os.path.lexists(p):
        missing.append(p)
        if p.parent == p:
            break
        p = p.parent
    return p, missing[::-1]


def _name_max(folder: Path) -> int:
    try:
        return os.pathconf(folder, "PC_NAME_MAX")
    except (OSError, ValueError):
        return 255


def _probe_writable(folder: Path, option: str, shown: Path) -> None:
    """Create and remove a file in ``folder``: the one test that covers permissions, read-only mounts and pseudo
    file systems alike (``os.access`` says yes to root on a read-only mount)."""
    try:
        fd, name = tempfile.mkstemp(dir=folder, prefix=".splatup-probe-")
    except OSError as e:
        raise SplatupInputError(f"{option} {shown}: cannot create files in {folder} ({e.strerror or e})") from None
    os.close(fd)
    os.unlink(name)


def _check_folder(folder: Path, option: str, shown: Path) -> None:
    """``folder`` exists and takes new files, or can be created: no file in the way of its missing part, names
    that fit the file system, a writable deepest existing folder."""
    base, missing = _nearest_existing(folder)
    if not base.is_dir():
        raise SplatupInputError(f"{option} {shown}: {base} is a file, not a folder")
    limit = _name_max(base)
    for p in missing:
        if len(os.fsencode(p.name)) > limit:
            raise SplatupInputError(f"{option} {shown}: the folder name {p.name[:40]!r}... is too long for the file "
                                    f"system (at most {limit} bytes)")
    _probe_writable(base, option, shown)


def check_output_file(path: str | os.PathLike, option: str, suffixes: tuple[str, ...] | None = None) -> Path:
    """Refuse, naming ``option``, a file destination that cannot be written: an existing folder, a file in the way of
    its folder, a folder where no file can be created, a name too long, a suffix not in ``suffixes`` (when given).
    A missing folder is fine: :func:`output_folder` creates it. Returns the path."""
    path = Path(path)
    if path.name in ("", ".", ".."):
        raise SplatupInputError(f"{option}: expected a file name, got {str(path)!r}")
    if suffixes is not None and path.suffix.lower() not in suffixes:
        raise SplatupInputError(f"{option} {path}: expected a file name ending in {', '.join(suffixes)}")
    limit = _name_max(_nearest_existing(path.parent)[0])
    if len(os.fsencode(path.name)) > limit - TEMP_NAME_EXTRA:
        raise SplatupInputError(f"{option} {path}: the file name is too long for the file system (at most "
                                f"{limit - TEMP_NAME_EXTRA} bytes here)")
    if path.is_dir():
        raise SplatupInputError(f"{option} {path}: is a folder; expected a file name")
    if os.path.lexists(path) and not path.is_file():
        raise SplatupInputError(f"{option} {path}: exists and is not a regular file")
    _check_folder(path.parent, option, path)
    return path


def check_output_dir(path: str | os.PathLike, option: str) -> Path:
    """Refuse, naming ``option``, a folder destination that cannot be written: an existing file, a file in the way
    of it, a folder where no file can be created, a name too long. A missing folder is fine: :func:`output_folder`
    creates it. Returns the path."""
    path = Path(path)
    if os.path.lexists(path) and not path.is_dir():
        raise SplatupInputError(f"{option} {path}: is a file; expected a folder")
    _check_folder(path, option, path)
    return path


@contextmanager
def output_folder(folder: str | os.PathLike, option: str) -> Iterator[Path]:
    """Create ``folder`` and its missing parents for the block; if the block fails, remove the folders made here
    that are still empty (a failed command leaves no trace)."""
    folder = Path(folder)
    _, missing = _nearest_existing(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise SplatupInputError(f"{option} {folder}: cannot create the folder ({e.strerror or e})") from None
    try:
        yield folder
    except BaseException:
        for p in reversed(missing):
            try:
                p.rmdir()
            except OSError:  # not empty (something was written) or already gone: keep the rest
                break
        raise
