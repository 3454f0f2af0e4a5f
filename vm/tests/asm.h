/*
 * asm.h -- macros to hand-assemble BPF instructions for tests, and helpers
 * to run them.
 */

#ifndef OKOVM_ASM_H
#define OKOVM_ASM_H 1

#include <string.h>
#include <linux/bpf.h>

#include "okovm-private.h"
#include "okovm-test.h"

#define I(CODE, DST, SRC, OFF, IMM)                                     \
    ((struct okovm_test_insn) { (CODE), (uint8_t) ((DST) | ((SRC) << 4)), \
                                (OFF), (IMM) })
#define MOV64_K(D, IMM) I(BPF_ALU64 | BPF_MOV | BPF_K, D, 0, 0, IMM)
#define MOV64_X(D, S) I(BPF_ALU64 | BPF_MOV | BPF_X, D, S, 0, 0)
#define ALU64_K(OP, D, IMM) I(BPF_ALU64 | (OP) | BPF_K, D, 0, 0, IMM)
#define ALU64_X(OP, D, S) I(BPF_ALU64 | (OP) | BPF_X, D, S, 0, 0)
#define ALU32_K(OP, D, IMM) I(BPF_ALU | (OP) | BPF_K, D, 0, 0, IMM)
#define ALU32_X(OP, D, S) I(BPF_ALU | (OP) | BPF_X, D, S, 0, 0)
#define MOV32_K(D, IMM) ALU32_K(BPF_MOV, D, IMM)
#define MOV32_X(D, S) ALU32_X(BPF_MOV, D, S)
#define NEG64(D) I(BPF_ALU64 | BPF_NEG, D, 0, 0, 0)
#define NEG32(D) I(BPF_ALU | BPF_NEG, D, 0, 0, 0)
#define END(SRC, D, BITS) I(BPF_ALU | BPF_END | (SRC), D, 0, 0, BITS)
#define JMP_K(OP, D, IMM, OFF) I(BPF_JMP | (OP) | BPF_K, D, 0, OFF, IMM)
#define JMP_X(OP, D, S, OFF) I(BPF_JMP | (OP) | BPF_X, D, S, OFF, 0)
#define JMP32_K(OP, D, IMM, OFF) I(BPF_JMP32 | (OP) | BPF_K, D, 0, OFF, IMM)
#define JMP32_X(OP, D, S, OFF) I(BPF_JMP32 | (OP) | BPF_X, D, S, OFF, 0)
#define JA(OFF) I(BPF_JMP | BPF_JA, 0, 0, OFF, 0)
#define CALL(ID) I(BPF_JMP | BPF_CALL, 0, 0, 0, ID)
#define CALL_LOCAL(OFF) I(BPF_JMP | BPF_CALL, 0, 1, 0, OFF)
#define EXIT() I(BPF_JMP | BPF_EXIT, 0, 0, 0, 0)
#define LDDW(D, V)                                                      \
    I(BPF_LD | BPF_IMM | BPF_DW, D, 0, 0, (int32_t) (uint32_t) (V)),    \
    I(0, 0, 0, 0, (int32_t) ((uint64_t) (V) >> 32))
#define LD_MAP(D, IDX)                                                  \
    I(BPF_LD | BPF_IMM | BPF_DW, D, BPF_PSEUDO_MAP_FD, 0, IDX),         \
    I(0, 0, 0, 0, 0)
#define LD_MAP_VALUE(D, IDX, OFF)                                       \
    I(BPF_LD | BPF_IMM | BPF_DW, D, BPF_PSEUDO_MAP_VALUE, 0, IDX),      \
    I(0, 0, 0, 0, OFF)
#define LDX(SZ, D, S, OFF) I(BPF_LDX | BPF_MEM | (SZ), D, S, OFF, 0)
#define STX(SZ, D, S, OFF) I(BPF_STX | BPF_MEM | (SZ), D, S, OFF, 0)
#define ST(SZ, D, OFF, IMM) I(BPF_ST | BPF_MEM | (SZ), D, 0, OFF, IMM)
#define ATOMIC(SZ, OP, D, S, OFF) I(BPF_STX | BPF_ATOMIC | (SZ), D, S, OFF, OP)

#define N_INSNS(A) (sizeof (A) / sizeof (A)[0])

/* The ways a trusted program can run, for tests that compare them: native
 * code where the JIT supports the machine (the interpreter elsewhere), the
 * threaded interpreter, the checked interpreter. */
enum run_mode { RUN_JIT, RUN_INTERP, RUN_SANDBOX, N_RUN_MODES };

/* okovm_test_load_raw() flags for 'mode'. */
static inline uint32_t
run_mode_flags(enum run_mode mode)
{
    return (mode == RUN_JIT ? 0
            : mode == RUN_INTERP ? OKOVM_LOAD_NO_JIT
            : OKOVM_LOAD_FORCE_SANDBOX);
}

/* Name of 'mode' for messages. */
static inline const char *
run_mode_name(enum run_mode mode)
{
    return (mode == RUN_JIT ? "jit"
            : mode == RUN_INTERP ? "interp" : "sandbox");
}

/* Returns true if 'prog' runs as native code. */
static inline bool
prog_is_jit(const struct okovm_prog *prog)
{
    struct okovm_prog_info info;

    okovm_prog_get_info(prog, &info);
    return info.jit != 0;
}

/* Runs 'prog' on 'pkt' and returns the full 64-bit r0. */
static inline uint64_t
run64(struct okovm_prog *prog, const void *pkt, size_t len, uint32_t port)
{
    struct okovm_run run;

    memset(&run, 0, sizeof run);
    run.prog = prog;
    run.ns = prog->ns;
    run.ctx.data = (uintptr_t) pkt;
    run.ctx.data_end = (uintptr_t) pkt + len;
    run.ctx.data_meta = (uintptr_t) pkt;
    run.ctx.ingress_ifindex = port;
    return prog->exec(prog, &run);
}

#endif /* asm.h */
