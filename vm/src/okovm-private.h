/*
 * okovm-private.h -- internal structures shared by the modules of
 * libokovm: namespaces, maps, programs, the run context, the pre-decoded
 * instruction form and the interfaces between loader, verifier, decoder
 * and interpreter.  Not installed; not part of the ABI.
 *
 * Everything declared here has hidden visibility: the modules of the
 * library (and the test-only archive, linked statically with it) can call
 * it, but libokovm.so never exports it, whatever its version script
 * says.
 */

#ifndef OKOVM_PRIVATE_H
#define OKOVM_PRIVATE_H 1

#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <linux/bpf.h>

#include "okovm.h"

#pragma GCC visibility push(hidden)

#define OKOVM_STACK_SIZE 512
#define OKOVM_MAX_FRAMES 8
#define OKOVM_MAX_INSNS 1000000
#define OKOVM_DEFAULT_BUDGET 1000000
#define OKOVM_STATS_SHARDS 16
#define OKOVM_MAX_GRANTS 64
#define OKOVM_NAME_LEN 64

#define OKOVM_LIKELY(x) __builtin_expect(!!(x), 1)
#define OKOVM_UNLIKELY(x) __builtin_expect(!!(x), 0)
#define OKOVM_ROUND_UP(x, y) (((x) + (y) - 1) / (y) * (y))

/* Internal map-relocation encoding in linked instructions: ld_imm64 with
 * src_reg BPF_PSEUDO_MAP_FD or BPF_PSEUDO_MAP_VALUE carries the index of
 * the map in the program's map table in 'imm' (and the value offset in the
 * second half's 'imm'). */

/* Deferred-free node, embedded in objects freed after a grace period. */
struct okovm_deferred {
    struct okovm_deferred *next;
    void (*fn)(void *);
    void *arg;
};

struct okovm_pin {
    char name[OKOVM_NAME_LEN];
    struct okovm_map *map;
};

struct okovm_ns {
    atomic_uint refs;
    char name[OKOVM_NAME_LEN];

    pthread_mutex_t mutex;          /* Protects 'pins'. */
    struct okovm_pin *pins;
    size_t n_pins;
    size_t alloc_pins;

    /* Hooks, set before use. */
    okovm_defer_fn *defer_fn;
    void *defer_aux;
    okovm_log_fn *log_fn;
    void *log_aux;
    okovm_clock_fn *clock_fn;
    void *clock_aux;
    atomic_bool clock_fixed;
    _Atomic uint64_t fixed_ns;

    _Atomic uint64_t prng_seed;
    _Atomic uint64_t prng_ctr;
    atomic_uint timing_mask;        /* UINT32_MAX: timing off. */

    /* Two-epoch reclamation, used when 'defer_fn' is NULL. */
    atomic_uint epoch;
    atomic_uint active[2];
    pthread_mutex_t defer_mutex;
    struct okovm_deferred *limbo[2];

    /* bpf_trace_printk() and fault-log rate limiting. */
    pthread_mutex_t log_mutex;
    uint32_t per_sec;
    uint32_t burst;
    uint64_t tokens_milli;          /* Tokens times 1000. */
    uint64_t last_refill_ns;
    uint64_t suppressed;
};

/* A hash-table element (HASH, LRU_HASH, LPM_TRIE). */
struct okovm_elem {
    _Atomic(struct okovm_elem *) next;  /* Bucket chain, read lock-free. */
    struct okovm_elem *lru_prev;        /* LRU list, under map mutex. */
    struct okovm_elem *lru_next;
    uint32_t hash;
    atomic_uchar ref;                   /* LRU second-chance bit. */
    struct okovm_deferred dn;
    uint64_t data[];                    /* Key (8-aligned), then value. */
};

/* A program's lookup in a map of a given type and key size. */
typedef void *okovm_map_lookup_fn(struct okovm_map *, const void *key);

struct okovm_map {
    atomic_uint refs;
    struct okovm_ns *ns;
    char name[OKOVM_NAME_LEN];
    uint32_t type;
    uint32_t key_size;
    uint32_t value_size;
    uint32_t max_entries;
    uint32_t map_flags;
    uint32_t btf_key_type_id;
    uint32_t btf_value_type_id;
    void *btf;
    uint32_t btf_size;
    bool pinned;
    bool global_data;
    bool rdonly;                    /* .rodata: frozen. */

    pthread_mutex_t mutex;          /* Serializes writers. */
    atomic_uint count;

    /* ARRAY. */
    uint32_t value_stride;
    uint8_t *values;

