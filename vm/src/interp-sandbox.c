/*
 * interp-sandbox.c -- the checked interpreter for programs the kernel did
 * not verify.  Every load and store must fall inside a region the program
 * may touch: the context and the packet (read only), the VM stack, global
 * data and map values returned by lookups during this run.  Helper
 * arguments are checked the same way, as the kinds in the helper table
 * (helpers.c) describe them: map arguments must be maps of the program,
 * and an instruction budget bounds every run.  A violation stops
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

/* Checks the arguments 'r[1]' to 'r[5]' of a call of helper 'h' against
 * the kinds its table entry gives.  Returns NULL and stores the map
 * argument (or NULL) in '*mapp', or returns why the call is refused. */
static inline const char *
sb_helper_args(const struct okovm_run *run, const struct okovm_prog *prog,
               const struct okovm_helper *h, const uint64_t *r,
               struct okovm_map **mapp)
{
    struct okovm_map *m = NULL;
    int a;

    for (a = 0; a < 5; a++) {
        uint64_t arg = r[BPF_REG_1 + a];
        uint32_t size;

        switch (h->args[a]) {
        case OKOVM_ARG_MAP:
            m = sb_map(prog, arg);
            if (!m) {
                return "helper argument is not a map";
            }
            break;
        case OKOVM_ARG_MAP_KEY:
        case OKOVM_ARG_MAP_VALUE:
            size = (h->args[a] == OKOVM_ARG_MAP_KEY ? m->key_size
                                                    : m->value_size);
            if (!sb_ok(run, arg, size, false)) {
                return "out-of-bounds load";
            }
            break;
        case OKOVM_ARG_MEM:
            size = a < 4 ? (uint32_t) r[BPF_REG_2 + a] : 0;
            if (!sb_ok(run, arg, size ? size : 1, false)) {
                return "out-of-bounds load";
            }
            break;
        case OKOVM_ARG_NONE:
        case OKOVM_ARG_ANYTHING:
        case OKOVM_ARG_MEM_SIZE:
            break;
        }
    }
    *mapp = m;
    return NULL;
}

/* The interpreter itself; okovm_exec_sandbox() below prepares its run. */
static uint64_t sandbox_interp(const struct okovm_prog *, struct okovm_run *);

#define EXEC_NAME sandbox_interp
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
#define SB_HELPER_ARGS(H, MAPP)                                 \
    do {                                                        \
        const char *why__ = sb_helper_args(run, prog, (H), r, (MAPP)); \
        if (OKOVM_UNLIKELY(why__)) {                            \
            FAULT(why__);                                       \
        }                                                       \
    } while (0)
#define SB_HELPER_RET(H, V, M)                                  \
    do {                                                        \
        if ((H)->ret == OKOVM_RET_MAP_VALUE_OR_NULL) {          \
            sb_grant(run, (const void *) (uintptr_t) (V), (M)); \
        }                                                       \
    } while (0)

#include "interp.inc"

/* Runs 'prog' in the sandbox: the program may touch its global data from
 * the start, and map values the lookups of this run return. */
uint64_t
okovm_exec_sandbox(const struct okovm_prog *prog, struct okovm_run *run)
{
    uint32_t i;

    run->n_grants = 0;
    run->fault = NULL;
    for (i = 0; i < prog->n_maps; i++) {
        const struct okovm_map *m = prog->maps[i];

        if (m->global_data && run->n_grants < OKOVM_MAX_GRANTS) {
            struct okovm_grant *g = &run->grants[run->n_grants++];

            g->lo = (uintptr_t) m->values;
            g->hi = (uintptr_t) m->values + m->value_size;
            g->writable = !m->rdonly;
        }
    }
    return sandbox_interp(prog, run);
}

/* Returns the label table of the sandbox's interpreter, for the
 * decoder. */
const void *const *
okovm_exec_sandbox_labels(void)
{
    return (const void *const *) (uintptr_t) sandbox_interp(NULL, NULL);
}
