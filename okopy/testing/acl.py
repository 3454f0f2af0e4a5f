"""Traffic for ACL rule sets, and a real iptables to compare with.

`conversations()` makes IPv4 traffic aimed at a rule set's edges: the
addresses, ports and protocols its rules name, their neighbours just
outside, and values no rule names, carried by well-formed conversations
(TCP handshakes, data and closes, resets, connections picked up in the
middle, UDP and other protocols both ways, ICMP queries and errors about
earlier packets) and by packets connection tracking calls invalid (stray
SYN-ACKs, FINs and resets, impossible TCP flag sets).  Conversations are
interleaved, each with a 5-tuple of its own, and every packet carries its
index in the IPv4 identification field.

`IptablesWire` is the kernel oracle: a router namespace
(okopy.lab.router) that forwards between two veth links and runs an
iptables-save through iptables-restore; `fates()` sends the packets in
order from the side each belongs to and reports which came out on the
other side.
"""

from __future__ import annotations

import ipaddress
import json
import random
import struct
import subprocess
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from okopy.acl.rules import AclRule
from okopy.lab.router import MACS, Router, mac_bytes
from okopy.traffic import packets as pk

SIDE_A, SIDE_B = 1, 2


@dataclass(frozen=True)
class WirePacket:
    side: int  # SIDE_A or SIDE_B: where it enters the firewall
    frame: bytes
    what: str


def _routable(addr: int) -> bool:
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


