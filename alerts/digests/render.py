"""Digest → RenderedEmail (subject, plain text, HTML with inlined CSS) → EmailMessage with a stable Message-ID."""

from __future__ import annotations

import base64
import email.policy
import hashlib
import unicodedata
from dataclasses import dataclass
from datetime import datetime
from email.headerregistry import Address, HeaderRegistry, UnstructuredHeader
from email.message import EmailMessage
from email.policy import Policy
from email.utils import format_datetime, parseaddr
from functools import lru_cache
from pathlib import Path
from zoneinfo import ZoneInfo

import css_inline
from jinja2 import Environment, FileSystemLoader, StrictUndefined

from alerts.digests.build import Digest, DigestCounts, FeedHealth, Trend
from newswatch.core.times import aware

TEMPLATES = Path(__file__).with_name("templates")
SUBJECT_LIMIT = 70  # characters: what an inbox list or a phone shows before it cuts the line
# The counts a queued message carries, read back by `outbox list` (alerts.delivery.queue) and the logs.
COUNT_HEADERS = {
    "stories": "X-Newswatch-Stories",
    "articles": "X-Newswatch-Articles",
    "mentions": "X-Newswatch-Mentions",
    "watches": "X-Newswatch-Watches",
    "updates": "X-Newswatch-Updates",
}
BAR_MAX_PX = 32  # the tallest bar of a 14-day chart; an empty day is a 2 px baseline, a day with no data none
SPARKS = "▁▂▃▄▅▆▇█"
NO_DATA = "–"  # a chart day before the watch's first mention on record (the text part's count and bar)


@dataclass(frozen=True)
class RenderedEmail:
    """The three user-visible parts of a digest message."""

    subject: str
    text: str
    html: str


def header_safe(value: str, limit: int = 200) -> str:
    """One line fit for a mail header: every control character (CR, LF, tab, NUL...) becomes a space."""
    cleaned = "".join(" " if unicodedata.category(ch)[0] in "CZ" else ch for ch in value)
    cleaned = " ".join(cleaned.split())
    return cleaned if len(cleaned) <= limit else cleaned[: limit - 1] + "…"


def plural(count: int, one: str, many: str) -> str:
    """``1 story``, ``3 stories``."""
    return f"{count} {one if count == 1 else many}"


def news_count(stories: int, updates: int) -> str:
    """'4 new stories', '4 new stories, 1 update', '1 update': updates of stories sent earlier said apart."""
    parts = [plural(stories, "new story", "new stories")] if stories or not updates else []
    return ", ".join([*parts, *([plural(updates, "update", "updates")] if updates else [])])


def headline(counts: DigestCounts) -> str:
    """'4 new stories for 9 watches' (then ' · 1 update'): the top of both parts, and the Apprise note of an
    immediate alert."""
    updates = f" · {plural(counts.updates, 'update', 'updates')}" if counts.updates else ""
    watches = plural(counts.watches, "watch", "watches")
    return f"{plural(counts.stories, 'new story', 'new stories')} for {watches}{updates}"


def source_status(feed: FeedHealth) -> str:
    """'failing (1 failure)', 'failing (3 failures)', 'silent': the same words in both parts."""
    if feed.status != "failing":
        return feed.status
    failures = f" ({plural(feed.consecutive_failures, 'failure', 'failures')})" if feed.consecutive_failures else ""
    return "failing" + failures


def last_success(feed: FeedHealth, zone: str) -> str:
    """'last success 2 Dec 2026 10:00' or 'last success never'."""
    return "last success " + (_format_time(feed.last_success, zone) if feed.last_success else "never")


def subject_for(digest: Digest) -> str:
    """At most SUBJECT_LIMIT characters: the watches with the most stories first, as many as fit, then
    "+N more", the story count and the day, e.g. 'Deir Ezzor, Daesh +3 more: 4 new stories — 2 Dec'."""
    day = _local(digest.generated, digest.timezone).strftime("%-d %b")
    if not digest.stories:
        return f"Nothing new for your watches — {day}"
    tail = f": {news_count(digest.story_count, digest.update_count)} — {day}"
    # sorted() is stable: among watches with as many stories, config order stays.
    names = [header_safe(s.watch) for s in sorted(digest.sections, key=lambda s: -s.story_count)]
    for shown in range(len(names), 0, -1):
        more = f" +{len(names) - shown} more" if shown < len(names) else ""
        subject = ", ".join(names[:shown]) + more + tail
        if len(subject) <= SUBJECT_LIMIT:
            return subject
    more = f" +{len(names) - 1} more" if len(names) > 1 else ""
    room = max(8, SUBJECT_LIMIT - len(more) - len(tail))
    return header_safe(names[0], limit=room) + more + tail


