/* The stage node; see node.h for the design. */
#include "node.h"

#include "dll.h"

#include <math.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#define SCHEDULE 4     /* timelines published: in force + changes ahead */
#define MIDI_RING 1024 /* bytes (power of two) */
#define FOOT_RING 64   /* footswitch edges (power of two) */
#define CLICK_MS 25.0
#define DEBOUNCE_MS 15.0
#define MAX_POINTS 64 /* grid points one stream may emit in one block */
#define TAP_RESET (2 * TUTTI_S)
#define TAP_SPREAD 0.10 /* intervals within 10 % of their mean */
#define LATE_FOR (2 * TUTTI_S)

/* -------------------------------------------- what the loop publishes */

typedef struct snap {
    bool usable; /* joined and its clock locked */
    int led;
    uint32_t joins; /* incarnation: a new one resynchronises the grids */
    tutti_clock_estimate clock;
    tutti_timeline tl[SCHEDULE];
    uint32_t ntl;
} snap;

/* Link's TripleBuffer in C: the writer fills its back slot and swaps it with
 * the middle one, marking it fresh; the reader swaps its front slot with the
 * middle one only when it is fresh. Wait-free on both sides. */
#define FRESH 4u
typedef struct tbuf {
    snap slot[3];
    atomic_uint middle;
    unsigned back, front; /* owned by the writer, the reader */
} tbuf;

static void tbuf_write(tbuf *t, const snap *s)
{
    t->slot[t->back] = *s;
    unsigned old =
        atomic_exchange_explicit(&t->middle, t->back | FRESH, memory_order_acq_rel);
    t->back = old & 3u;
}

static const snap *tbuf_read(tbuf *t)
{
    if (atomic_load_explicit(&t->middle, memory_order_relaxed) & FRESH) {
        unsigned old =
            atomic_exchange_explicit(&t->middle, t->front, memory_order_acq_rel);
        t->front = old & 3u;
    }
    return &t->slot[t->front];
}

/* ------------------------------------------------------- SPSC rings */

typedef struct foot_edge {
    tutti_time host; /* host time of the frame the edge was read in */
    bool pressed;
} foot_edge;

typedef struct rings {
    tutti_node_midi midi[MIDI_RING];
    atomic_uint midi_head, midi_tail; /* head: audio writes; tail: loop */
    foot_edge foot[FOOT_RING];
    atomic_uint foot_head, foot_tail;
} rings;

/* Counters the audio side owns and the loop side reads (one writer: a
 * relaxed load and store, no read-modify-write). */
typedef struct counters {
    atomic_uint_fast64_t blocks, missed, pulses, bars, clicks, ticks, skipped;
    atomic_uint_fast64_t midi_dropped, foot_dropped;
    _Atomic double period, err;
    atomic_bool locked;
} counters;

#define BUMP(x, by)                                                                      \
    atomic_store_explicit(&(x), atomic_load_explicit(&(x), memory_order_relaxed) + (by), \
                          memory_order_relaxed)
#define GET(x) atomic_load_explicit(&(x), memory_order_relaxed)

/* -------------------------------------------------------- the node */

enum { F_BEAT = 1, F_BAR = 2, F_CLICK = 4, F_ACCENT = 8 };

typedef struct grid {
    bool synced;
    int64_t k; /* next grid point: beat k / per_beat */
    double per_beat;
} grid;

struct tutti_node {
    tutti_node_config cfg;
    tbuf tb;
    rings r;
    counters c;

    /* audio side */
    tutti_hw_dll dll;
    bool had_block;
    uint64_t next_frame; /* frames_elapsed the next block should have */
    uint32_t joins;      /* of the snapshot the grids were synced with */
    grid pulse, midi;
    bool midi_playing;
    uint8_t flags[TUTTI_NODE_MAX_FRAMES];
    float *click[2]; /* plain, accent */
    uint32_t click_len, click_pos;
    int click_which; /* -1: silent */
    uint32_t pulse_frames, beat_left, bar_left;
    bool foot_state;
    uint64_t foot_changed; /* frame of the last accepted edge */
    uint32_t debounce_frames;

