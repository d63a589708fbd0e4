/*
 * The plugin's session side (see session.h).
 */
#define _GNU_SOURCE
#include "session.h"

#include "asset.h"
#include "auth.h"
#include "beat.h"
#include "hold.h"
#include "check.h"
#include "guard.h"
#include "linkhost.h"
#include "journal.h"
#include "ns.h"
#include "osc.h"
#include "posix/url.h"
#include "record.h"
#include "state.h"
#include "tutti/net.h"
#include "wire.h"

#include <dirent.h>
#include <errno.h>
#include <glob.h>
#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#define CTX_BYTES 8
/* client packets of this member in flight in the session (a horizon's worth);
 * one submitted longer ago than FLIGHT_AGE did not come back (the hub
 * refused it) and is forgotten */
#define FLIGHT_MAX 1024
#define FLIGHT_AGE (5 * TUTTI_S)
/* A leave's member stops on a thread of its own; the next join or the
 * unloading waits this long for it. */
#define REAP_WAIT (5 * TUTTI_S)
#define TUTTI_MAX_OLD 256
/* The reply context of events that carry a part's state to member `id`. */
#define REPLAY_TAG 0x6000747500000000ull
#define REPLAY_MASK 0xf000ffff00000000ull
#define REPLAY_CTX(id) (REPLAY_TAG | (uint32_t)(id))
/* The reply context of the events that carry what this member's clients
 * made while its server was solo into its part, on every server (carry). */
#define STATE_TAG 0x6000747600000000ull
/* The reply context of a member's server-check digest (check.h). */
#define CHECK_TAG 0x6000747700000000ull
#define IS_TAGGED(tag)                                                                     \
    (((tag)&REPLAY_MASK) == REPLAY_TAG || ((tag)&REPLAY_MASK) == STATE_TAG ||              \
     ((tag)&REPLAY_MASK) == CHECK_TAG)
/* A member sends digests from this long after it holds nothing back (a
 * newcomer's server plays the notes submitted before its join at the join). */
#define CHECK_SETTLE (2 * TUTTI_S)
/* The most lead a round's query asks for (check_round). */
#define CHECK_LEAD_MAX (20 * TUTTI_MS)
/* How long a synth a state started here is left out of the comparison. */
#define CHECK_CARRIED_FOR (30 * TUTTI_S)
#define MAX_ROOTS 512
/* Buffers of a part that the session frees when the part goes. */
#define PART_BUFS 1024
#define REPLAY_WAIT (6 * TUTTI_S)
#define MAX_EVENT (64 * 1024)               /* the member's payload limit */
#define OUT_CAP (2 * MAX_EVENT + 4096)      /* a rewritten event, with room to grow */

/* What one part may share with this session (asset.h): files it starts,
 * counted by their declared sizes, and files partial at once. */
#define ASSET_QUOTA ((uint64_t)512 << 20)
/* The most file bytes a member may send at once, unless the session says
 * (files_kib=N, from the hub's limits: `tutti hub --max-held-kib` and
 * `--max-kib-rate`): the hub passes 4 MiB of a member's events ahead of
 * their time by default, and refuses what is beyond it, so a larger file's
 * bytes would not all arrive anywhere (and would take the room of the
 * member's other events with them). A sixteenth is left for those. */
#define FILES_KIB_DEFAULT 4096
#define FILE_ROOM(kib) ((uint64_t)(kib) * 1024 / 16 * 15)
#define ASSET_PARTIALS 4
#define REFUSED_ASSETS 64
/* Nodes a part may hold on the servers (a session setting, node_budget=N);
 * beyond it its node-making events are refused on every server until the
 * servers agree it is back under 90 % of it. What a part holds is known at
 * a place of the stream every server shares: the count the servers agreed
 * on at the last decided round (check.h), plus the nodes the part's events
 * made since that round's time, counted as they are delivered (frees since
 * then are not seen: the count is an upper bound until the next round).
 * So a burst is cut at the budget, at the same event everywhere, and not a
 * round or two later. BUDGET_ROUNDS rounds' counts are kept (32 s). */
#define NODE_BUDGET 512
#define BUDGET_ROUNDS 64

#define BUF_BUCKETS 1024
#define QUERY_AHEAD (50 * TUTTI_MS) /* see do_query_here */
/* Chunks of shared files queued for the file worker at most (see work_push) */
#define WORK_BYTES ((size_t)32 << 20)

/* A job of the file worker (see "file worker" below). */
enum { JOB_CHUNK, JOB_PLAY, JOB_DROP, JOB_CARRY, JOB_STATE, JOB_UNMADE };
typedef struct work_job {
    struct work_job *next;
    int kind, how;
    bool file;             /* JOB_PLAY: a read command, its token still to replace */
    uint32_t origin, part; /* the sending member (JOB_STATE: the newcomer), its part */
    uint64_t seq, total, off, ctx;
    tutti_time at;
    char token[TUTTI_ASSET_TOKEN_MAX + 16];
    size_t len, n; /* data's size; JOB_PLAY, JOB_UNMADE: the packet's length in it */
    uint8_t data[];
} work_job;
#define DELIVER_LEAD (5 * TUTTI_MS) /* scsynth needs a bundle before its time */
#define HOLD_BYTES (8u << 20)       /* bundles held back for re-timing (hold.h) */

static struct session {
    /* recordings through the proxy (record.h): the proxy's thread's, for
     * member id rec_id */
    tutti__record rec;
    uint32_t rec_id;
    uint32_t outsiders_told; /* bit p: outsider_node logged part p's */
    tutti_proxy_host host;
    pthread_mutex_t mu; /* guards net and the option strings */
    tutti_net *net;
    _Atomic(tutti_net *) live; /* the same, for the member's own thread */
    _Atomic bool active;
    /* Set by a leave: the member's thread hands nothing more to the server
     * (the part's state is the server's own again). */
    _Atomic bool leaving;
    /* The member's thread is handing an event over (deliver): a leave waits
     * for it to be out, briefly, and never for the thread itself. */
    _Atomic bool in_deliver;
    /* The member left; its node stops on this thread (after lingering for its
     * goodbye), not on the proxy's, which plays its clients solo meanwhile.
     * Joined by the next join or stop. Proxy's thread. */
    pthread_t reaper;
    bool reaping;
    _Atomic bool reaped; /* the reaper is done (it sets it last) */
    _Atomic int reap_step; /* what it is doing (reap_steps) */
    /* This member's clients' packets submitted and not yet delivered back
     * (the event's bytes: context, then OSC), oldest first: at a leave they
     * play solo at their own times (flight_mu). */
    pthread_mutex_t flight_mu;
    uint8_t *flight[FLIGHT_MAX];
    uint32_t flight_len[FLIGHT_MAX];
    tutti_time flight_at[FLIGHT_MAX]; /* when it was submitted (wall time) */
    uint32_t flight_head, flight_n;

    /* Published by the member's thread, read by the proxy's. */
    _Atomic uint32_t my_id;
    _Atomic uint64_t submitted, submit_failed, delivered, late, injected, inject_failed,
        invalid, discarded_replies, late_injected;
    /* Since joining: the longest the member's thread spent on one delivered
     * event (what that event made it do: store a shared file's chunk, send a
     * newcomer a state); the longest an event waited, from the moment its
     * batch was handed over, for the events before it to be done (the
     * injection delay this member's own work adds); and the least lead a
     * timed bundle had when it was handed to the server (negative: after its
     * time). */
    _Atomic int64_t turn_max_ns, wait_max_ns, lead_min_ns;
    /* The file worker: its own thread stores the chunks of shared files,
     * plays what must wait for them, sends newcomers this part's state and
     * carries what was made solo, so the member's thread, which hands every
     * event to the server at its time, never waits on a disk, a hash or a
     * state being built. Jobs run in the order handed over. */
    pthread_t worker;
    _Atomic bool work_running; /* written by the threads that join and leave */
    pthread_mutex_t work_mu;
    pthread_cond_t work_more, work_room;
    work_job *work_head, *work_tail; /* under work_mu */
    size_t work_bytes;               /* the jobs' bytes queued, under work_mu */
    bool work_stop;                  /* under work_mu */
    /* per part: its chunks queued, and its packets the worker is to play */
    _Atomic uint32_t chunks_queued[TUTTI_NS_SLOTS], plays_queued[TUTTI_NS_SLOTS];
    bool carry_queued;               /* the member's thread */
    _Atomic int64_t work_max_ns;     /* the worker's longest job since joining */
    /* Three threads inject (the member's, the worker and the hold's): one
     * at a time. */
    pthread_mutex_t inject_mu;
    /* Re-timed bundles held until shortly before their time (hold.h),
     * made at the first one and kept until the proxy stops; its thread's
     * scratch buffer (OUT_CAP) */
    pthread_mutex_t hold_mu;
    tutti__hold *hold;
    uint8_t *hold_scratch;
    _Atomic uint64_t held_back;
    /* buf_pending and buf_at (below): taken inside state_mu by the proxy's
     * thread, alone by the member's, which never takes state_mu (the
     * worker holds it while it sends a state). */
    pthread_mutex_t buf_mu;

    /* The member's loop thread only. */
    tutti__ns *ns;
    /* bit p: part p's group exists on this server (the member's thread
     * writes it; the proxy's reads it, outsider_node) */
    _Atomic uint32_t groups_made;
    _Atomic float guard_ceiling; /* the parts' limiter (guard.h): a session setting */
    bool settings_read; /* guard_ceiling is the session's (from the hub's WELCOME) */
    /* Shared files (asset.h) per part: bytes started, and the tokens
     * refused (the command that reads one is skipped on every server, even
     * one that has the file from before). */
    uint64_t asset_bytes[TUTTI_NS_SLOTS];
    uint64_t asset_open[TUTTI_NS_SLOTS]
                       [ASSET_PARTIALS]; /* started, not ended (0: free) */
    uint64_t refused_assets[REFUSED_ASSETS];
    uint32_t nrefused_assets;
    _Atomic uint64_t assets_refused; /* chunks refused (shown in the status) */
    uint32_t node_budget;             /* the session's (0: none) */
    _Atomic uint64_t file_room;       /* file bytes a member may send at once */
    uint32_t over_budget;             /* bit p: part p is over its node budget */
    /* per part: the nodes its admitted events made (made), that count as
     * it stood at each round's time (made_at, the row of round r at r %
     * BUDGET_ROUNDS, made_round saying which round a row holds; rounds up
     * to `snapped` written), and the count the servers agreed on at the
     * last decided round (agreed, of round agreed_round, -1: none yet) */
    uint64_t made[TUTTI_NS_SLOTS];
    uint64_t made_at[BUDGET_ROUNDS][TUTTI_NS_SLOTS];
    int64_t made_round[BUDGET_ROUNDS], snapped;
    uint32_t agreed[TUTTI_NS_SLOTS];
    int64_t agreed_round[TUTTI_NS_SLOTS];
    _Atomic uint64_t nodes_refused;   /* events refused for it (shown in the status) */
    /* per part: the buffers (the part's own numbers) its events touched on
     * this server, freed with the part (bit b of word b / 32) */
    uint32_t part_bufs[TUTTI_NS_SLOTS][PART_BUFS / 32];
    /* this member's solo nodes (the clients' ids, in the server's own space)
     * to free when its carried state plays here: the part's copies take
     * their place */
    int32_t solo_roots[MAX_ROOTS];
    uint32_t nsolo_roots;
    /* the latest time (local wall time) of a timed bundle played solo: one
     * sent ahead just before the carry still runs in the solo groups */
    _Atomic tutti_time solo_until;
    /* after a leave (the proxy's thread's): the part that was this member's,
     * and until when its last events and the parts' end may still be told
     * to the clients (their node notifications, back in the clients' ids) */
    uint32_t left_part;
    tutti_time left_until;
    /* per part: a removed member whose part is to be silenced after its
     * last event (0: none) */
    uint32_t gone[TUTTI_NS_SLOTS];
    cli_journal journal;
    bool journal_open;
    uint8_t out[OUT_CAP];
    uint8_t canon[OUT_CAP];

    char hub[128], session[32], name[32], journal_path[256];

    /* This part's state for members that join later (state.h): the model and
     * the submissions it follows are kept in step under `state_mu`, which is
     * taken by the proxy's thread (submitting) and the member's (sending the
     * model to a newcomer), and never held while waiting for either. */
    pthread_mutex_t state_mu;
    tutti__state *state;
    /* Under state_mu (read without it too): the model, what the clients made
     * while solo included, has been submitted as this part's state; from
     * then on the clients' traffic is the session's. Until then (solo, and
     * while joining) it goes to this server as in solo, and into the model. */
    _Atomic bool carried;
    _Atomic uint64_t replays_sent, replay_failed, held;
    /* Under state_mu too: per bucket of client buffer numbers (see
     * tutti__session_query_here), this member's events that change one of
     * its buffers and are not yet handed to the server, and the local time
     * the last one handed over runs at. */
    uint32_t buf_pending[BUF_BUCKETS];
    tutti_time buf_at[BUF_BUCKETS];
    _Atomic uint64_t queries_here;
    _Atomic uint64_t recorded_here; /* recording messages run here alone */

    /* The member's loop thread only: what this member waits for from the
     * members that were there before it joined. */
    struct {
        uint32_t origin;
        bool waiting;           /* its events are held until its state arrives */
        tutti_time deadline;    /* wall clock: then play on without it */
        uint64_t skip_below;    /* its events submitted before its state: in it */
    } old[TUTTI_MAX_OLD];
    uint32_t nold;
    bool started;    /* the first delivery since joining happened */
    bool trace;      /* TUTTI_TRACE: log every event played */
    tutti_time last_at; /* the local time the last event was played at */
    bool journaling; /* nothing is held any more: the journal runs */

    /* The server check (check.h). The member's thread: the round to ask the
     * server about next (its session time; 0: the first event's), and
     * from when (wall clock) this member sends digests. The checker under
     * check_mu (the status reads it). The proxy's thread: the /fail
     * replies of the current window. */
    tutti_time check_next, check_after;
    _Atomic uint64_t check_skipped; /* rounds not asked: T_k too close or past */
    /* Under check_mu: the synths the others' states started on this server
     * (this member's thread notes them as it plays a state; each digest
     * lists them, see tutti__digest_part), until `until` (wall clock). */
    struct {
        uint32_t slot;
        int32_t id;
        uint64_t term;
        tutti_time until;
    } carried_nodes[TUTTI_CHECK_CARRIED];
    uint32_t ncarried_nodes;
    bool replaying; /* the member's thread: deliver_user plays a state */
    pthread_mutex_t check_mu;
    tutti__checker *checker;
    char check_last[480];
    char check_logged[TUTTI_NS_SLOTS][2][480];
    tutti__digest fails;

    /* The proxy's thread only: groups answered /n_go early (see
     * tutti__session_announce), whose real /n_go is not passed on. */
    int32_t announced[64];
    uint32_t nannounced;

    /* The feed's view (session.h): bumped on every change; the local grid
     * without a session (the proxy's thread). */
    _Atomic uint64_t changes;
    tutti_timeline solo_tl[TUTTI__VIEW_TIMELINES];
    uint32_t solo_ntl;
    uint64_t solo_seq;
} S = {.mu = PTHREAD_MUTEX_INITIALIZER,
       .work_mu = PTHREAD_MUTEX_INITIALIZER,
       .work_more = PTHREAD_COND_INITIALIZER,
       .work_room = PTHREAD_COND_INITIALIZER,
       .inject_mu = PTHREAD_MUTEX_INITIALIZER,
       .hold_mu = PTHREAD_MUTEX_INITIALIZER,
       .buf_mu = PTHREAD_MUTEX_INITIALIZER,
       .state_mu = PTHREAD_MUTEX_INITIALIZER,
       .check_mu = PTHREAD_MUTEX_INITIALIZER,
       .flight_mu = PTHREAD_MUTEX_INITIALIZER};

#define logf_ tutti__proxy_logf

static void queue_chunk(const char *token, uint32_t origin, uint64_t total, uint64_t off,
                        const uint8_t *b, size_t n);
static void queue_job(int kind, uint32_t id);
static void queue_unmade(const uint8_t *p, size_t n);
static void queue_carry(void);

static tutti_time wall_now(void);

void tutti__session_init(const tutti_proxy_host *host)
{
    S.host = *host;
    tutti__linkhost_init();
    /* The local grid until a session gives one: 120 bpm, 4 beats a bar, beat
     * 0 at the last whole second. */
    tutti_timeline_init(&S.solo_tl[0], 120.0, 4.0, wall_now() / TUTTI_S * TUTTI_S);
    S.solo_ntl = 1;
    S.solo_seq = 0;
}

uint64_t tutti__session_changes(void)
{
    return atomic_load(&S.changes);
}

static void changed(void)
{
    atomic_fetch_add(&S.changes, 1);
    tutti__proxy_wake();
}

bool tutti__session_active(void)
{
    return atomic_load(&S.active);
}

/* ------------------------------------------------------------- clocks */

/* Wall-clock time now as ns since 1900, the clock scsynth reads timetags by. */
static tutti_time wall_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return ((tutti_time)ts.tv_sec + 2208988800LL) * TUTTI_S + ts.tv_nsec;
}

#define put_be64 tutti__osc_wr64
#define get_be64 tutti__osc_rd64

/* --------------------------------------------------------- outbound */

/* ------------------------------------------- buffers with events in flight */

static void buf_submitted(void *arg, int32_t buf)
{
    (void)arg;
    S.buf_pending[(uint32_t)buf % BUF_BUCKETS]++;
}

static void buf_handed_over(void *arg, int32_t buf)
{
    tutti_time at = *(const tutti_time *)arg;
    uint32_t b = (uint32_t)buf % BUF_BUCKETS;
    if (S.buf_pending[b]) S.buf_pending[b]--;
    if (at > S.buf_at[b]) S.buf_at[b] = at;
}

/* Submits a client's packet (at the session time its bundle asks for, or
 * now) and, when `model`, notes it in the part's state in the same step. */
static int submit_locked(tutti_net *net, uint64_t ctx, const uint8_t *p, size_t len,
                         bool model)
{
    tutti_time t;
    if (tutti_net_session_now(net, &t)) return TUTTI_ESTATE;
    if (tutti__osc_is_bundle(p, len)) {
        uint64_t tt = get_be64(p + 8);
        if (tt > 1) t += tutti_time_from_ntp(tt) - wall_now();
    }
    uint8_t buf[MAX_EVENT];
    put_be64(buf, ctx);
    memcpy(buf + CTX_BYTES, p, len);
    pthread_mutex_lock(&S.state_mu);
    int rc = tutti_net_submit(net, t, buf, (uint32_t)(len + CTX_BYTES));
    if (rc == 0 && model && S.state) tutti__state_note(S.state, p, len);
    if (rc == 0 && model) {
        pthread_mutex_lock(&S.buf_mu);
        tutti__state_buffers_changed(p, len, buf_submitted, NULL);
        pthread_mutex_unlock(&S.buf_mu);
    }
    pthread_mutex_unlock(&S.state_mu);
    return rc;
}

/* ------------------------------------------- client packets in flight */

