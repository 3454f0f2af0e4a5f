/*
 * fuzz.h -- what libokovm's libFuzzer targets share: the packets a loaded
 * program runs on, a namespace with deterministic helpers, and a writer
 * of minimal BPF ELF objects around raw instructions.  Header-only: each
 * target is one translation unit.
 */

#ifndef OKOVM_FUZZ_H
#define OKOVM_FUZZ_H 1

#include <elf.h>
#include <stdio.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "okovm.h"

#ifndef EM_BPF
#define EM_BPF 247
#endif

/* Instructions per run in sandbox mode: small, so that loops the fuzzer
 * finds cost little. */
#define FUZZ_BUDGET 20000

/* Runs 'prog' on a few packets: empty, an Ethernet header alone, an IPv4
 * UDP packet, a full-size frame.  Returns the XOR of the verdicts (so
 * that callers can compare engines). */
static inline uint32_t
fuzz_run_packets(struct okovm_prog *prog)
{
    static const uint8_t udp[] = {
        0x02, 0, 0, 0, 0, 1, 0x02, 0, 0, 0, 0, 2, 0x08, 0x00,
        0x45, 0, 0, 28, 0, 1, 0, 0, 64, 17, 0, 0,
        10, 0, 0, 1, 10, 0, 0, 2,
        0x30, 0x39, 0, 53, 0, 8, 0, 0,
    };
    static uint8_t big[1514];
    uint32_t v = 0;
    uint8_t *pkt;

    /* Each packet in a buffer of its own exact size, so that AddressSanitizer
     * sees any read past its end. */
    v ^= okovm_prog_run(prog, NULL, 0, 1);
    pkt = malloc(14);
    memset(pkt, 0, 14);
    v ^= okovm_prog_run(prog, pkt, 14, 2) << 1;
    free(pkt);
    pkt = malloc(sizeof udp);
    memcpy(pkt, udp, sizeof udp);
    v ^= okovm_prog_run(prog, pkt, sizeof udp, 3) << 2;
    free(pkt);
    if (!big[0]) {
        size_t i;

        for (i = 0; i < sizeof big; i++) {
            big[i] = (uint8_t) (i * 7 + 1);
        }
    }
    pkt = malloc(sizeof big);
    memcpy(pkt, big, sizeof big);
    v ^= okovm_prog_run(prog, pkt, sizeof big, 4) << 3;
    free(pkt);
    return v;
}

/* Returns a new namespace whose clock and random numbers are fixed, or
 * aborts. */
static inline struct okovm_ns *
fuzz_ns(void)
{
    struct okovm_ns *ns;

    if (okovm_ns_create("fuzz", &ns)) {
        abort();
    }
    okovm_ns_set_fixed_clock(ns, 1000000000);
    okovm_ns_seed_prandom(ns, 1);
    return ns;
}

/* Aborts unless the failed call that returned 'error' also filled 'err'
 * with the same code and a message a person can read. */
static inline void
fuzz_check_error(int error, const struct okovm_error *err)
{
    if (error <= 0 || err->code != error || !err->msg[0]
        || !memchr(err->msg, '\0', sizeof err->msg)) {
        fprintf(stderr, "error %d reported as %d: '%.*s'\n", error,
                err->code, (int) sizeof err->msg, err->msg);
        abort();
    }
}

/* Writes into a new buffer (returned, size in '*lenp') a relocatable BPF
 * ELF object with one XDP program "prog" made of the 'n' instructions at
 * 'insns' (8 bytes each), a "GPL" license and an empty BTF (libokovm
 * requires BTF).  Returns NULL if out of memory. */
