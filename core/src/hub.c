/*
 * The hub: relay for every member and sequencer of the session's commands.
 *
 * Design notes
 * ------------
 * - Star topology. Every member sends its events and watermarks to the hub;
 *   the hub relays each record, in the order it received them, to every
 *   active member, the origin included. Per-origin FIFO therefore holds at
 *   every member, and the hub holds a superset of what anyone has delivered.
 * - The hub is origin 0. Its commands (ADD, REMOVE, TEMPO, HORIZON, ROLE) are
 *   events like any other, stamped by the same horizon rule, so they take their
 *   place in the one total order and every member applies them at the same
 *   point. The command sequence, the closes and the moves are a deterministic
 *   state machine fed only by the hub's inputs and its clock, so a standby
 *   hub fed the same inputs could continue it (the hub's own stall is the
 *   one silence that still holds everyone back).
 * - The hub closes session time on its own clock. Every heartbeat it raises
 *   the close C to now + c (c, the close lead, is L less what an event may
 *   take from its origin to the hub, see close_lead) and sends C to every
 *   member behind everything it has relayed. From then on it relays nothing
 *   with t < C: an event that reaches it later than that is moved to C, the
 *   first open instant, its stamped t sent along (moved_from), counted for
 *   its origin and told to that origin's player. Members deliver every key
 *   with t < C as soon as C arrives, so no member's silence (a crash, a
 *   frozen laptop, a cut link, a joiner that never plays) holds anyone back:
 *   only the hub's own.
 * - Why moved and not dropped: a moved note plays a little late on every
 *   server alike, while a dropped /n_free leaves a note hanging on every
 *   server and a dropped /s_new makes the /n_set that follows fail. It is
 *   what the origin's own horizon rule does with an event asked for too
 *   late, one step further along the path.
 * - The hub runs the ordered merge itself. It needs it for three things: a
 *   joiner's snapshot (everything still pending), the removal cut, and the
 *   reference hash chain each member's reports are checked against.
 * - Removal cut: a member silent for suspect_after (8 s by default: it keeps
 *   its place that long and resumes where it was), or that said BYE, or whose
 *   link cannot be repaired, is removed by REMOVE(id, last_seq), where last_seq
 *   is the highest sequence number the hub has from it. Members received every
 *   one of those before the command (FIFO from the hub), and no one can have
 *   more (they get the member's events only through the hub), so all deliver
 *   exactly the same set.
 * - Validation: a member may only send its own events (origin = its id), in
 *   sequence, of kind USER, never below the watermark it promised. Anything
 *   else is dropped with a logged reason; it never reaches other members.
 * - Admission (auth.h, docs/security.md): a HELLO is answered with a signed
 *   CHALLENGE, never with session data; only an AUTH whose proof holds makes
 *   a connection a member's (WELCOME, snapshot) or resumes one (the proof
 *   keyed with the member secret both sides derived at its join). The role
 *   comes from the credential; an open hub gives the role asked for.
 *   Handshakes under way are kept in a small table, the oldest dropped
 *   when it is full; a connection that fails one is closed.
 * - Sealing (seal.h): a member admitted with a credential gets keys from its
 *   member secret; every frame after the WELCOME goes sealed both ways and
 *   a frame on that link that does not open, or comes in clear (other than
 *   the handshake's own records and pings), is dropped and counted
 *   (unsealed). A removed member's slot keeps its keys until reused, so its
 *   late frames are still answered, sealed, that it was removed. A resume
 *   keeps the keys and counters. An open hub's joins stay in clear.
 * - Roles and limits are checked per record: a listener's events, events
 *   beyond the member's token buckets, too far ahead or beyond what it may
 *   hold ahead are refused, each counted and told to the member. A refused
 *   event leaves no hole: the hub numbers each origin's relayed events
 *   itself (out_seq), so every member sees a gap-free stream and the removal
 *   cut's last_seq stays exact. Requests are checked against the role.
 */
#include "auth.h"
#include "clock.h"
#include "engine.h"
#include "order.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { S_FREE, S_ACTIVE, S_REMOVED };

#define CP_RING 64
/* A member's trip to the hub is measured per interval of UP_EVERY (the
 * largest of its watermarks' and events' trips) over the last UP_WINDOW
 * intervals: 12.8 s, the memory of the automatic horizon's target. With
 * 1.6 s, a burst of a heavy-tailed path larger than any of the last 1.6 s
 * came up too late for the close and was moved, though L had room for it:
 * the grid's pareto runs (8 members, 50 ms +- 10 ms pareto, 60 s) moved
 * 10-25 events and had 10-20 late at the worst member in 3 of 5 series; with
 * 12.8 s none was late in 5 of 5 (L 5-20 % higher). */
#define UP_EVERY (200 * TUTTI_MS)
#define UP_WINDOW 64
/* A member whose events were moved is told so at most this often. */
#define MOVED_NOTE_EVERY TUTTI_S
/* Handshakes under way at once; HELLOs one connection may send unanswered. */
#define HS_MAX 256
#define HS_HELLOS 8
/* Defaults of the per-member limits (tutti_hub_config). */
#define DEF_EVENT_RATE 5000.0
#define DEF_EVENT_BURST 10000.0
#define DEF_BYTE_RATE (4.0 * 1024 * 1024)
#define DEF_BYTE_BURST (8.0 * 1024 * 1024)
#define DEF_MAX_AHEAD (20 * TUTTI_S)
#define DEF_MAX_HELD ((uint64_t)4 << 20)
/* How long before it takes effect a timeline change is known everywhere:
 * Sonic Pi schedules 0.5 s ahead, sclang 0.2 s (tutti_hub_config). */
#define DEF_CHANGE_LEAD TUTTI_S
/* Refused events within a second beyond which a member is removed as a
 * flooder: this many times its burst. */
#define FLOOD_FACTOR 2.0
/* An invitation whose member was removed as a flooder cannot join again for
 * BENCH_FIRST, twice that after its next removal, and so on up to BENCH_MAX:
 * rejoining would otherwise give a flooder a fresh burst every time (the
 * full-size attack run joined 45 times in 10 s and got 2000 events relayed
 * each time). Invitations only: a passphrase is everyone's. */
#define BENCH_FIRST (10 * TUTTI_S)
#define BENCH_MAX (300 * TUTTI_S)
#define BENCHED 32

typedef struct bench {
    char id[TUTTI__INVITE_ID_MAX];
    tutti_time until, length;
} bench;

/* A handshake under way: what the HELLO said and what the CHALLENGE bound. */
typedef struct hs_entry {
    uint32_t peer, hellos;
    tutti_time at;
    uint8_t cnonce[32], epk[32], hnonce[32], th[32], dh[32];
    char name[TUTTI_NAME_MAX];
    uint32_t role, resume_id;
    uint64_t recv_next;
    bool hidden; /* session and name come sealed in the AUTH (auth.h) */
} hs_entry;

typedef struct slot {
    int state;
    uint32_t id, peer;
    int role;
    char name[TUTTI_NAME_MAX];
    tutti_key added;
    tutti__link link;
    tutti__wbuf body;
    bool dirty; /* something queued */
    tutti_time last_heard, last_reject, last_nack_served, last_request;
    tutti_time w;      /* its promise */
    uint64_t next_seq; /* its next event, as it numbers them */
    uint64_t out_seq;  /* the seq its next relayed event gets */
    uint8_t secret[32]; /* the member secret (auth.h): what a resume proves */
    int cred_kind;      /* enum tutti__auth_kind it joined with */
    char cred_id[TUTTI__INVITE_ID_MAX];
    /* limits: token buckets (events, bytes) and payload held ahead */
    double ev_tokens, byte_tokens;
    tutti_time bucket_at;
    uint64_t held;
    uint64_t refused, refused_noted, refused_requests;
    const char *refused_why;
    tutti_time refused_noted_at;
    uint64_t flood, flood_at; /* refused for its rate this second, since when */
    /* reference chain over what this member should have delivered */
    uint64_t chain, count;
    uint64_t cp[CP_RING];
    uint64_t cp_hi; /* checkpoints computed: cp index count/CHECKPOINT */
    uint64_t stash_count, stash_hash;
    bool diverged;
    /* last reported by the member (its pings) */
    tutti_time delay, bound, need, tail;
    uint64_t late, late_seen;
    /* its trips to the hub: a promise w stamped at now + L arrives at
     * now_s + L - w after it was made (the trip and its clock's error) */
    tutti_time up[UP_WINDOW], up_cur, up_next_at;
    uint32_t nup, up_next;
    /* its events moved to the close; told up to moved_noted */
    uint64_t moved, moved_noted;
    tutti_time max_moved, moved_noted_at;
} slot;

struct tutti_hub {
    tutti_hub_config cfg;
    char session[TUTTI_NAME_MAX];
    char settings[TUTTI_SETTINGS_MAX];
    tutti_io io;
    tutti_time now, now_s;
    slot *slots;
    uint32_t nslots;
    uint32_t next_id;
    tutti__order order;
    tutti_time horizon, heartbeat, w0;
    uint64_t seq0;
    /* The session's close and its lead over the hub's clock; after L is
     * raised the lead stays at most close_hold_lead until close_hold_until
     * (events stamped under the old L are still on their way). */
    tutti_time close, close_lead, close_hold_until, close_hold_lead;
    tutti_time up_quiet_until; /* no trips measured before (L changed) */
    uint64_t moved;
    tutti_time last_beat, last_drop_log;
    tutti__tempo tempo;      /* as delivered: what the members have */
    tutti_timeline issued;   /* the last tempo this hub has ordered */
    tutti__wbuf rec, scratch, cmdbuf;
    uint64_t relayed, delivered, divergences, removed, dropped;
    bench benched[BENCHED]; /* invitations of removed flooders (BENCH_FIRST) */
    /* the automatic horizon */
    tutti_time auto_next, auto_raised, auto_lowered, auto_target;
    tutti_time auto_measured_since; /* every member's need known since; 0: not */
    bool floor_done;                /* the rehearsal's L has been let go */
    uint64_t auto_changes;
    /* admission */
    uint8_t sk[64], pk[32], pass_key[32];
    bool has_pass;
    char pass_role_name[16];
    tutti_invite *invites;
    uint32_t ninvites;
    hs_entry hs[HS_MAX];
    uint32_t nhs;
    uint64_t rnd_fallback;
    uint64_t auth_ok, auth_refused, refused_events, refused_requests;
    tutti_time last_auth_log;
    /* sealed links (seal.h): where a sealed frame is opened; frames dropped
     * because they did not open or came in clear on a sealed link */
    tutti__wbuf opened;
    uint64_t unsealed;
};

