/*
 * test-maps.c -- map semantics through the control-plane API and from
 * programs; concurrent readers and writers.
 */

#include <errno.h>
#include <pthread.h>

#include "asm.h"
#include "runner.h"

static struct okovm_map *
mk(struct okovm_ns *ns, uint32_t type, uint32_t ks, uint32_t vs,
   uint32_t max, uint32_t flags)
{
    struct okovm_map *m = NULL;

    CHECK_EQ(okovm_test_map_create(ns, "m", type, ks, vs, max, flags, &m),
             0);
    return m;
}

TEST(map_hash)
{
    struct okovm_ns *ns;
    struct okovm_map *m;
    uint32_t k, next, seen = 0;
    uint64_t v;
    int n;

    okovm_ns_create("t", &ns);
    m = mk(ns, OKOVM_MAP_HASH, 4, 8, 4, 0);
    k = 1;
    v = 10;
    CHECK_EQ(okovm_map_lookup(m, &k, &v), ENOENT);
    CHECK_EQ(okovm_map_update(m, &k, &v, OKOVM_EXIST), ENOENT);
    CHECK_EQ(okovm_map_update(m, &k, &v, OKOVM_NOEXIST), 0);
    CHECK_EQ(okovm_map_update(m, &k, &v, OKOVM_NOEXIST), EEXIST);
    v = 11;
    CHECK_EQ(okovm_map_update(m, &k, &v, OKOVM_EXIST), 0);
    v = 0;
    CHECK_EQ(okovm_map_lookup(m, &k, &v), 0);
    CHECK_EQ(v, 11);
    CHECK_EQ(okovm_map_update(m, &k, &v, 7), EINVAL);
    for (k = 2; k <= 4; k++) {
        CHECK_EQ(okovm_map_update(m, &k, &v, OKOVM_ANY), 0);
    }
    k = 5;
    CHECK_EQ(okovm_map_update(m, &k, &v, OKOVM_ANY), E2BIG);
    k = 4;
    CHECK_EQ(okovm_map_update(m, &k, &v, OKOVM_ANY), 0);  /* Replace. */

    /* Iteration visits every key once. */
    n = 0;
    if (!okovm_map_get_next_key(m, NULL, &next)) {
        do {
            seen |= 1u << next;
            n++;
            k = next;
        } while (!okovm_map_get_next_key(m, &k, &next) && n < 10);
    }
    CHECK_EQ(n, 4);
    CHECK_EQ(seen, 0x1e);
    k = 99;                             /* Absent key: restart. */
    CHECK_EQ(okovm_map_get_next_key(m, &k, &next), 0);

    k = 3;
    CHECK_EQ(okovm_map_delete(m, &k), 0);
    CHECK_EQ(okovm_map_delete(m, &k), ENOENT);
    k = 5;
    CHECK_EQ(okovm_map_update(m, &k, &v, OKOVM_ANY), 0);
    CHECK_EQ(okovm_map_clear(m), 0);
    CHECK_EQ(okovm_map_get_next_key(m, NULL, &next), ENOENT);
    {
        struct okovm_map_info mi;

        okovm_map_get_info(m, &mi);
        CHECK_EQ(mi.n_entries, 0);
    }
    okovm_map_unref(m);
    okovm_ns_destroy(ns);
}

