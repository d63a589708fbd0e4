/*
 * The clock filter: offset and drift of the local clock against session time,
 * with an error bound that holds by construction (the contract is in clock.h).
 *
 * Design notes
 * ------------
 * - Model. Over the window, theta = session - local is a straight line in local
 *   time, theta(l) = a + d * (l - R), with |d| <= TUTTI__CLOCK_MAX_DRIFT
 *   (500 ppm: crystals are within +/-100 ppm; the rest is room for slewed
 *   clocks). R is the newest local instant we have information at (the newest
 *   sample's t4); `a` is published as offset_ns at ref_local = R.
 *
 * - Exact constraints, not midpoints. The forward bound t2 - t1 holds for theta
 *   at local time t1 exactly (theta(t1) = t2 - x - (x - t1) * d with x >= t1 the
 *   local time the ping arrived, and 1 + d > 0), and the return bound t3 - t4
 *   holds at t4 exactly. So a sample is two points: an upper constraint
 *   (t1, t2 - t1) and a lower constraint (t4, t3 - t4). The sample keeps only
 *   mid_local and the two bounds, so t1 and t4 are recovered as mid -/+ rtt/2
 *   with rtt = upper - lower; that places t1 later by half the hub's hold time
 *   (t3 - t2), an error of |d| * hold / 2 (0.25 ns per millisecond of hold).
 *
 * - The bound: every consistent line, exactly. The lines (a, d) that pass below
 *   all upper points and above all lower points form a convex polygon. Only
 *   the lower convex hull of the upper points and the upper convex hull of the
 *   lower points can bind (monotone chain, O(n) on time-ordered points). With
 *   U(d) = min over upper points of (y - d x) and L(d) = max over lower points
 *   of (y - d x) (x measured from R), the drifts allowed are where
 *   W(d) = U(d) - L(d) >= 0. W is concave and piecewise linear with breakpoints
 *   at the hulls' edge slopes, so one sweep over those slopes finds the drift
 *   range [d_lo, d_hi], the range [a_min, a_max] that `a` can take, and the
 *   widest strip. bound_ns is the distance from the estimate to the farther
 *   end of [a_min, a_max]: it covers the width of the intersection and every
 *   drift the samples allow, and is honest whenever the model holds. It is at
 *   most (1 + 500 ppm) * rtt_last + 2 us, the newest sample alone. On a LAN
 *   the intervals are narrow enough that causality pins the drift within a
 *   second and the bound is a few microseconds; over a WAN the band is as wide
 *   as the fastest round trip and cannot pin the drift within a window, so the
 *   honest bound stays near rtt_min/2 plus a few percent (it is set by the
 *   last seconds' fastest exchanges), rather than exactly rtt_min/2.
 *   Before any sample the bound is TUTTI_TIME_MAX (nothing is known).
 *
 * - The estimate: extremes or means, whichever the data says is sharper. At a
 *   drift d the intersection of the detrended intervals is the strip
 *   [L(d), U(d)]; its middle errs by half the difference of the excesses of
 *   the fastest exchange in each direction over the true minimum delays. That
 *   is excellent when delays have a hard floor with real density at it
 *   (uniform jitter, queueing, heavy tails: the excess is ~spread/n) and poor
 *   for thin-tailed jitter (a normal's minimum of 256 draws still scatters by
 *   a third of a standard deviation), where the mean of the detrended
 *   midpoints is far better. So both are computed and combined by inverse
 *   variance: the mean's variance from the residuals, the strip's from the
 *   mean spacing of the four lowest excesses in each direction (the spread of
 *   a minimum is about one spacing when the floor has density; for a normal
 *   tail the spacing underestimates it, hence a factor of 2). The result is
 *   kept inside the strip, so the published line is always consistent.
 *
 * - The drift. A window's drift is the widest strip's slope (the minimax fit,
 *   the maximum-likelihood slope for floor-type delays: ~15-20 ppm at
 *   50 +/- 10 ms over 25-30 s, where least squares on midpoints gives ~40) combined with
 * the midpoints' least-squares slope by the same weights, and shrunk towards 0 by its
 * estimated variance against a 100 ppm prior (a 4 s window's slope can be off by hundreds
 * of ppm; a full one's is nearly untouched, ~2% shrink at 50 +/- 10 ms, none on a LAN).
 * The published drift is a running average of that (the published estimate is the
 * filter's only memory beyond the ring): held at its previous value (0 at the start)
 *   while the window spans under 4 s, then averaged with a memory that grows
 *   as a third of the run's age (so the noisy first windows fade) up to 60 s,
 *   and always clamped into [d_lo, d_hi], which is how a real drift change
 *   that the samples can see overrides the memory. Drift errors matter
 *   through the lever from the binding samples to R; at 10 s into a WAN run
 *   they dominate the error.
 *
 * - One-way constraints. Every frame of the session carries its sender's
 *   clock (wire.h, TUTTI__REC_STAMP): a frame from the hub is a lower
 *   constraint (its stamp minus the member's arrival time, at that time), the
 *   hub's echo of one of the member's frames an upper one (session arrival
 *   minus the member's stamp, at the stamp). tutti__clock_note keeps the
 *   tightest of each kind until the next exchange, whose sample carries them
 *   (up_x/up_y, lo_x/lo_y) into the hulls beside its own two points. Stamps
 *   are taken before a frame leaves and arrivals after it came, so queueing,
 *   resends and late reads only loosen them. Over a path that keeps order
 *   the exchanges wait behind the session's frames, but the frames reach the
 *   floor of the delay themselves. The test for a change (below) fits
 *   without them, and the strip's spread (the estimate) takes one excess a
 *   sample, the tighter of its own and its one-way one: frames 20 ms apart
 *   on a delay that wanders are not independent draws. A sample that
 *   contradicts its own one-way constraints keeps only its own.
 *
 * - Slack. Each constraint is relaxed by TUTTI__CLOCK_SLACK (1 us). That
 *   absorbs nanosecond rounding of the four timestamps, the hold-time placement
 *   above and the curvature of a real crystal's drift over the window
 *   (temperature drift of ~0.5 ppm/min bends theta by about 1 ns over 30 s). It
 *   is included in the bound.
 *
 * - Inconsistency. Causality cannot be violated by any delay, loss or path
 *   change, so an empty polygon means the model broke: a clock step bigger
 *   than the round trip (a new hub, an adjusted clock), a drift change, or
 *   drift beyond the clamp. The newest samples describe the present, so the
 *   filter keeps the longest run of newest samples that is consistent (binary
 *   search on its length: O(n log n), only on such an event) and forgets the
 *   rest. The bound then comes from the samples kept; `locked` is false for
 *   that sample (and until five consistent samples are in), and fast pings
 *   return while the window is young. A corrupt sample that contradicts the
 *   history therefore costs a relock and the history; we accept that for a
 *   rare event rather than quarantine samples we cannot tell from a real
 *   step. (One that does not contradict it looks like a fast exchange: the
 *   bound trusts the hub's timestamps.)
 *
 * - Changes the intervals cannot contradict: a step smaller than the round
 *   trip, or a drift change still hidden in the band. Each sample, once the
 *   window has 64 samples, its newest
 *   quarter and its older three quarters are fitted separately (the older
 *   at its own drift, carried to R); if they disagree by more than 10
 *   standard deviations of the difference (the two estimates', and the
 *   older drift's error over the distance between the
 *   parts' centres; without that term a 2 ms +/- 0.1 ms normal path raised
 *   a false alarm about once in 20 minutes: tests/core/clock_test.c) (no
 *   false alarm in ~9 simulated hours at 50 +/- 10 ms, nor in 100 minutes
 *   each on LAN, normal, heavy-tailed and 400 ms paths; at 5 there were
 *   several), the older part is forgotten and the drift memory kept. Exchanges in
 *   flight across a step look like unusually fast ones and stay consistent,
 *   so recovery from a small step takes tens of seconds (see the tests).
 *   A drift change makes the bound dishonest until the samples contradict the
 *   old line (on a LAN a few seconds, by up to ~120 us for a 300 ppm change):
 *   the platform should read CLOCK_MONOTONIC_RAW, which no NTP daemon slews.
 *
 * - Window. Samples more than window_ns (default 30 s; <= 0: only the ring
 *   limits it) older than the newest are forgotten. At the steady ping rate
 *   the ring (256 samples, 25.6 s) is the tighter limit; the window matters
 *   when pongs are lost or a caller pings slower. Accuracy grows with the number of samples (an
 *   extreme's excess is ~spread/n), so a full ring is the goal; the drift's
 *   lever grows with the span, so time alone does not help.
 *
 * - Ping rate. 50 ms until locked and while the window is young (fewer than
 *   200 samples spanning under 10 s), so a 400 ms round trip locks after five
 *   answers (~0.65 s) and the first window fills fast; then 100 ms, ten
 *   small exchanges a second. Over a long path that keeps order only about
 *   one exchange per jitter range J reaches the floor of the delay in each
 *   direction (an exchange waits behind the one before it unless that one
 *   drew a delay near the floor), and pinging every 25 ms over such paths
 *   (tried) brought the Link cities' paths of tests/link/cities.sh nearer
 *   (per member p99 2.09 -> 1.10 ms at 200 +/- 20 ms, simulated), but broke
 *   the test for a change below over paths whose delay wanders (the relays'
 *   queue model at +/- 40 ms: 231 and 250 cuts of the window in 20 x 40 s
 *   at 200 and 50 ms one way, p99 19.8 and 21.7 ms, against none and 4.3
 *   and 4.4 ms at 100 ms): samples 25 ms apart on a delay that drifts over
 *   ~160 ms are not independent, and the test's spreads take them as if
 *   they were. The session's frames now give those samples without that
 *   cost (one-way constraints, above).
 *
 * - What is left over a long path is the drift. With d unknown within the
 *   crystals' +/-100 ppm, the widest strip pins it to about 4 J / (n T)
 *   (n samples near the floor over T seconds): ~30 ppm 15 s into a 200 +/-
 *   20 ms path, ~8 ppm once the ring is full; times the lever from the
 *   binding samples to now, that is most of the error in the first 20 s
 *   (with the drift known the same samples give a third of it). No way of
 *   weighing the samples we tried beats that (a shorter offset window,
 *   drift-weighted ageing of old samples, the strip alone, a faster or
 *   slower drift memory, a drift posterior from the strip's width, each
 *   floor corrected by its expected excess: docs/benchmarks.md); only more
 *   time or a tighter prior on the drift does, and the prior must cover real
 *   crystals. With the session's own frames on the path the offset was the
 *   limit, not the drift, until the frames became samples themselves
 *   (one-way constraints, above; docs/benchmarks.md).
 *
 * - Costs. Per sample O(n) for n samples in the window (about a dozen passes;
 *   points arrive in time order, so the insertion sort is linear), two ~16 KB
 *   fits on the stack (up to two points a side per sample), no allocation,
 *   no clock reads. This runs on the loop thread, not on an audio thread.
 */
