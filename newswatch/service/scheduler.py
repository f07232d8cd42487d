"""The service: an APScheduler 3 BlockingScheduler running crawls (child processes) and the alerts pass.

Jobs are rebuilt from config at each start; everything a run must remember lives in the store. A role
(`newswatch run --role`) picks the jobs: ``all`` (the default) every one; ``crawl`` the crawls only (several
may run at once with a Redis frontier); ``alerts`` the alerts passes, digests and retention (one place at a
time: a second one waits as a standby); ``web`` only the web page (docs/reliability.md, "Roles").
"""

from __future__ import annotations

import contextlib
import logging
import signal
import threading
import time
from contextlib import ExitStack
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from apscheduler.events import (
    EVENT_JOB_ERROR,
    EVENT_JOB_MAX_INSTANCES,
    EVENT_JOB_MISSED,
    EVENT_SCHEDULER_START,
    JobEvent,
)
from apscheduler.schedulers import SchedulerNotRunningError
from apscheduler.schedulers.blocking import BlockingScheduler
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

from alerts.delivery.queue import transport_for
from alerts.run import run_alerts
from newswatch.core.config import Config
from newswatch.core.errors import NewswatchError, StoreBusy
from newswatch.core.store import Store, open_store
from newswatch.core.store.leases import Held, hold, this_process
from newswatch.service.crawl import CrawlProcess, check_frontier

log = logging.getLogger(__name__)


# A crawl child exits 1 when the store refused its writes (disk full, read-only file): the next crawls are
# skipped for a while, doubling up to this long, instead of fetching every page again to nowhere.
_CRAWL_BACKOFF_MAX_SECONDS = 3600
EXIT_FAILED = 1
ROLES = ("all", "crawl", "alerts", "web")
ALERTS_ROLE_LEASE = "alerts-role"  # held by the one process that runs the alerts jobs (role all or alerts)


