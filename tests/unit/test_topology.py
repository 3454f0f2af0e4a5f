"""Lab topology files: accepted shapes and named problems."""

from __future__ import annotations

from pathlib import Path

import pytest

from okopy.lab import testbed

ROOT = Path(__file__).resolve().parent.parent.parent


def test_example_topology() -> None:
    topo = testbed.load_topology(ROOT / "examples/lab.yaml")
    assert topo.name == "line"
    assert [s.dpid for s in topo.switches] == [1, 2]
    assert topo.host("h3") == testbed.LabHost("h3", "s2", 1, "10.0.0.3/24")
    assert topo.links == (testbed.LabLink("s1", 10, "s2", 10),)
    with pytest.raises(testbed.LabError, match="no host 'h9'"):
        topo.host("h9")


BASE = "switches: {s1: {dpid: 1}}\nhosts:\n"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (BASE + "  h1: {switch: s9, port: 1, ip: 10.0.0.1/24}\n", "unknown switch 's9'"),
        (BASE + "  h1: {switch: s1, port: 1, ip: 10.0.0.1/24}\n  h2: {switch: s1, port: 1, ip: 10.0.0.2/24}\n",
         "port 1 of s1 is taken by host h1"),
        (BASE + "  h1: {switch: s1, port: 1, ip: 10.0.0.1}\n", "give an address with prefix length"),
        (BASE + "  h1: {switch: s1, port: 1, ip: 10.0.0.1/24}\n  h2: {switch: s1, port: 2, ip: 10.0.0.1/24}\n",
         "10.0.0.1 is also h1"),
        (BASE + "  H_1: {switch: s1, port: 1, ip: 10.0.0.1/24}\n", "host name 'H_1'"),
        ("switches: {longswitch: {dpid: 1}}\nhosts: {}\n", "use up to 8"),
        (BASE + "  h1: {switch: s1, port: 0, ip: 10.0.0.1/24}\n", "port must be between 1"),
        (BASE + "  h1: {switch: s1, port: 1, ip: 10.0.0.1/24, vlan: 3}\n", "unknown key 'vlan'"),
        ("switches: {}\nhosts: {}\n", "at least one switch"),
        (BASE + "  h1: {switch: s1, port: 1, ip: 10.0.0.1/24, port_type: dpdk}\n",
         "host h1 port_type 'dpdk': one of afpacket, afxdp, vhost"),
        (BASE + "  h1: {switch: s1, port: 1, ip: 10.0.0.1/24, ip6: 10.0.0.2/24}\n",
         "host h1 ip6 '10.0.0.2/24': give an IPv6 address with prefix length"),
        (BASE + "  h1: {switch: s1, port: 1, ip: 10.0.0.1/24, ip6: '2001:db8::1/64'}\n"
         "  h2: {switch: s1, port: 2, ip: 10.0.0.2/24, ip6: '2001:db8::1/64'}\n",
         "2001:db8::1 is also h1"),
        ("hosts: {}\n", "needs 'switches'"),
        (BASE + "  h1: {switch: s1, port: 1, ip: 10.0.0.1/24}\n"
         "controller: {policy: p.yaml, api_port: 65536}\n", "api_port must be between 0"),
    ],
)  # fmt: skip
def test_problems(text: str, message: str) -> None:
    with pytest.raises(testbed.TopologyError) as info:
        testbed.parse_topology(text, "t.yaml")
    assert any(message in str(p) for p in info.value.problems), info.value.problems
    assert all(str(p).startswith("t.yaml:") for p in info.value.problems)


def test_a_dual_stack_host() -> None:
    text = BASE + "  h1: {switch: s1, port: 1, ip: 10.0.0.1/24, ip6: '2001:db8::1/64'}\n"
    topo = testbed.parse_topology(text, "t.yaml")
    assert topo.host("h1").ip6 == "2001:db8::1/64"


def test_all_problems_at_once() -> None:
    """One bad field hides no other problem (lab.md: "all at once")."""
    text = (
        "switches: {s1: {dpid: 1}, S_2: {dpid: 2}}\n"
        "hosts:\n"
        "  H_1: {switch: s9, port: 1, ip: 10.0.0.1}\n"  # bad name, switch and ip
        "  h2: {switch: s8, port: 0, ip: 10.0.0.2/24}\n"  # bad switch and port
        "  h3: {switch: S_2, port: 1, ip: 10.0.0.3/24}\n"  # on the badly named switch
        "links:\n"
        "  - {a: s1, a_port: 0, b: s7, b_port: 2}\n"  # bad port, unknown switch
    )
    with pytest.raises(testbed.TopologyError) as info:
        testbed.parse_topology(text, "t.yaml")
    got = [p.message for p in info.value.problems]
    for want in (
        "switch name 'S_2'",
        "host name 'H_1'",
        "host H_1: unknown switch 's9'",
        "host H_1 ip '10.0.0.1': give an address with prefix length",
        "host h2: unknown switch 's8'",
        "port must be between 1",
        "a_port must be between 1",
        "link s1-s7: unknown switch 's7'",
    ):
        assert any(want in m for m in got), (want, got)
    assert not any("'S_2'" in m and "unknown switch" in m for m in got), got


def test_host_port_types() -> None:
    topo = testbed.parse_topology(
        BASE + "  h1: {switch: s1, port: 1, ip: 10.0.0.1/24, port_type: afxdp}\n"
        "  h2: {switch: s1, port: 2, ip: 10.0.0.2/24}\n"
        "  h3: {switch: s1, port: 3, ip: 10.0.0.3/24, port_type: vhost}\n", "t.yaml",
    )  # fmt: skip
    assert [h.port_type for h in topo.hosts] == ["afxdp", "afpacket", "vhost"]


def test_the_api_port_may_be_any_free_one() -> None:
    text = BASE + "  h1: {switch: s1, port: 1, ip: 10.0.0.1/24}\n"
    topo = testbed.parse_topology(text + "controller: {policy: p.yaml, api_port: 0}\n", "t.yaml")
    assert topo.controller is not None
    assert topo.controller.api_port == 0
    topo = testbed.parse_topology(text + "controller: {policy: p.yaml}\n", "t.yaml")
    assert topo.controller is not None
    assert topo.controller.api_port == 8080


def test_controller_replicas() -> None:
    text = BASE + "  h1: {switch: s1, port: 1, ip: 10.0.0.1/24}\n"
    topo = testbed.parse_topology(text + "controller: {policy: p.yaml, replicas: 2}\n", "t.yaml")
    assert topo.controller is not None
    assert topo.controller.replicas == 2
    with pytest.raises(testbed.TopologyError, match="replicas must be between 1 and 0x5"):
        testbed.parse_topology(text + "controller: {policy: p.yaml, replicas: 9}\n", "t.yaml")
