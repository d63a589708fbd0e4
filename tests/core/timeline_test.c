/*
 * Tests of the tempo timeline: beats and phase at known times, negative times,
 * the inverse, tempo changes, bar boundaries, and precision over hours at
 * realistic session times (nanoseconds since 1900, about 4e18).
 */
#include "test.h"
#include "tutti/tutti.h"

#include <math.h>

/* 2025-01-01 in session time: large enough that doubles of t itself would fail. */
#define T2025 (INT64_C(3944678400) * TUTTI_S)
#define HOUR (3600 * TUTTI_S)

static bool near(double a, double b, double eps)
{
    return fabs(a - b) <= eps;
}

static void test_init(void)
{
    tutti_timeline tl;
    tutti_timeline_init(&tl, 90.0, 3.0, T2025);
    CHECK(tl.bpm == 90.0 && tl.quantum == 3.0 && tl.beat0 == 0.0 && tl.t0 == T2025);
    CHECK(!tl.playing);
    tutti_timeline_init(&tl, 0.0, -1.0, 0);
    CHECK(tl.bpm == 120.0 && tl.quantum == 4.0);
    tutti_timeline_init(&tl, NAN, INFINITY, 0);
    CHECK(tl.bpm == 120.0 && tl.quantum == 4.0);
}

static void test_beats_and_phase(void)
{
    tutti_timeline tl;
    tutti_timeline_init(&tl, 120.0, 4.0, T2025);

    CHECK(tutti_timeline_beat_at(&tl, T2025) == 0.0);
    CHECK(tutti_timeline_beat_at(&tl, T2025 + 500 * TUTTI_MS) == 1.0);
    CHECK(tutti_timeline_beat_at(&tl, T2025 + 60 * TUTTI_S) == 120.0);
    CHECK(tutti_timeline_beat_at(&tl, T2025 + 250 * TUTTI_MS) == 0.5);
    CHECK(tutti_timeline_phase_at(&tl, T2025 + 250 * TUTTI_MS) == 0.5);
    CHECK(tutti_timeline_phase_at(&tl, T2025 + 2 * TUTTI_S) == 0.0); /* beat 4 */
    CHECK(tutti_timeline_phase_at(&tl, T2025 + 2750 * TUTTI_MS) == 1.5);

    /* Before t0: negative beats, phase still in [0, quantum). */
    CHECK(tutti_timeline_beat_at(&tl, T2025 - 500 * TUTTI_MS) == -1.0);
    CHECK(tutti_timeline_phase_at(&tl, T2025 - 500 * TUTTI_MS) == 3.0);
    CHECK(tutti_timeline_phase_at(&tl, T2025 - 2 * TUTTI_S) == 0.0);
    CHECK(tutti_timeline_phase_at(&tl, T2025 - 2250 * TUTTI_MS) == 3.5);
    /* A hair before a bar line is just under the quantum, never equal to it. */
    {
        double p = tutti_timeline_phase_at(&tl, T2025 - 1);
        CHECK(p >= 0.0 && p < 4.0);
        CHECK(near(p, 4.0, 1e-6));
    }

    /* Negative session times and a non-zero beat0. */
    tl.beat0 = 10.0;
    tl.t0 = -5 * TUTTI_S;
    CHECK(tutti_timeline_beat_at(&tl, -5 * TUTTI_S) == 10.0);
    CHECK(tutti_timeline_beat_at(&tl, -10 * TUTTI_S) == 0.0);
    CHECK(tutti_timeline_beat_at(&tl, -11 * TUTTI_S) == -2.0);
    CHECK(tutti_timeline_phase_at(&tl, -11 * TUTTI_S) == 2.0);
    CHECK(tutti_timeline_phase_at(&tl, 0) == 0.0); /* beat 20 */

    /* Fractional quantum. */
    tutti_timeline_init(&tl, 60.0, 2.5, 0);
    CHECK(near(tutti_timeline_phase_at(&tl, 6 * TUTTI_S), 1.0, 1e-12));
    CHECK(near(tutti_timeline_phase_at(&tl, -1 * TUTTI_S), 1.5, 1e-12));

    /* Extreme times do not overflow. */
    tutti_timeline_init(&tl, 120.0, 4.0, T2025);
    CHECK(isfinite(tutti_timeline_beat_at(&tl, INT64_MIN)));
    CHECK(isfinite(tutti_timeline_beat_at(&tl, INT64_MAX)));
    CHECK(tutti_timeline_beat_at(&tl, INT64_MIN) < 0);
    {
        double p = tutti_timeline_phase_at(&tl, INT64_MIN);
        CHECK(p >= 0 && p < 4.0);
    }
}

