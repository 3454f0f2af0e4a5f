/*
 * okovm-test.c -- the test-only archive libokovm-test.a: raw instruction
 * loads, stand-alone maps and fault injection for libokovm's unit tests,
 * fuzz targets and benchmark.
 *
 * Nothing here is in libokovm.so or libokovm.a.  Raw loads go through the
 * library's internal constructor (okovm_prog_alloc() and
 * okovm_prog_finish(), hidden symbols reachable only by static linking);
 * faults are injected with seccomp filters in the test process rather
 * than with switches inside the library.
 */

#include <errno.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>

#include "okovm-private.h"
#include "okovm-test.h"

static atomic_bool no_slots;

int
okovm_test_load_raw(struct okovm_ns *ns, const struct okovm_test_insn *insns,
                    uint32_t n, struct okovm_map **maps, uint32_t n_maps,
                    uint32_t flags, struct okovm_prog **progp,
                    struct okovm_error *err)
{
    struct okovm_prog *prog;
    uint32_t i;
    int error;

    okovm_error_clear(err);
    *progp = NULL;
    prog = okovm_prog_alloc(ns);
    if (!prog || !(prog->insns = calloc(n + 1, sizeof *prog->insns))
        || !(prog->maps = calloc(n_maps + 1, sizeof *prog->maps))) {
        okovm_prog_unref(prog);
        return okovm_error_set(err, ENOMEM, -1, "out of memory");
    }
    snprintf(prog->name, sizeof prog->name, "raw");
    if (n) {
        memcpy(prog->insns, insns, n * sizeof *prog->insns);
    }
    prog->n_insns = n;
    for (i = 0; i < n_maps; i++) {
        okovm_map_ref(maps[i]);
        prog->maps[i] = maps[i];
    }
    prog->n_maps = n_maps;
    prog->no_jit = (flags & OKOVM_LOAD_NO_JIT) != 0;
    prog->no_slots = atomic_load(&no_slots);
    prog->mode = (flags & OKOVM_LOAD_FORCE_SANDBOX) ? OKOVM_MODE_SANDBOX
                                                    : OKOVM_MODE_VERIFIED;
    error = okovm_prog_finish(prog, prog->mode == OKOVM_MODE_SANDBOX, err);
    if (error) {
        okovm_prog_unref(prog);
        return error;
    }
    *progp = prog;
    return 0;
}

int
okovm_test_map_create(struct okovm_ns *ns, const char *name, uint32_t type,
                      uint32_t key_size, uint32_t value_size,
                      uint32_t max_entries, uint32_t map_flags,
                      struct okovm_map **mapp)
{
    char why[256];

    return okovm_map_create(ns, name, type, key_size, value_size,
                            max_entries, map_flags, mapp, why, sizeof why);
}

void
okovm_test_disable_register_slots(int disable)
{
    atomic_store(&no_slots, disable != 0);
}

#if defined(__x86_64__)
#define TEST_AUDIT_ARCH AUDIT_ARCH_X86_64
#elif defined(__aarch64__)
#define TEST_AUDIT_ARCH AUDIT_ARCH_AARCH64
#endif

/* Installs a seccomp filter that makes system call 'nr' fail with 'error'
 * when its argument number 'arg' (low 32 bits) has any of the bits 'mask'
 * ('mask' 0: always).  Returns 0 or a positive errno. */
static int
refuse_syscall(int nr, int arg, uint32_t mask, int error)
{
#ifdef TEST_AUDIT_ARCH
    struct sock_filter f[] = {
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS,
                 offsetof(struct seccomp_data, arch)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, TEST_AUDIT_ARCH, 1, 0),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS,
                 offsetof(struct seccomp_data, nr)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, nr, 1, 0),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS,
                 offsetof(struct seccomp_data, args[arg])),
        BPF_JUMP(BPF_JMP | BPF_JSET | BPF_K, mask, 1, 0),
        BPF_STMT(BPF_RET | BPF_K, mask ? SECCOMP_RET_ALLOW
                                       : SECCOMP_RET_ERRNO | error),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | error),
    };
    struct sock_fprog prog = { .len = sizeof f / sizeof f[0], .filter = f };

    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0)
        || syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &prog)) {
        return errno;
    }
    return 0;
#else
    (void) nr;
    (void) arg;
    (void) mask;
    (void) error;
    return EOPNOTSUPP;
#endif
}

int
okovm_test_refuse_exec_memory(int error)
{
    return refuse_syscall(SYS_mprotect, 2, PROT_EXEC, error);
}

int
okovm_test_refuse_capset(int error)
{
    return refuse_syscall(SYS_capset, 0, 0, error);
}
