/*
 * The impairment relay behind `tutti netsim` (see netsim.h, docs/netsim.md).
 *
 * Design notes
 * ------------
 * - One libuv loop, one thread. Each accepted connection is a pair of
 *   pipelines ("pipes"): up (client -> the dialled side) and down. Bytes read
 *   from a socket are cut into segments of at most one MSS (1448 bytes) and
 *   stamped with the time the kernel received them (SO_TIMESTAMPNS), so the
 *   relay's own wake-up latency on input does not add to the delay. Each pipe
 *   keeps its segments in one FIFO and writes them to the far socket strictly
 *   in that order: the head leaves once it has "arrived" (state FLYING and
 *   its arrival time has passed), and everything behind it waits for it. So
 *   jitter never reorders a stream, it bunches it; a loss stalls everything
 *   behind it, as TCP's in-order delivery does.
 * - Sockets are non-blocking file descriptors watched with uv_poll (libuv's
 *   streams read with read(2), which cannot return the timestamp). Writes go
 *   out at once with sendmsg; what the kernel does not take waits in the
 *   socket's out list until it is writable again.
 * - Time is CLOCK_MONOTONIC in ns (tutti_net_now). libuv's timers count whole
 *   milliseconds, too coarse to place a segment within 0.5 ms, so the relay
 *   has one timerfd (absolute CLOCK_MONOTONIC, watched with uv_poll) and a
 *   binary heap of pipes ordered by the next moment each has something to do.
 *   A virtual machine wakes a sleeping thread 50-500 us after its timer
 *   expires, so the timerfd is armed `lead` early and the loop spins for the
 *   rest; lead follows the 95th percentile of the wake-ups measured over the
 *   last 128, capped at spin_max (0: never spin). Scheduled link events use a
 *   plain libuv timer (ms is enough for them).
 * - The model of the TCP sender, per pipe, with srtt and rto taken from the
 *   link's settings (netsim_srtt, netsim_rto) rather than measured:
 *   * a transmission at time x: serialisation first when a rate is set (the
 *     wire is busy until link_free; 52 bytes of IP and TCP headers per
 *     segment), then lost with probability `loss` or while a partition is in
 *     force, else it arrives at x + delay + spike + jitter: with the queue
 *     model (default) the value at x of the direction's jitter curve, with
 *     the independent model one draw per transmission (both with the
 *     simulation's distributions, tutti_path_delay_z / tutti_path_delay);
 * - The jitter curve (queue model), per direction of the relay: standard
 *   normal values at knots `span` apart (span = 4 x jitter, at least
 *   JITTER_SPAN_MIN), joined as z(x) = ((1-f) z0 + f z1) / sqrt((1-f)^2 +
 *   f^2), which is standard normal at every x, and mapped through the
 *   distribution's quantile function. So every moment's delay has the
 *   distribution asked for, whatever the traffic; a segment sees nearly the
 *   delay its neighbours saw (a queue's delay changes smoothly, and by
 *   construction mostly more slowly than time: no bunching behind a slow
 *   draw); and a busy direction is not slower than a quiet one. With the
 *   independent model each transmission draws its own delay and then waits
 *   for the ones before it: a direction carrying many segments is slower on
 *   average than one carrying few (the largest of many draws).
 *   * SACK recovery (RACK-TLP, Linux's default): a lost transmission is
 *     noticed when one sent after it gets through, one round trip after that
 *     one left and at least 1.25 srtt after the lost one left (RACK's
 *     reordering window of srtt/4); then it is sent again, and may be lost
 *     again. A loss that nothing follows is found by the tail-loss probe
 *     (PTO = max(2 srtt, 10 ms)), and failing that by the retransmission
 *     timeout, which doubles after every expiry (backoff, up to 120 s);
 *   * RTO recovery (no SACK): a lost segment waits for the RTO; once the
 *     retransmission got through, everything lost behind it is sent again
 *     one round trip later (go-back-N);
 *   * after a timeout (not a probe) the sender stops sending new data until
 *     the retransmission is acknowledged: new segments are held, then leave
 *     together one srtt after the retransmission got through. This is what
 *     makes a partition realistic: data moves again only at the first
 *     retransmission after the partition ends (RTO backoff), not at the end
 *     of the partition itself;
 *   * duplicates cost only wire time (the receiver drops them);
 *   * the handshake: a connection accepted at t is "established" once a SYN
 *     and its SYN-ACK get through (tries at t, t+1 s, t+3 s, t+7 s, ...; 6
 *     retries, then the connection is reset). Up data leaves one srtt after
 *     that, down data one up-delay after it.
 * - Losses the sender has not noticed yet sit in a list in stream order;
 *   retransmissions already decided sit in a binary heap per pipe ordered by
 *   (time, stream position), so the next thing to do is always known without
 *   scanning. A pipe runs its due work in time order, then writes what has
 *   arrived and takes its new place in the relay's heap.
 * - Backpressure: a pipe holding more than queue_max bytes (queued plus
 *   waiting for the socket) stops reading from its sender, and reads again
 *   below half of it. Nothing grows without bound; TCP's flow control pushes
 *   back on the sender as a slow path would.
 * - A FIN travels as an empty segment, in order: the receiver's write side is
 *   shut once everything before it has been written. A reset read from one
 *   side travels the same way and resets the other side when it gets there.
 *   A side that can no longer be written to (its owner closed) is "gone":
 *   what was on its way to it is dropped, while the other direction still
 *   delivers what that side sent before it closed. Once both directions are
 *   over (FIN delivered, or receiver gone) the connection closes.
 * - Randomness: one xoshiro256** per pipe, seeded from (seed, connection
 *   number, direction), drawn in a fixed order per segment, so a seed
 *   replays the same draws for the same traffic.
 * - Ownership: a connection is freed in the close callback of the last of
 *   its two poll handles, which closes the socket it watched; segments
 *   belong to their pipe's queue or to a socket's out list until written.
 */
#define _GNU_SOURCE
#include "netsim.h"

#include "cli.h"

#include "tutti/net.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <math.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

#define MSS 1448
#define WIRE_OVERHEAD 52 /* IPv4 20 + TCP 20 + timestamp option 12 */
#define PTO_MIN (10 * TUTTI_MS)
#define RTO_MAX (120 * TUTTI_S)
#define SYN_RETRIES 6
#define FOREVER INT64_MAX
#define JITTER_SPAN_MIN (10 * TUTTI_MS) /* the queue model's shortest knot spacing */
#define IOV 64          /* segments per sendmsg */
#define LEAD_WINDOW 128 /* wake-ups the lead is computed from */
#define NO_SLOT UINT32_MAX

enum { SEG_HELD, SEG_LOST, SEG_SCHEDULED, SEG_FLYING };

typedef struct seg {
    struct seg *next;   /* stream order (or a socket's out list) */
    struct seg *lnext;  /* the unnoticed-loss list */
    uint64_t no;        /* position in the stream, from 1 */
    tutti_time arrived; /* the kernel received it from the sender */
    tutti_time sent;    /* SEG_LOST: when the lost transmission left */
    tutti_time at;      /* SEG_FLYING: arrival; SEG_SCHEDULED: retransmission time */
    uint32_t len;
    uint8_t state;
    bool fin; /* the sender closed: an empty segment that ends the stream */
    bool rst; /* ... by a reset: reset the receiver when it gets there */
    uint8_t data[];
} seg;

typedef struct nsconn nsconn;

