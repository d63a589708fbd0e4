/*
 * The stage node: a session's beat as signals at the sample.
 *
 * A node is a session member on a small board (Bela) that turns the session's
 * timeline into a click on an audio output (accented on the bar), beat and
 * bar pulses on digital and analog outputs, MIDI clock (24 ppqn, start, stop,
 * song position) for drum machines and synths, and a status LED; a
 * footswitch on a digital input taps a tempo (a proposal to the session) and,
 * held, starts or stops the transport.
 *
 * Design notes
 * ------------
 * - Two sides, two threads. The audio side (tutti_node_process) runs on the
 *   audio thread once a block; the loop side (tutti_node_poll and the
 *   readers of the node's queues) runs on the thread that owns the member,
 *   a non-real-time thread. The audio side never allocates, locks, makes a
 *   system call or wakes the loop: the loop side polls on its own timer.
 * - What crosses: the loop side publishes a snapshot (the member's clock
 *   estimate, the timeline in force and the agreed changes ahead, the state
 *   for the LED) through a triple buffer, which the audio side reads
 *   wait-free. The audio side hands back footswitch edges and MIDI bytes
 *   through fixed-size single-producer/single-consumer rings; a full ring
 *   drops and counts.
 * - Time on the audio side. The block interface gives the frame counter
 *   (frames_elapsed, exact) and the host's monotonic clock read when the
 *   callback began (jittery). A delay-locked loop (dll.h) fits host time to
 *   the frame counter, so the audio crystal's error (any constant or slowly
 *   drifting rate) and the callback's jitter do not reach the output: a
 *   frame's host time comes from the fit, then session time from the
 *   member's estimate, then its beat from the timeline.
 * - Every signal is a grid of beats (1/division for pulses and the click,
 *   the quantum for bars, 1/24 for MIDI clock). Grid point k is emitted once,
 *   at the frame nearest its position (rounded), found by inverting the
 *   mapping, not by testing each frame; beats are continuous through a tempo
 *   change, so a change moves where later grid points fall, never which.
 *   A grid point whose frame was never rendered (a missed block) is counted
 *   as skipped, not emitted late.
 * - The node emits nothing until the member has joined and its clock is
 *   locked; the LED says why.
 *
 * Thread rules: create/destroy on any non-real-time thread, with no other
 * call under way. tutti_node_process: the audio thread only, real-time safe.
 * tutti_node_poll, tutti_node_midi_read, tutti_node_status: the loop thread
 * (one thread, the member's owner).
 */
#ifndef TUTTI_HW_NODE_H
#define TUTTI_HW_NODE_H

#include "tutti/tutti.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The most frames a block may have (Bela: 2 to 128). */
#define TUTTI_NODE_MAX_FRAMES 256

/*
 * One block, as the audio driver hands it over (hw/bela/render.cpp fills it
 * from a BelaContext). Buffers are non-interleaved: channel c's frame i is
 * [c * frames + i] (analog: c * analog_frames + i). Digital pins: one 16-bit
 * word a frame, bit p = pin p. NULL buffers or 0 channels: not used.
 */
typedef struct tutti_node_block {
    uint32_t frames;
    double sample_rate;
    uint64_t frames_elapsed; /* audio frames before this block */
    tutti_time host_now;     /* host monotonic clock at the callback, ns */
    float *audio_out;
    uint32_t audio_channels;
    float *analog_out;
    uint32_t analog_channels, analog_frames;
    const uint16_t *digital_in; /* frames words */
    uint16_t *digital_out;      /* frames words; the node sets its pins' bits */
} tutti_node_block;

