"""`newswatch check-config`, `crawl`, `run` and `demo`: check the config, crawl once, run the service, the demo."""

from __future__ import annotations

from pathlib import Path

import click

from newswatch.cli.group import CliContext, pass_context
from newswatch.core.errors import NewswatchError


@click.command("check-config")
@pass_context
def check_config(ctx: CliContext) -> None:
    """Validate every file of the config folder; print OK or each error (exit 2)."""
    config = ctx.config
    click.echo(
        f"OK: {config.config_dir}: {len(config.feeds)} feeds, {len(config.watches)} watches, "
        f"{len(config.recipients)} recipients, store={config.settings.storage.backend}, "
        f"delivery={config.settings.delivery.method}"
    )


@click.command()
@click.option("--feed", help="Crawl only the feed with this id, due or not, even if disabled.")
@click.option("--all", "all_feeds", is_flag=True, help="Crawl every enabled feed, due or not.")
@pass_context
def crawl(ctx: CliContext, feed: str | None, all_feeds: bool) -> None:
    """Crawl the feeds that are due (adaptive schedule) once, in this process, and store new articles."""
    from newswatch.service.crawl import check_frontier, crawl_in_process

    config = ctx.config
    if feed and feed not in {f.id for f in config.feeds}:
        raise NewswatchError(f"no feed with id {feed!r} in {config.config_dir / 'feeds.yaml'}")
    ctx.open_store().close()  # a store that is unreachable is one clear line, before Scrapy starts
    check_frontier(config)  # and so is a shared frontier (Redis) that cannot be reached
    crawl_in_process(config, feed, all_feeds=all_feeds)


@click.command()
@click.option(
    "--role",
    type=click.Choice(["all", "crawl", "alerts", "web"]),
    default="all",
    show_default=True,
    help="What this process runs: everything; only crawls (with crawler.frontier: redis, several at once); "
    "only the alerts passes and digests (a second one waits as a standby); only the web page.",
)
@pass_context
def run(ctx: CliContext, role: str) -> None:
    """Run the service: crawl on an interval, send digests on a schedule, until Ctrl-C or SIGTERM."""
    from newswatch.service.scheduler import run_service

    ctx.make_var_dir()
    run_service(ctx.config, role)


@click.command()
@click.option(
    "--workdir",
    type=click.Path(path_type=Path),
    default=Path("var/demo"),
    show_default=True,
    help="Folder for the demo's own config, store and outbox (emptied first).",
)
@pass_context
def demo(ctx: CliContext, workdir: Path) -> None:
    """Serve a bundled news site on 127.0.0.1, crawl it, match, and write a digest; prints the .eml path."""
    from newswatch.demo import run_demo

    watches_file = (ctx.config_dir or Path("config")) / "watches.yaml"
    click.echo(run_demo(workdir, watches_file if watches_file.exists() else None))
