/*
 * linkpeer: a small Ableton Link app for the tests, written straight against
 * Link's own API (ableton-link-dev), not the bridge's layer, so the tests
 * judge what a real Link app sees.
 *
 *   linkpeer [--quantum Q] [--period-ms P] [--bpm B] [--duration S]
 *
 * Every P ms (default 10) it samples the Link session at the host time that
 * is the latest multiple of P ms (so peers in other processes, other network
 * namespaces, sample the same host instants: they share CLOCK_MONOTONIC_RAW,
 * Link's clock on Linux) and prints
 *   b HOST_US BEAT PHASE BPM PLAYING PEERS PLAY_AT_US
 * (PLAY_AT_US: the host time of the last start/stop, Link's timeForIsPlaying)
 * It reads commands on stdin, as a musician would act in an app:
 *   tempo X   set the tempo now (Link's setTempo)     -> c HOST_US tempo X
 *   start     start the transport now                  -> c HOST_US start
 *   stop      stop it now                              -> c HOST_US stop
 *   quit      (end of input is not: it keeps sampling until --duration)
 * Start/stop sync is on (as in Live's preferences and LinkHut's 's' key).
 */
#include <ableton/Link.hpp>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <string>
#include <thread>

using std::chrono::microseconds;

int main(int argc, char **argv)
{
    double quantum = 4, bpm = 120, duration = 0;
    long period_ms = 10;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--quantum")) quantum = atof(argv[i + 1]);
        else if (!strcmp(argv[i], "--period-ms")) period_ms = atol(argv[i + 1]);
        else if (!strcmp(argv[i], "--bpm")) bpm = atof(argv[i + 1]);
        else if (!strcmp(argv[i], "--duration")) duration = atof(argv[i + 1]);
        else {
            fprintf(stderr, "linkpeer: unknown option %s\n", argv[i]);
            return 2;
        }
    }
    if (quantum <= 0 || period_ms <= 0) return 2;
    ableton::Link link(bpm);
    link.enableStartStopSync(true);
    link.enable(true);
    std::atomic<bool> quit{false};
    std::thread input([&] {
        std::string cmd;
        while (!quit && std::cin >> cmd) {
            const auto now = link.clock().micros();
            auto ss = link.captureAppSessionState();
            if (cmd == "tempo") {
                double x;
                if (!(std::cin >> x)) break;
                ss.setTempo(x, now);
                link.commitAppSessionState(ss);
                printf("c %lld tempo %.6f\n", (long long)now.count(), x);
            } else if (cmd == "start" || cmd == "stop") {
                ss.setIsPlaying(cmd == "start", now);
                link.commitAppSessionState(ss);
                printf("c %lld %s\n", (long long)now.count(), cmd.c_str());
            } else if (cmd == "quit") {
                quit = true;
                break;
            }
            fflush(stdout);
        }
        /* end of input: keep sampling until --duration or a signal */
    });
    input.detach();
    printf("# linkpeer quantum %g period_ms %ld\n", quantum, period_ms);
    const long long period = period_ms * 1000;
    const long long start = link.clock().micros().count();
    long long last = 0;
    while (!quit) {
        const long long now = link.clock().micros().count();
        if (duration > 0 && now - start > (long long)(duration * 1e6)) break;
        const long long t = now / period * period;
        if (t != last) {
            last = t;
            const auto ss = link.captureAppSessionState();
            printf("b %lld %.6f %.6f %.6f %d %zu %lld\n", t,
                   ss.beatAtTime(microseconds(t), quantum),
                   ss.phaseAtTime(microseconds(t), quantum), ss.tempo(), ss.isPlaying() ? 1 : 0,
                   link.numPeers(), (long long)ss.timeForIsPlaying().count());
            fflush(stdout);
        }
        const long long next = (now / period + 1) * period;
        std::this_thread::sleep_for(microseconds(next - link.clock().micros().count() + 100));
    }
    quit = true;
    return 0;
}
