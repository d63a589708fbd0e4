/*
 * link/ablink.h — a C view of one Ableton Link peer (Debian's ableton-link-dev,
 * Link 3.0.6), the thin C++ layer the bridge (link/bridge.c) and the tests'
 * Link peer stand on. Nothing here knows about tutti sessions.
 *
 * Design notes
 * ------------
 * - Host time is Link's own clock: on Linux CLOCK_MONOTONIC_RAW in
 *   microseconds (ableton/platforms/Config.hpp). Every time given to or read
 *   from this API is on that clock, as every Link app on the machine sees it.
 *   tutti's local clock is CLOCK_MONOTONIC; the bridge converts between the
 *   two (tutti_ablink_raw_minus_mono()).
 * - Beats: Link shares the phase within a quantum, not the magnitude of the
 *   beat (each app keeps its own count). A capture reads this peer's beat at a
 *   host time; a commit forces the beat/time mapping of the whole Link
 *   session (Link's forceBeatAtTime, the call meant for bridging an external
 *   clock) and, optionally, the start/stop state.
 * - Thread rules: every function is thread-safe in Link's sense (the app
 *   session state functions), none is real-time safe (they take Link's
 *   locks). Callers use one thread per tutti_ablink anyway.
 */
#ifndef TUTTI_ABLINK_H
#define TUTTI_ABLINK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct tutti_ablink tutti_ablink;

/* A Link peer with this initial tempo, enabled, start/stop sync on. NULL if
 * Link could not start (no memory, an exception from its network setup). */
tutti_ablink *tutti_ablink_create(double bpm);
void tutti_ablink_destroy(tutti_ablink *l);

/* Link's host clock now, microseconds (CLOCK_MONOTONIC_RAW on Linux). */
int64_t tutti_ablink_host_now(const tutti_ablink *l);

/* CLOCK_MONOTONIC_RAW - CLOCK_MONOTONIC in nanoseconds, from the tightest of
 * a few bracketed reads (the error is under half the bracket, tens of ns).
 * The two clocks differ in rate by the NTP frequency correction, so callers
 * read it again rather than keep it. */
int64_t tutti_ablink_raw_minus_mono(void);

typedef struct tutti_ablink_state {
    double bpm;          /* the Link session's tempo */
    double beat;         /* this peer's beat at the host time asked for */
    double phase;        /* the shared phase within the quantum there */
    bool playing;        /* start/stop state */
    int64_t play_at;     /* host time (us) of the last start/stop */
    uint32_t peers;      /* other Link peers in this peer's Link session */
} tutti_ablink_state;

/* The Link session state at host time `host_us`, for `quantum` beats. */
void tutti_ablink_capture(tutti_ablink *l, int64_t host_us, double quantum,
                          tutti_ablink_state *out);

/* Make the Link session's timeline have tempo `bpm` and beat `beat` at host
 * time `host_us` (phase within `quantum` follows). With set_playing, also
 * the start/stop state `playing` from host time `play_at_us`. */
void tutti_ablink_commit(tutti_ablink *l, double bpm, double beat, int64_t host_us,
                         double quantum, bool set_playing, bool playing,
                         int64_t play_at_us);

/* Local changes for a test app: tempo from now (Link's setTempo), and
 * start/stop now. */
void tutti_ablink_set_tempo(tutti_ablink *l, double bpm);
void tutti_ablink_set_playing(tutti_ablink *l, bool playing);

#ifdef __cplusplus
}
#endif
#endif
