"""Tests of the alerts pass (alerts.run): match → digest → queue → deliver, on a real store and SMTP server."""

from __future__ import annotations

import logging
import os
import re
import signal
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from email import message_from_bytes, policy
from pathlib import Path

import pytest

from alerts.delivery.queue import eml_folder, format_queue, list_queue, retry_queue
from alerts.digests import cadence
from alerts.run import preview_digests, run_alerts, send_now
from newswatch.core.config import load_config
from newswatch.core.config.recipients import Recipient
from newswatch.core.errors import ConfigError
from newswatch.core.models import Article
from newswatch.core.store.sqlite import SqliteStore
from tests.conftest import ROOT, run_cli, write_config
from tests.plugins.smtp import SAMPLE_WATCHES, RecordingHandler, sample_articles

NOW = datetime(2017, 11, 5, 9, 0, tzinfo=UTC)


def make_project(config_dir: Path, *, delivery: dict | None = None, recipients: list | None = None, watches=None):
    """A config folder and its SqliteStore holding the sample articles."""
    settings = {"delivery": delivery} if delivery else None
    config = load_config(
        write_config(config_dir, watches=watches or SAMPLE_WATCHES, recipients=recipients, settings=settings), env={}
    )
    store = SqliteStore(config.path(config.settings.storage.sqlite.path))
    store.add_articles(sample_articles(NOW - timedelta(minutes=30)))
    return config, store


def with_env(config, env: dict):
    """The same config with other environment variables (the SMTP credentials)."""
    return type(config)(**{**config.__dict__, "env": env})


def received(server) -> list:
    return server.handler.parsed()


def test_digest_goes_end_to_end_over_starttls_with_auth(config_dir, smtp_server):
    """One pass matches the articles, queues a digest and sends it; the message has both parts and every group."""
    config, store = make_project(config_dir, delivery=smtp_server.settings())
    config = with_env(config, smtp_server.env())
    report = run_alerts(config, store, now=NOW)
    assert (report.articles, report.queued, report.sent, report.failed) == (4, 1, 1, 0)
    (message,) = received(smtp_server)
    assert smtp_server.handler.envelopes == [("newswatch@example.org", ["analyst@example.org"])]
    assert message.get_content_type() == "multipart/alternative"
    assert [p.get_content_type() for p in message.iter_parts()] == ["text/plain", "text/html"]
    assert message["Subject"] == "Deir Ezzor, Abu Kamal, Daesh, SDF: 2 new stories — 5 Nov"
    html = message.get_body(("html",)).get_content()
    text = message.get_body(("plain",)).get_content()
    for group in ("Deir Ezzor", "Daesh"):
        assert f">{group} <span" in html and group.upper() in text
    assert ">Deir Ezzor</mark> in eastern Syria" in html and "*Deir Ezzor* in eastern Syria" in text
    assert 'href="http://127.0.0.1:8000/2017/11/04/daesh-loses-last-towns.html"' in html
    assert "Al-Wehdat" not in html  # the football story matched nothing
    (sent,) = store.sent_digests()
    assert message["Message-ID"] == f"<{sent.id}>" and store.pending_digests() == []
    assert store.owed_hits("analyst") == []


def test_second_pass_finds_nothing_new_and_sends_nothing(config_dir, smtp_server):
    """Everything is remembered in the store: a second pass (a fresh store object) sends nothing."""
    config, store = make_project(config_dir, delivery=smtp_server.settings())
    config = with_env(config, smtp_server.env())
    run_alerts(config, store, now=NOW)
    store.close()
    again = run_alerts(config, SqliteStore(config.path("var/newswatch.db")), now=NOW + timedelta(hours=1))
    assert (again.articles, again.new_hits, again.queued, again.sent) == (0, 0, 0, 0)
    assert len(smtp_server.handler.messages) == 1


