"""Optional push of immediate alerts to Apprise URLs (Slack, Telegram, Matrix...), beside the digest itself."""

from __future__ import annotations

import logging
import warnings

from alerts.digests.render import header_safe

log = logging.getLogger(__name__)


class AppriseNotifier:
    """Optional push of immediate alerts to Apprise URLs (Slack, Telegram, Matrix...); needs ``pip install apprise``."""

    def __init__(self, urls: list[str]):
        self.urls = urls

    def notify(self, title: str, body: str) -> bool:
        """Send one notification to every URL; returns False (and logs one line) when it could not."""
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
            ok = bool(sender.notify(title=header_safe(title), body=body))
        if not ok:
            log.warning("apprise_failed urls=%d", len(self.urls))
        return ok
