"""`newswatch feeds`: list, add, import/export OPML, and status of the configured sources (docs/crawler.md)."""

from __future__ import annotations

import json
import sys
from datetime import datetime, timezone
from pathlib import Path
from urllib.parse import urlsplit

import click
from pydantic import ValidationError
from rich.console import Console
from rich.table import Table

from newswatch.config import Feed, load_config
from newswatch.errors import ConfigError, NewswatchError


def _now() -> datetime:
    return datetime.now(timezone.utc)


def _feed(entry: dict, origin: str) -> Feed:
    """``entry`` as a Feed; ConfigError naming the feed and what is wrong otherwise."""
    try:
        return Feed(**entry)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'entry'}: {e['msg']}" for e in exc.errors())
        raise ConfigError(f"{origin}: feed {entry.get('url')}: {problems}") from None


def _known_urls(config) -> set[str]:
    """The canonical forms of the URLs feeds.yaml lists."""
    from crawler.urls import canonical_url

    return {canonical_url(f.url) for f in config.feeds}


def _configured(config, urls) -> str | None:
    """The first of ``urls`` that feeds.yaml lists already (compared canonically), if any."""
    from crawler.urls import canonical_url

    known = _known_urls(config)
    return next((url for url in urls if canonical_url(url) in known), None)


def _add_to_config(config, entries: list[dict], origin: str) -> tuple[list[Feed], list[str]]:
    """Append the entries whose URL is not configured yet (ids made unique) to feeds.yaml, then check the
    config still loads (restored otherwise). Returns (added feeds, skipped URLs). Every entry is validated
    first, so one bad entry adds nothing; ``origin`` (the command or file) names where it came from."""
    from crawler.sources import append_feeds
    from crawler.urls import canonical_url

    known_urls = _known_urls(config)
    known_ids = {f.id for f in config.feeds}
    added, written, skipped = [], [], []
    for entry in entries:
        feed = _feed(entry, origin)
        if canonical_url(feed.url) in known_urls:
            skipped.append(feed.url)
            continue
        feed_id, n = feed.id, 2
        while feed_id in known_ids:
            feed_id, n = f"{feed.id}-{n}", n + 1
        if feed_id != feed.id:
            entry = {**entry, "id": feed_id}
            feed = feed.model_copy(update={"id": feed_id})
        known_urls.add(canonical_url(feed.url))
        known_ids.add(feed_id)
        added.append(feed)
        # The keys given, with the model's normalised values (url scheme, codes' case, enabled as a bool).
        written.append({key: getattr(feed, key) for key in entry})
    if added:
        path = config.config_dir / "feeds.yaml"
        original = path.read_text(encoding="utf-8")
        if not append_feeds(path, written):
            click.echo(f"warning: {path} was rewritten as plain YAML: its comments and layout were not kept "
                       "(the feeds: list has an unusual layout)", err=True)
        try:
            load_config(config.config_dir)
        except ConfigError:
            path.write_text(original, encoding="utf-8")
            raise
    return added, skipped


