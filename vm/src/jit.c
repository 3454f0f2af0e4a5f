/*
 * jit.c -- native x86-64 code for verified programs.
 *
 * Only programs whose memory safety and termination were proved (by the
 * kernel verifier, or trusted test programs) are compiled: the code has no
 * run-time checks, exactly like okovm_exec_fast(), and must give the same
 * results.  Where no JIT exists (other architectures) or compiling fails
 * (out of memory, W^X policies that refuse executable mappings), the
 * program stays with the interpreter.
 *
 * Register mapping, chosen so that BPF's calling convention is the
 * System V one (as the kernel's JIT does):
 *
 *     R0 rax   R1 rdi   R2 rsi   R3 rdx   R4 rcx   R5 r8
 *     R6 rbx   R7 r13   R8 r14   R9 r15   R10 rbp (frame pointer)
 *
 * r12 holds the 'struct okovm_run' for the whole run; r9, r10 and r11
 * are scratch.  Helpers are called through their C functions in the
 * table of helpers.c, which take R1-R5 and the run (in r9, the sixth
 * argument), so BPF's arguments are already in place; but where the
 * map of a bpf_map_lookup_elem() call is known when compiling
 * (find_lookup_maps()), an array lookup is inlined and a hash lookup
 * calls the map's own function for its key size.  BPF-to-BPF calls
 * are native calls: the caller saves R6-R10 on the machine stack and
 * moves R10 down one 512-byte frame; a call that would leave the frame
 * area ends the run with verdict 0, as the interpreter does.  The stack
 * pointer is 16-byte aligned in every BPF function body, so helper calls
 * need no adjustment.
 *
 * Code is emitted twice: the first pass learns where each instruction
 * starts (every jump has a 32-bit displacement, so sizes do not depend
 * on targets), the second writes the final bytes.
 */

#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "okovm-private.h"

#if defined(__x86_64__)

/* Machine registers. */
enum {
    RAX = 0, RCX = 1, RDX = 2, RBX = 3, RSP = 4, RBP = 5, RSI = 6, RDI = 7,
    R8 = 8, R9 = 9, R10 = 10, R11 = 11, R12 = 12, R13 = 13, R14 = 14,
    R15 = 15,
};

static const uint8_t reg_map[16] = {
    RAX, RDI, RSI, RDX, RCX, R8, RBX, R13, R14, R15, RBP,
};

/* The run, the scratch registers. */
#define RUN R12
#define T1 R10
#define T2 R11

/* Flags for the emitters. */
enum {
    W = 1,                      /* 64-bit operand (REX.W). */
    P66 = 2,                    /* 16-bit operand prefix. */
    BYTE = 4,                   /* Byte registers: always a REX prefix. */
    LOCK = 8,                   /* LOCK prefix. */
};

/* Condition codes of Jcc. */
enum {
    CC_B = 0x2, CC_AE = 0x3, CC_E = 0x4, CC_NE = 0x5, CC_BE = 0x6,
    CC_A = 0x7, CC_L = 0xc, CC_GE = 0xd, CC_LE = 0xe, CC_G = 0xf,
};

struct jit {
    uint8_t *buf;
    size_t len;
    size_t cap;
    bool oom;
    bool final;                 /* Second pass: targets known. */
    uint32_t *addr;             /* Start of each instruction's code. */
    uint32_t epilogue;
    uint32_t abort;
    const char *why;            /* Reason compiling gave up. */
    struct okovm_map **lookup_maps; /* See find_lookup_maps(). */
};

static void
emit1(struct jit *j, uint8_t b)
{
    if (j->len == j->cap) {
        size_t cap = j->cap ? j->cap * 2 : 4096;
        uint8_t *p = realloc(j->buf, cap);

        if (!p) {
            j->oom = true;
            j->len = 0;
            return;
        }
        j->buf = p;
        j->cap = cap;
    }
    j->buf[j->len++] = b;
}

static void
emit4(struct jit *j, uint32_t v)
{
    int i;

    for (i = 0; i < 4; i++) {
        emit1(j, v >> (8 * i));
    }
}

static void
emit8(struct jit *j, uint64_t v)
{
    emit4(j, v);
    emit4(j, v >> 32);
}

