/*
 * test-regcache.c -- the interpreters' register slots (src/ops.h): random
 * straight-line programs with forward jumps give the same results with
 * and without them, in both interpreters (and in the JIT, which has no
 * slots but must agree).
 */

#include "asm.h"
#include "runner.h"

#define MAX_UNITS 96

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;

static uint32_t
rnd(uint32_t n)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (uint32_t) (rng_state >> 11) % n;
}

static const uint8_t alu_ops[] = {
    BPF_ADD, BPF_SUB, BPF_MUL, BPF_DIV, BPF_OR, BPF_AND, BPF_LSH, BPF_RSH,
    BPF_MOD, BPF_XOR, BPF_MOV, BPF_ARSH, BPF_NEG,
};
static const uint8_t jmp_ops[] = {
    BPF_JEQ, BPF_JGT, BPF_JGE, BPF_JSET, BPF_JNE, BPF_JSGT, BPF_JSGE,
    BPF_JLT, BPF_JLE, BPF_JSLT, BPF_JSLE,
};

/* Generates into 'insns' a random program; returns its length. */
static uint32_t
gen_program(struct okovm_test_insn *insns)
{
    uint32_t slot_of[MAX_UNITS + 1], n_units = 16 + rnd(MAX_UNITS - 40);
    uint32_t jump_unit[MAX_UNITS], u, n = 0, r;
    struct okovm_test_insn *jmp[MAX_UNITS];
    uint32_t n_jumps = 0;

    /* r0-r9 from the context field ingress_ifindex and constants. */
    insns[n++] = LDX(BPF_W, 9, 1, 12);
    for (r = 0; r < 9; r++) {
        insns[n++] = MOV64_K(r, (int32_t) (rnd(1u << 31) - (1u << 30)));
        insns[n++] = ALU64_X(BPF_XOR, r, 9);
    }
    for (u = 0; u < n_units; u++) {
        uint8_t d = rnd(10), s = rnd(10), kind = rnd(10);

        slot_of[u] = n;
        if (kind < 5) {
            uint8_t op = alu_ops[rnd(sizeof alu_ops)];
            uint8_t cls = rnd(2) ? BPF_ALU64 : BPF_ALU;
            bool x = rnd(2) && op != BPF_NEG;
            int32_t imm = (int32_t) rnd(1u << 16) - (1 << 15);

            if (op == BPF_LSH || op == BPF_RSH || op == BPF_ARSH) {
                imm = rnd(cls == BPF_ALU64 ? 64 : 32);
            } else if ((op == BPF_DIV || op == BPF_MOD) && !imm) {
                imm = 7;
            }
            insns[n++] = (op == BPF_NEG ? I(cls | op, d, 0, 0, 0)
                          : x ? I(cls | op | BPF_X, d, s, 0, 0)
                          : I(cls | op | BPF_K, d, 0, 0, imm));
        } else if (kind == 5) {
            static const int bits[] = { 16, 32, 64 };

            insns[n++] = END(rnd(2) ? BPF_TO_BE : BPF_TO_LE, d,
                             bits[rnd(3)]);
        } else if (kind == 6) {
            uint64_t v = ((uint64_t) rnd(1u << 31) << 33) ^ rnd(1u << 31);

            insns[n++] = I(BPF_LD | BPF_IMM | BPF_DW, d, 0, 0, (int32_t) v);
            insns[n++] = I(0, 0, 0, 0, (int32_t) (v >> 32));
        } else if (kind == 7) {
            /* A spill and reload through the stack. */
            int16_t off = -8 * (1 + rnd(4));

            insns[n++] = STX(BPF_DW, 10, s, off);
            insns[n++] = LDX(BPF_DW, d, 10, off);
        } else {
            uint8_t op = jmp_ops[rnd(sizeof jmp_ops)];
            uint8_t cls = rnd(2) ? BPF_JMP : BPF_JMP32;
            bool x = rnd(2);

            jump_unit[n_jumps] = u;
            jmp[n_jumps++] = &insns[n];
            insns[n++] = (x ? I(cls | op | BPF_X, d, s, 0, 0)
                          : I(cls | op | BPF_K, d, 0, 0,
                              (int32_t) rnd(64) - 32));
        }
    }
    slot_of[n_units] = n;
    /* r0 = r0 ^ r1 ^ ... ^ r9, folded to 32 bits. */
    for (r = 1; r < 10; r++) {
        insns[n++] = ALU64_X(BPF_XOR, 0, r);
    }
    insns[n++] = MOV64_X(1, 0);
    insns[n++] = ALU64_K(BPF_RSH, 1, 32);
    insns[n++] = ALU64_X(BPF_XOR, 0, 1);
    insns[n++] = EXIT();
    for (u = 0; u < n_jumps; u++) {
        uint32_t from = jump_unit[u];
        uint32_t to = from + 1 + rnd(n_units - from);
        uint32_t at = jmp[u] - insns;

        jmp[u]->off = (int16_t) (slot_of[to] - at - 1);
    }
    return n;
}

static uint32_t
run_one(const struct okovm_test_insn *insns, uint32_t n, uint32_t flags,
        bool slots, uint32_t in_port, bool *ok)
{
    struct okovm_ns *ns;
    struct okovm_prog *prog = NULL;
    struct okovm_error err;
    uint32_t v = 0;

    okovm_ns_create("rc", &ns);
    okovm_test_disable_register_slots(!slots);
    if (okovm_test_load_raw(ns, insns, n, NULL, 0, flags, &prog, &err)) {
        fprintf(stderr, "load: %s\n", err.msg);
        *ok = false;
    } else {
        v = okovm_prog_run(prog, "", 0, in_port);
    }
    okovm_test_disable_register_slots(0);
    okovm_prog_unref(prog);
    okovm_ns_destroy(ns);
    return v;
}

TEST(register_slots_differential)
{
    static struct okovm_test_insn insns[32 + 3 * MAX_UNITS + 16];
    int iter, mismatches = 0;

    for (iter = 0; iter < 400; iter++) {
        uint32_t n = gen_program(insns);
        uint32_t port = rnd(1u << 31);
        bool ok = true;
        uint32_t ref = run_one(insns, n, OKOVM_LOAD_NO_JIT, false, port,
                               &ok);
        uint32_t fast = run_one(insns, n, OKOVM_LOAD_NO_JIT, true, port,
                                &ok);
        uint32_t sb = run_one(insns, n, OKOVM_LOAD_FORCE_SANDBOX, true,
                              port, &ok);
        uint32_t jit = run_one(insns, n, 0, true, port, &ok);

        CHECK(ok);
        if (ref != fast || ref != sb || ref != jit) {
            if (mismatches++ < 3) {
                fprintf(stderr, "program %d: %#x (interp, no slots) %#x "
                        "(interp) %#x (sandbox) %#x (jit)\n", iter, ref,
                        fast, sb, jit);
            }
        }
    }
    CHECK_EQ(mismatches, 0);
}
