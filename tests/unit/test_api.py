"""The HTTP API against a fake controller: routes, tokens, bad input."""

from __future__ import annotations

import json
import re
import struct
import urllib.error
import urllib.request
from http import HTTPStatus
from pathlib import Path
from typing import Any

import pytest

from okopy.controller import api as apimod
from okopy.controller import metrics
from okopy.controller.api import Api, Request, serve

TOKEN = "s3cret"


class FakeBackend:
    def __init__(self) -> None:
        self.tables: dict[tuple[int, int, str], dict[str, Any]] = {
            (1, 2, "config"): {"0": {"rate": 5}}
        }
        self.reloads = 0

    def switches(self) -> list[dict[str, Any]]:
        return [{"dpid": 1, "name": "s1", "connected": True}]

    def programs(self, dpid: int) -> list[dict[str, Any]]:
        if dpid != 1:
            raise LookupError(f"no switch {dpid:#x}")
        return [{"id": 2, "name": "limit", "runs": 10}]

    def maps(self, dpid: int, prog_id: int) -> list[dict[str, Any]]:
        if (dpid, prog_id) != (1, 2):
            raise LookupError(f"no program {prog_id} on switch {dpid:#x}")
        return [{"name": name, "entries": len(m)} for (_, _, name), m in self.tables.items()]

    def _map(self, dpid: int, prog: int, name: str) -> dict[str, Any]:
        try:
            return self.tables[dpid, prog, name]
        except KeyError:
            raise LookupError(f"no map {name} in program {prog}") from None

    def map_dump(self, dpid: int, prog_id: int, map_name: str) -> list[dict[str, Any]]:
        return [
            {"key": json.loads(k), "value": v}
            for k, v in self._map(dpid, prog_id, map_name).items()
        ]

    def map_lookup(self, dpid: int, prog_id: int, map_name: str, key: Any) -> Any:
        return self._map(dpid, prog_id, map_name).get(json.dumps(key))

    def map_update(
        self, dpid: int, prog_id: int, map_name: str, key: Any, value: Any, flags: str
    ) -> None:
        m = self._map(dpid, prog_id, map_name)
        if not isinstance(value, dict):
            raise ValueError("value: expected an object")
        m[json.dumps(key)] = value

    def map_delete(self, dpid: int, prog_id: int, map_name: str, key: Any) -> bool:
        return self._map(dpid, prog_id, map_name).pop(json.dumps(key), None) is not None

    def reload(self) -> dict[str, Any]:
        self.reloads += 1
        return {"reloaded": "p.yaml", "switches": ["s1"]}

    def diff(self) -> dict[str, Any]:
        return {"policy": "p.yaml", "switches": [
            {"name": "s1", "dpid": 1, "connected": True, "summary": "1 write map entry",
             "changes": [{"change": "write map entry", "prog": 2, "map": "config",
                          "key": 0, "value": {"rate": 6}}]},
        ]}  # fmt: skip

    def metrics(self) -> str:
        return "okopy_up 1\n"


@pytest.fixture
def api() -> tuple[Api, FakeBackend]:
    b = FakeBackend()
    return Api(b, TOKEN), b


def call(api: Api, method: str, path: str, body: Any = None, token: str | None = TOKEN,
         query: dict[str, str] | None = None, raw: bytes | None = None) -> tuple[int, Any]:  # fmt: skip
    headers = {"authorization": f"Bearer {token}"} if token else {}
    data = raw if raw is not None else (json.dumps(body).encode() if body is not None else b"")
    resp = api.handle(Request(method, path, query or {}, headers, data))
    if resp.content_type == "application/json":
        return resp.status, json.loads(resp.body)
    return resp.status, resp.body.decode()


MAP = "/api/v1/switches/1/programs/2/maps/config"


