/*
 * elf.c -- reading BPF ELF objects.
 *
 * libbpf, in open-only mode (no bpf() calls), supplies the map definitions
 * (BTF-defined maps in ".maps", global data sections) and the BTF.  In
 * that mode libbpf 1.1 has neither applied relocations nor appended
 * subprograms, so the program itself is linked here from the ELF with
 * libelf: the entry function, every function it calls (bpf-to-bpf calls,
 * usually in ".text"), ld_imm64 relocations against maps and global data,
 * and the BTF line information of ".BTF.ext" for the linked layout.
 */

#include <errno.h>
#include <gelf.h>
#include <libelf.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <bpf/btf.h>
#include <bpf/libbpf.h>

#include "okovm-private.h"

#ifndef EM_BPF
#define EM_BPF 247
#endif

struct okovm_object {
    void *buf;                  /* Our copy, for libelf. */
    void *bbuf;                 /* libbpf's copy. */
    size_t len;
    Elf *elf;
    size_t shstrndx;
    struct bpf_object *bobj;
    Elf_Data *symtab;
    size_t n_syms;
    size_t strtab;
    size_t maps_shndx;
    const void *btf_ext;
    size_t btf_ext_size;
    void *btf_raw;
    uint32_t btf_size;
    uint32_t n_maps;
    struct bpf_map **maps;
    char (*map_names)[OKOVM_NAME_LEN];  /* User-visible names. */
    size_t *map_shndx;          /* Global data: its section, else 0. */
};

/* libbpf diagnostics: libbpf has one process-wide print callback; ours
 * appends warnings to a per-thread buffer while a load is in progress and
 * drops them otherwise (never prints). */
static __thread char *capture_buf;
static __thread size_t capture_size;
static pthread_once_t init_once = PTHREAD_ONCE_INIT;

static int
libbpf_print(enum libbpf_print_level level, const char *fmt, va_list args)
{
    if (capture_buf && level <= LIBBPF_WARN) {
        size_t len = strlen(capture_buf);

        if (len + 1 < capture_size) {
            vsnprintf(capture_buf + len, capture_size - len, fmt, args);
        }
    }
    return 0;
}

static void
init_libs(void)
{
    elf_version(EV_CURRENT);
    libbpf_set_print(libbpf_print);
}

void
okovm_libbpf_capture_begin(char *buf, size_t size)
{
    pthread_once(&init_once, init_libs);
    buf[0] = '\0';
    capture_buf = buf;
    capture_size = size;
}

void
okovm_libbpf_capture_end(void)
{
    capture_buf = NULL;
    capture_size = 0;
}

static const char *
sec_name(const struct okovm_object *obj, size_t shndx)
{
    GElf_Shdr sh;
    Elf_Scn *scn = elf_getscn(obj->elf, shndx);
    const char *name;

    if (!scn || !gelf_getshdr(scn, &sh)) {
        return NULL;
    }
    name = elf_strptr(obj->elf, obj->shstrndx, sh.sh_name);
    return name;
}

static size_t
find_section(const struct okovm_object *obj, const char *name)
{
    Elf_Scn *scn = NULL;

    while ((scn = elf_nextscn(obj->elf, scn))) {
        const char *n = sec_name(obj, elf_ndxscn(scn));

        if (n && !strcmp(n, name)) {
            return elf_ndxscn(scn);
        }
    }
    return 0;
}

static Elf_Data *
section_data(const struct okovm_object *obj, size_t shndx)
{
    Elf_Scn *scn = elf_getscn(obj->elf, shndx);

    return scn ? elf_getdata(scn, NULL) : NULL;
}

void
okovm_object_close(struct okovm_object *obj)
{
    if (obj) {
        bpf_object__close(obj->bobj);
        if (obj->elf) {
            elf_end(obj->elf);
        }
        free(obj->buf);
        free(obj->bbuf);
        free(obj->btf_raw);
        free(obj->maps);
        free(obj->map_names);
        free(obj->map_shndx);
        free(obj);
    }
}

static int
bad_elf(struct okovm_error *err, const char *why)
{
    return okovm_error_set(err, EINVAL, -1, "not a usable BPF object: %s",
                           why);
}

