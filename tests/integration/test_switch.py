"""The built ovs-vswitchd forwards real packets between namespaces."""

from __future__ import annotations

from okopy.ovs.instance import OvsInstance, flow_packets
from okopy.process import pid_alive
from okopy.testing.fixtures import BRIDGE, HostFactory


def test_ping_through_netdev_bridge(switch: OvsInstance, add_host: HostFactory) -> None:
    h1 = add_host("h1", "10.0.0.1/24", 1)
    h2 = add_host("h2", "10.0.0.2/24", 2)
    assert switch.vsctl("get", "bridge", BRIDGE, "datapath_type").strip() == "netdev"
    switch.ofctl("del-flows", BRIDGE)
    switch.ofctl("add-flow", BRIDGE, "priority=10,in_port=1,actions=output:2")
    switch.ofctl("add-flow", BRIDGE, "priority=10,in_port=2,actions=output:1")

    result = h1.ping(h2.address, count=3)
    assert result.received == 3, result

    # Datapath flow statistics reach OpenFlow rules at the next revalidation.
    switch.appctl("ovs-vswitchd", "revalidator/wait")
    counts = flow_packets(switch.ofctl("dump-flows", BRIDGE))
    assert counts["priority=10,in_port=1"] >= 3
    assert counts["priority=10,in_port=2"] >= 3
    # The packets went through the userspace (netdev) datapath.
    assert "in_port" in switch.appctl("ovs-vswitchd", "dpctl/dump-flows")


def test_openflow_rules_decide(switch: OvsInstance, add_host: HostFactory) -> None:
    """Without a rule back from h2, h1's pings get no answer."""
    h1 = add_host("h1", "10.0.0.1/24", 1)
    h2 = add_host("h2", "10.0.0.2/24", 2)
    switch.ofctl("del-flows", BRIDGE)
    switch.ofctl("add-flow", BRIDGE, "priority=10,in_port=1,actions=output:2")
    assert h1.ping(h2.address, count=2, interval=0.2).received == 0
    switch.ofctl("add-flow", BRIDGE, "priority=10,in_port=2,actions=output:1")
    # h1 gave up resolving h2 (its ARP replies were dropped); a FAILED
    # neighbour would make ping report errors, not send.  Forget it.
    h1.ns.run(["ip", "neigh", "flush", "dev", "eth0"])
    assert h1.ping(h2.address, count=3, deadline=8).received == 3


def test_stop_ends_both_daemons(switch: OvsInstance) -> None:
    pids = dict(switch.pids)
    assert set(pids) == {"ovsdb-server", "ovs-vswitchd"}
    assert all(pid_alive(pid) for pid in pids.values())
    switch.stop()
    assert not any(pid_alive(pid) for pid in pids.values())
    switch.stop()  # a second stop is harmless


def test_bridge_tap_lives_in_switch_namespace(switch: OvsInstance) -> None:
    assert switch.netns is not None
    links = switch.netns.run(["ip", "-o", "link", "show"])
    assert f" {BRIDGE}:" in links