def test_listings_need_no_token(api: tuple[Api, FakeBackend]) -> None:
    a, _ = api
    assert call(a, "GET", "/api/v1/switches", token=None)[0] == HTTPStatus.OK
    assert call(a, "GET", "/api/v1/switches/1/programs", token=None)[1][0]["name"] == "limit"
    maps = call(a, "GET", "/api/v1/switches/1/programs/2/maps", token=None)
    assert maps == (200, [{"name": "config", "entries": 1}])
    assert call(a, "GET", "/metrics", token=None) == (200, "okopy_up 1\n")
    assert call(a, "GET", "/api/v1/openapi.json", token=None)[0] == HTTPStatus.OK


@pytest.mark.parametrize("token", [None, "wrong"])
@pytest.mark.parametrize("query", [{}, {"key": "0"}])
def test_map_contents_need_the_token(
    api: tuple[Api, FakeBackend], token: str | None, query: dict[str, str]
) -> None:
    a, _ = api
    status, out = call(a, "GET", MAP, token=token, query=query)
    assert status == HTTPStatus.UNAUTHORIZED
    assert "token" in out["error"]
    assert "rate" not in json.dumps(out)


def test_map_contents_with_the_token(api: tuple[Api, FakeBackend]) -> None:
    a, _ = api
    assert call(a, "GET", MAP) == (200, [{"key": 0, "value": {"rate": 5}}])
    assert call(a, "GET", MAP, query={"key": "0"}) == (200, {"key": 0, "value": {"rate": 5}})


def test_query_key_may_be_bare(api: tuple[Api, FakeBackend]) -> None:
    """?key=10.0.0.1 is the string "10.0.0.1", as ?key=%2210.0.0.1%22."""
    a, b = api
    b.tables[1, 2, "config"]['"10.0.0.1"'] = {"rate": 7}
    for key in ("10.0.0.1", '"10.0.0.1"'):
        got = call(a, "GET", MAP, query={"key": key})
        assert got == (200, {"key": "10.0.0.1", "value": {"rate": 7}})


def test_without_a_token_configured_reads_are_open() -> None:
    a = Api(FakeBackend(), None)
    assert call(a, "GET", MAP, token=None) == (200, [{"key": 0, "value": {"rate": 5}}])


def test_update_and_delete(api: tuple[Api, FakeBackend]) -> None:
    a, b = api
    assert call(a, "PUT", MAP + "/entries", {"key": 0, "value": {"rate": 9}})[0] == 200
    assert b.tables[1, 2, "config"]["0"] == {"rate": 9}
    assert call(a, "DELETE", MAP + "/entries", {"key": 0})[0] == 200
    assert call(a, "DELETE", MAP + "/entries", {"key": 0})[0] == HTTPStatus.NOT_FOUND
    assert call(a, "POST", "/api/v1/policy/reload")[1] == {"reloaded": "p.yaml", "switches": ["s1"]}


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("PUT", MAP + "/entries", {"key": 0, "value": {"rate": 1}}),
        ("DELETE", MAP + "/entries", {"key": 0}),
        ("POST", "/api/v1/policy/reload", None),
    ],
)
@pytest.mark.parametrize("token", [None, "wrong"])
def test_changes_need_the_token(api: tuple[Api, FakeBackend], method: str, path: str,
                                body: Any, token: str | None) -> None:  # fmt: skip
    a, b = api
    status, out = call(a, method, path, body, token=token)
    assert status == HTTPStatus.UNAUTHORIZED
    assert "token" in out["error"]
    assert b.tables[1, 2, "config"] == {"0": {"rate": 5}}
    assert b.reloads == 0


def test_no_token_configured_means_read_only() -> None:
    a = Api(FakeBackend(), None)
    status, out = call(a, "PUT", MAP + "/entries", {"key": 0, "value": {}})
    assert status == HTTPStatus.FORBIDDEN
    assert "disabled" in out["error"]