/* Legacy prefixes, REX and the opcode (one byte, or two with 0x0f). */
static void
emit_head(struct jit *j, int flags, unsigned op, int reg, int rm)
{
    uint8_t rex = 0x40 | ((flags & W) ? 8 : 0) | ((reg & 8) ? 4 : 0)
                  | ((rm & 8) ? 1 : 0);

    if (flags & LOCK) {
        emit1(j, 0xf0);
    }
    if (flags & P66) {
        emit1(j, 0x66);
    }
    if (rex != 0x40 || ((flags & BYTE) && (reg >= 4 || rm >= 4))) {
        emit1(j, rex);
    }
    if (op > 0xff) {
        emit1(j, op >> 8);
    }
    emit1(j, op);
}

/* 'op' with register operands: ModRM.reg = 'reg', ModRM.rm = 'rm'. */
static void
op_rr(struct jit *j, int flags, unsigned op, int reg, int rm)
{
    emit_head(j, flags, op, reg, rm);
    emit1(j, 0xc0 | ((reg & 7) << 3) | (rm & 7));
}

/* 'op' with a memory operand [base + disp]: ModRM.reg = 'reg'. */
static void
op_rm(struct jit *j, int flags, unsigned op, int reg, int base, int32_t disp)
{
    bool short_disp = disp >= -128 && disp <= 127;

    emit_head(j, flags, op, reg, base);
    emit1(j, (short_disp ? 0x40 : 0x80) | ((reg & 7) << 3) | (base & 7));
    if ((base & 7) == RSP) {
        emit1(j, 0x24);         /* SIB: base only. */
    }
    if (short_disp) {
        emit1(j, disp);
    } else {
        emit4(j, disp);
    }
}

static void
mov_rr(struct jit *j, int flags, int dst, int src)
{
    op_rr(j, flags, 0x89, src, dst);
}

/* dst = sign-extended 'imm' (W) or zero-extended 'imm'. */
static void
mov_ri(struct jit *j, int flags, int dst, int32_t imm)
{
    if (flags & W) {
        op_rr(j, W, 0xc7, 0, dst);
    } else {
        emit_head(j, 0, 0xb8 + (dst & 7), 0, dst);
    }
    emit4(j, imm);
}

static void
mov_ri64(struct jit *j, int dst, uint64_t imm)
{
    emit_head(j, W, 0xb8 + (dst & 7), 0, dst);
    emit8(j, imm);
}

static void
push(struct jit *j, int r)
{
    emit_head(j, 0, 0x50 + (r & 7), 0, r);
}

static void
pop(struct jit *j, int r)
{
    emit_head(j, 0, 0x58 + (r & 7), 0, r);
}

/* A jump with a 32-bit displacement to code offset 'target' (unknown in
 * the first pass). */
static void
jump_to(struct jit *j, int cc, uint32_t target)
{
    uint32_t end;

    if (cc < 0) {
        emit1(j, 0xe9);
        end = j->len + 4;
    } else {
        emit1(j, 0x0f);
        emit1(j, 0x80 + cc);
        end = j->len + 4;
    }
    emit4(j, j->final ? target - end : 0);
}

/* Short forward jumps inside one instruction's code: jcc8() emits the
 * jump and returns where its displacement is, land8() makes it jump
 * here. */
static size_t
jcc8(struct jit *j, int cc)
{
    emit1(j, cc < 0 ? 0xeb : 0x70 + cc);
    emit1(j, 0);
    return j->len - 1;
}

static void
land8(struct jit *j, size_t at)
{
    if (!j->oom) {
        j->buf[at] = j->len - (at + 1);
    }
}

/* BPF ALU operation 'op' (BPF_ADD...) to the x86 "op r/m, r" opcode and
 * the group-1 extension for immediates; 0xff where there is none. */
static const uint8_t alu_rr[16] = {
    [BPF_ADD >> 4] = 0x01, [BPF_SUB >> 4] = 0x29, [BPF_OR >> 4] = 0x09,
    [BPF_AND >> 4] = 0x21, [BPF_XOR >> 4] = 0x31, [BPF_MOV >> 4] = 0x89,
};
static const uint8_t alu_ext[16] = {
    [BPF_ADD >> 4] = 0, [BPF_SUB >> 4] = 5, [BPF_OR >> 4] = 1,
    [BPF_AND >> 4] = 4, [BPF_XOR >> 4] = 6,
};
static const uint8_t shift_ext[16] = {
    [BPF_LSH >> 4] = 4, [BPF_RSH >> 4] = 5, [BPF_ARSH >> 4] = 7,
};
static const uint8_t jmp_cc[16] = {
    [BPF_JEQ >> 4] = CC_E, [BPF_JGT >> 4] = CC_A, [BPF_JGE >> 4] = CC_AE,
    [BPF_JSET >> 4] = CC_NE, [BPF_JNE >> 4] = CC_NE, [BPF_JSGT >> 4] = CC_G,
    [BPF_JSGE >> 4] = CC_GE, [BPF_JLT >> 4] = CC_B, [BPF_JLE >> 4] = CC_BE,
    [BPF_JSLT >> 4] = CC_L, [BPF_JSLE >> 4] = CC_LE,
};

