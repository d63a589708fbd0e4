/*
 * The member engine.
 *
 * Design notes
 * ------------
 * - A member delivers only what came back from the hub, its own events
 *   included. The hub therefore holds a superset of everything any member has
 *   delivered, which is what makes a removal cut safe: the hub's last sequence
 *   number of the removed member is exactly the set everyone delivers.
 * - The horizon rule (at the origin, deterministic): an event submitted for
 *   session time t is stamped t' = max(t, W) where W = max(W_prev, now + L) is
 *   the watermark this member has promised. Watermarks only grow, so every
 *   event it will ever send has t' >= every watermark it has announced.
 * - Delivery waits for the hub's close alone (order.h): every key with t
 *   below the close the hub last sent is delivered. Every sequenced frame to
 *   the hub still carries this member's watermark, and a heartbeat does when
 *   there is nothing to send: the hub checks events against it, measures
 *   the trip with it, and knows the member is there. An event of this
 *   member that reached the hub after its close comes back moved (its
 *   moved_from says from where): counted, and played where it was moved.
 * - The hash chain covers every event delivered since this incarnation joined;
 *   every TUTTI__CHECKPOINT events the member reports (count, hash) and the
 *   coordinator, which delivers the same sequence, compares.
 * - Joining and resuming go through the hub's challenge (auth.h): HELLO with
 *   a fresh nonce and ephemeral key, the hub's signed CHALLENGE (checked
 *   against the pinned hub key, if any), AUTH with the proof. The member
 *   secret derived at a join is what a later resume proves; a new HELLO
 *   (every second while unanswered, each with fresh randomness) starts the
 *   handshake over, and only the challenge to the latest one is answered.
 * - Commands have two moments. On receipt they change what the merge must
 *   wait for (ADD registers an origin, REMOVE fixes where its stream ends) and
 *   what this member stamps with (HORIZON). On delivery, in the total order,
 *   they change what users see (the member list, the timeline).
 */
#include "auth.h"
#include "clock.h"
#include "engine.h"
#include "order.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { M_IDLE, M_HELLO, M_JOINED, M_FAILED };

struct tutti_member {
    tutti_member_config cfg;
    char session[TUTTI_NAME_MAX], name[TUTTI_NAME_MAX];
    char settings[TUTTI_SETTINGS_MAX]; /* the session's, from the last WELCOME */
    tutti_io io;
    tutti_member_callbacks cb;
    int state;
    bool connected;
    uint32_t id, incarnation;
    tutti_key joined_at;
    tutti_time clock_locked_at; /* see tutti_member_status */
    tutti__link link;
    tutti__clock clock;
    tutti__order order;
    tutti_time horizon, heartbeat;
    tutti_time w; /* watermark promised */
    uint64_t next_seq;
    tutti__tempo tempo;
    uint64_t tempo_seq; /* TEMPO commands applied by this incarnation */
    tutti__wbuf body, scratch, cmdbuf;
    bool body_dirty;
    tutti_time last_flush, next_ping, last_hello, now;
    uint64_t hash, count, reported, cp_count, cp_hash;
    /* stats */
    uint64_t submitted, restamped, delivered, late, divergences, dropped;
    uint64_t moved, moved_all;
    tutti_time max_lateness, max_moved;
    /* round trips to the hub, newest last: their largest half (stalls left
     * out) is the delay this member reports for the automatic horizon */
    tutti_time rtt[TUTTI__DELAY_WINDOW];
    uint32_t nrtt, rtt_next;
    /* Over a long path the clock pings faster than it reports (clock.h):
     * the round trips and needs above are taken once per report interval,
     * when report_next is due (the round trip is the largest since the last
     * one, rtt_cur), so that their windows span as much time as at any ping
     * rate; the other pings carry the last values (report_delay,
     * report_need, report_tail). */
    tutti_time report_next, rtt_cur, report_delay, report_need, report_tail;
    bool rtt_new; /* rtt_cur holds a round trip */
    /* What the horizon had to be for this member's deliveries to be on
     * time: per ping interval the largest L + lateness (need_cur); the last
     * intervals' values (need, the level is their median) and how far each
     * stood above the level of its moment (excess), with the value itself
     * (seen). Events stamped before need_from may carry an L older than
     * this member's (a HORIZON command has just come) and are not
     * measured. */
    tutti_time need[TUTTI__NEED_LEVEL], excess[TUTTI__NEED_SPREAD], seen[TUTTI__NEED_SPREAD];
    uint32_t nneed, need_next, nexcess, excess_next;
    tutti_time need_cur, need_from;
    tutti_member_info *members;
    uint32_t nmembers, members_cap;
    /* admission */
    int role; /* what the hub gave */
    bool has_invite, has_pass, has_pin, hub_verified;
    tutti_invite invite;
    uint8_t pass_key[32], pin[32];
    int hs;                 /* HS_* */
    uint32_t hs_resume;     /* the resume id of the HELLO under way */
    uint8_t cnonce[32], epk[32], esk[32];
    uint8_t secret[32], pending_secret[32]; /* the member secret; the next one */
    uint32_t hs_kind;       /* the credential of the AUTH under way */
    bool hs_hidden;         /* our HELLO left session and name out (auth.h) */
    uint64_t rnd_fallback, refused;
    /* sealed link (seal.h): where sealed frames are opened; frames dropped
     * because they did not open or came in clear on the sealed link */
    tutti__wbuf opened;
    uint64_t unsealed;
};

enum { HS_NONE, HS_HELLO, HS_AUTH };

void tutti_member_config_init(tutti_member_config *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->session = "default";
    cfg->name = "member";
    cfg->role = TUTTI_ROLE_PERFORMER;
    cfg->auto_rejoin = true;
    cfg->max_pending = 1u << 20;
}

static tutti_time now_local(tutti_member *m)
{
    return m->io.now(m->io.ctx);
}

tutti_time tutti_member_session_now(const tutti_member *m)
{
    return tutti_clock_to_session(&m->clock.est, m->io.now(m->io.ctx));
}

static void notice(tutti_member *m, int level, const char *msg)
{
    if (m->cb.notice) m->cb.notice(m->cb.ctx, level, msg);
    if (m->io.log) m->io.log(m->io.ctx, level, msg);
}