@pytest.mark.parametrize(
    ("raw", "status", "message"),
    [
        (b"{nope", 400, "body is not JSON"),
        (b"[1]", 400, "must be a JSON object"),
        (b'{"key": 0}', 400, "missing field 'value'"),
        (b'{"key": 0, "value": {}, "extra": 1}', 400, "unknown field 'extra'"),
        (b'{"key": 0, "value": {}, "flags": "maybe"}', 400, "flags must be one of"),
        (b'{"key": 0, "value": 5}', 400, "expected an object"),
        (b"\xff\xfe", 400, "body is not JSON"),
        (b'{"key": ' + b"[" * 100_000 + b"]" * 100_000 + b', "value": {}}', 400, "nests deeper"),
        (b'{"key": "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[", "value": {}}', 200, ""),
    ],
)
def test_malformed_bodies(
    api: tuple[Api, FakeBackend], raw: bytes, status: int, message: str
) -> None:
    a, b = api
    got, out = call(a, "PUT", MAP + "/entries", raw=raw)
    assert got == status
    if status == 200:
        return  # brackets inside strings are not nesting
    assert message in out["error"]
    assert b.tables[1, 2, "config"] == {"0": {"rate": 5}}


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        ("GET", "/api/v1/nothing", 404),
        ("GET", "/api/v1/switches/zz/programs", 400),
        ("GET", "/api/v1/switches/7/programs", 404),
        ("GET", "/api/v1/switches/1/programs/2/maps/nomap", 404),
        ("GET", "/api/v1/switches/1/programs/9/maps", 404),
        ("PATCH", "/api/v1/switches", 405),
        ("GET", "/api/v1/switches/1/programs/-1/maps", 400),
        ("GET", "/api/v1/switches/1/programs/1099511627776/maps", 400),
        ("GET", "/api/v1/switches/1/programs/4294967296/maps", 400),
        ("GET", "/api/v1/switches/-1/programs", 400),
        ("GET", "/api/v1/switches/18446744073709551616/programs", 400),
        ("GET", MAP + "?key=" + "[" * 100_000, 400),
        ("GET", MAP + "?key={nope", 400),
    ],
)
def test_errors(api: tuple[Api, FakeBackend], method: str, path: str, status: int) -> None:
    path, _, key = path.partition("?key=")
    got, out = call(api[0], method, path, query={"key": key} if key else None)
    assert got == status
    assert out["error"]


def test_ids_at_the_edges_of_their_range(api: tuple[Api, FakeBackend]) -> None:
    a, _ = api
    for path in ("/api/v1/switches/1/programs/4294967295/maps",
                 "/api/v1/switches/0xffffffffffffffff/programs/0/maps"):  # fmt: skip
        status, out = call(a, "GET", path)
        assert status == HTTPStatus.NOT_FOUND, out  # in range: the backend says it is not there


class BrokenBackend(FakeBackend):
    def maps(self, dpid: int, prog_id: int) -> list[dict[str, Any]]:
        raise struct.error("argument out of range")


def test_a_failing_backend_still_answers(caplog: pytest.LogCaptureFixture) -> None:
    status, out = call(Api(BrokenBackend(), TOKEN), "GET", "/api/v1/switches/1/programs/2/maps")
    assert status == HTTPStatus.INTERNAL_SERVER_ERROR
    assert "internal error" in out["error"]
    assert "argument out of range" in caplog.text


# Values for the path parameters and body fields the document names, that
# the FakeBackend holds; a name the document uses and this table lacks fails.
PATH_VALUES = {"dpid": "1", "prog": "2", "map": "config"}
BODY_VALUES: dict[str, Any] = {"key": 0, "value": {"rate": 1}, "flags": "exist"}
METHODS = ("GET", "PUT", "POST", "DELETE", "PATCH")


def operations(doc: dict[str, Any]) -> list[tuple[str, str, str, dict[str, Any]]]:
    """(METHOD, document path, concrete path, operation) for each operation."""
    out = []
    for template, ops in doc["paths"].items():
        names = re.findall(r"\{(\w+)\}", template)
        concrete = template
        for name in names:
            concrete = concrete.replace("{" + name + "}", PATH_VALUES[name])
        for method, op in ops.items():
            declared = {p["name"] for p in op["parameters"] if p["in"] == "path"}
            assert declared == set(names), f"{method} {template}: parameters {declared}"
            out.append((method.upper(), template, concrete, op))
    return out


