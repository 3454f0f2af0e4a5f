/*
 * test-strict.c -- kernel admission with the strict (unprivileged)
 * verifier rules, the structural verifier's pointer-leak checks, and
 * initial contents for global data ('const volatile' tunables).
 */

#include <errno.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>
#include <linux/capability.h>

#include "okovm.h"
#include "okovm-test.h"
#include "asm.h"
#include "runner.h"

#ifndef CAP_PERFMON
#define CAP_PERFMON 38
#endif
#ifndef CAP_BPF
#define CAP_BPF 39
#endif

static struct okovm_error *
new_err(void)
{
    struct okovm_error *e = calloc(1, sizeof *e);

    if (!e) {
        abort();
    }
    return e;
}

static int
load_opts(struct okovm_ns *ns, const char *file,
          const struct okovm_load_opts *opts, struct okovm_prog **progp,
          struct okovm_error *err)
{
    size_t len;
    void *elf = read_prog(file, &len);
    int error = okovm_prog_load(ns, elf, len, opts, progp, err);

    free(elf);
    return error;
}

static int
load_fn(struct okovm_ns *ns, const char *file, const char *fn,
        uint32_t flags, struct okovm_prog **progp, struct okovm_error *err)
{
    struct okovm_load_opts opts = { .prog_name = fn, .flags = flags };

    return load_opts(ns, file, &opts, progp, err);
}

/* Returns the calling thread's effective capabilities. */
static uint64_t
effective_caps(void)
{
    struct __user_cap_header_struct hdr = { _LINUX_CAPABILITY_VERSION_3, 0 };
    struct __user_cap_data_struct data[2];

    memset(data, 0, sizeof data);
    if (syscall(SYS_capget, &hdr, data)) {
        return 0;
    }
    return data[0].effective | (uint64_t) data[1].effective << 32;
}

static bool
have_cap(uint64_t caps, int cap)
{
    return (caps >> cap) & 1;
}

/* Sets the calling thread's effective and permitted capabilities to
 * 'caps'.  Returns 0 or errno. */
static int
set_caps(uint64_t caps)
{
    struct __user_cap_header_struct hdr = { _LINUX_CAPABILITY_VERSION_3, 0 };
    struct __user_cap_data_struct data[2];

    memset(data, 0, sizeof data);
    data[0].effective = data[0].permitted = (uint32_t) caps;
    data[1].effective = data[1].permitted = (uint32_t) (caps >> 32);
    return syscall(SYS_capset, &hdr, data) ? errno : 0;
}

static bool
can_bpf(void)
{
    uint64_t caps = effective_caps();

    return (have_cap(caps, CAP_BPF) || have_cap(caps, CAP_SYS_ADMIN))
           && have_cap(caps, CAP_NET_ADMIN);
}

TEST(strict_refuses_uninit_stack)
{
    static const char *const fns[] = { "uninit_key", "uninit_var" };
    struct okovm_ns *ns;
    struct okovm_error *err = new_err();
    size_t i;

    if (!can_bpf()) {
        fprintf(stderr, "skipped: no CAP_BPF\n");
        free(err);
        return;
    }
    okovm_ns_create("strict", &ns);
    for (i = 0; i < sizeof fns / sizeof fns[0]; i++) {
        struct okovm_prog *prog = NULL;

        CHECK_EQ(load_fn(ns, "leaky.o", fns[i], 0, &prog, err), EACCES);
        CHECK(!prog);
        CHECK_STR(err->msg, "strict unprivileged rules");
        CHECK_STR(err->log, "stack");
        CHECK(err->insn >= 0);
    }
    okovm_ns_destroy(ns);
    free(err);
}

TEST(structural_leak_checks)
{
    static const struct {
        const char *fn;
        const char *msg;
    } cases[] = {
        { "leak_store", "stores a stack pointer" },
        { "leak_verdict", "R0 leaks addr as return value" },
        { "leak_value", "may hold a spilled packet pointer" },
    };
    struct okovm_ns *ns;
    struct okovm_error *err = new_err();
    size_t i;

    okovm_ns_create("leaks", &ns);
    for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct okovm_prog *prog = NULL;

        /* Refused before the kernel is asked, in both modes. */
        CHECK_EQ(load_fn(ns, "leaky.o", cases[i].fn,
                         OKOVM_LOAD_FORCE_SANDBOX, &prog, err), EINVAL);
        CHECK_STR(err->msg, cases[i].msg);
        CHECK_STR(err->msg, "leaks addr");
        CHECK(err->insn >= 0);
        CHECK(err->line > 0);
        CHECK(!prog);
    }
    okovm_ns_destroy(ns);
    free(err);
}

