/*
 * json.c -- the small JSON reader and writer of the BTF codec.
 *
 * The reader takes RFC 8259 JSON in UTF-8, plus the NaN, Infinity and
 * -Infinity that Python's json module writes for floats.  It refuses
 * invalid UTF-8, control characters in strings, lone surrogates and
 * nesting deeper than MAX_NESTING, with the byte offset of the fault.
 *
 * The writer emits what Python's json.dumps() would for the same value
 * (floats in their shortest round-trip form), and okovm_json_repr() what
 * Python's repr() would, so that the codec's messages read as they did
 * when okopy decoded BTF in Python.
 */

#include "json.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_NESTING 128

/* Text buffers. */

void
okovm_buf_init(struct okovm_buf *b)
{
    memset(b, 0, sizeof *b);
}

void
okovm_buf_free(struct okovm_buf *b)
{
    free(b->s);
    okovm_buf_init(b);
}

static bool
buf_reserve(struct okovm_buf *b, size_t n)
{
    size_t cap;
    char *s;

    if (b->failed) {
        return false;
    }
    if (b->len + n + 1 <= b->cap) {
        return true;
    }
    cap = b->cap ? b->cap : 64;
    while (cap < b->len + n + 1) {
        if (cap > SIZE_MAX / 2) {
            b->failed = true;
            return false;
        }
        cap *= 2;
    }
    s = realloc(b->s, cap);
    if (!s) {
        b->failed = true;
        return false;
    }
    b->s = s;
    b->cap = cap;
    return true;
}

void
okovm_buf_put(struct okovm_buf *b, const void *p, size_t n)
{
    if (buf_reserve(b, n)) {
        memcpy(b->s + b->len, p, n);
        b->len += n;
        b->s[b->len] = '\0';
    }
}

void
okovm_buf_puts(struct okovm_buf *b, const char *s)
{
    okovm_buf_put(b, s, strlen(s));
}

void
okovm_buf_printf(struct okovm_buf *b, const char *fmt, ...)
{
    char small[128];
    va_list args;
    int n;

    va_start(args, fmt);
    n = vsnprintf(small, sizeof small, fmt, args);
    va_end(args);
    if (n < 0) {
        b->failed = true;
    } else if ((size_t) n < sizeof small) {
        okovm_buf_put(b, small, n);
    } else if (buf_reserve(b, n)) {
        va_start(args, fmt);
        vsnprintf(b->s + b->len, n + 1, fmt, args);
        va_end(args);
        b->len += n;
    }
}

void
okovm_buf_truncate(struct okovm_buf *b, size_t len)
{
    if (len < b->len) {
        b->len = len;
        b->s[len] = '\0';
    }
}

/* UTF-8. */

/* Returns the length of the well-formed UTF-8 sequence at 'p' ('n' bytes
 * available), or 0 if there is none; in that case '*badp' is the length of
 * its maximal ill-formed prefix (at least 1), which Python's "replace"
 * error handler turns into one U+FFFD. */
static size_t
utf8_sequence(const uint8_t *p, size_t n, size_t *badp)
{
    uint8_t c = p[0], lo = 0x80, hi = 0xbf;
    size_t need, i;

    *badp = 1;
    if (c < 0x80) {
        return 1;
    } else if (c >= 0xc2 && c <= 0xdf) {
        need = 1;
    } else if (c >= 0xe0 && c <= 0xef) {
        need = 2;
        lo = c == 0xe0 ? 0xa0 : 0x80;
        hi = c == 0xed ? 0x9f : 0xbf;
    } else if (c >= 0xf0 && c <= 0xf4) {
        need = 3;
        lo = c == 0xf0 ? 0x90 : 0x80;
        hi = c == 0xf4 ? 0x8f : 0xbf;
    } else {
        return 0;
    }
    for (i = 1; i <= need; i++) {
        if (i >= n || p[i] < lo || p[i] > hi) {
            *badp = i;
            return 0;
        }
        lo = 0x80;
        hi = 0xbf;
    }
    return need + 1;
}

/* Writes the 'n' bytes at 's' as a JSON string, invalid UTF-8 replaced by
 * U+FFFD as Python's bytes.decode("utf-8", "replace") does. */
