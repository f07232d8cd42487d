"""Print search results as a rich table or as JSON (for `newswatch search`)."""

from __future__ import annotations

import html
import json
import re

from rich.console import Console
from rich.table import Table
from rich.text import Text

from newswatch.models import SearchResult


def result_to_json(result: SearchResult) -> dict:
    """A JSON-ready record of one search result."""
    article = result.article
    return {
        "id": article.id, "url": article.url, "title": article.title, "outlet": article.outlet,
        "published": article.published.isoformat() if article.published else None,
        "language": article.language, "score": result.score, "fragments": result.fragments,
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
        print(json.dumps([result_to_json(r) for r in results], ensure_ascii=False, indent=2))
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
