/*
 * Tests of the reply ring: order, wrapping, full and oversized records, and a
 * producer and a consumer thread racing (run under ThreadSanitizer in the
 * sanitizer builds).
 */
#include "ring.h"
#include "test.h"
#include "tutti/tutti.h"

#include <pthread.h>
#include <sched.h>

static void test_basic(void)
{
    static uint8_t buf[256];
    tutti__ring r;
    tutti__ring_init(&r, buf, sizeof buf);
    uint64_t tag;
    size_t len;
    CHECK(tutti__ring_peek(&r, &tag, &len) == NULL);
    CHECK(tutti__ring_push(&r, 7, "abc", 3) == 0);
    CHECK(tutti__ring_push(&r, 8, "", 0) == 0);
    const uint8_t *p = tutti__ring_peek(&r, &tag, &len);
    CHECK(p && tag == 7 && len == 3 && !memcmp(p, "abc", 3));
    tutti__ring_pop(&r);
    p = tutti__ring_peek(&r, &tag, &len);
    CHECK(p && tag == 8 && len == 0);
    tutti__ring_pop(&r);
    CHECK(tutti__ring_peek(&r, &tag, &len) == NULL);

    CHECK(tutti__ring_max_record(&r) == 112);
    uint8_t big[200] = {0};
    CHECK(tutti__ring_push(&r, 1, big, 113) == TUTTI_EINVAL);
}

static void test_full_and_wrap(void)
{
    static uint8_t buf[256];
    tutti__ring r;
    tutti__ring_init(&r, buf, sizeof buf);
    uint8_t d[112];
    /* 64-byte records: four fill the ring */
    for (int i = 0; i < 4; i++)
        CHECK(tutti__ring_push(&r, (uint64_t)i, d, 48) == 0);
    CHECK(tutti__ring_push(&r, 9, d, 1) == TUTTI_EFULL);

    /* Against a model FIFO, with sizes that force skips at the end of the
     * buffer: every record comes out once, whole, in order. */
    tutti__ring_init(&r, buf, sizeof buf);
    struct {
        uint64_t tag;
        size_t len;
    } model[64];
    size_t head = 0, tail = 0;
    uint64_t next_tag = 0, x = 12345;
    int full = 0;
    for (int step = 0; step < 100000; step++) {
        x = x * 6364136223846793005u + 1442695040888963407u;
        if ((x >> 33) % 3) {
            size_t len = (size_t)((x >> 40) % 113);
            for (size_t k = 0; k < len; k++)
                d[k] = (uint8_t)(next_tag * 31 + k);
            int rc = tutti__ring_push(&r, next_tag, d, len);
            if (rc == 0) {
                model[head % 64].tag = next_tag;
                model[head % 64].len = len;
                head++;
                next_tag++;
            } else {
                CHECK(rc == TUTTI_EFULL);
                full++;
            }
        } else {
            uint64_t tag;
            size_t len;
            const uint8_t *p = tutti__ring_peek(&r, &tag, &len);
            CHECK((p != NULL) == (head != tail));
            if (!p) continue;
            CHECK(tag == model[tail % 64].tag && len == model[tail % 64].len);
            for (size_t k = 0; k < len; k++)
                if (p[k] != (uint8_t)(tag * 31 + k)) {
                    CHECK(!"record bytes differ");
                    break;
                }
            tutti__ring_pop(&r);
            tail++;
        }
    }
    CHECK(full > 0);
    CHECK(next_tag > 1000);
}

#define N_STRESS 2000000

static uint8_t stress_buf[1 << 14];
static tutti__ring stress;

static void *producer(void *arg)
{
    (void)arg;
    uint8_t d[300];
    for (uint64_t i = 0; i < N_STRESS;) {
        size_t len = (size_t)(i * 7919 % sizeof d);
        for (size_t k = 0; k < len; k++)
            d[k] = (uint8_t)(i + k);
        if (tutti__ring_push(&stress, i, d, len) == 0)
            i++;
        else
            sched_yield();
    }
    return NULL;
}

static void test_threads(void)
{
    tutti__ring_init(&stress, stress_buf, sizeof stress_buf);
    pthread_t t;
    pthread_create(&t, NULL, producer, NULL);
    uint64_t expect = 0;
    int bad = 0;
    while (expect < N_STRESS && bad < 10) {
        uint64_t tag;
        size_t len;
        const uint8_t *p = tutti__ring_peek(&stress, &tag, &len);
        if (!p) {
            sched_yield();
            continue;
        }
        if (tag != expect || len != (size_t)(expect * 7919 % 300)) bad++;
        for (size_t k = 0; k < len; k++)
            if (p[k] != (uint8_t)(expect + k)) {
                bad++;
                break;
            }
        tutti__ring_pop(&stress);
        expect++;
    }
    pthread_join(t, NULL);
    CHECK(bad == 0);
    CHECK(expect == N_STRESS);
}

int main(void)
{
    RUN(test_basic);
    RUN(test_full_and_wrap);
    RUN(test_threads);
    TEST_END();
}
