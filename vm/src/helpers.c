/*
 * helpers.c -- BPF helpers that need more than a line in the interpreter:
 * bpf_trace_printk() and the helper whitelist.  Map, clock and random
 * helpers call map.c and ns.c directly.
 */

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "okovm-private.h"

/* Returns true if helper 'id' is supported. */
bool
okovm_helper_known(int32_t id)
{
    switch (id) {
    case BPF_FUNC_map_lookup_elem:
    case BPF_FUNC_map_update_elem:
    case BPF_FUNC_map_delete_elem:
    case BPF_FUNC_ktime_get_ns:
    case BPF_FUNC_trace_printk:
    case BPF_FUNC_get_prandom_u32:
        return true;
    default:
        return false;
    }
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
int64_t
okovm_helper_printk(struct okovm_run *run, const char *fmt, uint32_t size,
                    uint64_t a1, uint64_t a2, uint64_t a3)
{
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
    okovm_ns_log(run->ns, OKOVM_LOG_INFO, true, "%s: %s: %s", run->ns->name,
                 run->prog->name, out);
    return len;
}
