"""Which of several controllers of one policy is the master.

The controllers share a lock in a coordination service through tooz (etcd
v3, Debian's etcd-server, in the tests and the lab).  The lock's key is
created anew by every master, so the key's etcd create revision is a
generation id that only grows: the master sends it with its OpenFlow
role request (MASTER), the others send the same number with theirs
(SLAVE), and a switch refuses a request whose generation is older than
one it has seen, so a master that lost the lock (paused, cut off) cannot
take a switch back.  The lock lives on an etcd lease of `ttl` seconds
that tooz's heartbeat renews; when the master dies the lease ends and
another controller takes the lock.

A single controller needs none of this: without a coordination URL it is
the master (and sends no role requests)."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

log = logging.getLogger("okopy.controller.election")
LOCK = b"okopy-master"
DEFAULT_TTL = 2  # seconds; etcd's shortest lease with its default election timeout


@dataclass(frozen=True)
class Standing:
    """This controller's standing: master or not, and the generation id of
    the current master (None while there is none)."""

    master: bool
    generation: int | None


class Election(Protocol):
    def poll(self) -> Standing: ...

    def stop(self) -> None: ...


def with_lock_ttl(url: str, ttl: int) -> str:
    """'url' with tooz's lock_timeout (the lease's seconds) unless it has
    one."""
    parts = urlsplit(url)
    query = dict(parse_qsl(parts.query))
    query.setdefault("lock_timeout", str(ttl))
    return urlunsplit(parts._replace(query=urlencode(query)))


class EtcdElection:
    """The election through tooz's etcd3 driver (URL etcd3+http://HOST:PORT)."""

    def __init__(self, url: str, member: str, ttl: int = DEFAULT_TTL) -> None:
        from tooz import coordination  # noqa: PLC0415 - only with a coordination URL
        from tooz.drivers.etcd3gw import Etcd3Lock  # noqa: PLC0415

        if not url.startswith("etcd3+"):
            raise ValueError(f"{url}: give an etcd3+http://HOST:PORT URL")
        self.coord: Any = coordination.get_coordinator(with_lock_ttl(url, ttl), member.encode())
        self.coord.start(start_heart=True)
        self.lock: Any = self.coord.get_lock(LOCK)
        self.key = Etcd3Lock.LOCK_PREFIX + LOCK
        self.mine: int | None = None  # our generation while we hold the lock

    def _generation(self) -> int | None:
        found = self.coord.client.get(self.key, metadata=True)
        return int(found[0][1]["create_revision"]) if found else None

    def poll(self) -> Standing:
        generation = self._generation()
        # Only a free lock is worth trying: each try takes an etcd lease.
        if self.mine is None and generation is None and self.lock.acquire(blocking=False):
            self.mine = generation = self._generation()
        if self.mine is not None and generation != self.mine:
            # The lease ended (this process stalled): another may hold it.
            log.warning("the master lock was lost (generation %s, now %s)", self.mine,
                        generation)  # fmt: skip
            self.mine = None
            try:
                self.lock.release()
            except Exception as e:
                log.debug("releasing a lost lock: %s", e)
        return Standing(self.mine is not None, generation)

    def stop(self) -> None:
        try:
            if self.mine is not None:
                self.lock.release()
        finally:
            self.coord.stop()
