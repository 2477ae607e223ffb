"""The ``identigraph`` command line: one module per command, a thin Typer shell over the library (``identigraph.cli.app`` assembles them)."""
