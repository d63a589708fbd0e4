/*
 * The wire format: encoding and decoding of frames and records (see wire.h).
 *
 * Design notes
 * ------------
 * - One table per record type describes its fields: number, encoding and where
 *   the value lives in tutti__rec. The encoder and the decoder both walk these
 *   tables, so the table below and the code cannot disagree, and adding a field
 *   is one line.
 *
 *   Field numbers (key = number << 3 | kind; zz = zigzag varint):
 *
 *   record       no  member           kind  encoding
 *   HELLO (1)     1  session           2    string
 *                 2  name              2    string
 *                 3  role              0    varint u32
 *                 4  resume_id         0    varint u32
 *                 5  recv_next         0    varint u64
 *                 6  cnonce            2    bytes (32)
 *                 7  epk               2    bytes (32)
 *   WELCOME (2)   1  member_id         0    varint u32
 *                 2  horizon           0    zz i64 (ns)
 *                 3  heartbeat         0    zz i64 (ns)
 *                 4  joined.t          0    zz i64
 *                 5  joined.origin     0    varint u32
 *                 6  joined.seq        0    varint u64
 *                 7  hub_next          0    varint u64
 *                 8  role              0    varint u32
 *                 9  settings          2    string
 *   REJECT (3)    1  code              0    varint u32
 *                 2  reason            2    string
 *   EVENT (4)     1  key.t             0    zz i64
 *                 2  key.origin        0    varint u32
 *                 3  key.seq           0    varint u64
 *                 4  kind              0    varint u32
 *                 5  payload           2    bytes (may contain NUL)
 *   WATERMARK (5) 1  origin            0    varint u32
 *                 2  w                 0    zz i64
 *                 3  next_seq          0    varint u64
 *   PING (6)      1  t1                0    zz i64
 *                 2  delay             0    zz i64 (ns; the member's one-way
 *                                                  delay to the hub, high estimate)
 *                 3  late              0    varint u64
 *                 4  bound             0    zz i64 (ns; its clock error bound)
 *                 5  need              0    zz i64 (ns; the horizon its recent
 *                                                  deliveries needed, high
 *                                                  estimate; 0: not known)
 *   PONG (7)      1  t1                0    zz i64
 *                 2  t2                0    zz i64
 *                 3  t3                0    zz i64
 *   NACK (8)      1  from              0    varint u64
 *   REPORT (9)    1  count             0    varint u64
 *                 2  hash              1    fixed64 u64
 *   NOTICE (10)   1  code              0    varint u32
 *                 2  level             0    zz i32
 *                 3  text              2    string
 *   REQUEST (11)  1  kind              0    varint u32
 *                 2  f                 1    double (finite)
 *                 3  i                 0    zz i64
 *                 4  member            0    varint u32
 *   COMMAND (13)  1  op                0    varint u32
 *                 2  member_id         0    varint u32
 *                 3  role              0    varint u32
 *                 4  name              2    string
 *                 5  last_seq          0    varint u64
 *                 6  horizon           0    zz i64
 *                 7  heartbeat         0    zz i64
 *                 8  timeline.bpm      1    double (finite)
 *                 9  timeline.beat0    1    double (finite)
 *                10  timeline.t0       0    zz i64
 *                11  timeline.quantum  1    double (finite)
 *                12  timeline.playing  0    varint 0 or 1
 *   CHALLENGE(14) 1  hnonce            2    bytes (32)
 *                 2  hub_pk            2    bytes (32)
 *                 3  sig               2    bytes (64)
 *                 4  mode              0    varint u32
 *   AUTH (15)     1  kind              0    varint u32
 *                 2  cred_id           2    string
 *                 3  proof             2    bytes (32)
 *
 *   Byte strings of a fixed size (keys, nonces) are checked by the engines,
 *   not here: the decoder only knows kinds.
 *
 *   An event key is always numbered t, origin, seq in that order. The report
 *   hash is fixed64 because a hash is uniformly distributed: as a varint it
 *   would nearly always take 10 bytes instead of 8.
 *
 * - The encoder is canonical: it writes fields in table order, varints in their
 *   shortest form, and omits fields holding their zero value (a double is zero
 *   only if all its bits are, so -0.0 is written). Decoding accepts any field
 *   order, repeated fields (the last one wins, as in protobuf) and padded
 *   varints, so re-encoding a decoded frame never makes it longer.
 * - The decoder is deliberately generic: it checks structure and ranges that
 *   the C types impose (a u32 field must fit 32 bits, a bool is 0 or 1, a
 *   string has no NUL, a double is finite) and leaves meaning (is this role
 *   known? is bpm positive?) to the engines. A known field number carrying the
 *   wrong kind is an error rather than skipped: it means the peers disagree
 *   about the schema, and silently reading zero would hide that.
 * - Unknown record types are skipped without looking inside, so a later
 *   version may give a new record any body. Unknown field numbers are skipped
 *   by their kind; kinds 3 to 7 cannot be skipped and are errors.
 * - Decoding runs twice over the frame: the first pass validates everything
 *   and the second hands records out, so a malformed frame delivers nothing.
 *   Decoded strings never have a NULL pointer (a missing string points at a
 *   static empty byte), so callers may memcpy them without a special case.
 * - On TUTTI_EVERSION the header's version and flags are still reported (the
 *   rest of the frame is not read), so the caller can log what it was sent.
 * - A frame may end at any record boundary; a frame cut inside its header or
 *   inside a record is rejected. The transport keeps message boundaries, so a
 *   frame ending between records is one the sender meant.
 * - The encoder does not check sizes against TUTTI__WIRE_MAX_FRAME or the
 *   content of strings: senders bound their payloads, and a frame that breaks
 *   the rules is refused by the receiving decoder.
 * - tutti__wbuf.err is sticky until tutti__wbuf_reset: TUTTI_ENOMEM after a
 *   failed growth, TUTTI_EINVAL after putting a record type with no table.
 */
