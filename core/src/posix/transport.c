/*
 * The posix transport: an engine on a libuv loop thread; a hub serves SP pair1
 * over libuv TCP (sp_server.c), a member dials it with an NNG pair1 socket
 * (see tutti/net.h for the contract).
 *
 * Design notes
 * ------------
 * - Threads: the loop thread owns the engine and, for a hub, every socket. A
 *   member's socket belongs to NNG, whose threads complete receives and report
 *   connections. Callers' threads submit, read status, call and stop. They
 *   share one mutex, `mu`, guarding the inbound queue, the submission queue,
 *   pending calls, the published snapshot and `closed`. Nobody calls into NNG
 *   or the engine while holding it, so there is no lock order to get wrong.
 * - Every uv_async_send happens under `mu` after checking `closed`. The loop
 *   sets `closed` only after nng_close() and nng_aio_free() have returned (no
 *   NNG callback is left to run) and before it closes the async handle (no
 *   caller can touch a closed handle).
 * - A member's inbound items (messages, connection up/down) keep the order
 *   NNG produced them in. One receive is outstanding at a time; when the
 *   queue holds receive_capacity messages the callback does not re-arm it and
 *   the loop re-arms once it has drained half. NNG then stops reading and TCP
 *   pushes back on the hub: memory stays bounded.
 * - Sends never block the loop. A member's frame NNG cannot take (its send
 *   buffer of SEND_BUFFER messages is full) is dropped and counted; the
 *   engines number their frames and repair gaps with NACKs, as after a lost
 *   connection. A member keeps one socket across connections: frames NNG
 *   still held from before a cut may reach the new connection ahead of the
 *   resume hello; the hub drops frames from a connection that has not said
 *   hello, and the resume repairs the gap. (Closing and reopening the socket
 *   per connection was tried: nng_close in NNG 1.5.2 can hang when a pipe
 *   has just gone, which stopped the loop.)
 * - A lost connection gets a new dialer rather than NNG's own redial. NNG
 *   1.5.2 (Debian 12's) redials only once its reaper thread has finished the
 *   old connection, and that thread can wait for good on a receive that a
 *   closing TCP pipe never completes (fixed upstream in 1.6, nng PR 1636):
 *   the member then never dialled again. A new dialer does not wait for the
 *   reaper; the old one is closed, which stops any redial of its own. It
 *   dials at once after a connection that lasted, and backs off (50 ms
 *   doubling to 2 s) after connections that keep dying young.
 * - Once that reaper is stuck, NNG reports no lost connection again (it
 *   reports them from the reaper) and pair1 still counts the stuck one as
 *   its peer. So a member that hears nothing from the hub for a while (the
 *   hub sends at least every heartbeat, 20 ms at most) gives up the socket:
 *   it closes the socket's connection and dialer (neither waits for the
 *   reaper), leaves the socket itself open (nng_close would wait for it) and
 *   dials on a new one; the hub takes the resume hello on the new
 *   connection. The same rescues a connection TCP has stopped moving (a
 *   partition): a new connection's handshake is retried sooner than the old
 *   one's data.
 * - The engine's tick runs after every batch of work: directly after a
 *   wake-up or a timer, and for a hub's socket reads once per loop iteration
 *   (a check handle), so a burst of frames costs one tick, not one each.
 */
#include "engine.h"
#include "posix/posix.h"
#include "posix/sp_server.h"
#include "posix/url.h"
#include "wire.h"

#include <nng/nng.h>
#include <nng/protocol/pair1/pair.h>
#include <uv.h>

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { ROLE_HUB = 1, ROLE_MEMBER = 2 };
enum { IN_MSG, IN_ADD, IN_REM };

#define MAX_TIMER_WAIT TUTTI_S /* re-run at least this often (publish) */
#define SEND_BUFFER 8192       /* NNG_OPT_SENDBUF: NNG's maximum */
#define URL_MAX 256
/* Bytes that may wait for one member before the hub cuts its connection:
 * about a minute of a busy session. */
#define HUB_MAX_QUEUE ((size_t)64 << 20)

typedef struct inbound {
    uint8_t kind; /* IN_* */
    uint32_t pipe;
    nng_msg *msg;
} inbound;

typedef struct submission {
    tutti_time t;
    uint32_t len;
    uint8_t data[];
} submission;

typedef struct call {
    void (*fn)(void *arg, void *engine);
    void *arg;
    int rc;
    bool done;
    struct call *next;
} call;

struct tutti_net {
    int role;
    tutti_net_config cfg;
    char name[TUTTI_NAME_MAX];
    char url[URL_MAX];
    char *url_file;
    tutti_io io;
    tutti__posix_random rnd;
    tutti_hub *hub;
    tutti_member *member;
    tutti_time session_epoch; /* hub */

    tutti__sp_server *srv; /* hub */
    nng_socket sock;       /* member */
    nng_dialer dialer;
    bool sock_open, dialer_open;
    nng_aio *rx;

    uv_loop_t loop;
    uv_async_t wake;
    uv_timer_t timer;
    uv_check_t check;
    uv_thread_t thread;
    bool loop_ready, thread_started;

