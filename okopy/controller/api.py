"""The controller's HTTP JSON API and Prometheus metrics.

Routing, validation and responses are pure functions of a request and a
`Backend` (the running controller, or a fake in tests); `serve()` puts
them behind Python's threading HTTP server.  Anything that changes state,
and any read of map contents, needs `Authorization: Bearer <token>`.
`GET /api/v1/openapi.json` describes every route.

Every request is answered, at once, and within a bound: a malformed one
with a 4xx and a JSON `{"error": ...}` naming what is wrong (bad
Content-Length, a body over `MAX_BODY` or nested deeper than
`MAX_JSON_DEPTH`, ids out of range, HTTP/0.9), one that does not arrive
within `READ_TIMEOUT` seconds with 408.
"""

from __future__ import annotations

import hmac
import json
import logging
import re
import socket
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, BinaryIO, Protocol
from urllib.parse import parse_qs, unquote

from okopy import __version__
from okopy.bpf.btf import parse_entry_text
from okopy.controller.endpoint import TOKEN_ENV, TOKEN_FLAG

log = logging.getLogger("okopy.controller.api")

API = "/api/v1"
MAX_BODY = 1 << 20  # bytes of a request body
MAX_JSON_DEPTH = 32  # nesting of arrays and objects in a body or ?key=
READ_TIMEOUT = 5.0  # seconds for a whole request (line, headers, body) to arrive
MAX_CONNECTIONS = 256  # served at once; more are answered 503 at once
UPDATE_FLAGS = ("any", "noexist", "exist")
# Ids as the wire carries them: datapath ids are 64 bits, program ids 32.
ID_BITS = {"dpid": 64, "prog": 32}


class ApiError(Exception):
    """An error answer: HTTP status and a message for the client."""

    def __init__(self, status: HTTPStatus, message: str) -> None:
        self.status = status
        super().__init__(message)


class Backend(Protocol):
    """What the API needs from the controller."""

    def switches(self) -> list[dict[str, Any]]: ...
    def programs(self, dpid: int) -> list[dict[str, Any]]: ...
    def maps(self, dpid: int, prog_id: int) -> list[dict[str, Any]]: ...
    def map_dump(self, dpid: int, prog_id: int, map_name: str) -> list[dict[str, Any]]: ...
    def map_lookup(self, dpid: int, prog_id: int, map_name: str, key: Any) -> Any: ...
    def map_update(
        self, dpid: int, prog_id: int, map_name: str, key: Any, value: Any, flags: str
    ) -> None: ...
    def map_delete(self, dpid: int, prog_id: int, map_name: str, key: Any) -> bool: ...
    def reload(self) -> dict[str, Any]: ...

    def diff(self) -> dict[str, Any]: ...
    def metrics(self) -> str: ...


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes = b""


@dataclass
class Response:
    status: HTTPStatus
    body: bytes
    content_type: str = "application/json"
    headers: dict[str, str] = field(default_factory=dict)


def _json(status: HTTPStatus, obj: Any) -> Response:
    return Response(status, (json.dumps(obj, indent=1) + "\n").encode())


Handler = Callable[["Api", Request, dict[str, str]], Response]


@dataclass(frozen=True)
class Route:
    method: str
    pattern: str
    handler: Handler
    summary: str
    mutates: bool = False
    body: dict[str, Any] | None = None

    reads_secrets: bool = False  # map contents: the token is needed to read them

    @property
    def needs_token(self) -> bool:
        return self.mutates or self.reads_secrets

    def match(self, method: str, path: str) -> dict[str, str] | None:
        if method != self.method:
            return None
        rx = "^" + re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", self.pattern) + "$"
        m = re.match(rx, path)
        return {k: unquote(v) for k, v in m.groupdict().items()} if m else None


