"""The service: an APScheduler 3 BlockingScheduler running crawls (child processes) and the alerts pass.

Jobs are rebuilt from config at each start; everything a run must remember lives in the store.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from apscheduler.events import EVENT_JOB_ERROR, EVENT_JOB_MAX_INSTANCES, EVENT_JOB_MISSED, JobEvent
from apscheduler.schedulers.blocking import BlockingScheduler
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

from alerts.run import run_alerts
from newswatch.core.config import Config
from newswatch.core.errors import NewswatchError
from newswatch.core.store import Store, open_store
from newswatch.service.crawl import CrawlProcess

log = logging.getLogger(__name__)


class Service:
    """The jobs of one running service, sharing one open store; ``stop`` ends them cleanly."""

    def __init__(self, config: Config, store: Store):
        self.config, self.store = config, store
        self.stopping = threading.Event()
        self.busy = threading.Lock()  # held while a job runs, so shutdown can wait for it
        self.crawl: CrawlProcess | None = None

    def crawl_then_alerts(self) -> None:
        """One crawl in a child process, then the alerts pass over what it stored."""
        with self.busy:
            if self.stopping.is_set():
                return
            started = time.monotonic()
            log.info("crawl_started feeds=%d", sum(f.enabled for f in self.config.feeds))
            self.crawl = CrawlProcess(self.config)
            code = self.crawl.run()
            log.info(
                "crawl_done exit=%s seconds=%.1f articles=%d",
                code,
                time.monotonic() - started,
                self.store.count_articles(),
            )
            if not self.stopping.is_set():
                self._alerts("crawl")

    def digest(self) -> None:
        """The digest job: recipients whose cadence is due get their digest; waiting digests are retried."""
        with self.busy:
            if not self.stopping.is_set():
                self._alerts("tick")

    def _alerts(self, trigger: str) -> None:
        try:
            report = run_alerts(self.config, self.store, trigger=trigger)
        except NewswatchError as exc:
            log.error("alerts_failed trigger=%s reason=%s", trigger, exc)
            return
        log.info("alerts_done trigger=%s %s", trigger, report)

    def stop(self) -> None:
        """Stop taking jobs and ask a running crawl to finish (it flushes what it has fetched)."""
        self.stopping.set()
        if self.crawl:
            threading.Thread(target=self.crawl.stop, daemon=True).start()


def build_scheduler(config: Config, service: Service) -> BlockingScheduler:
    """The scheduler with the crawl job (interval, first run now) and the digest job (cron)."""
    schedule = config.settings.schedule
    zone = ZoneInfo(schedule.timezone)
    scheduler = BlockingScheduler(timezone=zone)
    interval = schedule.crawl_every_minutes * 60
    scheduler.add_job(
        service.crawl_then_alerts,
        IntervalTrigger(seconds=interval, timezone=zone),
        id="crawl",
        next_run_time=datetime.now(UTC),
        max_instances=1,
        coalesce=True,
        misfire_grace_time=max(int(interval / 2), 1),
    )
    scheduler.add_job(
        service.digest,
        CronTrigger.from_crontab(schedule.digest_cron, timezone=zone),
        id="digest",
        max_instances=1,
        coalesce=True,
        misfire_grace_time=3600,
    )
    scheduler.add_listener(_log_job_event, EVENT_JOB_ERROR | EVENT_JOB_MISSED | EVENT_JOB_MAX_INSTANCES)
    return scheduler


def _log_job_event(event: JobEvent) -> None:
    if event.code == EVENT_JOB_ERROR:
        log.error("job_failed job=%s error=%r", event.job_id, getattr(event, "exception", None))
    elif event.code == EVENT_JOB_MISSED:
        log.warning("job_missed job=%s", event.job_id)
    else:
        log.warning("job_still_running job=%s (skipped this run)", event.job_id)


def run_service(config: Config) -> None:
    """Run until SIGINT/SIGTERM; a running crawl is asked to finish and the store is closed cleanly."""
    with open_store(config) as store:
        service = Service(config, store)
        scheduler = build_scheduler(config, service)

        def on_signal(signum, _frame):
            log.info("service_stopping signal=%s", signal.Signals(signum).name)
            service.stop()
            scheduler.shutdown(wait=False)

        signal.signal(signal.SIGTERM, on_signal)
        signal.signal(signal.SIGINT, on_signal)
        log.info(
            "service_started crawl_every_minutes=%s digest_cron=%r store=%s delivery=%s",
            config.settings.schedule.crawl_every_minutes,
            config.settings.schedule.digest_cron,
            config.settings.storage.backend,
            config.settings.delivery.method,
        )
        try:
            scheduler.start()
        finally:
            with service.busy:  # wait for the job in progress (its crawl has been asked to stop) ...
                pass  # ... before the store closes
    log.info("service_stopped")