TEST(structural_leak_checks_raw)
{
    /* r0 = r10; exit: returns a stack pointer. */
    struct okovm_test_insn ret_fp[] = { MOV64_X(0, 10), EXIT() };
    /* Stores r1 (context) into a map value. */
    struct okovm_test_insn store_ctx[] = {
        MOV64_X(6, 1), ST(BPF_W, 10, -4, 0), LD_MAP(1, 0), MOV64_X(2, 10),
        ALU64_K(BPF_ADD, 2, -4), CALL(BPF_FUNC_map_lookup_elem),
        JMP_K(BPF_JEQ, 0, 0, 1), STX(BPF_DW, 0, 6, 0), MOV64_K(0, 2),
        EXIT(),
    };
    /* r0 = ctx - fp: the difference of unrelated pointers. */
    struct okovm_test_insn sub[] = {
        MOV64_X(0, 1), ALU64_X(BPF_SUB, 0, 10), MOV64_K(0, 2), EXIT(),
    };
    /* Spills the context pointer and reads 4 bytes of it back. */
    struct okovm_test_insn partial[] = {
        STX(BPF_DW, 10, 1, -8), LDX(BPF_W, 0, 10, -8), EXIT(),
    };
    /* NULL check: returning the map value pointer after "== 0" is
     * returning 0, which is fine. */
    struct okovm_test_insn null_ok[] = {
        ST(BPF_W, 10, -4, 0), LD_MAP(1, 0), MOV64_X(2, 10),
        ALU64_K(BPF_ADD, 2, -4), CALL(BPF_FUNC_map_lookup_elem),
        JMP_K(BPF_JEQ, 0, 0, 1), MOV64_K(0, 1), EXIT(),
    };
    struct okovm_ns *ns;
    struct okovm_map *map;
    struct okovm_prog *prog = NULL;
    struct okovm_error *err = new_err();

    okovm_ns_create("raw", &ns);
    CHECK_EQ(okovm_test_map_create(ns, "a", OKOVM_MAP_ARRAY, 4, 8, 4, 0,
                                   &map), 0);
    CHECK_EQ(okovm_test_load_raw(ns, ret_fp, N_INSNS(ret_fp), NULL, 0, 0,
                                 &prog, err), EINVAL);
    CHECK_STR(err->msg, "stack pointer as its verdict");
    CHECK_EQ(okovm_test_load_raw(ns, store_ctx, N_INSNS(store_ctx), &map, 1,
                                 0, &prog, err), EINVAL);
    CHECK_STR(err->msg, "insn 8: stores a context pointer");
    CHECK_EQ(okovm_test_load_raw(ns, sub, N_INSNS(sub), NULL, 0, 0, &prog,
                                 err), EINVAL);
    CHECK_STR(err->msg, "insn 1: subtracts a stack pointer from a context");
    CHECK_EQ(okovm_test_load_raw(ns, partial, N_INSNS(partial), NULL, 0, 0,
                                 &prog, err), EINVAL);
    CHECK_STR(err->msg, "insn 1: reads 4 byte(s) of a spilled context");
    CHECK_EQ(okovm_test_load_raw(ns, null_ok, N_INSNS(null_ok), &map, 1, 0,
                                 &prog, err), 0);
    CHECK_EQ(okovm_prog_run(prog, "", 0, 0), 1);
    okovm_prog_unref(prog);
    okovm_map_unref(map);
    okovm_ns_destroy(ns);
    free(err);
}

