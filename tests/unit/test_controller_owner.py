"""The controller's state has one owner: reloads, reconnections, statistics
polls and API requests arriving together all take effect, and every reply
reaches the request that asked for it.

The os-ken app runs its real event loop against a fake switch: each
connection answers from a thread of its own (as os-ken's receive loop
does), in shuffled order, so replies overtake each other.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import random
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from os_ken.base import app_manager
from os_ken.controller import ofp_event
from os_ken.controller.handler import DEAD_DISPATCHER, MAIN_DISPATCHER
from os_ken.ofproto import ofproto_v1_3 as ofp
from os_ken.ofproto import ofproto_v1_3_parser as parser

from okopy.bpf.btf import MapDef
from okopy.controller import app as appmod
from okopy.controller import election, openflow
from okopy.controller.pending import PendingRequests
from okopy.ofp import messages as m
from okopy.ofp.constants import OKOPY_VENDOR_ID, ErrorType
from okopy.policy.build import Checked
from okopy.policy.desired import BuiltProgram, DesiredSwitch, Flow
from okopy.policy.file import Policy, PolicyError
from okopy.policy.schema import Problem

DPID = 1
PROG = 1
MAP = "m"
KS, VS = 4, 8


def key(i: int) -> str:
    return "0x" + i.to_bytes(KS, "big").hex()


def value(i: int) -> str:
    return "0x" + (i * 7919).to_bytes(VS, "big").hex()


def policy_generation(gen: int, files: tuple[tuple[str, str], ...] = ()) -> Checked:
    """Policy number 'gen': one program and one flow whose in_port is 'gen'
    (a negative 'gen': a policy that fails its checks).  'files' are the
    policy's files, for the watcher."""
    if gen < 0:
        raise PolicyError([Problem("policy.yaml", 3, 1, "a bad policy")])
    prog = BuiltProgram("counter", PROG, b"\x7fELF fake", None,
                        {MAP: MapDef(MAP, 1, 0, 0, KS, VS, 4096, 0, 0)})  # fmt: skip
    flow = Flow(0, 10, (("in_port", str(gen)),), ("output:2",))
    sw = DesiredSwitch(DPID, {PROG: prog}, (), frozenset({flow}))
    return Checked(Policy({}, {}, None, files), {"counter": prog}, {"s1": sw})