void
okovm_json_put_string(struct okovm_buf *b, const uint8_t *s, size_t n)
{
    size_t i = 0;

    okovm_buf_put(b, "\"", 1);
    while (i < n && !b->failed) {
        size_t bad, len = utf8_sequence(s + i, n - i, &bad);
        uint8_t c = s[i];

        if (!len) {
            okovm_buf_puts(b, "\\ufffd");
            i += bad;
        } else if (c == '"' || c == '\\') {
            okovm_buf_printf(b, "\\%c", c);
            i++;
        } else if (c < 0x20) {
            okovm_buf_printf(b, "\\u%04x", c);
            i++;
        } else {
            okovm_buf_put(b, s + i, len);
            i += len;
        }
    }
    okovm_buf_put(b, "\"", 1);
}

/* Numbers. */

/* Writes finite 'x' as Python's repr() does: the shortest digits that read
 * back as 'x', in exponent form below 1e-4 and from 1e16 on. */
static void
put_python_float(struct okovm_buf *b, double x)
{
    char text[40], digits[20];
    int prec, exp, n_digits = 0;
    const char *p;

    for (prec = 1; prec <= 17; prec++) {
        snprintf(text, sizeof text, "%.*e", prec - 1, x);
        if (strtod(text, NULL) == x) {
            break;
        }
    }
    /* 'text' is "[-]D[.DDD]e[+-]XX". */
    p = text;
    if (*p == '-') {
        okovm_buf_put(b, "-", 1);
        p++;
    }
    for (; *p != 'e'; p++) {
        if (*p != '.') {
            digits[n_digits++] = *p;
        }
    }
    exp = atoi(p + 1);
    while (n_digits > 1 && digits[n_digits - 1] == '0') {
        n_digits--;
    }
    digits[n_digits] = '\0';

    if (exp < -4 || exp >= 16) {
        okovm_buf_put(b, digits, 1);
        if (n_digits > 1) {
            okovm_buf_printf(b, ".%s", digits + 1);
        }
        okovm_buf_printf(b, "e%c%02d", exp < 0 ? '-' : '+', abs(exp));
    } else if (exp < 0) {
        okovm_buf_puts(b, "0.");
        for (int i = 0; i < -exp - 1; i++) {
            okovm_buf_put(b, "0", 1);
        }
        okovm_buf_puts(b, digits);
    } else if (n_digits > exp + 1) {
        okovm_buf_put(b, digits, exp + 1);
        okovm_buf_printf(b, ".%s", digits + exp + 1);
    } else {
        okovm_buf_puts(b, digits);
        for (int i = n_digits; i < exp + 1; i++) {
            okovm_buf_put(b, "0", 1);
        }
        okovm_buf_puts(b, ".0");
    }
}

/* Writes 'x' as Python's json.dumps() does. */
void
okovm_json_put_double(struct okovm_buf *b, double x)
{
    if (isnan(x)) {
        okovm_buf_puts(b, "NaN");
    } else if (isinf(x)) {
        okovm_buf_puts(b, x < 0 ? "-Infinity" : "Infinity");
    } else {
        put_python_float(b, x);
    }
}

bool
okovm_json_number_is_integer(const struct okovm_json *j)
{
    return (j->type == OKOVM_JSON_NUMBER
            && !strpbrk(j->str, ".eEIN"));
}

/* Python's repr(). */

void
okovm_json_repr_string(struct okovm_buf *b, const char *s, size_t n)
{
    bool has_single = memchr(s, '\'', n) != NULL;
    bool has_double = memchr(s, '"', n) != NULL;
    char quote = has_single && !has_double ? '"' : '\'';
    size_t i;

    okovm_buf_put(b, &quote, 1);
    for (i = 0; i < n; i++) {
        uint8_t c = s[i];

        if (c == '\\' || c == (uint8_t) quote) {
            okovm_buf_printf(b, "\\%c", c);
        } else if (c == '\n') {
            okovm_buf_puts(b, "\\n");
        } else if (c == '\r') {
            okovm_buf_puts(b, "\\r");
        } else if (c == '\t') {
            okovm_buf_puts(b, "\\t");
        } else if (c < 0x20 || c == 0x7f) {
            okovm_buf_printf(b, "\\x%02x", c);
        } else if (c == 0xc2 && i + 1 < n && (uint8_t) s[i + 1] < 0xa0) {
            okovm_buf_printf(b, "\\x%02x", (uint8_t) s[++i]);   /* C1. */
        } else {
            okovm_buf_put(b, &s[i], 1);
        }
    }
    okovm_buf_put(b, &quote, 1);
}

