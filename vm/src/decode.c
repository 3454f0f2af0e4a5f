/*
 * decode.c -- translation of verified BPF instructions into the
 * interpreter's pre-decoded form: one handler address per instruction
 * (computed-goto threading), ld_imm64 values merged (map references
 * resolved to pointers), context loads rewritten to the VM's 64-bit
 * context layout, helper calls resolved to their entry in okovm_helpers[].
 */

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "okovm-private.h"
#include "ops.h"

static const enum okovm_op alu64_ops[16][2] = {
    [BPF_ADD >> 4] = { OP_ADD64_K, OP_ADD64_X },
    [BPF_SUB >> 4] = { OP_SUB64_K, OP_SUB64_X },
    [BPF_MUL >> 4] = { OP_MUL64_K, OP_MUL64_X },
    [BPF_DIV >> 4] = { OP_DIV64_K, OP_DIV64_X },
    [BPF_OR >> 4] = { OP_OR64_K, OP_OR64_X },
    [BPF_AND >> 4] = { OP_AND64_K, OP_AND64_X },
    [BPF_LSH >> 4] = { OP_LSH64_K, OP_LSH64_X },
    [BPF_RSH >> 4] = { OP_RSH64_K, OP_RSH64_X },
    [BPF_NEG >> 4] = { OP_NEG64, OP_NEG64 },
    [BPF_MOD >> 4] = { OP_MOD64_K, OP_MOD64_X },
    [BPF_XOR >> 4] = { OP_XOR64_K, OP_XOR64_X },
    [BPF_MOV >> 4] = { OP_MOV64_K, OP_MOV64_X },
    [BPF_ARSH >> 4] = { OP_ARSH64_K, OP_ARSH64_X },
};

static const enum okovm_op alu32_ops[16][2] = {
    [BPF_ADD >> 4] = { OP_ADD32_K, OP_ADD32_X },
    [BPF_SUB >> 4] = { OP_SUB32_K, OP_SUB32_X },
    [BPF_MUL >> 4] = { OP_MUL32_K, OP_MUL32_X },
    [BPF_DIV >> 4] = { OP_DIV32_K, OP_DIV32_X },
    [BPF_OR >> 4] = { OP_OR32_K, OP_OR32_X },
    [BPF_AND >> 4] = { OP_AND32_K, OP_AND32_X },
    [BPF_LSH >> 4] = { OP_LSH32_K, OP_LSH32_X },
    [BPF_RSH >> 4] = { OP_RSH32_K, OP_RSH32_X },
    [BPF_NEG >> 4] = { OP_NEG32, OP_NEG32 },
    [BPF_MOD >> 4] = { OP_MOD32_K, OP_MOD32_X },
    [BPF_XOR >> 4] = { OP_XOR32_K, OP_XOR32_X },
    [BPF_MOV >> 4] = { OP_MOV32_K, OP_MOV32_X },
    [BPF_ARSH >> 4] = { OP_ARSH32_K, OP_ARSH32_X },
};

static const enum okovm_op jmp64_ops[16][2] = {
    [BPF_JEQ >> 4] = { OP_JEQ64_K, OP_JEQ64_X },
    [BPF_JGT >> 4] = { OP_JGT64_K, OP_JGT64_X },
    [BPF_JGE >> 4] = { OP_JGE64_K, OP_JGE64_X },
    [BPF_JSET >> 4] = { OP_JSET64_K, OP_JSET64_X },
    [BPF_JNE >> 4] = { OP_JNE64_K, OP_JNE64_X },
    [BPF_JSGT >> 4] = { OP_JSGT64_K, OP_JSGT64_X },
    [BPF_JSGE >> 4] = { OP_JSGE64_K, OP_JSGE64_X },
    [BPF_JLT >> 4] = { OP_JLT64_K, OP_JLT64_X },
    [BPF_JLE >> 4] = { OP_JLE64_K, OP_JLE64_X },
    [BPF_JSLT >> 4] = { OP_JSLT64_K, OP_JSLT64_X },
    [BPF_JSLE >> 4] = { OP_JSLE64_K, OP_JSLE64_X },
};

