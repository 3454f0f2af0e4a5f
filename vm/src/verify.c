/*
 * verify.c -- the structural verifier.
 *
 * It does not prove memory safety (that is the kernel verifier's job, or
 * the sandbox's); it makes sure the instruction stream is well formed and
 * within the contract of this VM:
 *
 *   - every opcode and reserved field is valid, registers are r0-r10 and
 *     r10 is never written;
 *   - jumps stay inside their function and never land on the second half
 *     of an ld_imm64; every function ends with exit or ja and reaches an
 *     exit; bpf-to-bpf calls target function starts, are not recursive
 *     and nest at most 8 deep;
 *   - only helpers of the table in helpers.c are called; map references
 *     are valid;
 *   - loops (back-edges) only when the caller allows them;
 *   - a data-flow pass tracks which registers and stack slots may hold the
 *     context, packet, stack, map or map-value pointers.  With it, stores
 *     through packet or context pointers are refused, constant-offset
 *     stack accesses are bounds-checked, context accesses are checked
 *     against 'struct xdp_md' and marked for rewriting.
 */

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "okovm-private.h"

/* Kinds of value, as a bit set (a register may hold any of several). */
enum {
    K_SCALAR = 1 << 0,
    K_CTX = 1 << 1,
    K_PKT = 1 << 2,
    K_PKT_END = 1 << 3,
    K_STACK = 1 << 4,
    K_MAPVAL = 1 << 5,
    K_MAP = 1 << 6,
};
#define K_PTRS (K_CTX | K_PKT | K_PKT_END | K_STACK | K_MAPVAL | K_MAP)

#define SOFF_NONE INT16_MIN             /* No STACK bit. */
#define SOFF_UNKNOWN (INT16_MIN + 1)    /* Stack pointer, offset unknown. */
#define N_SLOTS (OKOVM_STACK_SIZE / 8)

struct vstate {
    uint8_t kind[11];
    int16_t soff[11];
    int16_t mapi[11];           /* K_MAP: index of the map, or -1. */
    uint8_t slot[N_SLOTS];      /* Slot i: fp - 512 + 8 * i. */
};

struct vfunc {
    uint32_t start;
    uint32_t end;
    struct vstate entry;
    bool entered;
    uint8_t ret_kind;
    int color;                  /* For the call-graph walk. */
};

struct verifier {
    const struct bpf_insn *insns;
    uint32_t n;
    const struct okovm_verify_opts *opts;
    struct okovm_vinfo *info;
    struct okovm_error *err;

    bool *is_start;
    bool *second_half;
    uint32_t *func_of;
    struct vfunc *funcs;
    uint32_t n_funcs;

    struct vstate *st;
    bool *have;
    uint32_t *work;
    bool *queued;
    uint8_t spill_any;
    bool changed;
};

static uint8_t
cls(const struct bpf_insn *in)
{
    return BPF_CLASS(in->code);
}

/* Stores in 'succ' the instructions that may run after instruction 'i'
 * ('in'), which must not be an exit, and returns how many there are (a
 * conditional jump has two; ld_imm64 takes two slots). */
static uint32_t
insn_successors(const struct bpf_insn *in, uint32_t i, uint32_t succ[2])
{
    uint32_t n = 0;

    if (cls(in) == BPF_JMP || cls(in) == BPF_JMP32) {
        if (BPF_OP(in->code) != BPF_CALL) {
            succ[n++] = i + 1 + in->off;
        }
        if (BPF_OP(in->code) != BPF_JA) {
            succ[n++] = i + 1;
        }
    } else {
        succ[n++] = i + (cls(in) == BPF_LD ? 2 : 1);
    }
    return n;
}

static bool
is_pseudo_call(const struct bpf_insn *in)
{
    return in->code == (BPF_JMP | BPF_CALL) && in->src_reg == BPF_PSEUDO_CALL;
}

static int fail(struct verifier *, uint32_t i, int code, const char *fmt,
                ...)
    __attribute__((format(printf, 4, 5)));

/* Refuses the program at instruction 'i' with error 'code' and a message
 * formatted from 'fmt', prefixed with "insn 'i': ".  Returns 'code'. */
static int
fail(struct verifier *v, uint32_t i, int code, const char *fmt, ...)
{
    char why[sizeof v->err->msg];
    va_list args;

    va_start(args, fmt);
    vsnprintf(why, sizeof why, fmt, args);
    va_end(args);
    return okovm_error_set(v->err, code, i, "insn %u: %s", i, why);
}

/* Writes into 'buf' the helpers programs may call ("name id, ..."). */
static const char *
helper_list(char *buf, size_t size)
{
    size_t i, len = 0;

    buf[0] = '\0';
    for (i = 0; i < okovm_n_helpers && len < size; i++) {
        len += snprintf(buf + len, size - len, "%s%s %d", i ? ", " : "",
                        okovm_helpers[i].name, (int) okovm_helpers[i].id);
    }
    return buf;
}

