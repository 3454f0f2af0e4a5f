"""A small blocking OpenFlow 1.3 client for the extension's messages.

For tools that talk to one switch without a controller: benchmarks that
time a map update over a connection kept open (no process start, no
handshake per update), and scripts.  It connects to a bridge's management
socket (`unix:RUNDIR/BRIDGE.mgmt`, what ovs-ofctl uses) or to a TCP
listener, says hello, and sends requests whose replies it waits for by xid.
The controller does not use it: os-ken does its I/O.
"""

from __future__ import annotations

import socket
import struct
import time
from collections.abc import Sequence
from pathlib import Path

from okopy.ofp.messages import (
    EXPERIMENTER_HEADER,
    OFP13_VERSION,
    OFP_HEADER,
    OFPT_ERROR,
    OFPT_EXPERIMENTER,
    Message,
    ProgListReply,
    ProgListRequest,
    ProgStats,
    decode,
    decode_error,
)

OFPT_HELLO = 0
OFPT_ECHO_REQUEST = 2
OFPT_ECHO_REPLY = 3
OFPT_PACKET_IN = 10
OFPT_BARRIER_REQUEST = 20
OFPT_BARRIER_REPLY = 21
OFPT_SET_ASYNC = 28
# struct ofp_async_config: packet-in, port-status and flow-removed masks,
# each for the master/equal roles and for the slave role.
ASYNC_CONFIG = struct.Struct("!6I")
OFPR_ALL = 0x7  # no match, action, invalid TTL


class OfClientError(RuntimeError):
    """The switch refused a request or the connection failed."""


