/*
 * Writes the seed corpus of fuzz_wire: a few valid frames covering every
 * record type, plus hand-made frames for the compatibility paths (an unknown
 * record type, unknown fields of every kind) that the encoder never produces.
 * Usage: make_corpus DIR. The output is checked in under corpus/wire/.
 */
#include "wire.h"

#include <stdio.h>
#include <string.h>

static int write_file(const char *dir, const char *name, const uint8_t *p, size_t n)
{
    char path[1024];
    FILE *f;

    snprintf(path, sizeof path, "%s/%s", dir, name);
    f = fopen(path, "wb");
    if (!f || fwrite(p, 1, n, f) != n || fclose(f) != 0) {
        perror(path);
        return 1;
    }
    return 0;
}

static int write_frame(const char *dir, const char *name, uint64_t link_seq, uint64_t ack,
                       const tutti__rec *recs, size_t n)
{
    tutti__wbuf b;
    tutti__frame_hdr h = {TUTTI__WIRE_VERSION, 0, link_seq, ack};
    int rc;

    tutti__wbuf_init(&b);
    tutti__frame_begin(&b, &h);
    for (size_t i = 0; i < n; i++)
        tutti__rec_put(&b, &recs[i]);
    rc = b.err ? 1 : write_file(dir, name, b.p, b.len);
    tutti__wbuf_free(&b);
    return rc;
}

/* A command event: the command body is the event's payload. */
static tutti__rec command_event(tutti__wbuf *body, const tutti__rec *cmd, tutti_key key)
{
    tutti__rec ev;

    tutti__wbuf_reset(body);
    tutti__command_encode(body, cmd);
    memset(&ev, 0, sizeof ev);
    ev.type = TUTTI__REC_EVENT;
    ev.u.event.key = key;
    ev.u.event.kind = TUTTI_EV_COMMAND;
    ev.u.event.payload.p = body->p;
    ev.u.event.payload.len = (uint32_t)body->len;
    return ev;
}

