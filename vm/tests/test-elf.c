/*
 * test-elf.c -- loading clang-compiled objects: kernel admission, maps,
 * global data, helpers, pinned-map sharing, refusals with the kernel's
 * log, sandbox mode and malformed ELF files.
 */

#include <errno.h>
#include <pthread.h>

#include "okovm.h"
#include "runner.h"

struct log_capture {
    pthread_mutex_t mutex;
    int n;
    char last[512];
};

static void
capture_log(void *aux, int level, const char *msg)
{
    struct log_capture *c = aux;

    (void) level;
    pthread_mutex_lock(&c->mutex);
    c->n++;
    snprintf(c->last, sizeof c->last, "%s", msg);
    pthread_mutex_unlock(&c->mutex);
}

static struct okovm_error *
new_err(void)
{
    struct okovm_error *e = calloc(1, sizeof *e);

    if (!e) {
        abort();
    }
    return e;
}

/* Loads test program 'name' with 'flags' into 'ns'; returns the error. */
static int
load(struct okovm_ns *ns, const char *name, uint32_t flags,
     const char *prog_name, struct okovm_prog **progp,
     struct okovm_error *err)
{
    struct okovm_load_opts opts = { .flags = flags,
                                    .prog_name = prog_name };
    size_t len;
    void *elf = read_prog(name, &len);
    int error = okovm_prog_load(ns, elf, len, &opts, progp, err);

    free(elf);
    return error;
}

static uint8_t *
udp_packet(uint32_t saddr, uint16_t dport, size_t *len)
{
    static uint8_t p[64];

    memset(p, 0, sizeof p);
    p[12] = 0x08;                       /* IPv4 */
    p[14] = 0x45;
    p[14 + 9] = 17;                     /* UDP */
    memcpy(&p[14 + 12], &saddr, 4);
    p[34 + 2] = dport >> 8;
    p[34 + 3] = dport & 0xff;
    *len = sizeof p;
    return p;
}

static uint32_t
run_udp(struct okovm_prog *prog, uint32_t saddr, uint16_t dport)
{
    size_t len;
    uint8_t *p = udp_packet(saddr, dport, &len);

    return okovm_prog_run(prog, p, len, 1);
}

static uint32_t
ip(int a, int b, int c, int d)
{
    uint8_t x[4] = { a, b, c, d };
    uint32_t v;

    memcpy(&v, x, 4);
    return v;
}