def _int(params: dict[str, str], name: str) -> int:
    """Path parameter 'name' as an id: decimal or 0x-hex, in its wire range."""
    try:
        n = int(params[name], 0)
    except ValueError:
        raise ApiError(HTTPStatus.BAD_REQUEST, f"{name} {params[name]!r} is not a number") from None
    top = (1 << ID_BITS[name]) - 1
    if not 0 <= n <= top:
        raise ApiError(HTTPStatus.BAD_REQUEST, f"{name} {params[name]} is out of range 0..{top}")
    return n


_JSON_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"')
_JSON_NESTING = re.compile(rb"[\[\]{}]")


def json_depth(raw: bytes) -> int:
    """How deeply arrays and objects nest in JSON text 'raw' (brackets
    inside strings do not count)."""
    depth = deepest = 0
    for m in _JSON_NESTING.finditer(_JSON_STRING.sub(b"", raw)):
        depth += 1 if m.group() in (b"[", b"{") else -1
        deepest = max(deepest, depth)
    return deepest


def parse_json(raw: bytes, what: str, *, bare: bool = False) -> Any:
    """JSON text -> object; ApiError 400 naming 'what' when it is not JSON
    or nests deeper than MAX_JSON_DEPTH.  With 'bare', text that is not
    JSON may be a bare string, as `?key=10.0.0.1` (see parse_entry_text)."""
    if json_depth(raw) > MAX_JSON_DEPTH:
        raise ApiError(HTTPStatus.BAD_REQUEST, f"{what} nests deeper than {MAX_JSON_DEPTH} levels")
    try:
        return parse_entry_text(raw.decode()) if bare else json.loads(raw)
    except (ValueError, UnicodeDecodeError) as e:
        raise ApiError(HTTPStatus.BAD_REQUEST, f"{what} is not JSON: {e}") from None
    except RecursionError:
        raise ApiError(HTTPStatus.BAD_REQUEST, f"{what} nests too deeply") from None


def _body(
    req: Request, required: tuple[str, ...], optional: tuple[str, ...] = ()
) -> dict[str, Any]:
    if len(req.body) > MAX_BODY:
        raise ApiError(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, f"body over {MAX_BODY} bytes")
    obj = parse_json(req.body or b"null", "body")
    if not isinstance(obj, dict):
        raise ApiError(HTTPStatus.BAD_REQUEST, "body must be a JSON object")
    unknown = sorted(set(obj) - set(required) - set(optional))
    if unknown:
        raise ApiError(HTTPStatus.BAD_REQUEST, f"unknown field {unknown[0]!r}")
    missing = [k for k in required if k not in obj]
    if missing:
        raise ApiError(HTTPStatus.BAD_REQUEST, f"missing field {missing[0]!r}")
    return obj