int tutti_member_create(tutti_member **out, const tutti_member_config *cfg,
                        const tutti_io *io, const tutti_member_callbacks *cb)
{
    if (!out || !cfg || !io || !io->now || !io->send) return TUTTI_EINVAL;
    if (!cfg->session || strlen(cfg->session) >= TUTTI_NAME_MAX || !cfg->name ||
        strlen(cfg->name) >= TUTTI_NAME_MAX || cfg->role < 0 || cfg->role > 3 ||
        (cfg->invite && (cfg->invite->role < 0 || cfg->invite->role > 3 ||
                         !memchr(cfg->invite->id, 0, sizeof cfg->invite->id))))
        return TUTTI_EINVAL;
    if (tutti__auth_init() != 0) return TUTTI_ENOMEM;
    tutti_member *m = calloc(1, sizeof *m);
    if (!m) return TUTTI_ENOMEM;
    if (cfg->invite) {
        m->invite = *cfg->invite;
        m->has_invite = true;
        memcpy(m->pin, cfg->invite->hub_pk, 32);
        m->has_pin = true;
    }
    if (cfg->hub_key) {
        if (m->has_pin && memcmp(m->pin, cfg->hub_key, 32)) {
            free(m);
            return TUTTI_EINVAL; /* two different hub keys */
        }
        memcpy(m->pin, cfg->hub_key, 32);
        m->has_pin = true;
    }
    if (cfg->passphrase) {
        if (tutti__auth_passphrase_key(m->pass_key, cfg->passphrase, cfg->session) != 0) {
            free(m);
            return TUTTI_ENOMEM;
        }
        m->has_pass = true;
    }
    m->cfg = *cfg;
    strcpy(m->session, cfg->session);
    strcpy(m->name, cfg->name);
    m->cfg.session = m->session;
    m->cfg.name = m->name;
    m->cfg.invite = NULL;
    m->cfg.passphrase = NULL;
    m->cfg.hub_key = NULL;
    m->io = *io;
    if (cb) m->cb = *cb;
    tutti__clock_init(&m->clock);
    tutti__order_init(&m->order, cfg->max_pending);
    tutti__link_init(&m->link, 1, 1);
    tutti__wbuf_init(&m->body);
    tutti__wbuf_init(&m->scratch);
    tutti__wbuf_init(&m->cmdbuf);
    tutti__wbuf_init(&m->opened);
    tutti_timeline tl;
    tutti_timeline_init(&tl, 120.0, 4.0, 0);
    tutti__tempo_init(&m->tempo, &tl);
    m->state = M_IDLE;
    *out = m;
    return 0;
}

void tutti_member_destroy(tutti_member *m)
{
    if (!m) return;
    tutti__order_free(&m->order);
    tutti__link_free(&m->link);
    tutti__wbuf_free(&m->body);
    tutti__wbuf_free(&m->scratch);
    tutti__wbuf_free(&m->cmdbuf);
    tutti__wbuf_free(&m->opened);
    free(m->members);
    tutti__auth_wipe(m, sizeof *m);
    free(m);
}

/* ------------------------------------------------------------ sending */

static void send_unseq(tutti_member *m, const tutti__rec *r)
{
    tutti__send_rec(&m->io, 0, &m->link, r, &m->scratch);
}

static void member_random(tutti_member *m, uint8_t *out, size_t n)
{
    tutti__random_bytes(&m->io, &m->rnd_fallback, out, n);
}

static void send_hello(tutti_member *m, uint32_t resume_id)
{
    uint8_t seed[32];
    member_random(m, m->cnonce, 32);
    member_random(m, seed, 32);
    tutti__auth_ephemeral(m->epk, m->esk, seed);
    tutti__auth_wipe(seed, sizeof seed);
    m->hs = HS_HELLO;
    m->hs_resume = resume_id;
    /* With a credential (or resuming a sealed link) the session's name and
     * ours go sealed in the AUTH, not in clear here; an open hub's member
     * has nothing to seal them with that the hub would check. */
    m->hs_hidden = m->has_invite || m->has_pass || (resume_id && m->link.seal.on);
    tutti__rec r;
    memset(&r, 0, sizeof r);
    r.type = TUTTI__REC_HELLO;
    r.u.hello.session = tutti__str_c(m->hs_hidden ? "" : m->session);
    r.u.hello.name = tutti__str_c(m->hs_hidden ? "" : m->name);
    r.u.hello.role = (uint32_t)m->cfg.role;
    r.u.hello.resume_id = resume_id;
    r.u.hello.recv_next = m->link.recv_next;
    r.u.hello.cnonce = (tutti__str){m->cnonce, 32};
    r.u.hello.epk = (tutti__str){m->epk, 32};
    send_unseq(m, &r);
    m->last_hello = m->now;
}

