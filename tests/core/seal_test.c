/*
 * Tests of sealed frames (seal.h): seal and open in both directions, a wrong
 * key, a reflected frame, replays, reordering within the window and beyond
 * it, every tampered byte and every truncation; then a hub that needs
 * invitations and a member joined with one, in one process, checking that
 * every frame after the WELCOME is sealed and carries neither the session
 * name, the member's name nor the OSC it sends (and that the handshake
 * carries neither name in clear), that clear and replayed
 * frames on the sealed link are dropped and counted, and that an open hub
 * stays in clear.
 */
#define _GNU_SOURCE /* memmem */
#include "auth.h"
#include "engine.h"
#include "seal.h"
#include "test.h"

static const uint8_t SECRET[32] = {7, 1, 2, 3};

static size_t seal_one(tutti__seal *s, uint8_t *out, const char *text)
{
    return tutti__seal_frame(s, out, (const uint8_t *)text, strlen(text));
}

static int open_one(tutti__seal *s, const uint8_t *in, size_t len, char *out)
{
    size_t n = 0;
    int rc = tutti__seal_open(s, (uint8_t *)out, &n, in, len, NULL);
    if (rc == 0) out[n] = 0;
    return rc;
}

static void test_roundtrip(void)
{
    tutti__seal m, h;
    tutti__seal_init(&m, SECRET, false);
    tutti__seal_init(&h, SECRET, true);
    uint8_t buf[256];
    char out[256];
    size_t n = seal_one(&m, buf, "frame /s_new alice");
    CHECK_EQ_I64(n, 18 + TUTTI__SEAL_OVERHEAD);
    CHECK(tutti__seal_is_sealed(buf, n));
    CHECK(memmem(buf, n, "alice", 5) == NULL);
    CHECK_EQ_I64(open_one(&h, buf, n, out), 0);
    CHECK(strcmp(out, "frame /s_new alice") == 0);
    n = seal_one(&h, buf, "hub to member");
    CHECK_EQ_I64(open_one(&m, buf, n, out), 0);
    CHECK(strcmp(out, "hub to member") == 0);
    /* an empty frame seals too */
    n = tutti__seal_frame(&m, buf, (const uint8_t *)"", 0);
    CHECK_EQ_I64(n, TUTTI__SEAL_OVERHEAD);
    CHECK_EQ_I64(open_one(&h, buf, n, out), 0);
    CHECK_EQ_I64(h.refused, 0);
}

static void test_wrong_key_and_reflection(void)
{
    uint8_t other[32] = {8};
    tutti__seal m, h, stranger;
    tutti__seal_init(&m, SECRET, false);
    tutti__seal_init(&h, SECRET, true);
    tutti__seal_init(&stranger, other, true);
    uint8_t buf[128];
    char out[128];
    size_t n = seal_one(&m, buf, "event");
    CHECK_EQ_I64(open_one(&stranger, buf, n, out), TUTTI_EPROTO);
    CHECK_EQ_I64(stranger.refused, 1);
    /* the member's own frame sent back to it: the other direction's key */
    tutti__seal m2;
    tutti__seal_init(&m2, SECRET, false);
    CHECK_EQ_I64(open_one(&m2, buf, n, out), TUTTI_EPROTO);
    /* keys off: nothing opens */
    tutti__seal_off(&h);
    CHECK_EQ_I64(open_one(&h, buf, n, out), TUTTI_EPROTO);
    CHECK(!h.on);
}

