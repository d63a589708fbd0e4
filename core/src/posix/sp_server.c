/*
 * An SP (Scalability Protocols) pair1 server on libuv TCP: the hub's side of
 * the connections that members open with NNG pair1 sockets (and nanomsg
 * pair sockets, which speak pair v0).
 *
 * Design notes
 * ------------
 * - Why not NNG's polyamorous pair1 socket: it keeps two messages per
 *   connection and silently drops the rest (NNG calls the mode deprecated).
 *   A hub sends a burst to every member whenever it relays, and repairs a
 *   drop by resending everything from the gap, which is another burst: at
 *   1,500 events/s NNG dropped 450,000 frames in ten seconds and members fell
 *   out of the resend window. Here a connection's queue is a libuv write
 *   queue, bounded only by `max_queue` bytes, so the hub never drops a frame
 *   of a connection that is reading; one that stops reading long enough to
 *   fill it is cut, and its member resumes (or is removed) through the
 *   protocol.
 * - The wire is exactly what NNG speaks, so NNG pair1 dialers connect
 *   unchanged: an 8-byte header each way, 0x00 'S' 'P' 0x00, the protocol
 *   number (pair1 = 0x0011, big endian) and two zero bytes; then messages as
 *   a 64-bit big-endian length followed by that many bytes, of which pair1
 *   puts a 32-bit big-endian hop count first. We send hop count 1. A wrong
 *   header, a length over the limit, a message too short for the hop count
 *   or a hop count over 255 close the connection (as NNG does); a hop count
 *   over 8 drops the message (NNG's default TTL).
 * - Pair v0 peers (protocol 0x0010: nanomsg, which has no pair1, so its tools
 *   such as `nanocat --pair`, and NNG's pair0) are let in too: the same
 *   framing without the hop count. A pair0 peer accepts only a pair0 answer,
 *   so the server sends its header once it has read the peer's, with the
 *   peer's protocol (both NNG and nanomsg send theirs first, without
 *   waiting). What a v0 peer sends is a tutti frame like any other; the hub
 *   does not know or care which version carried it.
 * - Messages for a connection are gathered in one buffer and written with one
 *   system call per loop iteration (tutti__sp_flush): a hub relays every
 *   event to every member, and one write per frame per member was most of
 *   its CPU time under load.
 * - Before authentication a connection is on probation: it must be marked
 *   authenticated (tutti__sp_set_authed, by the hub once a credential is
 *   proved) within the hello deadline or it is closed; at most max_unauth
 *   connections may be on probation at once, and a new one closes the
 *   oldest (an honest member proves itself within a round trip, a squatter
 *   never does, so squatters cannot lock reconnects out); and one address
 *   may hold at most per_addr connections, whatever their state. A sweep
 *   timer (a quarter of the deadline) enforces the deadline.
 * - Everything runs on the loop thread that owns the uv_loop_t: no locks. A
 *   connection is freed only in its close callback; callbacks into the owner
 *   may close connections (even the one being read) and the parser notices.
 */
#include "posix/sp_server.h"
#include "posix/url.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SP_HEADER 8
#define SP_LENGTH 8
#define PAIR1_HOP 4
#define PAIR1_MAX_HOPS 0xff
#define PAIR1_TTL 8
#define READ_CHUNK (64 * 1024)
#define MAX_CONNECTIONS 4096

typedef struct conn conn;

typedef struct wreq wreq;

struct conn {
    uv_tcp_t tcp; /* first: the handle's address is the conn's */
    tutti__sp_server *srv;
    conn *next;
    conn *next_dirty; /* in srv->dirty while `out` waits for a flush */
    wreq *out;        /* messages gathered since the last flush */
    uint32_t id;
    bool up;    /* both headers exchanged */
    bool pair0; /* the peer speaks pair v0: no hop counts */
    bool closing;
    bool authed; /* the owner vouched for it */
    bool linger; /* close once what is queued has been written */
    uint64_t addr; /* a hash of the peer's address */
    uint64_t accepted_ms;
    uv_shutdown_t shut;
    uint8_t *buf; /* received, not yet parsed */
    size_t len, cap;
};

