/*
 * error.c -- filling 'struct okovm_error' and naming source locations
 * from BTF line information.
 */

#include <stdio.h>
#include <string.h>
#include <bpf/btf.h>

#include "okovm-private.h"

/* Resets 'err' (NULL allowed) to "no error". */
void
okovm_error_clear(struct okovm_error *err)
{
    if (err) {
        err->code = 0;
        err->insn = -1;
        err->line = 0;
        err->column = 0;
        err->file[0] = '\0';
        err->source[0] = '\0';
        err->msg[0] = '\0';
        err->log[0] = '\0';
    }
}

/* Records error 'code' about instruction 'insn' (-1: none) with a message
 * formatted from 'fmt' in 'err' (NULL allowed) unless 'err' already holds
 * an error.  Returns 'code', for "return okovm_error_set(...)". */
int
okovm_error_set(struct okovm_error *err, int code, int insn,
                const char *fmt, ...)
{
    if (err && !err->code) {
        va_list args;

        err->code = code;
        err->insn = insn;
        va_start(args, fmt);
        vsnprintf(err->msg, sizeof err->msg, fmt, args);
        va_end(args);
    }
    return code;
}

/* Stores the tail of 'log' (the part that says why) in 'err->log'. */
void
okovm_error_add_log(struct okovm_error *err, const char *log)
{
    size_t len, cap;

    if (!err || !log) {
        return;
    }
    len = strlen(log);
    cap = sizeof err->log - 1;
    if (len <= cap) {
        memcpy(err->log, log, len + 1);
    } else {
        static const char cut[] = "[... start of log truncated ...]\n";
        size_t keep = cap - (sizeof cut - 1);

        memcpy(err->log, cut, sizeof cut - 1);
        memcpy(err->log + sizeof cut - 1, log + len - keep, keep);
        err->log[cap] = '\0';
    }
}

/* Returns the line record of 'prog' covering instruction 'insn', or
 * NULL. */
static const struct okovm_line *
find_line(const struct okovm_prog *prog, int insn)
{
    const struct okovm_line *best = NULL;
    uint32_t lo = 0, hi = prog->n_lines;

    if (insn < 0 || !prog->btf) {
        return NULL;
    }
    while (lo < hi) {
        uint32_t mid = (lo + hi) / 2;

        if (prog->lines[mid].insn <= (uint32_t) insn) {
            best = &prog->lines[mid];
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    return best;
}

static const char *
btf_str(const struct okovm_prog *prog, uint32_t off)
{
    const char *s = btf__name_by_offset(prog->btf, off);

    return s ? s : "";
}

/* Fills the source location fields of 'err' for 'err->insn' from the line
 * information of 'prog' and appends it to the message. */
void
okovm_error_locate(struct okovm_error *err, const struct okovm_prog *prog)
{
    const struct okovm_line *l;
    const char *file, *src;
    size_t len;

    if (!err || !err->code || !prog) {
        return;
    }
    l = find_line(prog, err->insn);
    if (!l) {
        return;
    }
    file = btf_str(prog, l->file_off);
    src = btf_str(prog, l->line_off);
    snprintf(err->file, sizeof err->file, "%s", file);
    snprintf(err->source, sizeof err->source, "%s", src);
    err->line = l->line_col >> 10;
    err->column = l->line_col & 0x3ff;
    len = strlen(err->msg);
    snprintf(err->msg + len, sizeof err->msg - len, " (at %s:%d: %s)",
             err->file, err->line, err->source);
}

int
okovm_prog_insn_source(const struct okovm_prog *prog, uint32_t insn,
                       const char **file, uint32_t *line, const char **text)
{
    const struct okovm_line *l = (insn <= INT32_MAX
                                  ? find_line(prog, (int) insn) : NULL);

    if (!l) {
        return 0;
    }
    *file = btf_str(prog, l->file_off);
    *line = l->line_col >> 10;
    *text = btf_str(prog, l->line_off);
    return 1;
}

/* Writes "insn N (file:line)" for instruction 'insn' of 'prog' into
 * 'buf'. */
void
okovm_format_location(const struct okovm_prog *prog, int insn, char *buf,
                      size_t size)
{
    const struct okovm_line *l = find_line(prog, insn);

    if (l) {
        snprintf(buf, size, "insn %d (%s:%u)", insn,
                 btf_str(prog, l->file_off), l->line_col >> 10);
    } else {
        snprintf(buf, size, "insn %d", insn);
    }
}
