/*
 * The sample clock: a delay-locked loop that fits the host clock to an audio
 * frame counter.
 *
 * Design notes
 * ------------
 * - The audio driver gives, each block, an exact frame count n and a reading
 *   t of the host clock taken when the callback began, late by a wake-up
 *   jitter. The loop (F. Adriaensen, "Using a DLL to filter time", 2005; what
 *   SuperCollider's drivers and Link's HostTimeFilter do in their ways) keeps
 *   a line t = t_ref + (n - n_ref) * period and moves it toward each reading
 *   by a second-order loop: the line's phase by b * error, its slope by
 *   c * error / frames, with b = sqrt(2) w, c = w^2, w = 2 pi B T for a
 *   loop bandwidth B and the update's interval T. A crystal's constant rate
 *   error ends as zero phase error (the slope absorbs it); jitter is averaged
 *   over ~1/B seconds.
 * - Bandwidth: 2 Hz for the first second (it finds the crystal's rate
 *   quickly), then 0.2 Hz. Locked once it has run 2 s with residuals under
 *   the outlier limit.
 * - A reading off the line by more than 1 ms (a callback held up, a clock
 *   step) moves nothing and counts; 8 such in a row, off by the same amount
 *   within 0.1 ms, restart the loop (the clock jumped). A thread held up
 *   for longer than 8 blocks catches up with readings late by less and less:
 *   that is not a step, and the line stays. Frames may jump (a missed block):
 *   the update's interval is the frames between readings, not one block.
 * - Times are int64 nanoseconds with a double remainder: a double alone
 *   cannot hold a monotonic clock's nanoseconds after a few months of uptime.
 * All functions are pure arithmetic: real-time safe.
 */
#ifndef TUTTI_HW_DLL_H
#define TUTTI_HW_DLL_H

#include "tutti/tutti.h"

typedef struct tutti_hw_dll {
    bool started, locked;
    uint64_t n_ref;     /* the frame the line is anchored at */
    tutti_time t_ref;   /* its host time, integer ns ... */
    double t_frac;      /* ... plus this fraction of a ns */
    double period;      /* ns per frame */
    double nominal;     /* 1e9 / nominal sample rate */
    double err;         /* last residual, ns */
    tutti_time since;   /* host time the loop (re)started */
    uint32_t outliers;  /* in a row, off by about the same */
    double outlier_err; /* the first of them */
    uint64_t rejected, restarts;
} tutti_hw_dll;

void tutti_hw_dll_init(tutti_hw_dll *d, double sample_rate);
/* One reading: frame n was at host time t. */
void tutti_hw_dll_update(tutti_hw_dll *d, uint64_t n, tutti_time t);
/* The fitted host time of frame n: *whole + frac ns (frac in [0, 1)). */
void tutti_hw_dll_time(const tutti_hw_dll *d, uint64_t n, tutti_time *whole,
                       double *frac);

#endif
