"""Leases of the store: who this process is, whether a holder on this host is alive, holding one for a block."""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from newswatch.core.errors import NewswatchError, StoreBusy
from newswatch.core.models import LeaseHolder

if TYPE_CHECKING:
    from newswatch.core.store import Store

log = logging.getLogger(__name__)


def this_process() -> LeaseHolder:
    """A new holder for this process: a fresh id, this host's name and this pid."""
    return LeaseHolder(id=uuid.uuid4().hex, host=socket.gethostname(), pid=os.getpid())


def holder_key(holder: LeaseHolder) -> str:
    """``id pid host``: how a digest claim names its holder, so a claim of a killed process can be judged."""
    return f"{holder.id} {holder.pid} {holder.host}"


def claim_vanished(key: str | None) -> bool:
    """Whether the holder a claim names (see holder_key) ran on this host and is gone."""
    parts = (key or "").split(" ", 2)
    if len(parts) != 3 or not parts[1].isdigit():
        return False
    return vanished(LeaseHolder(parts[0], parts[2], int(parts[1])))


def vanished(holder: LeaseHolder) -> bool:
    """True when ``holder`` ran on this host and its process is gone (killed): its lease may be taken now
    instead of after it runs out. A holder on another host is never judged from here."""
    if holder.host != socket.gethostname() or holder.pid == os.getpid():
        return False
    try:
        os.kill(holder.pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:  # alive, another user's
        return False
    return False


class Held:
    """A lease taken by ``hold``: renewed in the background until released; ``lost`` is set if another
    holder took it meanwhile (this process stalled past its expiry)."""

    def __init__(self, store: Store, name: str, holder: LeaseHolder, seconds: float):
        self.store, self.name, self.holder, self.seconds = store, name, holder, seconds
        self.lost = threading.Event()
        self._renewed = time.monotonic()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._renew, name=f"lease-{name}", daemon=True)

    def _renew(self) -> None:
        while not self._stop.wait(self.seconds / 3):
            try:
                current = self.store.take_lease(self.name, self.holder, self.seconds)
            except Exception as exc:  # the store is down or failing: try again while the lease lasts
                log.warning("lease_not_renewed lease=%s reason=%s", self.name, exc)
                if time.monotonic() - self._renewed > self.seconds:  # it has run out: another may hold it
                    log.error("lease_lost lease=%s reason=not renewed within %.0f s", self.name, self.seconds)
                    self.lost.set()
                    return
                continue
            self._renewed = time.monotonic()
            if current.id != self.holder.id:
                log.error("lease_lost lease=%s holder=%s", self.name, current.describe())
                self.lost.set()
                return

    def release(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()
        try:
            self.store.release_lease(self.name, self.holder)
        except NewswatchError as exc:  # it runs out by itself
            log.warning("lease_not_released lease=%s reason=%s", self.name, exc)


@contextmanager
def hold(store: Store, name: str, what: str, seconds: float) -> Iterator[Held]:
    """Hold the lease ``name`` of ``store`` for the block, renewed in the background; raises StoreBusy,
    naming the holder, when another live process holds it (``what`` says what the lease is for)."""
    me = this_process()
    current = store.take_lease(name, me, seconds)
    if current.id != me.id:
        until = f", its lease runs out at {current.expires:%H:%M:%S} UTC" if current.expires else ""
        raise StoreBusy(f"{what} already runs on this store: {current.describe()}{until}")
    held = Held(store, name, me, seconds)
    held._thread.start()
    try:
        yield held
    finally:
        held.release()