class FakeSwitch:
    """Programs, one map and okopy's flows; survives its connections."""

    def __init__(self, app: appmod.OkopyController) -> None:
        self.app = app
        self.lock = threading.Lock()
        self.programs: dict[int, tuple[str, int]] = {}
        self.table: dict[bytes, bytes] = {}
        self.flows: dict[tuple[Any, ...], Flow] = {}
        self.conn: FakeConnection | None = None
        self.roles: list[tuple[int, int]] = []  # role requests: (role, generation)
        self.held: list[tuple[str, Any]] | None = None  # barrier replies held back, if a list
        self.refuse_loads = False

    def connect(self) -> FakeConnection:
        old, self.conn = self.conn, FakeConnection(self)
        if old is not None and random.random() < 0.5:
            old.drop()  # the old connection is noticed dead before the new one
            old = None
        self.conn.id = DPID  # as os-ken's handshake sets it
        self.app._send_event(ofp_event.EventOFPStateChange(self.conn), MAIN_DISPATCHER)
        if old is not None:
            old.drop()
        return self.conn

    def handle(self, msg: Any) -> list[Any]:
        """Apply one message; the replies, as os-ken message stand-ins."""
        with self.lock:
            if isinstance(msg, parser.OFPRoleRequest):
                self.roles.append((msg.role, msg.generation_id))
                return []
            if isinstance(msg, parser.OFPFlowMod):
                f = Flow(msg.table_id, msg.priority, openflow.canonical_match(msg.match),
                         openflow.canonical_actions(msg.instructions), msg.cookie)  # fmt: skip
                if msg.command == ofp.OFPFC_ADD:
                    self.flows[f.key] = f
                else:
                    self.flows.pop(f.key, None)
                return []
            if isinstance(msg, parser.OFPBarrierRequest):
                barrier = parser.OFPBarrierReply(None)
                barrier.xid = msg.xid
                if self.held is not None:
                    self.held.append(("barrier", barrier))
                    return []
                return [("barrier", barrier)]
            if isinstance(msg, parser.OFPFlowStatsRequest):
                body = [SimpleNamespace(table_id=f.table, priority=f.priority, cookie=f.cookie,
                                        match=parser.OFPMatch(**openflow.match_kwargs(f)),
                                        instructions=openflow.instructions(f))
                        for f in self.flows.values()]  # fmt: skip
                return [("flows", SimpleNamespace(xid=msg.xid, flags=0, body=body))]
            req = m.decode(msg.exp_type, bytes(msg.data))
            return [self._answer(msg.xid, req)]

    def _answer(self, xid: int, req: m.Message) -> tuple[str, Any]:
        def reply(r: m.Message) -> tuple[str, Any]:
            return ("exp", SimpleNamespace(xid=xid, experimenter=OKOPY_VENDOR_ID,
                                           exp_type=int(r.TYPE), data=r.body()))  # fmt: skip

        if isinstance(req, m.ProgLoad) and self.refuse_loads:
            return ("err", SimpleNamespace(xid=xid, type=ofp.OFPET_EXPERIMENTER, code=0,
                                           experimenter=OKOPY_VENDOR_ID,
                                           exp_type=int(ErrorType.VERIFIER_REFUSED),
                                           data=b"R0 !read_ok"))  # fmt: skip
        if isinstance(req, m.ProgLoad):
            if req.offset + len(req.chunk) == req.elf_len:
                self.programs[req.prog_id] = (req.name, req.cookie)
            return reply(m.ProgLoadReply(req.prog_id, 10, 2))
        if isinstance(req, m.ProgListRequest):
            stats = tuple(
                m.ProgStats(pid, 10, name, 2, 0, cookie, 0, 0, (0, 0, 0, 0, 0, 0))
                for pid, (name, cookie) in sorted(self.programs.items())
                if pid >= req.start_id
            )
            return reply(m.ProgListReply(0, stats))
        if not isinstance(req, m.MapListRequest | m._MapMsg) or req.prog_id not in self.programs:
            return ("err", SimpleNamespace(xid=xid, type=ofp.OFPET_EXPERIMENTER, code=0,
                                           experimenter=OKOPY_VENDOR_ID,
                                           exp_type=int(ErrorType.UNKNOWN_PROG),
                                           data=b"no such program"))  # fmt: skip
        if isinstance(req, m.MapListRequest):
            desc = m.MapDesc(MAP, 1, KS, VS, 4096, 0, 0, len(self.table))
            return reply(m.MapListReply(req.prog_id, (desc,)))
        if isinstance(req, m.MapUpdate):
            self.table.update(zip(req.keys, req.values, strict=True))
            return reply(m.MapUpdateReply(req.prog_id, MAP, KS, VS, 1))
        if isinstance(req, m.MapLookupRequest):
            found = [(k, self.table[k]) for k in req.keys if k in self.table]
            return reply(m.MapLookupReply(req.prog_id, MAP, KS, VS, len(found), 0,
                                          tuple(k for k, _ in found),
                                          tuple(v for _, v in found)))  # fmt: skip
        raise AssertionError(f"unexpected request {req}")


