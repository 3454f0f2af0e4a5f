"""Python binding of libokovm (cffi, ABI mode): load, verify and run filters.

The switch links the same library, so a program behaves the same here as
in `ovs-vswitchd`.  Handles are reference counted on the C side; Python
objects hold one reference each and drop it on `close()` or collection.
"""

from __future__ import annotations

import errno
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Literal

import cffi

from okopy.bpf import libokovm
from okopy.bpf.btf import Btf, BtfError, decode_or_hex
from okopy.bpf.libokovm import _lib

# Where they were before libokovm.py held the loader.
VmNotBuilt = libokovm.VmNotBuilt
library_path = libokovm.library_path

XDP_VERDICTS = {0: "aborted", 1: "drop", 2: "pass", 3: "tx", 4: "redirect"}
MAP_TYPES = {1: "hash", 2: "array", 9: "lru_hash", 11: "lpm_trie"}
UPDATE_FLAGS = {"any": 0, "noexist": 1, "exist": 2}
Sandbox = Literal["never", "allow", "force"]
_SANDBOX_FLAGS = {"never": 0, "allow": 1, "force": 2}
_NO_JIT = 8  # OKOVM_LOAD_NO_JIT


class VmError(Exception):
    """The VM refused something; carries what the user needs to fix it."""

    def __init__(
        self,
        code: int,
        message: str,
        *,
        insn: int = -1,
        line: int = 0,
        column: int = 0,
        file: str = "",
        source: str = "",
        log: str = "",
    ) -> None:
        self.code = code
        self.message = message
        self.insn = insn
        self.line = line
        self.column = column
        self.file = file
        self.source = source
        self.log = log
        super().__init__(self.describe())

    @property
    def errno_name(self) -> str:
        return errno.errorcode.get(self.code, str(self.code))

    def describe(self, with_log: bool = True) -> str:
        parts = [self.message or os.strerror(self.code)]
        where = []
        if self.file:
            where.append(f"{self.file}:{self.line}" + (f":{self.column}" if self.column else ""))
        if self.insn >= 0:
            where.append(f"instruction {self.insn}")
        if where:
            parts[0] = f"{' '.join(where)}: {parts[0]}"
        if self.source:
            parts.append(f"    {self.source.strip()}")
        if with_log and self.log:
            parts.append("kernel verifier log (tail):\n" + self.log.rstrip())
        return "\n".join(parts)


def version() -> str:
    ffi, lib = _lib()
    return str(ffi.string(lib.okovm_version()).decode())


def _string(ffi: cffi.FFI, arr: Any) -> str:
    return str(ffi.string(arr).decode("utf-8", "replace"))


def _check(rc: int, what: str) -> None:
    if rc:
        raise VmError(rc, f"{what}: {os.strerror(rc)}")


@dataclass(frozen=True)
class ProgramInfo:
    name: str
    section: str
    n_insns: int
    mode: str
    n_maps: int
    kernel_verified: bool
    kernel_verify_ns: int
    # True when the kernel admitted it under its strict (unprivileged) rules;
    # False when it needed the privileged verifier (see libokovm's kernel.c).
    kernel_strict: bool
    # True when it runs as native code (the JIT; x86-64, verified programs).
    jit: bool = False


@dataclass(frozen=True)
class ProgramStats:
    runs: int
    verdicts: dict[str, int]
    time_ns: int
    faults: int


@dataclass(frozen=True)
class MapInfo:
    name: str
    type: str
    key_size: int
    value_size: int
    max_entries: int
    flags: int
    btf_key_type_id: int
    btf_value_type_id: int
    pinned: bool
    global_data: bool
    n_entries: int


