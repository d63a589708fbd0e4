/*
 * `tutti bench clock`: how well the clock filter estimates session time over
 * a range of simulated paths.
 *
 * Each run is one member clock against the hub on virtual time: the member's
 * clock is 37 ms plus a seeded drift (uniform in +/-100 ppm) off the session
 * clock, it pings at the filter's own interval, the hub answers after a hold
 * of 0-20 us, and each direction is FIFO (as over TCP) with delays drawn from
 * the profile. The error is what an application would see: every 10 ms of
 * virtual time after a 10 s warm-up, the estimate's session time for the
 * member's local clock (extrapolated with the published drift) minus the
 * true session time. Errors of all seeds are pooled per profile. Lock time is
 * the first locked estimate; a bound miss is a locked estimate whose interval
 * (at its ref_local) does not contain the truth, and makes the exit status 1.
 * "Two apart" sets seeds 0 and 1, 2 and 3, ... against each other at each
 * query instant: the difference of two members' errors, what two cities of
 * one session hear (the Link bridges' acceptance run). The city profiles are
 * that run's paths (tests/link/cities.sh), with a member clock that does not
 * drift and, but for city200q, the session's own frames on the same FIFO
 * path, which a ping may wait behind. Those frames carry their sender's
 * clock (wire.h, TUTTI__REC_STAMP), and the member notes them as one-way
 * samples (clock.h, tutti__clock_note): the hub's as they arrive, its own
 * as the hub's echo comes back (here: with the next pong); --no-stamps
 * leaves them out, as before they existed.
 */
#include "bench.h"
#include "clock.h"
#include "sim/sim.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define BENCH_SESSION0 ((tutti_time)3900000000 * TUTTI_S)
#define BENCH_LOCAL0 ((tutti_time)5000 * TUTTI_S)
#define BENCH_OFFSET (37 * TUTTI_MS)
#define BENCH_QUERY (10 * TUTTI_MS)
#define BENCH_INFLIGHT 64u
#define BENCH_FRAMES 1024u

typedef struct profile {
    const char *name, *what;
    tutti_path up, down;
    double drift_ppm;              /* the member clock's drift: uniform in +/- this */
    tutti_time frames_up, frames_down; /* other frames on the path, one every ... (0: none) */
    bool queue; /* delays from a smooth random curve (the relays' queue model), not
                 * one independent draw per packet */
} profile;

