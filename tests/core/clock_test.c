/*
 * The clock filter against a simulated member clock with an offset and a
 * drift, over seeded delay models. Truth is computed exactly from the model,
 * so every check compares against what the session clock really read.
 */
#include "test.h"

#include "clock.h"
#include "sim/sim.h"

#include <math.h>
#include <stdlib.h>

#define SEEDS 20
/* At true time 0 the session clock (NTP era, so the numbers are as large as in
 * use) reads SESSION0 and the member's monotonic clock LOCAL0, 37 ms past a
 * whole second; from there the member's clock drifts by a seeded rate. */
#define SESSION0 ((tutti_time)3900000000 * TUTTI_S)
#define LOCAL0 ((tutti_time)5000 * TUTTI_S + 37 * TUTTI_MS)
#define CLOCK_SLACK 1000 /* TUTTI__CLOCK_SLACK in clock.c */
#define MAX_DRIFT 500e-6 /* TUTTI__CLOCK_MAX_DRIFT in clock.c */

/* Seeds per profile: SEEDS, or fewer when TUTTI_SIM_SEEDS says so (the
 * sanitizer and armhf builds of scripts/test-all.sh, where every seed costs
 * many times more). */
static uint64_t nseeds(void)
{
    const char *e = getenv("TUTTI_SIM_SEEDS");
    long n = e ? strtol(e, NULL, 10) : SEEDS;
    return n > 0 && n < SEEDS ? (uint64_t)n : SEEDS;
}

/* ------------------------------------------------------------ the model */

typedef struct flight {
    tutti_time t1, t2, t3, arrive; /* arrive: true time the pong lands */
    tutti_time sent;               /* true time the pong left */
} flight;

typedef struct world {
    tutti_rng rng;
    tutti_path up, down;
    double drift;        /* member clock rate - 1 */
    tutti_time hold_max; /* hub processing time, uniform in [0, hold_max] */
    tutti_time step_at;  /* true time the hub clock steps (0: never) */
    tutti_time step;     /* by how much */
    flight q[64];
    uint32_t qhead, qn;
    tutti_time last_up, last_down; /* FIFO per direction, like TCP */
    tutti_time next_send;          /* true time */
    /* Other frames sharing the FIFO path (a session's heartbeats up, the
     * hub's closes down), one every frames_up / frames_down (0: none), the
     * next one sent at frame_up / frame_down. */
    tutti_time frames_up, frames_down, frame_up, frame_down;
    /* Those frames carry their sender's clock (wire.h, TUTTI__REC_STAMP)
     * and the member notes them (tutti__clock_note) when `stamps`: the
     * hub's as they arrive, its own as the pong's echo brings them. fq:
     * (sent, arrived) in true time, not noted yet, per direction. */
    bool stamps;
    tutti_time fq[2][256][2];
    uint32_t fh[2], fn[2];
    tutti__clock c;
    tutti_time s_t1; /* t1 of the newest sample, for checks */
} world;

static tutti_time local_at(const world *w, tutti_time t)
{
    return LOCAL0 + t + (tutti_time)llround((double)t * w->drift);
}

static tutti_time true_at(const world *w, tutti_time local)
{
    return (tutti_time)llround((double)(local - LOCAL0) / (1.0 + w->drift));
}

static tutti_time session_at(const world *w, tutti_time t)
{
    return SESSION0 + t + (w->step_at && t >= w->step_at ? w->step : 0);
}

/* True theta = session - local at local time l, minus SESSION0 - LOCAL0. */
static double truth_rel(const world *w, tutti_time l)
{
    double u = (double)(l - LOCAL0);
    double tt = u / (1.0 + w->drift);
    double st = (w->step_at && tt >= (double)w->step_at) ? (double)w->step : 0.0;
    return -u * w->drift / (1.0 + w->drift) + st;
}

/* Estimated theta at local l, on the same scale. */
static double est_rel(const tutti_clock_estimate *e, tutti_time l)
{
    return (double)(tutti_clock_to_session(e, l) - l - (SESSION0 - LOCAL0));
}

static void world_init(world *w, uint64_t seed, tutti_path up, tutti_path down)
{
    memset(w, 0, sizeof *w);
    tutti_rng_seed(&w->rng, seed);
    w->up = up;
    w->down = down;
    /* Drift in [-100, +100] ppm, never tiny, so the filter must track it. */
    double ppm = 20.0 + 80.0 * tutti_rng_unit(&w->rng);
    w->drift = (tutti_rng_next(&w->rng) & 1 ? ppm : -ppm) * 1e-6;
    w->hold_max = 20000;
    tutti__clock_init(&w->c);
}

/* The other frames sent on a direction until true time t: each waits for
 * the ones before it, and a ping behind them waits too. */
static void frames_until(world *w, const tutti_path *p, tutti_time every, tutti_time *next,
                         tutti_time *last, tutti_time t)
{
    if (every <= 0) return;
    int dir = p == &w->up ? 0 : 1;
    for (; *next <= t; *next += every) {
        tutti_time a = *next + tutti_path_delay(p, &w->rng);
        if (a > *last) *last = a;
        if (w->fn[dir] < 256u) {
            uint32_t i = (w->fh[dir] + w->fn[dir]++) % 256u;
            w->fq[dir][i][0] = *next, w->fq[dir][i][1] = *last;
        }
    }
}

/* The frames' stamps the member has when a pong sent at true time `sent`
 * arrives at `arrive`. */