TEST(elf_counter)
{
    static struct log_capture lc = { PTHREAD_MUTEX_INITIALIZER, 0, "" };
    struct okovm_error *err = new_err();
    struct okovm_prog_info info;
    struct okovm_prog_stats st;
    struct okovm_map_info mi;
    struct okovm_prog *prog;
    struct okovm_map *m;
    struct okovm_ns *ns;
    uint8_t pkt[60] = { 0 };
    uint64_t v;
    uint32_t k;
    int i;

    okovm_ns_create("br0", &ns);
    okovm_ns_set_log(ns, capture_log, &lc);
    okovm_ns_set_fixed_clock(ns, 5555);
    okovm_ns_seed_prandom(ns, 1);
    CHECK_EQ(load(ns, "counter.o", 0, NULL, &prog, err), 0);
    if (!prog) {
        fprintf(stderr, "%s\n%s\n", err->msg, err->log);
        return;
    }
    okovm_prog_get_info(prog, &info);
    CHECK(!strcmp(info.name, "count"));
    CHECK(!strcmp(info.section, "xdp"));
    CHECK_EQ(info.mode, OKOVM_MODE_VERIFIED);
    CHECK_EQ(info.kernel_verified, 1);
    CHECK_EQ(info.n_maps, 4);      /* port_count, totals, .rodata, .bss */

    for (i = 0; i < 5; i++) {
        CHECK_EQ(okovm_prog_run(prog, pkt, sizeof pkt, 3), OKOVM_XDP_PASS);
    }
    CHECK_EQ(okovm_prog_run(prog, pkt, 10, 4), OKOVM_XDP_PASS);

    m = okovm_prog_find_map(prog, "port_count");
    CHECK(m != NULL);
    okovm_map_get_info(m, &mi);
    CHECK_EQ(mi.type, OKOVM_MAP_HASH);
    CHECK_EQ(mi.key_size, 4);
    CHECK_EQ(mi.value_size, 8);
    CHECK_EQ(mi.max_entries, 64);
    CHECK_EQ(mi.pinned, 1);
    CHECK_EQ(mi.n_entries, 2);
    CHECK(mi.btf_key_type_id != 0);
    k = 3;
    CHECK_EQ(okovm_map_lookup(m, &k, &v), 0);
    CHECK_EQ(v, 5);
    k = 4;
    CHECK_EQ(okovm_map_lookup(m, &k, &v), 0);
    CHECK_EQ(v, 1);

    m = okovm_prog_find_map(prog, "totals");
    k = 0;
    CHECK_EQ(okovm_map_lookup(m, &k, &v), 0);
    CHECK_EQ(v, 6);
    k = 1;
    CHECK_EQ(okovm_map_lookup(m, &k, &v), 0);
    CHECK_EQ(v, 5 * 60 + 10);
    k = 2;
    CHECK_EQ(okovm_map_lookup(m, &k, &v), 0);
    CHECK_EQ(v, 5555);
    k = 4;
    CHECK_EQ(okovm_map_lookup(m, &k, &v), 0);
    CHECK_EQ(v, 18);

    m = okovm_prog_find_map(prog, ".bss");
    CHECK(m != NULL);
    if (m) {
        k = 0;
        okovm_map_get_info(m, &mi);
        CHECK_EQ(mi.global_data, 1);
        CHECK_EQ(okovm_map_lookup(m, &k, &v), 0);
        CHECK_EQ(v, 6);
    }
    /* The tunable: .rodata is frozen for the control plane. */
    m = okovm_prog_find_map(prog, ".rodata");
    CHECK(m != NULL);
    if (m) {
        uint8_t buf[64] = { 0 };

        k = 0;
        CHECK_EQ(okovm_map_lookup(m, &k, buf), 0);
        CHECK_EQ(buf[0], 2);
        CHECK_EQ(okovm_map_update(m, &k, buf, 0), EPERM);
    }

    okovm_prog_get_stats(prog, &st);
    CHECK_EQ(st.runs, 6);
    CHECK_EQ(st.verdicts[OKOVM_XDP_PASS], 6);
    CHECK(lc.n >= 1);
    CHECK_STR(lc.last, "port 4 len 10");

    okovm_prog_unref(prog);
    okovm_ns_destroy(ns);
    free(err);
}

