/*
 * test-alu.c -- instruction semantics, one hand-assembled program per
 * case, in every mode (JIT, interpreter, sandbox); structural refusals of
 * raw programs.
 */

#include <errno.h>

#include "asm.h"
#include "runner.h"

static struct okovm_ns *
new_ns(void)
{
    struct okovm_ns *ns;

    if (okovm_ns_create("test", &ns)) {
        abort();
    }
    return ns;
}

/* The engine is chosen once, at load, and every run calls it. */
TEST(engine_per_mode)
{
    static const struct okovm_test_insn insns[] = { MOV64_K(0, 77), EXIT() };
    static uint8_t pkt[64];
    struct okovm_ns *ns = new_ns();
    struct okovm_error err;
    int m;

    for (m = 0; m < N_RUN_MODES; m++) {
        struct okovm_prog *prog = NULL;

        CHECK_EQ(okovm_test_load_raw(ns, insns, N_INSNS(insns), NULL, 0,
                                     run_mode_flags(m), &prog, &err), 0);
        if (!prog) {
            continue;
        }
        if (m == RUN_SANDBOX) {
            CHECK_EQ(prog->engine, OKOVM_ENGINE_SANDBOX);
            CHECK(prog->exec == okovm_exec_sandbox);
        } else if (m == RUN_JIT && prog_is_jit(prog)) {
            CHECK_EQ(prog->engine, OKOVM_ENGINE_JIT);
            CHECK(prog->exec == okovm_exec_jit);
        } else {
            /* RUN_JIT without a JIT for this machine, or RUN_INTERP. */
            CHECK_EQ(prog->engine, OKOVM_ENGINE_INTERP);
            CHECK(prog->exec == okovm_exec_fast);
        }
        CHECK_EQ(okovm_prog_run(prog, pkt, sizeof pkt, 0), 77);
        okovm_prog_unref(prog);
    }
    okovm_ns_destroy(ns);
}

/* Loads 'insns' in every mode (asm.h), checks that each returns
 * 'expect'. */
static void
expect_r0(const char *what, const struct okovm_test_insn *insns, uint32_t n,
          uint64_t expect)
{
    static uint8_t pkt[64];
    struct okovm_ns *ns = new_ns();
    struct okovm_error err;
    int m;

    for (m = 0; m < N_RUN_MODES; m++) {
        struct okovm_prog *prog;
        int error = okovm_test_load_raw(ns, insns, n, NULL, 0,
                                        run_mode_flags(m), &prog, &err);

        if (error) {
            fprintf(stderr, "%s (%s): load failed: %s\n", what,
                    run_mode_name(m), err.msg);
            test_failures++;
            continue;
        }
        if (m != RUN_JIT && prog_is_jit(prog)) {
            fprintf(stderr, "%s (%s): runs as native code\n", what,
                    run_mode_name(m));
            test_failures++;
        }
        uint64_t got = run64(prog, pkt, sizeof pkt, 7);

        if (got != expect) {
            fprintf(stderr, "%s (%s): got %#"PRIx64", expected %#"
                    PRIx64"\n", what, run_mode_name(m), got, expect);
            test_failures++;
        }
        okovm_prog_unref(prog);
    }
    okovm_ns_destroy(ns);
}

#define EXPECT(WHAT, EXPECT, ...)                                       \
    do {                                                                \
        struct okovm_test_insn p_[] = { __VA_ARGS__, EXIT() };          \
        expect_r0(WHAT, p_, N_INSNS(p_), EXPECT);                       \
    } while (0)

