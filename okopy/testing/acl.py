"""Traffic for ACL rule sets, and a real iptables to compare with.

`conversations()` makes IPv4 or IPv6 traffic aimed at a rule set's
edges: the addresses, ports and protocols its rules name, their
neighbours just outside, and values no rule names, carried by well-formed
conversations (TCP handshakes, data and closes, resets, connections
picked up in the middle, UDP and other protocols both ways, ICMP queries
and errors about earlier packets) and by packets connection tracking
calls invalid (stray SYN-ACKs, FINs and resets, impossible TCP flag sets,
ICMP replies and errors about nothing).  Conversations are interleaved,
each with a 5-tuple of its own, and every packet carries its index: in
the IPv4 identification field, or the IPv6 flow label.

`IptablesWire` is the kernel oracle: a router namespace
(okopy.lab.router) that forwards between two veth links and runs an
iptables-save (ip6tables-save) through iptables-restore
(ip6tables-restore); `fates()` sends the packets in order from the side
each belongs to and reports which came out on the other side.
"""

from __future__ import annotations

import ipaddress
import json
import random
import struct
import subprocess
import sys
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import TypeVar

from okopy.acl.rules import AclRule
from okopy.lab.router import MACS, Router, mac_bytes
from okopy.traffic import packets as pk

SIDE_A, SIDE_B = 1, 2
T = TypeVar("T")


@dataclass(frozen=True)
class WirePacket:
    side: int  # SIDE_A or SIDE_B: where it enters the firewall
    frame: bytes
    what: str


def _routable4(addr: int) -> bool:
    a = ipaddress.IPv4Address(addr)
    return not (
        a.is_multicast
        or a.is_loopback
        or a.is_reserved
        or a.is_link_local
        or a.is_unspecified
        or int(a) >> 24 == 0
        or int(a) == 0xFFFFFFFF
    )


def _routable6(addr: int) -> bool:
    """Whether Linux forwards packets both from and to 'addr', whatever
    the rule set.  It does not for multicast (ff00::/8), loopback (::1)
    or link-local (fe80::/10) addresses, either way, nor from the
    unspecified address (::; to it, it does).  Everything else crosses
    the router, tried in both directions on Linux 6.18: reserved ranges,
    site-local (fec0::/10), v4-compatible (::a.b.c.d) and even v4-mapped
    (::ffff:a.b.c.d) addresses."""
    a = ipaddress.IPv6Address(addr)
    return not (a.is_multicast or a.is_loopback or a.is_unspecified or a.is_link_local)


@dataclass(frozen=True)
class _Family:
    """What IPv4 and IPv6 traffic differ in."""

    version: int
    src: str  # the ACL fields of the addresses
    dst: str
    size: int  # the addresses' universe
    routable: Callable[[int], bool]
    icmp: int  # ICMP's protocol number
    icmp_name: str
    # ICMP queries connection tracking follows (request, reply).
    echo: tuple[int, int]
    query: tuple[int, int]
    # ICMP types sent with no query before them.
    strays: tuple[int, ...]
    # Errors about an earlier datagram (type, code, what it says).
    udp_errors: tuple[tuple[int, int, str], ...]
    # Errors about nothing that was sent.
    errors: tuple[tuple[int, int], ...]

    def text(self, v: int) -> str:
        return str(ipaddress.IPv4Address(v) if self.version == 4 else ipaddress.IPv6Address(v))

    def arrows(self, c: str, s: str, cp: int, sp: int) -> tuple[str, str]:
        """'c:cp > s:sp' and back, for people."""
        ends = [f"{a}:{p}" if self.version == 4 else f"[{a}]:{p}" for a, p in ((c, cp), (s, sp))]
        return f"{ends[0]} > {ends[1]}", f"{ends[1]} > {ends[0]}"

    def packet(self, src: str, dst: str, proto: int, payload: bytes) -> bytes:
        """An IP packet; IPv6's hop limit (64) outlives the router."""
        if self.version == 4:
            return pk.ipv4(src, dst, proto, payload)
        return pk.ipv6(src, dst, proto, payload)

    def quote(self, ip: bytes) -> bytes:
        """What an ICMP error here quotes of packet 'ip': its IP header
        (and IPv6 options headers, EXT6_CHAINS') and 8 bytes more."""
        if self.version == 4:
            return ip[:28]
        nh, end = ip[6], 40
        while nh in (0, 60):
            nh, end = ip[end], end + (ip[end + 1] + 1) * 8
        return ip[: end + 8]

    def icmp_msg(
        self, src: str, dst: str, type_: int, code: int, rest: bytes, payload: bytes = b""
    ) -> bytes:
        """An ICMP message from 'src' to 'dst'; ICMPv6's checksum covers
        the IPv6 pseudo-header, ICMP's only the message."""
        msg = struct.pack("!BBH", type_, code, 0) + rest + payload
        pseudo = pk.pseudo_header(src, dst, self.icmp, len(msg)) if self.version == 6 else b""
        return msg[:2] + struct.pack("!H", pk.checksum(pseudo + msg)) + msg[4:]


