"""Capture what the patched ovs-ofctl sends for each okopy command.

A fake switch listens on a Unix socket, answers HELLO (and, when the
command waits for one, a canned reply), and records every message after
the HELLO.  `python -m tests.golden.capture` rewrites tests/golden/*.hex;
tests/unit/test_golden.py checks okopy.ofp against those files, and
tests/integration/test_golden_capture.py re-captures from the built
ovs-ofctl and compares, so a drift on either side fails a test.
What the switch answers is captured by replies.py; README.md has both.
"""

from __future__ import annotations

import os
import socket
import struct
import subprocess
import tempfile
import threading
from collections.abc import Callable, Sequence
from pathlib import Path

from okopy.ofp import messages as m

HERE = Path(__file__).resolve().parent
OFP_HEADER = struct.Struct("!BBHI")
Reply = Callable[[bytes], bytes | None]


def _recv_msg(conn: socket.socket) -> bytes | None:
    head = b""
    while len(head) < 8:
        chunk = conn.recv(8 - len(head))
        if not chunk:
            return None
        head += chunk
    _, _, length, _ = OFP_HEADER.unpack(head)
    body = b""
    while len(body) < length - 8:
        chunk = conn.recv(length - 8 - len(body))
        if not chunk:
            return None
        body += chunk
    return head + body


def capture(ofctl: Path, args: Sequence[str], reply: Reply, timeout: float = 10) -> list[bytes]:
    """Run `ovs-ofctl -O OpenFlow13 ARGS` against a fake switch; return the
    messages it sent after its HELLO."""
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "sw.sock")
        srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        srv.bind(path)
        srv.listen(1)
        srv.settimeout(timeout)
        got: list[bytes] = []

        def serve() -> None:
            conn, _ = srv.accept()
            conn.settimeout(timeout)
            with conn:
                hello = _recv_msg(conn)
                if hello is None:
                    return
                conn.sendall(OFP_HEADER.pack(4, 0, 8, 0))
                while True:
                    msg = _recv_msg(conn)
                    if msg is None:
                        return
                    version, typ, _, xid = OFP_HEADER.unpack_from(msg)
                    if typ == 2:  # ECHO_REQUEST
                        conn.sendall(OFP_HEADER.pack(version, 3, 8, xid))
                        continue
                    if typ == 20:  # BARRIER_REQUEST
                        conn.sendall(OFP_HEADER.pack(version, 21, 8, xid))
                        continue
                    got.append(msg)
                    answer = reply(msg)
                    if answer is not None:
                        conn.sendall(answer[:4] + struct.pack("!I", xid) + answer[8:])

        t = threading.Thread(target=serve, daemon=True)
        t.start()
        subprocess.run([str(ofctl), "-O", "OpenFlow13", *args[:1], f"unix:{path}", *args[1:]],
                       capture_output=True, timeout=timeout + 5, check=False)  # fmt: skip
        t.join(timeout)
        srv.close()
        return got


def reply(msg: bytes) -> bytes | None:
    """What a switch would answer to each okopy request (empty results)."""
    if msg[1] != 4 or len(msg) < 16:
        return None
    exp_type = struct.unpack_from("!I", msg, 12)[0]
    req = m.decode(exp_type, msg[16:])
    if isinstance(req, m.ProgLoad):
        if req.offset + len(req.chunk) < req.elf_len:
            return None
        return m.ProgLoadReply(req.prog_id, 10, 1).frame()
    if isinstance(req, m.ProgUnload):
        return m.ProgUnloadReply(req.prog_id).frame()
    if isinstance(req, m.ProgListRequest):
        return m.ProgListReply(0).frame()
    if isinstance(req, m.MapListRequest):
        return m.MapListReply(req.prog_id).frame()
    if isinstance(req, m.MapBtfRequest):
        return m.MapBtfReply(req.prog_id, req.map, req.offset).frame()  # no BTF: hex
    if isinstance(req, m.MapDumpRequest):
        return m.MapDumpReply(req.prog_id, req.map, req.key_size, req.value_size).frame()
    if isinstance(req, m.MapLookupRequest):
        return m.MapLookupReply(req.prog_id, req.map, req.key_size, req.value_size).frame()
    if isinstance(req, m.MapUpdate):
        return m.MapUpdateReply(
            req.prog_id, req.map, req.key_size, req.value_size, req.count
        ).frame()
    if isinstance(req, m.MapDelete):
        return m.MapDeleteReply(
            req.prog_id, req.map, req.key_size, req.value_size, req.count
        ).frame()
    return None


def xid0(msg: bytes) -> bytes:
    return msg[:4] + b"\0\0\0\0" + msg[8:]


# name -> ovs-ofctl arguments (SWITCH is inserted after the command).
COMMANDS: dict[str, list[str]] = {
    "load": ["load-bpf-prog", "7", str(HERE / "tiny.o"), "name=guard", "cookie=0x1234", "replace"],
    "unload": ["unload-bpf-prog", "7"],
    "list": ["dump-bpf-progs"],
    "maps": ["dump-bpf-maps", "7"],
    "dump": ["dump-bpf-map", "7", "sources"],
    "lookup": ["lookup-bpf-map", "7", "sources", "0a000001"],
    "update": ["update-bpf-map", "7", "config", "00000000", "3200000005000000", "exist"],
    "delete": ["del-bpf-map", "7", "sources", "0a000001", "0a000002"],
    "oko-load": ["load-filter-prog", "7", str(HERE / "tiny.o")],
}


def capture_all(ofctl: Path) -> dict[str, list[bytes]]:
    return {name: [xid0(x) for x in capture(ofctl, args, reply)] for name, args in COMMANDS.items()}


def write(captured: dict[str, list[bytes]]) -> None:
    for name, msgs in captured.items():
        (HERE / f"{name}.hex").write_text("".join(x.hex() + "\n" for x in msgs))


def read(name: str) -> list[bytes]:
    return [bytes.fromhex(ln) for ln in (HERE / f"{name}.hex").read_text().split()]


if __name__ == "__main__":
    import sys

    write(capture_all(Path(sys.argv[1])))