TEST(map_lru)
{
    struct okovm_ns *ns;
    struct okovm_map *m;
    uint32_t k;
    uint64_t v = 1;

    okovm_ns_create("t", &ns);
    m = mk(ns, OKOVM_MAP_LRU_HASH, 4, 8, 4, 0);
    for (k = 1; k <= 4; k++) {
        CHECK_EQ(okovm_map_update(m, &k, &v, OKOVM_ANY), 0);
    }
    /* Use every key but 2 (program-side lookups mark use). */
    for (k = 1; k <= 4; k++) {
        if (k != 2) {
            CHECK(okovm_map_lookup_elem(m, &k) != NULL);
        }
    }
    k = 5;
    CHECK_EQ(okovm_map_update(m, &k, &v, OKOVM_ANY), 0);
    k = 2;
    CHECK_EQ(okovm_map_lookup(m, &k, &v), ENOENT);
    for (k = 1; k <= 5; k++) {
        if (k != 2) {
            CHECK_EQ(okovm_map_lookup(m, &k, &v), 0);
        }
    }
    /* Without use, the oldest goes first. */
    for (k = 10; k < 14; k++) {
        CHECK_EQ(okovm_map_update(m, &k, &v, OKOVM_ANY), 0);
    }
    k = 10;
    CHECK_EQ(okovm_map_lookup(m, &k, &v), 0);
    {
        struct okovm_map_info mi;

        okovm_map_get_info(m, &mi);
        CHECK_EQ(mi.n_entries, 4);
    }
    okovm_map_unref(m);
    okovm_ns_destroy(ns);
}

TEST(map_array)
{
    struct okovm_ns *ns;
    struct okovm_map *m;
    uint32_t k, next;
    uint8_t v[12], z[12] = { 0 };

    okovm_ns_create("t", &ns);
    CHECK_EQ(okovm_test_map_create(ns, "a", OKOVM_MAP_ARRAY, 8, 4, 4, 0,
                                   &m), EINVAL);
    m = mk(ns, OKOVM_MAP_ARRAY, 4, 12, 3, 0);
    k = 2;
    memset(v, 0xaa, sizeof v);
    CHECK_EQ(okovm_map_lookup(m, &k, v), 0);
    CHECK(!memcmp(v, z, sizeof v));             /* Zeroed. */
    memset(v, 7, sizeof v);
    CHECK_EQ(okovm_map_update(m, &k, v, OKOVM_NOEXIST), EEXIST);
    CHECK_EQ(okovm_map_update(m, &k, v, OKOVM_EXIST), 0);
    memset(v, 0, sizeof v);
    CHECK_EQ(okovm_map_lookup(m, &k, v), 0);
    CHECK_EQ(v[11], 7);
    k = 3;
    CHECK_EQ(okovm_map_update(m, &k, v, OKOVM_ANY), E2BIG);
    CHECK_EQ(okovm_map_lookup(m, &k, v), ENOENT);
    CHECK_EQ(okovm_map_delete(m, &k), EINVAL);
    CHECK_EQ(okovm_map_get_next_key(m, NULL, &next), 0);
    CHECK_EQ(next, 0);
    k = 1;
    CHECK_EQ(okovm_map_get_next_key(m, &k, &next), 0);
    CHECK_EQ(next, 2);
    k = 2;
    CHECK_EQ(okovm_map_get_next_key(m, &k, &next), ENOENT);
    k = 77;
    CHECK_EQ(okovm_map_get_next_key(m, &k, &next), 0);
    CHECK_EQ(next, 0);
    CHECK_EQ(okovm_map_clear(m), 0);
    k = 2;
    CHECK_EQ(okovm_map_lookup(m, &k, v), 0);
    CHECK(!memcmp(v, z, sizeof v));
    okovm_map_unref(m);
    okovm_ns_destroy(ns);
}

struct lpm6 {
    uint32_t plen;
    uint8_t a[16];
};

