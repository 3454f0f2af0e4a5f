/*
 * ops.h -- the internal operations of the pre-decoded instruction form,
 * as an X-macro list shared by the decoder and both interpreters.
 */

#ifndef OKOVM_OPS_H
#define OKOVM_OPS_H 1

#define OKOVM_ALU_OPS(X, W)                                     \
    X(ADD##W##_K) X(ADD##W##_X) X(SUB##W##_K) X(SUB##W##_X)     \
    X(MUL##W##_K) X(MUL##W##_X) X(DIV##W##_K) X(DIV##W##_X)     \
    X(OR##W##_K) X(OR##W##_X) X(AND##W##_K) X(AND##W##_X)       \
    X(LSH##W##_K) X(LSH##W##_X) X(RSH##W##_K) X(RSH##W##_X)     \
    X(MOD##W##_K) X(MOD##W##_X) X(XOR##W##_K) X(XOR##W##_X)     \
    X(MOV##W##_K) X(MOV##W##_X) X(ARSH##W##_K) X(ARSH##W##_X)   \
    X(NEG##W)

#define OKOVM_JMP_OPS(X, W)                                     \
    X(JEQ##W##_K) X(JEQ##W##_X) X(JGT##W##_K) X(JGT##W##_X)     \
    X(JGE##W##_K) X(JGE##W##_X) X(JSET##W##_K) X(JSET##W##_X)   \
    X(JNE##W##_K) X(JNE##W##_X) X(JSGT##W##_K) X(JSGT##W##_X)   \
    X(JSGE##W##_K) X(JSGE##W##_X) X(JLT##W##_K) X(JLT##W##_X)   \
    X(JLE##W##_K) X(JLE##W##_X) X(JSLT##W##_K) X(JSLT##W##_X)   \
    X(JSLE##W##_K) X(JSLE##W##_X)

#define OKOVM_OPS(X)                                            \
    OKOVM_ALU_OPS(X, 64)                                        \
    OKOVM_ALU_OPS(X, 32)                                        \
    X(LE16) X(LE32) X(LE64) X(BE16) X(BE32) X(BE64)             \
    X(JA)                                                       \
    OKOVM_JMP_OPS(X, 64)                                        \
    OKOVM_JMP_OPS(X, 32)                                        \
    X(CALL_LOOKUP) X(CALL_UPDATE) X(CALL_DELETE) X(CALL_KTIME)  \
    X(CALL_PRINTK) X(CALL_PRANDOM) X(CALL_LOCAL) X(EXIT)        \
    X(LDDW)                                                     \
    X(LDX_B) X(LDX_H) X(LDX_W) X(LDX_DW)                        \
    X(LDXC_B) X(LDXC_H) X(LDXC_W) X(LDXC_DW)                    \
    X(ST_B) X(ST_H) X(ST_W) X(ST_DW)                            \
    X(STX_B) X(STX_H) X(STX_W) X(STX_DW)                        \
    X(AADD_W) X(AADD_DW) X(AOR_W) X(AOR_DW)                     \
    X(AAND_W) X(AAND_DW) X(AXOR_W) X(AXOR_DW)                   \
    X(FADD_W) X(FADD_DW) X(FOR_W) X(FOR_DW)                     \
    X(FAND_W) X(FAND_DW) X(FXOR_W) X(FXOR_DW)                   \
    X(XCHG_W) X(XCHG_DW) X(CMPXCHG_W) X(CMPXCHG_DW)

#define OKOVM_OP_ENUM(NAME) OP_##NAME,
enum okovm_op {
    OKOVM_OPS(OKOVM_OP_ENUM)
    OP__MAX
};

#endif /* ops.h */