def trend_parts(trend: Trend | None) -> list[tuple[str, str | None]]:
    """A watch's trend line as (text, mark) parts joined by " · " (mark: "new", "up" or None); empty when
    there is nothing true to say. The HTML and the text part render the same parts."""
    if trend is None or not trend.says_something:
        return []
    parts: list[tuple[str, str | None]] = [
        (f"{plural(trend.last_24h, 'article', 'articles')} in the last 24 hours", None)
    ]
    if trend.first_ever:
        parts.append(("first mention on record", "new"))
    elif trend.days_since_previous:
        parts.append((f"first mention in {trend.days_since_previous} days", "new"))
    elif trend.short_history:  # less than a week of history: no average to compare with
        since = next((d.day for d in trend.days if d.articles is not None), None)
        parts.append((f"on record since {since:%-d %b}" if since else "on record for less than a week", None))
    else:
        parts.append((f"7-day average {trend.average_7d:.1f} a day", None))
        if trend.spike:
            parts.append((f"▲ {trend.spike}\N{MULTIPLICATION SIGN} its 7-day average", "up"))
    return parts


def bar_height(articles: int | None, peak: int) -> int:
    """Pixels of one chart bar: proportional to the day's articles, at least 4 px for a day with one; 2 for
    a day with none, 0 for a day with no data."""
    if articles is None:
        return 0
    if not articles or not peak:
        return 2
    return max(4, round(BAR_MAX_PX * articles / peak))


def sparkline(trend: Trend) -> str:
    """The 14 days as block characters (the text part's chart); an empty day is the lowest block, a day with
    no data a dot."""
    peak = trend.peak
    return "".join(
        "·" if d.articles is None else SPARKS[max(1, round(7 * d.articles / peak)) if d.articles else 0]
        for d in trend.days
    )


def day_counts(trend: Trend) -> str:
    """The 14 days' counts, '–' for a day with no data (the text part's line under the sparkline)."""
    return " ".join(NO_DATA if d.articles is None else str(d.articles) for d in trend.days)


def count_headers(counts: DigestCounts) -> dict[str, str]:
    """The X-Newswatch-* headers of a digest message."""
    return {header: str(getattr(counts, name)) for name, header in COUNT_HEADERS.items()}