static void test_replay_and_reorder(void)
{
    tutti__seal m, h;
    tutti__seal_init(&m, SECRET, false);
    tutti__seal_init(&h, SECRET, true);
    uint8_t f[100][64];
    size_t n[100];
    char out[64];
    for (int i = 0; i < 100; i++)
        n[i] = seal_one(&m, f[i], "frame");
    /* order 3, 1, 2, 5, 4: all open (within the window) */
    int order[] = {2, 0, 1, 4, 3};
    for (int i = 0; i < 5; i++)
        CHECK_EQ_I64(open_one(&h, f[order[i]], n[order[i]], out), 0);
    /* each again: replays */
    for (int i = 0; i < 5; i++)
        CHECK_EQ_I64(open_one(&h, f[i], n[i], out), TUTTI_EPROTO);
    CHECK_EQ_I64(h.refused, 5);
    /* skip to counter 100: the window is 37..100 */
    CHECK_EQ_I64(open_one(&h, f[99], n[99], out), 0);
    CHECK_EQ_I64(open_one(&h, f[37], n[37], out), 0); /* counter 38 */
    CHECK_EQ_I64(open_one(&h, f[36], n[36], out), 0); /* counter 37: the oldest in it */
    CHECK_EQ_I64(open_one(&h, f[35], n[35], out), TUTTI_EPROTO); /* 36: too old */
    CHECK_EQ_I64(open_one(&h, f[99], n[99], out), TUTTI_EPROTO); /* replay of the top */
    CHECK_EQ_I64(open_one(&h, f[98], n[98], out), 0);
    CHECK_EQ_I64(h.rx_top, 100);
}

static void test_tamper_and_truncate(void)
{
    tutti__seal m, h;
    tutti__seal_init(&m, SECRET, false);
    tutti__seal_init(&h, SECRET, true);
    uint8_t buf[128], bad[128];
    char out[128];
    size_t n = seal_one(&m, buf, "TU\x01\x02 a frame of some length");
    int opened = 0;
    for (size_t i = 0; i < n; i++) {
        for (int bit = 0; bit < 8; bit++) {
            memcpy(bad, buf, n);
            bad[i] ^= (uint8_t)(1u << bit);
            if (open_one(&h, bad, n, out) == 0) opened++;
        }
    }
    CHECK_EQ_I64(opened, 0);
    for (size_t k = 0; k < n; k++) {
        if (open_one(&h, buf, k, out) == 0) opened++;
    }
    CHECK_EQ_I64(opened, 0);
    /* failures moved nothing: the genuine frame still opens, once */
    CHECK_EQ_I64(h.rx_top, 0);
    CHECK_EQ_I64(open_one(&h, buf, n, out), 0);
    CHECK_EQ_I64(open_one(&h, buf, n, out), TUTTI_EPROTO);
}

/* ------------------------------------------------ a hub and a member */

#define QMAX 4096
typedef struct pkt {
    bool to_hub;
    uint8_t *p;
    size_t n;
} pkt;

static struct {
    tutti_time now;
    uint64_t rnd;
    pkt q[QMAX];
    size_t head, tail;
    /* every frame sent after the WELCOME, both ways (a capture) */
    uint8_t *cap[QMAX];
    size_t capn[QMAX], ncap, nclear_after;
    size_t name_leaks; /* frames from the first HELLO on naming the session or member */
    bool welcomed;
    tutti_hub *h;
    tutti_member *m;
    uint64_t delivered_user;
} w;

static tutti_time io_now(void *ctx)
{
    (void)ctx;
    return w.now;
}

static uint64_t io_random(void *ctx)
{
    (void)ctx;
    w.rnd = w.rnd * 6364136223846793005ull + 1442695040888963407ull;
    return w.rnd ^ (w.rnd >> 29);
}

static int is_welcome(void *ctx, const tutti__rec *r)
{
    if (r->type == TUTTI__REC_WELCOME) *(bool *)ctx = true;
    return 0;
}

static void capture(bool to_hub, const uint8_t *buf, size_t len)
{
    if (memmem(buf, len, "moonlight", 9) || memmem(buf, len, "clarinet-zoe", 12))
        w.name_leaks++;
    if (w.welcomed && w.ncap < QMAX) {
        w.cap[w.ncap] = malloc(len);
        memcpy(w.cap[w.ncap], buf, len);
        w.capn[w.ncap++] = len;
        if (!tutti__seal_is_sealed(buf, len)) w.nclear_after++;
    }
    if (!to_hub && !tutti__seal_is_sealed(buf, len)) {
        bool wel = false;
        tutti__frame_decode(buf, len, NULL, is_welcome, &wel, NULL);
        if (wel) w.welcomed = true;
    }
}

static void push(bool to_hub, const uint8_t *buf, size_t len)
{
    capture(to_hub, buf, len);
    if (w.tail - w.head >= QMAX) return;
    pkt *k = &w.q[w.tail++ % QMAX];
    k->to_hub = to_hub;
    k->p = malloc(len);
    memcpy(k->p, buf, len);
    k->n = len;
}

