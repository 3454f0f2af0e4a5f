"""The os-ken application: the thin shim around the pure core.

On every (re)connection of a switch it asks for the switch's programs and
its okopy flows, then sends what `reconcile()` returns.  It also answers
the HTTP API (map access typed through BTF, statistics, policy reload),
polls statistics for the metrics, and reloads the policy on SIGHUP.  It
holds no policy logic of its own.  Run it with `okopy controller`.

One thread owns the controller's state, as in Faucet: os-ken's event loop
of this app.  os-ken calls the OpenFlow handlers there; the HTTP threads,
the statistics poller and the SIGHUP thread never touch the state, they
post an `OwnerCall` (a closure) to that loop and wait on its future, with a
timeout.  The owner allocates every xid okopy sends (`PendingRequests`), so
a reply is handed to exactly one waiter; a reply nobody waits for is logged
and dropped.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import signal
import socket
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any, ClassVar, TypeVar

from os_ken import cfg
from os_ken.base import app_manager
from os_ken.controller import event, ofp_event
from os_ken.controller.handler import (
    DEAD_DISPATCHER,
    MAIN_DISPATCHER,
    set_ev_cls,
)
from os_ken.ofproto import ofproto_v1_3 as ofp
from os_ken.ofproto import ofproto_v1_3_parser as ofp_parser

from okopy.bpf.btf import TypedMap
from okopy.controller import api, election, metrics, openflow, ovsdb, plan, switch_btf
from okopy.controller.metrics import MapSample, ProgramSample
from okopy.controller.pending import PendingRequests, Waiter
from okopy.controller.reconcile import Observed, ObservedProgram, reconcile
from okopy.controller.switch_btf import LoadedProgram, SwitchMaps, fetch_btf
from okopy.ofp import messages as m
from okopy.ofp.constants import (
    MAP_DESC_PINNED,
    OKOPY_VENDOR_ID,
    ErrorType,
    MapType,
    MapUpdateFlags,
)
from okopy.policy.build import Checked
from okopy.policy.build import check as check_policy
from okopy.policy.desired import DesiredSwitch, Flow
from okopy.policy.file import SwitchSpec
from okopy.policy.file import load as load_policy
from okopy.policy.schema import ConfigError

log = logging.getLogger("okopy.controller")
REQUEST_TIMEOUT = 10.0  # a switch's answer to one request
ELECTION_INTERVAL = 0.2  # between questions to the coordination service
OVSDB_INTERVAL = 30.0  # between looks at the switches' OVSDB settings
OVSDB_TIMEOUT = 5.0  # one OVSDB connection and transaction
OWNER_TIMEOUT = 10.0  # the owner thread taking up a posted call
NOT_FOUND_ERRORS = {ErrorType.UNKNOWN_PROG, ErrorType.UNKNOWN_MAP, ErrorType.NO_ENTRY}
# The reply each request okopy waits for is answered with.
REPLIES: dict[type[m.Message], type[m.Message]] = {
    m.ProgListRequest: m.ProgListReply,
    m.MapListRequest: m.MapListReply,
    m.MapLookupRequest: m.MapLookupReply,
    m.MapUpdate: m.MapUpdateReply,
    m.MapDelete: m.MapDeleteReply,
    m.MapDumpRequest: m.MapDumpReply,
    m.MapBtfRequest: m.MapBtfReply,
    m.ProgUnload: m.ProgUnloadReply,
}
T = TypeVar("T")


@dataclass
class Sync:
    """One switch's state collection in progress."""

    desired: DesiredSwitch
    programs: dict[int, ObservedProgram] = field(default_factory=dict)
    flows: set[Flow] = field(default_factory=set)
    programs_done: bool = False
    flows_done: bool = False
    list_xid: int = -1
    flows_xid: int = -1
    # A preview (`okopy policy diff`): what reconciling would change, given
    # to this future, with nothing sent.
    preview: Future[list[dict[str, Any]]] | None = None


@dataclass(eq=False)
class Applying:
    """One reconciliation's messages, sent to a switch and not yet known
    to be applied: a barrier request follows them, and its reply tells
    that the switch has processed every one of them."""

    summary: str
    xids: frozenset[int]
    refused: int = 0


@dataclass
class Settings:
    policy: str = ""
    api_host: str = "127.0.0.1"
    api_port: int = 0
    api_token: str | None = None
    stats_interval: float = 5.0
    # A socket that already listens, inherited (the lab's, bound on the
    # host while the controller runs in the switches' namespace).
    api_socket_fd: int | None = None
    # Seconds between looks at the policy's files (0: never): a change
    # reloads the policy, as SIGHUP does.
    watch_interval: float = 0.0
    # With several controllers: the coordination service (tooz URL) where
    # they elect the master, and this one's name there.  None: this
    # controller is the only one, the master.
    coordination: str | None = None
    member: str = ""


