"""Switch settings through OVSDB: the controller finds the policy's bridge,
refuses the kernel datapath loudly, and sets the switch's settings, the
controller targets included (so the switch connects because the policy
says so)."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

from okopy.lab.controller import ControllerProcess
from okopy.ovs.instance import OvsInstance
from okopy.testing.fixtures import BRIDGE
from okopy.testing.policies import blocklist_policy

API_PORT = 18182


def test_settings_applied_and_kernel_datapath_refused(switch: OvsInstance, tmp_path: Path) -> None:
    assert switch.netns is not None
    ctl_port = 16653
    target = f"tcp:127.0.0.1:{ctl_port}"
    switch.vsctl("set", "bridge", BRIDGE, "other-config:datapath-id=0000000000000001")
    switch.vsctl("add-br", "br9", "--", "set", "bridge", "br9", "datapath_type=system")
    policy = blocklist_policy("10.0.0.2").replace(
        "    dpid: 0x1\n",
        f"    dpid: 0x1\n    ovsdb: unix:{switch.db_socket}\n"
        f"    settings: {{bpf-jit: false, fail-mode: secure, controllers: [{target}]}}\n",
    ) + (
        f"  s9:\n    dpid: 0x9\n    ovsdb: unix:{switch.db_socket}\n    bridge: br9\n"
        "    settings: {fail-mode: secure}\n"
    )
    (tmp_path / "policy.yaml").write_text(policy)
    (tmp_path / "token").write_text("t0ken\n")
    ctl = ControllerProcess(tmp_path / "policy.yaml", tmp_path / "controller.log", switch.netns,
                            api=f"127.0.0.1:{API_PORT}", token_file=tmp_path / "token",
                            port=ctl_port)  # fmt: skip
    ctl.start()
    try:
        # Nobody but the controller, through OVSDB, points the bridge at it.
        ctl.wait_for(r"switch 0x1 reconciled: 4 AddFlow, 1 LoadProgram, 1 UpdateMap", timeout=60)
        assert switch.vsctl("get-controller", BRIDGE).split() == [target]
        assert switch.vsctl("get-fail-mode", BRIDGE).strip() == "secure"
        assert switch.vsctl("get", "Open_vSwitch", ".", "other_config:bpf-jit").strip() == '"false"'
        # Said once, whenever the OVSDB pass got to it (before or after s1's
        # reconciliation).
        deadline = time.monotonic() + 30
        refusal = "switch s9: bridge br9 is on the 'system' datapath"
        while refusal not in (log := (tmp_path / "controller.log").read_text()):
            assert time.monotonic() < deadline, log[-3000:]
            time.sleep(0.2)
        assert "set datapath_type=netdev on the bridge" in log
        assert switch.vsctl("get-fail-mode", "br9").strip() == ""  # left alone

        def okopy_switches(*extra: str) -> str:
            return subprocess.run(
                switch.netns.argv([sys.executable, "-m", "okopy", "switches",  # type: ignore[union-attr]
                                   "--api", f"127.0.0.1:{API_PORT}", *extra]),
                capture_output=True, text=True, check=True, timeout=60,
            ).stdout  # fmt: skip

        by_name = {sw["name"]: sw for sw in json.loads(okopy_switches("--json"))}
        s1 = by_name["s1"]["ovsdb"]
        assert (s1["bridge"], s1["datapath_type"], s1["fail_mode"]) == (BRIDGE, "netdev", "secure")
        assert s1["controllers"] == [target]
        assert s1["other_config"] == {"bpf-jit": "false"}
        assert "error" not in s1
        assert "on the 'system' datapath" in by_name["s9"]["ovsdb"]["error"]
        text = okopy_switches()
        assert f"bridge {BRIDGE} (netdev), fail_mode secure, controllers {target}, " \
            "bpf-jit=false" in text  # fmt: skip
        assert "ERROR: bridge br9 is on the 'system' datapath" in text
    finally:
        ctl.stop()
