/*
 * The stage node over the real core, in a simulated session: a hub and three
 * members on virtual time (core/src/sim), member 3 being the node. A
 * simulated audio device drives tutti_node_process block by block: its
 * crystal runs off by +/-100 ppm, each callback comes with jitter, one block
 * is missed and one callback is held up. Every beat pulse, click and MIDI
 * clock tick the node emits is compared with where the session's beat truly
 * falls: the frame at which the audio device's own clock meets the hub's
 * session time of that beat. Also: a tempo change proposed by another member
 * lands on its bar line, and four taps on the node's footswitch become a
 * session tempo change that the other members follow.
 *
 * Four runs: the stage's LAN with the crystal 100 ppm fast and slow, and a
 * hub across a city (2 ms, the same both ways) with queueing jitter, judged
 * against the true position like the LAN, and with normal jitter, judged
 * against the node's own session clock (see judged()).
 *
 * TUTTI_HW_SECONDS sets the simulated length (default 60, 30 across a city;
 * the acceptance run is 600: docs/bela.md).
 */
#include "hw/node.h"
#include "sim/sim.h"
#include "test.h"

#include <math.h>

#define SR 44100.0
#define FRAMES 16
#define LATENCY 32.0        /* output latency the device has, frames */
#define JITTER (40 * 1000)  /* callback jitter, +/- ns (uniform) */
#define POLL (2 * TUTTI_MS) /* the node's loop-side poll */
#define NODE 3
#define BEAT_PIN 0
#define BAR_PIN 1
#define FOOT_PIN 3
#define MAX_TL 64

/* The networks: the hub on the stage's LAN; across a city with queueing
 * jitter (a floor and a tail, as a WAN's delays are); across a city with
 * normal jitter (symmetric about the mean, the clock filter's hard case). */
enum net { STAGE_LAN, CITY_QUEUEING, CITY_NORMAL };
static const char *const net_name[] = {"", " (hub across a city, queueing jitter)",
                                       " (hub across a city, normal jitter)"};

typedef struct run {
    double ppm;
    int net; /* enum net */
    tutti_sim *sim;
    tutti_node *node;
    tutti_time a0;             /* true time of frame 0 being heard */
    double rate;               /* true frames per ns */
    tutti_timeline tl[MAX_TL]; /* the hub's timelines as they took effect */
    int ntl;
    tutti_time locked_at; /* true time the node first said LOCKED */
    uint64_t check_from;  /* frame from which everything is checked */
    /* results */
    uint64_t pulses, clicks, ticks, bars, unlocked_out;
    double max_pulse, max_click, max_tick; /* |error| in samples */
    double max_unlocked;
    int64_t pulse_k, tick_k; /* the last beat and tick emitted */
    bool pulse_k_set, tick_k_set;
    uint64_t dups, gaps;          /* grid points emitted twice, or never */
    uint64_t skipped_before;      /* skipped while joining (the clock estimate moving) */
    uint64_t starts, start_frame; /* MIDI Start/Continue bytes, the last one's frame */
    double max_clock;             /* the member's session clock error, samples */
    double max_own;               /* error against the node's own session clock */
    uint64_t pulse_bad, click_bad, tick_bad;
    uint64_t beats_expected, beats_found;
    int64_t prev_pulse_frame;
    bool prev_beat_level;
    bool clicking;
    double tap_bpm_at_others[3];
    bool change_on_bar;
    double change_err; /* the change beat's pulse, samples */
    uint64_t ticks_expected;
} run;

/* True (fractional) frame at which beat b is heard. */
static double true_frame_of_beat(const run *r, double b)
{
    int i = 0;
    while (i + 1 < r->ntl && r->tl[i + 1].beat0 <= b + 1e-9)
        i++;
    const tutti_timeline *tl = &r->tl[i];
    double s =
        (double)tl->t0 + (b - tl->beat0) * 60e9 / tl->bpm; /* session = true time */
    return (s - (double)r->a0) * r->rate;
}

static double beat_of_frame(const run *r, double frame)
{
    double t = (double)r->a0 + frame / r->rate;
    int i = 0;
    while (i + 1 < r->ntl && (double)r->tl[i + 1].t0 <= t)
        i++;
    const tutti_timeline *tl = &r->tl[i];
    return tl->beat0 + (t - (double)tl->t0) * tl->bpm / 60e9;
}

static void record_timeline(run *r)
{
    tutti_hub_status hs;
    tutti_hub_status_get(tutti_sim_hub(r->sim), &hs);
    const tutti_timeline *last = r->ntl ? &r->tl[r->ntl - 1] : NULL;
    if (last && last->t0 == hs.timeline.t0 && last->bpm == hs.timeline.bpm) return;
    if (r->ntl < MAX_TL) r->tl[r->ntl++] = hs.timeline;
}

