/*
 * `tutti bench netsim`: how exactly the impairment relay imposes what it is
 * asked for, on loopback.
 *
 * Setup: the relay runs in this process on a thread of its own (its own libuv
 * loop, as `tutti netsim` runs it); this thread is both the sender, which
 * writes small timestamped messages (24 bytes, one write each, TCP_NODELAY)
 * into connections through the relay, and the receiver at the far end. A
 * message's one-way delay runs from the time stamped in it, just before the
 * write, to the moment the receiving socket had it: the kernel's receive
 * timestamp (SO_TIMESTAMPNS), both on CLOCK_MONOTONIC. That is what the relay
 * controls; when the receiving thread itself got round to reading it is
 * printed as well, for comparison (that adds the receiver's own wake-up).
 * The delay includes both loopback hops and everything the relay does.
 *
 * First the machine: 500 sleeps of 1 ms say how late a sleeping thread
 * wakes here. On a virtual machine that is 50-100 us typically and
 * milliseconds at times; it is what the relay's spin (netsim.c) works around,
 * and what remains of it sets the tail of the figures below.
 *
 * Runs:
 * - fixed: --delay, no jitter, --conns connections each sending every
 *   --interval ms. The error is measured minus requested; its p99 is the
 *   acceptance figure (target: at most 500 us). The relay's own lateness
 *   (when it wrote a segment compared with the model's time for it) comes
 *   from its histogram.
 * - jitter, once per distribution (uniform, normal, pareto) with --jitter:
 *   the measured delays against the model's own distribution (a million draws
 *   of the same function), with the independent jitter model (one draw per
 *   message; the queue model's curve has the same distribution at every
 *   moment but few independent values in a short run). Messages on one connection are spaced wider than
 *   the distribution's range, so in-order delivery never bunches them and the
 *   measured distribution is the drawn one; connections are added to keep
 *   the sample rate up.
 * - loss: --loss on one connection sending every 2 ms. Every loss stalls the
 *   stream; the first message of a stall arrives late by the repair time,
 *   which the SACK model puts at 1.25 round trips (the loss is noticed when
 *   the next segment's acknowledgement comes back, after RACK's quarter-RTT
 *   reordering window). The median stall is compared with that.
 */
#define _GNU_SOURCE
#include "cli.h"
#include "netsim.h"

#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static const char usage[] =
    "usage: tutti bench netsim [--delay MS] [--jitter MS] [--loss PCT] [--seconds S]\n"
    "                          [--conns N] [--interval MS] [--seed N] [--spin-max US]\n"
    "                          [--no-realtime]\n"
    "\n"
    "Measures, on loopback, how closely the netsim relay imposes a delay: a fixed\n"
    "delay (the acceptance figure: error p99 at most 500 us), then a jitter run per\n"
    "distribution compared with the model's own distribution, then a lossy run\n"
    "whose stalls are compared with the loss model's repair time.\n"
    "\n"
    "  --delay MS      one-way delay asked of the relay (default 20)\n"
    "  --jitter MS     jitter of the distribution runs (default 2; 0 skips them)\n"
    "  --loss PCT      loss of the lossy run (default 2; 0 skips it)\n"
    "  --seconds S     length of each run (default 2)\n"
    "  --conns N       connections of the fixed run (default 4)\n"
    "  --interval MS   each connection sends every MS in the fixed run (default 4)\n"
    "  --seed N        the relay's seed (default 1)\n"
    "  --spin-max US   the relay's spin before deadlines (default 500, as tutti\n"
    "                  netsim; 0: sleep only)\n"
    "  --no-realtime   measure the fixed delay at normal priority only (by default\n"
    "                  at real-time priority, as tutti netsim --realtime, when the\n"
    "                  system allows it, and then at normal priority too)\n"
    "\n"
    "The last line is one JSON object.\n";

#define MAGIC 0x7e770001u
#define MAX_CONNS 64

typedef struct msg {
    uint32_t magic, conn;
    uint64_t seq;
    int64_t sent;
} msg;

typedef struct sample {
    uint32_t conn;
    uint64_t seq;
    double delay_ms;  /* until the receiving socket had it (kernel timestamp) */
    double thread_ms; /* until the receiving thread had read it */
} sample;

typedef struct run_result {
    sample *s;
    size_t n, expected;
    netsim_stats st;
} run_result;

static void *relay_thread(void *arg)
{
    netsim_run(arg);
    return NULL;
}

