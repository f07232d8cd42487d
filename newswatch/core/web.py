"""Checks of values that come from users and from the web: http(s) URLs and language tags."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

# The language of a tag as pages, feeds, OPML files and users write it: two letters, then subtags or a
# locale's charset (en-US, ar_SY, en_US.UTF-8, de_DE@euro).
_LANGUAGE_TAG = re.compile(r"([A-Za-z]{2})(?:[-_.@][^\s]*)?")


def web_url(value: str) -> str:
    """``value`` (stripped) as an http(s) URL with a lower-case scheme; ValueError saying why it is not one."""
    value = value.strip()
    scheme, sep, rest = value.partition("://")
    if not sep or scheme.lower() not in ("http", "https"):
        raise ValueError("must start with http:// or https://")
    try:
        host = urlsplit(value).hostname
    except ValueError as error:  # "http://[oops/rss": not even a request could be made of it
        raise ValueError(f"not a valid URL ({error})") from None
    if not host:
        raise ValueError("has no host name")
    return f"{scheme.lower()}://{rest}"


def language_code(tag: str | None) -> str | None:
    """The ISO 639-1 code of a language tag such as ``"en-GB"``, ``"ar_SY"`` or ``"en_US.UTF-8"`` (lower
    case); None when ``tag`` is empty or names no two-letter language ("Arabic", "und", a three-letter code)."""
    found = _LANGUAGE_TAG.fullmatch(tag.strip()) if tag else None
    return found.group(1).lower() if found else None
