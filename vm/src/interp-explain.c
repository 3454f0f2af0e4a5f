/*
 * interp-explain.c -- the interpreter of okovm_prog_explain(): the one for
 * kernel-verified programs (no run-time checks: the verifier proved the
 * same instructions safe), that reports to the caller's hooks each
 * instruction before it runs and each helper call that takes a map and a
 * key.  It runs its own decoding of the program ('run->code'), so that
 * the other engines' decoded code and their speed are untouched.
 */

#include <stdbool.h>
#include <string.h>

#include "okovm-private.h"
#include "ops.h"

/* Reports a call of helper 'h' with arguments 'r' to the hooks of 'run',
 * if its first two arguments are a map and its key. */
static void
explain_call(const struct okovm_prog *prog, const struct okovm_run *run,
             uint32_t insn, const struct okovm_helper *h, const uint64_t *r)
{
    uint32_t i;

    if (!run->hooks->map_call || h->args[0] != OKOVM_ARG_MAP
        || h->args[1] != OKOVM_ARG_MAP_KEY) {
        return;
    }
    for (i = 0; i < prog->n_maps; i++) {
        if ((uintptr_t) prog->maps[i] == r[BPF_REG_1]) {
            run->hooks->map_call(run->hooks->aux, insn, h->id, i,
                                 (const void *) (uintptr_t) r[BPF_REG_2]);
            return;
        }
    }
}

#define EXEC_NAME okovm_exec_explain
#define SANDBOX 0
#define SB_CHECK(A, N, W) ((void) 0)
#define SB_ATOMIC(A, N) ((void) 0)
#define SB_HELPER_ARGS(H, MAPP) ((void) (MAPP))
#define SB_HELPER_RET(H, V, M) ((void) 0)
#define CODE_BASE (run->code)
#define EXPLAIN_INSN()                                                  \
    do {                                                                \
        if (run->hooks->insn) {                                         \
            run->hooks->insn(run->hooks->aux, (uint32_t) (ip - CODE_BASE)); \
        }                                                               \
    } while (0)
#define EXPLAIN_CALL(H) \
    explain_call(prog, run, (uint32_t) (ip - CODE_BASE), (H), r)

#include "interp.inc"

/* Returns the label table of okovm_exec_explain(), for the decoder. */
const void *const *
okovm_exec_explain_labels(void)
{
    return (const void *const *) (uintptr_t) okovm_exec_explain(NULL, NULL);
}