/* Forgets the oldest packet in flight (flight_mu held, one there). */
static void flight_drop_head(void)
{
    free(S.flight[S.flight_head]);
    S.flight[S.flight_head] = NULL;
    S.flight_head = (S.flight_head + 1) % FLIGHT_MAX;
    S.flight_n--;
}

/* A client's packet is noted before it is submitted (its event may come
 * back at once) and forgotten when its event is delivered here (below) or
 * was not submitted. The oldest goes when FLIGHT_MAX are in flight. */
static bool flight_push(uint64_t ctx, const uint8_t *p, size_t len)
{
    uint8_t *e = malloc(len + CTX_BYTES);
    if (!e) return false;
    put_be64(e, ctx);
    memcpy(e + CTX_BYTES, p, len);
    pthread_mutex_lock(&S.flight_mu);
    if (S.flight_n == FLIGHT_MAX) flight_drop_head();
    uint32_t k = (S.flight_head + S.flight_n++) % FLIGHT_MAX;
    S.flight[k] = e;
    S.flight_len[k] = (uint32_t)(len + CTX_BYTES);
    S.flight_at[k] = wall_now();
    pthread_mutex_unlock(&S.flight_mu);
    return true;
}

static void flight_unpush(void)
{
    pthread_mutex_lock(&S.flight_mu);
    if (S.flight_n) {
        uint32_t k = (S.flight_head + --S.flight_n) % FLIGHT_MAX;
        free(S.flight[k]);
        S.flight[k] = NULL;
    }
    pthread_mutex_unlock(&S.flight_mu);
}

/* This member's event came back (member's thread): it and any older one
 * still noted (not delivered: the member's stream only goes forward) are no
 * longer in flight. Events come back in the order they went, so it is
 * nearly always the oldest; the older ones before it never came back (the
 * hub or the member refused them) and are dropped with it. */
static void flight_delivered(const uint8_t *data, size_t len)
{
    tutti_time old = wall_now() - FLIGHT_AGE;
    pthread_mutex_lock(&S.flight_mu);
    while (S.flight_n && S.flight_at[S.flight_head] < old) flight_drop_head();
    for (uint32_t i = 0; i < S.flight_n; i++) {
        uint32_t k = (S.flight_head + i) % FLIGHT_MAX;
        if (S.flight_len[k] != len || memcmp(S.flight[k], data, len)) continue;
        for (uint32_t j = 0; j <= i; j++) flight_drop_head();
        break;
    }
    pthread_mutex_unlock(&S.flight_mu);
}

/* Takes the packets still in flight (oldest first, at most `cap`, none older
 * than FLIGHT_AGE) into `out` and `lens`, which the caller frees, and
 * forgets every one. */
static uint32_t flight_take(uint8_t **out, uint32_t *lens, uint32_t cap)
{
    uint32_t n = 0;
    tutti_time old = wall_now() - FLIGHT_AGE;
    pthread_mutex_lock(&S.flight_mu);
    for (; S.flight_n; S.flight_n--) {
        uint32_t k = S.flight_head;
        if (n < cap && S.flight_at[k] >= old) {
            out[n] = S.flight[k];
            lens[n++] = S.flight_len[k];
        } else {
            free(S.flight[k]);
        }
        S.flight[k] = NULL;
        S.flight_head = (k + 1) % FLIGHT_MAX;
    }
    S.flight_head = 0;
    pthread_mutex_unlock(&S.flight_mu);
    return n;
}

int tutti__session_submit(uint64_t ctx, const uint8_t *p, size_t len)
{
    if (len + CTX_BYTES > MAX_EVENT) return TUTTI_EINVAL;
    pthread_mutex_lock(&S.mu);
    int rc = TUTTI_ESTATE;
    if (S.net) {
        bool noted = flight_push(ctx, p, len);
        rc = submit_locked(S.net, ctx, p, len, true);
        if (rc && noted) flight_unpush();
    }
    pthread_mutex_unlock(&S.mu);
    atomic_fetch_add(rc ? &S.submit_failed : &S.submitted, 1);
    return rc;
}

/* ------------------------------------------------------ outbound files */

static bool is_read_command(const char *name)
{
    return name && (!strcmp(name, "/b_allocRead") || !strcmp(name, "/b_allocReadChannel") ||
                    !strcmp(name, "/b_read") || !strcmp(name, "/b_readChannel"));
}

/* Commands scsynth finishes later, on its non-real-time thread: what comes
 * after them in the same bundle runs before they are done. */
static bool is_async_command(const char *name)
{
    static const char *const cmds[] = {"/d_recv", "/b_alloc", "/b_allocRead",
                                       "/b_allocReadChannel", "/b_read", "/b_readChannel",
                                       "/b_free", "/b_zero", "/b_gen", "/b_close"};
    for (size_t i = 0; name && i < sizeof cmds / sizeof cmds[0]; i++)
        if (!strcmp(name, cmds[i])) return true;
    return false;
}

/* The first string argument of a checked message, and its blob argument
 * after that (a completion message), if any. */
static const char *first_string(const uint8_t *p, size_t len, const uint8_t **blob,
                                size_t *blen)
{
    tutti__osc_msg m;
    const char *s = NULL;
    *blob = NULL;
    *blen = 0;
    if (tutti__osc_msg_parse(p, len, &m) || !m.tags) return NULL;
    const uint8_t *a = m.args;
    for (const char *t = m.tags; *t; t++) {
        if (*t == 's' && !s) s = (const char *)a;
        if (*t == 'b' && s) {
            uint32_t n = tutti__osc_rd32(a);
            *blob = a + 4;
            *blen = n;
        }
        switch (*t) {
        case 'i': case 'f': case 'c': case 'r': case 'm': a += 4; break;
        case 'h': case 't': case 'd': a += 8; break;
        case 's': case 'S': a += (strlen((const char *)a) + 4) & ~(size_t)3; break;
        case 'b': {
            a += 4 + tutti__osc_pad4(tutti__osc_rd32(a));
            break;
        }
        default: break;
        }
    }
    return s;
}

/* One synthdef file as /d_recv (with the completion message on the last). */
static int submit_def(uint64_t ctx, const char *path, const uint8_t *done, size_t done_len,
                      char *why, size_t cap)
{
    uint8_t *d;
    size_t n;
    if (tutti__asset_shareable(path, why, cap)) return TUTTI_EINVAL;
    int r = tutti__asset_read(path, &d, &n);
    if (r) {
        snprintf(why, cap, "cannot read %s: %s", path, strerror(-r));
        return TUTTI_EINVAL;
    }
    uint8_t *msg = malloc(MAX_EVENT);
    size_t m = 0;
    if (msg)
        m = done ? tutti__osc_write(msg, MAX_EVENT - CTX_BYTES, "/d_recv", "bb", d, n, done,
                                    done_len)
                 : tutti__osc_write(msg, MAX_EVENT - CTX_BYTES, "/d_recv", "b", d, n);
    free(d);
    int rc = m ? tutti__session_submit(ctx, msg, m) : TUTTI_EINVAL;
    free(msg);
    if (!m) snprintf(why, cap, "%s is too big for one event (64 KiB)", path);
    else if (rc) snprintf(why, cap, "%s", tutti_strerror(rc));
    return rc;
}

static int is_def(const struct dirent *e)
{
    size_t n = strlen(e->d_name);
    return n > 9 && !strcmp(e->d_name + n - 9, ".scsyndef");
}

/* /d_load PATTERN and /d_loadDir DIR: the files, as /d_recv events. */
static int submit_defs(uint64_t ctx, const char *name, const char *path, const uint8_t *done,
                       size_t done_len, char *why, size_t cap)
{
    char **files = NULL;
    size_t nfiles = 0;
    glob_t g = {0};
    struct dirent **list = NULL;
    int nlist = 0;
    if (!strcmp(name, "/d_load")) {
        if (glob(path, 0, NULL, &g) == 0) {
            files = g.gl_pathv;
            nfiles = g.gl_pathc;
        }
    } else {
        nlist = scandir(path, &list, is_def, alphasort);
        if (nlist > 0) {
            files = calloc((size_t)nlist, sizeof *files);
            for (int i = 0; files && i < nlist; i++)
                if (asprintf(&files[nfiles], "%s/%s", path, list[i]->d_name) > 0) nfiles++;
        }
    }
    int rc = 0;
    if (!nfiles) {
        snprintf(why, cap, "no synthdef files at %s", path);
        rc = TUTTI_EINVAL;
    }
    for (size_t i = 0; !rc && i < nfiles; i++)
        rc = submit_def(ctx, files[i], i + 1 == nfiles ? done : NULL, done_len, why, cap);
    if (!strcmp(name, "/d_load")) {
        globfree(&g);
    } else {
        for (size_t i = 0; i < nfiles; i++)
            free(files[i]);
        free(files);
        for (int i = 0; i < nlist; i++)
            free(list[i]);
        free(list);
    }
    return rc;
}

/* A file's content as /tutti/asset events, through `submit`. */
static int submit_chunks(int (*submit)(void *arg, const uint8_t *p, size_t len), void *arg,
                         const char *token, const uint8_t *d, size_t n)
{
    uint8_t *msg = malloc(MAX_EVENT);
    int rc = msg ? 0 : TUTTI_ENOMEM;
    for (size_t off = 0; !rc && (off < n || off == 0); off += TUTTI_ASSET_CHUNK) {
        size_t k = n - off < TUTTI_ASSET_CHUNK ? n - off : TUTTI_ASSET_CHUNK;
        size_t m = tutti__osc_write(msg, MAX_EVENT - CTX_BYTES, "/tutti/asset", "siib", token,
                                    (int32_t)n, (int32_t)off, d + off, k);
        rc = m ? submit(arg, msg, m) : TUTTI_EINVAL;
        if (n == 0) break;
    }
    free(msg);
    return rc;
}

static int submit_client(void *arg, const uint8_t *p, size_t len)
{
    return tutti__session_submit(*(const uint64_t *)arg, p, len);
}

/* A sound file: its content as /tutti/asset events, then the command with
 * the path replaced by the content's token. */
static int submit_read(uint64_t ctx, const uint8_t *p, size_t len, const char *path, char *why,
                       size_t cap)
{
    uint8_t *d;
    size_t n;
    if (tutti__asset_shareable(path, why, cap)) return TUTTI_EINVAL;
    int r = tutti__asset_read(path, &d, &n);
    if (r) {
        snprintf(why, cap, "cannot read %s: %s", path, strerror(-r));
        return TUTTI_EINVAL;
    }
    uint64_t room = atomic_load(&S.file_room);
    if (n > room) {
        snprintf(why, cap,
                 "%s is %.1f MB, more than this session passes at once (%.1f MB: the hub's "
                 "--max-held-kib and --max-kib-rate set it); not shared, so read on no server",
                 path, n / 1e6, room / 1e6);
        free(d);
        return TUTTI_EINVAL;
    }
    char token[TUTTI_ASSET_TOKEN_MAX + 16];
    tutti__asset_token(tutti__asset_hash(d, n), path, token, sizeof token);
    int rc = submit_chunks(submit_client, &ctx, token, d, n);
    uint8_t *msg = rc ? NULL : malloc(MAX_EVENT);
    size_t m = msg ? tutti__osc_replace_string(p, len, token, msg, MAX_EVENT - CTX_BYTES) : 0;
    if (!rc) rc = m ? tutti__session_submit(ctx, msg, m) : TUTTI_EINVAL;
    if (rc) snprintf(why, cap, "%s could not be shared: %s", path, tutti_strerror(rc));
    free(msg);
    free(d);
    return rc;
}

int tutti__session_submit_file(uint64_t ctx, const uint8_t *p, size_t len, char *why,
                               size_t cap)
{
    const char *name = tutti__ns_command_name(p, len);
    const uint8_t *done;
    size_t done_len;
    const char *path = first_string(p, len, &done, &done_len);
    if (!name || !path) {
        snprintf(why, cap, "no file named");
        return TUTTI_EINVAL;
    }
    if (!strcmp(name, "/d_load") || !strcmp(name, "/d_loadDir"))
        return submit_defs(ctx, name, path, done, done_len, why, cap);
    if (is_read_command(name)) return submit_read(ctx, p, len, path, why, cap);
    snprintf(why, cap,
             "%s would write a file on every member's machine; a session does not allow it",
             name);
    return TUTTI_EINVAL;
}

/* ---------------------------------------------------------- inbound */

static bool inject(const uint8_t *p, size_t len, uint64_t ctx)
{
    pthread_mutex_lock(&S.inject_mu);
    bool ok = S.host.inject(S.host.host, p, len, ctx);
    pthread_mutex_unlock(&S.inject_mu);
    atomic_fetch_add(ok ? &S.injected : &S.inject_failed, 1);
    return ok;
}

/* Frees nodes by id on this server (at local wall time `at`, or now when
 * 0), with scsynth's error posting off for the bundle: some of them may have
 * ended already. */
static void free_nodes(const int32_t *ids, size_t n, tutti_time at);

/* Frees the synths in groups `ids` and in every group inside them (at local
 * wall time `at`), errors off; the groups stay (those that are synths stay
 * too): a bundle a client sent ahead while solo may still name one of them
 * (Sonic Pi's with_fx group: with /g_freeAll its next note failed, "Group
 * 132 not found", on the member's own server after a join). */
static void empty_groups(const int32_t *ids, size_t n, tutti_time at)
{
    if (!n) return;
    uint8_t *b = malloc(64 + 24 * n);
    if (!b) return;
    memcpy(b, "#bundle", 8);
    put_be64(b + 8, at ? tutti_time_to_ntp(at) : 1);
    size_t k = 16;
    uint8_t msg[32];
    size_t m = tutti__osc_write(msg, sizeof msg, "/error", "i", -1);
    tutti__osc_wr32(b + k, (uint32_t)m);
    memcpy(b + k + 4, msg, m);
    k += 4 + m;
    for (size_t i = 0; i < n; i++) {
        m = tutti__osc_write(msg, sizeof msg, "/g_deepFree", "i", ids[i]);
        tutti__osc_wr32(b + k, (uint32_t)m);
        memcpy(b + k + 4, msg, m);
        k += 4 + m;
    }
    inject(b, k, TUTTI_PROXY_CTX_DISCARD);
    free(b);
}

static void free_nodes(const int32_t *ids, size_t n, tutti_time at)
{
    if (!n) return;
    size_t cap = 64 + 24 * n; /* 4 + 16 bytes a /n_free */
    uint8_t *b = malloc(cap);
    if (!b) return;
    memcpy(b, "#bundle", 8);
    put_be64(b + 8, at ? tutti_time_to_ntp(at) : 1);
    size_t k = 16;
    uint8_t msg[32];
    size_t m = tutti__osc_write(msg, sizeof msg, "/error", "i", -1);
    tutti__osc_wr32(b + k, (uint32_t)m);
    memcpy(b + k + 4, msg, m);
    k += 4 + m;
    for (size_t i = 0; i < n; i++) {
        m = tutti__osc_write(msg, sizeof msg, "/n_free", "i", ids[i]);
        tutti__osc_wr32(b + k, (uint32_t)m);
        memcpy(b + k + 4, msg, m);
        k += 4 + m;
    }
    inject(b, k, TUTTI_PROXY_CTX_DISCARD);
    free(b);
}

static void mark_buf(void *arg, int32_t buf)
{
    uint32_t part = *(const uint32_t *)arg;
    if (part < TUTTI_NS_SLOTS && buf >= 0 && buf < PART_BUFS)
        S.part_bufs[part][buf / 32] |= 1u << (buf % 32);
}

/* A bundle (timed `at`, or now when 0) that frees a part on this server:
 * its group with every node in it, and every buffer its events touched. The
 * part's slot is then free for another member: its group is made again,
 * and its synthdef names are forgotten. */
static void drop_part(uint32_t part, tutti_time at)
{
    if (part == 0 || part >= TUTTI_NS_SLOTS || !(S.groups_made & (1u << part))) return;
    size_t cap = 64 + 24 * (PART_BUFS + 1);
    uint8_t *b = malloc(cap);
    if (!b) return;
    memcpy(b, "#bundle", 8);
    put_be64(b + 8, at ? tutti_time_to_ntp(at) : 1);
    size_t k = 16, m;
    uint8_t msg[32];
    m = tutti__osc_write(msg, sizeof msg, "/n_free", "i", (int32_t)tutti__ns_part_group(part));
    tutti__osc_wr32(b + k, (uint32_t)m);
    memcpy(b + k + 4, msg, m);
    k += 4 + m;
    const tutti__ns_config *cfg = S.ns ? tutti__ns_get_config(S.ns) : NULL;
    for (int32_t buf = 0; cfg && buf < PART_BUFS; buf++) {
        int32_t mapped;
        if (!(S.part_bufs[part][buf / 32] & (1u << (buf % 32))) ||
            tutti__ns_buf(cfg, part, buf, &mapped) != TUTTI_NS_MAP_OK)
            continue;
        m = tutti__osc_write(msg, sizeof msg, "/b_free", "i", mapped);
        tutti__osc_wr32(b + k, (uint32_t)m);
        memcpy(b + k + 4, msg, m);
        k += 4 + m;
    }
    inject(b, k, TUTTI_PROXY_CTX_DISCARD);
    free(b);
    memset(S.part_bufs[part], 0, sizeof S.part_bufs[part]);
    S.groups_made &= ~(1u << part);
    if (S.ns) tutti__ns_forget(S.ns, part);
    tutti__guard_set_gain(part, 1.0f); /* the slot's next member starts at full gain */
    S.asset_bytes[part] = 0;
    S.over_budget &= ~(1u << part);
    S.made[part] = 0;
    for (int r = 0; r < BUDGET_ROUNDS; r++) S.made_at[r][part] = 0;
    S.agreed_round[part] = -1;
    memset(S.asset_open[part], 0, sizeof S.asset_open[part]);
}

/* The session's settings (tutti_hub_config.settings), on the member's
 * thread: "limiter=DB" or "limiter=off" sets the guards' ceiling; without
 * it, the default. The same on every member, since the hub tells each the
 * same. */
static void read_settings(void *arg, void *engine)
{
    (void)arg;
    tutti_member_status ms;
    tutti_member_status_get(engine, &ms);
    if (!ms.joined) return;
    S.settings_read = true;
    const char *l = strstr(ms.settings, "limiter=");
    if (l && (l == ms.settings || l[-1] == ';')) {
        l += 8;
        char *end;
        double db = strtod(l, &end);
        if (!strncmp(l, "off", 3))
            S.guard_ceiling = 0;
        else if (end != l && db >= -60 && db <= 0)
            S.guard_ceiling = (float)pow(10.0, db / 20.0);
    }
    const char *nb = strstr(ms.settings, "node_budget=");
    if (nb && (nb == ms.settings || nb[-1] == ';')) {
        char *end;
        unsigned long v = strtoul(nb + 12, &end, 10);
        if (end != nb + 12 && v <= 1000000) S.node_budget = (uint32_t)v;
    }
    const char *fk = strstr(ms.settings, "files_kib=");
    if (fk && (fk == ms.settings || fk[-1] == ';')) {
        char *end;
        unsigned long v = strtoul(fk + 10, &end, 10);
        if (end != fk + 10 && v >= 64 && v <= 10000000ul) atomic_store(&S.file_room, FILE_ROOM(v));
    }
    if (S.guard_ceiling > 0)
        logf_("tutti: every part's output is limited to %.1f dBFS on every server (the "
              "session's setting)",
              20 * log10(S.guard_ceiling));
    else
        logf_("tutti: warning: the session has the parts' safety limiter off (the hub's "
              "--limiter off)");
}