    /* HASH, LRU_HASH, LPM_TRIE. */
    _Atomic(struct okovm_elem *) *buckets;
    uint32_t bucket_mask;
    uint64_t seed;
    uint32_t key_off_value;         /* Offset of the value in 'data'. */
    struct okovm_elem lru;          /* LRU list head (most recent first). */
    okovm_map_lookup_fn *lookup;    /* HASH, LRU_HASH: for the key size. */

    /* LPM_TRIE. */
    uint32_t max_prefixlen;
    _Atomic uint64_t *plen_bits;    /* Bit n set: prefixes of length n. */
    uint32_t *plen_count;
};

/* Pre-decoded instruction.  ld_imm64 keeps two slots so that jump offsets
 * are unchanged; its 64-bit value is stored in the second slot. */
struct okovm_xinsn {
    union {
        const void *op;
        uint64_t imm64;
    };
    uint8_t dst;
    uint8_t src;
    int16_t off;
    int32_t imm;
};

/* 'struct xdp_md' as programs address it: u32 fields at 4-byte steps, the
 * first OKOVM_XDP_MD_PTR_END bytes pointers (data, data_end, data_meta). */
#define OKOVM_XDP_MD_SIZE 24
#define OKOVM_XDP_MD_PTR_END 12

/* The offset in 'struct okovm_xdp_ctx' of byte 'off' of 'struct xdp_md':
 * fields widen to 8-byte slots, narrow loads keep their byte offset in the
 * (little-endian) slot. */
static inline int32_t
okovm_xdp_ctx_offset(int32_t off)
{
    return off / 4 * 8 + off % 4;
}

/* The context the program sees, 64-bit wide: loads of 'struct xdp_md'
 * fields are rewritten at load time to these slots. */
struct okovm_xdp_ctx {
    uint64_t data;
    uint64_t data_end;
    uint64_t data_meta;
    uint64_t ingress_ifindex;
    uint64_t rx_queue_index;
    uint64_t egress_ifindex;
};

struct okovm_grant {
    uint64_t lo;
    uint64_t hi;
    bool writable;
};

/* Per-run state, on the caller's stack. */
struct okovm_run {
    const struct okovm_prog *prog;
    struct okovm_ns *ns;
    struct okovm_xdp_ctx ctx;
    uint64_t now_ns;            /* What bpf_ktime_get_ns() returns, if
                                 * nonzero and 'ns' has no clock hook. */

    /* Sandbox only. */
    uint64_t stack_lo;
    uint64_t stack_hi;
    uint32_t n_grants;
    struct okovm_grant grants[OKOVM_MAX_GRANTS];
    const char *fault;
    int32_t fault_insn;

    /* JIT only: the machine stack pointer to unwind to. */
    uint64_t jit_rsp;

    /* okovm_prog_explain() only: the program decoded for its interpreter,
     * and the caller's hooks. */
    const struct okovm_xinsn *code;
    const struct okovm_explain_hooks *hooks;
};

struct okovm_stats_shard {
    _Atomic uint64_t verdicts[OKOVM_N_VERDICTS];
    _Atomic uint64_t timed_runs;
    _Atomic uint64_t timed_ns;
    _Atomic uint64_t faults;
    atomic_uint tick;               /* Runs begun, for sampled timing. */
} __attribute__((aligned(64)));

/* Line information of the linked program. */
struct okovm_line {
    uint32_t insn;
    uint32_t file_off;
    uint32_t line_off;
    uint32_t line_col;
};

struct btf;

/* What runs a program: chosen once, by okovm_prog_finish(). */
enum okovm_engine {
    OKOVM_ENGINE_SANDBOX,           /* The checked interpreter: programs
                                     * the kernel did not verify. */
    OKOVM_ENGINE_INTERP,            /* The unchecked interpreter. */
    OKOVM_ENGINE_JIT,               /* Native code. */
};

struct okovm_prog {
    atomic_uint refs;
    struct okovm_ns *ns;
    char name[OKOVM_NAME_LEN];
    char section[OKOVM_NAME_LEN];
    uint32_t mode;
    bool kernel_verified;
    bool kernel_strict;             /* Checked with unprivileged rules. */
    uint32_t zero_stack;            /* Bytes of stack to zero per run. */
    uint64_t kernel_ns;
    uint32_t budget;

    uint32_t n_insns;
    struct bpf_insn *insns;         /* Linked instructions. */
    struct okovm_xinsn *code;       /* Pre-decoded. */

    /* The engine, and its entry point: every run calls 'exec'. */
    enum okovm_engine engine;
    uint64_t (*exec)(const struct okovm_prog *, struct okovm_run *);
    bool no_jit;                    /* OKOVM_LOAD_NO_JIT. */
    bool no_slots;                  /* Decode without register slots
                                     * (only the test archive sets it). */
    void *jit_code;                 /* Native code (jit.c), or NULL. */
    size_t jit_size;
    uint64_t (*jit_fn)(struct okovm_run *, uint64_t stack_top);

