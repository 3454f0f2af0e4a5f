"""Hosts: network namespaces with one veth link into a switch's bridge."""

from __future__ import annotations

import re
from dataclasses import dataclass

from okopy.netns import Namespace, add_veth, disable_tx_offload
from okopy.ovs.instance import OvsInstance


@dataclass(frozen=True)
class PingResult:
    sent: int
    received: int
    rtt_avg_ms: float | None

    @property
    def loss(self) -> float:
        return 1.0 - self.received / self.sent if self.sent else 1.0


_PING_COUNTS = re.compile(r"(\d+) packets transmitted, (\d+) received")
_PING_RTT = re.compile(r"= [\d.]+/([\d.]+)/")


def parse_ping(output: str) -> PingResult:
    """Read the summary of iputils `ping`."""
    m = _PING_COUNTS.search(output)
    if m is None:
        raise ValueError(f"no ping summary in: {output.strip()[-200:]!r}")
    rtt = _PING_RTT.search(output)
    return PingResult(int(m.group(1)), int(m.group(2)), float(rtt.group(1)) if rtt else None)


@dataclass
class Host:
    """A namespace with `eth0` plugged into a bridge port."""

    name: str
    ns: Namespace
    ip: str
    port: str
    ofport: int

    @property
    def address(self) -> str:
        return self.ip.split("/")[0]

    def ping(
        self,
        dest: str,
        count: int = 3,
        interval: float = 0.2,
        deadline: float | None = None,
    ) -> PingResult:
        """Ping 'dest' 'count' times; with 'deadline' (seconds), keep sending
        until 'count' replies arrive or the deadline passes."""
        argv = ["ping", "-n", "-c", str(count), "-i", str(interval), "-W", "2"]
        if deadline is not None:
            argv += ["-w", str(int(deadline))]
        out = self.ns.run(
            [*argv, dest],
            check=False,
            timeout=(deadline or count * interval) + 10,
        )
        return parse_ping(out)

    def delete(self) -> None:
        self.ns.delete()


def port_name(bridge: str, ofport: int) -> str:
    """The switch's port (and its device) for a host on 'bridge' port
    'ofport': "<bridge>-p<ofport>", within Linux's 15 characters."""
    return f"{bridge}-p{ofport}"[:15]


def add_addresses(ns: Namespace, ifname: str, *cidrs: str | None) -> None:
    """Give 'ifname' in 'ns' each address of 'cidrs' (None: none).  IPv6
    ones skip duplicate address detection: usable at once, not after the
    second or so of probes (the lab's addresses are its own)."""
    for cidr in cidrs:
        if cidr:
            nodad = ["nodad"] if ":" in cidr else []
            ns.run(["ip", "addr", "add", cidr, "dev", ifname, *nodad])


def plug(
    ns: Namespace,
    switch: OvsInstance,
    bridge: str,
    ip: str,
    ofport: int,
    mac: str | None = None,
    port_type: str = "afpacket",
    ip6: str | None = None,
) -> str:
    """Give 'ns' an `eth0` with address 'ip' (CIDR; and 'ip6' too) on
    'bridge' port 'ofport' of 'switch' (which runs in its own namespace),
    read by the switch as 'port_type' ("afpacket" or "afxdp"); returns the
    port name."""
    if switch.netns is None:
        raise ValueError("the switch must run in its own network namespace")
    port = port_name(bridge, ofport)
    add_veth(ns, "eth0", switch.netns, port)
    disable_tx_offload(ns, "eth0")
    disable_tx_offload(switch.netns, port)
    if mac:
        ns.run(["ip", "link", "set", "eth0", "address", mac])
    add_addresses(ns, "eth0", ip, ip6)
    switch.add_port(bridge, port, ofport, port_type)
    return port


def attach_host(
    switch: OvsInstance,
    bridge: str,
    name: str,
    ip: str,
    ofport: int,
    port_type: str = "afpacket",
) -> Host:
    """Create host 'name' with address 'ip' (CIDR) on 'bridge' port 'ofport'
    ('port_type': see plug())."""
    if switch.netns is None:
        raise ValueError("the switch must run in its own network namespace")
    ns = Namespace.create(name)
    try:
        port = plug(ns, switch, bridge, ip, ofport, port_type=port_type)
    except BaseException:
        ns.delete()
        raise
    return Host(name, ns, ip, port, ofport)
