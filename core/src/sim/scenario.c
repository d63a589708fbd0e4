/*
 * The acceptance scenarios: seeded sessions over named network profiles, with
 * a random workload, a tempo change, and the profile's faults, checked by
 * tutti_sim_check. Used by the simulation tests and by `tutti simulate`.
 */
#include "sim/sim.h"

#include <stdio.h>
#include <string.h>

const char *const tutti_sim_profiles[] = {"lan",   "wan40", "wan150", "partition", "crash",
                                          "churn", "freeze", "silent", "cut",       NULL};

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
    /* PROFILE-sealed: the same with invitations, so every link is encrypted */
    char base[32];
    size_t pl = strlen(profile);
    if (pl > 7 && pl - 7 < sizeof base && !strcmp(profile + pl - 7, "-sealed")) {
        memcpy(base, profile, pl - 7);
        base[pl - 7] = 0;
        profile = base;
        c.sealed = true;
    }
    bool partition = false, crash = false, churn = false, freeze = false, silent = false,
         cut = false;
    if (!strcmp(profile, "lan")) {
        c.up = c.down = hop(50000, 50000, TUTTI_JITTER_UNIFORM, 0);
        c.horizon = 10 * TUTTI_MS;
    } else if (!strcmp(profile, "wan40") || !strcmp(profile, "partition") ||
               !strcmp(profile, "crash") || !strcmp(profile, "churn") ||
               !strcmp(profile, "freeze") || !strcmp(profile, "silent") ||
               !strcmp(profile, "cut")) {
        c.up = c.down = hop(20 * TUTTI_MS, 5 * TUTTI_MS, TUTTI_JITTER_UNIFORM, 0);
        c.horizon = 80 * TUTTI_MS;
        partition = !strcmp(profile, "partition");
        crash = !strcmp(profile, "crash");
        churn = !strcmp(profile, "churn");
        freeze = !strcmp(profile, "freeze");
        silent = !strcmp(profile, "silent");
        cut = !strcmp(profile, "cut");
        if (churn && members < 3) return TUTTI_EINVAL;
        /* the partition is longer than the member's place is kept: it is
         * removed and joins again; the others keep theirs (8 s) */
        if (partition) c.suspect_after = TUTTI_S;
        /* the silent joiner is a node more, one that plays nothing */
        if (silent) c.members = members + 1;
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
    /* The faulty members; every other one is honest, and whatever the faulty
     * ones do must cost an honest one nothing. */
    bool faulty[TUTTI_PARTS * 4] = {false};
    uint32_t victim = 1 + (uint32_t)tutti_rng_range(&pick, 0, members - 1);
    if (members < TUTTI_PARTS * 4 - 1) faulty[victim] = partition || crash || freeze || cut;
    if (partition) tutti_sim_partition(s, victim, 3 * TUTTI_S, 6 * TUTTI_S);
    if (crash) tutti_sim_crash(s, victim, 4 * TUTTI_S + tutti_rng_range(&pick, 0, TUTTI_S));
    if (freeze) {
        /* a laptop that stops for 3 s (SIGSTOP ... SIGCONT) */
        tutti_time at = 3 * TUTTI_S + tutti_rng_range(&pick, 0, TUTTI_S);
        tutti_sim_pause(s, victim, at, at + 3 * TUTTI_S);
    }
    if (cut) {
        tutti_time at = 3 * TUTTI_S + tutti_rng_range(&pick, 0, TUTTI_S);
        tutti_sim_partition(s, victim, at, at + 2 * TUTTI_S);
    }
    if (silent) {
        /* connects at 2 s, is admitted, and from then on says nothing */
        tutti_time at = 2 * TUTTI_S + tutti_rng_range(&pick, 0, TUTTI_S);
        tutti_sim_start(s, members + 1, at);
        tutti_sim_pause(s, members + 1, at + 500 * TUTTI_MS, TUTTI_TIME_MAX);
        faulty[members + 1] = true;
    }
    if (churn) {
        tutti_sim_leave(s, 1, 6 * TUTTI_S + tutti_rng_range(&pick, 0, TUTTI_S));
        tutti_time at = 4 * TUTTI_S + tutti_rng_range(&pick, 0, TUTTI_S);
        tutti_sim_partition(s, 2, at, at + 600 * TUTTI_MS);
        faulty[1] = faulty[2] = true;
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
    tutti_member_status ms;
    tutti_member_status_get(tutti_sim_member(s, 1), &ms);
    tutti_time hb = ms.heartbeat;
    tutti_time lead = hs.close_lead, room = c.horizon - lead;
    /* The timeliness guarantee (hub.c, close_lead): an event reaches the hub
     * before its close when its trip and its origin's clock error stay under
     * L - c, and the close reaches a member in time when its trip back, a
     * heartbeat and the member's clock error stay under c. Then nothing is
     * late and nothing moved at an honest member, whatever the faulty ones
     * do: delivery waits for the hub's close alone. */
    tutti_time up = 0, down = 0;
    uint64_t late_honest = 0;
    for (uint32_t i = 1; i < c.members + 1; i++) {
        if (faulty[i]) continue;
        if (tutti_sim_max_up(s, i) > up) up = tutti_sim_max_up(s, i);
        if (tutti_sim_max_down(s, i) > down) down = tutti_sim_max_down(s, i);
        late_honest += tutti_sim_late_true_at(s, i);
    }
    bool bound_held = up + 2 * r->max_clock_err < room && down + hb + 2 * r->max_clock_err < lead;
    out->late_honest = late_honest;
    out->late_ok = r->late_miscounted == 0 && (!bound_held || late_honest == 0);
    /* With no fault, nothing is moved either while the bound holds. */
    bool faults = partition || crash || churn || freeze || cut || silent;
    if (!faults && bound_held && r->moved) out->late_ok = false;
    out->timeline_ok = true;
    bool first = true;
    tutti_timeline ref = {0};
    for (uint32_t i = 1; i <= members; i++) {
        tutti_member_status st;
        tutti_member_status_get(tutti_sim_member(s, i), &st);
        out->submitted += st.submitted;
        if (!st.joined || tutti_sim_crashed(s, i) || faulty[i]) continue;
        if (first) ref = st.timeline, first = false;
        else if (!same_timeline(&ref, &st.timeline)) out->timeline_ok = false;
    }
    if (!first && (ref.bpm != bpm || !same_timeline(&ref, &hs.timeline)))
        out->timeline_ok = false;
    snprintf(out->verdict, sizeof out->verdict,
             "%s n=%u seed=%llu: %s, %llu events, %llu late (true %llu, at honest members "
             "%llu, bound %s), %llu moved, max delay %.1f ms, L %.0f ms, close lead %.1f ms%s%s",
             profile, (unsigned)members, (unsigned long long)seed,
             out->coherent ? "coherent" : "INCOHERENT", (unsigned long long)r->user_events,
             (unsigned long long)r->late, (unsigned long long)r->late_true,
             (unsigned long long)late_honest, bound_held ? "held" : "exceeded",
             (unsigned long long)r->moved, r->max_delay / 1e6, c.horizon / 1e6, lead / 1e6,
             out->timeline_ok ? "" : ", TIMELINES DIFFER",
             r->first_problem[0] ? "" : "");
    tutti_sim_destroy(s);
    return 0;
}
