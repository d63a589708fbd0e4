/*
 * Tests of the namespace rewriter: the arithmetic and its inverses, the rule
 * table, every command scsynth takes (string and integer addresses), the
 * confinement rules, completion messages, synthdef renaming in SCgf files,
 * replies, and the output contract (checked packets, EFULL, determinism).
 */
#include "ns.h"
#include "osc.h"
#include "test.h"
#include "tutti/tutti.h"

#include <math.h>
#include <stdarg.h>

/* ------------------------------------------------------------ building */

typedef struct pkt {
    uint8_t b[16384];
    size_t n;
} pkt;

static void put(pkt *p, const void *d, size_t n)
{
    memcpy(p->b + p->n, d, n);
    p->n += n;
}

static void put_i(pkt *p, int32_t v)
{
    uint8_t b[4] = {(uint8_t)((uint32_t)v >> 24), (uint8_t)((uint32_t)v >> 16),
                    (uint8_t)((uint32_t)v >> 8), (uint8_t)v};
    put(p, b, 4);
}

static void put_h(pkt *p, int16_t v)
{
    uint8_t b[2] = {(uint8_t)((uint16_t)v >> 8), (uint8_t)v};
    put(p, b, 2);
}

static void put_f(pkt *p, float f)
{
    uint32_t u;
    memcpy(&u, &f, 4);
    put_i(p, (int32_t)u);
}

static void put_str(pkt *p, const char *s)
{
    put(p, s, strlen(s) + 1);
    while (p->n % 4)
        p->b[p->n++] = 0;
}

static void put_blob(pkt *p, const uint8_t *d, size_t n)
{
    put_i(p, (int32_t)n);
    put(p, d, n);
    while (p->n % 4)
        p->b[p->n++] = 0;
}

/* One message. `addr` is an address, or "#<n>" for sclang's integer command
 * n. Types: i (int), f (double), s (string), b (const pkt *), d (double, 8
 * bytes), h (long long), m (int), [ ] T (no data). */
static pkt vmsg(const char *addr, const char *types, va_list ap)
{
    pkt p = {{0}, 0};
    if (addr[0] == '#') {
        put_i(&p, atoi(addr + 1));
    } else {
        put_str(&p, addr);
    }
    if (!types) return p;
    char tags[512] = ",";
    strcat(tags, types);
    put_str(&p, tags);
    for (const char *t = types; *t; t++) {
        switch (*t) {
        case 'i':
        case 'm':
            put_i(&p, va_arg(ap, int32_t));
            break;
        case 'f':
            put_f(&p, (float)va_arg(ap, double));
            break;
        case 's':
            put_str(&p, va_arg(ap, const char *));
            break;
        case 'b': {
            const pkt *b = va_arg(ap, const pkt *);
            put_blob(&p, b->b, b->n);
            break;
        }
        case 'd': {
            double d = va_arg(ap, double);
            uint64_t u;
            memcpy(&u, &d, 8);
            put_i(&p, (int32_t)(u >> 32));
            put_i(&p, (int32_t)u);
            break;
        }
        case 'h': {
            long long v = va_arg(ap, long long);
            put_i(&p, (int32_t)((unsigned long long)v >> 32));
            put_i(&p, (int32_t)v);
            break;
        }
        default:
            break;
        }
    }
    return p;
}

static pkt msg(const char *addr, const char *types, ...)
{
    va_list ap;
    va_start(ap, types);
    pkt p = vmsg(addr, types, ap);
    va_end(ap);
    return p;
}

static pkt bundle(void)
{
    pkt b = {{0}, 0};
    put_str(&b, "#bundle");
    put_i(&b, 0);
    put_i(&b, 1);
    return b;
}

static void add(pkt *b, const pkt *e)
{
    put_i(b, (int32_t)e->n);
    put(b, e->b, e->n);
}

/* ------------------------------------------------------------ decoding */

typedef struct dec {
    const char *addr; /* NULL for an integer command */
    int cmd;
    int n;
    char t[256];
    int32_t i[256];
    float f[256];
    const char *s[256];
    const uint8_t *b[256];
    size_t bn[256];
} dec;

static uint32_t be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static bool decode(const uint8_t *p, size_t len, dec *d)
{
    tutti__osc_msg m;
    memset(d, 0, sizeof *d);
    if (tutti__osc_check(p, len) || tutti__osc_msg_parse(p, len, &m)) return false;
    d->addr = m.addr;
    d->cmd = m.addr ? -1 : p[3];
    const uint8_t *a = m.args;
    for (const char *t = m.tags ? m.tags : ""; *t && d->n < 256; t++, d->n++) {
        d->t[d->n] = *t;
        switch (*t) {
        case 'i':
            d->i[d->n] = (int32_t)be32(a);
            a += 4;
            break;
        case 'f': {
            uint32_t u = be32(a);
            memcpy(&d->f[d->n], &u, 4);
            a += 4;
            break;
        }
        case 's':
            d->s[d->n] = (const char *)a;
            a += (strlen((const char *)a) + 4) & ~(size_t)3;
            break;
        case 'b':
            d->bn[d->n] = be32(a);
            d->b[d->n] = a + 4;
            a += 4 + ((d->bn[d->n] + 3) & ~(size_t)3);
            break;
        case 'd':
        case 'h':
        case 't':
            a += 8;
            break;
        case 'm':
        case 'c':
        case 'r':
            a += 4;
            break;
        default:
            break;
        }
    }
    return true;
}

/* Whether a decoded message has exactly these arguments: types as in msg(),
 * b compared with a pkt's bytes; "*" in a string compares nothing. */
static bool vhas(const dec *d, const char *types, va_list ap)
{
    if ((int)strlen(types) != d->n || memcmp(d->t, types, (size_t)d->n)) {
        fprintf(stderr, "  tags: got ,%.*s want ,%s\n", d->n, d->t, types);
        return false;
    }
    bool ok = true;
    for (int k = 0; k < d->n; k++) {
        switch (types[k]) {
        case 'i': {
            int32_t v = va_arg(ap, int32_t);
            if (d->i[k] != v) {
                fprintf(stderr, "  arg %d: got %d want %d\n", k, (int)d->i[k], (int)v);
                ok = false;
            }
            break;
        }
        case 'f': {
            float v = (float)va_arg(ap, double);
            if (d->f[k] != v) {
                fprintf(stderr, "  arg %d: got %g want %g\n", k, d->f[k], v);
                ok = false;
            }
            break;
        }
        case 's': {
            const char *v = va_arg(ap, const char *);
            if (strcmp(v, "*") && strcmp(d->s[k], v)) {
                fprintf(stderr, "  arg %d: got \"%s\" want \"%s\"\n", k, d->s[k], v);
                ok = false;
            }
            break;
        }
        case 'b': {
            const pkt *v = va_arg(ap, const pkt *);
            if (v && (d->bn[k] != v->n || memcmp(d->b[k], v->b, v->n))) {
                fprintf(stderr, "  arg %d: blob differs (%zu vs %zu bytes)\n", k,
                        d->bn[k], v->n);
                ok = false;
            }
            break;
        }
        default:
            break;
        }
    }
    return ok;
}

static bool has(const dec *d, const char *types, ...)
{
    va_list ap;
    va_start(ap, types);
    bool ok = vhas(d, types, ap);
    va_end(ap);
    return ok;
}

/* ------------------------------------------------------------ running */

static tutti__ns *ns;
static tutti__ns_config cfg;

static void fresh(void)
{
    tutti__ns_destroy(ns);
    tutti__ns_config_init(&cfg);
    CHECK(tutti__ns_create(&ns, &cfg) == 0);
}

static pkt out;
static uint32_t last_flags;

/* Rewrites `in` for `slot` with the contract checks every rewrite must meet:
 * a smaller buffer gives TUTTI_EFULL and changes nothing, the output passes
 * the checker, and a buffer a little larger than the output gives the same
 * bytes. Returns the length (0: removed) or the error. */
static ssize_t rw_keep(uint32_t slot, const pkt *in, unsigned keep)
{
    static uint8_t small[16384];
    tutti__ns_stats before;
    tutti__ns_get_stats(ns, &before);
    uint32_t defs = tutti__ns_def_count(ns, slot);
    ssize_t n = tutti__ns_rewrite_ex(ns, slot, in->b, in->n, out.b, sizeof out.b, keep,
                                     &last_flags);
    if (n < 0) {
        out.n = 0;
        return n;
    }
    out.n = (size_t)n;
    if (n > 0) CHECK(tutti__osc_check(out.b, out.n) == 0);
    if (n == 0) return 0;

    /* Replay from the state before: undo by forgetting is not possible, so
     * check the smaller buffers on a copy of the history instead: every cap
     * below the output must fail without touching the def set. */
    uint32_t defs_after = tutti__ns_def_count(ns, slot);
    if (defs_after == defs) {
        for (size_t cap = 0; cap < out.n; cap += 1 + cap / 8) {
            tutti__ns_stats st;
            ssize_t r =
                tutti__ns_rewrite_ex(ns, slot, in->b, in->n, small, cap, keep, NULL);
            CHECK_EQ_I64(r, TUTTI_EFULL);
            CHECK_EQ_I64(tutti__ns_def_count(ns, slot), defs);
            tutti__ns_get_stats(ns, &st);
            CHECK(st.packets == before.packets + 1);
        }
        ssize_t r =
            tutti__ns_rewrite_ex(ns, slot, in->b, in->n, small, out.n + 32, keep, NULL);
        CHECK(r == n && !memcmp(small, out.b, out.n));
    }
    return n;
}

static ssize_t rw(uint32_t slot, const pkt *in)
{
    return rw_keep(slot, in, 0);
}

static dec got;

/* The out-of-range count of one rewrite. */
static long long out_of_range_of(uint32_t slot, const pkt *in)
{
    static uint8_t o[16384];
    tutti__ns_stats a, b;
    tutti__ns_get_stats(ns, &a);
    CHECK(tutti__ns_rewrite(ns, slot, in->b, in->n, o, sizeof o) > 0);
    tutti__ns_get_stats(ns, &b);
    return (long long)(b.out_of_range - a.out_of_range);
}

/* Rewrites one message and decodes it; false when it was removed. */
static bool rw1(uint32_t slot, const pkt *in)
{
    ssize_t n = rw(slot, in);
    if (n <= 0) return false;
    CHECK(decode(out.b, out.n, &got));
    return true;
}

#define PG(slot) tutti__ns_part_group(slot)
#define NODE(slot, id) tutti__ns_node(slot, id)

