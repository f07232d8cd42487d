"""Each digest sent once by one sender, whatever runs at once; a digest refused for good becomes a dead
letter that `outbox retry --id` revives (issue: exactly once). Real SMTP servers (aiosmtpd), real stores."""

from __future__ import annotations

import logging
import subprocess
import time
from datetime import timedelta

from alerts.delivery.queue import deliver_pending, format_queue, list_queue, retry_queue
from alerts.run import run_alerts
from newswatch.core.errors import NewswatchError
from newswatch.core.models import LeaseHolder
from tests.conftest import spawn
from tests.plugins.smtp import RecordingHandler
from tests.test_alerts_run import NOW, make_project, received


def test_two_senders_at_once_send_a_digest_once(config_dir, smtp_server_factory):
    """Two `outbox retry` processes at once against a slow server (it holds DATA): one copy arrives; the
    loser skips the digest another process is sending."""
    handler = RecordingHandler(stall_at="DATA")
    server = smtp_server_factory("none", handler=handler)
    config, store = make_project(config_dir, delivery=server.settings())
    run_alerts(config, store, now=NOW, send=False)
    (queued,) = store.pending_digests()
    store.close()
    senders = [spawn(config_dir, "outbox", "retry", stdout=subprocess.PIPE, stderr=subprocess.STDOUT) for _ in "ab"]
    assert handler.reached.wait(60)
    time.sleep(3)  # the second sender has had time to try
    handler.release.set()
    outputs = [sender.communicate(timeout=60)[0] for sender in senders]
    assert [m["Message-ID"] for m in received(server)] == [f"<{queued.id}>"]
    assert sum("digest_sent" in output for output in outputs) == 1
    assert sum("another process is sending it" in output for output in outputs) == 1, outputs


def test_a_sender_that_died_holding_a_digest_leaves_it_to_the_next_after_its_claim(config_dir, smtp_server_factory):
    """A claim of a sender that died runs out; the next sender sends the digest under the same Message-ID."""
    server = smtp_server_factory("none")
    config, store = make_project(config_dir, delivery=server.settings())
    run_alerts(config, store, now=NOW, send=False)
    (queued,) = store.pending_digests()
    assert store.claim_digest(queued.id, LeaseHolder("died", "another-host", 1), 1)
    assert deliver_pending(config, store, now=NOW, force=True).sent == 0
    time.sleep(1.2)
    assert deliver_pending(config, store, now=NOW, force=True).sent == 1
    assert [m["Message-ID"] for m in received(server)] == [f"<{queued.id}>"]


def test_a_digest_refused_for_good_becomes_a_dead_letter_until_revived(config_dir, smtp_server_factory, caplog):
    """554 on DATA `dead_after_failures` times: the digest is dead (logged once, listed, not retried);
    temporary refusals (451) do not count; `retry_queue(ids=...)` revives it and sends it."""
    handler = RecordingHandler(data_reply="451 4.3.0 try again later")
    server = smtp_server_factory("none", handler=handler)
    delivery = {**server.settings(), "dead_after_failures": 2}
    config, store = make_project(config_dir, delivery=delivery)
    with caplog.at_level(logging.INFO, logger="alerts"):
        for minutes in range(3):
            run_alerts(config, store, now=NOW + timedelta(minutes=minutes), trigger="manual")
        (waiting,) = store.pending_digests()
        assert waiting.attempts == 3 and store.dead_digests() == []
        handler.data_reply = "554 5.7.1 message refused"
        run_alerts(config, store, now=NOW + timedelta(minutes=5), trigger="manual")
        (refused,) = store.pending_digests()  # one refusal: still waiting
        assert (refused.attempts, refused.refusals) == (4, 1)
        run_alerts(config, store, now=NOW + timedelta(minutes=6), trigger="manual")
    assert store.pending_digests() == [] and [d.id for d in store.dead_digests()] == [waiting.id]
    assert caplog.text.count("digest_dead") == 1 and f"outbox retry --id {waiting.id}" in caplog.text
    lines = format_queue(list_queue(store))
    assert lines[0].startswith("dead ") and f"id {waiting.id}" in lines[0] and "last error: SMTP" in lines[0]
    assert "554" in lines[0]
    assert retry_queue(config, store, now=NOW + timedelta(hours=1)).sent == 0  # dead: not retried
    try:
        retry_queue(config, store, ids=["nope@newswatch"])
    except NewswatchError as exc:
        assert "nope@newswatch" in str(exc)
    else:
        raise AssertionError("an unknown id is the user's error")
    handler.data_reply = "250 OK"
    assert retry_queue(config, store, now=NOW + timedelta(hours=1), ids=[waiting.id]).sent == 1
    assert store.dead_digests() == [] and [m["Message-ID"] for m in received(server)] == [f"<{waiting.id}>"]
