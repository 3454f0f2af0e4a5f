"""A Linux router in a namespace, for comparing filters with the kernel's.

The router namespace forwards between two links, 'fa' (side A) and 'fb'
(side B), whatever the destination: policy routing by input interface
sends everything from one side out of the other, to a permanent neighbour
(the link's outer end).  It forwards IPv4, and IPv6 too if asked (else
IPv6 is off).  The outer ends, 'ea' and 'eb', live in a second namespace
with no addresses (and no IPv6), from which packets are sent and seen.  The
router's FORWARD path is where iptables and nftables rule sets are
loaded, and its links are where XDP programs run.
"""

from __future__ import annotations

from okopy.netns import Namespace, add_veth

MACS = {
    "ea": "02:0a:00:00:00:01",
    "fa": "02:0a:00:00:00:02",
    "eb": "02:0b:00:00:00:01",
    "fb": "02:0b:00:00:00:02",
}


# The outer ends' addresses as the router's gateways, per family: outside
# what traffic through the router uses (the traffic generators draw no
# link-local addresses).
GATEWAYS = {
    4: {"ea": "169.254.1.2", "eb": "169.254.2.2"},
    6: {"ea": "fe80::a:1", "eb": "fe80::b:1"},
}


def mac_bytes(text: str) -> bytes:
    return bytes.fromhex(text.replace(":", ""))


