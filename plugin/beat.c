/*
 * The session's beat inside scsynth (see beat.h).
 */
#include "beat.h"

#include "osc.h"

#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define RING 256 /* anchors in flight, audio thread -> loop (power of two) */
#define DIRTY 4u

typedef struct anchor {
    uint32_t bufcounter;
    int buflen;
    int64_t t;
    int64_t dll; /* the same block's start by the server's own clock (NO_DLL: unknown) */
    double sr;
} anchor;

#define NO_DLL INT64_MIN
#define RETIME_WINDOW 8 /* anchors the server clock's difference is fitted over */
#define RETIME_MIN 2    /* anchors of a difference line before it is used */

static struct beat {
    /* audio thread -> loop: anchors */
    anchor ring[RING];
    _Alignas(64) _Atomic uint32_t head; /* the audio thread's */
    _Alignas(64) _Atomic uint32_t tail; /* the loop's */
    _Atomic uint64_t dropped;

    /* loop -> audio thread: the model, a triple buffer */
    tutti__beat_model buf[3];
    _Alignas(64) _Atomic uint32_t middle; /* index, | DIRTY when newer than front */
    uint32_t back;                        /* the loop's */
    uint32_t front;                       /* the audio thread's */

    /* JACK's cycle times for every block (tutti__beat_jack_cycles; NULL:
     * the line's) */
    _Atomic(tutti__beat_cycles_fn) cycles;

    /* JACK's period, ns, as the newest anchor read it (0: none yet) */
    _Atomic int64_t cycle_ns;

    /* CLOCK_REALTIME - JACK's monotonic clock, ns, as the loop last measured it (0:
     * not yet), for anchors from JACK's clock */
    _Atomic int64_t mono_to_wall;

    /* the audio thread's own: the newest anchor, used from its block on
     * (before the loop has seen it: after an xrun the server's block times
     * jump, and the UGens follow at the next anchor) */
    bool rt_valid;
    uint32_t rt_bufcounter;
    int64_t rt_t;

    /* the loop's: the line */
    int64_t wb[TUTTI__BEAT_WINDOW], wt[TUTTI__BEAT_WINDOW];
    uint32_t wn, wnext;
    int64_t b_last, t_last;
    uint32_t u_last; /* the last anchor's bufcounter (for unwrapping) */
    double slope;    /* ns per block */
    double nominal;  /* ns per block at the nominal rate */
    int buflen;
    tutti__beat_stats st;
    double err_sq;

    /* the server's own clock minus the line's clock, per block
     * (TUTTI_UGEN_CLOCK=jack: scsynth's DLL minus JACK's), a line of its own */
    int64_t db[RETIME_WINDOW], dd[RETIME_WINDOW];
    uint32_t dn, dnext;
    bool d_suspect; /* a jump not yet confirmed: */
    int64_t d_suspect_b, d_suspect_d;
    double d_at_last, d_slope; /* the fit at B.b_last, ns; ns per block */

    /* the non-real-time side's state above (the line, its window, the
     * difference line, the statistics) is taken in by the loop and by
     * tutti__beat_retime on any thread (it takes the newest anchors in
     * itself), both under this; the audio thread never takes it */
    pthread_mutex_t mu;
    uint64_t retimed, clamped;
    int64_t retime_last;
    /* an anchor has carried the server's own start (JACK's clock): until
     * then nothing is re-timed, and a bundle costs no lock */
    _Atomic bool diffs;
} B = {.back = 0, .front = 1, .middle = 2, .mu = PTHREAD_MUTEX_INITIALIZER};

/* ------------------------------------------------------- the audio thread */

/* Block `bufcounter` starts at wall time t (ns since 1900). */
static void put_rt(uint32_t bufcounter, int64_t t, int64_t dll, double sr, int buflen)
{
    B.rt_valid = true;
    B.rt_bufcounter = bufcounter;
    B.rt_t = t;
    uint32_t h = atomic_load_explicit(&B.head, memory_order_relaxed);
    uint32_t tl = atomic_load_explicit(&B.tail, memory_order_acquire);
    if (h - tl >= RING) {
        atomic_fetch_add_explicit(&B.dropped, 1, memory_order_relaxed);
        return;
    }
    if (dll != NO_DLL) atomic_store_explicit(&B.diffs, true, memory_order_relaxed);
    anchor *a = &B.ring[h % RING];
    a->bufcounter = bufcounter;
    a->t = t;
    a->dll = dll;
    a->sr = sr;
    a->buflen = buflen;
    atomic_store_explicit(&B.head, h + 1, memory_order_release);
}

