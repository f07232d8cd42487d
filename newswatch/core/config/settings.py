"""config/settings.yaml: storage, schedule, crawler limits, delivery (docs/configuration.md, docs/delivery.md)."""

from __future__ import annotations

from typing import Annotated, Literal

from apscheduler.triggers.cron import CronTrigger
from pydantic import AfterValidator, AliasChoices, Field, field_validator, model_validator

from newswatch.core.config.fields import Strict, TimeZoneName, refuse_credentials


class SqliteSettings(Strict):
    path: str = Field("var/newswatch.db", description="SQLite file, relative to the project folder.")


def _no_credentials(url: str) -> str:
    return refuse_credentials(
        url,
        reason="credentials in the URL are not read from YAML; set NEWSWATCH_ES_API_KEY, or NEWSWATCH_ES_USERNAME "
        "and NEWSWATCH_ES_PASSWORD, in the environment",
    )


class ElasticsearchSettings(Strict):
    hosts: list[Annotated[str, AfterValidator(_no_credentials)]] = Field(
        default_factory=lambda: ["http://127.0.0.1:9200"],
        description="Node URLs, without credentials (those come from the environment).",
    )
    index_prefix: str = Field("newswatch", description="Prefix of every index, alias and template.")
    verify_certs: bool = Field(True, description="Verify TLS certificates.")
    ca_file: str | None = Field(None, description="CA bundle for TLS verification.")
    request_timeout: float = Field(30, gt=0, description="Seconds before a request is abandoned.")
    spool_dir: str = Field("var/es-spool", description="Durable queue of articles waiting for the cluster.")
    max_retries: int = Field(
        3, ge=0, description="Retries of a request on 429, 502-504, timeouts and connection errors."
    )
    bulk_chunk_size: int = Field(500, ge=1, description="Most articles sent in one bulk request.")
    bulk_max_retries: int = Field(5, ge=0, description="Retries, with backoff, of bulk items rejected with 429.")
    retry_backoff_seconds: float = Field(
        1.0, gt=0, description="First wait before retrying rejected bulk items; doubles each retry (cap 30s)."
    )


class StorageSettings(Strict):
    backend: Literal["sqlite", "elasticsearch"] = Field("sqlite", description="Where articles live.")
    retention_days: int | None = Field(
        None,
        ge=1,
        description="The service prunes, once a day, the articles first stored longer ago than this, with "
        "their hits and cluster signatures, as `newswatch store prune --older-than` does (digests still owed "
        "stay); null keeps everything.",
    )
    sqlite: SqliteSettings = Field(default_factory=SqliteSettings, description="SQLite backend settings.")
    elasticsearch: ElasticsearchSettings = Field(
        default_factory=ElasticsearchSettings, description="Elasticsearch backend settings."
    )


class ScheduleSettings(Strict):
    timezone: TimeZoneName = Field("UTC", description="Time zone of the digest cron expression.")
    crawl_every_minutes: float = Field(15, gt=0, description="Minutes between crawls.")
    digest_cron: str = Field(
        "* * * * *",
        description="Crontab (min hour dom mon dow) of the digest job, which sends each recipient's digest when their "
        "cadence (recipients.yaml) is due and retries waiting ones.",
    )
    crawl_timeout_minutes: float = Field(30, gt=0, description="A crawl running longer is stopped.")
    lease_seconds: float = Field(
        60,
        ge=5,
        description="The service and each alerts pass hold a lease of the store, renewed while they run, so a "
        "second one on the same store refuses to start. A killed holder's lease is taken over after this "
        "long (at once when it ran on this host).",
    )

    @field_validator("digest_cron")
    @classmethod
    def _valid_cron(cls, value: str) -> str:
        try:
            CronTrigger.from_crontab(value, timezone="UTC")
        except ValueError as exc:
            raise ValueError(f"not a crontab expression ({exc})") from None
        return value


def _redis_url(url: str) -> str:
    from urllib.parse import urlsplit  # here: this field's own check

    refuse_credentials(
        url, reason="a password in the URL is not read from YAML; put it in the variable password_env names"
    )
    parts = urlsplit(url)
    if parts.scheme not in ("redis", "rediss") or not parts.hostname:
        raise ValueError("not a Redis URL (redis://host:port/db or rediss://host:port/db)")
    if parts.path.strip("/") and not parts.path.strip("/").isdigit():
        raise ValueError("the database after the port must be a number (redis://host:port/0)")
    return url


