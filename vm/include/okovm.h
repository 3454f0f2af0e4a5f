/*
 * okovm.h -- public interface of libokovm, the BPF virtual machine that
 * runs XDP-style filters inside Open vSwitch's userspace datapath.
 *
 * The header is plain C so that Python's cffi can read it in ABI mode:
 * only opaque handles, fixed-width integers, enums and structs whose array
 * sizes are literal numbers.  No macro is needed to call any function.
 *
 * Conventions:
 *   - Functions that can fail return 0 on success or a positive errno
 *     value (ENOENT, EEXIST, E2BIG, EINVAL, ENOMEM, EPERM, EACCES...).
 *     Nothing in the library aborts or prints on stdout/stderr.
 *   - All objects are reference counted and safe to use from several
 *     threads, with the exceptions stated per function.
 *
 * Life cycle:
 *   A namespace (struct okovm_ns, one per bridge) owns pinned maps and the
 *   embedder's hooks (deferred free, log, clock).  Programs are loaded into
 *   a namespace from the bytes of a clang-compiled BPF ELF object.  A
 *   program holds references to its maps and to its namespace.
 */

#ifndef OKOVM_H
#define OKOVM_H 1

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

struct okovm_ns;
struct okovm_prog;
struct okovm_map;

/* Error details filled by functions that take a 'struct okovm_error *'.
 * The caller owns the structure (it is large: allocate it, do not put it on
 * a small stack).  'code' repeats the returned errno.  'insn' is the index
 * of the offending BPF instruction in the linked program (-1 if none);
 * 'file', 'line', 'column' and 'source' come from the object's BTF line
 * information when present.  'log' holds the tail of the Linux verifier
 * log when the kernel refused the program, NUL-terminated. */
struct okovm_error {
    int32_t code;
    int32_t insn;
    int32_t line;
    int32_t column;
    char file[256];
    char source[256];
    char msg[1024];
    char log[32768];
};

/* Flags for 'struct okovm_load_opts'. */
enum okovm_load_flags {
    /* If the kernel cannot be asked to verify the program (no CAP_BPF:
     * EPERM), load it anyway in sandbox mode instead of refusing. */
    OKOVM_LOAD_ALLOW_SANDBOX = 1,
    /* Never ask the kernel; always use sandbox mode.  For tests and for
     * hosts known to lack CAP_BPF. */
    OKOVM_LOAD_FORCE_SANDBOX = 2,
    /* The kernel admission normally runs with CAP_SYS_ADMIN and
     * CAP_PERFMON dropped (in a thread of its own), so that the kernel
     * applies its strict unprivileged rules: no pointer leaks, no reads of
     * uninitialised stack, Spectre v1 restrictions.  If they cannot be
     * dropped the load is refused (EACCES); with this flag the lenient
     * privileged check is accepted instead, and okovm_prog_info's
     * 'kernel_strict' is 0. */
    OKOVM_LOAD_ALLOW_LENIENT_KERNEL = 4,
    /* Run a verified program in the interpreter even where the JIT could
     * compile it to native code (x86-64).  For comparisons and tests. */
    OKOVM_LOAD_NO_JIT = 8,
};

/* Execution mode of a loaded program (see okovm_prog_get_info()). */
enum okovm_exec_mode {
    /* Admitted by the kernel verifier: JIT-compiled native code, or the
     * fast interpreter.  okovm_prog_load() is the only entry point of the
     * library, and kernel admission the only path to this mode. */
    OKOVM_MODE_VERIFIED = 0,
    /* Not kernel-verified: every memory access and helper argument is
     * checked at run time, loops are bounded by an instruction budget;
     * a violation stops the program with XDP_ABORTED. */
    OKOVM_MODE_SANDBOX = 1,
};

/* Initial contents for part of a global-data section of the object
 * (".rodata", ".data", ".bss", ".rodata.NAME"...), as a libbpf skeleton
 * sets 'const volatile' tunables before loading: 'size' bytes of 'data'
 * are copied at byte 'offset' of section 'section' before the program is
 * verified (the kernel verifier sees the same frozen '.rodata') and run.
 * The offsets of variables are in the object's BTF (DATASEC). */
