/*
 * The clock filter: a member's estimate of the offset and drift of its local
 * monotonic clock against session time, from ping/pong exchanges with the
 * coordinator. Sans-IO: the caller feeds samples and reads the estimate.
 *
 * A sample is the four timestamps of one exchange: t1 (local, ping sent),
 * t2 (session, ping received), t3 (session, pong sent), t4 (local, pong
 * received). With theta = session - local, causality alone gives
 *     t3 - t4 <= theta <= t2 - t1
 * (the upper bound from the forward path, the lower from the return path). The
 * filter keeps a sliding window of these constraints and finds every line
 * (offset, drift) consistent with all of them; the error bound covers that
 * whole set, so it is honest by construction. The fastest exchange of each
 * direction counts separately, which converges much faster than NTP's
 * minimum-round-trip sample (that needs one exchange where *both* directions
 * were fast). The estimate combines the intersection's middle with the mean of
 * the midpoints, whichever the data shows is sharper (clock.c has the details;
 * docs/design.md, "clock filter", the reasoning).
 *
 * Thread rules: one thread at a time; no allocation after init; real-time safe
 * except tutti__clock_init.
 */
#ifndef TUTTI_CLOCK_H
#define TUTTI_CLOCK_H

#include "tutti/tutti.h"

/* a - b, saturated instead of overflowing (times from the network can be
 * anything; only absurd ones get there). */
static inline tutti_time tutti__sat_sub(tutti_time a, tutti_time b)
{
    if (b > 0 && a < INT64_MIN + b) return INT64_MIN;
    if (b < 0 && a > INT64_MAX + b) return INT64_MAX;
    return a - b;
}

#define TUTTI__CLOCK_WINDOW 256 /* samples kept (power of two): 25.6 s at the steady rate */

typedef struct tutti__clock_sample {
    tutti_time mid_local; /* (t1 + t4) / 2 */
    tutti_time upper;     /* t2 - t1 */
    tutti_time lower;     /* t3 - t4 */
    /* The tightest one-way constraints noted since the exchange before
     * (tutti__clock_note): theta <= up_y at local up_x, theta >= lo_y at
     * local lo_x; x = INT64_MIN: none. */
    tutti_time up_x, up_y, lo_x, lo_y;
} tutti__clock_sample;

typedef struct tutti__clock {
    tutti__clock_sample ring[TUTTI__CLOCK_WINDOW];
    uint32_t head, count;
    tutti_time window_ns;  /* samples older than this are ignored */
    tutti_clock_estimate est;
    /* private fields of the implementation follow */
    uint64_t total;
    tutti_time first_local;
    tutti__clock_sample pending; /* one-way constraints for the next sample */
} tutti__clock;

void tutti__clock_init(tutti__clock *c);
/* Add one exchange. Samples with t4 < t1 or t3 < t2 are rejected (TUTTI_EINVAL).
 * Updates c->est. */
int tutti__clock_add(tutti__clock *c, tutti_time t1, tutti_time t2, tutti_time t3,
                     tutti_time t4);
/* A one-way constraint from a frame that carried its sender's clock:
 * `upper` for one the member sent at local time `local` and the hub received
 * at session time `session` (theta <= session - local at `local`), else one
 * the hub sent at `session` and the member received at `local` (theta >=
 * session - local). The tightest of each kind since the last exchange
 * travels with the next tutti__clock_add's sample and binds like the
 * sample's own (clock.c, "One-way constraints"). Negative times are
 * ignored. */
void tutti__clock_note(tutti__clock *c, tutti_time local, tutti_time session, bool upper);
/* How long to wait before the next ping: fast until locked, then steady
 * (clock.c, "Ping rate"). The member keeps its other statistics per ping
 * (its round trips and needs for the automatic horizon) at this interval
 * too, so their windows span the same time. */
tutti_time tutti__clock_ping_interval(const tutti__clock *c);

#endif