class FakeConnection:
    """One OpenFlow connection: what the app sees as an os-ken Datapath."""

    ofproto = ofp
    ofproto_parser = parser

    def __init__(self, switch: FakeSwitch) -> None:
        self.switch = switch
        self.id: int | None = None
        self.alive = True
        self.in_flight: set[int] = set()
        self.replies: queue.Queue[tuple[str, Any] | None] = queue.Queue()
        threading.Thread(target=self._deliver, daemon=True).start()

    def send_msg(self, msg: Any) -> None:
        assert msg.xid is not None, "every message gets its xid from the owner"
        assert msg.xid not in self.in_flight, f"xid {msg.xid:#x} given twice"
        if not self.alive:
            return
        for kind, reply in self.switch.handle(msg):
            self.in_flight.add(msg.xid)
            self.replies.put((kind, reply))

    def drop(self) -> None:
        self.alive = False
        self.replies.put(None)
        self.switch.app._send_event(ofp_event.EventOFPStateChange(self), DEAD_DISPATCHER)

    def _deliver(self) -> None:
        events = {"exp": ofp_event.EventOFPExperimenter, "err": ofp_event.EventOFPErrorMsg,
                  "flows": ofp_event.EventOFPFlowStatsReply,
                  "barrier": ofp_event.EventOFPBarrierReply}  # fmt: skip
        while True:
            batch = [self.replies.get()]
            while not self.replies.empty():
                batch.append(self.replies.get())
            for item in _overtaking(batch):
                if item is None or not self.alive:
                    return
                kind, msg = item
                msg.datapath = self
                self.in_flight.discard(msg.xid)
                self.switch.app._send_event(events[kind](msg), MAIN_DISPATCHER)


def _overtaking(batch: list[Any]) -> list[Any]:
    """'batch' with replies overtaking each other, but never a barrier's
    reply: it comes after the replies of every message sent before it."""
    out: list[Any] = []
    run: list[Any] = []
    for item in batch:
        if item is not None and item[0] == "barrier":
            random.shuffle(run)
            out += [*run, item]
            run = []
        else:
            run.append(item)
    random.shuffle(run)
    return out + run


@pytest.fixture
def controller(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[appmod.OkopyController, FakeSwitch, list[int]]]:
    generations = [0]

    def check(_: Any) -> Checked:
        time.sleep(0.005)  # building takes time, outside the owner thread
        return policy_generation(generations[-1])

    monkeypatch.setattr(appmod, "load_policy", lambda path: None)
    monkeypatch.setattr(appmod, "check_policy", check)
    monkeypatch.setattr(appmod.OkopyController, "settings",
                        appmod.Settings(str(tmp_path / "policy.yaml"), stats_interval=0.02))  # fmt: skip
    app = appmod.OkopyController()
    app_manager.register_instance(app)
    app.start()
    switch = FakeSwitch(app)
    try:
        yield app, switch, generations
    finally:
        app.stop()


def wait_until(what: str, cond: Any, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"not {what} after {timeout} s")
        time.sleep(0.01)


def expected_flows(gen: int) -> set[Flow]:
    return set(policy_generation(gen).switches["s1"].flows)


def test_reloads_reconnections_and_api_writes_together(
    controller: tuple[appmod.OkopyController, FakeSwitch, list[int]],
    caplog: pytest.LogCaptureFixture,
) -> None:
    app, switch, generations = controller
    switch.connect()
    wait_until("deployed", lambda: set(switch.flows.values()) == expected_flows(0)
               and PROG in switch.programs)  # fmt: skip
    seeded = range(1000, 1100)
    for i in seeded:
        switch.table[bytes.fromhex(key(i)[2:])] = bytes.fromhex(value(i)[2:])

    failures: list[str] = []
    written: list[int] = []

    def retrying(fn: Any) -> Any:
        for _ in range(100):
            try:
                return fn()
            except (ConnectionError, TimeoutError):
                time.sleep(0.005)  # the switch was reconnecting: try again
        raise AssertionError("never got through")

    def writer(base: int) -> None:
        for i in range(base, base + 25):
            retrying(lambda i=i: app.map_update(DPID, PROG, MAP, key(i), value(i), "any"))
            written.append(i)

    def reader(seed: int) -> None:
        rng = random.Random(seed)
        for _ in range(40):
            i = rng.choice(seeded)
            got = retrying(lambda i=i: app.map_lookup(DPID, PROG, MAP, key(i)))
            if got != value(i)[2:]:  # hex, without BTF
                failures.append(f"lookup of {key(i)} got {got}, not {value(i)}")

    def reloader() -> None:
        for _ in range(8):
            generations.append(generations[-1] + 1)
            app.reload()
            time.sleep(random.random() * 0.02)

    def reconnector() -> None:
        for _ in range(8):
            switch.connect()
            time.sleep(random.random() * 0.03)

    threads = [threading.Thread(target=writer, args=(b,)) for b in range(0, 200, 25)]
    threads += [threading.Thread(target=reader, args=(s,)) for s in range(8)]
    threads += [threading.Thread(target=reloader), threading.Thread(target=reconnector)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
        assert not t.is_alive()

    assert failures == []
    assert sorted(written) == list(range(200))
    for i in written:
        assert switch.table[bytes.fromhex(key(i)[2:])] == bytes.fromhex(value(i)[2:])
    # The last policy is what the switch holds, once the last sync is done.
    wait_until("converged", lambda: set(switch.flows.values()) == expected_flows(generations[-1]))
    wait_until("idle", lambda: app._call(lambda: not app.syncs))
    assert app._call(lambda: app.applied[DPID]) == policy_generation(generations[-1]).switches["s1"]
    assert set(switch.programs) == {PROG}
    # Statistics polls ran alongside and reached the metrics.
    wait_until("polled", lambda: f'map="{MAP}"' in app.metrics())
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR], caplog.text


