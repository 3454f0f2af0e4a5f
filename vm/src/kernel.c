/*
 * kernel.c -- kernel admission: the same object is loaded by libbpf as a
 * BPF_PROG_TYPE_XDP program with stand-in kernel maps of the same
 * definitions (nothing pinned), so that the Linux verifier checks it.  The
 * kernel objects are freed right after.
 *
 * Strict rules.  With CAP_PERFMON (or CAP_SYS_ADMIN, which implies it) the
 * kernel verifier is lenient: it lets a program leak pointers (into map
 * values, as its return value, into helper arguments) and read
 * uninitialised stack, and it skips the Spectre v1 restrictions.  A switch
 * usually runs as root, so the load is done in a short-lived thread of
 * its own that first drops CAP_SYS_ADMIN and CAP_PERFMON (credentials are
 * per thread on Linux; the raw capset system call changes only the
 * calling thread).  CAP_BPF and CAP_NET_ADMIN, which XDP programs need,
 * are kept.  The rest of the process keeps its capabilities.
 *
 * Some helpers are only available to CAP_PERFMON: bpf_trace_printk(),
 * the one whose entry in the helper table (helpers.c) names a strict
 * stand-in.  For the strict load their calls are replaced by calls to the
 * stand-in (bpf_get_prandom_u32(): no arguments, returns a scalar), and
 * when the program calls one, a second, ordinary load of the unmodified
 * object checks the helper's own arguments (the format string must be
 * readable memory of the given size).
 */

#include <errno.h>
#include <gelf.h>
#include <libelf.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>
#include <linux/capability.h>
#include <bpf/libbpf.h>

#include "okovm-private.h"

#define LOG_SIZE (1u << 20)

#ifndef CAP_PERFMON
#define CAP_PERFMON 38
#endif
#ifndef CAP_BPF
#define CAP_BPF 39
#endif

static uint64_t
now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t) ts.tv_sec * 1000000000u + ts.tv_nsec;
}

/* Replaces, in the ELF image 'buf' of 'len' bytes, every call in an
 * executable section of a helper that only privileged programs may call
 * by a call of its strict stand-in (helpers.c).  Returns the number of
 * calls replaced and stores the first such helper in '*firstp'. */
static int
replace_privileged_calls(void *buf, size_t len,
                         const struct okovm_helper **firstp)
{
    Elf_Scn *scn = NULL;
    Elf *elf;
    int n = 0;

    elf_version(EV_CURRENT);
    elf = elf_memory(buf, len);
    if (!elf) {
        return 0;
    }
    if (elf_kind(elf) != ELF_K_ELF || gelf_getclass(elf) != ELFCLASS64
        || ((unsigned char *) buf)[EI_DATA] != ELFDATA2LSB) {
        elf_end(elf);
        return 0;
    }
    while ((scn = elf_nextscn(elf, scn))) {
        GElf_Shdr sh;
        size_t i;

        if (!gelf_getshdr(scn, &sh) || sh.sh_type != SHT_PROGBITS
            || !(sh.sh_flags & SHF_EXECINSTR) || sh.sh_offset > len
            || sh.sh_size > len - sh.sh_offset) {
            continue;
        }
        for (i = 0; i + sizeof(struct bpf_insn) <= sh.sh_size;
             i += sizeof(struct bpf_insn)) {
            const struct okovm_helper *h;
            struct bpf_insn in;

            memcpy(&in, (char *) buf + sh.sh_offset + i, sizeof in);
            if (in.code != (BPF_JMP | BPF_CALL) || in.src_reg != 0) {
                continue;
            }
            h = okovm_helper_find(in.imm);
            if (h && h->strict_stand_in) {
                in.imm = h->strict_stand_in;
                memcpy((char *) buf + sh.sh_offset + i, &in, sizeof in);
                if (!n++) {
                    *firstp = h;
                }
            }
        }
    }
    elf_end(elf);
    return n;
}

/* Drops CAP_SYS_ADMIN and CAP_PERFMON from the calling thread's effective,
 * permitted and inheritable sets, then checks that they are gone.  Returns
 * 0 or a positive errno with a reason in 'why'. */
