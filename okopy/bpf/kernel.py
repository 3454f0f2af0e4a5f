"""The Linux kernel as a reference runtime: verifier and BPF_PROG_TEST_RUN.

Loads the same object the VM loads, as an XDP program, through libbpf
(cffi, ABI mode), runs packets with BPF_PROG_TEST_RUN and reads its maps.
Needs CAP_BPF (root).  Nothing is pinned or attached to any interface.
"""

from __future__ import annotations

import errno
import os
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from typing import Any

import cffi

CDEF = """
struct bpf_object;
struct bpf_program;
struct bpf_map;
struct bpf_test_run_opts {
    size_t sz;
    const void *data_in;
    void *data_out;
    uint32_t data_size_in;
    uint32_t data_size_out;
    const void *ctx_in;
    void *ctx_out;
    uint32_t ctx_size_in;
    uint32_t ctx_size_out;
    uint32_t retval;
    int repeat;
    uint32_t duration;
    uint32_t flags;
    uint32_t cpu;
    uint32_t batch_size;
};
struct bpf_object *bpf_object__open_mem(const void *buf, size_t sz, const void *opts);
int bpf_object__load(struct bpf_object *obj);
void bpf_object__close(struct bpf_object *obj);
struct bpf_program *bpf_object__next_program(const struct bpf_object *obj,
                                             struct bpf_program *prog);
const char *bpf_program__name(const struct bpf_program *prog);
const char *bpf_program__section_name(const struct bpf_program *prog);
int bpf_program__set_type(struct bpf_program *prog, int type);
int bpf_program__set_autoload(struct bpf_program *prog, bool autoload);
int bpf_program__set_log_buf(struct bpf_program *prog, char *buf, size_t size);
int bpf_program__set_log_level(struct bpf_program *prog, uint32_t level);
int bpf_program__fd(const struct bpf_program *prog);
struct bpf_map *bpf_object__next_map(const struct bpf_object *obj,
                                     const struct bpf_map *map);
const char *bpf_map__name(const struct bpf_map *map);
int bpf_map__fd(const struct bpf_map *map);
int bpf_map__reuse_fd(struct bpf_map *map, int fd);
int bpf_map__set_pin_path(struct bpf_map *map, const char *path);
uint32_t bpf_map__key_size(const struct bpf_map *map);
uint32_t bpf_map__value_size(const struct bpf_map *map);
uint32_t bpf_map__max_entries(const struct bpf_map *map);
int bpf_map__type(const struct bpf_map *map);
int bpf_map_lookup_elem(int fd, const void *key, void *value);
int bpf_map_update_elem(int fd, const void *key, const void *value, uint64_t flags);
int bpf_map_delete_elem(int fd, const void *key);
int bpf_map_get_next_key(int fd, const void *key, void *next_key);
int bpf_prog_test_run_opts(int prog_fd, struct bpf_test_run_opts *opts);
int bpf_xdp_attach(int ifindex, int prog_fd, uint32_t flags, const void *opts);
int dup(int fd);
int close(int fd);
"""

BPF_PROG_TYPE_XDP = 6
XDP_FLAGS_SKB_MODE = 1 << 1
XDP_FLAGS_DRV_MODE = 1 << 2
LOG_SIZE = 1 << 20


class KernelError(Exception):
    """The kernel refused: carries errno and, for loads, the verifier log."""

    def __init__(self, code: int, message: str, log: str = "") -> None:
        self.code = code
        self.log = log
        super().__init__(message + (f"\n{log.rstrip()}" if log else ""))


@cache
def _lib() -> tuple[cffi.FFI, Any]:
    ffi = cffi.FFI()
    ffi.cdef(CDEF)
    return ffi, ffi.dlopen("libbpf.so.1")


def _errno(rc: int) -> int:
    return -rc if rc < 0 else ffi_errno()


def ffi_errno() -> int:
    ffi, _ = _lib()
    return ffi.errno or errno.EINVAL


