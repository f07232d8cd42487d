"""Who may read the web page: anyone on a loopback address; credentials from the environment elsewhere.

The page shows what digests show (every hit, every recipient's outbox), so it is never open to a network by
mistake: listening on any address but a loopback one needs a token or basic-auth credentials, read from the
environment variables the settings name (web.token_env, web.user_env, web.password_env), or it is refused
before anything listens. A token must be at least MIN_TOKEN_LENGTH characters and a basic-auth user needs a
password that is not empty, wherever the page listens. Credentials set are asked for on loopback too.
docs/web.md, "Access".
"""

from __future__ import annotations

import base64
import binascii
import hmac
import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass

from newswatch.core.config.settings import WebSettings
from newswatch.core.errors import NewswatchError

_LOOPBACK_NAMES = {"localhost", "localhost.", "ip6-localhost"}
# A token anyone on the network may try to guess: 16 characters at least (`openssl rand -hex 24` gives 48).
MIN_TOKEN_LENGTH = 16


class WebAccessRefused(NewswatchError):
    """The web page would listen on a network address without credentials (or with half of a pair)."""


def is_loopback(host: str) -> bool:
    """True for 127.0.0.0/8, ::1 and the name localhost: addresses only this machine reaches."""
    name = host.strip().strip("[]").lower()
    if name in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True)
class Access:
    """The credentials a request must bring (none: every request may read)."""

    token: str | None = None
    user: str | None = None
    password: str | None = None

    @property
    def required(self) -> bool:
        """True when requests must authenticate."""
        return bool(self.token or self.user)

    @property
    def kind(self) -> str:
        """``none``, ``token``, ``basic`` or ``token+basic``, for the start-up log line."""
        kinds = [name for name, set_ in (("token", self.token), ("basic", self.user)) if set_]
        return "+".join(kinds) or "none"

    def allows(self, authorization: str | None) -> bool:
        """Whether an ``Authorization`` header value carries these credentials: ``Bearer TOKEN``, or basic
        auth with the token as the password (any user name: what a browser's prompt can send), or with the
        configured user and password. Compared in constant time."""
        if not self.required:
            return True
        scheme, _, value = (authorization or "").strip().partition(" ")
        value = value.strip()
        if scheme.lower() == "bearer":
            return bool(self.token) and _same(value, self.token)
        if scheme.lower() != "basic":
            return False
        try:
            user, sep, password = base64.b64decode(value, validate=True).decode("utf-8").partition(":")
        except (binascii.Error, UnicodeDecodeError):
            return False
        if not sep:
            return False
        by_token = bool(self.token) and _same(password, self.token)
        by_pair = bool(self.user) and _same(user, self.user) and _same(password, self.password)
        return by_token or by_pair


def _same(given: str, expected: str | None) -> bool:
    return expected is not None and hmac.compare_digest(given.encode("utf-8"), expected.encode("utf-8"))


def access_for(settings: WebSettings, host: str, env: Mapping[str, str]) -> Access:
    """The credentials the environment gives for listening on ``host``; WebAccessRefused (one line, naming the
    variable, never its value) when ``host`` is not a loopback address and there are none, when the token is
    shorter than MIN_TOKEN_LENGTH, or when only one of the user and password is set (an empty password is
    not set)."""
    token = env.get(settings.token_env) or None
    user, password = env.get(settings.user_env) or None, env.get(settings.password_env) or None
    if token is not None and len(token.strip()) < MIN_TOKEN_LENGTH:
        raise WebAccessRefused(
            f"web: {settings.token_env} is {len(token.strip())} characters long; a token needs at least "
            f"{MIN_TOKEN_LENGTH} (e.g. the output of `openssl rand -hex 24`)"
        )
    if bool(user) != bool(password):
        missing = settings.password_env if user else settings.user_env
        raise WebAccessRefused(
            f"web: {settings.user_env} and {settings.password_env} go together, and {missing} is empty or "
            "unset: set both (basic auth needs a password), or neither"
        )
    access = Access(token=token, user=user, password=password)
    if not access.required and not is_loopback(host):
        raise WebAccessRefused(
            f"web: refusing to listen on {host} without credentials: set {settings.token_env} (or "
            f"{settings.user_env} and {settings.password_env}) in the environment, or listen on 127.0.0.1"
        )
    return access
