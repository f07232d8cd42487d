"""`newswatch search`: the stored articles that hold some words, or that a watch matched, one row per story
(alerts.search finds them, as it does for the web page); ``--watch NAME`` with no query lists that watch's
hits, newest found first (NAME as a query names a watch: its name in any case or any spelling; another is
an error); ``--json`` prints the stories as plain text with the offsets of the highlighted words."""

from __future__ import annotations

import json
import re
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

import click
from rich.console import Console
from rich.table import Table
from rich.text import Text

from newswatch.cli.group import CliContext, pass_context
from newswatch.core.errors import NewswatchError
from newswatch.core.models import Article, Fragment
from newswatch.core.times import aware, iso, utc_now

if TYPE_CHECKING:
    from alerts.search import Story


@click.command()
@click.argument("query", required=False)
@click.option("--since", help="Only articles published since, e.g. 24h, 7d, 2026-11-01.")
@click.option(
    "--watch",
    help="Only articles with a hit of this watch (its name or a spelling); without QUERY: its hits, newest first.",
)
@click.option("--limit", default=20, show_default=True, help="Most stories to show.")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array of stories instead of a table.")
@pass_context
def search(ctx: CliContext, query: str | None, since: str | None, watch: str | None, limit: int, as_json: bool) -> None:
    """Full-text search of stored articles (or --watch NAME: a watch's hits), one row per story.

    QUERY is words that must all appear, "a phrase", one OR other, -word (without it), word* (a prefix);
    case, accents and Arabic letter forms do not matter. A QUERY naming a watch or one of its spellings
    also finds every spelling of that watch."""
    query = (query or "").strip()
    if not query and not watch:
        raise NewswatchError("search: give a QUERY, or --watch NAME to list a watch's hits")
    cutoff = parse_since(since)
    watches = ctx.config.watches
    from alerts.search import resolve_watch, search_stories, watch_stories

    name = resolve_watch(watches, watch, str(ctx.config.config_dir / "watches.yaml")).name if watch else None

    with ctx.open_store() as store:
        if query:
            stories = search_stories(store, watches, query, since=cutoff, watch=name, limit=limit)
        else:
            stories = watch_stories(store, name, since=cutoff, limit=limit)
    print_stories(stories, as_json, by_found=not query)


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


def article_json(article: Article) -> dict:
    """The fields of one copy of a story in the JSON output."""
    return {
        "id": article.id,
        "url": article.url,
        "title": article.title,
        "outlet": article.outlet,
        "language": article.language,
        "published": iso(article.published),
    }


def story_json(story: Story) -> dict:
    """A JSON-ready record of one story: its lead copy's title, link and outlet, every outlet and copy, the
    watches it matched, and its fragments as plain text with ``marks`` (character offsets, end exclusive)."""
    lead = story.lead
    record = {
        "id": story.key,
        "title": lead.title,
        "url": lead.url,
        "outlet": lead.outlet,
        "language": lead.language,
        "published": iso(lead.published),
        "score": story.score,
        "watches": list(story.watches),
        "outlets": list(dict.fromkeys(a.outlet for a in story.copies)),
        "articles": [{**article_json(a), "in_results": a.id in story.in_results} for a in story.copies],
        "fragments": [{"text": f.text, "marks": [list(mark) for mark in f.marks]} for f in story.fragments],
    }
    if story.found is not None:
        record["found"] = iso(story.found)
    return record


def highlighted(fragment: Fragment) -> Text:
    """A fragment as terminal text, its highlighted words in bold."""
    text = Text()
    for piece, marked in fragment.parts():
        text.append(piece, style="bold" if marked else None)
    return text


def print_stories(stories: list[Story], as_json: bool, *, by_found: bool = False) -> None:
    """Write stories to stdout: a JSON array, or a table as wide as the terminal (one row per story)."""
    if as_json:
        click.echo(json.dumps([story_json(s) for s in stories], ensure_ascii=False, indent=2))
        return
    console = Console()
    if not stories:
        console.print("no stories found")
        return
    table = Table("found" if by_found else "published", "story", show_lines=True)
    for story in stories:
        lead = story.lead
        cell = Text(lead.title or lead.url, style="underline")
        others = [o for o in dict.fromkeys(a.outlet for a in story.copies) if o != lead.outlet]
        cell.append(f"\n{lead.outlet}" + (f"; also {', '.join(others)}" if others else ""), style="dim")
        for fragment in story.fragments:
            cell.append("\n")
            cell.append_text(highlighted(fragment))
        if story.watches:
            cell.append(f"\nwatches: {', '.join(story.watches)}", style="dim")
        when = story.found if by_found else lead.published or lead.fetched
        table.add_row(when.strftime("%Y-%m-%d %H:%M") if when else "", cell)
    console.print(table)
    articles = sum(len(s.in_results) for s in stories)
    console.print(f"{len(stories)} stories ({articles} articles found)")
