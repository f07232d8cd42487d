"""Read one document from a file path or an http(s) URL, for the one-shot CLI commands (not the crawler)."""

from __future__ import annotations

import http.client
import urllib.error
import urllib.request
import zlib
from pathlib import Path
from typing import NamedTuple

from w3lib.url import safe_url_string

from newswatch.core.config.settings import CrawlerSettings
from newswatch.core.errors import FeedError
from newswatch.core.web import web_url

_PERMANENT = (301, 308)


class Fetched(NamedTuple):
    body: bytes
    url: str  # after redirects
    content_type: str | None
    permanent_url: str  # the URL asked for, or where permanent (301/308) redirects say it now lives


def fetch_bytes(source: str, limits: CrawlerSettings) -> tuple[bytes, str]:
    """The body of a local file or URL and the URL to resolve relative links against; a URL is fetched with
    the crawler's User-Agent and ``limits``. Raises FeedError with one line saying why (missing file, HTTP
    status, network error).
    """
    if not source.strip().lower().startswith(("http://", "https://")):
        path = Path(source)
        try:
            return path.read_bytes(), path.resolve().as_uri()
        except OSError as exc:
            raise FeedError(f"{source}: cannot read ({exc.strerror})") from None
    fetched = fetch_url(source, limits)
    return fetched.body, fetched.url


class _TooManyRedirects(Exception):
    pass


class _Redirects(urllib.request.HTTPRedirectHandler):
    """Follows at most ``limit`` redirects, noting each hop (status, target)."""

    def __init__(self, limit: int):
        self.limit = limit
        self.hops: list[tuple[int, str]] = []
        # urllib's own loop check would answer first, in three lines: let the limit above decide.
        self.max_repeats = self.max_redirections = limit + 1

    def redirect_request(self, req, fp, code, msg, headers, newurl):
        if len(self.hops) >= self.limit:
            fp.close()  # urllib closes a redirect's answer only when the redirect is followed
            raise _TooManyRedirects
        self.hops.append((code, newurl))
        return super().redirect_request(req, fp, code, msg, headers, newurl)


def _decoded(body: bytes, encoding: str | None, url: str, max_bytes: int) -> bytes:
    """The body without its Content-Encoding (urllib leaves gzip to the caller), at most ``max_bytes``."""
    encoding = (encoding or "").strip().lower()
    if encoding not in ("gzip", "x-gzip", "deflate"):
        return body
    # 32 + 15: a gzip or zlib header, detected; -15: raw deflate, which some servers send as "deflate".
    for wbits in (47, -15) if encoding == "deflate" else (47,):
        inflater = zlib.decompressobj(wbits=wbits)
        try:
            plain = inflater.decompress(body, max_bytes + 1)
        except zlib.error as exc:
            error = exc
            continue
        if len(plain) > max_bytes:
            raise FeedError(f"{url}: body larger than {max_bytes} bytes once decompressed (compression bomb?)")
        if not inflater.eof:
            raise FeedError(f"{url}: the {encoding} body is cut short")
        return plain
    raise FeedError(f"{url}: cannot decompress the {encoding} body ({error})") from None


def fetch_url(url: str, limits: CrawlerSettings) -> Fetched:
    """GET ``url`` (http or https only) as the crawler would: its User-Agent, timeout, body size and redirect
    limits. Raises FeedError with one line naming the URL and saying why not."""
    try:
        web_url(url)
    except ValueError as exc:
        raise FeedError(f"{url}: {exc}") from None
    user_agent, timeout = limits.user_agent, limits.download_timeout
    max_bytes, max_redirects = limits.max_body_bytes, limits.max_redirects
    redirects = _Redirects(max_redirects)
    opener = urllib.request.build_opener(redirects)
    try:
        # Percent-encoded as browsers and Scrapy do: http.client takes ASCII only (Arabic paths and queries).
        request = urllib.request.Request(safe_url_string(url), headers={"User-Agent": user_agent})
        with opener.open(request, timeout=timeout) as response:
            body = response.read(max_bytes + 1)
            if len(body) > max_bytes:
                raise FeedError(f"{url}: body larger than {max_bytes} bytes")
            body = _decoded(body, response.headers.get("Content-Encoding"), response.geturl(), max_bytes)
            final, content_type = response.geturl(), response.headers.get("Content-Type")
    except _TooManyRedirects:
        raise FeedError(f"{url}: too many redirects (more than {max_redirects})") from None
    except urllib.error.HTTPError as exc:
        exc.close()  # it holds the connection's socket, which would otherwise be left to the garbage collector
        where = f" (at {exc.url})" if exc.url and exc.url != url else ""
        raise FeedError(f"{url}: HTTP {exc.code} {' '.join(str(exc.reason).split())}{where}") from None
    except (urllib.error.URLError, TimeoutError, OSError) as exc:
        raise FeedError(f"{url}: cannot fetch ({getattr(exc, 'reason', exc)})") from None
    except (ValueError, http.client.InvalidURL) as exc:  # urllib's and http.client's checks of the URL
        raise FeedError(f"{url}: not a valid URL ({exc})") from None
    except http.client.HTTPException as exc:  # a broken answer: truncated body, bad status line...
        raise FeedError(f"{url}: cannot fetch (bad HTTP answer: {type(exc).__name__} {exc})") from None
    permanent = url
    for code, target in redirects.hops:
        if code not in _PERMANENT:
            break
        permanent = target
    return Fetched(body, final, content_type, permanent)