/* Per-instruction checks that need no data flow. */
static int
check_insn(struct verifier *v, uint32_t i)
{
    const struct bpf_insn *in = &v->insns[i];
    uint8_t c = cls(in), op = BPF_OP(in->code);
    bool x = BPF_SRC(in->code) == BPF_X;

    if (in->dst_reg > 10 || in->src_reg > 10) {
        return fail(v, i, EINVAL, "invalid register r%u",
                    in->dst_reg > 10 ? in->dst_reg : in->src_reg);
    }
    switch (c) {
    case BPF_ALU:
    case BPF_ALU64:
        if (in->dst_reg == BPF_REG_10) {
            return fail(v, i, EINVAL, "r10 (frame pointer) is read-only");
        }
        if (op == BPF_END) {
            if (c == BPF_ALU64 || in->src_reg || in->off
                || (in->imm != 16 && in->imm != 32 && in->imm != 64)) {
                return fail(v, i, EINVAL, "invalid byte swap");
            }
            return 0;
        }
        if (op > BPF_END || in->off) {
            return fail(v, i, EINVAL, "invalid ALU opcode %#x", in->code);
        }
        if (op == BPF_NEG) {
            if (x || in->src_reg || in->imm) {
                return fail(v, i, EINVAL, "invalid neg");
            }
            return 0;
        }
        if (x ? in->imm != 0 : in->src_reg != 0) {
            return fail(v, i, EINVAL, "reserved field of ALU insn used");
        }
        if (!x && (op == BPF_DIV || op == BPF_MOD) && !in->imm) {
            return fail(v, i, EINVAL, "division by zero");
        }
        if (!x && (op == BPF_LSH || op == BPF_RSH || op == BPF_ARSH)
            && (uint32_t) in->imm >= (c == BPF_ALU64 ? 64u : 32u)) {
            return fail(v, i, EINVAL, "invalid shift %d", in->imm);
        }
        return 0;

    case BPF_JMP:
    case BPF_JMP32:
        if (op == 0xe0 || op == 0xf0) {
            return fail(v, i, EINVAL, "invalid jump opcode %#x", in->code);
        }
        if (op == BPF_EXIT) {
            if (c == BPF_JMP32 || x || in->dst_reg || in->src_reg
                || in->off || in->imm) {
                return fail(v, i, EINVAL, "invalid exit");
            }
            return 0;
        }
        if (op == BPF_CALL) {
            if (c == BPF_JMP32 || x || in->dst_reg || in->off) {
                return fail(v, i, EINVAL, "invalid call");
            }
            if (in->src_reg == BPF_PSEUDO_CALL) {
                int64_t t = (int64_t) i + 1 + in->imm;

                if (t < 0 || t >= v->n || v->second_half[t]) {
                    return fail(v, i, EINVAL, "call target %"PRId64
                                " out of range", t);
                }
                return 0;
            }
            if (in->src_reg) {
                return fail(v, i, EINVAL, "kfunc calls are not supported");
            }
            if (!okovm_helper_find(in->imm)) {
                char supported[512];

                return fail(v, i, EINVAL, "helper %d is not supported "
                            "(supported: %s)", in->imm,
                            helper_list(supported, sizeof supported));
            }
            return 0;
        }
        if (op == BPF_JA) {
            if (c == BPF_JMP32 || x || in->dst_reg || in->src_reg
                || in->imm) {
                return fail(v, i, EINVAL, "invalid ja");
            }
        } else if (x ? in->imm != 0 : in->src_reg != 0) {
            return fail(v, i, EINVAL, "reserved field of jump insn used");
        }
        return 0;

    case BPF_LDX:
        if (BPF_MODE(in->code) != BPF_MEM || in->imm) {
            return fail(v, i, EINVAL, "invalid load opcode %#x", in->code);
        }
        if (in->dst_reg == BPF_REG_10) {
            return fail(v, i, EINVAL, "r10 (frame pointer) is read-only");
        }
        return 0;

    case BPF_ST:
        if (BPF_MODE(in->code) != BPF_MEM || in->src_reg) {
            return fail(v, i, EINVAL, "invalid store opcode %#x", in->code);
        }
        return 0;

    case BPF_STX:
        if (BPF_MODE(in->code) == BPF_MEM) {
            if (in->imm) {
                return fail(v, i, EINVAL, "reserved field of store used");
            }
            return 0;
        }
        if (BPF_MODE(in->code) != BPF_ATOMIC
            || (BPF_SIZE(in->code) != BPF_W
                && BPF_SIZE(in->code) != BPF_DW)) {
            return fail(v, i, EINVAL, "invalid store opcode %#x", in->code);
        }
        switch (in->imm) {
        case BPF_ADD: case BPF_OR: case BPF_AND: case BPF_XOR:
            return 0;
        case BPF_ADD | BPF_FETCH: case BPF_OR | BPF_FETCH:
        case BPF_AND | BPF_FETCH: case BPF_XOR | BPF_FETCH:
        case BPF_XCHG: case BPF_CMPXCHG:
            if (in->imm != BPF_CMPXCHG && in->src_reg == BPF_REG_10) {
                return fail(v, i, EINVAL, "r10 (frame pointer) is read-only");
            }
            return 0;
        default:
            return fail(v, i, EINVAL, "invalid atomic operation %#x", in->imm);
        }

    case BPF_LD:
        if (in->code != (BPF_LD | BPF_IMM | BPF_DW)) {
            return fail(v, i, EINVAL, "legacy packet access or invalid "
                        "load opcode %#x is not supported", in->code);
        }
        if (i + 1 >= v->n || v->insns[i + 1].code
            || v->insns[i + 1].dst_reg || v->insns[i + 1].src_reg
            || v->insns[i + 1].off || in->off) {
            return fail(v, i, EINVAL, "invalid ld_imm64 pair");
        }
        if (in->dst_reg == BPF_REG_10) {
            return fail(v, i, EINVAL, "r10 (frame pointer) is read-only");
        }
        if (in->src_reg == BPF_PSEUDO_MAP_FD
            || in->src_reg == BPF_PSEUDO_MAP_VALUE) {
            const struct okovm_map *m;

            if (in->imm < 0 || (uint32_t) in->imm >= v->opts->n_maps) {
                return fail(v, i, EINVAL, "invalid map reference %d", in->imm);
            }
            m = v->opts->maps[in->imm];
            if (in->src_reg == BPF_PSEUDO_MAP_FD && v->insns[i + 1].imm) {
                return fail(v, i, EINVAL, "invalid map reference");
            }
            if (in->src_reg == BPF_PSEUDO_MAP_VALUE
                && (m->type != BPF_MAP_TYPE_ARRAY
                    || (uint32_t) v->insns[i + 1].imm >= m->value_size)) {
                return fail(v, i, EINVAL, "invalid direct value access "
                            "to map '%s'", m->name);
            }
        } else if (in->src_reg) {
            return fail(v, i, EINVAL, "unsupported ld_imm64 source %u",
                        in->src_reg);
        }
        return 0;
    }
    return fail(v, i, EINVAL, "invalid opcode %#x", in->code);
}

