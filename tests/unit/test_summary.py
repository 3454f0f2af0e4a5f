"""okopy.traffic.summary: one line per frame, whatever the frame."""

from __future__ import annotations

import pytest

from okopy.traffic.packets import (
    ETH_P_ARP,
    ETH_P_IP,
    ETH_P_IPV6,
    IPPROTO_ICMP,
    IPPROTO_TCP,
    IPPROTO_UDP,
    TCP_ACK,
    TCP_FIN,
    TCP_SYN,
    ethernet,
    icmp_echo,
    ipv4,
    ipv6,
    tcp,
    udp,
)
from okopy.traffic.summary import summarize, tcp_flags

pytestmark = pytest.mark.unit


def test_ipv4_transport() -> None:
    seg = tcp("10.0.0.1", "10.0.0.2", 1234, 80, TCP_SYN | TCP_ACK)
    assert summarize(ethernet(ETH_P_IP, ipv4("10.0.0.1", "10.0.0.2", IPPROTO_TCP, seg))) == (
        "10.0.0.1:1234 > 10.0.0.2:80 TCP [SA]"
    )
    dgram = udp("10.0.0.1", "10.0.0.2", 5353, 53)
    frame = ethernet(ETH_P_IP, ipv4("10.0.0.1", "10.0.0.2", IPPROTO_UDP, dgram), vlan=7)
    assert summarize(frame) == "vlan 7 10.0.0.1:5353 > 10.0.0.2:53 UDP"
    ping = ethernet(ETH_P_IP, ipv4("10.0.0.1", "10.0.0.2", IPPROTO_ICMP, icmp_echo()))
    assert summarize(ping) == "10.0.0.1 > 10.0.0.2 ICMP type 8 code 0"


def test_ipv6_fragments_arp_and_others() -> None:
    seg = tcp("2001:db8::1", "2001:db8::2", 1, 2, TCP_FIN)
    frame = ethernet(ETH_P_IPV6, ipv6("2001:db8::1", "2001:db8::2", IPPROTO_TCP, seg))
    assert summarize(frame) == "2001:db8::1.1 > 2001:db8::2.2 TCP [F]"
    frag = ethernet(ETH_P_IP, ipv4("10.0.0.1", "10.0.0.2", IPPROTO_UDP, b"x" * 8, frag=100))
    assert summarize(frag) == "10.0.0.1 > 10.0.0.2 UDP (fragment)"
    arp = bytes.fromhex("0001080006040001") + bytes(6) + bytes([10, 0, 0, 1]) + bytes(6)
    assert summarize(ethernet(ETH_P_ARP, arp + bytes([10, 0, 0, 2]))) == (
        "ARP who-has 10.0.0.2 from 10.0.0.1"
    )
    assert summarize(ethernet(0x88CC, b"lldp")) == "eth type 0x88cc"


@pytest.mark.parametrize("cut", [0, 5, 13, 14, 20, 33, 35, 37])
def test_truncated_frames_still_get_a_line(cut: int) -> None:
    seg = tcp("10.0.0.1", "10.0.0.2", 1234, 80)
    whole = ethernet(ETH_P_IP, ipv4("10.0.0.1", "10.0.0.2", IPPROTO_TCP, seg))
    line = summarize(whole[:cut])
    assert line
    assert "truncated" in line


def test_tcp_flag_letters() -> None:
    assert tcp_flags(0) == "."
    assert tcp_flags(0xFF) == "FSRPAUEC"
