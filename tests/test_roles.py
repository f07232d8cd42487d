"""`newswatch run --role`: crawl roles side by side through Redis, one alerts role at a time with a standby
that takes over when the active one's lease runs out, and the web role alone."""

from __future__ import annotations

import signal
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

from newswatch.core.config import load_config
from newswatch.core.store.sqlite import SqliteStore
from tests.conftest import newswatch, spawn, stop_service, wait_for, write_config

pytestmark = pytest.mark.slow  # services in child processes


def role(config_dir: Path, name: str) -> subprocess.Popen:
    return spawn(config_dir, "run", "--role", name, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


def test_two_crawl_roles_run_side_by_side_through_redis(config_dir: Path, demo_site: str, redis_server):
    frontier = {"type": "redis", "url": redis_server.url, "lease_seconds": 3}
    write_config(
        config_dir,
        feeds=[{"name": "Levant Monitor", "url": f"{demo_site}/feed.xml"}],
        settings={"crawler": {"store_flush_seconds": 0.2, "frontier": frontier}},
    )
    first, second = role(config_dir, "crawl"), role(config_dir, "crawl")
    seen = [[], []]
    try:
        for process, lines in zip((first, second), seen, strict=True):
            wait_for(process, "service_started role=crawl frontier=redis", lines)
            wait_for(process, "crawl_done exit=0", lines)
    finally:
        logs = [stop_service(process, lines) for process, lines in zip((first, second), seen, strict=True)]
    for log in logs:
        assert "Traceback" not in log and "alerts_done" not in log, log[-3000:]  # crawls only
    store = SqliteStore(load_config(config_dir).path("var/newswatch.db"))
    articles = store.articles_after(None, limit=1000)[0]
    store.close()
    assert articles and len(articles) == len({a.id for a in articles}) == len({a.url for a in articles})
    assert sum("feed_done feed=levant-monitor" in log for log in logs) == 1  # one of them polled it


def test_a_second_crawl_role_on_a_local_frontier_is_refused(config_dir: Path):
    write_config(config_dir, settings={"schedule": {"lease_seconds": 5}})
    first = role(config_dir, "crawl")
    seen: list[str] = []
    try:
        wait_for(first, "service_started role=crawl frontier=local", seen)
        second = newswatch("run", "--role", "crawl", config_dir=config_dir, timeout=60)
    finally:
        stop_service(first, seen)
    assert second.returncode == 1
    (line,) = second.stderr.strip().splitlines()[-1:]
    assert line.startswith("error: a crawler (crawler.frontier: local; with redis, crawlers share the work) already")
    assert f"pid {first.pid}" in line


def test_a_standby_alerts_role_takes_over_when_the_active_ones_lease_runs_out(config_dir: Path):
    write_config(config_dir, settings={"schedule": {"lease_seconds": 5, "crawl_every_minutes": 0.05}})
    active, standby = role(config_dir, "alerts"), None
    seen_active: list[str] = []
    seen_standby: list[str] = []
    try:
        wait_for(active, "role_active role=alerts", seen_active)
        wait_for(active, "alerts_done", seen_active)
        standby = role(config_dir, "alerts")
        wait_for(standby, "role_standby role=alerts", seen_standby)
        time.sleep(6)  # two passes of the active one: the standby runs none
        active.send_signal(signal.SIGSTOP)  # stalled, not gone: its lease must run out first
        stopped = time.monotonic()
        wait_for(standby, "role_active role=alerts", seen_standby, timeout=30)
        assert time.monotonic() - stopped >= 3  # not before the lease (5 s, renewed every 1.7 s) ran out
        assert not any("alerts_done" in line for line in seen_standby)
        wait_for(standby, "alerts_done", seen_standby, timeout=30)  # it runs the passes now
        active.send_signal(signal.SIGCONT)
        wait_for(active, "role_standby role=alerts reason=lease lost", seen_active, timeout=30)
    finally:
        if active.poll() is None:
            active.send_signal(signal.SIGCONT)
        logs = [stop_service(active, seen_active)]
        if standby is not None:
            logs.append(stop_service(standby, seen_standby))
    assert all("Traceback" not in log for log in logs), logs


def test_the_web_role_serves_the_page_and_runs_no_job(config_dir: Path):
    write_config(config_dir, settings={"web": {"port": 0}})
    web = role(config_dir, "web")
    seen: list[str] = []
    try:
        wait_for(web, "web_started url=", seen)
        url = next(line for line in seen if "web_started" in line).split("url=")[1].split()[0]
        with urllib.request.urlopen(url + "healthz", timeout=10) as answer:
            assert answer.status in (200, 503)
        wait_for(web, "service_started role=web", seen)
        time.sleep(1)
    except urllib.error.HTTPError as exc:  # 503: no crawl yet, which is the web page answering
        assert exc.code == 503
    finally:
        log = stop_service(web, seen)
    assert "crawl_started" not in log and "alerts_done" not in log and "Traceback" not in log, log[-3000:]