#define MS(x) ((tutti_time)((x)*1e6))
static const profile profiles[] = {
    {"lan",
     "0.1 +/- 0.1 ms uniform each way",
     {MS(0.1), MS(0.1), TUTTI_JITTER_UNIFORM, 0},
     {MS(0.1), MS(0.1), TUTTI_JITTER_UNIFORM, 0}, 100, 0, 0, false},
    {"wan50",
     "50 +/- 10 ms uniform each way",
     {MS(50), MS(10), TUTTI_JITTER_UNIFORM, 0},
     {MS(50), MS(10), TUTTI_JITTER_UNIFORM, 0}, 100, 0, 0, false},
    {"wan150",
     "150 ms, normal sd 20 ms (+/- 40 ms clip 80) each way",
     {MS(150), MS(40), TUTTI_JITTER_NORMAL, 0},
     {MS(150), MS(40), TUTTI_JITTER_NORMAL, 0}, 100, 0, 0, false},
    {"rtt400",
     "200 +/- 20 ms uniform each way",
     {MS(200), MS(20), TUTTI_JITTER_UNIFORM, 0},
     {MS(200), MS(20), TUTTI_JITTER_UNIFORM, 0}, 100, 0, 0, false},
    {"asym",
     "60 +/- 5 ms up, 40 +/- 5 ms down, uniform",
     {MS(60), MS(5), TUTTI_JITTER_UNIFORM, 0},
     {MS(40), MS(5), TUTTI_JITTER_UNIFORM, 0}, 100, 0, 0, false},
    {"pareto",
     "30 ms base, Pareto jitter 10 ms (min 20, mean 40) each way",
     {MS(30), MS(10), TUTTI_JITTER_PARETO, 0},
     {MS(30), MS(10), TUTTI_JITTER_PARETO, 0}, 100, 0, 0, false},
    /* The Link bridge's acceptance run (tests/link/cities.sh): `tutti netsim
     * --jitter-model independent`, D +/- D/10 uniform per packet in order,
     * with the session's own frames sharing the path (the member's heartbeat
     * every 20 ms up, the hub's close every h = L/10 down, L = 1.2 D + 40 ms)
     * and one clock for both ends (network namespaces): no drift. */
    {"city50",
     "50 +/- 5 ms uniform each way, frames every 20 ms up / 10 ms down, no drift",
     {MS(50), MS(5), TUTTI_JITTER_UNIFORM, 0},
     {MS(50), MS(5), TUTTI_JITTER_UNIFORM, 0}, 0, MS(20), MS(10), false},
    {"city100",
     "100 +/- 10 ms uniform each way, frames every 20 ms up / 16 ms down, no drift",
     {MS(100), MS(10), TUTTI_JITTER_UNIFORM, 0},
     {MS(100), MS(10), TUTTI_JITTER_UNIFORM, 0}, 0, MS(20), MS(16), false},
    {"city200",
     "200 +/- 20 ms uniform each way, frames every 20 ms each way, no drift",
     {MS(200), MS(20), TUTTI_JITTER_UNIFORM, 0},
     {MS(200), MS(20), TUTTI_JITTER_UNIFORM, 0}, 0, MS(20), MS(20), false},
    {"city200q",
     "200 +/- 20 ms uniform each way, no other frames, no drift",
     {MS(200), MS(20), TUTTI_JITTER_UNIFORM, 0},
     {MS(200), MS(20), TUTTI_JITTER_UNIFORM, 0}, 0, 0, 0, false},
    {"city200d",
     "as city200 with the member clock drifting up to +/-100 ppm",
     {MS(200), MS(20), TUTTI_JITTER_UNIFORM, 0},
     {MS(200), MS(20), TUTTI_JITTER_UNIFORM, 0}, 100, MS(20), MS(20), false},
    /* The relays' default model (docs/evaluation.md's grid): a delay that
     * wanders smoothly over its whole range, frames on the path. */
    {"queue200",
     "200 +/- 40 ms each way, queue model (a smooth random curve), frames",
     {MS(200), MS(40), TUTTI_JITTER_UNIFORM, 0},
     {MS(200), MS(40), TUTTI_JITTER_UNIFORM, 0}, 100, MS(20), MS(20), true},
    {"queue50",
     "50 +/- 40 ms each way, queue model (a smooth random curve), frames",
     {MS(50), MS(40), TUTTI_JITTER_UNIFORM, 0},
     {MS(50), MS(40), TUTTI_JITTER_UNIFORM, 0}, 100, MS(20), MS(10), true},
};
#undef MS
#define NPROFILES (sizeof profiles / sizeof profiles[0])

/* The relays' queue model (cli/netsim.c, "The jitter curve"): standard
 * normal values at knots 4 x jitter apart (at least 10 ms), joined so that
 * every instant's value is standard normal, through the path's quantile
 * function. */
#define BENCH_KNOTS 4096u

typedef struct curve {
    tutti_time span;
    double z[BENCH_KNOTS];
} curve;

static void curve_init(curve *c, const tutti_path *p, tutti_rng *rng)
{
    c->span = 4 * p->jitter > 10 * TUTTI_MS ? 4 * p->jitter : 10 * TUTTI_MS;
    for (uint32_t i = 0; i < BENCH_KNOTS; i++)
        c->z[i] = tutti_rng_normal(rng);
}

static tutti_time curve_delay(const curve *c, const tutti_path *p, tutti_time x)
{
    uint64_t k = (uint64_t)(x / c->span);
    double f = (double)(x % c->span) / (double)c->span;
    double z0 = c->z[k % BENCH_KNOTS], z1 = c->z[(k + 1u) % BENCH_KNOTS];
    return tutti_path_delay_z(p, ((1 - f) * z0 + f * z1) / sqrt((1 - f) * (1 - f) + f * f));
}

typedef struct flight {
    tutti_time t1, t2, t3, arrive;
} flight;

