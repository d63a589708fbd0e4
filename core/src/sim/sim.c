/* The simulation platform; see sim.h for the model. */
#include "sim/sim.h"

#include "auth.h"
#include "engine.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum {
    EV_FRAME,
    EV_TICK,
    EV_SUBMIT,
    EV_START,
    EV_CRASH,
    EV_LEAVE,
    EV_FLOOD,    /* a batch of a flood, then the next one a millisecond on */
    EV_FORGE,    /* `gen` events submitted regardless of the role */
    EV_PROPOSE,  /* ask for L = lead */
    EV_STRANGER, /* at the hub: a HELLO from peer `from` */
};

typedef struct simev {
    tutti_time at;
    uint64_t no; /* insertion number: ties in time keep insertion order */
    int type;
    uint32_t node, from;
    uint32_t gen;
    uint32_t len;
    tutti_time lead;
    uint64_t tag;
    uint8_t *buf;
    /* a flood: its rate (events/ns), start, end and how many it has tried */
    double rate;
    tutti_time from_t, until;
    uint64_t done;
} simev;

typedef struct window {
    tutti_time from, to;
} window;

typedef struct simnode {
    struct tutti_sim *sim;
    uint32_t idx;
    long double drift;
    tutti_time offset;
    tutti_member *m;
    bool crashed;
    uint32_t tick_gen;
    tutti_path up, down;
    tutti_time up_last, down_last;
    tutti_time max_up, max_down;
    window pause; /* its process stopped during [from, to) */
    window *parts;
    uint32_t nparts;
    int cur_log; /* index into sim->logs, -1 none */
    uint64_t submits;
    bool untracked; /* tutti_sim_untrack */
} simnode;

struct tutti_sim {
    tutti_sim_config cfg;
    tutti_rng rng;
    tutti_time now;
    uint64_t next_no;
    simev **heap;
    size_t n, cap;
    simnode *nodes; /* 0 = hub */
    uint32_t nnodes;
    tutti_hub *hub;
    tutti_sim_log *logs;
    size_t nlogs, logs_cap;
    tutti_time max_up, max_down;
    uint64_t frames;
    tutti_sim_submitted *subs;
    size_t nsubs, subs_cap;
    uint8_t *payload; /* TUTTI__MAX_PAYLOAD bytes: a submission's */
};

void tutti_sim_config_init(tutti_sim_config *c)
{
    memset(c, 0, sizeof *c);
    c->seed = 1;
    c->members = 3;
    c->up.base = c->down.base = 5 * TUTTI_MS;
    c->horizon = 50 * TUTTI_MS;
    c->suspect_after = 8 * TUTTI_S; /* the hub's default */
    c->rto = 200 * TUTTI_MS;
    c->max_drift_ppm = 50;
    c->max_offset = 10 * TUTTI_S;
    c->auto_rejoin = true;
    c->max_pending = 1u << 20;
    c->role = TUTTI_ROLE_PERFORMER;
}

/* ---------------------------------------------------------- event heap */

static bool ev_less(const simev *a, const simev *b)
{
    return a->at < b->at || (a->at == b->at && a->no < b->no);
}

static void push(tutti_sim *s, simev *e)
{
    e->no = s->next_no++;
    if (s->n == s->cap) {
        s->cap = s->cap ? 2 * s->cap : 1024;
        s->heap = realloc(s->heap, s->cap * sizeof *s->heap);
        if (!s->heap) abort(); /* a test harness: out of memory ends the run */
    }
    size_t i = s->n++;
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (!ev_less(e, s->heap[p])) break;
        s->heap[i] = s->heap[p];
        i = p;
    }
    s->heap[i] = e;
}

