"""The ``gaussmix`` command line (typer). ``gaussmix.cli.main:run`` is the entry point."""