void tutti_hub_config_init(tutti_hub_config *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->session = "default";
    cfg->horizon = 100 * TUTTI_MS;
    cfg->suspect_after = 8 * TUTTI_S;
    cfg->bpm = 120.0;
    cfg->quantum = 4.0;
    cfg->max_members = 64;
    cfg->max_pending = 1u << 20;
    cfg->horizon_min = 5 * TUTTI_MS;
    cfg->horizon_margin = 3 * TUTTI_MS;
    cfg->open = true;
    cfg->passphrase_role = TUTTI_ROLE_PERFORMER;
    cfg->change_lead = DEF_CHANGE_LEAD;
}

static void hub_random(tutti_hub *h, uint8_t *out, size_t n)
{
    tutti__random_bytes(&h->io, &h->rnd_fallback, out, n);
}

/* h = L/10 within [5 ms, 20 ms]. Every member sends a promise every h and the
 * hub fans them out (N^2 / h frames a second): at 2 ms a 16-member session on
 * a two-core machine took twice the CPU it does at 5 ms, and the machine's
 * own delays grew with it; at small L a longer h costs less than it adds. */
static tutti_time derive_heartbeat(tutti_time horizon)
{
    tutti_time hb = horizon / 10;
    if (hb < 5 * TUTTI_MS) hb = 5 * TUTTI_MS;
    if (hb > 20 * TUTTI_MS) hb = 20 * TUTTI_MS;
    return hb;
}

static void clock_now(tutti_hub *h)
{
    h->now = h->io.now(h->io.ctx);
    h->now_s = h->now + h->cfg.session_epoch;
}

int tutti_hub_create(tutti_hub **out, const tutti_hub_config *cfg, const tutti_io *io)
{
    if (!out || !cfg || !io || !io->now || !io->send) return TUTTI_EINVAL;
    if (!cfg->session || strlen(cfg->session) >= TUTTI_NAME_MAX || cfg->horizon <= 0 ||
        cfg->horizon > TUTTI__MAX_HORIZON || cfg->suspect_after <= 0 ||
        cfg->heartbeat < 0 || cfg->max_members == 0 ||
        !(cfg->bpm >= TUTTI_BPM_MIN && cfg->bpm <= TUTTI_BPM_MAX) ||
        !(cfg->quantum > 0) || cfg->horizon_min < 0 || cfg->horizon_margin < 0 ||
        cfg->horizon_min > TUTTI__MAX_HORIZON ||
        cfg->horizon_margin > TUTTI__MAX_HORIZON || cfg->horizon_floor < 0 ||
        cfg->horizon_floor > TUTTI__MAX_HORIZON || cfg->floor_for < 0 ||
        cfg->passphrase_role < 0 || cfg->passphrase_role > 3 || cfg->max_event_rate < 0 ||
        cfg->max_event_burst < 0 || cfg->max_byte_rate < 0 || cfg->max_byte_burst < 0 ||
        cfg->max_ahead < 0 || cfg->change_lead < 0 || cfg->change_lead > TUTTI__MAX_LEAD ||
        (cfg->settings && strlen(cfg->settings) >= TUTTI_SETTINGS_MAX))
        return TUTTI_EINVAL;
    if (tutti__auth_init() != 0) return TUTTI_ENOMEM;
    tutti_hub *h = calloc(1, sizeof *h);
    if (!h) return TUTTI_ENOMEM;
    h->slots = calloc(cfg->max_members, sizeof *h->slots);
    if (!h->slots) {
        free(h);
        return TUTTI_ENOMEM;
    }
    h->cfg = *cfg;
    strcpy(h->session, cfg->session);
    h->cfg.session = h->session;
    if (cfg->settings) strcpy(h->settings, cfg->settings);
    h->cfg.settings = h->settings;
    h->io = *io;
    if (!h->cfg.max_event_rate) h->cfg.max_event_rate = DEF_EVENT_RATE;
    if (!h->cfg.max_event_burst) h->cfg.max_event_burst = DEF_EVENT_BURST;
    if (!h->cfg.max_byte_rate) h->cfg.max_byte_rate = DEF_BYTE_RATE;
    if (!h->cfg.max_byte_burst) h->cfg.max_byte_burst = DEF_BYTE_BURST;
    if (!h->cfg.max_ahead) h->cfg.max_ahead = DEF_MAX_AHEAD;
    if (!h->cfg.max_held) h->cfg.max_held = DEF_MAX_HELD;
    if (h->cfg.max_ahead > TUTTI__MAX_LEAD) h->cfg.max_ahead = TUTTI__MAX_LEAD;
    if (cfg->hub_sk) {
        memcpy(h->sk, cfg->hub_sk, 64);
        memcpy(h->pk, cfg->hub_sk + 32, 32);
    } else {
        uint8_t seed[32];
        hub_random(h, seed, sizeof seed);
        tutti__auth_keypair(h->pk, h->sk, seed);
        tutti__auth_wipe(seed, sizeof seed);
    }
    h->cfg.hub_sk = NULL;
    if (cfg->passphrase) {
        if (tutti__auth_passphrase_key(h->pass_key, cfg->passphrase, h->session) != 0) {
            free(h->slots);
            free(h);
            return TUTTI_ENOMEM;
        }
        h->has_pass = true;
    }
    h->cfg.passphrase = NULL;
    h->horizon = cfg->horizon;
    h->heartbeat = cfg->heartbeat > 0 ? cfg->heartbeat : derive_heartbeat(cfg->horizon);
    h->next_id = 1;
    h->auto_raised = io->now(io->ctx); /* no lowering in the first moments */
    tutti__order_init(&h->order, cfg->max_pending);
    tutti__wbuf_init(&h->rec);
    tutti__wbuf_init(&h->scratch);
    tutti__wbuf_init(&h->cmdbuf);
    tutti__wbuf_init(&h->opened);
    clock_now(h);
    h->w0 = h->now_s;
    h->close = h->now_s;
    h->close_lead = (h->horizon + h->heartbeat) / 2; /* until the first heartbeat */
    tutti__order_set_close(&h->order, h->close);
    tutti__order_add_origin(&h->order, 0, 1);
    h->seq0 = 1;
    tutti_timeline tl;
    tutti_timeline_init(&tl, cfg->bpm, cfg->quantum, h->now_s);
    tutti__tempo_init(&h->tempo, &tl);
    h->issued = tl;
    h->last_beat = h->now;
    *out = h;
    return 0;
}

void tutti_hub_destroy(tutti_hub *h)
{
    if (!h) return;
    for (uint32_t i = 0; i < h->nslots; i++) {
        tutti__link_free(&h->slots[i].link);
        tutti__wbuf_free(&h->slots[i].body);
    }
    free(h->slots);
    tutti__order_free(&h->order);
    tutti__wbuf_free(&h->rec);
    tutti__wbuf_free(&h->scratch);
    tutti__wbuf_free(&h->cmdbuf);
    tutti__wbuf_free(&h->opened);
    if (h->invites) tutti__auth_wipe(h->invites, h->ninvites * sizeof *h->invites);
    free(h->invites);
    tutti__auth_wipe(h->sk, sizeof h->sk);
    tutti__auth_wipe(h->pass_key, sizeof h->pass_key);
    tutti__auth_wipe(h->hs, sizeof h->hs);
    free(h);
}

/* --------------------------------------------------------------- slots */

static slot *slot_by_peer(tutti_hub *h, uint32_t peer)
{
    if (peer == 0) return NULL;
    /* Prefer the active slot: a removed slot may keep a peer for REJECTs. */
    slot *removed = NULL;
    for (uint32_t i = 0; i < h->nslots; i++) {
        if (h->slots[i].peer != peer) continue;
        if (h->slots[i].state == S_ACTIVE) return &h->slots[i];
        if (h->slots[i].state == S_REMOVED) removed = &h->slots[i];
    }
    return removed;
}

static slot *slot_by_id(tutti_hub *h, uint32_t id)
{
    for (uint32_t i = 0; i < h->nslots; i++)
        if (h->slots[i].state != S_FREE && h->slots[i].id == id) return &h->slots[i];
    return NULL;
}

/* True while some member whose part is `part` may still have events to
 * deliver: an active one, or a removed one whose last events are in flight. */
static bool part_busy(tutti_hub *h, uint32_t part)
{
    for (uint32_t i = 0; i < h->nslots; i++) {
        slot *s = &h->slots[i];
        if (s->state == S_FREE || tutti_member_part(s->id) != part) continue;
        if (s->state == S_ACTIVE) return true;
        tutti__origin *o = tutti__order_origin(&h->order, s->id);
        if (o && !(o->closed && o->next_seq > o->last_seq)) return true;
    }
    return false;
}

/* Ids only grow; the next one whose part is free, so parts never collide
 * (when every part is taken, the next id regardless: the coordinator logs it). */
static uint32_t next_member_id(tutti_hub *h)
{
    for (uint32_t k = 0; k < TUTTI_PARTS - 1; k++) {
        uint32_t id = h->next_id + k;
        if (id && !part_busy(h, tutti_member_part(id))) {
            h->next_id = id + 1;
            return id;
        }
    }
    tutti__logf(&h->io, TUTTI_LOG_WARN,
                "more than %d members at once: member %u shares part %u", TUTTI_PARTS - 1,
                h->next_id, tutti_member_part(h->next_id));
    return h->next_id++;
}

static slot *slot_alloc(tutti_hub *h)
{
    for (uint32_t i = 0; i < h->nslots; i++) {
        slot *s = &h->slots[i];
        /* A removed slot can be reused once its origin can no longer matter. */
        if (s->state == S_FREE) return s;
    }
    if (h->nslots < h->cfg.max_members) return &h->slots[h->nslots++];
    for (uint32_t i = 0; i < h->nslots; i++) {
        slot *s = &h->slots[i];
        if (s->state == S_REMOVED) {
            tutti__origin *o = tutti__order_origin(&h->order, s->id);
            if (o && !(o->closed && o->next_seq > o->last_seq)) continue;
            if (o && h->order.any_delivered &&
                tutti_key_cmp(&o->rm_key, &h->order.last) > 0)
                continue;
            tutti__order_forget(&h->order, s->id);
            tutti__link_free(&s->link);
            tutti__wbuf_free(&s->body);
            s->state = S_FREE;
            return s;
        }
    }
    return NULL;
}

