"""identity_policy.c: identities by prefix, rules between identities."""

from __future__ import annotations

import json
from typing import Any

from okopy.testing.filtercases import Case, run_cases
from okopy.traffic import packets as p

FRONTEND, BACKEND, DB = 100, 200, 300
WORLD = 2
WEB1, WEB2, API, DBHOST, OUTSIDER = (
    "10.0.1.5", "10.0.1.6", "10.0.2.7", "10.0.3.9", "203.0.113.1",
)  # fmt: skip


def prefix(addr: str, length: int) -> str:
    return json.dumps({"prefixlen": length, "addr": addr})


def rule(src: int, dst: int, dport: int = 0, proto: int = 0) -> str:
    return json.dumps({"src_identity": src, "dst_identity": dst, "dport": dport, "proto": proto})


SEEDS: dict[str, Any] = {
    "identities": {
        prefix("10.0.1.0", 24): FRONTEND,
        prefix("10.0.2.0", 24): BACKEND,
        prefix("10.0.3.9", 32): DB,
    },
    "policy": {
        rule(FRONTEND, BACKEND, 8080, 6): {"allow": 1},  # frontend -> backend:8080/tcp
        rule(BACKEND, DB, 0, 6): {"allow": 1},  # backend -> db, any TCP port
        rule(BACKEND, DB, 5432, 6): {"allow": 0},  # ... but not 5432 (deny wins: more specific)
        rule(0, BACKEND, 0, 1): {"allow": 1},  # anyone may ping the backend
        rule(WORLD, FRONTEND, 443, 6): {"allow": 1},  # the world reaches the frontend on 443
    },
    "enforced": {BACKEND: 1, DB: 1, FRONTEND: 1},
}


def tcp(src: str, dst: str, dport: int) -> bytes:
    return p.tcp4(src, dst, 40000, dport, p.TCP_SYN)


def test_rules_between_identities(objects: dict[str, bytes]) -> None:
    run_cases(objects["identity_policy"], [
        Case("frontend -> backend:8080 allowed", tcp(WEB1, API, 8080), "pass",
             maps={"policy": {rule(FRONTEND, BACKEND, 8080, 6): {"packets": 1}},
                   "counters": {0: {"allowed": 1}}}),
        Case("another frontend address, same identity", tcp(WEB2, API, 8080), "pass",
             maps={"policy": {rule(FRONTEND, BACKEND, 8080, 6): {"packets": 2}}}),
        Case("frontend -> backend:22 default-denied", tcp(WEB1, API, 22), "drop",
             maps={"counters": {0: {"default_denied": 1}}}),
        Case("frontend -> backend:8080/udp default-denied",
             p.udp4(WEB1, API, 1, 8080), "drop"),
        Case("frontend -> db denied (no rule)", tcp(WEB1, DBHOST, 3306), "drop"),
        Case("backend -> db:3306 allowed by the any-port rule", tcp(API, DBHOST, 3306),
             "pass", maps={"policy": {rule(BACKEND, DB, 0, 6): {"packets": 1}}}),
        Case("backend -> db:5432 denied by the port rule", tcp(API, DBHOST, 5432),
             "drop", maps={"policy": {rule(BACKEND, DB, 5432, 6): {"packets": 1}},
                           "counters": {0: {"denied": 1}}}),
        Case("anyone may ping the backend", p.icmp4(OUTSIDER, API), "pass"),
        Case("the world reaches the frontend on 443", tcp(OUTSIDER, WEB1, 443), "pass"),
        Case("but not on 80", tcp(OUTSIDER, WEB1, 80), "drop"),
        Case("unenforced destinations are open", tcp(WEB1, OUTSIDER, 80), "pass",
             maps={"counters": {0: {"unenforced": 1}}}),
        Case("non-IP passes", p.ethernet(p.ETH_P_ARP, bytes(28)), "pass"),
    ], seeds=SEEDS)  # fmt: skip


def test_default_deny_and_world_identity(objects: dict[str, bytes]) -> None:
    seeds = {**SEEDS, "enforced": {}, "config": {0: {"default_deny": 1, "world_identity": 7}}}
    seeds["policy"] = {**SEEDS["policy"], rule(7, FRONTEND, 80, 6): {"allow": 1}}
    run_cases(objects["identity_policy"], [
        Case("default deny: to an unlisted address", tcp(WEB1, OUTSIDER, 80), "drop"),
        Case("rules still allow", tcp(WEB1, API, 8080), "pass"),
        Case("outsiders now have identity 7", tcp(OUTSIDER, WEB1, 80), "pass",
             maps={"policy": {rule(7, FRONTEND, 80, 6): {"packets": 1}}}),
        Case("and no longer match world rules", tcp(OUTSIDER, WEB1, 443), "drop"),
    ], seeds=seeds)  # fmt: skip