struct okovm_global_init {
    const char *section;        /* Map name of the section, e.g. ".rodata". */
    uint32_t offset;            /* Byte offset in the section. */
    uint32_t size;              /* Bytes at 'data'. */
    const void *data;
};

/* Options for okovm_prog_load().  A zeroed structure (or NULL) selects the
 * defaults: the first program whose section is "xdp" or "xdp/...",
 * kernel verification required, global data as compiled. */
struct okovm_load_opts {
    const char *prog_name;      /* C function name, or NULL. */
    const char *section;        /* ELF section name, or NULL. */
    uint32_t flags;             /* OKOVM_LOAD_* bits. */
    uint32_t insn_budget;       /* Sandbox: instructions per run, 0 means
                                 * 1000000. */
    const struct okovm_global_init *globals;    /* 'n_globals' overrides, */
    uint32_t n_globals;                         /* applied in order. */
};

/* Map types supported, with the kernel's numbers. */
enum okovm_map_type {
    OKOVM_MAP_HASH = 1,
    OKOVM_MAP_ARRAY = 2,
    OKOVM_MAP_LRU_HASH = 9,
    OKOVM_MAP_LPM_TRIE = 11,
};

/* Update flags, with the kernel's numbers. */
enum okovm_update_flags {
    OKOVM_ANY = 0,
    OKOVM_NOEXIST = 1,
    OKOVM_EXIST = 2,
};

/* XDP verdicts. */
enum okovm_verdict {
    OKOVM_XDP_ABORTED = 0,
    OKOVM_XDP_DROP = 1,
    OKOVM_XDP_PASS = 2,
    OKOVM_XDP_TX = 3,
    OKOVM_XDP_REDIRECT = 4,

    /* Not a verdict: the number of verdict counters in struct
     * okovm_prog_stats, one per verdict above and one for any other
     * value a program returns. */
    OKOVM_N_VERDICTS = 6,
};

/* Log levels passed to the log callback. */
enum okovm_log_level {
    OKOVM_LOG_ERR = 0,
    OKOVM_LOG_WARN = 1,
    OKOVM_LOG_INFO = 2,
    OKOVM_LOG_DBG = 3,
};

/* Embedder hooks. */

/* Must arrange for 'fn(arg)' to be called once no thread can still be
 * running a program that may have obtained a pointer to 'arg' (for Open
 * vSwitch: ovsrcu_postpone).  May be called from any thread, including
 * threads running programs. */
typedef void okovm_defer_fn(void *aux, void (*fn)(void *), void *arg);

/* Receives one log line (no trailing newline) at 'level'.  Called from
 * the thread that produced it, possibly from several threads at once. */
typedef void okovm_log_fn(void *aux, int level, const char *msg);

/* Returns the time in nanoseconds for bpf_ktime_get_ns(). */
typedef uint64_t okovm_clock_fn(void *aux);

/* Namespaces. */

/* Creates a namespace named 'name' (for log messages) in '*nsp'.
 * Returns 0 or ENOMEM. */
int okovm_ns_create(const char *name, struct okovm_ns **nsp);

/* Drops the creator's reference to 'ns' and unpins its maps.  The memory
 * is released when the last program of 'ns' is released too.  NULL is
 * allowed. */
void okovm_ns_destroy(struct okovm_ns *ns);

/* Sets the deferred-free hook of 'ns'.  Call before loading programs.
 *
 * Without a hook (the default), freed map elements are kept on a list and
 * reclaimed by a two-epoch scheme: okovm_prog_run() registers itself in
 * the current epoch, and elements are released once every run that could
 * have seen them has finished (checked on each later free, on
 * okovm_ns_quiesce() and at destruction).  That costs two atomic
 * operations per run; with a hook the run path has none. */
void okovm_ns_set_defer(struct okovm_ns *ns, okovm_defer_fn *fn, void *aux);

