"""Map the user's crawler settings (config/settings.yaml) onto Scrapy setting names."""

from __future__ import annotations

from scrapy.settings import Settings

from newswatch.config import Config


def apply_config(settings: Settings, config: Config) -> None:
    """Override Scrapy defaults with the user's values, at 'project' priority so `-s` still wins."""
    crawler = config.settings.crawler
    values = {
        "USER_AGENT": crawler.user_agent,
        "CONCURRENT_REQUESTS_PER_DOMAIN": crawler.concurrent_requests_per_domain,
        "DOWNLOAD_TIMEOUT": crawler.download_timeout,
        "DOWNLOAD_MAXSIZE": crawler.max_body_bytes,
        "ROBOTSTXT_OBEY": crawler.obey_robots_txt,
    }
    for name, value in values.items():
        settings.set(name, value, priority="project")
