"""Why a request failed, and whether it may pass; and what is not worth downloading at all (content types,
private addresses)."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
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


IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


def private_kind(address: IPAddress) -> str | None:
    """What makes ``address`` one the crawler must not reach unasked (loopback, private, link-local, multicast,
    reserved, unspecified, or otherwise not globally routable, e.g. 100.64.0.0/10), or None for a public one.
    An IPv4 address embedded in IPv6 (``::ffff:127.0.0.1``, 6to4) is judged as that IPv4 address."""
    if isinstance(address, ipaddress.IPv6Address):
        embedded = address.ipv4_mapped or address.sixtofour
        if embedded is not None:
            return private_kind(embedded)
    for kind in ("loopback", "link_local", "multicast", "unspecified", "private", "reserved"):
        if getattr(address, f"is_{kind}"):
            return kind.replace("_", "-")
    return None if address.is_global else "not globally routable"


def ip_literal(host: str) -> IPAddress | None:
    """The address a URL's host spells (``127.0.0.2``, ``::1`` or ``[::1]``), or None for a host name."""
    try:
        return ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return None


def _host_key(host: str) -> str:
    """A host as compared with the listed ones: lower-case ASCII (a requested URL's host is in punycode), no
    trailing dot, an address in its short form."""
    address = ip_literal(host)
    if address is not None:
        return str(address)
    host = host.lower().rstrip(".")
    try:
        return host.encode("idna").decode("ascii")
    except UnicodeError:
        return host


@dataclass(frozen=True)
class AddressPolicy:
    """Which private addresses the crawler may reach: those of a host the user listed (the host of a configured
    feed URL, as written), and those ``crawler.allow_private_hosts`` allows (host names, matched as written;
    addresses and CIDR networks, matched against the address a request goes to)."""

    hosts: frozenset[str] = frozenset()
    networks: tuple[IPNetwork, ...] = ()

    @classmethod
    def of(cls, feed_hosts: Iterable[str] = (), allowed: Iterable[str] = ()) -> AddressPolicy:
        """The policy for these feed hosts and allow_private_hosts entries."""
        hosts, networks = {_host_key(h) for h in feed_hosts if h}, []
        for entry in allowed:
            try:
                networks.append(ipaddress.ip_network(entry.strip("[]"), strict=False))
            except ValueError:
                hosts.add(_host_key(entry))
        return cls(frozenset(hosts), tuple(networks))

    def listed(self, host: str) -> bool:
        """True when requests to ``host`` (a URL's host) are not checked at all: the user named it."""
        return _host_key(host) in self.hosts

    def refusal(self, host: str, address: IPAddress) -> str | None:
        """Why a request to ``host``, reaching ``address``, is refused; None when it may go."""
        if self.listed(host):
            return None
        kind = private_kind(address)
        if kind is None or any(address in network for network in self.networks):
            return None
        return f"private address {address} ({kind})"


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
