"""Main text and metadata of an article page, with trafilatura (text, title, author) and htmldate (date)."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, time
from pathlib import Path
from typing import Any
from urllib.parse import urljoin

from htmldate import find_date
from lxml.html import HtmlElement
from trafilatura import bare_extraction
from trafilatura.metadata import examine_meta, extract_author, extract_meta_json, extract_title, extract_url
from trafilatura.settings import Document, use_config
from trafilatura.utils import load_html

from crawler.charset import decode_html
from crawler.language import detect_language
from newswatch.core.errors import ExtractionError
from newswatch.core.times import parse_utc

log = logging.getLogger(__name__)

# Speed notes (the crawl budget is >= 70 pages/s for decode + extract; ~100-170 pages/s on the demo pages):
# - fast=True skips the fallback extractors (readability, jusText) and the recall retry: ~1.3-1.5x faster
#   with the same text on ordinary article pages. Only when it finds nothing is the full run paid for.
# - include_comments=False: a little faster, and comments are not article text.
# - favor_precision / favor_recall change what is kept more than the speed; neither is set (balanced).
# - deduplicate stays False: it is ~3x slower and its process-wide cache would drop a page seen before,
#   which breaks re-extracting the same page.
# - with_metadata=False, and page_metadata() below instead: trafilatura's metadata pass also works out the site
#   name, categories, tags and licence, which are not stored (~0.4 ms a page).
# Fewer characters than this is a stub, an error page or a bare menu, not an article (trafilatura's
# default of 1 would accept a lone nav label).
MIN_TEXT_CHARS = 50
_CONFIG = use_config()
_CONFIG.set("DEFAULT", "MIN_OUTPUT_SIZE", str(MIN_TEXT_CHARS))
_TRAFILATURA_OPTIONS: dict[str, Any] = {
    "config": _CONFIG,
    "with_metadata": False,
    "include_comments": False,
    "include_tables": True,
    "deduplicate": False,
}
# The markup-only date pass (cheap); htmldate's extensive text-pattern search runs only when it finds
# nothing (_text_date). The output format keeps a time and zone the markup states (08:12:00Z stays 08:12,
# not midnight); a date alone comes back as midnight without a zone, read as UTC.
DATE_FORMAT = "%Y-%m-%dT%H:%M:%S%z"
DATE_OPTIONS = {"original_date": True, "extensive_search": False, "outputformat": DATE_FORMAT}
# The extraction libraries log their complaints without the page they concern ("ERROR trafilatura.utils
# parsed tree length: 0, wrong data type or not valid HTML"): during an extraction their records are held
# back and told in a line of ours, with the URL and the feed (see _library_messages).
_LIBRARIES = ("trafilatura", "htmldate", "justext")


class _Held(logging.Handler):
    """Keeps the WARNING-and-above messages the extraction libraries log, in order, without repeats."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.errors: dict[str, None] = {}
        self.warnings: dict[str, None] = {}

    def emit(self, record: logging.LogRecord) -> None:
        kept = self.errors if record.levelno >= logging.ERROR else self.warnings
        with contextlib.suppress(Exception):  # a library's broken format string must not break extraction
            kept[f"{record.name.partition('.')[0]}: {' '.join(record.getMessage().split())}"] = None

    def summary(self) -> str:
        """``trafilatura: message; trafilatura: message`` of the errors held, "" when there were none."""
        return "; ".join(self.errors)


@contextlib.contextmanager
def _library_messages() -> Iterator[_Held]:
    """Hold back what the extraction libraries log while the block runs (their loggers stop propagating)."""
    held = _Held()
    loggers = [logging.getLogger(name) for name in _LIBRARIES]
    saved = [logger.propagate for logger in loggers]
    for logger in loggers:
        logger.addHandler(held)
        logger.propagate = False
    try:
        yield held
    finally:
        for logger, propagate in zip(loggers, saved, strict=True):
            logger.removeHandler(held)
            logger.propagate = propagate


@dataclass(frozen=True)
class Extracted:
    """What a page says about its article: main text and metadata (``published`` is UTC-aware)."""

    title: str
    text: str
    published: datetime | None = None
    language: str | None = None
    author: str | None = None
    canonical_url: str | None = None


def _text_date(tree: HtmlElement, url: str | None) -> datetime | None:
    """htmldate's extensive search (bylines, text patterns) for a page whose markup states no date."""
    found = parse_utc(find_date(tree, extensive_search=True, original_date=True, outputformat=DATE_FORMAT, url=url))
    # With nothing better, htmldate returns the footer's copyright year (or a bare year) as 1 January: such a
    # guess is worse than no date, since the feed's own date would then be overridden.
    if found is not None and (found.month, found.day) == (1, 1):
        log.debug("date_discarded reason=year_only date=%s url=%s", found.date(), url)
        return None
    return found


# Where pages state their publication time in markup (Open Graph, schema.org microdata, <time>).
_STATED_TIMES = (
    "//meta[@property='article:published_time' or @name='article:published_time' or @itemprop='datePublished'"
    " or @name='pubdate' or @name='publishdate']/@content | //time[@datetime]/@datetime"
)