/* The session's settings, read once per join, when first needed (member's
 * thread). */
static void need_settings(tutti_net *net)
{
    if (!S.settings_read && net) tutti_net_call(net, read_settings, NULL);
}

/* The part's group, made on this server the first time the part is heard.
 * (Groups a sclang Server object on scsynth's own port makes for every
 * client id, k * 2^26 + 1, are not the part's: its default group is at
 * k * 2^26 + 2^26 - 1, tutti__ns_node_swap.) */
static void ensure_group(uint32_t part)
{
    if (part >= TUTTI_NS_SLOTS || (S.groups_made & (1u << part))) return;
    tutti_net *net = atomic_load(&S.live);
    need_settings(net);
    uint8_t msg[64], free1[48], err[32], gb[96], ga[96], b[400];
    size_t n = tutti__ns_part_setup(part, msg, sizeof msg);
    if (!n) return;
    size_t e = tutti__osc_write(err, sizeof err, "/error", "i", -1);
    /* the guard nodes of an earlier part of this slot go first (guard.h) */
    size_t f = tutti__osc_write(free1, sizeof free1, "/n_free", "ii",
                                TUTTI_GUARD_NODE(part, 0), TUTTI_GUARD_NODE(part, 1));
    /* the guards around the part's group: before it (add action 2) and
     * after it (3), at the root level where the server check skips them */
    size_t g0 = tutti__osc_write(
        gb, sizeof gb, "/s_new", "siiisisi", TUTTI_GUARD_DEF, TUTTI_GUARD_NODE(part, 0),
        2, (int32_t)tutti__ns_part_group(part), "slot", (int32_t)part, "stage", 0);
    size_t g1 = tutti__osc_write(
        ga, sizeof ga, "/s_new", "siiisisisf", TUTTI_GUARD_DEF, TUTTI_GUARD_NODE(part, 1),
        3, (int32_t)tutti__ns_part_group(part), "slot", (int32_t)part, "stage", 1,
        "ceiling", (double)S.guard_ceiling);
    memcpy(b, "#bundle", 8);
    put_be64(b + 8, 1);
    size_t k = 16;
    const uint8_t *parts[] = {err, free1, msg, gb, ga};
    size_t lens[] = {e, f, n, g0, g1};
    for (int i = 0; i < 5; i++) {
        tutti__osc_wr32(b + k, (uint32_t)lens[i]);
        memcpy(b + k + 4, parts[i], lens[i]);
        k += 4 + lens[i];
    }
    if (inject(b, k, TUTTI_PROXY_CTX_DISCARD)) S.groups_made |= 1u << part;
}

/* `p` (a rewritten packet) as one bundle for local wall time `at`, into
 * S.canon's twin: a message is wrapped, a bundle gets the timetag. */
static size_t timed(const uint8_t *p, size_t len, tutti_time at, uint8_t *out)
{
    uint64_t tt = tutti_time_to_ntp(at);
    if (tutti__osc_is_bundle(p, len)) {
        memcpy(out, p, len);
        put_be64(out + 8, tt);
        return len;
    }
    memcpy(out, "#bundle", 8);
    put_be64(out + 8, tt);
    tutti__osc_wr32(out + 16, (uint32_t)len);
    memcpy(out + 20, p, len);
    return len + 20;
}

static void journal(const tutti_event *ev, const uint8_t *data, size_t len)
{
    if (!S.journal_open || !S.journaling) return;
    tutti_event e = *ev;
    uint8_t digest[TUTTI_ASSET_DIGEST_MAX];
    size_t n = tutti__asset_digest_msg(data, len, digest, sizeof digest);
    e.data = n ? digest : data;
    e.len = (uint32_t)(n ? n : len);
    cli_journal_write(&S.journal, &e);
}

/* Frees every node of a part, timed at `at` (after what is timed there). */
static void free_part(uint32_t part, uint32_t origin, tutti_time at)
{
    drop_part(part, at);
    queue_job(JOB_DROP, origin); /* its unfinished uploads, after its chunks */
}

/* ------------------------------------------------ state for newcomers */

typedef struct call_list {
    tutti_member_info *out;
    uint32_t cap, n;
} call_list;

static void learn_id(void *arg, void *engine);

/* A newcomer's server has nothing of what the others built before it came.
 * When a member is added, every member sends its part's state (state.h) as
 * events of its own stream marked for the newcomer (REPLAY_CTX), ending with
 * /tutti/replayed. The state holds everything the member submitted before
 * (lower seqs), and nothing submitted later can be stamped before it (it is
 * stamped at the member's promise, which only grows). So the newcomer holds an
 * older member's events back until that member's state has arrived and been
 * played, then skips the ones submitted before it (stamped in the future, they
 * can come after it) and plays the rest. The others journal the marked events
 * as they came and do not play them. A newcomer journals from
 * the moment it holds nothing back: before that its server did not play what
 * the others played. */

/* The files a state names, read before the model is locked (the proxy's
 * thread takes that lock for every client packet, and a disk can be slow):
 * at most PRELOAD_FILES of them, PRELOAD_BYTES in all; the others are read
 * as they come. */
#define PRELOAD_FILES 16
#define PRELOAD_BYTES ((size_t)64 << 20)
typedef struct preload {
    uint32_t n;
    size_t bytes;
    struct {
        char *name; /* as the model names it: a token, or a path read while solo */
        uint8_t *d;
        size_t len;
        uint64_t hash; /* a path's content's */
    } f[PRELOAD_FILES];
} preload;

typedef struct replay {
    tutti_net *net;
    uint64_t ctx;
    uint8_t *bundle;
    size_t blen;
    uint32_t events;
    int rc;
    tutti__state *note; /* carry: the model of what was submitted, in its form */
    const preload *files;
    uint64_t file_bytes; /* of the files sent so far (at most S.file_room) */
} replay;

/* A read command's file, named in the model (under state_mu). */
static int preload_name(void *arg, const uint8_t *p, size_t len)
{
    preload *pl = arg;
    const uint8_t *done;
    size_t dl;
    const char *name =
        is_read_command(tutti__ns_command_name(p, len)) ? first_string(p, len, &done, &dl) : NULL;
    if (!name || pl->n == PRELOAD_FILES) return 0;
    for (uint32_t i = 0; i < pl->n; i++)
        if (!strcmp(pl->f[i].name, name)) return 0;
    if ((pl->f[pl->n].name = strdup(name))) pl->n++;
    return 0;
}

/* The files the part's model names, read with no lock held (the file
 * worker). */
static void preload_files(preload *pl)
{
    memset(pl, 0, sizeof *pl);
    pthread_mutex_lock(&S.state_mu);
    if (S.state) tutti__state_each(S.state, preload_name, pl);
    pthread_mutex_unlock(&S.state_mu);
    for (uint32_t i = 0; i < pl->n && pl->bytes < PRELOAD_BYTES; i++) {
        char path[4200];
        const char *src = pl->f[i].name;
        bool token = tutti__asset_token_parse(src, NULL);
        if (token && tutti__asset_path(src, path, sizeof path)) continue;
        if (tutti__asset_read(token ? path : src, &pl->f[i].d, &pl->f[i].len)) {
            pl->f[i].d = NULL; /* read again as it comes, which says why not */
            continue;
        }
        if (!token) pl->f[i].hash = tutti__asset_hash(pl->f[i].d, pl->f[i].len);
        pl->bytes += pl->f[i].len;
    }
}

static void preload_free(preload *pl)
{
    for (uint32_t i = 0; i < pl->n; i++) {
        free(pl->f[i].name);
        free(pl->f[i].d);
    }
    pl->n = 0;
}

/* The preloaded content of `name`, or NULL. */
static const uint8_t *preloaded(const replay *r, const char *name, size_t *len,
                                uint64_t *hash)
{
    for (uint32_t i = 0; r->files && i < r->files->n; i++)
        if (r->files->f[i].d && !strcmp(r->files->f[i].name, name)) {
            *len = r->files->f[i].len;
            *hash = r->files->f[i].hash;
            return r->files->f[i].d;
        }
    return NULL;
}

static int replay_send(void *arg, const uint8_t *p, size_t len)
{
    replay *r = arg;
    if (r->rc) return r->rc;
    uint8_t *buf = malloc(len + CTX_BYTES);
    if (!buf) return r->rc = TUTTI_ENOMEM;
    put_be64(buf, r->ctx);
    memcpy(buf + CTX_BYTES, p, len);
    /* asked for at time 0: stamped at the member's promise (it may not have
     * a locked clock this early) */
    r->rc = tutti_net_submit(r->net, 0, buf, (uint32_t)(len + CTX_BYTES));
    free(buf);
    if (!r->rc) r->events++;
    if (!r->rc && r->note) tutti__state_note(r->note, p, len);
    return r->rc;
}

#define REPLAY_BUNDLE (MAX_EVENT - CTX_BYTES - 1024)

static int replay_flush(replay *r)
{
    if (r->blen > 16) replay_send(r, r->bundle, r->blen);
    r->blen = 16;
    return r->rc;
}

/* Whether a file of n bytes still fits in what this replay may send at once
 * (S.file_room): if not, it is left out, with its read, and said. */
static bool replay_file_fits(replay *r, const char *name, size_t n)
{
    uint64_t room = atomic_load(&S.file_room);
    if (r->file_bytes + n <= room) {
        r->file_bytes += n;
        return true;
    }
    logf_("tutti: %s (%.1f MB) is not sent with the part's state: with it, the state's "
          "files come to more than a member may send at once in this session (%.1f MB; the "
          "hub's --max-held-kib and --max-kib-rate set it); the buffer that reads it stays "
          "empty on %s",
          name, n / 1e6, room / 1e6,
          r->ctx == STATE_TAG ? "every server" : "the newcomer's server");
    return false;
}

/* One message of the model: into the bundle being filled, or (a file read,
 * which goes with the file's content) on its own. */
static int replay_message(void *arg, const uint8_t *p, size_t len)
{
    replay *r = arg;
    const uint8_t *done;
    size_t dl;
    const char *token = is_read_command(tutti__ns_command_name(p, len))
                            ? first_string(p, len, &done, &dl)
                            : NULL;
    if (token && !tutti__asset_token_parse(token, NULL)) {
        /* a file read by path while solo: shared by content as the
         * session shares it (and the model keeps the token from then on) */
        replay_flush(r);
        uint8_t *d = NULL;
        size_t n;
        uint64_t hash;
        const uint8_t *pre = preloaded(r, token, &n, &hash);
        if (!pre && tutti__asset_read(token, &d, &n)) {
            logf_("tutti: %s, read into a buffer while solo, cannot be read any more; "
                  "that buffer is not carried into the part",
                  token);
            return r->rc;
        }
        if (!replay_file_fits(r, token, n)) {
            free(d);
            return r->rc;
        }
        if (!pre) hash = tutti__asset_hash(d, n);
        char tok[TUTTI_ASSET_TOKEN_MAX + 16];
        tutti__asset_token(hash, token, tok, sizeof tok);
        int rc = submit_chunks(replay_send, r, tok, pre ? pre : d, n);
        free(d);
        uint8_t *msg = rc ? NULL : malloc(MAX_EVENT);
        size_t m = msg ? tutti__osc_replace_string(p, len, tok, msg, MAX_EVENT - CTX_BYTES) : 0;
        if (m) replay_send(r, msg, m);
        free(msg);
        return r->rc;
    }
    if (token && tutti__asset_token_parse(token, NULL)) {
        replay_flush(r);
        char path[4200];
        uint8_t *d = NULL;
        size_t n;
        uint64_t hash;
        const uint8_t *pre = preloaded(r, token, &n, &hash);
        if (!pre &&
            (tutti__asset_path(token, path, sizeof path) || tutti__asset_read(path, &d, &n))) {
            logf_("tutti: a shared file (%s) is not in the cache any more; a newcomer will "
                  "not have it",
                  token);
            return r->rc;
        }
        if (!replay_file_fits(r, token, n)) {
            free(d);
            return r->rc;
        }
        int rc = submit_chunks(replay_send, r, token, pre ? pre : d, n);
        free(d);
        if (!rc) replay_send(r, p, len);
        return r->rc;
    }
    if (is_async_command(tutti__ns_command_name(p, len))) {
        /* alone, so the newcomer can run it as soon as it arrives */
        replay_flush(r);
        return replay_send(r, p, len);
    }
    if (r->blen + 4 + len > REPLAY_BUNDLE) replay_flush(r);
    if (16 + 4 + len > REPLAY_BUNDLE) return replay_send(r, p, len);
    tutti__osc_wr32(r->bundle + r->blen, (uint32_t)len);
    memcpy(r->bundle + r->blen + 4, p, len);
    r->blen += 4 + len;
    return 0;
}

/* What this member's clients made while its server was solo (or while it
 * was joining) becomes its part's state on every server (member's thread,
 * once per join, before anything else of this member's goes out): the model
 * is submitted as ordinary events of this member marked STATE_TAG, played
 * on every server, this one included, in the part's namespace (loads at
 * once, as a newcomer plays a state; the rest at its time), and journaled
 * everywhere. A file read by path goes by content. The model is rebuilt
 * from what was submitted, so it names files by token from now on. On this
 * server the solo copies are freed when the part's copies start (see
 * deliver_state). Until this has run the proxy plays its clients' traffic as
 * in solo and notes it here, so nothing a client sent before is left out,
 * whatever the order of booting, connecting and joining. */
static void carry(void)
{
    if (atomic_load(&S.carried)) return;
    tutti_net *net = atomic_load(&S.live);
    if (!net || !atomic_load(&S.my_id)) return; /* the member's thread learnt it */
    need_settings(net);
    tutti__state *fresh = NULL;
    if (tutti__state_create(&fresh)) return;
    static preload files; /* the worker's */
    preload_files(&files);
    replay r = {net, STATE_TAG, malloc(REPLAY_BUNDLE), 16, 0, 0, fresh, &files, 0};
    if (!r.bundle) {
        preload_free(&files);
        tutti__state_destroy(fresh);
        return;
    }
    memcpy(r.bundle, "#bundle", 8);
    put_be64(r.bundle + 8, 1);
    pthread_mutex_lock(&S.state_mu);
    tutti__state *old = S.state;
    size_t count = old ? tutti__state_count(old) : 0, roots = 0;
    if (old) {
        int32_t all[MAX_ROOTS];
        roots = tutti__state_roots(old, all, MAX_ROOTS);
        S.nsolo_roots = 0;
        for (size_t i = 0; i < roots && i < MAX_ROOTS; i++)
            if (all[i] > 0 && all[i] < TUTTI_NS_NODE_SPAN)
                S.solo_roots[S.nsolo_roots++] = all[i];
        tutti__state_each(old, replay_message, &r);
        replay_flush(&r);
    }
    S.state = fresh;
    atomic_store(&S.carried, true);
    pthread_mutex_unlock(&S.state_mu);
    free(r.bundle);
    preload_free(&files);
    if (r.rc)
        logf_("tutti: what was made while solo could not all be carried into the part: %s",
              tutti_strerror(r.rc));
    else if (count)
        logf_("tutti: carried what was made while solo (%zu messages, %" PRIu32
              " events, %zu nodes) into part %" PRIu32 " on every server",
              count, r.events, roots, tutti_member_part(atomic_load(&S.my_id)));
    tutti__state_destroy(old);
}

/* This part's state to member `id`, which was just added (member's thread). */
static void send_state(uint32_t id)
{
    carry(); /* what it sends must be the part's state, carried first */
    tutti_net *net = atomic_load(&S.live);
    uint32_t me = atomic_load(&S.my_id);
    if (!net || !id || id == me) return;
    static preload files; /* the worker's */
    preload_files(&files);
    need_settings(net);
    replay r = {net, REPLAY_CTX(id), malloc(REPLAY_BUNDLE), 16, 0, 0, NULL, &files, 0};
    if (!r.bundle) {
        preload_free(&files);
        return;
    }
    memcpy(r.bundle, "#bundle", 8);
    put_be64(r.bundle + 8, 1);
    pthread_mutex_lock(&S.state_mu);
    size_t count = S.state ? tutti__state_count(S.state) : 0;
    bool overflow = S.state && tutti__state_overflowed(S.state);
    if (S.state) tutti__state_each(S.state, replay_message, &r);
    replay_flush(&r);
    uint8_t end[64];
    size_t n = tutti__osc_write(end, sizeof end, "/tutti/replayed", "ii", (int32_t)id,
                                (int32_t)r.events);
    int rc = r.rc;
    r.rc = 0;
    replay_send(&r, end, n);
    pthread_mutex_unlock(&S.state_mu);
    free(r.bundle);
    preload_free(&files);
    atomic_fetch_add(rc || r.rc ? &S.replay_failed : &S.replays_sent, 1);
    if (rc || r.rc)
        logf_("tutti: this part's state could not all be sent to member %" PRIu32 ": %s", id,
              tutti_strerror(rc ? rc : r.rc));
    else if (overflow)
        logf_("tutti: this part's state grew too large to keep; member %" PRIu32
              " got only its beginning",
              id);
    else if (count)
        logf_("tutti: sent this part's state (%zu messages, %" PRIu32
              " events) to member %" PRIu32,
              count, r.events, id);
}

static void journal_if_ready(void)
{
    if (S.journaling) return;
    for (uint32_t i = 0; i < S.nold; i++)
        if (S.old[i].waiting) return;
    S.journaling = true;
    S.check_after = wall_now() + CHECK_SETTLE;
}

/* Member `origin` holds nothing back any more (`why`: say so, or NULL). */
static void stop_waiting(uint32_t origin, const char *why)
{
    for (uint32_t i = 0; i < S.nold; i++) {
        if (S.old[i].origin != origin || !S.old[i].waiting) continue;
        S.old[i].waiting = false;
        if (why) logf_("tutti: member %" PRIu32 ": %s", origin, why);
    }
    if (S.started) journal_if_ready();
}

static void list_members(void *arg, void *engine)
{
    call_list *c = arg;
    c->n = tutti_member_list(engine, c->out, c->cap);
}

/* The first delivery since joining: the members already there are the ones
 * whose state is to come. */
static void start_holding(void)
{
    S.started = true;
    tutti_net *net = atomic_load(&S.live);
    if (net) tutti_net_call(net, learn_id, NULL);
    static tutti_member_info list[TUTTI_MAX_OLD];
    call_list c = {list, TUTTI_MAX_OLD, 0};
    if (net) tutti_net_call(net, list_members, &c);
    uint32_t me = atomic_load(&S.my_id);
    tutti_time deadline = wall_now() + REPLAY_WAIT;
    S.nold = 0;
    for (uint32_t i = 0; i < c.n && i < TUTTI_MAX_OLD; i++)
        if (list[i].id != me && list[i].id)
            S.old[S.nold++] = (typeof(S.old[0])){list[i].id, true, deadline, 0};
    journal_if_ready();
}

