"""Config loading: valid files load, every error names file, key path and reason; secrets only from env."""

from __future__ import annotations

from pathlib import Path

import pytest

from newswatch.core.config import load_config
from newswatch.core.errors import ConfigError
from tests.conftest import ROOT, run_cli, write_config


def test_shipped_config_is_valid():
    """The config folder in the repository loads, with at least 30 feeds in ar/en/fr and the default watches."""
    config = load_config(ROOT / "config", env={})
    assert len(config.feeds) >= 30
    assert {f.language for f in config.feeds} >= {"ar", "en", "fr"}
    names = {w.name for w in config.watches}
    assert {"Deir Ezzor", "Abu Kamal", "Al-Qaim", "Raqqa", "Mosul", "Daesh", "SDF"} <= names
    assert config.settings.storage.backend == "sqlite"
    assert config.path("var/newswatch.db") == ROOT / "var" / "newswatch.db"


def test_error_names_file_key_path_and_reason(config_dir: Path):
    """A wrong value deep in a list is reported as file: feeds[1].url: why."""
    write_config(config_dir, feeds=[{"name": "A", "url": "https://a.example/rss"}, {"name": "B", "url": "ftp://b"}])
    with pytest.raises(ConfigError) as error:
        load_config(config_dir)
    assert (
        str(error.value)
        == f"{config_dir / 'feeds.yaml'}: feeds[1].url: Value error, must start with http:// or https://"
    )


def test_unknown_key_and_all_files_reported_together(config_dir: Path):
    """Unknown keys in two files give two lines, one per file, each naming the key."""
    write_config(
        config_dir, settings={"schedule": {"crawl_every_minute": 5}}, watches=[{"name": "Raqqa", "kind": "town"}]
    )
    with pytest.raises(ConfigError) as error:
        load_config(config_dir)
    lines = str(error.value).splitlines()
    assert f"{config_dir / 'settings.yaml'}: schedule.crawl_every_minute: unknown key" in lines
    assert any(line.startswith(f"{config_dir / 'watches.yaml'}: watches[0].kind: ") for line in lines)


def test_secret_in_yaml_is_refused_with_the_env_var_to_use(config_dir: Path):
    """A password written in YAML is refused, pointing at the environment variable instead."""
    write_config(config_dir, settings={"delivery": {"smtp": {"host": "mail", "password": "hunter2"}}})
    with pytest.raises(
        ConfigError, match=r"delivery\.smtp\.password: secrets are not read from YAML; set NEWSWATCH_SMTP_PASSWORD"
    ):
        load_config(config_dir)


def test_secrets_come_from_environment(config_dir: Path):
    """config.secret reads the documented environment variables."""
    write_config(config_dir)
    config = load_config(config_dir, env={"NEWSWATCH_SMTP_PASSWORD": "s3cret"})
    assert config.secret("smtp_password") == "s3cret"
    assert config.secret("es_api_key") is None