class Router:
    """The router and edge namespaces; close() deletes them.

    With 'split', side B's outer end 'eb' lives in a namespace of its own
    ('sink'), so that the two outer ends can talk through the router
    (a ping: see address_ends()).  With 'ipv6', the router forwards IPv6
    as well (its links then have link-local addresses, and nothing else
    of IPv6's)."""

    def __init__(self, split: bool = False, ipv6: bool = False) -> None:
        self.ipv6 = ipv6
        self.fw = Namespace.create("router")
        self.edge: Namespace | None = None
        self.sink: Namespace | None = None
        try:
            self.edge = Namespace.create("edge")
            self.sink = Namespace.create("sink") if split else self.edge
            # Before the links exist (links take the namespace's defaults),
            # so that no IPv6 chatter (router solicitations, neighbour
            # discovery, MLD reports) ever crosses them: what crosses them
            # is what was sent.
            for ns in (self.fw, self.edge, *([self.sink] if split else [])):
                if ns is self.fw and ipv6:
                    continue
                ns.run(["sysctl", "-q", "-w", "net.ipv6.conf.all.disable_ipv6=1"], check=False)
                ns.run(["sysctl", "-q", "-w", "net.ipv6.conf.default.disable_ipv6=1"], check=False)
            if ipv6:
                for key in (
                    # Link-local addresses usable at once: no duplicate
                    # address detection probes on the links.
                    "net.ipv6.conf.default.accept_dad=0",
                    "net.ipv6.conf.default.accept_ra=0",
                    "net.ipv6.conf.default.autoconf=0",
                    "net.ipv6.conf.all.forwarding=1",
                    "net.ipv6.conf.default.forwarding=1",
                ):
                    self.fw.run(["sysctl", "-q", "-w", key])
            add_veth(self.edge, "ea", self.fw, "fa")
            add_veth(self.sink, "eb", self.fw, "fb")
            for ns, ifname in (
                (self.edge, "ea"),
                (self.fw, "fa"),
                (self.sink, "eb"),
                (self.fw, "fb"),
            ):
                ns.run(["ip", "link", "set", ifname, "address", MACS[ifname]])
                ns.run(["ip", "link", "set", ifname, "up"])
                ns.run(["ethtool", "-K", ifname, "rx", "off", "tx", "off"], check=False)
            fw = self.fw
            for key in (
                "net.ipv4.ip_forward=1",
                "net.ipv4.conf.all.rp_filter=0",
                "net.ipv4.conf.default.rp_filter=0",
                "net.ipv4.conf.fa.rp_filter=0",
                "net.ipv4.conf.fb.rp_filter=0",
            ):
                fw.run(["sysctl", "-q", "-w", key])
            fw.run(["ip", "addr", "add", "169.254.1.1/30", "dev", "fa"])
            fw.run(["ip", "addr", "add", "169.254.2.1/30", "dev", "fb"])
            for family in (4, 6) if ipv6 else (4,):
                self._route_across(family)
        except BaseException:
            self.close()
            raise

    def _route_across(self, family: int) -> None:
        """Whatever the destination, a packet from one side leaves by the
        other, to that link's outer end, a permanent neighbour (no ARP or
        neighbour discovery is ever needed)."""
        ip = ["ip", f"-{family}"]
        for dev, end, table in (("fa", "ea", "102"), ("fb", "eb", "101")):
            gw = GATEWAYS[family][end]
            self.fw.run([*ip, "neigh", "replace", gw, "lladdr", MACS[end], "dev", dev,
                         "nud", "permanent"])  # fmt: skip
            self.fw.run([*ip, "route", "add", "default", "via", gw, "dev", dev, "table", table])
        self.fw.run([*ip, "rule", "add", "iif", "fa", "lookup", "101", "priority", "10"])
        self.fw.run([*ip, "rule", "add", "iif", "fb", "lookup", "102", "priority", "11"])

    @property
    def edge_path(self) -> str:
        assert self.edge is not None
        return f"/run/netns/{self.edge.name}"

    def outer(self, ifname: str) -> Namespace:
        """The namespace of outer end 'ea' or 'eb'."""
        ns = self.edge if ifname == "ea" else self.sink
        assert ns is not None
        return ns

    def address_ends(self, through_router: bool = True) -> tuple[str, str]:
        """Give the outer ends addresses (split routers only): 169.254.1.2
        on 'ea' and 169.254.2.2 on 'eb', each routing through its side of
        the router; with 'through_router' False (a switch between the
        links instead of the router's stack), each end's gateway is the
        other end's MAC.  Returns the two addresses."""
        if self.edge is None or self.sink is None or self.sink is self.edge:
            raise ValueError("address_ends() needs a split router")
        for ns, ifname, addr, gw, other in (
            (self.edge, "ea", "169.254.1.2/30", "169.254.1.1", "eb"),
            (self.sink, "eb", "169.254.2.2/30", "169.254.2.1", "ea"),
        ):
            ns.run(["ip", "addr", "add", addr, "dev", ifname])
            ns.run(["ip", "route", "add", "default", "via", gw, "dev", ifname])
            if not through_router:
                ns.run(["ip", "neigh", "replace", gw, "lladdr", MACS[other], "dev", ifname,
                        "nud", "permanent"])  # fmt: skip
        return "169.254.1.2", "169.254.2.2"

    def ifindex(self, ifname: str) -> int:
        """The router's ifindex of 'fa' or 'fb'."""
        out = self.fw.run(["cat", f"/sys/class/net/{ifname}/ifindex"])
        return int(out.strip())

    def iptables_restore(self, save: str, iptables: str = "iptables") -> None:
        """Load an iptables-save (replacing the tables it names), with
        'iptables' 'iptables' (nf_tables) or 'iptables-legacy', or an
        ip6tables-save with 'ip6tables' or 'ip6tables-legacy'."""
        self.fw.run([f"{iptables}-restore"], input_text=save)
        # Windows are not tracked by bpf/acl.c: the kernel is told the same
        # (the setting is conntrack's, for both families).
        self.fw.run(
            ["sysctl", "-q", "-w", "net.netfilter.nf_conntrack_tcp_be_liberal=1"], check=False
        )

    def nft(self, ruleset: str) -> None:
        """Load an nftables ruleset (nft -f)."""
        self.fw.run(["nft", "-f", "-"], input_text=ruleset)

    def flush(self) -> None:
        """No rules left: iptables (both kinds) and nftables flushed."""
        legacy = ["iptables-legacy", *(["ip6tables-legacy"] if self.ipv6 else [])]
        for binary in legacy:
            self.fw.run([binary, "-F"], check=False)
            self.fw.run([binary, "-P", "FORWARD", "ACCEPT"], check=False)
        self.fw.run(["nft", "flush", "ruleset"], check=False)

    def save(self, iptables: str = "iptables") -> str:
        return self.fw.run([f"{iptables}-save", "-c"], check=False)

    def close(self) -> None:
        for ns in (self.sink, self.edge, self.fw):
            if ns is not None:
                ns.delete()
        self.edge = self.sink = None


__all__ = ["GATEWAYS", "MACS", "Router", "mac_bytes"]
