/* Reply contexts on a 32-bit server; see ctxmap.h. */
#include "ctxmap.h"

#include "proxy.h"

#define MASK (TUTTI_CTXMAP_SLOTS - 1)
#define SLOT_BITS 12
#define GEN_MAX ((1u << (32 - SLOT_BITS)) - 1)

tutti_ctxmap *tutti__ctxmap_shared(void)
{
    static tutti_ctxmap shared;
    return &shared;
}

static uint64_t mix(uint64_t x)
{
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdull;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ull;
    return x ^ (x >> 33);
}

static bool pinned(uint64_t ctx)
{
    return (ctx & ((uint64_t)15 << 60)) == TUTTI_PROXY_CTX_HOST;
}

/* Handles: slot | (generation / 2) << 12, generation / 2 in 1 .. 2^20 - 1. */
static uint32_t handle(uint32_t slot, uint32_t gen)
{
    return slot | (gen / 2) << SLOT_BITS;
}

uint32_t tutti__ctxmap_put(tutti_ctxmap *m, uint64_t ctx)
{
    uint64_t h = mix(ctx);
    uint32_t a = (uint32_t)h & MASK, b = (uint32_t)(h >> 32) & MASK;
    m->puts++;
    for (int k = 0; k < 2; k++) {
        uint32_t s = k ? b : a;
        uint32_t g = atomic_load(&m->gen[s]);
        if (g && atomic_load(&m->ctx[s]) == ctx) {
            m->used[s] = m->puts;
            return handle(s, g);
        }
    }
    uint32_t ga = atomic_load(&m->gen[a]), gb = atomic_load(&m->gen[b]);
    bool pa = ga && pinned(atomic_load(&m->ctx[a]));
    bool pb = gb && pinned(atomic_load(&m->ctx[b]));
    uint32_t s;
    if (pa != pb)
        s = pa ? b : a;
    else
        s = m->used[a] <= m->used[b] ? a : b; /* both pinned: the table is abused */
    uint32_t g = atomic_load(&m->gen[s]);
    uint32_t next = g / 2 + 1 > GEN_MAX ? 1 : g / 2 + 1; /* wraps after 2^20 takeovers */
    atomic_store(&m->gen[s], g | 1);                     /* odd: being written */
    atomic_store(&m->ctx[s], ctx);
    atomic_store(&m->gen[s], next * 2);
    m->used[s] = m->puts;
    return handle(s, next * 2);
}

bool tutti__ctxmap_get(tutti_ctxmap *m, uint32_t h, uint64_t *ctx)
{
    uint32_t s = h & MASK, want = (h >> SLOT_BITS) * 2;
    if (!want) return false;
    uint32_t g1 = atomic_load(&m->gen[s]);
    uint64_t c = atomic_load(&m->ctx[s]);
    uint32_t g2 = atomic_load(&m->gen[s]);
    if (g1 != want || g2 != want) return false;
    *ctx = c;
    return true;
}
