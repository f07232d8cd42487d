"""The SMTP deadline and abort(): a server that answers slowly but steadily (one line a second, so no single
read ever times out) is cut off at `delivery.smtp.deadline_seconds`, and another thread can end a session at
once. Real sockets on 127.0.0.1: a dripping server written here, and aiosmtpd for TLS."""

from __future__ import annotations

import contextlib
import socket
import threading
import time

import pytest

from alerts.delivery.queue import deliver_pending
from alerts.delivery.transports import SmtpTransport
from alerts.run import run_alerts
from newswatch.core.config.settings import SmtpSettings
from newswatch.core.errors import DeliveryFailed
from tests.conftest import run_cli
from tests.plugins.smtp import RecordingHandler
from tests.test_alerts_run import NOW, make_project
from tests.test_deliver import queued, send, transport

DEADLINE = 1.5  # seconds; the drip sends a line a second and the per-read timeout is 3 s, so only it can end a send
SLACK = 2.0  # what the deadline may be overrun by: shutting the connection down and closing it


class DripServer:
    """An SMTP server on 127.0.0.1 that, at ``stage`` ("EHLO" or "DATA": the end of the message), answers
    with a ``250-`` continuation line a second and never the last line. Other commands get a plain 250. It
    gives up by itself after ``give_up`` seconds, so a client that is never cut off fails its test instead
    of hanging the suite. ``closed`` is set when the client has closed the connection."""

    def __init__(self, stage: str = "EHLO", give_up: float = 30):
        self.stage, self.give_up = stage, give_up
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.dripping = threading.Event()
        self.closed = threading.Event()
        self.stopped = threading.Event()
        threading.Thread(target=self._serve, daemon=True).start()

    def settings(self, **overrides) -> dict:
        """The ``smtp`` block pointing at this server."""
        return {"host": "127.0.0.1", "port": self.port, "security": "none", "timeout": 3, **overrides}

    def _serve(self) -> None:
        with contextlib.suppress(OSError):
            while not self.stopped.is_set():
                conn, _ = self.listener.accept()
                threading.Thread(target=self._talk, args=(conn,), daemon=True).start()

    def _drip(self, conn: socket.socket) -> None:
        self.dripping.set()
        started = time.monotonic()
        while time.monotonic() - started < self.give_up and not self.stopped.is_set():
            conn.sendall(b"250-still working on it\r\n")
            time.sleep(1)

    def _talk(self, conn: socket.socket) -> None:
        try:
            with conn, conn.makefile("rb") as lines:
                conn.sendall(b"220 drip.example ESMTP\r\n")
                for line in lines:
                    verb = line[:4].upper()
                    if verb in (b"EHLO", b"HELO"):
                        if self.stage == "EHLO":
                            self._drip(conn)
                            return
                        conn.sendall(b"250-drip.example\r\n250 8BITMIME\r\n")
                    elif verb == b"DATA":
                        conn.sendall(b"354 go ahead\r\n")
                        for body in lines:
                            if body == b".\r\n":
                                break
                        if self.stage == "DATA":
                            self._drip(conn)
                            return
                        conn.sendall(b"250 accepted\r\n")
                    elif verb == b"QUIT":
                        conn.sendall(b"221 bye\r\n")
                        return
                    else:
                        conn.sendall(b"250 OK\r\n")
        except OSError:
            pass  # the client cut the connection: what the deadline is for
        finally:
            self.closed.set()

    def stop(self) -> None:
        self.stopped.set()
        self.listener.close()


@pytest.fixture
def drip_server():
    servers: list[DripServer] = []

    def start(stage: str = "EHLO") -> DripServer:
        servers.append(DripServer(stage))
        return servers[-1]

    yield start
    for server in servers:
        server.stop()


