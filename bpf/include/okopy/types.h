/* okopy/types.h -- typedefs that tell okopy how to show map fields.
 *
 * CONTRACT with libokovm's BTF codec (vm/src/btf-codec.c), which okopy
 * and the switch's tools use: BTF carries no byte order and no notion of
 * "address", so okopy reads these typedef names from a program's BTF and
 * formats the fields accordingly (JSON in and out of maps):
 *
 *   okopy_be16/32/64  network byte order integer, shown as its value
 *   okopy_ipv4_t      IPv4 address in network order, "10.0.0.1"
 *   okopy_ipv6_t      IPv6 address, "2001:db8::1"
 *   okopy_mac_t       Ethernet address, "02:00:00:00:00:01"
 *
 * Plain __be16/__be32/__be64 from <linux/types.h> are read as network order
 * too.  tests/unit/test_btf.py keeps the two sides equal. */

#ifndef OKOPY_TYPES_H
#define OKOPY_TYPES_H

#include <linux/types.h>

typedef __be16 okopy_be16;
typedef __be32 okopy_be32;
typedef __be64 okopy_be64;
typedef __be32 okopy_ipv4_t;
typedef struct { __u8 b[16]; } okopy_ipv6_t;
typedef struct { __u8 b[6]; } okopy_mac_t;

#endif /* okopy/types.h */
