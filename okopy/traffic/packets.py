"""Build test packets (Ethernet, IPv4/IPv6, TCP/UDP/ICMP) and random mixes.

Pure functions of their arguments, so generated traffic is reproducible
from a seed.  The random mix deliberately includes truncated and odd
packets: filters must bounds-check every header.
"""

from __future__ import annotations

import ipaddress
import random
import struct
from dataclasses import dataclass

ETH_P_IP = 0x0800
ETH_P_IPV6 = 0x86DD
ETH_P_ARP = 0x0806
ETH_P_8021Q = 0x8100
IPPROTO_ICMP = 1
IPPROTO_TCP = 6
IPPROTO_UDP = 17
IPPROTO_ICMPV6 = 58

TCP_FIN, TCP_SYN, TCP_RST, TCP_PSH, TCP_ACK = 0x01, 0x02, 0x04, 0x08, 0x10

SRC_MAC = bytes.fromhex("020000000001")
DST_MAC = bytes.fromhex("020000000002")


def checksum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    s = sum(int(w) for w in struct.unpack(f"!{len(data) // 2}H", data))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


def ethernet(
    ethertype: int, payload: bytes, src: bytes = SRC_MAC, dst: bytes = DST_MAC,
    vlan: int | None = None,
) -> bytes:  # fmt: skip
    tag = struct.pack("!HH", ETH_P_8021Q, vlan) if vlan is not None else b""
    return dst + src + tag + struct.pack("!H", ethertype) + payload


def ipv4(src: str, dst: str, proto: int, payload: bytes, ttl: int = 64,
         ident: int = 0, frag: int = 0, options: bytes = b"") -> bytes:  # fmt: skip
    ihl = 5 + len(options) // 4
    hdr = struct.pack(
        "!BBHHHBBH4s4s", (4 << 4) | ihl, 0, 20 + len(options) + len(payload), ident,
        frag, ttl, proto, 0, ipaddress.IPv4Address(src).packed,
        ipaddress.IPv4Address(dst).packed,
    ) + options  # fmt: skip
    hdr = hdr[:10] + struct.pack("!H", checksum(hdr)) + hdr[12:]
    return hdr + payload


def ipv6(src: str, dst: str, nexthdr: int, payload: bytes, hop: int = 64) -> bytes:
    return (
        struct.pack("!IHBB", 6 << 28, len(payload), nexthdr, hop)
        + ipaddress.IPv6Address(src).packed
        + ipaddress.IPv6Address(dst).packed
        + payload
    )


def pseudo_header(src: str, dst: str, proto: int, length: int) -> bytes:
    """The pseudo-header a TCP, UDP or ICMPv6 checksum covers, for either
    family."""
    a, b = ipaddress.ip_address(src), ipaddress.ip_address(dst)
    if a.version == 4:
        return a.packed + b.packed + struct.pack("!BBH", 0, proto, length)
    return a.packed + b.packed + struct.pack("!IxxxB", length, proto)


def tcp(src: str, dst: str, sport: int, dport: int, flags: int = TCP_SYN,
        seq: int = 0, ack: int = 0, window: int = 65535, payload: bytes = b"",
        options: bytes = b"") -> bytes:  # fmt: skip
    off = (20 + len(options)) // 4
    hdr = struct.pack("!HHIIBBHHH", sport, dport, seq, ack, off << 4, flags, window, 0, 0)
    seg = hdr + options + payload
    csum = checksum(pseudo_header(src, dst, IPPROTO_TCP, len(seg)) + seg)
    return seg[:16] + struct.pack("!H", csum) + seg[18:]


def udp(src: str, dst: str, sport: int, dport: int, payload: bytes = b"") -> bytes:
    seg = struct.pack("!HHHH", sport, dport, 8 + len(payload), 0) + payload
    csum = checksum(pseudo_header(src, dst, IPPROTO_UDP, len(seg)) + seg) or 0xFFFF
    return seg[:6] + struct.pack("!H", csum) + seg[8:]


