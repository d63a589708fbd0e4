/*
 * The proxy's loop thread: sockets, client contexts, reply routing, the
 * /notify registry and attaching to the server. See proxy.h for the design.
 *
 * Everything below runs on the loop thread except tutti__proxy_reply(),
 * tutti__proxy_start() and tutti__proxy_stop(). There is one proxy per
 * process (scsynth has one World), so its state is a static object; that also
 * keeps the ring and the gate valid for a reply that comes in after the
 * plugin was unloaded (the plugin is linked with -z nodelete).
 */
#define _GNU_SOURCE
#include "proxy.h"

#include "auth.h"
#include "beat.h"
#include "feed.h"
#include "linkhost.h"
#include "ns.h"
#include "osc.h"
#include "posix/url.h"
#include "ring.h"
#include "session.h"
#include "tutti/tutti.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

/* ------------------------------------------------------------ contexts */

/* The top 4 bits say what a context names. */
enum { K_UDP = 1, K_TCP = 2, K_SELF = 3, K_MARK = 4, K_DISCARD = 5, K_CHECK = 6 };
#define CTX_KIND(c) ((unsigned)((c) >> 60))

static uint64_t ctx_udp(const struct sockaddr_in *a)
{
    return (uint64_t)K_UDP << 60 | (uint64_t)ntohl(a->sin_addr.s_addr) << 16 |
           ntohs(a->sin_port);
}

static void udp_addr(uint64_t ctx, struct sockaddr_in *a)
{
    memset(a, 0, sizeof *a);
    a->sin_family = AF_INET;
    a->sin_addr.s_addr = htonl((uint32_t)(ctx >> 16));
    a->sin_port = htons((uint16_t)ctx);
}

static uint64_t ctx_tcp(uint32_t slot, uint32_t gen)
{
    return (uint64_t)K_TCP << 60 | (uint64_t)gen << 16 | slot;
}

static const uint64_t CTX_SELF = (uint64_t)K_SELF << 60;
_Static_assert(((uint64_t)K_SELF << 60) == TUTTI_PROXY_CTX_SELF,
               "ctxmap.c pins the proxy's own registration by this kind");

static uint64_t ctx_mark(uint32_t slot)
{
    return (uint64_t)K_MARK << 60 | slot;
}

/* ----------------------------------------------------------------- state */

#define MAX_LOGINS 1024 /* clients registered with the proxy, at most */
#define MAX_MARKS 256   /* /notify requests in flight */
#define RING_BYTES (1u << 21)
#define TCP_QUEUE_LIMIT ((size_t)8 << 20)
#define DRAIN_BATCH 4096
#define ATTACH_EVERY_MS 20
#define ATTACH_TRIES 1500 /* 30 s of looking for the server's port */
#define GATE_SPINS 4096

typedef struct conn {
    uv_tcp_t tcp;
    uint32_t slot, gen;
    bool used, closing;
    bool validated; /* gave scsynth's -p password, or none is needed */
    uint8_t tries;  /* wrong passwords so far */
    uint8_t *buf;
    size_t len, cap;
} conn;

typedef struct tcp_write {
    uv_write_t req;
    uint8_t data[];
} tcp_write;

typedef struct mark {
    bool used, on;
    uint64_t ctx;
    int32_t req;
} mark;

static struct proxy {
    tutti_proxy_config cfg;
    tutti_proxy_host host;
    uv_loop_t loop;
    uv_thread_t thread;
    uv_async_t wake;
    uv_timer_t timer;
    uv_udp_t udp;
    uv_tcp_t listener;
    bool started, listening, stopping;
    int port;
    int attach_tries;
    uint64_t attach_last_ms;
    _Atomic bool stop;

    /* Producers of replies pass through this gate one at a time; `accepting`
     * is read and written only inside it. */
    atomic_flag gate;
    bool accepting;
    tutti__ring ring;
    _Atomic uint64_t replies_lost;

    conn *conns;
    uint32_t nconns;

    struct {
        bool requested, registered;
        char fail[96];
        int32_t max;
        int32_t avail[MAX_LOGINS];
        uint32_t navail;
        uint64_t reg_ctx[MAX_LOGINS];
        int32_t reg_id[MAX_LOGINS];
        uint32_t nreg;
        mark marks[MAX_MARKS];
    } nt;

    struct {
        uint64_t packets, invalid, injected, inject_failed, replies, dropped,
            notifications, tcp_refused, tcp_closed_slow, local, refused_in_session;
        uint64_t password_refused; /* TCP connections closed: wrong -p password */
    } st;
} P = {.gate = ATOMIC_FLAG_INIT};

static uint8_t ring_buf[RING_BYTES];
static uint8_t udp_buf[65536];

#define logf_ tutti__proxy_logf

void tutti__proxy_logf(const char *fmt, ...)
{
    char line[1024]; /* a join's reason (TUTTI__NS_WHY_MAX) and what it names */
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    if (P.host.log) P.host.log(P.host.host, line);
}

/* ------------------------------------------------------- config, start */

void tutti__proxy_config_init(tutti_proxy_config *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->port = 57121;
    const char *e = getenv("TUTTI_PROXY_PORT");
    uint16_t port;
    if (e && *e)
        cfg->port = tutti__port_parse(e, strlen(e), TUTTI__PORT_ANY, &port) == 0
                        ? port
                        : TUTTI_PROXY_PORT_INVALID;
    cfg->max_packet = (size_t)16 << 20;
    cfg->max_tcp = 64;
    const char *bind = getenv("TUTTI_PROXY_BIND");
    snprintf(cfg->bind, sizeof cfg->bind, "%s", bind && *bind ? bind : "127.0.0.1");
    char cmd[4096];
    FILE *f = fopen("/proc/self/cmdline", "r");
    size_t n = f ? fread(cmd, 1, sizeof cmd, f) : 0;
    if (f) fclose(f);
    if (!tutti__proxy_password_from_cmdline(cmd, n, cfg->password, sizeof cfg->password))
        snprintf(cfg->password, sizeof cfg->password, "%s",
                 "\x01unusable"); /* refuse all */
}

bool tutti__proxy_password_from_cmdline(const char *cmdline, size_t len, char *out,
                                        size_t cap)
{
    out[0] = 0;
    for (size_t i = 0; i < len;) {
        const char *arg = cmdline + i;
        size_t al = strnlen(arg, len - i);
        i += al + 1;
        if (al != 2 || memcmp(arg, "-p", 2)) continue;
        if (i >= len) return false;
        const char *val = cmdline + i;
        size_t vl = strnlen(val, len - i);
        if (vl == 0 || vl > 31 || vl >= cap) return false;
        memcpy(out, val, vl);
        out[vl] = 0;
        i += vl + 1;
    }
    return true;
}

/* ------------------------------------------------------- sending replies */

static conn *conn_of(uint64_t ctx)
{
    uint32_t slot = (uint32_t)(ctx & 0xffff), gen = (uint32_t)(ctx >> 16);
    if (slot >= P.cfg.max_tcp) return NULL;
    conn *c = &P.conns[slot];
    return c->used && !c->closing && c->gen == gen ? c : NULL;
}

static void conn_close(conn *c);

static void on_tcp_written(uv_write_t *req, int status)
{
    (void)status;
    free(req);
}

/* One reply to a TCP client with scsynth's length prefix. Written at once when
 * nothing is queued; the rest is copied and queued, in order. A client that
 * lets more than TCP_QUEUE_LIMIT pile up is not reading: it is disconnected
 * rather than allowed to hold the proxy's memory. */