TEST(map_lpm)
{
    struct okovm_ns *ns;
    struct okovm_map *m;
    struct { uint32_t plen; uint8_t a[4]; } k, next;
    uint32_t v;
    int n;

    okovm_ns_create("t", &ns);
    CHECK_EQ(okovm_test_map_create(ns, "l", OKOVM_MAP_LPM_TRIE, 8, 4, 4, 0,
                                   &m), EINVAL);    /* NO_PREALLOC. */
    m = mk(ns, OKOVM_MAP_LPM_TRIE, 8, 4, 3, BPF_F_NO_PREALLOC);
#define K(P, A, B, C, D) (k.plen = (P), k.a[0] = (A), k.a[1] = (B), \
                          k.a[2] = (C), k.a[3] = (D), &k)
    v = 0;
    CHECK_EQ(okovm_map_update(m, K(0, 0, 0, 0, 0), &v, 0), 0);
    v = 8;
    CHECK_EQ(okovm_map_update(m, K(8, 192, 9, 9, 9), &v, 0), 0);
    v = 23;
    CHECK_EQ(okovm_map_update(m, K(23, 192, 168, 1, 0), &v, 0), 0);
    CHECK_EQ(okovm_map_update(m, K(33, 1, 1, 1, 1), &v, 0), EINVAL);
    CHECK_EQ(okovm_map_update(m, K(16, 1, 1, 1, 1), &v, 0), ENOSPC);
    CHECK_EQ(okovm_map_update(m, K(8, 192, 1, 1, 1), &v, OKOVM_NOEXIST),
             EEXIST);                     /* Same /8 prefix. */
    CHECK_EQ(okovm_map_update(m, K(9, 192, 1, 1, 1), &v, OKOVM_EXIST),
             ENOENT);

    CHECK_EQ(okovm_map_lookup(m, K(32, 192, 168, 1, 77), &v), 0);
    CHECK_EQ(v, 23);
    CHECK_EQ(okovm_map_lookup(m, K(32, 192, 168, 0, 77), &v), 0);
    CHECK_EQ(v, 23);                      /* /23 covers .0 and .1 */
    CHECK_EQ(okovm_map_lookup(m, K(32, 192, 168, 2, 77), &v), 0);
    CHECK_EQ(v, 8);
    CHECK_EQ(okovm_map_lookup(m, K(32, 10, 0, 0, 1), &v), 0);
    CHECK_EQ(v, 0);
    CHECK_EQ(okovm_map_lookup(m, K(16, 192, 168, 1, 1), &v), 0);
    CHECK_EQ(v, 8);                      /* Lookup prefix bounds match. */

    n = 0;
    if (!okovm_map_get_next_key(m, NULL, &next)) {
        do {
            n++;
            k = next;
        } while (!okovm_map_get_next_key(m, &k, &next) && n < 10);
    }
    CHECK_EQ(n, 3);

    CHECK_EQ(okovm_map_delete(m, K(8, 192, 200, 0, 0)), 0);
    CHECK_EQ(okovm_map_delete(m, K(8, 192, 0, 0, 0)), ENOENT);
    CHECK_EQ(okovm_map_lookup(m, K(32, 192, 168, 2, 77), &v), 0);
    CHECK_EQ(v, 0);
    CHECK_EQ(okovm_map_delete(m, K(0, 0, 0, 0, 0)), 0);
    CHECK_EQ(okovm_map_lookup(m, K(32, 192, 168, 2, 77), &v), ENOENT);
    okovm_map_unref(m);

    /* IPv6-sized keys: 128 prefix lengths over two bitmap words. */
    {
        struct lpm6 k6;

        m = mk(ns, OKOVM_MAP_LPM_TRIE, sizeof k6, 4, 16, BPF_F_NO_PREALLOC);
        memset(&k6, 0, sizeof k6);
        k6.a[0] = 0x20;
        k6.a[1] = 0x01;
        k6.a[15] = 1;
        k6.plen = 128;
        v = 128;
        CHECK_EQ(okovm_map_update(m, &k6, &v, 0), 0);
        k6.plen = 16;
        v = 16;
        CHECK_EQ(okovm_map_update(m, &k6, &v, 0), 0);
        k6.plen = 128;
        CHECK_EQ(okovm_map_lookup(m, &k6, &v), 0);
        CHECK_EQ(v, 128);
        k6.a[15] = 2;
        CHECK_EQ(okovm_map_lookup(m, &k6, &v), 0);
        CHECK_EQ(v, 16);
        okovm_map_unref(m);
    }
    okovm_ns_destroy(ns);
#undef K
}

