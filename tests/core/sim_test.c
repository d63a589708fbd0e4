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
 * The automatic horizon. Four members, 30 +/- 5 ms each hop (the largest
 * member-hub-member trip is 70 ms), the hub starting at L = 20 ms, far too
 * small. In every case L must settle within 1.2 x 70 ms + 5 ms, no event may
 * be late once it has (by the members' own count), and the session stays
 * coherent:
 * - steady paths;
 * - a slow start: member 1's paths are 150 ms each way for its first 2 s
 *   (its first round trips are 300 ms), then as the others';
 * - a partition: member 2's link is cut from 10 s to 13 s (the hub keeps
 *   it), so every member waits 3 s for its promises: a stall, which must not
 *   raise L;
 * - better paths: from 12 s on every hop is 10 +/- 1 ms; L must come most
 *   of the way down within a few seconds (the largest trip is then 22 ms).
 */
enum { AH_STEADY, AH_SLOW_START, AH_PARTITION, AH_BETTER };

typedef struct ah_result {
    tutti_time l_end, l_max;  /* L at the end; the largest L from `settled` on */
    tutti_time l_at;          /* L at `probe` */
    uint64_t late;            /* late deliveries from `settled` on (true time) */
    bool coherent;
    tutti_time max_delay;
} ah_result;

static void auto_horizon_run(uint64_t seed, int kind, tutti_time settled, tutti_time probe,
                             ah_result *o)
{
    tutti_sim_config c;
    tutti_sim_config_init(&c);
    c.seed = seed;
    c.members = 4;
    tutti_path p = {30 * TUTTI_MS, 5 * TUTTI_MS, TUTTI_JITTER_UNIFORM, 0};
    c.up = c.down = p;
    c.horizon = 20 * TUTTI_MS;
    c.auto_horizon = true;
    c.suspect_after = 10 * TUTTI_S; /* a partitioned member is kept */
    tutti_sim *s;
    CHECK(tutti_sim_create(&s, &c) == 0);
    if (kind == AH_SLOW_START) {
        tutti_path slow = {150 * TUTTI_MS, 5 * TUTTI_MS, TUTTI_JITTER_UNIFORM, 0};
        tutti_sim_set_paths(s, 1, &slow, &slow);
    }
    for (uint32_t i = 1; i <= c.members; i++)
        tutti_sim_start(s, i, (tutti_time)i * 10 * TUTTI_MS);
    tutti_time end = 40 * TUTTI_S;
    tutti_sim_random_workload(s, 800, TUTTI_S, end - TUTTI_S, 0, 50 * TUTTI_MS);
    if (kind == AH_PARTITION) tutti_sim_partition(s, 2, 10 * TUTTI_S, 13 * TUTTI_S);
    tutti_hub_status hs;
    o->l_max = o->l_at = 0;
    bool trace = getenv("TUTTI_AH_TRACE") != NULL;
    for (tutti_time t = 250 * TUTTI_MS; t <= end; t += 250 * TUTTI_MS) {
        if (kind == AH_SLOW_START && t == 2 * TUTTI_S) tutti_sim_set_paths(s, 1, &p, &p);
        if (kind == AH_BETTER && t == 12 * TUTTI_S) {
            tutti_path q = {10 * TUTTI_MS, TUTTI_MS, TUTTI_JITTER_UNIFORM, 0};
            for (uint32_t i = 1; i <= c.members; i++)
                tutti_sim_set_paths(s, i, &q, &q);
        }
        tutti_sim_run_until(s, t);
        tutti_hub_status_get(tutti_sim_hub(s), &hs);
        if (t >= settled && hs.horizon > o->l_max) o->l_max = hs.horizon;
        if (t == probe) o->l_at = hs.horizon;
        if (trace && t % TUTTI_S == 0)
            fprintf(stderr, "  [%d/%llu] %5.1f s: L %.1f ms (target %.1f)\n", kind,
                    (unsigned long long)seed, t / 1e9, hs.horizon / 1e6,
                    hs.horizon_target / 1e6);
    }
    tutti_sim_report r;
    o->coherent = tutti_sim_check(s, &r);
    o->max_delay = r.max_delay;
    o->l_end = hs.horizon;
    const tutti_sim_log *logs;
    size_t n = tutti_sim_logs(s, &logs);
    o->late = 0;
    for (size_t i = 0; i < n; i++)
        for (size_t k = 0; k < logs[i].n; k++)
            if (logs[i].d[k].true_time >= settled && logs[i].d[k].late) o->late++;
    tutti_sim_destroy(s);
}