def with_stated_time(found: datetime | None, tree: HtmlElement) -> datetime | None:
    """``found`` with the time the markup states for that day, when it is midnight: htmldate dates a page by
    the /2017/11/04/ of its URL first, which has no time, though its meta says 08:12:00Z."""
    if found is None or found.time() != time():
        return found
    for value in tree.xpath(_STATED_TIMES):
        value = str(value).strip()
        try:
            local = datetime.fromisoformat(value)
        except ValueError:
            continue
        if "T" in value and local.date() == found.date() and (stated := parse_utc(value)) is not None:
            return stated
    return found


def page_metadata(tree: HtmlElement, url: str | None) -> Document:
    """Title, author and date as trafilatura's ``extract_metadata`` finds them (same steps, same order),
    without the fields newswatch does not keep (tests/test_crawl_cost.py compares the two)."""
    document = examine_meta(tree)
    if document.author and " " not in document.author:  # trafilatura's rule: one word is not a name
        document.author = None
    try:
        document = extract_meta_json(tree, document)
    except Exception as error:  # trafilatura guards its JSON-LD reader the same way
        log.debug("metadata_json_failed error=%s url=%s", error, url)
    document.title = document.title or extract_title(tree)
    document.author = document.author or extract_author(tree)
    document.url = document.url or extract_url(tree, url)
    document.date = find_date(tree, url=document.url, **DATE_OPTIONS)
    document.clean_and_trim()
    return document


def _canonical_link(tree: HtmlElement, url: str) -> str | None:
    """The page's ``<link rel="canonical">`` target, made absolute against ``url`` when one is given."""
    for link in tree.iterfind(".//link[@rel]"):
        href = (link.get("href") or "").strip()
        if href and "canonical" in link.get("rel", "").lower().split():
            try:
                return urljoin(url, href) if url else href
            except ValueError:  # a malformed link ("http://[oops/x"): the page's own URL serves instead
                log.debug("canonical_malformed url=%s link=%s", url, href)
                return None
    return None


def _declared_language(tree: HtmlElement) -> str | None:
    """The ``lang`` (or ``xml:lang``) attribute of the ``<html>`` element, if any."""
    root = tree.getroottree().getroot()
    return root.get("lang") or root.get("{http://www.w3.org/XML/1998/namespace}lang")


def extract_article(html: str, url: str, feed: str | None = None) -> Extracted:
    """Extract the article in ``html`` (a decoded page; see ``crawler.charset.decode_html``).

    ``url`` is where the page came from ("" when unknown); it resolves a relative canonical link and
    helps date detection. Language is detected offline from the text, falling back to ``<html lang>``.
    Raises ExtractionError when the page has no main text; its reason ends with the errors trafilatura
    logged, if any. What the libraries log is never a line of its own: errors of an extraction that
    succeeded anyway are one ``extract_warning`` line with ``feed`` (the feed id) and the URL, their
    warnings (``discarding data`` when a pass finds too little text...) a debug line.
    """
    feed, failure = feed or "-", None
    with _library_messages() as held:
        try:
            extracted = _extract(html, url)
        except ExtractionError as error:
            failure = error
    if held.warnings:
        log.debug("extract_library_warnings feed=%s url=%s messages=%s", feed, url, "; ".join(held.warnings))
    if failure is not None:  # the caller logs the one line, with this reason
        raise ExtractionError(f"{failure} ({held.summary()})" if held.errors else str(failure))
    if held.errors:
        log.warning("extract_warning feed=%s url=%s reason=%s", feed, url, held.summary())
    return extracted


def _extract(html: str, url: str) -> Extracted:
    # Parse once: trafilatura copies a tree it is given, so the same tree also serves htmldate and the
    # canonical/lang look-ups below.
    tree = load_html(html)
    if tree is None:
        raise ExtractionError(f"no article text found in {url or 'the page'}: not an HTML page")
    source_url = url or None
    document = bare_extraction(tree, url=source_url, fast=True, **_TRAFILATURA_OPTIONS)
    if document is None or not document.text:
        log.debug("extract_retry_full url=%s", url)
        document = bare_extraction(tree, url=source_url, fast=False, **_TRAFILATURA_OPTIONS)
    if document is None or not (document.text or "").strip():
        raise ExtractionError(f"no article text found in {url or 'the page'}")
    meta = page_metadata(tree, source_url)  # trafilatura worked on a copy: the tree is still the whole page

    return Extracted(
        title=(meta.title or "").strip(),
        text=document.text.strip(),
        published=with_stated_time(parse_utc(meta.date) or _text_date(tree, source_url), tree),
        language=detect_language(document.text, _declared_language(tree)),
        author=meta.author or None,
        canonical_url=_canonical_link(tree, url),
    )


def extract_file(path: str | Path) -> dict[str, Any]:
    """Extract the article saved in the HTML file ``path``; return the JSON-ready record of the CLI contract.

    Keys: ``file``, ``title``, ``text``, ``published`` (ISO 8601 or None), ``language``, ``author``,
    ``canonical_url``. Raises ExtractionError when the file cannot be read or has no article text.
    """
    path = Path(path)
    try:
        body = path.read_bytes()
    except OSError as error:
        raise ExtractionError(f"cannot read {path}: {error.strerror or error}") from None
    try:
        article = extract_article(decode_html(body, None), "")
    except ExtractionError:
        raise ExtractionError(f"no article text found in {path}") from None
    return {
        "file": str(path),
        "title": article.title,
        "text": article.text,
        "published": article.published.isoformat() if article.published else None,
        "language": article.language,
        "author": article.author,
        "canonical_url": article.canonical_url,
    }
