/*
 * The deterministic ordered merge.
 *
 * Design notes
 * ------------
 * Every event has a key (t, origin, seq); every member delivers the union of all
 * origins' events in increasing key order. An event is delivered only when
 * nothing that sorts before it can still arrive, and that is decided by one
 * promise, the session's *close* C: the hub, which relays every event, closes
 * session time on its own clock and promises that nothing it relays after
 * announcing C has t < C (an event that reaches it too late for that is moved
 * to the first open instant, see hub.c). The hub's stream reaches us in FIFO
 * order, so when C arrives every event with t < C is already here, and the
 * smallest pending key k is safe to deliver iff k.t < C. No member's silence
 * can hold that back: only the hub's.
 *
 * Origins are still known here (the coordinator's ADD and REMOVE commands
 * register and close them): a removed origin's stream ends at its last
 * sequence number, so what comes beyond it is ignored, and the plugin asks
 * whether a removed origin's stream is complete (every event up to its last
 * received) to clear its part after the last one.
 *
 * A member that joined at key `start` delivers only keys > start. Keys at or
 * below the last delivered key can only come from a broken promise; they are
 * counted as violations and dropped, never delivered out of order.
 *
 * Pending events live in a binary min-heap of pointers keyed by tutti_key_cmp,
 * which is total, so the delivered sequence depends only on the set of events,
 * never on arrival order. The heap grows up to a fixed cap (max_pending).
 *
 * Thread rules: one thread at a time. Allocates on push (payload copies), so it
 * is not real-time safe; it runs on the loop thread.
 */
#ifndef TUTTI_ORDER_H
#define TUTTI_ORDER_H

#include "tutti/tutti.h"

typedef struct tutti__pending {
    tutti_key key;
    tutti_time stamped; /* the t its origin stamped (key.t unless the hub moved it) */
    uint32_t kind, len;
    uint8_t data[]; /* payload copy */
} tutti__pending;

typedef struct tutti__origin {
    uint32_t id;
    bool closed;       /* removed: its stream ends at last_seq */
    uint64_t next_seq; /* one past the highest seq received */
    uint64_t last_seq; /* closed: the last seq that counts (0: none) */
    tutti_key rm_key;  /* closed: the REMOVE command's key */
} tutti__origin;

typedef struct tutti__order {
    tutti__pending **heap;
    uint32_t n, cap, max;
    uint64_t bytes; /* the pending events' payload bytes */
    tutti__origin *origins;
    uint32_t norigins, origins_cap;
    tutti_time close; /* the session's close: keys with t < close may go */
    tutti_key start;  /* deliver only keys > start */
    tutti_key last;  /* last delivered */
    bool any_delivered;
    uint64_t violations; /* events that arrived below what was delivered */
    uint64_t stale;      /* events at or below `start`, ignored */
} tutti__order;

int tutti__order_init(tutti__order *o, uint32_t max_pending);
void tutti__order_free(tutti__order *o);
/* Forget everything and start over at `start`. */
void tutti__order_reset(tutti__order *o, tutti_key start);

/* Register an origin (no-op if known); its stream goes on from next_seq. */
int tutti__order_add_origin(tutti__order *o, uint32_t id, uint64_t next_seq);
tutti__origin *tutti__order_origin(tutti__order *o, uint32_t id);
/* Raise the session's close to t (never lowers it). */
void tutti__order_set_close(tutti__order *o, tutti_time t);
/* The origin's stream ends at last_seq (0: it sent nothing that counts). */
void tutti__order_close(tutti__order *o, uint32_t id, uint64_t last_seq, tutti_key rm_key);
/* Drop a closed origin once nothing of it can matter any more. */
void tutti__order_forget(tutti__order *o, uint32_t id);

/*
 * Take an event; `stamped` is the t its origin stamped when the hub moved it
 * to key->t (0: not moved). Returns 0 if kept, 1 if ignored (at or below
 * start or already delivered, or beyond a closed origin's end), TUTTI_EFULL
 * or TUTTI_ENOMEM.
 */
int tutti__order_push(tutti__order *o, const tutti_key *key, tutti_time stamped,
                      uint32_t kind, const uint8_t *data, uint32_t len);

/* How many events of origin `id` are pending (received, not delivered). */
uint32_t tutti__order_pending_of(const tutti__order *o, uint32_t id);

/* The smallest pending event if it may be delivered now, else NULL. */
const tutti__pending *tutti__order_ready(const tutti__order *o);
/* Remove (and free) the event tutti__order_ready returned. */
void tutti__order_pop(tutti__order *o);
/* Every pending key below this may be delivered: (close, 0, 0). */
tutti_key tutti__order_frontier(const tutti__order *o);

/* Chain hashing of the delivered sequence (64-bit FNV-1a; detection of
 * accidental divergence, not an authenticator). */
uint64_t tutti__fnv1a(const void *p, size_t n, uint64_t h);
#define TUTTI__FNV_INIT 0xcbf29ce484222325ull
/* Digest of one event in canonical form (t, origin, seq, kind, payload). */
uint64_t tutti__event_digest(const tutti_key *k, uint32_t kind, const uint8_t *data,
                             uint32_t len);
/* Chain step: hash after delivering an event with digest d. */
static inline uint64_t tutti__chain(uint64_t h, uint64_t d)
{
    return tutti__fnv1a(&d, sizeof d, h);
}

#endif