/* Checks the ".BTF" section 'shndx' of 'obj' before libbpf sees it. */
static int
check_btf(const struct okovm_object *obj, size_t shndx,
          struct okovm_error *err)
{
    Elf_Data *d = section_data(obj, shndx);
    struct btf *btf;
    char why[512];

    if (!d || !d->d_buf || !d->d_size) {
        return bad_elf(err, "empty .BTF section");
    }
    /* The same checks as the BTF codec's (btf-codec.c). */
    if (okovm_btf_validate(d->d_buf, d->d_size, &btf, why, sizeof why)) {
        return bad_elf(err, why);
    }
    btf__free(btf);
    return 0;
}

/* Opens the ELF object 'elf' of 'len' bytes (copied) and reads its maps
 * and BTF.  Returns 0 or a positive errno with 'err' filled. */
int
okovm_object_open(const void *elf, size_t len, struct okovm_object **objp,
                  struct okovm_error *err)
{
    LIBBPF_OPTS(bpf_object_open_opts, opts, .object_name = "o");
    char libbpf_msgs[4096];
    struct okovm_object *obj;
    const struct btf *btf;
    const void *raw;
    struct bpf_map *m;
    GElf_Ehdr eh;
    size_t i, btf_shndx, ext;
    int error;

    *objp = NULL;
    pthread_once(&init_once, init_libs);
    if (!elf || len < sizeof(Elf64_Ehdr)) {
        return bad_elf(err, "truncated (shorter than an ELF header)");
    }
    if (memcmp(elf, ELFMAG, SELFMAG)) {
        return bad_elf(err, "no ELF magic");
    }
    obj = calloc(1, sizeof *obj);
    if (!obj || !(obj->buf = malloc(len)) || !(obj->bbuf = malloc(len))) {
        okovm_object_close(obj);
        return okovm_error_set(err, ENOMEM, -1, "out of memory");
    }
    memcpy(obj->buf, elf, len);
    memcpy(obj->bbuf, elf, len);
    obj->len = len;
    obj->elf = elf_memory(obj->buf, len);
    if (!obj->elf || elf_kind(obj->elf) != ELF_K_ELF
        || !gelf_getehdr(obj->elf, &eh)) {
        error = bad_elf(err, obj->elf ? elf_errmsg(-1) : "libelf failed");
        goto fail;
    }
    if (gelf_getclass(obj->elf) != ELFCLASS64
        || eh.e_ident[EI_DATA] != ELFDATA2LSB) {
        error = bad_elf(err, "not a 64-bit little-endian ELF object");
        goto fail;
    }
    if (eh.e_machine != EM_BPF) {
        char why[64];

        snprintf(why, sizeof why, "e_machine is %u, not EM_BPF (247)",
                 eh.e_machine);
        error = bad_elf(err, why);
        goto fail;
    }
    if (eh.e_type != ET_REL) {
        error = bad_elf(err, "not a relocatable object (ET_REL)");
        goto fail;
    }
    if (elf_getshdrstrndx(obj->elf, &obj->shstrndx)) {
        error = bad_elf(err, elf_errmsg(-1));
        goto fail;
    }
    /* Every section must lie inside the buffer. */
    for (i = 1; i < eh.e_shnum; i++) {
        GElf_Shdr sh;
        Elf_Scn *scn = elf_getscn(obj->elf, i);

        if (!scn || !gelf_getshdr(scn, &sh)
            || (sh.sh_type != SHT_NOBITS
                && (sh.sh_offset > len || sh.sh_size > len - sh.sh_offset))
            || (sh.sh_type != SHT_NOBITS && !elf_getdata(scn, NULL))) {
            error = bad_elf(err, "section outside the file (truncated?)");
            goto fail;
        }
        if (sh.sh_type == SHT_SYMTAB) {
            obj->symtab = elf_getdata(scn, NULL);
            obj->n_syms = sh.sh_entsize ? sh.sh_size / sh.sh_entsize : 0;
            obj->strtab = sh.sh_link;
        }
    }
    if (!obj->symtab) {
        error = bad_elf(err, "no symbol table");
        goto fail;
    }
    btf_shndx = find_section(obj, ".BTF");
    if (!btf_shndx) {
        error = bad_elf(err, "no BTF (.BTF section): compile with "
                        "'clang -O2 -g -target bpf'");
        goto fail;
    }
    error = check_btf(obj, btf_shndx, err);
    if (error) {
        goto fail;
    }
    obj->maps_shndx = find_section(obj, ".maps");
    ext = find_section(obj, ".BTF.ext");
    if (ext) {
        Elf_Data *d = section_data(obj, ext);

        if (d) {
            obj->btf_ext = d->d_buf;
            obj->btf_ext_size = d->d_size;
        }
    }

