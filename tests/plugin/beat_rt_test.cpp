/*
 * The beat UGens (plugin/ugens.cpp, plugin/beat.c): what they compute, and
 * that their calc functions make no allocation, take no lock and make no
 * system call.
 *
 * - The real-time rule. The UGens are registered through a stand-in for
 *   scsynth's InterfaceTable and run, ctor and calc functions as scsynth
 *   calls them, on a thread that has entered seccomp's strict mode: from
 *   then on any system call but read, write and exit kills that thread (the
 *   harness sees it never finished). malloc, calloc, realloc, free and the
 *   pthread lock functions are interposed: called from that thread they are
 *   counted (an allocation served from the arena, or an uncontended lock,
 *   would need no system call). Meanwhile another thread publishes new
 *   models and the audio thread hands anchors over, as in the server. Two
 *   controls show the harness can fail: a calc function that allocates is
 *   counted, one that asks for the process id is killed.
 * - What they compute, on a model with known numbers: the beat, phase and
 *   tempo at every sample of blocks at 48 kHz, a trigger exactly at the
 *   sample nearest each grid instant (audio rate) or in the block holding
 *   it (control rate), across a tempo change inside a block.
 * - The block line (beat.c): anchors with the DLL's jitter and a clock 30 ppm
 *   off nominal are fitted within a fraction of a microsecond; an xrun's jump
 *   restarts the line.
 * - Re-timing bundles for the server's clock when the UGens follow JACK's:
 *   the difference line, its bounds and its restarts.
 *
 * Sanitizer builds skip the real-time part (their runtimes intercept the
 * allocator themselves and make system calls of their own).
 */
#include <SC_PlugIn.h>

#include "beat.h"
#include "test.h"

#include <atomic>
#include <cmath>
#include <dlfcn.h>
#include <linux/seccomp.h>
#include <pthread.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

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

void tutti__ugens_load(InterfaceTable *inTable);

/* ------------------------------------------------------- the watchers */

static thread_local bool g_rt;
static std::atomic<int> g_violations{0};

extern "C" {
void *__libc_malloc(size_t);
void *__libc_calloc(size_t, size_t);
void *__libc_realloc(void *, size_t);
void __libc_free(void *);

#if !SANITIZED
void *malloc(size_t n)
{
    if (g_rt) g_violations++;
    return __libc_malloc(n);
}
void *calloc(size_t a, size_t b)
{
    if (g_rt) g_violations++;
    return __libc_calloc(a, b);
}
void *realloc(void *p, size_t n)
{
    if (g_rt) g_violations++;
    return __libc_realloc(p, n);
}
void free(void *p)
{
    if (g_rt && p) g_violations++;
    __libc_free(p);
}
#endif
}

using lock_fn = int (*)(pthread_mutex_t *);
static lock_fn real_lock, real_trylock;

#if !SANITIZED
extern "C" int pthread_mutex_lock(pthread_mutex_t *m)
{
    if (g_rt) g_violations++;
    return real_lock(m);
}

extern "C" int pthread_mutex_trylock(pthread_mutex_t *m)
{
    if (g_rt) g_violations++;
    return real_trylock(m);
}
#endif

/* ----------------------------------------------- a stand-in for scsynth */

struct Def {
    const char *name;
    size_t size;
    UnitCtorFunc ctor;
};
static Def defs[8];
static int ndefs;

static bool define_unit(const char *name, size_t size, UnitCtorFunc ctor, UnitDtorFunc,
                        uint32)
{
    if (ndefs < 8) defs[ndefs++] = {name, size, ctor};
    return true;
}

static const Def *def(const char *name)
{
    for (int i = 0; i < ndefs; i++)
        if (!strcmp(defs[i].name, name)) return &defs[i];
    return nullptr;
}

enum { SR = 48000, BLOCK = 64, BLOCKS = 3000 };
static World world;

/* One unit: its memory, one input (a constant) and one output buffer. */
struct Inst {
    const char *name;
    Unit *unit;
    float in[BLOCK], out[BLOCK];
    float *inbuf[1], *outbuf[1];
};