/* Finds functions, checks control flow. */
static int
check_flow(struct verifier *v)
{
    uint32_t i, f;
    int error;

    for (i = 0; i < v->n; i++) {
        if (v->insns[i].code == (BPF_LD | BPF_IMM | BPF_DW)
            && i + 1 < v->n) {
            v->second_half[i + 1] = true;
            i++;
        }
    }
    v->is_start[0] = true;
    for (i = 0; i < v->n; i++) {
        if (v->second_half[i]) {
            continue;
        }
        error = check_insn(v, i);
        if (error) {
            return error;
        }
        if (is_pseudo_call(&v->insns[i])) {
            v->is_start[i + 1 + v->insns[i].imm] = true;
        }
    }

    for (i = 0; i < v->n; i++) {
        v->n_funcs += v->is_start[i];
    }
    v->funcs = calloc(v->n_funcs, sizeof *v->funcs);
    if (!v->funcs) {
        return ENOMEM;
    }
    for (i = 0, f = 0; i < v->n; i++) {
        if (v->is_start[i]) {
            if (f) {
                v->funcs[f - 1].end = i;
            }
            v->funcs[f++].start = i;
        }
        v->func_of[i] = f - 1;
    }
    v->funcs[f - 1].end = v->n;

    for (f = 0; f < v->n_funcs; f++) {
        const struct vfunc *fn = &v->funcs[f];
        const struct bpf_insn *last = &v->insns[fn->end - 1];

        if (v->second_half[fn->end - 1]
            || (last->code != (BPF_JMP | BPF_EXIT)
                && last->code != (BPF_JMP | BPF_JA))) {
            return fail(v, fn->end - 1, EINVAL, "last instruction of a "
                        "function is not exit or ja (falls through)");
        }
    }

    for (i = 0; i < v->n; i++) {
        const struct bpf_insn *in = &v->insns[i];
        uint8_t op = BPF_OP(in->code);
        const struct vfunc *fn = &v->funcs[v->func_of[i]];
        int64_t t;

        if (v->second_half[i]
            || (cls(in) != BPF_JMP && cls(in) != BPF_JMP32)
            || op == BPF_CALL || op == BPF_EXIT) {
            continue;
        }
        t = (int64_t) i + 1 + in->off;
        if (t < fn->start || t >= fn->end) {
            return fail(v, i, EINVAL, "jump to %"PRId64" out of range "
                        "(function spans %u..%u)", t, fn->start, fn->end - 1);
        }
        if (v->second_half[t]) {
            return fail(v, i, EINVAL, "jump into the middle of ld_imm64 "
                        "at %"PRId64, t - 1);
        }
        if (t <= i) {
            v->info->has_back_edge = true;
            if (!v->opts->allow_back_edges) {
                return fail(v, i, EINVAL, "back-edge to insn %"PRId64
                            " (loop) is only allowed in programs the "
                            "kernel verifier admitted", t);
            }
        }
    }
    return 0;
}

