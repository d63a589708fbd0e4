/*
 * Tests of the wire format: round trips of every record type with edge values,
 * the compatibility rules (unknown records and fields skipped) and rejection of
 * malformed frames, with hand-made bytes where the encoder cannot produce them.
 *
 * Truncation rule checked here: a frame cut inside its header or inside a
 * record is TUTTI_EPROTO; a frame cut exactly between records is a valid,
 * shorter frame and decodes to exactly the records before the cut.
 */
#include "test.h"
#include "wire.h"

#include <math.h>

#define MAX_RECS 64

typedef struct collected {
    tutti__rec recs[MAX_RECS];
    int n;
    int stop_after; /* return 1 from the callback after this many (0: never) */
} collected;

static int collect(void *ctx, const tutti__rec *r)
{
    collected *c = ctx;
    if (c->n < MAX_RECS) c->recs[c->n] = *r;
    c->n++;
    return c->stop_after && c->n >= c->stop_after ? 1 : 0;
}

static int decode(const uint8_t *buf, size_t len, tutti__frame_hdr *hdr, collected *c,
                  const char **why)
{
    memset(c, 0, sizeof *c);
    return tutti__frame_decode(buf, len, hdr, collect, c, why);
}

static bool str_eq(tutti__str a, tutti__str b)
{
    if (a.len != b.len) return false;
    return a.len == 0 || memcmp(a.p, b.p, a.len) == 0;
}

static bool key_eq(tutti_key a, tutti_key b)
{
    return tutti_key_cmp(&a, &b) == 0;
}

static bool dbl_same(double a, double b)
{
    return memcmp(&a, &b, sizeof a) == 0; /* bit-identical: -0.0 != 0.0 */
}

static bool rec_eq(const tutti__rec *a, const tutti__rec *b)
{
    if (a->type != b->type) return false;
    switch (a->type) {
    case TUTTI__REC_HELLO:
        return str_eq(a->u.hello.session, b->u.hello.session) &&
               str_eq(a->u.hello.name, b->u.hello.name) &&
               a->u.hello.role == b->u.hello.role &&
               a->u.hello.resume_id == b->u.hello.resume_id &&
               a->u.hello.recv_next == b->u.hello.recv_next;
    case TUTTI__REC_WELCOME:
        return a->u.welcome.member_id == b->u.welcome.member_id &&
               a->u.welcome.horizon == b->u.welcome.horizon &&
               a->u.welcome.heartbeat == b->u.welcome.heartbeat &&
               key_eq(a->u.welcome.joined, b->u.welcome.joined) &&
               a->u.welcome.hub_next == b->u.welcome.hub_next &&
               str_eq(a->u.welcome.settings, b->u.welcome.settings);
    case TUTTI__REC_REJECT:
        return a->u.reject.code == b->u.reject.code &&
               str_eq(a->u.reject.reason, b->u.reject.reason);
    case TUTTI__REC_EVENT:
        return key_eq(a->u.event.key, b->u.event.key) &&
               a->u.event.kind == b->u.event.kind &&
               str_eq(a->u.event.payload, b->u.event.payload);
    case TUTTI__REC_WATERMARK:
        return a->u.watermark.origin == b->u.watermark.origin &&
               a->u.watermark.w == b->u.watermark.w &&
               a->u.watermark.next_seq == b->u.watermark.next_seq;
    case TUTTI__REC_PING:
        return a->u.ping.t1 == b->u.ping.t1 && a->u.ping.delay == b->u.ping.delay &&
               a->u.ping.late == b->u.ping.late && a->u.ping.bound == b->u.ping.bound &&
               a->u.ping.need == b->u.ping.need && a->u.ping.tail == b->u.ping.tail;
    case TUTTI__REC_PONG:
        return a->u.pong.t1 == b->u.pong.t1 && a->u.pong.t2 == b->u.pong.t2 &&
               a->u.pong.t3 == b->u.pong.t3;
    case TUTTI__REC_NACK:
        return a->u.nack.from == b->u.nack.from;
    case TUTTI__REC_STAMP:
        return a->u.stamp.t == b->u.stamp.t && a->u.stamp.e1 == b->u.stamp.e1 &&
               a->u.stamp.e2 == b->u.stamp.e2;
    case TUTTI__REC_REPORT:
        return a->u.report.count == b->u.report.count &&
               a->u.report.hash == b->u.report.hash;
    case TUTTI__REC_NOTICE:
        return a->u.notice.code == b->u.notice.code &&
               a->u.notice.level == b->u.notice.level &&
               str_eq(a->u.notice.text, b->u.notice.text);
    case TUTTI__REC_REQUEST:
        return a->u.request.kind == b->u.request.kind &&
               dbl_same(a->u.request.f, b->u.request.f) &&
               a->u.request.i == b->u.request.i;
    case TUTTI__REC_BYE:
        return true;
    case TUTTI__REC_COMMAND:
        return a->u.command.op == b->u.command.op &&
               a->u.command.member_id == b->u.command.member_id &&
               a->u.command.role == b->u.command.role &&
               str_eq(a->u.command.name, b->u.command.name) &&
               a->u.command.last_seq == b->u.command.last_seq &&
               a->u.command.horizon == b->u.command.horizon &&
               a->u.command.heartbeat == b->u.command.heartbeat &&
               dbl_same(a->u.command.timeline.bpm, b->u.command.timeline.bpm) &&
               dbl_same(a->u.command.timeline.beat0, b->u.command.timeline.beat0) &&
               a->u.command.timeline.t0 == b->u.command.timeline.t0 &&
               dbl_same(a->u.command.timeline.quantum, b->u.command.timeline.quantum) &&
               a->u.command.timeline.playing == b->u.command.timeline.playing;
    default:
        return false;
    }
}

