"""The kernel as oracle: the same iptables-save in a real iptables and in
bpf/acl.c, the same traffic through both, the same fate for every packet;
and the same for IPv6, an ip6tables-save in a real ip6tables and in
bpf/acl6.c.

iptables runs in a namespace that forwards between two links (its FORWARD
chain sees every packet); bpf/acl.c runs the maps `okopy import iptables`
writes, in libokovm and in the kernel (BPF_PROG_TEST_RUN), and in the
patched switch under the controller, with the policy the import wrote.
"""

from __future__ import annotations

import collections
import re
from collections.abc import Sequence
from pathlib import Path

import pytest

from okopy.acl import iptables as ipt
from okopy.acl.compile import compile_rules
from okopy.acl.policy import CustomVerdict, PolicyOptions, from_iptables
from okopy.acl.rules import SOURCES, VERDICT_PASS, AclRule
from okopy.bpf.toolchain import compile_program
from okopy.ovs.instance import OvsInstance, flow_packets
from okopy.testing import acl as wire
from okopy.testing.filtercases import run_verdicts
from okopy.testing.fixtures import BRIDGE, HostFactory

from .test_controller_programs import controlling

ROOT = Path(__file__).resolve().parent.parent.parent
SAVE = (ROOT / "tests/rulesets/overlap.save").read_text()
SAVE6 = (ROOT / "tests/rulesets/overlap6.save").read_text()
SAVES = {4: SAVE, 6: SAVE6}
# in_ports of the two sides: devices the kernel's test runner can present.
PORTS = {"fa": 1, "fb": 2}
N_PACKETS = 10_000


def build(tmp_path_factory: pytest.TempPathFactory, name: str) -> bytes:
    out = tmp_path_factory.mktemp(name) / f"{name}.o"
    return compile_program(ROOT / f"bpf/{name}.c", out).read_bytes()