/* The hub's CHALLENGE to our latest HELLO: check it, answer with a proof. */
static void on_challenge(tutti_member *m, const tutti__rec *r)
{
    if (m->hs != HS_HELLO) return; /* not asked, or answered already */
    if (r->u.challenge.hnonce.len != 32 || r->u.challenge.hub_pk.len != 32 ||
        r->u.challenge.sig.len != 64) {
        m->dropped++;
        notice(m, TUTTI_LOG_ERROR, "tutti: the hub's challenge makes no sense; ignored");
        return;
    }
    const uint8_t *pk = r->u.challenge.hub_pk.p;
    uint8_t th[32], dh[32], proof[32];
    if (m->has_pin && !tutti__auth_equal(pk, m->pin, 32)) {
        notice(m, TUTTI_LOG_ERROR,
               "tutti: the hub's key is not the one in the invitation (or --hub-key): "
               "this is not the hub that invited us, or someone is in between; not joining");
        m->state = M_FAILED;
        m->hs = HS_NONE;
        return;
    }
    tutti__auth_transcript(th, m->hs_hidden ? "" : m->session, m->cnonce, m->epk,
                           r->u.challenge.hnonce.p, pk);
    if (!tutti__auth_verify(r->u.challenge.sig.p, th, pk)) {
        m->dropped++;
        notice(m, TUTTI_LOG_ERROR,
               "tutti: the hub's challenge is not signed by its key (a stale or forged "
               "challenge); ignored");
        return;
    }
    if (!tutti__auth_dh_member(dh, m->esk, pk)) {
        notice(m, TUTTI_LOG_ERROR, "tutti: the hub's key is degenerate; not joining");
        m->state = M_FAILED;
        m->hs = HS_NONE;
        return;
    }
    m->hub_verified = m->has_pin;
    uint32_t mode = r->u.challenge.mode, kind;
    const uint8_t zero[32] = {0};
    const uint8_t *key = zero;
    const char *cred_id = "";
    if (m->hs_resume) {
        kind = TUTTI__AUTH_RESUME;
        key = m->secret;
    } else if (m->has_invite) {
        kind = TUTTI__AUTH_INVITE;
        key = m->invite.secret;
        cred_id = m->invite.id;
    } else if (m->has_pass) {
        kind = TUTTI__AUTH_PASSPHRASE;
        key = m->pass_key;
    } else {
        kind = TUTTI__AUTH_OPEN;
        if (!(mode & TUTTI__MODE_OPEN)) {
            notice(m, TUTTI_LOG_ERROR,
                   "tutti: this hub is not open: it needs an invitation (--invite) or the "
                   "session passphrase (--passphrase-file)");
            m->state = M_FAILED;
            m->hs = HS_NONE;
            return;
        }
    }
    tutti__auth_proof(proof, key, dh, th, kind, cred_id, m->name, m->hs_resume);
    if (!m->hs_resume) tutti__auth_member_secret(m->pending_secret, dh, th);
    tutti__rec a;
    memset(&a, 0, sizeof a);
    a.type = TUTTI__REC_AUTH;
    a.u.auth.kind = kind;
    a.u.auth.cred_id = tutti__str_c(cred_id);
    a.u.auth.proof = (tutti__str){proof, 32};
    uint8_t ident[TUTTI__ID_SEALED_MAX];
    if (m->hs_hidden)
        a.u.auth.ident =
            (tutti__str){ident, (uint32_t)tutti__auth_seal_id(ident, dh, th, m->session, m->name)};
    send_unseq(m, &a);
    m->hs = HS_AUTH;
    m->hs_kind = kind;
    m->last_hello = m->now;
    tutti__auth_wipe(dh, sizeof dh);
    tutti__auth_wipe(m->esk, sizeof m->esk);
}

static int cmp_time(const void *a, const void *b)
{
    tutti_time x = *(const tutti_time *)a, y = *(const tutti_time *)b;
    return (x > y) - (x < y);
}

/* A high estimate of the one-way delay to the hub: half the largest round
 * trip of the window, stalls left out (pings share the connection with
 * events, so the stream's bunching shows in them too). */
static tutti_time delay_high(const tutti_member *m)
{
    return tutti__high_estimate(m->rtt, m->nrtt) / 2;
}

static tutti_time median_of(const tutti_time *v, uint32_t n)
{
    tutti_time s[TUTTI__NEED_SPREAD];
    memcpy(s, v, n * sizeof *v);
    qsort(s, n, sizeof *s, cmp_time);
    return s[n / 2];
}

static int cmp_time_desc(const void *a, const void *b)
{
    return cmp_time(b, a);
}

/*
 * How far above the level the next NEED_SPREAD intervals may go, from how
 * far the last ones went (v, n of them). A bounded tail (a path's jitter)
 * has its largest excesses close to its end: the largest seen is the
 * answer. A heavy one (a Pareto queue, a busy machine's scheduling) has
 * larger ones still to come, spaced like the ones seen: the largest is
 * carried further by its distance to the TAIL_K-th largest, by at most a
 * quarter of the level and at most by itself, and not at all when the
 * largest is under a quarter of the level (a tail that small beside the
 * paths' delay is not worth the room it would take). The moment estimator
 * of the tail index (Dekkers, Einmahl and de Haan, on the TAIL_K largest, a
 * quarter of the window at most) tells the two apart: negative for a
 * bounded tail, about 1/a for a Pareto tail of index a. Above TAIL_HEAVY counts as heavy: sampled uniform,
 * triangular and half-normal excesses never reach it, exponential ones
 * rarely (5 %), Pareto ones of index 2 mostly (80 %); the members of real
 * sessions over bounded jitter reached it in a few per cent of their
 * windows, over a Pareto queue in most.
 */
#define TUTTI__TAIL_K 32
#define TUTTI__TAIL_HEAVY 0.3
tutti_time tutti__spread_ahead(const tutti_time *v, uint32_t n, tutti_time level)
{
    tutti_time s[TUTTI__NEED_SPREAD];
    if (n == 0) return 0;
    if (n > TUTTI__NEED_SPREAD) n = TUTTI__NEED_SPREAD;
    memcpy(s, v, n * sizeof *v);
    qsort(s, n, sizeof *s, cmp_time_desc);
    tutti_time top = s[0];
    uint32_t k = n / 4 < TUTTI__TAIL_K ? n / 4 : TUTTI__TAIL_K;
    if (k < 8 || s[k - 1] <= 0 || top < level / 4) return top;
    double ek = (double)s[k - 1], m1 = 0, m2 = 0;
    for (uint32_t i = 0; i + 1 < k; i++) {
        double l = log((double)s[i] / ek);
        m1 += l;
        m2 += l * l;
    }
    m1 /= (double)(k - 1);
    m2 /= (double)(k - 1);
    double den = m2 > 0 ? 1 - m1 * m1 / m2 : 0;
    if (!(den > 1e-9) || !(m1 + 1 - 0.5 / den > TUTTI__TAIL_HEAVY)) return top;
    tutti_time gap = top - s[k - 1], cap = level / 4 < top ? level / 4 : top;
    return top + (gap < cap ? gap : cap);
}

