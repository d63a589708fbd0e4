/*
 * The simulation platform: a hub and many members in one process, on virtual
 * time, over a seeded simulated network.
 *
 * Design notes
 * ------------
 * - Virtual time is an int64 of nanoseconds of "true" time. Every node has its
 *   own local clock, true * (1 + drift) + offset, so the clock filter has real
 *   work to do. The hub's clock defines session time.
 * - Everything random (delays, loss, drifts, workloads) comes from one seeded
 *   xoshiro256** generator per simulation, drawn in a fixed order, so a seed
 *   replays exactly: same deliveries at the same virtual nanoseconds.
 * - Links behave like TCP: each direction is FIFO; a lost segment is
 *   retransmitted after an RTO, holding back everything behind it. A partition
 *   drops frames (the connection is considered broken), and the endpoints
 *   recover through the protocol's own NACK/resume path or are removed.
 * - Events are kept in an intrusive binary heap ordered by (time, insertion
 *   number): simulation order is total and deterministic.
 */
#ifndef TUTTI_SIM_H
#define TUTTI_SIM_H

#include "tutti/tutti.h"

/* ------------------------------------------------------------------ rng */
typedef struct tutti_rng {
    uint64_t s[4];
} tutti_rng;

void tutti_rng_seed(tutti_rng *r, uint64_t seed);
uint64_t tutti_rng_next(tutti_rng *r);
double tutti_rng_unit(tutti_rng *r);              /* [0, 1) */
double tutti_rng_normal(tutti_rng *r);            /* mean 0, sd 1 */
int64_t tutti_rng_range(tutti_rng *r, int64_t lo, int64_t hi); /* [lo, hi] */

/* ---------------------------------------------------------- delay model */
enum tutti_jitter_dist {
    TUTTI_JITTER_UNIFORM = 0, /* base + U[-jitter, +jitter] */
    TUTTI_JITTER_NORMAL = 1,  /* base + N(0, jitter/2), clipped to +/- 2 jitter */
    TUTTI_JITTER_PARETO = 2,  /* base - jitter + heavy tail with mean 2*jitter */
};

typedef struct tutti_path {
    tutti_time base;   /* one-way delay */
    tutti_time jitter; /* spread, see the distribution */
    int dist;          /* enum tutti_jitter_dist */
    double loss;       /* probability a frame's segment is lost (then one RTO) */
} tutti_path;

/* One draw of a one-way delay (never below 0; never below base - jitter). */
tutti_time tutti_path_delay(const tutti_path *p, tutti_rng *r);
/* The delay at quantile Phi(z) of the distribution (Phi the standard normal
 * CDF): a draw when z is a standard normal draw. */
tutti_time tutti_path_delay_z(const tutti_path *p, double z);
/* The largest delay the distribution can produce without loss (for L rules). */
tutti_time tutti_path_max_delay(const tutti_path *p);

/* ------------------------------------------------------------ the world */
typedef struct tutti_sim tutti_sim;

typedef struct tutti_sim_config {
    uint64_t seed;
    uint32_t members;
    tutti_path up, down;       /* member->hub and hub->member, unless overridden */
    tutti_time horizon;        /* L */
    tutti_time heartbeat;      /* 0: default */
    tutti_time suspect_after;
    tutti_time rto;            /* retransmission timeout after a loss */
    double max_drift_ppm;      /* member clocks drift uniformly in +/- this */
    tutti_time max_offset;     /* member clocks offset uniformly in +/- this */
    bool auto_rejoin;
    uint32_t max_pending;
    bool auto_horizon;         /* the hub chooses L (horizon is where it starts) */
    tutti_time horizon_floor, floor_for; /* a rehearsal's L (tutti_hub_config) */
    bool sealed; /* the hub needs invitations (one a member): links encrypted */
    uint32_t conductor;     /* the node that joins as a conductor (0: none) */
    tutti_time change_lead; /* the hub's (0: its default) */
    int role;               /* what the other members ask an open hub for (performer) */
    /* Per node (index 1..members, so members + 1 entries), the role its
     * invitation gives (sealed) or it asks for (open); NULL: `role`, and
     * the conductor's. */
    const int *roles;
    /* The hub's limits per member (tutti_hub_config; 0: its defaults). */
    double max_event_rate, max_event_burst;
    tutti_time max_ahead;
    uint64_t max_held;
} tutti_sim_config;

void tutti_sim_config_init(tutti_sim_config *c);

/* What happened to one delivered event at one member. */
typedef struct tutti_sim_delivery {
    tutti_key key;
    uint32_t kind;
    uint64_t payload_hash; /* FNV-1a of the payload */
    tutti_time true_time;  /* virtual time of delivery */
    tutti_time est_session;/* the member's estimate of session time then */
    bool late;             /* as the member counted it */
    bool locked;           /* its clock was locked (lateness is judged only then) */
} tutti_sim_delivery;

