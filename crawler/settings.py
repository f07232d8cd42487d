"""Scrapy settings of the newswatch crawler; per-deployment values come from config/settings.yaml.

The spider lays the user's crawler settings (User-Agent, concurrency, timeouts, body
limit, robots.txt: crawler.spiders.feeds.user_settings) over these defaults, so `scrapy crawl feeds` and
`newswatch crawl` behave the same.
"""

import os

BOT_NAME = "newswatch"
SPIDER_MODULES = ["crawler.spiders"]
NEWSPIDER_MODULE = "crawler.spiders"

NEWSWATCH_CONFIG_DIR = os.environ.get("NEWSWATCH_CONFIG_DIR", "config")
NEWSWATCH_BATCH_SIZE = 100  # articles per store write
NEWSWATCH_FLUSH_SECONDS = 5.0  # a partial batch is written after this long

ROBOTSTXT_OBEY = True
AUTOTHROTTLE_ENABLED = True
AUTOTHROTTLE_START_DELAY = 0.5
AUTOTHROTTLE_MAX_DELAY = 30
AUTOTHROTTLE_TARGET_CONCURRENCY = 2.0
CONCURRENT_REQUESTS = 16
CONCURRENT_REQUESTS_PER_DOMAIN = 2
DOWNLOAD_TIMEOUT = 20
DOWNLOAD_MAXSIZE = 10_000_000  # checked on the decompressed size too, so a gzip bomb is refused
DOWNLOAD_WARNSIZE = 0
REDIRECT_MAX_TIMES = 5
RETRY_TIMES = 1
COOKIES_ENABLED = False
# Items processed in parallel per response. A page yields one article, a feed only requests (scheduled at
# once, never waited on); Scrapy starts this many asyncio tasks for every callback's output, so the default
# of 100 cost ~2 ms per page and anything above 1 buys nothing here.
CONCURRENT_ITEMS = 1
# To warn about `return value` in a generator callback, Scrapy re-reads and parses the callback's source
# whenever its cache (keyed by bound methods, which die with their requests) has lost it: ~1.4 ms each
# time, ~150 times in the 500-page benchmark. The check is a test instead (tests/test_crawl_cost.py).
WARN_ON_GENERATOR_RETURN_VALUE = False
# Byte and count stats per request and response that nothing here reads (the crawl's own counters are
# newswatch/*, and the CrawlReport line).
DOWNLOADER_STATS = False
TELNETCONSOLE_ENABLED = False
LOG_LEVEL = "INFO"
LOG_VERSIONS: list[str] = []  # no version banner in every crawl log

# Components this crawler has no use for, each a little work on every request: no allowed_domains (offsite),
# no HTTP auth or cookies, no proxies from the environment, no depth limit, and feeds are no referrers.
# Private addresses are refused (crawler.extensions) before robots.txt (100) is asked for them, and on the
# address connected to first of all on the way back (process_response runs from the highest number down),
# before RetryMiddleware (550), HttpCompressionMiddleware (590) or RedirectMiddleware (600) act on it.
DOWNLOADER_MIDDLEWARES = {
    "scrapy.downloadermiddlewares.offsite.OffsiteMiddleware": None,
    "scrapy.downloadermiddlewares.httpauth.HttpAuthMiddleware": None,
    "scrapy.downloadermiddlewares.cookies.CookiesMiddleware": None,
    "scrapy.downloadermiddlewares.httpproxy.HttpProxyMiddleware": None,
    "crawler.extensions.PrivateAddressGuard": 40,
    "crawler.extensions.ConnectedAddressGuard": 990,
}
SPIDER_MIDDLEWARES = {
    "scrapy.spidermiddlewares.referer.RefererMiddleware": None,
    "scrapy.spidermiddlewares.depth.DepthMiddleware": None,
    "scrapy.spidermiddlewares.metacopy.MetaCopyDetectionMiddleware": None,
}

ITEM_PIPELINES = {"crawler.pipelines.ClusterPipeline": 400, "crawler.pipelines.StorePipeline": 500}
EXTENSIONS = {"crawler.extensions.CrawlReport": 500}
# Feeds are polled with their own conditional requests (crawler.polling.state); Scrapy's HTTP cache stays off.
HTTPCACHE_ENABLED = False

FEED_EXPORT_ENCODING = "utf-8"
