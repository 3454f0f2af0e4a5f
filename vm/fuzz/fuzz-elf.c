/*
 * fuzz-elf.c -- libFuzzer target: arbitrary bytes as a BPF ELF object
 * through okovm_prog_load() in sandbox mode (the ELF and BTF loader,
 * linking, the structural verifier, the decoder).  Every input must be
 * refused with an error, or loaded into the sandbox and then run safely
 * on a few packets.  Kernel admission is left to fuzz-kernel-diff.
 */

#include <bpf/libbpf.h>

#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct okovm_error err;
    struct okovm_load_opts opts = {
        .flags = OKOVM_LOAD_FORCE_SANDBOX,
        .insn_budget = FUZZ_BUDGET,
    };
    struct okovm_prog_info info;
    struct okovm_prog *prog;
    struct okovm_ns *ns = fuzz_ns();
    uint32_t i;
    int error;

    error = okovm_prog_load(ns, data, size, &opts, &prog, &err);
    if (error) {
        fuzz_check_error(error, &err);
    } else {
        okovm_prog_get_info(prog, &info);
        if (info.mode != OKOVM_MODE_SANDBOX || info.kernel_verified
            || info.jit) {
            abort();
        }
        fuzz_run_packets(prog);
        for (i = 0; i < okovm_prog_n_maps(prog); i++) {
            struct okovm_map *map = okovm_prog_get_map(prog, i);
            struct okovm_map_info mi;
            uint32_t btf_size;

            okovm_map_get_info(map, &mi);
            okovm_map_btf(map, &btf_size);
        }
        okovm_prog_unref(prog);
    }
    okovm_ns_destroy(ns);
    return 0;
}