static simev *pop(tutti_sim *s)
{
    if (!s->n) return NULL;
    simev *top = s->heap[0], *x = s->heap[--s->n];
    size_t i = 0;
    for (;;) {
        size_t l = 2 * i + 1, m = i;
        const simev *best = x;
        if (l < s->n && ev_less(s->heap[l], best)) m = l, best = s->heap[l];
        if (l + 1 < s->n && ev_less(s->heap[l + 1], best)) m = l + 1;
        if (m == i) break;
        s->heap[i] = s->heap[m];
        i = m;
    }
    if (s->n) s->heap[i] = x;
    return top;
}

static simev *new_ev(int type, uint32_t node, tutti_time at)
{
    simev *e = calloc(1, sizeof *e);
    if (!e) abort();
    e->type = type;
    e->node = node;
    e->at = at;
    return e;
}

/* --------------------------------------------------------------- clocks */

static tutti_time local_at(const simnode *n, tutti_time t)
{
    return (tutti_time)((long double)t * (1.0L + n->drift)) + n->offset;
}

static tutti_time true_at(const simnode *n, tutti_time local)
{
    long double t = (long double)(local - n->offset) / (1.0L + n->drift);
    tutti_time r = (tutti_time)t;
    return r < (tutti_time)t + 1 ? r + 1 : r;
}

tutti_time tutti_sim_node_clock(const tutti_sim *s, uint32_t node, tutti_time t)
{
    return local_at(&s->nodes[node], t);
}

/* ------------------------------------------------------------------ io */

static tutti_time io_now(void *ctx)
{
    simnode *n = ctx;
    return local_at(n, n->sim->now);
}

static uint64_t io_random(void *ctx)
{
    simnode *n = ctx;
    return tutti_rng_next(&n->sim->rng);
}

static bool partitioned(const simnode *n, tutti_time t)
{
    for (uint32_t i = 0; i < n->nparts; i++)
        if (t >= n->parts[i].from && t < n->parts[i].to) return true;
    return false;
}

static void io_send(void *ctx, uint32_t peer, const uint8_t *buf, size_t len)
{
    simnode *from = ctx;
    tutti_sim *s = from->sim;
    simnode *member = from->idx == 0 ? &s->nodes[peer] : from;
    if (from->idx == 0 && (peer == 0 || peer >= s->nnodes)) return;
    if (from->crashed || partitioned(member, s->now)) return;
    bool up = from->idx != 0;
    const tutti_path *p = up ? &member->up : &member->down;
    tutti_time d = tutti_path_delay(p, &s->rng);
    while (p->loss > 0 && tutti_rng_unit(&s->rng) < p->loss) d += s->cfg.rto;
    tutti_time *last = up ? &member->up_last : &member->down_last;
    tutti_time at = s->now + d;
    if (at < *last) at = *last; /* FIFO: a stream holds back what follows a loss */
    *last = at;
    tutti_time seen = at - s->now;
    if (up && seen > s->max_up) s->max_up = seen;
    if (!up && seen > s->max_down) s->max_down = seen;
    if (up && seen > member->max_up) member->max_up = seen;
    if (!up && seen > member->max_down) member->max_down = seen;
    simev *e = new_ev(EV_FRAME, up ? 0 : peer, at);
    e->from = from->idx;
    e->buf = malloc(len ? len : 1);
    if (!e->buf) abort();
    memcpy(e->buf, buf, len);
    e->len = (uint32_t)len;
    s->frames++;
    push(s, e);
}

/* --------------------------------------------------------------- logging */

static tutti_sim_log *current_log(tutti_sim *s, simnode *n)
{
    tutti_member_status st;
    tutti_member_status_get(n->m, &st);
    if (n->cur_log >= 0) {
        tutti_sim_log *l = &s->logs[n->cur_log];
        if (l->incarnation == st.incarnation) return l;
        l->removed = true;
    }
    if (s->nlogs == s->logs_cap) {
        s->logs_cap = s->logs_cap ? 2 * s->logs_cap : 16;
        s->logs = realloc(s->logs, s->logs_cap * sizeof *s->logs);
        if (!s->logs) abort();
    }
    tutti_sim_log *l = &s->logs[s->nlogs];
    memset(l, 0, sizeof *l);
    l->node = n->idx;
    l->member_id = st.id;
    l->incarnation = st.incarnation;
    l->joined = st.joined_at;
    n->cur_log = (int)s->nlogs++;
    return l;
}

