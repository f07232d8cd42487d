"""Decode fetched bytes to text: BOM, then the declared charset, then detection when that is wrong.

``decode_html`` decodes pages; ``xml_as_utf8`` hands feeds and sitemaps to their XML parsers as UTF-8 decided
the same way. A UTF-8 body with a few corrupt bytes stays UTF-8 in both: each bad byte becomes U+FFFD
instead of the whole document being read in a legacy charset.
"""

from __future__ import annotations

import codecs
import logging
import re

import charset_normalizer
from charset_normalizer.md import mess_ratio
from w3lib.encoding import html_body_declared_encoding, http_content_type_encoding, read_bom

log = logging.getLogger(__name__)

# A decoded text whose charset-normalizer "mess" ratio reaches this is mojibake (e.g. Arabic windows-1256
# bytes read as latin-1 give runs like "ÏíÑ ÇáÒæÑ"); clean text in any language scores ~0.
MOJIBAKE_RATIO = 0.2
# Only this many characters are scored: enough to see the body text, and the cost stays flat on big pages.
_SCORED_CHARS = 20_000
# A body is UTF-8 with a few corrupt bytes when it has at most one invalid sequence per this many continuation
# bytes of valid multi-byte characters (and at least one such character). Text in a legacy charset read as
# UTF-8 gives far more invalid sequences than valid characters (Arabic windows-1256, latin-1, even GBK's
# double bytes, which pass as UTF-8 about one time in seven), so the margin is wide.
UTF8_CONTINUATIONS_PER_ERROR = 20
# The encoding pseudo-attribute of an XML declaration, the only one a body may start with.
_XML_ENCODING = re.compile(rb"""^(?:\xef\xbb\xbf)?\s*<\?xml\b[^>]*?\bencoding\s*=\s*(["'])([^"']*)\1""")


def _strict_decode(body: bytes, encoding: str) -> str | None:
    """Decode without replacement characters; None when ``encoding`` is unknown or the bytes do not fit."""
    try:
        return body.decode(encoding)
    except (UnicodeDecodeError, LookupError):
        return None


def _utf8_with_few_errors(body: bytes) -> str | None:
    """Decode a body that is UTF-8 but for a few corrupt bytes (those become U+FFFD); None if it is not.

    Real UTF-8 pages often carry a stray byte from a pasted snippet; handing such a page to detection
    would risk reading the whole of it in a legacy charset. A legacy-charset body, by contrast, yields
    far more invalid bytes than valid multi-byte characters.
    """
    text = body.decode("utf-8", errors="replace")
    invalid = text.count("\ufffd") - body.count(b"\xef\xbf\xbd")  # not the U+FFFD the body itself spells
    multibyte = len(body) - len(text)  # continuation bytes of the valid multi-byte characters
    return text if multibyte > 0 and invalid <= max(1, multibyte // UTF8_CONTINUATIONS_PER_ERROR) else None


def _is_unicode_codec(encoding: str) -> bool:
    """True for UTF-8/16/32: a strict decode that succeeds with these is trustworthy as it is."""
    try:
        return codecs.lookup(encoding).name.startswith("utf")
    except LookupError:
        return False


def _declared_encodings(body: bytes, content_type: str | None) -> list[str]:
    """The charsets the HTTP header and the page itself declare, header first, without repeats."""
    found = [http_content_type_encoding(content_type), html_body_declared_encoding(body)]
    return list(dict.fromkeys(e for e in found if e))


def _looks_garbled(text: str) -> bool:
    """True when ``text`` reads as mojibake (charset-normalizer's mess detector)."""
    return mess_ratio(text[:_SCORED_CHARS], MOJIBAKE_RATIO) >= MOJIBAKE_RATIO


def decode_html(body: bytes, content_type: str | None = None) -> str:
    """Return the text of an HTML page from its raw bytes.

    Order: a byte-order mark wins; then the charset declared by the HTTP ``Content-Type`` header
    (``content_type``, may be None), then by the page's ``<meta>``; a declared charset that does not
    decode, or decodes to mojibake, is skipped. Without a usable declaration the bytes are tried as
    UTF-8 and finally detected with charset-normalizer. Never raises: undecodable bytes become U+FFFD.
    """
    if not body:
        return ""
    bom_encoding, bom = read_bom(body)
    if bom_encoding and bom:
        return body[len(bom) :].decode(bom_encoding, errors="replace")

    declared = _declared_encodings(body, content_type)
    for encoding in declared:
        text = _strict_decode(body, encoding)
        if text is None and encoding == "utf-8":
            text = _utf8_with_few_errors(body)
        if text is None:
            log.info("charset_declared_invalid encoding=%s", encoding)
            continue
        # Any byte string "decodes" in a single-byte charset, so only a mess check catches a wrong label.
        if body.isascii() or _is_unicode_codec(encoding) or not _looks_garbled(text):
            return text
        log.info("charset_declared_garbled encoding=%s", encoding)

    # Valid non-ASCII UTF-8 is almost never an accident, and this is far cheaper than detection.
    text = None if "utf-8" in declared else _strict_decode(body, "utf-8") or _utf8_with_few_errors(body)
    if text is not None:
        if declared:
            log.info("charset_detected encoding=utf-8 declared=%s", ",".join(declared))
        return text
    best = charset_normalizer.from_bytes(body).best()
    if best is not None:
        log.info("charset_detected encoding=%s declared=%s", best.encoding, ",".join(declared) or "-")
        return str(best)
    fallback = declared[0] if declared else "utf-8"
    log.info("charset_undetected fallback=%s", fallback)
    return body.decode(fallback, errors="replace")


def _declared_utf8(body: bytes) -> bytes:
    """``body`` with the encoding its XML declaration names (if it names one) replaced by utf-8."""
    match = _XML_ENCODING.match(body)
    if match is None or match.group(2).lower() in (b"utf-8", b"utf8"):
        return body
    return body[: match.start(2)] + b"utf-8" + body[match.end(2) :]


def xml_as_utf8(body: bytes, content_type: str | None = None) -> bytes:
    """The bytes of a feed or sitemap as its XML parser should read them: UTF-8, its XML declaration saying so.

    Valid non-ASCII UTF-8 is UTF-8 whatever the labels say (it is almost never an accident): such a body is
    kept as it is, but for a declaration naming another charset. A UTF-8 body with a few corrupt bytes
    (``UTF8_CONTINUATIONS_PER_ERROR``) stays UTF-8, each bad byte becoming U+FFFD: without this feedparser,
    finding one invalid byte, reads the whole feed as windows-1252 or iso-8859-2 (and lxml calls a sitemap
    malformed). Any other body is decoded as ``decode_html`` decodes a page (``content_type``'s
    charset, the declaration, detection) and re-encoded. ASCII, and UTF-16/32 with a byte-order mark (which
    the parsers read themselves), are returned unchanged.
    """
    if not body or body.isascii() or body.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE, codecs.BOM_UTF32_BE)):
        return body
    if _strict_decode(body, "utf-8") is not None:
        return _declared_utf8(body)
    text = _utf8_with_few_errors(body)
    if text is None:
        text = decode_html(body, content_type)
    return _declared_utf8(text.encode("utf-8"))