TEST(alu64)
{
    EXPECT("mov64 imm sign-extends", UINT64_MAX, MOV64_K(0, -1));
    EXPECT("add64", 5, MOV64_K(0, 2), ALU64_K(BPF_ADD, 0, 3));
    EXPECT("sub64 wraps", UINT64_MAX, MOV64_K(0, 2), ALU64_K(BPF_SUB, 0, 3));
    EXPECT("mul64", 0x200000000ull, LDDW(0, 0x100000000ull),
           ALU64_K(BPF_MUL, 0, 2));
    EXPECT("div64", 3, MOV64_K(0, 10), ALU64_K(BPF_DIV, 0, 3));
    EXPECT("div64 by zero reg", 0, MOV64_K(0, 10), MOV64_K(1, 0),
           ALU64_X(BPF_DIV, 0, 1));
    EXPECT("mod64", 1, MOV64_K(0, 10), ALU64_K(BPF_MOD, 0, 3));
    EXPECT("mod64 by zero reg keeps dst", 10, MOV64_K(0, 10), MOV64_K(1, 0),
           ALU64_X(BPF_MOD, 0, 1));
    EXPECT("div64 imm is sign-extended, unsigned", 0, MOV64_K(0, 10),
           ALU64_K(BPF_DIV, 0, -1));
    EXPECT("or/and/xor", 0x6, MOV64_K(0, 0xc), ALU64_K(BPF_OR, 0, 0x3),
           ALU64_K(BPF_AND, 0, 0xa), ALU64_K(BPF_XOR, 0, 0xc));
    EXPECT("lsh64", 1ull << 40, MOV64_K(0, 1), ALU64_K(BPF_LSH, 0, 40));
    EXPECT("lsh64 reg masked", 1ull << 1, MOV64_K(0, 1), MOV64_K(1, 65),
           ALU64_X(BPF_LSH, 0, 1));
    EXPECT("rsh64 logical", 0x7fffffffffffffffull, MOV64_K(0, -1),
           ALU64_K(BPF_RSH, 0, 1));
    EXPECT("arsh64", UINT64_MAX, MOV64_K(0, -2), ALU64_K(BPF_ARSH, 0, 1));
    EXPECT("arsh64 reg", 0xfffffffffffffff0ull, MOV64_K(0, -256),
           MOV64_K(1, 4), ALU64_X(BPF_ARSH, 0, 1));
    EXPECT("neg64", (uint64_t) -5, MOV64_K(0, 5),
           I(BPF_ALU64 | BPF_NEG, 0, 0, 0, 0));
    EXPECT("mov64 reg", 42, MOV64_K(3, 42), MOV64_X(0, 3));
    EXPECT("lddw", 0x1122334455667788ull, LDDW(0, 0x1122334455667788ull));
}

TEST(alu32)
{
    EXPECT("mov32 zero-extends", 0xffffffffull, MOV64_K(0, -1),
           ALU32_K(BPF_MOV, 0, -1));
    EXPECT("add32 wraps and zero-extends", 1, LDDW(0, 0xfffffffffffffffeull),
           ALU32_K(BPF_ADD, 0, 3));
    EXPECT("sub32", 0xffffffffull, MOV64_K(0, 0), ALU32_K(BPF_SUB, 0, 1));
    EXPECT("mul32", 0xfffffffeull, MOV64_K(0, -1), ALU32_K(BPF_MUL, 0, 2));
    EXPECT("div32 unsigned", 0x7fffffffull, MOV64_K(0, -1),
           ALU32_K(BPF_DIV, 0, 2));
    EXPECT("div32 by zero", 0, MOV64_K(0, 7), MOV64_K(1, 0),
           ALU32_X(BPF_DIV, 0, 1));
    EXPECT("div32 by zero upper bits", 0, MOV64_K(0, 7),
           LDDW(1, 0x100000000ull), ALU32_X(BPF_DIV, 0, 1));
    EXPECT("mod32 by zero keeps low half", 0x5, LDDW(0, 0xff00000005ull),
           MOV64_K(1, 0), ALU32_X(BPF_MOD, 0, 1));
    EXPECT("lsh32", 0x80000000ull, MOV64_K(0, 1), ALU32_K(BPF_LSH, 0, 31));
    EXPECT("lsh32 reg masked", 2, MOV64_K(0, 1), MOV64_K(1, 33),
           ALU32_X(BPF_LSH, 0, 1));
    EXPECT("rsh32", 0x7fffffffull, MOV64_K(0, -1), ALU32_K(BPF_RSH, 0, 1));
    EXPECT("arsh32", 0xffffffffull, MOV64_K(0, -2), ALU32_K(BPF_ARSH, 0, 1));
    EXPECT("neg32", 0xfffffffbull, MOV64_K(0, 5),
           I(BPF_ALU | BPF_NEG, 0, 0, 0, 0));
    EXPECT("xor32 reg", 0xffff0000ull, MOV64_K(0, 0xffff), MOV64_K(1, -1),
           ALU32_X(BPF_XOR, 0, 1));
}

TEST(byteswap)
{
    EXPECT("be16", 0x3412, LDDW(0, 0xaabbccdd00001234ull), END(BPF_TO_BE, 0,
                                                               16));
    EXPECT("be32", 0x78563412, LDDW(0, 0xaabbccdd12345678ull),
           END(BPF_TO_BE, 0, 32));
    EXPECT("be64", 0x8877665544332211ull, LDDW(0, 0x1122334455667788ull),
           END(BPF_TO_BE, 0, 64));
    EXPECT("le16 truncates", 0x1234, LDDW(0, 0xaabbccdd00001234ull),
           END(BPF_TO_LE, 0, 16));
    EXPECT("le32 truncates", 0x12345678, LDDW(0, 0xaabbccdd12345678ull),
           END(BPF_TO_LE, 0, 32));
    EXPECT("le64", 0x1122334455667788ull, LDDW(0, 0x1122334455667788ull),
           END(BPF_TO_LE, 0, 64));
}

