"""``python -m splatup``: the ``splatup`` command."""

from splatup.cli import main

if __name__ == "__main__":  # pragma: no cover - exercised through a subprocess in the CLI tests
    main(prog_name="splatup")