TEST(strict_info_and_caps_kept)
{
    struct okovm_prog_info info;
    struct okovm_prog *prog = NULL;
    struct okovm_ns *ns;
    struct okovm_error *err = new_err();
    uint64_t before = effective_caps();

    if (!can_bpf()) {
        fprintf(stderr, "skipped: no CAP_BPF\n");
        free(err);
        return;
    }
    okovm_ns_create("info", &ns);
    CHECK_EQ(load_fn(ns, "leaky.o", "clean", 0, &prog, err), 0);
    if (prog) {
        okovm_prog_get_info(prog, &info);
        CHECK_EQ(info.kernel_verified, 1);
        CHECK_EQ(info.kernel_strict, 1);
        okovm_prog_unref(prog);
    }
    /* Variable packet offsets need the privileged rules. */
    CHECK_EQ(load_fn(ns, "leaky.o", "varpkt", 0, &prog, err), 0);
    if (prog) {
        uint8_t pkt[32] = { 3, 0, 0, 77 };

        okovm_prog_get_info(prog, &info);
        CHECK_EQ(info.kernel_verified, 1);
        CHECK_EQ(info.kernel_strict, 0);
        CHECK_EQ(okovm_prog_run(prog, pkt, sizeof pkt, 0), 77);
        okovm_prog_unref(prog);
    }
    /* bpf_trace_printk() is replaced for the strict load. */
    CHECK_EQ(load_fn(ns, "counter.o", NULL, 0, &prog, err), 0);
    okovm_prog_unref(prog);

    /* The process (this thread) keeps its capabilities. */
    CHECK_EQ(effective_caps(), before);
    okovm_ns_destroy(ns);
    free(err);
}

/* Fills a large part of the C stack with 0xaa. */
static __attribute__((noinline)) void
dirty_stack(void)
{
    volatile uint8_t junk[16384];
    size_t i;

    for (i = 0; i < sizeof junk; i++) {
        junk[i] = 0xaa;
    }
}

TEST(lenient_programs_get_a_zeroed_stack)
{
    struct okovm_prog_info info;
    struct okovm_prog *prog = NULL;
    struct okovm_ns *ns;
    struct okovm_error *err = new_err();
    uint8_t pkt[32] = { 3, 0, 0, 77 };
    int i;

    if (!can_bpf()) {
        fprintf(stderr, "skipped: no CAP_BPF\n");
        free(err);
        return;
    }
    okovm_ns_create("zero", &ns);
    CHECK_EQ(load_fn(ns, "leaky.o", "varpkt_uninit", 0, &prog, err), 0);
    if (prog) {
        okovm_prog_get_info(prog, &info);
        CHECK_EQ(info.kernel_strict, 0);
        for (i = 0; i < 3; i++) {
            dirty_stack();
            CHECK_EQ(okovm_prog_run(prog, pkt, sizeof pkt, 0), 77);
        }
        okovm_prog_unref(prog);
    }
    okovm_ns_destroy(ns);
    free(err);
}

/* In a child process where capset() fails: 0 if loads behave as
 * documented, 10 + step otherwise. */
static int
child_drop_failure(void)
{
    struct okovm_prog_info info;
    struct okovm_prog *prog = NULL;
    struct okovm_ns *ns;
    struct okovm_error *err = new_err();
    int error;

    error = okovm_test_refuse_capset(EPERM);
    if (error) {
        fprintf(stderr, "seccomp: %s\n", strerror(error));
        return 10;
    }
    okovm_ns_create("drop", &ns);
    if (load_fn(ns, "leaky.o", "clean", 0, &prog, err) != EACCES || prog) {
        return 11;
    }
    if (!strstr(err->msg, "could not drop CAP_SYS_ADMIN and CAP_PERFMON")) {
        fprintf(stderr, "child: %s\n", err->msg);
        return 12;
    }
    /* Sandbox fallback is for hosts without CAP_BPF, not for this. */
    if (load_fn(ns, "leaky.o", "clean", OKOVM_LOAD_ALLOW_SANDBOX, &prog,
                err) != EACCES) {
        return 13;
    }
    if (load_fn(ns, "leaky.o", "clean", OKOVM_LOAD_ALLOW_LENIENT_KERNEL,
                &prog, err)) {
        fprintf(stderr, "child: %s\n", err->msg);
        return 14;
    }
    okovm_prog_get_info(prog, &info);
    if (info.kernel_verified != 1 || info.kernel_strict != 0) {
        return 15;
    }
    okovm_prog_unref(prog);
    okovm_ns_destroy(ns);
    free(err);
    return 0;
}

/* Where privileges cannot be dropped (capset() refused), a load needs
 * OKOVM_LOAD_ALLOW_LENIENT_KERNEL; with capset() working again (the
 * parent) it is strict. */