TEST(jumps)
{
#define JT(WHAT, A, JMP, TAKEN)                                          \
    EXPECT(WHAT, TAKEN, MOV64_K(0, 0), LDDW(1, A), MOV64_K(2, -1), JMP,   \
           EXIT(), MOV64_K(0, 1))
    JT("jeq taken", 5, JMP_K(BPF_JEQ, 1, 5, 1), 1);
    JT("jeq not", 5, JMP_K(BPF_JEQ, 1, 6, 1), 0);
    JT("jgt unsigned", -1, JMP_K(BPF_JGT, 1, 5, 1), 1);
    JT("jsgt signed", -1, JMP_K(BPF_JSGT, 1, 5, 1), 0);
    JT("jge", 5, JMP_K(BPF_JGE, 1, 5, 1), 1);
    JT("jsge", -5, JMP_K(BPF_JSGE, 1, -5, 1), 1);
    JT("jlt", 4, JMP_K(BPF_JLT, 1, 5, 1), 1);
    JT("jle", 6, JMP_K(BPF_JLE, 1, 5, 1), 0);
    JT("jslt", -6, JMP_K(BPF_JSLT, 1, -5, 1), 1);
    JT("jsle", -5, JMP_K(BPF_JSLE, 1, -5, 1), 1);
    JT("jne", 5, JMP_K(BPF_JNE, 1, 5, 1), 0);
    JT("jset", 6, JMP_K(BPF_JSET, 1, 2, 1), 1);
    JT("jset none", 4, JMP_K(BPF_JSET, 1, 2, 1), 0);
    JT("jeq imm -1 matches 64-bit all ones", -1, JMP_K(BPF_JEQ, 1, -1, 1), 1);
    JT("jeq reg", -1, JMP_X(BPF_JEQ, 1, 2, 1), 1);
    JT("jgt reg", 0, JMP_X(BPF_JGT, 1, 2, 1), 0);
    JT("jsgt reg", 0, JMP_X(BPF_JSGT, 1, 2, 1), 1);
    JT("jmp32 eq ignores upper", 0x500000005ull,
       JMP32_K(BPF_JEQ, 1, 5, 1), 1);
    JT("jmp32 sgt signed", 0xffffffffull, JMP32_K(BPF_JSGT, 1, 0, 1), 0);
    JT("jmp32 gt unsigned", 0xffffffffull, JMP32_K(BPF_JGT, 1, 0, 1), 1);
    JT("jmp32 slt reg", 0x1ffffffffull, JMP32_X(BPF_JSLT, 1, 2, 1), 0);
    JT("jmp32 ne reg", 0xffffffffull, JMP32_X(BPF_JNE, 1, 2, 1), 0);
    EXPECT("ja", 2, MOV64_K(0, 2), JA(1), MOV64_K(0, 3));
#undef JT
}

TEST(memory)
{
    EXPECT("stack stx/ldx dw", 0x1122334455667788ull,
           LDDW(1, 0x1122334455667788ull), STX(BPF_DW, 10, 1, -8),
           LDX(BPF_DW, 0, 10, -8));
    EXPECT("stack st w, ldx b/h", 0x2211 + 0x44,
           ST(BPF_W, 10, -4, 0x44332211), LDX(BPF_H, 0, 10, -4),
           LDX(BPF_B, 1, 10, -1), ALU64_X(BPF_ADD, 0, 1));
    EXPECT("st dw sign-extends", UINT64_MAX, ST(BPF_DW, 10, -8, -1),
           LDX(BPF_DW, 0, 10, -8));
    EXPECT("stx b truncates", 0xff, MOV64_K(1, -1), ST(BPF_DW, 10, -8, 0),
           STX(BPF_B, 10, 1, -8), LDX(BPF_DW, 0, 10, -8));
    EXPECT("atomic add 64", 12, ST(BPF_DW, 10, -8, 5), MOV64_K(1, 7),
           ATOMIC(BPF_DW, BPF_ADD, 10, 1, -8), LDX(BPF_DW, 0, 10, -8));
    EXPECT("atomic fetch add 32", 5 * 1000 + 12, ST(BPF_W, 10, -4, 5),
           MOV64_K(1, 7), ATOMIC(BPF_W, BPF_ADD | BPF_FETCH, 10, 1, -4),
           LDX(BPF_W, 0, 10, -4), ALU64_K(BPF_MUL, 1, 1000),
           ALU64_X(BPF_ADD, 0, 1));
    EXPECT("atomic fetch add 32 zero-extends", 0xffffffffull,
           ST(BPF_W, 10, -4, -1), MOV64_K(1, 1),
           ATOMIC(BPF_W, BPF_ADD | BPF_FETCH, 10, 1, -4), MOV64_X(0, 1));
    EXPECT("atomic or/and/xor", 0x6, ST(BPF_DW, 10, -8, 0xc), MOV64_K(1, 3),
           ATOMIC(BPF_DW, BPF_OR, 10, 1, -8), MOV64_K(1, 0xa),
           ATOMIC(BPF_DW, BPF_AND, 10, 1, -8), MOV64_K(1, 0xc),
           ATOMIC(BPF_DW, BPF_XOR, 10, 1, -8), LDX(BPF_DW, 0, 10, -8));
    EXPECT("xchg", 9 * 100 + 4, ST(BPF_DW, 10, -8, 9), MOV64_K(1, 4),
           ATOMIC(BPF_DW, BPF_XCHG, 10, 1, -8), LDX(BPF_DW, 0, 10, -8),
           ALU64_K(BPF_MUL, 1, 100), ALU64_X(BPF_ADD, 0, 1));
    EXPECT("cmpxchg success", 3 * 100 + 8, ST(BPF_DW, 10, -8, 3),
           MOV64_K(0, 3), MOV64_K(1, 8),
           ATOMIC(BPF_DW, BPF_CMPXCHG, 10, 1, -8), ALU64_K(BPF_MUL, 0, 100),
           LDX(BPF_DW, 2, 10, -8), ALU64_X(BPF_ADD, 0, 2));
    EXPECT("cmpxchg failure", 3 * 100 + 3, ST(BPF_DW, 10, -8, 3),
           MOV64_K(0, 4), MOV64_K(1, 8),
           ATOMIC(BPF_DW, BPF_CMPXCHG, 10, 1, -8), ALU64_K(BPF_MUL, 0, 100),
           LDX(BPF_DW, 2, 10, -8), ALU64_X(BPF_ADD, 0, 2));
}