/* An event of an older member that its state (already played) holds: it
 * was submitted before the state was (a lower seq), though it may be
 * stamped after it. */
static bool in_state(uint32_t origin, uint64_t seq)
{
    for (uint32_t i = 0; i < S.nold; i++)
        if (S.old[i].origin == origin) return seq < S.old[i].skip_below;
    return false;
}

/* Members whose state is overdue are waited for no longer (a `tutti
 * member` process sends none), whether or not their events come. */
static void expire_waits(void)
{
    tutti_time now = wall_now();
    for (uint32_t i = 0; i < S.nold; i++)
        if (S.old[i].waiting && now > S.old[i].deadline)
            stop_waiting(S.old[i].origin,
                         "its part's state did not come; playing its events from now on "
                         "(this server may lack what they use)");
}

static bool waiting_for(uint32_t origin)
{
    for (uint32_t i = 0; i < S.nold; i++)
        if (S.old[i].origin == origin) return S.old[i].waiting;
    return false;
}

typedef struct call_left {
    uint32_t id, n;
    bool complete;
} call_left;

static void origin_left(void *arg, void *engine)
{
    call_left *c = arg;
    c->n = tutti_member_origin_pending(engine, c->id, &c->complete);
}

/* How many events of a removed member are still to be delivered here (the
 * one being delivered counts); UINT32_MAX while its stream is not whole. */
static uint32_t stream_left(uint32_t id)
{
    call_left c = {id, 0, true};
    tutti_net *net = atomic_load(&S.live);
    if (net) tutti_net_call(net, origin_left, &c); /* at once: the member's thread */
    return c.complete ? c.n : UINT32_MAX;
}

static void on_command(const tutti_event *ev, tutti_time at)
{
    journal(ev, ev->data, ev->len);
    changed(); /* the members, the timeline or L: the feed looks */
    tutti__rec c;
    if (tutti__command_decode(ev->data, ev->len, &c)) return;
    if (c.u.command.op == TUTTI__CMD_ADD) {
        stop_waiting(c.u.command.member_id, NULL); /* it came after this member */
        tutti_net *net = atomic_load(&S.live);
        if (net) tutti_net_call(net, learn_id, NULL); /* at once: this is its thread */
        if (!S.carry_queued) queue_carry();
        queue_job(JOB_STATE, c.u.command.member_id); /* the worker sends it */
        return;
    }
    if (c.u.command.op != TUTTI__CMD_REMOVE) return;
    uint32_t id = c.u.command.member_id, part = tutti_member_part(id);
    stop_waiting(id, NULL);
    if (part >= TUTTI_NS_SLOTS) return;
    /* The member is gone: its events up to last_seq still come (they may be
     * stamped later than this command, and not in seq order); its part is
     * silenced after the last of them, at the same place in the order on
     * every server. */
    if (stream_left(id) == 0)
        free_part(part, id, at);
    else
        S.gone[part] = id;
}

enum { FILE_NONE, FILE_ASSET, FILE_READ, FILE_BAD };

/* Files in a delivered packet: a chunk of an asset (stored here, never
 * played), a bare read command whose path is an asset token, or anything
 * else that names a file (refused: a member cannot make this server read or
 * write a path of its choosing). */
static int visit_file(void *ctx, const uint8_t *p, size_t len)
{
    int *f = ctx;
    if (tutti__ns_classify(p, len) == TUTTI_NS_LOCAL_FILE) *f = FILE_BAD;
    return 0;
}

/* Nodes a message makes, as scsynth reads it: /s_new one; /g_new and
 * /p_new one a (id, action, target) triple, reading on while arguments
 * remain. */
static int visit_nodes_made(void *ctx, const uint8_t *p, size_t len)
{
    const char *name = tutti__ns_command_name(p, len);
    uint32_t *n = ctx;
    if (!name) return 0;
    if (!strcmp(name, "/s_new") || !strcmp(name, "/s_newargs")) {
        *n += 1;
    } else if (!strcmp(name, "/g_new") || !strcmp(name, "/p_new")) {
        tutti__osc_msg m;
        size_t args = 0;
        if (tutti__osc_msg_parse(p, len, &m) == 0 && m.tags) args = strlen(m.tags);
        *n += args > 3 ? (uint32_t)((args + 2) / 3) : 1;
    }
    return 0;
}

/* A refused message of this member's own part: the nodes it would have made
 * leave the part's model (state.h), which noted them when they were
 * submitted; no server has them, so no newcomer (and not this server when
 * it plays solo again) may make them. */
static int visit_unmade(void *ctx, const uint8_t *p, size_t len)
{
    (void)ctx;
    const char *name = tutti__ns_command_name(p, len);
    tutti__osc_msg m;
    if (!name || tutti__osc_msg_parse(p, len, &m) || !m.tags) return 0;
    const uint8_t *a = m.args;
    if ((!strcmp(name, "/s_new") || !strcmp(name, "/s_newargs")) && m.tags[0] == 's' &&
        m.tags[1] == 'i') {
        size_t n = strnlen((const char *)a, (size_t)(m.end - a));
        a += (n + 4) & ~(size_t)3; /* the synthdef's name, padded */
        if (a + 4 <= m.end) tutti__state_node_end(S.state, (int32_t)tutti__osc_rd32(a));
    } else if (!strcmp(name, "/g_new") || !strcmp(name, "/p_new")) {
        for (size_t k = 0; m.tags[k] == 'i' && a + 4 <= m.end; k++, a += 4)
            if (k % 3 == 0) tutti__state_node_end(S.state, (int32_t)tutti__osc_rd32(a));
    }
    return 0;
}

static uint32_t nodes_made(const uint8_t *p, size_t len)
{
    uint32_t n = 0;
    if (tutti__osc_is_bundle(p, len))
        tutti__osc_each_message(p, len, visit_nodes_made, &n);
    else
        visit_nodes_made(&n, p, len);
    return n;
}

/* Every delivered event's session time, before the event counts: the rows
 * of the rounds whose time it passed take the counts as they stand (the
 * servers' trees of round k hold what was stamped at or before T_k). */
static void budget_time(tutti_time t)
{
    int64_t k = t > 0 ? (t - 1) / TUTTI_CHECK_PERIOD : -1; /* the last T_k < t */
    if (k <= S.snapped) return;
    int64_t from = S.snapped + 1;
    if (S.snapped < 0 || k - from >= BUDGET_ROUNDS) from = k - BUDGET_ROUNDS + 1;
    for (int64_t r = from; r <= k; r++) {
        memcpy(S.made_at[r % BUDGET_ROUNDS], S.made, sizeof S.made);
        S.made_round[r % BUDGET_ROUNDS] = r;
    }
    S.snapped = k;
}

/* The nodes part `part` holds at most, as every server knows it here: the
 * agreed count at the last decided round and what its events made since
 * that round's time (before any round is decided, all they made). A round
 * older than the rows kept (or from before this server joined) counts
 * nothing made since. */
static uint64_t budget_held(uint32_t part)
{
    int64_t r = S.agreed_round[part];
    if (r < 0) return S.made[part];
    int row = (int)(r % BUDGET_ROUNDS);
    uint64_t since = S.made_round[row] == r ? S.made[part] - S.made_at[row][part] : 0;
    return S.agreed[part] + since;
}

static bool asset_refused(uint64_t hash)
{
    for (uint32_t i = 0; i < S.nrefused_assets && i < REFUSED_ASSETS; i++)
        if (S.refused_assets[i] == hash) return true;
    return false;
}

/* The part's quota for a chunk of a shared file, decided from the stream
 * alone, never from what this server's cache holds, so every server decides
 * the same: a file's first chunk counts its declared size against the
 * part's ASSET_QUOTA, and a part may have ASSET_PARTIALS files started and
 * not yet ended (its last chunk) at once. A refused file's later chunks
 * and the command that reads it go nowhere. */
static bool asset_allowed(const char *token, uint32_t origin, uint64_t total,
                          uint64_t off, uint64_t n)
{
    uint64_t hash;
    uint32_t part = tutti_member_part(origin);
    if (!tutti__asset_token_parse(token, &hash) || part >= TUTTI_NS_SLOTS) return false;
    if (asset_refused(hash)) {
        atomic_fetch_add(&S.assets_refused, 1);
        return false;
    }
    uint64_t *open = S.asset_open[part];
    int at = -1, free_at = -1;
    for (int i = 0; i < ASSET_PARTIALS; i++) {
        if (open[i] == hash) at = i;
        if (!open[i] && free_at < 0) free_at = i;
    }
    const char *why = NULL;
    if (off == 0 && at < 0) {
        if (S.asset_bytes[part] + total > ASSET_QUOTA)
            why = "its shared files would pass the part's quota (512 MiB a session)";
        else if (free_at < 0)
            why = "it has 4 shared files partly sent already";
        if (!why) {
            S.asset_bytes[part] += total;
            open[at = free_at] = hash;
        }
    }
    if (!why) {
        if (at >= 0 && off + n >= total) open[at] = 0; /* its last chunk */
        return true;
    }
    S.refused_assets[S.nrefused_assets++ % REFUSED_ASSETS] = hash;
    if (atomic_fetch_add(&S.assets_refused, 1) < 8)
        logf_("tutti: a shared file of part %" PRIu32 " (%s, %" PRIu64
              " bytes) is refused on every server: %s",
              part, token, total, why);
    return false;
}

static int file_event(const uint8_t *p, size_t len, uint32_t origin)
{
    tutti__osc_msg m;
    if (tutti__osc_is_bundle(p, len)) {
        int f = FILE_NONE;
        tutti__osc_each_message(p, len, visit_file, &f);
        return f;
    }
    tutti__osc_msg_parse(p, len, &m);
    if (m.addr && !strcmp(m.addr, "/tutti/asset")) {
        if (!m.tags || strcmp(m.tags, "siib")) return FILE_BAD;
        tutti__osc_iter it;
        tutti__osc_iter_init(&it, &m);
        const char *token = tutti__osc_iter_gets(&it, NULL);
        int32_t total = tutti__osc_iter_geti(&it, -1), off = tutti__osc_iter_geti(&it, -1);
        const uint8_t *b = it.rd;
        uint32_t n = tutti__osc_rd32(b);
        if (total < 0 || off < 0) return FILE_BAD;
        if (!asset_allowed(token, origin, (uint64_t)total, (uint64_t)off, n))
            return FILE_ASSET;
        queue_chunk(token, origin, (uint64_t)total, (uint64_t)off, b + 4, n);
        return FILE_ASSET;
    }
    if (tutti__ns_classify(p, len) != TUTTI_NS_LOCAL_FILE) return FILE_NONE;
    const uint8_t *done;
    size_t dl;
    const char *path = first_string(p, len, &done, &dl);
    return is_read_command(tutti__ns_command_name(p, len)) && path &&
                   tutti__asset_token_parse(path, NULL)
               ? FILE_READ
               : FILE_BAD;
}

/* Whether the file a rewritten read command names was refused (the part's
 * quota, decided from the stream: the same on every server), said once. */
static bool read_refused(const uint8_t *p, size_t n)
{
    const uint8_t *done;
    size_t dl;
    const char *token = first_string(p, n, &done, &dl);
    uint64_t hash = 0;
    if (!token || !tutti__asset_token_parse(token, &hash) || !asset_refused(hash)) return false;
    logf_("tutti: a shared file (%s) was refused (the part's quota); the command that "
          "reads it is skipped on every server",
          token);
    return true;
}

/* The rewritten read command in `p` (OUT_CAP bytes), its token replaced by
 * this server's cached copy, through `scratch` (OUT_CAP bytes). False when
 * the file is not here (it could not be stored). */
static bool local_file(uint8_t *p, ssize_t *n, uint8_t *scratch)
{
    const uint8_t *done;
    size_t dl;
    const char *token = first_string(p, (size_t)*n, &done, &dl);
    char path[4200];
    if (!token || tutti__asset_path(token, path, sizeof path) || !tutti__asset_have(token)) {
        logf_("tutti: a shared file (%s) is not in this server's cache; the command that "
              "reads it is skipped here",
              token ? token : "?");
        return false;
    }
    size_t m = tutti__osc_replace_string(p, (size_t)*n, path, scratch, OUT_CAP);
    if (!m) return false;
    memcpy(p, scratch, m);
    *n = (ssize_t)m;
    return true;
}

static void learn_id(void *arg, void *engine)
{
    (void)arg;
    tutti_member_status st;
    tutti_member_status_get(engine, &st);
    atomic_store(&S.my_id, st.joined ? st.id : 0);
}

/* How a user event is played here: at its time, at once (a newcomer's
 * state), or not at all (it is in an older member's state, played
 * already; it is still rewritten and journaled like everywhere else). */
enum { PLAY_AT, PLAY_NOW, PLAY_NOT };
/* TUTTI_TRACE=1: one line per event played (origin, seq, how, the first
 * message's address and first integers, rewritten), for finding out why a
 * server did something. */
static void trace(const tutti_event *ev, int how, size_t n, tutti_time when)
{
    char line[160];
    int at = snprintf(line, sizeof line, "tutti: trace %" PRIu32 ":%" PRIu64 " %s %+.3f ms",
                      ev->key.origin, ev->key.seq, how == PLAY_NOW ? "now" : "at",
                      (double)(when - wall_now()) / 1e6);
    const uint8_t *p = S.out;
    size_t len = n;
    if (tutti__osc_is_bundle(p, len) && len >= 20) {
        size_t first = tutti__osc_rd32(p + 16);
        p += 20;
        len = first <= len - 20 ? first : 0;
    }
    tutti__osc_msg m;
    if (len && tutti__osc_msg_parse(p, len, &m) == 0) {
        tutti__osc_iter it;
        tutti__osc_iter_init(&it, &m);
        at += snprintf(line + at, sizeof line - (size_t)at, " %s", m.addr ? m.addr : "#");
        for (int k = 0; k < 4 && m.tags && m.tags[k] && at < (int)sizeof line - 16; k++) {
            int32_t v = tutti__osc_iter_geti(&it, 0);
            if (m.tags[k] == 'i') at += snprintf(line + at, sizeof line - (size_t)at, " %d", v);
        }
    }
    logf_("%s", line);
}


/* A bundle handed to the server after its time: scsynth prints `late` for
 * it. The member judges lateness only with a locked clock and against its
 * own reading of the time; this is what the server will see, counted
 * whatever the reason (late_injected in the status). Whether it was late. */
static bool note_late(uint32_t origin, uint64_t seq, tutti_time at)
{
    tutti_time now = wall_now();
    if (at >= now) return false;
    if (atomic_fetch_add(&S.late_injected, 1) < 5)
        logf_("tutti: event %" PRIu32 ":%" PRIu64 " reached this server %.3f ms after its "
              "time",
              origin, seq, (double)(now - at) / 1e6);
    return true;
}

/* The synths a state starts here (a newcomer's copies of an older member's
 * synths), and those an event handed over late starts here: /s_new at the
 * head or tail of a group, whose place and so whose
 * term of the tree hash the message tells. The server check leaves them out
 * of the comparison for CHECK_CARRIED_FOR (see tutti__digest_part). */
static int carried_msg(void *arg, const uint8_t *p, size_t len)
{
    uint32_t part = *(const uint32_t *)arg;
    const char *name = tutti__ns_command_name(p, len);
    tutti__osc_msg m;
    if (!name || strcmp(name, "/s_new") || tutti__osc_msg_parse(p, len, &m) || !m.tags)
        return 0;
    tutti__osc_iter it;
    tutti__osc_iter_init(&it, &m);
    if (m.tags[0] != 's') return 0;
    const char *def = tutti__osc_iter_gets(&it, "");
    if (m.tags[1] != 'i') return 0;
    int32_t id = tutti__osc_iter_geti(&it, -1);
    int32_t action = m.tags[2] == 'i' ? tutti__osc_iter_geti(&it, 0) : 0;
    int32_t target = m.tags[2] == 'i' && m.tags[3] == 'i' ? tutti__osc_iter_geti(&it, 0) : 0;
    if (id < 0 || (action != 0 && action != 1)) return 0;
    uint64_t term = tutti__digest_term(part, id, target, def);
    tutti_time until = wall_now() + CHECK_CARRIED_FOR;
    pthread_mutex_lock(&S.check_mu);
    uint32_t i = 0;
    while (i < S.ncarried_nodes &&
           (S.carried_nodes[i].slot != part || S.carried_nodes[i].id != id))
        i++;
    if (i == S.ncarried_nodes && i == TUTTI_CHECK_CARRIED) { /* full: the oldest goes */
        memmove(S.carried_nodes, S.carried_nodes + 1,
                (TUTTI_CHECK_CARRIED - 1) * sizeof S.carried_nodes[0]);
        i = --S.ncarried_nodes;
    }
    if (i == S.ncarried_nodes) S.ncarried_nodes++;
    S.carried_nodes[i].slot = part;
    S.carried_nodes[i].id = id;
    S.carried_nodes[i].term = term;
    S.carried_nodes[i].until = until;
    pthread_mutex_unlock(&S.check_mu);
    return 0;
}

static void note_carried(const uint8_t *p, size_t len, uint32_t part)
{
    if (tutti__osc_is_bundle(p, len))
        tutti__osc_each_message(p, len, carried_msg, &part);
    else
        carried_msg(&part, p, len);
}

/* A held bundle's turn (hold.h, on the hold's thread): re-timed now, from
 * the newest anchors, and handed to the server. */
static void hold_release(void *arg, const uint8_t *p, size_t len, tutti_time at,
                         uint64_t ctx)
{
    (void)arg;
    tutti_time now = wall_now();
    if (at - now < atomic_load(&S.lead_min_ns)) atomic_store(&S.lead_min_ns, at - now);
    size_t m = timed(p, len, at + tutti__beat_retime(at, now), S.hold_scratch);
    inject(S.hold_scratch, m, ctx);
}

/* Holds `p` for time `at` until `lead` before it: false when it cannot be
 * held (then it goes now, as it would without the hold). */
static bool hold_back(const uint8_t *p, size_t n, tutti_time at, tutti_time lead,
                      uint64_t reply_to)
{
    pthread_mutex_lock(&S.hold_mu);
    if (!S.hold) {
        if (!S.hold_scratch) S.hold_scratch = malloc(OUT_CAP);
        if (S.hold_scratch && tutti__hold_create(&S.hold, hold_release, NULL, HOLD_BYTES))
            S.hold = NULL;
    }
    bool ok = S.hold && tutti__hold_push(S.hold, p, n, at, at - lead, reply_to) == 0;
    pthread_mutex_unlock(&S.hold_mu);
    if (ok) atomic_fetch_add(&S.held_back, 1);
    return ok;
}

/* Plays a rewritten packet `p` (`n` bytes) on this server: at once, or in a
 * bundle timed at `at` (local wall time) built in `scratch` (OUT_CAP). On
 * the UGens' clock when it is not the server's (beat.h): such a bundle is
 * held until shortly before its time and re-timed then. */
