/*
 * tutti — one live performance, many places.
 *
 * The public API of the tutti core: the session clock, the tempo timeline, and the
 * two protocol engines (a member and the hub/coordinator) that together deliver
 * the union of every member's events in one identical order everywhere.
 *
 * Design notes
 * ------------
 * - The engines are "sans-IO": they never read a clock, draw a random number,
 *   open a socket or allocate on a hot path behind the caller's back. Time,
 *   randomness, sending and delivery all go through a tutti_io the caller gives
 *   them. The same engine code therefore runs over NNG sockets driven by libuv
 *   (the posix platform), over the simulated network with virtual time used by
 *   the tests, and later on a Bela board.
 * - Session time is signed 64-bit nanoseconds since the NTP epoch (1900-01-01),
 *   so an OSC timetag converts without loss of meaning (tutti_time_from_ntp).
 *   It is the coordinator's clock; members estimate their offset to it.
 * - Thread rules: every engine object is used from one thread at a time (the
 *   loop thread that owns it). Nothing here is real-time safe unless it says so;
 *   the audio side reads published values through the plugin's own lock-free
 *   structures.
 * - Errors: functions return 0 or a negative TUTTI_E* code; tutti_strerror()
 *   names it.
 */
#ifndef TUTTI_TUTTI_H
#define TUTTI_TUTTI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(TUTTI_STATIC)
#define TUTTI_API
#elif defined(__GNUC__)
#define TUTTI_API __attribute__((visibility("default")))
#else
#define TUTTI_API
#endif

#define TUTTI_VERSION_MAJOR 0
#define TUTTI_VERSION_MINOR 1
#define TUTTI_VERSION_PATCH 0

/* ---------------------------------------------------------------- errors */

enum {
    TUTTI_OK = 0,
    TUTTI_EINVAL = -1,   /* an argument is out of range */
    TUTTI_ENOMEM = -2,   /* an allocation failed */
    TUTTI_EPROTO = -3,   /* malformed bytes from a peer or a client */
    TUTTI_EVERSION = -4, /* a peer speaks an incompatible protocol version */
    TUTTI_EFULL = -5,    /* a fixed-size queue or table is full */
    TUTTI_ESTATE = -6,   /* the call is not valid in the object's state */
    TUTTI_ECLOSED = -7,  /* the peer or the object has gone */
    TUTTI_ETRANSPORT = -8, /* the network transport failed (see the log) */
    TUTTI_EREJECTED = -9,  /* the coordinator refused the request */
    TUTTI_ETIMEDOUT = -10,
};

/* A short English sentence for an error code. Thread-safe, real-time safe. */
TUTTI_API const char *tutti_strerror(int err);

/* ------------------------------------------------------------------ time */

/* Nanoseconds. Session time: since the NTP epoch; local time: monotonic. */
typedef int64_t tutti_time;

#define TUTTI_MS ((tutti_time)1000000)
#define TUTTI_S ((tutti_time)1000000000)
#define TUTTI_TIME_MAX INT64_MAX

/* OSC/NTP 32.32 fixed point timetags. Real-time safe. */
TUTTI_API tutti_time tutti_time_from_ntp(uint64_t ntp);
TUTTI_API uint64_t tutti_time_to_ntp(tutti_time t);

/* ------------------------------------------------------------ event keys */

/*
 * The total order. Every event carries (t, origin, seq): its session time, the
 * member id of its origin and the origin's sequence number. Events are delivered
 * in increasing (t, origin, seq), compared in that order, as unsigned where
 * unsigned. Equal timetags are common (a chord), so the tie-break matters: the
 * lower member id first, then the earlier event of that member. Member id 0 is
 * the coordinator: its commands sort before members' events of the same time.
 */
typedef struct tutti_key {
    tutti_time t;
    uint32_t origin;
    uint64_t seq;
} tutti_key;

/* <0, 0, >0. Total; real-time safe. */
TUTTI_API int tutti_key_cmp(const tutti_key *a, const tutti_key *b);

enum tutti_event_kind {
    TUTTI_EV_USER = 0,    /* an application payload (OSC for the plugin) */
    TUTTI_EV_COMMAND = 1, /* a coordinator command (membership, timeline, L) */
};