static bool tcp_send(conn *c, const uint8_t *data, size_t len)
{
    uint8_t prefix[4] = {(uint8_t)(len >> 24), (uint8_t)(len >> 16), (uint8_t)(len >> 8),
                         (uint8_t)len};
    size_t done = 0, total = 4 + len;
    if (uv_stream_get_write_queue_size((uv_stream_t *)&c->tcp) == 0) {
        uv_buf_t b[2] = {uv_buf_init((char *)prefix, 4),
                         uv_buf_init((char *)data, (unsigned)len)};
        int n = uv_try_write((uv_stream_t *)&c->tcp, b, 2);
        if (n > 0)
            done = (size_t)n;
        else if (n != UV_EAGAIN)
            return false;
        if (done == total) return true;
    } else if (uv_stream_get_write_queue_size((uv_stream_t *)&c->tcp) > TCP_QUEUE_LIMIT) {
        P.st.tcp_closed_slow++;
        conn_close(c);
        return false;
    }
    size_t rest = total - done;
    tcp_write *w = malloc(sizeof *w + rest);
    if (!w) return false;
    for (size_t i = done; i < 4; i++)
        w->data[i - done] = prefix[i];
    size_t from = done > 4 ? done - 4 : 0;
    memcpy(w->data + (done < 4 ? 4 - done : 0), data + from, len - from);
    uv_buf_t b = uv_buf_init((char *)w->data, (unsigned)rest);
    if (uv_write(&w->req, (uv_stream_t *)&c->tcp, &b, 1, on_tcp_written)) {
        free(w);
        return false;
    }
    return true;
}

static void send_to(uint64_t ctx, const uint8_t *data, size_t len)
{
    bool ok = false;
    if (CTX_KIND(ctx) == K_UDP && P.listening) {
        struct sockaddr_in a;
        udp_addr(ctx, &a);
        uv_buf_t b = uv_buf_init((char *)data, (unsigned)len);
        ok = uv_udp_try_send(&P.udp, &b, 1, (const struct sockaddr *)&a) >= 0;
    } else if (CTX_KIND(ctx) == K_TCP) {
        conn *c = conn_of(ctx);
        ok = c && tcp_send(c, data, len);
    }
    if (ok)
        P.st.replies++;
    else
        P.st.dropped++;
}

static bool client_alive(uint64_t ctx)
{
    return CTX_KIND(ctx) == K_UDP || (CTX_KIND(ctx) == K_TCP && conn_of(ctx));
}

/* ------------------------------------------------------ the /notify registry */

static void reply_fmt(uint64_t ctx, const char *addr, const char *types, ...);

static int reg_find(uint64_t ctx)
{
    for (uint32_t i = 0; i < P.nt.nreg; i++)
        if (P.nt.reg_ctx[i] == ctx) return (int)i;
    return -1;
}

/* scsynth's popAvailableClientID: the id asked for when it is free, else the
 * first free one. Freed ids go to the back. */
static int32_t pool_pop(int32_t want)
{
    uint32_t at = 0;
    if (want != -1)
        for (uint32_t i = 0; i < P.nt.navail; i++)
            if (P.nt.avail[i] == want) {
                at = i;
                break;
            }
    int32_t id = P.nt.avail[at];
    memmove(&P.nt.avail[at], &P.nt.avail[at + 1],
            (P.nt.navail - at - 1) * sizeof(int32_t));
    P.nt.navail--;
    return id;
}

static void reg_remove(int i)
{
    P.nt.avail[P.nt.navail++] = P.nt.reg_id[i];
    P.nt.nreg--;
    P.nt.reg_ctx[i] = P.nt.reg_ctx[P.nt.nreg];
    P.nt.reg_id[i] = P.nt.reg_id[P.nt.nreg];
}

static void forget_client(uint64_t ctx)
{
    int i = reg_find(ctx);
    if (i >= 0) reg_remove(i);
}

static bool inject(const uint8_t *p, size_t len, uint64_t ctx)
{
    if (P.host.inject(P.host.host, p, len, ctx)) {
        P.st.injected++;
        return true;
    }
    P.st.inject_failed++;
    return false;
}

/* A client's /notify: queue a marker whose reply says when scsynth would have
 * acted on it. The proxy's own registration goes first when it is needed. */
static void request_notify(uint64_t ctx, const uint8_t *p, size_t len)
{
    tutti__osc_msg m;
    tutti__osc_iter it;
    tutti__osc_msg_parse(p, len, &m);
    tutti__osc_iter_init(&it, &m);
    int32_t on = tutti__osc_iter_geti(&it, 0);
    int32_t req = tutti__osc_iter_geti(&it, -1);

    uint8_t buf[64];
    if (on && !P.nt.requested) {
        size_t n = tutti__osc_write(buf, sizeof buf, "/notify", "i", 1);
        if (inject(buf, n, CTX_SELF)) P.nt.requested = true;
    }
    for (uint32_t i = 0; i < MAX_MARKS; i++) {
        mark *k = &P.nt.marks[i];
        if (k->used) continue;
        size_t n = tutti__osc_write(buf, sizeof buf, "/status", "");
        if (!inject(buf, n, ctx_mark(i))) return;
        *k = (mark){true, on != 0, ctx, req};
        return;
    }
    P.st.dropped++; /* more than MAX_MARKS /notify in flight */
}

/* In a session the proxy hears of every node's end (a part's state forgets
 * synths that freed themselves), whether a client asked or not. */
static void self_notify(void)
{
    uint8_t buf[64];
    if (P.nt.requested) return;
    size_t n = tutti__osc_write(buf, sizeof buf, "/notify", "i", 1);
    if (inject(buf, n, CTX_SELF)) P.nt.requested = true;
}

/* The marker came back: act as NotifyCmd::Stage2 does, with the same replies. */
static void on_mark(uint32_t slot)
{
    if (slot >= MAX_MARKS || !P.nt.marks[slot].used) return;
    mark k = P.nt.marks[slot];
    P.nt.marks[slot].used = false;
    if (!client_alive(k.ctx)) return;
    int i = reg_find(k.ctx);
    if (k.on) {
        int32_t max = P.nt.max < MAX_LOGINS ? P.nt.max : MAX_LOGINS;
        if (!P.nt.registered)
            reply_fmt(k.ctx, "/fail", "ss", "/notify",
                      P.nt.fail[0] ? P.nt.fail : "too many users\n");
        else if (i >= 0)
            reply_fmt(k.ctx, "/fail", "ssi", "/notify", "notify: already registered\n",
                      P.nt.reg_id[i]);
        else if ((int32_t)P.nt.nreg >= max)
            reply_fmt(k.ctx, "/fail", "ss", "/notify", "too many users\n");
        else {
            int32_t id = pool_pop(k.req);
            P.nt.reg_ctx[P.nt.nreg] = k.ctx;
            P.nt.reg_id[P.nt.nreg++] = id;
            reply_fmt(k.ctx, "/done", "sii", "/notify", id, P.nt.max);
        }
    } else if (i >= 0) {
        reg_remove(i);
        reply_fmt(k.ctx, "/done", "s", "/notify");
    } else {
        reply_fmt(k.ctx, "/fail", "ss", "/notify", "not registered\n");
    }
}

/* A reply to `n` clients; in a session, in the ids they know (and not at
 * all when it is about another member's node). */
static void send_translated(const uint64_t *to, uint32_t n, const uint8_t *p, size_t len)
{
    static uint8_t buf[(size_t)1 << 20]; /* the loop thread's */
    ssize_t m = tutti__session_reply(p, len, buf, sizeof buf);
    if (m == 0) return;
    if (m > 0) p = buf, len = (size_t)m;
    for (uint32_t i = 0; i < n; i++)
        send_to(to[i], p, len);
}

/* Replies to the proxy's own registration, and every notification. */
static void on_self(const uint8_t *p, size_t len)
{
    tutti__osc_msg m;
    if (tutti__osc_msg_parse(p, len, &m)) return;
    bool done = m.addr && !strcmp(m.addr, "/done"),
         fail = m.addr && !strcmp(m.addr, "/fail");
    if (done || fail) {
        tutti__osc_iter it;
        tutti__osc_iter_init(&it, &m);
        const char *cmd = tutti__osc_iter_gets(&it, NULL);
        if (cmd && !strcmp(cmd, "/notify")) {
            if (done && m.tags && !strcmp(m.tags, "sii")) {
                int32_t id = tutti__osc_iter_geti(&it, -1);
                int32_t max = tutti__osc_iter_geti(&it, 0);
                if (!P.nt.registered && max > 0) {
                    P.nt.registered = true;
                    P.nt.max = max;
                    P.nt.navail = 0;
                    for (int32_t k = 0; k < max && k < MAX_LOGINS; k++)
                        P.nt.avail[P.nt.navail++] = k;
                    logf_("tutti: registered with the server for notifications (its "
                          "client id %d)",
                          id);
                }
            } else if (fail) {
                const char *why = tutti__osc_iter_gets(&it, "");
                snprintf(P.nt.fail, sizeof P.nt.fail, "%s", why ? why : "");
                P.nt.requested = false;
                logf_("tutti: the server refused the proxy's /notify: %s", P.nt.fail);
            }
            return;
        }
    }
    /* Sending can drop a client that stopped reading (and its registration),
     * so go through a copy of the list. */
    uint64_t to[MAX_LOGINS];
    uint32_t n = P.nt.nreg;
    memcpy(to, P.nt.reg_ctx, n * sizeof to[0]);
    P.st.notifications++;
    send_translated(to, n, p, len);
}