static void hub_send(void *ctx, uint32_t peer, const uint8_t *buf, size_t len)
{
    (void)ctx, (void)peer;
    push(false, buf, len);
}

static void member_send(void *ctx, uint32_t peer, const uint8_t *buf, size_t len)
{
    (void)ctx, (void)peer;
    push(true, buf, len);
}

static void on_deliver(void *ctx, const tutti_event *ev, tutti_time now_s, bool late)
{
    (void)ctx, (void)now_s, (void)late;
    if (ev->kind == TUTTI_EV_USER) w.delivered_user++;
}

static void pump(tutti_time until)
{
    while (w.now < until) {
        while (w.head < w.tail) {
            pkt k = w.q[w.head++ % QMAX];
            if (k.to_hub)
                tutti_hub_receive(w.h, 1, k.p, k.n);
            else
                tutti_member_receive(w.m, k.p, k.n);
            free(k.p);
        }
        w.now += TUTTI_MS;
        tutti_hub_tick(w.h);
        tutti_member_tick(w.m);
    }
}

static void world_free(void)
{
    while (w.head < w.tail)
        free(w.q[w.head++ % QMAX].p);
    for (size_t i = 0; i < w.ncap; i++)
        free(w.cap[i]);
    tutti_member_destroy(w.m);
    tutti_hub_destroy(w.h);
    memset(&w, 0, sizeof w);
}

static void session_named(bool with_invite, const char *member_session)
{
    memset(&w, 0, sizeof w);
    w.now = TUTTI_S;
    w.rnd = 42;
    tutti_io hio = {NULL, io_now, io_random, hub_send, NULL, NULL};
    tutti_io mio = {NULL, io_now, io_random, member_send, NULL, NULL};
    tutti_hub_config hc;
    tutti_hub_config_init(&hc);
    hc.session = "moonlight-sonata";
    hc.open = !with_invite;
    CHECK_EQ_I64(tutti_hub_create(&w.h, &hc, &hio), 0);
    tutti_invite inv;
    memset(&inv, 0, sizeof inv);
    strcpy(inv.id, "ab12");
    inv.role = TUTTI_ROLE_PERFORMER;
    memset(inv.secret, 0x5a, sizeof inv.secret);
    tutti_hub_public_key(w.h, inv.hub_pk);
    if (with_invite) CHECK_EQ_I64(tutti_hub_set_invites(w.h, &inv, 1), 0);
    tutti_member_config mc;
    tutti_member_config_init(&mc);
    mc.session = member_session;
    mc.name = "clarinet-zoe";
    if (with_invite) mc.invite = &inv;
    tutti_member_callbacks cb = {NULL, on_deliver, NULL};
    CHECK_EQ_I64(tutti_member_create(&w.m, &mc, &mio, &cb), 0);
    tutti_member_connected(w.m);
    pump(w.now + 500 * TUTTI_MS);
    tutti_member_status st;
    tutti_member_status_get(w.m, &st);
    if (strcmp(member_session, "moonlight-sonata") != 0) {
        /* the session is checked inside the sealed identity: refused */
        CHECK(!st.joined);
        CHECK(st.failed);
        tutti_hub_status hs;
        tutti_hub_status_get(w.h, &hs);
        CHECK_EQ_I64(hs.members, 0);
        CHECK_EQ_I64(hs.auth_refused, 1);
        CHECK_EQ_I64(w.name_leaks, 0);
        return;
    }
    CHECK(st.joined);
    CHECK_EQ_I64(st.sealed, with_invite);
    const char osc[] = "/s_new\0\0,sii\0\0\0\0secret-synth";
    for (int i = 0; i < 20; i++) {
        tutti_key k;
        CHECK_EQ_I64(tutti_member_submit(w.m, tutti_member_session_now(w.m),
                                         (const uint8_t *)osc, sizeof osc, &k),
                     0);
        pump(w.now + 10 * TUTTI_MS);
    }
    pump(w.now + 2 * TUTTI_S);
    CHECK_EQ_I64(w.delivered_user, 20);
    tutti_hub_status hs;
    tutti_hub_status_get(w.h, &hs);
    CHECK_EQ_I64(hs.sealed_members, with_invite ? 1 : 0);
    CHECK_EQ_I64(hs.unsealed_dropped, 0);
    CHECK(w.ncap > 20);
    size_t leaks = 0;
    for (size_t i = 0; i < w.ncap; i++) {
        if (memmem(w.cap[i], w.capn[i], "secret-synth", 12) ||
            memmem(w.cap[i], w.capn[i], "/s_new", 6) ||
            memmem(w.cap[i], w.capn[i], "clarinet-zoe", 12) ||
            memmem(w.cap[i], w.capn[i], "moonlight", 9))
            leaks++;
    }
    if (with_invite) {
        CHECK_EQ_I64(w.nclear_after, 0);
        CHECK_EQ_I64(leaks, 0);
        CHECK_EQ_I64(w.name_leaks,
                     0); /* the handshake too: the names go sealed in AUTH */
    } else {
        CHECK(w.nclear_after == w.ncap);
        CHECK(leaks > 0); /* an open hub: the OSC in clear, as documented */
        CHECK(w.name_leaks > 0);
    }
}