/* Division and modulo: BPF divides unsigned and defines division by zero
 * (quotient 0, remainder the dividend).  x86's div uses rax and rdx,
 * which hold R0 and R3: they are saved around it. */
static void
emit_div(struct jit *j, int w, bool mod, int dst, bool isx, int src,
         int32_t imm)
{
    size_t to_zero, to_done;

    if (isx) {
        mov_rr(j, w, T2, src);
    } else {
        mov_ri(j, w, T2, imm);
    }
    push(j, RAX);
    push(j, RDX);
    mov_rr(j, w, RAX, dst);
    op_rr(j, 0, 0x31, RDX, RDX);            /* xor edx, edx */
    op_rr(j, w, 0x85, T2, T2);              /* test t2, t2 */
    to_zero = jcc8(j, CC_E);
    op_rr(j, w, 0xf7, 6, T2);               /* div t2 */
    mov_rr(j, W, T1, mod ? RDX : RAX);
    to_done = jcc8(j, -1);
    land8(j, to_zero);
    if (mod) {
        mov_rr(j, w, T1, RAX);              /* The (truncated) dividend. */
    } else {
        op_rr(j, 0, 0x31, T1, T1);
    }
    land8(j, to_done);
    pop(j, RDX);
    pop(j, RAX);
    mov_rr(j, W, dst, T1);
}

/* Shift 'dst' by register 'src' (count in cl; R4 is rcx). */
static void
emit_shift_x(struct jit *j, int w, int ext, int dst, int src)
{
    if (src == RCX && dst != RCX) {
        op_rr(j, w, 0xd3, ext, dst);
        if (!w) {
            mov_rr(j, 0, dst, dst);         /* Zero-extend even if cl=0. */
        }
        return;
    }
    mov_rr(j, W, T1, RCX);
    mov_rr(j, W, T2, dst);
    mov_rr(j, W, RCX, src);
    op_rr(j, w, 0xd3, ext, T2);
    mov_rr(j, W, RCX, T1);
    mov_rr(j, w, dst, T2);
}

static void
emit_alu(struct jit *j, const struct bpf_insn *in)
{
    int w = BPF_CLASS(in->code) == BPF_ALU64 ? W : 0;
    int dst = reg_map[in->dst_reg], src = reg_map[in->src_reg & 0xf];
    bool isx = BPF_SRC(in->code) == BPF_X;
    uint8_t op = BPF_OP(in->code);

    switch (op) {
    case BPF_ADD:
    case BPF_SUB:
    case BPF_OR:
    case BPF_AND:
    case BPF_XOR:
        if (isx) {
            op_rr(j, w, alu_rr[op >> 4], src, dst);
        } else {
            op_rr(j, w, 0x81, alu_ext[op >> 4], dst);
            emit4(j, in->imm);
        }
        break;
    case BPF_MOV:
        if (isx) {
            mov_rr(j, w, dst, src);
        } else {
            mov_ri(j, w, dst, in->imm);
        }
        break;
    case BPF_MUL:
        if (isx) {
            op_rr(j, w, 0x0faf, dst, src);
        } else {
            op_rr(j, w, 0x69, dst, dst);
            emit4(j, in->imm);
        }
        break;
    case BPF_DIV:
    case BPF_MOD:
        emit_div(j, w, op == BPF_MOD, dst, isx, src, in->imm);
        break;
    case BPF_LSH:
    case BPF_RSH:
    case BPF_ARSH:
        if (isx) {
            emit_shift_x(j, w, shift_ext[op >> 4], dst, src);
        } else {
            uint8_t n = in->imm & (w ? 63 : 31);

            if (n) {
                op_rr(j, w, 0xc1, shift_ext[op >> 4], dst);
                emit1(j, n);
            } else if (!w) {
                mov_rr(j, 0, dst, dst);
            }
        }
        break;
    case BPF_NEG:
        op_rr(j, w, 0xf7, 3, dst);
        break;
    case BPF_END:
        if (BPF_SRC(in->code) == BPF_TO_BE) {
            if (in->imm == 16) {
                op_rr(j, P66, 0xc1, 0, dst);        /* rol dst16, 8 */
                emit1(j, 8);
                op_rr(j, 0, 0x0fb7, dst, dst);      /* movzx */
            } else {
                emit_head(j, in->imm == 64 ? W : 0, 0x0fc8 + (dst & 7), 0,
                          dst);                     /* bswap */
            }
        } else if (in->imm == 16) {
            op_rr(j, 0, 0x0fb7, dst, dst);
        } else if (in->imm == 32) {
            mov_rr(j, 0, dst, dst);
        }
        break;
    default:
        j->why = "unknown ALU operation";
        break;
    }
}