/* The start of the block a command timed `t` runs in, by the server's clock
 * (NO_DLL when the command's offset cannot be trusted). */
static int64_t block_start(int64_t t, int offset, float subsample, double sr, int buflen)
{
    /* scsynth clamps a command that falls outside its block (a late one) to
     * the block's first or last sample: a time read back from those could
     * be wrong, so they are not used */
    if (offset <= 0 || offset >= buflen - 1) return NO_DLL;
    double after = ((double)offset + (double)subsample - 0.5) / sr * 1e9;
    return t - (int64_t)llround(after);
}

void tutti__beat_anchor_rt(uint32_t bufcounter, int64_t t, int offset, float subsample,
                           double sr, int buflen)
{
    if (!(sr > 0) || buflen <= 0) return;
    int64_t start = block_start(t, offset, subsample, sr, buflen);
    if (start != NO_DLL) put_rt(bufcounter, start, NO_DLL, sr, buflen);
}

/* The start of block `bufcounter` of JACK's cycle [cycle_us, next_us), wall
 * clock ns since 1900, with `blocks` blocks a cycle: scsynth runs a whole
 * number of blocks per JACK cycle, counting mBufCounter from 0, so a
 * block's place in its cycle is its number modulo that. */
static int64_t jack_block_start(uint32_t bufcounter, uint64_t cycle_us, uint64_t next_us,
                                long blocks, int64_t m2w)
{
    double cycle_ns = (double)(next_us - cycle_us) * 1e3;
    double k = (double)(bufcounter % (uint32_t)blocks);
    return (int64_t)cycle_us * 1000 + (int64_t)llround(k * cycle_ns / (double)blocks) + m2w;
}

void tutti__beat_anchor_jack_rt(uint32_t bufcounter, uint64_t cycle_us, uint64_t next_us,
                                int64_t t, int offset, float subsample, double sr,
                                int buflen)
{
    int64_t m2w = atomic_load_explicit(&B.mono_to_wall, memory_order_relaxed);
    if (!(sr > 0) || buflen <= 0 || !m2w || next_us <= cycle_us) return;
    atomic_store_explicit(&B.cycle_ns, (int64_t)(next_us - cycle_us) * 1000,
                          memory_order_relaxed);
    long blocks = lround((double)(next_us - cycle_us) * 1e-6 * sr / buflen);
    if (blocks < 1) return;
    int64_t at = jack_block_start(bufcounter, cycle_us, next_us, blocks, m2w);
    put_rt(bufcounter, at, block_start(t, offset, subsample, sr, buflen), sr, buflen);
}

void tutti__beat_jack_cycles(tutti__beat_cycles_fn fn)
{
    atomic_store_explicit(&B.cycles, fn, memory_order_release);
}

/* Block `bufcounter`'s start from JACK's current cycle, ns after the
 * model's s0, and its sample length (false: not on JACK's clock, or not
 * known yet). */
static bool jack_start_rt(const tutti__beat_model *m, uint32_t bufcounter,
                          int samples_per_block, double *start, double *sn)
{
    tutti__beat_cycles_fn fn = atomic_load_explicit(&B.cycles, memory_order_acquire);
    int64_t m2w = atomic_load_explicit(&B.mono_to_wall, memory_order_relaxed);
    uint64_t c, n;
    if (!fn || !m2w || !(m->nominal_ns > 0) || samples_per_block <= 0 || fn(&c, &n) ||
        n <= c)
        return false;
    long blocks = lround((double)(n - c) * 1e3 / m->nominal_ns);
    if (blocks < 1) return false;
    int64_t at = jack_block_start(bufcounter, c, n, blocks, m2w);
    *start = (double)(at + m->offset_ns - m->s0);
    *sn = (double)(n - c) * 1e3 / (double)blocks / samples_per_block;
    return true;
}

const tutti__beat_model *tutti__beat_read_rt(void)
{
    if (atomic_load_explicit(&B.middle, memory_order_relaxed) & DIRTY) {
        uint32_t prev =
            atomic_exchange_explicit(&B.middle, B.front, memory_order_acq_rel);
        B.front = prev & 3u;
    }
    return &B.buf[B.front];
}

int64_t tutti__beat_block_rt(const tutti__beat_model *m, uint32_t bufcounter)
{
    return m->b0 + (int32_t)(bufcounter - (uint32_t)m->b0);
}

