/*
 * btf-codec.c -- map keys and values as JSON, typed by BTF.
 *
 * The one BTF codec of okopy: okopy (Python, through the cffi binding) and
 * the switch's tools show and parse map entries with it.  From a raw BTF
 * blob (a program's ".BTF" section, or what the switch returns in its
 * MAP_BTF replies) and a type id, it turns the bytes of a key or value into
 * JSON text and back:
 *
 *   - integers are numbers, in host byte order, except that typedefs named
 *     __be16, __be32, __be64 or okopy_be16/32/64 are in network byte order
 *     (shown as the number they carry); a "bool" is true or false; an enum
 *     is the name of its value when it has one, else a number;
 *   - typedefs okopy_ipv4_t, okopy_ipv6_t and okopy_mac_t are address
 *     strings ("10.0.0.1", "2001:db8::1", "02:00:00:00:00:01");
 *   - arrays of char are strings (up to the first NUL), other arrays of
 *     bytes hex digits, other arrays lists;
 *   - structs and unions are objects (unnamed members: "_0", "_1"...);
 *     bitfields are numbers;
 *   - floats are numbers, pointers the number they hold.
 *
 * Encoding reads the same shapes.  Integers may also be strings in any base
 * Python's int(s, 0) reads ("0x1f"); members and elements not given are
 * zero; unknown members are refused.  The typedef names are a CONTRACT
 * with bpf/include/okopy/types.h (tests/unit/test_btf.py keeps the two
 * equal), and the JSON shapes and messages are the ones okopy has always
 * shown (tests/unit/test_btf.py, tests/vm/test_btf_codec.py).
 *
 * The BTF comes from whoever loaded a program, so nothing in it is
 * trusted: libbpf's btf__new() parses it, okovm_btf_validate() checks
 * every type reference and name and that reference chains end, and the
 * codec bounds chains, nesting, type sizes and the work one value may
 * take.  Every refusal says what is wrong; nothing here aborts.
 */

#include <arpa/inet.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <bpf/btf.h>

#include "json.h"
#include "okovm-private.h"

/* Bounds on what a (possibly hostile) BTF can make the codec do. */
#define MAX_CHAIN 32                /* Typedefs and modifiers in a row. */
#define MAX_DEPTH 32                /* Nesting of structs and arrays. */
#define MAX_TYPE_SIZE (1u << 30)    /* Bytes in one type. */
#define VISIT_BUDGET (1u << 20)     /* Types visited for one value. */

typedef unsigned __int128 u128;

struct okovm_btf {
    struct btf *btf;
    uint32_t n_types;               /* Including 0, "void". */
};

/* How a typedef asks for a value to be shown. */
enum convention {
    CONV_NONE,
    CONV_BE,                        /* Integer in network byte order. */
    CONV_IPV4,
    CONV_IPV6,
    CONV_MAC,
};

/* CONTRACT with bpf/include/okopy/types.h. */
static const struct {
    const char *name;
    enum convention conv;
} conventions[] = {
    { "__be16", CONV_BE },
    { "__be32", CONV_BE },
    { "__be64", CONV_BE },
    { "okopy_be16", CONV_BE },
    { "okopy_be32", CONV_BE },
    { "okopy_be64", CONV_BE },
    { "okopy_ipv4_t", CONV_IPV4 },
    { "okopy_ipv6_t", CONV_IPV6 },
    { "okopy_mac_t", CONV_MAC },
};

/* An address convention applies only to a type of its size: returns that
 * size for 'conv', 0 if it is not an address. */
static uint64_t
address_size(enum convention conv)
{
    return (conv == CONV_IPV4 ? 4 : conv == CONV_IPV6 ? 16
            : conv == CONV_MAC ? 6 : 0);
}

static const char *const kind_names[] = {
    "void", "int", "ptr", "array", "struct", "union", "enum", "fwd",
    "typedef", "volatile", "const", "restrict", "func", "func_proto", "var",
    "datasec", "float", "decl_tag", "type_tag", "enum64",
};

static const char *
kind_name(const struct btf_type *t)
{
    unsigned int kind = btf_kind(t);

    return kind < sizeof kind_names / sizeof *kind_names
           ? kind_names[kind] : "unknown kind";
}

/* Validation, shared with the ELF loader (elf.c). */

/* libbpf 1.1 parses BTF without checking that the types it references
 * exist, and follows typedef and modifier chains without a bound, so one
 * flipped byte can crash or hang whatever walks it afterwards (libbpf's
 * own bpf_object__open_mem() included).  Every type id and name a type
 * refers to must exist, and reference chains must end.  Returns NULL if
 * 'btf' is sound, otherwise why not, in 'why'. */
static const char *
btf_unsound(const struct btf *btf, char *why, size_t size)
{
    uint32_t cnt = btf__type_cnt(btf);
    uint32_t id;

    for (id = 1; id < cnt; id++) {
        const struct btf_type *t = btf__type_by_id(btf, id);
        uint32_t refs[2] = { 0, 0 };
        uint32_t names[1] = { t->name_off };
        uint16_t vlen = btf_vlen(t);
        uint16_t i;
        int n_refs = 0;

#define BTF_REF(X)                                                      \
        do {                                                            \
            if ((X) >= cnt) {                                           \
                snprintf(why, size, "BTF type %u refers to type %u, "   \
                         "which does not exist (%u types)", id, (X),    \
                         cnt - 1);                                      \
                return why;                                             \
            }                                                           \
        } while (0)
#define BTF_NAME(X)                                                     \
        do {                                                            \
            if (!btf__str_by_offset(btf, (X))) {                        \
                snprintf(why, size, "BTF type %u has a name at offset " \
                         "%u, outside the string section", id, (X));    \
                return why;                                             \
            }                                                           \
        } while (0)

        BTF_NAME(names[0]);
        switch (btf_kind(t)) {
        case BTF_KIND_PTR:
        case BTF_KIND_TYPEDEF:
        case BTF_KIND_VOLATILE:
        case BTF_KIND_CONST:
        case BTF_KIND_RESTRICT:
        case BTF_KIND_TYPE_TAG:
        case BTF_KIND_FUNC:
        case BTF_KIND_VAR:
        case BTF_KIND_DECL_TAG:
            refs[n_refs++] = t->type;
            break;
        case BTF_KIND_ARRAY:
            refs[n_refs++] = btf_array(t)->type;
            refs[n_refs++] = btf_array(t)->index_type;
            break;
        case BTF_KIND_STRUCT:
        case BTF_KIND_UNION:
            for (i = 0; i < vlen; i++) {
                BTF_REF(btf_members(t)[i].type);
                BTF_NAME(btf_members(t)[i].name_off);
            }
            break;
        case BTF_KIND_FUNC_PROTO:
            refs[n_refs++] = t->type;
            for (i = 0; i < vlen; i++) {
                BTF_REF(btf_params(t)[i].type);
                BTF_NAME(btf_params(t)[i].name_off);
            }
            break;
        case BTF_KIND_DATASEC:
            for (i = 0; i < vlen; i++) {
                BTF_REF(btf_var_secinfos(t)[i].type);
            }
            break;
        case BTF_KIND_ENUM:
            for (i = 0; i < vlen; i++) {
                BTF_NAME(btf_enum(t)[i].name_off);
            }
            break;
        case BTF_KIND_ENUM64:
            for (i = 0; i < vlen; i++) {
                BTF_NAME(btf_enum64(t)[i].name_off);
            }
            break;
        default:
            break;
        }
        for (i = 0; i < n_refs; i++) {
            BTF_REF(refs[i]);
        }
#undef BTF_REF
#undef BTF_NAME
    }

    /* Chains of pointers, typedefs and modifiers end at another kind
     * within a few steps in any real program; a cycle never ends. */
    for (id = 1; id < cnt; id++) {
        const struct btf_type *t = btf__type_by_id(btf, id);
        int steps;

        for (steps = 0; steps < 64; steps++) {
            if (!btf_is_ptr(t) && !btf_is_mod(t) && !btf_is_typedef(t)) {
                break;
            }
            t = btf__type_by_id(btf, t->type);
        }
        if (steps == 64) {
            snprintf(why, size, "BTF type %u: chain of references does "
                     "not end within 64 steps (a cycle?)", id);
            return why;
        }
    }
    return NULL;
}