static tutti__str bytes(const void *p, uint32_t n)
{
    tutti__str s = {p, n};
    return s;
}

static const uint8_t payload_with_nul[] = {0x00, 0xff, 0x00, 'a', 0x80};
static uint8_t big_payload[70000];

/* Records with every field at its low or high edge, for every record type. */
static int sample_records(tutti__rec *out, bool high)
{
    int n = 0;
    tutti__rec r;

    memset(&r, 0, sizeof r);
    r.type = TUTTI__REC_HELLO;
    r.u.hello.session = tutti__str_c(high ? "a-session-name-of-31-characters" : "");
    r.u.hello.name = tutti__str_c(high ? "\xe5\x90\x8d\xe5\x89\x8d" : "");
    r.u.hello.role = high ? UINT32_MAX : 0;
    r.u.hello.resume_id = high ? UINT32_MAX : 0;
    r.u.hello.recv_next = high ? UINT64_MAX : 0;
    out[n++] = r;

    memset(&r, 0, sizeof r);
    r.type = TUTTI__REC_WELCOME;
    r.u.welcome.member_id = high ? UINT32_MAX : 0;
    r.u.welcome.horizon = high ? INT64_MAX : INT64_MIN;
    r.u.welcome.heartbeat = high ? INT64_MIN : -1;
    r.u.welcome.joined.t = high ? INT64_MAX : INT64_MIN;
    r.u.welcome.joined.origin = high ? UINT32_MAX : 0;
    r.u.welcome.joined.seq = high ? UINT64_MAX : 0;
    r.u.welcome.hub_next = high ? UINT64_MAX : 1;
    r.u.welcome.settings = tutti__str_c(high ? "limiter=-6;x=y" : "");
    out[n++] = r;

    memset(&r, 0, sizeof r);
    r.type = TUTTI__REC_REJECT;
    r.u.reject.code = high ? UINT32_MAX : TUTTI__REJ_SESSION;
    r.u.reject.reason = tutti__str_c(high ? "no such session" : "");
    out[n++] = r;

    memset(&r, 0, sizeof r);
    r.type = TUTTI__REC_EVENT;
    r.u.event.key.t = high ? INT64_MAX : INT64_MIN;
    r.u.event.key.origin = high ? UINT32_MAX : 0;
    r.u.event.key.seq = high ? UINT64_MAX : 0;
    r.u.event.kind = high ? UINT32_MAX : TUTTI_EV_USER;
    r.u.event.payload =
        high ? bytes(payload_with_nul, sizeof payload_with_nul) : bytes(NULL, 0);
    out[n++] = r;

    memset(&r, 0, sizeof r);
    r.type = TUTTI__REC_WATERMARK;
    r.u.watermark.origin = high ? UINT32_MAX : 0;
    r.u.watermark.w = high ? INT64_MAX : INT64_MIN;
    r.u.watermark.next_seq = high ? UINT64_MAX : 0;
    out[n++] = r;

    memset(&r, 0, sizeof r);
    r.type = TUTTI__REC_PING;
    r.u.ping.t1 = high ? INT64_MAX : INT64_MIN;
    r.u.ping.delay = high ? INT64_MIN : 1;
    r.u.ping.late = high ? UINT64_MAX : 0;
    r.u.ping.bound = high ? -1 : INT64_MAX;
    r.u.ping.need = high ? INT64_MAX : -2;
    r.u.ping.tail = high ? INT64_MIN : 3;
    out[n++] = r;

    memset(&r, 0, sizeof r);
    r.type = TUTTI__REC_PONG;
    r.u.pong.t1 = high ? INT64_MAX : INT64_MIN;
    r.u.pong.t2 = high ? -1 : 0;
    r.u.pong.t3 = high ? INT64_MIN : 1;
    out[n++] = r;

    memset(&r, 0, sizeof r);
    r.type = TUTTI__REC_STAMP;
    r.u.stamp.t = high ? INT64_MAX : INT64_MIN;
    r.u.stamp.e1 = high ? -1 : 0;
    r.u.stamp.e2 = high ? INT64_MIN : 1;
    out[n++] = r;

    memset(&r, 0, sizeof r);
    r.type = TUTTI__REC_NACK;
    r.u.nack.from = high ? UINT64_MAX : 0;
    out[n++] = r;

    memset(&r, 0, sizeof r);
    r.type = TUTTI__REC_REPORT;
    r.u.report.count = high ? UINT64_MAX : 0;
    r.u.report.hash = high ? UINT64_MAX : 1;
    out[n++] = r;

    memset(&r, 0, sizeof r);
    r.type = TUTTI__REC_NOTICE;
    r.u.notice.code = high ? UINT32_MAX : TUTTI__NOTE_TEXT;
    r.u.notice.level = high ? INT32_MAX : INT32_MIN;
    r.u.notice.text = tutti__str_c(high ? "member 3 diverged at event 12" : "");
    out[n++] = r;

    memset(&r, 0, sizeof r);
    r.type = TUTTI__REC_REQUEST;
    r.u.request.kind = high ? UINT32_MAX : TUTTI__REQ_BPM;
    r.u.request.f = high ? 1.7976931348623157e308 : -0.0;
    r.u.request.i = high ? INT64_MAX : INT64_MIN;
    out[n++] = r;

    memset(&r, 0, sizeof r);
    r.type = TUTTI__REC_BYE;
    out[n++] = r;

    memset(&r, 0, sizeof r);
    r.type = TUTTI__REC_COMMAND;
    r.u.command.op = high ? UINT32_MAX : TUTTI__CMD_TEMPO;
    r.u.command.member_id = high ? UINT32_MAX : 0;
    r.u.command.role = high ? UINT32_MAX : 0;
    r.u.command.name = tutti__str_c(high ? "violin-2" : "");
    r.u.command.last_seq = high ? UINT64_MAX : 0;
    r.u.command.horizon = high ? INT64_MAX : INT64_MIN;
    r.u.command.heartbeat = high ? INT64_MIN : 0;
    r.u.command.timeline.bpm = high ? 999.999 : 4.9e-324;
    r.u.command.timeline.beat0 = high ? -1e300 : -0.0;
    r.u.command.timeline.t0 = high ? INT64_MAX : INT64_MIN;
    r.u.command.timeline.quantum = high ? 7.0 : 0.0;
    r.u.command.timeline.playing = high;
    out[n++] = r;

    return n;
}

