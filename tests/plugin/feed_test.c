/*
 * The session feed without a server (plugin/feed.c): the commands' parser,
 * the /tutti/timeline bundle's layout and arithmetic, and subscribing on a
 * solo proxy (the local grid), with the limit of 16 subscribers.
 * e2e.plugin_feed_test runs the feed with real servers in a session.
 */
#include "feed.h"
#include "osc.h"
#include "test.h"

#include <math.h>

static void parse(void)
{
    uint8_t b[256];
    tutti__feed_cmd c;
    char why[160];
    size_t n = tutti__osc_write(b, sizeof b, "/cmd", "ssi", "tutti", "notify", 1);
    CHECK(tutti__feed_parse(b, n, &c, why, sizeof why) == 1);
    CHECK(c.what == TUTTI__FEED_NOTIFY && c.value == 1);
    n = tutti__osc_write(b, sizeof b, "/cmd", "ssf", "tutti", "bpm", 97.5);
    CHECK(tutti__feed_parse(b, n, &c, why, sizeof why) == 1);
    CHECK(c.what == TUTTI__FEED_BPM && c.value == 97.5);
    n = tutti__osc_write(b, sizeof b, "/cmd", "ssd", "tutti", "bpm", 133.25);
    CHECK(tutti__feed_parse(b, n, &c, why, sizeof why) == 1 && c.value == 133.25);
    n = tutti__osc_write(b, sizeof b, "/cmd", "ssi", "tutti", "transport", 0);
    CHECK(tutti__feed_parse(b, n, &c, why, sizeof why) == 1);
    CHECK(c.what == TUTTI__FEED_TRANSPORT && c.value == 0);
    /* wrong arguments: refused in words */
    n = tutti__osc_write(b, sizeof b, "/cmd", "ssf", "tutti", "bpm", 5000.0);
    CHECK(tutti__feed_parse(b, n, &c, why, sizeof why) == TUTTI_EINVAL);
    CHECK(strstr(why, "5000") != NULL);
    n = tutti__osc_write(b, sizeof b, "/cmd", "ss", "tutti", "bpm");
    CHECK(tutti__feed_parse(b, n, &c, why, sizeof why) == TUTTI_EINVAL);
    n = tutti__osc_write(b, sizeof b, "/cmd", "sss", "tutti", "transport", "yes");
    CHECK(tutti__feed_parse(b, n, &c, why, sizeof why) == TUTTI_EINVAL);
    n = tutti__osc_write(b, sizeof b, "/cmd", "ssi", "tutti", "notify", 2);
    CHECK(tutti__feed_parse(b, n, &c, why, sizeof why) == TUTTI_EINVAL);
    /* not the feed's */
    n = tutti__osc_write(b, sizeof b, "/cmd", "ss", "tutti", "status");
    CHECK(tutti__feed_parse(b, n, &c, why, sizeof why) == 0);
    n = tutti__osc_write(b, sizeof b, "/cmd", "ssi", "other", "notify", 1);
    CHECK(tutti__feed_parse(b, n, &c, why, sizeof why) == 0);
    n = tutti__osc_write(b, sizeof b, "/notify", "i", 1);
    CHECK(tutti__feed_parse(b, n, &c, why, sizeof why) == 0);
}

static double get_d(const uint8_t *p)
{
    uint64_t u = tutti__osc_rd64(p);
    double d;
    memcpy(&d, &u, sizeof d);
    return d;
}

static void bundle(void)
{
    tutti__session_view v;
    memset(&v, 0, sizeof v);
    v.seq = 3;
    v.ntl = 1;
    /* 2025-01-01 00:00:01.25 session time; this machine 2 ms behind */
    tutti_time t0 = INT64_C(3944678401) * TUTTI_S + 250 * TUTTI_MS;
    tutti_timeline_init(&v.tl[0], 132.0, 3.0, t0);
    v.tl[0].beat0 = 48.0;
    v.tl[0].playing = true;
    v.offset_ns = 2 * TUTTI_MS;
    uint8_t out[256];
    size_t n = tutti__feed_timeline_bundle(&v, 0, out, sizeof out);
    CHECK(n > 20 && tutti__osc_check(out, n) == 0 && tutti__osc_is_bundle(out, n));
    /* the timetag is the instant on the wall clock */
    CHECK(tutti__osc_rd64(out + 8) == tutti_time_to_ntp(t0 - 2 * TUTTI_MS));
    tutti__osc_msg m;
    CHECK(tutti__osc_msg_parse(out + 20, tutti__osc_rd32(out + 16), &m) == 0);
    CHECK(!strcmp(m.addr, "/tutti/timeline") && !strcmp(m.tags, "idddddi"));
    const uint8_t *a = m.args;
    CHECK(tutti__osc_rd32(a) == 3);
    CHECK(get_d(a + 4) == 3944678401.25);
    /* 2025-01-01 00:00:01.248 in Unix seconds */
    CHECK(fabs(get_d(a + 12) - (3944678401.248 - 2208988800.0)) < 1e-6);
    CHECK(get_d(a + 20) == 48.0 && get_d(a + 28) == 132.0 && get_d(a + 36) == 3.0);
    CHECK(tutti__osc_rd32(a + 44) == 1);
    CHECK(tutti__feed_timeline_bundle(&v, 1, out, sizeof out) == 0); /* no second */
    CHECK(tutti__feed_timeline_bundle(&v, 0, out, 40) == 0);         /* too small */
}

