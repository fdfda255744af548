"""The command line (Typer): ``ragd serve``, ``ingest``, ``search``, ``keys``, ``eval``...

``ragd.cli:main`` stays the console-script entry point.
"""

from ragd.cli.app import app, main

__all__ = ["app", "main"]
