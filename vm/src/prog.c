/*
 * prog.c -- program life cycle: the load pipeline (okovm_prog_load() and
 * its stages: link, maps, global data, structural verifier, kernel
 * admission, pinned maps, engine), the choice of the engine, running,
 * statistics and accessors.
 */

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#if defined(__x86_64__) || defined(__i386__)
#include <x86intrin.h>
#endif
#include <bpf/btf.h>

#include "okovm-private.h"

/* Per-thread state for statistics: a shard index (exclusive to this
 * thread for the first OKOVM_STATS_SHARDS threads, shared afterwards). */
struct thread_stats {
    uint32_t shard;
    bool exclusive;
    bool init;
};
static __thread struct thread_stats tstats;
static atomic_uint next_shard;

static uint64_t
now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t) ts.tv_sec * 1000000000u + ts.tv_nsec;
}

struct okovm_prog *
okovm_prog_alloc(struct okovm_ns *ns)
{
    struct okovm_prog *prog = aligned_alloc(64, OKOVM_ROUND_UP(
                                                sizeof *prog, 64));

    if (prog) {
        memset(prog, 0, sizeof *prog);
        atomic_init(&prog->refs, 1);
        prog->ns = ns;
        prog->budget = OKOVM_DEFAULT_BUDGET;
        okovm_ns_ref(ns);
    }
    return prog;
}

void
okovm_prog_ref(struct okovm_prog *prog)
{
    atomic_fetch_add(&prog->refs, 1);
}

void
okovm_prog_unref(struct okovm_prog *prog)
{
    uint32_t i;

    if (!prog || atomic_fetch_sub(&prog->refs, 1) != 1) {
        return;
    }
    for (i = 0; i < prog->n_maps; i++) {
        okovm_map_unref(prog->maps[i]);
    }
    free(prog->maps);
    free(prog->insns);
    free(prog->code);
    okovm_jit_free(prog);
    free(prog->btf_raw);
    btf__free(prog->btf);
    free(prog->lines);
    okovm_ns_unref(prog->ns);
    free(prog);
}

/* Chooses the engine that runs 'prog', the one place that does, as the
 * kernel's bpf_prog_select_runtime(): the sandbox for programs the kernel
 * did not verify ('prog->mode'); for verified ones native code, unless
 * OKOVM_LOAD_NO_JIT or it does not compile, and then the unchecked
 * interpreter.  Decodes 'prog' for the interpreter chosen (the JIT reads
 * the resolved ld_imm64 values too) and sets 'prog->exec', which every
 * run calls.  'vi' holds the structural verifier's findings. */
static int
select_engine(struct okovm_prog *prog, const struct okovm_vinfo *vi,
              struct okovm_error *err)
{
    bool sandbox = prog->mode == OKOVM_MODE_SANDBOX;
    int error;

    error = okovm_decode(prog, vi, (sandbox ? okovm_exec_sandbox_labels()
                                    : okovm_exec_fast_labels()),
                         &prog->code, err);
    if (error) {
        return error;
    }
    if (sandbox) {
        prog->engine = OKOVM_ENGINE_SANDBOX;
        prog->exec = okovm_exec_sandbox;
        return 0;
    }

    prog->engine = OKOVM_ENGINE_INTERP;
    prog->exec = okovm_exec_fast;
    if (!prog->no_jit) {
        int jit_error = okovm_jit_compile(prog, vi);

        if (!jit_error) {
            prog->engine = OKOVM_ENGINE_JIT;
            prog->exec = okovm_exec_jit;
        } else if (jit_error != EOPNOTSUPP) {
            /* Not an error, but worth saying where a JIT exists. */
            okovm_ns_log(prog->ns, OKOVM_LOG_WARN, false, "%s: program "
                         "'%s' runs in the interpreter: compiling it to "
                         "native code failed (%s)", prog->ns->name,
                         prog->name, strerror(jit_error));
        }
    }
    return 0;
}