/* ------------------------------------------------------------- sending */

/* A REJECT on a member's link (sealed when it seals), or in clear during a
 * handshake (link NULL). */
static void reject_on(tutti_hub *h, uint32_t peer, tutti__link *l, uint32_t code,
                      const char *reason)
{
    tutti__rec r;
    memset(&r, 0, sizeof r);
    r.type = TUTTI__REC_REJECT;
    r.u.reject.code = code;
    r.u.reject.reason = tutti__str_c(reason);
    tutti__send_rec(&h->io, peer, l, &r, &h->scratch);
}

static void reject(tutti_hub *h, uint32_t peer, uint32_t code, const char *reason)
{
    reject_on(h, peer, NULL, code, reason);
}

/*
 * Append the encoded record in h->rec to every active member's body; it goes
 * out at the end of the call that produced it (flush_all). The hub sends no
 * member's promises any more, only events, commands and its close once a
 * heartbeat: nothing is worth holding back to save frames.
 */
static void broadcast_rec(tutti_hub *h)
{
    for (uint32_t i = 0; i < h->nslots; i++) {
        slot *s = &h->slots[i];
        if (s->state != S_ACTIVE) continue;
        tutti__wbuf_append(&s->body, h->rec.p, h->rec.len);
        s->dirty = true;
    }
}

static void flush_all(tutti_hub *h)
{
    for (uint32_t i = 0; i < h->nslots; i++) {
        slot *s = &h->slots[i];
        if (s->state != S_ACTIVE || !s->dirty) continue;
        tutti__send_frame(&h->io, s->peer ? s->peer : TUTTI__NO_PEER, &s->link, true,
                          &s->body, &h->scratch);
        tutti__wbuf_reset(&s->body);
        s->dirty = false;
    }
}

/* The horizon rule for the hub's own commands. */
static tutti_key stamp(tutti_hub *h, tutti_time at_least)
{
    tutti_time t = h->now_s + h->horizon;
    if (t < h->w0) t = h->w0;
    if (t < h->close) t = h->close;
    if (t < at_least) t = at_least;
    h->w0 = t;
    tutti_key k = {t, 0, h->seq0++};
    return k;
}

/* Issue a command: relay it to every member and take it into the merge. */
static void issue(tutti_hub *h, const tutti_key *k, const tutti__rec *cmd)
{
    tutti__wbuf_reset(&h->rec);
    tutti__put_command(&h->rec, k, cmd, &h->cmdbuf);
    broadcast_rec(h);
    tutti__wbuf_reset(&h->cmdbuf);
    tutti__command_encode(&h->cmdbuf, cmd);
    tutti__order_push(&h->order, k, 0, TUTTI_EV_COMMAND, h->cmdbuf.p, (uint32_t)h->cmdbuf.len);
}

static void remove_member(tutti_hub *h, slot *s, const char *why)
{
    if (s->state != S_ACTIVE) return;
    s->state = S_REMOVED;
    tutti__rec c;
    memset(&c, 0, sizeof c);
    c.type = TUTTI__REC_COMMAND;
    c.u.command.op = TUTTI__CMD_REMOVE;
    c.u.command.member_id = s->id;
    c.u.command.last_seq = s->out_seq - 1;
    tutti_key k = stamp(h, 0);
    tutti__order_close(&h->order, s->id, s->out_seq - 1, k);
    issue(h, &k, &c);
    h->removed++;
    tutti__logf(&h->io, TUTTI_LOG_INFO, "tutti hub: member %u (%s) removed: %s",
                (unsigned)s->id, s->name, why);
    if (s->peer) reject_on(h, s->peer, &s->link, TUTTI__REJ_REMOVED, why);
    s->last_reject = h->now;
    /* The keys stay until the slot is reused, so the member's later frames
     * still open and are answered (sealed) that it was removed. */
    tutti__seal keep = s->link.seal;
    tutti__link_free(&s->link);
    s->link.seal = keep;
    tutti__auth_wipe(&keep, sizeof keep);
    tutti__wbuf_reset(&s->body);
    s->dirty = false;
}

/* ------------------------------------------------------------- joining */


/* The ADD command for a slot; `lead` is the newcomer's first promise past the
 * command's time. */
static tutti__rec add_command(const slot *s, tutti_time lead)
{
    tutti__rec c;
    memset(&c, 0, sizeof c);
    c.type = TUTTI__REC_COMMAND;
    c.u.command.op = TUTTI__CMD_ADD;
    c.u.command.member_id = s->id;
    c.u.command.role = (uint32_t)s->role;
    c.u.command.name = tutti__str_c(s->name);
    c.u.command.horizon = lead;
    return c;
}

/* Everything a joiner needs to deliver from its ADD command on. */
static void send_snapshot(tutti_hub *h, slot *j)
{
    tutti__wbuf *b = &j->body;
    tutti__rec c;
    for (uint32_t i = 0; i < h->nslots; i++) {
        slot *s = &h->slots[i];
        tutti__origin *o = s->state == S_FREE ? NULL : tutti__order_origin(&h->order, s->id);
        if (!o || s == j) continue;
        c = add_command(s, 0); /* history: its frontier comes with the watermarks */
        tutti__put_command(b, &s->added, &c, &h->cmdbuf);
        if (o->closed) {
            memset(&c, 0, sizeof c);
            c.type = TUTTI__REC_COMMAND;
            c.u.command.op = TUTTI__CMD_REMOVE;
            c.u.command.member_id = s->id;
            c.u.command.last_seq = o->last_seq;
            tutti__put_command(b, &o->rm_key, &c, &h->cmdbuf);
        }
    }
    /* The tempo schedule as delivered here, as history, in order; changes
     * not yet delivered here are pending events and follow below. */
    memset(&c, 0, sizeof c);
    c.type = TUTTI__REC_COMMAND;
    c.u.command.op = TUTTI__CMD_TEMPO;
    tutti_key hist = {INT64_MIN, 0, 0};
    for (uint32_t i = 0; i <= h->tempo.n; i++) {
        c.u.command.timeline = i == 0 ? h->tempo.now : h->tempo.ahead[i - 1];
        tutti__put_command(b, &hist, &c, &h->cmdbuf);
    }
    for (uint32_t i = 0; i < h->order.n; i++) {
        const tutti__pending *p = h->order.heap[i];
        tutti__rec r;
        memset(&r, 0, sizeof r);
        r.type = TUTTI__REC_EVENT;
        r.u.event.key = p->key;
        r.u.event.kind = p->kind;
        r.u.event.payload.p = p->data;
        r.u.event.payload.len = p->len;
        tutti__rec_put(b, &r);
    }
    tutti__put_watermark(b, 0, h->close, h->seq0);
    j->dirty = true;
}

/* ----------------------------------------------------------- admission */

static void peer_do(tutti_hub *h, uint32_t peer, int what)
{
    if (h->io.peer) h->io.peer(h->io.ctx, peer, what);
}

static hs_entry *hs_find(tutti_hub *h, uint32_t peer)
{
    for (uint32_t i = 0; i < h->nhs; i++)
        if (h->hs[i].peer == peer) return &h->hs[i];
    return NULL;
}

static void hs_drop(tutti_hub *h, hs_entry *e)
{
    tutti__auth_wipe(e, sizeof *e);
    *e = h->hs[--h->nhs];
    tutti__auth_wipe(&h->hs[h->nhs], sizeof *e);
}

/* A refused credential: REJECT with the reason, then the connection ends. */
static void refuse_auth(tutti_hub *h, uint32_t peer, const char *why)
{
    h->auth_refused++;
    if (h->now - h->last_auth_log >= TUTTI_S / 10) {
        tutti__logf(&h->io, TUTTI_LOG_WARN,
                    "tutti hub: connection %u refused: %s (%llu refused in all)",
                    (unsigned)peer, why, (unsigned long long)h->auth_refused);
        h->last_auth_log = h->now;
    }
    reject(h, peer, TUTTI__REJ_AUTH, why);
    peer_do(h, peer, TUTTI_PEER_CLOSE);
}

/* A HELLO: remember it and send a CHALLENGE. Nothing of the session goes to
 * a connection before its AUTH holds. */