/* The timeline in force `rel` ns after the model's s0 (the last one whose
 * t0 is not after it). */
static uint32_t tl_at(const tutti__beat_model *m, double rel)
{
    uint32_t k = 0;
    for (uint32_t j = 1; j < m->ntl; j++) {
        if ((double)(m->s0 - m->tl[j].t0) + rel < 0) break;
        k = j;
    }
    return k;
}

static double beat_rel(const tutti__beat_model *m, uint32_t k, double rel)
{
    const tutti_timeline *tl = &m->tl[k];
    return tl->beat0 + ((double)(m->s0 - tl->t0) + rel) * tl->bpm / 60e9;
}

static float phase_of(double beat, double q)
{
    double p = fmod(beat, q);
    if (p < 0) {
        p += q;
        if (p >= q) p = 0;
    }
    return (float)p;
}

/* The trigger's grid index to go on from: the last one passed, unless there
 * is none, the division changed, or the beat went back by more than a step
 * (a new timeline, not the few samples an xrun moves it). */
static double trig_from(tutti__beat_trig *st, double div, double g_here)
{
    if (!st || isnan(st->g) || st->div != div || g_here < st->g - 1) return g_here;
    return st->g;
}

void tutti__beat_fill_rt(const tutti__beat_model *m, uint32_t bufcounter, int n,
                         int samples_per_block, double quantum, double division,
                         float *beat, float *phase, float *tempo, float *trig,
                         tutti__beat_trig *st)
{
    if (!m->valid || m->ntl == 0 || n <= 0) {
        if (st) st->g = NAN;
        for (int i = 0; i < n; i++) {
            if (beat) beat[i] = 0;
            if (phase) phase[i] = 0;
            if (tempo) tempo[i] = 0;
            if (trig) trig[i] = 0;
        }
        return;
    }
    /* on JACK's clock: from its current cycle; otherwise from the newest
     * anchor: the audio thread's own when it has one, else the model's */
    double start, sn = m->sample_ns;
    if (!jack_start_rt(m, bufcounter, samples_per_block, &start, &sn)) {
        int64_t blk = tutti__beat_block_rt(m, bufcounter);
        start = (double)(blk - m->b0) * m->block_ns;
        if (B.rt_valid) {
            int64_t rb = tutti__beat_block_rt(m, B.rt_bufcounter);
            if (rb <= blk)
                start = (double)(B.rt_t + m->offset_ns - m->s0) +
                        (double)(blk - rb) * m->block_ns;
        }
    }
    double half = sn / 2;
    double div = division > 0 && isfinite(division) ? division : 1.0;
    bool own_q = !(quantum > 0 && isfinite(quantum));
    if (n == 1) { /* control rate: the block's first sample */
        uint32_t k = tl_at(m, start);
        double b = beat_rel(m, k, start);
        if (beat) beat[0] = (float)b;
        if (phase) phase[0] = phase_of(b, own_q ? m->tl[k].quantum : quantum);
        if (tempo) tempo[0] = (float)(m->tl[k].bpm / 60.0);
        if (trig) {
            double a = start - half, z = start + samples_per_block * sn - half;
            double ga = floor(beat_rel(m, tl_at(m, a), a) * div);
            double gz = floor(beat_rel(m, tl_at(m, z), z) * div);
            double from = trig_from(st, div, ga);
            trig[0] = gz > from ? 1.0f : 0.0f;
            if (st) {
                st->g = gz > from || gz < from - 1 ? gz : from;
                st->div = div;
            }
        }
        return;
    }
    /* audio rate: per sample, switching timelines where a change starts */
    double prev = start - half;
    double gprev = trig_from(st, div, floor(beat_rel(m, tl_at(m, prev), prev) * div));
    uint32_t k = tl_at(m, start);
    for (int i = 0; i < n; i++) {
        double rel = start + i * sn;
        while (k + 1 < m->ntl && (double)(m->s0 - m->tl[k + 1].t0) + rel >= 0)
            k++;
        double b = beat_rel(m, k, rel);
        if (beat) beat[i] = (float)b;
        if (phase) phase[i] = phase_of(b, own_q ? m->tl[k].quantum : quantum);
        if (tempo) tempo[i] = (float)(m->tl[k].bpm / 60.0);
        if (trig) {
            double mid = rel + half;
            double g = floor(beat_rel(m, tl_at(m, mid), mid) * div);
            /* once per grid index, even when the block times jump (an xrun
             * moves them by milliseconds): a step skipped over fires late,
             * one passed again does not fire twice */
            trig[i] = g > gprev ? 1.0f : 0.0f;
            if (g > gprev || g < gprev - 1) gprev = g;
        }
    }
    if (trig && st) {
        st->g = gprev;
        st->div = div;
    }
}

