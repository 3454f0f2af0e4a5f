"""The controller deploys filters to the patched switch; filtering survives
the controller, and the switch's restart is repaired without a hand."""

from __future__ import annotations

import json
import platform
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from okopy.lab.controller import ControllerProcess
from okopy.lab.hosts import Host
from okopy.ovs.instance import OvsInstance
from okopy.testing.fixtures import BRIDGE, HostFactory
from okopy.testing.policies import blocklist_policy

API_PORT = 18181

POLICY = blocklist_policy("10.0.0.2")


@contextmanager
def controlling(
    switch: OvsInstance, add_host: HostFactory, tmp_path: Path, policy: str, reconciled: str,
    **options: Any,
) -> Iterator[tuple[ControllerProcess, list[Host]]]:  # fmt: skip
    """Hosts h1-h3 on ports 1-3 and a controller with 'policy', connected,
    once its log says 'reconciled' for the switch."""
    (tmp_path / "policy.yaml").write_text(policy)
    assert switch.netns is not None
    ctl = ControllerProcess(tmp_path / "policy.yaml", tmp_path / "controller.log", switch.netns,
                            **options)  # fmt: skip
    switch.vsctl("set", "bridge", BRIDGE, "other-config:datapath-id=0000000000000001",
                 "fail_mode=secure", "protocols=OpenFlow13")  # fmt: skip
    hosts = [add_host(f"h{i}", f"10.0.0.{i}/24", i) for i in (1, 2, 3)]
    ctl.start()
    try:
        ctl.wait_for(r"policy: switch s1", timeout=60)
        switch.vsctl("set-controller", BRIDGE, ctl.target)
        switch.vsctl("set", "controller", BRIDGE, "max_backoff=1000")
        ctl.wait_for(rf"switch 0x1 reconciled: {reconciled}")
        yield ctl, hosts
    finally:
        ctl.stop()


@pytest.fixture
def deployed(
    switch: OvsInstance, add_host: HostFactory, tmp_path: Path
) -> Iterator[tuple[OvsInstance, ControllerProcess, list[Host]]]:
    (tmp_path / "token").write_text("t0ken\n")
    with controlling(switch, add_host, tmp_path, POLICY, "4 AddFlow, 1 LoadProgram, 1 UpdateMap",
                     api=f"127.0.0.1:{API_PORT}", token_file=tmp_path / "token") as (ctl, hosts):  # fmt: skip
        yield switch, ctl, hosts