TEST(calls)
{
    /* main: r6 = 100; r1 = 5; call f; r0 += r6; exit
     * f: r6 = 1 (callee may clobber; caller's r6 restored); stack use;
     *    r0 = r1 * 3; exit */
    EXPECT("bpf-to-bpf call", 115, MOV64_K(6, 100), MOV64_K(1, 5),
           ST(BPF_DW, 10, -8, 77), CALL_LOCAL(3), ALU64_X(BPF_ADD, 0, 6),
           LDX(BPF_DW, 1, 10, -8), EXIT(),
           /* f: */
           MOV64_K(6, 1), ST(BPF_DW, 10, -8, 1), MOV64_X(0, 1),
           ALU64_K(BPF_MUL, 0, 3));
}

TEST(helpers_raw)
{
    struct okovm_ns *ns = new_ns();
    struct okovm_prog *prog;
    struct okovm_error err;
    struct okovm_test_insn p[] = {
        CALL(BPF_FUNC_ktime_get_ns), EXIT(),
    };
    struct okovm_test_insn q[] = {
        CALL(BPF_FUNC_get_prandom_u32), EXIT(),
    };
    uint64_t a, b;

    okovm_ns_set_fixed_clock(ns, 123456789);
    CHECK_EQ(okovm_test_load_raw(ns, p, N_INSNS(p), NULL, 0, 0, &prog,
                                 &err), 0);
    CHECK_EQ(run64(prog, "", 0, 0), 123456789);
    okovm_prog_unref(prog);

    CHECK_EQ(okovm_test_load_raw(ns, q, N_INSNS(q), NULL, 0, 0, &prog,
                                 &err), 0);
    okovm_ns_seed_prandom(ns, 42);
    a = run64(prog, "", 0, 0);
    b = run64(prog, "", 0, 0);
    okovm_ns_seed_prandom(ns, 42);
    CHECK_EQ(run64(prog, "", 0, 0), a);
    CHECK_EQ(run64(prog, "", 0, 0), b);
    CHECK(a != b);
    CHECK(a <= UINT32_MAX);
    okovm_prog_unref(prog);
    okovm_ns_destroy(ns);
}

/* Expects 'insns' to be refused with 'code' and 'text' in the message,
 * naming instruction 'insn' (-1: do not check). */
static void
expect_refused(const char *what, const struct okovm_test_insn *insns,
               uint32_t n, int code, int insn, const char *text)
{
    struct okovm_ns *ns = new_ns();
    struct okovm_prog *prog = NULL;
    struct okovm_error err;
    int error = okovm_test_load_raw(ns, insns, n, NULL, 0, 0, &prog, &err);

    if (error != code) {
        fprintf(stderr, "%s: expected error %d, got %d (%s)\n", what, code,
                error, error ? err.msg : "loaded");
        test_failures++;
    } else {
        CHECK_STR(err.msg, text);
        if (insn >= 0) {
            CHECK_EQ(err.insn, insn);
        }
    }
    okovm_prog_unref(prog);
    okovm_ns_destroy(ns);
}

#define REFUSED(WHAT, CODE, INSN, TEXT, ...)                            \
    do {                                                                \
        struct okovm_test_insn p_[] = { __VA_ARGS__ };                  \
        expect_refused(WHAT, p_, N_INSNS(p_), CODE, INSN, TEXT);        \
    } while (0)