def test_ehlo_dripped_a_line_a_second_fails_at_the_deadline(drip_server):
    """A server sending one `250-` EHLO line a second (each read well within `timeout: 3`) is cut off at the
    deadline: DeliveryFailed, one line naming the server and the deadline, and the connection closed."""
    server = drip_server("EHLO")
    smtp = SmtpTransport(SmtpSettings(**server.settings(deadline_seconds=DEADLINE)))
    started = time.monotonic()
    with pytest.raises(DeliveryFailed) as error:
        send(smtp, queued())
    elapsed = time.monotonic() - started
    assert DEADLINE - 0.5 < elapsed < DEADLINE + SLACK, elapsed
    assert str(error.value) == (
        f"SMTP 127.0.0.1:{server.port}: the server did not finish within 1.5 s (delivery.smtp.deadline_seconds)"
    )
    assert not error.value.permanent
    assert server.closed.wait(SLACK)


def test_a_digest_dripped_after_data_fails_at_the_deadline_and_stays_queued(config_dir, drip_server):
    """Through the digest queue: the server takes the message, then drips its reply; the send fails at the
    deadline, the digest stays queued with that reason and a retry time, and nothing counts it as sent."""
    server = drip_server("DATA")
    delivery = {"method": "smtp", "sender": "newswatch <newswatch@example.org>"}
    config, store = make_project(config_dir, delivery={**delivery, "smtp": server.settings(deadline_seconds=DEADLINE)})
    run_alerts(config, store, now=NOW, send=False)
    (digest,) = store.pending_digests()
    started = time.monotonic()
    result = deliver_pending(config, store, now=NOW, force=True)
    elapsed = time.monotonic() - started
    assert (result.sent, result.failed) == (0, 1)
    assert server.dripping.is_set() and elapsed < DEADLINE + SLACK, elapsed
    (waiting,) = store.pending_digests()
    assert waiting.id == digest.id and waiting.attempts == 1 and waiting.next_attempt > NOW
    assert "did not finish within 1.5 s" in waiting.last_error
    assert store.sent_digests() == []


def test_alerts_command_exits_1_when_the_server_drips(config_dir, drip_server):
    """`newswatch alerts` against a dripping server returns after the deadline with exit 1 and one error line."""
    server = drip_server("EHLO")
    delivery = {"method": "smtp", "sender": "newswatch <newswatch@example.org>"}
    make_project(config_dir, delivery={**delivery, "smtp": server.settings(deadline_seconds=DEADLINE)})
    started = time.monotonic()
    result = run_cli("alerts", config_dir=config_dir)
    assert time.monotonic() - started < DEADLINE + SLACK + 5  # + matching the sample articles
    assert result.returncode == 1, result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert errors == ["error: 1 digest was not delivered; it stays queued (see: newswatch outbox list)"]
    assert "did not finish within 1.5 s" in result.stderr  # the delivery_unavailable log line says why


def test_implicit_tls_session_is_cut_off_at_the_deadline(smtp_server_factory):
    """The deadline holds over TLS too: a server that holds its reply to DATA is cut off at the deadline
    (below the per-read timeout of 10 s), on the TLS-wrapped connection."""
    handler = RecordingHandler(stall_at="DATA")
    server = smtp_server_factory("tls", handler)
    started = time.monotonic()
    with pytest.raises(DeliveryFailed, match=r"did not finish within 1.5 s"):
        send(transport(server, deadline_seconds=DEADLINE), queued())
    assert time.monotonic() - started < DEADLINE + SLACK
    assert handler.reached.is_set()


def test_abort_from_another_thread_ends_a_starttls_send_at_once(smtp_server_factory):
    """abort() (what the service's SIGTERM handler calls) ends a send blocked on the server at once, over
    STARTTLS; later sessions of that transport are refused without connecting."""
    handler = RecordingHandler(stall_at="RCPT")
    server = smtp_server_factory("starttls", handler)
    smtp = transport(server)  # timeout 10 s, deadline 120 s: only abort() can end this send soon
    threading.Thread(target=lambda: handler.reached.wait(30) and smtp.abort(), daemon=True).start()
    started = time.monotonic()
    with pytest.raises(DeliveryFailed, match=rf"^SMTP 127\.0\.0\.1:{server.port}: delivery aborted$"):
        send(smtp, queued())
    assert time.monotonic() - started < 5
    assert server.handler.messages == []
    with pytest.raises(DeliveryFailed, match="delivery aborted"):
        send(smtp, queued())