static void on_hello(tutti_hub *h, uint32_t peer, const tutti__rec *r)
{
    char session[TUTTI_NAME_MAX], name[TUTTI_NAME_MAX];
    /* Both empty: the member hides them until its AUTH (ident), where the
     * session is checked; the transcript then covers the empty session. */
    bool hidden = r->u.hello.session.len == 0 && r->u.hello.name.len == 0;
    if (!hidden && (!tutti__str_copy(session, sizeof session, r->u.hello.session) ||
                    strcmp(session, h->session) != 0)) {
        reject(h, peer, TUTTI__REJ_SESSION, "no such session on this hub");
        return;
    }
    if (r->u.hello.cnonce.len != 32 || r->u.hello.epk.len != 32) {
        reject(h, peer, TUTTI__REJ_VERSION,
               "this hub needs the authenticated handshake (tutti 0.2 or later)");
        peer_do(h, peer, TUTTI_PEER_CLOSE);
        return;
    }
    if (!tutti__str_copy(name, sizeof name, r->u.hello.name) || r->u.hello.role > 3) {
        reject(h, peer, TUTTI__REJ_SESSION, "bad member name or role");
        return;
    }
    hs_entry *e = hs_find(h, peer);
    if (e && !memcmp(e->cnonce, r->u.hello.cnonce.p, 32) &&
        !memcmp(e->epk, r->u.hello.epk.p, 32)) {
        /* the same HELLO again (a repeat): the same challenge */
    } else {
        uint32_t hellos = e ? e->hellos : 0;
        if (!e) {
            if (h->nhs == HS_MAX) {
                /* full: the oldest handshake makes room (an honest one
                 * completes within a round trip) */
                uint32_t old = 0;
                for (uint32_t i = 1; i < h->nhs; i++)
                    if (h->hs[i].at < h->hs[old].at) old = i;
                peer_do(h, h->hs[old].peer, TUTTI_PEER_CLOSE);
                hs_drop(h, &h->hs[old]);
            }
            e = &h->hs[h->nhs++];
        }
        memset(e, 0, sizeof *e);
        e->peer = peer;
        e->hellos = hellos;
        memcpy(e->cnonce, r->u.hello.cnonce.p, 32);
        memcpy(e->epk, r->u.hello.epk.p, 32);
        hub_random(h, e->hnonce, 32);
        tutti__auth_transcript(e->th, hidden ? "" : h->session, e->cnonce, e->epk, e->hnonce,
                               h->pk);
        e->hidden = hidden;
        if (!tutti__auth_dh_hub(e->dh, h->sk, e->epk)) {
            hs_drop(h, e);
            refuse_auth(h, peer, "a degenerate key in the hello");
            return;
        }
    }
    e->at = h->now;
    if (++e->hellos > HS_HELLOS) {
        hs_drop(h, e);
        refuse_auth(h, peer, "too many hellos without proving a credential");
        return;
    }
    strcpy(e->name, name);
    e->role = r->u.hello.role;
    e->resume_id = r->u.hello.resume_id;
    e->recv_next = r->u.hello.recv_next;
    tutti__rec c;
    uint8_t sig[64];
    tutti__auth_sign(sig, e->th, h->sk);
    memset(&c, 0, sizeof c);
    c.type = TUTTI__REC_CHALLENGE;
    c.u.challenge.hnonce = (tutti__str){e->hnonce, 32};
    c.u.challenge.hub_pk = (tutti__str){h->pk, 32};
    c.u.challenge.sig = (tutti__str){sig, 64};
    c.u.challenge.mode = (h->cfg.open ? TUTTI__MODE_OPEN : 0) |
                         (h->has_pass ? TUTTI__MODE_PASSPHRASE : 0) |
                         (h->ninvites ? TUTTI__MODE_INVITE : 0);
    tutti__send_rec(&h->io, peer, NULL, &c, &h->scratch);
}

static const tutti_invite *invite_find(const tutti_hub *h, const char *id)
{
    for (uint32_t i = 0; i < h->ninvites; i++)
        if (!strcmp(h->invites[i].id, id)) return &h->invites[i];
    return NULL;
}

/* Unix seconds by the session clock (NTP time on a real hub). */
static int64_t unix_now(const tutti_hub *h)
{
    return (int64_t)(h->now_s / TUTTI_S) - INT64_C(2208988800);
}

static void resume(tutti_hub *h, uint32_t peer, slot *s, uint64_t recv_next)
{
    /* A peer that held this member before is not its peer any more. */
    s->peer = peer;
    s->last_heard = h->now;
    if (!tutti__resend(&h->io, peer, &s->link, recv_next)) {
        remove_member(h, s, "gone too long to catch up");
        return;
    }
    tutti__rec n;
    memset(&n, 0, sizeof n);
    n.type = TUTTI__REC_NACK;
    n.u.nack.from = s->link.recv_next;
    tutti__send_rec(&h->io, peer, &s->link, &n, &h->scratch);
}

static void admit(tutti_hub *h, uint32_t peer, const hs_entry *e, int role, int kind,
                  const char *cred_id)
{
    /* A peer that says hello again starts over: its old self is removed. */
    slot *old = slot_by_peer(h, peer);
    if (old && old->state == S_ACTIVE) remove_member(h, old, "rejoined");
    if (old) old->peer = 0;
    slot *s = slot_alloc(h);
    if (!s) {
        reject(h, peer, TUTTI__REJ_FULL, "the session is full");
        return;
    }
    memset(s, 0, sizeof *s);
    s->state = S_ACTIVE;
    s->id = next_member_id(h);
    s->peer = peer;
    s->role = role;
    strcpy(s->name, e->name);
    s->last_heard = h->now;
    s->next_seq = 1;
    s->out_seq = 1;
    s->cred_kind = kind;
    snprintf(s->cred_id, sizeof s->cred_id, "%s", cred_id);
    tutti__auth_member_secret(s->secret, e->dh, e->th);
    s->ev_tokens = h->cfg.max_event_burst;
    s->byte_tokens = h->cfg.max_byte_burst;
    s->bucket_at = h->now;
    s->refused_why = "";
    tutti__link_init(&s->link, 1, 1);
    s->link.stamps = true;
    s->link.stamp_epoch = h->cfg.session_epoch;
    /* Everything after the WELCOME is sealed with keys from the member
     * secret, unless the member joined an open hub with no credential
     * (docs/security.md: an open hub stays in clear). */
    if (kind != TUTTI__AUTH_OPEN) tutti__seal_init(&s->link.seal, s->secret, true);
    tutti__wbuf_init(&s->body);

    /* The newcomer's first promise is one horizon past its ADD: it cannot stamp
     * anything before WELCOME reaches it, and this gives its first watermark a
     * whole horizon to come round, so a join does not make others late. */
    tutti__rec c = add_command(s, h->horizon);
    s->added = stamp(h, 0);
    s->w = s->added.t + h->horizon;
    /* Everyone else hears of the newcomer first; it gets its snapshot. */
    s->state = S_FREE;
    issue(h, &s->added, &c);
    s->state = S_ACTIVE;
    tutti__order_add_origin(&h->order, s->id, 1);

    tutti__rec wr;
    memset(&wr, 0, sizeof wr);
    wr.type = TUTTI__REC_WELCOME;
    wr.u.welcome.member_id = s->id;
    wr.u.welcome.horizon = h->horizon;
    wr.u.welcome.heartbeat = h->heartbeat;
    wr.u.welcome.joined = s->added;
    wr.u.welcome.hub_next = 1;
    wr.u.welcome.role = (uint32_t)role;
    wr.u.welcome.settings =
        (tutti__str){(const uint8_t *)h->settings, (uint32_t)strlen(h->settings)};
    tutti__send_rec(&h->io, peer, NULL, &wr, &h->scratch);
    send_snapshot(h, s);
    tutti__logf(&h->io, TUTTI_LOG_INFO, "tutti hub: %s joined as member %u (%s, %s%s%s)",
                s->name, (unsigned)s->id, tutti_role_name(role),
                kind == TUTTI__AUTH_INVITE       ? "invitation "
                : kind == TUTTI__AUTH_PASSPHRASE ? "passphrase"
                                                 : "open hub",
                kind == TUTTI__AUTH_INVITE ? s->cred_id : "",
                s->link.seal.on ? ", link encrypted" : ", link NOT encrypted");
}

/* An AUTH: check the proof against the credential it names, then admit or
 * resume. */
static void on_auth(tutti_hub *h, uint32_t peer, const tutti__rec *r)
{
    hs_entry *e = hs_find(h, peer);
    if (!e) {
        refuse_auth(h, peer, "no handshake under way (say hello first)");
        return;
    }
    hs_entry hs = *e; /* the table may change below */
    hs_drop(h, e);
    char cred_id[TUTTI__INVITE_ID_MAX] = "";
    if (!tutti__str_copy(cred_id, sizeof cred_id, r->u.auth.cred_id) ||
        r->u.auth.proof.len != 32) {
        refuse_auth(h, peer, "a malformed credential");
        goto out;
    }
    if (hs.hidden) {
        char session[TUTTI_NAME_MAX];
        if (!tutti__auth_open_id(session, hs.name, hs.dh, hs.th, r->u.auth.ident.p,
                                 r->u.auth.ident.len)) {
            refuse_auth(h, peer, "the sealed identity does not open");
            goto out;
        }
        if (strcmp(session, h->session) != 0) {
            h->auth_refused++;
            reject(h, peer, TUTTI__REJ_SESSION, "no such session on this hub");
            peer_do(h, peer, TUTTI_PEER_CLOSE);
            goto out;
        }
    }
    const uint8_t zero[32] = {0};
    const uint8_t *key = NULL;
    slot *s = NULL;
    int role = 0;
    const char *why = NULL;
    uint32_t kind = r->u.auth.kind;
    if (hs.resume_id != 0 && kind != TUTTI__AUTH_RESUME)
        why = "a resume must prove the member's secret";
    else if (kind == TUTTI__AUTH_OPEN) {
        if (!h->cfg.open)
            why = "this hub is not open: it needs an invitation or the passphrase";
        key = zero;
        role = (int)hs.role;
    } else if (kind == TUTTI__AUTH_INVITE) {
        const tutti_invite *inv = invite_find(h, cred_id);
        if (!inv)
            why = "unknown or revoked invitation";
        else if (inv->expires && unix_now(h) > inv->expires)
            why = "the invitation has expired";
        else {
            key = inv->secret;
            role = inv->role;
        }
    } else if (kind == TUTTI__AUTH_PASSPHRASE) {
        if (!h->has_pass)
            why = "this hub takes no passphrase";
        key = h->pass_key;
        role = h->cfg.passphrase_role;
    } else if (kind == TUTTI__AUTH_RESUME) {
        s = hs.resume_id ? slot_by_id(h, hs.resume_id) : NULL;
        if (!s || s->state != S_ACTIVE) {
            /* Say so only to a connection that proves nothing yet; the
             * member behind it rejoins (as itself, with its credential). */
            reject(h, peer, TUTTI__REJ_REMOVED, "this member was removed; join again");
            goto out;
        }
        key = s->secret;
    } else {
        why = "an unknown kind of credential";
    }
    if (!why && key) {
        uint8_t want[32];
        tutti__auth_proof(want, key, hs.dh, hs.th, kind, cred_id, hs.name, hs.resume_id);
        if (!tutti__auth_equal(want, r->u.auth.proof.p, 32))
            why = kind == TUTTI__AUTH_PASSPHRASE ? "wrong passphrase"
                  : kind == TUTTI__AUTH_RESUME   ? "the resume does not prove the member's secret"
                  : kind == TUTTI__AUTH_INVITE   ? "the invitation's proof does not hold"
                                                 : "the proof does not hold";
        tutti__auth_wipe(want, sizeof want);
    }
    char wait_msg[96];
    if (!why && kind == TUTTI__AUTH_INVITE) {
        for (int i = 0; i < BENCHED; i++) {
            const bench *b = &h->benched[i];
            if (b->id[0] && !strcmp(b->id, cred_id) && h->now < b->until) {
                snprintf(wait_msg, sizeof wait_msg,
                         "removed for flooding: this invitation can join again in %.0f s",
                         (double)(b->until - h->now) / TUTTI_S + 0.5);
                why = wait_msg;
            }
        }
    }
    if (why) {
        refuse_auth(h, peer, why);
        goto out;
    }
    h->auth_ok++;
    peer_do(h, peer, TUTTI_PEER_AUTHED);
    if (kind == TUTTI__AUTH_RESUME)
        resume(h, peer, s, hs.recv_next);
    else
        admit(h, peer, &hs, role, (int)kind, cred_id);
out:
    tutti__auth_wipe(&hs, sizeof hs);
}