/* dst = [base + off], 'size' bytes, zero-extended. */
static void
emit_load(struct jit *j, int size, int dst, int base, int32_t off)
{
    switch (size) {
    case 1:
        op_rm(j, 0, 0x0fb6, dst, base, off);
        break;
    case 2:
        op_rm(j, 0, 0x0fb7, dst, base, off);
        break;
    case 4:
        op_rm(j, 0, 0x8b, dst, base, off);
        break;
    default:
        op_rm(j, W, 0x8b, dst, base, off);
        break;
    }
}

/* A load that may address the context (the verifier could not tell):
 * 'struct xdp_md' offsets are translated to 'struct okovm_xdp_ctx' ones
 * as okovm_exec_fast() does. */
static void
emit_load_dynamic(struct jit *j, int size, int dst, int src, int16_t off)
{
    size_t to_ctx, to_done, to_zero = 0, to_narrow = 0, to_done2 = 0;
    size_t to_done3 = 0;

    op_rm(j, W, 0x8d, T2, src, off);                    /* lea t2, [src+off] */
    op_rm(j, W, 0x8d, T1, RUN, offsetof(struct okovm_run, ctx));
    op_rr(j, W, 0x29, T1, T2);                          /* t2 -= t1 */
    op_rr(j, W, 0x81, 7, T2);                           /* cmp t2, imm */
    emit4(j, OKOVM_XDP_MD_SIZE);
    to_ctx = jcc8(j, CC_B);
    emit_load(j, size, dst, src, off);
    to_done = jcc8(j, -1);

    land8(j, to_ctx);
    if (size < 8) {
        op_rr(j, 0, 0xf7, 0, T2);                       /* test t2d, 3 */
        emit4(j, 3);
        to_zero = jcc8(j, CC_NE);
        /* rel is a multiple of 4: okovm_xdp_ctx_offset(rel) = 2 rel. */
        op_rr(j, W, 0x01, T2, T2);                      /* t2 *= 2 */
        op_rr(j, W, 0x01, T2, T1);                      /* t1 += t2 */
        if (size == 4) {
            op_rr(j, W, 0x81, 7, T2);                   /* cmp t2, imm */
            emit4(j, okovm_xdp_ctx_offset(OKOVM_XDP_MD_PTR_END));
            to_narrow = jcc8(j, CC_AE);
            emit_load(j, 8, dst, T1, 0);                /* Pointer field. */
            to_done2 = jcc8(j, -1);
            land8(j, to_narrow);
        }
        emit_load(j, size, dst, T1, 0);
        to_done3 = jcc8(j, -1);
        land8(j, to_zero);
    }
    op_rr(j, 0, 0x31, dst, dst);                        /* dst = 0 */
    land8(j, to_done);
    if (size < 8) {
        if (size == 4) {
            land8(j, to_done2);
        }
        land8(j, to_done3);
    }
}

static void
emit_store_imm(struct jit *j, int size, int base, int16_t off, int32_t imm)
{
    switch (size) {
    case 1:
        op_rm(j, 0, 0xc6, 0, base, off);
        emit1(j, imm);
        break;
    case 2:
        op_rm(j, P66, 0xc7, 0, base, off);
        emit1(j, imm);
        emit1(j, imm >> 8);
        break;
    case 4:
        op_rm(j, 0, 0xc7, 0, base, off);
        emit4(j, imm);
        break;
    default:
        op_rm(j, W, 0xc7, 0, base, off);
        emit4(j, imm);
        break;
    }
}