/* What the feed sent, by client. */
static struct {
    uint64_t ctx;
    char addr[32];
    size_t len;
} sent[256];
static int nsent;

static void capture(uint64_t ctx, const uint8_t *p, size_t len)
{
    if (nsent == 256) return;
    CHECK(tutti__osc_check(p, len) == 0);
    const uint8_t *msg = p;
    size_t mlen = len;
    if (tutti__osc_is_bundle(p, len)) {
        msg = p + 20;
        mlen = tutti__osc_rd32(p + 16);
    }
    tutti__osc_msg m;
    CHECK(tutti__osc_msg_parse(msg, mlen, &m) == 0);
    sent[nsent].ctx = ctx;
    snprintf(sent[nsent].addr, sizeof sent[nsent].addr, "%s", m.addr ? m.addr : "?");
    sent[nsent].len = len;
    nsent++;
}

static bool no_inject(void *host, const uint8_t *p, size_t len, uint64_t ctx)
{
    (void)host, (void)p, (void)len, (void)ctx;
    return false;
}

static int not_ready(void *host)
{
    (void)host;
    return TUTTI_PROXY_WAIT_ATTACH;
}

static void solo(void)
{
    tutti_proxy_host host = {no_inject, not_ready, NULL, NULL, NULL};
    tutti__session_init(&host);
    tutti__feed_init(capture);
    tutti__feed_subscribe(1, true);
    CHECK_EQ_I64(nsent, 4);
    CHECK(!strcmp(sent[0].addr, "/done") && !strcmp(sent[1].addr, "/tutti/session") &&
          !strcmp(sent[2].addr, "/tutti/members") &&
          !strcmp(sent[3].addr, "/tutti/timeline"));
    /* nothing changed: a poll sends nothing new to it but what a first poll
     * sends everyone */
    tutti__session_view v;
    tutti__session_view_get(&v);
    CHECK(v.mode == TUTTI__MODE_SOLO && v.ntl == 1 && v.tl[0].bpm == 120.0);
    tutti__feed_poll(&v);
    int after_first = nsent;
    tutti__feed_poll(&v);
    CHECK_EQ_I64(nsent, after_first);
    /* the mapping moves by 20 us: the timeline again */
    v.offset_ns += 20000;
    tutti__feed_poll(&v);
    CHECK_EQ_I64(nsent, after_first + 1);
    CHECK(!strcmp(sent[nsent - 1].addr, "/tutti/timeline"));
    /* by 5 us: not */
    v.offset_ns += 5000;
    tutti__feed_poll(&v);
    CHECK_EQ_I64(nsent, after_first + 1);
    /* a change agreed: the timeline in force and the change */
    v.tl[1] = v.tl[0];
    v.tl[1].t0 += 10 * TUTTI_S;
    v.tl[1].beat0 = 20;
    v.tl[1].bpm = 90;
    v.ntl = 2;
    v.seq++;
    tutti__feed_poll(&v);
    CHECK_EQ_I64(nsent, after_first + 3);
    /* it comes into force: nothing to say */
    v.tl[0] = v.tl[1];
    v.ntl = 1;
    tutti__feed_poll(&v);
    CHECK_EQ_I64(nsent, after_first + 3);
    /* 16 subscribers at most; the 17th is told so */
    for (uint64_t c = 2; c <= 16; c++)
        tutti__feed_subscribe(c, true);
    CHECK_EQ_I64(tutti__feed_subscribers(), 16);
    nsent = 0;
    tutti__feed_subscribe(17, true);
    CHECK(nsent == 1 && !strcmp(sent[0].addr, "/fail"));
    /* subscribing again is not a second subscription */
    tutti__feed_subscribe(5, true);
    CHECK_EQ_I64(tutti__feed_subscribers(), 16);
    tutti__feed_subscribe(5, false);
    tutti__feed_forget(6);
    CHECK_EQ_I64(tutti__feed_subscribers(), 14);
}

int main(void)
{
    RUN(parse);
    RUN(bundle);
    RUN(solo);
    TEST_END();
}