/* One member clock against the hub. */
typedef struct run {
    tutti_rng rng;
    const profile *p;
    double drift; /* member clock rate - 1 */
    tutti__clock c;
    flight q[BENCH_INFLIGHT];
    uint32_t qhead, qn;
    tutti_time last_up, last_down, next_send;
    tutti_time frame_up, frame_down; /* the next other frame's send time */
    /* Those frames' (sent, arrived), true time, up and down, until the
     * member notes their stamps (wire.h, TUTTI__REC_STAMP). */
    tutti_time fq[2][BENCH_FRAMES][2];
    uint32_t fh[2], fn[2];
    curve cv[2]; /* up, down: the queue model's */
} run;

/* The delay of a packet sent at true time x on a direction. */
static tutti_time delay_at(run *r, const tutti_path *p, tutti_time x)
{
    if (!r->p->queue) return tutti_path_delay(p, &r->rng);
    return curve_delay(&r->cv[p == &r->p->up ? 0 : 1], p, x);
}

static bool stamps = true; /* --no-stamps: the frames' stamps unused */


/* Other frames sent on a direction until time t: each waits for the ones
 * before it, so a ping behind them may wait too. */
static void frames_until(run *r, const tutti_path *p, tutti_time every, tutti_time *next,
                         tutti_time *last, tutti_time t)
{
    if (every <= 0) return;
    int dir = p == &r->p->up ? 0 : 1;
    for (; *next <= t; *next += every) {
        tutti_time a = *next + delay_at(r, p, *next);
        if (a > *last) *last = a;
        if (r->fn[dir] < BENCH_FRAMES) {
            uint32_t i = (r->fh[dir] + r->fn[dir]++) % BENCH_FRAMES;
            r->fq[dir][i][0] = *next, r->fq[dir][i][1] = *last;
        }
    }
}

static tutti_time local_at(const run *r, tutti_time t)
{
    return BENCH_LOCAL0 + t + (tutti_time)llround((double)t * r->drift);
}

/* The stamps of the frames the member knows of when a pong arrives at true
 * time `arrive`, sent at `sent`: the hub's frames that came before it, and
 * its own frames the hub had when it sent the pong (the echo). */
static void note_frames(run *r, tutti_time sent, tutti_time arrive)
{
    for (int dir = 0; dir < 2; dir++)
        while (r->fn[dir]) {
            tutti_time *f = r->fq[dir][r->fh[dir]];
            if (f[1] > (dir == 0 ? sent : arrive)) break;
            if (stamps) {
                if (dir == 0)
                    tutti__clock_note(&r->c, local_at(r, f[0]),
                                      BENCH_SESSION0 + BENCH_OFFSET + f[1], true);
                else
                    tutti__clock_note(&r->c, local_at(r, f[1]),
                                      BENCH_SESSION0 + BENCH_OFFSET + f[0], false);
            }
            r->fh[dir] = (r->fh[dir] + 1u) % BENCH_FRAMES;
            r->fn[dir]--;
        }
}

static tutti_time true_at(const run *r, tutti_time local)
{
    return (tutti_time)llround((double)(local - BENCH_LOCAL0) / (1.0 + r->drift));
}

/* Error of session time `est` for local time l, in ns, computed without
 * forming the huge absolute values in floating point. */
static double error_at(const run *r, tutti_time l, tutti_time est)
{
    double u = (double)(l - BENCH_LOCAL0);
    double truth_rel = -u * r->drift / (1.0 + r->drift) + (double)BENCH_OFFSET;
    double est_rel = (double)(est - l - (BENCH_SESSION0 - BENCH_LOCAL0));
    return est_rel - truth_rel;
}

static double *grow(double *v, size_t *cap, size_t n)
{
    if (n < *cap) return v;
    *cap = *cap ? *cap * 2 : 4096;
    double *nv = realloc(v, *cap * sizeof *v);
    if (!nv) {
        fprintf(stderr, "tutti bench clock: out of memory\n");
        exit(1);
    }
    return nv;
}


/* "key":value, or "key":null when there is no figure (e.g. never locked). */
static void json_num(const char *key, double v, int prec, bool comma)
{
    if (isfinite(v))
        printf("%s\"%s\":%.*f", comma ? "," : "", key, prec, v);
    else
        printf("%s\"%s\":null", comma ? "," : "", key);
}