/* Checks the call graph from function 'f' at 'depth' for recursion and
 * depth. */
static int
check_calls(struct verifier *v, uint32_t f, uint32_t depth)
{
    struct vfunc *fn = &v->funcs[f];
    uint32_t i;

    if (depth > OKOVM_MAX_FRAMES) {
        return fail(v, fn->start, EINVAL, "bpf-to-bpf calls nest more "
                    "than 8 deep");
    }
    if (depth > v->info->max_depth) {
        v->info->max_depth = depth;
    }
    fn->color = 1;
    for (i = fn->start; i < fn->end; i++) {
        if (is_pseudo_call(&v->insns[i]) && !v->second_half[i]) {
            uint32_t g = v->func_of[i + 1 + v->insns[i].imm];
            int error;

            if (v->funcs[g].color == 1) {
                return fail(v, i, EINVAL, "recursive bpf-to-bpf call");
            }
            error = check_calls(v, g, depth + 1);
            if (error) {
                return error;
            }
        }
    }
    fn->color = 0;
    return 0;
}

/* Checks that every function can reach an exit. */
static int
check_exits(struct verifier *v)
{
    uint32_t f;

    for (f = 0; f < v->n_funcs; f++) {
        const struct vfunc *fn = &v->funcs[f];
        uint32_t n_work = 0, i;
        bool found = false;

        memset(v->queued, 0, v->n * sizeof *v->queued);
        v->work[n_work++] = fn->start;
        v->queued[fn->start] = true;
        while (n_work && !found) {
            const struct bpf_insn *in;
            uint32_t succ[2], n_succ, s;
            uint8_t op;

            i = v->work[--n_work];
            in = &v->insns[i];
            op = BPF_OP(in->code);
            if ((cls(in) == BPF_JMP || cls(in) == BPF_JMP32)
                && op == BPF_EXIT) {
                found = true;
                break;
            }
            n_succ = insn_successors(in, i, succ);
            for (s = 0; s < n_succ; s++) {
                if (succ[s] < fn->end && !v->queued[succ[s]]) {
                    v->queued[succ[s]] = true;
                    v->work[n_work++] = succ[s];
                }
            }
        }
        if (!found) {
            return fail(v, fn->start, EINVAL, "function never reaches "
                        "exit");
        }
    }
    return 0;
}

/* Data flow. */

static void
state_init(struct vstate *s)
{
    int i;

    for (i = 0; i < 11; i++) {
        s->kind[i] = K_SCALAR;
        s->soff[i] = SOFF_NONE;
        s->mapi[i] = -1;
    }
    s->kind[BPF_REG_10] = K_STACK;
    s->soff[BPF_REG_10] = 0;
    memset(s->slot, K_SCALAR, sizeof s->slot);
}

static bool
state_merge(struct vstate *dst, const struct vstate *src)
{
    bool changed = false;
    int i;

    for (i = 0; i < 11; i++) {
        uint8_t k = dst->kind[i] | src->kind[i];
        int16_t o = dst->soff[i];

        if (o == SOFF_NONE) {
            o = src->soff[i];
        } else if (src->soff[i] != SOFF_NONE && src->soff[i] != o) {
            o = SOFF_UNKNOWN;
        }
        if (k != dst->kind[i] || o != dst->soff[i]) {
            dst->kind[i] = k;
            dst->soff[i] = o;
            changed = true;
        }
        if (dst->mapi[i] != src->mapi[i] && dst->mapi[i] != -1) {
            dst->mapi[i] = -1;
            changed = true;
        }
    }
    for (i = 0; i < N_SLOTS; i++) {
        uint8_t k = dst->slot[i] | src->slot[i];

        if (k != dst->slot[i]) {
            dst->slot[i] = k;
            changed = true;
        }
    }
    return changed;
}

static void
set_reg(struct vstate *s, int r, uint8_t kind, int16_t soff)
{
    s->kind[r] = kind ? kind : K_SCALAR;
    s->soff[r] = (s->kind[r] & K_STACK) ? soff : SOFF_NONE;
    s->mapi[r] = -1;
}

/* Records that the stack is reached at 'soff' (relative to the frame
 * pointer), for okovm_vinfo's 'stack_depth'. */
static void
note_stack(struct verifier *v, int16_t soff)
{
    if (soff == SOFF_UNKNOWN) {
        v->info->var_stack = true;
    } else if (soff != SOFF_NONE && soff < 0
               && (uint32_t) -soff > v->info->stack_depth) {
        v->info->stack_depth = -soff;
    }
}

/* Names the pointer kinds in 'kind' for messages. */
static const char *
ptr_name(uint8_t kind)
{
    return (kind & K_CTX ? "context"
            : kind & (K_PKT | K_PKT_END) ? "packet"
            : kind & K_STACK ? "stack"
            : kind & K_MAPVAL ? "map value"
            : kind & K_MAP ? "map" : "scalar");
}

