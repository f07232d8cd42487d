"""`newswatch search`: full-text search of the stored articles, printed as a table or as JSON."""

from __future__ import annotations

import html
import json
import re
from datetime import datetime, timedelta

import click
from rich.console import Console
from rich.table import Table
from rich.text import Text

from newswatch.cli.group import CliContext, pass_context
from newswatch.core.errors import NewswatchError
from newswatch.core.models import SearchResult
from newswatch.core.times import aware, utc_now


@click.command()
@click.argument("query")
@click.option("--since", help="Only articles published since, e.g. 24h, 7d, 2026-11-01.")
@click.option("--watch", help="Only articles with a hit of this watch.")
@click.option("--limit", default=20, show_default=True, help="Most results to show.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@pass_context
def search(ctx: CliContext, query: str, since: str | None, watch: str | None, limit: int, as_json: bool) -> None:
    """Full-text search of stored articles, with highlighted fragments."""

    with ctx.open_store() as store:
        results = store.search(query, since=parse_since(since), watch=watch, limit=limit)
    print_results(results, as_json)


def parse_since(value: str | None, option: str = "--since") -> datetime | None:
    """'24h', '7d', '30m' or an ISO date → an aware datetime; raises NewswatchError (naming ``option``)
    otherwise."""
    if not value:
        return None
    found = re.fullmatch(r"(\d+)\s*([mhdw])", value.strip())
    if found:
        unit = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}[found.group(2)]
        return utc_now() - timedelta(**{unit: int(found.group(1))})
    try:
        return aware(datetime.fromisoformat(value))
    except ValueError:
        raise NewswatchError(f"{option}: expected e.g. 24h, 7d or 2026-11-01, got {value!r}") from None


def result_to_json(result: SearchResult) -> dict:
    """A JSON-ready record of one search result."""
    article = result.article
    return {
        "id": article.id,
        "url": article.url,
        "title": article.title,
        "outlet": article.outlet,
        "published": article.published.isoformat() if article.published else None,
        "language": article.language,
        "score": result.score,
        "fragments": result.fragments,
    }


def highlighted(fragment: str) -> Text:
    """An HTML fragment with <mark> highlights as terminal text, the marked words in bold."""
    text = Text()
    for i, part in enumerate(re.split(r"</?mark>", fragment)):
        text.append(html.unescape(part), style="bold" if i % 2 else None)
    return text


def print_results(results: list[SearchResult], as_json: bool) -> None:
    """Write results to stdout: a JSON array, or a table."""
    if as_json:
        click.echo(json.dumps([result_to_json(r) for r in results], ensure_ascii=False, indent=2))
        return
    console = Console()
    if not results:
        console.print("no articles found")
        return
    table = Table("published", "outlet", "title / fragment", show_lines=True)
    for result in results:
        article = result.article
        cell = Text(article.title, style="underline") + "\n" + highlighted(" … ".join(result.fragments))
        when = article.published.strftime("%Y-%m-%d %H:%M") if article.published else ""
        table.add_row(when, article.outlet, cell)
    console.print(table)
