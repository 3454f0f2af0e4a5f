/*
 * test-helpers.c -- the helper table (src/helpers.c) is consistent with
 * the kernel's helper ids and with itself, since the verifier, the
 * interpreters, the JIT and kernel admission all trust it.
 */

#include <errno.h>

#include "asm.h"
#include "runner.h"

/* The kernel's helper names, indexed by id. */
#define KERNEL_NAME(NAME) [BPF_FUNC_##NAME] = #NAME
static const char *const kernel_names[] = {
    __BPF_FUNC_MAPPER(KERNEL_NAME)
};
#define N_KERNEL_NAMES (sizeof kernel_names / sizeof *kernel_names)

/* Checks the argument kinds of 'h'. */
static void
check_args(const struct okovm_helper *h)
{
    bool map = false, end = false;
    int a;

    for (a = 0; a < 5; a++) {
        enum okovm_arg k = h->args[a];

        if (end) {
            CHECK_EQ(k, OKOVM_ARG_NONE);
        }
        switch (k) {
        case OKOVM_ARG_NONE:
            end = true;
            break;
        case OKOVM_ARG_MAP:
            map = true;
            break;
        case OKOVM_ARG_MAP_KEY:
        case OKOVM_ARG_MAP_VALUE:
            /* Their size comes from the map argument before them. */
            CHECK(map);
            break;
        case OKOVM_ARG_MEM:
            CHECK(a < 4 && h->args[a + 1] == OKOVM_ARG_MEM_SIZE);
            break;
        case OKOVM_ARG_MEM_SIZE:
            CHECK(a > 0 && h->args[a - 1] == OKOVM_ARG_MEM);
            break;
        case OKOVM_ARG_ANYTHING:
            break;
        }
    }
    if (h->ret == OKOVM_RET_MAP_VALUE_OR_NULL) {
        CHECK(map);
    }
}

TEST(helper_table)
{
    int32_t last = 0;
    size_t i;

    CHECK(okovm_n_helpers > 0);
    for (i = 0; i < okovm_n_helpers; i++) {
        const struct okovm_helper *h = &okovm_helpers[i];

        /* Kernel ids and names, in order (the verifier lists them). */
        CHECK(h->id > last);
        last = h->id;
        CHECK((size_t) h->id < N_KERNEL_NAMES);
        if ((size_t) h->id < N_KERNEL_NAMES) {
            CHECK(!strcmp(h->name, kernel_names[h->id]));
        }
        CHECK(h->fn != NULL);
        CHECK_EQ(okovm_helper_index(h->id), i);
        CHECK(okovm_helper_find(h->id) == h);
        check_args(h);
        if (h->strict_stand_in) {
            const struct okovm_helper *s;

            /* The stand-in must be valid whatever the arguments. */
            s = okovm_helper_find(h->strict_stand_in);
            CHECK(s != NULL);
            if (s) {
                CHECK_EQ(s->args[0], OKOVM_ARG_NONE);
                CHECK_EQ(s->ret, OKOVM_RET_INTEGER);
                CHECK_EQ(s->strict_stand_in, 0);
            }
        }
    }
    CHECK(okovm_helper_find(0) == NULL);
    CHECK(okovm_helper_find(-1) == NULL);
    CHECK(okovm_helper_find(BPF_FUNC_tail_call) == NULL);
    CHECK_EQ(okovm_helper_index(BPF_FUNC_tail_call), -1);
}

TEST(helper_refusal_lists_the_table)
{
    struct okovm_test_insn call[] = { CALL(BPF_FUNC_tail_call), EXIT() };
    struct okovm_prog *prog = NULL;
    struct okovm_error err;
    struct okovm_ns *ns;
    size_t i;

    okovm_ns_create("helpers", &ns);
    CHECK_EQ(okovm_test_load_raw(ns, call, N_INSNS(call), NULL, 0,
                                 OKOVM_LOAD_FORCE_SANDBOX, &prog, &err),
             EINVAL);
    CHECK_STR(err.msg, "insn 0: helper 12 is not supported (supported: ");
    for (i = 0; i < okovm_n_helpers; i++) {
        char entry[64];

        snprintf(entry, sizeof entry, "%s %d", okovm_helpers[i].name,
                 (int) okovm_helpers[i].id);
        CHECK_STR(err.msg, entry);
    }
    okovm_prog_unref(prog);
    okovm_ns_destroy(ns);
}

/* The sandbox checks a helper's memory arguments as its table entry
 * describes them: bpf_trace_printk()'s format must be readable for the
 * size given. */
TEST(helper_sandbox_checks_memory_arguments)
{
    struct okovm_test_insn printk[] = {
        ST(BPF_DW, 10, -8, 0x0a6968),       /* "hi\n" */
        MOV64_X(1, 10), ALU64_K(BPF_ADD, 1, -8),
        MOV64_K(2, 0), ALU64_K(BPF_ADD, 2, 0),
        CALL(BPF_FUNC_trace_printk), EXIT(),
    };
    struct okovm_prog_stats st;
    struct okovm_prog *prog = NULL;
    struct okovm_error err;
    struct okovm_ns *ns;
    uint8_t pkt[16] = { 0 };

    okovm_ns_create("helpers", &ns);
    /* 8 bytes from fp-8: inside the stack. */
    printk[4] = ALU64_K(BPF_ADD, 2, 8);
    CHECK_EQ(okovm_test_load_raw(ns, printk, N_INSNS(printk), NULL, 0,
                                 OKOVM_LOAD_FORCE_SANDBOX, &prog, &err), 0);
    CHECK_EQ(okovm_prog_run(prog, pkt, sizeof pkt, 0), 2);
    okovm_prog_get_stats(prog, &st);
    CHECK_EQ(st.faults, 0);
    okovm_prog_unref(prog);

    /* 9 bytes: one past the top of the stack. */
    printk[4] = ALU64_K(BPF_ADD, 2, 9);
    CHECK_EQ(okovm_test_load_raw(ns, printk, N_INSNS(printk), NULL, 0,
                                 OKOVM_LOAD_FORCE_SANDBOX, &prog, &err), 0);
    CHECK_EQ(okovm_prog_run(prog, pkt, sizeof pkt, 0), OKOVM_XDP_ABORTED);
    okovm_prog_get_stats(prog, &st);
    CHECK_EQ(st.faults, 1);
    okovm_prog_unref(prog);
    okovm_ns_destroy(ns);
}