void
okovm_json_repr(struct okovm_buf *b, const struct okovm_json *j, int depth)
{
    size_t i;

    if (depth > 8) {
        okovm_buf_puts(b, "...");
        return;
    }
    switch (j->type) {
    case OKOVM_JSON_NULL:
        okovm_buf_puts(b, "None");
        break;
    case OKOVM_JSON_FALSE:
        okovm_buf_puts(b, "False");
        break;
    case OKOVM_JSON_TRUE:
        okovm_buf_puts(b, "True");
        break;
    case OKOVM_JSON_NUMBER:
        if (okovm_json_number_is_integer(j)) {
            okovm_buf_puts(b, strcmp(j->str, "-0") ? j->str : "0");
        } else {
            double x = strtod(j->str, NULL);

            if (isnan(x)) {
                okovm_buf_puts(b, "nan");
            } else if (isinf(x)) {
                okovm_buf_puts(b, x < 0 ? "-inf" : "inf");
            } else {
                put_python_float(b, x);
            }
        }
        break;
    case OKOVM_JSON_STRING:
        okovm_json_repr_string(b, j->str, j->len);
        break;
    case OKOVM_JSON_ARRAY:
        okovm_buf_put(b, "[", 1);
        for (i = 0; i < j->n && b->len < 4096; i++) {
            okovm_buf_puts(b, i ? ", " : "");
            okovm_json_repr(b, &j->items[i], depth + 1);
        }
        okovm_buf_puts(b, i < j->n ? ", ...]" : "]");
        break;
    case OKOVM_JSON_OBJECT:
        okovm_buf_put(b, "{", 1);
        for (i = 0; i < j->n && b->len < 4096; i++) {
            okovm_buf_puts(b, i ? ", " : "");
            okovm_json_repr_string(b, j->items[i].key, j->items[i].key_len);
            okovm_buf_puts(b, ": ");
            okovm_json_repr(b, &j->items[i], depth + 1);
        }
        okovm_buf_puts(b, i < j->n ? ", ...}" : "}");
        break;
    }
}

/* Reading. */

struct json_reader {
    const char *start;
    const char *p;
    char *why;
    size_t why_size;
    int error;
    bool ovs;                   /* Open vSwitch's syntax, not JSON. */
};

static int
read_error(struct json_reader *r, const char *what)
{
    if (!r->error) {
        snprintf(r->why, r->why_size, "invalid %s at byte %zu: %s",
                 r->ovs ? "value" : "JSON", (size_t) (r->p - r->start),
                 what);
        r->error = EINVAL;
    }
    return r->error;
}

static int
out_of_memory(struct json_reader *r)
{
    r->error = ENOMEM;
    snprintf(r->why, r->why_size, "out of memory");
    return r->error;
}

/* Hands the string read into 'b' to the caller, or frees it. */
static int
take_string(struct json_reader *r, struct okovm_buf *b, char **sp,
            size_t *lenp)
{
    if (r->error || b->failed) {
        okovm_buf_free(b);
        return r->error ? r->error : out_of_memory(r);
    }
    *sp = b->s;
    *lenp = b->len;
    return 0;
}

static void
skip_ws(struct json_reader *r)
{
    r->p += strspn(r->p, " \t\r\n");
}

static int
hex_digit(char c)
{
    return (c >= '0' && c <= '9' ? c - '0'
            : c >= 'a' && c <= 'f' ? c - 'a' + 10
            : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1);
}

static int
hex4(const char *p)
{
    int x = 0;

    for (int i = 0; i < 4; i++) {
        int d = hex_digit(p[i]);

        if (d < 0) {
            return -1;
        }
        x = x << 4 | d;
    }
    return x;
}