static void note_frames(world *w, tutti_time sent, tutti_time arrive)
{
    for (int dir = 0; dir < 2; dir++)
        while (w->fn[dir]) {
            const tutti_time *f = w->fq[dir][w->fh[dir]];
            if (f[1] > (dir == 0 ? sent : arrive)) break;
            if (w->stamps && dir == 0)
                tutti__clock_note(&w->c, local_at(w, f[0]), session_at(w, f[1]), true);
            else if (w->stamps)
                tutti__clock_note(&w->c, local_at(w, f[1]), session_at(w, f[0]), false);
            w->fh[dir] = (w->fh[dir] + 1u) % 256u;
            w->fn[dir]--;
        }
}

/* Process the next send or receive, whichever is first. Returns the true time
 * of the event and sets *sample if it fed the filter a sample. */
static tutti_time world_step(world *w, bool *sample)
{
    *sample = false;
    tutti_time recv = w->qn ? w->q[w->qhead].arrive : TUTTI_TIME_MAX;
    if (recv <= w->next_send) {
        flight f = w->q[w->qhead];
        w->qhead = (w->qhead + 1u) % 64u;
        w->qn--;
        tutti_time t4 = local_at(w, f.arrive);
        note_frames(w, f.sent, f.arrive);
        int rc = tutti__clock_add(&w->c, f.t1, f.t2, f.t3, t4);
        CHECK(rc == 0);
        w->s_t1 = f.t1;
        *sample = true;
        return recv;
    }
    tutti_time t = w->next_send;
    frames_until(w, &w->up, w->frames_up, &w->frame_up, &w->last_up, t);
    tutti_time a2 = t + tutti_path_delay(&w->up, &w->rng);
    if (a2 < w->last_up) a2 = w->last_up;
    w->last_up = a2;
    tutti_time a3 = a2 + tutti_rng_range(&w->rng, 0, w->hold_max);
    frames_until(w, &w->down, w->frames_down, &w->frame_down, &w->last_down, a3);
    tutti_time a4 = a3 + tutti_path_delay(&w->down, &w->rng);
    if (a4 < w->last_down) a4 = w->last_down;
    w->last_down = a4;
    flight f = {local_at(w, t), session_at(w, a2), session_at(w, a3), a4, a3};
    if (w->qn == 64u) {
        CHECK(!"too many pings in flight");
        return t;
    }
    w->q[(w->qhead + w->qn) % 64u] = f;
    w->qn++;
    tutti_time next_local = f.t1 + tutti__clock_ping_interval(&w->c);
    w->next_send = true_at(w, next_local);
    return t;
}

/* Is the truth at ref_local inside the published interval? (2 ns for the
 * rounding of the truth's own computation.) */
static bool contains_truth(const world *w)
{
    const tutti_clock_estimate *e = &w->c.est;
    double err = est_rel(e, e->ref_local) - truth_rel(w, e->ref_local);
    return fabs(err) <= (double)e->bound_ns + 2.0;
}

typedef struct run_stats {
    uint64_t violations; /* samples, while locked, whose bound missed the truth */
    uint64_t locked_samples;
    uint64_t wide;           /* samples whose bound exceeds what the newest allows */
    tutti_time lock_at;      /* true time of the first locked estimate */
    double err_p50, err_p99; /* |error| at 10 ms query points after warm-up */
    double signed_p50;       /* median signed error */
    double excess_p50;       /* median over steady samples of bound - rtt_min/2 */
    double drift_err_end;    /* |drift - true| at the end */
} run_stats;

static double qerr[8000], qserr[8000], excess[8000];

/*
 * Run one seed for `dur` of true time. Errors are sampled every 10 ms (queries
 * between samples extrapolate with the published drift, as users do), from
 * `warm` on.
 */
static run_stats run(uint64_t seed, tutti_path up, tutti_path down, tutti_time dur,
                     tutti_time warm)
{
    static world w;
    world_init(&w, seed, up, down);
    run_stats st = {0};
    st.lock_at = -1;
    size_t nq = 0, nx = 0;
    double true_slope = -w.drift / (1.0 + w.drift);
    for (tutti_time q = 10 * TUTTI_MS; q <= dur; q += 10 * TUTTI_MS) {
        for (;;) {
            tutti_time next = w.qn ? w.q[w.qhead].arrive : TUTTI_TIME_MAX;
            if (w.next_send < next) next = w.next_send;
            if (next > q) break;
            bool sample;
            tutti_time t = world_step(&w, &sample);
            if (!sample) continue;
            const tutti_clock_estimate *e = &w.c.est;
            /* By construction: the newest exchange alone pins the offset to
             * its interval, widened by the drift clamp over its round trip. */
            double most =
                (double)e->rtt_last_ns * (1.0 + MAX_DRIFT) + 2.0 * CLOCK_SLACK + 2.0;
            if ((double)e->bound_ns > most) st.wide++;
            if (e->locked) {
                if (st.lock_at < 0) st.lock_at = t;
                st.locked_samples++;
                if (!contains_truth(&w)) {
                    if (st.violations++ < 3)
                        fprintf(stderr,
                                "seed %llu t=%.3fs: truth outside bound: err %.0f ns, "
                                "bound %lld ns\n",
                                (unsigned long long)seed, (double)t / 1e9,
                                est_rel(e, e->ref_local) - truth_rel(&w, e->ref_local),
                                (long long)e->bound_ns);
                }
            }
            if (t >= warm && nx < 8000)
                excess[nx++] = (double)e->bound_ns - (double)e->rtt_min_ns / 2.0;
        }
        if (q >= warm && w.c.est.locked && nq < 8000) {
            tutti_time l = local_at(&w, q);
            double err = est_rel(&w.c.est, l) - truth_rel(&w, l);
            qserr[nq] = err;
            qerr[nq++] = fabs(err);
        }
    }
    st.err_p50 = tutti_percentile(qerr, nq, 0.5);
    st.err_p99 = tutti_percentile(qerr, nq, 0.99);
    st.signed_p50 = tutti_percentile(qserr, nq, 0.5);
    st.excess_p50 = tutti_percentile(excess, nx, 0.5);
    st.drift_err_end = fabs(w.c.est.drift - true_slope);
    return st;
}

