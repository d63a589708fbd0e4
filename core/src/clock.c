/*
 * The clock filter: offset and drift of the local clock against session time,
 * with an error bound that holds by construction (the contract is in clock.h).
 *
 * Design notes
 * ------------
 * - Model. Over the window, theta = session - local is a straight line in local
 *   time, theta(l) = a + d * (l - R), with |d| <= TUTTI__CLOCK_MAX_DRIFT. R is the
 *   newest local instant we have information at (the newest sample's t4), and
 *   `a` is what we publish as offset_ns, at ref_local = R.
 *
 * - Exact constraints, not midpoints. The forward bound t2 - t1 holds for theta
 *   at local time t1 exactly (theta(t1) = t2 - x - (x - t1) * d with x >= t1 the
 *   local time the ping arrived, and 1 + d > 0), and the return bound t3 - t4
 *   holds at t4 exactly. So a sample is two points: an upper constraint
 *   (t1, t2 - t1) and a lower constraint (t4, t3 - t4). The sample only keeps
 *   mid_local and the two bounds, so t1 and t4 are recovered as mid -/+ rtt/2
 *   with rtt = upper - lower; that places t1 later by half the hub's hold time
 *   (t3 - t2), an error of |d| * hold / 2 (0.25 ns per millisecond of hold).
 *
 * - Drift without a regression. Every line (a, d) that passes below all upper
 *   points and above all lower points is consistent with every sample; the set
 *   of them is a convex polygon in (a, d), and we compute it exactly. Only the
 *   lower convex hull of the upper points and the upper convex hull of the
 *   lower points can bind (monotone chain, O(n) on time-ordered points). With
 *   U(d) = min over upper points of (y - d x) and L(d) = max over lower points
 *   of (y - d x) (x measured from R), the drifts allowed are where
 *   W(d) = U(d) - L(d) >= 0; W is concave and piecewise linear with breakpoints
 *   at the hulls' edge slopes, so one sweep over those slopes in increasing
 *   order finds [d_min, d_max] and the range [a_min, a_max] that `a` can take.
 *   A least-squares fit of interval midpoints needs the delays to be symmetric
 *   and averages their full spread (50 +/- 10 ms jitter gives tens of ppm of
 *   slope error over 30 s); the polygon instead tightens with the fastest
 *   exchange in each direction, so the drift is pinned to roughly
 *   (excess of the fastest delays) / (window span), a few ppm or better.
 *
 * - Estimate and bound. The published line is the midpoint of the polygon's two
 *   extreme vertices in `a` (a minimax choice: it minimises the worst error
 *   over all consistent lines, and, being a midpoint of two points of a convex
 *   set, is itself consistent with every sample). bound_ns = (a_max - a_min)/2,
 *   so it contains the drift uncertainty as well as the width of the
 *   intersection, and it is honest whenever the model holds. It is at most
 *   (1 + max drift) * rtt/2 + slack of the newest sample, since that sample is
 *   one of the constraints; in steady state it is far below rtt_min/2.
 *   Before any sample the bound is TUTTI_TIME_MAX (nothing is known).
 *
 * - Slack. Each constraint is relaxed by TUTTI__CLOCK_SLACK (1 us). That
 *   absorbs nanosecond rounding of the four timestamps, the hold-time placement
 *   above and the curvature of a real crystal's drift over the window
 *   (temperature drift of ~0.5 ppm/min bends theta by about 1 ns over 30 s). It
 *   is included in the bound.
 *
 * - Inconsistency. Causality cannot be violated by any delay, loss or path
 *   change, so an empty polygon means the model broke: a clock step (a new hub,
 *   an adjusted clock), a drift change (NTP slewing CLOCK_MONOTONIC), or drift
 *   beyond the clamp. The newest samples describe the present, so the filter
 *   keeps the longest run of newest samples that is consistent (binary search
 *   on its length; O(n log n), only on such an event) and forgets the rest.
 *   The bound then comes from the samples kept, and so stays honest; `locked`
 *   is false for that sample (and until five consistent samples are in), and
 *   the fast ping rate returns for TUTTI__CLOCK_FAST_SPAN. One corrupt sample therefore costs a relock and
 *   the history, never a wrong bound; we accept that for a rare event rather
 *   than quarantine samples we cannot tell apart from a real step.
 *
 * - Window. Samples older than window_ns (default 30 s, <= 0 means the ring
 *   alone limits it) before the newest are forgotten. 30 s at the steady ping
 *   rate is 150 samples, inside the 256-sample ring: long enough that the
 *   fastest exchanges of a jittery path are in it and the drift is pinned to a
 *   few ppm, short enough that a changing drift stays within the slack.
 *
 * - Ping rate. 50 ms until locked and for the first TUTTI__CLOCK_FAST_SPAN (4 s)
 *   of consistent samples, so that a 400 ms round trip locks after five answers
 *   (~0.65 s) and the drift is anchored early; then 200 ms. Error falls with the
 *   number of samples in the window (the excess of the fastest of n uniform
 *   delays is spread/(n+1)); 200 ms gives 150 samples per window, which keeps
 *   p99 well under 1 ms at 50 +/- 10 ms jitter, for 5 pings a second.
 *
 * - Costs. Per sample O(n) for n samples in the window (points arrive in time
 *   order, so the insertion sort is linear), ~10 KB of stack, no allocation,
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
#define TUTTI__CLOCK_DRIFT_SPAN (4 * TUTTI_S)
#define TUTTI__CLOCK_DRIFT_TAU (60 * TUTTI_S)
#define TUTTI__CLOCK_SPACINGS 4u
#define TUTTI__CLOCK_STRIP_DOUBT 2.0

typedef struct tutti__clock_pt {
    double x, y;
} tutti__clock_pt;

/* The lines consistent with a run of samples, relative to (ref, y0). */
typedef struct tutti__clock_fit {
    uint32_t k;          /* newest samples used */
    tutti_time ref;      /* R: newest t4 */
    tutti_time y0;       /* newest lower bound; every `a` is relative to it */
    tutti_time rtt_min;
    tutti__clock_pt up[TUTTI__CLOCK_WINDOW]; /* lower hull of the upper points */
    tutti__clock_pt lo[TUTTI__CLOCK_WINDOW]; /* upper hull of the lower points */
    uint32_t nu, nl;
    double a_min, a_max; /* range of a over every consistent line */
    double d_lo, d_hi;   /* range of d over every consistent line */
    double d_strip;      /* slope of the widest consistent strip */
} tutti__clock_fit;

