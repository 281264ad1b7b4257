"""The ``splatup`` command line: a click group (:mod:`.group`), one module per command, one camera specification
(:mod:`.camera_spec`) shared by the commands that place a camera.

A new command is a module here with a ``click.Command`` and one line in :data:`splatup.cli.group.COMMANDS`.
"""

from .group import COMMANDS, main

__all__ = ["COMMANDS", "main"]