static inline void *
fuzz_make_elf(const void *insns, size_t n, size_t *lenp)
{
    static const char strtab[] =
        "\0.strtab\0xdp\0license\0.BTF\0.symtab\0prog";
    enum { S_STRTAB = 1, S_XDP, S_LICENSE, S_BTF, S_SYMTAB, N_SECTIONS };
    static const uint32_t names[N_SECTIONS] = { 0, 1, 9, 13, 21, 26 };
    static const char license[4] = "GPL";
    static const uint8_t btf[25] = {
        0x9f, 0xeb, 1, 0, 24, 0, 0, 0,     /* magic, version, hdr_len */
        0, 0, 0, 0, 0, 0, 0, 0,            /* type_off, type_len */
        0, 0, 0, 0, 1, 0, 0, 0,            /* str_off, str_len */
        0,                                 /* "" */
    };
    Elf64_Sym syms[2];
    size_t off[N_SECTIONS], size[N_SECTIONS], len, shoff, i;
    Elf64_Ehdr *eh;
    Elf64_Shdr *sh;
    uint8_t *buf;

    size[S_STRTAB] = sizeof strtab;
    size[S_XDP] = n * 8;
    size[S_LICENSE] = sizeof license;
    size[S_BTF] = sizeof btf;
    size[S_SYMTAB] = sizeof syms;
    len = sizeof *eh;
    for (i = 1; i < N_SECTIONS; i++) {
        len = (len + 7) & ~(size_t) 7;
        off[i] = len;
        len += size[i];
    }
    shoff = (len + 7) & ~(size_t) 7;
    len = shoff + N_SECTIONS * sizeof *sh;
    buf = calloc(1, len);
    if (!buf) {
        return NULL;
    }

    memset(syms, 0, sizeof syms);
    syms[1].st_name = 34;                               /* "prog" */
    syms[1].st_info = ELF64_ST_INFO(STB_GLOBAL, STT_FUNC);
    syms[1].st_shndx = S_XDP;
    syms[1].st_size = n * 8;
    memcpy(buf + off[S_STRTAB], strtab, sizeof strtab);
    if (n) {
        memcpy(buf + off[S_XDP], insns, n * 8);
    }
    memcpy(buf + off[S_LICENSE], license, sizeof license);
    memcpy(buf + off[S_BTF], btf, sizeof btf);
    memcpy(buf + off[S_SYMTAB], syms, sizeof syms);

    eh = (Elf64_Ehdr *) buf;
    memcpy(eh->e_ident, ELFMAG, SELFMAG);
    eh->e_ident[EI_CLASS] = ELFCLASS64;
    eh->e_ident[EI_DATA] = ELFDATA2LSB;
    eh->e_ident[EI_VERSION] = EV_CURRENT;
    eh->e_type = ET_REL;
    eh->e_machine = EM_BPF;
    eh->e_version = EV_CURRENT;
    eh->e_ehsize = sizeof *eh;
    eh->e_shoff = shoff;
    eh->e_shentsize = sizeof *sh;
    eh->e_shnum = N_SECTIONS;
    eh->e_shstrndx = S_STRTAB;

    sh = (Elf64_Shdr *) (buf + shoff);
    for (i = 1; i < N_SECTIONS; i++) {
        sh[i].sh_name = names[i];
        sh[i].sh_offset = off[i];
        sh[i].sh_size = size[i];
        sh[i].sh_addralign = 1;
    }
    sh[S_STRTAB].sh_type = SHT_STRTAB;
    sh[S_XDP].sh_type = SHT_PROGBITS;
    sh[S_XDP].sh_flags = SHF_ALLOC | SHF_EXECINSTR;
    sh[S_XDP].sh_addralign = 8;
    sh[S_LICENSE].sh_type = SHT_PROGBITS;
    sh[S_LICENSE].sh_flags = SHF_ALLOC | SHF_WRITE;
    sh[S_BTF].sh_type = SHT_PROGBITS;
    sh[S_BTF].sh_addralign = 4;
    sh[S_SYMTAB].sh_type = SHT_SYMTAB;
    sh[S_SYMTAB].sh_link = S_STRTAB;
    sh[S_SYMTAB].sh_info = 1;
    sh[S_SYMTAB].sh_entsize = sizeof syms[0];
    sh[S_SYMTAB].sh_addralign = 8;
    *lenp = len;
    return buf;
}

#endif /* fuzz.h */
