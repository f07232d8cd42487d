"""The Starlette app: server-rendered pages (Jinja2, autoescaped), their JSON twins under /api/, /healthz, /metrics.

Read-only: every route is a GET. Page handlers are plain functions, which Starlette runs in its thread pool,
so a slow store never holds the event loop. The store is the service's (``newswatch run``) or one this app
opens at first use and closes at shutdown (``newswatch web``); one that cannot be opened is tried again at the
next request, and /healthz says so meanwhile.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

from jinja2 import Environment, FileSystemLoader, StrictUndefined
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp

from alerts.search import UnknownWatch
from newswatch.core.config import Config
from newswatch.core.errors import NewswatchError, QuerySyntaxError
from newswatch.core.models import Fragment
from newswatch.core.store import Store, open_store
from newswatch.core.times import from_iso, utc_now
from newswatch.web import views
from newswatch.web.access import Access
from newswatch.web.guard import Guard
from newswatch.web.monitoring import StoreCollector, check_health

log = logging.getLogger(__name__)

HERE = Path(__file__).parent
TEMPLATES, STATIC = HERE / "templates", HERE / "static"


class StoreHolder:
    """The store the pages read: the one given, or one opened at first use (again after a failure)."""

    def __init__(self, config: Config, store: Store | None = None):
        self.config, self._store, self._owned = config, store, store is None
        self._lock = threading.Lock()

    def get(self) -> Store:
        """The store; StoreUnavailable when it cannot be opened now."""
        with self._lock:
            if self._store is None:
                self._store = open_store(self.config)
            return self._store

    def close(self) -> None:
        """Close the store if this holder opened it."""
        with self._lock:
            if self._owned and self._store is not None:
                self._store.close()
                self._store = None


def templates() -> Environment:
    """The Jinja2 environment of the pages: autoescaped, undefined names an error, and the filters below."""
    env = Environment(
        loader=FileSystemLoader(TEMPLATES),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(when=_when, day=_day, ago=_ago, path=lambda value: quote(str(value), safe=""), parts=_parts)
    env.globals.update(spark=_spark)
    return env


def _when(stamp: str | None) -> str:
    moment = from_iso(stamp)
    return moment.strftime("%Y-%m-%d %H:%M UTC") if moment else "—"


def _day(stamp: str | None) -> str:
    moment = from_iso(stamp)
    return moment.strftime("%d %b %Y") if moment else "—"


def _ago(stamp: str | None, now: datetime | None = None) -> str:
    moment = from_iso(stamp)
    if moment is None:
        return "never"
    seconds = ((now or utc_now()) - moment).total_seconds()
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{seconds // size:.0f} {unit} ago"
    return "just now"


def _parts(snippet: dict[str, Any]) -> list[tuple[str, bool]]:
    """A snippet's text cut into (piece, highlighted) parts, for the template to wrap the marked ones."""
    return Fragment(snippet["text"], tuple(tuple(m) for m in snippet["marks"])).parts()


def _spark(daily: list[dict[str, Any]], width: int = 140, height: int = 28) -> dict[str, Any]:
    """The bars of a sparkline as SVG rectangles (attributes only: the CSP allows no inline style)."""
    peak = max((d["articles"] for d in daily), default=0) or 1
    step = width / max(len(daily), 1)
    bars = []
    for i, d in enumerate(daily):
        h = 0 if not d["articles"] else max(2.0, (height - 2) * d["articles"] / peak)
        bars.append(
            {"x": round(i * step + 1, 1), "y": round(height - h, 1), "w": round(step - 2, 1), "h": round(h, 1), **d}
        )
    return {"width": width, "height": height, "bars": bars, "total": sum(d["articles"] for d in daily)}