/*
 * The L this member's recent deliveries needed (0 while there is nothing to
 * judge): the level, the median of the last NEED_LEVEL ping intervals'
 * largest, plus the spread, the largest excess of an interval over
 * the level of its moment in the last NEED_SPREAD intervals (the sum at
 * most the largest interval of those), extended to what the next as many
 * intervals may bring (tutti__spread_ahead). The level
 * follows the paths within seconds, up or down; the spread remembers for
 * longer how far the rare slow moments (a burst of jitter, the machine's
 * scheduling) go above it. The member's first NEED_WARMUP after joining
 * are not measured (its clock locks, the processes of a session start
 * together). An interval far above the level (STALL_FACTOR x +
 * STALL_SLACK: a partition waited out, a crashed member's suspect time) is
 * a stall and is left out. *tail is the part of the need that the tail's
 * extension adds (the hub counts it as room, not as a delay measured).
 */
static tutti_time need_high(tutti_member *m, tutti_time *tail)
{
    *tail = 0;
    tutti_time v = m->need_cur;
    m->need_cur = 0;
    if (v > 0) {
        tutti_time level = m->nneed ? median_of(m->need, m->nneed) : v;
        bool stall = m->nneed >= 8 && v > level * TUTTI__STALL_FACTOR + TUTTI__STALL_SLACK;
        if (!stall) {
            m->need[m->need_next] = v;
            m->need_next = (m->need_next + 1) % TUTTI__NEED_LEVEL;
            if (m->nneed < TUTTI__NEED_LEVEL) m->nneed++;
            level = median_of(m->need, m->nneed);
            m->excess[m->excess_next] = v > level ? v - level : 0;
            m->seen[m->excess_next] = v;
            m->excess_next = (m->excess_next + 1) % TUTTI__NEED_SPREAD;
            if (m->nexcess < TUTTI__NEED_SPREAD) m->nexcess++;
        }
    }
    if (m->nneed == 0) return 0;
    tutti_time level = median_of(m->need, m->nneed);
    tutti_time top = 0, most = 0;
    for (uint32_t i = 0; i < m->nexcess; i++) {
        if (m->excess[i] > top) top = m->excess[i];
        if (m->seen[i] > most) most = m->seen[i];
    }
    /* An excess over a level that was low at its moment, added to the level
     * of now, counts the level's own wandering twice: with paths as they
     * were, no more than the largest value seen. */
    tutti_time base = level + top;
    if (m->nexcess > 0 && base > most) base = most;
    *tail = tutti__spread_ahead(m->excess, m->nexcess, level) - top;
    return base + *tail;
}

static void send_ping(tutti_member *m)
{
    tutti__rec r;
    memset(&r, 0, sizeof r);
    r.type = TUTTI__REC_PING;
    r.u.ping.t1 = m->now;
    if (m->now >= m->report_next) {
        tutti_time every = tutti__clock_ping_interval(&m->clock);
        m->report_next += every;
        if (m->report_next <= m->now) m->report_next = m->now + every;
        if (m->rtt_new) {
            m->rtt[m->rtt_next] = m->rtt_cur;
            m->rtt_next = (m->rtt_next + 1) % TUTTI__DELAY_WINDOW;
            if (m->nrtt < TUTTI__DELAY_WINDOW) m->nrtt++;
            m->rtt_new = false;
        }
        m->report_delay = delay_high(m);
        m->report_need = need_high(m, &m->report_tail);
    }
    r.u.ping.delay = m->report_delay;
    r.u.ping.late = m->late;
    r.u.ping.bound = m->clock.est.locked ? m->clock.est.bound_ns : 0;
    r.u.ping.need = m->report_need;
    r.u.ping.tail = m->report_tail;
    send_unseq(m, &r);
    m->next_ping = m->now + tutti__clock_ping_interval(&m->clock);
}

static void put_rec(tutti_member *m, const tutti__rec *r)
{
    tutti__rec_put(&m->body, r);
    m->body_dirty = true;
}

/* Raise the promise to now + L and send everything queued with it. */
static void flush(tutti_member *m, bool force)
{
    if (m->state != M_JOINED || !m->connected) return;
    if (!m->body_dirty && !force) return;
    tutti_time now_s = tutti_clock_to_session(&m->clock.est, m->now);
    if (now_s + m->horizon > m->w) m->w = now_s + m->horizon;
    tutti__put_watermark(&m->body, m->id, m->w, m->next_seq);
    tutti__rec r;
    if (m->cp_count > m->reported) {
        memset(&r, 0, sizeof r);
        r.type = TUTTI__REC_REPORT;
        r.u.report.count = m->cp_count;
        r.u.report.hash = m->cp_hash;
        tutti__rec_put(&m->body, &r);
        m->reported = m->cp_count;
    }
    tutti__send_frame(&m->io, 0, &m->link, true, &m->body, &m->scratch);
    tutti__wbuf_reset(&m->body);
    m->body_dirty = false;
    m->last_flush = m->now;
}

/* --------------------------------------------------------- membership */

static void list_add(tutti_member *m, uint32_t id, int role, tutti__str name,
                     const tutti_key *k)
{
    for (uint32_t i = 0; i < m->nmembers; i++)
        if (m->members[i].id == id) return;
    if (m->nmembers == m->members_cap) {
        uint32_t cap = m->members_cap ? 2 * m->members_cap : 8;
        tutti_member_info *p = realloc(m->members, cap * sizeof *p);
        if (!p) return;
        m->members = p;
        m->members_cap = cap;
    }
    tutti_member_info *mi = &m->members[m->nmembers++];
    memset(mi, 0, sizeof *mi);
    mi->id = id;
    mi->role = role;
    mi->joined = *k;
    if (!tutti__str_copy(mi->name, sizeof mi->name, name)) strcpy(mi->name, "?");
}

static void list_remove(tutti_member *m, uint32_t id)
{
    for (uint32_t i = 0; i < m->nmembers; i++) {
        if (m->members[i].id == id) {
            memmove(&m->members[i], &m->members[i + 1],
                    (m->nmembers - i - 1) * sizeof m->members[0]);
            m->nmembers--;
            return;
        }
    }
}

/* This incarnation is over (removed, or a gap that cannot be repaired). */
static void end_incarnation(tutti_member *m, const char *why)
{
    notice(m, TUTTI_LOG_WARN, why);
    tutti_key none = {INT64_MAX, UINT32_MAX, UINT64_MAX};
    tutti__order_reset(&m->order, none);
    tutti__link_free(&m->link);
    tutti__link_init(&m->link, 1, 1);
    tutti__wbuf_reset(&m->body);
    m->body_dirty = false;
    m->nmembers = 0;
    m->id = 0;
    if (m->cfg.auto_rejoin && m->connected) {
        m->state = M_HELLO;
        send_hello(m, 0);
    } else {
        m->state = M_IDLE;
    }
}

