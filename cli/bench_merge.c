/*
 * `tutti bench merge`: how many events per second one member can take in from
 * the hub and deliver in order, on one core.
 *
 * It drives the real member engine through its public receive path: frames as
 * the hub sends them (batches of EVENT records from several origins with random
 * timetags, each batch closed by every origin's watermark), decoded, merged
 * and delivered. Frames are built before the clock starts; the timed part is
 * tutti_member_receive alone. A second figure isolates the ordered merge
 * (push + deliver, no wire decoding).
 *
 * --sealed: the link encrypted as after a credentialed join (seal.h). The hub's
 * side seals every frame before the clock starts (the hub's cost, once per
 * member: `tutti bench seal`); the timed part is the member's: open (replay
 * window, decryption) and then tutti_member_receive.
 */
#include "auth.h"
#include "bench.h"
#include "order.h"
#include "seal.h"
#include "sim/sim.h"
#include "wire.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static tutti_time mono_now(void *ctx)
{
    (void)ctx;
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (tutti_time)ts.tv_sec * TUTTI_S + ts.tv_nsec;
}

static void no_send(void *ctx, uint32_t peer, const uint8_t *buf, size_t len)
{
    (void)ctx, (void)peer, (void)buf, (void)len;
}

static uint64_t delivered_count;
static void on_deliver(void *ctx, const tutti_event *ev, tutti_time now, bool late)
{
    (void)ctx, (void)ev, (void)now, (void)late;
    delivered_count++;
}

typedef struct frame {
    uint8_t *p;
    size_t len;
} frame;

static frame build(tutti__wbuf *b)
{
    frame f = {malloc(b->len), b->len};
    if (!f.p) abort();
    memcpy(f.p, b->p, b->len);
    return f;
}

