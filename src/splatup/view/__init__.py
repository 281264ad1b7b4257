"""The interactive viewer: viser serves the page and the controls, splatup renders each frame on the CPU.

Modules: ``settings`` (what the user chooses), ``frame`` (one frame and its phase times), ``dynres`` (the factor that
holds a target frame time), ``motion`` (quick frames while the camera moves, a refined one when it stops),
``cameras`` (browser camera <-> splatup Camera, opening view, up axis), ``session`` (one client's frame loop),
``gui`` (the controls), ``status`` (the status line), ``server`` (the viser server). The ``splatup view`` command is
:mod:`splatup.cli.view`.
Names are imported lazily: ``import splatup.view`` loads neither viser nor the renderer.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {"Viewer": "server", "ViewSettings": "settings", "opening_settings": "settings"}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(f"{__name__}.{_EXPORTS[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
