"""`newswatch store stats|prune`: what the store holds, per month, and retention (docs/storage.md)."""

from __future__ import annotations

import json
from datetime import timedelta

import click
from rich.console import Console
from rich.table import Table

from newswatch.cli.group import CliContext, pass_context
from newswatch.cli.search import parse_since
from newswatch.core.errors import NewswatchError
from newswatch.core.store.leases import hold
from newswatch.core.times import utc_now


def _size(count: int) -> str:
    """Bytes as a person reads them: 1.4 GB, 88.0 MB."""
    value = float(count)
    for unit in ("B", "kB", "MB", "GB"):
        if value < 1000 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    raise AssertionError("unreachable")


@click.group()
def store() -> None:
    """What the store holds, and dropping what is older than you keep."""


@store.command("stats")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@pass_context
def stats(ctx: CliContext, as_json: bool) -> None:
    """Articles, hits, size on disk, the oldest article, and articles and hits per month (by when stored)."""
    with ctx.open_store() as opened:
        found = opened.stats()
    if as_json:
        record = {
            "articles": found.articles,
            "hits": found.hits,
            "bytes": found.bytes,
            "oldest": found.oldest.isoformat() if found.oldest else None,
            "months": [{"month": m.month, "articles": m.articles, "hits": m.hits} for m in found.months],
        }
        click.echo(json.dumps(record, indent=2))
        return
    oldest = found.oldest.strftime("%Y-%m-%d %H:%M UTC") if found.oldest else "none"
    per_article = f" ({_size(found.bytes // found.articles)} an article)" if found.articles else ""
    click.echo(
        f"{ctx.config.settings.storage.backend} store: {found.articles} articles, {found.hits} hits, "
        f"{_size(found.bytes)} on disk{per_article}; oldest stored {oldest}"
    )
    table = Table("month", "articles", "hits", box=None, header_style="bold")
    for month in found.months:
        table.add_row(month.month, str(month.articles), str(month.hits))
    if found.months:
        Console().print(table)


@store.command("prune")
@click.option("--older-than", "older_than", required=True, help="Age to drop, e.g. 365d, 52w, or a date 2025-12-01.")
@pass_context
def prune(ctx: CliContext, older_than: str) -> None:
    """Drop the articles first stored before --older-than, with their hits and cluster signatures; digests
    still owed stay. SQLite gives the space back to the disk; Elasticsearch deletes whole monthly indices.
    Waits for no one: while an alerts pass runs, it exits 1 and says so."""
    before = parse_since(older_than, option="--older-than")
    if before is None or before >= utc_now():
        raise NewswatchError(f"--older-than: {older_than!r} is not in the past")
    owed_days = ctx.config.settings.delivery.owed_days
    if before > utc_now() - timedelta(days=owed_days):
        raise NewswatchError(
            f"--older-than: {older_than!r} is inside delivery.owed_days ({owed_days:g} days): hits found since "
            "may still be owed to a recipient"
        )
    seconds = ctx.config.settings.schedule.lease_seconds
    # Under the alerts lease: no alerts pass (of a service or a command) reads hits while they go.
    with ctx.open_store() as opened, hold(opened, "alerts", "an alerts pass", seconds):
        report = opened.prune(before)
    click.echo(
        f"pruned {report.articles} articles, {report.hits} hits, {report.signatures} cluster signatures "
        f"first stored before {before:%Y-%m-%d %H:%M} UTC; {_size(report.reclaimed_bytes)} given back"
    )
