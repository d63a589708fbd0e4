/* Frame assembly and helpers shared by the member and hub engines. */
#include "engine.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int cmp_time(const void *a, const void *b)
{
    tutti_time x = *(const tutti_time *)a, y = *(const tutti_time *)b;
    return (x > y) - (x < y);
}

/* A stall (a ping or an event that waited out a partition and TCP's
 * backoff, a frozen laptop's backlog, a crashed member's suspect time) says
 * nothing about the path the session plays on, and would hold L or the
 * close at seconds for as long as it stays in the window. */
tutti_time tutti__high_estimate(const tutti_time *v, uint32_t n)
{
    if (n == 0) return 0;
    tutti_time s[TUTTI__DELAY_WINDOW];
    if (n > TUTTI__DELAY_WINDOW) n = TUTTI__DELAY_WINDOW;
    memcpy(s, v, n * sizeof *v);
    qsort(s, n, sizeof *s, cmp_time);
    tutti_time cap = s[n / 2] * TUTTI__STALL_FACTOR + TUTTI__STALL_SLACK;
    for (uint32_t i = n; i-- > 0;)
        if (s[i] <= cap) return s[i];
    return s[n / 2];
}

void tutti__random_bytes(const tutti_io *io, uint64_t *fallback, uint8_t *out, size_t n)
{
    for (size_t i = 0; i < n; i += 8) {
        uint64_t v;
        if (io->random) {
            v = io->random(io->ctx);
        } else {
            uint64_t z = (*fallback += 0x9e3779b97f4a7c15ull);
            z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
            z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
            v = z ^ (z >> 31);
        }
        for (size_t k = 0; k < 8 && i + k < n; k++) out[i + k] = (uint8_t)(v >> (8 * k));
    }
}

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

uint8_t *tutti__wbuf_room(tutti__wbuf *b, size_t n)
{
    b->len = 0;
    if (b->err) return NULL;
    if (n > b->cap) {
        uint8_t *q = realloc(b->p, n);
        if (!q) return NULL;
        b->p = q;
        b->cap = n;
    }
    return b->p;
}

/* Hand a frame to the transport, sealed when asked and the link seals. A
 * frame that cannot be sealed (no memory) is not sent: the link's resend
 * (or the peer's NACK) repairs it like a lost frame; it never goes out in
 * clear. */
static void tx(const tutti_io *io, uint32_t peer, tutti__link *l, bool seal,
               const uint8_t *p, size_t n)
{
    if (!seal || !l || !l->seal.on) {
        io->send(io->ctx, peer, p, n);
        return;
    }
    size_t need = n + TUTTI__SEAL_OVERHEAD;
    if (need > l->scap) {
        uint8_t *q = realloc(l->sbuf, need);
        if (!q) return;
        l->sbuf = q;
        l->scap = need;
    }
    size_t m = tutti__seal_frame(&l->seal, l->sbuf, p, n);
    io->send(io->ctx, peer, l->sbuf, m);
}

int tutti__open_frame(tutti__link *l, const uint8_t *buf, size_t len, tutti__wbuf *out,
                      const uint8_t **frame, size_t *flen, bool *sealed, const char **why)
{
    *sealed = false;
    *frame = buf;
    *flen = len;
    if (!tutti__seal_is_sealed(buf, len)) return 0;
    if (!l || !l->seal.on) {
        if (l) l->seal.refused++;
        if (why) *why = "a sealed frame on a link without keys";
        return TUTTI_EPROTO;
    }
    uint8_t *p = tutti__wbuf_room(out, len);
    if (!p) return TUTTI_ENOMEM;
    size_t n = 0;
    int rc = tutti__seal_open(&l->seal, p, &n, buf, len, why);
    if (rc) return rc;
    out->len = n;
    *frame = p;
    *flen = n;
    *sealed = true;
    return 0;
}

/* Bytes of the record starting at p (type, varint length, body), or 0 if the
 * bytes we encoded ourselves are somehow not a record. */
static size_t record_size(const uint8_t *p, size_t n)
{
    uint64_t len = 0;
    for (size_t i = 1; i < n && i <= 10; i++) {
        len |= (uint64_t)(p[i] & 0x7f) << (7 * (i - 1));
        if (!(p[i] & 0x80)) return len <= n - i - 1 ? i + 1 + (size_t)len : 0;
    }
    return 0;
}

static void send_one(const tutti_io *io, uint32_t peer, tutti__link *l, bool seq,
                     const uint8_t *body, size_t len, tutti__wbuf *scratch)
{
    tutti__frame_hdr hdr = {TUTTI__WIRE_VERSION, 0, seq ? l->send_next : 0,
                            l->recv_next - 1};
    tutti__wbuf_reset(scratch);
    tutti__frame_begin(scratch, &hdr);
    if (l && l->stamps) {
        tutti__rec r;
        memset(&r, 0, sizeof r);
        r.type = TUTTI__REC_STAMP;
        r.u.stamp.t = io->now(io->ctx) + l->stamp_epoch;
        if (l->echo_t1 > 0) {
            r.u.stamp.e1 = l->echo_t1;
            r.u.stamp.e2 = l->echo_t2;
            l->echo_t1 = l->echo_t2 = 0;
        }
        tutti__rec_put(scratch, &r);
    }
    tutti__wbuf_append(scratch, body, len);
    if (scratch->err) return;
    if (seq) tutti__link_keep(l, scratch->p, scratch->len);
    if (peer != TUTTI__NO_PEER) tx(io, peer, l, true, scratch->p, scratch->len);
}