static int listen_any(int *port)
{
    int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t al = sizeof a;
    if (s < 0 || bind(s, (struct sockaddr *)&a, sizeof a) || listen(s, MAX_CONNS) ||
        getsockname(s, (struct sockaddr *)&a, &al)) {
        if (s >= 0) close(s);
        return -1;
    }
    *port = ntohs(a.sin_port);
    return s;
}

static int dial(int port)
{
    int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), one = 1;
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_port = htons((uint16_t)port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    if (s < 0 || connect(s, (struct sockaddr *)&a, sizeof a)) {
        if (s >= 0) close(s);
        return -1;
    }
    setsockopt(s, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    return s;
}

/* When the kernel received what recvmsg returned (the last of it), on
 * CLOCK_MONOTONIC; `now` when there is no timestamp. */
static tutti_time kernel_time(struct msghdr *m, tutti_time now)
{
    for (struct cmsghdr *h = CMSG_FIRSTHDR(m); h; h = CMSG_NXTHDR(m, h)) {
        if (h->cmsg_level != SOL_SOCKET || h->cmsg_type != SO_TIMESTAMPNS) continue;
        struct timespec ts, real;
        memcpy(&ts, CMSG_DATA(h), sizeof ts);
        clock_gettime(CLOCK_REALTIME, &real);
        tutti_time mono = tutti_net_now();
        tutti_time ago =
            ((tutti_time)real.tv_sec - ts.tv_sec) * TUTTI_S + (real.tv_nsec - ts.tv_nsec);
        if (ago >= 0 && ago < TUTTI_S) return mono - ago;
    }
    return now;
}

/*
 * One run: `conns` connections through a relay with `link` up (and the same
 * delay, no impairment, down), each sending every `spacing` for `seconds`.
 */
static tutti_time spin_max = 500 * 1000;
static int rt_priority = NETSIM_RT_PRIORITY;

static int run(const netsim_link *link, int conns, tutti_time spacing, double seconds,
               uint64_t seed, run_result *res)
{
    memset(res, 0, sizeof *res);
    int rport, lst = listen_any(&rport), rc = CLI_FAIL;
    int tx[MAX_CONNS], rx[MAX_CONNS], nrx = 0, ntx = 0;
    netsim *ns = NULL;
    pthread_t th;
    bool started = false;
    if (lst < 0) {
        fprintf(stderr, "tutti bench netsim: cannot listen on 127.0.0.1\n");
        return CLI_FAIL;
    }
    netsim_config cfg;
    netsim_config_init(&cfg);
    cfg.listen_host = "127.0.0.1";
    cfg.to_host = "127.0.0.1";
    cfg.to_port = rport;
    cfg.link[NETSIM_UP] = *link;
    memset(&cfg.link[NETSIM_DOWN], 0, sizeof cfg.link[NETSIM_DOWN]);
    cfg.link[NETSIM_DOWN].delay = link->delay;
    cfg.seed = seed;
    /* one draw per message: the jitter runs compare many independent draws
     * with the distribution (the queue model's curve would give a few
     * hundred independent values in a 2 s run) */
    cfg.jitter_model = NETSIM_JITTER_INDEPENDENT;
    cfg.spin_max = spin_max;
    cfg.rt_priority = rt_priority;
    if (netsim_create(&ns, &cfg) != 0) goto out;
    if (pthread_create(&th, NULL, relay_thread, ns) != 0) goto out;
    started = true;

    for (ntx = 0; ntx < conns; ntx++)
        if ((tx[ntx] = dial(netsim_port(ns))) < 0) goto out;
    for (nrx = 0; nrx < conns; nrx++) {
        struct pollfd pf = {lst, POLLIN, 0};
        if (poll(&pf, 1, 5000) != 1) goto out;
        if ((rx[nrx] = accept4(lst, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK)) < 0)
            goto out;
        int one = 1;
        setsockopt(rx[nrx], SOL_SOCKET, SO_TIMESTAMPNS, &one, sizeof one);
    }

    uint64_t total = (uint64_t)(seconds * 1e9 / ((double)spacing / conns));
    res->expected = total;
    res->s = calloc(total ? total : 1, sizeof *res->s);
    if (!res->s) goto out;
    /* Well after the modelled handshake (one round trip). */
    const tutti_time t0 =
        tutti_net_now() + 2 * (link->delay + link->jitter) + 100 * TUTTI_MS;
    const tutti_time gap = spacing / conns;
    uint64_t next = 0, seqs[MAX_CONNS] = {0};
    uint8_t buf[MAX_CONNS][4096];
    size_t have[MAX_CONNS] = {0};
    tutti_time drain_until =
        t0 + (tutti_time)total * gap + 3 * TUTTI_S + 40 * (link->delay + link->jitter);
    struct pollfd pf[MAX_CONNS];
    for (int i = 0; i < conns; i++)
        pf[i] = (struct pollfd){rx[i], POLLIN, 0};

    while (res->n < total) {
        tutti_time now = tutti_net_now();
        if (now > drain_until) break;
        if (next < total) {
            tutti_time due = t0 + (tutti_time)next * gap;
            if (now >= due) {
                int c = (int)(next % (uint64_t)conns);
                msg m = {MAGIC, (uint32_t)c, seqs[c]++, 0};
                m.sent = tutti_net_now();
                if (write(tx[c], &m, sizeof m) != (ssize_t)sizeof m) goto out;
                next++;
                continue;
            }
        }
        tutti_time wait =
            next < total ? t0 + (tutti_time)next * gap - now : 50 * TUTTI_MS;
        struct timespec ts = {(time_t)(wait / TUTTI_S), (long)(wait % TUTTI_S)};
        int r = ppoll(pf, (nfds_t)conns, &ts, NULL);
        if (r <= 0) continue;
        for (int i = 0; i < conns; i++) {
            if (!(pf[i].revents & POLLIN)) continue;
            struct iovec iov = {buf[i] + have[i], sizeof buf[i] - have[i]};
            union {
                char b[CMSG_SPACE(sizeof(struct timespec)) + 64];
                struct cmsghdr align;
            } cm;
            struct msghdr mh;
            memset(&mh, 0, sizeof mh);
            mh.msg_iov = &iov;
            mh.msg_iovlen = 1;
            mh.msg_control = cm.b;
            mh.msg_controllen = sizeof cm.b;
            ssize_t got = recvmsg(rx[i], &mh, 0);
            tutti_time at = tutti_net_now(), kat = kernel_time(&mh, at);
            if (got <= 0) continue;
            have[i] += (size_t)got;
            size_t off = 0;
            for (; have[i] - off >= sizeof(msg); off += sizeof(msg)) {
                msg m;
                memcpy(&m, buf[i] + off, sizeof m);
                if (m.magic != MAGIC || res->n >= total) goto out;
                res->s[res->n++] = (sample){m.conn, m.seq, (double)(kat - m.sent) / 1e6,
                                            (double)(at - m.sent) / 1e6};
            }
            memmove(buf[i], buf[i] + off, have[i] - off);
            have[i] -= off;
        }
    }
    rc = CLI_OK;
out:
    for (int i = 0; i < ntx; i++)
        close(tx[i]);
    for (int i = 0; i < nrx; i++)
        close(rx[i]);
    close(lst);
    if (started) {
        netsim_stop(ns);
        pthread_join(th, NULL);
    }
    if (ns) netsim_stats_get(ns, &res->st);
    netsim_destroy(ns);
    if (rc != CLI_OK) fprintf(stderr, "tutti bench netsim: a run failed\n");
    return rc;
}

/* The machine's own timer wake-up latency: `n` sleeps of 1 ms, us late. */
static void machine_wakeups(int n, double *p50, double *p99, double *max)
{
    double *late = malloc((size_t)n * sizeof *late);
    *p50 = *p99 = *max = 0;
    if (!late) return;
    for (int i = 0; i < n; i++) {
        tutti_time due = tutti_net_now() + TUTTI_MS;
        struct timespec ts = {(time_t)(due / TUTTI_S), (long)(due % TUTTI_S)};
        while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR) {
        }
        late[i] = (double)(tutti_net_now() - due) / 1e3;
    }
    *p50 = tutti_percentile(late, (size_t)n, 0.5);
    *p99 = tutti_percentile(late, (size_t)n, 0.99);
    *max = tutti_percentile(late, (size_t)n, 1.0);
    free(late);
}