/* Sets the log callback of 'ns' ('fn' NULL: discard).  Receives
 * bpf_trace_printk() output and sandbox faults, rate limited. */
void okovm_ns_set_log(struct okovm_ns *ns, okovm_log_fn *fn, void *aux);

/* Sets the bpf_trace_printk() rate limit of 'ns': at most 'burst' lines at
 * once and 'per_sec' lines per second on average (default 10/s, burst
 * 50). */
void okovm_ns_set_printk_rate(struct okovm_ns *ns, uint32_t per_sec,
                              uint32_t burst);

/* Sets the clock of 'ns' for bpf_ktime_get_ns().  'fn' NULL restores
 * CLOCK_MONOTONIC. */
void okovm_ns_set_clock(struct okovm_ns *ns, okovm_clock_fn *fn, void *aux);

/* Makes bpf_ktime_get_ns() in 'ns' return 'now_ns' until changed
 * (deterministic tests). */
void okovm_ns_set_fixed_clock(struct okovm_ns *ns, uint64_t now_ns);

/* Seeds bpf_get_prandom_u32() of 'ns': the same seed gives the same
 * sequence of values (in the order the calls happen). */
void okovm_ns_seed_prandom(struct okovm_ns *ns, uint64_t seed);

/* Makes okovm_prog_run() time one run in 'period' of each program
 * ('period' rounded up to a power of two; 0 disables timing; default 64),
 * starting with its first run, so that a program that ran has a timed
 * run.  okovm_prog_get_stats() scales the timed runs' time up to all
 * runs. */
void okovm_ns_set_timing(struct okovm_ns *ns, uint32_t period);

/* Releases deferred memory of 'ns' that no run can still use.  Only
 * useful without a deferred-free hook.  Never blocks on running
 * programs. */
void okovm_ns_quiesce(struct okovm_ns *ns);

/* Stores in '*mapp' a new reference to the map pinned in 'ns' under
 * 'name'.  Returns 0 or ENOENT. */
int okovm_ns_find_pinned(struct okovm_ns *ns, const char *name,
                         struct okovm_map **mapp);

/* Stores in '*mapp' a new reference to the pinned map number 'idx' of
 * 'ns' (in name order).  Returns 0, or ENOENT when 'idx' is past the
 * end. */
int okovm_ns_get_pinned(struct okovm_ns *ns, uint32_t idx,
                        struct okovm_map **mapp);

/* Removes the pin 'name' from 'ns'; the map lives on while programs use
 * it.  Returns 0 or ENOENT. */
int okovm_ns_unpin(struct okovm_ns *ns, const char *name);

/* Programs. */

/* Loads the program selected by 'opts' (may be NULL) from the ELF object
 * 'elf' of 'len' bytes into 'ns'.  On success stores a program with one
 * reference in '*progp' and returns 0.  On failure returns a positive
 * errno and, if 'err' is nonnull, fills it in.
 *
 * Steps: ELF and BTF parsing (libbpf, open only), linking (maps, global
 * data, bpf-to-bpf calls), global-data overrides ('opts->globals'), the
 * structural verifier (which also refuses pointer leaks it can see),
 * kernel admission as BPF_PROG_TYPE_XDP with stand-in maps (unless sandbox
 * mode), then the namespace's maps are created or, when pinned by name,
 * shared.
 *
 * Kernel admission first applies the kernel's strict, unprivileged rules
 * (in a short-lived thread without CAP_SYS_ADMIN and CAP_PERFMON; the
 * calling thread keeps its capabilities).  A program those rules refuse
 * for a leak or a read of uninitialised stack is refused.  One they
 * refuse only for constructs that need privileges without leaking
 * (Spectre v1 limits on variable packet offsets, pointer subtraction and
 * comparison, speculative-path complexity) is checked again with the
 * caller's privileges; if admitted, okovm_prog_info's 'kernel_strict' is
 * 0, the namespace log says why, and the program's stack is zeroed before
 * each run so that uninitialised reads see zeroes. */