class Map:
    """One map of a loaded program (or pinned in a namespace)."""

    def __init__(self, handle: Any, owner: object) -> None:
        ffi, lib = _lib()
        lib.okovm_map_ref(handle)
        self._h = ffi.gc(handle, lib.okovm_map_unref)
        self._owner = owner  # Keeps the program (and namespace) alive.
        self.info = self._info()
        self._btf: Btf | None = None

    def _info(self) -> MapInfo:
        ffi, lib = _lib()
        i = ffi.new("struct okovm_map_info *")
        lib.okovm_map_get_info(self._h, i)
        return MapInfo(
            _string(ffi, i.name), MAP_TYPES.get(i.type, str(i.type)), i.key_size,
            i.value_size, i.max_entries, i.map_flags, i.btf_key_type_id,
            i.btf_value_type_id, bool(i.pinned), bool(i.global_data), i.n_entries,
        )  # fmt: skip

    @property
    def name(self) -> str:
        return self.info.name

    def __len__(self) -> int:
        return self._info().n_entries

    def _fit(self, data: bytes, size: int, what: str) -> bytes:
        if len(data) != size:
            raise VmError(
                errno.EINVAL,
                f"map {self.name}: {what} is {len(data)} bytes, the map's is {size}",
            )
        return data

    def lookup(self, key: bytes) -> bytes | None:
        ffi, lib = _lib()
        k = self._fit(key, self.info.key_size, "key")
        out = ffi.new("uint8_t[]", max(self.info.value_size, 1))
        rc = lib.okovm_map_lookup(self._h, k, out)
        if rc == errno.ENOENT:
            return None
        _check(rc, f"lookup in map {self.name}")
        return bytes(ffi.buffer(out, self.info.value_size))

    def update(self, key: bytes, value: bytes, flags: str = "any") -> None:
        _, lib = _lib()
        if flags not in UPDATE_FLAGS:
            raise VmError(errno.EINVAL, f"update flags must be one of {', '.join(UPDATE_FLAGS)}")
        k = self._fit(key, self.info.key_size, "key")
        v = self._fit(value, self.info.value_size, "value")
        rc = lib.okovm_map_update(self._h, k, v, UPDATE_FLAGS[flags])
        _check(rc, f"update of map {self.name}")

    def delete(self, key: bytes) -> bool:
        """Delete 'key'; False if it was not there."""
        _, lib = _lib()
        rc = lib.okovm_map_delete(self._h, self._fit(key, self.info.key_size, "key"))
        if rc == errno.ENOENT:
            return False
        _check(rc, f"delete from map {self.name}")
        return True

    def clear(self) -> None:
        _, lib = _lib()
        _check(lib.okovm_map_clear(self._h), f"clear map {self.name}")

    def keys(self) -> Iterator[bytes]:
        ffi, lib = _lib()
        size = self.info.key_size
        cur = ffi.new("uint8_t[]", size)
        nxt = ffi.new("uint8_t[]", size)
        prev = ffi.NULL
        for _ in range(self.info.max_entries + 1):
            rc = lib.okovm_map_get_next_key(self._h, prev, nxt)
            if rc == errno.ENOENT:
                return
            _check(rc, f"iterate map {self.name}")
            key = bytes(ffi.buffer(nxt, size))
            yield key
            ffi.memmove(cur, key, size)
            prev = cur

    def items(self) -> Iterator[tuple[bytes, bytes]]:
        for key in self.keys():
            value = self.lookup(key)
            if value is not None:  # Deleted meanwhile.
                yield key, value

    # Typed access through BTF ------------------------------------------------

    @property
    def btf(self) -> Btf | None:
        if self._btf is None:
            ffi, lib = _lib()
            size = ffi.new("uint32_t *")
            ptr = lib.okovm_map_btf(self._h, size)
            if ptr != ffi.NULL and size[0]:
                self._btf = Btf.parse(bytes(ffi.buffer(ptr, size[0])))
        return self._btf

    @property
    def typed(self) -> bool:
        return self.btf is not None and bool(self.info.btf_key_type_id or self.info.global_data)

    def decode_key(self, key: bytes) -> Any:
        if self.btf is None or not self.info.btf_key_type_id:
            return key.hex()
        return self.btf.decode(self.info.btf_key_type_id, key)

    def decode_value(self, value: bytes) -> Any:
        return decode_or_hex(self.btf, self.info.btf_value_type_id, value)

    def encode_key(self, key: Any) -> bytes:
        return self._encode(key, self.info.btf_key_type_id, self.info.key_size, "key")

    def encode_value(self, value: Any) -> bytes:
        return self._encode(value, self.info.btf_value_type_id, self.info.value_size, "value")

    def _encode(self, obj: Any, type_id: int, size: int, what: str) -> bytes:
        if isinstance(obj, bytes):
            return self._fit(obj, size, what)
        if isinstance(obj, str) and (self.btf is None or not type_id):
            try:
                return self._fit(bytes.fromhex(obj.removeprefix("0x")), size, what)
            except ValueError:
                raise VmError(errno.EINVAL, f"map {self.name}: {what} {obj!r} is not hex") from None
        if self.btf is None or not type_id:
            raise VmError(
                errno.EINVAL,
                f"map {self.name} has no BTF type for its {what}: give hex",
            )
        try:
            return self.btf.encode(type_id, obj)
        except BtfError as e:
            raise VmError(errno.EINVAL, f"map {self.name}: {what}: {e}") from None

    def dump(self) -> list[dict[str, Any]]:
        """Every entry as {"key": ..., "value": ...}, typed where BTF allows."""
        return [{"key": self.decode_key(k), "value": self.decode_value(v)} for k, v in self.items()]


