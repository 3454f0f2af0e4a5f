"""Seed inputs for the Open vSwitch fuzz targets of the okopy series
(scripts/fuzz ovs-msg and ovs-action).

    python -m tests.golden.fuzz_seeds ofp OUTDIR
    python -m tests.golden.fuzz_seeds ofpact OUTDIR

"ofp": one file per message: every message of tests/golden/*.hex (what the
real ovs-ofctl sent) and every reply in tests/golden/replies/*.hex (what the
real ovs-vswitchd answered), in OpenFlow 1.3 and again in 1.0, then more
replies and errors, encoded by okopy.ofp, for variants the captures lack
(pinned maps, "more" flags, OpenFlow 1.0 errors).

"ofpact": inputs of tests/oss-fuzz/okopy_action_target.c, whose first
byte says what follows: bpf actions in OpenFlow 1.0 and 1.3 (alone, in an
instruction, next to other actions), bpf_verdict NXM/OXM fields, and the
text forms of both.
"""

from __future__ import annotations

import struct
import sys
from pathlib import Path

from okopy.ofp import messages as m
from okopy.ofp.action import BpfAction, verdict_oxm
from okopy.ofp.constants import OKOPY_VENDOR_ID, ErrorType

HERE = Path(__file__).resolve().parent
OFP10_VERSION = 1
OFPT_ERROR = 1
OFPET12_EXPERIMENTER = 0xFFFF
NXET_VENDOR = 0xB0C2


def golden() -> list[tuple[str, bytes]]:
    """The golden messages: one per line of each tests/golden/*.hex, and
    the switch's answers in tests/golden/replies/*.hex."""
    out = []
    for path in sorted(HERE.glob("*.hex")):
        for i, line in enumerate(path.read_text().split()):
            out.append((f"{path.stem}-{i}", bytes.fromhex(line)))
    for path in sorted((HERE / "replies").glob("*.hex")):
        answers = [ln.split()[1] for ln in path.read_text().splitlines() if ln.startswith("<")]
        for i, text in enumerate(answers):
            out.append((f"reply-{path.stem}-{i}", bytes.fromhex(text)))
    return out


def _error(version: int, kind: ErrorType, data: bytes) -> bytes:
    if version == OFP10_VERSION:
        # A Nicira vendor error whose vendor is okopy (code 0).
        body = struct.pack("!HHIHH", NXET_VENDOR, 0, OKOPY_VENDOR_ID, kind, 0)
    else:
        body = struct.pack("!HHI", OFPET12_EXPERIMENTER, kind, OKOPY_VENDOR_ID)
    body += data
    return struct.pack("!BBHI", version, OFPT_ERROR, 8 + len(body), 7) + body


def replies() -> list[tuple[str, bytes]]:
    """Replies and errors of the switch, encoded by okopy.ofp."""
    maps = (
        m.MapDesc("sources", 1, 4, 8, 64, 0, 0, 3),
        m.MapDesc("counts", 6, 4, 8, 1, 1, 1, 1),
    )
    stats = m.ProgStats(7, 12, "guard", 1, 30, 0xC0FFEE, 100, 5000, (0, 1, 2, 3, 4, 5))
    msgs: list[tuple[str, m.Message]] = [
        ("load-reply", m.ProgLoadReply(7, 12, 1, maps)),
        ("unload-reply", m.ProgUnloadReply(7)),
        ("list-request", m.ProgListRequest(3, 10)),
        ("list-reply", m.ProgListReply(1, (stats, stats))),
        ("maps-reply", m.MapListReply(7, maps)),
        (
            "lookup-reply",
            m.MapLookupReply(7, "sources", 4, 8, 1, 0, (b"\x0a\0\0\1",), (bytes(8),)),
        ),
        ("update-reply", m.MapUpdateReply(7, "sources", 4, 8, 2)),
        ("delete-reply", m.MapDeleteReply(7, "sources", 4, 0, 1)),
        (
            "dump-reply",
            m.MapDumpReply(7, "sources", 4, 8, 1, 1, (b"\x0a\0\0\1",), (b"\1" * 8,)),
        ),
        ("dump-request-after", m.MapDumpRequest(7, "sources", 4, 0, 16, 0, (b"\x0a\0\0\1",))),
        ("btf-request", m.MapBtfRequest(7, "sources", 0)),
        ("btf-reply", m.MapBtfReply(7, "sources", 0, 24, 1, 2, bytes(range(24)))),
    ]
    out = [(name, msg.frame(xid=7)) for name, msg in msgs]
    for version in (OFP10_VERSION, m.OFP13_VERSION):
        out.append(
            (
                f"error-verifier-{version}",
                _error(version, ErrorType.VERIFIER_REFUSED, b"0: (b7) r0 = 2\ninvalid insn\n"),
            )
        )
        out.append(
            (
                f"error-unknown-map-{version}",
                _error(version, ErrorType.UNKNOWN_MAP, m.MapListRequest(7).frame()[:16]),
            )
        )
    return out


def seed_ofp(out: Path) -> None:
    for name, msg in golden() + replies():
        (out / f"{name}.bin").write_bytes(msg)
        if msg[0] != OFP10_VERSION and msg[1] != OFPT_ERROR:
            (out / f"{name}-of10.bin").write_bytes(bytes([OFP10_VERSION]) + msg[1:])


def seed_action(out: Path) -> None:
    monitor = BpfAction(1).encode()
    verdict = BpfAction(7, 3).encode()
    output10 = struct.pack("!HHHH", 0, 8, 2, 0)
    output13 = struct.pack("!HHIH6x", 0, 16, 2, 0)
    apply = struct.pack("!HH4x", 4, 8 + 2 * len(verdict))
    seeds = {
        "of10-monitor": b"\0" + monitor,
        "of10-verdict-output": b"\0" + verdict + output10,
        "of13-monitor": b"\1" + monitor,
        "of13-verdict-output": b"\1" + verdict + output13,
        "of13-apply": b"\2" + apply + monitor + verdict,
        "nxm-pass": b"\3" + verdict_oxm("pass"),
        "nxm-none": b"\3" + verdict_oxm("none"),
        "oxm-drop": b"\4" + verdict_oxm("drop"),
        "oxm-masked": b"\4" + verdict_oxm("redirect", 0x1FFFFFFFF),
        "text-monitor": b"\5" + str(BpfAction(1)).encode(),
        "text-verdict": b"\5" + str(BpfAction(7, 3)).encode(),
        "text-several": b"\5bpf(prog=4294967294,table=254),resubmit(,2),bpf(prog=9)",
        "verdict-pass": b"\6pass",
        "verdict-none": b"\6none",
        "verdict-number": b"\x06300",
        "verdict-masked": b"\x060x100000004/0x1ffffffff",
    }
    for name, data in seeds.items():
        (out / f"{name}.bin").write_bytes(data)


def main(argv: list[str]) -> int:
    if len(argv) != 3 or argv[1] not in ("ofp", "ofpact"):
        print("usage: python -m tests.golden.fuzz_seeds ofp|ofpact OUTDIR", file=sys.stderr)
        return 2
    out = Path(argv[2])
    out.mkdir(parents=True, exist_ok=True)
    (seed_ofp if argv[1] == "ofp" else seed_action)(out)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
