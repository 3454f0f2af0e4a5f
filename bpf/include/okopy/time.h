/* okopy/time.h -- intervals between bpf_ktime_get_ns() readings.
 *
 * A time stored in a map may be a little later than the 'now' of the run
 * that reads it: another CPU, or another thread of the switch, read the
 * clock after this run did and wrote first.  In Open vSwitch's datapath
 * bpf_ktime_get_ns() gives every packet of a received batch the batch's
 * time, so "a little" is up to a batch's processing time there.  An
 * unsigned 'now - then' would then wrap to an interval of centuries;
 * okopy_elapsed() reads it as "no time has passed". */

#ifndef OKOPY_TIME_H
#define OKOPY_TIME_H

#include <linux/types.h>

static __always_inline __u64
okopy_elapsed(__u64 now, __u64 then)
{
    return now > then ? now - then : 0;
}

#endif /* okopy/time.h */
