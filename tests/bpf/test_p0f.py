"""p0f.c: SYN signatures, labels and per-source fingerprints."""

from __future__ import annotations

import json
from typing import Any

from okopy.testing.filtercases import Case, run_cases
from okopy.traffic import packets as p

MS = 1_000_000
DST = "192.0.2.10"
LINUX, WINDOWS, SCANNER, UNKNOWN = "10.0.0.1", "10.0.0.2", "10.0.0.3", "10.0.0.4"
DF = 0x4000


def syn(src: str, *, ttl: int, window: int, options: bytes, df: bool = True,
        flags: int = p.TCP_SYN) -> bytes:  # fmt: skip
    seg = p.tcp(src, DST, 40000, 443, flags, window=window, options=options)
    return p.ethernet(p.ETH_P_IP, p.ipv4(src, DST, p.IPPROTO_TCP, seg, ttl=ttl,
                                         frag=DF if df else 0))  # fmt: skip


def sig(**fields: Any) -> str:
    return json.dumps(fields)


LINUX_SYN = syn(LINUX, ttl=61, window=64240,
                options=p.tcp_options("MSTNW", mss=1460, wscale=7))  # fmt: skip
WINDOWS_SYN = syn(WINDOWS, ttl=120, window=65535,
                  options=p.tcp_options("MNWNNS", mss=1440, wscale=8))  # fmt: skip
SCANNER_SYN = syn(SCANNER, ttl=50, window=1024, df=False,
                  options=p.tcp_options("M", mss=1460))  # fmt: skip
UNKNOWN_SYN = syn(UNKNOWN, ttl=200, window=5000,
                  options=p.tcp_options("NNT"))  # fmt: skip

SEEDS = {
    "signatures": {
        # Linux: window 44 * MSS, any MSS (lookup 2).
        sig(ittl=64, wscale=7, mss=0, window=44, win_mss=1, df=1, layout="MSTNW"):
            {"label": "linux"},
        # Windows: raw window, any MSS (lookup 3).
        sig(ittl=128, wscale=8, mss=0, window=65535, win_mss=0, df=1, layout="MNWNNS"):
            {"label": "windows"},
        # A scanner's hand-made SYN, exactly (lookup 1); dropped.
        sig(ittl=64, wscale=0, mss=1460, window=1024, win_mss=0, df=0, layout="M"):
            {"label": "scanner", "drop": 1},
    }
}  # fmt: skip


def test_fingerprints_and_labels(objects: dict[str, bytes]) -> None:
    run_cases(objects["p0f"], [
        Case("Linux SYN is labelled and passes", LINUX_SYN, "pass", MS,
             maps={"hosts": {LINUX: {
                 "sig": {"ittl": 64, "wscale": 7, "mss": 1460, "window": 64240,
                         "win_mss": 0, "df": 1, "layout": "MSTNW"},
                 "label": "linux", "distance": 3, "syns": 1, "last_seen_ns": MS}}}),
        Case("Windows SYN matches with any MSS", WINDOWS_SYN, "pass", 2 * MS,
             maps={"hosts": {WINDOWS: {"label": "windows", "distance": 8,
                                       "sig": {"layout": "MNWNNS", "mss": 1440}}}}),
        Case("the scanner's SYN is dropped", SCANNER_SYN, "drop", 3 * MS,
             maps={"hosts": {SCANNER: {"label": "scanner", "distance": 14}},
                   "signatures": {sig(ittl=64, wscale=0, mss=1460, window=1024,
                                      win_mss=0, df=0, layout="M"): {"hits": 1}}}),
        Case("an unknown stack is recorded without a label", UNKNOWN_SYN, "pass",
             4 * MS, maps={"hosts": {UNKNOWN: {"label": "", "distance": 55, "sig": {
                 "ittl": 255, "window": 5000, "mss": 0, "layout": "NNT"}}}}),
        Case("a second SYN counts", LINUX_SYN, "pass", 5 * MS,
             maps={"hosts": {LINUX: {"syns": 2, "last_seen_ns": 5 * MS}}}),
    ], seeds=SEEDS)  # fmt: skip


def test_what_is_fingerprinted(objects: dict[str, bytes]) -> None:
    # An option whose length runs past the header ends the walk.
    broken = syn(UNKNOWN, ttl=64, window=100,
                 options=bytes.fromhex("020405b4082000000000000000000000"))  # fmt: skip
    synack = syn(LINUX, ttl=64, window=100, options=p.tcp_options("M"),
                 flags=p.TCP_SYN | p.TCP_ACK)  # fmt: skip
    run_cases(objects["p0f"], [
        Case("SYN-ACKs are not fingerprinted", synack, "pass", MS,
             maps={"hosts": {LINUX: None}}),
        Case("plain ACKs neither", p.tcp4(LINUX, DST, 1, 2, p.TCP_ACK), "pass",
             maps={"hosts": {LINUX: None}}),
        Case("a malformed option list stops the layout", broken, "pass",
             maps={"hosts": {UNKNOWN: {"sig": {"mss": 1460, "layout": "MT"}}}}),
        Case("a SYN without options", syn(WINDOWS, ttl=64, window=512, options=b""),
             "pass", maps={"hosts": {WINDOWS: {"sig": {"layout": "", "mss": 0}}}}),
        Case("a truncated SYN is left alone", LINUX_SYN[:60], "pass",
             maps={"hosts": {LINUX: None}}),
    ], seeds=SEEDS)  # fmt: skip
