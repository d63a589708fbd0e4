/*
 * The coherence checker for simulated runs.
 *
 * It builds the union of everything any incarnation delivered (sorted by key,
 * one entry per key; two different contents under one key is a conflict), then
 * walks every incarnation against that union over the range it lived through,
 * (joined, last delivered]: the incarnation must have delivered exactly the
 * union's events in that range, in that order. That is the coherence invariant
 * compared on full sequences, not on hashes.
 */
#include "sim/sim.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int cmp_delivery(const void *a, const void *b)
{
    const tutti_sim_delivery *x = a, *y = b;
    return tutti_key_cmp(&x->key, &y->key);
}

static void problem(tutti_sim_report *r, const char *msg, const tutti_sim_log *l,
                    const tutti_key *k)
{
    if (r->first_problem[0]) return;
    snprintf(r->first_problem, sizeof r->first_problem,
             "%s: node %u member %u incarnation %u at key (%lld, %u, %llu)", msg,
             (unsigned)l->node, (unsigned)l->member_id, (unsigned)l->incarnation,
             (long long)k->t, (unsigned)k->origin, (unsigned long long)k->seq);
}

static bool same(const tutti_sim_delivery *a, const tutti_sim_delivery *b)
{
    return tutti_key_cmp(&a->key, &b->key) == 0 && a->kind == b->kind &&
           a->payload_hash == b->payload_hash;
}

/* First index in u[0..n) with key > k. */
static size_t upper(const tutti_sim_delivery *u, size_t n, const tutti_key *k)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (tutti_key_cmp(&u[mid].key, k) <= 0) lo = mid + 1;
        else hi = mid;
    }
    return lo;
}

