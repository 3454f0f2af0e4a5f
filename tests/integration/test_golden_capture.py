"""The golden bytes in tests/golden are what the built ovs-ofctl sends today.

tests/unit/test_golden.py checks okopy.ofp against tests/golden/*.hex; this
re-captures them from the patched ovs-ofctl (against a fake switch on a
Unix socket), so that a change on the C side that is not recaptured with
`python -m tests.golden.capture build/ovs/utilities/ovs-ofctl` fails here.
"""

from __future__ import annotations

import pytest

from okopy.ovs.instance import OvsTools
from tests.golden.capture import COMMANDS, capture, read, reply, xid0


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_ovs_ofctl_sends_the_golden_bytes(ovs_tools: OvsTools, name: str) -> None:
    sent = [xid0(x) for x in capture(ovs_tools.ofctl, COMMANDS[name], reply)]
    assert sent == read(name), f"tests/golden/{name}.hex is stale: recapture it"