static void make(Inst *x, const char *name, bool ar, float input)
{
    const Def *d = def(name);
    CHECK(d != nullptr);
    x->name = name;
    x->unit = static_cast<Unit *>(__libc_calloc(1, d ? d->size : sizeof(Unit)));
    Unit *u = x->unit;
    u->mWorld = &world;
    u->mCalcRate = ar ? calc_FullRate : calc_BufRate;
    u->mNumInputs = 1;
    u->mNumOutputs = 1;
    for (float &v : x->in)
        v = input;
    x->inbuf[0] = x->in;
    x->outbuf[0] = x->out;
    u->mInBuf = x->inbuf;
    u->mOutBuf = x->outbuf;
    u->mBufLength = ar ? BLOCK : 1;
    x->unit = u;
}

/* -------------------------------------------------------- the model */

/* Session time of block 1000's first sample: 2025-01-01; a sample is
 * exactly 1e9 / 48000 ns (20833.33 ns). */
static const int64_t S0 = INT64_C(3944678400) * TUTTI_S;
static const double SAMPLE_NS = 1e9 / SR;

static void publish(double bpm2, int64_t change_at_sample)
{
    /* the line: the anchor ring's way in, as the audio thread gives it */
    tutti_timeline tl[2];
    tutti_timeline_init(&tl[0], 120.0, 4.0, S0);
    tl[1] = tl[0];
    tl[1].t0 = S0 + (int64_t)llround(change_at_sample * SAMPLE_NS);
    tl[1].beat0 = tutti_timeline_beat_at(&tl[0], tl[1].t0);
    tl[1].bpm = bpm2;
    tutti__beat_update(0, tl, 2);
}

/* ------------------------------------------------------ the RT thread */

struct Run {
    Inst beat_ar, phase_ar, tempo_ar, trig_ar, beat_kr, trig_kr, phase_kr;
    /* what each produced, per block (ar: every sample) */
    float *beat, *trig, *phase, *tempo, *beat_k, *trig_k, *phase_k;
    void (*extra)(void);
    std::atomic<bool> done{false}, stop_writer{false};
};

static void calc(Unit *u, int n)
{
    (u->mCalcFunc)(u, n);
}

static Run *g_run;

/* The server's work for BLOCKS blocks: the units' ctors, then every
 * block's calc functions, and now and then an anchor command. */
static void compute(Run *r)
{
    Inst *all[] = {&r->beat_ar, &r->phase_ar, &r->tempo_ar, &r->trig_ar,
                   &r->beat_kr, &r->trig_kr,  &r->phase_kr};
    world.mBufCounter = 1000;
    for (Inst *x : all)
        def(x->name)->ctor(x->unit);
    for (int b = 0; b < BLOCKS; b++) {
        world.mBufCounter = 1000 + b;
        /* the anchor command's work, as the server runs it in a block */
        if (b % 200 == 7)
            tutti__beat_anchor_rt((uint32_t)world.mBufCounter,
                                  S0 + (int64_t)llround((b * BLOCK + 10) * SAMPLE_NS), 10,
                                  0.5f, SR, BLOCK);
        for (Inst *x : all)
            calc(x->unit, x->unit->mCalcRate == calc_FullRate ? BLOCK : 1);
        for (int i = 0; i < BLOCK; i++) {
            r->beat[b * BLOCK + i] = r->beat_ar.out[i];
            r->phase[b * BLOCK + i] = r->phase_ar.out[i];
            r->tempo[b * BLOCK + i] = r->tempo_ar.out[i];
            r->trig[b * BLOCK + i] = r->trig_ar.out[i];
        }
        r->beat_k[b] = r->beat_kr.out[0];
        r->trig_k[b] = r->trig_kr.out[0];
        r->phase_k[b] = r->phase_kr.out[0];
    }
    if (r->extra) r->extra();
}

static void *rt_main(void *)
{
    Run *r = g_run;
    /* this thread's malloc arena exists before the watch (an allocation in a
     * calc function is then counted rather than killed by its mmap) */
    __libc_free(__libc_malloc(64));
    if (prctl(PR_SET_SECCOMP, SECCOMP_MODE_STRICT, 0, 0, 0) != 0) return nullptr;
    g_rt = true;
    compute(r);
    /* the anchor from JACK's clock (TUTTI_UGEN_CLOCK=jack) under the same
     * watch, after the outputs are taken */
    tutti__beat_anchor_jack_rt(4003, 1000000, 1005333, S0, 10, 0.5f, SR, BLOCK);
    r->done = true;
    g_rt = false;
    syscall(SYS_exit, 0); /* pthread's own exit path is not allowed any more */
    return nullptr;
}