/* A member incarnation's record: everything it delivered, in order. */
typedef struct tutti_sim_log {
    uint32_t node;        /* simulation node index (1..members) */
    uint32_t member_id;   /* id in the session (0 until joined) */
    uint32_t incarnation;
    tutti_key joined;     /* ADD command key */
    bool removed;         /* the incarnation ended */
    tutti_sim_delivery *d;
    size_t n, cap;
} tutti_sim_log;

/* An event a member's engine accepted, with the key it was stamped with. */
typedef struct tutti_sim_submitted {
    tutti_key key;
    uint32_t node, incarnation;
    tutti_time at; /* true time of submission */
} tutti_sim_submitted;

int tutti_sim_create(tutti_sim **out, const tutti_sim_config *cfg);
void tutti_sim_destroy(tutti_sim *s);

/* Virtual time now. */
tutti_time tutti_sim_now(const tutti_sim *s);
/* Run until virtual time `until` (or until nothing is scheduled). */
void tutti_sim_run_until(tutti_sim *s, tutti_time until);

/* Node control. Nodes are 1..members; node 0 is the hub. */
void tutti_sim_start(tutti_sim *s, uint32_t node, tutti_time at); /* connect + join */
void tutti_sim_crash(tutti_sim *s, uint32_t node, tutti_time at);
void tutti_sim_leave(tutti_sim *s, uint32_t node, tutti_time at);
/* The node's process stops during [from, to) (SIGSTOP ... SIGCONT): it
 * handles nothing, sends nothing and its timers wait; frames sent to it are
 * queued and handled, in order, when it goes on. to = TUTTI_TIME_MAX: it
 * never goes on, its connection staying open (a member that says nothing). */
void tutti_sim_pause(tutti_sim *s, uint32_t node, tutti_time from, tutti_time to);
/* Drop every frame between node and the hub during [from, to). */
void tutti_sim_partition(tutti_sim *s, uint32_t node, tutti_time from, tutti_time to);
/* Override one member's paths. */
void tutti_sim_set_paths(tutti_sim *s, uint32_t node, const tutti_path *up,
                         const tutti_path *down);

/* Workload: node submits an event at virtual time `at`, for session time
 * at_session_est + lead (lead may be < L: then it is restamped). */
void tutti_sim_submit(tutti_sim *s, uint32_t node, tutti_time at, tutti_time lead,
                      uint32_t len, uint64_t tag);
/* Random workload: every node submits `per_node` events at uniform times in
 * [from, to), each with a lead drawn from [lead_lo, lead_hi]. */
void tutti_sim_random_workload(tutti_sim *s, uint32_t per_node, tutti_time from,
                               tutti_time to, tutti_time lead_lo, tutti_time lead_hi);

/*
 * Attacks: what a hostile member or a stranger can send, through the real
 * engines (tests/core/attack_sim_test.c).
 * - flood: node submits `rate` events a second during [from, to), each for
 *   session time now + lead, `len` bytes (8 at least), in one batch a
 *   millisecond of virtual time (one simulation event, not one per event),
 *   deterministically: by time t it has tried floor((t - from) * rate).
 * - forge: node submits `count` events at `at` as a client changed to
 *   ignore its role would (the hub must refuse a listener's).
 * - propose_horizon: node asks the hub for L = horizon at `at`.
 * - untrack: node's submissions are not held against the survivors by
 *   tutti_sim_check (the hub refuses an attacker's events on purpose, and
 *   renumbers what it relays of an origin after a refusal).
 * - strangers: `count` connections, one at a time evenly over [from, to),
 *   each saying a well-formed HELLO (fresh nonce and key) and never
 *   answering the hub's challenge; peers numbered after the nodes, the
 *   hub's answers to them dropped.
 */
void tutti_sim_flood(tutti_sim *s, uint32_t node, tutti_time from, tutti_time to, double rate,
                     tutti_time lead, uint32_t len);
void tutti_sim_forge(tutti_sim *s, uint32_t node, tutti_time at, tutti_time lead, uint32_t len,
                     uint32_t count);
void tutti_sim_propose_horizon(tutti_sim *s, uint32_t node, tutti_time at, tutti_time horizon);
void tutti_sim_untrack(tutti_sim *s, uint32_t node);
void tutti_sim_strangers(tutti_sim *s, uint32_t count, tutti_time from, tutti_time to);