def _checked_url(url: str) -> str:
    """``url`` with a lower-case scheme if it is an http(s) URL; NewswatchError saying what is wrong otherwise."""
    try:
        parts = urlsplit(url.strip())
    except ValueError as exc:
        raise NewswatchError(f"{url}: not a valid URL ({exc})") from None
    scheme = parts.scheme.lower()
    if scheme in ("http", "https") and parts.hostname:
        return scheme + url.strip()[len(parts.scheme):]
    if scheme in ("http", "https"):
        raise NewswatchError(f"{url}: not a valid URL (no host name)")
    # A bare host ("example.com/news") most likely meant the web site; a path or file:// is a local file.
    hint = f"; did you mean https://{url}?" if not scheme and not url.startswith(("/", ".", "~")) else ""
    raise NewswatchError(f"{url}: feeds add takes an http:// or https:// URL{hint}")


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
    """Find the feed behind URL (an http(s) feed, sitemap, or page advertising its feed) and add it.

    A URL that feeds.yaml lists already, or that leads there (redirects, a configured page's feed), is
    refused. After a permanent redirect (301/308) the new URL is the one stored."""
    from crawler.sources import find_feed

    config = obj.config
    feeds_file = config.config_dir / "feeds.yaml"
    url = _checked_url(url)
    # Before fetching: a listed feed that is down now is still listed.
    if _configured(config, [url]):
        raise NewswatchError(f"{url} is already in {feeds_file}")
    found = find_feed(url, _now(), config.settings.crawler)
    entry = found.entry
    entry.update({k: v for k, v in (("name", name), ("language", language), ("country", country)) if v})
    duplicate = _configured(config, [*found.urls, entry["url"]])
    if duplicate:
        raise NewswatchError(f"{url} is already in {feeds_file} (as {duplicate})")
    added, skipped = _add_to_config(config, [entry], "feeds add")
    if skipped:
        raise NewswatchError(f"{entry['url']} is already in {feeds_file}")
    feed = added[0]
    click.echo(f"added {feed.id}: {feed.name} <{feed.url}> kind={feed.kind} language={feed.language or '-'}")


@feeds.command("import")
@click.argument("opml_file", type=click.Path(path_type=Path, exists=True, dir_okay=False))
@click.pass_obj
def import_opml(obj, opml_file: Path) -> None:
    """Add the feeds of an OPML file (those not configured yet).

    Reads xmlUrl (any case) and what `feeds export` adds (id, kind, country, enabled); outlines with no
    http(s) xmlUrl are skipped and counted."""
    from crawler.sources import parse_opml

    opml = parse_opml(opml_file.read_bytes(), str(opml_file))
    added, already = _add_to_config(obj.config, opml.feeds, str(opml_file))
    for feed in added:
        click.echo(f"added {feed.id}: {feed.url}")
    for reason in opml.skipped:
        click.echo(f"skipped {reason}")
    summary = f"{len(added)} added, {len(already)} already configured"
    if opml.skipped:
        summary += f", {len(opml.skipped)} skipped: no usable xmlUrl"
    click.echo(summary)


@feeds.command("export")
@click.pass_obj
def export_opml(obj) -> None:
    """Print the configured feeds as OPML 2.0 (id, kind, country, enabled as newswatch: attributes)."""
    from crawler.sources import to_opml

    sys.stdout.write(to_opml(obj.config.feeds, _now()))


@feeds.command("status")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array.")
@click.pass_obj
def status(obj, as_json: bool) -> None:
    """Per feed: health, last success, last error, items seen, next due time (UTC).

    Health is ok, failing (n) after n failures in a row, UNHEALTHY from 5, never polled or disabled."""
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
        error = f"{_utc(r['last_error_at'])} {r['last_error']}" if r["last_error"] else ""
        health = f"failing ({r['consecutive_failures']})" if r["health"] == "failing" else r["health"]
        table.add_row(r["id"], health, _utc(r["last_success"]) or "never", error,
                      str(r["consecutive_failures"]), str(r["items_seen"]),
                      "now" if r["due_now"] else _utc(r["next_due"]))
    Console(width=200).print(table)
    unhealthy = sum(r["health"] == "UNHEALTHY" for r in rows)
    failing = sum(r["health"] == "failing" for r in rows)
    due = sum(r["due_now"] for r in rows)
    click.echo(f"{len(rows)} feeds, {unhealthy} unhealthy, {failing} failing, {due} due now")


def _utc(stamp: str | None) -> str:
    """An ISO time from the feed state as ``2026-11-04 09:15 UTC``: without its zone a time reads as local."""
    if not stamp:
        return ""
    moment = datetime.fromisoformat(stamp)
    if moment.tzinfo is not None:
        moment = moment.astimezone(timezone.utc)
    return moment.strftime("%Y-%m-%d %H:%M UTC")