def test_outbox_delivery_writes_an_eml_file_and_reports_it(config_dir):
    """With delivery.method outbox the digest is an .eml under outbox_dir, listed in the report."""
    config, store = make_project(config_dir)
    report = run_alerts(config, store, now=NOW)
    (path,) = report.written
    assert path.parent == config.path("var/outbox") and path.name.startswith("20171105T090000Z-analyst-")
    message = message_from_bytes(path.read_bytes(), policy=policy.default)
    assert message["Message-ID"] == f"<{store.sent_digests()[0].id}>"
    assert not [p for p in path.parent.iterdir() if p.name.startswith(".tmp")]


def test_the_same_numbers_everywhere(config_dir, caplog):
    """Subject, header, sections, message headers, `outbox list` and the log lines give the same stories,
    articles and mentions; `outbox list` has a header row, the state, the attempts and the .eml path."""
    config, store = make_project(config_dir)
    with caplog.at_level(logging.INFO, logger="alerts"):
        (path,) = run_alerts(config, store, now=NOW).written
    message = message_from_bytes(path.read_bytes(), policy=policy.default)
    text = message.get_body(("plain",)).get_content().replace("\r\n", "\n")
    (sent,) = store.sent_digests()
    stories, articles, mentions = 2, 3, len(sent.hit_keys)  # the Deir Ezzor cluster (2 copies) and the Arabic one
    assert message["Subject"].endswith(f": {stories} new stories — 5 Nov")
    assert f"{stories} new stories for 4 watches" in text
    assert f"{stories} stories · {articles} articles · {mentions} mentions" in text
    section_mentions = [int(n) for n in re.findall(r"^[A-Z ]+ — .* · (\d+) mentions?$", text, re.M)]
    assert len(section_mentions) == 4 and sum(section_mentions) == mentions
    assert (message["X-Newswatch-Stories"], message["X-Newswatch-Mentions"]) == (str(stories), str(mentions))
    logged = " ".join(
        r.getMessage() for r in caplog.records if r.getMessage().startswith(("digest_queued", "digest_sent"))
    )
    assert logged.count(f"stories={stories} articles={articles} mentions={mentions}") == 2
    (row,) = list_queue(store, eml_dir=eml_folder(config))
    assert (row.state, row.stories, row.articles, row.mentions, row.attempts, row.eml) == (
        "sent",
        stories,
        articles,
        mentions,
        1,
        path,
    )
    listed = run_cli("outbox", "list", config_dir=config_dir)
    assert listed.returncode == 0, listed.stderr
    head, first = listed.stdout.splitlines()[:2]
    assert head.split() == ["STATE", "CREATED", "RECIPIENT", "STORIES", "ARTICLES", "MENTIONS", "ATTEMPTS", "WHEN"]
    assert first.split()[:8] == ["sent", "2017-11-05", "09:00", "analyst", "2", "3", str(mentions), "1"]
    assert f"eml {path}" in listed.stdout and message["Subject"] in listed.stdout


def test_queued_then_waiting_then_dead_states(config_dir):
    """A digest not tried yet is queued; after a failure it is waiting; a dead one says so."""
    config, store = make_project(config_dir)
    run_alerts(config, store, now=NOW, send=False)
    (row,) = list_queue(store)
    assert row.state == "queued" and row.attempts == 0 and "next pass" in format_queue([row])[0]
    (pending,) = store.pending_digests()
    store.note_digest_failure(pending.id, "SMTP x: 451 try later", NOW + timedelta(minutes=1))
    assert list_queue(store)[0].state == "waiting"
    store.note_digest_failure(pending.id, "SMTP x: 554 refused", NOW, permanent=True, dead=True)
    (row,) = list_queue(store)
    assert row.state == "dead" and format_queue([row], header=True)[1].startswith("dead ")