TEST(refusals_raw)
{
    {
        struct okovm_ns *ns = new_ns();
        struct okovm_prog *prog;
        struct okovm_error err;

        CHECK_EQ(okovm_test_load_raw(ns, NULL, 0, NULL, 0, 0, &prog, &err),
                 EINVAL);
        CHECK_STR(err.msg, "empty");
        okovm_ns_destroy(ns);
    }
    REFUSED("fall through", EINVAL, 0, "falls through", MOV64_K(0, 0));
    REFUSED("jump out of range", EINVAL, 1, "out of range", MOV64_K(0, 0),
            JA(5), EXIT());
    REFUSED("jump into lddw", EINVAL, 0, "middle of ld_imm64", JA(1),
            LDDW(0, 1), EXIT());
    REFUSED("bad opcode", EINVAL, 0, "invalid", I(0xff, 0, 0, 0, 0),
            EXIT());
    REFUSED("r10 write", EINVAL, 0, "read-only", MOV64_K(10, 0), EXIT());
    REFUSED("bad register", EINVAL, 0, "invalid register", MOV64_K(11, 0),
            EXIT());
    REFUSED("unknown helper", EINVAL, 0, "helper 8 is not supported",
            CALL(8), EXIT());
    REFUSED("div by zero imm", EINVAL, 1, "division by zero",
            MOV64_K(0, 1), ALU64_K(BPF_DIV, 0, 0), EXIT());
    REFUSED("bad shift", EINVAL, 0, "invalid shift",
            ALU32_K(BPF_LSH, 0, 32), EXIT());
    REFUSED("stack out of bounds", EINVAL, 0, "stack access out of bounds",
            ST(BPF_DW, 10, -520, 0), MOV64_K(0, 0), EXIT());
    REFUSED("stack above fp", EINVAL, 0, "stack access out of bounds",
            LDX(BPF_W, 0, 10, 0), EXIT());
    REFUSED("stack via copied fp", EINVAL, 2, "stack access out of bounds",
            MOV64_X(1, 10), ALU64_K(BPF_ADD, 1, -512),
            LDX(BPF_DW, 0, 1, -8), EXIT());
    REFUSED("bad ctx offset", EINVAL, 0, "invalid access to the context",
            LDX(BPF_W, 0, 1, 24), EXIT());
    REFUSED("ctx pointer field narrow", EINVAL, 0, "context",
            LDX(BPF_B, 0, 1, 0), EXIT());
    REFUSED("ctx write", EACCES, 0, "context", ST(BPF_W, 1, 12, 0),
            MOV64_K(0, 0), EXIT());
    REFUSED("packet write", EACCES, 1, "packets are read-only",
            LDX(BPF_W, 2, 1, 0), ST(BPF_B, 2, 0, 1), MOV64_K(0, 0),
            EXIT());
    REFUSED("packet write via copy and add", EACCES, 4,
            "packets are read-only", LDX(BPF_W, 2, 1, 0),
            STX(BPF_DW, 10, 2, -8), LDX(BPF_DW, 3, 10, -8),
            ALU64_K(BPF_ADD, 3, 14), STX(BPF_B, 3, 1, 0), MOV64_K(0, 0),
            EXIT());
    REFUSED("packet atomic", EACCES, 2, "packets are read-only",
            LDX(BPF_W, 2, 1, 0), MOV64_K(3, 1),
            ATOMIC(BPF_W, BPF_ADD, 2, 3, 0), MOV64_K(0, 0), EXIT());
    REFUSED("loop without kernel", EINVAL, 1, "back-edge", MOV64_K(0, 0),
            JA(-2), EXIT());
    REFUSED("recursion", EINVAL, 1, "recursive", MOV64_K(0, 0),
            CALL_LOCAL(-2), EXIT());
    REFUSED("legacy ld_abs", EINVAL, 0, "legacy",
            I(BPF_LD | BPF_ABS | BPF_B, 0, 0, 0, 0), EXIT());
    REFUSED("map ref without map", EINVAL, 0, "invalid map reference",
            LD_MAP(1, 0), MOV64_K(0, 0), EXIT());
}

