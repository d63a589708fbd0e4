/*
 * Fuzz the engines with hostile frames: arbitrary bytes, split into frames,
 * fed to a hub (as several peers, after a valid hello) and to a joined member.
 * Valid-looking frames reach the protocol logic (sequencing, relaying, the
 * merge, commands); nothing may crash, leak or trip a sanitizer.
 *
 * Inputs whose first byte has its top bit set run the credentialed
 * handshake instead: a hub that needs invitations and a member holding one,
 * wired to each other in memory, go through HELLO, CHALLENGE, AUTH and
 * WELCOME (then sealed frames) while the fuzzer's frames are fed to both in
 * between, at any point of it: to the member (a forged CHALLENGE, WELCOME or
 * REJECT mid-handshake, clear frames on its sealed link) and to the hub on
 * the member's own connection and on two others.
 */
#include "auth.h"
#include "engine.h"
#include "order.h"

#include <stdlib.h>
#include <string.h>

static tutti_time fake_now;
static tutti_time io_now(void *ctx)
{
    (void)ctx;
    return fake_now;
}
static void io_send(void *ctx, uint32_t peer, const uint8_t *buf, size_t len)
{
    (void)ctx, (void)peer, (void)buf, (void)len;
}

static void hello(tutti_hub *h, uint32_t peer, tutti__wbuf *b)
{
    tutti__frame_hdr hdr = {TUTTI__WIRE_VERSION, 0, 0, 0};
    tutti__rec r;
    memset(&r, 0, sizeof r);
    r.type = TUTTI__REC_HELLO;
    r.u.hello.session = tutti__str_c("fuzz");
    r.u.hello.name = tutti__str_c("p");
    tutti__wbuf_reset(b);
    tutti__frame_begin(b, &hdr);
    tutti__rec_put(b, &r);
    tutti_hub_receive(h, peer, b->p, b->len);
}

/* Frames between the credentialed hub and member, in memory. */
enum { QUEUE = 64 };
typedef struct queue {
    uint8_t *frame[QUEUE];
    size_t len[QUEUE];
    uint32_t n;
} queue;

static queue to_hub, to_member;

static void push(queue *q, const uint8_t *buf, size_t len)
{
    if (q->n == QUEUE) return; /* a bounded link: the rest is lost */
    q->frame[q->n] = malloc(len ? len : 1);
    if (!q->frame[q->n]) return;
    memcpy(q->frame[q->n], buf, len);
    q->len[q->n++] = len;
}

static void hub_send(void *ctx, uint32_t peer, const uint8_t *buf, size_t len)
{
    (void)ctx;
    if (peer == 1) push(&to_member, buf, len);
}

static void member_send(void *ctx, uint32_t peer, const uint8_t *buf, size_t len)
{
    (void)ctx, (void)peer;
    push(&to_hub, buf, len);
}