def test_recipient_chooses_the_watches_layout(config_dir):
    """digest_layout: watches groups the stories under each watch; the default lists each story once."""
    people = [
        {"name": "desk", "email": "d@example.org", "digest_layout": "watches"},
        {"name": "analyst", "email": "a@example.org"},
    ]
    config, store = make_project(config_dir, recipients=people)
    run_alerts(config, store, now=NOW)
    texts = {
        d.recipient: message_from_bytes(d.message, policy=policy.default).get_body(("plain",)).get_content()
        for d in store.sent_digests()
    }
    title = "Daesh loses last towns in face of twin Syria, Iraq assaults"
    assert texts["analyst"].count(f". {title}") == 5  # once in the stories, then listed under its 4 watches
    assert "STORIES" in texts["analyst"] and "STORIES" not in texts["desk"]
    assert texts["desk"].count(f"* {title}") == 4


def test_a_first_digest_says_first_mention_on_record_never_an_average_of_nothing(config_dir):
    """With no mention before, the trend says so; the chart's last day holds the articles first stored today,
    and the days before it, before the watch's first mention on record, are no data ("–"), not zeros."""
    config, store = make_project(config_dir)
    (path,) = run_alerts(config, store, now=NOW).written
    text = message_from_bytes(path.read_bytes(), policy=policy.default).get_body(("plain",)).get_content()
    assert (
        "2 articles in the last 24 hours · first mention on record" in text
    )  # Abu Kamal: the Levant and Arabic copies
    assert "average 0.0" not in text and "Today 0" not in text
    assert "– – – – – – – – – – – – – 3" in text  # Deir Ezzor: three copies first stored on 5 Nov
    assert "·············█" in text and " 0 " not in text


def test_digest_layout_is_validated(config_dir):
    """An unknown layout is a config error naming the recipient and the key."""
    people = [{"name": "Samira", "email": "s@example.org", "digest_layout": "tiles"}]
    write_config(config_dir, watches=SAMPLE_WATCHES, recipients=people)
    with pytest.raises(ConfigError) as error:
        load_config(config_dir, env={})
    assert "recipients[0].digest_layout" in str(error.value) and "recipient 'Samira'" in str(error.value)


def test_new_or_edited_watch_backfills_over_stored_articles(config_dir):
    """A watch added after articles were matched still finds them: its cursor starts from the beginning."""
    config, store = make_project(config_dir, watches=[SAMPLE_WATCHES[0]])
    run_alerts(config, store, now=NOW)
    assert {h.hit.watch for h in store.owed_hits("nobody")} == {"Deir Ezzor"}
    config = load_config(write_config(config_dir, watches=SAMPLE_WATCHES), env={})
    report = run_alerts(config, store, now=NOW + timedelta(minutes=1))
    assert report.queued == 1
    assert {h.hit.watch for h in store.owed_hits("nobody")} == {"Deir Ezzor", "Abu Kamal", "Daesh", "SDF"}
    message = message_from_bytes(Path(report.written[0]).read_bytes(), policy=policy.default)
    assert "Deir Ezzor" not in message["Subject"]  # already sent; only the new watches' hits are owed


def test_recipient_gets_only_the_watches_they_chose(config_dir):
    """A recipient listing watches receives only those sections; 'all' receives every watch."""
    people = [
        {"name": "groups", "email": "g@example.org", "watches": ["Daesh", "SDF"]},
        {"name": "everyone", "email": "e@example.org"},
    ]
    config, store = make_project(config_dir, recipients=people)
    report = run_alerts(config, store, now=NOW)
    subjects = {
        store_digest.recipient: message_from_bytes(store_digest.message, policy=policy.default)["Subject"]
        for store_digest in store.sent_digests()
    }
    assert report.queued == 2
    assert subjects["groups"] == "Daesh, SDF: 2 new stories — 5 Nov"
    assert subjects["everyone"] == "Deir Ezzor, Abu Kamal, Daesh, SDF: 2 new stories — 5 Nov"


