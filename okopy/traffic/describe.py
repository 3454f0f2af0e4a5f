"""Packets from a short description, for `okopy pcap`.

    udp src 10.0.0.1 dst 10.0.0.2 dport 9999 count 20
    tcp src 10.0.0.0/29 dst 10.0.0.2 sport 40000-40002 dport 80 flags S
    icmp src 2001:db8::1 dst 2001:db8::2

A description is a protocol (`udp`, `tcp`, `icmp`; `icmp` between IPv6
addresses is ICMPv6) and fields, in any order, named as scapy names them:

    src, dst   addresses, IPv4 or IPv6 (both the same): an address, a range
               A-B, a prefix P/LEN (every address in it), or a comma list
    sport      source ports (udp, tcp; default 40000), dport destination
               ports (udp, tcp; required): a port, a range A-B, or a comma
               list
    flags      tcp only: scapy's letters F S R P A U E C (default S)
    payload    bytes of zeros after the header (default 0)
    count      times the whole sweep is written (default 1)

A description with lists or ranges stands for every combination of their
values (src, dst, sport, dport; the last varies fastest), as in scapy.
Words may come one per argument or several in one: each protocol word
starts the next description.  Parsing and building are pure; errors name
the description and the word that is wrong.
"""

from __future__ import annotations

import ipaddress
import itertools
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass

from okopy.traffic import packets
from okopy.traffic.pcap import Packet

PROTOCOLS = ("udp", "tcp", "icmp")
FIELDS = ("src", "dst", "sport", "dport", "flags", "payload", "count")
TCP_FLAGS = {"F": 0x01, "S": 0x02, "R": 0x04, "P": 0x08, "A": 0x10, "U": 0x20, "E": 0x40,
             "C": 0x80}  # fmt: skip
DEFAULT_SPORT = 40000
MAX_PAYLOAD = 65000  # fits a 16-bit IP length, with headers
MAX_PACKETS = 1_000_000  # a typo in a prefix length should not fill the disk
START_NS = 1_000_000_000  # first timestamp: 1 s, as a clock since boot reads


class DescriptionError(ValueError):
    """A traffic description that cannot be built; says which word is wrong."""


_Fail = Callable[[str], DescriptionError]


@dataclass(frozen=True)
class Sweep:
    """The values of one field: inclusive integer ranges, in order."""

    ranges: tuple[tuple[int, int], ...]

    def __len__(self) -> int:
        return sum(hi - lo + 1 for lo, hi in self.ranges)

    def __iter__(self) -> Iterator[int]:
        for lo, hi in self.ranges:
            yield from range(lo, hi + 1)


@dataclass(frozen=True)
class Description:
    """One parsed description: a sweep of packets, 'count' times over."""

    text: str
    proto: str
    version: int  # 4 or 6
    src: Sweep
    dst: Sweep
    sport: Sweep
    dport: Sweep
    flags: int
    payload: int
    count: int

    def __len__(self) -> int:
        return len(self.src) * len(self.dst) * len(self.sport) * len(self.dport) * self.count

    def frames(self) -> Iterator[bytes]:
        """The Ethernet frames, in order."""
        addr = ipaddress.IPv4Address if self.version == 4 else ipaddress.IPv6Address
        data = bytes(self.payload)
        seq = itertools.count(1)
        for _ in range(self.count):
            for s, d, sp, dp in itertools.product(self.src, self.dst, self.sport, self.dport):
                src, dst = str(addr(s)), str(addr(d))
                yield _frame(self, src, dst, sp, dp, data, next(seq))


def _frame(desc: Description, src: str, dst: str, sport: int, dport: int, data: bytes,
           seq: int) -> bytes:  # fmt: skip
    v6 = desc.version == 6
    if desc.proto == "udp":
        return (packets.udp6 if v6 else packets.udp4)(src, dst, sport, dport, data)
    if desc.proto == "tcp":
        return (packets.tcp6 if v6 else packets.tcp4)(
            src, dst, sport, dport, desc.flags, payload=data
        )
    ident = 1
    if v6:
        return packets.icmp6(src, dst, ident, seq & 0xFFFF, data)
    return packets.icmp4(src, dst, ident, seq & 0xFFFF, data)


def split(args: Iterable[str]) -> list[list[str]]:
    """Words of the arguments, one list per description (each protocol word
    starts one).  Words before the first protocol word are an error."""
    out: list[list[str]] = []
    for word in (w for a in args for w in a.split()):
        if word in PROTOCOLS and (not out or _expects_keyword(out[-1])):
            out.append([word])
        elif not out:
            raise DescriptionError(
                f"{word!r} is not a protocol: a description starts with "
                f"{', '.join(PROTOCOLS)}, e.g. 'udp src 10.0.0.1 dst 10.0.0.2 dport 53'"
            )
        else:
            out[-1].append(word)
    return out


def _expects_keyword(words: Sequence[str]) -> bool:
    """Whether the next word of a description is a field name (not a value)."""
    return len(words) % 2 == 1


def parse(args: Iterable[str]) -> list[Description]:
    """All descriptions in 'args'; DescriptionError at the first wrong one."""
    groups = split(args)
    if not groups:
        raise DescriptionError("describe at least one packet, e.g. 'udp src 10.0.0.1 "
                               "dst 10.0.0.2 dport 53'")  # fmt: skip
    out = [parse_one(words, i) for i, words in enumerate(groups, 1)]
    total = sum(len(d) for d in out)
    if total > MAX_PACKETS:
        raise DescriptionError(f"that is {total} packets; at most {MAX_PACKETS} at once")
    return out


