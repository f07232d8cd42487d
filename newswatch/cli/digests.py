"""`newswatch alerts`, `digest` and `outbox`: the alerts pass, digest previews and sends, the digest queue
(docs/delivery.md). `outbox` lists and retries the persisted queue of digests, whatever the delivery method.

A command that was to deliver digests exits 1 when any of them could not be (README.md, "Exit codes")."""

from __future__ import annotations

from pathlib import Path

import click

from newswatch.cli.group import CliContext, pass_context
from newswatch.core.config import make_private_dir
from newswatch.core.errors import DeliveryFailed, NewswatchError


def _undelivered(failed: int) -> None:
    """DeliveryFailed (exit 1) when ``failed`` digests could not be delivered; why is in their log lines."""
    if failed:
        what = "1 digest was not delivered; it stays"
        if failed > 1:
            what = f"{failed} digests were not delivered; they stay"
        raise DeliveryFailed(f"{what} queued (see: newswatch outbox list)")


@click.command()
@pass_context
def alerts(ctx: CliContext) -> None:
    """Run the alerts pass once: match new articles, queue and deliver digests."""
    from alerts.run import run_alerts

    with ctx.open_store() as store:
        report = run_alerts(ctx.config, store)
    for path in report.written:
        click.echo(path)
    _undelivered(report.failed)


@click.command()
@click.option("--preview", is_flag=True, help="Write the HTML and text each recipient would get now; send nothing.")
@click.option("--send-now", "send", is_flag=True, help="Queue and send all owed hits now, whatever the cadence.")
@click.option("--recipient", help="Only this recipient (with --preview).")
@click.option(
    "--out",
    "out_dir",
    type=click.Path(path_type=Path),
    default=Path("var/preview"),
    show_default=True,
    help="Folder for the --preview files.",
)
@pass_context
def digest(ctx: CliContext, preview: bool, send: bool, recipient: str | None, out_dir: Path) -> None:
    """Preview digests, or send them now outside their schedule."""
    from alerts.run import preview_digests, send_now

    if preview == send:
        raise NewswatchError("digest: give exactly one of --preview or --send-now")
    config = ctx.config
    with ctx.open_store() as store:
        if preview:
            make_private_dir(out_dir)  # the previews say what the digests would: folders made are 0700
            for path in preview_digests(config, store, out_dir, recipient=recipient):
                click.echo(path)
            return
        report = send_now(config, store)
    click.echo(f"digests: {report}")
    for path in report.written:
        click.echo(path)
    _undelivered(report.failed)


@click.group()
def outbox() -> None:
    """Digests waiting to be sent, and the ones sent recently."""


@outbox.command("list")
@click.option("--sent", "sent_limit", default=10, show_default=True, help="How many sent digests to show.")
@pass_context
def outbox_list(ctx: CliContext, sent_limit: int) -> None:
    """List waiting digests (with their last error) and the latest sent ones: state, attempts, counts, .eml."""
    from alerts.delivery.queue import eml_folder, format_queue, list_queue

    with ctx.open_store() as store:
        rows = list_queue(store, sent_limit=sent_limit, eml_dir=eml_folder(ctx.config))
    for line in format_queue(rows, header=True):
        click.echo(line)


@outbox.command("retry")
@click.option(
    "--id",
    "ids",
    multiple=True,
    metavar="ID",
    help="Only this digest (an id from `outbox list`), waiting or dead: a dead one is revived. Repeatable.",
)
@pass_context
def outbox_retry(ctx: CliContext, ids: tuple[str, ...]) -> None:
    """Try every waiting digest now, ignoring its backoff (or only those given with --id)."""
    from alerts.delivery.queue import retry_queue

    with ctx.open_store() as store:
        result = retry_queue(ctx.config, store, ids=ids)
    click.echo(f"outbox retry: sent={result.sent} failed={result.failed}")
    _undelivered(result.failed)
