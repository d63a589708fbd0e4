/*
 * `tutti bench seal`: what sealing the member<->hub link costs (seal.h).
 *
 * Frames as the hub sends them (EVENT records with 64-byte payloads, closed
 * by the hub's close), built before the clock starts, are sealed by one
 * side and opened by the other: the timed part is tutti__seal_frame +
 * tutti__seal_open, which is what encryption adds to a frame's path in
 * both directions (a member's events to the hub, the hub's relay to every
 * member: each relayed frame is sealed once per member and opened once at
 * that member). Two batch sizes: 64 events a frame (the hub's relay under
 * load, what `tutti bench merge` feeds) and 1 (a member sending one event
 * a frame, the worst case per event).
 */
#include "auth.h"
#include "bench.h"
#include "seal.h"
#include "wire.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static tutti_time mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (tutti_time)ts.tv_sec * TUTTI_S + ts.tv_nsec;
}

/* ns per frame of seal + open over `events` events in frames of `batch`. */
static double run(uint32_t events, uint32_t batch, uint32_t payload, size_t *frame_bytes,
                  bool *ok)
{
    tutti__wbuf b;
    tutti__wbuf_init(&b);
    uint8_t *pl = calloc(1, payload);
    tutti__rec r;
    tutti__frame_hdr hdr = {TUTTI__WIRE_VERSION, 0, 1, 0};
    tutti__frame_begin(&b, &hdr);
    for (uint32_t k = 0; k < batch; k++) {
        memset(&r, 0, sizeof r);
        r.type = TUTTI__REC_EVENT;
        r.u.event.key.t = TUTTI_S + k * TUTTI_MS;
        r.u.event.key.origin = 1 + k % 8;
        r.u.event.key.seq = 1000 + k;
        r.u.event.payload.p = pl;
        r.u.event.payload.len = payload;
        tutti__rec_put(&b, &r);
    }
    memset(&r, 0, sizeof r);
    r.type = TUTTI__REC_WATERMARK;
    r.u.watermark.w = 2 * TUTTI_S;
    tutti__rec_put(&b, &r);
    *frame_bytes = b.len;
    uint8_t secret[32] = {1, 2, 3};
    tutti__seal hub, mem;
    tutti__seal_init(&hub, secret, true);
    tutti__seal_init(&mem, secret, false);
    uint8_t *sealed = malloc(b.len + TUTTI__SEAL_OVERHEAD), *plain = malloc(b.len + 64);
    uint32_t frames = events / batch;
    *ok = true;
    tutti_time t0 = mono_ns();
    for (uint32_t f = 0; f < frames; f++) {
        size_t n = tutti__seal_frame(&hub, sealed, b.p, b.len), m = 0;
        if (tutti__seal_open(&mem, plain, &m, sealed, n, NULL) != 0 || m != b.len)
            *ok = false;
    }
    tutti_time t1 = mono_ns();
    free(sealed);
    free(plain);
    free(pl);
    tutti__wbuf_free(&b);
    return (double)(t1 - t0) / frames;
}

int tutti_bench_seal(int argc, char **argv)
{
    uint32_t events = 1000000, payload = 64;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--events") && i + 1 < argc)
            events = (uint32_t)atol(argv[++i]);
        else {
            fprintf(stderr, "usage: tutti bench seal [--events N]\n");
            return 2;
        }
    }
    if (events < 64 || tutti__auth_init() != 0) return 2;
    size_t bytes64 = 0, bytes1 = 0;
    bool ok64, ok1;
    double f64 = run(events, 64, payload, &bytes64, &ok64);
    double f1 = run(events / 4, 1, payload, &bytes1, &ok1);
    printf("seal + open, 64 events a frame (%zu bytes): %.0f ns/frame, %.1f ns/event\n",
           bytes64, f64, f64 / 64);
    printf("seal + open, 1 event a frame (%zu bytes): %.0f ns/frame = ns/event\n", bytes1,
           f1);
    printf("{\"bench\":\"seal\",\"aead\":\"chacha20poly1305_ietf\",\"payload_bytes\":%u,"
           "\"frame64_bytes\":%zu,\"ns_per_frame64\":%.0f,\"ns_per_event_batch64\":%.1f,"
           "\"frame1_bytes\":%zu,\"ns_per_event_batch1\":%.0f,\"overhead_bytes\":%d,"
           "\"ok\":%s}\n",
           payload, bytes64, f64, f64 / 64, bytes1, f1, TUTTI__SEAL_OVERHEAD,
           ok64 && ok1 ? "true" : "false");
    return ok64 && ok1 ? 0 : 1;
}