typedef struct quantiles {
    double mean, p1, p50, p99, max;
} quantiles;

static quantiles quantiles_of(double *v, size_t n)
{
    quantiles q = {0, 0, 0, 0, 0};
    if (!n) return q;
    for (size_t i = 0; i < n; i++)
        q.mean += v[i];
    q.mean /= (double)n;
    q.p1 = tutti_percentile(v, n, 0.01);
    q.p50 = tutti_percentile(v, n, 0.50);
    q.p99 = tutti_percentile(v, n, 0.99);
    q.max = tutti_percentile(v, n, 1.0);
    return q;
}

/* The model's distribution of one-way delays (ms). */
static quantiles model_of(const netsim_link *l)
{
    enum { DRAWS = 1000000 };
    double *v = malloc(DRAWS * sizeof *v);
    quantiles q = {0, 0, 0, 0, 0};
    if (!v) return q;
    tutti_rng rng;
    tutti_rng_seed(&rng, 12345);
    tutti_path p = {l->delay, l->jitter, l->dist, 0};
    for (int i = 0; i < DRAWS; i++)
        v[i] = (double)tutti_path_delay(&p, &rng) / 1e6;
    q = quantiles_of(v, DRAWS);
    free(v);
    return q;
}

static const char *const dist_names[3] = {"uniform", "normal", "pareto"};

