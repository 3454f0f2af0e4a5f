"""Switch settings through OVSDB: the bridge a policy's switch is, whether
it is on the userspace datapath, and the settings the policy declares.

The pure part (`changes()`, `datapath_problem()`; the settings are the
policy's `OvsSettings`) decides; the
`Ovsdb` class talks to ovsdb-server with the OVSDB IDL of PyPI's `ovs`
package (the schema is read from the server, so any Open vSwitch works)."""

from __future__ import annotations

import os
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from okopy.policy.file import OvsSettings

USERSPACE = "netdev"
# Settings of the Open_vSwitch table's other_config the series reads.
OTHER_CONFIG = {"bpf-jit": "bpf-jit", "bpf-max-map-memory": "bpf-max-map-memory"}
FAIL_MODES = ("secure", "standalone")


class OvsdbError(RuntimeError):
    """OVSDB could not be reached, or refused a change."""


@dataclass(frozen=True)
class BridgeState:
    """What OVSDB says of a bridge and of its Open vSwitch."""

    name: str
    datapath_type: str
    fail_mode: str
    controllers: tuple[str, ...]
    other_config: Mapping[str, str] = field(default_factory=dict)  # Open_vSwitch's

    def to_json(self) -> dict[str, Any]:
        return {
            "bridge": self.name,
            "datapath_type": self.datapath_type or "system",
            "fail_mode": self.fail_mode or "standalone",
            "controllers": list(self.controllers),
            "other_config": {k: v for k, v in self.other_config.items() if k in OTHER_CONFIG},
        }


def datapath_problem(state: BridgeState) -> str | None:
    """Why the bpf action cannot work on this bridge, or None."""
    if state.datapath_type == USERSPACE:
        return None
    kind = state.datapath_type or "system"
    return (
        f"bridge {state.name} is on the {kind!r} datapath: the bpf action runs only on the "
        f"userspace datapath, and every flow that uses it fails there; set "
        f"datapath_type=netdev on the bridge"
    )


def changes(state: BridgeState, want: OvsSettings) -> list[str]:
    """The changes that bring 'state' to 'want', as text ([] if none)."""
    out = [
        f"other_config:{k}={v}"
        for k, v in sorted(want.other_config().items())
        if state.other_config.get(k) != v
    ]
    if want.fail_mode is not None and (state.fail_mode or "standalone") != want.fail_mode:
        out.append(f"fail_mode={want.fail_mode}")
    if want.controllers is not None and sorted(state.controllers) != sorted(want.controllers):
        out.append(f"controllers={','.join(want.controllers)}")
    return out


class Ovsdb:
    """One ovsdb-server, through an IDL of the tables this module reads."""

    COLUMNS: Mapping[str, Sequence[str]] = {
        "Open_vSwitch": ("other_config", "bridges"),
        "Bridge": ("name", "datapath_type", "datapath_id", "fail_mode", "controller"),
        "Controller": ("target",),
    }

    def __init__(self, remote: str, timeout: float = 10.0) -> None:
        import ovs.db.idl  # noqa: PLC0415 - only a controller with OVSDB needs it

        self.remote = remote
        self.timeout = timeout
        helper = ovs.db.idl.SchemaHelper(schema_json=self._schema())
        for table, columns in self.COLUMNS.items():
            helper.register_columns(table, list(columns))
        self.idl = ovs.db.idl.Idl(remote, helper)
        self._wait(self._synced, "Open_vSwitch record")

    def close(self) -> None:
        self.idl.close()

    def _synced(self) -> bool:
        return bool(self.idl.tables["Open_vSwitch"].rows)

    def _schema(self) -> Any:
        import ovs.jsonrpc  # noqa: PLC0415
        import ovs.stream  # noqa: PLC0415

        error, stream = ovs.stream.Stream.open_block(
            ovs.stream.Stream.open(self.remote), int(self.timeout * 1000)
        )
        if error:
            raise OvsdbError(f"{self.remote}: cannot connect ({_strerror(error)})")
        rpc = ovs.jsonrpc.Connection(stream)
        try:
            request = ovs.jsonrpc.Message.create_request("get_schema", ["Open_vSwitch"])
            error, reply = rpc.transact_block(request)
        finally:
            rpc.close()
        if error or reply is None or reply.error:
            why = _strerror(error) if error else (reply.error if reply else "no reply")
            raise OvsdbError(f"{self.remote}: no Open_vSwitch schema ({why})")
        return reply.result

    def _wait(self, done: Any, what: str) -> None:
        import ovs.poller  # noqa: PLC0415

        deadline = time.monotonic() + self.timeout
        while True:
            self.idl.run()
            if done():
                return
            left = deadline - time.monotonic()
            if left <= 0:
                raise OvsdbError(f"{self.remote}: no {what} in {self.timeout:g} s")
            poller = ovs.poller.Poller()
            self.idl.wait(poller)
            poller.timer_wait(int(min(left, 0.5) * 1000))
            poller.block()

    def _root(self) -> Any:
        rows = list(self.idl.tables["Open_vSwitch"].rows.values())
        if not rows:
            raise OvsdbError(f"{self.remote}: no Open_vSwitch record")
        return rows[0]

    def _bridge(self, dpid: int, name: str | None) -> Any:
        bridges = list(self.idl.tables["Bridge"].rows.values())
        for row in bridges:
            ids = row.datapath_id
            if (name is not None and row.name == name) or (
                name is None and ids and int(ids[0], 16) == dpid
            ):
                return row
        known = ", ".join(sorted(r.name for r in bridges)) or "none"
        which = f"no bridge {name!r}" if name else f"no bridge with datapath id {dpid:#x}"
        raise OvsdbError(f"{self.remote}: {which} (bridges: {known})")

    def state(self, dpid: int, bridge: str | None = None) -> BridgeState:
        self.idl.run()
        row = self._bridge(dpid, bridge)
        return BridgeState(
            row.name,
            row.datapath_type,
            row.fail_mode[0] if row.fail_mode else "",
            tuple(sorted(c.target for c in row.controller)),
            dict(self._root().other_config),
        )

    def apply(self, dpid: int, bridge: str | None, want: OvsSettings) -> list[str]:
        """Brings the bridge and its Open vSwitch to 'want' in one
        transaction; returns the changes made."""
        import ovs.db.idl  # noqa: PLC0415

        state = self.state(dpid, bridge)
        todo = changes(state, want)
        if not todo:
            return []
        txn = ovs.db.idl.Transaction(self.idl)
        row = self._bridge(dpid, bridge)
        root = self._root()
        for key, value in want.other_config().items():
            if state.other_config.get(key) != value:
                root.setkey("other_config", key, value)
        if want.fail_mode is not None:
            row.fail_mode = [want.fail_mode]
        if want.controllers is not None and sorted(state.controllers) != sorted(want.controllers):
            rows = []
            for target in want.controllers:
                c = txn.insert(self.idl.tables["Controller"])
                c.target = target
                rows.append(c)
            row.controller = rows
        status = txn.commit_block()
        if status not in (ovs.db.idl.Transaction.SUCCESS, ovs.db.idl.Transaction.UNCHANGED):
            raise OvsdbError(f"{self.remote}: the change was not made ({status}: "
                             f"{txn.get_error()})")  # fmt: skip
        return todo


def _strerror(error: int) -> str:
    return os.strerror(error) if isinstance(error, int) and error > 0 else str(error)