class FrontierSettings(Strict):
    type: Literal["local", "redis"] = Field(
        "local",
        validation_alias=AliasChoices("type", "kind", "backend"),
        description="local: this process alone decides what to crawl (one crawler per store). redis: any "
        "number of crawler processes share the due feeds, the pages to fetch and the hosts through the Redis "
        'at `url` (docs/crawler.md, "Several crawlers"). `frontier: redis` alone also works (then `url` is '
        "the default); the key may also be spelt `kind` or `backend`.",
    )
    url: Annotated[str, AfterValidator(_redis_url)] = Field(
        "redis://127.0.0.1:6379/0", description="The Redis server: redis://host:port/db (rediss:// for TLS)."
    )
    password_env: str = Field(
        "NEWSWATCH_REDIS_PASSWORD",
        pattern=r"^[A-Z_][A-Z0-9_]*$",
        description="Environment variable holding Redis's password (AUTH), when it has one.",
    )
    key_prefix: str = Field(
        "newswatch", min_length=1, description="Prefix of every Redis key: crawlers sharing a store share it."
    )
    lease_seconds: float = Field(
        30,
        ge=2,
        description="A crawler's hold on a feed, a host or a page runs out this long after its last renewal "
        "(renewed while it works): the work of a crawler killed mid-crawl goes to the others after this.",
    )


class CrawlerSettings(Strict):
    user_agent: str = Field(
        "newswatch/0.1 (+mailto:newswatch@example.org)", description="User-Agent with a contact address."
    )
    concurrent_requests_per_domain: int = Field(2, ge=1, description="Parallel requests per site.")
    download_timeout: float = Field(20, gt=0, description="Seconds before a download is abandoned.")
    max_body_bytes: int = Field(10_000_000, gt=0, description="Larger (decompressed) bodies are refused.")
    max_redirects: int = Field(5, ge=0, description="Redirects followed for one request before giving up.")
    obey_robots_txt: bool = Field(True, description="Obey robots.txt.")
    store_batch_size: int = Field(100, ge=1, description="Articles written to the store in one batch.")
    store_flush_seconds: float = Field(
        5, gt=0, description="Seconds a partial batch of articles may wait before it is written."
    )
    allow_private_hosts: list[str] = Field(
        default_factory=list,
        description="Host names, IP addresses and CIDR networks (`intranet.example`, `10.1.2.3`, `10.0.0.0/8`) "
        "the crawler may reach although they are loopback, private, link-local or otherwise not public. Other "
        "such requests (an item link, a redirect, a sitemap entry, a discovered feed) are refused, except to "
        "the host of a feed listed in feeds.yaml (docs/crawler.md).",
    )
    frontier: FrontierSettings = Field(
        default_factory=FrontierSettings,
        description="Who shares the crawl: `local` (default) or `redis` (a string, or a section with `type`).",
    )

    @field_validator("frontier", mode="before")
    @classmethod
    def _frontier_name(cls, value):
        return {"type": value} if isinstance(value, str) else value

    @field_validator("allow_private_hosts")
    @classmethod
    def _hosts_or_networks(cls, entries: list[str]) -> list[str]:
        import ipaddress  # here: this class's own check

        for entry in entries:
            try:
                ipaddress.ip_network(entry.strip("[]"), strict=False)
                continue
            except ValueError:
                pass
            labels = entry.rstrip(".").split(".")
            if not all(label and all(c.isalnum() or c in "-_" for c in label) for label in labels):
                raise ValueError(f"not a host name, IP address or CIDR network: {entry!r}")
        return entries


class SmtpSettings(Strict):
    host: str = Field("localhost", description="SMTP server host.")
    port: int = Field(587, ge=1, le=65535, description="SMTP server port.")
    security: Literal["none", "starttls", "tls"] = Field(
        "starttls", description="Transport security: none, starttls (usually port 587) or tls (implicit, port 465)."
    )
    timeout: float = Field(
        30, gt=0, description="Seconds one connect or read may wait for the server before the send fails."
    )
    deadline_seconds: float = Field(
        120,
        gt=0,
        le=600,
        description="Longest time in all that opening a session (connect, EHLO, STARTTLS, login), then each "
        "message sent and the closing QUIT may take, however steadily the server answers: past it the connection "
        "is closed and that send fails (the digest waits for its retry). At most 600.",
    )
    ca_file: str | None = Field(
        None, description="CA bundle to verify the server certificate with (default: the system's)."
    )
    verify: bool = Field(True, description="Verify the server certificate and host name (leave on).")