static const enum okovm_op jmp32_ops[16][2] = {
    [BPF_JEQ >> 4] = { OP_JEQ32_K, OP_JEQ32_X },
    [BPF_JGT >> 4] = { OP_JGT32_K, OP_JGT32_X },
    [BPF_JGE >> 4] = { OP_JGE32_K, OP_JGE32_X },
    [BPF_JSET >> 4] = { OP_JSET32_K, OP_JSET32_X },
    [BPF_JNE >> 4] = { OP_JNE32_K, OP_JNE32_X },
    [BPF_JSGT >> 4] = { OP_JSGT32_K, OP_JSGT32_X },
    [BPF_JSGE >> 4] = { OP_JSGE32_K, OP_JSGE32_X },
    [BPF_JLT >> 4] = { OP_JLT32_K, OP_JLT32_X },
    [BPF_JLE >> 4] = { OP_JLE32_K, OP_JLE32_X },
    [BPF_JSLT >> 4] = { OP_JSLT32_K, OP_JSLT32_X },
    [BPF_JSLE >> 4] = { OP_JSLE32_K, OP_JSLE32_X },
};

static int
size_index(uint8_t code)
{
    switch (BPF_SIZE(code)) {
    case BPF_B: return 0;
    case BPF_H: return 1;
    case BPF_W: return 2;
    default: return 3;
    }
}

static enum okovm_op
atomic_op(const struct bpf_insn *in)
{
    bool dw = BPF_SIZE(in->code) == BPF_DW;

    switch (in->imm) {
    case BPF_ADD: return dw ? OP_AADD_DW : OP_AADD_W;
    case BPF_OR: return dw ? OP_AOR_DW : OP_AOR_W;
    case BPF_AND: return dw ? OP_AAND_DW : OP_AAND_W;
    case BPF_XOR: return dw ? OP_AXOR_DW : OP_AXOR_W;
    case BPF_ADD | BPF_FETCH: return dw ? OP_FADD_DW : OP_FADD_W;
    case BPF_OR | BPF_FETCH: return dw ? OP_FOR_DW : OP_FOR_W;
    case BPF_AND | BPF_FETCH: return dw ? OP_FAND_DW : OP_FAND_W;
    case BPF_XOR | BPF_FETCH: return dw ? OP_FXOR_DW : OP_FXOR_W;
    case BPF_XCHG: return dw ? OP_XCHG_DW : OP_XCHG_W;
    default: return dw ? OP_CMPXCHG_DW : OP_CMPXCHG_W;
    }
}

#define KIND0(N) [OP_##N] = OKOVM_KIND_0,
#define KINDK(N) [OP_##N] = OKOVM_KIND_K,
#define KINDX(N) [OP_##N] = OKOVM_KIND_X,
#define KINDJK(N) [OP_##N] = OKOVM_KIND_JK,
#define KINDJX(N) [OP_##N] = OKOVM_KIND_JX,
#define KINDL(N) [OP_##N] = OKOVM_KIND_L,
#define KINDW(N) [OP_##N] = OKOVM_KIND_W,
static const uint8_t op_kinds[OP__MAX] = {
    OKOVM_OPS(KIND0, KINDK, KINDX, KINDJK, KINDJX, KINDL, KINDW)
};

/* The decoder's model of the interpreters' register slots (ops.h). */
struct slots {
    int reg[2];                 /* BPF register in slot A, B; -1: none. */
    int mru;                    /* Slot used last. */
};

static void
slots_reset(struct slots *sl)
{
    sl->reg[0] = sl->reg[1] = -1;
    sl->mru = 1;
}

/* Where register 'r' is read from: 0 memory, 1 slot A, 2 slot B. */
static int
slot_src(struct slots *sl, int r)
{
    int i;

    for (i = 0; i < 2; i++) {
        if (sl->reg[i] == r) {
            sl->mru = i;
            return i + 1;
        }
    }
    return 0;
}

/* Chooses the slot for a new value of register 'r' (kept out of slot
 * 'keep' - 1 if possible, the source just read) and records it. */
static int
slot_dst(struct slots *sl, int r, int keep)
{
    int i, out = -1;

    for (i = 0; i < 2; i++) {
        if (sl->reg[i] == r) {
            out = i;
        }
    }
    if (out < 0) {
        out = (keep == 1 ? 1 : keep == 2 ? 0
               : sl->reg[0] < 0 ? 0 : sl->reg[1] < 0 ? 1 : !sl->mru);
    }
    sl->reg[out] = r;
    sl->mru = out;
    return out;
}

