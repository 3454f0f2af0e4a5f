"""Numbers of the extension.  CONTRACT: equal to include/openflow/okopy-ext.h
in ovs-patches/ (checked by tests/unit/test_ofp_header.py)."""

from __future__ import annotations

from enum import IntEnum

OKOPY_VENDOR_ID = 0x00024F4B
OKOPY_PROG_ID_MIN = 1
OKOPY_PROG_ID_MAX = 0xFFFFFFFE
OKOPY_NAME_LEN = 32
OKOPY_PROG_CHUNK_MAX = 65280
OKOPY_BTF_CHUNK_MAX = 65280
OKOPY_BPF_NO_TABLE = 255
OKOPY_BPF_VERDICT_SET = 1 << 32


class MsgType(IntEnum):
    PROG_LOAD = 1
    PROG_LOAD_REPLY = 2
    PROG_UNLOAD = 3
    PROG_UNLOAD_REPLY = 4
    PROG_LIST_REQUEST = 5
    PROG_LIST_REPLY = 6
    MAP_LOOKUP_REQUEST = 7
    MAP_LOOKUP_REPLY = 8
    MAP_UPDATE = 9
    MAP_UPDATE_REPLY = 10
    MAP_DELETE = 11
    MAP_DELETE_REPLY = 12
    MAP_DUMP_REQUEST = 13
    MAP_DUMP_REPLY = 14
    MAP_LIST_REQUEST = 15
    MAP_LIST_REPLY = 16
    MAP_BTF_REQUEST = 17
    MAP_BTF_REPLY = 18


class ProgLoadFlags(IntEnum):
    REPLACE = 1 << 0
    SANDBOX = 1 << 1


class ExecMode(IntEnum):
    INTERP = 1
    JIT = 2
    SANDBOX = 3


class MapType(IntEnum):
    HASH = 1
    ARRAY = 2
    PERCPU_HASH = 5
    PERCPU_ARRAY = 6
    LRU_HASH = 9
    LRU_PERCPU_HASH = 10
    LPM_TRIE = 11


MAP_DESC_PINNED = 1 << 0
LIST_REPLY_MORE = 1 << 0


class MapUpdateFlags(IntEnum):
    ANY = 0
    NOEXIST = 1
    EXIST = 2


class ErrorType(IntEnum):
    BAD_PROG_ID = 1
    UNKNOWN_PROG = 2
    PROG_EXISTS = 3
    BAD_FLAGS = 4
    BAD_CHUNK = 5
    TOO_BIG = 6
    TOO_MANY_PROGS = 7
    BAD_ELF = 8
    VERIFIER_REFUSED = 9
    NO_ADMISSION = 10
    UNKNOWN_MAP = 11
    BAD_KEY_SIZE = 12
    BAD_VALUE_SIZE = 13
    MAP_FULL = 14
    NO_ENTRY = 15
    ENTRY_EXISTS = 16
    UNSUPPORTED = 17
    MAPS_TOO_BIG = 18
    BAD_KEY = 19


# Errors whose data is UTF-8 text (e.g. the verifier's log), not the request.
TEXT_ERRORS = frozenset(
    {
        ErrorType.BAD_ELF,
        ErrorType.VERIFIER_REFUSED,
        ErrorType.NO_ADMISSION,
        ErrorType.MAPS_TOO_BIG,
        ErrorType.BAD_KEY,
        ErrorType.MAP_FULL,
    }
)

OKOPYAST_BPF = 1
OKOXM_ET_BPF_VERDICT = 1


class XdpVerdict(IntEnum):
    ABORTED = 0
    DROP = 1
    PASS = 2
    TX = 3
    REDIRECT = 4