/* ------------------------------------------------ the non-real-time side */

size_t tutti__beat_anchor_packet(uint8_t *out, size_t cap, int64_t at)
{
    if (cap < 20) return 0;
    uint64_t ntp = tutti_time_to_ntp(at);
    size_t n = tutti__osc_write(out + 20, cap - 20, "/cmd", "sii", "tutti_anchor",
                                (int32_t)(uint32_t)(ntp >> 32), (int32_t)(uint32_t)ntp);
    if (!n) return 0;
    memcpy(out, "#bundle\0", 8);
    tutti__osc_wr64(out + 8, ntp);
    tutti__osc_wr32(out + 16, (uint32_t)n);
    return 20 + n;
}

static void restart(int64_t b, int64_t t)
{
    B.wn = 0;
    B.wnext = 0;
    B.slope = B.nominal;
    B.b_last = b;
    B.t_last = t;
}

/* Least squares over n points, both coordinates from (x0, y0): the slope
 * (`none` when there are too few points) and the line's value at x0. */
static double lsq(const int64_t *xs, const int64_t *ys, uint32_t n, int64_t x0, int64_t y0,
                  double none, double *at0)
{
    if (at0) *at0 = 0;
    if (n < 2) return none;
    double sx = 0, sy = 0, sxx = 0, sxy = 0;
    for (uint32_t i = 0; i < n; i++) {
        double x = (double)(xs[i] - x0), y = (double)(ys[i] - y0);
        sx += x;
        sy += y;
        sxx += x * x;
        sxy += x * y;
    }
    double d = n * sxx - sx * sx;
    if (!(d > 0)) return none;
    double slope = (n * sxy - sx * sy) / d;
    if (at0) *at0 = (sy - slope * sx) / n;
    return slope;
}

/* The block line: over the window, from the newest anchor. */
static double fit(void)
{
    return lsq(B.wb, B.wt, B.wn, B.b_last, B.t_last, B.nominal, NULL);
}

/* The server clock's difference from the line's, block `b` (B.b_last, just
 * taken in): a jump of more than TUTTI__BEAT_RETIME_JUMP (the server's DLL
 * reset at an xrun, or one anchor read from the wrong JACK cycle) starts its
 * line afresh once the next anchor confirms it; a lone one is dropped. */
static void take_diff(int64_t b, int64_t d)
{
    bool jump = false;
    if (B.dn >= 1) {
        uint32_t last = (B.dnext + RETIME_WINDOW - 1) % RETIME_WINDOW;
        double predicted = (double)B.dd[last] + B.d_slope * (double)(b - B.db[last]);
        jump = fabs((double)d - predicted) > TUTTI__BEAT_RETIME_JUMP;
    }
    if (jump) {
        if (!B.d_suspect || llabs(d - B.d_suspect_d) > TUTTI__BEAT_RETIME_JUMP) {
            B.d_suspect = true;
            B.d_suspect_b = b;
            B.d_suspect_d = d;
            return;
        }
        B.db[0] = B.d_suspect_b;
        B.dd[0] = B.d_suspect_d;
        B.dnext = 1;
        B.dn = 1;
        B.st.retime_restarts++;
    }
    B.d_suspect = false;
    B.db[B.dnext] = b;
    B.dd[B.dnext] = d;
    B.dnext = (B.dnext + 1) % RETIME_WINDOW;
    if (B.dn < RETIME_WINDOW) B.dn++;
    B.d_slope = lsq(B.db, B.dd, B.dn, b, d, 0, &B.d_at_last);
    B.d_at_last += (double)d;
}

