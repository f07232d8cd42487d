"""Structured logging: one event per line, ``time level logger event key=value ...`` (README.md, "Everyday use")."""

from __future__ import annotations

import logging
import sys

FORMAT = "%(asctime)s %(levelname)s %(name)s %(message)s"
# Scrapy and friends are chatty at INFO; their warnings still come through.
_QUIET = (
    "scrapy",
    "twisted",
    "trafilatura",
    "htmldate",
    "elasticsearch",
    "apscheduler",
    "filelock",
    "charset_normalizer",
    "asyncio",
)
# Held at ERROR, not WARNING: the Elasticsearch transport logs every retry as a warning with a traceback, and
# the store already logs an outage as one line (es_unavailable ... reason=...).
_ERRORS_ONLY = ("elastic_transport",)


# These log every failed download again (with a traceback); the spider already logs each failure once, with
# the feed id and the reason, so they are silenced.
_SILENCED = ("scrapy.downloadermiddlewares.robotstxt", "scrapy.downloadermiddlewares.retry")


def setup_logging(level: str = "INFO", stream=None) -> None:
    """Configure the root logger once for a newswatch process (idempotent)."""
    root = logging.getLogger()
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(logging.Formatter(FORMAT, "%Y-%m-%dT%H:%M:%S%z"))
    for old in [h for h in root.handlers if getattr(h, "_newswatch", False)]:
        root.removeHandler(old)
    handler._newswatch = True  # type: ignore[attr-defined]
    # On the handler too: a crawl's start sets the "scrapy" loggers to DEBUG before quiet_libraries runs
    # again, and the root's level does not filter what child loggers pass up.
    handler.setLevel(level)
    root.addHandler(handler)
    root.setLevel(level)
    quiet_libraries(level)


def quiet_libraries(level: str = "INFO") -> None:
    """Keep library loggers at WARNING or above (Scrapy resets its own to DEBUG when a crawl starts)."""
    for name in _QUIET:
        logging.getLogger(name).setLevel(max(logging.WARNING, logging.getLevelName(level)))
    for name in _ERRORS_ONLY:
        logging.getLogger(name).setLevel(max(logging.ERROR, logging.getLevelName(level)))
    for name in _SILENCED:
        logging.getLogger(name).setLevel(logging.CRITICAL)
