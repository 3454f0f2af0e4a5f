"""The API server on the wire (127.0.0.1): every malformed, slow or stalled
request gets a prompt JSON 4xx, never a dropped or hung connection, and a
burst of clients is served at once."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from okopy.controller import api as apimod
from okopy.controller.api import Api, ApiServer, serve
from tests.unit.test_api import MAP, TOKEN, FakeBackend

READ_TIMEOUT = 1.0  # the server's bound for a request to arrive, in these tests


@pytest.fixture(scope="module")
def server() -> Iterator[ApiServer]:
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(apimod, "READ_TIMEOUT", READ_TIMEOUT)
        srv = serve(Api(FakeBackend(), TOKEN), "127.0.0.1", 0)
        try:
            yield srv
        finally:
            srv.shutdown()
            srv.server_close()


def address(srv: ApiServer) -> tuple[str, int]:
    return "127.0.0.1", srv.server_address[1]


def exchange(
    srv: ApiServer, data: bytes, pause: float = 0.0, trickle: bytes = b""
) -> tuple[int, Any, float]:
    """Send 'data' (then 'trickle' a byte every 'pause' s) and read the whole
    answer, leaving our side open; (status, JSON body, seconds taken)."""
    started = time.monotonic()
    with socket.create_connection(address(srv), timeout=10) as s:
        s.sendall(data)
        for b in trickle:
            time.sleep(pause)
            try:
                s.sendall(bytes([b]))
            except OSError:
                break  # the server answered and closed
        answer = b""
        while chunk := s.recv(65536):
            answer += chunk
    took = time.monotonic() - started
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1."), answer[:200]
    status = int(head.split()[1])
    assert b"application/json" in head, head
    return status, json.loads(body), took


def request(method: str, path: str, headers: dict[str, str] | None = None,
            body: bytes = b"") -> bytes:  # fmt: skip
    lines = [f"{method} {path} HTTP/1.1", "Host: x"]
    lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


AUTH = {"Authorization": f"Bearer {TOKEN}"}
PUT = MAP + "/entries"


@pytest.mark.parametrize(
    ("data", "status", "message"),
    [
        (request("GET", "/api/v1/switches/1/programs/-1/maps"), 400, "out of range"),
        (request("GET", "/api/v1/switches/1/programs/1099511627776/maps"), 400, "out of range"),
        (request("PUT", PUT, {**AUTH, "Content-Length": "abc"}, b"{}"), 400, "Content-Length"),
        (request("PUT", PUT, {**AUTH, "Content-Length": "-5"}, b"{}"), 400, "Content-Length"),
        (request("PUT", PUT, {**AUTH, "Content-Length": "2", "content-length": "3"}, b"{}"),
         400, "conflicting"),
        (request("PUT", PUT, {**AUTH, "Content-Length": str(2 << 20)}), 413, "over the limit"),
        (request("PUT", PUT, {**AUTH, "Transfer-Encoding": "chunked"}, b"2\r\n{}\r\n0\r\n\r\n"),
         411, "Content-Length"),
        (request("PUT", PUT, {**AUTH, "Content-Length": "200011"},
                 b"[" * 100_000 + b"]" * 100_000 + b"{}" + b"x" * 9), 400, "nests deeper"),
        (request("GET", MAP + "?key=" + "%5B" * 1000), 401, "token"),
        (request("GET", MAP + "?key=" + "%5B" * 1000, AUTH), 400, "nests deeper"),
        (request("GET", MAP), 401, "token"),
        (b"GET /api/v1/switches\r\n", 400, "HTTP/0.9"),
        (b"GET /api/v1/switches HTTP/7.0\r\n\r\n", 505, "version"),
        (b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03 binary\r\n\r\n", 400, ""),
        (request("GET", "/api/v1/switches", {"X-Long": "a" * 70_000}), 431, ""),
        (request("GET", "/api/v1/" + "a" * 70_000), 414, "request line"),
        (request("BREW", "/api/v1/switches"), 405, "not allowed"),
    ],
)  # fmt: skip
def test_bad_requests_are_answered_at_once(
    server: ApiServer, data: bytes, status: int, message: str
) -> None:
    got, body, took = exchange(server, data)
    assert got == status, body
    assert message in body["error"]
    assert took < READ_TIMEOUT * 0.9  # answered, not timed out


@pytest.mark.parametrize(
    ("data", "trickle"),
    [
        (b"", b""),  # connects and says nothing
        (b"GET /api/v1/swi", b""),  # stops in the request line
        (request("PUT", PUT, {**AUTH, "Content-Length": "100"}, b'{"key": 1'), b""),  # short body
        (b"GET /api/v1/switches HTTP/1.1\r\n", b"X-Slow: " + b"a" * 40),  # trickles headers
        (request("PUT", PUT, {**AUTH, "Content-Length": "60"}), b'{"key": 1, ' * 5),  # and body
    ],
)
def test_slow_or_stalled_requests_get_408_in_bounded_time(
    server: ApiServer, data: bytes, trickle: bytes
) -> None:
    status, body, took = exchange(server, data, pause=READ_TIMEOUT / 8, trickle=trickle)
    assert status == 408
    assert "did not arrive" in body["error"]
    assert took < READ_TIMEOUT + 1.0


def test_a_good_request_still_works_byte_by_byte(server: ApiServer) -> None:
    data = request("PUT", PUT, {**AUTH, "Content-Length": "23"}, b'{"key": 1, "value": {}}')
    status, body, _ = exchange(server, data[:10], pause=0.001, trickle=data[10:])
    assert (status, body) == (200, {"key": 1, "value": {}})


def test_200_concurrent_requests_all_answered_quickly(server: ApiServer) -> None:
    def one(i: int) -> tuple[int, Any, float]:
        path = MAP + "?key=0" if i % 2 else "/api/v1/switches/1/programs"
        return exchange(server, request("GET", path, AUTH))

    # A few slow clients hold their connections meanwhile.
    stallers = [socket.create_connection(address(server)) for _ in range(5)]
    try:
        barrier = threading.Barrier(200)

        def together(i: int) -> tuple[int, Any, float]:
            barrier.wait()
            return one(i)

        with ThreadPoolExecutor(200) as pool:
            results = list(pool.map(together, range(200)))
    finally:
        for s in stallers:
            s.close()
    assert all(status == 200 for status, _, _ in results)
    for i, (_, body, _) in enumerate(results):
        assert body == ({"key": 0, "value": {"rate": 5}} if i % 2 else [
            {"id": 2, "name": "limit", "runs": 10}])  # fmt: skip
    assert max(took for _, _, took in results) < 5.0


def test_too_many_connections_are_refused_at_once() -> None:
    srv = ApiServer(("127.0.0.1", 0), Api(FakeBackend(), TOKEN), max_connections=2)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    held = [socket.create_connection(address(srv)) for _ in range(2)]
    try:
        time.sleep(0.2)  # the server took both up
        status, body, took = exchange(srv, request("GET", "/api/v1/switches"))
        assert status == 503
        assert "too many" in body["error"]
        assert took < 1.0
    finally:
        for s in held:
            s.close()
        srv.shutdown()
        srv.server_close()
