"""The golden bytes in tests/golden are what the built Open vSwitch sends today.

tests/unit/test_golden.py checks okopy.ofp against tests/golden/*.hex; this
re-captures them from the patched ovs-ofctl (against a fake switch on a
Unix socket), so that a change on the C side that is not recaptured with
`python -m tests.golden.capture build/ovs/utilities/ovs-ofctl` fails here.

Likewise for the switch's replies (tests/golden/replies/, checked by
tests/unit/test_golden_replies.py): they are captured again from the built
ovs-vswitchd, so a change to what it answers that is not recaptured with
`python -m tests.golden.replies` fails here.
"""

from __future__ import annotations

import pytest

from okopy.ovs.instance import OvsTools
from tests.golden import replies
from tests.golden.capture import COMMANDS, capture, read, reply, xid0


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_ovs_ofctl_sends_the_golden_bytes(ovs_tools: OvsTools, name: str) -> None:
    sent = [xid0(x) for x in capture(ovs_tools.ofctl, COMMANDS[name], reply)]
    assert sent == read(name), f"tests/golden/{name}.hex is stale: recapture it"


@pytest.fixture(scope="module")
def recaptured(ovs_tools: OvsTools) -> dict[str, replies.Transcript]:
    return replies.capture_all(ovs_tools)


@pytest.mark.parametrize("step", list(replies.STEPS))
def test_ovs_vswitchd_answers_the_golden_replies(
    recaptured: dict[str, replies.Transcript], step: str
) -> None:
    got = [(way, replies.comparable(msg)) for way, msg in recaptured[step]]
    want = [(way, replies.comparable(msg)) for way, msg in replies.read_transcript(step)]
    assert got == want, f"tests/golden/replies/{step}.hex is stale: recapture it"