typedef struct tutti_event {
    tutti_key key;
    uint32_t kind;       /* enum tutti_event_kind */
    uint32_t len;        /* payload bytes */
    const uint8_t *data; /* valid only during the callback that hands it out */
} tutti_event;

/* ---------------------------------------------------------------- clock */

/*
 * A member's estimate of session time. session = local + offset + drift * (local
 * - ref_local), with the true session time within +/- bound_ns of the estimate
 * covering every offset and drift the samples allow; about rtt_min/2 on a WAN,
 * microseconds on a LAN, and never more than the newest round trip; see
 * docs/design.md, "clock filter"). Before the first sample it is TUTTI_TIME_MAX.
 */
typedef struct tutti_clock_estimate {
    bool locked;         /* enough samples for a consistent estimate */
    tutti_time ref_local; /* local time the offset refers to */
    tutti_time offset_ns; /* session - local at ref_local */
    double drift;         /* d(session - local)/d(local), e.g. 20e-6 = 20 ppm */
    tutti_time bound_ns;  /* half-width of the interval the true offset is in */
    tutti_time rtt_min_ns; /* smallest round trip in the window */
    tutti_time rtt_last_ns;
    uint32_t samples; /* samples in the window */
} tutti_clock_estimate;

/* Local time -> session time with an estimate. Real-time safe. */
TUTTI_API tutti_time tutti_clock_to_session(const tutti_clock_estimate *e, tutti_time local);
TUTTI_API tutti_time tutti_clock_to_local(const tutti_clock_estimate *e, tutti_time session);

/* ------------------------------------------------------------- timeline */

/*
 * Tempo, beat origin and quantum, as Ableton Link models them: at session time
 * t the beat is beat0 + (t - t0) * bpm / 60 s, and the phase is the beat modulo
 * the quantum. A timeline changes only through commands that take effect at an
 * agreed session time, so every member switches on the same beat.
 */
typedef struct tutti_timeline {
    double bpm;      /* beats per minute, > 0 */
    double beat0;    /* beat at time t0 */
    tutti_time t0;   /* session time of beat0 */
    double quantum;  /* beats per bar (phase wraps at this), > 0 */
    bool playing;    /* transport state */
} tutti_timeline;

/* The tempo range a session accepts (Link's range). */
#define TUTTI_BPM_MIN 20.0
#define TUTTI_BPM_MAX 999.0

/* All real-time safe (pure arithmetic). */
TUTTI_API void tutti_timeline_init(tutti_timeline *tl, double bpm, double quantum, tutti_time t0);
TUTTI_API double tutti_timeline_beat_at(const tutti_timeline *tl, tutti_time t);
TUTTI_API double tutti_timeline_phase_at(const tutti_timeline *tl, tutti_time t);
TUTTI_API tutti_time tutti_timeline_time_at_beat(const tutti_timeline *tl, double beat);
/* The first beat >= beat_at(t) that is a multiple of `quantum` phase boundary. */
TUTTI_API double tutti_timeline_next_boundary(const tutti_timeline *tl, tutti_time t,
                                              double quantum);
/* Change the tempo at session time `at` keeping the beat continuous there. */
TUTTI_API void tutti_timeline_set_bpm(tutti_timeline *tl, double bpm, tutti_time at);

/* -------------------------------------------------------------- the I/O */

enum tutti_log_level { TUTTI_LOG_DEBUG, TUTTI_LOG_INFO, TUTTI_LOG_WARN, TUTTI_LOG_ERROR };

/*
 * What an engine needs from its platform. The engine calls these from the
 * thread that drives it. `send` copies the bytes or finishes with them before
 * returning. Peer numbers: for a member, peer 0 is the hub; for the hub, the
 * peer number is the connection id the transport gave with the received bytes.
 */
typedef struct tutti_io {
    void *ctx;
    tutti_time (*now)(void *ctx);   /* local monotonic clock, ns */
    uint64_t (*random)(void *ctx);  /* uniform 64-bit */
    void (*send)(void *ctx, uint32_t peer, const uint8_t *buf, size_t len);
    void (*log)(void *ctx, int level, const char *msg); /* may be NULL */
    /* The hub tells its transport about a connection (may be NULL):
     * TUTTI_PEER_AUTHED once it has proved a credential (the transport's
     * hello deadline and its caps on unauthenticated connections no longer
     * apply), TUTTI_PEER_CLOSE to end it after what was sent to it has
     * left (a refused credential, a peer that breaks the handshake). */
    void (*peer)(void *ctx, uint32_t peer, int what);
} tutti_io;

