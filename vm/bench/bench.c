/*
 * bench.c -- interpreter benchmark: ns per run and per BPF instruction
 * for a straight-line ALU program, a realistic filter and a trivial
 * program, in both interpreters; the kernel (JIT) on the same objects for
 * reference when it can be asked.
 *
 * Usage: okovm-bench [iterations]
 */

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "okovm.h"
#include "okovm-test.h"

static uint64_t
now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t) ts.tv_sec * 1000000000u + ts.tv_nsec;
}

static void *
read_file(const char *name, size_t *len)
{
    char path[512];
    FILE *f;
    void *buf;
    long n;

    snprintf(path, sizeof path, "%s/%s", OKOVM_PROGS_DIR, name);
    f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "%s: %s\n", path, strerror(errno));
        exit(1);
    }
    fseek(f, 0, SEEK_END);
    n = ftell(f);
    rewind(f);
    buf = malloc(n);
    if (fread(buf, 1, n, f) != (size_t) n) {
        exit(1);
    }
    fclose(f);
    *len = n;
    return buf;
}

static void
no_defer(void *aux, void (*fn)(void *), void *arg)
{
    (void) aux;
    (void) fn;
    (void) arg;
}

/* Kernel reference: ns per run of 'name' with BPF_PROG_TEST_RUN, or -1. */
static double
kernel_ns(const char *name, const void *pkt, size_t len, uint32_t iters)
{
    char path[512];
    struct bpf_object *obj;
    struct bpf_program *p;
    double ns = -1;

    snprintf(path, sizeof path, "%s/%s", OKOVM_PROGS_DIR, name);
    obj = bpf_object__open_file(path, NULL);
    if (!obj) {
        return -1;
    }
    {
        struct bpf_map *m;

        bpf_object__for_each_map(m, obj) {
            bpf_map__set_pin_path(m, NULL);
        }
    }
    if (!bpf_object__load(obj)) {
        p = bpf_object__next_program(obj, NULL);
        LIBBPF_OPTS(bpf_test_run_opts, o, .data_in = pkt,
                    .data_size_in = len, .repeat = iters);
        if (!bpf_prog_test_run_opts(bpf_program__fd(p), &o)) {
            ns = o.duration;
        }
    }
    bpf_object__close(obj);
    return ns;
}

/* The engine that load flags 'flags' select. */
static const char *
mode_name(uint32_t flags)
{
    return (flags & OKOVM_LOAD_FORCE_SANDBOX ? "sandbox"
            : flags & OKOVM_LOAD_NO_JIT ? "interp"
            : "jit");
}

static void
bench(struct okovm_ns *ns, const char *name, uint32_t flags,
      const uint8_t *pkt, size_t len, uint32_t iters, double n_insns,
      const char *label)
{
    struct okovm_load_opts opts = { .flags = flags };
    struct okovm_error *err = calloc(1, sizeof *err);
    struct okovm_prog *prog;
    uint64_t t0, t1, sink = 0;
    size_t elf_len;
    void *elf = read_file(name, &elf_len);
    uint32_t i;

    if (okovm_prog_load(ns, elf, elf_len, &opts, &prog, err)) {
        fprintf(stderr, "%s: %s\n%s\n", name, err->msg, err->log);
        exit(1);
    }
    for (i = 0; i < iters / 10; i++) {
        sink += okovm_prog_run(prog, pkt, len, i);
    }
    t0 = now_ns();
    for (i = 0; i < iters; i++) {
        sink += okovm_prog_run(prog, pkt, len, i);
    }
    t1 = now_ns();
    {
        double per_run = (double) (t1 - t0) / iters;

        printf("%-26s %-8s %8.1f ns/run", label, mode_name(flags), per_run);
        if (n_insns > 0) {
            printf("  %6.2f ns/insn (%.0f insns/run)", per_run / n_insns,
                   n_insns);
        }
        printf("%s\n", sink == 42 ? " " : "");
    }
    okovm_prog_unref(prog);
    free(elf);
    free(err);
}

/* Hand-assembled: 100 rounds of four independent ALU operations (no
 * dependency chain: measures dispatch), then exit. */