/* ------------------------------------------------------ session control */

/* One key/value pair of /tutti/status: a string, an int, a float or a
 * double (docs/plugin.md lists them with their units). */
typedef struct kv {
    const char *key;
    char type;
    const char *s;
    double n;
} kv;

/* Appends a padded OSC string at `at` (> 0); the new end, or 0 when it does
 * not fit (and 0 stays 0). */
static size_t put_str(uint8_t *out, size_t at, size_t cap, const char *str)
{
    size_t n = strlen(str) + 1, padded = (n + 3) & ~(size_t)3;
    if (!at || at + padded > cap) return 0;
    memset(out + at, 0, padded);
    memcpy(out + at, str, n - 1);
    return at + padded;
}

/* "/tutti/status" with the pairs as arguments (key always a string). 0 when
 * `cap` is too small. */
static size_t write_kv(uint8_t *out, size_t cap, const kv *kvs, size_t n)
{
    char tags[2 + 2 * 96] = ",";
    if (n > 96) return 0;
    for (size_t i = 0; i < n; i++) {
        tags[1 + 2 * i] = 's';
        tags[2 + 2 * i] = kvs[i].type;
    }
    tags[1 + 2 * n] = 0;
    if (cap < 16) return 0;
    memcpy(out, "/tutti/status\0\0\0", 16); /* the address; put_str() takes at > 0 */
    size_t at = put_str(out, 16, cap, tags);
    for (size_t i = 0; at && i < n; i++) {
        at = put_str(out, at, cap, kvs[i].key);
        if (!at) break;
        if (kvs[i].type == 's') {
            at = put_str(out, at, cap, kvs[i].s ? kvs[i].s : "");
            continue;
        }
        if (kvs[i].type == 'd') {
            if (at + 8 > cap) return 0;
            uint64_t u;
            memcpy(&u, &kvs[i].n, sizeof u);
            tutti__osc_wr64(out + at, u);
            at += 8;
            continue;
        }
        if (at + 4 > cap) return 0;
        uint32_t w;
        if (kvs[i].type == 'i') {
            w = (uint32_t)(int32_t)kvs[i].n;
        } else {
            float f = (float)kvs[i].n;
            memcpy(&w, &f, 4);
        }
        tutti__osc_wr32(out + at, w);
        at += 4;
    }
    return at;
}

static void session_status(uint64_t ctx)
{
    tutti__session_status st;
    tutti__session_status_get(&st);
    tutti__beat_stats bs;
    tutti__beat_stats_get(&bs);
    /* The timeline as doubles (beat tl_beat0 at session time tl_t0, ns since
     * 1900: a double of that has a resolution of 512 ns; the feed gives the
     * same in seconds) */
    char guard[600];
    tutti__session_guard_text(guard, sizeof guard);
    tutti__linkhost_status ls;
    tutti__linkhost_status_get(&ls);
    const kv kvs[] = {
        {"mode", 's', st.joined ? "session" : "joining", 0},
        {"carried", 'i', NULL, st.carried},
        {"port", 'i', NULL, P.port},
        {"hub", 's', st.hub, 0},
        {"session", 's', st.session, 0},
        {"name", 's', st.name, 0},
        {"journal", 's', st.journal, 0},
        {"id", 'i', NULL, st.id},
        {"part", 'i', NULL, st.part},
        {"members", 'i', NULL, st.members},
        {"clock_locked", 'i', NULL, st.clock_locked},
        {"clock_settled", 'i', NULL, st.clock_settled},
        {"horizon_ms", 'f', NULL, st.horizon_ns / 1e6},
        {"clock_offset_ms", 'f', NULL, st.clock_offset_ns / 1e6},
        {"clock_bound_ms", 'f', NULL, st.clock_bound_ns / 1e6},
        {"role", 's', st.joined ? tutti_role_name(st.role) : "", 0},
        {"latency_ms", 'f', NULL, (st.horizon_ns + TUTTI_CLIENT_MARGIN) / 1e6},
        {"bpm", 'd', NULL, st.bpm},
        {"quantum", 'd', NULL, st.quantum},
        {"bar", 'i', NULL, (double)st.bar},
        {"bar_phase", 'd', NULL, st.bar_phase},
        {"playing", 'i', NULL, st.playing},
        {"timeline_t0_ns", 'd', NULL, (double)st.tl_t0},
        {"timeline_beat0", 'd', NULL, st.tl_beat0},
        {"timeline_seq", 'i', NULL, (double)st.tl_seq},
        {"change_pending", 'i', NULL, st.pending},
        {"next_t0_ns", 'd', NULL, st.pending ? (double)st.next.t0 : 0},
        {"next_beat0", 'd', NULL, st.pending ? st.next.beat0 : 0},
        {"next_bpm", 'd', NULL, st.pending ? st.next.bpm : 0},
        {"next_playing", 'i', NULL, st.pending ? st.next.playing : 0},
        {"rtt_ms", 'f', NULL, st.rtt_ns / 1e6},
        {"submitted", 'i', NULL, (double)st.submitted},
        {"submit_failed", 'i', NULL, (double)st.submit_failed},
        {"delivered", 'i', NULL, (double)st.delivered},
        {"late", 'i', NULL, (double)st.late},
        {"moved", 'i', NULL, (double)st.moved},
        {"late_injected", 'i', NULL, (double)st.late_injected},
        {"turn_max_ms", 'f', NULL, st.turn_max_ns / 1e6},
        {"inject_wait_max_ms", 'f', NULL, st.wait_max_ns / 1e6},
        {"file_job_max_ms", 'f', NULL, st.work_max_ns / 1e6},
        {"inject_lead_min_ms", 'f', NULL, st.lead_min_ns / 1e6},
        {"injected", 'i', NULL, (double)st.injected},
        {"inject_failed", 'i', NULL, (double)st.inject_failed},
        {"invalid_events", 'i', NULL, (double)st.invalid},
        {"packets", 'i', NULL, (double)P.st.packets},
        {"malformed", 'i', NULL, (double)P.st.invalid},
        {"local", 'i', NULL, (double)P.st.local},
        {"refused", 'i', NULL, (double)P.st.refused_in_session},
        {"state_messages", 'i', NULL, (double)st.state_messages},
        {"states_sent", 'i', NULL, (double)st.replays_sent},
        {"states_failed", 'i', NULL, (double)st.replay_failed},
        {"held", 'i', NULL, (double)st.held},
        {"queries_here", 'i', NULL, (double)st.queries_here},
        {"recorded_here", 'i', NULL, (double)st.recorded_here},
        {"server_check", 's',
         !st.check_rounds   ? "waiting"
         : st.check_differs ? "DIFFERENT"
                            : "identical",
         0},
        {"checks", 'i', NULL, (double)st.check_rounds},
        {"checks_identical", 'i', NULL, (double)st.check_identical},
        {"check_diffs", 'i', NULL, (double)st.check_diffs},
        {"check_servers", 'i', NULL, (double)st.check_servers},
        {"check_late", 'i', NULL, (double)st.check_late},
        {"guard", 's', guard, 0},
        {"assets_refused", 'i', NULL, (double)st.assets_refused},
        {"nodes_refused", 'i', NULL, (double)st.nodes_refused},
        {"sealed", 'i', NULL, st.sealed},
        {"hub_verified", 'i', NULL, st.hub_verified},
        {"unsealed_dropped", 'i', NULL, (double)st.unsealed_dropped},
        {"check_skipped", 'i', NULL, (double)st.check_skipped},
        {"check_last", 's', st.check_last, 0},
        {"feed_clients", 'i', NULL, tutti__feed_subscribers()},
        {"anchors", 'i', NULL, (double)bs.anchors},
        {"anchor_restarts", 'i', NULL, (double)bs.restarts},
        {"anchor_err_max_us", 'f', NULL, bs.err_max_us},
        {"anchor_err_rms_us", 'f', NULL, bs.err_rms_us},
        {"block_clock_ppm", 'f', NULL, bs.ppm},
        {"retimed", 'i', NULL, (double)bs.retimed},
        {"retime_clamped", 'i', NULL, (double)bs.retime_clamped},
        {"retime_held", 'i', NULL, (double)st.held_back},
        {"retime_restarts", 'i', NULL, (double)bs.retime_restarts},
        {"retime_last_us", 'f', NULL, bs.retime_last_us},
        /* the LAN's Link bridge (linkhost.h, docs/link.md) */
        {"link", 's', tutti__linkhost_state_name(&ls), 0},
        {"link_peers", 'i', NULL, ls.b.link_peers},
        {"link_bridges", 'i', NULL, ls.b.bridges},
        {"link_bpm", 'd', NULL, ls.b.link_bpm},
        {"link_playing", 'i', NULL, ls.b.link_playing},
        {"link_locked", 'i', NULL, ls.b.locked},
        {"link_phase_error_ms", 'f', NULL, ls.b.phase_error_ms},
        {"link_max_error_ms", 'f', NULL, ls.b.max_error_ms},
        {"link_commits", 'i', NULL, (double)ls.b.commits},
        {"link_reasserts", 'i', NULL, (double)ls.b.reasserts},
        {"link_switches", 'i', NULL, (double)ls.b.switches},
        {"link_local_changes", 'i', NULL, (double)ls.b.local_changes},
        {"link_proposals", 'i', NULL, (double)ls.b.proposals},
        {"link_error", 's', ls.error, 0},
    };
    uint8_t buf[8192];
    size_t n = write_kv(buf, sizeof buf, kvs, sizeof kvs / sizeof kvs[0]);
    if (n) send_to(ctx, buf, n);
}

