#define _GNU_SOURCE /* memmem */
/* s.record through the proxy in a session (plugin/record.c): sclang's
 * Recorder's messages run on this server alone, in the part's numbers. */
#include "record.h"

#include "osc.h"
#include "test.h"
#include "tutti/tutti.h"

#include <string.h>

static tutti__ns *ns;
static tutti__record rec;
static uint8_t out[4096];

#define SLOT 3u
#define NODE(id) (int32_t)((SLOT << 26) + (id))

/* The i-th argument of `p` as an int (i or f), or -99999. */
static int32_t geti(const uint8_t *p, size_t n, int k)
{
    tutti__osc_msg m;
    if (tutti__osc_msg_parse(p, n, &m)) return -99999;
    tutti__osc_iter it;
    tutti__osc_iter_init(&it, &m);
    int32_t v = -99999;
    for (int i = 0; i <= k; i++)
        v = tutti__osc_iter_geti(&it, -99999);
    return v;
}

static ssize_t local(const uint8_t *p, size_t n)
{
    CHECK(tutti__osc_check(p, n) == 0);
    return tutti__record_local(&rec, ns, SLOT, p, n, out, sizeof out);
}

static void test_recorder(void)
{
    uint8_t w[256], a[512], c[128], f[64];
    tutti__ns_config cfg;
    tutti__ns_config_init(&cfg);
    /* the part's buffer 5 and its synth 1000, the Recorder's own */
    int32_t buf5 = 0, in0 = 0;
    CHECK(tutti__ns_buf(&cfg, SLOT, 5, &buf5) == TUTTI_NS_MAP_OK);

    /* notes and buffers of the music are not the recording's */
    size_t n = tutti__osc_write(a, sizeof a, "/b_alloc", "iii", 2, 512, 1);
    CHECK_EQ_I64(local(a, n), 0);
    n = tutti__osc_write(a, sizeof a, "/s_new", "siiisi", "ping", 1001, 0, 1, "bufnum",
                         2);
    CHECK_EQ_I64(local(a, n), 0);

    /* /b_alloc 5 with the completion /b_write 5 path wav int16 0 0 1 */
    size_t wn = tutti__osc_write(w, sizeof w, "/b_write", "isssiii", 5, "/tmp/x.wav",
                                 "wav", "int16", 0, 0, 1);
    n = tutti__osc_write(a, sizeof a, "/b_alloc", "iiib", 5, 65536, 2, (const void *)w,
                         wn);
    ssize_t k = local(a, n);
    CHECK_EQ_I64(k, (int64_t)n);
    CHECK_EQ_I64(geti(out, (size_t)k, 0), buf5);
    tutti__osc_msg m;
    CHECK(tutti__osc_msg_parse(out, (size_t)k, &m) == 0);
    /* the completion's buffer is mapped too, the path kept */
    const uint8_t *blob = out + (size_t)k - tutti__osc_pad4(wn);
    CHECK_EQ_I64(geti(blob, wn, 0), buf5);
    CHECK(memmem(blob, wn, "/tmp/x.wav", 10) != NULL);

    /* the Recorder's synth: target 0 is the server's root, the def is the
     * part's, bufnum and in mapped (bus 0 is hardware: unchanged) */
    n = tutti__osc_write(a, sizeof a, "/s_new", "siiisisisf", "temp__0", 1000, 1, 0,
                         "bufnum", 5, "in", 0, "duration", -1.0);
    k = local(a, n);
    CHECK(k > 0);
    CHECK(k > 0 && memmem(out, (size_t)k, "temp__0.p3", 10) != NULL);
    CHECK_EQ_I64(geti(out, (size_t)k, 1), NODE(1000));
    CHECK_EQ_I64(geti(out, (size_t)k, 2), 1);
    CHECK_EQ_I64(geti(out, (size_t)k, 3), 0);
    CHECK_EQ_I64(geti(out, (size_t)k, 5), buf5);
    CHECK_EQ_I64(geti(out, (size_t)k, 7), in0);

    /* sclang's int command numbers: /n_run (12) and /n_free (11) of it */
    n = tutti__osc_write(a, sizeof a, "/n_set", "isf", 1000, "amp", 0.5);
    k = local(a, n);
    CHECK(k > 0 && geti(out, (size_t)k, 0) == NODE(1000));
    n = tutti__osc_write(a, sizeof a, "/n_run", "ii", 1000, 0);
    k = local(a, n);
    CHECK(k > 0 && geti(out, (size_t)k, 0) == NODE(1000));
    n = tutti__osc_write(a, sizeof a, "/n_free", "ii", 1000, 1001);
    CHECK_EQ_I64(local(a, n), 0); /* 1001 is a note of the session */
    memcpy(c, "\0\0\0\x0b,i\0\0\0\0\x03\xe8", 12);
    k = local(c, 12);
    CHECK(k > 0 && geti(out, (size_t)k, 0) == NODE(1000));
    n = tutti__osc_write(a, sizeof a, "/n_set", "isf", 1000, "amp", 0.5);
    CHECK_EQ_I64(local(a, n), 0); /* freed: no longer the recording's */

    /* /b_close 5 with the completion /b_free 5, then the buffer is forgotten */
    size_t fn = tutti__osc_write(f, sizeof f, "/b_free", "i", 5);
    n = tutti__osc_write(a, sizeof a, "/b_close", "ib", 5, (const void *)f, fn);
    k = local(a, n);
    CHECK(k > 0 && geti(out, (size_t)k, 0) == buf5);
    CHECK(k > 0 && geti(out + (size_t)k - tutti__osc_pad4(fn), fn, 0) == buf5);
    n = tutti__osc_write(a, sizeof a, "/b_query", "i", 5);
    CHECK_EQ_I64(local(a, n), 0);
    CHECK_EQ_I64(rec.nbufs, 0);
    CHECK_EQ_I64(rec.nnodes, 0);
}

