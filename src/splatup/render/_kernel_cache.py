"""``kernel``: ``numba.njit`` whose on-disk cache is keyed on every source file of this package.

numba's own cache (``cache=True``) invalidates a kernel only when the file that defines it changes. The
compositing kernels inline helpers from other files of this package (:mod:`.lanes`, :mod:`.simd`), so a change
there would leave a stale kernel in the cache. This cache uses the same files and format as numba's, but its
freshness stamp is a digest of all ``*.py`` files of ``splatup/render`` plus the SIMD width, so any change to
any of them recompiles every kernel that uses it.
"""

from __future__ import annotations

import hashlib
from functools import lru_cache
from pathlib import Path

from numba import njit
from numba.core.caching import CompileResultCacheImpl, FunctionCache

from .simd import LANES

_PACKAGE = Path(__file__).resolve().parent


@lru_cache(maxsize=1)
def sources_digest() -> str:
    """sha256 over the names and contents of the package's Python files and the SIMD width."""
    h = hashlib.sha256(f"lanes={LANES}\n".encode())
    for path in sorted(_PACKAGE.glob("*.py")):
        h.update(path.name.encode() + b"\0")
        h.update(path.read_bytes())
    return h.hexdigest()


class _PackageStampLocator:
    """numba's locator for the kernel's file, with the package digest as the source stamp."""

    def __init__(self, inner) -> None:
        self._inner = inner

    def __getattr__(self, name):
        return getattr(self._inner, name)

    def get_source_stamp(self):
        return sources_digest()


class _PackageStampImpl(CompileResultCacheImpl):
    def __init__(self, py_func) -> None:
        super().__init__(py_func)
        self._locator = _PackageStampLocator(self._locator)
        # one index file per SIMD width, so that processes with different widths do not evict each other
        self._filename_base = f"{self._filename_base}-l{LANES}"


def _describe(value, depth: int = 0) -> str:
    """A closure variable as text that is the same in every process: a dispatcher or function by its qualified
    name (its code is covered by the package digest) and, recursively, its own closure variables (two functions
    made by one factory share a name and differ only there), anything else by its repr."""
    py_func = getattr(value, "py_func", value)
    if callable(py_func) and hasattr(py_func, "__qualname__"):
        cells = getattr(py_func, "__closure__", None) or ()
        inner = ",".join(_describe(c.cell_contents, depth + 1) for c in cells) if depth < 8 else "..."
        return f"{py_func.__module__}.{py_func.__qualname__}({inner})"
    return repr(value)


class PackageKeyedCache(FunctionCache):
    """numba's function cache with :class:`_PackageStampLocator`, and an index key whose closure part does not
    depend on the process: numba pickles a kernel's closure variables into the key, and a pickled dispatcher
    carries a per-process id, so a kernel made by a factory that closes over another jitted function would miss
    the cache in every new process."""

    _impl_class = _PackageStampImpl

    def _index_key(self, sig, codegen):
        closure = self._py_func.__closure__ or ()
        cvars = "\0".join(_describe(c.cell_contents) for c in closure)
        code = hashlib.sha256(self._py_func.__code__.co_code).hexdigest()
        return (sig, codegen.magic_tuple(), (code, hashlib.sha256(cvars.encode()).hexdigest()))


def variant_named(variant: int):
    """Decorator (under ``njit`` / ``kernel``) for a function made by a kernel factory: its qualified name gets the
    suffix ``_v<variant>``. numba names machine code after the qualified name and a per-process counter, so the same
    closure of two variants, compiled by two processes, can get one symbol name; a process that then loads both
    from the cache links one variant's code into the other (it aborted the backward). Distinct names per variant
    prevent that, and give each variant its own cache index."""

    def wrap(fn):
        fn.__qualname__ = f"{fn.__qualname__}_v{variant}"
        return fn

    return wrap


def kernel(**options):
    """Decorator: ``njit(**options)`` with :class:`PackageKeyedCache` (``cache`` must not be given)."""
    if "cache" in options:
        raise TypeError("kernel: the cache is always on (keyed on the package sources); do not pass cache=")

    def wrap(fn):
        dispatcher = njit(**options)(fn)
        dispatcher._cache = PackageKeyedCache(dispatcher.py_func)
        return dispatcher

    return wrap
