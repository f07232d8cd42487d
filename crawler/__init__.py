"""The crawler: a Scrapy project (settings, spiders/, pipelines, extensions) over pure modules that read feeds
and pages into Articles for the store (docs/crawler.md)."""