/* ----------------------------------------------------------- delivery */

static void apply_on_delivery(tutti_member *m, const tutti_key *k, const tutti__rec *c)
{
    switch (c->u.command.op) {
    case TUTTI__CMD_ADD:
        list_add(m, c->u.command.member_id, (int)c->u.command.role, c->u.command.name, k);
        break;
    case TUTTI__CMD_REMOVE: {
        list_remove(m, c->u.command.member_id);
        /* Once its last event is in, a removed origin holds nothing back:
         * forget it so churn does not grow the table. */
        tutti__origin *o = tutti__order_origin(&m->order, c->u.command.member_id);
        if (o && o->closed && o->next_seq > o->last_seq)
            tutti__order_forget(&m->order, c->u.command.member_id);
        break;
    }
    case TUTTI__CMD_TEMPO:
        tutti__tempo_push(&m->tempo, &c->u.command.timeline);
        m->tempo_seq++;
        break;
    case TUTTI__CMD_ROLE:
        for (uint32_t i = 0; i < m->nmembers; i++)
            if (m->members[i].id == c->u.command.member_id)
                m->members[i].role = (int)c->u.command.role;
        break;
    default:
        break;
    }
}

static void deliver_ready(tutti_member *m)
{
    const tutti__pending *p;
    while (m->state == M_JOINED && (p = tutti__order_ready(&m->order)) != NULL) {
        tutti_time now_s = tutti_clock_to_session(&m->clock.est, m->now);
        tutti_time lateness =
            tutti__sat_sub(now_s, tutti__sat_sub(p->key.t, m->cfg.deliver_lead));
        /* Without a locked clock there is no judging lateness. */
        bool late = lateness > 0 && m->clock.est.locked;
        if (late) {
            m->late++;
            if (lateness > m->max_lateness) m->max_lateness = lateness;
        }
        /* The L at which this event would have been just on time here: for
         * an event stamped "now + L" its trip, the wait for the hub's close
         * and the lead; for one stamped further ahead the same, as the close
         * passes its time L before it. An event the hub moved is judged
         * from where its origin stamped it: it needed its whole trip, and
         * the move is what a too small L cost it. */
        tutti_time behind = tutti__sat_sub(now_s, tutti__sat_sub(p->stamped, m->cfg.deliver_lead));
        if (m->clock.est.locked && p->key.origin != 0 && p->stamped >= m->need_from &&
            behind < TUTTI__MAX_HORIZON) {
            tutti_time need = m->horizon + behind;
            if (need > m->need_cur) m->need_cur = need;
        }
        uint64_t d = tutti__event_digest(&p->key, p->kind, p->data, p->len);
        m->hash = tutti__chain(m->hash, d);
        m->count++;
        m->delivered++;
        if (p->kind == TUTTI_EV_COMMAND) {
            tutti__rec c;
            if (tutti__command_decode(p->data, p->len, &c) == 0)
                apply_on_delivery(m, &p->key, &c);
        }
        tutti_event ev = {p->key, p->kind, p->len, p->data};
        if (m->cb.deliver) m->cb.deliver(m->cb.ctx, &ev, now_s, late);
        tutti__order_pop(&m->order);
        if (m->count % TUTTI__CHECKPOINT == 0) {
            m->cp_count = m->count;
            m->cp_hash = m->hash;
        }
    }
}

/* ------------------------------------------------------------ receiving */

static void on_command_receipt(tutti_member *m, const tutti_key *k, const tutti__rec *c)
{
    uint32_t id = c->u.command.member_id;
    bool history = tutti_key_cmp(k, &m->order.start) <= 0;
    switch (c->u.command.op) {
    case TUTTI__CMD_ADD:
        tutti__order_add_origin(&m->order, id, 1);
        if (history) list_add(m, id, (int)c->u.command.role, c->u.command.name, k);
        break;
    case TUTTI__CMD_REMOVE:
        if (id == m->id) {
            end_incarnation(m, "tutti: the coordinator removed this member from the session");
            return;
        }
        tutti__order_close(&m->order, id, c->u.command.last_seq, *k);
        if (history) list_remove(m, id);
        break;
    case TUTTI__CMD_HORIZON: {
        /* Events stamped under the old L are still coming: an origin
         * switches when the command reaches it, within about one trip. */
        tutti_time old = m->horizon, hi = old > c->u.command.horizon ? old : c->u.command.horizon;
        tutti_time from = tutti_clock_to_session(&m->clock.est, m->now) + old + hi;
        if (from > m->need_from) m->need_from = from;
        m->horizon = c->u.command.horizon;
        if (c->u.command.heartbeat > 0) m->heartbeat = c->u.command.heartbeat;
        break;
    }
    case TUTTI__CMD_TEMPO:
        if (history) {
            tutti__tempo_push(&m->tempo, &c->u.command.timeline);
            m->tempo_seq++;
        }
        break;
    default:
        break;
    }
}