def test_smtp_down_keeps_the_digest_queued_and_hits_accumulate(config_dir, smtp_server_factory, caplog):
    """With the server down the digest waits with a backoff; later hits get their own digest; both go out later."""
    server = smtp_server_factory("starttls")
    delivery = {**server.settings(), "retry_first_seconds": 60}
    delivery["smtp"] = {**delivery["smtp"], "port": closed_port()}
    config, store = make_project(config_dir, delivery=delivery)
    config = with_env(config, server.env())
    with caplog.at_level(logging.WARNING, logger="alerts"):
        first = run_alerts(config, store, now=NOW, trigger="tick")
    assert (first.queued, first.sent, first.failed) == (1, 0, 1)
    assert [r.getMessage().split()[0] for r in caplog.records] == ["delivery_unavailable"]
    assert not caplog.records[0].exc_info
    (waiting,) = store.pending_digests()
    assert waiting.attempts == 1 and waiting.next_attempt == NOW + timedelta(seconds=60)
    store.add_articles(
        [
            Article(
                id="late",
                url="https://example.org/late",
                title="Clashes near Abu Kamal",
                text="Fighting was reported near Abu Kamal on Sunday.",
                feed_id="x",
                outlet="X",
                fetched=NOW,
            )
        ]
    )
    soon = run_alerts(config, store, now=NOW + timedelta(seconds=30), trigger="manual", send=False)
    assert soon.queued == 1 and len(store.pending_digests()) == 2
    config = with_env(
        load_config(write_config(config_dir, watches=SAMPLE_WATCHES, settings={"delivery": server.settings()}), env={}),
        server.env(),
    )
    early = run_alerts(config, store, now=NOW + timedelta(seconds=45), trigger="tick")
    assert (early.sent, early.failed) == (1, 0)  # the second digest was never tried; the first waits its turn
    later = run_alerts(config, store, now=NOW + timedelta(seconds=61), trigger="tick")
    assert later.sent == 1 and store.pending_digests() == []
    ids = [m["Message-ID"] for m in received(server)]
    assert f"<{waiting.id}>" in ids and len(ids) == 2
    assert store.owed_hits("analyst") == []