TEST(ctx_raw)
{
    static const uint8_t pkt[] = { 1, 2, 3, 4, 5, 6, 7, 8, 9, 10 };
    struct okovm_test_insn p[] = {
        /* r0 = (data_end - data) * 1000 + in_port + rx_queue_index */
        LDX(BPF_W, 2, 1, 0), LDX(BPF_W, 3, 1, 4), LDX(BPF_W, 4, 1, 12),
        LDX(BPF_W, 5, 1, 16), MOV64_X(0, 3), ALU64_X(BPF_SUB, 0, 2),
        ALU64_K(BPF_MUL, 0, 1000), ALU64_X(BPF_ADD, 0, 4),
        ALU64_X(BPF_ADD, 0, 5),
        /* + first packet byte * 100000 */
        LDX(BPF_B, 6, 2, 0), ALU64_K(BPF_MUL, 6, 100000),
        ALU64_X(BPF_ADD, 0, 6), EXIT(),
    };
    struct okovm_test_insn narrow[] = {
        LDX(BPF_B, 0, 1, 13), EXIT(),       /* Byte 1 of ingress_ifindex. */
    };
    struct okovm_ns *ns = new_ns();
    struct okovm_prog *prog;
    struct okovm_error err;
    int m;

    for (m = 0; m < N_RUN_MODES; m++) {
        uint32_t flags = run_mode_flags(m);

        CHECK_EQ(okovm_test_load_raw(ns, p, N_INSNS(p), NULL, 0, flags,
                                     &prog, &err), 0);
        CHECK_EQ(run64(prog, pkt, sizeof pkt, 7), 100000 + 10 * 1000 + 7);
        CHECK_EQ(okovm_prog_run(prog, pkt, sizeof pkt, 7),
                 100000 + 10 * 1000 + 7);
        okovm_prog_unref(prog);
        CHECK_EQ(okovm_test_load_raw(ns, narrow, N_INSNS(narrow), NULL, 0,
                                     flags, &prog, &err), 0);
        CHECK_EQ(okovm_prog_run(prog, pkt, sizeof pkt, 0x1234), 0x12);
        okovm_prog_unref(prog);
    }
    okovm_ns_destroy(ns);
}

TEST(sandbox_raw)
{
    static const uint8_t pkt[4] = { 9, 9, 9, 9 };
    /* Reads data[off] without a bounds check: off 3 is fine, 4 is out. */
    struct okovm_test_insn rd[] = {
        LDX(BPF_W, 2, 1, 0), LDX(BPF_B, 0, 2, 3), EXIT(),
    };
    struct okovm_test_insn rd_oob[] = {
        LDX(BPF_W, 2, 1, 0), LDX(BPF_B, 0, 2, 4), EXIT(),
    };
    struct okovm_test_insn wild[] = {
        LDDW(1, 0x1000), LDX(BPF_DW, 0, 1, 0), EXIT(),
    };
    struct okovm_test_insn loop[] = {
        MOV64_K(0, 0), ALU64_K(BPF_ADD, 0, 1), JMP_K(BPF_JNE, 0, 0, -2),
        EXIT(),
    };
    struct okovm_test_insn forged_map[] = {
        LDDW(1, 0x1000), MOV64_X(2, 10), ALU64_K(BPF_ADD, 2, -8),
        ST(BPF_DW, 10, -8, 0), CALL(BPF_FUNC_map_lookup_elem),
        MOV64_K(0, 2), EXIT(),
    };
    struct okovm_ns *ns = new_ns();
    struct okovm_prog *prog;
    struct okovm_prog_stats st;
    struct okovm_error err;

    CHECK_EQ(okovm_test_load_raw(ns, rd, N_INSNS(rd), NULL, 0,
                                 OKOVM_LOAD_FORCE_SANDBOX, &prog, &err), 0);
    CHECK_EQ(okovm_prog_run(prog, pkt, sizeof pkt, 0), 9);
    okovm_prog_unref(prog);

    CHECK_EQ(okovm_test_load_raw(ns, rd_oob, N_INSNS(rd_oob), NULL, 0,
                                 OKOVM_LOAD_FORCE_SANDBOX, &prog, &err), 0);
    CHECK_EQ(okovm_prog_run(prog, pkt, sizeof pkt, 0), OKOVM_XDP_ABORTED);
    okovm_prog_get_stats(prog, &st);
    CHECK_EQ(st.faults, 1);
    CHECK_EQ(st.verdicts[0], 1);
    okovm_prog_unref(prog);

    CHECK_EQ(okovm_test_load_raw(ns, wild, N_INSNS(wild), NULL, 0,
                                 OKOVM_LOAD_FORCE_SANDBOX, &prog, &err), 0);
    CHECK_EQ(okovm_prog_run(prog, pkt, sizeof pkt, 0), OKOVM_XDP_ABORTED);
    okovm_prog_unref(prog);

    CHECK_EQ(okovm_test_load_raw(ns, loop, N_INSNS(loop), NULL, 0,
                                 OKOVM_LOAD_FORCE_SANDBOX, &prog, &err), 0);
    CHECK_EQ(okovm_prog_run(prog, pkt, sizeof pkt, 0), OKOVM_XDP_ABORTED);
    okovm_prog_get_stats(prog, &st);
    CHECK_EQ(st.faults, 1);
    okovm_prog_unref(prog);

    CHECK_EQ(okovm_test_load_raw(ns, forged_map, N_INSNS(forged_map), NULL,
                                 0, OKOVM_LOAD_FORCE_SANDBOX, &prog, &err),
             0);
    CHECK_EQ(okovm_prog_run(prog, pkt, sizeof pkt, 0), OKOVM_XDP_ABORTED);
    okovm_prog_unref(prog);
    okovm_ns_destroy(ns);
}

