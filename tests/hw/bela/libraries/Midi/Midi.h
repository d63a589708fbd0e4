/*
 * The part of Bela's Midi library (libraries/Midi/Midi.h) that
 * hw/bela/render.cpp uses; see ../../Bela.h for why it is here. On the board
 * the class talks to an ALSA raw MIDI port through Bela's own non-real-time
 * task; off the board the test driver defines these members and records
 * what the adapter writes.
 */
#ifndef TUTTI_TEST_BELA_MIDI_H
#define TUTTI_TEST_BELA_MIDI_H

#include <Bela.h>

typedef unsigned char midi_byte_t;

class Midi
{
  public:
    Midi();
    virtual ~Midi();
    /* Opens an ALSA raw MIDI port ("hw:1,0,0") for output: 1, or -1. */
    int writeTo(const char *port);
    /* Queues bytes for the port from the audio thread: 1, 0 when no port is
     * open, -1 on an error. */
    int writeOutput(midi_byte_t byte);
    int writeOutput(midi_byte_t *bytes, unsigned int length);
};

#endif