    /* loop side */
    snap pub;
    tutti_time taps[4];
    uint32_t ntaps;
    tutti_time pressed_at;
    bool pressed;
    tutti_time late_until;
    uint64_t last_late, last_missed;
    uint64_t taps_total, proposals, refused_taps, toggles;
    double last_tap_bpm;
};

void tutti_node_config_init(tutti_node_config *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->sample_rate = 44100;
    cfg->output_latency_frames = 32;
    cfg->division = 1;
    cfg->click_channel = 0;
    cfg->click_gain = 0.5f;
    cfg->accent_gain = 1.0f;
    cfg->beat_pin = 0;
    cfg->bar_pin = 1;
    cfg->beat_analog = 0;
    cfg->bar_analog = 1;
    cfg->pulse_ms = 5;
    cfg->led_pin = 2;
    cfg->foot_pin = 3;
    cfg->hold_ms = 1000;
    cfg->midi_clock = true;
    cfg->pulses_when_stopped = true;
}

int tutti_node_create(tutti_node **out, const tutti_node_config *cfg)
{
    if (!(cfg->sample_rate >= 8000 && cfg->sample_rate <= 192000) || cfg->division < 1 ||
        cfg->division > 16 || !(cfg->pulse_ms > 0 && cfg->pulse_ms < 1000) ||
        !(cfg->output_latency_frames >= 0) || cfg->beat_pin > 15 || cfg->bar_pin > 15 ||
        cfg->led_pin > 15 || cfg->foot_pin > 15)
        return TUTTI_EINVAL;
    tutti_node *n = calloc(1, sizeof *n);
    if (!n) return TUTTI_ENOMEM;
    n->cfg = *cfg;
    n->click_len = (uint32_t)(cfg->sample_rate * CLICK_MS / 1000);
    for (int a = 0; a < 2; a++) {
        n->click[a] = malloc(n->click_len * sizeof(float));
        if (!n->click[a]) {
            tutti_node_destroy(n);
            return TUTTI_ENOMEM;
        }
        /* A decaying burst, 1 kHz (1.5 kHz on the bar), starting at its peak so
         * its first frame is the beat's. */
        double hz = a ? 1500 : 1000, gain = a ? cfg->accent_gain : cfg->click_gain;
        for (uint32_t i = 0; i < n->click_len; i++) {
            double t = i / cfg->sample_rate;
            n->click[a][i] = (float)(gain * cos(2 * M_PI * hz * t) * exp(-t / 0.004));
        }
    }
    n->click_which = -1;
    n->pulse_frames = (uint32_t)ceil(cfg->sample_rate * cfg->pulse_ms / 1000);
    n->debounce_frames = (uint32_t)(cfg->sample_rate * DEBOUNCE_MS / 1000);
    n->pulse.per_beat = cfg->division;
    n->midi.per_beat = 24;
    tutti_hw_dll_init(&n->dll, cfg->sample_rate);
    atomic_init(&n->tb.middle, 1);
    n->tb.back = 0;
    n->tb.front = 2;
    *out = n;
    return 0;
}

void tutti_node_destroy(tutti_node *n)
{
    if (!n) return;
    free(n->click[0]);
    free(n->click[1]);
    free(n);
}

/* ====================================================== the audio side */

/* Session time of the block's first frame as whole + fraction (ns) and
 * session ns per frame, from the fit and the member's estimate. */
typedef struct mapping {
    tutti_time s0;
    double s0_frac, spf;
} mapping;

static mapping map_block(const tutti_node *n, const snap *s, uint64_t frame)
{
    tutti_time h;
    double hf;
    tutti_hw_dll_time(&n->dll, frame, &h, &hf);
    hf += n->cfg.output_latency_frames * n->dll.period;
    const tutti_clock_estimate *e = &s->clock;
    double x = hf + e->drift * ((double)(h - e->ref_local) + hf);
    double w = floor(x);
    return (mapping){h + e->offset_ns + (tutti_time)w, x - w,
                     n->dll.period * (1 + e->drift)};
}

/* The timeline that holds at beat g (beats are continuous through changes). */
static const tutti_timeline *tl_at_beat(const snap *s, double g)
{
    uint32_t i = 0;
    while (i + 1 < s->ntl && s->tl[i + 1].beat0 <= g)
        i++;
    return &s->tl[i];
}

