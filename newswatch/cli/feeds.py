"""`newswatch feeds`: list, add, import/export OPML, and status of the configured sources (docs/crawler.md)."""

from __future__ import annotations

import json
import sys
import textwrap
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path

import click
from pydantic import ValidationError
from rich.cells import cell_len
from rich.console import Console
from rich.table import Column, Table

from newswatch.cli.group import CliContext, pass_context
from newswatch.core.config import Config, load_config
from newswatch.core.config.feeds import CREDENTIALS_IN_FEED_URL, Feed
from newswatch.core.config.fields import refuse_credentials
from newswatch.core.errors import ConfigError, NewswatchError
from newswatch.core.feedstate import Health, status_rows
from newswatch.core.times import utc_now
from newswatch.core.web import web_url


def _feed(entry: dict, origin: str) -> Feed:
    """``entry`` as a Feed; ConfigError naming the feed and what is wrong otherwise."""
    try:
        return Feed(**entry)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'entry'}: {e['msg']}" for e in exc.errors())
        raise ConfigError(f"{origin}: feed {entry.get('url')}: {problems}") from None


def _known_urls(config: Config) -> set[str]:
    """The canonical forms of the URLs feeds.yaml lists."""
    from crawler.urls import canonical_url

    return {canonical_url(f.url) for f in config.feeds}


def _configured(config: Config, urls) -> str | None:
    """The first of ``urls`` that feeds.yaml lists already (compared canonically), if any."""
    from crawler.urls import canonical_url

    known = _known_urls(config)
    return next((url for url in urls if canonical_url(url) in known), None)


def _add_to_config(config: Config, entries: list[dict], origin: str) -> tuple[list[Feed], list[str]]:
    """Append the entries whose URL is not configured yet (ids made unique) to feeds.yaml, then check the
    config still loads (restored otherwise). Returns (added feeds, skipped URLs). Every entry is validated
    first, so one bad entry adds nothing; ``origin`` (the command or file) names where it came from."""
    from crawler.urls import canonical_url
    from newswatch.cli.feedfile import append_feeds

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
            click.echo(
                f"warning: {path} was rewritten as plain YAML: its comments and layout were not kept "
                "(the feeds: list has an unusual layout)",
                err=True,
            )
        try:
            load_config(config.config_dir)
        except ConfigError:
            path.write_text(original, encoding="utf-8")
            raise
    return added, skipped


def _checked_url(url: str) -> str:
    """``url`` with a lower-case scheme if it is an http(s) URL without credentials; NewswatchError saying what
    is wrong otherwise (before anything is fetched)."""
    try:
        return refuse_credentials(web_url(url), reason=CREDENTIALS_IN_FEED_URL)
    except ValueError as exc:
        reason = str(exc)
    if reason == CREDENTIALS_IN_FEED_URL:
        raise NewswatchError(reason)
    if reason.startswith("must start"):
        # A bare host ("example.com/news") most likely meant the web site; a path or file:// is a local file.
        bare = "://" not in url and not url.startswith(("/", ".", "~"))
        hint = f"; did you mean https://{url}?" if bare else ""
        raise NewswatchError(f"{url}: feeds add takes an http:// or https:// URL{hint}")
    raise NewswatchError(f"{url}: {'not a valid URL (no host name)' if reason == 'has no host name' else reason}")


@click.group()
def feeds() -> None:
    """Manage and inspect the news sources."""


@feeds.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array.")
@pass_context
def list_feeds(ctx: CliContext, as_json: bool) -> None:
    """List the configured feeds."""
    records = [f.model_dump() for f in ctx.config.feeds]
    if as_json:
        click.echo(json.dumps(records, ensure_ascii=False, indent=2))
        return
    # Every cell folded over lines where it must be, never shortened with an ellipsis (an id, a URL).
    table = Table(*(Column(h, overflow="fold") for h in ("id", "name", "kind", "lang", "country", "enabled", "url")))
    for r in records:
        table.add_row(
            r["id"],
            r["name"],
            r["kind"],
            r["language"] or "",
            r["country"] or "",
            "yes" if r["enabled"] else "no",
            r["url"],
        )
    Console().print(table)  # as wide as the terminal (rich's detection: the tty, $COLUMNS, else 80)


@feeds.command("add")
@click.argument("url")
@click.option("--name", help="Outlet name (default: the feed's own title).")
@click.option("--language", help="ISO 639-1 language (default: what the feed declares).")
@click.option("--country", help="ISO 3166 country code.")
@pass_context
def add(ctx: CliContext, url: str, name: str | None, language: str | None, country: str | None) -> None:
    """Find the feed behind URL (an http(s) feed, sitemap, or page advertising its feed) and add it.

    A URL that feeds.yaml lists already, or that leads there (redirects, a configured page's feed), is
    refused. After a permanent redirect (301/308) the new URL is the one stored."""
    from newswatch.cli.feedfile import find_feed

    config = ctx.config
    feeds_file = config.config_dir / "feeds.yaml"
    url = _checked_url(url)
    # Before fetching: a listed feed that is down now is still listed.
    if _configured(config, [url]):
        raise NewswatchError(f"{url} is already in {feeds_file}")
    found = find_feed(url, utc_now(), config.settings.crawler)
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
@pass_context
def import_opml(ctx: CliContext, opml_file: Path) -> None:
    """Add the feeds of an OPML file (those not configured yet).

    Reads xmlUrl (any case) and what `feeds export` adds (id, kind, country, enabled); outlines with no
    http(s) xmlUrl are skipped and counted."""
    from newswatch.cli.feedfile import parse_opml

    opml = parse_opml(opml_file.read_bytes(), str(opml_file))
    added, already = _add_to_config(ctx.config, opml.feeds, str(opml_file))
    for feed in added:
        click.echo(f"added {feed.id}: {feed.url}")
    for reason in opml.skipped:
        click.echo(f"skipped {reason}")
    summary = f"{len(added)} added, {len(already)} already configured"
    if opml.skipped:
        summary += f", {len(opml.skipped)} skipped: no usable xmlUrl"
    click.echo(summary)