#include "clock.h"

#include <math.h>

#define TUTTI__CLOCK_MAX_DRIFT 500e-6
#define TUTTI__CLOCK_DEFAULT_WINDOW (30 * TUTTI_S)
#define TUTTI__CLOCK_SLACK ((tutti_time)1000)
#define TUTTI__CLOCK_LOCK_SAMPLES 5u
#define TUTTI__CLOCK_FAST_PING (50 * TUTTI_MS)
#define TUTTI__CLOCK_STEADY_PING (100 * TUTTI_MS)
#define TUTTI__CLOCK_FAST_SPAN (10 * TUTTI_S)
#define TUTTI__CLOCK_FAST_SAMPLES 200u
#define TUTTI__CLOCK_DRIFT_SPAN (4 * TUTTI_S)
#define TUTTI__CLOCK_DRIFT_TAU (60 * TUTTI_S)
#define TUTTI__CLOCK_DRIFT_PRIOR 100e-6
#define TUTTI__CLOCK_SPACINGS 4u
#define TUTTI__CLOCK_STRIP_DOUBT 2.0
#define TUTTI__CLOCK_CHANGE_MIN 64u
#define TUTTI__CLOCK_CHANGE_SIGMAS 10.0

typedef struct tutti__clock_pt {
    double x, y;
} tutti__clock_pt;

