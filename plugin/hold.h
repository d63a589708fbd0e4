/*
 * Holding timed bundles back until shortly before their time.
 *
 * Design notes
 * ------------
 * - On JACK's clock (TUTTI_UGEN_CLOCK=jack) each session bundle is re-timed
 *   for the server's own clock by the difference D between scsynth's JACK
 *   driver's clock and JACK's (beat.h, tutti__beat_retime). D is only known
 *   up to the newest anchor, and a JACK xrun moves it by up to milliseconds
 *   at once: scsynth resets its DLL in its xrun callback, JACK's own DLL
 *   keeps its old phase and catches up over 1-3 s. A bundle handed to the
 *   server L (the session's latency, hundreds of ms) before its time carries
 *   the D of before an xrun that happens in between, and plays off its beat
 *   by all of that jump. So these bundles are held here and handed over only
 *   `lead` before their time (the caller's choice, a few JACK periods), each
 *   re-timed as it goes: D is then predicted over tens of ms, not L.
 * - Order: by the bundle's time, ties in the order they came, so what the
 *   server gets keeps the session's order. A bundle is released at its own
 *   release time or with one after it in that order, never before one
 *   before it.
 * - Bounded: at most `max_bytes` held; a push that would go over is refused
 *   (TUTTI_EFULL) and the caller hands the bundle over at once, as without
 *   the hold. Memory is allocated per bundle on the pushing thread (never
 *   the audio thread) and freed by the releasing one.
 * - One thread of its own releases (pthread_cond_timedwait on
 *   CLOCK_REALTIME; times are wall clock, ns since 1900, as tutti_time).
 *   Destroying releases everything still held at once, in order, then joins.
 *
 * Thread rules: push from any non-real-time thread; the release function
 * runs on the hold's thread (or the destroying one), one bundle at a time.
 * Nothing here is real-time safe (none of it runs on the audio thread).
 */
#ifndef TUTTI_PLUGIN_HOLD_H
#define TUTTI_PLUGIN_HOLD_H

#include "tutti/tutti.h"

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Hands one bundle `p` (`len` bytes, as pushed) meant for wall time `at` to
 * the server; `ctx`: the push's. */
typedef void (*tutti__hold_release_fn)(void *arg, const uint8_t *p, size_t len,
                                       tutti_time at, uint64_t ctx);

typedef struct tutti__hold tutti__hold;

/* 0, or TUTTI_ENOMEM (no memory or no thread). */
int tutti__hold_create(tutti__hold **out, tutti__hold_release_fn fn, void *arg,
                       size_t max_bytes);

/* Holds a copy of `p` for time `at`, to be released at `release_at` (wall
 * clock, ns since 1900; at once when that has passed). 0, TUTTI_EFULL (over
 * max_bytes) or TUTTI_ENOMEM: then nothing is held. */
int tutti__hold_push(tutti__hold *h, const uint8_t *p, size_t len, tutti_time at,
                     tutti_time release_at, uint64_t ctx);

/* Bundles held now (tests, status). */
size_t tutti__hold_count(tutti__hold *h);

/* Releases everything held at once, in order, stops the thread, frees. */
void tutti__hold_destroy(tutti__hold *h);

#ifdef __cplusplus
}
#endif

#endif