static void
put_utf8(struct okovm_buf *b, uint32_t cp)
{
    uint8_t u[4];
    size_t n;

    if (cp < 0x80) {
        u[0] = cp;
        n = 1;
    } else if (cp < 0x800) {
        u[0] = 0xc0 | (cp >> 6);
        u[1] = 0x80 | (cp & 0x3f);
        n = 2;
    } else if (cp < 0x10000) {
        u[0] = 0xe0 | (cp >> 12);
        u[1] = 0x80 | ((cp >> 6) & 0x3f);
        u[2] = 0x80 | (cp & 0x3f);
        n = 3;
    } else {
        u[0] = 0xf0 | (cp >> 18);
        u[1] = 0x80 | ((cp >> 12) & 0x3f);
        u[2] = 0x80 | ((cp >> 6) & 0x3f);
        u[3] = 0x80 | (cp & 0x3f);
        n = 4;
    }
    okovm_buf_put(b, u, n);
}

/* Reads a string (at its opening quote) into a new buffer. */
static int
read_string(struct json_reader *r, char **sp, size_t *lenp)
{
    struct okovm_buf b;

    okovm_buf_init(&b);
    okovm_buf_put(&b, "", 0);
    r->p++;
    for (;;) {
        uint8_t c = *r->p;
        size_t bad, len;

        if (c == '"') {
            r->p++;
            break;
        } else if (!c) {
            read_error(r, "unterminated string");
            goto done;
        } else if (c < 0x20) {
            read_error(r, "control character in a string");
            goto done;
        } else if (c == '\\') {
            char e = r->p[1];
            const char *esc = strchr("\"\\/bfnrt", e);

            if (e && esc) {
                okovm_buf_put(&b, &"\"\\/\b\f\n\r\t"[esc - "\"\\/bfnrt"], 1);
                r->p += 2;
            } else if (e == 'u') {
                int cp = hex4(r->p + 2), lo;

                if (cp < 0) {
                    read_error(r, "bad \\u escape");
                    goto done;
                }
                r->p += 6;
                if (cp >= 0xd800 && cp <= 0xdbff && r->p[0] == '\\'
                    && r->p[1] == 'u'
                    && (lo = hex4(r->p + 2)) >= 0xdc00 && lo <= 0xdfff) {
                    cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
                    r->p += 6;
                } else if (cp >= 0xd800 && cp <= 0xdfff) {
                    r->p -= 6;
                    read_error(r, "lone surrogate in a \\u escape");
                    goto done;
                }
                put_utf8(&b, cp);
            } else {
                read_error(r, "bad escape in a string");
                goto done;
            }
        } else {
            len = utf8_sequence((const uint8_t *) r->p, strnlen(r->p, 4),
                                &bad);
            if (!len) {
                read_error(r, "invalid UTF-8");
                goto done;
            }
            okovm_buf_put(&b, r->p, len);
            r->p += len;
        }
    }
done:
    return take_string(r, &b, sp, lenp);
}

/* Reads a string in Open vSwitch's syntax (at its opening quote): bytes
 * with \", \\ and \xHH escapes, as okovm_btf_format() writes them. */
static int
read_ovs_string(struct json_reader *r, char **sp, size_t *lenp)
{
    struct okovm_buf b;

    okovm_buf_init(&b);
    okovm_buf_put(&b, "", 0);
    for (r->p++; *r->p != '"'; ) {
        if (!*r->p) {
            read_error(r, "unterminated string");
            goto done;
        } else if (r->p[0] == '\\' && (r->p[1] == '"' || r->p[1] == '\\')) {
            okovm_buf_put(&b, r->p + 1, 1);
            r->p += 2;
        } else if (r->p[0] == '\\' && r->p[1] == 'x') {
            int hi = hex_digit(r->p[2]), lo = hi < 0 ? -1 : hex_digit(r->p[3]);
            char ch;

            if (lo < 0) {
                read_error(r, "bad \\x escape (\\xHH)");
                goto done;
            }
            ch = hi << 4 | lo;
            okovm_buf_put(&b, &ch, 1);
            r->p += 4;
        } else if (r->p[0] == '\\') {
            read_error(r, "bad escape in a string (\\\", \\\\ or \\xHH)");
            goto done;
        } else {
            okovm_buf_put(&b, r->p++, 1);
        }
    }
    r->p++;
done:
    return take_string(r, &b, sp, lenp);
}

