"""The `newswatch` command (README.md, "Everyday use"). User errors are one line on stderr and exit status 2."""

from __future__ import annotations

import json
import re
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

import click

from newswatch.config import Config, load_config, validate_file
from newswatch.errors import NewswatchError
from newswatch.logs import setup_logging
from newswatch.watchspec import WatchList

EXIT_USER_ERROR = 2


class _Context:
    def __init__(self, config_dir: Path | None):
        self.config_dir = config_dir
        self._config: Config | None = None

    @property
    def config(self) -> Config:
        if self._config is None:
            self._config = load_config(self.config_dir)
            setup_logging(self._config.settings.log_level)
        return self._config


pass_context = click.make_pass_decorator(_Context)


@click.group()
@click.option(
    "--config", "config_dir", type=click.Path(path_type=Path), envvar="NEWSWATCH_CONFIG_DIR",
    help="Config folder (default: ./config, or $NEWSWATCH_CONFIG_DIR).",
)
@click.pass_context
def cli(ctx: click.Context, config_dir: Path | None) -> None:
    """Watch regional news feeds for places and groups, and email digests of what appears."""
    ctx.obj = _Context(config_dir)


@cli.command("check-config")
@pass_context
def check_config(ctx: _Context) -> None:
    """Validate every file of the config folder; print OK or each error (exit 2)."""
    config = ctx.config
    click.echo(
        f"OK: {config.config_dir}: {len(config.feeds)} feeds, {len(config.watches)} watches, "
        f"{len(config.recipients)} recipients, store={config.settings.storage.backend}, "
        f"delivery={config.settings.delivery.method}"
    )


@cli.command()
@click.option("--feed", help="Crawl only the feed with this id, due or not, even if disabled.")
@click.option("--all", "all_feeds", is_flag=True, help="Crawl every enabled feed, due or not.")
@pass_context
def crawl(ctx: _Context, feed: str | None, all_feeds: bool) -> None:
    """Crawl the feeds that are due (adaptive schedule) once, in this process, and store new articles."""
    from newswatch.crawlrun import crawl_in_process
    from newswatch.store import open_store

    config = ctx.config
    if feed and feed not in {f.id for f in config.feeds}:
        raise NewswatchError(f"no feed with id {feed!r} in {config.config_dir / 'feeds.yaml'}")
    open_store(config).close()  # a store that is unreachable is one clear line, before Scrapy starts
    crawl_in_process(config, feed, all_feeds=all_feeds)


@cli.command()
@pass_context
def alerts(ctx: _Context) -> None:
    """Run the alerts pass once: match new articles, queue and deliver digests."""
    from alerts import run_alerts
    from newswatch.store import open_store

    store = open_store(ctx.config)
    try:
        report = run_alerts(ctx.config, store)
    finally:
        store.close()
    for path in report.written:
        click.echo(path)


@cli.command()
@pass_context
def run(ctx: _Context) -> None:
    """Run the service: crawl on an interval, send digests on a schedule, until Ctrl-C or SIGTERM."""
    from newswatch.scheduler import run_service

    run_service(ctx.config)


@cli.command()
@click.option("--workdir", type=click.Path(path_type=Path), default=Path("var/demo"), show_default=True,
              help="Folder for the demo's own config, store and outbox (emptied first).")
@pass_context
def demo(ctx: _Context, workdir: Path) -> None:
    """Serve a bundled news site on 127.0.0.1, crawl it, match, and write a digest; prints the .eml path."""
    from newswatch.demo import run_demo

    watches_file = (ctx.config_dir or Path("config")) / "watches.yaml"
    click.echo(run_demo(workdir, watches_file if watches_file.exists() else None))


@cli.command()
@click.option("--json", "as_json", is_flag=True, required=True, help="One JSON object per line.")
@click.argument("files", nargs=-1, required=True, type=click.Path(path_type=Path))
def extract(as_json: bool, files: tuple[Path, ...]) -> None:
    """Extract title, text, date, language and author from saved HTML pages."""
    from crawler.extract import extract_file

    failed = 0
    for path in files:
        try:
            record = extract_file(path)
        except NewswatchError as exc:
            failed += 1
            record = {"file": str(path), "title": None, "text": None, "published": None, "language": None,
                      "error": str(exc)}
            click.echo(f"error: {path}: {exc}", err=True)
        click.echo(json.dumps(record, ensure_ascii=False))
    if failed:
        sys.exit(1)