static int16_t
soff_add(int16_t soff, int64_t delta)
{
    int64_t o;

    if (soff == SOFF_NONE || soff == SOFF_UNKNOWN) {
        return soff;
    }
    o = soff + delta;
    return (o < -4096 || o > 4096) ? SOFF_UNKNOWN : (int16_t) o;
}

/* Checks a constant-offset stack access of 'size' bytes at 'addr' (relative
 * to the frame pointer). */
static int
check_stack(struct verifier *v, uint32_t i, int64_t addr, int size)
{
    if (addr < -OKOVM_STACK_SIZE || addr + size > 0) {
        return fail(v, i, EINVAL, "stack access out of bounds (fp%+"PRId64
                    ", %d bytes; the stack is 512 bytes below fp)", addr,
                    size);
    }
    return 0;
}

static int
size_bytes(uint8_t code)
{
    switch (BPF_SIZE(code)) {
    case BPF_B: return 1;
    case BPF_H: return 2;
    case BPF_W: return 4;
    default: return 8;
    }
}

/* Result kind of a context load at 'off' of 'size' bytes, or 0 if the
 * access is invalid. */
static uint8_t
ctx_load_kind(int64_t off, int size)
{
    if ((off == 0 || off == 4 || off == 8) && size == 4) {
        return off == 4 ? K_PKT_END : K_PKT;
    }
    if (off >= 12 && off < 24 && size <= 4 && off % size == 0) {
        return K_SCALAR;
    }
    return 0;
}

/* Applies a store of 'kind' through register 'base' at 'off'. */
static int
do_store(struct verifier *v, uint32_t i, struct vstate *s, int base,
         int64_t off, int size, uint8_t kind)
{
    uint8_t bk = s->kind[base];
    int j;

    if (bk & (K_PKT | K_PKT_END)) {
        return fail(v, i, EACCES, "write into packet: packets are "
                    "read-only in this datapath");
    }
    if (bk & K_CTX) {
        return fail(v, i, EACCES, "write into the context (struct xdp_md)");
    }
    if (bk & K_MAP) {
        return fail(v, i, EACCES, "write into a map pointer");
    }
    if (kind & K_PTRS && bk & ~K_STACK) {
        return fail(v, i, EINVAL, "stores a %s pointer into memory other "
                    "than the stack (a map value): that leaks addr",
                    ptr_name(kind));
    }
    if (size == 8) {
        v->spill_any |= kind;
    }
    if (!(bk & K_STACK)) {
        return 0;
    }
    note_stack(v, soff_add(s->soff[base], off));
    if (s->soff[base] == SOFF_UNKNOWN) {
        for (j = 0; j < N_SLOTS; j++) {
            s->slot[j] |= kind | K_SCALAR;
        }
    } else {
        int64_t addr = s->soff[base] + off;
        int error = check_stack(v, i, addr, size);
        int first = (addr + OKOVM_STACK_SIZE) / 8;
        int last = (addr + size - 1 + OKOVM_STACK_SIZE) / 8;
        bool strong = bk == K_STACK;

        if (error) {
            return error;
        }
        for (j = first; j <= last; j++) {
            uint8_t k = (size == 8 && addr % 8 == 0) ? kind : K_SCALAR;

            s->slot[j] = strong ? k : s->slot[j] | k;
        }
    }
    return 0;
}

/* Applies a load through register 'base' and returns the loaded kind. */
static int
do_load(struct verifier *v, uint32_t i, struct vstate *s, int base,
        int64_t off, int size, uint8_t *kindp)
{
    uint8_t bk = s->kind[base];
    uint8_t k = 0;

    if (bk & K_CTX) {
        uint8_t ck = ctx_load_kind(off, size);

        if (bk == K_CTX && !ck) {
            return fail(v, i, EINVAL, "invalid access to the context "
                        "(struct xdp_md) at offset %"PRId64", %d bytes; "
                        "readable: data (0), data_end (4), data_meta (8) "
                        "as u32, ingress_ifindex (12), rx_queue_index "
                        "(16), egress_ifindex (20)", off, size);
        }
        v->info->ctx_access[i] = bk == K_CTX ? OKOVM_CTX_REWRITE
                                             : OKOVM_CTX_DYNAMIC;
        k |= ck ? ck : K_SCALAR;
    }
    if (bk & K_STACK) {
        note_stack(v, soff_add(s->soff[base], off));
        if (s->soff[base] == SOFF_UNKNOWN) {
            k |= K_SCALAR | (size == 8 ? v->spill_any : 0);
        } else {
            int64_t addr = s->soff[base] + off;
            int error = check_stack(v, i, addr, size);

            if (error) {
                return error;
            }
            if (size == 8 && addr % 8 == 0) {
                k |= s->slot[(addr + OKOVM_STACK_SIZE) / 8];
            } else {
                int first = (addr + OKOVM_STACK_SIZE) / 8;
                int last = (addr + size - 1 + OKOVM_STACK_SIZE) / 8;
                int j;

                for (j = first; j <= last; j++) {
                    if (s->slot[j] & K_PTRS & ~K_SCALAR) {
                        return fail(v, i, EINVAL, "reads %d byte(s) of "
                                    "a spilled %s pointer at fp%+"PRId64
                                    ": that leaks addr", size,
                                    ptr_name(s->slot[j]), addr);
                    }
                }
                k |= K_SCALAR;
            }
        }
    }
    if (bk & ~(K_CTX | K_STACK)) {
        k |= K_SCALAR;
    }
    *kindp = k;
    return 0;
}

