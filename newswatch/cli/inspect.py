"""`newswatch extract`, `feed`, `match` and `watch explain`: what newswatch makes of one page, feed, text or
watch, without the store (README.md, "Everyday use"; their JSON is a contract, tests/test_cli_contracts.py)."""

from __future__ import annotations

import json
from pathlib import Path

import click

from newswatch.cli.group import EXIT_USER_ERROR, CliContext, pass_context
from newswatch.core.errors import NewswatchError


@click.command()
@click.option("--json", "as_json", is_flag=True, required=True, help="One JSON object per line.")
@click.argument("files", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.pass_context
def extract(ctx: click.Context, as_json: bool, files: tuple[Path, ...]) -> None:
    """Extract title, text, date, language and author from saved HTML pages.

    A page that cannot be read or holds no article is one ``error:`` line on stderr and a record with its
    ``error`` on stdout (so the output keeps one line per file); the others are extracted, then exit 2."""
    from crawler.extract import extract_file

    failed = 0
    for path in files:
        try:
            record = extract_file(path)
        except NewswatchError as exc:
            failed += 1
            record = dict.fromkeys(("title", "text", "published", "language", "author", "canonical_url"))
            record = {"file": str(path), **record, "error": str(exc)}
            message = str(exc)  # it names the file already ("cannot read PATH: ...")
            click.echo(f"error: {message if str(path) in message else f'{path}: {message}'}", err=True)
        click.echo(json.dumps(record, ensure_ascii=False))
    if failed:
        ctx.exit(EXIT_USER_ERROR)


@click.command()
@click.option("--json", "as_json", is_flag=True, required=True, help="Print a JSON array of the items.")
@click.argument("source")
@pass_context
def feed(ctx: CliContext, as_json: bool, source: str) -> None:
    """Parse a feed file or URL and print its items (a URL is fetched with the crawler's User-Agent and
    limits: those of --config when given, else the defaults)."""
    from crawler.parsing.feeds import feed_to_json, parse_feed
    from newswatch.cli.fetch import fetch_bytes
    from newswatch.core.config.settings import CrawlerSettings

    crawler = ctx.config.settings.crawler if ctx.config_dir is not None else CrawlerSettings()
    body, url = fetch_bytes(source, crawler)
    click.echo(json.dumps(feed_to_json(parse_feed(body, url)), ensure_ascii=False, indent=2))


@click.command()
@click.option("--watchlist", type=click.Path(path_type=Path), required=True, help="A watches YAML file.")
@click.option("--json", "as_json", is_flag=True, required=True, help="Print a JSON array of hits.")
@click.option(
    "--explain",
    is_flag=True,
    help="Each hit also says which spelling matched, where it comes from and what allowed it.",
)
@click.argument("text_file", default="-", type=click.File("r", encoding="utf-8"))
def match(watchlist: Path, as_json: bool, explain: bool, text_file) -> None:
    """Find the watches of WATCHLIST in the text of a file (or stdin).

    Each hit is {"watch", "matched", "start", "end"}; with --explain also "spelling" (the spelling it is, as
    listed by `watch explain`), "source" (where that spelling comes from), "reason" (what allowed it: no
    condition, its case, a context word, a rule) and "derived" (how the form found derives from the
    spelling: a joined clitic, a one-word form...; "" when written so)."""
    from alerts.matching.compile import compile_watches
    from alerts.matching.explain import explain_spans
    from newswatch.core.config import validate_file
    from newswatch.core.config.watches import WatchList

    watches = validate_file(watchlist, WatchList).watches
    if not watches:  # a valid list that matches nothing: no hits, and a word saying why
        click.echo(f"warning: {watchlist}: no watches in it, so no hits", err=True)
    text = text_file.read()
    if explain:
        hits = [
            {
                "watch": e.watch,
                "matched": e.matched,
                "start": e.start,
                "end": e.end,
                "spelling": e.spelling,
                "source": e.source,
                "reason": e.reason,
                "derived": e.derived,
            }
            for e in explain_spans(watches, text)
        ]
    else:
        spans = compile_watches(watches).find(text)
        hits = [{"watch": s.watch, "matched": s.matched, "start": s.start, "end": s.end} for s in spans]
    click.echo(json.dumps(hits, ensure_ascii=False, indent=2))


@click.group()
def watch() -> None:
    """Inspect watches."""


@watch.command("explain")
@click.argument("name")
@pass_context
def watch_explain(ctx: CliContext, name: str) -> None:
    """List every spelling watch NAME matches, and where each comes from; then the forms generated from
    them that it matches too (normalized, as the matcher compares them), marked "generated"."""
    from alerts.matching.compile import explain
    from alerts.matching.explain import derived_forms

    found = [w for w in ctx.config.watches if w.name.casefold() == name.casefold()]
    if not found:
        raise NewswatchError(f"no watch named {name!r} in {ctx.config.config_dir / 'watches.yaml'}")
    for spelling, origin in [*explain(found[0]), *derived_forms(found[0])]:
        click.echo(f"{spelling}\t{origin}")
