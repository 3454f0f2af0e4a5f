/*
 * test-jit.c -- native code (src/jit.c) against the interpreters:
 * hand-written cases aimed at what code generation for x86-64 tends to
 * get wrong (implicit registers of div and shifts, sign and zero
 * extension, byte registers, atomics, calls), and random programs.  Every
 * program runs in every mode of asm.h and, where it can, in a reference
 * model written from the BPF instruction set specification, so that a
 * mismatch also tells which side is wrong.  Where the JIT does not exist
 * or does not support the machine, the "jit" mode runs the interpreter
 * and these tests compare the interpreters with the model.
 */

#include <errno.h>
#include <sys/wait.h>
#include <unistd.h>

#include "asm.h"
#include "runner.h"

/* What the two helpers with namespace state return, for one test. */
struct env {
    uint64_t now;               /* Fixed bpf_ktime_get_ns() (0: not set). */
    uint64_t seed;              /* Prandom seed before each run (0: none). */
    const uint32_t *rand;       /* bpf_get_prandom_u32() after 'seed'. */
    uint32_t n_rand;
};

/* The model's r1-r5 after a helper call (the BPF calling convention
 * leaves them undefined, so no test may read them). */
#define POISON 0x5ca1ab1e0ddba11ull

#define N_FRAMES 8
#define FRAME_SIZE 512

/* Programs that ran as native code in mode RUN_JIT so far. */
static uint64_t n_native;

/* Failing hand-written programs dumped so far: only the first few are, to
 * keep a broken JIT from burying the output. */
static int n_dumps;
#define MAX_DUMPS 4

/* The specification. */

/* Result of ALU operation 'op' of class 'cls' (BPF_ALU or BPF_ALU64) on
 * 'd' and 's' (an immediate already sign-extended to 64 bits). */
static uint64_t
spec_alu(uint8_t cls, uint8_t op, uint64_t d, uint64_t s)
{
    uint32_t a = d, b = s;

    if (cls == BPF_ALU64) {
        switch (op) {
        case BPF_ADD: return d + s;
        case BPF_SUB: return d - s;
        case BPF_MUL: return d * s;
        case BPF_DIV: return s ? d / s : 0;
        case BPF_OR: return d | s;
        case BPF_AND: return d & s;
        case BPF_LSH: return d << (s & 63);
        case BPF_RSH: return d >> (s & 63);
        case BPF_NEG: return -d;
        case BPF_MOD: return s ? d % s : d;
        case BPF_XOR: return d ^ s;
        case BPF_MOV: return s;
        case BPF_ARSH: return (uint64_t) ((int64_t) d >> (s & 63));
        }
    } else {
        switch (op) {
        case BPF_ADD: return (uint32_t) (a + b);
        case BPF_SUB: return (uint32_t) (a - b);
        case BPF_MUL: return (uint32_t) (a * b);
        case BPF_DIV: return b ? a / b : 0;
        case BPF_OR: return a | b;
        case BPF_AND: return a & b;
        case BPF_LSH: return (uint32_t) (a << (b & 31));
        case BPF_RSH: return a >> (b & 31);
        case BPF_NEG: return (uint32_t) -a;
        case BPF_MOD: return b ? a % b : a;
        case BPF_XOR: return a ^ b;
        case BPF_MOV: return b;
        case BPF_ARSH: return (uint32_t) ((int32_t) a >> (b & 31));
        }
    }
    abort();
}

/* Result of byte swap 'code' (BPF_TO_LE or BPF_TO_BE in the source bit)
 * to 'bits' on 'd'. */
static uint64_t
spec_end(uint8_t code, int32_t bits, uint64_t d)
{
    bool swap = ((BPF_SRC(code) == BPF_TO_BE)
                 == (__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__));

    switch (bits) {
    case 16: return swap ? __builtin_bswap16(d) : (uint16_t) d;
    case 32: return swap ? __builtin_bswap32(d) : (uint32_t) d;
    case 64: return swap ? __builtin_bswap64(d) : d;
    }
    abort();
}

/* Whether conditional jump 'op' of class 'cls' (BPF_JMP or BPF_JMP32) is
 * taken for 'd' and 's' (an immediate already sign-extended). */
static bool
spec_jmp(uint8_t cls, uint8_t op, uint64_t d, uint64_t s)
{
    /* JMP32 compares the low halves: zero-extended for the unsigned
     * comparisons, sign-extended for the signed ones. */
    bool w32 = cls == BPF_JMP32;
    uint64_t a = w32 ? (uint32_t) d : d, b = w32 ? (uint32_t) s : s;
    int64_t sa = w32 ? (int32_t) d : (int64_t) d;
    int64_t sb = w32 ? (int32_t) s : (int64_t) s;

    switch (op) {
    case BPF_JEQ: return a == b;
    case BPF_JGT: return a > b;
    case BPF_JGE: return a >= b;
    case BPF_JSET: return (a & b) != 0;
    case BPF_JNE: return a != b;
    case BPF_JSGT: return sa > sb;
    case BPF_JSGE: return sa >= sb;
    case BPF_JLT: return a < b;
    case BPF_JLE: return a <= b;
    case BPF_JSLT: return sa < sb;
    case BPF_JSLE: return sa <= sb;
    }
    abort();
}

/* Atomic operation 'imm' of 'size' bytes: returns the new memory value
 * for old value 'old', operand 's' and r0 '*r0'; stores the value the
 * operation fetches into '*fetched' (into '*r0' for cmpxchg). */
static uint64_t
spec_atomic(int32_t imm, int size, uint64_t old, uint64_t s, uint64_t *r0,
            uint64_t *fetched)
{
    uint64_t mask = size == 4 ? UINT32_MAX : UINT64_MAX;
    uint64_t new;

    old &= mask;
    switch (imm & ~BPF_FETCH) {
    case BPF_ADD: new = old + s; break;
    case BPF_OR: new = old | s; break;
    case BPF_AND: new = old & s; break;
    case BPF_XOR: new = old ^ s; break;
    case BPF_XCHG & ~BPF_FETCH: new = s; break;
    case BPF_CMPXCHG & ~BPF_FETCH:
        new = old == (*r0 & mask) ? s : old;
        *r0 = old;
        return new & mask;
    default: abort();
    }
    if (imm & BPF_FETCH) {
        *fetched = old;
    }
    return new & mask;
}

/* The reference model. */

static void *
model_mem(uint8_t *lo, uint8_t *hi, uint64_t addr, int size)
{
    return (addr >= (uintptr_t) lo && addr + size <= (uintptr_t) hi
            ? (void *) (uintptr_t) addr : NULL);
}

static uint64_t
model_load(const void *p, int size)
{
    uint64_t v = 0;

    /* Little-endian hosts only, like the JIT. */
    memcpy(&v, p, size);
    return v;
}

static int
size_of(uint8_t code)
{
    switch (BPF_SIZE(code)) {
    case BPF_B: return 1;
    case BPF_H: return 2;
    case BPF_W: return 4;
    default: return 8;
    }
}

/* Runs 'insns' in the model with 'env': returns true with r0 in '*r0', or
 * false (after saying why) if the program does something the model does
 * not (context or map access, a wild address, a loop). */
static bool
model_run(const struct okovm_test_insn *insns, uint32_t n,
          const struct env *env, uint64_t *r0)
{
    uint64_t stack[N_FRAMES * FRAME_SIZE / 8];
    uint8_t *lo = (uint8_t *) stack, *hi = lo + sizeof stack;
    struct {
        uint32_t ret;
        uint64_t saved[5];
    } frames[N_FRAMES];
    uint32_t pc, depth = 0, n_rand = 0, steps = 0;
    uint64_t r[11];

    memset(stack, 0, sizeof stack);
    memset(r, 0, sizeof r);
    r[10] = (uintptr_t) hi;
    for (pc = 0; pc < n && steps++ < 100000; pc++) {
        const struct okovm_test_insn *in = &insns[pc];
        uint8_t code = in->code, cls = BPF_CLASS(code), op = BPF_OP(code);
        int d = in->regs & 0xf, sr = in->regs >> 4, size = size_of(code);
        uint64_t k = (uint64_t) (int64_t) in->imm;
        uint64_t s = BPF_SRC(code) == BPF_X ? r[sr] : k;
        uint64_t fetched;
        void *p;

        switch (cls) {
        case BPF_ALU:
        case BPF_ALU64:
            r[d] = (op == BPF_END ? spec_end(code, in->imm, r[d])
                    : spec_alu(cls, op, r[d], s));
            break;

        case BPF_JMP:
        case BPF_JMP32:
            if (op == BPF_JA) {
                pc += in->off;
            } else if (op == BPF_EXIT) {
                if (!depth) {
                    *r0 = r[0];
                    return true;
                }
                depth--;
                memcpy(&r[6], frames[depth].saved, sizeof frames->saved);
                pc = frames[depth].ret;
            } else if (op == BPF_CALL && sr == BPF_PSEUDO_CALL) {
                if (depth + 1 >= N_FRAMES) {
                    fprintf(stderr, "model: call depth exceeded\n");
                    return false;
                }
                frames[depth].ret = pc;
                memcpy(frames[depth].saved, &r[6], sizeof frames->saved);
                depth++;
                r[10] -= FRAME_SIZE;
                pc += in->imm;
            } else if (op == BPF_CALL) {
                if (in->imm == BPF_FUNC_ktime_get_ns && env && env->now) {
                    r[0] = env->now;
                } else if (in->imm == BPF_FUNC_get_prandom_u32 && env
                           && n_rand < env->n_rand) {
                    r[0] = env->rand[n_rand++];
                } else {
                    fprintf(stderr, "model: helper %d\n", in->imm);
                    return false;
                }
                for (d = 1; d <= 5; d++) {
                    r[d] = POISON;
                }
            } else if (spec_jmp(cls, op, r[d], s)) {
                pc += in->off;
            }
            break;

        case BPF_LD:
            if (code != (BPF_LD | BPF_IMM | BPF_DW) || sr || pc + 1 >= n) {
                fprintf(stderr, "model: insn %u: ld %#x\n", pc, code);
                return false;
            }
            r[d] = ((uint32_t) in->imm
                    | (uint64_t) (uint32_t) in[1].imm << 32);
            pc++;
            break;

        case BPF_LDX:
            p = model_mem(lo, hi, r[sr] + in->off, size);
            if (!p) {
                goto bad_address;
            }
            r[d] = model_load(p, size);
            break;

        case BPF_ST:
        case BPF_STX:
            p = model_mem(lo, hi, r[d] + in->off, size);
            if (!p) {
                goto bad_address;
            }
            if (BPF_MODE(code) == BPF_ATOMIC) {
                uint64_t new = spec_atomic(in->imm, size,
                                           model_load(p, size), r[sr],
                                           &r[0], &fetched);

                memcpy(p, &new, size);
                if (in->imm & BPF_FETCH && in->imm != BPF_CMPXCHG) {
                    r[sr] = fetched;
                }
            } else {
                memcpy(p, cls == BPF_ST ? &k : &r[sr], size);
            }
            break;

        default:
            fprintf(stderr, "model: insn %u: opcode %#x\n", pc, code);
            return false;
        }
    }
    fprintf(stderr, "model: ran off the end or looped\n");
    return false;

bad_address:
    fprintf(stderr, "model: insn %u: address outside the stack\n", pc);
    return false;
}

/* Dumps. */

/* Names of ALU and jump operations 'op' (BPF_ADD...). */
static const char *
alu_name(uint8_t op)
{
    static const char *const names[16] = {
        "add", "sub", "mul", "div", "or", "and", "lsh", "rsh", "neg",
        "mod", "xor", "mov", "arsh", "end", "?", "?",
    };

    return names[op >> 4];
}