def icmp_echo(ident: int = 1, seq: int = 1, payload: bytes = b"x" * 8) -> bytes:
    msg = struct.pack("!BBHHH", 8, 0, 0, ident, seq) + payload
    return msg[:2] + struct.pack("!H", checksum(msg)) + msg[4:]


def tcp_options(layout: str, mss: int = 1460, wscale: int = 7,
                ts_val: int = 1, ts_ecr: int = 0) -> bytes:  # fmt: skip
    """TCP options in the order of 'layout', one letter per option (the
    letters p0f-style filters record): E end of list, N no-op, M MSS,
    W window scale, S SACK permitted, T timestamps.  Padded with zeros
    (end of list) to a multiple of 4 bytes."""
    out = b""
    for letter in layout:
        if letter == "E":
            out += b"\0"
        elif letter == "N":
            out += b"\1"
        elif letter == "M":
            out += struct.pack("!BBH", 2, 4, mss)
        elif letter == "W":
            out += struct.pack("!BBB", 3, 3, wscale)
        elif letter == "S":
            out += struct.pack("!BB", 4, 2)
        elif letter == "T":
            out += struct.pack("!BBII", 8, 10, ts_val, ts_ecr)
        else:
            raise ValueError(f"unknown TCP option letter {letter!r} in {layout!r}")
    return out + b"\0" * (-len(out) % 4)


def dns(ident: int, name: str = "example.org", *, response: bool = False,
        answer: bytes = b"") -> bytes:  # fmt: skip
    """A DNS message with one question (type A, class IN) for 'name' and,
    for a response, 'answer' as its answer section (any bytes, to reach a
    size)."""
    flags = 0x8180 if response else 0x0100
    qname = b"".join(
        bytes([len(label)]) + label.encode() for label in name.split(".")
    ) + b"\0"  # fmt: skip
    header = struct.pack("!HHHHHH", ident, flags, 1, 1 if answer else 0, 0, 0)
    return header + qname + struct.pack("!HH", 1, 1) + answer


def tcp4(src: str, dst: str, sport: int, dport: int, flags: int = TCP_SYN,
         **kw: object) -> bytes:  # fmt: skip
    seg = tcp(src, dst, sport, dport, flags, **kw)  # type: ignore[arg-type]
    return ethernet(ETH_P_IP, ipv4(src, dst, IPPROTO_TCP, seg))


def udp4(src: str, dst: str, sport: int, dport: int, payload: bytes = b"") -> bytes:
    return ethernet(ETH_P_IP, ipv4(src, dst, IPPROTO_UDP, udp(src, dst, sport, dport, payload)))


def tcp6(src: str, dst: str, sport: int, dport: int, flags: int = TCP_SYN,
         payload: bytes = b"") -> bytes:  # fmt: skip
    seg = tcp(src, dst, sport, dport, flags, payload=payload)
    return ethernet(ETH_P_IPV6, ipv6(src, dst, IPPROTO_TCP, seg))


def udp6(src: str, dst: str, sport: int, dport: int, payload: bytes = b"") -> bytes:
    seg = udp(src, dst, sport, dport, payload)
    return ethernet(ETH_P_IPV6, ipv6(src, dst, IPPROTO_UDP, seg))


def icmp4(src: str, dst: str, ident: int = 1, seq: int = 1, payload: bytes = b"x" * 8) -> bytes:
    return ethernet(ETH_P_IP, ipv4(src, dst, IPPROTO_ICMP, icmp_echo(ident, seq, payload)))


def icmp6_echo(src: str, dst: str, ident: int = 1, seq: int = 1,
               payload: bytes = b"x" * 8) -> bytes:  # fmt: skip
    """An ICMPv6 echo request; unlike ICMPv4 its checksum covers the
    IPv6 pseudo-header."""
    msg = struct.pack("!BBHHH", 128, 0, 0, ident, seq) + payload
    csum = checksum(pseudo_header(src, dst, IPPROTO_ICMPV6, len(msg)) + msg)
    return msg[:2] + struct.pack("!H", csum) + msg[4:]


