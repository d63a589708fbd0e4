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
 * - Fixed size (TUTTI_CTXMAP_SLOTS), no allocation. Each put() takes the next
 *   slot of a ring, so a handle stays good for the next
 *   TUTTI_CTXMAP_SLOTS - TUTTI_CTXMAP_PINNED - 1 (4079) puts, whatever they
 *   are: a reply is lost only when that many packets were injected between
 *   its packet and the reply. (A proxy's packets in flight number tens to
 *   hundreds: replies come back within the server's non-real-time queue.)
 * - The contexts that must stay good for as long as the server runs are
 *   pinned in slots of their own, found again by value: the proxy's own
 *   /notify registration (TUTTI_PROXY_CTX_SELF; its notifications come back
 *   with the address registered then) and the shim's (TUTTI_PROXY_CTX_HOST:
 *   its probe).
 * - A handle whose slot has been taken since is stale: get() says so (the
 *   reply is counted as unroutable, never routed to another client).
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
#define TUTTI_CTXMAP_PINNED 16u

typedef struct tutti_ctxmap tutti_ctxmap;
#ifndef __cplusplus
#include <stdatomic.h>
struct tutti_ctxmap {
    _Atomic uint64_t ctx[TUTTI_CTXMAP_SLOTS];
    _Atomic uint32_t gen[TUTTI_CTXMAP_SLOTS]; /* even: stable; odd: being written */
    uint32_t next;                            /* the ring's next slot (put's thread) */
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