/* Runs the structural verifier on 'prog' and chooses its engine. */
int
okovm_prog_finish(struct okovm_prog *prog, bool allow_back_edges,
                  struct okovm_error *err)
{
    struct okovm_verify_opts vo = {
        .n_maps = prog->n_maps,
        .maps = (const struct okovm_map *const *) prog->maps,
        .allow_back_edges = allow_back_edges,
    };
    struct okovm_vinfo vi;
    int error;

    error = okovm_verify(prog->insns, prog->n_insns, &vo, &vi, err);
    if (!error) {
        /* Programs the kernel did not check with its strict rules may
         * read stack they never wrote (the lenient rules allow it): give
         * them zeroes rather than the switch's old stack contents. */
        prog->zero_stack = 0;
        if (prog->kernel_verified && !prog->kernel_strict) {
            prog->zero_stack = (vi.max_depth > 1 || vi.var_stack
                                ? vi.max_depth * OKOVM_STACK_SIZE
                                : OKOVM_ROUND_UP(vi.stack_depth, 8));
            if (prog->zero_stack > OKOVM_MAX_FRAMES * OKOVM_STACK_SIZE) {
                prog->zero_stack = OKOVM_MAX_FRAMES * OKOVM_STACK_SIZE;
            }
        }
        error = select_engine(prog, &vi, err);
        okovm_vinfo_free(&vi);
    }
    return error;
}

/* Extracts from the kernel verifier log 'log' the index of the last
 * instruction it printed, or -1. */
static int
log_last_insn(const char *log)
{
    const char *p = log;
    int last = -1;

    while (p && *p) {
        int n = 0, k = 0;

        if (sscanf(p, "%d: (%*x)%n", &n, &k) >= 1 && k > 0) {
            last = n;
        }
        p = strchr(p, '\n');
        if (p) {
            p++;
        }
    }
    return last;
}

/* The stages of okovm_prog_load(), in order.  Each returns 0 or a
 * positive errno with 'err' filled in; a refusal at any stage leaves the
 * namespace untouched (pinned maps are bound last). */

/* Stage 1: a program from the linked instructions of 'obj' (the one
 * program 'opts' selects), with its line information and BTF. */
static int
link_program(struct okovm_ns *ns, struct okovm_object *obj,
             const struct okovm_load_opts *opts, struct okovm_prog **progp,
             struct okovm_error *err)
{
    struct okovm_linked linked;
    struct okovm_prog *prog;
    const void *btf;
    int error;

    memset(&linked, 0, sizeof linked);
    error = okovm_object_link(obj, opts, &linked, err);
    if (error) {
        return error;
    }
    prog = okovm_prog_alloc(ns);
    if (!prog) {
        okovm_linked_free(&linked);
        return okovm_error_set(err, ENOMEM, -1, "out of memory");
    }
    *progp = prog;

    snprintf(prog->name, sizeof prog->name, "%s", linked.name);
    snprintf(prog->section, sizeof prog->section, "%s", linked.section);
    if (opts && opts->insn_budget) {
        prog->budget = opts->insn_budget;
    }
    prog->no_jit = opts && (opts->flags & OKOVM_LOAD_NO_JIT);
    prog->insns = linked.insns;
    prog->n_insns = linked.n_insns;
    prog->lines = linked.lines;
    prog->n_lines = linked.n_lines;
    linked.insns = NULL;
    linked.lines = NULL;
    okovm_linked_free(&linked);

    btf = okovm_object_btf(obj, &prog->btf_size);
    prog->btf_raw = malloc(prog->btf_size);
    if (!prog->btf_raw) {
        return okovm_error_set(err, ENOMEM, -1, "out of memory");
    }
    memcpy(prog->btf_raw, btf, prog->btf_size);
    /* NULL if libbpf cannot parse it: errors then name no source line. */
    prog->btf = btf__new(prog->btf_raw, prog->btf_size);
    return 0;
}

/* Stage 2: the maps of 'obj' for 'prog', not yet bound to the pinned
 * maps of the namespace. */
static int
create_maps(struct okovm_prog *prog, struct okovm_object *obj,
            struct okovm_error *err)
{
    uint32_t n = okovm_object_n_maps(obj), i;