static void on_deliver(void *ctx, const tutti_event *ev, tutti_time now_session, bool late)
{
    simnode *n = ctx;
    tutti_sim *s = n->sim;
    tutti_sim_log *l = current_log(s, n);
    if (l->n == l->cap) {
        l->cap = l->cap ? 2 * l->cap : 256;
        l->d = realloc(l->d, l->cap * sizeof *l->d);
        if (!l->d) abort();
    }
    tutti_sim_delivery *d = &l->d[l->n++];
    d->key = ev->key;
    d->kind = ev->kind;
    d->payload_hash = tutti_fnv1a(ev->data, ev->len, TUTTI_FNV_INIT);
    d->true_time = s->now;
    d->est_session = now_session;
    d->late = late;
    tutti_member_status st;
    tutti_member_status_get(n->m, &st);
    d->locked = st.clock.locked;
}

static const tutti_io *node_io(simnode *n, tutti_io *io)
{
    memset(io, 0, sizeof *io);
    io->ctx = n;
    io->now = io_now;
    io->random = io_random;
    io->send = io_send;
    return io;
}

/* ------------------------------------------------------------ lifecycle */

static int node_role(const tutti_sim_config *cfg, uint32_t node)
{
    if (cfg->roles) return cfg->roles[node];
    return node == cfg->conductor ? TUTTI_ROLE_CONDUCTOR : cfg->role;
}

int tutti_sim_create(tutti_sim **out, const tutti_sim_config *cfg)
{
    tutti_sim *s = calloc(1, sizeof *s);
    if (!s) return TUTTI_ENOMEM;
    s->cfg = *cfg;
    tutti_rng_seed(&s->rng, cfg->seed);
    s->payload = malloc(TUTTI__MAX_PAYLOAD);
    if (!s->payload) {
        free(s);
        return TUTTI_ENOMEM;
    }
    s->nnodes = cfg->members + 1;
    s->nodes = calloc(s->nnodes, sizeof *s->nodes);
    if (!s->nodes) {
        free(s->payload);
        free(s);
        return TUTTI_ENOMEM;
    }
    tutti_io io;
    for (uint32_t i = 0; i < s->nnodes; i++) {
        simnode *n = &s->nodes[i];
        n->sim = s;
        n->idx = i;
        n->cur_log = -1;
        n->up = cfg->up;
        n->down = cfg->down;
        if (i > 0) {
            n->drift = (long double)(2 * tutti_rng_unit(&s->rng) - 1) * cfg->max_drift_ppm * 1e-6L;
            /* Monotonic clocks count from boot: positive, and different per node. */
            n->offset = tutti_rng_range(&s->rng, TUTTI_S, cfg->max_offset);
        }
    }
    tutti_hub_config hc;
    tutti_hub_config_init(&hc);
    hc.session = "sim";
    hc.horizon = cfg->horizon;
    hc.heartbeat = cfg->heartbeat;
    hc.suspect_after = cfg->suspect_after;
    hc.max_members = cfg->members * 4 + 4;
    hc.max_pending = cfg->max_pending;
    hc.auto_horizon = cfg->auto_horizon;
    hc.horizon_floor = cfg->horizon_floor;
    hc.floor_for = cfg->floor_for;
    hc.open = !cfg->sealed;
    hc.max_event_rate = cfg->max_event_rate;
    hc.max_event_burst = cfg->max_event_burst;
    hc.max_ahead = cfg->max_ahead;
    hc.max_held = cfg->max_held;
    if (cfg->change_lead > 0) hc.change_lead = cfg->change_lead;
    int rc = tutti_hub_create(&s->hub, &hc, node_io(&s->nodes[0], &io));
    if (rc) {
        tutti_sim_destroy(s);
        return rc;
    }
    /* Sealed: one invitation a member, its secret from the seeded stream. */
    tutti_invite *inv = NULL;
    if (cfg->sealed) {
        inv = calloc(s->nnodes, sizeof *inv);
        if (!inv) {
            tutti_sim_destroy(s);
            return TUTTI_ENOMEM;
        }
        for (uint32_t i = 0; i < s->nnodes; i++) {
            snprintf(inv[i].id, sizeof inv[i].id, "%x", (unsigned)i + 1);
            inv[i].role = node_role(cfg, i);
            for (int k = 0; k < 32; k++) inv[i].secret[k] = (uint8_t)tutti_rng_next(&s->rng);
            tutti_hub_public_key(s->hub, inv[i].hub_pk);
        }
        rc = tutti_hub_set_invites(s->hub, inv, s->nnodes);
        if (rc) {
            free(inv);
            tutti_sim_destroy(s);
            return rc;
        }
    }
    for (uint32_t i = 1; i < s->nnodes; i++) {
        tutti_member_config mc;
        tutti_member_config_init(&mc);
        mc.session = "sim";
        char name[16];
        snprintf(name, sizeof name, "m%u", (unsigned)i);
        mc.name = name;
        mc.auto_rejoin = cfg->auto_rejoin;
        mc.max_pending = cfg->max_pending;
        mc.role = node_role(cfg, i);
        if (inv) mc.invite = &inv[i];
        tutti_member_callbacks cb = {&s->nodes[i], on_deliver, NULL};
        rc = tutti_member_create(&s->nodes[i].m, &mc, node_io(&s->nodes[i], &io), &cb);
        if (rc) {
            free(inv);
            tutti_sim_destroy(s);
            return rc;
        }
    }
    free(inv);
    simev *e = new_ev(EV_TICK, 0, 0);
    push(s, e);
    *out = s;
    return 0;
}

