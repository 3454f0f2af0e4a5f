"""Fixtures: a private patched Open vSwitch in its own namespace, and hosts.

Each fixture removes what it made when the test ends, pass or fail.  Tests
using them need root; without it they are skipped, unless
OKOPY_REQUIRE_INTEGRATION=1 (set by scripts/test), where they fail.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from okopy.lab.hosts import Host, attach_host
from okopy.netns import Namespace
from okopy.ovs.instance import DpdkSettings, OvsInstance, OvsNotBuilt, OvsTools
from okopy.paths import Layout, default_layout

BRIDGE = "br0"


def unavailable(reason: str) -> None:
    if os.environ.get("OKOPY_REQUIRE_INTEGRATION") == "1":
        pytest.fail(reason + " (OKOPY_REQUIRE_INTEGRATION=1)")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def layout() -> Layout:
    return default_layout()


@pytest.fixture(scope="session")
def kernel_bpf() -> None:
    """The kernel's BPF verifier and test runner: needs root (CAP_BPF)."""
    if os.geteuid() != 0:
        unavailable("needs root (CAP_BPF) for the kernel verifier")


@pytest.fixture(scope="session")
def ovs_tools(layout: Layout) -> OvsTools:
    """The built Open vSwitch; needs root to be of any use."""
    if os.geteuid() != 0:
        unavailable("needs root for network namespaces")
    try:
        return OvsTools.from_layout(layout)
    except OvsNotBuilt as e:
        unavailable(str(e))
        raise


@contextlib.contextmanager
def private_switch(
    tools: OvsTools, rundir: Path, dpdk: Callable[[Namespace], DpdkSettings] | None = None
) -> Iterator[OvsInstance]:
    """ovsdb-server + ovs-vswitchd in a namespace, with netdev bridge br0;
    with DPDK settings made by 'dpdk' for that namespace if given."""
    ns = Namespace.create("sw")
    instance = OvsInstance(tools, rundir, ns, dpdk(ns) if dpdk else None)
    try:
        instance.start()
        instance.add_bridge(BRIDGE)
        yield instance
    finally:
        instance.stop()
        ns.delete()


@pytest.fixture
def switch(ovs_tools: OvsTools, tmp_path: Path) -> Iterator[OvsInstance]:
    """ovsdb-server + ovs-vswitchd in a namespace, with netdev bridge br0."""
    with private_switch(ovs_tools, tmp_path / "ovs") as instance:
        yield instance


HostFactory = Callable[[str, str, int], Host]


@pytest.fixture
def add_host(switch: OvsInstance) -> Iterator[HostFactory]:
    """Make hosts: add_host(name, ip_cidr, ofport) -> Host on br0."""
    made: list[Host] = []

    def make(name: str, ip: str, ofport: int) -> Host:
        host = attach_host(switch, BRIDGE, name, ip, ofport)
        made.append(host)
        return host

    try:
        yield make
    finally:
        for host in made:
            host.delete()
