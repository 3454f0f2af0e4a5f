"""Reloads (SIGHUP and the API), switch reconnections and concurrent API
map writes and lookups against the real switch, all at once: every one
takes effect, and every lookup gets the value of its own key.  The API
of the real controller answers malformed requests and a burst of 200 at
once."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from okopy.lab.controller import ControllerProcess
from okopy.ovs.instance import OvsInstance
from okopy.testing.fixtures import BRIDGE
from okopy.testing.policies import blocklist_policy

API_PORT = 18182
TOKEN = "t0ken"

# Run inside the switch's namespace, where the API listens on 127.0.0.1.
CLIENT = r"""
import json, sys, threading, time, urllib.error, urllib.request

base, token, phase = sys.argv[1], sys.argv[2], sys.argv[3]
MAP = "/api/v1/switches/1/programs/1/maps/blocked_v4"
errors = []


def call(method, path, body=None):
    data = json.dumps(body).encode() if body is not None else None
    for _ in range(400):
        req = urllib.request.Request(base + path, method=method, data=data)
        req.add_header("Authorization", "Bearer " + token)
        try:
            with urllib.request.urlopen(req, timeout=30) as r:
                return r.status, json.loads(r.read())
        except urllib.error.HTTPError as e:
            if e.code not in (503, 504):  # 503/504: the switch is reconnecting
                return e.code, json.loads(e.read())
        except OSError as e:
            errors.append(f"{method} {path}: {e}")
            return None, None
        time.sleep(0.05)
    errors.append(f"{method} {path}: never got through")
    return None, None


def put(ip, n):
    status, out = call("PUT", MAP + "/entries", {"key": ip, "value": {"packets": n, "bytes": 1}})
    if status != 200:
        errors.append(f"PUT {ip}: {status} {out}")


def writer(t):
    for i in range(25):
        put(f"10.1.{t}.{i}", t * 1000 + i)


def reader(t):
    for j in range(30):
        i = (t * 7 + j * 13) % 50
        status, out = call("GET", MAP + "?key=" + json.dumps(f"10.2.0.{i}"))
        if status != 200 or out["value"]["packets"] != 5000 + i:
            errors.append(f"lookup of 10.2.0.{i}: {status} {out}")


def reloader():
    for _ in range(5):
        status, out = call("POST", "/api/v1/policy/reload")
        if status != 200:
            errors.append(f"reload: {status} {out}")
        time.sleep(0.2)


if phase == "seed":
    for i in range(50):
        put(f"10.2.0.{i}", 5000 + i)
elif phase == "storm":
    threads = [threading.Thread(target=writer, args=(t,)) for t in range(8)]
    threads += [threading.Thread(target=reader, args=(t,)) for t in range(8)]
    threads.append(threading.Thread(target=reloader))
    for t in threads:
        t.start()
    for t in threads:
        t.join()
else:
    status, out = call("GET", MAP)
    print(json.dumps({e["key"]: e["value"]["packets"] for e in out}))
    sys.exit(0)
print(json.dumps(errors))
"""


# Raw HTTP from inside the namespace: malformed requests, then 200 at once.
WIRE = r"""
import json, socket, sys, threading, time

port, token = int(sys.argv[1]), sys.argv[2]
MAP = "/api/v1/switches/1/programs/1/maps/blocked_v4"


def exchange(data):
    started = time.monotonic()
    with socket.create_connection(("127.0.0.1", port), timeout=30) as s:
        s.sendall(data)
        answer = b""
        while chunk := s.recv(65536):
            answer += chunk
    head, _, body = answer.partition(b"\r\n\r\n")
    return int(head.split()[1]), json.loads(body), time.monotonic() - started


def req(method, path, headers=(), body=b""):
    lines = [f"{method} {path} HTTP/1.1", "Host: x", f"Authorization: Bearer {token}", *headers]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


deep = b"[" * 100_000 + b"]" * 100_000
cases = [
    req("GET", "/api/v1/switches/1/programs/-1/maps"),
    req("GET", "/api/v1/switches/1/programs/1099511627776/maps"),
    req("PUT", MAP + "/entries", ["Content-Length: abc"], b"{}"),
    req("PUT", MAP + "/entries", ["Content-Length: -1"], b"{}"),
    req("PUT", MAP + "/entries", [f"Content-Length: {len(deep) + 2}"], deep + b"{}"),
    b"GET /api/v1/switches\r\n",
    req("PUT", MAP + "/entries", ["Content-Length: 100"], b'{"key": '),
]
out = {"cases": [exchange(c) for c in cases], "burst": [None] * 200}
barrier = threading.Barrier(200)


def one(i):
    barrier.wait()
    path = MAP + '?key="10.0.0.2"' if i % 2 else "/api/v1/switches/1/programs"
    out["burst"][i] = exchange(req("GET", path.replace('"', "%22")))


threads = [threading.Thread(target=one, args=(i,)) for i in range(200)]
for t in threads:
    t.start()
for t in threads:
    t.join()
