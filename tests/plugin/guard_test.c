/*
 * Tests of the guard (plugin/guard.c): the safety limiter on a part's
 * output, the monitoring gain, and the guard nodes' synthdef.
 */
#include "guard.h"
#include "osc.h"
#include "test.h"

#include <math.h>
#include <string.h>

#define SR 48000.0
#define N 64
#define PI 3.14159265358979

/* Two channels: `before` holds the other parts' sound (a quiet sine), `out`
 * that plus the part's contribution `amp` * another sine. */
static void block(float *out[2], float *before[2], int b, double other, double amp)
{
    for (int i = 0; i < N; i++) {
        double t = (b * N + i) / SR;
        for (int ch = 0; ch < 2; ch++) {
            before[ch][i] = (float)(other * sin(2 * PI * 220 * t + ch));
            out[ch][i] = before[ch][i] + (float)(amp * sin(2 * PI * 441 * t));
        }
    }
}

static float o0[N], o1[N], b0[N], b1[N];
static float *out[2] = {o0, o1}, *before[2] = {b0, b1};
static const bool both[2] = {true, true};

static void test_honest_part_untouched(void)
{
    tutti__guard g;
    tutti__guard_init(&g, SR);
    int changed = 0, reduced = 0;
    for (int b = 0; b < 200; b++) {
        block(out, before, b, 0.2, 0.45); /* just below the ceiling (0.5) */
        float want0[N], want1[N];
        memcpy(want0, o0, sizeof o0);
        memcpy(want1, o1, sizeof o1);
        reduced += (int)tutti__guard_run(&g, out, (const float *const *)before, both, 2,
                                         N, TUTTI_GUARD_CEILING, 1.0f, NULL);
        changed += memcmp(want0, o0, sizeof o0) != 0 || memcmp(want1, o1, sizeof o1) != 0;
    }
    CHECK_EQ_I64(reduced, 0);
    CHECK_EQ_I64(changed, 0); /* bit for bit */
}

static void test_loud_part_limited(void)
{
    tutti__guard g;
    tutti__guard_init(&g, SR);
    double worst = 0, other_err = 0;
    uint32_t reduced = 0;
    for (int b = 0; b < 750; b++) { /* 1 s of a part at amplitude 30 */
        block(out, before, b, 0.3, 30.0);
        reduced += tutti__guard_run(&g, out, (const float *const *)before, both, 2, N,
                                    TUTTI_GUARD_CEILING, 1.0f, NULL);
        for (int i = 0; i < N; i++)
            for (int ch = 0; ch < 2; ch++) {
                double d = fabs((double)out[ch][i] - before[ch][i]);
                if (d > worst) worst = d;
                /* the bus is never more than the others + the ceiling */
                double e = fabs(out[ch][i]) - (fabs(before[ch][i]) + TUTTI_GUARD_CEILING);
                if (e > other_err) other_err = e;
            }
    }
    fprintf(stderr,
            "  part at amplitude 30: its largest contribution %.6f (ceiling %.2f)\n",
            worst, (double)TUTTI_GUARD_CEILING);
    CHECK(worst <= TUTTI_GUARD_CEILING * 1.0001);
    CHECK(worst > TUTTI_GUARD_CEILING * 0.9);
    CHECK(other_err < 1e-5);
    CHECK(reduced > 0);
    /* then it goes quiet: the gain comes back within half a second (100 ms
     * to 1/e) and an honest level passes untouched again */
    for (int b = 0; b < 375; b++) {
        block(out, before, b, 0.3, 0.0);
        tutti__guard_run(&g, out, (const float *const *)before, both, 2, N,
                         TUTTI_GUARD_CEILING, 1.0f, NULL);
    }
    CHECK(g.env > 0.99f);
}

static void test_off_and_untouched_channels(void)
{
    tutti__guard g;
    tutti__guard_init(&g, SR);
    block(out, before, 0, 0.1, 30.0);
    float want0[N];
    memcpy(want0, o0, sizeof o0);
    CHECK_EQ_I64(tutti__guard_run(&g, out, (const float *const *)before, both, 2, N, 0.0f,
                                  1.0f, NULL),
                 0);
    CHECK(memcmp(want0, o0, sizeof o0) == 0); /* ceiling 0: off */
    bool one[2] = {false, true};
    block(out, before, 0, 0.1, 30.0);
    memcpy(want0, o0, sizeof o0);
    tutti__guard_run(&g, out, (const float *const *)before, one, 2, N, 0.5f, 1.0f, NULL);
    CHECK(memcmp(want0, o0, sizeof o0) == 0); /* a channel the part did not touch */
    CHECK(fabsf(o1[N - 1] - b1[N - 1]) <= 0.5f);
}