static const char *
jmp_name(uint8_t op)
{
    static const char *const names[16] = {
        "ja", "jeq", "jgt", "jge", "jset", "jne", "jsgt", "jsge", "call",
        "exit", "jlt", "jle", "jslt", "jsle", "?", "?",
    };

    return names[op >> 4];
}

/* Writes a mnemonic for 'in' into 'buf'. */
static void
insn_name(const struct okovm_test_insn *in, char *buf, size_t size)
{
    static const char *const sizes[4] = { "w", "h", "b", "dw" };
    uint8_t code = in->code, cls = BPF_CLASS(code), op = BPF_OP(code);
    const char *sz = sizes[BPF_SIZE(code) >> 3];
    const char *kx = BPF_SRC(code) == BPF_X ? "x" : "k";

    switch (cls) {
    case BPF_ALU:
    case BPF_ALU64:
        if (op == BPF_END) {
            snprintf(buf, size, "%s%d", BPF_SRC(code) == BPF_TO_BE
                     ? "be" : "le", in->imm);
        } else {
            snprintf(buf, size, "%s %s %s", cls == BPF_ALU ? "alu32"
                     : "alu64", alu_name(op), kx);
        }
        break;
    case BPF_JMP:
    case BPF_JMP32:
        if (op == BPF_CALL) {
            snprintf(buf, size, "call%s", in->regs >> 4 ? " local" : "");
        } else if (op == BPF_JA || op == BPF_EXIT) {
            snprintf(buf, size, "%s", jmp_name(op));
        } else {
            snprintf(buf, size, "%s %s %s", cls == BPF_JMP ? "jmp"
                     : "jmp32", jmp_name(op), kx);
        }
        break;
    case BPF_LD:
        snprintf(buf, size, "lddw");
        break;
    case BPF_LDX:
        snprintf(buf, size, "ldx %s", sz);
        break;
    case BPF_ST:
        snprintf(buf, size, "st %s", sz);
        break;
    default:
        if (BPF_MODE(code) != BPF_ATOMIC) {
            snprintf(buf, size, "stx %s", sz);
        } else if (in->imm == BPF_XCHG || in->imm == BPF_CMPXCHG) {
            snprintf(buf, size, "%s %s", in->imm == BPF_XCHG ? "xchg"
                     : "cmpxchg", sz);
        } else {
            snprintf(buf, size, "atomic %s %s%s", sz,
                     alu_name(in->imm & ~BPF_FETCH),
                     in->imm & BPF_FETCH ? "|fetch" : "");
        }
        break;
    }
}

/* Prints 'insns' to stderr, one C initializer per instruction (to paste
 * into a test) with a mnemonic. */
static void
dump_prog(const struct okovm_test_insn *insns, uint32_t n)
{
    uint32_t i;

    for (i = 0; i < n; i++) {
        const struct okovm_test_insn *in = &insns[i];
        char name[40];
        char init[64];

        insn_name(in, name, sizeof name);
        snprintf(init, sizeof init, "I(%#04x, %d, %d, %d, %d),", in->code,
                 in->regs & 0xf, in->regs >> 4, in->off, in->imm);
        fprintf(stderr, "    %-32s /* %3u: %s", init, i, name);
        if (in->code == (BPF_LD | BPF_IMM | BPF_DW) && i + 1 < n) {
            fprintf(stderr, " r%d = %#"PRIx64" */\n", in->regs & 0xf,
                    (uint32_t) in->imm
                    | (uint64_t) (uint32_t) in[1].imm << 32);
            i++;
            fprintf(stderr, "    I(0, 0, 0, 0, %d),\n", in[1].imm);
        } else {
            fprintf(stderr, " */\n");
        }
    }
}

/* Running programs. */

/* Loads 'insns' in every mode and runs each once with 'env'; stores r0
 * in 'got[mode]' and whether it loaded in 'ok[mode]'. */
static void
run_modes(const char *what, const struct okovm_test_insn *insns, uint32_t n,
          const struct env *env, uint64_t got[N_RUN_MODES],
          bool ok[N_RUN_MODES])
{
    static uint8_t pkt[64];
    struct okovm_ns *ns;
    int m;

    if (okovm_ns_create("jit", &ns)) {
        abort();
    }
    if (env && env->now) {
        okovm_ns_set_fixed_clock(ns, env->now);
    }
    for (m = 0; m < N_RUN_MODES; m++) {
        struct okovm_prog *prog;
        struct okovm_error err;

        got[m] = 0;
        ok[m] = !okovm_test_load_raw(ns, insns, n, NULL, 0,
                                     run_mode_flags(m), &prog, &err);
        if (!ok[m]) {
            fprintf(stderr, "%s (%s): load failed: %s\n", what,
                    run_mode_name(m), err.msg);
            continue;
        }
        if (m == RUN_JIT) {
            n_native += prog_is_jit(prog);
        } else if (prog_is_jit(prog)) {
            fprintf(stderr, "%s (%s): runs as native code\n", what,
                    run_mode_name(m));
            ok[m] = false;
        }
        if (env && env->seed) {
            okovm_ns_seed_prandom(ns, env->seed);
        }
        got[m] = run64(prog, pkt, sizeof pkt, 7);
        okovm_prog_unref(prog);
    }
    okovm_ns_destroy(ns);
}

/* Runs 'insns' in every mode and checks that each returns 'expect';
 * returns true if all do. */
static bool
check_prog(const char *what, const struct okovm_test_insn *insns,
           uint32_t n, const struct env *env, uint64_t expect)
{
    uint64_t got[N_RUN_MODES];
    bool ok[N_RUN_MODES], good = true;
    int m;

    run_modes(what, insns, n, env, got, ok);
    for (m = 0; m < N_RUN_MODES; m++) {
        if (ok[m] && got[m] != expect) {
            fprintf(stderr, "%s (%s): got %#"PRIx64", expected %#"PRIx64
                    "\n", what, run_mode_name(m), got[m], expect);
        }
        good = good && ok[m] && got[m] == expect;
    }
    if (!good) {
        test_failures++;
        if (n_dumps++ < MAX_DUMPS) {
            dump_prog(insns, n);
        }
    }
    return good;
}

/* Programs around a test body: a prologue that sets r0-r9, the body, an
 * epilogue. */

#define MAX_PROG 1024

struct prog {
    struct okovm_test_insn insns[MAX_PROG];
    uint32_t n;
};

static void
emit(struct prog *p, struct okovm_test_insn in)
{
    if (p->n >= MAX_PROG) {
        abort();
    }
    p->insns[p->n++] = in;
}

static void
emit_lddw(struct prog *p, int d, uint64_t v)
{
    emit(p, I(BPF_LD | BPF_IMM | BPF_DW, d, 0, 0, (int32_t) (uint32_t) v));
    emit(p, I(0, 0, 0, 0, (int32_t) (uint32_t) (v >> 32)));
}

/* r0-r9 before a test body: distinct, with both halves nonzero. */
static const uint64_t init_vals[10] = {
    0x8000000000000f00ull, 0xa1a2a3a4f1f2f3f4ull, 0xb1b2b3b4c1c2c3c4ull,
    0xfedcba9876543210ull, 0x0123456789abcdefull, 0x5555aaaa5555aaaaull,
    0xc3c3c3c33c3c3c3cull, 0x7fffffff80000001ull, 0x0f0f0f0ff0f0f0f0ull,
    0x9999999966666666ull,
};

/* Appends 'r0 = rotl(r0, 13) ^ r', with 't' as a temporary. */
static void
emit_mix(struct prog *p, int r, int t)
{
    emit(p, MOV64_X(t, 0));
    emit(p, ALU64_K(BPF_LSH, 0, 13));
    emit(p, ALU64_K(BPF_RSH, t, 51));
    emit(p, ALU64_X(BPF_OR, 0, t));
    emit(p, ALU64_X(BPF_XOR, 0, r));
}

/* Appends an epilogue that folds r0-r9 and the 8-byte stack slots at fp -
 * 8 * 'slots[i]' into r0 and exits.  Each step is a bijection of r0, so a
 * wrong bit anywhere shows in the result. */
static void
emit_fold(struct prog *p, const int *slots, int n_slots)
{
    int r, i;

    emit(p, ALU64_K(BPF_MUL, 0, (int32_t) 0x9e3779b1));
    emit(p, ALU64_X(BPF_XOR, 0, 1));
    for (r = 2; r < 10; r++) {
        emit_mix(p, r, 1);
    }
    for (i = 0; i < n_slots; i++) {
        emit(p, LDX(BPF_DW, 2, 10, -8 * slots[i]));
        emit_mix(p, 2, 1);
    }
    emit(p, EXIT());
}

/* A test body: 'n' instructions in 'insns' that run after the prologue,
 * then 'n_tail' instructions 'tail' placed after the epilogue (for
 * bpf-to-bpf callees).  A bpf-to-bpf call in the body has as 'imm' the
 * index of its target in 'tail'; calls in the tail are ordinary. */
struct body {
    const struct okovm_test_insn *insns;
    uint32_t n;
    const struct okovm_test_insn *tail;
    uint32_t n_tail;
    const struct env *env;
};

/* Builds in 'p' the prologue, body 'b', the epilogue (r0 = 'reg' and
 * exit if 'reg' >= 0, else a fold of all registers) and the tail. */
static void
build(struct prog *p, const struct body *b, int reg)
{
    uint32_t i, start, tail;
    int r;

    p->n = 0;
    for (r = 0; r < 10; r++) {
        emit_lddw(p, r, init_vals[r]);
    }
    start = p->n;
    for (i = 0; i < b->n; i++) {
        emit(p, b->insns[i]);
    }
    if (reg >= 0) {
        emit(p, MOV64_X(0, reg));
        emit(p, EXIT());
    } else {
        emit_fold(p, NULL, 0);
    }
    tail = p->n;
    for (i = 0; i < b->n_tail; i++) {
        emit(p, b->tail[i]);
    }
    for (i = start; i < start + b->n; i++) {
        struct okovm_test_insn *in = &p->insns[i];

        if (in->code == (BPF_JMP | BPF_CALL)
            && in->regs >> 4 == BPF_PSEUDO_CALL) {
            in->imm = tail + in->imm - (i + 1);
        }
    }
}

/* Checks that after body 'b' register 'reg' holds 'expect' in every mode
 * and in the model, and that all registers hold in every mode what they
 * hold in the model. */
static void
check_body(const char *what, const struct body *b, int reg, uint64_t expect)
{
    static struct prog p;
    char name[200];
    uint64_t model;

    build(&p, b, reg);
    snprintf(name, sizeof name, "%s: r%d", what, reg);
    if (check_prog(name, p.insns, p.n, b->env, expect)
        && model_run(p.insns, p.n, b->env, &model) && model != expect) {
        /* The implementation and the test agree and the model does not:
         * the model is wrong. */
        fprintf(stderr, "%s: model gives %#"PRIx64"\n", name, model);
        test_failures++;
    }

    build(&p, b, -1);
    snprintf(name, sizeof name, "%s: all registers", what);
    if (!model_run(p.insns, p.n, b->env, &model)) {
        fprintf(stderr, "%s: the model cannot run it\n", name);
        test_failures++;
        if (n_dumps++ < MAX_DUMPS) {
            dump_prog(p.insns, p.n);
        }
        return;
    }
    check_prog(name, p.insns, p.n, b->env, model);
}

/* Checks one register after a body given as instructions. */
#define EXPECT_REG(WHAT, REG, EXPECT, ...)                              \
    do {                                                                \
        struct okovm_test_insn b_[] = { __VA_ARGS__ };                  \
        struct body body_ = { b_, N_INSNS(b_), NULL, 0, NULL };         \
        check_body(WHAT, &body_, REG, EXPECT);                          \
    } while (0)

