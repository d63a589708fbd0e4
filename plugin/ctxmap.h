/*
 * Reply contexts on a 32-bit server (the Bela's scsynth).
 *
 * The proxy names the client of every packet it injects with a 64-bit
 * context (proxy.h), and scsynth hands back, with each reply, the one
 * pointer-sized word it was given. On a 64-bit server the context is that
 * word. On a 32-bit server it does not fit, so the shim keeps the contexts in
 * this table and gives scsynth a 32-bit handle: a slot number and the slot's
 * generation.
 *
 * Design notes
 * ------------
 * - Fixed size (TUTTI_CTXMAP_SLOTS), no allocation. A context has two
 *   candidate slots (two hashes); put() reuses the slot already holding it,
 *   else takes the candidate used least recently. Contexts of kind
 *   TUTTI_PROXY_CTX_HOST (the shim's own: its probe, the proxy's /notify
 *   registration, whose notifications come back for as long as the server
 *   runs) are pinned: never evicted.
 * - A handle whose slot has been taken over since is stale: get() says so
 *   (the reply is counted as unroutable, never routed to the wrong client).
 *   Two contexts in use at once share a slot only if both candidates of the
 *   newer are held by newer ones: with 4096 slots and a proxy's clients and
 *   in-flight packets (tens to hundreds), a late reply is lost only after
 *   thousands of other contexts came between.
 * - Threads: put() on one thread (the proxy's loop, which injects); get()
 *   on any (scsynth's non-real-time thread, which replies). A slot is a
 *   small seqlock: the generation is made odd while the context is written.
 *   Both are real-time safe (atomics only).
 */
#ifndef TUTTI_PLUGIN_CTXMAP_H
#define TUTTI_PLUGIN_CTXMAP_H

#include <stdbool.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define TUTTI_CTXMAP_SLOTS 4096u /* a power of two; the handle's low 12 bits */

typedef struct tutti_ctxmap tutti_ctxmap;
#ifndef __cplusplus
#include <stdatomic.h>
struct tutti_ctxmap {
    _Atomic uint64_t ctx[TUTTI_CTXMAP_SLOTS];
    _Atomic uint32_t gen[TUTTI_CTXMAP_SLOTS]; /* even: stable; odd: being written */
    uint64_t used[TUTTI_CTXMAP_SLOTS]; /* put() count at the last use (put's thread) */
    uint64_t puts;
};
#endif

/* The process's table (the shim's). A zeroed table is empty and ready. */
tutti_ctxmap *tutti__ctxmap_shared(void);
/* The handle for ctx (never 0). */
uint32_t tutti__ctxmap_put(tutti_ctxmap *m, uint64_t ctx);
/* The context of a handle; false if the handle is stale or was never given. */
bool tutti__ctxmap_get(tutti_ctxmap *m, uint32_t handle, uint64_t *ctx);

#ifdef __cplusplus
}
#endif
#endif