static void play_packet(const uint8_t *p, size_t n, int how, tutti_time at, uint64_t reply_to,
                 uint32_t part, uint32_t origin, uint64_t seq, uint8_t *scratch)
{
    if (how == PLAY_NOW) {
        inject(p, n, reply_to);
        return;
    }
    tutti_time now = wall_now();
    tutti_time lead = at - now;
    /* A synth started late here (this member was cut off, or stalled) ends
     * that much later than on the others: the server check leaves it out,
     * as it does a newcomer's copies; the lateness itself is counted and
     * scsynth says `late`. */
    if (note_late(origin, seq, at)) note_carried(p, n, part);
    tutti_time hold = tutti__beat_hold_lead(at, now);
    if (hold && lead > hold && hold_back(p, n, at, hold, reply_to)) return;
    if (lead < atomic_load(&S.lead_min_ns)) atomic_store(&S.lead_min_ns, lead);
    size_t m = timed(p, n, at + tutti__beat_retime(at, now), scratch);
    inject(scratch, m, reply_to);
}

/* ------------------------------------------------------ file worker */

/* Handing a job over: the member's thread waits only when the jobs queued
 * hold more than WORK_BYTES (the disk cannot keep up), never for
 * a job to be done. */
static void work_push(work_job *j)
{
    pthread_mutex_lock(&S.work_mu);
    while (!S.work_stop && S.work_head && S.work_bytes + j->len > WORK_BYTES)
        pthread_cond_wait(&S.work_room, &S.work_mu);
    if (S.work_stop) {
        pthread_mutex_unlock(&S.work_mu);
        free(j);
        return;
    }
    j->next = NULL;
    if (S.work_tail)
        S.work_tail->next = j;
    else
        S.work_head = j;
    S.work_tail = j;
    S.work_bytes += j->len;
    pthread_cond_signal(&S.work_more);
    pthread_mutex_unlock(&S.work_mu);
}

static work_job *job_new(int kind, size_t len)
{
    work_job *j = calloc(1, sizeof *j + len);
    if (j) {
        j->kind = kind;
        j->len = len;
    }
    return j;
}

/* A chunk of a shared file, to be stored by the worker. */
static void queue_chunk(const char *token, uint32_t origin, uint64_t total, uint64_t off,
                        const uint8_t *b, size_t n)
{
    uint32_t part = tutti_member_part(origin);
    work_job *j = job_new(JOB_CHUNK, n);
    if (!j) {
        logf_("tutti: a shared file (%s) could not be stored: %s", token, strerror(ENOMEM));
        return;
    }
    snprintf(j->token, sizeof j->token, "%s", token);
    j->origin = origin;
    j->part = part;
    j->total = total;
    j->off = off;
    memcpy(j->data, b, n);
    if (part < TUTTI_NS_SLOTS) atomic_fetch_add(&S.chunks_queued[part], 1);
    work_push(j);
}

/* A packet of part `part` played by the worker, after the jobs before it:
 * the part's files are stored before its read command runs, and its later
 * events keep their order behind it. */
static void queue_play(const uint8_t *p, size_t n, int how, tutti_time at, uint64_t reply_to,
                       uint32_t part, const tutti_event *ev, bool file)
{
    work_job *j = job_new(JOB_PLAY, OUT_CAP);
    if (!j) return;
    memcpy(j->data, p, n);
    j->len = OUT_CAP; /* room for the cached file's path */
    j->n = n;
    j->how = how;
    j->at = at;
    j->ctx = reply_to;
    j->part = part;
    j->origin = ev->key.origin;
    j->seq = ev->key.seq;
    j->file = file;
    atomic_fetch_add(&S.plays_queued[part], 1);
    work_push(j);
}

/* A job that is not about files' bytes: the part's state to a newcomer
 * (`id`), carrying what was made solo (0), a part's partial files dropped
 * (JOB_DROP, `id` its member). */
static void queue_job(int kind, uint32_t id)
{
    work_job *j = job_new(kind, 0);
    if (!j) return;
    j->origin = id;
    work_push(j);
}

/* This member's packet whose nodes were refused on every server: the model
 * forgets them, on the worker (this thread never takes state_mu, which the
 * worker holds while it sends a state). */
static void queue_unmade(const uint8_t *p, size_t n)
{
    work_job *j = job_new(JOB_UNMADE, n);
    if (!j) return;
    memcpy(j->data, p, n);
    j->n = n;
    work_push(j);
}

/* What was made solo becomes the part's state (carry), once per join, by
 * the worker (the member's thread). */
static void queue_carry(void)
{
    if (S.carry_queued) return;
    tutti_net *net = atomic_load(&S.live);
    if (net) tutti_net_call(net, learn_id, NULL); /* at once: this is its thread */
    if (!atomic_load(&S.my_id)) return;
    S.carry_queued = true;
    queue_job(JOB_CARRY, 0);
}

static void *work_main(void *arg)
{
    (void)arg;
    uint8_t *scratch = malloc(OUT_CAP);
    for (;;) {
        pthread_mutex_lock(&S.work_mu);
        while (!S.work_head && !S.work_stop)
            pthread_cond_wait(&S.work_more, &S.work_mu);
        work_job *j = S.work_head;
        if (!j) { /* stopped, and nothing left */
            pthread_mutex_unlock(&S.work_mu);
            break;
        }
        S.work_head = j->next;
        if (!S.work_head) S.work_tail = NULL;
        bool stop = S.work_stop;
        pthread_mutex_unlock(&S.work_mu);
        tutti_time t0 = tutti_net_now();
        if (j->kind == JOB_CHUNK) {
            int r = tutti__asset_put(j->token, j->origin, j->total, j->off, j->data, j->len);
            if (r < 0)
                logf_("tutti: a shared file (%s) could not be stored: %s", j->token,
                      r == -EINVAL ? "its content does not match its name" : strerror(-r));
            if (j->part < TUTTI_NS_SLOTS) atomic_fetch_sub(&S.chunks_queued[j->part], 1);
        } else if (j->kind == JOB_PLAY) {
            /* after a leave the parts are gone from this server: not played */
            ssize_t n = (ssize_t)j->n;
            if (!stop && !atomic_load(&S.leaving) && scratch &&
                (!j->file || local_file(j->data, &n, scratch)))
                play_packet(j->data, (size_t)n, j->how, j->at, j->ctx, j->part, j->origin, j->seq,
                     scratch);
            atomic_fetch_sub(&S.plays_queued[j->part], 1);
        } else if (j->kind == JOB_DROP) {
            int n = tutti__asset_drop_partials(j->origin, 0);
            if (n)
                logf_("tutti: %d partial shared files of member %" PRIu32 " removed", n,
                      j->origin);
        } else if (j->kind == JOB_UNMADE) {
            pthread_mutex_lock(&S.state_mu);
            if (S.state) {
                if (tutti__osc_is_bundle(j->data, j->n))
                    tutti__osc_each_message(j->data, j->n, visit_unmade, NULL);
                else
                    visit_unmade(NULL, j->data, j->n);
            }
            pthread_mutex_unlock(&S.state_mu);
        } else if (!stop && j->kind == JOB_CARRY) {
            carry();
        } else if (!stop && j->kind == JOB_STATE) {
            send_state(j->origin);
        }
        tutti_time took = tutti_net_now() - t0;
        if (took > atomic_load(&S.work_max_ns)) atomic_store(&S.work_max_ns, took);
        pthread_mutex_lock(&S.work_mu);
        S.work_bytes -= j->len;
        pthread_cond_broadcast(&S.work_room);
        pthread_mutex_unlock(&S.work_mu);
        free(j);
    }
    free(scratch);
    return NULL;
}

static int work_start(void)
{
    S.work_stop = false;
    S.work_head = S.work_tail = NULL;
    S.work_bytes = 0;
    for (uint32_t i = 0; i < TUTTI_NS_SLOTS; i++) {
        atomic_store(&S.chunks_queued[i], 0);
        atomic_store(&S.plays_queued[i], 0);
    }
    S.carry_queued = false;
    int r = pthread_create(&S.worker, NULL, work_main, NULL);
    atomic_store(&S.work_running, r == 0);
    return r ? TUTTI_ENOMEM : 0;
}

/* The files' bytes queued are still stored (the cache stays whole); what
 * would play or send is dropped. */
static void work_stop(void)
{
    if (!atomic_load(&S.work_running)) return;
    pthread_mutex_lock(&S.work_mu);
    S.work_stop = true;
    pthread_cond_broadcast(&S.work_more);
    pthread_cond_broadcast(&S.work_room);
    pthread_mutex_unlock(&S.work_mu);
    pthread_join(S.worker, NULL);
    atomic_store(&S.work_running, false);
}

static int visit_buffers(void *ctx, const uint8_t *p, size_t len)
{
    const char *name = tutti__ns_command_name(p, len);
    if (name && (!strncmp(name, "/b_", 3) || !strncmp(name, "/d_", 3))) *(bool *)ctx = true;
    return 0;
}

/* Whether a packet holds a buffer or synthdef command: one that keeps its
 * place behind a read command of its part that waits for its file (a
 * /b_free of that buffer, another read into it, a /b_query). Node and bus
 * commands do not wait: a synth that plays a buffer being loaded plays what
 * is there, on every server as on one. */
static bool touches_buffers(const uint8_t *p, size_t len)
{
    bool yes = false;
    if (tutti__osc_is_bundle(p, len))
        tutti__osc_each_message(p, len, visit_buffers, &yes);
    else
        visit_buffers(&yes, p, len);
    return yes;
}

/* A user event: checked, rewritten into its part, journaled, played. */
static void deliver_user(const tutti_event *ev, tutti_time at, int how)
{
    const uint8_t *osc = ev->data + CTX_BYTES;
    size_t len = ev->len >= CTX_BYTES ? ev->len - CTX_BYTES : 0;
    uint32_t part = tutti_member_part(ev->key.origin);
    ssize_t n = -1;
    bool file = false;
    uint64_t tag = ev->len >= CTX_BYTES ? get_be64(ev->data) : 0;
    bool mine = ev->key.origin == atomic_load(&S.my_id) && !IS_TAGGED(tag);
    bool checked = ev->len >= CTX_BYTES && tutti__osc_check(osc, len) == 0;
    if (mine && checked) {
        pthread_mutex_lock(&S.buf_mu);
        tutti__state_buffers_changed(osc, len, buf_handed_over, &at);
        pthread_mutex_unlock(&S.buf_mu);
    }
    if (checked) tutti__state_buffers_changed(osc, len, mark_buf, &part);
    uint32_t makes = checked && part < 32 && S.node_budget ? nodes_made(osc, len) : 0;
    if (makes && ((S.over_budget & (1u << part)) ||
                  budget_held(part) + makes > S.node_budget)) {
        if (!(S.over_budget & (1u << part))) {
            S.over_budget |= 1u << part;
            logf_("tutti: part %" PRIu32 " would hold %" PRIu64 " nodes on the servers, over "
                  "the session's budget of %" PRIu32
                  ": its synths and groups are refused on every server until it frees some",
                  part, budget_held(part) + makes, S.node_budget);
        }
        if (atomic_fetch_add(&S.nodes_refused, 1) % 1000 == 0)
            logf_("tutti: an event of part %" PRIu32 " that makes nodes is refused on every "
                  "server: the part is over its node budget (%" PRIu32 ")",
                  part, S.node_budget);
        if (mine) queue_unmade(osc, len); /* the model forgets them (the worker) */
        journal(ev, NULL, 0);
        return;
    }
    if (makes) S.made[part] += makes;
    if (checked) {
        int f = file_event(osc, len, ev->key.origin);
        if (f == FILE_ASSET) {
            journal(ev, osc, len);
            return;
        }
        file = f == FILE_READ;
        if (f != FILE_BAD)
            n = tutti__ns_rewrite_ex(S.ns, part, osc, len, S.out, sizeof S.out,
                                     TUTTI_NS_KEEP(TUTTI_NS_LOCAL_FILE), NULL);
    }
    if (n < 0) {
        if (atomic_fetch_add(&S.invalid, 1) < 3)
            logf_("tutti: event %" PRIu64 " of member %" PRIu32
                  " is not OSC this server can play (%s); skipped on every member",
                  ev->key.seq, ev->key.origin, n == -1 ? "malformed" : tutti_strerror((int)n));
        journal(ev, NULL, 0);
        return;
    }
    if (S.replaying && how != PLAY_NOT && n > 0) note_carried(S.out, (size_t)n, part);
    /* Canonical: the rewritten packet, a bundle's timetag zeroed. */
    memcpy(S.canon, S.out, (size_t)n);
    if (n && tutti__osc_is_bundle(S.canon, (size_t)n)) put_be64(S.canon + 8, 0);
    journal(ev, S.canon, (size_t)n);
    if (!n || how == PLAY_NOT) return; /* nothing to run on this server */
    if (file && read_refused(S.out, (size_t)n)) return;
    ensure_group(part);
    tutti_net *net = atomic_load(&S.live);
    if (net) tutti_net_call(net, learn_id, NULL); /* runs at once: this is its thread */
    uint64_t reply_to = (mine ? tag : TUTTI_PROXY_CTX_DISCARD) | TUTTI_PROXY_CTX_EVENT |
                        TUTTI_PROXY_CTX_PART(part);
    if (S.trace) trace(ev, how, (size_t)n, at);
    /* The worker plays a read command whose part's files are still being
     * stored, after them, and the part's buffer and synthdef commands that
     * come while it has such a command to play, in their order; this thread
     * goes on with the rest. */
    if (part < TUTTI_NS_SLOTS && atomic_load(&S.work_running) &&
        (file ? atomic_load(&S.chunks_queued[part]) || atomic_load(&S.plays_queued[part])
              : atomic_load(&S.plays_queued[part]) && touches_buffers(S.out, (size_t)n))) {
        queue_play(S.out, (size_t)n, how, at, reply_to, part, ev, file);
        return;
    }
    if (file && !local_file(S.out, &n, S.canon)) return;
    play_packet(S.out, (size_t)n, how, at, reply_to, part, ev->key.origin, ev->key.seq, S.canon);
}

/* An event marked for a newcomer: played here when this is the newcomer and
 * still waits for that member's state; otherwise journaled as it came. */
static void deliver_replay(const tutti_event *ev, tutti_time at, uint32_t target)
{
    const uint8_t *osc = ev->data + CTX_BYTES;
    size_t len = ev->len - CTX_BYTES;
    uint32_t origin = ev->key.origin;
    if (target != atomic_load(&S.my_id) || !waiting_for(origin)) {
        journal(ev, osc, len);
        return;
    }
    tutti__osc_msg m;
    if (tutti__osc_check(osc, len) == 0 && tutti__osc_msg_parse(osc, len, &m) == 0 &&
        m.addr && !strcmp(m.addr, "/tutti/replayed")) {
        for (uint32_t i = 0; i < S.nold; i++)
            if (S.old[i].origin == origin) S.old[i].skip_below = ev->key.seq;
        stop_waiting(origin, NULL);
        logf_("tutti: member %" PRIu32 "'s part is here; playing it from now on", origin);
        return;
    }
    /* Loads (synthdefs, buffers) run as they arrive, so they are done by the
     * time the rest of the state, at its time, uses them. */
    bool early = !tutti__osc_is_bundle(osc, len) &&
                 is_async_command(tutti__ns_command_name(osc, len));
    S.replaying = true;
    deliver_user(ev, at, early ? PLAY_NOW : PLAY_AT);
    S.replaying = false;
}

/* A member's carried state (STATE_TAG), played on every server: loads at
 * once, the rest at its time; on the member's own server its solo copies go
 * at the same time. A newcomer that waits for that member's state, or has
 * it already, treats it as any of its events. */
static void deliver_state(const tutti_event *ev, tutti_time at)
{
    const uint8_t *osc = ev->data + CTX_BYTES;
    size_t len = ev->len - CTX_BYTES;
    if (waiting_for(ev->key.origin)) {
        atomic_fetch_add(&S.held, 1);
        return;
    }
    if (in_state(ev->key.origin, ev->key.seq)) {
        atomic_fetch_add(&S.held, 1);
        deliver_user(ev, at, PLAY_NOT);
        return;
    }
    if (ev->key.origin == atomic_load(&S.my_id) && S.nsolo_roots) {
        /* Their synths freed when the part's copies start; the groups freed
         * once the bundles the clients sent ahead while solo have run (they name the solo groups:
         * sclang's notes s.latency ahead), 2 s at most. */
        tutti_time until = atomic_load(&S.solo_until) + 50 * TUTTI_MS;
        if (until > at + 2 * TUTTI_S) until = at + 2 * TUTTI_S;
        empty_groups(S.solo_roots, S.nsolo_roots, at);
        free_nodes(S.solo_roots, S.nsolo_roots, until > at ? until : at);
        S.nsolo_roots = 0;
    }
    bool early = !tutti__osc_is_bundle(osc, len) &&
                 is_async_command(tutti__ns_command_name(osc, len));
    deliver_user(ev, at, early ? PLAY_NOW : PLAY_AT);
}

/* ------------------------------------------------------ server check */

/* A difference the checker found (member's thread): logged when it says
 * something new about its part, and kept for the status. */
/* A part's node count as the servers agreed on it in a decided round
 * (check.h): the node budget, the same on every member. */
static void check_nodes(void *arg, int64_t round, uint32_t slot, uint32_t nodes)
{
    (void)arg;
    if (slot >= 32) return;
    S.agreed[slot] = nodes;
    S.agreed_round[slot] = round;
    if (!S.node_budget) return;
    uint32_t bit = 1u << slot;
    uint64_t held = budget_held(slot);
    if (!(S.over_budget & bit) && held > S.node_budget) {
        S.over_budget |= bit;
        logf_("tutti: part %" PRIu32 " holds %" PRIu64 " nodes on the servers (round %" PRId64
              "), over the session's budget of %" PRIu32
              ": its synths and groups are refused on every server until it frees some",
              slot, held, round, S.node_budget);
    } else if ((S.over_budget & bit) && held <= S.node_budget / 10 * 9) {
        S.over_budget &= ~bit;
        logf_("tutti: part %" PRIu32 " is back under its node budget (%" PRIu64 " nodes)", slot,
              held);
    }
}

static void check_report(void *arg, const tutti__check_diff *d)
{
    (void)arg; /* called by the checker, under check_mu */
    snprintf(S.check_last, sizeof S.check_last, "%s", d->text);
    /* the text without its round: the same difference round after round
     * is logged once */
    const char *what = strchr(d->text, ',');
    what = what ? what : d->text;
    char *last = S.check_logged[d->slot % TUTTI_NS_SLOTS][d->fails];
    if (!strcmp(last, what) && !d->fails) return;
    snprintf(last, sizeof S.check_logged[0][0], "%s", what);
    logf_("tutti: server check: %s", d->text);
}

