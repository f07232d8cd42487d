"""alerts.delivery.transports: SMTP (STARTTLS, implicit TLS, AUTH) against real aiosmtpd servers, and .eml files."""

from __future__ import annotations

import os
from datetime import UTC, datetime
from email.message import EmailMessage

import pytest

from alerts.delivery.transports import EmlFolderTransport, SmtpTransport, eml_name, make_transport
from newswatch.core.config.settings import DeliverySettings, SmtpSettings
from newswatch.core.errors import DeliveryFailed
from newswatch.core.models import QueuedDigest
from tests.plugins.smtp import RecordingHandler

CREATED = datetime(2017, 11, 5, 7, 0, tzinfo=UTC)


def queued(digest_id: str = "nw.0123456789abcdef@example.org", to: str = "analyst@example.org") -> QueuedDigest:
    message = EmailMessage()
    message["From"] = "newswatch <newswatch@example.org>"
    message["To"] = f"Analyst <{to}>"
    message["Subject"] = "Deir Ezzor 1 — newswatch"
    message["Message-ID"] = f"<{digest_id}>"
    message.set_content("Deir Ezzor: one story.\n.leading dot survives\n")
    return QueuedDigest(
        id=digest_id, recipient="analyst", hit_keys=("a:Deir Ezzor:text:0:10",), message=bytes(message), created=CREATED
    )


def transport(server, **overrides) -> SmtpTransport:
    settings = SmtpSettings(**{**server.settings()["smtp"], **overrides})
    return SmtpTransport(settings, username=server.username, password=server.password)


def send(smtp: SmtpTransport, digest: QueuedDigest) -> None:
    with smtp.session() as session:
        session.send(digest)


@pytest.mark.parametrize("security", ["starttls", "tls"])
def test_smtp_sends_over_tls_with_auth_and_keeps_the_message_id(smtp_server_factory, security):
    """STARTTLS and implicit TLS with AUTH deliver the stored message unchanged, to the To address."""
    server = smtp_server_factory(security)
    send(transport(server), queued())
    (message,) = server.handler.parsed()
    assert message["Message-ID"] == "<nw.0123456789abcdef@example.org>"
    assert server.handler.envelopes == [("newswatch@example.org", ["analyst@example.org"])]
    assert ".leading dot survives" in message.get_content()


def test_plain_smtp_without_auth(smtp_server_factory):
    """security: none talks plain SMTP, and logs in only when credentials are set."""
    server = smtp_server_factory("none")
    settings = SmtpSettings(**{**server.settings()["smtp"], "security": "none"})
    send(SmtpTransport(settings), queued())
    assert len(server.handler.messages) == 1


def test_wrong_password_is_one_line_delivery_failure(smtp_server_factory):
    """Rejected credentials raise DeliveryFailed carrying the server's 535 reply, on one line."""
    server = smtp_server_factory("starttls")
    bad = SmtpTransport(SmtpSettings(**server.settings()["smtp"]), username=server.username, password="wrong")
    with pytest.raises(DeliveryFailed, match=r"^SMTP 127\.0\.0\.1:\d+: 535 ") as error:
        send(bad, queued())
    assert "\n" not in str(error.value) and server.handler.messages == []


@pytest.mark.parametrize("security", ["starttls", "tls"])
def test_server_that_needs_auth_refuses_anonymous_clients(smtp_server_factory, security):
    """Without credentials (environment unset) a server requiring AUTH refuses the mail: DeliveryFailed."""
    server = smtp_server_factory(security)
    with pytest.raises(DeliveryFailed, match="530"):
        send(SmtpTransport(SmtpSettings(**server.settings()["smtp"])), queued())


def test_untrusted_certificate_is_refused(smtp_server_factory):
    """A server certificate not signed by a trusted CA fails delivery instead of sending in the clear."""
    server = smtp_server_factory("starttls")
    with pytest.raises(DeliveryFailed, match="CERTIFICATE_VERIFY_FAILED"):
        send(transport(server, ca_file=None), queued())
    assert server.handler.messages == []


def test_server_refusing_data_is_a_delivery_failure(smtp_server_factory):
    """A temporary 451 reply to DATA raises DeliveryFailed with that reply."""
    server = smtp_server_factory("starttls", RecordingHandler(data_reply="451 4.3.0 Try again later"))
    with pytest.raises(DeliveryFailed, match=r"451 4\.3\.0 Try again later"):
        send(transport(server), queued())


def test_server_down_is_a_delivery_failure():
    """Nobody listening: DeliveryFailed saying the connection was refused."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    down = SmtpTransport(SmtpSettings(host="127.0.0.1", port=port, security="starttls", timeout=5))
    with pytest.raises(DeliveryFailed, match="Connection refused"):
        send(down, queued())


def test_outbox_writes_named_eml_files_atomically(tmp_path):
    """The outbox writes <created>-<recipient>-<short id>.eml with the exact message and no temp file left."""
    digest = queued()
    with EmlFolderTransport(tmp_path / "outbox").session() as session:
        path = session.send(digest)
        again = session.send(digest)
    assert path == again == tmp_path / "outbox" / "20171105T070000Z-analyst-0123456789.eml"
    assert path.read_bytes() == digest.message
    assert os.listdir(tmp_path / "outbox") == [path.name]


def test_eml_name_keeps_hostile_recipient_names_inside_the_folder():
    """A recipient name with slashes or dots cannot make the outbox write elsewhere."""
    digest = QueuedDigest(id="nw.ff@x", recipient="../../etc/passwd", hit_keys=(), message=b"", created=CREATED)
    assert eml_name(digest) == "20171105T070000Z-etc-passwd-ff.eml"


def test_unwritable_outbox_is_a_delivery_failure(tmp_path):
    """An outbox folder that cannot be created raises DeliveryFailed naming it."""
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises(DeliveryFailed, match="outbox"), EmlFolderTransport(blocker / "outbox").session():
        pass


def test_make_transport_follows_the_method(tmp_path):
    """delivery.method picks the outbox (folder resolved against the project) or SMTP."""
    outbox = make_transport(DeliverySettings(), root=tmp_path, username=None, password=None)
    assert isinstance(outbox, EmlFolderTransport) and outbox.folder == tmp_path / "var" / "outbox"
    smtp = make_transport(DeliverySettings(method="smtp"), root=tmp_path, username="u", password="p")
    assert isinstance(smtp, SmtpTransport) and smtp.username == "u"