    okovm_libbpf_capture_begin(libbpf_msgs, sizeof libbpf_msgs);
    obj->bobj = bpf_object__open_mem(obj->bbuf, len, &opts);
    okovm_libbpf_capture_end();
    if (!obj->bobj) {
        error = errno ? errno : EINVAL;
        okovm_error_set(err, error, -1, "libbpf could not parse the object "
                        "(%s)", strerror(error));
        okovm_error_add_log(err, libbpf_msgs);
        goto fail;
    }
    btf = bpf_object__btf(obj->bobj);
    if (!btf) {
        error = bad_elf(err, "libbpf found no BTF");
        goto fail;
    }
    raw = btf__raw_data(btf, &obj->btf_size);
    obj->btf_raw = raw ? malloc(obj->btf_size) : NULL;
    if (!obj->btf_raw) {
        error = okovm_error_set(err, ENOMEM, -1, "out of memory");
        goto fail;
    }
    memcpy(obj->btf_raw, raw, obj->btf_size);

    bpf_object__for_each_map(m, obj->bobj) {
        obj->n_maps++;
    }
    obj->maps = calloc(obj->n_maps + 1, sizeof *obj->maps);
    obj->map_names = calloc(obj->n_maps + 1, sizeof *obj->map_names);
    obj->map_shndx = calloc(obj->n_maps + 1, sizeof *obj->map_shndx);
    if (!obj->maps || !obj->map_names || !obj->map_shndx) {
        error = okovm_error_set(err, ENOMEM, -1, "out of memory");
        goto fail;
    }
    i = 0;
    bpf_object__for_each_map(m, obj->bobj) {
        const char *name = bpf_map__name(m);

        obj->maps[i] = m;
        if (bpf_map__is_internal(m)) {
            const char *sname = !strncmp(name, "o.", 2) ? name + 1 : name;

            obj->map_shndx[i] = find_section(obj, sname);
            name = sname;
        }
        snprintf(obj->map_names[i], OKOVM_NAME_LEN, "%s", name);
        i++;
    }
    *objp = obj;
    return 0;

fail:
    okovm_object_close(obj);
    return error;
}

uint32_t
okovm_object_n_maps(const struct okovm_object *obj)
{
    return obj->n_maps;
}

const void *
okovm_object_btf(const struct okovm_object *obj, uint32_t *size)
{
    *size = obj->btf_size;
    return obj->btf_raw;
}

/* Creates, unpinned, the VM map for map 'idx' of 'obj' in 'ns'. */
int
okovm_object_make_map(struct okovm_object *obj, struct okovm_ns *ns,
                      uint32_t idx, struct okovm_map **mapp,
                      struct okovm_error *err)
{
    struct bpf_map *m = obj->maps[idx];
    const char *name = obj->map_names[idx];
    struct okovm_map *map;
    char why[256];
    int error;