class Api:
    def __init__(self, backend: Backend, token: str | None) -> None:
        self.backend = backend
        self.token = token

    def handle(self, req: Request) -> Response:
        try:
            for route in ROUTES:
                params = route.match(req.method, req.path.rstrip("/") or "/")
                if params is None:
                    continue
                if route.needs_token:
                    self._authorize(req, route)
                return route.handler(self, req, params)
            if any(r.match(m, req.path.rstrip("/")) is not None for r in ROUTES
                   for m in ("GET", "PUT", "POST", "DELETE")):  # fmt: skip
                raise ApiError(HTTPStatus.METHOD_NOT_ALLOWED, f"{req.method} not allowed here")
            raise ApiError(HTTPStatus.NOT_FOUND, f"no such resource: {req.path}")
        except ApiError as e:
            return _json(e.status, {"error": str(e)})
        except LookupError as e:
            return _json(HTTPStatus.NOT_FOUND, {"error": str(e).strip("'\"")})
        except ValueError as e:
            return _json(HTTPStatus.BAD_REQUEST, {"error": str(e)})
        except TimeoutError as e:
            return _json(HTTPStatus.GATEWAY_TIMEOUT, {"error": str(e)})
        except ConnectionError as e:
            return _json(HTTPStatus.SERVICE_UNAVAILABLE, {"error": str(e)})
        except Exception:
            # A bug, not the client's fault: it still gets an answer.
            log.exception("API: %s %s failed", req.method, req.path)
            error = "internal error; the controller's log has the details"
            return _json(HTTPStatus.INTERNAL_SERVER_ERROR, {"error": error})

    def _authorize(self, req: Request, route: Route) -> None:
        if self.token is None:
            if not route.mutates:
                return  # without a token the API is read-only, and reads are open
            raise ApiError(
                HTTPStatus.FORBIDDEN,
                f"changes are disabled: start the controller with {TOKEN_FLAG} FILE "
                f"(or {TOKEN_ENV}=FILE)",
            )
        given = req.headers.get("authorization", "")
        if not given.startswith("Bearer ") or not hmac.compare_digest(
            given[7:].encode(), self.token.encode()
        ):
            raise ApiError(
                HTTPStatus.UNAUTHORIZED,
                "missing or wrong bearer token (Authorization: Bearer <the controller's "
                f"{TOKEN_FLAG}>)",
            )

    # Handlers ------------------------------------------------------------------

    def get_switches(self, req: Request, p: dict[str, str]) -> Response:
        return _json(HTTPStatus.OK, self.backend.switches())

    def get_programs(self, req: Request, p: dict[str, str]) -> Response:
        return _json(HTTPStatus.OK, self.backend.programs(_int(p, "dpid")))

    def get_maps(self, req: Request, p: dict[str, str]) -> Response:
        return _json(HTTPStatus.OK, self.backend.maps(_int(p, "dpid"), _int(p, "prog")))

    def get_map(self, req: Request, p: dict[str, str]) -> Response:
        dpid, pid = _int(p, "dpid"), _int(p, "prog")
        if "key" in req.query:
            key = parse_json(req.query["key"].encode(), "query key", bare=True)
            value = self.backend.map_lookup(dpid, pid, p["map"], key)
            if value is None:
                raise ApiError(HTTPStatus.NOT_FOUND, f"no entry {req.query['key']} in {p['map']}")
            return _json(HTTPStatus.OK, {"key": key, "value": value})
        return _json(HTTPStatus.OK, self.backend.map_dump(dpid, pid, p["map"]))

    def put_entry(self, req: Request, p: dict[str, str]) -> Response:
        b = _body(req, ("key", "value"), ("flags",))
        flags = b.get("flags", "any")
        if flags not in UPDATE_FLAGS:
            raise ApiError(
                HTTPStatus.BAD_REQUEST, f"flags must be one of {', '.join(UPDATE_FLAGS)}"
            )
        dpid, pid = _int(p, "dpid"), _int(p, "prog")
        self.backend.map_update(dpid, pid, p["map"], b["key"], b["value"], flags)
        return _json(HTTPStatus.OK, {"key": b["key"], "value": b["value"]})

    def delete_entry(self, req: Request, p: dict[str, str]) -> Response:
        b = _body(req, ("key",))
        if not self.backend.map_delete(_int(p, "dpid"), _int(p, "prog"), p["map"], b["key"]):
            raise ApiError(HTTPStatus.NOT_FOUND, f"no entry {json.dumps(b['key'])} in {p['map']}")
        return _json(HTTPStatus.OK, {"deleted": b["key"]})

    def post_reload(self, req: Request, p: dict[str, str]) -> Response:
        return _json(HTTPStatus.OK, self.backend.reload())

    def get_diff(self, req: Request, p: dict[str, str]) -> Response:
        return _json(HTTPStatus.OK, self.backend.diff())

    def get_metrics(self, req: Request, p: dict[str, str]) -> Response:
        return Response(HTTPStatus.OK, self.backend.metrics().encode(),
                        "text/plain; version=0.0.4")  # fmt: skip

    def get_openapi(self, req: Request, p: dict[str, str]) -> Response:
        return _json(HTTPStatus.OK, openapi())


