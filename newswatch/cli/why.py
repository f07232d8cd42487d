"""`newswatch why URL_OR_ID [WATCH]`: which watches match a stored article and why, and why the others do not.

The article is matched again with the watches configured now (alerts.matching.explain.why): each match says
the spelling found, where that spelling comes from and what allowed it; each other watch says why not (no
spelling of it in the text, excluded by a term, no context word, outside a NEAR window, a rule part missing).
"""

from __future__ import annotations

import dataclasses
import json
from typing import TYPE_CHECKING

import click

from newswatch.cli.group import CliContext, pass_context
from newswatch.cli.search import article_json
from newswatch.core.errors import NewswatchError
from newswatch.core.models import Article

if TYPE_CHECKING:
    from alerts.matching.explain import Explained, Verdict
    from newswatch.core.store import Store

SPANS_SHOWN = 10  # per watch, in the text output


@click.command()
@click.argument("url_or_id")
@click.argument("watch", required=False)
@click.option("--json", "as_json", is_flag=True, help="Print a JSON object instead of text.")
@pass_context
def why(ctx: CliContext, url_or_id: str, watch: str | None, as_json: bool) -> None:
    """Which watches match the stored article URL_OR_ID (its URL or id) and why; why WATCH (or, without it,
    every other watch) does not."""
    from alerts.matching.explain import why as explain
    from alerts.search import named_watch

    watches = ctx.config.watches
    named = named_watch(watches, watch) if watch else None
    name = named.name if named else None
    if watch and name is None:
        raise NewswatchError(f"no watch named {watch!r} in {ctx.config.config_dir / 'watches.yaml'}")
    with ctx.open_store() as store:
        article = find_article(store, url_or_id)
        if article is None:
            raise NewswatchError(f"no stored article with the id or URL {url_or_id!r}")
        stored = list(dict.fromkeys(hit.watch for hit in store.hits_for_articles([article.id])))
    verdicts = explain(watches, article)
    shown = [v for v in verdicts if v.watch == name] if name else verdicts
    if as_json:
        record = {
            "article": article_json(article),
            "verdicts": [verdict_json(v) for v in shown],
            "stored_hits": stored,
        }
        click.echo(json.dumps(record, ensure_ascii=False, indent=2))
        return
    click.echo(article.title or "(no title)")
    when = article.published.strftime("%Y-%m-%d %H:%M UTC") if article.published else "undated"
    click.echo(f"{article.url} · {article.outlet} · {article.language or '?'} · {when} · id {article.id}")
    matched = [v for v in shown if v.matched]
    others = [v for v in shown if not v.matched]
    if matched:
        click.echo(f"\nmatched ({len(matched)}):")
        for verdict in matched:
            click.echo(f"  {verdict.watch}")
            for span in verdict.spans[:SPANS_SHOWN]:
                click.echo(f"    {span_line(span)}")
            if len(verdict.spans) > SPANS_SHOWN:
                click.echo(f"    (+{len(verdict.spans) - SPANS_SHOWN} more)")
    if others:
        click.echo(f"\nnot matched ({len(others)}):")
        for verdict in others:
            click.echo(f"  {verdict.watch}: {verdict.reason}")
    if name:
        also = [v.watch for v in verdicts if v.matched and v.watch != name]
        click.echo(f"\nalso matched: {', '.join(also) if also else 'no other watch'}")
    now = {v.watch for v in verdicts if v.matched}
    if set(stored) != now:
        listed = ", ".join(stored) if stored else "none"
        click.echo(f"\nstored hits (from when it was matched; the watches have changed since?): {listed}")


def find_article(store: Store, url_or_id: str) -> Article | None:
    """The stored article with this id, or at this URL (its id is the hash of its canonical URL)."""
    from crawler.urls import article_id

    value = url_or_id.strip()
    found = store.get_article(value)
    if found is None and "://" in value:
        found = store.get_article(article_id(value))
    return found


def span_line(span: Explained) -> str:
    """One explained span: where, as written, the spelling and its source, how derived, what allowed it."""
    spelling = f"spelling {span.spelling!r}" + (f" ({span.source})" if span.source else "")
    derived = f", {span.derived}" if span.derived else ""
    return f"{span.field} {span.start}-{span.end} {span.matched!r}: {spelling}{derived}; {span.reason}"


def verdict_json(verdict: Verdict) -> dict:
    """A verdict as JSON: watch, matched, kind and reason (why not), spans and rejected (each explained)."""
    return {
        "watch": verdict.watch,
        "matched": verdict.matched,
        "kind": verdict.kind,
        "reason": verdict.reason,
        "spans": [dataclasses.asdict(s) for s in verdict.spans],
        "rejected": [dataclasses.asdict(s) for s in verdict.rejected],
    }
