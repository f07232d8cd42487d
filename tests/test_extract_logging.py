"""What trafilatura logs while it extracts a page is never a line of its own, without page or feed: its
errors end the reason of our one line (crawler.extract.extract_article)."""

from __future__ import annotations

import logging

import pytest

from crawler.extract import extract_article
from newswatch.core.errors import ExtractionError

URL = "http://wire.example/2017/11/05/story.html"
ARTICLE = (
    "<html><body><article><p>"
    + "Deir Ezzor was shelled on Friday, residents said. " * 4
    + "</p></article></body></html>"
)


def _library_records(caplog) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name.partition(".")[0] in ("trafilatura", "htmldate", "justext")]


@pytest.mark.parametrize(
    ("html", "said"),
    [
        (
            "",
            "trafilatura: lxml parsing failed: Document is empty; "
            "trafilatura: lxml parser bytestring Document is empty",
        ),
        ("<p>Mosul</p>", "trafilatura: parsed tree length: 0, wrong data type or not valid HTML"),
        ("<?xml version='1.0'?><rss><channel/></rss>", "trafilatura: parsed tree length: 1, wrong data type"),
    ],
)
def test_trafilatura_errors_become_the_reason_of_the_extraction_error(caplog, html: str, said: str):
    library = logging.getLogger("trafilatura")
    handlers = list(library.handlers)
    with caplog.at_level(logging.DEBUG), pytest.raises(ExtractionError) as error:
        extract_article(html, URL, "wire")
    assert str(error.value).startswith(f"no article text found in {URL}: not an HTML page ({said}")
    assert _library_records(caplog) == []
    assert library.propagate and library.handlers == handlers  # as it was, once the extraction is over


def test_trafilatura_warnings_are_a_debug_line_with_the_feed_and_url(caplog):
    """A page with too little text: trafilatura's two 'discarding data' warnings become one debug line."""
    with caplog.at_level(logging.DEBUG), pytest.raises(ExtractionError) as error:
        extract_article("<html><body><p>Mosul</p></body></html>", URL, "wire")
    assert str(error.value) == f"no article text found in {URL}"
    assert _library_records(caplog) == []
    (line,) = [r.getMessage() for r in caplog.records if r.getMessage().startswith("extract_library_warnings")]
    assert line == f"extract_library_warnings feed=wire url={URL} messages=trafilatura: discarding data: {URL}"


def test_a_good_page_logs_nothing_of_the_libraries(caplog):
    with caplog.at_level(logging.INFO):
        assert "Deir Ezzor" in extract_article(ARTICLE, URL, "wire").text
    assert caplog.records == []