# The helpers that okovm_prog_explain() reports, by BPF_FUNC_* id.
HELPER_NAMES = {1: "lookup", 2: "update", 3: "delete"}


@dataclass(frozen=True)
class SourceLine:
    file: str
    line: int
    text: str


@dataclass(frozen=True)
class MapAccess:
    """A helper call on a map entry during an explained run."""

    insn: int
    op: str  # lookup, update, delete
    map: str
    key: bytes


@dataclass(frozen=True)
class MapChange:
    """A map entry an explained run touched: before its first access, after the run."""

    map: str
    key: bytes
    before: bytes | None  # None: absent
    after: bytes | None


@dataclass(frozen=True)
class Explained:
    verdict: int
    path: tuple[int, ...]  # instructions executed, in order
    accesses: tuple[MapAccess, ...]
    changes: tuple[MapChange, ...]


class Program:
    """A loaded, verified program."""

    def __init__(self, handle: Any, ns: Namespace) -> None:
        ffi, lib = _lib()
        self._h = ffi.gc(handle, lib.okovm_prog_unref)
        self.ns = ns
        self.info = self._info()
        self._maps: dict[str, Map] | None = None

    def _info(self) -> ProgramInfo:
        ffi, lib = _lib()
        i = ffi.new("struct okovm_prog_info *")
        lib.okovm_prog_get_info(self._h, i)
        return ProgramInfo(
            _string(ffi, i.name), _string(ffi, i.section), i.n_insns,
            "sandbox" if i.mode == 1 else "verified", i.n_maps,
            bool(i.kernel_verified), i.kernel_verify_ns, bool(i.kernel_strict),
            bool(i.jit),
        )  # fmt: skip

    def run(self, packet: bytes, in_port: int = 0) -> int:
        """Run on 'packet'; returns the verdict (the program's return value)."""
        _, lib = _lib()
        return int(lib.okovm_prog_run(self._h, packet, len(packet), in_port))

    def bench(self, packet: bytes, repeat: int, in_port: int = 0) -> float:
        """Run on 'packet' 'repeat' times inside the library; ns per run."""
        ffi, lib = _lib()
        total = ffi.new("uint64_t *")
        lib.okovm_prog_bench(self._h, packet, len(packet), in_port, repeat, total)
        return float(total[0]) / max(repeat, 1)

    def explain(self, packet: bytes, in_port: int = 0) -> Explained:
        """Run once on 'packet' in the explaining interpreter: the
        instructions executed, in order, each map access (with the entry's
        value before the first access and after the run), and the verdict.
        The program's statistics do not count the run; its maps change as
        in any run.  Refused (VmError EINVAL) for a program in sandbox mode."""
        ffi, lib = _lib()
        path: list[int] = []
        accesses: list[MapAccess] = []
        before: dict[tuple[int, bytes], bytes | None] = {}
        maps = list(self.maps.values())

        def on_insn(_aux: Any, insn: int) -> None:
            path.append(int(insn))

        def on_map_call(_aux: Any, insn: int, helper: int, index: int, key: Any) -> None:
            m = maps[index]
            k = bytes(ffi.buffer(key, m.info.key_size))
            if (index, k) not in before:
                before[(index, k)] = m.lookup(k)
            accesses.append(MapAccess(int(insn), HELPER_NAMES.get(helper, str(helper)), m.name, k))

        insn_cb = ffi.callback("void(void *, uint32_t)", on_insn)
        call_cb = ffi.callback("void(void *, uint32_t, uint32_t, uint32_t, const void *)",
                               on_map_call)  # fmt: skip
        hooks = ffi.new("struct okovm_explain_hooks *", {"insn": insn_cb, "map_call": call_cb})
        verdict = ffi.new("uint32_t *")
        error = lib.okovm_prog_explain(self._h, packet, len(packet), in_port, hooks, verdict)
        if error:
            why = "it runs in sandbox mode" if error == errno.EINVAL else os.strerror(error)
            raise VmError(error, f"program {self.info.name} cannot be explained: {why}")
        changes = [
            MapChange(maps[index].name, key, old, maps[index].lookup(key))
            for (index, key), old in before.items()
        ]
        return Explained(int(verdict[0]), tuple(path), tuple(accesses), tuple(changes))

    def source(self, insn: int) -> SourceLine | None:
        """Where instruction 'insn' comes from, by the BTF line information."""
        ffi, lib = _lib()
        file = ffi.new("const char **")
        line = ffi.new("uint32_t *")
        text = ffi.new("const char **")
        if not lib.okovm_prog_insn_source(self._h, insn, file, line, text):
            return None
        return SourceLine(_string(ffi, file[0]), int(line[0]), _string(ffi, text[0]))

    @property
    def stats(self) -> ProgramStats:
        ffi, lib = _lib()
        s = ffi.new("struct okovm_prog_stats *")
        lib.okovm_prog_get_stats(self._h, s)
        verdicts = {name: s.verdicts[i] for i, name in XDP_VERDICTS.items()}
        verdicts["other"] = s.verdicts[len(XDP_VERDICTS)]
        return ProgramStats(s.runs, verdicts, s.time_ns, s.faults)

    @property
    def maps(self) -> dict[str, Map]:
        if self._maps is None:
            _, lib = _lib()
            n = lib.okovm_prog_n_maps(self._h)
            found = (Map(lib.okovm_prog_get_map(self._h, i), self) for i in range(n))
            self._maps = {m.name: m for m in found}
        return self._maps

    def map(self, name: str) -> Map:
        try:
            return self.maps[name]
        except KeyError:
            raise VmError(
                errno.ENOENT,
                f"program {self.info.name} has no map {name!r} "
                f"(maps: {', '.join(self.maps) or 'none'})",
            ) from None


