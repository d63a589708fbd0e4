/*
 * The acceptance scenarios: seeded sessions over named network profiles, with
 * a random workload, a tempo change, and the profile's faults, checked by
 * tutti_sim_check. Used by the simulation tests and by `tutti simulate`.
 */
#include "sim/sim.h"

#include <stdio.h>
#include <string.h>

const char *const tutti_sim_profiles[] = {"lan", "wan40", "wan150", "partition",
                                          "crash", "churn", NULL};

/* Field by field: the struct has padding, which memcmp would compare too. */
static bool same_timeline(const tutti_timeline *a, const tutti_timeline *b)
{
    return a->bpm == b->bpm && a->beat0 == b->beat0 && a->t0 == b->t0 &&
           a->quantum == b->quantum && a->playing == b->playing;
}

static tutti_path hop(tutti_time base, tutti_time jitter, int dist, double loss)
{
    tutti_path p = {base, jitter, dist, loss};
    return p;
}

int tutti_sim_scenario(const char *profile, uint32_t members, uint64_t seed,
                       tutti_scenario_result *out)
{
    memset(out, 0, sizeof *out);
    tutti_sim_config c;
    tutti_sim_config_init(&c);
    c.seed = seed;
    c.members = members;
    bool partition = false, crash = false, churn = false;
    if (!strcmp(profile, "lan")) {
        c.up = c.down = hop(50000, 50000, TUTTI_JITTER_UNIFORM, 0);
        c.horizon = 10 * TUTTI_MS;
    } else if (!strcmp(profile, "wan40") || !strcmp(profile, "partition") ||
               !strcmp(profile, "crash") || !strcmp(profile, "churn")) {
        c.up = c.down = hop(20 * TUTTI_MS, 5 * TUTTI_MS, TUTTI_JITTER_UNIFORM, 0);
        c.horizon = 80 * TUTTI_MS;
        partition = !strcmp(profile, "partition");
        crash = !strcmp(profile, "crash");
        churn = !strcmp(profile, "churn");
        if (churn && members < 3) return TUTTI_EINVAL;
    } else if (!strcmp(profile, "wan150")) {
        c.up = c.down = hop(75 * TUTTI_MS, 20 * TUTTI_MS, TUTTI_JITTER_NORMAL, 0.02);
        c.horizon = 300 * TUTTI_MS;
    } else {
        return TUTTI_EINVAL;
    }
    tutti_sim *s;
    int rc = tutti_sim_create(&s, &c);
    if (rc) return rc;
    out->horizon = c.horizon;
    tutti_rng pick;
    tutti_rng_seed(&pick, seed ^ 0x5eedull);
    for (uint32_t i = 1; i <= members; i++)
        tutti_sim_start(s, i, churn && i == members ? 3 * TUTTI_S + tutti_rng_range(&pick, 0, TUTTI_S)
                                                    : tutti_rng_range(&pick, 0, 200 * TUTTI_MS));
    /* A workload whose total stays bounded however many members there are. */
    uint32_t per = members <= 3 ? 300 : members <= 8 ? 120 : 30;
    tutti_sim_random_workload(s, per, TUTTI_S, 9 * TUTTI_S, 0, 400 * TUTTI_MS);
    uint32_t victim = 1 + (uint32_t)tutti_rng_range(&pick, 0, members - 1);
    if (partition) tutti_sim_partition(s, victim, 3 * TUTTI_S, 6 * TUTTI_S);
    if (crash) tutti_sim_crash(s, victim, 4 * TUTTI_S + tutti_rng_range(&pick, 0, TUTTI_S));
    if (churn) {
        tutti_sim_leave(s, 1, 6 * TUTTI_S + tutti_rng_range(&pick, 0, TUTTI_S));
        tutti_time cut = 4 * TUTTI_S + tutti_rng_range(&pick, 0, TUTTI_S);
        tutti_sim_partition(s, 2, cut, cut + 600 * TUTTI_MS);
    }
    double bpm = 132.0;
    tutti_sim_run_until(s, 5 * TUTTI_S);
    tutti_hub_set_bpm(tutti_sim_hub(s), bpm);
    if (churn) {
        tutti_sim_run_until(s, 5 * TUTTI_S + 50 * TUTTI_MS); /* within L: in flight */
        bpm = 90.0;
        tutti_hub_set_bpm(tutti_sim_hub(s), bpm);
    }
    tutti_sim_run_until(s, 14 * TUTTI_S);

    tutti_sim_report *r = &out->report;
    out->coherent = tutti_sim_check(s, r);
    tutti_hub_status hs;
    tutti_hub_status_get(tutti_sim_hub(s), &hs);
    tutti_time hb = c.heartbeat ? c.heartbeat : c.horizon / 10 < 2 * TUTTI_MS ? 2 * TUTTI_MS
                                                                               : c.horizon / 10;
    if (hb > 20 * TUTTI_MS) hb = 20 * TUTTI_MS;
    /* The timeliness guarantee: a member's watermark reaches everyone within
     * one member-hub-member delay plus one heartbeat (and the quarter heartbeat
     * the hub may hold a watermark back), so with that plus the
     * clock errors (of the sender's stamp and the receiver's judgement) under
     * L nothing can be late. */
    bool bound_held = r->max_delay + hb + hb / 4 + 2 * r->max_clock_err < c.horizon;
    /* A crash or a partition stalls delivery until the member is removed
     * (suspect_after): those events are late by design, and only counted. */
    bool faults = partition || crash || churn;
    out->late_ok = r->late_miscounted == 0 && (faults || !bound_held || r->late_true == 0);
    out->timeline_ok = true;
    bool first = true;
    tutti_timeline ref = {0};
    for (uint32_t i = 1; i <= members; i++) {
        tutti_member_status st;
        tutti_member_status_get(tutti_sim_member(s, i), &st);
        out->submitted += st.submitted;
        if (!st.joined || tutti_sim_crashed(s, i)) continue;
        if (first) ref = st.timeline, first = false;
        else if (!same_timeline(&ref, &st.timeline)) out->timeline_ok = false;
    }
    if (!first && (ref.bpm != bpm || !same_timeline(&ref, &hs.timeline)))
        out->timeline_ok = false;
    snprintf(out->verdict, sizeof out->verdict,
             "%s n=%u seed=%llu: %s, %llu events, %llu late (true %llu, bound %s), "
             "max delay %.1f ms, L %.0f ms%s%s",
             profile, (unsigned)members, (unsigned long long)seed,
             out->coherent ? "coherent" : "INCOHERENT", (unsigned long long)r->user_events,
             (unsigned long long)r->late, (unsigned long long)r->late_true,
             bound_held ? "held" : "exceeded", r->max_delay / 1e6, c.horizon / 1e6,
             out->timeline_ok ? "" : ", TIMELINES DIFFER",
             r->first_problem[0] ? "" : "");
    tutti_sim_destroy(s);
    return 0;
}