TEST(map_helpers_raw)
{
    /* key = 5 on the stack; update(m, &key, &val=9, NOEXIST) twice (second
     * returns -EEXIST); lookup; r0 = *value * 1000 - ret2 */
    struct okovm_ns *ns;
    struct okovm_map *m;
    struct okovm_prog *prog;
    struct okovm_error err;
    struct okovm_test_insn p[] = {
        ST(BPF_W, 10, -4, 5), ST(BPF_DW, 10, -16, 9),
        LD_MAP(1, 0), MOV64_X(2, 10), ALU64_K(BPF_ADD, 2, -4),
        MOV64_X(3, 10), ALU64_K(BPF_ADD, 3, -16), MOV64_K(4, BPF_NOEXIST),
        CALL(BPF_FUNC_map_update_elem),
        LD_MAP(1, 0), MOV64_X(2, 10), ALU64_K(BPF_ADD, 2, -4),
        MOV64_X(3, 10), ALU64_K(BPF_ADD, 3, -16), MOV64_K(4, BPF_NOEXIST),
        CALL(BPF_FUNC_map_update_elem), MOV64_X(6, 0),
        LD_MAP(1, 0), MOV64_X(2, 10), ALU64_K(BPF_ADD, 2, -4),
        CALL(BPF_FUNC_map_lookup_elem),
        JMP_K(BPF_JEQ, 0, 0, 4),
        LDX(BPF_DW, 0, 0, 0), ALU64_K(BPF_MUL, 0, 1000),
        ALU64_X(BPF_SUB, 0, 6), EXIT(),
        MOV64_K(0, 1), EXIT(),
    };
    struct okovm_test_insn del[] = {
        ST(BPF_W, 10, -4, 5), LD_MAP(1, 0), MOV64_X(2, 10),
        ALU64_K(BPF_ADD, 2, -4), CALL(BPF_FUNC_map_delete_elem), EXIT(),
    };
    int mode;

    okovm_ns_create("t", &ns);
    for (mode = 0; mode < N_RUN_MODES; mode++) {
        uint32_t flags = run_mode_flags(mode);

        m = mk(ns, OKOVM_MAP_HASH, 4, 8, 8, 0);
        CHECK_EQ(okovm_test_load_raw(ns, p, N_INSNS(p), &m, 1, flags, &prog,
                                     &err), 0);
        CHECK_EQ(run64(prog, "", 0, 0), 9000 + EEXIST);
        okovm_prog_unref(prog);
        CHECK_EQ(okovm_test_load_raw(ns, del, N_INSNS(del), &m, 1, flags,
                                     &prog, &err), 0);
        CHECK_EQ(run64(prog, "", 0, 0), 0);
        CHECK_EQ(run64(prog, "", 0, 0), (uint64_t) -ENOENT);
        okovm_prog_unref(prog);
        okovm_map_unref(m);
    }
    okovm_ns_destroy(ns);
}

/* Concurrency: readers run a program that looks keys up and reads the
 * whole value while a writer deletes, reinserts and replaces them. */

struct conc {
    struct okovm_prog *prog;
    struct okovm_map *map;
    atomic_bool stop;
    atomic_ulong runs;
    atomic_ulong bad;
};

static void *
reader(void *c_)
{
    struct conc *c = c_;
    uint32_t port = 0;

    while (!atomic_load(&c->stop)) {
        uint32_t v = okovm_prog_run(c->prog, "", 0, port++ % 16);

        /* Values are k * 0x01010101... so a torn value or garbage shows
         * as a mismatch of the low bytes; 1 means absent. */
        if (v != 1 && (v & 0xff) != ((v >> 8) & 0xff)) {
            atomic_fetch_add(&c->bad, 1);
        }
        atomic_fetch_add(&c->runs, 1);
    }
    return NULL;
}