    uint32_t n_maps;
    struct okovm_map **maps;

    void *btf_raw;
    uint32_t btf_size;
    struct btf *btf;                /* For line-info strings. */
    uint32_t n_lines;
    struct okovm_line *lines;

    struct okovm_stats_shard stats[OKOVM_STATS_SHARDS];
};

/* Result of the structural verifier used by the decoder. */
enum okovm_ctx_access {
    OKOVM_CTX_NONE = 0,             /* Not a context access. */
    OKOVM_CTX_REWRITE = 1,          /* Always the context: rewritten. */
    OKOVM_CTX_DYNAMIC = 2,          /* Maybe the context: checked. */
};

struct okovm_vinfo {
    uint8_t *ctx_access;            /* One per instruction. */
    bool has_back_edge;
    uint32_t max_depth;
    uint32_t stack_depth;           /* Deepest constant stack offset. */
    bool var_stack;                 /* Stack reached at unknown offsets. */
};

/* error.c */
void okovm_error_clear(struct okovm_error *);
int okovm_error_set(struct okovm_error *, int code, int insn,
                    const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
void okovm_error_add_log(struct okovm_error *, const char *log);
void okovm_error_locate(struct okovm_error *, const struct okovm_prog *);
void okovm_format_location(const struct okovm_prog *, int insn,
                           char *buf, size_t size);

/* ns.c */
void okovm_ns_ref(struct okovm_ns *);
void okovm_ns_unref(struct okovm_ns *);
void okovm_ns_defer_free(struct okovm_ns *, struct okovm_deferred *,
                         void (*fn)(void *), void *arg);
unsigned okovm_ns_enter(struct okovm_ns *);
void okovm_ns_exit(struct okovm_ns *, unsigned epoch);
uint64_t okovm_ns_now(struct okovm_ns *, uint64_t hint);
uint32_t okovm_ns_prandom(struct okovm_ns *);
void okovm_ns_log(struct okovm_ns *, int level, bool rate_limited,
                  const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
int okovm_ns_bind_pinned(struct okovm_ns *, struct okovm_map *tmpl,
                         struct okovm_map **mapp, char *why, size_t);

/* map.c */
int okovm_map_create(struct okovm_ns *, const char *name, uint32_t type,
                     uint32_t key_size, uint32_t value_size,
                     uint32_t max_entries, uint32_t map_flags,
                     struct okovm_map **mapp, char *why, size_t why_size);
bool okovm_map_same_def(const struct okovm_map *, const struct okovm_map *);
void *okovm_map_lookup_elem(struct okovm_map *, const void *key);
int okovm_map_update_elem(struct okovm_map *, const void *key,
                          const void *value, uint64_t flags);
int okovm_map_delete_elem(struct okovm_map *, const void *key);

/* helpers.c: the helpers programs may call, one table read by the
 * verifier, the decoder, the interpreters, the JIT and kernel admission
 * (the kernel's 'struct bpf_func_proto'). */

/* What a helper argument must be.  The sandbox checks each at run time;
 * the structural verifier checks the stack buffers it can see. */
enum okovm_arg {
    OKOVM_ARG_NONE = 0,         /* No argument here or after. */
    OKOVM_ARG_ANYTHING,         /* Any value. */
    OKOVM_ARG_MAP,              /* A map of the program. */
    OKOVM_ARG_MAP_KEY,          /* Readable key of the map argument. */
    OKOVM_ARG_MAP_VALUE,        /* Readable value of the map argument. */
    OKOVM_ARG_MEM,              /* Readable memory, size in the next
                                 * argument (at least one byte). */
    OKOVM_ARG_MEM_SIZE,         /* Size of the OKOVM_ARG_MEM before it. */
};

/* What a helper returns. */
enum okovm_ret {
    OKOVM_RET_INTEGER = 0,      /* A scalar. */
    OKOVM_RET_MAP_VALUE_OR_NULL,    /* A value of the map argument (the
                                     * sandbox lets the program use it) or
                                     * NULL. */
};

/* A helper's C function: BPF's R1-R5, then the run.  The JIT calls it
 * with the arguments already in place (System V: the run is the sixth). */
typedef uint64_t okovm_helper_fn(uint64_t r1, uint64_t r2, uint64_t r3,
                                 uint64_t r4, uint64_t r5,
                                 struct okovm_run *);

struct okovm_helper {
    int32_t id;                 /* BPF_FUNC_*, the kernel's id. */
    const char *name;           /* Without "bpf_". */
    okovm_helper_fn *fn;
    enum okovm_arg args[5];     /* R1-R5. */
    enum okovm_ret ret;

    /* Kernel admission: nonzero for a helper only privileged
     * (CAP_PERFMON) programs may call, which the strict check therefore
     * sees as a call of this helper instead; the stand-in takes no
     * arguments and returns a scalar. */
    int32_t strict_stand_in;
};

extern const struct okovm_helper okovm_helpers[];
extern const size_t okovm_n_helpers;
int okovm_helper_index(int32_t id);
const struct okovm_helper *okovm_helper_find(int32_t id);

/* verify.c */
struct okovm_verify_opts {
    uint32_t n_maps;
    const struct okovm_map *const *maps;
    bool allow_back_edges;
};
int okovm_verify(const struct bpf_insn *, uint32_t n,
                 const struct okovm_verify_opts *, struct okovm_vinfo *,
                 struct okovm_error *);
void okovm_vinfo_free(struct okovm_vinfo *);

/* decode.c */
int okovm_decode(struct okovm_prog *, const struct okovm_vinfo *,
                 const void *const *labels, struct okovm_xinsn **codep,
                 struct okovm_error *);

/* The engines' entry points ('prog->exec') and, for the decoder, the
 * interpreters' handler addresses.
 *
 * interp-fast.c, interp-sandbox.c */
uint64_t okovm_exec_fast(const struct okovm_prog *, struct okovm_run *);
uint64_t okovm_exec_sandbox(const struct okovm_prog *, struct okovm_run *);
const void *const *okovm_exec_fast_labels(void);
const void *const *okovm_exec_sandbox_labels(void);
uint64_t okovm_exec_explain(const struct okovm_prog *, struct okovm_run *);
const void *const *okovm_exec_explain_labels(void);

/* jit.c */
int okovm_jit_compile(struct okovm_prog *, const struct okovm_vinfo *);
uint64_t okovm_exec_jit(const struct okovm_prog *, struct okovm_run *);
void okovm_jit_free(struct okovm_prog *);

/* elf.c */
struct okovm_object;
struct okovm_linked {
    struct bpf_insn *insns;
    uint32_t n_insns;
    struct okovm_line *lines;
    uint32_t n_lines;
    char name[OKOVM_NAME_LEN];
    char section[OKOVM_NAME_LEN];
};
int okovm_object_open(const void *elf, size_t len,
                      struct okovm_object **, struct okovm_error *);
void okovm_object_close(struct okovm_object *);
int okovm_object_link(struct okovm_object *,
                      const struct okovm_load_opts *,
                      struct okovm_linked *, struct okovm_error *);
uint32_t okovm_object_n_maps(const struct okovm_object *);
int okovm_object_make_map(struct okovm_object *, struct okovm_ns *,
                          uint32_t idx, struct okovm_map **,
                          struct okovm_error *);
const void *okovm_object_btf(const struct okovm_object *, uint32_t *size);
void okovm_linked_free(struct okovm_linked *);
void okovm_libbpf_capture_begin(char *buf, size_t size);
void okovm_libbpf_capture_end(void);

/* btf-codec.c: the checks every BTF passes before anything walks it. */
int okovm_btf_validate(const void *data, size_t size, struct btf **btfp,
                       char *why, size_t why_size);

/* kernel.c */
struct okovm_admit_req {
    const void *elf;                /* The object, 'len' bytes. */
    size_t len;
    const char *section;            /* Program to check. */
    const char *prog_name;
    struct okovm_map *const *globals;   /* Global-data maps whose contents */
    uint32_t n_globals;                 /* become the initial values. */
    bool allow_lenient;             /* Accept a privileged (lenient) check
                                     * if privileges cannot be dropped. */
};
int okovm_kernel_admit(const struct okovm_admit_req *, bool *strictp,
                       char *why, size_t why_size, uint64_t *elapsed_ns,
                       struct okovm_error *);

/* prog.c
 *
 * The internal constructor: okovm_prog_alloc() returns an empty program;
 * the caller fills in its instructions, maps and 'mode', then
 * okovm_prog_finish() verifies it and chooses its engine (the sandbox in
 * OKOVM_MODE_SANDBOX, native code or the interpreter otherwise).  In the
 * library only okovm_prog_load() calls them, and it sets
 * OKOVM_MODE_VERIFIED only after okovm_kernel_admit() succeeded: that is
 * the one way the public API reaches a verified program.  The test
 * archive (vm/testing) uses them to load hand-assembled instructions. */
int okovm_prog_finish(struct okovm_prog *, bool allow_back_edges,
                      struct okovm_error *);
struct okovm_prog *okovm_prog_alloc(struct okovm_ns *);

#pragma GCC visibility pop

#endif /* okovm-private.h */