#define RING_MASK (TUTTI__CLOCK_WINDOW - 1u)

/* i-th newest sample (0 = newest). */
static const tutti__clock_sample *nth_newest(const tutti__clock *c, uint32_t i)
{
    return &c->ring[(c->head - 1u - i) & RING_MASK];
}

/* a - b, saturated instead of overflowing (only absurd hub clocks get there). */
static tutti_time sat_sub(tutti_time a, tutti_time b)
{
    if (b > 0 && a < INT64_MIN + b) return INT64_MIN;
    if (b < 0 && a > INT64_MAX + b) return INT64_MAX;
    return a - b;
}

static tutti_time sample_rtt(const tutti__clock_sample *s)
{
    tutti_time w = sat_sub(s->upper, s->lower);
    return w < 0 ? 0 : w;
}

/* A sample as two constraint points, relative to (ref, y0), slack applied. */
static void sample_points(const tutti__clock_sample *s, tutti_time ref, tutti_time y0,
                          tutti__clock_pt *up, tutti__clock_pt *lo)
{
    tutti_time w = sample_rtt(s);
    tutti_time t1 = s->mid_local - w / 2, t4 = s->mid_local + (w - w / 2);
    up->x = (double)sat_sub(t1, ref);
    up->y = (double)sat_sub(s->upper, y0) + (double)TUTTI__CLOCK_SLACK;
    lo->x = (double)sat_sub(t4, ref);
    lo->y = (double)sat_sub(s->lower, y0) - (double)TUTTI__CLOCK_SLACK;
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
        while (h >= 2 && sign * cross(p[h - 2], p[h - 1], v) <= 0) h--;
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
    for (uint32_t i = 0; i < f->nu; i++) u = fmin(u, f->up[i].y - d * f->up[i].x);
    return u;
}

