/* The values tests/unit/test_btf.py converts, written as C initializers of
 * the types in tests/progs/typed_maps.c: clang lays them out, so the test
 * compares the bytes okopy/btf.py makes with the compiler's, not with a
 * second hand-written copy of the layout.  One variable per section, so a
 * section's bytes are the variable's. */
#include "typed_maps.c"
#include <bpf/bpf_endian.h>

const struct flow_key flow_key_value SEC(".rodata.flow_key") = {
    .saddr = bpf_htonl(0x0a000001),        /* 10.0.0.1 */
    .daddr = bpf_htonl(0xc0000207),        /* 192.0.2.7 */
    .sport = bpf_htons(443),
    .dport_host = 8080,
    .proto = 6,
};

const struct flow_val flow_val_value SEC(".rodata.flow_val") = {
    .packets = 1ULL << 40,
    .delta = -5,
    .state = ESTABLISHED,
    .label = "web",
    .raw = { 0xde, 0xad, 0xbe, 0xef },
    .mac = { .b = { 0x02, 0, 0, 0, 0, 0x01 } },
    .flag = 1,
    .level = 5,
    .hist = { 1, 2, 3 },
};

const struct lpm_v6_key lpm_v6_key_value SEC(".rodata.lpm_v6_key") = {
    .prefixlen = 32,
    .addr = { .b = { 0x20, 0x01, 0x0d, 0xb8, [15] = 0x01 } },   /* 2001:db8::1 */
};
