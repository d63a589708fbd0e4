/*
 * The tempo timeline: beats and phase as functions of session time.
 *
 * Design notes
 * ------------
 * - The model is Ableton Link's: beat(t) = beat0 + (t - t0) * bpm / 60 s, and
 *   phase(t) = beat(t) modulo the quantum, taken into [0, quantum). Phase is
 *   measured from beat 0, so every member with the same timeline agrees on
 *   where bars start.
 * - Precision. Session time counts nanoseconds since 1900, about 4e18 today; as
 *   a double that has a resolution of 512 ns, which would make beats jitter
 *   audibly. So t - t0 is always formed in integers first, and only the
 *   difference becomes a double. A difference is exact in a double up to 2^53
 *   ns (104 days), and the beat then carries the usual relative error of a few
 *   ulps: after 10 hours at 300 bpm the beat is about 180000 and one ulp is
 *   3e-11 beats, a few picoseconds. long double would add nothing here and is
 *   no wider than double on the ARM boards this also runs on.
 * - time_at_beat is the inverse, rounded to the nearest nanosecond, and
 *   saturates at the ends of tutti_time instead of overflowing; a NaN beat gives
 *   t0. A difference t - t0 that overflows int64 (only for times centuries
 *   apart) is formed in doubles instead.
 * - set_bpm moves the origin to the change: beat0 becomes the beat at `at` and
 *   t0 becomes `at`, so the beat is continuous there by construction (exactly,
 *   not just within rounding), and later beats depend only on the last change.
 * - Invalid tempos or quanta (not finite, or <= 0) never enter a timeline:
 *   init falls back to 120 bpm and a quantum of 4, set_bpm ignores them, and
 *   next_boundary uses the timeline's quantum. The functions have no error
 *   return because they run on the audio thread; engines validate commands
 *   before applying them.
 * - All functions are pure arithmetic: thread-safe on distinct objects and
 *   real-time safe.
 */
#include "tutti/tutti.h"

#include <math.h>

#define NS_PER_MINUTE 60e9

static bool positive_finite(double v)
{
    return v > 0 && isfinite(v);
}

/* a - b in nanoseconds as a double, exact whenever the result fits in 2^53. */
static double diff_ns(tutti_time a, tutti_time b)
{
    if ((b > 0 && a < INT64_MIN + b) || (b < 0 && a > INT64_MAX + b))
        return (double)a - (double)b;
    return (double)(a - b);
}

void tutti_timeline_init(tutti_timeline *tl, double bpm, double quantum, tutti_time t0)
{
    tl->bpm = positive_finite(bpm) ? bpm : 120.0;
    tl->quantum = positive_finite(quantum) ? quantum : 4.0;
    tl->beat0 = 0.0;
    tl->t0 = t0;
    tl->playing = false;
}

double tutti_timeline_beat_at(const tutti_timeline *tl, tutti_time t)
{
    return tl->beat0 + diff_ns(t, tl->t0) * tl->bpm / NS_PER_MINUTE;
}

double tutti_timeline_phase_at(const tutti_timeline *tl, tutti_time t)
{
    double q = tl->quantum;
    double p;

    if (!positive_finite(q)) return 0.0;
    p = fmod(tutti_timeline_beat_at(tl, t), q);
    if (p < 0) {
        p += q;
        /* -tiny + q rounds to q: that is the start of the next bar. */
        if (p >= q) p = 0.0;
    }
    return p;
}

tutti_time tutti_timeline_time_at_beat(const tutti_timeline *tl, double beat)
{
    double ns = (beat - tl->beat0) * NS_PER_MINUTE / tl->bpm;
    int64_t d;

    if (isnan(ns)) return tl->t0;
    /* 2^63 is exact in a double; anything at or beyond it saturates. */
    if (ns >= 9223372036854775808.0) return TUTTI_TIME_MAX;
    if (ns <= -9223372036854775808.0) return INT64_MIN;
    d = (int64_t)llround(ns);
    if (d > 0 && tl->t0 > INT64_MAX - d) return TUTTI_TIME_MAX;
    if (d < 0 && tl->t0 < INT64_MIN - d) return INT64_MIN;
    return tl->t0 + d;
}

double tutti_timeline_next_boundary(const tutti_timeline *tl, tutti_time t,
                                    double quantum)
{
    double beat = tutti_timeline_beat_at(tl, t);
    double q = positive_finite(quantum) ? quantum : tl->quantum;
    double n, b;

    if (!positive_finite(q) || !isfinite(beat)) return beat;
    n = ceil(beat / q);
    b = n * q;
    /* beat / q may round down onto an integer while beat is a hair above n * q. */
    if (b < beat) b = (n + 1) * q;
    return b;
}

void tutti_timeline_set_bpm(tutti_timeline *tl, double bpm, tutti_time at)
{
    if (!positive_finite(bpm)) return;
    tl->beat0 = tutti_timeline_beat_at(tl, at);
    tl->t0 = at;
    tl->bpm = bpm;
}