static void test_not_recordings(void)
{
    uint8_t w[256], a[512];
    tutti__record_clear(&rec);
    /* a /b_write that closes its file (leaveOpen 0) is a file written on
     * every machine: refused by the session, not ours */
    size_t wn = tutti__osc_write(w, sizeof w, "/b_write", "isssiii", 7, "/tmp/y.wav",
                                 "wav", "int16", -1, 0, 0);
    CHECK_EQ_I64(local(w, wn), 0);
    size_t n =
        tutti__osc_write(a, sizeof a, "/b_alloc", "iiib", 7, 64, 1, (const void *)w, wn);
    CHECK_EQ_I64(local(a, n), 0);
    /* a completion for another buffer, or a buffer outside the part's span */
    wn = tutti__osc_write(w, sizeof w, "/b_write", "isssiii", 8, "/tmp/y.wav", "wav",
                          "int16", 0, 0, 1);
    n = tutti__osc_write(a, sizeof a, "/b_alloc", "iiib", 7, 64, 1, (const void *)w, wn);
    CHECK_EQ_I64(local(a, n), 0);
    n = tutti__osc_write(a, sizeof a, "/b_write", "isssiii", 5000, "/tmp/y.wav", "wav",
                         "int16", 0, 0, 1);
    CHECK_EQ_I64(local(a, n), 0);
    /* slot 0 (solo) and bundles are never ours */
    n = tutti__osc_write(a, sizeof a, "/b_write", "isssiii", 7, "/tmp/y.wav", "wav",
                         "int16", 0, 0, 1);
    CHECK_EQ_I64(tutti__record_local(&rec, ns, 0, a, n, out, sizeof out), 0);
    CHECK_EQ_I64(local(a, n), (int64_t)n); /* a plain /b_write that leaves it open */
    CHECK_EQ_I64(rec.nbufs, 1);
    /* too little room: nothing marked twice, an error */
    n = tutti__osc_write(a, sizeof a, "/b_query", "i", 7);
    CHECK_EQ_I64(tutti__record_local(&rec, ns, SLOT, a, n, out, 4), TUTTI_EFULL);
    /* full: the 17th recording buffer goes to the session */
    for (int b = 100; b < 100 + TUTTI_RECORD_MAX; b++) {
        n = tutti__osc_write(a, sizeof a, "/b_write", "isssiii", b, "/tmp/y.wav", "wav",
                             "int16", 0, 0, 1);
        local(a, n);
    }
    CHECK_EQ_I64(rec.nbufs, TUTTI_RECORD_MAX);
}

int main(void)
{
    tutti__ns_config cfg;
    tutti__ns_config_init(&cfg);
    if (tutti__ns_create(&ns, &cfg)) return 1;
    tutti__record_clear(&rec);
    RUN(test_recorder);
    RUN(test_not_recordings);
    tutti__ns_destroy(ns);
    TEST_END();
}
