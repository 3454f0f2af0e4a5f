/*
 * ns.c -- map namespaces: pinned maps, embedder hooks, deferred freeing
 * (hook or two-epoch scheme), clock, pseudo-random numbers and the
 * rate-limited log.
 */

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "okovm-private.h"

static uint64_t
monotonic_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t) ts.tv_sec * 1000000000u + ts.tv_nsec;
}

/* Creates namespace 'name' in '*nsp'. */
int
okovm_ns_create(const char *name, struct okovm_ns **nsp)
{
    struct okovm_ns *ns = calloc(1, sizeof *ns);

    *nsp = NULL;
    if (!ns) {
        return ENOMEM;
    }
    atomic_init(&ns->refs, 1);
    snprintf(ns->name, sizeof ns->name, "%s", name ? name : "");
    pthread_mutex_init(&ns->mutex, NULL);
    pthread_mutex_init(&ns->defer_mutex, NULL);
    pthread_mutex_init(&ns->log_mutex, NULL);
    atomic_init(&ns->prng_seed, monotonic_ns() ^ (uintptr_t) ns);
    atomic_init(&ns->timing_mask, 63);
    ns->per_sec = 10;
    ns->burst = 50;
    ns->tokens_milli = 50 * 1000;
    ns->last_refill_ns = monotonic_ns();
    *nsp = ns;
    return 0;
}

static void
free_limbo(struct okovm_deferred *d)
{
    while (d) {
        struct okovm_deferred *next = d->next;

        d->fn(d->arg);
        d = next;
    }
}

void
okovm_ns_ref(struct okovm_ns *ns)
{
    atomic_fetch_add(&ns->refs, 1);
}

void
okovm_ns_unref(struct okovm_ns *ns)
{
    if (ns && atomic_fetch_sub(&ns->refs, 1) == 1) {
        free_limbo(ns->limbo[0]);
        free_limbo(ns->limbo[1]);
        free(ns->pins);
        pthread_mutex_destroy(&ns->mutex);
        pthread_mutex_destroy(&ns->defer_mutex);
        pthread_mutex_destroy(&ns->log_mutex);
        free(ns);
    }
}

/* Unpins every map of 'ns' and drops the creator's reference. */
void
okovm_ns_destroy(struct okovm_ns *ns)
{
    struct okovm_pin *pins;
    size_t i, n;

    if (!ns) {
        return;
    }
    pthread_mutex_lock(&ns->mutex);
    pins = ns->pins;
    n = ns->n_pins;
    ns->pins = NULL;
    ns->n_pins = ns->alloc_pins = 0;
    pthread_mutex_unlock(&ns->mutex);
    for (i = 0; i < n; i++) {
        okovm_map_unref(pins[i].map);
    }
    free(pins);
    okovm_ns_unref(ns);
}

void
okovm_ns_set_defer(struct okovm_ns *ns, okovm_defer_fn *fn, void *aux)
{
    ns->defer_fn = fn;
    ns->defer_aux = aux;
}

void
okovm_ns_set_log(struct okovm_ns *ns, okovm_log_fn *fn, void *aux)
{
    pthread_mutex_lock(&ns->log_mutex);
    ns->log_fn = fn;
    ns->log_aux = aux;
    pthread_mutex_unlock(&ns->log_mutex);
}

void
okovm_ns_set_printk_rate(struct okovm_ns *ns, uint32_t per_sec,
                         uint32_t burst)
{
    pthread_mutex_lock(&ns->log_mutex);
    ns->per_sec = per_sec;
    ns->burst = burst;
    ns->tokens_milli = (uint64_t) burst * 1000;
    pthread_mutex_unlock(&ns->log_mutex);
}

void
okovm_ns_set_clock(struct okovm_ns *ns, okovm_clock_fn *fn, void *aux)
{
    ns->clock_aux = aux;
    ns->clock_fn = fn;
    atomic_store(&ns->clock_fixed, false);
}

void
okovm_ns_set_fixed_clock(struct okovm_ns *ns, uint64_t now_ns)
{
    atomic_store(&ns->fixed_ns, now_ns);
    atomic_store(&ns->clock_fixed, true);
}

void
okovm_ns_seed_prandom(struct okovm_ns *ns, uint64_t seed)
{
    atomic_store(&ns->prng_seed, seed);
    atomic_store(&ns->prng_ctr, 0);
}

void
okovm_ns_set_timing(struct okovm_ns *ns, uint32_t period)
{
    uint32_t p = 1;

    if (!period) {
        atomic_store(&ns->timing_mask, UINT32_MAX);
        return;
    }
    while (p < period && p < (1u << 30)) {
        p <<= 1;
    }
    atomic_store(&ns->timing_mask, p - 1);
}