static void test_roundtrip_each_type(void)
{
    tutti__rec recs[16];
    for (int high = 0; high <= 1; high++) {
        int n = sample_records(recs, high);
        for (int i = 0; i < n; i++) {
            tutti__wbuf b;
            tutti__frame_hdr h = {0, 0, (uint64_t)i, UINT64_MAX - (uint64_t)i}, got;
            collected c;
            int rc;

            tutti__wbuf_init(&b);
            tutti__frame_begin(&b, &h);
            tutti__rec_put(&b, &recs[i]);
            CHECK_EQ_I64(b.err, 0);
            rc = decode(b.p, b.len, &got, &c, NULL);
            CHECK_EQ_I64(rc, 0);
            CHECK_EQ_I64(c.n, 1);
            CHECK(rec_eq(&c.recs[0], &recs[i]));
            CHECK_EQ_I64(got.version, TUTTI__WIRE_VERSION);
            CHECK(got.link_seq == (uint64_t)i);
            CHECK(got.ack == UINT64_MAX - (uint64_t)i);
            tutti__wbuf_free(&b);
        }
    }
}

static void test_header_roundtrip(void)
{
    const uint64_t vals[] = {0, 1, 127, 128, 16383, 16384, UINT32_MAX, UINT64_MAX};
    for (size_t i = 0; i < sizeof vals / sizeof vals[0]; i++) {
        tutti__wbuf b;
        tutti__frame_hdr h = {99 /* ignored */, (uint8_t)(0xa5 + i), vals[i],
                              vals[sizeof vals / sizeof vals[0] - 1 - i]};
        tutti__frame_hdr got;
        collected c;

        tutti__wbuf_init(&b);
        tutti__frame_begin(&b, &h);
        CHECK(b.len >= 6 && b.p[0] == 'T' && b.p[1] == 'U');
        CHECK_EQ_I64(b.p[2], TUTTI__WIRE_VERSION);
        CHECK_EQ_I64(decode(b.p, b.len, &got, &c, NULL), 0);
        CHECK_EQ_I64(c.n, 0);
        CHECK_EQ_I64(got.version, TUTTI__WIRE_VERSION);
        CHECK_EQ_I64(got.flags, h.flags);
        CHECK(got.link_seq == h.link_seq);
        CHECK(got.ack == h.ack);
        tutti__wbuf_free(&b);
    }
}

/* Every record of both edge sets in one frame; returns the record ends. */
static int build_multi(tutti__wbuf *b, tutti__rec *recs, size_t *ends)
{
    tutti__frame_hdr h = {0, 0, 1234567, 89};
    int n = sample_records(recs, false);
    n += sample_records(recs + n, true);
    tutti__frame_begin(b, &h);
    ends[0] = b->len;
    for (int i = 0; i < n; i++) {
        tutti__rec_put(b, &recs[i]);
        ends[i + 1] = b->len;
    }
    return n;
}

