"""port_knock.c: knocks in order open the protected port; wrong ones reset."""

from __future__ import annotations

from okopy.testing.filtercases import Case, run_cases
from okopy.traffic import packets as p

MS = 1_000_000
SRC, OTHER, SERVER = "10.0.0.1", "10.0.0.2", "192.0.2.10"
SSH = 22
SEEDS = {
    "config": {
        0: {
            "protected_port": SSH,
            "sequence": [7000, 8000, 9000],
            "open_ns": 100 * MS,
            "step_timeout_ns": 20 * MS,
        }
    }
}


def knock(port: int, src: str = SRC, udp: bool = False) -> bytes:
    if udp:
        return p.udp4(src, SERVER, 40000, port)
    return p.tcp4(src, SERVER, 40000, port, p.TCP_SYN)


def ssh(src: str = SRC, flags: int = p.TCP_SYN) -> bytes:
    return p.tcp4(src, SERVER, 40001, SSH, flags)


def test_knocks_in_order_open(objects: dict[str, bytes]) -> None:
    run_cases(objects["port_knock"], [
        Case("closed before knocking", ssh(), "drop", MS, maps={"knockers": {SRC: None}}),
        Case("other ports are untouched", p.tcp4(SRC, SERVER, 1, 80), "pass"),
        Case("knock 1 is dropped and counted", knock(7000), "drop", 2 * MS,
             maps={"knockers": {SRC: {"step": 1, "last_knock_ns": 2 * MS}}}),
        Case("knock 2 (UDP counts too)", knock(8000, udp=True), "drop", 3 * MS,
             maps={"knockers": {SRC: {"step": 2}}}),
        Case("still closed mid-sequence", ssh(), "drop", 4 * MS),
        Case("knock 3 opens", knock(9000), "drop", 5 * MS,
             maps={"knockers": {SRC: {"step": 0, "open_until_ns": 105 * MS}}}),
        Case("open for the knocker", ssh(), "pass", 6 * MS),
        Case("its established traffic too", ssh(flags=p.TCP_ACK), "pass", 7 * MS),
        Case("UDP to the port too", p.udp4(SRC, SERVER, 1, SSH), "pass", 8 * MS),
        Case("still closed for another source", ssh(OTHER), "drop", 9 * MS),
        Case("closed again after open_ns", ssh(), "drop", 106 * MS),
    ], seeds=SEEDS)  # fmt: skip


def test_wrong_knocks_reset(objects: dict[str, bytes]) -> None:
    run_cases(objects["port_knock"], [
        Case("a wrong first knock from a stranger leaves no state", knock(8000),
             "drop", MS, maps={"knockers": {SRC: None}}),
        Case("knock 1", knock(7000), "drop", 2 * MS, maps={"knockers": {SRC: {"step": 1}}}),
        Case("knock 3 out of order resets", knock(9000), "drop", 3 * MS,
             maps={"knockers": {SRC: {"step": 0}}}),
        Case("knock 2 now is wrong too", knock(8000), "drop", 4 * MS,
             maps={"knockers": {SRC: {"step": 0}}}),
        Case("knock 1", knock(7000), "drop", 5 * MS),
        Case("knock 1 again restarts at step 1", knock(7000), "drop", 6 * MS,
             maps={"knockers": {SRC: {"step": 1}}}),
        Case("knock 2", knock(8000), "drop", 7 * MS, maps={"knockers": {SRC: {"step": 2}}}),
        Case("knock 3 too late: starts over", knock(9000), "drop", 40 * MS,
             maps={"knockers": {SRC: {"step": 0, "open_until_ns": 0}}}),
        Case("so still closed", ssh(), "drop", 41 * MS),
        Case("a SYN-ACK to a knock port is not a knock",
             p.tcp4(SRC, SERVER, 1, 7000, p.TCP_SYN | p.TCP_ACK), "pass", 42 * MS,
             maps={"knockers": {SRC: {"step": 0}}}),
        Case("another source's knocks are its own", knock(7000, OTHER), "drop", 43 * MS,
             maps={"knockers": {OTHER: {"step": 1}, SRC: {"step": 0}}}),
    ], seeds=SEEDS)  # fmt: skip


def test_unconfigured_passes(objects: dict[str, bytes]) -> None:
    run_cases(objects["port_knock"], [
        Case("no protected port configured: SSH passes", ssh(), "pass"),
        Case("and knocks are ordinary packets", knock(7000), "pass"),
    ])  # fmt: skip
