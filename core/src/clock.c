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
#define TUTTI__CLOCK_STEADY_PING (200 * TUTTI_MS)
#define TUTTI__CLOCK_FAST_SPAN (4 * TUTTI_S)
#define TUTTI__CLOCK_DRIFT_SPAN (4 * TUTTI_S)

typedef struct tutti__clock_pt {
    double x, y;
} tutti__clock_pt;

/* What one pass over the window finds, relative to (ref, y0). */
typedef struct tutti__clock_fit {
    tutti_time ref;    /* R: newest t4 */
    tutti_time y0;     /* newest lower bound; every `a` is relative to it */
    tutti_time span;   /* ref - oldest t1 */
    tutti_time rtt_min;
    double a_min, a_max; /* the range of a over every consistent line */
    double d_best, a_best; /* the middle of the widest consistent strip */
    bool zero_ok;        /* drift 0 is consistent ... */
    double a_zero;       /* ... and this is the middle of its strip */
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

/*
 * The lines consistent with the newest k samples. Returns false if there are
 * none. See the design notes for the method.
 */
static bool fit(const tutti__clock *c, uint32_t k, tutti__clock_fit *out)
{
    tutti__clock_pt up[TUTTI__CLOCK_WINDOW], lo[TUTTI__CLOCK_WINDOW];
    tutti_time ref = INT64_MIN, first = INT64_MAX, rtt_min = INT64_MAX;

    for (uint32_t i = 0; i < k; i++) {
        const tutti__clock_sample *s = nth_newest(c, i);
        tutti_time w = sample_rtt(s);
        tutti_time t1 = s->mid_local - w / 2, t4 = s->mid_local + (w - w / 2);
        if (t4 > ref) ref = t4;
        if (t1 < first) first = t1;
        if (w < rtt_min) rtt_min = w;
    }
    tutti_time y0 = nth_newest(c, 0)->lower;
    double slack = (double)TUTTI__CLOCK_SLACK;
    for (uint32_t i = 0; i < k; i++) {
        /* Oldest first, so the sort below has nothing to do. */
        const tutti__clock_sample *s = nth_newest(c, k - 1u - i);
        tutti_time w = sample_rtt(s);
        tutti_time t1 = s->mid_local - w / 2, t4 = s->mid_local + (w - w / 2);
        up[i].x = (double)sat_sub(t1, ref);
        up[i].y = (double)sat_sub(s->upper, y0) + slack;
        lo[i].x = (double)sat_sub(t4, ref);
        lo[i].y = (double)sat_sub(s->lower, y0) - slack;
    }
    sort_by_x(up, k);
    sort_by_x(lo, k);
    uint32_t nu = hull(up, k, 1.0);  /* lower hull: slopes increase */
    uint32_t nl = hull(lo, k, -1.0); /* upper hull: slopes decrease */

    /*
     * Sweep d upward from -D to D over every breakpoint of U and L, and d = 0.
     * iu is the vertex of the lower hull that attains U(d) (it moves right as d
     * grows), il the vertex of the upper hull that attains L(d) (it moves
     * left). Between breakpoints U, L and W are linear.
     */
    const double dmax = TUTTI__CLOCK_MAX_DRIFT;
    uint32_t iu = 0, il = nl - 1u;
    double d = -dmax;
    double pu = 0, pl = 0, pw = 0;
    bool first_pt = true, any = false;
    double a_min = 0, a_max = 0;
    double w_best = -INFINITY, d_best = 0, a_best = 0;

    out->zero_ok = false;
    out->a_zero = 0;
    for (;;) {
        while (iu + 1u < nu && edge_slope(up, iu) <= d) iu++;
        while (il > 0 && edge_slope(lo, il - 1u) <= d) il--;
        double u = up[iu].y - d * up[iu].x;
        double l = lo[il].y - d * lo[il].x;
        double w = u - l;

        if (!first_pt && ((pw < 0) != (w < 0))) {
            /* A root of W between the previous breakpoint and this one; there
             * U and L meet, so a is pinned to one value. */
            double f = pw / (pw - w);
            double ar = 0.5 * ((pu + f * (u - pu)) + (pl + f * (l - pl)));
            if (!any || ar < a_min) a_min = ar;
            if (!any || ar > a_max) a_max = ar;
            any = true;
        }
        if (w >= 0) {
            if (!any || l < a_min) a_min = l;
            if (!any || u > a_max) a_max = u;
            any = true;
        }
        if (w > w_best) w_best = w, d_best = d, a_best = 0.5 * (u + l);
        if (d == 0.0 && w >= 0) out->zero_ok = true, out->a_zero = 0.5 * (u + l);
        first_pt = false;
        pu = u, pl = l, pw = w;
        if (d >= dmax) break;

        double next = dmax;
        if (iu + 1u < nu) {
            double s = edge_slope(up, iu);
            if (s < next) next = s;
        }
        if (il > 0) {
            double s = edge_slope(lo, il - 1u);
            if (s < next) next = s;
        }
        if (d < 0.0 && next > 0.0) next = 0.0;
        d = next > d ? next : dmax;
    }
    if (!any) return false;
    out->ref = ref;
    out->y0 = y0;
    out->span = sat_sub(ref, first);
    out->rtt_min = rtt_min;
    out->a_min = a_min;
    out->a_max = a_max;
    out->d_best = d_best;
    out->a_best = a_best;
    return true;
}

static void publish(tutti__clock *c, const tutti__clock_fit *f, bool locked)
{
    tutti_clock_estimate *e = &c->est;
    double a = f->a_best, d = f->d_best;
    if (f->span < TUTTI__CLOCK_DRIFT_SPAN && f->zero_ok) a = f->a_zero, d = 0.0;
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