def closed_port() -> int:
    """A local port nothing listens on (bound then released)."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_retry_delay_backs_off_exponentially(config_dir):
    """Each failure doubles the wait before the next attempt, up to the configured maximum."""
    from alerts.delivery.queue import retry_delay
    from newswatch.core.config.settings import DeliverySettings

    settings = DeliverySettings(retry_first_seconds=60, retry_max_seconds=3600)
    assert [retry_delay(n, settings).total_seconds() for n in range(1, 9)] == [60, 120, 240, 480, 960, 1920, 3600, 3600]


# -- cadence


def recipient(**fields) -> Recipient:
    return Recipient(name="r", email="r@example.org", **fields)


def test_daily_digest_is_due_after_the_local_time_each_day():
    """A daily 07:00 Europe/Paris recipient is due once after 07:00 Paris time (06:00 UTC in winter)."""
    person = recipient(cadence="daily", at="07:00", timezone="Europe/Paris")
    served = datetime(2017, 11, 4, 6, 0, 30, tzinfo=UTC)
    assert not cadence.is_due(person, served, datetime(2017, 11, 5, 5, 59, tzinfo=UTC), "tick")
    assert cadence.is_due(person, served, datetime(2017, 11, 5, 6, 0, tzinfo=UTC), "tick")
    assert not cadence.is_due(
        person, datetime(2017, 11, 5, 6, 1, tzinfo=UTC), datetime(2017, 11, 5, 20, 0, tzinfo=UTC), "crawl"
    )


def test_weekly_and_hourly_slots():
    """Weekly digests fall on the chosen weekday and time; hourly ones on the hour."""
    weekly = recipient(cadence="weekly", weekday="friday", at="18:30", timezone="Asia/Damascus")
    sunday = datetime(2017, 11, 5, 9, 0, tzinfo=UTC)
    assert cadence.latest_slot(weekly, sunday) == datetime(2017, 11, 3, 16, 30, tzinfo=UTC)  # UTC+2 then
    hourly = recipient(cadence="hourly")
    assert cadence.latest_slot(hourly, sunday + timedelta(minutes=59)) == sunday


def test_immediate_and_manual_are_always_due_and_new_recipients_get_a_first_digest():
    """Immediate recipients are due at every run, anyone on a manual run, a never-served one at once."""
    daily = recipient(cadence="daily")
    assert cadence.is_due(recipient(cadence="immediate"), NOW, NOW, "crawl")
    assert cadence.is_due(daily, NOW, NOW, "manual")
    assert cadence.is_due(daily, None, NOW, "tick")
    assert not cadence.is_due(daily, NOW, NOW + timedelta(minutes=1), "tick")


def test_cadence_decides_who_gets_a_digest_in_the_pass(config_dir):
    """On a tick an immediate recipient gets new hits at once; a daily one waits for their next slot."""
    people = [
        {"name": "fast", "email": "f@example.org", "cadence": "immediate"},
        {"name": "daily", "email": "d@example.org", "cadence": "daily", "at": "07:00"},
    ]
    config, store = make_project(config_dir, recipients=people)
    store.set_cursor(cadence.cursor_name("daily"), (NOW - timedelta(hours=1)).isoformat())  # served at 08:00
    report = run_alerts(config, store, now=NOW, trigger="crawl")
    assert [d.recipient for d in store.sent_digests()] == ["fast"] and report.queued == 1
    assert run_alerts(config, store, now=NOW + timedelta(hours=12), trigger="tick").queued == 0
    next_morning = run_alerts(config, store, now=datetime(2017, 11, 6, 7, 0, tzinfo=UTC), trigger="tick")
    assert next_morning.queued == 1 and store.sent_digests()[0].recipient == "daily"


def test_empty_period_sends_nothing_unless_asked(config_dir):
    """A due recipient with no owed hits gets nothing, unless send_empty is set."""
    people = [
        {"name": "quiet", "email": "q@example.org", "cadence": "hourly"},
        {"name": "wants-news", "email": "w@example.org", "cadence": "hourly", "send_empty": True},
    ]
    config, store = make_project(config_dir, recipients=people)
    run_alerts(config, store, now=NOW, trigger="tick")
    assert len(store.sent_digests()) == 2
    report = run_alerts(config, store, now=NOW + timedelta(hours=1), trigger="tick")
    assert report.queued == 1 and store.sent_digests()[0].recipient == "wants-news"
    empty = message_from_bytes(store.sent_digests()[0].message, policy=policy.default)
    assert empty["Subject"] == "Nothing new for your watches — 5 Nov"
    assert "Nothing new for your watches" in empty.get_body(("plain",)).get_content()


def test_unknown_trigger_is_a_user_error(config_dir):
    """run_alerts refuses a trigger it does not know with a NewswatchError."""
    from newswatch.core.errors import NewswatchError

    config, store = make_project(config_dir)
    with pytest.raises(NewswatchError, match="unknown alerts trigger 'sometimes'"):
        run_alerts(config, store, trigger="sometimes")


def test_recipient_errors_name_the_recipient_and_the_key(config_dir):
    """A bad cadence, time or time zone is reported with the recipient's name and the key path."""
    people = [
        {"name": "ok", "email": "ok@example.org"},
        {
            "name": "Samira",
            "email": "s@example.org",
            "cadence": "fortnightly",
            "at": "25:00",
            "timezone": "Mars/Olympus",
        },
    ]
    write_config(config_dir, watches=SAMPLE_WATCHES, recipients=people)
    with pytest.raises(ConfigError) as error:
        load_config(config_dir, env={})
    lines = str(error.value).splitlines()
    assert len(lines) == 3
    assert all("recipients.yaml: recipients[1]." in line and "recipient 'Samira'" in line for line in lines)
    assert any(".cadence:" in line for line in lines) and any(".at:" in line for line in lines)
    assert any(".timezone:" in line and "unknown time zone 'Mars/Olympus'" in line for line in lines)


# -- commands