/* A body under construction. */
struct bbuf {
    struct okovm_test_insn insns[256];
    uint32_t n;
};

static void
add(struct bbuf *bb, struct okovm_test_insn in)
{
    if (bb->n >= N_INSNS(bb->insns)) {
        abort();
    }
    bb->insns[bb->n++] = in;
}

static void
add_lddw(struct bbuf *bb, int d, uint64_t v)
{
    add(bb, I(BPF_LD | BPF_IMM | BPF_DW, d, 0, 0, (int32_t) (uint32_t) v));
    add(bb, I(0, 0, 0, 0, (int32_t) (uint32_t) (v >> 32)));
}

static void
check_bbuf(const char *what, const struct bbuf *bb, int reg,
           uint64_t expect)
{
    struct body b = { bb->insns, bb->n, NULL, 0, NULL };

    check_body(what, &b, reg, expect);
}

/* Hand-written cases. */

/* x86 div takes its dividend in rdx:rax and leaves the quotient in rax and
 * the remainder in rdx, which BPF's r0 and r3 usually live in; division
 * by zero must not trap (BPF: quotient 0, remainder the dividend). */
TEST(jit_divmod)
{
    static const int dsts[] = { 0, 3, 4, 6 };
    static const int srcs[] = { 0, 3, 4, 2 };
    static const uint64_t divisors[] = {
        0, 7, 0x100000000ull, UINT64_MAX, 0xffffffff00000003ull,
    };
    static const uint64_t dividends[] = { 0xfedcba9876543210ull, 5 };
    static const int32_t imms[] = { 7, -1, -7, INT32_MIN, 1 };
    static const uint8_t clss[] = { BPF_ALU64, BPF_ALU };
    static const uint8_t ops[] = { BPF_DIV, BPF_MOD };
    size_t c, o, di, si, vi, wi;
    char what[160];

    for (c = 0; c < 2; c++) {
        for (o = 0; o < 2; o++) {
            int w = clss[c] == BPF_ALU64 ? 64 : 32;

            for (di = 0; di < N_INSNS(dsts); di++) {
                int d = dsts[di];

                for (si = 0; si < N_INSNS(srcs); si++) {
                    int s = srcs[si];

                    for (vi = 0; vi < N_INSNS(divisors); vi++) {
                        for (wi = 0; wi < N_INSNS(dividends); wi++) {
                            uint64_t dv = d == s ? divisors[vi]
                                                 : dividends[wi];
                            struct bbuf bb = { .n = 0 };

                            if (d == s && wi) {
                                break;
                            }
                            add_lddw(&bb, s, divisors[vi]);
                            add_lddw(&bb, d, dv);
                            add(&bb, I(clss[c] | ops[o] | BPF_X, d, s, 0,
                                       0));
                            snprintf(what, sizeof what, "%s%d r%d "
                                     "(%#"PRIx64") by r%d (%#"PRIx64")",
                                     alu_name(ops[o]), w, d, dv, s,
                                     divisors[vi]);
                            check_bbuf(what, &bb, d,
                                       spec_alu(clss[c], ops[o], dv,
                                                divisors[vi]));
                        }
                    }
                }
                for (vi = 0; vi < N_INSNS(imms); vi++) {
                    for (wi = 0; wi < N_INSNS(dividends); wi++) {
                        struct bbuf bb = { .n = 0 };

                        add_lddw(&bb, d, dividends[wi]);
                        add(&bb, I(clss[c] | ops[o] | BPF_K, d, 0, 0,
                                   imms[vi]));
                        snprintf(what, sizeof what, "%s%d r%d (%#"PRIx64
                                 ") by imm %d", alu_name(ops[o]), w, d,
                                 dividends[wi], imms[vi]);
                        check_bbuf(what, &bb, d,
                                   spec_alu(clss[c], ops[o], dividends[wi],
                                            (int64_t) imms[vi]));
                    }
                }
            }
        }
    }

    /* The same by hand, against the specification's own words. */
    EXPECT_REG("div64 r3 by zero r0", 3, 0, MOV64_K(0, 0),
               ALU64_X(BPF_DIV, 3, 0));
    EXPECT_REG("mod64 r0 by zero r3 keeps r0", 0, init_vals[0],
               MOV64_K(3, 0), ALU64_X(BPF_MOD, 0, 3));
    EXPECT_REG("mod32 r3 by zero r0 zero-extends r3", 3, 0x76543210,
               LDDW(0, 0x100000000ull), ALU32_X(BPF_MOD, 3, 0));
    EXPECT_REG("div32 r0 by zero r0", 0, 0, MOV64_K(0, 0),
               ALU32_X(BPF_DIV, 0, 0));
    EXPECT_REG("mod32 r4 by r4 upper half only", 4, 0,
               LDDW(4, 0x500000000ull), ALU32_X(BPF_MOD, 4, 4));
    EXPECT_REG("div64 by imm -1 is unsigned", 3, 0, ALU64_K(BPF_DIV, 3,
                                                            -1));
    EXPECT_REG("mod64 by imm -1 is unsigned", 3, init_vals[3],
               ALU64_K(BPF_MOD, 3, -1));
    EXPECT_REG("div32 by imm -1 is unsigned", 3, 0, ALU32_K(BPF_DIV, 3,
                                                            -1));
    EXPECT_REG("mod32 by imm -2", 0, 0xf00, ALU32_K(BPF_MOD, 0, -2));
}

/* x86 shifts by a register take the count in cl (BPF's r4 usually lives
 * in rcx); BPF masks counts to the width. */
TEST(jit_shifts)
{
    static const int pairs[][2] = {
        { 4, 1 }, { 1, 4 }, { 4, 4 }, { 0, 4 }, { 4, 0 }, { 3, 4 },
        { 9, 2 }, { 2, 9 }, { 0, 3 }, { 7, 7 },
    };
    static const uint64_t counts[] = {
        0, 1, 7, 31, 32, 33, 63, 64, 65, 0x100000021ull, UINT64_MAX,
    };
    static const uint8_t ops[] = { BPF_LSH, BPF_RSH, BPF_ARSH };
    static const uint8_t clss[] = { BPF_ALU64, BPF_ALU };
    const uint64_t v = 0x8765432180fedcbaull;
    size_t c, o, pi, ci;
    char what[160];

    for (c = 0; c < 2; c++) {
        int w = clss[c] == BPF_ALU64 ? 64 : 32;

        for (o = 0; o < 3; o++) {
            for (pi = 0; pi < N_INSNS(pairs); pi++) {
                int d = pairs[pi][0], s = pairs[pi][1];

                for (ci = 0; ci < N_INSNS(counts); ci++) {
                    uint64_t dv = d == s ? counts[ci] : v;
                    struct bbuf bb = { .n = 0 };

                    add_lddw(&bb, d, dv);
                    add_lddw(&bb, s, counts[ci]);
                    add(&bb, I(clss[c] | ops[o] | BPF_X, d, s, 0, 0));
                    snprintf(what, sizeof what, "%s%d r%d (%#"PRIx64") by "
                             "r%d (%#"PRIx64")", alu_name(ops[o]), w, d, dv,
                             s, counts[ci]);
                    check_bbuf(what, &bb, d,
                               spec_alu(clss[c], ops[o], dv, counts[ci]));
                }
            }
            for (pi = 0; pi < 3; pi++) {
                static const int dsts[] = { 4, 0, 9 };
                static const int32_t imms[] = { 0, 1, 13, 31, 32, 63 };
                int d = dsts[pi];

                for (ci = 0; ci < N_INSNS(imms) && imms[ci] < w; ci++) {
                    struct bbuf bb = { .n = 0 };

                    add_lddw(&bb, d, v);
                    add(&bb, I(clss[c] | ops[o] | BPF_K, d, 0, 0,
                               imms[ci]));
                    snprintf(what, sizeof what, "%s%d r%d by imm %d",
                             alu_name(ops[o]), w, d, imms[ci]);
                    check_bbuf(what, &bb, d,
                               spec_alu(clss[c], ops[o], v, imms[ci]));
                }
            }
        }
    }
    EXPECT_REG("lsh64 r4 by r4 (65)", 4, 65ull << 1, MOV64_K(4, 65),
               ALU64_X(BPF_LSH, 4, 4));
    EXPECT_REG("arsh32 by 33 is by 1, zero-extended", 1, 0xc0000000ull,
               LDDW(1, 0x1234567880000000ull), MOV64_K(4, 33),
               ALU32_X(BPF_ARSH, 1, 4));
    EXPECT_REG("rsh64 by 64 is by 0", 4, init_vals[4], MOV64_K(1, 64),
               ALU64_X(BPF_RSH, 4, 1));
}

/* Every 32-bit operation zero-extends its result into the upper half,
 * including mov of a register to itself. */
TEST(jit_alu32_zero_extension)
{
    static const uint8_t ops[] = {
        BPF_ADD, BPF_SUB, BPF_MUL, BPF_DIV, BPF_OR, BPF_AND, BPF_LSH,
        BPF_RSH, BPF_NEG, BPF_MOD, BPF_XOR, BPF_MOV, BPF_ARSH,
    };
    static const int pairs[][2] = {
        { 1, 2 }, { 0, 3 }, { 4, 4 }, { 7, 7 }, { 9, 0 }, { 3, 4 },
    };
    static const uint64_t dvals[] = {
        0xdeadbeef87654321ull, 0x00000001ffffffffull,
    };
    const uint64_t sv = 0xfedcba9800000003ull;
    size_t o, pi, vi;
    char what[160];
    int r;

    for (o = 0; o < N_INSNS(ops); o++) {
        uint8_t op = ops[o];

        for (pi = 0; pi < N_INSNS(pairs); pi++) {
            int d = pairs[pi][0], s = pairs[pi][1];

            for (vi = 0; vi < N_INSNS(dvals); vi++) {
                uint64_t dv = d == s ? sv : dvals[vi];
                struct bbuf bb = { .n = 0 };

                if (op == BPF_NEG) {
                    add_lddw(&bb, d, dvals[vi]);
                    add(&bb, NEG32(d));
                    snprintf(what, sizeof what, "neg32 r%d (%#"PRIx64")",
                             d, dvals[vi]);
                    check_bbuf(what, &bb, d,
                               spec_alu(BPF_ALU, op, dvals[vi], 0));
                    continue;
                }
                add_lddw(&bb, d, dvals[vi]);
                add_lddw(&bb, s, sv);
                add(&bb, ALU32_X(op, d, s));
                snprintf(what, sizeof what, "%s32 r%d (%#"PRIx64"), r%d "
                         "(%#"PRIx64")", alu_name(op), d, dv, s, sv);
                check_bbuf(what, &bb, d, spec_alu(BPF_ALU, op, dv, sv));

                bb.n = 0;
                add_lddw(&bb, d, dvals[vi]);
                add(&bb, ALU32_K(op, d, vi ? 3 : -3));
                if (op == BPF_LSH || op == BPF_RSH || op == BPF_ARSH) {
                    bb.insns[bb.n - 1].imm = 3;
                }
                snprintf(what, sizeof what, "%s32 r%d (%#"PRIx64"), imm %d",
                         alu_name(op), d, dvals[vi],
                         bb.insns[bb.n - 1].imm);
                check_bbuf(what, &bb, d,
                           spec_alu(BPF_ALU, op, dvals[vi],
                                    (int64_t) bb.insns[bb.n - 1].imm));
            }
        }
    }
    for (r = 0; r < 10; r++) {
        snprintf(what, sizeof what, "mov32 r%d, r%d", r, r);
        EXPECT_REG(what, r, init_vals[r] & UINT32_MAX, MOV32_X(r, r));
        snprintf(what, sizeof what, "mov32 r%d, -1", r);
        EXPECT_REG(what, r, 0xffffffffull, MOV32_K(r, -1));
        snprintf(what, sizeof what, "mov32 r%d, INT32_MIN", r);
        EXPECT_REG(what, r, 0x80000000ull, MOV32_K(r, INT32_MIN));
        snprintf(what, sizeof what, "mov32 r%d, r%d", r, 9 - r);
        EXPECT_REG(what, r, init_vals[9 - r] & UINT32_MAX,
                   MOV32_X(r, 9 - r));
        snprintf(what, sizeof what, "add32 r%d, 0", r);
        EXPECT_REG(what, r, init_vals[r] & UINT32_MAX,
                   ALU32_K(BPF_ADD, r, 0));
        snprintf(what, sizeof what, "and32 r%d, -1", r);
        EXPECT_REG(what, r, init_vals[r] & UINT32_MAX,
                   ALU32_K(BPF_AND, r, -1));
        snprintf(what, sizeof what, "xor32 r%d, r%d", r, r);
        EXPECT_REG(what, r, 0, ALU32_X(BPF_XOR, r, r));
    }
}