/* Reads a bare word of Open vSwitch's syntax: everything up to the next
 * ',', ']', '}' or the end, without surrounding spaces.  "true" and
 * "false" are booleans; anything else is a string that the codec reads by
 * the type it fills (a number, an address, an enum's name, hex bytes). */
static int
read_ovs_word(struct json_reader *r, struct okovm_json *j)
{
    size_t n = strcspn(r->p, ",]}");
    const char *s = r->p;

    while (n && strchr(" \t\r\n", s[n - 1])) {
        n--;
    }
    if (!n || strchr("{[=\"", *s)) {
        return read_error(r, "expected a value");
    }
    r->p += n;
    if ((n == 4 && !memcmp(s, "true", 4))
        || (n == 5 && !memcmp(s, "false", 5))) {
        j->type = n == 4 ? OKOVM_JSON_TRUE : OKOVM_JSON_FALSE;
        return 0;
    }
    j->type = OKOVM_JSON_STRING;
    j->str = malloc(n + 1);
    if (!j->str) {
        return out_of_memory(r);
    }
    memcpy(j->str, s, n);
    j->str[n] = '\0';
    j->len = n;
    return 0;
}

/* Reads a member name of Open vSwitch's syntax, "name=". */
static int
read_ovs_key(struct json_reader *r, char **keyp, size_t *lenp)
{
    size_t n = strcspn(r->p, "= \t\r\n,{}[]\"");

    if (!n) {
        return read_error(r, "expected name=value");
    }
    *keyp = malloc(n + 1);
    if (!*keyp) {
        return out_of_memory(r);
    }
    memcpy(*keyp, r->p, n);
    (*keyp)[n] = '\0';
    *lenp = n;
    r->p += n;
    skip_ws(r);
    if (*r->p != '=') {
        return read_error(r, "expected '=' after a member name");
    }
    r->p++;
    return 0;
}

static int
read_number(struct json_reader *r, struct okovm_json *j)
{
    static const char *const specials[] = { "NaN", "Infinity", "-Infinity" };
    const char *s = r->p;
    size_t i;

    for (i = 0; i < 3; i++) {
        if (!strncmp(s, specials[i], strlen(specials[i]))) {
            r->p += strlen(specials[i]);
            goto done;
        }
    }
    if (*r->p == '-') {
        r->p++;
    }
    if (*r->p == '0') {
        r->p++;
    } else if (*r->p >= '1' && *r->p <= '9') {
        r->p += strspn(r->p, "0123456789");
    } else {
        return read_error(r, "expected a value");
    }
    if (*r->p == '.') {
        r->p++;
        if (!strspn(r->p, "0123456789")) {
            return read_error(r, "expected digits after '.'");
        }
        r->p += strspn(r->p, "0123456789");
    }
    if (*r->p == 'e' || *r->p == 'E') {
        r->p++;
        if (*r->p == '+' || *r->p == '-') {
            r->p++;
        }
        if (!strspn(r->p, "0123456789")) {
            return read_error(r, "expected digits in the exponent");
        }
        r->p += strspn(r->p, "0123456789");
    }
done:
    j->type = OKOVM_JSON_NUMBER;
    j->len = r->p - s;
    j->str = strndup(s, j->len);
    return j->str ? r->error : out_of_memory(r);
}

static void
json_clear(struct okovm_json *j)
{
    size_t i;

    for (i = 0; i < j->n; i++) {
        json_clear(&j->items[i]);
    }
    free(j->items);
    free(j->str);
    free(j->key);
}

/* Appends an empty value to 'j' (an array or object). */
static struct okovm_json *
add_item(struct json_reader *r, struct okovm_json *j, size_t *cap)
{
    if (j->n >= *cap) {
        size_t n = *cap ? *cap * 2 : 4;
        struct okovm_json *items = realloc(j->items, n * sizeof *items);

        if (!items) {
            out_of_memory(r);
            return NULL;
        }
        j->items = items;
        *cap = n;
    }
    memset(&j->items[j->n], 0, sizeof j->items[j->n]);
    return &j->items[j->n++];
}

