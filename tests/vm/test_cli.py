"""okopy verify / run, as a user calls them."""

from __future__ import annotations

import json
import platform
from pathlib import Path

import pytest

from okopy.bpf.toolchain import compile_program
from okopy.cli import main
from okopy.traffic import packets, pcap
from okopy.traffic.pcap import Packet


@pytest.fixture
def files(objects: dict[str, bytes], tmp_path: Path) -> dict[str, Path]:
    out = {}
    for name in ("ratelimit", "blocklist"):
        out[name] = tmp_path / f"{name}.o"
        out[name].write_bytes(objects[name])
    trace = [
        Packet(
            1_000_000_000 + i * 1_000_000,
            packets.udp4("10.0.0.1", "10.1.0.2", 5, 53),
            60,
        )
        for i in range(100)
    ]
    out["pcap"] = tmp_path / "flood.pcap"
    pcap.write(out["pcap"], trace)
    return out


def flood_run_argv(files: dict[str, Path]) -> list[str]:
    """`okopy run` of the rate limiter (50/s, bursts of 5) over the flood."""
    return [
        "run", str(files["ratelimit"]), "--pcap", str(files["pcap"]), "--json",
        "--seed", 'config=0={"rate": 50, "burst": 5}',
    ]  # fmt: skip


def test_verify_ok(files: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["verify", str(files["ratelimit"])]) == 0
    out = capsys.readouterr().out
    assert "admitted by the kernel verifier" in out
    if platform.machine() == "x86_64":
        assert "runs as native code (JIT)" in out
    assert main(["verify", "--no-jit", str(files["ratelimit"])]) == 0
    assert "runs in the interpreter" in capsys.readouterr().out


def test_run_same_result_without_jit(
    files: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    """--no-jit runs the interpreter: the same verdicts and maps."""
    argv = flood_run_argv(files)
    results = []
    for extra in ([], ["--no-jit"]):
        assert main(argv + extra) == 0
        results.append(json.loads(capsys.readouterr().out))
    engines = [r["program"].pop("engine") for r in results]
    assert results[0] == results[1]
    assert results[0]["verdicts"]["drop"] > 0
    assert engines[1] == "interpreter"
    if platform.machine() == "x86_64":
        assert engines[0] == "jit"


def test_run_says_which_engine_ran(
    files: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["run", str(files["blocklist"]), "--pcap", str(files["pcap"])]
    assert main([*argv, "--no-jit"]) == 0
    assert "kernel-verified, ran in the interpreter)" in capsys.readouterr().out
    assert main([*argv, "--sandbox"]) == 0
    assert "insns, sandbox mode)" in capsys.readouterr().out


UNSAFE = Path(__file__).resolve().parent.parent / "progs" / "unsafe"


def test_verify_sandbox_says_what_the_kernel_says(
    files: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """--sandbox admits a program the kernel refuses: the output says it
    runs in sandbox mode only, and why the kernel refused it."""
    obj = compile_program(UNSAFE / "pkt_read_unchecked.c", tmp_path / "unchecked.o")
    assert main(["verify", "--sandbox", str(obj)]) == 0
    out = capsys.readouterr().out
    assert "OK in sandbox mode only" in out
    assert "the kernel's verifier refuses it: " in out
    assert "pkt_read_unchecked.c:" in out  # the refusal names the source line
    assert main(["verify", "--sandbox", str(files["blocklist"])]) == 0
    assert "the kernel's verifier admits it too" in capsys.readouterr().out


def test_verify_refusal(
    files: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.o"
    bad.write_bytes(files["ratelimit"].read_bytes()[:500])
    assert main(["verify", str(bad)]) == 1
    assert "refused" in capsys.readouterr().err


def test_run_rate_limits_a_flood(
    files: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    # 100 packets in 100 ms from one source; 50/s with bursts of 5.
    assert main(flood_run_argv(files)) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["packets"] == 100
    assert out["verdicts"]["pass"] == 10
    assert out["verdicts"]["drop"] == 90
    (entry,) = out["maps"]["sources"]
    assert entry["key"] == "10.0.0.1"
    assert entry["value"]["passed"] == 10
    assert entry["value"]["dropped"] == 90


def test_run_blocklist_text(files: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["run", str(files["blocklist"]), "--pcap", str(files["pcap"])]
    argv += ["--seed", 'blocked_v4="10.1.0.2"={}']
    assert main(argv) == 0
    text = capsys.readouterr().out
    assert "verdicts: drop 100 (100.0%)" in text
    size = len(packets.udp4("10.0.0.1", "10.1.0.2", 5, 53))
    assert f'"10.1.0.2" -> {{"packets": 100, "bytes": {100 * size}}}' in text


def test_run_bad_seed_is_an_error(
    files: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["run", str(files["blocklist"]), "--pcap", str(files["pcap"])]
    argv += ["--seed", 'blocked_v4="10.1.0.300"={}']
    assert main(argv) == 1
    assert "not an IP address" in capsys.readouterr().err


def test_run_trace_prints_every_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """--trace: every bpf_trace_printk() line, with its packet, past
    libokovm's rate limit (10 a second, bursts of 50)."""
    obj = compile_program(Path(__file__).parent.parent / "progs" / "trace_ports.c",
                          tmp_path / "trace_ports.o")  # fmt: skip
    trace = [Packet(1_000_000_000 + i, packets.udp4("10.0.0.1", "10.0.0.2", 5, 50 + i % 3), 60)
             for i in range(90)]  # fmt: skip
    trace.insert(1, Packet(1_000_000_000, packets.icmp4("10.0.0.1", "10.0.0.2"), 60))
    pcap.write(tmp_path / "t.pcap", trace)
    argv = ["run", str(obj), "--pcap", str(tmp_path / "t.pcap"), "--trace"]
    assert main(argv) == 0
    text = capsys.readouterr().out
    assert "trace: 90 lines (bpf_trace_printk)" in text
    assert "  packet 1: udp to port 50\n  packet 3: udp to port 51\n" in text
    assert main([*argv, "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert len(out["trace"]) == 90
    assert out["trace"][-1] == {"packet": 91, "message": "udp to port 52"}
    assert main(argv[:-1]) == 0
    assert "trace:" not in capsys.readouterr().out