/* L(d): the lowest a any line of slope d can have above every lower point. */
static double env_lower(const tutti__clock_fit *f, double d)
{
    double l = -INFINITY;
    for (uint32_t i = 0; i < f->nl; i++) l = fmax(l, f->lo[i].y - d * f->lo[i].x);
    return l;
}

/*
 * The lines consistent with the newest k samples. Returns false if there are
 * none. See the design notes for the method.
 */
static bool fit(const tutti__clock *c, uint32_t k, tutti__clock_fit *f)
{
    tutti_time ref = INT64_MIN, rtt_min = INT64_MAX;
    for (uint32_t i = 0; i < k; i++) {
        const tutti__clock_sample *s = nth_newest(c, i);
        tutti_time w = sample_rtt(s);
        tutti_time t4 = s->mid_local + (w - w / 2);
        if (t4 > ref) ref = t4;
        if (w < rtt_min) rtt_min = w;
    }
    f->k = k;
    f->ref = ref;
    f->y0 = nth_newest(c, 0)->lower;
    f->rtt_min = rtt_min;
    /* Oldest first, so the sort has nothing to do. */
    for (uint32_t i = 0; i < k; i++)
        sample_points(nth_newest(c, k - 1u - i), ref, f->y0, &f->up[i], &f->lo[i]);
    sort_by_x(f->up, k);
    sort_by_x(f->lo, k);
    f->nu = hull(f->up, k, 1.0);  /* lower hull: edge slopes increase */
    f->nl = hull(f->lo, k, -1.0); /* upper hull: edge slopes decrease */

    /*
     * Sweep d upward from -D to D over every breakpoint of U and L. iu is the
     * vertex of the lower hull that attains U(d) (it moves right as d grows),
     * il the vertex of the upper hull that attains L(d) (it moves left).
     * Between breakpoints U, L and W = U - L are linear, so the roots of W are
     * found exactly, and W's maximum is at a breakpoint.
     */
    const double dmax = TUTTI__CLOCK_MAX_DRIFT;
    const tutti__clock_pt *up = f->up, *lo = f->lo;
    uint32_t nu = f->nu, nl = f->nl, iu = 0, il = nl - 1u;
    double d = -dmax, pd = 0, pu = 0, pl = 0, pw = 0;
    bool first = true, any = false;
    double w_best = -INFINITY;

    for (;;) {
        while (iu + 1u < nu && edge_slope(up, iu) <= d) iu++;
        while (il > 0 && edge_slope(lo, il - 1u) <= d) il--;
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
        sample_points(nth_newest(c, i), f->ref, f->y0, &p, &q);
        sx += 0.5 * (p.x + q.x), sy += 0.5 * (p.y + q.y);
    }
    m->mx = sx / f->k, m->my = sy / f->k;
    m->sxx = m->sxy = m->syy = 0;
    for (uint32_t i = 0; i < f->k; i++) {
        tutti__clock_pt p, q;
        sample_points(nth_newest(c, i), f->ref, f->y0, &p, &q);
        double x = 0.5 * (p.x + q.x) - m->mx, y = 0.5 * (p.y + q.y) - m->my;
        m->sxx += x * x, m->sxy += x * y, m->syy += y * y;
    }
}

/*
 * How far to trust the strip's middle over the mean of the midpoints, for a
 * line of slope d: v_mean / (v_strip + v_mean), each the estimated variance of
 * that estimate (see the design notes).
 */
static double trust_strip(const tutti__clock *c, const tutti__clock_fit *f,
                          const tutti__clock_mids *m, double d)
{
    enum { N = TUTTI__CLOCK_SPACINGS + 1 };
    double u0 = env_upper(f, d), l0 = env_lower(f, d);
    double eu[N], el[N];
    uint32_t nu = 0, nl = 0, k = f->k;
    if (k < 3u) return 1.0;
    for (uint32_t i = 0; i < k; i++) {
        tutti__clock_pt p, q;
        sample_points(nth_newest(c, i), f->ref, f->y0, &p, &q);
        keep_smallest(eu, &nu, N, (p.y - d * p.x) - u0);
        keep_smallest(el, &nl, N, l0 - (q.y - d * q.x));
    }
    double gu = (eu[nu - 1u] - eu[0]) / (double)(nu - 1u);
    double gl = (el[nl - 1u] - el[0]) / (double)(nl - 1u);
    double v_strip = TUTTI__CLOCK_STRIP_DOUBT * (gu * gu + gl * gl) / 4.0;
    double res = m->syy - 2.0 * d * m->sxy + d * d * m->sxx;
    double v_mean = fmax(res, 0.0) / (double)(k - 1u) / (double)k;
    if (!(v_strip + v_mean > 0)) return 1.0;
    return v_mean / (v_strip + v_mean);
}