/* Introspection. */
tutti_member *tutti_sim_member(tutti_sim *s, uint32_t node);
tutti_hub *tutti_sim_hub(tutti_sim *s);
size_t tutti_sim_logs(const tutti_sim *s, const tutti_sim_log **logs); /* all incarnations */
tutti_time tutti_sim_max_delay_seen(const tutti_sim *s); /* largest hop-to-hop sum seen */
/* The largest one-way delays seen, member -> hub and hub -> member; with
 * `node` != 0, only that node's paths. */
tutti_time tutti_sim_max_up(const tutti_sim *s, uint32_t node);
tutti_time tutti_sim_max_down(const tutti_sim *s, uint32_t node);
tutti_time tutti_sim_true_session(const tutti_sim *s);   /* hub clock now */
/* Local clock of a node at true time t. */
tutti_time tutti_sim_node_clock(const tutti_sim *s, uint32_t node, tutti_time t);
uint64_t tutti_sim_frames_sent(const tutti_sim *s);
size_t tutti_sim_submissions(const tutti_sim *s, const tutti_sim_submitted **subs);
bool tutti_sim_crashed(const tutti_sim *s, uint32_t node);

/* Nearest-rank percentile of v[0..n), p in [0, 1] (sorts v; NAN if n == 0). */
double tutti_percentile(double *v, size_t n, double p);

uint64_t tutti_fnv1a(const void *p, size_t n, uint64_t h);
#define TUTTI_FNV_INIT 0xcbf29ce484222325ull

#endif

/* ------------------------------------------------------------- checking */

/* What the checker found over all member incarnations of a finished run. */
typedef struct tutti_sim_report {
    uint64_t events;        /* distinct events delivered anywhere */
    uint64_t user_events;
    uint64_t deliveries;    /* summed over incarnations */
    uint64_t late;          /* as counted by the members */
    uint64_t late_true;     /* delivered after t by the true clock */
    uint64_t moved;         /* events the hub moved to its close */
    uint64_t misordered;    /* delivered after something that sorts later */
    uint64_t conflicting;   /* same key, different content */
    uint64_t missing;       /* absent from an incarnation's range */
    uint64_t incomplete;    /* surviving incarnations missing final events */
    uint64_t undelivered;   /* survivors' own submissions a survivor never delivered */
    uint64_t violations;    /* members' merge violations + hub divergence reports */
    uint64_t incarnations, removed;
    tutti_time max_delay;   /* largest member-hub-member delay seen */
    tutti_time max_bound;   /* largest clock bound of a locked member */
    tutti_time max_clock_err; /* largest |estimate - truth| at a delivery */
    uint64_t late_miscounted; /* a member's count or verdict not matching its clock */
    char first_problem[200];
} tutti_sim_report;

/* Check coherence (identical sequences over shared ranges), order, and late
 * accounting. `alive` flags, per node, whether it should have everything at
 * the end. Returns true when coherent. */
bool tutti_sim_check(tutti_sim *s, tutti_sim_report *r);
/* Deliveries after their t by the true clock at one node (all incarnations). */
uint64_t tutti_sim_late_true_at(const tutti_sim *s, uint32_t node);

/* ------------------------------------------------------------ scenarios */

/* The named network profiles of the acceptance sweep:
 *   lan        0.05 +/- 0.05 ms each hop, L = 10 ms
 *   wan40      member-to-member 40 +/- 10 ms (20 +/- 5 ms each hop), L = 80 ms
 *   wan150     150 +/- 40 ms (75 +/- 20 ms each hop, normal), 2 % loss, L = 300 ms
 *   partition  wan40, and one member cut off from the hub for 3 s
 *   crash      wan40, and one member crashing mid-session
 *   churn      wan40, one member joining late, one leaving, one cut off for
 *              600 ms (shorter than suspect_after: it must recover through
 *              resends), and two tempo changes
 *   freeze     wan40, one member's process stopped for 3 s, then going on
 *   silent     wan40, and one more member that joins and never says anything
 *   cut        wan40, one member's link cut for 2 s (it keeps its place)
 * The partition profile removes a member silent for 1 s; the others keep a
 * silent member's place for the hub's default, 8 s. */
extern const char *const tutti_sim_profiles[];

typedef struct tutti_scenario_result {
    tutti_sim_report report;
    bool coherent;
    bool late_ok;        /* zero late at honest members when the delay bound held */
    uint64_t late_honest; /* deliveries after their t at the honest members */
    bool timeline_ok;    /* every survivor ended on the same timeline */
    tutti_time horizon;
    uint64_t submitted;
    char verdict[240];
} tutti_scenario_result;

/* Run one seeded scenario; returns 0 or TUTTI_EINVAL for an unknown profile. */
int tutti_sim_scenario(const char *profile, uint32_t members, uint64_t seed,
                       tutti_scenario_result *out);