static const tutti_timeline *tl_at_time(const snap *s, tutti_time t)
{
    uint32_t i = 0;
    while (i + 1 < s->ntl && s->tl[i + 1].t0 <= t)
        i++;
    return &s->tl[i];
}

/* Frame offset (from the block's first frame, fractional) of beat g. */
static double frame_of_beat(const snap *s, const mapping *m, double g)
{
    const tutti_timeline *tl = tl_at_beat(s, g);
    double ns = (double)(tl->t0 - m->s0) + (g - tl->beat0) * 60e9 / tl->bpm - m->s0_frac;
    return ns / m->spf;
}

/* The first grid point at or after frame -0.5 of this block. */
static void grid_sync(grid *gr, const snap *s, const mapping *m)
{
    tutti_time t = m->s0 - (tutti_time)llround(0.5 * m->spf);
    double beat = tutti_timeline_beat_at(tl_at_time(s, t), t);
    gr->k = (int64_t)ceil(beat * gr->per_beat - 1e-9);
    gr->synced = true;
}

static bool on_bar(double g, double quantum)
{
    double q = g / quantum;
    return fabs(q - nearbyint(q)) < 1e-9;
}

static void midi_put(tutti_node *n, uint64_t frame, uint8_t byte)
{
    unsigned head = atomic_load_explicit(&n->r.midi_head, memory_order_relaxed);
    unsigned tail = atomic_load_explicit(&n->r.midi_tail, memory_order_acquire);
    if (head - tail == MIDI_RING) {
        BUMP(n->c.midi_dropped, 1);
        return;
    }
    n->r.midi[head & (MIDI_RING - 1)] = (tutti_node_midi){frame, byte};
    atomic_store_explicit(&n->r.midi_head, head + 1, memory_order_release);
}

/* Emits the grid points that fall in this block; returns false when the
 * grid has lost its place (the mapping jumped) and must be synced again. */
static bool grid_run(tutti_node *n, grid *gr, const snap *s, const mapping *m,
                     uint32_t frames, uint64_t first, bool is_midi)
{
    for (int i = 0; i < MAX_POINTS; i++) {
        double g = (double)gr->k / gr->per_beat;
        double x = frame_of_beat(s, m, g);
        double spacing = 60.0 * n->cfg.sample_rate / tl_at_beat(s, g)->bpm / gr->per_beat;
        if (x > frames + 2 * spacing + 1 || x < -4 * spacing - 1) return false;
        double f = floor(x + 0.5);
        if (f >= frames) return true;
        if (f < 0) { /* its frame was never rendered (a missed block) */
            BUMP(n->c.skipped, 1);
            gr->k++;
            continue;
        }
        uint32_t at = (uint32_t)f;
        const tutti_timeline *tl = tl_at_beat(s, g);
        if (is_midi) {
            uint64_t fr = first + at;
            bool want = tl->playing;
            if (want && !n->midi_playing && on_bar(g, tl->quantum)) {
                if (g <= 0) {
                    midi_put(n, fr, 0xFA); /* start */
                } else {
                    uint32_t spp = (uint32_t)llround(g * 4) & 0x3fff; /* sixteenths */
                    midi_put(n, fr, 0xF2);
                    midi_put(n, fr, spp & 0x7f);
                    midi_put(n, fr, spp >> 7);
                    midi_put(n, fr, 0xFB); /* continue */
                }
                n->midi_playing = true;
            } else if (!want && n->midi_playing) {
                midi_put(n, fr, 0xFC); /* stop */
                n->midi_playing = false;
            }
            midi_put(n, fr, 0xF8);
            BUMP(n->c.ticks, 1);
        } else if (tl->playing || n->cfg.pulses_when_stopped) {
            bool bar = on_bar(g, tl->quantum);
            n->flags[at] |= F_BEAT | F_CLICK | (bar ? F_BAR | F_ACCENT : 0);
            BUMP(n->c.pulses, 1);
            BUMP(n->c.clicks, 1);
            if (bar) BUMP(n->c.bars, 1);
        }
        gr->k++;
    }
    return true;
}