/* Checks that the stack buffer of 'size' bytes that register 'r' points
 * to at helper call 'i' holds no spilled pointer. */
static int
check_stack_buf(struct verifier *v, uint32_t i, const struct vstate *s,
                int r, uint32_t size, const char *what)
{
    int64_t addr;
    int first, last, j;

    if (s->kind[r] != K_STACK || s->soff[r] == SOFF_UNKNOWN || !size) {
        return 0;
    }
    addr = s->soff[r];
    if (addr < -OKOVM_STACK_SIZE || addr + size > 0) {
        return 0;                   /* The kernel verifier refuses it. */
    }
    first = (addr + OKOVM_STACK_SIZE) / 8;
    last = (addr + size - 1 + OKOVM_STACK_SIZE) / 8;
    for (j = first; j <= last; j++) {
        if (s->slot[j] & K_PTRS) {
            return fail(v, i, EINVAL, "the map %s at fp%+"PRId64" (%u "
                        "bytes) may hold a spilled %s pointer: that "
                        "leaks addr into the map", what, addr, size,
                        ptr_name(s->slot[j]));
        }
    }
    return 0;
}

/* Checks the stack buffers that the map helper call 'i' reads as keys
 * and values (its OKOVM_ARG_MAP_KEY and OKOVM_ARG_MAP_VALUE arguments). */
static int
check_helper_bufs(struct verifier *v, uint32_t i, const struct vstate *s,
                  const struct okovm_helper *h)
{
    const struct okovm_map *m = NULL;
    int a, error = 0;

    for (a = 0; a < 5 && !error; a++) {
        int r = BPF_REG_1 + a;

        switch (h->args[a]) {
        case OKOVM_ARG_MAP:
            m = (s->kind[r] == K_MAP && s->mapi[r] >= 0
                 && (uint32_t) s->mapi[r] < v->opts->n_maps
                 ? v->opts->maps[s->mapi[r]] : NULL);
            break;
        case OKOVM_ARG_MAP_KEY:
            if (m) {
                error = check_stack_buf(v, i, s, r, m->key_size, "key");
            }
            break;
        case OKOVM_ARG_MAP_VALUE:
            if (m) {
                error = check_stack_buf(v, i, s, r, m->value_size,
                                        "value");
            }
            break;
        case OKOVM_ARG_NONE:
        case OKOVM_ARG_ANYTHING:
        case OKOVM_ARG_MEM:
        case OKOVM_ARG_MEM_SIZE:
            break;
        }
    }
    return error;
}

