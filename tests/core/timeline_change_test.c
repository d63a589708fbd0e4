/*
 * Timeline changes (tempo, transport) in simulation: the change rule of
 * tutti_member_propose_bpm, checked on virtual time.
 *
 * - exact: fixed path delays and no drift, so the bar a change lands on is
 *   known in advance to the nanosecond.
 * - everywhere: many seeds of jittery paths with drifting clocks, a late
 *   joiner and a performer whose request is refused; lossy: the same with
 *   2 % of segments lost. The test steps the
 *   simulation 1 ms at a time and notes, for every member, the true session
 *   time at which it first knew each change (polling can only make a change
 *   look known later, so the check is conservative). Every member must end
 *   with the same changes, each starting on a bar line of the timeline before
 *   it with the beat continuous there, and every member that was in the
 *   session when a change was agreed must have known it at least the hub's
 *   change lead before it took effect (less, with loss, exactly as late as it
 *   delivered the change's command).
 *
 * TUTTI_SIM_SEEDS sets the seeds of the second part (default 8).
 */
#include "engine.h"
#include "sim/sim.h"
#include "test.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define MEMBERS 4
#define MAX_CHANGES 16

static int seeds(void)
{
    const char *e = getenv("TUTTI_SIM_SEEDS");
    int n = e ? atoi(e) : 8;
    return n > 0 ? n : 8;
}

static bool same(const tutti_timeline *a, const tutti_timeline *b)
{
    return a->bpm == b->bpm && a->beat0 == b->beat0 && a->t0 == b->t0 &&
           a->quantum == b->quantum && a->playing == b->playing;
}

/* What one member saw: each change (by its t0) and the true session time it
 * first knew it, and whether it was in the session when it was agreed. */
typedef struct seen {
    tutti_timeline tl[MAX_CHANGES];
    tutti_time known[MAX_CHANGES];
    uint32_t n;
    uint64_t seq;
} seen;

static void note_schedule(tutti_sim *s, uint32_t node, seen *v)
{
    tutti_member *m = tutti_sim_member(s, node);
    tutti_member_status st;
    tutti_member_status_get(m, &st);
    if (!st.joined || st.timeline_seq == v->seq) return;
    v->seq = st.timeline_seq;
    tutti_timeline sched[MAX_CHANGES];
    uint32_t n = tutti_member_timeline_schedule(m, sched, MAX_CHANGES);
    CHECK(n >= 1 && n <= MAX_CHANGES);
    CHECK(same(&sched[0], &st.timeline));
    CHECK(st.timeline_pending == (n > 1));
    if (n > 1) CHECK(same(&sched[1], &st.next_timeline));
    for (uint32_t i = 0; i < n && i < MAX_CHANGES; i++) {
        bool have = false;
        for (uint32_t k = 0; k < v->n; k++)
            if (v->tl[k].t0 == sched[i].t0) {
                /* a later command for the same bar replaces a change there:
                 * that one is known from now */
                if (!same(&v->tl[k], &sched[i])) v->known[k] = tutti_sim_true_session(s);
                v->tl[k] = sched[i];
                have = true;
            }
        if (!have && v->n < MAX_CHANGES) {
            v->tl[v->n] = sched[i];
            v->known[v->n++] = tutti_sim_true_session(s);
        }
    }
}