_FAMILIES = {
    4: _Family(
        version=4,
        src="src",
        dst="dst",
        size=1 << 32,
        routable=_routable4,
        icmp=pk.IPPROTO_ICMP,
        icmp_name="icmp",
        echo=(8, 0),
        query=(13, 14),  # timestamp
        strays=(0, 14, 9, 10),
        udp_errors=((3, 3, "port unreachable"),),
        errors=((3, 1), (11, 0), (3, 3)),
    ),
    6: _Family(
        version=6,
        src="src6",
        dst="dst6",
        size=1 << 128,
        routable=_routable6,
        icmp=pk.IPPROTO_ICMPV6,
        icmp_name="icmp6",
        echo=(128, 129),
        query=(139, 140),  # node information
        # Sent with no request before them: replies, and types meant for
        # one link that a router forwards like any other ICMPv6 all the
        # same.  Connection tracking calls replies, redirects (137) and
        # types it does not follow (144: home agent discovery) invalid,
        # but leaves MLD (130, 143), neighbour discovery (133-136) and
        # multicast router discovery (151) untracked (Linux 6.18).
        strays=(129, 140, 130, 133, 134, 135, 136, 137, 143, 144, 151),
        udp_errors=((1, 4, "port unreachable"), (3, 0, "hop limit exceeded")),
        # Destination unreachable (no route, address), packet too big,
        # hop limit exceeded, parameter problem: all errors (types < 128).
        errors=((1, 0), (1, 3), (2, 0), (3, 0), (4, 0), (1, 4)),
    ),
}


# IPv6 extension headers some packets carry (hop-by-hop and destination
# options, padding only): a router forwards them as they are.  Not
# routing headers (a router acts on them), fragments (conntrack
# reassembles them before the rules see them), nor authentication
# headers, on which the two iptables disagree here (Linux 6.18): legacy
# ip6tables classified packets led by one by their upper-layer header, as
# bpf/acl6.c does, where iptables-nft dropped some that legacy delivered
# (tests/bpf/test_acl.py checks acl6.c past them).
EXT6_SHARE = 0.15
EXT6_CHAINS = ((0,), (60,), (0, 60), (60, 60))


def ext6_header(kind: int, nexthdr: int, frag_offset: int = 0) -> bytes:
    """An IPv6 extension header of 'kind' followed by 'nexthdr': options
    (0, 60: one 4-byte PadN fills the 8 bytes), authentication (51: 24
    bytes, a made-up SPI, sequence and ICV) or fragment (44, at
    'frag_offset' 8-byte units, more fragments following)."""
    if kind == 51:
        return struct.pack("!BBHII", nexthdr, 4, 0, 0x1000, 1) + bytes(12)
    if kind == 44:
        return struct.pack("!BBHI", nexthdr, 0, frag_offset << 3 | 1, 7)
    return bytes([nexthdr, 0, 1, 4, 0, 0, 0, 0])