static void foot_push(tutti_node *n, tutti_time host, bool pressed)
{
    unsigned head = atomic_load_explicit(&n->r.foot_head, memory_order_relaxed);
    unsigned tail = atomic_load_explicit(&n->r.foot_tail, memory_order_acquire);
    if (head - tail == FOOT_RING) {
        BUMP(n->c.foot_dropped, 1);
        return;
    }
    n->r.foot[head & (FOOT_RING - 1)] = (foot_edge){host, pressed};
    atomic_store_explicit(&n->r.foot_head, head + 1, memory_order_release);
}

static void read_foot(tutti_node *n, const tutti_node_block *b)
{
    if (n->cfg.foot_pin < 0 || !b->digital_in) return;
    for (uint32_t i = 0; i < b->frames; i++) {
        bool v = (b->digital_in[i] >> n->cfg.foot_pin) & 1;
        uint64_t fr = b->frames_elapsed + i;
        if (v == n->foot_state || fr - n->foot_changed < n->debounce_frames) continue;
        n->foot_state = v;
        n->foot_changed = fr;
        tutti_time h;
        double hf;
        tutti_hw_dll_time(&n->dll, fr, &h, &hf);
        foot_push(n, h, v);
    }
}

static bool led_on(int led, uint64_t frame, double sr)
{
    double hz;
    switch (led) {
    case TUTTI_NODE_LOCKED:
        return true;
    case TUTTI_NODE_LATE:
        hz = 8;
        break;
    case TUTTI_NODE_JOINING:
        hz = 4;
        break;
    default:
        hz = 1;
        break;
    }
    uint64_t half = (uint64_t)(sr / hz / 2);
    return (frame / half) % 2 == 0;
}

static void write_outputs(tutti_node *n, const tutti_node_block *b, int led)
{
    const tutti_node_config *c = &n->cfg;
    uint32_t frames = b->frames;
    float *click = NULL;
    if (b->audio_out && c->click_channel >= 0 &&
        (uint32_t)c->click_channel < b->audio_channels)
        click = b->audio_out + (size_t)c->click_channel * frames;
    bool led_bit = led_on(led, b->frames_elapsed, c->sample_rate);
    uint16_t mine = 0;
    if (c->beat_pin >= 0) mine |= (uint16_t)(1u << c->beat_pin);
    if (c->bar_pin >= 0) mine |= (uint16_t)(1u << c->bar_pin);
    if (c->led_pin >= 0) mine |= (uint16_t)(1u << c->led_pin);
    uint8_t level[TUTTI_NODE_MAX_FRAMES]; /* bit 0 beat high, bit 1 bar high */
    for (uint32_t i = 0; i < frames; i++) {
        uint8_t f = n->flags[i];
        if (f & F_BEAT) n->beat_left = n->pulse_frames;
        if (f & F_BAR) n->bar_left = n->pulse_frames;
        if (f & F_CLICK) {
            n->click_which = (f & F_ACCENT) ? 1 : 0;
            n->click_pos = 0;
        }
        level[i] = (uint8_t)((n->beat_left > 0) | ((n->bar_left > 0) << 1));
        if (n->beat_left) n->beat_left--;
        if (n->bar_left) n->bar_left--;
        if (click) {
            float v = 0;
            if (n->click_which >= 0) {
                v = n->click[n->click_which][n->click_pos];
                if (++n->click_pos == n->click_len) n->click_which = -1;
            }
            click[i] += v;
        } else if (n->click_which >= 0 && ++n->click_pos == n->click_len) {
            n->click_which = -1;
        }
        if (b->digital_out) {
            uint16_t w = b->digital_out[i] & (uint16_t)~mine;
            if (c->beat_pin >= 0 && (level[i] & 1)) w |= (uint16_t)(1u << c->beat_pin);
            if (c->bar_pin >= 0 && (level[i] & 2)) w |= (uint16_t)(1u << c->bar_pin);
            if (c->led_pin >= 0 && led_bit) w |= (uint16_t)(1u << c->led_pin);
            b->digital_out[i] = w;
        }
    }
    if (b->analog_out && b->analog_frames) {
        int ch[2] = {c->beat_analog, c->bar_analog};
        for (int k = 0; k < 2; k++) {
            if (ch[k] < 0 || (uint32_t)ch[k] >= b->analog_channels) continue;
            float *out = b->analog_out + (size_t)ch[k] * b->analog_frames;
            for (uint32_t i = 0; i < b->analog_frames; i++) {
                uint32_t f = (uint32_t)((uint64_t)i * frames / b->analog_frames);
                out[i] = (level[f] >> k) & 1 ? 1.0f : 0.0f;
            }
        }
    }
}