/* Fixed delays, no drift: the change lands on the bar line the rule names. */
static void exact(void)
{
    tutti_sim_config c;
    tutti_sim_config_init(&c);
    c.seed = 3;
    c.members = 2;
    c.up = c.down = (tutti_path){20 * TUTTI_MS, 0, TUTTI_JITTER_UNIFORM, 0};
    c.horizon = 100 * TUTTI_MS;
    c.max_drift_ppm = 0;
    c.conductor = 1;
    c.change_lead = 700 * TUTTI_MS;
    tutti_sim *s = NULL;
    CHECK(tutti_sim_create(&s, &c) == 0);
    if (!s) return;
    tutti_sim_start(s, 1, 0);
    tutti_sim_start(s, 2, 0);
    tutti_sim_run_until(s, 2 * TUTTI_S);
    tutti_hub_status hs;
    tutti_hub_status_get(tutti_sim_hub(s), &hs);
    CHECK_EQ_I64(hs.change_lead, 700 * TUTTI_MS);
    tutti_timeline first = hs.timeline; /* 120 bpm, 4 beats a bar: 2 s a bar */
    CHECK(first.bpm == 120.0 && first.quantum == 4.0 && !first.playing);

    /* The hub's clock is session time here (node 0 has no offset or drift)
     * and the session started at 0: bars at 0, 2, 4 s. A change asked for at
     * 2 s is stamped L later (2.1 s) and takes effect on the first bar line
     * at or after 2.1 + 0.7 s: beat 8, at 4 s. */
    CHECK_EQ_I64(first.t0, 0);
    CHECK_EQ_I64(tutti_sim_true_session(s), 2 * TUTTI_S);
    CHECK(tutti_hub_set_bpm(tutti_sim_hub(s), 90.0) == 0);
    tutti_timeline want = first;
    want.beat0 = 8.0;
    want.t0 = 4 * TUTTI_S;
    want.bpm = 90.0;
    /* The command is delivered by its time, 2.1 s, at both members. */
    tutti_sim_run_until(s, 2100 * TUTTI_MS);
    for (uint32_t i = 1; i <= 2; i++) {
        tutti_member_status st;
        tutti_member_status_get(tutti_sim_member(s, i), &st);
        CHECK(st.timeline_pending);
        CHECK(same(&st.next_timeline, &want));
        CHECK(same(&st.timeline, &first));
        CHECK_EQ_I64(st.timeline_seq, 2); /* the first timeline and this change */
    }
    /* A performer may not; the refusal comes back as a notice. */
    CHECK(tutti_member_propose_bpm(tutti_sim_member(s, 2), 60.0) == 0);
    /* Start the transport, asked for at once: the bar line it lands on is
     * the one of the tempo change (stamped later, the first bar line of the
     * 90 bpm grid at or after that is its start), so it replaces that change
     * with one that does both. */
    CHECK(tutti_member_propose_transport(tutti_sim_member(s, 1), true) == 0);
    tutti_sim_run_until(s, 3 * TUTTI_S);
    tutti_hub_status_get(tutti_sim_hub(s), &hs);
    CHECK_EQ_I64(hs.refused_requests, 1);
    tutti_member_status st;
    tutti_timeline sched[4];
    want.playing = true;
    for (uint32_t i = 1; i <= 2; i++) {
        CHECK(tutti_member_timeline_schedule(tutti_sim_member(s, i), sched, 4) == 2);
        CHECK(same(&sched[0], &first));
        CHECK(same(&sched[1], &want));
        tutti_member_status_get(tutti_sim_member(s, i), &st);
        CHECK_EQ_I64(st.timeline_seq, 3);
    }
    /* Asking for what is already ordered issues nothing. */
    CHECK(tutti_hub_set_transport(tutti_sim_hub(s), true) == 0);
    /* Stop at 5 s: stamped 5.1 s, so the first bar line of the 90 bpm grid
     * (8/3 s a bar from beat 8 at 4 s) at or after 5.8 s: beat 12. */
    tutti_sim_run_until(s, 5 * TUTTI_S);
    CHECK(tutti_hub_set_transport(tutti_sim_hub(s), false) == 0);
    tutti_timeline stop = want;
    stop.playing = false;
    stop.beat0 = 12.0;
    stop.t0 = 4 * TUTTI_S + INT64_C(2666666667);
    tutti_sim_run_until(s, 5100 * TUTTI_MS);
    for (uint32_t i = 1; i <= 2; i++) {
        tutti_member_status_get(tutti_sim_member(s, i), &st);
        CHECK(same(&st.timeline, &want));
        CHECK(st.timeline_pending && same(&st.next_timeline, &stop));
    }
    tutti_sim_run_until(s, 8 * TUTTI_S);
    for (uint32_t i = 1; i <= 2; i++) {
        tutti_member_status_get(tutti_sim_member(s, i), &st);
        CHECK(!st.timeline_pending);
        CHECK(same(&st.timeline, &stop));
        CHECK_EQ_I64(st.timeline_seq, 4);
    }
    tutti_sim_destroy(s);
}

typedef struct run_result {
    int problems;
    tutti_time least_lead; /* smallest (t0 - known) of commands delivered on time */
    tutti_time most_late;  /* the latest a change's command was delivered */
    uint32_t changes;
} run_result;

