"""`newswatch run`: the scheduler crawls and sends digests on its own, and SIGTERM stops it cleanly."""

from __future__ import annotations

import signal
import time
from pathlib import Path

import pytest

from newswatch.core.config import load_config
from newswatch.core.store.sqlite import SqliteStore
from tests.conftest import start_service, stop_service, wait_for, write_config

pytestmark = pytest.mark.slow  # the service runs in a child process


def test_service_crawls_sends_digest_and_stops_on_sigterm(config_dir: Path, demo_site: str):
    """The first crawl runs at start, the alerts pass writes a digest, and SIGTERM exits 0 with the data kept."""
    write_config(
        config_dir,
        feeds=[{"name": "Levant Monitor", "url": f"{demo_site}/feed.xml"}],
        recipients=[{"name": "analyst", "email": "analyst@example.org", "cadence": "immediate"}],
        settings={"schedule": {"crawl_every_minutes": 60, "digest_cron": "* * * * *"}},
    )
    service = start_service(config_dir)
    seen: list[str] = []
    try:
        wait_for(service, "service_started", seen)
        wait_for(service, "crawl_done", seen)
        wait_for(service, "alerts_done trigger=crawl", seen)
    finally:
        output = stop_service(service, seen)
    assert service.returncode == 0, output[-3000:]
    assert "service_stopped" in output and "Traceback" not in output
    config = load_config(config_dir)
    assert SqliteStore(config.path("var/newswatch.db")).count_articles() == 5
    assert len(list(config.path("var/outbox").glob("*.eml"))) == 1


def test_sigterm_during_a_crawl_keeps_what_was_stored(config_dir: Path, demo_site: str):
    """SIGTERM while the first crawl runs: the service exits cleanly and a restart completes the crawl."""
    write_config(
        config_dir,
        feeds=[{"name": "Levant Monitor", "url": f"{demo_site}/feed.xml"}],
        settings={"schedule": {"crawl_every_minutes": 60}},
    )
    service = start_service(config_dir)
    seen: list[str] = []
    try:
        wait_for(service, "crawl_started", seen)
        time.sleep(1.5)
    finally:
        output = stop_service(service, seen, timeout=90)
    assert service.returncode == 0, output[-3000:]
    restarted = start_service(config_dir)
    try:
        wait_for(restarted, "crawl_done", [])
        restarted.send_signal(signal.SIGTERM)
        restarted.communicate(timeout=60)
    finally:
        if restarted.poll() is None:
            restarted.kill()
    store = SqliteStore(load_config(config_dir).path("var/newswatch.db"))
    assert store.count_articles() == 5