/* Round k of the server check is asked at the first event stamped after
 * T_k: a /g_queryTree of the whole server timed at T_k (never before what
 * was handed over already), so it runs after every event at or before T_k
 * and before any later one, on every server. Only once this member holds
 * nothing back, and has played on for CHECK_SETTLE.
 *
 * The query must run at T_k itself: nodes end by themselves (a note's
 * envelope), so a tree asked for later than T_k on one server is not the
 * tree at T_k, and a bundle handed over with little time to spare is late
 * (scsynth runs it when it comes, and prints `late`). So a round whose T_k
 * is not at least a lead ahead when its trigger comes is skipped: no query,
 * no digest (the checker compares the servers that sent one). That happens
 * when no event came between T_k and the trigger (a member's first round, a
 * silence without digests) or when this member is behind; the digests,
 * stamped just after the next T, are each round's trigger otherwise, and
 * come with the close, L - c ahead. The lead: L / 4, within [DELIVER_LEAD,
 * CHECK_LEAD_MAX] (an event has DELIVER_LEAD; scsynth under JACK needs its
 * period and its output latency, 16 ms at 256 frames). */
static void learn_horizon(void *arg, void *engine)
{
    tutti_member_status st;
    tutti_member_status_get(engine, &st);
    *(tutti_time *)arg = st.horizon;
}

static void check_round(tutti_time t, tutti_time now_s)
{
    if (t <= S.check_next) return;
    int64_t k = (t - 1) / TUTTI_CHECK_PERIOD;
    tutti_time T = k * TUTTI_CHECK_PERIOD;
    S.check_next = T + TUTTI_CHECK_PERIOD;
    if (!S.journaling || !atomic_load(&S.my_id) || wall_now() < S.check_after) return;
    tutti_time horizon = 0, lead;
    tutti_net *net = atomic_load(&S.live);
    if (net) tutti_net_call(net, learn_horizon, &horizon); /* at once: its thread */
    lead = horizon / 4;
    if (lead > CHECK_LEAD_MAX) lead = CHECK_LEAD_MAX;
    if (lead < DELIVER_LEAD) lead = DELIVER_LEAD;
    tutti_time now = wall_now(), at = now + (T - now_s);
    if (at < S.last_at) at = S.last_at;
    if (at < now + lead) {
        atomic_fetch_add(&S.check_skipped, 1);
        /* no digest, but the next round's trigger all the same, in time: a
         * marker no digest reader takes for one (without it, a member's
         * first round, whose trigger is whatever event comes, would be
         * skipped, and the next, and so on while the music leaves no event
         * near a round's time) */
        uint8_t buf[CTX_BYTES + 64];
        char text[48];
        int tl = snprintf(text, sizeof text, "skipped %" PRId64 "\n", k);
        put_be64(buf, CHECK_TAG);
        size_t n = tutti__osc_write(buf + CTX_BYTES, sizeof buf - CTX_BYTES, "/tutti/check",
                                    "b", text, (size_t)tl);
        if (net && n)
            tutti_net_submit(net, (k + 1) * TUTTI_CHECK_PERIOD + 1, buf,
                             (uint32_t)(n + CTX_BYTES));
        return;
    }
    S.last_at = at;
    uint8_t msg[48], b[80];
    size_t n = tutti__osc_write(msg, sizeof msg, "/g_queryTree", "ii", 0, 0);
    size_t m = timed(msg, n, at, b);
    inject(b, m, TUTTI_PROXY_CTX_CHECK | ((uint64_t)k & ((1ull << 48) - 1)));
}

/* A digest delivered (any member's, this one's included): journaled as it
 * came and compared. */
static void deliver_digest(const tutti_event *ev)
{
    const uint8_t *osc = ev->data + CTX_BYTES;
    size_t len = ev->len - CTX_BYTES;
    journal(ev, osc, len);
    tutti__digest d;
    if (tutti__digest_decode(&d, osc, len, ev->key.origin)) return;
    pthread_mutex_lock(&S.check_mu);
    if (S.checker) tutti__checker_digest(S.checker, &d);
    pthread_mutex_unlock(&S.check_mu);
    tutti__digest_clear(&d);
}

void tutti__session_event_reply(uint32_t part, const uint8_t *p, size_t len)
{
    if (len >= 8 && !memcmp(p, "/fail\0\0\0", 8)) tutti__digest_fail(&S.fails, part, p, len);
}

void tutti__session_check_reply(int64_t round, const uint8_t *p, size_t len)
{
    static tutti__digest d;
    static uint8_t buf[MAX_EVENT];
    uint32_t me = atomic_load(&S.my_id);
    pthread_mutex_lock(&S.mu);
    tutti__digest_init(&d, round, me ? tutti_member_part(me) : 0, S.name);
    pthread_mutex_unlock(&S.mu);
    if (tutti__digest_tree(&d, p, len)) {
        tutti__digest_clear(&d);
        return;
    }
    tutti__digest_add_fails(&d, &S.fails);
    tutti__digest_clear(&S.fails);
    tutti_time now = wall_now();
    pthread_mutex_lock(&S.check_mu);
    uint32_t kept = 0;
    for (uint32_t i = 0; i < S.ncarried_nodes; i++) {
        if (S.carried_nodes[i].until < now) continue;
        S.carried_nodes[kept++] = S.carried_nodes[i];
        tutti__digest_carried(&d, S.carried_nodes[i].slot, S.carried_nodes[i].id,
                              S.carried_nodes[i].term);
    }
    S.ncarried_nodes = kept;
    pthread_mutex_unlock(&S.check_mu);
    put_be64(buf, CHECK_TAG);
    size_t n = tutti__digest_encode(&d, buf + CTX_BYTES, sizeof buf - CTX_BYTES);
    tutti__digest_clear(&d);
    if (!n) return;
    /* stamped just after the next round's time: the next round's trigger */
    tutti_time t = (round + 1) * TUTTI_CHECK_PERIOD + 1;
    pthread_mutex_lock(&S.mu);
    if (S.net && me) tutti_net_submit(S.net, t, buf, (uint32_t)(n + CTX_BYTES));
    pthread_mutex_unlock(&S.mu);
}

static void deliver_one(const tutti_event *ev, tutti_time now_session, bool late);

static void deliver(void *ctx, const tutti_event *ev, tutti_time now_session, bool late)
{
    (void)ctx;
    tutti_time t0 = tutti_net_now();
    atomic_store(&S.in_deliver, true);
    deliver_one(ev, now_session, late);
    atomic_store(&S.in_deliver, false);
    tutti_time took = tutti_net_now() - t0;
    if (took > atomic_load(&S.turn_max_ns)) atomic_store(&S.turn_max_ns, took);
}

static void deliver_one(const tutti_event *ev, tutti_time now_session, bool late)
{
    if (atomic_load(&S.leaving)) return; /* this server plays solo now */
    if (ev->key.origin == atomic_load(&S.my_id) && ev->len >= CTX_BYTES &&
        !IS_TAGGED(get_be64(ev->data)))
        flight_delivered(ev->data, ev->len);
    if (!atomic_load(&S.carried)) queue_carry();
    atomic_fetch_add(&S.delivered, 1);
    if (late) atomic_fetch_add(&S.late, 1);
    if (!S.started) start_holding();
    if (!S.journaling) expire_waits();
    /* This server's wall clock at the event's session time; never before the
     * previous event's, so scsynth keeps the session's order even while the
     * clock's estimate moves (it does most in the first seconds after a join:
     * two events in a row came out 8 ms the wrong way round). */
    /* Session time now, read again for every event: the member hands a whole
     * batch over with the time its loop woke at, and what is done for one
     * event of it (a newcomer's state sent, a shared file stored) can take
     * tens of milliseconds, which would move every later event of the batch
     * that much later on this server alone. */
    tutti_time now_s = now_session, fresh;
    tutti_net *net = atomic_load(&S.live);
    if (net && tutti_net_session_now(net, &fresh) == 0) now_s = fresh;
    if (now_s - now_session > atomic_load(&S.wait_max_ns))
        atomic_store(&S.wait_max_ns, now_s - now_session);
    check_round(ev->key.t, now_s);
    budget_time(ev->key.t);
    pthread_mutex_lock(&S.check_mu);
    if (S.checker) tutti__checker_time(S.checker, ev->key.t);
    pthread_mutex_unlock(&S.check_mu);
    tutti_time at = wall_now() + (ev->key.t - now_s);
    if (at < S.last_at) at = S.last_at;
    S.last_at = at;
    if (ev->kind == TUTTI_EV_COMMAND) {
        on_command(ev, at);
        return;
    }
    uint64_t tag = ev->len >= CTX_BYTES ? get_be64(ev->data) : 0;
    if ((tag & REPLAY_MASK) == CHECK_TAG) {
        deliver_digest(ev);
    } else if ((tag & REPLAY_MASK) == REPLAY_TAG) {
        deliver_replay(ev, at, (uint32_t)tag);
    } else if ((tag & REPLAY_MASK) == STATE_TAG && ev->len > CTX_BYTES) {
        deliver_state(ev, at);
    } else if (waiting_for(ev->key.origin)) {
        atomic_fetch_add(&S.held, 1); /* its state, still to come, has this */
    } else if (in_state(ev->key.origin, ev->key.seq)) {
        atomic_fetch_add(&S.held, 1); /* its state, played already, had this */
        deliver_user(ev, at, PLAY_NOT);
    } else {
        deliver_user(ev, at, PLAY_AT);
    }
    uint32_t part = tutti_member_part(ev->key.origin);
    if (part < TUTTI_NS_SLOTS && S.gone[part] == ev->key.origin &&
        stream_left(ev->key.origin) <= 1) { /* this one was its last */
        free_part(part, ev->key.origin, at);
        S.gone[part] = 0;
    }
}

/* What the member engine tells its player: every notice also goes to the
 * engine's log, which the network layer hands to net_log below; printing it
 * here too wrote each one twice into scsynth's log. */
static void notice(void *ctx, int level, const char *msg)
{
    (void)ctx, (void)level, (void)msg;
}

static void net_log(void *ctx, int level, const char *msg)
{
    (void)ctx;
    if (level < TUTTI_LOG_INFO) return;
    if (!strncmp(msg, "tutti: ", 7)) msg += 7;
    logf_("tutti: %s%s", level >= TUTTI_LOG_WARN ? "warning: " : "", msg);
}

/* ------------------------------------------------------------ replies */

/* The proxy thread's own view of the session: reset for a new member id
 * (earlier recordings are solo ones; a new part may be told again). */
static void proxy_session(uint32_t id)
{
    if (S.rec_id == id) return;
    tutti__record_clear(&S.rec);
    S.outsiders_told = 0;
    S.rec_id = id;
}

/* A node the server made in a part's ids outside that part's group, which
 * no session event does: a client of scsynth's own port uses the part's ids
 * (a sclang Server object there that did not ask for client id 31), and its
 * nodes will collide with the part's here. Said once per part in the log;
 * the server check reports what differs. Not: the part's group itself, the
 * groups k * 2^26 + 1 sclang's initTree makes in the root (never a part's
 * node, tutti__ns_node_swap), this member's recording synths (record.h). */
static void outsider_node(const uint8_t *p, size_t len, uint32_t id)
{
    proxy_session(id);
    tutti__osc_msg m;
    if (tutti__osc_msg_parse(p, len, &m) || !m.addr || strcmp(m.addr, "/n_go") ||
        !m.tags || strncmp(m.tags, "ii", 2))
        return;
    int32_t node = (int32_t)tutti__osc_rd32(m.args);
    int32_t parent = (int32_t)tutti__osc_rd32(m.args + 4);
    int32_t low = node & (TUTTI_NS_NODE_SPAN - 1);
    if (node < TUTTI_NS_NODE_SPAN || low == 0 || low == 1) return;
    uint32_t slot = (uint32_t)node >> TUTTI_NS_NODE_BITS;
    if (slot >= TUTTI_NS_SLOTS || (S.outsiders_told & (1u << slot)) ||
        !(atomic_load(&S.groups_made) & (1u << slot)))
        return;
    if (parent >= 0 && (uint32_t)parent >> TUTTI_NS_NODE_BITS == slot) return;
    uint32_t s;
    int32_t own;
    if (slot == tutti_member_part(id) && tutti__ns_node_inv(node, &s, &own) &&
        tutti__record_has_node(&S.rec, own))
        return;
    S.outsiders_told |= 1u << slot;
    logf_("tutti: node %" PRId32 " (part %" PRIu32 "'s ids) was made in group %" PRId32
          ", outside the part: a client of scsynth's own port uses that part's ids, and "
          "this server will differ (a Server object there takes client id 31: "
          "docs/supercollider.md)",
          node, slot, parent);
}

ssize_t tutti__session_reply(const uint8_t *p, size_t len, uint8_t *out, size_t cap)
{
    uint32_t id = atomic_load(&S.my_id);
    if (!atomic_load(&S.carried) || !atomic_load(&S.active) || !id) {
        tutti__osc_msg m;
        bool parsed = tutti__osc_msg_parse(p, len, &m) == 0 && m.addr && m.tags;
        if (parsed && S.left_part && S.ns && !strncmp(m.addr, "/n_", 3) && m.tags[0] == 'i' &&
            wall_now() < S.left_until && !atomic_load(&S.in_deliver)) {
            /* just after a leave: a node of the part that was this member's
             * (its last events, handed over before the leave, and the end
             * of its group) is told in the clients' ids, as in the session;
             * another part's is not theirs (the member's thread hands
             * nothing over once `leaving` is set and its delivery under way
             * is done: the namespaces are this thread's) */
            int32_t node = (int32_t)tutti__osc_rd32(m.args);
            uint32_t owner = node >= 0 ? (uint32_t)(node / TUTTI_NS_NODE_SPAN) : 0;
            if (owner == S.left_part) return tutti__ns_reply(S.ns, owner, p, len, out, cap);
            if (owner || (node >= TUTTI_GUARD_NODE(0, 0) &&
                          node <= TUTTI_GUARD_NODE(TUTTI_GUARD_SLOTS - 1, 1)))
                return 0; /* or a part's guard (guard.h) */
        }
        /* solo: the model forgets synths that ended (in the server's ids,
         * which are the clients' in solo) */
        if (parsed && !strcmp(m.addr, "/n_end") && m.tags[0] == 'i') {
            pthread_mutex_lock(&S.state_mu);
            if (S.state && !atomic_load(&S.carried))
                tutti__state_node_end(S.state, (int32_t)tutti__osc_rd32(m.args));
            pthread_mutex_unlock(&S.state_mu);
        }
        return -1;
    }
    outsider_node(p, len, id);
    ssize_t n = tutti__ns_reply(S.ns, tutti_member_part(id), p, len, out, cap);
    if (n == 0) atomic_fetch_add(&S.discarded_replies, 1);
    tutti__osc_msg m;
    if (n <= 0 || tutti__osc_msg_parse(out, (size_t)n, &m) || !m.addr || !m.tags ||
        m.tags[0] != 'i')
        return n;
    int32_t node = (int32_t)tutti__osc_rd32(m.args);
    if (!strcmp(m.addr, "/n_end")) {
        pthread_mutex_lock(&S.state_mu);
        if (S.state) tutti__state_node_end(S.state, node);
        pthread_mutex_unlock(&S.state_mu);
    } else if (!strcmp(m.addr, "/n_go")) {
        for (uint32_t i = 0; i < S.nannounced; i++)
            if (S.announced[i] == node) { /* its clients heard of it already */
                memmove(S.announced + i, S.announced + i + 1,
                        (--S.nannounced - i) * sizeof S.announced[0]);
                return 0;
            }
    }
    return n;
}

void tutti__session_announce(int32_t node)
{
    /* as the server's /n_go will name it to the clients: a part holds 2^26
     * ids, so sclang's default groups of other client ids (k * 2^26 + 1) are
     * all the part's group 1, and announced once */
    node &= TUTTI_NS_NODE_SPAN - 1;
    for (uint32_t i = 0; i < S.nannounced; i++)
        if (S.announced[i] == node) return;
    if (S.nannounced == sizeof S.announced / sizeof S.announced[0]) {
        memmove(S.announced, S.announced + 1, sizeof S.announced - sizeof S.announced[0]);
        S.nannounced--;
    }
    S.announced[S.nannounced++] = node;
}

/* ---------------------------------------------------- join, leave, stop */

/* Close the journal on the member's thread, after the last delivery. */
static void close_journal(void *arg, void *engine)
{
    (void)arg, (void)engine;
    if (!S.journal_open) return;
    if (cli_journal_close(&S.journal))
        logf_("tutti: the journal %s is incomplete (a write failed)", S.journal_path);
    S.journal_open = false;
}

typedef struct call_view {
    tutti__session_view *v;
} call_view;

static void do_view(void *arg, void *engine);

/* A member that left: its journal closes, the file worker stops, its
 * goodbye gets a moment to reach the wire, then the node stops, all on a
 * thread of its own, so the proxy's goes on playing solo whatever the
 * member's threads are doing. */
static const char *const reap_steps[] = {"closing the journal", "stopping the file worker",
                                          "saying goodbye", "stopping the node"};

static void *reap_main(void *arg)
{
    tutti_net *n = arg;
    atomic_store(&S.reap_step, 0);
    tutti_net_call(n, close_journal, NULL);
    atomic_store(&S.reap_step, 1);
    work_stop(); /* before the member goes: a state being sent uses it */
    atomic_store(&S.reap_step, 2);
    tutti_net_leave(n, 500 * TUTTI_MS);
    atomic_store(&S.reap_step, 3);
    tutti_net_stop(n);
    atomic_store(&S.reaped, true);
    return NULL;
}

/* The last leave's member has stopped (false: it has not, within `wait`;
 * the thread is left to finish). */
