/*
 * The sample clock (hw/dll.h) alone: it finds a crystal's rate error and
 * averages callback jitter away, rides over a missed block and a held-up
 * callback, and starts again after the clock jumps.
 */
#include "hw/dll.h"
#include "sim/sim.h"
#include "test.h"

#include <math.h>

#define SR 44100.0
#define FRAMES 16

/* Feeds `seconds` of blocks from a device running ppm off, jitter +/- j ns;
 * returns the largest |fit - truth| (ns) over the last `judge` seconds. */
static double run(tutti_hw_dll *d, tutti_rng *rng, double ppm, tutti_time j,
                  double seconds, double judge, uint64_t *frame, tutti_time base)
{
    double rate = SR * (1 + ppm * 1e-6) / 1e9; /* frames per host ns */
    double worst = 0;
    uint64_t blocks = (uint64_t)(seconds * SR / FRAMES);
    for (uint64_t k = 0; k < blocks; k++) {
        double truth = (double)*frame / rate;
        tutti_time t = base + (tutti_time)truth + tutti_rng_range(rng, -j, j);
        tutti_hw_dll_update(d, *frame, t);
        if ((double)k >= (seconds - judge) * SR / FRAMES) {
            tutti_time w;
            double f;
            tutti_hw_dll_time(d, *frame, &w, &f);
            double e = fabs((double)(w - base) + f - truth);
            if (e > worst) worst = e;
        }
        *frame += FRAMES;
    }
    return worst;
}

static void finds_the_crystal(void)
{
    const double ppms[] = {-100, -20, 0, 35, 100};
    for (int i = 0; i < 5; i++) {
        tutti_hw_dll d;
        tutti_hw_dll_init(&d, SR);
        tutti_rng rng;
        tutti_rng_seed(&rng, 3 + i);
        uint64_t frame = 1000;
        double worst = run(&d, &rng, ppms[i], 40000, 30, 20, &frame, 5 * TUTTI_S);
        double want = 1e9 / (SR * (1 + ppms[i] * 1e-6));
        fprintf(stderr,
                "%+.0f ppm: worst error %.2f us over the last 20 s; period %.5f (true "
                "%.5f)\n",
                ppms[i], worst / 1000, d.period, want);
        CHECK(d.locked);
        CHECK(worst < 5000); /* well under a sample (22.7 us) */
        CHECK(fabs(d.period - want) / want < 2e-6);
    }
}

static void jitter_is_averaged(void)
{
    tutti_hw_dll d;
    tutti_hw_dll_init(&d, SR);
    tutti_rng rng;
    tutti_rng_seed(&rng, 9);
    uint64_t frame = 0;
    double worst = run(&d, &rng, 60, 200000, 40, 20, &frame, 0); /* +/- 0.2 ms jitter */
    fprintf(stderr, "+/- 200 us jitter: worst error %.2f us\n", worst / 1000);
    CHECK(worst < 20000);
}

static void missed_and_held(void)
{
    tutti_hw_dll d;
    tutti_hw_dll_init(&d, SR);
    tutti_rng rng;
    tutti_rng_seed(&rng, 5);
    uint64_t frame = 0;
    run(&d, &rng, -80, 20000, 10, 1, &frame, 0);
    frame += 3 * FRAMES; /* three blocks never came */
    double rate = SR * (1 - 80e-6) / 1e9;
    tutti_hw_dll_update(&d, frame,
                        (tutti_time)((double)frame / rate) + 700000); /* 0.7 ms late */
    frame += FRAMES;
    double worst = run(&d, &rng, -80, 20000, 5, 5, &frame, 0);
    fprintf(stderr, "after 3 missed blocks and a callback 0.7 ms late: worst %.2f us\n",
            worst / 1000);
    CHECK(worst < 5000);
    CHECK(d.restarts == 0);
}

static void restarts_after_a_jump(void)
{
    tutti_hw_dll d;
    tutti_hw_dll_init(&d, SR);
    tutti_rng rng;
    tutti_rng_seed(&rng, 6);
    uint64_t frame = 0;
    run(&d, &rng, 10, 20000, 5, 1, &frame, 0);
    /* The host clock steps 50 ms: eight outliers, then a new start. */
    double worst = run(&d, &rng, 10, 20000, 10, 5, &frame, 50 * TUTTI_MS);
    fprintf(stderr, "after a 50 ms step: %llu restarts, %llu rejected, worst %.2f us\n",
            (unsigned long long)d.restarts, (unsigned long long)d.rejected, worst / 1000);
    CHECK(d.restarts == 1);
    CHECK(d.rejected >= 8);
    CHECK(worst < 5000);
}

/* The thread is held up 30 ms, then runs the missed callbacks back to back
 * (each later reading less late): no restart, and the fit stays. */
static void a_stall_is_not_a_step(void)
{
    tutti_hw_dll d;
    tutti_hw_dll_init(&d, SR);
    tutti_rng rng;
    tutti_rng_seed(&rng, 8);
    uint64_t frame = 0;
    run(&d, &rng, 50, 20000, 10, 1, &frame, 0);
    double rate = SR * (1 + 50e-6) / 1e9;
    tutti_time resume = (tutti_time)((double)frame / rate) + 30 * TUTTI_MS;
    for (int k = 0; k < 83; k++) { /* 30 ms of blocks, called at once */
        tutti_hw_dll_update(&d, frame, resume + k * 2000);
        frame += FRAMES;
    }
    double worst = run(&d, &rng, 50, 20000, 5, 5, &frame, 0);
    fprintf(stderr, "after a 30 ms stall: %llu restarts, %llu rejected, worst %.2f us\n",
            (unsigned long long)d.restarts, (unsigned long long)d.rejected, worst / 1000);
    CHECK(d.restarts == 0);
    /* The last two catch-up readings (0.75 and 0.39 ms late) are under the
     * outlier limit and move the line a little: within half a sample. */
    CHECK(worst < 11340);
}

int main(void)
{
    RUN(finds_the_crystal);
    RUN(jitter_is_averaged);
    RUN(missed_and_held);
    RUN(restarts_after_a_jump);
    RUN(a_stall_is_not_a_step);
    TEST_END();
}
