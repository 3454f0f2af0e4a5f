"""A program loaded with ovs-ofctl, not from the policy, is served by the
controller's API like the policy's: its maps typed by the BTF that the
switch gives.  The API listens on a socket bound here, on the host, and
handed to the controller in the switch's namespace (as `okopy lab` does)."""

from __future__ import annotations

import json
import os
import random
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from okopy.bpf import elf
from okopy.bpf.btf import Btf, map_definitions
from okopy.bpf.toolchain import compile_program
from okopy.lab.controller import ControllerProcess
from okopy.ovs.instance import OvsInstance
from okopy.testing.fixtures import BRIDGE
from okopy.testing.policies import ROOT, blocklist_policy

TINY_MAPS = ROOT / "tests/golden/tiny_maps.o"  # maps 'config' (array) and 'sources' (hash)
OFCTL_PROG = "8"


@pytest.fixture
def controller(switch: OvsInstance, tmp_path: Path) -> Iterator[tuple[ControllerProcess, str]]:
    (tmp_path / "policy.yaml").write_text(blocklist_policy("10.0.0.2"))
    (tmp_path / "token").write_text("t0ken\n")
    assert switch.netns is not None
    listener = socket.create_server(("127.0.0.1", 0))
    with listener:
        ctl = ControllerProcess(tmp_path / "policy.yaml", tmp_path / "controller.log",
                                switch.netns, token_file=tmp_path / "token",
                                api_socket=listener).start()  # fmt: skip
        api = f"127.0.0.1:{listener.getsockname()[1]}"
    switch.vsctl("set", "bridge", BRIDGE, "other-config:datapath-id=0000000000000001",
                 "fail_mode=secure", "protocols=OpenFlow13")  # fmt: skip
    try:
        ctl.wait_for(rf"API on http://{api}/api/v1", timeout=60)
        switch.vsctl("set-controller", BRIDGE, ctl.target)
        switch.vsctl("set", "controller", BRIDGE, "max_backoff=1000")
        ctl.wait_for(r"switch 0x1 reconciled: 4 AddFlow, 1 LoadProgram, 1 UpdateMap")
        yield ctl, api
    finally:
        ctl.stop()


def okopy(api: str, ctl: ControllerProcess, *argv: str, check: bool = True) -> Any:
    """`okopy ARGV` on the host, the API and token from the environment."""
    assert ctl.token_file is not None
    env = dict(os.environ, OKOPY_API=api, OKOPY_API_TOKEN_FILE=str(ctl.token_file))
    proc = subprocess.run([sys.executable, "-m", "okopy", *argv], env=env,
                          capture_output=True, text=True, check=False)  # fmt: skip
    if not check:
        return proc
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def test_maps_of_a_program_loaded_with_ovs_ofctl(
    switch: OvsInstance, controller: tuple[ControllerProcess, str]
) -> None:
    ctl, api = controller
    ofctl = ("-O", "OpenFlow13")
    switch.ofctl(*ofctl, "load-bpf-prog", BRIDGE, OFCTL_PROG, str(TINY_MAPS), "name=per_source")
    switch.ofctl(*ofctl, "update-bpf-map", BRIDGE, OFCTL_PROG, "sources", "10.0.0.1",
                 "{packets=3,bytes=180}")  # fmt: skip
    progs = okopy(api, ctl, "prog", "list", "--dpid", "0x1", "--json")
    assert {(p["id"], p["name"]) for p in progs} == {(1, "block"), (8, "per_source")}

    def dump(name: str) -> Any:
        return okopy(api, ctl, "map", "dump", "--dpid", "0x1", OFCTL_PROG, name)

    # Read, written and deleted as typed JSON, as a policy program's maps.
    assert dump("sources") == [{"key": "10.0.0.1", "value": {"packets": 3, "bytes": 180}}]
    assert dump("config") == [{"key": 0, "value": {"rate": 0, "burst": 0}}]
    okopy(api, ctl, "map", "set", "--dpid", "0x1", OFCTL_PROG, "sources", '"10.0.0.9"',
          '{"packets": 1, "bytes": 2}')  # fmt: skip
    shown = switch.ofctl(*ofctl, "dump-bpf-map", BRIDGE, OFCTL_PROG, "sources")
    assert "key=10.0.0.9 value={packets=1,bytes=2}" in shown, shown
    got = okopy(api, ctl, "map", "get", "--dpid", "0x1", OFCTL_PROG, "sources", '"10.0.0.1"')
    assert got == {"key": "10.0.0.1", "value": {"packets": 3, "bytes": 180}}
    okopy(api, ctl, "map", "delete", "--dpid", "0x1", OFCTL_PROG, "sources", '"10.0.0.9"')
    assert [e["key"] for e in dump("sources")] == ["10.0.0.1"]

    # Replaced and unloaded behind the controller's back: it asks again.
    switch.ofctl(*ofctl, "load-bpf-prog", BRIDGE, OFCTL_PROG, str(TINY_MAPS), "replace")
    assert dump("config") == [{"key": 0, "value": {"rate": 0, "burst": 0}}]
    switch.ofctl(*ofctl, "unload-bpf-prog", BRIDGE, OFCTL_PROG)
    gone = okopy(api, ctl, "map", "dump", "--dpid", "0x1", OFCTL_PROG, "sources", check=False)
    assert gone.returncode == 1
    assert "404 switch 0x1 has no program 8" in gone.stderr
    assert "entries are shown in hex" not in ctl.log()


