"""Pytest fixtures for a real aiosmtpd server on 127.0.0.1 (STARTTLS or implicit TLS, AUTH), with a test CA."""

from __future__ import annotations

import asyncio
import datetime as dt
import ipaddress
import threading
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

SMTP_USER, SMTP_PASSWORD = "digest-bot", "s3cret-pass"


class _EphemeralController(Controller):
    """aiosmtpd's Controller on port 0: learn the port the OS chose before aiosmtpd pokes the server."""

    def _trigger_server(self):
        self.port = self.server.sockets[0].getsockname()[1]
        super()._trigger_server()


@dataclass
class RecordingHandler:
    """Keeps every accepted message; can answer DATA with an error, or stall at RCPT, DATA or QUIT.

    A stall sets ``reached`` and holds the reply until ``release`` is set, so a test can kill the client
    at that exact moment. At DATA the message is recorded before the stall: the server has it, the
    client does not know yet.
    """

    messages: list[bytes] = field(default_factory=list)
    envelopes: list[tuple[str, list[str]]] = field(default_factory=list)
    stall_at: str | None = None
    require_auth: bool = False
    data_reply: str = "250 Message accepted for delivery"
    reached: threading.Event = field(default_factory=threading.Event)
    release: threading.Event = field(default_factory=threading.Event)

    async def _stall(self, stage: str) -> None:
        if self.stall_at == stage:
            self.reached.set()
            for _ in range(600):  # at most 60 s, so a forgotten release cannot hang the suite
                if self.release.is_set():
                    break
                await asyncio.sleep(0.1)

    async def handle_MAIL(self, server, session, envelope, address, mail_options):
        if self.require_auth and not session.authenticated:
            return "530 5.7.0 Authentication required"
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 OK"

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        await self._stall("RCPT")
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        if not self.data_reply.startswith("250"):
            return self.data_reply
        self.messages.append(envelope.original_content or envelope.content)
        self.envelopes.append((envelope.mail_from, list(envelope.rcpt_tos)))
        await self._stall("DATA")
        return self.data_reply

    async def handle_QUIT(self, server, session, envelope):
        await self._stall("QUIT")
        return "221 Bye"

    def parsed(self) -> list[EmailMessage]:
        """Every accepted message, parsed."""
        return [message_from_bytes(raw, policy=policy.default) for raw in self.messages]


@dataclass
class SmtpServer:
    """A running test server and what a client needs to reach it."""

    host: str
    port: int
    security: str
    ca_file: Path
    handler: RecordingHandler
    username: str = SMTP_USER
    password: str = SMTP_PASSWORD

    def settings(self) -> dict:
        """The ``delivery`` block of settings.yaml that points newswatch at this server."""
        return {
            "method": "smtp",
            "sender": "newswatch <newswatch@example.org>",
            "smtp": {
                "host": self.host,
                "port": self.port,
                "security": self.security,
                "ca_file": str(self.ca_file),
                "timeout": 10,
            },
        }

    def env(self) -> dict[str, str]:
        """The environment variables carrying the SMTP credentials."""
        return {"NEWSWATCH_SMTP_USERNAME": self.username, "NEWSWATCH_SMTP_PASSWORD": self.password}