@cli.command()
@click.option("--json", "as_json", is_flag=True, required=True, help="Print a JSON array of the items.")
@click.argument("source")
@pass_context
def feed(ctx: _Context, as_json: bool, source: str) -> None:
    """Parse a feed file or URL and print its items (a URL is fetched with the crawler's User-Agent and
    limits: those of --config when given, else the defaults)."""
    from crawler.feeds import feed_to_json, parse_feed
    from newswatch.config import CrawlerSettings
    from newswatch.fetch import fetch_bytes

    crawler = ctx.config.settings.crawler if ctx.config_dir is not None else CrawlerSettings()
    body, url = fetch_bytes(source, crawler.download_timeout, user_agent=crawler.user_agent,
                            max_bytes=crawler.max_body_bytes)
    click.echo(json.dumps(feed_to_json(parse_feed(body, url)), ensure_ascii=False, indent=2))


@cli.command()
@click.option("--watchlist", type=click.Path(path_type=Path), required=True, help="A watches YAML file.")
@click.option("--json", "as_json", is_flag=True, required=True, help="Print a JSON array of hits.")
@click.argument("text_file", default="-", type=click.File("r", encoding="utf-8"))
def match(watchlist: Path, as_json: bool, text_file) -> None:
    """Find the watches of WATCHLIST in the text of a file (or stdin)."""
    from alerts.watchlist import compile_watches

    watches = validate_file(watchlist, WatchList).watches
    spans = compile_watches(watches).find(text_file.read())
    hits = [{"watch": s.watch, "matched": s.matched, "start": s.start, "end": s.end} for s in spans]
    click.echo(json.dumps(hits, ensure_ascii=False, indent=2))


def parse_since(value: str | None) -> datetime | None:
    """'24h', '7d', '30m' or an ISO date → an aware datetime; raises NewswatchError otherwise."""
    if not value:
        return None
    found = re.fullmatch(r"(\d+)\s*([mhdw])", value.strip())
    if found:
        unit = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}[found.group(2)]
        return datetime.now(timezone.utc) - timedelta(**{unit: int(found.group(1))})
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise NewswatchError(f"--since: expected e.g. 24h, 7d or 2026-11-01, got {value!r}") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)


@cli.command()
@click.argument("query")
@click.option("--since", help="Only articles published since, e.g. 24h, 7d, 2026-11-01.")
@click.option("--watch", help="Only articles with a hit of this watch.")
@click.option("--limit", default=20, show_default=True, help="Most results to show.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@pass_context
def search(ctx: _Context, query: str, since: str | None, watch: str | None, limit: int, as_json: bool) -> None:
    """Full-text search of stored articles, with highlighted fragments."""
    from newswatch.searchview import print_results
    from newswatch.store import open_store

    store = open_store(ctx.config)
    try:
        results = store.search(query, since=parse_since(since), watch=watch, limit=limit)
    finally:
        store.close()
    print_results(results, as_json)


@cli.group()
def watch() -> None:
    """Inspect watches."""


@watch.command("explain")
@click.argument("name")
@pass_context
def watch_explain(ctx: _Context, name: str) -> None:
    """List every spelling watch NAME matches, and where each comes from."""
    from alerts.watchlist import explain

    found = [w for w in ctx.config.watches if w.name.casefold() == name.casefold()]
    if not found:
        raise NewswatchError(f"no watch named {name!r} in {ctx.config.config_dir / 'watches.yaml'}")
    for spelling, origin in explain(found[0]):
        click.echo(f"{spelling}\t{origin}")


def _register_subcommands() -> None:
    from newswatch.alertscli import digest, outbox
    from newswatch.feedscli import feeds

    for command in (digest, outbox, feeds):
        cli.add_command(command)


_register_subcommands()


def main() -> None:
    """Entry point: run the CLI, turning every NewswatchError into one line on stderr and exit status 2."""
    try:
        cli.main(standalone_mode=False)
    except NewswatchError as exc:
        for line in str(exc).splitlines() or [type(exc).__name__]:
            click.echo(f"error: {line}", err=True)
        sys.exit(EXIT_USER_ERROR)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except OSError as exc:
        if isinstance(exc, BrokenPipeError):
            sys.exit(0)
        click.echo(f"error: {exc.filename or ''}: {exc.strerror or exc}", err=True)
        sys.exit(EXIT_USER_ERROR)