    prog->maps = calloc(n + 1, sizeof *prog->maps);
    if (!prog->maps) {
        return okovm_error_set(err, ENOMEM, -1, "out of memory");
    }
    for (i = 0; i < n; i++) {
        int error = okovm_object_make_map(obj, prog->ns, i, &prog->maps[i],
                                          err);

        if (error) {
            return error;
        }
        prog->n_maps = i + 1;
    }
    return 0;
}

/* Stage 3: the global-data overrides of 'opts' ('.data', '.rodata' and
 * '.bss' contents) applied to the maps of 'prog'. */
static int
apply_globals(struct okovm_prog *prog, const struct okovm_load_opts *opts,
              struct okovm_error *err)
{
    uint32_t i;

    if (!opts || !opts->n_globals) {
        return 0;
    }
    if (!opts->globals) {
        return okovm_error_set(err, EINVAL, -1, "global-data overrides: "
                               "n_globals is %u but globals is NULL",
                               opts->n_globals);
    }
    for (i = 0; i < opts->n_globals; i++) {
        const struct okovm_global_init *g = &opts->globals[i];
        struct okovm_map *map = (g->section
                                 ? okovm_prog_find_map(prog, g->section)
                                 : NULL);

        if (!map || !map->global_data) {
            return okovm_error_set(err, ENOENT, -1, "global-data override "
                                   "%u: the object has no global-data "
                                   "section '%s'", i,
                                   g->section ? g->section : "(null)");
        }
        if (g->offset > map->value_size
            || g->size > map->value_size - g->offset) {
            return okovm_error_set(err, EINVAL, -1, "global-data override "
                                   "%u: %u bytes at offset %u do not fit "
                                   "in '%s' (%u bytes)", i, g->size,
                                   g->offset, map->name, map->value_size);
        }
        if (g->size && !g->data) {
            return okovm_error_set(err, EINVAL, -1, "global-data override "
                                   "%u: no data", i);
        }
        if (g->size) {
            memcpy(map->values + g->offset, g->data, g->size);
        }
    }
    return 0;
}

/* Stage 4: the structural verifier, before the kernel is asked (loops
 * allowed: kernel admission decides about them). */
static int
check_structure(struct okovm_prog *prog, struct okovm_error *err)
{
    struct okovm_verify_opts vo = {
        .n_maps = prog->n_maps,
        .maps = (const struct okovm_map *const *) prog->maps,
        .allow_back_edges = true,
    };
    struct okovm_vinfo vi;
    int error;

    error = okovm_verify(prog->insns, prog->n_insns, &vo, &vi, err);
    if (error) {
        okovm_error_locate(err, prog);
        return error;
    }
    okovm_vinfo_free(&vi);
    return 0;
}

/* Stage 5: kernel admission of the object 'elf' ('len' bytes) that
 * 'prog' comes from, as the load 'flags' allow, which sets 'prog->mode':
 * OKOVM_MODE_VERIFIED if the kernel admitted it, OKOVM_MODE_SANDBOX if
 * the load forces the sandbox or allows it and the kernel cannot be
 * asked. */
static int
admit(struct okovm_prog *prog, const void *elf, size_t len, uint32_t flags,
      struct okovm_error *err)
{
    struct okovm_ns *ns = prog->ns;
    struct okovm_map **globals;
    struct okovm_admit_req req = {
        .elf = elf,
        .len = len,
        .section = prog->section,
        .prog_name = prog->name,
        .allow_lenient = (flags & OKOVM_LOAD_ALLOW_LENIENT_KERNEL) != 0,
    };
    bool strict = false;
    char why[600];
    uint32_t i;
    int error;

    if (flags & OKOVM_LOAD_FORCE_SANDBOX) {
        prog->mode = OKOVM_MODE_SANDBOX;
        return 0;
    }

