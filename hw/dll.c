/* The sample clock; see dll.h for the loop and its choices. */
#include "dll.h"

#include <math.h>

#define OUTLIER_NS 1e6
#define RESTART_AFTER 8
#define STEP_AGREE_NS 100e3
#define WIDE_HZ 2.0
#define NARROW_HZ 0.2
#define WIDE_FOR (1 * TUTTI_S)
#define LOCK_AFTER (2 * TUTTI_S)

void tutti_hw_dll_init(tutti_hw_dll *d, double sample_rate)
{
    *d = (tutti_hw_dll){0};
    d->nominal = 1e9 / sample_rate;
    d->period = d->nominal;
}

/* Host time of frame n on the line, as an offset from t_ref (ns). */
static double along(const tutti_hw_dll *d, uint64_t n)
{
    return d->t_frac + (double)(int64_t)(n - d->n_ref) * d->period;
}

static void restart(tutti_hw_dll *d, uint64_t n, tutti_time t)
{
    d->started = true;
    d->locked = false;
    d->n_ref = n;
    d->t_ref = t;
    d->t_frac = 0;
    d->period = d->nominal;
    d->err = 0;
    d->since = t;
    d->outliers = 0;
}

void tutti_hw_dll_update(tutti_hw_dll *d, uint64_t n, tutti_time t)
{
    if (!d->started || n <= d->n_ref) {
        if (d->started) d->restarts++;
        restart(d, n, t);
        return;
    }
    double pred = along(d, n);
    double err = (double)(t - d->t_ref) - pred;
    d->err = err;
    if (fabs(err) > OUTLIER_NS) {
        d->rejected++;
        /* A clock step puts every reading off by the same amount; a stalled
         * thread catching up gives readings late by less and less. Only the
         * first restarts the loop. */
        if (d->outliers && fabs(err - d->outlier_err) > STEP_AGREE_NS) d->outliers = 0;
        if (!d->outliers) d->outlier_err = err;
        if (++d->outliers >= RESTART_AFTER) {
            d->restarts++;
            restart(d, n, t);
        }
        return;
    }
    d->outliers = 0;
    double frames = (double)(n - d->n_ref);
    /* A long interval (missed blocks, rejected readings in between) would
     * give one reading the weight of many: count it as at most 5 ms. */
    double interval_s = frames * d->period * 1e-9;
    if (interval_s > 0.005) interval_s = 0.005;
    double bw = t - d->since < WIDE_FOR ? WIDE_HZ : NARROW_HZ;
    double w = 2 * M_PI * bw * interval_s;
    double b = sqrt(2.0) * w, c = w * w;
    double next = pred + b * err;
    d->period += c * err / frames;
    /* Re-anchor at n: whole ns into t_ref, the rest into t_frac. */
    double whole = floor(next);
    d->t_ref += (tutti_time)whole;
    d->t_frac = next - whole;
    d->n_ref = n;
    if (!d->locked && t - d->since >= LOCK_AFTER) d->locked = true;
}

void tutti_hw_dll_time(const tutti_hw_dll *d, uint64_t n, tutti_time *whole, double *frac)
{
    double x = along(d, n);
    double w = floor(x);
    *whole = d->t_ref + (tutti_time)w;
    *frac = x - w;
}