int okovm_prog_load(struct okovm_ns *ns, const void *elf, size_t len,
                    const struct okovm_load_opts *opts,
                    struct okovm_prog **progp, struct okovm_error *err);

/* Takes a reference to 'prog'. */
void okovm_prog_ref(struct okovm_prog *prog);

/* Drops a reference to 'prog'; the last one frees it.  The caller must
 * make sure no thread still runs it (for Open vSwitch: drop the
 * registry's reference through ovsrcu_postpone).  NULL is allowed. */
void okovm_prog_unref(struct okovm_prog *prog);

/* Runs 'prog' on the packet 'pkt' of 'len' bytes received on 'in_port'
 * and returns its verdict (the program's return value, truncated to 32
 * bits).  The packet is not modified.  Reentrant: any number of threads
 * may run the same program at once; each must hold a reference (or be
 * otherwise protected against okovm_prog_unref()). */
uint32_t okovm_prog_run(struct okovm_prog *prog, const void *pkt,
                        size_t len, uint32_t in_port);

/* One packet for okovm_prog_run_batch(). */
struct okovm_pkt {
    const void *data;
    size_t len;
};

/* Runs 'prog' on each of the 'n' packets 'pkts', all received on
 * 'in_port', and stores their verdicts in 'verdicts[0..n-1]': the same as
 * 'n' calls of okovm_prog_run(), except that the statistics are updated
 * once for the batch and that, if 'now_ns' is nonzero,
 * bpf_ktime_get_ns() returns 'now_ns' in every run of the batch (a
 * CLOCK_MONOTONIC time in nanoseconds: for a datapath, when the batch was
 * received) instead of reading the clock on each call.  A clock set with
 * okovm_ns_set_clock() or okovm_ns_set_fixed_clock() takes precedence. */
void okovm_prog_run_batch(struct okovm_prog *prog,
                          const struct okovm_pkt *pkts, size_t n,
                          uint32_t in_port, uint64_t now_ns,
                          uint32_t *verdicts);

/* The same as okovm_prog_run_batch(), and stores in 'run_ns[0..n-1]' how
 * long each run took, in nanoseconds, for a tracer: the clock is read before
 * and after the batch, and each run gets its share of the CPU's cycle
 * counter (the TSC on x86) over the batch; a few nanoseconds per run more.
 * Without a cycle counter, the clock is read after each run. */
void okovm_prog_run_batch_timed(struct okovm_prog *prog,
                                const struct okovm_pkt *pkts, size_t n,
                                uint32_t in_port, uint64_t now_ns,
                                uint32_t *verdicts, uint64_t *run_ns);

/* Runs 'prog' 'repeat' times on the same packet, exactly as
 * okovm_prog_run() does (statistics included), and stores in '*total_ns'
 * the wall-clock nanoseconds the whole loop took.  Returns the last
 * verdict.  For benchmarks: one call from Python times many runs. */
uint32_t okovm_prog_bench(struct okovm_prog *prog, const void *pkt,
                          size_t len, uint32_t in_port, uint64_t repeat,
                          uint64_t *total_ns);

/* What okovm_prog_explain() reports as the run goes. */
struct okovm_explain_hooks {
    /* Before each instruction the program executes: its index in the
     * program, as okovm_prog_insn_source() takes it. */
    void (*insn)(void *aux, uint32_t insn);

    /* Before each call of a helper whose arguments are a map and a key
     * (bpf_map_lookup_elem(), bpf_map_update_elem(), bpf_map_delete_elem()):
     * the call's instruction, the helper's id (BPF_FUNC_*), the map's index
     * among the program's maps (okovm_prog_get_map()) and the key, of the
     * map's key size.  The hook may read the map, not change it. */
    void (*map_call)(void *aux, uint32_t insn, uint32_t helper,
                     uint32_t map_index, const void *key);

    void *aux;
};

