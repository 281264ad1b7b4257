"""The ``splatup`` click group: the command registry and the one place where input errors become exit code 2.

Every bad command line ends in one line on stderr, ``error: <what> ...`` naming the option, argument or file and
what was expected, and exit code 2, never a traceback: click's usage errors (an unknown option, a value of the
wrong type), :class:`~splatup.errors.SplatupInputError` and its :class:`~splatup.errors.SceneFormatError` from the
parsers, the readers and the checks, and an ``OSError`` on a file the command reads or writes. A ``MemoryError``
(the estimate of :mod:`splatup.memory` refuses most of them first) ends the same way with exit code 1.

Commands are imported only when they run (or when ``--help`` lists them), so ``splatup info`` does not pay for
the imports of ``splatup train`` or of the viewer.
"""

from __future__ import annotations

import importlib
import sys
from typing import NoReturn

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
    "view": "splatup.cli.view:view",
}

# click >= 8.2 raises this (a UsageError) for a group called without arguments; it shows the help, not an error
_NO_ARGS_IS_HELP = getattr(click.exceptions, "NoArgsIsHelpError", ())


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

    def make_context(self, info_name, args, parent=None, **extra) -> click.Context:
        try:
            return super().make_context(info_name, args, parent=parent, **extra)
        except click.UsageError as e:  # an option of the group itself
            if isinstance(e, _NO_ARGS_IS_HELP):  # bare `splatup`: click prints the help
                raise
            fail(usage_message(e))

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except click.UsageError as e:
            if isinstance(e, _NO_ARGS_IS_HELP):
                raise
            fail(usage_message(e))
        except SplatupInputError as e:
            fail(str(e))
        except OSError as e:
            fail(os_error_message(e))
        except MemoryError as e:
            fail(f"out of memory{f' ({e})' if str(e) else ''}; render a smaller image or use a larger --scale "
                 "(see the memory estimate in the README)", code=1)


def fail(message: str, code: int = 2) -> NoReturn:
    """Print ``error: message`` on stderr and exit with ``code``."""
    click.echo(f"error: {message}", err=True)
    sys.exit(code)


def usage_message(e: click.UsageError) -> str:
    """click's message of a usage error, with the command it belongs to (for ``--help``)."""
    cmd = e.ctx.command_path if e.ctx is not None else "splatup"
    return f"{e.format_message()} (see '{cmd} --help')"


def os_error_message(e: OSError) -> str:
    """An OSError on a file as '<file>: <reason>' (both files of a rename); without a file, its reason."""
    reason = e.strerror or str(e) or type(e).__name__
    if e.filename is None:
        return reason
    files = f"{e.filename}" + (f" -> {e.filename2}" if e.filename2 is not None else "")
    return f"{files}: {reason}"


@click.group(cls=SplatupGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="splatup")
def main() -> None:
    """splatup: fast CPU rendering of 3D Gaussian Splatting scenes with gradient-aware upscaling."""
