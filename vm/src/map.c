/*
 * map.c -- BPF maps with the kernel's semantics: HASH, LRU_HASH, ARRAY and
 * LPM_TRIE.
 *
 * Concurrency: lookups (from programs and the control plane) never take a
 * lock; writers serialize on the map's mutex.  Hash elements are never
 * modified in place by an update: a new element replaces the old one in
 * its bucket chain and the old one is freed after a grace period
 * (okovm_ns_defer_free()), so a program holding a value pointer keeps
 * valid memory, as under the kernel's RCU.  Array values are written in
 * place (torn reads are possible, as in the kernel).
 *
 * LPM_TRIE is a hash of masked prefixes per prefix length plus a bitmap of
 * the lengths in use; a lookup probes the lengths present, longest first.
 * Stored keys are canonical (bits past the prefix length are zero).
 */

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "okovm-private.h"

#define LPM_DATA_MAX 256

static bool
is_hash(const struct okovm_map *map)
{
    return map->type != BPF_MAP_TYPE_ARRAY;
}

/* Inlined everywhere, so that a constant 'n' (see hash_lookup_n()) unrolls
 * it. */
static inline __attribute__((always_inline)) uint32_t
hash_bytes(const void *p, uint32_t n, uint64_t seed)
{
    const uint8_t *b = p;
    uint64_t h = seed ^ ((uint64_t) n * 0x9e3779b97f4a7c15ull);
    uint64_t w;

    while (n >= 8) {
        memcpy(&w, b, 8);
        h = (h ^ w) * 0xff51afd7ed558ccdull;
        h ^= h >> 32;
        b += 8;
        n -= 8;
    }
    w = 0;
    memcpy(&w, b, n);
    h = (h ^ w) * 0xc4ceb9fe1a85ec53ull;
    h ^= h >> 29;
    h *= 0xff51afd7ed558ccdull;
    h ^= h >> 32;
    return (uint32_t) h;
}

static void *
elem_key(struct okovm_elem *e)
{
    return e->data;
}

static void *
elem_value(const struct okovm_map *map, struct okovm_elem *e)
{
    return (uint8_t *) e->data + map->key_off_value;
}

static okovm_map_lookup_fn *lookup_fn_for(const struct okovm_map *);

/* Creates a map in '*mapp'.  On failure returns a positive errno and
 * writes the reason in 'why'. */
int
okovm_map_create(struct okovm_ns *ns, const char *name, uint32_t type,
                 uint32_t key_size, uint32_t value_size,
                 uint32_t max_entries, uint32_t map_flags,
                 struct okovm_map **mapp, char *why, size_t why_size)
{
    struct okovm_map *map;

    *mapp = NULL;
    if (!key_size || !value_size || !max_entries) {
        snprintf(why, why_size, "map '%s': key_size, value_size and "
                 "max_entries must be nonzero", name);
        return EINVAL;
    }
    if (value_size > (1u << 20) || key_size > 512
        || max_entries > (1u << 24)) {
        snprintf(why, why_size, "map '%s': too large (key %u, value %u, "
                 "max_entries %u)", name, key_size, value_size,
                 max_entries);
        return E2BIG;
    }
    switch (type) {
    case BPF_MAP_TYPE_ARRAY:
        if (key_size != 4) {
            snprintf(why, why_size, "array map '%s': key_size must be 4",
                     name);
            return EINVAL;
        }
        if ((uint64_t) max_entries * OKOVM_ROUND_UP(value_size, 8)
            > (1u << 30)) {
            snprintf(why, why_size, "array map '%s' too large", name);
            return E2BIG;
        }
        break;
    case BPF_MAP_TYPE_HASH:
    case BPF_MAP_TYPE_LRU_HASH:
        break;
    case BPF_MAP_TYPE_LPM_TRIE:
        if (!(map_flags & BPF_F_NO_PREALLOC)) {
            snprintf(why, why_size, "LPM trie map '%s' requires "
                     "BPF_F_NO_PREALLOC", name);
            return EINVAL;
        }
        if (key_size < 5 || key_size > 4 + LPM_DATA_MAX) {
            snprintf(why, why_size, "LPM trie map '%s': key_size must be "
                     "5..260", name);
            return EINVAL;
        }
        break;
    default:
        snprintf(why, why_size, "map '%s' has unsupported type %u "
                 "(supported: HASH, ARRAY, LRU_HASH, LPM_TRIE)",
                 name, type);
        return EINVAL;
    }

