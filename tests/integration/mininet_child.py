"""Child process of test_mininet.py: a Mininet network (one okopy switch s1,
hosts h1-h3) built with Mininet's Python API, exercised, then stopped.

test_mininet.py runs it inside a network namespace and a PID namespace of
its own (so whatever it starts dies with it); it writes what it saw to a
JSON file after every step, for the test to judge:

    mininet_child.py --out FILE --scenario ofctl --prog blocklist.o
    mininet_child.py --out FILE --scenario controller --policy policy.yaml
"""

from __future__ import annotations

import argparse
import json
import os
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

# First: okopy.lab.mininet finds Debian's Mininet for this Python (okopy's
# virtualenv does not see it), and confines it (see main()).
import okopy.lab.mininet as okmn

# isort: split
import mininet.clean
import mininet.net
from mininet.log import setLogLevel
from mininet.net import Mininet
from mininet.topo import SingleSwitchTopo

from okopy.process import pid_alive

BLOCKED_HEX = "0a000003"  # 10.0.0.3, h3, in network order
FLOWS = (
    "table=0,priority=100,ip,actions=bpf(prog=1,table=1)",
    "table=0,priority=0,actions=NORMAL",
    "table=1,priority=100,bpf_verdict=pass,actions=NORMAL",
    "table=1,priority=0,actions=drop",
)


def other_processes() -> dict[int, str]:
    """Live processes of this PID namespace other than this one (we are pid
    1 here, so the daemons' zombies are ours: they count as gone)."""
    found = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and int(entry.name) != os.getpid() and pid_alive(int(entry.name)):
            try:
                cmd = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            except OSError:
                continue
            found[int(entry.name)] = cmd.strip()
    return found


def ofctl_scenario(net: Any, res: dict[str, Any], save: Callable[[], None], prog: str) -> None:
    """Load bpf/blocklist.c's object with ovs-ofctl and block h3."""
    s1 = net.get("s1")
    h1, h2, h3 = (net.get(h) for h in ("h1", "h2", "h3"))
    res["pingall"] = net.pingAll(timeout="2")
    save()
    s1.ofctl("load-bpf-prog", "1", prog, "name=block")
    s1.ofctl("del-flows")
    for flow in FLOWS:
        s1.ofctl("add-flow", flow)
    s1.ofctl("update-bpf-map", "1", "blocked_v4", BLOCKED_HEX, "00" * 16)
    res["flows"] = s1.ofctl("dump-flows")
    res["h1_h2"] = net.ping([h1, h2], timeout="1")
    res["h1_h3"] = net.ping([h1, h3], timeout="1")
    res["h2_h3"] = net.ping([h2, h3], timeout="1")
    # --hex: test_mininet.py reads the counters from the value's bytes.
    res["map"] = s1.ofctl("dump-bpf-map", "1", "blocked_v4", "--hex")
    res["progs"] = s1.ofctl("dump-bpf-progs")
    save()
    s1.ofctl("del-bpf-map", "1", "blocked_v4", BLOCKED_HEX)
    res["h1_h3_unblocked"] = net.ping([h1, h3], timeout="1")


def controller_scenario(net: Any, res: dict[str, Any], save: Callable[[], None]) -> None:
    """The policy (blocklist with h3's address) comes from okopy's controller."""
    s1, c0 = net.get("s1"), net.get("c0")
    h1, h2, h3 = (net.get(h) for h in ("h1", "h2", "h3"))
    res["reconciled"] = c0.wait_for(r"switch 0x1 reconciled", timeout=90)
    res["fail_mode"] = s1.vsctl("get", "bridge", "s1", "fail_mode").strip()
    save()
    res["h1_h2"] = net.ping([h1, h2], timeout="1")
    res["h1_h3"] = net.ping([h1, h3], timeout="1")
    res["progs"] = s1.ofctl("dump-bpf-progs")
    res["flows"] = s1.ofctl("dump-flows")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True, type=Path)
    ap.add_argument("--scenario", choices=("ofctl", "controller"), required=True)
    ap.add_argument("--prog")
    ap.add_argument("--policy")
    args = ap.parse_args()

    # Mininet's cleanup (mininet.clean.cleanup: killall / pkill -9 -f by
    # name, deleting every OVS bridge, every "-eth" link and /tmp/*.log) and
    # fixLimits (machine-wide sysctls, run by the first Mininet()) must never
    # run on a shared machine, namespaces or not.  okopy.lab.mininet replaced
    # them when it was imported; do it again here, explicitly, and check.
    okmn.confine_mininet()
    assert mininet.net.fixLimits.__module__ == "okopy.lab.mininet"
    assert mininet.clean.cleanup.__module__ == "okopy.lab.mininet"
    setLogLevel("info")

    res: dict[str, Any] = {"scenario": args.scenario, "pid": os.getpid()}

    def save() -> None:
        args.out.write_text(json.dumps(res, indent=1))

    controller: Any = None
    if args.scenario == "controller":
        controller = partial(okmn.OkopyController, policy=args.policy)
    net = Mininet(
        topo=SingleSwitchTopo(3),
        switch=okmn.OkopySwitch,
        controller=controller,
        autoSetMacs=True,
    )
    ovs_pids: dict[str, int] = {}
    try:
        net.start()
        s1 = net.get("s1")
        ovs_pids = dict(s1.ovs.pids)
        res["ovs_pids"] = ovs_pids
        res["rundir"] = str(s1.ovs.rundir)
        res["datapath_type"] = s1.vsctl("get", "bridge", "s1", "datapath_type").strip()
        res["hosts"] = {h.name: h.IP() for h in net.hosts}
        save()
        if args.scenario == "ofctl":
            ofctl_scenario(net, res, save, args.prog)
        else:
            controller_scenario(net, res, save)
        save()
    finally:
        net.stop()
    res["ovs_alive_after_stop"] = [p for p in ovs_pids.values() if pid_alive(p)]
    if os.getpid() == 1:
        res["leftover"] = other_processes()
    res["done"] = True
    save()


if __name__ == "__main__":
    main()