/* The member's session clock error (estimate - truth) at the moment frame
 * is heard, in samples: what the network leaves in the node's view of
 * session time. */
static double clock_error(const run *r, uint64_t frame)
{
    tutti_member_status st;
    tutti_member_status_get(tutti_sim_member(r->sim, NODE), &st);
    double t = (double)r->a0 + (double)frame / r->rate;
    tutti_time host = tutti_sim_node_clock(r->sim, NODE, (tutti_time)t);
    return (double)(tutti_clock_to_session(&st.clock, host) - (tutti_time)t) * r->rate;
}

/* What a run holds the node to: the true position; but with normal jitter
 * on a 2 ms path, where the member's session clock itself is off by up to
 * half a sample (its honest statistical error: 3-4 us rms, docs/bela.md),
 * the position the node's own session clock gives (the true error is
 * reported). */
static double judged(const run *r, double e, double ce)
{
    return r->net == CITY_NORMAL ? e + ce : e;
}

/* Error of an emitted grid event at `frame` against the nearest point of a
 * grid of `per_beat` points per beat; the point's index in *k. */
static double grid_error(const run *r, uint64_t frame, double per_beat, int64_t *k)
{
    double b = beat_of_frame(r, (double)frame);
    *k = llround(b * per_beat);
    return (double)frame - true_frame_of_beat(r, (double)*k / per_beat);
}

static void check_outputs(run *r, const tutti_node_block *b, const float *audio)
{
    for (uint32_t i = 0; i < b->frames; i++) {
        uint64_t f = b->frames_elapsed + i;
        bool level = (b->digital_out[i] >> BEAT_PIN) & 1;
        bool edge = level && !r->prev_beat_level;
        r->prev_beat_level = level;
        bool click = audio[i] != 0;
        bool onset = click && !r->clicking;
        r->clicking = click;
        if (!edge && !onset) continue;
        int64_t k;
        double e = grid_error(r, f, 1, &k);
        if (f < r->check_from) {
            if (edge) r->unlocked_out++;
            if (edge && fabs(e) > r->max_unlocked) r->max_unlocked = fabs(e);
            continue;
        }
        double ce = clock_error(r, f);
        if (fabs(ce) > r->max_clock) r->max_clock = fabs(ce);
        /* Against the node's own session clock (an estimate ahead by ce puts
         * the event ce early): the node's part alone. */
        if (fabs(e + ce) > r->max_own) r->max_own = fabs(e + ce);
        if (edge) {
            r->pulses++;
            if (r->pulse_k_set && k <= r->pulse_k) r->dups++;
            if (r->pulse_k_set && k > r->pulse_k + 1)
                r->gaps += (uint64_t)(k - r->pulse_k - 1);
            r->pulse_k = k;
            r->pulse_k_set = true;
            if (fabs(e) > r->max_pulse) r->max_pulse = fabs(e);
            if (fabs(judged(r, e, ce)) > 1) {
                if (r->pulse_bad++ < 5)
                    fprintf(stderr, "pulse at frame %llu: %.2f samples from beat %lld\n",
                            (unsigned long long)f, e, (long long)k);
            }
            if ((b->digital_out[i] >> BAR_PIN) & 1) r->bars++;
            for (int t = 1; t < r->ntl; t++)
                if (fabs(r->tl[t].beat0 - (double)k) < 1e-6) r->change_err = e;
        }
        if (onset) {
            r->clicks++;
            if (fabs(e) > r->max_click) r->max_click = fabs(e);
            if (fabs(judged(r, e, ce)) > 1) r->click_bad++;
        }
    }
}

static void check_midi(run *r)
{
    tutti_node_midi m[256];
    uint32_t n;
    while ((n = tutti_node_midi_read(r->node, m, 256)) > 0) {
        for (uint32_t i = 0; i < n; i++) {
            if (m[i].byte == 0xFA || m[i].byte == 0xFB) {
                r->starts++;
                r->start_frame = m[i].frame;
            }
            if (m[i].byte != 0xF8 || m[i].frame < r->check_from) continue;
            int64_t k;
            double e = grid_error(r, m[i].frame, 24, &k);
            double ce = clock_error(r, m[i].frame);
            if (fabs(ce) > r->max_clock) r->max_clock = fabs(ce);
            if (fabs(e + ce) > r->max_own) r->max_own = fabs(e + ce);
            r->ticks++;
            if (r->tick_k_set && k <= r->tick_k) r->dups++;
            if (r->tick_k_set && k > r->tick_k + 1)
                r->gaps += (uint64_t)(k - r->tick_k - 1);
            r->tick_k = k;
            r->tick_k_set = true;
            if (fabs(e) > r->max_tick) r->max_tick = fabs(e);
            if (fabs(judged(r, e, ce)) > 1 && r->tick_bad++ < 5)
                fprintf(stderr, "midi tick at frame %llu: %.2f samples from tick %lld\n",
                        (unsigned long long)m[i].frame, e, (long long)k);
        }
    }
}

