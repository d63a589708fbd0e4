/*
 * The session's beat inside scsynth: what the UGens (TuttiBeat, TuttiPhase,
 * TuttiTempo, TuttiTrig) compute on the audio thread, and how the server's
 * blocks are tied to session time.
 *
 * Design notes
 * ------------
 * - scsynth 3.13 tells a UGen which block it computes (World::mBufCounter)
 *   but not when that block plays. What does know is a scheduled command: a
 *   /cmd inside a timetagged bundle runs on the audio thread in the block its
 *   time falls in, with World::mSampleOffset and mSubsampleOffset set so that
 *   offset + subsample - 0.5 is how many samples after the block's start its
 *   time is (SC_Jack.cpp: diffTime = (T - oscTime) * SR + 0.5). So the plugin
 *   sends itself `/cmd tutti_anchor T` bundles (tutti__beat_anchor_packet),
 *   every TUTTI__BEAT_ANCHOR_EVERY, each TUTTI__BEAT_ANCHOR_AHEAD ahead; the
 *   handler reads the block's start time back, exactly the time scsynth uses
 *   to place every timetagged bundle in that block, and hands the pair
 *   (block, time) to the non-real-time side (a fixed ring, dropped when full).
 * - Between anchors the block times are a straight line: the last anchor and
 *   the slope of the last TUTTI__BEAT_WINDOW anchors (least squares; the
 *   driver's clock drifts against the nominal rate, and the JACK driver's
 *   block times are DLL-filtered wall-clock times). The audio thread uses
 *   each anchor from its own block on, before the loop has seen it: when
 *   the server's block times jump (an xrun resets JACK's DLL), the UGens
 *   follow at the next anchor, TUTTI__BEAT_ANCHOR_EVERY later at most.
 *   Before each anchor is taken in, the line's prediction for it is compared with it:
 * that error is what the UGens are off by just before a re-anchoring, kept as statistics
 *   (the status shows them; docs/benchmarks.md has the figures). An anchor
 *   more than TUTTI__BEAT_JUMP off (an xrun, a driver restart) starts the line
 *   afresh.
 * - Servers that share one JACK server share its frames, but not their
 *   block times: each scsynth's JACK driver keeps its own DLL, fed with the
 *   time its own process callback starts and reset at every xrun, so three
 *   servers put the same frame at times a few samples apart, and up to a
 *   period apart for seconds after an xrun (docs/benchmarks.md). With
 *   TUTTI_UGEN_CLOCK=jack the anchors come from JACK's engine clock instead
 *   (tutti__beat_anchor_jack_rt): the servers' UGens agree with each other,
 *   and leave the server's own scheduling of bundles by its DLL's error and
 *   its output latency; so each anchor also reads the server's own start of
 *   its block, and the session's bundles are re-timed by the difference
 *   (tutti__beat_retime, below) before the server gets them.
 * - The model the audio thread reads (the line, the session's offset from
 *   the wall clock as the member estimates it, and the timeline schedule)
 *   is published through a triple buffer: the writer fills a private copy and
 *   swaps it in with one atomic exchange; the reader takes the newest with one
 *   atomic exchange when there is a newer one. Neither side ever waits.
 * - The UGens follow the member's estimate of session time, refreshed every
 *   100 ms, as the plugin does when it hands events to the server; the feed
 *   tells clients the same mapping again whenever it moves by half a sample
 *   (feed.h), so a note a client schedules on the feed's timeline and the
 *   UGens' grid stay within a sample of each other.
 * - Precision: block times are int64 ns plus a double of at most a few
 *   minutes of ns; every difference from a timeline's t0 is formed in
 *   integers first (as timeline.c does).
 *
 * Thread rules: *_rt functions on the audio thread only (one consumer:
 * scsynth has one audio thread); tutti__beat_retime and tutti__beat_stats_get on
 * any other thread; the others on the proxy's loop thread. Every
 * *_rt function is real-time safe: no allocation, lock or system call
 * (tests/plugin/beat_rt_test.cpp runs them under seccomp's strict mode).
 */
#ifndef TUTTI_PLUGIN_BEAT_H
#define TUTTI_PLUGIN_BEAT_H

#include "tutti/tutti.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define TUTTI__BEAT_TIMELINES 8
#define TUTTI__BEAT_WINDOW 128
#define TUTTI__BEAT_ANCHOR_EVERY (5 * TUTTI_MS)
#define TUTTI__BEAT_ANCHOR_AHEAD (150 * TUTTI_MS)
#define TUTTI__BEAT_JUMP TUTTI_MS
#define TUTTI__BEAT_RETIME_MAX (25 * TUTTI_MS)
#define TUTTI__BEAT_RETIME_JUMP (TUTTI_MS / 10)
#define TUTTI__BEAT_HOLD_MIN (20 * TUTTI_MS)
#define TUTTI__BEAT_RETIME_STALE (500 * TUTTI_MS)
#define TUTTI__BEAT_RETIME_AHEAD TUTTI_S

