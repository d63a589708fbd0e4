/*
 * Fuzz the engines with hostile frames: arbitrary bytes, split into frames,
 * fed to a hub (as several peers, after a valid hello) and to a joined member.
 * Valid-looking frames reach the protocol logic (sequencing, relaying, the
 * merge, commands); nothing may crash, leak or trip a sanitizer.
 */
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

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
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