class OwnerCall(event.EventBase):
    """A closure for the owner thread to run, and the future of its result."""

    def __init__(self, fn: Callable[[], Any], future: Future[Any]) -> None:
        super().__init__()
        self.fn = fn
        self.future = future


class OkopyController(app_manager.OSKenApp):
    OFP_VERSIONS: ClassVar[list[int]] = [ofp.OFP_VERSION]
    settings: ClassVar[Settings] = Settings()

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        openflow.register_extension()
        # The state below belongs to the owner thread (see the module's
        # docstring).  `checked` is replaced whole, never changed in place,
        # so other threads may read one snapshot of it.
        self.checked: Checked = check_policy(load_policy(Path(self.settings.policy)))
        self.config = metrics.ConfigState(_config_hash(self.checked))
        self.syncs: dict[int, Sync] = {}
        self.previews: dict[int, list[Sync]] = {}
        self.applied: dict[int, DesiredSwitch] = {}
        self.datapaths: dict[int, Any] = {}
        self.pending = PendingRequests()
        self.samples: dict[int, list[metrics.ProgramSample]] = {}
        self.map_sizes: dict[int, dict[tuple[int, int, str], MapSample]] = {}
        self.reconciles: dict[int, int] = {}
        self.applying: dict[int, list[Applying]] = {}  # by dpid
        self.ovsdb_status: dict[str, dict[str, Any]] = {}  # by switch name
        # Master unless it stands by for another (see election.py).
        self.standing = election.Standing(self.settings.coordination is None, None)
        self.election: election.Election | None = None
        self._ovsdb_wake = threading.Event()
        self.switch_maps = SwitchMaps()  # types of maps of programs not in the policy
        self._owner: threading.Thread | None = None
        self._stopped = threading.Event()
        # Not the state's lock: it orders reloads, so that the last policy
        # read from the file is the last one applied.
        self._reloading = threading.Lock()
        for name, sw in self.checked.switches.items():
            log.info("policy: switch %s (dpid %#x): %d programs, %d flows",
                     name, sw.dpid, len(sw.programs), len(sw.flows))  # fmt: skip
        self.http: api.ApiServer | None = None

    def start(self) -> None:
        super().start()
        self._owner = self.threads[-1]  # the event loop os-ken just spawned
        # Served only now: every API call waits on the owner thread.
        st = self.settings
        if st.api_port or st.api_socket_fd is not None:
            sock = socket.socket(fileno=st.api_socket_fd) if st.api_socket_fd is not None else None
            self.http = api.serve(api.Api(self, st.api_token), st.api_host, st.api_port, sock)
            bound = self.http.socket.getsockname()
            host, port = str(bound[0]), int(bound[1])
            log.info("API on http://%s:%d%s (%s)", f"[{host}]" if ":" in host else host,
                     port, api.API,
                     "changes and map contents need the token" if st.api_token
                     else "no token: changes disabled, map contents open")  # fmt: skip
        threading.Thread(target=self._poll_stats, daemon=True, name="okopy-stats").start()
        threading.Thread(target=self._ovsdb_worker, daemon=True, name="okopy-ovsdb").start()
        if st.coordination is not None:
            threading.Thread(target=self._elect, daemon=True, name="okopy-election").start()
        if st.watch_interval > 0:
            threading.Thread(target=self._watch_policy, daemon=True, name="okopy-watch").start()

    def stop(self) -> None:
        self._stopped.set()
        self._ovsdb_wake.set()
        if self.http is not None:
            self.http.shutdown()
        super().stop()

    # The owner thread ---------------------------------------------------------------

    @set_ev_cls(OwnerCall)
    def _run_call(self, ev: OwnerCall) -> None:
        if not ev.future.set_running_or_notify_cancel():
            return  # the caller gave up waiting
        try:
            ev.future.set_result(ev.fn())
        except Exception as e:  # handed to the caller, who raises it
            ev.future.set_exception(e)

    def _post(self, fn: Callable[[], Any]) -> Future[Any]:
        """Queue 'fn' for the owner thread; returns the future of its result."""
        future: Future[Any] = Future()
        self._send_event(OwnerCall(fn, future), None)
        return future

    def _call(self, fn: Callable[[], T]) -> T:
        """Run 'fn' in the owner thread and return its result."""
        if threading.current_thread() is self._owner:
            return fn()
        future = self._post(fn)
        try:
            return future.result(OWNER_TIMEOUT)  # type: ignore[no-any-return]
        except TimeoutError:
            if future.cancel():
                raise TimeoutError(
                    f"the controller is busy: no answer in {OWNER_TIMEOUT:.0f} s"
                ) from None
            return future.result()  # type: ignore[no-any-return]

    def _send(self, dp: Any, msg: Any) -> int:
        """Send an os-ken message with an xid of ours; returns the xid."""
        msg.set_xid(self.pending.next_xid())
        dp.send_msg(msg)
        return int(msg.xid)

    # Connection ---------------------------------------------------------------

    @set_ev_cls(ofp_event.EventOFPStateChange, MAIN_DISPATCHER)
    def switch_ready(self, ev: Any) -> None:
        """A switch finished its handshake.  Not on its features reply: for
        OpenFlow 1.3 os-ken moves the connection to MAIN_DISPATCHER only
        once the port description arrives, and drops replies that come
        before it for the handlers below, so requests sent at the features
        reply could lose their answers (seen: a role reply, under load)."""
        dp = ev.datapath
        if dp.id is None:
            return
        old = self.datapaths.get(dp.id)
        if old is not None and old is not dp:
            self.pending.fail_connection(
                old, ConnectionError(f"switch {dp.id:#x} reconnected; try again")
            )
        self.datapaths[dp.id] = dp
        self.switch_maps.forget(dp.id)  # maybe a switch restarted, with other programs
        self._send_role(dp)
        if self.standing.master:
            self._start_sync(dp, "connected")
        else:
            log.info("switch %#x connected; standing by (not the master)", dp.id)

    @set_ev_cls(ofp_event.EventOFPStateChange, DEAD_DISPATCHER)
    def switch_gone(self, ev: Any) -> None:
        dp: Any = ev.datapath
        dpid = dp.id
        if dpid is None:
            return
        self.pending.fail_connection(dp, ConnectionError(f"switch {dpid:#x} disconnected"))
        if self.datapaths.get(dpid) is dp:
            del self.datapaths[dpid]
            self.syncs.pop(dpid, None)
            self.applying.pop(dpid, None)
            for preview in self.previews.pop(dpid, []):
                assert preview.preview is not None
                preview.preview.set_exception(ConnectionError(f"switch {dpid:#x} disconnected"))
            self.switch_maps.forget(dpid)
            log.warning("switch %#x disconnected", dpid)

    def _start_sync(self, dp: Any, why: str) -> None:
        desired = next((s for s in self.checked.switches.values() if s.dpid == dp.id), None)
        if desired is None:
            log.warning("switch %#x %s but is not in the policy: left alone", dp.id, why)
            return
        log.info("switch %#x %s: reading its programs and flows", dp.id, why)
        sync = Sync(desired)
        self.syncs[dp.id] = sync
        self._ask_programs(dp, sync, 0)
        sync.flows_xid = self._send(dp, openflow.flow_stats_request(dp))

    # Master and standby ------------------------------------------------------

    def _elect(self) -> None:
        """Asks the coordination service, every ELECTION_INTERVAL seconds,
        whether this controller is the master; tells the owner thread of a
        change."""
        assert self.settings.coordination is not None
        while not self._stopped.is_set():
            try:
                self.election = self.election or election.EtcdElection(
                    self.settings.coordination, self.settings.member
                )
                standing = self.election.poll()
            except Exception as e:
                log.warning("coordination service %s: %s", self.settings.coordination, e)
                standing = election.Standing(False, None)
            if standing != self.standing:
                try:
                    self._call(partial(self._standing_changed, standing))
                except TimeoutError as e:
                    log.warning("election: %s", e)
            self._stopped.wait(ELECTION_INTERVAL)
        if self.election is not None:
            self.election.stop()

    def _standing_changed(self, standing: election.Standing) -> None:
        was = self.standing.master
        self.standing = standing
        if standing.master and not was:
            log.info("master now (generation %s): reconciling every switch", standing.generation)
        elif was and not standing.master:
            log.warning("no longer the master (generation %s): standing by", standing.generation)
            self.syncs.clear()
        for dp in list(self.datapaths.values()):
            self._send_role(dp)
            if standing.master and not was:
                self._start_sync(dp, "master now")

    def _send_role(self, dp: Any) -> None:
        """Tells the switch this controller's role, with the master's
        generation id (none to tell before a master is known)."""
        st = self.standing
        if self.settings.coordination is None or st.generation is None:
            return
        role = ofp.OFPCR_ROLE_MASTER if st.master else ofp.OFPCR_ROLE_SLAVE
        self._send(dp, dp.ofproto_parser.OFPRoleRequest(dp, role, st.generation))

    @set_ev_cls(ofp_event.EventOFPRoleReply, MAIN_DISPATCHER)
    def role_reply(self, ev: Any) -> None:
        msg = ev.msg
        role = {ofp.OFPCR_ROLE_MASTER: "master", ofp.OFPCR_ROLE_SLAVE: "slave",
                ofp.OFPCR_ROLE_EQUAL: "equal"}.get(msg.role, str(msg.role))  # fmt: skip
        log.info("switch %#x: role %s, generation %d", msg.datapath.id, role, msg.generation_id)

    def _ask_programs(self, dp: Any, sync: Sync, start: int) -> None:
        sync.list_xid = self._send(dp, openflow.experimenter(dp, m.ProgListRequest(start, 0)))

    def _sync_of(self, dpid: int, xid: int, *, flows: bool) -> Sync | None:
        """The reconciliation or preview of switch 'dpid' whose program list
        (or, with 'flows', flow statistics) request was 'xid'."""
        candidates: list[Sync | None] = [self.syncs.get(dpid), *self.previews.get(dpid, [])]
        for sync in candidates:
            if sync is not None and (sync.flows_xid if flows else sync.list_xid) == xid:
                return sync
        return None

    @set_ev_cls(ofp_event.EventOFPExperimenter, MAIN_DISPATCHER)
    def experimenter_reply(self, ev: Any) -> None:
        msg, dp = ev.msg, ev.msg.datapath
        if msg.experimenter != OKOPY_VENDOR_ID:
            return
        try:
            reply = m.decode(msg.exp_type, bytes(msg.data))
        except m.OfpDecodeError as e:
            log.error("switch %#x: undecodable reply: %s", dp.id, e)
            return
        if isinstance(reply, m.ProgLoadReply | m.ProgUnloadReply):
            self.switch_maps.forget(dp.id, reply.prog_id)
        if self.pending.resolve(dp, msg.xid, reply):
            return
        sync = self._sync_of(dp.id, msg.xid, flows=False)
        if isinstance(reply, m.ProgListReply) and sync is not None:
            for p in reply.programs:
                sync.programs[p.prog_id] = ObservedProgram(p.prog_id, p.name, p.cookie)
            if reply.more and reply.programs:
                self._ask_programs(dp, sync, reply.programs[-1].prog_id + 1)
            else:
                sync.programs_done = True
                self._maybe_reconcile(dp, sync)
        elif isinstance(reply, m.ProgLoadReply):
            log.info("switch %#x: program %d loaded: %d insns, %d maps",
                     dp.id, reply.prog_id, reply.n_insns, len(reply.maps))  # fmt: skip
        elif isinstance(reply, m.ProgUnloadReply):
            log.info("switch %#x: program %d unloaded", dp.id, reply.prog_id)
        else:
            # Seeds' update replies, and answers to requests whose waiter
            # gave up or whose xid is not ours.
            log.debug("switch %#x: %s (xid %#x) matches no request: dropped",
                      dp.id, type(reply).__name__, msg.xid)  # fmt: skip

    @set_ev_cls(ofp_event.EventOFPFlowStatsReply, MAIN_DISPATCHER)
    def flow_stats_reply(self, ev: Any) -> None:
        dp = ev.msg.datapath
        sync = self._sync_of(dp.id, ev.msg.xid, flows=True)
        if sync is None:
            return
        for stat in ev.msg.body:
            sync.flows.add(openflow.flow_from_stats(stat))
        if not ev.msg.flags & ofp.OFPMPF_REPLY_MORE:
            sync.flows_done = True
            self._maybe_reconcile(dp, sync)

    @set_ev_cls(ofp_event.EventOFPErrorMsg, MAIN_DISPATCHER)
    def error(self, ev: Any) -> None:
        msg, dp = ev.msg, ev.msg.datapath
        err_type = None
        if msg.type == ofp.OFPET_EXPERIMENTER:
            err = m.decode_error(msg.exp_type, msg.experimenter, bytes(msg.data))
            text = str(err) if err else f"experimenter {msg.experimenter:#x} error {msg.exp_type}"
            err_type = err.error if err else None
        else:
            text = f"OpenFlow error type {msg.type} code {msg.code}"
        failure = LookupError(text) if err_type in NOT_FOUND_ERRORS else ValueError(text)
        if self.pending.fail(dp, msg.xid, failure):
            return
        sync = self._sync_of(dp.id, msg.xid, flows=False)
        if sync is not None and not sync.programs_done:
            log.error("switch %#x cannot list programs (%s): programs will not be deployed; "
                      "is it the patched ovs-vswitchd with BPF support?", dp.id, text)  # fmt: skip
            sync.programs_done = True
            self._maybe_reconcile(dp, sync)
            return
        for applying in self.applying.get(dp.id, []):
            if msg.xid in applying.xids:
                applying.refused += 1
        log.error("switch %#x: %s (xid %#x)", dp.id, text, msg.xid)

    # Reconcile ----------------------------------------------------------------

    def _maybe_reconcile(self, dp: Any, sync: Sync) -> None:
        if not (sync.programs_done and sync.flows_done):
            return
        observed = Observed(sync.programs, frozenset(sync.flows))
        steps = reconcile(sync.desired, observed, self.applied.get(dp.id))
        if sync.preview is not None:
            self.previews[dp.id].remove(sync)
            sync.preview.set_result([plan.describe(s, sync.desired, observed) for s in steps])
            return
        del self.syncs[dp.id]
        if not self.standing.master:
            return  # demoted while it read the switch: the new master changes it
        xids = [self._send(dp, msg) for step in steps for msg in openflow.messages(dp, step)]
        self.applied[dp.id] = sync.desired
        self.reconciles[dp.id] = self.reconciles.get(dp.id, 0) + 1
        kinds: dict[str, int] = {}
        for s in steps:
            kinds[type(s).__name__] = kinds.get(type(s).__name__, 0) + 1
        summary = ", ".join(f"{n} {k}" for k, n in sorted(kinds.items())) or "nothing to do"
        self._confirm(dp, Applying(summary, frozenset(xids)))

    def _confirm(self, dp: Any, applying: Applying) -> None:
        """Logs 'reconciled' once the switch has applied 'applying': only
        then may traffic rely on it (a program's maps half written classify
        packets by half a rule set).  A switch processes an OpenFlow
        connection's messages in order, so a barrier's reply comes after
        every reply and error of the messages sent before it."""
        self.applying.setdefault(dp.id, []).append(applying)
        waiter = self.pending.add(dp, ofp_parser.OFPBarrierReply)
        barrier = ofp_parser.OFPBarrierRequest(dp)
        barrier.set_xid(waiter.xid)
        dp.send_msg(barrier)
        waiter.future.add_done_callback(partial(self._confirmed, dp.id, applying))

    def _confirmed(self, dpid: int, applying: Applying, done: Future[Any]) -> None:
        waiting = self.applying.get(dpid, [])
        if applying in waiting:
            waiting.remove(applying)
        if done.exception() is not None:
            log.warning("switch %#x: not known whether it applied '%s': %s",
                        dpid, applying.summary, done.exception())  # fmt: skip
        elif applying.refused:
            log.error("switch %#x reconciled: %s; %d of them refused (errors above)",
                      dpid, applying.summary, applying.refused)  # fmt: skip
        else:
            log.info("switch %#x reconciled: %s", dpid, applying.summary)

    @set_ev_cls(ofp_event.EventOFPBarrierReply, MAIN_DISPATCHER)
    def barrier_reply(self, ev: Any) -> None:
        self.pending.resolve(ev.msg.datapath, ev.msg.xid, ev.msg)

    # Requests from other threads -------------------------------------------------

    def _send_request(self, dpid: int, message: m.Message) -> Waiter:
        """Owner side of `_request`: register a waiter and send."""
        dp = self.datapaths.get(dpid)
        if dp is None:
            raise ConnectionError(f"switch {dpid:#x} is not connected")
        msg = openflow.experimenter(dp, message)
        waiter = self.pending.add(dp, REPLIES[type(message)])
        msg.set_xid(waiter.xid)
        dp.send_msg(msg)
        return waiter

    def _request(self, dpid: int, message: m.Message) -> m.Message:
        """Send 'message' to switch 'dpid' and wait for its reply (any thread
        but the owner's)."""
        waiter = self._call(partial(self._send_request, dpid, message))
        try:
            return waiter.future.result(REQUEST_TIMEOUT)  # type: ignore[no-any-return]
        except TimeoutError:
            self._post(partial(self.pending.forget, waiter))
            raise TimeoutError(
                f"switch {dpid:#x} did not answer in {REQUEST_TIMEOUT:.0f} s"
            ) from None

    def _typed_map(self, dpid: int, prog_id: int, map_name: str) -> TypedMap:
        """Map 'map_name' of program 'prog_id' on switch 'dpid', typed by
        the policy's object, or else by the BTF the switch has (programs
        loaded by ovs-ofctl or another controller)."""
        sw = next((s for s in self.checked.switches.values() if s.dpid == dpid), None)
        prog = sw.programs.get(prog_id) if sw is not None else None
        if prog is not None:
            return prog.typed_map(map_name)
        return self._switch_map(dpid, prog_id, map_name)

    def _switch_map(self, dpid: int, prog_id: int, map_name: str) -> TypedMap:
        reply = self._request(dpid, m.ProgListRequest(prog_id, 1))
        assert isinstance(reply, m.ProgListReply)
        stats = next((p for p in reply.programs if p.prog_id == prog_id), None)
        if stats is None:
            raise LookupError(f"switch {dpid:#x} has no program {prog_id}")
        program = LoadedProgram.of(stats, time.monotonic())
        kept = self._call(partial(self.switch_maps.get, dpid, prog_id, program, map_name))
        if kept is not None:
            return kept
        descs = self._map_list(dpid, prog_id)
        desc = next((d for d in descs if d.name == map_name), None)
        if desc is None:
            raise LookupError(
                f"program {stats.name} ({prog_id}) has no map {map_name!r} "
                f"(maps: {', '.join(d.name for d in descs) or 'none'})"
            )
        btf = fetch_btf(partial(self._request, dpid), prog_id, map_name)
        typed, untyped_why = switch_btf.typed_map(desc, btf)
        if untyped_why is not None:
            log.warning("switch %#x program %d map %s: %s; entries are shown in hex",
                        dpid, prog_id, map_name, untyped_why)  # fmt: skip
        self._call(partial(self.switch_maps.put, dpid, prog_id, program, typed))
        return typed

    # api.Backend ------------------------------------------------------------------

    def switches(self) -> list[dict[str, Any]]:
        return self._call(self._switches)

    def _switches(self) -> list[dict[str, Any]]:
        return [
            {"name": name, "dpid": sw.dpid, "connected": sw.dpid in self.datapaths,
             "programs": sorted(sw.programs), "flows": len(sw.flows),
             **({"ovsdb": self.ovsdb_status[name]} if name in self.ovsdb_status else {})}
            for name, sw in self.checked.switches.items()
        ]  # fmt: skip

    def programs(self, dpid: int) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        start = 0
        for _ in range(1024):
            reply = self._request(dpid, m.ProgListRequest(start, 0))
            assert isinstance(reply, m.ProgListReply)
            for p in reply.programs:
                out.append({
                    "id": p.prog_id, "name": p.name, "instructions": p.n_insns,
                    "mode": {1: "interpreter", 2: "jit", 3: "sandbox"}.get(p.exec_mode, "?"),
                    "loaded_seconds": p.duration_sec, "cookie": f"{p.cookie:#018x}",
                    "runs": p.n_runs, "run_nsec": p.run_nsec,
                    "verdicts": dict(zip(metrics.VERDICTS, p.verdicts, strict=False)),
                })  # fmt: skip
            if not reply.more or not reply.programs:
                break
            start = reply.programs[-1].prog_id + 1
        return out

    def _map_list(self, dpid: int, prog_id: int) -> tuple[m.MapDesc, ...]:
        reply = self._request(dpid, m.MapListRequest(prog_id))
        assert isinstance(reply, m.MapListReply)
        return reply.maps

    def map_entries(self, dpid: int, prog_id: int) -> dict[str, int]:
        """Entries in each map of program 'prog_id' now, by map name."""
        return {d.name: d.n_entries for d in self._map_list(dpid, prog_id)}

    def maps(self, dpid: int, prog_id: int) -> list[dict[str, Any]]:
        out = []
        for d in self._map_list(dpid, prog_id):
            try:
                kind = MapType(d.map_type).name.lower()
            except ValueError:
                kind = str(d.map_type)
            out.append({
                "name": d.name, "type": kind, "key_size": d.key_size,
                "value_size": d.value_size, "max_entries": d.max_entries,
                "entries": d.n_entries, "pinned": bool(d.flags & MAP_DESC_PINNED),
            })  # fmt: skip
        return out

    def map_dump(self, dpid: int, prog_id: int, map_name: str) -> list[dict[str, Any]]:
        typed = self._typed_map(dpid, prog_id, map_name)
        ks, vs = typed.key_size, typed.value_size
        out: list[dict[str, Any]] = []
        cursor: tuple[bytes, ...] = ()
        for _ in range(1 << 16):
            reply = self._request(dpid, m.MapDumpRequest(prog_id, map_name, ks, vs, 0, 0, cursor))
            assert isinstance(reply, m.MapDumpReply)
            for k, v in zip(reply.keys, reply.values, strict=True):
                out.append(typed.decode_entry(k, v))
            if not reply.more or not reply.keys:
                break
            cursor = (reply.keys[-1],)
        return out

    def map_lookup(self, dpid: int, prog_id: int, map_name: str, key: Any) -> Any:
        typed = self._typed_map(dpid, prog_id, map_name)
        ks, vs = typed.key_size, typed.value_size
        raw = typed.encode_key(key)
        reply = self._request(dpid, m.MapLookupRequest(prog_id, map_name, ks, vs, 1, 0, (raw,)))
        assert isinstance(reply, m.MapLookupReply)
        if not reply.values:
            return None
        return typed.decode_entry(raw, reply.values[0])["value"]

    def map_update(
        self, dpid: int, prog_id: int, map_name: str, key: Any, value: Any, flags: str
    ) -> None:
        typed = self._typed_map(dpid, prog_id, map_name)
        ks, vs = typed.key_size, typed.value_size
        k, v = typed.encode_key(key), typed.encode_value(value)
        mode = MapUpdateFlags[flags.upper()]
        self._request(dpid, m.MapUpdate(prog_id, map_name, ks, vs, 1, mode, (k,), (v,)))

    def map_delete(self, dpid: int, prog_id: int, map_name: str, key: Any) -> bool:
        typed = self._typed_map(dpid, prog_id, map_name)
        ks, vs = typed.key_size, typed.value_size
        k = typed.encode_key(key)
        reply = self._request(dpid, m.MapDelete(prog_id, map_name, ks, vs, 1, 0, (k,)))
        assert isinstance(reply, m.MapDeleteReply)
        return reply.count > 0

    def reload(self) -> dict[str, Any]:
        """Re-read and re-check the policy; reconcile every connected switch.
        A policy that fails its checks raises ConfigError and changes
        nothing but the configuration metrics."""
        with self._reloading:
            # Built and verified here, not in the owner thread, which keeps
            # answering the switches meanwhile.
            try:
                checked = check_policy(load_policy(Path(self.settings.policy)))
            except ConfigError:
                self._call(self._load_refused)
                raise
            self._call(partial(self._apply_policy, checked))
        return {"reloaded": self.settings.policy, "switches": sorted(checked.switches)}

    def diff(self) -> dict[str, Any]:
        """What reloading the policy file would change on each switch, read
        from the switches now; nothing is changed.  Raises ConfigError, as
        reload() does, for a policy it would refuse."""
        with self._reloading:
            checked = check_policy(load_policy(Path(self.settings.policy)))
        previews = self._call(partial(self._start_previews, checked))
        out = []
        deadline = time.monotonic() + REQUEST_TIMEOUT
        for name, dpid, future in previews:
            entry: dict[str, Any] = {"name": name, "dpid": dpid, "connected": future is not None}
            if future is not None:
                try:
                    entry["changes"] = future.result(max(0.0, deadline - time.monotonic()))
                except FutureTimeout:
                    raise TimeoutError(f"switch {dpid:#x} did not answer in time") from None
                entry["summary"] = plan.summary(entry["changes"])
            out.append(entry)
        return {"policy": self.settings.policy, "switches": out}

    def _start_previews(
        self, checked: Checked
    ) -> list[tuple[str, int, Future[list[dict[str, Any]]] | None]]:
        out: list[tuple[str, int, Future[list[dict[str, Any]]] | None]] = []
        for name, desired in sorted(checked.switches.items()):
            dp = self.datapaths.get(desired.dpid)
            if dp is None:
                out.append((name, desired.dpid, None))
                continue
            sync = Sync(desired, preview=Future())
            self.previews.setdefault(dp.id, []).append(sync)
            self._ask_programs(dp, sync, 0)
            sync.flows_xid = self._send(dp, openflow.flow_stats_request(dp))
            assert sync.preview is not None
            out.append((name, desired.dpid, sync.preview))
        return out

    def _ovsdb_worker(self) -> None:
        """Checks the bridge of every switch whose policy names its OVSDB
        and applies the switch's settings there: at start, after every
        reload, and every OVSDB_INTERVAL seconds (someone may change them
        behind the controller's back)."""
        while not self._stopped.is_set():
            policy = self.checked.policy
            specs = [s for s in policy.switches.values() if s.ovsdb] if policy else []
            for spec in specs:
                status = _ovsdb_pass(spec)
                self._post(partial(self._store_ovsdb, spec.name, status))
            self._ovsdb_wake.wait(OVSDB_INTERVAL)
            self._ovsdb_wake.clear()

    def _store_ovsdb(self, name: str, status: dict[str, Any]) -> None:
        old = self.ovsdb_status.get(name, {})
        if status.get("error") and status["error"] != old.get("error"):
            log.error("switch %s: %s", name, status["error"])
        if status.get("applied"):
            log.info("switch %s: OVSDB %s: set %s", name, status["remote"],
                     ", ".join(status["applied"]))  # fmt: skip
        self.ovsdb_status[name] = status

    def _load_refused(self) -> None:
        self.config = dataclasses.replace(
            self.config, load_errors=self.config.load_errors + 1, applied=False
        )

    def _apply_policy(self, checked: Checked) -> None:
        self.checked = checked
        self.config = metrics.ConfigState(_config_hash(checked), self.config.load_errors, True)
        self._ovsdb_wake.set()
        # Logged before any switch is reconciled, so that readers of the log
        # see the reload first.
        log.info("policy reloaded from %s", self.settings.policy)
        for dp in list(self.datapaths.values()) if self.standing.master else []:
            self._start_sync(dp, "policy reloaded")

    def metrics(self) -> str:
        return self._call(self._metrics)

    def _metrics(self) -> str:
        connected = {sw.dpid: sw.dpid in self.datapaths for sw in self.checked.switches.values()}
        samples = [s for per in self.samples.values() for s in per]
        sizes = {k: n for per in self.map_sizes.values() for k, n in per.items()}
        return metrics.render(
            metrics.Snapshot(connected, samples, sizes, dict(self.reconciles), self.config,
                             self.standing.master)
        )  # fmt: skip

    def _watch_policy(self) -> None:
        """Reload when a file of the policy (its own, those it includes,
        its programs') changes; a bad edit is logged and kept out, like a
        bad SIGHUP reload, until the next change."""
        last = self._watched_state({})
        while not self._stopped.wait(self.settings.watch_interval):
            now = self._watched_state({})
            if now == last:
                continue
            log.info("policy files changed: reloading")
            _reload_logged(self)
            # What the reload may have missed is what changed after 'now'
            # was read: keep 'now' for the files watched before, so an edit
            # made during the reload reloads again.  Files the reloaded
            # policy names for the first time are read from here on.
            last = self._watched_state(now)

    def _watched_state(self, known: dict[Path, str]) -> dict[Path, str]:
        """What each file of the policy in force holds, taken from 'known'
        where it has the file, read now otherwise."""
        policy = self.checked.policy
        paths = policy.watched() if policy else []
        return {p: known[p] if p in known else _file_digest(p) for p in paths}

    def _poll_stats(self) -> None:
        while not self._stopped.wait(self.settings.stats_interval):
            try:
                dpids = self._call(lambda: list(self.datapaths))
            except TimeoutError as e:
                log.warning("statistics: %s", e)
                continue
            for dpid in dpids:
                try:
                    progs = self.programs(dpid)
                except (ConnectionError, TimeoutError, ValueError, LookupError) as e:
                    log.debug("statistics of %#x: %s", dpid, e)
                    continue
                samples = [
                    metrics.ProgramSample(dpid, p["id"], p["name"], p["instructions"], p["runs"],
                                          p["run_nsec"], tuple(p["verdicts"].values()))
                    for p in progs
                ]  # fmt: skip
                sizes = self._poll_map_sizes(dpid, [p["id"] for p in progs])
                self._post(partial(self._store_stats, dpid, samples, sizes))

    def _store_stats(
        self,
        dpid: int,
        samples: list[ProgramSample],
        sizes: dict[tuple[int, int, str], MapSample],
    ) -> None:
        self.samples[dpid] = samples
        self.map_sizes[dpid] = sizes

    def _poll_map_sizes(
        self, dpid: int, prog_ids: list[int]
    ) -> dict[tuple[int, int, str], MapSample]:
        sizes: dict[tuple[int, int, str], MapSample] = {}
        for pid in prog_ids:
            try:
                descs = self._map_list(dpid, pid)
            except LookupError:
                continue  # unloaded since the program list
            except (ConnectionError, TimeoutError, ValueError) as e:
                log.debug("map sizes of %#x program %d: %s", dpid, pid, e)
                continue
            for d in descs:
                sizes[dpid, pid, d.name] = MapSample(d.n_entries, d.max_entries)
        return sizes


