"""okopy.ofp against what the patched ovs-vswitchd answers (tests/golden/replies/).

The replies were captured from the real switch (tests/golden/replies.py).
Each is parsed the way the controller receives it, by os-ken's stock
OpenFlow 1.3 parser, then decoded by okopy.ofp; it must re-encode byte for
byte and say what the switch was asked about: the programs and maps of
tests/golden/tiny_maps.c, the entries written before, the errors with
their text.
"""

from __future__ import annotations

import dataclasses
import struct
from typing import Any

import pytest
from os_ken.ofproto import ofproto_parser
from os_ken.ofproto import ofproto_v1_3 as ofp

from okopy.bpf.btf import Btf, BtfError, map_definitions
from okopy.bpf.elf import sections
from okopy.ofp import constants as c
from okopy.ofp import messages as m
from tests.golden.capture import HERE, read
from tests.golden.replies import SOURCES, STEPS, read_transcript, requests

TINY_MAPS = (HERE / "tiny_maps.o").read_bytes()
TINY_MAPS_BTF = sections(TINY_MAPS)[".BTF"].data
# tiny_maps.c's maps as the switch describes them (an array always holds
# max_entries entries).
CONFIG = m.MapDesc("config", c.MapType.ARRAY, 4, 8, 1, 0, 0, n_entries=1)
SOURCES_MAP = m.MapDesc("sources", c.MapType.HASH, 4, 16, 16, 0, 0, n_entries=0)


def parsed(raw: bytes) -> Any:
    """'raw' as os-ken hands it to the controller's handlers."""
    version, msg_type, length, xid = struct.unpack_from("!BBHI", raw)
    assert (version, length) == (ofp.OFP_VERSION, len(raw))
    msg = ofproto_parser.msg(None, version, msg_type, length, xid, raw)
    assert msg is not None, f"os-ken cannot parse {raw[:16].hex()}"
    return msg


def reply(raw: bytes) -> m.Message:
    """An experimenter reply, decoded the way the controller decodes it."""
    msg = parsed(raw)
    assert msg.msg_type == ofp.OFPT_EXPERIMENTER, f"not a reply: {msg}"
    assert msg.experimenter == c.OKOPY_VENDOR_ID
    return m.decode(msg.exp_type, bytes(msg.data))


def error(raw: bytes) -> m.ExtError:
    msg = parsed(raw)
    assert msg.msg_type == ofp.OFPT_ERROR, f"not an error: {msg}"
    assert msg.type == ofp.OFPET_EXPERIMENTER
    err = m.decode_error(msg.exp_type, msg.experimenter, bytes(msg.data))
    assert err is not None
    return err


def answers(step: str) -> list[bytes]:
    return [raw for way, raw in read_transcript(step) if way == "<"]


def only_answer(step: str) -> bytes:
    (raw,) = answers(step)
    return raw


def entries_reply(step: str) -> tuple[m.MapBtfReply, m.Message]:
    """Steps that read the map's BTF first (as ovs-ofctl does), then ask."""
    btf, answer = (reply(raw) for raw in answers(step))
    assert isinstance(btf, m.MapBtfReply)
    return btf, answer


def typed(btf_reply: m.MapBtfReply, key: bytes, value: bytes) -> tuple[Any, Any]:
    """An entry through the BTF the switch sent, as the controller shows it."""
    btf = Btf.parse(btf_reply.chunk)
    return btf.decode(btf_reply.key_type_id, key), btf.decode(btf_reply.value_type_id, value)


def type_names(btf: Btf) -> list[str]:
    """Every type of 'btf', by id, as the codec spells it."""
    names: list[str] = []
    while True:
        try:
            names.append(btf.type_name(len(names) + 1))
        except BtfError:
            return names


@pytest.mark.parametrize("step", sorted(STEPS))
def test_transcript_is_what_was_sent(step: str) -> None:
    """The requests in each transcript are today's: the ovs-ofctl golden it
    replays, or what okopy builds for it; each is answered."""
    lines = read_transcript(step)
    sent = [raw for way, raw in lines if way == ">"]
    assert sent == requests(step)
    if isinstance(STEPS[step], str):
        assert sent == read(str(STEPS[step]))
    assert [way for way, _ in lines] == [">", "<"] * len(sent)


@pytest.mark.parametrize("step", sorted(STEPS))
def test_replies_round_trip(step: str) -> None:
    for raw in answers(step):
        if raw[1] == ofp.OFPT_EXPERIMENTER:
            assert reply(raw).frame(xid=0) == raw
        else:
            err = error(raw)
            head = struct.pack("!BBHIHHI", ofp.OFP_VERSION, ofp.OFPT_ERROR, len(raw), 0,
                               ofp.OFPET_EXPERIMENTER, err.error, c.OKOPY_VENDOR_ID)  # fmt: skip
            assert head + err.data == raw