    globals = calloc(prog->n_maps + 1, sizeof *globals);
    if (!globals) {
        return okovm_error_set(err, ENOMEM, -1, "out of memory");
    }
    for (i = 0; i < prog->n_maps; i++) {
        if (prog->maps[i]->global_data) {
            globals[req.n_globals++] = prog->maps[i];
        }
    }
    req.globals = globals;
    error = okovm_kernel_admit(&req, &strict, why, sizeof why,
                               &prog->kernel_ns, err);
    free(globals);
    prog->kernel_strict = strict;

    if (!error) {
        if (!strict) {
            okovm_ns_log(ns, OKOVM_LOG_INFO, false, "%s: program '%s' "
                         "admitted by the kernel verifier with privileged "
                         "(lenient) rules only; %s", ns->name, prog->name,
                         why);
        }
        prog->kernel_verified = true;
        prog->mode = OKOVM_MODE_VERIFIED;
        return 0;
    }
    if (error == EPERM && (flags & OKOVM_LOAD_ALLOW_SANDBOX)) {
        okovm_error_clear(err);
        prog->mode = OKOVM_MODE_SANDBOX;
        return 0;
    }
    if (err) {
        int insn = log_last_insn(err->log);

        if (insn >= 0 && (uint32_t) insn < prog->n_insns) {
            err->insn = insn;
            okovm_error_locate(err, prog);
        }
    }
    return error;
}

/* Stage 6: shares the maps of 'prog' pinned by name with the programs of
 * the namespace that have them. */
static int
bind_pinned_maps(struct okovm_prog *prog, struct okovm_error *err)
{
    uint32_t i;

    for (i = 0; i < prog->n_maps; i++) {
        if (prog->maps[i]->pinned) {
            char why[256];
            int error = okovm_ns_bind_pinned(prog->ns, prog->maps[i],
                                             &prog->maps[i], why,
                                             sizeof why);

            if (error) {
                return okovm_error_set(err, error, -1, "%s", why);
            }
        }
    }
    return 0;
}

/* Stage 7: the structural verifier again, with the maps now bound (its
 * findings guide the decoder and the JIT), and the choice of the engine:
 * okovm_prog_finish(). */
static int
finish(struct okovm_prog *prog, struct okovm_error *err)
{
    int error = okovm_prog_finish(prog, true, err);

    if (error) {
        okovm_error_locate(err, prog);
    }
    return error;
}

int
okovm_prog_load(struct okovm_ns *ns, const void *elf, size_t len,
                const struct okovm_load_opts *opts,
                struct okovm_prog **progp, struct okovm_error *err)
{
    uint32_t flags = opts ? opts->flags : 0;
    struct okovm_object *obj = NULL;
    struct okovm_prog *prog = NULL;
    int error;

    okovm_error_clear(err);
    *progp = NULL;
    if (!ns || !elf) {
        return okovm_error_set(err, EINVAL, -1, "no namespace or object");
    }
    error = okovm_object_open(elf, len, &obj, err);
    if (error) {
        return error;
    }

    error = link_program(ns, obj, opts, &prog, err);
    if (!error) {
        error = create_maps(prog, obj, err);
    }
    if (!error) {
        error = apply_globals(prog, opts, err);
    }
    if (!error) {
        error = check_structure(prog, err);
    }
    if (!error) {
        error = admit(prog, elf, len, flags, err);
    }
    if (!error) {
        error = bind_pinned_maps(prog, err);
    }
    if (!error) {
        error = finish(prog, err);
    }

    if (!error) {
        *progp = prog;
        prog = NULL;
    }
    okovm_prog_unref(prog);
    okovm_object_close(obj);
    return error;
}

static void
report_fault(struct okovm_prog *prog, const struct okovm_run *run)
{
    char where[128];

    okovm_format_location(prog, run->fault_insn, where, sizeof where);
    okovm_ns_log(prog->ns, OKOVM_LOG_WARN, true, "%s: program '%s' stopped "
                 "by the sandbox at %s: %s", prog->ns->name, prog->name,
                 where, run->fault);
}

/* Returns this thread's statistics shard of 'prog', and whether this
 * thread is its only writer. */
