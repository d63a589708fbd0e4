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

/*
 * The automatic horizon: a session that starts with L far too small for its
 * paths (20 ms against 30 +/- 5 ms each way) must find an L that is enough
 * (nothing late in the second half, by the members' own count and by the
 * true clocks) and no larger than 1.2 x the largest member-hub-member delay
 * + 5 ms, while staying coherent; a session whose paths get better must
 * bring L down again, slowly.
 */
static void auto_horizon_run(uint64_t seed, tutti_time up_base, tutti_time better_at,
                             tutti_time *l_end, uint64_t *late_2nd_half, bool *coherent,
                             tutti_time *max_delay)
{
    tutti_sim_config c;
    tutti_sim_config_init(&c);
    c.seed = seed;
    c.members = 4;
    tutti_path p = {up_base, 5 * TUTTI_MS, TUTTI_JITTER_UNIFORM, 0};
    c.up = c.down = p;
    c.horizon = 20 * TUTTI_MS;
    c.auto_horizon = true;
    tutti_sim *s;
    CHECK(tutti_sim_create(&s, &c) == 0);
    for (uint32_t i = 1; i <= c.members; i++)
        tutti_sim_start(s, i, (tutti_time)i * 10 * TUTTI_MS);
    tutti_time end = better_at ? 70 * TUTTI_S : 40 * TUTTI_S;
    tutti_sim_random_workload(s, 600, TUTTI_S, end - TUTTI_S, 0, 50 * TUTTI_MS);
    if (better_at) {
        tutti_path q = {up_base / 4, TUTTI_MS, TUTTI_JITTER_UNIFORM, 0};
        tutti_sim_run_until(s, better_at);
        for (uint32_t i = 1; i <= c.members; i++)
            tutti_sim_set_paths(s, i, &q, &q);
    }
    tutti_sim_run_until(s, end);
    tutti_sim_report r;
    *coherent = tutti_sim_check(s, &r);
    *max_delay = r.max_delay;
    tutti_hub_status hs;
    tutti_hub_status_get(tutti_sim_hub(s), &hs);
    *l_end = hs.horizon;
    const tutti_sim_log *logs;
    size_t n = tutti_sim_logs(s, &logs);
    *late_2nd_half = 0;
    tutti_time half = 20 * TUTTI_S; /* true (virtual) time */
    for (size_t i = 0; i < n; i++)
        for (size_t k = 0; k < logs[i].n; k++)
            if (logs[i].d[k].true_time >= half && logs[i].d[k].late) (*late_2nd_half)++;
    tutti_sim_destroy(s);
}

static void auto_horizon(void)
{
    for (uint64_t seed = 1; seed <= 3; seed++) {
        tutti_time l, dmax;
        uint64_t late;
        bool coherent;
        auto_horizon_run(seed, 30 * TUTTI_MS, 0, &l, &late, &coherent, &dmax);
        CHECK(coherent);
        CHECK_EQ_I64((int64_t)late, 0);
        /* the largest member-hub-member delay is at most 2 x 35 ms */
        CHECK(l >= 60 * TUTTI_MS);
        CHECK(l <= 70 * TUTTI_MS * 12 / 10 + 5 * TUTTI_MS);
        if (l > 70 * TUTTI_MS * 12 / 10 + 5 * TUTTI_MS || late)
            fprintf(stderr, "  seed %llu: L %.1f ms, late %llu, max delay %.1f ms\n",
                    (unsigned long long)seed, l / 1e6, (unsigned long long)late, dmax / 1e6);
    }
    /* paths four times shorter from 12 s on: L comes down once the delays
     * measured before have left the members' windows (about 26 s) */
    tutti_time l, dmax;
    uint64_t late;
    bool coherent;
    auto_horizon_run(9, 40 * TUTTI_MS, 12 * TUTTI_S, &l, &late, &coherent, &dmax);
    CHECK(coherent);
    CHECK(l < 60 * TUTTI_MS);
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
    RUN(auto_horizon);
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
