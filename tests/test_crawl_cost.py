"""What the crawler's speed-ups (docs/benchmarks.md, "Crawling") must not change: answers, stored data, safety."""

from __future__ import annotations

import asyncio
import hashlib
from datetime import UTC, datetime
from pathlib import Path

import pycld2
import pytest
from scrapy.utils.misc import is_generator_with_return_value
from trafilatura.metadata import extract_metadata
from trafilatura.utils import load_html

from crawler.charset import decode_html
from crawler.clusters import Clusterer, signature
from crawler.extract import DATE_OPTIONS, extract_file, page_metadata
from crawler.language import detect_language
from crawler.pipelines import StorePipeline
from crawler.spiders.feeds import FeedsSpider
from newswatch.core.errors import ExtractionError
from newswatch.core.models import Article
from newswatch.core.store.sqlite import SqliteStore
from tests.conftest import DEMO_SITE, FIXTURES

NOW = datetime(2026, 11, 20, tzinfo=UTC)
ARABIC = (
    "أعلن الجيش السوري استعادة السيطرة على كامل مدينة دير الزور بعد معارك عنيفة مع تنظيم داعش، فيما تواصل قوات "
    "سوريا الديمقراطية تقدمها شرق نهر الفرات نحو البوكمال قرب الحدود العراقية. "
) * 2


def _pages() -> list[Path]:
    return sorted(
        [*DEMO_SITE.rglob("*.html"), *(FIXTURES / "site").rglob("*.html"), *(FIXTURES / "articles").glob("*.html")]
    )


def _article_texts() -> list[str]:
    texts = []
    for page in _pages():
        try:
            texts.append(extract_file(page)["text"])
        except ExtractionError:  # index pages and stubs have no article
            continue
    return texts


def test_language_from_the_bounded_prefix_is_that_of_a_longer_one():
    """Language is scored on the text's opening only; on the project's articles, read from every 300th
    character on, a longer sample gives the same answer."""
    texts = _article_texts()
    assert len(texts) >= 10
    checked = 0
    for text in texts:
        for start in range(0, max(1, len(text) - 600), 300):
            sample = text[start:]
            reliable, _, ((_, lang, _, _), *_) = pycld2.detect(sample[:4_000], isPlainText=True)
            if reliable and len(lang) == 2:  # a clear answer from the long sample
                assert detect_language(sample) == lang, sample[:80]
                checked += 1
    assert checked >= 50


def test_signatures_are_unchanged_so_stored_ones_still_compare():
    """The store keeps signatures across crawls: the MinHash of a text must stay the same value."""
    english = (FIXTURES / "matching" / "seed-afp-2017-11-04.txt").read_text(encoding="utf-8")
    # Values of the first implementation (slice-per-shingle, one numpy view per band).
    assert hashlib.sha1(signature(english).tobytes()).hexdigest() == "d6dbf1d321a88dca837b15874b1ebaaa0cc13296"
    assert hashlib.sha1(signature(ARABIC).tobytes()).hexdigest() == "b3ec657decf4ff7bfc021a22a700ea39c61ec0ea"
    assert signature("word " * 29) is None and signature("word " * 30) is not None  # MIN_WORDS exactly


def test_metadata_is_what_trafilatura_finds():
    """The crawler's metadata pass skips the fields it does not store; title, author and date stay
    trafilatura's own (this fails when a trafilatura upgrade changes how it finds them)."""
    pages = _pages()
    assert len(pages) >= 15
    for page in pages:
        for url in (None, "https://news.example/2017/11/04/story.html"):
            tree = load_html(decode_html(page.read_bytes()))
            ours, theirs = page_metadata(tree, url), extract_metadata(tree, url, DATE_OPTIONS)
            assert (ours.title, ours.author, ours.date) == (theirs.title, theirs.author, theirs.date), page.name


@pytest.mark.parametrize("name", ["parse_source", "parse_article", "article_failed", "source_failed"])
def test_spider_callbacks_do_not_return_values_from_generators(name: str):
    """Scrapy's own check of this runs per response, so it is off (crawler/settings.py); it runs here."""
    assert not is_generator_with_return_value(getattr(FeedsSpider, name))


def _article(n: int) -> Article:
    return Article(id=f"a{n}", url=f"https://a.example/{n}", title=f"T{n}", text=ARABIC, feed_id="f", outlet="F")


def test_signatures_are_stored_before_their_articles(tmp_path: Path):
    """The signatures clustered so far are written once per store batch, and before it: a stored article
    never lacks its signature after a crash."""
    visible: list[int] = []

    class Recording(SqliteStore):
        def add_articles(self, batch):
            visible.append(sum(len(self.similar_signatures(a.id, None, (), NOW)) for a in batch))
            return super().add_articles(batch)

    store = Recording(tmp_path / "newswatch.db")
    clusterer = Clusterer(store, NOW)
    pipeline = StorePipeline(store, batch_size=2, signatures=clusterer.take_new)

    async def crawl():
        for n in range(2):
            clusterer.assign(f"a{n}", f"https://a.example/{n}", ARABIC)
            assert store.similar_signatures(f"a{n}", None, (), NOW) == []  # pending until the batch is written
            await pipeline.process_item(_article(n))

    asyncio.run(crawl())
    assert visible == [2] and store.count_articles() == 2
    store.close()