def test_preview_writes_html_and_text_without_queuing(config_dir, tmp_path):
    """digest --preview writes each recipient's HTML and text, queues nothing and leaves the hits owed."""
    config, store = make_project(config_dir)
    paths = preview_digests(config, store, tmp_path / "preview", recipient="analyst", now=NOW)
    assert sorted(p.name for p in paths) == ["digest-analyst.html", "digest-analyst.txt"]
    assert "<mark" in paths[0].read_text(encoding="utf-8") or "<mark" in paths[1].read_text(encoding="utf-8")
    assert store.pending_digests() == [] and store.sent_digests() == []
    assert len(store.owed_hits("analyst")) > 0


def test_preview_of_unknown_recipient_is_a_user_error(config_dir, tmp_path):
    """Previewing a recipient that is not configured names them in a NewswatchError."""
    from newswatch.core.errors import NewswatchError

    config, store = make_project(config_dir)
    with pytest.raises(NewswatchError, match="no recipient named 'zoe'"):
        preview_digests(config, store, tmp_path, recipient="zoe")


def test_send_now_ignores_cadence_and_backoff(config_dir):
    """digest --send-now queues for every recipient with owed hits and sends every waiting digest now."""
    people = [{"name": "weekly", "email": "w@example.org", "cadence": "weekly"}]
    config, store = make_project(config_dir, recipients=people)
    store.set_cursor(cadence.cursor_name("weekly"), NOW.isoformat())
    assert run_alerts(config, store, now=NOW, trigger="tick").queued == 0
    report = send_now(config, store, now=NOW)
    assert (report.queued, report.sent) == (1, 1)


def test_outbox_list_and_retry(config_dir, smtp_server):
    """outbox list shows waiting digests with their error; outbox retry sends them before their backoff ends."""
    down = {**smtp_server.settings(), "smtp": {**smtp_server.settings()["smtp"], "port": closed_port()}}
    config, store = make_project(config_dir, delivery=down)
    run_alerts(config, store, now=NOW, trigger="tick")
    (row,) = list_queue(store)
    assert row.sent is None and row.attempts == 1 and "Connection refused" in row.last_error
    assert row.subject.startswith("Deir Ezzor, Abu Kamal") and (row.stories, row.mentions) == (2, row.hits)
    assert row.state == "waiting" and row.eml is None
    assert format_queue([row])[0].startswith("waiting ") and "retry 2017-11-05 09:01" in format_queue([row])[0]
    config = with_env(
        load_config(
            write_config(config_dir, watches=SAMPLE_WATCHES, settings={"delivery": smtp_server.settings()}), env={}
        ),
        smtp_server.env(),
    )
    result = retry_queue(config, store, now=NOW + timedelta(seconds=1))
    assert result.sent == 1 and len(smtp_server.handler.messages) == 1
    (row,) = list_queue(store)
    assert row.sent == NOW + timedelta(seconds=1) and row.state == "sent" and row.attempts == 2
    assert format_queue([]) == ["outbox empty: no digest queued or sent yet"]


# -- SIGKILL while sending: run the pass in a child process and kill it at a chosen SMTP stage

CHILD = """
import sys
from alerts.run import run_alerts
from newswatch.core.config import load_config
from newswatch.core.store.sqlite import SqliteStore

config = load_config(sys.argv[1])
store = SqliteStore(config.path(config.settings.storage.sqlite.path))
print(run_alerts(config, store, trigger="manual"))
"""