static struct okovm_stats_shard *
stats_shard(struct okovm_prog *prog, bool *exclusive)
{
    struct thread_stats *ts = &tstats;

    if (OKOVM_UNLIKELY(!ts->init)) {
        uint32_t s = atomic_fetch_add(&next_shard, 1);

        ts->shard = s % OKOVM_STATS_SHARDS;
        ts->exclusive = s < OKOVM_STATS_SHARDS;
        ts->init = true;
    }
    *exclusive = ts->exclusive;
    return &prog->stats[ts->shard];
}

/* Adds 'n' to '*c', a counter of a shard that only this thread writes if
 * 'exclusive' (a plain load and store then; readers see either value). */
static inline void
stats_add(_Atomic uint64_t *c, uint64_t n, bool exclusive)
{
    if (OKOVM_LIKELY(exclusive)) {
        atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed)
                              + n, memory_order_relaxed);
    } else {
        atomic_fetch_add_explicit(c, n, memory_order_relaxed);
    }
}

/* A cycle counter for okovm_prog_run_batch_timed(): the TSC on x86, which
 * costs a few nanoseconds to read, else the clock. */
#define OKOVM_TIMED_BATCH 64

static inline uint64_t
cycles_now(void)
{
#if defined(__x86_64__) || defined(__i386__)
    return __rdtsc();
#else
    return now_ns();
#endif
}

/* okovm_prog_run_batch() and, with 'cycles' nonnull, the cycle counter
 * after each run in 'cycles[1..n]' ('cycles[0]' before the first). */
static inline __attribute__((always_inline)) void
run_batch(struct okovm_prog *prog, const struct okovm_pkt *pkts,
          size_t n, uint32_t in_port, uint64_t now_ns_hint,
          uint32_t *verdicts, uint64_t *cycles)
{
    uint64_t counts[OKOVM_N_VERDICTS] = { 0 };
    uint64_t timed_runs = 0, timed_ns = 0, faults = 0;
    struct okovm_stats_shard *sh;
    struct okovm_ns *ns = prog->ns;
    struct okovm_run run;
    uint32_t tick, mask;
    unsigned epoch = 0;
    bool exclusive;
    size_t i;

    if (!n) {
        return;
    }
    run.prog = prog;
    run.ns = ns;
    run.now_ns = now_ns_hint;
    run.ctx.rx_queue_index = 0;
    run.ctx.egress_ifindex = 0;
    run.ctx.ingress_ifindex = in_port;

    /* Sampled timing: one run in 2^k of each program and shard, starting
     * with the first, so that a program that ran has a timed run. */
    sh = stats_shard(prog, &exclusive);
    if (OKOVM_LIKELY(exclusive)) {
        tick = atomic_load_explicit(&sh->tick, memory_order_relaxed);
        atomic_store_explicit(&sh->tick, tick + n, memory_order_relaxed);
    } else {
        tick = atomic_fetch_add_explicit(&sh->tick, n, memory_order_relaxed);
    }
    mask = atomic_load_explicit(&ns->timing_mask, memory_order_relaxed);

    if (!ns->defer_fn) {
        epoch = okovm_ns_enter(ns);
    }
    if (cycles) {
        cycles[0] = cycles_now();
    }
    for (i = 0; i < n; i++) {
        bool timed = mask != UINT32_MAX && !((tick + i) & mask);
        uint64_t t0 = 0, verdict;
        uint32_t v;

        run.ctx.data = (uintptr_t) pkts[i].data;
        run.ctx.data_end = (uintptr_t) pkts[i].data + pkts[i].len;
        run.ctx.data_meta = (uintptr_t) pkts[i].data;
        run.fault = NULL;           /* Only the sandbox sets it. */
        if (OKOVM_UNLIKELY(timed)) {
            t0 = now_ns();
        }
        verdict = prog->exec(prog, &run);
        if (OKOVM_UNLIKELY(timed)) {
            timed_runs++;
            timed_ns += now_ns() - t0;
        }
        v = (uint32_t) verdict;
        /* The last counter takes any value that is no XDP verdict. */
        counts[v < OKOVM_N_VERDICTS - 1 ? v : OKOVM_N_VERDICTS - 1]++;
        if (OKOVM_UNLIKELY(run.fault)) {
            faults++;
            report_fault(prog, &run);
            v = OKOVM_XDP_ABORTED;
        }
        verdicts[i] = v;
        if (cycles) {
            cycles[i + 1] = cycles_now();
        }
    }
    if (!ns->defer_fn) {
        okovm_ns_exit(ns, epoch);
    }

    for (i = 0; i < OKOVM_N_VERDICTS; i++) {
        if (counts[i]) {
            stats_add(&sh->verdicts[i], counts[i], exclusive);
        }
    }
    if (OKOVM_UNLIKELY(timed_runs)) {
        stats_add(&sh->timed_runs, timed_runs, exclusive);
        stats_add(&sh->timed_ns, timed_ns, exclusive);
    }
    if (OKOVM_UNLIKELY(faults)) {
        stats_add(&sh->faults, faults, exclusive);
    }
}