enum { TUTTI_PEER_AUTHED = 1, TUTTI_PEER_CLOSE = 2 };

/* ------------------------------------------------------------ membership */

enum tutti_role {
    TUTTI_ROLE_PERFORMER = 0,
    TUTTI_ROLE_LISTENER = 1,
    TUTTI_ROLE_CONDUCTOR = 2,
    TUTTI_ROLE_ADMIN = 3,
};
TUTTI_API const char *tutti_role_name(int role);

#define TUTTI_NAME_MAX 32
#define TUTTI_SETTINGS_MAX 256

/*
 * Parts. A member's part is its place among the members playing at once:
 * 1..TUTTI_PARTS-1, a pure function of its id, so every member (one that joins
 * late too) derives it alone. The coordinator hands out ids so that no two
 * members whose events can still be delivered share a part; the plugin keeps
 * each part's server resources (nodes, buffers, buses, synthdefs) apart by it.
 * Part 0 is a server's own, outside any session. Real-time safe.
 */
#define TUTTI_PARTS 32
static inline uint32_t tutti_member_part(uint32_t id)
{
    return id ? (id - 1) % (TUTTI_PARTS - 1) + 1 : 0;
}

/*
 * An invitation: the credential the hub's operator hands a musician (see
 * docs/security.md). As text it is one line, "tutti-invite-1 ID ROLE EXPIRES
 * SECRET HUBKEY [URL]" (tutti invite makes them).
 */
typedef struct tutti_invite {
    char id[17];           /* 1 to 16 hex digits */
    int role;              /* enum tutti_role */
    int64_t expires;       /* Unix seconds; 0: never */
    uint8_t secret[32];
    uint8_t hub_pk[32];    /* the hub's Ed25519 public key */
    char url[128];         /* where the hub listens ("" if not said) */
} tutti_invite;

typedef struct tutti_member_info {
    uint32_t id;
    int role;
    char name[TUTTI_NAME_MAX];
    tutti_key joined; /* the command that admitted it */
    /* What the member last told the coordinator (the hub's list only; 0 in a
     * member's): its one-way delay to the hub, high estimate (half the
     * largest round trip of its recent pings, stalls left out), its clock's
     * error bound, the events it delivered late, and the horizon its recent
     * deliveries needed (the largest of L + lateness, stalls left out; 0
     * while it has none to judge), of which tail_ns is not measured but
     * what the tail of its needs says may still come. */
    tutti_time delay_ns, clock_bound_ns;
    uint64_t late;
    tutti_time need_ns, tail_ns;
    /* (the hub's list only) its events that reached the hub after session
     * time had closed on them and were moved to the first open instant, and
     * the largest move; how long ago it was last heard from */
    uint64_t moved;
    tutti_time max_moved_ns, silent_ns;
    /* (the hub's list only) its events the hub refused (its role, a limit),
     * the last reason (a static string, "" if none), and its requests
     * refused */
    uint64_t refused, refused_requests;
    const char *refused_why;
} tutti_member_info;

/* -------------------------------------------------------------- member */

typedef struct tutti_member tutti_member;

typedef struct tutti_member_callbacks {
    void *ctx;
    /*
     * An event, in the session's total order. `now_session` is this member's
     * estimate of session time at delivery; `late` says it came after its
     * deadline (t - deliver_lead) by this member's clock (judged only once the
     * clock is locked). Events of kind TUTTI_EV_COMMAND are delivered
     * too (after the member has applied them) so a journal sees everything.
     */
    void (*deliver)(void *ctx, const tutti_event *ev, tutti_time now_session, bool late);
    /* Something a user should know: joined, removed, divergence, hub lost. */
    void (*notice)(void *ctx, int level, const char *msg);
} tutti_member_callbacks;