static int
drop_privileges(char *why, size_t why_size)
{
    static const int caps[] = { CAP_SYS_ADMIN, CAP_PERFMON };
    struct __user_cap_header_struct hdr;
    struct __user_cap_data_struct data[2];
    size_t i;

    memset(&hdr, 0, sizeof hdr);
    hdr.version = _LINUX_CAPABILITY_VERSION_3;
    if (syscall(SYS_capget, &hdr, data)) {
        snprintf(why, why_size, "capget: %s", strerror(errno));
        return errno;
    }
    if (data[CAP_SYS_ADMIN >> 5].effective & (1u << (CAP_SYS_ADMIN & 31))
        && !(data[CAP_BPF >> 5].effective & (1u << (CAP_BPF & 31)))) {
        /* Without CAP_SYS_ADMIN, BPF needs CAP_BPF: dropping it would
         * only make the kernel refuse to load anything. */
        snprintf(why, why_size, "the process has CAP_SYS_ADMIN but not "
                 "CAP_BPF, which the strict check needs");
        return EPERM;
    }
    for (i = 0; i < sizeof caps / sizeof caps[0]; i++) {
        uint32_t bit = 1u << (caps[i] & 31);

        data[caps[i] >> 5].effective &= ~bit;
        data[caps[i] >> 5].permitted &= ~bit;
        data[caps[i] >> 5].inheritable &= ~bit;
    }
    hdr.pid = 0;
    if (syscall(SYS_capset, &hdr, data)) {
        snprintf(why, why_size, "capset: %s", strerror(errno));
        return errno;
    }
    memset(data, 0, sizeof data);
    if (syscall(SYS_capget, &hdr, data)) {
        snprintf(why, why_size, "capget: %s", strerror(errno));
        return errno;
    }
    for (i = 0; i < sizeof caps / sizeof caps[0]; i++) {
        if (data[caps[i] >> 5].effective & (1u << (caps[i] & 31))) {
            snprintf(why, why_size, "capability %d still effective after "
                     "capset", caps[i]);
            return EPERM;
        }
    }
    return 0;
}

/* One load of the object through libbpf. */
struct admit_load {
    const struct okovm_admit_req *req;
    bool strict;                /* In a thread, privileges dropped. */
    bool stub_privileged;       /* Replace calls of privileged helpers. */

    /* Results. */
    int error;
    int n_privileged;           /* Calls of privileged helpers replaced. */
    const struct okovm_helper *privileged;  /* The first one. */
    int drop_error;             /* Dropping privileges failed. */
    char drop_why[256];
    struct okovm_error *err;
};

/* Stores the initial contents of the global-data maps of 'req' in the
 * matching internal maps of 'obj'. */
static int
set_global_data(struct bpf_object *obj, const struct okovm_admit_req *req)
{
    struct bpf_map *m;

    bpf_object__for_each_map(m, obj) {
        const char *name = bpf_map__name(m);
        uint32_t i;

        if (!bpf_map__is_internal(m)) {
            continue;
        }
        if (!strncmp(name, "o.", 2)) {
            name++;
        }
        for (i = 0; i < req->n_globals; i++) {
            const struct okovm_map *g = req->globals[i];

            if (!strcmp(g->name, name) && g->value_size
                && g->value_size == bpf_map__value_size(m)) {
                int error = bpf_map__set_initial_value(m, g->values,
                                                       g->value_size);

                if (error) {
                    return -error;
                }
            }
        }
    }
    return 0;
}