#include "wire.h"

#include <math.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

/* ----------------------------------------------------------- field tables */

enum wire_kind { KIND_VARINT = 0, KIND_FIXED64 = 1, KIND_LEN = 2 };

enum field_fmt {
    FMT_U32,    /* varint, must fit 32 bits */
    FMT_U64,    /* varint */
    FMT_I32,    /* zigzag varint, must fit 32 bits signed */
    FMT_I64,    /* zigzag varint */
    FMT_BOOL,   /* varint 0 or 1 */
    FMT_FIX64,  /* fixed64 little endian, unsigned */
    FMT_DOUBLE, /* fixed64 IEEE 754, must be finite */
    FMT_STR,    /* length-delimited, no NUL */
    FMT_BYTES,  /* length-delimited, anything */
};

typedef struct field_desc {
    uint8_t num;
    uint8_t fmt;
    uint16_t off; /* offset of the member in tutti__rec */
} field_desc;

typedef struct rec_desc {
    const field_desc *fields;
    size_t count;
} rec_desc;

/* Member offsets are stored in 16 bits. */
_Static_assert(sizeof(tutti__rec) <= UINT16_MAX, "tutti__rec too large for field_desc");

/* clang-format off */
#define F(num, fmt, member) {(num), (fmt), (uint16_t)offsetof(tutti__rec, u.member)}