def create_app(
    config: Config,
    store: Store | None = None,
    *,
    access: Access | None = None,
    clock: Callable[[], datetime] = utc_now,
) -> ASGIApp:
    """The web app over ``config``'s store (``store`` when given, shared and left open; else opened here)."""
    holder = StoreHolder(config, store)
    env = templates()
    registry = CollectorRegistry(auto_describe=False)
    registry.register(StoreCollector(config, holder.get))

    def page(request: Request, template: str, data: dict[str, Any], status: int = 200) -> HTMLResponse:
        body = env.get_template(template).render(data=data, query=request.query_params.get("q", ""), now=clock())
        return HTMLResponse(body, status_code=status)

    def both(template: str, build: Callable[[Request], dict[str, Any] | None]):
        """A page and its /api/ twin from one builder; a builder answering None is a 404."""

        def html(request: Request) -> Response:
            data = build(request)
            if data is None:
                raise HTTPException(404, "not found")
            return page(request, template, data)

        def api(request: Request) -> Response:
            data = build(request)
            if data is None:
                raise HTTPException(404, "not found")
            return JSONResponse(data)

        return html, api

    def since(request: Request) -> datetime | None:
        value = request.query_params.get("since", "").strip()
        if not value:
            return None
        moment = views.parse_since(value, clock())
        if moment is None:
            raise HTTPException(400, f"since: expected e.g. 24h, 7d or 2026-11-01, got {value!r}")
        return moment

    builders = {
        "dashboard": lambda r: views.dashboard(config, holder.get(), clock()),
        "watch": lambda r: views.watch_page(config, holder.get(), r.path_params["name"], clock()),
        "story": lambda r: views.story_page(config, holder.get(), r.path_params["story_id"]),
        "search": lambda r: views.search_page(
            config, holder.get(), r.query_params.get("q", ""), watch=r.query_params.get("watch") or None, since=since(r)
        ),
        "sources": lambda r: views.sources(config, holder.get(), clock()),
        "outbox": lambda r: views.outbox(config, holder.get(), clock()),
    }
    dashboard, dashboard_api = both("dashboard.html.j2", builders["dashboard"])
    watch, watch_api = both("watch.html.j2", builders["watch"])
    story, story_api = both("story.html.j2", builders["story"])
    search, search_api = both("search.html.j2", builders["search"])
    sources, sources_api = both("sources.html.j2", builders["sources"])
    outbox, outbox_api = both("outbox.html.j2", builders["outbox"])

    last_reasons: list[tuple[str, ...]] = [()]  # logged when they change, not at every poll of a monitor

    def healthz(request: Request) -> Response:
        report = check_health(config, holder.get, clock())
        if report.reasons != last_reasons[0]:
            if report.healthy:
                log.info("healthz_healthy")
            else:
                log.warning("healthz_unhealthy reasons=%r", "; ".join(report.reasons))
            last_reasons[0] = report.reasons
        return JSONResponse(report.to_json(), status_code=200 if report.healthy else 503)

    def metrics(request: Request) -> Response:
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    def error(request: Request, status: int, message: str) -> Response:
        if request.url.path.startswith("/api/"):
            return JSONResponse({"error": message}, status_code=status)
        return page(request, "error.html.j2", {"status": status, "message": message}, status)

    def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        return error(request, exc.status_code, exc.detail)

    def bad_query(request: Request, exc: Exception) -> Response:
        return error(request, 400, str(exc))

    def unknown_watch(request: Request, exc: Exception) -> Response:
        return error(request, 404, str(exc))

    def store_error(request: Request, exc: Exception) -> Response:
        log.warning("web_store_error path=%s reason=%s", request.url.path, exc)
        return error(request, 503, f"the store cannot answer now: {exc}")

    @contextlib.asynccontextmanager
    async def lifespan(_app):
        yield
        holder.close()

    routes = [
        Route("/", dashboard),
        Route("/watch/{name:path}", watch),
        Route("/story/{story_id:path}", story),
        Route("/search", search),
        Route("/sources", sources),
        Route("/outbox", outbox),
        Route("/api/watches", dashboard_api),
        Route("/api/watch/{name:path}", watch_api),
        Route("/api/story/{story_id:path}", story_api),
        Route("/api/search", search_api),
        Route("/api/sources", sources_api),
        Route("/api/outbox", outbox_api),
        Route("/healthz", healthz),
        Route("/metrics", metrics),
        Mount("/static", StaticFiles(directory=STATIC), name="static"),
    ]
    app = Starlette(
        routes=routes,
        lifespan=lifespan,
        exception_handlers={
            HTTPException: http_error,
            QuerySyntaxError: bad_query,
            UnknownWatch: unknown_watch,
            NewswatchError: store_error,
        },
    )
    return Guard(app, access or Access())
