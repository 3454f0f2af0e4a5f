"""Capture what the patched ovs-vswitchd answers to okopy's requests.

A private switch is started from the build tree the way the integration
fixtures start one (`okopy.ovs.instance`, ovs-vswitchd in a network
namespace of its own, netdev bridge br0), and sent, step by step, the
request goldens ovs-ofctl sends (tests/golden/<name>.hex, see capture.py)
and a few requests okopy builds: a program with maps (tiny_maps.o),
entries for the lookup and dump goldens to find, and requests the switch
must refuse.  Everything it answers is recorded.

`python -m tests.golden.replies` (as root; the build tree is
$OKOPY_BUILD_DIR or build/) rewrites tests/golden/replies/*.hex.
tests/unit/test_golden_replies.py decodes those replies with okopy.ofp and
checks what they say; tests/integration/test_golden_capture.py recaptures
them from the built switch and compares, so a change on either side that
is not recaptured fails a test.

Each file is the transcript of one step: a line `> HEX` is a message sent
to the switch, `< HEX` one it answered (each request is followed by a
barrier, so the replies to a request come before the next request).  Xids
are zeroed.
"""

from __future__ import annotations

import socket
import struct
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path

from okopy.netns import Namespace
from okopy.ofp import constants as c
from okopy.ofp import messages as m
from okopy.ovs.instance import OvsInstance, OvsTools
from okopy.paths import default_layout
from tests.golden.capture import HERE, OFP_HEADER, read, xid0

REPLIES = HERE / "replies"
BRIDGE = "br0"
OFPT_HELLO, OFPT_ECHO_REQUEST, OFPT_ECHO_REPLY = 0, 2, 3
OFPT_BARRIER_REQUEST, OFPT_BARRIER_REPLY = 20, 21
# Every request is sent with one xid, its barrier with another (a request's
# replies all come before its barrier's), so that the xid an error echoes
# in its copy of the request does not depend on the step's place.
REQUEST_XID, BARRIER_XID = 1, 2

Transcript = list[tuple[str, bytes]]  # (">" sent or "<" received, message)

# What the "fill" step writes to tiny_maps' sources map: address -> value
# (struct tiny_source: packets, bytes, little-endian u64s).
SOURCES = {
    bytes([10, 0, 0, 1]): struct.pack("<QQ", 3, 180),
    bytes([10, 0, 0, 2]): struct.pack("<QQ", 1, 60),
}


def _built(*msgs: m.Message) -> Callable[[], list[bytes]]:
    return lambda: [x.frame(xid=0) for x in msgs]


def _load(
    prog_id: int, obj: str, name: str, flags: int = 0, cookie: int = 0
) -> Callable[[], list[bytes]]:
    def frames() -> list[bytes]:
        elf = (HERE / obj).read_bytes()
        chunks = m.ProgLoad.chunks(prog_id, elf, name, flags, cookie=cookie)
        return [x.frame(xid=0) for x in chunks]

    return frames


# Step name -> what it sends: the name of a request golden (replayed as
# ovs-ofctl sent it), or a function giving the messages okopy builds.  The
# steps run in this order against one switch, each seeing what the earlier
# ones left.
STEPS: dict[str, str | Callable[[], list[bytes]]] = {
    "load": "load",  # tiny.o has no BTF: refused, with text saying why
    "load-maps": _load(7, "tiny_maps.o", "limit", c.ProgLoadFlags.REPLACE, 0x1234),
    "list": "list",
    "update": "update",  # config's BTF, then config[0] = {rate 50, burst 5}
    "fill": _built(m.MapUpdate(7, "sources", 4, 16, len(SOURCES), c.MapUpdateFlags.ANY,
                               tuple(SOURCES), tuple(SOURCES.values()))),
    "lookup": "lookup",  # sources' BTF, then sources[10.0.0.1]
    "dump": "dump",
    "maps": "maps",
    "delete": "delete",  # 10.0.0.1 and 10.0.0.2
    "lookup-deleted": "lookup",
    "refused-load": _load(8, "tiny_bad.o", "bad"),
    "unknown-map": _built(m.MapLookupRequest(7, "nope", 4, 0, 1, 0, (bytes(4),))),
    "unload": "unload",
    "unload-again": "unload",
}  # fmt: skip


def requests(step: str) -> list[bytes]:
    """The messages 'step' sends, xids zeroed."""
    what = STEPS[step]
    return read(what) if isinstance(what, str) else what()


