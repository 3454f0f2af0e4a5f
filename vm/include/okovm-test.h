/*
 * okovm-test.h -- TEST-ONLY entry points of libokovm.
 *
 * These functions bypass the ELF loader and the kernel admission step.
 * They exist for unit tests that hand-assemble instructions and for
 * stand-alone maps; a switch must never use them to load programs from
 * users.  Plain C, loadable by cffi in ABI mode like okovm.h.
 */

#ifndef OKOVM_TEST_H
#define OKOVM_TEST_H 1

#include <stdint.h>
#include "okovm.h"

#ifdef __cplusplus
extern "C" {
#endif

/* One BPF instruction, laid out as the kernel's 'struct bpf_insn'
 * ('regs': dst in the low nibble, src in the high nibble). */
struct okovm_test_insn {
    uint8_t code;
    uint8_t regs;
    int16_t off;
    int32_t imm;
};

/* Loads the 'n' raw instructions 'insns' into 'ns' without the kernel
 * verifier.  ld_imm64 with src_reg 1 (map) or 2 (map value) refers to
 * 'maps[imm]'.  'flags' OKOVM_LOAD_FORCE_SANDBOX selects sandbox mode;
 * otherwise the program runs unchecked (trusted test code: no loops
 * allowed).  Returns 0 or a positive errno with 'err' filled in. */
int okovm_test_load_raw(struct okovm_ns *ns,
                        const struct okovm_test_insn *insns, uint32_t n,
                        struct okovm_map **maps, uint32_t n_maps,
                        uint32_t flags, struct okovm_prog **progp,
                        struct okovm_error *err);

/* Creates a stand-alone map in 'ns' (not pinned).  Returns 0 or a
 * positive errno. */
int okovm_test_map_create(struct okovm_ns *ns, const char *name,
                          uint32_t type, uint32_t key_size,
                          uint32_t value_size, uint32_t max_entries,
                          uint32_t map_flags, struct okovm_map **mapp);

/* Makes the kernel admission's privilege drop fail with 'error' (a
 * positive errno), as if capset() had refused; 0 restores normal
 * behaviour.  Process-wide. */
void okovm_test_fail_privilege_drop(int error);

/* Makes the JIT's executable mapping fail with 'error' (a positive errno),
 * as a W^X policy that refuses executable memory would: programs loaded
 * afterwards stay in the interpreter.  0 restores normal behaviour.
 * Process-wide. */
void okovm_test_fail_jit(int error);

/* Makes programs loaded afterwards run without the interpreters'
 * register slots (every operand from the register file) if 'disable' is
 * nonzero; for differential tests.  Process-wide. */
void okovm_test_disable_register_slots(int disable);

#ifdef __cplusplus
}
#endif

#endif /* okovm-test.h */