@pytest.fixture(scope="module")
def acl_object(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    return build(tmp_path_factory, "acl")


@pytest.fixture(scope="module")
def acl6_object(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    return build(tmp_path_factory, "acl6")


def iptables_fates(
    packets: Sequence[wire.WirePacket], iptables: str = "iptables", save: str = SAVE
) -> list[bool]:
    """What a real iptables (ip6tables) holding 'save' does with each
    packet, in order."""
    kernel = wire.IptablesWire(save, iptables)
    try:
        return kernel.fates(packets)
    finally:
        kernel.close()


def okopy_verdicts(
    obj: bytes,
    rules: Sequence[AclRule],
    default: int,
    packets: Sequence[wire.WirePacket],
    family: int = 4,
) -> tuple[list[int], list[int]]:
    """bpf/acl.c's (with 'family' 6, bpf/acl6.c's) verdicts, in the VM and
    in the kernel, with the maps compile_rules() makes of 'rules'."""
    acl = compile_rules(rules, default, family=family)
    seeds = {name: [(e["key"], e["value"]) for e in entries] for name, entries in acl.maps.items()}
    side_port = {wire.SIDE_A: PORTS["fa"], wire.SIDE_B: PORTS["fb"]}
    return run_verdicts(obj, [(wire.frame(p), side_port[p.side]) for p in packets], seeds=seeds)


def disagreements(
    packets: Sequence[wire.WirePacket],
    fates: Sequence[bool],
    verdicts: Sequence[int],
    family: int = 4,
) -> list[str]:
    program = SOURCES[family]
    return [
        f"packet {i} ({p.what}, from side {p.side}): iptables "
        f"{'delivered' if fate else 'dropped'} it, {program} gave verdict {v}"
        for i, (p, fate, v) in enumerate(zip(packets, fates, verdicts, strict=True))
        if fate != (v == VERDICT_PASS)
    ]


def agrees_with_iptables(obj: bytes, family: int, iptables: str) -> None:
    """SAVES[family] in a real 'iptables' and translated for 'obj': the
    same fate for each of N_PACKETS packets."""
    save = SAVES[family]
    rules, default = ipt.flatten(ipt.parse_save(save, PORTS))
    packets = wire.conversations(rules, seed=11, count=N_PACKETS, family=family)
    fates = iptables_fates(packets, iptables, save)
    in_vm, in_kernel = okopy_verdicts(obj, rules, default, packets, family)
    assert len(packets) >= N_PACKETS
    # Traffic that exercises the rule set: much delivered, much dropped.
    assert 0.2 < sum(fates) / len(fates) < 0.9, collections.Counter(fates)
    problems = disagreements(packets, fates, in_vm, family)
    assert not problems, "\n".join(problems[:20])
    assert in_kernel == in_vm


def wrong_translation_is_caught(obj: bytes, family: int, iptables: str) -> None:
    """The comparison can fail: one rule's verdict flipped on okopy's side."""
    save = SAVES[family]
    rules, default = ipt.flatten(ipt.parse_save(save, PORTS))
    packets = wire.conversations(rules, seed=12, count=3000, family=family)
    fates = iptables_fates(packets, iptables, save)
    # The ESTABLISHED,RELATED rule becomes a drop.
    flip = next(i for i, r in enumerate(rules) if "RELATED,ESTABLISHED" in r.origin)
    wrong = [AclRule(r.match, 1 if i == flip else r.verdict, r.origin) for i, r in enumerate(rules)]
    in_vm, _ = okopy_verdicts(obj, wrong, default, packets, family)
    assert len(disagreements(packets, fates, in_vm, family)) > 100


@pytest.mark.parametrize("iptables", ["iptables", "iptables-legacy"])
def test_acl_agrees_with_iptables(acl_object: bytes, iptables: str) -> None:
    agrees_with_iptables(acl_object, 4, iptables)


@pytest.mark.parametrize("iptables", ["ip6tables", "ip6tables-legacy"])
def test_acl6_agrees_with_ip6tables(acl6_object: bytes, iptables: str) -> None:
    agrees_with_iptables(acl6_object, 6, iptables)


def test_a_ufw_ruleset_keeps_its_fates(acl_object: bytes) -> None:
    """tests/rulesets/ufw.save, shaped like ufw's: the import leaves out
    its rate-limited LOG rules, the rate-limited RETURN before them and
    the INPUT chain's rules FORWARD never meets; a real iptables holding
    all of it gives every packet the fate bpf/acl.c gives it."""
    save = (ROOT / "tests/rulesets/ufw.save").read_text()
    rs = ipt.parse_save(save, PORTS, chain="FORWARD")
    assert sum("not translated" in n for n in rs.notes) == 6, rs.notes
    rules, default = ipt.flatten(rs)
    packets = wire.conversations(rules, seed=16, count=5000)
    fates = iptables_fates(packets, "iptables", save)
    in_vm, in_kernel = okopy_verdicts(acl_object, rules, default, packets)
    # A default-deny rule set: most of the generated traffic is dropped.
    assert 0.05 < sum(fates) / len(fates) < 0.9, collections.Counter(fates)
    problems = disagreements(packets, fates, in_vm)
    assert not problems, "\n".join(problems[:20])
    assert in_kernel == in_vm


def test_a_wrong_translation_is_caught(acl_object: bytes) -> None:
    wrong_translation_is_caught(acl_object, 4, "iptables")


def test_a_wrong_ipv6_translation_is_caught(acl6_object: bytes) -> None:
    wrong_translation_is_caught(acl6_object, 6, "ip6tables")


def through_switch(
    switch: OvsInstance,
    add_host: HostFactory,
    tmp_path: Path,
    policy: str,
    expect: str,
    packets: Sequence[wire.WirePacket],
) -> tuple[list[bool], str]:
    """The controller deploys 'policy' (its log then says 'expect'); which
    of 'packets' the switch delivers between its two hosts, and its flows."""
    with controlling(switch, add_host, tmp_path, policy, expect) as (_, hosts):
        sides = {
            wire.SIDE_A: (f"/run/netns/{hosts[0].ns.name}", "eth0"),
            wire.SIDE_B: (f"/run/netns/{hosts[1].ns.name}", "eth0"),
        }
        macs = {
            wire.SIDE_A: (bytes.fromhex("020000aa0001"), bytes.fromhex("020000bb0001")),
            wire.SIDE_B: (bytes.fromhex("020000bb0002"), bytes.fromhex("020000aa0002")),
        }
        delivered = wire.send_and_listen(sides, packets, macs, settle=0.05)
        return delivered, switch.ofctl("-O", "OpenFlow13", "dump-flows", BRIDGE)


def fates_differ(
    packets: Sequence[wire.WirePacket], fates: Sequence[bool], delivered: Sequence[bool]
) -> list[str]:
    return [
        f"packet {i} ({p.what}, side {p.side}): the kernel "
        f"{'delivered' if a else 'dropped'} it, the switch "
        f"{'delivered' if b else 'dropped'} it"
        for i, (p, a, b) in enumerate(zip(packets, fates, delivered, strict=True))
        if a != b
    ]


def test_switch_runs_the_imported_policy_like_iptables(
    switch: OvsInstance,
    add_host: HostFactory,
    tmp_path: Path,
) -> None:
    """`okopy import iptables` -> the controller -> the patched switch:
    the same fates as iptables, packet by packet, through the real
    datapath (bpf(prog,drop_unless=pass) then normal)."""
    result = from_iptables(
        SAVE, PolicyOptions(source=str(ROOT / "bpf/acl.c")), ports={"fa": 1, "fb": 2}
    )
    entries = result.acl.entry_count()
    rules, _ = ipt.flatten(ipt.parse_save(SAVE, PORTS))
    packets = wire.conversations(rules, seed=13, count=1500)
    fates = iptables_fates(packets)
    expect = f"2 AddFlow, 1 LoadProgram, {entries} UpdateMap"
    delivered, flows = through_switch(switch, add_host, tmp_path, result.text, expect, packets)
    wrong = fates_differ(packets, fates, delivered)
    assert not wrong, "\n".join(wrong[:20]) + "\n" + flows
    assert 0.2 < sum(fates) / len(fates) < 0.9


def _neighbour_discovery(p: wire.WirePacket) -> bool:
    ip = p.frame
    return ip[0] >> 4 == 6 and ip[6] == 58 and 133 <= ip[40] <= 136


def test_switch_runs_both_families_like_their_kernels(
    switch: OvsInstance,
    add_host: HostFactory,
    tmp_path: Path,
) -> None:
    """An iptables-save and an ip6tables-save imported into one policy:
    IPv4 through acl, IPv6 through acl6, in the patched switch, each
    packet's fate its own kernel's; but neighbour discovery, which the
    policy lets by as it does ARP (ip6tables drops some of it here)."""
    result = from_iptables([("v4", SAVE), ("v6", SAVE6)], PolicyOptions(
        source=str(ROOT / "bpf/acl.c")), ports=PORTS)  # fmt: skip
    packets = []
    fates = []
    for family, seed, iptables in ((4, 14, "iptables"), (6, 15, "ip6tables")):
        rules, _ = ipt.flatten(ipt.parse_save(SAVES[family], PORTS))
        some = wire.conversations(rules, seed=seed, count=800, family=family)
        packets += some
        fates += iptables_fates(some, iptables, SAVES[family])
    expect = f"7 AddFlow, 2 LoadProgram, {result.entry_count()} UpdateMap"
    delivered, flows = through_switch(switch, add_host, tmp_path, result.text, expect, packets)
    nd = [i for i, p in enumerate(packets) if _neighbour_discovery(p)]
    assert nd
    assert all(delivered[i] for i in nd)
    rest = [i for i in range(len(packets)) if i not in set(nd)]
    wrong = fates_differ(
        [packets[i] for i in rest], [fates[i] for i in rest], [delivered[i] for i in rest]
    )
    assert not wrong, "\n".join(wrong[:20]) + "\n" + flows
    six = [fates[i] for i in rest if packets[i].frame[0] >> 4 == 6]
    assert 0.2 < sum(six) / len(six) < 0.9


VERDICT_SAVE = """\
*filter
:FORWARD DROP [0:0]
:SUSPECT - [0:0]
-A FORWARD -s 10.0.0.1/32 -j SUSPECT
-A FORWARD -p icmp -j ACCEPT
-A SUSPECT -j DROP
COMMIT
"""


def test_a_chain_given_a_verdict_of_its_own_reaches_openflow(
    switch: OvsInstance,
    add_host: HostFactory,
    tmp_path: Path,
) -> None:
    """`--verdict SUSPECT=20:3`: what jumps to SUSPECT leaves the ACL with
    verdict 20, and the policy's flow on bpf_verdict=20 sends it to port 3
    (h3) instead of where it was going; accepted traffic goes on."""
    opts = PolicyOptions(source=str(ROOT / "bpf/acl.c"),
                         verdicts=(CustomVerdict.parse("SUSPECT=20:3"),))  # fmt: skip
    result = from_iptables(VERDICT_SAVE, opts)
    entries = result.acl.entry_count()
    with controlling(
        switch, add_host, tmp_path, result.text, f"5 AddFlow, 1 LoadProgram, {entries} UpdateMap"
    ) as (_, hosts):
        h1, h2, h3 = hosts
        assert h3.ping(h2.address, count=3, deadline=8).received == 3  # accepted
        to_h3 = port_tx(switch, 3)
        assert h1.ping(h2.address, count=4, interval=0.05).received == 0
        switch.appctl("ovs-vswitchd", "revalidator/wait")
        counts = flow_packets(switch.ofctl("-O", "OpenFlow13", "dump-flows", BRIDGE))
        # h1's four echo requests, and nothing else from it, went to h3
        # (which the hosts' IPv6 neighbour discovery also reaches).
        assert counts["priority=100,bpf_verdict=20"] == 4, counts
        assert port_tx(switch, 3) - to_h3 >= 4


def port_tx(switch: OvsInstance, port: int) -> int:
    out = switch.ofctl("-O", "OpenFlow13", "dump-ports", BRIDGE, str(port))
    m = re.search(r"tx pkts=(\d+)", out)
    assert m, out
    return int(m.group(1))
