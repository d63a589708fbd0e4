/* Frame assembly and helpers shared by the member and hub engines. */
#include "engine.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Append raw bytes (whole records) to a buffer, with the buffer's own sticky
 * error convention. */
void tutti__wbuf_append(tutti__wbuf *b, const uint8_t *p, size_t n)
{
    if (b->err || n == 0) return;
    if (b->len + n > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + n) cap *= 2;
        uint8_t *q = realloc(b->p, cap);
        if (!q) {
            b->err = TUTTI_ENOMEM;
            return;
        }
        b->p = q;
        b->cap = cap;
    }
    memcpy(b->p + b->len, p, n);
    b->len += n;
}

void tutti__send_frame(const tutti_io *io, uint32_t peer, tutti__link *l, bool seq,
                       const tutti__wbuf *body, tutti__wbuf *scratch)
{
    tutti__frame_hdr hdr = {TUTTI__WIRE_VERSION, 0, seq ? l->send_next : 0,
                            l->recv_next - 1};
    tutti__wbuf_reset(scratch);
    tutti__frame_begin(scratch, &hdr);
    if (body) tutti__wbuf_append(scratch, body->p, body->len);
    if (scratch->err) return;
    if (seq) tutti__link_keep(l, scratch->p, scratch->len);
    if (peer != TUTTI__NO_PEER) io->send(io->ctx, peer, scratch->p, scratch->len);
}

void tutti__send_rec(const tutti_io *io, uint32_t peer, tutti__link *l,
                     const tutti__rec *r, tutti__wbuf *scratch)
{
    tutti__frame_hdr hdr = {TUTTI__WIRE_VERSION, 0, 0, l ? l->recv_next - 1 : 0};
    tutti__wbuf_reset(scratch);
    tutti__frame_begin(scratch, &hdr);
    tutti__rec_put(scratch, r);
    if (!scratch->err) io->send(io->ctx, peer, scratch->p, scratch->len);
}

bool tutti__resend(const tutti_io *io, uint32_t peer, const tutti__link *l, uint64_t from)
{
    if (from == 0) from = 1;
    for (uint64_t s = from; s < l->send_next; s++) {
        const tutti__link_frame *f = tutti__link_find(l, s);
        if (!f) return false;
        io->send(io->ctx, peer, f->buf, f->len);
    }
    return true;
}

void tutti__logf(const tutti_io *io, int level, const char *fmt, ...)
{
    if (!io->log) return;
    char msg[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    io->log(io->ctx, level, msg);
}

bool tutti__str_copy(char *dst, size_t cap, tutti__str s)
{
    if (s.len >= cap) return false;
    memcpy(dst, s.p, s.len);
    dst[s.len] = 0;
    return true;
}

void tutti__put_command(tutti__wbuf *b, const tutti_key *key, const tutti__rec *cmd,
                        tutti__wbuf *scratch)
{
    tutti__wbuf_reset(scratch);
    tutti__command_encode(scratch, cmd);
    tutti__rec r;
    memset(&r, 0, sizeof r);
    r.type = TUTTI__REC_EVENT;
    r.u.event.key = *key;
    r.u.event.kind = TUTTI_EV_COMMAND;
    r.u.event.payload.p = scratch->p;
    r.u.event.payload.len = (uint32_t)scratch->len;
    tutti__rec_put(b, &r);
}