    *mapp = NULL;
    if (bpf_map__is_internal(m) && !obj->map_shndx[idx]) {
        return okovm_error_set(err, EINVAL, -1, "unsupported internal map "
                               "'%s' (externs, .kconfig and .ksyms are not "
                               "supported)", name);
    }
    error = okovm_map_create(ns, name, bpf_map__type(m),
                             bpf_map__key_size(m), bpf_map__value_size(m),
                             bpf_map__max_entries(m), bpf_map__map_flags(m),
                             &map, why, sizeof why);
    if (error) {
        return okovm_error_set(err, error, -1, "%s", why);
    }
    map->btf_key_type_id = bpf_map__btf_key_type_id(m);
    map->btf_value_type_id = bpf_map__btf_value_type_id(m);
    map->btf = malloc(obj->btf_size);
    if (!map->btf) {
        okovm_map_unref(map);
        return okovm_error_set(err, ENOMEM, -1, "out of memory");
    }
    memcpy(map->btf, obj->btf_raw, obj->btf_size);
    map->btf_size = obj->btf_size;
    map->pinned = bpf_map__pin_path(m) != NULL;
    if (bpf_map__is_internal(m)) {
        size_t size = 0;
        const void *init = bpf_map__initial_value(m, &size);

        map->global_data = true;
        map->rdonly = !strncmp(name, ".rodata", 7);
        if (init && size <= map->value_size) {
            memcpy(map->values, init, size);
        }
    }
    *mapp = map;
    return 0;
}

/* Linking. */

struct unit {
    size_t shndx;
    uint32_t start;             /* First instruction in its section. */
    uint32_t count;
    uint32_t base;              /* First instruction in the linked code. */
};

struct linker {
    struct okovm_object *obj;
    struct okovm_error *err;
    struct unit *units;
    uint32_t n_units;
    uint32_t alloc_units;
    uint32_t n_insns;
};

static bool
get_sym(const struct okovm_object *obj, size_t idx, GElf_Sym *sym)
{
    return idx < obj->n_syms && gelf_getsym(obj->symtab, idx, sym);
}

static const char *
sym_name(const struct okovm_object *obj, const GElf_Sym *sym)
{
    const char *n = elf_strptr(obj->elf, obj->strtab, sym->st_name);

    return n ? n : "?";
}

/* Finds the function symbol of section 'shndx' that starts at instruction
 * 'insn' (if 'name' is NULL) or is named 'name'. */
static bool
find_func(const struct okovm_object *obj, size_t shndx, const char *name,
          uint32_t insn, GElf_Sym *out)
{
    size_t i;

    for (i = 1; i < obj->n_syms; i++) {
        GElf_Sym sym;

        if (!get_sym(obj, i, &sym) || sym.st_shndx != shndx
            || GELF_ST_TYPE(sym.st_info) != STT_FUNC) {
            continue;
        }
        if (name ? !strcmp(sym_name(obj, &sym), name)
                 : sym.st_value / 8 == insn) {
            *out = sym;
            return true;
        }
    }
    return false;
}

/* Returns the unit for the function at 'insn' of section 'shndx', adding
 * it if needed; NULL on error. */
static struct unit *
get_unit(struct linker *lk, size_t shndx, uint32_t insn, const char *name)
{
    struct okovm_object *obj = lk->obj;
    Elf_Data *d = section_data(obj, shndx);
    GElf_Sym sym;
    uint32_t i, count;

    for (i = 0; i < lk->n_units; i++) {
        if (lk->units[i].shndx == shndx && lk->units[i].start == insn) {
            return &lk->units[i];
        }
    }
    if (!d || !find_func(obj, shndx, name, insn, &sym)) {
        okovm_error_set(lk->err, EINVAL, -1, "no function %s%s at "
                        "instruction %u of section '%s'",
                        name ? name : "", name ? "" : "starting", insn,
                        sec_name(obj, shndx));
        return NULL;
    }
    insn = sym.st_value / 8;
    count = sym.st_size / 8;
    if (sym.st_value % 8 || !count || insn + (uint64_t) count
        > d->d_size / 8) {
        okovm_error_set(lk->err, EINVAL, -1, "function '%s' has a bad "
                        "size or offset", sym_name(obj, &sym));
        return NULL;
    }
    if (lk->n_units == lk->alloc_units) {
        uint32_t n = lk->alloc_units ? lk->alloc_units * 2 : 8;
        struct unit *u = realloc(lk->units, n * sizeof *u);

        if (!u) {
            okovm_error_set(lk->err, ENOMEM, -1, "out of memory");
            return NULL;
        }
        lk->units = u;
        lk->alloc_units = n;
    }
    if (lk->n_insns + (uint64_t) count > OKOVM_MAX_INSNS) {
        okovm_error_set(lk->err, E2BIG, -1, "program too large");
        return NULL;
    }
    lk->units[lk->n_units] = (struct unit) {
        .shndx = shndx, .start = insn, .count = count,
        .base = lk->n_insns,
    };
    lk->n_insns += count;
    return &lk->units[lk->n_units++];
}