class OfClient:
    """One OpenFlow 1.3 connection; not thread-safe."""

    def __init__(self, sock: socket.socket, timeout: float = 10.0) -> None:
        self.sock = sock
        self.timeout = timeout
        self.sock.settimeout(timeout)
        self._xid = 0
        self._buf = b""
        # Packet-ins received so far, if enable_packet_ins() asked for them.
        self.packet_ins = 0
        self.sock.sendall(OFP_HEADER.pack(OFP13_VERSION, OFPT_HELLO, OFP_HEADER.size, self._next()))
        version, msg_type, _xid, _body = self._recv()
        if msg_type != OFPT_HELLO:
            raise OfClientError(f"expected a hello from the switch, got message type {msg_type}")
        if version < OFP13_VERSION:
            raise OfClientError(f"the switch speaks OpenFlow version {version}, not 1.3")

    @classmethod
    def unix(cls, path: Path | str, timeout: float = 10.0) -> OfClient:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.connect(str(path))
        except OSError as e:
            sock.close()
            raise OfClientError(f"cannot connect to {path}: {e.strerror}") from None
        return cls(sock, timeout)

    @classmethod
    def bridge(cls, rundir: Path, bridge: str, timeout: float = 10.0) -> OfClient:
        """The management socket ovs-vswitchd creates for 'bridge'."""
        return cls.unix(rundir / f"{bridge}.mgmt", timeout)

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> OfClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _next(self) -> int:
        self._xid = (self._xid + 1) & 0xFFFFFFFF
        return self._xid

    def _recv(self) -> tuple[int, int, int, bytes]:
        """One whole message: (version, type, xid, bytes after the header).
        Echo requests are answered here, never returned; packet-ins are
        counted."""
        deadline = time.monotonic() + self.timeout
        while True:
            if len(self._buf) >= OFP_HEADER.size:
                version, msg_type, length, xid = OFP_HEADER.unpack_from(self._buf)
                if length < OFP_HEADER.size:
                    raise OfClientError(f"switch sent a message of length {length}")
                if len(self._buf) >= length:
                    body = self._buf[OFP_HEADER.size : length]
                    self._buf = self._buf[length:]
                    if msg_type == OFPT_ECHO_REQUEST:
                        reply = OFPT_ECHO_REPLY, OFP_HEADER.size + len(body), xid
                        self.sock.sendall(OFP_HEADER.pack(OFP13_VERSION, *reply) + body)
                        continue
                    if msg_type == OFPT_PACKET_IN:
                        self.packet_ins += 1
                    return version, msg_type, xid, body
            if time.monotonic() > deadline:
                raise OfClientError("timed out waiting for the switch")
            try:
                chunk = self.sock.recv(65536)
            except TimeoutError:
                raise OfClientError("timed out waiting for the switch") from None
            if not chunk:
                raise OfClientError("the switch closed the connection")
            self._buf += chunk

    def request(self, msg: Message) -> Message:
        """Send 'msg' and return the switch's reply to it; raises
        OfClientError with the switch's error text on refusal."""
        return self.request_all([msg])[0]

    def request_all(self, msgs: Sequence[Message], window: int = 16) -> list[Message]:
        """Send the messages 'window' at a time without waiting, then
        collect those replies, and so on: a batch of changes in one round
        trip per window (the switch handles them in order), without ever
        having so much unread that both sides block on a full socket.
        Returns the replies in the messages' order; raises OfClientError,
        naming the first refused message, after all replies came in."""
        replies: dict[int, Message] = {}
        refused: dict[int, str] = {}
        xids: list[int] = []
        for start in range(0, len(msgs), max(1, window)):
            out = b""
            want: set[int] = set()
            for msg in msgs[start : start + max(1, window)]:
                xid = self._next()
                xids.append(xid)
                want.add(xid)
                out += msg.frame(xid)
            self.sock.sendall(out)
            while want:
                _version, msg_type, rxid, body = self._recv()
                if rxid not in want:
                    continue
                want.discard(rxid)
                if msg_type == OFPT_ERROR:
                    refused[rxid] = _error_text(body)
                elif msg_type != OFPT_EXPERIMENTER or len(body) < EXPERIMENTER_HEADER.size:
                    refused[rxid] = f"unexpected reply of message type {msg_type}"
                else:
                    _exp, exp_type = EXPERIMENTER_HEADER.unpack_from(body)
                    replies[rxid] = decode(exp_type, body[EXPERIMENTER_HEADER.size :])
        for msg, xid in zip(msgs, xids, strict=True):
            if xid in refused:
                raise OfClientError(f"{type(msg).__name__} refused: {refused[xid]}")
        return [replies[x] for x in xids]

    def programs(self) -> dict[int, ProgStats]:
        """The bridge's programs with their statistics, by id (every page
        of the program list)."""
        out: dict[int, ProgStats] = {}
        start = 0
        while True:
            reply = self.request(ProgListRequest(start))
            if not isinstance(reply, ProgListReply):
                raise OfClientError(f"expected a program list reply, got {type(reply).__name__}")
            for p in reply.programs:
                out[p.prog_id] = p
            if not reply.more or not reply.programs:
                return out
            start = reply.programs[-1].prog_id + 1

    def enable_packet_ins(self) -> None:
        """Ask the switch for the packet-ins of every reason, which a
        connection to the management socket does not get by default;
        'packet_ins' counts those that arrive while waiting for replies."""
        body = ASYNC_CONFIG.pack(OFPR_ALL, 0, 0, 0, 0, 0)
        hdr = OFP_HEADER.pack(OFP13_VERSION, OFPT_SET_ASYNC, OFP_HEADER.size + len(body), 0)
        self.send_frames([hdr + body])

    def send_frames(self, frames: Sequence[bytes]) -> None:
        """Send OpenFlow messages that have no reply of their own (flow
        mods, encoded elsewhere), then a barrier; raises OfClientError with
        the switch's error for the first one it refused.  Each frame's xid
        is replaced by one of this connection's."""
        xids: list[int] = []
        out = b""
        for frame in frames:
            if len(frame) < OFP_HEADER.size:
                raise ValueError(f"an OpenFlow message of {len(frame)} bytes")
            xid = self._next()
            xids.append(xid)
            out += frame[:4] + struct.pack("!I", xid) + frame[OFP_HEADER.size :]
        barrier = self._next()
        out += OFP_HEADER.pack(OFP13_VERSION, OFPT_BARRIER_REQUEST, OFP_HEADER.size, barrier)
        self.sock.sendall(out)
        refused: dict[int, str] = {}
        while True:
            _version, msg_type, rxid, body = self._recv()
            if msg_type == OFPT_ERROR and rxid in xids:
                refused[rxid] = _error_text(body)
            elif msg_type == OFPT_BARRIER_REPLY and rxid == barrier:
                break
        for n, xid in enumerate(xids):
            if xid in refused:
                raise OfClientError(f"message {n + 1} of {len(xids)} refused: {refused[xid]}")


def _error_text(body: bytes) -> str:
    if len(body) < 4:
        return "malformed error message"
    err_type, code = struct.unpack_from("!HH", body)
    if err_type == 0xFFFF and len(body) >= 8:
        (experimenter,) = struct.unpack_from("!I", body, 4)
        ext = decode_error(code, experimenter, body[8:])
        if ext is not None:
            return str(ext)
    return f"OpenFlow error type {err_type} code {code}"
