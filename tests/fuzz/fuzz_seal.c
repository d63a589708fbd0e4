/*
 * libFuzzer target for the sealed link (seal.h) and what lies behind it.
 *
 * The target runs two handshakes itself, with hidden identities (auth.h):
 * as a member joining a hub that needs invitations, and as the hub of a
 * member holding an invitation with the target's key. It then holds each
 * link's keys, so the fuzzer's bytes reach both engines three ways: sealed
 * with the right key (arbitrary plaintext behind a seal that opens: the
 * decoder, the sequencing and the merge as an admitted member's peer sees
 * them), raw (clear frames on a sealed link, sealed-looking frames that do
 * not open), and as a sealed frame with one byte flipped.
 * Invariants: nothing crashes or trips a sanitizer; every frame sealed with
 * the right key opens at the hub (its counter of unopened frames does not
 * move for them, whatever the plaintext), and no altered frame opens.
 */
#include "auth.h"
#include "engine.h"
#include "seal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define REQUIRE(cond)                                                                    \
    do {                                                                                 \
        if (!(cond)) {                                                                   \
            fprintf(stderr, "%s:%d: %s\n", __FILE__, __LINE__, #cond);                   \
            abort();                                                                     \
        }                                                                                \
    } while (0)

static tutti_time fake_now;
/* what the engines sent that the target needs */
static uint8_t ch_hnonce[32], ch_pk[32], he_cnonce[32], he_epk[32];
static int got_challenge, got_hello, got_auth, hub_welcomes;

static tutti_time io_now(void *ctx)
{
    (void)ctx;
    return fake_now;
}

static int seen(void *ctx, const tutti__rec *r)
{
    (void)ctx;
    if (r->type == TUTTI__REC_CHALLENGE && r->u.challenge.hnonce.len == 32 &&
        r->u.challenge.hub_pk.len == 32) {
        memcpy(ch_hnonce, r->u.challenge.hnonce.p, 32);
        memcpy(ch_pk, r->u.challenge.hub_pk.p, 32);
        got_challenge++;
    }
    if (r->type == TUTTI__REC_WELCOME) hub_welcomes++;
    if (r->type == TUTTI__REC_HELLO && r->u.hello.cnonce.len == 32 &&
        r->u.hello.epk.len == 32) {
        REQUIRE(r->u.hello.session.len == 0 && r->u.hello.name.len == 0); /* hidden */
        memcpy(he_cnonce, r->u.hello.cnonce.p, 32);
        memcpy(he_epk, r->u.hello.epk.p, 32);
        got_hello++;
    }
    if (r->type == TUTTI__REC_AUTH) got_auth++;
    return 0;
}

static void io_send(void *ctx, uint32_t peer, const uint8_t *buf, size_t len)
{
    (void)ctx, (void)peer;
    if (!tutti__seal_is_sealed(buf, len))
        tutti__frame_decode(buf, len, NULL, seen, NULL, NULL);
}

static void put(tutti__wbuf *b, const tutti__rec *r)
{
    tutti__frame_hdr hdr = {TUTTI__WIRE_VERSION, 0, 0, 0};
    tutti__wbuf_reset(b);
    tutti__frame_begin(b, &hdr);
    tutti__rec_put(b, r);
}

/* Join the hub as peer 1 with the invitation; the member->hub keys in *out. */
static bool join_hub(tutti_hub *h, const tutti_invite *inv, tutti__wbuf *b,
                     tutti__seal *out)
{
    uint8_t cnonce[32] = {3}, seed[32] = {4}, epk[32], esk[32], th[32], dh[32], proof[32];
    uint8_t ident[TUTTI__ID_SEALED_MAX], secret[32];
    tutti__auth_ephemeral(epk, esk, seed);
    tutti__rec r;
    memset(&r, 0, sizeof r);
    r.type = TUTTI__REC_HELLO;
    r.u.hello.cnonce = (tutti__str){cnonce, 32};
    r.u.hello.epk = (tutti__str){epk, 32};
    put(b, &r);
    got_challenge = 0;
    tutti_hub_receive(h, 1, b->p, b->len);
    if (!got_challenge) return false;
    tutti__auth_transcript(th, "", cnonce, epk, ch_hnonce, ch_pk);
    if (!tutti__auth_dh_member(dh, esk, ch_pk)) return false;
    tutti__auth_proof(proof, inv->secret, dh, th, TUTTI__AUTH_INVITE, inv->id, "p", 0);
    memset(&r, 0, sizeof r);
    r.type = TUTTI__REC_AUTH;
    r.u.auth.kind = TUTTI__AUTH_INVITE;
    r.u.auth.cred_id = tutti__str_c(inv->id);
    r.u.auth.proof = (tutti__str){proof, 32};
    r.u.auth.ident =
        (tutti__str){ident, (uint32_t)tutti__auth_seal_id(ident, dh, th, "fuzz", "p")};
    put(b, &r);
    tutti_hub_receive(h, 1, b->p, b->len);
    tutti__auth_member_secret(secret, dh, th);
    tutti__seal_init(out, secret, false);
    return hub_welcomes == 1;
}

/* Be the hub of member m (which holds an invitation naming our key pk/sk);
 * the hub->member keys in *out. */
static bool host_member(tutti_member *m, const uint8_t pk[32], const uint8_t sk[64],
                        tutti__wbuf *b, tutti__seal *out)
{
    uint8_t hnonce[32] = {5}, th[32], dh[32], sig[64], secret[32];
    got_hello = got_auth = 0;
    tutti_member_connected(m);
    if (!got_hello) return false;
    tutti__auth_transcript(th, "", he_cnonce, he_epk, hnonce, pk);
    tutti__auth_sign(sig, th, sk);
    tutti__rec r;
    memset(&r, 0, sizeof r);
    r.type = TUTTI__REC_CHALLENGE;
    r.u.challenge.hnonce = (tutti__str){hnonce, 32};
    r.u.challenge.hub_pk = (tutti__str){pk, 32};
    r.u.challenge.sig = (tutti__str){sig, 64};
    r.u.challenge.mode = TUTTI__MODE_INVITE;
    put(b, &r);
    tutti_member_receive(m, b->p, b->len);
    if (!got_auth || !tutti__auth_dh_hub(dh, sk, he_epk)) return false;
    tutti__auth_member_secret(secret, dh, th);
    tutti__seal_init(out, secret, true);
    memset(&r, 0, sizeof r);
    r.type = TUTTI__REC_WELCOME;
    r.u.welcome.member_id = 7;
    r.u.welcome.horizon = 50 * TUTTI_MS;
    r.u.welcome.hub_next = 1;
    put(b, &r);
    tutti_member_receive(m, b->p, b->len);
    tutti_member_status st;
    tutti_member_status_get(m, &st);
    return st.sealed;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fake_now = TUTTI_S;
    hub_welcomes = 0;
    tutti_io io = {NULL, io_now, NULL, io_send, NULL, NULL};
    tutti_hub_config hc;
    tutti_hub_config_init(&hc);
    hc.session = "fuzz";
    hc.max_members = 4;
    hc.open = false;
    tutti_hub *h;
    if (tutti_hub_create(&h, &hc, &io)) return 0;
    tutti_invite inv;
    memset(&inv, 0, sizeof inv);
    strcpy(inv.id, "ab");
    memset(inv.secret, 0x5a, sizeof inv.secret);
    tutti_hub_set_invites(h, &inv, 1);

    uint8_t pk[32], sk[64], seed[32] = {9};
    tutti__auth_keypair(pk, sk, seed);
    tutti_invite minv = inv;
    memcpy(minv.hub_pk, pk, 32);
    tutti_member_config mc;
    tutti_member_config_init(&mc);
    mc.session = "fuzz";
    mc.invite = &minv;
    tutti_member *m;
    if (tutti_member_create(&m, &mc, &io, NULL)) {
        tutti_hub_destroy(h);
        return 0;
    }
    tutti__wbuf b, sealed;
    tutti__wbuf_init(&b);
    tutti__wbuf_init(&sealed);
    tutti__seal to_hub, to_member;
    REQUIRE(join_hub(h, &inv, &b, &to_hub));
    REQUIRE(host_member(m, pk, sk, &b, &to_member));

    /* Frames: a length byte, a mode byte, then that many bytes. Mode bits
     * 0-1: sealed, raw, sealed with a byte flipped (at the position the
     * length byte says); bit 2: to the member instead of the hub; bits 4-7:
     * milliseconds to let pass. */
    size_t i = 0;
    while (i + 2 <= size) {
        size_t len = data[i];
        uint8_t mode = data[i + 1];
        i += 2;
        if (len > size - i) len = size - i;
        bool member = mode & 4;
        const uint8_t *p = data + i;
        size_t n = len;
        if ((mode & 3) != 1) {
            uint8_t *q = tutti__wbuf_room(&sealed, len + TUTTI__SEAL_OVERHEAD);
            REQUIRE(q);
            n = tutti__seal_frame(member ? &to_member : &to_hub, q, data + i, len);
            if ((mode & 3) == 2) q[4 + len % (n - 4)] ^= 0x40; /* not the magic */
            p = q;
        }
        tutti_hub_status before, after;
        tutti_hub_status_get(h, &before);
        if (member)
            tutti_member_receive(m, p, n);
        else
            tutti_hub_receive(h, 1, p, n);
        tutti_hub_status_get(h, &after);
        if (!member && (mode & 3) == 0)
            REQUIRE(after.unsealed_dropped == before.unsealed_dropped);
        if (!member && (mode & 3) == 2)
            REQUIRE(after.unsealed_dropped == before.unsealed_dropped + 1);
        fake_now += (mode >> 4) * TUTTI_MS;
        tutti_hub_tick(h);
        tutti_member_tick(m);
        i += len;
    }
    tutti__wbuf_free(&b);
    tutti__wbuf_free(&sealed);
    tutti_member_destroy(m);
    tutti_hub_destroy(h);
    return 0;
}
