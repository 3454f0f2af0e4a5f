/*
 * interp-sandbox.c -- the checked interpreter for programs the kernel did
 * not verify.  Every load and store must fall inside a region the program
 * may touch: the context and the packet (read only), the VM stack, global
 * data and map values returned by lookups during this run.  Helper
 * arguments are checked the same way, map arguments must be maps of the
 * program, and an instruction budget bounds every run.  A violation stops
 * the run with XDP_ABORTED and records why in 'run->fault'.
 */

#include <stdbool.h>
#include <string.h>

#include "okovm-private.h"
#include "ops.h"

static inline bool
sb_ok(const struct okovm_run *run, uint64_t a, uint64_t n, bool write)
{
    uint64_t end = a + n;
    uint32_t i;

    if (end < a) {
        return false;
    }
    if (a >= run->stack_lo && end <= run->stack_hi) {
        return true;
    }
    if (!write) {
        uint64_t c = (uintptr_t) &run->ctx;

        if (a >= run->ctx.data && end <= run->ctx.data_end) {
            return true;
        }
        if (a >= c && end <= c + sizeof run->ctx) {
            return true;
        }
    }
    for (i = 0; i < run->n_grants; i++) {
        const struct okovm_grant *g = &run->grants[i];

        if (a >= g->lo && end <= g->hi && (!write || g->writable)) {
            return true;
        }
    }
    return false;
}

static inline struct okovm_map *
sb_map(const struct okovm_prog *prog, uint64_t v)
{
    uint32_t i;

    for (i = 0; i < prog->n_maps; i++) {
        if ((uintptr_t) prog->maps[i] == v) {
            return prog->maps[i];
        }
    }
    return NULL;
}

static inline void
sb_grant(struct okovm_run *run, const void *v, const struct okovm_map *m)
{
    if (v && run->n_grants < OKOVM_MAX_GRANTS) {
        struct okovm_grant *g = &run->grants[run->n_grants++];

        g->lo = (uintptr_t) v;
        g->hi = g->lo + m->value_size;
        g->writable = !m->rdonly;
    }
}

#define EXEC_NAME okovm_exec_sandbox
#define SANDBOX 1
#define SB_CHECK(A, N, W)                                       \
    do {                                                        \
        if (OKOVM_UNLIKELY(!sb_ok(run, (A), (N), (W)))) {       \
            FAULT((W) ? "out-of-bounds store"                   \
                      : "out-of-bounds load");                  \
        }                                                       \
    } while (0)
#define SB_ATOMIC(A, N)                                         \
    do {                                                        \
        if (OKOVM_UNLIKELY((A) % (N) || !sb_ok(run, (A), (N), 1))) { \
            FAULT("bad atomic access");                         \
        }                                                       \
    } while (0)
#define SB_MAP(V)                                               \
    ({                                                          \
        struct okovm_map *m__ = sb_map(prog, (V));              \
        if (OKOVM_UNLIKELY(!m__)) {                             \
            FAULT("helper argument is not a map");              \
        }                                                       \
        m__;                                                    \
    })
#define SB_GRANT(V, M) sb_grant(run, (V), (M))

#include "interp.inc"

/* Returns the label table of okovm_exec_sandbox(), for the decoder. */
const void *const *
okovm_exec_sandbox_labels(void)
{
    return (const void *const *) (uintptr_t) okovm_exec_sandbox(NULL, NULL);
}
