"""The controller's HTTP JSON API and Prometheus metrics.

Routing, validation and responses are pure functions of a request and a
`Backend` (the running controller, or a fake in tests); `serve()` puts
them behind Python's threading HTTP server.  Anything that changes state
needs `Authorization: Bearer <token>`.  `GET /api/v1/openapi.json`
describes every route.
"""

from __future__ import annotations

import hmac
import json
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Protocol
from urllib.parse import parse_qs

from okopy import __version__

API = "/api/v1"
MAX_BODY = 1 << 20
UPDATE_FLAGS = ("any", "noexist", "exist")


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

    def match(self, method: str, path: str) -> dict[str, str] | None:
        if method != self.method:
            return None
        rx = "^" + re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", self.pattern) + "$"
        m = re.match(rx, path)
        return m.groupdict() if m else None


def _int(params: dict[str, str], name: str) -> int:
    try:
        return int(params[name], 0)
    except ValueError:
        raise ApiError(HTTPStatus.BAD_REQUEST, f"{name} {params[name]!r} is not a number") from None


def _body(
    req: Request, required: tuple[str, ...], optional: tuple[str, ...] = ()
) -> dict[str, Any]:
    if len(req.body) > MAX_BODY:
        raise ApiError(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, f"body over {MAX_BODY} bytes")
    try:
        obj = json.loads(req.body or b"null")
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ApiError(HTTPStatus.BAD_REQUEST, f"body is not JSON: {e}") from None
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
                if route.mutates:
                    self._authorize(req)
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

    def _authorize(self, req: Request) -> None:
        if self.token is None:
            raise ApiError(
                HTTPStatus.FORBIDDEN, "changes are disabled: start with --api-token-file"
            )
        given = req.headers.get("authorization", "")
        if not given.startswith("Bearer ") or not hmac.compare_digest(
            given[7:].encode(), self.token.encode()
        ):
            raise ApiError(HTTPStatus.UNAUTHORIZED, "missing or wrong bearer token")

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
            try:
                key = json.loads(req.query["key"])
            except json.JSONDecodeError:
                raise ApiError(HTTPStatus.BAD_REQUEST, "query key must be JSON") from None
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
          "All entries of a map, typed through BTF; with ?key=JSON, one entry"),
    Route("PUT", _MAP + "/entries", Api.put_entry, "Create or replace a map entry", True,
          {"key": "any", "value": "any", "flags": "any|noexist|exist"}),
    Route("DELETE", _MAP + "/entries", Api.delete_entry, "Delete a map entry", True,
          {"key": "any"}),
    Route("POST", API + "/policy/reload", Api.post_reload,
          "Reload the policy file and apply only the difference", True),
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
                "400": {"description": "malformed request: the body says what is wrong"},
                "404": {"description": "no such switch, program, map or entry"},
            },
        }
        if r.mutates:
            op["security"] = [{"bearer": []}]
            op["responses"]["401"] = {"description": "missing or wrong token"}
        if r.body:
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
        "info": {"title": "okopy controller API", "version": __version__},
        "components": {"securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}}},
        "paths": paths,
    }


def serve(api: Api, host: str, port: int) -> ThreadingHTTPServer:
    """Serve 'api' from a daemon thread; returns the server (shutdown())."""

    class H(BaseHTTPRequestHandler):
        server_version = f"okopy/{__version__}"

        def _go(self) -> None:
            path, _, qs = self.path.partition("?")
            query = {k: v[-1] for k, v in parse_qs(qs).items()}
            length = int(self.headers.get("Content-Length") or 0)
            if length > MAX_BODY:
                resp = _json(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, {"error": "body too large"})
            else:
                body = self.rfile.read(length) if length else b""
                headers = {k.lower(): v for k, v in self.headers.items()}
                resp = api.handle(Request(self.command, path, query, headers, body))
            self.send_response(resp.status)
            self.send_header("Content-Type", resp.content_type)
            self.send_header("Content-Length", str(len(resp.body)))
            self.end_headers()
            self.wfile.write(resp.body)

        do_GET = do_PUT = do_POST = do_DELETE = _go

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer((host, port), H)
    threading.Thread(target=server.serve_forever, daemon=True, name="okopy-api").start()
    return server