static void test_multiple_records(void)
{
    tutti__rec recs[32];
    size_t ends[33];
    tutti__wbuf b;
    collected c;
    int n;

    tutti__wbuf_init(&b);
    n = build_multi(&b, recs, ends);
    CHECK_EQ_I64(b.err, 0);
    CHECK_EQ_I64(decode(b.p, b.len, NULL, &c, NULL), 0);
    CHECK_EQ_I64(c.n, n);
    for (int i = 0; i < n && i < c.n; i++)
        CHECK(rec_eq(&c.recs[i], &recs[i]));

    /* A nonzero callback result stops decoding and is returned. */
    memset(&c, 0, sizeof c);
    c.stop_after = 3;
    CHECK_EQ_I64(tutti__frame_decode(b.p, b.len, NULL, collect, &c, NULL), 1);
    CHECK_EQ_I64(c.n, 3);

    /* No callback: validation only. */
    CHECK_EQ_I64(tutti__frame_decode(b.p, b.len, NULL, NULL, NULL, NULL), 0);
    tutti__wbuf_free(&b);
}

static void test_every_truncation(void)
{
    tutti__rec recs[32];
    size_t ends[33];
    tutti__wbuf b;
    int n, boundaries = 0;

    tutti__wbuf_init(&b);
    n = build_multi(&b, recs, ends);
    for (size_t len = 0; len < b.len; len++) {
        collected c;
        const char *why = NULL;
        int at = -1;
        int rc = decode(b.p, len, NULL, &c, &why);

        for (int i = 0; i <= n; i++)
            if (ends[i] == len) at = i;
        if (at < 0) {
            CHECK_EQ_I64(rc, TUTTI_EPROTO);
            CHECK_EQ_I64(c.n, 0);
            CHECK(why != NULL);
        } else {
            boundaries++;
            CHECK_EQ_I64(rc, 0);
            CHECK_EQ_I64(c.n, at);
            for (int i = 0; i < at && i < c.n; i++)
                CHECK(rec_eq(&c.recs[i], &recs[i]));
        }
    }
    CHECK_EQ_I64(boundaries, n); /* the header alone, and every cut but the full frame */
    tutti__wbuf_free(&b);
}

/* Builds a frame around hand-made record bytes: header link_seq 1, ack 0. */
static size_t handmade(uint8_t *out, const uint8_t *recs, size_t n)
{
    const uint8_t hdr[] = {'T', 'U', TUTTI__WIRE_VERSION, 0, 1, 0};
    memcpy(out, hdr, sizeof hdr);
    memcpy(out + sizeof hdr, recs, n);
    return sizeof hdr + n;
}

static int decode_recs(const uint8_t *recs, size_t n, collected *c, const char **why)
{
    uint8_t buf[512];
    size_t len = handmade(buf, recs, n);
    return decode(buf, len, NULL, c, why);
}

static void test_unknown_record_skipped(void)
{
    /* Type 200 with a body that is not even valid fields, type 0, then a PING. */
    /* clang-format off */
    const uint8_t recs[] = {200, 4, 0xff, 0xff, 0xff, 0xff, 0, 0,
                            TUTTI__REC_PING, 2, 0x08, 0x54};
    /* clang-format on */
    collected c;

    CHECK_EQ_I64(decode_recs(recs, sizeof recs, &c, NULL), 0);
    CHECK_EQ_I64(c.n, 1);
    CHECK_EQ_I64(c.recs[0].type, TUTTI__REC_PING);
    CHECK_EQ_I64(c.recs[0].u.ping.t1, 42);
}

static void test_unknown_fields_skipped(void)
{
    /* PING: field 9 varint, 10 fixed64, 11 bytes, 2^40 varint, then t1 = -3. */
    /* clang-format off */
    const uint8_t recs[] = {TUTTI__REC_PING, 27,
                            0x48, 0xff, 0x01,
                            0x51, 1, 2, 3, 4, 5, 6, 7, 8,
                            0x5a, 3, 0, 0, 0,
                            0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x08, 0x00,
                            0x08, 0x05};
    /* clang-format on */
    collected c;
    const char *why = NULL;

    CHECK_EQ_I64(decode_recs(recs, sizeof recs, &c, &why), 0);
    CHECK_EQ_I64(c.n, 1);
    CHECK_EQ_I64(c.recs[0].u.ping.t1, -3);
}

static void test_lenient_forms(void)
{
    /* A padded varint, fields out of order and a repeated field (last wins). */
    /* clang-format off */
    const uint8_t recs[] = {TUTTI__REC_PONG, 10,
                            0x18, 0x06,             /* t3 = 3 */
                            0x08, 0x82, 0x80, 0x00, /* t1 = 1, padded */
                            0x08, 0x04,             /* t1 = 2 */
                            0x10, 0x01};            /* t2 = -1 */
    /* clang-format on */
    collected c;

    CHECK_EQ_I64(decode_recs(recs, sizeof recs, &c, NULL), 0);
    CHECK_EQ_I64(c.n, 1);
    CHECK_EQ_I64(c.recs[0].u.pong.t1, 2);
    CHECK_EQ_I64(c.recs[0].u.pong.t2, -1);
    CHECK_EQ_I64(c.recs[0].u.pong.t3, 3);
}

static void expect_proto(const uint8_t *recs, size_t n, const char *what)
{
    collected c;
    const char *why = NULL;
    int rc = decode_recs(recs, n, &c, &why);

    CHECK_EQ_I64(rc, TUTTI_EPROTO);
    CHECK_EQ_I64(c.n, 0);
    CHECK(why != NULL);
    if (rc != TUTTI_EPROTO) fprintf(stderr, "  (case: %s)\n", what);
}