static tutti_path path(double base_ms, double jitter_ms, int dist)
{
    tutti_path p = {(tutti_time)(base_ms * 1e6), (tutti_time)(jitter_ms * 1e6), dist, 0};
    return p;
}

/* ---------------------------------------------------------------- tests */

static void test_reject_invalid(void)
{
    tutti__clock c;
    tutti__clock_init(&c);
    CHECK(!c.est.locked);
    CHECK(c.est.bound_ns == TUTTI_TIME_MAX);
    CHECK(c.est.samples == 0);
    tutti_time b = 1000 * TUTTI_S;
    CHECK_EQ_I64(tutti__clock_add(&c, b, b + 5, b + 6, b - 1),
                 TUTTI_EINVAL); /* t4 < t1 */
    CHECK_EQ_I64(tutti__clock_add(&c, b, b + 6, b + 5, b + 20),
                 TUTTI_EINVAL); /* t3 < t2 */
    CHECK_EQ_I64(tutti__clock_add(&c, -5, b, b, 10), TUTTI_EINVAL);
    /* The hub claims to have held the ping 1 s during a 10 ms round trip. */
    CHECK_EQ_I64(tutti__clock_add(&c, b, b, b + TUTTI_S, b + 10 * TUTTI_MS),
                 TUTTI_EINVAL);
    CHECK(c.est.samples == 0);
    CHECK(c.total == 0);
    CHECK(c.est.bound_ns == TUTTI_TIME_MAX);
    /* A valid one is taken, and gives the interval it implies. */
    CHECK_EQ_I64(
        tutti__clock_add(&c, b, b + 7 * TUTTI_MS, b + 7 * TUTTI_MS, b + 10 * TUTTI_MS),
        0);
    CHECK(c.est.samples == 1);
    CHECK(!c.est.locked);
    /* theta in [-3 ms, +7 ms]: estimate near 2 ms, bound near 5 ms. */
    CHECK(llabs(c.est.offset_ns - 2 * TUTTI_MS) < 10 * TUTTI_MS / 1000);
    CHECK(c.est.bound_ns >= 5 * TUTTI_MS && c.est.bound_ns < 5 * TUTTI_MS + 10000);
    CHECK(c.est.rtt_min_ns == 10 * TUTTI_MS);
    CHECK(c.est.rtt_last_ns == 10 * TUTTI_MS);
    /* A rejection leaves the estimate alone. */
    tutti_clock_estimate before = c.est;
    CHECK_EQ_I64(tutti__clock_add(&c, b, b + 5, b + 6, b - 1), TUTTI_EINVAL);
    CHECK(memcmp(&before, &c.est, sizeof before) == 0);
}

static void test_conversions(void)
{
    tutti_clock_estimate e = {0};
    e.ref_local = 1000 * TUTTI_S;
    e.offset_ns = SESSION0;
    e.drift = 100e-6;
    /* One second after ref: 100 us of drift on top of the offset. */
    CHECK_EQ_I64(tutti_clock_to_session(&e, e.ref_local + TUTTI_S),
                 e.ref_local + TUTTI_S + SESSION0 + 100000);
    CHECK_EQ_I64(tutti_clock_to_session(&e, e.ref_local - TUTTI_S),
                 e.ref_local - TUTTI_S + SESSION0 - 100000);
    CHECK_EQ_I64(tutti_clock_to_local(&e, e.ref_local + TUTTI_S + SESSION0 + 100000),
                 e.ref_local + TUTTI_S);
    tutti_rng r;
    tutti_rng_seed(&r, 7);
    int worst = 0;
    for (int i = 0; i < 1000; i++) {
        e.drift = (tutti_rng_unit(&r) - 0.5) * 1e-3;
        tutti_time l = e.ref_local + tutti_rng_range(&r, -3600 * TUTTI_S, 3600 * TUTTI_S);
        tutti_time back = tutti_clock_to_local(&e, tutti_clock_to_session(&e, l));
        int d = (int)llabs(back - l);
        if (d > worst) worst = d;
    }
    CHECK(worst <= 1);
}

/*
 * The filter's interval against a brute-force solution of the same linear
 * program: every vertex of the constraint polygon in (a, d), from every pair of
 * constraint lines. Exchanges with zero hold and even round trips, so the
 * filter's reconstruction of t1 and t4 is exact.
 */