/* /tutti/members: an (id, name, part) triple for each member. */
static void members_reply(uint64_t ctx)
{
    tutti_member_info info[TUTTI_PARTS];
    uint32_t n = tutti__session_members(info, TUTTI_PARTS);
    if (n > TUTTI_PARTS) n = TUTTI_PARTS;
    uint8_t buf[4096];
    char tags[2 + 3 * TUTTI_PARTS] = ",";
    for (uint32_t i = 0; i < n; i++)
        memcpy(tags + 1 + 3 * i, "isi", 3);
    tags[1 + 3 * n] = 0;
    memcpy(buf, "/tutti/members\0\0", 16);
    size_t at = put_str(buf, 16, sizeof buf, tags);
    for (uint32_t i = 0; at && i < n; i++) {
        if (at + 4 > sizeof buf) return;
        tutti__osc_wr32(buf + at, info[i].id);
        at = put_str(buf, at + 4, sizeof buf, info[i].name);
        if (!at || at + 4 > sizeof buf) return;
        tutti__osc_wr32(buf + at, tutti_member_part(info[i].id));
        at += 4;
    }
    if (at) send_to(ctx, buf, at);
}

/* The feed's commands (feed.h): subscribing, and timeline proposals, which
 * a member whose role may not make them is told at once. */
static bool feed_command(uint64_t ctx, const uint8_t *p, size_t len)
{
    tutti__feed_cmd c;
    char why[160];
    int rc = tutti__feed_parse(p, len, &c, why, sizeof why);
    if (rc == 0) return false;
    if (rc < 0) {
        reply_fmt(ctx, "/fail", "ss", "/cmd", why);
        return true;
    }
    if (c.what == TUTTI__FEED_NOTIFY) {
        tutti__feed_subscribe(ctx, c.value != 0);
        return true;
    }
    const char *name = c.what == TUTTI__FEED_BPM ? "tutti bpm" : "tutti transport";
    tutti__session_status st;
    tutti__session_status_get(&st);
    if (!st.joined) {
        snprintf(why, sizeof why, "%s: not in a session (join one first)", name);
        reply_fmt(ctx, "/fail", "ss", "/cmd", why);
        return true;
    }
    if (st.role != TUTTI_ROLE_CONDUCTOR && st.role != TUTTI_ROLE_ADMIN) {
        snprintf(why, sizeof why,
                 "%s: the session's tempo and transport are a conductor's (this member "
                 "joined as %s)",
                 name, tutti_role_name(st.role));
        reply_fmt(ctx, "/fail", "ss", "/cmd", why);
        return true;
    }
    rc = c.what == TUTTI__FEED_BPM ? tutti__session_propose_bpm(c.value)
                                   : tutti__session_propose_transport(c.value != 0);
    if (rc) {
        snprintf(why, sizeof why, "%s: %s", name, tutti_strerror(rc));
        reply_fmt(ctx, "/fail", "ss", "/cmd", why);
    } else {
        reply_fmt(ctx, "/done", "ss", "/cmd", name);
    }
    return true;
}

/* The next argument as a number, whatever its numeric type (Sonic Pi sends
 * floats, sclang ints or floats); `dflt` when it is not a number. */
static double arg_number(tutti__osc_iter *it, double dflt)
{
    const char *tags = it->m->tags;
    if (!tags || !tags[it->count]) return dflt;
    char t = tags[it->count];
    const uint8_t *p = it->rd;
    double v;
    if (t == 'i') {
        v = (int32_t)tutti__osc_rd32(p);
    } else if (t == 'f') {
        uint32_t u = tutti__osc_rd32(p);
        float f;
        memcpy(&f, &u, sizeof f);
        v = f;
    } else if (t == 'd') {
        uint64_t u = tutti__osc_rd64(p);
        memcpy(&v, &u, sizeof v);
    } else {
        return dflt;
    }
    it->rd += t == 'd' ? 8 : 4;
    it->count++;
    return v;
}