static void test_malformed_fields(void)
{
    /* Each case follows a valid PING, which must not be delivered. */
    /* clang-format off */
    static const struct {
        const char *what;
        uint8_t bytes[24];
        size_t n;
    } cases[] = {
        {"wrong kind for a known field", {TUTTI__REC_PING, 2, 0x0a, 0}, 4},
        {"fixed64 where varint expected",
         {TUTTI__REC_NACK, 9, 0x09, 1, 2, 3, 4, 5, 6, 7, 8}, 11},
        {"varint where double expected", {TUTTI__REC_REQUEST, 2, 0x10, 1}, 4},
        {"kind 3", {TUTTI__REC_PING, 1, 0x0b}, 3},
        {"kind 7 on an unknown field", {TUTTI__REC_PING, 1, 0x7f}, 3},
        {"field number 0", {TUTTI__REC_PING, 2, 0x00, 0}, 4},
        {"truncated fixed64", {TUTTI__REC_REQUEST, 4, 0x11, 0, 0, 0}, 6},
        {"length past the record", {TUTTI__REC_REJECT, 3, 0x12, 5, 'a'}, 5},
        {"varint runs off the record", {TUTTI__REC_PING, 2, 0x08, 0x80, 0x01}, 5},
        {"body past the frame", {TUTTI__REC_PING, 5, 0x08, 0x02}, 4},
        {"truncated body length", {TUTTI__REC_PING, 0x80}, 2},
        {"record type only", {TUTTI__REC_PING}, 1},
        {"u32 out of range",
         {TUTTI__REC_EVENT, 6, 0x10, 0x80, 0x80, 0x80, 0x80, 0x10}, 8},
        {"i32 out of range",
         {TUTTI__REC_NOTICE, 6, 0x10, 0x80, 0x80, 0x80, 0x80, 0x10}, 8},
        {"bool not 0 or 1", {TUTTI__REC_COMMAND, 2, 0x60, 2}, 4},
        {"NUL in a string", {TUTTI__REC_HELLO, 5, 0x0a, 3, 'a', 0, 'b'}, 7},
        {"NUL alone in a string", {TUTTI__REC_COMMAND, 3, 0x22, 1, 0}, 5},
        {"NaN bpm",
         {TUTTI__REC_COMMAND, 9, 0x41, 0, 0, 0, 0, 0, 0, 0xf8, 0x7f}, 11},
        {"infinite quantum",
         {TUTTI__REC_COMMAND, 9, 0x59, 0, 0, 0, 0, 0, 0, 0xf0, 0x7f}, 11},
        {"-inf request", {TUTTI__REC_REQUEST, 9, 0x11, 0, 0, 0, 0, 0, 0, 0xf0, 0xff},
         11},
        {"11-byte varint in a field",
         {TUTTI__REC_NACK, 12, 0x08, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80,
          0x80, 0x80, 0x00},
         14},
        {"varint overflowing 64 bits",
         {TUTTI__REC_NACK, 11, 0x08, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
          0xff, 0x02},
         13},
    };
    /* clang-format on */
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        uint8_t recs[32] = {TUTTI__REC_PING, 2, 0x08, 0x02};
        memcpy(recs + 4, cases[i].bytes, cases[i].n);
        expect_proto(recs, 4 + cases[i].n, cases[i].what);
    }
}

static void test_varint_limits(void)
{
    /* The largest 10-byte varint is UINT64_MAX and is accepted. */
    /* clang-format off */
    const uint8_t recs[] = {TUTTI__REC_NACK, 11, 0x08, 0xff, 0xff, 0xff, 0xff, 0xff,
                            0xff, 0xff, 0xff, 0xff, 0x01};
    /* clang-format on */
    collected c;

    CHECK_EQ_I64(decode_recs(recs, sizeof recs, &c, NULL), 0);
    CHECK_EQ_I64(c.n, 1);
    CHECK(c.recs[0].u.nack.from == UINT64_MAX);
}

