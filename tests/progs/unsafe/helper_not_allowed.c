/* EXPECT: helper 23 */
#include "common.h"
SEC("xdp") int f(struct xdp_md *ctx)
{
    return bpf_redirect(1, 0);
}
