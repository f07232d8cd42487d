"""Transports that hand a queued digest over: .eml files in a folder (the `outbox` method), or an SMTP server."""

from __future__ import annotations

import contextlib
import logging
import os
import re
import smtplib
import socket
import ssl
import tempfile
import threading
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from email import message_from_bytes, policy
from email.utils import getaddresses, parseaddr
from pathlib import Path
from typing import Protocol

from newswatch.core.config import make_private_dir
from newswatch.core.config.settings import DeliverySettings, SmtpSettings
from newswatch.core.errors import DeliveryFailed
from newswatch.core.models import QueuedDigest

log = logging.getLogger(__name__)


class Transport(Protocol):
    """Where digests go. ``session()`` opens one connection for a batch; its ``send`` raises DeliveryFailed."""

    def session(self) -> AbstractContextManager[TransportSession]:
        """Open the destination for a batch of sends; raises DeliveryFailed when it cannot be reached."""

    def abort(self) -> None:
        """From any thread: end every session now (its sends raise DeliveryFailed) and refuse new ones."""


class TransportSession(Protocol):
    def send(self, digest: QueuedDigest) -> Path | None:
        """Deliver one digest; returns the file written (outbox) or None; raises DeliveryFailed."""

    def abort(self) -> None:
        """From any thread: end this session now; a send in progress and every later one raise DeliveryFailed."""


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
            make_private_dir(self.folder)  # the files hold what digests say: folders it makes are 0700
        except OSError as exc:
            raise DeliveryFailed(f"outbox {self.folder}: {exc.strerror or exc}") from None
        yield self

    def abort(self) -> None:
        """Nothing to end: writing a file takes no time worth interrupting."""

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
    """Sends with smtplib over plain, STARTTLS or implicit-TLS connections, with AUTH when credentials are set.

    ``timeout`` bounds each socket operation; ``deadline_seconds`` bounds the whole of opening a session
    (connect, EHLO, STARTTLS, login), of each send, and of the closing QUIT: a server that answers slowly
    but steadily is cut off then, and that step raises DeliveryFailed. ``abort()`` ends every open session
    at once, from any thread (the service's stop).
    """

    def __init__(self, settings: SmtpSettings, *, username: str | None = None, password: str | None = None):
        self.settings = settings
        self.username, self.password = username, password
        self.where = f"{settings.host}:{settings.port}"
        self._lock = threading.RLock()  # re-entrant: abort() may run in a signal handler
        self._open: set[_SmtpSession] = set()
        self._aborted = False

    def _tls_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context(cafile=self.settings.ca_file)
        if not self.settings.verify:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        return context

    def _connect(self, watchdog: _Watchdog) -> smtplib.SMTP:
        s = self.settings
        timeout = min(s.timeout, s.deadline_seconds)
        if s.security == "tls":
            client: smtplib.SMTP = _WatchedSMTPSSL(
                watchdog, s.host, s.port, timeout=timeout, context=self._tls_context()
            )
        else:
            client = _WatchedSMTP(watchdog, s.host, s.port, timeout=timeout)
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
        """One connection for a batch of sends; DeliveryFailed when it cannot be opened within the deadline."""
        watchdog = _Watchdog()
        session = _SmtpSession(None, self.where, watchdog, self.settings.deadline_seconds)
        with self._lock:
            if self._aborted:
                raise DeliveryFailed(f"SMTP {self.where}: {_ABORTED}")
            self._open.add(session)
        try:
            try:
                with watchdog.deadline(self.settings.deadline_seconds):
                    session.client = self._connect(watchdog)
            except (smtplib.SMTPException, OSError) as exc:
                raise DeliveryFailed(f"SMTP {self.where}: {watchdog.reason or _reason(exc)}") from None
            try:
                yield session
            finally:
                session.quit()
        finally:
            with self._lock:
                self._open.discard(session)
            watchdog.close()

    def abort(self) -> None:
        """Thread-safe: end every open session at once (a read or write blocked on the server returns, and
        that send raises DeliveryFailed; its digest stays queued) and refuse new sessions from now on."""
        with self._lock:
            self._aborted = True
            sessions = list(self._open)
        for session in sessions:
            session.abort()


_ABORTED = "delivery aborted"


