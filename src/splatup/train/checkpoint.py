"""Training checkpoints: tensors in a safetensors file, everything else as JSON in its header.

A checkpoint is one file ``checkpoint-<iteration, 8 digits>.safetensors`` in the run folder. Its tensors are named
by the caller (the model's parameters, Adam's moments, the RNG state, ...); the header's metadata holds the JSON
state under ``splatup.train`` and a BLAKE2b digest of that JSON and of every tensor (name, dtype, shape, bytes)
under ``splatup.digest``, so a damaged file is told apart from a good one instead of resuming from garbage.

Why safetensors: the file is a JSON header and raw buffers, so reading one cannot run code, unlike a pickle
(``torch.save``), which runs whatever its ``__reduce__`` names. A file of any other kind, pickles included, is
refused with an error that names it.

Writes are durable: a temporary file in the same folder, fsync of the file, rename, fsync of the folder; a write
killed half-way leaves only a ``.<name>.<hex>.tmp`` file, which :func:`remove_stale_temporaries` deletes at the
next start. The newest :data:`KEEP` checkpoints are kept, so a damaged newest one falls back to the one before.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import secrets
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import torch

from ..errors import SceneFormatError, SplatupInputError

FORMAT = "splatup.train-checkpoint"
VERSION = 1
KEEP = 2
LEGACY_NAME = "checkpoint.pt"  # the pickled checkpoints of earlier versions: never loaded
_NAME = re.compile(r"^checkpoint-(\d{8,})\.safetensors$")
_TEMPORARY = re.compile(r"^\..+\.[0-9a-f]{12}\.tmp$")  # as written here and by io._atomic.atomic_write
_STATE_KEY, _DIGEST_KEY = "splatup.train", "splatup.digest"


class CheckpointError(SceneFormatError):
    """A checkpoint file that cannot be used: damaged, of another kind, or inconsistent."""


@dataclass
class Checkpoint:
    path: Path
    tensors: dict[str, torch.Tensor]
    state: dict  # the JSON state; state["iteration"] is the iteration it was taken after

    @property
    def iteration(self) -> int:
        return int(self.state["iteration"])


def checkpoint_path(run_dir: Path, iteration: int) -> Path:
    return Path(run_dir) / f"checkpoint-{iteration:08d}.safetensors"


def list_checkpoints(run_dir: Path) -> list[Path]:
    """The checkpoint files of ``run_dir``, newest (highest iteration) first."""
    found = []
    for p in Path(run_dir).iterdir() if Path(run_dir).is_dir() else ():
        m = _NAME.match(p.name)
        if m and p.is_file():
            found.append((int(m.group(1)), p))
    return [p for _, p in sorted(found, reverse=True)]


def _digest(state_json: str, tensors: dict[str, torch.Tensor]) -> str:
    h = hashlib.blake2b(digest_size=32)
    h.update(state_json.encode())
    for name in sorted(tensors):
        t = tensors[name].contiguous()
        h.update(f"\0{name}\0{t.dtype}\0{list(t.shape)}\0".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy())
    return h.hexdigest()


def write_durably(path: Path, write: Callable[[Path], None]) -> None:
    """Call ``write(tmp)`` for a temporary path beside ``path``, fsync it, rename it to ``path``, fsync the folder.

    On any exception the temporary file is removed and ``path`` is left as it was."""
    path = Path(path)
    tmp = path.parent / f".{path.name}.{secrets.token_hex(6)}.tmp"
    # created here for the usual permissions (0o666 minus the umask), restored if ``write`` replaces the file
    os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666))
    mode = tmp.stat().st_mode & 0o777
    try:
        write(tmp)
        os.chmod(tmp, mode)
        fsync_file(tmp)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    fsync_dir(path.parent)


def fsync_file(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_dir(path: Path) -> None:
    """Make renames and deletions in folder ``path`` durable (where the platform can open folders)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:  # pragma: no cover - e.g. Windows
        return
    try:
        os.fsync(fd)
    except OSError:  # pragma: no cover - file systems that cannot sync a folder
        pass
    finally:
        os.close(fd)


def write_checkpoint(run_dir: Path, tensors: dict[str, torch.Tensor], state: dict, keep: int = KEEP) -> Path:
    """Write ``tensors`` and the JSON-able ``state`` (which must hold ``"iteration"``) durably as the checkpoint of
    that iteration, then delete all but the newest ``keep`` checkpoints. Returns the path written."""
    from safetensors.torch import save_file

    state = {"format": FORMAT, "version": VERSION, **state}
    state_json = json.dumps(state, separators=(",", ":"), allow_nan=False)
    tensors = {k: v.detach().contiguous() for k, v in tensors.items()}
    meta = {_STATE_KEY: state_json, _DIGEST_KEY: _digest(state_json, tensors)}
    path = checkpoint_path(run_dir, int(state["iteration"]))
    write_durably(path, lambda tmp: save_file(tensors, str(tmp), metadata=meta))
    for old in list_checkpoints(run_dir)[keep:]:
        with contextlib.suppress(FileNotFoundError):
            old.unlink()
    return path