/* ------------------------------------------------------------ receiving */

static void on_report(tutti_hub *h, slot *s, uint64_t count, uint64_t hash);

/*
 * A member's stream is all or nothing: an event the hub refused would leave a
 * hole in its sequence, so a member that breaks the protocol (another origin,
 * a command, a sequence gap, below its own promise, too far ahead, too big)
 * is removed with the reason, at a clean cut, and may join again. Returns
 * false when it was.
 */
/* An event within the protocol but beyond the member's role or limits: not
 * relayed, counted, and told to the member (note_refused). */
/* The invitation of a member removed as a flooder sits out a while (see
 * BENCH_FIRST); each removal doubles it. */
static void bench_invite(tutti_hub *h, const char *id)
{
    if (!id || !id[0]) return;
    bench *b = NULL, *oldest = &h->benched[0];
    for (int i = 0; i < BENCHED; i++) {
        if (!strcmp(h->benched[i].id, id)) b = &h->benched[i];
        if (h->benched[i].until < oldest->until) oldest = &h->benched[i];
    }
    if (!b) {
        b = oldest;
        memset(b, 0, sizeof *b);
        snprintf(b->id, sizeof b->id, "%s", id);
    }
    b->length = b->length ? b->length * 2 : BENCH_FIRST;
    if (b->length > BENCH_MAX) b->length = BENCH_MAX;
    b->until = h->now + b->length;
}

static const char *over_limit(tutti_hub *h, slot *s, const tutti__rec *r)
{
    uint32_t len = r->u.event.payload.len;
    if (s->role == TUTTI_ROLE_LISTENER) return "a listener cannot submit events";
    tutti_time dt = h->now - s->bucket_at;
    s->bucket_at = h->now;
    if (dt > 0) {
        s->ev_tokens += h->cfg.max_event_rate * (double)dt / 1e9;
        s->byte_tokens += h->cfg.max_byte_rate * (double)dt / 1e9;
        if (s->ev_tokens > h->cfg.max_event_burst) s->ev_tokens = h->cfg.max_event_burst;
        if (s->byte_tokens > h->cfg.max_byte_burst) s->byte_tokens = h->cfg.max_byte_burst;
    }
    if (r->u.event.key.t > h->now_s + h->cfg.max_ahead)
        return "an event stamped further ahead than the hub allows";
    if (s->ev_tokens < 1) return "more events per second than the hub allows";
    if (s->byte_tokens < len) return "more bytes per second than the hub allows";
    if (s->held + len > h->cfg.max_held)
        return "more bytes scheduled ahead than the hub allows";
    s->ev_tokens -= 1;
    s->byte_tokens -= len;
    return NULL;
}

static bool relay_event(tutti_hub *h, slot *s, const tutti__rec *r)
{
    const tutti_key *k = &r->u.event.key;
    const char *why = NULL;
    if (k->origin != s->id || r->u.event.kind != TUTTI_EV_USER)
        why = "sent an event it may not send";
    else if (k->seq != s->next_seq)
        why = "sent events out of sequence";
    else if (k->t < s->w)
        why = "stamped an event below its own watermark";
    else if (k->t > h->now_s + TUTTI__MAX_LEAD)
        why = "scheduled an event too far ahead";
    else if (r->u.event.payload.len > TUTTI__MAX_PAYLOAD)
        why = "sent an event that is too large";
    if (!why) {
        const char *limit = over_limit(h, s, r);
        if (limit) {
            /* Within the protocol: its number is used, nothing is relayed. */
            s->next_seq++;
            s->refused++;
            s->refused_why = limit;
            h->refused_events++;
            /* A member that keeps sending far beyond its rate is not playing:
             * decoding its flood costs the hub (and the machine the others
             * share) more than refusing it is worth. */
            if (h->now - (tutti_time)s->flood_at >= TUTTI_S) {
                s->flood_at = (uint64_t)h->now;
                s->flood = 0;
            }
            if (++s->flood > FLOOD_FACTOR * h->cfg.max_event_burst + 1000) {
                char msg[120];
                snprintf(msg, sizeof msg,
                         "flooding: over %.0f events a second beyond its limit",
                         FLOOD_FACTOR * h->cfg.max_event_burst);
                h->dropped++;
                bench_invite(h, s->cred_id);
                uint32_t peer = s->peer;
                remove_member(h, s, msg);
                if (peer) peer_do(h, peer, TUTTI_PEER_CLOSE);
                return false;
            }
            return true;
        }
    }
    /* Session time before the close is closed: the event goes to the first
     * open instant, with the t its origin stamped. The hub numbers what it
     * relays of each origin itself. */
    tutti__rec fwd = *r;
    fwd.u.event.key.seq = s->out_seq;
    fwd.u.event.moved_from = 0;
    if (!why && k->t < h->close) {
        fwd.u.event.key.t = h->close;
        fwd.u.event.moved_from = k->t;
    }
    if (!why && tutti__order_push(&h->order, &fwd.u.event.key, fwd.u.event.moved_from,
                                  TUTTI_EV_USER, r->u.event.payload.p,
                                  r->u.event.payload.len) < 0)
        why = "sent more than the hub can hold";
    if (why) {
        h->dropped++;
        remove_member(h, s, why);
        return false;
    }
    if (fwd.u.event.moved_from) {
        tutti_time by = h->close - k->t;
        h->moved++;
        s->moved++;
        if (by > s->max_moved) s->max_moved = by;
    }
    s->next_seq++;
    s->out_seq++;
    s->held += r->u.event.payload.len;
    tutti__wbuf_reset(&h->rec);
    tutti__rec_put(&h->rec, &fwd);
    broadcast_rec(h);
    h->relayed++;
    return true;
}

/* One trip of a member's promise to the hub, into its window. */
static void up_sample(tutti_hub *h, slot *s, tutti_time trip)
{
    if (h->now < h->up_quiet_until) return; /* promises under an older L */
    if (trip < 0) trip = 0;
    if (trip > s->up_cur) s->up_cur = trip;
    if (h->now < s->up_next_at) return;
    s->up[s->up_next] = s->up_cur;
    s->up_next = (s->up_next + 1) % UP_WINDOW;
    if (s->nup < UP_WINDOW) s->nup++;
    s->up_cur = 0;
    s->up_next_at = h->now + UP_EVERY;
}

/*
 * A member's promise. The hub relays no member's promises (it closes
 * session time itself); it keeps them to check the member's events against
 * and to measure its trip: a promise is made at now + L, so it arrives
 * now_s + L - w after it was made.
 */
static void on_watermark(tutti_hub *h, slot *s, const tutti__rec *r)
{
    if (r->u.watermark.origin != s->id) {
        h->dropped++;
        return;
    }
    if (r->u.watermark.w <= s->w) return; /* stale; promises only grow */
    up_sample(h, s, tutti__sat_sub(h->now_s + h->horizon, r->u.watermark.w));
    s->w = r->u.watermark.w;
    /* Alive means keeping the promise moving: a peer that only talks (NACKs,
     * duplicates, hellos) but never advances is not playing. */
    s->last_heard = h->now;
}

static void notice_to(tutti_hub *h, slot *s, uint32_t code, int level, const char *text)
{
    tutti__rec n;
    memset(&n, 0, sizeof n);
    n.type = TUTTI__REC_NOTICE;
    n.u.notice.code = code;
    n.u.notice.level = level;
    n.u.notice.text = tutti__str_c(text);
    if (s->peer) tutti__send_rec(&h->io, s->peer, &s->link, &n, &h->scratch);
}

/* A warning about a member, in the hub's log and to the member itself. */
static void warn_member(tutti_hub *h, slot *s, uint32_t code, const char *text)
{
    tutti__logf(&h->io, TUTTI_LOG_WARN, "tutti hub: member %u (%s): %s", (unsigned)s->id,
                s->name, text);
    notice_to(h, s, code, TUTTI_LOG_WARN, text);
}

/* The role a request needs: the timeline (tempo, transport) is the
 * conductor's, L and membership the admin's. */
static int request_role(uint32_t kind)
{
    return kind == TUTTI__REQ_BPM || kind == TUTTI__REQ_TRANSPORT ? TUTTI_ROLE_CONDUCTOR
                                                                  : TUTTI_ROLE_ADMIN;
}

static bool role_allows(int have, int need)
{
    if (have == TUTTI_ROLE_ADMIN) return true;
    return have == need;
}

static void on_request(tutti_hub *h, slot *s, const tutti__rec *r)
{
    if (h->now - s->last_request < 100 * TUTTI_MS) return; /* one per 100 ms */
    s->last_request = h->now;
    uint32_t kind = r->u.request.kind;
    const char *what = kind == TUTTI__REQ_BPM         ? "changing the tempo"
                       : kind == TUTTI__REQ_HORIZON   ? "changing L"
                       : kind == TUTTI__REQ_REMOVE    ? "removing a member"
                       : kind == TUTTI__REQ_TRANSPORT ? "changing the transport"
                                                      : NULL;
    char text[160];
    if (!what) return; /* a request of a later version */
    if (!role_allows(s->role, request_role(kind))) {
        s->refused_requests++;
        h->refused_requests++;
        snprintf(text, sizeof text, "refused: %s needs the %s role (you are %s)", what,
                 tutti_role_name(request_role(kind)), tutti_role_name(s->role));
        warn_member(h, s, TUTTI__NOTE_REFUSED, text);
        return;
    }
    int rc = 0;
    if (kind == TUTTI__REQ_BPM)
        rc = tutti_hub_set_bpm(h, r->u.request.f);
    else if (kind == TUTTI__REQ_HORIZON)
        rc = tutti_hub_set_horizon(h, r->u.request.i);
    else if (kind == TUTTI__REQ_TRANSPORT)
        rc = tutti_hub_set_transport(h, r->u.request.i != 0);
    else
        rc = tutti_hub_remove(h, r->u.request.member, "removed by an admin");
    if (rc != 0) {
        s->refused_requests++;
        h->refused_requests++;
        snprintf(text, sizeof text, "refused: %s: %s", what, tutti_strerror(rc));
        notice_to(h, s, TUTTI__NOTE_REFUSED, TUTTI_LOG_WARN, text);
    }
}