def test_bad_cron_timezone_and_yaml_syntax(config_dir: Path):
    """An invalid crontab or time zone is a key error; broken YAML names the line."""
    write_config(config_dir, settings={"schedule": {"digest_cron": "every morning", "timezone": "Mars/Olympus"}})
    with pytest.raises(ConfigError) as error:
        load_config(config_dir)
    text = str(error.value)
    assert "schedule.digest_cron: Value error, not a crontab expression" in text
    assert "schedule.timezone: Value error, unknown time zone 'Mars/Olympus'" in text
    (config_dir / "feeds.yaml").write_text("feeds:\n  - name: [unclosed\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"feeds\.yaml: not valid YAML \(line 3, column 1\)"):
        load_config(config_dir)


def test_recipient_naming_an_unknown_watch(config_dir: Path):
    """A recipient subscribed to a watch that does not exist is reported with its key path."""
    write_config(config_dir, recipients=[{"name": "ana", "email": "ana@example.org", "watches": ["Raqqa", "Atlantis"]}])
    with pytest.raises(ConfigError, match=r"recipients\[0\]\.watches\[1\]: no watch named 'Atlantis'"):
        load_config(config_dir)


def test_check_config_command(config_dir: Path):
    """`newswatch check-config` prints OK (exit 0) or one line per error (exit 2), never a traceback."""
    write_config(config_dir, feeds=[{"name": "A", "url": "https://a.example/rss"}])
    ok = run_cli("check-config", config_dir=config_dir)
    assert ok.returncode == 0 and ok.stdout.startswith("OK: ")
    write_config(config_dir, feeds=[{"name": "A", "url": "nope"}], settings={"log_level": "LOUD"})
    bad = run_cli("check-config", config_dir=config_dir)
    assert bad.returncode == 2
    assert "Traceback" not in bad.stderr
    lines = bad.stderr.strip().splitlines()
    assert len(lines) == 2 and all(line.startswith("error: ") for line in lines)
    assert "feeds[0].url" in bad.stderr and "log_level" in bad.stderr


def test_missing_config_folder(tmp_path: Path):
    """A config folder that does not exist is one line and exit 2."""
    result = run_cli("check-config", config_dir=tmp_path / "nowhere")
    assert result.returncode == 2
    assert (
        result.stderr.strip()
        == f"error: {tmp_path / 'nowhere'}: config folder not found (set NEWSWATCH_CONFIG_DIR or pass --config)"
    )


def test_feed_ids_are_ascii_slugs_of_the_name():
    """A feed without an id gets an ASCII slug of its name (diacritics folded), or a URL hash for a non-Latin name."""
    from newswatch.core.config.feeds import Feed

    assert Feed(name="Libération — International", url="https://x.example/rss").id == "liberation-international"
    assert Feed(name="Al Jazeera Arabic (الجزيرة نت)", url="https://x.example/rss").id == "al-jazeera-arabic"
    arabic_only = Feed(name="الجزيرة نت", url="https://x.example/rss").id
    assert arabic_only.startswith("feed-") and arabic_only.isascii()
    assert Feed(name="X", url="https://x.example/rss", id="custom").id == "custom"


def test_feed_language_and_country_are_codes(config_dir: Path):
    """A language or country written as a name is refused with the form expected; codes are normalised
    (AR -> ar, sy -> SY), and so is the case of the URL's scheme."""
    from newswatch.core.config.feeds import Feed

    feed = Feed(name="X", url="HTTPS://x.example/rss", language="AR", country="sy")
    assert (feed.url, feed.language, feed.country) == ("https://x.example/rss", "ar", "SY")
    assert Feed(name="X", url="https://x.example/rss", language="fr-FR").language == "fr"
    for url, reason in [("http://[oops/rss", "not a valid URL"), ("https:///rss", "has no host name")]:
        with pytest.raises(ValueError, match=reason):
            Feed(name="X", url=url)
    write_config(
        config_dir, feeds=[{"name": "A", "url": "https://a.example/rss", "language": "Arabic", "country": "Syria"}]
    )
    with pytest.raises(ConfigError) as error:
        load_config(config_dir)
    feeds = config_dir / "feeds.yaml"
    assert str(error.value).splitlines() == [
        f"{feeds}: feeds[0].language: Value error, must be a two-letter ISO 639-1 code, such as ar, en or fr",
        f"{feeds}: feeds[0].country: Value error, must be a two-letter ISO 3166-1 code, such as SY, IQ or FR",
    ]


def test_watch_names_are_unique_whatever_their_case(config_dir: Path):
    """'Daesh' and 'daesh' (or names differing only in accents) are one watch to the matcher: check-config
    refuses the second with one line naming the file and its key, exit 2."""
    watches = [{"name": "Daesh"}, {"name": "SDF"}, {"name": "Raqqa"}, {"name": "daesh"}, {"name": "Raqqā"}]
    write_config(config_dir, watches=watches, recipients=[])
    result = run_cli("check-config", config_dir=config_dir)
    path = config_dir / "watches.yaml"
    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        f"error: {path}: watches[3].name: 'daesh' is also the name of watches[0] ('Daesh'); "
        "watch names must differ by more than case or accents",
        f"error: {path}: watches[4].name: 'Raqqā' is also the name of watches[2] ('Raqqa'); "
        "watch names must differ by more than case or accents",
    ]


