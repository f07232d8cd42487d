"""Why a request failed, and whether it may pass; and the content types not worth downloading at all."""

from __future__ import annotations

from dataclasses import dataclass

from scrapy.exceptions import IgnoreRequest, StopDownload
from twisted.internet.defer import CancelledError
from twisted.internet.error import TimeoutError as TwistedTimeout
from twisted.python.failure import Failure

# Article pages are HTML (XHTML, or XML for a few sites); feeds and sitemaps are XML, or HTML to discover
# a feed from, sometimes labelled text/plain, and gzipped sitemaps come as octet-stream or gzip.
_PAGE_TYPES = ("text/html", "application/xhtml+xml", "text/xml", "application/xml", "text/plain")
_SOURCE_EXTRA = (
    "application/rss+xml",
    "application/atom+xml",
    "application/rdf+xml",
    "application/x-gzip",
    "application/gzip",
    "application/octet-stream",
    "application/x-rss+xml",
)
REFUSAL_META = "newswatch_refusal"  # request meta: why the crawler itself refused the response
BYTES_META = "newswatch_bytes"  # request meta: body bytes received so far


def content_refusal(content_type: bytes | str | None, role: str | None) -> str | None:
    """The reason to refuse a response of this ``Content-Type`` before its body is downloaded, or None.

    ``role`` is "article" for article pages, anything else for feeds and sitemaps; None (a request
    that is not the crawler's, e.g. robots.txt) is never refused. A missing Content-Type is accepted:
    the body decides.
    """
    if role is None or not content_type:
        return None
    if isinstance(content_type, bytes):
        content_type = content_type.decode("latin-1")
    media = content_type.split(";")[0].strip().lower()
    if not media or media in _PAGE_TYPES or media.endswith("+xml"):
        return None
    if role != "article" and media in _SOURCE_EXTRA:
        return None
    return f"content type {media} is not HTML or XML"


@dataclass(frozen=True)
class RequestFailure:
    """Why a request failed or was refused, as one human line, and whether trying later may well succeed."""

    reason: str
    transient: bool


# HTTP statuses that say "not now" rather than "never": the page may appear (a feed often lists an article
# a minute before its page is live), or the server may recover.
_PASSING_STATUSES = frozenset({404, 408, 425, 429})


def classify_failure(
    failure: Failure, *, max_body_bytes: int = 0, timeout: float = 0, max_redirects: int = 0
) -> RequestFailure:
    """What a failed request amounts to. Transient: a 5xx or a "not now" status, a timeout, a network
    error. Lasting: a refusal of the crawler's own (robots.txt, content type, size, redirects), another 4xx."""
    exc = failure.value
    request = getattr(failure, "request", None)
    refusal = request.meta.get(REFUSAL_META) if request is not None else None
    if refusal:
        return RequestFailure(refusal, False)
    if max_body_bytes and request is not None and request.meta.get(BYTES_META, 0) > max_body_bytes:
        # cancelled mid-download: no length was announced
        return RequestFailure(f"body larger than {max_body_bytes} bytes", False)
    response = getattr(exc, "response", None)
    if response is not None:  # before the next test: Scrapy's HttpError is an IgnoreRequest
        return RequestFailure(f"HTTP {response.status}", response.status >= 500 or response.status in _PASSING_STATUSES)
    message = str(exc)
    if isinstance(exc, StopDownload):
        return RequestFailure("download stopped", False)
    if isinstance(exc, IgnoreRequest):
        if "DOWNLOAD_MAXSIZE" in message:
            reason = f"body larger than {max_body_bytes} bytes once decompressed (compression bomb?)"
        elif "redirections" in message:
            reason = f"too many redirects (more than {max_redirects})"
        elif "robots.txt" in message:
            reason = "forbidden by robots.txt"
        else:
            reason = message or "request ignored"
        return RequestFailure(reason, False)
    if "max size" in message:  # Scrapy's size limit cancels the download with this message
        return RequestFailure(f"body larger than {max_body_bytes} bytes", False)
    if isinstance(exc, (TwistedTimeout, TimeoutError)) or "took longer than" in message:
        return RequestFailure(f"timeout after {timeout:g} s", True)
    if isinstance(exc, CancelledError):
        return RequestFailure(f"download cancelled ({message or 'no reason given'})", True)
    return RequestFailure(f"{type(exc).__name__}: {failure.getErrorMessage()}".strip(), True)