static void test_against_brute_force(void)
{
    tutti_rng r;
    tutti_rng_seed(&r, 99);
    int mismatches = 0, infeasible_seen = 0;
    for (int trial = 0; trial < 300; trial++) {
        tutti__clock c;
        tutti__clock_init(&c);
        enum { N = 12 };
        double cx[2 * N + 2], cy[2 * N + 2]; /* constraint: a + d*x <= or >= y */
        int cs[2 * N + 2];                   /* +1: <=, -1: >= */
        int n = 0;
        double drift = (tutti_rng_unit(&r) - 0.5) * 4e-4;
        tutti_time ref = 0;
        tutti_time t = 10 * TUTTI_S;
        for (int i = 0; i < N; i++) {
            t += tutti_rng_range(&r, 1, 2000) * TUTTI_MS;
            tutti_time t1 = t;
            tutti_time dup = tutti_rng_range(&r, 0, 20 * TUTTI_MS);
            tutti_time rtt = dup + tutti_rng_range(&r, 0, 20 * TUTTI_MS);
            rtt += rtt & 1;
            tutti_time t4 = t1 + rtt;
            /* theta at the arrival: session = local + theta(local) */
            tutti_time t2 =
                t1 + dup + 5 * TUTTI_S + (tutti_time)llround(drift * (double)(t1 + dup));
            tutti_time t3 = t2;
            CHECK(tutti__clock_add(&c, t1, t2, t3, t4) == 0);
            ref = t4;
            cx[n] = (double)t1, cy[n] = (double)(t2 - t1) + CLOCK_SLACK, cs[n++] = 1;
            cx[n] = (double)t4, cy[n] = (double)(t3 - t4) - CLOCK_SLACK, cs[n++] = -1;
        }
        if (!c.est.locked) infeasible_seen++;
        CHECK(c.est.samples == N);
        /* Shift x to ref so the numbers are small. */
        for (int i = 0; i < n; i++)
            cx[i] -= (double)ref;
        double amin = INFINITY, amax = -INFINITY;
        /* lines: a + d*x = y for each constraint, and d = +/-D */
        for (int i = 0; i < n + 2; i++) {
            for (int j = i + 1; j < n + 2; j++) {
                double a, d;
                if (i >= n) continue; /* both d = +/- D: parallel */
                if (j >= n) {
                    d = j == n ? -MAX_DRIFT : MAX_DRIFT;
                    a = cy[i] - d * cx[i];
                } else {
                    if (cx[i] == cx[j]) continue;
                    d = (cy[j] - cy[i]) / (cx[j] - cx[i]);
                    a = cy[i] - d * cx[i];
                }
                if (fabs(d) > MAX_DRIFT * (1 + 1e-12)) continue;
                bool ok = true;
                for (int k = 0; k < n && ok; k++) {
                    double v = a + d * cx[k];
                    if (cs[k] > 0 ? v > cy[k] + 1e-3 : v < cy[k] - 1e-3) ok = false;
                }
                if (!ok) continue;
                if (a < amin) amin = a;
                if (a > amax) amax = a;
            }
        }
        CHECK(amin <= amax);
        double lo = (double)(c.est.offset_ns - c.est.bound_ns);
        double hi = (double)(c.est.offset_ns + c.est.bound_ns);
        /* The interval covers every consistent line, reaches no farther than
         * the farther end (plus 1 ns of rounding), and the estimate is itself
         * consistent. */
        double off = (double)c.est.offset_ns;
        bool tight = lo >= amin - 1.5 || hi <= amax + 1.5;
        if (!(lo <= amin + 1e-6 && hi >= amax - 1e-6 && tight && off >= amin - 1 &&
              off <= amax + 1)) {
            if (mismatches++ < 3)
                fprintf(stderr, "trial %d: filter [%.1f, %.1f], exact [%.1f, %.1f]\n",
                        trial, lo, hi, amin, amax);
        }
    }
    CHECK(mismatches == 0);
    CHECK(infeasible_seen == 0);
}

static void test_lan(void)
{
    /* (a) 0.1 ms +/- 0.1 ms each way. */
    tutti_path p = path(0.1, 0.1, TUTTI_JITTER_UNIFORM);
    double worst_p99 = 0;
    uint64_t viol = 0;
    for (uint64_t s = 1; s <= nseeds(); s++) {
        run_stats st = run(s, p, p, 30 * TUTTI_S, 10 * TUTTI_S);
        viol += st.violations;
        if (st.err_p99 > worst_p99) worst_p99 = st.err_p99;
        CHECK(st.lock_at >= 0 && st.lock_at < 500 * TUTTI_MS);
        CHECK(st.wide == 0);
        /* The drift is pinned by causality alone here: the band is ~0.2 ms
         * wide, so a wrong drift shows within a second. */
        CHECK(st.drift_err_end < 0.5e-6);
        /* bound close to rtt_min/2: only the slack and a little drift. */
        CHECK(st.excess_p50 <= 10e3);
    }
    fprintf(stderr, "  lan: worst p99 %.1f us\n", worst_p99 / 1e3);
    CHECK(viol == 0);
    CHECK(worst_p99 <= 50e3);
}

static void test_wan50(void)
{
    /* (b) 50 +/- 10 ms uniform, symmetric. */
    tutti_path p = path(50, 10, TUTTI_JITTER_UNIFORM);
    double worst_p99 = 0, worst_p50 = 0;
    uint64_t viol = 0, locked = 0;
    for (uint64_t s = 1; s <= nseeds(); s++) {
        run_stats st = run(100 + s, p, p, 60 * TUTTI_S, 10 * TUTTI_S);
        viol += st.violations;
        locked += st.locked_samples;
        if (st.err_p99 > worst_p99) worst_p99 = st.err_p99;
        if (st.err_p50 > worst_p50) worst_p50 = st.err_p50;
        CHECK(st.lock_at >= 0 && st.lock_at < 1 * TUTTI_S);
        CHECK(st.wide == 0);
        CHECK(st.drift_err_end < 25e-6);
        /* Here causality cannot pin the drift (the band is 80 ms wide), so
         * the honest bound is set by the last seconds' fastest exchanges: a
         * few percent above rtt_min/2. */
        CHECK(st.excess_p50 <= 0.05 * 40e6);
    }
    fprintf(stderr, "  wan50: worst p50 %.1f us, worst p99 %.1f us\n", worst_p50 / 1e3,
            worst_p99 / 1e3);
    CHECK(locked > 1000);
    CHECK(viol == 0);
    CHECK(worst_p99 <= 1e6);
}