def test_recipient_names_and_feed_ids_are_unique_whatever_their_case(config_dir: Path):
    """A recipient's name is their id in the ledger, a feed's id names its state: 'Samira'/'samira' and
    'BBC'/'bbc' are refused at their key, in the file's own lines."""
    feeds = [
        {"name": "BBC Arabic", "id": "BBC", "url": "https://a.example/rss"},
        {"name": "bbc", "url": "https://b.example/rss"},
    ]
    people = [{"name": "Samira", "email": "s@example.org"}, {"name": "samira", "email": "t@example.org"}]
    write_config(config_dir, feeds=feeds, recipients=people)
    with pytest.raises(ConfigError) as error:
        load_config(config_dir)
    lines = str(error.value).splitlines()
    assert f"{config_dir / 'feeds.yaml'}: feeds[1].id: 'bbc' is also the id of feeds[0] ('BBC'); " in lines[0]
    assert lines[1].startswith(
        f"{config_dir / 'recipients.yaml'}: recipients[1].name: 'samira' is also the name of recipients[0] ('Samira')"
    )
    assert len(lines) == 2


def test_credentials_in_urls_are_refused_without_printing_them(config_dir: Path):
    """user:password@ in an Elasticsearch host or a feed URL is refused, pointing at the environment
    variables (Elasticsearch) and naming file and key; the password itself is never printed."""
    write_config(
        config_dir,
        settings={
            "storage": {"backend": "elasticsearch", "elasticsearch": {"hosts": ["http://elastic:hunter2@es:9200"]}}
        },
        feeds=[
            {"name": "A", "url": "https://a.example/rss"},
            {"name": "B", "url": "https://reader:hunter2@b.example/rss"},
        ],
    )
    result = run_cli("check-config", config_dir=config_dir)
    assert result.returncode == 2 and "hunter2" not in result.stderr
    assert result.stderr.splitlines() == [
        f"error: {config_dir / 'settings.yaml'}: storage.elasticsearch.hosts[0]: Value error, credentials in the URL "
        "are not read from YAML; set NEWSWATCH_ES_API_KEY, or NEWSWATCH_ES_USERNAME and NEWSWATCH_ES_PASSWORD, in "
        "the environment",
        f"error: {config_dir / 'feeds.yaml'}: feeds[1].url: Value error, a user name or password in a feed URL is "
        "refused: newswatch reads public feeds only, and the URL is written to logs and exports",
    ]


def test_notify_urls_may_carry_their_tokens(config_dir: Path):
    """Apprise URLs are made of tokens (tgram://bot-token/chat): recipients.yaml keeps them, by design."""
    people = [{"name": "desk", "email": "d@example.org", "notify_urls": ["tgram://123:secret-token/456"]}]
    config = load_config(write_config(config_dir, recipients=people), env={})
    assert config.recipients[0].notify_urls == ["tgram://123:secret-token/456"]


def test_secret_keys_point_at_their_own_section_variable(config_dir: Path):
    """A username or password written under delivery.smtp or storage.elasticsearch names that section's variable."""
    write_config(
        config_dir,
        settings={"delivery": {"smtp": {"username": "bot"}}, "storage": {"elasticsearch": {"password": "x"}}},
    )
    with pytest.raises(ConfigError) as error:
        load_config(config_dir)
    assert str(error.value).splitlines() == [
        f"{config_dir / 'settings.yaml'}: storage.elasticsearch.password: secrets are not read from YAML; set "
        "NEWSWATCH_ES_PASSWORD in the environment",
        f"{config_dir / 'settings.yaml'}: delivery.smtp.username: secrets are not read from YAML; set "
        "NEWSWATCH_SMTP_USERNAME in the environment",
    ]


def test_empty_watch_list_is_a_valid_config_and_an_alerts_pass_that_finds_nothing(config_dir: Path):
    """`watches: []` loads, and `newswatch alerts` over stored articles matches nothing and exits 0."""
    from datetime import UTC, datetime

    from newswatch.core.store.sqlite import SqliteStore
    from tests.plugins.smtp import sample_articles

    config = load_config(write_config(config_dir, watches=[]), env={})
    assert config.watches == []
    with SqliteStore(config.path(config.settings.storage.sqlite.path)) as store:
        store.add_articles(sample_articles(datetime(2017, 11, 5, 9, 0, tzinfo=UTC)))
    result = run_cli("alerts", config_dir=config_dir)
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    with SqliteStore(config.path(config.settings.storage.sqlite.path)) as store:
        assert store.pending_digests() == [] and store.owed_hits("analyst") == []
