"""Requests sent to switches and waiting for their replies, by xid.

The controller's owner thread is the only one that touches a
`PendingRequests`: it allocates every xid okopy puts on a message, and it
alone matches replies to waiters.  So no lock is needed, two requests never
share an xid, and a reply reaches exactly one waiter: the one that sent a
request with that xid on that connection, expecting that type of reply.
Waiters in other threads hold only the `Future`.
"""

from __future__ import annotations

import random
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any

MAX_XID = 0xFFFFFFFF


@dataclass
class Waiter:
    """One request in flight: where it went, what answer it expects."""

    xid: int
    conn: Any  # the connection (os-ken Datapath) the request went out on
    expect: type
    future: Future[Any] = field(default_factory=Future)


class PendingRequests:
    """The xid allocator and the table of waiting requests.  Not
    thread-safe on purpose: one thread owns it."""

    def __init__(self, first_xid: int | None = None) -> None:
        self._next = random.randint(1, MAX_XID) if first_xid is None else first_xid
        self._waiters: dict[int, Waiter] = {}

    def __len__(self) -> int:
        return len(self._waiters)

    def next_xid(self) -> int:
        """A fresh xid, never one a waiting request holds (nor 0)."""
        while True:
            xid = self._next
            self._next = (self._next % MAX_XID) + 1
            if xid not in self._waiters:
                return xid

    def add(self, conn: Any, expect: type) -> Waiter:
        waiter = Waiter(self.next_xid(), conn, expect)
        self._waiters[waiter.xid] = waiter
        return waiter

    def _take(self, conn: Any, xid: int) -> Waiter | None:
        waiter = self._waiters.get(xid)
        if waiter is None or waiter.conn is not conn:
            return None
        del self._waiters[xid]
        return waiter

    def resolve(self, conn: Any, xid: int, reply: Any) -> bool:
        """Hand 'reply' to the request 'xid' sent on 'conn' if it expects
        that type of reply; False when no waiter takes it."""
        waiter = self._waiters.get(xid)
        if waiter is None or waiter.conn is not conn or not isinstance(reply, waiter.expect):
            return False
        del self._waiters[xid]
        if not waiter.future.done():
            waiter.future.set_result(reply)
        return True

    def fail(self, conn: Any, xid: int, error: BaseException) -> bool:
        """The switch refused request 'xid' on 'conn'; False if no such request."""
        waiter = self._take(conn, xid)
        if waiter is None:
            return False
        if not waiter.future.done():
            waiter.future.set_exception(error)
        return True

    def fail_connection(self, conn: Any, error: BaseException) -> int:
        """'conn' is gone: every request sent on it fails; returns how many."""
        gone = [w for w in self._waiters.values() if w.conn is conn]
        for w in gone:
            del self._waiters[w.xid]
            if not w.future.done():
                w.future.set_exception(error)
        return len(gone)

    def forget(self, waiter: Waiter) -> None:
        """The requester stopped waiting (timeout): a late reply is dropped."""
        if self._waiters.get(waiter.xid) is waiter:
            del self._waiters[waiter.xid]