static void test_rtt400(void)
{
    /* (c) 200 ms each way +/- 20 ms: the first answer takes 400 ms. */
    tutti_path p = path(200, 20, TUTTI_JITTER_UNIFORM);
    tutti_time worst_lock = 0;
    uint64_t viol = 0;
    for (uint64_t s = 1; s <= nseeds(); s++) {
        run_stats st = run(200 + s, p, p, 20 * TUTTI_S, 10 * TUTTI_S);
        viol += st.violations;
        CHECK(st.lock_at >= 0);
        if (st.lock_at > worst_lock) worst_lock = st.lock_at;
        CHECK(st.err_p99 <= 2e6);
    }
    fprintf(stderr, "  rtt400: slowest lock %.0f ms\n", (double)worst_lock / 1e6);
    CHECK(worst_lock > 0 && worst_lock <= 2 * TUTTI_S);
    CHECK(viol == 0);
}

static void test_asymmetric(void)
{
    /* (d) 60 ms up, 40 ms down: no exchange can tell this from a 10 ms offset,
     * so the estimate is 10 ms high, and the bound still has to cover it. */
    tutti_path up = path(60, 5, TUTTI_JITTER_UNIFORM);
    tutti_path down = path(40, 5, TUTTI_JITTER_UNIFORM);
    uint64_t viol = 0;
    for (uint64_t s = 1; s <= nseeds(); s++) {
        run_stats st = run(300 + s, up, down, 40 * TUTTI_S, 10 * TUTTI_S);
        viol += st.violations;
        CHECK(fabs(st.signed_p50 - 10e6) < 0.5e6);
        CHECK(st.err_p99 < 11e6);
        CHECK(st.lock_at >= 0);
    }
    CHECK(viol == 0);
}

static void test_pareto(void)
{
    /* (e) heavy tail: minimum 20 ms, mean 40 ms, tail to 220 ms, both ways. */
    tutti_path p = path(30, 10, TUTTI_JITTER_PARETO);
    double worst_p99 = 0;
    uint64_t viol = 0;
    for (uint64_t s = 1; s <= nseeds(); s++) {
        run_stats st = run(400 + s, p, p, 40 * TUTTI_S, 10 * TUTTI_S);
        viol += st.violations;
        if (st.err_p99 > worst_p99) worst_p99 = st.err_p99;
        CHECK(st.lock_at >= 0 && st.lock_at < 2 * TUTTI_S);
    }
    fprintf(stderr, "  pareto: worst p99 %.1f us\n", worst_p99 / 1e3);
    CHECK(viol == 0);
    CHECK(worst_p99 <= 1e6);
}

/*
 * A hub 2 ms away with normal jitter (sd 50 us each way): thin-tailed jitter
 * symmetric about the mean, the filter's hard case. The test for a change
 * the intervals cannot contradict (the window's newest quarter against the
 * rest) must not fire: a false alarm cuts the window to a quarter and the
 * estimate jumps by about 13 us (a stage node's click by half a sample).
 * It did, once in 22 simulated minutes (three times in these ten runs), while
 * the older part's drift error, carried over the ~13 s between the parts,
 * was left out of its tolerance.
 */
static void test_normal_city(void)
{
    tutti_path p = path(2, 0.1, TUTTI_JITTER_NORMAL);
    uint64_t cuts = 0;
    double worst = 0, sq = 0;
    uint64_t n = 0;
    for (uint64_t s = 1; s <= 10; s++) {
        static world w;
        world_init(&w, 700 + s, p, p);
        uint32_t prev = 0;
        for (;;) {
            bool sample;
            tutti_time t = world_step(&w, &sample);
            if (t > 60 * TUTTI_S) break;
            if (!sample) continue;
            const tutti_clock_estimate *e = &w.c.est;
            /* A cut keeps the newest quarter; the window otherwise slides
             * by a sample or two. */
            if (prev >= 100u && e->samples < prev / 2u) cuts++;
            prev = e->samples;
            if (t < 30 * TUTTI_S) continue;
            double err = est_rel(e, e->ref_local) - truth_rel(&w, e->ref_local);
            if (fabs(err) > worst) worst = fabs(err);
            sq += err * err;
            n++;
        }
    }
    fprintf(
        stderr,
        "  normal 2 ms +/- 0.1 ms: %llu cuts in 10 min; error rms %.2f us, max %.2f us\n",
        (unsigned long long)cuts, sqrt(sq / (double)n) / 1e3, worst / 1e3);
    CHECK_EQ_I64(cuts, 0);
    CHECK(worst < 25e3);
}