void
okovm_prog_run_batch(struct okovm_prog *prog, const struct okovm_pkt *pkts,
                     size_t n, uint32_t in_port, uint64_t now_ns_hint,
                     uint32_t *verdicts)
{
    run_batch(prog, pkts, n, in_port, now_ns_hint, verdicts, NULL);
}

void
okovm_prog_run_batch_timed(struct okovm_prog *prog,
                           const struct okovm_pkt *pkts, size_t n,
                           uint32_t in_port, uint64_t now_ns_hint,
                           uint32_t *verdicts, uint64_t *run_ns)
{
    uint64_t cycles[OKOVM_TIMED_BATCH + 1];

    /* In slices that 'cycles' can hold. */
    while (n > OKOVM_TIMED_BATCH) {
        okovm_prog_run_batch_timed(prog, pkts, OKOVM_TIMED_BATCH, in_port,
                                   now_ns_hint, verdicts, run_ns);
        pkts += OKOVM_TIMED_BATCH;
        verdicts += OKOVM_TIMED_BATCH;
        run_ns += OKOVM_TIMED_BATCH;
        n -= OKOVM_TIMED_BATCH;
    }
    if (!n) {
        return;
    }

    uint64_t start = now_ns();
    run_batch(prog, pkts, n, in_port, now_ns_hint, verdicts, cycles);
    uint64_t elapsed = now_ns() - start;
    uint64_t counted = cycles[n] - cycles[0];
    for (size_t i = 0; i < n; i++) {
        run_ns[i] = counted ? (cycles[i + 1] - cycles[i]) * elapsed / counted
                            : 0;
    }
}

uint32_t
okovm_prog_run(struct okovm_prog *prog, const void *pkt, size_t len,
               uint32_t in_port)
{
    struct okovm_pkt p = { .data = pkt, .len = len };
    uint32_t verdict;

    okovm_prog_run_batch(prog, &p, 1, in_port, 0, &verdict);
    return verdict;
}

int
okovm_prog_explain(struct okovm_prog *prog, const void *pkt, size_t len,
                   uint32_t in_port, const struct okovm_explain_hooks *hooks,
                   uint32_t *verdict)
{
    struct okovm_verify_opts vo = {
        .n_maps = prog->n_maps,
        .maps = (const struct okovm_map *const *) prog->maps,
        .allow_back_edges = true,
    };
    struct okovm_ns *ns = prog->ns;
    struct okovm_xinsn *code = NULL;
    struct okovm_vinfo vi;
    struct okovm_run run;
    unsigned epoch = 0;
    int error;

    if (prog->mode == OKOVM_MODE_SANDBOX) {
        return EINVAL;
    }
    /* The program passed these checks when it was loaded: they give the
     * decoder its findings again. */
    error = okovm_verify(prog->insns, prog->n_insns, &vo, &vi, NULL);
    if (!error) {
        error = okovm_decode(prog, &vi, okovm_exec_explain_labels(), &code,
                             NULL);
        okovm_vinfo_free(&vi);
    }
    if (error) {
        return error;
    }

    memset(&run, 0, sizeof run);
    run.prog = prog;
    run.ns = ns;
    run.ctx.data = (uintptr_t) pkt;
    run.ctx.data_end = (uintptr_t) pkt + len;
    run.ctx.data_meta = (uintptr_t) pkt;
    run.ctx.ingress_ifindex = in_port;
    run.code = code;
    run.hooks = hooks;
    if (!ns->defer_fn) {
        epoch = okovm_ns_enter(ns);
    }
    *verdict = (uint32_t) okovm_exec_explain(prog, &run);
    if (!ns->defer_fn) {
        okovm_ns_exit(ns, epoch);
    }
    free(code);
    return 0;
}