/* What the audio thread reads: the block line and the timeline. */
typedef struct tutti__beat_model {
    bool valid;        /* an anchor has been taken in */
    int64_t b0;        /* a block number (World::mBufCounter, 32 bits unwrapped) */
    int64_t s0;        /* session time at its first sample, ns since 1900 */
    int64_t offset_ns; /* session time - wall clock, ns */
    double block_ns;   /* ns from one block's start to the next */
    double sample_ns;  /* block_ns / samples per block */
    double nominal_ns; /* ns per block at the nominal rate */
    uint32_t ntl;      /* the timeline in force, then the changes ahead */
    tutti_timeline tl[TUTTI__BEAT_TIMELINES];
} tutti__beat_model;

/* ----------------------------------------------------- the audio thread */

/* The anchor command's handler: `bufcounter` is World::mBufCounter, `t` the
 * command's time (ns since 1900, wall clock), `offset`/`subsample` the
 * World's, `sr` the sample rate, `buflen` the samples per block. */
void tutti__beat_anchor_rt(uint32_t bufcounter, int64_t t, int offset, float subsample,
                           double sr, int buflen);

/* The same when the blocks are tied to JACK's engine clock instead
 * (TUTTI_UGEN_CLOCK=jack; docs/plugin.md): `cycle_us` and `next_us` are the
 * current JACK cycle's start and the next one's as jack_get_cycle_times
 * gives them (the engine's DLL, CLOCK_MONOTONIC microseconds, the same for
 * every client of one JACK server; its monotonic clock, tutti__beat_jack_clock),
 * and `bufcounter` a block of that cycle:
 * the block's start is the cycle's plus its place in the cycle. Nothing is
 * taken before the loop has measured the monotonic clock against the wall
 * clock (tutti__beat_update). `t`, `offset`, `subsample`: the command's own
 * time and the World's offsets, as for tutti__beat_anchor_rt: the same
 * block's start by the server's clock, for tutti__beat_retime. */
void tutti__beat_anchor_jack_rt(uint32_t bufcounter, uint64_t cycle_us, uint64_t next_us,
                                int64_t t, int offset, float subsample, double sr,
                                int buflen);

/* How to read the current JACK cycle's start and the next one's on the
 * audio thread (jack_get_cycle_times, a read of JACK2's shared memory; 0 when
 * read). Set once, before the server runs the UGens, when they follow
 * JACK's clock: then every block's start is JACK's, as an anchor reads it
 * (the cycle's plus the block's place in it), rather than the line's from
 * the newest anchor; between anchors the line runs at its rate over the
 * last TUTTI__BEAT_WINDOW anchors, and after a JACK xrun the engine's DLL
 * runs thousands of ppm off that for seconds (a sample in 5 ms). */
typedef int (*tutti__beat_cycles_fn)(uint64_t *cycle_us, uint64_t *next_us);
void tutti__beat_jack_cycles(tutti__beat_cycles_fn fn);

/* How to read JACK's clock (jack_get_time), so that the loop can tell which
 * of the system's monotonic clocks it is; without it, CLOCK_MONOTONIC. */
void tutti__beat_jack_clock(uint64_t (*now_us)(void));

/* The newest model (never NULL; valid == false until the first anchor). The
 * pointer stays good until the next call. */
const tutti__beat_model *tutti__beat_read_rt(void);

/* The block `bufcounter` (32 bits, wraps) as a 64-bit block number near the
 * model's b0. */
int64_t tutti__beat_block_rt(const tutti__beat_model *m, uint32_t bufcounter);

/*
 * One block of the UGens' outputs, for `n` samples from the start of block
 * `bufcounter` (n = 1: the control-rate value, at the block's first sample).
 * Each output may be NULL. beat: the beat; phase: the beat modulo `quantum`
 * (the timeline's own when quantum <= 0), in [0, quantum); tempo: beats per
 * second; trig: 1 at the sample nearest each multiple of 1/division beats
 * (kr: when one falls in the block), else 0, once per multiple: `st` (the
 * unit's, g = NAN at first) carries the last one across blocks, so a jump
 * of the block times skips no trigger and repeats none. All 0 while the
 * model is not valid.
 */
typedef struct tutti__beat_trig {
    double g, div; /* the grid index last passed (NAN: none), at this division */
} tutti__beat_trig;
void tutti__beat_fill_rt(const tutti__beat_model *m, uint32_t bufcounter, int n,
                         int samples_per_block, double quantum, double division,
                         float *beat, float *phase, float *tempo, float *trig,
                         tutti__beat_trig *st);

