"""`newswatch digest` and `newswatch outbox`: preview, send now, list and retry digests (docs/delivery.md)."""

from __future__ import annotations

from pathlib import Path

import click

from alerts import format_outbox, list_outbox, preview_digests, retry_outbox, send_now
from newswatch.errors import NewswatchError
from newswatch.store import open_store


def _with_store(config, action):
    store = open_store(config)
    try:
        return action(store)
    finally:
        store.close()


@click.command()
@click.option("--preview", is_flag=True, help="Write the HTML and text each recipient would get now; send nothing.")
@click.option("--send-now", "send", is_flag=True, help="Queue and send all owed hits now, whatever the cadence.")
@click.option("--recipient", help="Only this recipient (with --preview).")
@click.option("--out", "out_dir", type=click.Path(path_type=Path), default=Path("var/preview"), show_default=True,
              help="Folder for the --preview files.")
@click.pass_obj
def digest(obj, preview: bool, send: bool, recipient: str | None, out_dir: Path) -> None:
    """Preview digests, or send them now outside their schedule."""
    if preview == send:
        raise NewswatchError("digest: give exactly one of --preview or --send-now")
    config = obj.config
    if preview:
        for path in _with_store(config, lambda s: preview_digests(config, s, out_dir, recipient=recipient)):
            click.echo(path)
        return
    report = _with_store(config, lambda s: send_now(config, s))
    click.echo(f"digests: {report}")
    for path in report.written:
        click.echo(path)


@click.group()
def outbox() -> None:
    """Digests waiting to be sent, and the ones sent recently."""


@outbox.command("list")
@click.option("--sent", "sent_limit", default=10, show_default=True, help="How many sent digests to show.")
@click.pass_obj
def outbox_list(obj, sent_limit: int) -> None:
    """List waiting digests (with their last error) and the latest sent ones."""
    for line in _with_store(obj.config, lambda s: format_outbox(list_outbox(s, sent_limit=sent_limit))):
        click.echo(line)


@outbox.command("retry")
@click.pass_obj
def outbox_retry(obj) -> None:
    """Try every waiting digest now, ignoring its backoff."""
    result = _with_store(obj.config, lambda s: retry_outbox(obj.config, s))
    click.echo(f"outbox retry: sent={result.sent} failed={result.failed}")
