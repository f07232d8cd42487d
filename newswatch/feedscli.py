"""`newswatch feeds`: list, add, import/export OPML, and status of the configured sources (docs/crawler.md)."""

from __future__ import annotations

import json
import sys
from datetime import datetime, timezone
from pathlib import Path

import click
from rich.console import Console
from rich.table import Table

from newswatch.config import Feed, load_config
from newswatch.errors import ConfigError, NewswatchError


def _now() -> datetime:
    return datetime.now(timezone.utc)


def _add_to_config(config, entries: list[dict]) -> tuple[list[dict], list[str]]:
    """Append the entries whose URL is not configured yet (ids made unique) to feeds.yaml, then check the
    config still loads (restored otherwise). Returns (added entries, skipped URLs)."""
    from crawler.sources import append_feeds
    from crawler.urls import canonical_url

    known_urls = {canonical_url(f.url) for f in config.feeds}
    known_ids = {f.id for f in config.feeds}
    added, skipped = [], []
    for entry in entries:
        if canonical_url(entry["url"]) in known_urls:
            skipped.append(entry["url"])
            continue
        base = Feed(**entry).id
        feed_id, n = base, 2
        while feed_id in known_ids:
            feed_id, n = f"{base}-{n}", n + 1
        if feed_id != base:
            entry = {**entry, "id": feed_id}
        known_urls.add(canonical_url(entry["url"]))
        known_ids.add(feed_id)
        added.append(entry)
    if added:
        path = config.config_dir / "feeds.yaml"
        original = path.read_text(encoding="utf-8")
        append_feeds(path, added)
        try:
            load_config(config.config_dir)
        except ConfigError:
            path.write_text(original, encoding="utf-8")
            raise
    return added, skipped


@click.group()
def feeds() -> None:
    """Manage and inspect the news sources."""


@feeds.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array.")
@click.pass_obj
def list_feeds(obj, as_json: bool) -> None:
    """List the configured feeds."""
    records = [f.model_dump() for f in obj.config.feeds]
    if as_json:
        click.echo(json.dumps(records, ensure_ascii=False, indent=2))
        return
    table = Table("id", "name", "kind", "lang", "country", "enabled", "url")
    for r in records:
        table.add_row(r["id"], r["name"], r["kind"], r["language"] or "", r["country"] or "",
                      "yes" if r["enabled"] else "no", r["url"])
    Console(width=200).print(table)


@feeds.command("add")
@click.argument("url")
@click.option("--name", help="Outlet name (default: the feed's own title).")
@click.option("--language", help="ISO 639-1 language (default: what the feed declares).")
@click.option("--country", help="ISO 3166 country code.")
@click.pass_obj
def add(obj, url: str, name: str | None, language: str | None, country: str | None) -> None:
    """Find the feed behind URL (a feed, a sitemap, or a page advertising its feed) and add it."""
    from crawler.sources import find_feed

    config = obj.config
    crawler = config.settings.crawler
    entry = find_feed(url, crawler.user_agent, _now(), timeout=crawler.download_timeout)
    entry.update({k: v for k, v in (("name", name), ("language", language), ("country", country)) if v})
    added, skipped = _add_to_config(config, [entry])
    if skipped:
        raise NewswatchError(f"{entry['url']} is already in {config.config_dir / 'feeds.yaml'}")
    feed = Feed(**added[0])
    click.echo(f"added {feed.id}: {feed.name} <{feed.url}> kind={feed.kind} language={feed.language or '-'}")


@feeds.command("import")
@click.argument("opml_file", type=click.Path(path_type=Path, exists=True, dir_okay=False))
@click.pass_obj
def import_opml(obj, opml_file: Path) -> None:
    """Add the feeds of an OPML file (those not configured yet)."""
    from crawler.sources import parse_opml

    added, skipped = _add_to_config(obj.config, parse_opml(opml_file.read_bytes()))
    for entry in added:
        click.echo(f"added {Feed(**entry).id}: {entry['url']}")
    click.echo(f"{len(added)} added, {len(skipped)} already configured")


@feeds.command("export")
@click.pass_obj
def export_opml(obj) -> None:
    """Print the configured feeds as OPML 2.0."""
    from crawler.sources import to_opml

    sys.stdout.write(to_opml(obj.config.feeds, _now()))


@feeds.command("status")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array.")
@click.pass_obj
def status(obj, as_json: bool) -> None:
    """Per feed: health, last success, last error, items seen, next due time."""
    from crawler.sources import status_rows
    from newswatch.store import open_store

    store = open_store(obj.config)
    try:
        states = store.all_feed_states()
    finally:
        store.close()
    rows = status_rows(obj.config.feeds, states, _now())
    if as_json:
        click.echo(json.dumps(rows, ensure_ascii=False, indent=2))
        return
    table = Table("id", "health", "last success", "last error", "fails", "items seen", "next due")
    for r in rows:
        error = f"{(r['last_error_at'] or '')[:16]} {r['last_error']}" if r["last_error"] else ""
        table.add_row(r["id"], r["health"], (r["last_success"] or "never")[:16], error,
                      str(r["consecutive_failures"]), str(r["items_seen"]),
                      "now" if r["due_now"] else (r["next_due"] or "")[:16])
    Console(width=200).print(table)
    unhealthy = sum(r["health"] == "UNHEALTHY" for r in rows)
    click.echo(f"{len(rows)} feeds, {unhealthy} unhealthy, {sum(r['due_now'] for r in rows)} due now")
