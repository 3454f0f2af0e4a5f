/*
 * ops.h -- the internal operations of the pre-decoded instruction form,
 * as an X-macro list shared by the decoder and both interpreters.
 *
 * Register caching.  Besides the register file (an array in memory), the
 * interpreters keep the values of up to two BPF registers in two machine
 * registers, slots 'A' and 'B'.  Reading a register the previous
 * instructions just computed from a slot avoids waiting for a store to be
 * forwarded to a load, the latency that bounds dependency chains.  Which
 * BPF register each slot holds is known when decoding (it depends only on
 * the straight-line code since the last jump target), so the decoder
 * picks, for each instruction, the variant of its operation that reads its
 * operands from the right places and writes its result to the right slot.
 * Results always go to the register file as well, so the file is always
 * up to date and a slot is only ever a faster copy.
 *
 * Kinds of operation and their variants (numbered from the base
 * operation, which is variant 0):
 *
 *   X0(N)    no variant; writes only to the register file.
 *   XK(N)    reads and writes 'dst' (immediate operand): 4 variants,
 *            v = w, with w: 0 dst from memory, result to A; 1 memory -> B;
 *            2 A -> A; 3 B -> B.
 *   XX(N)    same, with a register source: 12 variants, v = 3 * w + s,
 *            s: 0 src from memory, 1 from A, 2 from B.
 *   XJK(N)   reads 'dst' (jump, immediate): 3 variants, v = d (as s).
 *   XJX(N)   reads 'dst' and 'src': 9 variants, v = 3 * d + s.
 *   XL(N)    reads 'src', writes 'dst' (loads): 6 variants, v = 3 * o + s,
 *            o: 0 result to A, 1 to B.
 *   XW(N)    writes 'dst' (ld_imm64): 2 variants, v = o.
 */

#ifndef OKOVM_OPS_H
#define OKOVM_OPS_H 1

#define OKOVM_ALU_OPS(XK, XX, W)                                        \
    XK(ADD##W##_K) XX(ADD##W##_X) XK(SUB##W##_K) XX(SUB##W##_X)         \
    XK(MUL##W##_K) XX(MUL##W##_X) XK(DIV##W##_K) XX(DIV##W##_X)         \
    XK(OR##W##_K) XX(OR##W##_X) XK(AND##W##_K) XX(AND##W##_X)           \
    XK(LSH##W##_K) XX(LSH##W##_X) XK(RSH##W##_K) XX(RSH##W##_X)         \
    XK(MOD##W##_K) XX(MOD##W##_X) XK(XOR##W##_K) XX(XOR##W##_X)         \
    XK(MOV##W##_K) XX(MOV##W##_X) XK(ARSH##W##_K) XX(ARSH##W##_X)       \
    XK(NEG##W)

#define OKOVM_JMP_OPS(XJK, XJX, W)                                      \
    XJK(JEQ##W##_K) XJX(JEQ##W##_X) XJK(JGT##W##_K) XJX(JGT##W##_X)     \
    XJK(JGE##W##_K) XJX(JGE##W##_X) XJK(JSET##W##_K) XJX(JSET##W##_X)   \
    XJK(JNE##W##_K) XJX(JNE##W##_X) XJK(JSGT##W##_K) XJX(JSGT##W##_X)   \
    XJK(JSGE##W##_K) XJX(JSGE##W##_X) XJK(JLT##W##_K) XJX(JLT##W##_X)   \
    XJK(JLE##W##_K) XJX(JLE##W##_X) XJK(JSLT##W##_K) XJX(JSLT##W##_X)   \
    XJK(JSLE##W##_K) XJX(JSLE##W##_X)

#define OKOVM_OPS(X0, XK, XX, XJK, XJX, XL, XW)                         \
    OKOVM_ALU_OPS(XK, XX, 64)                                           \
    OKOVM_ALU_OPS(XK, XX, 32)                                           \
    XK(LE16) XK(LE32) XK(LE64) XK(BE16) XK(BE32) XK(BE64)               \
    X0(JA)                                                              \
    OKOVM_JMP_OPS(XJK, XJX, 64)                                         \
    OKOVM_JMP_OPS(XJK, XJX, 32)                                         \
    X0(CALL_HELPER) X0(CALL_LOCAL) X0(EXIT)                             \
    XW(LDDW)                                                            \
    XL(LDX_B) XL(LDX_H) XL(LDX_W) XL(LDX_DW)                            \
    X0(LDXC_B) X0(LDXC_H) X0(LDXC_W) X0(LDXC_DW)                        \
    X0(ST_B) X0(ST_H) X0(ST_W) X0(ST_DW)                                \
    X0(STX_B) X0(STX_H) X0(STX_W) X0(STX_DW)                            \
    X0(AADD_W) X0(AADD_DW) X0(AOR_W) X0(AOR_DW)                         \
    X0(AAND_W) X0(AAND_DW) X0(AXOR_W) X0(AXOR_DW)                       \
    X0(FADD_W) X0(FADD_DW) X0(FOR_W) X0(FOR_DW)                         \
    X0(FAND_W) X0(FAND_DW) X0(FXOR_W) X0(FXOR_DW)                       \
    X0(XCHG_W) X0(XCHG_DW) X0(CMPXCHG_W) X0(CMPXCHG_DW)

/* Applies 'F(N, SUFFIX)' to the variants beyond the base. */
#define OKOVM_V1(F, N) F(N, _1)
#define OKOVM_V2(F, N) OKOVM_V1(F, N) F(N, _2)
#define OKOVM_V3(F, N) OKOVM_V2(F, N) F(N, _3)
#define OKOVM_V5(F, N) OKOVM_V3(F, N) F(N, _4) F(N, _5)
#define OKOVM_V8(F, N) OKOVM_V5(F, N) F(N, _6) F(N, _7) F(N, _8)
#define OKOVM_V11(F, N) OKOVM_V8(F, N) F(N, _9) F(N, _10) F(N, _11)

#define OKOVM_OP_ENUMV(N, V) OP_##N##V,
#define OKOVM_OP_ENUM0(N) OP_##N,
#define OKOVM_OP_ENUMK(N) OP_##N, OKOVM_V3(OKOVM_OP_ENUMV, N)
#define OKOVM_OP_ENUMX(N) OP_##N, OKOVM_V11(OKOVM_OP_ENUMV, N)
#define OKOVM_OP_ENUMJK(N) OP_##N, OKOVM_V2(OKOVM_OP_ENUMV, N)
#define OKOVM_OP_ENUMJX(N) OP_##N, OKOVM_V8(OKOVM_OP_ENUMV, N)
#define OKOVM_OP_ENUML(N) OP_##N, OKOVM_V5(OKOVM_OP_ENUMV, N)
#define OKOVM_OP_ENUMW(N) OP_##N, OKOVM_V1(OKOVM_OP_ENUMV, N)
enum okovm_op {
    OKOVM_OPS(OKOVM_OP_ENUM0, OKOVM_OP_ENUMK, OKOVM_OP_ENUMX,
              OKOVM_OP_ENUMJK, OKOVM_OP_ENUMJX, OKOVM_OP_ENUML,
              OKOVM_OP_ENUMW)
    OP__MAX
};

/* Kinds of operation, as above. */
enum okovm_op_kind {
    OKOVM_KIND_0 = 0,
    OKOVM_KIND_K,
    OKOVM_KIND_X,
    OKOVM_KIND_JK,
    OKOVM_KIND_JX,
    OKOVM_KIND_L,
    OKOVM_KIND_W,
};

#endif /* ops.h */
