"""`okopy lab env` and `okopy lab ofctl`: exports, ovs-ofctl's command line,
and which labs count as running (from state files, no daemons)."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from okopy.cli import main, parser
from okopy.lab import shell, testbed
from okopy.ovs.instance import OvsInstance, OvsTools
from okopy.paths import Layout


def test_bindirs_come_first_once() -> None:
    env = shell.shell_env({"OVS_RUNDIR": "/r"}, ["/ovs/utilities", "/ovs/ovsdb"],
                          "/usr/bin:/ovs/utilities::/bin")  # fmt: skip
    assert env == {"OVS_RUNDIR": "/r", "PATH": "/ovs/utilities:/ovs/ovsdb:/usr/bin:/bin"}
    again = shell.shell_env({}, ["/ovs/utilities", "/ovs/ovsdb"], env["PATH"])
    assert again["PATH"] == env["PATH"]


def test_exports_survive_the_shell() -> None:
    env = {"OVS_RUNDIR": "/tmp/a b/ovs", "ODD": "it's $HOME"}
    text = shell.exports(env)
    assert text.splitlines()[0] == "export OVS_RUNDIR='/tmp/a b/ovs'"
    out = subprocess.run(["sh", "-c", text + 'printf "%s|%s" "$OVS_RUNDIR" "$ODD"'],
                         capture_output=True, text=True, check=True).stdout  # fmt: skip
    assert out == "/tmp/a b/ovs|it's $HOME"


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["dump-bpf-progs", "s1"], ["-O", "OpenFlow13", "dump-bpf-progs", "s1"]),
        (["-O", "OpenFlow15", "dump-flows", "s1"], ["-O", "OpenFlow15", "dump-flows", "s1"]),
        (["-OOpenFlow10", "show", "s1"], ["-OOpenFlow10", "show", "s1"]),
        (["dump-flows", "--protocols=OpenFlow14"], ["dump-flows", "--protocols=OpenFlow14"]),
        (["--protocols", "OpenFlow14", "show", "s1"], ["--protocols", "OpenFlow14", "show", "s1"]),
        # After "--", "-O" is an argument, not an option.
        (["--", "show", "-O"], ["-O", "OpenFlow13", "--", "show", "-O"]),
    ],
)
def test_ofctl_defaults_to_openflow13(args: list[str], expected: list[str]) -> None:
    assert shell.ofctl_argv("/b/ovs-ofctl", args) == ["/b/ovs-ofctl", *expected]


def test_instance_variables_are_absolute(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    inst = OvsInstance(OvsTools(Path("build/ovs"), Path("build/ovs-src")), Path("build/lab/x/ovs"))
    v = inst.variables
    assert v["OVS_RUNDIR"] == str(tmp_path / "build/lab/x/ovs")
    assert v["OVS_PKGDATADIR"] == str(tmp_path / "build/ovs-src")
    assert all(os.path.isabs(p) for p in v.values())


def _state(layout: Layout, name: str, pid: int) -> None:
    d = testbed.state_dir(layout, name)
    d.mkdir(parents=True)
    state = testbed.LabState(name, str(d / "ovs"), pids={"ovs-vswitchd": pid})
    (d / "state.json").write_text(json.dumps(state.__dict__))


def _dead_pid() -> int:
    proc = subprocess.Popen(["true"])
    proc.wait()
    return proc.pid


def test_running_labs_and_errors(tmp_path: Path) -> None:
    layout = Layout(tmp_path, tmp_path / "build")
    assert testbed.running_labs(layout) == []
    with pytest.raises(testbed.LabError, match=r"lab 'guide' is not running; no lab is"):
        testbed.Lab(layout, "guide").require_running()
    _state(layout, "alive", os.getpid())
    _state(layout, "crashed", _dead_pid())
    assert testbed.running_labs(layout) == ["alive"]
    with pytest.raises(testbed.LabError, match=r"lab 'guide' is not running; running: alive$"):
        testbed.Lab(layout, "guide").require_running()
    with pytest.raises(testbed.LabError, match=r"ovs-vswitchd is gone.*lab down --name crashed"):
        testbed.Lab(layout, "crashed").require_running()
    with pytest.raises(testbed.LabError, match=r"lab '\.\./alive' is not running"):
        testbed.Lab(layout, "../alive").require_running()
    testbed.Lab(layout, "alive").require_running()


def test_cli_passes_ofctl_options_through() -> None:
    args = parser().parse_args(["lab", "ofctl", "guide", "-O", "OpenFlow15", "dump-flows", "s1"])
    assert (args.lab, args.argv) == ("guide", ["-O", "OpenFlow15", "dump-flows", "s1"])


def test_cli_errors(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                    capsys: pytest.CaptureFixture[str]) -> None:  # fmt: skip
    monkeypatch.setenv("OKOPY_BUILD_DIR", str(tmp_path))
    assert main(["lab", "env", "guide"]) == 1
    assert capsys.readouterr().err == (
        "okopy: error: lab 'guide' is not running; no lab is (okopy lab up FILE)\n"
    )
    assert main(["lab", "ofctl", "guide", "dump-bpf-progs", "s1"]) == 1
    assert "lab 'guide' is not running" in capsys.readouterr().err
    assert main(["lab", "ofctl", "guide"]) == 1
    assert "give an ovs-ofctl command" in capsys.readouterr().err