typedef struct rx {
    tutti_hub *h;
    uint32_t peer;
    slot *s;
    const tutti__frame_hdr *hdr;
    int verdict;
    tutti_time t2;
    bool sealed; /* the frame came sealed (and opened) */
} rx;

static int on_rec(void *ctx, const tutti__rec *r)
{
    rx *x = ctx;
    tutti_hub *h = x->h;
    /* On a sealed link a clear frame may only be a handshake (the member
     * starting over on the same connection) or a ping, answered in clear
     * and not believed; anything else in clear is dropped and counted. */
    bool clear_on_sealed = x->s && x->s->link.seal.on && !x->sealed;
    if (clear_on_sealed && r->type != TUTTI__REC_HELLO && r->type != TUTTI__REC_AUTH &&
        r->type != TUTTI__REC_PING) {
        h->unsealed++;
        h->dropped++;
        return 1;
    }
    if (r->type == TUTTI__REC_STAMP) {
        /* The member's clock when it made this frame and ours when it came:
         * the tightest since the last echo goes back with our next frame. */
        tutti__link *l = x->s && x->s->state == S_ACTIVE ? &x->s->link : NULL;
        tutti_time t1 = r->u.stamp.t, t2 = x->t2;
        if (l && t1 > 0 && t2 > 0 &&
            (l->echo_t1 == 0 ||
             tutti__sat_sub(t2, t1) < tutti__sat_sub(l->echo_t2, l->echo_t1)))
            l->echo_t1 = t1, l->echo_t2 = t2;
        if (x->hdr->link_seq == 0) return 0;
    }
    if (r->type == TUTTI__REC_PING) {
        tutti__rec p;
        memset(&p, 0, sizeof p);
        p.type = TUTTI__REC_PONG;
        p.u.pong.t1 = r->u.ping.t1;
        p.u.pong.t2 = x->t2;
        p.u.pong.t3 = h->io.now(h->io.ctx) + h->cfg.session_epoch;
        bool member = x->s && x->s->state == S_ACTIVE && !clear_on_sealed;
        tutti__send_rec(&h->io, x->peer, member ? &x->s->link : NULL, &p, &h->scratch);
        if (member) {
            /* what the member measures, for the automatic horizon and status */
            x->s->delay = r->u.ping.delay > 0 && r->u.ping.delay < TUTTI__MAX_HORIZON
                              ? r->u.ping.delay
                              : 0;
            x->s->bound = r->u.ping.bound > 0 && r->u.ping.bound < TUTTI__MAX_HORIZON
                              ? r->u.ping.bound
                              : 0;
            x->s->late = r->u.ping.late;
            x->s->need = r->u.ping.need > 0 && r->u.ping.need < TUTTI__MAX_HORIZON
                             ? r->u.ping.need
                             : 0;
            x->s->tail =
                r->u.ping.tail > 0 && r->u.ping.tail < x->s->need ? r->u.ping.tail : 0;
        }
        return 0;
    }
    if (r->type == TUTTI__REC_HELLO) {
        on_hello(h, x->peer, r);
        return 1;
    }
    if (r->type == TUTTI__REC_AUTH) {
        on_auth(h, x->peer, r);
        x->s = slot_by_peer(h, x->peer);
        return 1;
    }
    slot *s = x->s;
    if (!s) {
        /* A connection that has not said hello: frames queued on it before a
         * reconnect, or a stranger. Dropped without an answer; a member the
         * hub has forgotten learns so from the reply to its resume hello. */
        h->dropped++;
        return 1;
    }
    if (s->state != S_ACTIVE) {
        if (h->now - s->last_reject >= 100 * TUTTI_MS) {
            reject_on(h, x->peer, &s->link, TUTTI__REJ_REMOVED,
                      "this member was removed; join again");
            s->last_reject = h->now;
        }
        return 1;
    }
    if (r->type == TUTTI__REC_NACK) {
        /* At most one resend per NACK interval, from what it has not acked. */
        if (h->now - s->last_nack_served < 20 * TUTTI_MS) return 0;
        s->last_nack_served = h->now;
        uint64_t from = r->u.nack.from > s->link.acked ? r->u.nack.from : s->link.acked + 1;
        if (!tutti__resend(&h->io, x->peer, &s->link, from)) {
            remove_member(h, s, "gone too long to catch up");
            return 1;
        }
        return 0;
    }
    if (x->hdr->link_seq == 0) return 0; /* nothing else is valid unsequenced */
    if (x->verdict < 0) x->verdict = tutti__link_receive(&s->link, x->hdr->link_seq, x->hdr->ack);
    if (x->verdict != TUTTI__LINK_ACCEPT) return 1;
    switch (r->type) {
    case TUTTI__REC_EVENT:
        if (!relay_event(h, s, r)) return 1;
        break;
    case TUTTI__REC_WATERMARK: on_watermark(h, s, r); break;
    case TUTTI__REC_REPORT: on_report(h, s, r->u.report.count, r->u.report.hash); break;
    case TUTTI__REC_REQUEST: on_request(h, s, r); break;
    case TUTTI__REC_BYE: remove_member(h, s, "left"); return 1;
    default: break;
    }
    return 0;
}

/* ---------------------------------------------------- delivery, hashes */

static void report_divergence(tutti_hub *h, slot *s, uint64_t count)
{
    if (s->diverged) return;
    s->diverged = true;
    h->divergences++;
    tutti__logf(&h->io, TUTTI_LOG_ERROR,
                "tutti hub: DIVERGENCE: member %u (%s) delivered a different sequence "
                "(first seen at its event %llu)",
                (unsigned)s->id, s->name, (unsigned long long)count);
    tutti__rec n;
    memset(&n, 0, sizeof n);
    n.type = TUTTI__REC_NOTICE;
    n.u.notice.code = TUTTI__NOTE_DIVERGED;
    n.u.notice.level = TUTTI_LOG_ERROR;
    n.u.notice.text = tutti__str_c("divergence: this member's delivered sequence differs "
                                   "from the coordinator's");
    tutti__send_rec(&h->io, s->peer, &s->link, &n, &h->scratch);
}

static void on_report(tutti_hub *h, slot *s, uint64_t count, uint64_t hash)
{
    if (count == 0 || count % TUTTI__CHECKPOINT) return;
    uint64_t idx = count / TUTTI__CHECKPOINT;
    if (idx > s->cp_hi) {
        s->stash_count = count; /* the hub has not got there yet */
        s->stash_hash = hash;
        return;
    }
    if (idx + CP_RING <= s->cp_hi) return; /* too old to check */
    if (s->cp[idx % CP_RING] != hash) report_divergence(h, s, count);
}

static void hub_deliver(tutti_hub *h)
{
    const tutti__pending *p;
    while ((p = tutti__order_ready(&h->order)) != NULL) {
        uint64_t d = tutti__event_digest(&p->key, p->kind, p->data, p->len);
        for (uint32_t i = 0; i < h->nslots; i++) {
            slot *s = &h->slots[i];
            if (s->state == S_FREE || tutti_key_cmp(&p->key, &s->added) <= 0) continue;
            if (s->state == S_REMOVED) continue;
            s->chain = tutti__chain(s->chain, d);
            if (++s->count % TUTTI__CHECKPOINT == 0) {
                s->cp_hi = s->count / TUTTI__CHECKPOINT;
                s->cp[s->cp_hi % CP_RING] = s->chain;
                if (s->stash_count == s->count) {
                    s->stash_count = 0;
                    if (s->stash_hash != s->chain) report_divergence(h, s, s->count);
                }
            }
        }
        if (p->kind == TUTTI_EV_COMMAND) {
            tutti__rec c;
            if (tutti__command_decode(p->data, p->len, &c) == 0 &&
                c.u.command.op == TUTTI__CMD_TEMPO)
                tutti__tempo_push(&h->tempo, &c.u.command.timeline);
        } else {
            slot *o = slot_by_id(h, p->key.origin);
            if (o) o->held = o->held > p->len ? o->held - p->len : 0;
        }
        h->delivered++;
        tutti__order_pop(&h->order);
    }
}

int tutti_hub_receive(tutti_hub *h, uint32_t peer, const uint8_t *buf, size_t len)
{
    clock_now(h);
    tutti__frame_hdr hdr;
    memset(&hdr, 0, sizeof hdr);
    rx x = {h, peer, slot_by_peer(h, peer), &hdr, -1, h->now_s, false};
    const char *why = NULL;
    const uint8_t *frame;
    size_t flen;
    int rc = tutti__open_frame(x.s ? &x.s->link : NULL, buf, len, &h->opened, &frame, &flen,
                               &x.sealed, &why);
    if (rc < 0) h->unsealed++;
    if (rc == 0) rc = tutti__frame_decode(frame, flen, &hdr, on_rec, &x, &why);
    if (rc < 0) {
        /* Logged at most once a second, with how many more were dropped, so a
         * flood cannot flood the log too. */
        h->dropped++;
        if (h->now - h->last_drop_log >= TUTTI_S) {
            tutti__logf(&h->io, TUTTI_LOG_WARN,
                        "tutti hub: dropped a malformed frame from peer %u: %s "
                        "(%llu dropped in all)",
                        (unsigned)peer, why ? why : tutti_strerror(rc),
                        (unsigned long long)h->dropped);
            h->last_drop_log = h->now;
        }
        return rc;
    }
    slot *s = x.s;
    if (s && s->state == S_ACTIVE && hdr.link_seq != 0 && (x.sealed || !s->link.seal.on)) {
        if (x.verdict < 0) x.verdict = tutti__link_receive(&s->link, hdr.link_seq, hdr.ack);
        if (x.verdict == TUTTI__LINK_GAP &&
            tutti__link_should_nack(&s->link, h->now, 20 * TUTTI_MS)) {
            tutti__rec n;
            memset(&n, 0, sizeof n);
            n.type = TUTTI__REC_NACK;
            n.u.nack.from = s->link.recv_next;
            tutti__send_rec(&h->io, peer, &s->link, &n, &h->scratch);
        }
    }
    hub_deliver(h);
    flush_all(h);
    return 0;
}