struct tutti__sp_server {
    uv_tcp_t listener;
    uv_loop_t *loop;
    tutti__sp_callbacks cb;
    uint16_t proto;
    size_t max_msg, max_queue;
    conn *conns;
    conn *dirty;
    uint32_t nconns, next_id;
    uint32_t open_handles; /* listener + connections not yet closed */
    bool closing;
    uv_timer_t sweep;
    uint32_t per_addr, max_unauth;
    uint64_t deadline_ms;
    tutti__sp_stats stats;
};

struct wreq {
    uv_write_t req;
    conn *c;
    size_t len, cap;
    uint8_t data[];
};

static void logf_(tutti__sp_server *s, int level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void logf_(tutti__sp_server *s, int level, const char *fmt, ...)
{
    if (!s->cb.log) return;
    char buf[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    s->cb.log(s->cb.ctx, level, buf);
}

static void put_be64(uint8_t *p, uint64_t v)
{
    for (int i = 7; i >= 0; i--, v >>= 8)
        p[i] = (uint8_t)v;
}

static uint64_t get_be64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = v << 8 | p[i];
    return v;
}

static void server_maybe_free(tutti__sp_server *s)
{
    if (s->closing && s->open_handles == 0) free(s);
}

static void on_listener_closed(uv_handle_t *h)
{
    tutti__sp_server *s = h->data;
    s->open_handles--;
    server_maybe_free(s);
}

static void on_sweep_closed(uv_handle_t *h)
{
    tutti__sp_server *s = h->data;
    s->open_handles--;
    server_maybe_free(s);
}

/* ------------------------------------------------------- connections */

static void on_conn_closed(uv_handle_t *h)
{
    conn *c = (conn *)h;
    tutti__sp_server *s = c->srv;
    for (conn **p = &s->conns; *p; p = &(*p)->next) {
        if (*p == c) {
            *p = c->next;
            break;
        }
    }
    s->nconns--;
    if (c->up && !s->closing && s->cb.down) s->cb.down(s->cb.ctx, c->id);
    free(c->buf);
    free(c);
    s->open_handles--;
    server_maybe_free(s);
}

static void conn_close(conn *c)
{
    if (c->closing) return;
    c->closing = true;
    if (c->out) {
        for (conn **p = &c->srv->dirty; *p; p = &(*p)->next_dirty) {
            if (*p == c) {
                *p = c->next_dirty;
                break;
            }
        }
        free(c->out);
        c->out = NULL;
    }
    uv_read_stop((uv_stream_t *)&c->tcp);
    uv_close((uv_handle_t *)&c->tcp, on_conn_closed);
}

static void on_written(uv_write_t *req, int status)
{
    wreq *w = (wreq *)req;
    conn *c = w->c;
    free(w);
    if (status < 0 && status != UV_ECANCELED && !c->closing) {
        logf_(c->srv, TUTTI_LOG_DEBUG, "connection %u: write failed: %s", (unsigned)c->id,
              uv_strerror(status));
        conn_close(c);
    }
}

/* Queue bytes (`head` then `body`) as one write. */
static int conn_write(conn *c, const uint8_t *head, size_t hlen, const uint8_t *body,
                      size_t blen)
{
    wreq *w = malloc(sizeof *w + hlen + blen);
    if (!w) return TUTTI_ENOMEM;
    w->c = c;
    w->len = w->cap = hlen + blen;
    memcpy(w->data, head, hlen);
    if (blen) memcpy(w->data + hlen, body, blen);
    uv_buf_t b = uv_buf_init((char *)w->data, (unsigned)(hlen + blen));
    int rv = uv_write(&w->req, (uv_stream_t *)&c->tcp, &b, 1, on_written);
    if (rv < 0) {
        free(w);
        conn_close(c);
        return TUTTI_ECLOSED;
    }
    return 0;
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *out)
{
    (void)suggested;
    conn *c = (conn *)h;
    if (c->cap - c->len < READ_CHUNK) {
        size_t cap = c->cap ? c->cap : READ_CHUNK;
        while (cap - c->len < READ_CHUNK)
            cap *= 2;
        uint8_t *p = realloc(c->buf, cap);
        if (!p) {
            *out = uv_buf_init(NULL, 0); /* libuv reports UV_ENOBUFS */
            return;
        }
        c->buf = p;
        c->cap = cap;
    }
    *out = uv_buf_init((char *)c->buf + c->len, (unsigned)(c->cap - c->len));
}

/* Consume complete messages; false if the connection was closed. */
static bool parse(conn *c)
{
    tutti__sp_server *s = c->srv;
    size_t p = 0;
    if (!c->up) {
        if (c->len < SP_HEADER) return true;
        const uint8_t *b = c->buf;
        uint16_t peer = (uint16_t)(b[4] << 8 | b[5]);
        if (b[0] != 0 || b[1] != 'S' || b[2] != 'P' || b[3] != 0 || b[6] != 0 ||
            b[7] != 0) {
            logf_(
                s, TUTTI_LOG_WARN,
                "connection %u closed: it does not speak the SP protocol (a tutti member "
                "connects with an NNG pair1 socket)",
                (unsigned)c->id);
            if (s->cb.refused) s->cb.refused(s->cb.ctx);
            conn_close(c);
            return false;
        }
        c->pair0 = s->proto == TUTTI__SP_PAIR1 && peer == TUTTI__SP_PAIR0;
        if (peer != s->proto && !c->pair0) {
            logf_(s, TUTTI_LOG_WARN,
                  "connection %u closed: SP protocol 0x%04x is neither pair1 (0x%04x) nor "
                  "pair0 (0x%04x)",
                  (unsigned)c->id, (unsigned)peer, (unsigned)s->proto,
                  (unsigned)TUTTI__SP_PAIR0);
            if (s->cb.refused) s->cb.refused(s->cb.ctx);
            conn_close(c);
            return false;
        }
        const uint8_t hdr[SP_HEADER] = {0, 'S', 'P', 0, (uint8_t)(peer >> 8), (uint8_t)peer,
                                        0, 0};
        if (conn_write(c, hdr, sizeof hdr, NULL, 0) != 0) return false;
        if (c->pair0)
            logf_(s, TUTTI_LOG_DEBUG, "connection %u speaks pair v0 (nanomsg)",
                  (unsigned)c->id);
        c->up = true;
        p = SP_HEADER;
        if (s->cb.up) s->cb.up(s->cb.ctx, c->id);
        if (c->closing) return false;
    }
    size_t hop = c->pair0 ? 0 : PAIR1_HOP;
    while (c->len - p >= SP_LENGTH) {
        uint64_t n = get_be64(c->buf + p);
        if (n > s->max_msg || n < hop) {
            logf_(s, TUTTI_LOG_WARN,
                  "connection %u closed: a message of %llu bytes (pair%d allows %zu to %zu)",
                  (unsigned)c->id, (unsigned long long)n, c->pair0 ? 0 : 1, hop, s->max_msg);
            if (s->cb.refused) s->cb.refused(s->cb.ctx);
            conn_close(c);
            return false;
        }
        if (c->len - p - SP_LENGTH < n) break; /* the rest is still on its way */
        const uint8_t *m = c->buf + p + SP_LENGTH;
        uint32_t hops = c->pair0 ? 1
                                 : (uint32_t)m[0] << 24 | (uint32_t)m[1] << 16 |
                                       (uint32_t)m[2] << 8 | m[3];
        if (hops > PAIR1_MAX_HOPS) {
            logf_(s, TUTTI_LOG_WARN, "connection %u closed: a pair1 hop count of %u",
                  (unsigned)c->id, (unsigned)hops);
            if (s->cb.refused) s->cb.refused(s->cb.ctx);
            conn_close(c);
            return false;
        }
        p += SP_LENGTH + (size_t)n;
        if (hops <= PAIR1_TTL && s->cb.message)
            s->cb.message(s->cb.ctx, c->id, m + hop, (size_t)n - hop);
        if (c->closing) return false;
        if (c->linger) break; /* nothing more is read from it */
    }
    if (p) {
        memmove(c->buf, c->buf + p, c->len - p);
        c->len -= p;
    }
    return true;
}

static void on_read(uv_stream_t *st, ssize_t nread, const uv_buf_t *b)
{
    (void)b;
    conn *c = (conn *)st;
    if (nread < 0) {
        if (nread != UV_EOF)
            logf_(c->srv, TUTTI_LOG_DEBUG, "connection %u: %s", (unsigned)c->id,
                  uv_strerror((int)nread));
        conn_close(c);
        return;
    }
    c->len += (size_t)nread;
    parse(c);
}

/* A hash of the peer's address (not its port), to count per address. */
static uint64_t peer_addr(uv_tcp_t *t)
{
    struct sockaddr_storage ss;
    int len = sizeof ss;
    if (uv_tcp_getpeername(t, (struct sockaddr *)&ss, &len) != 0) return 0;
    const uint8_t *p = NULL;
    size_t n = 0;
    if (ss.ss_family == AF_INET) {
        p = (const uint8_t *)&((struct sockaddr_in *)&ss)->sin_addr;
        n = 4;
    } else if (ss.ss_family == AF_INET6) {
        p = (const uint8_t *)&((struct sockaddr_in6 *)&ss)->sin6_addr;
        n = 16;
    }
    uint64_t h = 0xcbf29ce484222325ull;
    for (size_t i = 0; i < n; i++) h = (h ^ p[i]) * 0x100000001b3ull;
    return h;
}

static void on_sweep(uv_timer_t *t)
{
    tutti__sp_server *s = t->data;
    uint64_t now = uv_now(s->loop);
    for (conn *c = s->conns; c; c = c->next) {
        if (c->authed || c->closing || now - c->accepted_ms < s->deadline_ms) continue;
        s->stats.hello_timeouts++;
        logf_(s, TUTTI_LOG_DEBUG, "connection %u closed: no credential within %llu ms",
              (unsigned)c->id, (unsigned long long)s->deadline_ms);
        conn_close(c);
    }
}

static void on_connection(uv_stream_t *l, int status)
{
    tutti__sp_server *s = l->data;
    if (status < 0) {
        logf_(s, TUTTI_LOG_WARN, "accepting a connection failed: %s",
              uv_strerror(status));
        return;
    }
    conn *c = calloc(1, sizeof *c);
    if (!c) return; /* it stays in the backlog; accepted on the next attempt */
    c->srv = s;
    uv_tcp_init(s->loop, &c->tcp);
    s->open_handles++;
    c->next = s->conns;
    s->conns = c;
    s->nconns++;
    if (++s->next_id == 0) s->next_id = 1;
    c->id = s->next_id;
    if (uv_accept(l, (uv_stream_t *)&c->tcp) != 0) {
        conn_close(c);
        return;
    }
    if (s->nconns > MAX_CONNECTIONS) {
        logf_(s, TUTTI_LOG_WARN, "connection refused: already %u open",
              (unsigned)MAX_CONNECTIONS);
        s->stats.addr_refused++;
        conn_close(c);
        return;
    }
    c->addr = peer_addr(&c->tcp);
    c->accepted_ms = uv_now(s->loop);
    uint32_t same = 0, unauth = 0;
    conn *oldest = NULL;
    for (conn *o = s->conns; o; o = o->next) {
        if (o == c || o->closing) continue;
        same += o->addr == c->addr;
        if (!o->authed) {
            unauth++;
            oldest = o; /* the list is newest first */
        }
    }
    if (s->per_addr && same >= s->per_addr) {
        s->stats.addr_refused++;
        if (s->stats.addr_refused % 1000 == 1)
            logf_(s, TUTTI_LOG_WARN,
                  "connection refused: its address already has %u open (%llu refused so "
                  "far)",
                  (unsigned)same, (unsigned long long)s->stats.addr_refused);
        conn_close(c);
        return;
    }
    if (s->max_unauth && unauth >= s->max_unauth && oldest) {
        s->stats.evicted++;
        logf_(s, TUTTI_LOG_DEBUG,
              "connection %u closed: the oldest of %u without a credential yet",
              (unsigned)oldest->id, (unsigned)unauth);
        conn_close(oldest);
    }
    uv_tcp_nodelay(&c->tcp, 1);
    uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
}

static conn *find(tutti__sp_server *s, uint32_t id)
{
    for (conn *c = s->conns; c; c = c->next)
        if (c->id == id) return c;
    return NULL;
}

/* ------------------------------------------------------------- API */

int tutti__sp_listen(tutti__sp_server **out, uv_loop_t *loop, const char *url,
                     uint16_t proto, size_t max_msg, size_t max_queue,
                     const tutti__sp_callbacks *cb, char *bound, size_t bound_cap)
{
    char host[256], port[8];
    uint16_t pnum;
    const char *why;
    if (tutti__url_listen_parse(url, host, sizeof host, &pnum, &why)) {
        if (cb->log) {
            char msg[320];
            snprintf(msg, sizeof msg, "cannot listen on %.200s: %s", url, why);
            cb->log(cb->ctx, TUTTI_LOG_ERROR, msg);
        }
        return TUTTI_EINVAL;
    }
    snprintf(port, sizeof port, "%u", (unsigned)pnum);
    struct addrinfo hints, *ai = NULL;
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
    if (getaddrinfo(host[0] ? host : NULL, port, &hints, &ai) != 0 || !ai) {
        if (cb->log) {
            char msg[320];
            snprintf(msg, sizeof msg, "cannot listen on %s: unknown host \"%s\"", url,
                     host);
            cb->log(cb->ctx, TUTTI_LOG_ERROR, msg);
        }
        return TUTTI_EINVAL;
    }
    tutti__sp_server *s = calloc(1, sizeof *s);
    if (!s) {
        freeaddrinfo(ai);
        return TUTTI_ENOMEM;
    }
    s->loop = loop;
    s->cb = *cb;
    s->proto = proto;
    s->max_msg = max_msg;
    s->max_queue = max_queue;
    uv_tcp_init(loop, &s->listener);
    s->listener.data = s;
    uv_timer_init(loop, &s->sweep);
    s->sweep.data = s;
    s->open_handles = 2;
    /* Prefer IPv4 for a wildcard, as NNG does. */
    struct addrinfo *a = ai;
    if (!host[0])
        for (struct addrinfo *i = ai; i; i = i->ai_next)
            if (i->ai_family == AF_INET) {
                a = i;
                break;
            }
    int rv = uv_tcp_bind(&s->listener, a->ai_addr, 0);
    if (rv == 0) rv = uv_listen((uv_stream_t *)&s->listener, 128, on_connection);
    freeaddrinfo(ai);
    if (rv != 0) {
        logf_(s, TUTTI_LOG_ERROR, "cannot listen on %s: %s", url, uv_strerror(rv));
        /* Freed by the close callback when the caller next runs the loop. */
        s->closing = true;
        uv_close((uv_handle_t *)&s->sweep, on_sweep_closed);
        uv_close((uv_handle_t *)&s->listener, on_listener_closed);
        *out = NULL;
        return rv == UV_EADDRINUSE || rv == UV_EACCES || rv == UV_EADDRNOTAVAIL
                   ? TUTTI_ETRANSPORT
                   : TUTTI_EINVAL;
    }
    struct sockaddr_storage ss;
    int sl = sizeof ss;
    char ip[64] = "?";
    unsigned bport = 0;
    if (uv_tcp_getsockname(&s->listener, (struct sockaddr *)&ss, &sl) == 0) {
        if (ss.ss_family == AF_INET) {
            struct sockaddr_in *sin = (struct sockaddr_in *)&ss;
            uv_ip4_name(sin, ip, sizeof ip);
            bport = ntohs(sin->sin_port);
        } else {
            struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ss;
            char v6[56];
            uv_ip6_name(sin6, v6, sizeof v6);
            snprintf(ip, sizeof ip, "[%s]", v6);
            bport = ntohs(sin6->sin6_port);
        }
    }
    snprintf(bound, bound_cap, "tcp://%s:%u", ip, bport);
    *out = s;
    return 0;
}

int tutti__sp_send(tutti__sp_server *s, uint32_t id, const uint8_t *buf, size_t len)
{
    conn *c = find(s, id);
    if (!c || !c->up || c->closing) return TUTTI_ECLOSED;
    size_t hop = c->pair0 ? 0 : PAIR1_HOP;
    size_t need = SP_LENGTH + hop + len;
    size_t queued = uv_stream_get_write_queue_size((uv_stream_t *)&c->tcp);
    if (queued + (c->out ? c->out->len : 0) + need > s->max_queue) {
        logf_(s, TUTTI_LOG_WARN,
              "connection %u cut: more than %zu bytes wait for it; it is not reading",
              (unsigned)id, s->max_queue);
        conn_close(c);
        return TUTTI_EFULL;
    }
    wreq *w = c->out;
    if (!w || w->cap - w->len < need) {
        /* Not yet handed to libuv, so it may still move. */
        size_t cap = w ? 2 * w->cap : 16384;
        while (cap - (w ? w->len : 0) < need)
            cap *= 2;
        wreq *p = realloc(w, sizeof *p + cap);
        if (!p) return TUTTI_ENOMEM;
        if (!w) {
            p->c = c;
            p->len = 0;
            c->next_dirty = s->dirty;
            s->dirty = c;
        }
        p->cap = cap;
        c->out = w = p;
    }
    uint8_t *d = w->data + w->len;
    put_be64(d, (uint64_t)len + hop);
    if (hop) {
        d[8] = d[9] = d[10] = 0;
        d[11] = 1;
    }
    memcpy(d + SP_LENGTH + hop, buf, len);
    w->len += need;
    return 0;
}

static void on_shutdown(uv_shutdown_t *req, int status)
{
    (void)status;
    conn *c = req->data;
    conn_close(c);
}

/* Close a lingering connection once its queued writes are done. */
static void linger_close(conn *c)
{
    c->shut.data = c;
    if (uv_shutdown(&c->shut, (uv_stream_t *)&c->tcp, on_shutdown) != 0) conn_close(c);
}

void tutti__sp_flush(tutti__sp_server *s)
{
    while (s->dirty) {
        conn *c = s->dirty;
        s->dirty = c->next_dirty;
        wreq *w = c->out;
        c->out = NULL;
        uv_buf_t b = uv_buf_init((char *)w->data, (unsigned)w->len);
        if (uv_write(&w->req, (uv_stream_t *)&c->tcp, &b, 1, on_written) < 0) {
            free(w);
            conn_close(c);
        } else if (c->linger) {
            linger_close(c);
        }
    }
}

void tutti__sp_set_authed(tutti__sp_server *s, uint32_t id)
{
    conn *c = find(s, id);
    if (c) c->authed = true;
}

void tutti__sp_close_after_flush(tutti__sp_server *s, uint32_t id)
{
    conn *c = find(s, id);
    if (!c || c->closing || c->linger) return;
    c->linger = true;
    uv_read_stop((uv_stream_t *)&c->tcp);
    if (!c->out) linger_close(c); /* else after the next flush */
}

void tutti__sp_set_limits(tutti__sp_server *s, uint32_t per_addr, uint32_t max_unauth,
                          uint64_t deadline_ms)
{
    s->per_addr = per_addr;
    s->max_unauth = max_unauth;
    s->deadline_ms = deadline_ms;
    uv_timer_stop(&s->sweep);
    if (deadline_ms)
        uv_timer_start(&s->sweep, on_sweep, deadline_ms / 4 + 1, deadline_ms / 4 + 1);
}

void tutti__sp_get_stats(const tutti__sp_server *s, tutti__sp_stats *st)
{
    *st = s->stats;
}

uint32_t tutti__sp_connections(const tutti__sp_server *s)
{
    uint32_t k = 0;
    for (const conn *c = s->conns; c; c = c->next)
        k += c->up && !c->closing;
    return k;
}

void tutti__sp_close(tutti__sp_server *s)
{
    if (!s) return;
    if (s->closing) return;
    s->closing = true;
    for (conn *c = s->conns; c; c = c->next)
        conn_close(c);
    uv_close((uv_handle_t *)&s->sweep, on_sweep_closed);
    uv_close((uv_handle_t *)&s->listener, on_listener_closed);
}