/* How late (true time after its key's t; the hub's clock is true time here)
 * member `node` delivered the command it learnt a change from, polled at
 * `known` (the change arrives with a command delivered in the millisecond
 * before); 0 when it was on time. */
static tutti_time command_lateness(const tutti_sim *s, uint32_t node, tutti_time known)
{
    const tutti_sim_log *logs;
    size_t n = tutti_sim_logs(s, &logs);
    tutti_time late = 0;
    for (size_t i = 0; i < n; i++) {
        if (logs[i].node != node) continue;
        for (size_t k = 0; k < logs[i].n; k++) {
            const tutti_sim_delivery *d = &logs[i].d[k];
            if (d->kind != TUTTI_EV_COMMAND || d->true_time > known ||
                d->true_time < known - TUTTI_MS)
                continue;
            if (d->true_time - d->key.t > late) late = d->true_time - d->key.t;
        }
    }
    return late;
}

static void everywhere_run(uint64_t seed, double loss, run_result *o)
{
    tutti_sim_config c;
    tutti_sim_config_init(&c);
    c.seed = seed;
    c.members = MEMBERS;
    c.up = c.down = (tutti_path){30 * TUTTI_MS, 10 * TUTTI_MS, TUTTI_JITTER_NORMAL, loss};
    c.horizon = 150 * TUTTI_MS;
    c.max_drift_ppm = 100;
    c.conductor = 1;
    c.change_lead = 500 * TUTTI_MS;
    tutti_sim *s = NULL;
    CHECK(tutti_sim_create(&s, &c) == 0);
    if (!s) return;
    for (uint32_t i = 1; i < MEMBERS; i++)
        tutti_sim_start(s, i, (tutti_time)i * 37 * TUTTI_MS);
    tutti_sim_start(s, MEMBERS, 5 * TUTTI_S); /* joins late */
    tutti_sim_random_workload(s, 60, TUTTI_S, 11 * TUTTI_S, 0, 300 * TUTTI_MS);
    tutti_rng r;
    tutti_rng_seed(&r, seed * 7919);
    /* The requests: at random moments, some close together (two in flight at
     * once, the second for the same bar), one from a performer. */
    tutti_time at[6];
    for (int k = 0; k < 6; k++)
        at[k] = 2 * TUTTI_S + tutti_rng_range(&r, 0, 7 * TUTTI_S);
    at[1] = at[0] + tutti_rng_range(&r, 0, 200 * TUTTI_MS);
    seen v[MEMBERS + 1];
    memset(v, 0, sizeof v);
    tutti_time joined_at[MEMBERS + 1] = {0};
    uint64_t refused_before = 0;
    {
        tutti_hub_status hs;
        tutti_hub_status_get(tutti_sim_hub(s), &hs);
        refused_before = hs.refused_requests;
    }
    for (tutti_time t = TUTTI_MS; t <= 14 * TUTTI_S; t += TUTTI_MS) {
        tutti_sim_run_until(s, t);
        for (int k = 0; k < 6; k++) {
            if (at[k] < t - TUTTI_MS || at[k] >= t) continue;
            uint32_t node = k == 5 ? 2 : 1; /* the last one a performer's */
            tutti_member *m = tutti_sim_member(s, node);
            if (k == 2 || k == 4)
                tutti_member_propose_transport(m, k == 2);
            else
                tutti_member_propose_bpm(m, 60.0 + 20.0 * k + (double)(seed % 7));
        }
        for (uint32_t i = 1; i <= MEMBERS; i++) {
            tutti_member_status st;
            tutti_member_status_get(tutti_sim_member(s, i), &st);
            if (st.joined && !joined_at[i]) joined_at[i] = tutti_sim_true_session(s);
            note_schedule(s, i, &v[i]);
        }
    }
    tutti_hub_status hs;
    tutti_hub_status_get(tutti_sim_hub(s), &hs);
    if (hs.refused_requests != refused_before + 1) o->problems++;
    /* Every member ends with the same changes; the late joiner's list starts
     * with the timeline in force when it joined. */
    seen *ref = &v[1];
    o->changes = ref->n;
    for (uint32_t i = 2; i <= MEMBERS; i++) {
        uint32_t off = 0;
        while (off < ref->n && ref->tl[off].t0 != v[i].tl[0].t0)
            off++;
        if (v[i].n == 0 || off == ref->n || (i < MEMBERS && off != 0) ||
            v[i].n + off != ref->n) {
            o->problems++;
            fprintf(stderr,
                    "  seed %llu: member %u has %u changes from %u, member 1 %u\n",
                    (unsigned long long)seed, i, v[i].n, off, ref->n);
            continue;
        }
        for (uint32_t k = 0; k < v[i].n; k++)
            if (!same(&v[i].tl[k], &ref->tl[k + off])) {
                o->problems++;
                fprintf(stderr, "  seed %llu: member %u's change %u differs\n",
                        (unsigned long long)seed, i, k);
            }
    }
    /* Each change on a bar line of the one before, beat continuous; known
     * at least the change lead ahead by every member there when agreed. */
    for (uint32_t k = 1; k < ref->n; k++) {
        const tutti_timeline *a = &ref->tl[k - 1], *b = &ref->tl[k];
        if (fmod(b->beat0, b->quantum) != 0.0 ||
            fabs(tutti_timeline_beat_at(a, b->t0) - b->beat0) > 1e-6 || b->t0 <= a->t0) {
            o->problems++;
            fprintf(stderr, "  seed %llu: change %u is not on a bar line of the last\n",
                    (unsigned long long)seed, k);
        }
        /* when it was agreed: the first member to know it */
        tutti_time agreed = TUTTI_TIME_MAX;
        for (uint32_t i = 1; i <= MEMBERS; i++)
            for (uint32_t j = 0; j < v[i].n; j++)
                if (v[i].tl[j].t0 == b->t0 && v[i].known[j] < agreed) agreed = v[i].known[j];
        for (uint32_t i = 1; i <= MEMBERS; i++)
            for (uint32_t j = 0; j < v[i].n; j++) {
                /* a member that joined after it was agreed has it from its
                 * join on, with the snapshot */
                if (v[i].tl[j].t0 != b->t0 || joined_at[i] >= agreed) continue;
                tutti_time lead = b->t0 - v[i].known[j];
                /* a lost segment (one retransmission timeout) can make the
                 * command itself late: the change is then known that much
                 * later, never later than the command */
                tutti_time late = command_lateness(s, i, v[i].known[j]);
                if (late > o->most_late) o->most_late = late;
                if (late == 0 && lead < o->least_lead) o->least_lead = lead;
                if (lead < hs.change_lead - late) {
                    o->problems++;
                    fprintf(stderr,
                            "  seed %llu: member %u knew change %u only %.1f ms ahead\n",
                            (unsigned long long)seed, i, k, lead / 1e6);
                }
            }
    }
    tutti_sim_report rep;
    if (!tutti_sim_check(s, &rep)) {
        o->problems++;
        fprintf(stderr, "  seed %llu: %s\n", (unsigned long long)seed, rep.first_problem);
    }
    tutti_sim_destroy(s);
}