/* ------------------------------------------------------------- timers */

void tutti_hub_connected(tutti_hub *h, uint32_t peer)
{
    (void)h;
    (void)peer; /* nothing until the peer says hello */
}

void tutti_hub_disconnected(tutti_hub *h, uint32_t peer)
{
    for (uint32_t i = 0; i < h->nslots; i++)
        if (h->slots[i].peer == peer) h->slots[i].peer = 0;
}

/* ---------------------------------------------------- automatic horizon */

#define AUTO_EVERY (500 * TUTTI_MS)  /* how often the target is looked at */
#define AUTO_RAISE_HOLD (3 * TUTTI_S) /* no lowering this soon after a raise */
#define AUTO_LOWER_EVERY (1 * TUTTI_S)
/* No lowering on measured needs younger than this: a member's need is the
 * largest of its recent deliveries, and its first seconds have not yet seen
 * the slower moments a path (or a busy machine) has now and then. */
#define AUTO_LEARN (4 * TUTTI_S)
/* Late events are a reason to raise only this long after the last change:
 * events stamped under the old L are still arriving for a while. */
#define AUTO_LATE_SETTLE (3 * TUTTI_S)

/* L = need + 1.25 h, with h = L/10 between 5 and 20 ms */
static tutti_time with_heartbeat(const tutti_hub *h, tutti_time need)
{
    tutti_time l = need * 8 / 7;
    tutti_time hb = h->cfg.heartbeat > 0 ? h->cfg.heartbeat : derive_heartbeat(l);
    return need + hb + hb / 4;
}

/*
 * The L that the members' reports call for (see tutti_hub_config). Two
 * estimates:
 * - measured: each member reports the largest L + lateness of its recent
 *   deliveries (stalls left out), which is the trip of the events, the wait
 *   for every origin's promise, the member's clock error and its delivery
 *   lead together, as the member judges lateness, carried ahead by what
 *   the tail of its recent needs says is still to come (its tail). The
 *   target is the largest of the members' needs without their tails, each
 *   plus a twelfth and room for the moment larger than anything measured
 *   (a stall of the machine, a burst): its tail, or the margin when that
 *   is more. A tail and the margin are one allowance, not added up (at a
 *   few ms of delay the machine's scheduling is a heavy tail of its own,
 *   and the sum went over 1.2 x the delay + 5 ms, the acceptance bound of
 *   a steady session).
 * - from the round trips: 2 max D + margin + 1.25 h, D each member's
 *   one-way delay estimate (half its largest recent round trip, stalls left
 *   out). It is the only one while members have delivered nothing to judge
 *   (the first second, a quiet session, a member of an older version), and
 *   it misses what a round trip cannot see: a path slower one way, the
 *   delivery lead, the machine's scheduling.
 * When every member reports a measured need, the target is the measured
 * one; otherwise the larger of the two.
 */
static tutti_time auto_target(const tutti_hub *h, bool *measured)
{
    /* The clock bounds are not added: a bound is the worst case the samples
     * allow (about half the round trip on a WAN), the real error is mostly
     * far smaller and is part of the measured need. */
    tutti_time d = 0, l = 0;
    bool all = true, any = false;
    for (uint32_t i = 0; i < h->nslots; i++) {
        const slot *s = &h->slots[i];
        if (s->state != S_ACTIVE) continue;
        any = true;
        if (s->delay > d) d = s->delay;
        if (s->need == 0) {
            all = false;
            continue;
        }
        tutti_time measured_need = s->need - s->tail;
        tutti_time room =
            s->tail > h->cfg.horizon_margin ? s->tail : h->cfg.horizon_margin;
        tutti_time li = measured_need + measured_need / 12 + room;
        if (li > l) l = li;
    }
    *measured = any && all;
    if (!*measured && d > 0) {
        tutti_time r = with_heartbeat(h, 2 * d + h->cfg.horizon_margin);
        if (r > l) l = r;
    }
    if (l < h->cfg.horizon_min) l = h->cfg.horizon_min;
    if (l > TUTTI__MAX_HORIZON) l = TUTTI__MAX_HORIZON;
    return l;
}

static void auto_horizon(tutti_hub *h)
{
    if (!h->cfg.auto_horizon || h->now < h->auto_next) return;
    h->auto_next = h->now + AUTO_EVERY;
    bool any = false, late = false, unknown = false, measured;
    for (uint32_t i = 0; i < h->nslots; i++) {
        slot *s = &h->slots[i];
        if (s->state != S_ACTIVE) continue;
        any = true;
        unknown |= s->delay == 0 && s->need == 0;
        if (s->late > s->late_seen) late = true;
        s->late_seen = s->late;
    }
    if (!any) {
        h->auto_measured_since = 0; /* nobody to measure */
        return;
    }
    tutti_time target = auto_target(h, &measured), next = h->horizon;
    h->auto_target = target;
    if (!measured)
        h->auto_measured_since = 0;
    else if (h->auto_measured_since == 0)
        h->auto_measured_since = h->now;
    bool young = measured && h->now - h->auto_measured_since < AUTO_LEARN;
    /* A rehearsal's L is not lowered below until this session has measured
     * its paths for as long as the rehearsal had: its first seconds have not
     * met the slower moments the rehearsal did (a heavy tail's next burst). */
    tutti_time floor = 0;
    if (h->cfg.horizon_floor > 0 && !h->floor_done) {
        if (measured && h->now - h->auto_measured_since >= h->cfg.floor_for) {
            h->floor_done = true;
            tutti__logf(&h->io, TUTTI_LOG_INFO,
                        "tutti hub: measured for %.1f s, as long as the rehearsal: its L "
                        "(%.1f ms) is no longer held",
                        (h->now - h->auto_measured_since) / 1e9,
                        h->cfg.horizon_floor / 1e6);
        } else {
            floor = h->cfg.horizon_floor;
        }
    }
    /* Late events raise L only when they are not measured: the measured
     * need already holds every late delivery that was not a stall, and a
     * stall (a partition, a crash) is no reason for a larger L. */
    late = late && !measured;
    tutti_time changed = h->auto_raised > h->auto_lowered ? h->auto_raised : h->auto_lowered;
    if (late && h->now - changed >= AUTO_LATE_SETTLE) {
        next = h->horizon + h->horizon / 4;
        if (next < target) next = target;
    } else if (target > h->horizon + h->horizon / 64) {
        next = target; /* at once (a raise smaller than that is noise) */
    } else if (!unknown && !young && target < h->horizon - h->horizon / 32 &&
               h->now - h->auto_raised >= AUTO_RAISE_HOLD &&
               h->now - h->auto_lowered >= AUTO_LOWER_EVERY) {
        /* three quarters of the way down, a tenth of L at least: from
         * seconds (a session started with a far too large guess) back in a
         * few steps, and no step lands below the target */
        tutti_time step = (h->horizon - target) * 3 / 4;
        if (step < h->horizon / 10) step = h->horizon / 10;
        next = h->horizon - step;
        if (next < target) next = target;
        if (next < floor) next = floor;
        if (next > h->horizon) next = h->horizon; /* an L set below it by hand */
    }
    if (next == h->horizon) return;
    if (next > TUTTI__MAX_HORIZON) next = TUTTI__MAX_HORIZON;
    bool raise = next > h->horizon;
    tutti__logf(&h->io, TUTTI_LOG_INFO, "tutti hub: L %s to %.1f ms (target %.1f ms, %s)%s",
                raise ? "raised" : "lowered", next / 1e6, target / 1e6,
                measured ? "measured" : "from round trips",
                late ? ", members report late events" : "");
    if (tutti_hub_set_horizon(h, next) == 0) {
        h->auto_changes++;
        if (raise)
            h->auto_raised = h->now;
        else
            h->auto_lowered = h->now;
    }
}

/*
 * The close lead c: how far ahead of the hub's clock session time is closed.
 * An event stamped at now + L reaches the hub after its trip u, when the
 * close stands at most u + c ahead of where it started, so it is in time
 * when u <= a = L - c (the origins' allowance); it is delivered once the
 * close passes its t, which reaches a member at most h + d later (the
 * heartbeat, the trip back), so it is on time there when h + d + the
 * member's lead <= c.
 * - With L fixed by hand, the room L leaves after a heartbeat is shared
 *   evenly: a = (L - h) / 2, c = (L + h) / 2. A path's slow moments then
 *   cost its own events a move (up) or its own server late events (down),
 *   never the others', and a statistic of the paths cannot starve either
 *   side (over a lossy path, a largest recent trip of 250 ms against an L of
 *   300 ms would leave the close no room at all).
 * - With the automatic horizon, a is the largest member's trip to the hub
 *   over the last seconds (stalls left out) and a twelfth: the members'
 *   needs then hold the wait for the close, and L follows both sides.
 */
static tutti_time close_lead(tutti_hub *h)
{
    tutti_time half = (h->horizon - h->heartbeat) / 2, a = half;
    if (h->cfg.auto_horizon) {
        /* A member whose trip is not measured yet (its first 100 ms) gets
         * half of L, as with a fixed L: an allowance of 0 would move all
         * its first events. */
        tutti_time up = 0;
        for (uint32_t i = 0; i < h->nslots; i++) {
            const slot *s = &h->slots[i];
            if (s->state != S_ACTIVE) continue;
            tutti_time u = s->nup ? tutti__high_estimate(s->up, s->nup) : half;
            if (u > up) up = u;
        }
        a = up + up / 12;
    }
    tutti_time c = h->horizon - a;
    if (c < 0) c = 0;
    if (h->now < h->close_hold_until && c > h->close_hold_lead) c = h->close_hold_lead;
    return c;
}

/* Close session time up to now + c and tell every member, behind everything
 * relayed so far. Sent every heartbeat even when it has not moved: it is
 * also how members know the hub is there. */
