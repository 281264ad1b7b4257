"""The ``splatup`` click group: the command registry and the one place where input errors become exit code 2.

Commands are imported only when they run (or when ``--help`` lists them), so ``splatup info`` does not pay for
the imports of ``splatup train`` or of the viewer.
"""

from __future__ import annotations

import importlib
import sys

import click

from ..errors import SplatupInputError

# name -> "module:attribute" of a click.Command. Adding a command is one line here and one module beside this one.
COMMANDS: dict[str, str] = {
    "info": "splatup.cli.info:info",
    "render": "splatup.cli.render:render",
    "compare": "splatup.cli.compare:compare",
    "bench": "splatup.cli.bench:bench",
    "demo": "splatup.cli.demo:demo",
    "train": "splatup.cli.train:train",
    "eval": "splatup.cli.evaluate:eval_cmd",
}


class SplatupGroup(click.Group):
    """Loads the commands of :data:`COMMANDS` on demand and turns :class:`SplatupInputError` into one clear line
    on stderr and exit code 2 instead of a traceback."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(set(super().list_commands(ctx)) | set(COMMANDS))

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in COMMANDS:
            module, attr = COMMANDS[cmd_name].split(":")
            return getattr(importlib.import_module(module), attr)
        return super().get_command(ctx, cmd_name)

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except SplatupInputError as e:
            click.echo(f"error: {e}", err=True)
            sys.exit(2)


@click.group(cls=SplatupGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="splatup")
def main() -> None:
    """splatup: fast CPU rendering of 3D Gaussian Splatting scenes with gradient-aware upscaling."""
