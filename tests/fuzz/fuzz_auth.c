/*
 * libFuzzer target for what authentication parses from untrusted bytes:
 * - the invitation parser (a file a member is handed, the hub's store), on
 *   the input as one line: it must accept or refuse with a reason, and what
 *   it accepts must format back to a line that parses to the same
 *   invitation;
 * - the handshake at the hub: the input, cut into frames, is fed to a hub
 *   that needs invitations, after a valid HELLO from each peer, so CHALLENGE
 *   answers, AUTH records of every size and kind, resumes and stray records
 *   reach on_hello/on_auth. Nothing may crash, and no peer may be admitted
 *   (the fuzzer cannot know an invitation's secret: an admission would mean
 *   the proof check is broken).
 */
#include "auth.h"
#include "engine.h"

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
static int welcomes;

static tutti_time io_now(void *ctx)
{
    (void)ctx;
    return fake_now;
}

static int count_welcome(void *ctx, const tutti__rec *r)
{
    (void)ctx;
    if (r->type == TUTTI__REC_WELCOME) welcomes++;
    return 0;
}

static void io_send(void *ctx, uint32_t peer, const uint8_t *buf, size_t len)
{
    (void)ctx, (void)peer;
    tutti__frame_hdr hdr;
    tutti__frame_decode(buf, len, &hdr, count_welcome, NULL, NULL);
}

static void check_invite(const uint8_t *data, size_t size)
{
    tutti_invite a, b;
    const char *why = NULL;
    if (tutti__invite_parse((const char *)data, size, &a, &why) != 0) {
        REQUIRE(why != NULL);
        return;
    }
    char line[512];
    size_t n = tutti__invite_format(&a, line, sizeof line);
    REQUIRE(n > 0 && n < sizeof line);
    REQUIRE(tutti__invite_parse(line, n, &b, &why) == 0);
    REQUIRE(memcmp(&a, &b, sizeof a) == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    check_invite(data, size);

    fake_now = TUTTI_S;
    welcomes = 0;
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

    tutti__wbuf b;
    tutti__wbuf_init(&b);
    uint8_t nonce[32] = {1}, epk[32];
    uint8_t esk[32], seed[32] = {2};
    tutti__auth_ephemeral(epk, esk, seed);
    for (uint32_t peer = 1; peer <= 3; peer++) {
        tutti__frame_hdr hdr = {TUTTI__WIRE_VERSION, 0, 0, 0};
        tutti__rec r;
        memset(&r, 0, sizeof r);
        r.type = TUTTI__REC_HELLO;
        r.u.hello.session = tutti__str_c("fuzz");
        r.u.hello.name = tutti__str_c("p");
        r.u.hello.resume_id = peer == 3 ? 1 : 0;
        r.u.hello.cnonce = (tutti__str){nonce, 32};
        r.u.hello.epk = (tutti__str){epk, 32};
        tutti__wbuf_reset(&b);
        tutti__frame_begin(&b, &hdr);
        tutti__rec_put(&b, &r);
        tutti_hub_receive(h, peer, b.p, b.len);
    }
    /* Frames: a length byte, a target byte, then that many bytes. */
    size_t i = 0;
    while (i + 2 <= size) {
        size_t len = data[i];
        uint8_t target = data[i + 1];
        i += 2;
        if (len > size - i) len = size - i;
        tutti_hub_receive(h, 1 + target % 3, data + i, len);
        fake_now += (target >> 4) * TUTTI_MS;
        tutti_hub_tick(h);
        i += len;
    }
    REQUIRE(welcomes == 0);
    tutti__wbuf_free(&b);
    tutti_hub_destroy(h);
    return 0;
}