static void
emit_store_reg(struct jit *j, int size, int base, int16_t off, int src)
{
    switch (size) {
    case 1:
        op_rm(j, BYTE, 0x88, src, base, off);
        break;
    case 2:
        op_rm(j, P66, 0x89, src, base, off);
        break;
    case 4:
        op_rm(j, 0, 0x89, src, base, off);
        break;
    default:
        op_rm(j, W, 0x89, src, base, off);
        break;
    }
}

static void
emit_atomic(struct jit *j, const struct bpf_insn *in)
{
    int w = BPF_SIZE(in->code) == BPF_DW ? W : 0;
    int dst = reg_map[in->dst_reg], src = reg_map[in->src_reg];
    int16_t off = in->off;
    size_t loop;

    switch (in->imm) {
    case BPF_ADD:
    case BPF_OR:
    case BPF_AND:
    case BPF_XOR:
        op_rm(j, w | LOCK, alu_rr[in->imm >> 4], src, dst, off);
        break;
    case BPF_ADD | BPF_FETCH:
        op_rm(j, w | LOCK, 0x0fc1, src, dst, off);      /* lock xadd */
        break;
    case BPF_XCHG:
        op_rm(j, w, 0x87, src, dst, off);
        break;
    case BPF_CMPXCHG:
        op_rm(j, w | LOCK, 0x0fb1, src, dst, off);
        if (!w) {
            mov_rr(j, 0, RAX, RAX);
        }
        break;
    case BPF_OR | BPF_FETCH:
    case BPF_AND | BPF_FETCH:
    case BPF_XOR | BPF_FETCH: {
        /* A compare-and-exchange loop; it needs rax (R0), kept in t1. */
        int base = dst == RAX ? T1 : dst, val = src == RAX ? T1 : src;

        mov_rr(j, W, T1, RAX);
        loop = j->len;
        op_rm(j, w, 0x8b, RAX, base, off);              /* rax = old */
        mov_rr(j, W, T2, RAX);
        op_rr(j, w, alu_rr[(in->imm & ~BPF_FETCH) >> 4], val, T2);
        op_rm(j, w | LOCK, 0x0fb1, T2, base, off);
        emit1(j, 0x70 + CC_NE);
        emit1(j, (uint8_t) (loop - (j->len + 1)));
        mov_rr(j, w, T2, RAX);
        mov_rr(j, W, RAX, T1);
        mov_rr(j, W, src, T2);
        break;
    }
    default:
        j->why = "unknown atomic operation";
        break;
    }
}

/* Stores in 'maps[i]', for each call of bpf_map_lookup_elem() at 'i'
 * whose map is known where its code is emitted, that map: R1 loaded with a
 * map reference earlier in the same straight run of instructions, no jump
 * landing in between, as compilers emit it.  NULL elsewhere. */
static void
find_lookup_maps(const struct okovm_prog *prog, struct okovm_map **maps)
{
    uint32_t n = prog->n_insns;
    struct okovm_map *r1 = NULL;
    bool *target = calloc(n + 1, sizeof *target);
    uint32_t i;

    if (!target) {
        return;                 /* Then every call is a plain one. */
    }
    for (i = 0; i < n; i++) {
        const struct bpf_insn *in = &prog->insns[i];
        uint8_t cls = BPF_CLASS(in->code), op = BPF_OP(in->code);
        int64_t to = -1;

        if (cls == BPF_JMP && op == BPF_CALL) {
            if (in->src_reg == BPF_PSEUDO_CALL) {
                to = (int64_t) i + 1 + in->imm;
            }
        } else if ((cls == BPF_JMP || cls == BPF_JMP32) && op != BPF_EXIT) {
            to = (int64_t) i + 1 + in->off;
        }
        if (to >= 0 && to <= n) {
            target[to] = true;
        }
    }
    for (i = 0; i < n; i++) {
        const struct bpf_insn *in = &prog->insns[i];
        uint8_t cls = BPF_CLASS(in->code), op = BPF_OP(in->code);

        if (target[i]) {
            r1 = NULL;
        }
        switch (cls) {
        case BPF_LD:
            if (in->dst_reg == BPF_REG_1) {
                r1 = (in->src_reg == BPF_PSEUDO_MAP_FD
                      && (uint32_t) in->imm < prog->n_maps
                      ? prog->maps[in->imm] : NULL);
            }
            i++;                /* The second slot. */
            break;
        case BPF_ALU:
        case BPF_ALU64:
        case BPF_LDX:
            if (in->dst_reg == BPF_REG_1) {
                r1 = NULL;
            }
            break;
        case BPF_STX:
            /* Fetching atomics write their source register. */
            if (BPF_MODE(in->code) == BPF_ATOMIC && (in->imm & BPF_FETCH)
                && in->src_reg == BPF_REG_1) {
                r1 = NULL;
            }
            break;
        case BPF_JMP:
            if (op == BPF_CALL) {
                if (in->src_reg == 0 && in->imm == BPF_FUNC_map_lookup_elem) {
                    maps[i] = r1;
                }
                r1 = NULL;      /* Calls clobber R1-R5. */
            } else if (op == BPF_EXIT || op == BPF_JA) {
                r1 = NULL;
            }
            break;
        default:
            break;
        }
    }
    free(target);
}