int main(int argc, char **argv)
{
    const tutti_time t = INT64_C(3944678400) * TUTTI_S; /* 2025 in session time */
    const char *dir = argc > 1 ? argv[1] : ".";
    tutti__wbuf add_body, tempo_body;
    tutti__rec r[16], cmd;
    int err = 0;

    tutti__wbuf_init(&add_body);
    tutti__wbuf_init(&tempo_body);

    /* A join: unsequenced. */
    memset(r, 0, sizeof r);
    r[0].type = TUTTI__REC_HELLO;
    r[0].u.hello.session = tutti__str_c("rehearsal");
    r[0].u.hello.name = tutti__str_c("cello");
    r[0].u.hello.role = TUTTI_ROLE_PERFORMER;
    err |= write_frame(dir, "hello.bin", 0, 0, r, 1);

    /* The answer: welcome, the ADD command, a tempo command and a watermark. */
    memset(r, 0, sizeof r);
    r[0].type = TUTTI__REC_WELCOME;
    r[0].u.welcome.member_id = 3;
    r[0].u.welcome.horizon = 50 * TUTTI_MS;
    r[0].u.welcome.heartbeat = 5 * TUTTI_MS;
    r[0].u.welcome.joined = (tutti_key){t, 0, 17};
    r[0].u.welcome.hub_next = 2;
    memset(&cmd, 0, sizeof cmd);
    cmd.type = TUTTI__REC_COMMAND;
    cmd.u.command.op = TUTTI__CMD_ADD;
    cmd.u.command.member_id = 3;
    cmd.u.command.role = TUTTI_ROLE_PERFORMER;
    cmd.u.command.name = tutti__str_c("cello");
    r[1] = command_event(&add_body, &cmd, (tutti_key){t, 0, 17});
    memset(&cmd, 0, sizeof cmd);
    cmd.type = TUTTI__REC_COMMAND;
    cmd.u.command.op = TUTTI__CMD_TEMPO;
    cmd.u.command.timeline.bpm = 96.5;
    cmd.u.command.timeline.beat0 = 128.0;
    cmd.u.command.timeline.t0 = t + 2 * TUTTI_S;
    cmd.u.command.timeline.quantum = 4.0;
    cmd.u.command.timeline.playing = true;
    r[2] = command_event(&tempo_body, &cmd, (tutti_key){t + 2 * TUTTI_S, 0, 18});
    r[3].type = TUTTI__REC_WATERMARK;
    r[3].u.watermark.origin = 0;
    r[3].u.watermark.w = t + 2 * TUTTI_S;
    r[3].u.watermark.next_seq = 19;
    err |= write_frame(dir, "welcome.bin", 1, 0, r, 4);

    /* A member's events with an OSC-like payload, and its promise. */
    memset(r, 0, sizeof r);
    {
        static const uint8_t osc[] =
            "/note\0\0\0,iff\0\0\0\0\0\0\x3c\x3f\x80\0\0\x3e\x80\0\0";
        r[0].type = TUTTI__REC_EVENT;
        r[0].u.event.key = (tutti_key){t + 100 * TUTTI_MS, 3, 1};
        r[0].u.event.payload.p = osc;
        r[0].u.event.payload.len = sizeof osc - 1;
        r[1] = r[0];
        r[1].u.event.key.seq = 2;
        r[2].type = TUTTI__REC_WATERMARK;
        r[2].u.watermark.origin = 3;
        r[2].u.watermark.w = t + 100 * TUTTI_MS;
        r[2].u.watermark.next_seq = 3;
        err |= write_frame(dir, "events.bin", 7, 5, r, 3);
    }

    /* An event whose body needs a two-byte length. */
    memset(r, 0, sizeof r);
    {
        static uint8_t blob[300];
        for (size_t i = 0; i < sizeof blob; i++)
            blob[i] = (uint8_t)(i * 37);
        r[0].type = TUTTI__REC_EVENT;
        r[0].u.event.key = (tutti_key){t + 200 * TUTTI_MS, 5, 40};
        r[0].u.event.payload.p = blob;
        r[0].u.event.payload.len = sizeof blob;
        err |= write_frame(dir, "big_event.bin", 8, 6, r, 1);
    }

    /* Clock exchange. */
    memset(r, 0, sizeof r);
    r[0].type = TUTTI__REC_PING;
    r[0].u.ping.t1 = 123456789012345;
    err |= write_frame(dir, "ping.bin", 0, 9, r, 1);
    r[0].type = TUTTI__REC_PONG;
    r[0].u.pong.t1 = 123456789012345;
    r[0].u.pong.t2 = t + 1;
    r[0].u.pong.t3 = t + 20000;
    err |= write_frame(dir, "pong.bin", 0, 9, r, 1);

    /* Everything else in one frame. */
    memset(r, 0, sizeof r);
    r[0].type = TUTTI__REC_NACK;
    r[0].u.nack.from = 40;
    r[1].type = TUTTI__REC_REPORT;
    r[1].u.report.count = 1000;
    r[1].u.report.hash = 0x9e3779b97f4a7c15u;
    r[2].type = TUTTI__REC_NOTICE;
    r[2].u.notice.code = TUTTI__NOTE_DIVERGED;
    r[2].u.notice.level = TUTTI_LOG_WARN;
    r[2].u.notice.text = tutti__str_c("member 4 diverged");
    r[3].type = TUTTI__REC_REQUEST;
    r[3].u.request.kind = TUTTI__REQ_BPM;
    r[3].u.request.f = 132.0;
    r[4].type = TUTTI__REC_REQUEST;
    r[4].u.request.kind = TUTTI__REQ_HORIZON;
    r[4].u.request.i = -80 * TUTTI_MS;
    r[5].type = TUTTI__REC_REJECT;
    r[5].u.reject.code = TUTTI__REJ_FULL;
    r[5].u.reject.reason = tutti__str_c("session full");
    r[6].type = TUTTI__REC_BYE;
    memset(&cmd, 0, sizeof cmd);
    r[7].type = TUTTI__REC_COMMAND;
    r[7].u.command.op = TUTTI__CMD_REMOVE;
    r[7].u.command.member_id = 4;
    r[7].u.command.last_seq = 99;
    r[7].u.command.horizon = 80 * TUTTI_MS;
    r[7].u.command.heartbeat = 8 * TUTTI_MS;
    err |= write_frame(dir, "misc.bin", UINT64_MAX, UINT64_MAX, r, 8);

    /* A header alone. */
    err |= write_frame(dir, "empty.bin", 0, 0, r, 0);

    /* Hand-made: an unknown record type, then a PING with unknown fields of
     * each kind and a padded varint. */
    {
        /* clang-format off */
        static const uint8_t f[] = {'T', 'U', TUTTI__WIRE_VERSION, 0, 1, 0,
                                    77, 3, 0xde, 0xad, 0x00,
                                    TUTTI__REC_PING, 20,
                                    0x48, 0xff, 0x01,
                                    0x51, 1, 2, 3, 4, 5, 6, 7, 8,
                                    0x5a, 2, 'h', 'i',
                                    0x08, 0x82, 0x80, 0x00};
        /* clang-format on */
        err |= write_file(dir, "unknown.bin", f, sizeof f);
    }

    tutti__wbuf_free(&add_body);
    tutti__wbuf_free(&tempo_body);
    return err;
}
