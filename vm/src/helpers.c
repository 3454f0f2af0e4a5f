/*
 * helpers.c -- the helpers programs may call, in one table, and their C
 * functions.
 *
 * Each helper is one entry of okovm_helpers[], as each is one 'struct
 * bpf_func_proto' in the kernel: its id and name, the C function that
 * implements it, the kinds of its arguments and of its result.  Everyone
 * reads this table: the structural verifier (which helpers exist, what a
 * call returns, which stack buffers it reads), the decoder and both
 * interpreters (one call operation for all helpers; the sandbox checks
 * the arguments against their kinds), the JIT (it calls the same C
 * functions) and kernel admission (helpers that only privileged programs
 * may call).  Adding a helper is adding an entry, with a test.
 */

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "okovm-private.h"

#define UNUSED __attribute__((unused))

static uint64_t
helper_map_lookup_elem(uint64_t map, uint64_t key, uint64_t r3 UNUSED,
                       uint64_t r4 UNUSED, uint64_t r5 UNUSED,
                       struct okovm_run *run UNUSED)
{
    return (uintptr_t) okovm_map_lookup_elem(
        (struct okovm_map *) (uintptr_t) map, (const void *) (uintptr_t) key);
}

static uint64_t
helper_map_update_elem(uint64_t map, uint64_t key, uint64_t value,
                       uint64_t flags, uint64_t r5 UNUSED,
                       struct okovm_run *run UNUSED)
{
    return -(int64_t) okovm_map_update_elem(
        (struct okovm_map *) (uintptr_t) map, (const void *) (uintptr_t) key,
        (const void *) (uintptr_t) value, flags);
}

static uint64_t
helper_map_delete_elem(uint64_t map, uint64_t key, uint64_t r3 UNUSED,
                       uint64_t r4 UNUSED, uint64_t r5 UNUSED,
                       struct okovm_run *run UNUSED)
{
    return -(int64_t) okovm_map_delete_elem(
        (struct okovm_map *) (uintptr_t) map, (const void *) (uintptr_t) key);
}

static uint64_t
helper_ktime_get_ns(uint64_t r1 UNUSED, uint64_t r2 UNUSED,
                    uint64_t r3 UNUSED, uint64_t r4 UNUSED,
                    uint64_t r5 UNUSED, struct okovm_run *run)
{
    return okovm_ns_now(run->ns, run->now_ns);
}

static uint64_t
helper_get_prandom_u32(uint64_t r1 UNUSED, uint64_t r2 UNUSED,
                       uint64_t r3 UNUSED, uint64_t r4 UNUSED,
                       uint64_t r5 UNUSED, struct okovm_run *run)
{
    return okovm_ns_prandom(run->ns);
}

/* Formats one conversion of 'fmt' (starting at '%', 'n' bytes long,
 * ending in 'conv' with 'longs' 'l' modifiers) for 'arg' into 'out'. */
static int
format_one(char *out, size_t size, const char *spec, size_t n, char conv,
           int longs, uint64_t arg)
{
    char f[32];

    if (n + 4 > sizeof f) {
        return -1;
    }
    /* Rebuild the spec with an explicit 64-bit length modifier. */
    memcpy(f, spec, n - 1 - longs);
    f[n - 1 - longs] = '\0';
    switch (conv) {
    case 'd':
    case 'i':
        strcat(f, "lld");
        return snprintf(out, size, f, (long long) (longs ? (int64_t) arg
                                                   : (int32_t) arg));
    case 'u':
    case 'x':
    case 'X': {
        char c[4] = { 'l', 'l', conv, '\0' };

        strcat(f, c);
        return snprintf(out, size, f, (unsigned long long)
                        (longs ? arg : (uint32_t) arg));
    }
    case 'c':
        strcat(f, "c");
        return snprintf(out, size, f, (int) (uint8_t) arg);
    case 'p':
        return snprintf(out, size, "0x%"PRIx64, arg);
    default:
        return -1;
    }
}

/* bpf_trace_printk(fmt, size, a1, a2, a3): formats like the kernel (up to
 * three of %d %i %u %x %X %c %p %%, with l/ll modifiers, widths and '-',
 * '0' flags) and sends the line to the namespace's log callback, rate
 * limited.  Returns the length written or -EINVAL. */