def body_schema(op: dict[str, Any]) -> dict[str, Any] | None:
    if "requestBody" not in op:
        return None
    schema: dict[str, Any] = op["requestBody"]["content"]["application/json"]["schema"]
    return schema


def served_document() -> dict[str, Any]:
    status, doc = call(Api(FakeBackend(), TOKEN), "GET", "/api/v1/openapi.json", token=None)
    assert status == HTTPStatus.OK
    assert isinstance(doc, dict)
    return doc


def test_openapi_states_the_access_rules() -> None:
    doc = served_document()
    entries = doc["paths"]["/api/v1/switches/{dpid}/programs/{prog}/maps/{map}/entries"]
    assert set(entries) == {"put", "delete"}
    assert entries["put"]["security"] == [{"bearer": []}]
    contents = doc["paths"]["/api/v1/switches/{dpid}/programs/{prog}/maps/{map}"]["get"]
    assert contents["security"] == [{"bearer": []}]
    assert "map contents" in doc["info"]["description"]
    listing = doc["paths"]["/api/v1/switches/{dpid}/programs/{prog}/maps"]["get"]
    assert "security" not in listing
    assert set(doc["paths"]) >= {"/api/v1/switches", "/metrics", "/api/v1/openapi.json"}


def test_openapi_operations_are_served_as_documented() -> None:
    """Every documented operation answers 200 with the documented inputs;
    401 exactly where it declares a token, 403 (no token configured) and
    413 where it lists them, and its body schema is the one enforced."""
    for method, template, path, op in operations(served_document()):
        what = f"{method} {template}"
        schema = body_schema(op)
        body = None
        if schema is not None:
            body = {k: BODY_VALUES[k] for k in schema["required"]}
        status, out = call(Api(FakeBackend(), TOKEN), method, path, body)
        assert status == HTTPStatus.OK, (what, out)
        status, _ = call(Api(FakeBackend(), TOKEN), method, path, body, token=None)
        assert (status == HTTPStatus.UNAUTHORIZED) == ("security" in op), (what, status)
        assert ("401" in op["responses"]) == ("security" in op), what
        status, _ = call(Api(FakeBackend(), None), method, path, body, token=None)
        assert (status == HTTPStatus.FORBIDDEN) == ("403" in op["responses"]), (what, status)
        too_big = b'{"key": "' + b"x" * apimod.MAX_BODY + b'"}'
        status, _ = call(Api(FakeBackend(), TOKEN), method, path, raw=too_big)
        assert (status == HTTPStatus.REQUEST_ENTITY_TOO_LARGE) == ("413" in op["responses"]), (
            what,
            status,
        )
        if schema is None:
            continue
        for name in schema["properties"]:
            full = {k: BODY_VALUES[k] for k in schema["properties"]}
            status, out = call(Api(FakeBackend(), TOKEN), method, path, full)
            assert status == HTTPStatus.OK, (what, "with every property", out)
            del full[name]
            status, out = call(Api(FakeBackend(), TOKEN), method, path, full)
            if name in schema["required"]:
                assert status == HTTPStatus.BAD_REQUEST, (what, f"without {name}", status)
                assert name in out["error"]
            else:
                assert status == HTTPStatus.OK, (what, f"without optional {name}", out)
        if schema.get("additionalProperties") is False:
            extra = {**body, "undocumented": 1} if body else {"undocumented": 1}
            status, out = call(Api(FakeBackend(), TOKEN), method, path, extra)
            assert status == HTTPStatus.BAD_REQUEST, (what, "undocumented field", out)


def test_openapi_documents_every_method_served_on_its_paths() -> None:
    doc = served_document()
    for template, ops in doc["paths"].items():
        path = template
        for name, value in PATH_VALUES.items():
            path = path.replace("{" + name + "}", value)
        for method in METHODS:
            if method.lower() in ops:
                continue
            status, _ = call(Api(FakeBackend(), TOKEN), method, path, {"key": 0})
            assert status == HTTPStatus.METHOD_NOT_ALLOWED, (method, template, status)