static double clamp(double v, double lo, double hi)
{
    return v < lo ? lo : v > hi ? hi : v;
}

static void publish(tutti__clock *c, const tutti__clock_fit *f, bool locked)
{
    tutti_clock_estimate *e = &c->est;
    tutti__clock_mids m;
    midpoints(c, f, &m);

    /* The window's own drift: the widest strip's slope, or the midpoints'
     * regression slope, weighted by how sharp the delay floor looks. */
    double lambda = trust_strip(c, f, &m, f->d_strip);
    double d_ls = m.sxx > 0 ? m.sxy / m.sxx : 0.0;
    double d_win = clamp(lambda * f->d_strip + (1.0 - lambda) * d_ls, f->d_lo, f->d_hi);

    /* Then the running drift: held for the first seconds of a run, then an
     * average whose memory grows with the run up to TUTTI__CLOCK_DRIFT_TAU. */
    double d = e->drift;
    tutti_time age = sat_sub(f->ref, c->first_local);
    if (age >= TUTTI__CLOCK_DRIFT_SPAN && e->bound_ns != TUTTI_TIME_MAX) {
        double dt = (double)sat_sub(f->ref, e->ref_local);
        double tau = fmin((double)TUTTI__CLOCK_DRIFT_TAU,
                          (double)(age - TUTTI__CLOCK_DRIFT_SPAN) / 3.0);
        double g = dt <= 0 ? 0.0 : tau <= dt ? 1.0 : dt / tau;
        d += g * (d_win - d);
    }
    d = clamp(d, f->d_lo, f->d_hi);

    /* The offset at that drift: the middle of the strip, or the mean of the
     * detrended midpoints, weighted the same way, kept inside the strip. */
    double lo = env_lower(f, d), hi = env_upper(f, d);
    if (lo > hi) lo = hi = 0.5 * (lo + hi); /* d on a root of W, by rounding */
    lambda = trust_strip(c, f, &m, d);
    double mean = m.my - d * m.mx;
    double a = clamp(lambda * 0.5 * (lo + hi) + (1.0 - lambda) * mean, lo, hi);

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
}

int tutti__clock_add(tutti__clock *c, tutti_time t1, tutti_time t2, tutti_time t3,
                     tutti_time t4)
{
    /* Negative timestamps are rejected too: with all four in [0, INT64_MAX]
     * the differences below cannot overflow. */
    if (t1 < 0 || t2 < 0 || t3 < 0 || t4 < 0 || t4 < t1 || t3 < t2)
        return TUTTI_EINVAL;
    tutti__clock_sample s = {
        .mid_local = t1 + (t4 - t1) / 2,
        .upper = t2 - t1,
        .lower = t3 - t4,
    };
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
               sat_sub(s.mid_local, nth_newest(c, c->count - 1u)->mid_local) >
                   c->window_ns)
            c->count--;
    }

    tutti__clock_fit f;
    bool consistent = fit(c, c->count, &f);
    if (!consistent) {
        /* Longest consistent run of newest samples: one sample alone always
         * is (its interval is non-empty within the slack). */
        uint32_t good = 1, bad = c->count;
        while (bad - good > 1u) {
            uint32_t m = good + (bad - good) / 2u;
            if (fit(c, m, &f))
                good = m;
            else
                bad = m;
        }
        c->count = good;
        c->first_local = nth_newest(c, good - 1u)->mid_local;
        (void)fit(c, good, &f);
    }
    publish(c, &f, consistent && c->count >= TUTTI__CLOCK_LOCK_SAMPLES);
    return 0;
}

tutti_time tutti__clock_ping_interval(const tutti__clock *c)
{
    if (!c->est.locked || c->total == 0 ||
        sat_sub(c->est.ref_local, c->first_local) < TUTTI__CLOCK_FAST_SPAN)
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