static bool reap_wait(tutti_time wait)
{
    if (!S.reaping) return true;
    tutti_time end = wall_now() + wait;
    while (!atomic_load(&S.reaped) && wall_now() < end) {
        struct timespec ts = {0, 2 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    if (!atomic_load(&S.reaped)) return false;
    pthread_join(S.reaper, NULL);
    S.reaping = false;
    return true;
}

/* Stops being a member. From its return on, the member's thread hands
 * nothing more to this server. With `aside`, the node's goodbye and stop
 * finish on a thread of their own (a leave: the clients play solo at once);
 * otherwise here. */
static void stop_member(bool aside)
{
    if (!reap_wait(REAP_WAIT)) /* unloading: scsynth quits all the same */
        logf_("tutti: warning: the member that left before has not stopped within %d s "
              "(still %s)",
              (int)(REAP_WAIT / TUTTI_S), reap_steps[atomic_load(&S.reap_step) & 3]);
    /* The session's timeline goes on as the local grid, on this machine's
     * wall clock. */
    tutti__session_view *v = malloc(sizeof *v);
    if (v) {
        tutti__session_view_get(v);
        if (v->mode == TUTTI__MODE_SESSION) {
            for (uint32_t i = 0; i < v->ntl; i++) {
                S.solo_tl[i] = v->tl[i];
                S.solo_tl[i].t0 -= v->offset_ns;
            }
            S.solo_ntl = v->ntl;
            S.solo_seq = v->seq;
        }
        free(v);
    }
    pthread_mutex_lock(&S.mu);
    tutti_net *n = S.net;
    S.net = NULL;
    pthread_mutex_unlock(&S.mu);
    tutti__linkhost_detach(); /* the Link bridge steps the member: it goes first */
    atomic_store(&S.live, NULL);
    atomic_store(&S.active, false);
    changed();
    if (!n) return;
    if (aside) {
        /* No event is handed over after this: one that was is at S.last_at
         * or before (a delivery under way is waited for, briefly; every
         * later one sees `leaving`). */
        atomic_store(&S.leaving, true);
        tutti_time end = wall_now() + 500 * TUTTI_MS;
        while (atomic_load(&S.in_deliver) && wall_now() < end) {
            struct timespec ts = {0, 200 * 1000};
            nanosleep(&ts, NULL);
        }
        if (atomic_load(&S.in_deliver))
            logf_("tutti: warning: the member's thread did not finish handing an event over "
                  "within 500 ms of the leave");
        atomic_store(&S.reaped, false);
        if (pthread_create(&S.reaper, NULL, reap_main, n) == 0) {
            S.reaping = true;
        } else {
            reap_main(n);
        }
    } else {
        tutti_net_leave(n, 500 * TUTTI_MS);
        tutti_net_call(n, close_journal, NULL);
        work_stop();
        tutti_net_stop(n);
    }
    atomic_store(&S.my_id, 0);
    pthread_mutex_lock(&S.check_mu);
    tutti__checker_free(S.checker);
    S.checker = NULL;
    pthread_mutex_unlock(&S.check_mu);
    pthread_mutex_lock(&S.buf_mu);
    memset(S.buf_pending, 0, sizeof S.buf_pending);
    memset(S.buf_at, 0, sizeof S.buf_at);
    pthread_mutex_unlock(&S.buf_mu);
    logf_("tutti: left the session; the proxy is solo again");
}

/* The credential of a join (session.h) into `mc`, checked before anything
 * is left: an invitation given as its text or as a file holding it, a
 * passphrase, a pinned hub key. What `mc` points to lives in `inv` and `pin`
 * (tutti_member_create copies it). */
static int join_credential(const tutti__session_opts *o, tutti_invite *inv,
                           uint8_t pin[32], tutti_member_config *mc, char *why,
                           size_t cap)
{
    if (o->invite && *o->invite) {
        const char *bad = NULL;
        if (!strncmp(o->invite, "tutti-invite-1", 14)) {
            if (tutti__invite_parse(o->invite, strlen(o->invite), inv, &bad)) {
                snprintf(why, cap, "the invitation: %s", bad);
                return TUTTI_EINVAL;
            }
        } else {
            char line[512] = "";
            FILE *f = fopen(o->invite, "r");
            bool got = f && fgets(line, sizeof line, f);
            if (f) fclose(f);
            int rc =
                got ? tutti__invite_parse(line, strcspn(line, "\r\n"), inv, &bad) : -1;
            tutti__auth_wipe(line, sizeof line);
            if (rc) {
                snprintf(why, cap, "the invitation %.200s: %s", o->invite,
                         got ? bad : "cannot read it (a path on the server's machine)");
                return TUTTI_EINVAL;
            }
        }
        mc->invite = inv;
    }
    if (o->passphrase && *o->passphrase) mc->passphrase = o->passphrase;
    if (o->hub_key && *o->hub_key) {
        if (!tutti__hex32(o->hub_key, strlen(o->hub_key), pin)) {
            snprintf(why, cap, "the hub key is 64 hex digits");
            return TUTTI_EINVAL;
        }
        mc->hub_key = pin;
    }
    return 0;
}

int tutti__session_join(const tutti__session_opts *o, char *why, size_t cap)
{
    if (!o->hub || !*o->hub || !o->name || !*o->name) {
        snprintf(why, cap, "join needs a hub URL and a member name");
        return TUTTI_EINVAL;
    }
    const char *bad_url;
    if (tutti__url_dial_check(o->hub, &bad_url)) { /* before leaving a session */
        snprintf(why, cap, "the hub URL \"%.200s\": %s", o->hub, bad_url);
        return TUTTI_EINVAL;
    }
    tutti_member_config mc;
    tutti_member_config_init(&mc);
    tutti_invite inv;
    uint8_t pin[32];
    int rc = join_credential(o, &inv, pin, &mc, why, cap);
    if (rc) return rc;
    int role = TUTTI_ROLE_PERFORMER;
    if (o->role && *o->role) {
        for (role = 0; role <= TUTTI_ROLE_ADMIN; role++)
            if (!strcmp(o->role, tutti_role_name(role))) break;
        if (role > TUTTI_ROLE_ADMIN) {
            snprintf(why, cap,
                     "no role \"%.40s\" (performer, listener, conductor, admin)",
                     o->role);
            return TUTTI_EINVAL;
        }
    }
    if (!reap_wait(REAP_WAIT)) {
        snprintf(why, cap,
                 "the member that left before has not stopped yet (still %s); try again "
                 "in a moment",
                 reap_steps[atomic_load(&S.reap_step) & 3]);
        return TUTTI_ESTATE;
    }
    stop_member(false);
    atomic_store(&S.leaving, false);
    flight_take(NULL, NULL, 0);

    tutti_proxy_server srv = {0};
    if (S.host.server) S.host.server(S.host.host, &srv);
    tutti__ns_config nc;
    tutti__ns_config_init(&nc);
    nc.hw_audio_buses = srv.inputs + srv.outputs;
    if (srv.buffers && tutti__ns_check_server(&nc, srv.buffers, srv.audio_buses,
                                              srv.control_buses, why, cap)) {
        tutti__auth_wipe(&inv, sizeof inv);
        return TUTTI_EINVAL;
    }
    /* an earlier join's (kept for the replies of its last events after its
     * leave; its member's threads are gone, stop_member above) */
    tutti__ns_destroy(S.ns);
    S.ns = NULL;
    rc = tutti__ns_create(&S.ns, &nc);
    if (rc) {
        snprintf(why, cap, "%s", tutti_strerror(rc));
        tutti__auth_wipe(&inv, sizeof inv);
        return rc;
    }
    const char *rules = getenv("TUTTI_NS_RULES");
    if (rules && *rules && tutti__ns_rules_parse(S.ns, rules))
        logf_("tutti: TUTTI_NS_RULES=\"%s\" is not a list of name:kind pairs; ignored", rules);
    S.groups_made = 1; /* part 0 is the server's own */
    uint8_t def[512];
    size_t dn = tutti__guard_def_recv(def, sizeof def);
    if (!dn || !inject(def, dn, TUTTI_PROXY_CTX_DISCARD))
        logf_("tutti: warning: the guard's synthdef did not reach the server: the parts "
              "play without their safety limiter");
    S.guard_ceiling = TUTTI_GUARD_CEILING;
    S.settings_read = false;
    S.node_budget = NODE_BUDGET;
    atomic_store(&S.file_room, FILE_ROOM(FILES_KIB_DEFAULT));
    S.over_budget = 0;
    atomic_store(&S.nodes_refused, 0);
    memset(S.made, 0, sizeof S.made);
    memset(S.made_at, 0, sizeof S.made_at);
    for (int r = 0; r < BUDGET_ROUNDS; r++) S.made_round[r] = -1;
    S.snapped = -1;
    for (int p = 0; p < TUTTI_NS_SLOTS; p++) S.agreed_round[p] = -1;
    atomic_store(&S.turn_max_ns, 0);
    atomic_store(&S.wait_max_ns, 0);
    atomic_store(&S.lead_min_ns, INT64_MAX);
    memset(S.asset_bytes, 0, sizeof S.asset_bytes);
    memset(S.asset_open, 0, sizeof S.asset_open);
    S.nrefused_assets = 0;
    atomic_store(&S.assets_refused, 0);
    int stale = tutti__asset_drop_partials(0, 3600);
    if (stale)
        logf_("tutti: %d partial shared files older than an hour removed from the cache",
              stale);
    memset(S.part_bufs, 0, sizeof S.part_bufs);
    S.nsolo_roots = 0;
    S.started = S.journaling = false;
    S.last_at = 0;
    S.trace = getenv("TUTTI_TRACE") && *getenv("TUTTI_TRACE") == '1';
    S.nold = 0;
    S.nannounced = 0;
    S.left_part = 0;
    S.check_next = 0;
    S.check_after = 0;
    atomic_store(&S.check_skipped, 0);
    memset(S.check_logged, 0, sizeof S.check_logged);
    S.ncarried_nodes = 0;
    tutti__digest_clear(&S.fails);
    pthread_mutex_lock(&S.check_mu);
    S.check_last[0] = 0;
    tutti__checker_free(S.checker);
    S.checker = tutti__checker_new(check_report, NULL);
    if (S.checker) tutti__checker_on_nodes(S.checker, check_nodes, NULL);
    pthread_mutex_unlock(&S.check_mu);
    /* The model is kept: what the clients made while solo is carried into
     * the part once joined (carry). Solo nodes in other parts' id ranges
     * (sclang makes a default group k * 2^26 + 1 for every client id k) go
     * now: those ids are the parts' on every server. */
    pthread_mutex_lock(&S.state_mu);
    if (!S.state && tutti__state_create(&S.state)) logf_("tutti: no memory for the part's state");
    atomic_store(&S.carried, false);
    if (S.state) {
        int32_t roots[MAX_ROOTS], high[MAX_ROOTS];
        size_t n = tutti__state_roots(S.state, roots, MAX_ROOTS), k = 0;
        for (size_t i = 0; i < n && i < MAX_ROOTS; i++)
            if (roots[i] >= TUTTI_NS_NODE_SPAN) high[k++] = roots[i];
        free_nodes(high, k, 0);
    }
    pthread_mutex_unlock(&S.state_mu);
    memset(S.gone, 0, sizeof S.gone);
    S.journal_open = false;
    snprintf(S.journal_path, sizeof S.journal_path, "%s", o->journal ? o->journal : "");
    if (S.journal_path[0]) {
        /* A journal of an earlier join is kept: this one goes beside it,
         * PATH.2, PATH.3, ... (the status names the file). */
        struct stat jst;
        for (int k = 2; k < 1000 && stat(S.journal_path, &jst) == 0 && jst.st_size > 0; k++)
            snprintf(S.journal_path, sizeof S.journal_path, "%s.%d", o->journal, k);
    }
    if (S.journal_path[0]) {
        if (cli_journal_open(&S.journal, S.journal_path)) {
            snprintf(why, cap, "cannot write the journal %s", S.journal_path);
            tutti__auth_wipe(&inv, sizeof inv);
            tutti__ns_destroy(S.ns);
            S.ns = NULL;
            return TUTTI_EINVAL;
        }
        S.journal_open = true;
    }

    mc.session = o->session && *o->session ? o->session : "tutti";
    mc.name = o->name;
    mc.role = role;
    mc.deliver_lead = DELIVER_LEAD; /* scsynth needs the bundle before its time */
    tutti_member_callbacks cb = {.ctx = NULL, .deliver = deliver, .notice = notice};
    tutti_net_config ncfg;
    tutti_net_config_init(&ncfg);
    ncfg.name = o->name;
    ncfg.log = net_log;
    tutti_net *n = NULL;
    atomic_store(&S.work_max_ns, 0);
    rc = work_start();
    if (!rc) rc = tutti_net_member_start(&n, &mc, &cb, o->hub, &ncfg);
    tutti__auth_wipe(&inv, sizeof inv); /* the member has its copy */
    if (rc) {
        work_stop();
        snprintf(why, cap, "cannot start the member for %s: %s", o->hub, tutti_strerror(rc));
        if (S.journal_open) cli_journal_close(&S.journal);
        S.journal_open = false;
        tutti__ns_destroy(S.ns);
        S.ns = NULL;
        return rc;
    }
    pthread_mutex_lock(&S.mu);
    S.net = n;
    atomic_store(&S.live, n);
    snprintf(S.hub, sizeof S.hub, "%s", o->hub);
    snprintf(S.session, sizeof S.session, "%s", mc.session);
    snprintf(S.name, sizeof S.name, "%s", o->name);
    pthread_mutex_unlock(&S.mu);
    atomic_store(&S.active, true);
    changed();
    logf_("tutti: joining session \"%s\" at %s as %s%s", mc.session, o->hub, o->name,
          mc.invite       ? " with an invitation"
          : mc.passphrase ? " with the passphrase"
                          : " (no credential: an open hub only)");
    tutti__linkhost_attach(n); /* the LAN's Link bridge, if that is on (linkhost.h) */
    return 0;
}

typedef struct replay_local {
    uint8_t *bundle;
    size_t blen;
    uint32_t loads;
} replay_local;

static bool is_group_command(const char *name)
{
    return name && (!strcmp(name, "/g_new") || !strcmp(name, "/p_new"));
}

/* The model's groups, every one, onto this server at once (bundles, now,
 * in the model's order): a client's own messages right after the leave
 * (Sonic Pi's with_fx makes its synth in its FX group, unbundled; sclang's
 * bundles sent ahead name its default group) find their groups there, not
 * gone until the loads are done. */
static int restore_group(void *arg, const uint8_t *p, size_t len)
{
    replay_local *r = arg;
    if (!is_group_command(tutti__ns_command_name(p, len))) return 0;
    if (r->blen + 4 + len > REPLAY_BUNDLE) {
        inject(r->bundle, r->blen, TUTTI_PROXY_CTX_DISCARD);
        r->blen = 16;
    }
    if (16 + 4 + len > REPLAY_BUNDLE) return 0;
    tutti__osc_wr32(r->bundle + r->blen, (uint32_t)len);
    memcpy(r->bundle + r->blen + 4, p, len);
    r->blen += 4 + len;
    return 0;
}

/* A message onto this server as its clients' own: a read command that
 * names a shared file by its token reads it from this server's cache. */
static void inject_own(const uint8_t *p, size_t len, uint64_t ctx)
{
    const uint8_t *done;
    size_t dl;
    const char *name = tutti__ns_command_name(p, len);
    const char *token = is_read_command(name) ? first_string(p, len, &done, &dl) : NULL;
    char path[4200];
    if (token && tutti__asset_token_parse(token, NULL) &&
        tutti__asset_path(token, path, sizeof path) == 0) {
        uint8_t *msg = malloc(MAX_EVENT);
        size_t m = msg ? tutti__osc_replace_string(p, len, path, msg, MAX_EVENT) : 0;
        if (m) inject(msg, m, ctx);
        free(msg);
        return;
    }
    inject(p, len, ctx);
}

/* One message of the model onto this server: a load at once (a file by its
 * token read from this server's cache), the rest into the bundle (but the
 * groups: restore_group made them already). */
static int restore_message(void *arg, const uint8_t *p, size_t len)
{
    replay_local *r = arg;
    const char *name = tutti__ns_command_name(p, len);
    if (is_group_command(name)) return 0; /* made already (restore_group) */
    if (is_async_command(name)) {
        inject_own(p, len, TUTTI_PROXY_CTX_DISCARD);
        r->loads++;
        return 0;
    }
    if (r->blen + 4 + len > REPLAY_BUNDLE) {
        if (r->blen > 16) {
            put_be64(r->bundle + 8, r->loads ? tutti_time_to_ntp(wall_now() + 100 * TUTTI_MS) : 1);
            inject(r->bundle, r->blen, TUTTI_PROXY_CTX_DISCARD);
        }
        r->blen = 16;
    }
    if (16 + 4 + len > REPLAY_BUNDLE) return 0;
    tutti__osc_wr32(r->bundle + r->blen, (uint32_t)len);
    memcpy(r->bundle + r->blen + 4, p, len);
    r->blen += 4 + len;
    return 0;
}

/* Back to solo: the session's parts leave this server (their groups, and
 * with them every node they made), this member's own included. */
static void clear_parts(tutti_time at)
{
    for (uint32_t part = 1; part < TUTTI_NS_SLOTS; part++)
        drop_part(part, at);
    S.groups_made = 1;
    /* and the guards (errors off: a slot never used has none) */
    uint8_t b[16 + 32 * (4 + 32)], msg[32];
    memcpy(b, "#bundle", 8);
    put_be64(b + 8, at ? tutti_time_to_ntp(at) : 1);
    size_t k = 16, m = tutti__osc_write(msg, sizeof msg, "/error", "i", -1);
    tutti__osc_wr32(b + k, (uint32_t)m);
    memcpy(b + k + 4, msg, m);
    k += 4 + m;
    for (uint32_t part = 1; part < TUTTI_NS_SLOTS && part < TUTTI_GUARD_SLOTS; part++) {
        m = tutti__osc_write(msg, sizeof msg, "/n_free", "ii", TUTTI_GUARD_NODE(part, 0),
                             TUTTI_GUARD_NODE(part, 1));
        tutti__osc_wr32(b + k, (uint32_t)m);
        memcpy(b + k + 4, msg, m);
        k += 4 + m;
    }
    inject(b, k, TUTTI_PROXY_CTX_DISCARD);
}

/* Back to solo with everything the part had: the model, in the clients'
 * own numbers and names, made again on this server (proxy's thread, after
 * the member stopped). Solo copies still here (the part's state had not
 * played yet) are freed first; loads run at once, the rest a little later,
 * when they are done. */
static void restore_solo(void)
{
    pthread_mutex_lock(&S.state_mu);
    if (!S.state || !atomic_load(&S.carried)) {
        atomic_store(&S.carried, false);
        pthread_mutex_unlock(&S.state_mu);
        return;
    }
    int32_t roots[MAX_ROOTS];
    size_t n = tutti__state_roots(S.state, roots, MAX_ROOTS);
    free_nodes(roots, n < MAX_ROOTS ? n : MAX_ROOTS, 0);
    uint8_t *b = malloc(REPLAY_BUNDLE);
    replay_local rl = {b, 16, 0};
    if (b) {
        memcpy(b, "#bundle", 8);
        put_be64(b + 8, 1);
        tutti__state_each(S.state, restore_group, &rl);
        if (rl.blen > 16) inject(b, rl.blen, TUTTI_PROXY_CTX_DISCARD);
        rl.blen = 16;
        tutti__state_each(S.state, restore_message, &rl);
        put_be64(b + 8, rl.loads ? tutti_time_to_ntp(wall_now() + 100 * TUTTI_MS) : 1);
        if (rl.blen > 16) inject(b, rl.blen, TUTTI_PROXY_CTX_DISCARD);
        free(b);
    }
    size_t count = tutti__state_count(S.state);
    atomic_store(&S.carried, false);
    pthread_mutex_unlock(&S.state_mu);
    if (count)
        logf_("tutti: the part's state (%zu messages) is this server's own again", count);
}

/* A packet that was in flight at the leave: played solo at its own time
 * (a shared file read from the cache, its chunks not played), and noted in
 * the model as if played solo (state_mu held). */
static void play_flown(const uint8_t *e, size_t len)
{
    const uint8_t *p = e + CTX_BYTES;
    size_t n = len - CTX_BYTES;
    const char *name = tutti__ns_command_name(p, n);
    if (name && !strncmp(name, "/tutti/", 7)) return; /* a shared file's bytes */
    inject_own(p, n, get_be64(e));
    if (tutti__osc_is_bundle(p, n) && tutti__osc_rd64(p + 8) > 1) {
        tutti_time t = tutti_time_from_ntp(tutti__osc_rd64(p + 8));
        if (t > atomic_load(&S.solo_until)) atomic_store(&S.solo_until, t);
    }
    if (S.state) tutti__state_note(S.state, p, n);
}

/* Back to solo, at once: the clients' packets from now on play here in their
 * own ids (their default group is made again first, at once). What the
 * member's thread had handed to this server plays on, in the parts' groups,
 * which go just after the last of it; what this member's clients had sent
 * that had not come back yet plays here solo at its own time, once (the
 * model's copy of the nodes it makes is moved behind the rest). */
void tutti__session_leave(void)
{
    bool was = atomic_load(&S.live) != NULL;
    uint32_t part = tutti_member_part(atomic_load(&S.my_id));
    stop_member(true);
    enum { MAX_FLOWN = FLIGHT_MAX };
    uint8_t **flown = was ? malloc(MAX_FLOWN * sizeof *flown) : NULL;
    uint32_t *lens = flown ? malloc(MAX_FLOWN * sizeof *lens) : NULL;
    uint32_t n = flight_take(flown, lens, lens ? MAX_FLOWN : 0);
    if (was) { /* the member's thread hands nothing over now: its state is ours */
        /* ahead enough that scsynth has the bundles before their time: it
         * reads OSC once a hardware period (256 frames, 5.3 ms, under Sonic
         * Pi), and one timed closer than that played `late`; 20 ms was not
         * enough across a JACK xrun on a loaded machine (four bundles 2.6 ms
         * late), and the other parts playing 100 ms longer is not heard */
        tutti_time end = S.last_at + 50 * TUTTI_MS, soon = wall_now() + 100 * TUTTI_MS;
        if (end < soon) end = soon;
        clear_parts(end);
        S.left_part = part < TUTTI_NS_SLOTS ? part : 0;
        S.left_until = end + 500 * TUTTI_MS;
        pthread_mutex_lock(&S.state_mu);
        for (uint32_t i = 0; S.state && i < n; i++) {
            const uint8_t *p = flown[i] + CTX_BYTES;
            size_t m = lens[i] - CTX_BYTES;
            if (tutti__osc_is_bundle(p, m))
                tutti__osc_each_message(p, m, visit_unmade, NULL);
            else
                visit_unmade(NULL, p, m);
        }
        pthread_mutex_unlock(&S.state_mu);
        bool carried = atomic_load(&S.carried);
        restore_solo();
        pthread_mutex_lock(&S.state_mu);
        for (uint32_t i = 0; carried && i < n; i++) play_flown(flown[i], lens[i]);
        pthread_mutex_unlock(&S.state_mu);
        if (n)
            logf_("tutti: %" PRIu32 " packets of this server's clients still on their way in "
                  "the session play here solo, at their times",
                  n);
    }
    for (uint32_t i = 0; i < n; i++) free(flown[i]);
    free(flown);
    free(lens);
    atomic_store(&S.carried, false);
}

void tutti__session_stop(void)
{
    stop_member(false);
    /* what is still held goes now, at its time */
    pthread_mutex_lock(&S.hold_mu);
    tutti__hold_destroy(S.hold);
    S.hold = NULL;
    free(S.hold_scratch);
    S.hold_scratch = NULL;
    pthread_mutex_unlock(&S.hold_mu);
    flight_take(NULL, NULL, 0);
    pthread_mutex_lock(&S.state_mu);
    tutti__state_destroy(S.state);
    S.state = NULL;
    pthread_mutex_unlock(&S.state_mu);
}

bool tutti__session_routes(void)
{
    return atomic_load(&S.active) && atomic_load(&S.carried);
}

bool tutti__session_solo(uint64_t ctx, const uint8_t *p, size_t len, bool note,
                         void (*play)(uint64_t ctx, const uint8_t *p, size_t len))
{
    if (!note) {
        play(ctx, p, len);
        return true;
    }
    pthread_mutex_lock(&S.state_mu);
    if (atomic_load(&S.carried)) {
        pthread_mutex_unlock(&S.state_mu);
        return false;
    }
    play(ctx, p, len);
    if (tutti__osc_is_bundle(p, len) && tutti__osc_rd64(p + 8) > 1) {
        tutti_time t = tutti_time_from_ntp(tutti__osc_rd64(p + 8));
        if (t > atomic_load(&S.solo_until)) atomic_store(&S.solo_until, t);
    }
    if (!S.state && tutti__state_create(&S.state)) S.state = NULL;
    if (S.state) tutti__state_note(S.state, p, len);
    pthread_mutex_unlock(&S.state_mu);
    return true;
}

static void do_carry(void *arg, void *engine)
{
    (void)arg, (void)engine;
    queue_carry();
}

void tutti__session_poll(void)
{
    if (!atomic_load(&S.active) || atomic_load(&S.carried)) return;
    pthread_mutex_lock(&S.mu);
    if (S.net) {
        tutti_member_status ms;
        tutti_net_member_status(S.net, &ms);
        /* once the clock is locked too: until then a client's packet
         * could not be stamped, and would be lost rather than played */
        if (ms.joined && ms.clock.locked) tutti_net_call(S.net, do_carry, NULL);
    }
    pthread_mutex_unlock(&S.mu);
}

/* ------------------------------------------------ buffer queries, here */

typedef struct query_here {
    uint64_t ctx;
    const uint8_t *p;
    size_t len;
    bool done;
} query_here;

static void do_query_here(void *arg, void *engine)
{
    (void)engine;
    query_here *q = arg;
    uint32_t id = atomic_load(&S.my_id);
    tutti__osc_msg m;
    if (!id || !S.ns || tutti__osc_msg_parse(q->p, q->len, &m) || !m.tags || !m.tags[0])
        return;
    tutti_time after = 0;
    bool clear = true;
    const uint8_t *a = m.args;
    pthread_mutex_lock(&S.buf_mu);
    for (size_t k = 0; clear && m.tags[k]; k++, a += 4) {
        if (m.tags[k] != 'i' || m.end - a < 4) {
            clear = false;
            break;
        }
        uint32_t b = tutti__osc_rd32(a) % BUF_BUCKETS;
        clear = S.buf_pending[b] == 0;
        if (S.buf_at[b] > after) after = S.buf_at[b];
    }
    pthread_mutex_unlock(&S.buf_mu);
    if (!clear) return;
    ssize_t n = tutti__ns_rewrite_ex(S.ns, tutti_member_part(id), q->p, q->len, S.out,
                                     sizeof S.out, 0, NULL);
    if (n <= 0) return;
    /* After everything of this member's on those buffers: at once when
     * that ran a while ago (a server runs what comes in now before what is
     * due in the same block, and a block can be 20 ms); otherwise timed
     * after it, far enough ahead that the server gets it in time. */
    tutti_time now = wall_now();
    if (after + QUERY_AHEAD <= now) {
        q->done = inject(S.out, (size_t)n, q->ctx);
    } else {
        tutti_time at = after >= now + QUERY_AHEAD ? after + 1 : now + QUERY_AHEAD;
        q->done = inject(S.canon, timed(S.out, (size_t)n, at, S.canon), q->ctx);
    }
    if (q->done) atomic_fetch_add(&S.queries_here, 1);
}

bool tutti__session_query_here(uint64_t ctx, const uint8_t *p, size_t len)
{
    const char *name = tutti__ns_command_name(p, len);
    if (!name || strcmp(name, "/b_query") || tutti__osc_is_bundle(p, len)) return false;
    query_here q = {ctx, p, len, false};
    pthread_mutex_lock(&S.mu);
    if (S.net) tutti_net_call(S.net, do_query_here, &q);
    pthread_mutex_unlock(&S.mu);
    return q.done;
}

bool tutti__session_record(uint64_t ctx, const uint8_t *p, size_t len)
{
    uint32_t id = atomic_load(&S.my_id);
    if (!atomic_load(&S.carried) || !atomic_load(&S.active) || !id || !S.ns) return false;
    proxy_session(id);
    uint8_t out[2048];
    ssize_t n =
        tutti__record_local(&S.rec, S.ns, tutti_member_part(id), p, len, out, sizeof out);
    if (n <= 0) return false;
    atomic_fetch_add(&S.recorded_here, 1);
    inject(out, (size_t)n, ctx);
    return true;
}

/* A timeline proposal (tempo or transport), made on the member's thread. */
typedef struct call_propose {
    bool transport; /* else a tempo */
    bool playing;
    double bpm;
    int rc;
} call_propose;

static void do_propose(void *arg, void *engine)
{
    call_propose *c = arg;
    c->rc = c->transport ? tutti_member_propose_transport(engine, c->playing)
                         : tutti_member_propose_bpm(engine, c->bpm);
}

static int propose(call_propose c)
{
    c.rc = TUTTI_ESTATE;
    pthread_mutex_lock(&S.mu);
    if (S.net && tutti_net_call(S.net, do_propose, &c)) c.rc = TUTTI_ECLOSED;
    pthread_mutex_unlock(&S.mu);
    return c.rc;
}

int tutti__session_propose_bpm(double bpm)
{
    return propose((call_propose){.bpm = bpm});
}

int tutti__session_propose_transport(bool playing)
{
    return propose((call_propose){.transport = true, .playing = playing});
}

/* On the member's thread: the session's part of the view. The offset is
 * session time less the wall clock read around it (both move together; the
 * two readings are microseconds apart). */
static void do_view(void *arg, void *engine)
{
    tutti__session_view *v = ((call_view *)arg)->v;
    tutti_member_status st;
    tutti_member_status_get(engine, &st);
    if (!st.joined) return;
    v->mode = TUTTI__MODE_SESSION;
    v->id = st.id;
    v->part = tutti_member_part(st.id);
    v->members = st.members;
    v->role = st.role;
    v->horizon_ns = st.horizon;
    tutti_time w1 = wall_now();
    tutti_time sess = tutti_member_session_now(engine);
    tutti_time w2 = wall_now();
    v->offset_ns = sess - (w1 + (w2 - w1) / 2);
    v->seq = st.timeline_seq;
    uint32_t n = tutti_member_timeline_schedule(engine, v->tl, TUTTI__VIEW_TIMELINES);
    v->ntl = n < TUTTI__VIEW_TIMELINES ? n : TUTTI__VIEW_TIMELINES;
    uint32_t k = tutti_member_list(engine, v->list, TUTTI_PARTS);
    v->nlist = k < TUTTI_PARTS ? k : TUTTI_PARTS;
}

static void view_link(tutti__session_view *v)
{
    tutti__linkhost_status ls;
    tutti__linkhost_status_get(&ls);
    if (!ls.enabled) return;
    snprintf(v->link, sizeof v->link, "%s", tutti__linkhost_state_name(&ls));
    v->link_peers = ls.b.link_peers;
}

void tutti__session_view_get(tutti__session_view *v)
{
    memset(v, 0, sizeof *v);
    view_link(v);
    v->mode = TUTTI__MODE_SOLO;
    pthread_mutex_lock(&S.mu);
    if (S.net) {
        v->mode = TUTTI__MODE_JOINING;
        call_view c = {v};
        tutti_net_call(S.net, do_view, &c);
        /* In a session for clients only once their packets can be played
         * (submit needs the session clock, which reaches the net's status a
         * moment after the engine says joined): a client that plays when
         * told "session" (sclang's Tutti:join action) lost its first
         * packets. Until then the view is the local grid, as joining. */
        tutti_time now;
        if (v->mode == TUTTI__MODE_SESSION && tutti_net_session_now(S.net, &now)) {
            memset(v, 0, sizeof *v);
            v->mode = TUTTI__MODE_JOINING;
            view_link(v);
        }
    }
    pthread_mutex_unlock(&S.mu);
    if (v->mode == TUTTI__MODE_SESSION) return;
    /* The local grid: what is in force now, and what is still ahead. */
    tutti_time now = wall_now();
    uint32_t first = 0;
    while (first + 1 < S.solo_ntl && S.solo_tl[first + 1].t0 <= now)
        first++;
    v->ntl = S.solo_ntl - first;
    memcpy(v->tl, S.solo_tl + first, v->ntl * sizeof v->tl[0]);
    v->seq = S.solo_seq;
}

static void do_list(void *arg, void *engine)
{
    call_list *c = arg;
    c->n = tutti_member_list(engine, c->out, c->cap);
}

uint32_t tutti__session_members(tutti_member_info *out, uint32_t cap)
{
    call_list c = {out, cap, 0};
    pthread_mutex_lock(&S.mu);
    if (S.net) tutti_net_call(S.net, do_list, &c);
    pthread_mutex_unlock(&S.mu);
    return c.n;
}

int tutti__session_monitor(const char *who, float gain, char *why, size_t cap)
{
    if (!who || !*who) {
        snprintf(why, cap, "say which part: a member's name or a part number");
        return TUTTI_EINVAL;
    }
    char *end;
    long part = strtol(who, &end, 10);
    if (*end || end == who) {
        tutti_member_info info[TUTTI_GUARD_SLOTS];
        uint32_t n = tutti__session_members(info, TUTTI_GUARD_SLOTS);
        part = -1;
        for (uint32_t i = 0; i < n && i < TUTTI_GUARD_SLOTS; i++)
            if (!strcmp(info[i].name, who)) part = (long)tutti_member_part(info[i].id);
        if (part < 0) {
            snprintf(why, cap, "no member \"%.40s\" in the session", who);
            return TUTTI_EINVAL;
        }
    }
    if (part < 1 || part >= TUTTI_GUARD_SLOTS || part >= TUTTI_NS_SLOTS) {
        snprintf(why, cap, "parts are numbered 1 to %d", TUTTI_NS_SLOTS - 1);
        return TUTTI_EINVAL;
    }
    if (!(gain >= 0.0f && gain <= 1.0f)) {
        snprintf(why, cap, "a gain is from 0 (mute) to 1");
        return TUTTI_EINVAL;
    }
    tutti__guard_set_gain((uint32_t)part, gain);
    logf_(
        "tutti: part %ld plays at gain %.2f on this server (monitoring: no other server "
        "changes)",
        part, (double)gain);
    return 0;
}

void tutti__session_guard_text(char *out, size_t cap)
{
    int w0 = S.guard_ceiling > 0
                 ? snprintf(out, cap, "limiter %.1f dBFS", 20 * log10(S.guard_ceiling))
                 : snprintf(out, cap, "limiter off");
    size_t k = w0 > 0 && (size_t)w0 < cap ? (size_t)w0 : 0;
    for (uint32_t p = 1; p < TUTTI_GUARD_SLOTS && p < TUTTI_NS_SLOTS; p++) {
        uint64_t lim, bad;
        tutti__guard_counters(p, &lim, &bad);
        float g = tutti__guard_gain(p);
        if (!(S.groups_made & (1u << p)) && !lim && !bad && g == 1.0f) continue;
        int w = snprintf(out + k, cap - k,
                         "; p%u gain %.2f limited %" PRIu64 " nonfinite %" PRIu64, p,
                         (double)g, lim, bad);
        if (w < 0 || (size_t)w >= cap - k) break;
        k += (size_t)w;
    }
}

void tutti__session_status_get(tutti__session_status *st)
{
    memset(st, 0, sizeof *st);
    st->active = atomic_load(&S.active);
    pthread_mutex_lock(&S.mu);
    if (S.net) {
        tutti_member_status ms;
        tutti_net_member_status(S.net, &ms);
        st->joined = ms.joined;
        st->id = ms.joined ? ms.id : 0;
        st->part = ms.joined ? tutti_member_part(ms.id) : 0;
        st->members = ms.members;
        st->horizon_ns = ms.horizon;
        st->moved = ms.moved;
        st->role = ms.role;
        st->assets_refused = atomic_load(&S.assets_refused);
        st->nodes_refused = atomic_load(&S.nodes_refused);
        st->sealed = ms.sealed;
        st->hub_verified = ms.hub_verified;
        st->unsealed_dropped = ms.unsealed_dropped;
        st->clock_locked = ms.clock.locked;
        st->clock_settled = tutti_member_clock_settled(&ms, tutti_net_now());
        /* against this machine's wall clock, which session time reads as */
        st->clock_offset_ns = ms.clock.offset_ns - tutti_net_session_epoch();
        st->clock_bound_ns = ms.clock.bound_ns;
        st->rtt_ns = ms.clock.rtt_min_ns;
        st->bpm = ms.timeline.bpm;
        st->quantum = ms.timeline.quantum;
        st->tl_t0 = ms.timeline.t0;
        st->tl_beat0 = ms.timeline.beat0;
        st->playing = ms.timeline.playing;
        st->tl_seq = ms.timeline_seq;
        st->pending = ms.timeline_pending;
        st->next = ms.next_timeline;
        st->role = ms.role;
        tutti_time now;
        tutti_net_session_now(S.net, &now);
        double beat = tutti_timeline_beat_at(&ms.timeline, now);
        double q = ms.timeline.quantum > 0 ? ms.timeline.quantum : 4;
        st->bar = (int64_t)floor(beat / q);
        st->bar_phase = beat - (double)st->bar * q;
    }
    snprintf(st->hub, sizeof st->hub, "%s", S.hub);
    snprintf(st->session, sizeof st->session, "%s", S.session);
    snprintf(st->name, sizeof st->name, "%s", S.name);
    snprintf(st->journal, sizeof st->journal, "%s", S.journal_path);
    pthread_mutex_unlock(&S.mu);
    st->submitted = atomic_load(&S.submitted);
    st->submit_failed = atomic_load(&S.submit_failed);
    st->delivered = atomic_load(&S.delivered);
    st->late = atomic_load(&S.late);
    st->late_injected = atomic_load(&S.late_injected);
    st->turn_max_ns = atomic_load(&S.turn_max_ns);
    st->wait_max_ns = atomic_load(&S.wait_max_ns);
    st->work_max_ns = atomic_load(&S.work_max_ns);
    int64_t lead = atomic_load(&S.lead_min_ns);
    st->lead_min_ns = lead == INT64_MAX ? 0 : lead;
    st->injected = atomic_load(&S.injected);
    st->held_back = atomic_load(&S.held_back);
    st->inject_failed = atomic_load(&S.inject_failed);
    st->invalid = atomic_load(&S.invalid);
    st->discarded_replies = atomic_load(&S.discarded_replies);
    st->replays_sent = atomic_load(&S.replays_sent);
    st->replay_failed = atomic_load(&S.replay_failed);
    st->held = atomic_load(&S.held);
    pthread_mutex_lock(&S.state_mu);
    st->state_messages = S.state ? tutti__state_count(S.state) : 0;
    st->carried = atomic_load(&S.carried);
    pthread_mutex_unlock(&S.state_mu);
    st->queries_here = atomic_load(&S.queries_here);
    st->recorded_here = atomic_load(&S.recorded_here);
    pthread_mutex_lock(&S.check_mu);
    if (S.checker) {
        tutti__checker_stats cs;
        tutti__checker_stats_get(S.checker, &cs);
        st->check_rounds = cs.rounds;
        st->check_identical = cs.identical;
        st->check_diffs = cs.diffs;
        st->check_late = cs.late;
        st->check_skipped = atomic_load(&S.check_skipped);
        st->check_servers = cs.servers;
        st->check_differs = cs.last_diff_round >= 0 && cs.last_diff_round == cs.last_round;
    }
    snprintf(st->check_last, sizeof st->check_last, "%s", S.check_last);
    pthread_mutex_unlock(&S.check_mu);
}
