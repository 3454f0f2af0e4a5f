"""Intents <-> os-ken OpenFlow 1.3 objects.  The only module that builds
os-ken messages; `okopy.controller.app` is the only one that runs os-ken.

Flows are translated both ways through the canonical `Flow` form, so what
the switch reports compares equal to what the policy asks for.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from typing import Any

from os_ken.lib import type_desc
from os_ken.ofproto import ofproto_v1_3 as ofp
from os_ken.ofproto import ofproto_v1_3_parser as parser
from os_ken.ofproto import oxm_fields

from okopy.controller import intents as it
from okopy.ofp import messages as m
from okopy.ofp.action import BpfAction
from okopy.ofp.constants import OKOPY_BPF_VERDICT_SET, OKOPY_VENDOR_ID, OKOXM_ET_BPF_VERDICT
from okopy.policy.desired import COOKIE_MASK, COOKIE_OKOPY, Flow

OFPVID_PRESENT = 0x1000


class OkopyExperimenter(oxm_fields._Experimenter):  # type: ignore[misc]
    """Experimenter OXM class of okopy's extension (bpf_verdict)."""

    experimenter_id = OKOPY_VENDOR_ID


_registered = False


def register_extension() -> None:
    """Teach os-ken's OpenFlow 1.3 codec the bpf_verdict field.

    Called explicitly by the controller at start, never at import."""
    global _registered  # noqa: PLW0603 - os-ken's field table is module state
    if _registered:
        return
    ofp.oxm_types.append(OkopyExperimenter("bpf_verdict", OKOXM_ET_BPF_VERDICT, type_desc.Int8))
    oxm_fields.generate(ofp.__name__)
    _registered = True


def experimenter(dp: Any, msg: m.Message) -> Any:
    return parser.OFPExperimenter(
        dp, experimenter=OKOPY_VENDOR_ID, exp_type=int(msg.TYPE), data=msg.body()
    )


# Match -------------------------------------------------------------------------


def match_kwargs(flow: Flow) -> dict[str, Any]:
    kw: dict[str, Any] = {}
    for field, value in flow.match:
        if field in ("ipv4_src", "ipv4_dst") and "/" in value:
            net = ipaddress.IPv4Network(value)
            kw[field] = (str(net.network_address), str(net.netmask))
        elif field in ("ipv4_src", "ipv4_dst", "eth_src", "eth_dst"):
            kw[field] = value
        elif field == "vlan_vid":
            kw[field] = int(value) | OFPVID_PRESENT
        elif field == "bpf_verdict":
            kw[field] = 0 if value == "none" else OKOPY_BPF_VERDICT_SET | int(value)
        else:
            kw[field] = int(value)
    return kw


def canonical_match(match: Any) -> tuple[tuple[str, str], ...]:
    out = []
    for field, value in match.items():
        if field in ("ipv4_src", "ipv4_dst"):
            text = str(value)
            if isinstance(value, tuple):
                net = ipaddress.IPv4Network(f"{value[0]}/{value[1]}", strict=False)
                text = str(net) if net.prefixlen < 32 else str(net.network_address)
            out.append((field, text))
        elif field in ("eth_src", "eth_dst"):
            out.append((field, str(value).lower()))
        elif field == "vlan_vid":
            out.append((field, str(int(value) & ~OFPVID_PRESENT)))
        elif field == "bpf_verdict":
            v = int(value[0] if isinstance(value, tuple) else value)
            out.append((field, "none" if v == 0 else str(v & ~OKOPY_BPF_VERDICT_SET)))
        else:
            out.append((field, str(value if not isinstance(value, tuple) else value[0])))
    return tuple(sorted(out))


# Actions -----------------------------------------------------------------------

SPECIAL_PORTS = {
    "normal": ofp.OFPP_NORMAL,
    "controller": ofp.OFPP_CONTROLLER,
    "in_port": ofp.OFPP_IN_PORT,
    "flood": ofp.OFPP_FLOOD,
}
PORT_NAMES = {v: k for k, v in SPECIAL_PORTS.items()}


def instructions(flow: Flow) -> list[Any]:
    actions: list[Any] = []
    goto = None
    for a in flow.actions:
        kind, _, arg = a.partition(":")
        if kind == "drop":
            continue
        if kind in SPECIAL_PORTS:
            actions.append(parser.OFPActionOutput(SPECIAL_PORTS[kind], ofp.OFPCML_NO_BUFFER))
        elif kind == "output":
            actions.append(parser.OFPActionOutput(int(arg)))
        elif kind == "goto_table":
            goto = int(arg)
        elif kind == "bpf":
            payload = BpfAction.from_canonical(arg).payload()
            actions.append(parser.OFPActionExperimenterUnknown(OKOPY_VENDOR_ID, payload))
        else:
            raise ValueError(f"cannot encode action {a!r}")
    out: list[Any] = []
    if actions:
        out.append(parser.OFPInstructionActions(ofp.OFPIT_APPLY_ACTIONS, actions))
    if goto is not None:
        out.append(parser.OFPInstructionGotoTable(goto))
    return out