/* Returns the relocation section for section 'shndx', or NULL. */
static Elf_Data *
rel_data(const struct okovm_object *obj, size_t shndx, size_t *n)
{
    Elf_Scn *scn = NULL;

    while ((scn = elf_nextscn(obj->elf, scn))) {
        GElf_Shdr sh;

        if (gelf_getshdr(scn, &sh) && sh.sh_type == SHT_REL
            && sh.sh_info == shndx) {
            *n = sh.sh_entsize ? sh.sh_size / sh.sh_entsize : 0;
            return elf_getdata(scn, NULL);
        }
    }
    *n = 0;
    return NULL;
}

/* Finds the relocation at byte 'offset' of the section of 'rels'. */
static bool
find_rel(Elf_Data *rels, size_t n, uint64_t offset, GElf_Rel *out)
{
    size_t i;

    for (i = 0; i < n; i++) {
        if (gelf_getrel(rels, i, out) && out->r_offset == offset) {
            return true;
        }
    }
    return false;
}

/* Resolves the ld_imm64 at 'in' relocated against symbol 'sym'. */
static int
reloc_ld(struct linker *lk, struct bpf_insn *in, const GElf_Sym *sym,
         uint32_t at)
{
    struct okovm_object *obj = lk->obj;
    const char *name = sym_name(obj, sym);
    uint32_t i;

    if (obj->maps_shndx && sym->st_shndx == obj->maps_shndx) {
        for (i = 0; i < obj->n_maps; i++) {
            if (!bpf_map__is_internal(obj->maps[i])
                && !strcmp(bpf_map__name(obj->maps[i]), name)) {
                in[0].src_reg = BPF_PSEUDO_MAP_FD;
                in[0].imm = i;
                in[1].imm = 0;
                return 0;
            }
        }
    } else if (sym->st_shndx != SHN_UNDEF) {
        for (i = 0; i < obj->n_maps; i++) {
            if (obj->map_shndx[i] == sym->st_shndx) {
                in[0].src_reg = BPF_PSEUDO_MAP_VALUE;
                in[1].imm = in[0].imm + (int32_t) sym->st_value;
                in[0].imm = i;
                return 0;
            }
        }
    }
    return okovm_error_set(lk->err, EINVAL, at, "insn %u: relocation "
                           "against unsupported symbol '%s' (section "
                           "'%s')", at, name,
                           sym->st_shndx == SHN_UNDEF ? "extern"
                           : sec_name(obj, sym->st_shndx));
}

