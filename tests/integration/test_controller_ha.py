"""Two controllers of one policy, elected through etcd: one master, one
standing by as an OpenFlow slave.  When the master is killed, the other
takes over within seconds, reconciles without loading or adding anything
again, and the filter keeps filtering throughout.  When the master is only
paused past its lease and then resumes, the switch takes nothing from it:
the generation id of the new master outranks it."""

from __future__ import annotations

import re
import signal
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from okopy.lab.controller import ControllerProcess
from okopy.lab.etcd import EtcdProcess
from okopy.ovs.instance import OvsInstance
from okopy.testing.fixtures import BRIDGE, HostFactory
from okopy.testing.policies import blocklist_policy

PORTS = (16663, 16664)
RECONCILED = r"switch 0x1 reconciled: 4 AddFlow, 1 LoadProgram, 1 UpdateMap"


def master_line(ctl: ControllerProcess) -> str | None:
    m = re.search(r".*master now \(generation (\d+)\).*", ctl.log())
    return m.group(0) if m else None


def generation(line: str | None) -> int:
    m = re.search(r"generation (\d+)", line or "")
    assert m, line
    return int(m[1])


@contextmanager
def elected_pair(
    switch: OvsInstance, tmp_path: Path
) -> Iterator[tuple[ControllerProcess, ControllerProcess]]:
    """etcd and two controllers of tmp_path/policy.yaml, started in the
    switch's namespace: (master, standby) once the master has reconciled
    the switch and the standby has taken the slave role."""
    assert switch.netns is not None
    etcd = EtcdProcess(tmp_path / "etcd", switch.netns, 23790, 23800).start()
    ctls = [
        ControllerProcess(tmp_path / "policy.yaml", tmp_path / f"c{i}.log", switch.netns,
                          port=port, extra=["--coordination", etcd.url, "--member", f"c{i}"])
        for i, port in enumerate(PORTS)
    ]  # fmt: skip
    switch.vsctl("set", "bridge", BRIDGE, "other-config:datapath-id=0000000000000001",
                 "fail_mode=secure", "protocols=OpenFlow13")  # fmt: skip
    try:
        for c in ctls:
            c.start()
        switch.vsctl("set-controller", BRIDGE, *(c.target for c in ctls))
        deadline = time.monotonic() + 60
        while not any(master_line(c) for c in ctls):
            assert time.monotonic() < deadline, "\n".join(c.log()[-2000:] for c in ctls)
            time.sleep(0.1)
        master, standby = ctls if master_line(ctls[0]) else ctls[::-1]
        master.wait_for(RECONCILED, timeout=60)
        standby.wait_for(r"switch 0x1 connected; standing by", timeout=60, new_only=False)
        standby.wait_for(r"switch 0x1: role slave", timeout=30, new_only=False)
        yield master, standby
    finally:
        for c in ctls:
            c.stop()
        etcd.stop()


def roles(switch: OvsInstance) -> dict[str, str]:
    """The switch's own view: each controller target's role."""
    out = switch.vsctl("--format=csv", "--no-headings", "--columns=target,role",
                       "list", "controller")  # fmt: skip
    return dict(
        (target.strip('"'), role.strip('"'))
        for target, role in (line.split(",") for line in out.splitlines() if line)
    )


def wait_roles(switch: OvsInstance, want: dict[str, str], timeout: float = 30) -> None:
    """Wait until the switch reports 'want' (it writes roles to its
    database every few seconds, not at once)."""
    deadline = time.monotonic() + timeout
    while (got := roles(switch)) != want:
        assert time.monotonic() < deadline, got
        time.sleep(0.2)


def test_failover_keeps_filtering(
    switch: OvsInstance, add_host: HostFactory, tmp_path: Path
) -> None:
    (tmp_path / "policy.yaml").write_text(blocklist_policy("10.0.0.2"))
    h1, h2, h3 = (add_host(f"h{i}", f"10.0.0.{i}/24", i) for i in (1, 2, 3))
    with elected_pair(switch, tmp_path) as (master, standby):
        assert h1.ping("10.0.0.3", count=3, deadline=8).received == 3
        assert h1.ping("10.0.0.2", count=3, interval=0.2).received == 0
        loaded = switch.ofctl("-O", "OpenFlow13", "dump-bpf-progs", BRIDGE)

        assert master.proc is not None
        master.proc.send_signal(signal.SIGKILL)
        killed = time.monotonic()
        line = standby.wait_for(r"master now \(generation \d+\)", timeout=30)
        standby.wait_for(r"switch 0x1 reconciled: nothing to do", timeout=30)
        # How fast is measured by `okopy bench controller`; here, that it
        # happens, once.
        print(f"failover: {time.monotonic() - killed:.2f} s ({line.strip()})")
        assert generation(line) > generation(master_line(master))
        # Same program (not loaded again), same filtering.
        after = switch.ofctl("-O", "OpenFlow13", "dump-bpf-progs", BRIDGE)
        assert re.findall(r'prog=1 name="block"[^\n]*cookie=\S+', after) == \
            re.findall(r'prog=1 name="block"[^\n]*cookie=\S+', loaded)  # fmt: skip
        assert h1.ping("10.0.0.3", count=3, deadline=8).received == 3
        assert h1.ping("10.0.0.2", count=3, interval=0.2).received == 0
    del h2, h3


def test_a_stale_master_changes_nothing(
    switch: OvsInstance, add_host: HostFactory, tmp_path: Path
) -> None:
    """The master is paused (SIGSTOP) past its lease; the standby becomes
    master with a newer generation.  Meanwhile the paused one's policy is
    edited and it is sent SIGHUP, which it handles the moment it resumes:
    whether it reloads before or after it sees that it lost the lock, the
    switch keeps the new master's state and roles."""
    (tmp_path / "policy.yaml").write_text(blocklist_policy("10.0.0.2"))
    h1, *_others = (add_host(f"h{i}", f"10.0.0.{i}/24", i) for i in (1, 2, 3))
    with elected_pair(switch, tmp_path) as (master, standby):
        assert master.proc is not None
        flows = switch.ofctl("-O", "OpenFlow13", "--no-stats", "dump-flows", BRIDGE)
        master.proc.send_signal(signal.SIGSTOP)
        try:
            line = standby.wait_for(r"master now \(generation \d+\)", timeout=30)
            standby.wait_for(r"switch 0x1 reconciled: nothing to do", timeout=30)
            assert generation(line) > generation(master_line(master))
            wait_roles(switch, {standby.target: "master", master.target: "slave"})
            # Under the paused master: h3 blocked instead of h2.
            (tmp_path / "policy.yaml").write_text(blocklist_policy("10.0.0.3"))
            master.proc.send_signal(signal.SIGHUP)
        finally:
            master.proc.send_signal(signal.SIGCONT)
        master.wait_for(r"policy reloaded from", timeout=30)
        master.wait_for(rf"no longer the master \(generation {generation(line)}\)",
                        timeout=30, new_only=False)  # fmt: skip
        master.wait_for(r"switch 0x1: role slave", timeout=30)
        # Give a refused change time to have been tried and answered.
        time.sleep(2)
        wait_roles(switch, {standby.target: "master", master.target: "slave"})
        assert switch.ofctl("-O", "OpenFlow13", "--no-stats", "dump-flows", BRIDGE) == flows
        assert h1.ping("10.0.0.3", count=3, deadline=8).received == 3
        assert h1.ping("10.0.0.2", count=3, interval=0.2).received == 0
