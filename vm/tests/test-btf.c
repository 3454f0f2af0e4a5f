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

/* Round-trips the zero value and a patterned value of 'type_id' through
 * the text of 'syntax'. */
static void
round_trip(struct okovm_btf *btf, uint32_t type_id, uint32_t size,
           enum okovm_btf_syntax syntax, struct okovm_error *err)
{
    uint8_t *raw = calloc(1, size + 1), *back = calloc(1, size + 1);
    char *text = NULL, *again = NULL;
    uint32_t i;

    for (int pass = 0; pass < 2; pass++) {
        for (i = 0; i < size; i++) {
            raw[i] = pass ? 0x20 + (i * 7) % 0x5f : 0;
        }
        CHECK_EQ(okovm_btf_format(btf, type_id, raw, size, syntax, &text,
                                  err), 0);
        CHECK_EQ(okovm_btf_parse(btf, type_id, text, syntax, back, size,
                                 err), 0);
        if (err->code) {
            fprintf(stderr, "%s: %s\n", text, err->msg);
        }
        CHECK_EQ(okovm_btf_format(btf, type_id, back, size, syntax, &again,
                                  err), 0);
        if (text && again) {
            CHECK(!strcmp(text, again));
        }
        if (!pass) {
            CHECK(!memcmp(raw, back, size));
        }
        okovm_free(text);
        okovm_free(again);
        text = again = NULL;
    }
    free(raw);
    free(back);
}

/* Reads the BTF of test program 'name'. */
static struct okovm_btf *
prog_btf(const char *name, struct okovm_error *err)
{
    struct okovm_btf *btf = NULL;
    const void *raw;
    struct btf *lb;
    char path[512];
    uint32_t size;

    snprintf(path, sizeof path, "%s/%s", OKOVM_PROGS_DIR, name);
    lb = btf__parse_elf(path, NULL);
    CHECK(lb != NULL);
    if (!lb) {
        return NULL;
    }
    raw = btf__raw_data(lb, &size);
    CHECK_EQ(okovm_btf_new(raw, size, &btf, err), 0);
    btf__free(lb);
    if (err->code) {
        fprintf(stderr, "%s: %s\n", name, err->msg);
    }
    return btf;
}

TEST(btf_codec_round_trips_every_map)
{
    static const char *const progs[] = { "counter.o", "lpm.o", "filter.o",
                                         "tunable.o", "typed.o" };
    struct okovm_error *err = new_err();
    int n_checked = 0;

    for (size_t p = 0; p < sizeof progs / sizeof *progs; p++) {
        struct okovm_btf *btf = prog_btf(progs[p], err);
        struct okovm_btf_map_def *defs;
        uint32_t n, i;

        if (!btf) {
            continue;
        }
        CHECK_EQ(okovm_btf_map_defs(btf, &defs, &n, err), 0);
        for (i = 0; i < n; i++) {
            for (int syntax = 0; syntax < 2; syntax++) {
                if (defs[i].key_type_id) {
                    round_trip(btf, defs[i].key_type_id, defs[i].key_size,
                               syntax, err);
                    n_checked++;
                }
                if (defs[i].value_type_id) {
                    round_trip(btf, defs[i].value_type_id,
                               defs[i].value_size, syntax, err);
                    n_checked++;
                }
            }
        }
        okovm_free(defs);
        okovm_btf_destroy(btf);
    }
    CHECK(n_checked >= 10);
    free(err);
}

/* Reads 'text' in 'syntax' as type 'name' and returns it shown in the
 * other syntax, or the error message. */
static char *
convert(struct okovm_btf *btf, const char *name, const char *text,
        enum okovm_btf_syntax syntax, struct okovm_error *err)
{
    uint32_t id = okovm_btf_find_type(btf, name), size = 0;
    char *out = NULL;
    uint8_t *buf;

    CHECK(id != 0);
    CHECK_EQ(okovm_btf_type_size(btf, id, &size, err), 0);
    buf = calloc(1, size);
    if (okovm_btf_parse(btf, id, text, syntax, buf, size, err)) {
        out = strdup(err->msg);
    } else {
        CHECK_EQ(okovm_btf_format(btf, id, buf, size, !syntax, &out, err),
                 0);
    }
    free(buf);
    return out;
}

static void
check_convert(struct okovm_btf *btf, const char *name, const char *text,
              enum okovm_btf_syntax syntax, const char *expected,
              struct okovm_error *err)
{
    char *out = convert(btf, name, text, syntax, err);