    uv_mutex_t mu;
    uv_cond_t cv;
    /* ---- guarded by mu ---- */
    bool stopping, closed;
    uint32_t sock_id; /* member: the socket whose events count */
    inbound *in; /* ring, grows for pipe events only */
    uint32_t in_cap, in_head, in_len, in_msgs;
    bool rx_paused;
    uint64_t receive_pauses;
    submission **sub; /* ring of submit_capacity */
    uint32_t sub_head, sub_len;
    call *calls, *calls_tail;
    tutti_member_status mst;
    tutti_hub_status hst;
    tutti_net_stats pub;
    /* ---- loop thread only ---- */
    tutti_net_stats st;
    uint32_t cur_pipe; /* member: the connection to the hub, 0 if none */
    tutti_time last_heard; /* member: a frame from the hub or a connection */
    bool submit_blocked;
    bool dirty;  /* work done since the last tick */
    bool redial; /* member: opening a new socket failed; try again */
    bool dial_pending;       /* member: dial again at dial_at */
    tutti_time dial_at, dial_backoff, connected_at;
    bool shut;   /* shutdown_loop has run */
};

static _Thread_local tutti_net *current_loop;

static int open_and_dial(tutti_net *n);
static int dial(tutti_net *n);
static void close_socket(tutti_net *n);

/* ------------------------------------------------------------- logging */

static void net_log(void *ctx, int level, const char *msg)
{
    tutti_net *n = ctx;
    if (level < n->cfg.log_level) return;
    if (n->cfg.log)
        n->cfg.log(n->cfg.log_ctx, level, msg);
    else
        tutti__posix_log_stderr(n->name, level, msg);
}