void tutti_sim_destroy(tutti_sim *s)
{
    if (!s) return;
    for (size_t i = 0; i < s->n; i++) {
        free(s->heap[i]->buf);
        free(s->heap[i]);
    }
    free(s->heap);
    for (uint32_t i = 0; i < s->nnodes; i++) {
        if (s->nodes[i].m) tutti_member_destroy(s->nodes[i].m);
        free(s->nodes[i].parts);
    }
    tutti_hub_destroy(s->hub);
    for (size_t i = 0; i < s->nlogs; i++) free(s->logs[i].d);
    free(s->subs);
    free(s->payload);
    free(s->logs);
    free(s->nodes);
    free(s);
}

/* ------------------------------------------------------------ stepping */

static void schedule_tick(tutti_sim *s, simnode *n, tutti_time local_deadline)
{
    tutti_time at = true_at(n, local_deadline);
    if (at <= s->now) at = s->now + 1;
    simev *e = new_ev(EV_TICK, n->idx, at);
    e->gen = ++n->tick_gen;
    push(s, e);
}

static void after_member_call(tutti_sim *s, simnode *n)
{
    /* Every incarnation gets a log when it joins, so one that never delivers
     * anything is still checked. */
    tutti_member_status st;
    tutti_member_status_get(n->m, &st);
    if (st.joined && (n->cur_log < 0 || s->logs[n->cur_log].incarnation != st.incarnation))
        current_log(s, n);
    schedule_tick(s, n, tutti_member_tick(n->m));
}