typedef struct tutti_member_config {
    const char *session;  /* session name, <= TUTTI_NAME_MAX-1 bytes */
    const char *name;     /* member name, <= TUTTI_NAME_MAX-1 bytes */
    int role;             /* enum tutti_role */
    tutti_time deliver_lead; /* an event is late if delivered after t - lead */
    bool auto_rejoin;     /* rejoin as a new member after being removed */
    uint32_t max_pending; /* events held for ordering (fixed capacity) */
    /* The credential (docs/security.md); copied at create. With an
     * invitation the hub's key comes from it and is checked; a passphrase
     * may come with a pinned hub key; with neither the member joins only an
     * open hub (with `role`). `role` is what an open hub gives; otherwise
     * the credential decides. */
    const tutti_invite *invite;
    const char *passphrase;
    const uint8_t *hub_key; /* 32 bytes, the hub's Ed25519 public key; NULL: none */
} tutti_member_config;

TUTTI_API void tutti_member_config_init(tutti_member_config *cfg);

/* Create/destroy. Not real-time safe. The member starts disconnected. */
TUTTI_API int tutti_member_create(tutti_member **out, const tutti_member_config *cfg,
                                  const tutti_io *io, const tutti_member_callbacks *cb);
TUTTI_API void tutti_member_destroy(tutti_member *m);

/* The transport connected (or reconnected) to the hub: say hello / resume. */
TUTTI_API void tutti_member_connected(tutti_member *m);
/* Bytes from the hub. Malformed input is dropped with a logged reason. */
TUTTI_API int tutti_member_receive(tutti_member *m, const uint8_t *buf, size_t len);
/* Run timers (heartbeat, ping, retransmission). Call at least every
 * tutti_member_next_tick() - now. Returns that next deadline (local time). */
TUTTI_API tutti_time tutti_member_tick(tutti_member *m);
/* Leave the session politely. */
TUTTI_API void tutti_member_leave(tutti_member *m);

/*
 * Submit an event for session time t (session clock). The horizon rule applies:
 * t is raised to at least now + L and never below what this member has already
 * promised, so it may be restamped; the stamped key is returned in *key.
 * Returns TUTTI_ESTATE before the member has joined, TUTTI_EFULL if the unacked
 * window is full, TUTTI_EINVAL for a payload over 64 KiB or a time more than
 * 60 s ahead of now.
 */
TUTTI_API int tutti_member_submit(tutti_member *m, tutti_time t, const uint8_t *data,
                                  uint32_t len, tutti_key *key);
/*
 * Timeline changes. Ask the coordinator for a tempo / a transport start or
 * stop (the conductor's and the admin's; anyone else's request is refused
 * with a notice). The hub sequences the change as a command stamped like any
 * event (its session time k, at least now + L) and sets it to take effect at
 * the first bar line (a multiple of the quantum, on the timeline then in
 * force) at or after k + the hub's change lead (tutti_hub_config), so every
 * member delivers the command, and knows the change, at least that long
 * before it takes effect: a client that schedules ahead can play on the new
 * grid from its first beat. The beat stays continuous at the change; a
 * transport change leaves tempo and beat as they are. TUTTI_ESTATE before
 * joining, TUTTI_EINVAL for a tempo outside [TUTTI_BPM_MIN, TUTTI_BPM_MAX].
 * The member's loop thread.
 */
TUTTI_API int tutti_member_propose_bpm(tutti_member *m, double bpm);
TUTTI_API int tutti_member_propose_transport(tutti_member *m, bool playing);
/* Ask the coordinator to set L (admins only) / remove a member (admins
 * only). A refused request is answered with a notice. */
TUTTI_API int tutti_member_propose_horizon(tutti_member *m, tutti_time horizon);
TUTTI_API int tutti_member_propose_remove(tutti_member *m, uint32_t id);

/* How long after a member's clock locked (tutti_member_status's
 * clock_locked_at) a musician is told "locked": the clock filter holds its
 * drift at 0 until its window spans 4 s (core/src/clock.c), and over a long
 * path the first seconds after a lock hold two cities 1-3 ms apart
 * (docs/link.md). See tutti_member_clock_settled. */
#define TUTTI_CLOCK_SETTLE (6 * TUTTI_S)