/* One end of a connection: the client's socket or the one dialled. */
typedef struct nssock {
    nsconn *c;
    int fd;
    uv_poll_t poll;
    bool poll_open;
    int events;          /* polled for now */
    bool connecting;     /* the dial is under way */
    bool want_read;      /* not paused, not at the end */
    seg *out, *out_tail; /* delivered, waiting for the kernel to take them */
    uint32_t out_off;    /* bytes of `out` already written */
    uint64_t out_bytes;
    bool shut_pending; /* shut the write side once `out` is empty */
    bool shut_done;
} nssock;

typedef struct nspipe {
    nsconn *c;
    int dir;
    nssock *src, *dst;
    seg *head, *tail;
    seg *held;             /* first held segment: held ones end the queue */
    seg *lost, *lost_tail; /* lost, not yet noticed, in stream order */
    seg **heap;            /* retransmissions decided, by (at, no) */
    uint32_t nheap, capheap;
    uint64_t queued; /* bytes in the queue */
    uint64_t next_no;
    uint64_t bytes_in, bytes_out;
    tutti_time link_free;  /* the modelled wire is busy until then */
    tutti_time hold_until; /* new data is held until then (FOREVER: unknown) */
    tutti_time timer_at;   /* probe or retransmission timeout; 0: none */
    int backoff;           /* timer expiries since the last acknowledgement */
    bool in_rto;           /* a timeout fired and is not repaired yet */
    bool eof;              /* the sender closed; a FIN is queued */
    bool fin_out;          /* the FIN has been delivered */
    bool rst_out;          /* ... and it was a reset */
    bool gone;             /* the receiver is gone: drop what is for it */
    bool paused;           /* reading stopped by queue_max */
    tutti_rng rng;
    tutti_time wake; /* its key in the relay's heap */
    uint32_t slot;   /* its index there, or NO_SLOT */
} nspipe;

struct nsconn {
    netsim *ns;
    nsconn *prev, *next;
    uint64_t id;
    nssock s[2]; /* [0] the client, [1] the far side */
    nspipe p[2];
    bool closing;
    int handles; /* open poll handles; the connection is freed at 0 */
    tutti_time accepted;
    tutti_time syn_at; /* next SYN attempt; 0: established */
    int syn_tries;
    char peer[64];
};

struct netsim {
    netsim_config cfg;
    netsim_event *events;
    size_t nevents, next_event;
    uv_loop_t loop;
    bool loop_open;
    int lfd, tfd;
    uv_poll_t lpoll, tpoll;
    bool lpoll_open, tpoll_open;
    uv_timer_t event_timer, house;
    uv_async_t async;
    struct sockaddr_storage to_addr;
    socklen_t to_len;
    char to_name[128];
    int port;
    tutti_time start, next_status;
    netsim_link link[2];
    tutti_time spike[2];
    int down[2];
    struct jcurve {
        tutti_rng rng;
        tutti_time k0; /* the knot z0 is at; 0: not started */
        double z0, z1;
    } jc[2]; /* the queue model's jitter curve, per direction */
    nsconn *conns;
    uint64_t nconns;
    bool stopping;
    nspipe **wheap; /* pipes by wake time */
    uint32_t nwheap, capwheap;
    tutti_time armed; /* the timerfd's expiry; 0: disarmed */
    bool slept;       /* ... and it was in the future when armed */
    tutti_time lead;  /* arm this much early and spin the rest */
    tutti_time lat[LEAD_WINDOW];
    uint32_t nlat;
    netsim_stats st;
    char rbuf[65536];
};

static void conn_abort(nsconn *c, bool reset, const char *why);
static void pipe_run(nspipe *p);

/* ------------------------------------------------------------- model */

static tutti_time mean_extra(const netsim_link *l)
{
    /* The pareto draw's mean is jitter above the base; the others centre on
     * it. */
    return l->dist == TUTTI_JITTER_PARETO ? l->jitter : 0;
}

tutti_time netsim_srtt(const netsim_link *up, const netsim_link *down)
{
    return up->delay + mean_extra(up) + down->delay + mean_extra(down);
}

tutti_time netsim_rto(const netsim_link *up, const netsim_link *down, tutti_time rto_min)
{
    /* Linux: srtt + max(rto_min, 4 rttvar); the jitter stands for rttvar. */
    tutti_time var4 = 2 * (up->jitter + down->jitter);
    tutti_time rto = netsim_srtt(up, down) + (var4 > rto_min ? var4 : rto_min);
    return rto < RTO_MAX ? rto : RTO_MAX;
}

void netsim_set(netsim_link *l, const netsim_link *v, unsigned fields)
{
    if (fields & NETSIM_F_DELAY) l->delay = v->delay;
    if (fields & NETSIM_F_JITTER) l->jitter = v->jitter;
    if (fields & NETSIM_F_DIST) l->dist = v->dist;
    if (fields & NETSIM_F_LOSS) l->loss = v->loss;
    if (fields & NETSIM_F_DUP) l->dup = v->dup;
    if (fields & NETSIM_F_RATE) l->rate = v->rate;
}

/* The links as they are now, spikes included. */
static void current_links(const netsim *ns, netsim_link out[2])
{
    for (int d = 0; d < 2; d++) {
        out[d] = ns->link[d];
        out[d].delay += ns->spike[d];
    }
}

static tutti_time cur_srtt(const netsim *ns)
{
    netsim_link l[2];
    current_links(ns, l);
    return netsim_srtt(&l[0], &l[1]);
}

static tutti_time cur_rto(const netsim *ns)
{
    netsim_link l[2];
    current_links(ns, l);
    return netsim_rto(&l[0], &l[1], ns->cfg.rto_min);
}

static tutti_time first_timeout(const netsim *ns)
{
    tutti_time rto = cur_rto(ns);
    if (ns->cfg.recovery == NETSIM_RECOVERY_RTO) return rto;
    tutti_time pto = 2 * cur_srtt(ns);
    if (pto < PTO_MIN) pto = PTO_MIN;
    return pto < rto ? pto : rto;
}

/* The wait after the backoff-th expiry of the timer. */
static tutti_time backoff_timeout(const netsim *ns, int backoff)
{
    tutti_time t = cur_rto(ns);
    int doublings = ns->cfg.recovery == NETSIM_RECOVERY_RTO ? backoff : backoff - 1;
    for (int i = 0; i < doublings && t < RTO_MAX; i++)
        t *= 2;
    return t < RTO_MAX ? t : RTO_MAX;
}

