/*
 * The distributed logic in simulation: every profile, several session sizes,
 * many seeds. Every member's delivered sequence must equal every other's over
 * the range they share, nothing may be delivered out of order, late events
 * must be zero when the delay bound held and counted consistently otherwise,
 * and a tempo change must land on the same timeline everywhere.
 *
 * TUTTI_SIM_SEEDS sets seeds per case (default 8; the full sweep is
 * `tutti simulate --seeds 500`).
 */
#include "sim/sim.h"
#include "test.h"

static int seeds(void)
{
    const char *e = getenv("TUTTI_SIM_SEEDS");
    int n = e ? atoi(e) : 8;
    return n > 0 ? n : 8;
}

static void sweep(const char *profile, uint32_t members, int nseeds)
{
    for (int i = 0; i < nseeds; i++) {
        tutti_scenario_result r;
        CHECK(tutti_sim_scenario(profile, members, 1000 + (uint64_t)i, &r) == 0);
        CHECK(r.coherent);
        CHECK(r.late_ok);
        CHECK(r.timeline_ok);
        CHECK(r.report.user_events > 0);
        CHECK(r.report.misordered == 0);
        CHECK(r.report.undelivered == 0);
        CHECK(r.report.violations == 0);
        if (!r.coherent || !r.late_ok || !r.timeline_ok)
            fprintf(stderr, "  %s\n  %s\n", r.verdict, r.report.first_problem);
    }
}

static void replay_is_exact(void)
{
    tutti_scenario_result a, b;
    CHECK(tutti_sim_scenario("wan150", 3, 77, &a) == 0);
    CHECK(tutti_sim_scenario("wan150", 3, 77, &b) == 0);
    CHECK(memcmp(&a.report, &b.report, sizeof a.report) == 0);
    CHECK(a.submitted == b.submitted);
}

static void unknown_profile(void)
{
    tutti_scenario_result r;
    CHECK(tutti_sim_scenario("moon", 3, 1, &r) == TUTTI_EINVAL);
}

#define CASE(name, profile, n, k)                                                    \
    static void name(void)                                                           \
    {                                                                                \
        sweep(profile, n, k);                                                        \
    }
CASE(lan_3, "lan", 3, seeds())
CASE(lan_8, "lan", 8, seeds())
CASE(wan40_3, "wan40", 3, seeds())
CASE(wan40_8, "wan40", 8, seeds())
CASE(wan150_3, "wan150", 3, seeds())
CASE(wan150_8, "wan150", 8, seeds())
CASE(partition_3, "partition", 3, seeds())
CASE(partition_8, "partition", 8, seeds())
CASE(crash_3, "crash", 3, seeds())
CASE(crash_8, "crash", 8, seeds())
CASE(churn_3, "churn", 3, seeds())
CASE(churn_8, "churn", 8, seeds())
CASE(all_32, "wan40", 32, 2)
CASE(partition_32, "partition", 32, 1)
CASE(crash_32, "crash", 32, 1)

int main(void)
{
    RUN(unknown_profile);
    RUN(replay_is_exact);
    RUN(lan_3);
    RUN(lan_8);
    RUN(wan40_3);
    RUN(wan40_8);
    RUN(wan150_3);
    RUN(wan150_8);
    RUN(partition_3);
    RUN(partition_8);
    RUN(crash_3);
    RUN(crash_8);
    RUN(churn_3);
    RUN(churn_8);
    RUN(all_32);
    RUN(partition_32);
    RUN(crash_32);
    TEST_END();
}
