/*
 * The proxy: the port clients use instead of scsynth's own.
 *
 * Design notes
 * ------------
 * - One non-real-time thread runs a libuv loop that owns every socket of the
 *   proxy: a UDP socket and a TCP listener (scsynth's framing: a 4-byte
 *   big-endian length before each packet) on the same port of 127.0.0.1.
 *   Remote members reach a server through the session transport, never
 *   through this port.
 * - Solo (no session): every packet a client sends is checked (osc.h) and
 *   handed to the server unchanged, in arrival order, with a 64-bit context
 *   that names the client. The server hands the context back with every reply
 *   it sends, on its non-real-time thread; tutti__proxy_reply() puts the reply
 *   in a lock-free ring and wakes the loop, which sends it to that client.
 *   Malformed packets are dropped and counted; the server never sees them.
 * - Contexts carry the client itself, not a pointer: a UDP client is its
 *   IPv4 address and port (so a reply can reach it however late, as with
 *   scsynth's own port); a TCP client is a connection slot and a generation
 *   number (a reply for a closed connection is dropped, never sent to the
 *   connection that took its slot).
 * - /notify: scsynth tells registered clients apart by the address a packet
 *   came from, but every packet injected in-process carries the same empty
 *   address (and, in 3.13, two uninitialised fields). So scsynth cannot keep
 *   one registration per proxied client. The proxy keeps them instead, as
 *   scsynth would: it registers itself once (its own /notify 1, kept until
 *   unload, so scsynth never holds two registrations for it), answers its
 *   clients' /notify with the client ids and messages scsynth gives, from a
 *   pool that mirrors scsynth's, and passes every notification it receives on
 *   to each client registered with it. So that a client's /notify takes
 *   effect at the same point of the reply stream as it would in scsynth, the
 *   proxy replaces it with a /status marker and acts when the marker's reply
 *   comes back. A /notify inside a bundle takes effect when the bundle
 *   arrives, before the bundle's other messages.
 * - `/cmd tutti <command>` from a client is the proxy's own session control
 *   and never reaches the server: `join HUB SESSION NAME [JOURNAL]`,
 *   `leave`, and `status` (answered with /tutti/status key/value pairs).
 *   With TUTTI_HUB and TUTTI_NAME set (TUTTI_SESSION, TUTTI_JOURNAL
 *   optional), the proxy joins by itself as soon as it is ready.
 * - In a session (session.h), each message a client sends is classified
 *   (ns.h): local ones are handled as in solo, the others become this
 *   member's events; replies and notifications are translated back into the
 *   ids the clients know, and those about other members' nodes are dropped.
 * - Before the server is attached (the shim learns the server's World when a
 *   /cmd tutti_attach reaches it), the loop looks for the server's own socket
 *   in this process and sends it that command; the proxy opens its port only
 *   once the server is attached and replies can be routed, so a client sees
 *   a port that is not ready, as with scsynth itself while it boots.
 *
 * Thread rules: start/stop from the thread that loads/unloads the plugin;
 * tutti__proxy_reply from any non-real-time thread (scsynth calls it from its
 * non-real-time thread); the host callbacks are called on the loop thread,
 * except `log`, which may be called from either.
 */
#ifndef TUTTI_PLUGIN_PROXY_H
#define TUTTI_PLUGIN_PROXY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The server's sizes, as it was started (-b, -a, -c, -i, -o). */
typedef struct tutti_proxy_server {
    int32_t buffers, audio_buses, control_buses, inputs, outputs;
} tutti_proxy_server;

/* What the proxy needs from the server it lives in. */
typedef struct tutti_proxy_host {
    /* Hands one checked packet to the server; `ctx` comes back with every
     * reply to it. False when the server refused it (its queue is full). */
    bool (*inject)(void *host, const uint8_t *data, size_t len, uint64_t ctx);
    /* TUTTI_PROXY_READY once packets can be injected and reply contexts read;
     * may inject packets of its own to get there. */
    int (*ready)(void *host);
    /* One line for the server's log. */
    void (*log)(void *host, const char *line);
    /* The server's sizes; called once attached. May be NULL (unknown). */
    void (*server)(void *host, tutti_proxy_server *out);
    void *host;
} tutti_proxy_host;

enum {
    TUTTI_PROXY_READY = 0,
    TUTTI_PROXY_WAIT_ATTACH = 1,
    TUTTI_PROXY_WAIT_CALIBRATE = 2
};

/* Contexts with this kind belong to the host, never to the proxy. */
#define TUTTI_PROXY_CTX_HOST ((uint64_t)15 << 60)
/* Replies to packets injected with this context are dropped (the session's
 * events from other members: their replies are that member's business). */
#define TUTTI_PROXY_CTX_DISCARD ((uint64_t)5 << 60)
/* Replies to packets injected with this context are the server check's
 * (the low 48 bits: the round; session.h). */
#define TUTTI_PROXY_CTX_CHECK ((uint64_t)6 << 60)
/* Added to the context of a session event (any kind above, or a client's):
 * every reply to it is shown to the session first (a /fail is counted for
 * the server check), with the event's part in bits 48-52; then it goes
 * where the rest of the context says. Clients' contexts use bits 0-47. */
#define TUTTI_PROXY_CTX_EVENT ((uint64_t)1 << 59)
#define TUTTI_PROXY_CTX_PART(p) ((uint64_t)((p)&31) << 48)
#define TUTTI_PROXY_CTX_EXTRA ((uint64_t)0xfff << 48)

typedef struct tutti_proxy_config {
    /* UDP and TCP port on 127.0.0.1; 0 lets the system choose one (the
     * same number for both). */
    int port;
    /* Largest packet accepted over TCP (UDP is limited by the datagram). */
    size_t max_packet;
    /* TCP connections served at once (scsynth's default is 64 too). */
    uint32_t max_tcp;
} tutti_proxy_config;

#define TUTTI_PROXY_PORT_INVALID (-1)

/* Port from TUTTI_PROXY_PORT (57121 when unset), 16 MiB packets, 64
 * connections. A TUTTI_PROXY_PORT that is not a port from 0 to 65535 (such
 * as 83306) gives port TUTTI_PROXY_PORT_INVALID: tutti__proxy_start then
 * logs why and does not open the proxy, rather than quietly using 57121. */
void tutti__proxy_config_init(tutti_proxy_config *cfg);

/* Starts the loop thread. One proxy per process. 0 or a TUTTI_E* code. */
int tutti__proxy_start(const tutti_proxy_config *cfg, const tutti_proxy_host *host);

/* Stops the loop and joins its thread. Replies that arrive afterwards are
 * dropped. */
void tutti__proxy_stop(void);

/* One line for the server's log, printf-style, through the host. Any thread
 * once started. */
void tutti__proxy_logf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* A reply from the server for the client `ctx`. Any thread. Never waits for
 * the loop and never allocates: it copies the bytes into the ring and wakes
 * the loop; when the ring is full, or another thread holds the producer side
 * for too long, the reply is dropped and counted. Not real-time safe: waking
 * the loop is a system call (scsynth sends replies from its non-real-time
 * thread, as it does its own sendto calls). */
void tutti__proxy_reply(uint64_t ctx, const void *data, size_t len);

/* Wakes the loop to look at the session's view (feed.h). Any thread but a
 * real-time one (a system call); nothing once stopped. */
void tutti__proxy_wake(void);

#ifdef __cplusplus
}
#endif

#endif
