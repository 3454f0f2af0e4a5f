"""ovs-ofctl alone drives a rate limiter on a netdev bridge: a flood's
excess is dropped, other traffic passes, and the map shows each source."""

from __future__ import annotations

from pathlib import Path

from okopy.bpf.toolchain import compile_program
from okopy.ovs.instance import OvsInstance
from okopy.testing.fixtures import BRIDGE, HostFactory

ROOT = Path(__file__).resolve().parent.parent.parent
OF13 = ("-O", "OpenFlow13")


def test_flood_excess_dropped(switch: OvsInstance, add_host: HostFactory, tmp_path: Path) -> None:
    flooder = add_host("h1", "10.0.0.1/24", 1)
    quiet = add_host("h2", "10.0.0.2/24", 2)
    add_host("h3", "10.0.0.3/24", 3)
    obj = compile_program(ROOT / "bpf/ratelimit.c", tmp_path / "ratelimit.o")
    switch.ofctl(*OF13, "load-bpf-prog", BRIDGE, "5", str(obj), "name=limit")
    # 20 packets/s per source, bursts of 5: ovs-ofctl reads the value through
    # the map's BTF (and would take the same as hex, 1400000005000000).
    switch.ofctl(*OF13, "update-bpf-map", BRIDGE, "5", "config", "0", "{rate=20,burst=5}")
    switch.ofctl(*OF13, "del-flows", BRIDGE)
    for flow in (
        "table=0,priority=100,ip,actions=bpf(prog=5,table=1)",
        "table=0,priority=0,actions=NORMAL",
        "table=1,priority=100,bpf_verdict=pass,actions=NORMAL",
        "table=1,priority=0,actions=drop",
    ):
        switch.ofctl(*OF13, "add-flow", BRIDGE, flow)

    # h1 floods h3: 500 pings 2 ms apart (about a second); h2 pings slowly after.
    flood = flooder.ping("10.0.0.3", count=500, interval=0.002)
    calm = quiet.ping("10.0.0.3", count=5, interval=0.3, deadline=10)
    assert calm.received == 5
    assert flood.received < 100, flood
    assert flood.received >= 5, flood

    dump = switch.ofctl(*OF13, "dump-bpf-map", BRIDGE, "5", "sources")
    assert "key=10.0.0.1 " in dump, dump  # h1's state, typed through BTF
    assert "key=10.0.0.2 " in dump, dump
    raw = switch.ofctl(*OF13, "--hex", "dump-bpf-map", BRIDGE, "5", "sources")
    assert "key=0a000001 " in raw, raw
    config = switch.ofctl(*OF13, "lookup-bpf-map", BRIDGE, "5", "config", "0")
    assert "key=0 value={rate=20,burst=5}" in config, config
    progs = switch.ofctl(*OF13, "dump-bpf-progs", BRIDGE)
    assert 'name="limit"' in progs, progs