def icmp6(src: str, dst: str, ident: int = 1, seq: int = 1, payload: bytes = b"x" * 8) -> bytes:
    msg = icmp6_echo(src, dst, ident, seq, payload)
    return ethernet(ETH_P_IPV6, ipv6(src, dst, IPPROTO_ICMPV6, msg))


@dataclass(frozen=True)
class TrafficMix:
    """Address and port pools for random traffic; small pools make repeats."""

    v4_sources: tuple[str, ...] = tuple(f"10.0.{i // 8}.{1 + i % 8}" for i in range(24))
    v4_dests: tuple[str, ...] = ("10.1.0.1", "10.1.0.2", "192.0.2.10", "198.51.100.7")
    v6_sources: tuple[str, ...] = ("2001:db8::1", "2001:db8::2", "2001:db8:1::5")
    v6_dests: tuple[str, ...] = ("2001:db8:ff::1", "2001:db8:ff::2")
    ports: tuple[int, ...] = (22, 53, 80, 443, 1234, 8080, 40000, 65535)


def random_packets(
    seed: int, count: int, mix: TrafficMix | None = None, *, extras: bool = False
) -> list[bytes]:
    """'count' reproducible packets: mostly well-formed, some truncated or odd.

    'extras' mixes in, for stateful filters, DNS queries and responses,
    SYNs with TCP options and whole TCP conversations (`extra_packets()`);
    without it a seed gives the packets it always gave."""
    rng = random.Random(seed)
    m = mix or TrafficMix()
    out: list[bytes] = []
    while len(out) < count:
        if extras and rng.random() < EXTRAS_SHARE:
            out.extend(extra_packets(rng, m))
            continue
        kind = rng.random()
        s4, d4 = rng.choice(m.v4_sources), rng.choice(m.v4_dests)
        sp, dp = rng.choice(m.ports), rng.choice(m.ports)
        if kind < 0.45:
            flags = rng.choice([TCP_SYN, TCP_SYN | TCP_ACK, TCP_ACK, TCP_ACK | TCP_PSH,
                                TCP_FIN | TCP_ACK, TCP_RST, 0])  # fmt: skip
            pay = bytes(rng.randrange(256) for _ in range(rng.choice([0, 0, 10, 100])))
            pkt = tcp4(s4, d4, sp, dp, flags, seq=rng.getrandbits(32),
                       ack=rng.getrandbits(32), payload=pay)  # fmt: skip
        elif kind < 0.75:
            size = rng.choice([0, 12, 64, 512, 1200])
            pkt = udp4(s4, d4, sp, dp, bytes(rng.randrange(256) for _ in range(size)))
        elif kind < 0.82:
            pkt = icmp4(s4, d4)
        elif kind < 0.9:
            s6, d6 = rng.choice(m.v6_sources), rng.choice(m.v6_dests)
            pkt = rng.choice([tcp6(s6, d6, sp, dp), udp6(s6, d6, sp, dp, b"q" * 20)])
        elif kind < 0.93:
            pkt = ethernet(ETH_P_ARP, bytes(28))
        elif kind < 0.96:
            inner = ipv4(s4, d4, IPPROTO_UDP, udp(s4, d4, sp, dp))
            pkt = ethernet(ETH_P_IP, inner, vlan=rng.randrange(1, 4095))
        else:
            # Truncated anywhere, down to an empty frame.
            full = tcp4(s4, d4, sp, dp)
            pkt = full[: rng.randrange(0, len(full))]
        out.append(pkt)
    return out[:count]


EXTRAS_SHARE = 0.3
SYN_LAYOUTS = ("MSTNW", "MNWNNS", "MNWNNTS", "MNNS", "M", "", "NNT", "MWE")


