"""A Linux router in a namespace, for comparing filters with the kernel's.

The router namespace forwards between two links, 'fa' (side A) and 'fb'
(side B), whatever the destination: policy routing by input interface
sends everything from one side out of the other, to a permanent neighbour
(the link's outer end).  The outer ends, 'ea' and 'eb', live in a second
namespace with no addresses, from which packets are sent and seen.  The
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


def mac_bytes(text: str) -> bytes:
    return bytes.fromhex(text.replace(":", ""))


class Router:
    """The router and edge namespaces; close() deletes them.

    With 'split', side B's outer end 'eb' lives in a namespace of its own
    ('sink'), so that the two outer ends can talk through the router
    (a ping: see address_ends())."""

    def __init__(self, split: bool = False) -> None:
        self.fw = Namespace.create("router")
        self.edge: Namespace | None = None
        self.sink: Namespace | None = None
        try:
            self.edge = Namespace.create("edge")
            self.sink = Namespace.create("sink") if split else self.edge
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
            for ns in (self.fw, self.edge, *([self.sink] if split else [])):
                # No IPv6 chatter (router solicitations, neighbour
                # discovery) on the links: what crosses them is what was sent.
                ns.run(["sysctl", "-q", "-w", "net.ipv6.conf.all.disable_ipv6=1"], check=False)
                ns.run(["sysctl", "-q", "-w", "net.ipv6.conf.default.disable_ipv6=1"], check=False)
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
            for gw, mac, dev in (
                ("169.254.1.2", MACS["ea"], "fa"),
                ("169.254.2.2", MACS["eb"], "fb"),
            ):
                fw.run(
                    ["ip", "neigh", "replace", gw, "lladdr", mac, "dev", dev, "nud", "permanent"]
                )
            # Whatever the destination, a packet from one side leaves by
            # the other.
            fw.run(
                ["ip", "route", "add", "default", "via", "169.254.2.2", "dev", "fb", "table", "101"]
            )
            fw.run(
                ["ip", "route", "add", "default", "via", "169.254.1.2", "dev", "fa", "table", "102"]
            )
            fw.run(["ip", "rule", "add", "iif", "fa", "lookup", "101", "priority", "10"])
            fw.run(["ip", "rule", "add", "iif", "fb", "lookup", "102", "priority", "11"])
        except BaseException:
            self.close()
            raise

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
        'iptables' 'iptables' (nf_tables) or 'iptables-legacy'."""
        self.fw.run([f"{iptables}-restore"], input_text=save)
        # Windows are not tracked by bpf/acl.c: the kernel is told the same.
        self.fw.run(
            ["sysctl", "-q", "-w", "net.netfilter.nf_conntrack_tcp_be_liberal=1"], check=False
        )

    def nft(self, ruleset: str) -> None:
        """Load an nftables ruleset (nft -f)."""
        self.fw.run(["nft", "-f", "-"], input_text=ruleset)

    def flush(self) -> None:
        """No rules left: iptables (both kinds) and nftables flushed."""
        for argv in (
            ["iptables-legacy", "-F"],
            ["iptables-legacy", "-P", "FORWARD", "ACCEPT"],
            ["nft", "flush", "ruleset"],
        ):
            self.fw.run(argv, check=False)

    def save(self, iptables: str = "iptables") -> str:
        return self.fw.run([f"{iptables}-save", "-c"], check=False)

    def close(self) -> None:
        for ns in (self.sink, self.edge, self.fw):
            if ns is not None:
                ns.delete()
        self.edge = self.sink = None


__all__ = ["MACS", "Router", "mac_bytes"]
