/*
 * Seeded randomness and delay distributions for the simulation and benchmarks.
 * xoshiro256** seeded through splitmix64: fast, small state, and the same
 * sequence on every platform for a given seed.
 */
#include "sim/sim.h"
#include "order.h"

#include <math.h>
#include <stdlib.h>

static uint64_t splitmix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

void tutti_rng_seed(tutti_rng *r, uint64_t seed)
{
    for (int i = 0; i < 4; i++) r->s[i] = splitmix64(&seed);
}

static uint64_t rotl(uint64_t x, int k)
{
    return (x << k) | (x >> (64 - k));
}

uint64_t tutti_rng_next(tutti_rng *r)
{
    uint64_t *s = r->s;
    uint64_t result = rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
}

double tutti_rng_unit(tutti_rng *r)
{
    return (double)(tutti_rng_next(r) >> 11) * (1.0 / 9007199254740992.0);
}

double tutti_rng_normal(tutti_rng *r)
{
    /* Box-Muller; one value per call keeps the draw order simple. */
    double u1 = tutti_rng_unit(r), u2 = tutti_rng_unit(r);
    if (u1 < 1e-300) u1 = 1e-300;
    return sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
}

int64_t tutti_rng_range(tutti_rng *r, int64_t lo, int64_t hi)
{
    if (hi <= lo) return lo;
    uint64_t span = (uint64_t)(hi - lo) + 1;
    return lo + (int64_t)(span ? tutti_rng_next(r) % span : tutti_rng_next(r));
}

tutti_time tutti_path_delay(const tutti_path *p, tutti_rng *r)
{
    double j = (double)p->jitter, d;
    switch (p->dist) {
    case TUTTI_JITTER_NORMAL: {
        double x = tutti_rng_normal(r) * j / 2.0;
        if (x > 2 * j) x = 2 * j;
        if (x < -2 * j) x = -2 * j;
        d = (double)p->base + x;
        break;
    }
    case TUTTI_JITTER_PARETO: {
        /* Pareto with shape 3 and mean 2j: scale 4j/3, shifted so the minimum is
         * base - j; capped at 20 j so "the largest delay" stays finite. */
        double u = tutti_rng_unit(r);
        double x = (4.0 * j / 3.0) / cbrt(1.0 - u) - (4.0 * j / 3.0);
        if (x > 20 * j) x = 20 * j;
        d = (double)p->base - j + x;
        break;
    }
    default:
        d = (double)p->base + (2.0 * tutti_rng_unit(r) - 1.0) * j;
        break;
    }
    return d < 0 ? 0 : (tutti_time)d;
}

tutti_time tutti_path_delay_z(const tutti_path *p, double z)
{
    double j = (double)p->jitter, d, u = 0.5 * erfc(-z / sqrt(2.0));
    switch (p->dist) {
    case TUTTI_JITTER_NORMAL: {
        double x = z * j / 2.0;
        if (x > 2 * j) x = 2 * j;
        if (x < -2 * j) x = -2 * j;
        d = (double)p->base + x;
        break;
    }
    case TUTTI_JITTER_PARETO: {
        double x = u < 1.0 ? (4.0 * j / 3.0) / cbrt(1.0 - u) - (4.0 * j / 3.0) : 20 * j;
        if (x > 20 * j) x = 20 * j;
        d = (double)p->base - j + x;
        break;
    }
    default:
        d = (double)p->base + (2.0 * u - 1.0) * j;
        break;
    }
    return d < 0 ? 0 : (tutti_time)d;
}

tutti_time tutti_path_max_delay(const tutti_path *p)
{
    switch (p->dist) {
    case TUTTI_JITTER_NORMAL: return p->base + 2 * p->jitter;
    case TUTTI_JITTER_PARETO: return p->base + 19 * p->jitter;
    default: return p->base + p->jitter;
    }
}

uint64_t tutti_fnv1a(const void *p, size_t n, uint64_t h)
{
    return tutti__fnv1a(p, n, h); /* one FNV-1a for the project: order.c */
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

double tutti_percentile(double *v, size_t n, double p)
{
    if (n == 0) return NAN;
    qsort(v, n, sizeof *v, cmp_double);
    size_t i = (size_t)ceil(p * (double)n);
    if (i > n) i = n;
    return v[i ? i - 1 : 0];
}