def test_object_without_btf_is_refused_with_text() -> None:
    err = error(only_answer("load"))
    assert err.error == c.ErrorType.BAD_ELF
    assert err.text is not None
    assert "no BTF" in err.text


def test_load_reply_describes_the_program() -> None:
    got = reply(only_answer("load-maps"))
    assert isinstance(got, m.ProgLoadReply)
    assert got.prog_id == 7
    assert got.n_insns == len(sections(TINY_MAPS)["xdp"].data) // 8
    assert got.exec_mode in set(c.ExecMode)
    assert got.maps == (CONFIG, SOURCES_MAP)


def test_program_list() -> None:
    got = reply(only_answer("list"))
    loaded = reply(only_answer("load-maps"))
    assert isinstance(got, m.ProgListReply)
    assert isinstance(loaded, m.ProgLoadReply)
    assert not got.more
    (prog,) = got.programs
    assert (prog.prog_id, prog.name, prog.cookie) == (7, "limit", 0x1234)
    assert (prog.n_insns, prog.exec_mode) == (loaded.n_insns, loaded.exec_mode)
    assert (prog.n_runs, prog.run_nsec, prog.verdicts) == (0, 0, (0,) * 6)


def test_map_btf_is_the_objects() -> None:
    btf, _ = entries_reply("update")
    assert (btf.prog_id, btf.map, btf.offset) == (7, "config", 0)
    assert btf.btf_len == len(btf.chunk) == len(TINY_MAPS_BTF)
    # The object's BTF as libbpf finalizes it on load (sections' sizes and
    # their variables' offsets filled in): the same types and maps.
    sent, ours = Btf.parse(btf.chunk), Btf.parse(TINY_MAPS_BTF)
    assert type_names(sent) == type_names(ours)
    assert len(type_names(ours)) > 5
    assert map_definitions(sent) == map_definitions(ours)
    config = {d.name: d for d in map_definitions(ours)}["config"]
    assert (btf.key_type_id, btf.value_type_id) == (config.key_type_id, config.value_type_id)
    # What the update golden writes, typed through that BTF.
    assert typed(btf, bytes(4), bytes.fromhex("3200000005000000")) == (
        0,
        {"rate": 50, "burst": 5},
    )


def test_update_replies_count_what_was_written() -> None:
    _, got = entries_reply("update")
    assert got == m.MapUpdateReply(7, "config", 4, 8, 1)
    assert reply(only_answer("fill")) == m.MapUpdateReply(7, "sources", 4, 16, len(SOURCES))


def test_lookup_reply() -> None:
    btf, got = entries_reply("lookup")
    assert isinstance(got, m.MapLookupReply)
    assert (got.prog_id, got.map, got.key_size, got.value_size, got.count) == (
        7,
        "sources",
        4,
        16,
        1,
    )
    assert got.keys == (bytes([10, 0, 0, 1]),)
    assert typed(btf, got.keys[0], got.values[0]) == ("10.0.0.1", {"packets": 3, "bytes": 180})


def test_dump_reply_has_every_entry() -> None:
    btf, got = entries_reply("dump")
    assert isinstance(got, m.MapDumpReply)
    assert not got.more
    assert dict(zip(got.keys, got.values, strict=True)) == SOURCES
    shown = dict(typed(btf, k, v) for k, v in zip(got.keys, got.values, strict=True))
    assert shown == {
        "10.0.0.1": {"packets": 3, "bytes": 180},
        "10.0.0.2": {"packets": 1, "bytes": 60},
    }


def test_map_list_counts_entries() -> None:
    got = reply(only_answer("maps"))
    assert isinstance(got, m.MapListReply)
    assert got.prog_id == 7
    assert got.maps == (CONFIG, dataclasses.replace(SOURCES_MAP, n_entries=len(SOURCES)))


def test_delete_then_lookup_finds_nothing() -> None:
    _, deleted = entries_reply("delete")
    assert deleted == m.MapDeleteReply(7, "sources", 4, 16, 2)
    _, got = entries_reply("lookup-deleted")
    assert isinstance(got, m.MapLookupReply)
    assert (got.count, got.keys, got.values) == (0, (), ())


def test_verifier_refusal_names_the_instruction_and_line() -> None:
    err = error(only_answer("refused-load"))
    assert err.error == c.ErrorType.VERIFIER_REFUSED
    assert err.text is not None
    assert "write into packet" in err.text
    assert "tiny_bad.c:12" in err.text
    assert "p[0] = 0;" in err.text


def test_unknown_map_error_carries_the_request() -> None:
    err = error(only_answer("unknown-map"))
    assert err.error == c.ErrorType.UNKNOWN_MAP
    assert err.text is None
    (sent,) = requests("unknown-map")
    assert err.data[8:] == sent[8:]  # the request as sent (its xid aside)


def test_unload_and_unload_again() -> None:
    assert reply(only_answer("unload")) == m.ProgUnloadReply(7)
    assert error(only_answer("unload-again")).error == c.ErrorType.UNKNOWN_PROG