static uint32_t
get_u32(const uint8_t *p)
{
    uint32_t x;

    memcpy(&x, p, sizeof x);
    return x;
}

/* Walks the type and string sections of the BTF at 'p' (whose header has
 * been checked) for the faults that libbpf refuses without saying which:
 * an unknown kind, a type cut short, strings that are not NUL-terminated.
 * Returns NULL, or the fault in 'why'. */
static const char *
btf_malformed(const uint8_t *p, char *why, size_t size)
{
    uint32_t hdr_len = get_u32(p + 4);
    const uint8_t *type = p + hdr_len + get_u32(p + 8);
    const uint8_t *end = type + get_u32(p + 12);
    const uint8_t *str = p + hdr_len + get_u32(p + 16);
    uint32_t str_len = get_u32(p + 20), id;

    if (str_len && (str[0] || str[str_len - 1])) {
        snprintf(why, size, "BTF string section is not NUL-terminated");
        return why;
    }
    for (id = 1; type < end; id++) {
        uint32_t info, vlen, kind;
        uint64_t extra;

        if (end - type < 12) {
            snprintf(why, size, "BTF type %u is truncated", id);
            return why;
        }
        info = get_u32(type + 4);
        vlen = info & 0xffff;
        kind = (info >> 24) & 0x1f;
        switch (kind) {
        case BTF_KIND_INT: case BTF_KIND_VAR: case BTF_KIND_DECL_TAG:
            extra = 4;
            break;
        case BTF_KIND_PTR: case BTF_KIND_FWD: case BTF_KIND_TYPEDEF:
        case BTF_KIND_VOLATILE: case BTF_KIND_CONST: case BTF_KIND_RESTRICT:
        case BTF_KIND_FUNC: case BTF_KIND_FLOAT: case BTF_KIND_TYPE_TAG:
            extra = 0;
            break;
        case BTF_KIND_ARRAY:
            extra = 12;
            break;
        case BTF_KIND_STRUCT: case BTF_KIND_UNION: case BTF_KIND_DATASEC:
        case BTF_KIND_ENUM64:
            extra = 12 * (uint64_t) vlen;
            break;
        case BTF_KIND_ENUM: case BTF_KIND_FUNC_PROTO:
            extra = 8 * (uint64_t) vlen;
            break;
        default:
            snprintf(why, size, "BTF type %u has unknown kind %u", id, kind);
            return why;
        }
        if ((uint64_t) (end - type) < 12 + extra) {
            snprintf(why, size, "BTF type %u is truncated", id);
            return why;
        }
        type += 12 + extra;
    }
    return NULL;
}

/* Parses and checks the 'size' bytes of BTF at 'data'.  On success stores
 * libbpf's parse in '*btfp' (the caller frees it with btf__free()) and
 * returns 0; otherwise returns EINVAL (or ENOMEM) with the reason in 'why'.
 * The header checks come first so that the commonest faults have messages
 * of their own; libbpf checks the rest. */
int
okovm_btf_validate(const void *data, size_t size, struct btf **btfp,
                   char *why, size_t why_size)
{
    const uint8_t *p = data;
    uint64_t hdr_len, type_end, str_end;
    char libbpf_msgs[1024];
    const char *bad, *msg;
    struct btf *btf;
    uint16_t magic;
    size_t len;

    *btfp = NULL;
    if (size < 24) {
        snprintf(why, why_size, "BTF is %zu bytes, shorter than its header",
                 size);
        return EINVAL;
    }
    if (size > UINT32_MAX) {
        snprintf(why, why_size, "BTF is %zu bytes, too large", size);
        return EINVAL;
    }
    memcpy(&magic, p, sizeof magic);
    if (magic != 0xeb9f) {
        snprintf(why, why_size, "bad BTF magic %#x (big-endian BTF "
                 "unsupported)", magic);
        return EINVAL;
    }
    if (p[2] != 1) {
        snprintf(why, why_size, "unsupported BTF version %u", p[2]);
        return EINVAL;
    }
    hdr_len = get_u32(p + 4);
    type_end = hdr_len + get_u32(p + 8) + get_u32(p + 12);
    str_end = hdr_len + get_u32(p + 16) + get_u32(p + 20);
    if (hdr_len < 24 || type_end > size || str_end > size) {
        snprintf(why, why_size, "BTF sections run past the end of the data "
                 "(%zu bytes)", size);
        return EINVAL;
    }
    if (btf_malformed(p, why, why_size)) {
        return EINVAL;
    }

    okovm_libbpf_capture_begin(libbpf_msgs, sizeof libbpf_msgs);
    btf = btf__new(data, size);
    okovm_libbpf_capture_end();
    if (!btf) {
        int error = errno ? errno : EINVAL;

        /* libbpf's first warning, without its "libbpf: " and newline. */
        msg = libbpf_msgs;
        if (!strncmp(msg, "libbpf: ", 8)) {
            msg += 8;
        }
        len = strcspn(msg, "\n");
        if (error == ENOMEM) {
            snprintf(why, why_size, "out of memory");
        } else if (len) {
            snprintf(why, why_size, "malformed BTF: %.*s", (int) len, msg);
        } else {
            snprintf(why, why_size, "malformed BTF (%s)", strerror(error));
        }
        return error == ENOMEM ? ENOMEM : EINVAL;
    }
    bad = btf_unsound(btf, why, why_size);
    if (bad) {
        btf__free(btf);
        return EINVAL;
    }
    *btfp = btf;
    return 0;
}

/* Creates in '*btfp' the codec for the 'size' bytes of BTF at 'data'. */
int
okovm_btf_new(const void *data, size_t size, struct okovm_btf **btfp,
              struct okovm_error *err)
{
    struct okovm_btf *b;
    char why[512];
    int error;

    okovm_error_clear(err);
    *btfp = NULL;
    b = calloc(1, sizeof *b);
    if (!b) {
        return okovm_error_set(err, ENOMEM, -1, "out of memory");
    }
    error = okovm_btf_validate(data, size, &b->btf, why, sizeof why);
    if (error) {
        free(b);
        return okovm_error_set(err, error, -1, "%s", why);
    }
    b->n_types = btf__type_cnt(b->btf);
    *btfp = b;
    return 0;
}

void
okovm_btf_destroy(struct okovm_btf *b)
{
    if (b) {
        btf__free(b->btf);
        free(b);
    }
}

void
okovm_free(void *p)
{
    free(p);
}

/* Walking types. */

struct codec {
    const struct okovm_btf *b;
    struct okovm_error *err;
    enum okovm_btf_syntax syntax;   /* Decoding: JSON or ovs-ofctl's. */
    struct okovm_buf out;           /* Decoding: the text. */
    struct okovm_buf path;          /* "struct flow_key.addr[2]". */
    unsigned int budget;            /* Types left to visit. */
};

