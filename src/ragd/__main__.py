"""``python -m ragd`` is the CLI."""

from ragd.cli.app import main

main()