class DeliverySettings(Strict):
    method: Literal["outbox", "smtp"] = Field(
        "outbox", description="outbox writes .eml files under var/outbox; smtp sends them."
    )
    sender: str = Field("newswatch <newswatch@localhost>", description="From: address of digests.")
    outbox_dir: str = Field("var/outbox", description="Folder of .eml files (outbox method).")
    smtp: SmtpSettings = Field(default_factory=SmtpSettings, description="SMTP server (smtp method).")
    retry_first_seconds: float = Field(60, gt=0, description="Wait after the first failed attempt; doubles each time.")
    retry_max_seconds: float = Field(6 * 3600, gt=0, description="Longest wait between two attempts.")
    dead_after_failures: int = Field(
        5,
        ge=1,
        description="A digest the server refuses for good (a 5xx reply) this many times is set aside as dead "
        "(shown by `outbox list`, revived by `outbox retry --id`).",
    )
    silent_feed_hours: float = Field(
        48, gt=0, description="A feed with no successful fetch for this long is listed as silent in digests."
    )
    max_entries_per_watch: int = Field(25, ge=1, description="Stories shown per watch; the rest are counted.")
    owed_days: float = Field(
        14,
        ge=8,
        description="A hit found longer ago and never put in a recipient's digest is no longer owed to them: a "
        "digest reads this window of hits, not every hit ever found (at least 8, so a weekly recipient misses "
        "nothing). A new watch's backfill is found when the watch is added, so it falls inside.",
    )

    @field_validator("sender")
    @classmethod
    def _one_line(cls, value: str) -> str:
        if "\r" in value or "\n" in value or "@" not in value:
            raise ValueError("must be one address like 'newswatch <newswatch@example.org>'")
        return value


_ENV_NAME = r"^[A-Z_][A-Z0-9_]*$"


class HealthzSettings(Strict):
    max_crawl_age_minutes: float | None = Field(
        None,
        gt=0,
        description="/healthz answers 503 when the last successful crawl ended longer ago than this, or none "
        "is recorded (null: three times schedule.crawl_every_minutes, at least 30).",
    )
    max_outbox_depth: int = Field(
        20, ge=0, description="/healthz answers 503 when more digests than this wait to be sent."
    )


class WebSettings(Strict):
    enabled: bool = Field(False, description="`newswatch run` serves the web page too (`newswatch web` always does).")
    host: str = Field(
        "127.0.0.1",
        min_length=1,
        description="Address to listen on. Any other than a loopback address (127.0.0.1, ::1, localhost) needs "
        "credentials in the environment: the variable named by `token_env`, or those of `user_env` and "
        "`password_env` (docs/web.md).",
    )
    port: int = Field(8080, ge=0, le=65535, description="Port to listen on (0: any free port; the log says which).")
    token_env: str = Field(
        "NEWSWATCH_WEB_TOKEN",
        pattern=_ENV_NAME,
        description="Environment variable holding a token: sent as `Authorization: Bearer TOKEN`, or as the "
        "password of HTTP basic auth (any user name).",
    )
    user_env: str = Field(
        "NEWSWATCH_WEB_USER", pattern=_ENV_NAME, description="Environment variable holding the basic-auth user."
    )
    password_env: str = Field(
        "NEWSWATCH_WEB_PASSWORD",
        pattern=_ENV_NAME,
        description="Environment variable holding the basic-auth password.",
    )
    healthz: HealthzSettings = Field(default_factory=HealthzSettings, description="When /healthz says unhealthy.")


class Settings(Strict):
    var_dir: str = Field("var", description="Folder for the store, outbox and logs, relative to the project.")
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field("INFO", description="Log verbosity.")
    storage: StorageSettings = Field(default_factory=StorageSettings, description="The article store.")
    schedule: ScheduleSettings = Field(default_factory=ScheduleSettings, description="When jobs run.")
    crawler: CrawlerSettings = Field(default_factory=CrawlerSettings, description="Crawler politeness/limits.")
    delivery: DeliverySettings = Field(default_factory=DeliverySettings, description="How digests leave.")
    web: WebSettings = Field(default_factory=WebSettings, description="The read-only web page (docs/web.md).")

    @model_validator(mode="after")
    def _retention_keeps_what_is_owed(self) -> Settings:
        days = self.storage.retention_days
        if days is not None and days < self.delivery.owed_days:
            raise ValueError(
                f"storage.retention_days ({days}) is shorter than delivery.owed_days ({self.delivery.owed_days:g}): "
                "hits still owed to a recipient would be pruned"
            )
        return self