static void
do_load(struct admit_load *al)
{
    const struct okovm_admit_req *req = al->req;
    LIBBPF_OPTS(bpf_object_open_opts, opts, .object_name = "o");
    struct okovm_error *err = al->err;
    struct bpf_object *obj = NULL;
    struct bpf_program *p;
    struct bpf_map *m;
    char libbpf_msgs[4096] = "";
    char *log = NULL;
    void *copy = NULL;
    int error;

    log = calloc(1, LOG_SIZE);
    copy = malloc(req->len ? req->len : 1);
    if (!log || !copy) {
        error = okovm_error_set(err, ENOMEM, -1, "out of memory");
        goto out;
    }
    memcpy(copy, req->elf, req->len);
    if (al->stub_privileged) {
        al->n_privileged = replace_privileged_calls(copy, req->len,
                                                    &al->privileged);
    }
    okovm_libbpf_capture_begin(libbpf_msgs, sizeof libbpf_msgs);
    obj = bpf_object__open_mem(copy, req->len, &opts);
    if (!obj) {
        error = errno ? errno : EINVAL;
        okovm_libbpf_capture_end();
        okovm_error_set(err, error, -1, "kernel admission: libbpf could "
                        "not open the object");
        okovm_error_add_log(err, libbpf_msgs);
        goto out;
    }
    bpf_object__for_each_program(p, obj) {
        if (!strcmp(bpf_program__name(p), req->prog_name)
            && !strcmp(bpf_program__section_name(p), req->section)) {
            if (bpf_program__type(p) != BPF_PROG_TYPE_XDP) {
                bpf_program__set_type(p, BPF_PROG_TYPE_XDP);
            }
            bpf_program__set_autoload(p, true);
            bpf_program__set_log_buf(p, log, LOG_SIZE);
        } else {
            bpf_program__set_autoload(p, false);
        }
    }
    bpf_object__for_each_map(m, obj) {
        bpf_map__set_pin_path(m, NULL);
    }
    error = set_global_data(obj, req);
    if (error) {
        okovm_libbpf_capture_end();
        okovm_error_set(err, error, -1, "kernel admission: libbpf could "
                        "not set the initial global data (%s)",
                        strerror(error));
        goto out;
    }
    error = -bpf_object__load(obj);
    okovm_libbpf_capture_end();
    if (error == EPERM) {
        okovm_error_set(err, EPERM, -1, "the kernel cannot verify the "
                        "program (EPERM: CAP_BPF and CAP_NET_ADMIN "
                        "needed); sandbox mode was not allowed");
        okovm_error_add_log(err, log[0] ? log : libbpf_msgs);
    } else if (error) {
        okovm_error_set(err, error, -1, "the kernel verifier refused the "
                        "program (%s%s); see the verifier log",
                        strerror(error),
                        al->strict ? ", strict unprivileged rules" : "");
        okovm_error_add_log(err, log[0] ? log : libbpf_msgs);
    }

out:
    bpf_object__close(obj);
    free(copy);
    free(log);
    al->error = error;
}

static void *
strict_thread(void *al_)
{
    struct admit_load *al = al_;

    al->drop_error = drop_privileges(al->drop_why, sizeof al->drop_why);
    if (!al->drop_error) {
        do_load(al);
    }
    return NULL;
}

/* Runs do_load(al) in a new thread with CAP_SYS_ADMIN and CAP_PERFMON
 * dropped.  Sets 'al->drop_error' if that could not be done. */
static void
load_strict(struct admit_load *al)
{
    pthread_attr_t attr;
    pthread_t thread;
    int error;

    al->strict = true;
    error = pthread_attr_init(&attr);
    if (!error) {
        /* libbpf and libelf need little stack; stay modest but safe. */
        pthread_attr_setstacksize(&attr, 1u << 20);
        error = pthread_create(&thread, &attr, strict_thread, al);
        pthread_attr_destroy(&attr);
    }
    if (error) {
        al->drop_error = error;
        snprintf(al->drop_why, sizeof al->drop_why,
                 "cannot start the admission thread: %s", strerror(error));
        return;
    }
    pthread_join(thread, NULL);
}

/* Returns the line of the verifier log 'log' that says why the program
 * was refused (the one before "processed N insns"), copied into 'buf'. */
static const char *
refusal_line(const char *log, char *buf, size_t size)
{
    const char *p = log, *prev = NULL, *line = NULL;

    buf[0] = '\0';
    while (p && *p) {
        const char *eol = strchr(p, '\n');

        if (!strncmp(p, "processed ", 10)) {
            line = prev;
            break;
        }
        if (eol != p) {
            prev = p;
        }
        p = eol ? eol + 1 : NULL;
    }
    if (!line) {
        line = prev;
    }
    if (line) {
        const char *eol = strchr(line, '\n');
        size_t n = eol ? (size_t) (eol - line) : strlen(line);

        snprintf(buf, size, "%.*s", (int) (n < size ? n : size - 1), line);
    }
    return buf;
}