def api(switch: OvsInstance, *argv: str) -> Any:
    assert switch.netns is not None
    out = subprocess.run(
        switch.netns.argv([sys.executable, "-m", "okopy", *argv[:2],
                           "--api", f"http://127.0.0.1:{API_PORT}", *argv[2:]]),
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    return json.loads(out)


def metrics(switch: OvsInstance) -> str:
    """The controller's /metrics, fetched from inside the switch's namespace."""
    assert switch.netns is not None
    url = f"http://127.0.0.1:{API_PORT}/metrics"
    code = (
        f"import urllib.request; print(urllib.request.urlopen({url!r}, timeout=10).read().decode())"
    )
    return subprocess.run(
        switch.netns.argv([sys.executable, "-c", code]), capture_output=True, text=True,
        check=True,
    ).stdout  # fmt: skip


def wait_for_metric(switch: OvsInstance, line: str, timeout: float = 30.0) -> None:
    """Wait until the controller's statistics poll (every 5 s) reports 'line'."""
    deadline = time.monotonic() + timeout
    text = ""
    while time.monotonic() < deadline:
        text = metrics(switch)
        if line in text.splitlines():
            return
        time.sleep(0.5)
    raise AssertionError(f"no {line!r} in /metrics after {timeout} s:\n{text}")


def test_filters_act_and_survive(
    deployed: tuple[OvsInstance, ControllerProcess, list[Host]],
) -> None:
    switch, ctl, (h1, _, _) = deployed

    def blocked_then_open() -> None:
        assert h1.ping("10.0.0.3", count=3, deadline=8).received == 3
        assert h1.ping("10.0.0.2", count=3, interval=0.2).received == 0

    blocked_then_open()
    (entry,) = api(switch, "map", "dump", "--dpid", "1", "--api-token-file", str(ctl.token_file),
                   "1", "blocked_v4")  # fmt: skip
    assert entry["key"] == "10.0.0.2"
    assert entry["value"]["packets"] >= 3
    (prog,) = api(switch, "prog", "list", "--dpid", "1", "--json")
    # Admitted by the kernel, so the switch runs it as native code where
    # libokovm has a JIT.
    assert prog["mode"] == ("jit" if platform.machine() == "x86_64" else "interpreter")
    assert prog["verdicts"]["drop"] >= 3
    assert prog["verdicts"]["pass"] >= 3

    # The metrics count the map's entries as the switch reports them: the
    # policy's seed, then one more added through the API.
    wait_for_metric(switch, 'okopy_map_entries{dpid="0x1",map="blocked_v4",prog="1"} 1.0')
    api(switch, "map", "set", "--dpid", "1", "--api-token-file", str(ctl.token_file), "1",
        "blocked_v4", '"10.0.0.9"', "{}")  # fmt: skip
    wait_for_metric(switch, 'okopy_map_entries{dpid="0x1",map="blocked_v4",prog="1"} 2.0')
    wait_for_metric(switch, 'okopy_map_entries{dpid="0x1",map="blocked_v6",prog="1"} 0.0')
    maps = {mp["name"]: mp for mp in api(switch, "prog", "maps", "--dpid", "1", "1", "--json")}
    assert maps["blocked_v4"]["entries"] == 2, maps
    assert maps["blocked_v4"]["type"] == "hash", maps

    # Controller gone: the switch keeps filtering.
    ctl.stop()
    blocked_then_open()

    # Controller back: nothing is loaded or added again.
    ctl.start()
    ctl.wait_for(r"switch 0x1 reconciled: nothing to do", timeout=60)
    assert len(api(switch, "prog", "list", "--dpid", "1", "--json")) == 1

    # The switch restarts empty: the controller restores program, seed, flows.
    switch._stop_daemon("ovs-vswitchd")
    switch._start_daemon("ovs-vswitchd", [str(switch.tools.vswitchd), f"unix:{switch.db_socket}"])
    ctl.wait_for(r"switch 0x1 reconciled: 4 AddFlow, 1 LoadProgram, 1 UpdateMap", timeout=60)
    blocked_then_open()


def test_drop_unless_filters_in_one_pass(
    switch: OvsInstance, add_host: HostFactory, tmp_path: Path
) -> None:
    """bpf(prog=1,drop_unless=pass),NORMAL: the controller installs it, the
    switch drops what the program does not pass, and a restarted controller
    reads the action back as the one it wants."""
    policy = blocklist_policy("10.0.0.2", one_pass=True)
    with controlling(switch, add_host, tmp_path, policy,
                     "2 AddFlow, 1 LoadProgram, 1 UpdateMap") as (ctl, (h1, _, _)):  # fmt: skip
        dump = switch.ofctl("-O", "OpenFlow13", "dump-flows", BRIDGE)
        assert "actions=bpf(prog=1,drop_unless=pass),NORMAL" in dump, dump
        assert h1.ping("10.0.0.3", count=3, deadline=8).received == 3
        assert h1.ping("10.0.0.2", count=3, interval=0.2).received == 0
        dropped = switch.appctl("ovs-vswitchd", "coverage/read-counter",
                                "datapath_drop_bpf_verdict")  # fmt: skip
        assert int(dropped) >= 3
        ctl.stop()
        ctl.start()
        ctl.wait_for(r"switch 0x1 reconciled: nothing to do", timeout=60)


def okopy_cli(switch: OvsInstance, *argv: str) -> subprocess.CompletedProcess[str]:
    assert switch.netns is not None
    return subprocess.run(
        switch.netns.argv([sys.executable, "-m", "okopy", *argv,
                           "--api", f"127.0.0.1:{API_PORT}"]),
        capture_output=True, text=True, check=False, timeout=60,
    )  # fmt: skip


def test_policy_diff_then_reload(
    deployed: tuple[OvsInstance, ControllerProcess, list[Host]], tmp_path: Path
) -> None:
    """`okopy policy diff` shows what an edited policy would change, read
    from the switch, and changes nothing; `okopy policy reload` applies it;
    a policy that fails its checks is refused by both, the running one kept."""
    switch, ctl, _ = deployed
    token = ["--api-token-file", str(ctl.token_file)]
    diff = okopy_cli(switch, "policy", "diff", *token, "--exit-code")
    assert (diff.returncode, diff.stdout) == (0, "switch s1 (dpid 0x1): nothing to do\n"), diff

    flows_before = switch.ofctl("-O", "OpenFlow13", "--no-stats", "dump-flows", BRIDGE)
    edited = (
        POLICY.replace("[{key: 10.0.0.2, value: {}}]",
                       "[{key: 10.0.0.3, value: {}}, {key: 10.0.0.2, value: {}}]")
        .replace("actions: [drop]}", "actions: [controller]}")
    )  # fmt: skip
    (tmp_path / "policy.yaml").write_text(edited)
    diff = okopy_cli(switch, "policy", "diff", *token, "--exit-code")
    assert diff.returncode == 1, diff
    assert diff.stdout.splitlines() == [
        "switch s1 (dpid 0x1): 1 change flow, 1 write map entry",
        '  write map entry: program 1 map blocked_v4 key "10.0.0.3" value '
        '{"packets": 0, "bytes": 0}',
        "  change flow: table=1,priority=0 actions=CONTROLLER",
    ], diff.stdout
    assert switch.ofctl("-O", "OpenFlow13", "--no-stats", "dump-flows", BRIDGE) == flows_before

    (tmp_path / "policy.yaml").write_text(edited.replace("bpf_verdict: pass", "bpf_verdict: passs"))
    for action in ("diff", "reload"):
        bad = okopy_cli(switch, "policy", action, *token)
        assert bad.returncode == 1, bad
        assert "'passs' is neither a verdict name" in bad.stderr, bad.stderr

    (tmp_path / "policy.yaml").write_text(edited)
    done = okopy_cli(switch, "policy", "reload", *token)
    assert (done.returncode, done.stdout) == (0, "reloaded " + str(tmp_path / "policy.yaml")
                                              + ": switches s1\n"), done  # fmt: skip
    ctl.wait_for(r"switch 0x1 reconciled: 1 AddFlow, 1 UpdateMap", timeout=60)
    diff = okopy_cli(switch, "policy", "diff", *token, "--exit-code")
    assert (diff.returncode, diff.stdout) == (0, "switch s1 (dpid 0x1): nothing to do\n"), diff