static void tutti_command(uint64_t ctx, tutti__osc_iter *it)
{
    const char *what = tutti__osc_iter_gets(it, NULL);
    if (what && !strcmp(what, "join")) {
        tutti__session_opts o = {0};
        o.hub = tutti__osc_iter_gets(it, NULL);
        o.session = tutti__osc_iter_gets(it, NULL);
        o.name = tutti__osc_iter_gets(it, NULL);
        o.journal = tutti__osc_iter_gets(it, NULL);
        o.role = tutti__osc_iter_gets(it, NULL);
        /* then the credential, as name/value pairs (session.h) */
        for (const char *k; (k = tutti__osc_iter_gets(it, NULL));) {
            const char *v = tutti__osc_iter_gets(it, NULL);
            if (!strcmp(k, "invite"))
                o.invite = v;
            else if (!strcmp(k, "passphrase"))
                o.passphrase = v;
            else if (!strcmp(k, "hub_key"))
                o.hub_key = v;
        }
        char why[TUTTI__NS_WHY_MAX] = "";
        int rc = tutti__session_join(&o, why, sizeof why);
        if (rc)
            reply_fmt(ctx, "/fail", "ss", "/cmd", why);
        else
            reply_fmt(ctx, "/done", "ss", "/cmd", "tutti join");
        if (!rc) self_notify();
        return;
    }
    if (what &&
        (!strcmp(what, "gain") || !strcmp(what, "mute") || !strcmp(what, "unmute"))) {
        /* this server's monitoring of a part (session.h): never an event */
        char who[64] = "", why[160];
        const char *t = it->m->tags;
        if (t && t[it->count] == 's')
            snprintf(who, sizeof who, "%s", tutti__osc_iter_gets(it, ""));
        else if (t && t[it->count])
            snprintf(who, sizeof who, "%d", (int)arg_number(it, -1));
        float gain = !strcmp(what, "mute")     ? 0.0f
                     : !strcmp(what, "unmute") ? 1.0f
                                               : (float)arg_number(it, NAN);
        int rc = tutti__session_monitor(who, gain, why, sizeof why);
        if (rc)
            reply_fmt(ctx, "/fail", "ss", "/cmd", why);
        else
            reply_fmt(ctx, "/done", "ss", "/cmd", "tutti gain");
        return;
    }
    if (what && !strcmp(what, "members")) {
        members_reply(ctx);
        return;
    }
    if (what && !strcmp(what, "link")) {
        /* the LAN's Link bridge on or off (linkhost.h): 1|0 or on|off */
        const char *t = it->m->tags;
        int on = -1;
        if (t && t[it->count] == 's') {
            const char *v = tutti__osc_iter_gets(it, "");
            on = !strcmp(v, "on") ? 1 : !strcmp(v, "off") ? 0 : -1;
        } else if (t && t[it->count]) {
            double v = arg_number(it, NAN);
            on = v == 1 ? 1 : v == 0 ? 0 : -1;
        }
        char why[200];
        int rc = TUTTI_EINVAL;
        if (on < 0)
            snprintf(why, sizeof why, "tutti link: say on or off (1 or 0)");
        else
            rc = tutti__linkhost_enable(on == 1, why, sizeof why);
        if (rc)
            reply_fmt(ctx, "/fail", "ss", "/cmd", why);
        else
            reply_fmt(ctx, "/done", "ss", "/cmd", on ? "tutti link on" : "tutti link off");
        return;
    }
    if (what && !strcmp(what, "leave")) {
        tutti__session_leave();
        reply_fmt(ctx, "/done", "ss", "/cmd", "tutti leave");
        return;
    }
    if (what && !strcmp(what, "status") && tutti__session_active()) {
        session_status(ctx);
        return;
    }
    if (what && !strcmp(what, "status")) {
        uint32_t tcp = 0;
        for (uint32_t i = 0; i < P.cfg.max_tcp; i++)
            tcp += P.conns[i].used && !P.conns[i].closing;
        /* key/value pairs: the mode, then ten counters, then the Link
         * bridge's setting */
        tutti__linkhost_status ls;
        tutti__linkhost_status_get(&ls);
        reply_fmt(ctx, "/tutti/status", "sssisisisisisisisisisiss", "mode", "solo", "port",
                  P.port, "packets", (int32_t)P.st.packets, "invalid",
                  (int32_t)P.st.invalid, "injected", (int32_t)P.st.injected,
                  "inject_failed", (int32_t)P.st.inject_failed, "replies",
                  (int32_t)P.st.replies, "dropped",
                  (int32_t)(P.st.dropped + atomic_load(&P.replies_lost)),
                  "notify_clients", (int32_t)P.nt.nreg, "tcp_clients", (int32_t)tcp,
                  "feed_clients", (int32_t)tutti__feed_subscribers(), "link",
                  tutti__linkhost_state_name(&ls));
        return;
    }
    char why[384];
    snprintf(why, sizeof why,
             "tutti: no command \"%s\" (commands: join HUB SESSION NAME [JOURNAL [ROLE "
             "[invite INV] [passphrase P] [hub_key HEX]]], leave, status, members, notify "
             "1|0, bpm BPM, transport 1|0, gain WHO G, mute WHO, unmute WHO, link on|off)",
             what ? what : "");
    reply_fmt(ctx, "/fail", "ss", "/cmd", why);
}

static void reply_fmt(uint64_t ctx, const char *addr, const char *types, ...)
{
    uint8_t buf[1024];
    va_list ap;
    va_start(ap, types);
    size_t n = tutti__osc_vwrite(buf, sizeof buf, addr, types, ap);
    va_end(ap);
    if (n) send_to(ctx, buf, n);
}

/* -------------------------------------------------------- client packets */

static bool is_notify(void *ctx, const uint8_t *p, size_t len)
{
    (void)ctx;
    tutti__osc_msg m;
    return !tutti__osc_msg_parse(p, len, &m) &&
           tutti__osc_msg_is(&m, "/notify", TUTTI_OSC_CMD_NOTIFY);
}

static int visit_notify(void *ctx, const uint8_t *p, size_t len)
{
    if (is_notify(NULL, p, len)) request_notify(*(const uint64_t *)ctx, p, len);
    return 0;
}

static int count_notify(void *ctx, const uint8_t *p, size_t len)
{
    *(int *)ctx += is_notify(NULL, p, len);
    return 0;
}

static bool is_tutti_cmd(const uint8_t *p, size_t len)
{
    tutti__osc_msg m;
    if (tutti__osc_msg_parse(p, len, &m) || !tutti__osc_msg_is(&m, "/cmd", TUTTI_OSC_CMD_CMD))
        return false;
    tutti__osc_iter it;
    tutti__osc_iter_init(&it, &m);
    const char *name = tutti__osc_iter_gets(&it, NULL);
    return name && !strcmp(name, "tutti");
}

/* A message for this server alone: in solo every message, in a session the
 * ones the namespace rules keep local. */
static void local_message(uint64_t ctx, const uint8_t *p, size_t len)
{
    tutti__osc_msg m;
    tutti__osc_msg_parse(p, len, &m);
    if (tutti__osc_msg_is(&m, "/notify", TUTTI_OSC_CMD_NOTIFY)) {
        request_notify(ctx, p, len);
        return;
    }
    if (tutti__osc_msg_is(&m, "/cmd", TUTTI_OSC_CMD_CMD)) {
        tutti__osc_iter it;
        tutti__osc_iter_init(&it, &m);
        const char *name = tutti__osc_iter_gets(&it, NULL);
        if (name && !strcmp(name, "tutti")) {
            if (!feed_command(ctx, p, len)) tutti_command(ctx, &it);
            return;
        }
    }
    inject(p, len, ctx);
}

/* ------------------------------------------------- client packets, session */

static int classify(const uint8_t *p, size_t len)
{
    return is_tutti_cmd(p, len) ? TUTTI_NS_LOCAL : tutti__ns_classify(p, len);
}

/* A message a session cannot play: say so to the client, as scsynth would
 * for a command it cannot do. */
static void refuse(uint64_t ctx, const uint8_t *p, size_t len, int cls)
{
    tutti__osc_msg m;
    tutti__osc_msg_parse(p, len, &m);
    char addr[64];
    if (m.addr)
        snprintf(addr, sizeof addr, "%s", m.addr);
    else
        snprintf(addr, sizeof addr, "%d", m.cmd);
    (void)cls;
    const char *why = "tutti: this command has no meaning in a session";
    if (P.st.refused_in_session++ < 5)
        logf_("tutti: %s refused in the session (%s)", addr, why);
    reply_fmt(ctx, "/fail", "ss", addr, why);
}

static int submit(uint64_t ctx, const uint8_t *p, size_t len)
{
    int rc = tutti__session_submit(ctx, p, len);
    if (rc && P.st.dropped++ < 5)
        logf_("tutti: a packet was not played: %s%s", tutti_strerror(rc),
              rc == TUTTI_ESTATE ? " (the session is not joined yet)" : "");
    return rc;
}

/* A message that names a file here: shared with the session by content, or
 * refused with the reason. */
static void file_message(uint64_t ctx, const uint8_t *p, size_t len)
{
    char why[256];
    if (!tutti__session_submit_file(ctx, p, len, why, sizeof why)) return;
    const char *name = tutti__ns_command_name(p, len);
    if (P.st.refused_in_session++ < 5)
        logf_("tutti: %s refused in the session: %s", name ? name : "?", why);
    reply_fmt(ctx, "/fail", "ss", name ? name : "?", why);
}

static int visit_local(void *ctx, const uint8_t *p, size_t len)
{
    int cls = classify(p, len);
    if (cls == TUTTI_NS_LOCAL) {
        P.st.local++;
        local_message(*(const uint64_t *)ctx, p, len);
    } else if (cls == TUTTI_NS_LOCAL_FILE) {
        file_message(*(const uint64_t *)ctx, p, len);
    } else if (cls != TUTTI_NS_SESSION) {
        refuse(*(const uint64_t *)ctx, p, len, cls);
    }
    return 0;
}

static bool not_session(void *ctx, const uint8_t *p, size_t len)
{
    (void)ctx;
    return classify(p, len) != TUTTI_NS_SESSION;
}

