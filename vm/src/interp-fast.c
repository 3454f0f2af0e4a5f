/*
 * interp-fast.c -- the interpreter for kernel-verified programs: no
 * run-time checks, the kernel verifier proved memory safety and
 * termination of the same instructions.
 */

#include <stdbool.h>
#include <string.h>

#include "okovm-private.h"
#include "ops.h"

#define EXEC_NAME okovm_exec_fast
#define SANDBOX 0
#define SB_CHECK(A, N, W) ((void) 0)
#define SB_ATOMIC(A, N) ((void) 0)
#define SB_HELPER_ARGS(H, MAPP) ((void) (MAPP))
#define SB_HELPER_RET(H, V, M) ((void) 0)

#include "interp.inc"

/* Returns the label table of okovm_exec_fast(), for the decoder. */
const void *const *
okovm_exec_fast_labels(void)
{
    return (const void *const *) (uintptr_t) okovm_exec_fast(NULL, NULL);
}