TEST(elf_pinned_sharing)
{
    struct okovm_error *err = new_err();
    struct okovm_prog *a, *b, *c;
    struct okovm_map *pinned;
    struct okovm_ns *ns, *other;
    uint8_t pkt[20] = { 0 };
    uint64_t v = 40;
    uint32_t k = 9;

    okovm_ns_create("br0", &ns);
    okovm_ns_create("br1", &other);
    CHECK_EQ(load(ns, "counter.o", 0, NULL, &a, err), 0);
    CHECK_EQ(load(ns, "replace.o", 0, NULL, &b, err), 0);
    if (!a || !b) {
        return;
    }
    CHECK(okovm_prog_find_map(a, "port_count")
          == okovm_prog_find_map(b, "port_count"));
    okovm_prog_run(a, pkt, sizeof pkt, 9);
    okovm_prog_run(a, pkt, sizeof pkt, 9);
    CHECK_EQ(okovm_prog_run(b, pkt, sizeof pkt, 9), 2);

    /* Replace: unload 'a'; the map survives through 'b' and the pin. */
    okovm_prog_unref(a);
    CHECK_EQ(okovm_prog_run(b, pkt, sizeof pkt, 9), 2);
    okovm_prog_unref(b);
    CHECK_EQ(okovm_ns_find_pinned(ns, "port_count", &pinned), 0);
    CHECK_EQ(okovm_map_lookup(pinned, &k, &v), 0);
    CHECK_EQ(v, 2);
    okovm_map_unref(pinned);
    CHECK_EQ(okovm_ns_get_pinned(ns, 0, &pinned), 0);
    okovm_map_unref(pinned);
    CHECK_EQ(okovm_ns_get_pinned(ns, 1, &pinned), ENOENT);

    /* A new program finds the old contents. */
    CHECK_EQ(load(ns, "replace.o", 0, NULL, &c, err), 0);
    CHECK_EQ(okovm_prog_run(c, pkt, sizeof pkt, 9), 2);

    /* Another namespace does not see it. */
    CHECK_EQ(load(other, "replace.o", 0, NULL, &b, err), 0);
    CHECK_EQ(okovm_prog_run(b, pkt, sizeof pkt, 9), 0);
    okovm_prog_unref(b);

    /* Same name, different definition: refused, nothing changed. */
    CHECK_EQ(load(ns, "mismatch.o", 0, NULL, &b, err), EINVAL);
    CHECK_STR(err->msg, "different definition");

    /* Unpinned: the map lives on while 'c' uses it. */
    CHECK_EQ(okovm_ns_unpin(ns, "port_count"), 0);
    CHECK_EQ(okovm_ns_find_pinned(ns, "port_count", &pinned), ENOENT);
    CHECK_EQ(okovm_prog_run(c, pkt, sizeof pkt, 9), 2);
    okovm_ns_destroy(ns);
    CHECK_EQ(okovm_prog_run(c, pkt, sizeof pkt, 9), 2);
    okovm_prog_unref(c);
    okovm_ns_destroy(other);
    free(err);
}

TEST(elf_lpm)
{
    struct okovm_error *err = new_err();
    struct okovm_prog *prog;
    struct okovm_map *m;
    struct okovm_ns *ns;
    struct { uint32_t plen, addr; } key;
    uint32_t val;

    okovm_ns_create("br0", &ns);
    CHECK_EQ(load(ns, "lpm.o", 0, NULL, &prog, err), 0);
    if (!prog) {
        return;
    }
    m = okovm_prog_find_map(prog, "src_class");
    key.plen = 8;
    key.addr = ip(10, 0, 0, 0);
    val = 10;
    CHECK_EQ(okovm_map_update(m, &key, &val, 0), 0);
    key.plen = 24;
    key.addr = ip(10, 1, 2, 0);
    val = 24;
    CHECK_EQ(okovm_map_update(m, &key, &val, 0), 0);
    CHECK_EQ(run_udp(prog, ip(10, 1, 2, 3), 53), 24);
    CHECK_EQ(run_udp(prog, ip(10, 1, 3, 3), 53), 10);
    CHECK_EQ(run_udp(prog, ip(11, 1, 2, 3), 53), OKOVM_XDP_PASS);
    {
        size_t len;
        uint8_t *p = udp_packet(0, 0, &len);

        CHECK_EQ(okovm_prog_run(prog, p, 20, 1), OKOVM_XDP_DROP);
    }
    okovm_prog_unref(prog);
    okovm_ns_destroy(ns);
    free(err);
}

TEST(elf_ctx_and_selection)
{
    struct okovm_error *err = new_err();
    struct okovm_prog *prog;
    struct okovm_ns *ns;
    uint8_t pkt[33] = { 0 };

    okovm_ns_create("br0", &ns);
    CHECK_EQ(load(ns, "ctx.o", 0, NULL, &prog, err), 0);
    if (prog) {
        CHECK_EQ(okovm_prog_run(prog, pkt, sizeof pkt, 5), 33005);
        okovm_prog_unref(prog);
    }
    CHECK_EQ(load(ns, "ctx.o", 0, "second", &prog, err), 0);
    if (prog) {
        CHECK_EQ(okovm_prog_run(prog, pkt, sizeof pkt, 5), 77);
        okovm_prog_unref(prog);
    }
    CHECK_EQ(load(ns, "ctx.o", 0, "nosuch", &prog, err), ENOENT);
    CHECK_STR(err->msg, "nosuch");
    okovm_ns_destroy(ns);
    free(err);
}