print(json.dumps(out))
"""


def policy(gen: int) -> str:
    """The blocklist, plus one flow that tells policy generations apart."""
    return blocklist_policy("10.0.0.2") + (
        f"      - {{table: 0, priority: 50, match: {{eth_type: 0x800, ipv4_dst: 10.9.9.{gen}}},"
        " actions: [drop]}\n"
    )


@pytest.fixture
def controlled(switch: OvsInstance, tmp_path: Path) -> Iterator[ControllerProcess]:
    (tmp_path / "policy.yaml").write_text(policy(0))
    (tmp_path / "token").write_text(TOKEN + "\n")
    assert switch.netns is not None
    ctl = ControllerProcess(tmp_path / "policy.yaml", tmp_path / "controller.log", switch.netns,
                            api=f"127.0.0.1:{API_PORT}", token_file=tmp_path / "token")  # fmt: skip
    switch.vsctl("set", "bridge", BRIDGE, "other-config:datapath-id=0000000000000001",
                 "fail_mode=secure", "protocols=OpenFlow13")  # fmt: skip
    ctl.start()
    try:
        ctl.wait_for(r"policy: switch s1", timeout=60)
        connect(switch, ctl)
        ctl.wait_for(r"switch 0x1 reconciled: 5 AddFlow, 1 LoadProgram, 1 UpdateMap", timeout=60)
        yield ctl
    finally:
        ctl.stop()


def connect(switch: OvsInstance, ctl: ControllerProcess) -> None:
    switch.vsctl("set-controller", BRIDGE, ctl.target)
    switch.vsctl("set", "controller", BRIDGE, "max_backoff=1000")


def client(switch: OvsInstance, phase: str) -> subprocess.Popen[str]:
    assert switch.netns is not None
    argv = [sys.executable, "-c", CLIENT, f"http://127.0.0.1:{API_PORT}", TOKEN, phase]
    return subprocess.Popen(switch.netns.argv(argv), stdout=subprocess.PIPE, text=True)


def finish(proc: subprocess.Popen[str]) -> Any:
    out, _ = proc.communicate(timeout=180)
    assert proc.returncode == 0
    return json.loads(out)


def okopy_flows(switch: OvsInstance) -> list[str]:
    dump = switch.ofctl("-O", "OpenFlow13", "dump-flows", BRIDGE)
    return [ln for ln in dump.splitlines() if "cookie=0x6f6b6f7079" in ln]


def test_reloads_reconnections_and_api_requests_together(
    switch: OvsInstance, controlled: ControllerProcess
) -> None:
    ctl = controlled
    assert ctl.proc is not None
    assert finish(client(switch, "seed")) == []

    storm = client(switch, "storm")
    gen = 0
    while (storm.poll() is None or gen < 6) and gen < 20:
        gen += 1
        ctl.policy.write_text(policy(gen))
        os.kill(ctl.proc.pid, signal.SIGHUP)
        if gen % 3 == 0:  # the switch drops the connection and comes back
            switch.vsctl("del-controller", BRIDGE)
            time.sleep(0.2)
            connect(switch, ctl)
        time.sleep(0.3)
    assert finish(storm) == []

    # The last policy is what the switch holds, each flow once: one more
    # reload, once the last ones have settled, finds nothing to do.
    time.sleep(2)
    ctl._read = len(ctl.log())  # wait for lines after this point only
    os.kill(ctl.proc.pid, signal.SIGHUP)
    ctl.wait_for(r"switch 0x1 reconciled: nothing to do", timeout=60)
    flows = okopy_flows(switch)
    assert len(flows) == 5, flows
    marked = [f for f in flows if "nw_dst=10.9.9." in f]
    assert len(marked) == 1
    assert f"nw_dst=10.9.9.{gen} " in marked[0], flows

    # Every write took effect with its own value, next to the seeds.
    table = finish(client(switch, "dump"))
    want = {f"10.1.{t}.{i}": t * 1000 + i for t in range(8) for i in range(25)}
    want |= {f"10.2.0.{i}": 5000 + i for i in range(50)}
    want["10.0.0.2"] = 0
    assert table == want
    log = ctl.log()
    assert "Traceback" not in log
    assert "Exception occurred during handler" not in log


def test_api_answers_bad_and_concurrent_requests_promptly(
    switch: OvsInstance, controlled: ControllerProcess
) -> None:
    assert switch.netns is not None
    argv = [sys.executable, "-c", WIRE, str(API_PORT), TOKEN]
    out = json.loads(subprocess.run(switch.netns.argv(argv), capture_output=True, text=True,
                                    check=True, timeout=180).stdout)  # fmt: skip
    statuses = [status for status, _, _ in out["cases"]]
    assert statuses == [400, 400, 400, 400, 400, 400, 408], out["cases"]
    for status, body, took in out["cases"]:
        assert body["error"]
        assert took < (8.0 if status == 408 else 4.0)  # the API waits 5 s for a request
    assert all(status == 200 for status, _, _ in out["burst"]), out["burst"]
    for i, (_, body, _) in enumerate(out["burst"]):
        if i % 2:
            assert body["value"] == {"packets": 0, "bytes": 0}
        else:
            assert [p["name"] for p in body] == ["block"]
    assert max(took for _, _, took in out["burst"]) < 10.0
    assert "Traceback" not in controlled.log()