static void
slot_forget(struct slots *sl, int r)
{
    int i;

    for (i = 0; i < 2; i++) {
        if (sl->reg[i] == r) {
            sl->reg[i] = -1;
        }
    }
}

/* Replaces in 'opv' each operation by its variant that reads operands from
 * and writes its result to the register slots the decoder assigns (see
 * ops.h).  The slots start empty at every jump or call target and after
 * every instruction that does not fall through or returns from a call. */
static void
select_variants(const struct okovm_prog *prog, enum okovm_op *opv)
{
    const struct bpf_insn *insns = prog->insns;
    uint32_t n = prog->n_insns, i;
    bool *target = calloc(n + 1, sizeof *target);
    struct slots sl;

    if (!target) {
        /* Variant 0 is right without the model only for operations that
         * write no slot: give up on caching by resetting at every
         * instruction instead. */
        target = NULL;
    }
    for (i = 0; target && i < n; i++) {
        const struct bpf_insn *in = &insns[i];
        uint8_t c = BPF_CLASS(in->code), op = BPF_OP(in->code);
        int64_t t = -1;

        if (opv[i] == OP_LDDW) {
            i++;
            continue;
        }
        if ((c == BPF_JMP || c == BPF_JMP32) && op != BPF_EXIT) {
            if (op != BPF_CALL) {
                t = (int64_t) i + 1 + in->off;
            } else if (in->src_reg == BPF_PSEUDO_CALL) {
                t = (int64_t) i + 1 + in->imm;
            }
        }
        if (t >= 0 && t < n) {
            target[t] = true;
        }
    }
    slots_reset(&sl);
    for (i = 0; i < n; i++) {
        const struct bpf_insn *in = &insns[i];
        enum okovm_op o = opv[i];
        int d = in->dst_reg, r = in->src_reg, w, sv, dv;

        if (!target || target[i]) {
            slots_reset(&sl);
        }
        switch (op_kinds[o]) {
        case OKOVM_KIND_K:
        case OKOVM_KIND_X:
            sv = op_kinds[o] == OKOVM_KIND_X ? slot_src(&sl, r) : 0;
            dv = slot_src(&sl, d);
            w = slot_dst(&sl, d, sv);
            w = dv ? 1 + dv : w;
            opv[i] = o + (op_kinds[o] == OKOVM_KIND_X ? 3 * w + sv : w);
            break;
        case OKOVM_KIND_JK:
            opv[i] = o + slot_src(&sl, d);
            break;
        case OKOVM_KIND_JX:
            dv = slot_src(&sl, d);
            opv[i] = o + 3 * dv + slot_src(&sl, r);
            break;
        case OKOVM_KIND_L:
            sv = slot_src(&sl, r);
            opv[i] = o + 3 * slot_dst(&sl, d, sv) + sv;
            break;
        case OKOVM_KIND_W:
            opv[i] = o + slot_dst(&sl, d, 0);
            i++;
            break;
        default:
            /* Writes only to the register file. */
            if (o >= OP_LDXC_B && o <= OP_LDXC_DW) {
                slot_forget(&sl, d);
            } else if (o == OP_CALL_HELPER) {
                slot_forget(&sl, BPF_REG_0);
            } else if (o == OP_CMPXCHG_W || o == OP_CMPXCHG_DW) {
                slot_forget(&sl, BPF_REG_0);
            } else if (o >= OP_FADD_W && o <= OP_XCHG_DW) {
                slot_forget(&sl, r);
            } else if (o == OP_CALL_LOCAL || o == OP_EXIT || o == OP_JA) {
                slots_reset(&sl);
            }
            break;
        }
    }
    free(target);
}

/* Pre-decodes 'prog->insns' for the interpreter whose handler addresses
 * are 'labels', using the verifier's findings in 'vi', into a new array
 * stored in '*codep' (for the caller to free). */
int
okovm_decode(struct okovm_prog *prog, const struct okovm_vinfo *vi,
             const void *const *labels, struct okovm_xinsn **codep,
             struct okovm_error *err)
{
    static const enum okovm_op ldx[4] = {
        OP_LDX_B, OP_LDX_H, OP_LDX_W, OP_LDX_DW
    };
    static const enum okovm_op ldxc[4] = {
        OP_LDXC_B, OP_LDXC_H, OP_LDXC_W, OP_LDXC_DW
    };
    static const enum okovm_op st[4] = {
        OP_ST_B, OP_ST_H, OP_ST_W, OP_ST_DW
    };
    static const enum okovm_op stx[4] = {
        OP_STX_B, OP_STX_H, OP_STX_W, OP_STX_DW
    };
    struct okovm_xinsn *code;
    enum okovm_op *opv;
    uint32_t i;