/* bpf_map_lookup_elem(map, key) for a map known when compiling: R1 holds
 * 'map', R2 the key.  An array lookup is inlined (as okovm_map_lookup_elem()
 * does it: the entry, or NULL for an index out of range); a hash lookup
 * calls the map's own function, for its key size, directly.  Returns false
 * if neither applies. */
static bool
emit_map_lookup(struct jit *j, struct okovm_map *map)
{
    if (map->type == BPF_MAP_TYPE_ARRAY && map->value_stride <= INT32_MAX) {
        op_rr(j, 0, 0x31, T1, T1);                      /* t1 = 0 */
        op_rm(j, 0, 0x8b, RAX, RSI, 0);                 /* eax = *key */
        op_rr(j, W, 0x69, RAX, RAX);                    /* rax *= stride */
        emit4(j, map->value_stride);
        mov_ri64(j, T2, (uintptr_t) map->values);
        op_rr(j, W, 0x01, T2, RAX);                     /* rax += values */
        op_rm(j, 0, 0x81, 7, RSI, 0);                   /* cmp *key, max */
        emit4(j, map->max_entries);
        op_rr(j, W, 0x0f43, RAX, T1);                   /* cmovae rax, t1 */
        return true;
    }
    if (map->lookup) {
        mov_ri64(j, T2, (uintptr_t) map->lookup);
        op_rr(j, 0, 0xff, 2, T2);                       /* call t2 */
        return true;
    }
    return false;
}

static void
emit_call(struct jit *j, const struct bpf_insn *in, uint32_t i,
          uint32_t n_insns)
{
    if (in->src_reg == BPF_PSEUDO_CALL) {
        uint32_t target = i + 1 + in->imm;

        if (target >= n_insns) {
            j->why = "call outside the program";
            return;
        }
        /* The callee's frame is the 512 bytes below the caller's; none
         * may start at or below the bottom of the frame area. */
        op_rm(j, W, 0x8d, T2, RBP, -OKOVM_STACK_SIZE);
        op_rm(j, W, 0x3b, T2, RUN, offsetof(struct okovm_run, stack_lo));
        jump_to(j, CC_BE, j->abort);
        push(j, RBX);
        push(j, R13);
        push(j, R14);
        push(j, R15);
        push(j, RBP);
        mov_rr(j, W, RBP, T2);
        emit1(j, 0xe8);
        emit4(j, j->final ? j->addr[target] - (j->len + 4) : 0);
        pop(j, RBP);
        pop(j, R15);
        pop(j, R14);
        pop(j, R13);
        pop(j, RBX);
    } else {
        /* The helper's C function, R1-R5 already in place; the run as
         * the sixth argument. */
        const struct okovm_helper *h = (in->src_reg ? NULL
                                         : okovm_helper_find(in->imm));

        if (!h) {
            j->why = "unknown helper";
            return;
        }
        if (j->lookup_maps && j->lookup_maps[i]
            && emit_map_lookup(j, j->lookup_maps[i])) {
            return;
        }
        mov_rr(j, W, R9, RUN);
        mov_ri64(j, T2, (uintptr_t) h->fn);
        op_rr(j, 0, 0xff, 2, T2);                       /* call t2 */
    }
}