static void *writer_main(void *)
{
    /* new models as fast as the proxy's loop could make them, the same
     * numbers each time (the outputs must not depend on when they land) */
    while (!g_run->stop_writer) {
        publish(90.0, 100000 + 17);
        usleep(200);
    }
    return nullptr;
}

[[maybe_unused]] static bool run_rt(Run *r)
{
    g_run = r;
    pthread_t rt, wr;
    pthread_create(&wr, nullptr, writer_main, nullptr);
    pthread_create(&rt, nullptr, rt_main, nullptr);
    pthread_join(rt, nullptr);
    r->stop_writer = true;
    pthread_join(wr, nullptr);
    return r->done;
}

[[maybe_unused]] static void bad_alloc(void)
{
    void *p = malloc(32);
    free(p);
}

[[maybe_unused]] static void bad_syscall(void)
{
    (void)syscall(SYS_getpid);
}

/* ------------------------------------------------------------ tests */

static float *buf(size_t n)
{
    return static_cast<float *>(__libc_calloc(n, sizeof(float)));
}

static void setup_run(Run *r)
{
    make(&r->beat_ar, "TuttiBeat", true, 0);
    make(&r->phase_ar, "TuttiPhase", true, 3);
    make(&r->tempo_ar, "TuttiTempo", true, 0);
    make(&r->trig_ar, "TuttiTrig", true, 2); /* eighth notes */
    make(&r->beat_kr, "TuttiBeat", false, 0);
    make(&r->trig_kr, "TuttiTrig", false, 1);
    make(&r->phase_kr, "TuttiPhase", false, 0); /* the timeline's quantum */
    r->beat = buf(BLOCKS * BLOCK);
    r->trig = buf(BLOCKS * BLOCK);
    r->phase = buf(BLOCKS * BLOCK);
    r->tempo = buf(BLOCKS * BLOCK);
    r->beat_k = buf(BLOCKS);
    r->trig_k = buf(BLOCKS);
    r->phase_k = buf(BLOCKS);
}

/* The expected beat at sample k (from block 1000's start): 120 bpm, then
 * from sample C at `bpm2`. */
static const int64_t C = 100000 + 17;
static double want_beat(double k, double bpm2)
{
    if (k < C) return k / SR * 2.0;
    return C / (double)SR * 2.0 + (k - C) / SR * bpm2 / 60.0;
}

