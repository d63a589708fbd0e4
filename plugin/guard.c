/*
 * The guard's limiter, monitoring gains and synthdef (see guard.h).
 */
#include "guard.h"

#include "osc.h"

#include <math.h>
#include <stdatomic.h>
#include <string.h>

static _Atomic uint32_t gains[TUTTI_GUARD_SLOTS]; /* float bits; 0 = unset (1.0) */
static _Atomic uint64_t limited_blocks[TUTTI_GUARD_SLOTS], bad_samples[TUTTI_GUARD_SLOTS];

void tutti__guard_init(tutti__guard *g, double sample_rate)
{
    g->env = 1.0f;
    g->rel =
        sample_rate > 0 ? (float)exp(-1.0 / (TUTTI_GUARD_RELEASE * sample_rate)) : 0.0f;
    g->gain_last = -1.0f; /* no block yet: the first starts at the gain */
}

uint32_t tutti__guard_run(tutti__guard *g, float *const *out, const float *const *before,
                          const bool *touched, uint32_t nch, uint32_t n, float ceiling,
                          float gain, uint32_t *bad)
{
    uint32_t reduced = 0, nonfinite = 0;
    float g0 = g->gain_last < 0 ? gain : g->gain_last;
    float step = n ? (gain - g0) / (float)n : 0.0f;
    bool limit = ceiling > 0 && isfinite(ceiling);
    for (uint32_t i = 0; i < n; i++) {
        float peak = 0.0f;
        for (uint32_t ch = 0; ch < nch; ch++) {
            if (!touched[ch]) continue;
            float d = out[ch][i] - before[ch][i];
            if (!isfinite(d)) {
                /* what the part wrote is not a number: silence instead
                 * (before[] is finite: it passed a guard or is the buses
                 * as the parts before left them) */
                out[ch][i] = before[ch][i];
                nonfinite++;
                continue;
            }
            float a = fabsf(d);
            if (a > peak) peak = a;
        }
        float target = limit && peak > ceiling ? ceiling / peak : 1.0f;
        if (target < g->env)
            g->env = target; /* instant attack: never above the ceiling */
        else
            g->env = target + (g->env - target) * g->rel;
        if (g->env < 1.0f) reduced++;
        float k = g->env * (g0 + step * (float)(i + 1));
        if (k == 1.0f) continue; /* an honest part at full monitoring gain: untouched */
        for (uint32_t ch = 0; ch < nch; ch++) {
            if (!touched[ch]) continue;
            float d = out[ch][i] - before[ch][i];
            if (isfinite(d)) out[ch][i] = before[ch][i] + d * k;
        }
    }
    g->gain_last = gain;
    if (bad) *bad = nonfinite;
    return reduced;
}

void tutti__guard_set_gain(uint32_t slot, float gain)
{
    if (slot >= TUTTI_GUARD_SLOTS) return;
    if (!(gain >= 0.0f)) gain = isnan(gain) ? 1.0f : 0.0f;
    if (gain > 1.0f) gain = 1.0f;
    uint32_t w;
    memcpy(&w, &gain, 4);
    atomic_store_explicit(&gains[slot], w ? w : 0x80000000u,
                          memory_order_relaxed); /* -0 */
}

float tutti__guard_gain(uint32_t slot)
{
    if (slot >= TUTTI_GUARD_SLOTS) return 1.0f;
    uint32_t w = atomic_load_explicit(&gains[slot], memory_order_relaxed);
    if (!w) return 1.0f;
    float f;
    memcpy(&f, &w, 4);
    return f <= 0 ? 0.0f : f; /* -0: muted */
}

void tutti__guard_count(uint32_t slot, uint32_t limited, uint32_t bad)
{
    if (slot >= TUTTI_GUARD_SLOTS) return;
    if (limited)
        atomic_fetch_add_explicit(&limited_blocks[slot], 1, memory_order_relaxed);
    if (bad) atomic_fetch_add_explicit(&bad_samples[slot], bad, memory_order_relaxed);
}

void tutti__guard_counters(uint32_t slot, uint64_t *limited, uint64_t *bad)
{
    *limited = slot < TUTTI_GUARD_SLOTS ? atomic_load(&limited_blocks[slot]) : 0;
    *bad = slot < TUTTI_GUARD_SLOTS ? atomic_load(&bad_samples[slot]) : 0;
}

/* ----------------------------------------------------------- the synthdef */

typedef struct w {
    uint8_t *p;
    size_t at, cap;
} w;

static void put(w *b, const void *src, size_t n)
{
    if (b->at + n <= b->cap) memcpy(b->p + b->at, src, n);
    b->at += n;
}

static void put32(w *b, uint32_t v)
{
    uint8_t x[4] = {(uint8_t)(v >> 24), (uint8_t)(v >> 16), (uint8_t)(v >> 8),
                    (uint8_t)v};
    put(b, x, 4);
}

static void put16(w *b, uint16_t v)
{
    uint8_t x[2] = {(uint8_t)(v >> 8), (uint8_t)v};
    put(b, x, 2);
}

static void put8(w *b, uint8_t v)
{
    put(b, &v, 1);
}

static void pstr(w *b, const char *s)
{
    put8(b, (uint8_t)strlen(s));
    put(b, s, strlen(s));
}

/* SCgf version 2 (SuperCollider's "Synth Definition File Format"). */
static size_t guard_def(uint8_t *out, size_t cap)
{
    w b = {out, 0, cap};
    static const char *const names[] = {"slot", "stage", "ceiling"};
    float init[3] = {0, 0, TUTTI_GUARD_CEILING};
    put(&b, "SCgf", 4);
    put32(&b, 2);
    put16(&b, 1);
    pstr(&b, TUTTI_GUARD_DEF);
    put32(&b, 0); /* constants */
    put32(&b, 3); /* parameters and their initial values */
    for (int i = 0; i < 3; i++) {
        uint32_t u;
        memcpy(&u, &init[i], 4);
        put32(&b, u);
    }
    put32(&b, 3);
    for (uint32_t i = 0; i < 3; i++) {
        pstr(&b, names[i]);
        put32(&b, i);
    }
    put32(&b, 2);        /* UGens */
    pstr(&b, "Control"); /* control rate, three outputs */
    put8(&b, 1);
    put32(&b, 0);
    put32(&b, 3);
    put16(&b, 0);
    for (int i = 0; i < 3; i++)
        put8(&b, 1);
    pstr(&b, "TuttiGuard"); /* control rate: once a block, no outputs */
    put8(&b, 1);
    put32(&b, 3);
    put32(&b, 0);
    put16(&b, 0);
    for (uint32_t i = 0; i < 3; i++) {
        put32(&b, 0); /* UGen 0 (Control), output i */
        put32(&b, i);
    }
    put16(&b, 0); /* variants */
    return b.at <= cap ? b.at : 0;
}

size_t tutti__guard_def_recv(uint8_t *out, size_t cap)
{
    uint8_t def[256];
    size_t n = guard_def(def, sizeof def);
    return n ? tutti__osc_write(out, cap, "/d_recv", "b", def, n) : 0;
}