typedef struct tutti_member_status {
    bool joined;
    uint32_t id;
    uint32_t incarnation; /* how many times this process has joined */
    tutti_clock_estimate clock;
    /* The member's local time (the clock the estimate maps from) when, in
     * this incarnation, it was first joined with its clock locked; 0 until
     * then. A moment unlocked later does not move it: the filter relocks
     * keeping its drift. Its first seconds are its least accurate (see
     * TUTTI_CLOCK_SETTLE). */
    tutti_time clock_locked_at;
    tutti_time horizon;    /* L */
    tutti_time heartbeat;  /* heartbeat interval */
    uint64_t submitted, restamped, delivered, late;
    /* This member's events that reached the hub after session time had
     * closed on them (a link cut, a stalled laptop) and were moved to the
     * first open instant, and the largest move; every member plays them
     * there. moved_all counts such events of every origin. */
    uint64_t moved, moved_all;
    tutti_time max_moved;
    uint64_t pending;      /* received, not yet deliverable */
    tutti_time max_lateness;
    uint64_t hash;         /* running hash of the delivered sequence since joining */
    uint64_t divergences;  /* reported by the coordinator */
    uint64_t dropped;      /* malformed or out-of-place frames dropped */
    uint64_t violations;   /* events that came below what was delivered (stays 0) */
    tutti_key joined_at;   /* the command that admitted this incarnation */
    uint32_t members;      /* active members (the coordinator excluded) */
    tutti_timeline timeline; /* the timeline in force now */
    /* The agreed changes of the timeline: how many this incarnation has
     * applied (the ones in force when it joined included), and the first one
     * agreed but not yet in force (timeline_pending; it starts at its t0,
     * beat beat0). tutti_member_timeline_schedule lists every one ahead. */
    uint64_t timeline_seq;
    bool timeline_pending;
    tutti_timeline next_timeline;
    int role;              /* the role the hub gave (valid once joined) */
    bool hub_verified;     /* the hub proved the key this member pinned */
    bool failed;           /* the hub refused us for good (see the notices) */
    uint64_t refused;      /* submissions refused here (a listener) */
    bool sealed;           /* the link to the hub is encrypted (joined with a credential) */
    uint64_t unsealed_dropped; /* frames dropped: sealed and not opening, or clear on
                                * the encrypted link */
    char settings[TUTTI_SETTINGS_MAX]; /* the session's settings (tutti_hub_config),
                                        * as the hub's WELCOME gave them */
} tutti_member_status;

TUTTI_API void tutti_member_status_get(const tutti_member *m, tutti_member_status *st);
/* Whether st's clock has been locked for TUTTI_CLOCK_SETTLE this join, the
 * member's local time being `now`: the one rule behind the stage node's LED,
 * the Link bridge's "locked" and the plugin's clock_settled. */
static inline bool tutti_member_clock_settled(const tutti_member_status *st, tutti_time now)
{
    return st->clock_locked_at && now - st->clock_locked_at >= TUTTI_CLOCK_SETTLE;
}
/* Active members; returns how many (may exceed cap; fills at most cap). */
/* What is left of origin `id`'s stream here: the events received and not
 * yet delivered (inside a deliver callback, the event being delivered
 * counts), and in *complete whether its stream is whole (it was removed and
 * every event up to its last has been received, or it is not known here).
 * A removed member's last event is delivered when this says 1 and complete
 * during its delivery. */
TUTTI_API uint32_t tutti_member_origin_pending(const tutti_member *m, uint32_t id,
                                               bool *complete);
TUTTI_API uint32_t tutti_member_list(const tutti_member *m, tutti_member_info *out,
                                     uint32_t cap);
/* The timeline in force now, then every agreed change not yet in force, in
 * the order they take effect (each from its t0; a change agreed for the same
 * instant as an earlier one replaces it): how many there are (at least 1;
 * may exceed cap; fills at most cap). The member's loop thread. */
TUTTI_API uint32_t tutti_member_timeline_schedule(const tutti_member *m,
                                                  tutti_timeline *out, uint32_t cap);
/* Session time now, as estimated by this member. */
TUTTI_API tutti_time tutti_member_session_now(const tutti_member *m);

/* ----------------------------------------------------------------- hub */

typedef struct tutti_hub tutti_hub;

