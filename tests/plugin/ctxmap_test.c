/*
 * Tests of the reply-context table a 32-bit server uses (ctxmap.h): round
 * trips, a handle good for the ring's length, stale handles refused (never
 * another client's context), the proxy's and the shim's own contexts pinned
 * and found again by value, and a writer and a
 * reader thread racing (ThreadSanitizer in the sanitizer builds).
 */
#include "ctxmap.h"
#include "proxy.h"
#include "test.h"

#include <pthread.h>
#include <stdatomic.h>

static tutti_ctxmap map; /* zeroed: empty */

static void round_trips(void)
{
    memset(&map, 0, sizeof map);
    for (uint64_t i = 0; i < 1000; i++) {
        uint64_t ctx = (i << 20) | 0x123456789ull, back = 0;
        uint32_t h = tutti__ctxmap_put(&map, ctx);
        CHECK(h != 0);
        CHECK(tutti__ctxmap_get(&map, h, &back) && back == ctx);
    }
    uint64_t x;
    CHECK(!tutti__ctxmap_get(&map, 0, &x));
    CHECK(!tutti__ctxmap_get(&map, 12345u << 12, &x)); /* never given */
}

/* After many other contexts a handle may go stale; a stale handle is refused,
 * and a handle that still resolves gives back its own context. */
static void stale_never_misroutes(void)
{
    memset(&map, 0, sizeof map);
    enum { N = 50000 };
    static uint32_t h[N];
    for (uint32_t i = 0; i < N; i++)
        h[i] = tutti__ctxmap_put(&map, 0x1000000ull + i);
    uint32_t live = 0, wrong = 0;
    for (uint32_t i = 0; i < N; i++) {
        uint64_t c;
        if (!tutti__ctxmap_get(&map, h[i], &c)) continue;
        live++;
        if (c != 0x1000000ull + i) wrong++;
    }
    fprintf(stderr, "%u of %u handles still live, %u wrong\n", live, (unsigned)N, wrong);
    CHECK(wrong == 0);
    /* Exactly the ring's worth of the most recent are still there. */
    uint32_t ring = TUTTI_CTXMAP_SLOTS - TUTTI_CTXMAP_PINNED;
    CHECK(live == ring);
    for (uint32_t i = N - ring; i < N; i++) {
        uint64_t c;
        CHECK(tutti__ctxmap_get(&map, h[i], &c));
    }
}

static void host_contexts_pinned(void)
{
    memset(&map, 0, sizeof map);
    uint64_t probe = TUTTI_PROXY_CTX_HOST | 0x7475747469ull, c = 0;
    uint32_t hp = tutti__ctxmap_put(&map, probe);
    for (uint32_t i = 0; i < 200000; i++)
        tutti__ctxmap_put(&map, 0x2000000ull + i);
    CHECK(tutti__ctxmap_get(&map, hp, &c) && c == probe);
    CHECK(tutti__ctxmap_put(&map, probe) == hp);
    uint64_t self = TUTTI_PROXY_CTX_SELF;
    uint32_t hs = tutti__ctxmap_put(&map, self);
    for (uint32_t i = 0; i < 200000; i++)
        tutti__ctxmap_put(&map, 0x3000000ull + i);
    CHECK(tutti__ctxmap_get(&map, hs, &c) && c == self);
    CHECK(tutti__ctxmap_get(&map, hp, &c) && c == probe);
}

static atomic_uint race_handles[64];
static atomic_bool race_done;

static void *reader(void *arg)
{
    (void)arg;
    uint64_t bad = 0;
    while (!atomic_load(&race_done)) {
        for (int i = 0; i < 64; i++) {
            uint32_t h = atomic_load(&race_handles[i]);
            uint64_t c;
            /* Contexts are i + 64 k: a resolved handle must name a context of its row. */
            if (h && tutti__ctxmap_get(&map, h, &c) && c % 64 != (uint64_t)i) bad++;
        }
    }
    return (void *)(uintptr_t)bad;
}

static void writer_and_reader_race(void)
{
    memset(&map, 0, sizeof map);
    pthread_t t;
    CHECK(pthread_create(&t, NULL, reader, NULL) == 0);
    for (uint64_t k = 0; k < 20000; k++)
        for (int i = 0; i < 64; i++)
            atomic_store(&race_handles[i], tutti__ctxmap_put(&map, (uint64_t)i + 64 * k));
    atomic_store(&race_done, true);
    void *bad;
    pthread_join(t, &bad);
    CHECK((uintptr_t)bad == 0);
}

int main(void)
{
    RUN(round_trips);
    RUN(stale_never_misroutes);
    RUN(host_contexts_pinned);
    RUN(writer_and_reader_race);
    TEST_END();
}