def run(
    policy_path: str,
    listen_host: str = "127.0.0.1",
    listen_port: int = 6653,
    api_host: str = "127.0.0.1",
    api_port: int = 0,
    api_token: str | None = None,
    api_socket_fd: int | None = None,
    watch_interval: float = 0.0,
    coordination: str | None = None,
    member: str = "",
) -> None:
    """Run the controller in this process until it is signalled to stop;
    the API on api_host:api_port, or on the listening socket
    'api_socket_fd', or nowhere (port 0 and no socket)."""
    OkopyController.settings = Settings(
        policy_path, api_host, api_port, api_token, api_socket_fd=api_socket_fd,
        watch_interval=watch_interval, coordination=coordination, member=member,
    )  # fmt: skip
    cfg.CONF(
        args=[f"--ofp-listen-host={listen_host}", f"--ofp-tcp-listen-port={listen_port}"],
        project="os_ken",
    )
    manager = app_manager.AppManager.get_instance()

    def on_hup() -> None:
        while True:
            signal.sigwait({signal.SIGHUP})
            app = manager.applications.get("OkopyController")
            if app is not None:
                _reload_logged(app)

    # SIGHUP is taken by a thread of its own, blocked everywhere else (the
    # threads started later inherit the mask).  A Python handler would run
    # only when the kernel gives the signal to the main thread, which
    # waits in join() for good: given to another thread (as it may be,
    # say, to a process resumed after SIGSTOP), it was never handled.
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGHUP})
    threading.Thread(target=on_hup, daemon=True, name="okopy-sighup").start()
    app_manager.AppManager.run_apps([__name__])