static int codec_fail(struct codec *, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Records an error about the value at 'c->path'. */
static int
codec_fail(struct codec *c, const char *fmt, ...)
{
    char msg[sizeof c->err->msg];
    va_list args;

    va_start(args, fmt);
    vsnprintf(msg, sizeof msg, fmt, args);
    va_end(args);
    return okovm_error_set(c->err, EINVAL, -1, "%s: %s",
                           c->path.s ? c->path.s : "", msg);
}

static const struct btf_type *
type_by_id(const struct okovm_btf *b, uint32_t id)
{
    return id < b->n_types ? btf__type_by_id(b->btf, id) : NULL;
}

static const char *
name_of(const struct okovm_btf *b, uint32_t off)
{
    const char *s = btf__name_by_offset(b->btf, off);

    return s ? s : "";
}

static bool
is_modifier(const struct btf_type *t)
{
    return btf_is_mod(t);           /* volatile, const, restrict, tag. */
}

/* Follows modifiers and typedefs from type 'id' down to the type they name
 * and stores it in '*tp' (its id in '*idp' if nonnull).  Stores in '*conv'
 * the convention of the first typedef on the way that has one. */
static int
resolve(struct codec *c, uint32_t id, const struct btf_type **tp,
        uint32_t *idp, enum convention *conv)
{
    bool decided = false;
    int i;

    if (conv) {
        *conv = CONV_NONE;
    }
    for (i = 0; i < MAX_CHAIN; i++) {
        const struct btf_type *t = type_by_id(c->b, id);

        if (!t) {
            return codec_fail(c, "BTF type %u does not exist (%u types)",
                              id, c->b->n_types - 1);
        }
        if (btf_is_typedef(t)) {
            const char *name = name_of(c->b, t->name_off);
            size_t j;

            for (j = 0; conv && !decided
                 && j < sizeof conventions / sizeof *conventions; j++) {
                if (!strcmp(name, conventions[j].name)) {
                    *conv = conventions[j].conv;
                    decided = true;
                }
            }
        } else if (!is_modifier(t)) {
            *tp = t;
            if (idp) {
                *idp = id;
            }
            return 0;
        }
        id = t->type;
    }
    return codec_fail(c, "BTF type %u: more than %d typedefs and modifiers "
                      "in a row", id, MAX_CHAIN);
}

/* Stores in '*sizep' the size in bytes of type 'id'. */
static int
type_size(struct codec *c, uint32_t id, int depth, uint64_t *sizep)
{
    const struct btf_type *t;
    uint64_t size;
    int error;

    if (depth > MAX_DEPTH) {
        return codec_fail(c, "BTF type %u: arrays nested deeper than %d "
                          "levels", id, MAX_DEPTH);
    }
    error = resolve(c, id, &t, NULL, NULL);
    if (error) {
        return error;
    }
    switch (btf_kind(t)) {
    case BTF_KIND_INT:
    case BTF_KIND_STRUCT:
    case BTF_KIND_UNION:
    case BTF_KIND_ENUM:
    case BTF_KIND_ENUM64:
    case BTF_KIND_FLOAT:
    case BTF_KIND_DATASEC:
        size = t->size;
        break;
    case BTF_KIND_PTR:
        size = 8;
        break;
    case BTF_KIND_ARRAY:
        error = type_size(c, btf_array(t)->type, depth + 1, &size);
        if (error) {
            return error;
        }
        size *= btf_array(t)->nelems;   /* Both below 2**32. */
        break;
    default:
        return codec_fail(c, "BTF type %u (%s) has no size", id,
                          kind_name(t));
    }
    if (size > MAX_TYPE_SIZE) {
        return codec_fail(c, "BTF type %u is %llu bytes, more than %u", id,
                          (unsigned long long) size, MAX_TYPE_SIZE);
    }
    *sizep = size;
    return 0;
}

/* Appends a C-like spelling of type 'id' to 'out', as Python's okopy
 * always wrote it: "struct flow_key", "__u8[6]", "const char *". */
static void
put_type_name(const struct okovm_btf *b, uint32_t id, struct okovm_buf *out,
              int depth)
{
    const struct btf_type *t = type_by_id(b, id);
    const char *name;

    if (!t) {
        okovm_buf_printf(out, "(BTF type %u)", id);
        return;
    }
    if (depth > MAX_CHAIN) {
        okovm_buf_puts(out, "...");
        return;
    }
    name = id ? name_of(b, t->name_off) : "";
    switch (id ? btf_kind(t) : BTF_KIND_UNKN) {
    case BTF_KIND_STRUCT:
    case BTF_KIND_UNION:
    case BTF_KIND_ENUM:
    case BTF_KIND_ENUM64:
        okovm_buf_printf(out, "%s %s",
                         btf_is_any_enum(t) ? "enum" : kind_name(t),
                         name[0] ? name : "(anon)");
        break;
    case BTF_KIND_VOLATILE:
    case BTF_KIND_CONST:
    case BTF_KIND_RESTRICT:
        okovm_buf_printf(out, "%s ", kind_name(t));
        put_type_name(b, t->type, out, depth + 1);
        break;
    case BTF_KIND_PTR:
        put_type_name(b, t->type, out, depth + 1);
        okovm_buf_puts(out, " *");
        break;
    case BTF_KIND_ARRAY:
        put_type_name(b, btf_array(t)->type, out, depth + 1);
        okovm_buf_printf(out, "[%u]", btf_array(t)->nelems);
        break;
    default:
        okovm_buf_puts(out, name[0] ? name : id ? kind_name(t) : "void");
        break;
    }
}

/* Starts 'c' for a value of type 'type_id'. */
static void
codec_init(struct codec *c, const struct okovm_btf *b, uint32_t type_id,
           struct okovm_error *err)
{
    okovm_error_clear(err);
    c->b = b;
    c->err = err;
    c->syntax = OKOVM_BTF_JSON;
    c->budget = VISIT_BUDGET;
    okovm_buf_init(&c->out);
    okovm_buf_init(&c->path);
    put_type_name(b, type_id, &c->path, 0);
}

static void
codec_destroy(struct codec *c)
{
    okovm_buf_free(&c->out);
    okovm_buf_free(&c->path);
}

/* Enters the value at 'depth'; fails when nested too deep or after too
 * much work. */
static int
codec_enter(struct codec *c, int depth)
{
    if (depth > MAX_DEPTH) {
        return codec_fail(c, "nested deeper than %d levels", MAX_DEPTH);
    }
    if (!c->budget) {
        return codec_fail(c, "more than %u parts", VISIT_BUDGET);
    }
    c->budget--;
    return 0;
}

static bool
is_char(const struct okovm_btf *b, const struct btf_type *t)
{
    /* pahole marks characters with BTF_INT_CHAR, clang by name. */
    return ((btf_int_encoding(t) & BTF_INT_CHAR)
            || !strcmp(name_of(b, t->name_off), "char"));
}

/* The byte-sized integer that type 'id' resolves to, or NULL. */
static const struct btf_type *
byte_type(struct codec *c, uint32_t id)
{
    const struct btf_type *t;

    if (resolve(c, id, &t, NULL, NULL) || !btf_is_int(t) || t->size != 1) {
        return NULL;
    }
    return t;
}

/* A member of a struct or union. */
struct member {
    const char *name;
    char anon[16];                  /* "_3" for unnamed members. */
    uint32_t type;
    uint32_t bit_offset;
    uint32_t bitfield_size;
};

static void
get_member(const struct okovm_btf *b, const struct btf_type *t, uint32_t i,
           struct member *m)
{
    const struct btf_member *bm = &btf_members(t)[i];

    m->name = name_of(b, bm->name_off);
    if (!m->name[0]) {
        snprintf(m->anon, sizeof m->anon, "_%u", i);
        m->name = m->anon;
    }
    m->type = bm->type;
    m->bit_offset = btf_member_bit_offset(t, i);
    m->bitfield_size = btf_member_bitfield_size(t, i);
}

/* Checks that member 'm' of a struct of 'size' bytes lies inside it, and
 * stores the size of its type in '*msizep' (0 for bitfields). */
static int
check_member(struct codec *c, const struct member *m, uint64_t size,
             uint64_t *msizep)
{
    int error;

    *msizep = 0;
    if (m->bitfield_size) {
        if (m->bitfield_size > 128
            || (uint64_t) m->bit_offset + m->bitfield_size > size * 8) {
            return codec_fail(c, "bitfield %s (%u bits at bit %u) does not "
                              "fit in %llu bytes", m->name, m->bitfield_size,
                              m->bit_offset, (unsigned long long) size);
        }
        return 0;
    }
    if (m->bit_offset % 8) {
        return codec_fail(c, "member %s: unaligned non-bitfield", m->name);
    }
    error = type_size(c, m->type, 0, msizep);
    if (!error && m->bit_offset / 8 + *msizep > size) {
        return codec_fail(c, "member %s (%llu bytes at byte %u) lies "
                          "outside the %llu-byte type", m->name,
                          (unsigned long long) *msizep, m->bit_offset / 8,
                          (unsigned long long) size);
    }
    return error;
}

/* Integers up to 128 bits. */

/* Reads the 'size'-byte integer at 'p' ('size' 1...16), in network byte
 * order if 'be', else little-endian. */
static u128
get_uint(const uint8_t *p, size_t size, bool be)
{
    u128 x = 0;
    size_t i;

    for (i = 0; i < size; i++) {
        x = (x << 8) | p[be ? i : size - 1 - i];
    }
    return x;
}

static void
put_uint(uint8_t *p, size_t size, bool be, u128 x)
{
    size_t i;

    for (i = 0; i < size; i++) {
        p[be ? size - 1 - i : i] = (uint8_t) x;
        x >>= 8;
    }
}

static void
put_decimal(struct okovm_buf *out, bool negative, u128 magnitude)
{
    char digits[48];
    int n = sizeof digits;

    digits[--n] = '\0';
    do {
        digits[--n] = '0' + (int) (magnitude % 10);
        magnitude /= 10;
    } while (magnitude);
    if (negative) {
        digits[--n] = '-';
    }
    okovm_buf_puts(out, &digits[n]);
}

/* 'x', the bits of a 'size'-byte integer, as a sign and a magnitude. */
static void
put_signed(struct okovm_buf *out, u128 x, size_t size)
{
    u128 sign = (u128) 1 << (8 * size - 1);

    if (x & sign) {
        u128 mask = size < 16 ? ((u128) 1 << (8 * size)) - 1 : ~(u128) 0;

        put_decimal(out, true, ((~x) & mask) + 1);
    } else {
        put_decimal(out, false, x);
    }
}

/* Bits 'bit_offset'... of 'data', numbered from the least significant bit
 * of the first byte (BTF's numbering on a little-endian host). */
static u128
get_bits(const uint8_t *data, uint32_t bit_offset, uint32_t n_bits)
{
    u128 x = 0;
    uint32_t i;

    for (i = 0; i < n_bits; i++) {
        uint64_t bit = (uint64_t) bit_offset + i;

        x |= (u128) ((data[bit / 8] >> (bit % 8)) & 1) << i;
    }
    return x;
}

static void
put_bits(uint8_t *data, uint32_t bit_offset, uint32_t n_bits, u128 x)
{
    uint32_t i;

    for (i = 0; i < n_bits; i++) {
        uint64_t bit = (uint64_t) bit_offset + i;
        uint8_t mask = 1u << (bit % 8);

        if ((x >> i) & 1) {
            data[bit / 8] |= mask;
        } else {
            data[bit / 8] &= ~mask;
        }
    }
}

/* The value of enumerator 'i' of enum 't' (sign-extended for ENUM, as
 * unsigned for ENUM64, as okopy always read them). */
static u128
enum_value(const struct btf_type *t, uint32_t i, bool *negative)
{
    if (btf_is_enum(t)) {
        int32_t v = btf_enum(t)[i].val;

        *negative = v < 0;
        return (u128) (__int128) v;
    }
    *negative = false;
    return btf_enum64_value(&btf_enum64(t)[i]);
}

static const char *
enum_name(const struct okovm_btf *b, const struct btf_type *t, uint32_t i)
{
    return name_of(b, btf_is_enum(t) ? btf_enum(t)[i].name_off
                                     : btf_enum64(t)[i].name_off);
}

/* Decoding: bytes to JSON. */

static int decode(struct codec *, uint32_t id, const uint8_t *data,
                  int depth);

static void
put_ipv6(struct okovm_buf *out, const uint8_t *a)
{
    int best = -1, best_len = 1, i;
    uint16_t h[8];

    for (i = 0; i < 8; i++) {
        h[i] = a[2 * i] << 8 | a[2 * i + 1];
    }
    if (!h[0] && !h[1] && !h[2] && !h[3] && !h[4] && h[5] == 0xffff) {
        /* IPv4-mapped, in mixed notation (RFC 5952 section 5). */
        okovm_buf_printf(out, "::ffff:%u.%u.%u.%u",
                         a[12], a[13], a[14], a[15]);
        return;
    }
    /* The longest run of zero groups, if longer than one, the first of
     * equals (RFC 5952, and Python's ipaddress). */
    for (i = 0; i < 8; i++) {
        int j = i;

        while (j < 8 && !h[j]) {
            j++;
        }
        if (j - i > best_len) {
            best = i;
            best_len = j - i;
        }
        i = j > i ? j - 1 : i;
    }
    for (i = 0; i < 8; i++) {
        if (i == best) {
            okovm_buf_puts(out, i ? ":" : "::");
            i += best_len - 1;
            if (i == 7) {
                break;
            }
            continue;
        }
        okovm_buf_printf(out, "%x%s", h[i], i < 7 ? ":" : "");
    }
}

/* Appends the 'n' bytes at 'data' as hex digits, quoted in JSON. */
static void
put_hex(struct codec *c, const uint8_t *data, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    bool json = c->syntax == OKOVM_BTF_JSON;
    size_t i;

    okovm_buf_put(&c->out, "\"", json);
    for (i = 0; i < n; i++) {
        char pair[2] = { hex[data[i] >> 4], hex[data[i] & 15] };

        okovm_buf_put(&c->out, pair, 2);
    }
    okovm_buf_put(&c->out, "\"", json);
}

/* Appends 'n' bytes of text that JSON quotes and ovs-ofctl does not (an
 * address, an enum's name, hex digits). */
static void
put_word(struct codec *c, const char *s, size_t n)
{
    if (c->syntax == OKOVM_BTF_JSON) {
        okovm_json_put_string(&c->out, (const uint8_t *) s, n);
    } else {
        okovm_buf_put(&c->out, s, n);
    }
}

/* Appends the string of the 'n' bytes at 'data' (up to the first NUL):
 * JSON's string, or ovs-ofctl's, in double quotes with \", \\ and \xHH
 * escapes. */
static void
put_text(struct codec *c, const uint8_t *data, size_t n)
{
    const uint8_t *nul = memchr(data, '\0', n);
    size_t i;

    n = nul ? (size_t) (nul - data) : n;
    if (c->syntax == OKOVM_BTF_JSON) {
        okovm_json_put_string(&c->out, data, n);
        return;
    }
    okovm_buf_put(&c->out, "\"", 1);
    for (i = 0; i < n; i++) {
        uint8_t ch = data[i];

        if (ch == '"' || ch == '\\') {
            okovm_buf_printf(&c->out, "\\%c", ch);
        } else if (ch >= 0x20 && ch < 0x7f) {
            okovm_buf_put(&c->out, (const char *) &ch, 1);
        } else {
            okovm_buf_printf(&c->out, "\\x%02x", ch);
        }
    }
    okovm_buf_put(&c->out, "\"", 1);
}

/* Appends the separator before element or member 'i'. */
static void
put_separator(struct codec *c, uint32_t i)
{
    if (i) {
        okovm_buf_puts(&c->out, c->syntax == OKOVM_BTF_JSON ? ", " : ",");
    }
}

static void
put_float(struct codec *c, double x, bool single)
{
    if (c->syntax == OKOVM_BTF_JSON) {
        okovm_json_put_double(&c->out, x);
    } else {
        okovm_buf_printf(&c->out, single ? "%.9g" : "%.17g", x);
    }
}

static int
decode_int(struct codec *c, const struct btf_type *t, enum convention conv,
           const uint8_t *data, uint64_t size)
{
    bool is_signed = btf_is_int(t) && btf_int_encoding(t) & BTF_INT_SIGNED;
    u128 x;
    uint32_t i;

    if (size < 1 || size > 16) {
        return codec_fail(c, "cannot decode a %llu-byte integer",
                          (unsigned long long) size);
    }
    x = get_uint(data, size, conv == CONV_BE);
    if (btf_is_any_enum(t)) {
        u128 mine = x;
        bool negative;

        for (i = 0; i < btf_vlen(t); i++) {
            enum_value(t, i, &negative);
            is_signed |= negative;
        }
        if (is_signed && size < 16 && x >> (8 * size - 1)) {
            mine |= ~(u128) 0 << (8 * size);    /* Sign-extend. */
        }
        for (i = 0; i < btf_vlen(t); i++) {
            if (enum_value(t, i, &negative) == mine) {
                const char *name = enum_name(c->b, t, i);

                put_word(c, name, strlen(name));
                return 0;
            }
        }
    } else if (btf_int_encoding(t) & BTF_INT_BOOL) {
        okovm_buf_puts(&c->out, x ? "true" : "false");
        return 0;
    }
    if (is_signed) {
        put_signed(&c->out, x, size);
    } else {
        put_decimal(&c->out, false, x);
    }
    return 0;
}

static int
decode_array(struct codec *c, const struct btf_type *t, const uint8_t *data,
             uint64_t size, int depth)
{
    uint32_t elem = btf_array(t)->type, n = btf_array(t)->nelems, i;
    const struct btf_type *et = byte_type(c, elem);
    uint64_t esize = n ? size / n : 0;
    size_t path_len = c->path.len;

    if (et && is_char(c->b, et)) {
        put_text(c, data, n);
        return 0;
    } else if (et) {
        put_hex(c, data, n);
        return 0;
    }
    okovm_buf_put(&c->out, "[", 1);
    for (i = 0; i < n; i++) {
        int error;

        put_separator(c, i);
        okovm_buf_printf(&c->path, "[%u]", i);
        error = decode(c, elem, data + i * esize, depth + 1);
        if (error) {
            return error;
        }
        okovm_buf_truncate(&c->path, path_len);
    }
    okovm_buf_put(&c->out, "]", 1);
    return 0;
}

static int
decode_struct(struct codec *c, const struct btf_type *t, const uint8_t *data,
              int depth)
{
    size_t path_len = c->path.len;
    uint32_t i;

    okovm_buf_put(&c->out, "{", 1);
    for (i = 0; i < btf_vlen(t); i++) {
        struct member m;
        uint64_t msize;
        int error;

        get_member(c->b, t, i, &m);
        error = check_member(c, &m, t->size, &msize);
        if (error) {
            return error;
        }
        put_separator(c, i);
        if (c->syntax == OKOVM_BTF_JSON) {
            okovm_json_put_string(&c->out, (const uint8_t *) m.name,
                                  strlen(m.name));
            okovm_buf_puts(&c->out, ": ");
        } else {
            okovm_buf_printf(&c->out, "%s=", m.name);
        }
        if (m.bitfield_size) {
            put_decimal(&c->out, false,
                        get_bits(data, m.bit_offset, m.bitfield_size));
            continue;
        }
        okovm_buf_printf(&c->path, ".%s", m.name);
        error = decode(c, m.type, data + m.bit_offset / 8, depth + 1);
        if (error) {
            return error;
        }
        okovm_buf_truncate(&c->path, path_len);
    }
    okovm_buf_put(&c->out, "}", 1);
    return 0;
}

/* Appends the value of type 'id' at 'data' (which holds the type's size)
 * to 'c->out'. */
static int
decode(struct codec *c, uint32_t id, const uint8_t *data, int depth)
{
    const struct btf_type *t;
    enum convention conv;
    uint64_t size;
    int error;

    error = codec_enter(c, depth);
    error = error ? error : resolve(c, id, &t, NULL, &conv);
    error = error ? error : type_size(c, id, 0, &size);
    if (error) {
        return error;
    }

    if (address_size(conv) != size) {
        /* Not an address: shown as its type says. */
    } else {
        struct okovm_buf word;

        okovm_buf_init(&word);
        if (conv == CONV_IPV4) {
            okovm_buf_printf(&word, "%u.%u.%u.%u", data[0], data[1], data[2],
                             data[3]);
        } else if (conv == CONV_IPV6) {
            put_ipv6(&word, data);
        } else if (conv == CONV_MAC) {
            okovm_buf_printf(&word, "%02x:%02x:%02x:%02x:%02x:%02x",
                             data[0], data[1], data[2], data[3], data[4],
                             data[5]);
        }
        if (word.len) {
            put_word(c, word.s, word.len);
            c->out.failed |= word.failed;
            okovm_buf_free(&word);
            return 0;
        }
        okovm_buf_free(&word);
    }

    switch (btf_kind(t)) {
    case BTF_KIND_INT:
    case BTF_KIND_ENUM:
    case BTF_KIND_ENUM64:
        return decode_int(c, t, conv, data, size);
    case BTF_KIND_FLOAT:
        if (size == sizeof(float)) {
            float x;

            memcpy(&x, data, sizeof x);
            put_float(c, x, true);
        } else if (size == sizeof(double)) {
            double x;

            memcpy(&x, data, sizeof x);
            put_float(c, x, false);
        } else {
            put_hex(c, data, size);
        }
        return 0;
    case BTF_KIND_ARRAY:
        return decode_array(c, t, data, size, depth);
    case BTF_KIND_STRUCT:
    case BTF_KIND_UNION:
        return decode_struct(c, t, data, depth);
    case BTF_KIND_PTR:
        /* A number, in the byte order encode_int() writes it in: a
         * typedef such as __be64 may name a pointer. */
        put_decimal(&c->out, false, get_uint(data, 8, conv == CONV_BE));
        return 0;
    default:
        return codec_fail(c, "cannot decode %s", kind_name(t));
    }
}

/* Stores in '*sizep' the size of type 'type_id' of 'b'. */
int
okovm_btf_type_size(const struct okovm_btf *b, uint32_t type_id,
                    uint32_t *sizep, struct okovm_error *err)
{
    struct codec c;
    uint64_t size = 0;
    int error;

    codec_init(&c, b, type_id, err);
    error = type_size(&c, type_id, 0, &size);
    codec_destroy(&c);
    *sizep = size;
    return error;
}

/* Writes the name of type 'type_id' of 'b' into the 'size' bytes at
 * 'buf'. */
int
okovm_btf_type_name(const struct okovm_btf *b, uint32_t type_id, char *buf,
                    size_t size)
{
    struct okovm_buf name;

    if (!type_by_id(b, type_id)) {
        snprintf(buf, size, "(BTF type %u)", type_id);
        return ENOENT;
    }
    okovm_buf_init(&name);
    put_type_name(b, type_id, &name, 0);
    snprintf(buf, size, "%s", name.s ? name.s : "");
    okovm_buf_free(&name);
    return 0;
}

uint32_t
okovm_btf_find_type(const struct okovm_btf *b, const char *name)
{
    int32_t id = btf__find_by_name(b->btf, name);

    return id > 0 ? id : 0;
}

/* Decodes the 'size' bytes at 'data', a value of type 'type_id' of 'b',
 * into JSON text stored in '*jsonp' (free it with okovm_free()). */
int
okovm_btf_decode(const struct okovm_btf *b, uint32_t type_id,
                 const void *data, size_t size, char **jsonp,
                 struct okovm_error *err)
{
    return okovm_btf_format(b, type_id, data, size, OKOVM_BTF_JSON, jsonp,
                            err);
}

/* Stores in '*textp' the value of type 'type_id' of 'b' at 'data' ('size'
 * bytes) in 'syntax'. */
int
okovm_btf_format(const struct okovm_btf *b, uint32_t type_id,
                 const void *data, size_t size, enum okovm_btf_syntax syntax,
                 char **jsonp, struct okovm_error *err)
{
    uint64_t type_bytes;
    struct codec c;
    int error;

    *jsonp = NULL;
    codec_init(&c, b, type_id, err);
    if (syntax != OKOVM_BTF_JSON && syntax != OKOVM_BTF_OVS) {
        codec_destroy(&c);
        return okovm_error_set(err, EINVAL, -1, "unknown syntax %d",
                               (int) syntax);
    }
    c.syntax = syntax;
    error = type_size(&c, type_id, 0, &type_bytes);
    if (!error && type_bytes != size) {
        error = okovm_error_set(err, EINVAL, -1, "%s is %llu bytes, got %zu",
                                c.path.s, (unsigned long long) type_bytes,
                                size);
    }
    if (!error) {
        error = decode(&c, type_id, data, 0);
    }
    if (!error && c.out.failed) {
        error = okovm_error_set(err, ENOMEM, -1, "out of memory");
    }
    if (!error) {
        *jsonp = c.out.s;
        okovm_buf_init(&c.out);
    }
    codec_destroy(&c);
    return error;
}

/* Encoding: JSON to bytes. */

static int encode(struct codec *, uint32_t id, const struct okovm_json *,
                  uint8_t *out, int depth);

/* Records an error about value 'v': "<path>: <what>, got <repr>". */
static int
fail_got(struct codec *c, const char *what, const struct okovm_json *v)
{
    struct okovm_buf r;
    int error;

    okovm_buf_init(&r);
    okovm_json_repr(&r, v, 0);
    error = codec_fail(c, "%s, got %s", what, r.s ? r.s : "");
    okovm_buf_free(&r);
    return error;
}

/* Records an error about value 'v': "<path>: <repr> <what>". */
static int
fail_value(struct codec *c, const struct okovm_json *v, const char *what)
{
    struct okovm_buf r;
    int error;

    okovm_buf_init(&r);
    okovm_json_repr(&r, v, 0);
    error = codec_fail(c, "%s %s", r.s ? r.s : "", what);
    okovm_buf_free(&r);
    return error;
}

static int
digit_value(char ch)
{
    return (ch >= '0' && ch <= '9' ? ch - '0'
            : ch >= 'a' && ch <= 'z' ? ch - 'a' + 10
            : ch >= 'A' && ch <= 'Z' ? ch - 'A' + 10 : 99);
}

/* Reads integer text as Python's int(s, 0) does (prefixes 0x, 0o, 0b,
 * underscores between digits, no leading zeros in decimal), into a sign
 * and a magnitude; '*overflow' if it has more than 128 bits.  Returns
 * false if 's' is not an integer. */
static bool
parse_int_text(const char *s, size_t n, bool *negative, u128 *magnitude,
               bool *overflow)
{
    static const char spaces[] = " \t\n\v\f\r\x1c\x1d\x1e\x1f";
    const char *end = s + n;
    int base = 10, digits = 0;
    bool last_underscore = false;

    while (s < end && *s && strchr(spaces, *s)) {
        s++;
    }
    while (end > s && end[-1] && strchr(spaces, end[-1])) {
        end--;
    }
    *negative = false;
    *magnitude = 0;
    *overflow = false;
    if (s < end && (*s == '+' || *s == '-')) {
        *negative = *s++ == '-';
    }
    if (end - s >= 2 && s[0] == '0' && s[1] && strchr("xXoObB", s[1])) {
        base = strchr("xX", s[1]) ? 16 : strchr("oO", s[1]) ? 8 : 2;
        s += 2;
        if (s < end && *s == '_') {
            s++;                    /* One '_' may follow the prefix. */
        }
    } else if (s < end && *s == '0') {
        /* Decimal with a leading zero: only zeros. */
        for (; s < end; s++) {
            if (*s == '_' && !last_underscore && digits) {
                last_underscore = true;
            } else if (*s == '0') {
                last_underscore = false;
                digits++;
            } else {
                return false;
            }
        }
        return !last_underscore;
    }
    for (; s < end; s++) {
        int d = digit_value(*s);

        if (*s == '_' && !last_underscore && digits) {
            last_underscore = true;
            continue;
        }
        if (d >= base) {
            return false;
        }
        last_underscore = false;
        digits++;
        if (*magnitude > (~(u128) 0 - d) / base) {
            *overflow = true;
        }
        *magnitude = *magnitude * base + d;
    }
    return digits && !last_underscore;
}

static int
encode_int(struct codec *c, const struct btf_type *t, enum convention conv,
           const struct okovm_json *v, uint8_t *out, uint64_t size)
{
    bool is_signed = btf_is_int(t) && btf_int_encoding(t) & BTF_INT_SIGNED;
    bool is_enum = btf_is_any_enum(t);
    bool negative = false, overflow = false;
    u128 magnitude = 0, limit;
    uint32_t i;

    if (size < 1 || size > 16) {
        return codec_fail(c, "cannot encode a %llu-byte integer",
                          (unsigned long long) size);
    }
    if (is_enum && v->type == OKOVM_JSON_STRING
        && (memchr(v->str, 0, v->len)
            || !parse_int_text(v->str, v->len, &negative, &magnitude,
                               &overflow))) {
        /* The name of a value (a number without one is shown as one). */
        struct okovm_buf names;
        int error;

        for (i = btf_vlen(t); i-- > 0;) {
            const char *name = enum_name(c->b, t, i);

            if (strlen(name) == v->len && !memcmp(name, v->str, v->len)) {
                put_uint(out, size, conv == CONV_BE,
                         enum_value(t, i, &negative));
                return 0;
            }
        }
        okovm_buf_init(&names);
        okovm_buf_puts(&names, "is not one of ");
        for (i = 0; i < btf_vlen(t); i++) {
            okovm_buf_printf(&names, "%s%s", i ? ", " : "",
                             enum_name(c->b, t, i));
        }
        error = fail_value(c, v, names.s ? names.s : "");
        okovm_buf_free(&names);
        return error;
    }
    if (v->type == OKOVM_JSON_TRUE || v->type == OKOVM_JSON_FALSE) {
        magnitude = v->type == OKOVM_JSON_TRUE;
    } else if ((v->type == OKOVM_JSON_STRING && !memchr(v->str, 0, v->len))
               || okovm_json_number_is_integer(v)) {
        if (!parse_int_text(v->str, v->len, &negative, &magnitude,
                            &overflow)) {
            return fail_got(c, "expected an integer", v);
        }
        negative &= magnitude != 0;
    } else {
        return fail_got(c, "expected an integer", v);
    }

    /* Signed integers, and enums given a negative number, take
     * -2**(bits-1)...; the others 0...2**bits-1 (signed: 2**(bits-1)-1). */
    limit = size < 16 ? ((u128) 1 << (8 * size)) - 1 : ~(u128) 0;
    if (negative && (is_signed || is_enum)) {
        limit = (u128) 1 << (8 * size - 1);
    } else if (negative) {
        limit = 0;
    } else if (is_signed) {
        limit = ((u128) 1 << (8 * size - 1)) - 1;
    }
    if (overflow || magnitude > limit || (negative && !limit)) {
        struct okovm_buf num;
        int error;

        okovm_buf_init(&num);
        if (overflow) {
            okovm_buf_put(&num, v->str, v->len);
        } else {
            put_decimal(&num, negative, magnitude);
        }
        error = codec_fail(c, "%s does not fit in %llu bytes",
                           num.s ? num.s : "", (unsigned long long) size);
        okovm_buf_free(&num);
        return error;
    }
    put_uint(out, size, conv == CONV_BE, negative ? -magnitude : magnitude);
    return 0;
}

/* Reads a float: a number, a boolean, or (as Open vSwitch's syntax gives
 * every word) a string that is all a number, "inf" and "nan" included. */
static int
encode_float(struct codec *c, const struct okovm_json *v, uint8_t *out,
             uint64_t size)
{
    bool text = v->type == OKOVM_JSON_NUMBER || v->type == OKOVM_JSON_STRING;
    char *end = NULL;
    double x;

    if ((size != sizeof(float) && size != sizeof(double))
        || (!text && v->type != OKOVM_JSON_TRUE
            && v->type != OKOVM_JSON_FALSE)) {
        return fail_got(c, "expected a number", v);
    }
    x = text ? strtod(v->str, &end) : v->type == OKOVM_JSON_TRUE;
    if (text && (end == v->str || end != v->str + v->len)) {
        return fail_got(c, "expected a number", v);
    }
    if (isinf(x) && !strpbrk(text ? v->str : "", "Ii")) {
        return fail_value(c, v, "does not fit in a double");
    }
    if (size == sizeof(float)) {
        float y = x;

        if (isinf(y) && !isinf(x)) {
            return fail_value(c, v, "does not fit in a float");
        }
        memcpy(out, &y, sizeof y);
    } else {
        memcpy(out, &x, sizeof x);
    }
    return 0;
}

/* Reads hex bytes as okopy always did: an optional "0x", ':' and ' '
 * anywhere, other white space between bytes.  Returns the number of bytes
 * (at most 'max'... or more: the caller checks), or -1. */
static int64_t
parse_hex(const char *s, size_t n, uint8_t *out, size_t max)
{
    const char *end = s + n;
    int64_t len = 0;

    if (n >= 2 && s[0] == '0' && s[1] == 'x') {
        s += 2;
    }
    while (s < end) {
        int hi, lo;

        if (*s == ':' || *s == ' ' || (*s && strchr("\t\n\v\f\r", *s))) {
            s++;
            continue;
        }
        hi = digit_value(*s);
        if (hi > 15) {
            return -1;
        }
        /* The pair's second digit may follow ':' or ' ', which okopy
         * removed before reading pairs. */
        do {
            s++;
        } while (s < end && (*s == ':' || *s == ' '));
        if (s >= end || (lo = digit_value(*s)) > 15) {
            return -1;
        }
        s++;
        if ((size_t) len < max) {
            out[len] = hi << 4 | lo;
        }
        len++;
    }
    return len;
}

static int
encode_address(struct codec *c, enum convention conv,
               const struct okovm_json *v, uint8_t *out)
{
    uint8_t buf[16];
    char text[64];
    int64_t len;

    if (v->type != OKOVM_JSON_STRING) {
        return fail_got(c, "expected an address string", v);
    }
    if (conv == CONV_MAC) {
        len = parse_hex(v->str, v->len, buf, sizeof buf);
        if (len < 0) {
            return fail_value(c, v, "is not hex");
        } else if (len != 6) {
            return fail_value(c, v, "is not a MAC address");
        }
        memcpy(out, buf, 6);
        return 0;
    }

    /* Python's ipaddress.ip_address(): IPv4, else IPv6 with an optional
     * "%scope", which the bytes do not keep. */
    if (v->len < sizeof text && !memchr(v->str, 0, v->len)) {
        char *scope;

        memcpy(text, v->str, v->len + 1);
        if (inet_pton(AF_INET, text, buf) == 1) {
            if (conv != CONV_IPV4) {
                return fail_value(c, v, "is not an IPv6 address");
            }
            memcpy(out, buf, 4);
            return 0;
        }
        scope = strchr(text, '%');
        if (scope && scope[1] && !strchr(scope + 1, '%')) {
            *scope = '\0';
        }
        if (inet_pton(AF_INET6, text, buf) == 1) {
            if (conv != CONV_IPV6) {
                return fail_value(c, v, "is not an IPv4 address");
            }
            memcpy(out, buf, 16);
            return 0;
        }
    }
    return fail_value(c, v, "is not an IP address");
}

static int
encode_array(struct codec *c, const struct btf_type *t,
             const struct okovm_json *v, uint8_t *out, uint64_t size,
             int depth)
{
    uint32_t elem = btf_array(t)->type, n = btf_array(t)->nelems, i;
    const struct btf_type *et = byte_type(c, elem);
    uint64_t esize = n ? size / n : 0;
    size_t path_len = c->path.len;

    if (et && v->type == OKOVM_JSON_STRING) {
        int64_t len;

        if (is_char(c->b, et)) {
            len = v->len;
            if (len <= n) {
                memcpy(out, v->str, len);
            }
        } else {
            len = parse_hex(v->str, v->len, out, n);
            if (len < 0) {
                return fail_value(c, v, "is not hex");
            }
        }
        if (len > n) {
            return codec_fail(c, "%lld bytes do not fit in %u",
                              (long long) len, n);
        }
        return 0;
    }
    if (v->type != OKOVM_JSON_ARRAY || v->n > n) {
        return codec_fail(c, "expected a list of at most %u items", n);
    }
    for (i = 0; i < v->n; i++) {
        int error;

        okovm_buf_printf(&c->path, "[%u]", i);
        error = encode(c, elem, &v->items[i], out + i * esize, depth + 1);
        if (error) {
            return error;
        }
        okovm_buf_truncate(&c->path, path_len);
    }
    return 0;
}

/* Finds the member of 't' named 'name' (the last, if several are). */
static bool
find_member(struct codec *c, const struct btf_type *t, const char *name,
            size_t len, struct member *m)
{
    uint32_t i;

    for (i = btf_vlen(t); i-- > 0;) {
        get_member(c->b, t, i, m);
        if (strlen(m->name) == len && !memcmp(m->name, name, len)) {
            return true;
        }
    }
    return false;
}

static int
compare_keys(const struct okovm_json *a, const struct okovm_json *b)
{
    size_t n = a->key_len < b->key_len ? a->key_len : b->key_len;
    int cmp = memcmp(a->key, b->key, n);

    return cmp ? cmp : (a->key_len > b->key_len) - (a->key_len < b->key_len);
}

static int
encode_struct(struct codec *c, const struct btf_type *t,
              const struct okovm_json *v, uint8_t *out, int depth)
{
    const struct okovm_json *unknown = NULL;
    size_t path_len = c->path.len;
    struct member m;
    size_t i;

    if (v->type != OKOVM_JSON_OBJECT) {
        return fail_got(c, "expected an object", v);
    }
    for (i = 0; i < v->n; i++) {
        if (!find_member(c, t, v->items[i].key, v->items[i].key_len, &m)
            && (!unknown || compare_keys(&v->items[i], unknown) < 0)) {
            unknown = &v->items[i];
        }
    }
    if (unknown) {
        struct okovm_buf msg;
        uint32_t j;
        int error;

        okovm_buf_init(&msg);
        okovm_json_repr_string(&msg, unknown->key, unknown->key_len);
        okovm_buf_puts(&msg, " (fields: ");
        for (j = 0; j < btf_vlen(t); j++) {
            get_member(c->b, t, j, &m);
            okovm_buf_printf(&msg, "%s%s", j ? ", " : "", m.name);
        }
        okovm_buf_puts(&msg, ")");
        error = codec_fail(c, "unknown field %s", msg.s ? msg.s : "");
        okovm_buf_free(&msg);
        return error;
    }

    for (i = 0; i < v->n; i++) {
        const struct okovm_json *mv = &v->items[i];
        uint64_t msize;
        int error;

        find_member(c, t, mv->key, mv->key_len, &m);
        error = check_member(c, &m, t->size, &msize);
        if (error) {
            return error;
        }
        okovm_buf_printf(&c->path, ".%s", m.name);
        if (m.bitfield_size) {
            bool negative, overflow;
            u128 x = 0;

            if (mv->type == OKOVM_JSON_TRUE || mv->type == OKOVM_JSON_FALSE) {
                x = mv->type == OKOVM_JSON_TRUE;
            } else if ((!okovm_json_number_is_integer(mv)
                        && (mv->type != OKOVM_JSON_STRING
                            || memchr(mv->str, 0, mv->len)))
                       || !parse_int_text(mv->str, mv->len, &negative, &x,
                                          &overflow)) {
                return fail_got(c, "expected an integer", mv);
            } else if ((negative && x) || overflow
                       || (m.bitfield_size < 128 && x >> m.bitfield_size)) {
                char what[64];

                snprintf(what, sizeof what, "does not fit in %u bits",
                         m.bitfield_size);
                return fail_value(c, mv, what);
            }
            put_bits(out, m.bit_offset, m.bitfield_size, x);
        } else {
            error = encode(c, m.type, mv, out + m.bit_offset / 8, depth + 1);
            if (error) {
                return error;
            }
        }
        okovm_buf_truncate(&c->path, path_len);
    }
    return 0;
}

/* Writes value 'v' of type 'id' into 'out' (which holds the type's size). */
static int
encode(struct codec *c, uint32_t id, const struct okovm_json *v,
       uint8_t *out, int depth)
{
    const struct btf_type *t;
    enum convention conv;
    uint64_t size;
    int error;

    error = codec_enter(c, depth);
    error = error ? error : resolve(c, id, &t, NULL, &conv);
    error = error ? error : type_size(c, id, 0, &size);
    if (error) {
        return error;
    }
    if (address_size(conv) && address_size(conv) == size) {
        return encode_address(c, conv, v, out);
    }
    switch (btf_kind(t)) {
    case BTF_KIND_INT:
    case BTF_KIND_ENUM:
    case BTF_KIND_ENUM64:
    case BTF_KIND_PTR:
        return encode_int(c, t, conv, v, out, size);
    case BTF_KIND_FLOAT:
        return encode_float(c, v, out, size);
    case BTF_KIND_ARRAY:
        return encode_array(c, t, v, out, size, depth);
    case BTF_KIND_STRUCT:
    case BTF_KIND_UNION:
        return encode_struct(c, t, v, out, depth);
    default: {
        struct okovm_buf name;

        okovm_buf_init(&name);
        put_type_name(c->b, id, &name, 0);
        error = codec_fail(c, "cannot encode %s", name.s ? name.s : "");
        okovm_buf_free(&name);
        return error;
    }
    }
}

/* Reads 'text', a value of type 'type_id' of 'b' in 'syntax', into the
 * 'size' bytes at 'out' (the type's size).  Members and elements not given
 * are 0. */
int
okovm_btf_parse(const struct okovm_btf *b, uint32_t type_id,
                const char *text, enum okovm_btf_syntax syntax, void *out,
                size_t size, struct okovm_error *err)
{
    struct okovm_json *v;
    uint64_t type_bytes = 0;
    struct codec c;
    char why[256];
    int error;

    codec_init(&c, b, type_id, err);
    if (syntax != OKOVM_BTF_JSON && syntax != OKOVM_BTF_OVS) {
        error = codec_fail(&c, "unknown syntax %d", (int) syntax);
    } else {
        error = type_size(&c, type_id, 0, &type_bytes);
    }
    if (!error && type_bytes != size) {
        error = codec_fail(&c, "is %llu bytes, the buffer %zu",
                           (unsigned long long) type_bytes, size);
    }
    if (!error) {
        error = (syntax == OKOVM_BTF_OVS
                 ? okovm_json_parse_ovs(text, &v, why, sizeof why)
                 : okovm_json_parse(text, &v, why, sizeof why));
        if (error) {
            codec_fail(&c, "%s", why);
        } else {
            memset(out, 0, size);
            error = encode(&c, type_id, v, out, 0);
            okovm_json_free(v);
        }
    }
    codec_destroy(&c);
    return error;
}

int
okovm_btf_encode(const struct okovm_btf *b, uint32_t type_id,
                 const char *json, void *out, size_t size,
                 struct okovm_error *err)
{
    return okovm_btf_parse(b, type_id, json, OKOVM_BTF_JSON, out, size, err);
}

/* Map definitions. */

/* Skips modifiers (not typedefs) from type 'id'. */
static const struct btf_type *
skip_mods(const struct okovm_btf *b, uint32_t id, uint32_t *idp)
{
    int i;

    for (i = 0; i < MAX_CHAIN; i++) {
        const struct btf_type *t = type_by_id(b, id);

        if (!t || !is_modifier(t)) {
            *idp = id;
            return t;
        }
        id = t->type;
    }
    return NULL;
}

/* Reads the BTF-defined maps of the ".maps" section: '__uint(x, N)' is a
 * pointer to an array of N elements, '__type(x, T)' a pointer to T.
 * Stores a new array in '*defsp' (free it with okovm_free()) and its
 * length in '*np'. */
int
okovm_btf_map_defs(const struct okovm_btf *b,
                   struct okovm_btf_map_def **defsp, uint32_t *np,
                   struct okovm_error *err)
{
    const struct btf_var_secinfo *vars;
    struct okovm_btf_map_def *defs;
    const struct btf_type *sec;
    struct codec c;
    int32_t sec_id;
    uint32_t i, j;
    int error = 0;

    *defsp = NULL;
    *np = 0;
    codec_init(&c, b, 0, err);
    okovm_buf_truncate(&c.path, 0);
    okovm_buf_puts(&c.path, ".maps");
    sec_id = btf__find_by_name_kind(b->btf, ".maps", BTF_KIND_DATASEC);
    sec = sec_id > 0 ? type_by_id(b, sec_id) : NULL;
    if (!sec || !btf_vlen(sec)) {
        codec_destroy(&c);
        return 0;
    }
    defs = calloc(btf_vlen(sec), sizeof *defs);
    if (!defs) {
        codec_destroy(&c);
        return okovm_error_set(err, ENOMEM, -1, "out of memory");
    }
    vars = btf_var_secinfos(sec);
    for (i = 0; i < btf_vlen(sec) && !error; i++) {
        const struct btf_type *var = type_by_id(b, vars[i].type);
        struct okovm_btf_map_def *d = &defs[i];
        const struct btf_type *def;
        uint64_t size;

        if (!var || !btf_is_var(var)) {
            error = codec_fail(&c, "map %u is not a variable", i);
            break;
        }
        snprintf(d->name, sizeof d->name, "%s",
                 name_of(b, var->name_off));
        error = resolve(&c, var->type, &def, NULL, NULL);
        if (error) {
            break;
        }
        if (!btf_is_struct(def)) {
            error = codec_fail(&c, "map %s: definition is not a struct",
                               d->name);
            break;
        }
        for (j = 0; j < btf_vlen(def); j++) {
            const struct btf_member *m = &btf_members(def)[j];
            const char *mname = name_of(b, m->name_off);
            const struct btf_type *ptr, *pointee;
            uint32_t ptr_id, pointee_id;

            ptr = skip_mods(b, m->type, &ptr_id);
            if (!ptr || !btf_is_ptr(ptr)) {
                error = codec_fail(&c, "map %s: member %s is not a "
                                   "pointer", d->name, mname);
                break;
            }
            pointee = skip_mods(b, ptr->type, &pointee_id);
            if (!strcmp(mname, "key")) {
                d->key_type_id = ptr->type;
            } else if (!strcmp(mname, "value")) {
                d->value_type_id = ptr->type;
            } else if (pointee && btf_is_array(pointee)) {
                uint32_t n = btf_array(pointee)->nelems;

                if (!strcmp(mname, "type")) {
                    d->type = n;
                } else if (!strcmp(mname, "key_size")) {
                    d->key_size = n;
                } else if (!strcmp(mname, "value_size")) {
                    d->value_size = n;
                } else if (!strcmp(mname, "max_entries")) {
                    d->max_entries = n;
                } else if (!strcmp(mname, "map_flags")) {
                    d->map_flags = n;
                } else if (!strcmp(mname, "pinning")) {
                    d->pinning = n;
                }
            }
        }
        if (!error && d->key_type_id) {
            error = type_size(&c, d->key_type_id, 0, &size);
            d->key_size = size;
        }
        if (!error && d->value_type_id) {
            error = type_size(&c, d->value_type_id, 0, &size);
            d->value_size = size;
        }
    }
    codec_destroy(&c);
    if (error) {
        free(defs);
        return error;
    }
    *defsp = defs;
    *np = btf_vlen(sec);
    return 0;
}
