"""Checks of values that come from users and from the web: http(s) URLs and language tags."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

# A BCP 47 tag as pages, feeds and users write it: a two-letter language, then subtags (en-US, ar_SY).
_LANGUAGE_TAG = re.compile(r"([A-Za-z]{2})(?:[-_][A-Za-z0-9]+)*")


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
    """The ISO 639-1 code of a language tag such as ``"en-GB"`` or ``"ar_SY"`` (lower case); None when
    ``tag`` is empty or not such a tag (a name like "Arabic", a three-letter code)."""
    found = _LANGUAGE_TAG.fullmatch(tag.strip()) if tag else None
    return found.group(1).lower() if found else None