/* The fixed-delay run and what it found. */
typedef struct fixed_result {
    size_t n, expected;
    quantiles err, thread; /* us: to the socket, to the reading thread */
    double min_err, own50, own99, lead_us;
    bool realtime;
} fixed_result;

static int fixed_run(double delay_ms, int conns, double interval_ms, double seconds,
                     uint64_t seed, fixed_result *f)
{
    netsim_link l;
    memset(&l, 0, sizeof l);
    l.delay = (tutti_time)(delay_ms * 1e6);
    run_result r;
    memset(f, 0, sizeof *f);
    if (run(&l, conns, (tutti_time)(interval_ms * 1e6), seconds, seed, &r))
        return CLI_FAIL;
    size_t n = r.n;
    double *err = malloc((n ? n : 1) * sizeof *err);
    double *terr = malloc((n ? n : 1) * sizeof *terr);
    if (!err || !terr) {
        free(err);
        free(terr);
        free(r.s);
        return CLI_FAIL;
    }
    f->min_err = n ? (r.s[0].delay_ms - delay_ms) * 1e3 : 0;
    for (size_t i = 0; i < n; i++) {
        err[i] = (r.s[i].delay_ms - delay_ms) * 1e3;
        terr[i] = (r.s[i].thread_ms - delay_ms) * 1e3;
        if (err[i] < f->min_err) f->min_err = err[i];
    }
    f->n = n;
    f->expected = r.expected;
    f->err = quantiles_of(err, n);
    f->thread = quantiles_of(terr, n);
    f->own50 = netsim_late_quantile(r.st.dir[NETSIM_UP].late_hist, 0.5);
    f->own99 = netsim_late_quantile(r.st.dir[NETSIM_UP].late_hist, 0.99);
    f->lead_us = (double)r.st.lead / 1e3;
    f->realtime = r.st.realtime;
    free(err);
    free(terr);
    free(r.s);
    return CLI_OK;
}

static void print_fixed(const fixed_result *f, double delay_ms, uint64_t conns,
                        double interval_ms)
{
    printf("fixed %.3f ms, %s priority, %llu connections every %.3f ms: %zu/%zu "
           "messages, error (us) mean %.1f, p50 %.1f, p99 %.1f, max %.1f, min %.1f\n",
           delay_ms, f->realtime ? "real-time" : "normal", (unsigned long long)conns,
           interval_ms, f->n, f->expected, f->err.mean, f->err.p50, f->err.p99,
           f->err.max, f->min_err);
    printf("  the relay's own lateness (write vs. model time): p50 < %.0f us, p99 < %.0f "
           "us (spin lead %.0f us)\n",
           f->own50, f->own99, f->lead_us);
    printf("  as the receiving thread saw it (its own wake-up included): p50 %.1f, p99 "
           "%.1f, max %.1f us\n",
           f->thread.p50, f->thread.p99, f->thread.max);
}