/* The lines consistent with a run of samples, relative to (ref, y0). */
typedef struct tutti__clock_fit {
    uint32_t skip, k; /* samples used: the k after the `skip` newest */
    tutti_time ref;   /* R: newest t4 */
    tutti_time y0;    /* newest lower bound; every `a` is relative to it */
    tutti_time rtt_min;
    /* lower hull of the upper points, upper hull of the lower points: each
     * sample's own and its one-way constraint's */
    tutti__clock_pt up[2 * TUTTI__CLOCK_WINDOW];
    tutti__clock_pt lo[2 * TUTTI__CLOCK_WINDOW];
    uint32_t nu, nl;
    double a_min, a_max; /* range of a over every consistent line */
    double d_lo, d_hi;   /* range of d over every consistent line */
    double d_strip;      /* slope of the widest consistent strip */
    bool oneway;         /* the samples' one-way constraints are in */
} tutti__clock_fit;

#define RING_MASK (TUTTI__CLOCK_WINDOW - 1u)

/* i-th newest sample (0 = newest). */
static const tutti__clock_sample *nth_newest(const tutti__clock *c, uint32_t i)
{
    return &c->ring[(c->head - 1u - i) & RING_MASK];
}

static tutti_time sample_rtt(const tutti__clock_sample *s)
{
    tutti_time w = tutti__sat_sub(s->upper, s->lower);
    return w < 0 ? 0 : w;
}

