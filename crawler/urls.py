"""Canonical article URLs and the stable article ids derived from them."""

from __future__ import annotations

import functools
import hashlib
import re
from urllib.parse import parse_qsl, urlsplit, urlunsplit

from w3lib.url import canonicalize_url, url_query_cleaner

# Query parameters that only track where a click came from: two URLs differing only in these are the
# same article. Compared case-insensitively; entries ending in "_" are prefixes (utm_source, utm_medium...).
TRACKING_PARAMS = frozenset(
    {
        "utm_",
        "fbclid",
        "gclid",
        "dclid",
        "gbraid",
        "wbraid",
        "msclkid",
        "yclid",
        "twclid",
        "igshid",
        "mc_cid",
        "mc_eid",
        "_ga",
        "_gl",
        "_hsenc",
        "_hsmi",
        "mkt_tok",
        "oly_anon_id",
        "oly_enc_id",
        "vero_id",
        "ref_src",
        "ref_url",
        "cmpid",
        "ocid",
        "at_medium",
        "at_campaign",
        "xtor",  # AT Internet's click tag, on many French-language outlets' feed links ("?xtor=RSS-3")
        "jsessionid",  # session ids, in the query or (below) the path: one per visitor, not per article
        "phpsessid",
        "sr_share",
        "ns_source",
        "ns_mchannel",
        "ns_campaign",
    }
)
_TRACKING_PREFIXES = tuple(p for p in TRACKING_PARAMS if p.endswith("_"))
_DEFAULT_PORTS = {"http": 80, "https": 443}
# Host prefixes of a site's own desktop, mobile and AMP editions: a canonical link across them stays on site.
_SAME_SITE_PREFIXES = frozenset({"www", "m", "mobile", "amp"})
_PATH_SESSION = re.compile(r";jsessionid=[^/?#;]*", re.IGNORECASE)  # Java servlets' ".../a.html;jsessionid=..."


def is_tracking_param(name: str) -> bool:
    """Return True when the query parameter ``name`` is a click-tracking parameter (see TRACKING_PARAMS)."""
    lowered = name.lower()
    return lowered in TRACKING_PARAMS or lowered.startswith(_TRACKING_PREFIXES)


def _normalised_netloc(scheme: str, netloc: str) -> str:
    """Lower-case the host and drop the scheme's default port; keep user info as given."""
    userinfo, _, hostport = netloc.rpartition("@")
    parts = urlsplit(f"//{hostport}")
    host = (parts.hostname or "").rstrip(".")
    try:
        port = parts.port
    except ValueError:
        # An unparsable port ("host:abc") is left alone rather than guessed at.
        return netloc.lower()
    if ":" in host:  # IPv6 literal: hostname strips the brackets
        host = f"[{host}]"
    if port is not None and port != _DEFAULT_PORTS.get(scheme):
        host = f"{host}:{port}"
    return f"{userinfo}@{host}" if userinfo else host


def canonical_url(url: str) -> str:
    """Return the canonical form of ``url`` used to recognise the same article under different URLs.

    Lower-cases scheme and host, drops the default port, the fragment (unless it is a "#!" route), session
    ids and tracking parameters (TRACKING_PARAMS), sorts the remaining query parameters and normalises
    percent-encoding (w3lib ``canonicalize_url``). Never raises: a string that is not an http(s) URL, or
    one too malformed to split, comes back stripped and otherwise unchanged.
    """
    url = url.strip()
    try:
        parts = urlsplit(url)
        scheme = parts.scheme.lower()
        if scheme not in _DEFAULT_PORTS or not parts.netloc:
            return url
        netloc = _normalised_netloc(scheme, parts.netloc)
    except ValueError:  # urllib refuses some malformed hosts ("http://[oops/x": an unclosed IPv6 bracket)
        return url
    path = _PATH_SESSION.sub("", parts.path) or "/"
    # A "#!" fragment (hashbang) names the article on sites that route in the browser; others only scroll.
    hashbang = parts.fragment if parts.fragment.startswith("!") else ""
    url = urlunsplit((scheme, netloc, path, parts.query, hashbang))
    tracking = [name for name, _ in parse_qsl(parts.query, keep_blank_values=True) if is_tracking_param(name)]
    if tracking:
        url = url_query_cleaner(url, tracking, remove=True, unique=False, keep_fragments=bool(hashbang))
    try:
        return canonicalize_url(url, keep_fragments=bool(hashbang))
    except ValueError:
        # w3lib refuses some malformed URLs (a non-numeric port): keep the light normalisation above.
        return url


@functools.lru_cache(maxsize=16_384)  # an entry's id is needed 4 times in a crawl: seen set, selection, store
def article_id(url: str) -> str:
    """Return the stable id of the article at ``url``: the sha1 hex digest of its canonical URL."""
    return hashlib.sha1(canonical_url(url).encode("utf-8")).hexdigest()


def _site(url: str) -> str:
    try:
        host = (urlsplit(url).hostname or "").lower()
    except ValueError:  # a malformed host is no site
        return ""
    first, dot, rest = host.partition(".")
    return rest if dot and first in _SAME_SITE_PREFIXES and "." in rest else host


def preferred_url(declared: str | None, fetched: str) -> str:
    """The canonical URL to store for a page fetched from ``fetched`` that declares ``declared`` as its
    ``<link rel="canonical">``: the declared one when plausible, else the fetched one (both canonicalised).

    Plausible means on the same site (``www.``, ``m.``, ``mobile.``, ``amp.`` aside) and not the site's home
    page: some sites point every article's canonical link at their home page or at another domain, which
    would merge distinct articles.
    """
    if declared:
        candidate = canonical_url(declared)
        site = _site(candidate)
        parts = urlsplit(candidate) if site else None
        if parts and parts.scheme in _DEFAULT_PORTS and site == _site(fetched) and parts.path not in ("", "/"):
            return candidate
    return canonical_url(fetched)