def test_reconciled_once_the_switch_has_applied_it(
    controller: tuple[appmod.OkopyController, FakeSwitch, list[int]],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """'reconciled' is logged when the switch answers the barrier sent
    behind a reconciliation's messages, not when they are sent: traffic
    sent before could meet flows not yet added or maps half written.
    Messages of it the switch refused are counted in that line."""
    _, switch, _ = controller
    caplog.set_level(logging.INFO, logger="okopy.controller")
    switch.held = []
    switch.refuse_loads = True
    conn = switch.connect()
    wait_until("flows added", lambda: set(switch.flows.values()) == expected_flows(0))
    wait_until("barrier sent", lambda: switch.held)
    time.sleep(0.2)
    assert "reconciled" not in caplog.text
    assert "VERIFIER_REFUSED" in caplog.text  # the load's error, as it came
    conn.replies.put(switch.held.pop())
    wait_until("reconciled", lambda: "reconciled" in caplog.text)
    line = next(r for r in caplog.records if "reconciled" in r.getMessage())
    assert line.levelno == logging.ERROR
    assert line.getMessage() == (
        f"switch {DPID:#x} reconciled: 1 AddFlow, 1 LoadProgram; 1 of them refused (errors above)"
    )


def test_requests_fail_fast_when_the_switch_goes(
    controller: tuple[appmod.OkopyController, FakeSwitch, list[int]],
) -> None:
    app, switch, _ = controller
    with pytest.raises(ConnectionError, match="not connected"):
        app.map_lookup(DPID, PROG, MAP, key(1))
    conn = switch.connect()
    wait_until("deployed", lambda: PROG in switch.programs)
    conn.alive = False  # the switch stops answering on this connection
    started = time.monotonic()
    result: list[BaseException] = []

    def lookup() -> None:
        try:
            app.map_lookup(DPID, PROG, MAP, key(1))
        except ConnectionError as e:
            result.append(e)

    t = threading.Thread(target=lookup)
    t.start()
    time.sleep(0.1)
    conn.drop()
    t.join(timeout=5)
    assert len(result) == 1
    assert "disconnected" in str(result[0])
    assert time.monotonic() - started < 3
    assert app._call(lambda: len(app.pending)) == 0


def test_switch_errors_reach_their_requester(
    controller: tuple[appmod.OkopyController, FakeSwitch, list[int]],
) -> None:
    app, switch, _ = controller
    switch.connect()
    wait_until("deployed", lambda: PROG in switch.programs)
    with pytest.raises(LookupError, match="UNKNOWN_PROG"):
        app._request(DPID, m.MapListRequest(7))
    assert app.map_entries(DPID, PROG) == {MAP: 0}


def test_pending_requests_match_replies_exactly() -> None:
    p = PendingRequests(first_xid=0xFFFFFFFF)
    a, b = object(), object()
    w1 = p.add(a, m.MapLookupReply)
    w2 = p.add(a, m.MapLookupReply)
    assert (w1.xid, w2.xid) == (0xFFFFFFFF, 1)  # wraps, skipping 0
    reply = m.MapLookupReply(1, MAP, KS, VS)
    assert not p.resolve(b, w1.xid, reply)  # same xid, other connection
    assert not p.resolve(a, w1.xid, m.MapListReply(1))  # not the answer it waits for
    assert p.resolve(a, w1.xid, reply)
    assert w1.future.result(0) is reply
    assert not p.resolve(a, w1.xid, reply)  # a second reply finds nobody
    p.forget(w2)
    assert not p.resolve(a, w2.xid, reply)
    w3 = p.add(b, m.MapUpdateReply)
    assert p.fail_connection(b, ConnectionError("gone")) == 1
    with pytest.raises(ConnectionError):
        w3.future.result(0)
    assert len(p) == 0


def test_xids_skip_those_in_use() -> None:
    p = PendingRequests(first_xid=5)
    held = p.add(None, m.MapListReply)
    p._next = held.xid  # the counter came round to an xid still waiting
    assert p.next_xid() == held.xid + 1


def test_diff_previews_a_reload_and_changes_nothing(
    controller: tuple[appmod.OkopyController, FakeSwitch, list[int]],
) -> None:
    """`okopy policy diff`: what a reload would do, read from the switch,
    with nothing sent; several previews at once, and while a reconciliation
    runs, each get their own answer."""
    app, switch, generations = controller
    switch.connect()
    wait_until("deployed", lambda: set(switch.flows.values()) == expected_flows(0))
    assert app.diff()["switches"][0]["changes"] == []
    generations.append(1)
    results: list[dict[str, Any]] = []
    threads = [threading.Thread(target=lambda: results.append(app.diff())) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(15)
    assert len(results) == 4
    for r in results:
        (sw,) = r["switches"]
        assert (sw["name"], sw["dpid"], sw["connected"]) == ("s1", DPID, True)
        assert sw["changes"] == [
            {"change": "add flow", "flow": "table=0,priority=10,in_port=1 actions=output:2"},
            {"change": "delete flow", "flow": "table=0,priority=10,in_port=0 actions=output:2"},
        ]
        assert sw["summary"] == "1 add flow, 1 delete flow"
    assert set(switch.flows.values()) == expected_flows(0)  # nothing was sent
    app.reload()
    wait_until("reloaded", lambda: set(switch.flows.values()) == expected_flows(1))
    assert app.diff()["switches"][0]["changes"] == []
    assert app.previews == {DPID: []}
    switch.conn.drop()  # type: ignore[union-attr]
    wait_until("gone", lambda: DPID not in app.datapaths)
    assert app.diff()["switches"] == [{"name": "s1", "dpid": DPID, "connected": False}]


def test_a_refused_reload_keeps_the_policy_and_says_so(
    controller: tuple[appmod.OkopyController, FakeSwitch, list[int]],
) -> None:
    """okopy_config_load_errors_total and okopy_config_applied follow the
    reloads; okopy_config_hash the policy in force."""
    app, switch, generations = controller
    switch.connect()
    wait_until("deployed", lambda: set(switch.flows.values()) == expected_flows(0))
    first = app.config.hash
    assert "okopy_config_applied 1.0" in app.metrics()
    generations.append(-1)
    with pytest.raises(PolicyError, match="a bad policy"):
        app.reload()
    text = app.metrics()
    assert "okopy_config_load_errors_total 1.0" in text
    assert "okopy_config_applied 0.0" in text
    assert f'okopy_config_hash{{hash="{first}"}} 1.0' in text
    assert set(switch.flows.values()) == expected_flows(0)  # still the first
    generations.append(3)
    app.reload()
    wait_until("reloaded", lambda: set(switch.flows.values()) == expected_flows(3))
    text = app.metrics()
    assert "okopy_config_load_errors_total 1.0" in text
    assert "okopy_config_applied 1.0" in text


@contextlib.contextmanager
def watching(
    policy_file: Path, check: Callable[[Any], Checked], monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[appmod.OkopyController, FakeSwitch]]:
    """A controller with --watch-policy on 'policy_file' (checked by
    'check'), and a switch it has deployed generation 0 to."""
    policy_file.write_text("generation 0\n")
    monkeypatch.setattr(appmod, "load_policy", lambda path: None)
    monkeypatch.setattr(appmod, "check_policy", check)
    monkeypatch.setattr(appmod.OkopyController, "settings",
                        appmod.Settings(str(policy_file), stats_interval=60,
                                        watch_interval=0.02))  # fmt: skip
    app = appmod.OkopyController()
    app_manager.register_instance(app)
    app.start()
    switch = FakeSwitch(app)
    try:
        switch.connect()
        wait_until("deployed", lambda: set(switch.flows.values()) == expected_flows(0))
        yield app, switch
    finally:
        app.stop()


def test_watch_reloads_when_a_file_changes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """--watch-policy: an edit of a policy file reloads; a bad edit is
    refused (and counted) and the next good one applied."""
    policy_file = tmp_path / "policy.yaml"
    generations = [0]

    def check(_: Any) -> Checked:
        return policy_generation(generations[-1], ((str(policy_file), "digest"),))

    with watching(policy_file, check, monkeypatch) as (app, switch):
        generations.append(-1)
        policy_file.write_text("a bad edit\n")
        wait_until("refused", lambda: app.config.load_errors == 1)
        assert not app.config.applied
        generations.append(2)
        policy_file.write_text("generation 2\n")
        wait_until("reloaded", lambda: set(switch.flows.values()) == expected_flows(2))
        assert app.config.applied


def test_watch_sees_an_edit_made_during_a_reload(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An edit that lands while a reload reads the policy reloads again: the
    watcher compares with what it saw before that reload, not after."""
    policy_file = tmp_path / "policy.yaml"
    generations = [0]

    def check(_: Any) -> Checked:
        if generations[-1] < 0:
            # The operator fixes the bad edit while it is being refused.
            generations.append(4)
            policy_file.write_text("generation 4\n")
            return policy_generation(-1)
        return policy_generation(generations[-1], ((str(policy_file), "digest"),))

    with watching(policy_file, check, monkeypatch) as (app, switch):
        generations.append(-1)
        policy_file.write_text("a bad edit\n")
        wait_until("reloaded", lambda: set(switch.flows.values()) == expected_flows(4))
        assert app.config.load_errors == 1
        assert app.config.applied


class FakeElection:
    """The coordination service, as the test says it answers."""

    def __init__(self) -> None:
        self.standing = election.Standing(False, None)

    def poll(self) -> election.Standing:
        return self.standing

    def stop(self) -> None:
        pass


def test_a_standby_controller_changes_nothing_until_master(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With --coordination: standing by, the controller tells the switch it
    is a slave and deploys nothing, nor on a reload; elected, it sends
    MASTER with the master's generation and reconciles; demoted, SLAVE."""
    monkeypatch.setattr(appmod, "load_policy", lambda path: None)
    monkeypatch.setattr(appmod, "check_policy", lambda _: policy_generation(0))
    monkeypatch.setattr(appmod, "ELECTION_INTERVAL", 0.01)
    monkeypatch.setattr(appmod.OkopyController, "settings",
                        appmod.Settings(str(tmp_path / "p.yaml"), stats_interval=60,
                                        coordination="etcd3+http://fake", member="a"))  # fmt: skip
    app = appmod.OkopyController()
    fake = FakeElection()
    app.election = fake
    app_manager.register_instance(app)
    app.start()
    switch = FakeSwitch(app)
    try:
        switch.connect()
        fake.standing = election.Standing(False, 41)  # another is master
        wait_until("told slave", lambda: (ofp.OFPCR_ROLE_SLAVE, 41) in switch.roles)
        app.reload()
        time.sleep(0.2)
        assert switch.flows == {}
        assert switch.programs == {}
        assert "okopy_controller_master 0.0" in app.metrics()
        fake.standing = election.Standing(True, 42)
        wait_until("deployed", lambda: set(switch.flows.values()) == expected_flows(0))
        assert switch.roles[-1] == (ofp.OFPCR_ROLE_MASTER, 42)
        assert "okopy_controller_master 1.0" in app.metrics()
        fake.standing = election.Standing(False, 43)
        wait_until("told slave", lambda: switch.roles[-1] == (ofp.OFPCR_ROLE_SLAVE, 43))
    finally:
        app.stop()
