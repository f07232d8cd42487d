"""The ASGI layer around the whole app: security headers on every response, credentials, and the Host check.

It wraps the app from outside (its error pages included), so no response leaves without the headers.
"""

from __future__ import annotations

from collections.abc import Collection

from starlette.datastructures import Headers, MutableHeaders
from starlette.responses import PlainTextResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from newswatch.web.access import Access, is_loopback

# No script at all (the page has none), nothing framed, nothing sent to the outlets a story links to.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'none'; object-src 'none'; base-uri 'none'; form-action 'self'; "
    "img-src 'self' data:; frame-ancestors 'none'"
)
SECURITY_HEADERS = {
    "content-security-policy": CONTENT_SECURITY_POLICY,
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "x-frame-options": "DENY",
    "cross-origin-opener-policy": "same-origin",
    "cross-origin-resource-policy": "same-origin",
}
OPEN_PATHS = frozenset({"/healthz"})  # for a load balancer or a monitor that has no credentials


class Guard:
    """Adds SECURITY_HEADERS to every response; answers 401 to a request without the credentials ``access``
    asks for (but on OPEN_PATHS); and, when no credentials are asked for (a loopback address), 421 to a
    request naming another host than a loopback one: a page of another site that had its name resolve to
    127.0.0.1 (DNS rebinding) must not read this one through the user's browser."""

    def __init__(self, app: ASGIApp, access: Access, open_paths: Collection[str] = OPEN_PATHS):
        self.app, self.access, self.open_paths = app, access, frozenset(open_paths)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in SECURITY_HEADERS.items():
                    headers[name] = value
            await send(message)

        refusal = self._refusal(scope)
        if refusal is not None:
            await refusal(scope, receive, send_with_headers)
            return
        await self.app(scope, receive, send_with_headers)

    def _refusal(self, scope: Scope) -> PlainTextResponse | None:
        headers = Headers(scope=scope)
        if not self.access.required:
            host = _host_name(headers.get("host", ""))
            if host and not is_loopback(host):
                return PlainTextResponse(f"this page answers to 127.0.0.1 or localhost, not {host}\n", 421)
            return None
        if scope["path"] in self.open_paths or self.access.allows(headers.get("authorization")):
            return None
        return PlainTextResponse(
            "authentication required\n",
            401,
            headers={"www-authenticate": 'Basic realm="newswatch", charset="UTF-8"'},
        )


def _host_name(host: str) -> str:
    """The name of a Host header without its port: ``[::1]:8080`` → ``::1``, ``localhost:80`` → ``localhost``."""
    host = host.strip()
    if host.startswith("["):
        return host[1 : host.find("]")] if "]" in host else host
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host