    if (!out || strcmp(out, expected)) {
        fprintf(stderr, "%s\n  gave %s\n  not  %s\n", text,
                out ? out : "(null)", expected);
        CHECK(false);
    }
    free(out);
}

TEST(btf_codec_reads_both_syntaxes)
{
    struct okovm_error *err = new_err();
    struct okovm_btf *btf = prog_btf("typed.o", err);

    if (!btf) {
        free(err);
        return;
    }
    check_convert(btf, "flow_key",
                  "{saddr=10.0.0.1, daddr=2001:db8::1,sport=0x35,proto=17}",
                  OKOVM_BTF_OVS,
                  "{\"saddr\": \"10.0.0.1\", \"daddr\": \"2001:db8::1\", "
                  "\"sport\": 53, \"proto\": 17, \"pad\": 0}", err);
    check_convert(btf, "flow_key",
                  "{\"saddr\": \"10.0.0.1\", \"sport\": 53}",
                  OKOVM_BTF_JSON,
                  "{saddr=10.0.0.1,daddr=::,sport=53,proto=0,pad=0}", err);
    check_convert(btf, "flow_info",
                  "{packets=1,delta=-5,action=FLOW_MARK,label=\"a\\\"b\\x01\","
                  "mac=50:54:00:00:00:01,cookie=0a0b0c0d,seen=true,"
                  "flags=5,level=0x1f,ports=[1,2],ratio=0.5,mean=-inf,"
                  "u={bytes=01020304},path=[{hops=[-1,2]}]}",
                  OKOVM_BTF_OVS,
                  "{\"packets\": 1, \"delta\": -5, \"action\": \"FLOW_MARK\", "
                  "\"label\": \"a\\\"b\\u0001\", "
                  "\"mac\": \"50:54:00:00:00:01\", \"cookie\": \"0a0b0c0d\", "
                  "\"seen\": true, \"flags\": 5, \"level\": 31, "
                  "\"ports\": [1, 2, 0], \"ratio\": 0.5, "
                  "\"mean\": -Infinity, \"u\": {\"word\": 67305985, "
                  "\"bytes\": \"01020304\"}, "
                  "\"path\": [{\"hops\": \"ff02\"}, {\"hops\": \"0000\"}]}",
                  err);

    /* Errors name the part of the value at fault. */
    check_convert(btf, "flow_key", "{sport=70000}", OKOVM_BTF_OVS,
                  "struct flow_key.sport: 70000 does not fit in 2 bytes", err);
    check_convert(btf, "flow_key", "{port=1}", OKOVM_BTF_OVS,
                  "struct flow_key: unknown field 'port' (fields: saddr, "
                  "daddr, sport, proto, pad)", err);
    check_convert(btf, "flow_key", "{saddr=10.0.0.256}", OKOVM_BTF_OVS,
                  "struct flow_key.saddr: '10.0.0.256' is not an IP address",
                  err);
    check_convert(btf, "flow_key", "{saddr=1,}", OKOVM_BTF_OVS,
                  "struct flow_key: invalid value at byte 9: expected name=value",
                  err);
    check_convert(btf, "flow_key", "{saddr}", OKOVM_BTF_OVS,
                  "struct flow_key: invalid value at byte 6: expected '=' "
                  "after a member name", err);
    check_convert(btf, "flow_info", "{label=\"ab\\n\"}", OKOVM_BTF_OVS,
                  "struct flow_info: invalid value at byte 10: bad escape in "
                  "a string (\\\", \\\\ or \\xHH)", err);
    check_convert(btf, "flow_info", "{label=\"0123456789\"}", OKOVM_BTF_OVS,
                  "struct flow_info.label: 10 bytes do not fit in 8", err);
    check_convert(btf, "flow_info", "{ratio=1.5x}", OKOVM_BTF_OVS,
                  "struct flow_info.ratio: expected a number, got '1.5x'", err);
    check_convert(btf, "flow_info", "{action=FLOW_EXIT}", OKOVM_BTF_OVS,
                  "struct flow_info.action: 'FLOW_EXIT' is not one of "
                  "FLOW_DROP, FLOW_PASS, FLOW_MARK", err);
    check_convert(btf, "flow_info", "{flags=8}", OKOVM_BTF_OVS,
                  "struct flow_info.flags: '8' does not fit in 3 bits", err);
    check_convert(btf, "flow_info", "{packets=1} x", OKOVM_BTF_OVS,
                  "struct flow_info: invalid value at byte 12: extra data "
                  "after the value", err);
    okovm_btf_destroy(btf);
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