/* Copies unit 'u' into 'insns', resolving relocations and calls. */
static int
link_unit(struct linker *lk, uint32_t ui, struct bpf_insn *insns,
          uint32_t cap)
{
    struct okovm_object *obj = lk->obj;
    struct unit u = lk->units[ui];
    Elf_Data *d = section_data(obj, u.shndx);
    const struct bpf_insn *src = (const struct bpf_insn *) d->d_buf;
    Elf_Data *rels;
    size_t n_rels;
    uint32_t k;

    rels = rel_data(obj, u.shndx, &n_rels);
    if (u.base + u.count > cap) {
        return okovm_error_set(lk->err, EINVAL, -1, "link overflow");
    }
    memcpy(&insns[u.base], &src[u.start], u.count * sizeof *insns);
    for (k = 0; k < u.count; k++) {
        struct bpf_insn *in = &insns[u.base + k];
        uint32_t at = u.base + k;
        uint64_t off = (uint64_t) (u.start + k) * 8;
        GElf_Rel rel;
        GElf_Sym sym;
        bool has_rel = rels && find_rel(rels, n_rels, off, &rel);

        if (has_rel && !get_sym(obj, GELF_R_SYM(rel.r_info), &sym)) {
            return okovm_error_set(lk->err, EINVAL, at, "insn %u: bad "
                                   "relocation symbol", at);
        }
        if (in->code == (BPF_LD | BPF_IMM | BPF_DW)) {
            int error;

            if (k + 1 >= u.count) {
                return okovm_error_set(lk->err, EINVAL, at, "insn %u: "
                                       "truncated ld_imm64", at);
            }
            if (has_rel) {
                error = reloc_ld(lk, in, &sym, at);
                if (error) {
                    return error;
                }
            } else if (in->src_reg) {
                return okovm_error_set(lk->err, EINVAL, at, "insn %u: "
                                       "ld_imm64 with source %u and no "
                                       "relocation", at, in->src_reg);
            }
            k++;
        } else if (in->code == (BPF_JMP | BPF_CALL)
                   && in->src_reg == BPF_PSEUDO_CALL) {
            size_t shndx = u.shndx;
            int64_t t = (int64_t) u.start + k + 1 + in->imm;
            struct unit *cu;

            if (has_rel) {
                shndx = sym.st_shndx;
                t = (int64_t) sym.st_value / 8 + in->imm + 1;
            }
            if (t < 0 || t > UINT32_MAX) {
                return okovm_error_set(lk->err, EINVAL, at, "insn %u: call "
                                       "target out of range", at);
            }
            cu = get_unit(lk, shndx, t, NULL);
            if (!cu) {
                lk->err->insn = at;
                return lk->err->code;
            }
            in->imm = (int32_t) ((int64_t) cu->base + (t - cu->start)
                                 - (at + 1));
        } else if (has_rel) {
            return okovm_error_set(lk->err, EINVAL, at, "insn %u: "
                                   "unsupported relocation against '%s' "
                                   "(extern helper or kfunc?)", at,
                                   sym_name(obj, &sym));
        }
    }
    return 0;
}

/* Appends to 'lines' the line info of unit 'u' from ".BTF.ext". */
static int
link_lines(struct linker *lk, const struct unit *u, struct okovm_linked *out,
           const struct btf *btf)
{
    const struct okovm_object *obj = lk->obj;
    const uint8_t *p = obj->btf_ext;
    size_t size = obj->btf_ext_size;
    uint32_t hdr_len, li_off, li_len, rec_size;
    const char *want = sec_name(obj, u->shndx);
    size_t pos, end;

    if (!p || size < 32 || !want) {
        return 0;
    }
    memcpy(&hdr_len, p + 4, 4);
    memcpy(&li_off, p + 16, 4);
    memcpy(&li_len, p + 20, 4);
    if (hdr_len > size || li_off > size - hdr_len
        || li_len > size - hdr_len - li_off || li_len < 4) {
        return 0;
    }
    pos = hdr_len + li_off;
    end = pos + li_len;
    memcpy(&rec_size, p + pos, 4);
    pos += 4;
    if (rec_size < 16) {
        return 0;
    }
    while (pos + 8 <= end) {
        uint32_t name_off, num, i;
        const char *name;

        memcpy(&name_off, p + pos, 4);
        memcpy(&num, p + pos + 4, 4);
        pos += 8;
        if (num > (end - pos) / rec_size) {
            return 0;
        }
        name = btf__name_by_offset(btf, name_off);
        if (name && !strcmp(name, want)) {
            for (i = 0; i < num; i++) {
                const uint8_t *r = p + pos + (size_t) i * rec_size;
                struct okovm_line l;
                uint32_t insn_off;

                memcpy(&insn_off, r, 4);
                insn_off /= 8;
                if (insn_off < u->start || insn_off >= u->start + u->count) {
                    continue;
                }
                l.insn = u->base + insn_off - u->start;
                memcpy(&l.file_off, r + 4, 4);
                memcpy(&l.line_off, r + 8, 4);
                memcpy(&l.line_col, r + 12, 4);
                if (!(out->n_lines & (out->n_lines + 1))) {
                    struct okovm_line *nl;

                    nl = realloc(out->lines, (out->n_lines + 1) * 2
                                             * sizeof *nl);
                    if (!nl) {
                        return ENOMEM;
                    }
                    out->lines = nl;
                }
                out->lines[out->n_lines++] = l;
            }
        }
        pos += (size_t) num * rec_size;
    }
    return 0;
}