TEST(elf_bounded_loop)
{
    struct okovm_error *err = new_err();
    struct okovm_prog *prog;
    struct okovm_ns *ns;
    uint8_t pkt[20];
    int i;

    for (i = 0; i < 20; i++) {
        pkt[i] = i;
    }
    okovm_ns_create("br0", &ns);
    CHECK_EQ(load(ns, "bounded.o", 0, NULL, &prog, err), 0);
    if (prog) {
        CHECK_EQ(okovm_prog_run(prog, pkt, sizeof pkt, 5), 120);
        CHECK_EQ(okovm_prog_run(prog, pkt, 5, 5), 10);
        okovm_prog_unref(prog);
    }
    okovm_ns_destroy(ns);
    free(err);
}

TEST(elf_refusals)
{
    struct okovm_error *err = new_err();
    struct okovm_prog *prog;
    struct okovm_ns *ns;

    okovm_ns_create("br0", &ns);

    CHECK_EQ(load(ns, "pktwrite.o", 0, NULL, &prog, err), EACCES);
    CHECK_STR(err->msg, "packets are read-only");
    CHECK(err->insn >= 0);
    CHECK_STR(err->file, "pktwrite.c");
    CHECK(err->line > 0);
    CHECK_STR(err->source, "data[0] = 0xff");

    CHECK_EQ(load(ns, "badhelper.o", 0, NULL, &prog, err), EINVAL);
    CHECK_STR(err->msg, "helper 8 is not supported");
    CHECK(err->insn >= 0);
    CHECK_STR(err->file, "badhelper.c");

    CHECK_EQ(load(ns, "nullderef.o", 0, NULL, &prog, err), EACCES);
    CHECK_STR(err->msg, "kernel verifier refused");
    CHECK_STR(err->log, "invalid mem access 'map_value_or_null'");
    CHECK_STR(err->file, "nullderef.c");

    CHECK_EQ(load(ns, "loop.o", 0, NULL, &prog, err) != 0, 1);
    CHECK_STR(err->msg, "kernel verifier refused");
    CHECK(strstr(err->log, "infinite loop") || strstr(err->log, "too large")
          || strstr(err->log, "back-edge") || strstr(err->log, "limit"));

    CHECK_EQ(load(ns, "oob.o", 0, NULL, &prog, err), EACCES);
    CHECK_STR(err->log, "invalid access to packet");

    /* Nothing was pinned by refused programs. */
    {
        struct okovm_map *m;

        CHECK_EQ(okovm_ns_get_pinned(ns, 0, &m), ENOENT);
    }
    okovm_ns_destroy(ns);
    free(err);
}

