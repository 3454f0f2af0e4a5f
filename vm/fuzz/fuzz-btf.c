/*
 * fuzz-btf.c -- libFuzzer target: the BTF codec (btf-codec.c, json.c) on
 * arbitrary BTF, values and JSON text.
 *
 * Input: a 4-byte type id, a 2-byte BTF length, that many bytes of BTF,
 * then bytes used both as a value (repeated to the type's size) and as
 * JSON text.  For the chosen type and the first types of the BTF: size,
 * name, decode, encode of the decoded JSON, encode of the JSON text, and
 * the .maps definitions.  Checks: nothing crashes or reads out of bounds;
 * every refusal fills 'struct okovm_error' with a message; what the codec
 * encodes from its own decoding, it decodes; and a second round trip
 * changes nothing.
 */

#include <errno.h>

#include "fuzz.h"

#define MAX_VALUE 65536

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
check_type(struct okovm_btf *btf, uint32_t id, const uint8_t *rest,
           size_t rest_len, const char *text)
{
    static struct okovm_error err;
    char *json = NULL, *again = NULL, name[128];
    uint8_t *value, *encoded;
    uint32_t tsize;
    size_t i;
    int error;

    okovm_btf_type_name(btf, id, name, sizeof name);
    error = okovm_btf_type_size(btf, id, &tsize, &err);
    if (error) {
        fuzz_check_error(error, &err);
        return;
    }
    if (tsize > MAX_VALUE) {
        return;
    }
    value = malloc(tsize ? tsize : 1);
    encoded = malloc(tsize ? tsize : 1);
    for (i = 0; i < tsize; i++) {
        value[i] = rest_len ? rest[i % rest_len] : 0;
    }

    /* decode, then encode and decode twice: the second round trip must
     * change nothing.  (The first may: when members share a name, only the
     * last one can be given a value, as in a JSON object.)  The syntax of
     * ovs-ofctl must show the value exactly when JSON can. */
    error = okovm_btf_decode(btf, id, value, tsize, &json, &err);
    {
        static struct okovm_error ovs_err;
        char *ovs = NULL;
        int ovs_error = okovm_btf_format(btf, id, value, tsize,
                                         OKOVM_BTF_OVS, &ovs, &ovs_err);

        if (!error != !ovs_error) {
            fprintf(stderr, "JSON %s, ovs-ofctl syntax %s\n",
                    error ? "refused" : json, ovs_error ? "refused" : ovs);
            abort();
        }
        okovm_free(ovs);
    }
    for (i = 0; !error && i < 2; i++) {
        error = okovm_btf_encode(btf, id, json, encoded, tsize, &err);
        if (error) {
            fuzz_check_error(error, &err);
            break;
        }
        error = okovm_btf_decode(btf, id, encoded, tsize, &again, &err);
        if (error) {
            fprintf(stderr, "decoded %s, encoded it, then: %s\n", json,
                    err.msg);
            abort();
        }
        /* NaN is the one value not equal to itself. */
        if (i && strcmp(json, again) && !strstr(json, "NaN")) {
            fprintf(stderr, "round trip of %s (type %u) changed %s into "
                    "%s\n", name, id, json, again);
            abort();
        }
        okovm_free(json);
        json = again;
        again = NULL;
    }
    if (error) {
        fuzz_check_error(error, &err);
    }
    okovm_free(json);

    error = okovm_btf_encode(btf, id, text, encoded, tsize, &err);
    if (error) {
        fuzz_check_error(error, &err);
    }
    free(value);
    free(encoded);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct okovm_error err;
    struct okovm_btf_map_def *defs;
    struct okovm_btf *btf;
    size_t btf_len, rest_len;
    const uint8_t *rest;
    uint32_t id, n, i;
    uint8_t *blob;
    char *text;
    int error;

    if (size < 6) {
        return -1;
    }
    memcpy(&id, data, sizeof id);
    btf_len = data[4] | data[5] << 8;
    if (btf_len > size - 6) {
        btf_len = size - 6;
    }
    rest = data + 6 + btf_len;
    rest_len = size - 6 - btf_len;

    /* Copies of their exact size: AddressSanitizer sees any overread. */
    blob = malloc(btf_len ? btf_len : 1);
    memcpy(blob, data + 6, btf_len);
    text = malloc(rest_len + 1);
    memcpy(text, rest, rest_len);
    text[rest_len] = '\0';

    error = okovm_btf_new(blob, btf_len, &btf, &err);
    free(blob);
    if (error) {
        fuzz_check_error(error, &err);
        free(text);
        return 0;
    }
    check_type(btf, id % 256, rest, rest_len, text);
    for (i = 1; i < 32; i++) {
        char name[64];

        if (okovm_btf_type_name(btf, i, name, sizeof name) == ENOENT) {
            break;
        }
        check_type(btf, i, rest, rest_len, text);
    }
    error = okovm_btf_map_defs(btf, &defs, &n, &err);
    if (error) {
        fuzz_check_error(error, &err);
    }
    okovm_free(defs);
    okovm_btf_destroy(btf);
    free(text);
    return 0;
}