def parse_one(words: Sequence[str], number: int = 1) -> Description:
    """One description: a protocol word, then field-value pairs."""
    text = " ".join(words)

    def fail(what: str) -> DescriptionError:
        return DescriptionError(f"packet {number} ({text!r}): {what}")

    proto, rest = words[0], words[1:]
    if proto not in PROTOCOLS:
        raise fail(f"{proto!r} is not a protocol ({', '.join(PROTOCOLS)})")
    values: dict[str, str] = {}
    for i in range(0, len(rest), 2):
        key = rest[i]
        if key not in FIELDS:
            raise fail(f"unknown field {key!r} (fields: {', '.join(FIELDS)})")
        if i + 1 >= len(rest) or rest[i + 1] in FIELDS:
            raise fail(f"{key} needs a value")
        if key in values:
            raise fail(f"{key} is given twice")
        values[key] = rest[i + 1]
    for key in ("src", "dst"):
        if key not in values:
            raise fail(f"{key} is missing (an IPv4 or IPv6 address)")
    src_v, src = _addresses(values["src"], "src", fail)
    dst_v, dst = _addresses(values["dst"], "dst", fail)
    if src_v != dst_v:
        raise fail(f"src is IPv{src_v} but dst is IPv{dst_v}")
    if proto == "icmp":
        for key in ("sport", "dport"):
            if key in values:
                raise fail(f"{key}: icmp has no ports")
        sport = dport = Sweep(((0, 0),))
    else:
        if "dport" not in values:
            raise fail(f"dport is missing ({proto} needs a destination port)")
        sport = _ports(values.get("sport", str(DEFAULT_SPORT)), "sport", fail)
        dport = _ports(values["dport"], "dport", fail)
    flags = packets.TCP_SYN
    if "flags" in values:
        if proto != "tcp":
            raise fail(f"flags {values['flags']!r}: only tcp has flags, not {proto}")
        flags = _flags(values["flags"], fail)
    payload = _number(values.get("payload", "0"), "payload", 0, MAX_PAYLOAD, fail)
    count = _number(values.get("count", "1"), "count", 1, MAX_PACKETS, fail)
    return Description(text, proto, src_v, src, dst, sport, dport, flags, payload, count)


def _number(text: str, what: str, lo: int, hi: int, fail: _Fail) -> int:
    try:
        n = int(text, 10)
    except ValueError:
        raise fail(f"{what} {text!r} is not a number") from None
    if not lo <= n <= hi:
        raise fail(f"{what} {n} is out of range ({lo}-{hi})")
    return n


def _ports(text: str, what: str, fail: _Fail) -> Sweep:
    ranges = []
    for item in text.split(","):
        lo_s, dash, hi_s = item.partition("-")
        lo = _number(lo_s, what, 0, 65535, fail)
        hi = _number(hi_s, what, 0, 65535, fail) if dash else lo
        if hi < lo:
            raise fail(f"{what} range {item!r} runs backwards")
        ranges.append((lo, hi))
    return Sweep(tuple(ranges))


def _address(text: str, what: str, fail: _Fail) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        raise fail(f"{what} {text!r} is not an IPv4 or IPv6 address") from None


def _addresses(text: str, what: str, fail: _Fail) -> tuple[int, Sweep]:
    version = 0
    ranges = []
    for item in text.split(","):
        if "/" in item:
            try:
                net = ipaddress.ip_network(item, strict=False)
            except ValueError:
                raise fail(f"{what} {item!r} is not a prefix (address/length)") from None
            v, lo, hi = net.version, int(net.network_address), int(net.broadcast_address)
        else:
            first, dash, last = item.partition("-")
            a = _address(first, what, fail)
            b = _address(last, f"{what} range {item!r}: its end", fail) if dash else a
            if a.version != b.version:
                raise fail(f"{what} range {item!r} mixes IPv4 and IPv6")
            if int(b) < int(a):
                raise fail(f"{what} range {item!r} runs backwards")
            v, lo, hi = a.version, int(a), int(b)
        if version and v != version:
            raise fail(f"{what} {text!r} mixes IPv4 and IPv6")
        version = v
        ranges.append((lo, hi))
    return version, Sweep(tuple(ranges))


def _flags(text: str, fail: _Fail) -> int:
    flags = 0
    for letter in text:
        bit = TCP_FLAGS.get(letter.upper())
        if bit is None:
            raise fail(
                f"flags {text!r}: unknown flag {letter!r} (scapy's letters: {' '.join(TCP_FLAGS)})"
            )
        flags |= bit
    return flags


def timed(descriptions: Iterable[Description], interval_ns: int,
          start_ns: int = START_NS) -> Iterator[Packet]:  # fmt: skip
    """The frames of all descriptions in order, 'interval_ns' apart."""
    frames = (f for d in descriptions for f in d.frames())
    for i, frame in enumerate(frames):
        yield Packet(start_ns + i * interval_ns, frame, len(frame))


def summary(descriptions: Sequence[Description]) -> str:
    """One line per description: how many packets it gave."""
    return "\n".join(f"  {len(d):>7}  {d.text}" for d in descriptions)