_MAP = API + "/switches/{dpid}/programs/{prog}/maps/{map}"
ROUTES: tuple[Route, ...] = (
    Route("GET", API + "/switches", Api.get_switches, "Switches in the policy and their state"),
    Route("GET", API + "/switches/{dpid}/programs", Api.get_programs,
          "Programs loaded on a switch, with statistics"),
    Route("GET", API + "/switches/{dpid}/programs/{prog}/maps", Api.get_maps,
          "A program's maps as the switch reports them, with their entry counts"),
    Route("GET", _MAP, Api.get_map,
          "All entries of a map, typed through BTF; with ?key=JSON, one entry. "
          "Needs the token when the controller has one", reads_secrets=True),
    Route("PUT", _MAP + "/entries", Api.put_entry, "Create or replace a map entry", True,
          {"key": "any", "value": "any", "flags": "any|noexist|exist"}),
    Route("DELETE", _MAP + "/entries", Api.delete_entry, "Delete a map entry", True,
          {"key": "any"}),
    Route("POST", API + "/policy/reload", Api.post_reload,
          "Reload the policy file and apply only the difference", True),
    Route("GET", API + "/policy/diff", Api.get_diff,
          "What reloading the policy file would change on each switch, read from the "
          "switches now (map entries typed through BTF); changes nothing. Needs the token "
          "when the controller has one", reads_secrets=True),
    Route("GET", "/metrics", Api.get_metrics, "Prometheus metrics"),
    Route("GET", API + "/openapi.json", Api.get_openapi, "This document"),
)  # fmt: skip