static void take(const anchor *a)
{
    double nominal = a->buflen / a->sr * 1e9;
    bool first = B.st.anchors == 0 || B.buflen != a->buflen || B.nominal != nominal;
    B.st.anchors++;
    int64_t b =
        first ? (int64_t)a->bufcounter : B.b_last + (int32_t)(a->bufcounter - B.u_last);
    B.u_last = a->bufcounter;
    if (first) {
        B.nominal = nominal;
        B.buflen = a->buflen;
        restart(b, a->t);
        B.dn = B.dnext = 0;
        B.d_suspect = false;
    } else {
        double predicted = (double)B.t_last + (double)(b - B.b_last) * B.slope;
        double err = (double)a->t - predicted;
        if (fabs(err) > TUTTI__BEAT_JUMP || b <= B.b_last) {
            B.st.restarts++;
            restart(b, a->t);
        } else if (B.wn >= 2) {
            double us = err / 1e3;
            B.st.measured++;
            B.st.err_last_us = us;
            if (fabs(us) > B.st.err_max_us) B.st.err_max_us = fabs(us);
            B.err_sq += us * us;
            B.st.err_rms_us = sqrt(B.err_sq / (double)B.st.measured);
        }
    }
    B.wb[B.wnext] = b;
    B.wt[B.wnext] = a->t;
    B.wnext = (B.wnext + 1) % TUTTI__BEAT_WINDOW;
    if (B.wn < TUTTI__BEAT_WINDOW) B.wn++;
    B.b_last = b;
    B.t_last = a->t;
    B.slope = fit();
    B.st.ppm = (B.nominal / B.slope - 1) * 1e6;
    if (a->dll != NO_DLL) take_diff(b, a->dll - a->t);
}

/* JACK's own clock, when the plugin was told how to read it: the clock
 * whose readings match it (JACK2 on Linux reads CLOCK_MONOTONIC_RAW or
 * CLOCK_MONOTONIC, depending on its version; the two differ by what NTP
 * has slewed since boot, often hundreds of milliseconds). */
static uint64_t (*jack_now_us)(void);

void tutti__beat_jack_clock(uint64_t (*now_us)(void))
{
    jack_now_us = now_us;
}

static clockid_t jack_clock(void)
{
    if (!jack_now_us) return CLOCK_MONOTONIC;
    struct timespec m, r;
    clock_gettime(CLOCK_MONOTONIC, &m);
    clock_gettime(CLOCK_MONOTONIC_RAW, &r);
    int64_t j = (int64_t)jack_now_us() * 1000;
    int64_t dm = j - ((int64_t)m.tv_sec * TUTTI_S + m.tv_nsec);
    int64_t dr = j - ((int64_t)r.tv_sec * TUTTI_S + r.tv_nsec);
    return llabs(dr) < llabs(dm) ? CLOCK_MONOTONIC_RAW : CLOCK_MONOTONIC;
}

/* CLOCK_REALTIME - JACK's clock in ns since 1900, from the closest of
 * three readings. */
static int64_t mono_to_wall(void)
{
    clockid_t id = jack_clock();
    int64_t best = 0, gap = INT64_MAX;
    for (int i = 0; i < 3; i++) {
        struct timespec a, w, b;
        clock_gettime(id, &a);
        clock_gettime(CLOCK_REALTIME, &w);
        clock_gettime(id, &b);
        int64_t na = (int64_t)a.tv_sec * TUTTI_S + a.tv_nsec;
        int64_t nb = (int64_t)b.tv_sec * TUTTI_S + b.tv_nsec;
        int64_t nw = ((int64_t)w.tv_sec + 2208988800LL) * TUTTI_S + w.tv_nsec;
        if (nb - na < gap) {
            gap = nb - na;
            best = nw - (na + (nb - na) / 2);
        }
    }
    return best;
}

/* Takes in what the audio thread handed over (B.mu held). */
static void drain(void)
{
    uint32_t h = atomic_load_explicit(&B.head, memory_order_acquire);
    uint32_t t = atomic_load_explicit(&B.tail, memory_order_relaxed);
    for (; t != h; t++)
        take(&B.ring[t % RING]);
    atomic_store_explicit(&B.tail, t, memory_order_release);
    B.st.dropped = atomic_load_explicit(&B.dropped, memory_order_relaxed);
}

void tutti__beat_update(int64_t offset_ns, const tutti_timeline *tl, uint32_t ntl)
{
    atomic_store_explicit(&B.mono_to_wall, mono_to_wall(), memory_order_relaxed);
    pthread_mutex_lock(&B.mu);
    drain();
    tutti__beat_model *m = &B.buf[B.back];
    m->valid = B.st.anchors > 0;
    m->b0 = B.b_last;
    m->s0 = B.t_last + offset_ns;
    m->offset_ns = offset_ns;
    m->block_ns = B.slope;
    m->sample_ns = B.buflen > 0 ? B.slope / B.buflen : 0;
    m->nominal_ns = B.nominal;
    pthread_mutex_unlock(&B.mu);
    m->ntl = ntl < TUTTI__BEAT_TIMELINES ? ntl : TUTTI__BEAT_TIMELINES;
    if (m->ntl) memcpy(m->tl, tl, m->ntl * sizeof tl[0]);
    uint32_t prev =
        atomic_exchange_explicit(&B.middle, B.back | DIRTY, memory_order_acq_rel);
    B.back = prev & 3u;
}

