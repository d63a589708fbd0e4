/*
 * Tests of the proxy's OSC checker, argument cursor, bundle walker and writer.
 */
#include "osc.h"
#include "test.h"
#include "tutti/tutti.h"

#include <math.h>

typedef struct pkt {
    uint8_t b[512];
    size_t n;
} pkt;

static void put(pkt *p, const void *d, size_t n)
{
    memcpy(p->b + p->n, d, n);
    p->n += n;
}

static void put_str(pkt *p, const char *s)
{
    size_t n = strlen(s) + 1;
    put(p, s, n);
    while (p->n % 4)
        p->b[p->n++] = 0;
}

static void put_i(pkt *p, int32_t v)
{
    uint8_t b[4] = {(uint8_t)((uint32_t)v >> 24), (uint8_t)((uint32_t)v >> 16),
                    (uint8_t)((uint32_t)v >> 8), (uint8_t)v};
    put(p, b, 4);
}

static void put_f(pkt *p, float f)
{
    uint32_t u;
    memcpy(&u, &f, 4);
    put_i(p, (int32_t)u);
}

static pkt msg2(const char *addr, const char *tags)
{
    pkt p = {{0}, 0};
    put_str(&p, addr);
    if (tags) put_str(&p, tags);
    return p;
}

static bool ok(const pkt *p)
{
    return tutti__osc_check(p->b, p->n) == 0;
}

static void test_messages(void)
{
    pkt p = msg2("/status", NULL);
    CHECK(ok(&p));
    p = msg2("/status", ",");
    CHECK(ok(&p));
    p = msg2("/notify", ",ii");
    put_i(&p, 1);
    put_i(&p, 0);
    CHECK(ok(&p));

    /* every tag with data */
    p = msg2("/x", ",ifsbhtdScrmTFNI[]");
    put_i(&p, 1);
    put_f(&p, 2.5f);
    put_str(&p, "abc");
    put_i(&p, 5);
    put(&p, "hello\0\0\0", 8);
    put(&p, "12345678", 8);
    put(&p, "12345678", 8);
    put(&p, "12345678", 8);
    put_str(&p, "sym");
    put_i(&p, 'c');
    put_i(&p, 0x01020304);
    put_i(&p, 0x90000000);
    CHECK(ok(&p));

    /* sclang's integer commands: first byte 0 */
    pkt c = {{0, 0, 0, 9}, 4};
    put_str(&c, ",si");
    put_str(&c, "default");
    put_i(&c, 1000);
    CHECK(ok(&c));
    tutti__osc_msg m;
    CHECK(tutti__osc_msg_parse(c.b, c.n, &m) == 0);
    CHECK(m.addr == NULL && m.cmd == 9);
    pkt neg = {{0, 0, 0, 0x81}, 4};
    CHECK(tutti__osc_msg_parse(neg.b, neg.n, &m) == 0);
    CHECK(m.cmd == -1);
}

static void test_malformed_messages(void)
{
    CHECK(tutti__osc_check(NULL, 0) != 0);
    uint8_t empty[4] = {0};
    CHECK(tutti__osc_check(empty, 0) != 0);

    pkt p = msg2("/status", NULL);
    CHECK(tutti__osc_check(p.b, p.n - 1) != 0);               /* not a multiple of 4 */
    CHECK(tutti__osc_check((const uint8_t *)"/abc", 4) != 0); /* no NUL */

    /* padding after the NUL must be zero, or OSCstrskip and strlen disagree */
    pkt q = {{'/', 'a', 0, 'x'}, 4};
    CHECK(!ok(&q));

    /* arguments without a type tag string */
    p = msg2("/n_free", NULL);
    put_i(&p, 1000);
    CHECK(!ok(&p));

    /* trailing bytes after the last argument */
    p = msg2("/n_free", ",i");
    put_i(&p, 1000);
    put_i(&p, 1001);
    CHECK(!ok(&p));

    /* an argument missing */
    p = msg2("/n_free", ",ii");
    put_i(&p, 1000);
    CHECK(!ok(&p));

    /* an unknown tag */
    p = msg2("/x", ",iz");
    put_i(&p, 1);
    put_i(&p, 2);
    CHECK(!ok(&p));

    /* blobs: negative size, larger than the message */
    p = msg2("/d_recv", ",b");
    put_i(&p, -4);
    CHECK(!ok(&p));
    p = msg2("/d_recv", ",b");
    put_i(&p, 100);
    put_i(&p, 0);
    CHECK(!ok(&p));
    p = msg2("/d_recv", ",b");
    put_i(&p, 3);
    put_i(&p, 0);
    CHECK(ok(&p));

    /* an unterminated string argument */
    p = msg2("/s_new", ",s");
    put(&p, "abcd", 4);
    CHECK(!ok(&p));

    /* an unterminated type tag string */
    p = msg2("/s_new", NULL);
    put(&p, ",sss", 4);
    CHECK(!ok(&p));
}