def canonical_actions(insts: Iterable[Any]) -> tuple[str, ...]:
    out: list[str] = []
    goto: list[str] = []
    for inst in insts:
        if isinstance(inst, parser.OFPInstructionGotoTable):
            goto.append(f"goto_table:{inst.table_id}")
            continue
        for a in getattr(inst, "actions", []):
            if isinstance(a, parser.OFPActionOutput):
                out.append(PORT_NAMES.get(a.port, f"output:{a.port}"))
            elif getattr(a, "experimenter", None) == OKOPY_VENDOR_ID:
                raw = a.buf if hasattr(a, "buf") else b""
                b = _bpf_from(a, raw)
                out.append(b.canonical())
            else:
                out.append(type(a).__name__)
    result = tuple(out + goto)
    return result or ("drop",)


def _bpf_from(action: Any, raw: bytes) -> BpfAction:
    data = getattr(action, "data", None) or raw
    if len(data) >= 16:
        return BpfAction.decode(bytes(data[:16]))
    header = bytes.fromhex("ffff0010") + OKOPY_VENDOR_ID.to_bytes(4, "big")
    return BpfAction.decode(header + bytes(data))


def flow_from_stats(stat: Any) -> Flow:
    return Flow(
        stat.table_id,
        stat.priority,
        canonical_match(stat.match),
        canonical_actions(stat.instructions),
        stat.cookie,
    )


def flow_stats_request(dp: Any) -> Any:
    return parser.OFPFlowStatsRequest(
        dp, 0, ofp.OFPTT_ALL, ofp.OFPP_ANY, ofp.OFPG_ANY, COOKIE_OKOPY, COOKIE_MASK,
        parser.OFPMatch(),
    )  # fmt: skip


# Intents -> messages ------------------------------------------------------------


def messages(dp: Any, intent: it.Intent) -> list[Any]:
    """The os-ken messages that carry out 'intent' on datapath 'dp'."""
    if isinstance(intent, it.LoadProgram):
        flags = 1 if intent.replace else 0  # OKOPY_PLF_REPLACE
        return [
            experimenter(dp, chunk)
            for chunk in m.ProgLoad.chunks(
                intent.prog_id, intent.elf, intent.name, flags, cookie=intent.cookie
            )
        ]
    if isinstance(intent, it.UnloadProgram):
        return [experimenter(dp, m.ProgUnload(intent.prog_id))]
    if isinstance(intent, it.UpdateMap):
        msg = m.MapUpdate(intent.prog_id, intent.map, len(intent.key), len(intent.value), 1, 0,
                          (intent.key,), (intent.value,))  # fmt: skip
        return [experimenter(dp, msg)]
    if isinstance(intent, it.DeleteMapEntry):
        delete = m.MapDelete(
            intent.prog_id, intent.map, len(intent.key), intent.value_size, 1, 0, (intent.key,)
        )
        return [experimenter(dp, delete)]
    if isinstance(intent, it.AddFlow):
        f = intent.flow
        return [
            parser.OFPFlowMod(
                dp, cookie=f.cookie, table_id=f.table, priority=f.priority,
                command=ofp.OFPFC_ADD, match=parser.OFPMatch(**match_kwargs(f)),
                instructions=instructions(f),
            )
        ]  # fmt: skip
    if isinstance(intent, it.DeleteFlow):
        f = intent.flow
        return [
            parser.OFPFlowMod(
                dp, cookie=f.cookie, cookie_mask=0xFFFFFFFFFFFFFFFF, table_id=f.table,
                priority=f.priority, command=ofp.OFPFC_DELETE_STRICT,
                out_port=ofp.OFPP_ANY, out_group=ofp.OFPG_ANY,
                match=parser.OFPMatch(**match_kwargs(f)),
            )
        ]  # fmt: skip
    raise TypeError(f"unknown intent {intent!r}")


class _Encoder:
    """What os-ken needs of a datapath to serialize a message."""

    ofproto = ofp
    ofproto_parser = parser


def encode(intent: it.Intent) -> list[bytes]:
    """The OpenFlow 1.3 messages that carry out 'intent', as bytes, for a
    tool that sends them over a connection of its own (`okopy replay`)
    exactly as the controller would."""
    register_extension()
    out = []
    for msg in messages(_Encoder(), intent):
        msg.serialize()
        out.append(bytes(msg.buf))
    return out