int tutti_bench_merge(int argc, char **argv)
{
    uint32_t events = 1000000, origins = 8, batch = 64, payload = 64;
    bool sealed = false;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--sealed")) sealed = true;
        else if (!strcmp(argv[i], "--events") && i + 1 < argc) events = (uint32_t)atol(argv[++i]);
        else if (!strcmp(argv[i], "--origins") && i + 1 < argc) origins = (uint32_t)atol(argv[++i]);
        else if (!strcmp(argv[i], "--batch") && i + 1 < argc) batch = (uint32_t)atol(argv[++i]);
        else {
            fprintf(stderr, "usage: tutti bench merge [--events N] [--origins N] [--batch N] [--sealed]\n");
            return 2;
        }
    }
    if (!events || !origins || !batch) return 2;

    tutti_io io = {NULL, mono_now, NULL, no_send, NULL, NULL};
    tutti_member_config cfg;
    tutti_member_config_init(&cfg);
    tutti_member_callbacks cb = {NULL, on_deliver, NULL};
    tutti_member *m;
    if (tutti_member_create(&m, &cfg, &io, &cb) != 0) return 1;
    tutti_member_connected(m);

    tutti__wbuf b;
    tutti__wbuf_init(&b);
    tutti__rec r;
    memset(&r, 0, sizeof r);
    tutti__frame_hdr hdr = {TUTTI__WIRE_VERSION, 0, 0, 0};
    tutti__frame_begin(&b, &hdr);
    r.type = TUTTI__REC_WELCOME;
    r.u.welcome.member_id = origins + 1;
    r.u.welcome.horizon = 100 * TUTTI_MS;
    r.u.welcome.heartbeat = 10 * TUTTI_MS;
    r.u.welcome.hub_next = 1;
    tutti__rec_put(&b, &r);
    tutti_member_receive(m, b.p, b.len);

    /* Pre-build the hub's frames. Timetags spread over a 500 ms window ahead
     * of the watermark, as a schedule-ahead workload does. */
    tutti_rng rng;
    tutti_rng_seed(&rng, 42);
    uint32_t nframes = (events + batch - 1) / batch;
    frame *frames = calloc(nframes, sizeof *frames);
    uint64_t *seq = calloc(origins + 2, sizeof *seq);
    uint8_t *pl = malloc(payload);
    if (!frames || !seq || !pl) return 1;
    for (uint32_t i = 0; i < payload; i++) pl[i] = (uint8_t)i;
    tutti_time base = TUTTI_S;
    uint64_t link_seq = 1;
    for (uint32_t f = 0; f < nframes; f++) {
        tutti__wbuf_reset(&b);
        tutti__frame_hdr h = {TUTTI__WIRE_VERSION, 0, link_seq++, 0};
        tutti__frame_begin(&b, &h);
        for (uint32_t k = 0; k < batch && f * batch + k < events; k++) {
            uint32_t o = 1 + (uint32_t)(tutti_rng_next(&rng) % origins);
            memset(&r, 0, sizeof r);
            r.type = TUTTI__REC_EVENT;
            r.u.event.key.t = base + tutti_rng_range(&rng, 0, 500 * TUTTI_MS);
            r.u.event.key.origin = o;
            r.u.event.key.seq = ++seq[o];
            r.u.event.payload.p = pl;
            r.u.event.payload.len = payload;
            tutti__rec_put(&b, &r);
        }
        base += 5 * TUTTI_MS; /* the session moves on between batches */
        /* the hub's close, behind the batch */
        memset(&r, 0, sizeof r);
        r.type = TUTTI__REC_WATERMARK;
        r.u.watermark.origin = 0;
        r.u.watermark.w = base;
        r.u.watermark.next_seq = 1;
        tutti__rec_put(&b, &r);
        frames[f] = build(&b);
    }

    /* The link sealed: the hub's side seals each frame now, the member's
     * opens it in the timed loop. */
    tutti__seal hub_seal, member_seal;
    uint8_t *plain = NULL;
    size_t plain_cap = 0;
    if (sealed) {
        if (tutti__auth_init() != 0) return 1;
        uint8_t secret[32];
        for (size_t i = 0; i < sizeof secret; i++) secret[i] = (uint8_t)tutti_rng_next(&rng);
        tutti__seal_init(&hub_seal, secret, true);
        tutti__seal_init(&member_seal, secret, false);
        for (uint32_t f = 0; f < nframes; f++) {
            uint8_t *out = malloc(frames[f].len + TUTTI__SEAL_OVERHEAD);
            if (!out) abort();
            size_t n = tutti__seal_frame(&hub_seal, out, frames[f].p, frames[f].len);
            if (frames[f].len > plain_cap) plain_cap = frames[f].len;
            free(frames[f].p);
            frames[f] = (frame){out, n};
        }
        plain = malloc(plain_cap + TUTTI__SEAL_OVERHEAD);
        if (!plain) abort();
    }
    uint64_t refused = 0;

    delivered_count = 0;
    tutti_time t0 = mono_now(NULL);
    for (uint32_t f = 0; f < nframes; f++) {
        if (!sealed) {
            tutti_member_receive(m, frames[f].p, frames[f].len);
            continue;
        }
        size_t n = 0;
        if (tutti__seal_open(&member_seal, plain, &n, frames[f].p, frames[f].len, NULL) != 0) {
            refused++;
            continue;
        }
        tutti_member_receive(m, plain, n);
    }
    tutti_time t1 = mono_now(NULL);
    uint64_t through_member = delivered_count;
    tutti_member_status st;
    tutti_member_status_get(m, &st);

    /* The merge alone: the same keys, pushed and delivered. */
    tutti__order o;
    tutti__order_init(&o, 1u << 22);
    for (uint32_t i = 0; i <= origins; i++) tutti__order_add_origin(&o, i, 1);
    tutti_rng_seed(&rng, 42);
    memset(seq, 0, (origins + 2) * sizeof *seq);
    base = TUTTI_S;
    uint64_t merged = 0;
    tutti_time t2 = mono_now(NULL);
    for (uint32_t f = 0; f < nframes; f++) {
        for (uint32_t k = 0; k < batch && f * batch + k < events; k++) {
            uint32_t org = 1 + (uint32_t)(tutti_rng_next(&rng) % origins);
            tutti_key key = {base + tutti_rng_range(&rng, 0, 500 * TUTTI_MS), org, ++seq[org]};
            tutti__order_push(&o, &key, 0, 0, pl, payload);
        }
        base += 5 * TUTTI_MS;
        tutti__order_set_close(&o, base);
        while (tutti__order_ready(&o)) {
            tutti__order_pop(&o);
            merged++;
        }
    }
    tutti_time t3 = mono_now(NULL);

    double s_member = (double)(t1 - t0) / 1e9, s_merge = (double)(t3 - t2) / 1e9;
    double eps = through_member / s_member, eps_merge = merged / s_merge;
    printf("member receive path%s: %llu events from %u origins in %.3f s: %.0f events/s, "
           "%.0f ns/event (batches of %u, %u-byte payloads)\n",
           sealed ? " (sealed link: open + receive)" : "", (unsigned long long)through_member,
           origins, s_member, eps, 1e9 * s_member / (double)through_member, batch, payload);
    printf("ordered merge alone: %llu events in %.3f s: %.0f events/s, %.0f ns/event\n",
           (unsigned long long)merged, s_merge, eps_merge, 1e9 * s_merge / (double)merged);
    printf("{\"bench\":\"merge\",\"events\":%llu,\"origins\":%u,\"batch\":%u,"
           "\"payload_bytes\":%u,\"events_per_s\":%.0f,\"ns_per_event\":%.1f,"
           "\"merge_only_events_per_s\":%.0f,\"merge_only_ns_per_event\":%.1f,"
           "\"still_pending\":%llu,\"sealed\":%s,\"frames_refused\":%llu}\n",
           (unsigned long long)through_member, origins, batch, payload, eps,
           1e9 * s_member / (double)through_member, eps_merge,
           1e9 * s_merge / (double)merged, (unsigned long long)st.pending,
           sealed ? "true" : "false", (unsigned long long)refused);
    for (uint32_t f = 0; f < nframes; f++) free(frames[f].p);
    free(frames);
    free(seq);
    free(pl);
    free(plain);
    tutti__order_free(&o);
    tutti__wbuf_free(&b);
    tutti_member_destroy(m);
    return through_member + st.pending == events && !refused ? 0 : 1;
}