static void test_not_a_number(void)
{
    tutti__guard g;
    tutti__guard_init(&g, SR);
    block(out, before, 0, 0.2, 0.1);
    o0[3] = NAN;
    o1[7] = INFINITY;
    uint32_t bad = 0;
    tutti__guard_run(&g, out, (const float *const *)before, both, 2, N, 0.5f, 1.0f, &bad);
    CHECK_EQ_I64(bad, 2);
    CHECK(o0[3] == b0[3]);
    CHECK(o1[7] == b1[7]);
    int finite = 1;
    for (int i = 0; i < N; i++)
        finite &= isfinite(o0[i]) && isfinite(o1[i]);
    CHECK(finite);
}

static void test_monitoring_gain(void)
{
    CHECK(tutti__guard_gain(3) == 1.0f); /* unset: full */
    tutti__guard_set_gain(3, 0.0f);
    CHECK(tutti__guard_gain(3) == 0.0f);
    tutti__guard_set_gain(3, 7.0f);
    CHECK(tutti__guard_gain(3) == 1.0f); /* attenuation only */
    tutti__guard_set_gain(3, -1.0f);
    CHECK(tutti__guard_gain(3) == 0.0f);
    tutti__guard_set_gain(3, NAN);
    CHECK(tutti__guard_gain(3) == 1.0f);
    tutti__guard_set_gain(99, 0.5f); /* no such slot: ignored */
    CHECK(tutti__guard_gain(99) == 1.0f);

    /* muting ramps over one block (no click), then the part is silent and
     * the others' sound is there unchanged */
    tutti__guard g;
    tutti__guard_init(&g, SR);
    block(out, before, 0, 0.2, 0.3);
    tutti__guard_run(&g, out, (const float *const *)before, both, 2, N, 0.5f, 1.0f, NULL);
    block(out, before, 1, 0.2, 0.3);
    float d_first = o0[0] - b0[0];
    double full_first = 0.3 * sin(2 * PI * 441 * (1 * N) / SR);
    tutti__guard_run(&g, out, (const float *const *)before, both, 2, N, 0.5f, 0.0f, NULL);
    CHECK(fabs((o0[0] - b0[0]) - d_first * (1.0 - 1.0 / N)) < 1e-5);
    CHECK(fabs(d_first - full_first) < 1e-5);
    CHECK(fabsf(o0[N - 1] - b0[N - 1]) < 1e-6);
    block(out, before, 2, 0.2, 0.3);
    tutti__guard_run(&g, out, (const float *const *)before, both, 2, N, 0.5f, 0.0f, NULL);
    float most = 0;
    for (int i = 0; i < N; i++)
        most = fmaxf(most, fabsf(o0[i] - b0[i]));
    CHECK(most < 1e-6);
}

static void test_synthdef(void)
{
    uint8_t msg[512];
    size_t n = tutti__guard_def_recv(msg, sizeof msg);
    CHECK(n > 0);
    CHECK(tutti__osc_check(msg, n) == 0);
    tutti__osc_msg m;
    CHECK(tutti__osc_msg_parse(msg, n, &m) == 0 && !strcmp(m.addr, "/d_recv"));
    /* the blob: "SCgf", version 2, one def named tutti_guard */
    const uint8_t *def = msg + 8 + 4 + 4;
    CHECK(!memcmp(def, "SCgf\0\0\0\2\0\1", 10));
    CHECK(def[10] == strlen(TUTTI_GUARD_DEF) && !memcmp(def + 11, TUTTI_GUARD_DEF, 11));
    CHECK(tutti__guard_def_recv(msg, 40) == 0);
    CHECK(TUTTI_GUARD_NODE(31, 1) < (1 << 26));
    CHECK(TUTTI_GUARD_NODE(1, 0) > 67000000);
}

int main(void)
{
    RUN(test_honest_part_untouched);
    RUN(test_loud_part_limited);
    RUN(test_off_and_untouched_channels);
    RUN(test_not_a_number);
    RUN(test_monitoring_gain);
    RUN(test_synthdef);
    TEST_END();
}
