"""A client of an Open vSwitch daemon's control socket (what ovs-appctl
speaks: JSON-RPC 1.0 over a unix stream socket), kept open so that many
commands cost a round trip each rather than a process start each."""

from __future__ import annotations

import json
import socket
import time
from pathlib import Path


class UnixctlError(RuntimeError):
    """The daemon answered with an error, or the connection failed."""


class Unixctl:
    def __init__(self, path: Path, timeout: float = 10.0) -> None:
        self.path = path
        self.timeout = timeout
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(timeout)
        try:
            self.sock.connect(str(path))
        except OSError as e:
            self.sock.close()
            raise UnixctlError(f"cannot connect to {path}: {e.strerror}") from None
        self._id = 0
        self._buf = ""
        self._decoder = json.JSONDecoder()

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> Unixctl:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _recv(self) -> dict[str, object]:
        deadline = time.monotonic() + self.timeout
        while True:
            text = self._buf.lstrip()
            if text:
                try:
                    obj, end = self._decoder.raw_decode(text)
                except json.JSONDecodeError:
                    pass  # not all of it yet
                else:
                    self._buf = text[end:]
                    if not isinstance(obj, dict):
                        raise UnixctlError(f"{self.path}: unexpected message {obj!r}")
                    return obj
            if time.monotonic() > deadline:
                raise UnixctlError(f"{self.path}: timed out waiting for a reply")
            try:
                chunk = self.sock.recv(65536)
            except TimeoutError:
                raise UnixctlError(f"{self.path}: timed out waiting for a reply") from None
            if not chunk:
                raise UnixctlError(f"{self.path}: the daemon closed the connection")
            self._buf += chunk.decode("utf-8", "replace")

    def call(self, command: str, *args: str) -> str:
        """Runs 'command' with 'args' and returns its output; raises
        UnixctlError with the daemon's message if it failed."""
        self._id += 1
        request = {"method": command, "params": list(args), "id": self._id}
        self.sock.sendall(json.dumps(request).encode())
        while True:
            reply = self._recv()
            if reply.get("id") == self._id:
                break
        if reply.get("error") is not None:
            raise UnixctlError(f"{command}: {str(reply['error']).strip()}")
        result = reply.get("result")
        return result if isinstance(result, str) else ""