static void logf_(tutti_net *n, int level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void logf_(tutti_net *n, int level, const char *fmt, ...)
{
    if (level < n->cfg.log_level) return;
    char buf[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    net_log(n, level, buf);
}

/* ----------------------------------------------------------------- io */

static tutti_time io_now(void *ctx)
{
    (void)ctx;
    return tutti__posix_now();
}

static uint64_t io_random(void *ctx)
{
    tutti_net *n = ctx;
    return tutti__posix_random_next(&n->rnd);
}

static void io_send(void *ctx, uint32_t peer_id, const uint8_t *buf, size_t len)
{
    tutti_net *n = ctx;
    if (n->role == ROLE_HUB) {
        if (tutti__sp_send(n->srv, peer_id, buf, len) != 0) {
            n->st.send_failed++;
            return;
        }
        n->st.frames_out++;
        n->st.bytes_out += len;
        return;
    }
    nng_msg *msg;
    if (!n->cur_pipe || nng_msg_alloc(&msg, len) != 0) {
        n->st.send_failed++;
        return;
    }
    memcpy(nng_msg_body(msg), buf, len);
    if (nng_sendmsg(n->sock, msg, NNG_FLAG_NONBLOCK) != 0) {
        nng_msg_free(msg);
        n->st.send_failed++;
        return;
    }
    n->st.frames_out++;
    n->st.bytes_out += len;
}

/* The hub engine about a connection: vouched for, or to be closed. */
static void io_peer(void *ctx, uint32_t peer, int what)
{
    tutti_net *n = ctx;
    if (n->role != ROLE_HUB || !n->srv) return;
    if (what == TUTTI_PEER_AUTHED)
        tutti__sp_set_authed(n->srv, peer);
    else if (what == TUTTI_PEER_CLOSE)
        tutti__sp_close_after_flush(n->srv, peer);
}

/* ---------------------------------------------- the inbound queue (mu) */

static bool in_push_locked(tutti_net *n, uint8_t kind, uint32_t pipe, nng_msg *msg)
{
    if (n->in_len == n->in_cap) {
        uint32_t cap = n->in_cap * 2;
        inbound *q = malloc(cap * sizeof *q);
        if (!q) return false;
        for (uint32_t i = 0; i < n->in_len; i++)
            q[i] = n->in[(n->in_head + i) % n->in_cap];
        free(n->in);
        n->in = q;
        n->in_cap = cap;
        n->in_head = 0;
    }
    n->in[(n->in_head + n->in_len) % n->in_cap] = (inbound){kind, pipe, msg};
    n->in_len++;
    if (msg) n->in_msgs++;
    return true;
}

/* NNG thread: a receive completed. */
static void on_rx(void *arg)
{
    tutti_net *n = arg;
    int rv = nng_aio_result(n->rx);
    if (rv == NNG_ECLOSED || rv == NNG_ECANCELED) return;
    if (rv != 0) {
        nng_recv_aio(n->sock, n->rx); /* transient (e.g. out of memory): retry */
        return;
    }
    nng_msg *msg = nng_aio_get_msg(n->rx);
    nng_aio_set_msg(n->rx, NULL);
    uint32_t pipe = (uint32_t)nng_pipe_id(nng_msg_get_pipe(msg));
    bool rearm = false;
    uv_mutex_lock(&n->mu);
    bool closed = n->closed;
    if (closed || !in_push_locked(n, IN_MSG, pipe, msg)) {
        uv_mutex_unlock(&n->mu);
        nng_msg_free(msg);
        if (!closed) nng_recv_aio(n->sock, n->rx); /* out of memory: skip it */
        return;
    }
    if (n->in_msgs < n->cfg.receive_capacity) {
        rearm = true;
    } else {
        n->rx_paused = true;
        n->receive_pauses++;
    }
    uv_async_send(&n->wake);
    uv_mutex_unlock(&n->mu);
    if (rearm) nng_recv_aio(n->sock, n->rx);
}

/* NNG thread: a connection came up or went down. */
static void on_pipe(nng_pipe p, nng_pipe_ev ev, void *arg)
{
    tutti_net *n = arg;
    uint8_t kind = ev == NNG_PIPE_EV_ADD_POST ? IN_ADD : IN_REM;
    uint32_t sock = (uint32_t)nng_socket_id(nng_pipe_socket(p));
    uv_mutex_lock(&n->mu);
    if (!n->closed && sock == n->sock_id && in_push_locked(n, kind, (uint32_t)nng_pipe_id(p), NULL))
        uv_async_send(&n->wake);
    uv_mutex_unlock(&n->mu);
}

/* ------------------------------------------------- hub connections */

static void hub_up(void *ctx, uint32_t id)
{
    tutti_net *n = ctx;
    n->st.connects++;
    n->st.peers++;
    n->dirty = true;
    logf_(n, TUTTI_LOG_DEBUG, "connection %u opened", (unsigned)id);
    tutti_hub_connected(n->hub, id);
}

static void hub_down(void *ctx, uint32_t id)
{
    tutti_net *n = ctx;
    n->st.disconnects++;
    n->st.peers--;
    n->dirty = true;
    logf_(n, TUTTI_LOG_DEBUG, "connection %u closed", (unsigned)id);
    tutti_hub_disconnected(n->hub, id);
}

static void hub_message(void *ctx, uint32_t id, const uint8_t *buf, size_t len)
{
    tutti_net *n = ctx;
    n->st.frames_in++;
    n->st.bytes_in += len;
    n->dirty = true;
    tutti_hub_receive(n->hub, id, buf, len);
}

static void hub_refused(void *ctx)
{
    tutti_net *n = ctx;
    n->st.refused++;
}

/* ------------------------------------------------------ loop thread */

/* Close the member's dialer, if any: stops its own redials; does not wait
 * for NNG's reaper. */
static void close_dialer(tutti_net *n)
{
    if (n->dialer_open) nng_dialer_close(n->dialer);
    n->dialer_open = false;
}

/* How long a member waits for a frame from the hub before it gives up the
 * socket: well past the hub's heartbeat (20 ms at most) and a few round
 * trips, and below the hub's default suspect time (1 s), so that it is back
 * before the hub removes it. */
static tutti_time silence_limit(const tutti_net *n)
{
    tutti_time l = 3 * n->mst.clock.rtt_last_ns;
    return l > 600 * TUTTI_MS ? l : 600 * TUTTI_MS;
}

/* The hub has been silent too long on a connection NNG calls up: give the
 * socket up (see the design notes) and dial on a new one. */
static void abandon_socket(tutti_net *n, tutti_time silent)
{
    logf_(n, TUTTI_LOG_WARN,
          "heard nothing from the hub for %.0f ms; reconnecting on a new socket",
          (double)silent / 1e6);
    close_dialer(n);
    if (n->cur_pipe) {
        nng_pipe p = NNG_PIPE_INITIALIZER;
        p.id = n->cur_pipe;
        nng_pipe_close(p); /* closes the TCP connection; the rest is the reaper's */
    }
    nng_aio_stop(n->rx); /* a receive on the socket, not on the connection */
    nng_aio_free(n->rx);
    n->rx = NULL;
    uv_mutex_lock(&n->mu);
    n->sock_id = 0; /* its connection events no longer count */
    n->rx_paused = false;
    uv_mutex_unlock(&n->mu);
    n->sock_open = false; /* left open: nng_close could wait for good */
    n->cur_pipe = 0;
    n->st.connected = false;
    n->st.disconnects++;
    n->dial_pending = false;
    n->dial_backoff = 0;
    if (open_and_dial(n) != 0) n->redial = true;
}

/* A member lost its connection: stop the dialer and plan a new one. */
static void redial_later(tutti_net *n)
{
    close_dialer(n);
    tutti_time now = tutti__posix_now();
    if (now - n->connected_at >= 2 * TUTTI_S)
        n->dial_backoff = 0;
    else if (n->dial_backoff < 50 * TUTTI_MS)
        n->dial_backoff = 50 * TUTTI_MS;
    else if ((n->dial_backoff *= 2) > 2 * TUTTI_S)
        n->dial_backoff = 2 * TUTTI_S;
    n->dial_pending = true;
    n->dial_at = now + n->dial_backoff;
    n->dirty = true;
}

/* A member's inbound item. */
static void handle_inbound(tutti_net *n, const inbound *it)
{
    switch (it->kind) {
    case IN_ADD:
        n->cur_pipe = it->pipe;
        n->connected_at = n->last_heard = tutti__posix_now();
        n->st.connected = true;
        n->st.connects++;
        logf_(n, TUTTI_LOG_INFO, "connected to the hub at %s", n->url);
        tutti_member_connected(n->member);
        break;
    case IN_REM:
        if (it->pipe != n->cur_pipe) break; /* refused before it opened */
        n->cur_pipe = 0;
        n->st.connected = false;
        n->st.disconnects++;
        logf_(n, TUTTI_LOG_WARN, "lost the connection to the hub; redialling %s", n->url);
        redial_later(n); /* a new dialer (see the design notes) */
        break; /* the next ADD_POST resumes */
    default: {
        /* NNG starts reading a connection before it reports it, so a message
         * may overtake its ADD_POST; it is the hub's frame all the same. */
        size_t len = nng_msg_len(it->msg);
        n->st.frames_in++;
        n->st.bytes_in += len;
        tutti_member_receive(n->member, nng_msg_body(it->msg), len);
        break;
    }
    }
}

static void drain_inbound(tutti_net *n)
{
    if (n->role != ROLE_MEMBER) return;
    /* At most one queue's worth per turn, so timers and submissions are not
     * starved by a flood; the async wake-up below brings the loop back. */
    uint32_t budget = n->cfg.receive_capacity;
    bool heard = false; /* a frame from the hub: the watchdog's clock, read once */
    for (;;) {
        inbound it;
        bool rearm = false;
        uv_mutex_lock(&n->mu);
        if (n->in_len == 0) {
            uv_mutex_unlock(&n->mu);
            break;
        }
        if (budget-- == 0) {
            uv_async_send(&n->wake);
            uv_mutex_unlock(&n->mu);
            break;
        }
        it = n->in[n->in_head];
        n->in_head = (n->in_head + 1) % n->in_cap;
        n->in_len--;
        if (it.msg) n->in_msgs--;
        if (n->rx_paused && n->in_msgs <= n->cfg.receive_capacity / 2) {
            n->rx_paused = false;
            rearm = true;
        }
        uv_mutex_unlock(&n->mu);
        if (rearm) nng_recv_aio(n->sock, n->rx);
        handle_inbound(n, &it);
        if (it.msg) {
            heard = true;
            nng_msg_free(it.msg);
        }
    }
    if (heard) n->last_heard = tutti__posix_now();
}

static void drain_submissions(tutti_net *n)
{
    if (n->role != ROLE_MEMBER) return;
    n->submit_blocked = false;
    for (;;) {
        uv_mutex_lock(&n->mu);
        submission *s = n->sub_len ? n->sub[n->sub_head] : NULL;
        uv_mutex_unlock(&n->mu);
        if (!s) return;
        int rc = tutti_member_submit(n->member, s->t, s->data, s->len, NULL);
        if (rc == TUTTI_EFULL) {
            /* The unacknowledged window is full: keep the event at the head
             * and try again when acknowledgements have come in. */
            n->submit_blocked = true;
            return;
        }
        if (rc != 0) {
            n->st.submit_dropped++;
            logf_(n, TUTTI_LOG_WARN, "an event was dropped: %s", tutti_strerror(rc));
        }
        uv_mutex_lock(&n->mu);
        n->sub_head = (n->sub_head + 1) % n->cfg.submit_capacity;
        n->sub_len--;
        uv_mutex_unlock(&n->mu);
        free(s);
    }
}

static void *engine_of(tutti_net *n)
{
    return n->role == ROLE_HUB ? (void *)n->hub : (void *)n->member;
}

static void run_calls(tutti_net *n)
{
    uv_mutex_lock(&n->mu);
    call *c = n->calls;
    n->calls = n->calls_tail = NULL;
    uv_mutex_unlock(&n->mu);
    if (!c) return;
    for (call *i = c; i; i = i->next)
        i->fn(i->arg, engine_of(n));
    uv_mutex_lock(&n->mu);
    while (c) {
        call *next = c->next; /* c lives on the caller's stack: read first */
        c->rc = 0;
        c->done = true;
        c = next;
    }
    uv_cond_broadcast(&n->cv);
    uv_mutex_unlock(&n->mu);
}

static void publish(tutti_net *n)
{
    tutti_member_status mst;
    tutti_hub_status hst;
    if (n->role == ROLE_HUB)
        tutti_hub_status_get(n->hub, &hst);
    else
        tutti_member_status_get(n->member, &mst);
    uv_mutex_lock(&n->mu);
    if (n->role == ROLE_HUB)
        n->hst = hst;
    else
        n->mst = mst;
    if (n->srv) {
        tutti__sp_stats ss;
        tutti__sp_get_stats(n->srv, &ss);
        n->st.hello_timeouts = ss.hello_timeouts;
        n->st.addr_refused = ss.addr_refused;
        n->st.evicted = ss.evicted;
    }
    n->pub = n->st;
    n->pub.submit_queued = n->sub_len;
    n->pub.receive_pauses = n->receive_pauses;
    uv_mutex_unlock(&n->mu);
}

static void on_timer(uv_timer_t *t);

/* Tick the engine, publish, and sleep until its next deadline. */
static void service(tutti_net *n)
{
    tutti_time deadline =
        n->role == ROLE_HUB ? tutti_hub_tick(n->hub) : tutti_member_tick(n->member);
    if (n->srv) tutti__sp_flush(n->srv);
    tutti_time now = tutti__posix_now();
    n->dirty = false;
    if (n->dial_pending && now >= n->dial_at) {
        n->dial_pending = false;
        if (n->sock_open && dial(n) != 0) n->redial = true;
    }
    if (n->dial_pending && deadline > n->dial_at) deadline = n->dial_at;
    if (n->role == ROLE_MEMBER && n->st.connected && n->sock_open && !n->redial) {
        tutti_time limit = silence_limit(n);
        if (now - n->last_heard > limit)
            abandon_socket(n, now - n->last_heard);
        else if (deadline > n->last_heard + limit + TUTTI_MS)
            deadline = n->last_heard + limit + TUTTI_MS;
    }
    if (n->redial) {
        n->dial_pending = false;
        close_socket(n);
        n->redial = open_and_dial(n) != 0;
        if (n->redial && deadline > now + TUTTI_S) deadline = now + TUTTI_S;
    }
    publish(n);
    tutti_time wait = deadline - now;
    if (wait < 0) wait = 0;
    if (wait > MAX_TIMER_WAIT) wait = MAX_TIMER_WAIT;
    if (n->submit_blocked && wait > TUTTI_MS) wait = TUTTI_MS;
    /* libuv timers count whole milliseconds: round up, so the engine is never
     * woken before its deadline and left to spin. */
    uint64_t ms = (uint64_t)((wait + TUTTI_MS - 1) / TUTTI_MS);
    uv_update_time(&n->loop);
    uv_timer_start(&n->timer, on_timer, ms, 0);
}

static void shutdown_loop(tutti_net *n)
{
    n->shut = true;
    uv_timer_stop(&n->timer);
    if (n->role == ROLE_HUB) {
        tutti__sp_close(n->srv); /* freed by its close callbacks */
        n->srv = NULL;
    } else {
        close_socket(n);
    }
    uv_mutex_lock(&n->mu);
    n->closed = true;
    while (n->in_len) {
        inbound *it = &n->in[n->in_head];
        if (it->msg) nng_msg_free(it->msg);
        n->in_head = (n->in_head + 1) % n->in_cap;
        n->in_len--;
    }
    n->in_msgs = 0;
    while (n->sub_len) {
        free(n->sub[n->sub_head]);
        n->sub_head = (n->sub_head + 1) % n->cfg.submit_capacity;
        n->sub_len--;
    }
    for (call *c = n->calls; c;) {
        call *next = c->next;
        c->rc = TUTTI_ECLOSED;
        c->done = true;
        c = next;
    }
    n->calls = n->calls_tail = NULL;
    uv_cond_broadcast(&n->cv);
    uv_mutex_unlock(&n->mu);
    uv_close((uv_handle_t *)&n->wake, NULL);
    uv_close((uv_handle_t *)&n->timer, NULL);
    uv_close((uv_handle_t *)&n->check, NULL);
}

static void run(tutti_net *n)
{
    drain_inbound(n);
    drain_submissions(n);
    run_calls(n);
    uv_mutex_lock(&n->mu);
    bool stopping = n->stopping;
    uv_mutex_unlock(&n->mu);
    if (stopping) {
        shutdown_loop(n);
        return;
    }
    service(n);
}

static void on_wake(uv_async_t *a)
{
    run(a->data);
}

static void on_timer(uv_timer_t *t)
{
    run(t->data);
}

/* After the loop's I/O phase: tick once if a socket read did any work. */
static void on_check(uv_check_t *c)
{
    tutti_net *n = c->data;
    if (n->dirty && !n->shut) service(n);
}

static void loop_main(void *arg)
{
    tutti_net *n = arg;
    current_loop = n;
    run(n);
    uv_run(&n->loop, UV_RUN_DEFAULT);
    current_loop = NULL;
}

/* ------------------------------------------------------------ start */

void tutti_net_config_init(tutti_net_config *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->log_level = TUTTI_LOG_INFO;
    cfg->submit_capacity = 4096;
    cfg->receive_capacity = 1024;
}

static void net_free(tutti_net *n)
{
    if (n->sock_open) {
        nng_close(n->sock);
        n->sock_open = false;
    }
    if (n->rx) nng_aio_free(n->rx); /* stops it first */
    if (n->loop_ready) {
        if (n->srv) tutti__sp_close(n->srv);
        uv_handle_t *hs[] = {(uv_handle_t *)&n->wake, (uv_handle_t *)&n->timer,
                             (uv_handle_t *)&n->check};
        for (size_t i = 0; i < sizeof hs / sizeof hs[0]; i++)
            if (!uv_is_closing(hs[i])) uv_close(hs[i], NULL);
        uv_run(&n->loop, UV_RUN_DEFAULT); /* runs the close callbacks */
        uv_loop_close(&n->loop);
    }
    if (n->in) {
        for (uint32_t i = 0; i < n->in_len; i++) {
            inbound *it = &n->in[(n->in_head + i) % n->in_cap];
            if (it->msg) nng_msg_free(it->msg);
        }
    }
    if (n->sub) {
        for (uint32_t i = 0; i < n->sub_len; i++)
            free(n->sub[(n->sub_head + i) % n->cfg.submit_capacity]);
    }
    tutti_hub_destroy(n->hub);
    tutti_member_destroy(n->member);
    uv_cond_destroy(&n->cv);
    uv_mutex_destroy(&n->mu);
    free(n->in);
    free(n->sub);
    free(n->url_file);
    free(n);
}

static int net_alloc(tutti_net **out, int role, const char *url,
                     const tutti_net_config *ncfg)
{
    if (!out || !url || strlen(url) >= URL_MAX) return TUTTI_EINVAL;
    tutti_net *n = calloc(1, sizeof *n);
    if (!n) return TUTTI_ENOMEM;
    n->role = role;
    if (ncfg)
        n->cfg = *ncfg;
    else
        tutti_net_config_init(&n->cfg);
    if (!n->cfg.submit_capacity) n->cfg.submit_capacity = 4096;
    if (!n->cfg.receive_capacity) n->cfg.receive_capacity = 1024;
    snprintf(n->name, sizeof n->name, "%s",
             n->cfg.name        ? n->cfg.name
             : role == ROLE_HUB ? "hub"
                                : "member");
    n->cfg.name = n->name;
    strcpy(n->url, url);
    if (uv_mutex_init(&n->mu) != 0) {
        free(n);
        return TUTTI_ENOMEM;
    }
    if (uv_cond_init(&n->cv) != 0) {
        uv_mutex_destroy(&n->mu);
        free(n);
        return TUTTI_ENOMEM;
    }
    n->in_cap = n->cfg.receive_capacity + 64; /* room for connection events */
    n->in = malloc(n->in_cap * sizeof *n->in);
    n->sub = malloc(n->cfg.submit_capacity * sizeof *n->sub);
    if (n->cfg.url_file) n->url_file = strdup(n->cfg.url_file);
    n->cfg.url_file = n->url_file;
    if (!n->in || !n->sub || (ncfg && ncfg->url_file && !n->url_file)) {
        net_free(n);
        return TUTTI_ENOMEM;
    }
    tutti__posix_random_init(&n->rnd);
    n->io = (tutti_io){n, io_now, io_random, io_send, net_log, io_peer};
    if (uv_loop_init(&n->loop) != 0) {
        net_free(n);
        return TUTTI_ENOMEM;
    }
    uv_async_init(&n->loop, &n->wake, on_wake);
    uv_timer_init(&n->loop, &n->timer);
    uv_check_init(&n->loop, &n->check);
    uv_check_start(&n->check, on_check);
    n->wake.data = n;
    n->timer.data = n;
    n->check.data = n;
    n->loop_ready = true;
    *out = n;
    return 0;
}

static int url_error(tutti_net *n, const char *what, int rv)
{
    logf_(n, TUTTI_LOG_ERROR, "cannot %s %s: %s", what, n->url, nng_strerror(rv));
    return rv == NNG_EADDRINVAL || rv == NNG_ENOTSUP || rv == NNG_EINVAL
               ? TUTTI_EINVAL
               : TUTTI_ETRANSPORT;
}

/* A member's NNG pair1 socket, dialling the hub. */
static int open_and_dial(tutti_net *n)
{
    int rv = nng_pair1_open(&n->sock);
    if (rv != 0) {
        logf_(n, TUTTI_LOG_ERROR, "cannot open a socket: %s", nng_strerror(rv));
        return TUTTI_ETRANSPORT;
    }
    n->sock_open = true;
    uv_mutex_lock(&n->mu);
    n->sock_id = (uint32_t)nng_socket_id(n->sock);
    uv_mutex_unlock(&n->mu);
    /* Room for the largest frame the wire allows plus pair1's hop count;
     * NNG drops the connection of a peer that sends more. The receive buffer
     * is in messages, ahead of the loop's own queue. */
    if ((rv = nng_socket_set_size(n->sock, NNG_OPT_RECVMAXSZ,
                                  TUTTI__WIRE_MAX_FRAME + 64)) ||
        (rv = nng_socket_set_int(n->sock, NNG_OPT_SENDBUF, SEND_BUFFER)) ||
        (rv = nng_socket_set_int(n->sock, NNG_OPT_RECVBUF, 1024)) ||
        (rv = nng_pipe_notify(n->sock, NNG_PIPE_EV_ADD_POST, on_pipe, n)) ||
        (rv = nng_pipe_notify(n->sock, NNG_PIPE_EV_REM_POST, on_pipe, n)) ||
        (!n->rx && (rv = nng_aio_alloc(&n->rx, on_rx, n)))) {
        logf_(n, TUTTI_LOG_ERROR, "cannot set up the socket: %s", nng_strerror(rv));
        return TUTTI_ETRANSPORT;
    }
    nng_recv_aio(n->sock, n->rx);
    return dial(n);
}

/* Start dialling the hub with a new dialer, closing the previous one. */
static int dial(tutti_net *n)
{
    close_dialer(n);
    nng_dialer d;
    int rv = nng_dialer_create(&d, n->sock, n->url);
    if (rv == 0) {
        /* Redial quickly at first, backing off to a few seconds, so a
         * restarted hub is found again within moments. */
        nng_dialer_set_ms(d, NNG_OPT_RECONNMINT, 100);
        nng_dialer_set_ms(d, NNG_OPT_RECONNMAXT, 2000);
        rv = nng_dialer_start(d, NNG_FLAG_NONBLOCK);
        if (rv != 0)
            nng_dialer_close(d);
        else {
            n->dialer = d;
            n->dialer_open = true;
        }
    }
    return rv ? url_error(n, "dial", rv) : 0;
}

/* Close the socket and forget what it had queued for the loop. */
static void close_socket(tutti_net *n)
{
    if (!n->sock_open) return;
    /* nng_close returns once NNG's callbacks on this socket are done; none of
     * them waits for this thread, so this cannot deadlock. */
    nng_close(n->sock); /* closes its dialers too */
    n->sock_open = n->dialer_open = false;
    nng_aio_free(n->rx); /* waits for its callback; a stopped aio is spent */
    n->rx = NULL;
    uv_mutex_lock(&n->mu);
    while (n->in_len) {
        inbound *it = &n->in[n->in_head];
        if (it->msg) nng_msg_free(it->msg);
        n->in_head = (n->in_head + 1) % n->in_cap;
        n->in_len--;
    }
    n->in_msgs = 0;
    n->rx_paused = false;
    uv_mutex_unlock(&n->mu);
}

static int write_url_file(tutti_net *n)
{
    char tmp[4096];
    if (snprintf(tmp, sizeof tmp, "%s.tmp", n->url_file) >= (int)sizeof tmp)
        return TUTTI_EINVAL;
    FILE *f = fopen(tmp, "w");
    if (!f) return TUTTI_ETRANSPORT;
    fprintf(f, "%s\n", n->url);
    if (fclose(f) != 0 || rename(tmp, n->url_file) != 0) return TUTTI_ETRANSPORT;
    return 0;
}

static int start_thread(tutti_net *n)
{
    if (uv_thread_create(&n->thread, loop_main, n) != 0) return TUTTI_ENOMEM;
    n->thread_started = true;
    return 0;
}

int tutti_net_hub_start(tutti_net **out, const tutti_hub_config *cfg, const char *url,
                        const tutti_net_config *ncfg)
{
    if (!cfg) return TUTTI_EINVAL;
    tutti_net *n;
    int rc = net_alloc(&n, ROLE_HUB, url, ncfg);
    if (rc) return rc;
    n->session_epoch = cfg->session_epoch;
    if ((rc = tutti_hub_create(&n->hub, cfg, &n->io)) != 0) {
        logf_(n, TUTTI_LOG_ERROR, "cannot create the hub: %s", tutti_strerror(rc));
        net_free(n);
        return rc;
    }
    tutti__sp_callbacks cb = {n, hub_up, hub_down, hub_message, hub_refused, net_log};
    char bound[URL_MAX];
    rc = tutti__sp_listen(&n->srv, &n->loop, n->url, TUTTI__SP_PAIR1,
                          TUTTI__WIRE_MAX_FRAME + 4, HUB_MAX_QUEUE, &cb, bound,
                          sizeof bound);
    if (rc != 0) { /* tutti__sp_listen logged why */
        net_free(n);
        return rc;
    }
    strcpy(n->url, bound);
    tutti__sp_set_limits(n->srv, n->cfg.per_addr ? n->cfg.per_addr : 32,
                         n->cfg.max_unauth ? n->cfg.max_unauth : 64,
                         (uint64_t)((n->cfg.hello_deadline ? n->cfg.hello_deadline
                                                           : 5 * TUTTI_S) /
                                    TUTTI_MS));
    if (n->url_file && (rc = write_url_file(n)) != 0) {
        logf_(n, TUTTI_LOG_ERROR, "cannot write the URL to %s", n->url_file);
        net_free(n);
        return rc;
    }
    logf_(n, TUTTI_LOG_INFO, "listening on %s", n->url);
    publish(n);
    if ((rc = start_thread(n)) != 0) {
        net_free(n);
        return rc;
    }
    *out = n;
    return 0;
}

int tutti_net_member_start(tutti_net **out, const tutti_member_config *cfg,
                           const tutti_member_callbacks *cb, const char *hub_url,
                           const tutti_net_config *ncfg)
{
    if (!cfg) return TUTTI_EINVAL;
    tutti_net_config c;
    if (ncfg)
        c = *ncfg;
    else
        tutti_net_config_init(&c);
    if (!c.name) c.name = cfg->name;
    tutti_net *n;
    int rc = net_alloc(&n, ROLE_MEMBER, hub_url, &c);
    if (rc) return rc;
    const char *why;
    if (tutti__url_dial_check(n->url, &why)) {
        logf_(n, TUTTI_LOG_ERROR, "cannot dial %s: %s", n->url, why);
        net_free(n);
        return TUTTI_EINVAL;
    }
    if ((rc = tutti_member_create(&n->member, cfg, &n->io, cb)) != 0) {
        logf_(n, TUTTI_LOG_ERROR, "cannot create the member: %s", tutti_strerror(rc));
        net_free(n);
        return rc;
    }
    if ((rc = open_and_dial(n)) != 0) {
        net_free(n);
        return rc;
    }
    publish(n);
    if ((rc = start_thread(n)) != 0) {
        net_free(n);
        return rc;
    }
    *out = n;
    return 0;
}

void tutti_net_stop(tutti_net *n)
{
    if (!n) return;
    if (current_loop == n) {
        logf_(n, TUTTI_LOG_ERROR, "tutti_net_stop called from the loop thread; ignored");
        return;
    }
    uv_mutex_lock(&n->mu);
    n->stopping = true;
    if (!n->closed) uv_async_send(&n->wake);
    uv_mutex_unlock(&n->mu);
    if (n->thread_started) uv_thread_join(&n->thread);
    net_free(n);
}

void tutti_net_fini(void)
{
    nng_fini();
}

/* --------------------------------------------------------- requests */

int tutti_net_call(tutti_net *n, void (*fn)(void *arg, void *engine), void *arg)
{
    if (!n || !fn) return TUTTI_EINVAL;
    if (current_loop == n) {
        fn(arg, engine_of(n));
        return 0;
    }
    call c = {fn, arg, 0, false, NULL};
    uv_mutex_lock(&n->mu);
    if (n->stopping || n->closed) {
        uv_mutex_unlock(&n->mu);
        return TUTTI_ECLOSED;
    }
    if (n->calls_tail)
        n->calls_tail->next = &c;
    else
        n->calls = &c;
    n->calls_tail = &c;
    uv_async_send(&n->wake);
    while (!c.done)
        uv_cond_wait(&n->cv, &n->mu);
    uv_mutex_unlock(&n->mu);
    return c.rc;
}

/* On the loop's thread (a delivery callback submitting), the engine itself
 * is current; the published status may be a turn behind. */
static bool member_joined_now(tutti_net *n)
{
    tutti_member_status st;
    tutti_member_status_get(n->member, &st);
    return st.joined;
}

int tutti_net_submit(tutti_net *n, tutti_time t_session, const void *data, uint32_t len)
{
    if (!n || n->role != ROLE_MEMBER || len > TUTTI__MAX_PAYLOAD || (len && !data))
        return TUTTI_EINVAL;
    submission *s = malloc(sizeof *s + len);
    if (!s) return TUTTI_ENOMEM;
    s->t = t_session;
    s->len = len;
    if (len) memcpy(s->data, data, len);
    int rc = 0;
    uv_mutex_lock(&n->mu);
    if (n->stopping || n->closed)
        rc = TUTTI_ECLOSED;
    else if (!(current_loop == n ? member_joined_now(n) : n->mst.joined))
        rc = TUTTI_ESTATE;
    else if (n->sub_len == n->cfg.submit_capacity)
        rc = TUTTI_EFULL;
    if (rc == 0) {
        n->sub[(n->sub_head + n->sub_len) % n->cfg.submit_capacity] = s;
        n->sub_len++;
        uv_async_send(&n->wake);
    }
    uv_mutex_unlock(&n->mu);
    if (rc) free(s);
    return rc;
}

static void do_leave(void *arg, void *engine)
{
    (void)arg;
    tutti_member_leave(engine);
}

int tutti_net_leave(tutti_net *n, tutti_time linger)
{
    if (!n || n->role != ROLE_MEMBER) return TUTTI_EINVAL;
    if (current_loop == n) return TUTTI_ESTATE;
    int rc = tutti_net_call(n, do_leave, NULL);
    if (rc) return rc;
    /* The goodbye is in NNG's queue now; give it a moment to reach the wire
     * while the loop keeps running. */
    tutti_net_stats st;
    tutti_net_stats_get(n, &st);
    if (st.connected && linger > 0) {
        tutti_time end = tutti__posix_now() + linger;
        tutti_time now;
        while ((now = tutti__posix_now()) < end) {
            tutti_time left = end - now;
            uv_sleep(
                (unsigned)((left < 10 * TUTTI_MS ? left : 10 * TUTTI_MS) / TUTTI_MS + 1));
        }
    }
    return 0;
}

/* ------------------------------------------------------------- status */

int tutti_net_member_status(tutti_net *n, tutti_member_status *st)
{
    if (!n || !st || n->role != ROLE_MEMBER) return TUTTI_EINVAL;
    uv_mutex_lock(&n->mu);
    *st = n->mst;
    uv_mutex_unlock(&n->mu);
    return 0;
}

int tutti_net_hub_status(tutti_net *n, tutti_hub_status *st)
{
    if (!n || !st || n->role != ROLE_HUB) return TUTTI_EINVAL;
    uv_mutex_lock(&n->mu);
    *st = n->hst;
    uv_mutex_unlock(&n->mu);
    return 0;
}

int tutti_net_session_now(tutti_net *n, tutti_time *out)
{
    if (!n || !out) return TUTTI_EINVAL;
    tutti_time now = tutti__posix_now();
    if (n->role == ROLE_HUB) {
        *out = now + n->session_epoch;
        return 0;
    }
    uv_mutex_lock(&n->mu);
    tutti_clock_estimate e = n->mst.clock;
    uv_mutex_unlock(&n->mu);
    *out = tutti_clock_to_session(&e, now);
    return e.locked ? 0 : TUTTI_ESTATE;
}

int tutti_net_stats_get(tutti_net *n, tutti_net_stats *st)
{
    if (!n || !st) return TUTTI_EINVAL;
    uv_mutex_lock(&n->mu);
    *st = n->pub;
    uv_mutex_unlock(&n->mu);
    return 0;
}

int tutti_net_url(tutti_net *n, char *buf, size_t cap)
{
    if (!n || !buf || strlen(n->url) >= cap) return TUTTI_EINVAL;
    strcpy(buf, n->url);
    return 0;
}