    map = calloc(1, sizeof *map);
    if (!map) {
        goto nomem;
    }
    atomic_init(&map->refs, 1);
    map->ns = ns;
    snprintf(map->name, sizeof map->name, "%s", name);
    map->type = type;
    map->key_size = key_size;
    map->value_size = value_size;
    map->max_entries = max_entries;
    map->map_flags = map_flags;
    pthread_mutex_init(&map->mutex, NULL);
    map->seed = ((uint64_t) okovm_ns_prandom(ns) << 32)
                | okovm_ns_prandom(ns);
    map->lru.lru_next = map->lru.lru_prev = &map->lru;

    if (type == BPF_MAP_TYPE_ARRAY) {
        map->value_stride = OKOVM_ROUND_UP(value_size, 8);
        map->values = aligned_alloc(64, OKOVM_ROUND_UP(
                                        (size_t) map->value_stride
                                        * max_entries, 64));
        if (!map->values) {
            goto nomem;
        }
        memset(map->values, 0, (size_t) map->value_stride * max_entries);
        atomic_init(&map->count, max_entries);
    } else {
        uint32_t n = 1;

        while (n < max_entries && n < (1u << 20)) {
            n <<= 1;
        }
        map->bucket_mask = n - 1;
        map->buckets = calloc(n, sizeof *map->buckets);
        map->key_off_value = OKOVM_ROUND_UP(key_size, 8);
        map->lookup = lookup_fn_for(map);
        if (!map->buckets) {
            goto nomem;
        }
        if (type == BPF_MAP_TYPE_LPM_TRIE) {
            map->max_prefixlen = (key_size - 4) * 8;
            map->plen_bits = calloc(map->max_prefixlen / 64 + 1,
                                    sizeof *map->plen_bits);
            map->plen_count = calloc(map->max_prefixlen + 1,
                                     sizeof *map->plen_count);
            if (!map->plen_bits || !map->plen_count) {
                goto nomem;
            }
        }
    }
    okovm_ns_ref(ns);
    *mapp = map;
    return 0;

nomem:
    if (map) {
        free(map->values);
        free(map->buckets);
        free(map->plen_bits);
        free(map->plen_count);
        free(map);
    }
    snprintf(why, why_size, "out of memory creating map '%s'", name);
    return ENOMEM;
}

/* Returns true if 'a' and 'b' have the same definition (for sharing a
 * pinned map). */
bool
okovm_map_same_def(const struct okovm_map *a, const struct okovm_map *b)
{
    return (a->type == b->type && a->key_size == b->key_size
            && a->value_size == b->value_size
            && a->max_entries == b->max_entries
            && a->map_flags == b->map_flags);
}

void
okovm_map_ref(struct okovm_map *map)
{
    atomic_fetch_add(&map->refs, 1);
}

/* Drops a reference to 'map'.  The last reference frees it immediately:
 * by then no program refers to it, so no run can reach it. */
void
okovm_map_unref(struct okovm_map *map)
{
    struct okovm_ns *ns;

    if (!map || atomic_fetch_sub(&map->refs, 1) != 1) {
        return;
    }
    if (map->buckets) {
        uint32_t i;

        for (i = 0; i <= map->bucket_mask; i++) {
            struct okovm_elem *e = atomic_load(&map->buckets[i]);

            while (e) {
                struct okovm_elem *next = atomic_load(&e->next);

                free(e);
                e = next;
            }
        }
    }
    ns = map->ns;
    free(map->buckets);
    free(map->values);
    free(map->plen_bits);
    free(map->plen_count);
    free(map->btf);
    pthread_mutex_destroy(&map->mutex);
    free(map);
    okovm_ns_unref(ns);
}

void
okovm_map_get_info(const struct okovm_map *map, struct okovm_map_info *info)
{
    memset(info, 0, sizeof *info);
    snprintf(info->name, sizeof info->name, "%s", map->name);
    info->type = map->type;
    info->key_size = map->key_size;
    info->value_size = map->value_size;
    info->max_entries = map->max_entries;
    info->map_flags = map->map_flags;
    info->btf_key_type_id = map->btf_key_type_id;
    info->btf_value_type_id = map->btf_value_type_id;
    info->pinned = map->pinned;
    info->global_data = map->global_data;
    info->n_entries = atomic_load_explicit(&map->count,
                                           memory_order_relaxed);
}

const void *
okovm_map_btf(const struct okovm_map *map, uint32_t *size)
{
    *size = map->btf_size;
    return map->btf;
}