static void test_time_at_beat(void)
{
    tutti_timeline tl;
    tutti_timeline_init(&tl, 120.0, 4.0, T2025);

    CHECK_EQ_I64(tutti_timeline_time_at_beat(&tl, 0.0), T2025);
    CHECK_EQ_I64(tutti_timeline_time_at_beat(&tl, 1.0), T2025 + 500 * TUTTI_MS);
    CHECK_EQ_I64(tutti_timeline_time_at_beat(&tl, -3.0), T2025 - 1500 * TUTTI_MS);
    CHECK_EQ_I64(tutti_timeline_time_at_beat(&tl, 0.25), T2025 + 125 * TUTTI_MS);

    /* Rounds to nearest: at 7 bpm one beat is 8571428571.43 ns. */
    tutti_timeline_init(&tl, 7.0, 4.0, 0);
    CHECK_EQ_I64(tutti_timeline_time_at_beat(&tl, 1.0), INT64_C(8571428571));
    CHECK_EQ_I64(tutti_timeline_time_at_beat(&tl, -1.0), -INT64_C(8571428571));
    tutti_timeline_init(&tl, 90.0, 4.0, 0); /* 666666666.67 ns per beat */
    CHECK_EQ_I64(tutti_timeline_time_at_beat(&tl, 1.0), INT64_C(666666667));

    /* Saturates instead of overflowing; NaN gives t0. */
    tutti_timeline_init(&tl, 120.0, 4.0, T2025);
    CHECK_EQ_I64(tutti_timeline_time_at_beat(&tl, 1e300), INT64_MAX);
    CHECK_EQ_I64(tutti_timeline_time_at_beat(&tl, -1e300), INT64_MIN);
    CHECK_EQ_I64(tutti_timeline_time_at_beat(&tl, INFINITY), INT64_MAX);
    CHECK_EQ_I64(tutti_timeline_time_at_beat(&tl, -INFINITY), INT64_MIN);
    CHECK_EQ_I64(tutti_timeline_time_at_beat(&tl, NAN), T2025);
    /* Within double range but past the end of tutti_time after adding t0. */
    CHECK_EQ_I64(tutti_timeline_time_at_beat(&tl, 2.0 * 5.5e18 / 1e9), INT64_MAX);

    /* Round trip time -> beat -> time over a range of times. */
    {
        int bad = 0;
        for (int64_t dt = -3 * HOUR; dt <= 3 * HOUR; dt += 7777777777) {
            tutti_time t = T2025 + dt;
            tutti_time back =
                tutti_timeline_time_at_beat(&tl, tutti_timeline_beat_at(&tl, t));
            if (back - t > 1 || t - back > 1) bad++;
        }
        CHECK_EQ_I64(bad, 0);
    }
}

static void test_set_bpm_continuity(void)
{
    tutti_timeline tl;
    tutti_time at = T2025 + 10 * TUTTI_S; /* beat 20 at 120 bpm */
    double before;

    tutti_timeline_init(&tl, 120.0, 4.0, T2025);
    before = tutti_timeline_beat_at(&tl, at);
    tutti_timeline_set_bpm(&tl, 90.0, at);
    CHECK(tutti_timeline_beat_at(&tl, at) == before);
    CHECK(tl.beat0 == 20.0 && tl.t0 == at && tl.bpm == 90.0);
    /* After the change, 90 bpm: 1.5 beats per second. Before it, unchanged. */
    CHECK(near(tutti_timeline_beat_at(&tl, at + 2 * TUTTI_S), 23.0, 1e-12));
    CHECK(tutti_timeline_time_at_beat(&tl, 23.0) == at + 2 * TUTTI_S);

    /* Continuity at arbitrary instants, including odd nanoseconds. */
    {
        int bad = 0;
        tutti_time t = T2025 + 123456789;
        for (int i = 0; i < 1000; i++) {
            double b0;
            t += 987654321 + i;
            b0 = tutti_timeline_beat_at(&tl, t);
            tutti_timeline_set_bpm(&tl, 60.0 + (i % 180) * 1.37, t);
            if (tutti_timeline_beat_at(&tl, t) != b0) bad++;
            if (!(tutti_timeline_beat_at(&tl, t + 1) > b0)) bad++;
        }
        CHECK_EQ_I64(bad, 0);
    }

    /* Invalid tempos are ignored. */
    tutti_timeline_init(&tl, 120.0, 4.0, T2025);
    tutti_timeline_set_bpm(&tl, 0.0, at);
    tutti_timeline_set_bpm(&tl, -10.0, at);
    tutti_timeline_set_bpm(&tl, NAN, at);
    tutti_timeline_set_bpm(&tl, INFINITY, at);
    CHECK(tl.bpm == 120.0 && tl.t0 == T2025 && tl.beat0 == 0.0);
}

