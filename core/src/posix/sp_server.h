/*
 * An SP pair1 server on libuv TCP (see sp_server.c for why the hub does not
 * use NNG's polyamorous socket). Loop thread only; nothing here locks.
 */
#ifndef TUTTI_SP_SERVER_H
#define TUTTI_SP_SERVER_H

#include "tutti/tutti.h"

#include <uv.h>

#define TUTTI__SP_PAIR1 0x0011 /* the SP protocol number of pair v1 (NNG's pair1) */
#define TUTTI__SP_PAIR0 0x0010 /* pair v0: nanomsg's pair, NNG's pair0 */

typedef struct tutti__sp_server tutti__sp_server;

/* Called on the loop thread. A connection is "up" once both SP headers are
 * exchanged (the server answers the peer's header with its own: pair1, or
 * pair0 to a pair0 peer when the server speaks pair1); `down` follows `up` exactly once, and never during close. */
typedef struct tutti__sp_callbacks {
    void *ctx;
    void (*up)(void *ctx, uint32_t id);
    void (*down)(void *ctx, uint32_t id);
    void (*message)(void *ctx, uint32_t id, const uint8_t *buf, size_t len);
    void (*refused)(void *ctx); /* a connection broke the SP/pair1 rules */
    void (*log)(void *ctx, int level, const char *msg);
} tutti__sp_callbacks;

/*
 * Listen on "tcp://HOST:PORT" (port 0: any free port). `max_msg` bounds a
 * message (a pair1 hop count included); `max_queue` bounds the bytes waiting to be
 * written to one connection before it is cut. The URL actually bound is
 * written to `bound`. Returns 0, TUTTI_EINVAL (bad URL or host),
 * TUTTI_ETRANSPORT (address in use, not allowed) or TUTTI_ENOMEM. On failure
 * the loop must still be run once before it is closed.
 */
int tutti__sp_listen(tutti__sp_server **out, uv_loop_t *loop, const char *url,
                     uint16_t proto, size_t max_msg, size_t max_queue,
                     const tutti__sp_callbacks *cb, char *bound, size_t bound_cap);
/* Queue one message for connection `id`; it goes out with the next
 * tutti__sp_flush. TUTTI_ECLOSED if the connection is not up, TUTTI_EFULL if
 * it was cut for not reading, TUTTI_ENOMEM. */
int tutti__sp_send(tutti__sp_server *s, uint32_t id, const uint8_t *buf, size_t len);
/* Hand every connection's queued messages to the kernel, one write each. Call
 * once per loop iteration, after the work that sends. */
void tutti__sp_flush(tutti__sp_server *s);
/* The owner vouches for connection `id` (it proved a credential): the hello
 * deadline and the cap on unauthenticated connections no longer apply. */
void tutti__sp_set_authed(tutti__sp_server *s, uint32_t id);
/* Stop reading connection `id` and close it once what is queued for it has
 * been written (a REJECT before the end). */
void tutti__sp_close_after_flush(tutti__sp_server *s, uint32_t id);
/* Limits (0: none): connections one address may hold, connections without
 * a credential at once (a new one closes the oldest), and how long a
 * connection may stay without one (ms). */
void tutti__sp_set_limits(tutti__sp_server *s, uint32_t per_addr, uint32_t max_unauth,
                          uint64_t deadline_ms);
typedef struct tutti__sp_stats {
    uint64_t hello_timeouts; /* closed at the hello deadline */
    uint64_t addr_refused;   /* refused: too many from one address (or in all) */
    uint64_t evicted;        /* closed to make room for a newer unauthenticated one */
} tutti__sp_stats;
void tutti__sp_get_stats(const tutti__sp_server *s, tutti__sp_stats *st);
/* Connections that are up. */
uint32_t tutti__sp_connections(const tutti__sp_server *s);
/* Close every connection and the listener; the memory is released by the
 * close callbacks, so the loop must run until it has no handles left. */
void tutti__sp_close(tutti__sp_server *s);

#endif
