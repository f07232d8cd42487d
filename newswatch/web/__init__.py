"""The read-only web page (docs/web.md): `newswatch web`, or inside `newswatch run` with ``web.enabled``.

server (uvicorn in a thread) > app (the Starlette routes, Jinja2 templates) > views (what each page shows, the
same for the HTML and the /api/ JSON), monitoring (/healthz, /metrics), guard (headers, credentials) > access
(who may read). Pages read the store only; the crawl child never imports this package.
"""
