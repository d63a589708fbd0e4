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

static bool pinned(uint64_t ctx)
{
    uint64_t kind = ctx & ((uint64_t)15 << 60);
    return kind == TUTTI_PROXY_CTX_HOST || kind == TUTTI_PROXY_CTX_SELF;
}

/* Handles: slot | (generation / 2) << 12, generation / 2 in 1 .. 2^20 - 1. */
static uint32_t handle(uint32_t slot, uint32_t gen)
{
    return slot | (gen / 2) << SLOT_BITS;
}

static uint32_t take(tutti_ctxmap *m, uint32_t s, uint64_t ctx)
{
    uint32_t g = atomic_load(&m->gen[s]);
    uint32_t next = g / 2 + 1 > GEN_MAX ? 1 : g / 2 + 1; /* wraps after 2^20 takeovers */
    atomic_store(&m->gen[s], g | 1);                     /* odd: being written */
    atomic_store(&m->ctx[s], ctx);
    atomic_store(&m->gen[s], next * 2);
    return handle(s, next * 2);
}

uint32_t tutti__ctxmap_put(tutti_ctxmap *m, uint64_t ctx)
{
    if (pinned(ctx)) {
        for (uint32_t s = 0; s < TUTTI_CTXMAP_PINNED; s++) {
            uint32_t g = atomic_load(&m->gen[s]);
            if (!g) return take(m, s, ctx);
            if (atomic_load(&m->ctx[s]) == ctx) return handle(s, g);
        }
        /* More pinned contexts than slots for them: the ring keeps it. */
    }
    uint32_t s = TUTTI_CTXMAP_PINNED + m->next;
    m->next = (m->next + 1) % (TUTTI_CTXMAP_SLOTS - TUTTI_CTXMAP_PINNED);
    return take(m, s, ctx);
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