@dataclass(frozen=True)
class KernelRun:
    verdict: int
    duration_ns: int


class KernelMap:
    """A kernel map by file descriptor (ours: a dup, closed on close())."""

    def __init__(self, name: str, fd: int, key_size: int, value_size: int,
                 max_entries: int, map_type: int) -> None:  # fmt: skip
        self.name = name
        self.fd = fd
        self.key_size = key_size
        self.value_size = value_size
        self.max_entries = max_entries
        self.map_type = map_type

    def lookup(self, key: bytes) -> bytes | None:
        ffi, lib = _lib()
        out = ffi.new("uint8_t[]", max(self.value_size, 1))
        if lib.bpf_map_lookup_elem(self.fd, key, out) < 0:
            return None
        return bytes(ffi.buffer(out, self.value_size))

    def update(self, key: bytes, value: bytes, flags: int = 0) -> None:
        _, lib = _lib()
        rc = lib.bpf_map_update_elem(self.fd, key, value, flags)
        if rc < 0:
            raise KernelError(_errno(rc), f"kernel map {self.name}: update failed")

    def delete(self, key: bytes) -> bool:
        _, lib = _lib()
        return bool(lib.bpf_map_delete_elem(self.fd, key) == 0)

    def keys(self) -> Iterator[bytes]:
        ffi, lib = _lib()
        cur = ffi.new("uint8_t[]", self.key_size)
        nxt = ffi.new("uint8_t[]", self.key_size)
        prev = ffi.NULL
        for _ in range(self.max_entries + 1):
            if lib.bpf_map_get_next_key(self.fd, prev, nxt) < 0:
                return
            key = bytes(ffi.buffer(nxt, self.key_size))
            yield key
            ffi.memmove(cur, key, self.key_size)
            prev = cur

    def items(self) -> dict[bytes, bytes]:
        out = {}
        for k in self.keys():
            v = self.lookup(k)
            if v is not None:
                out[k] = v
        return out

    def close(self) -> None:
        if self.fd >= 0:
            _lib()[1].close(self.fd)
            self.fd = -1