/* 64-bit immediates are sign-extended from 32 bits (x86 imm32 forms do
 * that too, but "mov r32, imm32" zero-extends). */
TEST(jit_imm_sign_extension)
{
    static const uint8_t ops[] = {
        BPF_ADD, BPF_SUB, BPF_MUL, BPF_DIV, BPF_OR, BPF_AND, BPF_MOD,
        BPF_XOR, BPF_MOV,
    };
    static const int32_t imms[] = {
        -1, -2, INT32_MIN, -0x1234, INT32_MAX, 0x80, -0x80,
    };
    size_t o, i;
    char what[160];
    int r;

    for (r = 0; r < 10; r++) {
        snprintf(what, sizeof what, "mov64 r%d, -1", r);
        EXPECT_REG(what, r, UINT64_MAX, MOV64_K(r, -1));
        snprintf(what, sizeof what, "mov64 r%d, INT32_MIN", r);
        EXPECT_REG(what, r, 0xffffffff80000000ull, MOV64_K(r, INT32_MIN));
        snprintf(what, sizeof what, "mov64 r%d, INT32_MAX", r);
        EXPECT_REG(what, r, 0x7fffffffull, MOV64_K(r, INT32_MAX));
        snprintf(what, sizeof what, "mov64 r%d, 0", r);
        EXPECT_REG(what, r, 0, MOV64_K(r, 0));
    }
    for (o = 0; o < N_INSNS(ops); o++) {
        for (i = 0; i < N_INSNS(imms); i++) {
            int d = (o + i) % 10;

            snprintf(what, sizeof what, "%s64 r%d, imm %d",
                     alu_name(ops[o]), d, imms[i]);
            EXPECT_REG(what, d, spec_alu(BPF_ALU64, ops[o], init_vals[d],
                                         (int64_t) imms[i]),
                       ALU64_K(ops[o], d, imms[i]));
        }
    }
    EXPECT_REG("and64 -2 keeps the upper half", 3, 0xfedcba9876543210ull,
               ALU64_K(BPF_AND, 3, -2));
    EXPECT_REG("and64 INT32_MIN", 3, 0xfedcba9800000000ull,
               ALU64_K(BPF_AND, 3, INT32_MIN));
    EXPECT_REG("or64 INT32_MIN", 4, 0xffffffff89abcdefull,
               ALU64_K(BPF_OR, 4, INT32_MIN));
    EXPECT_REG("xor64 -1", 3, ~0xfedcba9876543210ull,
               ALU64_K(BPF_XOR, 3, -1));
    EXPECT_REG("add64 -1 borrows from the upper half", 2, 0xffffffffull,
               LDDW(2, 0x100000000ull), ALU64_K(BPF_ADD, 2, -1));
    EXPECT_REG("sub64 INT32_MIN", 0, 0x8000000080000f00ull,
               ALU64_K(BPF_SUB, 0, INT32_MIN));
    EXPECT_REG("mul64 -1", 5, -0x5555aaaa5555aaaaull,
               ALU64_K(BPF_MUL, 5, -1));
    EXPECT_REG("neg64", 7, -0x7fffffff80000001ull, NEG64(7));
}

/* Byte swaps truncate to their width; x86 bswap needs REX for r8-r15 and
 * a 16-bit swap (rol) an operand-size prefix. */
TEST(jit_byteswap)
{
    static const struct {
        uint8_t src;
        int32_t bits;
        uint64_t expect;
    } cases[] = {
        { BPF_TO_BE, 16, 0xefcd },
        { BPF_TO_BE, 32, 0xefcdab89 },
        { BPF_TO_BE, 64, 0xefcdab8967452301ull },
        { BPF_TO_LE, 16, 0xcdef },
        { BPF_TO_LE, 32, 0x89abcdef },
        { BPF_TO_LE, 64, 0x0123456789abcdefull },
    };
    char what[160];
    size_t c;
    int r;

    for (r = 0; r < 10; r++) {
        for (c = 0; c < N_INSNS(cases); c++) {
            snprintf(what, sizeof what, "%s%d r%d",
                     cases[c].src == BPF_TO_BE ? "be" : "le",
                     cases[c].bits, r);
            EXPECT_REG(what, r, cases[c].expect,
                       LDDW(r, 0x0123456789abcdefull),
                       END(cases[c].src, r, cases[c].bits));
        }
    }
    EXPECT_REG("be16 twice", 1, 0x3412, LDDW(1, 0xffffffffffff1234ull),
               END(BPF_TO_BE, 1, 16), END(BPF_TO_BE, 1, 16),
               END(BPF_TO_BE, 1, 16));
    EXPECT_REG("le16 of r9", 9, 0x6666, END(BPF_TO_LE, 9, 16));
}

/* Every conditional jump, 64 and 32 bits, immediate and register, on
 * values at the signed and unsigned boundaries. */
TEST(jit_jumps)
{
    static const uint8_t ops[] = {
        BPF_JEQ, BPF_JGT, BPF_JGE, BPF_JSET, BPF_JNE, BPF_JSGT, BPF_JSGE,
        BPF_JLT, BPF_JLE, BPF_JSLT, BPF_JSLE,
    };
    static const uint64_t vals[] = {
        0, 1, UINT64_MAX, 0x7fffffff, 0x80000000, 0xffffffff,
        0x100000000ull, INT64_MAX, (uint64_t) INT64_MIN, 0x80000001,
        5, (uint64_t) -5, 0xffffffff80000000ull, 0x1ffffffffull,
    };
    static const int32_t imms[] = {
        0, 1, -1, INT32_MAX, INT32_MIN, 5, -5, (int32_t) 0x80000001,
    };
    /* dst, src, and the register that collects one bit per comparison. */
    static const int regsets[][3] = {
        { 1, 2, 0 }, { 0, 4, 3 }, { 4, 0, 9 }, { 9, 3, 4 }, { 3, 9, 1 },
        { 7, 8, 5 }, { 6, 5, 2 },
    };
    static const uint8_t clss[] = { BPF_JMP, BPF_JMP32 };
    size_t c, o, a, b, x, set = 0;
    char what[160];

    for (c = 0; c < 2; c++) {
        for (o = 0; o < N_INSNS(ops); o++) {
            for (x = 0; x < 2; x++) {
                for (a = 0; a < N_INSNS(vals); a++) {
                    const int *rs = regsets[set++ % N_INSNS(regsets)];
                    size_t n_b = x ? N_INSNS(vals) : N_INSNS(imms);
                    struct bbuf bb = { .n = 0 };
                    uint64_t expect = 0;

                    add_lddw(&bb, rs[0], vals[a]);
                    add(&bb, MOV64_K(rs[2], 0));
                    for (b = 0; b < n_b; b++) {
                        uint64_t bv = (x ? vals[b]
                                       : (uint64_t) (int64_t) imms[b]);

                        if (x) {
                            add_lddw(&bb, rs[1], vals[b]);
                        }
                        add(&bb, ALU64_K(BPF_LSH, rs[2], 1));
                        add(&bb, x ? I(clss[c] | ops[o] | BPF_X, rs[0],
                                       rs[1], 1, 0)
                                 : I(clss[c] | ops[o] | BPF_K, rs[0], 0,
                                     1, imms[b]));
                        add(&bb, JA(1));
                        add(&bb, ALU64_K(BPF_OR, rs[2], 1));
                        expect = expect << 1 | spec_jmp(clss[c], ops[o],
                                                        vals[a], bv);
                    }
                    snprintf(what, sizeof what, "%s %s %s r%d = %#"PRIx64
                             " against each %s", c ? "jmp32" : "jmp",
                             jmp_name(ops[o]), x ? "x" : "k", rs[0],
                             vals[a], x ? "value" : "imm");
                    check_bbuf(what, &bb, rs[2], expect);
                }
            }
            for (a = 0; a < N_INSNS(vals); a += 3) {
                struct bbuf bb = { .n = 0 };

                add_lddw(&bb, 8, vals[a]);
                add(&bb, MOV64_K(6, 0));
                add(&bb, I(clss[c] | ops[o] | BPF_X, 8, 8, 1, 0));
                add(&bb, JA(1));
                add(&bb, MOV64_K(6, 1));
                snprintf(what, sizeof what, "%s %s r8, r8 = %#"PRIx64,
                         c ? "jmp32" : "jmp", jmp_name(ops[o]), vals[a]);
                check_bbuf(what, &bb, 6,
                           spec_jmp(clss[c], ops[o], vals[a], vals[a]));
            }
        }
    }
    /* Jumps over more than 127 bytes of code (rel32 on x86), both ways
     * around a long block. */
    {
        struct bbuf bb = { .n = 0 };
        int i;

        add(&bb, MOV64_K(0, 0));
        add(&bb, JMP_K(BPF_JNE, 1, 0, 60));
        for (i = 0; i < 60; i++) {
            add(&bb, ALU64_K(BPF_ADD, 0, 1));
        }
        add(&bb, JMP_K(BPF_JEQ, 0, 1, 60));
        for (i = 0; i < 60; i++) {
            add(&bb, ALU64_K(BPF_ADD, 0, 2));
        }
        add(&bb, JA(40));
        for (i = 0; i < 40; i++) {
            add(&bb, ALU64_K(BPF_ADD, 0, 100));
        }
        check_bbuf("long jumps", &bb, 0, 120);
    }
}

/* Stack loads and stores of every size from and to every register (x86
 * byte stores from sil/dil need a REX prefix), through r10 and through
 * copies of it at various offsets (r12 and r13 as x86 bases need special
 * encodings). */