/* ------------------------------------------------ the non-real-time side */

/* The anchor bundle for wall time `at` (ns since 1900): its length (0 when
 * cap is too small). */
size_t tutti__beat_anchor_packet(uint8_t *out, size_t cap, int64_t at);

/* Takes in the anchors the audio thread has handed over and publishes the
 * model with this offset (session - wall clock, ns) and timeline schedule. */
void tutti__beat_update(int64_t offset_ns, const tutti_timeline *tl, uint32_t ntl);

/*
 * Re-timing bundles for the server's clock (TUTTI_UGEN_CLOCK=jack). The
 * server places a bundle timed T where its own clock (scsynth's JACK
 * driver's DLL) says T; the UGens then follow JACK's clock instead. Each
 * anchor gives both clocks' start of one block, so a line of their
 * difference D per block is kept (fitted over the last 8 anchors, 40 ms; a
 * jump of more than TUTTI__BEAT_RETIME_JUMP confirmed by the next anchor
 * starts it afresh, and a line of 2 anchors is used). A bundle meant for
 * wall time `at` on JACK's clock is handed to the server timed at + D(at):
 * the server's clock puts it on the sample JACK's clock gives `at`, the
 * sample the UGens give it.
 *
 * Across a JACK xrun (SuperCollider 3.13 SC_Jack.cpp, JACK2
 * JackFrameTimer.cpp): scsynth's xrun callback resets its DLL (bandwidth
 * 0.012 Hz) to the time the callback runs, so the server's clock jumps by
 * up to a period and more; JACK's engine DLL (bandwidth 1/8 Hz) is only
 * told the late cycle's time, keeps its phase, lags the cycles by the
 * xrun's lateness and catches up over 1-3 s (thousands of ppm). So D jumps
 * at an xrun and then moves fast for seconds. A bundle handed over before
 * the jump with the D of before plays off by all of it: the session's
 * bundles are held back (hold.h) until tutti__beat_hold_lead() before their
 * time and re-timed then, from a line whose newest anchor is at most a few
 * ms old. The anchors the audio thread has handed over are taken in first.
 * The correction is 0 when there is no line (not on JACK's clock, fewer
 * than 2 anchors since a jump) or its newest anchor is more than
 * TUTTI__BEAT_RETIME_STALE from `now`; the line is followed at most
 * TUTTI__BEAT_RETIME_AHEAD past that anchor, and the correction is clamped
 * to +-TUTTI__BEAT_RETIME_MAX.
 */
typedef struct tutti__beat_retime_line {
    bool valid;
    int64_t t;          /* the newest anchor's time (the line's clock), ns since 1900 */
    double block_ns;    /* the line's ns per block */
    double d;           /* the difference at that anchor, ns */
    double d_per_block; /* its change per block, ns */
} tutti__beat_retime_line;

/* The correction to add to a bundle's wall time `at` (ns since 1900), now
 * being `now`. Any non-real-time thread (it takes a mutex the loop's
 * tutti__beat_update and tutti__beat_stats_get take too, never the audio
 * thread). */
int64_t tutti__beat_retime(int64_t at, int64_t now);

/* How long before its time `at` (now being `now`) a session bundle is
 * handed to the server when it is re-timed: TUTTI__BEAT_HOLD_MIN (room for
 * the correction to move 10 ms earlier meanwhile, and for the hold's thread
 * to wake late on a loaded machine), two JACK periods (the server takes a
 * bundle in at the start of a period, and a cycle may run late), and the
 * correction now when it moves the bundle earlier; 0 when nothing is
 * re-timed (the server's own clock): then bundles go as soon as they come.
 * Any non-real-time thread (it takes the mutex tutti__beat_retime takes). */
int64_t tutti__beat_hold_lead(int64_t at, int64_t now);

/* The same from a given line (tests). */
int64_t tutti__beat_retime_by(const tutti__beat_retime_line *rl, int64_t at, int64_t now);

typedef struct tutti__beat_stats {
    uint64_t anchors, dropped, restarts;
    /* the line's error at each anchor before taking it in: the last one,
     * the largest, the root mean square, over every anchor after one that
     * followed the line (not the first two of a line: it needs two) */
    double err_last_us, err_max_us, err_rms_us;
    double ppm; /* the block clock's rate against the nominal, parts per million */
    uint64_t measured;
    /* tutti__beat_retime: bundles moved, of those clamped, the last
     * correction (us), the difference line's restarts */
    uint64_t retimed, retime_clamped, retime_restarts;
    double retime_last_us;
} tutti__beat_stats;
void tutti__beat_stats_get(tutti__beat_stats *st);

/* Forget everything (tests). */
void tutti__beat_reset(void);

#ifdef __cplusplus
}
#endif

#endif
