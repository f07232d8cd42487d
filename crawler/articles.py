"""Build the stored Article from a feed entry and what was extracted from its page (pure functions)."""

from __future__ import annotations

from datetime import datetime

from crawler.extract import extract_article
from crawler.language import detect_language
from crawler.urls import article_id, canonical_url, preferred_url
from newswatch.core.config.feeds import Feed
from newswatch.core.models import Article, FeedEntry


def entry_article_id(entry: FeedEntry) -> str:
    """The id an entry's article is stored under: a hash of the canonical form of the feed's link."""
    return article_id(entry.link)


def article_from_page(feed: Feed, entry: FeedEntry, html: str, url: str, now: datetime) -> Article:
    """The article extracted from its page; raises ExtractionError when the page holds no main text."""
    extracted = extract_article(html, url, feed.id)
    return Article(
        id=entry_article_id(entry),
        url=preferred_url(extracted.canonical_url, url),
        title=extracted.title or entry.title,
        text=extracted.text,
        feed_id=feed.id,
        outlet=feed.name,
        published=entry.published or extracted.published,  # the feed has the time; pages often only the day
        fetched=now,
        language=extracted.language or feed.language,
        author=extracted.author or entry.author or None,
        source="page",
    )


def article_from_entry(feed: Feed, entry: FeedEntry, now: datetime) -> Article:
    """The stand-in article made of the feed item's own title and summary, when the page is unavailable;
    its language is detected from that text, the feed's configured language as the fallback."""
    return Article(
        id=entry_article_id(entry),
        url=canonical_url(entry.link),
        title=entry.title,
        text=entry.summary,
        feed_id=feed.id,
        outlet=feed.name,
        published=entry.published,
        fetched=now,
        language=detect_language(f"{entry.title}\n{entry.summary}", feed.language),
        author=entry.author or None,
        source="feed",
    )