/* Hash tables. */

/* Finds 'key', of 'n' bytes, whose hash is 'hash', lock-free; with 'n' a
 * constant the comparisons are unrolled. */
static inline __attribute__((always_inline)) struct okovm_elem *
hash_find_n(struct okovm_map *map, const void *key, uint32_t hash,
            uint32_t n)
{
    struct okovm_elem *e;

    e = atomic_load_explicit(&map->buckets[hash & map->bucket_mask],
                             memory_order_acquire);
    for (; e; e = atomic_load_explicit(&e->next, memory_order_acquire)) {
        if (e->hash == hash && !memcmp(e->data, key, n)) {
            return e;
        }
    }
    return NULL;
}

static struct okovm_elem *
hash_find(struct okovm_map *map, const void *key, uint32_t hash)
{
    return hash_find_n(map, key, hash, map->key_size);
}

/* hash_find() of 'key', of 'n' bytes, hashing it first. */
static inline __attribute__((always_inline)) struct okovm_elem *
hash_lookup_n(struct okovm_map *map, const void *key, uint32_t n)
{
    return hash_find_n(map, key, hash_bytes(key, n, map->seed), n);
}

/* The value of element 'e' of hash map 'map' for a lookup from a program,
 * or NULL: a lookup marks an LRU element as referenced. */
static inline __attribute__((always_inline)) void *
hash_lookup_result(struct okovm_map *map, struct okovm_elem *e)
{
    if (!e) {
        return NULL;
    }
    if (map->type == BPF_MAP_TYPE_LRU_HASH
        && !atomic_load_explicit(&e->ref, memory_order_relaxed)) {
        atomic_store_explicit(&e->ref, 1, memory_order_relaxed);
    }
    return elem_value(map, e);
}

/* Lookups in hash maps with keys of the usual sizes (addresses, ports,
 * 5-tuples), each with the hash and the comparisons unrolled: a lookup is
 * on every packet's path. */
#define HASH_LOOKUP(N)                                              \
    static void *                                                   \
    hash_lookup_##N(struct okovm_map *map, const void *key)         \
    {                                                               \
        return hash_lookup_result(map, hash_lookup_n(map, key, N)); \
    }
HASH_LOOKUP(4)
HASH_LOOKUP(8)
HASH_LOOKUP(12)
HASH_LOOKUP(16)
HASH_LOOKUP(20)
HASH_LOOKUP(24)
HASH_LOOKUP(32)
HASH_LOOKUP(40)
#undef HASH_LOOKUP

static void *
hash_lookup_any(struct okovm_map *map, const void *key)
{
    return hash_lookup_result(map,
                              hash_lookup_n(map, key, map->key_size));
}

/* Returns the function that does okovm_map_lookup_elem() for 'map', a hash
 * map (BPF_MAP_TYPE_HASH or LRU_HASH), or NULL for other types; stored in
 * 'map->lookup', which the JIT calls directly where it knows the map. */
static okovm_map_lookup_fn *
lookup_fn_for(const struct okovm_map *map)
{
    if (map->type != BPF_MAP_TYPE_HASH
        && map->type != BPF_MAP_TYPE_LRU_HASH) {
        return NULL;
    }
    switch (map->key_size) {
    case 4: return hash_lookup_4;
    case 8: return hash_lookup_8;
    case 12: return hash_lookup_12;
    case 16: return hash_lookup_16;
    case 20: return hash_lookup_20;
    case 24: return hash_lookup_24;
    case 32: return hash_lookup_32;
    case 40: return hash_lookup_40;
    default: return hash_lookup_any;
    }
}

/* Finds 'key' with the mutex held; stores in '*linkp' the pointer that
 * points to the element (or to the bucket head when absent). */
static struct okovm_elem *
hash_find_locked(struct okovm_map *map, const void *key, uint32_t hash,
                 _Atomic(struct okovm_elem *) **linkp)
{
    _Atomic(struct okovm_elem *) *link;
    struct okovm_elem *e;

    link = &map->buckets[hash & map->bucket_mask];
    *linkp = link;
    while ((e = atomic_load_explicit(link, memory_order_relaxed))) {
        if (e->hash == hash && !memcmp(e->data, key, map->key_size)) {
            *linkp = link;
            return e;
        }
        link = &e->next;
    }
    return NULL;
}

static void
lru_unlink(struct okovm_elem *e)
{
    e->lru_prev->lru_next = e->lru_next;
    e->lru_next->lru_prev = e->lru_prev;
}