/* A sample as two constraint points, relative to (ref, y0), slack applied. */
static void sample_points(const tutti__clock_sample *s, tutti_time ref, tutti_time y0,
                          tutti__clock_pt *up, tutti__clock_pt *lo)
{
    tutti_time w = sample_rtt(s);
    tutti_time t1 = s->mid_local - w / 2, t4 = s->mid_local + (w - w / 2);
    up->x = (double)tutti__sat_sub(t1, ref);
    up->y = (double)tutti__sat_sub(s->upper, y0) + (double)TUTTI__CLOCK_SLACK;
    lo->x = (double)tutti__sat_sub(t4, ref);
    lo->y = (double)tutti__sat_sub(s->lower, y0) - (double)TUTTI__CLOCK_SLACK;
}

/* A one-way constraint as a point, relative to (ref, y0), its slack outwards
 * (sign +1: an upper one). */
static tutti__clock_pt oneway_point(tutti_time x, tutti_time y, tutti_time ref,
                                    tutti_time y0, int sign)
{
    tutti__clock_pt p = {(double)tutti__sat_sub(x, ref),
                         (double)tutti__sat_sub(y, y0) + sign * (double)TUTTI__CLOCK_SLACK};
    return p;
}

static void sort_by_x(tutti__clock_pt *p, uint32_t n)
{
    /* Insertion sort: the points are in time order already but for overlapping
     * exchanges answered out of order, so this is linear in practice. */
    for (uint32_t i = 1; i < n; i++) {
        tutti__clock_pt v = p[i];
        uint32_t j = i;
        while (j > 0 && p[j - 1].x > v.x) {
            p[j] = p[j - 1];
            j--;
        }
        p[j] = v;
    }
}

static double cross(tutti__clock_pt o, tutti__clock_pt a, tutti__clock_pt b)
{
    return (a.x - o.x) * (b.y - o.y) - (a.y - o.y) * (b.x - o.x);
}

/* Monotone chain in place over points sorted by x. sign = +1 keeps the lower
 * hull (left turns), -1 the upper hull. Of points with equal x only the one
 * that binds (lowest for the lower hull, highest for the upper) is kept. */
static uint32_t hull(tutti__clock_pt *p, uint32_t n, double sign)
{
    uint32_t h = 0;
    for (uint32_t i = 0; i < n; i++) {
        tutti__clock_pt v = p[i];
        if (h > 0 && p[h - 1].x == v.x) {
            if (sign * (v.y - p[h - 1].y) >= 0) continue;
            h--;
        }
        while (h >= 2 && sign * cross(p[h - 2], p[h - 1], v) <= 0)
            h--;
        p[h++] = v;
    }
    return h;
}

static double edge_slope(const tutti__clock_pt *p, uint32_t j)
{
    return (p[j + 1].y - p[j].y) / (p[j + 1].x - p[j].x);
}

/* U(d): the highest a any line of slope d can have below every upper point. */
static double env_upper(const tutti__clock_fit *f, double d)
{
    double u = INFINITY;
    for (uint32_t i = 0; i < f->nu; i++)
        u = fmin(u, f->up[i].y - d * f->up[i].x);
    return u;
}

/* L(d): the lowest a any line of slope d can have above every lower point. */
static double env_lower(const tutti__clock_fit *f, double d)
{
    double l = -INFINITY;
    for (uint32_t i = 0; i < f->nl; i++)
        l = fmax(l, f->lo[i].y - d * f->lo[i].x);
    return l;
}

/*
 * The lines consistent with k samples, after the `skip` newest. Returns false
 * if there are none. See the design notes for the method.
 */
