"""Run one crawl: in this process (`newswatch crawl`), or as a child process (the scheduler, the demo).

Scrapy's reactor cannot be restarted inside a process, so every scheduled crawl is a fresh child process:
a crash stays contained, memory is returned, and a hung crawl is killed at its timeout.
"""

from __future__ import annotations

import ctypes
import logging
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

from newswatch.core.config import Config
from newswatch.core.errors import StoreUnavailable
from newswatch.core.logs import quiet_libraries

log = logging.getLogger(__name__)

_PARENT_ENV = "NEWSWATCH_PARENT_PID"
_PR_SET_PDEATHSIG = 1
_GRACE_SECONDS = 60


def crawl_in_process(config: Config, feed: str | None = None, all_feeds: bool = False) -> int:
    """Crawl the due feeds (``all_feeds``: every enabled one; ``feed``: that one) with the `feeds` spider;
    returns the number of failed feeds. Raises StoreUnavailable when the store refused a write (the crawl
    stopped there). The crawl ends itself at ``schedule.crawl_timeout_minutes``, whoever started it."""
    from scrapy.crawler import CrawlerProcess
    from scrapy.settings import Settings

    end_with_parent()
    timeout = config.settings.schedule.crawl_timeout_minutes * 60
    settings = Settings()
    settings.setmodule("crawler.settings", priority="project")
    settings.set("CLOSESPIDER_TIMEOUT", timeout, priority="cmdline")
    settings.set("LOG_LEVEL", config.settings.log_level, priority="cmdline")
    # newswatch's own handler formats the log lines; Scrapy must not add a second root handler.
    settings.set("LOG_INSTALL_ROOT_HANDLER", False, priority="cmdline")
    process = CrawlerProcess(settings)
    quiet_libraries(config.settings.log_level)
    crawler = process.create_crawler("feeds")
    process.crawl(crawler, config=config, feed=feed, all="1" if all_feeds else None)
    # Past the timeout and a grace for flushing, a crawl that still has not ended (a hung thread) is
    # killed by the kernel: SIGALRM's default action.
    signal.alarm(int(timeout + _GRACE_SECONDS))
    try:
        process.start()
    finally:
        signal.alarm(0)
    failure = crawler.stats.get_value("newswatch/store/failed")
    if failure:
        raise StoreUnavailable(failure)
    return int(crawler.stats.get_value("newswatch/feeds/failed", 0) or 0)


def check_frontier(config: Config) -> None:
    """Raise FrontierUnavailable (a StoreUnavailable: exit 1) when crawler.frontier is Redis and it does not
    answer; a local frontier has nothing to reach."""
    from crawler.frontier import open_frontier

    frontier = open_frontier(config)
    try:
        frontier.check()
    finally:
        frontier.close()


def end_with_parent() -> None:
    """In a crawl child of the service (NEWSWATCH_PARENT_PID set): be sent SIGTERM when the service dies,
    even by SIGKILL (Linux PR_SET_PDEATHSIG), so no crawl outlives it; exit at once if it is already gone."""
    parent = os.environ.pop(_PARENT_ENV, None)
    if parent is None or not sys.platform.startswith("linux"):
        return
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
    if os.getppid() != int(parent):  # the service died before prctl took effect
        log.warning("crawl_orphaned parent=%s (the service is gone; this crawl ends)", parent)
        raise SystemExit(1)


class CrawlProcess:
    """A crawl in a child process that can be stopped from another thread (SIGTERM lets Scrapy flush)."""

    def __init__(self, config: Config, feed: str | None = None):
        self.args = [sys.executable, "-m", "newswatch", "--config", str(config.config_dir.resolve()), "crawl"]
        if feed:
            self.args += ["--feed", feed]
        self.timeout = config.settings.schedule.crawl_timeout_minutes * 60
        self.child: subprocess.Popen | None = None
        self.stopped, self._lock = False, threading.Lock()  # stop() before the child exists: none is started

    def run(self) -> int:
        """Run the crawl to the end (or its timeout); returns the child's exit code.

        The child has its own process group (a Ctrl-C at the terminal reaches only the service, which stops
        it in order) and ends when the service dies (see end_with_parent); both sides enforce the timeout.
        """
        env = dict(os.environ, PYTHONUNBUFFERED="1", **{_PARENT_ENV: str(os.getpid())})
        with self._lock:
            if self.stopped:
                return 0
            self.child = subprocess.Popen(self.args, env=env, cwd=Path.cwd(), start_new_session=True)
        try:
            return self.child.wait(timeout=self.timeout)
        except subprocess.TimeoutExpired:
            log.warning("crawl_timeout seconds=%d", self.timeout)
            self.stop()
            return self.child.wait()

    def stop(self, grace: float = 30) -> None:
        """Ask the crawl to finish (SIGTERM: Scrapy closes the spider and flushes), then kill after ``grace``."""
        with self._lock:
            self.stopped = True
            child = self.child
        if child is None or child.poll() is not None:
            return
        child.send_signal(signal.SIGTERM)
        try:
            child.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            child.kill()
