"""`python -m newswatch` is the `newswatch` command."""

from newswatch.cli import main

main()
