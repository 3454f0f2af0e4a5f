/*
 * kernel.c -- kernel admission: the same object is loaded by libbpf as a
 * BPF_PROG_TYPE_XDP program with stand-in kernel maps of the same
 * definitions (nothing pinned), so that the Linux verifier checks it.  The
 * kernel objects are freed right after.
 */

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <bpf/libbpf.h>

#include "okovm-private.h"

#define LOG_SIZE (1u << 20)

static uint64_t
now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t) ts.tv_sec * 1000000000u + ts.tv_nsec;
}

/* Asks the kernel to verify program 'prog_name' of section 'section' in
 * the ELF object 'elf' of 'len' bytes.  Returns 0 if admitted; EPERM if
 * the kernel cannot be asked (no CAP_BPF); otherwise the kernel's error
 * with its verifier log in 'err'.  Stores the time taken in
 * '*elapsed_ns'. */
int
okovm_kernel_admit(const void *elf, size_t len, const char *section,
                   const char *prog_name, struct okovm_error *err,
                   uint64_t *elapsed_ns)
{
    LIBBPF_OPTS(bpf_object_open_opts, opts, .object_name = "o");
    struct bpf_object *obj = NULL;
    struct bpf_program *p;
    struct bpf_map *m;
    char libbpf_msgs[4096] = "";
    char *log = NULL;
    void *copy = NULL;
    uint64_t start = now_ns();
    int error;

    log = calloc(1, LOG_SIZE);
    copy = malloc(len);
    if (!log || !copy) {
        error = okovm_error_set(err, ENOMEM, -1, "out of memory");
        goto out;
    }
    memcpy(copy, elf, len);
    okovm_libbpf_capture_begin(libbpf_msgs, sizeof libbpf_msgs);
    obj = bpf_object__open_mem(copy, len, &opts);
    if (!obj) {
        error = errno ? errno : EINVAL;
        okovm_libbpf_capture_end();
        okovm_error_set(err, error, -1, "kernel admission: libbpf could "
                        "not open the object");
        okovm_error_add_log(err, libbpf_msgs);
        goto out;
    }
    bpf_object__for_each_program(p, obj) {
        if (!strcmp(bpf_program__name(p), prog_name)
            && !strcmp(bpf_program__section_name(p), section)) {
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
    error = -bpf_object__load(obj);
    okovm_libbpf_capture_end();
    *elapsed_ns = now_ns() - start;
    if (error == EPERM) {
        okovm_error_set(err, EPERM, -1, "the kernel cannot verify the "
                        "program (EPERM: CAP_BPF needed); sandbox mode "
                        "was not allowed");
        okovm_error_add_log(err, log[0] ? log : libbpf_msgs);
    } else if (error) {
        okovm_error_set(err, error, -1, "the kernel verifier refused the "
                        "program (%s); see the verifier log",
                        strerror(error));
        okovm_error_add_log(err, log[0] ? log : libbpf_msgs);
    }

out:
    bpf_object__close(obj);
    free(copy);
    free(log);
    return error;
}