static int
cmp_lines(const void *a_, const void *b_)
{
    const struct okovm_line *a = a_, *b = b_;

    return a->insn < b->insn ? -1 : a->insn > b->insn;
}

static bool
is_xdp_section(const char *s)
{
    return !strcmp(s, "xdp") || !strncmp(s, "xdp/", 4)
           || !strncmp(s, "xdp.", 4);
}

/* Selects the program of 'obj' named by 'opts' and links it into 'out'. */
int
okovm_object_link(struct okovm_object *obj,
                  const struct okovm_load_opts *opts,
                  struct okovm_linked *out, struct okovm_error *err)
{
    const char *want_name = opts ? opts->prog_name : NULL;
    const char *want_sec = opts ? opts->section : NULL;
    struct bpf_program *p, *found = NULL;
    struct linker lk = { .obj = obj, .err = err };
    struct btf *btf;
    size_t shndx;
    uint32_t i;
    int error;

    memset(out, 0, sizeof *out);
    bpf_object__for_each_program(p, obj->bobj) {
        const char *sec = bpf_program__section_name(p);

        if (want_name ? !strcmp(bpf_program__name(p), want_name)
                        && (!want_sec || !strcmp(sec, want_sec))
            : want_sec ? !strcmp(sec, want_sec) : is_xdp_section(sec)) {
            found = p;
            break;
        }
    }
    if (!found) {
        return okovm_error_set(err, ENOENT, -1, "no program %s%s%s%s found "
                               "in the object", want_name ? "named " : "",
                               want_name ? want_name : "",
                               want_sec ? " in section " : "",
                               want_sec ? want_sec
                               : want_name ? "" : "in section \"xdp\"");
    }
    snprintf(out->name, sizeof out->name, "%s", bpf_program__name(found));
    snprintf(out->section, sizeof out->section, "%s",
             bpf_program__section_name(found));
    shndx = find_section(obj, out->section);
    if (!shndx || !get_unit(&lk, shndx, 0, out->name)) {
        error = err->code ? err->code : EINVAL;
        goto fail;
    }
    /* Units are appended while linking, so this visits callees too. */
    out->insns = NULL;
    for (i = 0; i < lk.n_units; i++) {
        uint32_t n = lk.n_insns;
        struct bpf_insn *ni = realloc(out->insns, n * sizeof *ni);

        if (!ni) {
            error = okovm_error_set(err, ENOMEM, -1, "out of memory");
            goto fail;
        }
        out->insns = ni;
        error = link_unit(&lk, i, out->insns, n);
        if (error) {
            goto fail;
        }
    }
    /* Later units may have grown the program after earlier ones were
     * copied: 'n' above was the size at each step, so the buffer is big
     * enough for every unit copied so far; make it final. */
    {
        struct bpf_insn *ni = realloc(out->insns,
                                      lk.n_insns * sizeof *ni);

        if (!ni) {
            error = okovm_error_set(err, ENOMEM, -1, "out of memory");
            goto fail;
        }
        out->insns = ni;
    }
    out->n_insns = lk.n_insns;

    btf = btf__new(obj->btf_raw, obj->btf_size);
    if (btf) {
        for (i = 0; i < lk.n_units; i++) {
            if (link_lines(&lk, &lk.units[i], out, btf)) {
                btf__free(btf);
                error = okovm_error_set(err, ENOMEM, -1, "out of memory");
                goto fail;
            }
        }
        btf__free(btf);
        if (out->n_lines) {
            qsort(out->lines, out->n_lines, sizeof *out->lines, cmp_lines);
        }
    }
    free(lk.units);
    return 0;

fail:
    free(lk.units);
    okovm_linked_free(out);
    return error;
}

void
okovm_linked_free(struct okovm_linked *l)
{
    free(l->insns);
    free(l->lines);
    l->insns = NULL;
    l->lines = NULL;
}