def _syn_with_options(rng: random.Random, src: str, dst: str, sport: int,
                      dport: int, flags: int) -> bytes:  # fmt: skip
    opts = tcp_options(
        rng.choice(SYN_LAYOUTS), mss=rng.choice([1460, 1440, 536, 8960]),
        wscale=rng.choice([0, 2, 7, 8]), ts_val=rng.getrandbits(32),
    )  # fmt: skip
    seg = tcp(src, dst, sport, dport, flags, seq=rng.getrandbits(32),
              window=rng.choice([65535, 64240, 29200, 8192]), options=opts)  # fmt: skip
    ttl = rng.choice([64, 128, 255, 57, 113])
    return ethernet(ETH_P_IP, ipv4(src, dst, IPPROTO_TCP, seg, ttl=ttl))


def _conversation(rng: random.Random, c: str, s: str, cp: int, sp: int) -> list[bytes]:
    """A TCP connection from 'c' to 's': handshake, data both ways (with a
    retransmission now and then), close or reset."""
    cs, ss = rng.getrandbits(32), rng.getrandbits(32)
    M = 1 << 32

    def fwd(flags: int, seq: int, ack: int, size: int = 0) -> bytes:
        return tcp4(c, s, cp, sp, flags, seq=seq % M, ack=ack % M, payload=bytes(size))

    def rev(flags: int, seq: int, ack: int, size: int = 0) -> bytes:
        return tcp4(s, c, sp, cp, flags, seq=seq % M, ack=ack % M, payload=bytes(size))

    pkts = [fwd(TCP_SYN, cs, 0), rev(TCP_SYN | TCP_ACK, ss, cs + 1),
            fwd(TCP_ACK, cs + 1, ss + 1)]  # fmt: skip
    cn, sn = cs + 1, ss + 1
    for _ in range(rng.randrange(1, 4)):
        size = rng.choice([10, 100, 1000])
        pkts.append(fwd(TCP_ACK | TCP_PSH, cn, sn, size))
        if rng.random() < 0.2:
            pkts.append(fwd(TCP_ACK | TCP_PSH, cn, sn, size))  # Retransmitted.
        cn += size
        reply = rng.choice([0, 0, 200])
        pkts.append(rev(TCP_ACK | (TCP_PSH if reply else 0), sn, cn, reply))
        sn += reply
    if rng.random() < 0.2:
        pkts.append(rev(TCP_RST, sn, cn))
    else:
        pkts += [fwd(TCP_FIN | TCP_ACK, cn, sn), rev(TCP_FIN | TCP_ACK, sn, cn + 1),
                 fwd(TCP_ACK, cn + 1, sn + 1)]  # fmt: skip
    # Lose a packet now and then.
    return [pkt for pkt in pkts if rng.random() < 0.95]


def extra_packets(rng: random.Random, mix: TrafficMix | None = None) -> list[bytes]:
    """One exchange for stateful filters: a DNS query and/or response, a SYN
    (and SYN-ACK) with TCP options, or a TCP conversation."""
    m = mix or TrafficMix()
    client, server = rng.choice(m.v4_sources), rng.choice(m.v4_dests)
    cport, sport = rng.choice([40000, 40001, 51515, 1234]), rng.choice(m.ports)
    kind = rng.random()
    if kind < 0.3:
        ident = rng.getrandbits(16)
        query = udp4(client, server, cport, 53, dns(ident))
        answer = bytes(rng.choice([0, 40, 400, 1400]))
        response = udp4(server, client, 53, cport,
                        dns(ident, response=True, answer=answer))  # fmt: skip
        return rng.choice([[query], [query, response], [response], [response]])
    if kind < 0.55:
        pkts = [_syn_with_options(rng, client, server, cport, sport, TCP_SYN)]
        if rng.random() < 0.5:
            pkts.append(_syn_with_options(rng, server, client, sport, cport,
                                          TCP_SYN | TCP_ACK))  # fmt: skip
        return pkts
    return _conversation(rng, client, server, cport, sport)
