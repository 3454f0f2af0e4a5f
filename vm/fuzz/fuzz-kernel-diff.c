/*
 * fuzz-kernel-diff.c -- libFuzzer target: arbitrary bytes as raw BPF
 * instructions (8 bytes each), wrapped in an ELF object and offered both
 * to okovm_prog_load() in verified mode (structural verifier plus kernel
 * admission, lenient fallback allowed) and, directly, to the kernel's
 * verifier as an XDP program (BPF_PROG_LOAD with the caller's privileges:
 * run as root).
 *
 * Aborts if libokovm admits in verified mode what the kernel refuses, or
 * if an admitted program gives different verdicts as native code and in
 * the interpreter.  Programs the kernel accepts but libokovm refuses are
 * counted (the structural verifier is allowed to be stricter) and the
 * counts printed on stderr.
 */

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <unistd.h>

#include "fuzz.h"

#define MAX_INSNS 256

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct {
    unsigned long inputs;
    unsigned long kernel_ok;        /* The kernel accepted it. */
    unsigned long okovm_ok;         /* libokovm admitted it. */
    unsigned long kernel_only;      /* Accepted by the kernel only. */
} stats;

static void
print_stats(void)
{
    fprintf(stderr, "fuzz-kernel-diff: %lu inputs, kernel accepted %lu, "
            "libokovm admitted %lu, kernel only %lu\n", stats.inputs,
            stats.kernel_ok, stats.okovm_ok, stats.kernel_only);
}

/* Loads 'elf' into a fresh namespace with 'flags'; on success runs it on
 * the fuzz packets and stores the verdicts in '*verdicts'.  Returns the
 * load's error. */
static int
load_and_run(const void *elf, size_t len, uint32_t flags, bool *jitp,
             uint32_t *verdicts, struct okovm_error *err)
{
    struct okovm_load_opts opts = { .flags = flags };
    struct okovm_prog_info info;
    struct okovm_ns *ns = fuzz_ns();
    struct okovm_prog *prog;
    int error;

    error = okovm_prog_load(ns, elf, len, &opts, &prog, err);
    if (!error) {
        okovm_prog_get_info(prog, &info);
        if (info.mode != OKOVM_MODE_VERIFIED || !info.kernel_verified) {
            abort();
        }
        *jitp = info.jit;
        *verdicts = fuzz_run_packets(prog);
        okovm_prog_unref(prog);
    }
    okovm_ns_destroy(ns);
    return error;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static char log[65536];
    static struct okovm_error err;
    LIBBPF_OPTS(bpf_prog_load_opts, lo, .log_buf = log,
                .log_size = sizeof log, .log_level = 1);
    uint32_t n = size / 8, v_jit = 0, v_interp = 0;
    bool jit = false, interp_jit = false;
    void *insns, *elf;
    size_t len;
    int fd, error;

    if (!n || n > MAX_INSNS) {
        return -1;
    }
    if (!stats.inputs) {
        atexit(print_stats);
    }
    insns = malloc(n * 8);
    memcpy(insns, data, n * 8);
    elf = fuzz_make_elf(insns, n, &len);
    if (!elf) {
        abort();
    }

    /* Whether the kernel accepts it is asked without a log, as libbpf
     * (and so libokovm) asks: with log_level 1 the kernel also refuses,
     * with ENOSPC, a program whose log of one path outgrows the buffer
     * (a long bounded loop), however valid.  The log is fetched only to
     * explain a refusal. */
    log[0] = '\0';
    fd = bpf_prog_load(BPF_PROG_TYPE_XDP, "fuzz", "GPL", insns, n, NULL);
    if (fd < 0 && fd != -EPERM) {
        int fd2 = bpf_prog_load(BPF_PROG_TYPE_XDP, "fuzz", "GPL", insns, n,
                                &lo);

        if (fd2 >= 0) {
            close(fd2);
        }
    }
    if (fd >= 0) {
        close(fd);
        stats.kernel_ok++;
    } else if (fd == -EPERM) {
        fprintf(stderr, "fuzz-kernel-diff: BPF_PROG_LOAD: EPERM (run as "
                "root)\n");
        exit(1);
    }

    error = load_and_run(elf, len, OKOVM_LOAD_ALLOW_LENIENT_KERNEL, &jit,
                         &v_jit, &err);
    if (!error) {
        stats.okovm_ok++;
        if (fd < 0) {
            fprintf(stderr, "libokovm admitted a program the kernel "
                    "refuses (%s):\n%s\n", strerror(-fd), log);
            abort();
        }
        error = load_and_run(elf, len, OKOVM_LOAD_ALLOW_LENIENT_KERNEL
                             | OKOVM_LOAD_NO_JIT, &interp_jit, &v_interp,
                             &err);
        if (error || interp_jit) {
            fprintf(stderr, "second load failed: %s\n", err.msg);
            abort();
        }
        if (v_jit != v_interp) {
            fprintf(stderr, "verdicts differ: %#x (%s) vs %#x "
                    "(interpreter)\n", v_jit, jit ? "jit" : "interpreter",
                    v_interp);
            abort();
        }
    } else {
        fuzz_check_error(error, &err);
        if (fd >= 0) {
            stats.kernel_only++;
        }
    }
    if (!(++stats.inputs & (stats.inputs - 1)) && stats.inputs >= 1024) {
        print_stats();
    }
    free(elf);
    free(insns);
    return 0;
}
