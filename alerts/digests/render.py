"""Digest → RenderedEmail (subject, plain text, HTML with inlined CSS) → EmailMessage with a stable Message-ID."""

from __future__ import annotations

import hashlib
import unicodedata
from dataclasses import dataclass
from datetime import datetime
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime, parseaddr
from functools import lru_cache
from pathlib import Path
from zoneinfo import ZoneInfo

import css_inline
from jinja2 import Environment, FileSystemLoader, StrictUndefined

from alerts.digests.build import Digest
from newswatch.core.times import aware

TEMPLATES = Path(__file__).with_name("templates")


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


def subject_for(digest: Digest) -> str:
    """What is inside, e.g. 'Deir Ezzor 3 · Daesh 2 — newswatch, 4 Nov 2017'."""
    day = _local(digest.generated, digest.timezone).strftime("%-d %b %Y")
    counts = " · ".join(f"{s.watch} {s.story_count}" for s in digest.sections)
    return header_safe(f"{counts or 'Nothing new'} — newswatch, {day}")


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
    return env


def _local(moment: datetime, zone: str) -> datetime:
    return aware(moment).astimezone(ZoneInfo(zone))


def _format_time(moment: datetime | None, zone: str = "UTC") -> str:
    return _local(moment, zone).strftime("%-d %b %Y %H:%M") if moment else "unknown"


_INLINER = css_inline.CSSInliner(load_remote_stylesheets=False)


def render_digest(digest: Digest, *, preview_note: str = "") -> RenderedEmail:
    """Render both alternatives from the template files; CSS is inlined so mail clients keep the styling."""
    subject = subject_for(digest)
    env = _environment()
    values = {"digest": digest, "subject": subject, "zone": digest.timezone, "preview_note": preview_note}
    html = _INLINER.inline(env.get_template("digest.html.j2").render(values))
    text = env.get_template("digest.txt.j2").render(values)
    return RenderedEmail(subject=subject, text=text, html=html)


def message_id_for(recipient: str, hit_keys: tuple[str, ...], sender: str, generated: datetime) -> str:
    """A Message-ID derived from what the digest carries, so re-rendering after a crash gives the same one."""
    domain = parseaddr(sender)[1].rpartition("@")[2] or "newswatch.localhost"
    # An empty digest carries no hit; its period start keeps two empty digests apart.
    basis = "\n".join([recipient, *sorted(hit_keys)] if hit_keys else [recipient, generated.isoformat()])
    return f"<nw.{hashlib.sha256(basis.encode()).hexdigest()[:32]}@{header_safe(domain)}>"


def build_message(
    rendered: RenderedEmail, *, sender: str, to_name: str, to_email: str, message_id: str, date: datetime
) -> EmailMessage:
    """A multipart/alternative message (text first, HTML preferred) whose headers come from trusted values."""
    message = EmailMessage()
    name, address = parseaddr(sender)
    message["From"] = Address(display_name=header_safe(name), addr_spec=address)
    message["To"] = Address(display_name=header_safe(to_name), addr_spec=to_email)
    message["Subject"] = header_safe(rendered.subject)
    message["Date"] = format_datetime(aware(date))
    message["Message-ID"] = message_id
    # RFC 3834: tells auto-responders not to answer a machine-generated digest.
    message["Auto-Submitted"] = "auto-generated"
    # Quoted-printable keeps the message 7-bit clean: servers without 8BITMIME relay it unchanged.
    message.set_content(rendered.text, cte="quoted-printable")
    message.add_alternative(rendered.html, subtype="html", cte="quoted-printable")
    return message