/* Returns the time for bpf_ktime_get_ns() in 'ns': the clock set on 'ns'
 * if any, otherwise 'hint' if nonzero (a time the caller read for a whole
 * batch of runs), otherwise CLOCK_MONOTONIC. */
uint64_t
okovm_ns_now(struct okovm_ns *ns, uint64_t hint)
{
    if (atomic_load_explicit(&ns->clock_fixed, memory_order_relaxed)) {
        return atomic_load_explicit(&ns->fixed_ns, memory_order_relaxed);
    }
    if (ns->clock_fn) {
        return ns->clock_fn(ns->clock_aux);
    }
    return hint ? hint : monotonic_ns();
}

/* Returns the next value of the counter-based generator of 'ns'
 * (splitmix64 of seed + counter): thread-safe, and reproducible for a
 * given seed and call order. */
uint32_t
okovm_ns_prandom(struct okovm_ns *ns)
{
    uint64_t n = atomic_fetch_add_explicit(&ns->prng_ctr, 1,
                                           memory_order_relaxed);
    uint64_t z = atomic_load_explicit(&ns->prng_seed, memory_order_relaxed)
                 + (n + 1) * 0x9e3779b97f4a7c15ull;

    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return (uint32_t) ((z ^ (z >> 31)) >> 16);
}

/* Two-epoch reclamation.
 *
 * A run registers in active[epoch & 1].  An object unlinked during epoch
 * E goes to limbo[E & 1].  The epoch may advance from E to E + 1 only when
 * active[(E + 1) & 1], i.e. the runs of epoch E - 1, is zero; at that
 * moment every run of epochs <= E - 1 has finished, so limbo[(E + 1) & 1],
 * which holds the objects unlinked during epoch E - 1, can be freed and
 * reused for epoch E + 1.  Must be called with 'defer_mutex' held. */
static void
try_advance(struct okovm_ns *ns)
{
    unsigned e = atomic_load(&ns->epoch);
    unsigned old = (e + 1) & 1;

    atomic_thread_fence(memory_order_seq_cst);
    if (atomic_load(&ns->active[old]) == 0) {
        struct okovm_deferred *d = ns->limbo[old];

        ns->limbo[old] = NULL;
        atomic_store(&ns->epoch, e + 1);
        free_limbo(d);
    }
}

/* Arranges for 'fn(arg)' to run once no run of 'ns' can still see the
 * object; 'd' is storage inside the object for the default scheme. */
void
okovm_ns_defer_free(struct okovm_ns *ns, struct okovm_deferred *d,
                    void (*fn)(void *), void *arg)
{
    if (ns->defer_fn) {
        ns->defer_fn(ns->defer_aux, fn, arg);
        return;
    }
    d->fn = fn;
    d->arg = arg;
    pthread_mutex_lock(&ns->defer_mutex);
    d->next = ns->limbo[atomic_load(&ns->epoch) & 1];
    ns->limbo[atomic_load(&ns->epoch) & 1] = d;
    try_advance(ns);
    pthread_mutex_unlock(&ns->defer_mutex);
}

void
okovm_ns_quiesce(struct okovm_ns *ns)
{
    if (!ns->defer_fn) {
        pthread_mutex_lock(&ns->defer_mutex);
        try_advance(ns);
        try_advance(ns);
        pthread_mutex_unlock(&ns->defer_mutex);
    }
}

/* Registers a run in 'ns'; returns the value for okovm_ns_exit(). */
unsigned
okovm_ns_enter(struct okovm_ns *ns)
{
    unsigned e = atomic_load(&ns->epoch) & 1;

    atomic_fetch_add(&ns->active[e], 1);
    atomic_thread_fence(memory_order_seq_cst);
    return e;
}

void
okovm_ns_exit(struct okovm_ns *ns, unsigned e)
{
    atomic_fetch_sub_explicit(&ns->active[e], 1, memory_order_release);
}

/* Logs a message at 'level' through the callback of 'ns'.  With
 * 'rate_limited', applies the token bucket and reports how many messages
 * were suppressed. */
void
okovm_ns_log(struct okovm_ns *ns, int level, bool rate_limited,
             const char *fmt, ...)
{
    char buf[512];
    va_list args;
    uint64_t suppressed = 0;

    pthread_mutex_lock(&ns->log_mutex);
    if (!ns->log_fn) {
        pthread_mutex_unlock(&ns->log_mutex);
        return;
    }
    if (rate_limited) {
        uint64_t now = monotonic_ns();
        uint64_t cap = (uint64_t) ns->burst * 1000;
        uint64_t add = (now - ns->last_refill_ns) / 1000000 * ns->per_sec;

        if (add) {
            ns->last_refill_ns = now;
            ns->tokens_milli = ns->tokens_milli + add > cap
                               ? cap : ns->tokens_milli + add;
        }
        if (ns->tokens_milli < 1000) {
            ns->suppressed++;
            pthread_mutex_unlock(&ns->log_mutex);
            return;
        }
        ns->tokens_milli -= 1000;
        suppressed = ns->suppressed;
        ns->suppressed = 0;
    }
    if (suppressed) {
        snprintf(buf, sizeof buf, "%s: %"PRIu64" messages suppressed",
                 ns->name, suppressed);
        ns->log_fn(ns->log_aux, OKOVM_LOG_WARN, buf);
    }
    va_start(args, fmt);
    vsnprintf(buf, sizeof buf, fmt, args);
    va_end(args);
    ns->log_fn(ns->log_aux, level, buf);
    pthread_mutex_unlock(&ns->log_mutex);
}