TEST(jit_stack_memory)
{
    static const int szs[] = { BPF_B, BPF_H, BPF_W, BPF_DW };
    static const int32_t imms[] = {
        -1, INT32_MIN, 0x7f, 0x12345678, -2, 0x80,
    };
    /* Base register adjustments and offsets, reaching fp-8 to fp-512 with
     * 8-bit and 32-bit displacements. */
    static const int bases[][2] = {
        { 0, -8 }, { -64, 0 }, { -256, 128 }, { -256, 120 }, { -512, 504 },
        { -8, -120 }, { -8, -504 }, { -256, 0 },
    };
    const uint64_t pat = 0xf1f2f3f4f5f6f7f8ull;
    const uint64_t v = 0x8182838485868788ull;
    char what[160];
    size_t z, i, ki;
    int r;

    for (z = 0; z < 4; z++) {
        int size = size_of(szs[z]);
        uint64_t mask = size == 8 ? UINT64_MAX : (1ull << (8 * size)) - 1;

        for (r = 0; r < 10; r++) {
            int t = (r + 1) % 10;

            /* The first and the last piece of the slot. */
            for (ki = 0; ki < (size == 8 ? 1 : 2); ki++) {
                size_t k = ki ? 8 / size - 1 : 0;
                int off = -16 + size * (int) k;
                uint64_t want;
                struct bbuf bb = { .n = 0 };

                /* Load into each register. */
                add_lddw(&bb, t, pat);
                add(&bb, STX(BPF_DW, 10, t, -16));
                add(&bb, LDX(szs[z], r, 10, off));
                snprintf(what, sizeof what, "ldx size %d r%d, fp%d", size,
                         r, off);
                check_bbuf(what, &bb, r, (pat >> (8 * size * k)) & mask);

                /* Store from each register. */
                bb.n = 0;
                add_lddw(&bb, t, pat);
                add(&bb, STX(BPF_DW, 10, t, -16));
                add_lddw(&bb, r, v);
                add(&bb, STX(szs[z], 10, r, off));
                add(&bb, LDX(BPF_DW, t, 10, -16));
                want = ((pat & ~(mask << (8 * size * k)))
                        | (v & mask) << (8 * size * k));
                snprintf(what, sizeof what, "stx size %d fp%d, r%d", size,
                         off, r);
                check_bbuf(what, &bb, t, want);
            }
        }
        for (i = 0; i < N_INSNS(imms); i++) {
            size_t k = i % (8 / size);
            struct bbuf bb = { .n = 0 };
            uint64_t want;

            add_lddw(&bb, 5, pat);
            add(&bb, STX(BPF_DW, 10, 5, -16));
            add(&bb, ST(szs[z], 10, -16 + size * (int) k, imms[i]));
            add(&bb, LDX(BPF_DW, 2, 10, -16));
            want = ((pat & ~(mask << (8 * size * k)))
                    | ((uint64_t) (int64_t) imms[i] & mask)
                       << (8 * size * k));
            snprintf(what, sizeof what, "st size %d fp%d, %d", size,
                     -16 + size * (int) k, imms[i]);
            check_bbuf(what, &bb, 2, want);
        }
    }
    for (r = 0; r < 10; r++) {
        for (i = 0; i < N_INSNS(bases); i++) {
            int delta = bases[i][0], off = bases[i][1];
            int s = (r + 1) % 10, x = (r + 2) % 10, y = (r + 3) % 10;
            struct bbuf bb = { .n = 0 };

            /* fp + delta + off is the slot; r = fp + delta. */
            add(&bb, MOV64_X(r, 10));
            if (delta) {
                add(&bb, ALU64_K(BPF_ADD, r, delta));
            }
            add(&bb, STX(BPF_DW, r, s, off));
            add(&bb, LDX(BPF_W, x, r, off + 4));
            add(&bb, ST(BPF_B, r, off + 1, 0x5a));
            add(&bb, LDX(BPF_DW, y, 10, delta + off));
            add(&bb, MOV64_K(r, 0));
            snprintf(what, sizeof what, "r%d = fp%+d, stx/ldx at r%d%+d",
                     r, delta, r, off);
            check_bbuf(what, &bb, x, init_vals[s] >> 32);
            check_bbuf(what, &bb, y, ((init_vals[s] & ~0xff00ull)
                                      | 0x5a00));
        }
    }
    EXPECT_REG("st dw -1 sign-extends", 4, UINT64_MAX,
               ST(BPF_DW, 10, -8, -1), LDX(BPF_DW, 4, 10, -8));
    EXPECT_REG("stx b from r1 (dil)", 0, 0x00000000000000f4ull,
               ST(BPF_DW, 10, -8, 0), STX(BPF_B, 10, 1, -8),
               LDX(BPF_DW, 0, 10, -8));
    EXPECT_REG("stx b from r2 (sil)", 0, 0x00000000c4000000ull,
               ST(BPF_DW, 10, -8, 0), STX(BPF_B, 10, 2, -5),
               LDX(BPF_DW, 0, 10, -8));
    EXPECT_REG("ldx b zero-extends", 6, 0xf3, ST(BPF_W, 10, -4, -1),
               STX(BPF_B, 10, 1, -4), LDX(BPF_B, 6, 10, -4),
               ALU64_K(BPF_XOR, 6, 0x07));
}

/* Atomic operations on a stack slot, 32 and 64 bits, with r0 as operand
 * and as base (cmpxchg compares with r0 and returns the old value in
 * it: x86's implicit rax). */
TEST(jit_atomics)
{
    static const int32_t ops[] = {
        BPF_ADD, BPF_OR, BPF_AND, BPF_XOR,
        BPF_ADD | BPF_FETCH, BPF_OR | BPF_FETCH, BPF_AND | BPF_FETCH,
        BPF_XOR | BPF_FETCH, BPF_XCHG, BPF_CMPXCHG,
    };
    static const int srcs[] = { 0, 1, 4, 9 };
    static const int bases[] = { 10, 0, 7, 3 };
    const uint64_t mem = 0xa5a5a5a5fffffffeull;
    const uint64_t sv = 0x1234567800000003ull;
    const int mreg = 5;
    char what[200];
    size_t o, si, bi, z, cmp;

    for (o = 0; o < N_INSNS(ops); o++) {
        int32_t op = ops[o];

        for (z = 0; z < 3; z++) {
            /* 64 bits, 32 bits in the low half of the slot, 32 bits in
             * the high half. */
            int size = z ? 4 : 8;
            uint64_t mask = z ? UINT32_MAX : UINT64_MAX;
            int off = z == 2 ? -4 : -8;
            uint64_t old = (z == 2 ? mem >> 32 : mem) & mask;

            for (si = 0; si < N_INSNS(srcs); si++) {
                for (bi = 0; bi < N_INSNS(bases); bi++) {
                    for (cmp = 0; cmp < (op == BPF_CMPXCHG ? 2 : 1);
                         cmp++) {
                        int s = srcs[si], b = bases[bi];
                        /* For cmpxchg, r0 equal to the old value or not;
                         * for 32 bits, only its low half counts. */
                        uint64_t r0 = (cmp ? old + 1
                                       : (old | (z ? 0xdead000000000000ull
                                                   : 0)));
                        uint64_t reg_s, reg_0, new, fetched = 0;
                        struct bbuf bb = { .n = 0 };

                        if (s == b) {
                            continue;
                        }
                        add_lddw(&bb, mreg, mem);
                        add(&bb, STX(BPF_DW, 10, mreg, -8));
                        add_lddw(&bb, 0, r0);
                        add_lddw(&bb, s, sv);
                        if (b != 10) {
                            /* b = fp - 8. */
                            add(&bb, MOV64_X(b, 10));
                            add(&bb, ALU64_K(BPF_ADD, b, -8));
                        }
                        add(&bb, ATOMIC(z ? BPF_W : BPF_DW, op, b, s,
                                        b == 10 ? off : off + 8));
                        if (b != 10 && !(b == 0 && op == BPF_CMPXCHG)) {
                            add(&bb, MOV64_K(b, 0x77));
                        }
                        add(&bb, LDX(BPF_DW, mreg, 10, -8));

                        /* What it should do. */
                        reg_0 = s == 0 ? sv : r0;
                        reg_s = sv;
                        if (b == 0) {
                            /* r0 holds an address, which the slot does
                             * not: cmpxchg fails. */
                            reg_0 = ~old;
                        }
                        new = spec_atomic(op, size, old, reg_s, &reg_0,
                                          &fetched);
                        if (op & BPF_FETCH && op != BPF_CMPXCHG) {
                            reg_s = fetched;
                        }
                        if (s == 0) {
                            reg_0 = op == BPF_CMPXCHG ? reg_0 : reg_s;
                            reg_s = reg_0;
                        }
                        if (b != 10 && !(b == 0 && op == BPF_CMPXCHG)) {
                            reg_0 = b == 0 ? 0x77 : reg_0;
                        }
                        new = (z == 2 ? (mem & UINT32_MAX) | new << 32
                               : (mem & ~mask) | new);

                        snprintf(what, sizeof what, "%s size %d [r%d%+d] "
                                 "r%d%s", op == BPF_XCHG ? "xchg"
                                 : op == BPF_CMPXCHG ? "cmpxchg"
                                 : alu_name(op & ~BPF_FETCH), size, b,
                                 b == 10 ? off : off + 8, s,
                                 op == BPF_CMPXCHG
                                 ? (cmp ? " (unequal)" : " (equal)")
                                 : op & BPF_FETCH ? " fetch" : "");
                        check_bbuf(what, &bb, mreg, new);
                        check_bbuf(what, &bb, s, reg_s);
                        if (op == BPF_CMPXCHG && s != 0) {
                            check_bbuf(what, &bb, 0, reg_0);
                        }
                    }
                }
            }
        }
    }
    EXPECT_REG("atomic add 32 does not carry into the upper half", 1,
               0xa5a5a5a500000001ull, LDDW(1, 0xa5a5a5a5fffffffeull),
               STX(BPF_DW, 10, 1, -8), MOV64_K(2, 3),
               ATOMIC(BPF_W, BPF_ADD, 10, 2, -8), LDX(BPF_DW, 1, 10, -8));
    EXPECT_REG("fetch add 32 zero-extends", 0, 0xfffffffeull,
               LDDW(1, 0xa5a5a5a5fffffffeull), STX(BPF_DW, 10, 1, -8),
               MOV64_K(0, 3), ATOMIC(BPF_W, BPF_ADD | BPF_FETCH, 10, 0, -8));
    EXPECT_REG("cmpxchg 32 compares the low half of r0", 2, 9,
               ST(BPF_DW, 10, -8, 5), LDDW(0, 0x700000005ull),
               MOV64_K(1, 9), ATOMIC(BPF_W, BPF_CMPXCHG, 10, 1, -8),
               LDX(BPF_DW, 2, 10, -8));
    EXPECT_REG("cmpxchg 32 zero-extends r0", 0, 0xfffffffbull,
               ST(BPF_DW, 10, -8, -5), MOV64_K(0, 0), MOV64_K(1, 9),
               ATOMIC(BPF_W, BPF_CMPXCHG, 10, 1, -8));
    EXPECT_REG("cmpxchg 64 with r0 as operand succeeds", 3, 42,
               ST(BPF_DW, 10, -8, 42), MOV64_K(0, 42),
               ATOMIC(BPF_DW, BPF_CMPXCHG, 10, 0, -8),
               LDX(BPF_DW, 3, 10, -8));
    EXPECT_REG("xchg 64 with r0", 0, 11, ST(BPF_DW, 10, -8, 11),
               MOV64_K(0, 12), ATOMIC(BPF_DW, BPF_XCHG, 10, 0, -8));
    /* cmpxchg through r0 succeeds when the slot holds r0 itself (a spilled
     * stack pointer). */
    EXPECT_REG("cmpxchg 64 through r0 holding its own address", 4, 99,
               MOV64_X(0, 10), ALU64_K(BPF_ADD, 0, -16),
               STX(BPF_DW, 10, 0, -16), MOV64_K(1, 99),
               ATOMIC(BPF_DW, BPF_CMPXCHG, 0, 1, 0), MOV64_K(0, 0),
               LDX(BPF_DW, 4, 10, -16));
    EXPECT_REG("cmpxchg 32 through r0 holding its own address", 4,
               99, MOV64_X(0, 10), ALU64_K(BPF_ADD, 0, -16),
               STX(BPF_DW, 10, 0, -16), MOV64_K(1, 99),
               ATOMIC(BPF_W, BPF_CMPXCHG, 0, 1, 0), MOV64_K(0, 0),
               LDX(BPF_W, 4, 10, -16));
}