int64_t tutti__beat_retime_by(const tutti__beat_retime_line *rl, int64_t at, int64_t now)
{
    if (!rl->valid || !(rl->block_ns > 0) || now - rl->t > TUTTI__BEAT_RETIME_STALE ||
        now < rl->t - TUTTI__BEAT_RETIME_STALE)
        return 0;
    /* the difference at `at`, as its line goes on (not further than
     * TUTTI__BEAT_RETIME_AHEAD past the newest anchor) */
    int64_t ahead = at - rl->t;
    if (ahead > TUTTI__BEAT_RETIME_AHEAD) ahead = TUTTI__BEAT_RETIME_AHEAD;
    if (ahead < -TUTTI__BEAT_RETIME_AHEAD) ahead = -TUTTI__BEAT_RETIME_AHEAD;
    double d = rl->d + rl->d_per_block * ((double)ahead / rl->block_ns);
    if (!isfinite(d)) return 0;
    if (d > TUTTI__BEAT_RETIME_MAX) return TUTTI__BEAT_RETIME_MAX;
    if (d < -TUTTI__BEAT_RETIME_MAX) return -TUTTI__BEAT_RETIME_MAX;
    return (int64_t)llround(d);
}

/* The correction for `at` from the newest line (B.mu held); *valid: there
 * was one. */
static int64_t retime_now(int64_t at, int64_t now, bool *valid)
{
    /* the newest anchors first: the line is followed from as near the
     * bundle's time as can be (the difference can swing by thousands of
     * ppm for seconds after an xrun: docs/benchmarks.md) */
    drain();
    tutti__beat_retime_line rl = {0};
    if (B.dn >= RETIME_MIN) {
        rl.valid = true;
        rl.t = B.t_last;
        rl.block_ns = B.slope;
        rl.d = B.d_at_last;
        rl.d_per_block = B.d_slope;
    }
    *valid = rl.valid;
    return tutti__beat_retime_by(&rl, at, now);
}

int64_t tutti__beat_retime(int64_t at, int64_t now)
{
    if (!atomic_load_explicit(&B.diffs, memory_order_relaxed)) return 0; /* scsynth's clock */
    pthread_mutex_lock(&B.mu);
    bool valid;
    int64_t d = retime_now(at, now, &valid);
    if (valid) {
        if (d) B.retimed++;
        if (d == TUTTI__BEAT_RETIME_MAX || d == -TUTTI__BEAT_RETIME_MAX) B.clamped++;
        B.retime_last = d;
    }
    pthread_mutex_unlock(&B.mu);
    return d;
}

int64_t tutti__beat_hold_lead(int64_t at, int64_t now)
{
    if (!atomic_load_explicit(&B.diffs, memory_order_relaxed)) return 0;
    int64_t cycle = atomic_load_explicit(&B.cycle_ns, memory_order_relaxed);
    if (cycle <= 0 || cycle > TUTTI_S) return 0;
    pthread_mutex_lock(&B.mu);
    bool valid;
    int64_t d = retime_now(at, now, &valid);
    pthread_mutex_unlock(&B.mu);
    return TUTTI__BEAT_HOLD_MIN + 2 * cycle + (d < 0 ? -d : 0);
}

void tutti__beat_stats_get(tutti__beat_stats *st)
{
    pthread_mutex_lock(&B.mu);
    *st = B.st;
    st->retimed = B.retimed;
    st->retime_clamped = B.clamped;
    st->retime_last_us = (double)B.retime_last / 1e3;
    pthread_mutex_unlock(&B.mu);
}

void tutti__beat_reset(void)
{
    pthread_mutex_lock(&B.mu);
    B.retimed = B.clamped = 0;
    B.retime_last = 0;
    size_t upto = offsetof(struct beat, mu);
    memset((void *)&B, 0, upto);
    B.back = 0;
    B.front = 1;
    atomic_store(&B.middle, 2);
    pthread_mutex_unlock(&B.mu);
}