static bool fit(const tutti__clock *c, uint32_t skip, uint32_t k, tutti__clock_fit *f,
                bool oneway)
{
    tutti_time ref = INT64_MIN, rtt_min = INT64_MAX;
    for (uint32_t i = 0; i < k; i++) {
        const tutti__clock_sample *s = nth_newest(c, skip + i);
        tutti_time w = sample_rtt(s);
        tutti_time t4 = s->mid_local + (w - w / 2);
        if (t4 > ref) ref = t4;
        if (w < rtt_min) rtt_min = w;
        /* (a sample's one-way constraints are never newer than its t4) */
    }
    f->skip = skip;
    f->k = k;
    f->oneway = oneway;
    f->ref = ref;
    f->y0 = nth_newest(c, skip)->lower;
    f->rtt_min = rtt_min;
    /* Oldest first, so the sort has little to do. */
    uint32_t nu = 0, nl = 0;
    for (uint32_t i = 0; i < k; i++) {
        const tutti__clock_sample *s = nth_newest(c, skip + k - 1u - i);
        if (oneway && s->up_x != INT64_MIN)
            f->up[nu++] = oneway_point(s->up_x, s->up_y, ref, f->y0, 1);
        if (oneway && s->lo_x != INT64_MIN)
            f->lo[nl++] = oneway_point(s->lo_x, s->lo_y, ref, f->y0, -1);
        sample_points(s, ref, f->y0, &f->up[nu++], &f->lo[nl++]);
    }
    sort_by_x(f->up, nu);
    sort_by_x(f->lo, nl);
    f->nu = hull(f->up, nu, 1.0);  /* lower hull: edge slopes increase */
    f->nl = hull(f->lo, nl, -1.0); /* upper hull: edge slopes decrease */

    /*
     * Sweep d upward from -D to D over every breakpoint of U and L. iu is the
     * vertex of the lower hull that attains U(d) (it moves right as d grows),
     * il the vertex of the upper hull that attains L(d) (it moves left).
     * Between breakpoints U, L and W = U - L are linear, so the roots of W are
     * found exactly, and W's maximum is at a breakpoint.
     */
    const double dmax = TUTTI__CLOCK_MAX_DRIFT;
    const tutti__clock_pt *up = f->up, *lo = f->lo;
    nu = f->nu, nl = f->nl;
    uint32_t iu = 0, il = nl - 1u;
    double d = -dmax, pd = 0, pu = 0, pl = 0, pw = 0;
    bool first = true, any = false;
    double w_best = -INFINITY;

    for (;;) {
        while (iu + 1u < nu && edge_slope(up, iu) <= d)
            iu++;
        while (il > 0 && edge_slope(lo, il - 1u) <= d)
            il--;
        double u = up[iu].y - d * up[iu].x;
        double l = lo[il].y - d * lo[il].x;
        double w = u - l;

        if (!first && ((pw < 0) != (w < 0))) {
            /* A root of W: there U and L meet, so a is pinned to one value. */
            double fr = pw / (pw - w);
            double dr = pd + fr * (d - pd);
            double ar = 0.5 * ((pu + fr * (u - pu)) + (pl + fr * (l - pl)));
            if (!any) f->a_min = f->a_max = ar, f->d_lo = f->d_hi = dr;
            f->a_min = fmin(f->a_min, ar), f->a_max = fmax(f->a_max, ar);
            f->d_lo = fmin(f->d_lo, dr), f->d_hi = fmax(f->d_hi, dr);
            any = true;
        }
        if (w >= 0) {
            if (!any) f->a_min = l, f->a_max = u, f->d_lo = f->d_hi = d;
            f->a_min = fmin(f->a_min, l), f->a_max = fmax(f->a_max, u);
            f->d_lo = fmin(f->d_lo, d), f->d_hi = fmax(f->d_hi, d);
            any = true;
        }
        if (w > w_best) w_best = w, f->d_strip = d;
        first = false;
        pd = d, pu = u, pl = l, pw = w;
        if (d >= dmax) break;

        double next = dmax;
        if (iu + 1u < nu) next = fmin(next, edge_slope(up, iu));
        if (il > 0) next = fmin(next, edge_slope(lo, il - 1u));
        d = next > d ? next : dmax;
    }
    return any;
}

static double clamp(double v, double lo, double hi)
{
    return v < lo ? lo : v > hi ? hi : v;
}

/* Insert v into the m smallest values seen so far (ascending, n of them). */
static void keep_smallest(double *best, uint32_t *n, uint32_t m, double v)
{
    uint32_t i = *n < m ? (*n)++ : m;
    if (i == m && v >= best[m - 1u]) return;
    if (i == m) i = m - 1u;
    while (i > 0 && best[i - 1u] > v) {
        best[i] = best[i - 1u];
        i--;
    }
    best[i] = v;
}

/* Midpoints of the samples (relative to ref, y0): means and centred sums. */
typedef struct tutti__clock_mids {
    double mx, my, sxx, sxy, syy;
} tutti__clock_mids;

static void midpoints(const tutti__clock *c, const tutti__clock_fit *f,
                      tutti__clock_mids *m)
{
    double sx = 0, sy = 0;
    for (uint32_t i = 0; i < f->k; i++) {
        tutti__clock_pt p, q;
        sample_points(nth_newest(c, f->skip + i), f->ref, f->y0, &p, &q);
        sx += 0.5 * (p.x + q.x), sy += 0.5 * (p.y + q.y);
    }
    m->mx = sx / f->k, m->my = sy / f->k;
    m->sxx = m->sxy = m->syy = 0;
    for (uint32_t i = 0; i < f->k; i++) {
        tutti__clock_pt p, q;
        sample_points(nth_newest(c, f->skip + i), f->ref, f->y0, &p, &q);
        double x = 0.5 * (p.x + q.x) - m->mx, y = 0.5 * (p.y + q.y) - m->my;
        m->sxx += x * x, m->sxy += x * y, m->syy += y * y;
    }
}

/*
 * The offset at drift d: the middle of the strip of slope d, or the mean of
 * the midpoints detrended by d, weighted by the inverse of their estimated
 * variances (see the design notes), and kept inside the strip. *var is the
 * estimated variance of the result.
 */