static void outputs(void)
{
    tutti__beat_reset();
    /* the line: one anchor at block 1000 exactly on the nominal rate */
    tutti__beat_anchor_rt(1000, S0 + (int64_t)llround(10 * SAMPLE_NS), 10, 0.5f, SR,
                          BLOCK);
    publish(90.0, C);
    Run *r = new Run();
    setup_run(r);
    r->extra = nullptr;
#if SANITIZED
    fprintf(stderr, "  sanitizer build: the calc functions run without seccomp\n");
    compute(r);
#else
    g_violations = 0;
    CHECK(run_rt(r));
    CHECK_EQ_I64(g_violations.load(), 0);
#endif
    /* every sample's beat, phase and tempo */
    int bad_beat = 0, bad_phase = 0, bad_tempo = 0;
    for (int k = 0; k < BLOCKS * BLOCK; k++) {
        double b = want_beat(k, 90.0);
        if (std::fabs(r->beat[k] - b) > 1e-3) bad_beat++;
        double p = std::fmod(b, 3.0);
        if (std::fabs(r->phase[k] - p) > 1e-4 &&
            std::fabs(std::fabs(r->phase[k] - p) - 3.0) > 1e-4)
            bad_phase++;
        /* (sample C is at the change's instant to the nanosecond: either) */
        if (k != C && r->tempo[k] != (k < C ? 2.0f : 1.5f)) bad_tempo++;
    }
    CHECK_EQ_I64(bad_beat, 0);
    CHECK_EQ_I64(bad_phase, 0);
    CHECK_EQ_I64(bad_tempo, 0);
    /* triggers: exactly at the sample nearest every half beat */
    int misses = 0, extra = 0, fired = 0;
    for (int k = 0; k < BLOCKS * BLOCK; k++) {
        double lo = want_beat(k - 0.5, 90.0) * 2, hi = want_beat(k + 0.5, 90.0) * 2;
        bool want = std::floor(hi) > std::floor(lo);
        if (want && r->trig[k] != 1.0f) misses++;
        if (!want && r->trig[k] != 0.0f) extra++;
        fired += r->trig[k] == 1.0f;
    }
    CHECK_EQ_I64(misses, 0);
    CHECK_EQ_I64(extra, 0);
    CHECK(fired >= 10);
    /* a grid instant on a sample: beat 1 at 120 bpm is sample 24000 */
    CHECK(r->trig[24000] == 1.0f && r->trig[23999] == 0.0f && r->trig[24001] == 0.0f);
    /* control rate: the block's first sample, a trigger in the block that
     * holds a beat's instant */
    int kbad = 0;
    for (int b = 0; b < BLOCKS; b++) {
        double lo = want_beat(b * BLOCK - 0.5, 90.0),
               hi = want_beat(b * BLOCK + BLOCK - 0.5, 90.0);
        bool want = std::floor(hi) > std::floor(lo);
        if ((r->trig_k[b] == 1.0f) != want) kbad++;
        if (std::fabs(r->beat_k[b] - want_beat(b * BLOCK, 90.0)) > 1e-3) kbad++;
        double p = std::fmod(want_beat(b * BLOCK, 90.0), 4.0);
        if (std::fabs(r->phase_k[b] - p) > 1e-4 &&
            std::fabs(std::fabs(r->phase_k[b] - p) - 4) > 1e-4)
            kbad++;
    }
    CHECK_EQ_I64(kbad, 0);
    fprintf(stderr,
            "  %d blocks at audio and control rate, %d triggers, all as computed\n",
            BLOCKS, fired);
    delete r;
}

static void controls(void)
{
#if SANITIZED
    fprintf(stderr, "  sanitizer build: skipped\n");
#else
    /* allocating in a calc function is seen */
    tutti__beat_reset();
    Run *r = new Run();
    setup_run(r);
    r->extra = bad_alloc;
    g_violations = 0;
    CHECK(run_rt(r));
    CHECK(g_violations.load() >= 1);
    /* a system call kills the thread: it never finishes */
    Run *s = new Run();
    setup_run(s);
    s->extra = bad_syscall;
    CHECK(!run_rt(s));
    fprintf(stderr, "  an allocation is counted, a system call kills the audio thread\n");
#endif
}

/* The line: anchors every 100 ms (75 blocks of 64 at 48 kHz), the block
 * clock 30 ppm fast against the wall clock, each anchor's time off by up to
 * +/- 0.2 us (a DLL's jitter); then a 5 ms jump (an xrun). */
static void line(void)
{
    tutti__beat_reset();
    double ns_per_block = BLOCK * SAMPLE_NS / (1 + 30e-6);
    uint64_t x = 12345;
    tutti_timeline tl;
    tutti_timeline_init(&tl, 120.0, 4.0, S0);
    for (int k = 0; k < 200; k++) {
        x = x * 6364136223846793005ull + 1442695040888963407ull;
        double jitter = ((double)(x >> 11) / 9007199254740992.0 - 0.5) * 400;
        uint32_t b = 5000 + 75u * (uint32_t)k;
        int64_t t = S0 + (int64_t)llround(75.0 * k * ns_per_block + jitter);
        /* at offset 10.5 samples: t is 10 samples after the block's start */
        tutti__beat_anchor_rt(b, t + (int64_t)llround(10 * SAMPLE_NS), 10, 0.5f, SR,
                              BLOCK);
        tutti__beat_update(0, &tl, 1);
    }
    tutti__beat_stats st;
    tutti__beat_stats_get(&st);
    CHECK_EQ_I64(st.anchors, 200);
    CHECK_EQ_I64(st.restarts, 0);
    CHECK(st.err_max_us < 1.0); /* the new anchor's own jitter, and the line's */
    CHECK(std::fabs(st.ppm - 30) < 0.5);
    const tutti__beat_model *m = tutti__beat_read_rt();
    CHECK(m->valid && std::fabs(m->block_ns - ns_per_block) < 0.01);
    fprintf(stderr, "  200 anchors: error %.3f us at most (%.3f rms), rate %+.2f ppm\n",
            st.err_max_us, st.err_rms_us, st.ppm);
    /* a jump: the line starts again from the anchor after it */
    for (int k = 200; k < 205; k++) {
        uint32_t b = 5000 + 75u * (uint32_t)k;
        int64_t t = S0 + (int64_t)llround(75.0 * k * ns_per_block) + 5 * TUTTI_MS;
        tutti__beat_anchor_rt(b, t + (int64_t)llround(10 * SAMPLE_NS), 10, 0.5f, SR,
                              BLOCK);
        tutti__beat_update(0, &tl, 1);
    }
    tutti__beat_stats_get(&st);
    CHECK(st.restarts >= 1);
    m = tutti__beat_read_rt();
    int64_t want = S0 + (int64_t)llround(75.0 * 204 * ns_per_block) + 5 * TUTTI_MS;
    CHECK(std::llabs(m->s0 - want) < 1000);
    /* clamped commands (a late anchor) are not taken */
    uint64_t before = st.anchors;
    tutti__beat_anchor_rt(99999, S0, 0, 0.1f, SR, BLOCK);
    tutti__beat_update(0, &tl, 1);
    tutti__beat_stats_get(&st);
    CHECK_EQ_I64(st.anchors, before);
}

