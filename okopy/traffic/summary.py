"""One line that says what an Ethernet frame is, for reports about single
packets (`okopy replay`): addresses, protocol, ports or ICMP type, TCP
flags.  Pure; a truncated or unknown frame still gets a line that says so.
"""

from __future__ import annotations

import ipaddress
import struct
from dataclasses import dataclass, replace

from okopy.traffic.packets import (
    ETH_P_8021Q,
    ETH_P_ARP,
    ETH_P_IP,
    ETH_P_IPV6,
    IPPROTO_ICMP,
    IPPROTO_ICMPV6,
    IPPROTO_TCP,
    IPPROTO_UDP,
)

_TCP_FLAGS = "FSRPAUEC"  # FIN SYN RST PSH ACK URG ECE CWR, bit 0 first
_PROTOS = {IPPROTO_ICMP: "ICMP", IPPROTO_TCP: "TCP", IPPROTO_UDP: "UDP", IPPROTO_ICMPV6: "ICMPv6"}


def tcp_flags(flags: int) -> str:
    return "".join(c for i, c in enumerate(_TCP_FLAGS) if flags & (1 << i)) or "."


@dataclass(frozen=True)
class IpHeaders:
    """The addresses, protocol and ports of an IP packet in a frame; ports
    are None for protocols without them, fragments and truncated headers."""

    src: str
    dst: str
    proto: int
    sport: int | None = None
    dport: int | None = None
    v6: bool = False
    vlan: int | None = None
    fragment: bool = False
    l4: bytes = b""

    @property
    def proto_name(self) -> str:
        return _PROTOS.get(self.proto, f"proto {self.proto}")


def _vlan(frame: bytes) -> tuple[int, int, int | None]:
    """(ethertype, offset of the layer 3 header, VLAN id or None)."""
    (ethertype,) = struct.unpack_from("!H", frame, 12)
    if ethertype == ETH_P_8021Q and len(frame) >= 18:
        tci, ethertype = struct.unpack_from("!HH", frame, 14)
        return ethertype, 18, tci & 0xFFF
    return ethertype, 14, None


def ip_headers(frame: bytes) -> IpHeaders | None:
    """The IP headers of an Ethernet frame (one 802.1Q tag skipped), or
    None if it is no IPv4 or IPv6 packet or its IP header is truncated."""
    if len(frame) < 14:
        return None
    ethertype, off, vlan = _vlan(frame)
    if ethertype == ETH_P_IP:
        if len(frame) < off + 20:
            return None
        ihl = max((frame[off] & 0x0F) * 4, 20)
        proto = frame[off + 9]
        src = str(ipaddress.IPv4Address(frame[off + 12 : off + 16]))
        dst = str(ipaddress.IPv4Address(frame[off + 16 : off + 20]))
        if struct.unpack_from("!H", frame, off + 6)[0] & 0x1FFF:
            return IpHeaders(src, dst, proto, vlan=vlan, fragment=True)
        return _with_ports(IpHeaders(src, dst, proto, vlan=vlan, l4=frame[off + ihl :]))
    if ethertype == ETH_P_IPV6:
        if len(frame) < off + 40:
            return None
        src = str(ipaddress.IPv6Address(frame[off + 8 : off + 24]))
        dst = str(ipaddress.IPv6Address(frame[off + 24 : off + 40]))
        h = IpHeaders(src, dst, frame[off + 6], v6=True, vlan=vlan, l4=frame[off + 40 :])
        return _with_ports(h)
    return None


def _with_ports(h: IpHeaders) -> IpHeaders:
    if h.proto in (IPPROTO_TCP, IPPROTO_UDP) and len(h.l4) >= 4:
        sport, dport = struct.unpack_from("!HH", h.l4)
        return replace(h, sport=sport, dport=dport)
    return h


def _l4(h: IpHeaders) -> str:
    name = h.proto_name
    sep = "." if h.v6 else ":"
    src, dst, l4 = h.src, h.dst, h.l4
    if h.fragment:
        return f"{src} > {dst} {name} (fragment)"
    if h.proto in (IPPROTO_TCP, IPPROTO_UDP):
        if len(l4) < (14 if h.proto == IPPROTO_TCP else 4):
            return f"{src} > {dst} {name} (truncated)"
        text = f"{src}{sep}{h.sport} > {dst}{sep}{h.dport} {name}"
        if h.proto == IPPROTO_TCP:
            text += f" [{tcp_flags(l4[13])}]"
        return text
    if h.proto in (IPPROTO_ICMP, IPPROTO_ICMPV6) and len(l4) >= 2:
        return f"{src} > {dst} {name} type {l4[0]} code {l4[1]}"
    return f"{src} > {dst} {name}"


def summarize(frame: bytes) -> str:
    """'10.0.0.1:1234 > 10.0.0.2:80 TCP [S]', 'ARP', 'eth type 0x88cc', ..."""
    if len(frame) < 14:
        return f"truncated frame ({len(frame)} bytes)"
    ethertype, off, vlan_id = _vlan(frame)
    vlan = "" if vlan_id is None else f"vlan {vlan_id} "
    if ethertype in (ETH_P_IP, ETH_P_IPV6):
        h = ip_headers(frame)
        if h is None:
            return vlan + ("IPv4" if ethertype == ETH_P_IP else "IPv6") + " (truncated)"
        return vlan + _l4(h)
    if ethertype == ETH_P_ARP:
        if len(frame) >= off + 28:
            op = struct.unpack_from("!H", frame, off + 6)[0]
            sender = ipaddress.IPv4Address(frame[off + 14 : off + 18])
            target = ipaddress.IPv4Address(frame[off + 24 : off + 28])
            what = {1: "who-has", 2: "reply"}.get(op, f"op {op}")
            return vlan + f"ARP {what} {target} from {sender}"
        return vlan + "ARP (truncated)"
    return vlan + f"eth type {ethertype:#06x}"