static double offset_at(const tutti__clock *c, const tutti__clock_fit *f,
                        const tutti__clock_mids *m, double d, double *var,
                        double *w_strip)
{
    enum { N = TUTTI__CLOCK_SPACINGS + 1 };
    double hi = env_upper(f, d), lo = env_lower(f, d);
    if (lo > hi) lo = hi = 0.5 * (lo + hi); /* d on a root of W, by rounding */
    double strip = 0.5 * (lo + hi), mean = m->my - d * m->mx;
    uint32_t k = f->k;
    *w_strip = 1.0;
    if (k < 3u) {
        *var = 0.25 * (hi - lo) * (hi - lo);
        return strip;
    }
    double eu[N], el[N];
    uint32_t nu = 0, nl = 0;
    for (uint32_t i = 0; i < k; i++) {
        tutti__clock_pt p, q;
        const tutti__clock_sample *s = nth_newest(c, f->skip + i);
        sample_points(s, f->ref, f->y0, &p, &q);
        /* One excess a sample in each direction: the exchange's own, or its
         * one-way constraint's if tighter. Not every frame's: frames 20 ms
         * apart on a delay that wanders are not independent draws, and
         * their spacings would say the strip is sharper than it is. */
        double xu = (p.y - d * p.x) - hi, xl = lo - (q.y - d * q.x);
        if (f->oneway && s->up_x != INT64_MIN) {
            tutti__clock_pt o = oneway_point(s->up_x, s->up_y, f->ref, f->y0, 1);
            xu = fmin(xu, (o.y - d * o.x) - hi);
        }
        if (f->oneway && s->lo_x != INT64_MIN) {
            tutti__clock_pt o = oneway_point(s->lo_x, s->lo_y, f->ref, f->y0, -1);
            xl = fmin(xl, lo - (o.y - d * o.x));
        }
        keep_smallest(eu, &nu, N, xu);
        keep_smallest(el, &nl, N, xl);
    }
    double gu = (eu[nu - 1u] - eu[0]) / (double)(nu - 1u);
    double gl = (el[nl - 1u] - el[0]) / (double)(nl - 1u);
    double v_strip = TUTTI__CLOCK_STRIP_DOUBT * (gu * gu + gl * gl) / 4.0;
    double res = m->syy - 2.0 * d * m->sxy + d * d * m->sxx;
    double v_mean = fmax(res, 0.0) / (double)(k - 1u) / (double)k;
    if (!(v_strip + v_mean > 0)) {
        *var = 0;
        return strip;
    }
    double lambda = v_mean / (v_strip + v_mean);
    *var = v_strip * lambda;
    *w_strip = lambda;
    double a = lambda * strip + (1.0 - lambda) * mean;
    return clamp(a, lo, hi);
}

/*
 * The window's own drift: the widest strip's slope, or the midpoints'
 * regression slope, weighted as offset_at weighs their offsets; then shrunk
 * towards 0 by its variance against a prior of DRIFT_PRIOR (what crystals
 * promise). The variance is the offset's over the spread of the samples in
 * time, times 4 because the strip's slope rests on a few support points that
 * are closer together than the window. A short window's slope is mostly
 * noise, and this keeps it from steering the running drift.
 */
static double window_drift(const tutti__clock *c, const tutti__clock_fit *f,
                           const tutti__clock_mids *m, double *var)
{
    double v, w;
    double d_ls = m->sxx > 0 ? m->sxy / m->sxx : 0.0;
    (void)offset_at(c, f, m, f->d_strip, &v, &w);
    double d = w * f->d_strip + (1.0 - w) * d_ls;
    double v_d = m->sxx > 0 ? 4.0 * v * (double)f->k / m->sxx : INFINITY;
    double prior = TUTTI__CLOCK_DRIFT_PRIOR * TUTTI__CLOCK_DRIFT_PRIOR;
    if (var) *var = v_d * prior / (prior + v_d); /* after the shrink */
    return clamp(d * prior / (prior + v_d), f->d_lo, f->d_hi);
}

/*
 * The running drift: held while the window spans less than DRIFT_SPAN (at the
 * start, and after the window was cut short by a change), then an average of
 * the window's drift whose memory grows with the run up to DRIFT_TAU.
 */
static double running_drift(const tutti__clock *c, const tutti__clock_fit *f,
                            double d_win)
{
    const tutti_clock_estimate *e = &c->est;
    double d = e->drift;
    tutti_time age = tutti__sat_sub(f->ref, c->first_local);
    tutti_time span =
        tutti__sat_sub(f->ref, nth_newest(c, f->skip + f->k - 1u)->mid_local);
    if (span >= TUTTI__CLOCK_DRIFT_SPAN && e->bound_ns != TUTTI_TIME_MAX) {
        double dt = (double)tutti__sat_sub(f->ref, e->ref_local);
        double tau = fmin((double)TUTTI__CLOCK_DRIFT_TAU,
                          (double)(age - TUTTI__CLOCK_DRIFT_SPAN) / 3.0);
        double g = dt <= 0 ? 0.0 : tau <= dt ? 1.0 : dt / tau;
        d += g * (d_win - d);
    }
    return clamp(d, f->d_lo, f->d_hi);
}