static void submit(tutti_sim *s, simnode *n, const simev *e, uint64_t tag, bool any_role)
{
    uint8_t *buf = s->payload;
    uint32_t len = e->len < 8 ? 8 : (e->len > TUTTI__MAX_PAYLOAD ? TUTTI__MAX_PAYLOAD : e->len);
    memcpy(buf, &tag, 8);
    for (uint32_t i = 8; i < len; i++) buf[i] = (uint8_t)tutti_rng_next(&s->rng);
    tutti_time t = tutti_member_session_now(n->m) + e->lead;
    tutti_key key;
    int rc = any_role ? tutti__member_submit_any_role(n->m, t, buf, len, &key)
                      : tutti_member_submit(n->m, t, buf, len, &key);
    if (rc != 0) return;
    n->submits++;
    if (n->untracked) return;
    if (s->nsubs == s->subs_cap) {
        s->subs_cap = s->subs_cap ? 2 * s->subs_cap : 1024;
        s->subs = realloc(s->subs, s->subs_cap * sizeof *s->subs);
        if (!s->subs) abort();
    }
    tutti_member_status st;
    tutti_member_status_get(n->m, &st);
    s->subs[s->nsubs++] = (tutti_sim_submitted){key, n->idx, st.incarnation, s->now};
}

/* A stranger's HELLO, as a member's send_hello writes it (member.c): the
 * session and name sealed away, a fresh nonce and ephemeral key. */
static void stranger_hello(tutti_sim *s, uint32_t peer)
{
    uint8_t cnonce[32], seed[32], epk[32], esk[32];
    for (int i = 0; i < 32; i++) cnonce[i] = (uint8_t)tutti_rng_next(&s->rng);
    for (int i = 0; i < 32; i++) seed[i] = (uint8_t)tutti_rng_next(&s->rng);
    tutti__auth_ephemeral(epk, esk, seed);
    tutti__rec r;
    memset(&r, 0, sizeof r);
    r.type = TUTTI__REC_HELLO;
    r.u.hello.session = tutti__str_c("");
    r.u.hello.name = tutti__str_c("");
    r.u.hello.role = TUTTI_ROLE_PERFORMER;
    r.u.hello.recv_next = 1;
    r.u.hello.cnonce = (tutti__str){cnonce, 32};
    r.u.hello.epk = (tutti__str){epk, 32};
    tutti__wbuf b;
    tutti__wbuf_init(&b);
    tutti__frame_hdr hdr = {TUTTI__WIRE_VERSION, 0, 0, 0};
    tutti__frame_begin(&b, &hdr);
    tutti__rec_put(&b, &r);
    if (!b.err) tutti_hub_receive(s->hub, peer, b.p, b.len);
    tutti__wbuf_free(&b);
}

/* One batch of a flood: what is due by now, then the next a millisecond on. */
static void flood(tutti_sim *s, simnode *n, simev *e)
{
    uint64_t due = (uint64_t)((double)(s->now - e->from_t) * e->rate);
    for (; e->done < due; e->done++) submit(s, n, e, e->tag + e->done, false);
    if (s->now + TUTTI_MS >= e->until) return;
    simev *next = new_ev(EV_FLOOD, e->node, s->now + TUTTI_MS);
    *next = *e;
    next->at = s->now + TUTTI_MS;
    push(s, next);
}

