"""``python -m ragd`` is the CLI."""

from ragd.cli import main

main()