class Namespace:
    """A map namespace (one per bridge in the switch): pinned maps, clock."""

    def __init__(self, name: str = "okopy") -> None:
        ffi, lib = _lib()
        p = ffi.new("struct okovm_ns **")
        _check(lib.okovm_ns_create(name.encode(), p), "create namespace")
        self.name = name
        self._h = ffi.gc(p[0], lib.okovm_ns_destroy)
        self._log_cb: Any = None

    def set_fixed_clock(self, now_ns: int) -> None:
        _lib()[1].okovm_ns_set_fixed_clock(self._h, now_ns)

    def seed_prandom(self, seed: int) -> None:
        _lib()[1].okovm_ns_seed_prandom(self._h, seed)

    def set_printk_rate(self, per_sec: int, burst: int) -> None:
        """bpf_trace_printk() lines let through: 'per_sec' on average, at
        most 'burst' at once (libokovm's default: 10/s, burst 50)."""
        _lib()[1].okovm_ns_set_printk_rate(self._h, per_sec, burst)

    def set_log(self, fn: Callable[[int, str], None] | None) -> None:
        """Receive bpf_trace_printk() lines and sandbox faults."""
        ffi, lib = _lib()
        if fn is None:
            lib.okovm_ns_set_log(self._h, ffi.NULL, ffi.NULL)
            self._log_cb = None
            return

        def relay(_aux: Any, level: int, msg: Any) -> None:
            fn(level, _string(ffi, msg))

        cb = ffi.callback("void(void *, int, const char *)", relay)
        self._log_cb = cb
        lib.okovm_ns_set_log(self._h, cb, ffi.NULL)

    def load(
        self,
        elf: bytes,
        *,
        prog_name: str | None = None,
        section: str | None = None,
        sandbox: Sandbox = "never",
        jit: bool = True,
    ) -> Program:
        """Load and verify one program of the object 'elf'.  Verified
        programs run as native code where libokovm has a JIT (x86-64),
        in the interpreter with 'jit=False'."""
        ffi, lib = _lib()
        opts = ffi.new("struct okovm_load_opts *")
        keep = []
        if prog_name:
            keep.append(ffi.new("char[]", prog_name.encode()))
            opts.prog_name = keep[-1]
        if section:
            keep.append(ffi.new("char[]", section.encode()))
            opts.section = keep[-1]
        opts.flags = _SANDBOX_FLAGS[sandbox] | (0 if jit else _NO_JIT)
        out = ffi.new("struct okovm_prog **")
        err = ffi.new("struct okovm_error *")
        rc = lib.okovm_prog_load(self._h, elf, len(elf), opts, out, err)
        if rc:
            raise VmError(
                rc, _string(ffi, err.msg), insn=err.insn, line=err.line,
                column=err.column, file=_string(ffi, err.file),
                source=_string(ffi, err.source), log=_string(ffi, err.log),
            )  # fmt: skip
        return Program(out[0], self)

    def pinned(self) -> dict[str, Map]:
        ffi, lib = _lib()
        out: dict[str, Map] = {}
        p = ffi.new("struct okovm_map **")
        for i in range(1 << 16):
            if lib.okovm_ns_get_pinned(self._h, i, p):
                break
            m = Map(p[0], self)
            lib.okovm_map_unref(p[0])  # Map took its own reference.
            out[m.name] = m
        return out
