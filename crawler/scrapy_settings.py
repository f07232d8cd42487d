"""Map the user's crawler settings (config/settings.yaml) onto Scrapy setting names."""

from __future__ import annotations

from scrapy.settings import Settings

from newswatch.config import Config


def apply_config(settings: Settings, config: Config) -> None:
    """Override Scrapy defaults with the user's values, at 'spider' priority so `-s` (cmdline) still wins.

    Not 'project': CrawlerProcess.crawl(crawler) merges the process's own settings (crawler/settings.py,
    'project' priority) into the crawler again after ``update_settings``, which would undo these.
    """
    crawler = config.settings.crawler
    values = {
        "USER_AGENT": crawler.user_agent,
        "CONCURRENT_REQUESTS_PER_DOMAIN": crawler.concurrent_requests_per_domain,
        "DOWNLOAD_TIMEOUT": crawler.download_timeout,
        "DOWNLOAD_MAXSIZE": crawler.max_body_bytes,
        "REDIRECT_MAX_TIMES": crawler.max_redirects,
        "ROBOTSTXT_OBEY": crawler.obey_robots_txt,
        "NEWSWATCH_BATCH_SIZE": crawler.store_batch_size,
        "NEWSWATCH_FLUSH_SECONDS": crawler.store_flush_seconds,
    }
    for name, value in values.items():
        settings.set(name, value, priority="spider")
