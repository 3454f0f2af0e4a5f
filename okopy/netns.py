"""Network namespaces and veth links, through iproute2.

Every namespace made here is named with an `okopy-` prefix: per process
(`okopy-<pid>-<n>-<role>`) for tests and demos, per lab
(`okopy-lab-<lab>-<node>`) for `okopy lab`, whose state file lists them.
Nothing here touches a namespace it did not create.
"""

from __future__ import annotations

import ctypes
import itertools
import os
import subprocess
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field

from okopy.process import run

_counter = itertools.count(1)
CLONE_NEWNET = 0x40000000


def unique_name(role: str) -> str:
    """A namespace name no other process of this machine uses."""
    return f"okopy-{os.getpid()}-{next(_counter)}-{role}"


def existing() -> set[str]:
    out = run(["ip", "netns", "list"], timeout=30)
    return {line.split()[0] for line in out.splitlines() if line.strip()}


@dataclass
class Namespace:
    """A network namespace this process created, with loopback up."""

    name: str
    alive: bool = field(default=False, init=False)

    @classmethod
    def create(cls, role: str, name: str | None = None) -> Namespace:
        """Create a namespace: 'name' if given, else a unique one for 'role'."""
        ns = cls(name or unique_name(role))
        run(["ip", "netns", "add", ns.name], timeout=30)
        ns.alive = True
        ns.run(["ip", "link", "set", "lo", "up"])
        return ns

    def argv(self, argv: Sequence[str]) -> list[str]:
        return ["ip", "netns", "exec", self.name, *argv]

    def run(
        self,
        argv: Sequence[str],
        *,
        check: bool = True,
        timeout: float = 60.0,
        input_text: str | None = None,
    ) -> str:
        """Run 'argv' inside the namespace and return its output."""
        return run(self.argv(argv), check=check, timeout=timeout, input_text=input_text)

    def popen(self, argv: Sequence[str]) -> subprocess.Popen[str]:
        return subprocess.Popen(
            self.argv(argv),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )

    @classmethod
    def adopt(cls, name: str) -> Namespace:
        """A namespace this project created earlier (e.g. by a lab), to delete."""
        ns = cls(name)
        ns.alive = name in existing()
        return ns

    def delete(self) -> None:
        if self.alive:
            run(["ip", "netns", "delete", self.name], check=False, timeout=30)
            self.alive = False


def add_veth(a: Namespace, a_name: str, b: Namespace, b_name: str) -> None:
    """Create a veth pair with one end in each namespace, both up.

    The links are created directly inside the namespaces, so their names
    only need to be unique there."""
    run(
        [
            "ip",
            "link",
            "add",
            a_name,
            "netns",
            a.name,
            "type",
            "veth",
            "peer",
            "name",
            b_name,
            "netns",
            b.name,
        ],
        timeout=30,
    )
    a.run(["ip", "link", "set", a_name, "up"])
    b.run(["ip", "link", "set", b_name, "up"])


def disable_tx_offload(ns: Namespace, ifname: str) -> None:
    """Compute checksums in software on 'ifname'.

    veth leaves TX checksums to the receiver; a userspace switch forwarding
    through AF_PACKET then passes bad checksums on (OVS's own system tests
    do the same)."""
    ns.run(["ethtool", "-K", ifname, "tx", "off"], check=False)


def _setns(fd: int) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.setns(fd, CLONE_NEWNET) != 0:
        code = ctypes.get_errno()
        raise OSError(code, f"setns: {os.strerror(code)}")


@contextmanager
def inside(ns: Namespace) -> Iterator[None]:
    """Run this thread inside 'ns' for a while (sockets made, devices
    named, XDP programs attached there), and come back."""
    home = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
    target = os.open(f"/run/netns/{ns.name}", os.O_RDONLY)
    try:
        _setns(target)
        try:
            yield
        finally:
            _setns(home)
    finally:
        os.close(target)
        os.close(home)