static void
conc_run(uint32_t type)
{
    /* r0 = lookup(m, &in_port) ? value[0] ^ value[7] ... : 1; the value is
     * 8 equal 64-bit words; returns the low 16 bits of word 0 if all
     * eight words are equal, else 0xbad. */
    struct okovm_test_insn p[] = {
        LDX(BPF_W, 2, 1, 12), STX(BPF_W, 10, 2, -4),
        LD_MAP(1, 0), MOV64_X(2, 10), ALU64_K(BPF_ADD, 2, -4),
        CALL(BPF_FUNC_map_lookup_elem),
        JMP_K(BPF_JNE, 0, 0, 2), MOV64_K(0, 1), EXIT(),
        LDX(BPF_DW, 3, 0, 0), LDX(BPF_DW, 4, 0, 56),
        JMP_X(BPF_JNE, 3, 4, 3),
        MOV64_X(0, 3), ALU64_K(BPF_AND, 0, 0xffff), EXIT(),
        MOV64_K(0, 0xbad), EXIT(),
    };
    struct okovm_ns *ns;
    struct okovm_error err;
    struct conc c;
    pthread_t th[2];
    uint64_t val[8];
    uint32_t k, i, round = 0;
    int t;

    okovm_ns_create("t", &ns);
    memset(&c, 0, sizeof c);
    c.map = mk(ns, type, 4, sizeof val, 16, 0);
    CHECK_EQ(okovm_test_load_raw(ns, p, N_INSNS(p), &c.map, 1, 0, &c.prog,
                                 &err), 0);
    for (t = 0; t < 2; t++) {
        pthread_create(&th[t], NULL, reader, &c);
    }
    while (atomic_load(&c.runs) < 200000 || round < 2000) {
        for (k = 0; k < 16; k++) {
            uint64_t w = 0x0101010101010101ull * ((k + round) & 0xff);

            for (i = 0; i < 8; i++) {
                val[i] = w;
            }
            if ((k + round) % 3 == 0) {
                okovm_map_delete(c.map, &k);
            } else {
                okovm_map_update(c.map, &k, val, OKOVM_ANY);
            }
        }
        if (round % 100 == 0) {
            okovm_map_clear(c.map);
            okovm_ns_quiesce(ns);
        }
        round++;
    }
    atomic_store(&c.stop, true);
    for (t = 0; t < 2; t++) {
        pthread_join(th[t], NULL);
    }
    CHECK_EQ(atomic_load(&c.bad), 0);
    okovm_prog_unref(c.prog);
    okovm_map_unref(c.map);
    okovm_ns_destroy(ns);
}

TEST(map_concurrent_hash)
{
    conc_run(OKOVM_MAP_HASH);
}

TEST(map_concurrent_lru)
{
    conc_run(OKOVM_MAP_LRU_HASH);
}

/* The embedder's deferred-free hook: here, a list freed at the end. */
struct deferred {
    pthread_mutex_t mutex;
    int n;
    void (*fn[4096])(void *);
    void *arg[4096];
};

static void
defer_hook(void *aux, void (*fn)(void *), void *arg)
{
    struct deferred *d = aux;

    pthread_mutex_lock(&d->mutex);
    if (d->n < 4096) {
        d->fn[d->n] = fn;
        d->arg[d->n++] = arg;
    } else {
        fn(arg);                        /* Test only: nobody reads. */
    }
    pthread_mutex_unlock(&d->mutex);
}

TEST(map_defer_hook)
{
    static struct deferred d = { PTHREAD_MUTEX_INITIALIZER, 0, {0}, {0} };
    struct okovm_ns *ns;
    struct okovm_map *m;
    uint32_t k = 1;
    uint64_t v = 2;
    int i;

    okovm_ns_create("t", &ns);
    okovm_ns_set_defer(ns, defer_hook, &d);
    m = mk(ns, OKOVM_MAP_HASH, 4, 8, 4, 0);
    CHECK_EQ(okovm_map_update(m, &k, &v, 0), 0);
    CHECK_EQ(okovm_map_update(m, &k, &v, 0), 0);
    CHECK_EQ(okovm_map_delete(m, &k), 0);
    CHECK_EQ(d.n, 2);
    for (i = 0; i < d.n; i++) {
        d.fn[i](d.arg[i]);
    }
    d.n = 0;
    okovm_map_unref(m);
    okovm_ns_destroy(ns);
}