@feeds.command("export")
@pass_context
def export_opml(ctx: CliContext) -> None:
    """Print the configured feeds as OPML 2.0 (id, kind, country, enabled as newswatch: attributes)."""
    from newswatch.cli.feedfile import to_opml

    sys.stdout.write(to_opml(ctx.config.feeds, utc_now()))


@feeds.command("status")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array.")
@pass_context
def status(ctx: CliContext, as_json: bool) -> None:
    """Per feed: health, last success, last error, items seen, next due time (UTC).

    Health is ok, failing (n) after n failures in a row, UNHEALTHY from 5, never polled or disabled."""
    with ctx.open_store() as store:
        states = store.all_feed_states()
    rows = status_rows(ctx.config.feeds, states, utc_now())
    if as_json:
        click.echo(json.dumps(rows, ensure_ascii=False, indent=2))
        return
    headers = ("id", "health", "last success", "last error", "fails", "items seen", "next due")
    cells = []
    for r in rows:
        error = f"{_utc(r['last_error_at'])} {r['last_error']}" if r["last_error"] else ""
        health = f"failing ({r['consecutive_failures']})" if r["health"] == Health.FAILING else r["health"]
        cells.append(
            (
                r["id"],
                health,
                _utc(r["last_success"]) or "never",
                error,
                str(r["consecutive_failures"]),
                str(r["items_seen"]),
                "now" if r["due_now"] else _utc(r["next_due"]),
            )
        )
    click.echo(box_table(headers, cells, width=Console().width, wrap=headers.index("last error")), nl=False)
    unhealthy = sum(r["health"] == Health.UNHEALTHY for r in rows)
    failing = sum(r["health"] == Health.FAILING for r in rows)
    due = sum(r["due_now"] for r in rows)
    click.echo(f"{len(rows)} feeds, {unhealthy} unhealthy, {failing} failing, {due} due now")


def box_table(headers: Sequence[str], rows: Sequence[Sequence[str]], *, width: int, wrap: int) -> str:
    """The text of a table drawn as rich's default Table box draws it (heavy head, one line per row), made
    directly: rich took about 1.2 ms a row to lay a table out, 6 s for `feeds status` at 5,000 feeds. Cells
    are printed as they are (no console markup). A table wider than ``width`` first narrows the other
    columns down to their longest word (a time wraps as its date over its hour, a header over two lines),
    then column ``wrap`` (down to 10, a longer word cut); cells wrap at spaces."""

    def span(text: str) -> int:  # the columns a text takes on a terminal (2 a character in wide scripts)
        return len(text) if text.isascii() else cell_len(text)

    columns = [[h, *(row[i] for row in rows)] for i, h in enumerate(headers)]
    widths = [max(map(span, cells)) for cells in columns]
    excess = sum(widths) + 3 * len(widths) + 1 - width
    if excess > 0:  # the other columns first, those with the most to give first, down to their longest word
        words = [max((span(w) for cell in cells for w in cell.split()), default=1) for cells in columns]
        for i in sorted((i for i in range(len(widths)) if i != wrap), key=lambda i: words[i] - widths[i]):
            cut = min(excess, widths[i] - words[i])
            widths[i] -= max(cut, 0)
            excess -= max(cut, 0)
    if excess > 0:
        widths[wrap] = max(widths[wrap] - excess, min(widths[wrap], 10))

    def line(left: str, fill: str, between: str, right: str) -> str:
        return left + between.join(fill * (w + 2) for w in widths) + right

    def cells(row: Sequence[str], edge: str) -> list[str]:
        parts = [
            (textwrap.wrap(cell, w, break_on_hyphens=False) or [""]) if span(cell) > w else [cell]
            for cell, w in zip(row, widths, strict=True)
        ]
        lines = []
        for n in range(max(len(p) for p in parts)):
            texts = (p[n] if n < len(p) else "" for p in parts)
            padded = (f" {t}{' ' * (w - span(t))} " for t, w in zip(texts, widths, strict=True))
            lines.append(edge + edge.join(padded) + edge)
        return lines

    out = [line("┏", "━", "┳", "┓"), *cells(headers, "┃"), line("┡", "━", "╇", "┩")]
    for row in rows:
        out += cells(row, "│")
    out.append(line("└", "─", "┴", "┘"))
    return "\n".join(out) + "\n"


def _utc(stamp: str | None) -> str:
    """An ISO time of a status row as ``2026-11-04 09:15 UTC`` (the zone said, so that it is not read as local)."""
    return datetime.fromisoformat(stamp).strftime("%Y-%m-%d %H:%M UTC") if stamp else ""