class KernelProgram:
    """One XDP program of an object, loaded into the kernel.

    `reload(elf)` loads another build of the same object (for instance with
    a different pinned clock) while keeping the maps and their contents."""

    def __init__(self, elf: bytes, prog_name: str | None = None) -> None:
        self.prog_name = prog_name
        self.maps: dict[str, KernelMap] = {}
        self._obj: Any = None
        self._fd = -1
        self.reload(elf)

    def reload(self, elf: bytes) -> None:
        ffi, lib = _lib()
        obj = lib.bpf_object__open_mem(elf, len(elf), ffi.NULL)
        if obj == ffi.NULL:
            raise KernelError(ffi_errno(), "libbpf could not open the object")
        try:
            prog = self._select(obj)
            log = ffi.new("char[]", LOG_SIZE)
            lib.bpf_program__set_type(prog, BPF_PROG_TYPE_XDP)
            # No log level: libbpf loads without a log and, only if the
            # kernel refuses, loads again at level 1 into 'log'.  Asking for
            # the log up front would make the kernel refuse, with ENOSPC, a
            # valid program whose log of one path outgrows the buffer.
            lib.bpf_program__set_log_buf(prog, log, LOG_SIZE)
            m = lib.bpf_object__next_map(obj, ffi.NULL)
            while m != ffi.NULL:
                lib.bpf_map__set_pin_path(m, ffi.NULL)
                name = ffi.string(lib.bpf_map__name(m)).decode()
                if name in self.maps:
                    lib.bpf_map__reuse_fd(m, self.maps[name].fd)
                m = lib.bpf_object__next_map(obj, m)
            rc = lib.bpf_object__load(obj)
            if rc < 0:
                text = ffi.string(log).decode("utf-8", "replace")
                raise KernelError(_errno(rc), "the kernel verifier refused the program", text)
        except BaseException:
            lib.bpf_object__close(obj)
            raise
        self.close_program()
        self._obj = obj
        self._fd = lib.bpf_program__fd(prog)
        m = lib.bpf_object__next_map(obj, ffi.NULL)
        while m != ffi.NULL:
            name = ffi.string(lib.bpf_map__name(m)).decode()
            if name not in self.maps:
                self.maps[name] = KernelMap(
                    name, lib.dup(lib.bpf_map__fd(m)), lib.bpf_map__key_size(m),
                    lib.bpf_map__value_size(m), lib.bpf_map__max_entries(m),
                    lib.bpf_map__type(m),
                )  # fmt: skip
            m = lib.bpf_object__next_map(obj, m)

    def _select(self, obj: Any) -> Any:
        ffi, lib = _lib()
        chosen = ffi.NULL
        p = lib.bpf_object__next_program(obj, ffi.NULL)
        while p != ffi.NULL:
            name = ffi.string(lib.bpf_program__name(p)).decode()
            sec = ffi.string(lib.bpf_program__section_name(p)).decode()
            wanted = name == self.prog_name if self.prog_name else (
                chosen == ffi.NULL and (sec == "xdp" or sec.startswith("xdp"))
            )  # fmt: skip
            if wanted:
                chosen = p
            else:
                lib.bpf_program__set_autoload(p, False)
            p = lib.bpf_object__next_program(obj, p)
        if chosen == ffi.NULL:
            raise KernelError(errno.ENOENT, "no XDP program in the object")
        return chosen

    def run(self, packet: bytes, repeat: int = 1, in_port: int | None = None) -> KernelRun:
        """BPF_PROG_TEST_RUN: the verdict and the kernel's ns per run.

        Without 'in_port' the kernel reports the loopback device (ifindex 1)
        as ingress_ifindex; with it, a struct xdp_md names that device, which
        must exist in the caller's network namespace."""
        ffi, lib = _lib()
        opts = ffi.new("struct bpf_test_run_opts *")
        opts.sz = ffi.sizeof("struct bpf_test_run_opts")
        buf = ffi.new("uint8_t[]", packet)
        opts.data_in = buf
        opts.data_size_in = len(packet)
        opts.repeat = repeat
        ctx = None
        if in_port is not None:
            # struct xdp_md: data, data_end, data_meta, ingress_ifindex,
            # rx_queue_index, egress_ifindex.
            ctx = ffi.new("uint32_t[6]", [0, len(packet), 0, in_port, 0, 0])
            opts.ctx_in = ctx
            opts.ctx_size_in = ffi.sizeof(ctx)
        rc = lib.bpf_prog_test_run_opts(self._fd, opts)
        if rc < 0:
            code = _errno(rc)
            where = f" with ingress_ifindex {in_port}" if in_port is not None else ""
            raise KernelError(code, f"BPF_PROG_TEST_RUN{where} failed: {os.strerror(code)}")
        return KernelRun(int(opts.retval), int(opts.duration))

    def attach_xdp(self, ifindex: int, mode: str = "drv") -> None:
        """Attach the program to device 'ifindex' of this thread's network
        namespace, in driver mode (veth runs XDP natively) or 'skb' mode;
        it stays attached until the device goes."""
        flags = {"drv": XDP_FLAGS_DRV_MODE, "skb": XDP_FLAGS_SKB_MODE}[mode]
        ffi, lib = _lib()
        rc = lib.bpf_xdp_attach(ifindex, self._fd, flags, ffi.NULL)
        if rc < 0:
            code = _errno(rc)
            raise KernelError(code, f"XDP attach to ifindex {ifindex}: {os.strerror(code)}")

    def close_program(self) -> None:
        if self._obj is not None:
            _lib()[1].bpf_object__close(self._obj)
            self._obj = None
            self._fd = -1

    def close(self) -> None:
        self.close_program()
        for m in self.maps.values():
            m.close()
        self.maps.clear()

    def __enter__(self) -> KernelProgram:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