/* Computes in 's' the state after instruction 'i' of function 'f'. */
static int
transfer(struct verifier *v, uint32_t i, struct vstate *s)
{
    const struct bpf_insn *in = &v->insns[i];
    uint8_t c = cls(in), op = BPF_OP(in->code);
    int d = in->dst_reg, r = in->src_reg;
    uint8_t k = 0;
    int error, j;

    switch (c) {
    case BPF_ALU64:
        if (op == BPF_MOV) {
            if (BPF_SRC(in->code) == BPF_X) {
                set_reg(s, d, s->kind[r], s->soff[r]);
                s->mapi[d] = s->mapi[r];
            } else {
                set_reg(s, d, K_SCALAR, SOFF_NONE);
            }
        } else if ((op == BPF_ADD || op == BPF_SUB)
                   && BPF_SRC(in->code) == BPF_K) {
            set_reg(s, d, s->kind[d], soff_add(s->soff[d],
                                               op == BPF_ADD ? in->imm
                                                             : -(int64_t)
                                                               in->imm));
            if (s->kind[d] & K_STACK) {
                /* Helpers may read the stack from here up. */
                note_stack(v, s->soff[d]);
            }
        } else if (op == BPF_ADD) {
            k = (s->kind[d] | s->kind[r]) & K_PTRS;
            if ((s->kind[d] & K_SCALAR) && (s->kind[r] & K_SCALAR)) {
                k |= K_SCALAR;
            }
            set_reg(s, d, k, SOFF_UNKNOWN);
        } else if (op == BPF_SUB) {
            uint8_t kd = s->kind[d] & K_PTRS, kr = s->kind[r] & K_PTRS;

            if (kd && kr && !(!((kd | kr) & ~(K_PKT | K_PKT_END))
                              || (kd == K_STACK && kr == K_STACK))) {
                return fail(v, i, EINVAL, "subtracts a %s pointer from a "
                            "%s pointer: the difference of unrelated "
                            "pointers leaks addr", ptr_name(kr), ptr_name(kd));
            }
            k = (s->kind[r] & K_SCALAR) ? s->kind[d] : K_SCALAR;
            set_reg(s, d, k, SOFF_UNKNOWN);
        } else {
            set_reg(s, d, K_SCALAR, SOFF_NONE);
        }
        return 0;

    case BPF_ALU:
        set_reg(s, d, K_SCALAR, SOFF_NONE);
        return 0;

    case BPF_LD:
        k = (in->src_reg == BPF_PSEUDO_MAP_FD ? K_MAP
             : in->src_reg == BPF_PSEUDO_MAP_VALUE ? K_MAPVAL : K_SCALAR);
        set_reg(s, d, k, SOFF_NONE);
        if (k == K_MAP) {
            s->mapi[d] = in->imm;
        }
        return 0;

    case BPF_LDX:
        error = do_load(v, i, s, r, in->off, size_bytes(in->code), &k);
        if (error) {
            return error;
        }
        set_reg(s, d, k, SOFF_UNKNOWN);
        return 0;

    case BPF_ST:
        return do_store(v, i, s, d, in->off, size_bytes(in->code),
                        K_SCALAR);

    case BPF_STX:
        if (BPF_MODE(in->code) == BPF_ATOMIC) {
            if (s->kind[r] & K_PTRS) {
                return fail(v, i, EINVAL, "atomic operation with a %s "
                            "pointer operand: that leaks addr",
                            ptr_name(s->kind[r]));
            }
            error = do_store(v, i, s, d, in->off, size_bytes(in->code),
                             K_SCALAR);
            if (in->imm == BPF_CMPXCHG) {
                set_reg(s, BPF_REG_0, K_SCALAR, SOFF_NONE);
            } else if (in->imm & BPF_FETCH) {
                set_reg(s, r, K_SCALAR, SOFF_NONE);
            }
            return error;
        }
        return do_store(v, i, s, d, in->off, size_bytes(in->code),
                        s->kind[r]);

    case BPF_JMP:
        if (op == BPF_CALL) {
            if (in->src_reg == BPF_PSEUDO_CALL) {
                struct vfunc *callee = &v->funcs[v->func_of[i + 1 + in->imm]];
                struct vstate e;
                bool stack_arg = false;

                state_init(&e);
                for (j = 1; j <= 5; j++) {
                    e.kind[j] = s->kind[j];
                    e.soff[j] = s->soff[j] == SOFF_NONE ? SOFF_NONE
                                                        : SOFF_UNKNOWN;
                    stack_arg |= (s->kind[j] & K_STACK) != 0;
                }
                if (!callee->entered) {
                    callee->entry = e;
                    callee->entered = true;
                    v->changed = true;
                } else if (state_merge(&callee->entry, &e)) {
                    v->changed = true;
                }
                if (stack_arg) {
                    for (j = 0; j < N_SLOTS; j++) {
                        s->slot[j] |= v->spill_any;
                    }
                }
                set_reg(s, BPF_REG_0, callee->ret_kind, SOFF_UNKNOWN);
            } else {
                const struct okovm_helper *h = okovm_helper_find(in->imm);

                error = check_helper_bufs(v, i, s, h);
                if (error) {
                    return error;
                }
                set_reg(s, BPF_REG_0,
                        h->ret == OKOVM_RET_MAP_VALUE_OR_NULL
                        ? K_MAPVAL | K_SCALAR : K_SCALAR, SOFF_NONE);
            }
            for (j = 1; j <= 5; j++) {
                set_reg(s, j, K_SCALAR, SOFF_NONE);
            }
        } else if (op == BPF_EXIT) {
            struct vfunc *fn = &v->funcs[v->func_of[i]];
            uint8_t rk = fn->ret_kind | s->kind[BPF_REG_0];

            if (v->func_of[i] == 0 && s->kind[BPF_REG_0] & K_PTRS) {
                return fail(v, i, EINVAL, "the program may return a %s "
                            "pointer as its verdict (R0 leaks addr as "
                            "return value)", ptr_name(s->kind[BPF_REG_0]));
            }
            if (rk != fn->ret_kind) {
                fn->ret_kind = rk;
                v->changed = true;
            }
        }
        return 0;

    default:
        return 0;
    }
}

static void
push(struct verifier *v, uint32_t *n_work, uint32_t i)
{
    if (!v->queued[i]) {
        v->queued[i] = true;
        v->work[(*n_work)++] = i;
    }
}