static void
lru_push_head(struct okovm_map *map, struct okovm_elem *e)
{
    e->lru_next = map->lru.lru_next;
    e->lru_prev = &map->lru;
    map->lru.lru_next->lru_prev = e;
    map->lru.lru_next = e;
}

static void
elem_retire(struct okovm_map *map, struct okovm_elem *e)
{
    okovm_ns_defer_free(map->ns, &e->dn, free, e);
}

static void
lpm_plen_add(struct okovm_map *map, uint32_t plen, int delta)
{
    uint32_t c = map->plen_count[plen] += delta;
    uint64_t bit = 1ull << (plen % 64);

    if (c == 1 && delta > 0) {
        atomic_fetch_or(&map->plen_bits[plen / 64], bit);
    } else if (!c) {
        atomic_fetch_and(&map->plen_bits[plen / 64], ~bit);
    }
}

static uint32_t
lpm_plen(const void *key)
{
    uint32_t plen;

    memcpy(&plen, key, 4);
    return plen;
}

/* Unlinks 'e', found through 'link', with the mutex held. */
static void
hash_unlink(struct okovm_map *map, _Atomic(struct okovm_elem *) *link,
            struct okovm_elem *e)
{
    atomic_store_explicit(link, atomic_load(&e->next),
                          memory_order_release);
    if (map->type == BPF_MAP_TYPE_LRU_HASH) {
        lru_unlink(e);
    } else if (map->type == BPF_MAP_TYPE_LPM_TRIE) {
        lpm_plen_add(map, lpm_plen(elem_key(e)), -1);
    }
    atomic_fetch_sub_explicit(&map->count, 1, memory_order_relaxed);
    elem_retire(map, e);
}

/* Evicts one element of LRU map 'map' (mutex held), giving elements whose
 * reference bit is set a second chance.  Returns false if empty. */
static bool
lru_evict(struct okovm_map *map)
{
    uint32_t tries = 2 * atomic_load(&map->count) + 2;

    while (tries-- && map->lru.lru_prev != &map->lru) {
        struct okovm_elem *e = map->lru.lru_prev;
        _Atomic(struct okovm_elem *) *link;

        if (atomic_load_explicit(&e->ref, memory_order_relaxed)
            && tries > 1) {
            atomic_store_explicit(&e->ref, 0, memory_order_relaxed);
            lru_unlink(e);
            lru_push_head(map, e);
            continue;
        }
        hash_find_locked(map, elem_key(e), e->hash, &link);
        hash_unlink(map, link, e);
        return true;
    }
    return false;
}

static int
hash_update(struct okovm_map *map, const void *key, const void *value,
            uint64_t flags)
{
    _Atomic(struct okovm_elem *) *link;
    struct okovm_elem *old, *e;
    uint32_t hash = hash_bytes(key, map->key_size, map->seed);
    size_t vsize = OKOVM_ROUND_UP(map->value_size, 8);

    e = malloc(sizeof *e + map->key_off_value + vsize);
    if (!e) {
        return ENOMEM;
    }
    memset(e, 0, sizeof *e + map->key_off_value + vsize);
    memcpy(e->data, key, map->key_size);
    memcpy(elem_value(map, e), value, map->value_size);
    e->hash = hash;

    pthread_mutex_lock(&map->mutex);
    old = hash_find_locked(map, key, hash, &link);
    if (old && flags == BPF_NOEXIST) {
        pthread_mutex_unlock(&map->mutex);
        free(e);
        return EEXIST;
    }
    if (!old && flags == BPF_EXIST) {
        pthread_mutex_unlock(&map->mutex);
        free(e);
        return ENOENT;
    }
    if (!old && atomic_load(&map->count) >= map->max_entries) {
        if (map->type != BPF_MAP_TYPE_LRU_HASH || !lru_evict(map)) {
            pthread_mutex_unlock(&map->mutex);
            free(e);
            return map->type == BPF_MAP_TYPE_LPM_TRIE ? ENOSPC : E2BIG;
        }
        /* Eviction may have changed the chain. */
        hash_find_locked(map, key, hash, &link);
    }
    if (old) {
        atomic_store_explicit(&e->next, atomic_load(&old->next),
                              memory_order_relaxed);
        atomic_store_explicit(link, e, memory_order_release);
        if (map->type == BPF_MAP_TYPE_LRU_HASH) {
            lru_unlink(old);
            lru_push_head(map, e);
        }
        elem_retire(map, old);
    } else {
        atomic_store_explicit(&e->next, atomic_load(link),
                              memory_order_relaxed);
        atomic_store_explicit(link, e, memory_order_release);
        atomic_fetch_add_explicit(&map->count, 1, memory_order_relaxed);
        if (map->type == BPF_MAP_TYPE_LRU_HASH) {
            lru_push_head(map, e);
        } else if (map->type == BPF_MAP_TYPE_LPM_TRIE) {
            lpm_plen_add(map, lpm_plen(key), 1);
        }
    }
    pthread_mutex_unlock(&map->mutex);
    return 0;
}