/*
 * The Link bridges' acceptance run (tests/link/cities.sh): two cities, each a
 * member behind its own `tutti netsim --jitter-model independent` path of D
 * +/- D/10 ms uniform each way (in order, as TCP), both on one machine's
 * monotonic clock (network namespaces), so no drift, though the filter must
 * allow for one. What the cities hear is the difference of the two members'
 * errors at the same instant; here two seeds are the two members, and the
 * difference is taken every 10 ms from 3 s (about when the cities lock) to
 * 40 s (the run's length). Each delay with the path to itself ("quiet") and
 * with the session's frames on it (the member's heartbeat every 20 ms up,
 * the hub's close every L/10 down, L = 1.2 D + 40 ms): an exchange then also
 * waits behind them, which costs more than the real relays showed (their
 * measured figures lie between the two). 5 pairs each.
 *
 * With frames, also as the session has them: each carrying its sender's
 * clock, which the member notes as one-way samples (wire.h,
 * TUTTI__REC_STAMP).
 *
 * Figures (p99 apart, quiet / with frames / with their stamps), with the
 * filter pinging every 100 ms and a 256-sample ring (and, tried, every
 * 25 ms over a long path with 1024 samples, which broke the test for a
 * change over wandering delays: clock.c, "Ping rate"):
 *   50 +/- 5 ms     0.346 / 0.925 / 0.080 ms (0.203 / 0.281 ms)
 *   100 +/- 10 ms   0.642 / 1.579 / 0.372 ms (0.329 / 0.565 ms)
 *   200 +/- 20 ms   1.033 / 2.481 / 0.776 ms (1.073 / 1.860 ms)
 * The bounds are about a third above the figures, against a change for the
 * worse.
 */
static double city_err[5000 * 2];

/* Five pairs for the figures; one under TUTTI_SIM_SEEDS (the sanitizer
 * builds), which still runs every path and checks every bound, but whose p99
 * over one pair says too little to hold it to the figures. */
static uint64_t city_pairs(void)
{
    return nseeds() < SEEDS ? 1u : 5u;
}

static double cities_apart_p99(tutti_time d, bool frames, bool stamps, uint64_t seed0)
{
    static double apart[5 * 4000];
    size_t n = 0;
    const tutti_time dur = 40 * TUTTI_S, warm = 3 * TUTTI_S;
    tutti_path p = {d, d / 10, TUTTI_JITTER_UNIFORM, 0};
    tutti_time close_every = (d + d / 5 + 40 * TUTTI_MS) / 10;
    if (close_every > 20 * TUTTI_MS) close_every = 20 * TUTTI_MS;
    for (uint64_t pair = 0; pair < city_pairs(); pair++) {
        for (uint32_t m = 0; m < 2; m++) {
            static world w;
            world_init(&w, seed0 + 2 * pair + m, p, p);
            w.drift = 0;
            w.stamps = stamps;
            if (frames) {
                w.frames_up = 20 * TUTTI_MS;
                w.frames_down = close_every;
                w.frame_up = tutti_rng_range(&w.rng, 0, w.frames_up);
                w.frame_down = tutti_rng_range(&w.rng, 0, w.frames_down);
            }
            size_t i = 0;
            for (tutti_time q = 10 * TUTTI_MS; q <= dur; q += 10 * TUTTI_MS) {
                for (;;) {
                    tutti_time next = w.qn ? w.q[w.qhead].arrive : TUTTI_TIME_MAX;
                    if (w.next_send < next) next = w.next_send;
                    if (next > q) break;
                    bool sample;
                    (void)world_step(&w, &sample);
                    if (sample && w.c.est.locked) CHECK(contains_truth(&w));
                }
                if (q < warm) continue;
                tutti_time l = local_at(&w, q);
                city_err[m * 5000 + i++] = w.c.est.locked
                                               ? est_rel(&w.c.est, l) - truth_rel(&w, l)
                                               : NAN;
            }
            if (m == 1)
                for (size_t k = 0; k < i; k++) {
                    double a = city_err[k], b = city_err[5000 + k];
                    CHECK(isfinite(a) && isfinite(b)); /* locked from 3 s on */
                    if (isfinite(a) && isfinite(b)) apart[n++] = fabs(a - b);
                }
        }
    }
    return tutti_percentile(apart, n, 0.99);
}

static void test_link_cities(void)
{
    static const struct {
        double d_ms, quiet_max_ms, frames_max_ms, stamped_max_ms;
    } cases[] = {{50, 0.45, 1.2, 0.11}, {100, 0.85, 2.1, 0.5}, {200, 1.35, 3.3, 1.05}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        tutti_time d = (tutti_time)(cases[i].d_ms * 1e6);
        double quiet = cities_apart_p99(d, false, false, 1900);
        double busy = cities_apart_p99(d, true, false, 1900);
        double stamped = cities_apart_p99(d, true, true, 1900);
        fprintf(stderr,
                "  cities %3.0f +/- %2.0f ms: p99 apart %.3f ms quiet, %.3f ms with frames, "
                "%.3f ms with their stamps\n",
                cases[i].d_ms, cases[i].d_ms / 10, quiet / 1e6, busy / 1e6, stamped / 1e6);
        if (city_pairs() < 5u) continue;
        CHECK(quiet <= cases[i].quiet_max_ms * 1e6);
        CHECK(busy <= cases[i].frames_max_ms * 1e6);
        CHECK(stamped <= cases[i].stamped_max_ms * 1e6);
    }
}

/*
 * One-way constraints (tutti__clock_note) only ever tighten: a note looser
 * than its exchange's own bound leaves the estimate exactly as without it;
 * of two notes the tighter is kept; a note newer than the exchange that
 * follows it is not taken; and a tight, true one moves the estimate towards
 * the truth and stays inside the bound.
 */
