/*
 * The part of Bela's API that hw/bela/render.cpp uses, declared here so that
 * the adapter compiles, and runs, off the board (tests/hw/render_test.cpp;
 * Bela's core library is not packaged in Debian). This is not Bela's
 * include/Bela.h: it is written from its documentation and keeps its names,
 * types, constness and meanings for exactly what the adapter touches, and
 * nothing else. When render.cpp starts using more of Bela, declare it here
 * first, checked against Bela's header; a name the adapter gets wrong then
 * fails this build instead of the first build on a board.
 *
 * Buffers as Bela hands them over by default (BELA_FLAG_INTERLEAVED):
 * audio and analog interleaved by frame; digital one 32-bit word a frame,
 * bits 0-15 the pins' directions (1 = input), bits 16-31 their levels.
 */
#ifndef TUTTI_TEST_BELA_H
#define TUTTI_TEST_BELA_H

#include <stdint.h>
#include <time.h>

/* Xenomai's clock for the host's CLOCK_REALTIME, read from memory shared with
 * the kernel (no system call). Off the board: an id Linux does not use, which
 * the test driver serves. */
#ifndef CLOCK_HOST_REALTIME
#define CLOCK_HOST_REALTIME ((clockid_t)42)
#endif

typedef struct {
    float *const audioOut;
    float *const analogOut;
    uint32_t *const digital;
    const uint32_t audioFrames;
    const uint32_t audioOutChannels;
    const float audioSampleRate;
    const uint32_t analogFrames;
    const uint32_t analogOutChannels;
    const uint32_t digitalFrames;
    const uint64_t audioFramesElapsed;
} BelaContext;

/* The three functions a Bela project defines. setup and cleanup run on a
 * non-real-time thread, render on the audio thread once a block; userData
 * is what the program gave Bela_initAudio (NULL for a plain project). */
bool setup(BelaContext *context, void *userData);
void render(BelaContext *context, void *userData);
void cleanup(BelaContext *context, void *userData);

enum { INPUT = 0, OUTPUT = 1 };

static inline void audioWrite(BelaContext *context, int frame, int channel, float value)
{
    context->audioOut[frame * context->audioOutChannels + channel] = value;
}

/* Analog output for this frame only (not persisting into later frames). */
static inline void analogWriteOnce(BelaContext *context, int frame, int channel,
                                   float value)
{
    context->analogOut[frame * context->analogOutChannels + channel] = value;
}

static inline int digitalRead(BelaContext *context, int frame, int channel)
{
    return (int)((context->digital[frame] >> (16 + channel)) & 1u);
}

/* A digital output's level for this frame only. */
static inline void digitalWriteOnce(BelaContext *context, int frame, int channel,
                                    int value)
{
    uint32_t bit = 1u << (16 + channel);
    if (value)
        context->digital[frame] |= bit;
    else
        context->digital[frame] &= ~bit;
}

/* A pin's direction from this frame to the end of the block (and, Bela
 * keeps it, in later blocks). */
static inline void pinMode(BelaContext *context, int frame, int channel, int mode)
{
    for (uint32_t f = (uint32_t)frame; f < context->digitalFrames; f++) {
        if (mode == INPUT)
            context->digital[f] |= 1u << channel;
        else
            context->digital[f] &= ~(1u << channel);
    }
}

#endif