static void step(tutti_sim *s, simev *e)
{
    simnode *n = &s->nodes[e->node];
    if (e->node == 0) {
        if (e->type == EV_FRAME) tutti_hub_receive(s->hub, e->from, e->buf, e->len);
        if (e->type == EV_STRANGER) stranger_hello(s, e->from);
        tutti_time next = tutti_hub_tick(s->hub);
        if (e->type == EV_TICK) {
            simev *t = new_ev(EV_TICK, 0, true_at(n, next));
            if (t->at <= s->now) t->at = s->now + 1;
            push(s, t);
        }
        return;
    }
    if (n->crashed) return;
    if (s->now >= n->pause.from && s->now < n->pause.to) {
        /* Stopped: what comes waits, in order, until it goes on. */
        if (n->pause.to == TUTTI_TIME_MAX) return;
        simev *w = new_ev(e->type, e->node, n->pause.to);
        *w = *e;
        w->at = n->pause.to;
        e->buf = NULL; /* now w's */
        push(s, w);
        return;
    }
    switch (e->type) {
    case EV_FRAME:
        tutti_member_receive(n->m, e->buf, e->len);
        after_member_call(s, n);
        break;
    case EV_TICK:
        if (e->gen != n->tick_gen) return;
        after_member_call(s, n);
        break;
    case EV_SUBMIT:
        submit(s, n, e, e->tag, false);
        after_member_call(s, n);
        break;
    case EV_FLOOD:
        flood(s, n, e);
        after_member_call(s, n);
        break;
    case EV_FORGE:
        for (uint32_t i = 0; i < e->gen; i++) submit(s, n, e, e->tag + i, true);
        after_member_call(s, n);
        break;
    case EV_PROPOSE:
        tutti_member_propose_horizon(n->m, e->lead);
        after_member_call(s, n);
        break;
    case EV_START:
        tutti_member_connected(n->m);
        after_member_call(s, n);
        break;
    case EV_CRASH:
        n->crashed = true;
        if (n->cur_log >= 0) s->logs[n->cur_log].removed = true;
        break;
    case EV_LEAVE:
        tutti_member_leave(n->m);
        if (n->cur_log >= 0) s->logs[n->cur_log].removed = true;
        after_member_call(s, n);
        break;
    }
}

void tutti_sim_run_until(tutti_sim *s, tutti_time until)
{
    for (;;) {
        if (!s->n || s->heap[0]->at > until) break;
        simev *e = pop(s);
        s->now = e->at;
        step(s, e);
        free(e->buf);
        free(e);
    }
    if (s->now < until) s->now = until;
}

/* --------------------------------------------------------------- control */

static void at_node(tutti_sim *s, int type, uint32_t node, tutti_time at)
{
    if (node == 0 || node >= s->nnodes) return;
    push(s, new_ev(type, node, at));
}

void tutti_sim_start(tutti_sim *s, uint32_t node, tutti_time at)
{
    at_node(s, EV_START, node, at);
}

void tutti_sim_crash(tutti_sim *s, uint32_t node, tutti_time at)
{
    at_node(s, EV_CRASH, node, at);
}

void tutti_sim_leave(tutti_sim *s, uint32_t node, tutti_time at)
{
    at_node(s, EV_LEAVE, node, at);
}

void tutti_sim_pause(tutti_sim *s, uint32_t node, tutti_time from, tutti_time to)
{
    if (node == 0 || node >= s->nnodes) return;
    s->nodes[node].pause = (window){from, to};
}

void tutti_sim_partition(tutti_sim *s, uint32_t node, tutti_time from, tutti_time to)
{
    if (node == 0 || node >= s->nnodes) return;
    simnode *n = &s->nodes[node];
    window *w = realloc(n->parts, (n->nparts + 1) * sizeof *w);
    if (!w) abort();
    n->parts = w;
    n->parts[n->nparts++] = (window){from, to};
}

void tutti_sim_set_paths(tutti_sim *s, uint32_t node, const tutti_path *up,
                         const tutti_path *down)
{
    if (node == 0 || node >= s->nnodes) return;
    if (up) s->nodes[node].up = *up;
    if (down) s->nodes[node].down = *down;
}

void tutti_sim_submit(tutti_sim *s, uint32_t node, tutti_time at, tutti_time lead,
                      uint32_t len, uint64_t tag)
{
    if (node == 0 || node >= s->nnodes) return;
    simev *e = new_ev(EV_SUBMIT, node, at);
    e->lead = lead;
    e->len = len;
    e->tag = tag;
    push(s, e);
}

void tutti_sim_flood(tutti_sim *s, uint32_t node, tutti_time from, tutti_time to, double rate,
                     tutti_time lead, uint32_t len)
{
    if (node == 0 || node >= s->nnodes || to <= from || !(rate > 0)) return;
    simev *e = new_ev(EV_FLOOD, node, from);
    e->rate = rate / 1e9;
    e->from_t = from;
    e->until = to;
    e->lead = lead;
    e->len = len;
    e->tag = (uint64_t)node << 40 | 1ull << 39;
    push(s, e);
}

