/*
 * libFuzzer target for the wire decoder.
 *
 * For arbitrary bytes it checks that:
 * - tutti__frame_decode returns 0, TUTTI_EPROTO or TUTTI_EVERSION, with a
 *   reason for the errors, and touches no byte outside the input (every field
 *   of every record is read here, every string byte by byte, so ASan sees it);
 * - a frame that validates delivers the same records when decoded again;
 * - re-encoding what was decoded gives a frame that decodes, is no longer than
 *   the input, and is a fixed point: decoding and re-encoding it gives the same
 *   bytes (the encoder is canonical, see wire.c);
 * - the payload of every command event, and the whole input taken as a command
 *   body, obey the same rules through tutti__command_decode/encode.
 * Any violation aborts, which libFuzzer reports as a crash.
 */
#include "wire.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static volatile uint64_t sink;

#define REQUIRE(cond)                                                                    \
    do {                                                                                 \
        if (!(cond)) {                                                                   \
            fprintf(stderr, "%s:%d: %s\n", __FILE__, __LINE__, #cond);                   \
            abort();                                                                     \
        }                                                                                \
    } while (0)

static void touch_str(tutti__str s, bool text)
{
    uint64_t h = s.len;
    REQUIRE(s.p != NULL);
    for (uint32_t i = 0; i < s.len; i++) {
        REQUIRE(!text || s.p[i] != 0);
        h = h * 31 + s.p[i];
    }
    sink += h;
}

static void touch_key(const tutti_key *k)
{
    sink += (uint64_t)k->t + k->origin + k->seq;
}

static void touch_double(double d)
{
    REQUIRE(isfinite(d));
    sink += (uint64_t)(d != 0);
}

/* Re-encodes a command body, decodes it again and checks it is a fixed point. */
static void check_command(const uint8_t *buf, size_t len)
{
    tutti__rec cmd, again;
    tutti__wbuf b1, b2;

    if (tutti__command_decode(buf, len, &cmd) != 0) return;
    REQUIRE(cmd.type == TUTTI__REC_COMMAND);
    sink += cmd.u.command.op + cmd.u.command.member_id + cmd.u.command.role +
            cmd.u.command.last_seq + (uint64_t)cmd.u.command.horizon +
            (uint64_t)cmd.u.command.heartbeat + (uint64_t)cmd.u.command.timeline.t0 +
            cmd.u.command.timeline.playing;
    touch_str(cmd.u.command.name, true);
    touch_double(cmd.u.command.timeline.bpm);
    touch_double(cmd.u.command.timeline.beat0);
    touch_double(cmd.u.command.timeline.quantum);

    tutti__wbuf_init(&b1);
    tutti__wbuf_init(&b2);
    tutti__command_encode(&b1, &cmd);
    REQUIRE(b1.err == 0);
    REQUIRE(b1.len <= len);
    REQUIRE(tutti__command_decode(b1.p, b1.len, &again) == 0);
    tutti__command_encode(&b2, &again);
    REQUIRE(b2.err == 0);
    REQUIRE(b1.len == b2.len && (b1.len == 0 || memcmp(b1.p, b2.p, b1.len) == 0));
    tutti__wbuf_free(&b1);
    tutti__wbuf_free(&b2);
}

static void touch(const tutti__rec *r)
{
    switch (r->type) {
    case TUTTI__REC_HELLO:
        touch_str(r->u.hello.session, true);
        touch_str(r->u.hello.name, true);
        sink += r->u.hello.role + r->u.hello.resume_id + r->u.hello.recv_next;
        touch_str(r->u.hello.cnonce, false);
        touch_str(r->u.hello.epk, false);
        break;
    case TUTTI__REC_CHALLENGE:
        touch_str(r->u.challenge.hnonce, false);
        touch_str(r->u.challenge.hub_pk, false);
        touch_str(r->u.challenge.sig, false);
        sink += r->u.challenge.mode;
        break;
    case TUTTI__REC_AUTH:
        sink += r->u.auth.kind;
        touch_str(r->u.auth.cred_id, true);
        touch_str(r->u.auth.proof, false);
        touch_str(r->u.auth.ident, false);
        break;
    case TUTTI__REC_WELCOME:
        sink += r->u.welcome.member_id + (uint64_t)r->u.welcome.horizon +
                (uint64_t)r->u.welcome.heartbeat + r->u.welcome.hub_next;
        touch_key(&r->u.welcome.joined);
        touch_str(r->u.welcome.settings, true);
        break;
    case TUTTI__REC_REJECT:
        sink += r->u.reject.code;
        touch_str(r->u.reject.reason, true);
        break;
    case TUTTI__REC_EVENT:
        touch_key(&r->u.event.key);
        sink += r->u.event.kind;
        touch_str(r->u.event.payload, false);
        if (r->u.event.kind == TUTTI_EV_COMMAND)
            check_command(r->u.event.payload.p, r->u.event.payload.len);
        break;
    case TUTTI__REC_WATERMARK:
        sink +=
            r->u.watermark.origin + (uint64_t)r->u.watermark.w + r->u.watermark.next_seq;
        break;
    case TUTTI__REC_PING:
        sink += (uint64_t)r->u.ping.t1;
        break;
    case TUTTI__REC_PONG:
        sink += (uint64_t)r->u.pong.t1 + (uint64_t)r->u.pong.t2 + (uint64_t)r->u.pong.t3;
        break;
    case TUTTI__REC_NACK:
        sink += r->u.nack.from;
        break;
    case TUTTI__REC_REPORT:
        sink += r->u.report.count + r->u.report.hash;
        break;
    case TUTTI__REC_STAMP:
        sink += (uint64_t)r->u.stamp.t + (uint64_t)r->u.stamp.e1 + (uint64_t)r->u.stamp.e2;
        break;
    case TUTTI__REC_NOTICE:
        sink += r->u.notice.code + (uint64_t)(int64_t)r->u.notice.level;
        touch_str(r->u.notice.text, true);
        break;
    case TUTTI__REC_REQUEST:
        sink += r->u.request.kind + (uint64_t)r->u.request.i;
        touch_double(r->u.request.f);
        break;
    case TUTTI__REC_BYE:
        break;
    case TUTTI__REC_COMMAND:
        sink += r->u.command.op + r->u.command.member_id + r->u.command.role +
                r->u.command.last_seq + (uint64_t)r->u.command.horizon +
                (uint64_t)r->u.command.heartbeat + (uint64_t)r->u.command.timeline.t0 +
                r->u.command.timeline.playing;
        touch_str(r->u.command.name, true);
        touch_double(r->u.command.timeline.bpm);
        touch_double(r->u.command.timeline.beat0);
        touch_double(r->u.command.timeline.quantum);
        break;
    default:
        REQUIRE(!"unknown record type handed out");
    }
}

typedef struct reenc {
    tutti__wbuf out;
    unsigned count;
    bool check; /* touch every field (first decode only) */
} reenc;

static int on_rec(void *ctx, const tutti__rec *r)
{
    reenc *e = ctx;
    if (e->check) touch(r);
    tutti__rec_put(&e->out, r);
    e->count++;
    return 0;
}

static int on_count(void *ctx, const tutti__rec *r)
{
    (void)r;
    (*(unsigned *)ctx)++;
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    tutti__frame_hdr h, h2;
    const char *why = NULL;
    reenc first, second;
    unsigned n2 = 0;
    int rc;

    check_command(data, size);

    /* Validation only. */
    rc = tutti__frame_decode(data, size, &h, NULL, NULL, &why);
    REQUIRE(rc == 0 || rc == TUTTI_EPROTO || rc == TUTTI_EVERSION);
    if (rc != 0) {
        REQUIRE(why != NULL && why[0] != '\0');
        /* The full decode must agree and deliver nothing. */
        REQUIRE(tutti__frame_decode(data, size, &h2, on_count, &n2, NULL) == rc);
        REQUIRE(n2 == 0);
        return 0;
    }
    REQUIRE(h.version == TUTTI__WIRE_VERSION);

    /* Decode, touching everything, and re-encode. */
    memset(&first, 0, sizeof first);
    tutti__wbuf_init(&first.out);
    first.check = true;
    tutti__frame_begin(&first.out, &h);
    REQUIRE(tutti__frame_decode(data, size, &h2, on_rec, &first, NULL) == 0);
    REQUIRE(h2.version == h.version && h2.flags == h.flags && h2.link_seq == h.link_seq &&
            h2.ack == h.ack);
    REQUIRE(first.out.err == 0);
    REQUIRE(first.out.len <= size);

    /* The re-encoded frame decodes to the same records and re-encodes to itself. */
    memset(&second, 0, sizeof second);
    tutti__wbuf_init(&second.out);
    tutti__frame_begin(&second.out, &h);
    REQUIRE(tutti__frame_decode(first.out.p, first.out.len, &h2, on_rec, &second, NULL) ==
            0);
    REQUIRE(h2.flags == h.flags && h2.link_seq == h.link_seq && h2.ack == h.ack);
    REQUIRE(second.count == first.count);
    REQUIRE(second.out.err == 0);
    REQUIRE(second.out.len == first.out.len);
    REQUIRE(memcmp(second.out.p, first.out.p, first.out.len) == 0);

    tutti__wbuf_free(&first.out);
    tutti__wbuf_free(&second.out);
    return 0;
}
