/*
 * The stage node on Bela: a thin adapter from BelaContext to the node's own
 * block interface (hw/node.h). Built on the board (docs/bela.md); it is the
 * only file that includes Bela's headers.
 *
 * What it does, exactly:
 * - setup(): reads the session settings from the environment (TUTTI_HUB,
 *   TUTTI_SESSION, TUTTI_NAME, TUTTI_ROLE, TUTTI_LATENCY_FRAMES,
 *   TUTTI_MIDI_PORT), creates the node, sets the node's pins' directions,
 *   and starts the loop side (hw/run.c: the session member's network thread
 *   and a poll thread, both non-real-time) and Bela's Midi output on the
 *   ALSA port TUTTI_MIDI_PORT names ("hw:1,0,0", the first USB interface, by
 *   default; "none": no MIDI).
 * - render(), on Bela's audio thread: reads Xenomai's CLOCK_HOST_REALTIME
 *   (served from shared memory, no system call), copies the footswitch pin's
 *   frames in, calls tutti_node_process on the node's own buffers, copies the
 *   click, the pulses and the LED out with Bela's audioWrite, analogWriteOnce
 *   and digitalWriteOnce, and passes the block's MIDI bytes to
 *   Midi::writeOutput in one call (which queues them for Bela's own
 *   non-real-time task). Nothing else: no allocation, no lock, no Linux call.
 * - cleanup(): stops the loop side (leaving the session) and frees the node.
 *
 * Off the board, tests/hw/render_test.cpp compiles this file against
 * declarations of the Bela API it uses (tests/hw/bela/) and drives it.
 */
#include <Bela.h>
#include <libraries/Midi/Midi.h>

#include <initializer_list>
#include <stdlib.h>
#include <string.h>
#include <time.h>

extern "C" {
#include "hw/node.h"
#include "hw/run.h"
}

static tutti_node *gNode;
static tutti_node_runner *gRunner;
static Midi gMidi;
static bool gMidiOpen;
static float gAudio[2 * TUTTI_NODE_MAX_FRAMES];
static float gAnalog[8 * TUTTI_NODE_MAX_FRAMES];
static uint16_t gDigitalIn[TUTTI_NODE_MAX_FRAMES], gDigitalOut[TUTTI_NODE_MAX_FRAMES];
static tutti_node_config gCfg;

static tutti_time read_clock(clockid_t id)
{
    struct timespec ts;
    clock_gettime(id, &ts);
    return (tutti_time)ts.tv_sec * TUTTI_S + ts.tv_nsec;
}

/* The audio thread's clock minus the member's (run.h). */
static tutti_time host_minus_local(void)
{
    return read_clock(CLOCK_HOST_REALTIME) - read_clock(CLOCK_MONOTONIC);
}

static const char *env(const char *name, const char *dflt)
{
    const char *v = getenv(name);
    return v && *v ? v : dflt;
}

bool setup(BelaContext *context, void *)
{
    tutti_node_config_init(&gCfg);
    gCfg.sample_rate = context->audioSampleRate;
    /* Two blocks of PRU buffering plus the codec's group delay (about 17
     * frames at 44.1 kHz); override with TUTTI_LATENCY_FRAMES after measuring
     * a loopback (docs/bela.md). */
    gCfg.output_latency_frames = atof(env("TUTTI_LATENCY_FRAMES", "0"));
    if (gCfg.output_latency_frames <= 0)
        gCfg.output_latency_frames = 2.0 * context->audioFrames + 17;
    if (context->audioFrames > TUTTI_NODE_MAX_FRAMES ||
        tutti_node_create(&gNode, &gCfg) != 0)
        return false;
    for (int pin : {gCfg.beat_pin, gCfg.bar_pin, gCfg.led_pin})
        if (pin >= 0) pinMode(context, 0, pin, OUTPUT);
    if (gCfg.foot_pin >= 0) pinMode(context, 0, gCfg.foot_pin, INPUT);

    static tutti_member_config mc;
    tutti_member_config_init(&mc);
    mc.session = env("TUTTI_SESSION", "default");
    mc.name = env("TUTTI_NAME", "bela");
    const char *role = env("TUTTI_ROLE", "performer");
    mc.role = !strcmp(role, "conductor")  ? TUTTI_ROLE_CONDUCTOR
              : !strcmp(role, "admin")    ? TUTTI_ROLE_ADMIN
              : !strcmp(role, "listener") ? TUTTI_ROLE_LISTENER
                                          : TUTTI_ROLE_PERFORMER;
    tutti_node_run_config rc = {};
    rc.member = &mc;
    rc.hub_url = env("TUTTI_HUB", "tcp://127.0.0.1:7770");
    rc.host_minus_local = host_minus_local;
    if (tutti_node_run_start(&gRunner, gNode, &rc) != 0) return false;
    const char *port = env("TUTTI_MIDI_PORT", "hw:1,0,0");
    if (strcmp(port, "none") != 0) gMidiOpen = gMidi.writeTo(port) == 1;
    return true;
}

void render(BelaContext *context, void *)
{
    uint32_t frames = context->audioFrames;
    for (uint32_t i = 0; i < frames; i++)
        gDigitalIn[i] =
            gCfg.foot_pin >= 0 && i < context->digitalFrames
                ? (uint16_t)(digitalRead(context, i, gCfg.foot_pin) << gCfg.foot_pin)
                : 0;
    memset(gAudio, 0, sizeof(float) * frames);
    memset(gDigitalOut, 0, sizeof(uint16_t) * frames);
    tutti_node_block b = {};
    b.frames = frames;
    b.sample_rate = context->audioSampleRate;
    b.frames_elapsed = context->audioFramesElapsed;
    b.host_now = read_clock(CLOCK_HOST_REALTIME);
    b.audio_out = gAudio;
    b.audio_channels = 1; /* the click, copied to every output below */
    b.analog_out = gAnalog;
    b.analog_channels = context->analogOutChannels < 8 ? context->analogOutChannels : 8;
    b.analog_frames = context->analogFrames;
    b.digital_in = gDigitalIn;
    b.digital_out = gDigitalOut;
    tutti_node_process(gNode, &b);

    for (uint32_t i = 0; i < frames; i++)
        for (uint32_t c = 0; c < context->audioOutChannels; c++)
            audioWrite(context, i, c, gAudio[i]);
    for (int ch : {gCfg.beat_analog, gCfg.bar_analog})
        if (ch >= 0 && (uint32_t)ch < b.analog_channels)
            for (uint32_t i = 0; i < context->analogFrames; i++)
                analogWriteOnce(context, i, ch, gAnalog[ch * context->analogFrames + i]);
    for (uint32_t i = 0; i < frames && i < context->digitalFrames; i++)
        for (int pin : {gCfg.beat_pin, gCfg.bar_pin, gCfg.led_pin})
            if (pin >= 0) digitalWriteOnce(context, i, pin, (gDigitalOut[i] >> pin) & 1);

    /* MIDI bytes of this block (each is due at its frame; the port's own
     * task and the UART add their delay, see docs/bela.md). */
    tutti_node_midi m[64];
    midi_byte_t bytes[64];
    uint32_t n;
    while ((n = tutti_node_midi_read(gNode, m, 64)) > 0) {
        for (uint32_t i = 0; i < n; i++)
            bytes[i] = m[i].byte;
        if (gMidiOpen) gMidi.writeOutput(bytes, n);
    }
}

void cleanup(BelaContext *, void *)
{
    tutti_node_run_stop(gRunner);
    tutti_node_destroy(gNode);
}
