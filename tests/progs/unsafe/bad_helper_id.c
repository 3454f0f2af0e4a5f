/* EXPECT: helper 99 */
#include "common.h"
static long (*no_such_helper)(void) = (void *)99;
SEC("xdp") int f(struct xdp_md *ctx)
{
    return no_such_helper();
}