#define AH_BOUND (70 * TUTTI_MS * 12 / 10 + 5 * TUTTI_MS)

static void ah_report(const char *what, uint64_t seed, const ah_result *o)
{
    fprintf(stderr, "  %s, seed %llu: L end %.1f ms, largest %.1f ms, probe %.1f ms, late %llu\n",
            what, (unsigned long long)seed, o->l_end / 1e6, o->l_max / 1e6, o->l_at / 1e6,
            (unsigned long long)o->late);
}

static void auto_horizon(void)
{
    for (uint64_t seed = 1; seed <= 3; seed++) {
        ah_result o;
        /* steady: settled within 5 s */
        auto_horizon_run(seed, AH_STEADY, 5 * TUTTI_S, 0, &o);
        CHECK(o.coherent);
        CHECK_EQ_I64((int64_t)o.late, 0);
        CHECK(o.l_end >= 60 * TUTTI_MS);
        CHECK(o.l_max <= AH_BOUND);
        if (o.late || o.l_max > AH_BOUND || o.l_end < 60 * TUTTI_MS) ah_report("steady", seed, &o);
        /* a slow start is forgotten: L within the bound from 10 s on (the
         * hub lowers on needs at least 4 s old, then in steps a second apart;
         * the last step may stop up to a 32nd above a target just under the
         * bound, as the hub leaves L alone that close to its target) */
        auto_horizon_run(seed, AH_SLOW_START, 10 * TUTTI_S, 0, &o);
        CHECK(o.coherent);
        CHECK_EQ_I64((int64_t)o.late, 0);
        CHECK(o.l_max <= AH_BOUND + AH_BOUND / 32);
        if (o.late || o.l_max > AH_BOUND + AH_BOUND / 32) ah_report("slow start", seed, &o);
        /* a partition does not raise L, and nothing is late after the
         * stall has drained (the partition ends at 13 s) */
        auto_horizon_run(seed, AH_PARTITION, 5 * TUTTI_S, 0, &o);
        CHECK(o.coherent);
        CHECK(o.l_max <= AH_BOUND);
        if (o.l_max > AH_BOUND) ah_report("partition", seed, &o);
        auto_horizon_run(seed, AH_PARTITION, 15 * TUTTI_S, 0, &o);
        CHECK_EQ_I64((int64_t)o.late, 0);
        if (o.late) ah_report("partition, after", seed, &o);
        /* better paths from 12 s: most of the way down (from ~84 ms to
         * 50 ms at most) 4 s later, within 1.2 x 22 + 5 ms at the end, and
         * nothing late while it comes down */
        auto_horizon_run(seed, AH_BETTER, 5 * TUTTI_S, 16 * TUTTI_S, &o);
        CHECK(o.coherent);
        CHECK_EQ_I64((int64_t)o.late, 0);
        CHECK(o.l_at <= 50 * TUTTI_MS);
        CHECK(o.l_end <= 22 * TUTTI_MS * 12 / 10 + 5 * TUTTI_MS);
        CHECK(o.l_end >= 22 * TUTTI_MS);
        if (o.late || o.l_at > 50 * TUTTI_MS || o.l_end > 22 * TUTTI_MS * 12 / 10 + 5 * TUTTI_MS ||
            o.l_end < 22 * TUTTI_MS)
            ah_report("better paths", seed, &o);
    }
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