bool tutti_sim_check(tutti_sim *s, tutti_sim_report *r)
{
    memset(r, 0, sizeof *r);
    const tutti_sim_log *logs;
    size_t nlogs = tutti_sim_logs(s, &logs);
    size_t total = 0;
    for (size_t i = 0; i < nlogs; i++) total += logs[i].n;
    tutti_sim_delivery *u = malloc((total ? total : 1) * sizeof *u);
    if (!u) abort();
    size_t n = 0;
    r->max_delay = tutti_sim_max_delay_seen(s);
    for (size_t i = 0; i < nlogs; i++) {
        const tutti_sim_log *l = &logs[i];
        r->incarnations++;
        r->deliveries += l->n;
        for (size_t k = 0; k < l->n; k++) {
            const tutti_sim_delivery *d = &l->d[k];
            if (k > 0 && tutti_key_cmp(&l->d[k - 1].key, &d->key) >= 0) {
                r->misordered++;
                problem(r, "delivered out of order", l, &d->key);
            }
            if (d->late) r->late++;
            if (d->true_time > d->key.t) r->late_true++;
            u[n++] = *d;
        }
    }
    qsort(u, n, sizeof *u, cmp_delivery);
    size_t m = 0;
    for (size_t i = 0; i < n; i++) {
        if (m > 0 && tutti_key_cmp(&u[m - 1].key, &u[i].key) == 0) {
            if (!same(&u[m - 1], &u[i])) {
                r->conflicting++;
                if (!r->first_problem[0])
                    snprintf(r->first_problem, sizeof r->first_problem,
                             "two different events delivered under key (%lld, %u, %llu)",
                             (long long)u[i].key.t, (unsigned)u[i].key.origin,
                             (unsigned long long)u[i].key.seq);
            }
            continue;
        }
        u[m++] = u[i];
    }
    r->events = m;
    for (size_t i = 0; i < m; i++) r->user_events += u[i].kind == TUTTI_EV_USER;

    for (size_t i = 0; i < nlogs; i++) {
        const tutti_sim_log *l = &logs[i];
        tutti_member_status st;
        tutti_member_status_get(tutti_sim_member(s, l->node), &st);
        bool alive = st.joined && st.incarnation == l->incarnation && !l->removed &&
                     !tutti_sim_crashed(s, l->node);
        if (!alive) r->removed++;
        if (st.clock.locked && st.clock.bound_ns > r->max_bound) r->max_bound = st.clock.bound_ns;
        size_t j = upper(u, m, &l->joined);
        for (size_t k = 0; k < l->n; k++, j++) {
            if (j >= m || !same(&u[j], &l->d[k])) {
                r->missing++;
                problem(r, "delivered sequence differs from the union", l,
                        j < m ? &u[j].key : &l->d[k].key);
                break;
            }
        }
        if (alive) {
            /* A survivor must have everything the union holds after its join. */
            for (; j < m; j++) {
                if (u[j].kind != TUTTI_EV_USER) continue;
                r->incomplete++;
                problem(r, "surviving member is missing events at the end", l, &u[j].key);
            }
        }
        /* Late accounting: each verdict is the member's own clock against the
         * event's time, exactly; the truth differs only by the clock error. */
        for (size_t k = 0; k < l->n; k++) {
            const tutti_sim_delivery *d = &l->d[k];
            if (d->late != (d->locked && d->est_session > d->key.t)) r->late_miscounted++;
            tutti_time err = d->est_session - d->true_time;
            if (err < 0) err = -err;
            if (err > r->max_clock_err) r->max_clock_err = err;
        }
    }
    /* Every member's counter must equal the verdicts it logged. */
    for (uint32_t node = 1;; node++) {
        tutti_member *mem = tutti_sim_member(s, node);
        if (!mem) break;
        tutti_member_status st;
        tutti_member_status_get(mem, &st);
        uint64_t logged = 0;
        for (size_t i = 0; i < nlogs; i++)
            if (logs[i].node == node)
                for (size_t k = 0; k < logs[i].n; k++) logged += logs[i].d[k].late;
        if (logged != st.late) r->late_miscounted++;
    }
    /* Nothing a surviving member submitted may be lost: every survivor that
     * joined before it must have delivered it (the union alone would not see
     * an event nobody delivered). */
    const tutti_sim_submitted *subs;
    size_t nsubs = tutti_sim_submissions(s, &subs);
    for (size_t i = 0; i < nsubs; i++) {
        const tutti_sim_submitted *sb = &subs[i];
        tutti_member_status so;
        tutti_member_status_get(tutti_sim_member(s, sb->node), &so);
        if (!so.joined || so.incarnation != sb->incarnation || tutti_sim_crashed(s, sb->node))
            continue;
        for (size_t j = 0; j < nlogs; j++) {
            const tutti_sim_log *l = &logs[j];
            tutti_member_status st;
            tutti_member_status_get(tutti_sim_member(s, l->node), &st);
            bool alive = st.joined && st.incarnation == l->incarnation &&
                         !tutti_sim_crashed(s, l->node);
            if (!alive || tutti_key_cmp(&sb->key, &l->joined) <= 0) continue;
            size_t lo = 0, hi = l->n;
            while (lo < hi) {
                size_t mid = lo + (hi - lo) / 2;
                if (tutti_key_cmp(&l->d[mid].key, &sb->key) < 0) lo = mid + 1;
                else hi = mid;
            }
            /* An event that reached the hub after its close was moved to a
             * later t: found by its origin and sequence number further on. */
            while (lo < l->n && tutti_key_cmp(&l->d[lo].key, &sb->key) != 0 &&
                   (l->d[lo].key.origin != sb->key.origin || l->d[lo].key.seq != sb->key.seq))
                lo++;
            if (lo == l->n) {
                r->undelivered++;
                problem(r, "a survivor never delivered a survivor's event", l, &sb->key);
            }
        }
    }
    for (uint32_t node = 1;; node++) {
        tutti_member *mem = tutti_sim_member(s, node);
        if (!mem) break;
        tutti_member_status st;
        tutti_member_status_get(mem, &st);
        r->violations += st.violations + st.divergences;
    }
    tutti_hub_status hs;
    tutti_hub_status_get(tutti_sim_hub(s), &hs);
    r->violations += hs.divergences;
    r->moved = hs.moved;
    if (r->violations) problem(r, "merge violations or divergence reported", &logs[0], &logs[0].joined);
    free(u);
    return r->undelivered == 0 && r->violations == 0 && r->misordered == 0 && r->conflicting == 0 && r->missing == 0 &&
           r->incomplete == 0;
}

uint64_t tutti_sim_late_true_at(const tutti_sim *s, uint32_t node)
{
    const tutti_sim_log *logs;
    size_t nlogs = tutti_sim_logs(s, &logs);
    uint64_t n = 0;
    for (size_t i = 0; i < nlogs; i++)
        if (logs[i].node == node)
            for (size_t k = 0; k < logs[i].n; k++)
                n += logs[i].d[k].true_time > logs[i].d[k].key.t;
    return n;
}
