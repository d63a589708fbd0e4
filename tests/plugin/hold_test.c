/*
 * Tests of the hold (hold.h): the order bundles are released in (time, then
 * arrival), never before their release time, one due later never holding
 * back one before it, the byte bound, and everything released at once when
 * the hold is destroyed. Timing checks only say "not before" and "within
 * seconds": the machine may be loaded.
 */
#include "hold.h"
#include "test.h"
#include "tutti/tutti.h"

#include <pthread.h>
#include <string.h>
#include <time.h>

#define MAXREL 64

static struct {
    pthread_mutex_t mu;
    int n;
    uint8_t tag[MAXREL];
    tutti_time at[MAXREL], when[MAXREL];
    uint64_t ctx[MAXREL];
} R = {.mu = PTHREAD_MUTEX_INITIALIZER};

static tutti_time wall(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return ((tutti_time)ts.tv_sec + 2208988800LL) * TUTTI_S + ts.tv_nsec;
}

static void release(void *arg, const uint8_t *p, size_t len, tutti_time at, uint64_t ctx)
{
    (void)arg;
    tutti_time now = wall();
    pthread_mutex_lock(&R.mu);
    if (R.n < MAXREL && len == 1) {
        R.tag[R.n] = p[0];
        R.at[R.n] = at;
        R.when[R.n] = now;
        R.ctx[R.n] = ctx;
        R.n++;
    }
    pthread_mutex_unlock(&R.mu);
}

static void clear(void)
{
    pthread_mutex_lock(&R.mu);
    R.n = 0;
    pthread_mutex_unlock(&R.mu);
}

/* Waits (at most 5 s) until n have been released; how many were. */
static int wait_for(int n)
{
    for (int i = 0; i < 500; i++) {
        pthread_mutex_lock(&R.mu);
        int got = R.n;
        pthread_mutex_unlock(&R.mu);
        if (got >= n) return got;
        struct timespec ts = {0, 10 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    return R.n;
}

static int push(tutti__hold *h, uint8_t tag, tutti_time at, tutti_time release_at)
{
    return tutti__hold_push(h, &tag, 1, at, release_at, 100 + tag);
}

static void test_order(void)
{
    clear();
    tutti__hold *h;
    CHECK(tutti__hold_create(&h, release, NULL, 1 << 20) == 0);
    tutti_time now = wall(), rel = now + 30 * TUTTI_MS;
    /* times out of order, two ties: released by time, ties as they came */
    CHECK(push(h, 1, now + 300 * TUTTI_MS, rel) == 0);
    CHECK(push(h, 2, now + 100 * TUTTI_MS, rel) == 0);
    CHECK(push(h, 3, now + 300 * TUTTI_MS, rel) == 0);
    CHECK(push(h, 4, now + 200 * TUTTI_MS, rel) == 0);
    CHECK(push(h, 5, now + 100 * TUTTI_MS, rel) == 0);
    CHECK(tutti__hold_count(h) == 5);
    CHECK(wait_for(5) == 5);
    static const uint8_t want[5] = {2, 5, 4, 1, 3};
    for (int i = 0; i < 5; i++) {
        CHECK(R.tag[i] == want[i]);
        CHECK(R.ctx[i] == 100u + want[i]);
        CHECK(R.when[i] >= rel); /* never before its release time */
    }
    CHECK(R.at[0] == now + 100 * TUTTI_MS);
    CHECK(tutti__hold_count(h) == 0);
    tutti__hold_destroy(h);
}

static void test_gate(void)
{
    clear();
    tutti__hold *h;
    CHECK(tutti__hold_create(&h, release, NULL, 1 << 20) == 0);
    tutti_time now = wall();
    /* due in 60 s, then one after it in time due at once: the first goes
     * with it, before it */
    CHECK(push(h, 1, now + 61 * TUTTI_S, now + 60 * TUTTI_S) == 0);
    CHECK(push(h, 2, now + 62 * TUTTI_S, now) == 0);
    CHECK(wait_for(2) == 2);
    CHECK(R.tag[0] == 1 && R.tag[1] == 2);
    CHECK(R.when[1] - now < 5 * TUTTI_S);
    /* one before it in time with a later release does not hold it back */
    clear();
    now = wall();
    CHECK(push(h, 3, now + 61 * TUTTI_S, now + 20 * TUTTI_MS) == 0);
    CHECK(push(h, 4, now + 62 * TUTTI_S, now + 60 * TUTTI_S) == 0);
    CHECK(wait_for(1) == 1);
    CHECK(R.tag[0] == 3);
    CHECK(tutti__hold_count(h) == 1);
    /* destroying releases the rest at once */
    tutti__hold_destroy(h);
    CHECK(R.n == 2 && R.tag[1] == 4);
    CHECK(R.when[1] - now < 5 * TUTTI_S);
}

static void test_bound(void)
{
    clear();
    tutti__hold *h;
    CHECK(tutti__hold_create(&h, release, NULL, 3) == 0);
    tutti_time far = wall() + 60 * TUTTI_S;
    CHECK(push(h, 1, far, far) == 0);
    CHECK(push(h, 2, far, far) == 0);
    CHECK(push(h, 3, far, far) == 0);
    CHECK(push(h, 4, far, far) == TUTTI_EFULL);
    CHECK(tutti__hold_count(h) == 3);
    tutti__hold_destroy(h);
    CHECK(R.n == 3);
    CHECK(R.tag[0] == 1 && R.tag[1] == 2 && R.tag[2] == 3);
}

int main(void)
{
    RUN(test_order);
    RUN(test_gate);
    RUN(test_bound);
    TEST_END();
}