class SwitchConnection:
    """One OpenFlow 1.3 connection to a bridge's management socket, kept
    raw: what the switch sends is recorded byte for byte."""

    def __init__(self, path: Path, timeout: float = 10.0) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(timeout)
        self.sock.connect(str(path))
        self.sock.sendall(OFP_HEADER.pack(m.OFP13_VERSION, OFPT_HELLO, OFP_HEADER.size, 0))
        if self._recv()[1] != OFPT_HELLO:
            raise ConnectionError(f"{path}: the switch did not say hello first")

    def close(self) -> None:
        self.sock.close()

    def _recv(self) -> bytes:
        head = self._read(OFP_HEADER.size)
        length = OFP_HEADER.unpack(head)[2]
        return head + self._read(length - OFP_HEADER.size)

    def _read(self, n: int) -> bytes:
        data = b""
        while len(data) < n:
            chunk = self.sock.recv(n - len(data))
            if not chunk:
                raise ConnectionError("the switch closed the connection")
            data += chunk
        return data

    def _send(self, msg: bytes, xid: int) -> None:
        self.sock.sendall(msg[:4] + struct.pack("!I", xid) + msg[8:])

    def transcript(self, requests: Sequence[bytes]) -> Transcript:
        """Send each request, then a barrier; record what answers it."""
        out: Transcript = []
        for req in requests:
            out.append((">", xid0(req)))
            self._send(req, REQUEST_XID)
            barrier = OFP_HEADER.pack(m.OFP13_VERSION, OFPT_BARRIER_REQUEST, 8, 0)
            self._send(barrier, BARRIER_XID)
            while True:
                msg = self._recv()
                _, msg_type, _, rxid = OFP_HEADER.unpack_from(msg)
                if msg_type == OFPT_ECHO_REQUEST:
                    self.sock.sendall(msg[:1] + bytes([OFPT_ECHO_REPLY]) + msg[2:])
                elif rxid == BARRIER_XID and msg_type == OFPT_BARRIER_REPLY:
                    break
                elif rxid == REQUEST_XID:
                    out.append(("<", xid0(msg)))
        return out


def capture_all(tools: OvsTools) -> dict[str, Transcript]:
    """Run every step against a fresh private switch."""
    with tempfile.TemporaryDirectory(prefix="okopy-golden-") as d:
        ns = Namespace.create("golden")
        switch = OvsInstance(tools, Path(d) / "ovs", ns)
        try:
            switch.start()
            switch.add_bridge(BRIDGE)
            conn = SwitchConnection(switch.rundir / f"{BRIDGE}.mgmt")
            try:
                return {name: conn.transcript(requests(name)) for name in STEPS}
            finally:
                conn.close()
        finally:
            switch.stop()
            ns.delete()


def write(captured: dict[str, Transcript]) -> None:
    REPLIES.mkdir(exist_ok=True)
    for name, lines in captured.items():
        text = "".join(f"{way} {msg.hex()}\n" for way, msg in lines)
        (REPLIES / f"{name}.hex").write_text(text)


def read_transcript(name: str) -> Transcript:
    out: Transcript = []
    for line in (REPLIES / f"{name}.hex").read_text().splitlines():
        way, text = line.split()
        if way not in (">", "<"):
            raise ValueError(f"replies/{name}.hex: line {line[:20]!r} is not '> HEX' or '< HEX'")
        out.append((way, bytes.fromhex(text)))
    return out


def comparable(msg: bytes) -> bytes:
    """'msg' without what changes from run to run: a program list's
    seconds since load (0 unless the machine stalled a second), and the
    order of a map dump's entries (a hash map's, seeded per process)."""
    if len(msg) < 16 or msg[1] != m.OFPT_EXPERIMENTER:
        return msg
    exp_type = struct.unpack_from("!I", msg, 12)[0]
    out = bytearray(msg)
    if exp_type == c.MsgType.PROG_LIST_REPLY:
        start = 16 + m.ProgListReply.FMT.size
        for off in range(start, len(msg), m.ProgStats.FMT.size):
            struct.pack_into("!I", out, off + 44, 0)  # duration_sec, after id, insns, name, mode
    elif exp_type == c.MsgType.MAP_DUMP_REPLY:
        start = 16 + m.MapDumpReply.FMT.size
        _, count, key_size, value_size, _, _ = m.MapDumpReply.FMT.unpack_from(msg, 16)
        step = key_size + value_size
        entries = sorted(msg[start + i * step : start + (i + 1) * step] for i in range(count))
        out[start : start + count * step] = b"".join(entries)
    return bytes(out)


if __name__ == "__main__":
    write(capture_all(OvsTools.from_layout(default_layout())))