TEST(strict_drop_failure)
{
    struct okovm_prog_info info;
    struct okovm_prog *prog = NULL;
    struct okovm_ns *ns;
    struct okovm_error *err = new_err();
    int status = 0;
    pid_t pid;

    if (!can_bpf()) {
        fprintf(stderr, "skipped: no CAP_BPF\n");
        free(err);
        return;
    }
    fflush(NULL);
    pid = fork();
    if (pid == 0) {
        _exit(child_drop_failure());
    }
    CHECK(pid > 0);
    CHECK_EQ(waitpid(pid, &status, 0), pid);
    CHECK(WIFEXITED(status));
    CHECK_EQ(WEXITSTATUS(status), 0);

    okovm_ns_create("drop", &ns);
    CHECK_EQ(load_fn(ns, "leaky.o", "clean", 0, &prog, err), 0);
    if (prog) {
        okovm_prog_get_info(prog, &info);
        CHECK_EQ(info.kernel_strict, 1);
        okovm_prog_unref(prog);
    }
    okovm_ns_destroy(ns);
    free(err);
}

/* In a child process reduced to 'caps': 0 if "clean" loads strictly and
 * "uninit_key" is refused, 10 + step otherwise. */
static int
child_with_caps(uint64_t caps, bool expect_kernel)
{
    struct okovm_prog_info info;
    struct okovm_prog *prog = NULL;
    struct okovm_ns *ns;
    struct okovm_error *err = new_err();
    int error;

    if (set_caps(caps)) {
        return 10;
    }
    okovm_ns_create("child", &ns);
    error = load_fn(ns, "leaky.o", "clean", 0, &prog, err);
    if (!expect_kernel) {
        /* No CAP_BPF: the kernel cannot be asked. */
        if (error != EPERM) {
            return 11;
        }
        error = load_fn(ns, "leaky.o", "clean", OKOVM_LOAD_ALLOW_SANDBOX,
                        &prog, err);
        okovm_prog_get_info(prog, &info);
        return error ? 12 : info.mode != OKOVM_MODE_SANDBOX ? 13 : 0;
    }
    if (error) {
        fprintf(stderr, "child: %s\n%s\n", err->msg, err->log);
        return 14;
    }
    okovm_prog_get_info(prog, &info);
    if (!info.kernel_verified || !info.kernel_strict) {
        return 15;
    }
    okovm_prog_unref(prog);
    if (load_fn(ns, "leaky.o", "uninit_key", 0, &prog, err) != EACCES) {
        return 16;
    }
    if (load_fn(ns, "leaky.o", "varpkt", 0, &prog, err)) {
        /* Without CAP_PERFMON the privileged rules are the strict ones:
         * such programs cannot be admitted at all. */
        if (!strstr(err->log, "prohibited for !root")) {
            return 17;
        }
    } else {
        return 18;
    }
    okovm_ns_destroy(ns);
    free(err);
    return 0;
}

static void
run_child(uint64_t caps, bool expect_kernel)
{
    int status = 0;
    pid_t pid;

    fflush(NULL);
    pid = fork();
    if (pid == 0) {
        _exit(child_with_caps(caps, expect_kernel));
    }
    CHECK(pid > 0);
    CHECK_EQ(waitpid(pid, &status, 0), pid);
    CHECK(WIFEXITED(status));
    CHECK_EQ(WEXITSTATUS(status), 0);
}

TEST(strict_with_minimal_caps)
{
    if (!can_bpf()) {
        fprintf(stderr, "skipped: no CAP_BPF\n");
        return;
    }
    run_child((1ull << CAP_BPF) | (1ull << CAP_NET_ADMIN), true);
    run_child(1ull << CAP_NET_ADMIN, false);
}

/* CAP_SYS_ADMIN without CAP_BPF: the strict check is impossible. */
static int
child_admin_no_bpf(void)
{
    struct okovm_prog_info info;
    struct okovm_prog *prog = NULL;
    struct okovm_ns *ns;
    struct okovm_error *err = new_err();

    if (set_caps((1ull << CAP_SYS_ADMIN) | (1ull << CAP_NET_ADMIN))) {
        return 10;
    }
    okovm_ns_create("child", &ns);
    if (load_fn(ns, "leaky.o", "clean", 0, &prog, err) != EACCES
        || !strstr(err->msg, "not CAP_BPF")) {
        fprintf(stderr, "child: %s\n", err->msg);
        return 11;
    }
    if (load_fn(ns, "leaky.o", "clean", OKOVM_LOAD_ALLOW_LENIENT_KERNEL,
                &prog, err)) {
        return 12;
    }
    okovm_prog_get_info(prog, &info);
    return info.kernel_verified && !info.kernel_strict ? 0 : 13;
}

