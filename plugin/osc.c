/*
 * OSC checking, reading and writing for the proxy; see osc.h for the rules.
 */
#include "osc.h"

#include "tutti/tutti.h"

#include <math.h>
#include <stdarg.h>
#include <string.h>

static const uint8_t bundle_tag[8] = {'#', 'b', 'u', 'n', 'd', 'l', 'e', 0};

#define pad4 tutti__osc_pad4
#define rd32 tutti__osc_rd32
#define wr32 tutti__osc_wr32

/* Length of the padded OSC string at p (NUL included, zero padding checked),
 * or 0 when it does not end, or its padding is not zero, within `avail`. */
static size_t string_size(const uint8_t *p, size_t avail)
{
    const uint8_t *nul = memchr(p, 0, avail);
    if (!nul) return 0;
    size_t n = pad4((size_t)(nul - p) + 1);
    if (n > avail) return 0;
    for (size_t i = (size_t)(nul - p); i < n; i++)
        if (p[i]) return 0;
    return n;
}

/* Bytes the argument of type `tag` at p takes, or SIZE_MAX when it does not
 * fit in `avail` or the tag is unknown. */
static size_t arg_size(char tag, const uint8_t *p, size_t avail)
{
    switch (tag) {
    case 'i':
    case 'f':
    case 'c':
    case 'r':
    case 'm':
        return avail >= 4 ? 4 : SIZE_MAX;
    case 'h':
    case 't':
    case 'd':
        return avail >= 8 ? 8 : SIZE_MAX;
    case 's':
    case 'S': {
        size_t n = avail ? string_size(p, avail) : 0;
        return n ? n : SIZE_MAX;
    }
    case 'b': {
        if (avail < 4) return SIZE_MAX;
        int32_t n = (int32_t)rd32(p);
        if (n < 0 || pad4((size_t)n) > avail - 4) return SIZE_MAX;
        return 4 + pad4((size_t)n);
    }
    case 'T':
    case 'F':
    case 'N':
    case 'I':
    case '[':
    case ']':
        return 0;
    default:
        return SIZE_MAX;
    }
}

int tutti__osc_msg_parse(const uint8_t *p, size_t len, tutti__osc_msg *m)
{
    if (len < 4 || len % 4) return TUTTI_EPROTO;
    size_t alen;
    if (p[0] == 0) {
        m->addr = NULL;
        m->cmd = p[3] & 0x80 ? -1 : p[3]; /* scsynth reads a signed char */
        alen = 4;
    } else {
        alen = string_size(p, len);
        if (!alen) return TUTTI_EPROTO;
        m->addr = (const char *)p;
        m->cmd = -1;
    }
    m->end = p + len;
    const uint8_t *q = p + alen;
    if (q == m->end) {
        m->tags = NULL;
        m->args = q;
        return 0;
    }
    if (q[0] != ',') return TUTTI_EPROTO; /* arguments without type tags */
    size_t tlen = string_size(q, (size_t)(m->end - q));
    if (!tlen) return TUTTI_EPROTO;
    m->tags = (const char *)q + 1;
    m->args = q + tlen;
    return 0;
}

static int check_message(const uint8_t *p, size_t len)
{
    tutti__osc_msg m;
    if (tutti__osc_msg_parse(p, len, &m)) return TUTTI_EPROTO;
    if (!m.tags) return 0;
    const uint8_t *a = m.args;
    for (const char *t = m.tags; *t; t++) {
        size_t n = arg_size(*t, a, (size_t)(m.end - a));
        if (n == SIZE_MAX) return TUTTI_EPROTO;
        a += n;
    }
    return a == m.end ? 0 : TUTTI_EPROTO;
}

bool tutti__osc_is_bundle(const uint8_t *p, size_t len)
{
    return len >= 8 && !memcmp(p, bundle_tag, 8);
}

static int check_packet(const uint8_t *p, size_t len, int depth)
{
    if (len < 4 || len % 4) return TUTTI_EPROTO;
    if (!tutti__osc_is_bundle(p, len)) return check_message(p, len);
    if (len < 16 || depth >= TUTTI_OSC_MAX_DEPTH) return TUTTI_EPROTO;
    size_t off = 16;
    while (off < len) {
        if (len - off < 4) return TUTTI_EPROTO;
        int32_t n = (int32_t)rd32(p + off);
        off += 4;
        if (n <= 0 || n % 4 || (size_t)n > len - off) return TUTTI_EPROTO;
        if (check_packet(p + off, (size_t)n, depth + 1)) return TUTTI_EPROTO;
        off += (size_t)n;
    }
    return 0;
}