static pkt bundle(void)
{
    pkt b = {{0}, 0};
    put_str(&b, "#bundle");
    put_i(&b, 0);
    put_i(&b, 1);
    return b;
}

static void put_elem(pkt *b, const pkt *e)
{
    put_i(b, (int32_t)e->n);
    put(b, e->b, e->n);
}

static void test_bundles(void)
{
    pkt b = bundle();
    CHECK(ok(&b)); /* empty */
    pkt s = msg2("/status", ",");
    put_elem(&b, &s);
    pkt n = msg2("/notify", ",i");
    put_i(&n, 1);
    pkt inner = bundle();
    put_elem(&inner, &n);
    put_elem(&inner, &s);
    put_elem(&b, &inner);
    CHECK(ok(&b));

    pkt bad = b;
    CHECK(tutti__osc_check(bad.b, 12) != 0); /* truncated header */
    bad.b[19] = 0;                           /* first element's size: 0 */
    CHECK(!ok(&bad));
    bad = b;
    bad.b[19] = 13; /* not a multiple of 4 */
    CHECK(!ok(&bad));
    bad = b;
    bad.b[16] = 0x7f; /* past the end */
    CHECK(!ok(&bad));
    bad = b;
    bad.b[16] = 0xff; /* negative */
    CHECK(!ok(&bad));
    CHECK(tutti__osc_check(b.b, b.n - 4) != 0); /* cut inside an element */

    /* nesting depth */
    pkt deep = bundle();
    put_elem(&deep, &s);
    for (int d = 0; d < TUTTI_OSC_MAX_DEPTH + 1; d++) {
        pkt outer = bundle();
        put_elem(&outer, &deep);
        deep = outer;
        CHECK(ok(&deep) == (d + 1 < TUTTI_OSC_MAX_DEPTH));
    }
}

static int count_msgs(void *ctx, const uint8_t *p, size_t len)
{
    (void)p, (void)len;
    ++*(int *)ctx;
    return 0;
}

static bool drop_notify(void *ctx, const uint8_t *p, size_t len)
{
    (void)ctx;
    tutti__osc_msg m;
    return !tutti__osc_msg_parse(p, len, &m) && tutti__osc_msg_is(&m, "/notify", 1);
}

static void test_walk_and_filter(void)
{
    pkt s = msg2("/status", ",");
    pkt n = msg2("/notify", ",i");
    put_i(&n, 1);
    pkt inner = bundle();
    put_elem(&inner, &n);
    put_elem(&inner, &s);
    pkt b = bundle();
    put_elem(&b, &n);
    put_elem(&b, &inner);
    put_elem(&b, &s);
    CHECK(ok(&b));

    int count = 0;
    tutti__osc_each_message(b.b, b.n, count_msgs, &count);
    CHECK_EQ_I64(count, 4);

    uint8_t out[512];
    size_t len = tutti__osc_filter_bundle(b.b, b.n, drop_notify, NULL, out);
    CHECK(tutti__osc_check(out, len) == 0);
    count = 0;
    tutti__osc_each_message(out, len, count_msgs, &count);
    CHECK_EQ_I64(count, 2);
    CHECK_EQ_I64(len, b.n - 2 * (4 + n.n));
}

static int32_t geti_of(const pkt *p, int index, int32_t dflt)
{
    tutti__osc_msg m;
    tutti__osc_iter it;
    if (tutti__osc_msg_parse(p->b, p->n, &m)) return 12345;
    tutti__osc_iter_init(&it, &m);
    int32_t v = dflt;
    for (int i = 0; i <= index; i++)
        v = tutti__osc_iter_geti(&it, i == index ? dflt : 0);
    return v;
}

