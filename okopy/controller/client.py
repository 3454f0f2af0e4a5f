"""A small client of the controller's HTTP API, for `okopy prog` and `okopy map`."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any
from urllib.parse import quote


class ApiClientError(RuntimeError):
    """The API refused or could not be reached; the message says why."""


class ApiClient:
    def __init__(self, base: str, token: str | None = None, timeout: float = 30.0) -> None:
        self.base = base.rstrip("/")
        self.token = token
        self.timeout = timeout

    def call(self, method: str, path: str, body: Any = None) -> Any:
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.base + path, method=method, data=data)
        req.add_header("Content-Type", "application/json")
        if self.token:
            req.add_header("Authorization", f"Bearer {self.token}")
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as resp:
                return json.loads(resp.read() or b"null")
        except urllib.error.HTTPError as e:
            try:
                message = json.loads(e.read()).get("error", e.reason)
            except (json.JSONDecodeError, AttributeError):
                message = e.reason
            raise ApiClientError(f"{method} {path}: {e.code} {message}") from None
        except (urllib.error.URLError, OSError) as e:
            raise ApiClientError(f"cannot reach the controller API at {self.base}: {e}") from None

    def switches(self) -> Any:
        return self.call("GET", "/api/v1/switches")

    def programs(self, dpid: int) -> Any:
        return self.call("GET", f"/api/v1/switches/{dpid}/programs")

    def maps(self, dpid: int, prog: int) -> Any:
        return self.call("GET", f"/api/v1/switches/{dpid}/programs/{prog}/maps")

    def _map(self, dpid: int, prog: int, name: str) -> str:
        return f"/api/v1/switches/{dpid}/programs/{prog}/maps/{quote(name)}"

    def map_dump(self, dpid: int, prog: int, name: str) -> Any:
        return self.call("GET", self._map(dpid, prog, name))

    def map_get(self, dpid: int, prog: int, name: str, key: Any) -> Any:
        return self.call("GET", self._map(dpid, prog, name) + "?key=" + quote(json.dumps(key)))

    def map_set(self, dpid: int, prog: int, name: str, key: Any, value: Any, flags: str) -> Any:
        body = {"key": key, "value": value, "flags": flags}
        return self.call("PUT", self._map(dpid, prog, name) + "/entries", body)

    def map_delete(self, dpid: int, prog: int, name: str, key: Any) -> Any:
        return self.call("DELETE", self._map(dpid, prog, name) + "/entries", {"key": key})

    def reload(self) -> Any:
        return self.call("POST", "/api/v1/policy/reload")
