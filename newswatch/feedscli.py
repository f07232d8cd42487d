"""`newswatch feeds`: list, add, import/export OPML, and status of the configured sources (docs/crawler.md)."""

from __future__ import annotations

import click


@click.group()
def feeds() -> None:
    """Manage and inspect the news sources."""