static const field_desc hello_fields[] = {
    F(1, FMT_STR, hello.session),  F(2, FMT_STR, hello.name),
    F(3, FMT_U32, hello.role),     F(4, FMT_U32, hello.resume_id),
    F(5, FMT_U64, hello.recv_next), F(6, FMT_BYTES, hello.cnonce),
    F(7, FMT_BYTES, hello.epk),
};
static const field_desc challenge_fields[] = {
    F(1, FMT_BYTES, challenge.hnonce), F(2, FMT_BYTES, challenge.hub_pk),
    F(3, FMT_BYTES, challenge.sig),    F(4, FMT_U32, challenge.mode),
};
static const field_desc auth_fields[] = {
    F(1, FMT_U32, auth.kind), F(2, FMT_STR, auth.cred_id), F(3, FMT_BYTES, auth.proof),
    F(4, FMT_BYTES, auth.ident),
};
static const field_desc welcome_fields[] = {
    F(1, FMT_U32, welcome.member_id),    F(2, FMT_I64, welcome.horizon),
    F(3, FMT_I64, welcome.heartbeat),    F(4, FMT_I64, welcome.joined.t),
    F(5, FMT_U32, welcome.joined.origin), F(6, FMT_U64, welcome.joined.seq),
    F(7, FMT_U64, welcome.hub_next), F(8, FMT_U32, welcome.role),
    F(9, FMT_STR, welcome.settings),
};
static const field_desc reject_fields[] = {
    F(1, FMT_U32, reject.code),
    F(2, FMT_STR, reject.reason),
};
static const field_desc event_fields[] = {
    F(1, FMT_I64, event.key.t),  F(2, FMT_U32, event.key.origin),
    F(3, FMT_U64, event.key.seq), F(4, FMT_U32, event.kind),
    F(5, FMT_BYTES, event.payload), F(6, FMT_I64, event.moved_from),
};
static const field_desc watermark_fields[] = {
    F(1, FMT_U32, watermark.origin),
    F(2, FMT_I64, watermark.w),
    F(3, FMT_U64, watermark.next_seq),
};
static const field_desc ping_fields[] = {
    F(1, FMT_I64, ping.t1),
    F(2, FMT_I64, ping.delay),
    F(3, FMT_U64, ping.late),
    F(4, FMT_I64, ping.bound),
    F(5, FMT_I64, ping.need),
    F(6, FMT_I64, ping.tail),
};
static const field_desc pong_fields[] = {
    F(1, FMT_I64, pong.t1),
    F(2, FMT_I64, pong.t2),
    F(3, FMT_I64, pong.t3),
};
static const field_desc stamp_fields[] = {
    F(1, FMT_I64, stamp.t),
    F(2, FMT_I64, stamp.e1),
    F(3, FMT_I64, stamp.e2),
};
static const field_desc nack_fields[] = {
    F(1, FMT_U64, nack.from),
};
static const field_desc report_fields[] = {
    F(1, FMT_U64, report.count),
    F(2, FMT_FIX64, report.hash),
};
static const field_desc notice_fields[] = {
    F(1, FMT_U32, notice.code),
    F(2, FMT_I32, notice.level),
    F(3, FMT_STR, notice.text),
};
static const field_desc request_fields[] = {
    F(1, FMT_U32, request.kind),
    F(2, FMT_DOUBLE, request.f),
    F(3, FMT_I64, request.i),
    F(4, FMT_U32, request.member),
};
static const field_desc command_fields[] = {
    F(1, FMT_U32, command.op),
    F(2, FMT_U32, command.member_id),
    F(3, FMT_U32, command.role),
    F(4, FMT_STR, command.name),
    F(5, FMT_U64, command.last_seq),
    F(6, FMT_I64, command.horizon),
    F(7, FMT_I64, command.heartbeat),
    F(8, FMT_DOUBLE, command.timeline.bpm),
    F(9, FMT_DOUBLE, command.timeline.beat0),
    F(10, FMT_I64, command.timeline.t0),
    F(11, FMT_DOUBLE, command.timeline.quantum),
    F(12, FMT_BOOL, command.timeline.playing),
};

#undef F

#define DESC(a) {(a), sizeof(a) / sizeof((a)[0])}

/* Indexed by enum tutti__rec_type; BYE (12) has no fields. */
static const rec_desc rec_descs[] = {
    [TUTTI__REC_HELLO] = DESC(hello_fields),
    [TUTTI__REC_WELCOME] = DESC(welcome_fields),
    [TUTTI__REC_REJECT] = DESC(reject_fields),
    [TUTTI__REC_EVENT] = DESC(event_fields),
    [TUTTI__REC_WATERMARK] = DESC(watermark_fields),
    [TUTTI__REC_PING] = DESC(ping_fields),
    [TUTTI__REC_PONG] = DESC(pong_fields),
    [TUTTI__REC_NACK] = DESC(nack_fields),
    [TUTTI__REC_REPORT] = DESC(report_fields),
    [TUTTI__REC_NOTICE] = DESC(notice_fields),
    [TUTTI__REC_REQUEST] = DESC(request_fields),
    [TUTTI__REC_BYE] = {NULL, 0},
    [TUTTI__REC_COMMAND] = DESC(command_fields),
    [TUTTI__REC_CHALLENGE] = DESC(challenge_fields),
    [TUTTI__REC_AUTH] = DESC(auth_fields),
    [TUTTI__REC_STAMP] = DESC(stamp_fields),
};

