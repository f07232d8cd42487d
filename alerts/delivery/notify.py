"""Optional push of immediate alerts to Apprise URLs (Slack, Telegram, Matrix...), beside the digest itself."""

from __future__ import annotations

import logging
import threading
import warnings

from alerts.digests.render import header_safe

log = logging.getLogger(__name__)

# Apprise's own timeouts (4 s to connect, 4 s per read) bound each wait, not a server that answers a byte at
# a time: past this, the alerts pass goes on without waiting (the notification may still arrive).
NOTIFY_DEADLINE_SECONDS = 30.0


class AppriseNotifier:
    """Optional push of immediate alerts to Apprise URLs (Slack, Telegram, Matrix...); needs ``pip install apprise``."""

    def __init__(self, urls: list[str], *, deadline: float = NOTIFY_DEADLINE_SECONDS):
        self.urls = urls
        self.deadline = deadline

    def notify(self, title: str, body: str) -> bool:
        """Send one notification to every URL; returns False (and logs one line) when it could not, or when
        it has not finished within ``deadline`` seconds (it goes on in a daemon thread, never waited for)."""
        with warnings.catch_warnings():
            # apprise loads its plugins lazily and one imports the deprecated stdlib imghdr: not our fault.
            warnings.simplefilter("ignore", DeprecationWarning)
            try:
                import apprise
            except ImportError:
                log.warning("apprise_missing urls=%d hint=pip-install-apprise", len(self.urls))
                return False
            sender = apprise.Apprise()
            for url in self.urls:
                sender.add(url)
            outcome: list[bool] = []

            def send() -> None:
                outcome.append(bool(sender.notify(title=header_safe(title), body=body)))

            worker = threading.Thread(target=send, name="apprise-notify", daemon=True)
            worker.start()
            worker.join(self.deadline)
        if worker.is_alive():
            log.warning("apprise_timeout urls=%d seconds=%g", len(self.urls), self.deadline)
            return False
        ok = bool(outcome and outcome[0])
        if not ok:
            log.warning("apprise_failed urls=%d", len(self.urls))
        return ok