static int
read_value(struct json_reader *r, struct okovm_json *j, int depth)
{
    size_t cap = 0;

    skip_ws(r);
    if (depth > MAX_NESTING) {
        return read_error(r, "nested deeper than 128 levels");
    }
    if (r->ovs && *r->p != '{' && *r->p != '[' && *r->p != '"') {
        return read_ovs_word(r, j);
    }
    switch (*r->p) {
    case '{':
    case '[': {
        bool object = *r->p == '{';
        char close = object ? '}' : ']';

        j->type = object ? OKOVM_JSON_OBJECT : OKOVM_JSON_ARRAY;
        r->p++;
        skip_ws(r);
        if (*r->p == close) {
            r->p++;
            return 0;
        }
        for (;;) {
            struct okovm_json *item = add_item(r, j, &cap);
            char *key = NULL;
            size_t key_len = 0;

            if (!item) {
                return r->error;
            }
            if (object && r->ovs) {
                skip_ws(r);
                if (read_ovs_key(r, &item->key, &item->key_len)) {
                    return r->error;
                }
            } else if (object) {
                skip_ws(r);
                if (*r->p != '"') {
                    return read_error(r, "expected a member name");
                }
                if (read_string(r, &key, &key_len)) {
                    return r->error;
                }
                item->key = key;
                item->key_len = key_len;
                skip_ws(r);
                if (*r->p != ':') {
                    return read_error(r, "expected ':'");
                }
                r->p++;
            }
            if (read_value(r, item, depth + 1)) {
                return r->error;
            }
            skip_ws(r);
            if (*r->p == ',') {
                r->p++;
            } else if (*r->p == close) {
                r->p++;
                return 0;
            } else {
                return read_error(r, object ? "expected ',' or '}'"
                                  : "expected ',' or ']'");
            }
        }
    }
    case '"':
        j->type = OKOVM_JSON_STRING;
        return (r->ovs ? read_ovs_string(r, &j->str, &j->len)
                : read_string(r, &j->str, &j->len));
    case 't':
    case 'f':
    case 'n': {
        static const char *const words[] = { "true", "false", "null" };
        static const enum okovm_json_type types[] = {
            OKOVM_JSON_TRUE, OKOVM_JSON_FALSE, OKOVM_JSON_NULL,
        };
        for (int i = 0; i < 3; i++) {
            if (!strncmp(r->p, words[i], strlen(words[i]))) {
                j->type = types[i];
                r->p += strlen(words[i]);
                return 0;
            }
        }
        return read_error(r, "expected a value");
    }
    default:
        return read_number(r, j);
    }
}

static int
parse(const char *text, bool ovs, struct okovm_json **jsonp, char *why,
      size_t why_size)
{
    struct json_reader r = { text, text, why, why_size, 0, ovs };
    struct okovm_json *j = calloc(1, sizeof *j);

    *jsonp = NULL;
    if (!j) {
        snprintf(why, why_size, "out of memory");
        return ENOMEM;
    }
    if (!read_value(&r, j, 0)) {
        skip_ws(&r);
        if (*r.p) {
            read_error(&r, "extra data after the value");
        }
    }
    if (r.error) {
        okovm_json_free(j);
        return r.error;
    }
    *jsonp = j;
    return 0;
}

/* Parses the NUL-terminated JSON 'text' into a new tree in '*jsonp'.
 * Returns 0, or EINVAL or ENOMEM with the reason in 'why'. */
int
okovm_json_parse(const char *text, struct okovm_json **jsonp, char *why,
                 size_t why_size)
{
    return parse(text, false, jsonp, why, why_size);
}

/* As okovm_json_parse(), for a value in Open vSwitch's syntax as
 * ovs-ofctl prints flows: {name=value,...}, [a,b], "text" with \", \\
 * and \xHH escapes, true and false; any other word is a string. */
int
okovm_json_parse_ovs(const char *text, struct okovm_json **jsonp, char *why,
                     size_t why_size)
{
    return parse(text, true, jsonp, why, why_size);
}

void
okovm_json_free(struct okovm_json *j)
{
    if (j) {
        json_clear(j);
        free(j);
    }
}