/* Runs 'prog' once on 'pkt', like okovm_prog_run(), in an interpreter that
 * reports each instruction and map access to 'hooks' (not null; either
 * hook may be), and stores the verdict in '*verdict'.  The program's statistics do not count the run.
 * Returns 0, EINVAL for a program in sandbox mode (only the checked
 * interpreter may run those), or ENOMEM.  For tools that explain one
 * packet: a run is many times slower than okovm_prog_run(). */
int okovm_prog_explain(struct okovm_prog *prog, const void *pkt, size_t len,
                       uint32_t in_port,
                       const struct okovm_explain_hooks *hooks,
                       uint32_t *verdict);

/* Stores the source location of instruction 'insn' of 'prog', from the
 * program's BTF line information: the file, the line number and the text
 * of the line that the instruction, or the nearest instruction before it
 * that has a location, comes from.  Returns 1, or 0 if the program has no
 * line information there.  The strings live as long as 'prog'. */
int okovm_prog_insn_source(const struct okovm_prog *prog, uint32_t insn,
                           const char **file, uint32_t *line,
                           const char **text);

struct okovm_prog_info {
    char name[64];              /* Function name. */
    char section[64];           /* ELF section. */
    uint32_t n_insns;           /* Linked instructions (ld_imm64 = 2). */
    uint32_t mode;              /* enum okovm_exec_mode. */
    uint32_t n_maps;
    uint32_t kernel_verified;   /* 1 if the kernel admitted it. */
    uint64_t kernel_verify_ns;  /* Time the kernel admission took. */
    uint32_t kernel_strict;     /* 1 if the kernel checked it with its
                                 * strict (unprivileged) rules. */
    uint32_t jit;               /* 1 if it runs as native code. */
};

/* Fills 'info' for 'prog'. */
void okovm_prog_get_info(const struct okovm_prog *prog,
                         struct okovm_prog_info *info);

struct okovm_prog_stats {
    uint64_t runs;
    uint64_t verdicts[OKOVM_N_VERDICTS]; /* Runs that returned
                                          * XDP_ABORTED..XDP_REDIRECT (0..4);
                                          * the last: any other value. */
    uint64_t time_ns;           /* Estimated total run time: timed_ns
                                 * scaled up to all runs. */
    uint64_t timed_runs;        /* Runs actually timed... */
    uint64_t timed_ns;          /* ...and their total time. */
    uint64_t faults;            /* Sandbox runs stopped by a violation. */
};

/* Fills 'stats' with the counters of 'prog' (a consistent-enough sum of
 * per-thread counters). */
void okovm_prog_get_stats(const struct okovm_prog *prog,
                          struct okovm_prog_stats *stats);

/* Returns the raw BTF of the object 'prog' was loaded from, and stores its
 * size in '*size'.  The memory belongs to 'prog'. */
const void *okovm_prog_btf(const struct okovm_prog *prog, uint32_t *size);

/* Returns the number of maps of 'prog' (declared maps, then global data
 * sections such as ".rodata", ".data", ".bss"). */
uint32_t okovm_prog_n_maps(const struct okovm_prog *prog);

/* Returns map number 'idx' of 'prog', or NULL if out of range.  The
 * pointer is valid while 'prog' is; take okovm_map_ref() to keep it. */
struct okovm_map *okovm_prog_get_map(const struct okovm_prog *prog,
                                     uint32_t idx);

/* Returns the map of 'prog' named 'name', or NULL. Same lifetime rule as
 * okovm_prog_get_map(). */
struct okovm_map *okovm_prog_find_map(const struct okovm_prog *prog,
                                      const char *name);

/* Maps. */

struct okovm_map_info {
    char name[64];
    uint32_t type;              /* enum okovm_map_type. */
    uint32_t key_size;
    uint32_t value_size;
    uint32_t max_entries;
    uint32_t map_flags;
    uint32_t btf_key_type_id;   /* In okovm_map_btf(), 0 if none. */
    uint32_t btf_value_type_id;
    uint32_t pinned;            /* 1 if pinned by name. */
    uint32_t global_data;       /* 1 for .rodata/.data/.bss. */
    uint32_t n_entries;         /* Current element count. */
};

void okovm_map_ref(struct okovm_map *map);
void okovm_map_unref(struct okovm_map *map);