static void test_bad_header(void)
{
    collected c;
    const char *why = NULL;
    const uint8_t good[] = {'T', 'U', TUTTI__WIRE_VERSION, 0, 0, 0};
    uint8_t f[16];

    CHECK_EQ_I64(decode(good, sizeof good, NULL, &c, NULL), 0);

    memcpy(f, good, sizeof good);
    f[0] = 'X';
    CHECK_EQ_I64(decode(f, sizeof good, NULL, &c, &why), TUTTI_EPROTO);
    CHECK(why && strstr(why, "magic"));

    memcpy(f, good, sizeof good);
    f[2] = TUTTI__WIRE_VERSION + 1;
    f[3] = 0x42;
    why = NULL;
    {
        tutti__frame_hdr h;
        CHECK_EQ_I64(decode(f, sizeof good, &h, &c, &why), TUTTI_EVERSION);
        CHECK(why != NULL);
        CHECK_EQ_I64(h.version, TUTTI__WIRE_VERSION + 1);
        CHECK_EQ_I64(h.flags, 0x42);
        CHECK_EQ_I64(c.n, 0);
    }
    f[2] = 0;
    CHECK_EQ_I64(decode(f, sizeof good, NULL, &c, NULL), TUTTI_EVERSION);
    /* A newer version may lay out the rest differently: only its first 4 bytes
     * are read. */
    f[2] = 0xff;
    CHECK_EQ_I64(decode(f, 4, NULL, &c, NULL), TUTTI_EVERSION);

    CHECK_EQ_I64(decode(good, 0, NULL, &c, NULL), TUTTI_EPROTO);
    CHECK_EQ_I64(decode(good, 3, NULL, &c, NULL), TUTTI_EPROTO);
    CHECK_EQ_I64(decode(good, 5, NULL, &c, NULL), TUTTI_EPROTO); /* no ack */
    CHECK_EQ_I64(tutti__frame_decode(NULL, 0, NULL, collect, &c, NULL), TUTTI_EPROTO);

    /* An 11-byte link_seq. */
    {
        uint8_t g[20] = {'T', 'U', TUTTI__WIRE_VERSION, 0};
        for (int i = 0; i < 10; i++)
            g[4 + i] = 0x80;
        g[14] = 0x00;
        g[15] = 0x00;
        why = NULL;
        CHECK_EQ_I64(decode(g, 16, NULL, &c, &why), TUTTI_EPROTO);
        CHECK(why && strstr(why, "longer than 10"));
        /* Ten bytes whose last carries more than bit 63. */
        g[13] = 0x02;
        why = NULL;
        CHECK_EQ_I64(decode(g, 16, NULL, &c, &why), TUTTI_EPROTO);
        CHECK(why && strstr(why, "overflows"));
        /* Ten bytes, value 2^63: accepted. */
        g[13] = 0x01;
        {
            tutti__frame_hdr h;
            CHECK_EQ_I64(decode(g, 15, &h, &c, NULL), 0);
            CHECK(h.link_seq == UINT64_C(1) << 63);
        }
    }
}

static void test_frame_size_limit(void)
{
    size_t n = TUTTI__WIRE_MAX_FRAME + 1;
    uint8_t *buf = calloc(1, n);
    tutti__wbuf b;
    tutti__rec r;
    collected c;
    const char *why = NULL;
    size_t fixed;

    memcpy(buf, "TU\x01\x00\x00\x00", 6);
    CHECK_EQ_I64(decode(buf, n, NULL, &c, &why), TUTTI_EPROTO);
    CHECK(why && strstr(why, "large"));
    free(buf);

    /* An event that fills the frame to exactly the limit is accepted. */
    tutti__wbuf_init(&b);
    tutti__frame_hdr h = {0, 0, 0, 0};
    memset(&r, 0, sizeof r);
    r.type = TUTTI__REC_EVENT;
    r.u.event.key.t = 1;
    /* header 6 + type 1 + length 3 + t 2 + payload key 1 + payload length 3 */
    fixed = 6 + 1 + 3 + 2 + 1 + 3;
    buf = calloc(1, TUTTI__WIRE_MAX_FRAME);
    r.u.event.payload = bytes(buf, (uint32_t)(TUTTI__WIRE_MAX_FRAME - fixed));
    tutti__frame_begin(&b, &h);
    tutti__rec_put(&b, &r);
    CHECK_EQ_I64(b.err, 0);
    CHECK_EQ_I64(b.len, TUTTI__WIRE_MAX_FRAME);
    CHECK_EQ_I64(decode(b.p, b.len, NULL, &c, NULL), 0);
    CHECK_EQ_I64(c.n, 1);
    CHECK(c.n == 1 && c.recs[0].u.event.payload.len == TUTTI__WIRE_MAX_FRAME - fixed);

    /* One byte more and it is refused. */
    tutti__wbuf_reset(&b);
    r.u.event.payload.len++;
    tutti__frame_begin(&b, &h);
    tutti__rec_put(&b, &r);
    CHECK_EQ_I64(b.len, TUTTI__WIRE_MAX_FRAME + 1);
    CHECK_EQ_I64(decode(b.p, b.len, NULL, &c, NULL), TUTTI_EPROTO);
    tutti__wbuf_free(&b);
    free(buf);
}

static void test_bad_record_delivers_nothing(void)
{
    tutti__rec recs[32];
    size_t ends[33];
    tutti__wbuf b;
    collected c;
    const uint8_t bad[] = {TUTTI__REC_HELLO, 3, 0x0a, 1, 0};

    /* Append a record whose string holds a NUL: the valid ones before it are
     * withheld too. */
    tutti__wbuf_init(&b);
    build_multi(&b, recs, ends);
    {
        size_t len = b.len;
        uint8_t *copy = malloc(len + sizeof bad);
        memcpy(copy, b.p, len);
        memcpy(copy + len, bad, sizeof bad);
        CHECK_EQ_I64(decode(copy, len + sizeof bad, NULL, &c, NULL), TUTTI_EPROTO);
        CHECK_EQ_I64(c.n, 0);
        free(copy);
    }
    tutti__wbuf_free(&b);
}