static void session(bool with_invite)
{
    session_named(with_invite, "moonlight-sonata");
}

static void test_wrong_session_hidden(void)
{
    session_named(true, "moonlight-sonatina");
    world_free();
}

static void test_session_sealed(void)
{
    session(true);
    /* A replay of every captured member frame: all dropped, nothing relayed. */
    tutti_hub_status a, b;
    tutti_hub_status_get(w.h, &a);
    size_t replayed = 0;
    for (size_t i = 0; i < w.ncap; i++) {
        /* the capture mixes directions; the hub opens only the member's */
        tutti_hub_receive(w.h, 1, w.cap[i], w.capn[i]);
        replayed++;
    }
    pump(w.now + 100 * TUTTI_MS);
    tutti_hub_status_get(w.h, &b);
    CHECK_EQ_I64(b.relayed, a.relayed);
    CHECK_EQ_I64(b.unsealed_dropped - a.unsealed_dropped, replayed);
    CHECK_EQ_I64(b.members, 1);

    /* An event injected in clear on the sealed link: dropped, counted. */
    tutti_member_status ms;
    tutti_member_status_get(w.m, &ms);
    tutti__wbuf f;
    tutti__wbuf_init(&f);
    tutti__frame_hdr hdr = {TUTTI__WIRE_VERSION, 0, 1000, 0};
    tutti__rec r;
    memset(&r, 0, sizeof r);
    r.type = TUTTI__REC_EVENT;
    r.u.event.key = (tutti_key){tutti_member_session_now(w.m) + TUTTI_S, ms.id, 21};
    r.u.event.kind = TUTTI_EV_USER;
    r.u.event.payload = tutti__str_c("/forged");
    tutti__frame_begin(&f, &hdr);
    tutti__rec_put(&f, &r);
    tutti_hub_receive(w.h, 1, f.p, f.len);
    /* and one towards the member */
    tutti_member_receive(w.m, f.p, f.len);
    pump(w.now + 500 * TUTTI_MS);
    tutti_hub_status_get(w.h, &a);
    CHECK_EQ_I64(a.relayed, b.relayed);
    CHECK_EQ_I64(a.unsealed_dropped, b.unsealed_dropped + 1);
    tutti_member_status ms2;
    tutti_member_status_get(w.m, &ms2);
    CHECK_EQ_I64(ms2.unsealed_dropped, ms.unsealed_dropped + 1);
    CHECK_EQ_I64(w.delivered_user, 20);
    CHECK(ms2.joined);
    tutti__wbuf_free(&f);
    world_free();
}

static void test_session_open(void)
{
    session(false);
    world_free();
}

int main(void)
{
    CHECK_EQ_I64(tutti__auth_init(), 0);
    RUN(test_roundtrip);
    RUN(test_wrong_key_and_reflection);
    RUN(test_replay_and_reorder);
    RUN(test_tamper_and_truncate);
    RUN(test_session_sealed);
    RUN(test_session_open);
    RUN(test_wrong_session_hidden);
    TEST_END();
}