/* Fills 'info' for 'map'. */
void okovm_map_get_info(const struct okovm_map *map,
                        struct okovm_map_info *info);

/* Returns the raw BTF the type ids of 'map' refer to; stores its size in
 * '*size'.  Owned by 'map'. */
const void *okovm_map_btf(const struct okovm_map *map, uint32_t *size);

/* Copies the value stored under 'key' in 'map' into 'value' (value_size
 * bytes).  Returns 0 or ENOENT. */
int okovm_map_lookup(struct okovm_map *map, const void *key, void *value);

/* Stores 'value' under 'key' in 'map' according to 'flags'
 * (OKOVM_ANY, OKOVM_NOEXIST, OKOVM_EXIST).  Returns 0, EEXIST, ENOENT,
 * E2BIG (hash or array full / index out of range), ENOSPC (LPM trie full),
 * EINVAL (bad flags or prefix length) or ENOMEM.  Global-data maps of
 * '.rodata' are read-only (EPERM), as the kernel freezes them. */
int okovm_map_update(struct okovm_map *map, const void *key,
                     const void *value, uint64_t flags);

/* Deletes 'key' from 'map'.  Returns 0, ENOENT, or EINVAL for arrays. */
int okovm_map_delete(struct okovm_map *map, const void *key);

/* Stores in 'next_key' the key following 'key' in 'map' ('key' NULL or
 * absent: the first key).  Returns 0, or ENOENT after the last key. */
int okovm_map_get_next_key(struct okovm_map *map, const void *key,
                           void *next_key);

/* Removes every element of 'map' (arrays: zeroes every value).  Returns
 * 0, or EPERM for '.rodata'. */
int okovm_map_clear(struct okovm_map *map);

/* BTF: typed map keys and values.
 *
 * The codec that shows a key or value as JSON and reads it back, from raw
 * BTF (a program's ".BTF" section, okovm_prog_btf(), okovm_map_btf(), or
 * what the switch returns in its MAP_BTF replies) and a type id.  Integers
 * are numbers, in host byte order except under typedefs __be16/32/64 and
 * okopy_be16/32/64; typedefs okopy_ipv4_t, okopy_ipv6_t and okopy_mac_t
 * are address strings; arrays of char are strings, other arrays of bytes
 * hex, other arrays lists; structs and unions are objects (unnamed members
 * "_0", "_1"...); enums are the names of their values.  Encoding reads the
 * same shapes; integers may also be strings such as "0x1f", and what is
 * not given is zero.
 *
 * The BTF is not trusted: a malformed one (truncated, types referring to
 * types that do not exist, cycles, absurd sizes or nesting) is refused
 * with a message saying what is wrong.  A struct okovm_btf is read-only
 * once created: any number of threads may use it at once. */
struct okovm_btf;

/* Parses and checks the 'size' bytes of BTF at 'data' (copied) and stores
 * a new codec in '*btfp'.  Returns 0, or EINVAL (or ENOMEM) with 'err'
 * (NULL allowed) filled in. */
int okovm_btf_new(const void *data, size_t size, struct okovm_btf **btfp,
                  struct okovm_error *err);

/* Frees 'btf'.  NULL is allowed. */
void okovm_btf_destroy(struct okovm_btf *btf);

/* Stores in '*size' the size in bytes of type 'type_id' of 'btf'.  Returns
 * 0, or EINVAL if the type has none ('err' says why). */
int okovm_btf_type_size(const struct okovm_btf *btf, uint32_t type_id,
                        uint32_t *size, struct okovm_error *err);

/* Writes a C-like name of type 'type_id' of 'btf' ("struct flow_key",
 * "__u8[6]") into the 'size' bytes at 'buf', truncated if need be.
 * Returns 0, or ENOENT if there is no such type. */
int okovm_btf_type_name(const struct okovm_btf *btf, uint32_t type_id,
                        char *buf, size_t size);

/* Returns the id of the first type of 'btf' named 'name', or 0. */
uint32_t okovm_btf_find_type(const struct okovm_btf *btf, const char *name);