static uint64_t rng_state;
static uint64_t io_random(void *ctx)
{
    (void)ctx;
    uint64_t z = (rng_state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* What is queued either way, delivered (what that sends is queued again,
 * for the next pump). */
static void pump(tutti_hub *h, tutti_member *m)
{
    queue a = to_hub, b = to_member;
    to_hub.n = to_member.n = 0;
    for (uint32_t i = 0; i < a.n; i++) {
        tutti_hub_receive(h, 1, a.frame[i], a.len[i]);
        free(a.frame[i]);
    }
    for (uint32_t i = 0; i < b.n; i++) {
        tutti_member_receive(m, b.frame[i], b.len[i]);
        free(b.frame[i]);
    }
}

static void drain(queue *q)
{
    for (uint32_t i = 0; i < q->n; i++)
        free(q->frame[i]);
    q->n = 0;
}

static int credentialed(const uint8_t *data, size_t size)
{
    fake_now = TUTTI_S;
    rng_state = 42;
    uint8_t seed[32], pk[32], sk[64];
    memset(seed, 7, sizeof seed);
    tutti__auth_keypair(pk, sk, seed);
    tutti_io hio = {NULL, io_now, io_random, hub_send, NULL, NULL};
    tutti_io mio = {NULL, io_now, io_random, member_send, NULL, NULL};
    tutti_hub_config hc;
    tutti_hub_config_init(&hc);
    hc.session = "fuzz";
    hc.max_members = 4;
    hc.open = false;
    hc.hub_sk = sk;
    hc.settings = "limiter=-6";
    tutti_hub *h;
    if (tutti_hub_create(&h, &hc, &hio)) return 0;
    tutti_invite inv;
    memset(&inv, 0, sizeof inv);
    strcpy(inv.id, "ab");
    memset(inv.secret, 0x5a, sizeof inv.secret);
    memcpy(inv.hub_pk, pk, 32);
    tutti_hub_set_invites(h, &inv, 1);
    tutti_member_config mc;
    tutti_member_config_init(&mc);
    mc.session = "fuzz";
    mc.name = "m";
    mc.invite = &inv;
    tutti_member *m;
    if (tutti_member_create(&m, &mc, &mio, NULL)) {
        tutti_hub_destroy(h);
        return 0;
    }
    tutti_hub_connected(h, 1);
    tutti_hub_connected(h, 2);
    tutti_hub_connected(h, 3);
    tutti_member_connected(m);
    /* Frames: a length byte, a target byte, then that many bytes; the
     * handshake moves one step after each. */
    size_t i = 1;
    while (i + 2 <= size) {
        size_t len = data[i];
        uint8_t target = data[i + 1];
        i += 2;
        if (len > size - i) len = size - i;
        if (target & 1)
            tutti_member_receive(m, data + i, len);
        else
            tutti_hub_receive(h, 1 + (target >> 1) % 3, data + i, len);
        pump(h, m);
        fake_now += (target >> 4) * TUTTI_MS;
        tutti_hub_tick(h);
        tutti_member_tick(m);
        i += len;
    }
    for (int k = 0; k < 8; k++)
        pump(h, m);
    if (size == 1) {
        /* no frames of the fuzzer's: the handshake must have gone through
         * (else this target would not be reaching what it is meant to) */
        tutti_member_status st;
        tutti_member_status_get(m, &st);
        if (!st.joined || !st.sealed || !st.hub_verified || strcmp(st.settings, "limiter=-6"))
            abort();
    }
    drain(&to_hub);
    drain(&to_member);
    tutti_member_destroy(m);
    tutti_hub_destroy(h);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size && (data[0] & 0x80)) return credentialed(data, size);
    fake_now = TUTTI_S;
    tutti_io io = {NULL, io_now, NULL, io_send, NULL, NULL};
    tutti_hub_config hc;
    tutti_hub_config_init(&hc);
    hc.session = "fuzz";
    hc.max_members = 4;
    tutti_hub *h;
    if (tutti_hub_create(&h, &hc, &io)) return 0;
    tutti_member_config mc;
    tutti_member_config_init(&mc);
    mc.session = "fuzz";
    tutti_member *m;
    if (tutti_member_create(&m, &mc, &io, NULL)) {
        tutti_hub_destroy(h);
        return 0;
    }
    tutti__wbuf b;
    tutti__wbuf_init(&b);
    hello(h, 1, &b);
    hello(h, 2, &b);
    /* A member that has joined, so sequenced frames reach its merge. */
    tutti_member_connected(m);
    tutti__frame_hdr hdr = {TUTTI__WIRE_VERSION, 0, 0, 0};
    tutti__rec r;
    memset(&r, 0, sizeof r);
    r.type = TUTTI__REC_WELCOME;
    r.u.welcome.member_id = 7;
    r.u.welcome.horizon = 50 * TUTTI_MS;
    r.u.welcome.hub_next = 1;
    tutti__wbuf_reset(&b);
    tutti__frame_begin(&b, &hdr);
    tutti__rec_put(&b, &r);
    tutti_member_receive(m, b.p, b.len);

    /* Frames: a length byte, a target byte, then that many bytes. */
    size_t i = 0;
    while (i + 2 <= size) {
        size_t len = data[i];
        uint8_t target = data[i + 1];
        i += 2;
        if (len > size - i) len = size - i;
        if (target & 1) tutti_member_receive(m, data + i, len);
        else tutti_hub_receive(h, 1 + (target >> 1) % 3, data + i, len);
        fake_now += (target >> 4) * TUTTI_MS;
        tutti_hub_tick(h);
        tutti_member_tick(m);
        i += len;
    }
    tutti__wbuf_free(&b);
    tutti_member_destroy(m);
    tutti_hub_destroy(h);
    return 0;
}