static void test_oneway_notes(void)
{
    tutti_path p = path(50, 10, TUTTI_JITTER_UNIFORM);
    static world a, b;
    world_init(&a, 77, p, p);
    world_init(&b, 77, p, p);
    for (int i = 0; i < 300; i++) {
        /* the same exchanges in both; b also notes loose one-way bounds */
        bool sa = false, sb = false;
        while (!sa)
            (void)world_step(&a, &sa);
        const flight *f = &b.q[b.qhead];
        if (b.qn) { /* the next pong to arrive */
            tutti_time t4 = local_at(&b, f->arrive);
            /* 5 ms looser than the exchange's own, each way */
            tutti__clock_note(&b.c, f->t1, f->t2 + 5 * TUTTI_MS, true);
            tutti__clock_note(&b.c, t4, f->t3 - 5 * TUTTI_MS, false);
        }
        while (!sb)
            (void)world_step(&b, &sb);
        CHECK_EQ_I64(a.c.est.offset_ns, b.c.est.offset_ns);
        CHECK_EQ_I64(a.c.est.bound_ns, b.c.est.bound_ns);
        CHECK(a.c.est.drift == b.c.est.drift);
    }

    /* Of two notes of a kind, the tighter is kept; one from after the
     * exchange is not taken. */
    tutti__clock c;
    tutti__clock_init(&c);
    tutti_time l = LOCAL0, s = SESSION0;
    tutti__clock_note(&c, l + 1000, s + 9000, true);
    tutti__clock_note(&c, l + 2000, s + 5000, true);  /* tighter */
    tutti__clock_note(&c, l + 3000, s + 20000, true); /* looser */
    tutti__clock_note(&c, l + 4000, s - 9000, false);
    tutti__clock_note(&c, l + 5000, s - 2000, false); /* tighter */
    CHECK_EQ_I64(c.pending.up_x, l + 2000);
    CHECK_EQ_I64(c.pending.up_y, s + 3000 - l);
    CHECK_EQ_I64(c.pending.lo_x, l + 5000);
    tutti__clock_note(&c, -1, s, true); /* absurd: ignored */
    CHECK_EQ_I64(c.pending.up_x, l + 2000);
    CHECK(tutti__clock_add(&c, l, s + 2000, s + 2000, l + 4500) == 0);
    CHECK_EQ_I64(c.ring[0].up_x, l + 2000);
    CHECK_EQ_I64(c.ring[0].lo_x, INT64_MIN); /* l + 5000 is after t4 */
    CHECK_EQ_I64(c.pending.up_x, INT64_MIN);
    CHECK_EQ_I64(c.pending.lo_x, INT64_MIN);

    /* A true, tight note: the hub's frame took the path's floor. */
    world_init(&a, 78, p, p);
    bool sa = false;
    for (int i = 0; i < 200; i++) {
        sa = false;
        while (!sa)
            (void)world_step(&a, &sa);
    }
    double before = fabs(est_rel(&a.c.est, a.c.est.ref_local) -
                         truth_rel(&a, a.c.est.ref_local));
    tutti_time bound_before = a.c.est.bound_ns;
    for (int i = 0; i < 20; i++) {
        /* sent at true time t by the hub, 40 ms (the floor) on the way;
         * sent at t by the member, at the hub by 40 ms */
        tutti_time t = true_at(&a, a.c.est.ref_local) + 10 * TUTTI_MS;
        tutti__clock_note(&a.c, local_at(&a, t + 40 * TUTTI_MS), session_at(&a, t), false);
        tutti__clock_note(&a.c, local_at(&a, t), session_at(&a, t + 40 * TUTTI_MS), true);
        sa = false;
        while (!sa)
            (void)world_step(&a, &sa);
        CHECK(contains_truth(&a));
    }
    double after = fabs(est_rel(&a.c.est, a.c.est.ref_local) -
                        truth_rel(&a, a.c.est.ref_local));
    fprintf(stderr, "  floor notes: error %.1f -> %.1f us, bound %.1f -> %.1f us\n",
            before / 1e3, after / 1e3, (double)bound_before / 1e3,
            (double)a.c.est.bound_ns / 1e3);
    CHECK(after < before / 3);
    CHECK(a.c.est.bound_ns < bound_before);
}

/*
 * The hub's clock steps (a new coordinator, an adjusted clock) by more than a
 * round trip. The first exchange that sees it contradicts the history; the
 * filter must drop the history rather than publish a bound that misses the
 * truth, and relock.
 */
static void test_clock_step(void)
{
    tutti_path p = path(50, 10, TUTTI_JITTER_UNIFORM);
    const tutti_time steps[] = {150 * TUTTI_MS, -150 * TUTTI_MS, 5 * TUTTI_S};
    for (size_t k = 0; k < sizeof steps / sizeof steps[0]; k++) {
        for (uint64_t s = 1; s <= nseeds(); s++) {
            static world w;
            world_init(&w, 500 + s, p, p);
            w.step_at = 20 * TUTTI_S;
            w.step = steps[k];
            tutti_time relock = -1, step_seen = -1;
            uint64_t viol = 0;
            bool was_locked = false;
            while (w.next_send < 40 * TUTTI_S) {
                bool sample;
                tutti_time t = world_step(&w, &sample);
                if (!sample) continue;
                tutti_time t1_true = true_at(&w, w.s_t1);
                /* Samples in flight across the step cannot know about it. */
                bool straddles = t1_true < w.step_at && t >= w.step_at;
                if (!straddles && !contains_truth(&w)) viol++;
                if (t >= w.step_at && step_seen < 0 && !w.c.est.locked) step_seen = t;
                if (step_seen >= 0 && relock < 0 && w.c.est.locked) relock = t;
                if (t > 19 * TUTTI_S && t < w.step_at) was_locked = w.c.est.locked;
            }
            CHECK(was_locked);
            CHECK(viol == 0);
            CHECK(step_seen >= 0 && step_seen < w.step_at + 200 * TUTTI_MS);
            CHECK(relock >= 0 && relock < step_seen + 500 * TUTTI_MS);
            CHECK(w.c.est.locked);
            /* 20 s after the step the history is rebuilt. */
            double err =
                est_rel(&w.c.est, w.c.est.ref_local) - truth_rel(&w, w.c.est.ref_local);
            CHECK(fabs(err) < 1e6);
        }
    }
}