/* Decodes the 'size' bytes at 'data', a value of type 'type_id' of 'btf',
 * into NUL-terminated JSON text stored in '*json' (free it with
 * okovm_free()).  Returns 0, or EINVAL (the size is not the type's, or the
 * type cannot be shown: 'err' says why) or ENOMEM. */
int okovm_btf_decode(const struct okovm_btf *btf, uint32_t type_id,
                     const void *data, size_t size, char **json,
                     struct okovm_error *err);

/* The text forms of a value.  The same conventions (byte order, addresses,
 * strings, hex bytes, enum names) in two syntaxes:
 *
 *   OKOVM_BTF_JSON  {"saddr": "10.0.0.1", "sport": 53, "tag": "a\"b"}
 *   OKOVM_BTF_OVS   {saddr=10.0.0.1,sport=53,tag="a\"b"}
 *
 * The second is Open vSwitch's own, as ovs-ofctl prints flows: no quotes
 * around addresses, enum names and hex bytes; strings in double quotes
 * with \", \\ and \xHH escapes; floats with 9 (float) or 17 (double)
 * significant digits. */
enum okovm_btf_syntax {
    OKOVM_BTF_JSON = 0,
    OKOVM_BTF_OVS = 1,
};

/* As okovm_btf_decode(), in 'syntax'. */
int okovm_btf_format(const struct okovm_btf *btf, uint32_t type_id,
                     const void *data, size_t size,
                     enum okovm_btf_syntax syntax, char **text,
                     struct okovm_error *err);

/* Encodes the NUL-terminated JSON text 'json', a value of type 'type_id' of
 * 'btf', into the 'size' bytes at 'out' ('size' must be the type's).
 * Returns 0, or EINVAL with 'err->msg' naming the part of the value at
 * fault ("struct flow_key.sport: 70000 does not fit in 2 bytes"), or
 * ENOMEM.  On error the contents of 'out' are unspecified. */
int okovm_btf_encode(const struct okovm_btf *btf, uint32_t type_id,
                     const char *json, void *out, size_t size,
                     struct okovm_error *err);

/* As okovm_btf_encode(), for 'text' in 'syntax'.  Open vSwitch's syntax
 * reads what okovm_btf_format() writes in it: {name=value,...}, [a,b],
 * strings in double quotes, true and false; any other word up to the next
 * ',', ']' or '}' is read by the type it fills (an integer such as -5 or
 * 0x1f, a float, an address, an enum's name, hex bytes). */
int okovm_btf_parse(const struct okovm_btf *btf, uint32_t type_id,
                    const char *text, enum okovm_btf_syntax syntax,
                    void *out, size_t size, struct okovm_error *err);

/* A BTF-defined map (in SEC(".maps")) as the object declares it.  The
 * key and value sizes are those of their types when the map has them. */
struct okovm_btf_map_def {
    char name[256];
    uint32_t type;              /* enum okovm_map_type, or another. */
    uint32_t key_type_id;       /* 0 if none. */
    uint32_t value_type_id;
    uint32_t key_size;
    uint32_t value_size;
    uint32_t max_entries;
    uint32_t map_flags;
    uint32_t pinning;           /* 1: LIBBPF_PIN_BY_NAME. */
};

/* Stores in '*defs' a new array (free it with okovm_free()) of the maps
 * of the ".maps" section of 'btf', and their number in '*n' (0 and NULL
 * if there is none).  Returns 0, or EINVAL with 'err' filled in. */
int okovm_btf_map_defs(const struct okovm_btf *btf,
                       struct okovm_btf_map_def **defs, uint32_t *n,
                       struct okovm_error *err);

/* Frees memory that a libokovm function returned to the caller.  NULL is
 * allowed. */
void okovm_free(void *p);

/* Library. */

/* Returns the library version as "MAJOR.MINOR.PATCH". */
const char *okovm_version(void);

#ifdef __cplusplus
}
#endif

#endif /* okovm.h */