static void one_run(double ppm, uint64_t seed, double seconds, int net)
{
    run R;
    memset(&R, 0, sizeof R);
    run *r = &R;
    r->ppm = ppm;
    tutti_sim_config sc;
    tutti_sim_config_init(&sc);
    sc.seed = seed;
    sc.members = 3;
    sc.role = TUTTI_ROLE_CONDUCTOR;
    r->net = net;
    /* Both ways alike. The stage's LAN: 0.3 ms +/- 30 us (a switch). A hub
     * across a city, 2 ms: with queueing jitter, a floor at 1.9 ms and a
     * heavy tail (mean 2.1 ms); or normal jitter, sd 50 us, within +/- 0.2 ms. */
    sc.up = sc.down =
        net == STAGE_LAN ? (tutti_path){300 * 1000, 30 * 1000, TUTTI_JITTER_UNIFORM, 0}
        : net == CITY_QUEUEING
            ? (tutti_path){2 * TUTTI_MS, 100 * 1000, TUTTI_JITTER_PARETO, 0}
            : (tutti_path){2 * TUTTI_MS, 100 * 1000, TUTTI_JITTER_NORMAL, 0};
    sc.horizon = 50 * TUTTI_MS;
    CHECK(tutti_sim_create(&r->sim, &sc) == 0);
    for (uint32_t i = 1; i <= 3; i++)
        tutti_sim_start(r->sim, i, (tutti_time)i * 50 * TUTTI_MS);

    tutti_node_config nc;
    tutti_node_config_init(&nc);
    nc.sample_rate = SR;
    nc.output_latency_frames = LATENCY;
    nc.beat_pin = BEAT_PIN;
    nc.bar_pin = BAR_PIN;
    nc.foot_pin = FOOT_PIN;
    CHECK(tutti_node_create(&r->node, &nc) == 0);

    tutti_rng rng;
    tutti_rng_seed(&rng, seed * 7 + 1);
    r->a0 = 300 * TUTTI_MS;
    r->rate = SR * (1 + ppm * 1e-6) / 1e9;
    float audio[2 * FRAMES];
    uint16_t din[FRAMES], dout[FRAMES];
    float analog[2 * FRAMES / 2];
    tutti_time next_poll = 0;
    uint64_t nblocks = (uint64_t)(seconds * SR / FRAMES);
    uint64_t missed_block = (uint64_t)(0.5 * seconds * SR / FRAMES);
    uint64_t held_block = missed_block + 1000;
    tutti_time change_at = (tutti_time)(0.3 * seconds * TUTTI_S);
    tutti_time tap_at = (tutti_time)(0.7 * seconds * TUTTI_S);
    tutti_time hold_at = (tutti_time)(0.8 * seconds * TUTTI_S);
    bool changed = false;
    r->locked_at = -1;
    r->check_from = UINT64_MAX;
    for (uint64_t j = 0; j < nblocks; j++) {
        uint64_t first = j * FRAMES;
        tutti_time jit = tutti_rng_range(&rng, -JITTER, JITTER);
        if (j == held_block) jit += 400 * 1000; /* a callback held up 0.4 ms */
        tutti_time tcb = r->a0 + (tutti_time)(((double)first - LATENCY) / r->rate) + jit;
        if (tcb < 0) tcb = 0;
        tutti_sim_run_until(r->sim, tcb);
        if (!changed && tcb >= change_at) {
            /* Another member (a conductor) asks for a new tempo. */
            CHECK(tutti_member_propose_bpm(tutti_sim_member(r->sim, 1), 133) == 0);
            changed = true;
        }
        while (next_poll <= tcb) {
            tutti_time host = tutti_sim_node_clock(r->sim, NODE, tutti_sim_now(r->sim));
            tutti_node_poll(r->node, tutti_sim_member(r->sim, NODE), host, 0);
            record_timeline(r);
            next_poll += POLL;
        }
        tutti_node_status ns;
        tutti_node_status_get(r->node, &ns);
        if (r->locked_at < 0 && ns.led == TUTTI_NODE_LOCKED) {
            r->locked_at = tcb;
            r->check_from = first;
            r->skipped_before = ns.skipped;
        }
        if (j == missed_block) continue; /* the device never asked for it */
        /* The footswitch: four presses 0.6 s apart (100 bpm), 50 ms each, at
         * true time; the frame they are read in is the block's. */
        for (uint32_t i = 0; i < FRAMES; i++) {
            double t = (double)r->a0 + (double)(first + i) / r->rate - (double)tap_at;
            bool down = false;
            for (int k = 0; k < 4; k++)
                if (t >= k * 0.6e9 && t < k * 0.6e9 + 50e6) down = true;
            /* Later, held 1.2 s: start the transport. */
            double th = (double)r->a0 + (double)(first + i) / r->rate - (double)hold_at;
            if (th >= 0 && th < 1.2e9) down = true;
            din[i] = (uint16_t)(down << FOOT_PIN);
        }
        memset(audio, 0, sizeof audio);
        memset(dout, 0, sizeof dout);
        tutti_node_block b = {
            .frames = FRAMES,
            .sample_rate = SR,
            .frames_elapsed = first,
            .host_now = tutti_sim_node_clock(r->sim, NODE, tcb),
            .audio_out = audio,
            .audio_channels = 2,
            .analog_out = analog,
            .analog_channels = 2,
            .analog_frames = FRAMES / 2,
            .digital_in = din,
            .digital_out = dout,
        };
        tutti_node_process(r->node, &b);
        if (getenv("TUTTI_HW_DEBUG") && j % 1378 == 0) {
            tutti_member_status st;
            tutti_member_status_get(tutti_sim_member(r->sim, NODE), &st);
            tutti_node_status ds;
            tutti_node_status_get(r->node, &ds);
            tutti_time tnom = r->a0 + (tutti_time)(((double)first - LATENCY) / r->rate);
            tutti_time hnom = tutti_sim_node_clock(r->sim, NODE, tnom);
            fprintf(stderr,
                    "t %.2f s: clock err %+.2f us (bound %.1f us, drift %.2f ppm), dll "
                    "resid %+.2f us period %.4f\n",
                    tnom / 1e9,
                    (double)(tutti_clock_to_session(&st.clock, hnom) - tnom) / 1e3,
                    st.clock.bound_ns / 1e3, st.clock.drift * 1e6, ds.dll_error_ns / 1e3,
                    ds.dll_period_ns);
        }
        check_outputs(r, &b, audio);
        check_midi(r);
    }
    tutti_sim_run_until(r->sim, tutti_sim_now(r->sim) + 2 * TUTTI_S);
    record_timeline(r);

    /* The beats and ticks between lock and the end. */
    tutti_node_status ns;
    tutti_node_status_get(r->node, &ns);
    uint64_t end = nblocks * FRAMES;
    double b0 = ceil(beat_of_frame(r, (double)r->check_from + 1));
    for (double b = b0;; b++) {
        double f = true_frame_of_beat(r, b);
        if (f >= (double)end - 1) break;
        r->beats_expected++;
    }
    double k0 = ceil(beat_of_frame(r, (double)r->check_from + 1) * 24);
    for (double k = k0;; k++) {
        double f = true_frame_of_beat(r, k / 24);
        if (f >= (double)end - 1) break;
        r->ticks_expected++;
    }

    fprintf(
        stderr,
        "ppm %+.0f%s: locked after %.2f s; %llu pulses (max error %.3f samples), %llu "
        "clicks "
        "(%.3f), %llu midi ticks (%.3f) of %llu beats and %llu ticks expected; bars "
        "%llu; "
        "missed blocks %llu, skipped %llu; dll period %.4f ns (true %.4f); timelines "
        "%d\n",
        ppm, net_name[net], (double)r->locked_at / 1e9, (unsigned long long)r->pulses,
        r->max_pulse, (unsigned long long)r->clicks, r->max_click,
        (unsigned long long)r->ticks, r->max_tick, (unsigned long long)r->beats_expected,
        (unsigned long long)r->ticks_expected, (unsigned long long)r->bars,
        (unsigned long long)ns.missed_blocks, (unsigned long long)ns.skipped,
        ns.dll_period_ns,
        /* true ns per frame, counted on the node's host clock */
        (double)(tutti_sim_node_clock(r->sim, NODE, 1000 * TUTTI_S) -
                 tutti_sim_node_clock(r->sim, NODE, 0)) /
            1000.0 / (SR * (1 + ppm * 1e-6)),
        r->ntl);
    fprintf(stderr,
            "before the LED said locked: %llu pulses, largest error %.2f samples\n",
            (unsigned long long)r->unlocked_out, r->max_unlocked);
    fprintf(stderr,
            "the member's session clock error at those instants: up to %.3f samples "
            "(%.1f us); "
            "against the node's own session clock, every event within %.3f samples\n",
            r->max_clock, r->max_clock / SR * 1e6, r->max_own);
    CHECK(r->locked_at > 0 && r->locked_at < 10 * TUTTI_S);
    CHECK(r->pulse_bad == 0);
    CHECK(r->click_bad == 0);
    CHECK(r->tick_bad == 0);
    /* Every beat and tick is there once, in order, but those whose frame
     * fell in the missed block (the node counts them as skipped; 16 frames
     * hold at most one tick and one beat); and as many as the session's
     * beats between lock and the end, give or take the one at each end. */
    CHECK_EQ_I64(r->dups, 0);
    CHECK_EQ_I64(r->gaps, ns.skipped - r->skipped_before);
    CHECK(ns.skipped - r->skipped_before <= 2);
    CHECK(llabs((long long)(r->pulses + r->ticks + ns.skipped) -
                (long long)(r->beats_expected + r->ticks_expected)) <= 2);
    CHECK_EQ_I64(r->clicks, r->pulses);
    CHECK(ns.missed_blocks == 1);
    CHECK(ns.midi_dropped == 0);

    /* The tempo change (133) and the tap (100): both took effect on a bar
     * line, the node's pulse on the first changed beat within a sample. */
    bool saw133 = false, saw100 = false;
    for (int t = 1; t < r->ntl; t++) {
        double q = r->tl[t].beat0 / r->tl[t].quantum;
        CHECK(fabs(q - nearbyint(q)) < 1e-6);
        if (fabs(r->tl[t].bpm - 133) < 1e-9) saw133 = true;
        if (fabs(r->tl[t].bpm - 100) < 1e-9) saw100 = true;
    }
    CHECK(saw133);
    CHECK(saw100);
    CHECK(fabs(r->change_err) <= 1);
    CHECK_EQ_I64(ns.taps, 4);
    CHECK_EQ_I64(ns.proposals, 2); /* the tempo, the transport */
    CHECK_EQ_I64(ns.transport_toggles, 1);
    /* The hold started the session's transport: MIDI Continue (with its song
     * position) on the bar line it took effect at, within a sample. */
    CHECK_EQ_I64(r->starts, 1);
    int64_t bar = -1;
    double se = r->starts ? grid_error(r, r->start_frame, 1.0 / 4, &bar) : 99;
    double sce = r->starts ? clock_error(r, r->start_frame) : 0;
    fprintf(stderr,
            "transport start: MIDI Continue at frame %llu, %.3f samples from bar %lld\n",
            (unsigned long long)r->start_frame, se, (long long)bar);
    CHECK(fabs(judged(r, se, sce)) <= 1);
    CHECK(fabs(ns.last_tap_bpm - 100) < 1e-9);
    for (uint32_t i = 1; i <= 2; i++) {
        tutti_member_status st;
        tutti_member_status_get(tutti_sim_member(r->sim, i), &st);
        CHECK(st.joined);
        CHECK(fabs(st.timeline.bpm - 100) < 1e-9);
        CHECK(st.timeline.playing);
    }
    tutti_node_destroy(r->node);
    tutti_sim_destroy(r->sim);
}

static double seconds(void)
{
    const char *s = getenv("TUTTI_HW_SECONDS");
    double v = s ? atof(s) : 60;
    return v >= 20 ? v : 20;
}

/* TUTTI_HW_SEED picks other seeds (a sweep: docs/bela.md). */
static uint64_t seed(uint64_t base)
{
    const char *s = getenv("TUTTI_HW_SEED");
    return s ? base + 100 * strtoull(s, NULL, 10) : base;
}

static void fast_crystal(void)
{
    one_run(+100, seed(11), seconds(), STAGE_LAN);
}

static void slow_crystal(void)
{
    one_run(-100, seed(12), seconds(), STAGE_LAN);
}

static void hub_across_a_city(void)
{
    one_run(+100, seed(14), seconds() / 2, CITY_QUEUEING);
}

static void hub_across_a_city_normal_jitter(void)
{
    one_run(+100, seed(13), seconds() / 2, CITY_NORMAL);
}

int main(void)
{
    RUN(fast_crystal);
    RUN(slow_crystal);
    RUN(hub_across_a_city);
    RUN(hub_across_a_city_normal_jitter);
    TEST_END();
}