/*
 * A step smaller than the round trip contradicts nothing: the intervals
 * before and after still overlap. The bound must stay honest throughout; the
 * filter must notice the change from the statistics (within seconds, not
 * after a window), and the estimate must come back. Exchanges in flight
 * across the step look like unusually fast ones and stay consistent, so the
 * recovery takes a while; these limits guard it from getting worse.
 */
static void test_small_clock_step(void)
{
    tutti_path p = path(50, 10, TUTTI_JITTER_UNIFORM);
    for (int sign = -1; sign <= 1; sign += 2) {
        for (uint64_t s = 1; s <= nseeds(); s++) {
            static world w;
            world_init(&w, 600 + s, p, p);
            w.step_at = 20 * TUTTI_S;
            w.step = sign * 30 * TUTTI_MS;
            uint64_t viol = 0;
            double after10 = 0, after60 = 0;
            tutti_time noticed = -1;
            while (w.next_send < 100 * TUTTI_S) {
                bool sample;
                tutti_time t = world_step(&w, &sample);
                if (!sample) continue;
                bool straddles = true_at(&w, w.s_t1) < w.step_at && t >= w.step_at;
                if (!straddles && !contains_truth(&w)) viol++;
                if (t > w.step_at && noticed < 0 && w.c.est.samples < 100) noticed = t;
                double err = fabs(est_rel(&w.c.est, w.c.est.ref_local) -
                                  truth_rel(&w, w.c.est.ref_local));
                if (t > w.step_at + 10 * TUTTI_S && err > after10) after10 = err;
                if (t > w.step_at + 60 * TUTTI_S && err > after60) after60 = err;
            }
            CHECK(viol == 0);
            CHECK(noticed > 0 && noticed < w.step_at + 5 * TUTTI_S);
            CHECK(after10 < 5e6);
            CHECK(after60 < 1e6);
        }
    }
}

static void test_window_and_ping_interval(void)
{
    tutti__clock c;
    tutti__clock_init(&c);
    CHECK(c.window_ns > 0);
    tutti_time fast = tutti__clock_ping_interval(&c);
    CHECK(fast > 0 && fast <= 100 * TUTTI_MS);
    /* Instant exchanges every 200 ms for 60 s: theta = 2 s exactly. */
    tutti_time b = 100 * TUTTI_S;
    for (int i = 0; i <= 300; i++) {
        tutti_time t1 = b + i * 200 * TUTTI_MS;
        CHECK(tutti__clock_add(&c, t1, t1 + 2 * TUTTI_S, t1 + 2 * TUTTI_S, t1) == 0);
        if (i == 2) CHECK(!c.est.locked && tutti__clock_ping_interval(&c) == fast);
        if (i == 10) CHECK(c.est.locked && tutti__clock_ping_interval(&c) == fast);
    }
    CHECK(c.est.locked);
    tutti_time steady = tutti__clock_ping_interval(&c);
    CHECK(steady > fast && steady <= 250 * TUTTI_MS);
    /* Only the samples within the window count. */
    uint32_t expect = (uint32_t)(c.window_ns / (200 * TUTTI_MS)) + 1u;
    if (expect > TUTTI__CLOCK_WINDOW) expect = TUTTI__CLOCK_WINDOW;
    CHECK_EQ_I64(c.est.samples, expect);
    CHECK_EQ_I64(c.est.offset_ns, 2 * TUTTI_S);
    CHECK(c.est.bound_ns <= CLOCK_SLACK + 2);
    CHECK(fabs(c.est.drift) < 1e-9);
    CHECK_EQ_I64(c.est.rtt_min_ns, 0);
    CHECK_EQ_I64(c.est.ref_local, b + 300 * 200 * TUTTI_MS);
    /* A shorter window forgets more on the next sample. */
    c.window_ns = 10 * TUTTI_S;
    tutti_time t1 = b + 301 * 200 * TUTTI_MS;
    CHECK(tutti__clock_add(&c, t1, t1 + 2 * TUTTI_S, t1 + 2 * TUTTI_S, t1) == 0);
    CHECK_EQ_I64(c.est.samples, 51);
}

int main(void)
{
    RUN(test_reject_invalid);
    RUN(test_conversions);
    RUN(test_against_brute_force);
    RUN(test_window_and_ping_interval);
    RUN(test_lan);
    RUN(test_wan50);
    RUN(test_rtt400);
    RUN(test_asymmetric);
    RUN(test_pareto);
    RUN(test_normal_city);
    RUN(test_link_cities);
    RUN(test_oneway_notes);
    RUN(test_clock_step);
    RUN(test_small_clock_step);
    TEST_END();
}