/* A group asked for "now" (/g_new or /p_new outside a timed bundle) is made
 * at the session's time, a horizon later; its /n_go goes to the clients as
 * soon as the session has it, as a server would answer at once. Nothing a
 * client sends after it can run before it, and clients that wait for the
 * /n_go before going on (Sonic Pi's with_fx) keep their time. */
static void answer_groups(const uint8_t *p, size_t len)
{
    const char *name = tutti__ns_command_name(p, len);
    tutti__osc_msg m;
    if (!name || (strcmp(name, "/g_new") && strcmp(name, "/p_new")) ||
        tutti__osc_msg_parse(p, len, &m) || !m.tags)
        return;
    tutti__osc_iter it;
    tutti__osc_iter_init(&it, &m);
    for (size_t k = strlen(m.tags) / 3; k > 0; k--) {
        int32_t id = tutti__osc_iter_geti(&it, -1);
        int32_t action = tutti__osc_iter_geti(&it, 0);
        int32_t target = tutti__osc_iter_geti(&it, 0);
        if (id < 0) continue;
        tutti__session_announce(id);
        uint64_t to[MAX_LOGINS];
        uint32_t n = P.nt.nreg;
        memcpy(to, P.nt.reg_ctx, n * sizeof to[0]);
        for (uint32_t i = 0; i < n; i++)
            reply_fmt(to[i], "/n_go", "iiiiiii", id, action <= 1 ? target : -1, -1, -1, 1,
                      -1, -1);
    }
}

static void session_packet(uint64_t ctx, const uint8_t *p, size_t len)
{
    if (!tutti__osc_is_bundle(p, len)) {
        if (tutti__session_record(ctx, p, len)) return; /* s.record: here alone */
        int cls = classify(p, len);
        if (cls == TUTTI_NS_SESSION) {
            if (tutti__session_query_here(ctx, p, len)) return;
            if (submit(ctx, p, len) == 0) answer_groups(p, len);
        } else
            visit_local(&ctx, p, len);
        return;
    }
    /* Local messages act now, on this server; the rest is one event. */
    tutti__osc_each_message(p, len, visit_local, &ctx);
    uint8_t *out = malloc(len);
    if (!out) return;
    size_t n = tutti__osc_filter_bundle(p, len, not_session, NULL, out);
    if (n > 16) submit(ctx, out, n);
    free(out);
}

/* ---------------------------------------------------- client packets, solo */

static void solo_packet(uint64_t ctx, const uint8_t *p, size_t len);

static int count_tutti_cmd(void *ctx, const uint8_t *p, size_t len)
{
    *(int *)ctx += is_tutti_cmd(p, len);
    return 0;
}

static void on_packet(uint64_t ctx, const uint8_t *p, size_t len)
{
    P.st.packets++;
    if (tutti__osc_check(p, len)) {
        if (P.st.invalid++ < 3)
            logf_("tutti: dropped a malformed OSC packet of %zu bytes (only the first "
                  "few are "
                  "logged; /cmd tutti status counts them)",
                  len);
        return;
    }
    if (tutti__session_routes()) {
        session_packet(ctx, p, len);
        return;
    }
    /* Solo, or joining: played here, and noted in the part's model, which a
     * join carries into the part (session.h). The proxy hears of every
     * node's end from then on, so the model forgets synths that ended. */
    if (!P.nt.requested) self_notify();
    int cmds = 0;
    if (tutti__osc_is_bundle(p, len))
        tutti__osc_each_message(p, len, count_tutti_cmd, &cmds);
    else
        cmds = is_tutti_cmd(p, len);
    if (!tutti__session_solo(ctx, p, len, cmds == 0, solo_packet)) session_packet(ctx, p, len);
}

static void solo_packet(uint64_t ctx, const uint8_t *p, size_t len)
{
    if (!tutti__osc_is_bundle(p, len)) {
        local_message(ctx, p, len);
        return;
    }
    int notifies = 0;
    tutti__osc_each_message(p, len, count_notify, &notifies);
    if (!notifies) {
        inject(p, len, ctx);
        return;
    }
    tutti__osc_each_message(p, len, visit_notify, &ctx);
    uint8_t *out = malloc(len);
    if (!out) return;
    size_t n = tutti__osc_filter_bundle(p, len, is_notify, NULL, out);
    if (n > 16) inject(out, n, ctx);
    free(out);
}

/* ------------------------------------------------------------------ UDP */

static void udp_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    (void)h, (void)suggested;
    *buf = uv_buf_init((char *)udp_buf, sizeof udp_buf);
}

static void udp_recv(uv_udp_t *h, ssize_t n, const uv_buf_t *buf,
                     const struct sockaddr *addr, unsigned flags)
{
    (void)h;
    if (n <= 0 || !addr || addr->sa_family != AF_INET) return;
    if (flags & UV_UDP_PARTIAL) {
        P.st.packets++;
        P.st.invalid++;
        return;
    }
    on_packet(ctx_udp((const struct sockaddr_in *)addr), (const uint8_t *)buf->base,
              (size_t)n);
}

/* ------------------------------------------------------------------ TCP */

static void conn_closed(uv_handle_t *h)
{
    conn *c = h->data;
    free(c->buf);
    c->buf = NULL;
    c->len = c->cap = 0;
    c->used = c->closing = false;
    P.nconns--;
}

static void conn_close(conn *c)
{
    if (c->closing) return;
    c->closing = true;
    forget_client(ctx_tcp(c->slot, c->gen));
    tutti__feed_forget(ctx_tcp(c->slot, c->gen));
    uv_close((uv_handle_t *)&c->tcp, conn_closed);
}

static void tcp_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    (void)suggested;
    conn *c = h->data;
    size_t want = c->len + 65536, limit = P.cfg.max_packet + 4;
    if (want > limit) want = limit;
    if (c->cap < want) {
        size_t cap = c->cap ? c->cap : 65536;
        while (cap < want)
            cap *= 2;
        if (cap > limit) cap = limit;
        uint8_t *b = realloc(c->buf, cap);
        if (!b) {
            *buf = uv_buf_init(NULL, 0);
            return;
        }
        c->buf = b;
        c->cap = cap;
    }
    *buf = uv_buf_init((char *)c->buf + c->len, (unsigned)(c->cap - c->len));
}

static void tcp_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
    (void)buf;
    conn *c = s->data;
    if (n < 0) {
        conn_close(c);
        return;
    }
    c->len += (size_t)n;
    size_t off = 0;
    while (!c->closing && c->len - off >= 4) {
        const uint8_t *q = c->buf + off;
        uint32_t flen =
            (uint32_t)q[0] << 24 | (uint32_t)q[1] << 16 | (uint32_t)q[2] << 8 | q[3];
        if (flen > P.cfg.max_packet) {
            /* The framing is lost: nothing after this can be trusted. */
            P.st.packets++;
            P.st.invalid++;
            conn_close(c);
            return;
        }
        if (c->len - off - 4 < flen) break;
        if (!c->validated) {
            /* scsynth's rule: the first packet is the password, 4 tries */
            size_t pl = strlen(P.cfg.password);
            c->validated = flen <= 32 && strnlen((const char *)q + 4, flen) == pl &&
                           !memcmp(q + 4, P.cfg.password, pl);
            if (!c->validated && (++c->tries >= 4 || flen > 32)) {
                P.st.password_refused++;
                logf_("tutti: a TCP client of the proxy port gave a wrong password "
                      "(scsynth's "
                      "-p); closed");
                conn_close(c);
                return;
            }
            off += 4 + (size_t)flen;
            continue;
        }
        on_packet(ctx_tcp(c->slot, c->gen), q + 4, flen);
        off += 4 + (size_t)flen;
    }
    if (c->closing) return;
    memmove(c->buf, c->buf + off, c->len - off);
    c->len -= off;
    if (c->len == c->cap && c->cap >= P.cfg.max_packet + 4) conn_close(c);
}