/* Whether the strict verifier's refusal 'why' concerns a construct that
 * only the privileged rules allow and that is no leak in itself: Spectre
 * v1 restrictions on pointer arithmetic, pointer subtraction and
 * comparison (the structural verifier checks these for leaks), and the
 * state explosion of speculative path checking.  Leaks, uninitialised
 * stack reads and variable-offset stack accesses are not in this list:
 * they are refused. */
static bool
privileged_construct(const char *why)
{
    static const char *const patterns[] = {
        "pointer arithmetic with it prohibited for !root",
        "pointer arithmetic of map value goes out of range",
        "stack pointer arithmetic goes out of range",
        "pointer -= pointer prohibited",
        "pointer comparison prohibited",
        "jumps is too complex",
    };
    size_t i;

    for (i = 0; i < sizeof patterns / sizeof patterns[0]; i++) {
        if (strstr(why, patterns[i])) {
            return true;
        }
    }
    return false;
}

/* Asks the kernel to verify the program described by 'req'.
 *
 * First with the strict (unprivileged) rules.  If they refuse the program
 * only for a construct in privileged_construct(), it is loaded again with
 * the caller's privileges: admitted then, '*strictp' is false and 'why'
 * says what the strict rules refused.  Programs calling a privileged
 * helper (bpf_trace_printk()) are also loaded with the caller's
 * privileges, to check that helper.
 *
 * Returns 0 if admitted; EPERM if the kernel cannot be asked (no CAP_BPF);
 * EACCES if the strict check could not be set up and 'req->allow_lenient'
 * is false; otherwise the kernel's error with its verifier log in 'err'.
 * Stores the time taken in '*elapsed_ns'. */
int
okovm_kernel_admit(const struct okovm_admit_req *req, bool *strictp,
                   char *why, size_t why_size, uint64_t *elapsed_ns,
                   struct okovm_error *err)
{
    uint64_t start = now_ns();
    struct okovm_error *strict_err = NULL;
    struct admit_load al;
    const struct okovm_helper *privileged;
    char line[512];

    *strictp = false;
    why[0] = '\0';
    memset(&al, 0, sizeof al);
    al.req = req;
    strict_err = calloc(1, sizeof *strict_err);
    if (!strict_err) {
        return okovm_error_set(err, ENOMEM, -1, "out of memory");
    }
    al.err = strict_err;
    al.stub_privileged = true;
    load_strict(&al);
    privileged = al.n_privileged ? al.privileged : NULL;
    if (al.drop_error) {
        free(strict_err);
        if (!req->allow_lenient) {
            *elapsed_ns = now_ns() - start;
            return okovm_error_set(
                err, EACCES, -1, "kernel admission refused: could not "
                "drop CAP_SYS_ADMIN and CAP_PERFMON for the strict "
                "(unprivileged) verifier rules (%s); the lenient rules "
                "would admit pointer leaks and uninitialised stack reads "
                "(load with OKOVM_LOAD_ALLOW_LENIENT_KERNEL to accept "
                "them)", al.drop_why);
        }
        snprintf(why, why_size, "privileges could not be dropped (%s)",
                 al.drop_why);
        memset(&al, 0, sizeof al);
        al.req = req;
        al.err = err;
        do_load(&al);
        *elapsed_ns = now_ns() - start;
        return al.error;
    }

    if (al.error) {
        refusal_line(strict_err->log, line, sizeof line);
        if (al.error == EPERM || !privileged_construct(line)) {
            if (err) {
                memcpy(err, strict_err, sizeof *err);
            }
            free(strict_err);
            *elapsed_ns = now_ns() - start;
            return al.error;
        }
        snprintf(why, why_size, "the strict rules refused: %s", line);
    } else if (!privileged) {
        free(strict_err);
        *strictp = true;
        *elapsed_ns = now_ns() - start;
        return 0;
    }

    /* With the caller's privileges. */
    *strictp = !al.error;
    memset(&al, 0, sizeof al);
    al.req = req;
    al.err = err;
    do_load(&al);
    if (al.error) {
        *strictp = false;
        if (err && privileged) {
            size_t used = strlen(err->msg);

            snprintf(err->msg + used, sizeof err->msg - used,
                     " (the program calls bpf_%s(): that helper needs "
                     "CAP_PERFMON or CAP_SYS_ADMIN for kernel admission)",
                     privileged->name);
        }
    }
    free(strict_err);
    *elapsed_ns = now_ns() - start;
    return al.error;
}