static void
emit_jump(struct jit *j, const struct bpf_insn *in, uint32_t i,
          uint32_t n_insns)
{
    int w = BPF_CLASS(in->code) == BPF_JMP ? W : 0;
    int dst = reg_map[in->dst_reg], src = reg_map[in->src_reg & 0xf];
    uint8_t op = BPF_OP(in->code);
    uint32_t target = i + 1 + in->off;

    if (!jmp_cc[op >> 4] || target >= n_insns) {
        j->why = "unknown jump or target";
        return;
    }
    if (op == BPF_JSET) {
        if (BPF_SRC(in->code) == BPF_X) {
            op_rr(j, w, 0x85, src, dst);
        } else {
            op_rr(j, w, 0xf7, 0, dst);
            emit4(j, in->imm);
        }
    } else if (BPF_SRC(in->code) == BPF_X) {
        op_rr(j, w, 0x39, src, dst);                    /* cmp dst, src */
    } else {
        op_rr(j, w, 0x81, 7, dst);                      /* cmp dst, imm */
        emit4(j, in->imm);
    }
    jump_to(j, jmp_cc[op >> 4], j->addr[target]);
}

static int
bpf_size(uint8_t code)
{
    switch (BPF_SIZE(code)) {
    case BPF_B: return 1;
    case BPF_H: return 2;
    case BPF_W: return 4;
    default: return 8;
    }
}

/* One pass over the program. */
static void
emit_prog(struct jit *j, const struct okovm_prog *prog,
          const struct okovm_vinfo *vi)
{
    static const int zeroed[] = { RAX, RSI, RDX, RCX, R8, RBX, R13, R14,
                                  R15 };
    uint32_t i, n = prog->n_insns;
    size_t k;

    j->len = 0;

    /* uint64_t fn(struct okovm_run *run, uint64_t stack_top). */
    push(j, RBP);
    push(j, RBX);
    push(j, R12);
    push(j, R13);
    push(j, R14);
    push(j, R15);
    mov_rr(j, W, RUN, RDI);
    mov_rr(j, W, RBP, RSI);
    op_rm(j, W, 0x8d, RDI, RUN, offsetof(struct okovm_run, ctx));
    for (k = 0; k < sizeof zeroed / sizeof *zeroed; k++) {
        op_rr(j, 0, 0x31, zeroed[k], zeroed[k]);
    }
    op_rm(j, W, 0x89, RSP, RUN, offsetof(struct okovm_run, jit_rsp));
    emit1(j, 0xe8);                                     /* call body */
    emit4(j, j->final ? j->addr[0] - (j->len + 4) : 0);
    j->epilogue = j->len;
    pop(j, R15);
    pop(j, R14);
    pop(j, R13);
    pop(j, R12);
    pop(j, RBX);
    pop(j, RBP);
    emit1(j, 0xc3);
    /* Call depth exceeded: unwind every frame, verdict 0. */
    j->abort = j->len;
    op_rm(j, W, 0x8b, RSP, RUN, offsetof(struct okovm_run, jit_rsp));
    op_rr(j, 0, 0x31, RAX, RAX);
    jump_to(j, -1, j->epilogue);

    for (i = 0; i < n && !j->why && !j->oom; i++) {
        const struct bpf_insn *in = &prog->insns[i];
        int dst, src;

        j->addr[i] = j->len;
        if (in->dst_reg > 10 || in->src_reg > 10) {
            j->why = "bad register";
            break;
        }
        dst = reg_map[in->dst_reg];
        src = reg_map[in->src_reg];
        switch (BPF_CLASS(in->code)) {
        case BPF_ALU:
        case BPF_ALU64:
            emit_alu(j, in);
            break;
        case BPF_JMP:
            if (BPF_OP(in->code) == BPF_JA) {
                if (i + 1 + in->off >= n) {
                    j->why = "jump outside the program";
                    break;
                }
                jump_to(j, -1, j->addr[i + 1 + in->off]);
            } else if (BPF_OP(in->code) == BPF_EXIT) {
                emit1(j, 0xc3);
            } else if (BPF_OP(in->code) == BPF_CALL) {
                emit_call(j, in, i, n);
            } else {
                emit_jump(j, in, i, n);
            }
            break;
        case BPF_JMP32:
            emit_jump(j, in, i, n);
            break;
        case BPF_LDX:
            if (vi->ctx_access[i] == OKOVM_CTX_REWRITE) {
                /* As okovm_decode(): pointer fields become 64-bit. */
                emit_load(j, (in->off < OKOVM_XDP_MD_PTR_END
                              ? 8 : bpf_size(in->code)),
                          dst, src, okovm_xdp_ctx_offset(in->off));
            } else if (vi->ctx_access[i] == OKOVM_CTX_DYNAMIC) {
                emit_load_dynamic(j, bpf_size(in->code), dst, src, in->off);
            } else {
                emit_load(j, bpf_size(in->code), dst, src, in->off);
            }
            break;
        case BPF_ST:
            emit_store_imm(j, bpf_size(in->code), dst, in->off, in->imm);
            break;
        case BPF_STX:
            if (BPF_MODE(in->code) == BPF_ATOMIC) {
                emit_atomic(j, in);
            } else {
                emit_store_reg(j, bpf_size(in->code), dst, in->off, src);
            }
            break;
        case BPF_LD:
            /* The decoder resolved map references into the second
             * slot's 64-bit value. */
            mov_ri64(j, dst, prog->code[i + 1].imm64);
            j->addr[++i] = j->len;
            break;
        default:
            j->why = "unknown instruction class";
            break;
        }
    }
    emit1(j, 0xcc);                 /* Verified code never gets here. */
}