int tutti_bench_netsim(int argc, char **argv)
{
    double delay_ms = 20, jitter_ms = 2, loss_pct = 2, seconds = 2, interval_ms = 4;
    uint64_t conns = 4, seed = 1;
    double spin_us = 500;
    bool normal_only = false;
    const cli_opt opts[] = {
        {"delay", CLI_NUMBER, &delay_ms, 0, 10000, "milliseconds"},
        {"jitter", CLI_NUMBER, &jitter_ms, 0, 1000, "milliseconds"},
        {"loss", CLI_NUMBER, &loss_pct, 0, 50, "percent"},
        {"seconds", CLI_NUMBER, &seconds, 0.1, 600, "seconds"},
        {"conns", CLI_COUNT, &conns, 1, MAX_CONNS, "connections"},
        {"interval", CLI_NUMBER, &interval_ms, 0.1, 10000, "milliseconds"},
        {"seed", CLI_COUNT, &seed, 0, 1e18, "seed"},
        {"spin-max", CLI_NUMBER, &spin_us, 0, 100000, "microseconds"},
        {"no-realtime", CLI_FLAG, &normal_only, 0, 0, NULL},
        {NULL, 0, NULL, 0, 0, NULL},
    };
    int rc = cli_parse("bench netsim", usage, argc, argv, opts, NULL, NULL);
    if (rc) return rc < 0 ? CLI_OK : rc;
    spin_max = (tutti_time)(spin_us * 1e3);
    rt_priority = normal_only ? 0 : NETSIM_RT_PRIORITY;
    signal(SIGPIPE, SIG_IGN);
    prctl(PR_SET_TIMERSLACK, 1UL, 0, 0, 0);

    /* ---- the machine: how late a sleeping thread wakes */
    double wake50, wake99, wakemax;
    machine_wakeups(500, &wake50, &wake99, &wakemax);
    printf("setup: relay in this process (own thread and loop), loopback, 24-byte "
           "messages, TCP_NODELAY; delays to the receiving socket (kernel timestamp)\n");
    printf(
        "machine: a sleeping thread wakes late by p50 %.0f us, p99 %.0f us, max %.0f us "
        "(500 sleeps of 1 ms)\n",
        wake50, wake99, wakemax);

    /* ---- fixed delay: as `tutti netsim --realtime` (when allowed), then at
     * normal priority, as `tutti netsim` runs by default */
    fixed_result fx, fn;
    if (fixed_run(delay_ms, (int)conns, interval_ms, seconds, seed, &fx)) return CLI_FAIL;
    print_fixed(&fx, delay_ms, conns, interval_ms);
    bool two = fx.realtime;
    if (two) {
        rt_priority = 0;
        if (fixed_run(delay_ms, (int)conns, interval_ms, seconds, seed, &fn))
            return CLI_FAIL;
        print_fixed(&fn, delay_ms, conns, interval_ms);
        rt_priority = NETSIM_RT_PRIORITY;
    } else {
        fn = fx;
    }
    printf("  (target: error p99 <= 500 us)\n");

    /* ---- jitter, per distribution */
    netsim_link l;
    memset(&l, 0, sizeof l);
    l.delay = (tutti_time)(delay_ms * 1e6);
    run_result r;
    quantiles jm[3], jq[3];
    size_t jn[3] = {0, 0, 0};
    memset(jm, 0, sizeof jm);
    memset(jq, 0, sizeof jq);
    for (int d = 0; jitter_ms > 0 && d < 3; d++) {
        netsim_link j = l;
        j.jitter = (tutti_time)(jitter_ms * 1e6);
        j.dist = d;
        tutti_path p = {j.delay, j.jitter, d, 0};
        /* Wider than the range of draws: one connection never bunches. */
        tutti_time range = tutti_path_max_delay(&p) - (j.delay - j.jitter);
        tutti_time spacing = range * 5 / 4 + TUTTI_MS;
        int nc = (int)(spacing / (TUTTI_MS * 5 / 4));
        if (nc < 1) nc = 1;
        if (nc > MAX_CONNS) nc = MAX_CONNS;
        if (run(&j, nc, spacing, seconds, seed, &r)) return CLI_FAIL;
        double *v = malloc((r.n ? r.n : 1) * sizeof *v);
        if (!v) {
            free(r.s);
            return CLI_FAIL;
        }
        for (size_t i = 0; i < r.n; i++)
            v[i] = r.s[i].delay_ms;
        jn[d] = r.n;
        jq[d] = quantiles_of(v, r.n);
        jm[d] = model_of(&j);
        free(v);
        free(r.s);
        printf("jitter %s %.3f ms on %.3f ms, %d connections every %.1f ms, %zu "
               "messages (ms): mean %.3f (model %.3f), p1 %.3f (%.3f), p50 %.3f "
               "(%.3f), p99 %.3f (%.3f)\n",
               dist_names[d], jitter_ms, delay_ms, nc, cli_ms(spacing), jn[d], jq[d].mean,
               jm[d].mean, jq[d].p1, jm[d].p1, jq[d].p50, jm[d].p50, jq[d].p99,
               jm[d].p99);
    }

    /* ---- loss: stalls of one connection */
    uint64_t stalls = 0, lost = 0;
    double stall_p50 = 0, stall_model = 0;
    if (loss_pct > 0) {
        netsim_link ll = l;
        ll.loss = loss_pct / 100;
        tutti_time spacing = 2 * TUTTI_MS;
        if (run(&ll, 1, spacing, seconds, seed, &r)) return CLI_FAIL;
        double *peaks = malloc((r.n ? r.n : 1) * sizeof *peaks);
        if (!peaks) {
            free(r.s);
            return CLI_FAIL;
        }
        /* A stall starts where the excess jumps up; its first message carries
         * the whole repair time. */
        double prev = 0;
        for (size_t i = 0; i < r.n; i++) {
            double ex = r.s[i].delay_ms - delay_ms;
            if (ex > 5 && ex > prev + 1) peaks[stalls++] = ex;
            prev = ex;
        }
        lost = r.st.dir[NETSIM_UP].lost;
        stall_p50 = stalls ? tutti_percentile(peaks, stalls, 0.5) : 0;
        netsim_link down = {l.delay, 0, 0, 0, 0, 0};
        stall_model = 1.25 * cli_ms(netsim_srtt(&ll, &down));
        free(peaks);
        free(r.s);
        printf("loss %.1f%%, one connection every 2 ms, %zu messages: %" PRIu64
               " stalls (the relay lost %" PRIu64 " transmissions), median stall %.2f "
               "ms (model: 1.25 round trips = %.2f ms)\n",
               loss_pct, r.n, stalls, lost, stall_p50, stall_model);
    }

    bool complete = fx.n == fx.expected;
    bool met = complete && fx.err.p99 <= 500;
    printf("{\"bench\":\"netsim\",\"delay_ms\":%.3f,\"samples\":%zu,\"complete\":%s,"
           "\"realtime\":%s,\"delay_err_mean_us\":%.1f,\"delay_err_p50_us\":%.1f,"
           "\"delay_err_p99_us\":%.1f,\"delay_err_max_us\":%.1f,"
           "\"delay_err_min_us\":%.1f,\"thread_err_p50_us\":%.1f,"
           "\"thread_err_p99_us\":%.1f,\"relay_late_p99_us_below\":%.0f,"
           "\"normal_delay_err_p50_us\":%.1f,\"normal_delay_err_p99_us\":%.1f,"
           "\"normal_delay_err_max_us\":%.1f",
           delay_ms, fx.n, complete ? "true" : "false", fx.realtime ? "true" : "false",
           fx.err.mean, fx.err.p50, fx.err.p99, fx.err.max, fx.min_err, fx.thread.p50,
           fx.thread.p99, fx.own99, fn.err.p50, fn.err.p99, fn.err.max);
    for (int d = 0; jitter_ms > 0 && d < 3; d++)
        printf(",\"jitter_%s_samples\":%zu,\"jitter_%s_mean_err_us\":%.1f,"
               "\"jitter_%s_p50_err_us\":%.1f,\"jitter_%s_p99_err_us\":%.1f",
               dist_names[d], jn[d], dist_names[d], (jq[d].mean - jm[d].mean) * 1e3,
               dist_names[d], (jq[d].p50 - jm[d].p50) * 1e3, dist_names[d],
               (jq[d].p99 - jm[d].p99) * 1e3);
    if (loss_pct > 0)
        printf(",\"loss_pct\":%.2f,\"loss_stalls\":%" PRIu64 ",\"loss_lost\":%" PRIu64
               ",\"loss_stall_p50_ms\":%.2f,\"loss_stall_model_ms\":%.2f",
               loss_pct, stalls, lost, stall_p50, stall_model);
    printf(",\"machine_wake_p50_us\":%.0f,\"machine_wake_p99_us\":%.0f,"
           "\"machine_wake_max_us\":%.0f,\"spin_max_us\":%.0f,\"jitter_ms\":%.3f,"
           "\"seed\":%llu,\"target_p99_us\":500,\"target_met\":%s}\n",
           wake50, wake99, wakemax, spin_us, jitter_ms, (unsigned long long)seed,
           met ? "true" : "false");
    return met ? CLI_OK : CLI_FAIL;
}
