/*
 * The stage node on real sockets, for a few seconds: a hub and two members
 * (tutti/net.h) on 127.0.0.1, and the node's loop side (hw/run.c) joining as
 * a third; an audio thread of this process plays the device, waking for each
 * 16-frame block when a crystal 100 ppm fast would ask for it and reading
 * CLOCK_MONOTONIC as the host clock (the scheduler's real wake-up jitter,
 * one-sided, goes into the fit). A conductor's tempo change and four
 * footswitch taps happen on the way.
 *
 * What is checked: the node joins and its LED says locked; nine in ten beat
 * pulses from 3 s on fall within 1 ms of their beat's true frame, none beyond
 * 5 ms (not a sample: this thread's wake-up latency on a loaded machine,
 * one-sided, biases the fit by its mean, which an audio interrupt would not;
 * hw.render_test stamps its callbacks as an interrupt would; the sample-exact
 * figures are the simulation's, node_sim_test); the taps become the session's
 * tempo at the other members.
 */
#define _GNU_SOURCE
#include "hw/node.h"
#include "hw/run.h"
#include "test.h"
#include "tutti/net.h"

#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <time.h>

/* A sanitizer slows every thread: wider margins there (tests/e2e/lib.sh's
 * `sanitized` does the same for the end-to-end tests). */
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define SANITIZED 1
#endif
#endif
#ifndef SANITIZED
#define SANITIZED 0
#endif

#define SR 44100.0
#define PPM 100.0
#define FRAMES 16
#define LATENCY 32.0
#define SECONDS 12.0

static tutti_node *node;
static tutti_time t_start; /* monotonic time of frame 0 being heard */
static double rate;        /* frames per ns */
static atomic_bool tapping;
static tutti_time tap_from;

typedef struct pulse {
    uint64_t frame;
} pulse;
static pulse pulses[256];
static uint32_t npulses;
static tutti_node_status last;
static tutti_timeline tls[16];
static int ntl;

static void sleep_until(tutti_time t)
{
    struct timespec ts = {(time_t)(t / TUTTI_S), (long)(t % TUTTI_S)};
    while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR)
        continue;
}

static void *audio(void *arg)
{
    (void)arg;
    float out[FRAMES];
    uint16_t din[FRAMES], dout[FRAMES];
    bool level = false;
    uint64_t nblocks = (uint64_t)(SECONDS * SR / FRAMES);
    for (uint64_t j = 0; j < nblocks; j++) {
        uint64_t first = j * FRAMES;
        sleep_until(t_start + (tutti_time)(((double)first - LATENCY) / rate));
        tutti_time now = tutti_net_now();
        for (uint32_t i = 0; i < FRAMES; i++) {
            double t = (double)(t_start - tap_from) + (double)(first + i) / rate;
            bool down = false;
            if (atomic_load(&tapping))
                for (int k = 0; k < 4; k++)
                    if (t >= k * 0.6e9 && t < k * 0.6e9 + 50e6) down = true;
            din[i] = (uint16_t)(down << 3);
        }
        memset(out, 0, sizeof out);
        memset(dout, 0, sizeof dout);
        tutti_node_block b = {.frames = FRAMES,
                              .sample_rate = SR,
                              .frames_elapsed = first,
                              .host_now = now,
                              .audio_out = out,
                              .audio_channels = 1,
                              .digital_in = din,
                              .digital_out = dout};
        tutti_node_process(node, &b);
        for (uint32_t i = 0; i < FRAMES; i++) {
            bool l = dout[i] & 1;
            if (l && !level && npulses < 256) pulses[npulses++].frame = first + i;
            level = l;
        }
    }
    return NULL;
}

static void quiet(void *ctx, int level, const char *msg)
{
    (void)ctx;
    if (level >= TUTTI_LOG_WARN) fprintf(stderr, "net: %s\n", msg);
}