static void test_iter_like_sc_msg_iter(void)
{
    pkt p = msg2("/notify", ",ii");
    put_i(&p, 1);
    put_i(&p, 7);
    CHECK_EQ_I64(geti_of(&p, 0, 0), 1);
    CHECK_EQ_I64(geti_of(&p, 1, -1), 7);
    CHECK_EQ_I64(geti_of(&p, 2, -1), -1); /* nothing left: the default */

    p = msg2("/notify", ",f");
    put_f(&p, 1.9f);
    CHECK_EQ_I64(geti_of(&p, 0, 0), 1); /* truncated */
    p = msg2("/notify", ",f");
    put_f(&p, -2.9f);
    CHECK_EQ_I64(geti_of(&p, 0, 0), -2);
    p = msg2("/notify", ",f");
    put_f(&p, NAN);
    CHECK_EQ_I64(geti_of(&p, 0, 0), INT32_MIN);
    p = msg2("/notify", ",f");
    put_f(&p, 3e9f);
    CHECK_EQ_I64(geti_of(&p, 0, 0), INT32_MIN);

    /* a string is skipped and gives the default, the next int follows */
    p = msg2("/notify", ",si");
    put_str(&p, "one");
    put_i(&p, 5);
    CHECK_EQ_I64(geti_of(&p, 0, 42), 42);
    CHECK_EQ_I64(geti_of(&p, 1, -1), 5);

    /* a tag geti does not know is counted but not consumed */
    p = msg2("/notify", ",hi");
    put(&p, "\0\0\0\0\0\0\0\x09", 8);
    put_i(&p, 3);
    CHECK_EQ_I64(geti_of(&p, 0, 42), 42);
    CHECK_EQ_I64(geti_of(&p, 1, -1), 0); /* reads the first word of the h */

    /* no arguments: onoff 0 */
    p = msg2("/notify", NULL);
    CHECK_EQ_I64(geti_of(&p, 0, 0), 0);

    tutti__osc_msg m;
    tutti__osc_iter it;
    p = msg2("/cmd", ",ss");
    put_str(&p, "tutti");
    put_str(&p, "status");
    tutti__osc_msg_parse(p.b, p.n, &m);
    tutti__osc_iter_init(&it, &m);
    CHECK(!strcmp(tutti__osc_iter_gets(&it, NULL), "tutti"));
    CHECK(!strcmp(tutti__osc_iter_gets(&it, NULL), "status"));
    CHECK(tutti__osc_iter_gets(&it, NULL) == NULL);
}

static void test_writer(void)
{
    uint8_t b[128];
    size_t n = tutti__osc_write(b, sizeof b, "/done", "sii", "/notify", 3, 64);
    CHECK(n > 0 && tutti__osc_check(b, n) == 0);
    tutti__osc_msg m;
    tutti__osc_iter it;
    tutti__osc_msg_parse(b, n, &m);
    CHECK(!strcmp(m.addr, "/done") && !strcmp(m.tags, "sii"));
    tutti__osc_iter_init(&it, &m);
    CHECK(!strcmp(tutti__osc_iter_gets(&it, NULL), "/notify"));
    CHECK_EQ_I64(tutti__osc_iter_geti(&it, -1), 3);
    CHECK_EQ_I64(tutti__osc_iter_geti(&it, -1), 64);

    n = tutti__osc_write(b, sizeof b, "/status", "");
    CHECK_EQ_I64(n, 12);
    CHECK(tutti__osc_write(b, 8, "/status", "") == 0);
    CHECK(tutti__osc_write(b, sizeof b, "/x", "q", 1) == 0);
    n = tutti__osc_write(b, sizeof b, "/f", "f", 0.5);
    CHECK(n == 12 && tutti__osc_check(b, n) == 0);
}

/* Random and mutated packets: the checker must never read outside them (run
 * under AddressSanitizer in the sanitizer builds) and whatever it accepts the
 * walker and cursor must handle. */
static uint64_t rng = 0x9e3779b97f4a7c15u;
static uint64_t next(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

static void test_random(void)
{
    pkt seeds[3];
    seeds[0] = msg2("/s_new", ",siiisf");
    put_str(&seeds[0], "sine");
    put_i(&seeds[0], 1000);
    put_i(&seeds[0], 0);
    put_i(&seeds[0], 1);
    put_str(&seeds[0], "freq");
    put_f(&seeds[0], 440);
    seeds[1] = bundle();
    put_elem(&seeds[1], &seeds[0]);
    seeds[2] = bundle();
    put_elem(&seeds[2], &seeds[1]);
    int accepted = 0;
    for (int i = 0; i < 200000; i++) {
        size_t n = 4 * (1 + next() % 40);
        uint8_t *b = malloc(n); /* exact size, so ASan sees any over-read */
        if (i % 2) {
            for (size_t k = 0; k < n; k++)
                b[k] = (uint8_t)next();
        } else {
            const pkt *s = &seeds[next() % 3];
            n = s->n < n ? s->n : n;
            memcpy(b, s->b, n);
            for (int k = 0; k < 3; k++)
                b[next() % n] = (uint8_t)next();
        }
        if (tutti__osc_check(b, n) == 0) {
            accepted++;
            int count = 0;
            tutti__osc_each_message(b, n, count_msgs, &count);
            if (!tutti__osc_is_bundle(b, n)) {
                tutti__osc_msg m;
                tutti__osc_iter it;
                CHECK(tutti__osc_msg_parse(b, n, &m) == 0);
                tutti__osc_iter_init(&it, &m);
                for (int k = 0; k < 12; k++) {
                    tutti__osc_iter_geti(&it, 0);
                    tutti__osc_iter_gets(&it, NULL);
                }
            }
        }
        free(b);
    }
    CHECK(accepted > 0);
}

int main(void)
{
    RUN(test_messages);
    RUN(test_malformed_messages);
    RUN(test_bundles);
    RUN(test_walk_and_filter);
    RUN(test_iter_like_sc_msg_iter);
    RUN(test_writer);
    RUN(test_random);
    TEST_END();
}
