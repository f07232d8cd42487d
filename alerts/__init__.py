"""The alerts side: match stored articles against watches, build digests, queue and deliver them."""

from alerts.digest import Digest, build_digest
from alerts.outbox import deliver_pending, format_outbox, list_outbox, retry_outbox
from alerts.render import RenderedEmail, build_message, render_digest
from alerts.run import AlertsReport, preview_digests, run_alerts, send_now

__all__ = [
    "AlertsReport",
    "Digest",
    "RenderedEmail",
    "build_digest",
    "build_message",
    "deliver_pending",
    "format_outbox",
    "list_outbox",
    "preview_digests",
    "render_digest",
    "retry_outbox",
    "run_alerts",
    "send_now",
]
