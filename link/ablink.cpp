/*
 * The C view of ableton::Link (see ablink.h). Only this file includes Link's
 * headers; exceptions stop here.
 */
#include "ablink.h"

#include <ableton/Link.hpp>

#include <chrono>
#include <ctime>
#include <new>

struct tutti_ablink {
    explicit tutti_ablink(double bpm) : link(bpm) {}
    ableton::Link link;
};

using std::chrono::microseconds;

extern "C" tutti_ablink *tutti_ablink_create(double bpm)
{
    try {
        tutti_ablink *l = new tutti_ablink(bpm);
        l->link.enableStartStopSync(true);
        l->link.enable(true);
        return l;
    } catch (...) {
        return nullptr;
    }
}

extern "C" void tutti_ablink_destroy(tutti_ablink *l)
{
    delete l;
}

extern "C" int64_t tutti_ablink_host_now(const tutti_ablink *l)
{
    return l->link.clock().micros().count();
}

static int64_t read_ns(clockid_t id)
{
    timespec ts;
    clock_gettime(id, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

extern "C" int64_t tutti_ablink_raw_minus_mono(void)
{
    int64_t best = INT64_MAX, off = 0;
    for (int i = 0; i < 5; i++) {
        int64_t m1 = read_ns(CLOCK_MONOTONIC);
        int64_t r = read_ns(CLOCK_MONOTONIC_RAW);
        int64_t m2 = read_ns(CLOCK_MONOTONIC);
        if (m2 - m1 < best) {
            best = m2 - m1;
            off = r - (m1 + (m2 - m1) / 2);
        }
    }
    return off;
}

extern "C" void tutti_ablink_capture(tutti_ablink *l, int64_t host_us, double quantum,
                                     tutti_ablink_state *out)
{
    const auto ss = l->link.captureAppSessionState();
    const microseconds t(host_us);
    out->bpm = ss.tempo();
    out->beat = ss.beatAtTime(t, quantum);
    out->phase = ss.phaseAtTime(t, quantum);
    out->playing = ss.isPlaying();
    out->play_at = ss.timeForIsPlaying().count();
    out->peers = (uint32_t)l->link.numPeers();
}

extern "C" void tutti_ablink_commit(tutti_ablink *l, double bpm, double beat, int64_t host_us,
                                    double quantum, bool set_playing, bool playing,
                                    int64_t play_at_us)
{
    auto ss = l->link.captureAppSessionState();
    const microseconds t(host_us);
    ss.setTempo(bpm, t);
    ss.forceBeatAtTime(beat, t, quantum);
    if (set_playing) ss.setIsPlaying(playing, microseconds(play_at_us));
    l->link.commitAppSessionState(ss);
}

extern "C" void tutti_ablink_set_tempo(tutti_ablink *l, double bpm)
{
    auto ss = l->link.captureAppSessionState();
    ss.setTempo(bpm, l->link.clock().micros());
    l->link.commitAppSessionState(ss);
}

extern "C" void tutti_ablink_set_playing(tutti_ablink *l, bool playing)
{
    auto ss = l->link.captureAppSessionState();
    ss.setIsPlaying(playing, l->link.clock().micros());
    l->link.commitAppSessionState(ss);
}