static uint64_t
helper_trace_printk(uint64_t fmt_, uint64_t size_, uint64_t a1, uint64_t a2,
                    uint64_t a3, struct okovm_run *run)
{
    const char *fmt = (const char *) (uintptr_t) fmt_;
    uint32_t size = size_;
    uint64_t args[3] = { a1, a2, a3 };
    char out[256];
    size_t len = 0;
    uint32_t i, n_args = 0;

    if (!size || size > 1024 || memchr(fmt, '\0', size) == NULL) {
        return -EINVAL;
    }
    for (i = 0; fmt[i] && len < sizeof out - 1; i++) {
        uint32_t start = i;
        int longs = 0, w;

        if (fmt[i] != '%') {
            if (fmt[i] == '\n' && !fmt[i + 1]) {
                break;
            }
            out[len++] = fmt[i];
            continue;
        }
        if (fmt[i + 1] == '%') {
            out[len++] = '%';
            i++;
            continue;
        }
        i++;
        while (fmt[i] == '-' || fmt[i] == '0' || fmt[i] == '+'
               || fmt[i] == ' ' || (fmt[i] >= '1' && fmt[i] <= '9')) {
            i++;
        }
        while (fmt[i] == 'l' && longs < 2) {
            longs++;
            i++;
        }
        if (n_args >= 3) {
            return -EINVAL;
        }
        w = format_one(out + len, sizeof out - len, fmt + start,
                       i - start + 1, fmt[i], longs, args[n_args++]);
        if (w < 0) {
            return -EINVAL;
        }
        len += (size_t) w < sizeof out - len ? (size_t) w
                                             : sizeof out - len - 1;
    }
    out[len] = '\0';
    /* Tagged like the kernel's trace_pipe, so that readers of a log tell
     * these lines from libokovm's own (okopy lab tracelog). */
    okovm_ns_log(run->ns, OKOVM_LOG_INFO, true, "%s: %s: bpf_trace_printk: %s",
                 run->ns->name, run->prog->name, out);
    return len;
}

/* The helpers, in the order of their ids. */
const struct okovm_helper okovm_helpers[] = {
    {
        .id = BPF_FUNC_map_lookup_elem,
        .name = "map_lookup_elem",
        .fn = helper_map_lookup_elem,
        .args = { OKOVM_ARG_MAP, OKOVM_ARG_MAP_KEY },
        .ret = OKOVM_RET_MAP_VALUE_OR_NULL,
    },
    {
        .id = BPF_FUNC_map_update_elem,
        .name = "map_update_elem",
        .fn = helper_map_update_elem,
        .args = { OKOVM_ARG_MAP, OKOVM_ARG_MAP_KEY, OKOVM_ARG_MAP_VALUE,
                  OKOVM_ARG_ANYTHING },
        .ret = OKOVM_RET_INTEGER,
    },
    {
        .id = BPF_FUNC_map_delete_elem,
        .name = "map_delete_elem",
        .fn = helper_map_delete_elem,
        .args = { OKOVM_ARG_MAP, OKOVM_ARG_MAP_KEY },
        .ret = OKOVM_RET_INTEGER,
    },
    {
        .id = BPF_FUNC_ktime_get_ns,
        .name = "ktime_get_ns",
        .fn = helper_ktime_get_ns,
        .ret = OKOVM_RET_INTEGER,
    },
    {
        /* Only CAP_PERFMON may call it in the kernel: the strict check
         * sees bpf_get_prandom_u32() instead (kernel.c). */
        .id = BPF_FUNC_trace_printk,
        .name = "trace_printk",
        .fn = helper_trace_printk,
        .args = { OKOVM_ARG_MEM, OKOVM_ARG_MEM_SIZE, OKOVM_ARG_ANYTHING,
                  OKOVM_ARG_ANYTHING, OKOVM_ARG_ANYTHING },
        .ret = OKOVM_RET_INTEGER,
        .strict_stand_in = BPF_FUNC_get_prandom_u32,
    },
    {
        .id = BPF_FUNC_get_prandom_u32,
        .name = "get_prandom_u32",
        .fn = helper_get_prandom_u32,
        .ret = OKOVM_RET_INTEGER,
    },
};
const size_t okovm_n_helpers = sizeof okovm_helpers / sizeof *okovm_helpers;

/* Returns the index in okovm_helpers[] of helper 'id', or -1 if programs
 * may not call it. */
int
okovm_helper_index(int32_t id)
{
    size_t i;

    for (i = 0; i < okovm_n_helpers; i++) {
        if (okovm_helpers[i].id == id) {
            return i;
        }
    }
    return -1;
}

/* Returns helper 'id', or NULL if programs may not call it. */
const struct okovm_helper *
okovm_helper_find(int32_t id)
{
    int idx = okovm_helper_index(id);

    return idx >= 0 ? &okovm_helpers[idx] : NULL;
}