static void test_canonical_encoding(void)
{
    tutti__wbuf b;
    tutti__rec r;
    collected c;
    tutti__frame_hdr h = {0, 0, 0, 0};

    tutti__wbuf_init(&b);
    /* Zero fields are omitted: an all-zero PING has an empty body. */
    memset(&r, 0, sizeof r);
    r.type = TUTTI__REC_PING;
    tutti__frame_begin(&b, &h);
    tutti__rec_put(&b, &r);
    CHECK_EQ_I64(b.len, 8);
    CHECK_EQ_I64(b.p[6], TUTTI__REC_PING);
    CHECK_EQ_I64(b.p[7], 0);
    CHECK_EQ_I64(decode(b.p, b.len, NULL, &c, NULL), 0);
    CHECK_EQ_I64(c.n, 1);

    /* Missing strings decode to an empty view with a valid pointer. */
    tutti__wbuf_reset(&b);
    memset(&r, 0, sizeof r);
    r.type = TUTTI__REC_HELLO;
    tutti__frame_begin(&b, &h);
    tutti__rec_put(&b, &r);
    CHECK_EQ_I64(decode(b.p, b.len, NULL, &c, NULL), 0);
    CHECK(c.n == 1 && c.recs[0].u.hello.session.p != NULL);
    CHECK(c.n == 1 && c.recs[0].u.hello.name.p != NULL &&
          c.recs[0].u.hello.name.len == 0);

    /* Known bytes: PING t1 = -1 is key 0x08, zigzag 1. */
    tutti__wbuf_reset(&b);
    r.type = TUTTI__REC_PING;
    r.u.ping.t1 = -1;
    tutti__frame_begin(&b, &h);
    tutti__rec_put(&b, &r);
    {
        const uint8_t want[] = {
            'T', 'U', TUTTI__WIRE_VERSION, 0, 0, 0, TUTTI__REC_PING, 2, 0x08, 0x01};
        CHECK(b.len == sizeof want && memcmp(b.p, want, sizeof want) == 0);
    }

    /* REPORT hash is fixed64 little endian. */
    tutti__wbuf_reset(&b);
    memset(&r, 0, sizeof r);
    r.type = TUTTI__REC_REPORT;
    r.u.report.hash = 0x0102030405060708u;
    tutti__frame_begin(&b, &h);
    tutti__rec_put(&b, &r);
    {
        const uint8_t want[] = {TUTTI__REC_REPORT, 9, 0x11, 8, 7, 6, 5, 4, 3, 2, 1};
        CHECK(b.len == 6 + sizeof want && memcmp(b.p + 6, want, sizeof want) == 0);
    }
    tutti__wbuf_free(&b);
}

static void test_long_bodies(void)
{
    /* Body lengths that need 1, 2 and 3 length bytes (the body is moved up). */
    const uint32_t sizes[] = {0,   100,   124,   125,   126,  127,
                              128, 16000, 16380, 16384, 70000};
    for (size_t i = 0; i < sizeof big_payload; i++)
        big_payload[i] = (uint8_t)(i * 7 + 1);
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        tutti__wbuf b;
        tutti__rec r[3];
        tutti__frame_hdr h = {0, 0, 5, 4};
        collected c;

        memset(r, 0, sizeof r);
        r[0].type = TUTTI__REC_NACK;
        r[0].u.nack.from = 77;
        r[1].type = TUTTI__REC_EVENT;
        r[1].u.event.key.seq = 9;
        r[1].u.event.payload = bytes(big_payload, sizes[i]);
        r[2].type = TUTTI__REC_BYE;
        tutti__wbuf_init(&b);
        tutti__frame_begin(&b, &h);
        for (int k = 0; k < 3; k++)
            tutti__rec_put(&b, &r[k]);
        CHECK_EQ_I64(b.err, 0);
        CHECK_EQ_I64(decode(b.p, b.len, NULL, &c, NULL), 0);
        CHECK_EQ_I64(c.n, 3);
        for (int k = 0; k < 3 && k < c.n; k++)
            CHECK(rec_eq(&c.recs[k], &r[k]));
        tutti__wbuf_free(&b);
    }
}

static void test_wbuf(void)
{
    tutti__wbuf b;
    tutti__rec r;
    tutti__frame_hdr h = {0, 0, 0, 0};
    uint8_t *mem;
    size_t cap;

    tutti__wbuf_init(&b);
    CHECK(b.p == NULL && b.len == 0 && b.cap == 0 && b.err == 0);
    memset(&r, 0, sizeof r);
    r.type = TUTTI__REC_WATERMARK;
    r.u.watermark.w = INT64_MAX;
    tutti__frame_begin(&b, &h);
    for (int i = 0; i < 1000; i++)
        tutti__rec_put(&b, &r);
    CHECK_EQ_I64(b.err, 0);
    CHECK(b.cap >= b.len);
    mem = b.p;
    cap = b.cap;
    tutti__wbuf_reset(&b);
    CHECK(b.len == 0 && b.p == mem && b.cap == cap);

    /* A type with no table is a programming error: sticky EINVAL, no bytes. */
    r.type = 99;
    tutti__rec_put(&b, &r);
    CHECK_EQ_I64(b.err, TUTTI_EINVAL);
    CHECK_EQ_I64(b.len, 0);
    r.type = TUTTI__REC_PING;
    tutti__rec_put(&b, &r);
    CHECK_EQ_I64(b.len, 0);
    tutti__wbuf_reset(&b);
    CHECK_EQ_I64(b.err, 0);
    tutti__wbuf_free(&b);
    CHECK(b.p == NULL && b.cap == 0);

    {
        tutti__str s = tutti__str_c(NULL);
        CHECK(s.p != NULL && s.len == 0);
        s = tutti__str_c("abc");
        CHECK(s.len == 3 && memcmp(s.p, "abc", 3) == 0);
    }
}