static void on_accept(uv_stream_t *server, int status)
{
    if (status < 0) return;
    conn *c = NULL;
    for (uint32_t i = 0; i < P.cfg.max_tcp; i++)
        if (!P.conns[i].used) {
            c = &P.conns[i];
            break;
        }
    uv_tcp_t *t = c ? &c->tcp : malloc(sizeof(uv_tcp_t));
    if (!t || uv_tcp_init(&P.loop, t)) {
        if (!c) free(t);
        return;
    }
    if (!c) {
        /* Over the limit: accept and close at once, so the client hears it. */
        P.st.tcp_refused++;
        (void)uv_accept(server, (uv_stream_t *)t);
        uv_close((uv_handle_t *)t, (uv_close_cb)free);
        return;
    }
    c->used = true;
    c->closing = false;
    c->validated = !P.cfg.password[0];
    c->tries = 0;
    c->gen++;
    c->len = 0;
    c->tcp.data = c;
    P.nconns++;
    if (uv_accept(server, (uv_stream_t *)&c->tcp) ||
        uv_read_start((uv_stream_t *)&c->tcp, tcp_alloc, tcp_read)) {
        conn_close(c);
        return;
    }
    uv_tcp_nodelay(&c->tcp, 1);
}

/* ----------------------------------------------------------- opening */

/* Binds a TCP listener and a UDP socket to the same port of 127.0.0.1. With
 * port 0 the TCP side picks one and UDP follows; a few tries cover the case
 * where that UDP port is taken. */
static int open_port(int port, int *tcp_fd, int *udp_fd)
{
    for (int attempt = 0; attempt < (port ? 1 : 32); attempt++) {
        int t = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        int u = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        if (t < 0 || u < 0) {
            if (t >= 0) close(t);
            if (u >= 0) close(u);
            return -errno;
        }
        int one = 1;
        setsockopt(t, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
        int err = inet_pton(AF_INET, P.cfg.bind, &a.sin_addr) == 1 ? 0 : -EINVAL;
        if (!err && (bind(t, (struct sockaddr *)&a, sizeof a) || listen(t, 64)))
            err = -errno;
        socklen_t al = sizeof a;
        if (!err && getsockname(t, (struct sockaddr *)&a, &al)) err = -errno;
        if (!err && bind(u, (struct sockaddr *)&a, sizeof a)) err = -errno;
        if (!err) {
            *tcp_fd = t;
            *udp_fd = u;
            return ntohs(a.sin_port);
        }
        close(t);
        close(u);
        if (port || err != -EADDRINUSE) return err;
    }
    return -EADDRINUSE;
}

/* TUTTI_HUB and TUTTI_NAME in the server's environment: join at once. */
static void auto_join(void)
{
    tutti__session_opts o = {getenv("TUTTI_HUB"),    getenv("TUTTI_SESSION"),
                             getenv("TUTTI_NAME"),   getenv("TUTTI_JOURNAL"),
                             getenv("TUTTI_ROLE"),   getenv("TUTTI_INVITE"),
                             NULL,                   getenv("TUTTI_HUB_KEY")};
    if (!o.hub || !*o.hub) return;
    char why[TUTTI__NS_WHY_MAX] = "", pass[1024] = "";
    const char *pf = getenv("TUTTI_PASSPHRASE_FILE");
    if (pf && *pf) {
        FILE *f = fopen(pf, "r");
        if (!f || !fgets(pass, sizeof pass, f)) {
            logf_("tutti: cannot join from TUTTI_HUB=%s: cannot read a passphrase from "
                  "TUTTI_PASSPHRASE_FILE=%s",
                  o.hub, pf);
            if (f) fclose(f);
            return;
        }
        fclose(f);
        pass[strcspn(pass, "\r\n")] = 0;
        o.passphrase = pass;
    }
    int rc = tutti__session_join(&o, why, sizeof why);
    tutti__auth_wipe(pass, sizeof pass);
    if (rc)
        logf_("tutti: cannot join from TUTTI_HUB=%s: %s", o.hub, why);
    else
        self_notify();
}

static void open_sockets(void)
{
    int t = -1, u = -1;
    int port = open_port(P.cfg.port, &t, &u);
    if (port < 0) {
        logf_("tutti: cannot open the proxy port %s:%d: %s (set TUTTI_PROXY_PORT%s)",
              P.cfg.bind, P.cfg.port, strerror(-port),
              port == -EINVAL ? "; TUTTI_PROXY_BIND is not an IPv4 address" : "");
        return;
    }
    uv_udp_init(&P.loop, &P.udp);
    uv_tcp_init(&P.loop, &P.listener);
    int sndbuf = 1 << 20;
    setsockopt(u, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof sndbuf);
    if (uv_udp_open(&P.udp, u) || uv_tcp_open(&P.listener, t) ||
        uv_udp_recv_start(&P.udp, udp_alloc, udp_recv) ||
        uv_listen((uv_stream_t *)&P.listener, 64, on_accept)) {
        logf_("tutti: cannot serve the proxy port %d", port);
        uv_close((uv_handle_t *)&P.udp, NULL);
        uv_close((uv_handle_t *)&P.listener, NULL);
        return;
    }
    P.port = port;
    P.listening = true;
    logf_("tutti: proxy listening on %s:%d (UDP and TCP), solo%s", P.cfg.bind, port,
          P.cfg.password[0] ? "; TCP clients give scsynth's -p password first" : "");
    if (strcmp(P.cfg.bind, "127.0.0.1"))
        logf_("tutti: warning: the proxy port is open beyond this machine "
              "(TUTTI_PROXY_BIND=%s): "
              "whoever reaches it plays on this server and in its session (UDP has no "
              "password, as scsynth's own UDP port has none)",
              P.cfg.bind);
    auto_join();
}

/* ------------------------------------------------ attaching to the server */

static uint64_t now_ms(void)
{
    return uv_hrtime() / 1000000u;
}

/* The server's own sockets are in this process: a bound UDP socket, or a
 * listening TCP socket, on IPv4 (scsynth opens no others). Sends each of them
 * `/cmd tutti_attach`; the shim's handler for it captures the World. */
static void send_attach(void)
{
    uint8_t msg[64];
    size_t n = tutti__osc_write(msg, sizeof msg, "/cmd", "s", "tutti_attach");
    struct rlimit rl;
    int maxfd = 1024;
    if (!getrlimit(RLIMIT_NOFILE, &rl) && rl.rlim_cur < 4096)
        maxfd = (int)rl.rlim_cur;
    else
        maxfd = 4096;
    for (int fd = 0; fd < maxfd; fd++) {
        int type, acc = 0;
        socklen_t l = sizeof type;
        if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &l)) continue;
        struct sockaddr_in a;
        socklen_t al = sizeof a;
        if (getsockname(fd, (struct sockaddr *)&a, &al) || a.sin_family != AF_INET ||
            !a.sin_port)
            continue;
        if (a.sin_addr.s_addr == htonl(INADDR_ANY))
            a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        if (type == SOCK_DGRAM) {
            int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
            if (s < 0) continue;
            (void)sendto(s, msg, n, 0, (struct sockaddr *)&a, sizeof a);
            close(s);
        } else if (type == SOCK_STREAM) {
            l = sizeof acc;
            if (getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &acc, &l) || !acc) continue;
            int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
            if (s < 0) continue;
            struct timeval tv = {0, 200000};
            setsockopt(s, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
            uint8_t frame[68] = {0, 0, 0, (uint8_t)n};
            memcpy(frame + 4, msg, n);
            if (!connect(s, (struct sockaddr *)&a, sizeof a))
                (void)send(s, frame, n + 4, MSG_NOSIGNAL);
            close(s);
        }
    }
}

/* The session as this server sees it, for the feed's clients and the
 * UGens' model (beat.h). */
static void look(void)
{
    static tutti__session_view v; /* the loop thread's */
    tutti__session_view_get(&v);
    tutti__feed_poll(&v);
    tutti__beat_update(v.offset_ns, v.tl, v.ntl);
}

/* The UGens' next anchor: a /cmd the server runs at a known time (beat.h). */
static void anchor(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    int64_t now = ((int64_t)ts.tv_sec + 2208988800LL) * TUTTI_S + ts.tv_nsec;
    /* the timer's 100 ms in TUTTI__BEAT_ANCHOR_EVERY steps */
    for (tutti_time k = 0; k < 100 * TUTTI_MS; k += TUTTI__BEAT_ANCHOR_EVERY) {
        uint8_t buf[64];
        size_t n = tutti__beat_anchor_packet(buf, sizeof buf,
                                             now + TUTTI__BEAT_ANCHOR_AHEAD + k);
        if (n) inject(buf, n, TUTTI_PROXY_CTX_DISCARD);
    }
}