def _ovsdb_pass(spec: SwitchSpec) -> dict[str, Any]:
    """One look at a switch's OVSDB: its bridge, the datapath check, and
    the settings applied; what went wrong as "error"."""
    assert spec.ovsdb is not None
    status: dict[str, Any] = {"remote": spec.ovsdb}
    try:
        db = ovsdb.Ovsdb(spec.ovsdb, timeout=OVSDB_TIMEOUT)
    except ovsdb.OvsdbError as e:
        return {**status, "error": str(e)}
    try:
        state = db.state(spec.dpid, spec.bridge)
        problem = ovsdb.datapath_problem(state)
        applied = [] if problem else db.apply(spec.dpid, spec.bridge, spec.settings)
        state = db.state(spec.dpid, spec.bridge) if applied else state
        status.update(state.to_json(), applied=applied)
        if problem:
            status["error"] = problem
    except ovsdb.OvsdbError as e:
        status["error"] = str(e)
    finally:
        db.close()
    return status


def _config_hash(checked: Checked) -> str:
    files = checked.policy.files if checked.policy is not None else ()
    return metrics.config_hash(files, [p.elf for p in checked.programs.values()])


def _file_digest(path: Path) -> str:
    """What the file at 'path' holds now (a missing file counts too)."""
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError as e:
        return f"unreadable: {e.errno}"


def _reload_logged(app: OkopyController) -> None:
    try:
        app.reload()
    except ConfigError as e:
        log.error("policy reload refused, keeping the running policy:\n%s", e)
    except (OSError, TimeoutError) as e:
        log.error("policy reload failed, keeping the running policy: %s", e)