/* 64-bit immediates into every register. */
TEST(jit_lddw)
{
    static const uint64_t vals[] = {
        0, 1, UINT64_MAX, 0x80000000, 0xffffffff, 0x100000000ull,
        0x7fffffff, (uint64_t) INT64_MIN, 0x8000000000000001ull,
        0xffffffff80000000ull, 0x00000000fffffffeull, 0x123456789abcdef0ull,
    };
    char what[160];
    size_t i;
    int r;

    for (i = 0; i < N_INSNS(vals); i++) {
        struct bbuf bb = { .n = 0 };

        for (r = 0; r < 10; r++) {
            add_lddw(&bb, r, vals[(i + r) % N_INSNS(vals)]);
        }
        for (r = 0; r < 10; r++) {
            snprintf(what, sizeof what, "lddw r%d, %#"PRIx64, r,
                     vals[(i + r) % N_INSNS(vals)]);
            check_bbuf(what, &bb, r, vals[(i + r) % N_INSNS(vals)]);
        }
    }
}

/* bpf-to-bpf calls: the callee gets r1-r5, has its own frame, may clobber
 * r6-r9, which the caller finds intact. */
TEST(jit_calls)
{
    /* Main: arguments, its own slot, the call; r1-r5 are undefined after
     * a call, so they are set again. */
    static const struct okovm_test_insn body[] = {
        ST(BPF_DW, 10, -8, 0x1111), MOV64_K(1, 10), MOV64_K(2, 20),
        MOV64_K(3, 30), MOV64_K(4, 40), MOV64_K(5, 50),
        CALL_LOCAL(0),
        MOV64_K(1, 1), MOV64_K(3, 3), MOV64_K(4, 4), MOV64_K(5, 5),
        LDX(BPF_DW, 2, 10, -8),
    };
    /* f: r0 = r1 + 2 r2 + 3 r3 + 4 r4 + 5 r5 + its own fp-8, with r6-r9
     * as temporaries and a slot at fp-512. */
    static const struct okovm_test_insn f[] = {
        MOV64_K(6, -1), MOV64_K(7, -2), LDDW(8, 0x123456789ull),
        MOV64_K(9, 0), ST(BPF_DW, 10, -8, 0x2222),
        STX(BPF_DW, 10, 5, -512),
        MOV64_X(0, 1), MOV64_X(6, 2), ALU64_K(BPF_MUL, 6, 2),
        ALU64_X(BPF_ADD, 0, 6), MOV64_X(7, 3), ALU64_K(BPF_MUL, 7, 3),
        ALU64_X(BPF_ADD, 0, 7), MOV64_X(8, 4), ALU64_K(BPF_LSH, 8, 2),
        ALU64_X(BPF_ADD, 0, 8), LDX(BPF_DW, 9, 10, -512),
        ALU64_K(BPF_MUL, 9, 5), ALU64_X(BPF_ADD, 0, 9),
        LDX(BPF_DW, 6, 10, -8), ALU64_X(BPF_ADD, 0, 6), EXIT(),
    };
    /* g: adds 5 to the caller's slot that r1 points to. */
    static const struct okovm_test_insn g[] = {
        LDX(BPF_DW, 0, 1, 0), ALU64_K(BPF_ADD, 0, 5), STX(BPF_DW, 1, 0, 0),
        MOV64_K(6, 0), EXIT(),
    };
    static const struct okovm_test_insn body_g[] = {
        ST(BPF_DW, 10, -24, 37), MOV64_X(1, 10), ALU64_K(BPF_ADD, 1, -24),
        CALL_LOCAL(0), MOV64_K(1, 0), MOV64_K(2, 0), MOV64_K(3, 0),
        MOV64_K(4, 0), MOV64_K(5, 0), LDX(BPF_DW, 8, 10, -24),
    };
    struct body b = { body, N_INSNS(body), f, N_INSNS(f), NULL };
    int r;

    check_body("call", &b, 0, 10 + 40 + 90 + 160 + 250 + 0x2222);
    check_body("call: caller's slot", &b, 2, 0x1111);
    for (r = 6; r < 10; r++) {
        check_body("call: callee-saved register", &b, r, init_vals[r]);
    }

    b = (struct body) { body_g, N_INSNS(body_g), g, N_INSNS(g), NULL };
    check_body("call with a pointer to the caller's stack", &b, 8, 42);
    check_body("call with a pointer to the caller's stack", &b, 0, 42);
    check_body("call with a pointer to the caller's stack", &b, 6,
               init_vals[6]);
}

/* Calls nested 7 deep (8 frames, the most the verifier allows), each
 * frame using its whole stack, so that frames that overlap show. */
TEST(jit_calls_nested)
{
#define N_MARKS 5
    static const int16_t marks[N_MARKS] = { -8, -136, -264, -392, -512 };
    static struct okovm_test_insn tail[7 * (6 + 3 * N_MARKS)];
    struct okovm_test_insn body[3 * N_MARKS + 7];
    uint32_t n = 0, nb = 0, start[8], call[8];
    uint64_t expect = 0;
    struct body b;
    int i, j, r;

    /* Main: marks 50 + j in its frame, calls f_1, then loads the marks
     * into r1-r5 (after a call, they are undefined anyway). */
    for (j = 0; j < N_MARKS; j++) {
        body[nb++] = ST(BPF_DW, 10, marks[j], 50 + j);
    }
    body[nb++] = MOV64_K(0, 0);
    body[nb++] = CALL_LOCAL(0);
    for (j = 0; j < N_MARKS; j++) {
        body[nb++] = LDX(BPF_DW, 1 + j, 10, marks[j]);
    }

    /* f_i: r6 = 1000 i and marks 100 i + j in its frame; calls f_(i+1)
     * (f_7 starts from r0 = 7); then r0 = r0 * 10 + its marks + r6, with
     * r7 as a temporary. */
    for (i = 1; i <= 7; i++) {
        start[i] = n;
        tail[n++] = MOV64_K(6, 1000 * i);
        for (j = 0; j < N_MARKS; j++) {
            tail[n++] = ST(BPF_DW, 10, marks[j], 100 * i + j);
        }
        tail[n++] = MOV64_K(7, -i);
        if (i < 7) {
            call[i] = n;
            tail[n++] = CALL_LOCAL(0);      /* Patched below. */
            tail[n++] = ALU64_K(BPF_MUL, 0, 10);
        } else {
            tail[n++] = MOV64_K(0, 7);
        }
        for (j = 0; j < N_MARKS; j++) {
            tail[n++] = LDX(BPF_DW, 7, 10, marks[j]);
            tail[n++] = ALU64_X(BPF_ADD, 0, 7);
        }
        tail[n++] = ALU64_X(BPF_ADD, 0, 6);
        tail[n++] = EXIT();
    }
    for (i = 1; i < 7; i++) {
        tail[call[i]].imm = start[i + 1] - (call[i] + 1);
    }
    for (i = 7; i >= 1; i--) {
        expect = (i == 7 ? 7 : expect * 10) + 500 * i + 10 + 1000 * i;
    }
    b = (struct body) { body, nb, tail, n, NULL };
    check_body("calls nested 7 deep", &b, 0, expect);
    for (j = 0; j < N_MARKS; j++) {
        check_body("calls nested 7 deep: main's stack", &b, 1 + j, 50 + j);
    }
    for (r = 6; r < 10; r++) {
        check_body("calls nested 7 deep: callee-saved", &b, r,
                   init_vals[r]);
    }
#undef N_MARKS

    /* One more level is refused. */
    {
        struct okovm_test_insn p[2 * 8 + 2];
        struct okovm_ns *ns;
        struct okovm_prog *prog = NULL;
        struct okovm_error err;

        n = 0;
        for (i = 0; i < 8; i++) {
            p[n++] = CALL_LOCAL(1);
            p[n++] = EXIT();
        }
        p[n++] = MOV64_K(0, 0);
        p[n++] = EXIT();
        okovm_ns_create("jit", &ns);
        CHECK_EQ(okovm_test_load_raw(ns, p, n, NULL, 0, 0, &prog, &err),
                 EINVAL);
        CHECK_STR(err.msg, "nest more than 8 deep");
        okovm_prog_unref(prog);
        okovm_ns_destroy(ns);
    }
}

/* Helper calls with r6-r9 and the stack live across them. */
TEST(jit_helper_calls)
{
    static const struct okovm_test_insn ktime[] = {
        ST(BPF_DW, 10, -8, 0x5151), MOV64_K(1, 1), MOV64_K(2, 2),
        MOV64_K(3, 3), MOV64_K(4, 4), MOV64_K(5, 5),
        CALL(BPF_FUNC_ktime_get_ns),
        MOV64_K(2, 0), MOV64_K(3, 0), MOV64_K(4, 0), MOV64_K(5, 0),
        LDX(BPF_DW, 1, 10, -8),
    };
    static const struct okovm_test_insn prandom[] = {
        CALL(BPF_FUNC_get_prandom_u32), STX(BPF_DW, 10, 0, -16),
        MOV64_X(6, 0), ALU64_K(BPF_XOR, 6, -1),
        CALL(BPF_FUNC_get_prandom_u32), ALU64_K(BPF_LSH, 0, 32),
        LDX(BPF_DW, 1, 10, -16), ALU64_X(BPF_OR, 0, 1),
        MOV64_K(1, 0), MOV64_K(2, 0), MOV64_K(3, 0), MOV64_K(4, 0),
        MOV64_K(5, 0),
    };
    static const struct okovm_test_insn one[] = {
        CALL(BPF_FUNC_get_prandom_u32), EXIT(),
    };
    struct env env = { .now = 0x123456789abcdef0ull };
    struct body b = { ktime, N_INSNS(ktime), NULL, 0, &env };
    struct okovm_ns *ns;
    struct okovm_prog *prog;
    struct okovm_error err;
    uint32_t rand[2];
    int r;

    check_body("ktime_get_ns", &b, 0, env.now);
    check_body("ktime_get_ns: stack", &b, 1, 0x5151);
    for (r = 6; r < 10; r++) {
        check_body("ktime_get_ns: callee-saved", &b, r, init_vals[r]);
    }

    /* The values after seed 42, from the interpreter. */
    okovm_ns_create("jit", &ns);
    CHECK_EQ(okovm_test_load_raw(ns, one, N_INSNS(one), NULL, 0,
                                 OKOVM_LOAD_NO_JIT, &prog, &err), 0);
    okovm_ns_seed_prandom(ns, 42);
    rand[0] = run64(prog, "", 0, 0);
    rand[1] = run64(prog, "", 0, 0);
    okovm_prog_unref(prog);
    okovm_ns_destroy(ns);
    CHECK(rand[0] != rand[1]);

    env = (struct env) { .seed = 42, .rand = rand, .n_rand = 2 };
    b = (struct body) { prandom, N_INSNS(prandom), NULL, 0, &env };
    check_body("get_prandom_u32", &b, 0,
               (uint64_t) rand[1] << 32 | rand[0]);
    check_body("get_prandom_u32", &b, 6, rand[0] ^ UINT64_MAX);
    for (r = 7; r < 10; r++) {
        check_body("get_prandom_u32: callee-saved", &b, r, init_vals[r]);
    }
}

/* Runs 'insns' over 'maps' in 'mode' and returns r0; checks that the JIT
 * mode did run native code. */
static uint64_t
run_with_maps(const struct okovm_test_insn *insns, uint32_t n,
              struct okovm_map **maps, uint32_t n_maps, enum run_mode mode)
{
    struct okovm_prog *prog;
    struct okovm_error err;
    uint64_t r0;