def test_maps_on_a_switch_the_policy_does_not_have(
    switch: OvsInstance, controller: tuple[ControllerProcess, str]
) -> None:
    ctl, api = controller
    switch.add_bridge("br1")
    switch.vsctl("set", "bridge", "br1", "other-config:datapath-id=0000000000000042",
                 "fail_mode=secure", "protocols=OpenFlow13")  # fmt: skip
    switch.vsctl("set-controller", "br1", ctl.target)
    switch.vsctl("set", "controller", "br1", "max_backoff=1000")
    ctl.wait_for(r"switch 0x42 connected but is not in the policy: left alone")
    switch.ofctl("-O", "OpenFlow13", "load-bpf-prog", "br1", OFCTL_PROG, str(TINY_MAPS))
    switch.ofctl("-O", "OpenFlow13", "update-bpf-map", "br1", OFCTL_PROG, "sources",
                 "10.0.0.7", "{packets=1,bytes=60}")  # fmt: skip
    assert okopy(api, ctl, "map", "dump", "--dpid", "0x42", OFCTL_PROG, "sources") == [
        {"key": "10.0.0.7", "value": {"packets": 1, "bytes": 60}}
    ]


def _ofctl_entries(shown: str) -> list[tuple[str, str]]:
    """(key text, value text) of each entry that `ovs-ofctl dump-bpf-map`
    printed (lines " key=K value=V"; K may hold " value=" in a string, so
    the caller checks the split by reading both sides back)."""
    out = []
    for line in shown.splitlines():
        if line.startswith(" key="):
            key, _, value = line[len(" key=") :].partition(" value=")
            out.append((key, value))
    return out


def test_ovs_ofctl_and_okopy_show_every_map_alike(
    switch: OvsInstance, controller: tuple[ControllerProcess, str], tmp_path: Path
) -> None:
    """One codec (libokovm's) behind both tools: for every map of every
    object in bpf/, filled with patterned bytes, `ovs-ofctl dump-bpf-map`
    prints what the codec writes in Open vSwitch's syntax and `okopy map
    dump` (the controller, typing through the BTF the switch gives) what it
    writes in JSON, and the two read back to the same bytes."""
    ctl, api = controller
    rng = random.Random(7)
    n_entries = 0
    for n, src in enumerate(sorted((ROOT / "bpf").glob("*.c"))):
        obj = compile_program(src, tmp_path / f"{src.stem}.o")
        secs = elf.sections(obj.read_bytes())
        btf = Btf.parse(secs[".BTF"].data)
        prog = str(20 + n)
        switch.ofctl("-O", "OpenFlow13", "load-bpf-prog", BRIDGE, prog, str(obj))
        for d in map_definitions(btf):
            written: dict[bytes, bytes] = {}
            for i in range(min(3, d.max_entries)):
                if d.type_name == "array":
                    key = i.to_bytes(d.key_size, "little")
                elif d.type_name == "lpm_trie":
                    # Distinct prefixes, bits past the length zero: two keys
                    # of one prefix are one entry of the trie.
                    bits = (d.key_size - 4) * 8
                    plen = rng.randrange(bits + 1)
                    while True:
                        data = int.from_bytes(rng.randbytes(d.key_size - 4), "big")
                        data &= ((1 << bits) - 1) ^ ((1 << (bits - plen)) - 1)
                        key = plen.to_bytes(4, "little") + data.to_bytes(d.key_size - 4, "big")
                        if key not in written:
                            break
                        plen = rng.randrange(1, bits + 1)
                else:
                    key = rng.randbytes(d.key_size)
                written[key] = rng.randbytes(d.value_size)
                switch.ofctl("-O", "OpenFlow13", "--hex", "update-bpf-map", BRIDGE, prog, d.name,
                             key.hex(), written[key].hex())  # fmt: skip
            shown = _ofctl_entries(
                switch.ofctl("-O", "OpenFlow13", "dump-bpf-map", BRIDGE, prog, d.name)
            )
            typed = okopy(api, ctl, "map", "dump", "--dpid", "0x1", prog, d.name)
            assert len(shown) == len(typed) >= len(written), (src.name, d.name)
            by_key = {json.dumps(e["key"]): e["value"] for e in typed}
            for key_text, value_text in shown:
                # The same entries: ovs-ofctl's text, read back and shown as
                # JSON, is what okopy shows (JSON is the lossy side: text
                # that is not UTF-8 is repaired, so it is not read back).
                key = btf.parse_text(d.key_type_id, key_text)
                value = btf.parse_text(d.value_type_id, value_text)
                okopy_value = by_key[json.dumps(btf.decode(d.key_type_id, key))]
                assert btf.decode(d.value_type_id, value) == okopy_value, (src.name, d.name)
                if key in written:  # ...and the text each writes for the bytes.
                    assert key_text == btf.format(d.key_type_id, key)
                    assert value_text == btf.format(d.value_type_id, written[key])
                    assert okopy_value == btf.decode(d.value_type_id, written[key])
                    n_entries += 1
        switch.ofctl("-O", "OpenFlow13", "unload-bpf-prog", BRIDGE, prog)
    assert n_entries >= 40