static void test_command_body(void)
{
    tutti__rec recs[16];
    for (int high = 0; high <= 1; high++) {
        tutti__rec cmd, got;
        tutti__wbuf b;

        int n = sample_records(recs, high);
        cmd = recs[0];
        for (int i = 0; i < n; i++)
            if (recs[i].type == TUTTI__REC_COMMAND) cmd = recs[i];
        CHECK_EQ_I64(cmd.type, TUTTI__REC_COMMAND);
        tutti__wbuf_init(&b);
        tutti__command_encode(&b, &cmd);
        CHECK_EQ_I64(b.err, 0);
        CHECK_EQ_I64(tutti__command_decode(b.p, b.len, &got), 0);
        CHECK(rec_eq(&got, &cmd));

        /* Carried as the payload of a command event. */
        {
            tutti__wbuf f;
            tutti__rec ev;
            tutti__frame_hdr h = {0, 0, 3, 2};
            collected c;

            memset(&ev, 0, sizeof ev);
            ev.type = TUTTI__REC_EVENT;
            ev.u.event.key.t = 5 * TUTTI_S;
            ev.u.event.kind = TUTTI_EV_COMMAND;
            ev.u.event.payload = bytes(b.p, (uint32_t)b.len);
            tutti__wbuf_init(&f);
            tutti__frame_begin(&f, &h);
            tutti__rec_put(&f, &ev);
            CHECK_EQ_I64(decode(f.p, f.len, NULL, &c, NULL), 0);
            CHECK_EQ_I64(c.n, 1);
            if (c.n == 1) {
                const tutti__str *pl = &c.recs[0].u.event.payload;
                CHECK_EQ_I64(tutti__command_decode(pl->p, pl->len, &got), 0);
                CHECK(rec_eq(&got, &cmd));
            }
            tutti__wbuf_free(&f);
        }

        /* Every strict prefix that cuts a field is refused. */
        for (size_t len = 0; len < b.len; len++) {
            int rc = tutti__command_decode(b.p, len, &got);
            CHECK(rc == 0 || rc == TUTTI_EPROTO);
        }
        tutti__wbuf_free(&b);
    }

    {
        tutti__rec got;
        const uint8_t nan_bpm[] = {0x41, 0, 0, 0, 0, 0, 0, 0xf8, 0x7f};
        const uint8_t unknown[] = {0xf8, 0x01, 0x05, 0x08, 0x03};
        const uint8_t cut[] = {0x22, 4, 'a'};
        CHECK_EQ_I64(tutti__command_decode(nan_bpm, sizeof nan_bpm, &got), TUTTI_EPROTO);
        CHECK_EQ_I64(tutti__command_decode(cut, sizeof cut, &got), TUTTI_EPROTO);
        CHECK_EQ_I64(tutti__command_decode(unknown, sizeof unknown, &got), 0);
        CHECK_EQ_I64(got.type, TUTTI__REC_COMMAND);
        CHECK_EQ_I64(got.u.command.op, TUTTI__CMD_TEMPO);
        CHECK_EQ_I64(tutti__command_decode(NULL, 0, &got), 0);
        CHECK_EQ_I64(got.type, TUTTI__REC_COMMAND);
        CHECK_EQ_I64(got.u.command.op, 0);
        CHECK(got.u.command.name.p != NULL);
    }

    /* A body larger than any frame is refused, however valid its content: a
     * padded op field, then op = 0 repeated. */
    {
        tutti__rec got;
        size_t n = TUTTI__WIRE_MAX_FRAME + 1;
        uint8_t *huge = malloc(n);
        huge[0] = 0x08;
        huge[1] = 0x80;
        huge[2] = 0x00;
        for (size_t i = 3; i + 1 < n; i += 2) {
            huge[i] = 0x08;
            huge[i + 1] = 0x00;
        }
        CHECK_EQ_I64(tutti__command_decode(huge, n, &got), TUTTI_EPROTO);
        CHECK_EQ_I64(tutti__command_decode(huge, n - 2, &got), 0);
        free(huge);
    }
}

int main(void)
{
    RUN(test_roundtrip_each_type);
    RUN(test_header_roundtrip);
    RUN(test_multiple_records);
    RUN(test_every_truncation);
    RUN(test_unknown_record_skipped);
    RUN(test_unknown_fields_skipped);
    RUN(test_lenient_forms);
    RUN(test_malformed_fields);
    RUN(test_varint_limits);
    RUN(test_bad_header);
    RUN(test_frame_size_limit);
    RUN(test_bad_record_delivers_nothing);
    RUN(test_canonical_encoding);
    RUN(test_long_bodies);
    RUN(test_wbuf);
    RUN(test_command_body);
    TEST_END();
}