static void log_msg(netsim *ns, int level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void log_msg(netsim *ns, int level, const char *fmt, ...)
{
    if (!ns->cfg.log) return;
    char msg[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    ns->cfg.log(ns->cfg.log_ctx, level, msg);
}

/* ------------------------------------------------- retransmission heap */

static bool seg_less(const seg *a, const seg *b)
{
    return a->at < b->at || (a->at == b->at && a->no < b->no);
}

static int seg_push(nspipe *p, seg *s)
{
    if (p->nheap == p->capheap) {
        uint32_t cap = p->capheap ? 2 * p->capheap : 16;
        seg **h = realloc(p->heap, cap * sizeof *h);
        if (!h) return TUTTI_ENOMEM;
        p->heap = h;
        p->capheap = cap;
    }
    uint32_t i = p->nheap++;
    while (i > 0) {
        uint32_t up = (i - 1) / 2;
        if (!seg_less(s, p->heap[up])) break;
        p->heap[i] = p->heap[up];
        i = up;
    }
    p->heap[i] = s;
    return 0;
}

static seg *seg_pop(nspipe *p)
{
    seg *top = p->heap[0], *last = p->heap[--p->nheap];
    uint32_t i = 0, n = p->nheap;
    for (;;) {
        uint32_t l = 2 * i + 1, r = l + 1, m = i;
        const seg *best = last;
        if (l < n && seg_less(p->heap[l], best)) m = l, best = p->heap[l];
        if (r < n && seg_less(p->heap[r], best)) m = r;
        if (m == i) break;
        p->heap[i] = p->heap[m];
        i = m;
    }
    if (n) p->heap[i] = last;
    return top;
}

/* ------------------------------------------------------ the wake heap */

/* Pipes ordered by wake time, ties by connection and direction, so the
 * order in which due pipes run is total. */
static bool pipe_less(const nspipe *a, const nspipe *b)
{
    if (a->wake != b->wake) return a->wake < b->wake;
    if (a->c->id != b->c->id) return a->c->id < b->c->id;
    return a->dir < b->dir;
}

static void wheap_place(netsim *ns, nspipe *p, uint32_t i)
{
    ns->wheap[i] = p;
    p->slot = i;
}

static void wheap_up(netsim *ns, uint32_t i)
{
    nspipe *p = ns->wheap[i];
    while (i > 0) {
        uint32_t up = (i - 1) / 2;
        if (!pipe_less(p, ns->wheap[up])) break;
        wheap_place(ns, ns->wheap[up], i);
        i = up;
    }
    wheap_place(ns, p, i);
}

static void wheap_down(netsim *ns, uint32_t i)
{
    nspipe *p = ns->wheap[i];
    uint32_t n = ns->nwheap;
    for (;;) {
        uint32_t l = 2 * i + 1, r = l + 1, m = i;
        const nspipe *best = p;
        if (l < n && pipe_less(ns->wheap[l], best)) m = l, best = ns->wheap[l];
        if (r < n && pipe_less(ns->wheap[r], best)) m = r;
        if (m == i) break;
        wheap_place(ns, ns->wheap[m], i);
        i = m;
    }
    wheap_place(ns, p, i);
}

static void wheap_remove(netsim *ns, nspipe *p)
{
    uint32_t i = p->slot;
    if (i == NO_SLOT) return;
    p->slot = NO_SLOT;
    nspipe *last = ns->wheap[--ns->nwheap];
    if (last == p) return;
    wheap_place(ns, last, i);
    wheap_down(ns, i);
    wheap_up(ns, last->slot);
}

/* Arm the timerfd for the earliest pipe, `lead` early. */
static void relay_arm(netsim *ns)
{
    tutti_time t = ns->nwheap ? ns->wheap[0]->wake - ns->lead : 0;
    if (ns->nwheap && t <= 0) t = 1;
    if (t == ns->armed || ns->tfd < 0) return;
    ns->armed = t;
    ns->slept = t > tutti_net_now();
    struct itimerspec its;
    memset(&its, 0, sizeof its);
    if (t > 0) {
        its.it_value.tv_sec = (time_t)(t / TUTTI_S);
        its.it_value.tv_nsec = (long)(t % TUTTI_S);
    }
    timerfd_settime(ns->tfd, TFD_TIMER_ABSTIME, &its, NULL);
}

/* Give p its next wake time (0: nothing to do) and its place in the heap. */
static void wake_set(nspipe *p, tutti_time t)
{
    netsim *ns = p->c->ns;
    if (t == 0) {
        wheap_remove(ns, p);
    } else if (p->slot == NO_SLOT) {
        if (ns->nwheap == ns->capwheap) {
            uint32_t cap = ns->capwheap ? 2 * ns->capwheap : 16;
            nspipe **h = realloc(ns->wheap, cap * sizeof *h);
            if (!h) {
                conn_abort(p->c, true, "out of memory");
                return;
            }
            ns->wheap = h;
            ns->capwheap = cap;
        }
        p->wake = t;
        wheap_place(ns, p, ns->nwheap++);
        wheap_up(ns, p->slot);
    } else if (t != p->wake) {
        p->wake = t;
        wheap_down(ns, p->slot);
        wheap_up(ns, p->slot);
    }
    relay_arm(ns);
}

static int cmp_time(const void *a, const void *b)
{
    tutti_time x = *(const tutti_time *)a, y = *(const tutti_time *)b;
    return x < y ? -1 : x > y;
}

/* A wake-up came `late` after the timerfd's expiry: keep the lead at the
 * 95th percentile of the last LEAD_WINDOW, plus 20 us, within spin_max. */
static void learn_lead(netsim *ns, tutti_time late)
{
    if (ns->cfg.spin_max <= 0) return;
    ns->lat[ns->nlat++ % LEAD_WINDOW] = late;
    if (ns->nlat % 32) return;
    tutti_time v[LEAD_WINDOW];
    uint32_t n = ns->nlat < LEAD_WINDOW ? ns->nlat : LEAD_WINDOW;
    memcpy(v, ns->lat, n * sizeof *v);
    qsort(v, n, sizeof *v, cmp_time);
    tutti_time lead = v[(n * 95) / 100] + 20000;
    ns->lead = lead < ns->cfg.spin_max ? lead : ns->cfg.spin_max;
}

static void on_timer(uv_poll_t *h, int status, int events)
{
    (void)status;
    (void)events;
    netsim *ns = h->data;
    uint64_t expirations;
    ssize_t r = read(ns->tfd, &expirations, sizeof expirations);
    tutti_time now = tutti_net_now();
    if (r == (ssize_t)sizeof expirations && ns->armed > 0 && ns->slept)
        learn_lead(ns, now - ns->armed);
    ns->armed = 0;
    /* Bounded, so that I/O is served even if a pipe kept coming back due. */
    for (int rounds = 0; ns->nwheap && !ns->stopping && rounds < 4096; rounds++) {
        nspipe *p = ns->wheap[0];
        now = tutti_net_now();
        if (p->wake <= now) {
            pipe_run(p);
        } else if (p->wake - now <= ns->lead) {
            while (tutti_net_now() < p->wake) {
            }
        } else {
            break;
        }
    }
    relay_arm(ns);
}

/* ------------------------------------------------------ the TCP sender */

static void lost_insert(nspipe *p, seg *s)
{
    if (!p->lost_tail || p->lost_tail->no < s->no) {
        s->lnext = NULL;
        if (p->lost_tail)
            p->lost_tail->lnext = s;
        else
            p->lost = s;
        p->lost_tail = s;
        return;
    }
    seg **pp = &p->lost;
    while (*pp && (*pp)->no < s->no)
        pp = &(*pp)->lnext;
    s->lnext = *pp;
    *pp = s;
}

static void schedule(nspipe *p, seg *s, tutti_time at)
{
    s->state = SEG_SCHEDULED;
    s->at = at;
    if (seg_push(p, s) != 0) conn_abort(p->c, true, "out of memory");
}

/*
 * A transmission that left at `a` got through; its acknowledgement tells the
 * sender about every loss that left before it (with SACK). `timer`: it was
 * the timer's retransmission of the oldest loss.
 */
static void acked(nspipe *p, tutti_time a, bool timer)
{
    netsim *ns = p->c->ns;
    bool sack = ns->cfg.recovery == NETSIM_RECOVERY_SACK;
    if (!sack && !timer) return; /* without SACK a hole shows only as duplicate ACKs */
    tutti_time srtt = cur_srtt(ns);
    p->backoff = 0;
    if (p->in_rto) {
        p->in_rto = false;
        p->hold_until = a + srtt;
    }
    seg **pp = &p->lost, *last = NULL;
    while (*pp) {
        seg *s = *pp;
        if (s->sent < a) {
            *pp = s->lnext;
            tutti_time at = a + srtt;
            if (sack) {
                tutti_time rack = s->sent + srtt + srtt / 4;
                if (rack > at) at = rack;
                ns->st.dir[p->dir].fast++;
            }
            schedule(p, s, at);
        } else {
            last = s;
            pp = &s->lnext;
        }
    }
    p->lost_tail = last;
    p->timer_at = p->lost ? p->lost->sent + first_timeout(ns) : 0;
}

/* Put segment s on the modelled wire at time t. */
static double jcurve_at(netsim *ns, int d, tutti_time x);

static void transmit(nspipe *p, seg *s, tutti_time t, bool timer)
{
    netsim *ns = p->c->ns;
    netsim_dir_stats *st = &ns->st.dir[p->dir];
    const netsim_link *l = &ns->link[p->dir];
    tutti_time x = t;
    bool dup = l->dup > 0 && tutti_rng_unit(&p->rng) < l->dup;
    if (dup) st->dups++;
    if (l->rate > 0) {
        tutti_time wire = (tutti_time)((double)(s->len + WIRE_OVERHEAD) * 8e9 / l->rate);
        if (x < p->link_free) x = p->link_free;
        x += dup ? 2 * wire : wire;
        p->link_free = x;
    }
    st->transmissions++;
    bool lost = ns->down[p->dir] > 0;
    if (l->loss > 0 && tutti_rng_unit(&p->rng) < l->loss) lost = true;
    if (lost) {
        st->lost++;
        s->state = SEG_LOST;
        s->sent = x;
        lost_insert(p, s);
        if (!p->timer_at) p->timer_at = x + first_timeout(ns);
        return;
    }
    tutti_path path = {l->delay + ns->spike[p->dir], l->jitter, l->dist, 0};
    s->state = SEG_FLYING;
    s->at = x + (ns->cfg.jitter_model == NETSIM_JITTER_INDEPENDENT || l->jitter == 0
                     ? tutti_path_delay(&path, &p->rng)
                     : tutti_path_delay_z(&path, jcurve_at(ns, p->dir, x)));
    acked(p, x, timer);
}

/* The queue model's jitter curve of direction d at time x (see the notes). */
static double jcurve_at(netsim *ns, int d, tutti_time x)
{
    struct jcurve *j = &ns->jc[d];
    tutti_time span = 4 * ns->link[d].jitter;
    if (span < JITTER_SPAN_MIN) span = JITTER_SPAN_MIN;
    if (j->k0 == 0 || x - j->k0 > 64 * span) { /* the start, or a long quiet time */
        j->k0 = x;
        j->z0 = tutti_rng_normal(&j->rng);
        j->z1 = tutti_rng_normal(&j->rng);
    }
    if (x < j->k0) x = j->k0; /* a retransmission decided a moment ago */
    while (x - j->k0 >= span) {
        j->k0 += span;
        j->z0 = j->z1;
        j->z1 = tutti_rng_normal(&j->rng);
    }
    double f = (double)(x - j->k0) / (double)span, a = 1.0 - f;
    return (a * j->z0 + f * j->z1) / sqrt(a * a + f * f);
}

/* The timer expired: probe or time out with the oldest unnoticed loss. */
static void timer_fire(nspipe *p, tutti_time t)
{
    netsim *ns = p->c->ns;
    seg *s = p->lost;
    p->timer_at = 0;
    if (!s) return;
    p->lost = s->lnext;
    if (!p->lost) p->lost_tail = NULL;
    p->backoff++;
    if (ns->cfg.recovery == NETSIM_RECOVERY_SACK && p->backoff == 1) {
        ns->st.dir[p->dir].probes++;
    } else {
        ns->st.dir[p->dir].timeouts++;
        p->in_rto = true;
        p->hold_until = FOREVER;
    }
    transmit(p, s, t, true);
    if (s->state == SEG_LOST) p->timer_at = t + backoff_timeout(ns, p->backoff);
}

/* Held segments leave together at t. */
static void release(nspipe *p, tutti_time t)
{
    seg *s = p->held;
    p->held = NULL;
    for (; s && !p->c->closing; s = s->next)
        transmit(p, s, t, false);
}

/* One SYN (and SYN-ACK) attempt at time t. */
static void syn_attempt(nsconn *c, tutti_time t)
{
    netsim *ns = c->ns;
    nspipe *up = &c->p[NETSIM_UP];
    bool ok = !ns->down[NETSIM_UP] && !ns->down[NETSIM_DOWN];
    for (int d = 0; d < 2; d++)
        if (ns->link[d].loss > 0 && tutti_rng_unit(&up->rng) < ns->link[d].loss)
            ok = false;
    if (!ok) {
        if (++c->syn_tries > SYN_RETRIES) {
            conn_abort(c, true, "the handshake timed out");
            return;
        }
        c->syn_at = c->accepted + (((tutti_time)1 << c->syn_tries) - 1) * TUTTI_S;
        return;
    }
    if (c->syn_tries)
        log_msg(ns, TUTTI_LOG_INFO,
                "connection %" PRIu64 ": the handshake got through after %d SYN "
                "retransmission%s",
                c->id, c->syn_tries, c->syn_tries == 1 ? "" : "s");
    c->syn_at = 0;
    c->p[NETSIM_UP].hold_until = t + cur_srtt(ns);
    c->p[NETSIM_DOWN].hold_until = t + ns->link[NETSIM_UP].delay + ns->spike[NETSIM_UP];
    pipe_run(&c->p[NETSIM_DOWN]);
}

/* ------------------------------------------------------------- sockets */

static void free_list(seg *s)
{
    while (s) {
        seg *n = s->next;
        free(s);
        s = n;
    }
}

/* The pipe that reads from k, and the one that writes to it. */
static nspipe *reader_of(nssock *k)
{
    return &k->c->p[k == &k->c->s[0] ? NETSIM_UP : NETSIM_DOWN];
}

static nspipe *writer_to(nssock *k)
{
    return &k->c->p[k == &k->c->s[0] ? NETSIM_DOWN : NETSIM_UP];
}

static void on_sock(uv_poll_t *h, int status, int events);

static void sock_update(nssock *k)
{
    if (!k->poll_open || k->c->closing) return;
    int ev =
        (k->want_read ? UV_READABLE : 0) | (k->connecting || k->out ? UV_WRITABLE : 0);
    if (ev == k->events) return;
    k->events = ev;
    if (ev)
        uv_poll_start(&k->poll, ev, on_sock);
    else
        uv_poll_stop(&k->poll);
}

/* A pipe reads again once it holds less than half of queue_max. */
static void maybe_resume(nspipe *p)
{
    netsim *ns = p->c->ns;
    if (p->paused && !p->eof && p->queued + p->dst->out_bytes < ns->cfg.queue_max / 2) {
        p->paused = false;
        p->src->want_read = true;
        sock_update(p->src);
    }
}

/* Both directions are over: each delivered its FIN, or its receiver is
 * gone. Then the connection closes (quietly: nothing is left to say). */
static bool conn_finished(nsconn *c)
{
    for (int d = 0; d < 2; d++) {
        const nspipe *p = &c->p[d];
        if (!p->gone && !(p->fin_out && p->dst->shut_done)) return false;
    }
    conn_abort(c, false, NULL);
    return true;
}

/*
 * Writing to k failed: its owner closed (a real path would answer the next
 * segment with a reset). What was on its way to k is dropped; the other
 * direction still delivers what k sent before it closed, as it would.
 */
static void pipe_gone(nspipe *p, const char *why)
{
    nsconn *c = p->c;
    nssock *k = p->dst;
    if (p->gone) return;
    log_msg(c->ns, TUTTI_LOG_INFO, "connection %" PRIu64 ": the %s side is gone (%s)",
            c->id, k == &c->s[0] ? "connecting" : "far", why);
    p->gone = true;
    free_list(p->head);
    p->head = p->tail = p->held = p->lost = p->lost_tail = NULL;
    p->nheap = 0;
    p->queued = 0;
    p->timer_at = 0;
    free_list(k->out);
    k->out = k->out_tail = NULL;
    k->out_off = 0;
    k->out_bytes = 0;
    wake_set(p, 0);
    if (!conn_finished(c)) sock_update(k);
}

/* Write what the kernel takes; shut the write side after the FIN. */
static void sock_flush(nssock *k)
{
    nsconn *c = k->c;
    while (k->out && !c->closing) {
        struct iovec iov[IOV];
        int n = 0;
        for (seg *s = k->out; s && n < IOV; s = s->next, n++) {
            uint32_t off = n == 0 ? k->out_off : 0;
            iov[n].iov_base = s->data + off;
            iov[n].iov_len = s->len - off;
        }
        struct msghdr m;
        memset(&m, 0, sizeof m);
        m.msg_iov = iov;
        m.msg_iovlen = (size_t)n;
        ssize_t w = sendmsg(k->fd, &m, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (w < 0) {
            if (errno == EINTR) continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK) break;
            pipe_gone(writer_to(k), strerror(errno));
            return;
        }
        k->out_bytes -= (uint64_t)w;
        while (w > 0) {
            seg *s = k->out;
            uint32_t rest = s->len - k->out_off;
            if ((size_t)w < rest) {
                k->out_off += (uint32_t)w;
                break;
            }
            w -= rest;
            k->out = s->next;
            if (!k->out) k->out_tail = NULL;
            k->out_off = 0;
            free(s);
        }
    }
    if (!k->out && k->shut_pending && !k->shut_done) {
        if (writer_to(k)->rst_out) {
            conn_abort(c, true, "the other side reset the connection");
            return;
        }
        shutdown(k->fd, SHUT_WR);
        k->shut_done = true;
        if (conn_finished(c)) return;
    }
    maybe_resume(writer_to(k));
    sock_update(k);
}

/* Kernel receive time of what recvmsg returned, on CLOCK_MONOTONIC. */
static tutti_time arrival_of(struct msghdr *m, tutti_time now)
{
    for (struct cmsghdr *h = CMSG_FIRSTHDR(m); h; h = CMSG_NXTHDR(m, h)) {
        if (h->cmsg_level != SOL_SOCKET || h->cmsg_type != SO_TIMESTAMPNS) continue;
        struct timespec ts, real;
        memcpy(&ts, CMSG_DATA(h), sizeof ts);
        clock_gettime(CLOCK_REALTIME, &real);
        tutti_time mono_now = tutti_net_now();
        tutti_time ago =
            ((tutti_time)real.tv_sec - ts.tv_sec) * TUTTI_S + (real.tv_nsec - ts.tv_nsec);
        /* A wall-clock step would make nonsense of it: trust it within 1 s. */
        if (ago >= 0 && ago < TUTTI_S) return mono_now - ago;
        break;
    }
    return now;
}

static void enqueue(nspipe *p, seg *s, tutti_time arrived);

static seg *seg_new(const void *data, uint32_t len, bool fin)
{
    seg *s = malloc(sizeof *s + len);
    if (!s) return NULL;
    memset(s, 0, sizeof *s);
    s->len = len;
    s->fin = fin;
    if (len) memcpy(s->data, data, len);
    return s;
}

static void sock_read(nssock *k)
{
    nsconn *c = k->c;
    netsim *ns = c->ns;
    nspipe *p = reader_of(k);
    bool got = false;
    for (int i = 0; i < 16 && k->want_read && !c->closing; i++) {
        struct iovec iov = {ns->rbuf, sizeof ns->rbuf};
        union {
            char buf[CMSG_SPACE(sizeof(struct timespec)) + 64];
            struct cmsghdr align;
        } cm;
        struct msghdr m;
        memset(&m, 0, sizeof m);
        m.msg_iov = &iov;
        m.msg_iovlen = 1;
        m.msg_control = cm.buf;
        m.msg_controllen = sizeof cm.buf;
        ssize_t n = recvmsg(k->fd, &m, MSG_DONTWAIT);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
        tutti_time now = tutti_net_now();
        got = true;
        if (n <= 0) {
            /* The end, or a reset (ECONNRESET...): either travels behind the
             * data sent before it. */
            k->want_read = false;
            p->eof = true;
            if (p->gone) break;
            seg *s = seg_new(NULL, 0, true);
            if (!s) {
                conn_abort(c, true, "out of memory");
                return;
            }
            s->rst = n < 0;
            enqueue(p, s, now);
            break;
        }
        p->bytes_in += (uint64_t)n;
        ns->st.dir[p->dir].bytes_in += (uint64_t)n;
        if (p->gone) continue; /* nobody to give it to */
        tutti_time arrived = arrival_of(&m, now);
        for (ssize_t off = 0; off < n && !c->closing; off += MSS) {
            uint32_t len = (uint32_t)(n - off < MSS ? n - off : MSS);
            seg *s = seg_new(ns->rbuf + off, len, false);
            if (!s) {
                conn_abort(c, true, "out of memory");
                return;
            }
            enqueue(p, s, arrived);
        }
        if (p->queued + p->dst->out_bytes > ns->cfg.queue_max) {
            k->want_read = false;
            p->paused = true;
            ns->st.dir[p->dir].read_pauses++;
        }
        if ((size_t)n < sizeof ns->rbuf) break;
    }
    if (got && !c->closing && !p->gone) pipe_run(p);
}

static void on_connected(nssock *k)
{
    nsconn *c = k->c;
    netsim *ns = c->ns;
    int err = 0;
    socklen_t len = sizeof err;
    if (getsockopt(k->fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0) err = errno;
    if (err == EINPROGRESS || err == EALREADY) return;
    k->connecting = false;
    if (err) {
        ns->st.refused++;
        char why[200];
        snprintf(why, sizeof why, "cannot reach %s (%s)", ns->to_name, strerror(err));
        conn_abort(c, true, why);
        return;
    }
    k->want_read = true;
    pipe_run(&c->p[NETSIM_UP]);
}

static void on_sock(uv_poll_t *h, int status, int events)
{
    nssock *k = h->data;
    nsconn *c = k->c;
    if (c->closing) return;
    if (status < 0) k->events = 0; /* libuv stopped the handle */
    if (k->connecting) {
        if (status < 0 || (events & UV_WRITABLE)) on_connected(k);
        if (c->closing || k->connecting) return;
    } else if (status < 0) {
        /* An error on the socket (a reset, usually). Read what is left and
         * the error itself, which then travels in order; a write finds out
         * too. */
        if (k->want_read) sock_read(k);
        if (!c->closing && k->out) sock_flush(k);
        if (!c->closing) sock_update(k);
        return;
    }
    if (events & UV_WRITABLE) sock_flush(k);
    if (!c->closing && (events & UV_READABLE)) sock_read(k);
    if (!c->closing) sock_update(k);
}

/* ------------------------------------------------------------ delivery */

/* Hand every segment that has arrived, in order, to the far socket. */
static void deliver(nspipe *p, tutti_time now)
{
    nssock *k = p->dst;
    netsim_dir_stats *st = &p->c->ns->st.dir[p->dir];
    if (k->connecting || p->fin_out) return;
    bool any = false;
    while (p->head && p->head->state == SEG_FLYING && p->head->at <= now) {
        seg *s = p->head;
        p->head = s->next;
        if (!p->head) p->tail = NULL;
        any = true;
        if (s->fin) {
            p->rst_out = s->rst;
            free(s);
            p->fin_out = true;
            k->shut_pending = true;
            break;
        }
        tutti_time stay = now - s->arrived, late_us = (now - s->at) / 1000;
        if (stay > st->max_delay) st->max_delay = stay;
        int b = 0;
        while (late_us > 0 && b < NETSIM_LATE_BUCKETS - 1) {
            late_us >>= 1;
            b++;
        }
        st->late_hist[b]++;
        p->queued -= s->len;
        p->bytes_out += s->len;
        st->bytes_out += s->len;
        s->next = NULL;
        if (k->out_tail)
            k->out_tail->next = s;
        else
            k->out = s;
        k->out_tail = s;
        k->out_bytes += s->len;
    }
    if (any) sock_flush(k);
}

/* The earliest moment this pipe has something to do; 0: nothing. */
static tutti_time next_wake(const nspipe *p)
{
    const nsconn *c = p->c;
    tutti_time t = FOREVER;
    if (p->dir == NETSIM_UP && c->syn_at && c->syn_at < t) t = c->syn_at;
    if (p->held && p->hold_until < t) t = p->hold_until;
    if (p->nheap && p->heap[0]->at < t) t = p->heap[0]->at;
    if (p->timer_at && p->timer_at < t) t = p->timer_at;
    bool can_deliver = !p->fin_out && !p->dst->connecting;
    if (can_deliver && p->head && p->head->state == SEG_FLYING && p->head->at < t)
        t = p->head->at;
    return t == FOREVER ? 0 : t;
}

/* Do everything due by now in time order, write what has arrived, and take
 * the pipe's new place in the relay's heap. */
static void pipe_run(nspipe *p)
{
    nsconn *c = p->c;
    if (c->closing) return;
    tutti_time now = tutti_net_now();
    for (;;) {
        tutti_time t = FOREVER;
        int what = -1;
        if (p->dir == NETSIM_UP && c->syn_at && c->syn_at < t) t = c->syn_at, what = 0;
        if (p->held && p->hold_until < t) t = p->hold_until, what = 1;
        if (p->nheap && p->heap[0]->at < t) t = p->heap[0]->at, what = 2;
        if (p->timer_at && p->timer_at < t) t = p->timer_at, what = 3;
        if (what < 0 || t > now) break;
        switch (what) {
        case 0:
            syn_attempt(c, t);
            break;
        case 1:
            release(p, t);
            break;
        case 2:
            transmit(p, seg_pop(p), t, false);
            break;
        default:
            timer_fire(p, t);
            break;
        }
        if (c->closing) return;
    }
    deliver(p, now);
    if (!c->closing) wake_set(p, next_wake(p));
}

/* --------------------------------------------------------------- input */

static void enqueue(nspipe *p, seg *s, tutti_time arrived)
{
    netsim_dir_stats *st = &p->c->ns->st.dir[p->dir];
    s->next = NULL;
    s->lnext = NULL;
    s->no = ++p->next_no;
    s->arrived = arrived;
    if (p->tail)
        p->tail->next = s;
    else
        p->head = s;
    p->tail = s;
    p->queued += s->len;
    st->segments++;
    if (p->queued > st->max_queue) st->max_queue = p->queued;
    if (p->held || arrived < p->hold_until) {
        s->state = SEG_HELD;
        if (!p->held) p->held = s;
    } else {
        transmit(p, s, arrived, false);
    }
}

/* ------------------------------------------------------- connections */

static void conn_free(nsconn *c)
{
    for (int d = 0; d < 2; d++) {
        free_list(c->p[d].head);
        free(c->p[d].heap);
        free_list(c->s[d].out);
    }
    free(c);
}

/* Both poll handles point at their socket; the last one frees c. */
static void on_sock_closed(uv_handle_t *h)
{
    nssock *k = h->data;
    nsconn *c = k->c;
    close(k->fd);
    k->fd = -1;
    if (--c->handles == 0) conn_free(c);
}

static void conn_abort(nsconn *c, bool reset, const char *why)
{
    netsim *ns = c->ns;
    if (c->closing) return;
    c->closing = true;
    if (c->prev)
        c->prev->next = c->next;
    else
        ns->conns = c->next;
    if (c->next) c->next->prev = c->prev;
    ns->nconns--;
    if (reset) ns->st.resets++;
    for (int d = 0; d < 2; d++)
        wheap_remove(ns, &c->p[d]);
    relay_arm(ns);
    log_msg(ns, reset ? TUTTI_LOG_WARN : TUTTI_LOG_INFO,
            "connection %" PRIu64 " %s%s%s (up %" PRIu64 " B, down %" PRIu64 " B)", c->id,
            reset ? "reset" : "closed", why ? ": " : "", why ? why : "",
            c->p[NETSIM_UP].bytes_out, c->p[NETSIM_DOWN].bytes_out);
    int open = c->handles;
    for (int i = 0; i < 2; i++) {
        nssock *k = &c->s[i];
        if (k->fd < 0) continue;
        if (reset && !k->connecting) {
            struct linger lg = {1, 0}; /* close with a RST */
            setsockopt(k->fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
        }
        if (k->poll_open) {
            uv_close((uv_handle_t *)&k->poll, on_sock_closed);
        } else {
            close(k->fd);
            k->fd = -1;
        }
    }
    if (open == 0) conn_free(c);
}

static uint64_t mix(uint64_t x)
{
    x += 0x9e3779b97f4a7c15ull;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

static void tune(int fd)
{
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    setsockopt(fd, SOL_SOCKET, SO_TIMESTAMPNS, &one, sizeof one);
}

/* "HOST:PORT" of the connection's peer, an IPv6 host in brackets: at most
 * 54 bytes with the terminator, so a 64-byte `out` always holds it. */
static void peer_name(int fd, char *out, size_t cap)
{
    struct sockaddr_storage a;
    socklen_t al = sizeof a;
    char host[INET6_ADDRSTRLEN] = "?";
    int port = 0;
    bool v6 = false;
    if (getpeername(fd, (struct sockaddr *)&a, &al) == 0) {
        if (a.ss_family == AF_INET6) {
            uv_ip6_name((struct sockaddr_in6 *)&a, host, sizeof host);
            port = ntohs(((struct sockaddr_in6 *)&a)->sin6_port);
            v6 = true;
        } else {
            uv_ip4_name((struct sockaddr_in *)&a, host, sizeof host);
            port = ntohs(((struct sockaddr_in *)&a)->sin_port);
        }
    }
    snprintf(out, cap, v6 ? "[%s]:%d" : "%s:%d", host, port);
}

static void new_conn(netsim *ns, int fd)
{
    nsconn *c = calloc(1, sizeof *c);
    if (!c) {
        close(fd);
        return;
    }
    c->ns = ns;
    c->id = ++ns->st.connections;
    c->next = ns->conns;
    if (ns->conns) ns->conns->prev = c;
    ns->conns = c;
    ns->nconns++;
    c->accepted = tutti_net_now();
    peer_name(fd, c->peer, sizeof c->peer);
    log_msg(ns, TUTTI_LOG_INFO, "connection %" PRIu64 " from %s", c->id, c->peer);

    c->s[0].fd = fd;
    c->s[1].fd =
        socket(ns->to_addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    for (int i = 0; i < 2; i++) {
        nssock *k = &c->s[i];
        k->c = c;
        if (k->fd < 0) continue;
        tune(k->fd);
        if (uv_poll_init(&ns->loop, &k->poll, k->fd) == 0) {
            k->poll.data = k;
            k->poll_open = true;
            c->handles++;
        }
    }
    for (int d = 0; d < 2; d++) {
        nspipe *p = &c->p[d];
        p->c = c;
        p->dir = d;
        p->src = &c->s[d == NETSIM_UP ? 0 : 1];
        p->dst = &c->s[d == NETSIM_UP ? 1 : 0];
        p->hold_until = FOREVER;
        p->slot = NO_SLOT;
        tutti_rng_seed(&p->rng, ns->cfg.seed ^ mix(c->id * 2 + (uint64_t)d));
    }
    if (c->handles < 2) {
        conn_abort(c, true, "cannot make a socket");
        return;
    }
    int rc = connect(c->s[1].fd, (struct sockaddr *)&ns->to_addr, ns->to_len);
    if (rc != 0 && errno != EINPROGRESS) {
        ns->st.refused++;
        char why[200];
        snprintf(why, sizeof why, "cannot reach %s (%s)", ns->to_name, strerror(errno));
        conn_abort(c, true, why);
        return;
    }
    c->s[1].connecting = rc != 0;
    c->s[1].want_read = rc == 0;
    c->s[0].want_read = true;
    syn_attempt(c, c->accepted);
    if (c->closing) return;
    pipe_run(&c->p[NETSIM_UP]);
    for (int i = 0; i < 2 && !c->closing; i++)
        sock_update(&c->s[i]);
}

static void on_accept(uv_poll_t *h, int status, int events)
{
    (void)status;
    (void)events;
    netsim *ns = h->data;
    for (int i = 0; i < 64 && !ns->stopping; i++) {
        int fd = accept4(ns->lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EINTR) continue;
            if (errno != EAGAIN && errno != EWOULDBLOCK)
                log_msg(ns, TUTTI_LOG_WARN, "accept: %s", strerror(errno));
            return;
        }
        new_conn(ns, fd);
    }
}

/* -------------------------------------------------------------- events */

static void say(netsim *ns, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void say(netsim *ns, const char *fmt, ...)
{
    if (!ns->cfg.out) return;
    double t = (double)(tutti_net_now() - ns->start) / 1e9;
    char line[320];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    fprintf(ns->cfg.out, "netsim %.3f s: %s\n", t, line);
    fflush(ns->cfg.out);
}

static void reset_all(netsim *ns, const char *why)
{
    while (ns->conns)
        conn_abort(ns->conns, true, why);
}

static void apply(netsim *ns, const netsim_event *e)
{
    ns->st.events++;
    say(ns, "%s", e->what);
    for (int d = 0; d < 2; d++) {
        if (!(e->dirs & (1u << d))) continue;
        netsim_link *l = &ns->link[d];
        switch (e->action) {
        case NETSIM_SET:
            netsim_set(l, &e->link, e->fields);
            break;
        case NETSIM_CUT:
            ns->down[d]++;
            break;
        case NETSIM_HEAL:
            if (ns->down[d] > 0) ns->down[d]--;
            break;
        case NETSIM_SPIKE_ON:
            ns->spike[d] += e->link.delay;
            break;
        case NETSIM_SPIKE_OFF:
            ns->spike[d] -= e->link.delay;
            if (ns->spike[d] < 0) ns->spike[d] = 0;
            break;
        default:
            break;
        }
    }
    if (e->action == NETSIM_CUT) ns->st.partitions++;
    if ((e->action == NETSIM_CUT && e->reset) || e->action == NETSIM_RESET)
        reset_all(ns, "scheduled reset");
}

static void on_event_timer(uv_timer_t *t)
{
    netsim *ns = t->data;
    tutti_time now = tutti_net_now();
    while (ns->next_event < ns->nevents &&
           ns->start + ns->events[ns->next_event].at <= now)
        apply(ns, &ns->events[ns->next_event++]);
    if (ns->next_event < ns->nevents) {
        tutti_time due = ns->start + ns->events[ns->next_event].at;
        uint64_t ms = (uint64_t)((due - now + TUTTI_MS - 1) / TUTTI_MS);
        uv_timer_start(&ns->event_timer, on_event_timer, ms, 0);
    }
}

/* ----------------------------------------------------------- lifecycle */

static void on_fd_closed(uv_handle_t *h)
{
    int *fd = h->data;
    if (*fd >= 0) close(*fd);
    *fd = -1;
}

static void begin_stop(netsim *ns)
{
    if (ns->stopping) return;
    ns->stopping = true;
    while (ns->conns)
        conn_abort(ns->conns, false, NULL);
    if (ns->lpoll_open) {
        ns->lpoll.data = &ns->lfd;
        uv_close((uv_handle_t *)&ns->lpoll, on_fd_closed);
    } else if (ns->lfd >= 0) {
        close(ns->lfd);
        ns->lfd = -1;
    }
    if (ns->tpoll_open) {
        ns->tpoll.data = &ns->tfd;
        uv_close((uv_handle_t *)&ns->tpoll, on_fd_closed);
    } else if (ns->tfd >= 0) {
        close(ns->tfd);
        ns->tfd = -1;
    }
    uv_close((uv_handle_t *)&ns->event_timer, NULL);
    uv_close((uv_handle_t *)&ns->house, NULL);
    uv_close((uv_handle_t *)&ns->async, NULL);
}

static void on_async(uv_async_t *a)
{
    begin_stop(a->data);
}

static void status_line(netsim *ns)
{
    uint64_t q[2] = {0, 0};
    for (const nsconn *c = ns->conns; c; c = c->next)
        for (int d = 0; d < 2; d++)
            q[d] += c->p[d].queued;
    say(ns,
        "%" PRIu64 " connection%s, link %s; up %" PRIu64 " B, %" PRIu64 " lost, %" PRIu64
        " B queued; down %" PRIu64 " B, %" PRIu64 " lost, %" PRIu64 " B queued",
        ns->nconns, ns->nconns == 1 ? "" : "s",
        ns->down[0] || ns->down[1] ? "down" : "up", ns->st.dir[0].bytes_out,
        ns->st.dir[0].lost, q[0], ns->st.dir[1].bytes_out, ns->st.dir[1].lost, q[1]);
}

static void on_house(uv_timer_t *t)
{
    netsim *ns = t->data;
    tutti_time now = tutti_net_now();
    if ((ns->cfg.stop_flag && *ns->cfg.stop_flag) ||
        (ns->cfg.duration > 0 && now - ns->start >= ns->cfg.duration)) {
        begin_stop(ns);
        return;
    }
    if (ns->cfg.status && now >= ns->next_status) {
        ns->next_status += TUTTI_S;
        status_line(ns);
    }
}

void netsim_config_init(netsim_config *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->seed = 1;
    cfg->recovery = NETSIM_RECOVERY_SACK;
    cfg->rto_min = 200 * TUTTI_MS;
    cfg->queue_max = 4u << 20;
    cfg->spin_max = 500 * 1000;
}

static int resolve(const char *host, int port, bool passive, struct sockaddr_storage *out,
                   socklen_t *len)
{
    struct addrinfo hints, *res = NULL;
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = passive ? AI_PASSIVE : 0;
    char ps[16];
    snprintf(ps, sizeof ps, "%d", port);
    int rc = getaddrinfo(host && *host ? host : NULL, ps, &hints, &res);
    if (rc != 0 || !res) {
        fprintf(stderr, "tutti netsim: cannot resolve \"%s\": %s\n", host ? host : "",
                gai_strerror(rc));
        return TUTTI_EINVAL;
    }
    memcpy(out, res->ai_addr, res->ai_addrlen);
    *len = res->ai_addrlen;
    freeaddrinfo(res);
    return 0;
}

static int cmp_event(const void *a, const void *b)
{
    const netsim_event *x = *(const netsim_event *const *)a;
    const netsim_event *y = *(const netsim_event *const *)b;
    if (x->at != y->at) return x->at < y->at ? -1 : 1;
    return x < y ? -1 : x > y; /* as given */
}

static int listen_on(netsim *ns, const struct sockaddr_storage *a, socklen_t alen)
{
    const netsim_config *cfg = &ns->cfg;
    int one = 1;
    ns->lfd = socket(a->ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (ns->lfd < 0 ||
        setsockopt(ns->lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0 ||
        bind(ns->lfd, (const struct sockaddr *)a, alen) != 0 ||
        listen(ns->lfd, 128) != 0) {
        fprintf(stderr, "tutti netsim: cannot listen on %s:%d: %s\n",
                cfg->listen_host && *cfg->listen_host ? cfg->listen_host : "*",
                cfg->listen_port, strerror(errno));
        return TUTTI_ETRANSPORT;
    }
    struct sockaddr_storage bound;
    socklen_t blen = sizeof bound;
    getsockname(ns->lfd, (struct sockaddr *)&bound, &blen);
    ns->port = bound.ss_family == AF_INET6
                   ? ntohs(((struct sockaddr_in6 *)&bound)->sin6_port)
                   : ntohs(((struct sockaddr_in *)&bound)->sin_port);
    if (uv_poll_init(&ns->loop, &ns->lpoll, ns->lfd) != 0) return TUTTI_ETRANSPORT;
    ns->lpoll_open = true;
    ns->lpoll.data = ns;
    uv_poll_start(&ns->lpoll, UV_READABLE, on_accept);
    return 0;
}

int netsim_create(netsim **out, const netsim_config *cfg)
{
    *out = NULL;
    for (int d = 0; d < 2; d++) {
        const netsim_link *l = &cfg->link[d];
        if (l->delay < 0 || l->jitter < 0 || l->loss < 0 || l->loss > 1 || l->dup < 0 ||
            l->dup > 1 || l->rate < 0 || l->dist < 0 || l->dist > TUTTI_JITTER_PARETO) {
            fprintf(stderr, "tutti netsim: a link setting is out of range\n");
            return TUTTI_EINVAL;
        }
    }
    if (cfg->to_port <= 0 || cfg->to_port > 65535 || cfg->listen_port < 0 ||
        cfg->listen_port > 65535 || cfg->queue_max < 2 * MSS || cfg->spin_max < 0) {
        fprintf(stderr, "tutti netsim: a port or a limit is out of range\n");
        return TUTTI_EINVAL;
    }
    netsim *ns = calloc(1, sizeof *ns);
    if (!ns) return TUTTI_ENOMEM;
    ns->cfg = *cfg;
    ns->lfd = ns->tfd = -1;
    ns->link[0] = cfg->link[0];
    ns->link[1] = cfg->link[1];
    ns->lead = cfg->spin_max < 100000 ? cfg->spin_max : 100000;
    if (cfg->nevents) {
        const netsim_event **order = malloc(cfg->nevents * sizeof *order);
        ns->events = malloc(cfg->nevents * sizeof *ns->events);
        if (!order || !ns->events) {
            free(order);
            free(ns->events);
            free(ns);
            return TUTTI_ENOMEM;
        }
        for (size_t i = 0; i < cfg->nevents; i++)
            order[i] = &cfg->events[i];
        qsort(order, cfg->nevents, sizeof *order, cmp_event);
        for (size_t i = 0; i < cfg->nevents; i++)
            ns->events[i] = *order[i];
        free(order);
        ns->nevents = cfg->nevents;
    }
    ns->cfg.events = ns->events;

    struct sockaddr_storage la;
    socklen_t llen;
    if (resolve(cfg->to_host, cfg->to_port, false, &ns->to_addr, &ns->to_len) != 0 ||
        resolve(cfg->listen_host, cfg->listen_port, true, &la, &llen) != 0) {
        free(ns->events);
        free(ns);
        return TUTTI_EINVAL;
    }
    snprintf(ns->to_name, sizeof ns->to_name, "%s:%d", cfg->to_host, cfg->to_port);
    if (uv_loop_init(&ns->loop) != 0) {
        free(ns->events);
        free(ns);
        return TUTTI_ETRANSPORT;
    }
    ns->loop_open = true;
    uv_timer_init(&ns->loop, &ns->event_timer);
    uv_timer_init(&ns->loop, &ns->house);
    uv_async_init(&ns->loop, &ns->async, on_async);
    ns->event_timer.data = ns->house.data = ns->async.data = ns;
    int rc = listen_on(ns, &la, llen);
    if (rc == 0) {
        ns->tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
        if (ns->tfd < 0 || uv_poll_init(&ns->loop, &ns->tpoll, ns->tfd) != 0) {
            fprintf(stderr, "tutti netsim: cannot make a timer: %s\n", strerror(errno));
            rc = TUTTI_ETRANSPORT;
        } else {
            ns->tpoll_open = true;
            ns->tpoll.data = ns;
            uv_poll_start(&ns->tpoll, UV_READABLE, on_timer);
        }
    }
    if (rc != 0) {
        netsim_destroy(ns);
        return rc;
    }
    *out = ns;
    return 0;
}

int netsim_port(const netsim *ns)
{
    return ns->port;
}

int netsim_run(netsim *ns)
{
    /* Timer slack applies to this thread: wake within a microsecond. */
    prctl(PR_SET_TIMERSLACK, 1UL, 0, 0, 0);
    if (ns->cfg.rt_priority > 0) {
        int rc = cli_fifo(ns->cfg.rt_priority);
        ns->st.realtime = rc == 0;
        if (rc != 0)
            log_msg(ns, TUTTI_LOG_WARN,
                    "no real-time priority (%s): running at normal priority, later "
                    "when the machine is busy",
                    strerror(rc));
    }
    uv_update_time(&ns->loop);
    ns->start = tutti_net_now();
    for (int d = 0; d < 2; d++)
        tutti_rng_seed(&ns->jc[d].rng, ns->cfg.seed ^ mix(0x6a177e2ull + (uint64_t)d));
    ns->next_status = ns->start + TUTTI_S;
    if (!ns->stopping) {
        on_event_timer(&ns->event_timer);
        uv_timer_start(&ns->house, on_house, 50, 50);
    }
    return uv_run(&ns->loop, UV_RUN_DEFAULT) < 0 ? TUTTI_ETRANSPORT : 0;
}

void netsim_stop(netsim *ns)
{
    uv_async_send(&ns->async);
}

double netsim_late_quantile(const uint64_t *hist, double q)
{
    uint64_t total = 0, seen = 0;
    for (int b = 0; b < NETSIM_LATE_BUCKETS; b++)
        total += hist[b];
    if (!total) return 0;
    for (int b = 0; b < NETSIM_LATE_BUCKETS; b++) {
        seen += hist[b];
        if ((double)seen >= q * (double)total) return (double)((uint64_t)1 << b);
    }
    return (double)((uint64_t)1 << (NETSIM_LATE_BUCKETS - 1));
}

void netsim_stats_get(const netsim *ns, netsim_stats *st)
{
    *st = ns->st;
    st->lead = ns->lead;
}

void netsim_destroy(netsim *ns)
{
    if (!ns) return;
    if (ns->loop_open) {
        begin_stop(ns);
        uv_run(&ns->loop, UV_RUN_DEFAULT);
        uv_loop_close(&ns->loop);
    }
    free(ns->wheap);
    free(ns->events);
    free(ns);
}
