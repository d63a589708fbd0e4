/*
 * tutti/net.h — the posix platform: the engines of tutti.h on real sockets.
 *
 * A tutti_net is one node, a hub or a member, running in its own thread.
 *
 * Design notes
 * ------------
 * - One libuv loop thread per node owns the engine. Every engine call happens
 *   on that thread; other threads reach the engine only through the queues and
 *   the published snapshot below, or by running a function on the loop with
 *   tutti_net_call(). The loop thread is not a real-time thread: it takes
 *   mutexes and allocates. Nothing in this header is real-time safe; an audio
 *   thread talks to a node through its own lock-free rings (see the plugin).
 * - Frames travel over TCP in the Scalability Protocols' pair1 framing, one
 *   frame per message. A member dials with an NNG pair1 socket; NNG redials by
 *   itself after a connection is lost, and the engine resumes. The hub serves
 *   the same wire protocol itself on libuv TCP, one write queue per
 *   connection, and numbers connections from 1: those numbers are the
 *   engine's peers. (NNG's polyamorous pair1 mode keeps two messages per
 *   connection and drops the rest; a hub fanning bursts out to every member
 *   cannot live with that, see posix/sp_server.c.) nanomsg/NNG tools that
 *   speak pair1 can connect to a hub.
 * - NNG delivers on its own threads. Its callbacks only move messages and
 *   connection events into a bounded queue and wake the loop
 *   (uv_async_send); they never touch the engine and never wait for the
 *   loop. When the queue is full the member stops receiving, so TCP pushes
 *   back on the hub instead of the queue growing.
 * - After every batch of work the loop calls the engine's tick, re-arms a
 *   timer to the deadline the tick returned, and publishes a status snapshot
 *   under a mutex; the status functions read that snapshot.
 * - Bytes from the network go to the engine unchanged: checking frames is its
 *   job (it logs and drops what is malformed). The transport only enforces the
 *   SP framing (a connection that breaks it is closed) and the size limit of
 *   a frame (1 MiB, the wire format's).
 *
 * Time: local time is CLOCK_MONOTONIC in nanoseconds. A hub started with
 * session_epoch = tutti_net_session_epoch() keeps session time that reads as
 * NTP wall-clock time, so timetags from OSC clients mean what they say.
 *
 * Ownership: tutti_net_stop() frees everything a start function allocated.
 * Strings and structs passed to the start functions are copied.
 */
#ifndef TUTTI_NET_H
#define TUTTI_NET_H

#include "tutti/tutti.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct tutti_net tutti_net;

typedef struct tutti_net_config {
    /* A name put in front of every log line ("hub", a member's name).
     * NULL: the role. Copied, at most TUTTI_NAME_MAX-1 bytes used. */
    const char *name;
    /* Least severe level passed on to `log` (default TUTTI_LOG_INFO). */
    int log_level;
    /* Where log lines go: called on the loop thread, or on the thread of a
     * start function while it starts. NULL: one line on stderr,
     * "tutti <name> <level>: <msg>". */
    void (*log)(void *ctx, int level, const char *msg);
    void *log_ctx;
    /* Events tutti_net_submit() may hold before TUTTI_EFULL (default 4096). */
    uint32_t submit_capacity;
    /* Frames held between NNG and the loop before receiving pauses
     * (default 1024). */
    uint32_t receive_capacity;
    /* File to write the hub's actual listening URL to once it listens (the
     * port filled in when the URL asked for port 0), written to a temporary
     * name and renamed so a reader never sees half of it. NULL: none. */
    const char *url_file;
    /* A hub's limits on connections (0: the default): how many one address
     * may hold (32), how many may be open without a proved credential at
     * once (64; a new one closes the oldest of them) and how long one may
     * stay so (5 s). */
    uint32_t per_addr, max_unauth;
    tutti_time hello_deadline;
} tutti_net_config;

/* Defaults as described above. Thread-safe: yes. */
TUTTI_API void tutti_net_config_init(tutti_net_config *cfg);

/* ------------------------------------------------------------- clocks */

/* The platform's local clock: CLOCK_MONOTONIC, ns. Thread-safe: yes;
 * real-time safe: yes (a vDSO call on Linux). */
TUTTI_API tutti_time tutti_net_now(void);

/*
 * Session time minus local time for a hub whose session clock should read as
 * NTP wall time: (CLOCK_REALTIME - CLOCK_MONOTONIC) now, plus the 70 years from
 * 1900 to 1970. Pass it as tutti_hub_config.session_epoch. It is sampled once:
 * the session clock then runs at the monotonic rate and does not follow later
 * steps of the wall clock, which is what members need. Thread-safe: yes.
 */
TUTTI_API tutti_time tutti_net_session_epoch(void);

/* ---------------------------------------------------------- lifecycle */

/*
 * Start a hub listening at `url`, "tcp://HOST:PORT" (e.g. "tcp://0.0.0.0:7770";
 * HOST "*" or empty means every address; port 0 picks a free port, see
 * tutti_net_url). `ncfg` may be NULL for the defaults.
 * Returns 0 and *out, or TUTTI_EINVAL (bad config or URL), TUTTI_ETRANSPORT
 * (cannot listen, e.g. the address is in use; logged), TUTTI_ENOMEM.
 * Thread-safe: yes (each call makes a separate node).
 */
TUTTI_API int tutti_net_hub_start(tutti_net **out, const tutti_hub_config *cfg,
                                  const char *url, const tutti_net_config *ncfg);