static void everywhere_with(double loss)
{
    tutti_time least = TUTTI_TIME_MAX, late = 0;
    uint32_t changes = 0;
    for (int i = 0; i < seeds(); i++) {
        run_result o = {0, TUTTI_TIME_MAX, 0, 0};
        everywhere_run(500 + (uint64_t)i, loss, &o);
        CHECK(o.problems == 0);
        CHECK(o.changes >= 2); /* the first timeline and at least one change */
        if (o.least_lead < least) least = o.least_lead;
        if (o.most_late > late) late = o.most_late;
        changes += o.changes;
    }
    fprintf(
        stderr,
        "  loss %.0f%%: %u timelines over %d seeds; a change delivered on time was known "
        "%.1f ms ahead at least; the latest delivery %.1f ms late\n",
        loss * 100, changes, seeds(), least / 1e6, late / 1e6);
}

/* Delays within L: every change known the change lead ahead. */
static void everywhere(void)
{
    everywhere_with(0);
}

/* 2 % of segments lost (a 200 ms retransmission each, beyond L = 150 ms):
 * a late command makes its change known late by as much, no more. */
static void lossy(void)
{
    everywhere_with(0.02);
}

int main(void)
{
    RUN(exact);
    RUN(everywhere);
    RUN(lossy);
    TEST_END();
}
