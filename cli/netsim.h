/*
 * tutti netsim — a user-space impairment relay for the TCP streams tutti uses.
 *
 * A relay listens on one address and, for every connection it accepts, dials
 * the address it stands in front of. Each direction of each connection runs
 * through its own impairment pipeline: one-way delay, jitter, loss,
 * duplication and a bandwidth limit, under a simplified model of the TCP
 * sender that carries it (netsim.c states the model, docs/netsim.md explains
 * it). Scheduled events change the link while it runs: partitions, latency
 * spikes, a flapping link, new settings.
 *
 * "up" is the direction from the connecting side (a member) to the side the
 * relay dials (the hub); "down" is the way back. A relay is one link: every
 * connection through it shares the link's settings and its events.
 *
 * Threads: a relay runs on the thread that calls netsim_run(), with a libuv
 * loop of its own. netsim_stop() may be called from any thread; every other
 * function belongs to the thread that owns the relay. Nothing here is
 * real-time safe.
 */
#ifndef TUTTI_CLI_NETSIM_H
#define TUTTI_CLI_NETSIM_H

#include "sim/sim.h" /* tutti_path and its jitter distributions */

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* `tutti netsim` and `tutti bench netsim`: the arguments after the command's
 * name (argv[0] is the name); exit status 0, 1 (failed) or 2 (usage). */
int cmd_netsim(int argc, char **argv);
int tutti_bench_netsim(int argc, char **argv);

enum { NETSIM_UP = 0, NETSIM_DOWN = 1 };

/* The SCHED_FIFO priority of --realtime: above ordinary work, below audio
 * servers (JACK's threads run at 70 and up). */
#define NETSIM_RT_PRIORITY 10
#define NETSIM_BOTH ((1u << NETSIM_UP) | (1u << NETSIM_DOWN))

/* One direction of a link. */
typedef struct netsim_link {
    tutti_time delay;  /* one-way propagation delay, ns */
    tutti_time jitter; /* spread, ns; what it means depends on dist */
    int dist;          /* TUTTI_JITTER_UNIFORM, _NORMAL or _PARETO (sim/sim.h) */
    double loss;       /* probability that one transmission of a segment is lost */
    double dup;        /* probability that a segment is sent twice */
    double rate;       /* bits per second on the wire; 0: unlimited */
} netsim_link;

/* Which fields of a netsim_link a "set" event changes. */
enum {
    NETSIM_F_DELAY = 1,
    NETSIM_F_JITTER = 2,
    NETSIM_F_DIST = 4,
    NETSIM_F_LOSS = 8,
    NETSIM_F_DUP = 16,
    NETSIM_F_RATE = 32,
};

/* What a scheduled event does. A scenario line ("partition 3s", "flap ...")
 * becomes one or more of these. */
enum netsim_action {
    NETSIM_SET,       /* link fields in `fields` take the values in `link` */
    NETSIM_CUT,       /* a partition begins (they nest: the link is down while
                       * any is in force) */
    NETSIM_HEAL,      /* ... and ends */
    NETSIM_SPIKE_ON,  /* link.delay more one-way delay from now on ... */
    NETSIM_SPIKE_OFF, /* ... and no more */
    NETSIM_RESET,     /* every connection is reset (both ends see a RST) */
};

typedef struct netsim_event {
    tutti_time at;   /* since the relay started */
    int action;      /* enum netsim_action */
    unsigned dirs;   /* 1 << NETSIM_UP, 1 << NETSIM_DOWN or NETSIM_BOTH */
    unsigned fields; /* NETSIM_SET: NETSIM_F_* */
    netsim_link link;
    bool reset;     /* NETSIM_CUT: reset the connections as well */
    char what[200]; /* printed when it happens */
} netsim_event;

enum netsim_recovery {
    NETSIM_RECOVERY_SACK = 0, /* RACK-TLP: a loss costs about a round trip */
    NETSIM_RECOVERY_RTO = 1,  /* no SACK: every loss waits for the RTO */
};

enum netsim_jitter_model {
    /* A queue's delay: per direction one smooth random curve of time, which
     * every segment samples when it is sent; consecutive segments see nearly
     * the same delay, a busy and a quiet direction the same distribution. */
    NETSIM_JITTER_QUEUE = 0,
    /* One independent draw per segment (then in-order delivery): a busy
     * direction waits for the slowest of many draws and is slower on
     * average than a quiet one. */
    NETSIM_JITTER_INDEPENDENT = 1,
};