static void test_next_boundary(void)
{
    tutti_timeline tl;
    tutti_timeline_init(&tl, 120.0, 4.0, T2025);

    CHECK(tutti_timeline_next_boundary(&tl, T2025, 4.0) == 0.0);
    CHECK(tutti_timeline_next_boundary(&tl, T2025 + 1, 4.0) == 4.0);
    CHECK(tutti_timeline_next_boundary(&tl, T2025 + 2 * TUTTI_S, 4.0) == 4.0);
    CHECK(tutti_timeline_next_boundary(&tl, T2025 + 2 * TUTTI_S + 1, 4.0) == 8.0);
    CHECK(tutti_timeline_next_boundary(&tl, T2025 + 1, 1.0) == 1.0);
    CHECK(tutti_timeline_next_boundary(&tl, T2025 + 1, 0.5) == 0.5);
    CHECK(tutti_timeline_next_boundary(&tl, T2025 + 600 * TUTTI_MS, 3.0) == 3.0);
    /* Negative beats: the boundary is relative to beat 0. */
    CHECK(tutti_timeline_next_boundary(&tl, T2025 - 3 * TUTTI_S, 4.0) == -4.0);
    CHECK(tutti_timeline_next_boundary(&tl, T2025 - 1, 4.0) == 0.0);
    CHECK(tutti_timeline_next_boundary(&tl, T2025 - 2 * TUTTI_S - 1, 4.0) == -4.0);
    /* A non-positive quantum means the timeline's own. */
    CHECK(tutti_timeline_next_boundary(&tl, T2025 + 1, 0.0) == 4.0);
    CHECK(tutti_timeline_next_boundary(&tl, T2025 + 1, NAN) == 4.0);

    /* Never below the current beat, always a multiple, less than a bar ahead. */
    {
        int bad = 0;
        tutti_timeline_set_bpm(&tl, 133.7, T2025 + 3 * TUTTI_S);
        for (int64_t dt = -HOUR; dt <= 11 * HOUR; dt += 1234567891) {
            for (int k = 1; k <= 7; k++) {
                double q = k * 0.75;
                double beat = tutti_timeline_beat_at(&tl, T2025 + dt);
                double b = tutti_timeline_next_boundary(&tl, T2025 + dt, q);
                double m = b / q;
                if (b < beat || b - beat >= q || m != floor(m)) bad++;
            }
        }
        CHECK_EQ_I64(bad, 0);
    }

    /* The boundary's time is on or after t, and its phase is 0. */
    tutti_timeline_init(&tl, 100.0, 4.0, T2025);
    {
        tutti_time t = T2025 + 12345 * TUTTI_MS + 17;
        double b = tutti_timeline_next_boundary(&tl, t, 4.0);
        tutti_time tb = tutti_timeline_time_at_beat(&tl, b);
        CHECK(tb >= t);
        CHECK(tutti_timeline_phase_at(&tl, tb) < 1e-6 ||
              tutti_timeline_phase_at(&tl, tb) > 4.0 - 1e-6);
    }
}

static void test_precision_over_hours(void)
{
    tutti_timeline tl;
    const double bpms[] = {37.0, 60.0, 97.3, 120.0, 142.857, 300.0};

    for (size_t i = 0; i < sizeof bpms / sizeof bpms[0]; i++) {
        double bpm = bpms[i];
        tutti_time t0 = T2025 + 987654321;
        tutti_timeline_init(&tl, bpm, 4.0, t0);
        for (int64_t dt = 0; dt <= 10 * HOUR; dt += HOUR / 7 + 13) {
            tutti_time t = t0 + dt;
            /* Exact beat from exact integer arithmetic (dt * bpm * 1000 fits). */
            long double exact = (long double)dt * bpm / 60e9L;
            double beat = tutti_timeline_beat_at(&tl, t);
            /* Error in time = error in beats * seconds per beat. */
            double err_ns = fabs((double)((long double)beat - exact)) * 60e9 / bpm;
            tutti_time back = tutti_timeline_time_at_beat(&tl, beat);
            CHECK(err_ns < 1000.0);
            CHECK(err_ns < 1.0); /* in fact far better than the requirement */
            CHECK(back - t <= 1 && t - back <= 1);
        }
    }

    /* Many tempo changes over 10 hours: the beat stays continuous and the time
     * of a beat still comes back to within a microsecond. */
    tutti_timeline_init(&tl, 120.0, 4.0, T2025);
    {
        tutti_time t = T2025;
        int bad = 0;
        for (int i = 0; i < 3600; i++) {
            t += 10 * TUTTI_S + 1;
            tutti_timeline_set_bpm(&tl, 80.0 + (i % 97), t);
        }
        t += 1234567;
        {
            tutti_time back =
                tutti_timeline_time_at_beat(&tl, tutti_timeline_beat_at(&tl, t));
            if (back - t > 1000 || t - back > 1000) bad++;
        }
        CHECK_EQ_I64(bad, 0);
    }
}

int main(void)
{
    RUN(test_init);
    RUN(test_beats_and_phase);
    RUN(test_time_at_beat);
    RUN(test_set_bpm_continuity);
    RUN(test_next_boundary);
    RUN(test_precision_over_hours);
    TEST_END();
}