TEST(elf_sandbox)
{
    static struct log_capture lc = { PTHREAD_MUTEX_INITIALIZER, 0, "" };
    struct okovm_error *err = new_err();
    struct okovm_prog_info info;
    struct okovm_prog_stats st;
    struct okovm_prog *prog;
    struct okovm_ns *ns;
    uint8_t pkt[64] = { 0 };
    size_t len;

    okovm_ns_create("br0", &ns);
    okovm_ns_set_log(ns, capture_log, &lc);
    CHECK_EQ(load(ns, "oob.o", OKOVM_LOAD_FORCE_SANDBOX, NULL, &prog, err),
             0);
    if (prog) {
        okovm_prog_get_info(prog, &info);
        CHECK_EQ(info.mode, OKOVM_MODE_SANDBOX);
        CHECK_EQ(info.kernel_verified, 0);
        pkt[40] = 5;
        CHECK_EQ(okovm_prog_run(prog, pkt, sizeof pkt, 1), 15);
        CHECK_EQ(okovm_prog_run(prog, pkt, 40, 1), OKOVM_XDP_ABORTED);
        okovm_prog_get_stats(prog, &st);
        CHECK_EQ(st.faults, 1);
        CHECK_STR(lc.last, "out-of-bounds load");
        CHECK_STR(lc.last, "oob.c");
        okovm_prog_unref(prog);
    }
    /* The same filters work in the sandbox. */
    CHECK_EQ(load(ns, "lpm.o", OKOVM_LOAD_FORCE_SANDBOX, NULL, &prog, err),
             0);
    if (prog) {
        struct { uint32_t plen, addr; } key = { 8, ip(10, 0, 0, 0) };
        uint32_t val = 99;

        okovm_map_update(okovm_prog_find_map(prog, "src_class"), &key, &val,
                         0);
        CHECK_EQ(run_udp(prog, ip(10, 1, 2, 3), 53), 99);
        okovm_prog_unref(prog);
    }
    CHECK_EQ(load(ns, "counter.o", OKOVM_LOAD_FORCE_SANDBOX, NULL, &prog,
                  err), 0);
    if (prog) {
        CHECK_EQ(okovm_prog_run(prog, pkt, sizeof pkt, 1), OKOVM_XDP_PASS);
        okovm_prog_get_stats(prog, &st);
        CHECK_EQ(st.faults, 0);
        okovm_prog_unref(prog);
    }
    /* Loops are allowed in the sandbox, bounded by the budget. */
    {
        struct okovm_load_opts opts = { .flags = OKOVM_LOAD_FORCE_SANDBOX,
                                        .insn_budget = 10000 };
        void *elf = read_prog("loop.o", &len);

        CHECK_EQ(okovm_prog_load(ns, elf, len, &opts, &prog, err), 0);
        free(elf);
        if (prog) {
            CHECK_EQ(okovm_prog_run(prog, pkt, sizeof pkt, 6), 8);
            CHECK_EQ(okovm_prog_run(prog, pkt, sizeof pkt, 0),
                     OKOVM_XDP_ABORTED);
            CHECK_STR(lc.last, "budget");
            okovm_prog_unref(prog);
        }
    }
    /* Packet writes are refused in the sandbox too. */
    CHECK_EQ(load(ns, "pktwrite.o", OKOVM_LOAD_FORCE_SANDBOX, NULL, &prog,
                  err), EACCES);
    okovm_ns_destroy(ns);
    free(err);
}

TEST(elf_malformed)
{
    struct okovm_error *err = new_err();
    struct okovm_prog *prog;
    struct okovm_ns *ns;
    uint8_t *elf, garbage[512];
    size_t len, i;

    okovm_ns_create("br0", &ns);
    elf = read_prog("counter.o", &len);

    CHECK_EQ(okovm_prog_load(ns, elf, 10, NULL, &prog, err), EINVAL);
    CHECK_STR(err->msg, "truncated");
    CHECK_EQ(okovm_prog_load(ns, elf, len / 2, NULL, &prog, err), EINVAL);
    CHECK(prog == NULL);
    for (i = 0; i < sizeof garbage; i++) {
        garbage[i] = i * 37;
    }
    CHECK_EQ(okovm_prog_load(ns, garbage, sizeof garbage, NULL, &prog, err),
             EINVAL);
    CHECK_STR(err->msg, "magic");
    memcpy(garbage, elf, 64);
    CHECK(okovm_prog_load(ns, garbage, sizeof garbage, NULL, &prog, err)
          != 0);
    CHECK(prog == NULL);
    {
        uint8_t *copy = malloc(len);

        memcpy(copy, elf, len);
        copy[18] = 62;                  /* e_machine = EM_X86_64 */
        CHECK_EQ(okovm_prog_load(ns, copy, len, NULL, &prog, err), EINVAL);
        CHECK_STR(err->msg, "EM_BPF");
        free(copy);
    }
    free(elf);

    /* Every truncation fails cleanly. */
    elf = read_prog("lpm.o", &len);
    for (i = 0; i < len; i += 97) {
        if (!okovm_prog_load(ns, elf, i, NULL, &prog, err)) {
            okovm_prog_unref(prog);
            test_failures++;
            fprintf(stderr, "truncated object (%zu bytes) loaded\n", i);
        }
    }
    free(elf);
    okovm_ns_destroy(ns);
    free(err);
}