/*
 * Start a member that dials the hub at `hub_url` and joins as soon as the
 * connection is up. A hub that is not there yet is not an error: NNG keeps
 * redialling. Any NNG dialer URL works (tcp://, and tls+tcp:// or ipc:// once
 * a hub serves them). `cb` is copied; its functions are called on the loop thread and
 * may call any tutti_net_* function except tutti_net_stop() and
 * tutti_net_leave() (which wait for the loop). `ncfg` may be NULL.
 * Returns 0 and *out, TUTTI_EINVAL, TUTTI_ETRANSPORT or TUTTI_ENOMEM.
 * Thread-safe: yes.
 */
TUTTI_API int tutti_net_member_start(tutti_net **out, const tutti_member_config *cfg,
                                     const tutti_member_callbacks *cb,
                                     const char *hub_url, const tutti_net_config *ncfg);

/*
 * Leave the session politely (members only): the engine sends its goodbye, and
 * this waits up to `linger` for the frame to leave the machine while the loop
 * keeps running (NNG has no linger of its own, and closing a socket discards
 * what it has queued). The node keeps running afterwards; stop it next.
 * Thread-safe: yes, except from the loop thread (callbacks). Blocks.
 */
TUTTI_API int tutti_net_leave(tutti_net *n, tutti_time linger);

/*
 * Stop the node: close the socket (connections drop; the hub notices a member
 * that did not leave after its suspect time), stop the loop, join its thread,
 * destroy the engine and free everything. Queued submissions are discarded.
 * `n` is invalid afterwards. NULL is ignored. Thread-safe: call once, from any
 * thread except the loop thread (never from a callback). Blocks.
 */
TUTTI_API void tutti_net_stop(tutti_net *n);

/*
 * Release what the transport's libraries keep for the whole process (NNG's
 * threads and the objects its reaper has not freed yet). Optional; call it at
 * most once, at exit, after every node has stopped and with no other NNG user
 * left in the process. Leak checkers need it. Thread-safe: no.
 */
TUTTI_API void tutti_net_fini(void);

/* ------------------------------------------------------------ members */

/*
 * Queue an event for session time `t_session`; the bytes are copied. The loop
 * hands it to tutti_member_submit(), where the horizon rule may restamp it
 * (the member's status counts that). Returns 0, TUTTI_EFULL when the queue is
 * full (try again shortly), TUTTI_ESTATE when the member has not joined (as of
 * the last snapshot), TUTTI_EINVAL (payload too big, not a member),
 * TUTTI_ECLOSED after stop began. An event the engine refuses later (the
 * member was removed in the meantime) is dropped and counted in
 * tutti_net_stats.submit_dropped. Thread-safe: yes; takes a mutex, allocates.
 */
TUTTI_API int tutti_net_submit(tutti_net *n, tutti_time t_session, const void *data,
                               uint32_t len);

/*
 * Session time now as this node estimates it, from the last published clock
 * estimate (a hub: its own clock). Returns 0, or TUTTI_ESTATE for a member
 * whose clock is not locked yet (*out is then its best guess).
 * Thread-safe: yes.
 */
TUTTI_API int tutti_net_session_now(tutti_net *n, tutti_time *out);

/* The last published snapshot. TUTTI_EINVAL if `n` is the other role.
 * Thread-safe: yes (a mutex; the loop publishes after every tick). */
TUTTI_API int tutti_net_member_status(tutti_net *n, tutti_member_status *st);
TUTTI_API int tutti_net_hub_status(tutti_net *n, tutti_hub_status *st);

/* ---------------------------------------------------------- transport */

typedef struct tutti_net_stats {
    bool connected;       /* member: has a connection to the hub */
    uint32_t peers;       /* hub: open connections (any, joined or not) */
    uint64_t connects;    /* connections that came up */
    uint64_t disconnects; /* connections that went down */
    uint64_t frames_in, bytes_in;
    uint64_t frames_out, bytes_out;
    uint64_t send_failed;    /* frames not sent: no connection, or its queue full */
    uint64_t refused;        /* hub: connections closed for breaking SP/pair1 */
    uint64_t submit_dropped; /* submissions the engine refused (see submit) */
    uint32_t submit_queued;  /* submissions waiting for the loop now */
    uint64_t receive_pauses; /* times the receive queue filled up */
    /* hub: connections closed at the hello deadline, refused for their
     * address's cap (or the total), closed to make room for newer
     * unauthenticated ones */
    uint64_t hello_timeouts, addr_refused, evicted;
} tutti_net_stats;

/* Transport counters, published with the status. Thread-safe: yes. */
TUTTI_API int tutti_net_stats_get(tutti_net *n, tutti_net_stats *st);

/*
 * The URL a hub listens on, with the port NNG actually bound (useful after
 * asking for port 0); for a member, the hub URL it dials. Returns 0 or
 * TUTTI_EINVAL if it does not fit. Thread-safe: yes.
 */
TUTTI_API int tutti_net_url(tutti_net *n, char *buf, size_t cap);

/*
 * Run fn(arg, engine) on the loop thread and wait for it to return. `engine`
 * is the tutti_hub * or tutti_member * this node owns; fn may call any engine
 * function (tutti_hub_set_bpm, tutti_member_list, ...). Called on the loop
 * thread itself (from a callback), fn runs at once. Returns 0, or
 * TUTTI_ECLOSED if the node is stopping (fn did not run).
 * Thread-safe: yes. Blocks.
 */
TUTTI_API int tutti_net_call(tutti_net *n, void (*fn)(void *arg, void *engine),
                             void *arg);

#ifdef __cplusplus
}
#endif
#endif