@lru_cache(maxsize=1)
def _environment() -> Environment:
    env = Environment(
        loader=FileSystemLoader(TEMPLATES),
        # Only the HTML template is escaped; the plain-text part must show titles exactly as written.
        autoescape=lambda name: bool(name and name.endswith(".html.j2")),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters["localtime"] = _format_time
    env.filters["day"] = lambda moment: moment.strftime("%-d %b")
    env.globals.update(
        plural=plural,
        headline=headline,
        trend_parts=trend_parts,
        bar_height=bar_height,
        sparkline=sparkline,
        day_counts=day_counts,
        no_data=NO_DATA,
        source_status=source_status,
        last_success=last_success,
    )
    return env


def _local(moment: datetime, zone: str) -> datetime:
    return aware(moment).astimezone(ZoneInfo(zone))


def _format_time(moment: datetime | None, zone: str = "UTC") -> str:
    return _local(moment, zone).strftime("%-d %b %Y %H:%M") if moment else "unknown"


# keep_at_rules: the dark-mode @media block cannot be inlined; it stays in a <style> for the clients that read
# one (Apple Mail, iOS, Outlook.com). Everything else is inlined, so a client that strips <style> (Gmail)
# shows the light layout, chart included.
_INLINER = css_inline.CSSInliner(load_remote_stylesheets=False, keep_at_rules=True)


def render_digest(digest: Digest, *, preview_note: str = "") -> RenderedEmail:
    """Render both alternatives from the template files; CSS is inlined so mail clients keep the styling."""
    subject = subject_for(digest)
    env = _environment()
    values = {
        "digest": digest,
        "counts": digest.counts,
        "anchors": {section.watch: section.anchor for section in digest.sections},
        "subject": subject,
        "zone": digest.timezone,
        "preview_note": preview_note,
    }
    html = _INLINER.inline(env.get_template("digest.html.j2").render(values))
    text = env.get_template("digest.txt.j2").render(values)
    return RenderedEmail(subject=subject, text=text, html=html)


def message_id_for(recipient: str, hit_keys: tuple[str, ...], sender: str, generated: datetime) -> str:
    """A Message-ID derived from what the digest carries, so re-rendering after a crash gives the same one."""
    domain = parseaddr(sender)[1].rpartition("@")[2] or "newswatch.localhost"
    # An empty digest carries no hit; its period start keeps two empty digests apart.
    basis = "\n".join([recipient, *sorted(hit_keys)] if hit_keys else [recipient, generated.isoformat()])
    return f"<nw.{hashlib.sha256(basis.encode()).hexdigest()[:32]}@{header_safe(domain)}>"


class _SubjectHeader(UnstructuredHeader):
    """A Subject that parses back exactly as built, whatever policy serializes the message.

    The standard folder can break the line after a space and put an encoded word on the next one, which
    reads back with two spaces ("4 new stories  — 2 Dec"). This one keeps the subject on one line of at
    most 998 characters (RFC 5322) when it is ASCII, and otherwise writes it as UTF-8 encoded words of at
    most 75 characters (RFC 2047), one a line: the folding between encoded words is dropped on reading, so
    every space is inside one of them.
    """

    max_count = 1

    def fold(self, *, policy: Policy) -> str:
        value = str(self)
        if (value.isascii() or getattr(policy, "utf8", False)) and "=?" not in value and len(value) < 990:
            return f"{self.name}: {value}{policy.linesep}"
        words, chunk = [], ""
        for ch in value:
            if len((chunk + ch).encode()) > _ENCODED_BYTES:
                words.append(chunk)
                chunk = ""
            chunk += ch
        words.append(chunk)
        encoded = [f"=?utf-8?b?{base64.b64encode(word.encode()).decode()}?=" for word in words]
        return f"{self.name}: " + f"{policy.linesep} ".join(encoded) + policy.linesep


_ENCODED_BYTES = 42  # of UTF-8 per encoded word: 56 base64 characters, 68 with =?utf-8?b? ?=; lines under 78
_HEADERS = HeaderRegistry()
_HEADERS.map_to_type("subject", _SubjectHeader)
# The message keeps this policy's header classes; its Subject folds itself (_SubjectHeader) under any policy
# the caller serializes with (alerts.run uses email.policy.SMTP).
MESSAGE_POLICY = email.policy.SMTP.clone(header_factory=_HEADERS)


def build_message(
    rendered: RenderedEmail,
    *,
    sender: str,
    to_name: str,
    to_email: str,
    message_id: str,
    date: datetime,
    counts: DigestCounts | None = None,
) -> EmailMessage:
    """A multipart/alternative message (text first, HTML preferred) whose headers come from trusted values;
    with ``counts``, the X-Newswatch-* headers `outbox list` reads back."""
    message = EmailMessage(policy=MESSAGE_POLICY)
    name, address = parseaddr(sender)
    message["From"] = Address(display_name=header_safe(name), addr_spec=address)
    message["To"] = Address(display_name=header_safe(to_name), addr_spec=to_email)
    message["Subject"] = header_safe(rendered.subject)
    message["Date"] = format_datetime(aware(date))
    message["Message-ID"] = message_id
    # RFC 3834: tells auto-responders not to answer a machine-generated digest.
    message["Auto-Submitted"] = "auto-generated"
    for header, value in (count_headers(counts) if counts else {}).items():
        message[header] = value
    # Quoted-printable keeps the message 7-bit clean: servers without 8BITMIME relay it unchanged.
    message.set_content(rendered.text, cte="quoted-printable")
    message.add_alternative(rendered.html, subtype="html", cte="quoted-printable")
    return message