void tutti_node_process(tutti_node *n, const tutti_node_block *b)
{
    uint32_t frames =
        b->frames < TUTTI_NODE_MAX_FRAMES ? b->frames : TUTTI_NODE_MAX_FRAMES;
    uint64_t first = b->frames_elapsed;
    if (n->had_block && first > n->next_frame) {
        uint64_t gap = first - n->next_frame;
        BUMP(n->c.missed, (gap + frames - 1) / frames);
    }
    n->had_block = true;
    n->next_frame = first + frames;
    BUMP(n->c.blocks, 1);

    uint64_t restarts = n->dll.restarts;
    tutti_hw_dll_update(&n->dll, first, b->host_now);
    atomic_store_explicit(&n->c.period, n->dll.period, memory_order_relaxed);
    atomic_store_explicit(&n->c.err, n->dll.err, memory_order_relaxed);
    atomic_store_explicit(&n->c.locked, n->dll.locked, memory_order_relaxed);
    read_foot(n, b);

    const snap *s = tbuf_read(&n->tb);
    memset(n->flags, 0, frames);
    if (s->usable && s->ntl) {
        if (s->joins != n->joins || restarts != n->dll.restarts) {
            n->joins = s->joins;
            n->pulse.synced = n->midi.synced = false;
        }
        mapping m = map_block(n, s, first);
        if (!n->pulse.synced) grid_sync(&n->pulse, s, &m);
        if (!grid_run(n, &n->pulse, s, &m, frames, first, false)) n->pulse.synced = false;
        if (n->cfg.midi_clock) {
            if (!n->midi.synced) grid_sync(&n->midi, s, &m);
            if (!grid_run(n, &n->midi, s, &m, frames, first, true))
                n->midi.synced = false;
        }
    } else {
        n->pulse.synced = n->midi.synced = false;
        if (n->midi_playing && n->cfg.midi_clock) midi_put(n, first, 0xFC);
        n->midi_playing = false;
    }
    write_outputs(n, b, s->led);
}

/* ======================================================= the loop side */

static bool may_change_timeline(int role)
{
    return role == TUTTI_ROLE_CONDUCTOR || role == TUTTI_ROLE_ADMIN;
}

static void on_tap(tutti_node *n, tutti_member *m, const tutti_member_status *st,
                   tutti_time at)
{
    n->taps_total++;
    if (n->ntaps && at - n->taps[n->ntaps - 1] > TAP_RESET) n->ntaps = 0;
    if (n->ntaps == 4) {
        memmove(&n->taps[0], &n->taps[1], 3 * sizeof n->taps[0]);
        n->ntaps = 3;
    }
    n->taps[n->ntaps++] = at;
    if (n->ntaps < 4) return;
    double mean = (double)(n->taps[3] - n->taps[0]) / 3;
    for (int i = 1; i < 4; i++) {
        double d = (double)(n->taps[i] - n->taps[i - 1]);
        if (fabs(d - mean) > TAP_SPREAD * mean) return; /* not steady yet */
    }
    double bpm = nearbyint(600e9 / mean) / 10; /* to 0.1 bpm */
    n->last_tap_bpm = bpm;
    if (!m || !st->joined || !may_change_timeline(st->role)) {
        n->refused_taps++;
        return;
    }
    if (fabs(bpm - st->timeline.bpm) < 0.05) return;
    if (tutti_member_propose_bpm(m, bpm) == 0) n->proposals++;
}