def make_self_signed(folder: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1/localhost signed by itself (so it is its own CA file), and its key."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "newswatch test SMTP")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    folder.mkdir(parents=True, exist_ok=True)
    cert_file, key_file = folder / "smtp-cert.pem", folder / "smtp-key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return cert_file, key_file


@pytest.fixture(scope="session")
def smtp_certificate(tmp_path_factory) -> tuple[Path, Path]:
    """A self-signed certificate and key for the test SMTP servers (certificate doubles as CA file)."""
    return make_self_signed(tmp_path_factory.mktemp("smtp-tls"))


def _authenticate(server, session, envelope, mechanism, auth_data):
    ok = isinstance(auth_data, LoginPassword) and (auth_data.login, auth_data.password) == (
        SMTP_USER.encode(),
        SMTP_PASSWORD.encode(),
    )
    # handled=False: aiosmtpd then answers 535 itself (handled=True would leave the client waiting).
    return AuthResult(success=ok, handled=False)


@pytest.fixture
def smtp_server_factory(smtp_certificate):
    """Start real aiosmtpd servers: ``factory(security="starttls"|"tls"|"none", handler=None)``.

    starttls and tls servers require AUTH (over TLS) with SMTP_USER/SMTP_PASSWORD; all stop after the test.
    """
    import ssl

    cert_file, key_file = smtp_certificate
    started: list[Controller] = []

    def start(security: str = "starttls", handler: RecordingHandler | None = None) -> SmtpServer:
        handler = handler or RecordingHandler()
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(cert_file, key_file)
        options: dict = {}
        if security == "starttls":
            options = {
                "tls_context": context,
                "require_starttls": True,
                "authenticator": _authenticate,
                "auth_required": True,
                "auth_require_tls": True,
            }
        elif security == "tls":
            # aiosmtpd only counts STARTTLS as TLS when offering AUTH; on an implicit-TLS connection
            # everything is encrypted already, so AUTH is offered and the handler requires it at MAIL.
            options = {"ssl_context": context, "authenticator": _authenticate, "auth_require_tls": False}
            handler.require_auth = True
        controller = _EphemeralController(handler, hostname="127.0.0.1", port=0, **options)
        controller.start()
        started.append(controller)
        return SmtpServer("127.0.0.1", controller.port, security, cert_file, handler)

    yield start
    for controller in started:
        controller.handler.release.set()
        controller.stop()


@pytest.fixture
def smtp_server(smtp_server_factory) -> SmtpServer:
    """A running STARTTLS + AUTH test server that accepts every message."""
    return smtp_server_factory("starttls")


# -- sample news for digest tests: short excerpts of the demo site's articles (not read from /work/shared)
_LEVANT_TEXT = (
    "DEIR EZZOR: Daesh on Friday lost control of the last two major towns under its grip in Syria and Iraq, as "
    "Syrian troops and Iraqi security forces advanced in the Euphrates Valley border region.\n"
    "The simultaneous assaults on Deir Ezzor in eastern Syria and Al-Qaim in western Iraq dealt fresh blows to "
    "Daesh in its former heartland, leaving Abu Kamal, on the Syrian side of the border, the last town of note "
    "under its control.\n"
    "In October, it lost its one-time de facto Syrian capital Raqqa after an assault of more than four months "
    "waged by the US-backed Syrian Democratic Forces (SDF), a Kurdish-Arab alliance.\n"
    "“Deir Ezzor represents the final phase in the complete elimination of Daesh,” the statement added, using "
    "the Arabic acronym for the group."
)
_ARABIC_TEXT = (
    "دير الزور: أعلنت القيادة العامة للجيش السوري يوم الجمعة استعادة السيطرة على كامل مدينة دير الزور في شرق "
    "البلاد، بعد معارك استمرت أسابيع ضد مقاتلي تنظيم داعش في الأحياء الشرقية للمدينة.\n"
    "ولم يعد التنظيم يسيطر على بلدات كبيرة في المنطقة سوى مدينة البوكمال الواقعة على الحدود مع العراق."
)


def sample_articles(fetched: dt.datetime):
    """Four demo-like articles: an English report, a second outlet's report of the same story (one cluster),
    an Arabic report, and a football story that matches nothing."""
    from newswatch.core.models import Article

    utc = dt.UTC
    return [
        Article(
            id="levant-1",
            url="http://127.0.0.1:8000/2017/11/04/daesh-loses-last-towns.html",
            title="Daesh loses last towns in face of twin Syria, Iraq assaults",
            text=_LEVANT_TEXT,
            feed_id="levant",
            outlet="The Levant Monitor",
            language="en",
            cluster_id="story-deir-ezzor",
            published=dt.datetime(2017, 11, 4, 9, 15, tzinfo=utc),
            fetched=fetched,
        ),
        Article(
            id="gulf-1",
            url="https://gulf-wire.example/news/syria-army-retakes-deir-ezzor",
            title="Syrian army says it has retaken all of Deir Ezzor",
            feed_id="gulf",
            outlet="Gulf Wire",
            text="The Syrian army said on Friday it had retaken all of Deir Ezzor city from Daesh.",
            language="en",
            cluster_id="story-deir-ezzor",
            published=dt.datetime(2017, 11, 4, 11, 0, tzinfo=utc),
            fetched=fetched,
        ),
        Article(
            id="mashriq-1",
            url="http://127.0.0.1:8000/2017/11/05/deir-ezzor-ar.html",
            title="الجيش السوري يعلن السيطرة الكاملة على مدينة دير الزور",
            text=_ARABIC_TEXT,
            feed_id="mashriq",
            outlet="مرصد المشرق",
            language="ar",
            published=dt.datetime(2017, 11, 5, 7, 40, tzinfo=utc),
            fetched=fetched,
        ),
        Article(
            id="sport-1",
            url="http://127.0.0.1:8000/2017/11/06/al-wehdat-win-amman-derby.html",
            title="Al-Wehdat win the Amman derby",
            feed_id="levant",
            outlet="The Levant Monitor",
            text="Al-Wehdat beat Al-Faisaly 2-1 in front of a full stadium in Amman on Monday.",
            language="en",
            published=dt.datetime(2017, 11, 6, 18, 0, tzinfo=utc),
            fetched=fetched,
        ),
    ]


SAMPLE_WATCHES = [
    {"name": "Deir Ezzor", "kind": "place", "aliases": ["Deir ez-Zor", "دير الزور"]},
    {"name": "Abu Kamal", "kind": "place", "aliases": ["Albu Kamal", "البوكمال"]},
    {"name": "Daesh", "kind": "group", "aliases": ["ISIS", "Islamic State", "داعش"]},
    {"name": "SDF", "kind": "group", "aliases": ["Syrian Democratic Forces"]},
]
