/*
 * link/bridge.h — the Ableton Link bridge: one member of a tutti session that
 * is also a Link peer on its LAN and keeps that LAN's Link session on the
 * session's timeline (docs/link.md).
 *
 * Design notes
 * ------------
 * - Time. Link's host clock is CLOCK_MONOTONIC_RAW (us); tutti's local clock
 *   is CLOCK_MONOTONIC (ns); the member's clock estimate maps local time to
 *   session time with a stated error bound (tutti_clock_estimate.bound_ns).
 *   The bridge converts host -> local with RAW - MONO read fresh at every
 *   step (bracketed reads, tens of ns; the two clocks differ in rate by the
 *   NTP correction, so a kept offset would age), then local -> session with
 *   the estimate. So a Link app's beat is the session's beat up to the
 *   member's clock error (carried in the status as clock_bound) plus Link's
 *   own LAN measurement error (tens of us). The estimate is used as it is:
 *   a 10 s low-pass of it (drift carried) was tried on 200 ms +/- 20 ms
 *   paths and gave 0.85-1.55 ms p99 between two cities against 0.80-1.89 ms
 *   without, within the runs' spread, so it did not earn its place.
 * - Holding the Link session. The bridge forces the Link timeline (Link's
 *   forceBeatAtTime, meant for bridging an external clock) to the session's:
 *   tempo, beat at host time, phase within the session's quantum, start/stop.
 *   Link resolves concurrent timelines by their beat origin and a commit
 *   always gets one above the session's current, so the last change wins:
 *   when a local app changes the timeline, the bridge's next commit (within a
 *   step, ~2 ms) wins it back. Re-asserting is rate-limited when the error
 *   is small (clock corrections: at most every 100 ms, and only past 50 us),
 *   immediate when it is large or the tempo or start/stop differs.
 * - Local changes. A tempo or start/stop change made by a local Link app is a
 *   proposal to the session (if the bridge's role may make one): the hub puts
 *   it on a future bar line, and every city's Link session switches there.
 *   Until then the app sees the session's timeline again at once (Link has
 *   no refusal; an app that shows its request snapping back and then arriving
 *   on the bar line tells its user the truth). A change is only taken as a
 *   local one once the Link session had settled on what the bridge committed.
 * - Session changes reach Link when they take effect (the step wakes at the
 *   switch's host time), not when they arrive: Link has no scheduled changes.
 *   Link sends a peer's state at most every 50 ms, so 70 ms before a switch
 *   the bridge re-asserts the timeline (a few microseconds' correction) and
 *   the switch then leaves at once instead of up to 50 ms late.
 * - Several bridges on one LAN. Every active or standing-by bridge sends a
 *   beacon (UDP multicast 239.255.84.84:7771 on every IPv4 interface, every
 *   200 ms) with its member id and a random tie-break; the one with the
 *   lowest (id, tie-break) heard in the last second is active, the others
 *   stand by (still Link peers, they only watch and report). Lowest id is
 *   the member that joined first, so the choice is the same in every bridge.
 * - Threads: a bridge is driven by one thread (tutti_bridge_step); it talks to
 *   the member through tutti_net's thread-safe calls. Not real-time safe.
 */
#ifndef TUTTI_LINK_BRIDGE_H
#define TUTTI_LINK_BRIDGE_H

#include "tutti/net.h"

#include <stdio.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct tutti_bridge tutti_bridge;

typedef struct tutti_bridge_config {
    /* Propose local Link apps' changes to the session (the role must allow
     * it: conductor or admin). Default true. */
    bool propose;
    /* Re-assert when the Link phase is off by more than this (default
     * 50 us), at most every `reassert_every` (100 ms: Link sends a peer's
     * state at most every 50 ms) while it is under `reassert_now` (1 ms). */
    tutti_time reassert_over, reassert_every, reassert_now;
    /* Take part in choosing one bridge per LAN (default true). */
    bool beacon;
    /* If set, one line per step while joined (not owned; docs/link.md,
     * "Open ends"): Link's host time (us), the clock offset used minus
     * tutti_net_session_epoch() (ns), the Link phase error before any
     * correction (ms), 1 if the step committed, the clock's error bound
     * (ns), the Link peers, the Link session's tempo before any correction
     * (bpm). */
    FILE *trace;
} tutti_bridge_config;

void tutti_bridge_config_init(tutti_bridge_config *cfg);

/* A bridge for the member node `member` (a tutti_net started with
 * tutti_net_member_start; not owned). TUTTI_ENOMEM, TUTTI_ETRANSPORT (Link
 * could not start). */
int tutti_bridge_create(tutti_bridge **out, tutti_net *member,
                        const tutti_bridge_config *cfg);
void tutti_bridge_destroy(tutti_bridge *b);

/* Do one step: read the session and Link, commit or propose. Returns the
 * local time (CLOCK_MONOTONIC ns) of the next step. */
tutti_time tutti_bridge_step(tutti_bridge *b);

typedef struct tutti_bridge_status {
    bool joined;          /* the member is in the session, its clock locked */
    bool active;          /* driving the Link session (else standing by) */
    uint32_t bridges;     /* bridges heard on this LAN, this one included */
    uint32_t link_peers;  /* other Link peers in the Link session */
    double bpm;           /* the session's tempo now */
    double link_bpm;      /* the Link session's */
    bool playing, link_playing;
    double phase_error_ms; /* Link - session at the last step, before a commit */
    double max_error_ms;  /* largest |phase_error_ms| since the last lock */
    tutti_time clock_bound; /* the member's clock error bound */
    tutti_time offset;      /* session - local (CLOCK_MONOTONIC) as used */
    tutti_time next_change; /* session time of the next agreed change (0: none) */
    int64_t step_host_us;   /* Link's host time of the last step (its figures') */
    /* Locked, as a musician reads it: active, the session's timeline
     * committed, and the member's clock locked for TUTTI_CLOCK_SETTLE (6 s)
     * this join (its first seconds over a long path are its least accurate;
     * the stage node's LED has the same rule). locked_host_us: Link's host
     * time it last became so (0: never). */
    bool locked;
    int64_t locked_host_us;
    uint64_t commits, reasserts, switches, local_changes, proposals;
} tutti_bridge_status;

void tutti_bridge_status_get(const tutti_bridge *b, tutti_bridge_status *st);

#ifdef __cplusplus
}
#endif
#endif
