"""Exceptions raised for bad input. Every message names the file, field or argument at fault."""

from __future__ import annotations


class SplatupInputError(ValueError):
    """Input that splatup cannot use: a malformed file, a non-finite value, an impossible size."""


class SceneFormatError(SplatupInputError):
    """A scene or dataset file is truncated, malformed or of an unsupported kind."""
