/*
 * fuzz-verify.c -- libFuzzer target: arbitrary bytes as raw BPF
 * instructions (8 bytes each) through the structural verifier, with and
 * without back edges, then loaded in sandbox mode and run on a few
 * packets.  ld_imm64 map references may name an array, a hash and an LPM
 * trie.  Checks: the verifier never crashes; whatever it accepts without
 * back edges it also accepts with them; the sandbox runs anything it
 * accepts without a memory error.
 */

#include <errno.h>

#include "okovm-private.h"
#include "okovm-test.h"
#include "fuzz.h"

#define MAX_INSNS 4096

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct okovm_error err;
    struct okovm_map *maps[3];
    struct okovm_verify_opts vo;
    struct okovm_test_insn *insns;
    struct okovm_prog *prog;
    struct okovm_vinfo vi;
    struct okovm_ns *ns;
    uint32_t n = size / 8;
    bool strict_ok;
    int error;

    if (n > MAX_INSNS) {
        return -1;
    }
    /* A copy of its exact size: AddressSanitizer sees any overread. */
    insns = malloc(n ? n * 8 : 1);
    memcpy(insns, data, n * 8);

    ns = fuzz_ns();
    if (okovm_test_map_create(ns, "array", OKOVM_MAP_ARRAY, 4, 8, 4, 0,
                              &maps[0])
        || okovm_test_map_create(ns, "hash", OKOVM_MAP_HASH, 8, 16, 16, 0,
                                 &maps[1])
        || okovm_test_map_create(ns, "lpm", OKOVM_MAP_LPM_TRIE, 8, 4, 16,
                                 BPF_F_NO_PREALLOC, &maps[2])) {
        abort();
    }

    memset(&vo, 0, sizeof vo);
    vo.n_maps = 3;
    vo.maps = (const struct okovm_map *const *) maps;
    vo.allow_back_edges = false;
    okovm_error_clear(&err);        /* okovm_verify() keeps a first error. */
    error = okovm_verify((const struct bpf_insn *) insns, n, &vo, &vi, &err);
    strict_ok = !error;
    if (error) {
        fuzz_check_error(error, &err);
    } else {
        okovm_vinfo_free(&vi);
    }

    error = okovm_test_load_raw(ns, insns, n, maps, 3,
                                OKOVM_LOAD_FORCE_SANDBOX, &prog, &err);
    if (error) {
        fuzz_check_error(error, &err);
        if (strict_ok && error != ENOMEM) {
            /* Allowing back edges cannot make a program worse. */
            fprintf(stderr, "accepted without back edges, refused with "
                    "them: %s\n", err.msg);
            abort();
        }
    } else {
        prog->budget = FUZZ_BUDGET;
        fuzz_run_packets(prog);
        okovm_prog_unref(prog);
    }
    okovm_map_unref(maps[0]);
    okovm_map_unref(maps[1]);
    okovm_map_unref(maps[2]);
    okovm_ns_destroy(ns);
    free(insns);
    return 0;
}