TEST(stats)
{
    struct okovm_test_insn p[] = {
        LDX(BPF_W, 0, 1, 12), EXIT(),
    };
    struct okovm_ns *ns = new_ns();
    struct okovm_prog *prog;
    struct okovm_prog_stats st;
    struct okovm_error err;
    uint32_t i;

    okovm_ns_set_timing(ns, 1);
    CHECK_EQ(okovm_test_load_raw(ns, p, N_INSNS(p), NULL, 0, 0, &prog,
                                 &err), 0);
    for (i = 0; i < 10; i++) {
        okovm_prog_run(prog, "", 0, i);
    }
    okovm_prog_get_stats(prog, &st);
    CHECK_EQ(st.runs, 10);
    CHECK_EQ(st.verdicts[0], 1);
    CHECK_EQ(st.verdicts[1], 1);
    CHECK_EQ(st.verdicts[2], 1);
    CHECK_EQ(st.verdicts[3], 1);
    CHECK_EQ(st.verdicts[OKOVM_XDP_REDIRECT], 1);
    CHECK_EQ(st.verdicts[OKOVM_N_VERDICTS - 1], 5);
    CHECK_EQ(st.timed_runs, 10);
    CHECK(st.time_ns > 0);
    okovm_prog_unref(prog);
    okovm_ns_destroy(ns);
}

/* okovm_prog_run_batch() runs every packet with its own bounds, counts the
 * batch once, and gives bpf_ktime_get_ns() the batch's time unless the
 * namespace has a clock of its own. */
TEST(batch)
{
    struct okovm_test_insn first_byte[] = {
        LDX(BPF_W, 2, 1, 0), LDX(BPF_W, 3, 1, 4), MOV64_X(4, 2),
        ALU64_K(BPF_ADD, 4, 1), JMP_X(BPF_JGT, 4, 3, 2),
        LDX(BPF_B, 0, 2, 0), EXIT(),
        MOV64_K(0, 99), EXIT(),
    };
    struct okovm_test_insn now[] = {
        CALL(BPF_FUNC_ktime_get_ns), EXIT(),
    };
    static const uint8_t a[] = { 3 }, b[] = { 1, 2 };
    struct okovm_pkt pkts[] = {
        { a, sizeof a }, { "", 0 }, { b, sizeof b },
    };
    struct okovm_ns *ns = new_ns();
    struct okovm_prog *prog;
    struct okovm_prog_stats st;
    struct okovm_error err;
    uint32_t v[3];

    okovm_ns_set_timing(ns, 1);
    CHECK_EQ(okovm_test_load_raw(ns, first_byte, N_INSNS(first_byte), NULL,
                                 0, 0, &prog, &err), 0);
    okovm_prog_run_batch(prog, pkts, 3, 7, 0, v);
    CHECK_EQ(v[0], 3);
    CHECK_EQ(v[1], 99);
    CHECK_EQ(v[2], 1);
    okovm_prog_run_batch(prog, pkts, 0, 7, 0, v);
    okovm_prog_get_stats(prog, &st);
    CHECK_EQ(st.runs, 3);
    CHECK_EQ(st.verdicts[OKOVM_XDP_DROP], 1);
    CHECK_EQ(st.verdicts[OKOVM_XDP_TX], 1);
    CHECK_EQ(st.verdicts[OKOVM_N_VERDICTS - 1], 1);
    CHECK_EQ(st.timed_runs, 3);
    okovm_prog_unref(prog);

    CHECK_EQ(okovm_test_load_raw(ns, now, N_INSNS(now), NULL, 0, 0, &prog,
                                 &err), 0);
    okovm_prog_run_batch(prog, pkts, 3, 7, UINT64_C(0x500000007), v);
    CHECK_EQ(v[0], 7);
    CHECK_EQ(v[1], 7);
    CHECK_EQ(v[2], 7);
    okovm_ns_set_fixed_clock(ns, 5);
    okovm_prog_run_batch(prog, pkts, 2, 7, UINT64_C(0x500000007), v);
    CHECK_EQ(v[0], 5);
    CHECK_EQ(v[1], 5);
    okovm_prog_unref(prog);
    okovm_ns_destroy(ns);
}

/* okovm_prog_run_batch_timed() gives the same verdicts and statistics as
 * okovm_prog_run_batch(), a time for each run whose sum is the batch's, and
 * takes batches longer than its slices. */