class Standby:
    """The lease ``name`` of the store held while this process can get it: taken at start when free, else
    waited for (a standby, asking every third of ``seconds``) and taken over when its holder gives it back or
    it runs out (its holder stopped renewing: killed, or stalled). ``active`` is set while this process holds
    it; a holder that cannot renew it for ``seconds`` (the store is down) gives it up here too."""

    def __init__(self, store: Store, name: str, role: str, seconds: float):
        self.store, self.name, self.role, self.seconds = store, name, role, seconds
        self.me = this_process()
        self.active = threading.Event()
        self._stop = threading.Event()
        self._renewed = 0.0
        self._standby_said = False
        self._thread = threading.Thread(target=self._run, name=f"standby-{name}", daemon=True)

    def start(self) -> None:
        """One attempt now (so a lone process is active from its first job), then the rest in a thread."""
        self._attempt()
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self.seconds / 3):
            self._attempt()

    def _attempt(self) -> None:
        try:
            current = self.store.take_lease(self.name, self.me, self.seconds)
        except NewswatchError as exc:
            log.warning("role_lease_not_renewed role=%s lease=%s reason=%s", self.role, self.name, exc)
            if self.active.is_set() and time.monotonic() - self._renewed > self.seconds:
                self.active.clear()
                log.error("role_standby role=%s reason=lease not renewed within %.0f s", self.role, self.seconds)
            return
        if current.id == self.me.id:
            self._renewed = time.monotonic()
            if not self.active.is_set():
                self.active.set()
                self._standby_said = False
                log.info("role_active role=%s lease=%s", self.role, self.name)
        elif self.active.is_set():
            self.active.clear()
            log.error("role_standby role=%s reason=lease lost holder=%s", self.role, current.describe())
        elif not self._standby_said:
            self._standby_said = True
            log.info(
                "role_standby role=%s lease=%s holder=%s (takes over when it ends)",
                self.role,
                self.name,
                current.describe(),
            )

    def stop(self) -> None:
        """Stop renewing and give the lease back, so a standby takes over at once."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()
        if self.active.is_set():
            with contextlib.suppress(NewswatchError):  # else it runs out by itself
                self.store.release_lease(self.name, self.me)
            self.active.clear()


class Service:
    """The jobs of one running service, sharing one open store; ``stop`` ends them cleanly.

    The crawl job and the alerts job have a lock each: a digest stuck on a slow mail server never holds a
    crawl back, and the crawl's own alerts pass is skipped (the next tick does it) while one runs.
    """

    def __init__(self, config: Config, store: Store, role: str = "all"):
        self.config, self.store, self.role = config, store, role
        self.alerts_role: Standby | None = None  # the lease that makes this process the one running alerts
        self.frontier_down = False
        self.stopping = threading.Event()
        self.crawling, self.alerting = threading.Lock(), threading.Lock()  # held while a job runs
        self.crawl: CrawlProcess | None = None
        self.transport = transport_for(config)
        self.crawl_failures, self.crawl_resumes_at = 0, 0.0

    def crawl_then_alerts(self) -> None:
        """One crawl in a child process, then the alerts pass over what it stored."""
        with self.crawling:
            if self.stopping.is_set() or self._backing_off() or not self._frontier_answers():
                return
            started, before = time.monotonic(), self._count()
            log.info("crawl_started feeds=%d", sum(f.enabled for f in self.config.feeds))
            self.crawl = CrawlProcess(self.config)
            if self.stopping.is_set():  # stop() ran before self.crawl was set: it could not stop this one
                self.crawl.stop()
            code = self.crawl.run()
            after = self._count()
            log.info(
                "crawl_done exit=%s seconds=%.1f new_articles=%s",
                code,
                time.monotonic() - started,
                after - before if None not in (before, after) else "unknown",
            )
            self._note_crawl_exit(code)
        if self.role == "all" and not self.stopping.is_set():  # in a thread of its own: a stuck delivery
            # holds no next crawl back
            threading.Thread(target=self._alerts, args=("crawl",), kwargs={"wait": False}, name="alerts").start()

    def _frontier_answers(self) -> bool:
        """With a Redis frontier, whether it answers; while it does not, each crawl is skipped (one line when
        it stops answering, one when it is back): the crawl child would only wait for it."""
        if self.config.settings.crawler.frontier.type == "local":
            return True
        try:
            check_frontier(self.config)
        except NewswatchError as exc:
            if not self.frontier_down:
                log.warning("crawl_skipped reason=%s (the crawls wait for it)", exc)
            self.frontier_down = True
            return False
        if self.frontier_down:
            log.info(
                "frontier_available backend=redis url=%s (crawls resume)", self.config.settings.crawler.frontier.url
            )
        self.frontier_down = False
        return True

    def alerts_after_crawls(self) -> None:
        """Role alerts: the pass that role all runs after each crawl (the crawls run elsewhere)."""
        self._alerts("crawl", wait=False)

    def _count(self) -> int | None:
        try:
            return self.store.count_articles()
        except NewswatchError:
            return None

    def _backing_off(self) -> bool:
        left = self.crawl_resumes_at - time.monotonic()
        if left > 0:
            log.info("crawl_skipped reason=store write failed resumes_in_seconds=%.0f", left)
        return left > 0

    def _note_crawl_exit(self, code: int) -> None:
        if code != EXIT_FAILED or self.stopping.is_set():
            self.crawl_failures = 0
            return
        interval = self.config.settings.schedule.crawl_every_minutes * 60
        delay = min(interval * 2**self.crawl_failures, _CRAWL_BACKOFF_MAX_SECONDS)
        self.crawl_failures += 1
        self.crawl_resumes_at = time.monotonic() + delay
        log.warning(
            "crawl_backoff failures=%d seconds=%.0f reason=the crawl could not write to the store",
            self.crawl_failures,
            delay,
        )

    def digest(self) -> None:
        """The digest job: recipients whose cadence is due get their digest; waiting digests are retried."""
        self._alerts("tick", wait=True)

    def _alerts(self, trigger: str, *, wait: bool) -> None:
        if self.alerts_role is not None and not self.alerts_role.active.is_set():
            log.debug("alerts_skipped trigger=%s reason=a standby (another process runs the alerts)", trigger)
            return
        if not self.alerting.acquire(blocking=wait):
            log.info("alerts_skipped trigger=%s reason=an alerts pass is running", trigger)
            return
        try:
            if self.stopping.is_set():
                return
            report = run_alerts(self.config, self.store, trigger=trigger, transport=self.transport)
        except StoreBusy as exc:
            log.info("alerts_skipped trigger=%s reason=%s", trigger, exc)
            return
        except NewswatchError as exc:
            log.error("alerts_failed trigger=%s reason=%s", trigger, exc)
            return
        finally:
            self.alerting.release()
        log.info("alerts_done trigger=%s %s", trigger, report)

    def prune(self) -> None:
        """The retention job (storage.retention_days): drop what was first stored longer ago. It holds the
        alerts lock and lease, so no alerts pass (this service's or a command's) reads hits while they go."""
        days = self.config.settings.storage.retention_days
        if days is None or (self.alerts_role is not None and not self.alerts_role.active.is_set()):
            return
        with self.alerting:
            if self.stopping.is_set():
                return
            try:
                with hold(self.store, "alerts", "an alerts pass", self.config.settings.schedule.lease_seconds):
                    report = self.store.prune(datetime.now(UTC) - timedelta(days=days))
            except StoreBusy as exc:
                log.info("store_prune_skipped reason=%s (tried again tomorrow)", exc)
                return
            except NewswatchError as exc:
                log.error("store_prune_failed reason=%s (tried again tomorrow)", exc)
                return
        log.info(
            "store_pruned older_than_days=%d articles=%d hits=%d signatures=%d reclaimed_bytes=%d",
            days,
            report.articles,
            report.hits,
            report.signatures,
            report.reclaimed_bytes,
        )

    def stop(self) -> None:
        """Stop taking jobs, end a delivery in progress at once (its digest stays queued, same Message-ID),
        and ask a running crawl to finish (it flushes what it has fetched)."""
        self.stopping.set()
        self.transport.abort()
        if self.crawl:
            threading.Thread(target=self.crawl.stop, daemon=True).start()

    def wait(self) -> None:
        """Wait for the jobs in progress (a crawl has been asked to stop, a delivery aborted)."""
        for lock in (self.alerting, self.crawling):
            with lock:
                pass


def build_scheduler(config: Config, service: Service) -> BlockingScheduler:
    """The scheduler with the jobs of the service's role: the crawl job (interval, first run now; role all
    and crawl), the digest job (cron) and, with storage.retention_days set, the daily retention job (role all
    and alerts), and for role alerts the pass after the crawls run elsewhere (interval, first run now); role
    web has none."""
    schedule = config.settings.schedule
    zone = ZoneInfo(schedule.timezone)
    scheduler = BlockingScheduler(timezone=zone)
    interval = schedule.crawl_every_minutes * 60
    role = service.role
    scheduler.add_listener(_log_job_event, EVENT_JOB_ERROR | EVENT_JOB_MISSED | EVENT_JOB_MAX_INSTANCES)
    if role in ("all", "crawl", "alerts"):
        scheduler.add_job(
            service.alerts_after_crawls if role == "alerts" else service.crawl_then_alerts,
            IntervalTrigger(seconds=interval, timezone=zone),
            id="alerts" if role == "alerts" else "crawl",
            next_run_time=datetime.now(UTC),
            max_instances=1,
            coalesce=True,
            misfire_grace_time=max(int(interval / 2), 1),
        )
    if role not in ("all", "alerts"):
        return scheduler
    scheduler.add_job(
        service.digest,
        CronTrigger.from_crontab(schedule.digest_cron, timezone=zone),
        id="digest",
        max_instances=1,
        coalesce=True,
        misfire_grace_time=3600,
    )
    if config.settings.storage.retention_days is not None:
        scheduler.add_job(  # daily, the first an hour after start: a service restarted often still prunes
            service.prune,
            IntervalTrigger(days=1, timezone=zone),
            id="retention",
            next_run_time=datetime.now(UTC) + timedelta(hours=1),
            max_instances=1,
            coalesce=True,
            misfire_grace_time=3600,
        )
    return scheduler


def _log_job_event(event: JobEvent) -> None:
    if event.code == EVENT_JOB_ERROR:
        log.error("job_failed job=%s error=%r", event.job_id, getattr(event, "exception", None))
    elif event.code == EVENT_JOB_MISSED:
        log.warning("job_missed job=%s", event.job_id)
    else:
        log.warning("job_still_running job=%s (skipped this run)", event.job_id)


def run_service(config: Config, role: str = "all") -> None:
    """Run ``role``'s jobs (see the module's docstring) until SIGINT/SIGTERM; a running crawl is asked to
    finish and the store is closed cleanly.

    One ``all`` service per store: its lease (renewed while it runs) makes a second `newswatch run` on the
    same SQLite file or Elasticsearch index prefix refuse with StoreBusy, naming this one. With a local
    frontier, one crawling process per store too (role all or crawl: the lease "crawl"); with a Redis
    frontier, crawl roles run side by side. Roles all and alerts run the alerts jobs only while they hold
    the lease ALERTS_ROLE_LEASE (Standby).
    """
    if role not in ROLES:
        raise NewswatchError(f"unknown role {role!r} (expected one of {', '.join(ROLES)})")
    seconds = config.settings.schedule.lease_seconds
    with open_store(config) as store, ExitStack() as held:
        leases = []
        if role == "all":
            leases.append(held.enter_context(hold(store, "service", "newswatch run", seconds)))
        if role in ("all", "crawl") and config.settings.crawler.frontier.type == "local":
            what = "a crawler (crawler.frontier: local; with redis, crawlers share the work)"
            leases.append(held.enter_context(hold(store, "crawl", what, seconds)))
        service = Service(config, store, role)
        if role in ("all", "alerts"):
            service.alerts_role = Standby(store, ALERTS_ROLE_LEASE, role, seconds)
            service.alerts_role.start()
            held.callback(service.alerts_role.stop)
        scheduler = build_scheduler(config, service)
        web = _start_web(config, store, always=role == "web") if role in ("all", "web") else None
        for lease in leases:
            threading.Thread(target=_stop_when_lost, args=(lease, service, scheduler), daemon=True).start()

        def on_signal(signum, _frame):
            log.info("service_stopping signal=%s", signal.Signals(signum).name)
            service.stop()
            # Not from the handler: it may have interrupted the scheduler inside its executor's lock, which
            # shutting the executor down takes again (a deadlock).
            threading.Thread(target=_shut_down, args=(scheduler,), name="shutdown", daemon=True).start()

        # A signal before the scheduler runs cannot shut it down: it stops as soon as it has started.
        def on_start(_event) -> None:
            if service.stopping.is_set():
                _shut_down(scheduler)

        scheduler.add_listener(on_start, EVENT_SCHEDULER_START)

        signal.signal(signal.SIGTERM, on_signal)
        signal.signal(signal.SIGINT, on_signal)
        log.info(
            "service_started role=%s frontier=%s crawl_every_minutes=%s digest_cron=%r store=%s delivery=%s",
            role,
            config.settings.crawler.frontier.type,
            config.settings.schedule.crawl_every_minutes,
            config.settings.schedule.digest_cron,
            config.settings.storage.backend,
            config.settings.delivery.method,
        )
        try:
            scheduler.start()
        finally:
            service.wait()  # the jobs in progress end before the store closes
            if web is not None:
                web.stop()
    if any(lease.lost.is_set() for lease in leases):
        raise StoreBusy("newswatch run: another service took over this store (this one stalled past its lease)")
    log.info("service_stopped role=%s", role)


def _start_web(config: Config, store: Store, *, always: bool = False):
    """With web.enabled (or ``always``: role web), the web page on the service's store, serving until the
    service stops; None otherwise. Refused (NewswatchError, before the scheduler starts) on a network address
    without credentials."""
    if not (always or config.settings.web.enabled):
        return None
    from newswatch.web.server import WebServer  # only when enabled: uvicorn, Starlette and Jinja2 stay unloaded

    web = WebServer(config, store=store)
    web.start()
    return web


def _stop_when_lost(lease: Held, service: Service, scheduler: BlockingScheduler) -> None:
    """Another service took the store over (this one stalled past its lease): this one stops."""
    lease.lost.wait()
    if not service.stopping.is_set():
        service.stop()
        _shut_down(scheduler)


def _shut_down(scheduler: BlockingScheduler) -> None:
    """Stop the scheduler's loop if it runs (from a signal, the lease watcher, or its start event: any of
    them may come first, and twice is once)."""
    with contextlib.suppress(SchedulerNotRunningError):
        scheduler.shutdown(wait=False)
