"""One line that says what an Ethernet frame is, for reports about single
packets (`okopy replay`): addresses, protocol, ports or ICMP type, TCP
flags.  Pure; a truncated or unknown frame still gets a line that says so.
"""

from __future__ import annotations

import ipaddress
import struct

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


def _l4(proto: int, src: str, dst: str, l4: bytes, v6: bool) -> str:
    name = _PROTOS.get(proto, f"proto {proto}")
    sep = "." if v6 else ":"
    if proto in (IPPROTO_TCP, IPPROTO_UDP):
        if len(l4) < (14 if proto == IPPROTO_TCP else 4):
            return f"{src} > {dst} {name} (truncated)"
        sport, dport = struct.unpack_from("!HH", l4)
        text = f"{src}{sep}{sport} > {dst}{sep}{dport} {name}"
        if proto == IPPROTO_TCP:
            text += f" [{tcp_flags(l4[13])}]"
        return text
    if proto in (IPPROTO_ICMP, IPPROTO_ICMPV6) and len(l4) >= 2:
        return f"{src} > {dst} {name} type {l4[0]} code {l4[1]}"
    return f"{src} > {dst} {name}"


def summarize(frame: bytes) -> str:
    """'10.0.0.1:1234 > 10.0.0.2:80 TCP [S]', 'ARP', 'eth type 0x88cc', ..."""
    if len(frame) < 14:
        return f"truncated frame ({len(frame)} bytes)"
    (ethertype,) = struct.unpack_from("!H", frame, 12)
    off = 14
    vlan = ""
    if ethertype == ETH_P_8021Q and len(frame) >= 18:
        tci, ethertype = struct.unpack_from("!HH", frame, 14)
        vlan = f"vlan {tci & 0xFFF} "
        off = 18
    if ethertype == ETH_P_IP:
        if len(frame) < off + 20:
            return vlan + "IPv4 (truncated)"
        ihl = (frame[off] & 0x0F) * 4
        proto = frame[off + 9]
        src = str(ipaddress.IPv4Address(frame[off + 12 : off + 16]))
        dst = str(ipaddress.IPv4Address(frame[off + 16 : off + 20]))
        frag = struct.unpack_from("!H", frame, off + 6)[0] & 0x1FFF
        if frag:
            return vlan + f"{src} > {dst} {_PROTOS.get(proto, f'proto {proto}')} (fragment)"
        return vlan + _l4(proto, src, dst, frame[off + max(ihl, 20) :], False)
    if ethertype == ETH_P_IPV6:
        if len(frame) < off + 40:
            return vlan + "IPv6 (truncated)"
        nexthdr = frame[off + 6]
        src = str(ipaddress.IPv6Address(frame[off + 8 : off + 24]))
        dst = str(ipaddress.IPv6Address(frame[off + 24 : off + 40]))
        return vlan + _l4(nexthdr, src, dst, frame[off + 40 :], True)
    if ethertype == ETH_P_ARP:
        if len(frame) >= off + 28:
            op = struct.unpack_from("!H", frame, off + 6)[0]
            sender = ipaddress.IPv4Address(frame[off + 14 : off + 18])
            target = ipaddress.IPv4Address(frame[off + 24 : off + 28])
            what = {1: "who-has", 2: "reply"}.get(op, f"op {op}")
            return vlan + f"ARP {what} {target} from {sender}"
        return vlan + "ARP (truncated)"
    return vlan + f"eth type {ethertype:#06x}"
