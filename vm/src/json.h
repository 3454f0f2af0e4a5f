/*
 * json.h -- the small JSON reader and writer of the BTF codec
 * (btf-codec.c): a growable text buffer, JSON text into a tree, and values
 * written back as JSON or, for error messages, as Python writes them.
 *
 * Names carry the okovm_ prefix: libokovm is linked statically into Open
 * vSwitch, which has a json.c of its own.
 */

#ifndef OKOVM_JSON_H
#define OKOVM_JSON_H 1

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* A growable NUL-terminated string.  After an allocation failure,
 * 'failed' is set and further output is dropped. */
struct okovm_buf {
    char *s;
    size_t len;
    size_t cap;
    bool failed;
};

void okovm_buf_init(struct okovm_buf *);
void okovm_buf_free(struct okovm_buf *);
void okovm_buf_put(struct okovm_buf *, const void *, size_t);
void okovm_buf_puts(struct okovm_buf *, const char *);
void okovm_buf_printf(struct okovm_buf *, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
void okovm_buf_truncate(struct okovm_buf *, size_t len);

enum okovm_json_type {
    OKOVM_JSON_NULL,
    OKOVM_JSON_FALSE,
    OKOVM_JSON_TRUE,
    OKOVM_JSON_NUMBER,
    OKOVM_JSON_STRING,
    OKOVM_JSON_ARRAY,
    OKOVM_JSON_OBJECT,
};

/* One JSON value.  Strings hold their decoded UTF-8 bytes (possibly with
 * NULs: see 'len'), numbers their text as written, both NUL-terminated.
 * Members of an object keep their order; duplicate names are kept. */
struct okovm_json {
    enum okovm_json_type type;
    char *str;                  /* STRING, NUMBER. */
    size_t len;
    char *key;                  /* As a member of an object: its name... */
    size_t key_len;             /* ...and the name's length. */
    struct okovm_json *items;   /* ARRAY, OBJECT. */
    size_t n;
};

int okovm_json_parse(const char *text, struct okovm_json **jsonp,
                     char *why, size_t why_size);
int okovm_json_parse_ovs(const char *text, struct okovm_json **jsonp,
                         char *why, size_t why_size);
void okovm_json_free(struct okovm_json *);
bool okovm_json_number_is_integer(const struct okovm_json *);

void okovm_json_put_string(struct okovm_buf *, const uint8_t *, size_t);
void okovm_json_put_double(struct okovm_buf *, double);
void okovm_json_repr(struct okovm_buf *, const struct okovm_json *, int depth);
void okovm_json_repr_string(struct okovm_buf *, const char *, size_t);

#endif /* json.h */