static void publish(tutti__clock *c, const tutti__clock_fit *f, double d, double a,
                    bool locked)
{
    tutti_clock_estimate *e = &c->est;
    tutti_time off = (tutti_time)llround(a);
    /* Every consistent line's value at ref is in [a_min, a_max]; the bound
     * reaches the farther end from the rounded estimate, rounded up. */
    double half = fmax(f->a_max - (double)off, (double)off - f->a_min);
    e->locked = locked;
    e->ref_local = f->ref;
    e->offset_ns = f->y0 + off;
    e->drift = d;
    e->bound_ns = (tutti_time)ceil(half);
    e->rtt_min_ns = f->rtt_min;
    e->rtt_last_ns = sample_rtt(nth_newest(c, 0));
    e->samples = c->count;
}

void tutti__clock_init(tutti__clock *c)
{
    *c = (tutti__clock){0};
    c->window_ns = TUTTI__CLOCK_DEFAULT_WINDOW;
    c->est.bound_ns = TUTTI_TIME_MAX;
    c->pending.up_x = c->pending.lo_x = INT64_MIN;
}

void tutti__clock_note(tutti__clock *c, tutti_time local, tutti_time session, bool upper)
{
    if (local < 0 || session < 0) return;
    tutti_time y = session - local;
    tutti__clock_sample *p = &c->pending;
    tutti_time *px = upper ? &p->up_x : &p->lo_x, *py = upper ? &p->up_y : &p->lo_y;
    if (*px != INT64_MIN) {
        /* keep the tighter at the published drift: the lower of two upper
         * bounds, the higher of two lower ones */
        double dy = (double)(y - *py) - c->est.drift * (double)(local - *px);
        if (upper ? dy >= 0 : dy <= 0) return;
    }
    *px = local, *py = y;
}