/* An anchor from JACK's cycle times: the block's place in its cycle, on
 * the wall clock; nothing before the loop has measured the monotonic clock
 * against it, nor from a cycle that does not move forward. */
/* JACK's cycle times as jack_get_cycle_times would give them (tests). */
static uint64_t stub_c, stub_n;
static int cycles_stub(uint64_t *cycle_us, uint64_t *next_us)
{
    *cycle_us = stub_c;
    *next_us = stub_n;
    return 0;
}

static void jack_anchor(void)
{
    tutti__beat_reset();
    tutti_timeline tl;
    tutti_timeline_init(&tl, 120.0, 4.0, S0);
    tutti__beat_stats st;
    tutti__beat_anchor_jack_rt(4002, 1000000, 1005333, S0, 10, 0.5f, SR, BLOCK);
    tutti__beat_stats_get(&st);
    tutti__beat_update(0, &tl, 1); /* takes nothing: none was handed over */
    tutti__beat_stats_get(&st);
    CHECK_EQ_I64(st.anchors, 0);
    struct timespec m, w;
    clock_gettime(CLOCK_MONOTONIC, &m);
    clock_gettime(CLOCK_REALTIME, &w);
    int64_t m2w = ((int64_t)w.tv_sec + 2208988800LL) * TUTTI_S + w.tv_nsec -
                  ((int64_t)m.tv_sec * TUTTI_S + m.tv_nsec);
    /* a cycle of 256 samples = 4 blocks; block 4002 is its third (2 blocks in) */
    uint64_t c0 = 7000000000ull, c1 = c0 + 5333;
    tutti__beat_anchor_jack_rt(4002, c0, c1, S0, 10, 0.5f, SR, BLOCK);
    tutti__beat_anchor_jack_rt(4010, c1, c1, S0, 10, 0.5f, SR, BLOCK); /* not forward: not taken */
    tutti__beat_update(0, &tl, 1);
    tutti__beat_stats_get(&st);
    CHECK_EQ_I64(st.anchors, 1);
    const tutti__beat_model *mo = tutti__beat_read_rt();
    CHECK(mo->valid);
    CHECK_EQ_I64(mo->b0, 4002);
    int64_t want = (int64_t)c0 * 1000 + 2 * 5333000 / 4 + m2w;
    CHECK(std::llabs(mo->s0 - want) < 200000); /* the two clock readings, 0.2 ms */

    /* with JACK's cycle times read for every block (tutti__beat_jack_cycles):
     * the anchor's block where the anchor put it, the next one a quarter
     * cycle on, and a cycle JACK's DLL says starts 1 ms later, 1 ms later
     * (2 beats a second: 0.002 beats; a timeline starting at the anchor,
     * so that the beats are small enough for a float's precision) */
    tutti_timeline near;
    tutti_timeline_init(&near, 120.0, 4.0, mo->s0);
    tutti__beat_update(0, &near, 1);
    mo = tutti__beat_read_rt();
    float a, b0, b1;
    tutti__beat_fill_rt(mo, 4002, 1, BLOCK, 0, 1, &a, nullptr, nullptr, nullptr, nullptr);
    tutti__beat_jack_cycles(cycles_stub);
    stub_c = c0;
    stub_n = c1;
    tutti__beat_fill_rt(mo, 4002, 1, BLOCK, 0, 1, &b0, nullptr, nullptr, nullptr, nullptr);
    CHECK(std::fabs(b0 - a) < 1e-4); /* the clock converter, measured again: 50 us */
    tutti__beat_fill_rt(mo, 4003, 1, BLOCK, 0, 1, &b1, nullptr, nullptr, nullptr, nullptr);
    CHECK(std::fabs(b1 - b0 - 5.333e-3 / 4 * 2) < 1e-5);
    stub_c = c0 + 1000;
    stub_n = c1 + 1000;
    tutti__beat_fill_rt(mo, 4002, 1, BLOCK, 0, 1, &b1, nullptr, nullptr, nullptr, nullptr);
    CHECK(std::fabs(b1 - b0 - 0.002) < 1e-5);
    tutti__beat_jack_cycles(nullptr);
}