class _SmtpSession:
    def __init__(self, client: smtplib.SMTP | None, where: str, watchdog: _Watchdog, deadline: float):
        self.client, self.where = client, where
        self.watchdog, self.deadline = watchdog, deadline

    def send(self, digest: QueuedDigest) -> None:
        """Send the stored bytes unchanged, so a resend carries the same Message-ID."""
        headers = message_from_bytes(digest.message, policy=policy.default)
        sender = parseaddr(str(headers.get("From", "")))[1]
        recipients = [addr for _, addr in getaddresses([str(v) for v in headers.get_all("To", [])]) if addr]
        if not sender or not recipients:
            raise DeliveryFailed(f"digest {digest.id}: message has no From or To address")
        if self.watchdog.reason:  # cut off by a deadline or abort(): this connection is gone
            raise DeliveryFailed(f"SMTP {self.where}: {self.watchdog.reason}")
        assert self.client is not None
        try:
            with self.watchdog.deadline(self.deadline):
                refused = self.client.sendmail(sender, recipients, digest.message)
        except (smtplib.SMTPException, OSError) as exc:
            if self.watchdog.reason:
                raise DeliveryFailed(f"SMTP {self.where}: {self.watchdog.reason}") from None
            raise DeliveryFailed(f"SMTP {self.where}: {_reason(exc)}", permanent=_refused_for_good(exc)) from None
        if refused:
            log.warning("digest_partly_refused digest=%s refused=%s", digest.id, ",".join(refused))

    def abort(self) -> None:
        """Thread-safe: shut the connection down now; a send in progress and every later one fail."""
        self.watchdog.end(_ABORTED)

    def quit(self) -> None:
        """QUIT within the deadline; a connection already cut off (or a server not answering) is just closed."""
        if self.client is None:
            return
        try:
            if self.watchdog.reason:
                raise OSError(self.watchdog.reason)
            with self.watchdog.deadline(self.deadline):
                self.client.quit()
        except (smtplib.SMTPException, OSError):
            self.client.close()


class _Watchdog:
    """Ends one SMTP connection from another thread: when a deadline passes (a ``threading.Timer``) or on
    ``end()``. It shuts down the socket, which wakes a read or write blocked in smtplib (that then raises),
    whether TLS is being negotiated or running. It shuts down its own duplicate of the socket, so a
    descriptor smtplib has closed (and the OS may have reused) is never touched."""

    def __init__(self):
        self._lock = threading.RLock()  # re-entrant: abort() may run in a signal handler
        self._sock: socket.socket | None = None
        self._window: object | None = None  # the deadline running now, if any
        self.reason: str | None = None  # why the connection was ended, once it was

    def watch(self, sock: socket.socket) -> None:
        """The connection's TCP socket, as soon as it is connected (before TLS)."""
        with self._lock:
            self._sock = sock.dup()
            if self.reason:
                self._shutdown()

    def end(self, reason: str, window: object | None = None) -> None:
        """Shut the connection down for ``reason`` (only if ``window`` is still the deadline running)."""
        with self._lock:
            if window is not None and window is not self._window:
                return  # that step finished in time
            self.reason = self.reason or reason
            self._shutdown()

    def _shutdown(self) -> None:
        if self._sock is not None:
            with contextlib.suppress(OSError):  # not connected (any more): nothing blocks on it
                self._sock.shutdown(socket.SHUT_RDWR)

    @contextmanager
    def deadline(self, seconds: float) -> Iterator[None]:
        """The block must finish within ``seconds``, or the connection is shut down under it."""
        window = object()
        reason = f"the server did not finish within {seconds:g} s (delivery.smtp.deadline_seconds)"
        timer = threading.Timer(seconds, self.end, args=(reason, window))
        timer.daemon = True
        with self._lock:
            self._window = window
        timer.start()
        try:
            yield
        finally:
            timer.cancel()
            with self._lock:
                self._window = None

    def close(self) -> None:
        with self._lock:
            sock, self._sock = self._sock, None
        if sock is not None:
            sock.close()


class _WatchedSMTP(smtplib.SMTP):
    """smtplib.SMTP that hands its TCP socket to a watchdog as soon as it is connected."""

    def __init__(self, watchdog: _Watchdog, host: str, port: int, **kwargs):
        self.watchdog = watchdog
        super().__init__(host, port, **kwargs)

    def _get_socket(self, host, port, timeout):
        sock = super()._get_socket(host, port, timeout)  # smtplib.SMTP's: the plain TCP connection
        self.watchdog.watch(sock)
        return sock


class _WatchedSMTPSSL(smtplib.SMTP_SSL, _WatchedSMTP):
    """Implicit TLS: SMTP_SSL wraps the socket _WatchedSMTP connected (and watched), so the handshake is covered."""

    def __init__(self, watchdog: _Watchdog, host: str, port: int, **kwargs):
        self.watchdog = watchdog
        smtplib.SMTP_SSL.__init__(self, host, port, **kwargs)


def _refused_for_good(exc: BaseException) -> bool:
    """A 5xx reply to MAIL, RCPT or DATA: this message will not be taken as it is. 530 (authentication
    required) is the session's, not the message's: set the credentials and it goes."""
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        codes = [code for code, _ in exc.recipients.values()]
        return bool(codes) and all(500 <= code < 600 and code != 530 for code in codes)
    if isinstance(exc, smtplib.SMTPResponseException):
        return 500 <= exc.smtp_code < 600 and exc.smtp_code != 530
    return False


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
