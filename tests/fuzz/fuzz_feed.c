/*
 * libFuzzer target for the session feed's command parser (plugin/feed.c):
 * whatever bytes a client sends, a packet the OSC checker accepts is parsed
 * without reading outside it, and what the parser accepts is in range. The
 * same bytes, read as a view, must make a /tutti/timeline bundle the checker
 * accepts (the feed's own output is well-formed OSC whatever the numbers).
 */
#include "feed.h"
#include "osc.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* The parser never reaches the session; the harness does not link it. */
void tutti__session_view_get(tutti__session_view *v)
{
    (void)v;
    abort();
}

uint64_t tutti__session_changes(void)
{
    abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* a copy of exactly `size` bytes, so AddressSanitizer sees any over-read */
    uint8_t *p = malloc(size ? size : 1);
    if (!p) return 0;
    memcpy(p, data, size);
    if (tutti__osc_check(p, size) == 0 && !tutti__osc_is_bundle(p, size)) {
        tutti__feed_cmd c;
        char why[160];
        why[0] = 0;
        int rc = tutti__feed_parse(p, size, &c, why, sizeof why);
        if (rc == 1) {
            if (c.what == TUTTI__FEED_BPM &&
                !(c.value >= TUTTI_BPM_MIN && c.value <= TUTTI_BPM_MAX))
                abort();
            if (c.what != TUTTI__FEED_BPM && c.value != 0 && c.value != 1) abort();
        } else if (rc < 0) {
            if (!why[0] || !memchr(why, 0, sizeof why)) abort();
        } else if (rc != 0) {
            abort();
        }
    }
    tutti__session_view v;
    memset(&v, 0, sizeof v);
    v.ntl = 1;
    size_t n = size < sizeof v.tl[0] ? size : sizeof v.tl[0];
    memcpy(&v.tl[0], p, n);
    v.tl[0].playing = n == sizeof v.tl[0] && (p[n - 1] & 1); /* a bool is 0 or 1 */
    if (size >= n + 8) memcpy(&v.offset_ns, p + n, 8);
    uint8_t out[256];
    size_t len = tutti__feed_timeline_bundle(&v, 0, out, sizeof out);
    if (len == 0 || tutti__osc_check(out, len) != 0) abort();
    free(p);
    return 0;
}
