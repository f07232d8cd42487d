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
# Politeness is per site (Scrapy's download slot: one per host name): at most CONCURRENT_REQUESTS_PER_DOMAIN
# requests to it at once, and DOWNLOAD_DELAY at least between two requests to it (no jitter, so this is a floor).
# AutoThrottle raises a site's delay from there when it answers slowly (to half its latency: about
# AUTOTHROTTLE_TARGET_CONCURRENCY requests in flight), never lowers it below the floor, and starts every site at
# the floor. The first request to a site goes at once (there is no earlier one to wait after): a start delay
# above the floor was paid again by every site in every crawl, though only the second request waited it.
DOWNLOAD_DELAY = 0.25
DOWNLOAD_DELAY_JITTER = 0
AUTOTHROTTLE_ENABLED = True
AUTOTHROTTLE_START_DELAY = DOWNLOAD_DELAY
AUTOTHROTTLE_MAX_DELAY = 30
AUTOTHROTTLE_TARGET_CONCURRENCY = 2.0
CONCURRENT_REQUESTS_PER_DOMAIN = 2
# Requests in the downloader at once, over all sites. A request waiting out its site's delay holds one of these
# places, so with few places thousands of sites would queue behind each other's delays; the sites are many and
# each is limited on its own, so this is high.
CONCURRENT_REQUESTS = 256
# Whose request goes next: the sites with requests waiting taken in turn, one with nothing in the downloader
# first (crawler.extensions.SiteTurnQueue). Scrapy's DownloaderAwarePriorityQueue chooses the same way at a cost
# per request that grows with the sites waiting (2 ms a request with 1,000 sites waiting, 20 ms with 5,000).
SCHEDULER_PRIORITY_QUEUE = "crawler.extensions.SiteTurnQueue"
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
# Count stats per request, response status and download exception: the failed pages of /metrics
# (crawler.extensions.failed_downloads).
DOWNLOADER_STATS = True
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