def test_openapi_query_parameters_change_the_answer() -> None:
    for method, template, path, op in operations(served_document()):
        for param in op["parameters"]:
            if param["in"] != "query":
                continue
            assert param["name"] in BODY_VALUES, f"{template}: no sample for ?{param['name']}"
            a = Api(FakeBackend(), TOKEN)
            plain = call(a, method, path)
            query = {param["name"]: json.dumps(BODY_VALUES[param["name"]])}
            status, out = call(a, method, path, query=query)
            assert status == HTTPStatus.OK, (template, param["name"], out)
            assert (status, out) != plain, f"{template}: ?{param['name']} changes nothing"


def test_served_over_http() -> None:
    server = serve(Api(FakeBackend(), TOKEN), "127.0.0.1", 0)
    try:
        base = f"http://127.0.0.1:{server.server_address[1]}"
        read = urllib.request.Request(base + MAP + "?key=0")
        with pytest.raises(urllib.error.HTTPError) as info:
            urllib.request.urlopen(read, timeout=5)
        assert info.value.code == 401
        read.add_header("Authorization", f"Bearer {TOKEN}")
        with urllib.request.urlopen(read, timeout=5) as r:
            assert json.loads(r.read()) == {"key": 0, "value": {"rate": 5}}
        req = urllib.request.Request(base + MAP + "/entries", method="PUT",
                                     data=b'{"key": 1, "value": {}}')  # fmt: skip
        with pytest.raises(urllib.error.HTTPError) as info:
            urllib.request.urlopen(req, timeout=5)
        assert info.value.code == 401
        req.add_header("Authorization", f"Bearer {TOKEN}")
        with urllib.request.urlopen(req, timeout=5) as r:
            assert r.status == 200
    finally:
        server.shutdown()


def test_metrics_text() -> None:
    text = metrics.render(
        metrics.Snapshot(
            {1: True},
            [metrics.ProgramSample(1, 2, 'li"mit', 101, 10, 2_000_000_000, (0, 3, 7, 0, 0, 0))],
            {
                (1, 2, "sources"): metrics.MapSample(4, 16),
                (1, 2, "config"): metrics.MapSample(1, 0),
            },
            {1: 2},
            metrics.ConfigState("ab12", 3, False),
        )
    )
    assert 'okopy_switch_connected{dpid="0x1"} 1.0' in text
    assert 'okopy_program_runs_total{dpid="0x1",name="li\\"mit",prog="2"} 10.0' in text
    assert (
        'okopy_program_verdicts_total{dpid="0x1",name="li\\"mit",prog="2",verdict="drop"} 3.0'
        in text
    )
    assert 'okopy_program_run_seconds_total{dpid="0x1",name="li\\"mit",prog="2"} 2.0' in text
    assert 'okopy_map_entries{dpid="0x1",map="sources",prog="2"} 4.0' in text
    assert 'okopy_map_max_entries{dpid="0x1",map="sources",prog="2"} 16.0' in text
    assert 'okopy_map_pressure{dpid="0x1",map="sources",prog="2"} 0.25' in text
    assert 'okopy_map_pressure{dpid="0x1",map="config",prog="2"} 0.0' in text
    assert 'okopy_config_hash{hash="ab12"} 1.0' in text
    assert "okopy_config_load_errors_total 3.0" in text
    assert "okopy_config_applied 0.0" in text
    assert "# TYPE okopy_program_runs_total counter" in text
    assert "# TYPE okopy_map_pressure gauge" in text
    # Every declared metric is exposed, with its help text.
    for name, (_kind, help_text) in metrics.METRICS.items():
        assert f"# HELP {name} {help_text}" in text, name


def test_metrics_table_in_lab_md() -> None:
    """docs/lab.md's metrics table lists exactly the declared metrics."""
    doc = (Path(__file__).resolve().parents[2] / "docs" / "lab.md").read_text()
    rows = re.findall(r"^\| `(okopy_\w+)` \| (\w+) \|", doc, re.M)
    assert dict(rows) == {n: kind for n, (kind, _) in metrics.METRICS.items()}