TEST(batch_timed)
{
    /* r0 = packet length; a packet longer than 1 byte then runs 2000 more
     * instructions (no loops outside the sandbox). */
    enum { N_SLOW = 2000 };
    static struct okovm_test_insn spin[6 + N_SLOW + 1] = {
        LDX(BPF_W, 2, 1, 0), LDX(BPF_W, 3, 1, 4), MOV64_X(0, 3),
        ALU64_X(BPF_SUB, 0, 2), JMP_K(BPF_JGT, 0, 1, 1), EXIT(),
    };
    static uint8_t data[2000];
    struct okovm_pkt pkts[100];
    uint32_t v[100], w[100];
    uint64_t ns[100];
    struct okovm_ns *vm_ns = new_ns();
    struct okovm_prog *prog;
    struct okovm_prog_stats st;
    struct okovm_error err;

    for (size_t i = 0; i < N_SLOW; i++) {
        spin[6 + i] = (struct okovm_test_insn) ALU64_K(BPF_ADD, 0, 1);
    }
    spin[6 + N_SLOW] = (struct okovm_test_insn) EXIT();
    for (size_t i = 0; i < 100; i++) {
        pkts[i].data = data;
        pkts[i].len = i % 2 ? 2000 : 1;
    }
    CHECK_EQ(okovm_test_load_raw(vm_ns, spin, N_INSNS(spin), NULL, 0, 0,
                                 &prog, &err), 0);
    okovm_prog_run_batch(prog, pkts, 100, 7, 0, w);
    memset(ns, 0xff, sizeof ns);
    okovm_prog_run_batch_timed(prog, pkts, 100, 7, 0, v, ns);
    for (size_t i = 0; i < 100; i++) {
        CHECK_EQ(v[i], w[i]);
        CHECK(ns[i] < UINT64_C(1000000000));
    }
    /* A run of 2000 more instructions takes longer, in both slices (in
     * most pairs: an interrupt may stretch any one run). */
    int longer = 0;
    for (size_t i = 0; i < 100; i += 2) {
        longer += ns[i + 1] > ns[i];
    }
    CHECK(longer >= 40);
    okovm_prog_get_stats(prog, &st);
    CHECK_EQ(st.runs, 200);
    okovm_prog_run_batch_timed(prog, pkts, 0, 7, 0, v, ns);
    okovm_prog_get_stats(prog, &st);
    CHECK_EQ(st.runs, 200);
    okovm_prog_unref(prog);
    okovm_ns_destroy(vm_ns);
}

TEST(sampled_timing_counts_the_first_run)
{
    struct okovm_test_insn p[] = {
        MOV64_K(0, 2), EXIT(),
    };
    struct okovm_ns *ns = new_ns();
    struct okovm_prog *a, *b;
    struct okovm_prog_stats st;
    struct okovm_error err;
    uint32_t i;

    /* The default period (64), and two programs run in turn on one thread:
     * each has its own first timed run, however few runs it had. */
    CHECK_EQ(okovm_test_load_raw(ns, p, N_INSNS(p), NULL, 0, 0, &a, &err),
             0);
    CHECK_EQ(okovm_test_load_raw(ns, p, N_INSNS(p), NULL, 0, 0, &b, &err),
             0);
    for (i = 0; i < 24; i++) {
        okovm_prog_run(a, "", 0, 0);
        okovm_prog_run(b, "", 0, 0);
        okovm_prog_run(b, "", 0, 0);
    }
    okovm_prog_get_stats(a, &st);
    CHECK_EQ(st.runs, 24);
    CHECK_EQ(st.timed_runs, 1);
    CHECK(st.time_ns > 0);
    okovm_prog_get_stats(b, &st);
    CHECK_EQ(st.runs, 48);
    CHECK_EQ(st.timed_runs, 1);
    CHECK(st.time_ns >= st.timed_ns);

    /* Timing off: nothing timed, nothing estimated. */
    okovm_ns_set_timing(ns, 0);
    okovm_prog_unref(a);
    CHECK_EQ(okovm_test_load_raw(ns, p, N_INSNS(p), NULL, 0, 0, &a, &err),
             0);
    okovm_prog_run(a, "", 0, 0);
    okovm_prog_get_stats(a, &st);
    CHECK_EQ(st.runs, 1);
    CHECK_EQ(st.timed_runs, 0);
    CHECK_EQ(st.time_ns, 0);
    okovm_prog_unref(a);
    okovm_prog_unref(b);
    okovm_ns_destroy(ns);
}

/* A program over the instruction limit is refused before anything else. */
TEST(oversized)
{
    uint32_t n = 1000001;
    struct okovm_test_insn *insns = calloc(n, sizeof *insns);
    struct okovm_ns *ns = new_ns();
    struct okovm_prog *prog = NULL;
    struct okovm_error *err = calloc(1, sizeof *err);
    uint32_t i;

    for (i = 0; i + 1 < n; i++) {
        insns[i] = MOV64_K(0, 2);
    }
    insns[n - 1] = EXIT();
    CHECK_EQ(okovm_test_load_raw(ns, insns, n, NULL, 0,
                                 OKOVM_LOAD_FORCE_SANDBOX, &prog, err), E2BIG);
    CHECK(strstr(err->msg, "too large") != NULL);
    CHECK(prog == NULL);
    free(err);
    free(insns);
    okovm_ns_destroy(ns);
}
