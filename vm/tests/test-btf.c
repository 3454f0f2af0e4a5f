/*
 * test-btf.c -- the BTF codec: every map of the test programs round-trips
 * through JSON, and hostile BTF is refused with a message, under ASan in
 * "make check-asan".  (tests/unit/test_btf.py covers the JSON shapes.)
 */

#include <errno.h>
#include <bpf/btf.h>

#include "okovm.h"
#include "runner.h"

static struct okovm_error *
new_err(void)
{
    struct okovm_error *e = calloc(1, sizeof *e);

    if (!e) {
        abort();
    }
    return e;
}

/* Round-trips the zero value and a patterned value of 'type_id'. */
static void
round_trip(struct okovm_btf *btf, uint32_t type_id, uint32_t size,
           struct okovm_error *err)
{
    uint8_t *raw = calloc(1, size + 1), *back = calloc(1, size + 1);
    char *json = NULL, *again = NULL;
    uint32_t i;

    for (int pass = 0; pass < 2; pass++) {
        for (i = 0; i < size; i++) {
            raw[i] = pass ? 0x20 + (i * 7) % 0x5f : 0;
        }
        CHECK_EQ(okovm_btf_decode(btf, type_id, raw, size, &json, err), 0);
        CHECK_EQ(okovm_btf_encode(btf, type_id, json, back, size, err), 0);
        CHECK_EQ(okovm_btf_decode(btf, type_id, back, size, &again, err), 0);
        if (json && again) {
            CHECK(!strcmp(json, again));
        }
        if (!pass) {
            CHECK(!memcmp(raw, back, size));
        }
        okovm_free(json);
        okovm_free(again);
        json = again = NULL;
    }
    free(raw);
    free(back);
}

TEST(btf_codec_round_trips_every_map)
{
    static const char *const progs[] = { "counter.o", "lpm.o", "filter.o",
                                         "tunable.o" };
    struct okovm_error *err = new_err();
    int n_checked = 0;

    for (size_t p = 0; p < sizeof progs / sizeof *progs; p++) {
        char path[512];
        struct okovm_btf_map_def *defs;
        struct okovm_btf *btf;
        const void *raw;
        struct btf *lb;
        uint32_t size, n, i;

        snprintf(path, sizeof path, "%s/%s", OKOVM_PROGS_DIR, progs[p]);
        lb = btf__parse_elf(path, NULL);
        CHECK(lb != NULL);
        if (!lb) {
            continue;
        }
        raw = btf__raw_data(lb, &size);
        CHECK_EQ(okovm_btf_new(raw, size, &btf, err), 0);
        btf__free(lb);
        if (err->code) {
            fprintf(stderr, "%s: %s\n", progs[p], err->msg);
            continue;
        }
        CHECK_EQ(okovm_btf_map_defs(btf, &defs, &n, err), 0);
        for (i = 0; i < n; i++) {
            if (defs[i].key_type_id) {
                round_trip(btf, defs[i].key_type_id, defs[i].key_size, err);
                n_checked++;
            }
            if (defs[i].value_type_id) {
                round_trip(btf, defs[i].value_type_id, defs[i].value_size,
                           err);
                n_checked++;
            }
        }
        okovm_free(defs);
        okovm_btf_destroy(btf);
    }
    CHECK(n_checked >= 4);
    free(err);
}

TEST(btf_codec_refuses_hostile_btf)
{
    /* Two typedefs naming each other: "a" -> 2, "b" -> 1. */
    static const uint32_t loop[] = {
        0x0001eb9f, 24, 0, 24, 24, 5,
        1, 8 << 24, 2,
        3, 8 << 24, 1,
    };
    uint8_t blob[sizeof loop + 5];
    struct okovm_error *err = new_err();
    struct okovm_btf *btf = NULL;

    memcpy(blob, loop, sizeof loop);
    memcpy(blob + sizeof loop, "\0a\0b", 5);
    CHECK_EQ(okovm_btf_new(blob, sizeof blob, &btf, err), EINVAL);
    CHECK_STR(err->msg, "chain of references does not end");
    CHECK(btf == NULL);

    CHECK_EQ(okovm_btf_new(blob, 10, &btf, err), EINVAL);
    CHECK_STR(err->msg, "shorter than its header");

    /* Type 2 is past the end. */
    blob[24 + 8] = 7;
    CHECK_EQ(okovm_btf_new(blob, sizeof blob, &btf, err), EINVAL);
    CHECK_STR(err->msg, "refers to type 7, which does not exist");
    free(err);
}