static void on_welcome(tutti_member *m, const tutti__rec *r)
{
    if (m->state != M_HELLO) return;
    if (r->u.welcome.member_id == 0 || r->u.welcome.horizon <= 0 ||
        r->u.welcome.horizon > TUTTI__MAX_HORIZON || r->u.welcome.heartbeat < 0 ||
        r->u.welcome.heartbeat > TUTTI_S || r->u.welcome.hub_next == 0) {
        m->dropped++;
        notice(m, TUTTI_LOG_ERROR, "tutti: the hub's welcome makes no sense; ignored");
        return;
    }
    m->id = r->u.welcome.member_id;
    m->horizon = r->u.welcome.horizon;
    m->heartbeat = r->u.welcome.heartbeat > 0 ? r->u.welcome.heartbeat : 10 * TUTTI_MS;
    m->joined_at = r->u.welcome.joined;
    m->incarnation++;
    m->clock_locked_at = 0;
    /* The timeline comes again with the snapshot, as history. */
    tutti_timeline tl;
    tutti_timeline_init(&tl, 120.0, 4.0, 0);
    tutti__tempo_init(&m->tempo, &tl);
    m->tempo_seq = 0;
    m->role = r->u.welcome.role <= 3 ? (int)r->u.welcome.role : TUTTI_ROLE_LISTENER;
    uint32_t sl =
        r->u.welcome.settings.len < TUTTI_SETTINGS_MAX ? r->u.welcome.settings.len : 0;
    if (sl && memchr(r->u.welcome.settings.p, 0, sl)) sl = 0; /* text only */
    if (sl) memcpy(m->settings, r->u.welcome.settings.p, sl);
    m->settings[sl] = 0;
    memcpy(m->secret, m->pending_secret, 32);
    m->hs = HS_NONE;
    tutti__order_reset(&m->order, m->joined_at);
    m->w = m->joined_at.t + m->horizon; /* the first promise, as ADD says */
    /* The first seconds of a member (its clock locking, a session's
     * processes starting together) are not what its paths are like. */
    m->need_from = m->joined_at.t + TUTTI__NEED_WARMUP;
    tutti__order_add_origin(&m->order, m->id, 1);
    tutti__link_free(&m->link);
    tutti__link_init(&m->link, 1, r->u.welcome.hub_next);
    m->link.stamps = true;
    /* From here on both directions are sealed, unless we joined an open
     * hub with no credential (the hub does the same, see hub.c admit). */
    if (m->hs_kind != TUTTI__AUTH_OPEN) tutti__seal_init(&m->link.seal, m->secret, false);
    m->next_seq = 1;
    m->hash = 0;
    m->count = 0;
    m->reported = 0;
    m->cp_count = 0;
    m->state = M_JOINED;
    m->last_flush = m->now;
    char msg[160];
    snprintf(msg, sizeof msg, "tutti: joined session \"%s\" as member %u (%s%s, %s)",
             m->session, (unsigned)m->id, tutti_role_name(m->role),
             m->hub_verified ? ", the hub's key checked" : "",
             m->link.seal.on ? "link encrypted" : "link NOT encrypted: an open hub");
    notice(m, TUTTI_LOG_INFO, msg);
}

typedef struct rx {
    tutti_member *m;
    const tutti__frame_hdr *hdr;
    int verdict; /* -1 unchecked, else a TUTTI__LINK_* value */
    bool sealed; /* the frame came sealed (and opened) */
} rx;

static int on_rec(void *ctx, const tutti__rec *r)
{
    rx *x = ctx;
    tutti_member *m = x->m;
    /* On a sealed link, a clear frame is believed only while a handshake
     * (a resume) is under way, and only for the handshake's replies: the
     * hub answers a resume's HELLO in clear, before it knows the
     * connection is this member's. */
    if (m->link.seal.on && !x->sealed &&
        (m->hs == HS_NONE ||
         (r->type != TUTTI__REC_CHALLENGE && r->type != TUTTI__REC_REJECT &&
          r->type != TUTTI__REC_WELCOME))) {
        m->unsealed++;
        m->dropped++;
        return 1;
    }
    if (r->type == TUTTI__REC_STAMP && m->state == M_JOINED) {
        /* The hub's frames as clock samples besides the pongs (clock.h):
         * made at session time t, here by now; and the echo of our own
         * tightest frame, made at local e1, at the hub by session time e2. */
        if (r->u.stamp.t > 0) tutti__clock_note(&m->clock, m->now, r->u.stamp.t, false);
        if (r->u.stamp.e1 > 0 && r->u.stamp.e1 <= m->now && r->u.stamp.e2 > 0)
            tutti__clock_note(&m->clock, r->u.stamp.e1, r->u.stamp.e2, true);
    }
    if (x->hdr->link_seq == 0) {
        switch (r->type) {
        case TUTTI__REC_PONG: {
            tutti__clock_add(&m->clock, r->u.pong.t1, r->u.pong.t2, r->u.pong.t3, m->now);
            /* A round trip only from a pong that answers a ping of the last
             * MAX_HORIZON and held no longer at the hub than the whole trip
             * took; any other is forged or corrupt. */
            tutti_time out = tutti__sat_sub(m->now, r->u.pong.t1);
            tutti_time held = tutti__sat_sub(r->u.pong.t3, r->u.pong.t2);
            if (out >= 0 && out <= TUTTI__MAX_HORIZON && held >= 0 && held <= out &&
                (!m->rtt_new || out - held > m->rtt_cur)) {
                m->rtt_cur = out - held;
                m->rtt_new = true;
            }
            break;
        }
        case TUTTI__REC_WELCOME:
            on_welcome(m, r);
            break;
        case TUTTI__REC_CHALLENGE:
            on_challenge(m, r);
            break;
        case TUTTI__REC_REJECT: {
            char msg[160], why[96];
            if (!tutti__str_copy(why, sizeof why, r->u.reject.reason)) strcpy(why, "?");
            if (r->u.reject.code == TUTTI__REJ_AUTH && m->state == M_JOINED) {
                /* a resume refused: rejoin with the credential */
                snprintf(msg, sizeof msg, "tutti: the hub refused our resume: %s", why);
                end_incarnation(m, msg);
            } else if (r->u.reject.code == TUTTI__REJ_REMOVED ||
                r->u.reject.code == TUTTI__REJ_UNKNOWN) {
                if (m->state == M_JOINED) {
                    snprintf(msg, sizeof msg, "tutti: removed from the session: %s", why);
                    end_incarnation(m, msg);
                }
            } else {
                snprintf(msg, sizeof msg, "tutti: the coordinator refused to admit us: %s",
                         why);
                notice(m, TUTTI_LOG_ERROR, msg);
                /* A full session may have room again soon: keep asking (the
                 * hello is repeated every second); anything else is final. */
                if (r->u.reject.code == TUTTI__REJ_FULL && m->state == M_HELLO)
                    m->last_hello = m->now;
                else
                    m->state = M_FAILED;
            }
            return 1;
        }
        case TUTTI__REC_NACK:
            if (m->state == M_JOINED &&
                !tutti__resend(&m->io, 0, &m->link, r->u.nack.from)) {
                end_incarnation(m, "tutti: lost contact for too long; rejoining");
                return 1;
            }
            break;
        case TUTTI__REC_NOTICE: {
            char msg[200], text[160];
            if (!tutti__str_copy(text, sizeof text, r->u.notice.text)) strcpy(text, "?");
            if (r->u.notice.code == TUTTI__NOTE_DIVERGED) m->divergences++;
            snprintf(msg, sizeof msg, "tutti: %s", text);
            notice(m, r->u.notice.level, msg);
            break;
        }
        default:
            break;
        }
        return 0;
    }
    if (m->state != M_JOINED) return 1;
    if (x->verdict < 0) x->verdict = tutti__link_receive(&m->link, x->hdr->link_seq, x->hdr->ack);
    if (x->verdict != TUTTI__LINK_ACCEPT) return 1;
    switch (r->type) {
    case TUTTI__REC_EVENT: {
        const tutti_key *k = &r->u.event.key;
        if (r->u.event.kind == TUTTI_EV_COMMAND) {
            tutti__rec c;
            if (tutti__command_decode(r->u.event.payload.p, r->u.event.payload.len, &c) != 0) {
                m->dropped++;
                tutti__logf(&m->io, TUTTI_LOG_WARN, "tutti: malformed command dropped");
                break;
            }
            on_command_receipt(m, k, &c);
            if (m->state != M_JOINED) return 1;
        }
        int rc = tutti__order_push(&m->order, k, r->u.event.moved_from, r->u.event.kind,
                                   r->u.event.payload.p, r->u.event.payload.len);
        if (rc < 0) {
            end_incarnation(m, "tutti: too many events waiting for their turn; rejoining");
            return 1;
        }
        if (rc == 0 && r->u.event.moved_from != 0 && r->u.event.moved_from < k->t) {
            m->moved_all++;
            if (k->origin == m->id) {
                tutti_time by = tutti__sat_sub(k->t, r->u.event.moved_from);
                m->moved++;
                if (by > m->max_moved) m->max_moved = by;
            }
        }
        break;
    }
    case TUTTI__REC_WATERMARK:
        /* Only the hub's close counts; members' promises are the hub's. */
        if (r->u.watermark.origin == 0) tutti__order_set_close(&m->order, r->u.watermark.w);
        break;
    default:
        break;
    }
    return 0;
}