static void on_timer(uv_timer_t *t)
{
    int r = P.host.ready(P.host.host);
    if (P.listening) { /* every 100 ms: a join's carry, if no delivery did it */
        tutti__session_poll();
        anchor();
        look();
        return;
    }
    if (r == TUTTI_PROXY_READY) {
        uv_timer_stop(t);
        open_sockets();
        if (P.listening) uv_timer_start(t, on_timer, 100, 100);
        return;
    }
    if (r != TUTTI_PROXY_WAIT_ATTACH || P.attach_tries >= ATTACH_TRIES) return;
    uint64_t now = now_ms();
    if (P.attach_tries && now - P.attach_last_ms < ATTACH_EVERY_MS) return;
    P.attach_last_ms = now;
    if (++P.attach_tries == ATTACH_TRIES)
        logf_(
            "tutti: found no server port to attach to; send \"/cmd tutti_attach\" to the "
            "server to start the proxy");
    send_attach();
}

/* ------------------------------------------------------ replies, the loop */

static void dispatch(uint64_t ctx, const uint8_t *p, size_t len)
{
    if (CTX_KIND(ctx) != K_CHECK && (ctx & TUTTI_PROXY_CTX_EVENT)) {
        tutti__session_event_reply((uint32_t)(ctx >> 48) & 31, p, len);
        ctx &= ~TUTTI_PROXY_CTX_EXTRA;
    }
    switch (CTX_KIND(ctx)) {
    case K_CHECK:
        tutti__session_check_reply((int64_t)(ctx & ((1ull << 48) - 1)), p, len);
        break;
    case K_SELF:
        on_self(p, len);
        break;
    case K_MARK:
        on_mark((uint32_t)(ctx & 0xffff));
        break;
    case K_DISCARD:
        break;
    default:
        send_translated(&ctx, 1, p, len);
    }
}

static void close_all(void)
{
    /* A producer holds the gate only to copy one reply and signal the loop. */
    while (atomic_flag_test_and_set_explicit(&P.gate, memory_order_acquire)) {
    }
    P.accepting = false;
    atomic_flag_clear_explicit(&P.gate, memory_order_release);

    uv_close((uv_handle_t *)&P.wake, NULL);
    uv_close((uv_handle_t *)&P.timer, NULL);
    if (P.listening) {
        uv_close((uv_handle_t *)&P.udp, NULL);
        uv_close((uv_handle_t *)&P.listener, NULL);
        P.listening = false;
    }
    for (uint32_t i = 0; i < P.cfg.max_tcp; i++)
        if (P.conns[i].used) conn_close(&P.conns[i]);
}

static void on_wake(uv_async_t *a)
{
    if (atomic_load(&P.stop)) {
        if (!P.stopping) {
            P.stopping = true;
            close_all();
        }
        return;
    }
    uint64_t ctx;
    size_t len;
    const uint8_t *p;
    int n = 0;
    while (n++ < DRAIN_BATCH && (p = tutti__ring_peek(&P.ring, &ctx, &len))) {
        dispatch(ctx, p, len);
        tutti__ring_pop(&P.ring);
    }
    if (P.listening && tutti__feed_stale()) look();
    if (n > DRAIN_BATCH) uv_async_send(a); /* more to do: come back after other work */
}

/* An ordinary thread, not a real-time one. scsynth runs its own network
 * thread at SCHED_FIFO 50 where it may; the same setting for this loop made
 * the proxy's added latency worse, not better, on the 2-core test machine
 * (p50 +45 us against +12 us, `tutti bench proxy`), so it is left alone. */
static void loop_main(void *arg)
{
    (void)arg;
    pthread_setname_np(pthread_self(), "tutti-proxy");
    uv_run(&P.loop, UV_RUN_DEFAULT);
}

int tutti__proxy_start(const tutti_proxy_config *cfg, const tutti_proxy_host *host)
{
    if (P.started) return TUTTI_ESTATE;
    if (cfg && host && cfg->port == TUTTI_PROXY_PORT_INVALID && host->log) {
        char line[160];
        snprintf(
            line, sizeof line,
            "tutti: TUTTI_PROXY_PORT=\"%.40s\" is not a port from 0 to 65535 (0 picks "
            "a free one); the proxy is not open",
            getenv("TUTTI_PROXY_PORT") ? getenv("TUTTI_PROXY_PORT") : "");
        host->log(host->host, line);
        return TUTTI_EINVAL;
    }
    if (!cfg || !host || !host->inject || !host->ready || cfg->port < 0 ||
        cfg->port > 65535 || !cfg->max_tcp || cfg->max_tcp > 65535 ||
        cfg->max_packet < 64 || cfg->max_packet > (1u << 30))
        return TUTTI_EINVAL;
    P.cfg = *cfg;
    P.host = *host;
    tutti__session_init(host);
    tutti__feed_init(send_to);
    P.conns = calloc(cfg->max_tcp, sizeof(conn));
    if (!P.conns) return TUTTI_ENOMEM;
    for (uint32_t i = 0; i < cfg->max_tcp; i++)
        P.conns[i].slot = i;
    tutti__ring_init(&P.ring, ring_buf, sizeof ring_buf);
    atomic_store(&P.stop, false);
    if (uv_loop_init(&P.loop)) goto fail;
    uv_async_init(&P.loop, &P.wake, on_wake);
    uv_timer_init(&P.loop, &P.timer);
    uv_timer_start(&P.timer, on_timer, 0, 5);
    P.accepting = true;
    if (uv_thread_create(&P.thread, loop_main, NULL)) {
        P.accepting = false;
        uv_close((uv_handle_t *)&P.wake, NULL);
        uv_close((uv_handle_t *)&P.timer, NULL);
        uv_run(&P.loop, UV_RUN_DEFAULT);
        uv_loop_close(&P.loop);
        goto fail;
    }
    P.started = true;
    return 0;
fail:
    free(P.conns);
    P.conns = NULL;
    return TUTTI_ENOMEM;
}

void tutti__proxy_stop(void)
{
    if (!P.started) return;
    atomic_store(&P.stop, true);
    uv_async_send(&P.wake);
    uv_thread_join(&P.thread);
    uv_loop_close(&P.loop);
    tutti__session_stop();
    free(P.conns);
    P.conns = NULL;
    P.started = false;
    logf_(
        "tutti: proxy stopped (%llu packets, %llu malformed, %llu replies, %llu dropped)",
        (unsigned long long)P.st.packets, (unsigned long long)P.st.invalid,
        (unsigned long long)P.st.replies,
        (unsigned long long)(P.st.dropped + atomic_load(&P.replies_lost)));
}

/* Called by the server's non-real-time thread. The gate admits one producer
 * at a time; a second one spins for a bounded while (the first only copies
 * bytes and writes to an eventfd) and, failing that, drops the reply and
 * counts it, rather than wait. scsynth 3.13 sends every reply from its one
 * non-real-time thread, so the gate is never contended there. */
void tutti__proxy_reply(uint64_t ctx, const void *data, size_t len)
{
    int spins = 0;
    while (atomic_flag_test_and_set_explicit(&P.gate, memory_order_acquire)) {
        if (++spins > GATE_SPINS) {
            atomic_fetch_add(&P.replies_lost, 1);
            return;
        }
    }
    if (P.accepting && !tutti__ring_push(&P.ring, ctx, data, len))
        uv_async_send(&P.wake);
    else
        atomic_fetch_add(&P.replies_lost, 1);
    atomic_flag_clear_explicit(&P.gate, memory_order_release);
}

void tutti__proxy_wake(void)
{
    int spins = 0;
    while (atomic_flag_test_and_set_explicit(&P.gate, memory_order_acquire))
        if (++spins > GATE_SPINS) return; /* the 100 ms poll sees it */
    if (P.accepting) uv_async_send(&P.wake);
    atomic_flag_clear_explicit(&P.gate, memory_order_release);
}
