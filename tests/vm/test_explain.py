"""okovm_prog_explain(): an explained run is a run.

The oracle is the program's own engine (native code or the interpreter):
over the same traffic, two copies of each filter, one run normally and one
explained packet by packet, must give the same verdicts and end with the
same maps.  What an explanation reports is checked against what the
program's source says it does."""

from __future__ import annotations

import errno
import json
from pathlib import Path

import pytest

from okopy.bpf import vm
from okopy.cli import main
from okopy.traffic import packets, pcap
from okopy.traffic.pcap import Packet

STATEFUL = ["blocklist", "ratelimit", "tcp_firewall", "heavy_hitters", "syn_guard", "acl"]


def _maps(prog: vm.Program) -> dict[str, list[tuple[bytes, bytes]]]:
    return {name: sorted(m.items()) for name, m in prog.maps.items() if not m.info.global_data}


@pytest.mark.parametrize("name", STATEFUL)
def test_explained_runs_are_runs(objects: dict[str, bytes], name: str) -> None:
    traffic = packets.random_packets(17, 300, extras=True)
    plain_ns, explained_ns = vm.Namespace("plain"), vm.Namespace("explained")
    plain, explained = plain_ns.load(objects[name]), explained_ns.load(objects[name])
    for i, pkt in enumerate(traffic):
        for ns in (plain_ns, explained_ns):
            ns.set_fixed_clock(1_000_000_000 + i * 1_000_000)
        want = plain.run(pkt, 1 + i % 3)
        got = explained.explain(pkt, 1 + i % 3)
        assert got.verdict == want, f"packet {i}"
        assert got.path, f"packet {i}"
        assert all(0 <= insn < explained.info.n_insns for insn in got.path)
    assert _maps(explained) == _maps(plain)
    # Explained runs are not counted in the program's statistics.
    assert explained.stats.runs == 0
    assert plain.stats.runs == len(traffic)


def test_map_accesses_and_changes(objects: dict[str, bytes]) -> None:
    """blocklist.c looks the destination up and, if blocked, counts the
    packet in the entry it found."""
    prog = vm.Namespace("e").load(objects["blocklist"])
    blocked = prog.map("blocked_v4")
    key = blocked.encode_key("10.0.0.9")
    blocked.update(key, blocked.encode_value({"packets": 4, "bytes": 400}))

    pkt = packets.udp4("10.0.0.1", "10.0.0.9", 1, 2)
    got = prog.explain(pkt)
    assert got.verdict == 1  # XDP_DROP
    assert [(a.op, a.map, a.key) for a in got.accesses] == [("lookup", "blocked_v4", key)]
    (change,) = got.changes
    assert (change.map, change.key) == ("blocked_v4", key)
    assert change.before is not None
    assert change.after is not None
    assert blocked.decode_value(change.before) == {"packets": 4, "bytes": 400}
    assert blocked.decode_value(change.after) == {"packets": 5, "bytes": 400 + len(pkt)}
    # The lookup's call instruction is on the path, where the source calls it.
    call = got.accesses[0].insn
    assert call in got.path
    src = prog.source(call)
    assert src is not None
    assert src.file.endswith("blocklist.c")
    assert "bpf_map_lookup_elem" in src.text

    miss = prog.explain(packets.udp4("10.0.0.1", "10.0.0.8", 1, 2))
    assert miss.verdict == 2  # XDP_PASS
    (unchanged,) = miss.changes
    assert unchanged.before is None
    assert unchanged.after is None


def test_sandboxed_programs_are_not_explained(objects: dict[str, bytes]) -> None:
    prog = vm.Namespace("s").load(objects["blocklist"], sandbox="force")
    with pytest.raises(vm.VmError, match="sandbox mode") as e:
        prog.explain(packets.udp4("10.0.0.1", "10.0.0.2", 1, 2))
    assert e.value.code == errno.EINVAL


def test_cli_explains_one_packet(
    objects: dict[str, bytes], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "block.o").write_bytes(objects["blocklist"])
    trace = [
        Packet(1_000_000_000 + i, packets.udp4("10.0.0.1", dst, 5, 53), 60)
        for i, dst in enumerate(["10.0.0.2", "10.0.0.9", "10.0.0.9"])
    ]
    pcap.write(tmp_path / "t.pcap", trace)
    argv = ["run", str(tmp_path / "block.o"), "--pcap", str(tmp_path / "t.pcap"),
            "--seed", 'blocked_v4="10.0.0.9"={}']  # fmt: skip

    assert main([*argv, "--explain", "3"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("packet 3 of ")
    assert "10.0.0.1:5 > 10.0.0.9:53 UDP" in out
    assert 'lookup blocked_v4["10.0.0.9"]' in out
    # The second packet counted one drop before the third was explained.
    assert (
        'blocked_v4["10.0.0.9"]: {"packets": 1, "bytes": 42} -> {"packets": 2, "bytes": 84}' in out
    )
    assert out.rstrip().endswith("verdict: drop (1)")

    assert main([*argv, "--explain", "1", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["verdict"] == {"value": 2, "name": "pass"}
    assert doc["map_changes"] == [
        {"map": "blocked_v4", "key": "10.0.0.2", "before": None, "after": None}
    ]
    assert any("bpf_map_lookup_elem" in s["source"] for s in doc["path"])
    assert sum(len(s["insns"]) for s in doc["path"]) == doc["instructions_executed"]


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--explain", "4"], "--explain 4: the capture has packets 1 to 3"),
        (["--explain", "0"], "--explain 0: the capture has packets 1 to 3"),
        (["--explain", "1", "--trace"], "--explain and --trace: give one of them"),
    ],
)
def test_cli_explain_refusals(
    objects: dict[str, bytes],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    extra: list[str],
    message: str,
) -> None:
    (tmp_path / "block.o").write_bytes(objects["blocklist"])
    pcap.write(tmp_path / "t.pcap", [packets.udp4("10.0.0.1", "10.0.0.2", 5, 53)] * 3)
    rc = main(["run", str(tmp_path / "block.o"), "--pcap", str(tmp_path / "t.pcap"), *extra])
    assert rc == 1
    assert message in capsys.readouterr().err