def test_session_abort_ends_that_session_and_its_later_sends(smtp_server_factory):
    """A session's own abort() fails the send in progress and every later one of that session, at once."""
    handler = RecordingHandler(stall_at="DATA")
    server = smtp_server_factory("none", handler)
    smtp = SmtpTransport(SmtpSettings(**{**server.settings()["smtp"], "security": "none"}))
    with smtp.session() as session:
        threading.Thread(target=lambda: handler.reached.wait(30) and session.abort(), daemon=True).start()
        started = time.monotonic()
        with pytest.raises(DeliveryFailed, match="delivery aborted"):
            session.send(queued())
        with pytest.raises(DeliveryFailed, match="delivery aborted"):
            session.send(queued("nw.second@example.org"))
        assert time.monotonic() - started < 5
    handler.release.set()
    send(smtp, queued("nw.third@example.org"))  # the transport itself was not aborted
    assert len(handler.messages) == 2  # the first (recorded before its stall) and the third


@pytest.mark.parametrize(
    ("reply", "permanent"),
    [("554 5.7.1 message refused", True), ("451 4.3.0 try again later", False), ("552 5.3.4 too big", True)],
)
def test_a_5xx_reply_to_the_message_is_permanent_a_4xx_is_not(smtp_server_factory, reply, permanent):
    """DeliveryFailed.permanent says the server refused the message for good (5xx), so the queue can set it
    aside after `dead_after_failures`; a temporary refusal (4xx) is retried forever."""
    server = smtp_server_factory("none", RecordingHandler(data_reply=reply))
    with pytest.raises(DeliveryFailed, match=reply.split()[0]) as error:
        send(SmtpTransport(SmtpSettings(**{**server.settings()["smtp"], "security": "none"})), queued())
    assert error.value.permanent is permanent


def test_authentication_required_is_not_permanent(smtp_server_factory):
    """530 (authentication required, credentials unset) is the session's problem, not the message's."""
    server = smtp_server_factory("tls")
    with pytest.raises(DeliveryFailed, match="530") as error:
        send(SmtpTransport(SmtpSettings(**server.settings()["smtp"])), queued())
    assert error.value.permanent is False


def test_deadline_is_bounded_below_the_queue_claim():
    """deadline_seconds is positive and at most 600 (a sender's claim on a digest lasts longer than a send)."""
    assert SmtpSettings().deadline_seconds == 120
    for bad in (0, 601):
        with pytest.raises(ValueError, match="deadline_seconds"):
            SmtpSettings(deadline_seconds=bad)


def test_apprise_notification_to_a_dripping_server_gives_up_at_its_deadline(caplog):
    """Apprise's own timeouts are per read: a webhook answering a byte a second would hold the alerts pass.
    The notifier waits at most its deadline, logs apprise_timeout and returns False."""
    pytest.importorskip("apprise")
    from alerts.delivery.notify import NOTIFY_DEADLINE_SECONDS, AppriseNotifier

    listener = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()

    def drip_http() -> None:
        with contextlib.suppress(OSError):
            conn, _ = listener.accept()
            with conn:
                conn.recv(65536)  # the request
                for byte in b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok" * 30:
                    if stop.is_set():
                        return
                    conn.sendall(bytes([byte]))
                    time.sleep(1)

    threading.Thread(target=drip_http, daemon=True).start()
    assert NOTIFY_DEADLINE_SECONDS <= 60
    url = f"json://127.0.0.1:{listener.getsockname()[1]}/hook"
    try:
        started = time.monotonic()
        assert AppriseNotifier([url], deadline=DEADLINE).notify("Daesh 1", "one new story") is False
        assert time.monotonic() - started < DEADLINE + SLACK
    finally:
        stop.set()
        listener.close()
    assert "apprise_timeout urls=1 seconds=1.5" in caplog.text