#undef DESC
/* clang-format on */

static const rec_desc *rec_desc_for(unsigned type)
{
    if (type == 0 || type >= sizeof(rec_descs) / sizeof(rec_descs[0])) return NULL;
    return &rec_descs[type];
}

static unsigned fmt_kind(unsigned fmt)
{
    switch (fmt) {
    case FMT_FIX64:
    case FMT_DOUBLE:
        return KIND_FIXED64;
    case FMT_STR:
    case FMT_BYTES:
        return KIND_LEN;
    default:
        return KIND_VARINT;
    }
}

/* What a missing string decodes to: a valid pointer to zero bytes. */
static const uint8_t empty_bytes[1];

/* ------------------------------------------------------- little helpers */

static uint64_t zigzag_enc(int64_t v)
{
    return ((uint64_t)v << 1) ^ (v < 0 ? ~(uint64_t)0 : 0);
}

static int64_t zigzag_dec(uint64_t u)
{
    /* (u >> 1) ^ -(u & 1), written without signed overflow. */
    uint64_t m = (u >> 1) ^ ((uint64_t)0 - (u & 1));
    int64_t v;
    memcpy(&v, &m, sizeof v);
    return v;
}

static uint64_t double_bits(double d)
{
    uint64_t u;
    memcpy(&u, &d, sizeof u);
    return u;
}

static double bits_double(uint64_t u)
{
    double d;
    memcpy(&d, &u, sizeof d);
    return d;
}

static size_t varint_size(uint64_t v)
{
    size_t n = 1;
    while (v >= 0x80) {
        v >>= 7;
        n++;
    }
    return n;
}

/* -------------------------------------------------------------- wbuf */

void tutti__wbuf_init(tutti__wbuf *b)
{
    b->p = NULL;
    b->len = 0;
    b->cap = 0;
    b->err = 0;
}

void tutti__wbuf_free(tutti__wbuf *b)
{
    free(b->p);
    tutti__wbuf_init(b);
}

void tutti__wbuf_reset(tutti__wbuf *b)
{
    b->len = 0;
    b->err = 0;
}

/* Make room for `extra` more bytes. Returns 0, or -1 with b->err set. */
static int wbuf_reserve(tutti__wbuf *b, size_t extra)
{
    size_t need, cap;
    uint8_t *p;

    if (b->err) return -1;
    if (extra > SIZE_MAX - b->len) goto nomem;
    need = b->len + extra;
    if (need <= b->cap) return 0;
    cap = b->cap ? b->cap : 256;
    while (cap < need) {
        if (cap > SIZE_MAX / 2) goto nomem;
        cap *= 2;
    }
    p = realloc(b->p, cap);
    if (!p) goto nomem;
    b->p = p;
    b->cap = cap;
    return 0;
nomem:
    b->err = TUTTI_ENOMEM;
    return -1;
}

static void put_u8(tutti__wbuf *b, uint8_t v)
{
    if (wbuf_reserve(b, 1) == 0) b->p[b->len++] = v;
}

static void put_bytes(tutti__wbuf *b, const void *p, size_t n)
{
    if (n == 0 || wbuf_reserve(b, n) != 0) return;
    memcpy(b->p + b->len, p, n);
    b->len += n;
}