int tutti__osc_check(const uint8_t *p, size_t len)
{
    return p && len ? check_packet(p, len, 0) : TUTTI_EPROTO;
}

bool tutti__osc_msg_is(const tutti__osc_msg *m, const char *addr, int cmd)
{
    if (m->addr) return !strcmp(m->addr, addr);
    return m->cmd == cmd;
}

void tutti__osc_iter_init(tutti__osc_iter *it, const tutti__osc_msg *m)
{
    it->m = m;
    it->rd = m->args;
    it->count = 0;
}

/* The tag sc_msg_iter would look at; past the tag string it reads whatever
 * follows, which for a checked message is the zero padding or the arguments.
 * The cursor answers NUL there instead: same branch (no known tag), no read
 * outside the tag string. */
static char iter_tag(const tutti__osc_iter *it)
{
    const char *t = it->m->tags;
    size_t n = strlen(t);
    return it->count < n ? t[it->count] : 0;
}

static size_t iter_remain(const tutti__osc_iter *it)
{
    return it->rd < it->m->end ? (size_t)(it->m->end - it->rd) : 0;
}

static void iter_skip(tutti__osc_iter *it, char tag)
{
    size_t n = arg_size(tag, it->rd, iter_remain(it));
    it->rd += n == SIZE_MAX ? iter_remain(it) : n;
}

int32_t tutti__osc_iter_geti(tutti__osc_iter *it, int32_t dflt)
{
    if (!iter_remain(it)) return dflt;
    int32_t v = dflt;
    if (!it->m->tags) {
        if (iter_remain(it) >= 4) v = (int32_t)rd32(it->rd);
        it->rd += 4;
    } else {
        char t = iter_tag(it);
        if (t == 'i' && iter_remain(it) >= 4) {
            v = (int32_t)rd32(it->rd);
            it->rd += 4;
        } else if (t == 'f' && iter_remain(it) >= 4) {
            uint32_t u = rd32(it->rd);
            float f;
            memcpy(&f, &u, sizeof f);
            /* C++ leaves an out-of-range conversion undefined; x86 gives
             * INT32_MIN, which is what scsynth computes there. */
            v = (isfinite(f) && f > -2147483649.0f && f < 2147483648.0f) ? (int32_t)f
                                                                         : INT32_MIN;
            it->rd += 4;
        } else if (t == 's' || t == 'b') {
            iter_skip(it, t);
        }
    }
    it->count++;
    return v;
}

const char *tutti__osc_iter_gets(tutti__osc_iter *it, const char *dflt)
{
    if (!iter_remain(it)) return NULL;
    const char *v = dflt;
    if (!it->m->tags || iter_tag(it) == 's') {
        size_t n = string_size(it->rd, iter_remain(it));
        if (!n) return dflt;
        v = (const char *)it->rd;
        it->rd += n;
    }
    it->count++;
    return v;
}

static int each_message(const uint8_t *p, size_t len, tutti__osc_visit_fn fn, void *ctx)
{
    if (!tutti__osc_is_bundle(p, len)) return fn(ctx, p, len);
    for (size_t off = 16; off + 4 <= len;) {
        size_t n = rd32(p + off);
        off += 4;
        int r = each_message(p + off, n, fn, ctx);
        if (r) return r;
        off += n;
    }
    return 0;
}

int tutti__osc_each_message(const uint8_t *p, size_t len, tutti__osc_visit_fn fn,
                            void *ctx)
{
    return each_message(p, len, fn, ctx);
}

static size_t filter(const uint8_t *p, size_t len, tutti__osc_drop_fn drop, void *ctx,
                     uint8_t *out)
{
    memcpy(out, p, 16);
    size_t w = 16;
    for (size_t off = 16; off + 4 <= len;) {
        size_t n = rd32(p + off);
        const uint8_t *e = p + off + 4;
        off += 4 + n;
        if (tutti__osc_is_bundle(e, n)) {
            size_t m = filter(e, n, drop, ctx, out + w + 4);
            wr32(out + w, (uint32_t)m);
            w += 4 + m;
        } else if (!drop(ctx, e, n)) {
            memcpy(out + w, p + off - n - 4, 4 + n);
            w += 4 + n;
        }
    }
    return w;
}