int tutti_member_receive(tutti_member *m, const uint8_t *buf, size_t len)
{
    m->now = now_local(m);
    tutti__frame_hdr hdr;
    memset(&hdr, 0, sizeof hdr);
    rx x = {m, &hdr, -1, false};
    const char *why = NULL;
    const uint8_t *frame;
    size_t flen;
    int rc = tutti__open_frame(&m->link, buf, len, &m->opened, &frame, &flen, &x.sealed, &why);
    if (rc < 0) m->unsealed++;
    /* A sealed frame that opens on a resume's connection: the hub took the
     * resume (it seals to us only once it knows the connection is ours), so
     * the handshake is over and clear frames are no longer believed. */
    if (rc == 0 && x.sealed && m->hs == HS_AUTH && m->hs_resume) m->hs = HS_NONE;
    if (rc == 0) rc = tutti__frame_decode(frame, flen, &hdr, on_rec, &x, &why);
    if (rc < 0) {
        m->dropped++;
        tutti__logf(&m->io, TUTTI_LOG_WARN, "tutti: dropped a malformed frame from the hub: %s",
                    why ? why : tutti_strerror(rc));
        return rc;
    }
    if (m->state == M_JOINED && hdr.link_seq != 0 && x.verdict < 0 &&
        (x.sealed || !m->link.seal.on))
        x.verdict = tutti__link_receive(&m->link, hdr.link_seq, hdr.ack);
    if (m->state == M_JOINED && x.verdict == TUTTI__LINK_GAP) {
        tutti_time iv = m->clock.est.rtt_last_ns + 10 * TUTTI_MS;
        if (tutti__link_should_nack(&m->link, m->now, iv)) {
            tutti__rec r;
            memset(&r, 0, sizeof r);
            r.type = TUTTI__REC_NACK;
            r.u.nack.from = m->link.recv_next;
            send_unseq(m, &r);
        }
    }
    /* The clock changes only on a receive (pongs, stamps); a welcome sets
     * it back to 0, and the status shows 0 whenever the member is not
     * joined. */
    if (m->state == M_JOINED && m->clock.est.locked && !m->clock_locked_at)
        m->clock_locked_at = m->now;
    deliver_ready(m);
    flush(m, false);
    return 0;
}

/* -------------------------------------------------------------- timers */

void tutti_member_connected(tutti_member *m)
{
    m->now = now_local(m);
    m->connected = true;
    send_ping(m); /* first, so a clock sample arrives before the welcome */
    if (m->state == M_JOINED) {
        send_hello(m, m->id); /* resume */
    } else if (m->state == M_IDLE || m->state == M_HELLO) {
        m->state = M_HELLO;
        send_hello(m, 0);
    }
}

tutti_time tutti_member_tick(tutti_member *m)
{
    m->now = now_local(m);
    if (!m->connected) return m->now + 100 * TUTTI_MS;
    if (m->now >= m->next_ping) send_ping(m);
    tutti_time next = m->next_ping;
    if (m->state == M_HELLO) {
        if (m->now - m->last_hello >= TUTTI_S) send_hello(m, 0);
        if (m->last_hello + TUTTI_S < next) next = m->last_hello + TUTTI_S;
    }
    if (m->state == M_JOINED) {
        /* Nobody waits for this member's promise (the hub closes session
         * time itself): a heartbeat only carries acks, the promise the hub
         * checks events against and measures the trip with, and the sign of
         * life, so it need not come as often as the hub's close. */
        tutti_time beat = m->heartbeat > TUTTI__MEMBER_BEAT ? m->heartbeat : TUTTI__MEMBER_BEAT;
        if (m->now - m->last_flush >= beat) flush(m, true);
        else flush(m, false);
        if (m->last_flush + beat < next) next = m->last_flush + beat;
    }
    return next;
}