static tutti_time mono_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (tutti_time)ts.tv_sec * TUTTI_S + ts.tv_nsec;
}

typedef struct result {
    double err_p50, err_p99, err_max, bound_p50, lock_max, lock_p50, drift_err_p99;
    double signed_p50, add_ns, pings_per_s;
    double pair_p50, pair_p99; /* |difference| of two members' errors at one instant */
    uint64_t misses, rejected, queries, unlocked_queries, samples;
} result;

static void bench_profile(const profile *p, uint32_t seeds, tutti_time dur,
                          tutti_time warm, result *res)
{
    static run r;
    double *err = NULL, *serr = NULL, *bound = NULL, *drift_err = NULL;
    size_t nerr = 0, caperr = 0, capserr = 0, nbound = 0, capbound = 0;
    size_t ndrift = 0, capdrift = 0;
    double locks[1024];
    uint32_t nlocks = 0;
    /* Every seed's signed error at every query instant (NAN while unlocked),
     * to set seeds 0 and 1, 2 and 3, ... against each other as two members
     * of one session would be (what the Link bridges' cities measure). */
    size_t nq = (size_t)(dur / BENCH_QUERY) + 1u;
    double *errs_at = malloc((size_t)seeds * nq * sizeof *errs_at);
    if (!errs_at) {
        fprintf(stderr, "tutti bench clock: out of memory\n");
        exit(1);
    }
    for (size_t i = 0; i < (size_t)seeds * nq; i++)
        errs_at[i] = NAN;
    uint64_t pings = 0;
    tutti_time add_time = 0;
    memset(res, 0, sizeof *res);

    for (uint32_t s = 0; s < seeds; s++) {
        memset(&r, 0, sizeof r);
        r.p = p;
        tutti_rng_seed(&r.rng, 0x636c6f636bull + s); /* "clock" + seed */
        double ppm = (2.0 * tutti_rng_unit(&r.rng) - 1.0) * p->drift_ppm;
        if (p->frames_up > 0) r.frame_up = tutti_rng_range(&r.rng, 0, p->frames_up);
        if (p->frames_down > 0) r.frame_down = tutti_rng_range(&r.rng, 0, p->frames_down);
        r.drift = ppm * 1e-6;
        if (p->queue) {
            curve_init(&r.cv[0], &p->up, &r.rng);
            curve_init(&r.cv[1], &p->down, &r.rng);
        }
        tutti__clock_init(&r.c);
        tutti_time lock_at = -1;
        double true_slope = -r.drift / (1.0 + r.drift);

        for (tutti_time q = BENCH_QUERY; q <= dur; q += BENCH_QUERY) {
            for (;;) {
                tutti_time recv = r.qn ? r.q[r.qhead].arrive : TUTTI_TIME_MAX;
                tutti_time next = recv < r.next_send ? recv : r.next_send;
                if (next > q) break;
                if (recv <= r.next_send) {
                    flight f = r.q[r.qhead];
                    r.qhead = (r.qhead + 1u) % BENCH_INFLIGHT;
                    r.qn--;
                    note_frames(&r, f.t3 - BENCH_SESSION0 - BENCH_OFFSET, f.arrive);
                    tutti_time t0 = mono_now();
                    int rc =
                        tutti__clock_add(&r.c, f.t1, f.t2, f.t3, local_at(&r, f.arrive));
                    add_time += mono_now() - t0;
                    res->samples++;
                    const tutti_clock_estimate *e = &r.c.est;
                    if (rc != 0) res->rejected++;
                    if (e->locked) {
                        if (lock_at < 0) lock_at = f.arrive;
                        tutti_time at = e->ref_local;
                        if (fabs(error_at(&r, at, tutti_clock_to_session(e, at))) >
                            (double)e->bound_ns + 2.0)
                            res->misses++;
                    }
                    continue;
                }
                /* Send a ping at true time next_send. */
                tutti_time t = r.next_send;
                frames_until(&r, &p->up, p->frames_up, &r.frame_up, &r.last_up, t);
                tutti_time a2 = t + delay_at(&r, &p->up, t);
                if (a2 < r.last_up) a2 = r.last_up;
                r.last_up = a2;
                tutti_time a3 = a2 + tutti_rng_range(&r.rng, 0, 20000);
                frames_until(&r, &p->down, p->frames_down, &r.frame_down, &r.last_down, a3);
                tutti_time a4 = a3 + delay_at(&r, &p->down, a3);
                if (a4 < r.last_down) a4 = r.last_down;
                r.last_down = a4;
                if (r.qn == BENCH_INFLIGHT) {
                    fprintf(stderr, "tutti bench clock: too many pings in flight\n");
                    exit(1);
                }
                flight f = {local_at(&r, t), BENCH_SESSION0 + BENCH_OFFSET + a2,
                            BENCH_SESSION0 + BENCH_OFFSET + a3, a4};
                r.q[(r.qhead + r.qn) % BENCH_INFLIGHT] = f;
                r.qn++;
                pings++;
                r.next_send = true_at(&r, f.t1 + tutti__clock_ping_interval(&r.c));
            }
            if (q < warm) continue;
            res->queries++;
            const tutti_clock_estimate *e = &r.c.est;
            if (!e->locked) {
                res->unlocked_queries++;
                continue;
            }
            tutti_time l = local_at(&r, q);
            double x = error_at(&r, l, tutti_clock_to_session(e, l));
            errs_at[(size_t)s * nq + (size_t)(q / BENCH_QUERY)] = x;
            err = grow(err, &caperr, nerr);
            serr = grow(serr, &capserr, nerr);
            serr[nerr] = x;
            err[nerr++] = fabs(x);
            bound = grow(bound, &capbound, nbound);
            bound[nbound++] = (double)e->bound_ns;
            drift_err = grow(drift_err, &capdrift, ndrift);
            drift_err[ndrift++] = fabs(e->drift - true_slope);
        }
        if (nlocks < sizeof locks / sizeof locks[0])
            locks[nlocks++] = lock_at < 0 ? INFINITY : (double)lock_at;
    }
    size_t npair = 0;
    double *pair = malloc((size_t)seeds * nq * sizeof *pair + 1);
    if (!pair) {
        fprintf(stderr, "tutti bench clock: out of memory\n");
        exit(1);
    }
    for (uint32_t s = 0; s + 1u < seeds; s += 2u)
        for (size_t i = 0; i < nq; i++) {
            double a = errs_at[(size_t)s * nq + i], b = errs_at[(size_t)(s + 1u) * nq + i];
            if (isfinite(a) && isfinite(b)) pair[npair++] = fabs(a - b);
        }
    res->pair_p50 = npair ? tutti_percentile(pair, npair, 0.50) : NAN;
    res->pair_p99 = npair ? tutti_percentile(pair, npair, 0.99) : NAN;
    free(pair);
    free(errs_at);
    res->err_p50 = tutti_percentile(err, nerr, 0.50);
    res->err_p99 = tutti_percentile(err, nerr, 0.99);
    res->err_max = tutti_percentile(err, nerr, 1.0);
    res->signed_p50 = tutti_percentile(serr, nerr, 0.50);
    res->bound_p50 = tutti_percentile(bound, nbound, 0.50);
    res->drift_err_p99 = tutti_percentile(drift_err, ndrift, 0.99);
    res->lock_p50 = tutti_percentile(locks, nlocks, 0.50);
    res->lock_max = tutti_percentile(locks, nlocks, 1.0);
    res->add_ns = res->samples ? (double)add_time / (double)res->samples : 0;
    res->pings_per_s = (double)pings / ((double)seeds * (double)dur / 1e9);
    free(err);
    free(serr);
    free(bound);
    free(drift_err);
}