void tutti_sim_forge(tutti_sim *s, uint32_t node, tutti_time at, tutti_time lead, uint32_t len,
                     uint32_t count)
{
    if (node == 0 || node >= s->nnodes) return;
    simev *e = new_ev(EV_FORGE, node, at);
    e->lead = lead;
    e->len = len;
    e->gen = count;
    e->tag = (uint64_t)node << 40 | 1ull << 38;
    push(s, e);
}

void tutti_sim_propose_horizon(tutti_sim *s, uint32_t node, tutti_time at, tutti_time horizon)
{
    if (node == 0 || node >= s->nnodes) return;
    simev *e = new_ev(EV_PROPOSE, node, at);
    e->lead = horizon;
    push(s, e);
}

void tutti_sim_untrack(tutti_sim *s, uint32_t node)
{
    if (node > 0 && node < s->nnodes) s->nodes[node].untracked = true;
}

void tutti_sim_strangers(tutti_sim *s, uint32_t count, tutti_time from, tutti_time to)
{
    for (uint32_t i = 0; i < count; i++) {
        simev *e = new_ev(EV_STRANGER, 0, from + (to - from) * (tutti_time)i / (tutti_time)count);
        e->from = s->nnodes + i;
        push(s, e);
    }
}

void tutti_sim_random_workload(tutti_sim *s, uint32_t per_node, tutti_time from,
                               tutti_time to, tutti_time lead_lo, tutti_time lead_hi)
{
    for (uint32_t i = 1; i < s->nnodes; i++) {
        for (uint32_t k = 0; k < per_node; k++) {
            tutti_time at = tutti_rng_range(&s->rng, from, to - 1);
            tutti_time lead = tutti_rng_range(&s->rng, lead_lo, lead_hi);
            uint32_t len = (uint32_t)tutti_rng_range(&s->rng, 8, 48);
            tutti_sim_submit(s, i, at, lead, len, ((uint64_t)i << 40) | k);
        }
    }
}

/* ---------------------------------------------------------- introspection */

tutti_time tutti_sim_now(const tutti_sim *s)
{
    return s->now;
}

tutti_member *tutti_sim_member(tutti_sim *s, uint32_t node)
{
    return node > 0 && node < s->nnodes ? s->nodes[node].m : NULL;
}

tutti_hub *tutti_sim_hub(tutti_sim *s)
{
    return s->hub;
}

size_t tutti_sim_logs(const tutti_sim *s, const tutti_sim_log **logs)
{
    *logs = s->logs;
    return s->nlogs;
}

tutti_time tutti_sim_max_delay_seen(const tutti_sim *s)
{
    return s->max_up + s->max_down;
}

tutti_time tutti_sim_max_up(const tutti_sim *s, uint32_t node)
{
    return node > 0 && node < s->nnodes ? s->nodes[node].max_up : s->max_up;
}

tutti_time tutti_sim_max_down(const tutti_sim *s, uint32_t node)
{
    return node > 0 && node < s->nnodes ? s->nodes[node].max_down : s->max_down;
}

tutti_time tutti_sim_true_session(const tutti_sim *s)
{
    return s->now; /* the hub's clock is the true clock, epoch 0 */
}

uint64_t tutti_sim_frames_sent(const tutti_sim *s)
{
    return s->frames;
}

bool tutti_sim_crashed(const tutti_sim *s, uint32_t node)
{
    if (node == 0 || node >= s->nnodes) return false;
    const simnode *n = &s->nodes[node];
    /* stopped for good: as good as crashed */
    return n->crashed || (n->pause.to == TUTTI_TIME_MAX && s->now >= n->pause.from);
}

size_t tutti_sim_submissions(const tutti_sim *s, const tutti_sim_submitted **subs)
{
    *subs = s->subs;
    return s->nsubs;
}