typedef struct tutti_hub_config {
    const char *session;
    tutti_time horizon;        /* initial L */
    tutti_time heartbeat;      /* 0: derived from L (L/10, within [5 ms, 20 ms]) */
    /* A member silent this long is removed at an agreed cut (default 8 s).
     * Until then it keeps its place and resumes where it was; nobody waits
     * for it meanwhile (the hub closes session time on its own clock). */
    tutti_time suspect_after;
    double bpm, quantum;       /* initial timeline */
    uint32_t max_members;
    uint32_t max_pending;
    tutti_time session_epoch;  /* session time = local + this (0: local) */
    /*
     * The automatic horizon: the coordinator chooses L from what the members
     * report. Each member measures, for the events it delivers, the L at
     * which each would have been just on time (L + its lateness: the trip
     * origin -> hub -> member, the wait for every origin's promise, its
     * clock's error and its delivery lead), and reports what its recent
     * deliveries call for: the level of its last ~32 ping intervals' largest
     * plus the largest excess over it of the last ~128 (at most the largest
     * value seen), carried further when those excesses have a heavy tail
     * (by a quarter of the level at most), stalls (a partition waited out, a
     * crashed member's suspect time) left out. The target is the largest of
     * the reports, each without its carry, + a twelfth of that + the larger
     * of the margin and its carry (the two are one room for what has not
     * been measured yet, not added up). Until every member has such a report
     * (the first second, a quiet session, an older member) the target is at
     * least 2 D + margin + 1.25 h, D the largest member's one-way delay
     * estimate (half its largest recent round trip, stalls left out) and h the
     * heartbeat (L/10, 5..20 ms), and late reports raise L by a quarter 3 s or
     * more after the last change. L is raised to the target at once; it is
     * lowered, not within 3 s of a raise, not while every member's report is
     * less than 4 s old (a first second's need has not met the path's slower
     * moments yet) and at most every second, by three quarters of the distance
     * to the target (a tenth of L at least). Each change is a HORIZON command
     * at its place in the order. `horizon` is where it starts.
     *
     * horizon_floor (0: none) is a rehearsal's L, what an earlier session
     * over the same network settled on: L is not lowered below it until
     * every member's report has been known for floor_for (how long the
     * rehearsal had measured). A heavy-tailed path's first seconds have not
     * met its slower moments yet; the rehearsal has.
     */
    bool auto_horizon;
    tutti_time horizon_min;   /* never below this (default 5 ms) */
    tutti_time horizon_margin; /* least room in the target (default 3 ms) */
    tutti_time horizon_floor;  /* a rehearsal's L (0: none) */
    tutti_time floor_for;      /* held until measured this long */

    /*
     * Credentials (docs/security.md). open (the default): anyone who
     * reaches the hub joins with the role it asks for. Otherwise a member
     * proves an invitation (tutti_hub_set_invites) or the passphrase, and
     * the credential gives the role. hub_sk: the hub's Ed25519 secret key
     * (64 bytes, libsodium's layout; NULL: a fresh one from io.random).
     * Strings and keys are copied.
     */
    bool open;
    const uint8_t *hub_sk;
    const char *passphrase;   /* NULL: none */
    int passphrase_role;      /* what the passphrase admits as (performer) */
    /*
     * Limits per member (0: the default). An event beyond one is refused
     * (not relayed, counted, the member told why); honest members stay far
     * below: events per second and their burst (5000, 10000), payload bytes
     * per second and their burst (4 MiB, 8 MiB), how far ahead of the hub's
     * clock an event may be stamped (20 s), and the payload bytes of a
     * member's events relayed and not yet due (4 MiB).
     */
    double max_event_rate, max_event_burst;
    double max_byte_rate, max_byte_burst;
    tutti_time max_ahead;
    uint64_t max_held;
    /*
     * How long before a timeline change takes effect every member has it
     * (see tutti_member_propose_bpm). It must cover what clients schedule
     * ahead of time (Sonic Pi 0.5 s, sclang's Server.latency 0.2 s) and
     * their own timers: default 1 s. It is raised to L + 2
     * TUTTI_CLIENT_MARGIN when L is that large, so a client scheduling the
     * latency the plugin recommends (L + TUTTI_CLIENT_MARGIN) still hears of
     * a change TUTTI_CLIENT_MARGIN before it schedules past it.
     */
    tutti_time change_lead;
    /*
     * The session's settings, told to every member in its WELCOME, so that
     * every member applies the same (the plugin's safety limiter, for one:
     * "limiter=-6" or "limiter=off"). "key=value" pairs separated by ';',
     * opaque to the core, at most TUTTI_SETTINGS_MAX-1 bytes; copied. NULL:
     * none (each member's defaults).
     */
    const char *settings;
} tutti_hub_config;