/* The calc functions reading JACK's cycle times for every block (the stub
 * as JACK2's shared memory read is), under the same watch: no allocation,
 * lock or system call, and the triggers still fire. */
static void jack_rt(void)
{
#if SANITIZED
    fprintf(stderr, "  sanitizer build: skipped\n");
#else
    tutti__beat_reset();
    tutti__beat_anchor_rt(1000, S0 + (int64_t)llround(10 * SAMPLE_NS), 10, 0.5f, SR,
                          BLOCK);
    publish(90.0, C);
    const tutti__beat_model *mo = tutti__beat_read_rt();
    struct timespec m, w;
    clock_gettime(CLOCK_MONOTONIC, &m);
    clock_gettime(CLOCK_REALTIME, &w);
    int64_t m2w = ((int64_t)w.tv_sec + 2208988800LL) * TUTTI_S + w.tv_nsec -
                  ((int64_t)m.tv_sec * TUTTI_S + m.tv_nsec);
    stub_c = (uint64_t)((mo->s0 - m2w) / 1000);
    stub_n = stub_c + 5333;
    tutti__beat_jack_cycles(cycles_stub);
    Run *r = new Run();
    setup_run(r);
    r->extra = nullptr;
    g_violations = 0;
    CHECK(run_rt(r));
    CHECK_EQ_I64(g_violations.load(), 0);
    int fired = 0;
    for (int k = 0; k < BLOCKS * BLOCK; k++) fired += r->trig[k] == 1.0f;
    CHECK(fired >= 1);
    tutti__beat_jack_cycles(nullptr);
    delete r;
#endif
}

/* Re-timing bundles for the server's clock (beat.h, tutti__beat_retime):
 * anchors from JACK's cycle times that also carry the server's own start
 * of the same block, its clock 3 ms ahead and 50 ppm fast against JACK's.
 * A bundle 100 ms ahead is moved by the difference there, within 0.1 us;
 * none when the line is stale, too short (one anchor), or the anchors came
 * without the server's time; a lone jump is ignored, a confirmed one (from
 * 0.1 ms) restarts the line; the hold's lead follows JACK's period;
 * a difference beyond TUTTI__BEAT_RETIME_MAX is clamped to it. */
static constexpr int64_t CYCLE_NS = 5333333; /* 256 samples, as JACK's DLL might say */

/* Block `b` (4 a cycle) at JACK time jack0 + ..., the server's start d(b)
 * later: the anchor the audio thread would hand over, at offset 10.5. */
static void jack_anchor_with(uint32_t b, uint64_t c0_us, int64_t m2w, double d_ns)
{
    uint64_t cyc = c0_us + (uint64_t)((b / 4) * CYCLE_NS / 1000);
    uint64_t next = cyc + CYCLE_NS / 1000;
    double k = b % 4;
    int64_t jack = (int64_t)cyc * 1000 + (int64_t)llround(k * (double)(next - cyc) * 1e3 / 4) + m2w;
    int64_t dll = jack + (int64_t)llround(d_ns);
    tutti__beat_anchor_jack_rt(b, cyc, next, dll + (int64_t)llround(10 * SAMPLE_NS), 10,
                               0.5f, SR, BLOCK);
}