def _what_is_wrong(path: Path, error: Exception) -> str:
    """A short description of why safetensors could not read ``path``."""
    size = path.stat().st_size
    if size == 0:
        return "the file is empty (0 bytes)"
    with open(path, "rb") as f:
        head = f.read(8)
        if head[:1] == b"\x80" or head[:2] == b"PK":
            return ("it is a pickle (torch.save) file, not a splatup checkpoint; pickles are never loaded because "
                    "loading one can run code")
        if size < 8:
            return f"the file is truncated ({size} bytes, shorter than a safetensors header)"
        header_len = int.from_bytes(head, "little")
        if header_len > 100_000_000:  # safetensors' own limit: these 8 bytes are not a header length
            return "the file is not a safetensors checkpoint (it does not start with a header length)"
        if header_len > size - 8:
            return f"the file is truncated ({size} bytes; its header alone claims {header_len + 8})"
        try:
            header = json.loads(f.read(header_len))
            end = max((v["data_offsets"][1] for k, v in header.items() if k != "__metadata__"), default=0)
        except (ValueError, TypeError, KeyError, IndexError, AttributeError):
            return "the file is not a safetensors checkpoint (its header is not valid safetensors JSON)"
    if 8 + header_len + end > size:
        return f"the file is truncated ({size} bytes; its header describes {8 + header_len + end})"
    return f"the file is not a valid safetensors checkpoint ({error})"


def read_checkpoint(path: Path) -> Checkpoint:
    """Read and verify one checkpoint file without executing anything from it.

    Raises:
        CheckpointError: naming ``path`` and what is wrong (empty, truncated, not a checkpoint, a pickle,
            digest mismatch, missing or malformed state).
    """
    from safetensors import SafetensorError, safe_open

    path = Path(path)
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
            tensors = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118 (safe_open has no __iter__)
    except (SafetensorError, OSError, ValueError, RuntimeError) as e:
        if isinstance(e, FileNotFoundError):
            raise CheckpointError(f"{path}: no such file") from None
        raise CheckpointError(f"{path}: {_what_is_wrong(path, e)}") from None
    state_json = meta.get(_STATE_KEY)
    if state_json is None:
        raise CheckpointError(f"{path}: a safetensors file without splatup's training state (no '{_STATE_KEY}' "
                              "entry in its header); not a splatup checkpoint")
    if meta.get(_DIGEST_KEY) != _digest(state_json, tensors):
        raise CheckpointError(f"{path}: the file is damaged (its contents do not match the digest written with it)")
    try:
        state = json.loads(state_json)
    except ValueError as e:
        raise CheckpointError(f"{path}: the training state is not valid JSON ({e})") from None
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise CheckpointError(f"{path}: not a splatup training checkpoint (format {state.get('format')!r})"
                              if isinstance(state, dict) else f"{path}: the training state is not a JSON object")
    if state.get("version") != VERSION:
        raise CheckpointError(f"{path}: checkpoint format version {state.get('version')!r}; this splatup reads "
                              f"version {VERSION}")
    it = state.get("iteration")
    if not isinstance(it, int) or isinstance(it, bool) or it < 0:
        raise CheckpointError(f"{path}: 'iteration' must be a non-negative integer, got {it!r}")
    m = _NAME.match(path.name)
    if m and int(m.group(1)) != it:
        raise CheckpointError(f"{path}: the file name says iteration {int(m.group(1))}, its state says {it}")
    return Checkpoint(path, tensors, state)


def load_latest_checkpoint(run_dir: Path, on_warning: Callable[[str], None]) -> Checkpoint | None:
    """The newest checkpoint of ``run_dir`` that reads and verifies, or None if there is no checkpoint file.

    A damaged newer checkpoint is renamed to ``<name>.damaged`` (kept for inspection, never read again) and
    reported through ``on_warning``; if every checkpoint is damaged, raises :class:`CheckpointError` listing each
    file and what is wrong with it. A pickled ``checkpoint.pt`` of earlier versions is never loaded."""
    run_dir = Path(run_dir)
    paths = list_checkpoints(run_dir)
    if not paths:
        legacy = run_dir / LEGACY_NAME
        if legacy.exists():
            raise CheckpointError(f"{legacy}: a checkpoint of an earlier splatup version, in pickle format; it is not "
                                  "loaded because loading a pickle can run code. Start the run again (--overwrite)")
        return None
    problems: list[tuple[Path, str]] = []
    for path in paths:
        try:
            ckpt = read_checkpoint(path)
        except CheckpointError as e:
            problems.append((path, str(e)))
            continue
        for bad, why in problems:
            with contextlib.suppress(OSError):
                os.replace(bad, bad.with_name(bad.name + ".damaged"))
            on_warning(f"{why}; set aside as {bad.name}.damaged, resuming from {path.name} "
                       f"(iteration {ckpt.iteration})")
        return ckpt
    raise CheckpointError("no usable checkpoint:\n  " + "\n  ".join(why for _, why in problems))


def remove_stale_temporaries(run_dir: Path) -> list[Path]:
    """Delete the temporary files that killed writes left in ``run_dir`` (``.<name>.<12 hex>.tmp``); return them.
    Call it only while holding the run's lock (:func:`run_lock`), when no write of this run is in flight."""
    removed = []
    for p in Path(run_dir).iterdir():
        if _TEMPORARY.match(p.name) and p.is_file():
            with contextlib.suppress(FileNotFoundError):
                p.unlink()
                removed.append(p)
    return removed


@contextlib.contextmanager
def run_lock(run_dir: Path) -> Iterator[None]:
    """Hold an exclusive lock on the folder ``run_dir`` (flock on the folder itself: no lock file is left behind,
    and a killed process releases it). Raises :class:`SplatupInputError` if another process holds it."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not POSIX: no lock
        yield
        return
    fd = os.open(run_dir, os.O_RDONLY)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            raise SplatupInputError(f"{run_dir}: another splatup process is training into this folder") from None
        yield
    finally:
        os.close(fd)