typedef struct netsim_config {
    const char *listen_host; /* numeric or a name; "0.0.0.0" for every address */
    int listen_port;         /* 0 picks a free port (netsim_port) */
    const char *to_host;
    int to_port;
    netsim_link link[2];        /* [NETSIM_UP], [NETSIM_DOWN] at the start */
    const netsim_event *events; /* copied; any order */
    size_t nevents;
    uint64_t seed;      /* the same seed replays the same draws */
    int recovery;       /* enum netsim_recovery */
    int jitter_model;   /* enum netsim_jitter_model */
    tutti_time rto_min; /* Linux: 200 ms */
    /* Bytes a direction holds before it stops reading from its sender. */
    size_t queue_max;
    /* The most the loop spins before a deadline, to meet it although the
     * machine wakes threads late (default 500 us; 0: never spin). */
    tutti_time spin_max;
    /* Run the loop thread at this SCHED_FIFO priority (1-99) so that busy
     * processes do not delay it; 0 (default): normal scheduling. Needs
     * CAP_SYS_NICE or an RLIMIT_RTPRIO; without, it warns and carries on. */
    int rt_priority;
    tutti_time duration; /* stop after this long; 0: until stopped */
    /* Stop once *stop_flag != 0 (checked every 50 ms); NULL: no flag. */
    const volatile sig_atomic_t *stop_flag;
    FILE *out;   /* event lines and status lines; NULL: none */
    bool status; /* a status line on `out` every second */
    /* Connection notices (opened, closed, refused); NULL: none. */
    void (*log)(void *ctx, int level, const char *msg);
    void *log_ctx;
} netsim_config;

/* Defaults: no impairment, seed 1, SACK recovery, queue jitter, rto_min
 * 200 ms, 4 MiB, spin_max 500 us. */
void netsim_config_init(netsim_config *cfg);

#define NETSIM_LATE_BUCKETS 24

typedef struct netsim_dir_stats {
    uint64_t bytes_in, bytes_out; /* read from the sender, written to the receiver */
    uint64_t segments;            /* segments the stream was cut into */
    uint64_t transmissions;       /* segments put on the modelled wire, retransmissions
                                   * included */
    uint64_t lost;                /* transmissions lost (random or partition) */
    uint64_t fast;                /* losses repaired one round trip later (SACK) */
    uint64_t probes;              /* tail-loss probes */
    uint64_t timeouts;            /* retransmission timeouts */
    uint64_t dups;                /* segments sent twice */
    uint64_t max_queue;           /* most bytes one connection held in this direction */
    tutti_time max_delay;         /* longest a byte stayed in the relay */
    uint64_t read_pauses;         /* times the queue limit stopped reading */
    /* How late the relay wrote segments compared with the model's arrival
     * time (its own wake-up and write latency): late_hist[0] counts those
     * under 1 us, late_hist[k] those in [2^(k-1), 2^k) us, the last one the
     * rest. */
    uint64_t late_hist[NETSIM_LATE_BUCKETS];
} netsim_dir_stats;

/* The upper end, in us, of the bucket holding quantile q of a late_hist. */
double netsim_late_quantile(const uint64_t *hist, double q);

typedef struct netsim_stats {
    uint64_t connections; /* accepted */
    uint64_t refused;     /* the far side could not be reached */
    uint64_t resets;      /* connections reset by an event or an error */
    uint64_t events;      /* scheduled events applied */
    uint64_t partitions;  /* partitions begun */
    tutti_time lead;      /* how early the timer is armed now (spin_max bound) */
    bool realtime;        /* the loop thread got its real-time priority */
    netsim_dir_stats dir[2];
} netsim_stats;

typedef struct netsim netsim;

/*
 * Resolve the addresses and bind the listening socket (the port is known once
 * this returns). Prints what is wrong on stderr ("tutti netsim: ...") and
 * returns TUTTI_EINVAL (bad address or settings), TUTTI_ETRANSPORT (cannot
 * listen) or TUTTI_ENOMEM; 0 and *out on success. The thread that creates a
 * relay owns it.
 */
int netsim_create(netsim **out, const netsim_config *cfg);

/* The port the relay listens on. */
int netsim_port(const netsim *ns);

/*
 * Relay until stopped (netsim_stop, the stop flag, or the duration), then
 * close every connection. Time 0 of the events is the call. Returns 0, or
 * TUTTI_ETRANSPORT if the loop could not run.
 */
int netsim_run(netsim *ns);

/* Ask a running relay to stop. Thread-safe: yes (uv_async_send). */
void netsim_stop(netsim *ns);

/* Counters so far: from the owning thread when netsim_run has returned (or
 * before it started). */
void netsim_stats_get(const netsim *ns, netsim_stats *st);

/* Free everything. Not while netsim_run is running. NULL is ignored. */
void netsim_destroy(netsim *ns);

/* Copy the fields of `v` named in `fields` (NETSIM_F_*) into `l`. */
void netsim_set(netsim_link *l, const netsim_link *v, unsigned fields);

/* The model's round trip and retransmission timeout for a pair of links
 * (what the relay uses; exposed for the benchmark and the summary). */
tutti_time netsim_srtt(const netsim_link *up, const netsim_link *down);
tutti_time netsim_rto(const netsim_link *up, const netsim_link *down, tutti_time rto_min);

#endif