static int
hash_delete(struct okovm_map *map, const void *key)
{
    _Atomic(struct okovm_elem *) *link;
    struct okovm_elem *e;
    uint32_t hash = hash_bytes(key, map->key_size, map->seed);

    pthread_mutex_lock(&map->mutex);
    e = hash_find_locked(map, key, hash, &link);
    if (e) {
        hash_unlink(map, link, e);
    }
    pthread_mutex_unlock(&map->mutex);
    return e ? 0 : ENOENT;
}

/* LPM tries. */

/* Writes into 'dst' the canonical form of LPM key 'src' cut to 'plen'
 * bits. */
static void
lpm_canon(const struct okovm_map *map, uint8_t *dst, const uint8_t *src,
          uint32_t plen)
{
    uint32_t n = map->key_size - 4;
    uint32_t full = plen / 8;

    memcpy(dst, &plen, 4);
    memcpy(dst + 4, src + 4, full);
    if (full < n) {
        memset(dst + 4 + full, 0, n - full);
        if (plen % 8) {
            dst[4 + full] = src[4 + full] & (uint8_t) (0xff << (8 - plen % 8));
        }
    }
}

static struct okovm_elem *
lpm_match(struct okovm_map *map, const void *key)
{
    uint8_t canon[4 + LPM_DATA_MAX];
    uint32_t max = lpm_plen(key);
    int w;

    if (max > map->max_prefixlen) {
        max = map->max_prefixlen;
    }
    for (w = max / 64; w >= 0; w--) {
        uint64_t bits = atomic_load_explicit(&map->plen_bits[w],
                                             memory_order_acquire);

        if ((uint32_t) w == max / 64 && max % 64 != 63) {
            bits &= (2ull << (max % 64)) - 1;
        }
        while (bits) {
            uint32_t plen = w * 64 + 63 - __builtin_clzll(bits);
            struct okovm_elem *e;

            lpm_canon(map, canon, key, plen);
            e = hash_find(map, canon, hash_bytes(canon, map->key_size,
                                                 map->seed));
            if (e) {
                return e;
            }
            bits &= ~(1ull << (plen % 64));
        }
    }
    return NULL;
}

/* Element operations shared by helpers and the control plane. */

/* Returns a pointer to the value stored under 'key' in 'map', or NULL.
 * Lock-free. */
void *
okovm_map_lookup_elem(struct okovm_map *map, const void *key)
{
    struct okovm_elem *e;

    switch (map->type) {
    case BPF_MAP_TYPE_ARRAY: {
        uint32_t idx;

        memcpy(&idx, key, 4);
        return (idx < map->max_entries
                ? map->values + (size_t) idx * map->value_stride : NULL);
    }
    case BPF_MAP_TYPE_LPM_TRIE:
        e = lpm_match(map, key);
        break;
    default:
        return map->lookup(map, key);
    }
    return e ? elem_value(map, e) : NULL;
}

int
okovm_map_update_elem(struct okovm_map *map, const void *key,
                      const void *value, uint64_t flags)
{
    if (flags > BPF_EXIST) {
        return EINVAL;
    }
    if (map->rdonly) {
        return EPERM;
    }
    if (map->type == BPF_MAP_TYPE_ARRAY) {
        uint32_t idx;

        memcpy(&idx, key, 4);
        if (idx >= map->max_entries) {
            return E2BIG;
        }
        if (flags == BPF_NOEXIST) {
            return EEXIST;
        }
        memcpy(map->values + (size_t) idx * map->value_stride, value,
               map->value_size);
        return 0;
    }
    if (map->type == BPF_MAP_TYPE_LPM_TRIE) {
        uint8_t canon[4 + LPM_DATA_MAX];
        uint32_t plen = lpm_plen(key);

        if (plen > map->max_prefixlen) {
            return EINVAL;
        }
        lpm_canon(map, canon, key, plen);
        return hash_update(map, canon, value, flags);
    }
    return hash_update(map, key, value, flags);
}