def openapi() -> dict[str, Any]:
    paths: dict[str, Any] = {}
    for r in ROUTES:
        op: dict[str, Any] = {
            "summary": r.summary,
            "parameters": [
                {"name": n, "in": "path", "required": True, "schema": {"type": "string"}}
                for n in re.findall(r"\{(\w+)\}", r.pattern)
            ],
            "responses": {
                "200": {"description": "OK"},
                "400": {"description": "malformed request (bad id, Content-Length, JSON, "
                                       "HTTP/0.9): the body says what is wrong"},
                "404": {"description": "no such switch, program, map or entry"},
                "408": {"description": f"the request did not arrive in {READ_TIMEOUT:g} s"},
                "503": {"description": "switch not connected, or too many connections"},
                "504": {"description": "the switch did not answer in time"},
            },
        }  # fmt: skip
        if r.needs_token:
            op["security"] = [{"bearer": []}]
            op["responses"]["401"] = {"description": "missing or wrong token"}
        if r.mutates:
            op["responses"]["403"] = {"description": "changes disabled: no token configured"}
        if r.body:
            op["responses"]["413"] = {"description": f"body over {MAX_BODY} bytes"}
            op["requestBody"] = {
                "required": True,
                "content": {"application/json": {"schema": {
                    "type": "object",
                    "properties": {k: {"description": v} for k, v in r.body.items()},
                    "required": [k for k in r.body if k != "flags"],
                    "additionalProperties": False,
                }}},
            }  # fmt: skip
        if r.pattern.endswith("/maps/{map}"):
            op["parameters"].append(
                {"name": "key", "in": "query", "required": False, "schema": {"type": "string"}}
            )
        paths.setdefault(r.pattern, {})[r.method.lower()] = op
    return {
        "openapi": "3.0.3",
        "info": {
            "title": "okopy controller API",
            "version": __version__,
            "description": (
                "Changes (PUT, DELETE, POST) and reads of map contents (GET .../maps/{map}) "
                f"need `Authorization: Bearer <token>` (the controller's {TOKEN_FLAG}, or "
                f"{TOKEN_ENV}; okopy's clients send the token in theirs). "
                "Without a configured token, changes are refused (403) and every read is "
                "open. Listings (switches, programs, a program's maps with entry counts), "
                "metrics and this document need no token. Limits: a body of at most "
                f"{MAX_BODY} bytes, JSON nested at most {MAX_JSON_DEPTH} levels, a request "
                f"that arrives within {READ_TIMEOUT:g} s, program ids 0..2^32-1, datapath "
                'ids 0..2^64-1; errors are JSON objects {"error": text}.'
            ),
        },
        "components": {"securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}}},
        "paths": paths,
    }


class _DeadlineReader:
    """A request's input stream whose every read ends by the request's
    deadline: a client that trickles or stalls cannot hold its thread
    longer than READ_TIMEOUT (the socket's own timeout restarts with each
    byte, so it alone does not bound a request)."""

    def __init__(self, raw: BinaryIO, sock: socket.socket) -> None:
        self.raw = raw
        self.sock = sock
        self.deadline = time.monotonic() + READ_TIMEOUT

    def _arm(self) -> None:
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError("request deadline passed")
        self.sock.settimeout(left)

    def readline(self, size: int = -1) -> bytes:
        limit = size if size >= 0 else MAX_BODY
        out = bytearray()
        while len(out) < limit:
            self._arm()
            ahead = self.raw.peek(1)[: limit - len(out)]  # type: ignore[attr-defined]
            if not ahead:
                break
            end = ahead.find(b"\n")
            out += self.raw.read(len(ahead) if end < 0 else end + 1)
            if end >= 0:
                break
        return bytes(out)

    def close(self) -> None:
        self.raw.close()

    def read(self, size: int) -> bytes:
        """Up to 'size' bytes: fewer only at the end of the stream."""
        out = bytearray()
        while len(out) < size:
            self._arm()
            chunk = self.raw.read1(min(size - len(out), 1 << 16))  # type: ignore[attr-defined]
            if not chunk:
                break
            out += chunk
        return bytes(out)


_CONTENT_LENGTH = re.compile(r"[0-9]{1,19}")


class _Handler(BaseHTTPRequestHandler):
    """One connection, one request (HTTP/1.0), always one answer."""

    server: ApiServer
    rfile: Any
    server_version = f"okopy/{__version__}"
    timeout = READ_TIMEOUT  # the socket's, until the deadline reader takes over

    def setup(self) -> None:
        super().setup()
        self.rfile = _DeadlineReader(self.rfile, self.connection)

    def handle_one_request(self) -> None:
        self.close_connection = True
        self.request_version = "HTTP/1.0"  # answers always carry a status line
        self.requestline = self.command = ""
        self.rfile.deadline = time.monotonic() + READ_TIMEOUT
        try:
            resp = self._read_and_handle()
        except TimeoutError:
            error = f"the request did not arrive within {READ_TIMEOUT:g} s"
            resp = _json(HTTPStatus.REQUEST_TIMEOUT, {"error": error})
        except ApiError as e:
            resp = _json(e.status, {"error": str(e)})
        if resp is not None:
            self._answer(resp)

    def _read_and_handle(self) -> Response | None:
        self.raw_requestline = self.rfile.readline(65537)
        if not self.raw_requestline:
            return None  # the client left without asking
        if len(self.raw_requestline) > 65536:
            raise ApiError(HTTPStatus.REQUEST_URI_TOO_LONG, "request line over 65536 bytes")
        if len(self.raw_requestline.split()) == 2:
            error = "HTTP/0.9 requests are not supported: send HTTP/1.0 or HTTP/1.1"
            raise ApiError(HTTPStatus.BAD_REQUEST, error)
        if not self.parse_request():
            return None  # parse_request() answered through send_error()
        if self.headers.get("Transfer-Encoding"):
            raise ApiError(HTTPStatus.LENGTH_REQUIRED,
                           "Transfer-Encoding is not supported: send Content-Length")  # fmt: skip
        lengths = {v.strip() for v in self.headers.get_all("Content-Length") or []}
        if len(lengths) > 1:
            raise ApiError(HTTPStatus.BAD_REQUEST, "conflicting Content-Length headers")
        length = 0
        if lengths:
            (text,) = lengths
            if not _CONTENT_LENGTH.fullmatch(text):
                raise ApiError(HTTPStatus.BAD_REQUEST,
                               f"Content-Length {text!r} is not a number of bytes")  # fmt: skip
            length = int(text)
        if length > MAX_BODY:
            raise ApiError(HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
                           f"body of {length} bytes is over the limit of {MAX_BODY}")  # fmt: skip
        body = self.rfile.read(length)
        if len(body) < length:
            raise ApiError(HTTPStatus.BAD_REQUEST,
                           f"the body ended after {len(body)} of {length} bytes")  # fmt: skip
        path, _, qs = self.path.partition("?")
        query = {k: v[-1] for k, v in parse_qs(qs).items()}
        headers = {k.lower(): v for k, v in self.headers.items()}
        return self.server.api.handle(Request(self.command, path, query, headers, body))

    def _answer(self, resp: Response) -> None:
        self.connection.settimeout(READ_TIMEOUT)  # for the client to take the answer
        self.request_version = "HTTP/1.0"  # so http.server writes a status line, even to 0.9
        try:
            self.send_response(resp.status)
            self.send_header("Content-Type", resp.content_type)
            self.send_header("Content-Length", str(len(resp.body)))
            for k, v in resp.headers.items():
                self.send_header(k, v)
            self.end_headers()
            self.wfile.write(resp.body)
        except OSError as e:
            log.debug("API: answer to %s not delivered: %s", self.client_address[0], e)

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """http.server's own refusals (bad request line, headers), as JSON."""
        status = HTTPStatus(code)
        self.close_connection = True
        self._answer(_json(status, {"error": message or status.phrase}))

    def log_message(self, format: str, *args: Any) -> None:
        pass


class ApiServer(ThreadingHTTPServer):
    """A thread per connection, at most MAX_CONNECTIONS at once."""

    daemon_threads = True
    # The listen backlog: a burst of clients waits in the queue rather than
    # having its SYNs dropped and retried seconds later.
    request_queue_size = 1024

    def __init__(
        self,
        address: tuple[str, int],
        api: Api,
        max_connections: int = MAX_CONNECTIONS,
        sock: socket.socket | None = None,
    ) -> None:
        """Serve on 'address', or on 'sock' when given: a socket that is
        already listening (e.g. inherited from `okopy lab`)."""
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        super().__init__(address, _Handler, bind_and_activate=sock is None)
        if sock is not None:
            self.socket.close()
            self.socket = sock
            self.server_address = sock.getsockname()[:2]
        self.api = api
        self._slots = threading.BoundedSemaphore(max_connections)

    def process_request(self, request: Any, client_address: Any) -> None:
        if not self._slots.acquire(blocking=False):
            body = json.dumps({"error": "too many connections; try again"}).encode()
            try:
                request.settimeout(1.0)
                request.sendall(b"HTTP/1.0 503 Service Unavailable\r\n"
                                b"Content-Type: application/json\r\nContent-Length: "
                                + str(len(body)).encode() + b"\r\n\r\n" + body)  # fmt: skip
            except OSError:
                pass
            self.shutdown_request(request)
            return
        try:
            super().process_request(request, client_address)
        except BaseException:
            self._slots.release()
            raise

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self._slots.release()

    def handle_error(self, request: Any, client_address: Any) -> None:
        log.warning("API: connection from %s failed: %s", client_address[0], sys.exc_info()[1])


def serve(api: Api, host: str, port: int, sock: socket.socket | None = None) -> ApiServer:
    """Serve 'api' on host:port, or on the listening 'sock', from a daemon
    thread; returns the server (shutdown())."""
    server = ApiServer((host, port), api, sock=sock)
    threading.Thread(target=server.serve_forever, daemon=True, name="okopy-api").start()
    return server