int tutti_bench_clock(int argc, char **argv)
{
    uint32_t seeds = 20;
    double duration_s = 60, warm_s = 10;
    const char *only = NULL;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--no-stamps"))
            stamps = false;
        else if (!strcmp(argv[i], "--seeds") && i + 1 < argc)
            seeds = (uint32_t)strtoul(argv[++i], NULL, 10);
        else if (!strcmp(argv[i], "--profile") && i + 1 < argc)
            only = argv[++i];
        else if (!strcmp(argv[i], "--warmup") && i + 1 < argc)
            warm_s = strtod(argv[++i], NULL);
        else if (!strcmp(argv[i], "--duration") && i + 1 < argc)
            duration_s = strtod(argv[++i], NULL);
        else {
            fprintf(stderr,
                    "usage: tutti bench clock [--seeds N (20)] [--duration S (60)] "
                    "[--warmup S (10)] [--profile NAME] [--no-stamps]\n");
            return 2;
        }
    }
    if (seeds == 0 || seeds > 1000 || !(duration_s > warm_s) || duration_s > 86400) {
        fprintf(stderr,
                "tutti bench clock: --seeds must be 1..1000 and --duration "
                "more than the %.0f s warm-up\n",
                warm_s);
        return 2;
    }
    tutti_time dur = (tutti_time)(duration_s * 1e9), warm = (tutti_time)(warm_s * 1e9);

    result res[NPROFILES];
    uint64_t misses = 0;
    bool all_locked = true;
    bool ran[NPROFILES] = {0};
    for (size_t i = 0; i < NPROFILES; i++) {
        const profile *p = &profiles[i];
        result *r = &res[i];
        if (only && strcmp(only, p->name)) continue;
        ran[i] = true;
        bench_profile(p, seeds, dur, warm, r);
        misses += r->misses + r->rejected;
        if (!isfinite(r->lock_max)) all_locked = false;
        printf(
            "%-7s %s: |error| p50 %.1f us, p99 %.1f us, max %.1f us (median signed "
            "%+.1f us); lock p50 %.0f ms, max %.0f ms; bound p50 %.1f us; drift error "
            "p99 %.2f ppm; two members apart p50 %.1f us, p99 %.1f us; %.1f pings/s; %.1f us "
            "per sample; bound misses %" PRIu64 "\n",
            p->name, p->what, r->err_p50 / 1e3, r->err_p99 / 1e3, r->err_max / 1e3,
            r->signed_p50 / 1e3, r->lock_p50 / 1e6, r->lock_max / 1e6, r->bound_p50 / 1e3,
            r->drift_err_p99 * 1e6, r->pair_p50 / 1e3, r->pair_p99 / 1e3, r->pings_per_s,
            r->add_ns / 1e3, r->misses);
    }

    printf("{\"bench\":\"clock\",\"seeds\":%u,\"duration_s\":%g,\"warmup_s\":%g,"
           "\"profiles\":{",
           seeds, duration_s, warm_s);
    double headline = NAN;
    for (size_t i = 0, n = 0; i < NPROFILES; i++) {
        const result *r = &res[i];
        if (!ran[i]) continue;
        printf("%s\"%s\":{", n++ ? "," : "", profiles[i].name);
        json_num("offset_err_p50_us", r->err_p50 / 1e3, 1, false);
        json_num("offset_err_p99_us", r->err_p99 / 1e3, 1, true);
        json_num("offset_err_max_us", r->err_max / 1e3, 1, true);
        json_num("offset_err_signed_p50_us", r->signed_p50 / 1e3, 1, true);
        json_num("lock_ms_p50", r->lock_p50 / 1e6, 0, true);
        json_num("lock_ms_max", r->lock_max / 1e6, 0, true);
        json_num("bound_p50_us", r->bound_p50 / 1e3, 1, true);
        json_num("drift_err_p99_ppm", r->drift_err_p99 * 1e6, 3, true);
        json_num("pair_diff_p50_us", r->pair_p50 / 1e3, 1, true);
        json_num("pair_diff_p99_us", r->pair_p99 / 1e3, 1, true);
        json_num("pings_per_s", r->pings_per_s, 2, true);
        json_num("us_per_sample", r->add_ns / 1e3, 2, true);
        json_num("bound_misses", (double)r->misses, 0, true);
        json_num("rejected", (double)r->rejected, 0, true);
        json_num("unlocked_queries", (double)r->unlocked_queries, 0, true);
        printf("}");
        if (!strcmp(profiles[i].name, "wan50")) headline = r->err_p99 / 1e3;
    }
    printf("},");
    json_num("offset_err_p99_us", headline, 1, false);
    printf("}\n");
    return misses == 0 && all_locked ? 0 : 1;
}