    CHECK_EQ(okovm_test_load_raw(maps[0]->ns, insns, n, maps, n_maps,
                                 run_mode_flags(mode), &prog, &err), 0);
    if (mode == RUN_JIT) {
        CHECK(prog_is_jit(prog));
    }
    r0 = run64(prog, "", 0, 0);
    okovm_prog_unref(prog);
    return r0;
}

/* bpf_map_lookup_elem() where the JIT knows the map (R1 loaded just before
 * the call): array lookups inlined, hash lookups through the map's own
 * function for its key size; and where it does not (R1 chosen on two
 * paths).  Every mode must find the same entries, and miss the same. */
TEST(jit_map_lookups)
{
    /* maps[0]: array of 4 u64; [1] hash, 8-byte keys; [2] LRU hash,
     * 16-byte keys; [3] hash, 6-byte keys (no copy of its own). */
    static const uint32_t key_sizes[] = { 4, 8, 16, 6 };
    static const uint32_t types[] = {
        BPF_MAP_TYPE_ARRAY, BPF_MAP_TYPE_HASH, BPF_MAP_TYPE_LRU_HASH,
        BPF_MAP_TYPE_HASH,
    };
    struct okovm_map *maps[4];
    struct okovm_ns *ns;
    uint8_t key[16];
    uint64_t v;
    int m, mode;

    okovm_ns_create("jit-maps", &ns);
    for (m = 0; m < 4; m++) {
        CHECK_EQ(okovm_test_map_create(ns, "m", types[m], key_sizes[m], 8,
                                       4, 0, &maps[m]), 0);
    }
    for (uint32_t i = 0; i < 4; i++) {
        v = 100 + i;
        CHECK_EQ(okovm_map_update(maps[0], &i, &v, 0), 0);
    }
    for (m = 1; m < 4; m++) {
        memset(key, 0, sizeof key);
        key[0] = 7;
        key[key_sizes[m] - 1] = 9;
        v = 1000 + m;
        CHECK_EQ(okovm_map_update(maps[m], key, &v, 0), 0);
    }

    for (mode = RUN_JIT; mode <= RUN_INTERP; mode++) {
        /* Array: r0 = *lookup(map 0, &idx) or -1. */
        static const int64_t idxs[] = { 0, 3, 4, 0xffffffff };
        for (size_t k = 0; k < N_INSNS(idxs); k++) {
            const struct okovm_test_insn array[] = {
                ST(BPF_W, 10, -4, (int32_t) idxs[k]),
                MOV64_X(2, 10), ALU64_K(BPF_ADD, 2, -4),
                LD_MAP(1, 0), CALL(BPF_FUNC_map_lookup_elem),
                JMP_K(BPF_JEQ, 0, 0, 2), LDX(BPF_DW, 0, 0, 0), EXIT(),
                MOV64_K(0, -1), EXIT(),
            };
            CHECK_EQ(run_with_maps(array, N_INSNS(array), maps, 4, mode),
                     idxs[k] < 4 ? 100 + (uint64_t) idxs[k] : UINT64_MAX);
        }
        /* Hashes: the key 7, 0..., 9 is there; 7, 0... is not. */
        for (m = 1; m < 4; m++) {
            for (int hit = 0; hit < 2; hit++) {
                const struct okovm_test_insn hash[] = {
                    ST(BPF_DW, 10, -16, 7), ST(BPF_DW, 10, -8, 0),
                    ST(BPF_B, 10, -16 + (int) key_sizes[m] - 1,
                       hit ? 9 : 0),
                    MOV64_X(2, 10), ALU64_K(BPF_ADD, 2, -16),
                    LD_MAP(1, m), CALL(BPF_FUNC_map_lookup_elem),
                    JMP_K(BPF_JEQ, 0, 0, 2), LDX(BPF_DW, 0, 0, 0), EXIT(),
                    MOV64_K(0, -1), EXIT(),
                };
                CHECK_EQ(run_with_maps(hash, N_INSNS(hash), maps, 4, mode),
                         hit ? 1000 + (uint64_t) m : UINT64_MAX);
            }
        }
        /* The map depends on the path (r3): a jump lands between R1's
         * loads and the call, which then goes through the helper. */
        for (int path = 0; path < 2; path++) {
            const struct okovm_test_insn joined[] = {
                MOV64_K(3, path),
                LD_MAP(1, 0),
                JMP_K(BPF_JEQ, 3, 0, 2),
                LD_MAP(1, 1),
                ST(BPF_DW, 10, -16, 7), ST(BPF_DW, 10, -8, 0),
                ST(BPF_B, 10, -9, 9),
                MOV64_X(2, 10), ALU64_K(BPF_ADD, 2, -16),
                CALL(BPF_FUNC_map_lookup_elem),
                JMP_K(BPF_JEQ, 0, 0, 2), LDX(BPF_DW, 0, 0, 0), EXIT(),
                MOV64_K(0, -1), EXIT(),
            };
            /* Path 0: the array, index 7: none.  Path 1: the 8-byte hash,
             * key 7, 0, ..., 9: there. */
            CHECK_EQ(run_with_maps(joined, N_INSNS(joined), maps, 4, mode),
                     path ? 1001 : UINT64_MAX);
        }
    }
    for (m = 0; m < 4; m++) {
        okovm_map_unref(maps[m]);
    }
    okovm_ns_destroy(ns);
}

/* Loads through a register that holds the context on one path and a
 * stack pointer on the other: the verifier cannot tell which, so the code
 * decides at run time ('struct xdp_md' offsets to the VM's layout). */
TEST(jit_ctx_dynamic)
{
    static const struct okovm_test_insn p[] = {
        LDDW(3, 0x1122334455667788ull), STX(BPF_DW, 10, 3, -24),
        STX(BPF_DW, 10, 3, -16), STX(BPF_DW, 10, 3, -8),
        MOV64_X(2, 1), LDX(BPF_W, 5, 1, 12),
        JMP_K(BPF_JEQ, 5, 7, 2),
        MOV64_X(2, 10), ALU64_K(BPF_ADD, 2, -24),
        /* r2 is the context on port 7, fp-24 otherwise. */
        LDX(BPF_W, 0, 2, 12),               /* ingress_ifindex, fp-12. */
        LDX(BPF_B, 6, 2, 13),               /* Unaligned: 0, fp-11. */
        LDX(BPF_H, 7, 2, 16),               /* rx_queue_index, fp-8. */
        LDX(BPF_DW, 8, 2, 16),              /* Too wide: 0, fp-8. */
        LDX(BPF_W, 9, 2, 20),               /* egress_ifindex, fp-4. */
        ALU64_K(BPF_MUL, 6, 3), ALU64_X(BPF_ADD, 0, 6),
        ALU64_K(BPF_MUL, 7, 5), ALU64_X(BPF_ADD, 0, 7),
        ALU64_K(BPF_MUL, 8, 7), ALU64_X(BPF_ADD, 0, 8),
        ALU64_K(BPF_MUL, 9, 11), ALU64_X(BPF_ADD, 0, 9),
        EXIT(),
    };
    const uint64_t stack_path = (0x11223344 + 0x33 * 3 + 0x7788 * 5
                                 + 0x1122334455667788ull * 7
                                 + 0x11223344ull * 11);
    struct okovm_ns *ns;
    uint8_t pkt[64] = { 0 };
    uint32_t port;
    int m;

    okovm_ns_create("jit", &ns);
    for (m = 0; m < N_RUN_MODES; m++) {
        struct okovm_prog *prog;
        struct okovm_error err;

        if (okovm_test_load_raw(ns, p, N_INSNS(p), NULL, 0,
                                run_mode_flags(m), &prog, &err)) {
            fprintf(stderr, "ctx dynamic (%s): %s\n", run_mode_name(m),
                    err.msg);
            test_failures++;
            continue;
        }
        for (port = 7; port <= 8; port++) {
            uint64_t got = run64(prog, pkt, sizeof pkt, port);
            uint64_t expect = port == 7 ? 7 : stack_path;

            if (got != expect) {
                fprintf(stderr, "ctx dynamic (%s), port %u: got %#"PRIx64
                        ", expected %#"PRIx64"\n", run_mode_name(m), port,
                        got, expect);
                test_failures++;
            }
        }
        okovm_prog_unref(prog);
    }
    okovm_ns_destroy(ns);
}

/* Random programs. */

/* splitmix64. */
static uint64_t
rng_next(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);

    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

#define FUZZ_MAX_UNITS 80
#define FUZZ_MAX_SLOTS 6

struct gen {
    uint64_t rng;
    struct prog p;
    int slots[FUZZ_MAX_SLOTS];  /* Slots in use: fp - 8 * slots[i]. */
    int n_slots;
};

static uint32_t
rnd(struct gen *g, uint32_t n)
{
    return rng_next(&g->rng) % n;
}

/* A value for a register or an immediate: mostly ones at the boundaries
 * the operations care about, so that comparisons go both ways, divisors
 * are zero and shifts are out of range now and then. */
static uint64_t
gen_value(struct gen *g)
{
    static const uint64_t interesting[] = {
        0, 1, 2, 3, 7, 31, 32, 33, 63, 64, 65, 0x7f, 0x80, 0xff, 0x7fff,
        0x8000, 0xffff, 0x7fffffff, 0x80000000, 0x80000001, 0xffffffff,
        0x100000000ull, 0x100000001ull, INT64_MAX, (uint64_t) INT64_MIN,
        UINT64_MAX, UINT64_MAX - 1, 0xffffffff80000000ull,
        0xffffffff7fffffffull,
    };

    switch (rnd(g, 8)) {
    case 0:
    case 1:
        return interesting[rnd(g, N_INSNS(interesting))];
    case 2:
        return rnd(g, 70);
    case 3:
        return -(uint64_t) rnd(g, 70);
    case 4:
        return (uint32_t) rng_next(&g->rng);
    case 5:
        return (uint64_t) (int64_t) (int32_t) rng_next(&g->rng);
    default:
        return rng_next(&g->rng);
    }
}

static int16_t
gen_slot_off(struct gen *g, int size)
{
    return -8 * g->slots[rnd(g, g->n_slots)] + size * rnd(g, 8 / size);
}

/* Appends a load, store or atomic operation on a slot through base
 * register 'b', which holds fp + 'delta'.  Returns true if it writes
 * 'b'. */
static bool
gen_mem(struct gen *g, int b, int delta)
{
    static const int szs[] = { BPF_B, BPF_H, BPF_W, BPF_DW };
    static const int32_t atomics[] = {
        BPF_ADD, BPF_OR, BPF_AND, BPF_XOR, BPF_ADD | BPF_FETCH,
        BPF_OR | BPF_FETCH, BPF_AND | BPF_FETCH, BPF_XOR | BPF_FETCH,
        BPF_XCHG, BPF_CMPXCHG,
    };
    int d = rnd(g, 10), s = rnd(g, 10), sz = szs[rnd(g, 4)];
    int16_t off;
    int32_t op;

    while (s == b) {
        s = rnd(g, 10);
    }
    switch (rnd(g, 4)) {
    case 0:
        emit(&g->p, LDX(sz, d, b, gen_slot_off(g, size_of(sz)) - delta));
        return d == b;
    case 1:
        emit(&g->p, ST(sz, b, gen_slot_off(g, size_of(sz)) - delta,
                       (int32_t) gen_value(g)));
        return false;
    case 2:
        emit(&g->p, STX(sz, b, s, gen_slot_off(g, size_of(sz)) - delta));
        return false;
    default:
        sz = rnd(g, 2) ? BPF_W : BPF_DW;
        op = atomics[rnd(g, N_INSNS(atomics))];
        off = gen_slot_off(g, size_of(sz)) - delta;
        if (op == BPF_CMPXCHG && b && rnd(g, 2)) {
            /* Make the comparison succeed now and then. */
            emit(&g->p, LDX(sz, 0, b, off));
            if (s == 0) {
                s = 1 + rnd(g, 9);
                s = s != b ? s : s < 9 ? s + 1 : 1;
            }
        }
        emit(&g->p, ATOMIC(sz, op, b, s, off));
        return op == BPF_CMPXCHG && b == 0;
    }
}

