"""`newswatch spool list|drop`: rows of the Elasticsearch spool that could not be read back (quarantined)."""

from __future__ import annotations

import click

from newswatch.cli.group import CliContext, pass_context
from newswatch.core.errors import NewswatchError


def _spool(ctx: CliContext):
    """The spool file alone (no cluster needed: this is what to look at while it is down)."""
    from newswatch.core.store.elastic.spool import Spool

    settings = ctx.config.settings.storage
    if settings.backend != "elasticsearch":
        raise NewswatchError("the spool belongs to the Elasticsearch store; storage.backend is 'sqlite'")
    return Spool(ctx.config.path(settings.elasticsearch.spool_dir) / "spool.sqlite3")


@click.group()
def spool() -> None:
    """Writes waiting for Elasticsearch that could not be read back, set aside so the rest replays."""


@spool.command("list")
@pass_context
def spool_list(ctx: CliContext) -> None:
    """List quarantined rows: number, what it was, when, why, and the start of its text."""
    store = _spool(ctx)
    try:
        rows = store.quarantined()
        waiting = store.waiting()
    finally:
        store.close()
    click.echo(f"spool {store.path}: waiting articles={waiting[0]} feed_states={waiting[1]} signatures={waiting[2]}")
    if not rows:
        click.echo("nothing quarantined")
    for row in rows:
        click.echo(f"{row.row}\t{row.at}\t{row.kind} {row.key}\t{row.reason}\t{row.doc[:80]!r}")


@spool.command("drop")
@click.argument("rows", nargs=-1, type=int)
@click.option("--all", "drop_all", is_flag=True, help="Drop every quarantined row.")
@pass_context
def spool_drop(ctx: CliContext, rows: tuple[int, ...], drop_all: bool) -> None:
    """Forget quarantined ROWS (numbers from `spool list`), or --all of them."""
    if not rows and not drop_all:
        raise NewswatchError("name the rows to drop (see: newswatch spool list), or give --all")
    store = _spool(ctx)
    try:
        dropped = store.drop_quarantined(None if drop_all else rows)
    finally:
        store.close()
    click.echo(f"dropped {dropped} quarantined rows")
