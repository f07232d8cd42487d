"""`newswatch demo`: serve the bundled news site on 127.0.0.1, crawl it, match, write a digest. Offline."""

from __future__ import annotations

import shutil
from pathlib import Path

import yaml

from alerts.run import run_alerts
from newswatch.core.config import load_config
from newswatch.core.errors import NewswatchError
from newswatch.core.store import open_store
from newswatch.demo.server import serve_site
from newswatch.service.crawl import CrawlProcess

SITE = Path(__file__).with_name("site")
DEFAULT_WATCHES = Path(__file__).with_name("watches.yaml")


def write_demo_config(workdir: Path, feed_url: str, watches_file: Path | None) -> Path:
    """A config folder for the demo: its own store and outbox under ``workdir``, one local feed."""
    config_dir = workdir / "config"
    config_dir.mkdir(parents=True, exist_ok=True)
    settings = {
        "storage": {"backend": "sqlite", "sqlite": {"path": "newswatch.db"}},
        "delivery": {"method": "outbox", "outbox_dir": "outbox"},
        "crawler": {"obey_robots_txt": True},
    }
    files = {
        "settings.yaml": settings,
        "feeds.yaml": {"feeds": [{"id": "demo-wire", "name": "Demo Wire", "url": feed_url, "language": "en"}]},
        "recipients.yaml": {"recipients": [{"name": "demo", "email": "analyst@example.org"}]},
    }
    for name, data in files.items():
        (config_dir / name).write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    shutil.copyfile(watches_file or DEFAULT_WATCHES, config_dir / "watches.yaml")
    return config_dir


def run_demo(workdir: Path, watches_file: Path | None = None) -> str:
    """Run the whole pipeline once on the bundled site; returns the path of the .eml written.

    Raises NewswatchError when no digest could be written.
    """
    for leftover in ("newswatch.db", "newswatch.db-wal", "newswatch.db-shm"):
        (workdir / leftover).unlink(missing_ok=True)
    shutil.rmtree(workdir / "outbox", ignore_errors=True)
    server = serve_site(SITE)
    try:
        host, port = server.server_address[:2]
        config = load_config(write_demo_config(workdir, f"http://{host}:{port}/feed.xml", watches_file))
        if CrawlProcess(config).run() != 0:
            raise NewswatchError("demo crawl failed; see the log lines above")
    finally:
        server.shutdown()
    with open_store(config) as store:
        report = run_alerts(config, store)
    if not report.written:
        raise NewswatchError("demo wrote no digest: no watch matched the demo articles")
    return str(Path(report.written[-1]).resolve())