int
okovm_map_delete_elem(struct okovm_map *map, const void *key)
{
    if (map->type == BPF_MAP_TYPE_ARRAY) {
        return EINVAL;
    }
    if (map->rdonly) {
        return EPERM;
    }
    if (map->type == BPF_MAP_TYPE_LPM_TRIE) {
        uint8_t canon[4 + LPM_DATA_MAX];
        uint32_t plen = lpm_plen(key);

        if (plen > map->max_prefixlen) {
            return EINVAL;
        }
        lpm_canon(map, canon, key, plen);
        return hash_delete(map, canon);
    }
    return hash_delete(map, key);
}

/* Control plane. */

int
okovm_map_lookup(struct okovm_map *map, const void *key, void *value)
{
    void *v;

    if (!is_hash(map)) {
        v = okovm_map_lookup_elem(map, key);
        if (!v) {
            return ENOENT;
        }
        memcpy(value, v, map->value_size);
        return 0;
    }
    /* The mutex keeps the element from being unlinked, hence freed,
     * while we copy it. */
    pthread_mutex_lock(&map->mutex);
    v = okovm_map_lookup_elem(map, key);
    if (v) {
        memcpy(value, v, map->value_size);
    }
    pthread_mutex_unlock(&map->mutex);
    return v ? 0 : ENOENT;
}

int
okovm_map_update(struct okovm_map *map, const void *key, const void *value,
                 uint64_t flags)
{
    return okovm_map_update_elem(map, key, value, flags);
}

int
okovm_map_delete(struct okovm_map *map, const void *key)
{
    return okovm_map_delete_elem(map, key);
}

int
okovm_map_get_next_key(struct okovm_map *map, const void *key,
                       void *next_key)
{
    uint8_t canon[4 + LPM_DATA_MAX];
    _Atomic(struct okovm_elem *) *link;
    struct okovm_elem *e = NULL;
    uint32_t b = 0;

    if (!is_hash(map)) {
        uint32_t idx = 0;

        if (key) {
            memcpy(&idx, key, 4);
            idx = idx >= map->max_entries ? 0 : idx + 1;
        }
        if (idx >= map->max_entries) {
            return ENOENT;
        }
        memcpy(next_key, &idx, 4);
        return 0;
    }

    pthread_mutex_lock(&map->mutex);
    if (key) {
        if (map->type == BPF_MAP_TYPE_LPM_TRIE
            && lpm_plen(key) <= map->max_prefixlen) {
            lpm_canon(map, canon, key, lpm_plen(key));
            key = canon;
        }
        uint32_t hash = hash_bytes(key, map->key_size, map->seed);

        e = hash_find_locked(map, key, hash, &link);
        if (e) {
            b = (hash & map->bucket_mask) + 1;
            e = atomic_load(&e->next);
        }
    }
    for (; !e && b <= map->bucket_mask; b++) {
        e = atomic_load(&map->buckets[b]);
    }
    if (e) {
        memcpy(next_key, elem_key(e), map->key_size);
    }
    pthread_mutex_unlock(&map->mutex);
    return e ? 0 : ENOENT;
}

int
okovm_map_clear(struct okovm_map *map)
{
    uint32_t i;

    if (map->rdonly) {
        return EPERM;
    }
    if (!is_hash(map)) {
        memset(map->values, 0, (size_t) map->value_stride
                               * map->max_entries);
        return 0;
    }
    pthread_mutex_lock(&map->mutex);
    for (i = 0; i <= map->bucket_mask; i++) {
        struct okovm_elem *e = atomic_load(&map->buckets[i]);

        atomic_store_explicit(&map->buckets[i], NULL, memory_order_release);
        while (e) {
            struct okovm_elem *next = atomic_load(&e->next);

            elem_retire(map, e);
            e = next;
        }
    }
    map->lru.lru_next = map->lru.lru_prev = &map->lru;
    if (map->plen_count) {
        memset(map->plen_count, 0,
               (map->max_prefixlen + 1) * sizeof *map->plen_count);
        for (i = 0; i <= map->max_prefixlen / 64; i++) {
            atomic_store(&map->plen_bits[i], 0);
        }
    }
    atomic_store(&map->count, 0);
    pthread_mutex_unlock(&map->mutex);
    return 0;
}