int tutti__clock_add(tutti__clock *c, tutti_time t1, tutti_time t2, tutti_time t3,
                     tutti_time t4)
{
    /* Negative timestamps are rejected too: with all four in [0, INT64_MAX]
     * the differences below cannot overflow. */
    if (t1 < 0 || t2 < 0 || t3 < 0 || t4 < 0 || t4 < t1 || t3 < t2) return TUTTI_EINVAL;
    tutti__clock_sample s = {
        .mid_local = t1 + (t4 - t1) / 2,
        .upper = t2 - t1,
        .lower = t3 - t4,
        .up_x = INT64_MIN,
        .lo_x = INT64_MIN,
    };
    /* The one-way constraints noted since the last exchange, unless one is
     * from after this one's end (never, in order). */
    if (c->pending.up_x != INT64_MIN && c->pending.up_x <= t4)
        s.up_x = c->pending.up_x, s.up_y = c->pending.up_y;
    if (c->pending.lo_x != INT64_MIN && c->pending.lo_x <= t4)
        s.lo_x = c->pending.lo_x, s.lo_y = c->pending.lo_y;
    c->pending.up_x = c->pending.lo_x = INT64_MIN;
    /* The hub held the ping longer than the round trip took: impossible for
     * two clocks within the drift clamp, beyond rounding. */
    if (s.lower - s.upper > TUTTI__CLOCK_SLACK) return TUTTI_EINVAL;

    c->ring[c->head & RING_MASK] = s;
    c->head = (c->head + 1u) & RING_MASK;
    if (c->count < TUTTI__CLOCK_WINDOW) c->count++;
    if (c->total == 0) c->first_local = s.mid_local;
    c->total++;

    if (c->window_ns > 0) {
        while (c->count > 1 &&
               tutti__sat_sub(s.mid_local, nth_newest(c, c->count - 1u)->mid_local) >
                   c->window_ns)
            c->count--;
    }

    /* Two fits of ~16 KB each on the stack: the window, and its parts. */
    tutti__clock_fit f, g;
    bool consistent = fit(c, 0, c->count, &f, true);
    if (!consistent && !fit(c, 0, 1, &f, true)) {
        /* The newest exchange contradicts its own one-way constraints (a
         * clock step between them, or a corrupt stamp): it keeps its own. */
        tutti__clock_sample *s0 = &c->ring[(c->head - 1u) & RING_MASK];
        s0->up_x = s0->lo_x = INT64_MIN;
    }
    if (!consistent) {
        /* Longest consistent run of newest samples: one sample alone always
         * is (its interval is non-empty within the slack). */
        uint32_t good = 1, bad = c->count;
        while (bad - good > 1u) {
            uint32_t m = good + (bad - good) / 2u;
            if (fit(c, 0, m, &f, true))
                good = m;
            else
                bad = m;
        }
        c->count = good;
        (void)fit(c, 0, good, &f, true);
    }
    tutti__clock_mids m;
    double d, v, w, a;

    /*
     * A change the intervals cannot contradict (a step smaller than the round
     * trip, a new path, a drift change): the newest quarter of the window
     * disagrees with the older three quarters, each fitted on its own and the
     * older one carried to ref at its own drift, by far more than both could
     * be wrong. Then the older part describes a past that no longer holds:
     * forget it, but keep the running drift: a step or a new path does not
     * change the rate, and a changed rate shows in [d_lo, d_hi] soon enough.
     */
    if (consistent && f.k >= TUTTI__CLOCK_CHANGE_MIN) {
        uint32_t q = f.k / 4u;
        tutti__clock_mids mo, mn;
        (void)fit(c, q, f.k - q, &g, false); /* the older part */
        midpoints(c, &g, &mo);
        double v_d;
        double d_old = window_drift(c, &g, &mo, &v_d), v_old;
        double a_old = offset_at(c, &g, &mo, d_old, &v_old, &w);
        a_old += (double)tutti__sat_sub(g.y0, f.y0) +
                 d_old * (double)tutti__sat_sub(f.ref, g.ref);
        /* The older part's centre, from ref. */
        double c_old = mo.mx - (double)tutti__sat_sub(f.ref, g.ref);
        (void)fit(c, 0, q, &g, false); /* the newest part */
        midpoints(c, &g, &mn);
        double d_new = clamp(c->est.drift, g.d_lo, g.d_hi), v_new;
        double a_new = offset_at(c, &g, &mn, clamp(d_old, g.d_lo, g.d_hi), &v_new, &w);
        /* The two parts are compared through d_old, whose error moves their
         * difference by that error times the distance between their centres:
         * a few ppm over ~13 s, tens of microseconds with a WAN's jitter (a
         * hub 2 ms +/- 0.1 ms away raised a false alarm about once in 20
         * minutes when this was left out, and the cut window's estimate
         * jumped by ~13 us). */
        double lever = mn.mx - c_old;
        double tol =
            TUTTI__CLOCK_CHANGE_SIGMAS * sqrt(v_old + v_new + v_d * lever * lever) +
            2.0 * (double)TUTTI__CLOCK_SLACK;
        if (g.ref == f.ref &&
            fabs(a_new + (double)tutti__sat_sub(g.y0, f.y0) - a_old) > tol) {
            c->count = q;
            a_new = offset_at(c, &g, &mn, d_new, &v_new, &w);
            publish(c, &g, d_new, a_new, c->count >= TUTTI__CLOCK_LOCK_SAMPLES);
            return 0;
        }
    }
    midpoints(c, &f, &m);
    d = running_drift(c, &f, window_drift(c, &f, &m, NULL));
    a = offset_at(c, &f, &m, d, &v, &w);
    publish(c, &f, d, a, consistent && c->count >= TUTTI__CLOCK_LOCK_SAMPLES);
    return 0;
}

tutti_time tutti__clock_ping_interval(const tutti__clock *c)
{
    /* Fast until locked, and while the window is young: fewer than
     * FAST_SAMPLES samples spanning less than FAST_SPAN. */
    if (!c->est.locked || c->count == 0) return TUTTI__CLOCK_FAST_PING;
    tutti_time span =
        tutti__sat_sub(c->est.ref_local, nth_newest(c, c->count - 1u)->mid_local);
    if (c->count < TUTTI__CLOCK_FAST_SAMPLES && span < TUTTI__CLOCK_FAST_SPAN)
        return TUTTI__CLOCK_FAST_PING;
    return TUTTI__CLOCK_STEADY_PING;
}

/* ------------------------------------------------------------ public API */

tutti_time tutti_clock_to_session(const tutti_clock_estimate *e, tutti_time local)
{
    tutti_time u = local - e->ref_local;
    return local + e->offset_ns + (tutti_time)llround((double)u * e->drift);
}

tutti_time tutti_clock_to_local(const tutti_clock_estimate *e, tutti_time session)
{
    /* session - ref - offset = u * (1 + drift), u = local - ref. Solving as
     * u = v - v * drift / (1 + drift) keeps full precision in the large part. */
    tutti_time v = session - e->offset_ns - e->ref_local;
    double corr = (double)v * (e->drift / (1.0 + e->drift));
    return e->ref_local + v - (tutti_time)llround(corr);
}