static void
bench_raw_ilp(struct okovm_ns *ns, uint32_t flags, uint32_t iters)
{
    struct okovm_test_insn p[403];
    struct okovm_error *err = calloc(1, sizeof *err);
    struct okovm_prog *prog;
    uint64_t t0, sink = 0;
    uint32_t i, n = 0;

    p[n++] = (struct okovm_test_insn) { 0xb7, 0x00, 0, 0 };   /* r0 = 0 */
    p[n++] = (struct okovm_test_insn) { 0xb7, 0x02, 0, 1 };   /* r2 = 1 */
    for (i = 0; i < 100; i++) {
        p[n++] = (struct okovm_test_insn) { 0x07, 0x02, 0, 1 };  /* r2 += 1 */
        p[n++] = (struct okovm_test_insn) { 0xa7, 0x03, 0, 7 };  /* r3 ^= 7 */
        p[n++] = (struct okovm_test_insn) { 0x0f, 0x24, 0, 0 };  /* r4 += r2 */
        p[n - 1].regs = 0x24;
        p[n++] = (struct okovm_test_insn) { 0x17, 0x05, 0, 3 };  /* r5 -= 3 */
    }
    p[n++] = (struct okovm_test_insn) { 0x95, 0, 0, 0 };     /* exit */
    if (okovm_test_load_raw(ns, p, n, NULL, 0, flags, &prog, err)) {
        fprintf(stderr, "raw: %s\n", err->msg);
        exit(1);
    }
    t0 = now_ns();
    for (i = 0; i < iters; i++) {
        sink += okovm_prog_run(prog, "", 0, i);
    }
    {
        double per_run = (double) (now_ns() - t0) / iters;

        printf("%-26s %-8s %8.1f ns/run  %6.2f ns/insn (%u insns/run)%s\n",
               "raw 4-way ILP (hook)", mode_name(flags), per_run,
               per_run / n, n, sink == 42 ? " " : "");
    }
    okovm_prog_unref(prog);
    free(err);
}

int
main(int argc, char *argv[])
{
    uint32_t iters = argc > 1 ? atoi(argv[1]) : 2000000;
    struct okovm_ns *ns, *ns_hook;
    uint8_t udp[64] = { 0 };
    uint8_t tiny[64] = { 0 };
    double k;
    int mode;

    udp[12] = 0x08;
    udp[14] = 0x45;
    udp[14 + 9] = 17;
    udp[26] = 10;
    udp[29] = 1;
    udp[36] = 0;
    udp[37] = 53;

    okovm_ns_create("bench", &ns);
    okovm_ns_set_timing(ns, 0);
    okovm_ns_create("bench-hook", &ns_hook);
    okovm_ns_set_timing(ns_hook, 0);
    okovm_ns_set_defer(ns_hook, no_defer, NULL);

    printf("iterations: %u\n", iters);
    for (mode = 0; mode < 3; mode++) {
        static const uint32_t modes[3] = {
            OKOVM_LOAD_NO_JIT, OKOVM_LOAD_FORCE_SANDBOX, 0,
        };
        uint32_t f = modes[mode];

        /* alu.o: 447 instructions, all executed (straight line). */
        bench(ns_hook, "alu.o", f, tiny, sizeof tiny, iters, 447,
              "alu (hook, no epoch)");
        bench(ns, "alu.o", f, tiny, sizeof tiny, iters, 447,
              "alu (default epoch)");
        bench(ns_hook, "filter.o", f, udp, sizeof udp, iters, 0,
              "filter udp (hook)");
        bench(ns_hook, "ctx.o", f, tiny, sizeof tiny, iters, 0,
              "ctx (7 insns, hook)");
        bench_raw_ilp(ns_hook, f, iters);
    }
    k = kernel_ns("alu.o", tiny, sizeof tiny, iters);
    if (k >= 0) {
        printf("%-26s %-8s %8.1f ns/run (includes ~21 ns harness)\n",
               "alu", "kernel", k);
    }
    k = kernel_ns("filter.o", udp, sizeof udp, iters);
    if (k >= 0) {
        printf("%-26s %-8s %8.1f ns/run (includes ~21 ns harness)\n",
               "filter udp", "kernel", k);
    }
    okovm_ns_destroy(ns);
    okovm_ns_destroy(ns_hook);
    return 0;
}