/* Writes a varint at `dst`, which must have varint_size(v) bytes. */
static void varint_write(uint8_t *dst, uint64_t v)
{
    while (v >= 0x80) {
        *dst++ = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    *dst = (uint8_t)v;
}

static void put_varint(tutti__wbuf *b, uint64_t v)
{
    size_t n = varint_size(v);
    if (wbuf_reserve(b, n) != 0) return;
    varint_write(b->p + b->len, v);
    b->len += n;
}

static void put_fixed64(tutti__wbuf *b, uint64_t v)
{
    uint8_t le[8];
    for (int i = 0; i < 8; i++)
        le[i] = (uint8_t)(v >> (8 * i));
    put_bytes(b, le, sizeof le);
}

tutti__str tutti__str_c(const char *s)
{
    tutti__str r;
    size_t n = s ? strlen(s) : 0;
    r.p = s ? (const uint8_t *)s : empty_bytes;
    r.len = n > UINT32_MAX ? UINT32_MAX : (uint32_t)n;
    return r;
}

/* ---------------------------------------------------------- encoding */

/* The value of a varint or fixed64 field as the 64 bits that go on the wire. */
static uint64_t scalar_bits(unsigned fmt, const void *m)
{
    uint32_t u32;
    uint64_t u64;
    int32_t i32;
    int64_t i64;
    bool flag;
    double dbl;

    switch (fmt) {
    case FMT_U32:
        memcpy(&u32, m, sizeof u32);
        return u32;
    case FMT_I32:
        memcpy(&i32, m, sizeof i32);
        return zigzag_enc(i32);
    case FMT_I64:
        memcpy(&i64, m, sizeof i64);
        return zigzag_enc(i64);
    case FMT_BOOL:
        memcpy(&flag, m, sizeof flag);
        return flag ? 1 : 0;
    case FMT_DOUBLE:
        memcpy(&dbl, m, sizeof dbl);
        return double_bits(dbl);
    default: /* FMT_U64, FMT_FIX64 */
        memcpy(&u64, m, sizeof u64);
        return u64;
    }
}

static void put_fields(tutti__wbuf *b, const rec_desc *d, const tutti__rec *r)
{
    for (size_t i = 0; i < d->count; i++) {
        const field_desc *f = &d->fields[i];
        const void *m = (const char *)r + f->off;
        unsigned kind = fmt_kind(f->fmt);
        uint64_t key = ((uint64_t)f->num << 3) | kind;

        if (kind == KIND_LEN) {
            tutti__str s;
            memcpy(&s, m, sizeof s);
            if (s.len == 0) continue;
            put_varint(b, key);
            put_varint(b, s.len);
            put_bytes(b, s.p, s.len);
        } else {
            uint64_t u = scalar_bits(f->fmt, m);
            if (u == 0) continue;
            put_varint(b, key);
            if (kind == KIND_FIXED64)
                put_fixed64(b, u);
            else
                put_varint(b, u);
        }
    }
}

void tutti__frame_begin(tutti__wbuf *b, const tutti__frame_hdr *hdr)
{
    /* The version byte is always ours: a frame is built by this code. */
    put_u8(b, 'T');
    put_u8(b, 'U');
    put_u8(b, TUTTI__WIRE_VERSION);
    put_u8(b, hdr->flags);
    put_varint(b, hdr->link_seq);
    put_varint(b, hdr->ack);
}

void tutti__rec_put(tutti__wbuf *b, const tutti__rec *r)
{
    const rec_desc *d = rec_desc_for(r->type);
    size_t len_at, body_at, body_len, n;

    if (b->err) return;
    if (!d) {
        b->err = TUTTI_EINVAL;
        return;
    }
    put_u8(b, r->type);
    /*
     * The body length is known only after the body is written. Most bodies are
     * shorter than 128 bytes, so one length byte is reserved and the body is
     * moved up in the rare case the length needs more.
     */
    len_at = b->len;
    put_u8(b, 0);
    body_at = b->len;
    put_fields(b, d, r);
    if (b->err) return;
    body_len = b->len - body_at;
    n = varint_size(body_len);
    if (n > 1) {
        if (wbuf_reserve(b, n - 1) != 0) return;
        memmove(b->p + body_at + n - 1, b->p + body_at, body_len);
        b->len += n - 1;
    }
    varint_write(b->p + len_at, body_len);
}

void tutti__command_encode(tutti__wbuf *b, const tutti__rec *cmd)
{
    put_fields(b, &rec_descs[TUTTI__REC_COMMAND], cmd);
}

/* ---------------------------------------------------------- decoding */

typedef struct reader {
    const uint8_t *p, *end;
    const char *why;
} reader;

static int fail(reader *rd, const char *why)
{
    rd->why = why;
    return TUTTI_EPROTO;
}

static int get_varint(reader *rd, uint64_t *out)
{
    uint64_t v = 0;

    for (unsigned shift = 0;; shift += 7) {
        uint8_t c;
        if (rd->p == rd->end) return fail(rd, "truncated varint");
        c = *rd->p++;
        /* The tenth byte may hold bit 63 only, and must end the varint. */
        if (shift == 63 && c > 1)
            return fail(rd, c & 0x80 ? "varint longer than 10 bytes"
                                     : "varint overflows 64 bits");
        v |= (uint64_t)(c & 0x7f) << shift;
        if (!(c & 0x80)) {
            *out = v;
            return 0;
        }
    }
}

static int get_fixed64(reader *rd, uint64_t *out)
{
    uint64_t v = 0;

    if (rd->end - rd->p < 8) return fail(rd, "truncated fixed64");
    for (int i = 0; i < 8; i++)
        v |= (uint64_t)rd->p[i] << (8 * i);
    rd->p += 8;
    *out = v;
    return 0;
}

static int get_len(reader *rd, const uint8_t **p, size_t *n)
{
    uint64_t len;
    int rc = get_varint(rd, &len);

    if (rc) return rc;
    if (len > (uint64_t)(rd->end - rd->p)) return fail(rd, "field runs past its record");
    *p = rd->p;
    *n = (size_t)len;
    rd->p += len;
    return 0;
}

static const field_desc *find_field(const rec_desc *d, uint64_t num)
{
    for (size_t i = 0; i < d->count; i++)
        if (d->fields[i].num == num) return &d->fields[i];
    return NULL;
}

/* Stores one decoded value into the record, checking the range of the C type. */
static int store_field(reader *rd, const field_desc *f, char *m, uint64_t u,
                       const uint8_t *p, size_t n)
{
    switch (f->fmt) {
    case FMT_U32: {
        uint32_t v;
        if (u > UINT32_MAX) return fail(rd, "u32 field out of range");
        v = (uint32_t)u;
        memcpy(m, &v, sizeof v);
        return 0;
    }
    case FMT_U64:
    case FMT_FIX64:
        memcpy(m, &u, sizeof u);
        return 0;
    case FMT_I32: {
        int64_t s = zigzag_dec(u);
        int32_t v;
        if (s < INT32_MIN || s > INT32_MAX) return fail(rd, "i32 field out of range");
        v = (int32_t)s;
        memcpy(m, &v, sizeof v);
        return 0;
    }
    case FMT_I64: {
        int64_t s = zigzag_dec(u);
        memcpy(m, &s, sizeof s);
        return 0;
    }
    case FMT_BOOL: {
        bool v;
        if (u > 1) return fail(rd, "bool field not 0 or 1");
        v = u != 0;
        memcpy(m, &v, sizeof v);
        return 0;
    }
    case FMT_DOUBLE: {
        double d = bits_double(u);
        if (!isfinite(d)) return fail(rd, "double field not finite");
        memcpy(m, &d, sizeof d);
        return 0;
    }
    case FMT_STR:
    case FMT_BYTES: {
        tutti__str s;
        if (f->fmt == FMT_STR && n > 0 && memchr(p, 0, n))
            return fail(rd, "NUL in string");
        s.p = n > 0 ? p : empty_bytes;
        s.len = (uint32_t)n; /* n <= TUTTI__WIRE_MAX_FRAME */
        memcpy(m, &s, sizeof s);
        return 0;
    }
    default:
        return fail(rd, "bad field table");
    }
}

/* Decodes a body of fields (no type byte, no length) into *r. */
static int decode_body(const uint8_t *buf, size_t len, uint8_t type, tutti__rec *r,
                       const char **why)
{
    const rec_desc *d = rec_desc_for(type);
    reader rd;
    int rc = 0;

    if (len == 0) buf = empty_bytes; /* never offset a NULL pointer */
    rd.p = buf;
    rd.end = buf + len;
    rd.why = NULL;

    memset(r, 0, sizeof *r);
    r->type = type;
    for (size_t i = 0; i < d->count; i++) {
        const field_desc *f = &d->fields[i];
        if (f->fmt == FMT_STR || f->fmt == FMT_BYTES) {
            tutti__str s = {empty_bytes, 0};
            memcpy((char *)r + f->off, &s, sizeof s);
        }
    }

    while (rd.p < rd.end) {
        uint64_t key, num, u = 0;
        unsigned kind;
        const uint8_t *p = NULL;
        size_t n = 0;
        const field_desc *f;

        if ((rc = get_varint(&rd, &key)) != 0) break;
        num = key >> 3;
        kind = (unsigned)(key & 7);
        if (num == 0) {
            rc = fail(&rd, "field number 0");
            break;
        }
        switch (kind) {
        case KIND_VARINT:
            rc = get_varint(&rd, &u);
            break;
        case KIND_FIXED64:
            rc = get_fixed64(&rd, &u);
            break;
        case KIND_LEN:
            rc = get_len(&rd, &p, &n);
            break;
        default:
            rc = fail(&rd, "unknown field kind");
            break;
        }
        if (rc) break;
        f = find_field(d, num);
        if (!f) continue; /* a field from a later version */
        if (fmt_kind(f->fmt) != kind) {
            rc = fail(&rd, "wrong kind for field");
            break;
        }
        if ((rc = store_field(&rd, f, (char *)r + f->off, u, p, n)) != 0) break;
    }
    if (rc && why) *why = rd.why;
    return rc;
}

int tutti__command_decode(const uint8_t *buf, size_t len, tutti__rec *cmd)
{
    if (len > TUTTI__WIRE_MAX_FRAME || (len > 0 && !buf)) {
        memset(cmd, 0, sizeof *cmd);
        return TUTTI_EPROTO;
    }
    return decode_body(buf, len, TUTTI__REC_COMMAND, cmd, NULL);
}

/*
 * Walks the records after the header. With on_rec NULL it only validates;
 * otherwise it hands out every known record.
 */
static int walk_records(reader *rd, int (*on_rec)(void *ctx, const tutti__rec *r),
                        void *ctx)
{
    while (rd->p < rd->end) {
        uint8_t type = *rd->p++;
        const uint8_t *body;
        size_t n;
        tutti__rec rec;
        int rc;

        uint64_t blen;

        if ((rc = get_varint(rd, &blen)) != 0) return rc;
        if (blen > (uint64_t)(rd->end - rd->p)) return fail(rd, "truncated record");
        body = rd->p;
        n = (size_t)blen;
        rd->p += n;
        if (!rec_desc_for(type)) continue; /* a record type from a later version */
        if ((rc = decode_body(body, n, type, &rec, &rd->why)) != 0) return rc;
        if (on_rec && (rc = on_rec(ctx, &rec)) != 0) return rc;
    }
    return 0;
}

int tutti__frame_decode(const uint8_t *buf, size_t len, tutti__frame_hdr *hdr,
                        int (*on_rec)(void *ctx, const tutti__rec *r), void *ctx,
                        const char **why)
{
    reader rd = {NULL, NULL, NULL};
    const uint8_t *records;
    tutti__frame_hdr h;
    int rc;

    if (!buf || len > TUTTI__WIRE_MAX_FRAME) {
        rc = fail(&rd, buf ? "frame too large" : "no frame");
        goto out;
    }
    rd.p = buf;
    rd.end = buf + len;
    if (len < 2 || buf[0] != 'T' || buf[1] != 'U') {
        rc = fail(&rd, "bad magic");
        goto out;
    }
    if (len < 4) {
        rc = fail(&rd, "truncated header");
        goto out;
    }
    /* The layout after the version byte belongs to that version: check it first. */
    h.version = buf[2];
    h.flags = buf[3];
    if (h.version != TUTTI__WIRE_VERSION) {
        if (hdr) {
            /* Enough for a log line or a REJECT; the rest is not ours to read. */
            hdr->version = h.version;
            hdr->flags = h.flags;
            hdr->link_seq = 0;
            hdr->ack = 0;
        }
        rd.why = "unsupported wire version";
        rc = TUTTI_EVERSION;
        goto out;
    }
    rd.p = buf + 4;
    if ((rc = get_varint(&rd, &h.link_seq)) != 0 || (rc = get_varint(&rd, &h.ack)) != 0)
        goto out;
    records = rd.p;

    if ((rc = walk_records(&rd, NULL, NULL)) != 0) goto out;
    if (hdr) *hdr = h;
    if (on_rec) {
        rd.p = records;
        rc = walk_records(&rd, on_rec, ctx);
    }
out:
    if (rc && why && rd.why) *why = rd.why;
    return rc;
}
