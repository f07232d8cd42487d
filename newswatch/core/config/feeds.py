"""config/feeds.yaml: the news sources to crawl (docs/configuration.md)."""

from __future__ import annotations

import hashlib
import re
import unicodedata
from typing import Literal

from pydantic import Field, field_validator

from newswatch.core.config.fields import Strict, refuse_credentials, refuse_duplicates
from newswatch.core.web import language_code, web_url

# newswatch reads public feeds, and a feed's URL is written in log lines, feeds list/status and OPML exports.
CREDENTIALS_IN_FEED_URL = (
    "a user name or password in a feed URL is refused: newswatch reads public feeds only, "
    "and the URL is written to logs and exports"
)


class Feed(Strict):
    """One news source."""

    name: str = Field(min_length=1, description="Outlet name shown in digests.")
    url: str = Field(description="Feed, sitemap or home-page URL (http or https).")
    id: str = Field("", description="Stable id used in logs and state; derived from the name when empty.")
    kind: Literal["rss", "atom", "sitemap", "page", "auto"] = Field(
        "auto", description="Source type; auto detects RSS/Atom/sitemap from the body."
    )
    language: str | None = Field(None, description="ISO 639-1 language the outlet mostly publishes in.")
    country: str | None = Field(None, description="ISO 3166 country code of the outlet.")
    enabled: bool = Field(True, description="Set false to keep a feed listed without polling it.")

    @field_validator("url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        return refuse_credentials(web_url(value), reason=CREDENTIALS_IN_FEED_URL)

    # The language is the fallback of every article's detected language, and both appear in digests: a
    # name ("Arabic") would pass silently into every article it is used for.
    @field_validator("language")
    @classmethod
    def _language_code(cls, value: str | None) -> str | None:
        # A region form (en-US, fr_FR) is read as its language.
        if value is not None and language_code(value) is None:
            raise ValueError("must be a two-letter ISO 639-1 code, such as ar, en or fr")
        return language_code(value)

    @field_validator("country")
    @classmethod
    def _country_code(cls, value: str | None) -> str | None:
        if value is not None and not re.fullmatch(r"[A-Za-z]{2}", value.strip()):
            raise ValueError("must be a two-letter ISO 3166-1 code, such as SY, IQ or FR")
        return value.strip().upper() if value is not None else None

    def model_post_init(self, _context: object) -> None:
        if not self.id:
            # Ids appear in logs, file names and commands: keep them ASCII (Libération -> liberation).
            ascii_name = unicodedata.normalize("NFKD", self.name).encode("ascii", "ignore").decode()
            slug = re.sub(r"[^a-z0-9]+", "-", ascii_name.lower()).strip("-")[:60].strip("-")
            self.id = slug or "feed-" + hashlib.sha1(self.url.encode()).hexdigest()[:8]


class FeedList(Strict):
    feeds: list[Feed] = Field(default_factory=list, description="The sources to crawl.")

    @field_validator("feeds")
    @classmethod
    def _unique_ids(cls, feeds: list[Feed]) -> list[Feed]:
        # Ids name the feed's state in the store, its log lines and `crawl --feed`: one differing only in
        # case from another is a typo waiting to happen (and one file on a case-insensitive disk).
        refuse_duplicates(
            feeds,
            where="feeds",
            field="id",
            value=lambda f: f.id,
            key=lambda f: f.id.casefold(),
            why="give one an explicit id (ids are made from the name when not given)",
        )
        return feeds