static void session_on_sockets(void)
{
    tutti_net_config ncfg;
    tutti_net_config_init(&ncfg);
    ncfg.log = quiet;
    tutti_hub_config hc;
    tutti_hub_config_init(&hc);
    hc.session = "stage";
    hc.horizon = 100 * TUTTI_MS;
    tutti_net *hub = NULL, *m1 = NULL, *m2 = NULL;
    CHECK(tutti_net_hub_start(&hub, &hc, "tcp://127.0.0.1:0", &ncfg) == 0);
    if (!hub) return;
    char url[128];
    CHECK(tutti_net_url(hub, url, sizeof url) == 0);
    tutti_member_config mc;
    tutti_member_config_init(&mc);
    mc.session = "stage";
    mc.role = TUTTI_ROLE_CONDUCTOR;
    tutti_member_callbacks cb = {0};
    mc.name = "m1";
    CHECK(tutti_net_member_start(&m1, &mc, &cb, url, &ncfg) == 0);
    mc.name = "m2";
    CHECK(tutti_net_member_start(&m2, &mc, &cb, url, &ncfg) == 0);

    tutti_node_config nc;
    tutti_node_config_init(&nc);
    nc.output_latency_frames = LATENCY;
    CHECK(tutti_node_create(&node, &nc) == 0);
    mc.name = "bela";
    tutti_node_run_config rc = {0};
    rc.member = &mc;
    rc.hub_url = url;
    tutti_node_runner *run = NULL;
    CHECK(tutti_node_run_start(&run, node, &rc) == 0);

    rate = SR * (1 + PPM * 1e-6) / 1e9;
    t_start = tutti_net_now() + 100 * TUTTI_MS;
    tap_from = t_start + (tutti_time)(8.0 * TUTTI_S);
    pthread_t at;
    CHECK(pthread_create(&at, NULL, audio, NULL) == 0);

    /* At 3 s, a conductor asks for 150 bpm; from 8 s, four taps at 100. */
    sleep_until(t_start + 3 * TUTTI_S);
    tutti_member_status st;
    tutti_net_member_status(m1, &st);
    CHECK(st.joined);
    struct req {
        double bpm;
    } req = {150};
    void propose(void *arg, void *engine);
    CHECK(tutti_net_call(m1, propose, &req) == 0);
    atomic_store(&tapping, true);
    /* Keep the session's timeline history as the hub applies it. */
    tutti_time locked_at = -1;
    uint32_t polls = 0;
    while (tutti_net_now() < t_start + (tutti_time)(SECONDS * TUTTI_S) + 100 * TUTTI_MS) {
        tutti_hub_status h;
        tutti_net_hub_status(hub, &h);
        if (ntl == 0 || (tls[ntl - 1].t0 != h.timeline.t0 && ntl < 16))
            tls[ntl++] = h.timeline;
        /* The LED, a few times a second: joined with its clocks locked, it
         * must say so (steady) within the run. */
        if (++polls % 100 == 0) {
            tutti_node_status ds;
            CHECK(tutti_node_run_status(run, &ds) == 0);
            if (ds.led == TUTTI_NODE_LOCKED && locked_at < 0)
                locked_at = tutti_net_now() - t_start;
        }
        sleep_until(tutti_net_now() + 2 * TUTTI_MS);
    }
    pthread_join(at, NULL);
    sleep_until(tutti_net_now() + 1500 * TUTTI_MS);
    CHECK(tutti_node_run_status(run, &last) == 0);

    /* The session's timeline as the hub keeps it (session time = the hub's
     * CLOCK_MONOTONIC here: its epoch is 0). */
    tutti_hub_status hs;
    tutti_net_hub_status(hub, &hs);
    tutti_net_member_status(m2, &st);
    fprintf(
        stderr,
        "node: led %d, %llu pulses, %llu midi ticks, %llu taps, %llu proposals, tap bpm "
        "%.1f, dll error %.1f us; session bpm now %.1f at the hub, %.1f at m2\n",
        last.led, (unsigned long long)last.pulses, (unsigned long long)last.midi_ticks,
        (unsigned long long)last.taps, (unsigned long long)last.proposals,
        last.last_tap_bpm, last.dll_error_ns / 1000, hs.timeline.bpm, st.timeline.bpm);
    /* The LED said locked: 6 s after the member's clock locked (about 0.3 s
     * after the start), so with 5 s to spare. */
    fprintf(stderr, "the LED said locked %.2f s after the audio started\n",
            locked_at < 0 ? -1.0 : (double)locked_at / 1e9);
    CHECK(locked_at > 0);
    CHECK(last.pulses >= 8);
    CHECK(last.taps == 4);
    CHECK(fabs(last.last_tap_bpm - 100) < 0.25);
    CHECK(last.proposals == 1);
    CHECK(fabs(hs.timeline.bpm - last.last_tap_bpm) < 1e-9);
    CHECK(fabs(st.timeline.bpm - last.last_tap_bpm) < 1e-9);

    /* Each pulse from 3 s on against the beat it stands for: the frame at
     * which the device's clock meets the hub's session time of that beat
     * (session time is the hub's CLOCK_MONOTONIC here: its epoch is 0). */
    uint32_t judged = 0, off = 0;
    double worst = 0, sum = 0;
    for (uint32_t i = 0; i < npulses; i++) {
        if (pulses[i].frame < (uint64_t)(3 * SR)) continue;
        double t = (double)t_start + (double)pulses[i].frame / rate;
        int k = 0;
        while (k + 1 < ntl && (double)tls[k + 1].t0 <= t)
            k++;
        double beat =
            nearbyint(tls[k].beat0 + (t - (double)tls[k].t0) * tls[k].bpm / 60e9);
        int j = 0;
        while (j + 1 < ntl && tls[j + 1].beat0 <= beat + 1e-9)
            j++;
        double s = (double)tls[j].t0 + (beat - tls[j].beat0) * 60e9 / tls[j].bpm;
        double e = (double)pulses[i].frame - (s - (double)t_start) * rate;
        judged++;
        sum += e;
        if (fabs(e) > worst) worst = fabs(e);
        if (fabs(e) > 0.001 * SR) off++;
    }
    fprintf(
        stderr,
        "%u pulses judged: mean error %+.1f samples, largest %.1f samples; %u over 1 ms "
        "(timelines seen: %d)\n",
        judged, judged ? sum / judged : 0, worst, off, ntl);
    CHECK(judged >= 8);
    /* A loaded machine (or a sanitizer) can hold the audio thread up past a
     * block now and then: nearly all within 1 ms, none beyond 5 ms. */
    CHECK(off * (SANITIZED ? 4 : 10) <= judged);
    CHECK(worst <= (SANITIZED ? 0.02 : 0.005) * SR);

    tutti_node_run_stop(run);
    tutti_net_leave(m1, TUTTI_S);
    tutti_net_leave(m2, TUTTI_S);
    tutti_net_stop(m1);
    tutti_net_stop(m2);
    tutti_net_stop(hub);
    tutti_node_destroy(node);
    tutti_net_fini();
}

void propose(void *arg, void *engine)
{
    const double *bpm = arg;
    CHECK(tutti_member_propose_bpm(engine, *bpm) == 0);
}

int main(void)
{
    RUN(session_on_sockets);
    TEST_END();
}