size_t tutti__osc_filter_bundle(const uint8_t *p, size_t len, tutti__osc_drop_fn drop,
                                void *ctx, uint8_t *out)
{
    return filter(p, len, drop, ctx, out);
}

static size_t put_string(uint8_t *out, size_t cap, size_t at, const char *s)
{
    size_t n = strlen(s) + 1, padded = pad4(n);
    if (at > cap || padded > cap - at) return 0;
    memcpy(out + at, s, n);
    memset(out + at + n, 0, padded - n);
    return padded;
}

size_t tutti__osc_write(uint8_t *out, size_t cap, const char *addr, const char *types,
                        ...)
{
    va_list ap;
    va_start(ap, types);
    size_t n = tutti__osc_vwrite(out, cap, addr, types, ap);
    va_end(ap);
    return n;
}

size_t tutti__osc_vwrite(uint8_t *out, size_t cap, const char *addr, const char *types,
                         va_list ap)
{
    char tags[64];
    size_t nt = strlen(types);
    if (nt + 2 > sizeof tags) return 0;
    tags[0] = ',';
    memcpy(tags + 1, types, nt + 1);

    size_t w = put_string(out, cap, 0, addr);
    if (!w) return 0;
    size_t n = put_string(out, cap, w, tags);
    if (!n) return 0;
    w += n;

    for (const char *t = types; *t; t++) {
        if (*t == 'i' || *t == 'f') {
            if (cap - w < 4) return 0;
            uint32_t u;
            if (*t == 'i') {
                u = (uint32_t)va_arg(ap, int32_t);
            } else {
                float f = (float)va_arg(ap, double);
                memcpy(&u, &f, sizeof u);
            }
            wr32(out + w, u);
            w += 4;
        } else if (*t == 'd') {
            if (cap - w < 8) return 0;
            double d = va_arg(ap, double);
            uint64_t u;
            memcpy(&u, &d, sizeof u);
            tutti__osc_wr64(out + w, u);
            w += 8;
        } else if (*t == 's') {
            n = put_string(out, cap, w, va_arg(ap, const char *));
            if (!n) return 0;
            w += n;
        } else if (*t == 'b') {
            const void *d = va_arg(ap, const void *);
            size_t bl = va_arg(ap, size_t), padded = (bl + 3) & ~(size_t)3;
            if (bl > INT32_MAX || cap - w < 4 || cap - w - 4 < padded) return 0;
            wr32(out + w, (uint32_t)bl);
            memset(out + w + 4, 0, padded);
            if (bl) memcpy(out + w + 4, d, bl);
            w += 4 + padded;
        } else {
            return 0;
        }
    }
    return w;
}

int tutti__osc_map(const uint8_t *p, size_t len, tutti__osc_map_fn fn, void *ctx,
                   uint8_t *out, size_t cap, size_t *n)
{
    if (!tutti__osc_is_bundle(p, len)) return fn(ctx, p, len, out, cap, n);
    if (cap < 16) return TUTTI_EFULL;
    memcpy(out, p, 16);
    size_t w = 16;
    for (size_t off = 16; off + 4 <= len;) {
        size_t el = rd32(p + off);
        const uint8_t *e = p + off + 4;
        off += 4 + el;
        if (cap - w < 4) return TUTTI_EFULL;
        size_t k;
        int r = tutti__osc_map(e, el, fn, ctx, out + w + 4, cap - w - 4, &k);
        if (r) return r;
        if (!k) continue; /* a removed message; bundles are never removed */
        wr32(out + w, (uint32_t)k);
        w += 4 + k;
    }
    *n = w;
    return 0;
}

size_t tutti__osc_replace_string(const uint8_t *msg, size_t len, const char *with,
                                 uint8_t *out, size_t cap)
{
    tutti__osc_msg m;
    if (tutti__osc_msg_parse(msg, len, &m) || !m.tags) return 0;
    const uint8_t *a = m.args;
    for (const char *t = m.tags; *t; t++) {
        size_t n = arg_size(*t, a, (size_t)(m.end - a));
        if (n == SIZE_MAX) return 0;
        if (*t == 's') {
            size_t head = (size_t)(a - msg), tail = len - head - n;
            size_t wl = strlen(with), padded = (wl + 4) & ~(size_t)3;
            if (head + padded + tail > cap) return 0;
            memcpy(out, msg, head);
            memset(out + head, 0, padded);
            memcpy(out + head, with, wl);
            memcpy(out + head + padded, a + n, tail);
            return head + padded + tail;
        }
        a += n;
    }
    return 0;
}
