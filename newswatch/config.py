"""Load and validate the YAML files under config/ into one Config (docs/configuration.md).

Config is loaded once, at the edge (the CLI), and passed down. Every validation error names the file, the
key path and what is wrong. Secrets never live in YAML: they come from environment variables only.
"""

from __future__ import annotations

import hashlib
import os
import re
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

import yaml
from apscheduler.triggers.cron import CronTrigger
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from newswatch.errors import ConfigError
from newswatch.alertspec import DeliverySettings, Recipient, RecipientList, TimeZoneName
from newswatch.watchspec import Watch, WatchList

CONFIG_DIR_ENV = "NEWSWATCH_CONFIG_DIR"
SECRET_ENV = {
    "smtp_username": "NEWSWATCH_SMTP_USERNAME",
    "smtp_password": "NEWSWATCH_SMTP_PASSWORD",
    "es_api_key": "NEWSWATCH_ES_API_KEY",
    "es_username": "NEWSWATCH_ES_USERNAME",
    "es_password": "NEWSWATCH_ES_PASSWORD",
}
# Keys a user might be tempted to put in YAML; refused with a pointer to the environment variable.
_SECRET_KEYS = {"password": "NEWSWATCH_SMTP_PASSWORD / NEWSWATCH_ES_PASSWORD", "api_key": "NEWSWATCH_ES_API_KEY"}


