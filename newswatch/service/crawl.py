"""Run one crawl: in this process (`newswatch crawl`), or as a child process (the scheduler, the demo).

Scrapy's reactor cannot be restarted inside a process, so every scheduled crawl is a fresh child process:
a crash stays contained, memory is returned, and a hung crawl is killed at its timeout.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
from pathlib import Path

from newswatch.core.config import Config
from newswatch.core.logs import quiet_libraries

log = logging.getLogger(__name__)


def crawl_in_process(config: Config, feed: str | None = None, all_feeds: bool = False) -> int:
    """Crawl the due feeds (``all_feeds``: every enabled one; ``feed``: that one) with the `feeds` spider;
    returns the number of failed feeds."""
    from scrapy.crawler import CrawlerProcess
    from scrapy.settings import Settings

    settings = Settings()
    settings.setmodule("crawler.settings", priority="project")
    settings.set("LOG_LEVEL", config.settings.log_level, priority="cmdline")
    # newswatch's own handler formats the log lines; Scrapy must not add a second root handler.
    settings.set("LOG_INSTALL_ROOT_HANDLER", False, priority="cmdline")
    process = CrawlerProcess(settings)
    quiet_libraries(config.settings.log_level)
    crawler = process.create_crawler("feeds")
    process.crawl(crawler, config=config, feed=feed, all="1" if all_feeds else None)
    process.start()
    return int(crawler.stats.get_value("newswatch/feeds/failed", 0) or 0)


class CrawlProcess:
    """A crawl in a child process that can be stopped from another thread (SIGTERM lets Scrapy flush)."""

    def __init__(self, config: Config, feed: str | None = None):
        self.args = [sys.executable, "-m", "newswatch", "--config", str(config.config_dir.resolve()), "crawl"]
        if feed:
            self.args += ["--feed", feed]
        self.timeout = config.settings.schedule.crawl_timeout_minutes * 60
        self.child: subprocess.Popen | None = None

    def run(self) -> int:
        """Run the crawl to the end (or its timeout); returns the child's exit code."""
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        self.child = subprocess.Popen(self.args, env=env, cwd=Path.cwd())
        try:
            return self.child.wait(timeout=self.timeout)
        except subprocess.TimeoutExpired:
            log.warning("crawl_timeout seconds=%d", self.timeout)
            self.stop()
            return self.child.wait()

    def stop(self, grace: float = 30) -> None:
        """Ask the crawl to finish (SIGTERM: Scrapy closes the spider and flushes), then kill after ``grace``."""
        child = self.child
        if child is None or child.poll() is not None:
            return
        child.send_signal(signal.SIGTERM)
        try:
            child.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            child.kill()
