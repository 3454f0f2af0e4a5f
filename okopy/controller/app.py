"""The os-ken application: the thin shim around the pure core.

On every (re)connection of a switch it asks for the switch's programs and
its okopy flows, then sends what `reconcile()` returns.  It holds no policy
logic of its own.  Run it with `okopy controller --policy FILE`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from os_ken import cfg
from os_ken.base import app_manager
from os_ken.controller import ofp_event
from os_ken.controller.handler import CONFIG_DISPATCHER, MAIN_DISPATCHER, set_ev_cls
from os_ken.ofproto import ofproto_v1_3 as ofp

from okopy import config, policy
from okopy.controller import openflow
from okopy.controller.desired import DesiredSwitch, Flow
from okopy.controller.reconcile import Observed, ObservedProgram, reconcile
from okopy.ofp import messages as m
from okopy.ofp.constants import OKOPY_VENDOR_ID

log = logging.getLogger("okopy.controller")


@dataclass
class Sync:
    """One switch's state collection in progress."""

    desired: DesiredSwitch
    programs: dict[int, ObservedProgram] = field(default_factory=dict)
    flows: set[Flow] = field(default_factory=set)
    programs_done: bool = False
    flows_done: bool = False
    list_xid: int = -1


@dataclass
class Settings:
    policy: str = ""


class OkopyController(app_manager.OSKenApp):
    OFP_VERSIONS: ClassVar[list[int]] = [ofp.OFP_VERSION]
    settings: ClassVar[Settings] = Settings()

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        openflow.register_extension()
        self.checked = config.check(policy.load(Path(self.settings.policy)))
        self.syncs: dict[int, Sync] = {}
        self.applied: dict[int, DesiredSwitch] = {}
        for name, sw in self.checked.switches.items():
            log.info("policy: switch %s (dpid %#x): %d programs, %d flows",
                     name, sw.dpid, len(sw.programs), len(sw.flows))  # fmt: skip

    # Connection ---------------------------------------------------------------

    @set_ev_cls(ofp_event.EventOFPSwitchFeatures, CONFIG_DISPATCHER)
    def switch_features(self, ev: Any) -> None:
        dp = ev.msg.datapath
        # os-ken's own handler of this event sets dp.id, maybe after this one.
        dpid = ev.msg.datapath_id
        dp.id = dpid
        desired = next((s for s in self.checked.switches.values() if s.dpid == dpid), None)
        if desired is None:
            log.warning("switch %#x connected but is not in the policy: left alone", dpid)
            return
        log.info("switch %#x connected: reading its programs and flows", dpid)
        sync = Sync(desired)
        self.syncs[dpid] = sync
        self._ask_programs(dp, sync, 0)
        dp.send_msg(openflow.flow_stats_request(dp))

    def _ask_programs(self, dp: Any, sync: Sync, start: int) -> None:
        msg = openflow.experimenter(dp, m.ProgListRequest(start, 0))
        dp.set_xid(msg)
        sync.list_xid = msg.xid
        dp.send_msg(msg)

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
        sync = self.syncs.get(dp.id)
        if isinstance(reply, m.ProgListReply) and sync is not None:
            for p in reply.programs:
                sync.programs[p.prog_id] = ObservedProgram(p.prog_id, p.name, p.cookie)
            if reply.more and reply.programs:
                self._ask_programs(dp, sync, reply.programs[-1].prog_id + 1)
            else:
                sync.programs_done = True
                self._maybe_reconcile(dp)
        elif isinstance(reply, m.ProgLoadReply):
            log.info("switch %#x: program %d loaded: %d insns, %d maps",
                     dp.id, reply.prog_id, reply.n_insns, len(reply.maps))  # fmt: skip
        elif isinstance(reply, m.ProgUnloadReply):
            log.info("switch %#x: program %d unloaded", dp.id, reply.prog_id)

    @set_ev_cls(ofp_event.EventOFPFlowStatsReply, MAIN_DISPATCHER)
    def flow_stats_reply(self, ev: Any) -> None:
        dp = ev.msg.datapath
        sync = self.syncs.get(dp.id)
        if sync is None:
            return
        for stat in ev.msg.body:
            sync.flows.add(openflow.flow_from_stats(stat))
        if not ev.msg.flags & ofp.OFPMPF_REPLY_MORE:
            sync.flows_done = True
            self._maybe_reconcile(dp)

    @set_ev_cls(ofp_event.EventOFPErrorMsg, MAIN_DISPATCHER)
    def error(self, ev: Any) -> None:
        msg, dp = ev.msg, ev.msg.datapath
        sync = self.syncs.get(dp.id)
        if msg.type == ofp.OFPET_EXPERIMENTER:
            err = m.decode_error(msg.exp_type, msg.experimenter, bytes(msg.data))
            text = str(err) if err else f"experimenter {msg.experimenter:#x} error {msg.exp_type}"
        else:
            text = f"OpenFlow error type {msg.type} code {msg.code}"
        if sync is not None and msg.xid == sync.list_xid and not sync.programs_done:
            log.error("switch %#x cannot list programs (%s): programs will not be deployed; "
                      "is it the patched ovs-vswitchd with BPF support?", dp.id, text)  # fmt: skip
            sync.programs_done = True
            self._maybe_reconcile(dp)
            return
        log.error("switch %#x: %s (xid %#x)", dp.id, text, msg.xid)

    # Reconcile ----------------------------------------------------------------

    def _maybe_reconcile(self, dp: Any) -> None:
        sync = self.syncs.get(dp.id)
        if sync is None or not (sync.programs_done and sync.flows_done):
            return
        del self.syncs[dp.id]
        observed = Observed(sync.programs, frozenset(sync.flows))
        steps = reconcile(sync.desired, observed, self.applied.get(dp.id))
        for step in steps:
            for msg in openflow.messages(dp, step):
                dp.send_msg(msg)
        self.applied[dp.id] = sync.desired
        kinds: dict[str, int] = {}
        for s in steps:
            kinds[type(s).__name__] = kinds.get(type(s).__name__, 0) + 1
        summary = ", ".join(f"{n} {k}" for k, n in sorted(kinds.items())) or "nothing to do"
        log.info("switch %#x reconciled: %s", dp.id, summary)


def run(policy_path: str, listen_host: str = "127.0.0.1", listen_port: int = 6653) -> None:
    """Run the controller in this process until it is signalled to stop."""
    OkopyController.settings = Settings(policy_path)
    cfg.CONF(
        args=[f"--ofp-listen-host={listen_host}", f"--ofp-tcp-listen-port={listen_port}"],
        project="os_ken",
    )
    app_manager.AppManager.run_apps([__name__])