static void close_time(tutti_hub *h)
{
    h->close_lead = close_lead(h);
    tutti_time c = h->now_s + h->close_lead;
    if (c > h->close) h->close = c;
    tutti__order_set_close(&h->order, h->close);
    tutti__wbuf_reset(&h->rec);
    tutti__put_watermark(&h->rec, 0, h->close, h->seq0);
    broadcast_rec(h);
}

/* Tell a member's player that its events came after their close. */
static void note_moved(tutti_hub *h, slot *s)
{
    if (s->moved == s->moved_noted || h->now - s->moved_noted_at < MOVED_NOTE_EVERY) return;
    char text[160];
    snprintf(text, sizeof text,
             "%llu of your events reached the hub after their time had closed and were "
             "moved later (up to %.1f ms); %llu in all",
             (unsigned long long)(s->moved - s->moved_noted), s->max_moved / 1e6,
             (unsigned long long)s->moved);
    warn_member(h, s, TUTTI__NOTE_MOVED, text);
    s->moved_noted = s->moved;
    s->moved_noted_at = h->now;
}

/* Tell a member that events of its were refused, and why. */
static void note_refused(tutti_hub *h, slot *s)
{
    if (s->refused == s->refused_noted || h->now - s->refused_noted_at < TUTTI_S) return;
    char text[200];
    snprintf(text, sizeof text, "refused %llu of your events: %s (%llu refused in all)",
             (unsigned long long)(s->refused - s->refused_noted), s->refused_why,
             (unsigned long long)s->refused);
    warn_member(h, s, TUTTI__NOTE_REFUSED, text);
    s->refused_noted = s->refused;
    s->refused_noted_at = h->now;
}

/* Handshakes older than this are forgotten (the transport closes their
 * connections at its own hello deadline). */
#define HS_EXPIRE (10 * TUTTI_S)

tutti_time tutti_hub_tick(tutti_hub *h)
{
    clock_now(h);
    auto_horizon(h);
    for (uint32_t i = 0; i < h->nhs;) {
        if (h->now - h->hs[i].at > HS_EXPIRE)
            hs_drop(h, &h->hs[i]);
        else
            i++;
    }
    for (uint32_t i = 0; i < h->nslots; i++) {
        slot *s = &h->slots[i];
        if (s->state != S_ACTIVE) continue;
        if (h->now - s->last_heard > h->cfg.suspect_after) {
            remove_member(h, s, "silent for too long");
        } else {
            note_moved(h, s);
            note_refused(h, s);
        }
    }
    if (h->now - h->last_beat >= h->heartbeat) {
        close_time(h);
        h->last_beat = h->now;
    }
    hub_deliver(h);
    flush_all(h);
    return h->last_beat + h->heartbeat;
}

int tutti_hub_set_horizon(tutti_hub *h, tutti_time horizon)
{
    if (horizon <= 0 || horizon > TUTTI__MAX_HORIZON) return TUTTI_EINVAL;
    clock_now(h);
    /* Events stamped under the old L are on their way for up to about that
     * long: a close lead grown with a raise waits for them, and promises
     * made under either L are no measure of a trip until both have passed. */
    if (horizon > h->horizon && h->now + h->horizon > h->close_hold_until) {
        h->close_hold_until = h->now + h->horizon;
        h->close_hold_lead = h->close_lead;
    }
    h->up_quiet_until = h->now + h->horizon + horizon;
    h->horizon = horizon;
    h->heartbeat = h->cfg.heartbeat > 0 ? h->cfg.heartbeat : derive_heartbeat(horizon);
    tutti__rec c;
    memset(&c, 0, sizeof c);
    c.type = TUTTI__REC_COMMAND;
    c.u.command.op = TUTTI__CMD_HORIZON;
    c.u.command.horizon = h->horizon;
    c.u.command.heartbeat = h->heartbeat;
    tutti_key k = stamp(h, 0);
    issue(h, &k, &c);
    flush_all(h);
    return 0;
}

/* The change lead in force: the configured one, raised to L + 2 client
 * margins (tutti_hub_config.change_lead). */
static tutti_time change_lead(const tutti_hub *h)
{
    tutti_time floor = h->horizon + 2 * TUTTI_CLIENT_MARGIN;
    return h->cfg.change_lead > floor ? h->cfg.change_lead : floor;
}

/*
 * A timeline change: `next` (tempo, transport) from the first bar line at or
 * after the command's own time plus the change lead. The command is stamped
 * like any event (k.t >= now + L) and every member delivers it by k.t, so
 * each has it at least the change lead before the bar it changes. The bar
 * line is one of the last timeline ordered (the change after a change still
 * ahead starts on the new grid), never before that one starts: a change
 * asked for while another is pending at the same bar replaces it there (a
 * later command with the same t0 wins, engine.h).
 */
static int issue_change(tutti_hub *h, double bpm, bool playing)
{
    clock_now(h);
    tutti_key k = stamp(h, 0);
    tutti_timeline tl = h->issued;
    tutti_time earliest = tutti__sat_sub(k.t, -change_lead(h));
    if (earliest < tl.t0) earliest = tl.t0;
    double beat = tutti_timeline_next_boundary(&tl, earliest, tl.quantum);
    tutti_time at = tutti_timeline_time_at_beat(&tl, beat);
    while (at < earliest) {
        beat += tl.quantum;
        at = tutti_timeline_time_at_beat(&tl, beat);
    }
    tutti_timeline next = tl;
    next.bpm = bpm;
    next.playing = playing;
    next.beat0 = beat;
    next.t0 = at;
    tutti__rec c;
    memset(&c, 0, sizeof c);
    c.type = TUTTI__REC_COMMAND;
    c.u.command.op = TUTTI__CMD_TEMPO;
    c.u.command.timeline = next;
    h->issued = next;
    /* The command travels ahead of its bar (its key is stamped now; t0 is in the
     * payload), so it never drags the hub's promise forward to the bar line. */
    issue(h, &k, &c);
    flush_all(h);
    return 0;
}

int tutti_hub_set_bpm(tutti_hub *h, double bpm)
{
    if (!(bpm >= TUTTI_BPM_MIN && bpm <= TUTTI_BPM_MAX)) return TUTTI_EINVAL;
    return issue_change(h, bpm, h->issued.playing);
}

int tutti_hub_set_transport(tutti_hub *h, bool playing)
{
    if (h->issued.playing == playing) return 0;
    return issue_change(h, h->issued.bpm, playing);
}

void tutti_hub_status_get(const tutti_hub *h, tutti_hub_status *st)
{
    memset(st, 0, sizeof *st);
    for (uint32_t i = 0; i < h->nslots; i++)
        if (h->slots[i].state == S_ACTIVE) st->members++;
    st->horizon = h->horizon;
    st->horizon_target = h->cfg.auto_horizon ? h->auto_target : 0;
    st->horizon_changes = h->auto_changes;
    st->measured_for = h->cfg.auto_horizon && h->auto_measured_since
                           ? h->now - h->auto_measured_since
                           : 0;
    st->horizon_floor = h->cfg.auto_horizon && !h->floor_done ? h->cfg.horizon_floor : 0;
    st->close_lead = h->close_lead;
    st->change_lead = change_lead(h);
    st->moved = h->moved;
    st->relayed = h->relayed;
    st->delivered = h->delivered;
    st->divergences = h->divergences;
    st->removed = h->removed;
    st->dropped_frames = h->dropped;
    st->timeline = tutti__tempo_peek(&h->tempo, h->now_s);
    st->open = h->cfg.open;
    st->auth_ok = h->auth_ok;
    st->auth_refused = h->auth_refused;
    st->refused_events = h->refused_events;
    st->refused_requests = h->refused_requests;
    st->handshakes = h->nhs;
    st->unsealed_dropped = h->unsealed;
    st->sealed_members = 0;
    for (uint32_t i = 0; i < h->nslots; i++)
        if (h->slots[i].state == S_ACTIVE && h->slots[i].link.seal.on) st->sealed_members++;
    st->pending_events = h->order.n;
    st->held_bytes = h->order.bytes;
}

int tutti_hub_set_invites(tutti_hub *h, const tutti_invite *inv, uint32_t n)
{
    tutti_invite *copy = NULL;
    if (n) {
        copy = malloc(n * sizeof *copy);
        if (!copy) return TUTTI_ENOMEM;
        memcpy(copy, inv, n * sizeof *copy);
    }
    if (h->invites) tutti__auth_wipe(h->invites, h->ninvites * sizeof *h->invites);
    free(h->invites);
    h->invites = copy;
    h->ninvites = n;
    clock_now(h);
    for (uint32_t i = 0; i < h->nslots; i++) {
        slot *s = &h->slots[i];
        if (s->state == S_ACTIVE && s->cred_kind == TUTTI__AUTH_INVITE &&
            !invite_find(h, s->cred_id))
            remove_member(h, s, "its invitation was revoked");
    }
    flush_all(h);
    return 0;
}

int tutti_hub_remove(tutti_hub *h, uint32_t id, const char *why)
{
    slot *s = slot_by_id(h, id);
    if (!s || s->state != S_ACTIVE) return TUTTI_EINVAL;
    clock_now(h);
    remove_member(h, s, why ? why : "removed");
    flush_all(h);
    return 0;
}

void tutti_hub_public_key(const tutti_hub *h, uint8_t pk[32])
{
    memcpy(pk, h->pk, 32);
}

uint32_t tutti_hub_list(const tutti_hub *h, tutti_member_info *out, uint32_t cap)
{
    uint32_t n = 0;
    for (uint32_t i = 0; i < h->nslots; i++) {
        const slot *s = &h->slots[i];
        if (s->state != S_ACTIVE) continue;
        if (n < cap) {
            out[n].id = s->id;
            out[n].role = s->role;
            memcpy(out[n].name, s->name, sizeof out[n].name);
            out[n].joined = s->added;
            out[n].delay_ns = s->delay;
            out[n].clock_bound_ns = s->bound;
            out[n].late = s->late;
            out[n].need_ns = s->need;
            out[n].tail_ns = s->tail;
            out[n].moved = s->moved;
            out[n].max_moved_ns = s->max_moved;
            out[n].silent_ns = h->now - s->last_heard;
            out[n].refused = s->refused;
            out[n].refused_requests = s->refused_requests;
            out[n].refused_why = s->refused_why ? s->refused_why : "";
        }
        n++;
    }
    return n;
}
