/* common.h -- includes and helpers shared by the test BPF programs. */
#ifndef TEST_PROGS_COMMON_H
#define TEST_PROGS_COMMON_H 1
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/udp.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>
#endif
