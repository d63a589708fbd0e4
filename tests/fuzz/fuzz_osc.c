/*
 * libFuzzer target for the proxy's OSC checker (plugin/osc.c): whatever bytes
 * come in, the checker must not read outside them, and every packet it
 * accepts must be one the walker, the cursor and the bundle filter handle,
 * with a filtered bundle that still passes the check.
 */
#include "osc.h"

#include <stdlib.h>
#include <string.h>

static int visit(void *ctx, const uint8_t *p, size_t len)
{
    tutti__osc_msg m;
    if (tutti__osc_msg_parse(p, len, &m)) abort();
    tutti__osc_iter it;
    tutti__osc_iter_init(&it, &m);
    for (int i = 0; i < 8; i++) {
        tutti__osc_iter_geti(&it, 0);
        tutti__osc_iter_gets(&it, NULL);
    }
    ++*(size_t *)ctx;
    return 0;
}

static bool drop_odd(void *ctx, const uint8_t *p, size_t len)
{
    (void)p;
    return (len / 4 + ++*(size_t *)ctx) % 2;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* a copy of exactly `size` bytes, so AddressSanitizer sees any over-read */
    uint8_t *p = malloc(size ? size : 1);
    if (!p) return 0;
    memcpy(p, data, size);
    if (tutti__osc_check(p, size) == 0) {
        size_t n = 0;
        tutti__osc_each_message(p, size, visit, &n);
        if (tutti__osc_is_bundle(p, size)) {
            uint8_t *out = malloc(size);
            size_t k = 0;
            size_t len = tutti__osc_filter_bundle(p, size, drop_odd, &k, out);
            if (len > size || tutti__osc_check(out, len) != 0) abort();
            free(out);
        }
    }
    free(p);
    return 0;
}