static void read_foot_edges(tutti_node *n, tutti_member *m, const tutti_member_status *st)
{
    unsigned tail = atomic_load_explicit(&n->r.foot_tail, memory_order_relaxed);
    unsigned head = atomic_load_explicit(&n->r.foot_head, memory_order_acquire);
    for (; tail != head; tail++) {
        foot_edge e = n->r.foot[tail & (FOOT_RING - 1)];
        if (e.pressed) {
            n->pressed = true;
            n->pressed_at = e.host;
            continue;
        }
        if (!n->pressed) continue;
        n->pressed = false;
        if (e.host - n->pressed_at >= (tutti_time)(n->cfg.hold_ms * TUTTI_MS)) {
            n->toggles++;
            if (!m || !st->joined || !may_change_timeline(st->role))
                n->refused_taps++;
            else if (tutti_member_propose_transport(
                         m, !(st->timeline_pending ? st->next_timeline.playing
                                                   : st->timeline.playing)) == 0)
                n->proposals++;
            continue;
        }
        on_tap(n, m, st, n->pressed_at);
    }
    atomic_store_explicit(&n->r.foot_tail, tail, memory_order_release);
}

void tutti_node_poll(tutti_node *n, tutti_member *m, tutti_time local_now,
                     tutti_time host_minus_local)
{
    tutti_member_status st;
    memset(&st, 0, sizeof st);
    if (m) tutti_member_status_get(m, &st);
    snap s;
    memset(&s, 0, sizeof s);
    s.joins = st.incarnation;
    s.clock = st.clock;
    /* The audio side reads the host clock: host = local + d. */
    s.clock.ref_local += host_minus_local;
    s.clock.offset_ns -= host_minus_local;
    s.usable = m && st.joined && st.clock.locked;
    if (m && st.joined) s.ntl = tutti_member_timeline_schedule(m, s.tl, SCHEDULE);
    if (s.ntl > SCHEDULE) s.ntl = SCHEDULE;
    uint64_t missed = GET(n->c.missed);
    if (st.late != n->last_late || missed != n->last_missed)
        n->late_until = local_now + LATE_FOR;
    n->last_late = st.late;
    n->last_missed = missed;
    /* The settling time (TUTTI_CLOCK_SETTLE: the member's clock filter
     * holds its drift at 0 until its window spans 4 s, and until then a
     * node whose crystal runs 50 ppm off is 50 us a second adrift between
     * pings) runs once a join: the filter keeps its drift through a relock
     * (a clock step, one inconsistent exchange on a loaded machine), so a
     * moment unlocked shows as JOINING while it lasts and does not start
     * the 6 s again. */
    if (!m || !st.joined)
        s.led = TUTTI_NODE_NO_HUB;
    else if (!s.usable || !GET(n->c.locked) || !tutti_member_clock_settled(&st, local_now))
        s.led = TUTTI_NODE_JOINING;
    else if (local_now < n->late_until)
        s.led = TUTTI_NODE_LATE;
    else
        s.led = TUTTI_NODE_LOCKED;
    n->pub = s;
    tbuf_write(&n->tb, &s);
    read_foot_edges(n, m, &st);
}

uint32_t tutti_node_midi_read(tutti_node *n, tutti_node_midi *out, uint32_t cap)
{
    unsigned tail = atomic_load_explicit(&n->r.midi_tail, memory_order_relaxed);
    unsigned head = atomic_load_explicit(&n->r.midi_head, memory_order_acquire);
    uint32_t k = 0;
    for (; tail != head && k < cap; tail++)
        out[k++] = n->r.midi[tail & (MIDI_RING - 1)];
    atomic_store_explicit(&n->r.midi_tail, tail, memory_order_release);
    return k;
}

void tutti_node_status_get(const tutti_node *n, tutti_node_status *st)
{
    tutti_node *w = (tutti_node *)n; /* atomics are read through non-const */
    memset(st, 0, sizeof *st);
    st->led = n->pub.led;
    st->blocks = GET(w->c.blocks);
    st->missed_blocks = GET(w->c.missed);
    st->pulses = GET(w->c.pulses);
    st->bars = GET(w->c.bars);
    st->clicks = GET(w->c.clicks);
    st->midi_ticks = GET(w->c.ticks);
    st->skipped = GET(w->c.skipped);
    st->midi_dropped = GET(w->c.midi_dropped);
    st->taps_dropped = GET(w->c.foot_dropped);
    st->taps = n->taps_total;
    st->proposals = n->proposals;
    st->refused_taps = n->refused_taps;
    st->transport_toggles = n->toggles;
    st->dll_period_ns = GET(w->c.period);
    st->dll_error_ns = GET(w->c.err);
    st->dll_locked = GET(w->c.locked);
    st->last_tap_bpm = n->last_tap_bpm;
}