def web_url(value: str) -> str:
    """``value`` (stripped) as an http(s) URL with a lower-case scheme; ValueError saying why it is not one."""
    scheme, sep, rest = value.strip().partition("://")
    if not sep or scheme.lower() not in ("http", "https"):
        raise ValueError("must start with http:// or https://")
    try:
        host = urlsplit(value.strip()).hostname
    except ValueError as error:  # "http://[oops/rss": the crawl could not even make its request
        raise ValueError(f"not a valid URL ({error})") from None
    if not host:
        raise ValueError("has no host name")
    return f"{scheme.lower()}://{rest}"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Feed(_Strict):
    """One news source."""

    name: str = Field(min_length=1, description="Outlet name shown in digests.")
    url: str = Field(description="Feed, sitemap or home-page URL (http or https).")
    id: str = Field("", description="Stable id used in logs and state; derived from the name when empty.")
    kind: Literal["rss", "atom", "sitemap", "page", "auto"] = Field(
        "auto", description="Source type; auto detects RSS/Atom/sitemap from the body."
    )
    language: str | None = Field(None, description="ISO 639-1 language the outlet mostly publishes in.")
    country: str | None = Field(None, description="ISO 3166 country code of the outlet.")
    enabled: bool = Field(True, description="Set false to keep a feed listed without polling it.")

    @field_validator("url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        return web_url(value)

    # The language is the fallback of every article's detected language, and both appear in digests: a
    # name ("Arabic") would pass silently into every article it is used for.
    @field_validator("language")
    @classmethod
    def _language_code(cls, value: str | None) -> str | None:
        # A region form (en-US, fr_FR) is read as its language.
        if value is not None and not re.fullmatch(r"[A-Za-z]{2}(?:[-_][A-Za-z0-9]+)*", value.strip()):
            raise ValueError("must be a two-letter ISO 639-1 code, such as ar, en or fr")
        return value.strip()[:2].lower() if value is not None else None

    @field_validator("country")
    @classmethod
    def _country_code(cls, value: str | None) -> str | None:
        if value is not None and not re.fullmatch(r"[A-Za-z]{2}", value.strip()):
            raise ValueError("must be a two-letter ISO 3166-1 code, such as SY, IQ or FR")
        return value.strip().upper() if value is not None else None

    def model_post_init(self, _context: object) -> None:
        if not self.id:
            # Ids appear in logs, file names and commands: keep them ASCII (Libération -> liberation).
            ascii_name = unicodedata.normalize("NFKD", self.name).encode("ascii", "ignore").decode()
            slug = re.sub(r"[^a-z0-9]+", "-", ascii_name.lower()).strip("-")[:60].strip("-")
            self.id = slug or "feed-" + hashlib.sha1(self.url.encode()).hexdigest()[:8]


class FeedList(_Strict):
    feeds: list[Feed] = Field(default_factory=list, description="The sources to crawl.")

    @field_validator("feeds")
    @classmethod
    def _unique_ids(cls, feeds: list[Feed]) -> list[Feed]:
        seen: set[str] = set()
        for feed in feeds:
            if feed.id in seen:
                raise ValueError(f"two feeds share the id {feed.id!r}; give one an explicit id")
            seen.add(feed.id)
        return feeds


class SqliteSettings(_Strict):
    path: str = Field("var/newswatch.db", description="SQLite file, relative to the project folder.")


class ElasticsearchSettings(_Strict):
    hosts: list[str] = Field(default_factory=lambda: ["http://127.0.0.1:9200"], description="Node URLs.")
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


class StorageSettings(_Strict):
    backend: Literal["sqlite", "elasticsearch"] = Field("sqlite", description="Where articles live.")
    sqlite: SqliteSettings = Field(default_factory=SqliteSettings, description="SQLite backend settings.")
    elasticsearch: ElasticsearchSettings = Field(
        default_factory=ElasticsearchSettings, description="Elasticsearch backend settings."
    )


class ScheduleSettings(_Strict):
    timezone: TimeZoneName = Field("UTC", description="Time zone of the digest cron expression.")
    crawl_every_minutes: float = Field(15, gt=0, description="Minutes between crawls.")
    digest_cron: str = Field(
        "* * * * *",
        description="Crontab (min hour dom mon dow) of the digest job, which sends each recipient's digest when their "
        "cadence (recipients.yaml) is due and retries waiting ones.",
    )
    crawl_timeout_minutes: float = Field(30, gt=0, description="A crawl running longer is stopped.")

    @field_validator("digest_cron")
    @classmethod
    def _valid_cron(cls, value: str) -> str:
        try:
            CronTrigger.from_crontab(value, timezone="UTC")
        except ValueError as exc:
            raise ValueError(f"not a crontab expression ({exc})") from None
        return value


class CrawlerSettings(_Strict):
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


class Settings(_Strict):
    var_dir: str = Field("var", description="Folder for the store, outbox and logs, relative to the project.")
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field("INFO", description="Log verbosity.")
    storage: StorageSettings = Field(default_factory=StorageSettings, description="The article store.")
    schedule: ScheduleSettings = Field(default_factory=ScheduleSettings, description="When jobs run.")
    crawler: CrawlerSettings = Field(default_factory=CrawlerSettings, description="Crawler politeness/limits.")
    delivery: DeliverySettings = Field(default_factory=DeliverySettings, description="How digests leave.")


@dataclass(frozen=True)
class Config:
    """Everything a run needs, loaded from one config folder; paths resolved against ``root``."""

    config_dir: Path
    root: Path
    settings: Settings
    feeds: list[Feed]
    watches: list[Watch]
    recipients: list[Recipient]
    env: dict[str, str] = field(default_factory=dict, repr=False)

    def path(self, relative: str) -> Path:
        """Resolve a configured path against the project folder (the config folder's parent)."""
        candidate = Path(relative)
        return candidate if candidate.is_absolute() else self.root / candidate

    def secret(self, name: str) -> str | None:
        """A secret from the environment variable named in SECRET_ENV, or None when unset."""
        return self.env.get(SECRET_ENV[name]) or None


FILES = {"settings.yaml": Settings, "feeds.yaml": FeedList, "watches.yaml": WatchList, "recipients.yaml": RecipientList}


def default_config_dir() -> Path:
    """The config folder: $NEWSWATCH_CONFIG_DIR, else ./config."""
    return Path(os.environ.get(CONFIG_DIR_ENV, "config"))


def read_yaml(path: Path) -> dict:
    """Read one YAML mapping; a missing or malformed file raises ConfigError naming the file."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{path}: file not found") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read ({exc.strerror})") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ConfigError(f"{path}: not valid YAML{where}: {problem}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level, got {type(data).__name__}")
    return data


def format_errors(path: Path, error: ValidationError) -> list[str]:
    """One line per pydantic error: ``file: key.path[3].name: what is wrong``."""
    lines = []
    for item in error.errors():
        key = ""
        for part in item["loc"]:
            key += f"[{part}]" if isinstance(part, int) else (f".{part}" if key else str(part))
        message = item["msg"]
        if item["type"] == "extra_forbidden":
            last = str(item["loc"][-1])
            message = (
                f"secrets are not read from YAML; set {_SECRET_KEYS[last]} in the environment"
                if last in _SECRET_KEYS
                else "unknown key"
            )
        lines.append(f"{path}: {key or '(top level)'}: {message}")
    return lines


def validate_file(path: Path, model: type[BaseModel]) -> BaseModel:
    """Validate one YAML file against its model; raises ConfigError with every error, one per line."""
    try:
        return model.model_validate(read_yaml(path))
    except ValidationError as exc:
        raise ConfigError("\n".join(format_errors(path, exc))) from None


def load_config(config_dir: Path | str | None = None, env: dict[str, str] | None = None) -> Config:
    """Load every file of the config folder; raises ConfigError listing all problems found.

    A missing recipients.yaml or watches.yaml means none; settings.yaml and feeds.yaml must exist.
    """
    folder = Path(config_dir) if config_dir is not None else default_config_dir()
    if not folder.is_dir():
        raise ConfigError(f"{folder}: config folder not found (set {CONFIG_DIR_ENV} or pass --config)")
    parsed: dict[str, BaseModel] = {}
    problems: list[str] = []
    for name, model in FILES.items():
        path = folder / name
        if name in ("watches.yaml", "recipients.yaml") and not path.exists():
            parsed[name] = model()
            continue
        try:
            parsed[name] = validate_file(path, model)
        except ConfigError as exc:
            problems.append(str(exc))
    if problems:
        raise ConfigError("\n".join(problems))
    watch_names = [w.name for w in parsed["watches.yaml"].watches]
    problems += _cross_check(folder, watch_names, parsed["recipients.yaml"].recipients)
    if problems:
        raise ConfigError("\n".join(problems))
    return Config(
        config_dir=folder,
        root=folder.resolve().parent,
        settings=parsed["settings.yaml"],
        feeds=parsed["feeds.yaml"].feeds,
        watches=parsed["watches.yaml"].watches,
        recipients=parsed["recipients.yaml"].recipients,
        env=dict(os.environ if env is None else env),
    )


def _cross_check(folder: Path, watch_names: list[str], recipients: list[Recipient]) -> list[str]:
    problems = []
    duplicates = {n for n in watch_names if watch_names.count(n) > 1}
    for name in sorted(duplicates):
        problems.append(f"{folder / 'watches.yaml'}: watches: the name {name!r} is used twice")
    for i, recipient in enumerate(recipients):
        if recipient.watches == "all":
            continue
        for j, watch in enumerate(recipient.watches):
            if watch not in watch_names:
                problems.append(
                    f"{folder / 'recipients.yaml'}: recipients[{i}].watches[{j}]: no watch named {watch!r}"
                )
    return problems