/* The same message through its string and its integer address. */
#define BOTH(name, num, types, ...)                                                      \
    for (int form_ = 0; form_ < 2; form_++)                                              \
        for (pkt in_ = msg(form_ ? "#" #num : name, types, __VA_ARGS__); in_.n; in_.n = 0)

/* ------------------------------------------------------------ arithmetic */

static void test_mapping(void)
{
    fresh();
    for (uint32_t s = 0; s < TUTTI_NS_SLOTS; s++) {
        CHECK_EQ_I64(PG(s), (int64_t)s << 26);
        static const int32_t ids[] = {
            0, 1, 2, 999, 1000, 1001, 67108863, 67108864, 67108865 + 1000, INT32_MAX};
        for (size_t k = 0; k < sizeof ids / sizeof ids[0]; k++) {
            int32_t m = NODE(s, ids[k]);
            CHECK(m >= PG(s) && (int64_t)m < ((int64_t)s + 1) << 26);
            uint32_t back_s;
            int32_t back;
            CHECK(tutti__ns_node_inv(m, &back_s, &back));
            CHECK_EQ_I64(back_s, s);
            CHECK_EQ_I64(back, ids[k] % 67108864);
        }
        CHECK_EQ_I64(NODE(s, 0), PG(s));
        /* sclang's default group trades places with the part's last id, so
         * a group k * 2^26 + 1 that sclang's initTree makes through
         * scsynth's own port is never a part's (slot 0 is the server's own) */
        CHECK_EQ_I64(NODE(s, 1), s ? PG(s) + 67108863 : 1);
        CHECK_EQ_I64(NODE(s, 67108863), s ? PG(s) + 1 : 67108863);
        CHECK_EQ_I64(NODE(s, 67108864 + 1), NODE(s, 1));
        CHECK_EQ_I64(NODE(s, -1), -1);
        CHECK_EQ_I64(NODE(s, -8), -8);

        for (int32_t b = 0; b < cfg.buf_span; b += 101) {
            int32_t m, back;
            uint32_t bs;
            CHECK(tutti__ns_buf(&cfg, s, b, &m) == TUTTI_NS_MAP_OK);
            CHECK_EQ_I64(m, (int64_t)s * 1024 + b);
            CHECK(tutti__ns_buf_inv(&cfg, m, &bs, &back) == TUTTI_NS_MAP_OK);
            CHECK(bs == s && back == b);
        }
        int32_t m, back;
        uint32_t bs;
        CHECK(tutti__ns_buf(&cfg, s, 1024, &m) == TUTTI_NS_MAP_RANGE && m == 1024);
        CHECK(tutti__ns_buf(&cfg, s, -1, &m) == TUTTI_NS_MAP_SHARED && m == -1);

        /* audio: hardware shared, private mapped */
        CHECK(tutti__ns_abus(&cfg, s, 0, &m) == TUTTI_NS_MAP_SHARED && m == 0);
        CHECK(tutti__ns_abus(&cfg, s, 15, &m) == TUTTI_NS_MAP_SHARED && m == 15);
        CHECK(tutti__ns_abus(&cfg, s, 16, &m) == TUTTI_NS_MAP_OK);
        CHECK_EQ_I64(m, 16 + (int64_t)s * 128);
        CHECK(tutti__ns_abus_inv(&cfg, m, &bs, &back) == TUTTI_NS_MAP_OK);
        CHECK(bs == s && back == 16);
        CHECK(tutti__ns_abus(&cfg, s, 16 + 127, &m) == TUTTI_NS_MAP_OK);
        CHECK(tutti__ns_abus_inv(&cfg, m, &bs, &back) == TUTTI_NS_MAP_OK);
        CHECK(bs == s && back == 16 + 127);
        CHECK(tutti__ns_abus(&cfg, s, 16 + 128, &m) == TUTTI_NS_MAP_RANGE && m == 144);
        CHECK(tutti__ns_abus_inv(&cfg, 3, &bs, &back) == TUTTI_NS_MAP_SHARED &&
              back == 3);

        CHECK(tutti__ns_cbus(&cfg, s, 7, &m) == TUTTI_NS_MAP_OK);
        CHECK_EQ_I64(m, (int64_t)s * 1024 + 7);
        CHECK(tutti__ns_cbus_inv(&cfg, m, &bs, &back) == TUTTI_NS_MAP_OK);
        CHECK(bs == s && back == 7);
        CHECK(tutti__ns_cbus(&cfg, s, 5000, &m) == TUTTI_NS_MAP_RANGE && m == 5000);
    }
    uint32_t bs;
    int32_t back;
    CHECK(!tutti__ns_node_inv(-1, &bs, &back));
    CHECK(tutti__ns_buf_inv(&cfg, 32 * 1024, &bs, &back) == TUTTI_NS_MAP_RANGE);
    CHECK(tutti__ns_abus_inv(&cfg, 16 + 32 * 128, &bs, &back) == TUTTI_NS_MAP_RANGE);

    /* a pseudo-random sweep: a mapped node never leaves its slot's space */
    uint64_t x = 88172645463325252u;
    for (int k = 0; k < 100000; k++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        uint32_t s = 1 + (uint32_t)(x % 31);
        int32_t id = (int32_t)(x >> 33);
        int32_t m = NODE(s, id);
        CHECK(m >= PG(s) && m <= PG(s) + 67108863);
        CHECK(id == 0 || id % 67108864 == 0 || m != PG(s));
    }
}

static void test_config(void)
{
    tutti__ns_config c;
    tutti__ns_config_init(&c);
    CHECK(c.buf_span == 1024 && c.abus_span == 128 && c.cbus_span == 1024 &&
          c.hw_audio_buses == 16);
    char why[600];
    CHECK(tutti__ns_check_server(&c, 32768, 16 + 4096, 32768, why, sizeof why) == 0);
    CHECK(why[0] == 0);
    CHECK(tutti__ns_check_server(&c, 1024, 1024, 16384, why, sizeof why) == TUTTI_EINVAL);
    CHECK(strstr(why, "-b 32768"));
    CHECK(strstr(why, "-a 4112"));
    CHECK(strstr(why, "-c 32768"));
    CHECK(tutti__ns_check_server(&c, 32768, 4112, 16384, why, sizeof why) ==
          TUTTI_EINVAL);
    CHECK(!strstr(why, "-b") && !strstr(why, "-a") && strstr(why, "-c 32768"));
    char tiny[8];
    CHECK(tutti__ns_check_server(&c, 0, 0, 0, tiny, sizeof tiny) == TUTTI_EINVAL);
    CHECK(strlen(tiny) < sizeof tiny);

    tutti__ns *x = NULL;
    c.buf_span = 0;
    CHECK(tutti__ns_create(&x, &c) == TUTTI_EINVAL && !x);
    tutti__ns_config_init(&c);
    c.cbus_span = INT32_MAX / 16;
    CHECK(tutti__ns_create(&x, &c) == TUTTI_EINVAL);
    tutti__ns_config_init(&c);
    c.hw_audio_buses = -1;
    CHECK(tutti__ns_create(&x, &c) == TUTTI_EINVAL);
}

static void test_part_setup(void)
{
    uint8_t b[64];
    size_t n = tutti__ns_part_setup(3, b, sizeof b);
    dec d;
    CHECK(n > 0 && decode(b, n, &d));
    CHECK(d.addr && !strcmp(d.addr, "/g_new"));
    CHECK(has(&d, "iii", PG(3), 0, 0));
    CHECK(tutti__ns_part_setup(0, b, sizeof b) == 0);
    CHECK(tutti__ns_part_setup(32, b, sizeof b) == 0);
    CHECK(tutti__ns_part_setup(3, b, n - 1) == 0);
}

/* --------------------------------------------------------------- rules */

static void test_rules(void)
{
    fresh();
    CHECK_EQ_I64(tutti__ns_rule_kind(ns, "buf"), TUTTI_NS_KIND_BUF);
    CHECK_EQ_I64(tutti__ns_rule_kind(ns, "bufnum"), TUTTI_NS_KIND_BUF);
    CHECK_EQ_I64(tutti__ns_rule_kind(ns, "buffer2"), TUTTI_NS_KIND_BUF); /* buf* */
    CHECK_EQ_I64(tutti__ns_rule_kind(ns, "sndbuf"), TUTTI_NS_KIND_BUF);
    CHECK_EQ_I64(tutti__ns_rule_kind(ns, "out"), TUTTI_NS_KIND_ABUS);
    CHECK_EQ_I64(tutti__ns_rule_kind(ns, "in"), TUTTI_NS_KIND_ABUS);
    CHECK_EQ_I64(tutti__ns_rule_kind(ns, "outbus"), TUTTI_NS_KIND_ABUS);
    CHECK_EQ_I64(tutti__ns_rule_kind(ns, "bus"), TUTTI_NS_KIND_ABUS);
    CHECK_EQ_I64(tutti__ns_rule_kind(ns, "kbus"), TUTTI_NS_KIND_CBUS);
    CHECK_EQ_I64(tutti__ns_rule_kind(ns, "ctl_bus"), TUTTI_NS_KIND_CBUS);
    CHECK_EQ_I64(tutti__ns_rule_kind(ns, "output"), TUTTI_NS_KIND_NONE); /* exact */
    CHECK_EQ_I64(tutti__ns_rule_kind(ns, "Out"), TUTTI_NS_KIND_NONE);    /* case */
    CHECK_EQ_I64(tutti__ns_rule_kind(ns, "freq"), TUTTI_NS_KIND_NONE);

    /* exact beats prefix, longer prefix beats shorter */
    CHECK(tutti__ns_rule(ns, "bufx", TUTTI_NS_KIND_CBUS) == 0);
    CHECK_EQ_I64(tutti__ns_rule_kind(ns, "bufx"), TUTTI_NS_KIND_CBUS);
    CHECK_EQ_I64(tutti__ns_rule_kind(ns, "bufxy"), TUTTI_NS_KIND_BUF);
    CHECK(tutti__ns_rule(ns, "bufx*", TUTTI_NS_KIND_ABUS) == 0);
    CHECK_EQ_I64(tutti__ns_rule_kind(ns, "bufxy"), TUTTI_NS_KIND_ABUS);
    CHECK_EQ_I64(tutti__ns_rule_kind(ns, "bufy"), TUTTI_NS_KIND_BUF);
    /* replace, remove */
    CHECK(tutti__ns_rule(ns, "out", TUTTI_NS_KIND_CBUS) == 0);
    CHECK_EQ_I64(tutti__ns_rule_kind(ns, "out"), TUTTI_NS_KIND_CBUS);
    CHECK(tutti__ns_rule(ns, "out", TUTTI_NS_KIND_NONE) == 0);
    CHECK_EQ_I64(tutti__ns_rule_kind(ns, "out"), TUTTI_NS_KIND_NONE);
    CHECK(tutti__ns_rule(ns, "never", TUTTI_NS_KIND_NONE) == 0);
    /* bad names and kinds */
    CHECK(tutti__ns_rule(ns, "", TUTTI_NS_KIND_BUF) == TUTTI_EINVAL);
    CHECK(tutti__ns_rule(ns, "a,b", TUTTI_NS_KIND_BUF) == TUTTI_EINVAL);
    CHECK(tutti__ns_rule(ns, "a b", TUTTI_NS_KIND_BUF) == TUTTI_EINVAL);
    CHECK(tutti__ns_rule(ns, "a*b", TUTTI_NS_KIND_BUF) == TUTTI_EINVAL);
    CHECK(tutti__ns_rule(ns, "abcdefghijklmnopqrstuvwxyz012345", 1) == TUTTI_EINVAL);
    CHECK(tutti__ns_rule(ns, "abcdefghijklmnopqrstuvwxyz01234", 1) == 0);
    CHECK(tutti__ns_rule(ns, "x", 9) == TUTTI_EINVAL);
    CHECK(tutti__ns_rule(ns, "*", TUTTI_NS_KIND_BUF) == TUTTI_EINVAL);
    /* full */
    CHECK(tutti__ns_rule(ns, "*", TUTTI_NS_KIND_NONE) == 0);
    CHECK_EQ_I64(tutti__ns_rule_kind(ns, "buf"), TUTTI_NS_KIND_NONE);
    char name[16];
    for (int k = 0; k < TUTTI_NS_MAX_RULES; k++) {
        snprintf(name, sizeof name, "r%d", k);
        CHECK(tutti__ns_rule(ns, name, TUTTI_NS_KIND_BUF) == 0);
    }
    CHECK(tutti__ns_rule(ns, "one_more", TUTTI_NS_KIND_BUF) == TUTTI_EFULL);
    CHECK(tutti__ns_rule(ns, "r3", TUTTI_NS_KIND_ABUS) == 0); /* replacing fits */

    /* specs */
    fresh();
    CHECK(tutti__ns_rules_parse(ns, " lfo : control , pos:buffer,out:none,,") == 0);
    CHECK_EQ_I64(tutti__ns_rule_kind(ns, "lfo"), TUTTI_NS_KIND_CBUS);
    CHECK_EQ_I64(tutti__ns_rule_kind(ns, "pos"), TUTTI_NS_KIND_BUF);
    CHECK_EQ_I64(tutti__ns_rule_kind(ns, "out"), TUTTI_NS_KIND_NONE);
    CHECK(tutti__ns_rules_parse(ns, "send*:audio,x:kbus,y:abus,z:buf,w:cbus") == 0);
    CHECK_EQ_I64(tutti__ns_rule_kind(ns, "sendA"), TUTTI_NS_KIND_ABUS);
    CHECK_EQ_I64(tutti__ns_rule_kind(ns, "x"), TUTTI_NS_KIND_CBUS);
    CHECK(tutti__ns_rules_parse(ns, "") == 0);
    /* all or nothing */
    CHECK(tutti__ns_rules_parse(ns, "a:audio,b:nonsense") == TUTTI_EINVAL);
    CHECK_EQ_I64(tutti__ns_rule_kind(ns, "a"), TUTTI_NS_KIND_NONE);
    CHECK(tutti__ns_rules_parse(ns, "a:audio,noколон") == TUTTI_EINVAL);
    CHECK(tutti__ns_rules_parse(ns, "a:audio,:buffer") == TUTTI_EINVAL);
    CHECK_EQ_I64(tutti__ns_rule_kind(ns, "a"), TUTTI_NS_KIND_NONE);
    CHECK(tutti__ns_rules_parse(ns, "*:none,only:buffer") == 0);
    CHECK_EQ_I64(tutti__ns_rule_kind(ns, "buf"), TUTTI_NS_KIND_NONE);
    CHECK_EQ_I64(tutti__ns_rule_kind(ns, "only"), TUTTI_NS_KIND_BUF);
}

/* ------------------------------------------------------------ classify */

static int cls(const pkt *p)
{
    return tutti__ns_classify(p->b, p->n);
}

static void test_classify(void)
{
    static const struct {
        const char *name;
        int num;
        int cls;
    } table[] = {
        {"/notify", 1, TUTTI_NS_LOCAL},
        {"/status", 2, TUTTI_NS_LOCAL},
        {"/quit", 3, TUTTI_NS_LOCAL},
        {"/cmd", 4, TUTTI_NS_LOCAL},
        {"/d_recv", 5, TUTTI_NS_SESSION},
        {"/d_load", 6, TUTTI_NS_LOCAL_FILE},
        {"/d_loadDir", 7, TUTTI_NS_LOCAL_FILE},
        {"/d_freeAll", 8, TUTTI_NS_SESSION},
        {"/s_new", 9, TUTTI_NS_SESSION},
        {"/n_trace", 10, TUTTI_NS_SESSION},
        {"/n_free", 11, TUTTI_NS_SESSION},
        {"/n_run", 12, TUTTI_NS_SESSION},
        {"/n_map", 14, TUTTI_NS_SESSION},
        {"/n_set", 15, TUTTI_NS_SESSION},
        {"/n_setn", 16, TUTTI_NS_SESSION},
        {"/n_fill", 17, TUTTI_NS_SESSION},
        {"/n_before", 18, TUTTI_NS_SESSION},
        {"/n_after", 19, TUTTI_NS_SESSION},
        {"/u_cmd", 20, TUTTI_NS_SESSION},
        {"/g_new", 21, TUTTI_NS_SESSION},
        {"/g_head", 22, TUTTI_NS_SESSION},
        {"/g_tail", 23, TUTTI_NS_SESSION},
        {"/g_freeAll", 24, TUTTI_NS_SESSION},
        {"/c_set", 25, TUTTI_NS_SESSION},
        {"/c_setn", 26, TUTTI_NS_SESSION},
        {"/c_fill", 27, TUTTI_NS_SESSION},
        {"/b_alloc", 28, TUTTI_NS_SESSION},
        {"/b_allocRead", 29, TUTTI_NS_LOCAL_FILE},
        {"/b_read", 30, TUTTI_NS_LOCAL_FILE},
        {"/b_write", 31, TUTTI_NS_LOCAL_FILE},
        {"/b_free", 32, TUTTI_NS_SESSION},
        {"/b_close", 33, TUTTI_NS_SESSION},
        {"/b_zero", 34, TUTTI_NS_SESSION},
        {"/b_set", 35, TUTTI_NS_SESSION},
        {"/b_setn", 36, TUTTI_NS_SESSION},
        {"/b_fill", 37, TUTTI_NS_SESSION},
        {"/b_gen", 38, TUTTI_NS_SESSION},
        {"/dumpOSC", 39, TUTTI_NS_LOCAL},
        {"/c_get", 40, TUTTI_NS_SESSION},
        {"/c_getn", 41, TUTTI_NS_SESSION},
        {"/b_get", 42, TUTTI_NS_SESSION},
        {"/b_getn", 43, TUTTI_NS_SESSION},
        {"/s_get", 44, TUTTI_NS_SESSION},
        {"/s_getn", 45, TUTTI_NS_SESSION},
        {"/n_query", 46, TUTTI_NS_SESSION},
        {"/b_query", 47, TUTTI_NS_SESSION},
        {"/n_mapn", 48, TUTTI_NS_SESSION},
        {"/s_noid", 49, TUTTI_NS_SESSION},
        {"/g_deepFree", 50, TUTTI_NS_SESSION},
        {"/clearSched", 51, TUTTI_NS_DROP},
        {"/sync", 52, TUTTI_NS_SESSION},
        {"/d_free", 53, TUTTI_NS_SESSION},
        {"/b_allocReadChannel", 54, TUTTI_NS_LOCAL_FILE},
        {"/b_readChannel", 55, TUTTI_NS_LOCAL_FILE},
        {"/g_dumpTree", 56, TUTTI_NS_SESSION},
        {"/g_queryTree", 57, TUTTI_NS_SESSION},
        {"/error", 58, TUTTI_NS_LOCAL},
        {"/s_newargs", 59, TUTTI_NS_SESSION},
        {"/n_mapa", 60, TUTTI_NS_SESSION},
        {"/n_mapan", 61, TUTTI_NS_SESSION},
        {"/n_order", 62, TUTTI_NS_SESSION},
        {"/p_new", 63, TUTTI_NS_SESSION},
        {"/version", 64, TUTTI_NS_LOCAL},
        {"/rtMemoryStatus", 65, TUTTI_NS_LOCAL},
        {"/b_setSampleRate", 66, TUTTI_NS_SESSION},
        {"/none", 0, TUTTI_NS_DROP},
    };
    for (size_t k = 0; k < sizeof table / sizeof table[0]; k++) {
        pkt s = msg(table[k].name, NULL);
        char num[8];
        snprintf(num, sizeof num, "#%d", table[k].num);
        pkt c = msg(num, NULL);
        if (cls(&s) != table[k].cls || cls(&c) != table[k].cls)
            fprintf(stderr, "  %s: %d %d want %d\n", table[k].name, cls(&s), cls(&c),
                    table[k].cls);
        CHECK(cls(&s) == table[k].cls);
        CHECK(cls(&c) == table[k].cls);
    }
    pkt p = msg("/error", "i", -1);
    CHECK(cls(&p) == TUTTI_NS_SESSION);
    p = msg("#58", "i", -2);
    CHECK(cls(&p) == TUTTI_NS_SESSION);
    p = msg("/error", "i", 0);
    CHECK(cls(&p) == TUTTI_NS_LOCAL);
    p = msg("/error", "i", 1);
    CHECK(cls(&p) == TUTTI_NS_LOCAL);
    p = msg("/n_cmd", NULL);
    CHECK(cls(&p) == TUTTI_NS_LOCAL); /* unknown to scsynth */
    p = msg("/whatever", "i", 3);
    CHECK(cls(&p) == TUTTI_NS_LOCAL);
    p = msg("#13", NULL);
    CHECK(cls(&p) == TUTTI_NS_LOCAL);
    p = msg("#99", NULL);
    CHECK(cls(&p) == TUTTI_NS_LOCAL);
    p = msg("#129", NULL); /* high bit set: scsynth reads a negative number */
    CHECK(cls(&p) == TUTTI_NS_LOCAL);
    p = bundle();
    CHECK(cls(&p) == TUTTI_EPROTO);
    CHECK(tutti__ns_classify(p.b, 3) == TUTTI_EPROTO);
}

/* -------------------------------------------------------------- nodes */

static void test_s_new(void)
{
    fresh();
    const uint32_t s = 3;
    /* full form; controls named by rules get their values rewritten, others
     * and indices do not */
    BOTH("/s_new", 9, "siiisfsisfsiif", "default", 1000, 1, 1, "freq", 440.0, "out", 16,
         "buf", 2.0, "bufnum", 5, 7, 12.0)
    {
        CHECK(rw1(s, &in_));
        CHECK(form_ ? got.cmd == 9 : !strcmp(got.addr, "/s_new"));
        CHECK(has(&got, "siiisfsisfsiif", "default", NODE(s, 1000), 1, NODE(s, 1), "freq",
                  440.0, "out", 16 + 3 * 128, "buf", 3.0 * 1024 + 2, "bufnum",
                  3 * 1024 + 5, 7, 12.0));
    }
    /* hardware out stays; target 0 is the part group */
    pkt p = msg("/s_new", "siiisi", "default", 1000, 0, 0, "out", 0);
    CHECK(rw1(s, &p));
    CHECK(has(&got, "siiisi", "default", NODE(s, 1000), 0, PG(s), "out", 0));

    /* missing add action and target are written out: the part group */
    BOTH("/s_new", 9, "si", "default", -1)
    {
        CHECK(rw1(s, &in_));
        CHECK(has(&got, "siii", "default", -1, 0, PG(s)));
    }
    p = msg("/s_new", "sii", "default", 1000, 1);
    CHECK(rw1(s, &p));
    CHECK(has(&got, "siii", "default", NODE(s, 1000), 1, PG(s)));
    /* no id: scsynth uses node 0 (the part group): refused */
    p = msg("/s_new", "s", "default");
    CHECK(rw(s, &p) == 0);
    CHECK(last_flags & TUTTI_NS_F_REFUSED);
    /* floats where ints are expected: truncated and written as ints */
    p = msg("/s_new", "sfff", "default", 1000.7, 1.0, 1.0);
    CHECK(rw1(s, &p));
    CHECK(has(&got, "siii", "default", NODE(s, 1000), 1, NODE(s, 1)));

    /* add actions 2, 3, 4 with the part group as target: refused */
    for (int action = 2; action <= 4; action++) {
        p = msg("/s_new", "siii", "default", 1000, action, 0);
        CHECK(rw(s, &p) == 0);
        p = msg("/s_new", "siii", "default", 1000, action, 1001);
        CHECK(rw1(s, &p));
        CHECK(has(&got, "siii", "default", NODE(s, 1000), action, NODE(s, 1001)));
    }
    p = msg("/s_new", "sii", "default", 1000, 3); /* target defaults to 0 */
    CHECK(rw(s, &p) == 0);
    /* creating a node with the part group's id (or an alias of it) */
    p = msg("/s_new", "siii", "default", 0, 0, 1);
    CHECK(rw(s, &p) == 0);
    p = msg("/s_new", "siii", "default", 67108864, 0, 1);
    CHECK(rw(s, &p) == 0);
    /* ids of sclang's clientID 1 reduce to the same space */
    p = msg("/s_new", "siii", "default", 67108864 + 1000, 0, 1);
    CHECK(rw1(s, &p));
    CHECK(has(&got, "siii", "default", NODE(s, 1000), 0, NODE(s, 1)));
    /* -1 as a target: only after a node was created in the same packet */
    p = msg("/s_new", "siii", "default", 1000, 0, -1);
    CHECK(rw(s, &p) == 0);
    pkt b = bundle();
    pkt m1 = msg("/s_new", "si", "default", -1);
    pkt m2 = msg("/s_new", "siii", "default", 1000, 3, -1);
    pkt m3 = msg("/n_set", "isf", -1, "amp", 0.5);
    add(&b, &m2);
    add(&b, &m1);
    add(&b, &m2);
    add(&b, &m3);
    CHECK(rw(s, &b) > 0);
    /* the first m2 was removed; m1, m2, m3 remain */
    int count = 0;
    for (size_t off = 16; off < out.n; off += 4 + be32(out.b + off))
        count++;
    CHECK_EQ_I64(count, 3);
    /* negative ids other than -1 as targets: refused */
    p = msg("/s_new", "siii", "default", 1000, 0, -8);
    CHECK(rw(s, &p) == 0);
    /* creating with a reserved negative id passes (scsynth refuses it) */
    p = msg("/s_new", "siii", "default", -8, 0, 1);
    CHECK(rw1(s, &p));
    CHECK(has(&got, "siii", "default", -8, 0, NODE(s, 1)));

    /* node path strings: h and t descend, u p n could leave: refused */
    p = msg("/s_new", "siisi", "default", 1000, 0, "h", 1);
    CHECK(rw1(s, &p));
    CHECK(has(&got, "siisi", "default", NODE(s, 1000), 0, "h", NODE(s, 1)));
    p = msg("/s_new", "siisi", "default", 1000, 2, "h", 0); /* before the head */
    CHECK(rw1(s, &p));
    p = msg("/s_new", "siisi", "default", 1000, 2, "", 0); /* before the group */
    CHECK(rw(s, &p) == 0);
    static const char *const bad[] = {"u", "hu", "p", "n", "tn"};
    for (size_t k = 0; k < 5; k++) {
        p = msg("/s_new", "siisi", "default", 1000, 0, bad[k], 1);
        CHECK(rw(s, &p) == 0);
    }
    p = msg("/s_new", "siis", "default", 1000, 0, "h"); /* path without a node */
    CHECK(rw(s, &p) == 0);

    /* arrays and bus-mapping strings */
    p = msg("/s_new", "siiis[ii]s[fs]sssfisss", "x", 1000, 0, 1, "out", 16, 20, "in",
            17.0, "a5", "freq", "c3", "amp", 0.1, 4, "a17", "lfo", "c2000");
    CHECK(rw1(s, &p));
    CHECK(has(&got, "siiis[ii]s[fs]sssfisss", "x", NODE(s, 1000), 0, NODE(s, 1), "out",
              16 + 384, 20 + 384, "in", 17.0 + 384, "a5", "freq", "c3075", "amp", 0.1, 4,
              "a401", "lfo", "c2000"));
    CHECK(last_flags & TUTTI_NS_F_OUT_OF_RANGE); /* c2000 */
    /* nested arrays */
    p = msg("/s_new", "siiis[[i][i]]", "x", 1000, 0, 1, "out", 16, 17);
    CHECK(rw1(s, &p));
    CHECK(has(&got, "siiis[[i][i]]", "x", NODE(s, 1000), 0, NODE(s, 1), "out", 400, 401));
    /* "c" alone unmaps (-1): kept */
    p = msg("/s_new", "siiiss", "x", 1000, 0, 1, "freq", "c");
    CHECK(rw1(s, &p));
    CHECK(has(&got, "siiiss", "x", NODE(s, 1000), 0, NODE(s, 1), "freq", "c"));

    /* out of range values stay and are counted */
    p = msg("/s_new", "siiisisfsf", "x", 1000, 0, 1, "buf", 1024, "out", 144.0, "out",
            0.5);
    CHECK_EQ_I64(out_of_range_of(s, &p), 3);
    CHECK(rw1(s, &p));
    CHECK(has(&got, "siiisisfsf", "x", NODE(s, 1000), 0, NODE(s, 1), "buf", 1024, "out",
              144.0, "out", 0.5));
    /* negative values are not ids: kept, not counted */
    p = msg("/s_new", "siiisi", "x", 1000, 0, 1, "buf", -1);
    CHECK(rw1(s, &p));
    CHECK(has(&got, "siiisi", "x", NODE(s, 1000), 0, NODE(s, 1), "buf", -1));
    CHECK(!(last_flags & TUTTI_NS_F_OUT_OF_RANGE));

    /* custom rules */
    CHECK(tutti__ns_rules_parse(ns, "lfo:control,out:none,pos*:buffer") == 0);
    p = msg("/s_new", "siiisisisi", "x", 1000, 0, 1, "lfo", 4, "out", 16, "pos2", 9);
    CHECK(rw1(s, &p));
    CHECK(has(&got, "siiisisisi", "x", NODE(s, 1000), 0, NODE(s, 1), "lfo", 3 * 1024 + 4,
              "out", 16, "pos2", 3 * 1024 + 9));

    /* unbalanced brackets (scsynth would loop forever), odd tags: refused */
    static const char *const odd[] = {"siiis[i", "siiis]i", "siiisd",
                                      "siiisT",  "siiisb",  "siiis[d]"};
    pkt blob = msg("/status", NULL);
    for (size_t k = 0; k < 6; k++) {
        if (strchr(odd[k], 'b'))
            p = msg("/s_new", odd[k], "x", 1000, 0, 1, "out", &blob);
        else if (strchr(odd[k], 'd'))
            p = msg("/s_new", odd[k], "x", 1000, 0, 1, "out", 1.0);
        else
            p = msg("/s_new", odd[k], "x", 1000, 0, 1, "out", 16);
        CHECK(rw(s, &p) == 0);
    }
    /* a lone key without a value is kept */
    p = msg("/s_new", "siiis", "x", 1000, 0, 1, "freq");
    CHECK(rw1(s, &p));
    CHECK(has(&got, "siiis", "x", NODE(s, 1000), 0, NODE(s, 1), "freq"));

    /* /s_newargs: ids rewritten, the rest (not read by scsynth) kept */
    BOTH("/s_newargs", 59, "siiisi", "x", 1000, 0, 0, "out", 16)
    {
        CHECK(rw1(s, &in_));
        CHECK(has(&got, "siiisi", "x", NODE(s, 1000), 0, PG(s), "out", 16));
    }
}

static void test_node_commands(void)
{
    fresh();
    const uint32_t s = 5;
    /* /n_free: the part group (0, or an alias) is removed from the list */
    BOTH("/n_free", 11, "iiii", 1000, 0, 1001, 67108864)
    {
        CHECK(rw1(s, &in_));
        CHECK(has(&got, "ii", NODE(s, 1000), NODE(s, 1001)));
        CHECK(last_flags & TUTTI_NS_F_REFUSED);
    }
    BOTH("/n_free", 11, "i", 0)
    {
        CHECK(rw(s, &in_) == 0);
    }
    BOTH("/n_run", 12, "iiii", 1000, 0, 0, 1)
    {
        CHECK(rw1(s, &in_));
        CHECK(has(&got, "iiii", NODE(s, 1000), 0, PG(s), 1));
    }
    BOTH("/n_set", 15, "isfsi", 0, "freq", 220.0, "out", 17)
    {
        CHECK(rw1(s, &in_));
        CHECK(has(&got, "isfsi", PG(s), "freq", 220.0, "out", 17 + 5 * 128));
    }
    BOTH("/n_set", 15, "iif", 1000, 3, 0.5)
    {
        CHECK(rw1(s, &in_));
        CHECK(has(&got, "iif", NODE(s, 1000), 3, 0.5));
    }
    BOTH("/n_setn", 16, "isiiissif", 1000, "bufnum", 3, 1, 2, "c4", "freq", 1, 440.0)
    {
        CHECK(rw1(s, &in_));
        CHECK(has(&got, "isiiissif", NODE(s, 1000), "bufnum", 3, 5 * 1024 + 1,
                  5 * 1024 + 2, "c5124", "freq", 1, 440.0));
    }
    BOTH("/n_fill", 17, "isiiiif", 1000, "out", 2, 16, 4, 2, 0.0)
    {
        CHECK(rw1(s, &in_));
        CHECK(has(&got, "isiiiif", NODE(s, 1000), "out", 2, 16 + 640, 4, 2, 0.0));
    }
    BOTH("/n_fill", 17, "isiss", 1000, "freq", 2, "c4", "x")
    {
        CHECK(rw1(s, &in_));
        CHECK(has(&got, "isiss", NODE(s, 1000), "freq", 2, "c5124", "x"));
    }
    pkt bad_fill = msg("/n_fill", "isid", 1000, "freq", 2, 1.0);
    CHECK(rw(s, &bad_fill) == 0);
    pkt bad_setn = msg("/n_setn", "isid", 1000, "freq", 1, 1.0);
    CHECK(rw(s, &bad_setn) == 0);
    BOTH("/n_map", 14, "isiiisi", 1000, "freq", 3, 4, 7, "amp", -1)
    {
        CHECK(rw1(s, &in_));
        CHECK(has(&got, "isiiisi", NODE(s, 1000), "freq", 5 * 1024 + 3, 4, 5 * 1024 + 7,
                  "amp", -1));
    }
    BOTH("/n_mapn", 48, "isii", 1000, "freq", 3, 2)
    {
        CHECK(rw1(s, &in_));
        CHECK(has(&got, "isii", NODE(s, 1000), "freq", 5 * 1024 + 3, 2));
    }
    BOTH("/n_mapa", 60, "isiif", 1000, "in", 20, 1, 2.0)
    {
        CHECK(rw1(s, &in_));
        CHECK(has(&got, "isiii", NODE(s, 1000), "in", 20 + 640, 1, 2));
    }
    BOTH("/n_mapan", 61, "isii", 1000, "in", 16, 2)
    {
        CHECK(rw1(s, &in_));
        CHECK(has(&got, "isii", NODE(s, 1000), "in", 16 + 640, 2));
    }
    /* a run that leaves the span is counted */
    pkt p = msg("/n_mapn", "isii", 1000, "freq", 1020, 8);
    CHECK(rw1(s, &p));
    CHECK(last_flags & TUTTI_NS_F_OUT_OF_RANGE);

    /* pairs: a pair that moves the part group or puts a node beside it goes */
    BOTH("/n_before", 18, "iiiiii", 1000, 1001, 0, 1000, 1002, 0)
    {
        CHECK(rw1(s, &in_));
        CHECK(has(&got, "ii", NODE(s, 1000), NODE(s, 1001)));
    }
    BOTH("/n_after", 19, "iii", 1000, 1001, 1002)
    {
        CHECK(rw1(s, &in_)); /* the odd one out would target node 0 */
        CHECK(has(&got, "ii", NODE(s, 1000), NODE(s, 1001)));
    }
    BOTH("/g_head", 22, "iiii", 0, 1000, 1, 0)
    {
        CHECK(rw1(s, &in_));
        CHECK(has(&got, "ii", PG(s), NODE(s, 1000)));
    }
    BOTH("/g_tail", 23, "ii", 1, 1000)
    {
        CHECK(rw1(s, &in_));
        CHECK(has(&got, "ii", NODE(s, 1), NODE(s, 1000)));
    }
    BOTH("/g_tail", 23, "i", 1)
    {
        CHECK(rw(s, &in_) == 0);
    }
    BOTH("/n_order", 62, "iiiii", 0, 1, 1000, 0, 1001)
    {
        CHECK(rw1(s, &in_));
        CHECK(has(&got, "iiii", 0, NODE(s, 1), NODE(s, 1000), NODE(s, 1001)));
    }
    BOTH("/n_order", 62, "iii", 3, 0, 1000)
    {
        CHECK(rw(s, &in_) == 0);
    }
    BOTH("/n_query", 46, "iii", 0, 1, 1000)
    {
        CHECK(rw1(s, &in_));
        CHECK(has(&got, "iii", PG(s), NODE(s, 1), NODE(s, 1000)));
    }
    BOTH("/n_trace", 10, "i", 1000)
    {
        CHECK(rw1(s, &in_));
        CHECK(has(&got, "i", NODE(s, 1000)));
    }
    BOTH("/s_noid", 49, "ii", 1000, 1001)
    {
        CHECK(rw1(s, &in_));
        CHECK(has(&got, "ii", NODE(s, 1000), NODE(s, 1001)));
    }
    BOTH("/g_new", 21, "iiiiiiiii", 1, 0, 0, 2, 1, 1, 3, 3, 2)
    {
        CHECK(rw1(s, &in_));
        CHECK(has(&got, "iiiiiiiii", NODE(s, 1), 0, PG(s), NODE(s, 2), 1, NODE(s, 1),
                  NODE(s, 3), 3, NODE(s, 2)));
    }
    BOTH("/g_new", 21, "iiii", 1, 0, 0, 2)
    {
        CHECK(rw1(s, &in_)); /* the last group's action and target default */
        CHECK(has(&got, "iiiiii", NODE(s, 1), 0, PG(s), NODE(s, 2), 0, PG(s)));
    }
    BOTH("/g_new", 21, "iii", 1, 4, 0)
    {
        CHECK(rw(s, &in_) == 0); /* replace the part group */
    }
    BOTH("/p_new", 63, "iii", 7, 1, 1)
    {
        CHECK(rw1(s, &in_));
        CHECK(has(&got, "iii", NODE(s, 7), 1, NODE(s, 1)));
    }
    BOTH("/g_freeAll", 24, "ii", 0, 1)
    {
        CHECK(rw1(s, &in_));
        CHECK(has(&got, "ii", PG(s), NODE(s, 1)));
    }
    BOTH("/g_deepFree", 50, "i", 0)
    {
        CHECK(rw1(s, &in_));
        CHECK(has(&got, "i", PG(s)));
    }
    BOTH("/g_dumpTree", 56, "iiii", 0, 1, 1, 0)
    {
        CHECK(rw1(s, &in_));
        CHECK(has(&got, "iiii", PG(s), 1, NODE(s, 1), 0));
    }
    BOTH("/g_queryTree", 57, "ii", 0, 1)
    {
        CHECK(rw1(s, &in_));
        CHECK(has(&got, "ii", PG(s), 1));
    }
    BOTH("/s_get", 44, "isi", 1000, "freq", 2)
    {
        CHECK(rw1(s, &in_));
        CHECK(has(&got, "isi", NODE(s, 1000), "freq", 2));
    }
    BOTH("/s_getn", 45, "isi", 1000, "freq", 2)
    {
        CHECK(rw1(s, &in_));
        CHECK(has(&got, "isi", NODE(s, 1000), "freq", 2));
    }
    BOTH("/u_cmd", 20, "iisf", 1000, 2, "cmd", 1.5)
    {
        CHECK(rw1(s, &in_));
        CHECK(has(&got, "iisf", NODE(s, 1000), 2, "cmd", 1.5));
    }
    /* a node argument that is not a number */
    p = msg("/n_free", "s", "one");
    CHECK(rw(s, &p) == 0);
    p = msg("/n_free", "h", 5LL);
    CHECK(rw(s, &p) == 0);
    /* no arguments at all: nothing to rewrite or to write out */
    static const char *const bare[] = {"/n_free", "/n_order", "/g_new", "/n_set",
                                       "/c_set"};
    for (size_t k = 0; k < 5; k++) {
        p = msg(bare[k], NULL);
        CHECK(rw1(s, &p) && got.n == 0 && out.n == p.n);
        p = msg(bare[k], "");
        CHECK(rw1(s, &p) && got.n == 0 && out.n == p.n);
    }
}

/* ------------------------------------------------------------- buffers */

static void test_buffers(void)
{
    fresh();
    const uint32_t s = 2;
    const int32_t B = 2 * 1024;
    pkt done = msg("/s_new", "siiisi", "player", 1000, 0, 0, "buf", 7);
    pkt done_rw =
        msg("/s_new", "siiisi", "player", NODE(s, 1000), 0, PG(s), "buf", B + 7);
    BOTH("/b_alloc", 28, "iiib", 7, 44100, 2, &done)
    {
        CHECK(rw1(s, &in_));
        CHECK(has(&got, "iiib", B + 7, 44100, 2, &done_rw));
    }
    BOTH("/b_alloc", 28, "iiiif", 7, 100, 1, 0, 48000.0)
    {
        CHECK(rw1(s, &in_));
        CHECK(has(&got, "iiiif", B + 7, 100, 1, 0, 48000.0));
    }
    BOTH("/b_free", 32, "ib", 7, &done)
    {
        CHECK(rw1(s, &in_));
        CHECK(has(&got, "ib", B + 7, &done_rw));
    }
    BOTH("/b_zero", 34, "i", 7)
    {
        CHECK(rw1(s, &in_));
        CHECK(has(&got, "i", B + 7));
    }
    BOTH("/b_close", 33, "f", 7.0)
    {
        CHECK(rw1(s, &in_));
        CHECK(has(&got, "i", B + 7));
    }
    BOTH("/b_set", 35, "iifif", 7, 0, 0.5, 1, 0.25)
    {
        CHECK(rw1(s, &in_));
        CHECK(has(&got, "iifif", B + 7, 0, 0.5, 1, 0.25));
    }
    BOTH("/b_setn", 36, "iiiff", 7, 0, 2, 0.5, 0.25)
    {
        CHECK(rw1(s, &in_));
        CHECK(has(&got, "iiiff", B + 7, 0, 2, 0.5, 0.25));
    }
    BOTH("/b_fill", 37, "iiif", 7, 0, 100, 0.0)
    {
        CHECK(rw1(s, &in_));
        CHECK(has(&got, "iiif", B + 7, 0, 100, 0.0));
    }
    BOTH("/b_gen", 38, "isiff", 7, "sine1", 7, 1.0, 0.5)
    {
        CHECK(rw1(s, &in_));
        CHECK(has(&got, "isiff", B + 7, "sine1", 7, 1.0, 0.5));
    }
    BOTH("/b_gen", 38, "isiiii", 7, "copy", 0, 8, 0, -1)
    {
        CHECK(rw1(s, &in_));
        CHECK(has(&got, "isiiii", B + 7, "copy", 0, B + 8, 0, -1));
    }
    BOTH("/b_gen", 38, "isii", 7, "PreparePartConv", 8, 2048)
    {
        CHECK(rw1(s, &in_));
        CHECK(has(&got, "isii", B + 7, "PreparePartConv", B + 8, 2048));
    }
    BOTH("/b_gen", 38, "isi", 7, "copy", 0)
    {
        CHECK(rw(s, &in_) == 0); /* the source would default to buffer 0 */
    }
    BOTH("/b_get", 42, "iii", 7, 0, 1)
    {
        CHECK(rw1(s, &in_));
        CHECK(has(&got, "iii", B + 7, 0, 1));
    }
    BOTH("/b_getn", 43, "iii", 7, 0, 10)
    {
        CHECK(rw1(s, &in_));
        CHECK(has(&got, "iii", B + 7, 0, 10));
    }
    BOTH("/b_query", 47, "iii", 7, 8, 2000)
    {
        CHECK(rw1(s, &in_));
        CHECK(has(&got, "iii", B + 7, B + 8, 2000));
        CHECK(last_flags & TUTTI_NS_F_OUT_OF_RANGE);
    }
    BOTH("/b_setSampleRate", 66, "if", 7, 48000.0)
    {
        CHECK(rw1(s, &in_));
        CHECK(has(&got, "if", B + 7, 48000.0));
    }
    /* no buffer number: scsynth would use buffer 0 */
    pkt p = msg("/b_free", NULL);
    CHECK(rw(s, &p) == 0);
    p = msg("/b_alloc", "s", "7");
    CHECK(rw(s, &p) == 0);

    /* file commands: removed by default, rewritten when kept */
    BOTH("/b_allocRead", 29, "isiib", 7, "/tmp/a.wav", 0, -1, &done)
    {
        CHECK(rw(s, &in_) == 0);
        CHECK(last_flags & TUTTI_NS_F_LOCAL_FILE);
        CHECK(rw_keep(s, &in_, TUTTI_NS_KEEP(TUTTI_NS_LOCAL_FILE)) > 0);
        CHECK(decode(out.b, out.n, &got));
        CHECK(has(&got, "isiib", B + 7, "/tmp/a.wav", 0, -1, &done_rw));
    }
    BOTH("/b_read", 30, "isiiiib", 7, "/tmp/a.wav", 0, -1, 0, 1, &done)
    {
        CHECK(rw_keep(s, &in_, TUTTI_NS_KEEP(TUTTI_NS_LOCAL_FILE)) > 0);
        CHECK(decode(out.b, out.n, &got));
        CHECK(has(&got, "isiiiib", B + 7, "/tmp/a.wav", 0, -1, 0, 1, &done_rw));
    }
    BOTH("/b_allocReadChannel", 54, "isiiiib", 7, "/tmp/a.wav", 0, -1, 0, 1, &done)
    {
        CHECK(rw_keep(s, &in_, TUTTI_NS_KEEP(TUTTI_NS_LOCAL_FILE)) > 0);
        CHECK(decode(out.b, out.n, &got));
        CHECK(has(&got, "isiiiib", B + 7, "/tmp/a.wav", 0, -1, 0, 1, &done_rw));
    }
    BOTH("/b_readChannel", 55, "isiiiiib", 7, "/tmp/a.wav", 0, -1, 0, 0, 1, &done)
    {
        CHECK(rw_keep(s, &in_, TUTTI_NS_KEEP(TUTTI_NS_LOCAL_FILE)) > 0);
        CHECK(decode(out.b, out.n, &got));
        CHECK(has(&got, "isiiiiib", B + 7, "/tmp/a.wav", 0, -1, 0, 0, 1, &done_rw));
    }
    BOTH("/b_write", 31, "isssiiib", 7, "/tmp/o.aiff", "aiff", "int16", -1, 0, 0, &done)
    {
        CHECK(rw_keep(s, &in_, TUTTI_NS_KEEP(TUTTI_NS_LOCAL_FILE)) > 0);
        CHECK(decode(out.b, out.n, &got));
        CHECK(has(&got, "isssiiib", B + 7, "/tmp/o.aiff", "aiff", "int16", -1, 0, 0,
                  &done_rw));
    }
    /* a header format that is not a string: scsynth would misread the rest */
    p = msg("/b_write", "isiiiii", 7, "/tmp/o.aiff", 1, 2, -1, 0, 0);
    CHECK(rw_keep(s, &p, TUTTI_NS_KEEP(TUTTI_NS_LOCAL_FILE)) == 0);
}

static void test_control_buses(void)
{
    fresh();
    const uint32_t s = 4;
    const int32_t C = 4 * 1024;
    BOTH("/c_set", 25, "ififif", 0, 0.5, 1, 1.5, 1023, 2.0)
    {
        CHECK(rw1(s, &in_));
        CHECK(has(&got, "ififif", C, 0.5, C + 1, 1.5, C + 1023, 2.0));
    }
    BOTH("/c_setn", 26, "iiffiif", 0, 2, 0.5, 0.25, 10, 1, 1.0)
    {
        CHECK(rw1(s, &in_));
        CHECK(has(&got, "iiffiif", C, 2, 0.5, 0.25, C + 10, 1, 1.0));
    }
    BOTH("/c_fill", 27, "iif", 3, 4, 0.0)
    {
        CHECK(rw1(s, &in_));
        CHECK(has(&got, "iif", C + 3, 4, 0.0));
    }
    BOTH("/c_get", 40, "ii", 3, 4)
    {
        CHECK(rw1(s, &in_));
        CHECK(has(&got, "ii", C + 3, C + 4));
    }
    BOTH("/c_getn", 41, "iiii", 3, 4, 100, 2)
    {
        CHECK(rw1(s, &in_));
        CHECK(has(&got, "iiii", C + 3, 4, C + 100, 2));
    }
    pkt p = msg("/c_set", "if", 1024, 0.5);
    CHECK_EQ_I64(out_of_range_of(s, &p), 1);
    CHECK(rw1(s, &p));
    CHECK(has(&got, "if", 1024, 0.5));
    p = msg("/c_fill", "iif", 1020, 10, 0.5); /* runs into the next slot */
    CHECK_EQ_I64(out_of_range_of(s, &p), 1);
    CHECK(rw1(s, &p));
    CHECK(has(&got, "iif", C + 1020, 10, 0.5));
    p = msg("/c_set", "id", 3, 0.5); /* scsynth's n_set would mishandle d */
    CHECK(rw(s, &p) == 0);
}

/* ------------------------------------------------ completion messages */

static void test_completion(void)
{
    fresh();
    const uint32_t s = 7;
    const int32_t B = 7 * 1024;
    /* a completion inside a completion */
    pkt inner = msg("/n_set", "isi", 1000, "buf", 3);
    pkt inner_rw = msg("/n_set", "isi", NODE(s, 1000), "buf", B + 3);
    pkt mid = msg("/b_zero", "ib", 3, &inner);
    pkt mid_rw = msg("/b_zero", "ib", B + 3, &inner_rw);
    pkt p = msg("/b_alloc", "iiib", 3, 512, 1, &mid);
    CHECK(rw1(s, &p));
    CHECK(has(&got, "iiib", B + 3, 512, 1, &mid_rw));

    /* a bundle as completion, with a LOCAL message removed from it */
    pkt st = msg("/status", NULL);
    pkt cb = bundle(), cb_rw = bundle();
    add(&cb, &inner);
    add(&cb, &st);
    add(&cb_rw, &inner_rw);
    p = msg("#28", "iiib", 3, 512, 1, &cb);
    CHECK(rw1(s, &p));
    CHECK(got.cmd == 28 && has(&got, "iiib", B + 3, 512, 1, &cb_rw));

    /* a completion that is only a LOCAL message becomes an empty blob */
    pkt empty = {{0}, 0};
    p = msg("/b_free", "ib", 3, &st);
    CHECK(rw1(s, &p));
    CHECK(has(&got, "ib", B + 3, &empty));
    CHECK(last_flags & TUTTI_NS_F_LOCAL);
    p = msg("/b_free", "ib", 3, &empty);
    CHECK(rw1(s, &p));
    CHECK(has(&got, "ib", B + 3, &empty));

    /* a completion that is not a packet: the command is refused */
    pkt junk = {{'/', 'x'}, 2};
    p = msg("/b_free", "ib", 3, &junk);
    CHECK(rw(s, &p) == 0);
    CHECK(last_flags & TUTTI_NS_F_REFUSED);

    /* -1 in a completion runs later: the creation before it does not count */
    pkt setm = msg("/n_set", "isf", -1, "amp", 0.1);
    pkt news = msg("/s_new", "si", "x", -1);
    pkt b = bundle();
    pkt alloc = msg("/b_alloc", "iiib", 3, 512, 1, &setm);
    add(&b, &news);
    add(&b, &alloc);
    CHECK(rw(s, &b) > 0);
    dec d;
    size_t off = 16 + 4 + be32(out.b + 16);
    CHECK(decode(out.b + off + 4, be32(out.b + off), &d));
    CHECK(has(&d, "iiib", B + 3, 512, 1, &empty));

    /* nesting limit */
    pkt deep = inner;
    for (int k = 0; k < TUTTI_NS_MAX_NEST + 1; k++) {
        pkt next = msg("/b_zero", "ib", 3, &deep);
        deep = next;
    }
    CHECK(rw(s, &deep) > 0 && (last_flags & TUTTI_NS_F_REFUSED)); /* the deepest goes */

    /* sclang's {}.play: /d_recv with an /s_new completion (tested with defs
     * below); the completion position only: a blob elsewhere is not run */
    p = msg("/b_alloc", "ibib", 3, &junk, 1, &inner);
    CHECK(rw1(s, &p));
    CHECK(has(&got, "ibib", B + 3, &junk, 1, &inner_rw));
}

/* ----------------------------------------------------------- synthdefs */

static void pstr(pkt *p, const char *s)
{
    uint8_t n = (uint8_t)strlen(s);
    put(p, &n, 1);
    put(p, s, n);
}

/* One def as tests/e2e/scclient.py builds it (SinOsc * amp -> Out), in
 * version 2 (wide) or 1/0 layout, with variants named "<name>.<v>". */
static void scgf_def(pkt *p, int version, const char *name, const char *const *variants,
                     int nvariants)
{
    bool wide = version == 2;
#define CNT(v) (wide ? put_i(p, v) : put_h(p, (int16_t)(v)))
    pstr(p, name);
    CNT(1);
    put_f(p, 0.0f);
    CNT(2);
    put_f(p, 440.0f);
    put_f(p, 0.0f);
    CNT(2);
    pstr(p, "freq");
    CNT(0);
    pstr(p, "amp");
    CNT(1);
    static const struct {
        const char *cls;
        int rate, nin, nout, special;
        int in[2][2];
        int out[2];
    } ugens[] = {
        {"Control", 1, 0, 2, 0, {{0}}, {1, 1}},
        {"SinOsc", 2, 2, 1, 0, {{0, 0}, {-1, 0}}, {2}},
        {"BinaryOpUGen", 2, 2, 1, 2, {{1, 0}, {0, 1}}, {2}},
        {"Out", 2, 2, 0, 0, {{-1, 0}, {2, 0}}, {0}},
    };
    CNT(4);
    for (int u = 0; u < 4; u++) {
        pstr(p, ugens[u].cls);
        uint8_t rate = (uint8_t)ugens[u].rate;
        put(p, &rate, 1);
        CNT(ugens[u].nin);
        CNT(ugens[u].nout);
        put_h(p, (int16_t)ugens[u].special);
        for (int k = 0; k < ugens[u].nin; k++) {
            CNT(ugens[u].in[k][0]);
            CNT(ugens[u].in[k][1]);
        }
        for (int k = 0; k < ugens[u].nout; k++) {
            uint8_t r = (uint8_t)ugens[u].out[k];
            put(p, &r, 1);
        }
    }
    if (version >= 1) {
        put_h(p, (int16_t)nvariants);
        for (int v = 0; v < nvariants; v++) {
            pstr(p, variants[v]);
            put_f(p, 880.0f);
            put_f(p, 0.1f);
        }
    }
#undef CNT
}

static pkt scgf(int version, int ndefs, const char *const *names,
                const char *const *variants, int nvariants)
{
    pkt p = {{0}, 0};
    put(&p, "SCgf", 4);
    put_i(&p, version);
    put_h(&p, (int16_t)ndefs);
    for (int d = 0; d < ndefs; d++)
        scgf_def(&p, version, names[d], d ? NULL : variants, d ? 0 : nvariants);
    return p;
}

static void test_synthdefs_v2(void)
{
    fresh();
    const uint32_t s = 6;
    static const char *const names[] = {"kick", "snare"};
    static const char *const renamed[] = {"kick.p6", "snare.p6"};
    pkt file = scgf(2, 2, names, NULL, 0);
    pkt expect = scgf(2, 2, renamed, NULL, 0);
    pkt play = msg("/s_new", "siii", "kick", 1000, 0, 0);
    pkt play_rw = msg("/s_new", "siii", "kick.p6", NODE(s, 1000), 0, PG(s));
    pkt p = msg("/d_recv", "bb", &file, &play);
    CHECK(rw1(s, &p));
    CHECK(has(&got, "bb", &expect, &play_rw)); /* the completion sees the new name */
    CHECK_EQ_I64(tutti__ns_def_count(ns, s), 2);
    CHECK(tutti__ns_def_known(ns, s, "kick") && tutti__ns_def_known(ns, s, "snare"));
    CHECK(!tutti__ns_def_known(ns, s + 1, "kick"));

    /* loaded defs are renamed; others ("default") are everyone's */
    BOTH("/s_new", 9, "siii", "snare", 1001, 0, 0)
    {
        CHECK(rw1(s, &in_));
        CHECK(has(&got, "siii", "snare.p6", NODE(s, 1001), 0, PG(s)));
    }
    p = msg("/s_new", "siii", "default", 1001, 0, 0);
    CHECK(rw1(s, &p) && has(&got, "siii", "default", NODE(s, 1001), 0, PG(s)));
    p = msg("/s_new", "siii", "kick", 1001, 0, 0);
    CHECK(rw1(s + 1, &p) && has(&got, "siii", "kick", NODE(s + 1, 1001), 0, PG(s + 1)));

    /* /d_free: only the part's own defs */
    BOTH("/d_free", 53, "sss", "kick", "default", "snare")
    {
        CHECK(rw1(s, &in_));
        CHECK(has(&got, "ss", "kick.p6", "snare.p6"));
        CHECK(last_flags & TUTTI_NS_F_REFUSED);
    }
    p = msg("/d_free", "s", "default");
    CHECK(rw(s, &p) == 0);
    /* the names stay known after /d_free: /s_new then fails as it would solo */
    CHECK(tutti__ns_def_known(ns, s, "kick"));

    /* /d_freeAll: the part's defs only */
    BOTH("/d_freeAll", 8, NULL, 0)
    {
        CHECK(rw1(s, &in_));
        CHECK(form_ ? got.cmd == 53 : !strcmp(got.addr, "/d_free"));
        CHECK(has(&got, "ss", "kick.p6", "snare.p6"));
    }
    p = msg("/d_freeAll", NULL);
    CHECK(rw(s + 1, &p) == 0);

    /* loading again keeps the set as it is */
    p = msg("/d_recv", "b", &file);
    CHECK(rw1(s, &p) && has(&got, "b", &expect));
    CHECK_EQ_I64(tutti__ns_def_count(ns, s), 2);

    /* slot 12: a two-digit suffix */
    static const char *const r12[] = {"kick.p12", "snare.p12"};
    pkt e12 = scgf(2, 2, r12, NULL, 0);
    p = msg("#5", "b", &file);
    CHECK(rw1(12, &p) && got.cmd == 5 && has(&got, "b", &e12));
}

static void test_synthdefs_v1(void)
{
    fresh();
    const uint32_t s = 9;
    static const char *const names[] = {"pad", "lead"};
    static const char *const renamed[] = {"pad.p9", "lead.p9"};
    static const char *const variants[] = {"pad.soft", "pad.loud"};
    static const char *const variants_rw[] = {"pad.soft.p9", "pad.loud.p9"};
    pkt file = scgf(1, 2, names, variants, 2);
    pkt expect = scgf(1, 2, renamed, variants_rw, 2);
    pkt p = msg("/d_recv", "b", &file);
    CHECK(rw1(s, &p));
    CHECK(has(&got, "b", &expect));
    CHECK_EQ_I64(tutti__ns_def_count(ns, s), 4);
    p = msg("/s_new", "siii", "pad.soft", 1000, 0, 0);
    CHECK(rw1(s, &p) && has(&got, "siii", "pad.soft.p9", NODE(s, 1000), 0, PG(s)));
    /* freeing a variant alone: refused (scsynth frees memory its def owns) */
    p = msg("/d_free", "s", "pad.soft");
    CHECK(rw(s, &p) == 0);
    p = msg("/d_freeAll", NULL);
    CHECK(rw1(s, &p) && has(&got, "ss", "pad.p9", "lead.p9"));

    /* version 0: no variants */
    pkt v0 = scgf(0, 2, names, NULL, 0);
    pkt v0e = scgf(0, 2, renamed, NULL, 0);
    p = msg("/d_recv", "b", &v0);
    CHECK(rw1(s, &p) && has(&got, "b", &v0e));

    /* bytes after the last def are kept */
    pkt tail = file;
    put(&tail, "\1\2\3", 3);
    pkt tail_e = expect;
    put(&tail_e, "\1\2\3", 3);
    p = msg("/d_recv", "b", &tail);
    CHECK(rw1(s, &p) && has(&got, "b", &tail_e));
}

static void test_synthdef_limits(void)
{
    fresh();
    const uint32_t s = 11;
    /* a name with no room for the suffix keeps its name */
    char longname[256];
    memset(longname, 'x', 253);
    longname[253] = 0;
    const char *const names[] = {longname, "ok"};
    char renamed_ok[] = "ok.p11";
    const char *const expect_names[] = {longname, renamed_ok};
    pkt file = scgf(2, 2, names, NULL, 0);
    pkt expect = scgf(2, 2, expect_names, NULL, 0);
    pkt p = msg("/d_recv", "b", &file);
    CHECK(rw1(s, &p) && has(&got, "b", &expect));
    CHECK(last_flags & TUTTI_NS_F_NOT_RENAMED);
    CHECK(!tutti__ns_def_known(ns, s, longname));
    /* 252 bytes fit with ".p1" but not with ".p11" */
    longname[252] = 0;
    const char *const n1[] = {longname};
    pkt f1 = scgf(2, 1, n1, NULL, 0);
    p = msg("/d_recv", "b", &f1);
    CHECK(rw1(1, &p) && tutti__ns_def_known(ns, 1, longname));
    CHECK(rw1(11, &p) && !tutti__ns_def_known(ns, 11, longname));
    /* a variant name must stay under 32 bytes */
    const char *const pn[] = {"p"};
    const char *const vlong[] = {"p.abcdefghijklmnopqrstuvwxy"}; /* 27: +".p11" is 31 */
    const char *const vlong_rw[] = {"p.abcdefghijklmnopqrstuvwxy.p11"};
    const char *const pn_rw[] = {"p.p11"};
    pkt fv = scgf(1, 1, pn, vlong, 1), fv_e = scgf(1, 1, pn_rw, vlong_rw, 1);
    p = msg("/d_recv", "b", &fv);
    CHECK(rw1(s, &p) && has(&got, "b", &fv_e));
    /* a variant name scsynth itself refuses (32 bytes or more): left alone */
    const char *const vbad[] = {"p.abcdefghijklmnopqrstuvwxyz0123"};
    pkt fv3 = scgf(1, 1, pn, vbad, 1), fv3_e = scgf(1, 1, pn_rw, vbad, 1);
    p = msg("/d_recv", "b", &fv3);
    CHECK(rw1(s, &p) && has(&got, "b", &fv3_e));
    CHECK(!tutti__ns_def_known(ns, s, vbad[0]));
    const char *const vlonger[] = {"p.abcdefghijklmnopqrstuvwxyz"};
    pkt fv2 = scgf(1, 1, pn, vlonger, 1), fv2_e = scgf(1, 1, pn_rw, vlonger, 1);
    p = msg("/d_recv", "b", &fv2);
    CHECK(rw1(s, &p) && has(&got, "b", &fv2_e));
    CHECK(last_flags & TUTTI_NS_F_NOT_RENAMED);

    /* no defs at all: fine */
    pkt none = {{0}, 0};
    put(&none, "SCgf", 4);
    put_i(&none, 2);
    put_h(&none, 0);
    p = msg("/d_recv", "b", &none);
    CHECK(rw1(s, &p) && has(&got, "b", &none));
    /* a name with a NUL inside: scsynth stops there, so does the renamer */
    const char *const withnul[] = {"abXcd"};
    const char *const withnul_rw[] = {"ab.p11"};
    pkt nul = scgf(2, 1, withnul, NULL, 0), nul_e = scgf(2, 1, withnul_rw, NULL, 0);
    nul.b[10 + 1 + 2] = 0;
    p = msg("/d_recv", "b", &nul);
    CHECK(rw1(s, &p) && has(&got, "b", &nul_e));
    CHECK(tutti__ns_def_known(ns, s, "ab"));

    /* malformed files are refused: truncated, negative counts, other magic,
     * other versions */
    const char *const one[] = {"one"};
    pkt good = scgf(2, 1, one, NULL, 0);
    for (size_t cut = 0; cut < good.n; cut += 3) {
        pkt t = good;
        t.n = cut;
        p = msg("/d_recv", "b", &t);
        CHECK(rw(s, &p) == 0);
    }
    pkt bad = good;
    bad.b[8] = 0xff; /* numDefs -1 (int16) */
    p = msg("/d_recv", "b", &bad);
    CHECK(rw(s, &p) == 0);
    bad = good;
    bad.b[4 + 3] = 3; /* version 3 */
    p = msg("/d_recv", "b", &bad);
    CHECK(rw(s, &p) == 0);
    bad = good;
    bad.b[0] = 'X';
    p = msg("/d_recv", "b", &bad);
    CHECK(rw(s, &p) == 0);
    bad = good;
    bad.b[10 + 4] = 0x80; /* numConstants negative */
    p = msg("/d_recv", "b", &bad);
    CHECK(rw(s, &p) == 0);
    p = msg("/d_recv", "i", 3);
    CHECK(rw(s, &p) == 0);
    CHECK(!tutti__ns_def_known(ns, s, "one"));

    /* the set is full at TUTTI_NS_MAX_DEFS: later names stay as they are */
    fresh();
    char name[32];
    const char *const nm[] = {name};
    for (int k = 0; k < TUTTI_NS_MAX_DEFS; k++) {
        snprintf(name, sizeof name, "temp__%d", k);
        pkt f = scgf(2, 1, nm, NULL, 0);
        p = msg("/d_recv", "b", &f);
        CHECK(tutti__ns_rewrite(ns, 2, p.b, p.n, out.b, sizeof out.b) > 0);
    }
    CHECK_EQ_I64(tutti__ns_def_count(ns, 2), TUTTI_NS_MAX_DEFS);
    snprintf(name, sizeof name, "temp__%d", TUTTI_NS_MAX_DEFS);
    pkt f = scgf(2, 1, nm, NULL, 0);
    p = msg("/d_recv", "b", &f);
    CHECK(rw1(2, &p) && has(&got, "b", &f));
    CHECK(last_flags & TUTTI_NS_F_NOT_RENAMED);
    CHECK_EQ_I64(tutti__ns_def_count(ns, 2), TUTTI_NS_MAX_DEFS);
    p = msg("/s_new", "si", "temp__17", 1000);
    CHECK(rw1(2, &p) && !strcmp(got.s[0], "temp__17.p2"));
    p = msg("/s_new", "si", name, 1000);
    CHECK(rw1(2, &p) && !strcmp(got.s[0], name));
    tutti__ns_forget(ns, 2);
    CHECK_EQ_I64(tutti__ns_def_count(ns, 2), 0);
    p = msg("/s_new", "si", "temp__17", 1000);
    CHECK(rw1(2, &p) && !strcmp(got.s[0], "temp__17"));
}

/* A failed rewrite (EFULL) leaves the def set as it was, so a retry with a
 * bigger buffer, on any server, gives the same bytes. */
static void test_rollback_and_determinism(void)
{
    fresh();
    static const char *const names[] = {"a", "b"};
    pkt file = scgf(2, 2, names, NULL, 0);
    pkt b = bundle();
    pkt play = msg("/s_new", "si", "a", 1000);
    pkt recv = msg("/d_recv", "b", &file);
    add(&b, &play); /* before the /d_recv: "a" is not the part's yet */
    add(&b, &recv);
    add(&b, &play);
    static uint8_t small[4096], full[4096];
    ssize_t n = tutti__ns_rewrite(ns, 4, b.b, b.n, full, sizeof full);
    CHECK(n > 0);
    tutti__ns_forget(ns, 4);
    for (size_t cap = 0; cap < (size_t)n; cap++) {
        CHECK(tutti__ns_rewrite(ns, 4, b.b, b.n, small, cap) == TUTTI_EFULL);
        CHECK_EQ_I64(tutti__ns_def_count(ns, 4), 0);
    }
    CHECK(tutti__ns_rewrite(ns, 4, b.b, b.n, small, sizeof small) == n);
    CHECK(!memcmp(small, full, (size_t)n));
    dec d;
    CHECK(decode(small + 20, be32(small + 16), &d) && !strcmp(d.s[0], "a"));
    size_t off = 16 + 4 + be32(small + 16);
    off += 4 + be32(small + off);
    CHECK(decode(small + off + 4, be32(small + off), &d) && !strcmp(d.s[0], "a.p4"));

    /* a failed rewrite that had added names to a set holding others: the
     * old names stay findable, the new ones are gone */
    tutti__ns_forget(ns, 4);
    static const char *const first[] = {"x1", "x2", "x3"};
    pkt f1 = scgf(2, 3, first, NULL, 0);
    pkt r1 = msg("/d_recv", "b", &f1);
    CHECK(tutti__ns_rewrite(ns, 4, r1.b, r1.n, full, sizeof full) > 0);
    n = tutti__ns_rewrite(ns, 4, recv.b, recv.n, full, sizeof full);
    CHECK(n > 0);
    tutti__ns_forget(ns, 4);
    CHECK(tutti__ns_rewrite(ns, 4, r1.b, r1.n, small, sizeof small) > 0);
    CHECK(tutti__ns_rewrite(ns, 4, recv.b, recv.n, small, (size_t)n - 1) == TUTTI_EFULL);
    CHECK_EQ_I64(tutti__ns_def_count(ns, 4), 3);
    CHECK(tutti__ns_def_known(ns, 4, "x1") && tutti__ns_def_known(ns, 4, "x2") &&
          tutti__ns_def_known(ns, 4, "x3"));
    CHECK(!tutti__ns_def_known(ns, 4, "a") && !tutti__ns_def_known(ns, 4, "b"));
    CHECK(tutti__ns_rewrite(ns, 4, recv.b, recv.n, small, sizeof small) == n);
    CHECK(!memcmp(small, full, (size_t)n));

    /* two servers, the same events: the same bytes */
    tutti__ns *other;
    CHECK(tutti__ns_create(&other, &cfg) == 0);
    tutti__ns_forget(ns, 4);
    pkt seq[] = {recv, play, msg("/n_set", "isi", 1000, "out", 20),
                 msg("/d_freeAll", NULL)};
    for (size_t k = 0; k < 4; k++) {
        static uint8_t x[4096], y[4096];
        ssize_t a1 = tutti__ns_rewrite(ns, 4, seq[k].b, seq[k].n, x, sizeof x);
        ssize_t a2 = tutti__ns_rewrite(other, 4, seq[k].b, seq[k].n, y, sizeof y);
        CHECK(a1 == a2 && a1 > 0 && !memcmp(x, y, (size_t)a1));
    }
    tutti__ns_destroy(other);
}

/* ------------------------------------------------------------ packets */

static void test_packets(void)
{
    fresh();
    const uint32_t s = 1;
    pkt st = msg("/status", NULL), nt = msg("/notify", "i", 1),
        cs = msg("/clearSched", NULL);
    pkt q = msg("/quit", NULL), sy = msg("/sync", "i", 12), er = msg("/error", "i", -1);
    pkt fr = msg("/n_free", "i", 1000), fr_rw = msg("/n_free", "i", NODE(s, 1000));
    pkt dl = msg("/d_load", "s", "/tmp/x.scsyndef");
    /* bare messages that are not SESSION: removed */
    CHECK(rw(s, &st) == 0 && (last_flags & TUTTI_NS_F_LOCAL));
    CHECK(rw(s, &cs) == 0 && (last_flags & TUTTI_NS_F_DROPPED));
    CHECK(rw(s, &dl) == 0 && (last_flags & TUTTI_NS_F_LOCAL_FILE));
    CHECK(rw(s, &q) == 0);
    /* kept when asked: LOCAL unchanged, /d_load with its completion */
    CHECK(rw_keep(s, &st, TUTTI_NS_KEEP(TUTTI_NS_LOCAL)) == (ssize_t)st.n);
    CHECK(!memcmp(out.b, st.b, st.n));
    pkt odd = msg("/cmd", "sh", "someUGenCmd", 5LL); /* a session would refuse h */
    CHECK(rw_keep(s, &odd, TUTTI_NS_KEEP(TUTTI_NS_LOCAL)) == (ssize_t)odd.n);
    CHECK(!memcmp(out.b, odd.b, odd.n));
    pkt dlc = msg("/d_load", "sb", "/tmp/x.scsyndef", &fr);
    CHECK(rw_keep(s, &dlc, TUTTI_NS_KEEP(TUTTI_NS_LOCAL_FILE)) > 0);
    CHECK(decode(out.b, out.n, &got) && has(&got, "sb", "/tmp/x.scsyndef", &fr_rw));
    /* /sync and /error -1 pass unchanged */
    CHECK(rw1(s, &sy) && has(&got, "i", 12));
    CHECK(rw1(s, &er) && has(&got, "i", -1));

    /* a bundle keeps its place and its timetag; nested bundles stay even when
     * emptied */
    pkt inner = bundle();
    add(&inner, &st);
    pkt b = bundle();
    b.b[12] = 0x42; /* timetag */
    add(&b, &nt);
    add(&b, &fr);
    add(&b, &inner);
    add(&b, &cs);
    pkt expect = bundle();
    expect.b[12] = 0x42;
    pkt empty_inner = bundle();
    add(&expect, &fr_rw);
    add(&expect, &empty_inner);
    CHECK(rw(s, &b) == (ssize_t)expect.n);
    CHECK(!memcmp(out.b, expect.b, expect.n));
    CHECK((last_flags & TUTTI_NS_F_LOCAL) && (last_flags & TUTTI_NS_F_DROPPED));
    pkt only = bundle();
    add(&only, &st);
    CHECK(rw(s, &only) == 16);

    /* bad arguments */
    CHECK(tutti__ns_rewrite(ns, 0, fr.b, fr.n, out.b, sizeof out.b) == TUTTI_EINVAL);
    CHECK(tutti__ns_rewrite(ns, 32, fr.b, fr.n, out.b, sizeof out.b) == TUTTI_EINVAL);
    CHECK(tutti__ns_rewrite(ns, 1, fr.b, fr.n - 1, out.b, sizeof out.b) == TUTTI_EPROTO);
    CHECK(tutti__ns_rewrite(NULL, 1, fr.b, fr.n, out.b, sizeof out.b) == TUTTI_EINVAL);

    /* counters */
    tutti__ns_stats a;
    tutti__ns_get_stats(ns, &a);
    CHECK(a.packets > 0 && a.local > 0 && a.dropped > 0 && a.local_file > 0);
}

/* -------------------------------------------------------------- replies */

static ssize_t rp(uint32_t slot, const pkt *in)
{
    static uint8_t small[16384];
    ssize_t n = tutti__ns_reply(ns, slot, in->b, in->n, out.b, sizeof out.b);
    if (n > 0) {
        CHECK(tutti__osc_check(out.b, (size_t)n) == 0);
        CHECK((size_t)n <= in->n);
        for (size_t cap = 0; cap < (size_t)n; cap += 1 + cap / 4)
            CHECK(tutti__ns_reply(ns, slot, in->b, in->n, small, cap) == TUTTI_EFULL);
        out.n = (size_t)n;
        decode(out.b, out.n, &got);
    }
    return n;
}

static void test_replies(void)
{
    fresh();
    const uint32_t s = 3;
    pkt p;
    /* node notifications: the part's own ids; the part group as 0; neighbours
     * outside the part as -1; about another part: dropped */
    static const char *const notes[] = {"/n_go", "/n_end",  "/n_off",
                                        "/n_on", "/n_move", "/n_info"};
    for (size_t k = 0; k < 6; k++) {
        p = msg(notes[k], "iiiii", NODE(s, 1000), PG(s), -1, NODE(s, 1001), 0);
        CHECK(rp(s, &p) > 0 && has(&got, "iiiii", 1000, 0, -1, 1001, 0));
        CHECK(!strcmp(got.addr, notes[k]));
        p = msg(notes[k], "iiiii", NODE(4, 1000), PG(4), -1, -1, 0);
        CHECK(rp(s, &p) == 0);
    }
    /* a group with head and tail; the part group itself */
    p = msg("/n_go", "iiiiiii", NODE(s, 1), PG(s), -1, -1, 1, NODE(s, 1000),
            NODE(s, 1002));
    CHECK(rp(s, &p) > 0 && has(&got, "iiiiiii", 1, 0, -1, -1, 1, 1000, 1002));
    /* the part group made or freed: the session's doing, not the client's */
    p = msg("/n_go", "iiiiiii", PG(s), 0, PG(2), PG(4), 1, -1, -1);
    CHECK(rp(s, &p) == 0);
    p = msg("/n_end", "iiiiiii", PG(s), 0, PG(2), PG(4), 1, -1, -1);
    CHECK(rp(s, &p) == 0);
    /* other news of it (/n_off after /n_run 0 0, /n_info) is the client's root */
    p = msg("/n_off", "iiiiiii", PG(s), 0, PG(2), PG(4), 1, -1, -1);
    CHECK(rp(s, &p) > 0 && has(&got, "iiiiiii", 0, -1, -1, -1, 1, -1, -1));
    /* a server-assigned node: whose is unknown, it passes */
    p = msg("/n_go", "iiiii", -16, PG(s), -1, -1, 0);
    CHECK(rp(s, &p) > 0 && has(&got, "iiiii", -16, 0, -1, -1, 0));
    /* the server's own root group and the solo space are not the part's */
    p = msg("/n_end", "iiiii", 1000, 0, -1, -1, 0);
    CHECK(rp(s, &p) == 0);

    /* /tr and SendReply */
    p = msg("/tr", "iif", NODE(s, 1000), 7, 0.5);
    CHECK(rp(s, &p) > 0 && has(&got, "iif", 1000, 7, 0.5));
    p = msg("/tr", "iif", NODE(5, 1000), 7, 0.5);
    CHECK(rp(s, &p) == 0);
    p = msg("/onsets", "iiff", NODE(s, 1000), -1, 0.5, 0.25);
    CHECK(rp(s, &p) > 0 && has(&got, "iiff", 1000, -1, 0.5, 0.25));
    p = msg("/onsets", "iiff", NODE(9, 1000), -1, 0.5, 0.25);
    CHECK(rp(s, &p) == 0);

    /* plain replies */
    p = msg("/synced", "i", 1000);
    CHECK(rp(s, &p) == (ssize_t)p.n && !memcmp(out.b, p.b, p.n));
    p = msg("/status.reply", "iiiiiffdd", 1, 0, 0, 2, 4, 0.1, 0.2, 48000.0, 48000.0);
    CHECK(rp(s, &p) == (ssize_t)p.n && !memcmp(out.b, p.b, p.n));
    p = msg("/version.reply", "siisss", "scsynth", 3, 13, ".0", "main", "abc");
    CHECK(rp(s, &p) == (ssize_t)p.n && !memcmp(out.b, p.b, p.n));

    /* /done and /fail: buffer numbers of /b_ commands, node ids in text */
    p = msg("/done", "si", "/b_alloc", 3 * 1024 + 1);
    CHECK(rp(s, &p) > 0 && has(&got, "si", "/b_alloc", 1));
    p = msg("/done", "sii", "/notify", 0, 64);
    CHECK(rp(s, &p) > 0 && has(&got, "sii", "/notify", 0, 64));
    p = msg("/done", "s", "/d_recv");
    CHECK(rp(s, &p) > 0 && has(&got, "s", "/d_recv"));
    p = msg("/fail", "ssi", "/b_read", "File '/x' could not be opened", 3 * 1024 + 9);
    CHECK(rp(s, &p) > 0 &&
          has(&got, "ssi", "/b_read", "File '/x' could not be opened", 9));
    char text[64];
    snprintf(text, sizeof text, "Node %d not found", (int)NODE(s, 1000));
    p = msg("/fail", "ss", "/n_free", text);
    CHECK(rp(s, &p) > 0 && has(&got, "ss", "/n_free", "Node 1000 not found"));
    snprintf(text, sizeof text, "target Node %d not found", (int)PG(s));
    p = msg("/fail", "ss", "/s_new", text);
    CHECK(rp(s, &p) > 0 && has(&got, "ss", "/s_new", "target Node 0 not found"));
    snprintf(text, sizeof text, "Group %d not found", (int)NODE(s, 1));
    p = msg("/fail", "ss", "/g_new", text);
    CHECK(rp(s, &p) > 0 && has(&got, "ss", "/g_new", "Group 1 not found"));
    p = msg("/fail", "ss", "/s_new", "SynthDef not found");
    CHECK(rp(s, &p) > 0 && has(&got, "ss", "/s_new", "SynthDef not found"));

    /* buffers and control buses */
    p = msg("/b_info", "iiifiiif", 3 * 1024 + 1, 100, 2, 48000.0, 7, 0, 0, 0.0);
    CHECK(rp(s, &p) > 0 && has(&got, "iiifiiif", 1, 100, 2, 48000.0, 7, 0, 0, 0.0));
    p = msg("/b_set", "iif", 3 * 1024 + 1, 0, 0.5);
    CHECK(rp(s, &p) > 0 && has(&got, "iif", 1, 0, 0.5));
    p = msg("/b_setn", "iiiff", 3 * 1024 + 1, 0, 2, 0.5, 0.5);
    CHECK(rp(s, &p) > 0 && has(&got, "iiiff", 1, 0, 2, 0.5, 0.5));
    p = msg("/c_set", "ifif", 3 * 1024 + 4, 0.5, 4 * 1024 + 4, 0.5);
    CHECK(rp(s, &p) > 0 && has(&got, "ifif", 4, 0.5, 4 * 1024 + 4, 0.5));
    p = msg("/c_setn", "iiffiif", 3 * 1024 + 4, 2, 0.5, 0.25, 3 * 1024 + 9, 1, 1.0);
    CHECK(rp(s, &p) > 0 && has(&got, "iiffiif", 4, 2, 0.5, 0.25, 9, 1, 1.0));

    /* /n_set and /n_setn replies: rule-named values back too */
    p = msg("/n_set", "isfsfif", NODE(s, 1000), "out", 16.0 + 384, "freq", 440.0, 2, 0.5);
    CHECK(rp(s, &p) > 0 &&
          has(&got, "isfsfif", 1000, "out", 16.0, "freq", 440.0, 2, 0.5));
    p = msg("/n_setn", "isiff", NODE(s, 1000), "bufnum", 2, 3.0 * 1024, 3.0 * 1024 + 1);
    CHECK(rp(s, &p) > 0 && has(&got, "isiff", 1000, "bufnum", 2, 0.0, 1.0));

    /* /d_removed */
    p = msg("/d_removed", "s", "kick.p3");
    CHECK(rp(s, &p) > 0 && has(&got, "s", "kick"));
    p = msg("/d_removed", "s", "kick.p4");
    CHECK(rp(s, &p) == 0);
    p = msg("/d_removed", "s", "default");
    CHECK(rp(s, &p) > 0 && has(&got, "s", "default"));
    p = msg("/d_removed", "s", "v1.2.p");
    CHECK(rp(s, &p) > 0 && has(&got, "s", "v1.2.p"));

    /* /g_queryTree.reply without and with controls */
    p = msg("/g_queryTree.reply", "iiiiisiiiii", 0, PG(s), 2, NODE(s, 1000), -1,
            "kick.p3", NODE(s, 1), 1, NODE(s, 1001), -1, 5);
    /* (the last synth's def name is missing: the walk stops, the rest is kept) */
    CHECK(rp(s, &p) > 0);
    CHECK(has(&got, "iiiiisiiiii", 0, 0, 2, 1000, -1, "kick", 1, 1, 1001, -1, 5));
    p = msg("/g_queryTree.reply", "iiiiisisfss", 1, PG(s), 1, NODE(s, 1000), -1,
            "kick.p3", 2, "out", 16.0 + 384, "amp", "c3073");
    CHECK(rp(s, &p) > 0);
    CHECK(
        has(&got, "iiiiisisfss", 1, 0, 1, 1000, -1, "kick", 2, "out", 16.0, "amp", "c1"));
    p = msg("/g_queryTree.reply", "iiiiiiiiis", 0, 0, 2, PG(s), 0, PG(4), 1,
            NODE(4, 1000), -1, "x.p4");
    CHECK(rp(s, &p) > 0);
    CHECK(has(&got, "iiiiiiiiis", 0, 0, 2, 0, 0, PG(4), 1, NODE(4, 1000), -1, "x.p4"));

    /* bundles of replies keep their place; bad input */
    pkt b = bundle();
    pkt mine = msg("/n_go", "iiiii", NODE(s, 5), PG(s), -1, -1, 0);
    pkt theirs = msg("/n_go", "iiiii", NODE(4, 5), PG(4), -1, -1, 0);
    add(&b, &theirs);
    add(&b, &mine);
    CHECK(rp(s, &b) == 16 + 4 + (ssize_t)mine.n);
    CHECK(tutti__ns_reply(ns, 0, mine.b, mine.n, out.b, sizeof out.b) == TUTTI_EINVAL);
    CHECK(tutti__ns_reply(ns, s, mine.b, 3, out.b, sizeof out.b) == TUTTI_EPROTO);
    /* an integer-addressed message passes as it is */
    p = msg("#9", "i", 1);
    CHECK(rp(s, &p) == (ssize_t)p.n);
    /* no tag string at all: the output fits in the input's size */
    p = msg("/failode 872763738 .ot found", NULL);
    CHECK(rp(s, &p) == (ssize_t)p.n && !memcmp(out.b, p.b, p.n));
}

/* Random and mutated packets through both directions: whatever passes the
 * checker must come out checked (under the sanitizers in CI). */
static uint64_t rng = 0x2545f4914f6cdd1du;
static uint64_t next(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

static void test_random(void)
{
    fresh();
    static const char *const names[] = {"kick", "snare"};
    pkt file = scgf(2, 2, names, NULL, 0);
    pkt seeds[6];
    seeds[0] = msg("/s_new", "siiis[ii]sssf", "kick", 1000, 0, 1, "out", 16, 17, "buf",
                   "c3", "amp", 0.5);
    seeds[1] = msg("/d_recv", "bb", &file, &seeds[0]);
    seeds[2] = msg("/b_alloc", "iiib", 3, 512, 1, &seeds[0]);
    seeds[3] = bundle();
    add(&seeds[3], &seeds[0]);
    add(&seeds[3], &seeds[2]);
    seeds[4] = msg("/g_queryTree.reply", "iiiiisisfss", 1, PG(3), 1, NODE(3, 1000), -1,
                   "kick.p3", 2, "out", 400.0, "amp", "c3073");
    seeds[5] = msg("/n_go", "iiiiiii", NODE(3, 1), PG(3), -1, -1, 1, NODE(3, 1000), 5);
    int accepted = 0;
    static uint8_t o[65536];
    for (int i = 0; i < 100000; i++) {
        const pkt *sd = &seeds[next() % 6];
        size_t n = sd->n;
        uint8_t *b = malloc(n);
        memcpy(b, sd->b, n);
        for (int k = 0; k < 1 + (int)(next() % 4); k++)
            b[next() % n] = (uint8_t)next();
        if (tutti__osc_check(b, n) == 0) {
            accepted++;
            uint32_t slot = 1 + (uint32_t)(next() % 31);
            ssize_t r = tutti__ns_rewrite(ns, slot, b, n, o, sizeof o);
            CHECK(r >= 0);
            if (r > 0) CHECK(tutti__osc_check(o, (size_t)r) == 0);
            r = tutti__ns_reply(ns, slot, b, n, o, sizeof o);
            CHECK(r >= 0 && (size_t)r <= n);
            if (r > 0) CHECK(tutti__osc_check(o, (size_t)r) == 0);
        }
        free(b);
    }
    CHECK(accepted > 1000);
}

int main(void)
{
    RUN(test_mapping);
    RUN(test_config);
    RUN(test_part_setup);
    RUN(test_rules);
    RUN(test_classify);
    RUN(test_s_new);
    RUN(test_node_commands);
    RUN(test_buffers);
    RUN(test_control_buses);
    RUN(test_completion);
    RUN(test_synthdefs_v2);
    RUN(test_synthdefs_v1);
    RUN(test_synthdef_limits);
    RUN(test_rollback_and_determinism);
    RUN(test_packets);
    RUN(test_replies);
    RUN(test_random);
    tutti__ns_destroy(ns);
    TEST_END();
}