/* Generates into 'g->p' a random program: r0-r9 and some stack slots set
 * to random values, then units of ALU, byte swap, ld_imm64, memory and
 * forward jump instructions, then a fold of r0-r9 and the slots into
 * r0. */
static void
gen_program(struct gen *g)
{
    static const uint8_t alu_ops[] = {
        BPF_ADD, BPF_SUB, BPF_MUL, BPF_DIV, BPF_OR, BPF_AND, BPF_LSH,
        BPF_RSH, BPF_NEG, BPF_MOD, BPF_XOR, BPF_MOV, BPF_ARSH,
    };
    static const uint8_t jmp_ops[] = {
        BPF_JEQ, BPF_JGT, BPF_JGE, BPF_JSET, BPF_JNE, BPF_JSGT, BPF_JSGE,
        BPF_JLT, BPF_JLE, BPF_JSLT, BPF_JSLE,
    };
    /* Slots at the ends of the frame and around 8-bit displacements. */
    static const int favourite_slots[] = { 1, 2, 15, 16, 17, 32, 63, 64 };
    uint32_t unit_start[FUZZ_MAX_UNITS + 1], jumps[FUZZ_MAX_UNITS];
    uint32_t jump_unit[FUZZ_MAX_UNITS], n_jumps = 0;
    uint32_t n_units = 4 + rnd(g, FUZZ_MAX_UNITS - 4), u, i;
    int r;

    g->p.n = 0;
    g->n_slots = 1 + rnd(g, FUZZ_MAX_SLOTS);
    for (i = 0; i < (uint32_t) g->n_slots; i++) {
        int k;
        uint32_t j;

    again:
        k = (rnd(g, 2) ? favourite_slots[rnd(g, N_INSNS(favourite_slots))]
             : 1 + (int) rnd(g, 64));
        for (j = 0; j < i; j++) {
            if (g->slots[j] == k) {
                goto again;
            }
        }
        g->slots[i] = k;
    }
    for (r = 0; r < 10; r++) {
        emit_lddw(&g->p, r, gen_value(g));
    }
    for (i = 0; i < (uint32_t) g->n_slots; i++) {
        if (rnd(g, 2)) {
            emit(&g->p, STX(BPF_DW, 10, rnd(g, 10), -8 * g->slots[i]));
        } else {
            emit(&g->p, ST(BPF_DW, 10, -8 * g->slots[i],
                           (int32_t) gen_value(g)));
        }
    }

    for (u = 0; u < n_units; u++) {
        int d = rnd(g, 10), s = rnd(g, 10);
        uint32_t kind = rnd(g, 40);

        unit_start[u] = g->p.n;
        if (kind < 20) {
            uint8_t op = alu_ops[rnd(g, N_INSNS(alu_ops))];
            uint8_t cls = kind < 11 ? BPF_ALU64 : BPF_ALU;
            int32_t imm = (int32_t) gen_value(g);

            if (op == BPF_NEG) {
                emit(&g->p, I(cls | op, d, 0, 0, 0));
            } else if (rnd(g, 2)) {
                if ((op == BPF_DIV || op == BPF_MOD) && s != d
                    && !rnd(g, 4)) {
                    /* A zero divisor (for 32 bits, the low half). */
                    emit_lddw(&g->p, s, rnd(g, 2) ? 0 : gen_value(g) << 32);
                }
                emit(&g->p, I(cls | op | BPF_X, d, s, 0, 0));
            } else {
                if (op == BPF_LSH || op == BPF_RSH || op == BPF_ARSH) {
                    imm = rnd(g, cls == BPF_ALU64 ? 64 : 32);
                } else if ((op == BPF_DIV || op == BPF_MOD) && !imm) {
                    imm = -1 - (int32_t) rnd(g, 8);
                }
                emit(&g->p, I(cls | op | BPF_K, d, 0, 0, imm));
            }
        } else if (kind < 22) {
            static const int bits[] = { 16, 32, 64 };

            emit(&g->p, END(rnd(g, 2) ? BPF_TO_BE : BPF_TO_LE, d,
                            bits[rnd(g, 3)]));
        } else if (kind < 24) {
            emit_lddw(&g->p, d, gen_value(g));
        } else if (kind < 30) {
            gen_mem(g, 10, 0);
        } else if (kind < 32) {
            /* Through a copy of the frame pointer, set back to a scalar
             * afterwards. */
            int b = rnd(g, 10), delta = -8 * (int) rnd(g, 65);

            emit(&g->p, MOV64_X(b, 10));
            if (delta) {
                emit(&g->p, (rnd(g, 2) ? ALU64_K(BPF_ADD, b, delta)
                             : ALU64_K(BPF_SUB, b, -delta)));
            }
            if (!gen_mem(g, b, delta)) {
                emit(&g->p, MOV64_K(b, (int32_t) gen_value(g)));
            }
        } else if (kind < 39) {
            uint8_t op = jmp_ops[rnd(g, N_INSNS(jmp_ops))];
            uint8_t cls = rnd(g, 2) ? BPF_JMP : BPF_JMP32;

            jump_unit[n_jumps] = u;
            jumps[n_jumps++] = g->p.n;
            emit(&g->p, (rnd(g, 2) ? I(cls | op | BPF_X, d, s, 0, 0)
                         : I(cls | op | BPF_K, d, 0, 0,
                             (int32_t) gen_value(g))));
        } else {
            jump_unit[n_jumps] = u;
            jumps[n_jumps++] = g->p.n;
            emit(&g->p, JA(0));
        }
    }
    unit_start[n_units] = g->p.n;
    emit_fold(&g->p, g->slots, g->n_slots);

    /* Forward jumps to the start of a later unit or of the fold. */
    for (i = 0; i < n_jumps; i++) {
        uint32_t from = jump_unit[i];
        uint32_t to = from + 1 + rnd(g, n_units - from);

        g->p.insns[jumps[i]].off = unit_start[to] - jumps[i] - 1;
    }
}

static uint64_t
env_u64(const char *name, uint64_t dflt)
{
    const char *s = getenv(name);

    return s && *s ? strtoull(s, NULL, 0) : dflt;
}

/* Random programs in every mode and in the model.  OKOVM_FUZZ_SEED and
 * OKOVM_FUZZ_N in the environment change the first seed and the number of
 * programs (program i uses seed + i).  With OKOVM_EXPECT_JIT=1, every
 * program must also run as native code in mode "jit". */
TEST(jit_differential)
{
    static struct gen g;
    uint64_t seed = env_u64("OKOVM_FUZZ_SEED", 0x6a09e667f3bcc908ull);
    uint64_t n = env_u64("OKOVM_FUZZ_N", 3000);
    uint64_t i, native = n_native;
    int mismatches = 0;

    for (i = 0; i < n; i++) {
        uint64_t got[N_RUN_MODES], model = 0;
        bool ok[N_RUN_MODES], model_ok, same = true;
        char what[100];
        int m;

        g.rng = seed + i;
        gen_program(&g);
        snprintf(what, sizeof what, "random program %"PRIu64" (seed %#"
                 PRIx64")", i, seed + i);
        model_ok = model_run(g.p.insns, g.p.n, NULL, &model);
        run_modes(what, g.p.insns, g.p.n, NULL, got, ok);
        for (m = 0; m < N_RUN_MODES; m++) {
            same = same && ok[m] && got[m] == model;
        }
        same = same && model_ok;
        if (!same) {
            test_failures++;
            if (mismatches++ < MAX_DUMPS) {
                fprintf(stderr, "%s: model %#"PRIx64"%s", what, model,
                        model_ok ? "" : " (failed)");
                for (m = 0; m < N_RUN_MODES; m++) {
                    fprintf(stderr, ", %s %#"PRIx64"%s", run_mode_name(m),
                            got[m], ok[m] ? "" : " (failed)");
                }
                fprintf(stderr, "\n  rerun with OKOVM_FUZZ_SEED=%#"PRIx64
                        " OKOVM_FUZZ_N=1 okovm-tests jit_differential\n",
                        seed + i);
                dump_prog(g.p.insns, g.p.n);
            }
        }
    }
    native = n_native - native;
    printf("jit_differential: %"PRIu64" random programs, %"PRIu64" ran as "
           "native code\n", n, native);
    if (mismatches) {
        fprintf(stderr, "%d of %"PRIu64" random programs differ\n",
                mismatches, n);
    }
    if (env_u64("OKOVM_EXPECT_JIT", 0) && native != n) {
        fprintf(stderr, "OKOVM_EXPECT_JIT: only %"PRIu64" of %"PRIu64
                " programs ran as native code\n", native, n);
        test_failures++;
    }
}

static void
keep_log(void *aux, int level, const char *msg)
{
    (void) level;
    snprintf(aux, 256, "%s", msg);
}

/* Loads and runs a small program in 'ns'; 0 if it returned 42 and runs
 * as native code exactly when 'expect_jit' (on x86-64; elsewhere it never
 * does), 1 otherwise. */
static int
check_jit_state(struct okovm_ns *ns, bool expect_jit)
{
    static const struct okovm_test_insn p[] = {
        MOV64_K(0, 40), ALU64_K(BPF_ADD, 0, 2), EXIT(),
    };
    static uint8_t pkt[64];
    struct okovm_error err;
    struct okovm_prog *prog;
    int before = test_failures;

    if (okovm_test_load_raw(ns, p, N_INSNS(p), NULL, 0, 0, &prog, &err)) {
        fprintf(stderr, "load failed: %s\n", err.msg);
        return 1;
    }
#if defined(__x86_64__)
    CHECK_EQ(prog_is_jit(prog), expect_jit);
#else
    CHECK(!prog_is_jit(prog));
    (void) expect_jit;
#endif
    CHECK_EQ(run64(prog, pkt, sizeof pkt, 1), 42);
    okovm_prog_unref(prog);
    return test_failures != before;
}

/* Where executable memory is refused (a W^X policy, here a seccomp filter
 * in a child process), programs are loaded anyway and run in the
 * interpreter with the same results, and the log says why. */
TEST(jit_refused_executable_memory)
{
    static char logged[256];
    struct okovm_ns *ns;
    int status = 0;
    pid_t pid;

    if (okovm_ns_create("test", &ns)) {
        abort();
    }
    okovm_ns_set_log(ns, keep_log, logged);
    fflush(NULL);
    pid = fork();
    if (pid == 0) {
        int error;

        test_failures = 0;      /* The child's own, not earlier tests'. */
        error = okovm_test_refuse_exec_memory(EACCES);

        if (error) {
            fprintf(stderr, "seccomp: %s\n", strerror(error));
            _exit(2);
        }
        if (check_jit_state(ns, false)) {
            _exit(1);
        }
#if defined(__x86_64__)
        CHECK_STR(logged, "runs in the interpreter: compiling it to "
                  "native code failed (Permission denied)");
#endif
        _exit(test_failures ? 1 : 0);
    }
    CHECK(pid > 0);
    CHECK_EQ(waitpid(pid, &status, 0), pid);
    CHECK(WIFEXITED(status));
    CHECK_EQ(WEXITSTATUS(status), 0);
    /* The parent, without the filter, compiles. */
    CHECK_EQ(check_jit_state(ns, true), 0);
    okovm_ns_destroy(ns);
}