/* Binds 'tmpl', a freshly created map that is to be pinned, in 'ns': if a
 * map of that name is pinned already and has the same definition, stores
 * a new reference to it in '*mapp' and drops 'tmpl'; otherwise pins
 * 'tmpl'.  On mismatch returns EINVAL with the reason in 'why'. */
int
okovm_ns_bind_pinned(struct okovm_ns *ns, struct okovm_map *tmpl,
                     struct okovm_map **mapp, char *why, size_t why_size)
{
    size_t i;

    pthread_mutex_lock(&ns->mutex);
    for (i = 0; i < ns->n_pins; i++) {
        struct okovm_map *m = ns->pins[i].map;

        if (!strcmp(ns->pins[i].name, tmpl->name)) {
            if (!okovm_map_same_def(m, tmpl)) {
                pthread_mutex_unlock(&ns->mutex);
                snprintf(why, why_size, "pinned map '%s' already exists "
                         "with a different definition (type %u key %u "
                         "value %u max_entries %u flags %#x)", m->name,
                         m->type, m->key_size, m->value_size,
                         m->max_entries, m->map_flags);
                return EINVAL;
            }
            okovm_map_ref(m);
            pthread_mutex_unlock(&ns->mutex);
            okovm_map_unref(tmpl);
            *mapp = m;
            return 0;
        }
    }
    if (ns->n_pins == ns->alloc_pins) {
        size_t n = ns->alloc_pins ? ns->alloc_pins * 2 : 8;
        struct okovm_pin *p = realloc(ns->pins, n * sizeof *p);

        if (!p) {
            pthread_mutex_unlock(&ns->mutex);
            snprintf(why, why_size, "out of memory");
            return ENOMEM;
        }
        ns->pins = p;
        ns->alloc_pins = n;
    }
    /* Keep 'pins' sorted by name. */
    for (i = ns->n_pins; i > 0; i--) {
        if (strcmp(ns->pins[i - 1].name, tmpl->name) < 0) {
            break;
        }
        ns->pins[i] = ns->pins[i - 1];
    }
    snprintf(ns->pins[i].name, sizeof ns->pins[i].name, "%s", tmpl->name);
    ns->pins[i].map = tmpl;
    ns->n_pins++;
    tmpl->pinned = true;
    okovm_map_ref(tmpl);
    pthread_mutex_unlock(&ns->mutex);
    *mapp = tmpl;
    return 0;
}

int
okovm_ns_find_pinned(struct okovm_ns *ns, const char *name,
                     struct okovm_map **mapp)
{
    size_t i;

    *mapp = NULL;
    pthread_mutex_lock(&ns->mutex);
    for (i = 0; i < ns->n_pins; i++) {
        if (!strcmp(ns->pins[i].name, name)) {
            *mapp = ns->pins[i].map;
            okovm_map_ref(*mapp);
            break;
        }
    }
    pthread_mutex_unlock(&ns->mutex);
    return *mapp ? 0 : ENOENT;
}

int
okovm_ns_get_pinned(struct okovm_ns *ns, uint32_t idx,
                    struct okovm_map **mapp)
{
    *mapp = NULL;
    pthread_mutex_lock(&ns->mutex);
    if (idx < ns->n_pins) {
        *mapp = ns->pins[idx].map;
        okovm_map_ref(*mapp);
    }
    pthread_mutex_unlock(&ns->mutex);
    return *mapp ? 0 : ENOENT;
}

int
okovm_ns_unpin(struct okovm_ns *ns, const char *name)
{
    struct okovm_map *map = NULL;
    size_t i;

    pthread_mutex_lock(&ns->mutex);
    for (i = 0; i < ns->n_pins; i++) {
        if (!strcmp(ns->pins[i].name, name)) {
            map = ns->pins[i].map;
            map->pinned = false;
            memmove(&ns->pins[i], &ns->pins[i + 1],
                    (ns->n_pins - i - 1) * sizeof ns->pins[0]);
            ns->n_pins--;
            break;
        }
    }
    pthread_mutex_unlock(&ns->mutex);
    if (!map) {
        return ENOENT;
    }
    okovm_map_unref(map);
    return 0;
}

const char *
okovm_version(void)
{
    return "0.1.0";
}
