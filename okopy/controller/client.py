"""A small client of the controller's HTTP API, for `okopy prog` and `okopy map`.

Where the API is and which token it takes come from okopy.controller.endpoint
(flags or environment); a refusal (401, 403) says how to give the token.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any
from urllib.parse import quote

from okopy.controller.endpoint import TOKEN_ENV, TOKEN_FLAG


class ApiClientError(RuntimeError):
    """The API refused or could not be reached; the message says why."""


def refusal_hint(status: int, token_from: str | None) -> str:
    """What to do about a 401, given where our token came from (None: we
    sent none); empty for other statuses."""
    if status == 401 and token_from is None:
        return (f"; this needs the controller's token: give {TOKEN_FLAG} FILE "
                f"or set {TOKEN_ENV}")  # fmt: skip
    if status == 401:
        return (f"; the token from {token_from} is not the controller's: give the file the "
                f"controller was started with ({TOKEN_FLAG} FILE or {TOKEN_ENV})")  # fmt: skip
    return ""  # a 403 is the controller's own word: it says what to do


class ApiClient:
    def __init__(
        self,
        base: str,
        token: str | None = None,
        timeout: float = 30.0,
        token_from: str | None = None,
        base_from: str | None = None,
    ) -> None:
        """'base': the API's base URL; 'token_from' and 'base_from' say where
        'token' and 'base' came from, for messages (e.g. "--api-token-file t")."""
        self.base = base.rstrip("/")
        self.base_from = base_from
        self.token = token
        self.token_from = token_from or ("the caller" if token else None)
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
            hint = refusal_hint(e.code, self.token_from)
            raise ApiClientError(f"{method} {path}: {e.code} {message}{hint}") from None
        except (urllib.error.URLError, OSError) as e:
            reason = e.reason if isinstance(e, urllib.error.URLError) else e
            where = f" ({self.base_from})" if self.base_from else ""
            raise ApiClientError(
                f"cannot reach the controller API at {self.base}{where}: {reason}"
            ) from None

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

    def diff(self) -> Any:
        return self.call("GET", "/api/v1/policy/diff")
