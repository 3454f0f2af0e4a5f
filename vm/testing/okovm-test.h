/*
 * okovm-test.h -- TEST-ONLY entry points, in build/vm/libokovm-test.a.
 *
 * These functions bypass the ELF loader and the kernel admission step, or
 * inject faults.  They are not part of libokovm: neither libokovm.so nor
 * libokovm.a (which Open vSwitch links) contains them.  The archive is
 * built from vm/testing/ and links statically with libokovm.a, whose
 * internal (hidden) constructor okovm_prog_alloc() + okovm_prog_finish()
 * it uses; link it before libokovm.a.  Unit tests, fuzz targets and the
 * benchmark use it to run hand-assembled instructions.
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

/* Makes programs loaded afterwards by okovm_test_load_raw() run without
 * the interpreters' register slots (every operand from the register file)
 * if 'disable' is nonzero; for differential tests.  Process-wide, but it
 * only affects this archive's raw loads. */
void okovm_test_disable_register_slots(int disable);

/* Makes every later mprotect() of this process that asks for PROT_EXEC
 * fail with 'error' (a positive errno), as a W^X policy that refuses
 * executable memory would, so that the JIT cannot install its code.
 * Installs a seccomp filter, which cannot be undone: call it in a child
 * process.  Returns 0 or a positive errno. */
int okovm_test_refuse_exec_memory(int error);

/* Makes every later capset() of this process fail with 'error' (a
 * positive errno), so that kernel admission cannot drop privileges for
 * its strict check.  A seccomp filter, like
 * okovm_test_refuse_exec_memory(): call it in a child process.  Returns
 * 0 or a positive errno. */
int okovm_test_refuse_capset(int error);

#ifdef __cplusplus
}
#endif

#endif /* okovm-test.h */
