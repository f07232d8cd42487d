"""Read one document from a file path or an http(s) URL, for the one-shot CLI commands (not the crawler)."""

from __future__ import annotations

import urllib.error
import urllib.request
from pathlib import Path

from newswatch.errors import FeedError

USER_AGENT = "newswatch/0.1 (+https://github.com/newswatch)"
MAX_BYTES = 10_000_000


def fetch_bytes(source: str, timeout: float = 20) -> tuple[bytes, str]:
    """The body of a local file or URL and the URL to resolve relative links against.

    Raises FeedError with one line saying why (missing file, HTTP status, network error).
    """
    if not source.startswith(("http://", "https://")):
        path = Path(source)
        try:
            return path.read_bytes(), path.resolve().as_uri()
        except OSError as exc:
            raise FeedError(f"{source}: cannot read ({exc.strerror})") from None
    body, final_url, _ = fetch_url(source, USER_AGENT, timeout)
    return body, final_url


def fetch_url(url: str, user_agent: str, timeout: float = 20) -> tuple[bytes, str, str | None]:
    """GET ``url``: (body, final URL after redirects, Content-Type). Raises FeedError with one line saying why not."""
    request = urllib.request.Request(url, headers={"User-Agent": user_agent})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            body = response.read(MAX_BYTES + 1)
            if len(body) > MAX_BYTES:
                raise FeedError(f"{url}: larger than {MAX_BYTES} bytes")
            return body, response.geturl(), response.headers.get("Content-Type")
    except urllib.error.HTTPError as exc:
        raise FeedError(f"{url}: HTTP {exc.code} {exc.reason}") from None
    except (urllib.error.URLError, TimeoutError, OSError) as exc:
        raise FeedError(f"{url}: cannot fetch ({getattr(exc, 'reason', exc)})") from None
