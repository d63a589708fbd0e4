/*
 * The guard: each server protects its own speakers from every part (issue
 * 22, item 6). A part's output is its contribution to the server's
 * hardware output buses; the guard passes it through a safety limiter (a
 * session setting: the same on every server, so all servers still render
 * the same music) and then this server's monitoring gain for the part (a
 * local choice: mute, or turn a part down, here only).
 *
 * Design notes
 * ------------
 * - Where a part's output is. A part writes the hardware buses like any
 *   client (Out.ar(0, ...) with the bus a constant inside its synthdef, an
 *   `out` control, OffsetOut, XOut ...), so no rewriting of bus numbers can
 *   catch every writer. What is certain is where its nodes run: all of them
 *   inside the part's group, which no part can move or leave (namespaces.md).
 *   So two guard nodes stand around each part's group at the root level: the
 *   one before keeps a copy of the hardware outputs as they are when the
 *   part starts (per block), the one after takes the difference, which is
 *   exactly what the part's nodes added (or replaced), limits it, applies
 *   the monitoring gain, and writes "before + guarded difference" back. This
 *   is a channel strip's insert: the other parts' sound passes untouched
 *   (bit for bit where a part added nothing: its difference is 0).
 * - The limiter: peak, zero latency, instant attack, 100 ms exponential
 *   release, the gain linked across the part's channels (the stereo image
 *   does not move). Zero latency keeps every part on the session's time;
 *   instant attack means the ceiling is never exceeded, by construction,
 *   at the cost of some distortion on the first transient of a part that
 *   hits it, which is what a protection limiter is for: an honest part
 *   stays below the ceiling and is not touched at all (gain exactly 1). A
 *   sample that is not a finite number (a part's NaN or inf would poison
 *   every part on the bus after it) is replaced by silence, and counted.
 * - The ceiling is the limiter's only parameter: linear amplitude, default
 *   0.5 (-6 dBFS), so two parts at their ceilings reach full scale and one
 *   part, however loud, leaves headroom for the others. It is the guard
 *   nodes' control, identical on every server; 0 or less turns it off.
 * - The monitoring gain is per slot, 0 (mute) to 1, set from any thread
 *   (an atomic word), read once a block by the audio thread, and ramped
 *   linearly over the block so a change makes no click. It comes after the
 *   limiter, so it never changes what the limiter does: only how loud this
 *   server plays the result. It is neither an event nor a node, so it is in
 *   no journal and in no node tree, and the server check (check.h, which
 *   compares node trees and failures) never sees it; the guard nodes
 *   themselves sit outside every part's group, where the check skips them.
 * - Real-time: tutti__guard_run allocates nothing, takes no lock and makes
 *   no system call; its state is the caller's.
 */
#ifndef TUTTI_PLUGIN_GUARD_H
#define TUTTI_PLUGIN_GUARD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define TUTTI_GUARD_SLOTS 32
#define TUTTI_GUARD_CEILING 0.5f /* -6 dBFS */
#define TUTTI_GUARD_RELEASE 0.1  /* seconds, to 1/e */
/* The guard nodes' ids: at the top of the server's own space (slot 0),
 * clear of the ids clients pick (sclang and Sonic Pi count up from 1000;
 * the recorders in examples/ use 67 000 000 and lower). */
#define TUTTI_GUARD_NODE(slot, after) ((int32_t)((1 << 26) - 128 + 2 * (slot) + (after)))
#define TUTTI_GUARD_DEF "tutti_guard"

/* One part's limiter state (the node after the part holds it). */
typedef struct tutti__guard {
    float env;       /* the limiter's gain now, 0..1 */
    float rel;       /* release coefficient per sample */
    float gain_last; /* the monitoring gain at the end of the last block */
} tutti__guard;

void tutti__guard_init(tutti__guard *g, double sample_rate);

/*
 * One block of one part: out[ch] holds the hardware buses after the part ran
 * and before[ch] what they held before it (for a channel the part did not
 * touch, pass touched[ch] false: it is left alone). Writes before + the
 * guarded difference into out. ceiling <= 0: no limiting. Returns the
 * number of samples the limiter reduced (for the counters); *bad gets the
 * samples replaced because they were not finite. Audio thread: real-time
 * safe.
 */
uint32_t tutti__guard_run(tutti__guard *g, float *const *out, const float *const *before,
                          const bool *touched, uint32_t nch, uint32_t n, float ceiling,
                          float gain, uint32_t *bad);

/* This server's monitoring gain for a slot, 0..1 (clamped; NaN is 1). Any
 * thread; real-time safe. */
void tutti__guard_set_gain(uint32_t slot, float gain);
float tutti__guard_gain(uint32_t slot);

/* Counters per slot, kept by the audio thread (relaxed atomics): blocks in
 * which the limiter acted, samples not finite replaced. */
void tutti__guard_count(uint32_t slot, uint32_t limited, uint32_t bad);
void tutti__guard_counters(uint32_t slot, uint64_t *limited_blocks,
                           uint64_t *bad_samples);

/* The synthdef of the guard nodes (SCgf version 2: one def, TUTTI_GUARD_DEF,
 * controls slot, stage (0 before the part, 1 after) and ceiling, and one
 * TuttiGuard UGen reading them), as a /d_recv message. Returns its length,
 * or 0 when `cap` is too small. */
size_t tutti__guard_def_recv(uint8_t *out, size_t cap);

#ifdef __cplusplus
}
#endif

#endif