/* Propagates states through function 'f'. */
static int
flow_func(struct verifier *v, uint32_t f)
{
    struct vfunc *fn = &v->funcs[f];
    uint32_t n_work = 0, i;

    if (!fn->entered) {
        return 0;
    }
    if (!v->have[fn->start]) {
        v->st[fn->start] = fn->entry;
        v->have[fn->start] = true;
    } else {
        state_merge(&v->st[fn->start], &fn->entry);
    }
    for (i = fn->start; i < fn->end; i++) {
        if (v->have[i]) {
            push(v, &n_work, i);
        }
    }
    while (n_work) {
        const struct bpf_insn *in;
        struct vstate s;
        uint32_t succ[2], n_succ, j;
        uint8_t op;
        int error;

        i = v->work[--n_work];
        v->queued[i] = false;
        in = &v->insns[i];
        op = BPF_OP(in->code);
        s = v->st[i];
        error = transfer(v, i, &s);
        if (error) {
            return error;
        }
        if ((cls(in) == BPF_JMP || cls(in) == BPF_JMP32) && op == BPF_EXIT) {
            continue;
        }
        n_succ = insn_successors(in, i, succ);
        for (j = 0; j < n_succ; j++) {
            uint32_t t = succ[j];
            struct vstate *ns = &s, refined;

            if (t >= fn->end) {
                continue;
            }
            /* On the edge where "if rX == 0" holds, rX is not a
             * pointer (a NULL map value is the scalar 0). */
            if (n_succ == 2 && BPF_SRC(in->code) == BPF_K && !in->imm
                && cls(in) == BPF_JMP
                && ((op == BPF_JEQ && j == 0) || (op == BPF_JNE && j == 1))
                && s.kind[in->dst_reg] & K_PTRS) {
                refined = s;
                set_reg(&refined, in->dst_reg, K_SCALAR, SOFF_NONE);
                ns = &refined;
            }
            if (!v->have[t]) {
                v->st[t] = *ns;
                v->have[t] = true;
                push(v, &n_work, t);
            } else if (state_merge(&v->st[t], ns)) {
                push(v, &n_work, t);
            }
        }
    }
    return 0;
}

static int
check_flow_types(struct verifier *v)
{
    struct vfunc *main_fn = &v->funcs[0];
    int rounds = 0;

    state_init(&main_fn->entry);
    main_fn->entry.kind[BPF_REG_1] = K_CTX;
    main_fn->entered = true;
    memset(v->queued, 0, v->n * sizeof *v->queued);
    do {
        uint8_t spill = v->spill_any;
        uint32_t f;

        v->changed = false;
        for (f = 0; f < v->n_funcs; f++) {
            int error = flow_func(v, f);

            if (error) {
                return error;
            }
        }
        if (spill != v->spill_any) {
            v->changed = true;
        }
    } while (v->changed && ++rounds < 1000);
    return 0;
}

/* Verifies the 'n' linked instructions 'insns' according to 'opts'.
 * On success returns 0 and fills 'info' (free with okovm_vinfo_free());
 * otherwise returns a positive errno and fills 'err'. */
int
okovm_verify(const struct bpf_insn *insns, uint32_t n,
             const struct okovm_verify_opts *opts, struct okovm_vinfo *info,
             struct okovm_error *err)
{
    struct verifier v;
    int error;

    memset(info, 0, sizeof *info);
    if (!n) {
        return okovm_error_set(err, EINVAL, -1, "empty program");
    }
    if (n > OKOVM_MAX_INSNS) {
        return okovm_error_set(err, E2BIG, -1, "program too large (%u "
                               "instructions, at most %d)", n,
                               OKOVM_MAX_INSNS);
    }
    memset(&v, 0, sizeof v);
    v.insns = insns;
    v.n = n;
    v.opts = opts;
    v.info = info;
    v.err = err;
    info->ctx_access = calloc(n, 1);
    v.is_start = calloc(n, sizeof *v.is_start);
    v.second_half = calloc(n, sizeof *v.second_half);
    v.func_of = calloc(n, sizeof *v.func_of);
    v.st = malloc(n * sizeof *v.st);
    v.have = calloc(n, sizeof *v.have);
    v.work = malloc(n * sizeof *v.work);
    v.queued = calloc(n, sizeof *v.queued);
    if (!info->ctx_access || !v.is_start || !v.second_half || !v.func_of
        || !v.st || !v.have || !v.work || !v.queued) {
        error = okovm_error_set(err, ENOMEM, -1, "out of memory");
        goto out;
    }
    error = check_flow(&v);
    if (!error) {
        error = check_calls(&v, 0, 1);
    }
    if (!error) {
        error = check_exits(&v);
    }
    if (!error) {
        error = check_flow_types(&v);
    }
    if (error == ENOMEM) {
        okovm_error_set(err, ENOMEM, -1, "out of memory");
    }

out:
    free(v.is_start);
    free(v.second_half);
    free(v.func_of);
    free(v.funcs);
    free(v.st);
    free(v.have);
    free(v.work);
    free(v.queued);
    if (error) {
        okovm_vinfo_free(info);
    }
    return error;
}

void
okovm_vinfo_free(struct okovm_vinfo *info)
{
    free(info->ctx_access);
    info->ctx_access = NULL;
}