class _Values:
    """Values to draw a field from: the edges of the rules' sets, their
    neighbours, and random ones."""

    def __init__(
        self, rng: random.Random, rules: Sequence[AclRule], name: str, size: int, ok: object = None
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
        return self.ok is None or bool(self.ok(v))  # type: ignore[operator]

    def draw(self, lo: int = 0) -> int:
        for _ in range(100):
            if self.edges and self.rng.random() < 0.7:
                v = self.rng.choice(self.edges)
            else:
                v = self.rng.randrange(lo, self.size)
            if v >= lo and self._fine(v):
                return v
        raise ValueError("no value to draw")


def _ip(v: int) -> str:
    return str(ipaddress.IPv4Address(v))


def _icmp(type_: int, code: int, rest: bytes, payload: bytes = b"") -> bytes:
    msg = struct.pack("!BBH", type_, code, 0) + rest + payload
    return msg[:2] + struct.pack("!H", pk.checksum(msg)) + msg[4:]


class _Builder:
    def __init__(self, rules: Sequence[AclRule], rng: random.Random) -> None:
        self.rng = rng
        self.addr = _Values(rng, rules, "src", 1 << 32, _routable)
        self.addr_d = _Values(rng, rules, "dst", 1 << 32, _routable)
        self.sport = _Values(rng, rules, "sport", 1 << 16)
        self.dport = _Values(rng, rules, "dport", 1 << 16)
        self.used: set[tuple[int, int, int, int, int]] = set()

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
            return _ip(c), _ip(s), cp, sp
        raise ValueError("ran out of fresh 5-tuples")

    def tcp(self) -> list[tuple[int, bytes, str]]:
        c, s, cp, sp = self.endpoints(pk.IPPROTO_TCP)
        a, b = (SIDE_A, SIDE_B) if self.rng.random() < 0.6 else (SIDE_B, SIDE_A)
        cs, ss = self.rng.getrandbits(32), self.rng.getrandbits(32)
        A, S, F, R, P = pk.TCP_ACK, pk.TCP_SYN, pk.TCP_FIN, pk.TCP_RST, pk.TCP_PSH

        def fwd(flags: int, seq: int, ack: int, data: bytes = b"") -> tuple[int, bytes, str]:
            seg = pk.tcp(c, s, cp, sp, flags, seq & 0xFFFFFFFF, ack & 0xFFFFFFFF, payload=data)
            return a, pk.ipv4(c, s, pk.IPPROTO_TCP, seg), f"tcp {c}:{cp} > {s}:{sp} {flags:#x}"

        def rev(flags: int, seq: int, ack: int, data: bytes = b"") -> tuple[int, bytes, str]:
            seg = pk.tcp(s, c, sp, cp, flags, seq & 0xFFFFFFFF, ack & 0xFFFFFFFF, payload=data)
            return b, pk.ipv4(s, c, pk.IPPROTO_TCP, seg), f"tcp {s}:{sp} > {c}:{cp} {flags:#x}"

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
        if proto != pk.IPPROTO_UDP:

            def other(src: str, dst: str) -> bytes:
                return pk.ipv4(src, dst, proto, b"payload!")

            out = [(a, other(c, s), f"proto {proto} {c} > {s}")]
            if self.rng.random() < 0.7:
                out.append((b, other(s, c), f"proto {proto} {s} > {c}"))
            return out
        out = [
            (
                a,
                pk.ipv4(c, s, pk.IPPROTO_UDP, pk.udp(c, s, cp, sp, b"ask")),
                f"udp {c}:{cp} > {s}:{sp}",
            )
        ]
        if self.rng.random() < 0.7:
            out.append(
                (
                    b,
                    pk.ipv4(s, c, pk.IPPROTO_UDP, pk.udp(s, c, sp, cp, b"answer")),
                    f"udp {s}:{sp} > {c}:{cp}",
                )
            )
            if self.rng.random() < 0.4:
                # The server's side sends an error about the client's datagram.
                quoted = pk.ipv4(c, s, pk.IPPROTO_UDP, pk.udp(c, s, cp, sp, b"ask"))[:28]
                out.append(
                    (
                        b,
                        pk.ipv4(s, c, pk.IPPROTO_ICMP, _icmp(3, 3, b"\0" * 4, quoted)),
                        f"icmp port unreachable {s} > {c} about udp {cp}>{sp}",
                    )
                )
        out.append(
            (
                a,
                pk.ipv4(c, s, pk.IPPROTO_UDP, pk.udp(c, s, cp, sp, b"again")),
                f"udp {c}:{cp} > {s}:{sp}",
            )
        )
        return out

    def icmp(self) -> list[tuple[int, bytes, str]]:
        c, s, ident, _ = self.endpoints(pk.IPPROTO_ICMP)
        a, b = (SIDE_A, SIDE_B) if self.rng.random() < 0.6 else (SIDE_B, SIDE_A)
        kind = self.rng.choices(["echo", "timestamp", "stray", "error"], [50, 10, 20, 20])[0]
        rest = struct.pack("!HH", ident, 1)
        if kind in ("echo", "timestamp"):
            req, rep = (8, 0) if kind == "echo" else (13, 14)
            body = b"ping" * 3
            return [
                (a, pk.ipv4(c, s, 1, _icmp(req, 0, rest, body)), f"icmp {req} {c} > {s}"),
                (b, pk.ipv4(s, c, 1, _icmp(rep, 0, rest, body)), f"icmp {rep} {s} > {c}"),
                (a, pk.ipv4(c, s, 1, _icmp(req, 0, rest, body)), f"icmp {req} {c} > {s}"),
            ]
        if kind == "stray":
            t = self.rng.choice([0, 14, 9, 10])
            return [(a, pk.ipv4(c, s, 1, _icmp(t, 0, rest, b"x" * 8)), f"icmp {t} {c} > {s}")]
        # An error about a datagram nobody sent.
        quoted = pk.ipv4(s, c, pk.IPPROTO_UDP, pk.udp(s, c, 4000, 5000, b"q"))[:28]
        t, code = self.rng.choice([(3, 1), (11, 0), (3, 3)])
        return [
            (
                a,
                pk.ipv4(c, s, 1, _icmp(t, code, b"\0" * 4, quoted)),
                f"icmp error {t}/{code} {c} > {s} about nothing",
            )
        ]


def conversations(rules: Sequence[AclRule], seed: int, count: int) -> list[WirePacket]:
    """At least 'count' packets of interleaved conversations aimed at the
    edges of 'rules'; packet i carries i in its IPv4 identification."""
    rng = random.Random(seed)
    b = _Builder(rules, rng)
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
    """'ip' with identification 'index', inside an Ethernet frame from the
    side's outer end to the firewall."""
    if index > 0xFFFF:
        raise ValueError("at most 65536 packets: the identification field tags them")
    hdr = bytearray(ip[:20])
    hdr[4:6] = struct.pack("!H", index)
    hdr[10:12] = b"\0\0"
    hdr[10:12] = struct.pack("!H", pk.checksum(bytes(hdr)))
    return bytes(hdr) + ip[20:]


def frame(p: WirePacket) -> bytes:
    src, dst = ("ea", "fa") if p.side == SIDE_A else ("eb", "fb")
    return pk.ethernet(pk.ETH_P_IP, p.frame, src=mac_bytes(MACS[src]), dst=mac_bytes(MACS[dst]))


# The sender and receiver: a child process (so this one never changes
# namespace) that opens one packet socket per side, each inside that
# side's namespace, sends the frames in order and records what arrives.
# With 'settle', before a packet from the other side than the previous
# one it waits until the previous one came out (or 'settle' seconds): a
# switch polls its ports in turn, and conntrack needs the order kept.
_WIRE_SCRIPT = r"""
import ctypes, json, os, socket, struct, sys, time
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
seen = {side: [] for side in socks}
tags = {side: set() for side in socks}
def drain():
    for side, s in socks.items():
        while True:
            try:
                data, addr = s.recvfrom(65535)
            except BlockingIOError:
                break
            if addr[2] == socket.PACKET_OUTGOING or len(data) < 34:
                continue
            if data[12:14] != b"\x08\x00":
                continue
            ip = data[14:]
            row = [ip[12:20].hex(), ip[9], struct.unpack("!H", ip[4:6])[0],
                   struct.unpack("!H", ip[2:4])[0]]
            seen[side].append(row)
            tags[side].add(row[2])
settle = job["settle"]
prev = None
for i, (side, hexframe) in enumerate(job["frames"]):
    side = str(side)
    if settle and prev is not None and prev[0] != side:
        other = [x for x in socks if x != prev[0]][0]
        deadline = time.monotonic() + settle
        while time.monotonic() < deadline:
            drain()
            if prev[1] in tags[other]:
                break
            time.sleep(0.0002)
    socks[side].send(bytes.fromhex(hexframe))
    prev = (side, i)
    if i % 64 == 63:
        drain()
deadline = time.time() + 1.0 + 10 * settle
while time.time() < deadline:
    drain()
    time.sleep(0.05)
json.dump(seen, sys.stdout)
"""


def send_and_listen(
    sides: dict[int, tuple[str, str]],
    packets: Sequence[WirePacket],
    macs: dict[int, tuple[bytes, bytes]],
    settle: float = 0.0,
) -> list[bool]:
    """Send each packet from its side's (namespace path, interface) with
    the side's (source, destination) MACs, in order; whether each came out
    on the other side (same addresses, protocol, identification and
    length)."""
    frames = []
    for p in packets:
        src, dst = macs[p.side]
        frames.append([p.side, pk.ethernet(pk.ETH_P_IP, p.frame, src=src, dst=dst).hex()])
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
    seen = json.loads(done.stdout)
    arrived = {int(side): {tuple(x) for x in rows} for side, rows in seen.items()}
    out = []
    for i, p in enumerate(packets):
        ip = p.frame
        key = (ip[12:20].hex(), ip[9], i, len(ip))
        other = SIDE_B if p.side == SIDE_A else SIDE_A
        out.append(key in arrived[other])
    return out


class IptablesWire:
    """A router namespace (okopy.lab.router) with an iptables-save loaded
    in its FORWARD path: 'fa' is side A's link, 'fb' side B's."""

    def __init__(self, save: str, iptables: str = "iptables") -> None:
        self.router = Router()
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
        return self.router.save()

    def close(self) -> None:
        self.router.close()


def describe(packets: Iterable[WirePacket]) -> list[str]:
    return [f"{i}: side {p.side} {p.what}" for i, p in enumerate(packets)]


__all__ = ["IptablesWire", "WirePacket", "conversations", "frame"]