TEST(strict_admin_without_cap_bpf)
{
    int status = 0;
    pid_t pid;

    if (!can_bpf()) {
        fprintf(stderr, "skipped: no CAP_BPF\n");
        return;
    }
    fflush(NULL);
    pid = fork();
    if (pid == 0) {
        _exit(child_admin_no_bpf());
    }
    CHECK(pid > 0);
    CHECK_EQ(waitpid(pid, &status, 0), pid);
    CHECK(WIFEXITED(status));
    CHECK_EQ(WEXITSTATUS(status), 0);
}

TEST(rodata_tunables)
{
    uint32_t drop = OKOVM_XDP_DROP, seven = 7, one = 1, zero = 0, v;
    struct okovm_global_init g[2] = {
        { .section = ".rodata", .offset = 0, .size = 4, .data = &seven },
        { .section = ".rodata", .offset = 0, .size = 4, .data = &drop },
    };
    struct okovm_load_opts opts = { .globals = g, .n_globals = 2 };
    uint8_t pkt[128] = { 0 };
    struct okovm_prog *prog = NULL;
    struct okovm_map *rodata;
    struct okovm_ns *ns;
    struct okovm_error *err = new_err();
    bool kernel = can_bpf();

    if (!kernel) {
        opts.flags = OKOVM_LOAD_FORCE_SANDBOX;
    }
    okovm_ns_create("tun", &ns);

    /* Defaults as compiled. */
    CHECK_EQ(load_fn(ns, "tunable.o", NULL, opts.flags, &prog, err), 0);
    CHECK_EQ(okovm_prog_run(prog, pkt, sizeof pkt, 0), OKOVM_XDP_PASS);
    okovm_prog_unref(prog);

    /* Overrides apply in order; the map shows the new contents and stays
     * read-only. */
    CHECK_EQ(load_opts(ns, "tunable.o", &opts, &prog, err), 0);
    CHECK_EQ(okovm_prog_run(prog, pkt, sizeof pkt, 0), OKOVM_XDP_DROP);
    rodata = okovm_prog_find_map(prog, ".rodata");
    CHECK(rodata != NULL);
    if (rodata) {
        CHECK_EQ(okovm_map_lookup(rodata, &zero, pkt), 0);
        memcpy(&v, pkt, 4);
        CHECK_EQ(v, OKOVM_XDP_DROP);
        CHECK_EQ(okovm_map_update(rodata, &zero, pkt, 0), EPERM);
    }
    okovm_prog_unref(prog);

    /* The kernel verifier sees the same .rodata: with 'peek' set the
     * unchecked packet read is no longer dead code. */
    if (kernel) {
        g[0].offset = 4;
        g[0].data = &one;
        opts.n_globals = 1;
        CHECK_EQ(load_opts(ns, "tunable.o", &opts, &prog, err), EACCES);
        CHECK_STR(err->log, "invalid access to packet");
    }

    /* Errors. */
    g[0].section = ".nope";
    CHECK_EQ(load_opts(ns, "tunable.o", &opts, &prog, err), ENOENT);
    CHECK_STR(err->msg, "no global-data section '.nope'");
    g[0].section = ".rodata";
    g[0].offset = 6;
    CHECK_EQ(load_opts(ns, "tunable.o", &opts, &prog, err), EINVAL);
    CHECK_STR(err->msg, "do not fit");
    g[0].offset = 0;
    g[0].data = NULL;
    CHECK_EQ(load_opts(ns, "tunable.o", &opts, &prog, err), EINVAL);
    opts.globals = NULL;
    CHECK_EQ(load_opts(ns, "tunable.o", &opts, &prog, err), EINVAL);

    /* .bss can be seeded too. */
    g[0].section = ".bss";
    g[0].data = &seven;
    opts.globals = g;
    CHECK_EQ(load_opts(ns, "tunable.o", &opts, &prog, err), 0);
    okovm_prog_run(prog, pkt, sizeof pkt, 0);
    rodata = okovm_prog_find_map(prog, ".bss");
    CHECK(rodata != NULL);
    if (rodata) {
        CHECK_EQ(okovm_map_lookup(rodata, &zero, &v), 0);
        CHECK_EQ(v, 8);
    }
    okovm_prog_unref(prog);
    okovm_ns_destroy(ns);
    free(err);
}