/* Runs 'prog' through its native code, on a fresh stack as the
 * interpreter has. */
uint64_t
okovm_exec_jit(const struct okovm_prog *prog, struct okovm_run *run)
{
    uint64_t stack[OKOVM_MAX_FRAMES * OKOVM_STACK_SIZE / 8];

    if (OKOVM_UNLIKELY(prog->zero_stack)) {
        memset((uint8_t *) stack + sizeof stack - prog->zero_stack, 0,
               prog->zero_stack);
    }
    run->stack_lo = (uintptr_t) stack;
    return prog->jit_fn(run, (uintptr_t) stack + sizeof stack);
}

/* Compiles 'prog', decoded and verified by the kernel, to native code in
 * 'prog->jit_code' for okovm_exec_jit().  Returns 0 or a positive errno
 * (EOPNOTSUPP: no JIT for this machine); then the interpreter runs it.
 * Choosing the engine is okovm_prog_finish()'s job. */
int
okovm_jit_compile(struct okovm_prog *prog, const struct okovm_vinfo *vi)
{
    struct jit j;
    size_t first;
    void *mem;
    int error = 0;

    memset(&j, 0, sizeof j);
    j.addr = calloc(prog->n_insns + 1, sizeof *j.addr);
    if (!j.addr) {
        return ENOMEM;
    }
    j.lookup_maps = calloc(prog->n_insns, sizeof *j.lookup_maps);
    if (j.lookup_maps) {
        find_lookup_maps(prog, j.lookup_maps);
    }
    emit_prog(&j, prog, vi);
    first = j.len;
    if (!j.why && !j.oom) {
        j.final = true;
        emit_prog(&j, prog, vi);
    }
    if (j.oom) {
        error = ENOMEM;
    } else if (j.why || j.len != first) {
        error = EINVAL;
    }
    if (!error) {
        mem = mmap(NULL, j.len, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (mem == MAP_FAILED) {
            error = errno;
        } else {
            memcpy(mem, j.buf, j.len);
            if (mprotect(mem, j.len, PROT_READ | PROT_EXEC)) {
                error = errno;
                munmap(mem, j.len);
            } else {
                prog->jit_code = mem;
                prog->jit_size = j.len;
                prog->jit_fn = (uint64_t (*)(struct okovm_run *, uint64_t))
                               (uintptr_t) mem;
            }
        }
    }
    free(j.buf);
    free(j.addr);
    free(j.lookup_maps);
    return error;
}

void
okovm_jit_free(struct okovm_prog *prog)
{
    if (prog->jit_code) {
        munmap(prog->jit_code, prog->jit_size);
        prog->jit_code = NULL;
    }
}

#else /* !__x86_64__ */

int
okovm_jit_compile(struct okovm_prog *prog, const struct okovm_vinfo *vi)
{
    (void) prog;
    (void) vi;
    return EOPNOTSUPP;
}

/* Never chosen: nothing compiles. */
uint64_t
okovm_exec_jit(const struct okovm_prog *prog, struct okovm_run *run)
{
    return okovm_exec_fast(prog, run);
}

void
okovm_jit_free(struct okovm_prog *prog)
{
    (void) prog;
}

#endif