class _Values:
    """Values to draw a field from: the edges of the rules' sets, their
    neighbours, and random ones."""

    def __init__(
        self,
        rng: random.Random,
        rules: Sequence[AclRule],
        name: str,
        size: int,
        ok: Callable[[int], bool] | None = None,
    ) -> None:
        self.rng = rng
        self.size = size
        self.ok = ok
        edges: set[int] = set()
        for r in rules:
            s = r.match.sets.get(name)
            if s is None:
                continue
            for lo, hi in s.spans[:64]:
                edges.update((lo, hi, lo - 1, hi + 1, (lo + hi) // 2))
        self.edges = sorted(v for v in edges if 0 <= v < size and self._fine(v))

    def _fine(self, v: int) -> bool:
        return self.ok is None or self.ok(v)

    def draw(self, lo: int = 0) -> int:
        for _ in range(100):
            if self.edges and self.rng.random() < 0.7:
                v = self.rng.choice(self.edges)
            else:
                v = self.rng.randrange(lo, self.size)
            if v >= lo and self._fine(v):
                return v
        raise ValueError("no value to draw")


class _Builder:
    def __init__(self, rules: Sequence[AclRule], rng: random.Random, fam: _Family) -> None:
        self.rng = rng
        self.fam = fam
        self.addr = _Values(rng, rules, fam.src, fam.size, fam.routable)
        self.addr_d = _Values(rng, rules, fam.dst, fam.size, fam.routable)
        self.sport = _Values(rng, rules, "sport", 1 << 16)
        self.dport = _Values(rng, rules, "dport", 1 << 16)
        self.used: set[tuple[int, int, int, int, int]] = set()

    def packet(self, src: str, dst: str, proto: int, payload: bytes) -> bytes:
        """An IP packet; some IPv6 ones (EXT6_SHARE) with extension headers
        before 'payload', which ip6tables and conntrack look past."""
        if self.fam.version == 4 or self.rng.random() >= EXT6_SHARE:
            return self.fam.packet(src, dst, proto, payload)
        chain = self.rng.choice(EXT6_CHAINS)
        ext = b"".join(
            ext6_header(t, chain[i + 1] if i + 1 < len(chain) else proto)
            for i, t in enumerate(chain)
        )
        return pk.ipv6(src, dst, chain[0], ext + payload)

    def pick(self, options: Sequence[T]) -> T:
        """One of 'options'; a lone option draws no random number, so that
        a seed's IPv4 traffic stays what it always was."""
        return options[0] if len(options) == 1 else self.rng.choice(options)

    def endpoints(self, proto: int) -> tuple[str, str, int, int]:
        """Client address, server address, client port, server port: a
        5-tuple no earlier conversation used (either way round)."""
        for _ in range(1000):
            c, s = self.addr.draw(), self.addr_d.draw()
            if c == s:
                continue
            cp, sp = self.sport.draw(1), self.dport.draw(1)
            if self.rng.random() < 0.3:
                # The rules' source edges as the server's port too.
                sp = self.sport.draw(1)
            lo_port, hi_port = sorted((cp, sp))
            key = (min(c, s), max(c, s), proto, lo_port, hi_port)
            if key in self.used:
                continue
            self.used.add(key)
            return self.fam.text(c), self.fam.text(s), cp, sp
        raise ValueError("ran out of fresh 5-tuples")

    def tcp(self) -> list[tuple[int, bytes, str]]:
        c, s, cp, sp = self.endpoints(pk.IPPROTO_TCP)
        a, b = (SIDE_A, SIDE_B) if self.rng.random() < 0.6 else (SIDE_B, SIDE_A)
        cs, ss = self.rng.getrandbits(32), self.rng.getrandbits(32)
        A, S, F, R, P = pk.TCP_ACK, pk.TCP_SYN, pk.TCP_FIN, pk.TCP_RST, pk.TCP_PSH
        ip = self.packet
        to, back = self.fam.arrows(c, s, cp, sp)

        def fwd(flags: int, seq: int, ack: int, data: bytes = b"") -> tuple[int, bytes, str]:
            seg = pk.tcp(c, s, cp, sp, flags, seq & 0xFFFFFFFF, ack & 0xFFFFFFFF, payload=data)
            return a, ip(c, s, pk.IPPROTO_TCP, seg), f"tcp {to} {flags:#x}"

        def rev(flags: int, seq: int, ack: int, data: bytes = b"") -> tuple[int, bytes, str]:
            seg = pk.tcp(s, c, sp, cp, flags, seq & 0xFFFFFFFF, ack & 0xFFFFFFFF, payload=data)
            return b, ip(s, c, pk.IPPROTO_TCP, seg), f"tcp {back} {flags:#x}"

        kind = self.rng.choices(
            ["full", "reset", "syn", "midstream", "stray", "badflags"], [40, 10, 10, 10, 15, 15]
        )[0]
        hs = [fwd(S, cs, 0), rev(S | A, ss, cs + 1), fwd(A, cs + 1, ss + 1)]
        if kind == "full":
            return [
                *hs,
                fwd(P | A, cs + 1, ss + 1, b"hello"),
                rev(A, ss + 1, cs + 6),
                rev(P | A, ss + 1, cs + 6, b"world!"),
                fwd(A, cs + 6, ss + 7),
                fwd(F | A, cs + 6, ss + 7),
                rev(F | A, ss + 7, cs + 7),
                fwd(A, cs + 7, ss + 8),
            ]
        if kind == "reset":
            return [*hs, fwd(P | A, cs + 1, ss + 1, b"x"), rev(R | A, ss + 1, cs + 2)]
        if kind == "syn":
            return [fwd(S, cs, 0), fwd(S, cs, 0)]
        if kind == "midstream":
            return [fwd(A, cs, ss), rev(P | A, ss, cs, b"late"), fwd(A, cs, ss + 4)]
        if kind == "stray":
            flags = self.rng.choice([S | A, F | A, R, R | A])
            return [fwd(flags, cs, ss)]
        flags = self.rng.choice([S | F, 0, F, F | S | R | P | A | 0x20, S | R, P, 0x20])
        return [fwd(flags, cs, ss)]

    def udp(self, proto: int = pk.IPPROTO_UDP) -> list[tuple[int, bytes, str]]:
        c, s, cp, sp = self.endpoints(proto)
        a, b = (SIDE_A, SIDE_B) if self.rng.random() < 0.6 else (SIDE_B, SIDE_A)
        fam, ip = self.fam, self.packet
        if proto != pk.IPPROTO_UDP:

            def other(src: str, dst: str) -> bytes:
                return ip(src, dst, proto, b"payload!")

            out = [(a, other(c, s), f"proto {proto} {c} > {s}")]
            if self.rng.random() < 0.7:
                out.append((b, other(s, c), f"proto {proto} {s} > {c}"))
            return out

        def datagram(src: str, dst: str, sport: int, dport: int, data: bytes) -> bytes:
            return ip(src, dst, pk.IPPROTO_UDP, pk.udp(src, dst, sport, dport, data))

        to, back = fam.arrows(c, s, cp, sp)
        out = [(a, datagram(c, s, cp, sp, b"ask"), f"udp {to}")]
        if self.rng.random() < 0.7:
            out.append((b, datagram(s, c, sp, cp, b"answer"), f"udp {back}"))
            if self.rng.random() < 0.4:
                # The server's side sends an error about the client's
                # datagram: each of them perhaps with IPv6 extension
                # headers (conntrack looks past both).
                quoted = fam.quote(datagram(c, s, cp, sp, b"ask"))
                t, code, says = self.pick(fam.udp_errors)
                error = fam.icmp_msg(s, c, t, code, b"\0" * 4, quoted)
                out.append(
                    (
                        b,
                        ip(s, c, fam.icmp, error),
                        f"{fam.icmp_name} {says} {s} > {c} about udp {cp}>{sp}",
                    )
                )
        out.append((a, datagram(c, s, cp, sp, b"again"), f"udp {to}"))
        return out

    def icmp(self) -> list[tuple[int, bytes, str]]:
        fam = self.fam
        c, s, ident, _ = self.endpoints(fam.icmp)
        a, b = (SIDE_A, SIDE_B) if self.rng.random() < 0.6 else (SIDE_B, SIDE_A)
        kind = self.rng.choices(["echo", "query", "stray", "error"], [50, 10, 20, 20])[0]
        rest = struct.pack("!HH", ident, 1)
        name = fam.icmp_name

        def msg(src: str, dst: str, t: int, code: int, head: bytes, body: bytes) -> bytes:
            return self.packet(src, dst, fam.icmp, fam.icmp_msg(src, dst, t, code, head, body))

        if kind in ("echo", "query"):
            req, rep = fam.echo if kind == "echo" else fam.query
            body = b"ping" * 3
            return [
                (a, msg(c, s, req, 0, rest, body), f"{name} {req} {c} > {s}"),
                (b, msg(s, c, rep, 0, rest, body), f"{name} {rep} {s} > {c}"),
                (a, msg(c, s, req, 0, rest, body), f"{name} {req} {c} > {s}"),
            ]
        if kind == "stray":
            t = self.rng.choice(fam.strays)
            return [(a, msg(c, s, t, 0, rest, b"x" * 8), f"{name} {t} {c} > {s}")]
        # An error about a datagram nobody sent.
        quoted = fam.quote(fam.packet(s, c, pk.IPPROTO_UDP, pk.udp(s, c, 4000, 5000, b"q")))
        t, code = self.rng.choice(fam.errors)
        return [
            (
                a,
                msg(c, s, t, code, b"\0" * 4, quoted),
                f"{name} error {t}/{code} {c} > {s} about nothing",
            )
        ]


def conversations(
    rules: Sequence[AclRule], seed: int, count: int, family: int = 4
) -> list[WirePacket]:
    """At least 'count' IPv4 (IPv6, with 'family' 6) packets of
    interleaved conversations aimed at the edges of 'rules' (IPv6 ones
    name their addresses in fields "src6" and "dst6"); packet i carries i
    in its IPv4 identification (IPv6 flow label)."""
    rng = random.Random(seed)
    b = _Builder(rules, rng, _FAMILIES[family])
    convs: list[list[tuple[int, bytes, str]]] = []
    total = 0
    while total < count:
        kind = rng.choices(["tcp", "udp", "icmp", "other"], [50, 25, 20, 5])[0]
        if kind == "tcp":
            conv = b.tcp()
        elif kind == "udp":
            conv = b.udp()
        elif kind == "icmp":
            conv = b.icmp()
        else:
            conv = b.udp(rng.choice([253, 254]))
        convs.append(conv)
        total += len(conv)
    # Interleave: a few conversations open at a time, each in order.
    out: list[WirePacket] = []
    active: list[list[tuple[int, bytes, str]]] = []
    pending = convs[::-1]
    while pending or active:
        while pending and len(active) < 8:
            active.append(pending.pop())
        i = rng.randrange(len(active))
        side, ip, what = active[i].pop(0)
        if not active[i]:
            active.pop(i)
        out.append(WirePacket(side, _tag(ip, len(out)), what))
    return out


def _tag(ip: bytes, index: int) -> bytes:
    """'ip' carrying 'index': in its identification (IPv4), or its flow
    label (IPv6, which has no identification outside fragments and whose
    routers leave the flow label as it is)."""
    if ip[0] >> 4 == 6:
        if index >= 1 << 20:
            raise ValueError("at most 2**20 packets: the flow label tags them")
        (first,) = struct.unpack("!I", ip[:4])
        return struct.pack("!I", (first & ~0xFFFFF) | index) + ip[4:]
    if index > 0xFFFF:
        raise ValueError("at most 65536 packets: the identification field tags them")
    hdr = bytearray(ip[:20])
    hdr[4:6] = struct.pack("!H", index)
    hdr[10:12] = b"\0\0"
    hdr[10:12] = struct.pack("!H", pk.checksum(bytes(hdr)))
    return bytes(hdr) + ip[20:]


def _framed(ip: bytes, src: bytes, dst: bytes) -> bytes:
    return pk.ethernet(pk.ETH_P_IPV6 if ip[0] >> 4 == 6 else pk.ETH_P_IP, ip, src=src, dst=dst)


def frame(p: WirePacket) -> bytes:
    """The packet in an Ethernet frame from its side's outer end to the
    firewall."""
    src, dst = ("ea", "fa") if p.side == SIDE_A else ("eb", "fb")
    return _framed(p.frame, mac_bytes(MACS[src]), mac_bytes(MACS[dst]))


# The sender and receiver: a child process (so this one never changes
# namespace) that opens one packet socket per side, each inside that
# side's namespace, sends the frames in order, records what arrives and
# answers, for each frame, whether it came out on the other side.  A
# packet is known there by its addresses, protocol (next header), tag
# (IPv4 identification, IPv6 flow label) and length: all a router leaves
# alone.  With 'settle', before a packet from the other side than the
# previous one it waits until the previous one came out (or 'settle'
# seconds): a switch polls its ports in turn, and conntrack needs the
# order kept.
_WIRE_SCRIPT = r"""
import ctypes, json, os, socket, sys, time
job = json.load(sys.stdin)
libc = ctypes.CDLL(None, use_errno=True)
def enter(path):
    fd = os.open(path, os.O_RDONLY)
    try:
        if libc.setns(fd, 0x40000000) != 0:
            raise OSError(ctypes.get_errno(), "setns " + path)
    finally:
        os.close(fd)
home = "/proc/self/ns/net"
home_fd = os.open(home, os.O_RDONLY)
socks = {}
for side, (nspath, ifname) in job["sides"].items():
    enter(nspath)
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x0003))
    s.setsockopt(socket.SOL_SOCKET, 33, 64 << 20)  # SO_RCVBUFFORCE
    s.bind((ifname, 0))
    s.setblocking(False)
    socks[side] = s
    libc.setns(home_fd, 0x40000000)
other = {a: b for a in socks for b in socks if a != b}
def key(frame):
    ethertype, ip = frame[12:14], frame[14:]
    if ethertype == b"\x08\x00" and len(ip) >= 20:
        return (ip[12:20], ip[9], ip[4:6], ip[2:4])
    if ethertype == b"\x86\xdd" and len(ip) >= 40:
        return (ip[8:40], ip[6], bytes([ip[1] & 0x0F]) + ip[2:4], ip[4:6])
    return None
arrived = {side: set() for side in socks}
def drain():
    for side, s in socks.items():
        while True:
            try:
                data, addr = s.recvfrom(65535)
            except BlockingIOError:
                break
            if addr[2] != socket.PACKET_OUTGOING:
                arrived[side].add(key(data))
frames = [(str(side), bytes.fromhex(hexframe)) for side, hexframe in job["frames"]]
keys = [key(data) for _, data in frames]
settle = job["settle"]
for i, (side, data) in enumerate(frames):
    if settle and i > 0 and frames[i - 1][0] != side:
        deadline = time.monotonic() + settle
        while time.monotonic() < deadline:
            drain()
            if keys[i - 1] in arrived[other[frames[i - 1][0]]]:
                break
            time.sleep(0.0002)
    socks[side].send(data)
    if i % 64 == 63:
        drain()
deadline = time.time() + 1.0 + 10 * settle
while time.time() < deadline:
    drain()
    time.sleep(0.05)
json.dump([k is not None and k in arrived[other[side]]
           for k, (side, _) in zip(keys, frames)], sys.stdout)
"""


def send_and_listen(
    sides: dict[int, tuple[str, str]],
    packets: Sequence[WirePacket],
    macs: dict[int, tuple[bytes, bytes]],
    settle: float = 0.0,
) -> list[bool]:
    """Send each packet from its side's (namespace path, interface) with
    the side's (source, destination) MACs, in order; whether each came out
    on the other side (same addresses, protocol, tag and length)."""
    frames = [[p.side, _framed(p.frame, *macs[p.side]).hex()] for p in packets]
    job = {"sides": {str(k): list(v) for k, v in sides.items()}, "frames": frames, "settle": settle}
    argv = ["taskset", "-c", "0", sys.executable, "-c", _WIRE_SCRIPT]
    done = subprocess.run(
        argv,
        input=json.dumps(job),
        capture_output=True,
        text=True,
        timeout=600 + settle * len(packets),
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"wire sender failed: {done.stderr.strip()}")
    return [bool(came_out) for came_out in json.loads(done.stdout)]


class IptablesWire:
    """A router namespace (okopy.lab.router) with an iptables-save loaded
    in its FORWARD path: 'fa' is side A's link, 'fb' side B's.  'iptables'
    is "iptables" or "iptables-legacy" for IPv4, "ip6tables" or
    "ip6tables-legacy" (with an ip6tables-save) for IPv6."""

    def __init__(self, save: str, iptables: str = "iptables") -> None:
        self.iptables = iptables
        self.router = Router(ipv6=iptables.startswith("ip6tables"))
        try:
            self.router.iptables_restore(save, iptables)
        except BaseException:
            self.router.close()
            raise

    def fates(self, packets: Sequence[WirePacket]) -> list[bool]:
        """Whether each packet, sent in order from its side, came out on
        the other side."""
        path = self.router.edge_path
        return send_and_listen(
            {SIDE_A: (path, "ea"), SIDE_B: (path, "eb")},
            packets,
            {
                SIDE_A: (mac_bytes(MACS["ea"]), mac_bytes(MACS["fa"])),
                SIDE_B: (mac_bytes(MACS["eb"]), mac_bytes(MACS["fb"])),
            },
        )

    def counters(self) -> str:
        return self.router.save(self.iptables)

    def close(self) -> None:
        self.router.close()


def describe(packets: Iterable[WirePacket]) -> list[str]:
    return [f"{i}: side {p.side} {p.what}" for i, p in enumerate(packets)]


__all__ = ["IptablesWire", "WirePacket", "conversations", "frame"]
