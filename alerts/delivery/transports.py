"""Transports that hand a queued digest over: .eml files in a folder (the `outbox` method), or an SMTP server."""

from __future__ import annotations

import logging
import os
import re
import smtplib
import ssl
import tempfile
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from email import message_from_bytes, policy
from email.utils import getaddresses, parseaddr
from pathlib import Path
from typing import Protocol

from newswatch.core.config.settings import DeliverySettings, SmtpSettings
from newswatch.core.errors import DeliveryFailed
from newswatch.core.models import QueuedDigest

log = logging.getLogger(__name__)


class Transport(Protocol):
    """Where digests go. ``session()`` opens one connection for a batch; its ``send`` raises DeliveryFailed."""

    def session(self) -> AbstractContextManager[TransportSession]:
        """Open the destination for a batch of sends; raises DeliveryFailed when it cannot be reached."""


class TransportSession(Protocol):
    def send(self, digest: QueuedDigest) -> Path | None:
        """Deliver one digest; returns the file written (outbox) or None; raises DeliveryFailed."""


def eml_name(digest: QueuedDigest) -> str:
    """``<created timestamp>-<recipient>-<short id>.eml``: the same digest always gets the same name."""
    stamp = digest.created.strftime("%Y%m%dT%H%M%SZ")
    who = re.sub(r"[^A-Za-z0-9._-]+", "-", digest.recipient).strip("-.")[:40] or "recipient"
    short = re.sub(r"[^A-Za-z0-9]", "", digest.id.strip("<>").split("@")[0].removeprefix("nw."))[:10]
    return f"{stamp}-{who}-{short}.eml"


class EmlFolderTransport:
    """Writes each digest as an .eml file (temp file + rename, so a reader never sees half a message)."""

    def __init__(self, folder: Path):
        self.folder = Path(folder)

    @contextmanager
    def session(self) -> Iterator[EmlFolderTransport]:
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise DeliveryFailed(f"outbox {self.folder}: {exc.strerror or exc}") from None
        yield self

    def send(self, digest: QueuedDigest) -> Path:
        """Write the digest's message; rewriting the same digest replaces the file with identical bytes."""
        target = self.folder / eml_name(digest)
        try:
            fd, temp = tempfile.mkstemp(dir=self.folder, prefix=".tmp-", suffix=".eml")
            try:
                with os.fdopen(fd, "wb") as out:
                    out.write(digest.message)
                    out.flush()
                    os.fsync(out.fileno())
                os.replace(temp, target)
            except BaseException:
                Path(temp).unlink(missing_ok=True)
                raise
        except OSError as exc:
            raise DeliveryFailed(f"outbox {self.folder}: {exc.strerror or exc}") from None
        return target


class SmtpTransport:
    """Sends with smtplib over plain, STARTTLS or implicit-TLS connections, with AUTH when credentials are set."""

    def __init__(self, settings: SmtpSettings, *, username: str | None = None, password: str | None = None):
        self.settings = settings
        self.username, self.password = username, password

    def _tls_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context(cafile=self.settings.ca_file)
        if not self.settings.verify:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        return context

    def _connect(self) -> smtplib.SMTP:
        s = self.settings
        if s.security == "tls":
            client: smtplib.SMTP = smtplib.SMTP_SSL(s.host, s.port, timeout=s.timeout, context=self._tls_context())
        else:
            client = smtplib.SMTP(s.host, s.port, timeout=s.timeout)
        try:
            client.ehlo()
            if s.security == "starttls":
                client.starttls(context=self._tls_context())
                client.ehlo()
            if self.username and self.password:
                client.login(self.username, self.password)
        except BaseException:
            client.close()
            raise
        return client

    @contextmanager
    def session(self) -> Iterator[_SmtpSession]:
        where = f"{self.settings.host}:{self.settings.port}"
        try:
            client = self._connect()
        except (smtplib.SMTPException, OSError) as exc:
            raise DeliveryFailed(f"SMTP {where}: {_reason(exc)}") from None
        try:
            yield _SmtpSession(client, where)
        finally:
            try:
                client.quit()
            except (smtplib.SMTPException, OSError):
                client.close()


class _SmtpSession:
    def __init__(self, client: smtplib.SMTP, where: str):
        self.client, self.where = client, where

    def send(self, digest: QueuedDigest) -> None:
        """Send the stored bytes unchanged, so a resend carries the same Message-ID."""
        headers = message_from_bytes(digest.message, policy=policy.default)
        sender = parseaddr(str(headers.get("From", "")))[1]
        recipients = [addr for _, addr in getaddresses([str(v) for v in headers.get_all("To", [])]) if addr]
        if not sender or not recipients:
            raise DeliveryFailed(f"digest {digest.id}: message has no From or To address")
        try:
            refused = self.client.sendmail(sender, recipients, digest.message)
        except (smtplib.SMTPException, OSError) as exc:
            raise DeliveryFailed(f"SMTP {self.where}: {_reason(exc)}") from None
        if refused:
            log.warning("digest_partly_refused digest=%s refused=%s", digest.id, ",".join(refused))


def _reason(exc: BaseException) -> str:
    """One line saying why: the server's reply when there is one, else the OS error."""
    if isinstance(exc, smtplib.SMTPResponseException):
        text = exc.smtp_error.decode(errors="replace") if isinstance(exc.smtp_error, bytes) else str(exc.smtp_error)
        return f"{exc.smtp_code} {' '.join(text.split())}"
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        return "all recipients refused: " + ", ".join(exc.recipients)
    return " ".join(str(exc).split()) or type(exc).__name__


def make_transport(settings: DeliverySettings, *, root: Path, username: str | None, password: str | None) -> Transport:
    """The transport the settings ask for; ``root`` resolves a relative .eml folder."""
    if settings.method == "smtp":
        return SmtpTransport(settings.smtp, username=username, password=password)
    folder = Path(settings.outbox_dir)
    return EmlFolderTransport(folder if folder.is_absolute() else root / folder)