def alerts_child(config_dir: Path, server) -> subprocess.Popen:
    """The alerts pass in a fresh Python process, as the service would run it."""
    env = {**os.environ, **server.env()}
    return subprocess.Popen(
        [sys.executable, "-c", CHILD, str(config_dir)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
    )


@pytest.mark.slow  # alerts passes in child processes, killed
@pytest.mark.parametrize(
    ("stage", "copies_after_kill", "sent_after_kill", "copies_in_the_end"),
    [
        ("RCPT", 0, 0, 1),  # before the message went out: sent once, by the rerun
        ("DATA", 1, 0, 2),  # server has it, client killed before the reply: resent with the same Message-ID
        ("QUIT", 1, 1, 1),  # killed after the server accepted and the ledger was written: never resent
    ],
)
def test_sigkill_before_during_and_after_sending_loses_no_hit(
    config_dir, smtp_server_factory, stage, copies_after_kill, sent_after_kill, copies_in_the_end
):
    """SIGKILL at RCPT, DATA or QUIT, then a rerun: every hit is delivered, and any resend has the same Message-ID."""
    handler = RecordingHandler(stall_at=stage)
    server = smtp_server_factory("starttls", handler)
    _config, store = make_project(config_dir, delivery=server.settings())
    child = alerts_child(config_dir, server)
    try:
        assert handler.reached.wait(60), child.communicate(timeout=5)
    finally:
        child.send_signal(signal.SIGKILL)
        child.communicate(timeout=30)
    assert child.returncode == -signal.SIGKILL
    handler.stall_at = None
    handler.release.set()

    assert len(handler.messages) == copies_after_kill
    assert len(store.sent_digests()) == sent_after_kill
    (digest,) = store.pending_digests() or store.sent_digests()  # queued before the first attempt
    every_hit = {owed.hit.key for owed in store.owed_hits("someone-else")}
    assert set(digest.hit_keys) == every_hit and store.owed_hits("analyst") == []

    rerun = alerts_child(config_dir, server)
    _out, err = rerun.communicate(timeout=60)
    assert rerun.returncode == 0, err
    assert len(handler.messages) == copies_in_the_end
    assert {m["Message-ID"] for m in handler.parsed()} == {f"<{digest.id}>"}
    assert store.pending_digests() == [] and [d.id for d in store.sent_digests()] == [digest.id]
    assert store.owed_hits("analyst") == []


def test_immediate_alert_also_goes_to_apprise_urls(config_dir):
    """An immediate recipient with notify_urls is told through Apprise (here json:// to a local HTTP server)."""
    pytest.importorskip("apprise")
    import json
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    posts: list[dict] = []

    class Hook(BaseHTTPRequestHandler):
        def do_POST(self):
            posts.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Hook)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"json://127.0.0.1:{server.server_address[1]}/hook"
        people = [{"name": "desk", "email": "d@example.org", "cadence": "immediate", "notify_urls": [url]}]
        config, store = make_project(config_dir, recipients=people)
        assert run_alerts(config, store, now=NOW, trigger="crawl").queued == 1
    finally:
        server.shutdown()
        server.server_close()
    (post,) = posts
    assert post["title"].startswith("Deir Ezzor, Abu Kamal") and "2 new stories for 4 watches" in post["message"]


def test_a_later_copy_of_a_story_already_sent_is_an_update_not_a_new_story(config_dir, caplog):
    """After a digest with the Deir Ezzor story, a third outlet's copy of it (same cluster) comes in: the next
    digest shows it as an update, counted apart from new stories in the subject, the headers and the log."""
    config, store = make_project(config_dir)
    first = run_alerts(config, store, now=NOW)
    assert first.queued == 1
    later = NOW + timedelta(hours=2)
    store.add_articles(
        [
            Article(
                id="third-1",
                url="https://third.example/deir-ezzor-retaken",
                title="Deir Ezzor retaken, army says",
                text="The army said it had retaken Deir Ezzor from Daesh after weeks of fighting.",
                feed_id="third",
                outlet="Third Outlet",
                language="en",
                cluster_id="story-deir-ezzor",
                published=later - timedelta(minutes=20),
                fetched=later - timedelta(minutes=10),
            )
        ]
    )
    with caplog.at_level(logging.INFO, logger="alerts"):
        second = run_alerts(config, store, now=later)
    assert second.queued == 1
    message = message_from_bytes(Path(second.written[0]).read_bytes(), policy=policy.default)
    assert message["Subject"] == "Deir Ezzor, Daesh: 1 update — 5 Nov"
    assert message["X-Newswatch-Updates"] == "1"
    text = message.get_body(preferencelist=("plain",)).get_content()
    assert "(update)" in text and "Deir Ezzor retaken, army says" in text
    (line,) = [r.getMessage() for r in caplog.records if r.getMessage().startswith("digest_queued")]
    assert " stories=0 " in line and line.endswith(" updates=1")