static void retime(void)
{
    tutti__beat_reset();
    tutti_timeline tl;
    tutti_timeline_init(&tl, 120.0, 4.0, S0);
    tutti__beat_update(0, &tl, 1); /* measures the monotonic clock */
    const uint64_t c0 = 9000000000ull;
    /* no server times (the default clock): nothing moves */
    for (uint32_t b = 0; b < 40; b += 2)
        tutti__beat_anchor_rt(b, S0 + (int64_t)llround((b * BLOCK + 10) * SAMPLE_NS), 10,
                              0.5f, SR, BLOCK);
    tutti__beat_update(0, &tl, 1);
    int64_t last = tutti__beat_read_rt()->s0;
    CHECK_EQ_I64(tutti__beat_retime(last + 100 * TUTTI_MS, last), 0);
    CHECK_EQ_I64(tutti__beat_hold_lead(last, last), 0); /* nothing held back either */

    /* the monotonic clock's converter, read back from one anchor */
    tutti__beat_reset();
    tutti__beat_update(0, &tl, 1);
    jack_anchor_with(0, c0, 0, 0);
    tutti__beat_update(0, &tl, 1);
    int64_t m2w = tutti__beat_read_rt()->s0 - (int64_t)c0 * 1000;
    /* D(b) = 3 ms + 50 ppm of the block's time since block 0 */
    auto d_of = [](double b) { return 3e6 + 50e-6 * b * (CYCLE_NS / 4.0); };
    /* the first anchor with the server's time (after the converter's, a
     * jump of its own): alone, too few; with the next one, a line */
    uint32_t b = 4;
    jack_anchor_with(b, c0, m2w, d_of(b));
    b += 4;
    tutti__beat_update(0, &tl, 1);
    last = tutti__beat_read_rt()->s0;
    CHECK_EQ_I64(tutti__beat_retime(last, last), 0);
    jack_anchor_with(b, c0, m2w, d_of(b));
    tutti__beat_update(0, &tl, 1);
    last = tutti__beat_read_rt()->s0;
    CHECK(std::llabs(tutti__beat_retime(last, last) - (int64_t)llround(d_of(b))) < 100);
    b += 4;
    /* held back by 20 ms and two periods, as the anchors read them (the
     * correction moves bundles later here) */
    const int64_t hold = 20 * TUTTI_MS + 2 * (CYCLE_NS / 1000) * 1000;
    CHECK_EQ_I64(tutti__beat_hold_lead(last, last), hold);
    for (; b < 4 + 40 * 4; b += 4) jack_anchor_with(b, c0, m2w, d_of(b));
    tutti__beat_update(0, &tl, 1);
    const tutti__beat_model *mo = tutti__beat_read_rt();
    last = mo->s0;
    double at_b = (double)mo->b0 + 100e6 / mo->block_ns;
    int64_t want = (int64_t)llround(d_of(at_b));
    int64_t got = tutti__beat_retime(last + 100 * TUTTI_MS, last);
    CHECK(std::llabs(got - want) < 100);
    /* stale: the newest anchor 0.6 s old */
    CHECK_EQ_I64(tutti__beat_retime(last + 100 * TUTTI_MS, last + 600 * TUTTI_MS), 0);
    /* followed no further than a second ahead */
    int64_t far = tutti__beat_retime(last + 60 * TUTTI_S, last);
    CHECK(std::llabs(far - (int64_t)llround(d_of((double)mo->b0 + 1e9 / mo->block_ns))) < 100);

    /* a lone jump of 2 ms (one anchor off): ignored (the first anchor,
     * read back for the converter, was a jump of its own) */
    tutti__beat_stats st;
    tutti__beat_stats_get(&st);
    uint64_t restarts = st.retime_restarts;
    jack_anchor_with(b, c0, m2w, d_of(b) + 2e6);
    b += 4;
    jack_anchor_with(b, c0, m2w, d_of(b));
    tutti__beat_update(0, &tl, 1);
    last = tutti__beat_read_rt()->s0;
    got = tutti__beat_retime(last, last);
    CHECK(std::llabs(got - (int64_t)llround(d_of(b))) < 100);
    tutti__beat_stats_get(&st);
    CHECK_EQ_I64(st.retime_restarts, restarts);

    /* a lone step of 0.2 ms is ignored too; one the next anchor confirms
     * (the server's DLL reset at an xrun, by a fraction of a period) starts
     * a new line */
    jack_anchor_with(b, c0, m2w, d_of(b) + 2e5);
    b += 4;
    jack_anchor_with(b, c0, m2w, d_of(b));
    b += 4;
    tutti__beat_update(0, &tl, 1);
    last = tutti__beat_read_rt()->s0;
    CHECK(std::llabs(tutti__beat_retime(last, last) - (int64_t)llround(d_of(b - 4))) < 100);
    for (int i = 0; i < 2; i++, b += 4) jack_anchor_with(b, c0, m2w, d_of(b) + 2e5);
    tutti__beat_update(0, &tl, 1);
    last = tutti__beat_read_rt()->s0;
    CHECK(std::llabs(tutti__beat_retime(last, last) - (int64_t)llround(d_of(b - 4) + 2e5)) <
          100);
    tutti__beat_stats_get(&st);
    CHECK_EQ_I64(st.retime_restarts, restarts + 1);

    /* a jump of 14 ms: one anchor leaves the line as it was, the next
     * starts the new one, used at once */
    jack_anchor_with(b, c0, m2w, 14e6);
    b += 4;
    tutti__beat_update(0, &tl, 1);
    last = tutti__beat_read_rt()->s0;
    int64_t before = tutti__beat_retime(last, last);
    CHECK(before > 2 * TUTTI_MS && before < 4 * TUTTI_MS);
    jack_anchor_with(b, c0, m2w, 14e6);
    b += 4;
    tutti__beat_update(0, &tl, 1);
    last = tutti__beat_read_rt()->s0;
    CHECK(std::llabs(tutti__beat_retime(last, last) - 14 * TUTTI_MS) < 100);
    CHECK_EQ_I64(tutti__beat_hold_lead(last, last), hold);
    /* -14 ms: bundles earlier, so held back that much longer */
    for (int i = 0; i < 2; i++, b += 4) jack_anchor_with(b, c0, m2w, -14e6);
    tutti__beat_update(0, &tl, 1);
    last = tutti__beat_read_rt()->s0;
    CHECK(std::llabs(tutti__beat_retime(last, last) + 14 * TUTTI_MS) < 100);
    CHECK(std::llabs(tutti__beat_hold_lead(last, last) - (hold + 14 * TUTTI_MS)) < 100);
    /* 60 ms either way: clamped */
    for (int i = 0; i < 2; i++, b += 4) jack_anchor_with(b, c0, m2w, 60e6);
    tutti__beat_update(0, &tl, 1);
    last = tutti__beat_read_rt()->s0;
    CHECK_EQ_I64(tutti__beat_retime(last, last), TUTTI__BEAT_RETIME_MAX);
    for (int i = 0; i < 2; i++, b += 4) jack_anchor_with(b, c0, m2w, -60e6);
    tutti__beat_update(0, &tl, 1);
    last = tutti__beat_read_rt()->s0;
    CHECK_EQ_I64(tutti__beat_retime(last, last), -TUTTI__BEAT_RETIME_MAX);
    tutti__beat_stats_get(&st);
    CHECK_EQ_I64(st.retime_restarts, restarts + 5);
    CHECK(st.retimed >= 4);
    CHECK_EQ_I64(st.retime_clamped, 2);
}

int main(void)
{
    real_lock = reinterpret_cast<lock_fn>(dlsym(RTLD_NEXT, "pthread_mutex_lock"));
    real_trylock = reinterpret_cast<lock_fn>(dlsym(RTLD_NEXT, "pthread_mutex_trylock"));
    static InterfaceTable table;
    table.fDefineUnit = define_unit;
    world.mSampleRate = SR;
    world.mBufLength = BLOCK;
    world.mFullRate.mSampleRate = SR;
    world.mFullRate.mBufLength = BLOCK;
    tutti__ugens_load(&table);
    CHECK(def("TuttiBeat") && def("TuttiPhase") && def("TuttiTempo") && def("TuttiTrig"));
    RUN(line);
    RUN(outputs);
    RUN(controls);
    RUN(jack_anchor);
    RUN(jack_rt);
    RUN(retime);
    TEST_END();
}