void tutti__send_frame(const tutti_io *io, uint32_t peer, tutti__link *l, bool seq,
                       const tutti__wbuf *body, tutti__wbuf *scratch)
{
    /* A body may hold more than one frame may carry (a joiner's snapshot, a
     * burst of large events): cut it at record boundaries, each frame well
     * under the decoder's limit. */
    size_t off = 0, len = body ? body->len : 0;
    do {
        size_t end = off;
        while (end < len) {
            size_t r = record_size(body->p + end, len - end);
            if (r == 0) return; /* cannot happen with our own encoder */
            if (end > off && end - off + r > TUTTI__FRAME_BODY_MAX) break;
            end += r;
        }
        send_one(io, peer, l, seq, body ? body->p + off : NULL, end - off, scratch);
        off = end;
    } while (off < len);
}

void tutti__send_rec(const tutti_io *io, uint32_t peer, tutti__link *l,
                     const tutti__rec *r, tutti__wbuf *scratch)
{
    tutti__frame_hdr hdr = {TUTTI__WIRE_VERSION, 0, 0, l ? l->recv_next - 1 : 0};
    tutti__wbuf_reset(scratch);
    tutti__frame_begin(scratch, &hdr);
    tutti__rec_put(scratch, r);
    bool seal = r->type != TUTTI__REC_HELLO && r->type != TUTTI__REC_AUTH;
    if (!scratch->err) tx(io, peer, l, seal, scratch->p, scratch->len);
}

bool tutti__resend(const tutti_io *io, uint32_t peer, tutti__link *l, uint64_t from)
{
    if (from == 0) from = 1;
    for (uint64_t s = from; s < l->send_next; s++) {
        const tutti__link_frame *f = tutti__link_find(l, s);
        if (!f) return false;
        tx(io, peer, l, true, f->buf, f->len);
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

void tutti__put_watermark(tutti__wbuf *b, uint32_t origin, tutti_time w, uint64_t next_seq)
{
    tutti__rec r;
    memset(&r, 0, sizeof r);
    r.type = TUTTI__REC_WATERMARK;
    r.u.watermark.origin = origin;
    r.u.watermark.w = w;
    r.u.watermark.next_seq = next_seq;
    tutti__rec_put(b, &r);
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

void tutti__tempo_init(tutti__tempo *s, const tutti_timeline *tl)
{
    memset(s, 0, sizeof *s);
    s->now = *tl;
}

void tutti__tempo_push(tutti__tempo *s, const tutti_timeline *tl)
{
    if (tl->t0 <= s->now.t0) {
        /* Starts no later than what is in force: it replaces it (history). */
        s->now = *tl;
        return;
    }
    if (s->n == TUTTI__TEMPO_AHEAD) {
        /* Full: the earliest change is the one closest to taking effect. */
        s->now = s->ahead[0];
        memmove(&s->ahead[0], &s->ahead[1], --s->n * sizeof s->ahead[0]);
    }
    uint32_t i = s->n;
    while (i > 0 && s->ahead[i - 1].t0 > tl->t0) i--;
    memmove(&s->ahead[i + 1], &s->ahead[i], (s->n - i) * sizeof s->ahead[0]);
    s->ahead[i] = *tl;
    s->n++;
}

tutti_timeline tutti__tempo_at(tutti__tempo *s, tutti_time at)
{
    uint32_t k = 0;
    while (k < s->n && s->ahead[k].t0 <= at) s->now = s->ahead[k++];
    if (k) {
        memmove(&s->ahead[0], &s->ahead[k], (s->n - k) * sizeof s->ahead[0]);
        s->n -= k;
    }
    return s->now;
}

tutti_timeline tutti__tempo_last(const tutti__tempo *s)
{
    return s->n ? s->ahead[s->n - 1] : s->now;
}

tutti_timeline tutti__tempo_peek(const tutti__tempo *s, tutti_time at)
{
    tutti_timeline tl = s->now;
    for (uint32_t k = 0; k < s->n && s->ahead[k].t0 <= at; k++) tl = s->ahead[k];
    return tl;
}

uint32_t tutti__tempo_schedule(const tutti__tempo *s, tutti_time at, tutti_timeline *out,
                               uint32_t cap)
{
    uint32_t k = 0, n = 0;
    tutti_timeline now = s->now;
    while (k < s->n && s->ahead[k].t0 <= at) now = s->ahead[k++];
    if (cap > 0) out[0] = now;
    n = 1;
    for (; k < s->n; k++) {
        /* a later change for the same instant replaced this one */
        if (k + 1 < s->n && s->ahead[k + 1].t0 == s->ahead[k].t0) continue;
        if (n < cap) out[n] = s->ahead[k];
        n++;
    }
    return n;
}