void tutti_member_leave(tutti_member *m)
{
    m->now = now_local(m);
    if (m->state != M_JOINED) {
        m->state = M_IDLE;
        return;
    }
    tutti__rec r;
    memset(&r, 0, sizeof r);
    r.type = TUTTI__REC_BYE;
    put_rec(m, &r);
    flush(m, true);
    notice(m, TUTTI_LOG_INFO, "tutti: left the session");
    m->cfg.auto_rejoin = false;
    m->state = M_IDLE;
}

static int submit(tutti_member *m, tutti_time t, const uint8_t *data, uint32_t len,
                  tutti_key *key, bool any_role)
{
    if (m->state != M_JOINED) return TUTTI_ESTATE;
    if (len > TUTTI__MAX_PAYLOAD || (len && !data)) return TUTTI_EINVAL;
    if (m->role == TUTTI_ROLE_LISTENER && !any_role) {
        m->refused++;
        return TUTTI_EREJECTED; /* the hub would refuse it */
    }
    if (tutti__link_in_flight(&m->link) >= TUTTI__LINK_RING - 16) return TUTTI_EFULL;
    m->now = now_local(m);
    tutti_time now_s = tutti_clock_to_session(&m->clock.est, m->now);
    if (now_s + m->horizon > m->w) m->w = now_s + m->horizon;
    if (t > now_s + TUTTI__MAX_LEAD) return TUTTI_EINVAL;
    tutti_key k = {t < m->w ? m->w : t, m->id, m->next_seq++};
    if (k.t != t) m->restamped++;
    m->submitted++;
    tutti__rec r;
    memset(&r, 0, sizeof r);
    r.type = TUTTI__REC_EVENT;
    r.u.event.key = k;
    r.u.event.kind = TUTTI_EV_USER;
    r.u.event.payload.p = data;
    r.u.event.payload.len = len;
    put_rec(m, &r);
    if (m->body.len > 16 * 1024) flush(m, true);
    if (key) *key = k;
    return 0;
}

int tutti_member_submit(tutti_member *m, tutti_time t, const uint8_t *data, uint32_t len,
                        tutti_key *key)
{
    return submit(m, t, data, len, key, false);
}

int tutti__member_submit_any_role(tutti_member *m, tutti_time t, const uint8_t *data,
                                  uint32_t len, tutti_key *key)
{
    return submit(m, t, data, len, key, true);
}

static int request(tutti_member *m, uint32_t kind, double f, tutti_time i, uint32_t member)
{
    if (m->state != M_JOINED) return TUTTI_ESTATE;
    tutti__rec r;
    memset(&r, 0, sizeof r);
    r.type = TUTTI__REC_REQUEST;
    r.u.request.kind = kind;
    r.u.request.f = f;
    r.u.request.i = i;
    r.u.request.member = member;
    put_rec(m, &r);
    return 0;
}

int tutti_member_propose_bpm(tutti_member *m, double bpm)
{
    if (m->state != M_JOINED) return TUTTI_ESTATE;
    if (!(bpm >= TUTTI_BPM_MIN && bpm <= TUTTI_BPM_MAX)) return TUTTI_EINVAL;
    return request(m, TUTTI__REQ_BPM, bpm, 0, 0);
}

int tutti_member_propose_transport(tutti_member *m, bool playing)
{
    return request(m, TUTTI__REQ_TRANSPORT, 0, playing ? 1 : 0, 0);
}

int tutti_member_propose_horizon(tutti_member *m, tutti_time horizon)
{
    if (horizon <= 0 || horizon > TUTTI__MAX_HORIZON) return TUTTI_EINVAL;
    return request(m, TUTTI__REQ_HORIZON, 0, horizon, 0);
}

int tutti_member_propose_remove(tutti_member *m, uint32_t id)
{
    return request(m, TUTTI__REQ_REMOVE, 0, 0, id);
}

uint32_t tutti_member_origin_pending(const tutti_member *m, uint32_t id, bool *complete)
{
    const tutti__origin *o = tutti__order_origin((tutti__order *)&m->order, id);
    if (complete) *complete = !o || (o->closed && o->next_seq > o->last_seq);
    return tutti__order_pending_of(&m->order, id);
}

void tutti_member_status_get(const tutti_member *m, tutti_member_status *st)
{
    memset(st, 0, sizeof *st);
    st->joined = m->state == M_JOINED;
    st->id = m->id;
    st->incarnation = m->incarnation;
    st->clock = m->clock.est;
    st->clock_locked_at = m->state == M_JOINED ? m->clock_locked_at : 0;
    st->horizon = m->horizon;
    st->heartbeat = m->heartbeat;
    st->submitted = m->submitted;
    st->restamped = m->restamped;
    st->delivered = m->delivered;
    st->late = m->late;
    st->moved = m->moved;
    st->moved_all = m->moved_all;
    st->max_moved = m->max_moved;
    st->pending = m->order.n;
    st->max_lateness = m->max_lateness;
    st->hash = m->hash;
    st->divergences = m->divergences;
    st->dropped = m->dropped;
    st->violations = m->order.violations;
    st->joined_at = m->joined_at;
    st->members = m->nmembers;
    tutti_timeline sched[2];
    tutti_time now = tutti_member_session_now(m);
    uint32_t n = tutti__tempo_schedule(&m->tempo, now, sched, 2);
    st->timeline = sched[0];
    st->timeline_seq = m->tempo_seq;
    st->timeline_pending = n > 1;
    if (n > 1) st->next_timeline = sched[1];
    st->role = m->role;
    st->hub_verified = m->hub_verified;
    st->failed = m->state == M_FAILED;
    st->sealed = m->state == M_JOINED && m->link.seal.on;
    st->unsealed_dropped = m->unsealed;
    st->refused = m->refused;
    memcpy(st->settings, m->settings, sizeof st->settings);
}

uint32_t tutti_member_timeline_schedule(const tutti_member *m, tutti_timeline *out,
                                        uint32_t cap)
{
    return tutti__tempo_schedule(&m->tempo, tutti_member_session_now(m), out, cap);
}

uint32_t tutti_member_list(const tutti_member *m, tutti_member_info *out, uint32_t cap)
{
    for (uint32_t i = 0; i < m->nmembers && i < cap; i++) out[i] = m->members[i];
    return m->nmembers;
}