typedef struct tutti_node_config {
    double sample_rate; /* nominal audio rate (44100) */
    /* Frames from the callback's clock reading to the moment its first frame
     * is heard (output latency), the constant that places a frame in host
     * time. Bela: 2 blocks (the PRU's buffers) plus the codec's delay. */
    double output_latency_frames;
    uint32_t division;             /* pulses and clicks per beat (1) */
    int click_channel;             /* audio channel of the click (-1: none; 0) */
    float click_gain, accent_gain; /* 0.5, 1.0 */
    int beat_pin, bar_pin;         /* digital outputs (-1: none; 0 and 1) */
    int beat_analog, bar_analog;   /* analog outputs (-1: none; 0 and 1) */
    double pulse_ms;               /* pulse length (5 ms) */
    int led_pin;                   /* digital output (-1: none; 2) */
    int foot_pin;                  /* digital input, pressed = high (-1: none; 3) */
    double hold_ms;                /* a press this long toggles the transport (1000) */
    bool midi_clock;               /* 24 ppqn, start/stop, song position (true) */
    /* Pulses and the click also while the transport is stopped (true:
     * a stage click shows the session's beat at all times). */
    bool pulses_when_stopped;
} tutti_node_config;

/* Defaults as above. */
void tutti_node_config_init(tutti_node_config *cfg);

typedef struct tutti_node tutti_node;

/* Not real-time safe (allocates). TUTTI_EINVAL for a config out of range. */
int tutti_node_create(tutti_node **out, const tutti_node_config *cfg);
void tutti_node_destroy(tutti_node *n);

/* The audio side: render one block. Real-time safe: no allocation, lock,
 * system call or wake-up; cost bounded by the block's frames. */
void tutti_node_process(tutti_node *n, const tutti_node_block *b);

/*
 * The loop side: publish what the audio side needs from the member (clock
 * estimate, timeline schedule, state), and act on the footswitch (a tap
 * tempo proposal, a transport toggle) with the member. Call every few
 * milliseconds (2 ms on Bela) from the thread that owns the member; m may be
 * NULL (no session: the LED says "no hub"). `local_now`: the member's local
 * clock now; `host_minus_local`: the block interface's host clock minus the
 * member's local clock (0 when they are one clock; see run.h for Bela).
 */
void tutti_node_poll(tutti_node *n, tutti_member *m, tutti_time local_now,
                     tutti_time host_minus_local);

/* A MIDI byte the audio side emitted, with the frame it belongs to. */
typedef struct tutti_node_midi {
    uint64_t frame; /* absolute audio frame */
    uint8_t byte;
} tutti_node_midi;

/* Take up to cap MIDI bytes, oldest first. One consumer thread at a time
 * (the loop side, or the audio thread itself as on Bela); real-time safe. */
uint32_t tutti_node_midi_read(tutti_node *n, tutti_node_midi *out, uint32_t cap);

enum tutti_node_led {
    TUTTI_NODE_NO_HUB = 0, /* not in a session: slow blink (1 Hz) */
    TUTTI_NODE_JOINING,    /* joined, clocks not settled yet (about 6 s): fast blink
                            * (4 Hz); pulses already run, within ~0.1 ms */
    TUTTI_NODE_LOCKED,     /* on the beat: steady on */
    TUTTI_NODE_LATE, /* late events or missed blocks in the last 2 s: flicker (8 Hz) */
};

typedef struct tutti_node_status {
    int led;                        /* enum tutti_node_led */
    uint64_t blocks, missed_blocks; /* blocks rendered; blocks whose frames never came */
    uint64_t pulses, bars, clicks, midi_ticks;
    uint64_t skipped; /* grid points in missed frames */
    uint64_t midi_dropped, taps_dropped;
    uint64_t taps, proposals, refused_taps; /* footswitch presses; bpm proposals sent;
                                             * presses ignored (the role may not) */
    uint64_t transport_toggles;
    double dll_period_ns; /* fitted host ns per frame */
    double dll_error_ns;  /* the fit's last residual */
    bool dll_locked;
    double last_tap_bpm; /* 0: none yet */
} tutti_node_status;

/* Counters and state. Loop side. */
void tutti_node_status_get(const tutti_node *n, tutti_node_status *st);

#ifdef __cplusplus
}
#endif
#endif