    code = calloc(prog->n_insns, sizeof *code);
    opv = calloc(prog->n_insns, sizeof *opv);
    if (!code || !opv) {
        free(code);
        free(opv);
        return okovm_error_set(err, ENOMEM, -1, "out of memory");
    }
    for (i = 0; i < prog->n_insns; i++) {
        const struct bpf_insn *in = &prog->insns[i];
        struct okovm_xinsn *x = &code[i];
        bool isx = BPF_SRC(in->code) == BPF_X;
        uint8_t op = BPF_OP(in->code);
        enum okovm_op o;

        x->dst = in->dst_reg;
        x->src = in->src_reg;
        x->off = in->off;
        x->imm = in->imm;
        switch (BPF_CLASS(in->code)) {
        case BPF_ALU64:
            o = alu64_ops[op >> 4][isx];
            break;
        case BPF_ALU:
            if (op == BPF_END) {
                static const enum okovm_op ends[2][3] = {
                    { OP_LE16, OP_LE32, OP_LE64 },
                    { OP_BE16, OP_BE32, OP_BE64 },
                };
                int w = in->imm == 16 ? 0 : in->imm == 32 ? 1 : 2;

                o = ends[isx][w];
            } else {
                o = alu32_ops[op >> 4][isx];
            }
            break;
        case BPF_JMP:
            if (op == BPF_JA) {
                o = OP_JA;
            } else if (op == BPF_EXIT) {
                o = OP_EXIT;
            } else if (op == BPF_CALL && in->src_reg == BPF_PSEUDO_CALL) {
                o = OP_CALL_LOCAL;
            } else if (op == BPF_CALL) {
                /* The interpreters find the helper by its index. */
                x->imm = okovm_helper_index(in->imm);
                o = OP_CALL_HELPER;
            } else {
                o = jmp64_ops[op >> 4][isx];
            }
            break;
        case BPF_JMP32:
            o = jmp32_ops[op >> 4][isx];
            break;
        case BPF_LDX:
            if (vi->ctx_access[i] == OKOVM_CTX_REWRITE) {
                /* Pointer fields become 64-bit loads. */
                x->off = okovm_xdp_ctx_offset(in->off);
                o = (in->off < OKOVM_XDP_MD_PTR_END ? OP_LDX_DW
                     : ldx[size_index(in->code)]);
            } else if (vi->ctx_access[i] == OKOVM_CTX_DYNAMIC) {
                o = ldxc[size_index(in->code)];
            } else {
                o = ldx[size_index(in->code)];
            }
            break;
        case BPF_ST:
            o = st[size_index(in->code)];
            break;
        case BPF_STX:
            o = (BPF_MODE(in->code) == BPF_ATOMIC ? atomic_op(in)
                 : stx[size_index(in->code)]);
            break;
        case BPF_LD: {
            const struct bpf_insn *in2 = &prog->insns[i + 1];
            uint64_t v;

            if (in->src_reg == BPF_PSEUDO_MAP_FD) {
                v = (uintptr_t) prog->maps[in->imm];
            } else if (in->src_reg == BPF_PSEUDO_MAP_VALUE) {
                v = (uintptr_t) prog->maps[in->imm]->values
                    + (uint32_t) in2->imm;
            } else {
                v = (uint32_t) in->imm | ((uint64_t) (uint32_t) in2->imm
                                          << 32);
            }
            opv[i] = OP_LDDW;
            i++;
            code[i].imm64 = v;
            continue;
        }
        default:
            free(code);
            free(opv);
            return okovm_error_set(err, EINVAL, i, "cannot decode insn %u",
                                   i);
        }
        opv[i] = o;
    }
    if (!prog->no_slots) {
        select_variants(prog, opv);
    }
    for (i = 0; i < prog->n_insns; i++) {
        code[i].op = labels[opv[i]];
        if (prog->insns[i].code == (BPF_LD | BPF_IMM | BPF_DW)) {
            i++;
        }
    }
    free(opv);
    *codep = code;
    return 0;
}