void
okovm_prog_get_info(const struct okovm_prog *prog,
                    struct okovm_prog_info *info)
{
    memset(info, 0, sizeof *info);
    snprintf(info->name, sizeof info->name, "%s", prog->name);
    snprintf(info->section, sizeof info->section, "%s", prog->section);
    info->n_insns = prog->n_insns;
    info->mode = prog->mode;
    info->n_maps = prog->n_maps;
    info->kernel_verified = prog->kernel_verified;
    info->kernel_verify_ns = prog->kernel_ns;
    info->kernel_strict = prog->kernel_verified && prog->kernel_strict;
    info->jit = prog->engine == OKOVM_ENGINE_JIT;
}

void
okovm_prog_get_stats(const struct okovm_prog *prog,
                     struct okovm_prog_stats *stats)
{
    int i, j;

    memset(stats, 0, sizeof *stats);
    for (i = 0; i < OKOVM_STATS_SHARDS; i++) {
        const struct okovm_stats_shard *sh = &prog->stats[i];

        for (j = 0; j < OKOVM_N_VERDICTS; j++) {
            uint64_t c = atomic_load_explicit(&sh->verdicts[j],
                                              memory_order_relaxed);

            stats->verdicts[j] += c;
            stats->runs += c;
        }
        stats->timed_runs += atomic_load_explicit(&sh->timed_runs,
                                                  memory_order_relaxed);
        stats->timed_ns += atomic_load_explicit(&sh->timed_ns,
                                                memory_order_relaxed);
        stats->faults += atomic_load_explicit(&sh->faults,
                                              memory_order_relaxed);
    }
    if (stats->timed_runs) {
        stats->time_ns = (uint64_t) ((double) stats->timed_ns
                                     * stats->runs / stats->timed_runs);
    }
}

const void *
okovm_prog_btf(const struct okovm_prog *prog, uint32_t *size)
{
    *size = prog->btf_size;
    return prog->btf_raw;
}

uint32_t
okovm_prog_n_maps(const struct okovm_prog *prog)
{
    return prog->n_maps;
}

struct okovm_map *
okovm_prog_get_map(const struct okovm_prog *prog, uint32_t idx)
{
    return idx < prog->n_maps ? prog->maps[idx] : NULL;
}

struct okovm_map *
okovm_prog_find_map(const struct okovm_prog *prog, const char *name)
{
    uint32_t i;

    for (i = 0; i < prog->n_maps; i++) {
        if (!strcmp(prog->maps[i]->name, name)) {
            return prog->maps[i];
        }
    }
    return NULL;
}

/* Runs 'prog' 'repeat' times on 'pkt' of 'len' bytes from 'in_port' and
 * stores the elapsed wall-clock time in '*total_ns'.  Returns the last
 * verdict. */
uint32_t
okovm_prog_bench(struct okovm_prog *prog, const void *pkt, size_t len,
                 uint32_t in_port, uint64_t repeat, uint64_t *total_ns)
{
    uint32_t verdict = 0;
    uint64_t t0 = now_ns();
    uint64_t i;

    for (i = 0; i < repeat; i++) {
        verdict = okovm_prog_run(prog, pkt, len, in_port);
    }
    *total_ns = now_ns() - t0;
    return verdict;
}