/* What a client's schedule-ahead (sclang's Server.latency, Sonic Pi's
 * sched_ahead_time) should exceed L by: the path from the client through the
 * plugin into the member, and the client's own timing jitter. */
#define TUTTI_CLIENT_MARGIN (50 * TUTTI_MS)

TUTTI_API void tutti_hub_config_init(tutti_hub_config *cfg);
TUTTI_API int tutti_hub_create(tutti_hub **out, const tutti_hub_config *cfg,
                               const tutti_io *io);
TUTTI_API void tutti_hub_destroy(tutti_hub *h);
/* A connection opened / closed (peer = transport's connection id, never 0). */
TUTTI_API void tutti_hub_connected(tutti_hub *h, uint32_t peer);
TUTTI_API void tutti_hub_disconnected(tutti_hub *h, uint32_t peer);
TUTTI_API int tutti_hub_receive(tutti_hub *h, uint32_t peer, const uint8_t *buf, size_t len);
TUTTI_API tutti_time tutti_hub_tick(tutti_hub *h);
/* Coordinator commands issued locally (the admin's console). */
TUTTI_API int tutti_hub_set_horizon(tutti_hub *h, tutti_time horizon);
TUTTI_API int tutti_hub_set_bpm(tutti_hub *h, double bpm);
/* Start (true) or stop the transport, by the rule of tutti_member_propose_bpm.
 * Asking for the state already ordered issues nothing. */
TUTTI_API int tutti_hub_set_transport(tutti_hub *h, bool playing);
/* Replace the invitations the hub accepts (copied). A member admitted with
 * an invitation that is no longer in the list is removed; one past its
 * expiry can no longer join (members admitted with it stay). */
TUTTI_API int tutti_hub_set_invites(tutti_hub *h, const tutti_invite *inv, uint32_t n);
/* Remove a member (the admin's console). TUTTI_EINVAL if not active. */
TUTTI_API int tutti_hub_remove(tutti_hub *h, uint32_t id, const char *why);
/* The hub's Ed25519 public key (what members pin). */
TUTTI_API void tutti_hub_public_key(const tutti_hub *h, uint8_t pk[32]);

typedef struct tutti_hub_status {
    uint32_t members;
    tutti_time horizon;
    tutti_time horizon_target; /* the automatic horizon's target (0: off) */
    uint64_t horizon_changes;  /* HORIZON commands issued by the automatic horizon */
    tutti_time measured_for;   /* every member's need known for this long (0: not) */
    tutti_time horizon_floor;  /* the rehearsal's L while it is held (0: not) */
    tutti_time close_lead;     /* how far ahead of the hub's clock time is closed */
    tutti_time change_lead;    /* a timeline change is known this long ahead (now) */
    uint64_t moved;            /* events that came after their close, moved */
    uint64_t relayed, delivered, divergences, removed, dropped_frames;
    tutti_timeline timeline;
    bool open;                 /* no credential needed */
    uint64_t auth_ok, auth_refused;  /* handshakes */
    uint64_t refused_events, refused_requests;
    uint32_t handshakes;       /* handshakes under way now */
    /* frames dropped because they were sealed and did not open (wrong key,
     * altered, replayed) or came in clear on an encrypted link */
    uint64_t unsealed_dropped;
    uint32_t sealed_members;   /* active members whose link is encrypted */
    /* What the hub holds for the session's order: events relayed and not
     * yet due (its merge), and their payload bytes, of which each member's
     * part is at most max_held (tutti_hub_config). */
    uint64_t pending_events, held_bytes;
} tutti_hub_status;
TUTTI_API void tutti_hub_status_get(const tutti_hub *h, tutti_hub_status *st);
TUTTI_API uint32_t tutti_hub_list(const tutti_hub *h, tutti_member_info *out, uint32_t cap);

#ifdef __cplusplus
}
#endif
#endif
